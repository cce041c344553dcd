//! The router's inputs, outputs and configuration: the contract every driver (the server, the
//! simulator, the tests, the benchmark) speaks.

use std::time::Duration;
use switchboard_model::{
    AgentId, Capacity, Channel, InteractionId, MonoTime, QueueId, SkillLevel, SkillRequirement,
};

/// Router-wide settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Weight of the newest handle time in the moving average used for estimated wait (0..1].
    pub handle_time_smoothing: f64,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            handle_time_smoothing: 0.1,
        }
    }
}

/// A queue as the router needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// The queue.
    pub id: QueueId,
    /// Default priority of its interactions (higher is served first).
    pub priority: i32,
    /// Skills an agent needs to be offered this queue's interactions.
    pub requirements: Vec<SkillRequirement>,
    /// How long an offer waits for accept before it expires.
    pub offer_timeout: Duration,
    /// Overflow steps, in order of `after` (time waited since entering this queue).
    pub overflow: Vec<OverflowRule>,
    /// Handle time assumed for the estimated wait until real ones are measured.
    pub expected_handle_time: Duration,
}

/// After `after` of waiting, widen who may take the interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct OverflowRule {
    /// Waiting time (since the interaction entered the queue) that triggers this step.
    pub after: Duration,
    /// What happens.
    pub target: OverflowTarget,
}

/// Where an overflow sends an interaction.
#[derive(Debug, Clone, PartialEq)]
pub enum OverflowTarget {
    /// Stay in the queue but require these skills instead (usually fewer or lower levels).
    Skills(Vec<SkillRequirement>),
    /// Move to another queue (keeping its place in time and its priority).
    Queue(QueueId),
}

/// An agent as the router needs it. Presence and load are kept by the router across upserts.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// The agent.
    pub id: AgentId,
    /// Skills with levels.
    pub skills: Vec<SkillLevel>,
    /// Work held at once per channel.
    pub capacity: Capacity,
}

/// A new interaction for a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// The interaction.
    pub id: InteractionId,
    /// The queue it waits in.
    pub queue: QueueId,
    /// Its channel (capacity is counted per channel).
    pub channel: Channel,
    /// Priority; `None` takes the queue's.
    pub priority: Option<i32>,
    /// When it started waiting; `None` means `now`. A restart passes the original time so order
    /// and overflow timers survive.
    pub waiting_since: Option<MonoTime>,
    /// Skills this interaction needs besides its queue's (chosen in a flow, or given by a CRM):
    /// an agent must meet both. They follow it when it overflows to another queue; an overflow
    /// to skills replaces every requirement, these included.
    pub skills: Vec<SkillRequirement>,
}

/// Something that happened, told to the router.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A queue was created or changed.
    QueueUpserted(QueueSpec),
    /// A queue was deleted. Its waiting interactions are withdrawn (`Output::Withdrawn`).
    QueueRemoved(QueueId),
    /// An agent was created or its skills or capacity changed.
    AgentUpserted(AgentSpec),
    /// An agent was deleted. Outstanding offers to it are revoked (back to the queue head).
    AgentRemoved(AgentId),
    /// An agent became available (`true`) or went offline or on break (`false`).
    AgentPresence {
        /// The agent.
        agent: AgentId,
        /// Whether it wants offers.
        available: bool,
    },
    /// An interaction joins a queue.
    InteractionArrived(Arrival),
    /// A waiting interaction's priority changed.
    PriorityChanged {
        /// The interaction.
        interaction: InteractionId,
        /// Its new priority.
        priority: i32,
    },
    /// A waiting or offered interaction left (caller hung up, chat closed, cancelled).
    InteractionWithdrawn(InteractionId),
    /// The agent accepted the offer; the interaction is now handled by it.
    OfferAccepted {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
    },
    /// The agent turned the offer down; the interaction returns to the head of its queue and is
    /// not offered to the same agent again for the queue's `offer_timeout`.
    OfferRejected {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
    },
    /// A handled interaction is over; the agent keeps the capacity for `wrap_up`, then
    /// `Output::WrapUpFinished` frees it.
    InteractionCompleted {
        /// The interaction.
        interaction: InteractionId,
        /// After-contact work time.
        wrap_up: Duration,
    },
    /// A handled interaction leaves its agent without wrap-up (transfer away, crash recovery).
    InteractionReleased(InteractionId),
    /// A restart: the interaction was connected to `agent` before; count it against capacity.
    InteractionRestored {
        /// The interaction.
        interaction: InteractionId,
        /// Its agent.
        agent: AgentId,
        /// Its channel.
        channel: Channel,
    },
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Offer `interaction` to `agent`; the offer expires at `expires_at`.
    Offer {
        /// The interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
        /// The queue it came from.
        queue: QueueId,
        /// When it expires unless accepted.
        expires_at: MonoTime,
    },
    /// The offer was not answered in time: the interaction is back at the head of its queue and
    /// the agent is no longer available (the driver records a break with reason `missed_offer`).
    OfferExpired {
        /// The interaction.
        interaction: InteractionId,
        /// The agent who missed it.
        agent: AgentId,
    },
    /// An overflow rule fired.
    Overflowed {
        /// The interaction.
        interaction: InteractionId,
        /// The queue it was in.
        from: QueueId,
        /// The queue it is in now (the same queue for a skills overflow).
        to: QueueId,
        /// Index of the rule that fired in the original queue's `overflow`.
        rule: usize,
    },
    /// Estimated wait for a newly arrived interaction (for announcements).
    EstimatedWait {
        /// The interaction.
        interaction: InteractionId,
        /// Its queue.
        queue: QueueId,
        /// Its position, 1 = next.
        position: usize,
        /// The estimate.
        wait: Duration,
    },
    /// Wrap-up time is over; the agent's capacity is free again.
    WrapUpFinished {
        /// The interaction.
        interaction: InteractionId,
        /// Its agent.
        agent: AgentId,
    },
    /// The interaction was removed by the router itself (its queue was deleted, or it arrived for
    /// a queue that does not exist).
    Withdrawn {
        /// The interaction.
        interaction: InteractionId,
        /// Why.
        reason: WithdrawReason,
    },
    /// An input that does not fit the router's state (unknown id, offer accepted by the wrong
    /// agent, duplicate arrival). The state is unchanged; the driver logs or answers 409.
    Ignored {
        /// The input's kind.
        input: &'static str,
        /// Why it was ignored.
        reason: IgnoreReason,
    },
}

/// Why the router withdrew an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    /// Its queue does not exist (any more).
    NoSuchQueue,
}

/// Why an input was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The interaction is not known to the router.
    UnknownInteraction,
    /// The agent is not known to the router.
    UnknownAgent,
    /// The interaction is already known (duplicate arrival).
    Duplicate,
    /// The interaction is not in a state where this input applies (e.g. accept without offer).
    WrongState,
    /// The interaction is offered to another agent.
    WrongAgent,
    /// The queue is not known to the router.
    UnknownQueue,
}

/// A queue's figures right now.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// Interactions waiting (not counting offered ones).
    pub waiting: usize,
    /// Interactions offered and not yet answered.
    pub offered: usize,
    /// Longest current wait among waiting interactions.
    pub longest_wait: Duration,
    /// Agents present (available) who qualify for the queue.
    pub staffed: usize,
    /// Of those, agents with free capacity on at least one channel.
    pub idle: usize,
    /// Estimated wait for a new arrival.
    pub estimated_wait: Duration,
}
