//! Calls through the B2BUA, end to end against the real binary with real SIP peers (SIPp from
//! Debian's sip-tester): agents' phones register with digest authentication and answer as SIPp
//! UAS scenarios; callers are SIPp UACs on the demo trunk (127.0.0.1) dialling the demo number
//! 1001 (queue support). The interactions, their events and timings are checked through the API.
//! SIPp missing is a failure, not a skip: `./scripts/test.sh` installs it.

mod common;
mod helpers;
mod sipkit;

use common::{Server, Session, TempDir, event_types};
use helpers::events_of;
use serde_json::Value;
use sipkit::{Phone, scenario, sipp};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Registers `user`'s phone (password `agent`, the demo's) from a fresh UDP port of 127.0.0.1
/// and gives the port back, free for the SIPp phone that takes over the registration.
fn register_phone(sip: SocketAddr, user: &str) -> u16 {
    let mut phone = Phone::of(user, "127.0.0.1", sip);
    let r = phone.register_sha256("agent");
    assert_eq!(r.status.as_u16(), 200, "{user} registers: {r:?}");
    phone.socket.local_addr().expect("local").port()
}

/// A SIPp phone on `port` running `scenario_name` for `calls` calls.
fn spawn_phone(scenario_name: &str, port: u16, calls: u32, work: &Path) -> Child {
    spawn_phone_with(scenario_name, port, calls, work, &[])
}

/// [`spawn_phone`] with scenario keywords (`-key NAME VALUE`).
fn spawn_phone_with(
    scenario_name: &str,
    port: u16,
    calls: u32,
    work: &Path,
    keys: &[(&str, &str)],
) -> Child {
    let mut cmd = Command::new("sipp");
    for (k, v) in keys {
        cmd.args(["-key", k, v]);
    }
    cmd.arg("-sf")
        .arg(scenario(scenario_name))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .args(["-m", &calls.to_string(), "-timeout", "60s", "-trace_err"])
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipp (Debian package sip-tester; ./scripts/test.sh installs it)")
}

/// SIPp's error logs in `work`.
fn sipp_errors(work: &Path) -> String {
    let mut logs = String::new();
    for entry in std::fs::read_dir(work).expect("work dir").flatten() {
        let p = entry.path();
        if p.to_string_lossy().ends_with("_errors.log") {
            logs += &format!(
                "--- {}\n{}\n",
                p.display(),
                std::fs::read_to_string(&p).unwrap_or_default()
            );
        }
    }
    logs
}

/// Waits for a SIPp phone to finish its calls; panics unless all succeeded.
fn finish_phone(mut child: Child, what: &str, work: &Path) {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "{what} failed ({status}):\n{}",
                sipp_errors(work)
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("{what} did not finish within 30 s");
}

async fn available(s: &Server, user: &str) -> Session {
    let a = s.login(user, "agent").await;
    a.set_state("available").await;
    a
}

/// Voice interactions, oldest first.
async fn calls(admin: &Session) -> Vec<Value> {
    let list = admin
        .get("/api/v1/interactions?channel=voice&limit=200")
        .await
        .expect(200);
    let mut items = list.as_array().cloned().unwrap_or_default();
    items.sort_by(|a, b| {
        a["created_at"]
            .as_str()
            .cmp(&b["created_at"].as_str())
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    items
}

async fn queue_id(admin: &Session, name: &str) -> String {
    admin
        .get("/api/v1/queues")
        .await
        .expect(200)
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .and_then(|q| q["id"].as_str())
        .expect("queue")
        .to_owned()
}

/// The id of the first voice interaction, once it is connected.
async fn first_connected(admin: &Session) -> String {
    loop {
        if let Some(c) = calls(admin).await.first()
            && c["state"] == "connected"
        {
            return c["id"].as_str().expect("id").to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn seconds(e: &Value, key: &str) -> f64 {
    e["data"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {e}"))
}

#[tokio::test]
async fn a_call_is_queued_offered_to_the_agents_phone_connected_and_ended() {
    let dir = TempDir::new("voice-call");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-call-logs");
    let admin = s.login("admin", "admin").await;
    // Thirty seconds of wrap-up after a call, to give the disposition in.
    let support = queue_id(&admin, "support").await;
    admin
        .patch(
            &format!("/api/v1/queues/{support}"),
            serde_json::json!({"wrap_up_s": 30}),
        )
        .await
        .expect(200);
    let agent = available(&s, "agent1").await;

    let port = register_phone(sip, "agent1");
    let phone = spawn_phone("agent_answer.xml", port, 1, &work.0);
    sipp(
        sip,
        "caller.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "1000"],
        &work.0,
    );
    finish_phone(
        phone,
        "agent1's phone (answers, then gets the BYE)",
        &work.0,
    );

    let list = calls(&admin).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let it = admin.wait_for(&id, |v| v["state"] == "wrap_up").await;
    // The demo's support queue records every call (voice_media.rs checks the file); its
    // events interleave with the call's, and so may the call's `call.quality` (voice_media.rs
    // checks it), which comes when the media task has stopped.
    assert!(
        event_types(&it).iter().any(|t| t == "recording.started"),
        "{}",
        it["events"]
    );
    assert_eq!(
        event_types(&it)
            .iter()
            .filter(|t| {
                t.as_str() != "interaction.estimated_wait"
                    && !t.starts_with("recording.")
                    && t.as_str() != "call.quality"
            })
            .cloned()
            .collect::<Vec<_>>(),
        [
            "interaction.created",
            "interaction.queued",
            "interaction.offered",
            "interaction.accepted",
            "interaction.call_ended"
        ]
    );
    assert_eq!(it["queue_id"], support);
    assert_eq!(it["subject"], "Call from Caller 1 (+44207946001)");
    let accepted = &events_of(&it, "interaction.accepted")[0];
    assert_eq!(accepted["data"]["agent_id"], agent.agent_id());
    let ring = seconds(accepted, "ring_s");
    assert!((0.0..2.0).contains(&ring), "ring time {ring}");
    let ended = &events_of(&it, "interaction.call_ended")[0];
    assert_eq!(ended["data"]["by"], "caller");
    let talk = seconds(ended, "talk_s");
    assert!(
        (0.9..3.0).contains(&talk),
        "talk time {talk} for a 1 s call"
    );

    // The caller's number found (here: made) its customer.
    let customer = it["customer_id"].as_str().expect("customer");
    let c = admin
        .get(&format!("/api/v1/customers/{customer}"))
        .await
        .expect(200);
    assert!(
        c.to_string().contains("+44207946001"),
        "caller number as contact point: {c}"
    );

    // The agent gives the disposition after the call.
    agent.end(&id, "resolved").await.expect(200);
    let it = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    assert_eq!(it["disposition"], "resolved");
    assert!(event_types(&it).contains(&"interaction.disposition_set".to_string()));

    // A second call from the same number is the same customer (agent1 is in wrap-up: agent2
    // takes it).
    available(&s, "agent2").await;
    let port = register_phone(sip, "agent2");
    let phone = spawn_phone("agent_answer.xml", port, 1, &work.0);
    sipp(
        sip,
        "caller.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "200"],
        &work.0,
    );
    finish_phone(phone, "agent1's phone, second call", &work.0);
    let list = calls(&admin).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["customer_id"], list[0]["customer_id"]);
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_queued_is_abandoned_with_the_wait_recorded() {
    let dir = TempDir::new("voice-abandon");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-abandon-logs");
    let admin = s.login("admin", "admin").await;
    // Nobody is available: the caller waits 1.5 s, then gives up.
    sipp(
        sip,
        "caller_cancel.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "1500"],
        &work.0,
    );
    let list = calls(&admin).await;
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().expect("id");
    let it = admin.wait_for(id, |v| v["state"] == "ended").await;
    assert_eq!(it["disposition"], "abandoned");
    let abandoned = &events_of(&it, "interaction.abandoned")[0];
    let wait = seconds(abandoned, "wait_s");
    assert!((1.4..4.0).contains(&wait), "wait {wait} for a 1.5 s hold");
}

#[tokio::test]
async fn a_declined_call_goes_to_the_next_agent_and_the_decliner_to_break() {
    let dir = TempDir::new("voice-decline");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-decline-logs");
    let admin = s.login("admin", "admin").await;
    // agent1 has waited longest, so it is offered first; its phone declines.
    let a1 = available(&s, "agent1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let a2 = available(&s, "agent2").await;
    let p1 = register_phone(sip, "agent1");
    let p2 = register_phone(sip, "agent2");
    let decliner = spawn_phone("agent_reject.xml", p1, 1, &work.0);
    let answerer = spawn_phone("agent_answer.xml", p2, 1, &work.0);
    sipp(
        sip,
        "caller.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "300"],
        &work.0,
    );
    finish_phone(decliner, "agent1's phone (declines)", &work.0);
    finish_phone(answerer, "agent2's phone (answers)", &work.0);

    let list = calls(&admin).await;
    let id = list[0]["id"].as_str().expect("id");
    let it = admin.wait_for(id, |v| v["state"] != "connected").await;
    let offers: Vec<&Value> = events_of(&it, "interaction.offered");
    assert_eq!(offers[0]["data"]["agent_id"], a1.agent_id());
    let failed = &events_of(&it, "interaction.offer_failed")[0];
    assert_eq!(failed["data"]["reason"], "declined");
    assert_eq!(failed["data"]["sip_status"], 603);
    let accepted = &events_of(&it, "interaction.accepted")[0];
    assert_eq!(accepted["data"]["agent_id"], a2.agent_id());
    let state = admin
        .get(&format!("/api/v1/agents/{}/state", a1.agent_id()))
        .await
        .expect(200);
    assert_eq!(state["state"], "break", "{state}");
    assert_eq!(state["reason"], "missed_offer");
}

#[tokio::test]
async fn twenty_callers_and_three_agents_are_served_in_arrival_order() {
    let dir = TempDir::new("voice-twenty");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-twenty-logs");
    let admin = s.login("admin", "admin").await;
    let mut phones = Vec::new();
    for user in ["agent1", "agent2", "agent3"] {
        available(&s, user).await;
        let port = register_phone(sip, user);
        // Each phone may take every call; the router decides who gets which.
        phones.push((user, spawn_phone("agent_answer.xml", port, 20, &work.0)));
    }
    // 20 callers within one second, each talking 300 ms once connected.
    sipp(
        sip,
        "caller.xml",
        "127.0.0.1",
        &[
            "-s",
            "1001",
            "-m",
            "20",
            "-l",
            "20",
            "-r",
            "20",
            "-d",
            "300",
            "-recv_timeout",
            "30000",
        ],
        &work.0,
    );
    for (_, mut p) in phones {
        // The phones wait for more calls than they get: stop them.
        let _ = p.kill();
        let _ = p.wait();
    }
    let list = calls(&admin).await;
    assert_eq!(list.len(), 20);
    let mut offered = Vec::new();
    for it in &list {
        let id = it["id"].as_str().expect("id");
        let it = admin
            .wait_for(id, |v| v["state"] == "ended" || v["state"] == "wrap_up")
            .await;
        assert_eq!(
            events_of(&it, "interaction.accepted").len(),
            1,
            "every call answered once: {it}"
        );
        assert!(events_of(&it, "interaction.offer_failed").is_empty());
        let first_offer = events_of(&it, "interaction.offered")[0]["seq"]
            .as_i64()
            .expect("seq");
        offered.push((first_offer, id.to_owned()));
    }
    // Offers went out in the order the callers arrived.
    let arrival: Vec<String> = offered.iter().map(|(_, id)| id.clone()).collect();
    offered.sort();
    let by_offer: Vec<String> = offered.into_iter().map(|(_, id)| id).collect();
    assert_eq!(by_offer, arrival);
}

/// A SIPp caller dialling `did` in the background.
fn spawn_caller(
    sip: SocketAddr,
    scenario_name: &str,
    did: &str,
    hold_ms: u32,
    work: &Path,
) -> Child {
    Command::new("sipp")
        .arg("-sf")
        .arg(scenario(scenario_name))
        .args(["-i", "127.0.0.1", "-nostdin", "-m", "1", "-s", did])
        .args(["-d", &hold_ms.to_string(), "-timeout", "60s", "-trace_err"])
        .arg(sip.to_string())
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipp")
}

#[tokio::test]
async fn ending_a_call_from_the_desktop_hangs_up_both_phones() {
    let dir = TempDir::new("voice-api-end");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-api-end-logs");
    let admin = s.login("admin", "admin").await;
    let agent = available(&s, "agent1").await;
    let port = register_phone(sip, "agent1");
    let phone = spawn_phone("agent_answer.xml", port, 1, &work.0);
    let caller = spawn_caller(sip, "caller_hung_up.xml", "1001", 0, &work.0);
    let id = first_connected(&admin).await;
    agent.end(&id, "resolved").await.expect(200);
    finish_phone(caller, "the caller (gets the BYE)", &work.0);
    finish_phone(phone, "agent1's phone (gets the BYE)", &work.0);
    let it = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    assert_eq!(it["disposition"], "resolved");
}

/// What [`refer_and_answer`] leaves to check.
struct Referred {
    // Dropped in this order: the server stops before its directories go.
    _server: Server,
    _dirs: (TempDir, TempDir),
    admin: Session,
    /// The interaction, once it is no longer connected.
    it: Value,
    first: Session,
    second: Session,
}

/// agent1's phone answers a caller on 1000 and REFERs it to `target`; agent2's phone answers
/// next, and the caller hangs up.
async fn refer_and_answer(name: &str, target: &str) -> Referred {
    let dir = TempDir::new(name);
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new(&format!("{name}-logs"));
    let admin = s.login("admin", "admin").await;
    let first = available(&s, "agent1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = available(&s, "agent2").await;
    let transferor = spawn_phone_with(
        "agent_refer.xml",
        register_phone(sip, "agent1"),
        1,
        &work.0,
        &[("refer_to", target)],
    );
    let answerer = spawn_phone(
        "agent_answer.xml",
        register_phone(sip, "agent2"),
        1,
        &work.0,
    );
    let caller = spawn_caller(sip, "caller_transferred.xml", "1001", 2500, &work.0);
    finish_phone(transferor, "agent1's phone (REFER, NOTIFY, BYE)", &work.0);
    finish_phone(
        caller,
        "the caller (anchored: no re-INVITE, then BYE)",
        &work.0,
    );
    finish_phone(answerer, "agent2's phone", &work.0);
    let id = calls(&admin).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let accepted = events_of(&it, "interaction.accepted");
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1]["data"]["agent_id"], second.agent_id());
    assert_eq!(
        events_of(&it, "interaction.call_ended")[0]["data"]["by"],
        "caller"
    );
    Referred {
        _server: s,
        _dirs: (dir, work),
        admin,
        it,
        first,
        second,
    }
}

#[tokio::test]
async fn refer_from_the_agents_phone_transfers_the_caller_to_another_queue() {
    let r = refer_and_answer("voice-refer", "sales").await;
    let transferred = &events_of(&r.it, "interaction.transferred")[0];
    assert_eq!(transferred["data"]["from_agent_id"], r.first.agent_id());
    assert_eq!(
        transferred["data"]["to_queue_id"],
        queue_id(&r.admin, "sales").await
    );
}

#[tokio::test]
async fn refer_to_an_agent_rings_that_agents_phone_alone() {
    let r = refer_and_answer("voice-refer-agent", "agent2").await;
    let (a1, a2, it) = (&r.first, &r.second, &r.it);
    let transferred = &events_of(it, "interaction.transferred")[0];
    assert_eq!(transferred["data"]["from_agent_id"], a1.agent_id());
    assert_eq!(transferred["data"]["to_agent_id"], a2.agent_id());
    let offered = events_of(it, "interaction.offered");
    assert_eq!(offered.len(), 2);
    assert_eq!(offered[1]["data"]["agent_id"], a2.agent_id());
    assert_eq!(offered[1]["data"]["transfer"], true);
    // agent2 ends in wrap-up, not on break: the direct offer counted on it and was freed.
    let status = a2
        .get(&format!("/api/v1/agents/{}/state", a2.agent_id()))
        .await
        .expect(200);
    assert_ne!(status["state"], "break", "{status}");
}

#[tokio::test]
async fn the_api_transfers_a_call_to_an_agent_and_refuses_bad_targets() {
    let dir = TempDir::new("voice-api-transfer");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-api-transfer-logs");
    let admin = s.login("admin", "admin").await;
    let a1 = available(&s, "agent1").await;
    let first = spawn_phone(
        "agent_answer.xml",
        register_phone(sip, "agent1"),
        1,
        &work.0,
    );
    let second = spawn_phone(
        "agent_answer.xml",
        register_phone(sip, "agent2"),
        1,
        &work.0,
    );
    let caller = spawn_caller(sip, "caller_transferred.xml", "1001", 2500, &work.0);
    let id = first_connected(&admin).await;
    let path = format!("/api/v1/interactions/{id}/transfer");
    // agent2 is not available yet; both targets at once and none are malformed.
    let busy = a1.post(&path, serde_json::json!({"agent": "agent2"})).await;
    assert_eq!(busy.status, 409, "{:?}", busy.body);
    assert_eq!(busy.body["error"]["code"], "agent_unavailable");
    let both = a1
        .post(
            &path,
            serde_json::json!({"agent": "agent2", "queue": "sales"}),
        )
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.body["error"]["code"], "invalid_target");
    let nobody = a1.post(&path, serde_json::json!({"agent": "nobody"})).await;
    assert_eq!(nobody.status, 422);
    assert_eq!(nobody.body["error"]["code"], "unknown_agent");
    let myself = a1.post(&path, serde_json::json!({"agent": "agent1"})).await;
    assert_eq!(myself.status, 409);
    assert_eq!(myself.body["error"]["code"], "same_agent");

    let a2 = available(&s, "agent2").await;
    let it = a1
        .post(&path, serde_json::json!({"agent": "agent2"}))
        .await
        .expect(200);
    assert_eq!(it["state"], "offered");
    finish_phone(first, "agent1's phone (BYE after the transfer)", &work.0);
    finish_phone(caller, "the caller (re-INVITE with agent2)", &work.0);
    finish_phone(second, "agent2's phone", &work.0);
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let accepted = events_of(&it, "interaction.accepted");
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1]["data"]["agent_id"], a2.agent_id());
}

#[tokio::test]
async fn the_caller_is_the_asserted_identity_only_on_a_trusted_trunk() {
    let dir = TempDir::new("voice-pai");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-pai-logs");
    let admin = s.login("admin", "admin").await;
    let trunk = admin.get("/api/v1/voice/trunks").await.expect(200)[0].clone();
    assert_eq!(trunk["trust_identity"], true, "the demo trunk is loopback");
    let path = format!("/api/v1/voice/trunks/{}", trunk["id"].as_str().expect("id"));
    let caller_of = |v: &Value| v["attributes"]["caller"].as_str().map(str::to_owned);
    // Trusted: the asserted tel URI, normalised to E.164.
    sipp(
        sip,
        "caller_asserted.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "100"],
        &work.0,
    );
    let first = calls(&admin).await[0].clone();
    assert_eq!(caller_of(&first).as_deref(), Some("+442079460018"));
    // Untrusted: the header is ignored and From names the caller.
    let body = serde_json::json!({"name": trunk["name"], "allow": trunk["allow"], "trust_identity": false});
    let put = admin.put(&path, body).await.expect(200);
    assert_eq!(put["trust_identity"], false);
    sipp(
        sip,
        "caller_asserted.xml",
        "127.0.0.1",
        &["-s", "1001", "-m", "1", "-d", "100"],
        &work.0,
    );
    let list = calls(&admin).await;
    assert_eq!(list.len(), 2);
    assert_eq!(caller_of(&list[1]).as_deref(), Some("+155501001"));
    assert_ne!(list[1]["customer_id"], list[0]["customer_id"]);
}

/// Points the demo trunk's outbound side at a SIPp provider (`provider_challenge.xml`, digest
/// user `acct`, password `s3cret`) and starts it.
async fn outbound_provider(admin: &Session, work: &Path) -> Child {
    let port = free_udp_port();
    let trunk = admin.get("/api/v1/voice/trunks").await.expect(200)[0].clone();
    let body = serde_json::json!({
        "name": trunk["name"], "allow": trunk["allow"], "trust_identity": true,
        "outbound_uri": format!("sip:127.0.0.1:{port}"),
        "outbound_username": "acct", "outbound_password": "s3cret",
        "caller_id": "+442079460000",
    });
    let put = admin
        .put(
            &format!("/api/v1/voice/trunks/{}", trunk["id"].as_str().expect("id")),
            body,
        )
        .await
        .expect(200);
    assert_eq!(put["outbound_password_set"], true);
    assert!(put.get("outbound_password").is_none(), "{put}");
    let provider = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("provider_challenge.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .args(["-m", "1", "-timeout", "60s", "-trace_err", "-trace_logs"])
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipp");
    // SIPp binds its port before it reads the scenario's first message.
    std::thread::sleep(Duration::from_millis(200));
    provider
}

/// A UDP port of 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn the_api_transfers_a_call_out_through_the_trunk_answering_the_providers_challenge() {
    let dir = TempDir::new("voice-transfer-out");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-transfer-out-logs");
    let admin = s.login("admin", "admin").await;
    let agent = available(&s, "agent1").await;
    let phone = spawn_phone(
        "agent_answer.xml",
        register_phone(sip, "agent1"),
        1,
        &work.0,
    );
    let caller = spawn_caller(sip, "caller_transferred.xml", "1001", 2500, &work.0);
    let id = first_connected(&admin).await;
    let path = format!("/api/v1/interactions/{id}/transfer");
    // The demo trunk sends nothing out yet; a number must be a number.
    agent
        .post(&path, serde_json::json!({"number": "+442079460999"}))
        .await
        .expect_error(422, "no_outbound_trunk");
    agent
        .post(&path, serde_json::json!({"number": "call me"}))
        .await
        .expect_error(422, "invalid_number");

    let provider = outbound_provider(&admin, &work.0).await;
    let it = agent
        .post(&path, serde_json::json!({"number": "+44 20 7946 0999"}))
        .await
        .expect(200);
    assert_eq!(it["state"], "ended");
    assert_eq!(it["disposition"], "transferred");
    finish_phone(phone, "agent1's phone (BYE after the transfer)", &work.0);
    finish_phone(
        caller,
        "the caller (re-INVITE with the provider's answer, then BYE)",
        &work.0,
    );
    finish_phone(provider, "the provider (407, then 200 and BYE)", &work.0);

    let it = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    let transferred = &events_of(&it, "interaction.transferred")[0];
    assert_eq!(transferred["data"]["to_number"], "+442079460999");
    assert_eq!(transferred["data"]["from_agent_id"], agent.agent_id());

    assert_provider_authenticated(&work.0, "+442079460999");
}

/// The provider's retried INVITE (logged by `provider_challenge.xml`) went to `number` and
/// answered the challenge with the trunk's credentials (RFC 3261 22.2).
fn assert_provider_authenticated(work: &Path, number: &str) {
    use switchboard_sip::digest::{Algorithm, QopAuth, ha1, response_digest};
    let log = std::fs::read_dir(work)
        .expect("work dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_logs.log"))
        .map(|p| std::fs::read_to_string(p).expect("log"))
        .expect("the provider's log");
    let line = |tag: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("{tag} in {log}"))
            .trim()
            .to_owned()
    };
    let rline = line("RLINE ");
    let uri = rline.strip_prefix("INVITE ").expect("request line");
    assert!(uri.starts_with(&format!("sip:{number}@127.0.0.1")), "{uri}");
    let auth_text = line("AUTH ");
    let auth: switchboard_sip::Auth = auth_text
        .trim_start_matches("Proxy-Authorization:")
        .trim()
        .parse()
        .expect("an Authorization value");
    let p = |k: &str| {
        auth.param(k)
            .unwrap_or_else(|| panic!("{k} in {auth_text}"))
    };
    assert_eq!(p("username"), "acct");
    assert_eq!(p("realm"), "provider.example");
    assert_eq!(p("uri"), uri);
    let h = ha1(Algorithm::Md5, "acct", "provider.example", "s3cret");
    let (nc, cnonce) = (p("nc"), p("cnonce"));
    let expected = response_digest(
        Algorithm::Md5,
        &h,
        &p("nonce"),
        "INVITE",
        uri,
        Some(QopAuth {
            nc: &nc,
            cnonce: &cnonce,
        }),
    );
    assert_eq!(p("response"), expected);
}

#[tokio::test]
async fn refer_to_a_number_calls_it_out_through_the_trunk() {
    let dir = TempDir::new("voice-refer-out");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-refer-out-logs");
    let admin = s.login("admin", "admin").await;
    let agent = available(&s, "agent1").await;
    let provider = outbound_provider(&admin, &work.0).await;
    let transferor = spawn_phone_with(
        "agent_refer.xml",
        register_phone(sip, "agent1"),
        1,
        &work.0,
        &[("refer_to", "+442079460555")],
    );
    let caller = spawn_caller(sip, "caller_transferred.xml", "1001", 2500, &work.0);
    finish_phone(transferor, "agent1's phone (REFER, NOTIFY, BYE)", &work.0);
    finish_phone(
        caller,
        "the caller (re-INVITE with the provider's answer)",
        &work.0,
    );
    finish_phone(provider, "the provider (407, then 200 and BYE)", &work.0);
    let id = calls(&admin).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let it = admin.wait_for(&id, |v| v["state"] == "ended").await;
    assert_eq!(it["disposition"], "transferred");
    let transferred = &events_of(&it, "interaction.transferred")[0];
    assert_eq!(transferred["data"]["to_number"], "+442079460555");
    assert_eq!(transferred["data"]["from_agent_id"], agent.agent_id());
    assert_provider_authenticated(&work.0, "+442079460555");
}

#[tokio::test]
async fn click_to_dial_rings_the_agents_phone_then_calls_the_number_through_the_trunk() {
    let dir = TempDir::new("voice-dial");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-dial-logs");
    let admin = s.login("admin", "admin").await;
    let supervisor = s.login("supervisor", "supervisor").await;
    let agent = available(&s, "agent1").await;
    // Without an outbound trunk, with a bad number, or for another agent: refused.
    agent
        .post("/api/v1/calls", serde_json::json!({"to": "+442079460777"}))
        .await
        .expect_error(422, "no_outbound_trunk");
    let provider = outbound_provider(&admin, &work.0).await;
    agent
        .post("/api/v1/calls", serde_json::json!({"to": "nobody"}))
        .await
        .expect_error(422, "invalid_number");
    agent
        .post(
            "/api/v1/calls",
            serde_json::json!({"to": "+442079460777", "agent": "agent2"}),
        )
        .await
        .expect_error(403, "forbidden");
    supervisor
        .post("/api/v1/calls", serde_json::json!({"to": "+442079460777"}))
        .await
        .expect_error(422, "unknown_agent");

    let phone = spawn_phone(
        "agent_dialed.xml",
        register_phone(sip, "agent1"),
        1,
        &work.0,
    );
    let it = agent
        .post(
            "/api/v1/calls",
            serde_json::json!({"to": "+44 20 7946 0777"}),
        )
        .await
        .expect(201);
    assert_eq!(it["channel"], "voice");
    assert_eq!(it["state"], "offered");
    assert_eq!(it["agent_id"], agent.agent_id());
    assert_eq!(it["attributes"]["direction"], "outbound");
    assert_eq!(it["attributes"]["to"], "+442079460777");
    let customer = it["customer_id"].as_str().expect("the number's customer");
    finish_phone(
        phone,
        "agent1's phone (no SDP, answer in the ACK, BYE)",
        &work.0,
    );
    finish_phone(provider, "the provider (407, then 200 and BYE)", &work.0);
    let id = it["id"].as_str().expect("id");
    let it = admin
        .wait_for(id, |v| v["state"] == "wrap_up" || v["state"] == "ended")
        .await;
    assert_eq!(events_of(&it, "interaction.accepted").len(), 1);
    assert_eq!(
        events_of(&it, "interaction.call_ended")[0]["data"]["by"],
        "agent"
    );
    assert_provider_authenticated(&work.0, "+442079460777");
    // The same number again is the same customer.
    let c = admin
        .get(&format!("/api/v1/customers/{customer}"))
        .await
        .expect(200);
    assert_eq!(c["contact_points"][0]["value"], "+442079460777");
}

#[tokio::test]
async fn a_click_to_dial_the_agents_phone_declines_ends_not_answered() {
    let dir = TempDir::new("voice-dial-declined");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip address");
    let work = TempDir::new("voice-dial-declined-logs");
    let admin = s.login("admin", "admin").await;
    let supervisor = s.login("supervisor", "supervisor").await;
    let agent = available(&s, "agent1").await;
    // Never called: the phone declines first.
    let mut provider = outbound_provider(&admin, &work.0).await;
    let phone = spawn_phone(
        "agent_reject.xml",
        register_phone(sip, "agent1"),
        1,
        &work.0,
    );
    let it = supervisor
        .post(
            "/api/v1/calls",
            serde_json::json!({"to": "+442079460777", "agent": "agent1"}),
        )
        .await
        .expect(201);
    assert_eq!(it["agent_id"], agent.agent_id());
    finish_phone(phone, "agent1's phone (603)", &work.0);
    let id = it["id"].as_str().expect("id");
    let it = admin.wait_for(id, |v| v["state"] == "ended").await;
    assert_eq!(it["disposition"], "not_answered");
    // The agent is not put on break for its own call, and is free again.
    let state = agent
        .get(&format!("/api/v1/agents/{}/state", agent.agent_id()))
        .await
        .expect(200);
    assert_eq!(state["state"], "available", "{state}");
    assert_eq!(state["load"], serde_json::json!({}), "{state}");
    let _ = provider.kill();
    let _ = provider.wait();
}
