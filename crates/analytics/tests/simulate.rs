//! The simulator driving the real router, checked against Erlang C and Erlang A.
//!
//! Statistical tolerances: waits of neighbouring callers are strongly correlated, so the spread of
//! a run's service level is far wider than the binomial one. Each report carries 95% confidence
//! half-widths from 20 batch means; for 25 agents at 80% occupancy a run of 1,000,000 contacts
//! measures service level to about ±0.55 pp, 4,000,000 to about ±0.28 pp. The tests assert that
//! the half-width is well inside the tolerance (so a pass means something) and that the result
//! is inside the tolerance. Seeds are fixed, so the tests are deterministic; the half-widths say
//! how unlikely a failure would be for another seed with a correct router (1 pp is about 3.6
//! standard errors at 1,000,000 contacts).

use std::time::Duration;
use switchboard_analytics::simulate::{MAX_AGENTS, MAX_HOURS};
use switchboard_analytics::{SimError, SimParams, SimReport, simulate};

/// Contacts for the statistical runs: moderate in debug builds (the router is unoptimised there,
/// about 8 µs per contact), larger in release.
fn contacts(debug: f64, release: f64) -> f64 {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

fn run(params: &SimParams) -> SimReport {
    simulate(params, &mut |_, _| {}).expect("valid parameters and a working router")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn assert_close(what: &str, measured: f64, predicted: f64, tol: f64, ci: f64) {
    assert!(
        (measured - predicted).abs() <= tol,
        "{what}: simulated {measured:.5} (±{ci:.5}) vs predicted {predicted:.5}, tolerance {tol}"
    );
    assert!(
        ci <= tol * 0.6,
        "{what}: confidence half-width {ci:.5} too wide for tolerance {tol}: run longer"
    );
}

fn check_against_erlang_c(contacts: f64, sl_tol: f64, seed: u64) {
    // perf.md worked check: 300 calls/h, AHT 240 s, 25 agents: P(wait) 0.209, SL20 0.862,
    // ASA 10.0 s, occupancy 0.80.
    let mut params = SimParams::new(25, 300.0, secs(240), contacts / 300.0);
    params.seed = seed;
    let r = run(&params);
    assert_eq!(r.erlang_model, "erlang_c");
    assert_eq!(r.abandoned, 0);
    assert_eq!(r.offered, r.answered);
    assert_eq!(r.service_level, r.service_level_answered);
    let sl = r.erlang_service_level.expect("25 agents carry 20 Erlangs");
    assert_close(
        "service level",
        r.service_level,
        sl,
        sl_tol,
        r.service_level_ci95,
    );
    // P(wait) is a little less noisy than SL20 (same events, earlier cut).
    let p_wait = r.erlang_p_wait.expect("stable");
    assert!((r.p_wait - p_wait).abs() <= sl_tol, "{r:?}");
    // ASA (10.0 s) is the noisiest figure (long waits come in bursts): ±0.61 s at 1,000,000
    // contacts, so 1.2 s (12%) in debug and half of that in release.
    let asa_tol = 1.2 * sl_tol / 0.01;
    assert_close(
        "ASA",
        r.asa_s,
        r.erlang_asa_s.expect("stable"),
        asa_tol,
        r.asa_ci95_s,
    );
    // Occupancy averages over all agents all the time: far steadier than waits.
    assert!((r.occupancy - 0.8).abs() < 0.005, "{r:?}");
    assert!((r.mean_handle_time_s - 240.0).abs() < 240.0 * 0.01, "{r:?}");
    // Counts: offered close to 300/h over the measured hours (Poisson: ±3σ).
    let expected = 300.0 * r.measured_hours;
    assert!(
        (r.offered as f64 - expected).abs() < 3.0 * expected.sqrt() + 1.0,
        "{r:?}"
    );
}

#[test]
fn service_level_matches_erlang_c() {
    check_against_erlang_c(contacts(1_000_000.0, 4_000_000.0), 0.01, 7);
}

/// Long variant: `cargo test --release -p switchboard-analytics -- --ignored` (about 10 s).
#[test]
#[ignore = "long: 12,000,000 contacts; run in release"]
fn service_level_matches_erlang_c_long() {
    check_against_erlang_c(12_000_000.0, 0.005, 11);
}

#[test]
fn abandonment_matches_erlang_a() {
    // 25 agents, patience 120 s: Erlang A says 2.26% abandon, SL20 0.932, ASA 2.37 s.
    // Abandonment's batch-means half-width is about ±0.09 pp at 600,000 contacts, so 0.2 pp
    // (9% of the rate) is over 2 half-widths in debug and over 4 in release.
    let mut params = SimParams::new(
        25,
        300.0,
        secs(240),
        contacts(600_000.0, 2_000_000.0) / 300.0,
    );
    params.patience = Some(secs(120));
    params.seed = 3;
    let r = run(&params);
    assert_eq!(r.erlang_model, "erlang_a");
    assert_eq!(r.offered, r.answered + r.abandoned);
    let ab = r
        .erlang_abandonment_rate
        .expect("Erlang A always has an answer");
    assert_close(
        "abandonment",
        r.abandonment_rate,
        ab,
        0.002,
        r.abandonment_rate_ci95,
    );
    let sl = r.erlang_service_level.expect("Erlang A");
    assert_close(
        "service level",
        r.service_level,
        sl,
        0.01,
        r.service_level_ci95,
    );
    assert!(r.service_level < r.service_level_answered);
    // Erlang C ignores the hang-ups and so under-predicts the service level.
    assert!(r.erlang_c_service_level.expect("stable") < sl);
}

#[test]
fn overload_with_abandonment_matches_erlang_a() {
    // 18 agents for 20 Erlangs: Erlang C has no answer, Erlang A does (17.7% abandon with a
    // 60 s mean patience). Half-width about ±0.26 pp at 300,000 contacts, ±0.14 pp at 1,000,000:
    // 0.6 pp (3.4% of the rate) keeps both runs over 2 half-widths inside.
    let mut params = SimParams::new(
        18,
        300.0,
        secs(240),
        contacts(400_000.0, 1_500_000.0) / 300.0,
    );
    params.patience = Some(secs(60));
    params.seed = 5;
    let r = run(&params);
    assert_eq!(r.erlang_c_service_level, None);
    let ab = r.erlang_abandonment_rate.expect("Erlang A");
    assert_close(
        "abandonment",
        r.abandonment_rate,
        ab,
        0.006,
        r.abandonment_rate_ci95,
    );
    let sl = r.erlang_service_level.expect("Erlang A");
    assert_close(
        "service level",
        r.service_level,
        sl,
        0.015,
        r.service_level_ci95,
    );
    let occupancy = r.erlang_occupancy.expect("Erlang A");
    assert!((r.occupancy - occupancy).abs() < 0.005, "{r:?}");
}

#[test]
fn overload_without_abandonment_still_runs() {
    // 19 agents for 20 Erlangs and nobody hangs up: the queue grows all day; every counted caller
    // is still followed until answered.
    let r = run(&SimParams::new(19, 300.0, secs(240), 10.0));
    assert_eq!(r.erlang_model, "erlang_c");
    assert_eq!(r.erlang_service_level, None);
    assert_eq!(r.erlang_asa_s, None);
    assert_eq!(r.abandoned, 0);
    assert_eq!(r.offered, r.answered);
    assert!(r.occupancy > 0.97, "{r:?}");
    assert!(r.asa_s > 60.0, "{r:?}");
}

#[test]
fn same_seed_same_report_other_seed_other_report() {
    let mut params = SimParams::new(10, 120.0, secs(240), 20.0);
    params.patience = Some(secs(90));
    params.seed = 42;
    let a = run(&params);
    let b = run(&params);
    assert_eq!(a, b);
    params.seed = 43;
    let c = run(&params);
    assert_ne!(a, c);
}

#[test]
fn progress_is_reported_and_finishes() {
    let params = SimParams::new(25, 300.0, secs(240), 120.0); // about 36,000 arrivals
    let mut calls = Vec::new();
    let r = simulate(&params, &mut |done, total| calls.push((done, total))).expect("valid");
    assert!(calls.len() >= 4, "{calls:?}");
    assert_eq!(calls[0], (10_000, 36_000));
    let (done, total) = *calls.last().expect("at least one call");
    assert_eq!(done, total);
    assert!(done >= r.offered);
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn thresholds_change_the_service_level_only() {
    let mut params = SimParams::new(25, 300.0, secs(240), 50.0);
    let r20 = run(&params);
    params.sl_threshold = Duration::ZERO;
    let r0 = run(&params);
    params.sl_threshold = secs(100_000);
    let rmax = run(&params);
    assert_eq!((r20.offered, r20.asa_s), (r0.offered, r0.asa_s));
    // Within 0 s means "did not wait at all".
    assert!((r0.service_level - (1.0 - r0.p_wait)).abs() < 1e-12);
    assert_eq!(rmax.service_level, 1.0);
    assert!(r0.service_level < r20.service_level);
}

#[test]
fn report_serializes_to_json() {
    let r = run(&SimParams::new(3, 20.0, secs(300), 5.0));
    let json = serde_json::to_value(&r).expect("serializes");
    for key in [
        "service_level",
        "service_level_answered",
        "asa_s",
        "abandonment_rate",
        "occupancy",
        "offered",
        "answered",
        "abandoned",
        "simulated_hours",
        "erlang_service_level",
        "erlang_model",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["patience_s"], serde_json::Value::Null);
}

#[test]
fn bad_params_are_errors() {
    let good = SimParams::new(25, 300.0, secs(240), 10.0);
    assert_eq!(good.validate(), Ok(()));
    type IsExpected = fn(&SimError) -> bool;
    let cases: Vec<(SimParams, IsExpected)> = vec![
        (
            SimParams {
                agents: 0,
                ..good.clone()
            },
            |e| matches!(e, SimError::Agents(0)),
        ),
        (
            SimParams {
                agents: MAX_AGENTS + 1,
                ..good.clone()
            },
            |e| matches!(e, SimError::Agents(_)),
        ),
        (
            SimParams {
                arrivals_per_hour: 0.0,
                ..good.clone()
            },
            |e| matches!(e, SimError::ArrivalRate(_)),
        ),
        (
            SimParams {
                arrivals_per_hour: -3.0,
                ..good.clone()
            },
            |e| matches!(e, SimError::ArrivalRate(_)),
        ),
        (
            SimParams {
                arrivals_per_hour: f64::NAN,
                ..good.clone()
            },
            |e| matches!(e, SimError::ArrivalRate(_)),
        ),
        (
            SimParams {
                handle_time: Duration::ZERO,
                ..good.clone()
            },
            |e| matches!(e, SimError::HandleTime(_)),
        ),
        (
            SimParams {
                handle_time: secs(8 * 24 * 3600),
                ..good.clone()
            },
            |e| matches!(e, SimError::HandleTime(_)),
        ),
        (
            SimParams {
                hours: 0.0,
                ..good.clone()
            },
            |e| matches!(e, SimError::Hours(_)),
        ),
        (
            SimParams {
                hours: -1.0,
                ..good.clone()
            },
            |e| matches!(e, SimError::Hours(_)),
        ),
        (
            SimParams {
                hours: f64::INFINITY,
                ..good.clone()
            },
            |e| matches!(e, SimError::Hours(_)),
        ),
        (
            SimParams {
                hours: MAX_HOURS * 2.0,
                ..good.clone()
            },
            |e| matches!(e, SimError::Hours(_)),
        ),
        (
            SimParams {
                patience: Some(Duration::ZERO),
                ..good.clone()
            },
            |e| matches!(e, SimError::Patience(_)),
        ),
        (
            SimParams {
                arrivals_per_hour: 1e6,
                hours: 10_000.0,
                ..good.clone()
            },
            |e| matches!(e, SimError::TooLarge(_)),
        ),
    ];
    for (params, is_expected) in cases {
        let err = params.validate().expect_err("invalid");
        assert!(is_expected(&err), "{params:?} gave {err:?}");
        let mut called = false;
        let run_err = simulate(&params, &mut |_, _| called = true).expect_err("invalid");
        // (Compared as text: `ArrivalRate(NaN)` is not equal to itself.)
        assert_eq!(run_err.to_string(), err.to_string());
        assert!(
            !called,
            "progress must not be called for invalid parameters"
        );
        assert!(!err.to_string().is_empty());
    }
}
