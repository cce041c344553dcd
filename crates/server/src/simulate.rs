//! `switchboard simulate`: drives the real router in simulated time with Poisson arrivals and
//! exponential handle times (and patience), then prints service level, ASA, abandonment and
//! occupancy next to the Erlang C/A prediction. Wall time is measured here, outside the engine.
#![allow(clippy::disallowed_methods)] // wall time of the run is a report figure, not an engine input

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use switchboard_analytics::{SimParams, simulate};

/// Arguments of `switchboard simulate`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Agents staffing the queue.
    #[arg(long)]
    agents: u32,
    /// Mean arrivals per hour (Poisson).
    #[arg(long)]
    arrivals_per_hour: f64,
    /// Mean handle time in seconds (exponential).
    #[arg(long)]
    handle_time_s: f64,
    /// Simulated hours.
    #[arg(long)]
    hours: f64,
    /// Service-level threshold in seconds.
    #[arg(long, default_value_t = 20.0)]
    sl_threshold_s: f64,
    /// Mean patience in seconds (exponential); callers abandon after it. Unset: nobody abandons.
    #[arg(long)]
    patience_s: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn secs(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("--{name}: {s} is not a valid number of seconds"))
}

/// Runs the command.
pub fn run(a: SimArgs) -> ExitCode {
    let params = match (|| -> Result<SimParams, String> {
        let mut p = SimParams::new(
            a.agents,
            a.arrivals_per_hour,
            secs("handle-time-s", a.handle_time_s)?,
            a.hours,
        );
        p.sl_threshold = secs("sl-threshold-s", a.sl_threshold_s)?;
        p.patience = a.patience_s.map(|s| secs("patience-s", s)).transpose()?;
        p.seed = a.seed;
        p.validate().map_err(|e| e.to_string())?;
        Ok(p)
    })() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("switchboard simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let expected = params.expected_arrivals().max(1.0) as u64;
    let bar = if a.json || expected < 200_000 {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(expected);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} contacts ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let started = Instant::now();
    let report = simulate(&params, &mut |done, total| {
        bar.set_length(total.max(done));
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let wall = started.elapsed();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard simulate: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A closed pipe (`| head`) ends the output quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    macro_rules! say {
        ($o:expr, $($t:tt)*) => {
            let _ = writeln!($o, $($t)*);
        };
    }
    if a.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("wall_time_s".into(), serde_json::json!(wall.as_secs_f64()));
        }
        say!(out, "{v}");
        return ExitCode::SUCCESS;
    }
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    let opt_pct = |x: Option<f64>| x.map(pct).unwrap_or_else(|| "n/a (overloaded)".into());
    say!(
        out,
        "simulated {:.1} h ({:.1} h warm-up), {} contacts offered, {} answered, {} abandoned",
        report.simulated_hours,
        report.warm_up_hours,
        report.offered,
        report.answered,
        report.abandoned
    );
    say!(
        out,
        "                      simulated        {}",
        report.erlang_model.replace('_', " ")
    );
    say!(
        out,
        "service level ({:>3}s)  {:<16} {}",
        a.sl_threshold_s,
        pct(report.service_level),
        opt_pct(report.erlang_service_level)
    );
    say!(
        out,
        "ASA                   {:<16} {}",
        format!("{:.1} s", report.asa_s),
        report
            .erlang_asa_s
            .map(|x| format!("{x:.1} s"))
            .unwrap_or_else(|| "n/a".into())
    );
    say!(
        out,
        "abandonment           {:<16} {}",
        pct(report.abandonment_rate),
        opt_pct(report.erlang_abandonment_rate)
    );
    say!(
        out,
        "occupancy             {:<16} {}",
        pct(report.occupancy),
        opt_pct(report.erlang_occupancy)
    );
    say!(
        out,
        "probability of wait   {:<16} {}",
        pct(report.p_wait),
        opt_pct(report.erlang_p_wait)
    );
    say!(
        out,
        "wall time {:.2} s ({:.0} contacts/s)",
        wall.as_secs_f64(),
        report.offered as f64 / wall.as_secs_f64().max(1e-9)
    );
    ExitCode::SUCCESS
}
