//! Voice configuration: SIP trunks (who may send calls, and where outbound calls go) and the
//! numbers (DIDs) whose calls start interactions. Admins write; supervisors read. Every change
//! reaches the SIP listener at once, without a restart.

use super::views::{ErrorBody, InteractionView};
use crate::auth::Caller;
use crate::engine::Command;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_model::{Role, Sensitive};
use switchboard_store::voice::{Trunk, VoiceNumber};
use utoipa::ToSchema;
use uuid::Uuid;

/// A SIP trunk. The outbound password is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrunkView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Networks allowed to send calls (`address/prefix`).
    pub allow: Vec<String>,
    /// Where outbound calls go (`sip:host:port`).
    pub outbound_uri: Option<String>,
    /// Digest username at the provider.
    pub outbound_username: Option<String>,
    /// Whether an outbound password is set.
    pub outbound_password_set: bool,
    /// Number presented on outbound calls.
    pub caller_id: Option<String>,
    /// Whether the trunk's P-Asserted-Identity names the caller (else From does).
    pub trust_identity: bool,
    /// Last change.
    pub updated_at: String,
}

/// Body of `POST /api/v1/voice/trunks` and `PUT /api/v1/voice/trunks/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkBody {
    /// Name (1-64 characters), unique in the tenant.
    pub name: String,
    /// Networks allowed to send calls: `address/prefix` or a bare address (at most 64).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Where outbound calls go: `sip:host[:port]`.
    pub outbound_uri: Option<String>,
    /// Digest username at the provider.
    pub outbound_username: Option<String>,
    /// Digest password at the provider (write-only; omitted on PUT keeps the old one).
    pub outbound_password: Option<String>,
    /// Number presented on outbound calls.
    pub caller_id: Option<String>,
    /// Believe the trunk's P-Asserted-Identity (RFC 3325; only for a provider that sets it
    /// itself and strips it from its customers). Default false: the caller is taken from From.
    #[serde(default)]
    pub trust_identity: bool,
}

/// A number (DID).
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberView {
    /// The number as dialled.
    pub number: String,
    /// The queue its calls wait in.
    pub queue_id: String,
    /// The flow its calls run first, by name.
    pub flow: Option<String>,
}

/// Body of `PUT /api/v1/voice/numbers/{number}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberBody {
    /// The queue its calls wait in (id or name).
    pub queue: String,
    /// The flow its calls run first, by name.
    pub flow: Option<String>,
}

fn trunk_view(t: &Trunk) -> TrunkView {
    TrunkView {
        id: t.id.to_string(),
        name: t.name.clone(),
        allow: t.allow.clone(),
        outbound_uri: t.outbound_uri.clone(),
        outbound_username: t.outbound_username.clone(),
        outbound_password_set: t.outbound_password.is_some(),
        caller_id: t.caller_id.clone(),
        trust_identity: t.trust_identity,
        updated_at: crate::clock::rfc3339(t.updated_at),
    }
}

fn number_view(n: &VoiceNumber) -> NumberView {
    NumberView {
        number: n.number.clone(),
        queue_id: n.queue.to_string(),
        flow: n.flow.clone(),
    }
}

fn bad(field: &str, why: &str) -> ApiError {
    ApiError::unprocessable("invalid_value", format!("{field}: {why}"))
}

fn check_trunk(b: &TrunkBody) -> Result<(), ApiError> {
    if !(1..=64).contains(&b.name.chars().count()) {
        return Err(bad("name", "1-64 characters"));
    }
    if b.allow.len() > 64 {
        return Err(bad("allow", "at most 64 networks"));
    }
    if let Some(n) = b
        .allow
        .iter()
        .find(|n| crate::voice::parse_network(n).is_none())
    {
        return Err(bad(
            "allow",
            &format!("{n:?} is not an address or address/prefix"),
        ));
    }
    if let Some(u) = &b.outbound_uri {
        let ok = u
            .parse::<switchboard_sip::Uri>()
            .ok()
            .and_then(|u| u.as_sip().cloned())
            .is_some();
        if !ok {
            return Err(bad(
                "outbound_uri",
                "a sip: URI such as sip:provider.example:5060",
            ));
        }
    }
    if let Some(c) = &b.caller_id
        && crate::voice::caller_number(c, None).is_none()
    {
        return Err(bad("caller_id", "a phone number"));
    }
    Ok(())
}

fn check_number(n: &str) -> Result<(), ApiError> {
    let ok = (1..=32).contains(&n.len())
        && n.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == '+'));
    if ok {
        Ok(())
    } else {
        Err(bad("number", "digits, optionally after a leading +"))
    }
}

async fn reload(s: &AppState) {
    if let Some(r) = s.sip_accounts.get()
        && let Err(e) = r.reload_directory(&s.store).await
    {
        tracing::error!(error = %e, "could not reload the SIP directory");
    }
}

/// The tenant's trunks.
#[utoipa::path(get, path = "/api/v1/voice/trunks", tag = "voice",
    responses((status = 200, body = [TrunkView]), (status = 403, body = ErrorBody)))]
pub async fn list_trunks(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<TrunkView>>> {
    caller.require(Role::Supervisor)?;
    let list = s.store.trunks(caller.user.tenant).await?;
    Ok(ApiJson(list.iter().map(trunk_view).collect()))
}

/// Creates a trunk (admin).
#[utoipa::path(post, path = "/api/v1/voice/trunks", tag = "voice", request_body = TrunkBody,
    responses((status = 201, body = TrunkView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_trunk(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<TrunkBody>,
) -> ApiResult<(StatusCode, ApiJson<TrunkView>)> {
    caller.require(Role::Admin)?;
    check_trunk(&b)?;
    let now = s.clock.wall_ms();
    let t = Trunk {
        id: s.clock.new_uuid(),
        tenant: caller.user.tenant,
        name: b.name,
        allow: b.allow,
        outbound_uri: b.outbound_uri,
        outbound_username: b.outbound_username,
        outbound_password: b.outbound_password.map(Sensitive::new),
        caller_id: b.caller_id,
        trust_identity: b.trust_identity,
        created_at: now,
        updated_at: now,
    };
    s.store.put_trunk(&t).await?;
    reload(&s).await;
    Ok((StatusCode::CREATED, ApiJson(trunk_view(&t))))
}

/// One trunk.
#[utoipa::path(get, path = "/api/v1/voice/trunks/{id}", tag = "voice", params(("id" = String, Path)),
    responses((status = 200, body = TrunkView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_trunk(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<TrunkView>> {
    caller.require(Role::Supervisor)?;
    let t = s
        .store
        .trunk(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("trunk"))?;
    Ok(ApiJson(trunk_view(&t)))
}

/// Replaces a trunk (admin); an omitted password keeps the old one.
#[utoipa::path(put, path = "/api/v1/voice/trunks/{id}", tag = "voice", params(("id" = String, Path)), request_body = TrunkBody,
    responses((status = 200, body = TrunkView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_trunk(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<TrunkBody>,
) -> ApiResult<ApiJson<TrunkView>> {
    caller.require(Role::Admin)?;
    check_trunk(&b)?;
    let old = s
        .store
        .trunk(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("trunk"))?;
    let t = Trunk {
        name: b.name,
        allow: b.allow,
        outbound_uri: b.outbound_uri,
        outbound_username: b.outbound_username,
        outbound_password: b
            .outbound_password
            .map(Sensitive::new)
            .or(old.outbound_password.clone()),
        caller_id: b.caller_id,
        trust_identity: b.trust_identity,
        updated_at: s.clock.wall_ms(),
        ..old
    };
    s.store.put_trunk(&t).await?;
    reload(&s).await;
    Ok(ApiJson(trunk_view(&t)))
}

/// Deletes a trunk (admin).
#[utoipa::path(delete, path = "/api/v1/voice/trunks/{id}", tag = "voice", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_trunk(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if !s.store.delete_trunk(caller.user.tenant, id).await? {
        return Err(ApiError::not_found("trunk"));
    }
    reload(&s).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's numbers.
#[utoipa::path(get, path = "/api/v1/voice/numbers", tag = "voice",
    responses((status = 200, body = [NumberView]), (status = 403, body = ErrorBody)))]
pub async fn list_numbers(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<NumberView>>> {
    caller.require(Role::Supervisor)?;
    let list = s.store.voice_numbers(caller.user.tenant).await?;
    Ok(ApiJson(list.iter().map(number_view).collect()))
}

/// Sets where a number's calls go (admin).
#[utoipa::path(put, path = "/api/v1/voice/numbers/{number}", tag = "voice", params(("number" = String, Path)), request_body = NumberBody,
    responses((status = 200, body = NumberView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_number(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<String>,
    ApiJson(b): ApiJson<NumberBody>,
) -> ApiResult<ApiJson<NumberView>> {
    caller.require(Role::Admin)?;
    check_number(&number)?;
    let tenant = caller.user.tenant;
    let queue = super::interactions::resolve_queue(&s, tenant, &b.queue).await?;
    let n = VoiceNumber {
        tenant,
        number,
        queue,
        flow: b.flow,
        created_at: s.clock.wall_ms(),
    };
    s.store.put_voice_number(&n).await?;
    reload(&s).await;
    Ok(ApiJson(number_view(&n)))
}

/// Removes a number (admin): its calls are refused with 404 from then on.
#[utoipa::path(delete, path = "/api/v1/voice/numbers/{number}", tag = "voice", params(("number" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_number(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if !s
        .store
        .delete_voice_number(caller.user.tenant, &number)
        .await?
    {
        return Err(ApiError::not_found("number"));
    }
    reload(&s).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/calls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    /// The number to call (normalised to E.164).
    pub to: String,
    /// The agent whose phone calls (id, login or SIP username): supervisors only; an agent
    /// always calls from its own phone.
    pub agent: Option<String>,
}

/// Click-to-dial: Switchboard rings the agent's phone, and once it answers calls the number
/// through the tenant's outbound trunk. The call is a voice interaction (attributes
/// `direction: outbound`), offered to the agent until its phone answers.
#[utoipa::path(post, path = "/api/v1/calls", tag = "voice", request_body = DialBody,
    responses((status = 201, body = InteractionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn dial(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<DialBody>,
) -> ApiResult<(StatusCode, ApiJson<InteractionView>)> {
    let tenant = caller.user.tenant;
    let agent = match (&b.agent, caller.is_supervisor()) {
        (Some(a), true) => super::interactions::resolve_agent(&s, tenant, a).await?,
        (Some(_), false) => {
            return Err(ApiError::forbidden(
                "an agent calls from its own phone; only supervisors name an agent",
            ));
        }
        (None, _) => caller.agent.ok_or_else(|| {
            ApiError::unprocessable("unknown_agent", "name the agent whose phone calls")
        })?,
    };
    let (number, trunk) = crate::voice::outbound_number(&s, tenant, &b.to).await?;
    let customer = crate::voice::customer_for(&s, tenant, number.expose(), None).await;
    let attributes = serde_json::json!({
        "direction": "outbound", "to": number.expose(), "trunk": trunk,
    });
    let it = s
        .ask(tenant, |reply| Command::Dial {
            agent,
            number,
            customer,
            attributes,
            reply,
        })
        .await??;
    Ok((StatusCode::CREATED, ApiJson(InteractionView::from(&it))))
}
