//! Router benchmark at contact-center scale: 10,000 agents with skills out of 200, 50 queues
//! requiring 1-3 skills, 100,000 waiting interactions while every agent is busy.
//!
//! Measured: the steady-state decision cycle (an agent completes with no wrap-up, the router
//! picks the next interaction for it and emits the offer, the agent accepts, a new interaction
//! arrives and waits), and an arrival matched at once to a free agent. A plain timing loop then
//! prints decisions per second and the latency distribution of single decisions.
// Benchmarks measure wall time, which the workspace's clippy.toml bans elsewhere (DESIGN rule 2).
#![allow(clippy::disallowed_methods)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};
use switchboard_model::{
    AgentId, Capacity, Channel, InteractionId, MonoTime, QueueId, SkillId, SkillLevel,
    SkillRequirement,
};
use switchboard_routing::*;

const AGENTS: u128 = 10_000;
const SKILLS: u128 = 200;
const QUEUES: u128 = 50;
const WAITING: usize = 100_000;

/// A router in steady state plus what the driver knows about it.
struct Fixture {
    router: Router,
    rng: StdRng,
    now: MonoTime,
    next_id: u128,
    /// Accepted interactions, oldest first.
    held: VecDeque<InteractionId>,
    decisions: u64,
}

fn queue_skills(rng: &mut StdRng) -> Vec<Vec<SkillRequirement>> {
    (0..QUEUES)
        .map(|_| {
            let n = rng.random_range(1..=3);
            let mut reqs: Vec<SkillRequirement> = Vec::new();
            while reqs.len() < n {
                let skill = SkillId::from_u128(rng.random_range(1..=SKILLS));
                if reqs.iter().all(|r| r.skill != skill) {
                    let min_level = rng.random_range(1..=4);
                    reqs.push(SkillRequirement { skill, min_level });
                }
            }
            reqs
        })
        .collect()
}

impl Fixture {
    /// `waiting` interactions left waiting once every agent is busy.
    fn new(waiting: usize) -> Fixture {
        let mut rng = StdRng::seed_from_u64(7);
        let mut router = Router::new(RouterConfig::default());
        let now = MonoTime::ZERO;
        let reqs = queue_skills(&mut rng);
        for (n, requirements) in reqs.iter().enumerate() {
            let mut relaxed = requirements.clone();
            relaxed.pop();
            router.handle_input(
                now,
                Input::QueueUpserted(QueueSpec {
                    id: QueueId::from_u128(n as u128 + 1),
                    priority: rng.random_range(0..3),
                    requirements: requirements.clone(),
                    offer_timeout: Duration::from_secs(20),
                    overflow: vec![OverflowRule {
                        after: Duration::from_secs(24 * 3600),
                        target: OverflowTarget::Skills(relaxed),
                    }],
                    expected_handle_time: Duration::from_secs(300),
                }),
            );
        }
        for n in 1..=AGENTS {
            // Skills of three queues (so every agent qualifies somewhere), plus five at random.
            let mut skills: Vec<SkillLevel> = Vec::new();
            for _ in 0..3 {
                for r in &reqs[rng.random_range(0..QUEUES as usize)] {
                    let level = rng.random_range(4..=10);
                    skills.push(SkillLevel {
                        skill: r.skill,
                        level,
                    });
                }
            }
            for _ in 0..5 {
                let skill = SkillId::from_u128(rng.random_range(1..=SKILLS));
                let level = rng.random_range(1..=10);
                skills.push(SkillLevel { skill, level });
            }
            let id = AgentId::from_u128(n);
            router.handle_input(
                now,
                Input::AgentUpserted(AgentSpec {
                    id,
                    skills,
                    capacity: Capacity::default(),
                }),
            );
            router.handle_input(
                now,
                Input::AgentPresence {
                    agent: id,
                    available: true,
                },
            );
        }
        let mut f = Fixture {
            router,
            rng,
            now,
            next_id: 0,
            held: VecDeque::new(),
            decisions: 0,
        };
        f.drain();
        while f.total_waiting() < waiting {
            for _ in 0..1000 {
                f.arrive();
            }
        }
        f.decisions = 0;
        f
    }

    fn total_waiting(&self) -> usize {
        (1..=QUEUES)
            .map(|n| {
                self.router
                    .queue_stats(QueueId::from_u128(n), self.now)
                    .map_or(0, |s| s.waiting)
            })
            .sum()
    }

    /// Accepts every offer and forgets the rest.
    fn drain(&mut self) {
        while let Some(out) = self.router.poll_output() {
            if let Output::Offer {
                interaction, agent, ..
            } = out
            {
                self.decisions += 1;
                self.router
                    .handle_input(self.now, Input::OfferAccepted { interaction, agent });
                self.held.push_back(interaction);
            }
        }
    }

    fn arrive(&mut self) {
        self.next_id += 1;
        let channel = if self.rng.random_range(0..5) == 0 {
            Channel::Chat
        } else {
            Channel::Voice
        };
        let queue = QueueId::from_u128(self.rng.random_range(1..=QUEUES));
        self.router.handle_input(
            self.now,
            Input::InteractionArrived(Arrival {
                id: InteractionId::from_u128(self.next_id),
                queue,
                channel,
                priority: None,
                waiting_since: None,
                skills: Vec::new(),
            }),
        );
        self.drain();
    }

    /// The oldest held interaction completes (the decision), then a new one arrives.
    fn complete(&mut self) {
        self.now += Duration::from_millis(1);
        let interaction = self.held.pop_front().expect("agents are busy");
        self.router.handle_input(
            self.now,
            Input::InteractionCompleted {
                interaction,
                wrap_up: Duration::ZERO,
            },
        );
    }

    fn cycle(&mut self) {
        self.complete();
        self.drain();
        self.arrive();
    }
}

/// A router with free agents and nothing waiting: each arrival is offered at once.
fn free_agents() -> Fixture {
    Fixture::new(0)
}

fn free_cycle(f: &mut Fixture) {
    f.now += Duration::from_millis(1);
    f.arrive(); // offered at once and accepted
    let interaction = f.held.pop_front().expect("just accepted");
    f.router.handle_input(
        f.now,
        Input::InteractionCompleted {
            interaction,
            wrap_up: Duration::ZERO,
        },
    );
    f.drain();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

/// Plain timing loop: latency of single decisions and overall decisions per second.
fn report(f: &mut Fixture, free: &mut Fixture) {
    const N: usize = 200_000;
    let mut lat = Vec::with_capacity(N);
    let start_decisions = f.decisions;
    let start = Instant::now();
    for _ in 0..N {
        let t0 = Instant::now();
        f.complete(); // the routing decision: frees the agent and makes the next offer
        lat.push(t0.elapsed());
        f.drain();
        f.arrive();
    }
    let wall = start.elapsed();
    let decisions = f.decisions - start_decisions;
    lat.sort_unstable();
    println!(
        "busy cycle (complete -> offer -> accept -> arrival), {} waiting: {decisions} decisions in {wall:?} = {:.0} decisions/s (whole cycle)",
        f.total_waiting(),
        decisions as f64 / wall.as_secs_f64()
    );
    println!(
        "  decision latency (complete -> offer): p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat[lat.len() - 1]
    );
    let mut lat = Vec::with_capacity(N);
    let start = Instant::now();
    for _ in 0..N {
        free.now += Duration::from_millis(1);
        let t0 = Instant::now();
        free.next_id += 1;
        free.router.handle_input(
            free.now,
            Input::InteractionArrived(Arrival {
                id: InteractionId::from_u128(free.next_id),
                queue: QueueId::from_u128(free.next_id % QUEUES + 1),
                channel: Channel::Voice,
                priority: None,
                waiting_since: None,
                skills: Vec::new(),
            }),
        );
        lat.push(t0.elapsed());
        free.drain();
        let interaction = free.held.pop_front().expect("just accepted");
        free.router.handle_input(
            free.now,
            Input::InteractionCompleted {
                interaction,
                wrap_up: Duration::ZERO,
            },
        );
        free.drain();
    }
    let wall = start.elapsed();
    lat.sort_unstable();
    println!(
        "free agents (arrival -> offer -> accept -> complete): {N} decisions in {wall:?} = {:.0} decisions/s (whole cycle)",
        N as f64 / wall.as_secs_f64()
    );
    println!(
        "  decision latency (arrival -> offer): p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat[lat.len() - 1]
    );
}

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut busy = Fixture::new(WAITING);
    println!(
        "setup: {AGENTS} agents, {QUEUES} queues, {} waiting, built in {:?}",
        busy.total_waiting(),
        t0.elapsed()
    );
    let mut free = free_agents();
    let mut group = c.benchmark_group("router");
    group.throughput(Throughput::Elements(1));
    group.bench_function("busy_cycle_complete_offer_accept_arrive", |b| {
        b.iter(|| busy.cycle());
    });
    group.bench_function("free_cycle_arrive_offer_accept_complete", |b| {
        b.iter(|| free_cycle(&mut free));
    });
    group.finish();
    black_box(busy.decisions + free.decisions);
    report(&mut busy, &mut free);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
