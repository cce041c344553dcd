//! Times the simulator on 1,000,000 simulated contacts (25 agents, 300 calls/h, AHT 240 s, so
//! 3,333.3 simulated hours) and prints the report as JSON.
//!
//! `CARGO_TARGET_DIR=target-analytics cargo run --release -p switchboard-analytics --example simulate_million [-- PATIENCE_S]`

use std::time::{Duration, Instant};
use switchboard_analytics::{SimParams, simulate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut params = SimParams::new(25, 300.0, Duration::from_secs(240), 1_000_000.0 / 300.0);
    params.seed = 1;
    if let Some(p) = std::env::args().nth(1) {
        params.patience = Some(Duration::from_secs_f64(p.parse()?));
    }
    // A timing harness, not an engine: reading the wall clock here is the point (DESIGN rule 2
    // is about the library, which never does).
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let report = simulate(&params, &mut |_, _| {})?;
    let elapsed = started.elapsed();
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "{} arrivals simulated in {:.2} s ({:.0} ns per contact)",
        params.expected_arrivals().round(),
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / params.expected_arrivals()
    );
    Ok(())
}
