//! Response shapes of the API (ids as strings, times as RFC 3339).

use crate::clock::rfc3339;
use crate::engine::AgentStatus;
use crate::shapes::{AgentSkill, CapacityBody};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_store::{AgentRecord, Customer, Event, Interaction, Skill, User};
use utoipa::ToSchema;

/// The error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code (`invalid_json`, `not_found`, `forbidden`, ...).
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
}

/// A user account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// `agent`, `supervisor` or `admin`.
    pub role: String,
    /// Name shown to others.
    pub display_name: String,
    /// The user's agent profile, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Tenant id.
    pub tenant: String,
}

impl UserView {
    /// From a stored user.
    pub fn new(u: &User, agent: Option<switchboard_model::AgentId>) -> Self {
        UserView {
            id: u.id.to_string(),
            username: u.username.clone(),
            role: u.role.as_str().to_owned(),
            display_name: u.display_name.clone(),
            agent_id: agent.map(|a| a.to_string()),
            tenant: u.tenant.to_string(),
        }
    }
}

/// A skill.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkillView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Creation time.
    pub created_at: String,
}

impl From<&Skill> for SkillView {
    fn from(s: &Skill) -> Self {
        SkillView {
            id: s.id.to_string(),
            name: s.name.clone(),
            description: s.description.clone(),
            created_at: rfc3339(s.created_at),
        }
    }
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    /// Id.
    pub id: String,
    /// Its login account.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Skills with levels.
    pub skills: Vec<AgentSkill>,
    /// Capacity.
    pub capacity: CapacityBody,
    /// Live state.
    pub status: Option<AgentStatus>,
    /// Creation time.
    pub created_at: String,
}

impl AgentView {
    /// From a stored agent and its live status.
    pub fn new(a: &AgentRecord, status: Option<AgentStatus>) -> Self {
        AgentView {
            id: a.id.to_string(),
            user_id: a.user.to_string(),
            name: a.name.clone(),
            skills: serde_json::from_value(a.skills.clone()).unwrap_or_default(),
            capacity: serde_json::from_value(a.capacity.clone())
                .unwrap_or_else(|_| switchboard_model::Capacity::default().into()),
            status,
            created_at: rfc3339(a.created_at),
        }
    }
}

/// An interaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionView {
    /// Id.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// State: `flow`, `queued`, `offered`, `connected`, `wrap_up`, `ended`.
    pub state: String,
    /// Queue.
    pub queue_id: Option<String>,
    /// Priority.
    pub priority: i32,
    /// Subject.
    pub subject: Option<String>,
    /// Customer.
    pub customer_id: Option<String>,
    /// Attributes.
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// Agent offered or handling it.
    pub agent_id: Option<String>,
    /// Outcome code.
    pub disposition: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// When it began waiting in its queue.
    pub waiting_since: Option<String>,
    /// Last offer.
    pub offered_at: Option<String>,
    /// When accepted.
    pub answered_at: Option<String>,
    /// When the conversation ended.
    pub ended_at: Option<String>,
    /// Last change.
    pub updated_at: String,
    /// Ordered events (on `GET /api/v1/interactions/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
}

impl From<&Interaction> for InteractionView {
    fn from(i: &Interaction) -> Self {
        InteractionView {
            id: i.id.to_string(),
            channel: i.channel.as_str().to_owned(),
            state: i.state.as_str().to_owned(),
            queue_id: i.queue.map(|q| q.to_string()),
            priority: i.priority,
            subject: i.subject.clone(),
            customer_id: i.customer.map(|c| c.to_string()),
            attributes: i.attributes.clone(),
            agent_id: i.agent.map(|a| a.to_string()),
            disposition: i.disposition.clone(),
            notes: i.notes.clone(),
            created_at: rfc3339(i.created_at),
            waiting_since: i.waiting_since.map(rfc3339),
            offered_at: i.offered_at.map(rfc3339),
            answered_at: i.answered_at.map(rfc3339),
            ended_at: i.ended_at.map(rfc3339),
            updated_at: rfc3339(i.updated_at),
            events: None,
        }
    }
}

/// One event of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Position in the log.
    pub seq: i64,
    /// Type (`interaction.created`, `interaction.offered`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// When.
    pub at: String,
    /// Details.
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            seq: e.seq,
            kind: e.kind.clone(),
            at: rfc3339(e.at),
            data: e.data.clone(),
        }
    }
}

/// A contact point.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPointBody {
    /// `phone` (E.164), `email`, or a provider name.
    pub kind: String,
    /// The number, address or handle.
    pub value: String,
}

/// A customer, with history on `GET /api/v1/customers/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Contact points.
    pub contact_points: Vec<ContactPointBody>,
    /// Creation time.
    pub created_at: String,
    /// Every interaction of the customer on every channel, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<InteractionView>>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        CustomerView {
            id: c.id.to_string(),
            name: c.name.clone(),
            contact_points: c
                .contact_points
                .iter()
                .map(|p| ContactPointBody {
                    kind: p.kind.clone(),
                    value: p.value.expose().clone(),
                })
                .collect(),
            created_at: rfc3339(c.created_at),
            history: None,
        }
    }
}
