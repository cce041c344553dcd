//! The router's internal records and index keys. Everything here is private to the crate; the
//! rules that move records between states live in `router.rs`.
//!
//! Layout: queues, agents, interactions and buckets live in dense `Vec` slots and refer to each
//! other by slot (`u32`), so the hot paths never hash a UUID except to resolve an input's ids.
//! A *bucket* groups the waiting interactions that share (queue, requirement variant, channel):
//! they have exactly the same eligible agents. Each bucket keeps two ordered indexes: its waiting
//! interactions in service order and its free eligible agents in preference order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchboard_model::{AgentId, Channel, InteractionId, MonoTime, SkillId, SkillRequirement};

use crate::api::{OverflowTarget, QueueSpec};

/// The variant bit of requirements made of the queue's plus an interaction's own skills.
pub(crate) const EXTRA: u32 = 1 << 31;

/// The queue's requirements joined with an interaction's own: every skill of either, at the
/// higher of the two least levels where both name it.
pub(crate) fn joined(base: &[SkillRequirement], own: &[SkillRequirement]) -> Vec<SkillRequirement> {
    let mut all: Vec<SkillRequirement> = base.iter().chain(own).copied().collect();
    all.sort_unstable_by(|a, b| a.skill.cmp(&b.skill).then(b.min_level.cmp(&a.min_level)));
    all.dedup_by_key(|r| r.skill);
    all
}

/// Number of channels (size of the dense per-channel arrays).
pub(crate) const CHANNELS: usize = Channel::ALL.len();

/// `t + d`, saturating instead of panicking on absurd durations.
pub(crate) fn later(t: MonoTime, d: Duration) -> MonoTime {
    MonoTime::from_duration(t.since_origin().saturating_add(d))
}

/// Service order of waiting interactions: highest priority, then longest waiting, then arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IxKey {
    pub priority: Reverse<i32>,
    pub since: MonoTime,
    pub seq: u64,
    pub slot: u32,
}

impl IxKey {
    /// The smallest key of a priority class (for range queries).
    pub fn first_of(priority: i32) -> IxKey {
        IxKey {
            priority: Reverse(priority),
            since: MonoTime::ZERO,
            seq: 0,
            slot: 0,
        }
    }
}

/// Preference order of free agents within a bucket: best skill match, least loaded on the
/// bucket's channel, longest idle, then agent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AgentKey {
    pub score: Reverse<u32>,
    pub load: u16,
    pub idle_since: MonoTime,
    pub id: AgentId,
    pub slot: u32,
}

/// A pending wake-up. Ordered with its due time in the timer set; the derive gives a fixed
/// tie-break between timers due at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// An offer expires.
    OfferExpiry(u32),
    /// A wrap-up ends.
    WrapUp(u32),
    /// A decline cool-down between an interaction and an agent ends.
    CoolDown(u32, AgentId),
    /// The next overflow rule of a waiting interaction is due.
    Overflow(u32),
}

/// Where an interaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IxState {
    /// In a bucket, waiting for an agent.
    Waiting { bucket: u32 },
    /// Offered to an agent (capacity reserved).
    Offered { agent: u32, expires_at: MonoTime },
    /// Accepted and being handled.
    Connected { agent: u32, since: MonoTime },
    /// Completed; the agent is in after-contact work until `until`.
    WrapUp { agent: u32, until: MonoTime },
}

/// One interaction known to the router.
#[derive(Debug)]
pub(crate) struct Interaction {
    pub id: InteractionId,
    pub channel: Channel,
    /// Current queue slot; `None` only for interactions restored onto an agent.
    pub queue: Option<u32>,
    /// 0 = the queue's base requirement, `i + 1` = the `Skills` target of overflow rule `i`,
    /// `EXTRA | k` = the base requirement plus the interaction's own skills (`Queue::extra[k]`).
    pub variant: u32,
    /// Its own skills, besides its queue's ([`crate::Arrival::skills`]), sorted by skill.
    pub skills: Vec<SkillRequirement>,
    pub priority: i32,
    pub since: MonoTime,
    pub seq: u64,
    /// Origin of the overflow clock in the current queue.
    pub entered: MonoTime,
    /// Position in the queue's `rule_order` of the next rule to consider.
    pub next_rule: usize,
    /// When the pending overflow timer is due, if one is scheduled.
    pub overflow_at: Option<MonoTime>,
    /// Queue moves at `hop_at` (guards against zero-delay overflow cycles).
    pub hop_at: MonoTime,
    pub hops: u32,
    /// Agents that declined this interaction, and until when they are not offered it again.
    pub cooldowns: Vec<(AgentId, MonoTime)>,
    pub state: IxState,
}

impl Interaction {
    /// Its service-order key.
    pub fn key(&self, slot: u32) -> IxKey {
        IxKey {
            priority: Reverse(self.priority),
            since: self.since,
            seq: self.seq,
            slot,
        }
    }

    /// Whether `agent` is in a decline cool-down for this interaction.
    pub fn excludes(&self, agent: AgentId) -> bool {
        self.cooldowns.iter().any(|(a, _)| *a == agent)
    }

    /// The agent holding it (offered, connected or wrap-up).
    pub fn agent(&self) -> Option<u32> {
        match self.state {
            IxState::Waiting { .. } => None,
            IxState::Offered { agent, .. }
            | IxState::Connected { agent, .. }
            | IxState::WrapUp { agent, .. } => Some(agent),
        }
    }
}

/// An agent's membership in one bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elig {
    pub bucket: u32,
    pub score: u32,
    /// Its key in the bucket's free index, when it is in it.
    pub key: Option<AgentKey>,
}

/// One agent known to the router.
#[derive(Debug)]
pub(crate) struct Agent {
    pub id: AgentId,
    /// Sorted by skill, one entry per skill (the highest level given).
    pub skills: Vec<(SkillId, u8)>,
    pub caps: [u16; CHANNELS],
    pub voice_exclusive: bool,
    pub available: bool,
    pub load: [u16; CHANNELS],
    pub total: u32,
    pub idle_since: MonoTime,
    /// Buckets whose requirement it meets.
    pub elig: Vec<Elig>,
    /// Queues whose base requirement it meets (for staffed / idle counts).
    pub qualifies: Vec<u32>,
    /// Whether it is currently counted in its queues' `staffed` / `idle`.
    pub counted_staffed: bool,
    pub counted_idle: bool,
    /// Interactions it holds (offered, connected, wrap-up).
    pub holds: Vec<u32>,
}

impl Agent {
    /// Its level on a skill.
    pub fn level(&self, skill: SkillId) -> Option<u8> {
        self.skills
            .binary_search_by_key(&skill, |(s, _)| *s)
            .ok()
            .map(|i| self.skills[i].1)
    }

    /// Sum of its levels on the required skills, or `None` if it misses one.
    pub fn score(&self, reqs: &[SkillRequirement]) -> Option<u32> {
        let mut sum = 0u32;
        for r in reqs {
            let level = self.level(r.skill)?;
            if level < r.min_level {
                return None;
            }
            sum += u32::from(level);
        }
        Some(sum)
    }

    /// Whether it can take one more interaction of `channel` (capacity and voice exclusivity;
    /// presence is not considered).
    pub fn has_free(&self, channel: Channel) -> bool {
        let c = channel.index();
        if self.load[c] >= self.caps[c] {
            return false;
        }
        if self.voice_exclusive {
            if channel == Channel::Voice {
                return self.total == 0;
            }
            return self.load[Channel::Voice.index()] == 0;
        }
        true
    }

    /// Whether it can take anything at all.
    pub fn has_free_any(&self) -> bool {
        Channel::ALL.iter().any(|&c| self.has_free(c))
    }
}

/// One queue known to the router.
#[derive(Debug)]
pub(crate) struct Queue {
    pub spec: QueueSpec,
    /// Indices into `spec.overflow`, sorted by `after` (stable).
    pub rule_order: Vec<usize>,
    /// Its buckets.
    pub buckets: Vec<u32>,
    /// Waiting interactions per priority.
    pub prio_counts: BTreeMap<i32, usize>,
    pub waiting: usize,
    pub offered: usize,
    /// Moving average of handle time, seconds.
    pub aht: f64,
    pub samples: u64,
    pub staffed: u32,
    pub idle: u32,
    /// Requirements of `EXTRA | k` variants: the base joined with interactions' own skills,
    /// one entry per distinct set (so interactions asking the same share a bucket).
    pub extra: Vec<Vec<SkillRequirement>>,
}

impl Queue {
    /// The variant for an interaction with `own` skills at the base stage of this queue.
    pub fn base_variant(&mut self, own: &[SkillRequirement]) -> u32 {
        if own.is_empty() {
            return 0;
        }
        let reqs = joined(&self.spec.requirements, own);
        if reqs == joined(&self.spec.requirements, &[]) {
            return 0;
        }
        let k = match self.extra.iter().position(|r| *r == reqs) {
            Some(k) => k,
            None => {
                self.extra.push(reqs);
                self.extra.len() - 1
            }
        };
        EXTRA | u32::try_from(k).expect("fewer than 2^31 skill sets per queue")
    }

    /// A queue from its spec.
    pub fn new(spec: QueueSpec) -> Queue {
        let aht = spec.expected_handle_time.as_secs_f64();
        let mut q = Queue {
            spec,
            rule_order: Vec::new(),
            buckets: Vec::new(),
            prio_counts: BTreeMap::new(),
            waiting: 0,
            offered: 0,
            aht,
            samples: 0,
            staffed: 0,
            idle: 0,
            extra: Vec::new(),
        };
        q.sort_rules();
        q
    }

    /// Rebuilds `rule_order` from the spec.
    pub fn sort_rules(&mut self) {
        let mut order: Vec<usize> = (0..self.spec.overflow.len()).collect();
        order.sort_by_key(|&i| self.spec.overflow[i].after);
        self.rule_order = order;
    }

    /// The requirement of a variant (0 = base; a variant that is not a skills rule falls back to
    /// the base requirement, which cannot happen by construction).
    pub fn requirement(&self, variant: u32) -> &[SkillRequirement] {
        if variant == 0 {
            return &self.spec.requirements;
        }
        if variant & EXTRA != 0 {
            return self
                .extra
                .get((variant & !EXTRA) as usize)
                .map_or(&self.spec.requirements[..], Vec::as_slice);
        }
        match self.spec.overflow.get(variant as usize - 1) {
            Some(rule) => match &rule.target {
                OverflowTarget::Skills(reqs) => reqs,
                OverflowTarget::Queue(_) => &self.spec.requirements,
            },
            None => &self.spec.requirements,
        }
    }
}

/// Waiting interactions and free eligible agents sharing (queue, requirement variant, channel).
#[derive(Debug)]
pub(crate) struct Bucket {
    pub queue: u32,
    pub variant: u32,
    pub channel: Channel,
    pub waiting: BTreeSet<IxKey>,
    pub free: BTreeSet<AgentKey>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OverflowRule;

    fn agent(skills: &[(u128, u8)], caps: &[(Channel, u16)], voice_exclusive: bool) -> Agent {
        let mut c = [0u16; CHANNELS];
        for &(ch, n) in caps {
            c[ch.index()] = n;
        }
        Agent {
            id: AgentId::from_u128(1),
            skills: skills
                .iter()
                .map(|&(s, l)| (SkillId::from_u128(s), l))
                .collect(),
            caps: c,
            voice_exclusive,
            available: true,
            load: [0; CHANNELS],
            total: 0,
            idle_since: MonoTime::ZERO,
            elig: Vec::new(),
            qualifies: Vec::new(),
            counted_staffed: false,
            counted_idle: false,
            holds: Vec::new(),
        }
    }

    fn req(skill: u128, min_level: u8) -> SkillRequirement {
        SkillRequirement {
            skill: SkillId::from_u128(skill),
            min_level,
        }
    }

    #[test]
    fn score_sums_levels_and_rejects_missing_or_low_skills() {
        let ag = agent(&[(1, 4), (2, 7)], &[], true);
        assert_eq!(ag.score(&[]), Some(0));
        assert_eq!(ag.score(&[req(1, 4), req(2, 1)]), Some(11));
        assert_eq!(ag.score(&[req(1, 5)]), None);
        assert_eq!(ag.score(&[req(3, 1)]), None);
    }

    #[test]
    fn has_free_honours_capacity_and_voice_exclusivity() {
        let caps = [(Channel::Voice, 1), (Channel::Chat, 2)];
        let mut ag = agent(&[], &caps, true);
        assert!(ag.has_free(Channel::Voice) && ag.has_free(Channel::Chat));
        assert!(!ag.has_free(Channel::Email), "no capacity means no offers");
        ag.load[Channel::Chat.index()] = 1;
        ag.total = 1;
        assert!(!ag.has_free(Channel::Voice));
        assert!(ag.has_free(Channel::Chat));
        ag.load[Channel::Chat.index()] = 2;
        ag.total = 2;
        assert!(!ag.has_free_any());
        let mut ag = agent(&[], &caps, false);
        ag.load[Channel::Voice.index()] = 1;
        ag.total = 1;
        assert!(ag.has_free(Channel::Chat) && !ag.has_free(Channel::Voice));
    }

    #[test]
    fn rules_are_considered_in_order_of_their_delay() {
        let rule = |secs| OverflowRule {
            after: Duration::from_secs(secs),
            target: OverflowTarget::Skills(vec![req(9, secs as u8)]),
        };
        let q = Queue::new(QueueSpec {
            id: switchboard_model::QueueId::from_u128(1),
            priority: 0,
            requirements: vec![req(1, 1)],
            offer_timeout: Duration::from_secs(1),
            overflow: vec![rule(30), rule(10), rule(20)],
            expected_handle_time: Duration::from_secs(60),
        });
        assert_eq!(q.rule_order, vec![1, 2, 0]);
        assert_eq!(q.requirement(0), &[req(1, 1)]);
        assert_eq!(q.requirement(2), &[req(9, 10)]);
    }
}
