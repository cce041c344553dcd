//! Flows (IVR and chat bot): named, versioned definitions editable while running. Saving
//! (`PUT`) makes a new version that new interactions run at once; running ones keep theirs.
//! A definition that does not validate is refused with 422 `invalid_flow`, naming the node.
//! Reads are for staff; writes for supervisors and admins.

use super::views::ErrorBody;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_flow::FlowDef;
use switchboard_model::{FlowId, Role};
use switchboard_store::flows::{FlowRecord, FlowVersion};
use utoipa::ToSchema;

/// A flow with its current definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowView {
    /// Id.
    pub id: String,
    /// Name, unique in the tenant.
    pub name: String,
    /// The version new interactions run.
    pub version: i64,
    /// The definition (docs/flows.md).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Created.
    pub created_at: String,
    /// Last saved.
    pub updated_at: String,
}

impl From<&FlowRecord> for FlowView {
    fn from(f: &FlowRecord) -> Self {
        FlowView {
            id: f.id.to_string(),
            name: f.name.clone(),
            version: f.current_version,
            definition: f.definition.clone(),
            created_at: rfc3339(f.created_at),
            updated_at: rfc3339(f.updated_at),
        }
    }
}

/// One saved version of a flow.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowVersionView {
    /// Version number, from 1.
    pub version: i64,
    /// The definition.
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Saved.
    pub created_at: String,
    /// Who saved it.
    pub author_id: Option<String>,
}

impl From<&FlowVersion> for FlowVersionView {
    fn from(v: &FlowVersion) -> Self {
        FlowVersionView {
            version: v.version,
            definition: v.definition.clone(),
            created_at: rfc3339(v.created_at),
            author_id: v.author.map(|a| a.to_string()),
        }
    }
}

/// Body of `POST /api/v1/flows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFlow {
    /// Name, unique in the tenant.
    pub name: String,
    /// The definition (docs/flows.md).
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// Body of `PUT /api/v1/flows/{id}`: a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowUpdate {
    /// New name (optional).
    pub name: Option<String>,
    /// The new version's definition.
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// Body and answer of `/api/v1/flow-settings`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Id of the flow the chat widget runs; `null` sends chats straight to their queue.
    pub chat_flow: Option<String>,
}

/// Validates a definition; 422 `invalid_flow` naming the node otherwise.
pub fn check_definition(v: &Value) -> Result<FlowDef, ApiError> {
    FlowDef::from_json(v).map_err(|e| ApiError::unprocessable("invalid_flow", e.to_string()))
}

fn check_flow_name(name: &str) -> Result<(), ApiError> {
    crate::shapes::check_name("name", name).map_err(|e| {
        ApiError::unprocessable("invalid_value", format!("{}: {}", e.field, e.problem))
    })
}

/// Lists the tenant's flows.
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = Vec<FlowView>), (status = 401, body = ErrorBody)))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Vec<FlowView>>> {
    let flows = s.store.flows(caller.user.tenant).await?;
    Ok(ApiJson(flows.iter().map(FlowView::from).collect()))
}

/// Creates a flow (supervisor, admin); its definition becomes version 1.
#[utoipa::path(post, path = "/api/v1/flows", tag = "flows", request_body = NewFlow,
    responses((status = 201, body = FlowView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewFlow>,
) -> ApiResult<(StatusCode, ApiJson<FlowView>)> {
    caller.require(Role::Supervisor)?;
    check_flow_name(&body.name)?;
    check_definition(&body.definition)?;
    let now = s.clock.wall_ms();
    let f = FlowRecord {
        id: FlowId::from_uuid(s.clock.new_uuid()),
        tenant: caller.user.tenant,
        name: body.name,
        current_version: 1,
        definition: body.definition,
        created_at: now,
        updated_at: now,
    };
    s.store.create_flow(&f, Some(caller.user.id)).await?;
    Ok((StatusCode::CREATED, ApiJson(FlowView::from(&f))))
}

async fn load(s: &AppState, caller: &Caller, id: FlowId) -> ApiResult<FlowRecord> {
    s.store
        .flow(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("flow"))
}

/// Reads a flow with its current definition.
#[utoipa::path(get, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = String, Path)),
    responses((status = 200, body = FlowView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<FlowId>,
) -> ApiResult<ApiJson<FlowView>> {
    Ok(ApiJson(FlowView::from(&load(&s, &caller, id).await?)))
}

/// Saves a new version (supervisor, admin). New interactions run it at once; running ones
/// keep the version they started with.
#[utoipa::path(put, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = String, Path)), request_body = FlowUpdate,
    responses((status = 200, body = FlowView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<FlowId>,
    ApiJson(body): ApiJson<FlowUpdate>,
) -> ApiResult<ApiJson<FlowView>> {
    caller.require(Role::Supervisor)?;
    load(&s, &caller, id).await?;
    if let Some(n) = &body.name {
        check_flow_name(n)?;
    }
    check_definition(&body.definition)?;
    let f = s
        .store
        .save_flow_version(
            caller.user.tenant,
            id,
            body.name.as_deref(),
            &body.definition,
            Some(caller.user.id),
            s.clock.wall_ms(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("flow"))?;
    Ok(ApiJson(FlowView::from(&f)))
}

/// Deletes a flow and its versions (supervisor, admin). Running interactions finish with the
/// copy they hold; a chat flow setting naming it is cleared.
#[utoipa::path(delete, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<FlowId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Supervisor)?;
    if s.store.delete_flow(caller.user.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("flow"))
    }
}

/// Every version of a flow, oldest first.
#[utoipa::path(get, path = "/api/v1/flows/{id}/versions", tag = "flows", params(("id" = String, Path)),
    responses((status = 200, body = Vec<FlowVersionView>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<FlowId>,
) -> ApiResult<ApiJson<Vec<FlowVersionView>>> {
    load(&s, &caller, id).await?;
    let vs = s.store.flow_versions(caller.user.tenant, id).await?;
    Ok(ApiJson(vs.iter().map(FlowVersionView::from).collect()))
}

/// One version of a flow.
#[utoipa::path(get, path = "/api/v1/flows/{id}/versions/{version}", tag = "flows",
    params(("id" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = FlowVersionView), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(FlowId, i64)>,
) -> ApiResult<ApiJson<FlowVersionView>> {
    let v = s
        .store
        .flow_version(caller.user.tenant, id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("flow version"))?;
    Ok(ApiJson(FlowVersionView::from(&v)))
}

/// The tenant's flow settings (which flow the chat widget runs).
#[utoipa::path(get, path = "/api/v1/flow-settings", tag = "flows",
    responses((status = 200, body = FlowSettings), (status = 401, body = ErrorBody)))]
pub async fn get_settings(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<FlowSettings>> {
    let chat_flow = s.store.chat_flow(caller.user.tenant).await?;
    Ok(ApiJson(FlowSettings {
        chat_flow: chat_flow.map(|f| f.to_string()),
    }))
}

/// Sets which flow the chat widget runs (supervisor, admin); `null` for none.
#[utoipa::path(put, path = "/api/v1/flow-settings", tag = "flows", request_body = FlowSettings,
    responses((status = 200, body = FlowSettings), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<FlowSettings>,
) -> ApiResult<ApiJson<FlowSettings>> {
    caller.require(Role::Supervisor)?;
    let flow = match &body.chat_flow {
        None => None,
        Some(id) => {
            let unknown = || ApiError::unprocessable("unknown_flow", "no such flow in this tenant");
            let id: FlowId = id.parse().map_err(|_| unknown())?;
            s.store
                .flow(caller.user.tenant, id)
                .await?
                .ok_or_else(unknown)?;
            Some(id)
        }
    };
    s.store
        .set_chat_flow(caller.user.tenant, flow, s.clock.wall_ms())
        .await?;
    Ok(ApiJson(body))
}
