//! The media driver: one tokio task per bridged call moves datagrams between the call's two RTP
//! sockets and its [`switchboard_media::relay::Bridge`], writes the recording, and reports
//! digits and dead legs. No thread per call: a task waits on both sockets, its commands and the
//! bridge's next timer.
//!
//! Ports come from a [`PortPool`] over the configured range; each leg has one socket (RTP; RTCP
//! is not relayed, see the bridge's docs).
#![allow(dead_code)] // the B2BUA's media anchoring (voice part 2) uses it next; the bench does now

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Mutex;
use switchboard_media::relay::{Bridge, Leg, LegMedia, Output};
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

    /// A socket bound to the next free even port of the range (RTP's convention, RFC 3550 11).
    pub async fn bind(&self) -> std::io::Result<UdpSocket> {
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
            match UdpSocket::bind(SocketAddr::new(self.ip, port)).await {
                Ok(s) => return Ok(s),
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

/// What the call's signaling tells its media task.
#[derive(Debug)]
pub enum MediaCommand {
    /// A leg's negotiated codec and address (from its SDP, again after a re-INVITE).
    SetMedia(Leg, LegMedia),
    /// In-band DTMF detection on a leg.
    DetectInBand(Leg, bool),
    /// Record to this file (a stereo WAV, caller left, agent right).
    Record(PathBuf),
    /// Pause the recording (card data); the span becomes silence.
    Pause,
    /// Resume it.
    Resume,
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
    /// The task ended: packets relayed each way and the recording's length in 8 kHz frames.
    Stopped {
        /// Packets from the caller relayed to the agent.
        caller_relayed: u64,
        /// Packets from the agent relayed to the caller.
        agent_relayed: u64,
        /// Frames recorded (0 without a recording).
        recorded_frames: u64,
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

/// Binds a call's two sockets and starts its task. `timeout_ms` ends dead legs (0: never).
pub async fn start(
    pool: &PortPool,
    timeout_ms: u64,
    events: mpsc::Sender<MediaEvent>,
) -> std::io::Result<MediaHandle> {
    let caller = pool.bind().await?;
    let agent = pool.bind().await?;
    let (tx, rx) = mpsc::channel(16);
    let handle = MediaHandle {
        tx,
        caller_addr: caller.local_addr()?,
        agent_addr: agent.local_addr()?,
    };
    tokio::spawn(run(caller, agent, Bridge::new(timeout_ms), rx, events));
    Ok(handle)
}

/// A recording file being written.
struct RecordingFile {
    file: tokio::fs::File,
    path: PathBuf,
}

async fn run(
    caller: UdpSocket,
    agent: UdpSocket,
    mut bridge: Bridge,
    mut rx: mpsc::Receiver<MediaCommand>,
    events: mpsc::Sender<MediaEvent>,
) {
    // The task's own monotonic milliseconds (a bridge needs only differences).
    let origin = tokio::time::Instant::now();
    let now_ms = move || origin.elapsed().as_millis() as u64;
    let mut recording: Option<RecordingFile> = None;
    let (mut buf_c, mut buf_a) = (vec![0u8; 2048], vec![0u8; 2048]);
    loop {
        let wake = bridge
            .poll_timeout()
            .map(|t| origin + std::time::Duration::from_millis(t));
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
                Some(MediaCommand::Record(path)) => {
                    if recording.is_none() {
                        match open_recording(&path).await {
                            Ok(file) => {
                                bridge.start_recording(now_ms());
                                recording = Some(RecordingFile { file, path });
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
                Some(MediaCommand::Stop) | None => break,
            },
            _ = sleep_until(wake) => bridge.handle_timeout(now_ms()),
        }
        while let Some(out) = bridge.poll_output() {
            match out {
                Output::Send { leg, to, datagram } => {
                    let sock = match leg {
                        Leg::Caller => &caller,
                        Leg::Agent => &agent,
                    };
                    // A full socket buffer drops the packet, as the network would.
                    let _ = sock.try_send_to(&datagram, to);
                }
                Output::Record(bytes) => {
                    if let Some(r) = &mut recording
                        && let Err(e) = r.file.write_all(&bytes).await
                    {
                        tracing::error!(error = %e, "recording write failed");
                    }
                }
                Output::Digit { leg, digit, .. } => {
                    let _ = events.send(MediaEvent::Digit(leg, digit)).await;
                }
                Output::TimedOut(leg) => {
                    let _ = events.send(MediaEvent::TimedOut(leg)).await;
                }
            }
        }
    }
    // Flush the last frames and write the final header.
    bridge.handle_timeout(now_ms());
    while let Some(out) = bridge.poll_output() {
        if let (Output::Record(bytes), Some(r)) = (out, &mut recording) {
            let _ = r.file.write_all(&bytes).await;
        }
    }
    let frames = bridge.recorder().map_or(0, |r| r.frames());
    if let (Some(mut r), Some(h)) = (recording, bridge.recording_header()) {
        let done = async {
            r.file.seek(std::io::SeekFrom::Start(0)).await?;
            r.file.write_all(&h).await?;
            r.file.sync_all().await
        };
        if let Err(e) = done.await {
            tracing::error!(error = %e, path = %r.path.display(), "cannot finish the recording");
        }
    }
    let _ = events
        .send(MediaEvent::Stopped {
            caller_relayed: bridge.relayed(Leg::Caller),
            agent_relayed: bridge.relayed(Leg::Agent),
            recorded_frames: frames,
        })
        .await;
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

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
        let h = start(&pool, 0, etx).await.expect("media task");
        assert_ne!(h.caller_addr, h.agent_addr);
        let phone_c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let phone_a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let media = |law: Law, to: SocketAddr| LegMedia {
            law,
            payload_type: law.payload_type(),
            telephone_event: Some(101),
            remote: Some(to),
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
        let stopped = loop {
            match erx.recv().await.expect("event") {
                e @ MediaEvent::Stopped { .. } => break e,
                _ => continue,
            }
        };
        let MediaEvent::Stopped {
            caller_relayed,
            recorded_frames,
            ..
        } = stopped
        else {
            unreachable!("matched above");
        };
        assert_eq!(caller_relayed, 25);
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
}
