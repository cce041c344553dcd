//! Registrar end to end, against the real binary: SIPp (Debian's sip-tester) registers as
//! agent1 with digest auth over UDP and TCP, a SIPp password scanner is blocked while a phone
//! on another address still registers, and hostile bytes over UDP and TCP (truncated, huge,
//! random, 10 000 wrong passwords) leave the server answering OPTIONS and registering phones.
//! SIPp missing is a failure, not a skip: `./scripts/test.sh` installs it.

mod common;
mod sipkit;

use common::{Server, TempDir};
use serde_json::json;
use sipkit::{Phone, REALM, scenario, sipp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use switchboard_sip::digest::Challenge;
use switchboard_sip::{Method, StatusCode, parse};

/// The value of a metric line (`name{labels} value`), 0 when absent.
async fn metric(s: &Server, line_start: &str) -> f64 {
    let text = s.metrics().await;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn sipp_registers_and_a_password_scanner_is_blocked() {
    let dir = TempDir::new("voice-sipp");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("server printed sip=HOST:PORT");
    let work = TempDir::new("voice-sipp-logs");

    // agent1 registers with digest auth (401, then 200 with contact and expiry) and
    // unregisters, over UDP and over TCP.
    sipp(sip, "register.xml", "127.0.0.1", &["-m", "1"], &work.0);
    sipp(
        sip,
        "register.xml",
        "127.0.0.1",
        &["-m", "1", "-t", "t1"],
        &work.0,
    );
    assert_eq!(metric(&s, "switchboard_sip_registrations").await, 0.0);
    assert!(
        metric(
            &s,
            "switchboard_sip_messages_total{direction=\"in\",method=\"REGISTER\"}"
        )
        .await
            >= 8.0
    );

    // A scanner on 127.0.0.1 guesses passwords: every guess gets 403, and after ten the
    // source is blocked (a plain REGISTER gets 403 instead of a challenge) and it is logged.
    sipp(
        sip,
        "register_wrong.xml",
        "127.0.0.1",
        &["-m", "20", "-l", "20", "-r", "100"],
        &work.0,
    );
    sipp(
        sip,
        "register_blocked.xml",
        "127.0.0.1",
        &["-m", "1"],
        &work.0,
    );
    assert_eq!(
        metric(&s, "switchboard_sip_auth_failures_total").await,
        10.0
    );
    assert_eq!(metric(&s, "switchboard_sip_auth_blocks_total").await, 1.0);
    assert!(metric(&s, "switchboard_sip_auth_refused_total").await >= 1.0);
    assert!(
        s.log()
            .contains("SIP authentication blocked after repeated failures"),
        "the block is logged"
    );

    // Meanwhile agent1's phone on another address registers fine.
    sipp(sip, "register.xml", "127.0.0.2", &["-m", "1"], &work.0);
}

#[tokio::test]
async fn hostile_input_leaves_the_server_serving() {
    let dir = TempDir::new("voice-hostile");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("server printed sip=HOST:PORT");
    let mut phone = Phone::new("127.0.0.1", sip);
    phone.options_ok();

    // Garbage over UDP: random bytes, a truncated request, a body shorter than its
    // Content-Length, a 60 KB header, an empty datagram, a keep-alive.
    let attacker = Phone::new("127.0.0.5", sip);
    let mut seed: u64 = 0x5eed;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect()
    };
    for len in [1, 17, 512, 1400, 9000] {
        attacker.send(&random(len));
    }
    let full = phone.request("REGISTER", "");
    attacker.send(&full.as_bytes()[..full.len() / 2]);
    attacker.send(
        full.replace("Content-Length: 0", "Content-Length: 500")
            .as_bytes(),
    );
    let huge = full.replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nX-Huge: {}\r\n", "a".repeat(60_000)),
    );
    attacker.send(huge.as_bytes());
    let many = full.replace("Max-Forwards: 70\r\n", &"X-Many: 1\r\n".repeat(3000));
    attacker.send(many.as_bytes());
    attacker.send(b"");
    attacker.send(b"\r\n\r\n");
    attacker.send(b"SIP/2.0 200 OK\r\n\r\n");
    phone.options_ok();

    // A phone registers with SHA-256.
    let ok = phone.register_sha256("agent");
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    let contact = ok
        .headers
        .get(&"Contact".into())
        .expect("contact")
        .to_owned();
    assert!(contact.ends_with(";expires=3600"), "{contact}");
    assert_eq!(metric(&s, "switchboard_sip_registrations").await, 1.0);

    // 10 000 REGISTERs with wrong passwords from one address, as fast as the socket goes.
    let scanner = Phone::new("127.0.0.3", sip);
    let challenge = {
        let mut p = Phone::new("127.0.0.3", sip);
        let req = p.request("REGISTER", "");
        let r = p.transact(&req);
        Challenge::from_auth(&r.headers.www_authenticate().expect("challenge")[0]).expect("digest")
    };
    for i in 0..10_000u32 {
        let auth = challenge.authorize(
            "agent1",
            &format!("guess{i}"),
            &Method::Register,
            &format!("sip:{REALM}"),
            "c",
            i + 1,
        );
        let text = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:9;branch=z9hG4bKscan{i}\r\n\
             From: <sip:agent1@{REALM}>;tag=s{i}\r\nTo: <sip:agent1@{REALM}>\r\n\
             Call-ID: scan{i}\r\nCSeq: 1 REGISTER\r\nAuthorization: {auth}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        scanner.send(text.as_bytes());
    }
    // The server keeps serving the good phone meanwhile and afterwards.
    phone.options_ok();
    let again = phone.register_sha256("agent");
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        metric(&s, "switchboard_sip_auth_failures_total").await,
        10.0
    );
    assert!(metric(&s, "switchboard_sip_auth_refused_total").await >= 1.0);

    // TCP: an unparsable frame keeps the connection; an endless header closes it.
    let mut tcp = TcpStream::connect(sip).expect("tcp");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    tcp.write_all(b"hello there\r\n\r\n").expect("write");
    let options = phone
        .request("OPTIONS", "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    tcp.write_all(options.as_bytes()).expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).expect("an answer over TCP");
    let r = parse(&buf[..n]).expect("response parses");
    assert_eq!(r.as_response().expect("response").status, StatusCode::OK);
    let mut flood = TcpStream::connect(sip).expect("tcp");
    flood
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = flood.write_all(&vec![b'a'; 100_000]);
    assert!(
        matches!(flood.read(&mut buf), Ok(0) | Err(_)),
        "a frame over the size limit closes the connection"
    );
    phone.options_ok();
    assert_eq!(
        s.http
            .get(s.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
}

#[tokio::test]
async fn an_admin_sets_an_agents_sip_password_and_the_phone_registers_with_it() {
    let dir = TempDir::new("voice-account");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("server printed sip=HOST:PORT");
    let work = TempDir::new("voice-account-logs");
    let admin = s.login("admin", "admin").await;
    let agent = s.login("agent2", "agent").await;
    let id = agent.user["agent_id"]
        .as_str()
        .expect("agent id")
        .to_owned();

    // an agent reads its own account, not a colleague's; only admins change it
    let own = agent
        .get(&format!("/api/v1/agents/{id}/sip"))
        .await
        .expect(200);
    assert_eq!(own["username"], "agent2");
    assert_eq!(own["realm"], "demo.switchboard.local");
    assert!(own.get("password").is_none() && !own.to_string().contains("ha1"));
    agent
        .put(
            &format!("/api/v1/agents/{id}/sip"),
            json!({"password": "new-phone-secret"}),
        )
        .await
        .expect_error(403, "forbidden");
    admin
        .put(
            &format!("/api/v1/agents/{id}/sip"),
            json!({"password": "short"}),
        )
        .await
        .expect_error(422, "invalid_value");
    let set = admin
        .put(
            &format!("/api/v1/agents/{id}/sip"),
            json!({"password": "new-phone-secret"}),
        )
        .await
        .expect(200);
    assert_eq!(set["username"], "agent2");

    // the phone registers with the new password at once (no restart) ...
    assert!(
        register_as(sip, "agent2", "new-phone-secret", "127.0.0.1", &work.0),
        "new password accepted"
    );
    // ... and no longer with the old one
    assert!(
        !register_as(sip, "agent2", "agent", "127.0.0.3", &work.0),
        "the old password must be refused"
    );

    // removing the account stops registration
    admin
        .delete(&format!("/api/v1/agents/{id}/sip"))
        .await
        .expect(204);
    admin
        .get(&format!("/api/v1/agents/{id}/sip"))
        .await
        .expect_error(404, "not_found");
}

/// Registers `user` with `password` from `local_ip` with SIPp (the scenario rendered from its
/// template); whether it succeeded.
fn register_as(
    server: SocketAddr,
    user: &str,
    password: &str,
    local_ip: &str,
    work: &Path,
) -> bool {
    let template = std::fs::read_to_string(scenario("register_as.xml.template")).expect("template");
    let file = work.join(format!("register_as_{user}_{local_ip}.xml"));
    std::fs::write(
        &file,
        template
            .replace("{{USER}}", user)
            .replace("{{PASSWORD}}", password),
    )
    .expect("scenario");
    Command::new("sipp")
        .arg("-sf")
        .arg(&file)
        .args([
            "-i",
            local_ip,
            "-nostdin",
            "-m",
            "1",
            "-timeout",
            "10s",
            "-recv_timeout",
            "4000",
        ])
        .arg(server.to_string())
        .current_dir(work)
        .output()
        .expect("run sipp (Debian package sip-tester; ./scripts/test.sh installs it)")
        .status
        .success()
}
