//! Identifiers: sortable UUIDv7 values wrapped in one newtype per kind of thing, rendered as
//! strings in the API. Making a fresh id reads the clock, so only the runtime does it
//! (`Id::from_uuid`); engines receive ids as inputs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// An id string that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId(pub String);

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a valid id (expected a UUID)", self.0)
    }
}

impl std::error::Error for BadId {}

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Wraps a UUID (the runtime makes UUIDv7s; tests may use any).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            /// A deterministic id from a number, for tests and simulations.
            pub const fn from_u128(n: u128) -> Self {
                Self(Uuid::from_u128(n))
            }
            /// The UUID inside.
            pub const fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| BadId(s.to_owned()))
            }
        }
    )*};
}

id_type!(
    /// A tenant: one business, isolated from every other.
    TenantId,
    /// A login account.
    UserId,
    /// An agent profile (skills, capacity, state) of a user.
    AgentId,
    /// A queue.
    QueueId,
    /// A skill.
    SkillId,
    /// An interaction: one routed conversation on one channel.
    InteractionId,
    /// A customer.
    CustomerId,
    /// A flow.
    FlowId,
    /// A messaging provider account (an SMS number, a WhatsApp number, a bot, a page).
    ChannelAccountId,
    /// A manual merge of two customers (undoable).
    MergeId,
    /// A call recording.
    RecordingId,
);
