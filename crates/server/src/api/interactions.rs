//! Interactions (create tasks, list, read with events, accept, reject, end, transfer) and
//! customers (contact points and cross-channel history).

use super::views::{ContactPointBody, CustomerView, ErrorBody, EventView, InteractionView};
use crate::auth::Caller;
use crate::engine::{Command, TransferTarget};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use switchboard_model::{
    AgentId, Channel, CustomerId, InteractionId, InteractionState, QueueId, Role, Sensitive,
    TenantId,
};
use switchboard_store::{ContactPoint, Customer, InteractionFilter};
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /api/v1/interactions`: a task from a CRM or another system.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Queue id or queue name.
    pub queue: String,
    /// Subject shown to the agent.
    pub subject: String,
    /// Customer id.
    #[schema(value_type = Option<String>)]
    pub customer: Option<CustomerId>,
    /// Free attributes (a JSON object, at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    /// Priority (default: the queue's); higher first.
    pub priority: Option<i32>,
    /// Skills the task needs besides its queue's: an agent must have them all (at
    /// `min_level`, default 1). They stay with it through overflows and transfers.
    #[serde(default)]
    pub skills: Vec<TaskSkill>,
}

/// A skill a task needs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSkill {
    /// Skill id or name.
    pub skill: String,
    /// Least level, 1-10 (default 1).
    pub min_level: Option<u8>,
}

/// Body of `POST /api/v1/interactions/{id}/end`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndBody {
    /// Outcome code (one of the queue's dispositions when it lists any).
    pub disposition: String,
    /// Notes.
    pub notes: Option<String>,
}

/// Body of `POST /api/v1/interactions/{id}/transfer`: exactly one target.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Target queue id or name: the interaction waits there for the next agent.
    pub queue: Option<String>,
    /// Target agent id or username: offered to that agent alone (it must be available; a call
    /// that agent's phones do not take waits in the interaction's queue).
    pub agent: Option<String>,
    /// Target phone number (calls only): dialled through the tenant's outbound trunk, and the
    /// interaction ends with disposition `transferred`.
    pub number: Option<String>,
}

/// Filters of `GET /api/v1/interactions`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this queue (id).
    pub queue: Option<String>,
    /// Only this customer (id).
    pub customer: Option<String>,
    /// Only this agent (id; supervisors).
    pub agent: Option<String>,
    /// At most this many (1-1000, default 100).
    pub limit: Option<i64>,
}

fn parse_filter<T: std::str::FromStr>(
    name: &str,
    v: Option<String>,
) -> Result<Option<T>, ApiError> {
    v.map(|s| {
        s.parse().map_err(|_| {
            ApiError::bad_request("invalid_query", format!("{name}: {s:?} is not valid"))
        })
    })
    .transpose()
}

pub(super) async fn resolve_queue(
    s: &AppState,
    tenant: TenantId,
    q: &str,
) -> Result<QueueId, ApiError> {
    find_queue(s, tenant, q).await?.ok_or_else(|| {
        ApiError::unprocessable("unknown_queue", format!("no queue {q:?} in this tenant"))
    })
}

/// A queue by id or name (exact, else ignoring ASCII case: a phone's keypad has no case).
pub(crate) async fn find_queue(
    s: &AppState,
    tenant: TenantId,
    q: &str,
) -> Result<Option<QueueId>, ApiError> {
    if let Ok(id) = q.parse::<QueueId>() {
        return Ok(s.store.queue(tenant, id).await?.map(|x| x.id));
    }
    let queues = s.store.queues(tenant).await?;
    let found = queues
        .iter()
        .find(|x| x.name == q)
        .or_else(|| queues.iter().find(|x| x.name.eq_ignore_ascii_case(q)));
    Ok(found.map(|x| x.id))
}

/// [`find_agent`], or 422 `unknown_agent`.
pub(crate) async fn resolve_agent(
    s: &AppState,
    tenant: TenantId,
    a: &str,
) -> Result<AgentId, ApiError> {
    find_agent(s, tenant, a).await?.ok_or_else(|| {
        ApiError::unprocessable("unknown_agent", format!("no agent {a:?} in this tenant"))
    })
}

/// An agent of the tenant by id, login username or SIP username (the user part of its
/// phones' address-of-record, what a phone's Refer-To names).
pub(crate) async fn find_agent(
    s: &AppState,
    tenant: TenantId,
    a: &str,
) -> Result<Option<AgentId>, ApiError> {
    if let Ok(id) = a.parse::<AgentId>() {
        return Ok(s.store.agent(tenant, id).await?.map(|x| x.id));
    }
    if let Some(u) = s.store.user_by_username(a).await?
        && u.tenant == tenant
        && let Some(agent) = s
            .store
            .agents(tenant)
            .await?
            .into_iter()
            .find(|x| x.user == u.id)
    {
        return Ok(Some(agent.id));
    }
    Ok(s.store
        .sip_credentials(tenant)
        .await?
        .into_iter()
        .find(|c| c.username == a)
        .map(|c| c.agent))
}

/// Lists interactions, newest first. Agents see only their own.
#[utoipa::path(get, path = "/api/v1/interactions", tag = "interactions", params(ListQuery),
    responses((status = 200, body = Vec<InteractionView>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<Vec<InteractionView>>> {
    let mut f = InteractionFilter {
        state: parse_filter::<InteractionState>("state", q.state)?,
        channel: parse_filter::<Channel>("channel", q.channel)?,
        queue: parse_filter::<QueueId>("queue", q.queue)?,
        customer: parse_filter::<CustomerId>("customer", q.customer)?,
        agent: parse_filter::<AgentId>("agent", q.agent)?,
        limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
    };
    if !caller.is_supervisor() {
        f.agent = Some(caller.agent.ok_or_else(|| {
            ApiError::forbidden("only agents and supervisors can list interactions")
        })?);
    }
    let list = s.store.interactions(caller.user.tenant, &f).await?;
    Ok(ApiJson(list.iter().map(InteractionView::from).collect()))
}

/// Creates a task interaction in a queue (supervisor, admin or an integration account). It is
/// stored before this answers, then routed.
#[utoipa::path(post, path = "/api/v1/interactions", tag = "interactions", request_body = NewTask,
    responses((status = 201, body = InteractionView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<NewTask>,
) -> ApiResult<(StatusCode, ApiJson<InteractionView>)> {
    caller.require(Role::Supervisor)?;
    let tenant = caller.user.tenant;
    let queue = resolve_queue(&s, tenant, &b.queue).await?;
    if b.subject.chars().count() > 1000 {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "subject: at most 1000 characters",
        ));
    }
    let attributes = b
        .attributes
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !attributes.is_object() || attributes.to_string().len() > 16 * 1024 {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "attributes: a JSON object of at most 16 KiB",
        ));
    }
    if let Some(c) = b.customer
        && s.store.customer(tenant, c).await?.is_none()
    {
        return Err(ApiError::unprocessable(
            "unknown_customer",
            format!("no customer {c} in this tenant"),
        ));
    }
    let mut attributes = attributes;
    // The routing skills are the server's to set, from `skills`, checked against this tenant.
    if let Value::Object(m) = &mut attributes {
        m.remove(crate::engine::ROUTING_SKILLS);
    }
    if !b.skills.is_empty() {
        if b.skills.len() > 20 {
            return Err(ApiError::unprocessable(
                "invalid_value",
                "skills: at most 20",
            ));
        }
        let known = s.store.skills(tenant).await?;
        let mut own = Vec::new();
        for t in &b.skills {
            let skill = known
                .iter()
                .find(|k| k.name == t.skill || k.id.to_string() == t.skill)
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "unknown_skill",
                        format!("no skill {:?} in this tenant", t.skill),
                    )
                })?;
            let min_level = t.min_level.unwrap_or(1);
            if !switchboard_model::SKILL_LEVELS.contains(&min_level) {
                return Err(ApiError::unprocessable(
                    "invalid_value",
                    "skills: min_level is 1 to 10",
                ));
            }
            own.push(switchboard_model::SkillRequirement {
                skill: skill.id,
                min_level,
            });
        }
        attributes[crate::engine::ROUTING_SKILLS] = crate::engine::routing_skills_json(&own);
    }
    let it = s
        .ask(tenant, |reply| Command::Create {
            channel: switchboard_model::Channel::Task,
            queue,
            subject: Some(b.subject),
            customer: b.customer,
            attributes,
            priority: b.priority,
            reply,
        })
        .await??;
    Ok((StatusCode::CREATED, ApiJson(InteractionView::from(&it))))
}

/// Reads an interaction with its ordered events. Every role of the tenant may read any
/// interaction (agents open a customer's earlier contacts from the history); only listing is
/// limited to an agent's own.
#[utoipa::path(get, path = "/api/v1/interactions/{id}", tag = "interactions", params(("id" = String, Path)),
    responses((status = 200, body = InteractionView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<InteractionView>> {
    let tenant = caller.user.tenant;
    let it = s
        .store
        .interaction(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("interaction"))?;
    let events = s.store.interaction_events(tenant, id).await?;
    let mut v = InteractionView::from(&it);
    v.events = Some(events.iter().map(EventView::from).collect());
    Ok(ApiJson(v))
}

/// 404 unless the interaction exists in the caller's tenant.
async fn exists(s: &AppState, caller: &Caller, id: InteractionId) -> Result<(), ApiError> {
    match s.store.interaction(caller.user.tenant, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("interaction")),
    }
}

fn own_agent(caller: &Caller) -> Result<AgentId, ApiError> {
    caller
        .agent
        .ok_or_else(|| ApiError::forbidden("only an agent can accept or reject offers"))
}

/// Accepts an offer made to the calling agent.
#[utoipa::path(post, path = "/api/v1/interactions/{id}/accept", tag = "interactions", params(("id" = String, Path)),
    responses((status = 200, body = InteractionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn accept(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<InteractionView>> {
    let agent = own_agent(&caller)?;
    exists(&s, &caller, id).await?;
    let it = s
        .ask(caller.user.tenant, |reply| Command::Accept {
            id,
            agent,
            reply,
        })
        .await??;
    Ok(ApiJson(InteractionView::from(&it)))
}

/// Rejects an offer made to the calling agent; the interaction goes back to the head of its
/// queue for another agent.
#[utoipa::path(post, path = "/api/v1/interactions/{id}/reject", tag = "interactions", params(("id" = String, Path)),
    responses((status = 200, body = InteractionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<InteractionView>> {
    let agent = own_agent(&caller)?;
    exists(&s, &caller, id).await?;
    let it = s
        .ask(caller.user.tenant, |reply| Command::Reject {
            id,
            agent,
            reply,
        })
        .await??;
    Ok(ApiJson(InteractionView::from(&it)))
}

fn acting_agent(caller: &Caller) -> Result<Option<AgentId>, ApiError> {
    if caller.is_supervisor() {
        Ok(None)
    } else {
        caller
            .agent
            .map(Some)
            .ok_or_else(|| ApiError::forbidden("no agent profile"))
    }
}

/// Ends an interaction with a disposition: a connected one goes to wrap-up (the queue's
/// `wrap_up_s`) and then ends; a waiting one is cancelled (supervisors).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/end", tag = "interactions", params(("id" = String, Path)), request_body = EndBody,
    responses((status = 200, body = InteractionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn end(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<EndBody>,
) -> ApiResult<ApiJson<InteractionView>> {
    let by_agent = acting_agent(&caller)?;
    crate::shapes::check_name("disposition", &b.disposition).map_err(|e| {
        ApiError::unprocessable("invalid_value", format!("{}: {}", e.field, e.problem))
    })?;
    if b.notes.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "notes: at most 10000 characters",
        ));
    }
    exists(&s, &caller, id).await?;
    let it = s
        .ask(caller.user.tenant, |reply| Command::End {
            id,
            by_agent,
            disposition: b.disposition,
            notes: b.notes,
            reply,
        })
        .await??;
    Ok(ApiJson(InteractionView::from(&it)))
}

/// Transfers a connected interaction to another queue or to an agent (its agent or a
/// supervisor).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/transfer", tag = "interactions", params(("id" = String, Path)), request_body = TransferBody,
    responses((status = 200, body = InteractionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transfer(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<TransferBody>,
) -> ApiResult<ApiJson<InteractionView>> {
    let by_agent = acting_agent(&caller)?;
    exists(&s, &caller, id).await?;
    let tenant = caller.user.tenant;
    let to = match (&b.queue, &b.agent, &b.number) {
        (Some(q), None, None) => TransferTarget::Queue(resolve_queue(&s, tenant, q).await?),
        (None, Some(a), None) => TransferTarget::Agent(resolve_agent(&s, tenant, a).await?),
        (None, None, Some(n)) => {
            TransferTarget::Number(crate::voice::outbound_number(&s, tenant, n).await?.0)
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_target",
                "give exactly one of \"queue\", \"agent\" and \"number\"",
            ));
        }
    };
    let it = s
        .ask(tenant, |reply| Command::Transfer {
            id,
            by_agent,
            to,
            reply,
        })
        .await??;
    Ok(ApiJson(InteractionView::from(&it)))
}

/// Body of `POST /api/v1/interactions/{id}/hold`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Hold the caller (music on hold) or take the call back.
    pub on: bool,
}

/// Holds a connected call's caller (music on hold; the agent's phone stays connected) or takes
/// the call back, as the agent's phone does with a re-INVITE: `interaction.held` and
/// `interaction.resumed` (with `hold_s`), hold time counted apart from talk time. Its agent, or
/// a supervisor.
#[utoipa::path(post, path = "/api/v1/interactions/{id}/hold", tag = "interactions", params(("id" = String, Path)), request_body = HoldBody,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn hold(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<HoldBody>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let by_agent = acting_agent(&caller)?;
    let it = s
        .store
        .interaction(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("interaction"))?;
    if by_agent.is_some() && it.agent != by_agent {
        return Err(ApiError::forbidden(
            "only the call's agent or a supervisor holds it",
        ));
    }
    if it.channel != Channel::Voice || it.state != InteractionState::Connected {
        return Err(ApiError::conflict(
            "wrong_state",
            "only a connected call is held or taken back",
        ));
    }
    let held = match s.call_recorder.get() {
        Some(r) => r.hold(id, b.on).await,
        None => None,
    };
    match held {
        Some(true) => Ok(ApiJson(
            serde_json::json!({"interaction_id": id, "held": b.on}),
        )),
        _ => Err(ApiError::conflict(
            "no_live_media",
            "no live call media for this interaction",
        )),
    }
}

/// Body of `POST /api/v1/customers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Name.
    pub name: String,
    /// Contact points (each unique in the tenant).
    #[serde(default)]
    pub contact_points: Vec<ContactPointBody>,
}

/// Filters of `GET /api/v1/customers`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// A contact point value (phone number, email, handle) to look up.
    pub contact: Option<String>,
    /// At most this many (1-1000, default 100).
    pub limit: Option<i64>,
}

fn normalize_contact(kind: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    let bad = |m: &str| ApiError::unprocessable("invalid_value", format!("contact_points: {m}"));
    match kind {
        "phone" => switchboard_model::phone::normalize(v, None)
            .map(String::from)
            .map_err(|e| {
                bad(&format!(
                    "phone numbers must be E.164, like +15551234567 ({e})"
                ))
            }),
        "email" => {
            let ok = v.len() <= 254
                && v.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
            if ok {
                Ok(v.to_lowercase())
            } else {
                Err(bad("not an email address"))
            }
        }
        k if !k.is_empty()
            && k.len() <= 32
            && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
        {
            if v.is_empty() || v.len() > 256 {
                Err(bad("handles are 1-256 characters"))
            } else {
                Ok(v.to_owned())
            }
        }
        _ => Err(bad(
            "kind must be phone, email or a provider name in lower case",
        )),
    }
}

/// Lists customers, newest first, or finds them by a contact point.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = Vec<CustomerView>)))]
pub async fn list_customers(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> ApiResult<ApiJson<Vec<CustomerView>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // Look up the same normalized form POST stores: E.164 for numbers, lower case for emails.
    let contact = q.contact.map(|c| {
        let kind = if c.contains('@') { "email" } else { "phone" };
        normalize_contact(kind, &c).unwrap_or_else(|_| c.trim().to_owned())
    });
    let list = s
        .store
        .customers(caller.user.tenant, contact.as_deref(), limit)
        .await?;
    Ok(ApiJson(list.iter().map(CustomerView::from).collect()))
}

/// Creates a customer with contact points.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = CustomerView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_customer(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<NewCustomer>,
) -> ApiResult<(StatusCode, ApiJson<CustomerView>)> {
    crate::shapes::check_name("name", &b.name).map_err(|e| {
        ApiError::unprocessable("invalid_value", format!("{}: {}", e.field, e.problem))
    })?;
    if b.contact_points.len() > 50 {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "contact_points: at most 50",
        ));
    }
    let mut cps = Vec::new();
    for p in &b.contact_points {
        cps.push(ContactPoint {
            kind: p.kind.clone(),
            value: Sensitive::new(normalize_contact(&p.kind, &p.value)?),
        });
    }
    let c = Customer {
        id: CustomerId::from_uuid(s.clock.new_uuid()),
        tenant: caller.user.tenant,
        name: b.name,
        created_at: s.clock.wall_ms(),
        contact_points: cps,
    };
    s.store.create_customer(&c).await?;
    Ok((StatusCode::CREATED, ApiJson(CustomerView::from(&c))))
}

/// Reads a customer with contact points and the whole cross-channel history.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
pub async fn get_customer(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<CustomerId>,
) -> ApiResult<ApiJson<CustomerView>> {
    let tenant = caller.user.tenant;
    let c = s
        .store
        .customer(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let history = s
        .store
        .interactions(
            tenant,
            &InteractionFilter {
                customer: Some(id),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await?;
    let mut v = CustomerView::from(&c);
    v.history = Some(history.iter().map(InteractionView::from).collect());
    Ok(ApiJson(v))
}

#[cfg(test)]
mod tests {
    use super::normalize_contact;

    #[test]
    fn contact_points_are_normalized_or_refused() {
        assert_eq!(
            normalize_contact("phone", "+1 (555) 123-4567").expect("ok"),
            "+15551234567"
        );
        assert!(normalize_contact("phone", "5551234567").is_err());
        assert_eq!(
            normalize_contact("email", " Ana@Example.COM ").expect("ok"),
            "ana@example.com"
        );
        assert!(normalize_contact("email", "nobody").is_err());
        assert_eq!(normalize_contact("whatsapp", "+4915").expect("ok"), "+4915");
        assert!(normalize_contact("Bad Kind", "x").is_err());
    }
}
