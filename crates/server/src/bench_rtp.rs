//! `switchboard bench rtp`: G.711 streams both ways through a media relay, measured from outside.
//!
//! The generator binds a caller and an agent socket per call and sends one 20 ms packet every
//! 20 ms on each (50 packets/s per direction). The relay under test runs as its own process,
//! so its CPU time is read alone from `/proc/<pid>/stat`:
//! - Switchboard's relay: this binary's hidden `bench rtp-relay`, which starts one media task
//!   per call ([`crate::voice::media`]: the very bridge calls use), optionally transcoding
//!   (caller PCMA, agent PCMU) and recording every call;
//! - with `--rtpengine`: Debian's `rtpengine` in userspace (no kernel module), given the same
//!   calls over its NG control protocol, relaying the same streams in the same run.
//!
//! Reported per relay: packets sent and delivered (loss), CPU time per relayed packet and per
//! call-minute, the calls one core would carry at that rate, resident memory per call, and the
//! interarrival jitter seen by the receivers (RFC 3550 A.8) next to the jitter of the generator's
//! own sending, so the relay's added jitter shows.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use crate::voice::media::{self, MediaCommand, PortPool};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchboard_media::g711::Law;
use switchboard_media::relay::{Leg, LegMedia};
use switchboard_media::rtp::{Header, Packet};
use tokio::net::UdpSocket;

/// Arguments of `switchboard bench rtp`.
#[derive(Debug, clap::Args)]
pub struct RtpBenchArgs {
    /// Calls bridged at once (two streams each).
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Seconds of streaming measured (after one second of warm-up).
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Record every call (stereo WAV under a temporary folder).
    #[arg(long)]
    record: bool,
    /// Caller in PCMA, agent in PCMU: the relay transcodes every packet.
    #[arg(long)]
    transcode: bool,
    /// Also measure Debian's rtpengine (userspace) on the same streams.
    #[arg(long)]
    rtpengine: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of the relay process (started by `bench rtp`, not for people).
#[derive(Debug, clap::Args)]
pub struct RtpRelayArgs {
    /// Calls to bridge; their phones' ports come on stdin, one `caller agent` pair a line.
    #[arg(long)]
    calls: usize,
    /// Transcode (caller PCMA, agent PCMU).
    #[arg(long)]
    transcode: bool,
    /// Record into this folder.
    #[arg(long)]
    record: Option<std::path::PathBuf>,
}

/// One relay's figures.
#[derive(Debug, serde::Serialize)]
struct Figures {
    relay: String,
    calls: usize,
    seconds: f64,
    sent: u64,
    delivered: u64,
    loss_percent: f64,
    cpu_seconds: f64,
    cpu_us_per_packet: f64,
    cpu_ms_per_call_minute: f64,
    calls_per_core: f64,
    rss_kib_per_call: f64,
    jitter_ms: f64,
    sender_jitter_ms: f64,
}

/// Runs the benchmark.
pub fn run(args: RtpBenchArgs) -> ExitCode {
    crate::bench::block_on("rtp", async { bench(args).await.map(|()| true) })
}

/// CPU seconds (user + system) and resident KiB of a process.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("odd /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    Ok((ticks / 100.0, rss))
}

/// The generator's sockets of one call.
struct Phones {
    caller: Arc<UdpSocket>,
    agent: Arc<UdpSocket>,
}

/// Where each call's two streams go: (caller sends to, agent sends to).
type Targets = Vec<(SocketAddr, SocketAddr)>;

async fn bench(args: RtpBenchArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    results.push(measure(&args, "switchboard").await?);
    if args.rtpengine {
        results.push(measure(&args, "rtpengine").await?);
    }
    if args.json {
        println!("{}", serde_json::to_string(&results)?);
        return Ok(());
    }
    for r in &results {
        println!(
            "{:<12} {} calls, {:.0} s: {} packets sent, {} delivered ({:.3}% lost)",
            r.relay, r.calls, r.seconds, r.sent, r.delivered, r.loss_percent
        );
        println!(
            "{:<12} CPU {:.2} s: {:.2} µs per relayed packet, {:.1} ms per call-minute, {:.0} calls per core",
            "", r.cpu_seconds, r.cpu_us_per_packet, r.cpu_ms_per_call_minute, r.calls_per_core
        );
        println!(
            "{:<12} memory {:.0} KiB per call; jitter at the receivers {:.3} ms (the sender's own {:.3} ms)",
            "", r.rss_kib_per_call, r.jitter_ms, r.sender_jitter_ms
        );
    }
    if let [ours, theirs] = &results[..] {
        println!(
            "CPU per packet: switchboard / rtpengine = {:.2}",
            ours.cpu_us_per_packet / theirs.cpu_us_per_packet.max(1e-9)
        );
    }
    Ok(())
}

async fn measure(args: &RtpBenchArgs, relay: &str) -> anyhow::Result<Figures> {
    let mut phones = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        phones.push(Phones {
            caller: Arc::new(UdpSocket::bind("127.0.0.1:0").await?),
            agent: Arc::new(UdpSocket::bind("127.0.0.1:0").await?),
        });
    }
    let (mut child, targets, rss_before) = match relay {
        "rtpengine" => start_rtpengine(args, &phones).await?,
        _ => start_ours(args, &phones)?,
    };
    let pid = child.id();
    let (_, rss_ready) = proc_usage(pid)?;
    let run = stream(args, &phones, &targets, pid).await;
    let _ = child.kill();
    let _ = child.wait();
    let Run {
        sent,
        delivered,
        relayed_in_window,
        cpu,
        seconds,
        jitter,
        sender_jitter,
    } = run?;
    let calls = args.calls as f64;
    let relayed = relayed_in_window.max(1) as f64;
    Ok(Figures {
        relay: relay.to_owned(),
        calls: args.calls,
        seconds,
        sent,
        delivered,
        loss_percent: 100.0 * (sent.saturating_sub(delivered)) as f64 / sent.max(1) as f64,
        cpu_seconds: cpu,
        cpu_us_per_packet: cpu * 1e6 / relayed,
        cpu_ms_per_call_minute: cpu * 1e3 / (calls * seconds / 60.0),
        calls_per_core: calls / (cpu / seconds).max(1e-9),
        rss_kib_per_call: (rss_ready - rss_before).max(0.0) / calls,
        jitter_ms: jitter,
        sender_jitter_ms: sender_jitter,
    })
}

/// Starts this binary's relay process and reads the relay ports it bound.
fn start_ours(args: &RtpBenchArgs, phones: &[Phones]) -> anyhow::Result<(Child, Targets, f64)> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "rtp-relay", "--calls", &args.calls.to_string()]);
    if args.transcode {
        cmd.arg("--transcode");
    }
    if args.record {
        let dir = std::env::temp_dir().join(format!("sb-bench-rtp-{}", std::process::id()));
        cmd.arg("--record").arg(dir);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdout = std::io::BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    let mut line = String::new();
    stdout.read_line(&mut line)?; // "started"
    let (_, rss_before) = proc_usage(child.id())?;
    {
        let stdin = child
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        for p in phones {
            writeln!(
                stdin,
                "{} {}",
                p.caller.local_addr()?,
                p.agent.local_addr()?
            )?;
        }
        stdin.flush()?;
    }
    let mut targets = Vec::with_capacity(phones.len());
    for _ in phones {
        line.clear();
        stdout.read_line(&mut line)?;
        let mut it = line.split_whitespace();
        let c: SocketAddr = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("relay said {line:?}"))?
            .parse()?;
        let a: SocketAddr = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("relay said {line:?}"))?
            .parse()?;
        targets.push((c, a));
    }
    Ok((child, targets, rss_before))
}

/// The relay process: one media task per call, as calls have them.
pub fn relay(args: RtpRelayArgs) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard bench rtp-relay: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(relay_main(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard bench rtp-relay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn relay_main(args: RtpRelayArgs) -> anyhow::Result<()> {
    println!("started");
    let pool = PortPool::new("127.0.0.1".parse()?, 30000..=59999);
    let (etx, mut erx) = tokio::sync::mpsc::channel(1024);
    // Events are not needed here; drain them so tasks never wait.
    tokio::spawn(async move { while erx.recv().await.is_some() {} });
    let stdin = std::io::stdin();
    let mut handles = Vec::with_capacity(args.calls);
    // As calls run: RTCP terminated on every leg at the default interval.
    let settings = media::MediaSettings {
        timeout_ms: 0,
        rtcp_interval_ms: crate::config::VoiceConfig::default()
            .rtcp_interval
            .as_millis() as u64,
        wall_ms: u64::try_from(crate::clock::Clock::new().wall_ms()).unwrap_or(0),
    };
    for n in 0..args.calls {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let mut it = line.split_whitespace();
        let caller: SocketAddr = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("no caller"))?
            .parse()?;
        let agent: SocketAddr = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("no agent"))?
            .parse()?;
        let h = media::start(&pool, settings, etx.clone()).await?;
        let leg = |law: Law, remote: SocketAddr| LegMedia {
            law,
            payload_type: law.payload_type(),
            telephone_event: Some(101),
            remote: Some(remote),
            rtcp: None,
            rtcp_mux: false,
        };
        let caller_law = if args.transcode { Law::Alaw } else { Law::Ulaw };
        h.tx.send(MediaCommand::SetMedia(Leg::Caller, leg(caller_law, caller)))
            .await?;
        h.tx.send(MediaCommand::SetMedia(Leg::Agent, leg(Law::Ulaw, agent)))
            .await?;
        if let Some(dir) = &args.record {
            h.tx.send(MediaCommand::Record(dir.join(format!("call-{n}.wav"))))
                .await?;
        }
        println!("{} {}", h.caller_addr, h.agent_addr);
        handles.push(h);
    }
    // Until the generator closes stdin.
    let mut rest = String::new();
    while stdin.lock().read_line(&mut rest)? > 0 {}
    for h in &handles {
        let _ = h.tx.send(MediaCommand::Stop).await;
    }
    if let Some(dir) = &args.record {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// Starts userspace rtpengine and sets up the calls over NG (offer from the caller, answer from
/// the agent).
async fn start_rtpengine(
    args: &RtpBenchArgs,
    phones: &[Phones],
) -> anyhow::Result<(Child, Targets, f64)> {
    let ng = UdpSocket::bind("127.0.0.1:0").await?;
    let free = || -> anyhow::Result<u16> {
        Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (ng_port, cli_port) = (free()?, free()?);
    let mut child = std::process::Command::new("rtpengine")
        .args([
            "--foreground",
            "--log-stderr",
            "--log-level=3",
            "--table=-1",
            "--interface=127.0.0.1",
            &format!("--listen-ng=127.0.0.1:{ng_port}"),
            &format!("--listen-cli=127.0.0.1:{cli_port}"),
            "--port-min=20000",
            "--port-max=29999",
            "--num-threads=2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("cannot start rtpengine (Debian package rtpengine-daemon): {e}")
        })?;
    let server: SocketAddr = format!("127.0.0.1:{ng_port}").parse()?;
    // Wait until it answers a ping.
    let mut up = false;
    for _ in 0..50 {
        if ng_call(&ng, server, &[("command", "ping")]).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("rtpengine did not answer on its NG port");
    }
    let (_, rss_before) = proc_usage(child.id())?;
    match rtpengine_calls(&ng, server, args, phones).await {
        Ok(targets) => Ok((child, targets, rss_before)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Sets up every call on rtpengine: where (caller, agent) send to.
async fn rtpengine_calls(
    ng: &UdpSocket,
    server: SocketAddr,
    args: &RtpBenchArgs,
    phones: &[Phones],
) -> anyhow::Result<Targets> {
    let mut targets = Vec::with_capacity(phones.len());
    let caller_codec = if args.transcode {
        (8, "PCMA")
    } else {
        (0, "PCMU")
    };
    for (n, p) in phones.iter().enumerate() {
        let call = format!("bench-{n}");
        let sdp = |port: u16, (pt, name): (u8, &str)| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=sendrecv\r\n"
            )
        };
        let offer = sdp(p.caller.local_addr()?.port(), caller_codec);
        let out = ng_call(
            ng,
            server,
            &[
                ("command", "offer"),
                ("call-id", &call),
                ("from-tag", "caller"),
                ("sdp", &offer),
            ],
        )
        .await?;
        let agent_to = port_of(&out)?;
        let answer = sdp(p.agent.local_addr()?.port(), (0, "PCMU"));
        let out = ng_call(
            ng,
            server,
            &[
                ("command", "answer"),
                ("call-id", &call),
                ("from-tag", "caller"),
                ("to-tag", "agent"),
                ("sdp", &answer),
            ],
        )
        .await?;
        let caller_to = port_of(&out)?;
        targets.push((
            SocketAddr::new("127.0.0.1".parse()?, caller_to),
            SocketAddr::new("127.0.0.1".parse()?, agent_to),
        ));
    }
    Ok(targets)
}

/// The audio port in an NG answer's SDP.
fn port_of(answer: &str) -> anyhow::Result<u16> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("rtpengine answered without an audio port: {answer}"))
}

/// One NG request (a bencoded dictionary after a cookie) and the `sdp` (or `result`) of the
/// answer with the same cookie (answers to earlier, timed-out requests are skipped).
async fn ng_call(
    sock: &UdpSocket,
    server: SocketAddr,
    dict: &[(&str, &str)],
) -> anyhow::Result<String> {
    static COOKIE: AtomicU64 = AtomicU64::new(1);
    let cookie = format!("c{} ", COOKIE.fetch_add(1, Ordering::Relaxed));
    let mut keys: Vec<&(&str, &str)> = dict.iter().collect();
    keys.sort_by_key(|(k, _)| *k);
    let mut msg = format!("{cookie}d").into_bytes();
    for (k, v) in keys {
        msg.extend(format!("{}:{}{}:", k.len(), k, v.len()).as_bytes());
        msg.extend(v.as_bytes());
    }
    msg.push(b'e');
    sock.send_to(&msg, server).await?;
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let text = loop {
        let (n, _) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await??;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if let Some(rest) = text.strip_prefix(&cookie) {
            break rest.to_owned();
        }
    };
    let field = |name: &str| -> Option<String> {
        let key = format!("{}:{}", name.len(), name);
        let at = text.find(&key)? + key.len();
        let rest = &text[at..];
        let (len, body) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        body.get(..len).map(str::to_owned)
    };
    match field("result").as_deref() {
        Some("ok") | Some("pong") => Ok(field("sdp").unwrap_or_default()),
        other => anyhow::bail!("rtpengine said {other:?}: {text}"),
    }
}

/// What one streaming run measured.
struct Run {
    /// Packets sent over the whole run.
    sent: u64,
    /// Packets that reached the far phone over the whole run.
    delivered: u64,
    /// Packets delivered within the measured window.
    relayed_in_window: u64,
    /// The relay's CPU seconds within the window.
    cpu: f64,
    /// The window's length.
    seconds: f64,
    /// Receivers' mean interarrival jitter, ms.
    jitter: f64,
    /// Senders' own jitter against their schedule, ms.
    sender_jitter: f64,
}

/// Streams every call both ways for a second of warm-up plus `duration_s`, measuring the
/// relay's CPU over the latter.
async fn stream(
    args: &RtpBenchArgs,
    phones: &[Phones],
    targets: &Targets,
    pid: u32,
) -> anyhow::Result<Run> {
    // Totals over the whole run (loss), and deliveries within the measured window (CPU/packet).
    let sent = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let delivered_window = Arc::new(AtomicU64::new(0));
    let jitter_sum = Arc::new(AtomicU64::new(0)); // µs × streams
    let send_jitter_sum = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_sending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller_pt = if args.transcode { 8u8 } else { 0u8 };
    let mut tasks = Vec::new();
    for (p, (caller_to, agent_to)) in phones.iter().zip(targets) {
        for (sock, to, pt) in [
            (p.caller.clone(), *caller_to, caller_pt),
            (p.agent.clone(), *agent_to, 0u8),
        ] {
            let (sent, stop, sj) = (sent.clone(), stop_sending.clone(), send_jitter_sum.clone());
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let start = Instant::now();
                let (mut seq, mut buf) = (0u16, Vec::with_capacity(172));
                let mut jitter = 0f64;
                let mut last: Option<f64> = None;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    buf.clear();
                    Header {
                        marker: seq == 0,
                        payload_type: pt,
                        sequence: seq,
                        timestamp: u32::from(seq) * 160,
                        ssrc: 7,
                        csrc: Vec::new(),
                    }
                    .write(&[0x55; 160], &mut buf);
                    // The sender's own lateness against its 20 ms schedule.
                    let late = start.elapsed().as_secs_f64() * 1000.0 - f64::from(seq) * 20.0;
                    if let Some(prev) = last {
                        jitter += ((late - prev).abs() - jitter) / 16.0;
                    }
                    last = Some(late);
                    if sock.send_to(&buf, to).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    seq = seq.wrapping_add(1);
                }
                sj.fetch_add((jitter * 1000.0) as u64, Ordering::Relaxed);
            }));
        }
        for sock in [p.caller.clone(), p.agent.clone()] {
            let (delivered, in_window, stop, measuring, js) = (
                delivered.clone(),
                delivered_window.clone(),
                stop.clone(),
                measuring.clone(),
                jitter_sum.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let start = Instant::now();
                let mut jitter = 0f64;
                let mut transit: Option<f64> = None;
                loop {
                    let r =
                        tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf))
                            .await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(Ok((n, _))) = r else { continue };
                    // The relay's RTCP reports (to the RTP port + 1, which may be another
                    // phone's socket) are not relayed packets.
                    if switchboard_media::rtp::is_rtcp(&buf[..n]) {
                        continue;
                    }
                    let Ok(pk) = Packet::parse(&buf[..n]) else {
                        continue;
                    };
                    // RFC 3550 A.8 in milliseconds.
                    let t = start.elapsed().as_secs_f64() * 1000.0
                        - f64::from(pk.header.timestamp) / 8.0;
                    if let Some(prev) = transit {
                        jitter += ((t - prev).abs() - jitter) / 16.0;
                    }
                    transit = Some(t);
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if measuring.load(Ordering::Relaxed) {
                        in_window.fetch_add(1, Ordering::Relaxed);
                    }
                }
                js.fetch_add((jitter * 1000.0) as u64, Ordering::Relaxed);
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, _) = proc_usage(pid)?;
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration_s)).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = t0.elapsed().as_secs_f64();
    let (cpu1, _) = proc_usage(pid)?;
    // Stop sending, let packets in flight land, then stop counting.
    stop_sending.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let streams = (phones.len() * 2) as f64;
    Ok(Run {
        sent: sent.load(Ordering::Relaxed),
        delivered: delivered.load(Ordering::Relaxed),
        relayed_in_window: delivered_window.load(Ordering::Relaxed),
        cpu: cpu1 - cpu0,
        seconds,
        jitter: jitter_sum.load(Ordering::Relaxed) as f64 / 1000.0 / streams,
        sender_jitter: send_jitter_sum.load(Ordering::Relaxed) as f64 / 1000.0 / streams,
    })
}
