//! The contact-center simulator: Poisson arrivals, exponential handle times and (optionally)
//! exponential patience, routed by the **real** [`Router`] in simulated time.
//!
//! One queue, one skill, `N` identical voice agents with capacity one call, no wrap-up. A
//! discrete-event loop keeps future events (the next arrival; the end of each call; each waiting
//! caller's hang-up) in a min-heap keyed by `(time, sequence)`, interleaved with
//! [`Router::poll_timeout`]. Every offer is accepted at the instant it is made, so the queue's
//! offer timeout never fires. There is no clock and no sleeping: the same [`SimParams`] (seed
//! included) always give the same [`SimReport`].
//!
//! Statistics:
//! - **Warm-up**: the system starts empty, so arrivals in the first `max(1 hour, 1% of the run)`
//!   (but never more than 10% of the run) are routed but not counted, and agent time before it is
//!   not counted in occupancy.
//! - Counted arrivals are followed to their end: after the last arrival the loop runs on until
//!   every counted caller was answered or hung up, so `offered = answered + abandoned`.
//! - **Service level** is `answered within the threshold / offered` (abandoned calls count as
//!   offered and not answered in time, the glossary definition); `service_level_answered` is
//!   `answered within the threshold / answered`. A wait equal to the threshold is within it.
//! - **ASA** is the mean wait of answered calls; `abandonment_rate` is `abandoned / offered`;
//!   `occupancy` is busy agent time / (agents × measured time).
//! - Confidence half-widths come from 20 batch means (the measured time cut in 20 equal slices by
//!   arrival time, Student's t with 19 degrees of freedom), which accounts for the strong
//!   correlation between neighbouring callers' waits.
//! - A ratio whose denominator is zero is reported as 0.

use crate::erlang::{self, Traffic};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;
use switchboard_model::{
    AgentId, Capacity, Channel, InteractionId, MonoTime, QueueId, SkillId, SkillLevel,
    SkillRequirement,
};
use switchboard_routing::{AgentSpec, Arrival, Input, Output, QueueSpec, Router, RouterConfig};
use thiserror::Error;

/// Most agents a simulation may have.
pub const MAX_AGENTS: u32 = 100_000;
/// Most arrivals a simulation may expect (`arrivals_per_hour × hours`).
pub const MAX_EXPECTED_ARRIVALS: f64 = 1e9;
/// Longest simulated run, in hours (about 114 years).
pub const MAX_HOURS: f64 = 1e6;
/// Longest mean handle time or patience (7 days); keeps simulated times far from overflow.
pub const MAX_MEAN_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many arrivals pass between two calls of the progress callback.
pub const PROGRESS_EVERY: u64 = 10_000;

const NANOS_PER_HOUR: f64 = 3600e9;
const BATCHES: usize = 20;
/// Student's t quantile, 97.5%, 19 degrees of freedom (20 batches).
const T_975_19: f64 = 2.093;
/// Guard against a router whose `poll_timeout` stays due after `handle_timeout`.
const MAX_TIMEOUTS_AT_ONE_INSTANT: u32 = 100_000;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimParams {
    /// Identical agents, each taking one call at a time.
    pub agents: u32,
    /// Poisson arrival rate, calls per hour.
    pub arrivals_per_hour: f64,
    /// Mean handle time (exponentially distributed).
    pub handle_time: Duration,
    /// Simulated time, hours (warm-up included).
    pub hours: f64,
    /// Service-level threshold: answered within this counts as "in service level".
    pub sl_threshold: Duration,
    /// Mean patience (exponentially distributed); `None`: nobody hangs up while waiting.
    pub patience: Option<Duration>,
    /// Seed of the random streams.
    pub seed: u64,
}

impl SimParams {
    /// Parameters with the defaults for the rest: 20 s threshold, no abandonment, seed 0.
    pub fn new(agents: u32, arrivals_per_hour: f64, handle_time: Duration, hours: f64) -> Self {
        SimParams {
            agents,
            arrivals_per_hour,
            handle_time,
            hours,
            sl_threshold: Duration::from_secs(20),
            patience: None,
            seed: 0,
        }
    }

    /// Expected number of arrivals, `arrivals_per_hour × hours`.
    pub fn expected_arrivals(&self) -> f64 {
        self.arrivals_per_hour * self.hours
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.agents == 0 || self.agents > MAX_AGENTS {
            return Err(SimError::Agents(self.agents));
        }
        if !(self.arrivals_per_hour.is_finite() && self.arrivals_per_hour > 0.0) {
            return Err(SimError::ArrivalRate(self.arrivals_per_hour));
        }
        if self.handle_time.is_zero() || self.handle_time > MAX_MEAN_DURATION {
            return Err(SimError::HandleTime(self.handle_time));
        }
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= MAX_HOURS) {
            return Err(SimError::Hours(self.hours));
        }
        if let Some(p) = self.patience
            && (p.is_zero() || p > MAX_MEAN_DURATION)
        {
            return Err(SimError::Patience(p));
        }
        if self.expected_arrivals() > MAX_EXPECTED_ARRIVALS {
            return Err(SimError::TooLarge(self.expected_arrivals()));
        }
        Ok(())
    }
}

/// Why a simulation could not run or finish.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    /// Agents outside `1..=MAX_AGENTS`.
    #[error("agents must be between 1 and {MAX_AGENTS}, got {0}")]
    Agents(u32),
    /// Arrival rate not a finite number above zero.
    #[error("arrivals per hour must be a finite number above 0, got {0}")]
    ArrivalRate(f64),
    /// Mean handle time zero or longer than [`MAX_MEAN_DURATION`].
    #[error("mean handle time must be above 0 and at most 7 days, got {0:?}")]
    HandleTime(Duration),
    /// Hours not a finite number in `(0, MAX_HOURS]`.
    #[error("hours must be above 0 and at most {MAX_HOURS}, got {0}")]
    Hours(f64),
    /// Mean patience zero or longer than [`MAX_MEAN_DURATION`].
    #[error("mean patience must be above 0 and at most 7 days, got {0:?}")]
    Patience(Duration),
    /// More arrivals expected than [`MAX_EXPECTED_ARRIVALS`].
    #[error("{0:.0} arrivals expected; at most {MAX_EXPECTED_ARRIVALS:.0} are simulated")]
    TooLarge(f64),
    /// The router did something a single-queue simulation never expects (a router or driver bug).
    #[error("unexpected router behaviour: {0}")]
    Router(String),
}

/// What a simulation measured, next to what Erlang C or A predicts for the same inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// Agents simulated.
    pub agents: u32,
    /// Arrival rate, calls per hour.
    pub arrivals_per_hour: f64,
    /// Mean handle time, seconds.
    pub handle_time_s: f64,
    /// Service-level threshold, seconds.
    pub sl_threshold_s: f64,
    /// Mean patience, seconds; `None` when nobody abandons.
    pub patience_s: Option<f64>,
    /// Seed used.
    pub seed: u64,
    /// Simulated hours, warm-up included.
    pub simulated_hours: f64,
    /// Hours at the start whose arrivals were not counted.
    pub warm_up_hours: f64,
    /// Hours whose arrivals were counted (`simulated_hours − warm_up_hours`).
    pub measured_hours: f64,
    /// Counted arrivals (`answered + abandoned`).
    pub offered: u64,
    /// Counted arrivals answered by an agent.
    pub answered: u64,
    /// Counted arrivals that hung up while waiting.
    pub abandoned: u64,
    /// Answered within the threshold / offered (abandoned calls count as offered).
    pub service_level: f64,
    /// Half-width of the 95% confidence interval of `service_level` (batch means).
    pub service_level_ci95: f64,
    /// Answered within the threshold / answered.
    pub service_level_answered: f64,
    /// Fraction of offered calls that did not reach an agent at once.
    pub p_wait: f64,
    /// Average speed of answer: mean wait of answered calls, seconds.
    pub asa_s: f64,
    /// Half-width of the 95% confidence interval of `asa_s` (batch means), seconds.
    pub asa_ci95_s: f64,
    /// Longest wait of an answered call, seconds.
    pub max_wait_s: f64,
    /// Abandoned / offered.
    pub abandonment_rate: f64,
    /// Half-width of the 95% confidence interval of `abandonment_rate` (batch means).
    pub abandonment_rate_ci95: f64,
    /// Busy agent time / (agents × measured time).
    pub occupancy: f64,
    /// Mean handle time of the answered calls, seconds.
    pub mean_handle_time_s: f64,
    /// Which model the `erlang_*` figures come from: `"erlang_c"` or `"erlang_a"` (with patience).
    pub erlang_model: &'static str,
    /// Predicted probability of waiting; `None` when the model has no answer (Erlang C, N <= A).
    pub erlang_p_wait: Option<f64>,
    /// Predicted service level (answered within the threshold / offered).
    pub erlang_service_level: Option<f64>,
    /// Predicted ASA (mean wait of answered calls), seconds.
    pub erlang_asa_s: Option<f64>,
    /// Predicted abandonment rate (0 for Erlang C).
    pub erlang_abandonment_rate: Option<f64>,
    /// Predicted occupancy.
    pub erlang_occupancy: Option<f64>,
    /// Erlang C's service level even when callers abandon (to show how far it is off then).
    pub erlang_c_service_level: Option<f64>,
}

/// A future event of the simulation (arrivals are kept apart: there is only ever one pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The call ends; the agent is free (no wrap-up).
    Complete(u64),
    /// The caller's patience runs out; hangs up if still waiting.
    Abandon(u64),
}

/// Callers waiting for an agent, by sequence number: a window that only grows at the back, with
/// holes for callers who were answered or hung up out of order.
#[derive(Debug)]
struct Waiting {
    base: u64,
    slots: VecDeque<Option<u64>>,
    len: usize,
}

impl Waiting {
    fn new(first_id: u64) -> Self {
        Waiting {
            base: first_id,
            slots: VecDeque::new(),
            len: 0,
        }
    }

    fn push(&mut self, id: u64, arrived_ns: u64) {
        debug_assert_eq!(id, self.base + self.slots.len() as u64);
        self.slots.push_back(Some(arrived_ns));
        self.len += 1;
    }

    /// Removes a waiting caller, returning its arrival time.
    fn take(&mut self, id: u64) -> Option<u64> {
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        let arrived = self.slots.get_mut(index)?.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(arrived)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Counters of one batch (a slice of the measured time, by arrival time).
#[derive(Debug, Default, Clone, Copy)]
struct Batch {
    offered: u64,
    answered: u64,
    abandoned: u64,
    within: u64,
    waited: u64,
    wait_ns: u128,
    max_wait_ns: u64,
    handle_ns: u128,
}

/// Mean of `value(batch)` over the batches where it is defined, and the 95% half-width.
fn batch_ci(batches: &[Batch], value: impl Fn(&Batch) -> Option<f64>) -> f64 {
    let xs: Vec<f64> = batches.iter().filter_map(value).collect();
    if xs.len() < 2 {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    // t quantile for 19 degrees of freedom; with fewer (empty batches) it is a slight underestimate.
    T_975_19 * (var / n).sqrt()
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// An exponential sample with the given mean, in whole nanoseconds: `−ln(1 − U)·mean`.
fn exp_ns(rng: &mut StdRng, mean_ns: f64) -> u64 {
    let u: f64 = rng.random();
    // 1 − U is in (0, 1], so the logarithm is finite; `as` saturates the (at most ~37×mean)
    // result.
    (-(1.0 - u).ln() * mean_ns) as u64
}

fn mono(ns: u64) -> MonoTime {
    MonoTime::from_duration(Duration::from_nanos(ns))
}

fn mono_ns(t: MonoTime) -> u64 {
    u64::try_from(t.since_origin().as_nanos()).unwrap_or(u64::MAX)
}

fn interaction(id: u64) -> InteractionId {
    InteractionId::from_u128(u128::from(id))
}

fn interaction_seq(id: InteractionId) -> Result<u64, SimError> {
    u64::try_from(id.uuid().as_u128())
        .map_err(|_| SimError::Router(format!("offered an interaction it was never given: {id}")))
}

/// Runs the simulation. `progress(done, expected)` is called every [`PROGRESS_EVERY`] arrivals
/// with the arrivals so far and the expected total, and once at the end with `(done, done)`.
pub fn simulate(
    params: &SimParams,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimReport, SimError> {
    params.validate()?;
    let mut sim = Sim::new(params);
    sim.run(progress)?;
    Ok(sim.report())
}

struct Sim<'a> {
    params: &'a SimParams,
    router: Router,
    rng: StdRng,
    queue: QueueId,
    /// Future completions and hang-ups, earliest first; the sequence number breaks ties.
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    event_seq: u64,
    waiting: Waiting,
    now_ns: u64,
    end_ns: u64,
    warm_ns: u64,
    batch_ns: f64,
    arrival_mean_ns: f64,
    handle_mean_ns: f64,
    patience_mean_ns: Option<f64>,
    threshold_ns: u64,
    /// Calls connected right now (agents busy, since capacity is one call).
    busy: u64,
    /// Busy agent-nanoseconds inside the measured window.
    busy_ns: u128,
    arrivals: u64,
    batches: [Batch; BATCHES],
}

impl<'a> Sim<'a> {
    fn new(params: &'a SimParams) -> Self {
        let end_ns = (params.hours * NANOS_PER_HOUR) as u64;
        // Warm-up: max(1 h, 1% of the run), at most 10% of the run.
        let warm_hours = (1.0_f64).max(0.01 * params.hours).min(0.1 * params.hours);
        let warm_ns = (warm_hours * NANOS_PER_HOUR) as u64;
        Sim {
            params,
            router: Router::new(RouterConfig::default()),
            rng: StdRng::seed_from_u64(params.seed),
            queue: QueueId::from_u128(1),
            events: BinaryHeap::new(),
            event_seq: 0,
            waiting: Waiting::new(1), // callers are numbered from 1
            now_ns: 0,
            end_ns,
            warm_ns,
            batch_ns: (end_ns - warm_ns).max(1) as f64 / BATCHES as f64,
            arrival_mean_ns: NANOS_PER_HOUR / params.arrivals_per_hour,
            handle_mean_ns: params.handle_time.as_nanos() as f64,
            patience_mean_ns: params.patience.map(|p| p.as_nanos() as f64),
            threshold_ns: u64::try_from(params.sl_threshold.as_nanos()).unwrap_or(u64::MAX),
            busy: 0,
            busy_ns: 0,
            arrivals: 0,
            batches: [Batch::default(); BATCHES],
        }
    }

    fn batch(&mut self, arrived_ns: u64) -> Option<&mut Batch> {
        if arrived_ns < self.warm_ns {
            return None;
        }
        let index = ((arrived_ns - self.warm_ns) as f64 / self.batch_ns) as usize;
        Some(&mut self.batches[index.min(BATCHES - 1)])
    }

    fn schedule(&mut self, at_ns: u64, event: Event) {
        self.events.push(Reverse((at_ns, self.event_seq, event)));
        self.event_seq += 1;
    }

    /// Moves the clock to `to_ns`, adding busy agent time that falls in the measured window.
    fn advance(&mut self, to_ns: u64) {
        let from = self.now_ns.max(self.warm_ns);
        let to = to_ns.min(self.end_ns);
        if to > from {
            self.busy_ns += u128::from(self.busy) * u128::from(to - from);
        }
        self.now_ns = self.now_ns.max(to_ns);
    }

    fn setup(&mut self) -> Result<(), SimError> {
        let skill = SkillId::from_u128(1);
        let spec = QueueSpec {
            id: self.queue,
            priority: 0,
            requirements: vec![SkillRequirement {
                skill,
                min_level: 1,
            }],
            // Offers are accepted at the instant they are made, so this never fires.
            offer_timeout: Duration::from_secs(3600),
            overflow: Vec::new(),
            expected_handle_time: self.params.handle_time,
        };
        let now = MonoTime::ZERO;
        self.router.handle_input(now, Input::QueueUpserted(spec));
        let mut capacity = Capacity {
            per_channel: Default::default(),
            voice_exclusive: true,
        };
        capacity.per_channel.insert(Channel::Voice, 1);
        for a in 0..self.params.agents {
            let agent = AgentId::from_u128(u128::from(a) + 1);
            self.router.handle_input(
                now,
                Input::AgentUpserted(AgentSpec {
                    id: agent,
                    skills: vec![SkillLevel { skill, level: 5 }],
                    capacity: capacity.clone(),
                }),
            );
            self.router.handle_input(
                now,
                Input::AgentPresence {
                    agent,
                    available: true,
                },
            );
        }
        self.drain()
    }

    fn run(&mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<(), SimError> {
        self.setup()?;
        let expected = self.params.expected_arrivals().round() as u64;
        let mut next_arrival = exp_ns(&mut self.rng, self.arrival_mean_ns);
        // (instant, count) of consecutive timeouts handled at one instant.
        let mut timeouts_here = (u64::MAX, 0_u32);
        loop {
            let arrival = (next_arrival < self.end_ns).then_some(next_arrival);
            let event = self.events.peek().map(|Reverse((t, _, _))| *t);
            let timer = self.router.poll_timeout().map(mono_ns);
            // Done once arrivals stopped, every counted caller is resolved, and the measured
            // window is over (busy time up to its end is known).
            if arrival.is_none()
                && self.waiting.is_empty()
                && event.is_none_or(|t| t >= self.end_ns)
            {
                break;
            }
            let Some(at) = [arrival, event, timer].into_iter().flatten().min() else {
                // Nothing in service, nothing due, yet callers wait: the router stopped offering.
                return Err(SimError::Router(format!(
                    "{} callers left waiting while every agent is free",
                    self.waiting.len
                )));
            };
            let at = at.max(self.now_ns);
            self.advance(at);
            let now = mono(at);
            if timer.is_some_and(|t| t <= at) {
                timeouts_here = if timeouts_here.0 == at {
                    (at, timeouts_here.1 + 1)
                } else {
                    (at, 1)
                };
                if timeouts_here.1 > MAX_TIMEOUTS_AT_ONE_INSTANT {
                    return Err(SimError::Router(format!(
                        "poll_timeout stays due at {now:?} after handle_timeout"
                    )));
                }
                self.router.handle_timeout(now);
            } else if event.is_some_and(|t| t <= at) {
                if let Some(Reverse((_, _, ev))) = self.events.pop() {
                    self.handle_event(now, ev);
                }
            } else {
                let id = self.arrivals + 1;
                self.arrivals += 1;
                self.waiting.push(id, at);
                if let Some(mean) = self.patience_mean_ns {
                    let patience = exp_ns(&mut self.rng, mean);
                    self.schedule(at.saturating_add(patience), Event::Abandon(id));
                }
                self.router.handle_input(
                    now,
                    Input::InteractionArrived(Arrival {
                        id: interaction(id),
                        queue: self.queue,
                        channel: Channel::Voice,
                        priority: None,
                        waiting_since: None,
                        skills: Vec::new(),
                    }),
                );
                next_arrival = at.saturating_add(exp_ns(&mut self.rng, self.arrival_mean_ns));
                if self.arrivals.is_multiple_of(PROGRESS_EVERY) {
                    progress(self.arrivals, expected.max(self.arrivals));
                }
            }
            self.drain()?;
        }
        self.advance(self.end_ns);
        progress(self.arrivals, self.arrivals);
        Ok(())
    }

    fn handle_event(&mut self, now: MonoTime, event: Event) {
        match event {
            Event::Complete(id) => {
                self.busy -= 1;
                self.router.handle_input(
                    now,
                    Input::InteractionCompleted {
                        interaction: interaction(id),
                        wrap_up: Duration::ZERO,
                    },
                );
            }
            Event::Abandon(id) => {
                if let Some(arrived) = self.waiting.take(id) {
                    if let Some(b) = self.batch(arrived) {
                        b.offered += 1;
                        b.abandoned += 1;
                        b.waited += 1;
                    }
                    self.router
                        .handle_input(now, Input::InteractionWithdrawn(interaction(id)));
                }
            }
        }
    }

    /// Handles the router's outputs until it has none: accepts every offer on the spot.
    fn drain(&mut self) -> Result<(), SimError> {
        let now = mono(self.now_ns);
        while let Some(output) = self.router.poll_output() {
            match output {
                Output::Offer {
                    interaction: offered,
                    agent,
                    ..
                } => {
                    let id = interaction_seq(offered)?;
                    let arrived = self.waiting.take(id).ok_or_else(|| {
                        SimError::Router(format!("offered {offered}, which is not waiting"))
                    })?;
                    self.router.handle_input(
                        now,
                        Input::OfferAccepted {
                            interaction: offered,
                            agent,
                        },
                    );
                    self.busy += 1;
                    let handle = exp_ns(&mut self.rng, self.handle_mean_ns);
                    let wait = self.now_ns - arrived;
                    let threshold = self.threshold_ns;
                    if let Some(b) = self.batch(arrived) {
                        b.offered += 1;
                        b.answered += 1;
                        b.within += u64::from(wait <= threshold);
                        b.waited += u64::from(wait > 0);
                        b.wait_ns += u128::from(wait);
                        b.max_wait_ns = b.max_wait_ns.max(wait);
                        b.handle_ns += u128::from(handle);
                    }
                    self.schedule(self.now_ns.saturating_add(handle), Event::Complete(id));
                }
                Output::EstimatedWait { .. } | Output::WrapUpFinished { .. } => {}
                other => return Err(SimError::Router(format!("{other:?}"))),
            }
        }
        Ok(())
    }

    fn report(&self) -> SimReport {
        let p = self.params;
        let mut t = Batch::default();
        for b in &self.batches {
            t.offered += b.offered;
            t.answered += b.answered;
            t.abandoned += b.abandoned;
            t.within += b.within;
            t.waited += b.waited;
            t.wait_ns += b.wait_ns;
            t.max_wait_ns = t.max_wait_ns.max(b.max_wait_ns);
            t.handle_ns += b.handle_ns;
        }
        let per_answered_s = |ns: u128, answered: u64| {
            if answered == 0 {
                0.0
            } else {
                ns as f64 / answered as f64 / 1e9
            }
        };
        let measured_ns = self.end_ns - self.warm_ns;
        let agent_ns = f64::from(p.agents) * measured_ns as f64;
        let (model, prediction) = erlang_prediction(p);
        let erlang_c_service_level = Traffic::new(p.arrivals_per_hour, p.handle_time)
            .and_then(|tr| erlang::service_level(p.agents, &tr, p.sl_threshold))
            .ok();
        SimReport {
            agents: p.agents,
            arrivals_per_hour: p.arrivals_per_hour,
            handle_time_s: p.handle_time.as_secs_f64(),
            sl_threshold_s: p.sl_threshold.as_secs_f64(),
            patience_s: p.patience.map(|d| d.as_secs_f64()),
            seed: p.seed,
            simulated_hours: p.hours,
            warm_up_hours: self.warm_ns as f64 / NANOS_PER_HOUR,
            measured_hours: measured_ns as f64 / NANOS_PER_HOUR,
            offered: t.offered,
            answered: t.answered,
            abandoned: t.abandoned,
            service_level: ratio(t.within, t.offered),
            service_level_ci95: batch_ci(&self.batches, |b| {
                (b.offered > 0).then(|| ratio(b.within, b.offered))
            }),
            service_level_answered: ratio(t.within, t.answered),
            p_wait: ratio(t.waited, t.offered),
            asa_s: per_answered_s(t.wait_ns, t.answered),
            asa_ci95_s: batch_ci(&self.batches, |b| {
                (b.answered > 0).then(|| per_answered_s(b.wait_ns, b.answered))
            }),
            max_wait_s: t.max_wait_ns as f64 / 1e9,
            abandonment_rate: ratio(t.abandoned, t.offered),
            abandonment_rate_ci95: batch_ci(&self.batches, |b| {
                (b.offered > 0).then(|| ratio(b.abandoned, b.offered))
            }),
            occupancy: if agent_ns > 0.0 {
                self.busy_ns as f64 / agent_ns
            } else {
                0.0
            },
            mean_handle_time_s: per_answered_s(t.handle_ns, t.answered),
            erlang_model: model,
            erlang_p_wait: prediction.map(|m| m.p_wait),
            erlang_service_level: prediction.map(|m| m.service_level),
            erlang_asa_s: prediction.map(|m| m.asa_s),
            erlang_abandonment_rate: prediction.map(|m| m.abandonment_rate),
            erlang_occupancy: prediction.map(|m| m.occupancy),
            erlang_c_service_level,
        }
    }
}

/// One model's figures, flattened for the report.
#[derive(Debug, Clone, Copy)]
struct Prediction {
    p_wait: f64,
    service_level: f64,
    asa_s: f64,
    abandonment_rate: f64,
    occupancy: f64,
}

/// Erlang A when callers have a patience, Erlang C otherwise; `None` where the model has no
/// answer (Erlang C with agents <= load).
fn erlang_prediction(p: &SimParams) -> (&'static str, Option<Prediction>) {
    let Ok(traffic) = Traffic::new(p.arrivals_per_hour, p.handle_time) else {
        return ("erlang_c", None);
    };
    match p.patience {
        Some(patience) => (
            "erlang_a",
            erlang::erlang_a(p.agents, &traffic, patience, p.sl_threshold)
                .ok()
                .map(|m| Prediction {
                    p_wait: m.p_wait,
                    service_level: m.service_level,
                    asa_s: m.asa.as_secs_f64(),
                    abandonment_rate: m.p_abandon,
                    occupancy: m.occupancy,
                }),
        ),
        None => (
            "erlang_c",
            erlang::erlang_c_metrics(p.agents, &traffic, p.sl_threshold)
                .ok()
                .map(|m| Prediction {
                    p_wait: m.p_wait,
                    service_level: m.service_level,
                    asa_s: m.asa.as_secs_f64(),
                    abandonment_rate: 0.0,
                    occupancy: m.occupancy,
                }),
        ),
    }
}
