//! The in-process event bus: every committed event is published here, and the `/api/v1/events`
//! WebSocket subscribers filter it by tenant and role. (A NATS JetStream bus takes this place in
//! cluster mode.)

use std::sync::Arc;
use switchboard_model::{AgentId, TenantId};
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

/// The bus.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<BusEvent>>,
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
        }
    }

    /// Publishes (nobody listening is fine).
    pub fn publish(&self, e: BusEvent) {
        let _ = self.tx.send(Arc::new(e));
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }
}
