//! Property tests: random input sequences on virtual time against a shadow model rebuilt from
//! the router's own outputs. The shadow is brute force (no indexes), so it checks the router's
//! indexes: capacity is never exceeded, nothing is offered twice or lost, order holds within a
//! bucket, no (waiting interaction, free eligible agent) pair is left unmatched, and timers never
//! lie in the past.

mod common;

use common::{a, i, q, s};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_model::{Capacity, Channel, MonoTime, SkillLevel, SkillRequirement};
use switchboard_routing::*;

const CHANNELS: [Channel; 3] = [Channel::Voice, Channel::Chat, Channel::Email];
const QUEUES: u128 = 3;
const AGENTS: u128 = 4;

#[derive(Debug, Clone)]
enum Op {
    UpsertQueue(QueueSpec),
    RemoveQueue(u128),
    UpsertAgent(AgentSpec),
    RemoveAgent(u128),
    Presence(u128, bool),
    Arrive {
        queue: u128,
        channel: Channel,
        priority: Option<i32>,
        back_ms: Option<u64>,
        own: Vec<SkillRequirement>,
    },
    ArriveAgain(usize),
    Withdraw(usize),
    Accept(usize, bool),
    Reject(usize, bool),
    Complete(usize, u64),
    Release(usize),
    Priority(usize, i32),
    Restore(u128, Channel),
    Advance(u64),
}

fn reqs() -> impl Strategy<Value = Vec<SkillRequirement>> {
    prop::collection::vec((1..=3u128, 1..=6u8), 0..=2).prop_map(|v| {
        v.into_iter()
            .map(|(sk, min_level)| SkillRequirement {
                skill: s(sk),
                min_level,
            })
            .collect()
    })
}

fn queue_spec() -> impl Strategy<Value = QueueSpec> {
    let rule = (
        0..40u64,
        prop_oneof![
            reqs().prop_map(OverflowTarget::Skills),
            (1..=QUEUES + 1).prop_map(|n| OverflowTarget::Queue(q(n))),
        ],
    )
        .prop_map(|(after, target)| OverflowRule {
            after: Duration::from_secs(after),
            target,
        });
    (
        1..=QUEUES,
        0..3i32,
        reqs(),
        1..30u64,
        prop::collection::vec(rule, 0..=2),
        1..300u64,
    )
        .prop_map(
            |(n, priority, requirements, timeout, overflow, aht)| QueueSpec {
                id: q(n),
                priority,
                requirements,
                offer_timeout: Duration::from_secs(timeout),
                overflow,
                expected_handle_time: Duration::from_secs(aht),
            },
        )
}

fn agent_spec() -> impl Strategy<Value = AgentSpec> {
    (
        1..=AGENTS,
        prop::collection::vec((1..=3u128, 1..=10u8), 0..=4),
        prop::collection::vec(0..=3u16, 3),
        any::<bool>(),
    )
        .prop_map(|(n, skills, caps, voice_exclusive)| AgentSpec {
            id: a(n),
            skills: skills
                .into_iter()
                .map(|(sk, level)| SkillLevel {
                    skill: s(sk),
                    level,
                })
                .collect(),
            capacity: Capacity {
                per_channel: CHANNELS.into_iter().zip(caps).collect(),
                voice_exclusive,
            },
        })
}

fn channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(CHANNELS.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => queue_spec().prop_map(Op::UpsertQueue),
        1 => (1..=QUEUES + 1).prop_map(Op::RemoveQueue),
        3 => agent_spec().prop_map(Op::UpsertAgent),
        1 => (1..=AGENTS + 1).prop_map(Op::RemoveAgent),
        4 => (1..=AGENTS + 1, prop::bool::weighted(0.8)).prop_map(|(n, b)| Op::Presence(n, b)),
        8 => (1..=QUEUES + 1, channel(), prop::option::of(0..3i32), prop::option::of(0..60_000u64), prop_oneof![3 => Just(Vec::new()), 1 => reqs()])
            .prop_map(|(queue, channel, priority, back_ms, own)| Op::Arrive { queue, channel, priority, back_ms, own }),
        1 => any::<usize>().prop_map(Op::ArriveAgain),
        2 => any::<usize>().prop_map(Op::Withdraw),
        5 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(n, w)| Op::Accept(n, w)),
        3 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(n, w)| Op::Reject(n, w)),
        4 => (any::<usize>(), prop_oneof![Just(0u64), 1..20u64]).prop_map(|(n, w)| Op::Complete(n, w)),
        1 => any::<usize>().prop_map(Op::Release),
        1 => (any::<usize>(), 0..4i32).prop_map(|(n, p)| Op::Priority(n, p)),
        1 => (1..=AGENTS + 1, channel()).prop_map(|(n, c)| Op::Restore(n, c)),
        6 => prop_oneof![0..2_000u64, 0..40_000u64].prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Waiting,
    Offered(u128),
    Held(u128),
    Wrap(u128),
    Done,
}

#[derive(Debug, Clone)]
struct Ix {
    queue: Option<u128>,
    channel: Channel,
    priority: i32,
    since: MonoTime,
    seq: u64,
    variant: usize,
    /// Its own skills (needed besides the queue's at the base stage).
    own: Vec<SkillRequirement>,
    state: St,
    cooldowns: Vec<(u128, MonoTime)>,
}

/// Requirements as a set: sorted by skill, the highest least level of a skill kept.
fn norm(reqs: &[SkillRequirement]) -> Vec<SkillRequirement> {
    let mut v = reqs.to_vec();
    v.sort_by(|a, b| a.skill.cmp(&b.skill).then(b.min_level.cmp(&a.min_level)));
    v.dedup_by_key(|r| r.skill);
    v
}

impl Ix {
    fn key(&self) -> (std::cmp::Reverse<i32>, MonoTime, u64) {
        (std::cmp::Reverse(self.priority), self.since, self.seq)
    }
    fn excludes(&self, agent: u128, now: MonoTime) -> bool {
        self.cooldowns
            .iter()
            .any(|&(ag, until)| ag == agent && until > now)
    }
}

#[derive(Debug, Default)]
struct Shadow {
    now: MonoTime,
    seq: u64,
    queues: BTreeMap<u128, QueueSpec>,
    agents: BTreeMap<u128, (AgentSpec, bool)>,
    ixs: BTreeMap<u128, Ix>,
    next_id: u128,
}

fn num(id: impl Into<uuid_like::Any>) -> u128 {
    id.into().0
}

/// Turns the model's ids back into numbers.
mod uuid_like {
    use switchboard_model::{AgentId, InteractionId, QueueId};
    pub struct Any(pub u128);
    impl From<AgentId> for Any {
        fn from(x: AgentId) -> Any {
            Any(x.uuid().as_u128())
        }
    }
    impl From<QueueId> for Any {
        fn from(x: QueueId) -> Any {
            Any(x.uuid().as_u128())
        }
    }
    impl From<InteractionId> for Any {
        fn from(x: InteractionId) -> Any {
            Any(x.uuid().as_u128())
        }
    }
}

impl Shadow {
    fn level(&self, agent: u128, skill: u128) -> Option<u8> {
        self.agents[&agent]
            .0
            .skills
            .iter()
            .filter(|sl| sl.skill == s(skill))
            .map(|sl| sl.level)
            .max()
    }

    fn requirement(&self, ix: &Ix) -> Vec<SkillRequirement> {
        let spec = &self.queues[&ix.queue.expect("queued")];
        if ix.variant == 0 {
            let mut all = spec.requirements.clone();
            all.extend(&ix.own);
            return norm(&all);
        }
        match &spec.overflow[ix.variant - 1].target {
            OverflowTarget::Skills(r) => r.clone(),
            OverflowTarget::Queue(_) => panic!("variant points at a queue rule"),
        }
    }

    fn eligible(&self, agent: u128, ix: &Ix) -> bool {
        self.requirement(ix).iter().all(|r| {
            self.level(agent, r.skill.uuid().as_u128())
                .is_some_and(|l| l >= r.min_level)
        })
    }

    fn load(&self, agent: u128, channel: Channel) -> u16 {
        self.ixs
            .values()
            .filter(|x| x.channel == channel)
            .filter(|x| matches!(x.state, St::Offered(g) | St::Held(g) | St::Wrap(g) if g == agent))
            .count() as u16
    }

    fn has_free(&self, agent: u128, channel: Channel) -> bool {
        let cap = &self.agents[&agent].0.capacity;
        if self.load(agent, channel) >= cap.of(channel) {
            return false;
        }
        if cap.voice_exclusive {
            let total: u16 = Channel::ALL.iter().map(|&c| self.load(agent, c)).sum();
            if channel == Channel::Voice {
                return total == 0;
            }
            return self.load(agent, Channel::Voice) == 0;
        }
        true
    }

    fn pick(&self, n: usize) -> Option<u128> {
        (self.next_id > 0).then(|| (n as u128 % self.next_id) + 1)
    }

    fn state(&self, id: u128) -> St {
        self.ixs.get(&id).map_or(St::Done, |x| x.state)
    }

    /// Applies one output, checking it against the rules.
    fn apply(&mut self, out: &Output) {
        let now = self.now;
        match out {
            Output::Offer {
                interaction,
                agent,
                queue,
                expires_at,
            } => {
                let (id, ag) = (num(*interaction), num(*agent));
                let ix = self.ixs[&id].clone();
                assert_eq!(ix.state, St::Waiting, "offered while not waiting: {out:?}");
                let (spec, available) = &self.agents[&ag];
                let _ = spec;
                assert!(*available, "offer to an unavailable agent: {out:?}");
                assert!(
                    self.eligible(ag, &ix),
                    "offer to an ineligible agent: {out:?}"
                );
                assert!(self.has_free(ag, ix.channel), "capacity exceeded: {out:?}");
                assert!(!ix.excludes(ag, now), "offer during a cool-down: {out:?}");
                assert_eq!(Some(num(*queue)), ix.queue);
                let spec = &self.queues[&num(*queue)];
                assert_eq!(*expires_at, now + spec.offer_timeout);
                for (oid, other) in &self.ixs {
                    if other.state == St::Waiting
                        && other.queue == ix.queue
                        && other.variant == ix.variant
                        && (ix.variant != 0 || self.requirement(other) == self.requirement(&ix))
                        && other.channel == ix.channel
                        && other.key() < ix.key()
                    {
                        assert!(
                            other.excludes(ag, now),
                            "order broken: #{oid} waits ahead of #{id} for agent {ag}"
                        );
                    }
                }
                self.ixs.get_mut(&id).expect("checked").state = St::Offered(ag);
            }
            Output::OfferExpired { interaction, agent } => {
                let (id, ag) = (num(*interaction), num(*agent));
                assert_eq!(self.state(id), St::Offered(ag));
                self.ixs.get_mut(&id).expect("offered").state = St::Waiting;
                self.agents
                    .get_mut(&ag)
                    .expect("offers go to live agents")
                    .1 = false;
            }
            Output::Overflowed {
                interaction,
                from,
                to,
                rule,
            } => {
                let ix = self.ixs.get_mut(&num(*interaction)).expect("known");
                assert_eq!(ix.state, St::Waiting);
                assert_eq!(ix.queue, Some(num(*from)));
                if from == to {
                    ix.variant = rule + 1;
                } else {
                    ix.queue = Some(num(*to));
                    ix.variant = 0;
                }
            }
            Output::EstimatedWait { interaction, .. } => {
                assert_eq!(self.state(num(*interaction)), St::Waiting);
            }
            Output::WrapUpFinished { interaction, agent } => {
                let id = num(*interaction);
                assert_eq!(self.state(id), St::Wrap(num(*agent)));
                self.ixs.remove(&id);
            }
            Output::Withdrawn { interaction, .. } => {
                let id = num(*interaction);
                assert!(matches!(
                    self.state(id),
                    St::Waiting | St::Offered(_) | St::Done
                ));
                self.ixs.remove(&id);
            }
            Output::Ignored { .. } => panic!("unexpected {out:?}"),
        }
    }

    /// Invariants that hold between steps.
    fn check(&self, r: &Router) {
        let now = self.now;
        if let Some(t) = r.poll_timeout() {
            assert!(t >= now, "timer in the past: {t:?} < {now:?}");
        }
        for &ag in self.agents.keys() {
            for c in Channel::ALL {
                assert_eq!(
                    r.agent_load(a(ag), c),
                    Some(self.load(ag, c)),
                    "agent {ag} {c}"
                );
            }
            assert_eq!(r.is_available(a(ag)), Some(self.agents[&ag].1));
        }
        for &qn in self.queues.keys() {
            let mut expect: Vec<(&u128, &Ix)> = self
                .ixs
                .iter()
                .filter(|(_, x)| x.state == St::Waiting && x.queue == Some(qn))
                .collect();
            expect.sort_by_key(|(_, x)| x.key());
            let expect: Vec<_> = expect.into_iter().map(|(id, _)| i(*id)).collect();
            assert_eq!(r.waiting(q(qn)), expect, "queue {qn}");
            let stats = r.queue_stats(q(qn), now).expect("queue exists");
            assert_eq!(stats.waiting, expect.len());
            let offered = self
                .ixs
                .values()
                .filter(|x| matches!(x.state, St::Offered(_)) && x.queue == Some(qn))
                .count();
            assert_eq!(stats.offered, offered);
        }
        for (&id, ix) in &self.ixs {
            let waiting = ix.state == St::Waiting;
            assert_eq!(r.position(i(id)).is_some(), waiting, "#{id} {:?}", ix.state);
            if !waiting {
                continue;
            }
            assert!(self.queues.contains_key(&ix.queue.expect("queued")));
            for (&ag, (_, available)) in &self.agents {
                assert!(
                    !(*available
                        && self.eligible(ag, ix)
                        && self.has_free(ag, ix.channel)
                        && !ix.excludes(ag, now)),
                    "#{id} waits while agent {ag} is free for it"
                );
            }
        }
    }
}

/// Which `Ignored` (if any) an interaction input should produce.
fn expect_ignore(
    sh: &Shadow,
    id: u128,
    agent: Option<u128>,
    ok: &[fn(St) -> bool],
) -> Option<IgnoreReason> {
    let st = sh.state(id);
    if st == St::Done {
        return Some(IgnoreReason::UnknownInteraction);
    }
    if let Some(ag) = agent
        && !sh.agents.contains_key(&ag)
    {
        return Some(IgnoreReason::UnknownAgent);
    }
    if ok.iter().any(|f| f(st)) {
        None
    } else {
        Some(IgnoreReason::WrongState)
    }
}

fn run(ops: Vec<Op>) {
    let mut r = Router::new(RouterConfig::default());
    let mut sh = Shadow::default();
    for op in ops {
        let now = sh.now;
        // (input, expected ignore reason)
        let (input, ignore): (Input, Option<IgnoreReason>) = match op {
            Op::Advance(ms) => {
                let target = now + Duration::from_millis(ms);
                while let Some(t) = r.poll_timeout().filter(|&t| t <= target) {
                    sh.now = t;
                    r.handle_timeout(t);
                    while let Some(out) = r.poll_output() {
                        sh.apply(&out);
                    }
                    sh.check(&r);
                }
                sh.now = target;
                sh.check(&r);
                continue;
            }
            Op::UpsertQueue(spec) => {
                let n = num(spec.id);
                if let Some(old) = sh.queues.get(&n)
                    && (old.requirements != spec.requirements || old.overflow != spec.overflow)
                {
                    for ix in sh.ixs.values_mut() {
                        if ix.queue == Some(n) && matches!(ix.state, St::Waiting | St::Offered(_)) {
                            ix.variant = 0;
                        }
                    }
                }
                sh.queues.insert(n, spec.clone());
                (Input::QueueUpserted(spec), None)
            }
            Op::RemoveQueue(n) => {
                let known = sh.queues.remove(&n).is_some();
                (
                    Input::QueueRemoved(q(n)),
                    (!known).then_some(IgnoreReason::UnknownQueue),
                )
            }
            Op::UpsertAgent(spec) => {
                let n = num(spec.id);
                let available = sh.agents.get(&n).is_some_and(|x| x.1);
                sh.agents.insert(n, (spec.clone(), available));
                (Input::AgentUpserted(spec), None)
            }
            Op::RemoveAgent(n) => {
                if sh.agents.remove(&n).is_some() {
                    let mut gone = Vec::new();
                    for (&id, ix) in sh.ixs.iter_mut() {
                        match ix.state {
                            St::Offered(g) if g == n => ix.state = St::Waiting,
                            St::Held(g) | St::Wrap(g) if g == n => gone.push(id),
                            _ => {}
                        }
                    }
                    for id in gone {
                        sh.ixs.remove(&id);
                    }
                    (Input::AgentRemoved(a(n)), None)
                } else {
                    (Input::AgentRemoved(a(n)), Some(IgnoreReason::UnknownAgent))
                }
            }
            Op::Presence(n, available) => {
                let input = Input::AgentPresence {
                    agent: a(n),
                    available,
                };
                match sh.agents.get_mut(&n) {
                    Some(x) => {
                        x.1 = available;
                        (input, None)
                    }
                    None => (input, Some(IgnoreReason::UnknownAgent)),
                }
            }
            Op::Arrive {
                queue,
                channel,
                priority,
                back_ms,
                own,
            } => {
                sh.next_id += 1;
                let id = sh.next_id;
                let ws = back_ms.map(|b| {
                    MonoTime::from_duration(
                        now.since_origin().saturating_sub(Duration::from_millis(b)),
                    )
                });
                let input = Input::InteractionArrived(Arrival {
                    id: i(id),
                    queue: q(queue),
                    channel,
                    priority,
                    waiting_since: ws,
                    skills: own.clone(),
                });
                if let Some(spec) = sh.queues.get(&queue) {
                    sh.seq += 1;
                    let ix = Ix {
                        queue: Some(queue),
                        channel,
                        priority: priority.unwrap_or(spec.priority),
                        since: ws.unwrap_or(now),
                        seq: sh.seq,
                        variant: 0,
                        own,
                        state: St::Waiting,
                        cooldowns: Vec::new(),
                    };
                    sh.ixs.insert(id, ix);
                }
                (input, None)
            }
            Op::ArriveAgain(n) => {
                let Some(id) = sh.pick(n) else { continue };
                if sh.state(id) == St::Done {
                    continue;
                }
                let input = Input::InteractionArrived(Arrival {
                    id: i(id),
                    queue: q(1),
                    channel: Channel::Chat,
                    priority: None,
                    waiting_since: None,
                    skills: Vec::new(),
                });
                (input, Some(IgnoreReason::Duplicate))
            }
            Op::Withdraw(n) => {
                let Some(id) = sh.pick(n) else { continue };
                let ign = expect_ignore(
                    &sh,
                    id,
                    None,
                    &[|s| matches!(s, St::Waiting | St::Offered(_))],
                );
                if ign.is_none() {
                    sh.ixs.remove(&id);
                }
                (Input::InteractionWithdrawn(i(id)), ign)
            }
            Op::Accept(n, wrong) | Op::Reject(n, wrong) => {
                let is_accept = matches!(op, Op::Accept(..));
                let Some(id) = sh.pick(n) else { continue };
                let st = sh.state(id);
                let holder = match st {
                    St::Offered(g) => g,
                    _ => 1,
                };
                let ag = if wrong {
                    holder % (AGENTS + 1) + 1
                } else {
                    holder
                };
                let mut ign = expect_ignore(&sh, id, Some(ag), &[|s| matches!(s, St::Offered(_))]);
                if ign.is_none() && st != St::Offered(ag) {
                    ign = Some(IgnoreReason::WrongAgent);
                }
                if ign.is_none() {
                    let ix = sh.ixs.get_mut(&id).expect("offered");
                    if is_accept {
                        ix.state = St::Held(ag);
                    } else {
                        ix.state = St::Waiting;
                        let qn = ix.queue.expect("offered from a queue");
                        if let Some(spec) = sh.queues.get(&qn) {
                            ix.cooldowns.push((ag, now + spec.offer_timeout));
                        }
                    }
                }
                let (interaction, agent) = (i(id), a(ag));
                let input = if is_accept {
                    Input::OfferAccepted { interaction, agent }
                } else {
                    Input::OfferRejected { interaction, agent }
                };
                (input, ign)
            }
            Op::Complete(n, wrap) => {
                let Some(id) = sh.pick(n) else { continue };
                let ign = expect_ignore(&sh, id, None, &[|s| matches!(s, St::Held(_))]);
                if ign.is_none() {
                    let ix = sh.ixs.get_mut(&id).expect("held");
                    if let St::Held(g) = ix.state {
                        ix.state = St::Wrap(g);
                    }
                }
                (
                    Input::InteractionCompleted {
                        interaction: i(id),
                        wrap_up: Duration::from_secs(wrap),
                    },
                    ign,
                )
            }
            Op::Release(n) => {
                let Some(id) = sh.pick(n) else { continue };
                let ign =
                    expect_ignore(&sh, id, None, &[|s| matches!(s, St::Held(_) | St::Wrap(_))]);
                if ign.is_none() {
                    sh.ixs.remove(&id);
                }
                (Input::InteractionReleased(i(id)), ign)
            }
            Op::Priority(n, p) => {
                let Some(id) = sh.pick(n) else { continue };
                let ign = expect_ignore(
                    &sh,
                    id,
                    None,
                    &[|s| matches!(s, St::Waiting | St::Offered(_))],
                );
                if ign.is_none() {
                    sh.ixs.get_mut(&id).expect("known").priority = p;
                }
                (
                    Input::PriorityChanged {
                        interaction: i(id),
                        priority: p,
                    },
                    ign,
                )
            }
            Op::Restore(n, channel) => {
                sh.next_id += 1;
                let id = sh.next_id;
                let input = Input::InteractionRestored {
                    interaction: i(id),
                    agent: a(n),
                    channel,
                };
                if sh.agents.contains_key(&n) {
                    sh.seq += 1;
                    let ix = Ix {
                        queue: None,
                        channel,
                        priority: 0,
                        since: now,
                        seq: sh.seq,
                        variant: 0,
                        own: Vec::new(),
                        state: St::Held(n),
                        cooldowns: Vec::new(),
                    };
                    sh.ixs.insert(id, ix);
                    (input, None)
                } else {
                    (input, Some(IgnoreReason::UnknownAgent))
                }
            }
        };
        let label = format!("{input:?}");
        r.handle_input(now, input);
        let outs: Vec<Output> = std::iter::from_fn(|| r.poll_output()).collect();
        match ignore {
            Some(reason) => {
                assert!(
                    matches!(&outs[..], [Output::Ignored { reason: got, .. }] if *got == reason),
                    "{label}: expected {reason:?}, got {outs:?}"
                );
            }
            None => {
                for out in &outs {
                    assert!(!matches!(out, Output::Ignored { .. }), "{label}: {out:?}");
                    sh.apply(out);
                }
            }
        }
        sh.check(&r);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_sequences(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }

    #[test]
    fn invariants_hold_with_a_stable_setup(
        setup in (prop::collection::vec(queue_spec(), 3), prop::collection::vec(agent_spec(), 4)),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut all: Vec<Op> = setup.0.into_iter().map(Op::UpsertQueue).collect();
        all.extend(setup.1.into_iter().map(Op::UpsertAgent));
        all.extend((1..=AGENTS).map(|n| Op::Presence(n, true)));
        all.extend(ops.into_iter().filter(|o| !matches!(o, Op::RemoveQueue(_) | Op::RemoveAgent(_))));
        run(all);
    }
}
