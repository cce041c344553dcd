//! The media driver: one tokio task per bridged call moves datagrams between the call's two RTP
//! sockets and its [`switchboard_media::relay::Bridge`], writes the recording, and reports
//! digits and dead legs. No thread per call: a task waits on both sockets, its commands and the
//! bridge's next timer.
//!
//! Ports come in pairs from the configured range: each leg has an RTP socket on an even port and
//! an RTCP socket on the next (RFC 3550 §11). RTCP is terminated per leg (the bridge writes our
//! reports and reads the peer's; see its docs); with rtcp-mux it comes on the RTP socket. A
//! small reader task per call hands the RTCP sockets' datagrams to the call's task as commands,
//! so the RTP path waits on no more sockets than before. When the task ends, each leg's quality
//! (what we received, what the peer reported, the round-trip time) is in
//! [`MediaEvent::Stopped`].
//!
//! The B2BUA starts one per call on two sockets the SIP engine task bound ahead
//! ([`spawn_on`]); prompts and music are played to a leg with [`MediaCommand::Play`], and the
//! call's flow listens to its digits with [`MediaCommand::Listen`].

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use switchboard_media::player::Clip;
use switchboard_media::relay::{Bridge, Leg, LegMedia, LegQuality, Output};
use switchboard_media::wav;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Hands out UDP ports of a range, round robin, skipping ports in use.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    range: RangeInclusive<u16>,
    next: Mutex<u16>,
}

impl PortPool {
    /// A pool over `range` on `ip`.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> PortPool {
        let start = Self::first(&range);
        PortPool {
            ip,
            range,
            next: Mutex::new(start),
        }
    }

    /// The first even port of the range.
    fn first(range: &RangeInclusive<u16>) -> u16 {
        range.start().saturating_add(*range.start() & 1)
    }

    /// Sockets bound to the next free even port of the range and the odd port above it (RTP and
    /// RTCP, RFC 3550 §11).
    pub async fn bind(&self) -> std::io::Result<LegSockets> {
        let (start, end) = (Self::first(&self.range), *self.range.end());
        let tries = usize::from(end.saturating_sub(start)) / 2 + 1;
        for _ in 0..tries {
            let port = {
                let mut n = self
                    .next
                    .lock()
                    .map_err(|_| std::io::Error::other("port pool poisoned"))?;
                let p = *n;
                *n = match p.checked_add(2) {
                    Some(q) if q <= end => q,
                    _ => start,
                };
                p
            };
            let Some(odd) = port.checked_add(1).filter(|p| *p <= end) else {
                continue;
            };
            let rtp = match UdpSocket::bind(SocketAddr::new(self.ip, port)).await {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            };
            match UdpSocket::bind(SocketAddr::new(self.ip, odd)).await {
                Ok(rtcp) => {
                    return Ok(LegSockets {
                        rtp,
                        rtcp: Some(rtcp),
                    });
                }
                // The RTP socket is closed again: the pair is not free.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "every RTP port of the range is in use",
        ))
    }
}

/// One leg's sockets: RTP, and RTCP on the next port.
#[derive(Debug)]
pub struct LegSockets {
    /// RTP (and muxed RTCP).
    pub rtp: UdpSocket,
    /// RTCP (none: RTCP only when muxed).
    pub rtcp: Option<UdpSocket>,
}

/// How a call's media task runs.
#[derive(Debug, Clone, Copy)]
pub struct MediaSettings {
    /// A leg silent for this long is reported (0: never).
    pub timeout_ms: u64,
    /// Our RTCP reports go out this often (RFC 3550's minimum is 5 s).
    pub rtcp_interval_ms: u64,
    /// Wall-clock Unix ms now (the NTP timestamps of our reports).
    pub wall_ms: u64,
}

/// What the call's signaling tells its media task.
#[derive(Debug)]
pub enum MediaCommand {
    /// A leg's negotiated codec and address (from its SDP, again after a re-INVITE).
    SetMedia(Leg, LegMedia),
    /// In-band DTMF detection on a leg.
    DetectInBand(Leg, bool),
    /// Report [`MediaEvent::Silent`] to the listener once a leg has been quiet this many ms
    /// (from now; `None`: off).
    DetectSilence(Leg, Option<u64>),
    /// Record to this file (a stereo WAV, caller left, agent right).
    Record(PathBuf),
    /// Pause the recording (card data); the span becomes silence.
    Pause,
    /// Resume it.
    Resume,
    /// Play a clip to a leg (after what plays already).
    Play(Leg, Clip),
    /// Play a clip of the call's flow to the caller, unless the agent is connected already
    /// (the flow's music must not outlive the queue).
    FlowPlay(Clip),
    /// The agent is connected: what plays to the caller stops, and the flow plays no more.
    Bridged,
    /// Stop what is played to a leg.
    StopPlay(Leg),
    /// Send digits and played-out clips to this listener (the call's flow) too.
    Listen(mpsc::UnboundedSender<MediaEvent>),
    /// A key the signaling learned of (SIP INFO), for the listener.
    Digit(Leg, char),
    /// A datagram arrived on a leg's RTCP socket (from the call's RTCP reader).
    Rtcp(Leg, SocketAddr, Vec<u8>),
    /// End the call's media: the task finishes the recording and stops.
    Stop,
}

/// What a media task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// A key was pressed.
    Digit(Leg, char),
    /// A leg sent nothing for the timeout.
    TimedOut(Leg),
    /// A clip played to a leg has been played out.
    Played(Leg, u64),
    /// A leg has been silent for the time of [`MediaCommand::DetectSilence`].
    Silent(Leg),
    /// A recording is finished (the file is complete).
    Recorded {
        /// The file.
        path: PathBuf,
        /// Its length in 8 kHz frames.
        frames: u64,
        /// Paused spans (first frame, end frame).
        paused: Vec<(u64, u64)>,
    },
    /// The task ended: packets relayed each way and the recording's length in 8 kHz frames.
    Stopped {
        /// Packets from the caller relayed to the agent.
        caller_relayed: u64,
        /// Packets from the agent relayed to the caller.
        agent_relayed: u64,
        /// Frames recorded (0 without a recording).
        recorded_frames: u64,
        /// The caller leg's quality.
        caller: LegQuality,
        /// The agent leg's quality.
        agent: LegQuality,
    },
}

/// The handle the signaling keeps.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    /// Commands.
    pub tx: mpsc::Sender<MediaCommand>,
    /// Where the caller's leg receives (for the SDP sent to the caller).
    pub caller_addr: SocketAddr,
    /// Where the agent's leg receives.
    pub agent_addr: SocketAddr,
}

/// Binds a call's two pairs of sockets and starts its task.
pub async fn start(
    pool: &PortPool,
    settings: MediaSettings,
    events: mpsc::Sender<MediaEvent>,
) -> std::io::Result<MediaHandle> {
    let caller = pool.bind().await?;
    let agent = pool.bind().await?;
    let (utx, mut urx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((_, e)) = urx.recv().await {
            if events.send(e).await.is_err() {
                break;
            }
        }
    });
    spawn_on(caller, agent, settings, 0, utx)
}

/// Starts a call's media task on its legs' bound sockets; its events go to `events` with `tag`.
pub fn spawn_on(
    caller: LegSockets,
    agent: LegSockets,
    settings: MediaSettings,
    tag: u64,
    events: mpsc::UnboundedSender<(u64, MediaEvent)>,
) -> std::io::Result<MediaHandle> {
    let (tx, rx) = mpsc::channel(64);
    let caller_addr = caller.rtp.local_addr()?;
    let handle = MediaHandle {
        tx,
        caller_addr,
        agent_addr: agent.rtp.local_addr()?,
    };
    let sink = Sink {
        tag,
        events,
        listener: None,
    };
    let mut bridge = Bridge::new(settings.timeout_ms);
    bridge.enable_rtcp(
        settings.rtcp_interval_ms,
        settings.wall_ms,
        &format!("switchboard@{caller_addr}"),
    );
    let rtcp = [caller.rtcp.map(Arc::new), agent.rtcp.map(Arc::new)];
    let reader = tokio::spawn(read_rtcp(rtcp.clone(), handle.tx.downgrade()));
    let sockets = Sockets {
        caller: caller.rtp,
        agent: agent.rtp,
        rtcp,
    };
    tokio::spawn(async move {
        run(sockets, bridge, rx, sink).await;
        reader.abort();
    });
    Ok(handle)
}

/// The call's RTP sockets and its legs' RTCP sockets.
struct Sockets {
    caller: UdpSocket,
    agent: UdpSocket,
    rtcp: [Option<Arc<UdpSocket>>; 2],
}

impl Sockets {
    fn rtp(&self, leg: Leg) -> &UdpSocket {
        match leg {
            Leg::Caller => &self.caller,
            Leg::Agent => &self.agent,
        }
    }

    fn rtcp(&self, leg: Leg) -> Option<&UdpSocket> {
        let i = match leg {
            Leg::Caller => 0,
            Leg::Agent => 1,
        };
        self.rtcp[i].as_deref()
    }
}

/// Hands what the RTCP sockets receive to the call's task (a few datagrams per interval), until
/// the task is gone.
async fn read_rtcp(sockets: [Option<Arc<UdpSocket>>; 2], tx: mpsc::WeakSender<MediaCommand>) {
    async fn readable(s: &Option<Arc<UdpSocket>>) -> std::io::Result<()> {
        match s {
            Some(s) => s.readable().await,
            None => std::future::pending().await,
        }
    }
    // One buffer for both (a reader per call lives as long as the call).
    let mut buf = vec![0u8; 1500];
    loop {
        let (leg, ready) = tokio::select! {
            r = readable(&sockets[0]) => (Leg::Caller, r),
            r = readable(&sockets[1]) => (Leg::Agent, r),
        };
        let i = usize::from(leg == Leg::Agent);
        let r = match (ready, &sockets[i]) {
            (Ok(()), Some(s)) => s.try_recv_from(&mut buf),
            (Err(e), _) => Err(e),
            (Ok(()), None) => continue,
        };
        let (n, from) = match r {
            Ok(r) => r,
            // Readiness that was not (another wake-up took it), or an ICMP error of an
            // earlier send (some systems): not fatal.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "an RTCP socket failed; this call's RTCP is no longer read");
                return;
            }
        };
        let Some(tx) = tx.upgrade() else { return };
        // A task that cannot keep up loses a report, as the network might.
        let _ = tx.try_send(MediaCommand::Rtcp(leg, from, buf[..n].to_vec()));
    }
}

/// Where a task's events go.
struct Sink {
    tag: u64,
    events: mpsc::UnboundedSender<(u64, MediaEvent)>,
    listener: Option<mpsc::UnboundedSender<MediaEvent>>,
}

impl Sink {
    fn send(&self, e: MediaEvent) {
        let _ = self.events.send((self.tag, e));
    }

    fn listener(&mut self, e: MediaEvent) {
        if let Some(l) = &self.listener
            && l.send(e).is_err()
        {
            self.listener = None;
        }
    }
}

/// A recording file being written, through a buffer: the frames of every 20 ms reach the file
/// about once a second (a write is a trip to tokio's blocking pool). A crash loses at most the
/// buffer; the recovery at start-up keeps the whole frames that reached the file.
struct RecordingFile {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: PathBuf,
}

/// Bytes of a recording buffered before a write: 1 s of 8 kHz 16-bit stereo.
const RECORDING_BUFFER: usize = 32 * 1024;

async fn run(
    sockets: Sockets,
    mut bridge: Bridge,
    mut rx: mpsc::Receiver<MediaCommand>,
    mut sink: Sink,
) {
    let Sockets { caller, agent, .. } = &sockets;
    // The task's own monotonic milliseconds (a bridge needs only differences).
    let origin = tokio::time::Instant::now();
    let now_ms = move || origin.elapsed().as_millis() as u64;
    let mut recording: Option<RecordingFile> = None;
    let mut bridged = false;
    let (mut buf_c, mut buf_a) = (vec![0u8; 2048], vec![0u8; 2048]);
    // One timer for the task's life, re-armed only for an earlier deadline: a later one (the
    // dead-leg deadline moves on with every packet) is met by waking at the old one, finding
    // nothing due, and re-arming then. A timer set up and torn down per packet costs more than
    // the packet's relaying.
    let timer = tokio::time::sleep_until(origin);
    tokio::pin!(timer);
    let mut armed: Option<tokio::time::Instant> = None;
    loop {
        let wake = bridge
            .poll_timeout()
            .map(|t| origin + std::time::Duration::from_millis(t));
        if let Some(w) = wake
            && armed.is_none_or(|a| w < a)
        {
            timer.as_mut().reset(w);
            armed = Some(w);
        }
        tokio::select! {
            r = caller.recv_from(&mut buf_c) => {
                if let Ok((n, from)) = r {
                    bridge.handle_datagram(now_ms(), Leg::Caller, from, &buf_c[..n]);
                }
            }
            r = agent.recv_from(&mut buf_a) => {
                if let Ok((n, from)) = r {
                    bridge.handle_datagram(now_ms(), Leg::Agent, from, &buf_a[..n]);
                }
            }
            cmd = rx.recv() => match cmd {
                Some(MediaCommand::SetMedia(leg, m)) => bridge.set_media(leg, m),
                Some(MediaCommand::DetectInBand(leg, on)) => bridge.detect_in_band(leg, on),
                Some(MediaCommand::DetectSilence(leg, ms)) => bridge.detect_silence(now_ms(), leg, ms),
                Some(MediaCommand::Record(path)) => {
                    if recording.is_none() {
                        match open_recording(&path).await {
                            Ok(file) => {
                                bridge.start_recording(now_ms());
                                recording = Some(RecordingFile {
                                    file: tokio::io::BufWriter::with_capacity(RECORDING_BUFFER, file),
                                    path,
                                });
                            }
                            Err(e) => tracing::error!(error = %e, "cannot open the recording file"),
                        }
                    }
                }
                Some(MediaCommand::Pause) => {
                    bridge.pause_recording();
                }
                Some(MediaCommand::Resume) => {
                    bridge.resume_recording();
                }
                Some(MediaCommand::Play(leg, clip)) => bridge.play(now_ms(), leg, clip),
                Some(MediaCommand::FlowPlay(clip)) => {
                    if !bridged {
                        bridge.play(now_ms(), Leg::Caller, clip);
                    }
                }
                Some(MediaCommand::Bridged) => {
                    bridged = true;
                    bridge.stop_playing(Leg::Caller);
                }
                Some(MediaCommand::StopPlay(leg)) => {
                    bridge.stop_playing(leg);
                }
                Some(MediaCommand::Listen(l)) => sink.listener = Some(l),
                Some(MediaCommand::Digit(leg, d)) => sink.listener(MediaEvent::Digit(leg, d)),
                Some(MediaCommand::Rtcp(leg, from, d)) => bridge.handle_rtcp(now_ms(), leg, from, &d),
                Some(MediaCommand::Stop) | None => break,
            },
            () = &mut timer, if armed.is_some() => {
                armed = None;
                bridge.handle_timeout(now_ms());
            }
        }
        while let Some(out) = bridge.poll_output() {
            match out {
                Output::Send { leg, to, datagram } => {
                    // A full socket buffer drops the packet, as the network would.
                    let _ = sockets.rtp(leg).try_send_to(&datagram, to);
                }
                Output::SendRtcp { leg, to, datagram } => {
                    if let Some(sock) = sockets.rtcp(leg) {
                        let _ = sock.try_send_to(&datagram, to);
                    }
                }
                Output::Record(bytes) => {
                    if let Some(r) = &mut recording
                        && let Err(e) = r.file.write_all(&bytes).await
                    {
                        tracing::error!(error = %e, "recording write failed");
                    }
                }
                Output::Digit { leg, digit, .. } => {
                    sink.send(MediaEvent::Digit(leg, digit));
                    sink.listener(MediaEvent::Digit(leg, digit));
                }
                Output::TimedOut(leg) => sink.send(MediaEvent::TimedOut(leg)),
                Output::Played { leg, id } => sink.listener(MediaEvent::Played(leg, id)),
                Output::Silent(leg) => sink.listener(MediaEvent::Silent(leg)),
            }
        }
    }
    // Flush the last frames, say BYE on each leg's RTCP, and write the final header.
    bridge.handle_timeout(now_ms());
    bridge.close(now_ms());
    while let Some(out) = bridge.poll_output() {
        match out {
            Output::Record(bytes) => {
                if let Some(r) = &mut recording {
                    let _ = r.file.write_all(&bytes).await;
                }
            }
            Output::Send { leg, to, datagram } => {
                let _ = sockets.rtp(leg).try_send_to(&datagram, to);
            }
            Output::SendRtcp { leg, to, datagram } => {
                if let Some(sock) = sockets.rtcp(leg) {
                    let _ = sock.try_send_to(&datagram, to);
                }
            }
            _ => {}
        }
    }
    let frames = bridge.recorder().map_or(0, |r| r.frames());
    let paused = bridge
        .recorder()
        .map(|r| r.paused_spans())
        .unwrap_or_default();
    if let (Some(mut r), Some(h)) = (recording, bridge.recording_header()) {
        let done = async {
            r.file.flush().await?;
            let f = r.file.get_mut();
            f.seek(std::io::SeekFrom::Start(0)).await?;
            f.write_all(&h).await?;
            f.sync_all().await
        };
        match done.await {
            Err(e) => {
                tracing::error!(error = %e, path = %r.path.display(), "cannot finish the recording")
            }
            Ok(()) => sink.send(MediaEvent::Recorded {
                path: r.path,
                frames,
                paused,
            }),
        }
    }
    sink.send(MediaEvent::Stopped {
        caller_relayed: bridge.relayed(Leg::Caller),
        agent_relayed: bridge.relayed(Leg::Agent),
        recorded_frames: frames,
        caller: bridge.quality(Leg::Caller),
        agent: bridge.quality(Leg::Agent),
    });
}

/// The SIP engine task's side of anchored media: RTP sockets bound ahead for the core to hand
/// out ([`super::calls::MediaPorts`]), each call's media task, music on hold, and the
/// recording hook.
pub struct Anchor {
    ip: IpAddr,
    range: RangeInclusive<u16>,
    cursor: u16,
    timeout_ms: u64,
    rtcp_interval_ms: u64,
    clock: crate::clock::Clock,
    inband: bool,
    /// Bound ahead, by RTP port: the RTP socket and the RTCP socket on the next port.
    reserve: std::collections::HashMap<u16, (std::net::UdpSocket, std::net::UdpSocket)>,
    calls: std::collections::HashMap<super::calls::CallKey, Running>,
    events: mpsc::UnboundedSender<(u64, MediaEvent)>,
    registry: super::ivr::Registry,
    prompts: std::sync::Arc<super::prompts::Prompts>,
    recordings: tokio::sync::broadcast::Sender<RecordingDone>,
    quality: mpsc::UnboundedSender<CallQuality>,
}

struct Running {
    tx: mpsc::Sender<MediaCommand>,
    interaction: Option<switchboard_model::InteractionId>,
    /// The call's tenant and interaction, told when it stops.
    owner: Option<(
        switchboard_model::TenantId,
        switchboard_model::InteractionId,
    )>,
}

/// The media quality of a finished call's legs (the `call.quality` event).
#[derive(Debug, Clone, PartialEq)]
pub struct CallQuality {
    /// The call's tenant.
    pub tenant: switchboard_model::TenantId,
    /// Its interaction.
    pub interaction: switchboard_model::InteractionId,
    /// The caller's leg.
    pub caller: LegQuality,
    /// The agent's leg.
    pub agent: LegQuality,
}

impl CallQuality {
    /// The event's data: per leg what we received and what the peer reported.
    pub fn to_json(&self) -> serde_json::Value {
        let round = |v: f64, places: i32| {
            let f = 10f64.powi(places);
            (v * f).round() / f
        };
        let leg = |q: &LegQuality| {
            let peer = q.peer.map(|p| {
                serde_json::json!({
                    "loss_fraction": round(p.fraction_lost, 4),
                    "lost": p.cumulative_lost,
                    "jitter_ms": round(p.jitter_ms, 2),
                    "rtt_ms": p.rtt_ms.map(|r| round(r, 2)),
                    "reports": p.reports,
                })
            });
            serde_json::json!({
                "received": q.received,
                "lost": q.lost,
                "loss_fraction": round(q.loss_fraction, 4),
                "jitter_ms": round(q.jitter_ms, 2),
                "sent": q.sent,
                "peer": peer,
            })
        };
        serde_json::json!({
            "interaction_id": self.interaction,
            "caller": leg(&self.caller),
            "agent": leg(&self.agent),
        })
    }
}

/// A finished recording of a live call (the hook for the recordings module).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingDone {
    /// The call's interaction, when it had one.
    pub interaction: Option<switchboard_model::InteractionId>,
    /// The stereo WAV (caller left, agent right).
    pub path: PathBuf,
    /// Its duration.
    pub duration: std::time::Duration,
    /// Paused spans as (from, to) offsets into the file.
    pub paused: Vec<(std::time::Duration, std::time::Duration)>,
}

/// What to do to a live call's recording.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordingAction {
    /// Start recording into this file.
    Start(PathBuf),
    /// Pause (the span becomes silence).
    Pause,
    /// Resume.
    Resume,
}

/// How many RTP ports are kept bound and ready (two per call).
const READY_PORTS: usize = 16;

impl Anchor {
    /// Media on `ip`, ports of `range`, legs silent for `timeout_ms` end the call (0: never),
    /// RTCP reports every `rtcp_interval_ms`; finished calls' quality goes to `quality`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ip: IpAddr,
        range: RangeInclusive<u16>,
        timeout_ms: u64,
        rtcp_interval_ms: u64,
        clock: crate::clock::Clock,
        inband: bool,
        events: mpsc::UnboundedSender<(u64, MediaEvent)>,
        registry: super::ivr::Registry,
        prompts: std::sync::Arc<super::prompts::Prompts>,
        recordings: tokio::sync::broadcast::Sender<RecordingDone>,
        quality: mpsc::UnboundedSender<CallQuality>,
    ) -> Anchor {
        // Start somewhere in the range (by process id): several servers on one machine, as in
        // tests, then rarely try the same ports.
        let span = u32::from(range.end().saturating_sub(*range.start())).max(1);
        let offset = (std::process::id() % span) as u16 & !1;
        let cursor = range.start().saturating_add(offset) & !1;
        Anchor {
            ip,
            cursor: cursor.max(*range.start()),
            range,
            timeout_ms,
            rtcp_interval_ms,
            clock,
            inband,
            reserve: Default::default(),
            calls: Default::default(),
            events,
            registry,
            prompts,
            recordings,
            quality,
        }
    }

    /// Binds port pairs (RTP even, RTCP the odd one above) until the core has enough ready; a
    /// pair whose odd port is taken is not used.
    pub fn top_up(&mut self, ports: &mut super::calls::MediaPorts) {
        let (start, end) = (*self.range.start(), *self.range.end());
        // A bounded number of binds per call: a range used up costs little on every message.
        let mut tries = (usize::from(end.saturating_sub(start)) / 2 + 1).min(4 * READY_PORTS);
        while ports.ready() < READY_PORTS && tries > 0 {
            tries -= 1;
            let port = self.cursor;
            self.cursor = match port.checked_add(2) {
                Some(p) if p <= end => p,
                _ => start + (start & 1),
            };
            if self.reserve.contains_key(&port) {
                continue;
            }
            let Some(odd) = port.checked_add(1).filter(|p| *p <= end) else {
                continue;
            };
            let bind = |p: u16| {
                let s = std::net::UdpSocket::bind(SocketAddr::new(self.ip, p))?;
                s.set_nonblocking(true)?;
                Ok::<_, std::io::Error>(s)
            };
            match bind(port).and_then(|rtp| Ok((rtp, bind(odd)?))) {
                Ok(pair) => {
                    self.reserve.insert(port, pair);
                    ports.add_ready(port);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
                Err(e) => {
                    tracing::error!(error = %e, port, "cannot bind an RTP/RTCP port pair");
                    return;
                }
            }
        }
    }

    fn send(&self, call: super::calls::CallKey, cmd: MediaCommand) {
        if let Some(r) = self.calls.get(&call) {
            // A task that cannot keep up loses this command, not the engine its pace.
            let _ = r.tx.try_send(cmd);
        }
    }

    /// Carries out the core's `op` for `call`; false when the media could not start.
    pub fn handle(&mut self, call: super::calls::CallKey, op: super::calls::MediaOp) -> bool {
        use super::calls::MediaOp;
        match op {
            MediaOp::Start {
                caller_port,
                agent_port,
            } => {
                // Either pair missing: the other goes back to the OS with the call refused.
                let (Some(c), Some(a)) = (
                    self.reserve.remove(&caller_port),
                    self.reserve.remove(&agent_port),
                ) else {
                    return false;
                };
                let leg = |(rtp, rtcp): (std::net::UdpSocket, std::net::UdpSocket)| {
                    Ok::<_, std::io::Error>(LegSockets {
                        rtp: UdpSocket::from_std(rtp)?,
                        rtcp: Some(UdpSocket::from_std(rtcp)?),
                    })
                };
                let (Ok(c), Ok(a)) = (leg(c), leg(a)) else {
                    return false;
                };
                let settings = MediaSettings {
                    timeout_ms: self.timeout_ms,
                    rtcp_interval_ms: self.rtcp_interval_ms,
                    wall_ms: u64::try_from(self.clock.wall_ms()).unwrap_or(0),
                };
                let Ok(h) = spawn_on(c, a, settings, call.0, self.events.clone()) else {
                    return false;
                };
                if self.inband {
                    let _ = h.tx.try_send(MediaCommand::DetectInBand(Leg::Caller, true));
                }
                if let Ok(mut r) = self.registry.lock() {
                    r.insert(call, h.tx.clone());
                }
                self.calls.insert(
                    call,
                    Running {
                        tx: h.tx,
                        interaction: None,
                        owner: None,
                    },
                );
            }
            MediaOp::Set(leg, m) => self.send(call, MediaCommand::SetMedia(leg, m)),
            MediaOp::Hold(true) => {
                self.send(call, MediaCommand::StopPlay(Leg::Caller));
                let clip = Clip {
                    samples: self.prompts.hold_music(),
                    looping: true,
                    id: 0,
                };
                self.send(call, MediaCommand::Play(Leg::Caller, clip));
            }
            MediaOp::Hold(false) => self.send(call, MediaCommand::StopPlay(Leg::Caller)),
            MediaOp::Bridged { interaction } => {
                if let Some(r) = self.calls.get_mut(&call) {
                    r.interaction = interaction.or(r.interaction);
                }
                self.send(call, MediaCommand::Bridged);
            }
            MediaOp::Digit(d) => self.send(call, MediaCommand::Digit(Leg::Caller, d)),
            MediaOp::Stop(owner) => {
                // The entry stays until the task reports it stopped (a recording's end names
                // its interaction, the quality its tenant and interaction).
                if let Some(r) = self.calls.get_mut(&call) {
                    r.owner = owner;
                }
                self.send(call, MediaCommand::Stop);
                if let Ok(mut r) = self.registry.lock() {
                    r.remove(&call);
                }
            }
        }
        true
    }

    /// A call's task has stopped, with its legs' quality: reported for its interaction.
    pub fn stopped(&mut self, call: u64, caller: LegQuality, agent: LegQuality) {
        let Some(r) = self.calls.remove(&super::calls::CallKey(call)) else {
            return;
        };
        if let Some((tenant, interaction)) = r.owner {
            let _ = self.quality.send(CallQuality {
                tenant,
                interaction,
                caller,
                agent,
            });
        }
    }

    /// Starts, pauses or resumes the recording of a live call.
    pub fn record(
        &mut self,
        call: super::calls::CallKey,
        interaction: switchboard_model::InteractionId,
        action: RecordingAction,
    ) {
        if let Some(r) = self.calls.get_mut(&call) {
            r.interaction = Some(interaction);
        }
        let cmd = match action {
            RecordingAction::Start(p) => MediaCommand::Record(p),
            RecordingAction::Pause => MediaCommand::Pause,
            RecordingAction::Resume => MediaCommand::Resume,
        };
        self.send(call, cmd);
    }

    /// A media task's event that is not the core's business (a finished recording).
    pub fn finished_recording(
        &self,
        call: u64,
        path: PathBuf,
        frames: u64,
        paused: Vec<(u64, u64)>,
    ) {
        let at = |f: u64| std::time::Duration::from_micros(f * 125);
        let interaction = self
            .calls
            .get(&super::calls::CallKey(call))
            .and_then(|r| r.interaction);
        let _ = self.recordings.send(RecordingDone {
            interaction,
            path,
            duration: at(frames),
            paused: paused.into_iter().map(|(a, b)| (at(a), at(b))).collect(),
        });
    }
}

async fn open_recording(path: &PathBuf) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut f = tokio::fs::File::create(path).await?;
    f.write_all(&wav::header(2, switchboard_media::RATE, 0))
        .await?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_media::g711::Law;
    use switchboard_media::rtp::{Header, Packet};

    fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        Header {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 1,
            csrc: Vec::new(),
        }
        .write(payload, &mut b);
        b
    }

    #[tokio::test]
    async fn a_call_is_relayed_over_real_sockets_and_recorded() {
        let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 41000..=41999);
        let (etx, mut erx) = mpsc::channel(16);
        let settings = MediaSettings {
            timeout_ms: 0,
            rtcp_interval_ms: 5000,
            wall_ms: 1_700_000_000_000,
        };
        let h = start(&pool, settings, etx).await.expect("media task");
        assert_ne!(h.caller_addr, h.agent_addr);
        let phone_c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let phone_a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let media = |law: Law, to: SocketAddr| LegMedia {
            law,
            payload_type: law.payload_type(),
            telephone_event: Some(101),
            remote: Some(to),
            rtcp: None,
            rtcp_mux: false,
        };
        h.tx.send(MediaCommand::SetMedia(
            Leg::Caller,
            media(Law::Alaw, phone_c.local_addr().expect("a")),
        ))
        .await
        .expect("send");
        h.tx.send(MediaCommand::SetMedia(
            Leg::Agent,
            media(Law::Ulaw, phone_a.local_addr().expect("a")),
        ))
        .await
        .expect("send");
        let dir = std::env::temp_dir().join(format!("sb-media-{}", std::process::id()));
        let path = dir.join("call.wav");
        h.tx.send(MediaCommand::Record(path.clone()))
            .await
            .expect("send");
        let mut buf = [0u8; 2048];
        for seq in 0..25u16 {
            phone_c
                .send_to(
                    &rtp(8, seq, &[Law::Alaw.encode_sample(9000); 160]),
                    h.caller_addr,
                )
                .await
                .expect("send");
            let (n, _) = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                phone_a.recv_from(&mut buf),
            )
            .await
            .expect("relayed in time")
            .expect("recv");
            let p = Packet::parse(&buf[..n]).expect("rtp");
            assert_eq!(p.header.payload_type, 0, "transcoded to µ-law");
            assert_eq!(p.header.sequence, seq);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        h.tx.send(MediaCommand::Stop).await.expect("send");
        let mut recorded = None;
        let stopped = loop {
            match erx.recv().await.expect("event") {
                e @ MediaEvent::Stopped { .. } => break e,
                MediaEvent::Recorded {
                    path: p,
                    frames,
                    paused,
                } => recorded = Some((p, frames, paused)),
                _ => continue,
            }
        };
        let (rec_path, rec_frames, rec_paused) = recorded.expect("the recording is reported");
        assert_eq!(rec_path, path);
        assert!(rec_paused.is_empty());
        let MediaEvent::Stopped {
            caller_relayed,
            recorded_frames,
            ..
        } = stopped
        else {
            unreachable!("matched above");
        };
        assert_eq!(caller_relayed, 25);
        assert_eq!(rec_frames, recorded_frames);
        let w = wav::parse(&std::fs::read(&path).expect("recording")).expect("wav");
        assert_eq!(w.samples.len() as u64, recorded_frames * 2);
        // about half a second of audio, caller on the left
        assert!(
            (8 * 400..=8 * 1000).contains(&recorded_frames),
            "{recorded_frames}"
        );
        let left_loud = w
            .samples
            .iter()
            .step_by(2)
            .filter(|s| s.abs() > 5000)
            .count();
        assert!(left_loud >= 25 * 160 * 9 / 10, "{left_loud}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The recording hook on the SIP engine's side: a call's media started on ports bound
    /// ahead, recorded, paused and resumed, stopped: the finished file is reported with its
    /// interaction, duration and paused span, and is the call's stereo timeline.
    #[tokio::test]
    async fn the_anchor_records_a_call_and_reports_the_file() {
        use super::super::calls::{CallKey, MediaOp, MediaPorts};
        let dir = std::env::temp_dir().join(format!("sb-anchor-{}", std::process::id()));
        let (etx, mut erx) = mpsc::unbounded_channel();
        let (rtx, mut rrx) = tokio::sync::broadcast::channel(4);
        let (qtx, mut qrx) = mpsc::unbounded_channel();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut anchor = Anchor::new(
            ip,
            42000..=42999,
            0,
            5000,
            crate::clock::Clock::new(),
            false,
            etx,
            Default::default(),
            std::sync::Arc::new(super::super::prompts::Prompts::new(&dir, None)),
            rtx,
            qtx,
        );
        let mut ports = MediaPorts::new(ip);
        anchor.top_up(&mut ports);
        assert_eq!(ports.ready(), READY_PORTS);
        let (caller_port, agent_port) = ports.take_pair().expect("ports");
        // Each ready port is the even half of a pair held with its RTCP port.
        assert_eq!((caller_port % 2, agent_port % 2), (0, 0));
        for p in [caller_port, agent_port] {
            assert!(
                std::net::UdpSocket::bind(SocketAddr::new(ip, p + 1)).is_err(),
                "RTCP port {} is held",
                p + 1
            );
        }
        let call = CallKey(7);
        assert!(anchor.handle(
            call,
            MediaOp::Start {
                caller_port,
                agent_port
            }
        ));
        let phone = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let media = LegMedia {
            law: Law::Ulaw,
            payload_type: 0,
            telephone_event: None,
            remote: Some(phone.local_addr().expect("addr")),
            rtcp: None,
            rtcp_mux: false,
        };
        anchor.handle(call, MediaOp::Set(Leg::Caller, media));
        anchor.handle(call, MediaOp::Set(Leg::Agent, media));
        let interaction = switchboard_model::InteractionId::from_uuid(uuid::Uuid::from_u128(9));
        let path = dir.join("call.wav");
        anchor.record(call, interaction, RecordingAction::Start(path.clone()));
        let to = SocketAddr::new(ip, caller_port);
        for seq in 0..40u16 {
            if seq == 10 {
                anchor.record(call, interaction, RecordingAction::Pause);
            }
            if seq == 20 {
                anchor.record(call, interaction, RecordingAction::Resume);
            }
            let d = rtp(0, seq, &[Law::Ulaw.encode_sample(8000); 160]);
            phone.send_to(&d, to).await.expect("send");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let tenant = switchboard_model::TenantId::from_uuid(uuid::Uuid::from_u128(1));
        anchor.handle(call, MediaOp::Stop(Some((tenant, interaction))));
        // The engine loop hands the task's events to the anchor.
        loop {
            let (tag, e) = erx.recv().await.expect("event");
            assert_eq!(tag, 7);
            match e {
                MediaEvent::Recorded {
                    path,
                    frames,
                    paused,
                } => anchor.finished_recording(tag, path, frames, paused),
                MediaEvent::Stopped { caller, agent, .. } => {
                    anchor.stopped(tag, caller, agent);
                    break;
                }
                _ => {}
            }
        }
        let q = qrx.recv().await.expect("the call's quality");
        assert_eq!((q.tenant, q.interaction), (tenant, interaction));
        assert_eq!((q.caller.received, q.caller.lost), (40, 0));
        assert_eq!(q.to_json()["caller"]["received"], 40);
        // The task and its RTCP reader are gone: both pairs are free again.
        let all = [caller_port, caller_port + 1, agent_port, agent_port + 1];
        let mut freed = false;
        for _ in 0..50 {
            freed = all
                .iter()
                .all(|p| std::net::UdpSocket::bind(SocketAddr::new(ip, *p)).is_ok());
            if freed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(freed, "the ports {all:?} are given back");
        let done = rrx.recv().await.expect("reported");
        assert_eq!(done.interaction, Some(interaction));
        assert_eq!(done.path, path);
        let ms = done.duration.as_millis();
        assert!((700..=1300).contains(&ms), "{ms} ms for 0.8 s of packets");
        assert_eq!(done.paused.len(), 1, "{:?}", done.paused);
        let (from, until) = done.paused[0];
        let span = (until - from).as_millis();
        assert!((120..=320).contains(&span), "paused {span} ms of 200");
        let w = wav::parse(&std::fs::read(&path).expect("file")).expect("wav");
        assert_eq!((w.channels, w.rate), (2, 8000));
        assert_eq!(w.samples.len() as u128 / 2, done.duration.as_micros() / 125);
        let _ = std::fs::remove_dir_all(dir);
    }
}
