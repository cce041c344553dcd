//! Chat transcripts by email (docs/chat.md): a customer who asked for the transcript (the widget's
//! `transcript` frame) gets it by mail once the chat has ended.
//!
//! The request is stored with the conversation when it is made. A task watches the events for
//! chats that end and sends their transcripts; at start and whenever it may have missed events,
//! it sweeps the store for ended chats whose transcript has not gone out, so a crash or a burst
//! loses none. Sending is the email channel's: the chat gets an email thread to the requested
//! address and the transcript is queued as a system message through the outbox (stored copy,
//! threading headers, ticket reference, retries, `held` without a relay). The thread doubles as
//! the record that it was sent, so a transcript goes out once.

use crate::chat::message_json;
use crate::state::AppState;
use serde_json::json;
use switchboard_model::{Channel, InteractionId, InteractionState, Sensitive, TenantId};
use switchboard_store::{MessageThread, NewEvent, Sender};
use tokio::sync::broadcast::error::RecvError;

/// Starts the task.
pub fn start(s: AppState) {
    tokio::spawn(async move {
        let mut rx = s.bus.subscribe();
        sweep(&s).await;
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == "interaction.ended" => {
                    let Some(id) = e.data["interaction_id"]
                        .as_str()
                        .or(e.data["id"].as_str())
                        .and_then(|v| v.parse::<InteractionId>().ok())
                    else {
                        continue;
                    };
                    if let Err(e) = send(&s, e.tenant, id).await {
                        tracing::warn!(interaction = %id, error = %e.message, "transcript not sent; retried at the next sweep");
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => sweep(&s).await,
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// Sends every transcript that is due.
async fn sweep(s: &AppState) {
    match s.store.pending_transcripts().await {
        Ok(due) => {
            for (tenant, id, _) in due {
                if let Err(e) = send(s, tenant, id).await {
                    tracing::warn!(interaction = %id, error = %e.message, "transcript not sent");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot look for transcripts to send"),
    }
}

/// Sends the transcript of an ended chat if one was asked for and has not gone out. True when
/// it was queued now.
pub async fn send(
    s: &AppState,
    tenant: TenantId,
    id: InteractionId,
) -> Result<bool, crate::error::ApiError> {
    let Some(it) = s.store.interaction(tenant, id).await? else {
        return Ok(false);
    };
    if it.channel != Channel::Chat || it.state != InteractionState::Ended {
        return Ok(false);
    }
    let Some(address) = s.store.transcript_due(tenant, id).await? else {
        return Ok(false);
    };
    let messages = s.store.messages(tenant, id, false).await?;
    let mut text = String::from("Your chat transcript\n\n");
    for m in &messages {
        let v = message_json(m);
        let who = match m.sender {
            Sender::Customer => "You".to_owned(),
            _ => m.author_name.clone().unwrap_or_else(|| "Agent".into()),
        };
        text.push_str(&format!(
            "[{}] {who}: {}\n",
            v["at"].as_str().unwrap_or_default(),
            m.body.expose()
        ));
        for a in v["attachments"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "    (file: {})\n",
                a["name"].as_str().unwrap_or("file")
            ));
        }
    }
    let now = s.clock.wall_ms();
    let thread = MessageThread {
        interaction: id,
        tenant,
        channel: Channel::Email,
        account: None,
        contact_kind: "email".into(),
        contact_value: Sensitive::new(address),
        updated_at: now,
    };
    let event = NewEvent {
        tenant,
        interaction: Some(id),
        agent: it.agent,
        kind: "chat.transcript_sent".into(),
        at: now,
        data: json!({"interaction_id": id, "messages": messages.len()}),
    };
    // Queued first, then the thread that marks it sent: a failure in between sends it again at
    // the next sweep rather than never.
    crate::messaging::queue_outbound(
        s,
        &it,
        &thread,
        Sender::System,
        None,
        &text,
        crate::messaging::OutboundKind::Text,
        json!([]),
        &crate::email::Copies::default(),
    )
    .await?;
    if let Some(e) = s.store.put_thread(&thread, Some(event)).await? {
        s.bus.publish(crate::bus::BusEvent::from(e));
    }
    Ok(true)
}
