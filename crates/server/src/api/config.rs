//! Skills and queues: configuration as data, editable while running. A change is stored (with a
//! new version for queues) and then handed to the tenant's engine, which applies it live.

use super::views::{ErrorBody, SkillView};
use crate::auth::Caller;
use crate::engine::Command;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::shapes::{NewQueueDoc, QueueConfig, QueueView, check_name};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use switchboard_model::{QueueId, Role, SkillId};
use switchboard_store::{QueueRecord, Skill};
use utoipa::ToSchema;

fn invalid(e: crate::shapes::Invalid) -> ApiError {
    ApiError::unprocessable("invalid_value", format!("{}: {}", e.field, e.problem))
}

/// Body of `POST /api/v1/skills`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSkill {
    /// Name, unique in the tenant.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// Body of `PATCH /api/v1/skills/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// Lists the tenant's skills.
#[utoipa::path(get, path = "/api/v1/skills", tag = "config",
    responses((status = 200, body = Vec<SkillView>), (status = 401, body = ErrorBody)))]
pub async fn list_skills(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<SkillView>>> {
    let skills = s.store.skills(caller.user.tenant).await?;
    Ok(ApiJson(skills.iter().map(SkillView::from).collect()))
}

/// Creates a skill (admin).
#[utoipa::path(post, path = "/api/v1/skills", tag = "config", request_body = NewSkill,
    responses((status = 201, body = SkillView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_skill(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewSkill>,
) -> ApiResult<(StatusCode, ApiJson<SkillView>)> {
    caller.require(Role::Admin)?;
    check_name("name", &body.name).map_err(invalid)?;
    let skill = Skill {
        id: SkillId::from_uuid(s.clock.new_uuid()),
        tenant: caller.user.tenant,
        name: body.name,
        description: body.description,
        created_at: s.clock.wall_ms(),
    };
    s.store.put_skill(&skill).await?;
    Ok((StatusCode::CREATED, ApiJson(SkillView::from(&skill))))
}

/// Reads a skill.
#[utoipa::path(get, path = "/api/v1/skills/{id}", tag = "config", params(("id" = String, Path)),
    responses((status = 200, body = SkillView), (status = 404, body = ErrorBody)))]
pub async fn get_skill(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SkillId>,
) -> ApiResult<ApiJson<SkillView>> {
    let skill = s
        .store
        .skill(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("skill"))?;
    Ok(ApiJson(SkillView::from(&skill)))
}

/// Changes a skill (admin).
#[utoipa::path(patch, path = "/api/v1/skills/{id}", tag = "config", params(("id" = String, Path)), request_body = SkillPatch,
    responses((status = 200, body = SkillView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_skill(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SkillId>,
    ApiJson(body): ApiJson<SkillPatch>,
) -> ApiResult<ApiJson<SkillView>> {
    caller.require(Role::Admin)?;
    let mut skill = s
        .store
        .skill(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("skill"))?;
    if let Some(n) = body.name {
        check_name("name", &n).map_err(invalid)?;
        skill.name = n;
    }
    if let Some(d) = body.description {
        skill.description = d;
    }
    s.store.put_skill(&skill).await?;
    Ok(ApiJson(SkillView::from(&skill)))
}

/// Deletes a skill (admin); refused while a queue requires it.
#[utoipa::path(delete, path = "/api/v1/skills/{id}", tag = "config", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_skill(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SkillId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    for q in s.store.queues(caller.user.tenant).await? {
        let c: QueueConfig = serde_json::from_value(q.config).map_err(ApiError::internal)?;
        let used = c.required_skills.iter().any(|r| r.skill == id)
            || c.overflow
                .iter()
                .flat_map(|o| o.skills.iter().flatten())
                .any(|r| r.skill == id);
        if used {
            return Err(ApiError::conflict(
                "in_use",
                format!("queue {:?} requires this skill", q.name),
            ));
        }
    }
    if s.store.delete_skill(caller.user.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("skill"))
    }
}

fn queue_view(q: &QueueRecord) -> Result<QueueView, ApiError> {
    Ok(QueueView {
        id: q.id.to_string(),
        name: q.name.clone(),
        version: q.version,
        config: serde_json::from_value(q.config.clone()).map_err(ApiError::internal)?,
        created_at: crate::clock::rfc3339(q.created_at),
        updated_at: crate::clock::rfc3339(q.updated_at),
    })
}

/// Splits a queue body into its name and a configuration (unknown fields → 422).
fn parse_queue(
    mut body: Map<String, Value>,
    base: Value,
) -> Result<(Option<String>, QueueConfig), ApiError> {
    let name = match body.remove("name") {
        None => None,
        Some(Value::String(n)) => Some(n),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "name must be a string",
            ));
        }
    };
    let Value::Object(mut merged) = base else {
        return Err(ApiError::internal("stored queue config is not an object"));
    };
    for (k, v) in body {
        merged.insert(k, v);
    }
    let config = serde_json::from_value(Value::Object(merged)).map_err(|e| {
        ApiError::unprocessable(
            "invalid_body",
            format!("the JSON body does not fit this route: {e}"),
        )
    })?;
    Ok((name, config))
}

async fn validate_queue(
    s: &AppState,
    caller: &Caller,
    id: QueueId,
    c: &QueueConfig,
) -> Result<(), ApiError> {
    let skills: HashSet<SkillId> = s
        .store
        .skills(caller.user.tenant)
        .await?
        .iter()
        .map(|k| k.id)
        .collect();
    let queues: HashSet<QueueId> = s
        .store
        .queues(caller.user.tenant)
        .await?
        .iter()
        .map(|q| q.id)
        .collect();
    c.validate(id, &|k| skills.contains(&k), &|q| queues.contains(&q))
        .map_err(invalid)
}

/// Lists the tenant's queues.
#[utoipa::path(get, path = "/api/v1/queues", tag = "config",
    responses((status = 200, body = Vec<QueueView>), (status = 401, body = ErrorBody)))]
pub async fn list_queues(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<QueueView>>> {
    let qs = s.store.queues(caller.user.tenant).await?;
    Ok(ApiJson(
        qs.iter().map(queue_view).collect::<Result<_, _>>()?,
    ))
}

/// Creates a queue (admin). Takes effect at once.
#[utoipa::path(post, path = "/api/v1/queues", tag = "config", request_body = NewQueueDoc,
    responses((status = 201, body = QueueView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_queue(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, ApiJson<QueueView>)> {
    caller.require(Role::Admin)?;
    let (name, config) = parse_queue(body, Value::Object(Map::new()))?;
    let name = name.ok_or_else(|| ApiError::unprocessable("invalid_body", "name is required"))?;
    check_name("name", &name).map_err(invalid)?;
    let id = QueueId::from_uuid(s.clock.new_uuid());
    validate_queue(&s, &caller, id, &config).await?;
    let now = s.clock.wall_ms();
    let rec = QueueRecord {
        id,
        tenant: caller.user.tenant,
        name: name.clone(),
        config: serde_json::to_value(&config).map_err(ApiError::internal)?,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    s.store.put_queue(&rec).await?;
    s.tell(
        caller.user.tenant,
        Command::QueueUpserted { id, name, config },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(queue_view(&rec)?)))
}

/// Reads a queue.
#[utoipa::path(get, path = "/api/v1/queues/{id}", tag = "config", params(("id" = String, Path)),
    responses((status = 200, body = QueueView), (status = 404, body = ErrorBody)))]
pub async fn get_queue(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<QueueId>,
) -> ApiResult<ApiJson<QueueView>> {
    let q = s
        .store
        .queue(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("queue"))?;
    Ok(ApiJson(queue_view(&q)?))
}

/// Changes a queue (admin): the given fields replace the current ones; takes effect at once.
#[utoipa::path(patch, path = "/api/v1/queues/{id}", tag = "config", params(("id" = String, Path)), request_body = NewQueueDoc,
    responses((status = 200, body = QueueView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_queue(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<QueueId>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<ApiJson<QueueView>> {
    caller.require(Role::Admin)?;
    let mut q = s
        .store
        .queue(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("queue"))?;
    let old_retention = serde_json::from_value::<QueueConfig>(q.config.clone())
        .map(|c| c.recording.retention_days)
        .ok();
    let (name, config) = parse_queue(body, q.config.clone())?;
    if let Some(n) = name {
        check_name("name", &n).map_err(invalid)?;
        q.name = n;
    }
    validate_queue(&s, &caller, id, &config).await?;
    q.config = serde_json::to_value(&config).map_err(ApiError::internal)?;
    q.version += 1;
    q.updated_at = s.clock.wall_ms();
    s.store.put_queue(&q).await?;
    if old_retention != Some(config.recording.retention_days) {
        // retention applies to the queue's recordings already made, too
        s.store
            .set_queue_retention(caller.user.tenant, id, config.recording.retention_days)
            .await?;
    }
    s.tell(
        caller.user.tenant,
        Command::QueueUpserted {
            id,
            name: q.name.clone(),
            config,
        },
    )
    .await?;
    Ok(ApiJson(queue_view(&q)?))
}

/// Deletes a queue (admin). Interactions still waiting in it are withdrawn.
#[utoipa::path(delete, path = "/api/v1/queues/{id}", tag = "config", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_queue(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<QueueId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    for q in s.store.queues(caller.user.tenant).await? {
        let c: QueueConfig = serde_json::from_value(q.config).map_err(ApiError::internal)?;
        if c.overflow.iter().any(|o| o.queue == Some(id)) {
            return Err(ApiError::conflict(
                "in_use",
                format!("queue {:?} overflows into this queue", q.name),
            ));
        }
    }
    if !s.store.delete_queue(caller.user.tenant, id).await? {
        return Err(ApiError::not_found("queue"));
    }
    s.tell(caller.user.tenant, Command::QueueRemoved(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
