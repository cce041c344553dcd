//! Call recordings over HTTP (docs/voice.md, "Recordings"): list an interaction's recordings,
//! read one, download its audio (with `Range`), delete it (admins), import one made elsewhere
//! (admins), and pause, resume or start the recording of a live call.
//!
//! Who may hear a recording: supervisors and admins of the tenant, and agents who handled the
//! interaction (it was assigned to them, or they accepted it once). Everything of another
//! tenant is `404`, as if it did not exist.

use super::views::ErrorBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::recordings::{LiveAction, LiveOutcome, RecordingError};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_model::{
    Channel, InteractionId, InteractionState, PausedSpan, RecordingId, RecordingState, Role,
};
use switchboard_store::Interaction;
use switchboard_store::recordings::Recording;
use utoipa::{IntoParams, ToSchema};

/// A recording's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// Id.
    pub id: String,
    /// The call.
    pub interaction_id: String,
    /// The queue whose retention applies.
    pub queue_id: Option<String>,
    /// `recording`, `complete` or `deleted`.
    pub state: String,
    /// `wav` (16-bit PCM).
    pub format: String,
    /// 2: caller left, agent right.
    pub channels: i64,
    /// 8000.
    pub sample_rate: i64,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339), once complete.
    pub ended_at: Option<String>,
    /// Length of the audio.
    pub duration_ms: Option<i64>,
    /// Size of the file.
    pub size_bytes: Option<i64>,
    /// Stretches written as silence (ms from the start).
    #[schema(value_type = Vec<Object>)]
    pub paused_spans: Vec<PausedSpan>,
    /// Hex SHA-256 of the file.
    pub sha256: Option<String>,
    /// When retention deletes it (RFC 3339); `null`: kept until deleted by hand.
    pub retain_until: Option<String>,
    /// When it was deleted.
    pub deleted_at: Option<String>,
    /// Who deleted it: `admin:<user id>`, `retention` or `missing`.
    pub deleted_by: Option<String>,
    /// Where to download the audio (while complete).
    pub audio_url: Option<String>,
}

impl From<&Recording> for RecordingView {
    fn from(r: &Recording) -> Self {
        let t = |ms: Option<i64>| ms.map(crate::clock::rfc3339);
        RecordingView {
            id: r.id.to_string(),
            interaction_id: r.interaction.to_string(),
            queue_id: r.queue.map(|q| q.to_string()),
            state: r.state.as_str().to_owned(),
            format: r.format.clone(),
            channels: r.channels,
            sample_rate: r.sample_rate,
            started_at: crate::clock::rfc3339(r.started_at),
            ended_at: t(r.ended_at),
            duration_ms: r.duration_ms,
            size_bytes: r.size_bytes,
            paused_spans: r.paused_spans.clone(),
            sha256: r.sha256.clone(),
            retain_until: t(r.retain_until),
            deleted_at: t(r.deleted_at),
            deleted_by: r.deleted_by.clone(),
            audio_url: (r.state == RecordingState::Complete)
                .then(|| format!("/api/v1/recordings/{}/audio", r.id)),
        }
    }
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> Self {
        match e {
            RecordingError::NoSuchInteraction => ApiError::not_found("interaction"),
            RecordingError::NoSuchRecording => ApiError::not_found("recording"),
            RecordingError::WrongState(s) => {
                ApiError::conflict("wrong_state", format!("the recording is {s}"))
            }
            RecordingError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

async fn interaction(s: &AppState, caller: &Caller, id: InteractionId) -> ApiResult<Interaction> {
    s.store
        .interaction(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("interaction"))
}

/// Ok for supervisors and admins, and for an agent who handled the interaction (it is or was
/// assigned to them: they accepted it once); 403 otherwise.
async fn may_hear(s: &AppState, caller: &Caller, it: &Interaction) -> ApiResult<()> {
    if caller.is_supervisor() {
        return Ok(());
    }
    let refused = || {
        ApiError::forbidden(
            "only supervisors, admins and the agents who handled this interaction may hear its recordings",
        )
    };
    let Some(me) = caller.agent else {
        return Err(refused());
    };
    if it.agent == Some(me) && it.answered_at.is_some() {
        return Ok(());
    }
    let handled = s
        .store
        .interaction_events(it.tenant, it.id)
        .await?
        .iter()
        .any(|e| e.kind == "interaction.accepted" && e.agent == Some(me));
    if handled { Ok(()) } else { Err(refused()) }
}

/// The recording and its interaction, if the caller may hear it (404 across tenants).
async fn readable(s: &AppState, caller: &Caller, id: RecordingId) -> ApiResult<Recording> {
    let rec = s
        .store
        .recording(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("recording"))?;
    let it = interaction(s, caller, rec.interaction).await?;
    may_hear(s, caller, &it).await?;
    Ok(rec)
}

/// Lists an interaction's recordings, oldest first (deleted ones too, without audio).
#[utoipa::path(get, path = "/api/v1/interactions/{id}/recordings", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = Vec<RecordingView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<Vec<RecordingView>>> {
    let it = interaction(&s, &caller, id).await?;
    may_hear(&s, &caller, &it).await?;
    let list = s
        .store
        .interaction_recordings(caller.user.tenant, id)
        .await?;
    Ok(ApiJson(list.iter().map(RecordingView::from).collect()))
}

/// Reads a recording's metadata.
#[utoipa::path(get, path = "/api/v1/recordings/{id}", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = RecordingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<RecordingId>,
) -> ApiResult<ApiJson<RecordingView>> {
    let rec = readable(&s, &caller, id).await?;
    Ok(ApiJson(RecordingView::from(&rec)))
}

/// Deletes a recording (admin): the file is removed, the metadata kept as `deleted`, and a
/// `recording.deleted` event names who did it.
#[utoipa::path(delete, path = "/api/v1/recordings/{id}", tag = "recordings", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<RecordingId>,
) -> ApiResult<StatusCode> {
    let rec = s
        .store
        .recording(caller.user.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("recording"))?;
    caller.require(Role::Admin)?;
    match rec.state {
        RecordingState::Recording => Err(ApiError::conflict(
            "wrong_state",
            "the call is still being recorded; delete it once it is complete",
        )),
        RecordingState::Deleted => Err(ApiError::conflict(
            "wrong_state",
            "the recording is deleted already",
        )),
        RecordingState::Complete => {
            let by = format!("admin:{}", caller.user.id);
            if s.recordings.delete(caller.user.tenant, id, &by).await? {
                Ok(StatusCode::NO_CONTENT)
            } else {
                Err(ApiError::conflict(
                    "wrong_state",
                    "the recording is deleted already",
                ))
            }
        }
    }
}

/// A byte range of a file of `len` bytes, from a `Range` header: `None` for the whole file,
/// `Err` for a range that cannot be served (416). One range only (`bytes=a-b`, `a-`, `-n`).
fn byte_range(headers: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?.trim();
    let spec = v.strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(());
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Err(()),
        // the last n bytes
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 || len == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, _) => {
            let start: u64 = a.parse().map_err(|_| ())?;
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
            };
            (start, end)
        }
    };
    if start >= len || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Downloads a complete recording's audio (`audio/wav`), or a byte range of it (`Range`).
#[utoipa::path(get, path = "/api/v1/recordings/{id}/audio", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, description = "The WAV file (audio/wav)", content_type = "audio/wav"),
        (status = 206, description = "The requested byte range"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn audio(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<RecordingId>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let rec = readable(&s, &caller, id).await?;
    match rec.state {
        RecordingState::Recording => {
            return Err(ApiError::conflict(
                "wrong_state",
                "the call is still being recorded; the audio is ready once it is complete",
            ));
        }
        RecordingState::Deleted => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "gone",
                "the recording was deleted; only its metadata is kept",
            ));
        }
        RecordingState::Complete => {}
    }
    let path = s
        .recordings
        .absolute(&rec.path)
        .ok_or_else(|| ApiError::internal(format!("recording {id} has a bad path")))?;
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::error!(recording = %id, error = %e, "recording file missing");
        ApiError::internal("the recording file is missing")
    })?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let range = byte_range(&headers, len).map_err(|()| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("give one range within the file's {len} bytes, e.g. Range: bytes=0-1023"),
        )
    });
    let range = match range {
        Ok(r) => r,
        Err(e) => {
            let mut res = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(ApiError::internal)?;
    // Streamed in 64 KiB pieces: an hour of stereo audio is 115 MB.
    let stream =
        futures_util::stream::unfold((file.take(count), false), |(mut f, done)| async move {
            if done {
                return None;
            }
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(buf), (f, false)))
                }
                Err(e) => Some((Err(e), (f, true))),
            }
        });
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.wav\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if range.is_some() {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    metrics::counter!("switchboard_recording_downloads_total").increment(1);
    Ok(res)
}

/// Query of `POST /api/v1/interactions/{id}/recordings`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// When the recording started (RFC 3339; default: now). Not in the future.
    pub started_at: Option<String>,
}

/// Imports a recording of the call made elsewhere (admin): the body is a WAV file (16-bit PCM,
/// µ-law or A-law; stereo, caller left and agent right; 8000 Hz), stored as 16-bit PCM and
/// finished like a live recording (checksum, retention of the interaction's queue,
/// `recording.started` and `recording.completed`).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/recordings", tag = "recordings", params(("id" = String, Path), ImportQuery),
    request_body(content = Vec<u8>, content_type = "audio/wav", description = "A stereo 8 kHz WAV file"),
    responses((status = 201, body = RecordingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, ApiJson<RecordingView>)> {
    let tenant = caller.user.tenant;
    if let Err(e) = check_import(&s, &caller, id, &headers).await {
        // Read (a bounded part of) what the client is still sending before answering: an
        // answer while it writes makes many clients report a broken connection, not the error.
        let _ = axum::body::to_bytes(body, 1024 * 1024).await;
        return Err(e);
    }
    let max = s.config.recording_max_import_bytes;
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "recordings can be at most {} MB ([recordings] max_import_bytes)",
                max.div_ceil(1024 * 1024)
            ),
        )
    })?;
    let now = s.clock.wall_ms();
    let started_at = match q.started_at {
        None => now,
        Some(t) => {
            let ts: jiff::Timestamp = t.parse().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("started_at: {t:?} is not an RFC 3339 time"),
                )
            })?;
            let ms = ts.as_millisecond();
            if ms > now {
                return Err(ApiError::unprocessable(
                    "invalid_value",
                    "started_at: must not be in the future",
                ));
            }
            ms
        }
    };
    let wav = switchboard_media::wav::parse(&bytes)
        .map_err(|e| ApiError::unprocessable("invalid_value", format!("body: {e}")))?;
    if wav.channels != crate::recordings::CHANNELS || wav.rate != crate::recordings::SAMPLE_RATE {
        return Err(ApiError::unprocessable(
            "invalid_value",
            format!(
                "body: recordings are stereo (caller left, agent right) at 8000 Hz; this file has {} channel(s) at {} Hz",
                wav.channels, wav.rate
            ),
        ));
    }
    let frames = (wav.samples.len() / 2) as u64;
    let data_bytes = u32::try_from(frames * 4).map_err(|_| {
        ApiError::unprocessable("invalid_value", "body: longer than a WAV file can say")
    })?;
    let mut out = Vec::with_capacity(switchboard_media::wav::HEADER_LEN + frames as usize * 4);
    out.extend_from_slice(&switchboard_media::wav::header(
        crate::recordings::CHANNELS,
        crate::recordings::SAMPLE_RATE,
        data_bytes,
    ));
    for sample in &wav.samples[..frames as usize * 2] {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    let by = format!("admin:{}", caller.user.id);
    let started = s
        .recordings
        .begin_at(tenant, id, started_at, Some(by))
        .await?;
    tokio::fs::write(&started.path, &out)
        .await
        .map_err(ApiError::internal)?;
    let duration_ms = crate::recordings::frames_to_ms(frames);
    let ended_at = started_at.saturating_add(i64::try_from(duration_ms).unwrap_or(0));
    let rec = s
        .recordings
        .finish_at(
            tenant,
            started.id,
            duration_ms,
            &[],
            out.len() as u64,
            ended_at,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(RecordingView::from(&rec))))
}

/// The checks of an import that need no body: 404, 403, 409 `not_a_call`, 415.
async fn check_import(
    s: &AppState,
    caller: &Caller,
    id: InteractionId,
    headers: &HeaderMap,
) -> ApiResult<()> {
    let it = interaction(s, caller, id).await?;
    caller.require(Role::Admin)?;
    if it.channel != Channel::Voice {
        return Err(ApiError::conflict(
            "not_a_call",
            format!(
                "only calls have recordings; this is a {}",
                it.channel.as_str()
            ),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave"
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the WAV file as the body with Content-Type: audio/wav",
        ));
    }
    Ok(())
}

/// What a live control did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveResult {
    /// `paused`, `resumed` or `started`.
    pub done: String,
    /// The recording.
    pub recording_id: String,
    /// Offset in the recording, ms from its start.
    pub at_ms: u64,
}

async fn control(
    s: &AppState,
    caller: &Caller,
    id: InteractionId,
    action: LiveAction,
) -> ApiResult<ApiJson<LiveResult>> {
    let it = interaction(s, caller, id).await?;
    if !caller.is_supervisor() && (caller.agent.is_none() || it.agent != caller.agent) {
        return Err(ApiError::forbidden(
            "only the interaction's agent, supervisors and admins control its recording",
        ));
    }
    let no_media = || {
        ApiError::conflict(
            "no_live_media",
            "no live call media for this interaction on this server",
        )
    };
    if it.channel != Channel::Voice || it.state == InteractionState::Ended {
        return Err(no_media());
    }
    let outcome = s
        .recordings
        .control(
            caller.user.tenant,
            id,
            action,
            format!("user:{}", caller.user.id),
        )
        .await?;
    match outcome {
        LiveOutcome::Done { recording, at_ms } => Ok(ApiJson(LiveResult {
            done: match action {
                LiveAction::Pause => "paused",
                LiveAction::Resume => "resumed",
                LiveAction::Start => "started",
            }
            .to_owned(),
            recording_id: recording.to_string(),
            at_ms,
        })),
        LiveOutcome::NoLiveCall => Err(no_media()),
        LiveOutcome::NotRecording => Err(ApiError::conflict(
            "not_recording",
            "the call is not being recorded; start a recording first (POST .../recording/start)",
        )),
        LiveOutcome::Unchanged => Err(ApiError::conflict(
            "wrong_state",
            match action {
                LiveAction::Pause => "the recording is paused already",
                LiveAction::Resume => "the recording is not paused",
                LiveAction::Start => "the call is being recorded already",
            },
        )),
    }
}

/// Pauses the recording of a live call (card details): the span is written as silence and
/// marked by `recording.paused` and `recording.resumed`.
#[utoipa::path(post, path = "/api/v1/interactions/{id}/recording/pause", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = LiveResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pause(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<LiveResult>> {
    control(&s, &caller, id, LiveAction::Pause).await
}

/// Resumes a paused recording of a live call.
#[utoipa::path(post, path = "/api/v1/interactions/{id}/recording/resume", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = LiveResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resume(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<LiveResult>> {
    control(&s, &caller, id, LiveAction::Resume).await
}

/// Starts recording a live call now (a queue with the `on_demand` policy, or any call not
/// being recorded).
#[utoipa::path(post, path = "/api/v1/interactions/{id}/recording/start", tag = "recordings", params(("id" = String, Path)),
    responses((status = 200, body = LiveResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InteractionId>,
) -> ApiResult<ApiJson<LiveResult>> {
    control(&s, &caller, id, LiveAction::Start).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).expect("header"));
        byte_range(&h, len)
    }

    #[test]
    fn ranges_are_read_or_refused() {
        assert_eq!(byte_range(&HeaderMap::new(), 100), Ok(None));
        assert_eq!(range("bytes=0-43", 100), Ok(Some((0, 43))));
        assert_eq!(range("bytes=44-", 100), Ok(Some((44, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-500", 100), Ok(Some((0, 99))));
        assert_eq!(range("bytes=90-500", 100), Ok(Some((90, 99))));
        for bad in [
            "bytes=100-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=-",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=18446744073709551616-",
        ] {
            assert_eq!(range(bad, 100), Err(()), "{bad}");
        }
        assert_eq!(range("bytes=0-", 0), Err(()));
    }
}
