//! The chat bot over the real `/chat/ws`: the demo chat flow's greeting and topic menu, queueing
//! by topic, an out-of-hours reply, the long-wait email follow-up, and a running chat keeping
//! its flow version while a new one is saved.

mod common;

use common::{Server, Session, TempDir, event_types};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Customer {
    ws: Ws,
    /// The `welcome` frame.
    welcome: Value,
}

impl Customer {
    /// Connects and says hello with `extra` fields (no queue: the tenant's chat flow runs).
    async fn hello(s: &Server, extra: Value) -> Customer {
        let (ws, _) = tokio_tungstenite::connect_async(s.ws_url("/chat/ws"))
            .await
            .expect("connect");
        let mut c = Customer {
            ws,
            welcome: Value::Null,
        };
        let mut hello = json!({"type": "hello", "tenant": "demo"});
        for (k, v) in extra.as_object().expect("object") {
            hello[k] = v.clone();
        }
        c.send(hello).await;
        c.welcome = c.next(|f| f["type"] == "welcome").await;
        c
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    async fn say(&mut self, text: &str) {
        self.send(json!({"type": "message", "text": text})).await;
    }

    /// The next frame that satisfies `pred`, skipping others (fails after a few seconds).
    async fn next(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("the expected frame in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("json frame");
                if pred(&v) {
                    return v;
                }
            }
        }
    }

    /// The next bot message containing `text`.
    async fn bot_says(&mut self, text: &str) -> Value {
        self.next(|f| {
            f["type"] == "message"
                && f["from"] == "system"
                && f["text"].as_str().is_some_and(|t| t.contains(text))
        })
        .await
    }

    async fn menu(&mut self) -> Value {
        self.next(|f| f["type"] == "menu").await
    }

    async fn status(&mut self, state: &str) -> Value {
        self.next(|f| f["type"] == "status" && f["state"] == state)
            .await
    }
}

async fn queue_id(sup: &Session, name: &str) -> String {
    let qs = sup.get("/api/v1/queues").await.expect(200);
    qs.as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .and_then(|q| q["id"].as_str())
        .expect("queue")
        .to_owned()
}

/// The chat interaction whose subject is `subject`.
async fn chat_by_subject(sup: &Session, subject: &str) -> Value {
    for _ in 0..100 {
        let list = sup
            .get("/api/v1/interactions?channel=chat")
            .await
            .expect(200);
        if let Some(it) = list
            .as_array()
            .expect("list")
            .iter()
            .find(|i| i["subject"] == subject)
        {
            return it.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no chat {subject:?}");
}

#[tokio::test]
async fn the_demo_chat_greets_offers_topics_and_queues_by_the_choice() {
    let dir = TempDir::new("chat-flow-demo");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let mut c = Customer::hello(&s, json!({"lang": "fa"})).await;
    c.say("سلام، سوال دارم").await;
    c.status("flow").await;
    c.bot_says("به فروشگاه نمایشی خوش آمدید").await;
    let menu = c.menu().await;
    assert_eq!(menu["prompt"], "چطور می‌توانیم کمکتان کنیم؟");
    let labels: Vec<&str> = menu["options"]
        .as_array()
        .expect("options")
        .iter()
        .filter_map(|o| o["label"].as_str())
        .collect();
    assert_eq!(labels, vec!["فروش", "پشتیبانی"]);
    let it = chat_by_subject(&sup, "سلام، سوال دارم").await;
    assert_eq!(it["state"], "flow");
    let id = it["id"].as_str().expect("id").to_owned();

    // The label in English works too (case-insensitive); the choice queues in support.
    c.say("SUPPORT").await;
    c.status("queued").await;
    // Position and estimated wait, in the page language.
    c.bot_says("در صف هستید").await;
    let support = queue_id(&sup, "support").await;
    let it = sup.wait_for(&id, |v| v["state"] == "queued").await;
    assert_eq!(it["queue_id"], support);
    let types = event_types(&it);
    for t in [
        "interaction.created",
        "flow.started",
        "flow.menu_choice",
        "interaction.queued",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    let started = it["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "flow.started")
        .expect("flow.started");
    let flows = sup.get("/api/v1/flows").await.expect(200);
    assert_eq!(started["data"]["flow_id"], flows[0]["id"]);
    assert_eq!(started["data"]["version"], 1);
    let choice = it["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "flow.menu_choice")
        .expect("choice");
    assert_eq!(choice["data"]["key"], "2");

    // Agents see the bot's part in the transcript.
    let msgs = sup
        .get(&format!("/api/v1/interactions/{id}/messages"))
        .await
        .expect(200);
    let from: Vec<&str> = msgs
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["from"].as_str())
        .collect();
    assert_eq!(&from[..3], &["customer", "system", "system"], "{msgs}");

    // An agent takes it: the bot steps back.
    let agent = s.login("agent1", "agent").await;
    agent.set_state("available").await;
    let it = sup.wait_for(&id, |v| v["state"] == "offered").await;
    assert_eq!(it["agent_id"], agent.agent_id());
}

#[tokio::test]
async fn a_widget_that_pins_a_queue_skips_the_chat_flow() {
    let dir = TempDir::new("chat-flow-pinned");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let mut c = Customer::hello(&s, json!({"queue": "sales"})).await;
    c.say("straight to sales").await;
    c.status("queued").await;
    let it = chat_by_subject(&sup, "straight to sales").await;
    assert_eq!(it["queue_id"], queue_id(&sup, "sales").await);
}

#[tokio::test]
async fn a_topic_that_needs_a_skill_goes_only_to_agents_with_it() {
    let dir = TempDir::new("chat-flow-skills");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let skill = admin
        .post("/api/v1/skills", json!({"name": "arabic"}))
        .await
        .expect(201);
    let topics = json!({"start": "m", "nodes": {
        "m": {"type": "menu", "prompt": "Language?", "options": [
            {"key": "1", "label": "English", "next": "en"},
            {"key": "2", "label": "العربية", "next": "ar"}]},
        "en": {"type": "queue", "queue": "support"},
        "ar": {"type": "queue", "queue": "support", "skills": ["arabic", "no-such-skill"]}
    }});
    admin
        .post(
            "/api/v1/flows",
            json!({"name": "lang", "definition": topics}),
        )
        .await
        .expect(201);
    // agent1 is available but has no Arabic; agent2 gets it
    let a1 = s.login("agent1", "agent").await;
    a1.set_state("available").await;
    let mut c = Customer::hello(&s, json!({"flow": "lang"})).await;
    c.say("مرحبا").await;
    c.menu().await;
    c.say("2").await;
    c.status("queued").await;
    let it = chat_by_subject(&admin, "مرحبا").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let it = admin.wait_for(&id, |v| v["state"] == "queued").await;
    assert_eq!(
        it["attributes"]["skills"],
        json!(["arabic", "no-such-skill"])
    );
    assert!(
        it["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "flow.error" && e["data"]["skill"] == "no-such-skill"),
        "the unknown skill is noted: {it}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let it = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    assert_eq!(it["state"], "queued", "agent1 lacks the skill: {it}");
    let a2 = s.login("agent2", "agent").await;
    let level = json!([{"skill": skill["id"], "level": 5}]);
    let mut skills = admin
        .get(&format!("/api/v1/agents/{}", a2.agent_id()))
        .await
        .expect(200)["skills"]
        .clone();
    skills
        .as_array_mut()
        .expect("skills")
        .extend(level.as_array().expect("one").iter().cloned());
    admin
        .patch(
            &format!("/api/v1/agents/{}", a2.agent_id()),
            json!({"skills": skills}),
        )
        .await
        .expect(200);
    a2.set_state("available").await;
    let it = admin.wait_for(&id, |v| v["state"] == "offered").await;
    assert_eq!(it["agent_id"], a2.agent_id());
}

/// A stand-in CRM on loopback: `GET /accounts/42` is a gold customer, anything else 404.
async fn fake_crm() -> String {
    use axum::extract::Path;
    let app = axum::Router::new().route(
        "/accounts/{id}",
        axum::routing::get(|Path(id): Path<String>| async move {
            if id == "42" {
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({"account": {"tier": "gold", "owner": "Nadia"}})),
                )
            } else {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": "no such account"})),
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_crm_lookup_in_the_chat_flow_routes_by_its_answer() {
    let dir = TempDir::new("chat-flow-http");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let crm = fake_crm().await;
    let def = json!({"start": "acct", "nodes": {
        "acct": {"type": "collect", "prompt": "Your account number?", "max_digits": 6, "into": "account", "next": "crm", "on_timeout": "q"},
        "crm": {"type": "http", "url": format!("{crm}/accounts/{{{{account}}}}"), "timeout_s": 3,
            "map": {"tier": "/account/tier", "owner": "/account/owner"}, "next": "vip", "on_error": "sorry"},
        "vip": {"type": "branch", "attribute": "tier", "cases": [{"equals": "gold", "next": "sales"}], "else": "q"},
        "sales": {"type": "queue", "queue": "sales"},
        "sorry": {"type": "say", "text": "We could not find that account.", "next": "q"},
        "q": {"type": "queue", "queue": "support"}
    }});
    sup.post("/api/v1/flows", json!({"name": "crm", "definition": def}))
        .await
        .expect(201);

    // a known account: the CRM's answer lands in the attributes and picks the queue
    let mut c = Customer::hello(&s, json!({"flow": "crm"})).await;
    c.say("hi there").await;
    c.bot_says("Your account number?").await;
    c.say("42").await;
    c.status("queued").await;
    let it = chat_by_subject(&sup, "hi there").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let it = sup.wait_for(&id, |v| v["state"] == "queued").await;
    assert_eq!(it["queue_id"], queue_id(&sup, "sales").await);
    assert_eq!(it["attributes"]["tier"], "gold");
    assert_eq!(it["attributes"]["owner"], "Nadia");
    assert!(
        event_types(&it).iter().any(|t| t == "flow.http"),
        "{:?}",
        event_types(&it)
    );

    // an unknown one: the 404 takes on_error
    let mut c = Customer::hello(&s, json!({"flow": "crm"})).await;
    c.say("hello again").await;
    c.bot_says("Your account number?").await;
    c.say("7").await;
    c.bot_says("We could not find that account.").await;
    c.status("queued").await;
    let it = chat_by_subject(&sup, "hello again").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let it = sup.wait_for(&id, |v| v["state"] == "queued").await;
    assert_eq!(it["queue_id"], queue_id(&sup, "support").await);
    assert!(it["attributes"].get("tier").is_none(), "{it}");
}

#[tokio::test]
async fn out_of_hours_gives_the_automated_reply_and_ends() {
    let dir = TempDir::new("chat-flow-closed");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    // No opening spans at all: closed whenever the test runs.
    let closed = json!({"start": "h", "nodes": {
        "h": {"type": "hours", "schedule": {"time_zone": "Asia/Tehran", "open": [], "holidays": []},
            "open_next": "q", "closed_next": "bye"},
        "q": {"type": "queue", "queue": "support"},
        "bye": {"type": "end", "reason": "out_of_hours", "message": {"en": "We are closed.", "ar": "نحن مغلقون."}}
    }});
    sup.post(
        "/api/v1/flows",
        json!({"name": "closed", "definition": closed}),
    )
    .await
    .expect(201);
    let mut c = Customer::hello(&s, json!({"flow": "closed", "lang": "ar"})).await;
    c.say("anyone?").await;
    c.bot_says("نحن مغلقون.").await;
    c.status("ended").await;
    let it = chat_by_subject(&sup, "anyone?").await;
    let id = it["id"].as_str().expect("id");
    let it = sup.wait_for(id, |v| v["state"] == "ended").await;
    assert_eq!(it["disposition"], "out_of_hours");
    assert_eq!(it["queue_id"], Value::Null, "never queued");
}

#[tokio::test]
async fn out_of_hours_can_take_an_email_for_an_answer_later() {
    let dir = TempDir::new("chat-flow-closed-message");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let closed = json!({"start": "h", "nodes": {
        "h": {"type": "hours", "schedule": {"time_zone": "Europe/London", "open": []},
            "open_next": "q", "closed_next": "sorry"},
        "q": {"type": "queue", "queue": "support"},
        "sorry": {"type": "say", "text": "We are closed.", "next": "leave"},
        "leave": {"type": "follow_up", "prompt": "Leave your email and we will write back."}
    }});
    sup.post(
        "/api/v1/flows",
        json!({"name": "closed-msg", "definition": closed}),
    )
    .await
    .expect(201);
    let mut c = Customer::hello(&s, json!({"flow": "closed-msg"})).await;
    c.say("my parcel is late").await;
    c.bot_says("We are closed.").await;
    c.bot_says("Leave your email").await;
    c.say("sam@example.org").await;
    c.status("ended").await;
    let it = chat_by_subject(&sup, "my parcel is late").await;
    let it = sup
        .wait_for(it["id"].as_str().expect("id"), |v| v["state"] == "ended")
        .await;
    assert_eq!(it["disposition"], "follow_up_requested");
    let customer = it["customer_id"].as_str().expect("customer");
    let cust = sup
        .get(&format!("/api/v1/customers/{customer}"))
        .await
        .expect(200);
    assert_eq!(
        cust["contact_points"][0]["value"], "sam@example.org",
        "{cust}"
    );
}

#[tokio::test]
async fn a_long_wait_offers_an_email_answer_that_ends_the_wait() {
    let dir = TempDir::new("chat-flow-follow-up");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let flow = json!({"start": "q", "nodes": {
        "q": {"type": "queue", "queue": "support", "long_wait_s": 0,
            "self_service_url": "https://help.demo.example", "email_follow_up": true}
    }});
    sup.post("/api/v1/flows", json!({"name": "busy", "definition": flow}))
        .await
        .expect(201);
    let mut c = Customer::hello(&s, json!({"flow": "busy"})).await;
    c.say("I need help").await;
    let menu = c.menu().await;
    let keys: Vec<&str> = menu["options"]
        .as_array()
        .expect("options")
        .iter()
        .filter_map(|o| o["key"].as_str())
        .collect();
    assert_eq!(keys, vec!["1", "2", "9"]);
    c.say("1").await;
    c.bot_says("https://help.demo.example").await;
    c.say("Answer me by email").await;
    c.bot_says("email address").await;
    c.say("Ana@Example.com").await;
    c.bot_says("ana@example.com").await;
    c.status("ended").await;

    let it = chat_by_subject(&sup, "I need help").await;
    let id = it["id"].as_str().expect("id");
    let it = sup.wait_for(id, |v| v["state"] == "ended").await;
    assert_eq!(it["disposition"], "follow_up_requested");
    let types = event_types(&it);
    assert!(
        types.iter().any(|t| t == "flow.follow_up_requested"),
        "{types:?}"
    );
    let customer = it["customer_id"].as_str().expect("customer");
    let cust = sup
        .get(&format!("/api/v1/customers/{customer}"))
        .await
        .expect(200);
    let points = cust["contact_points"].as_array().expect("contact points");
    assert!(
        points
            .iter()
            .any(|p| p["kind"] == "email" && p["value"] == "ana@example.com"),
        "{cust}"
    );
    // Personal data stays out of the log.
    let log = s.log();
    assert!(
        !log.to_lowercase().contains("ana@example.com"),
        "email in the log"
    );
    assert!(!log.contains("I need help"), "message text in the log");
}

#[tokio::test]
async fn a_running_chat_keeps_its_flow_version_while_a_new_one_is_saved() {
    let dir = TempDir::new("chat-flow-versions");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let def = |v: &str| {
        json!({"start": "m", "nodes": {
            "m": {"type": "menu", "prompt": format!("{v} menu"), "options": [{"key": "1", "label": "Go", "next": "s"}]},
            "s": {"type": "say", "text": format!("{v} chosen"), "next": "q"},
            "q": {"type": "queue", "queue": "support"}
        }})
    };
    let f = sup
        .post(
            "/api/v1/flows",
            json!({"name": "versioned", "definition": def("v1")}),
        )
        .await
        .expect(201);
    let id = f["id"].as_str().expect("id");
    let mut old = Customer::hello(&s, json!({"flow": "versioned"})).await;
    old.say("first chat").await;
    old.bot_says("v1 menu").await;
    sup.put(
        &format!("/api/v1/flows/{id}"),
        json!({"definition": def("v2")}),
    )
    .await
    .expect(200);
    // A new chat runs version 2 at once...
    let mut new = Customer::hello(&s, json!({"flow": "versioned"})).await;
    new.say("second chat").await;
    new.bot_says("v2 menu").await;
    // ...while the running one finishes version 1.
    old.say("1").await;
    old.bot_says("v1 chosen").await;
    new.say("1").await;
    new.bot_says("v2 chosen").await;
    for (subject, version) in [("first chat", 1), ("second chat", 2)] {
        let it = chat_by_subject(&sup, subject).await;
        let it = sup
            .wait_for(it["id"].as_str().expect("id"), |v| v["state"] == "queued")
            .await;
        let started = it["events"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["type"] == "flow.started")
            .cloned()
            .expect("flow.started");
        assert_eq!(started["data"]["version"], version, "{subject}");
    }
}

#[tokio::test]
async fn a_chat_in_its_flow_starts_it_again_after_a_restart() {
    let dir = TempDir::new("chat-flow-restart");
    let s = Server::start(&dir.0);
    let mut c = Customer::hello(&s, json!({})).await;
    let session = c.welcome["session"].as_str().expect("session").to_owned();
    c.say("before the crash").await;
    c.menu().await;
    s.kill9();

    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let mut c = Customer::hello(&s, json!({"session": session})).await;
    assert_eq!(c.welcome["interaction"]["state"], "flow");
    // The flow starts over (same version) and asks again.
    let menu = c.menu().await;
    assert_eq!(menu["prompt"], "What can we help you with?");
    c.say("1").await;
    c.status("queued").await;
    let it = chat_by_subject(&sup, "before the crash").await;
    let it = sup
        .wait_for(it["id"].as_str().expect("id"), |v| v["state"] == "queued")
        .await;
    assert_eq!(it["queue_id"], queue_id(&sup, "sales").await);
    let types = event_types(&it);
    assert!(types.iter().any(|t| t == "flow.resumed"), "{types:?}");
}
