//! Erlang B, C and A: the queueing formulas behind staffing and service-level prediction.
//!
//! Units, everywhere in this module:
//! - arrival rates are **calls per hour** (`f64`), as planners quote them;
//! - offered load `A` is in **Erlangs** (`arrivals per second × mean handle time in seconds`);
//! - handle time, patience, thresholds and waits are [`Duration`]s (seconds inside the maths);
//! - probabilities, service levels and occupancy are fractions in `0.0..=1.0`.
//!
//! Every function validates its inputs and returns [`ErlangError`] instead of panicking or
//! returning NaN. Formulas and oracles: `research/perf.md` section 4.
//!
//! Erlang A (M/M/N+M: exponential patience with rate `θ = 1 / mean patience`) is computed from the
//! exact birth-death chain `n = 0, 1, ...` (birth `λ`, death `min(n, N)·μ + max(n − N, 0)·θ`),
//! truncated where the remaining tail is below 1e-16 of the total mass. For an arrival that finds
//! `j − 1` callers queued ahead (FCFS), leaving the queue happens at rate `Nμ + jθ` per position,
//! so `P(served) = Nμ / (Nμ + jθ)` (telescoping product) and the time to reach an agent is a sum
//! of exponentials with rates `Nμ + iθ, i = 1..=j`, whose CDF is `1 − I_x(Nμ/θ + 1, j)` with
//! `x = e^{−θt}` (a regularized incomplete beta; `e^{−θS}` is Beta-distributed). That gives the
//! service level and ASA without relying on Little's law, so `P(abandon) = θ·E[W]` is a real check.

use std::time::Duration;
use thiserror::Error;

/// Why an Erlang computation cannot be done.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ErlangError {
    /// Zero agents: nobody can answer.
    #[error("the number of agents must be at least 1")]
    ZeroAgents,
    /// Offered load negative, NaN or infinite.
    #[error("offered load must be a finite number of Erlangs >= 0, got {0}")]
    InvalidLoad(f64),
    /// Arrival rate negative, NaN or infinite.
    #[error("arrival rate must be a finite number of calls per hour >= 0, got {0}")]
    InvalidArrivalRate(f64),
    /// Mean handle time of zero.
    #[error("mean handle time must be greater than zero")]
    ZeroHandleTime,
    /// Mean patience of zero.
    #[error("mean patience must be greater than zero")]
    ZeroPatience,
    /// Erlang C needs more agents than Erlangs of load, or the queue grows without bound.
    #[error(
        "{agents} agents cannot carry {load:.3} Erlangs: the queue grows without bound (need agents > load)"
    )]
    Unstable {
        /// The agents given.
        agents: u32,
        /// The offered load in Erlangs.
        load: f64,
    },
    /// Service-level target outside `0 < target < 1`.
    #[error("service-level target must be a fraction strictly between 0 and 1, got {0}")]
    InvalidTarget(f64),
    /// The inputs need more states or agents than this module is willing to compute.
    #[error("inputs too large to compute ({0})")]
    TooLarge(&'static str),
}

/// Traffic offered to one queue: arrival rate and mean handle time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    arrivals_per_hour: f64,
    handle_time: Duration,
}

impl Traffic {
    /// Validated traffic: `arrivals_per_hour` finite and >= 0, `handle_time` > 0.
    pub fn new(arrivals_per_hour: f64, handle_time: Duration) -> Result<Self, ErlangError> {
        if !arrivals_per_hour.is_finite() || arrivals_per_hour < 0.0 {
            return Err(ErlangError::InvalidArrivalRate(arrivals_per_hour));
        }
        if handle_time.is_zero() {
            return Err(ErlangError::ZeroHandleTime);
        }
        Ok(Traffic {
            arrivals_per_hour,
            handle_time,
        })
    }

    /// Arrivals per hour.
    pub fn arrivals_per_hour(&self) -> f64 {
        self.arrivals_per_hour
    }

    /// Mean handle time (AHT).
    pub fn handle_time(&self) -> Duration {
        self.handle_time
    }

    /// Offered load `A = λ·AHT` in Erlangs.
    pub fn load(&self) -> f64 {
        self.arrivals_per_second() * self.handle_time.as_secs_f64()
    }

    fn arrivals_per_second(&self) -> f64 {
        self.arrivals_per_hour / 3600.0
    }
}

/// Erlang C predictions for `N` agents (M/M/N, nobody abandons).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    /// Probability that an arrival waits at all, `C(N, A)`.
    pub p_wait: f64,
    /// Fraction answered within the threshold, `1 − C·e^{−(N−A)·t/AHT}`.
    pub service_level: f64,
    /// Average speed of answer, `C·AHT / (N − A)`.
    pub asa: Duration,
    /// Fraction of agent time busy, `A / N`.
    pub occupancy: f64,
}

/// Erlang A predictions for `N` agents (M/M/N+M: callers abandon after an exponential patience).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    /// Probability that an arrival finds every agent busy and has to wait.
    pub p_wait: f64,
    /// Probability that an arrival abandons before being answered (the abandonment rate).
    pub p_abandon: f64,
    /// Fraction of **offered** calls answered within the threshold (abandoned ones count as
    /// offered and not answered within it).
    pub service_level: f64,
    /// Average speed of answer: mean wait of the calls that were answered.
    pub asa: Duration,
    /// Mean time in queue over all arrivals, `E[W]` (abandoned ones until they hang up).
    pub mean_wait: Duration,
    /// Fraction of agent time busy, `λ·(1 − P(abandon))·AHT / N`.
    pub occupancy: f64,
}

fn check_agents(agents: u32) -> Result<f64, ErlangError> {
    if agents == 0 {
        Err(ErlangError::ZeroAgents)
    } else {
        Ok(f64::from(agents))
    }
}

fn check_load(load: f64) -> Result<f64, ErlangError> {
    if load.is_finite() && load >= 0.0 {
        Ok(load)
    } else {
        Err(ErlangError::InvalidLoad(load))
    }
}

fn check_stable(agents: u32, load: f64) -> Result<(), ErlangError> {
    if f64::from(agents) > load {
        Ok(())
    } else {
        Err(ErlangError::Unstable { agents, load })
    }
}

fn duration_from_secs(secs: f64) -> Result<Duration, ErlangError> {
    Duration::try_from_secs_f64(secs).map_err(|_| ErlangError::TooLarge("duration out of range"))
}

/// Erlang B blocking probability `B(N, A)` by the stable recursion
/// `B(n) = A·B(n−1) / (n + A·B(n−1))`, `B(0) = 1`. Allows `N <= A`.
pub fn erlang_b(agents: u32, load: f64) -> Result<f64, ErlangError> {
    check_agents(agents)?;
    let load = check_load(load)?;
    let mut b = 1.0;
    for n in 1..=agents {
        b = load * b / (f64::from(n) + load * b);
    }
    Ok(b)
}

/// Erlang C probability of waiting `C(N, A) = N·B / (N − A·(1 − B))`; needs `N > A`.
pub fn erlang_c(agents: u32, load: f64) -> Result<f64, ErlangError> {
    let b = erlang_b(agents, load)?;
    check_stable(agents, load)?;
    Ok(c_from_b(f64::from(agents), load, b))
}

fn c_from_b(n: f64, load: f64, b: f64) -> f64 {
    (n * b / (n - load * (1.0 - b))).clamp(0.0, 1.0)
}

/// Erlang C service level: fraction answered within `threshold`, `1 − C·e^{−(N−A)·t/AHT}`.
pub fn service_level(
    agents: u32,
    traffic: &Traffic,
    threshold: Duration,
) -> Result<f64, ErlangError> {
    Ok(erlang_c_metrics(agents, traffic, threshold)?.service_level)
}

/// Erlang C average speed of answer, `C·AHT / (N − A)`.
pub fn asa(agents: u32, traffic: &Traffic) -> Result<Duration, ErlangError> {
    Ok(erlang_c_metrics(agents, traffic, Duration::ZERO)?.asa)
}

/// Occupancy `A / N` (fraction of agent time busy when nobody abandons); needs `N > A`.
pub fn occupancy(agents: u32, traffic: &Traffic) -> Result<f64, ErlangError> {
    let n = check_agents(agents)?;
    let load = traffic.load();
    check_stable(agents, load)?;
    Ok(load / n)
}

/// All Erlang C figures for `agents` agents at once.
pub fn erlang_c_metrics(
    agents: u32,
    traffic: &Traffic,
    threshold: Duration,
) -> Result<ErlangC, ErlangError> {
    let n = check_agents(agents)?;
    let load = traffic.load();
    let c = erlang_c(agents, load)?;
    c_metrics(n, load, c, traffic.handle_time, threshold)
}

fn c_metrics(
    n: f64,
    load: f64,
    c: f64,
    handle_time: Duration,
    threshold: Duration,
) -> Result<ErlangC, ErlangError> {
    let aht = handle_time.as_secs_f64();
    let service_level =
        (1.0 - c * (-(n - load) * threshold.as_secs_f64() / aht).exp()).clamp(0.0, 1.0);
    Ok(ErlangC {
        p_wait: c,
        service_level,
        asa: duration_from_secs(c * aht / (n - load))?,
        occupancy: load / n,
    })
}

/// Fewest agents whose Erlang C service level (answered within `threshold`) reaches `target`
/// (a fraction, `0 < target < 1`; 0.8 for "80/20").
pub fn agents_needed(
    traffic: &Traffic,
    threshold: Duration,
    target: f64,
) -> Result<u32, ErlangError> {
    // `!(x > 0)` also rejects NaN.
    if !(target > 0.0 && target < 1.0) {
        return Err(ErlangError::InvalidTarget(target));
    }
    let load = traffic.load();
    // Service level rises to 1 super-exponentially once N passes A, so this bound is never
    // reached for a target below 1; it only keeps absurd loads from looping for ever.
    let limit = load + 50.0 * load.sqrt() + 1000.0;
    if limit > f64::from(u32::MAX - 1) {
        return Err(ErlangError::TooLarge("offered load"));
    }
    // Smallest stable staffing: the first integer above A.
    let mut agents = (load.floor() as u32).saturating_add(1);
    let mut b = erlang_b(agents, load)?;
    loop {
        let n = f64::from(agents);
        let c = c_from_b(n, load, b);
        let m = c_metrics(n, load, c, traffic.handle_time, threshold)?;
        if m.service_level >= target {
            return Ok(agents);
        }
        if n > limit {
            return Err(ErlangError::TooLarge("agents needed"));
        }
        agents += 1;
        b = load * b / (f64::from(agents) + load * b);
    }
}

/// Erlang A (M/M/N+M) figures for `agents` agents, callers with exponential `patience` (mean),
/// and service level measured at `threshold`. Works for `N <= A` too (abandonment keeps the
/// queue finite).
pub fn erlang_a(
    agents: u32,
    traffic: &Traffic,
    patience: Duration,
    threshold: Duration,
) -> Result<ErlangA, ErlangError> {
    /// Longest queue the truncated chain may need before we call the inputs unreasonable.
    const MAX_QUEUE: u64 = 20_000_000;
    /// Relative mass below which the chain's tail is dropped.
    const TAIL: f64 = 1e-16;

    let big_n = check_agents(agents)?;
    if patience.is_zero() {
        return Err(ErlangError::ZeroPatience);
    }
    let lambda = traffic.arrivals_per_second();
    let mu = 1.0 / traffic.handle_time.as_secs_f64();
    let theta = 1.0 / patience.as_secs_f64();
    let nmu = big_n * mu;
    let t = threshold.as_secs_f64();
    if lambda == 0.0 {
        return Ok(ErlangA {
            p_wait: 0.0,
            p_abandon: 0.0,
            service_level: 1.0,
            asa: Duration::ZERO,
            mean_wait: Duration::ZERO,
            occupancy: 0.0,
        });
    }
    let ln_lambda = lambda.ln();

    // Service-time-to-agent CDF for position j: 1 − I_x(alpha, j), I_x(alpha, j) = Σ_{b<j} t_b,
    // ln t_0 = alpha·ln x = −(Nμ + θ)·t, t_b / t_{b−1} = (1 − x)·(alpha + b − 1) / b.
    let alpha = nmu / theta + 1.0;
    let ln_one_minus_x = (-(-theta * t).exp_m1()).ln(); // −inf when t = 0: then only t_0 = 1.
    let mut ln_tb = -(nmu + theta) * t;
    let mut incomplete_beta = 0.0; // I_x(alpha, j) for the current j, built term by term.
    let mut harmonic = 0.0; // Σ_{i=1..j} 1 / (Nμ + iθ): mean time to reach an agent from j.

    // Accumulators, all scaled by e^{-scale} (rescaled whenever a bigger term appears).
    let mut scale = 0.0_f64;
    let mut total = 0.0; // Σ π_n
    let mut waiting = 0.0; // Σ_{n>=N} π_n: arrival has to wait
    let mut queue_len = 0.0; // Σ (n−N)+ π_n
    let mut abandon = 0.0; // Σ π_n · P(abandon | arrive at n)
    let mut within = 0.0; // Σ π_n · P(answered within t | arrive at n)
    let mut answered_wait = 0.0; // Σ π_n · E[W · 1{answered} | arrive at n]
    let mut busy = 0.0; // Σ min(n, N) π_n

    let mut ln_q = 0.0; // ln π_n (unnormalised), π_0 = 1
    let mut n: u64 = 0;
    loop {
        if ln_q > scale {
            let f = (scale - ln_q).exp();
            total *= f;
            waiting *= f;
            queue_len *= f;
            abandon *= f;
            within *= f;
            answered_wait *= f;
            busy *= f;
            scale = ln_q;
        }
        let w = (ln_q - scale).exp();
        total += w;
        let nf = n as f64;
        if nf < big_n {
            within += w;
            busy += nf * w;
        } else {
            let k = nf - big_n; // callers already queued
            let j = k + 1.0; // the arrival's position
            let p_served = nmu / (nmu + j * theta);
            // Advance the incomplete beta from I_x(alpha, j−1) to I_x(alpha, j).
            incomplete_beta += ln_tb.exp();
            ln_tb += ln_one_minus_x + (alpha + j - 1.0).ln() - j.ln();
            let cdf = (1.0 - incomplete_beta).clamp(0.0, 1.0);
            harmonic += 1.0 / (nmu + j * theta);

            waiting += w;
            queue_len += k * w;
            abandon += w * (1.0 - p_served);
            within += w * p_served * cdf;
            answered_wait += w * p_served * harmonic;
            busy += big_n * w;
        }

        // Next state.
        let next = nf + 1.0;
        let death = next.min(big_n) * mu + (next - big_n).max(0.0) * theta;
        let ratio = lambda / death;
        if nf >= big_n && ratio < 1.0 && w * ratio / (1.0 - ratio) < TAIL * total {
            // Ratios only fall from here on, so the whole tail is below this geometric bound.
            break;
        }
        if n.saturating_sub(u64::from(agents)) > MAX_QUEUE {
            return Err(ErlangError::TooLarge(
                "queue too long for the Erlang A chain (patience very long for an overload)",
            ));
        }
        ln_q += ln_lambda - death.ln();
        n += 1;
    }

    let p_abandon = (abandon / total).clamp(0.0, 1.0);
    let p_served = 1.0 - p_abandon;
    let asa = if answered_wait > 0.0 && p_served > 0.0 {
        answered_wait / total / p_served
    } else {
        0.0
    };
    Ok(ErlangA {
        p_wait: (waiting / total).clamp(0.0, 1.0),
        p_abandon,
        service_level: (within / total).clamp(0.0, 1.0),
        asa: duration_from_secs(asa)?,
        // Little's law on the queue: E[W] = E[queue length] / λ.
        mean_wait: duration_from_secs(queue_len / total / lambda)?,
        occupancy: (busy / total / big_n).clamp(0.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn erlang_b_small_values() {
        // B(1, A) = A / (1 + A); B(2, 1) = 1/5.
        assert!(close(erlang_b(1, 1.0).expect("valid"), 0.5, 1e-15));
        assert!(close(erlang_b(2, 1.0).expect("valid"), 0.2, 1e-15));
        assert_eq!(erlang_b(5, 0.0).expect("valid"), 0.0);
        // Allowed for N <= A, and stable for large N.
        let b = erlang_b(10_000, 9_000.0).expect("valid");
        assert!(b.is_finite() && b > 0.0 && b < 1.0);
    }

    #[test]
    fn worked_check_300_per_hour_aht_240() {
        let tr = Traffic::new(300.0, secs(240)).expect("valid");
        assert!(close(tr.load(), 20.0, 1e-12));
        assert_eq!(agents_needed(&tr, secs(20), 0.8).expect("reachable"), 25);
        let m = erlang_c_metrics(25, &tr, secs(20)).expect("stable");
        assert!(close(m.p_wait, 0.209, 0.0005), "{m:?}");
        assert!(close(m.service_level, 0.862, 0.0005), "{m:?}");
        assert!(close(m.asa.as_secs_f64(), 10.0, 0.05), "{m:?}");
        assert!(close(m.occupancy, 0.80, 1e-12));
        // 24 agents miss the target, which is what "smallest N" means.
        assert!(service_level(24, &tr, secs(20)).expect("stable") < 0.8);
    }

    #[test]
    fn worked_check_1200_per_hour_aht_180() {
        let tr = Traffic::new(1200.0, secs(180)).expect("valid");
        assert!(close(tr.load(), 60.0, 1e-12));
        assert_eq!(agents_needed(&tr, secs(20), 0.8).expect("reachable"), 66);
        let m = erlang_c_metrics(66, &tr, secs(20)).expect("stable");
        assert!(close(m.p_wait, 0.345, 0.0005), "{m:?}");
        assert!(close(m.service_level, 0.823, 0.0005), "{m:?}");
        assert!(close(m.asa.as_secs_f64(), 10.4, 0.05), "{m:?}");
        assert!(close(occupancy(66, &tr).expect("stable"), 0.909, 0.0005));
        assert!(close(
            asa(66, &tr).expect("stable").as_secs_f64(),
            10.4,
            0.05
        ));
        assert!(service_level(65, &tr, secs(20)).expect("stable") < 0.8);
    }

    #[test]
    fn single_agent_is_m_m_1() {
        // M/M/1: C = ρ, ASA = ρ/(1−ρ)·AHT.
        let tr = Traffic::new(9.0, secs(240)).expect("valid"); // ρ = 0.6
        let m = erlang_c_metrics(1, &tr, secs(0)).expect("stable");
        assert!(close(m.p_wait, 0.6, 1e-12));
        assert!(close(m.asa.as_secs_f64(), 360.0, 1e-6));
        assert!(close(m.service_level, 0.4, 1e-12));
    }

    #[test]
    fn out_of_range_inputs_are_errors_not_nan() {
        assert_eq!(erlang_b(0, 1.0), Err(ErlangError::ZeroAgents));
        assert_eq!(erlang_c(0, 1.0), Err(ErlangError::ZeroAgents));
        assert!(matches!(
            erlang_b(3, -1.0),
            Err(ErlangError::InvalidLoad(_))
        ));
        assert!(matches!(
            erlang_b(3, f64::NAN),
            Err(ErlangError::InvalidLoad(_))
        ));
        assert!(matches!(
            erlang_c(3, f64::INFINITY),
            Err(ErlangError::InvalidLoad(_))
        ));
        assert!(matches!(
            erlang_c(20, 20.0),
            Err(ErlangError::Unstable { .. })
        ));
        assert!(matches!(
            erlang_c(19, 20.0),
            Err(ErlangError::Unstable { .. })
        ));
        assert!(matches!(
            Traffic::new(-5.0, secs(10)),
            Err(ErlangError::InvalidArrivalRate(_))
        ));
        assert!(matches!(
            Traffic::new(f64::NAN, secs(10)),
            Err(ErlangError::InvalidArrivalRate(_))
        ));
        assert_eq!(
            Traffic::new(5.0, Duration::ZERO),
            Err(ErlangError::ZeroHandleTime)
        );
        let tr = Traffic::new(300.0, secs(240)).expect("valid");
        assert!(matches!(
            service_level(20, &tr, secs(20)),
            Err(ErlangError::Unstable { .. })
        ));
        assert!(matches!(asa(10, &tr), Err(ErlangError::Unstable { .. })));
        assert!(matches!(occupancy(0, &tr), Err(ErlangError::ZeroAgents)));
        for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert!(matches!(
                agents_needed(&tr, secs(20), bad),
                Err(ErlangError::InvalidTarget(_))
            ));
        }
        assert_eq!(
            erlang_a(0, &tr, secs(60), secs(20)),
            Err(ErlangError::ZeroAgents)
        );
        assert_eq!(
            erlang_a(25, &tr, Duration::ZERO, secs(20)),
            Err(ErlangError::ZeroPatience)
        );
    }

    #[test]
    fn zero_traffic() {
        let tr = Traffic::new(0.0, secs(240)).expect("valid");
        let m = erlang_c_metrics(1, &tr, secs(20)).expect("stable");
        assert_eq!(
            (m.p_wait, m.service_level, m.asa),
            (0.0, 1.0, Duration::ZERO)
        );
        assert_eq!(agents_needed(&tr, secs(20), 0.8).expect("reachable"), 1);
        let a = erlang_a(1, &tr, secs(60), secs(20)).expect("valid");
        assert_eq!((a.p_abandon, a.service_level), (0.0, 1.0));
    }

    #[test]
    fn erlang_a_approaches_erlang_c_as_patience_grows() {
        for (rate, aht, n) in [(300.0, 240, 25), (1200.0, 180, 66), (9.0, 240, 1)] {
            let tr = Traffic::new(rate, secs(aht)).expect("valid");
            let c = erlang_c_metrics(n, &tr, secs(20)).expect("stable");
            // Mean patience 10^8 s: P(abandon) = θ·E[W] is at most ~4e-6 here (M/M/1 waits
            // 360 s on average), so the two models agree to ~1e-5 (relative for waits).
            let a = erlang_a(n, &tr, secs(100_000_000), secs(20)).expect("valid");
            let wait_tol = 1e-4 * c.asa.as_secs_f64() + 1e-6;
            assert!(close(a.p_wait, c.p_wait, 1e-5), "{a:?} vs {c:?}");
            assert!(
                close(a.service_level, c.service_level, 1e-5),
                "{a:?} vs {c:?}"
            );
            assert!(
                close(a.asa.as_secs_f64(), c.asa.as_secs_f64(), wait_tol),
                "{a:?} vs {c:?}"
            );
            assert!(close(
                a.mean_wait.as_secs_f64(),
                c.asa.as_secs_f64(),
                wait_tol
            ));
            assert!(close(a.occupancy, c.occupancy, 1e-5), "{a:?} vs {c:?}");
            assert!(a.p_abandon < 1e-5);
        }
    }

    #[test]
    fn erlang_a_abandonment_equals_theta_times_mean_wait() {
        // P(abandon) is summed per arrival state from Nμ/(Nμ + jθ); E[W] comes from Little's law
        // on the queue length. The two only agree if the chain and the per-position law do.
        for (rate, aht, n, patience) in [
            (300.0, 240, 25, 60),
            (300.0, 240, 20, 120), // N = A: fine with abandonment
            (1200.0, 180, 55, 30), // overload
            (1200.0, 180, 66, 600),
            (50.0, 300, 2, 45),
        ] {
            let tr = Traffic::new(rate, secs(aht)).expect("valid");
            let a = erlang_a(n, &tr, secs(patience), secs(20)).expect("valid");
            let theta = 1.0 / patience as f64;
            let expected = theta * a.mean_wait.as_secs_f64();
            assert!(
                close(a.p_abandon, expected, 1e-9 + 1e-9 * expected),
                "{a:?}: P(ab) {} vs θE[W] {expected}",
                a.p_abandon
            );
            // Carried load = λ·(1 − P(ab))·AHT: occupancy from the chain must match it.
            let carried = tr.load() * (1.0 - a.p_abandon) / f64::from(n);
            assert!(close(a.occupancy, carried, 1e-9), "{a:?} vs {carried}");
            // Answered within t cannot exceed answered at all.
            assert!(a.service_level <= 1.0 - a.p_abandon + 1e-12);
            assert!(a.p_abandon <= a.p_wait);
        }
    }

    #[test]
    fn erlang_a_service_level_limits_and_monotonicity() {
        let tr = Traffic::new(300.0, secs(240)).expect("valid");
        // Threshold zero: answered within 0 s = found a free agent.
        let a0 = erlang_a(25, &tr, secs(60), Duration::ZERO).expect("valid");
        assert!(close(a0.service_level, 1.0 - a0.p_wait, 1e-12));
        // A huge threshold: everyone answered is answered within it.
        let inf = erlang_a(25, &tr, secs(60), secs(1_000_000)).expect("valid");
        assert!(close(inf.service_level, 1.0 - inf.p_abandon, 1e-9));
        // More agents: better service, fewer abandons; longer threshold: higher service level.
        let mut last = 0.0;
        for n in 18..30 {
            let a = erlang_a(n, &tr, secs(60), secs(20)).expect("valid");
            assert!(a.service_level > last);
            last = a.service_level;
        }
        let s10 = erlang_a(25, &tr, secs(60), secs(10))
            .expect("valid")
            .service_level;
        let s30 = erlang_a(25, &tr, secs(60), secs(30))
            .expect("valid")
            .service_level;
        assert!(s10 < s30);
    }

    #[test]
    fn erlang_a_single_agent_closed_form() {
        // M/M/1+M with θ = μ: an arrival finding n >= 1 is at position j = n and is served with
        // probability μ/(μ + nθ) = 1/(n + 1).
        let tr = Traffic::new(12.0, secs(300)).expect("valid"); // λ = 1/300, μ = 1/300: A = 1
        let a = erlang_a(1, &tr, secs(300), secs(0)).expect("valid");
        // With μ = θ the death rate in state n >= 1 is n·μ, so the chain is M/M/∞ with A = 1:
        // π_n = e^{-1}/n!. P(wait) = 1 − e^{-1}; P(ab) = Σ_{n>=1} π_n·n/(n+1).
        let e = (-1.0_f64).exp();
        let mut p_ab = 0.0;
        let mut fact = 1.0;
        for n in 1..40 {
            fact *= n as f64;
            p_ab += e / fact * n as f64 / (n as f64 + 1.0);
        }
        assert!(close(a.p_wait, 1.0 - e, 1e-12), "{a:?}");
        assert!(close(a.p_abandon, p_ab, 1e-12), "{a:?}");
        assert!(close(a.service_level, e, 1e-12), "{a:?}");
    }

    /// Brute force: the stationary chain by direct products, then the tagged caller's pure-death
    /// chain (position j -> j-1 at rate Nμ + (j−1)θ, abandon at θ) solved by uniformization.
    fn brute_force_service_level(n: u32, lambda: f64, mu: f64, theta: f64, t: f64) -> f64 {
        let big_n = f64::from(n);
        let states = 400;
        let mut pi = vec![1.0_f64; states];
        for s in 1..states {
            let death = (s as f64).min(big_n) * mu + (s as f64 - big_n).max(0.0) * theta;
            pi[s] = pi[s - 1] * lambda / death;
        }
        let z: f64 = pi.iter().sum();
        // Mass at position j (1-based) for arrivals that must wait; index 0 = answered.
        let mut p = vec![0.0_f64; states + 1];
        let mut immediate = 0.0;
        for (s, q) in pi.iter().enumerate() {
            if (s as f64) < big_n {
                immediate += q / z;
            } else {
                p[s - n as usize + 1] += q / z;
            }
        }
        let rate_max = big_n * mu + states as f64 * theta;
        let lt = rate_max * t;
        let mut poisson = (-lt).exp();
        let mut answered = 0.0;
        for k in 0..5000 {
            answered += poisson * p[0];
            let mut next = vec![0.0; p.len()];
            next[0] = p[0];
            for j in 1..p.len() {
                let advance = big_n * mu + (j as f64 - 1.0) * theta;
                let out = advance + theta;
                next[j - 1] += p[j] * advance / rate_max;
                next[j] += p[j] * (1.0 - out / rate_max);
            }
            p = next;
            poisson *= lt / (k as f64 + 1.0);
        }
        immediate + answered
    }

    #[test]
    fn erlang_a_service_level_matches_brute_force() {
        for (n, rate, aht, patience, t) in [
            (3_u32, 40.0, 240_u64, 90_u64, 20_u64),
            (5, 90.0, 180, 30, 15),
            (2, 40.0, 300, 600, 60),
        ] {
            let tr = Traffic::new(rate, secs(aht)).expect("valid");
            let a = erlang_a(n, &tr, secs(patience), secs(t)).expect("valid");
            let brute = brute_force_service_level(
                n,
                rate / 3600.0,
                1.0 / aht as f64,
                1.0 / patience as f64,
                t as f64,
            );
            assert!(close(a.service_level, brute, 1e-9), "{a:?} vs {brute}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]

        /// Any input gives an error or finite figures in range; never a panic or NaN.
        #[test]
        fn never_nan_never_panics(
            agents in 0_u32..150,
            rate in -100.0_f64..4000.0,
            aht_ms in 0_u64..1_000_000,
            patience_ms in 0_u64..2_000_000,
            threshold_ms in 0_u64..300_000,
            target in -0.5_f64..1.5,
        ) {
            let aht = Duration::from_millis(aht_ms);
            let threshold = Duration::from_millis(threshold_ms);
            let fraction = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
            if let Ok(tr) = Traffic::new(rate, aht) {
                if let Ok(m) = erlang_c_metrics(agents, &tr, threshold) {
                    proptest::prop_assert!(fraction(m.p_wait) && fraction(m.service_level));
                    proptest::prop_assert!(fraction(m.occupancy));
                }
                if let Ok(n) = agents_needed(&tr, threshold, target) {
                    let sl = service_level(n, &tr, threshold);
                    proptest::prop_assert!(sl.is_ok_and(|sl| sl >= target));
                }
                if let Ok(a) = erlang_a(agents, &tr, Duration::from_millis(patience_ms), threshold)
                {
                    for x in [a.p_wait, a.p_abandon, a.service_level, a.occupancy] {
                        proptest::prop_assert!(fraction(x), "{a:?}");
                    }
                    proptest::prop_assert!(a.service_level <= 1.0 - a.p_abandon + 1e-9);
                }
            }
        }
    }
}
