//! Small builders shared by the router's integration tests.
#![allow(dead_code)]

use std::time::Duration;
use switchboard_model::{
    AgentId, Capacity, Channel, InteractionId, MonoTime, QueueId, SkillId, SkillLevel,
    SkillRequirement,
};
use switchboard_routing::*;

pub fn q(n: u128) -> QueueId {
    QueueId::from_u128(n)
}
pub fn a(n: u128) -> AgentId {
    AgentId::from_u128(n)
}
pub fn i(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}
pub fn s(n: u128) -> SkillId {
    SkillId::from_u128(n)
}
pub fn t(secs: u64) -> MonoTime {
    MonoTime::from_secs(secs)
}
pub fn ms(millis: u64) -> MonoTime {
    MonoTime::from_millis(millis)
}
pub fn req(skill: u128, min_level: u8) -> SkillRequirement {
    SkillRequirement {
        skill: s(skill),
        min_level,
    }
}

/// A queue requiring `reqs`, priority 0, 20 s offer timeout, 60 s expected handle time.
pub fn queue(id: u128, reqs: Vec<SkillRequirement>) -> QueueSpec {
    QueueSpec {
        id: q(id),
        priority: 0,
        requirements: reqs,
        offer_timeout: Duration::from_secs(20),
        overflow: Vec::new(),
        expected_handle_time: Duration::from_secs(60),
    }
}

/// An agent with `skills` as (skill, level) and the default capacity.
pub fn agent(id: u128, skills: &[(u128, u8)]) -> AgentSpec {
    AgentSpec {
        id: a(id),
        skills: skills
            .iter()
            .map(|&(sk, level)| SkillLevel {
                skill: s(sk),
                level,
            })
            .collect(),
        capacity: Capacity::default(),
    }
}

pub fn arrival(id: u128, queue: u128, channel: Channel) -> Input {
    Input::InteractionArrived(Arrival {
        id: i(id),
        queue: q(queue),
        channel,
        priority: None,
        waiting_since: None,
        skills: Vec::new(),
    })
}

/// An arrival that needs `skills` besides its queue's.
pub fn arrival_needing(
    id: u128,
    queue: u128,
    channel: Channel,
    skills: Vec<SkillRequirement>,
) -> Input {
    Input::InteractionArrived(Arrival {
        id: i(id),
        queue: q(queue),
        channel,
        priority: None,
        waiting_since: None,
        skills,
    })
}

pub fn arrival_with(
    id: u128,
    queue: u128,
    channel: Channel,
    priority: Option<i32>,
    waiting_since: Option<MonoTime>,
) -> Input {
    Input::InteractionArrived(Arrival {
        id: i(id),
        queue: q(queue),
        channel,
        priority,
        waiting_since,
        skills: Vec::new(),
    })
}

pub fn present(id: u128) -> Input {
    Input::AgentPresence {
        agent: a(id),
        available: true,
    }
}

pub fn accept(ix: u128, ag: u128) -> Input {
    Input::OfferAccepted {
        interaction: i(ix),
        agent: a(ag),
    }
}

pub fn reject(ix: u128, ag: u128) -> Input {
    Input::OfferRejected {
        interaction: i(ix),
        agent: a(ag),
    }
}

pub fn complete(ix: u128, wrap_secs: u64) -> Input {
    Input::InteractionCompleted {
        interaction: i(ix),
        wrap_up: Duration::from_secs(wrap_secs),
    }
}

/// Every pending output.
pub fn drain(r: &mut Router) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// Feeds one input at `now` and returns the outputs.
pub fn feed(r: &mut Router, now: MonoTime, input: Input) -> Vec<Output> {
    r.handle_input(now, input);
    drain(r)
}

/// Fires timers at `now` and returns the outputs.
pub fn tick(r: &mut Router, now: MonoTime) -> Vec<Output> {
    r.handle_timeout(now);
    drain(r)
}

/// The (interaction, agent) pairs offered in `outs`.
pub fn offers(outs: &[Output]) -> Vec<(InteractionId, AgentId)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Offer {
                interaction, agent, ..
            } => Some((*interaction, *agent)),
            _ => None,
        })
        .collect()
}

/// A router with the given queues and agents (all made available at time zero).
pub fn router_with(queues: Vec<QueueSpec>, agents: Vec<AgentSpec>) -> Router {
    let mut r = Router::new(RouterConfig::default());
    for qs in queues {
        r.handle_input(MonoTime::ZERO, Input::QueueUpserted(qs));
    }
    for ag in agents {
        let id = ag.id;
        r.handle_input(MonoTime::ZERO, Input::AgentUpserted(ag));
        r.handle_input(
            MonoTime::ZERO,
            Input::AgentPresence {
                agent: id,
                available: true,
            },
        );
    }
    drain(&mut r);
    r
}
