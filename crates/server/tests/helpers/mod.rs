//! Helpers shared by the routing, event-stream and tenant end-to-end tests: building a contact
//! center through the API (skills, queues, agents with their own logins), polling for an
//! asynchronous outcome, the `/api/v1/events` WebSocket, and the `switchboard admin create` CLI.
//! (Kept apart from `common` so the two can grow without stepping on each other.)
#![allow(dead_code)] // each test file uses a different part of the helpers

use crate::common::{Resp, Server, Session};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Password of every agent the helpers create.
pub const AGENT_PASSWORD: &str = "agent-password";

/// The `id` of a created resource.
#[track_caller]
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

impl Session {
    /// Creates a skill; returns its id.
    pub async fn new_skill(&self, name: &str) -> String {
        id_of(
            &self
                .post("/api/v1/skills", json!({"name": name}))
                .await
                .expect(201),
        )
    }

    /// Creates a queue from a full body (with `name`); returns the queue.
    pub async fn new_queue(&self, body: Value) -> Value {
        self.post("/api/v1/queues", body).await.expect(201)
    }

    /// Creates an agent with its own login (`username` / [`AGENT_PASSWORD`]) through
    /// `POST /api/v1/agents`; `skills` are (skill id, level) pairs, `capacity` the JSON capacity
    /// (`None`: the server's default). Returns the agent as created.
    pub async fn new_agent(
        &self,
        username: &str,
        skills: &[(&str, u8)],
        capacity: Option<Value>,
    ) -> Value {
        let skills: Vec<Value> = skills
            .iter()
            .map(|(s, l)| json!({"skill": s, "level": l}))
            .collect();
        let mut body = json!({
            "username": username,
            "password": AGENT_PASSWORD,
            "name": username,
            "skills": skills,
        });
        if let Some(c) = capacity {
            body["capacity"] = c;
        }
        self.post("/api/v1/agents", body).await.expect(201)
    }

    /// Accepts an offer as this (agent) session.
    pub async fn accept(&self, id: &str) -> Resp {
        self.post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
            .await
    }

    /// Rejects an offer as this (agent) session.
    pub async fn reject(&self, id: &str) -> Resp {
        self.post(&format!("/api/v1/interactions/{id}/reject"), json!({}))
            .await
    }

    /// Ends an interaction with a disposition.
    pub async fn end(&self, id: &str, disposition: &str) -> Resp {
        self.post(
            &format!("/api/v1/interactions/{id}/end"),
            json!({"disposition": disposition}),
        )
        .await
    }

    /// Reads an interaction (with its events); panics unless 200.
    pub async fn interaction(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/interactions/{id}"))
            .await
            .expect(200)
    }

    /// Creates a task with an explicit body; panics unless 201.
    pub async fn task_with(&self, body: Value) -> Value {
        self.post("/api/v1/interactions", body).await.expect(201)
    }

    /// An agent's live state; panics unless 200.
    pub async fn agent_state(&self, agent: &str) -> Value {
        self.get(&format!("/api/v1/agents/{agent}/state"))
            .await
            .expect(200)
    }

    /// Sets an agent's state (own, or anyone's for a supervisor); panics unless 200.
    pub async fn put_state(&self, agent: &str, body: Value) -> Value {
        self.put(&format!("/api/v1/agents/{agent}/state"), body)
            .await
            .expect(200)
    }

    /// The figures of one queue in `GET /api/v1/stats/realtime`.
    pub async fn queue_stats(&self, queue: &str) -> Value {
        let rt = self.get("/api/v1/stats/realtime").await.expect(200);
        rt["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .find(|q| q["queue_id"] == queue)
            .unwrap_or_else(|| panic!("queue {queue} in realtime stats: {rt}"))
            .clone()
    }

    /// Polls `GET path` until `pred` holds on the 200 body, for at most `within`.
    pub async fn poll(&self, path: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.get(path).await.expect(200);
            if pred(&v) {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("GET {path} did not reach the expected value within {within:?}; last: {v}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Logs in one of the agents made by [`Session::new_agent`].
pub async fn agent_login(s: &Server, username: &str) -> Session {
    s.login(username, AGENT_PASSWORD).await
}

/// Whether an interaction is in `state` and (when given) held by `agent`.
pub fn is(v: &Value, state: &str, agent: Option<&str>) -> bool {
    v["state"] == state && agent.is_none_or(|a| v["agent_id"] == a)
}

/// The events of an interaction (from `GET /api/v1/interactions/{id}`) of one type.
pub fn events_of<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// Runs `switchboard admin create` on a data directory; panics unless it succeeds.
pub fn admin_create(data: &Path, tenant: &str, username: &str, password: &str, role: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "admin",
            "create",
            "--tenant",
            tenant,
            "--username",
            username,
        ])
        .args(["--password", password, "--role", role, "--data"])
        .arg(data)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SWITCHBOARD_DATA")
        .env_remove("SWITCHBOARD_NATS")
        .env("SWITCHBOARD_HTTP", "127.0.0.1:0")
        .output()
        .expect("run switchboard admin create");
    assert!(
        out.status.success(),
        "admin create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client of the `/api/v1/events` WebSocket.
pub struct Events {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Events {
    /// Connects with `?token=`; panics unless the upgrade succeeds.
    pub async fn connect(s: &Server, token: &str) -> Events {
        let (ws, resp) =
            tokio_tungstenite::connect_async(s.ws_url(&format!("/api/v1/events?token={token}")))
                .await
                .expect("websocket upgrade");
        assert_eq!(resp.status(), 101);
        Events { ws }
    }

    /// The next JSON text message within `within`, or `None` on timeout or close.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg.ok()? {
                Message::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("events are JSON"));
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Collects messages up to and including the first one matching `pred`; panics if it does
    /// not come within `within`.
    pub async fn until(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(v) => {
                    let done = pred(&v);
                    got.push(v);
                    if done {
                        return got;
                    }
                }
                None => panic!(
                    "the expected event did not come within {within:?}; got: {}",
                    Value::Array(got)
                ),
            }
        }
    }

    /// Sends a frame.
    pub async fn send(&mut self, m: Message) {
        self.ws.send(m).await.expect("send frame");
    }
}

/// Whether an event is of `kind` about interaction `id`.
pub fn about(e: &Value, kind: &str, id: &str) -> bool {
    e["type"] == kind && e["data"]["interaction_id"] == id
}
