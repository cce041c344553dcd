//! The `/api/v1/events` WebSocket against the real server: what supervisors and agents see, the
//! message shape and order, authentication before the upgrade, and clients that misbehave.

mod common;
mod helpers;

use common::{Server, TempDir, send};
use futures_util::StreamExt;
use helpers::{Events, about, id_of};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(5);

/// Checks the wire shape of one event and returns its seq.
#[track_caller]
fn check_shape(e: &Value, tenant: &str) -> i64 {
    let keys: Vec<&str> = e
        .as_object()
        .unwrap_or_else(|| panic!("an object: {e}"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["at", "data", "seq", "tenant", "type"], "{e}");
    assert!(e["type"].as_str().is_some_and(|t| t.contains('.')), "{e}");
    assert_eq!(e["tenant"], tenant, "{e}");
    assert!(e["data"].is_object(), "{e}");
    e["at"]
        .as_str()
        .expect("at")
        .parse::<jiff::Timestamp>()
        .expect("at is RFC 3339");
    e["seq"].as_i64().expect("seq is a number")
}

#[track_caller]
fn assert_increasing(events: &[Value], tenant: &str) {
    let seqs: Vec<i64> = events.iter().map(|e| check_shape(e, tenant)).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq strictly increases: {seqs:?}"
    );
}

#[tokio::test]
async fn a_supervisor_sees_the_whole_flow_in_order() {
    let dir = TempDir::new("ws-supervisor");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let tenant = sup.user["tenant"].as_str().expect("tenant").to_owned();
    let agent = s.login("agent1", "agent").await;
    let me = agent.agent_id();
    let mut ev = Events::connect(&s, &sup.token).await;

    agent.set_state("available").await;
    let t = id_of(&sup.task("support", "watch me").await);
    agent
        .post(&format!("/api/v1/interactions/{t}/accept"), json!({}))
        .await
        .expect(200);

    let got = ev
        .until(WAIT, |e| about(e, "interaction.accepted", &t))
        .await;
    assert_increasing(&got, &tenant);
    let types: Vec<&str> = got
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "agent.state_changed",
            "interaction.created",
            "interaction.queued",
            "interaction.offered",
            "interaction.accepted",
        ]
    );
    assert_eq!(got[0]["data"]["agent_id"], me);
    assert_eq!(got[0]["data"]["state"], "available");
    for e in &got[1..] {
        assert_eq!(e["data"]["interaction_id"], t, "{e}");
    }
    assert_eq!(got[1]["data"]["channel"], "task");
    assert_eq!(got[1]["data"]["subject"], "watch me");
    assert_eq!(got[3]["data"]["agent_id"], me);
    assert!(got[3]["data"]["expires_at"].is_string());
    assert_eq!(got[4]["data"]["state"], "connected");

    // the stream and the interaction's stored events are the same log
    let stored = sup
        .get(&format!("/api/v1/interactions/{t}"))
        .await
        .expect(200);
    let stored_seqs: Vec<&Value> = stored["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["seq"])
        .collect();
    let streamed_seqs: Vec<&Value> = got[1..].iter().map(|e| &e["seq"]).collect();
    assert_eq!(stored_seqs, streamed_seqs);
}

#[tokio::test]
async fn an_agent_sees_only_its_own_offers() {
    let dir = TempDir::new("ws-agent");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let tenant = sup.user["tenant"].as_str().expect("tenant").to_owned();
    let a1 = s.login("agent1", "agent").await;
    let a2 = s.login("agent2", "agent").await;
    let (id1, id2) = (a1.agent_id(), a2.agent_id());
    let mut ev1 = Events::connect(&s, &a1.token).await;
    let mut ev2 = Events::connect(&s, &a2.token).await;

    a1.set_state("available").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    a2.set_state("available").await;
    // the longest idle gets the first; the least loaded the second
    let t1 = sup.task("support", "for agent1").await;
    assert_eq!(t1["agent_id"], id1.as_str());
    let t2 = sup.task("support", "for agent2").await;
    assert_eq!(t2["agent_id"], id2.as_str());
    let (t1, t2) = (id_of(&t1), id_of(&t2));
    // each accepts its own offer; then a break ends what we read (taken after accepting, since
    // an agent who leaves with an offer pending hands it back)
    a1.post(&format!("/api/v1/interactions/{t1}/accept"), json!({}))
        .await
        .expect(200);
    a2.post(&format!("/api/v1/interactions/{t2}/accept"), json!({}))
        .await
        .expect(200);
    a1.set_state("break").await;
    a2.set_state("break").await;

    for (ev, me, mine, theirs, other) in [
        (&mut ev1, &id1, &t1, &t2, &id2),
        (&mut ev2, &id2, &t2, &t1, &id1),
    ] {
        let got = ev
            .until(WAIT, |e| {
                e["type"] == "agent.state_changed" && e["data"]["state"] == "break"
            })
            .await;
        assert_increasing(&got, &tenant);
        let types: Vec<&str> = got
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            types,
            [
                "agent.state_changed",
                "interaction.offered",
                "interaction.accepted",
                "agent.state_changed"
            ],
            "{got:?}"
        );
        assert_eq!(got[1]["data"]["interaction_id"], mine.as_str());
        assert_eq!(got[2]["data"]["interaction_id"], mine.as_str());
        for e in &got {
            assert_eq!(e["data"]["agent_id"], me.as_str(), "only own events: {e}");
            assert_ne!(e["data"]["interaction_id"], theirs.as_str(), "{e}");
            assert_ne!(e["data"]["agent_id"], other.as_str(), "{e}");
        }
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_upgrade() {
    let dir = TempDir::new("ws-auth");
    let s = Server::start(&dir.0);
    let refused = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("expected an HTTP refusal, got {e}"),
            Ok(_) => panic!("the upgrade was accepted"),
        }
    };
    assert_eq!(refused(s.ws_url("/api/v1/events")).await, 401);
    assert_eq!(refused(s.ws_url("/api/v1/events?token=nope")).await, 401);
    assert_eq!(refused(s.ws_url("/api/v1/events?token=")).await, 401);

    // a token that was good but is logged out
    let sup = s.login("supervisor", "supervisor").await;
    let ok = Events::connect(&s, &sup.token).await;
    drop(ok);
    sup.post("/api/v1/auth/logout", json!({})).await.expect(204);
    assert_eq!(
        refused(s.ws_url(&format!("/api/v1/events?token={}", sup.token))).await,
        401
    );

    // the header works as well as the query
    let admin = s.login("admin", "admin").await;
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(s.ws_url("/api/v1/events"))
            .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", admin.token).parse().expect("header"),
    );
    let (_ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade with the header");
    assert_eq!(resp.status(), 101);
}

#[tokio::test]
async fn events_without_an_upgrade_get_a_json_error() {
    let dir = TempDir::new("ws-noupgrade");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let r = send(s.http.get(s.url("/api/v1/events")).bearer_auth(&sup.token)).await;
    assert!(matches!(r.status, 400 | 426), "status {}", r.status);
    assert!(
        r.body["error"]["code"].is_string(),
        "JSON error body expected, got {}",
        r.body
    );
}

#[tokio::test]
async fn clients_sending_junk_do_not_break_the_server() {
    let dir = TempDir::new("ws-junk");
    let s = Server::start(&dir.0);
    let sup = s.login("supervisor", "supervisor").await;
    let tenant = sup.user["tenant"].as_str().expect("tenant").to_owned();
    let mut ev = Events::connect(&s, &sup.token).await;

    // frames the one-way stream does not expect: ignored, the stream goes on
    ev.send(Message::Text("not json".into())).await;
    ev.send(Message::Text(
        "{\"type\":\"subscribe\",\"all\":true}".into(),
    ))
    .await;
    ev.send(Message::Binary(vec![0u8, 159, 146, 150, 255].into()))
        .await;
    ev.send(Message::Ping(b"hello".to_vec().into())).await;
    let t = id_of(&sup.task("support", "still flowing").await);
    let got = ev
        .until(WAIT, |e| about(e, "interaction.created", &t))
        .await;
    assert_increasing(&got, &tenant);
    let last_seq = got.last().expect("one event")["seq"].as_i64().expect("seq");

    // an oversized frame: that client is dropped, nobody else
    let mut big = Events::connect(&s, &sup.token).await;
    big.send(Message::Text("x".repeat(200 * 1024).into())).await;
    loop {
        match tokio::time::timeout(WAIT, big.ws.next()).await {
            Err(_) => panic!("the oversized client is still connected"),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(m))) => assert!(!m.is_text(), "no events for it: {m:?}"),
        }
    }

    // raw bytes that are no WebSocket frame at all, then a vanished client
    let mut raw = Events::connect(&s, &sup.token).await;
    match raw.ws.get_mut() {
        MaybeTlsStream::Plain(tcp) => {
            tcp.write_all(b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n\x00\x01")
                .await
                .expect("write junk");
        }
        _ => unreachable!("plain TCP in tests"),
    }
    drop(raw);
    let gone = Events::connect(&s, &sup.token).await;
    drop(gone);

    // the server is fine, and the well-behaved stream still gets everything in order
    send(s.http.get(s.url("/healthz"))).await.expect(200);
    let t2 = id_of(&sup.task("support", "after the junk").await);
    let got = ev
        .until(WAIT, |e| about(e, "interaction.created", &t2))
        .await;
    assert_increasing(&got, &tenant);
    // nothing repeated, nothing lost: the rest of the first task's events, then the second's
    assert!(got[0]["seq"].as_i64().expect("seq") > last_seq, "{got:?}");
    let types: Vec<&str> = got
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "interaction.queued",
            "interaction.estimated_wait",
            "interaction.created"
        ],
        "{got:?}"
    );
    assert_eq!(got[0]["data"]["interaction_id"], t);
    let fresh = Events::connect(&s, &sup.token).await;
    drop(fresh);
}

#[tokio::test]
async fn a_logged_out_session_stops_receiving_events() {
    let dir = TempDir::new("ws-logout");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let sup = s.login("supervisor", "supervisor").await;
    let mut ev = Events::connect(&s, &sup.token).await;
    sup.post("/api/v1/auth/logout", json!({})).await.expect(204);
    let t = id_of(&admin.task("support", "after logout").await);
    // closing the stream, or at least sending nothing more, would both do
    if let Some(e) = ev.next(Duration::from_secs(2)).await {
        panic!("a logged-out stream received {e} (task {t})");
    }
}
