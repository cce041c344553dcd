//! `switchboard bench webhooks`: inbound provider webhooks against a server that is already
//! running. It logs in as an admin, creates a WhatsApp Cloud API channel account (its sends go
//! to a local sink the bench runs, so nothing leaves the machine), then `--connections` HTTP
//! clients post `--messages` correctly signed WhatsApp message webhooks (`X-Hub-Signature-256`)
//! from `--senders` distinct numbers, each on one kept-alive connection, as fast as the server
//! answers. The server answers `200` only after the message is stored (a new customer and
//! interaction queued on a sender's first message, a message of the same conversation after
//! that), so accepted webhooks per second is the durable intake rate. At the end every
//! `--duplicates`-th webhook is delivered again, as providers do, and must be answered `200`
//! without storing anything twice. Reported: webhooks accepted and refused, webhooks/s, and the
//! latency to `200` p50/p99/max.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of `switchboard bench webhooks`.
#[derive(Debug, clap::Args)]
pub struct WebhookBenchArgs {
    /// The server's HTTP address (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// An admin's login.
    #[arg(long, default_value = "admin")]
    username: String,
    /// The admin's password.
    #[arg(long, default_value = "admin")]
    password: String,
    /// The queue new conversations wait in.
    #[arg(long, default_value = "support")]
    queue: String,
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Webhooks in all.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Distinct senders (customers); each one's later messages join its conversation.
    #[arg(long, default_value_t = 2_000)]
    senders: usize,
    /// Every n-th webhook is delivered a second time at the end (0: none).
    #[arg(long, default_value_t = 20)]
    duplicates: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(a: WebhookBenchArgs) -> ExitCode {
    crate::bench::block_on("webhooks", bench(a))
}

/// The app secret the bench's account is created with.
const APP_SECRET: &str = "bench-app-secret";

/// `sha256=<hex HMAC-SHA256 of body>`, Meta's webhook signature.
fn signature(body: &[u8]) -> String {
    let hex = crate::messaging::providers::hmac_sha256_hex(APP_SECRET.as_bytes(), body);
    format!("sha256={hex}")
}

/// The `i`-th webhook: a text message from sender `i % senders`.
fn webhook(run: &str, i: usize, senders: usize) -> Vec<u8> {
    let from = format!("1555{:07}", i % senders.max(1));
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA-BENCH", "changes": [{
    "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550009999", "phone_number_id": "PN-BENCH"},
        "contacts": [{"profile": {"name": format!("Bench {}", i % senders.max(1))}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.{run}.{i}"), "timestamp": "1700000000",
            "type": "text", "text": {"body": format!("Where is order {i}? سفارش من کجاست؟")}}]
    }}]}]})
    .to_string()
    .into_bytes()
}

/// A sink for the account's sends (acknowledgements, read marks): answers every request with a
/// WhatsApp-shaped success, so nothing goes out of the machine and nothing retries.
async fn sink() -> anyhow::Result<SocketAddr> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let body = r#"{"messages":[{"id":"wamid.sink"}]}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Creates the bench's WhatsApp account; its webhook URL.
async fn account(
    a: &WebhookBenchArgs,
    http: &reqwest::Client,
    run: &str,
) -> anyhow::Result<String> {
    let base = format!("http://{}", a.server);
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": a.username, "password": a.password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in the login answer: {login}"))?;
    let sink = sink().await?;
    let r = http
        .post(format!("{base}/api/v1/channel-accounts"))
        .bearer_auth(token)
        .json(&json!({
            "provider": "whatsapp", "name": format!("bench webhooks {run}"), "queue": a.queue,
            "base_url": format!("http://{sink}"),
            "settings": {"phone_number_id": "PN-BENCH"},
            "secrets": {"access_token": "bench", "app_secret": APP_SECRET, "verify_token": "bench"},
        }))
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "creating the account: {status} {v}");
    let path = v["webhook_path"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no webhook_path in {v}"))?;
    Ok(format!("{base}{path}"))
}

/// Posts one webhook; its latency, or why it failed.
async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<Duration, String> {
    let sig = signature(&body);
    let t = Instant::now();
    let r = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if status.as_u16() != 200 {
        return Err(format!("{status} {text}"));
    }
    Ok(t.elapsed())
}

async fn bench(a: WebhookBenchArgs) -> anyhow::Result<bool> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let run = format!("{}-{}", std::process::id(), since_epoch.as_millis());
    let setup = reqwest::Client::new();
    let url = Arc::new(account(&a, &setup, &run).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..a.connections.max(1) {
        let (url, next, run) = (url.clone(), next.clone(), run.clone());
        let (messages, senders) = (a.messages, a.senders);
        set.spawn(async move {
            // One kept-alive connection per worker, like a provider's delivery pool.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?;
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages {
                    break;
                }
                match post(&http, &url, webhook(&run, i, senders)).await {
                    Ok(d) => lat.push(d),
                    Err(e) => errors.push(e),
                }
            }
            Ok::<_, String>((lat, errors))
        });
    }
    let mut lat = Vec::with_capacity(a.messages);
    let mut refused = 0usize;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((l, errors))) => {
                lat.extend(l);
                for e in errors.iter().take(3) {
                    eprintln!("switchboard bench webhooks: refused: {e}");
                }
                refused += errors.len();
            }
            Ok(Err(e)) => anyhow::bail!("a client could not start: {e}"),
            Err(e) => anyhow::bail!("a client failed: {e}"),
        }
    }
    let elapsed = started.elapsed();
    // Deliveries again: answered 200, stored once (the server's id check).
    let mut again_failed = 0usize;
    let mut again = 0usize;
    if a.duplicates > 0 {
        for i in (0..a.messages).step_by(a.duplicates) {
            again += 1;
            if post(&setup, &url, webhook(&run, i, a.senders))
                .await
                .is_err()
            {
                again_failed += 1;
            }
        }
    }
    lat.sort();
    let accepted = lat.len();
    let rate = accepted as f64 / elapsed.as_secs_f64().max(1e-9);
    let pct = |p: f64| crate::bench::percentile(&lat, p).as_secs_f64() * 1000.0;
    if a.json {
        println!(
            "{}",
            json!({"accepted": accepted, "refused": refused, "seconds": elapsed.as_secs_f64(),
                   "webhooks_per_s": rate, "connections": a.connections, "senders": a.senders,
                   "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
                   "redelivered": again, "redelivered_refused": again_failed})
        );
    } else {
        println!(
            "webhooks: {accepted} accepted, {refused} refused in {:.1} s over {} connections from {} senders",
            elapsed.as_secs_f64(),
            a.connections,
            a.senders
        );
        println!("throughput: {rate:.0} webhooks/s (stored before the 200)");
        println!(
            "latency to 200: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        println!("redelivered: {again}, refused {again_failed} (each must be 200 and stored once)");
    }
    Ok(refused == 0 && again_failed == 0 && accepted == a.messages)
}
