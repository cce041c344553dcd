//! Live views: `GET /api/v1/stats/realtime` and the `GET /api/v1/events` WebSocket.

use super::views::ErrorBody;
use crate::auth::Caller;
use crate::bus::BusEvent;
use crate::engine::Command;
use crate::error::{ApiJson, ApiResult, ApiWebSocket};
use crate::state::AppState;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::response::Response;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

/// Service level of today (UTC day) against the queue's target.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceLevelNow {
    /// Target share in percent.
    pub target_percent: f64,
    /// Threshold in seconds.
    pub threshold_s: u64,
    /// Answered within the threshold / (answered + abandoned), 0..1; `null` before any.
    pub value: Option<f64>,
    /// Answered today.
    pub answered: i64,
    /// Abandoned or cancelled today.
    pub abandoned: i64,
}

/// One queue right now.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueNow {
    /// Queue id.
    pub queue_id: String,
    /// Name.
    pub name: String,
    /// Waiting (not yet offered).
    pub waiting: usize,
    /// Offered, not yet answered.
    pub offered: usize,
    /// Longest current wait in seconds.
    pub longest_wait_s: f64,
    /// Estimated wait for a new arrival in seconds; `null` while no qualified agent is present.
    pub estimated_wait_s: Option<f64>,
    /// Qualified agents by state (`available`, `busy`, `break`, `offline`).
    pub agents: HashMap<String, usize>,
    /// Service level today.
    pub service_level: ServiceLevelNow,
}

/// The tenant right now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Realtime {
    /// Per queue.
    pub queues: Vec<QueueNow>,
    /// All agents by state.
    pub agents: HashMap<String, usize>,
}

/// Per queue: waiting, longest wait, agents by state, service level today (supervisors).
#[utoipa::path(get, path = "/api/v1/stats/realtime", tag = "stats",
    responses((status = 200, body = Realtime), (status = 403, body = ErrorBody)))]
pub async fn realtime(State(s): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Realtime>> {
    caller.require(switchboard_model::Role::Supervisor)?;
    let tenant = caller.user.tenant;
    let snap = s.ask(tenant, |reply| Command::Snapshot { reply }).await?;
    let now = s.clock.wall_ms();
    let day_start = now - now.rem_euclid(86_400_000);
    let thresholds: Vec<_> = snap
        .queues
        .iter()
        .map(|q| (q.id, (q.config.service_level.threshold_s * 1000) as i64))
        .collect();
    let service = s
        .store
        .queue_service(tenant, day_start, &thresholds)
        .await?;
    let queues = snap
        .queues
        .iter()
        .zip(service)
        .map(|(q, sv)| QueueNow {
            queue_id: q.id.to_string(),
            name: q.name.clone(),
            waiting: q.stats.waiting,
            offered: q.stats.offered,
            longest_wait_s: q.stats.longest_wait.as_secs_f64(),
            estimated_wait_s: (q.stats.staffed > 0)
                .then(|| q.stats.estimated_wait.as_secs_f64().round()),
            agents: q
                .agents
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            service_level: ServiceLevelNow {
                target_percent: q.config.service_level.percent,
                threshold_s: q.config.service_level.threshold_s,
                value: (sv.offered > 0)
                    .then(|| sv.answered_in_threshold as f64 / sv.offered as f64),
                answered: sv.answered,
                abandoned: sv.abandoned,
            },
        })
        .collect();
    Ok(ApiJson(Realtime {
        queues,
        agents: snap
            .agents
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    }))
}

/// The event stream (WebSocket; token in `Authorization` or `?token=`): JSON messages
/// `{"type","at","tenant","seq","data"}`. Agents receive their own offers, interactions and
/// state; supervisors and admins everything of their tenant.
#[utoipa::path(get, path = "/api/v1/events", tag = "stats",
    params(("token" = Option<String>, Query, description = "bearer token, for browsers")),
    responses((status = 101, description = "switching to WebSocket"), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    caller: Caller,
    ApiWebSocket(ws): ApiWebSocket,
) -> Response {
    let rx = s.bus.subscribe();
    let revoked = s.revoked.subscribe();
    ws.max_message_size(64 * 1024)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| stream(socket, s, caller, rx, revoked))
}

fn visible(caller: &Caller, e: &BusEvent) -> bool {
    e.tenant == caller.user.tenant
        && (caller.is_supervisor() || (e.agent.is_some() && e.agent == caller.agent))
}

/// How often an open stream re-reads its session (role changes, deleted users).
const RECHECK: Duration = Duration::from_secs(30);

async fn stream(
    mut socket: WebSocket,
    s: AppState,
    mut caller: Caller,
    mut rx: tokio::sync::broadcast::Receiver<Arc<BusEvent>>,
    mut revoked: tokio::sync::broadcast::Receiver<String>,
) {
    metrics::gauge!("switchboard_event_streams").increment(1.0);
    let expires_in = Duration::from_millis((caller.expires_at - s.clock.wall_ms()).max(0) as u64);
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let close_reason = loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) => {
                    if !visible(&caller, &e) {
                        continue;
                    }
                    if socket.send(Message::Text(e.to_json().to_string().into())).await.is_err() {
                        break None;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let msg = serde_json::json!({"type": "stream.lagged", "data": {"missed": n}});
                    if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                        break None;
                    }
                }
                Err(RecvError::Closed) => break None,
            },
            gone = revoked.recv() => match gone {
                Ok(hash) if hash == caller.token_hash => break Some("logged out"),
                Ok(_) => {}
                // Missed revocations: re-read the session now.
                Err(RecvError::Lagged(_)) => recheck.reset_immediately(),
                Err(RecvError::Closed) => break None,
            },
            _ = &mut expiry => break Some("session expired"),
            _ = recheck.tick() => match s.store.session(&caller.token_hash, s.clock.wall_ms()).await {
                Ok(Some((_, user, agent))) => {
                    caller.user = user;
                    caller.agent = agent;
                }
                Ok(None) => break Some("session ended"),
                Err(e) => tracing::warn!(error = %e, "could not re-check an event stream's session"),
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                // The stream is one-way; anything the client sends is ignored.
                Some(Ok(_)) => {}
            },
        }
    };
    if let Some(reason) = close_reason {
        // 4001: the session is no longer valid; the client logs in again.
        let frame = CloseFrame {
            code: 4001,
            reason: reason.into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    metrics::gauge!("switchboard_event_streams").decrement(1.0);
}
