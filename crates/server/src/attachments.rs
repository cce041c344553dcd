//! Files that come with messages (docs/chat.md, "Attachments"): a chat customer's uploads, with
//! the size and type limits of `[chat]`, and the downloads of any message's files, for staff
//! of the tenant and for the customer whose conversation it is.
//!
//! The bytes are stored content-addressed in the media store shared with the messaging
//! channels (`<data>/media/`); an [`Attachment`] record says whose they are, and every download
//! is checked against it. Downloads are served with `nosniff` and a sandboxing CSP, and as
//! `attachment` unless they are images, so an uploaded page can never run in our origin.

use crate::auth::token_hash;
use crate::error::{ApiError, ApiPath};
use crate::state::AppState;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use switchboard_model::TenantId;
use switchboard_store::{Attachment, ChatSession};

/// Most files one message carries.
pub const MAX_PER_MESSAGE: usize = 5;
/// Longest file name kept, in characters.
const MAX_NAME: usize = 200;

/// The customer-side routes: `POST /chat/attachments` and `GET /chat/attachments/{id}`.
pub fn chat_routes() -> Router<AppState> {
    Router::new()
        // The size limit is `[chat] max_attachment_bytes`, enforced by `upload` itself with a
        // readable error, not the API's body limit.
        .route(
            "/chat/attachments",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/chat/attachments/{id}", get(download_for_customer))
}

/// Who is asking, on the customer side: the tenant's slug and the widget's session token.
#[derive(Debug, Deserialize)]
struct CustomerQuery {
    tenant: String,
    session: Option<String>,
    name: Option<String>,
}

/// The chat session a request carries (`Authorization: Bearer` or `?session=`).
async fn session(
    s: &AppState,
    q: &CustomerQuery,
    headers: &HeaderMap,
) -> Result<ChatSession, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| q.session.clone())
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(|| ApiError::unauthorized("a chat session token is required"))?;
    let tenant = s
        .store
        .tenant_by_slug(&q.tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    s.store
        .chat_session(tenant.id, &token_hash(&token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("no such chat session; reload the chat"))
}

/// Whether `content_type` is in the allowed list (entries like `image/*` match a family).
pub fn type_allowed(allowed: &[String], content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    allowed.iter().any(|a| match a.strip_suffix("/*") {
        Some(family) => ct.split('/').next() == Some(family),
        None => *a == ct,
    })
}

/// Whether the bytes start the way their claimed type does (for the types we show inline or
/// that browsers open): a page renamed to `.png` is refused.
pub fn content_matches(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        _ => true,
    }
}

/// A file name safe to show and to send in `Content-Disposition`: no path, no control
/// characters, bounded.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(MAX_NAME)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// A refused upload's body is read and dropped up to this many times the size limit before
/// the answer, so that a client still sending it gets the answer rather than a reset
/// connection; a bigger one is cut off.
const DISCARD_FACTOR: usize = 4;

/// Reads and drops up to `cap` bytes of a refused upload.
async fn discard(body: Body, cap: usize) {
    use futures_util::StreamExt;
    let mut data = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = data.next().await {
        seen = seen.saturating_add(chunk.len());
        if seen > cap {
            break;
        }
    }
}

/// The body of an upload, checked against `[chat] max_attachment_bytes` and
/// `attachment_types`, and its content type.
async fn read_upload(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Bytes), ApiError> {
    let max = s.config.chat_max_attachment_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment_too_large",
            format!("files can be at most {} MB", max.div_ceil(1024 * 1024)),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        discard(body, max.saturating_mul(DISCARD_FACTOR)).await;
        return Err(too_large());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !type_allowed(&s.config.chat_attachment_types, &content_type) {
        discard(body, max).await;
        return Err(ApiError::unprocessable(
            "attachment_type_not_allowed",
            format!(
                "files of type {content_type:?} cannot be sent; allowed: {}",
                s.config.chat_attachment_types.join(", ")
            ),
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| too_large())?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "empty_attachment",
            "the file is empty",
        ));
    }
    if !content_matches(&content_type, &bytes) {
        return Err(ApiError::unprocessable(
            "attachment_content_mismatch",
            format!("the file's content is not {content_type}"),
        ));
    }
    Ok((content_type, bytes))
}

/// Who uploaded a file on the staff side.
pub fn staff_uploader(caller: &crate::auth::Caller) -> String {
    format!("user:{}", caller.user.id)
}

/// `?name=` of a staff upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StaffUploadQuery {
    /// The file name shown and sent.
    pub name: Option<String>,
}

/// A file uploaded by staff (the raw body, with its `Content-Type`), to send with a message
/// (`attachments` of `POST /api/v1/interactions/{id}/messages`). Same limits as the chat's.
#[utoipa::path(post, path = "/api/v1/attachments", tag = "interactions", params(StaffUploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "The stored file: id, name, content_type, size"),
        (status = 413, body = crate::api::views::ErrorBody), (status = 422, body = crate::api::views::ErrorBody)))]
pub async fn upload_for_staff(
    State(s): State<AppState>,
    caller: crate::auth::Caller,
    Query(q): Query<StaffUploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (content_type, bytes) = read_upload(&s, &headers, body).await?;
    let name = clean_name(q.name.as_deref().unwrap_or("file"));
    let a = store(
        &s,
        caller.user.tenant,
        staff_uploader(&caller),
        name,
        content_type,
        &bytes,
    )
    .await?;
    metrics::counter!("switchboard_attachments_total", "from" => "staff").increment(1);
    Ok((StatusCode::CREATED, axum::Json(a.summary())).into_response())
}

async fn upload(
    State(s): State<AppState>,
    Query(q): Query<CustomerQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sess = session(&s, &q, &headers).await?;
    let (content_type, bytes) = read_upload(&s, &headers, body).await?;
    let name = clean_name(q.name.as_deref().unwrap_or("file"));
    let a = store(
        &s,
        sess.tenant,
        format!("customer:{}", sess.customer),
        name,
        content_type,
        &bytes,
    )
    .await?;
    metrics::counter!("switchboard_attachments_total", "from" => "customer").increment(1);
    Ok((StatusCode::CREATED, axum::Json(a.summary())).into_response())
}

/// Stores bytes (durably, by content) and their record, not yet sent in any message.
pub async fn store(
    s: &AppState,
    tenant: TenantId,
    uploaded_by: String,
    name: String,
    content_type: String,
    bytes: &[u8],
) -> Result<Attachment, ApiError> {
    let sha256 = s
        .messaging
        .media
        .put(bytes)
        .await
        .map_err(ApiError::internal)?;
    record(
        s,
        tenant,
        uploaded_by,
        name,
        content_type,
        sha256,
        bytes.len(),
    )
    .await
}

/// Records bytes already in the media store as an attachment, not yet sent in any message.
pub async fn record(
    s: &AppState,
    tenant: TenantId,
    uploaded_by: String,
    name: String,
    content_type: String,
    sha256: String,
    size: usize,
) -> Result<Attachment, ApiError> {
    let a = Attachment {
        id: s.clock.new_uuid().to_string(),
        tenant,
        interaction: None,
        message: None,
        uploaded_by,
        name,
        content_type,
        size: size as i64,
        sha256,
        created_at: s.clock.wall_ms(),
    };
    s.store.put_attachment(&a).await?;
    Ok(a)
}

/// Records files already in the media store (as the messaging and email intakes describe them:
/// `{sha256, size, content_type, name}`; entries without `sha256`, such as media that could not be
/// fetched, are skipped) and returns the summaries a message carries.
pub async fn record_media(
    s: &AppState,
    tenant: TenantId,
    uploaded_by: &str,
    media: &[Value],
) -> Result<Value, ApiError> {
    let mut files = Vec::new();
    for f in media {
        if let (Some(sha), Some(size)) = (f["sha256"].as_str(), f["size"].as_u64()) {
            let ct = f["content_type"]
                .as_str()
                .unwrap_or("application/octet-stream");
            let rec = record(
                s,
                tenant,
                uploaded_by.to_owned(),
                clean_name(f["name"].as_str().unwrap_or("file")),
                ct.to_owned(),
                sha.to_owned(),
                usize::try_from(size).unwrap_or(usize::MAX),
            )
            .await?;
            files.push(rec.summary());
        }
    }
    Ok(Value::Array(files))
}

/// The summaries of attachments a customer names for a message: each must be the customer's
/// own upload, not yet sent.
pub async fn for_message(
    s: &AppState,
    tenant: TenantId,
    uploaded_by: &str,
    ids: &[String],
) -> Result<Value, ApiError> {
    if ids.len() > MAX_PER_MESSAGE {
        return Err(ApiError::bad_request(
            "too_many_attachments",
            format!("a message carries at most {MAX_PER_MESSAGE} files"),
        ));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let a = s
            .store
            .attachment(tenant, id)
            .await?
            .filter(|a| a.uploaded_by == uploaded_by && a.message.is_none())
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "unknown_attachment",
                    "that file was not uploaded in this chat or is already sent; upload it again",
                )
            })?;
        out.push(a.summary());
    }
    Ok(Value::Array(out))
}

async fn download_for_customer(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Query(q): Query<CustomerQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sess = session(&s, &q, &headers).await?;
    let a = s
        .store
        .attachment(sess.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("attachment"))?;
    // The customer's own upload, or a file of one of the customer's conversations.
    let mine = a.uploaded_by == format!("customer:{}", sess.customer);
    let theirs = match a.interaction {
        Some(i) if a.message.is_some() => s
            .store
            .interaction(sess.tenant, i)
            .await?
            .is_some_and(|it| it.customer == Some(sess.customer)),
        _ => false,
    };
    if !(mine || theirs) {
        return Err(ApiError::not_found("attachment"));
    }
    serve(&s, &a).await
}

/// The file's bytes with safe headers.
pub async fn serve(s: &AppState, a: &Attachment) -> Result<Response, ApiError> {
    let path = s
        .messaging
        .media
        .path(&a.sha256)
        .ok_or_else(|| ApiError::internal("an attachment without a valid hash"))?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        tracing::error!(attachment = %a.id, error = %e, "attachment file missing");
        ApiError::not_found("attachment file")
    })?;
    let inline = a.content_type.starts_with("image/");
    let encoded: String = form_urlencoded::byte_serialize(a.name.as_bytes()).collect();
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        encoded.replace('+', "%20")
    );
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_match_exactly_or_by_family() {
        let allowed = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(type_allowed(&allowed, "image/png"));
        assert!(type_allowed(&allowed, "IMAGE/JPEG"));
        assert!(type_allowed(&allowed, "application/pdf"));
        assert!(!type_allowed(&allowed, "application/pdfx"));
        assert!(!type_allowed(&allowed, "text/html"));
        assert!(!type_allowed(&allowed, ""));
    }

    #[test]
    fn content_must_fit_the_claimed_type() {
        assert!(content_matches("image/png", b"\x89PNG\r\n\x1a\n...."));
        assert!(!content_matches("image/png", b"<html><script>"));
        assert!(content_matches("application/pdf", b"%PDF-1.7"));
        assert!(!content_matches("image/webp", b"RIFF"));
        assert!(content_matches("text/plain", b"anything"));
    }

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\x\\فاکتور.pdf"), "فاکتور.pdf");
        assert_eq!(clean_name("a\r\nb\".txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME);
    }
}
