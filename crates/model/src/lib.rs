//! Switchboard's domain vocabulary: ids, channels, states, roles, monotonic time and the
//! `Sensitive` wrapper for personal data.
//!
//! This crate owns *names and shapes*, nothing else: no I/O, no clock, no storage. Every other
//! crate speaks these types, so the words match the glossary in `DESIGN.md` (customer,
//! interaction, flow, queue, agent, offer, disposition, campaign).
//!
//! Deliberately absent: behaviour. Routing rules live in `switchboard-routing`, persistence in
//! `switchboard-store`, the HTTP shapes in `switchboard-server`.

mod ids;
pub mod phone;
mod sensitive;
mod time;

pub use ids::*;
pub use phone::E164;
pub use sensitive::Sensitive;
pub use time::MonoTime;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The medium an interaction travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call (SIP/RTP or WebRTC).
    Voice,
    /// Live web chat from the widget.
    Chat,
    /// An email thread.
    Email,
    /// An SMS thread.
    Sms,
    /// A WhatsApp thread.
    Whatsapp,
    /// A Telegram thread.
    Telegram,
    /// A Facebook Messenger thread.
    Messenger,
    /// An Instagram direct-message thread.
    Instagram,
    /// A video session.
    Video,
    /// A fax.
    Fax,
    /// A work item created by a CRM or another system.
    Task,
}

impl Channel {
    /// Every channel, in a fixed order (used for dense per-channel arrays).
    pub const ALL: [Channel; 11] = [
        Channel::Voice,
        Channel::Chat,
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Telegram,
        Channel::Messenger,
        Channel::Instagram,
        Channel::Video,
        Channel::Fax,
        Channel::Task,
    ];

    /// The position of this channel in [`Channel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The API name (`"voice"`, `"chat"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Telegram => "telegram",
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::Video => "video",
            Channel::Fax => "fax",
            Channel::Task => "task",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A name that is not one of the known values of an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name {:?}", self.0)
    }
}

impl std::error::Error for UnknownName {}

/// Where an interaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionState {
    /// Running its flow (IVR, bot) before or instead of a queue.
    Flow,
    /// Waiting in a queue.
    Queued,
    /// Proposed to an agent, waiting for accept or reject.
    Offered,
    /// An agent is handling it.
    Connected,
    /// Finished; the agent is still in after-contact work.
    WrapUp,
    /// Over.
    Ended,
}

impl InteractionState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            InteractionState::Flow => "flow",
            InteractionState::Queued => "queued",
            InteractionState::Offered => "offered",
            InteractionState::Connected => "connected",
            InteractionState::WrapUp => "wrap_up",
            InteractionState::Ended => "ended",
        }
    }

    /// Every state.
    pub const ALL: [InteractionState; 6] = [
        InteractionState::Flow,
        InteractionState::Queued,
        InteractionState::Offered,
        InteractionState::Connected,
        InteractionState::WrapUp,
        InteractionState::Ended,
    ];
}

impl FromStr for InteractionState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InteractionState::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// What an agent has said about itself: whether it wants work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Logged out; receives nothing.
    Offline,
    /// Ready for offers.
    Available,
    /// Away for a reason (lunch, training, `missed_offer`); receives nothing.
    Break,
}

impl Presence {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Offline => "offline",
            Presence::Available => "available",
            Presence::Break => "break",
        }
    }
}

impl FromStr for Presence {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Presence::Offline, Presence::Available, Presence::Break]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// An account's role. Ordered: `Agent < Supervisor < Admin`; a route allowed to a role is allowed
/// to every role above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Handles interactions.
    Agent,
    /// Watches and steers agents and queues.
    Supervisor,
    /// Configures the tenant.
    Admin,
}

impl Role {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Role::Agent, Role::Supervisor, Role::Admin]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A skill an agent has, with a proficiency from 1 (novice) to 10 (expert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkillLevel {
    /// The skill.
    pub skill: SkillId,
    /// Proficiency, 1..=10.
    pub level: u8,
}

/// A skill a queue (or an overflow stage) requires, with the least level that qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkillRequirement {
    /// The skill.
    pub skill: SkillId,
    /// Least proficiency that qualifies, 1..=10.
    pub min_level: u8,
}

/// The lowest and highest skill level.
pub const SKILL_LEVELS: std::ops::RangeInclusive<u8> = 1..=10;

/// How much work of each channel an agent can hold at once.
///
/// A channel missing from `per_channel` means zero: the agent is not offered that channel.
/// With `voice_exclusive` (the default) a voice interaction is never held together with anything
/// else: an agent on a call gets no chats, and an agent with a chat gets no calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Most interactions of each channel held at once.
    pub per_channel: BTreeMap<Channel, u16>,
    /// Voice is never held together with another interaction.
    #[serde(default = "default_true")]
    pub voice_exclusive: bool,
}

fn default_true() -> bool {
    true
}

impl Default for Capacity {
    /// One call, or up to 3 chats and messaging threads, or up to 5 emails and tasks.
    fn default() -> Self {
        let mut per_channel = BTreeMap::new();
        per_channel.insert(Channel::Voice, 1);
        per_channel.insert(Channel::Video, 1);
        for c in [
            Channel::Chat,
            Channel::Sms,
            Channel::Whatsapp,
            Channel::Telegram,
            Channel::Messenger,
            Channel::Instagram,
        ] {
            per_channel.insert(c, 3);
        }
        for c in [Channel::Email, Channel::Fax, Channel::Task] {
            per_channel.insert(c, 5);
        }
        Capacity {
            per_channel,
            voice_exclusive: true,
        }
    }
}

impl Capacity {
    /// Most interactions of `channel` held at once.
    pub fn of(&self, channel: Channel) -> u16 {
        self.per_channel.get(&channel).copied().unwrap_or(0)
    }
}

/// Which of a queue's calls are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// None (the default).
    #[default]
    None,
    /// Every call.
    All,
    /// A share of the calls, chosen by the interaction id (the same call is always chosen the
    /// same way).
    Percent,
    /// Only when started through the API during the call.
    OnDemand,
}

impl RecordingMode {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMode::None => "none",
            RecordingMode::All => "all",
            RecordingMode::Percent => "percent",
            RecordingMode::OnDemand => "on_demand",
        }
    }
}

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// The call is still being written.
    Recording,
    /// Finished: the file is complete and its checksum known.
    Complete,
    /// The file was removed (by an admin or by retention); the metadata is kept.
    Deleted,
}

impl RecordingState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Complete => "complete",
            RecordingState::Deleted => "deleted",
        }
    }
}

impl FromStr for RecordingState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RecordingState::Recording,
            RecordingState::Complete,
            RecordingState::Deleted,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A stretch of a recording written as silence (card details being read out), in milliseconds
/// from the recording's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PausedSpan {
    /// Start, ms from the start of the recording.
    pub from_ms: u64,
    /// End, ms from the start of the recording.
    pub to_ms: u64,
}
