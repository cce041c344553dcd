//! The rows the store reads and writes. Times are UTC milliseconds since the Unix epoch;
//! configuration documents are JSON values whose shape the server owns.

use serde_json::Value;
use switchboard_model::{
    AgentId, Channel, CustomerId, InteractionId, InteractionState, Presence, QueueId, Role,
    Sensitive, SkillId, TenantId, UserId,
};

/// A tenant: one business.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Short unique name (`demo`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A login account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Login name, unique across tenants.
    pub username: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Name shown to others.
    pub display_name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A login session; the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Hex SHA-256 of the bearer token.
    pub token_hash: String,
    /// Its user.
    pub user: UserId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Creation time.
    pub created_at: i64,
    /// Expiry time.
    pub expires_at: i64,
}

/// A skill.
#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    /// Id.
    pub id: SkillId,
    /// Tenant.
    pub tenant: TenantId,
    /// Unique name within the tenant.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: i64,
}

/// A queue: a name and a versioned configuration document.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    /// Id.
    pub id: QueueId,
    /// Tenant.
    pub tenant: TenantId,
    /// Unique name within the tenant.
    pub name: String,
    /// Configuration (JSON; shape owned by the server).
    pub config: Value,
    /// Incremented at every change.
    pub version: i64,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// An agent profile and its presence.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    /// Id.
    pub id: AgentId,
    /// Tenant.
    pub tenant: TenantId,
    /// The login account.
    pub user: UserId,
    /// Display name.
    pub name: String,
    /// Skills with levels (JSON).
    pub skills: Value,
    /// Capacity (JSON).
    pub capacity: Value,
    /// Presence.
    pub presence: Presence,
    /// Reason for a break.
    pub presence_reason: Option<String>,
    /// When the presence last changed.
    pub presence_since: i64,
    /// Creation time.
    pub created_at: i64,
}

/// A way to reach a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPoint {
    /// `phone`, `email` or a provider name (`whatsapp`, `telegram`, ...).
    pub kind: String,
    /// The number, address or handle.
    pub value: Sensitive<String>,
}

/// A customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Id.
    pub id: CustomerId,
    /// Tenant.
    pub tenant: TenantId,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// Contact points.
    pub contact_points: Vec<ContactPoint>,
}

/// The current state of an interaction (a projection of its events).
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    /// Id.
    pub id: InteractionId,
    /// Tenant.
    pub tenant: TenantId,
    /// Channel.
    pub channel: Channel,
    /// State.
    pub state: InteractionState,
    /// Queue it waits in or came from.
    pub queue: Option<QueueId>,
    /// Priority (higher first).
    pub priority: i32,
    /// Subject line.
    pub subject: Option<String>,
    /// Customer.
    pub customer: Option<CustomerId>,
    /// Free attributes (JSON object).
    pub attributes: Value,
    /// Agent offered or handling it.
    pub agent: Option<AgentId>,
    /// Outcome code.
    pub disposition: Option<String>,
    /// Agent's notes.
    pub notes: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// When it started waiting in its queue.
    pub waiting_since: Option<i64>,
    /// Last offer time.
    pub offered_at: Option<i64>,
    /// When an agent accepted it.
    pub answered_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

/// A filter for listing interactions.
#[derive(Debug, Clone, Default)]
pub struct InteractionFilter {
    /// Only this state.
    pub state: Option<InteractionState>,
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Only this queue.
    pub queue: Option<QueueId>,
    /// Only this customer.
    pub customer: Option<CustomerId>,
    /// Only this agent.
    pub agent: Option<AgentId>,
    /// At most this many (default 100).
    pub limit: Option<i64>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Tenant.
    pub tenant: TenantId,
    /// The interaction it is about, if any.
    pub interaction: Option<InteractionId>,
    /// The agent it is about, if any.
    pub agent: Option<AgentId>,
    /// Event type (`interaction.created`, `agent.state_changed`, ...).
    pub kind: String,
    /// When it happened.
    pub at: i64,
    /// Details.
    pub data: Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the log (orders everything).
    pub seq: i64,
    /// Tenant.
    pub tenant: TenantId,
    /// The interaction it is about, if any.
    pub interaction: Option<InteractionId>,
    /// The agent it is about, if any.
    pub agent: Option<AgentId>,
    /// Event type.
    pub kind: String,
    /// When it happened.
    pub at: i64,
    /// Details.
    pub data: Value,
}

/// One write of a [`crate::Store::commit`] transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Append an event.
    Event(NewEvent),
    /// Insert or replace an interaction's projection row.
    Interaction(Interaction),
    /// Set an agent's presence.
    AgentPresence {
        /// Tenant.
        tenant: TenantId,
        /// Agent.
        agent: AgentId,
        /// New presence.
        presence: Presence,
        /// Reason (breaks).
        reason: Option<String>,
        /// When.
        since: i64,
    },
}

/// A queue's service figures over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueService {
    /// Queue.
    pub queue: QueueId,
    /// Answered or abandoned in the period.
    pub offered: i64,
    /// Answered within the service-level threshold.
    pub answered_in_threshold: i64,
    /// Answered.
    pub answered: i64,
    /// Ended without being answered.
    pub abandoned: i64,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The customer.
    Customer,
    /// An agent (or supervisor).
    Agent,
    /// Switchboard itself (greetings, automated replies).
    System,
}

impl Sender {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Customer => "customer",
            Sender::Agent => "agent",
            Sender::System => "system",
        }
    }
}

impl std::str::FromStr for Sender {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Sender::Customer),
            "agent" => Ok(Sender::Agent),
            "system" => Ok(Sender::System),
            other => Err(format!("unknown sender {other:?}")),
        }
    }
}

/// A message of a digital conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// Its interaction.
    pub interaction: InteractionId,
    /// Position in the conversation, from 1 (assigned by the store).
    pub seq: i64,
    /// Who wrote it.
    pub sender: Sender,
    /// The writing user or customer.
    pub author_id: Option<String>,
    /// Name shown with it.
    pub author_name: Option<String>,
    /// The text.
    pub body: Sensitive<String>,
    /// An internal note, never shown to the customer.
    pub internal: bool,
    /// The sender's own id for de-duplication of retries.
    pub client_id: Option<String>,
    /// When it was stored.
    pub created_at: i64,
    /// Files it carries: a JSON array of `{id, name, content_type, size}` ([`Attachment`]s).
    pub attachments: serde_json::Value,
}

/// A file that came with a message (chat upload, provider media, email attachment). The bytes
/// are stored by their SHA-256; this record says whose they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// The interaction it was sent in (`None` while uploaded but not yet sent).
    pub interaction: Option<InteractionId>,
    /// The message that carries it, once sent.
    pub message: Option<String>,
    /// Who uploaded it: `customer:<id>` or `user:<id>` (or `provider:<account>`).
    pub uploaded_by: String,
    /// File name as given (shown, never used as a path).
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the bytes (hex): where they are stored.
    pub sha256: String,
    /// When it was stored.
    pub created_at: i64,
}

impl Attachment {
    /// What a message shows of it.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "name": self.name, "content_type": self.content_type, "size": self.size})
    }
}

/// A customer's chat session (the widget keeps the token; only its hash is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSession {
    /// Hex SHA-256 of the session token.
    pub token_hash: String,
    /// Tenant.
    pub tenant: TenantId,
    /// The customer.
    pub customer: CustomerId,
    /// The open (or last) conversation.
    pub interaction: Option<InteractionId>,
    /// Creation time.
    pub created_at: i64,
    /// Last use.
    pub last_seen_at: i64,
}

/// Read marks of a conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadMarks {
    /// The customer has read up to here.
    pub customer: i64,
    /// The agent has read up to here.
    pub agent: i64,
}
