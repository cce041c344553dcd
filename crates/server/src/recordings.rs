//! Call recordings (docs/voice.md, "Recordings"): where the files go, their metadata and
//! events, the live controls the API offers (pause, resume, start), and the retention sweep.
//!
//! The audio itself is written by the call's media task (`voice/media.rs`, through
//! `switchboard_media::relay::Bridge`'s recorder). The call side plugs in here:
//!
//! 1. when a call is bridged, [`RecordingPolicy::records`] (the queue's policy, decided by
//!    `switchboard_routing::should_record`) says whether to record it;
//! 2. if so, [`Recordings::begin`] stores the recording as `recording` and returns its id and
//!    the absolute path to write (`<data>/recordings/<tenant>/<yyyy>/<mm>/<id>.wav`);
//! 3. when the media task has written the final header, [`Recordings::finish`] checks the file,
//!    computes its SHA-256, sets it `complete` with its retention deadline, and appends
//!    `recording.completed`;
//! 4. the API's pause, resume and start reach the live call through [`LiveControl`]: by
//!    default [`LiveCalls`] (`Recordings::live_calls()`), which a call task attaches to when
//!    its media is bridged and whose [`LiveRequest`]s it answers from its recorder; another
//!    implementation may replace it once with [`Recordings::set_live`]. A call that is not
//!    attached (none is until the B2BUA anchors media, or it is on another node) is answered
//!    `409 no_live_media`. A pause or resume the call side
//!    does on its own (a keypad code) is recorded with [`Recordings::paused`] and
//!    [`Recordings::resumed`].
//!
//! Deleting (an admin, or retention) removes the file first and then marks the row `deleted`
//! with a `recording.deleted` event naming who: a failure in between leaves a row whose file is
//! gone, which the next attempt finishes, never a file nobody knows about.
//!
//! Not here: HTTP shapes and roles (`api/recordings.rs`), the audio (the media crate).
// The hook's call-side half (begin, finish, set_live, ...) is used once the B2BUA anchors media
// (voice part 2); the API and the sweep use the rest now.
#![allow(dead_code)]

use crate::bus::{Bus, BusEvent};
use crate::clock::Clock;
use crate::shapes::RecordingPolicy;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use switchboard_model::{
    AgentId, InteractionId, PausedSpan, RecordingId, RecordingState, TenantId,
};
use switchboard_store::recordings::{FinishedRecording, Recording, retention_deadline};
use switchboard_store::{NewEvent, Store, StoreError};

/// The format of every recording: 16-bit PCM WAV, stereo (caller left, agent right), 8 kHz.
pub const FORMAT: &str = "wav";
/// Channels of a recording.
pub const CHANNELS: u16 = 2;
/// Sample rate of a recording.
pub const SAMPLE_RATE: u32 = switchboard_media::RATE;

/// What went wrong with a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// No such interaction in the tenant.
    #[error("no such interaction")]
    NoSuchInteraction,
    /// No such recording in the tenant.
    #[error("no such recording")]
    NoSuchRecording,
    /// The recording is not in the state this needs (finishing one that is complete).
    #[error("the recording is {0}")]
    WrongState(&'static str),
    /// The file is not where the row says (or its stored path is not a recordings path).
    #[error("the recording file {0} is missing")]
    MissingFile(String),
    /// File system trouble.
    #[error("recording file: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`Recordings::begin`] hands the call side.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The recording.
    pub id: RecordingId,
    /// Where the media task writes the WAV (its directory exists).
    pub path: PathBuf,
}

/// What the call side answers to a live control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveOutcome {
    /// Done. `recording` is the recording acted on (for `start`, the one begun through
    /// [`Recordings::begin`]); `at_ms` is the offset in it, ms from its start.
    Done {
        /// The recording.
        recording: RecordingId,
        /// Offset in the recording (ms from its start).
        at_ms: u64,
    },
    /// This node holds no live call media for the interaction.
    NoLiveCall,
    /// The call is live but not being recorded (pause, resume).
    NotRecording,
    /// Nothing to do: already paused (pause), not paused (resume), already recording (start).
    Unchanged,
}

/// A boxed future of a [`LiveControl`] answer.
pub type LiveFuture<'a> = Pin<Box<dyn Future<Output = LiveOutcome> + Send + 'a>>;

/// What the live call side implements so that the API can reach a call's recorder. The
/// implementation must not append events: [`Recordings::control`] does, from the answer. For
/// `start` it calls [`Recordings::begin_by`] itself with `by` (it needs the path) and answers
/// with that id.
pub trait LiveControl: Send + Sync + 'static {
    /// Pause the recording of the interaction's call (the span becomes silence).
    fn pause(&self, tenant: TenantId, interaction: InteractionId) -> LiveFuture<'_>;
    /// Resume it.
    fn resume(&self, tenant: TenantId, interaction: InteractionId) -> LiveFuture<'_>;
    /// Start recording the call now (an `on_demand` queue, or any call not yet recorded), for
    /// `by` (`user:<id>`).
    fn start(&self, tenant: TenantId, interaction: InteractionId, by: String) -> LiveFuture<'_>;
}

/// A live control for a call task, with the channel for its answer.
#[derive(Debug)]
pub struct LiveRequest {
    /// What to do.
    pub action: LiveAction,
    /// Who asked (`user:<id>`): for `start`, pass it to [`Recordings::begin_by`].
    pub by: Option<String>,
    /// The answer (a task that drops it answers [`LiveOutcome::NoLiveCall`]).
    pub reply: tokio::sync::oneshot::Sender<LiveOutcome>,
}

/// How long [`LiveCalls`] waits for a call task's answer.
const LIVE_ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Expired recordings the retention sweep reads at a time.
const SWEEP_PAGE: i64 = 100;

/// Live calls by interaction: a channel-based [`LiveControl`]. The call task of an interaction
/// [`LiveCalls::attach`]es when its media is bridged (a second attach replaces the first: a
/// transfer's new leg), receives [`LiveRequest`]s, acts on its recorder and answers; it
/// [`LiveCalls::detach`]es when its media ends (dropping the receiver works too).
#[derive(Debug, Default)]
pub struct LiveCalls {
    calls: std::sync::Mutex<
        std::collections::HashMap<
            (TenantId, InteractionId),
            tokio::sync::mpsc::Sender<LiveRequest>,
        >,
    >,
}

impl LiveCalls {
    /// Attaches the interaction's live call; its task reads the requests from the receiver.
    pub fn attach(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> tokio::sync::mpsc::Receiver<LiveRequest> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        if let Ok(mut m) = self.calls.lock() {
            m.retain(|_, tx| !tx.is_closed());
            m.insert((tenant, interaction), tx);
        }
        rx
    }

    /// Detaches it (its call media ended).
    pub fn detach(&self, tenant: TenantId, interaction: InteractionId) {
        if let Ok(mut m) = self.calls.lock() {
            m.remove(&(tenant, interaction));
        }
    }

    async fn ask(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        action: LiveAction,
        by: Option<String>,
    ) -> LiveOutcome {
        let tx = self
            .calls
            .lock()
            .ok()
            .and_then(|m| m.get(&(tenant, interaction)).cloned());
        let Some(tx) = tx else {
            return LiveOutcome::NoLiveCall;
        };
        let (reply, rx) = tokio::sync::oneshot::channel();
        if tx.send(LiveRequest { action, by, reply }).await.is_err() {
            self.detach(tenant, interaction);
            return LiveOutcome::NoLiveCall;
        }
        match tokio::time::timeout(LIVE_ANSWER_WITHIN, rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => LiveOutcome::NoLiveCall,
        }
    }
}

impl LiveControl for LiveCalls {
    fn pause(&self, tenant: TenantId, interaction: InteractionId) -> LiveFuture<'_> {
        Box::pin(self.ask(tenant, interaction, LiveAction::Pause, None))
    }
    fn resume(&self, tenant: TenantId, interaction: InteractionId) -> LiveFuture<'_> {
        Box::pin(self.ask(tenant, interaction, LiveAction::Resume, None))
    }
    fn start(&self, tenant: TenantId, interaction: InteractionId, by: String) -> LiveFuture<'_> {
        Box::pin(self.ask(tenant, interaction, LiveAction::Start, Some(by)))
    }
}

/// A live control asked through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAction {
    /// `POST .../recording/pause`.
    Pause,
    /// `POST .../recording/resume`.
    Resume,
    /// `POST .../recording/start`.
    Start,
}

/// Converts the recorder's paused spans (8 kHz frames) to milliseconds.
pub fn spans_from_frames(spans: &[(u64, u64)]) -> Vec<PausedSpan> {
    spans
        .iter()
        .map(|&(from, to)| PausedSpan {
            from_ms: frames_to_ms(from),
            to_ms: frames_to_ms(to),
        })
        .collect()
}

/// Milliseconds of `frames` sample frames at the recording rate.
pub fn frames_to_ms(frames: u64) -> u64 {
    frames.saturating_mul(1000) / u64::from(SAMPLE_RATE)
}

/// The recordings of the process (cheap to clone).
#[derive(Clone)]
pub struct Recordings {
    store: Store,
    clock: Clock,
    bus: Bus,
    data_dir: PathBuf,
    live: Arc<OnceLock<Arc<dyn LiveControl>>>,
    calls: Arc<LiveCalls>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("data_dir", &self.data_dir)
            .field("live", &self.live.get().is_some())
            .finish()
    }
}

impl Recordings {
    /// The recordings under `data_dir`.
    pub fn new(store: Store, clock: Clock, bus: Bus, data_dir: PathBuf) -> Recordings {
        // Absolute, so that the paths handed to the media task do not depend on its working
        // directory.
        let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
        Recordings {
            store,
            clock,
            bus,
            data_dir,
            live: Arc::default(),
            calls: Arc::default(),
        }
    }

    /// The registry of live calls, the ready-made [`LiveControl`] used while no other is
    /// registered with [`Recordings::set_live`]: a call task attaches when its media is
    /// bridged and answers the [`LiveRequest`]s it receives.
    pub fn live_calls(&self) -> &LiveCalls {
        &self.calls
    }

    /// Whether a call of a queue with `policy` is recorded from its start.
    pub fn should_record(policy: &RecordingPolicy, interaction: InteractionId) -> bool {
        policy.records(interaction)
    }

    /// Registers the live call side (once; false if one is registered already).
    pub fn set_live(&self, control: Arc<dyn LiveControl>) -> bool {
        self.live.set(control).is_ok()
    }

    /// The recording policy of the interaction's queue (the default, `none`, for a call in no
    /// queue or a queue that is gone).
    pub async fn policy_for(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<RecordingPolicy, RecordingError> {
        let it = self
            .store
            .interaction(tenant, interaction)
            .await?
            .ok_or(RecordingError::NoSuchInteraction)?;
        self.queue_policy(tenant, it.queue).await
    }

    /// The recording policy of `queue` (the default, `none`, for no queue or one that is gone).
    pub async fn queue_policy(
        &self,
        tenant: TenantId,
        queue: Option<switchboard_model::QueueId>,
    ) -> Result<RecordingPolicy, RecordingError> {
        let Some(q) = queue else {
            return Ok(RecordingPolicy::default());
        };
        let Some(rec) = self.store.queue(tenant, q).await? else {
            return Ok(RecordingPolicy::default());
        };
        Ok(
            serde_json::from_value::<crate::shapes::QueueConfig>(rec.config)
                .map(|c| c.recording)
                .unwrap_or_default(),
        )
    }

    /// The absolute path of a stored relative path, if it is a recordings path (no `..`, no
    /// root: a corrupt row cannot point the server at another file).
    pub fn absolute(&self, relative: &str) -> Option<PathBuf> {
        let p = Path::new(relative);
        let mut parts = p.components();
        if parts.next() != Some(Component::Normal("recordings".as_ref())) {
            return None;
        }
        if !parts.all(|c| matches!(c, Component::Normal(_))) {
            return None;
        }
        Some(self.data_dir.join(p))
    }

    /// Starts a recording of the interaction's call now: stores it (`recording`), appends
    /// `recording.started`, makes the directory, and returns the id and the path to write.
    pub async fn begin(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Started, RecordingError> {
        self.begin_by(tenant, interaction, None).await
    }

    /// [`Recordings::begin`] asked by `by` (`user:<id>`, from a [`LiveRequest`]), named in
    /// `recording.started`.
    pub async fn begin_by(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        by: Option<String>,
    ) -> Result<Started, RecordingError> {
        let now = self.clock.wall_ms();
        self.begin_at(tenant, interaction, now, by).await
    }

    /// [`Recordings::begin`] at a given wall time (an imported recording keeps its own).
    pub(crate) async fn begin_at(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        started_at: i64,
        by: Option<String>,
    ) -> Result<Started, RecordingError> {
        let it = self
            .store
            .interaction(tenant, interaction)
            .await?
            .ok_or(RecordingError::NoSuchInteraction)?;
        let id = RecordingId::from_uuid(self.clock.new_uuid());
        let (yyyy, mm) = year_month(started_at);
        let relative = format!("recordings/{tenant}/{yyyy:04}/{mm:02}/{id}.wav");
        let path = self
            .absolute(&relative)
            .ok_or(RecordingError::MissingFile(relative.clone()))?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let row = Recording {
            id,
            tenant,
            interaction,
            queue: it.queue,
            path: relative,
            format: FORMAT.into(),
            channels: i64::from(CHANNELS),
            sample_rate: i64::from(SAMPLE_RATE),
            state: RecordingState::Recording,
            started_at,
            ended_at: None,
            duration_ms: None,
            size_bytes: None,
            paused_spans: Vec::new(),
            sha256: None,
            retain_until: None,
            deleted_at: None,
            deleted_by: None,
        };
        let mut data = serde_json::json!({"interaction_id": interaction, "recording_id": id});
        if let Some(by) = by {
            data["by"] = by.into();
        }
        let event = self.event(tenant, interaction, it.agent, "recording.started", data);
        if let Some(e) = self.store.begin_recording(&row, event).await? {
            self.bus.publish(BusEvent::from(e));
        }
        tracing::info!(%tenant, %interaction, recording = %id, "recording started");
        Ok(Started { id, path })
    }

    fn event(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        agent: Option<AgentId>,
        kind: &str,
        data: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            tenant,
            interaction: Some(interaction),
            agent,
            kind: kind.into(),
            at: self.clock.wall_ms(),
            data,
        }
    }

    /// Finishes a recording once its file is complete (header written): checks the file,
    /// computes its SHA-256, sets it `complete` with the retention deadline of its queue, and
    /// appends `recording.completed`. `size_bytes` is what the writer wrote; the file's own
    /// size is stored (a difference is logged).
    pub async fn finish(
        &self,
        tenant: TenantId,
        id: RecordingId,
        duration_ms: u64,
        paused: &[PausedSpan],
        size_bytes: u64,
    ) -> Result<Recording, RecordingError> {
        let now = self.clock.wall_ms();
        self.finish_at(tenant, id, duration_ms, paused, size_bytes, now)
            .await
    }

    pub(crate) async fn finish_at(
        &self,
        tenant: TenantId,
        id: RecordingId,
        duration_ms: u64,
        paused: &[PausedSpan],
        size_bytes: u64,
        ended_at: i64,
    ) -> Result<Recording, RecordingError> {
        let rec = self
            .store
            .recording(tenant, id)
            .await?
            .ok_or(RecordingError::NoSuchRecording)?;
        if rec.state != RecordingState::Recording {
            return Err(RecordingError::WrongState(rec.state.as_str()));
        }
        let path = self
            .absolute(&rec.path)
            .ok_or_else(|| RecordingError::MissingFile(rec.path.clone()))?;
        let (sha256, actual) = match hash_file(path.clone()).await {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RecordingError::MissingFile(rec.path));
            }
            Err(e) => return Err(e.into()),
        };
        if actual != size_bytes {
            tracing::warn!(recording = %id, reported = size_bytes, actual, "recording size differs from what the writer reported; storing the file's");
        }
        let duration = i64::try_from(duration_ms).unwrap_or(i64::MAX);
        let mut spans: Vec<PausedSpan> = paused
            .iter()
            .filter(|s| s.from_ms <= s.to_ms)
            .copied()
            .collect();
        spans.sort_by_key(|s| s.from_ms);
        let policy = self.queue_policy(tenant, rec.queue).await?;
        let f = FinishedRecording {
            ended_at,
            duration_ms: duration,
            size_bytes: i64::try_from(actual).unwrap_or(i64::MAX),
            paused_spans: spans.clone(),
            sha256: sha256.clone(),
            retain_until: retention_deadline(ended_at, policy.retention_days),
        };
        let agent = self
            .store
            .interaction(tenant, rec.interaction)
            .await?
            .and_then(|i| i.agent);
        let event = self.event(
            tenant,
            rec.interaction,
            agent,
            "recording.completed",
            serde_json::json!({
                "interaction_id": rec.interaction,
                "recording_id": id,
                "duration_ms": duration,
                "size_bytes": f.size_bytes,
                "paused_spans": spans,
                "sha256": sha256,
            }),
        );
        match self.store.finish_recording(tenant, id, &f, event).await? {
            Some(e) => self.bus.publish(BusEvent::from(e)),
            None => return Err(RecordingError::WrongState("no longer recording")),
        }
        metrics::counter!("switchboard_recordings_completed_total").increment(1);
        tracing::info!(%tenant, recording = %id, duration_ms, "recording complete");
        self.store
            .recording(tenant, id)
            .await?
            .ok_or(RecordingError::NoSuchRecording)
    }

    /// Records that the call side paused the recording at `at_ms` (ms from its start), by
    /// `by` (`user:<id>`, or `None` for the call itself).
    pub async fn paused(
        &self,
        tenant: TenantId,
        id: RecordingId,
        at_ms: u64,
        by: Option<String>,
    ) -> Result<(), RecordingError> {
        self.span_event(tenant, id, "recording.paused", at_ms, by)
            .await
    }

    /// Records that the call side resumed the recording at `at_ms`.
    pub async fn resumed(
        &self,
        tenant: TenantId,
        id: RecordingId,
        at_ms: u64,
        by: Option<String>,
    ) -> Result<(), RecordingError> {
        self.span_event(tenant, id, "recording.resumed", at_ms, by)
            .await
    }

    async fn span_event(
        &self,
        tenant: TenantId,
        id: RecordingId,
        kind: &str,
        at_ms: u64,
        by: Option<String>,
    ) -> Result<(), RecordingError> {
        let rec = self
            .store
            .recording(tenant, id)
            .await?
            .ok_or(RecordingError::NoSuchRecording)?;
        let agent = self
            .store
            .interaction(tenant, rec.interaction)
            .await?
            .and_then(|i| i.agent);
        let mut data = serde_json::json!({
            "interaction_id": rec.interaction,
            "recording_id": id,
            "at_ms": at_ms,
        });
        if let Some(by) = by {
            data["by"] = by.into();
        }
        let e = self.event(tenant, rec.interaction, agent, kind, data);
        for e in self
            .store
            .commit(&[switchboard_store::Change::Event(e)])
            .await?
        {
            self.bus.publish(BusEvent::from(e));
        }
        Ok(())
    }

    /// Asks the live call side to pause, resume or start the interaction's recording, and
    /// records what it did. [`LiveOutcome::NoLiveCall`] while no call side is registered.
    pub async fn control(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        action: LiveAction,
        by: String,
    ) -> Result<LiveOutcome, RecordingError> {
        let live: &dyn LiveControl = match self.live.get() {
            Some(l) => l.as_ref(),
            None => self.calls.as_ref(),
        };
        let outcome = match action {
            LiveAction::Pause => live.pause(tenant, interaction).await,
            LiveAction::Resume => live.resume(tenant, interaction).await,
            LiveAction::Start => live.start(tenant, interaction, by.clone()).await,
        };
        if let LiveOutcome::Done { recording, at_ms } = outcome {
            match action {
                LiveAction::Pause => self.paused(tenant, recording, at_ms, Some(by)).await?,
                LiveAction::Resume => self.resumed(tenant, recording, at_ms, Some(by)).await?,
                // `begin` appended `recording.started`
                LiveAction::Start => {}
            }
        }
        Ok(outcome)
    }

    /// Deletes a recording: removes its file, then marks it `deleted` by `by` with a
    /// `recording.deleted` event. False when it was deleted already.
    pub async fn delete(
        &self,
        tenant: TenantId,
        id: RecordingId,
        by: &str,
    ) -> Result<bool, RecordingError> {
        let rec = self
            .store
            .recording(tenant, id)
            .await?
            .ok_or(RecordingError::NoSuchRecording)?;
        if rec.state == RecordingState::Deleted {
            return Ok(false);
        }
        if let Some(path) = self.absolute(&rec.path) {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                // gone already (an earlier attempt, or never written): the row still changes
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let agent = self
            .store
            .interaction(tenant, rec.interaction)
            .await?
            .and_then(|i| i.agent);
        let now = self.clock.wall_ms();
        let event = self.event(
            tenant,
            rec.interaction,
            agent,
            "recording.deleted",
            serde_json::json!({
                "interaction_id": rec.interaction,
                "recording_id": id,
                "by": by,
            }),
        );
        match self
            .store
            .delete_recording(tenant, id, now, by, event)
            .await?
        {
            Some(e) => {
                self.bus.publish(BusEvent::from(e));
                let why = if by.starts_with("admin:") {
                    "admin"
                } else {
                    by
                };
                metrics::counter!("switchboard_recordings_deleted_total", "by" => why.to_owned())
                    .increment(1);
                tracing::info!(%tenant, recording = %id, by, "recording deleted");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Deletes every recording whose retention ended (by the server clock). Returns how many.
    /// One that cannot be deleted now is passed over (and tried again at the next sweep); the
    /// sweep goes on with those behind it.
    pub async fn sweep(&self) -> usize {
        let now = self.clock.wall_ms();
        let mut deleted = 0;
        let mut after = None;
        loop {
            let due = match self.store.expired_recordings(now, after, SWEEP_PAGE).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot look for expired recordings");
                    return deleted;
                }
            };
            let Some(last) = due.last() else {
                return deleted;
            };
            after = Some((last.retain_until.unwrap_or(now), last.id));
            for r in due {
                match self.delete(r.tenant, r.id, "retention").await {
                    Ok(true) => deleted += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(recording = %r.id, error = %e, "recording not deleted; tried again at the next sweep");
                    }
                }
            }
        }
    }

    /// At start-up: recordings begun before `before_ms` (this process's start) and left `recording` by a stop or a crash. Their
    /// file gets the header its writer could not write, and they are finished from what the
    /// file holds; a missing file marks them deleted (`missing`).
    pub async fn recover(&self, before_ms: i64) -> usize {
        let rows = match self.store.unfinished_recordings(before_ms).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot look for unfinished recordings");
                return 0;
            }
        };
        let mut n = 0;
        for r in rows {
            let Some(path) = self.absolute(&r.path) else {
                continue;
            };
            match repair_header(path).await {
                Ok(Some(data_bytes)) => {
                    let frames = data_bytes / u64::from(CHANNELS * 2);
                    let size = data_bytes + switchboard_media::wav::HEADER_LEN as u64;
                    let spans = r.paused_spans.clone();
                    let ended = r
                        .started_at
                        .saturating_add(i64::try_from(frames_to_ms(frames)).unwrap_or(0));
                    match self
                        .finish_at(r.tenant, r.id, frames_to_ms(frames), &spans, size, ended)
                        .await
                    {
                        Ok(_) => n += 1,
                        Err(e) => {
                            tracing::warn!(recording = %r.id, error = %e, "cannot finish an interrupted recording")
                        }
                    }
                }
                Ok(None) => {
                    if let Err(e) = self.delete(r.tenant, r.id, "missing").await {
                        tracing::warn!(recording = %r.id, error = %e, "cannot mark a lost recording");
                    }
                }
                Err(e) => {
                    tracing::warn!(recording = %r.id, error = %e, "cannot repair an interrupted recording")
                }
            }
        }
        n
    }
}

/// Starts the retention sweep: once at start (after [`Recordings::recover`]), then every
/// `every`.
pub fn start_sweeper(r: Recordings, every: Duration) -> tokio::task::JoinHandle<()> {
    // Taken before any call can begin (the SIP listener starts after this), so that a
    // recording of this process is never taken for an interrupted one.
    let boot = r.clock.wall_ms();
    tokio::spawn(async move {
        let recovered = r.recover(boot).await;
        if recovered > 0 {
            tracing::info!(recovered, "finished recordings a stop had cut off");
        }
        loop {
            let n = r.sweep().await;
            if n > 0 {
                tracing::info!(deleted = n, "recordings past their retention deleted");
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// The UTC year and month of a wall time.
fn year_month(ms: i64) -> (i16, i8) {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            let d = jiff::tz::TimeZone::UTC.to_datetime(t).date();
            (d.year(), d.month())
        })
        .unwrap_or((1970, 1))
}

/// The hex SHA-256 and the length of a file (read on a blocking thread).
async fn hash_file(path: PathBuf) -> std::io::Result<(String, u64)> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut len = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            len += n as u64;
        }
        Ok((
            h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            len,
        ))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Writes the header a WAV file of this length should have (a writer cut off leaves the
/// placeholder one, which claims no data). Returns the data bytes, or `None` when the file is
/// gone.
async fn repair_header(path: PathBuf) -> std::io::Result<Option<u64>> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let header = switchboard_media::wav::HEADER_LEN as u64;
        let block = u64::from(CHANNELS * 2);
        // whole sample frames only: a cut-off frame at the end is not audio
        let data = len.saturating_sub(header) / block * block;
        let data32 = u32::try_from(data).unwrap_or(u32::MAX);
        if len < header {
            f.set_len(0)?;
        }
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&switchboard_media::wav::header(
            CHANNELS,
            SAMPLE_RATE,
            data32,
        ))?;
        f.set_len(header + data)?;
        f.sync_all()?;
        Ok(Some(data))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_convert_to_milliseconds() {
        assert_eq!(frames_to_ms(8000), 1000);
        assert_eq!(frames_to_ms(4), 0);
        assert_eq!(frames_to_ms(u64::MAX), u64::MAX / 8000);
        assert_eq!(
            spans_from_frames(&[(8000, 16_000), (40, 80)]),
            vec![
                PausedSpan {
                    from_ms: 1000,
                    to_ms: 2000
                },
                PausedSpan {
                    from_ms: 5,
                    to_ms: 10
                }
            ]
        );
    }

    #[test]
    fn paths_are_dated_in_utc() {
        // 2026-01-31T23:59:59.999Z is still January; a millisecond later it is February
        assert_eq!(year_month(1_769_903_999_999), (2026, 1));
        assert_eq!(year_month(1_769_904_000_000), (2026, 2));
        assert_eq!(year_month(i64::MAX), (1970, 1));
    }

    use switchboard_model::{Channel, InteractionState};
    use switchboard_store::{Change, Interaction, Tenant};

    /// A store with one tenant and one connected call, and the recordings under a fresh dir.
    async fn world(name: &str) -> (Recordings, TenantId, InteractionId, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "sb-rec-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Store::open_sqlite(&dir.join("db.sqlite"))
            .await
            .expect("store");
        let tenant = TenantId::from_u128(1);
        store
            .create_tenant(&Tenant {
                id: tenant,
                slug: "t".into(),
                name: "t".into(),
                created_at: 0,
            })
            .await
            .expect("tenant");
        let it = InteractionId::from_u128(2);
        store
            .commit(&[Change::Interaction(Interaction {
                id: it,
                tenant,
                channel: Channel::Voice,
                state: InteractionState::Connected,
                queue: None,
                priority: 0,
                subject: None,
                customer: None,
                attributes: serde_json::json!({}),
                agent: None,
                disposition: None,
                notes: None,
                created_at: 0,
                waiting_since: None,
                offered_at: None,
                answered_at: None,
                ended_at: None,
                updated_at: 0,
            })])
            .await
            .expect("interaction");
        let r = Recordings::new(store, Clock::new(), Bus::new(), dir.clone());
        (r, tenant, it, dir)
    }

    /// What a call side does: a media task's recorder, a pause, the file, the hook.
    struct FakeCall {
        r: Recordings,
        recording: tokio::sync::Mutex<Option<(RecordingId, switchboard_media::wav::Recorder)>>,
    }

    impl LiveControl for FakeCall {
        fn pause(&self, _: TenantId, _: InteractionId) -> LiveFuture<'_> {
            Box::pin(async move {
                let mut g = self.recording.lock().await;
                let Some((id, rec)) = g.as_mut() else {
                    return LiveOutcome::NotRecording;
                };
                if !rec.pause() {
                    return LiveOutcome::Unchanged;
                }
                LiveOutcome::Done {
                    recording: *id,
                    at_ms: frames_to_ms(rec.frames()),
                }
            })
        }
        fn resume(&self, _: TenantId, _: InteractionId) -> LiveFuture<'_> {
            Box::pin(async move {
                let mut g = self.recording.lock().await;
                let Some((id, rec)) = g.as_mut() else {
                    return LiveOutcome::NotRecording;
                };
                if !rec.resume() {
                    return LiveOutcome::Unchanged;
                }
                LiveOutcome::Done {
                    recording: *id,
                    at_ms: frames_to_ms(rec.frames()),
                }
            })
        }
        fn start(
            &self,
            tenant: TenantId,
            interaction: InteractionId,
            by: String,
        ) -> LiveFuture<'_> {
            Box::pin(async move {
                let mut g = self.recording.lock().await;
                if g.is_some() {
                    return LiveOutcome::Unchanged;
                }
                let Ok(started) = self.r.begin_by(tenant, interaction, Some(by)).await else {
                    return LiveOutcome::NoLiveCall;
                };
                std::fs::write(&started.path, switchboard_media::wav::header(2, 8000, 0))
                    .expect("header");
                *g = Some((started.id, switchboard_media::wav::Recorder::new()));
                LiveOutcome::Done {
                    recording: started.id,
                    at_ms: 0,
                }
            })
        }
    }

    #[tokio::test]
    async fn the_call_side_starts_pauses_resumes_and_finishes_through_the_hook() {
        let (r, tenant, it, dir) = world("hook").await;
        // no call side yet: the API's answer is "no live call", not a pretend success
        assert_eq!(
            r.control(tenant, it, LiveAction::Pause, "user:x".into())
                .await
                .expect("control"),
            LiveOutcome::NoLiveCall
        );
        let call = Arc::new(FakeCall {
            r: r.clone(),
            recording: Default::default(),
        });
        assert!(r.set_live(call.clone()));
        assert!(!r.set_live(call.clone()), "registered once");
        assert_eq!(
            r.control(tenant, it, LiveAction::Pause, "user:x".into())
                .await
                .expect("control"),
            LiveOutcome::NotRecording
        );
        let LiveOutcome::Done { recording: id, .. } = r
            .control(tenant, it, LiveAction::Start, "user:x".into())
            .await
            .expect("start")
        else {
            panic!("started");
        };
        // 1 s of sound, pause, 0.5 s (written as silence), resume, 0.5 s
        let mut bytes = Vec::new();
        let tone = vec![1000i16; 8000];
        {
            let mut g = call.recording.lock().await;
            g.as_mut()
                .expect("recording")
                .1
                .push(&tone, &tone, &mut bytes);
        }
        assert!(matches!(
            r.control(tenant, it, LiveAction::Pause, "user:sup".into())
                .await
                .expect("pause"),
            LiveOutcome::Done { at_ms: 1000, .. }
        ));
        assert_eq!(
            r.control(tenant, it, LiveAction::Pause, "user:sup".into())
                .await
                .expect("pause"),
            LiveOutcome::Unchanged
        );
        let (header, spans, frames) = {
            let mut g = call.recording.lock().await;
            let rec = &mut g.as_mut().expect("recording").1;
            rec.push(&tone[..4000], &tone[..4000], &mut bytes);
            drop(g);
            let done = r
                .control(tenant, it, LiveAction::Resume, "user:sup".into())
                .await
                .expect("resume");
            assert!(
                matches!(done, LiveOutcome::Done { at_ms: 1500, .. }),
                "{done:?}"
            );
            let mut g = call.recording.lock().await;
            let rec = &mut g.as_mut().expect("recording").1;
            rec.push(&tone[..4000], &tone[..4000], &mut bytes);
            (rec.header(), rec.paused_spans(), rec.frames())
        };
        let path = r
            .absolute(
                &r.store
                    .recording(tenant, id)
                    .await
                    .expect("row")
                    .expect("row")
                    .path,
            )
            .expect("path");
        let mut file = header.to_vec();
        file.extend_from_slice(&bytes);
        std::fs::write(&path, &file).expect("write");
        let done = r
            .finish(
                tenant,
                id,
                frames_to_ms(frames),
                &spans_from_frames(&spans),
                file.len() as u64,
            )
            .await
            .expect("finish");
        assert_eq!(done.state, RecordingState::Complete);
        assert_eq!(done.duration_ms, Some(2000));
        assert_eq!(done.size_bytes, Some(file.len() as i64));
        assert_eq!(
            done.paused_spans,
            vec![PausedSpan {
                from_ms: 1000,
                to_ms: 1500
            }]
        );
        assert_eq!(
            done.sha256.as_deref(),
            Some(
                Sha256::digest(&file)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .as_str()
            )
        );
        // no queue: the default policy's 90 days
        assert_eq!(
            done.retain_until,
            done.ended_at.map(|e| e + 90 * 86_400_000)
        );
        // finishing twice is refused, and adds no second event
        assert!(matches!(
            r.finish(tenant, id, 1, &[], 1).await,
            Err(RecordingError::WrongState("complete"))
        ));
        let kinds: Vec<(String, serde_json::Value)> = r
            .store
            .interaction_events(tenant, it)
            .await
            .expect("events")
            .into_iter()
            .map(|e| (e.kind, e.data))
            .collect();
        let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "recording.started",
                "recording.paused",
                "recording.resumed",
                "recording.completed"
            ]
        );
        assert_eq!(kinds[0].1["by"], "user:x", "who started it");
        assert_eq!(kinds[1].1["at_ms"], 1000);
        assert_eq!(kinds[1].1["by"], "user:sup");
        assert_eq!(kinds[2].1["at_ms"], 1500);
        assert_eq!(
            kinds[3].1["paused_spans"],
            serde_json::json!([{"from_ms": 1000, "to_ms": 1500}])
        );
        // the file the call wrote is silence in the paused span
        let w = switchboard_media::wav::parse(&file).expect("wav");
        assert!(w.samples[8000 * 2..12_000 * 2].iter().all(|&s| s == 0));
        assert!(w.samples[12_000 * 2..].iter().all(|&s| s == 1000));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_call_task_attached_to_the_registry_answers_the_api() {
        let (r, tenant, it, dir) = world("registry").await;
        assert_eq!(
            r.control(tenant, it, LiveAction::Pause, "user:x".into())
                .await
                .expect("control"),
            LiveOutcome::NoLiveCall,
            "nothing attached"
        );
        let started = r.begin(tenant, it).await.expect("begin");
        let mut rx = r.live_calls().attach(tenant, it);
        let id = started.id;
        let task = tokio::spawn(async move {
            // what a call task does with its recorder: pause at 2 s, refuse a second pause
            let mut paused = false;
            while let Some(req) = rx.recv().await {
                let outcome = match req.action {
                    LiveAction::Pause if !paused => {
                        paused = true;
                        LiveOutcome::Done {
                            recording: id,
                            at_ms: 2000,
                        }
                    }
                    _ => LiveOutcome::Unchanged,
                };
                let _ = req.reply.send(outcome);
            }
        });
        assert_eq!(
            r.control(tenant, it, LiveAction::Pause, "user:sup".into())
                .await
                .expect("pause"),
            LiveOutcome::Done {
                recording: id,
                at_ms: 2000
            }
        );
        assert_eq!(
            r.control(tenant, it, LiveAction::Pause, "user:sup".into())
                .await
                .expect("pause"),
            LiveOutcome::Unchanged
        );
        // another interaction, or another tenant, reaches nothing
        assert_eq!(
            r.control(
                TenantId::from_u128(9),
                it,
                LiveAction::Pause,
                "user:x".into()
            )
            .await
            .expect("control"),
            LiveOutcome::NoLiveCall
        );
        let events = r
            .store
            .interaction_events(tenant, it)
            .await
            .expect("events");
        let paused: Vec<_> = events
            .iter()
            .filter(|e| e.kind == "recording.paused")
            .collect();
        assert_eq!(paused.len(), 1, "one event for the one pause that happened");
        assert_eq!(paused[0].data["at_ms"], 2000);
        // the call's media ends: no live call again
        r.live_calls().detach(tenant, it);
        task.await.expect("task");
        assert_eq!(
            r.control(tenant, it, LiveAction::Resume, "user:x".into())
                .await
                .expect("control"),
            LiveOutcome::NoLiveCall
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_sweep_passes_over_recordings_it_cannot_delete_and_deletes_those_behind_them() {
        let (r, tenant, it, dir) = world("sweep-stuck").await;
        // More than a page of recordings, all past their 90 days (ended at the epoch).
        let total = SWEEP_PAGE as usize + 5;
        let mut made = Vec::new();
        for _ in 0..total {
            let started = r.begin(tenant, it).await.expect("begin");
            let header = switchboard_media::wav::header(2, 8000, 0);
            std::fs::write(&started.path, header).expect("write");
            r.finish_at(tenant, started.id, 0, &[], header.len() as u64, 0)
                .await
                .expect("finish");
            made.push(started);
        }
        // The first page and one more (in the sweep's order) cannot be deleted: their files
        // are directories now, which remove_file refuses.
        made.sort_by_key(|s| s.id.to_string());
        let stuck = SWEEP_PAGE as usize + 1;
        for s in &made[..stuck] {
            std::fs::remove_file(&s.path).expect("remove");
            std::fs::create_dir_all(s.path.join("x")).expect("dir");
        }
        assert_eq!(r.sweep().await, total - stuck);
        for (n, s) in made.iter().enumerate() {
            let row = r
                .store
                .recording(tenant, s.id)
                .await
                .expect("row")
                .expect("row");
            let want = if n < stuck {
                RecordingState::Complete
            } else {
                RecordingState::Deleted
            };
            assert_eq!(row.state, want, "recording {n}");
        }
        // Once they can go, the next sweep takes them.
        for s in &made[..stuck] {
            std::fs::remove_dir_all(&s.path).expect("rmdir");
        }
        assert_eq!(r.sweep().await, stuck);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_recording_cut_off_by_a_crash_is_finished_at_start_up() {
        let (r, tenant, it, dir) = world("recover").await;
        let started = r.begin(tenant, it).await.expect("begin");
        let lost = r.begin(tenant, it).await.expect("begin");
        // the media task wrote its placeholder header and 250 ms, then the process died
        let mut bytes = switchboard_media::wav::header(2, 8000, 0).to_vec();
        bytes.extend(std::iter::repeat_n(3u8, 4 * 2000));
        std::fs::write(&started.path, &bytes).expect("write");
        // a recording begun after the start-up instant is left alone
        assert_eq!(r.recover(0).await, 0);
        assert_eq!(r.recover(i64::MAX).await, 1);
        let row = r
            .store
            .recording(tenant, started.id)
            .await
            .expect("row")
            .expect("row");
        assert_eq!(row.state, RecordingState::Complete);
        assert_eq!(row.duration_ms, Some(250));
        let w = switchboard_media::wav::parse(&std::fs::read(&started.path).expect("file"))
            .expect("wav");
        assert_eq!(w.samples.len(), 4000);
        // the one whose file never appeared is marked deleted as missing
        let row = r
            .store
            .recording(tenant, lost.id)
            .await
            .expect("row")
            .expect("row");
        assert_eq!(row.state, RecordingState::Deleted);
        assert_eq!(row.deleted_by.as_deref(), Some("missing"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_cut_off_file_gets_its_header_and_whole_frames() {
        let dir = std::env::temp_dir().join(format!("sb-rec-repair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("cut.wav");
        let mut bytes = switchboard_media::wav::header(2, 8000, 0).to_vec();
        bytes.extend(std::iter::repeat_n(7u8, 4 * 800 + 3)); // 100 ms and a torn frame
        std::fs::write(&p, &bytes).expect("write");
        assert_eq!(repair_header(p.clone()).await.expect("repair"), Some(3200));
        let w = switchboard_media::wav::parse(&std::fs::read(&p).expect("read")).expect("wav");
        assert_eq!((w.channels, w.rate, w.samples.len()), (2, 8000, 1600));
        assert_eq!(
            repair_header(dir.join("none.wav")).await.expect("gone"),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
