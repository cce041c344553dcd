//! The router's state and rules.
//!
//! Matching is eager and incremental. Every change that can create a new (waiting interaction,
//! free eligible agent) pair marks the interaction or the agent *dirty*; before `handle_input` or
//! `handle_timeout` returns, dirty interactions are matched in service order (each to its best
//! free agent), then dirty agents pick work (the best waiting interaction among the buckets they
//! qualify for, which then goes to *its* best free agent). Since no pair existed before the
//! change, nothing else needs looking at, so a decision costs a few ordered-index operations per
//! bucket the agent belongs to, independent of the number of agents or waiting interactions.
//!
//! Choices the API leaves open, made here:
//! - An overflow to another queue restarts the overflow clock at the moment of the move: the
//!   target queue's rules count from then, while `waiting_since` (and so the place in line) is
//!   kept. Zero-delay cycles between queues stop after as many moves in one instant as there are
//!   queues.
//! - A `QueueUpserted` that changes the requirements or the overflow rules re-evaluates the
//!   queue's interactions from scratch: they return to the base requirement and every rule
//!   already due fires again (with a new `Output::Overflowed`). A change of only priority, offer
//!   timeout or expected handle time applies to new offers and arrivals.
//! - `QueueRemoved` withdraws its waiting *and* offered interactions (`Withdrawn`, in service
//!   order; the driver cancels those offers, whose capacity is freed at once). Interactions
//!   already accepted stay with their agents.
//! - `AgentRemoved` returns its offers to their queues and forgets the interactions it was
//!   handling (no `WrapUpFinished` for them; a later complete or release is ignored).
//! - `AgentPresence { available: false }` leaves outstanding offers in place (they may still be
//!   accepted); the agent just receives nothing new.
//! - A waiting interaction's `waiting_since` later than `now` is taken as `now`.
//! - Handle time (for the moving average) runs from accept to complete or release.
//! - `queue_stats().estimated_wait` takes a new arrival to be last in line
//!   (position = waiting + 1).

use crate::api::*;
use crate::state::*;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::time::Duration;
use switchboard_model::{AgentId, Channel, InteractionId, MonoTime, QueueId, SkillId};

/// The ACD router. See the crate docs for the driving loop and the policy.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    now: MonoTime,
    seq: u64,
    queues: Vec<Option<Queue>>,
    queue_ids: HashMap<QueueId, u32>,
    agents: Vec<Option<Agent>>,
    agent_ids: HashMap<AgentId, u32>,
    ixs: Vec<Option<Interaction>>,
    ix_free: Vec<u32>,
    ix_ids: HashMap<InteractionId, u32>,
    buckets: Vec<Option<Bucket>>,
    bucket_free: Vec<u32>,
    bucket_ids: HashMap<(u32, u32, Channel), u32>,
    timers: BTreeSet<(MonoTime, Timer)>,
    outputs: VecDeque<Output>,
    dirty_ixs: Vec<u32>,
    dirty_agents: Vec<u32>,
}

impl Router {
    /// An empty router.
    pub fn new(config: RouterConfig) -> Self {
        Router {
            config,
            now: MonoTime::ZERO,
            seq: 0,
            queues: Vec::new(),
            queue_ids: HashMap::new(),
            agents: Vec::new(),
            agent_ids: HashMap::new(),
            ixs: Vec::new(),
            ix_free: Vec::new(),
            ix_ids: HashMap::new(),
            buckets: Vec::new(),
            bucket_free: Vec::new(),
            bucket_ids: HashMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            dirty_ixs: Vec::new(),
            dirty_agents: Vec::new(),
        }
    }

    /// Tell the router what happened at `now`.
    pub fn handle_input(&mut self, now: MonoTime, input: Input) {
        // A clock that steps back is taken as standing still, so timers never lie in the past.
        let now = now.max(self.now);
        self.now = now;
        match input {
            Input::QueueUpserted(spec) => self.queue_upserted(now, spec),
            Input::QueueRemoved(id) => self.queue_removed(id),
            Input::AgentUpserted(spec) => self.agent_upserted(spec),
            Input::AgentRemoved(id) => self.agent_removed(now, id),
            Input::AgentPresence { agent, available } => self.presence(now, agent, available),
            Input::InteractionArrived(arrival) => self.arrived(now, arrival),
            Input::PriorityChanged {
                interaction,
                priority,
            } => self.priority_changed(interaction, priority),
            Input::InteractionWithdrawn(id) => self.withdrawn(now, id),
            Input::OfferAccepted { interaction, agent } => self.accepted(now, interaction, agent),
            Input::OfferRejected { interaction, agent } => self.rejected(now, interaction, agent),
            Input::InteractionCompleted {
                interaction,
                wrap_up,
            } => self.completed(now, interaction, wrap_up),
            Input::InteractionReleased(id) => self.released(now, id),
            Input::InteractionRestored {
                interaction,
                agent,
                channel,
            } => self.restored(now, interaction, agent, channel),
        }
        self.run_matching(now);
    }

    /// Tell the router that `now` has come (fires due offer, overflow and wrap-up timers).
    pub fn handle_timeout(&mut self, now: MonoTime) {
        let now = now.max(self.now);
        self.now = now;
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::OfferExpiry(slot) => self.offer_expired(now, slot),
                Timer::WrapUp(slot) => self.wrap_up_finished(now, slot),
                Timer::CoolDown(slot, agent) => self.cooldown_ended(slot, agent),
                Timer::Overflow(slot) => {
                    if let Some(ix) = self.ixs[slot as usize].as_mut() {
                        ix.overflow_at = None;
                        if matches!(ix.state, IxState::Waiting { .. }) {
                            self.advance_overflow(now, slot);
                            self.dirty_ixs.push(slot);
                        }
                    }
                }
            }
        }
        self.run_matching(now);
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the router next needs `handle_timeout`, if ever.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// A queue's figures at `now`; `None` for an unknown queue.
    pub fn queue_stats(&self, queue: QueueId, now: MonoTime) -> Option<QueueStats> {
        let &q = self.queue_ids.get(&queue)?;
        let qu = self.queues[q as usize].as_ref()?;
        let mut oldest: Option<MonoTime> = None;
        for &p in qu.prio_counts.keys() {
            for &b in &qu.buckets {
                let bucket = self.bucket(b);
                if let Some(k) = bucket.waiting.range(IxKey::first_of(p)..).next()
                    && k.priority == Reverse(p)
                {
                    oldest = Some(oldest.map_or(k.since, |o| o.min(k.since)));
                }
            }
        }
        Some(QueueStats {
            waiting: qu.waiting,
            offered: qu.offered,
            longest_wait: oldest.map_or(Duration::ZERO, |o| now.saturating_since(o)),
            staffed: qu.staffed as usize,
            idle: qu.idle as usize,
            estimated_wait: estimate(qu, qu.waiting + 1),
        })
    }

    /// Position of a waiting interaction in its queue's service order (1 = next).
    pub fn position(&self, interaction: InteractionId) -> Option<usize> {
        let &slot = self.ix_ids.get(&interaction)?;
        self.position_of(slot)
    }

    /// Waiting (not offered) interactions of a queue in service order.
    pub fn waiting(&self, queue: QueueId) -> Vec<InteractionId> {
        let Some(&q) = self.queue_ids.get(&queue) else {
            return Vec::new();
        };
        let Some(qu) = self.queues[q as usize].as_ref() else {
            return Vec::new();
        };
        let mut keys: Vec<IxKey> = qu
            .buckets
            .iter()
            .flat_map(|&b| self.bucket(b).waiting.iter().copied())
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| self.ix(k.slot).id).collect()
    }

    /// Interactions of `channel` an agent holds (offered, connected or in wrap-up).
    pub fn agent_load(&self, agent: AgentId, channel: Channel) -> Option<u16> {
        let &a = self.agent_ids.get(&agent)?;
        self.agents[a as usize]
            .as_ref()
            .map(|ag| ag.load[channel.index()])
    }

    /// Whether the router counts an agent as available (`None` for an unknown agent). An agent
    /// stops being available when it misses an offer.
    pub fn is_available(&self, agent: AgentId) -> Option<bool> {
        let &a = self.agent_ids.get(&agent)?;
        self.agents[a as usize].as_ref().map(|ag| ag.available)
    }

    // ----- accessors ------------------------------------------------------------------------

    fn ix(&self, slot: u32) -> &Interaction {
        self.ixs[slot as usize]
            .as_ref()
            .expect("index entries point at live interactions")
    }

    fn ix_mut(&mut self, slot: u32) -> &mut Interaction {
        self.ixs[slot as usize]
            .as_mut()
            .expect("index entries point at live interactions")
    }

    fn bucket(&self, b: u32) -> &Bucket {
        self.buckets[b as usize]
            .as_ref()
            .expect("queues and agents point at live buckets")
    }

    fn ignore(&mut self, input: &'static str, reason: IgnoreReason) {
        self.outputs.push_back(Output::Ignored { input, reason });
    }

    // ----- queues ---------------------------------------------------------------------------

    fn queue_upserted(&mut self, now: MonoTime, spec: QueueSpec) {
        let Some(&q) = self.queue_ids.get(&spec.id) else {
            let q = u32::try_from(self.queues.len()).expect("fewer than 2^32 queues");
            self.queue_ids.insert(spec.id, q);
            self.queues.push(Some(Queue::new(spec)));
            self.requalify(q);
            return;
        };
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("the id map points at live queues");
        let rules_changed =
            qu.spec.requirements != spec.requirements || qu.spec.overflow != spec.overflow;
        if qu.samples == 0 {
            qu.aht = spec.expected_handle_time.as_secs_f64();
        }
        qu.spec = spec;
        if !rules_changed {
            return;
        }
        qu.sort_rules();
        let waiting = self.drop_buckets(q);
        // The joined skill sets were made from the old base requirement.
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("the id map points at live queues");
        qu.extra.clear();
        self.requalify(q);
        // Offered interactions of this queue start over too once they come back.
        for ix in self.ixs.iter_mut().flatten() {
            if ix.queue == Some(q) && matches!(ix.state, IxState::Offered { .. }) {
                let qu = self.queues[q as usize]
                    .as_mut()
                    .expect("the id map points at live queues");
                ix.variant = qu.base_variant(&ix.skills);
                ix.next_rule = 0;
            }
        }
        for slot in waiting {
            let variant = self.base_variant(q, slot);
            let ix = self.ix_mut(slot);
            ix.variant = variant;
            ix.next_rule = 0;
            self.place(slot);
            self.advance_overflow(now, slot);
            self.dirty_ixs.push(slot);
        }
    }

    fn queue_removed(&mut self, id: QueueId) {
        let Some(q) = self.queue_ids.remove(&id) else {
            self.ignore("queue_removed", IgnoreReason::UnknownQueue);
            return;
        };
        let mut gone = self.drop_buckets(q);
        let offered: Vec<u32> = self
            .ixs
            .iter()
            .enumerate()
            .filter_map(|(slot, ix)| {
                let ix = ix.as_ref()?;
                let offered = matches!(ix.state, IxState::Offered { .. }) && ix.queue == Some(q);
                offered.then(|| u32::try_from(slot).expect("fewer than 2^32 interactions"))
            })
            .collect();
        for &slot in &offered {
            self.end_offer(self.now, slot);
        }
        gone.extend(offered);
        gone.sort_unstable_by_key(|&s| self.ix(s).key(s));
        for slot in gone {
            let interaction = self.ix(slot).id;
            self.outputs.push_back(Output::Withdrawn {
                interaction,
                reason: WithdrawReason::NoSuchQueue,
            });
            self.free_ix(slot);
        }
        for agent in self.agents.iter_mut().flatten() {
            agent.qualifies.retain(|&x| x != q);
        }
        self.queues[q as usize] = None;
    }

    /// Removes every bucket of queue `q` and returns the slots of its waiting interactions (whose
    /// `state` still names the dropped bucket: the caller re-places or frees them).
    fn drop_buckets(&mut self, q: u32) -> Vec<u32> {
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("callers pass live queues");
        let buckets = std::mem::take(&mut qu.buckets);
        qu.prio_counts.clear();
        qu.waiting = 0;
        let mut waiting = Vec::new();
        for &b in &buckets {
            let bucket = self.buckets[b as usize]
                .take()
                .expect("a queue's buckets are live");
            self.bucket_ids
                .remove(&(bucket.queue, bucket.variant, bucket.channel));
            waiting.extend(bucket.waiting.iter().map(|k| k.slot));
            self.bucket_free.push(b);
        }
        if !buckets.is_empty() {
            for agent in self.agents.iter_mut().flatten() {
                agent.elig.retain(|e| !buckets.contains(&e.bucket));
            }
        }
        waiting
    }

    /// Recomputes which agents meet queue `q`'s base requirement, and its staffed / idle counts.
    fn requalify(&mut self, q: u32) {
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("callers pass live queues");
        let (mut staffed, mut idle) = (0, 0);
        for agent in self.agents.iter_mut().flatten() {
            agent.qualifies.retain(|&x| x != q);
            if agent.score(&qu.spec.requirements).is_some() {
                agent.qualifies.push(q);
                staffed += u32::from(agent.counted_staffed);
                idle += u32::from(agent.counted_idle);
            }
        }
        qu.staffed = staffed;
        qu.idle = idle;
    }

    /// The base-stage variant in queue `q` of the interaction in `slot` (its own skills joined
    /// with the queue's requirement).
    fn base_variant(&mut self, q: u32, slot: u32) -> u32 {
        let skills = std::mem::take(&mut self.ix_mut(slot).skills);
        let variant = self.queues[q as usize]
            .as_mut()
            .expect("callers pass live queues")
            .base_variant(&skills);
        self.ix_mut(slot).skills = skills;
        variant
    }

    /// The bucket for (queue, variant, channel), created (with its eligible agents) if needed.
    fn bucket_for(&mut self, q: u32, variant: u32, channel: Channel) -> u32 {
        if let Some(&b) = self.bucket_ids.get(&(q, variant, channel)) {
            return b;
        }
        let bucket = Bucket {
            queue: q,
            variant,
            channel,
            waiting: BTreeSet::new(),
            free: BTreeSet::new(),
        };
        let b = match self.bucket_free.pop() {
            Some(b) => {
                self.buckets[b as usize] = Some(bucket);
                b
            }
            None => {
                self.buckets.push(Some(bucket));
                u32::try_from(self.buckets.len() - 1).expect("fewer than 2^32 buckets")
            }
        };
        self.bucket_ids.insert((q, variant, channel), b);
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("callers pass live queues");
        qu.buckets.push(b);
        let reqs = qu.requirement(variant);
        let mut members = Vec::new();
        for (a, agent) in self.agents.iter_mut().enumerate() {
            if let Some(agent) = agent
                && let Some(score) = agent.score(reqs)
            {
                agent.elig.push(Elig {
                    bucket: b,
                    score,
                    key: None,
                });
                members.push(u32::try_from(a).expect("fewer than 2^32 agents"));
            }
        }
        for a in members {
            self.refresh_agent(a);
        }
        b
    }

    // ----- agents ---------------------------------------------------------------------------

    fn agent_upserted(&mut self, spec: AgentSpec) {
        let mut skills: Vec<(SkillId, u8)> =
            spec.skills.iter().map(|s| (s.skill, s.level)).collect();
        // One entry per skill, keeping the highest level given.
        skills.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(y.1.cmp(&x.1)));
        skills.dedup_by_key(|s| s.0);
        let mut caps = [0u16; CHANNELS];
        for c in Channel::ALL {
            caps[c.index()] = spec.capacity.of(c);
        }
        let a = match self.agent_ids.get(&spec.id) {
            Some(&a) => {
                self.set_counted(a, false, false);
                let agent = self.agents[a as usize]
                    .as_mut()
                    .expect("the id map points at live agents");
                for e in agent.elig.drain(..) {
                    if let Some(k) = e.key
                        && let Some(bucket) = self.buckets[e.bucket as usize].as_mut()
                    {
                        bucket.free.remove(&k);
                    }
                }
                agent.qualifies.clear();
                agent.skills = skills;
                agent.caps = caps;
                agent.voice_exclusive = spec.capacity.voice_exclusive;
                a
            }
            None => {
                let a = u32::try_from(self.agents.len()).expect("fewer than 2^32 agents");
                self.agent_ids.insert(spec.id, a);
                self.agents.push(Some(Agent {
                    id: spec.id,
                    skills,
                    caps,
                    voice_exclusive: spec.capacity.voice_exclusive,
                    available: false,
                    load: [0; CHANNELS],
                    total: 0,
                    idle_since: self.now,
                    elig: Vec::new(),
                    qualifies: Vec::new(),
                    counted_staffed: false,
                    counted_idle: false,
                    holds: Vec::new(),
                }));
                a
            }
        };
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("just inserted or updated");
        for (b, bucket) in self.buckets.iter().enumerate() {
            if let Some(bucket) = bucket {
                let qu = self.queues[bucket.queue as usize]
                    .as_ref()
                    .expect("live buckets belong to live queues");
                if let Some(score) = agent.score(qu.requirement(bucket.variant)) {
                    agent.elig.push(Elig {
                        bucket: u32::try_from(b).expect("fewer than 2^32 buckets"),
                        score,
                        key: None,
                    });
                }
            }
        }
        for (q, qu) in self.queues.iter().enumerate() {
            if let Some(qu) = qu
                && agent.score(&qu.spec.requirements).is_some()
            {
                agent
                    .qualifies
                    .push(u32::try_from(q).expect("fewer than 2^32 queues"));
            }
        }
        self.refresh_agent(a);
        self.dirty_agents.push(a);
    }

    fn agent_removed(&mut self, now: MonoTime, id: AgentId) {
        let Some(&a) = self.agent_ids.get(&id) else {
            self.ignore("agent_removed", IgnoreReason::UnknownAgent);
            return;
        };
        let holds = self.agents[a as usize]
            .as_ref()
            .expect("the id map points at live agents")
            .holds
            .clone();
        for slot in holds {
            match self.ix(slot).state {
                IxState::Offered { .. } => {
                    self.end_offer(now, slot);
                    self.requeue(now, slot);
                }
                IxState::Connected { .. } | IxState::WrapUp { .. } => {
                    self.release(now, slot);
                    self.free_ix(slot);
                }
                IxState::Waiting { .. } => {}
            }
        }
        self.set_counted(a, false, false);
        let agent = self.agents[a as usize]
            .take()
            .expect("the id map points at live agents");
        for e in agent.elig {
            if let Some(k) = e.key
                && let Some(bucket) = self.buckets[e.bucket as usize].as_mut()
            {
                bucket.free.remove(&k);
            }
        }
        self.agent_ids.remove(&id);
    }

    fn presence(&mut self, now: MonoTime, id: AgentId, available: bool) {
        let Some(&a) = self.agent_ids.get(&id) else {
            self.ignore("agent_presence", IgnoreReason::UnknownAgent);
            return;
        };
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("the id map points at live agents");
        if agent.available == available {
            return;
        }
        agent.available = available;
        if available {
            agent.idle_since = now;
            self.dirty_agents.push(a);
        }
        self.refresh_agent(a);
    }

    /// Adjusts an agent's contribution to its queues' staffed / idle counts.
    fn set_counted(&mut self, a: u32, staffed: bool, idle: bool) {
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("callers pass live agents");
        if agent.counted_staffed == staffed && agent.counted_idle == idle {
            return;
        }
        let ds = i64::from(staffed) - i64::from(agent.counted_staffed);
        let di = i64::from(idle) - i64::from(agent.counted_idle);
        for &q in &agent.qualifies {
            if let Some(qu) = self.queues[q as usize].as_mut() {
                qu.staffed = u32::try_from(i64::from(qu.staffed) + ds).unwrap_or(0);
                qu.idle = u32::try_from(i64::from(qu.idle) + di).unwrap_or(0);
            }
        }
        agent.counted_staffed = staffed;
        agent.counted_idle = idle;
    }

    /// Brings an agent's entries in its buckets' free indexes and its staffed / idle counts in
    /// line with its presence, load and idle time.
    fn refresh_agent(&mut self, a: u32) {
        let agent = self.agents[a as usize]
            .as_ref()
            .expect("callers pass live agents");
        let available = agent.available;
        let idle = available && agent.has_free_any();
        self.set_counted(a, available, idle);
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("callers pass live agents");
        let mut free = [false; CHANNELS];
        if available {
            for c in Channel::ALL {
                free[c.index()] = agent.has_free(c);
            }
        }
        let (id, load, idle_since) = (agent.id, agent.load, agent.idle_since);
        for e in agent.elig.iter_mut() {
            let bucket = self.buckets[e.bucket as usize]
                .as_mut()
                .expect("an agent's eligibility points at live buckets");
            let c = bucket.channel.index();
            let key = free[c].then_some(AgentKey {
                score: Reverse(e.score),
                load: load[c],
                idle_since,
                id,
                slot: a,
            });
            if key != e.key {
                if let Some(old) = e.key {
                    bucket.free.remove(&old);
                }
                if let Some(new) = key {
                    bucket.free.insert(new);
                }
                e.key = key;
            }
        }
    }

    // ----- interactions ---------------------------------------------------------------------

    fn arrived(&mut self, now: MonoTime, arrival: Arrival) {
        if self.ix_ids.contains_key(&arrival.id) {
            self.ignore("interaction_arrived", IgnoreReason::Duplicate);
            return;
        }
        let Some(&q) = self.queue_ids.get(&arrival.queue) else {
            self.outputs.push_back(Output::Withdrawn {
                interaction: arrival.id,
                reason: WithdrawReason::NoSuchQueue,
            });
            return;
        };
        let qu = self.queues[q as usize]
            .as_ref()
            .expect("the id map points at live queues");
        let since = arrival.waiting_since.unwrap_or(now).min(now);
        self.seq += 1;
        let mut skills = arrival.skills;
        skills.sort_unstable_by(|a, b| a.skill.cmp(&b.skill).then(b.min_level.cmp(&a.min_level)));
        skills.dedup_by_key(|r| r.skill);
        let ix = Interaction {
            id: arrival.id,
            channel: arrival.channel,
            queue: Some(q),
            variant: 0,
            skills,
            priority: arrival.priority.unwrap_or(qu.spec.priority),
            since,
            seq: self.seq,
            entered: since,
            next_rule: 0,
            overflow_at: None,
            hop_at: now,
            hops: 0,
            cooldowns: Vec::new(),
            // Placeholder, set by `place`.
            state: IxState::Waiting { bucket: u32::MAX },
        };
        let slot = self.alloc_ix(ix);
        let variant = self.base_variant(q, slot);
        self.ix_mut(slot).variant = variant;
        self.place(slot);
        self.advance_overflow(now, slot);
        self.dirty_ixs.push(slot);
        self.run_matching(now);
        let ix = self.ix(slot);
        if !matches!(ix.state, IxState::Waiting { .. }) {
            return;
        }
        let q = ix.queue.expect("waiting interactions have a queue");
        let qu = self.queues[q as usize]
            .as_ref()
            .expect("waiting interactions are in live queues");
        let position = if ix.since == now {
            // A fresh arrival is the last of its priority class: everyone else in the queue
            // waits since `now` or earlier and arrived before it.
            let higher: usize = qu
                .prio_counts
                .range((Bound::Excluded(ix.priority), Bound::Unbounded))
                .map(|(_, n)| n)
                .sum();
            higher + qu.prio_counts.get(&ix.priority).copied().unwrap_or(1)
        } else {
            self.position_of(slot)
                .expect("a waiting interaction has a position")
        };
        let out = Output::EstimatedWait {
            interaction: ix.id,
            queue: qu.spec.id,
            position,
            wait: estimate(qu, position),
        };
        self.outputs.push_back(out);
    }

    fn priority_changed(&mut self, id: InteractionId, priority: i32) {
        let Some(&slot) = self.ix_ids.get(&id) else {
            self.ignore("priority_changed", IgnoreReason::UnknownInteraction);
            return;
        };
        match self.ix(slot).state {
            IxState::Waiting { .. } => {
                self.unplace(slot);
                self.ix_mut(slot).priority = priority;
                self.place(slot);
            }
            IxState::Offered { .. } => self.ix_mut(slot).priority = priority,
            IxState::Connected { .. } | IxState::WrapUp { .. } => {
                self.ignore("priority_changed", IgnoreReason::WrongState)
            }
        }
    }

    fn withdrawn(&mut self, now: MonoTime, id: InteractionId) {
        let Some(&slot) = self.ix_ids.get(&id) else {
            self.ignore("interaction_withdrawn", IgnoreReason::UnknownInteraction);
            return;
        };
        match self.ix(slot).state {
            IxState::Waiting { .. } => {
                self.unplace(slot);
                self.free_ix(slot);
            }
            IxState::Offered { .. } => {
                self.end_offer(now, slot);
                self.free_ix(slot);
            }
            IxState::Connected { .. } | IxState::WrapUp { .. } => {
                self.ignore("interaction_withdrawn", IgnoreReason::WrongState)
            }
        }
    }

    /// Checks that `interaction` is offered to `agent`; emits `Ignored` otherwise.
    fn offered_to(
        &mut self,
        input: &'static str,
        id: InteractionId,
        agent: AgentId,
    ) -> Option<u32> {
        let Some(&slot) = self.ix_ids.get(&id) else {
            self.ignore(input, IgnoreReason::UnknownInteraction);
            return None;
        };
        let Some(&a) = self.agent_ids.get(&agent) else {
            self.ignore(input, IgnoreReason::UnknownAgent);
            return None;
        };
        match self.ix(slot).state {
            IxState::Offered { agent: holder, .. } if holder == a => Some(slot),
            IxState::Offered { .. } => {
                self.ignore(input, IgnoreReason::WrongAgent);
                None
            }
            _ => {
                self.ignore(input, IgnoreReason::WrongState);
                None
            }
        }
    }

    fn accepted(&mut self, now: MonoTime, id: InteractionId, agent: AgentId) {
        let Some(slot) = self.offered_to("offer_accepted", id, agent) else {
            return;
        };
        let ix = self.ix_mut(slot);
        let IxState::Offered { agent, expires_at } = ix.state else {
            unreachable!("offered_to checked the state")
        };
        ix.state = IxState::Connected { agent, since: now };
        let q = ix.queue;
        self.timers.remove(&(expires_at, Timer::OfferExpiry(slot)));
        if let Some(qu) = q.and_then(|q| self.queues[q as usize].as_mut()) {
            qu.offered = qu.offered.saturating_sub(1);
        }
    }

    fn rejected(&mut self, now: MonoTime, id: InteractionId, agent: AgentId) {
        let Some(slot) = self.offered_to("offer_rejected", id, agent) else {
            return;
        };
        let a = self.end_offer(now, slot);
        let q = self.ix(slot).queue;
        if let Some(qu) = q.and_then(|q| self.queues[q as usize].as_ref()) {
            let until = later(now, qu.spec.offer_timeout);
            self.timers.insert((until, Timer::CoolDown(slot, agent)));
            self.ix_mut(slot).cooldowns.push((agent, until));
        }
        self.requeue(now, slot);
        self.dirty_agents.push(a);
    }

    fn completed(&mut self, now: MonoTime, id: InteractionId, wrap_up: Duration) {
        let Some(&slot) = self.ix_ids.get(&id) else {
            self.ignore("interaction_completed", IgnoreReason::UnknownInteraction);
            return;
        };
        let ix = self.ix(slot);
        let IxState::Connected { agent, since } = ix.state else {
            self.ignore("interaction_completed", IgnoreReason::WrongState);
            return;
        };
        self.record_handle_time(ix.queue, now.saturating_since(since));
        if wrap_up.is_zero() {
            self.finish(now, slot, agent);
        } else {
            let until = later(now, wrap_up);
            self.ix_mut(slot).state = IxState::WrapUp { agent, until };
            self.timers.insert((until, Timer::WrapUp(slot)));
        }
    }

    fn wrap_up_finished(&mut self, now: MonoTime, slot: u32) {
        if let Some(ix) = self.ixs[slot as usize].as_ref()
            && let IxState::WrapUp { agent, .. } = ix.state
        {
            self.finish(now, slot, agent);
        }
    }

    /// Wrap-up is over: free the capacity and tell the driver.
    fn finish(&mut self, now: MonoTime, slot: u32, a: u32) {
        let interaction = self.ix(slot).id;
        let agent = self.agents[a as usize]
            .as_ref()
            .expect("held interactions belong to live agents")
            .id;
        self.outputs
            .push_back(Output::WrapUpFinished { interaction, agent });
        self.release(now, slot);
        self.free_ix(slot);
    }

    fn released(&mut self, now: MonoTime, id: InteractionId) {
        let Some(&slot) = self.ix_ids.get(&id) else {
            self.ignore("interaction_released", IgnoreReason::UnknownInteraction);
            return;
        };
        let ix = self.ix(slot);
        match ix.state {
            IxState::Connected { since, .. } => {
                self.record_handle_time(ix.queue, now.saturating_since(since));
            }
            IxState::WrapUp { .. } => {}
            IxState::Waiting { .. } | IxState::Offered { .. } => {
                self.ignore("interaction_released", IgnoreReason::WrongState);
                return;
            }
        }
        self.release(now, slot);
        self.free_ix(slot);
    }

    fn restored(&mut self, now: MonoTime, id: InteractionId, agent: AgentId, channel: Channel) {
        if self.ix_ids.contains_key(&id) {
            self.ignore("interaction_restored", IgnoreReason::Duplicate);
            return;
        }
        let Some(&a) = self.agent_ids.get(&agent) else {
            self.ignore("interaction_restored", IgnoreReason::UnknownAgent);
            return;
        };
        self.seq += 1;
        let slot = self.alloc_ix(Interaction {
            id,
            channel,
            queue: None,
            variant: 0,
            skills: Vec::new(),
            priority: 0,
            since: now,
            seq: self.seq,
            entered: now,
            next_rule: 0,
            overflow_at: None,
            hop_at: now,
            hops: 0,
            cooldowns: Vec::new(),
            state: IxState::Connected {
                agent: a,
                since: now,
            },
        });
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("the id map points at live agents");
        let c = channel.index();
        agent.load[c] = agent.load[c].saturating_add(1);
        agent.total = agent.total.saturating_add(1);
        agent.holds.push(slot);
        self.refresh_agent(a);
    }

    fn offer_expired(&mut self, now: MonoTime, slot: u32) {
        let Some(ix) = self.ixs[slot as usize].as_ref() else {
            return;
        };
        let IxState::Offered { .. } = ix.state else {
            return;
        };
        let interaction = ix.id;
        let a = self.end_offer(now, slot);
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("offers belong to live agents");
        agent.available = false;
        let agent = agent.id;
        self.refresh_agent(a);
        self.outputs
            .push_back(Output::OfferExpired { interaction, agent });
        self.requeue(now, slot);
    }

    fn cooldown_ended(&mut self, slot: u32, agent: AgentId) {
        if let Some(ix) = self.ixs[slot as usize].as_mut() {
            ix.cooldowns.retain(|(a, _)| *a != agent);
            if matches!(ix.state, IxState::Waiting { .. }) {
                self.dirty_ixs.push(slot);
            }
        }
    }

    fn record_handle_time(&mut self, q: Option<u32>, handle: Duration) {
        let Some(qu) = q.and_then(|q| self.queues[q as usize].as_mut()) else {
            return;
        };
        let alpha = self.config.handle_time_smoothing;
        let alpha = if alpha.is_finite() && alpha > 0.0 {
            alpha.min(1.0)
        } else {
            RouterConfig::default().handle_time_smoothing
        };
        qu.aht += alpha * (handle.as_secs_f64() - qu.aht);
        qu.samples += 1;
    }

    // ----- moving interactions between states -----------------------------------------------

    fn alloc_ix(&mut self, ix: Interaction) -> u32 {
        let id = ix.id;
        let slot = match self.ix_free.pop() {
            Some(s) => {
                self.ixs[s as usize] = Some(ix);
                s
            }
            None => {
                self.ixs.push(Some(ix));
                u32::try_from(self.ixs.len() - 1).expect("fewer than 2^32 interactions")
            }
        };
        self.ix_ids.insert(id, slot);
        slot
    }

    /// Forgets an interaction (already out of every bucket and off every agent).
    fn free_ix(&mut self, slot: u32) {
        let ix = self.ixs[slot as usize]
            .take()
            .expect("callers pass live interactions");
        if let Some(at) = ix.overflow_at {
            self.timers.remove(&(at, Timer::Overflow(slot)));
        }
        for (agent, until) in ix.cooldowns {
            self.timers.remove(&(until, Timer::CoolDown(slot, agent)));
        }
        match ix.state {
            IxState::Offered { expires_at, .. } => {
                self.timers.remove(&(expires_at, Timer::OfferExpiry(slot)));
            }
            IxState::WrapUp { until, .. } => {
                self.timers.remove(&(until, Timer::WrapUp(slot)));
            }
            IxState::Waiting { .. } | IxState::Connected { .. } => {}
        }
        self.ix_ids.remove(&ix.id);
        self.ix_free.push(slot);
    }

    /// Puts an interaction into the bucket of its queue, variant and channel.
    fn place(&mut self, slot: u32) {
        let ix = self.ix(slot);
        let q = ix.queue.expect("queued interactions have a queue");
        let (variant, channel, key) = (ix.variant, ix.channel, ix.key(slot));
        let b = self.bucket_for(q, variant, channel);
        self.buckets[b as usize]
            .as_mut()
            .expect("bucket_for returns a live bucket")
            .waiting
            .insert(key);
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("queued interactions are in live queues");
        *qu.prio_counts.entry(key.priority.0).or_insert(0) += 1;
        qu.waiting += 1;
        self.ix_mut(slot).state = IxState::Waiting { bucket: b };
    }

    /// Takes a waiting interaction out of its bucket (its `state` is left for the caller).
    fn unplace(&mut self, slot: u32) {
        let ix = self.ix(slot);
        let IxState::Waiting { bucket } = ix.state else {
            return;
        };
        let key = ix.key(slot);
        let q = ix.queue.expect("queued interactions have a queue");
        self.buckets[bucket as usize]
            .as_mut()
            .expect("waiting interactions are in live buckets")
            .waiting
            .remove(&key);
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("queued interactions are in live queues");
        if let Some(n) = qu.prio_counts.get_mut(&key.priority.0) {
            *n -= 1;
            if *n == 0 {
                qu.prio_counts.remove(&key.priority.0);
            }
        }
        qu.waiting -= 1;
    }

    /// Fires every overflow rule of a waiting interaction that is due at `now`, then schedules
    /// the next one.
    fn advance_overflow(&mut self, now: MonoTime, slot: u32) {
        if let Some(at) = self.ix_mut(slot).overflow_at.take() {
            self.timers.remove(&(at, Timer::Overflow(slot)));
        }
        let max_hops = u32::try_from(self.queues.len()).unwrap_or(u32::MAX);
        loop {
            let ix = self.ix(slot);
            let q = ix.queue.expect("queued interactions have a queue");
            let qu = self.queues[q as usize]
                .as_ref()
                .expect("queued interactions are in live queues");
            let Some(&r) = qu.rule_order.get(ix.next_rule) else {
                return;
            };
            let rule = &qu.spec.overflow[r];
            let due = later(ix.entered, rule.after);
            if due > now {
                self.ix_mut(slot).overflow_at = Some(due);
                self.timers.insert((due, Timer::Overflow(slot)));
                return;
            }
            let from = qu.spec.id;
            let target = match &rule.target {
                OverflowTarget::Skills(_) => None,
                OverflowTarget::Queue(t) => Some(*t),
            };
            self.ix_mut(slot).next_rule += 1;
            match target {
                None => {
                    self.unplace(slot);
                    self.ix_mut(slot).variant = u32::try_from(r + 1).unwrap_or(0);
                    self.place(slot);
                    self.outputs.push_back(Output::Overflowed {
                        interaction: self.ix(slot).id,
                        from,
                        to: from,
                        rule: r,
                    });
                }
                Some(to) => {
                    let Some(&t) = self.queue_ids.get(&to) else {
                        continue;
                    };
                    if t == q {
                        continue;
                    }
                    let ix = self.ix_mut(slot);
                    if ix.hop_at == now {
                        ix.hops += 1;
                    } else {
                        ix.hop_at = now;
                        ix.hops = 1;
                    }
                    if ix.hops > max_hops {
                        continue;
                    }
                    self.unplace(slot);
                    let variant = self.base_variant(t, slot);
                    let ix = self.ix_mut(slot);
                    ix.queue = Some(t);
                    ix.variant = variant;
                    ix.next_rule = 0;
                    ix.entered = now;
                    let interaction = ix.id;
                    self.place(slot);
                    self.outputs.push_back(Output::Overflowed {
                        interaction,
                        from,
                        to,
                        rule: r,
                    });
                }
            }
        }
    }

    /// Offers a waiting interaction to agent `a`.
    fn offer(&mut self, now: MonoTime, slot: u32, a: u32) {
        self.unplace(slot);
        let ix = self.ix_mut(slot);
        let overflow_at = ix.overflow_at.take();
        let (q, channel, interaction) = (
            ix.queue.expect("queued interactions have a queue"),
            ix.channel,
            ix.id,
        );
        if let Some(at) = overflow_at {
            self.timers.remove(&(at, Timer::Overflow(slot)));
        }
        let qu = self.queues[q as usize]
            .as_mut()
            .expect("queued interactions are in live queues");
        qu.offered += 1;
        let expires_at = later(now, qu.spec.offer_timeout);
        let queue = qu.spec.id;
        self.ix_mut(slot).state = IxState::Offered {
            agent: a,
            expires_at,
        };
        self.timers.insert((expires_at, Timer::OfferExpiry(slot)));
        let agent = self.agents[a as usize]
            .as_mut()
            .expect("free indexes hold live agents");
        let c = channel.index();
        agent.load[c] = agent.load[c].saturating_add(1);
        agent.total = agent.total.saturating_add(1);
        agent.holds.push(slot);
        let agent = agent.id;
        self.refresh_agent(a);
        self.outputs.push_back(Output::Offer {
            interaction,
            agent,
            queue,
            expires_at,
        });
    }

    /// Undoes an offer's bookkeeping (timer, queue count, the agent's reservation) and returns
    /// the agent's slot. The interaction's `state` is left for the caller.
    fn end_offer(&mut self, now: MonoTime, slot: u32) -> u32 {
        let ix = self.ix(slot);
        let IxState::Offered { agent, expires_at } = ix.state else {
            unreachable!("callers check the interaction is offered")
        };
        let q = ix.queue;
        self.timers.remove(&(expires_at, Timer::OfferExpiry(slot)));
        if let Some(qu) = q.and_then(|q| self.queues[q as usize].as_mut()) {
            qu.offered = qu.offered.saturating_sub(1);
        }
        self.release(now, slot);
        // The timer is gone; make the state say so too.
        self.ix_mut(slot).state = IxState::Connected { agent, since: now };
        agent
    }

    /// Frees the capacity an interaction holds on its agent.
    fn release(&mut self, now: MonoTime, slot: u32) {
        let ix = self.ix(slot);
        let Some(a) = ix.agent() else {
            return;
        };
        let c = ix.channel.index();
        if let IxState::WrapUp { until, .. } = ix.state {
            self.timers.remove(&(until, Timer::WrapUp(slot)));
            // Leave no dangling wrap-up timer reference behind for `free_ix`.
            self.ix_mut(slot).state = IxState::Connected {
                agent: a,
                since: now,
            };
        }
        let Some(agent) = self.agents[a as usize].as_mut() else {
            return;
        };
        agent.load[c] = agent.load[c].saturating_sub(1);
        agent.total = agent.total.saturating_sub(1);
        agent.idle_since = now;
        if let Some(i) = agent.holds.iter().position(|&s| s == slot) {
            agent.holds.swap_remove(i);
        }
        self.refresh_agent(a);
        self.dirty_agents.push(a);
    }

    /// Puts an interaction whose offer ended back at its place in its queue (or withdraws it if
    /// the queue is gone).
    fn requeue(&mut self, now: MonoTime, slot: u32) {
        let q = self.ix(slot).queue;
        if q.and_then(|q| self.queues[q as usize].as_ref()).is_none() {
            let interaction = self.ix(slot).id;
            self.outputs.push_back(Output::Withdrawn {
                interaction,
                reason: WithdrawReason::NoSuchQueue,
            });
            self.free_ix(slot);
            return;
        }
        self.place(slot);
        self.advance_overflow(now, slot);
        self.dirty_ixs.push(slot);
    }

    // ----- matching -------------------------------------------------------------------------

    /// Makes every offer that the changes since the last call allow.
    fn run_matching(&mut self, now: MonoTime) {
        while !self.dirty_ixs.is_empty() || !self.dirty_agents.is_empty() {
            if !self.dirty_ixs.is_empty() {
                let mut dirty = std::mem::take(&mut self.dirty_ixs);
                dirty.retain(|&s| {
                    self.ixs[s as usize]
                        .as_ref()
                        .is_some_and(|ix| matches!(ix.state, IxState::Waiting { .. }))
                });
                dirty.sort_unstable_by_key(|&s| self.ix(s).key(s));
                dirty.dedup();
                for slot in dirty {
                    self.match_interaction(now, slot);
                }
            }
            let mut dirty = std::mem::take(&mut self.dirty_agents);
            dirty.sort_unstable();
            dirty.dedup();
            for a in dirty {
                self.match_agent(now, a);
            }
        }
    }

    /// Offers a waiting interaction to its best free eligible agent, if there is one.
    fn match_interaction(&mut self, now: MonoTime, slot: u32) -> bool {
        let ix = self.ix(slot);
        let IxState::Waiting { bucket } = ix.state else {
            return false;
        };
        let best = self
            .bucket(bucket)
            .free
            .iter()
            .find(|k| !ix.excludes(k.id))
            .map(|k| k.slot);
        match best {
            Some(a) => {
                self.offer(now, slot, a);
                true
            }
            None => false,
        }
    }

    /// Lets a free agent take work: repeatedly the first waiting interaction (in service order)
    /// among its buckets goes to its best free agent, until this agent is full or nothing fits.
    fn match_agent(&mut self, now: MonoTime, a: u32) {
        loop {
            let Some(agent) = self.agents[a as usize].as_ref() else {
                return;
            };
            if !agent.available {
                return;
            }
            let mut best: Option<IxKey> = None;
            for e in &agent.elig {
                if e.key.is_none() {
                    continue;
                }
                let bucket = self.bucket(e.bucket);
                let head = bucket
                    .waiting
                    .iter()
                    .find(|k| !self.ix(k.slot).excludes(agent.id));
                if let Some(&k) = head
                    && best.is_none_or(|b| k < b)
                {
                    best = Some(k);
                }
            }
            let Some(k) = best else {
                return;
            };
            if !self.match_interaction(now, k.slot) {
                // Cannot happen (this agent is a candidate), but never loop forever.
                return;
            }
        }
    }

    fn position_of(&self, slot: u32) -> Option<usize> {
        let ix = self.ixs.get(slot as usize)?.as_ref()?;
        let IxState::Waiting { .. } = ix.state else {
            return None;
        };
        let qu = self.queues[ix.queue? as usize].as_ref()?;
        let key = ix.key(slot);
        let before: usize = qu
            .buckets
            .iter()
            .map(|&b| self.bucket(b).waiting.range(..key).count())
            .sum();
        Some(before + 1)
    }
}

/// Estimated wait at `position`: position × AHT / max(staffed, 1).
fn estimate(qu: &Queue, position: usize) -> Duration {
    let secs = position as f64 * qu.aht / f64::from(qu.staffed.max(1));
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}
