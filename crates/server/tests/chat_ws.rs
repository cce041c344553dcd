//! The web chat channel end to end: a customer's WebSocket (`/chat/ws`) and the agent's
//! message routes, against the real binary.

mod common;

use common::{Server, TempDir};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Customer {
    ws: Ws,
}

impl Customer {
    async fn connect(s: &Server) -> Customer {
        let (ws, _) = tokio_tungstenite::connect_async(s.ws_url("/chat/ws"))
            .await
            .expect("connect");
        Customer { ws }
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    /// The next JSON frame of `type`, skipping others (fails after a few seconds).
    async fn next(&mut self, ty: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {ty} frame"))
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("json frame");
                if v["type"] == ty {
                    return v;
                }
            }
        }
    }

    async fn hello(s: &Server, extra: Value) -> (Customer, Value) {
        let mut c = Customer::connect(s).await;
        let mut hello = json!({"type": "hello", "tenant": "demo", "queue": "support"});
        for (k, v) in extra.as_object().expect("object") {
            hello[k] = v.clone();
        }
        c.send(hello).await;
        let w = c.next("welcome").await;
        (c, w)
    }
}

#[tokio::test]
async fn a_customer_chats_with_an_agent_and_resumes_after_reload() {
    let dir = TempDir::new("chat");
    let s = Server::start(&dir.0);
    let agent = s.login("agent1", "agent").await;
    agent.set_state("available").await;

    let (mut c, w) =
        Customer::hello(&s, json!({"name": "Sara", "email": "Sara@Example.com"})).await;
    let session = w["session"].as_str().expect("session token").to_owned();
    assert!(w["interaction"].is_null());
    assert_eq!(w["messages"], json!([]));

    // the first message creates the chat interaction; the echo with seq acknowledges it
    c.send(json!({"type": "message", "text": "سلام، سفارش من کجاست؟", "client_id": "c-1"}))
        .await;
    let status = c.next("status").await;
    let id = status["interaction_id"]
        .as_str()
        .expect("interaction id")
        .to_owned();
    let echo = c.next("message").await;
    assert_eq!(echo["seq"], 1);
    assert_eq!(echo["client_id"], "c-1");
    assert_eq!(echo["from"], "customer");
    assert_eq!(echo["text"], "سلام، سفارش من کجاست؟");

    // it is routed like any other interaction: offered to the available agent
    let it = agent.wait_for(&id, |v| v["state"] == "offered").await;
    assert_eq!(it["channel"], "chat");
    let customer_id = it["customer_id"].as_str().expect("customer").to_owned();
    agent
        .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
        .await
        .expect(200);
    let st = c.next("status").await;
    assert_eq!(st["state"], "connected");
    assert_eq!(st["agent"], "agent1");

    // the agent sees the message, types, replies in Arabic, marks read, adds an internal note
    let msgs = agent
        .get(&format!("/api/v1/interactions/{id}/messages"))
        .await
        .expect(200);
    assert_eq!(msgs[0]["text"], "سلام، سفارش من کجاست؟");
    agent
        .post(
            &format!("/api/v1/interactions/{id}/typing"),
            json!({"on": true}),
        )
        .await
        .expect(204);
    let typing = c.next("typing").await;
    assert_eq!(typing["on"], true);
    let reply = agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "مرحبا، سأتحقق من طلبك"}),
        )
        .await
        .expect(201);
    assert_eq!(reply["seq"], 2);
    let got = c.next("message").await;
    assert_eq!(got["text"], "مرحبا، سأتحقق من طلبك");
    assert_eq!(got["from"], "agent");
    assert_eq!(got["name"], "agent1");
    agent
        .post(
            &format!("/api/v1/interactions/{id}/read"),
            json!({"seq": 1}),
        )
        .await
        .expect(204);
    assert_eq!(c.next("read").await["seq"], 1);
    agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "VIP customer", "internal": true}),
        )
        .await
        .expect(201);

    // a retry of the same client_id is not stored twice
    c.send(json!({"type": "message", "text": "سلام، سفارش من کجاست؟", "client_id": "c-1"}))
        .await;
    assert_eq!(c.next("message").await["seq"], 1);

    // reload: a new socket with the session token resumes the conversation, without the note
    drop(c);
    let (mut c, w) = Customer::hello(&s, json!({"session": session})).await;
    assert_eq!(w["interaction"]["id"], id.as_str());
    assert_eq!(w["interaction"]["state"], "connected");
    let texts: Vec<&str> = w["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["سلام، سفارش من کجاست؟", "مرحبا، سأتحقق من طلبك"]);
    assert_eq!(w["read"]["agent"], 1);
    c.send(json!({"type": "message", "text": "شكرا", "client_id": "c-2"}))
        .await;
    assert_eq!(c.next("message").await["seq"], 4);

    // the agent ends it; the customer is told
    agent
        .post(
            &format!("/api/v1/interactions/{id}/end"),
            json!({"disposition": "resolved", "notes": "order found"}),
        )
        .await
        .expect(200);
    assert_eq!(c.next("status").await["state"], "ended");

    // a returning customer on a new browser with the same email is the same customer
    let (mut c2, w2) = Customer::hello(&s, json!({"email": "sara@example.com"})).await;
    assert_eq!(w2["customer_id"], customer_id.as_str());
    c2.send(json!({"type": "message", "text": "one more question", "client_id": "x"}))
        .await;
    let id2 = c2.next("status").await["interaction_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(id2, id);
    let cust = agent
        .get(&format!("/api/v1/customers/{customer_id}"))
        .await
        .expect(200);
    let history: Vec<&str> = cust["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert!(
        history.contains(&id.as_str()) && history.contains(&id2.as_str()),
        "{history:?}"
    );

    // the customer closes while queued (agent1 is still wrapping up / busy): abandoned
    c2.send(json!({"type": "close"})).await;
    let v = agent.wait_for(&id2, |v| v["state"] == "ended").await;
    assert_eq!(v["disposition"], "abandoned");
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_server_stays_up() {
    let dir = TempDir::new("chat-bad");
    let s = Server::start(&dir.0);
    // a tenant that does not exist: error, then close
    let mut c = Customer::connect(&s).await;
    c.send(json!({"type": "hello", "tenant": "nope"})).await;
    assert_eq!(c.next("error").await["code"], "no_such_tenant");
    // something before hello
    let mut c = Customer::connect(&s).await;
    c.send(json!({"type": "message", "text": "hi"})).await;
    assert_eq!(c.next("error").await["code"], "hello_first");

    let (mut c, _) = Customer::hello(&s, json!({})).await;
    c.ws.send(Message::Text("not json".into()))
        .await
        .expect("send");
    assert_eq!(c.next("error").await["code"], "invalid_json");
    c.send(json!({"type": "dance"})).await;
    assert_eq!(c.next("error").await["code"], "unknown_type");
    c.send(json!({"type": "message", "text": "x".repeat(17 * 1024)}))
        .await;
    assert_eq!(c.next("error").await["code"], "too_large");
    c.send(json!({"type": "message", "text": "   "})).await;
    assert_eq!(c.next("error").await["code"], "invalid_message");
    c.ws.send(Message::Binary(vec![0, 159, 146, 150].into()))
        .await
        .expect("send");
    assert_eq!(c.next("error").await["code"], "invalid_json");
    // a flood of messages is rate limited, the connection survives
    for i in 0..12 {
        c.send(json!({"type": "message", "text": format!("m{i}"), "client_id": format!("f{i}")}))
            .await;
    }
    assert_eq!(c.next("error").await["code"], "rate_limited");
    // still answering (after the other refused messages of the flood), and so is the API
    c.send(json!({"type": "dance"})).await;
    loop {
        let e = c.next("error").await;
        if e["code"] == "unknown_type" {
            break;
        }
        assert_eq!(e["code"], "rate_limited");
    }
    common::send(s.http.get(s.url("/healthz")))
        .await
        .expect(200);

    // a frame over the transport limit closes the socket, the server stays up
    let (mut c, _) = Customer::hello(&s, json!({})).await;
    let _ =
        c.ws.send(Message::Text("y".repeat(200 * 1024).into()))
            .await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = c.ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "oversize frame closes the socket");
    common::send(s.http.get(s.url("/healthz")))
        .await
        .expect(200);
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let dir = TempDir::new("chat-cap");
    let s = Server::start(&dir.0);
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(Customer::connect(&s).await);
    }
    let r = tokio_tungstenite::connect_async(s.ws_url("/chat/ws")).await;
    let Err(err) = r else {
        panic!("the 21st connection was accepted")
    };
    assert!(err.to_string().contains("429"), "{err}");
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    Customer::connect(&s).await;
}

#[tokio::test]
async fn a_waiting_customer_who_vanishes_is_abandoned_one_who_returns_is_not() {
    let dir = TempDir::new("chat-vanish");
    let cfg = dir.0.join("c.toml");
    std::fs::write(&cfg, "[chat]\nabandon_after_s = 1\n").expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("utf8")], &[]);
    let admin = s.login("admin", "admin").await;

    // nobody is available: both chats wait
    let (mut gone, _) = Customer::hello(&s, json!({})).await;
    gone.send(json!({"type": "message", "text": "anyone?", "client_id": "g1"}))
        .await;
    let gone_id = gone.next("status").await["interaction_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (mut back, w) = Customer::hello(&s, json!({})).await;
    let token = w["session"].as_str().expect("session").to_owned();
    back.send(json!({"type": "message", "text": "hello?", "client_id": "b1"}))
        .await;
    let back_id = back.next("status").await["interaction_id"]
        .as_str()
        .expect("id")
        .to_owned();

    // both sockets drop without `close`; one customer comes back within the second
    drop(gone);
    drop(back);
    let (_back_again, w) = Customer::hello(&s, json!({"session": token})).await;
    assert_eq!(w["interaction"]["id"], back_id.as_str());

    let v = admin.wait_for(&gone_id, |v| v["state"] == "ended").await;
    assert_eq!(v["disposition"], "abandoned");
    assert!(common::event_types(&v).contains(&"interaction.abandoned".to_owned()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        admin
            .get(&format!("/api/v1/interactions/{back_id}"))
            .await
            .expect(200)["state"],
        "queued"
    );
}
