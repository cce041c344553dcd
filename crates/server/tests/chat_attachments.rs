//! Chat attachments end to end against the real binary: a customer uploads files within the
//! `[chat]` limits, sends them in a message, the agent downloads them; whatever breaks the
//! limits is refused with a clear error, and nobody else can fetch them.

mod common;

use common::{Server, TempDir};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

async fn next(ws: &mut Ws, ty: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
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

/// A customer's socket after `hello`, with its session token.
async fn customer(s: &Server, name: &str) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/chat/ws"))
        .await
        .expect("connect");
    send(
        &mut ws,
        json!({"type": "hello", "tenant": "demo", "queue": "support", "name": name}),
    )
    .await;
    let w = next(&mut ws, "welcome").await;
    let token = w["session"].as_str().expect("session").to_owned();
    (ws, token)
}

/// Uploads `body` as `content_type`; returns status and JSON.
async fn upload(
    s: &Server,
    token: Option<&str>,
    tenant: &str,
    name: &str,
    content_type: &str,
    body: Vec<u8>,
) -> common::Resp {
    let mut req = reqwest::Client::new()
        .post(s.url(&format!(
            "/chat/attachments?{}",
            query(&[("tenant", tenant), ("name", name)])
        )))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    common::send(req).await
}

fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..2000u32).map(|i| (i % 251) as u8));
    b
}

#[tokio::test]
async fn a_customer_sends_files_within_the_limits_and_only_the_right_people_get_them() {
    let dir = TempDir::new("attach");
    let s = Server::start(&dir.0);
    let agent = s.login("agent1", "agent").await;
    agent.set_state("available").await;
    let (mut ws, token) = customer(&s, "Sara").await;

    // refused: no session, a tenant that does not exist, a type not allowed, content that is
    // not what it claims, an empty file, a file over the limit (10 MB by default)
    upload(&s, None, "demo", "a.png", "image/png", png())
        .await
        .expect_error(401, "unauthorized");
    upload(&s, Some(&token), "nope", "a.png", "image/png", png())
        .await
        .expect_error(404, "not_found");
    upload(
        &s,
        Some(&token),
        "demo",
        "page.html",
        "text/html",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await
    .expect_error(422, "attachment_type_not_allowed");
    upload(
        &s,
        Some(&token),
        "demo",
        "fake.png",
        "image/png",
        b"<html><script>alert(1)</script></html>".to_vec(),
    )
    .await
    .expect_error(422, "attachment_content_mismatch");
    upload(&s, Some(&token), "demo", "e.txt", "text/plain", Vec::new())
        .await
        .expect_error(400, "empty_attachment");
    upload(
        &s,
        Some(&token),
        "demo",
        "big.pdf",
        "application/pdf",
        vec![b'%'; 11 * 1024 * 1024],
    )
    .await
    .expect_error(413, "attachment_too_large");

    // accepted: a picture with a Persian name (a path in it is dropped) and a PDF
    let pic = upload(
        &s,
        Some(&token),
        "demo",
        "C:\\Users\\sara\\رسید.png",
        "image/png",
        png(),
    )
    .await
    .expect(201);
    assert_eq!(pic["name"], "رسید.png");
    assert_eq!(pic["content_type"], "image/png");
    assert_eq!(pic["size"], png().len());
    let pdf_bytes = b"%PDF-1.4 invoice".to_vec();
    let pdf = upload(
        &s,
        Some(&token),
        "demo",
        "invoice.pdf",
        "application/pdf",
        pdf_bytes.clone(),
    )
    .await
    .expect(201);
    let (pic_id, pdf_id) = (
        pic["id"].as_str().expect("id").to_owned(),
        pdf["id"].as_str().expect("id").to_owned(),
    );

    // the files go out in one message, with or without text
    send(
        &mut ws,
        json!({"type": "message", "text": "", "client_id": "f1", "attachments": [pic_id, pdf_id]}),
    )
    .await;
    let status = next(&mut ws, "status").await;
    let id = status["interaction_id"].as_str().expect("id").to_owned();
    let echo = next(&mut ws, "message").await;
    assert_eq!(echo["attachments"].as_array().map(Vec::len), Some(2));
    assert_eq!(echo["attachments"][0]["name"], "رسید.png");
    assert_eq!(echo["attachments"][1]["id"], pdf_id.as_str());

    // a file already sent cannot be sent again; an unknown one neither
    send(
        &mut ws,
        json!({"type": "message", "text": "again", "attachments": [pic_id]}),
    )
    .await;
    assert_eq!(next(&mut ws, "error").await["code"], "unknown_attachment");
    send(
        &mut ws,
        json!({"type": "message", "text": "x", "attachments": ["00000000-0000-0000-0000-000000000000"]}),
    )
    .await;
    assert_eq!(next(&mut ws, "error").await["code"], "unknown_attachment");

    // the agent sees and downloads them once the chat is theirs
    let it = agent.wait_for(&id, |v| v["state"] == "offered").await;
    assert_eq!(it["channel"], "chat");
    agent
        .post(&format!("/api/v1/interactions/{id}/accept"), json!({}))
        .await
        .expect(200);
    let msgs = agent
        .get(&format!("/api/v1/interactions/{id}/messages"))
        .await
        .expect(200);
    assert_eq!(msgs[0]["attachments"][1]["name"], "invoice.pdf");
    let http = reqwest::Client::new();
    let r = http
        .get(s.url(&format!("/api/v1/interactions/{id}/attachments/{pdf_id}")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment;")
    );
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), pdf_bytes);

    // the customer gets them back by session; another customer, another agent and a wrong
    // pairing of interaction and file get 404
    let mine = http
        .get(s.url(&format!(
            "/chat/attachments/{pic_id}?{}",
            query(&[("tenant", "demo"), ("session", token.as_str())])
        )))
        .send()
        .await
        .expect("download");
    assert_eq!(mine.status(), 200);
    assert!(
        mine.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("inline;")
    );
    assert_eq!(mine.bytes().await.expect("bytes").to_vec(), png());
    let (_other_ws, other) = customer(&s, "Mallory").await;
    let theirs = http
        .get(s.url(&format!(
            "/chat/attachments/{pic_id}?{}",
            query(&[("tenant", "demo"), ("session", other.as_str())])
        )))
        .send()
        .await
        .expect("download");
    assert_eq!(theirs.status(), 404);
    let agent2 = s.login("agent2", "agent").await;
    agent2
        .get(&format!("/api/v1/interactions/{id}/attachments/{pdf_id}"))
        .await
        .expect_error(404, "not_found");
    let sup = s.login("supervisor", "supervisor").await;
    let task = sup.task("support", "unrelated").await;
    sup.get(&format!(
        "/api/v1/interactions/{}/attachments/{pdf_id}",
        task["id"].as_str().expect("id")
    ))
    .await
    .expect_error(404, "not_found");
    // a supervisor may read it
    let r = http
        .get(s.url(&format!("/api/v1/interactions/{id}/attachments/{pic_id}")))
        .bearer_auth(&sup.token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("bytes").len(), png().len());

    // the agent answers with a file of their own (uploaded on the staff side): the customer
    // gets it in the message frame and downloads it by session
    let up = common::send(
        http.post(s.url("/api/v1/attachments?name=label.png"))
            .bearer_auth(&agent.token)
            .header("Content-Type", "image/png")
            .body(png()),
    )
    .await
    .expect(201);
    let label = up["id"].as_str().expect("id").to_owned();
    agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "Here is your label", "attachments": [label]}),
        )
        .await
        .expect(201);
    let frame = loop {
        let f = next(&mut ws, "message").await;
        if f["text"] == "Here is your label" {
            break f;
        }
    };
    assert_eq!(frame["attachments"][0]["name"], "label.png", "{frame}");
    let got = http
        .get(s.url(&format!(
            "/chat/attachments/{label}?{}",
            query(&[("tenant", "demo"), ("session", token.as_str())])
        )))
        .send()
        .await
        .expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), png());
}
