//! `switchboard bench chat`: a load generator for the web chat channel, run against a server
//! that is already running (on this machine: it spreads connections over loopback source
//! addresses 127.1.x.y, since the server admits 20 chat sockets per address).
//!
//! It opens `--connections` customer sockets (each says `hello` and sends a first message, which
//! creates its chat interaction), reads the server's resident memory from `/metrics` before and
//! after to report memory per idle connection, then sends messages at `--rate` per second for
//! `--duration-s` and measures each message's latency from send to the server's echo (the echo
//! comes after the message is stored, so it is the durable delivery time).
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

/// Arguments of `switchboard bench chat`.
#[derive(Debug, clap::Args)]
pub struct ChatBenchArgs {
    /// The server's HTTP address (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// Tenant slug.
    #[arg(long, default_value = "demo")]
    tenant: String,
    /// Queue name.
    #[arg(long, default_value = "support")]
    queue: String,
    /// Customer connections to hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Messages per second across all connections.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Connections per source address (the server's per-address limit).
    #[arg(long, default_value_t = 20)]
    per_address: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Which command of `switchboard bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Many concurrent chat customers exchanging messages.
    Chat(ChatBenchArgs),
    /// Calls set up through trunk, queue and agents' phones at a given rate (SIPp).
    Sip(crate::bench_sip::SipBenchArgs),
    /// Inbound mail over SMTP: mails accepted (parsed, threaded, stored, queued) per second.
    Email(crate::bench_email::EmailBenchArgs),
    /// Provider webhooks (WhatsApp, signed): webhooks stored per second.
    Webhooks(crate::bench_webhooks::WebhookBenchArgs),
    /// G.711 streams both ways through the media relay (and rtpengine, to compare).
    Rtp(crate::bench_rtp::RtpBenchArgs),
    /// The relay process `bench rtp` starts.
    #[command(hide = true)]
    RtpRelay(crate::bench_rtp::RtpRelayArgs),
}

/// Runs `switchboard bench ...`.
pub fn run(cmd: BenchCommand) -> ExitCode {
    match cmd {
        BenchCommand::Chat(args) => block_on("chat", async { chat(args).await.map(|()| true) }),
        BenchCommand::Sip(args) => crate::bench_sip::run(args),
        BenchCommand::Email(args) => crate::bench_email::run(args),
        BenchCommand::Webhooks(args) => crate::bench_webhooks::run(args),
        BenchCommand::Rtp(args) => crate::bench_rtp::run(args),
        BenchCommand::RtpRelay(args) => crate::bench_rtp::relay(args),
    }
}

/// Runs benchmark `name` on a new runtime: success when it finished and its figures met its
/// own checks (`Ok(true)`); failure with the error printed otherwise.
pub(crate) fn block_on(
    name: &str,
    bench: impl std::future::Future<Output = anyhow::Result<bool>>,
) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard bench {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bench) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("switchboard bench {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's resident memory, from its `/metrics`.
async fn server_rss(server: SocketAddr) -> anyhow::Result<f64> {
    let text = http_get(server, "/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix("switchboard_process_resident_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!("the server's /metrics has no switchboard_process_resident_bytes")
        })
}

async fn http_get(server: SocketAddr, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    Message,
>;

/// Opens one customer: connect from `source`, hello, first message; returns its sink.
async fn open(
    server: SocketAddr,
    source: Ipv4Addr,
    tenant: &str,
    queue: &str,
    n: usize,
    pending: Arc<Mutex<HashMap<String, Instant>>>,
    done: mpsc::UnboundedSender<Duration>,
) -> anyhow::Result<Sink> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source.into(), 0))?;
    let stream = sock.connect(server).await?;
    let url = format!("ws://{server}/chat/ws");
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Text(
        json!({"type": "hello", "tenant": tenant, "queue": queue, "name": format!("bench {n}")})
            .to_string()
            .into(),
    ))
    .await?;
    // Wait for the welcome, then start the conversation (creates the interaction).
    loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"welcome\"") => break,
            Some(Ok(_)) => continue,
            _ => anyhow::bail!("connection {n} closed before welcome"),
        }
    }
    tx.send(Message::Text(
        json!({"type": "message", "text": "hello", "client_id": format!("first-{n}")})
            .to_string()
            .into(),
    ))
    .await?;
    loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"first-") => break,
            Some(Ok(Message::Text(t))) if t.contains("\"error\"") => {
                anyhow::bail!("connection {n}: {t}")
            }
            Some(Ok(_)) => continue,
            _ => anyhow::bail!("connection {n} closed before its first echo"),
        }
    }
    // From now on, echoes of timed messages report their latency.
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let Message::Text(t) = m else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&t) else {
                continue;
            };
            if v["type"] == "message"
                && let Some(cid) = v["client_id"].as_str()
                && let Some(sent) = pending.lock().await.remove(cid)
            {
                let _ = done.send(sent.elapsed());
            }
        }
    });
    Ok(tx)
}

fn source_address(i: usize, per_address: usize) -> Ipv4Addr {
    let a = i / per_address.max(1);
    Ipv4Addr::new(127, 1, (a / 250) as u8, (a % 250 + 1) as u8)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn chat(a: ChatBenchArgs) -> anyhow::Result<()> {
    let rss_before = server_rss(a.server).await?;
    let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let failures = Arc::new(AtomicU64::new(0));
    let mut sinks = Vec::with_capacity(a.connections);
    // Open in waves so the server's accept queue is not flooded.
    for wave in (0..a.connections).collect::<Vec<_>>().chunks(200) {
        let mut set = tokio::task::JoinSet::new();
        for &i in wave {
            let (tenant, queue, pending, done) = (
                a.tenant.clone(),
                a.queue.clone(),
                pending.clone(),
                done_tx.clone(),
            );
            let server = a.server;
            let source = source_address(i, a.per_address);
            set.spawn(async move { open(server, source, &tenant, &queue, i, pending, done).await });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(sink)) => sinks.push(sink),
                Ok(Err(e)) => {
                    if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("connection failed: {e:#}");
                    }
                }
                Err(e) => eprintln!("connection task failed: {e}"),
            }
        }
        if !a.json {
            eprint!("\r{} connections open", sinks.len());
        }
    }
    let connect_time = started.elapsed();
    if !a.json {
        eprintln!();
    }
    anyhow::ensure!(!sinks.is_empty(), "no connection could be opened");
    // Let the server settle, then measure memory with every connection idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = server_rss(a.server).await?;
    let per_conn = (rss_idle - rss_before) / sinks.len() as f64;

    // Sending phase: one message every 1/rate seconds to a round-robin connection.
    let total = a.rate * a.duration_s;
    let interval = Duration::from_secs_f64(1.0 / a.rate.max(1) as f64);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let send_start = Instant::now();
    let mut sent = 0u64;
    let mut send_errors = 0u64;
    let n = sinks.len();
    while sent < total {
        tick.tick().await;
        let cid = format!("b{sent}");
        let frame =
            json!({"type": "message", "text": format!("bench message {sent}"), "client_id": cid})
                .to_string();
        pending.lock().await.insert(cid, Instant::now());
        if sinks[(sent as usize) % n]
            .send(Message::Text(frame.into()))
            .await
            .is_err()
        {
            send_errors += 1;
        }
        sent += 1;
    }
    let send_elapsed = send_start.elapsed();
    // Collect latencies until every message is answered or 10 s pass.
    drop(done_tx);
    let mut lat = Vec::with_capacity(total as usize);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (lat.len() as u64) < sent - send_errors {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(d)) => lat.push(d),
            _ => break,
        }
    }
    lat.sort();
    let lost = sent - send_errors - lat.len() as u64;
    let report = json!({
        "connections": n,
        "connection_failures": failures.load(Ordering::Relaxed),
        "connect_time_s": connect_time.as_secs_f64(),
        "server_rss_before_mib": rss_before / 1048576.0,
        "server_rss_idle_mib": rss_idle / 1048576.0,
        "memory_per_idle_connection_kib": per_conn / 1024.0,
        "messages_sent": sent,
        "send_rate_per_s": sent as f64 / send_elapsed.as_secs_f64(),
        "messages_unanswered": lost,
        "send_errors": send_errors,
        "latency_p50_ms": percentile(&lat, 0.50).as_secs_f64() * 1000.0,
        "latency_p99_ms": percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        "latency_max_ms": lat.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "connections held        {n} ({} failed), opened in {:.1} s",
            failures.load(Ordering::Relaxed),
            connect_time.as_secs_f64()
        );
        println!(
            "server memory           {:.1} MiB before, {:.1} MiB with all idle: {:.1} KiB per connection",
            rss_before / 1048576.0,
            rss_idle / 1048576.0,
            per_conn / 1024.0
        );
        println!(
            "messages                {sent} sent at {:.0}/s, {lost} unanswered, {send_errors} send errors",
            sent as f64 / send_elapsed.as_secs_f64()
        );
        println!(
            "echo latency            p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&lat, 0.50).as_secs_f64() * 1000.0,
            percentile(&lat, 0.99).as_secs_f64() * 1000.0,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_and_percentiles_pick_the_rank() {
        assert_eq!(source_address(0, 20), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_address(19, 20), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_address(20, 20), Ipv4Addr::new(127, 1, 0, 2));
        assert_eq!(source_address(20 * 250, 20), Ipv4Addr::new(127, 1, 1, 1));
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }
}
