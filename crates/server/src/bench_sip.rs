//! `switchboard bench sip`: a call-setup load run against a server that is already running,
//! with real SIP peers from SIPp (Debian's sip-tester).
//!
//! It creates `--agents` agents with SIP accounts through the API (or reuses them), puts them
//! on `available`, registers all their phones from one UDP port and hands that port to one
//! SIPp process that answers every call (the agents' phones); then a second SIPp process calls
//! `--number` at `--rate` calls per second for `--duration-s` seconds. Each call goes through
//! the whole path: trunk INVITE → interaction created and queued → router offer → INVITE to the
//! agent's phone → 200 → accepted → 200 to the caller → ACK → BYE on both legs → wrap-up.
//! Reported: calls set up and failed, the caller's setup time (INVITE sent to 200 received,
//! from SIPp's response-time trace) p50/p99/max, and the server's CPU use over the run.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use serde_json::{Value, json};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use switchboard_sip::digest::Challenge;
use switchboard_sip::{Method, StatusCode, parse};

/// Arguments of `switchboard bench sip`.
#[derive(Debug, clap::Args)]
pub struct SipBenchArgs {
    /// The server's HTTP address (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// The server's SIP address (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:5060")]
    sip: SocketAddr,
    /// Admin login of the tenant.
    #[arg(long, default_value = "admin")]
    username: String,
    /// Its password.
    #[arg(long, default_value = "admin")]
    password: String,
    /// The number (DID) to call; the trunk must allow 127.0.0.1. The demo's 1001 goes straight
    /// to support (1000 runs the IVR first).
    #[arg(long, default_value = "1001")]
    number: String,
    /// Agents answering. Each agent's turn (ring, answer, accept, BYE on both legs, back to
    /// available) takes about 150 ms on a loaded 2-core machine, so 40 agents cap the run
    /// near 260 calls/s and the queue, not the server, sets the setup time: 200 leave headroom
    /// at 300 calls/s.
    #[arg(long, default_value_t = 200)]
    agents: usize,
    /// Calls per second.
    #[arg(long, default_value_t = 300)]
    rate: u32,
    /// Seconds of calling.
    #[arg(long, default_value_t = 20)]
    duration_s: u32,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark (blocking).
pub fn run(a: SipBenchArgs) -> ExitCode {
    match bench(a) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("switchboard bench sip: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One HTTP/1.1 request with a JSON body; returns status and JSON (Null when none).
fn http(
    server: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // Chunked bodies (axum's default for streamed bodies) are de-chunked crudely: the JSON is
    // the text between the first `{`/`[` and the last `}`/`]`.
    let json_text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let start = rest.find(['{', '[']).unwrap_or(0);
        let end = rest.rfind(['}', ']']).map(|e| e + 1).unwrap_or(rest.len());
        &rest[start..end.max(start)]
    } else {
        rest
    };
    Ok((
        status,
        serde_json::from_str(json_text).unwrap_or(Value::Null),
    ))
}

fn expect(r: (u16, Value), ok: &[u16], what: &str) -> anyhow::Result<Value> {
    if ok.contains(&r.0) {
        Ok(r.1)
    } else {
        anyhow::bail!("{what}: HTTP {} {}", r.0, r.1)
    }
}

const PHONE_PASSWORD: &str = "bench-phone-password";

/// Creates (or finds) the bench agents, gives them SIP accounts and makes them available;
/// returns their usernames and realm.
fn prepare_agents(a: &SipBenchArgs, token: &str) -> anyhow::Result<(Vec<String>, String)> {
    let skills = expect(
        http(a.server, "GET", "/api/v1/skills", Some(token), None)?,
        &[200],
        "list skills",
    )?;
    let skills: Vec<Value> = skills
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| json!({"skill": s["id"], "level": 5}))
        .collect();
    let existing = expect(
        http(a.server, "GET", "/api/v1/agents", Some(token), None)?,
        &[200],
        "list agents",
    )?;
    let mut users = Vec::new();
    let mut realm = String::new();
    for i in 1..=a.agents {
        let name = format!("bench-sip-{i}");
        let id = match existing
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == name.as_str())
        {
            Some(x) => x["id"].clone(),
            None => {
                let body = json!({
                    "username": name, "password": "bench-agent-password", "name": name,
                    "skills": skills, "capacity": {"per_channel": {"voice": 1}},
                });
                expect(
                    http(a.server, "POST", "/api/v1/agents", Some(token), Some(&body))?,
                    &[201],
                    "create agent",
                )?["id"]
                    .clone()
            }
        };
        let id = id.as_str().unwrap_or_default().to_owned();
        let sip = expect(
            http(
                a.server,
                "PUT",
                &format!("/api/v1/agents/{id}/sip"),
                Some(token),
                Some(&json!({"password": PHONE_PASSWORD, "username": name})),
            )?,
            &[200],
            "set SIP account",
        )?;
        realm = sip["realm"].as_str().unwrap_or_default().to_owned();
        expect(
            http(
                a.server,
                "PUT",
                &format!("/api/v1/agents/{id}/state"),
                Some(token),
                Some(&json!({"state": "available"})),
            )?,
            &[200],
            "set available",
        )?;
        users.push(name);
    }
    Ok((users, realm))
}

/// Sends `text` and waits for the final response of its CSeq, retransmitting.
fn transact(
    sock: &UdpSocket,
    to: SocketAddr,
    text: &str,
) -> anyhow::Result<switchboard_sip::Response> {
    let want = parse(text.as_bytes())?;
    let call_id = want.headers().call_id()?.to_owned();
    let cseq = want.headers().cseq()?.seq;
    let mut buf = vec![0u8; 65_535];
    for _ in 0..10 {
        sock.send_to(text.as_bytes(), to)?;
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if let Ok(m) = parse(&buf[..n])
                && let Some(r) = m.as_response()
                && r.headers.call_id().is_ok_and(|c| c == call_id)
                && r.headers.cseq().is_ok_and(|c| c.seq == cseq)
                && r.status.is_final()
            {
                return Ok(r.clone());
            }
        }
    }
    anyhow::bail!("no answer to REGISTER from {to}")
}

/// Registers every agent's phone from one UDP port of 127.0.0.1; returns the port.
fn register_all(sip: SocketAddr, users: &[String], realm: &str) -> anyhow::Result<u16> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let local = sock.local_addr()?;
    for (i, user) in users.iter().enumerate() {
        let request = |n: u32, extra: &str| {
            format!(
                "REGISTER sip:{realm} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKbench{i}x{n}\r\n\
                 From: <sip:{user}@{realm}>;tag=b{i}\r\nTo: <sip:{user}@{realm}>\r\n\
                 Call-ID: bench-{i}@{local}\r\nCSeq: {n} REGISTER\r\nMax-Forwards: 70\r\n\
                 Contact: <sip:{user}@{local}>\r\nExpires: 3600\r\n{extra}Content-Length: 0\r\n\r\n"
            )
        };
        let first = transact(&sock, sip, &request(1, ""))?;
        if first.status != StatusCode::UNAUTHORIZED {
            anyhow::bail!("REGISTER of {user}: expected 401, got {}", first.status);
        }
        let ch = first
            .headers
            .www_authenticate()?
            .iter()
            .find_map(Challenge::from_auth)
            .ok_or_else(|| anyhow::anyhow!("no digest challenge"))?;
        let auth = ch.authorize(
            user,
            PHONE_PASSWORD,
            &Method::Register,
            &format!("sip:{realm}"),
            "bench",
            1,
        );
        let ok = transact(
            &sock,
            sip,
            &request(2, &format!("Authorization: {auth}\r\n")),
        )?;
        if ok.status != StatusCode::OK {
            anyhow::bail!("REGISTER of {user}: {}", ok.status);
        }
    }
    Ok(local.port())
}

fn server_cpu_seconds(server: SocketAddr) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server)?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    text.lines()
        .find_map(|l| l.strip_prefix("switchboard_process_cpu_seconds_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!("the server's /metrics has no switchboard_process_cpu_seconds_total")
        })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The cumulative figure of a line of SIPp's final screen (`Successful call | 0 | 9000`).
fn sipp_count(screen: &str, label: &str) -> u64 {
    screen
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn bench(a: SipBenchArgs) -> anyhow::Result<bool> {
    let login = expect(
        http(
            a.server,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": a.username, "password": a.password})),
        )?,
        &[200],
        "log in",
    )?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in {login}"))?
        .to_owned();
    let (users, realm) = prepare_agents(&a, &token)?;
    let port = register_all(a.sip, &users, &realm)?;
    let work = std::env::temp_dir().join(format!("switchboard-bench-sip-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let answer = work.join("agent_answer.xml");
    let caller = work.join("caller.xml");
    std::fs::write(&answer, include_str!("../tests/sipp/agent_answer.xml"))?;
    std::fs::write(&caller, include_str!("../tests/sipp/caller.xml"))?;
    let calls = u64::from(a.rate) * u64::from(a.duration_s);
    let sipp = |dir: &Path| {
        let mut c = Command::new("sipp");
        c.current_dir(dir).stdin(Stdio::null());
        c
    };
    let mut phones = sipp(&work)
        .arg("-sf")
        .arg(&answer)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .args(["-m", &calls.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run sipp (Debian package sip-tester): {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = server_cpu_seconds(a.server)?;
    let started = Instant::now();
    let out = sipp(&work)
        .arg("-sf")
        .arg(&caller)
        .args(["-i", "127.0.0.1", "-nostdin", "-s", &a.number])
        .args(["-r", &a.rate.to_string(), "-m", &calls.to_string()])
        .args([
            "-d",
            "0",
            "-recv_timeout",
            "10000",
            "-trace_rtt",
            "-rtt_freq",
            "1",
        ])
        .arg(a.sip.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()?;
    let elapsed = started.elapsed();
    // Let the last wrap-ups settle before reading the CPU counter.
    std::thread::sleep(Duration::from_millis(200));
    let cpu = server_cpu_seconds(a.server)? - cpu_before;
    let _ = phones.kill();
    let _ = phones.wait();
    let screen = String::from_utf8_lossy(&out.stdout).to_string();
    let ok = sipp_count(&screen, "Successful call");
    let failed = sipp_count(&screen, "Failed call");
    let mut rtd: Vec<f64> = Vec::new();
    for entry in std::fs::read_dir(&work)?.flatten() {
        if entry.file_name().to_string_lossy().ends_with("_rtt.csv") {
            let text = std::fs::read_to_string(entry.path())?;
            rtd.extend(
                text.lines()
                    .skip(1)
                    .filter_map(|l| l.split(';').nth(1))
                    .filter_map(|v| v.trim().parse::<f64>().ok()),
            );
        }
    }
    rtd.sort_by(f64::total_cmp);
    let secs = elapsed.as_secs_f64();
    let report = json!({
        "calls": calls, "successful": ok, "failed": failed,
        "rate_asked": a.rate, "rate_achieved": (ok as f64 / secs * 10.0).round() / 10.0,
        "agents": a.agents, "elapsed_s": (secs * 10.0).round() / 10.0,
        "setup_ms": {
            "p50": percentile(&rtd, 50.0), "p99": percentile(&rtd, 99.0),
            "max": rtd.last().copied().unwrap_or(0.0), "samples": rtd.len(),
        },
        "server_cpu_percent": (cpu / secs * 1000.0).round() / 10.0,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "calls: {ok} set up and ended, {failed} failed (asked {calls} at {} /s; achieved {} /s over {:.1} s)",
            a.rate, report["rate_achieved"], secs
        );
        println!(
            "setup time (INVITE to 200): p50 {} ms, p99 {} ms, max {} ms ({} samples)",
            report["setup_ms"]["p50"],
            report["setup_ms"]["p99"],
            report["setup_ms"]["max"],
            rtd.len()
        );
        println!(
            "server CPU: {}% of one core on average",
            report["server_cpu_percent"]
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(failed == 0 && ok == calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipp_screen_counts_and_percentiles() {
        let screen = "  Successful call        |        0                  |        42      \n\
                      Failed call            |        0                  |        3        ";
        assert_eq!(sipp_count(screen, "Successful call"), 42);
        assert_eq!(sipp_count(screen, "Failed call"), 3);
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 99.0), 4.0);
    }
}
