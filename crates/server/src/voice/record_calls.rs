//! Records live calls by their queue's policy, and answers the recording controls of the API.
//!
//! One task follows the event stream. When a call is answered by an agent
//! (`interaction.accepted` of a voice interaction) it attaches the call to
//! [`crate::recordings::LiveCalls`] (so pause, resume and start reach it) and, when the queue's
//! policy says so ([`crate::recordings::Recordings::should_record`]), begins a recording
//! ([`crate::recordings::Recordings::begin`]) and tells the call's media task to write it
//! ([`super::CallRecorder::record`]). When the media task reports the file complete
//! ([`super::media::RecordingDone`]), the recording is finished: checksum, paused spans,
//! retention. A call's end detaches it.

use super::CallRecorder;
use super::media::{RecordingAction, RecordingDone};
use crate::recordings::{LiveAction, LiveOutcome, LiveRequest};
use crate::state::AppState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use switchboard_model::{Channel, InteractionId, PausedSpan, RecordingId, TenantId};
use tokio::sync::broadcast::error::RecvError;

/// A recording being written.
#[derive(Debug, Clone)]
struct Active {
    tenant: TenantId,
    interaction: InteractionId,
    id: RecordingId,
    path: PathBuf,
    /// Wall time of its start (ms): offsets of pauses are measured from it.
    started_ms: i64,
    paused: bool,
}

/// The recordings being written, by interaction.
type Table = Arc<Mutex<HashMap<InteractionId, Active>>>;

/// Starts the task (once the SIP engine runs and `call_recorder` is set).
pub fn start(s: AppState, recorder: CallRecorder) {
    let table: Table = Arc::default();
    let mut done = recorder.subscribe();
    let mut events = s.bus.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = done.recv() => match r {
                    Ok(d) => finished(&s, &table, d).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "recordings reported while busy were missed; they are finished at the next start");
                    }
                    Err(RecvError::Closed) => return,
                },
                r = events.recv() => match r {
                    Ok(e) => on_event(&s, &recorder, &table, e.tenant, &e.kind, &e.data).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "call events missed by the recorder");
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
}

fn interaction_of(data: &serde_json::Value) -> Option<InteractionId> {
    data["interaction_id"].as_str()?.parse().ok()
}

async fn on_event(
    s: &AppState,
    recorder: &CallRecorder,
    table: &Table,
    tenant: TenantId,
    kind: &str,
    data: &serde_json::Value,
) {
    let Some(interaction) = interaction_of(data) else {
        return;
    };
    match kind {
        "interaction.accepted" => answered(s, recorder, table, tenant, interaction).await,
        "interaction.completed"
        | "interaction.ended"
        | "interaction.cancelled"
        | "interaction.withdrawn" => {
            s.recordings.live_calls().detach(tenant, interaction);
        }
        _ => {}
    }
}

/// An agent answered: the call is live with its media bridged.
async fn answered(
    s: &AppState,
    recorder: &CallRecorder,
    table: &Table,
    tenant: TenantId,
    interaction: InteractionId,
) {
    let queue = match s.store.interaction(tenant, interaction).await {
        Ok(Some(it)) if it.channel == Channel::Voice => it.queue,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(%interaction, error = %e, "cannot read an answered call");
            return;
        }
    };
    // Controls from the API (a second attach, after a transfer, replaces the first).
    let requests = s.recordings.live_calls().attach(tenant, interaction);
    tokio::spawn(serve_controls(
        s.clone(),
        recorder.clone(),
        table.clone(),
        tenant,
        interaction,
        requests,
    ));
    let recording = table
        .lock()
        .map(|t| t.contains_key(&interaction))
        .unwrap_or(true);
    if recording {
        return; // a transferred call goes on in the same recording
    }
    let policy = match s.recordings.queue_policy(tenant, queue).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(%interaction, error = %e, "cannot read the call's recording policy");
            return;
        }
    };
    if crate::recordings::Recordings::should_record(&policy, interaction) {
        let _ = begin(s, recorder, table, tenant, interaction, None).await;
    }
}

/// Begins a recording of the call; its id.
async fn begin(
    s: &AppState,
    recorder: &CallRecorder,
    table: &Table,
    tenant: TenantId,
    interaction: InteractionId,
    by: Option<String>,
) -> Option<RecordingId> {
    let started = match s.recordings.begin_by(tenant, interaction, by).await {
        Ok(st) => st,
        Err(e) => {
            tracing::error!(%interaction, error = %e, "cannot begin a call's recording");
            return None;
        }
    };
    if let Ok(mut t) = table.lock() {
        t.insert(
            interaction,
            Active {
                tenant,
                interaction,
                id: started.id,
                path: started.path.clone(),
                started_ms: s.clock.wall_ms(),
                paused: false,
            },
        );
    }
    if !recorder
        .record(interaction, RecordingAction::Start(started.path))
        .await
    {
        tracing::error!(%interaction, "the SIP engine has stopped: the recording is not written");
    }
    Some(started.id)
}

/// Answers the API's controls of one live call until it is detached.
async fn serve_controls(
    s: AppState,
    recorder: CallRecorder,
    table: Table,
    tenant: TenantId,
    interaction: InteractionId,
    mut requests: tokio::sync::mpsc::Receiver<LiveRequest>,
) {
    while let Some(req) = requests.recv().await {
        let outcome = control(
            &s,
            &recorder,
            &table,
            tenant,
            interaction,
            req.action,
            req.by,
        )
        .await;
        let _ = req.reply.send(outcome);
    }
}

async fn control(
    s: &AppState,
    recorder: &CallRecorder,
    table: &Table,
    tenant: TenantId,
    interaction: InteractionId,
    action: LiveAction,
    by: Option<String>,
) -> LiveOutcome {
    let active = table.lock().ok().and_then(|t| t.get(&interaction).cloned());
    let now = s.clock.wall_ms();
    match (action, active) {
        (LiveAction::Start, Some(_)) => LiveOutcome::Unchanged,
        (LiveAction::Start, None) => {
            match begin(s, recorder, table, tenant, interaction, by).await {
                Some(recording) => LiveOutcome::Done {
                    recording,
                    at_ms: 0,
                },
                None => LiveOutcome::NoLiveCall,
            }
        }
        (LiveAction::Pause | LiveAction::Resume, None) => LiveOutcome::NotRecording,
        (LiveAction::Pause, Some(a)) if a.paused => LiveOutcome::Unchanged,
        (LiveAction::Resume, Some(a)) if !a.paused => LiveOutcome::Unchanged,
        (action, Some(a)) => {
            let pause = action == LiveAction::Pause;
            let what = if pause {
                RecordingAction::Pause
            } else {
                RecordingAction::Resume
            };
            if !recorder.record(interaction, what).await {
                return LiveOutcome::NoLiveCall;
            }
            if let Ok(mut t) = table.lock()
                && let Some(x) = t.get_mut(&interaction)
            {
                x.paused = pause;
            }
            LiveOutcome::Done {
                recording: a.id,
                at_ms: u64::try_from(now - a.started_ms).unwrap_or(0),
            }
        }
    }
}

/// The media task wrote a recording's last byte: finish it.
async fn finished(s: &AppState, table: &Table, d: RecordingDone) {
    let active = table.lock().ok().and_then(|mut t| {
        let key = t
            .values()
            .find(|a| a.path == d.path)
            .map(|a| a.interaction)
            .or(d.interaction)?;
        t.remove(&key)
    });
    let Some(a) = active else {
        if d.interaction.is_some() {
            tracing::warn!(path = %d.path.display(), "a finished recording nobody began here");
        } else {
            // A voicemail's: the call's flow (`ivr.rs`) began it and finishes it.
            tracing::debug!(path = %d.path.display(), "a recording of a call's flow");
        }
        return;
    };
    s.recordings.live_calls().detach(a.tenant, a.interaction);
    let size = tokio::fs::metadata(&d.path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let paused: Vec<PausedSpan> = d
        .paused
        .iter()
        .map(|(from, to)| PausedSpan {
            from_ms: from.as_millis() as u64,
            to_ms: to.as_millis() as u64,
        })
        .collect();
    let duration_ms = d.duration.as_millis() as u64;
    if let Err(e) = s
        .recordings
        .finish(a.tenant, a.id, duration_ms, &paused, size)
        .await
    {
        tracing::error!(recording = %a.id, error = %e, "cannot finish a call's recording");
    }
}
