//! The ACD router: decides which agent is offered which interaction.
//!
//! It owns queues, agents' skills, presence and load, waiting interactions, offers, overflow and
//! wrap-up timers, and the estimated wait. It does **no I/O**: the driver feeds it what happened
//! with [`Router::handle_input`] and [`Router::handle_timeout`], collects what to do from
//! [`Router::poll_output`] until `None`, and asks [`Router::poll_timeout`] when to wake it next.
//! Time is always passed in as [`MonoTime`](switchboard_model::MonoTime); the router never reads
//! a clock and uses no randomness, so the same inputs give the same outputs (the simulator and
//! the tests rely on it).
//!
//! Policy:
//! - interactions: highest priority first, then longest waiting (time entered the queue), then
//!   arrival order;
//! - agents: among those whose skills meet the requirement and who have free capacity on the
//!   channel, the best skill match (highest sum of levels on the required skills), then the
//!   least loaded on that channel, then the longest idle (since it became available or its load
//!   last dropped), then the agent id;
//! - capacity per channel is never exceeded; an offer reserves it until rejected or expired;
//!   with `voice_exclusive` voice is never held together with anything else.
//!
//! Matching is eager: when `handle_input` or `handle_timeout` returns, no waiting interaction
//! is left that a free, available, eligible agent could take (apart from an agent that declined
//! it less than the queue's `offer_timeout` ago). The choices the API leaves open (overflow
//! clocks, queue and agent removal, re-evaluation on queue changes) are listed in the `router`
//! module's docs.
//!
//! [`recording`] decides which calls a queue records (`should_record`), on the same terms: pure
//! and deterministic.
//!
//! Not here: persistence (the driver stores events), who is allowed to do what, flows, media.

mod api;
pub mod recording;
mod router;
mod state;

pub use api::*;
pub use recording::should_record;
pub use router::Router;
