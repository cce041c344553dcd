//! The flow language shared by the IVR and the chat bot, and its interpreter.
//!
//! A flow is data: a [`FlowDef`] (JSON, stored and versioned by the server) is a set of named
//! nodes and a start node. [`FlowDef::validate`] checks it before it is saved, naming the node
//! at fault. A [`FlowRun`] interprets one definition for one interaction.
//!
//! Driving a run is the same loop as the router's (DESIGN rule 1): [`FlowRun::start`], then
//! [`FlowRun::handle_input`] for what happened (digits, a chat answer, an HTTP response, queue
//! figures) and [`FlowRun::handle_timeout`] when [`FlowRun::poll_timeout`] is due; after each,
//! take [`FlowRun::poll_output`] until `None`. Outputs are channel-neutral ([`Output::Say`],
//! [`Output::Menu`], [`Output::Queue`], ...): the chat driver writes them as bot messages and
//! buttons, the voice driver plays prompts.
//!
//! Deliberately absent: I/O of any kind (an HTTP lookup is an output whose response comes back
//! as an input), clocks (`now` is an argument: monotonic for timers, wall time for business
//! hours), randomness, and the routing itself (a `queue` node hands the interaction to the
//! driver, which queues it with the router).

mod def;
mod hours;
mod run;
mod text;

pub use def::*;
pub use hours::{Schedule, ScheduleError, Span, add_open_time, is_open};
pub use run::*;
pub use text::{Text, callback_no_number, render, substitute};
