//! Users (accounts and roles) and agents (skills, capacity, state).

use super::views::{AgentView, ErrorBody, UserView};
use crate::auth::{Caller, hash_password};
use crate::engine::{AgentStatus, Command};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::shapes::{AgentSkill, CapacityBody, check_agent};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use switchboard_model::{AgentId, Capacity, Presence, Role, SkillId, UserId};
use switchboard_store::{AgentRecord, User};
use utoipa::ToSchema;

fn invalid(e: crate::shapes::Invalid) -> ApiError {
    ApiError::unprocessable("invalid_value", format!("{}: {}", e.field, e.problem))
}

fn check_password(p: &str) -> Result<(), ApiError> {
    if (8..=1024).contains(&p.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_value",
            "password: 8-1024 characters",
        ))
    }
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name (unique across tenants).
    pub username: String,
    /// Password, at least 8 characters.
    pub password: String,
    /// `agent`, `supervisor` or `admin`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Name shown to others (default: the username).
    pub display_name: Option<String>,
}

/// Body of `PATCH /api/v1/users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New role.
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// New display name.
    pub display_name: Option<String>,
    /// New password.
    pub password: Option<String>,
}

/// Lists the tenant's users (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "people",
    responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<UserView>>> {
    caller.require(Role::Admin)?;
    let agents = s.store.agents(caller.user.tenant).await?;
    let users = s.store.users(caller.user.tenant).await?;
    Ok(ApiJson(
        users
            .iter()
            .map(|u| UserView::new(u, agents.iter().find(|a| a.user == u.id).map(|a| a.id)))
            .collect(),
    ))
}

/// Creates a user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "people", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, ApiJson<UserView>)> {
    caller.require(Role::Admin)?;
    let user = new_user(&s, &caller, b.username, b.password, b.role, b.display_name).await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::new(&user, None))))
}

async fn new_user(
    s: &AppState,
    caller: &Caller,
    username: String,
    password: String,
    role: Role,
    display_name: Option<String>,
) -> Result<User, ApiError> {
    crate::shapes::check_username(&username).map_err(invalid)?;
    check_password(&password)?;
    let user = User {
        id: UserId::from_uuid(s.clock.new_uuid()),
        tenant: caller.user.tenant,
        display_name: display_name.unwrap_or_else(|| username.clone()),
        username,
        password_hash: hash_password(password).await?,
        role,
        created_at: s.clock.wall_ms(),
    };
    s.store.create_user(&user).await?;
    Ok(user)
}

/// Reads a user (admin, or the user itself).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "people", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<ApiJson<UserView>> {
    if id != caller.user.id {
        caller.require(Role::Admin)?;
    }
    let u = s
        .store
        .user(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let agent = s.store.agent_of_user(u.tenant, u.id).await?.map(|a| a.id);
    Ok(ApiJson(UserView::new(&u, agent)))
}

/// Changes a user (admin; users may change their own password and display name).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "people", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch_user(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(b): ApiJson<UserPatch>,
) -> ApiResult<ApiJson<UserView>> {
    if id != caller.user.id || b.role.is_some() {
        caller.require(Role::Admin)?;
    }
    let mut u = s
        .store
        .user(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if let Some(r) = b.role {
        if u.role == Role::Admin && r != Role::Admin {
            keep_an_admin(&s, &u).await?;
        }
        u.role = r;
    }
    if let Some(d) = b.display_name {
        crate::shapes::check_name("display_name", &d).map_err(invalid)?;
        u.display_name = d;
    }
    if let Some(p) = b.password {
        check_password(&p)?;
        u.password_hash = hash_password(p).await?;
    }
    s.store.update_user(&u).await?;
    let agent = s.store.agent_of_user(u.tenant, u.id).await?.map(|a| a.id);
    Ok(ApiJson(UserView::new(&u, agent)))
}

/// Refuses to leave a tenant without an admin.
async fn keep_an_admin(s: &AppState, leaving: &User) -> Result<(), ApiError> {
    let admins = s
        .store
        .users(leaving.tenant)
        .await?
        .iter()
        .filter(|u| u.role == Role::Admin && u.id != leaving.id)
        .count();
    if admins == 0 {
        return Err(ApiError::conflict(
            "last_admin",
            "the tenant would have no admin left; make another admin first",
        ));
    }
    Ok(())
}

/// Deletes a user (admin). Its agent profile must be deleted first.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "people", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if id == caller.user.id {
        return Err(ApiError::conflict(
            "self_delete",
            "you cannot delete your own account",
        ));
    }
    if s.store
        .agent_of_user(caller.user.tenant, id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "in_use",
            "delete the user's agent profile first",
        ));
    }
    if let Some(u) = s.store.user(caller.user.tenant, id).await?
        && u.role == Role::Admin
    {
        keep_an_admin(&s, &u).await?;
    }
    if s.store.delete_user(caller.user.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("user"))
    }
}

/// Body of `POST /api/v1/agents`: either an existing `user_id`, or `username` + `password` to
/// create the agent's account with the `agent` role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// Existing account.
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    /// New account's login name.
    pub username: Option<String>,
    /// New account's password.
    pub password: Option<String>,
    /// Display name.
    pub name: String,
    /// Skills with levels 1-10.
    #[serde(default)]
    pub skills: Vec<AgentSkill>,
    /// Capacity per channel (default: 1 voice, or 3 chats, or 5 emails/tasks).
    pub capacity: Option<CapacityBody>,
}

/// Body of `PATCH /api/v1/agents/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    /// Display name.
    pub name: Option<String>,
    /// Skills (replaces the list).
    pub skills: Option<Vec<AgentSkill>>,
    /// Capacity (replaces it).
    pub capacity: Option<CapacityBody>,
}

/// Body of `PUT /api/v1/agents/{id}/state`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBody {
    /// `available`, `offline` or `break`.
    #[schema(value_type = String)]
    pub state: Presence,
    /// Reason of a break (`lunch`, `training`, ...).
    pub reason: Option<String>,
}

async fn skill_set(s: &AppState, caller: &Caller) -> Result<HashSet<SkillId>, ApiError> {
    Ok(s.store
        .skills(caller.user.tenant)
        .await?
        .iter()
        .map(|k| k.id)
        .collect())
}

async fn status(
    s: &AppState,
    caller: &Caller,
    id: AgentId,
) -> Result<Option<AgentStatus>, ApiError> {
    s.ask(caller.user.tenant, |reply| Command::Status {
        agent: id,
        reply,
    })
    .await
}

/// Lists the tenant's agents with their live state.
#[utoipa::path(get, path = "/api/v1/agents", tag = "people",
    responses((status = 200, body = Vec<AgentView>), (status = 401, body = ErrorBody)))]
pub async fn list_agents(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<AgentView>>> {
    let mut out = Vec::new();
    for a in s.store.agents(caller.user.tenant).await? {
        let st = status(&s, &caller, a.id).await?;
        out.push(AgentView::new(&a, st));
    }
    Ok(ApiJson(out))
}

/// Creates an agent (admin).
#[utoipa::path(post, path = "/api/v1/agents", tag = "people", request_body = NewAgent,
    responses((status = 201, body = AgentView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_agent(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<NewAgent>,
) -> ApiResult<(StatusCode, ApiJson<AgentView>)> {
    caller.require(Role::Admin)?;
    crate::shapes::check_name("name", &b.name).map_err(invalid)?;
    let capacity = b.capacity.unwrap_or_else(|| Capacity::default().into());
    let skills = skill_set(&s, &caller).await?;
    check_agent(&b.skills, &capacity, &|k| skills.contains(&k)).map_err(invalid)?;
    let user = match (b.user_id, b.username, b.password) {
        (Some(id), None, None) => s.store.user(caller.user.tenant, id).await?.ok_or_else(|| {
            ApiError::unprocessable("unknown_user", "no such user in this tenant")
        })?,
        (None, Some(u), Some(p)) => {
            new_user(&s, &caller, u, p, Role::Agent, Some(b.name.clone())).await?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "give either user_id, or username and password",
            ));
        }
    };
    let now = s.clock.wall_ms();
    let rec = AgentRecord {
        id: AgentId::from_uuid(s.clock.new_uuid()),
        tenant: caller.user.tenant,
        user: user.id,
        name: b.name,
        skills: serde_json::to_value(&b.skills).map_err(ApiError::internal)?,
        capacity: serde_json::to_value(&capacity).map_err(ApiError::internal)?,
        presence: Presence::Offline,
        presence_reason: None,
        presence_since: now,
        created_at: now,
    };
    s.store.put_agent(&rec).await?;
    s.tell(
        caller.user.tenant,
        Command::AgentUpserted(Box::new(rec.clone())),
    )
    .await?;
    let st = status(&s, &caller, rec.id).await?;
    Ok((StatusCode::CREATED, ApiJson(AgentView::new(&rec, st))))
}

/// Reads an agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "people", params(("id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = ErrorBody)))]
pub async fn get_agent(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
) -> ApiResult<ApiJson<AgentView>> {
    let a = s
        .store
        .agent(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    let st = status(&s, &caller, id).await?;
    Ok(ApiJson(AgentView::new(&a, st)))
}

/// Changes an agent's name, skills or capacity (admin); routing uses them at once.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "people", params(("id" = String, Path)), request_body = AgentPatch,
    responses((status = 200, body = AgentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_agent(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
    ApiJson(b): ApiJson<AgentPatch>,
) -> ApiResult<ApiJson<AgentView>> {
    caller.require(Role::Admin)?;
    let mut a = s
        .store
        .agent(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    let mut skills: Vec<AgentSkill> =
        serde_json::from_value(a.skills.clone()).map_err(ApiError::internal)?;
    let mut capacity: CapacityBody =
        serde_json::from_value(a.capacity.clone()).map_err(ApiError::internal)?;
    if let Some(n) = b.name {
        crate::shapes::check_name("name", &n).map_err(invalid)?;
        a.name = n;
    }
    if let Some(k) = b.skills {
        skills = k;
    }
    if let Some(c) = b.capacity {
        capacity = c;
    }
    let known = skill_set(&s, &caller).await?;
    check_agent(&skills, &capacity, &|k| known.contains(&k)).map_err(invalid)?;
    a.skills = serde_json::to_value(&skills).map_err(ApiError::internal)?;
    a.capacity = serde_json::to_value(&capacity).map_err(ApiError::internal)?;
    s.store.put_agent(&a).await?;
    s.tell(
        caller.user.tenant,
        Command::AgentUpserted(Box::new(a.clone())),
    )
    .await?;
    let st = status(&s, &caller, id).await?;
    Ok(ApiJson(AgentView::new(&a, st)))
}

/// Deletes an agent profile (admin); refused while it holds interactions.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "people", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_agent(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if s.store.agent(caller.user.tenant, id).await?.is_none() {
        return Err(ApiError::not_found("agent"));
    }
    s.ask(caller.user.tenant, |reply| Command::AgentRemoved {
        agent: id,
        reply,
    })
    .await??;
    s.store.delete_agent(caller.user.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn may_set_state(caller: &Caller, id: AgentId) -> Result<(), ApiError> {
    if caller.agent == Some(id) || caller.is_supervisor() {
        Ok(())
    } else {
        Err(ApiError::forbidden("agents may only set their own state"))
    }
}

/// An agent's live state.
#[utoipa::path(get, path = "/api/v1/agents/{id}/state", tag = "people", params(("id" = String, Path)),
    responses((status = 200, body = AgentStatus), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_state(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
) -> ApiResult<ApiJson<AgentStatus>> {
    // Colleagues' states are visible to every role (as in GET /agents): agents need them to
    // transfer to each other. Only setting a state is restricted.
    status(&s, &caller, id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("agent"))
}

/// Sets an agent's state: `available`, `offline`, or `break` with a reason. Agents set their
/// own; supervisors anyone's.
#[utoipa::path(put, path = "/api/v1/agents/{id}/state", tag = "people", params(("id" = String, Path)), request_body = StateBody,
    responses((status = 200, body = AgentStatus), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_state(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
    ApiJson(b): ApiJson<StateBody>,
) -> ApiResult<ApiJson<AgentStatus>> {
    may_set_state(&caller, id)?;
    if let Some(r) = &b.reason {
        crate::shapes::check_name("reason", r).map_err(invalid)?;
    }
    let st = s
        .ask(caller.user.tenant, |reply| Command::SetPresence {
            agent: id,
            presence: b.state,
            reason: b.reason,
            reply,
        })
        .await??;
    Ok(ApiJson(st))
}

/// An agent's SIP account (its phones register with it). The password is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct SipAccountView {
    /// Digest username: the user part of the phones' address (`sip:USERNAME@REALM`).
    pub username: String,
    /// Digest realm: the tenant's SIP domain.
    pub realm: String,
    /// Last change.
    pub updated_at: String,
}

/// Body of `PUT /api/v1/agents/{id}/sip`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SipAccountBody {
    /// The phones' password (8-128 characters).
    pub password: String,
    /// Username (default: the agent's login name).
    pub username: Option<String>,
    /// Realm (default: the tenant's existing SIP realm, else `TENANT.switchboard.local`).
    pub realm: Option<String>,
}

fn sip_view(c: &switchboard_store::voice::SipCredential) -> SipAccountView {
    SipAccountView {
        username: c.username.clone(),
        realm: c.realm.clone(),
        updated_at: crate::clock::rfc3339(c.updated_at),
    }
}

/// An agent's SIP account (admins, and the agent itself).
#[utoipa::path(get, path = "/api/v1/agents/{id}/sip", tag = "people", params(("id" = String, Path)),
    responses((status = 200, body = SipAccountView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_sip(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
) -> ApiResult<ApiJson<SipAccountView>> {
    if caller.agent != Some(id) {
        caller.require(Role::Admin)?;
    }
    let c = s
        .store
        .sip_credential(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("SIP account for this agent"))?;
    Ok(ApiJson(sip_view(&c)))
}

/// Sets an agent's SIP account (admin): stores only the digest hashes (MD5 and SHA-256) and
/// reloads the registrar at once.
#[utoipa::path(put, path = "/api/v1/agents/{id}/sip", tag = "people", params(("id" = String, Path)), request_body = SipAccountBody,
    responses((status = 200, body = SipAccountView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_sip(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
    ApiJson(b): ApiJson<SipAccountBody>,
) -> ApiResult<ApiJson<SipAccountView>> {
    caller.require(Role::Admin)?;
    let tenant = caller.user.tenant;
    let agent = s
        .store
        .agent(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    if !(8..=128).contains(&b.password.chars().count()) {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "password: 8-128 characters",
        ));
    }
    let username = match b.username {
        Some(u) => u,
        None => s
            .store
            .user(tenant, agent.user)
            .await?
            .map(|u| u.username)
            .ok_or_else(|| ApiError::internal("agent without user"))?,
    };
    crate::shapes::check_username(&username).map_err(invalid)?;
    let realm = match b.realm {
        Some(r) => r,
        None => match s.store.sip_credentials(tenant).await?.first() {
            Some(c) => c.realm.clone(),
            None => {
                let slug = s
                    .store
                    .tenants()
                    .await?
                    .into_iter()
                    .find(|t| t.id == tenant)
                    .map(|t| t.slug)
                    .unwrap_or_else(|| "tenant".into());
                format!("{slug}.switchboard.local")
            }
        },
    };
    let realm_ok = (1..=253).contains(&realm.len())
        && realm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
    if !realm_ok {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "realm: a domain name (letters, digits, dots, dashes)",
        ));
    }
    let c = switchboard_sip::digest::Credentials::from_password(&username, &realm, &b.password);
    let cred = switchboard_store::voice::SipCredential {
        tenant,
        agent: id,
        realm: c.realm,
        username: c.username,
        ha1_md5: c.ha1_md5.map(switchboard_model::Sensitive::new),
        ha1_sha256: c.ha1_sha256.map(switchboard_model::Sensitive::new),
        updated_at: s.clock.wall_ms(),
    };
    s.store.put_sip_credential(&cred).await?;
    if let Some(r) = s.sip_accounts.get() {
        r.reload(&s.store).await.map_err(ApiError::internal)?;
    }
    Ok(ApiJson(sip_view(&cred)))
}

/// Removes an agent's SIP account (admin): its phones can no longer register.
#[utoipa::path(delete, path = "/api/v1/agents/{id}/sip", tag = "people", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_sip(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<AgentId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if !s
        .store
        .delete_sip_credential(caller.user.tenant, id)
        .await?
    {
        return Err(ApiError::not_found("SIP account for this agent"));
    }
    if let Some(r) = s.sip_accounts.get() {
        r.reload(&s.store).await.map_err(ApiError::internal)?;
    }
    Ok(StatusCode::NO_CONTENT)
}
