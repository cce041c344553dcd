//! Support for the messaging tests: a fake of every provider (axum in the test process on
//! 127.0.0.1:0) that records exactly what Switchboard sends and answers the way the provider
//! documents (or as scripted, e.g. a 500 first), signing helpers for real-shaped webhooks, and a
//! contact center with one queue and one available agent.
#![allow(dead_code)] // each test file uses a different part

use crate::common::{Resp, Server, Session, send};
use crate::helpers::{agent_login, id_of};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// A fake provider.
#[derive(Clone)]
pub struct Fake {
    pub base: String,
    reqs: Arc<Mutex<Vec<Captured>>>,
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let fake = Fake {
            base: base.clone(),
            reqs: Arc::default(),
            script: Arc::default(),
        };
        let f = fake.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let f = f.clone();
                async move { f.answer(method, uri, headers, body) }
            },
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake serves");
        });
        fake
    }

    /// The next send answers with this status and body (then the defaults again).
    pub fn script(&self, status: u16, body: &str) {
        self.script
            .lock()
            .expect("lock")
            .push_back((status, body.to_owned()));
    }

    fn answer(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (axum::http::StatusCode, String) {
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let n = {
            let mut r = self.reqs.lock().expect("lock");
            r.push(Captured {
                method: method.to_string(),
                path: path.clone(),
                headers,
                body: body.to_vec(),
            });
            r.len()
        };
        let status = |c: u16| axum::http::StatusCode::from_u16(c).expect("status");
        let is_send = method == Method::POST;
        if is_send && let Some((c, b)) = self.script.lock().expect("lock").pop_front() {
            return (status(c), b);
        }
        let p = uri.path();
        let body = if p.ends_with("/Messages.json") {
            return (
                status(201),
                json!({"sid": format!("SM{n}"), "status": "queued"}).to_string(),
            );
        } else if p.ends_with("/sendMessage") {
            json!({"ok": true, "result": {"message_id": 1000 + n, "chat": {"id": 4242}, "date": 1}})
        } else if p.ends_with("/getFile") {
            json!({"ok": true, "result": {"file_id": "F1", "file_unique_id": "U1", "file_size": 11, "file_path": "photos/file_1.jpg"}})
        } else if p.contains("/file/bot") {
            return (status(200), "PHOTO-BYTES".into());
        } else if p.starts_with("/media/") {
            return (status(200), format!("MEDIA-BYTES{p}"));
        } else if p.ends_with("/me/messages") {
            json!({"recipient_id": "PSID", "message_id": format!("m_OUT{n}")})
        } else if p.ends_with("/messages") && p.starts_with("/v21.0/") {
            json!({"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "x"}], "messages": [{"id": format!("wamid.OUT{n}")}]})
        } else if p.ends_with("/messages") {
            json!({"id": format!("gw-{n}")})
        } else if p.starts_with("/v21.0/") && method == Method::GET {
            json!({"url": format!("{}/media/wa-download", self.base), "mime_type": "image/jpeg", "id": "x"})
        } else {
            return (status(404), "{}".into());
        };
        (status(200), body.to_string())
    }

    /// Requests received so far whose path contains `part`.
    pub fn requests(&self, part: &str) -> Vec<Captured> {
        self.reqs
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path.contains(part))
            .cloned()
            .collect()
    }

    /// Waits until `n` requests whose path contains `part` arrived; returns them.
    pub async fn wait(&self, part: &str, n: usize) -> Vec<Captured> {
        for _ in 0..400 {
            let r = self.requests(part);
            if r.len() >= n {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the fake provider never got {n} requests to {part}; got {:?}",
            self.requests("")
                .iter()
                .map(|r| r.path.clone())
                .collect::<Vec<_>>()
        );
    }
}

pub fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut p: Vec<_> = params.to_vec();
    p.sort();
    let mut data = url.to_owned();
    for (k, v) in p {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac =
        <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A webhook body with its headers.
pub async fn post_hook(
    s: &Server,
    path: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Resp {
    let mut req = s
        .http
        .post(s.url(path))
        .header("Content-Type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    send(req).await
}

/// A Twilio-signed form webhook (`good`: signed with the right token).
pub async fn twilio_hook(s: &Server, path: &str, token: &str, params: &[(&str, &str)]) -> Resp {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let sig = twilio_signature(token, &s.url(path), params);
    post_hook(
        s,
        path,
        "application/x-www-form-urlencoded",
        &[("X-Twilio-Signature", sig)],
        body.into_bytes(),
    )
    .await
}

/// A Meta-signed JSON webhook.
pub async fn meta_hook(s: &Server, path: &str, app_secret: &str, body: &Value) -> Resp {
    let raw = body.to_string().into_bytes();
    let sig = format!("sha256={}", hmac_sha256_hex(app_secret, &raw));
    post_hook(
        s,
        path,
        "application/json",
        &[("X-Hub-Signature-256", sig)],
        raw,
    )
    .await
}

/// An admin, a queue `messaging` without skills, and an available agent `m-agent`.
/// Waits for an interaction offered to `agent`, accepts it, returns its id.
pub async fn accept_offer(agent: &Session) -> String {
    let list = agent
        .poll(
            "/api/v1/interactions?state=offered",
            Duration::from_secs(10),
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    let id = id_of(&list[0]);
    agent
        .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
        .await
        .expect(200);
    id
}

pub struct Center {
    pub admin: Session,
    pub agent: Session,
    pub agent_id: String,
}

impl Center {
    pub async fn build(s: &Server) -> Center {
        let admin = s.login("admin", "admin").await;
        admin
            .post("/api/v1/queues", json!({"name": "messaging"}))
            .await
            .expect(201);
        let a = admin
            .post(
                "/api/v1/agents",
                json!({"username": "m-agent", "password": crate::helpers::AGENT_PASSWORD, "name": "Mona", "skills": []}),
            )
            .await
            .expect(201);
        let agent = agent_login(s, "m-agent").await;
        agent.set_state("available").await;
        Center {
            admin,
            agent,
            agent_id: id_of(&a),
        }
    }

    /// Creates a channel account; returns (id, webhook path).
    pub async fn account(
        &self,
        provider: &str,
        base_url: &str,
        settings: Value,
        secrets: Value,
    ) -> (String, String) {
        let v = self
            .admin
            .post(
                "/api/v1/channel-accounts",
                json!({"provider": provider, "name": format!("{provider} line"), "queue": "messaging",
                       "base_url": base_url, "settings": settings, "secrets": secrets}),
            )
            .await
            .expect(201);
        assert!(
            v.get("secrets").is_none(),
            "secrets are never returned: {v}"
        );
        (
            id_of(&v),
            v["webhook_path"].as_str().expect("path").to_owned(),
        )
    }

    /// Waits for the interaction offered to the agent, accepts it, returns its id.
    pub async fn accept_offer(&self) -> String {
        accept_offer(&self.agent).await
    }

    /// The conversation's messages (as the agent).
    pub async fn messages(&self, id: &str) -> Vec<Value> {
        self.agent
            .get(&format!("/api/v1/interactions/{id}/messages"))
            .await
            .expect(200)
            .as_array()
            .expect("list")
            .clone()
    }

    /// Replies as the agent.
    pub async fn reply(&self, id: &str, text: &str) -> Resp {
        self.agent
            .post(
                &format!("/api/v1/interactions/{id}/messages"),
                json!({"text": text}),
            )
            .await
    }

    /// Waits until the delivery state of a message is `state`.
    pub async fn wait_delivery(&self, id: &str, message_id: &str, state: &str) -> Value {
        self.agent
            .poll(
                &format!("/api/v1/interactions/{id}/messaging"),
                Duration::from_secs(20),
                |v| {
                    v["deliveries"].as_array().is_some_and(|d| {
                        d.iter()
                            .any(|d| d["message_id"] == message_id && d["state"] == state)
                    })
                },
            )
            .await
    }
}

/// Opens a web chat as a customer with this email (queue `support` of the demo tenant), says
/// hello and a first message; returns the interaction id.
pub async fn chat(s: &Server, email: &str) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/chat/ws"))
        .await
        .expect("connect");
    let hello = json!({"type": "hello", "tenant": "demo", "queue": "support", "name": "Sara", "email": email});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .expect("send");
    ws.send(Message::Text(
        json!({"type": "message", "text": "hi from the web"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let f = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a status frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = f {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "status" && v["interaction_id"].is_string() {
                return v["interaction_id"].as_str().expect("id").to_owned();
            }
        }
    }
}
