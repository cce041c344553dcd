//! Messaging channels for admins and agents (docs/messaging.md): provider accounts (secrets are
//! write-only), a conversation's reply route with its window and opt-out, WhatsApp templates,
//! and continuing a conversation on another channel.

use super::views::ErrorBody;
use crate::auth::Caller;
use crate::chat::message_json;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::messaging::providers::Provider;
use crate::messaging::{OutboundKind, send_to_customer, window};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use switchboard_model::{
    Channel, ChannelAccountId, InteractionId, InteractionState, Role, Sensitive,
};
use switchboard_store::{ChannelAccount, Interaction, MessageThread, NewEvent};
use utoipa::ToSchema;

/// A channel account as admins see it (never its secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelAccountView {
    /// Id.
    pub id: String,
    /// `twilio`, `http_sms`, `whatsapp`, `telegram`, `messenger`, `instagram` or `email`.
    pub provider: String,
    /// The channel of its conversations.
    pub channel: String,
    /// Name.
    pub name: String,
    /// Queue of new conversations.
    pub queue_id: String,
    /// Provider API base URL.
    pub base_url: String,
    /// Settings.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Names of the secrets that are set (their values are never returned).
    pub secrets_set: Vec<String>,
    /// Path of its webhook on this server (empty for email, which arrives by SMTP).
    pub webhook_path: String,
    /// Whether it takes webhooks and sends.
    pub enabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl From<&ChannelAccount> for ChannelAccountView {
    fn from(a: &ChannelAccount) -> Self {
        let channel = Provider::parse(&a.provider)
            .map(|p| p.channel().as_str())
            .unwrap_or_default();
        ChannelAccountView {
            id: a.id.to_string(),
            provider: a.provider.clone(),
            channel: channel.to_owned(),
            name: a.name.clone(),
            queue_id: a.queue.to_string(),
            base_url: a.base_url.clone(),
            settings: a.settings.clone(),
            secrets_set: a
                .secrets
                .expose()
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            // Email arrives by SMTP (docs/email.md), not by webhook.
            webhook_path: if a.provider == Provider::Email.as_str() {
                String::new()
            } else {
                format!("/hooks/{}/{}", a.provider, a.id)
            },
            enabled: a.enabled,
            created_at: crate::clock::rfc3339(a.created_at),
            updated_at: crate::clock::rfc3339(a.updated_at),
        }
    }
}

/// Body of `POST /api/v1/channel-accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelAccount {
    /// `twilio`, `http_sms`, `whatsapp`, `telegram`, `messenger`, `instagram` or `email`.
    pub provider: String,
    /// Unique name.
    pub name: String,
    /// Queue id or name for new conversations.
    pub queue: String,
    /// Provider API base URL (default: the provider's public API; required for `http_sms`).
    pub base_url: Option<String>,
    /// Provider settings (see docs/messaging.md).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// Tokens and keys (write-only).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub secrets: Map<String, Value>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Body of `PATCH /api/v1/channel-accounts/{id}`: what changes. Secrets given replace those of
/// the same name; others stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAccountPatch {
    /// New name.
    pub name: Option<String>,
    /// New queue (id or name).
    pub queue: Option<String>,
    /// New base URL.
    pub base_url: Option<String>,
    /// Settings to set.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
    /// Secrets to set.
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Map<String, Value>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_value", m)
}

/// Checks an account's provider, URL, settings and secrets.
fn check_account(p: Provider, a: &ChannelAccount) -> Result<(), ApiError> {
    crate::shapes::check_name("name", &a.name)
        .map_err(|e| invalid(format!("{}: {}", e.field, e.problem)))?;
    if p == Provider::Email {
        if !a.base_url.is_empty() {
            return Err(invalid(
                "base_url: not used by email (replies go through SWITCHBOARD_SMTP_RELAY)",
            ));
        }
    } else if !(a.base_url.starts_with("http://") || a.base_url.starts_with("https://"))
        || a.base_url.len() > 500
    {
        return Err(invalid("base_url: an http:// or https:// URL"));
    }
    let check = |what: &str, v: &Value, req: &[&str], opt: &[&str]| -> Result<(), ApiError> {
        let o = v.as_object().cloned().unwrap_or_default();
        for k in req {
            if o.get(*k).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(invalid(format!("{what}.{k}: required for {}", p.as_str())));
            }
        }
        for (k, val) in &o {
            if !req.contains(&k.as_str()) && !opt.contains(&k.as_str()) {
                return Err(invalid(format!(
                    "{what}.{k}: not a {} {what} key",
                    p.as_str()
                )));
            }
            if val.as_str().is_none_or(|s| s.len() > 2000) {
                return Err(invalid(format!(
                    "{what}.{k}: a string of at most 2000 characters"
                )));
            }
        }
        Ok(())
    };
    check(
        "settings",
        &a.settings,
        p.required_settings(),
        p.optional_settings(),
    )?;
    check(
        "secrets",
        a.secrets.expose(),
        p.required_secrets(),
        p.optional_secrets(),
    )?;
    if p == Provider::Email {
        let addr = a.settings["address"].as_str().unwrap_or_default();
        if addr != addr.to_lowercase() || addr.parse::<lettre::Address>().is_err() {
            return Err(invalid(
                "settings.address: a lower-case email address like support@example.com",
            ));
        }
    }
    if matches!(p, Provider::Twilio | Provider::HttpSms) {
        let from = a.settings["from"].as_str().unwrap_or_default();
        switchboard_model::phone::normalize(from, None)
            .map_err(|e| invalid(format!("settings.from: {e}")))?;
    }
    Ok(())
}

/// An email address receives for one account only (of any tenant): the SMTP server finds
/// the account by the recipient address.
async fn check_address_free(s: &AppState, a: &ChannelAccount) -> Result<(), ApiError> {
    if a.provider != Provider::Email.as_str() {
        return Ok(());
    }
    let addr = a.settings["address"].as_str().unwrap_or_default();
    match s.store.email_account_by_address(addr).await? {
        Some(other) if other.id != a.id => Err(ApiError::conflict(
            "address_taken",
            "settings.address: another email account already receives mail for this address",
        )),
        _ => Ok(()),
    }
}

async fn account_of(
    s: &AppState,
    caller: &Caller,
    id: ChannelAccountId,
) -> Result<ChannelAccount, ApiError> {
    s.store
        .channel_account(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel account"))
}

/// Lists the tenant's channel accounts (admin).
#[utoipa::path(get, path = "/api/v1/channel-accounts", tag = "messaging",
    responses((status = 200, body = Vec<ChannelAccountView>), (status = 403, body = ErrorBody)))]
pub async fn list_accounts(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<ChannelAccountView>>> {
    caller.require(Role::Admin)?;
    let list = s.store.channel_accounts(caller.user.tenant).await?;
    Ok(ApiJson(list.iter().map(ChannelAccountView::from).collect()))
}

/// Creates a channel account (admin).
#[utoipa::path(post, path = "/api/v1/channel-accounts", tag = "messaging", request_body = NewChannelAccount,
    responses((status = 201, body = ChannelAccountView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_account(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<NewChannelAccount>,
) -> ApiResult<(StatusCode, ApiJson<ChannelAccountView>)> {
    caller.require(Role::Admin)?;
    let p = Provider::parse(&b.provider).ok_or_else(|| {
        invalid(
            "provider: one of twilio, http_sms, whatsapp, telegram, messenger, instagram, email",
        )
    })?;
    let tenant = caller.user.tenant;
    let queue = super::interactions::resolve_queue(&s, tenant, &b.queue).await?;
    let base_url = b
        .base_url
        .or_else(|| p.default_base_url().map(str::to_owned))
        .ok_or_else(|| invalid("base_url: required for http_sms"))?;
    let now = s.clock.wall_ms();
    let a = ChannelAccount {
        id: ChannelAccountId::from_uuid(s.clock.new_uuid()),
        tenant,
        provider: p.as_str().to_owned(),
        name: b.name,
        queue,
        base_url: base_url.trim_end_matches('/').to_owned(),
        settings: Value::Object(b.settings),
        secrets: Sensitive::new(Value::Object(b.secrets)),
        enabled: b.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    check_account(p, &a)?;
    check_address_free(&s, &a).await?;
    s.store.put_channel_account(&a).await?;
    Ok((StatusCode::CREATED, ApiJson(ChannelAccountView::from(&a))))
}

/// Reads a channel account (admin).
#[utoipa::path(get, path = "/api/v1/channel-accounts/{id}", tag = "messaging", params(("id" = String, Path)),
    responses((status = 200, body = ChannelAccountView), (status = 404, body = ErrorBody)))]
pub async fn get_account(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ChannelAccountId>,
) -> ApiResult<ApiJson<ChannelAccountView>> {
    caller.require(Role::Admin)?;
    let a = account_of(&s, &caller, id).await?;
    Ok(ApiJson(ChannelAccountView::from(&a)))
}

/// Changes a channel account (admin).
#[utoipa::path(patch, path = "/api/v1/channel-accounts/{id}", tag = "messaging", params(("id" = String, Path)), request_body = ChannelAccountPatch,
    responses((status = 200, body = ChannelAccountView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_account(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ChannelAccountId>,
    ApiJson(b): ApiJson<ChannelAccountPatch>,
) -> ApiResult<ApiJson<ChannelAccountView>> {
    caller.require(Role::Admin)?;
    let mut a = account_of(&s, &caller, id).await?;
    let p = crate::messaging::provider_of(&a)?;
    if let Some(n) = b.name {
        a.name = n;
    }
    if let Some(q) = b.queue {
        a.queue = super::interactions::resolve_queue(&s, a.tenant, &q).await?;
    }
    if let Some(u) = b.base_url {
        a.base_url = u.trim_end_matches('/').to_owned();
    }
    if let (Some(new), Some(old)) = (b.settings, a.settings.as_object_mut()) {
        old.extend(new);
    }
    if let Some(new) = b.secrets {
        let mut merged = a.secrets.expose().as_object().cloned().unwrap_or_default();
        merged.extend(new);
        a.secrets = Sensitive::new(Value::Object(merged));
    }
    if let Some(e) = b.enabled {
        a.enabled = e;
    }
    a.updated_at = s.clock.wall_ms();
    check_account(p, &a)?;
    check_address_free(&s, &a).await?;
    s.store.put_channel_account(&a).await?;
    Ok(ApiJson(ChannelAccountView::from(&a)))
}

/// Deletes a channel account (admin). Its conversations keep their history; replies through it
/// are refused.
#[utoipa::path(delete, path = "/api/v1/channel-accounts/{id}", tag = "messaging", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_account(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ChannelAccountId>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    if s.store
        .delete_channel_account(caller.user.tenant, id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("channel account"))
    }
}

/// Where a conversation's replies go, and what may be sent there now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagingView {
    /// The channel replies travel on (`null`: the interaction's own, e.g. web chat).
    pub channel: Option<String>,
    /// The channel account.
    pub account_id: Option<String>,
    /// The customer's address there.
    pub contact: Option<String>,
    /// Whether a 24-hour window applies to free text.
    pub window_applies: bool,
    /// Whether free text may be sent now.
    pub window_open: bool,
    /// When the window closes (or closed).
    pub window_until: Option<String>,
    /// Whether the customer opted out of messages there.
    pub opted_out: bool,
    /// Provider delivery states of the conversation's messages (outbound ones with their
    /// outbox entry: `state`, `attempts`, `last_error`).
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<Value>,
    /// Email conversations: the ticket reference, every stored mail (direction, Message-ID,
    /// subject, addresses, threading headers, authentication results, auto-reply kind,
    /// attachments; sent mail also `cc` and `bcc`), and `reply_cc`, the Cc an agent's next reply
    /// gets by default (the last mail's other recipients).
    #[schema(value_type = Option<Object>)]
    pub email: Option<Value>,
}

async fn messaging_view(s: &AppState, it: &Interaction) -> Result<MessagingView, ApiError> {
    let thread = s.store.thread(it.tenant, it.id).await?;
    let mut deliveries = Vec::new();
    for d in s.store.deliveries(it.tenant, it.id).await? {
        let outbox = match d.direction.as_str() {
            "out" => s.store.outbox_item(&d.message_id).await?.map(
                |o| json!({"state": o.state, "attempts": o.attempts, "last_error": o.last_error}),
            ),
            _ => None,
        };
        deliveries.push(
            json!({"message_id": d.message_id, "direction": d.direction, "channel": d.channel,
               "state": d.state, "error": d.error, "attachments": d.attachments, "outbox": outbox}),
        );
    }
    let email = if it.channel == Channel::Email
        || thread.as_ref().is_some_and(|t| t.channel == Channel::Email)
    {
        let mails: Vec<Value> = s
            .store
            .emails(it.tenant, it.id)
            .await?
            .iter()
            .map(|m| {
                json!({"message_id": m.message_id, "direction": m.record.direction,
                    "rfc_message_id": m.record.rfc_message_id, "subject": m.record.subject.expose(),
                    "headers": m.record.parsed.expose(), "raw_size": m.record.raw.expose().len(),
                    "at": crate::clock::rfc3339(m.created_at)})
            })
            .collect();
        // The Cc an agent's next reply gets unless it names its own ("reply all").
        let reply_cc = match &thread {
            Some(t) => crate::email::default_cc(s, it, t).await?,
            None => Vec::new(),
        };
        Some(
            json!({"ticket": s.store.email_ticket(it.tenant, it.id).await?, "mails": mails, "reply_cc": reply_cc}),
        )
    } else {
        None
    };
    let Some(t) = thread else {
        return Ok(MessagingView {
            channel: None,
            account_id: None,
            contact: None,
            window_applies: false,
            window_open: true,
            window_until: None,
            opted_out: false,
            deliveries,
            email,
        });
    };
    let w = window(s, &t).await?;
    let opted_out = s
        .store
        .opt_out(it.tenant, &t.contact_kind, t.contact_value.expose())
        .await?
        .is_some();
    Ok(MessagingView {
        channel: Some(t.channel.as_str().to_owned()),
        account_id: t.account.map(|a| a.to_string()),
        contact: Some(t.contact_value.expose().clone()),
        window_applies: w.is_some(),
        window_open: w.is_none_or(|(open, _)| open),
        window_until: w.and_then(|(_, u)| u).map(crate::clock::rfc3339),
        opted_out,
        deliveries,
        email,
    })
}

/// A conversation's reply route: channel, account, 24-hour window, opt-out, delivery states.
#[utoipa::path(get, path = "/api/v1/interactions/{id}/messaging", tag = "messaging", params(("id" = String, Path)),
    responses((status = 200, body = MessagingView), (status = 404, body = ErrorBody)))]
pub async fn get_messaging(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<MessagingView>> {
    let it = super::messages::conversation(&s, &caller, id).await?;
    Ok(ApiJson(messaging_view(&s, &it).await?))
}

/// Body of `POST /api/v1/interactions/{id}/template`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// The approved template's name.
    pub name: String,
    /// Its language code (`en_US`).
    pub language: String,
    /// Body parameters, in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// Sends an approved WhatsApp template (allowed outside the 24-hour window).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/template", tag = "messaging", params(("id" = String, Path)), request_body = TemplateBody,
    responses((status = 201, body = super::messages::MessageView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_template(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<TemplateBody>,
) -> ApiResult<(StatusCode, ApiJson<super::messages::MessageView>)> {
    let it = super::messages::conversation(&s, &caller, id).await?;
    let ok_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 512
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !ok_name(&b.name) || !ok_name(&b.language) {
        return Err(invalid("name and language: letters, digits, _ and - only"));
    }
    if b.parameters.len() > 20 || b.parameters.iter().any(|p| p.chars().count() > 1000) {
        return Err(invalid(
            "parameters: at most 20, each at most 1000 characters",
        ));
    }
    let agent_ok = it.state == InteractionState::Connected && it.agent == caller.agent;
    if !agent_ok && !caller.is_supervisor() {
        return Err(ApiError::conflict(
            "wrong_state",
            "only the connected agent or a supervisor sends templates",
        ));
    }
    let thread = s.store.thread(it.tenant, id).await?.ok_or_else(|| {
        ApiError::conflict(
            "not_whatsapp",
            "templates are sent only on WhatsApp conversations",
        )
    })?;
    let text = format!(
        "[template {} ({})] {}",
        b.name,
        b.language,
        b.parameters.join(" | ")
    );
    let m = send_to_customer(
        &s,
        &it,
        &thread,
        (caller.user.id.to_string(), caller.user.display_name.clone()),
        text.trim_end(),
        OutboundKind::Template {
            name: b.name,
            language: b.language,
            parameters: b.parameters,
        },
        serde_json::json!([]),
        &crate::email::Copies::default(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(super::messages::view(message_json(&m))),
    ))
}

/// Body of `POST /api/v1/interactions/{id}/continue`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContinueBody {
    /// `sms`, `whatsapp`, `telegram`, `messenger`, `instagram` or `email`.
    pub channel: String,
    /// The channel account to send through (all but `email`).
    pub account_id: Option<String>,
    /// The customer's address there (default: the customer's contact point of that kind).
    pub to: Option<String>,
}

/// Continues a conversation on another channel: the same interaction and history, and the
/// next replies go through that channel (email: through the tenant's first email address).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/continue", tag = "messaging", params(("id" = String, Path)), request_body = ContinueBody,
    responses((status = 200, body = MessagingView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn continue_on(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<ContinueBody>,
) -> ApiResult<ApiJson<MessagingView>> {
    let it = super::messages::conversation(&s, &caller, id).await?;
    if it.state == InteractionState::Ended {
        return Err(ApiError::conflict(
            "wrong_state",
            "the interaction has ended",
        ));
    }
    let channel: Channel = b
        .channel
        .parse()
        .map_err(|_| invalid("channel: sms, whatsapp, telegram, messenger, instagram or email"))?;
    let (account, kind) = if channel == Channel::Email {
        (None, "email")
    } else {
        let acc: ChannelAccountId = b
            .account_id
            .as_deref()
            .ok_or_else(|| invalid("account_id: required for this channel"))?
            .parse()
            .map_err(|_| invalid("account_id: not an id"))?;
        let a = s
            .store
            .channel_account(it.tenant, acc)
            .await?
            .filter(|a| a.enabled)
            .ok_or_else(|| {
                ApiError::unprocessable("unknown_account", "no such enabled channel account")
            })?;
        let p = crate::messaging::provider_of(&a)?;
        if p.channel() != channel {
            return Err(invalid(format!(
                "account_id: a {} account cannot carry {channel}",
                p.as_str()
            )));
        }
        (Some(a.id), p.contact_kind())
    };
    let contact = match b.to {
        Some(to) if kind == "phone" => {
            switchboard_model::phone::normalize(&to, s.config.messaging.default_country_code)
                .map(String::from)
                .map_err(|e| invalid(format!("to: {e}")))?
        }
        Some(to) if kind == "email" => {
            let t = to.trim().to_lowercase();
            if !t
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
            {
                return Err(invalid("to: not an email address"));
            }
            t
        }
        Some(to) => to.trim().to_owned(),
        None => {
            let customer = match it.customer {
                Some(c) => s.store.customer(it.tenant, c).await?,
                None => None,
            };
            customer
                .and_then(|c| c.contact_points.into_iter().find(|p| p.kind == kind))
                .map(|p| p.value.into_inner())
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "no_contact_point",
                        format!("the customer has no {kind} contact point; give `to`"),
                    )
                })?
        }
    };
    if contact.is_empty() || contact.len() > 256 {
        return Err(invalid("to: 1-256 characters"));
    }
    let now = s.clock.wall_ms();
    let e = s
        .store
        .put_thread(
            &MessageThread {
                interaction: it.id,
                tenant: it.tenant,
                channel,
                account,
                contact_kind: kind.to_owned(),
                contact_value: Sensitive::new(contact),
                updated_at: now,
            },
            Some(NewEvent {
                tenant: it.tenant,
                interaction: Some(it.id),
                agent: it.agent,
                kind: "interaction.continued".into(),
                at: now,
                data: json!({"interaction_id": it.id, "channel": channel, "account_id": account}),
            }),
        )
        .await?;
    if let Some(e) = e {
        s.bus.publish(crate::bus::BusEvent::from(e));
    }
    Ok(ApiJson(messaging_view(&s, &it).await?))
}
