//! One customer across channels: manual merges (events, undoable exactly) and the customer
//! timeline of every interaction on every channel in time order.

use super::views::ErrorBody;
use crate::auth::Caller;
use crate::engine::Command;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_model::{CustomerId, InteractionId, MergeId};
use switchboard_store::{CustomerMerge, InteractionFilter, NewEvent};
use utoipa::ToSchema;

/// A merge of two customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeView {
    /// Id (undo with `POST /api/v1/customers/{id}/merges/{merge_id}/undo`).
    pub id: String,
    /// The customer that stayed.
    pub customer_id: String,
    /// The customer merged into it.
    pub other_id: String,
    /// What moved: contact points (`[kind, value]`), interactions, chat sessions (count).
    #[schema(value_type = Object)]
    pub moved: Value,
    /// Who merged.
    pub by_user: Option<String>,
    /// When.
    pub at: String,
    /// When it was undone.
    pub undone_at: Option<String>,
}

impl From<&CustomerMerge> for MergeView {
    fn from(m: &CustomerMerge) -> Self {
        let moved = m.moved.expose();
        MergeView {
            id: m.id.to_string(),
            customer_id: m.customer.to_string(),
            other_id: m.other.to_string(),
            moved: json!({
                "contact_points": moved["contact_points"],
                "interactions": moved["interactions"],
                // Session token hashes are not shown; how many moved is.
                "chat_sessions": moved["chat_sessions"].as_array().map_or(0, Vec::len),
            }),
            by_user: m.by_user.clone(),
            at: crate::clock::rfc3339(m.created_at),
            undone_at: m.undone_at.map(crate::clock::rfc3339),
        }
    }
}

/// Body of `POST /api/v1/customers/{id}/merge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The customer to merge into this one.
    #[schema(value_type = String)]
    pub other_id: CustomerId,
}

fn moved_interactions(m: &CustomerMerge) -> Vec<InteractionId> {
    m.moved.expose()["interactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect()
}

fn merge_event(kind: &str, m: &CustomerMerge, at: i64) -> NewEvent {
    NewEvent {
        tenant: m.tenant,
        interaction: None,
        agent: None,
        kind: kind.to_owned(),
        at,
        data: json!({
            "merge_id": m.id, "customer_id": m.customer, "other_id": m.other,
            "contact_points": m.moved.expose()["contact_points"].as_array().map_or(0, Vec::len),
            "interactions": m.moved.expose()["interactions"],
        }),
    }
}

/// Merges another customer into this one: its contact points, interactions and chat sessions
/// move here and it is removed. Recorded as an event with what moved; undoable.
#[utoipa::path(post, path = "/api/v1/customers/{id}/merge", tag = "customers", params(("id" = String, Path)), request_body = MergeBody,
    responses((status = 201, body = MergeView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn merge(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<CustomerId>,
    ApiJson(b): ApiJson<MergeBody>,
) -> ApiResult<(StatusCode, ApiJson<MergeView>)> {
    if b.other_id == id {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "other_id: a customer cannot be merged into itself",
        ));
    }
    let tenant = caller.user.tenant;
    let now = s.clock.wall_ms();
    let (m, e) = s
        .store
        .merge_customers(
            MergeId::from_uuid(s.clock.new_uuid()),
            tenant,
            id,
            b.other_id,
            Some(caller.user.id.to_string()),
            |m| merge_event("customer.merged", m, now),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    s.tell(
        tenant,
        Command::CustomerChanged {
            ids: moved_interactions(&m),
            customer: id,
        },
    )
    .await?;
    if let Some(e) = e {
        s.bus.publish(crate::bus::BusEvent::from(e));
    }
    Ok((StatusCode::CREATED, ApiJson(MergeView::from(&m))))
}

/// The merges into a customer, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/merges", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Vec<MergeView>), (status = 404, body = ErrorBody)))]
pub async fn list_merges(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<CustomerId>,
) -> ApiResult<ApiJson<Vec<MergeView>>> {
    let tenant = caller.user.tenant;
    if s.store.customer(tenant, id).await?.is_none() {
        return Err(ApiError::not_found("customer"));
    }
    let list = s.store.customer_merges(tenant, id).await?;
    Ok(ApiJson(list.iter().map(MergeView::from).collect()))
}

/// Undoes a merge exactly (a manual split): the other customer comes back with its id, and
/// everything that moved moves back.
#[utoipa::path(post, path = "/api/v1/customers/{id}/merges/{merge_id}/undo", tag = "customers",
    params(("id" = String, Path), ("merge_id" = String, Path)),
    responses((status = 200, body = MergeView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn undo_merge(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath((id, merge_id)): ApiPath<(CustomerId, MergeId)>,
) -> ApiResult<ApiJson<MergeView>> {
    let tenant = caller.user.tenant;
    let now = s.clock.wall_ms();
    let (m, e) = s
        .store
        .undo_merge(tenant, id, merge_id, now, |m| {
            merge_event("customer.merge_undone", m, now)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("merge"))?
        .map_err(|why| ApiError::conflict("cannot_undo", why))?;
    s.tell(
        tenant,
        Command::CustomerChanged {
            ids: moved_interactions(&m),
            customer: m.other,
        },
    )
    .await?;
    if let Some(e) = e {
        s.bus.publish(crate::bus::BusEvent::from(e));
    }
    Ok(ApiJson(MergeView::from(&m)))
}

/// One interaction of a customer's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Interaction id.
    pub interaction_id: String,
    /// Its channel.
    pub channel: String,
    /// Where its replies go now, if it continued on another channel.
    pub continued_on: Option<String>,
    /// State.
    pub state: String,
    /// Subject.
    pub subject: Option<String>,
    /// Handling agent.
    pub agent_id: Option<String>,
    /// Disposition.
    pub disposition: Option<String>,
    /// Messages shown to the customer.
    pub messages: i64,
    /// Start.
    pub started_at: String,
    /// Last message.
    pub last_message_at: Option<String>,
    /// End.
    pub ended_at: Option<String>,
}

/// Every interaction of a customer on every channel, oldest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/timeline", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TimelineEntry>), (status = 404, body = ErrorBody)))]
pub async fn timeline(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<CustomerId>,
) -> ApiResult<ApiJson<Vec<TimelineEntry>>> {
    let tenant = caller.user.tenant;
    if s.store.customer(tenant, id).await?.is_none() {
        return Err(ApiError::not_found("customer"));
    }
    let mut list = s
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
    list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let counts = s.store.conversation_counts(tenant, id).await?;
    let threads = s.store.customer_threads(tenant, id).await?;
    Ok(ApiJson(
        list.iter()
            .map(|it| {
                let c = counts.iter().find(|c| c.0 == it.id);
                let t = threads.iter().find(|t| t.interaction == it.id);
                TimelineEntry {
                    interaction_id: it.id.to_string(),
                    channel: it.channel.as_str().to_owned(),
                    continued_on: t
                        .filter(|t| t.channel != it.channel)
                        .map(|t| t.channel.as_str().to_owned()),
                    state: it.state.as_str().to_owned(),
                    subject: it.subject.clone(),
                    agent_id: it.agent.map(|a| a.to_string()),
                    disposition: it.disposition.clone(),
                    messages: c.map_or(0, |c| c.1),
                    started_at: crate::clock::rfc3339(it.created_at),
                    last_message_at: c.map(|c| crate::clock::rfc3339(c.2)),
                    ended_at: it.ended_at.map(crate::clock::rfc3339),
                }
            })
            .collect(),
    ))
}
