//! The outbox task: sends queued messages to providers, oldest first. A provider's 2xx marks
//! the message `sent` (with the provider's id, which later receipts name); 429, 5xx and network
//! errors are retried with exponential backoff (`[messaging] retry_base_ms`, doubling, at most
//! 10 minutes apart) up to `max_attempts`; other 4xx fail the message at once. Entries live in
//! the store, so a restart resumes where the last process stopped.

use super::providers::{self, Outbound, SendOutcome};
use super::{apply_receipt, info, provider_of};
use crate::state::AppState;
use std::time::Duration;
use switchboard_store::{DeliveryKey, OutboxItem};

/// Longest pause between looks at the outbox.
const IDLE: Duration = Duration::from_secs(1);
/// Longest backoff between attempts.
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// Starts the task. Mail held for want of a relay goes out when this start has one.
pub fn start(s: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if s.config.email.relay.is_some() {
            match s.store.release_held_outbox(s.clock.wall_ms()).await {
                Ok(n) if n > 0 => {
                    tracing::info!(count = n, "outbox: held mail released to the relay")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox: cannot release held mail"),
            }
        }
        loop {
            let now = s.clock.wall_ms();
            let due = match s.store.due_outbox(now, 32).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: cannot read the store");
                    Vec::new()
                }
            };
            let busy = !due.is_empty();
            for item in due {
                attempt(&s, item).await;
            }
            if busy {
                continue;
            }
            let wait = match s.store.next_outbox_at().await {
                Ok(Some(at)) => {
                    Duration::from_millis((at - s.clock.wall_ms()).clamp(0, 1000) as u64)
                }
                _ => IDLE,
            };
            tokio::select! {
                _ = s.messaging.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

async fn attempt(s: &AppState, item: OutboxItem) {
    let outcome = send(s, &item).await;
    let now = s.clock.wall_ms();
    let cfg = &s.config.messaging;
    let (state, next_at, error, pid) = match &outcome {
        SendOutcome::Sent(pid) => ("done", now, None, Some(pid.as_str())),
        // Not an attempt: kept as `held` until a start with a relay releases it.
        SendOutcome::Held(e) => ("held", now, Some(e.as_str()), None),
        SendOutcome::Retry(e) if item.attempts + 1 < i64::from(cfg.max_attempts) => {
            let backoff = (cfg.retry_base.as_millis() as i64)
                .saturating_mul(1i64 << item.attempts.clamp(0, 20))
                .min(MAX_BACKOFF_MS);
            ("pending", now + backoff, Some(e.as_str()), None)
        }
        SendOutcome::Retry(e) | SendOutcome::Failed(e) => ("failed", now, Some(e.as_str()), None),
    };
    metrics::counter!("switchboard_outbox_attempts_total", "outcome" => state).increment(1);
    if let Err(e) = s
        .store
        .outbox_attempted(
            &item.message_id,
            state,
            next_at,
            error,
            pid,
            !matches!(outcome, SendOutcome::Held(_)),
        )
        .await
    {
        tracing::warn!(error = %e, message = %item.message_id, "outbox: cannot record an attempt");
        return;
    }
    let receipt = match state {
        "done" => Some("sent"),
        "failed" => Some("failed"),
        _ => None,
    };
    if let Some(r) = receipt
        && let Err(e) = apply_receipt(s, DeliveryKey::Message(&item.message_id), r, error).await
    {
        tracing::warn!(error = %e.message, message = %item.message_id, "outbox: cannot record the outcome");
    }
    if state != "done" && !matches!(outcome, SendOutcome::Held(_)) {
        tracing::info!(message = %item.message_id, attempt = item.attempts + 1, outcome = state, "outbox: send did not go through");
    }
}

async fn send(s: &AppState, item: &OutboxItem) -> SendOutcome {
    let Some(account) = item.account else {
        return SendOutcome::Failed("no account to send through".into());
    };
    let a = match s.store.channel_account(item.tenant, account).await {
        Ok(Some(a)) if a.enabled => a,
        Ok(_) => return SendOutcome::Failed("the channel account is gone or disabled".into()),
        Err(e) => return SendOutcome::Retry(format!("store: {e}")),
    };
    let Ok(p) = provider_of(&a) else {
        return SendOutcome::Failed("unknown provider".into());
    };
    if p == providers::Provider::Email {
        return crate::email::send(s, &a, item).await;
    }
    let r = item.request.expose();
    let to = r["to"].as_str().unwrap_or_default();
    let params: Vec<String> = r["template"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let what = if r["kind"] == "template" {
        Outbound::Template {
            name: r["template"]["name"].as_str().unwrap_or_default(),
            language: r["template"]["language"].as_str().unwrap_or_default(),
            parameters: &params,
        }
    } else {
        Outbound::Text(r["text"].as_str().unwrap_or_default())
    };
    let callback = s
        .config
        .messaging
        .public_url
        .as_ref()
        .map(|u| format!("{u}/hooks/{}/{}", p.as_str(), a.id));
    let req = match providers::build_send(
        &info(&a, p),
        to,
        &what,
        &item.message_id,
        callback.as_deref(),
    ) {
        Ok(r) => r,
        Err(e) => return SendOutcome::Failed(e),
    };
    let mut http = s
        .messaging
        .http
        .post(&req.url)
        .header("Content-Type", req.content_type)
        .body(req.body);
    for (k, v) in req.headers {
        http = http.header(k, v);
    }
    match http.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.bytes().await.unwrap_or_default();
            providers::parse_send_response(p, status, &body)
        }
        // Without the URL: Telegram's carries the bot token, Meta's the page token.
        Err(e) => SendOutcome::Retry(format!("network: {}", e.without_url())),
    }
}
