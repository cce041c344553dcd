//! `switchboard bench email`: inbound mail throughput against a server that is already
//! running. `--connections` SMTP clients each send `--messages / --connections` mails of about
//! `--size` bytes (multipart/alternative text + HTML, a Persian subject) to `--to`, one
//! transaction after the other on one connection (MAIL, RCPT and DATA pipelined, RFC 2920).
//! The server answers `250` only after the mail is parsed, threaded and stored with its
//! interaction queued, so accepted mails per second is the durable intake rate. Every
//! `--reply-every`-th mail answers the previous one of its connection (In-Reply-To), so
//! threading is exercised too. Reported: mails accepted and refused, mails/s, and the
//! per-mail latency (DATA end to 250) p50/p99/max.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use serde_json::json;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Arguments of `switchboard bench email`.
#[derive(Debug, clap::Args)]
pub struct EmailBenchArgs {
    /// The server's SMTP address (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: SocketAddr,
    /// The recipient (an address the server receives for).
    #[arg(long, default_value = "support@demo.example")]
    to: String,
    /// Concurrent SMTP connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Mails in all.
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    /// Approximate size of each mail in bytes.
    #[arg(long, default_value_t = 20_000)]
    size: usize,
    /// Every n-th mail of a connection replies to its previous one (0: never).
    #[arg(long, default_value_t = 4)]
    reply_every: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(a: EmailBenchArgs) -> ExitCode {
    crate::bench::block_on("email", bench(a))
}

/// A mail of about `size` bytes.
fn mail(conn: usize, i: usize, to: &str, size: usize, reply_to: Option<&str>) -> (String, Vec<u8>) {
    let id = format!("bench-{conn}-{i}-{}@load.test", std::process::id());
    let mut m = format!(
        "From: Bench {conn} <bench{conn}@load.test>\r\nTo: {to}\r\nSubject: =?UTF-8?B?2LPZgdin2LHYtCDYtNmF2KfYsdmH?= {i}\r\nMessage-ID: <{id}>\r\n"
    );
    if let Some(r) = reply_to {
        m.push_str(&format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n");
    let line = "The quick brown fox jumps over the lazy dog. سلام، بسته من هنوز نرسیده است.\r\n";
    let half = size.saturating_sub(m.len() + 200) / 2;
    while m.len() < half {
        m.push_str(line);
    }
    m.push_str("--b1\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<html><body>");
    while m.len() < size.saturating_sub(40) {
        m.push_str("<p>The quick brown fox jumps over the lazy dog.</p>\r\n");
    }
    m.push_str("</body></html>\r\n--b1--\r\n.\r\n");
    (id, m.into_bytes())
}

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> anyhow::Result<String> {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).await? == 0 {
            anyhow::bail!("the server closed the connection");
        }
        all.push_str(&l);
        if l.len() < 4 || l.as_bytes()[3] == b' ' {
            return Ok(all);
        }
    }
}

/// One connection's run: (accepted, refused, latencies).
async fn client(
    a: &EmailBenchArgs,
    conn: usize,
    count: usize,
) -> anyhow::Result<(usize, usize, Vec<Duration>)> {
    let c = tokio::net::TcpStream::connect(a.smtp).await?;
    c.set_nodelay(true)?;
    let (r, mut w) = c.into_split();
    let mut r = BufReader::new(r);
    reply(&mut r).await?;
    w.write_all(b"EHLO bench.load.test\r\n").await?;
    reply(&mut r).await?;
    let (mut ok, mut refused, mut lat) = (0, 0, Vec::with_capacity(count));
    let mut previous: Option<String> = None;
    for i in 0..count {
        let answers = a.reply_every > 0 && i % a.reply_every != 0;
        let (id, data) = mail(
            conn,
            i,
            &a.to,
            a.size,
            previous.as_deref().filter(|_| answers),
        );
        let cmds = format!(
            "MAIL FROM:<bench{conn}@load.test>\r\nRCPT TO:<{}>\r\nDATA\r\n",
            a.to
        );
        w.write_all(cmds.as_bytes()).await?;
        let m = reply(&mut r).await?;
        let rc = reply(&mut r).await?;
        let d = reply(&mut r).await?;
        if !(m.starts_with("250") && rc.starts_with("250") && d.starts_with("354")) {
            refused += 1;
            w.write_all(b"RSET\r\n").await?;
            reply(&mut r).await?;
            continue;
        }
        let t = Instant::now();
        w.write_all(&data).await?;
        let end = reply(&mut r).await?;
        lat.push(t.elapsed());
        if end.starts_with("250") {
            ok += 1;
            previous = Some(id);
        } else {
            refused += 1;
        }
    }
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok((ok, refused, lat))
}

async fn bench(a: EmailBenchArgs) -> anyhow::Result<bool> {
    let a = std::sync::Arc::new(a);
    let per = a.messages.div_ceil(a.connections.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..a.connections.max(1) {
        let a = a.clone();
        tasks.push(tokio::spawn(async move { client(&a, conn, per).await }));
    }
    let (mut ok, mut refused, mut lat, mut errors) = (0, 0, Vec::new(), 0);
    for t in tasks {
        match t.await? {
            Ok((o, r, l)) => {
                ok += o;
                refused += r;
                lat.extend(l);
            }
            Err(e) => {
                errors += 1;
                eprintln!("switchboard bench email: a connection failed: {e:#}");
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let rate = ok as f64 / secs;
    if a.json {
        println!(
            "{}",
            json!({"accepted": ok, "refused": refused, "connection_errors": errors, "seconds": secs,
                   "mails_per_s": rate, "size": a.size, "connections": a.connections,
                   "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)}})
        );
    } else {
        println!(
            "email: {ok} accepted, {refused} refused, {errors} connection errors in {secs:.1} s over {} connections",
            a.connections
        );
        println!(
            "  {rate:.0} mails/s of ~{} bytes (parsed, threaded, stored and queued before 250)",
            a.size
        );
        println!(
            "  latency DATA end → 250: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    }
    Ok(errors == 0 && refused == 0)
}
