//! SMS and messaging apps (docs/messaging.md): provider webhooks under
//! `/hooks/{provider}/{account_id}`, the intake that turns a customer's message into a message of
//! an interaction of the right customer ([`receive_message`]), receipts, opt-out keywords,
//! 24-hour windows, and replies through the durable outbox ([`send_to_customer`]).
//!
//! The wire formats live in [`providers`] (pure); media in [`media`]; the sending task in
//! [`outbox`].

pub mod media;
pub mod outbox;
pub mod providers;

use crate::bus::BusEvent;
use crate::chat::message_json;
use crate::engine::Command;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use providers::{AccountInfo, HookHeaders, Inbound, InboundMessage, Provider};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_model::{Channel, ChannelAccountId, CustomerId, Sensitive, TenantId};
use switchboard_store::{
    ChannelAccount, ContactPoint, Customer, Delivery, DeliveryKey, EmailRecord, Interaction,
    Message, MessageThread, NewEvent, OutboxItem, ProviderAppend, Sender,
};

/// How long after the customer's last message free text may be sent (WhatsApp's
/// customer-service window, Messenger's standard messaging window).
pub const SERVICE_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Runtime parts of the messaging channels, held by the app state.
pub struct Messaging {
    /// Wakes the outbox task when something was queued.
    pub wake: tokio::sync::Notify,
    /// Serializes the intake of one sender (tenant, contact kind and value, hashed onto a
    /// few locks), so that two deliveries of one message cannot both pass the duplicate check,
    /// and two first messages of one sender (on two accounts) cannot create two customers or
    /// conversations. Different senders go in parallel, and so share group commits.
    intake: Vec<tokio::sync::Mutex<()>>,
    /// The HTTP client for providers.
    pub http: reqwest::Client,
    /// Stored media.
    pub media: media::MediaStore,
    /// Group commit of provider messages (messaging and email).
    pub writer: crate::group_commit::GroupWriter<
        ProviderAppend,
        Option<(Message, Option<switchboard_store::Event>)>,
    >,
}

/// Locks the intake is spread over (see [`Messaging::intake_lock`]).
const INTAKE_LOCKS: usize = 64;

impl Messaging {
    /// The intake lock of a sender: one sender's messages are taken one at a time.
    pub(crate) fn intake_lock(
        &self,
        tenant: TenantId,
        kind: &str,
        value: &str,
    ) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (tenant, kind, value).hash(&mut h);
        &self.intake[(h.finish() % INTAKE_LOCKS as u64) as usize]
    }

    /// Builds it for a data directory.
    pub fn new(cfg: &crate::config::Config, store: switchboard_store::Store) -> Self {
        Messaging {
            writer: crate::group_commit::GroupWriter::start("provider_messages", move |items| {
                let store = store.clone();
                async move { store.append_provider_messages(items).await }
            }),
            wake: tokio::sync::Notify::new(),
            intake: (0..INTAKE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .unwrap_or_default(),
            media: media::MediaStore::new(
                cfg.data_dir.join("media"),
                cfg.messaging.max_media_bytes,
            ),
        }
    }
}

/// The provider of an account (accounts are validated when written).
pub fn provider_of(a: &ChannelAccount) -> Result<Provider, ApiError> {
    Provider::parse(&a.provider)
        .ok_or_else(|| ApiError::internal(format!("unknown provider {:?}", a.provider)))
}

fn info(a: &ChannelAccount, p: Provider) -> AccountInfo<'_> {
    AccountInfo {
        provider: p,
        base_url: &a.base_url,
        settings: &a.settings,
        secrets: a.secrets.expose(),
    }
}

/// The webhook routes.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/hooks/{provider}/{account}",
        get(hook_verify).post(hook_post),
    )
}

fn hook_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// The account a webhook names, if it exists, is enabled and is of that provider.
async fn hook_account(
    s: &AppState,
    provider: &str,
    account: &str,
) -> Result<(ChannelAccount, Provider), Response> {
    let not_found = || {
        hook_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such channel account",
        )
    };
    let id: ChannelAccountId = account.parse().map_err(|_| not_found())?;
    let a = s
        .store
        .channel_account_for_webhook(id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .ok_or_else(not_found)?;
    let p = Provider::parse(provider).ok_or_else(not_found)?;
    if a.provider != provider || !a.enabled {
        return Err(not_found());
    }
    Ok((a, p))
}

/// Meta's subscription handshake (`hub.mode`, `hub.verify_token`, `hub.challenge`).
async fn hook_verify(
    State(s): State<AppState>,
    Path((provider, account)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let (a, p) = match hook_account(&s, &provider, &account).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let q = providers::form_pairs(query.unwrap_or_default().as_bytes());
    match providers::verify_subscription(&info(&a, p), &q) {
        Some(challenge) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        None => {
            tracing::warn!(provider = %provider, account = %a.id, "webhook verification refused");
            hook_error(
                StatusCode::FORBIDDEN,
                "bad_verify_token",
                "hub.mode or hub.verify_token is wrong",
            )
        }
    }
}

/// The URL the provider called, as it signed it.
fn called_url(s: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.path());
    match &s.config.messaging.public_url {
        Some(base) => format!("{base}{path}"),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{path}")
        }
    }
}

async fn hook_post(
    State(s): State<AppState>,
    Path((provider, account)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (a, p) = match hook_account(&s, &provider, &account).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let hh = HookHeaders {
        twilio: h("x-twilio-signature"),
        hub: h("x-hub-signature-256"),
        telegram: h("x-telegram-bot-api-secret-token"),
        gateway: h("x-switchboard-signature"),
    };
    let url = called_url(&s, &headers, &uri);
    if !providers::verify(&info(&a, p), &hh, &url, &body) {
        // Who and what only: no numbers, no text.
        tracing::warn!(provider = %provider, account = %a.id, "webhook signature missing or wrong");
        metrics::counter!("switchboard_webhooks_refused_total", "provider" => p.as_str())
            .increment(1);
        return hook_error(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "the webhook signature is missing or wrong",
        );
    }
    let items = match providers::parse_webhook(p, &body, s.config.messaging.default_country_code) {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(provider = %provider, account = %a.id, "webhook payload refused");
            return hook_error(StatusCode::BAD_REQUEST, "invalid_payload", &e.0);
        }
    };
    for item in items {
        let r = match item {
            Inbound::Message(m) => receive_message(&s, &a, p, m).await.map(|_| ()),
            Inbound::Receipt {
                provider_message_id,
                state,
                error,
            } => apply_receipt(
                &s,
                DeliveryKey::Provider(a.id, &provider_message_id),
                state,
                error.as_deref(),
            )
            .await
            .map(|_| ()),
            Inbound::Watermark {
                contact_value,
                state,
                until_ms,
            } => apply_watermark(&s, &a, &contact_value, state, until_ms).await,
        };
        // Not acknowledged unless stored: the provider delivers again.
        if let Err(e) = r {
            return e.into_response();
        }
    }
    metrics::counter!("switchboard_webhooks_total", "provider" => p.as_str()).increment(1);
    if p == Provider::Twilio {
        // An empty TwiML answer: no automatic reply.
        return (
            [(header::CONTENT_TYPE, "text/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
        )
            .into_response();
    }
    axum::Json(json!({"ok": true})).into_response()
}

/// What an opt keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKeyword<'a> {
    /// Stop messages (the keyword).
    Out(&'a str),
    /// Start them again.
    In(&'a str),
}

/// Whether a whole message is an opt-out or opt-in keyword (case-insensitive, surrounding
/// spaces and punctuation ignored).
pub fn opt_keyword<'a>(
    text: &str,
    cfg: &'a crate::config::MessagingConfig,
) -> Option<OptKeyword<'a>> {
    let t = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    if t.is_empty() {
        return None;
    }
    let find = |list: &'a [String]| list.iter().find(|k| k.to_lowercase() == t);
    find(&cfg.opt_out_keywords)
        .map(|k| OptKeyword::Out(k.as_str()))
        .or_else(|| find(&cfg.opt_in_keywords).map(|k| OptKeyword::In(k.as_str())))
}

/// The intake of the messaging channels: a customer's message from a provider becomes a
/// message of an interaction. The sender's contact point finds the customer (or a new one);
/// the customer's open conversation through this account gets the message, or a new
/// interaction is created through the engine in the account's queue. Stored (with its provider
/// id, so a second delivery stores nothing) before the webhook is acknowledged, then published.
/// Returns whether the message was new.
pub async fn receive_message(
    s: &AppState,
    a: &ChannelAccount,
    p: Provider,
    m: InboundMessage,
) -> Result<bool, ApiError> {
    let tenant = a.tenant;
    let kind = p.contact_kind();
    // A message with media is checked for a redelivery before its media is fetched (outside
    // the intake lock); every message is checked again under the lock.
    if !m.media.is_empty()
        && s.store
            .delivery_by_provider_id(a.id, &m.provider_message_id)
            .await?
            .is_some()
    {
        return Ok(false);
    }
    // Media first (outside the intake lock): stored by content, so a duplicate costs nothing.
    let mut attachments = Vec::new();
    for r in &m.media {
        attachments.push(
            media::fetch_and_store(&s.messaging.http, &s.messaging.media, &info(a, p), r).await,
        );
    }
    let _guard = s
        .messaging
        .intake_lock(tenant, kind, &m.contact_value)
        .lock()
        .await;
    if s.store
        .delivery_by_provider_id(a.id, &m.provider_message_id)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let now = s.clock.wall_ms();
    let customer = customer_for(s, tenant, kind, &m.contact_value, m.name.clone()).await?;
    let it = match s
        .store
        .open_thread_interaction(tenant, customer, a.id)
        .await?
    {
        Some(id) => s
            .store
            .interaction(tenant, id)
            .await?
            .ok_or_else(|| ApiError::internal("a thread without its interaction"))?,
        None => {
            let subject: String = m.text.chars().take(80).collect();
            let it = s
                .ask(tenant, |reply| Command::Create {
                    channel: p.channel(),
                    queue: a.queue,
                    subject: Some(subject),
                    customer: Some(customer),
                    attributes: json!({"channel_account_id": a.id}),
                    priority: None,
                    reply,
                })
                .await??;
            s.store
                .put_thread(
                    &MessageThread {
                        interaction: it.id,
                        tenant,
                        channel: p.channel(),
                        account: Some(a.id),
                        contact_kind: kind.to_owned(),
                        contact_value: Sensitive::new(m.contact_value.clone()),
                        updated_at: now,
                    },
                    None,
                )
                .await?;
            it
        }
    };
    let (msg, delivery) = inbound(
        s,
        &it,
        (a, p.channel()),
        customer,
        m.name.clone(),
        &m.text,
        &m.provider_message_id,
        Value::Array(attachments),
    )
    .await?;
    let window = Some((kind.to_owned(), m.contact_value.clone()));
    let stored = store_and_publish(s, &it, msg, delivery, None, None, None, window).await?;
    if stored.is_none() {
        return Ok(false);
    }
    match opt_keyword(&m.text, &s.config.messaging) {
        Some(OptKeyword::Out(k)) => {
            let changed = record_opt(s, &it, kind, &m.contact_value, Some(k)).await?;
            let reply = s.config.messaging.opt_out_reply.clone();
            if changed && !reply.is_empty() {
                let thread = thread_of(s, &it).await?;
                queue_outbound(
                    s,
                    &it,
                    &thread,
                    Sender::System,
                    None,
                    &reply,
                    OutboundKind::Text,
                    json!([]),
                    &crate::email::Copies::default(),
                )
                .await?;
            }
        }
        Some(OptKeyword::In(k)) => {
            record_opt(s, &it, kind, &m.contact_value, None).await?;
            let _ = k;
        }
        None => {}
    }
    Ok(true)
}

/// A customer's message received through an account (on that channel) and its delivery row
/// (`received`).
#[allow(clippy::too_many_arguments)] // the parts of one received message
pub(crate) async fn inbound(
    s: &AppState,
    it: &Interaction,
    (a, channel): (&ChannelAccount, Channel),
    customer: CustomerId,
    name: Option<String>,
    text: &str,
    provider_message_id: &str,
    attachments: Value,
) -> Result<(Message, Delivery), ApiError> {
    // Media that was fetched becomes downloadable attachments of the message.
    let files = crate::attachments::record_media(
        s,
        it.tenant,
        &format!("provider:{}", a.id),
        attachments.as_array().map_or(&[][..], Vec::as_slice),
    )
    .await?;
    let now = s.clock.wall_ms();
    let msg = Message {
        id: s.clock.new_uuid().to_string(),
        tenant: it.tenant,
        interaction: it.id,
        seq: 0,
        sender: Sender::Customer,
        author_id: Some(customer.to_string()),
        author_name: name,
        body: Sensitive::new(text.to_owned()),
        internal: false,
        client_id: None,
        created_at: now,
        attachments: files,
    };
    let delivery = Delivery {
        message_id: msg.id.clone(),
        tenant: it.tenant,
        interaction: it.id,
        account: Some(a.id),
        channel,
        direction: "in".into(),
        provider_message_id: Some(provider_message_id.to_owned()),
        state: "received".into(),
        error: None,
        attachments,
        updated_at: now,
    };
    Ok((msg, delivery))
}

/// The customer a contact point belongs to, or a new customer with it (named `name`).
pub(crate) async fn customer_for(
    s: &AppState,
    tenant: TenantId,
    kind: &str,
    value: &str,
    name: Option<String>,
) -> Result<CustomerId, ApiError> {
    if let Some(c) = s.store.customer_by_contact(tenant, kind, value).await? {
        return Ok(c);
    }
    let c = Customer {
        id: CustomerId::from_uuid(s.clock.new_uuid()),
        tenant,
        name: name.unwrap_or_else(|| "Customer".into()),
        created_at: s.clock.wall_ms(),
        contact_points: vec![ContactPoint {
            kind: kind.to_owned(),
            value: Sensitive::new(value.to_owned()),
        }],
    };
    s.store.create_customer(&c).await?;
    Ok(c.id)
}

async fn thread_of(s: &AppState, it: &Interaction) -> Result<MessageThread, ApiError> {
    s.store
        .thread(it.tenant, it.id)
        .await?
        .ok_or_else(|| ApiError::internal("a messaging interaction without its thread"))
}

/// Records an opt-out (`Some(keyword)`) or opt-in of a contact point, with its event.
async fn record_opt(
    s: &AppState,
    it: &Interaction,
    kind: &str,
    value: &str,
    keyword: Option<&str>,
) -> Result<bool, ApiError> {
    let kind_name = if keyword.is_some() {
        "contact_point.opted_out"
    } else {
        "contact_point.opted_in"
    };
    let e = s
        .store
        .set_opt_out(
            it.tenant,
            kind,
            value,
            keyword,
            NewEvent {
                tenant: it.tenant,
                interaction: Some(it.id),
                agent: it.agent,
                kind: kind_name.into(),
                at: s.clock.wall_ms(),
                data: json!({"interaction_id": it.id, "customer_id": it.customer, "contact_kind": kind, "keyword": keyword}),
            },
        )
        .await?;
    let changed = e.is_some();
    if let Some(e) = e {
        s.bus.publish(BusEvent::from(e));
    }
    Ok(changed)
}

/// Stores a provider message with its delivery row (and outbox entry, stored mail, new thread)
/// through the group commit, then publishes it like a chat message, with its channel, delivery
/// state and attachments. `None` for a duplicate.
#[allow(clippy::too_many_arguments)] // the parts of one stored message
pub(crate) async fn store_and_publish(
    s: &AppState,
    it: &Interaction,
    msg: Message,
    delivery: Delivery,
    outbox: Option<OutboxItem>,
    email: Option<EmailRecord>,
    thread: Option<MessageThread>,
    window: Option<(String, String)>,
) -> Result<Option<Message>, ApiError> {
    let event = NewEvent {
        tenant: it.tenant,
        interaction: Some(it.id),
        agent: it.agent,
        kind: "message.created".into(),
        at: msg.created_at,
        data: json!({"interaction_id": it.id, "message_id": msg.id, "from": msg.sender.as_str(), "internal": false, "channel": delivery.channel}),
    };
    let attachments = delivery.attachments.clone();
    let (state, channel) = (delivery.state.clone(), delivery.channel);
    let Some((stored, event)) = s
        .messaging
        .writer
        .write(ProviderAppend {
            msg,
            event: Some(event),
            delivery,
            outbox,
            email,
            thread,
            window,
        })
        .await?
    else {
        return Ok(None);
    };
    metrics::counter!("switchboard_messages_total", "channel" => channel.as_str(), "from" => stored.sender.as_str()).increment(1);
    if let Some(e) = event {
        let mut be = BusEvent::from(e);
        let mut data = message_json(&stored);
        data["channel"] = json!(channel);
        data["delivery"] = json!(state);
        data["attachments"] = attachments;
        be.data = data;
        s.bus.publish(be);
    }
    Ok(Some(stored))
}

/// Applies a receipt to one of our messages and publishes `message.delivery`.
pub async fn apply_receipt(
    s: &AppState,
    key: DeliveryKey<'_>,
    state: &str,
    error: Option<&str>,
) -> Result<bool, ApiError> {
    let now = s.clock.wall_ms();
    let r = s
        .store
        .advance_delivery(key, state, error, now, |d| NewEvent {
            tenant: d.tenant,
            interaction: Some(d.interaction),
            agent: None,
            kind: "message.delivery".into(),
            at: now,
            data: json!({"interaction_id": d.interaction, "message_id": d.message_id, "state": d.state, "error": d.error}),
        })
        .await?;
    let Some((d, e)) = r else { return Ok(false) };
    if let Some(e) = e {
        let mut be = BusEvent::from(e);
        // Agents see the events of their own interactions.
        be.agent = s
            .store
            .interaction(d.tenant, d.interaction)
            .await?
            .and_then(|i| i.agent);
        s.bus.publish(be);
    }
    Ok(true)
}

async fn apply_watermark(
    s: &AppState,
    a: &ChannelAccount,
    contact: &str,
    state: &str,
    until_ms: i64,
) -> Result<(), ApiError> {
    for d in s.store.outbound_before(a.id, contact, until_ms).await? {
        apply_receipt(s, DeliveryKey::Message(&d.message_id), state, None).await?;
    }
    Ok(())
}

/// Whether free text may be sent now, and until when (`None`: no window on this channel).
pub async fn window(
    s: &AppState,
    thread: &MessageThread,
) -> Result<Option<(bool, Option<i64>)>, ApiError> {
    let Some(account) = thread.account else {
        return Ok(None);
    };
    let Some(a) = s.store.channel_account(thread.tenant, account).await? else {
        return Ok(None);
    };
    if !provider_of(&a)?.has_service_window() {
        return Ok(None);
    }
    let last = s
        .store
        .last_inbound_at(account, &thread.contact_kind, thread.contact_value.expose())
        .await?;
    let until = last.map(|l| l + SERVICE_WINDOW_MS);
    Ok(Some((until.is_some_and(|u| s.clock.wall_ms() < u), until)))
}

/// What an outbound message is.
#[derive(Debug, Clone)]
pub enum OutboundKind {
    /// Free text.
    Text,
    /// A WhatsApp template.
    Template {
        /// Name.
        name: String,
        /// Language code.
        language: String,
        /// Body parameters.
        parameters: Vec<String>,
    },
}

/// Sends an agent's reply (or a template) to the customer through the conversation's thread:
/// refused when the contact point opted out or (free text) when the service window is closed;
/// otherwise stored with its outbox entry and answered at once, sent by the outbox task.
// As for `queue_outbound`: each argument is a separate fact of the reply.
#[allow(clippy::too_many_arguments)]
pub async fn send_to_customer(
    s: &AppState,
    it: &Interaction,
    thread: &MessageThread,
    author: (String, String),
    text: &str,
    kind: OutboundKind,
    attachments: Value,
    copies: &crate::email::Copies,
) -> Result<Message, ApiError> {
    if (copies.cc.as_ref().is_some_and(|c| !c.is_empty()) || !copies.bcc.is_empty())
        && thread.channel != Channel::Email
    {
        return Err(ApiError::unprocessable(
            "invalid_value",
            format!(
                "cc, bcc: only email replies have copies; not {}",
                thread.channel
            ),
        ));
    }
    if !attachments.as_array().is_none_or(Vec::is_empty) && thread.channel != Channel::Email {
        return Err(ApiError::unprocessable(
            "attachments_not_supported",
            format!(
                "files are sent by email and chat; not on {}",
                thread.channel
            ),
        ));
    }
    if let Some((keyword, _)) = s
        .store
        .opt_out(
            it.tenant,
            &thread.contact_kind,
            thread.contact_value.expose(),
        )
        .await?
    {
        return Err(ApiError::conflict(
            "opted_out",
            format!(
                "the customer opted out of messages on this {} (keyword {keyword:?}); they must send START to opt in again",
                thread.contact_kind
            ),
        ));
    }
    match &kind {
        OutboundKind::Text => {
            if let Some((false, until)) = window(s, thread).await? {
                let since = until
                    .map(|u| format!("it closed at {}", crate::clock::rfc3339(u)))
                    .unwrap_or_else(|| "the customer has not written yet".into());
                return Err(ApiError::conflict(
                    "window_closed",
                    format!(
                        "free text may be sent only within 24 hours of the customer's last message on {} ({since}); send an approved template instead",
                        thread.channel
                    ),
                ));
            }
        }
        OutboundKind::Template { .. } => {
            let is_whatsapp = match thread.account {
                Some(acc) => s
                    .store
                    .channel_account(it.tenant, acc)
                    .await?
                    .is_some_and(|a| a.provider == Provider::Whatsapp.as_str()),
                None => false,
            };
            if !is_whatsapp {
                return Err(ApiError::conflict(
                    "not_whatsapp",
                    "templates are sent only on WhatsApp conversations",
                ));
            }
        }
    }
    queue_outbound(
        s,
        it,
        thread,
        Sender::Agent,
        Some(author),
        text,
        kind,
        attachments,
        copies,
    )
    .await
}

/// Queues an automatic message (Sender::System) to the customer through the conversation's
/// thread, e.g. an email acknowledgement.
pub(crate) async fn queue_system_message(
    s: &AppState,
    it: &Interaction,
    text: &str,
) -> Result<Message, ApiError> {
    let thread = thread_of(s, it).await?;
    queue_outbound(
        s,
        it,
        &thread,
        Sender::System,
        None,
        text,
        OutboundKind::Text,
        json!([]),
        &crate::email::Copies::default(),
    )
    .await
}

/// Stores an outbound message with its delivery row (`queued`) and outbox entry in one
/// transaction, publishes it and wakes the outbox task. Email is composed here (threading
/// headers, ticket reference), so the stored copy is exactly what is sent.
// Each argument is a separate fact of the message (who, to where, what, which files); a struct
// for them would only be built at each call.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn queue_outbound(
    s: &AppState,
    it: &Interaction,
    thread: &MessageThread,
    sender: Sender,
    author: Option<(String, String)>,
    text: &str,
    kind: OutboundKind,
    attachments: Value,
    copies: &crate::email::Copies,
) -> Result<Message, ApiError> {
    let now = s.clock.wall_ms();
    let (author_id, author_name) = match author {
        Some((id, name)) => (Some(id), Some(name)),
        None => (None, None),
    };
    let msg = Message {
        id: s.clock.new_uuid().to_string(),
        tenant: it.tenant,
        interaction: it.id,
        seq: 0,
        sender,
        author_id,
        author_name,
        body: Sensitive::new(text.to_owned()),
        internal: false,
        client_id: None,
        created_at: now,
        attachments,
    };
    let request = match &kind {
        OutboundKind::Text => {
            json!({"to": thread.contact_value.expose(), "kind": "text", "text": text})
        }
        OutboundKind::Template {
            name,
            language,
            parameters,
        } => json!({"to": thread.contact_value.expose(), "kind": "template",
                "template": {"name": name, "language": language, "parameters": parameters}}),
    };
    let (account, email) = if thread.channel == Channel::Email {
        let a = crate::email::sending_account(s, thread).await?;
        let mail = crate::email::compose(s, it, thread, &a, &msg, copies).await?;
        (Some(a.id), Some(mail))
    } else {
        (thread.account, None)
    };
    let outbox = OutboxItem {
        message_id: msg.id.clone(),
        tenant: it.tenant,
        account,
        request: Sensitive::new(request),
        state: "pending".into(),
        attempts: 0,
        next_at: now,
        last_error: None,
        created_at: now,
    };
    let delivery = Delivery {
        message_id: msg.id.clone(),
        tenant: it.tenant,
        interaction: it.id,
        account,
        channel: thread.channel,
        direction: "out".into(),
        provider_message_id: email.as_ref().map(|e| e.rfc_message_id.clone()),
        state: "queued".into(),
        error: None,
        attachments: json!([]),
        updated_at: now,
    };
    let stored = store_and_publish(s, it, msg, delivery, Some(outbox), email, None, None)
        .await?
        .ok_or_else(|| ApiError::internal("a new outbound message was a duplicate"))?;
    s.messaging.wake.notify_one();
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_keywords_match_whole_messages_in_any_case_and_script() {
        let cfg = crate::config::MessagingConfig::default();
        assert_eq!(opt_keyword(" stop ", &cfg), Some(OptKeyword::Out("STOP")));
        assert_eq!(opt_keyword("Stop.", &cfg), Some(OptKeyword::Out("STOP")));
        assert_eq!(opt_keyword("لغو", &cfg), Some(OptKeyword::Out("لغو")));
        assert_eq!(opt_keyword("إلغاء", &cfg), Some(OptKeyword::Out("إلغاء")));
        assert_eq!(opt_keyword("unstop", &cfg), Some(OptKeyword::In("UNSTOP")));
        assert_eq!(opt_keyword("please stop calling", &cfg), None);
        assert_eq!(opt_keyword("", &cfg), None);
    }
}
