//! The in-process event bus: every committed event is published here, and the `/api/v1/events`
//! WebSocket subscribers filter it by tenant and role. (A NATS JetStream bus takes this place in
//! cluster mode.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchboard_model::{AgentId, InteractionId, TenantId};
use switchboard_store::Event;
use tokio::sync::broadcast;

/// A published event.
#[derive(Debug, Clone)]
pub struct BusEvent {
    /// Position in the log.
    pub seq: i64,
    /// Tenant.
    pub tenant: TenantId,
    /// The agent it is about (agents see only their own).
    pub agent: Option<AgentId>,
    /// Type.
    pub kind: String,
    /// When (ms).
    pub at: i64,
    /// Details.
    pub data: serde_json::Value,
}

impl From<Event> for BusEvent {
    fn from(e: Event) -> Self {
        BusEvent {
            seq: e.seq,
            tenant: e.tenant,
            agent: e.agent,
            kind: e.kind,
            at: e.at,
            data: e.data,
        }
    }
}

impl BusEvent {
    /// The wire form: `{"type","at","tenant","seq","data"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.kind,
            "at": crate::clock::rfc3339(self.at),
            "tenant": self.tenant,
            "seq": self.seq,
            "data": self.data,
        })
    }
}

/// The bus: one stream of everything (for staff event streams, which filter it), and one
/// channel per conversation for customers' chat sockets, so that thousands of customers are not
/// woken by every event of the tenant.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<BusEvent>>,
    conversations: Arc<Mutex<HashMap<InteractionId, broadcast::Sender<Arc<BusEvent>>>>>,
    voice: Arc<std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<VoiceEvent>>>,
}

/// What the SIP side must act on, from the routing engine: sent on a channel of its own that
/// never drops (a lagging broadcast subscriber could miss an offer and leave a caller ringing).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceEvent {
    /// Tenant.
    pub tenant: TenantId,
    /// The voice interaction.
    pub interaction: InteractionId,
    /// What happened.
    pub kind: VoiceEventKind,
}

/// See [`VoiceEvent`].
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceEventKind {
    /// Offered to an agent: ring its phones.
    Offered(AgentId),
    /// The offer to this agent ended without an answer (expired, revoked, rejected).
    OfferEnded(AgentId),
    /// Back in a queue after a transfer: the agent's leg ends, the caller waits.
    Requeued,
    /// Transferred out to this number: the agent's leg ends, the number is dialled.
    TransferredOut(switchboard_model::Sensitive<String>),
    /// An outbound call: ring the agent's phones, then dial the number.
    Dial {
        /// The agent.
        agent: AgentId,
        /// The number (E.164).
        number: switchboard_model::Sensitive<String>,
    },
    /// Ended through the API: hang up both legs.
    Ended,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus that buffers up to 8,192 events per slow subscriber before it lags.
    pub fn new() -> Self {
        Bus {
            tx: broadcast::channel(8192).0,
            conversations: Arc::default(),
            voice: Arc::default(),
        }
    }

    /// Where voice events go (set once, by the SIP listener).
    pub fn set_voice_sink(&self, tx: tokio::sync::mpsc::UnboundedSender<VoiceEvent>) {
        let _ = self.voice.set(tx);
    }

    /// Tells the SIP side (nobody listening is fine).
    pub fn publish_voice(&self, e: VoiceEvent) {
        if let Some(tx) = self.voice.get() {
            let _ = tx.send(e);
        }
    }

    /// Publishes (nobody listening is fine): to the whole stream, and to the conversation named
    /// by `data.interaction_id` if someone follows it.
    pub fn publish(&self, e: BusEvent) {
        let e = Arc::new(e);
        let id = e
            .data
            .get("interaction_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<InteractionId>().ok());
        if let Some(id) = id
            && let Ok(mut map) = self.conversations.lock()
            && let Some(tx) = map.get(&id)
            && tx.send(e.clone()).is_err()
        {
            // Everybody left this conversation.
            map.remove(&id);
        }
        let _ = self.tx.send(e);
    }

    /// Follows the events of one conversation.
    pub fn subscribe_conversation(&self, id: InteractionId) -> broadcast::Receiver<Arc<BusEvent>> {
        match self.conversations.lock() {
            Ok(mut map) => map
                .entry(id)
                .or_insert_with(|| broadcast::channel(256).0)
                .subscribe(),
            // A poisoned map only loses the per-conversation shortcut: follow everything.
            Err(_) => self.tx.subscribe(),
        }
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(interaction: Option<InteractionId>) -> BusEvent {
        BusEvent {
            seq: 1,
            tenant: TenantId::from_u128(1),
            agent: None,
            kind: "k".into(),
            at: 0,
            data: match interaction {
                Some(i) => serde_json::json!({"interaction_id": i}),
                None => serde_json::json!({}),
            },
        }
    }

    #[test]
    fn conversations_get_only_their_events_and_are_forgotten_when_left() {
        let bus = Bus::new();
        let (a, b) = (InteractionId::from_u128(10), InteractionId::from_u128(11));
        let all = bus.subscribe();
        let mut ra = bus.subscribe_conversation(a);
        bus.publish(ev(Some(b)));
        bus.publish(ev(Some(a)));
        bus.publish(ev(None));
        assert_eq!(all.len(), 3);
        assert_eq!(ra.len(), 1);
        assert_eq!(
            ra.try_recv().expect("event").data["interaction_id"],
            serde_json::json!(a)
        );
        drop(ra);
        bus.publish(ev(Some(a)));
        assert!(bus.conversations.lock().expect("lock").is_empty());
    }
}
