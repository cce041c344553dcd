//! `POST /api/v1/auth/login`, `POST /api/v1/auth/logout`, `GET /api/v1/auth/me`.

use super::views::{ErrorBody, UserView};
use crate::auth::{Caller, new_token, token_hash, verify_password};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use switchboard_store::Session;
use utoipa::ToSchema;

/// Login body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Login answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer TOKEN`.
    pub token: String,
    /// When the token expires.
    pub expires_at: String,
    /// The account.
    pub user: UserView,
}

/// Logs in with a username and password and returns a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "wrong username or password", body = ErrorBody),
        (status = 429, description = "too many failed attempts for this user or address", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    if body.username.len() > 256 || body.password.len() > 1024 {
        return Err(ApiError::unauthorized("wrong username or password"));
    }
    let ip = addr.ip().to_string();
    let now = state.clock.mono();
    let blocked = state
        .limiter
        .lock()
        .map_err(ApiError::internal)?
        .check(&body.username, &ip, now);
    if let Some(wait) = blocked {
        metrics::counter!("switchboard_login_blocked_total").increment(1);
        return Err(ApiError::too_many(
            "too many failed logins for this user or address; wait and try again",
            wait.as_secs() + 1,
        ));
    }
    let user = state.store.user_by_username(&body.username).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.decoy_hash.clone());
    let ok = verify_password(body.password, hash).await && user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        metrics::counter!("switchboard_login_failures_total").increment(1);
        tracing::warn!(%ip, "failed login");
        state
            .limiter
            .lock()
            .map_err(ApiError::internal)?
            .fail(&body.username, &ip, now);
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    state
        .limiter
        .lock()
        .map_err(ApiError::internal)?
        .succeed(&body.username);
    let token = new_token()?;
    let now_ms = state.clock.wall_ms();
    let expires_at = now_ms + state.config.session_ttl.as_millis() as i64;
    state
        .store
        .create_session(&Session {
            token_hash: token_hash(&token),
            user: user.id,
            tenant: user.tenant,
            created_at: now_ms,
            expires_at,
        })
        .await?;
    let agent = state
        .store
        .agent_of_user(user.tenant, user.id)
        .await?
        .map(|a| a.id);
    Ok(ApiJson(LoginResponse {
        token,
        expires_at: crate::clock::rfc3339(expires_at),
        user: UserView::new(&user, agent),
    }))
}

/// Ends the session of the token used.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "logged out"), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    state.store.delete_session(&caller.token_hash).await?;
    let _ = state.revoked.send(caller.token_hash);
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(caller: Caller) -> ApiJson<UserView> {
    ApiJson(UserView::new(&caller.user, caller.agent))
}
