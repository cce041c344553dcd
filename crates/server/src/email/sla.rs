//! The service-level clock of email interactions: a queue's `email_sla` (`hours`, counted in its
//! `business_hours`) gives each new email interaction a due time for its first answer
//! (`attributes.email_sla`). A sweep reports each interaction whose due time passed without an
//! agent's reply, once, as an `email.sla_breached` event (on its timeline and the event stream).

use crate::error::ApiError;
use crate::shapes::QueueConfig;
use crate::state::AppState;
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_model::{QueueId, TenantId};
use switchboard_store::{Change, NewEvent};

/// Most breaches reported per sweep (the next sweep goes on).
const BATCH: i64 = 500;

/// `attributes.email_sla` of a new email interaction of `queue` created at `now`: `null` when
/// the queue has no email service level.
pub async fn attributes(
    s: &AppState,
    tenant: TenantId,
    queue: QueueId,
    now: i64,
) -> Result<Value, ApiError> {
    let Some(q) = s.store.queue(tenant, queue).await? else {
        return Ok(Value::Null);
    };
    let Ok(config) = serde_json::from_value::<QueueConfig>(q.config) else {
        return Ok(Value::Null);
    };
    let Some(sla) = config.email_sla else {
        return Ok(Value::Null);
    };
    let due = sla.due_at(now);
    Ok(json!({
        "hours": sla.hours,
        "business_hours": sla.business_hours.is_some(),
        "due_at_ms": due,
        "due_at": due.map(crate::clock::rfc3339),
    }))
}

/// Starts the sweep, every `[email] sla_check_secs`.
pub fn start(s: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = s.config.email.sla_check;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = sweep(&s).await {
                tracing::warn!(error = %e.message, "email: service-level sweep failed");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    })
}

/// Reports the interactions whose due time passed unanswered.
pub async fn sweep(s: &AppState) -> Result<usize, ApiError> {
    let now = s.clock.wall_ms();
    let due = s.store.email_sla_breaches(now, BATCH).await?;
    let changes: Vec<Change> = due
        .iter()
        .map(|(tenant, id, due_ms)| {
            Change::Event(NewEvent {
                tenant: *tenant,
                interaction: Some(*id),
                agent: None,
                kind: "email.sla_breached".into(),
                at: now,
                data: json!({"interaction_id": id, "due_at": crate::clock::rfc3339(*due_ms),
                    "late_by_s": (now - due_ms) / 1000}),
            })
        })
        .collect();
    if changes.is_empty() {
        return Ok(0);
    }
    for e in s.store.commit(&changes).await? {
        metrics::counter!("switchboard_email_sla_breached_total").increment(1);
        s.bus.publish(crate::bus::BusEvent::from(e));
    }
    Ok(changes.len())
}
