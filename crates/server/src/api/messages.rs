//! Conversation routes for staff: read and write messages and internal notes of an interaction,
//! and relay typing and read indicators (docs/chat.md).

use super::views::ErrorBody;
use crate::auth::Caller;
use crate::chat::{NewMessage, is_conversation, message_json, post_message, signal};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_model::{InteractionId, InteractionState};
use switchboard_store::{Interaction, InteractionFilter, Sender};
use utoipa::ToSchema;

/// A message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// Id.
    pub id: String,
    /// Position in the conversation, from 1.
    pub seq: i64,
    /// `customer`, `agent` or `system`.
    pub from: String,
    /// Name shown with it.
    pub name: Option<String>,
    /// The text.
    pub text: String,
    /// An internal note (never shown to the customer).
    pub internal: bool,
    /// When it was stored.
    pub at: String,
    /// Files it carries: `{id, name, content_type, size}`, downloaded from
    /// `/api/v1/interactions/{id}/attachments/{attachment_id}`.
    #[schema(value_type = Vec<Object>)]
    pub attachments: Value,
}

/// The view of a message's JSON.
pub(super) fn view(v: Value) -> MessageView {
    MessageView {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        seq: v["seq"].as_i64().unwrap_or_default(),
        from: v["from"].as_str().unwrap_or_default().to_owned(),
        name: v["name"].as_str().map(str::to_owned),
        text: v["text"].as_str().unwrap_or_default().to_owned(),
        internal: v["internal"].as_bool().unwrap_or_default(),
        at: v["at"].as_str().unwrap_or_default().to_owned(),
        attachments: match &v["attachments"] {
            Value::Array(a) => Value::Array(a.clone()),
            _ => json!([]),
        },
    }
}

/// Body of `POST /api/v1/interactions/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageBody {
    /// The text (1-4000 characters).
    pub text: String,
    /// An internal note for colleagues instead of a reply.
    #[serde(default)]
    pub internal: bool,
    /// Ids of files uploaded with `POST /api/v1/attachments`, sent with the reply (email and
    /// chat; at most 5).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Email replies: copies in the `Cc` header (at most 20 addresses, each a plain
    /// `user@example.com`). Left out: those of the customer's last mail ("reply all", see
    /// `email.reply_cc` of `GET /api/v1/interactions/{id}/messaging`); `[]`: none.
    #[serde(default)]
    pub cc: Option<Vec<String>>,
    /// Email replies: blind copies, only in the SMTP envelope, never in a header (at most 20).
    #[serde(default)]
    pub bcc: Vec<String>,
}

/// Body of `POST /api/v1/email/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// The reply's text with its formatting (docs/email.md#formatting; at most 4000 characters).
    pub text: String,
}

/// The HTML part an email reply with this text would have.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    /// The whole HTML document, exactly as it would be sent.
    pub html: String,
    /// Its body's blocks only (paragraphs, lists, quotes), to show inside a page.
    pub fragment: String,
}

/// Body of `POST /api/v1/interactions/{id}/typing`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypingBody {
    /// Typing or stopped.
    pub on: bool,
}

/// Body of `POST /api/v1/interactions/{id}/read`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// Everything up to this `seq` has been read.
    pub seq: i64,
}

/// The interaction of the caller's tenant (`404` if there is none).
async fn fetch(s: &AppState, caller: &Caller, id: InteractionId) -> Result<Interaction, ApiError> {
    s.store
        .interaction(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("interaction"))
}

/// Whether the caller works on the interaction's conversation: its agent, or a supervisor.
fn works_on(caller: &Caller, it: &Interaction) -> bool {
    caller.is_supervisor() || (caller.agent.is_some() && it.agent == caller.agent)
}

/// The interaction, if the caller may work on its conversation (else `404`).
pub(super) async fn conversation(
    s: &AppState,
    caller: &Caller,
    id: InteractionId,
) -> Result<Interaction, ApiError> {
    let it = fetch(s, caller, id).await?;
    if works_on(caller, &it) {
        Ok(it)
    } else {
        Err(ApiError::not_found("interaction"))
    }
}

/// The interaction, if the caller may read its conversation: who may work on it, or an agent
/// now handling (offered, connected or in wrap-up) another contact of the same customer, who
/// reads the customer's earlier conversations from the desktop's history.
async fn readable(
    s: &AppState,
    caller: &Caller,
    id: InteractionId,
) -> Result<Interaction, ApiError> {
    let it = fetch(s, caller, id).await?;
    if works_on(caller, &it) {
        return Ok(it);
    }
    if let (Some(agent), Some(customer)) = (caller.agent, it.customer) {
        for state in [
            InteractionState::Offered,
            InteractionState::Connected,
            InteractionState::WrapUp,
        ] {
            let f = InteractionFilter {
                state: Some(state),
                customer: Some(customer),
                agent: Some(agent),
                limit: Some(1),
                ..InteractionFilter::default()
            };
            if !s.store.interactions(it.tenant, &f).await?.is_empty() {
                return Ok(it);
            }
        }
    }
    Err(ApiError::not_found("interaction"))
}

/// Messages and internal notes of an interaction, in order: for its agent and supervisors, and
/// for an agent handling another contact of the same customer (the history).
#[utoipa::path(get, path = "/api/v1/interactions/{id}/messages", tag = "interactions", params(("id" = String, Path)),
    responses((status = 200, body = Vec<MessageView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<Vec<MessageView>>> {
    let it = readable(&s, &caller, id).await?;
    let msgs = s.store.messages(it.tenant, id, true).await?;
    Ok(ApiJson(
        msgs.iter().map(|m| view(message_json(m))).collect(),
    ))
}

/// Downloads a file of a message of the interaction (who may read its messages, as for the
/// list, may read its files). Images come `inline`, everything else as `attachment`, always with `nosniff`.
#[utoipa::path(get, path = "/api/v1/interactions/{id}/attachments/{attachment_id}", tag = "interactions",
    params(("id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, description = "The file's bytes, with its content type"), (status = 404, body = ErrorBody)))]
pub async fn attachment(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath((id, attachment_id)): ApiPath<(InteractionId, String)>,
) -> ApiResult<axum::response::Response> {
    let it = readable(&s, &caller, id).await?;
    let a = s
        .store
        .attachment(it.tenant, &attachment_id)
        .await?
        .filter(|a| a.interaction == Some(id) && a.message.is_some())
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    crate::attachments::serve(&s, &a).await
}

/// Sends a reply to the customer (the connected agent) or an internal note (its agent or a
/// supervisor). Stored before it is answered and delivered.
#[utoipa::path(post, path = "/api/v1/interactions/{id}/messages", tag = "interactions", params(("id" = String, Path)), request_body = NewMessageBody,
    responses((status = 201, body = MessageView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<NewMessageBody>,
) -> ApiResult<(StatusCode, ApiJson<MessageView>)> {
    // Copies are checked first: a malformed address (a smuggled line break or second
    // recipient) is refused before anything is stored or sent.
    let copies = crate::email::Copies {
        cc: b
            .cc
            .as_deref()
            .map(|l| crate::email::copy_list("cc", l))
            .transpose()?,
        bcc: crate::email::copy_list("bcc", &b.bcc)?,
    };
    let has_copies = copies.cc.as_ref().is_some_and(|c| !c.is_empty()) || !copies.bcc.is_empty();
    let it = conversation(&s, &caller, id).await?;
    let text = b.text.trim().to_owned();
    if (text.is_empty() && b.attachments.is_empty()) || text.chars().count() > 4000 {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "text: 1 to 4000 characters (it may be empty when files are attached)",
        ));
    }
    if !b.internal {
        if !is_conversation(it.channel) {
            return Err(ApiError::conflict(
                "not_a_conversation",
                format!(
                    "a {} interaction has no messages; use an internal note",
                    it.channel
                ),
            ));
        }
        if it.state != InteractionState::Connected || it.agent != caller.agent {
            return Err(ApiError::conflict(
                "wrong_state",
                "only the connected agent replies to the customer",
            ));
        }
    }
    if has_copies && b.internal {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "cc, bcc: internal notes are not sent to anyone",
        ));
    }
    let name = match caller.agent {
        Some(a) => s.store.agent(it.tenant, a).await?.map(|a| a.name),
        None => None,
    }
    .unwrap_or_else(|| caller.user.display_name.clone());
    let files = if b.attachments.is_empty() {
        json!([])
    } else {
        if b.internal {
            return Err(ApiError::unprocessable(
                "invalid_value",
                "attachments: internal notes carry no files",
            ));
        }
        crate::attachments::for_message(
            &s,
            it.tenant,
            &crate::attachments::staff_uploader(&caller),
            &b.attachments,
        )
        .await?
    };
    // A conversation with a messaging route (SMS, WhatsApp, ..., or continued there) replies
    // through the provider.
    if !b.internal
        && let Some(thread) = s.store.thread(it.tenant, id).await?
    {
        let m = crate::messaging::send_to_customer(
            &s,
            &it,
            &thread,
            (caller.user.id.to_string(), name),
            &text,
            crate::messaging::OutboundKind::Text,
            files,
            &copies,
        )
        .await?;
        return Ok((StatusCode::CREATED, ApiJson(view(message_json(&m)))));
    }
    if has_copies {
        return Err(ApiError::unprocessable(
            "invalid_value",
            format!(
                "cc, bcc: only email replies have copies; not {}",
                it.channel
            ),
        ));
    }
    let (m, _) = post_message(
        &s,
        &it,
        NewMessage {
            sender: Sender::Agent,
            author_id: Some(caller.user.id.to_string()),
            author_name: Some(name),
            text,
            internal: b.internal,
            client_id: None,
            attachments: files,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(view(message_json(&m)))))
}

/// Renders an email reply's formatting as the HTML part it would be sent with (the same
/// renderer: bold, italic, lists, quotes, safe links; everything else escaped), for a preview.
#[utoipa::path(post, path = "/api/v1/email/preview", tag = "interactions", request_body = PreviewBody,
    responses((status = 200, body = PreviewView), (status = 422, body = ErrorBody)))]
pub async fn preview(
    _caller: Caller,
    ApiJson(b): ApiJson<PreviewBody>,
) -> ApiResult<ApiJson<PreviewView>> {
    if b.text.chars().count() > 4000 {
        return Err(ApiError::unprocessable(
            "invalid_value",
            "text: at most 4000 characters",
        ));
    }
    Ok(ApiJson(PreviewView {
        html: crate::email::html_of(&b.text),
        fragment: crate::email::markup::render(&b.text),
    }))
}

/// Tells the customer the agent is typing (or stopped).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/typing", tag = "interactions", params(("id" = String, Path)), request_body = TypingBody,
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn typing(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<TypingBody>,
) -> ApiResult<StatusCode> {
    let it = conversation(&s, &caller, id).await?;
    signal(
        &s,
        &it,
        "message.typing",
        json!({"interaction_id": id, "from": "agent", "name": caller.user.display_name, "on": b.on}),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Marks the conversation read up to `seq` (the customer sees ✓✓).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/read", tag = "interactions", params(("id" = String, Path)), request_body = ReadBody,
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiJson(b): ApiJson<ReadBody>,
) -> ApiResult<StatusCode> {
    let it = conversation(&s, &caller, id).await?;
    let marks = s
        .store
        .mark_read(it.tenant, id, Sender::Agent, b.seq)
        .await?;
    signal(
        &s,
        &it,
        "message.read",
        json!({"interaction_id": id, "by": "agent", "seq": marks.agent}),
    );
    Ok(StatusCode::NO_CONTENT)
}
