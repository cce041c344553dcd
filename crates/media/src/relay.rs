//! The bridge of one call's media: the caller's leg and the agent's leg, each with the codec and
//! address its session description gave, joined through Switchboard.
//!
//! Sans-IO like the rest of the crate: the media task hands every datagram to
//! [`Bridge::handle_datagram`] with the leg whose socket received it and `now` (milliseconds of
//! a monotonic clock), calls [`Bridge::handle_timeout`] at [`Bridge::poll_timeout`], and carries
//! out [`Bridge::poll_output`]: datagrams to send, digits the caller pressed, bytes to append to
//! the recording, a leg gone silent.
//!
//! What it does to a packet from one leg, on its way to the other:
//! - **Latching** (symmetric RTP): a leg's packets are sent back to the address its packets come
//!   from, whatever its SDP said (phones behind NAT). The first source seen is kept; packets from
//!   any other address are dropped, so a stranger cannot take over the stream.
//! - **Transcoding**: PCMU and PCMA are rewritten byte by byte when the legs differ; the payload
//!   type becomes the receiving leg's.
//! - **DTMF**: RFC 4733 events are reported once per key press ([`crate::dtmf::EventReceiver`])
//!   and passed on with the receiving leg's telephone-event payload type (dropped if it has
//!   none); with in-band detection on, tones in the audio are reported too.
//! - **Recording**: each leg's audio is decoded into its own channel and written every 20 ms of
//!   `now`, with silence for a leg that sent nothing, so the file keeps the call's timeline.
//! - **Timeouts**: a leg that sent nothing for the configured time is reported once (a dead call
//!   is ended by the driver).
//! - **Silence** (with [`Bridge::detect_silence`]): a leg quiet for the given time (no frame
//!   above the energy threshold, or no packets) is reported once ([`Output::Silent`]: a
//!   voicemail ends).
//!
//! - **Prompts**: a leg can be played to ([`Bridge::play`]: IVR prompts, announcements, music
//!   on hold); while it is, the other leg's audio is not relayed to it, and the bridge sends a
//!   20 ms frame of the clip every 20 ms of `now`, in the leg's codec, as its own RTP stream.
//!
//! - **RTCP** (with [`Bridge::enable_rtcp`]): terminated per leg, not relayed. Switchboard
//!   re-originates the streams (transcoding, prompts, music), so each leg gets our own reports
//!   about what we send it (an SR when we sent in the interval, else an RR) and what we receive
//!   from it (one report block), every interval of `now`, with an SDES CNAME, and a BYE at
//!   [`Bridge::close`]. A leg's RTCP comes on its own socket ([`Bridge::handle_rtcp`], latched
//!   like RTP) or, with rtcp-mux (RFC 5761), on the RTP socket, told apart by packet type (§4).
//!   What the peers report about our streams, with the round-trip time, is in
//!   [`Bridge::quality`]. Per packet this costs only the counts of what is sent; the rest is
//!   done once per interval.
//!
//! Sequence numbers, timestamps and SSRCs pass through unchanged: each direction is one stream
//! from one source. Hold (a `sendonly` re-INVITE) simply stops the held side's packets.

use crate::dtmf::{Detector, EventReceiver};
use crate::g711::Law;
use crate::player::{Clip, Player};
use crate::rtcp::{self, PeerView, Received, Reporter, Sent};
use crate::rtp::{Header, Packet, ReceiveStats, is_rtcp};
use crate::silence::{DEFAULT_THRESHOLD_DBFS, SilenceDetector};
use crate::wav::Recorder;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// One side of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller (trunk or customer).
    Caller,
    /// The agent's phone.
    Agent,
}

impl Leg {
    /// The other side.
    pub fn other(self) -> Leg {
        match self {
            Leg::Caller => Leg::Agent,
            Leg::Agent => Leg::Caller,
        }
    }

    fn index(self) -> usize {
        match self {
            Leg::Caller => 0,
            Leg::Agent => 1,
        }
    }
}

/// What a leg's session description negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegMedia {
    /// Its codec.
    pub law: Law,
    /// The payload type it uses for that codec.
    pub payload_type: u8,
    /// Its telephone-event payload type, if it has one.
    pub telephone_event: Option<u8>,
    /// Where its SDP says it receives RTP (until latching learns the real address).
    pub remote: Option<SocketAddr>,
    /// Where its SDP says it receives RTCP (`a=rtcp`, RFC 3605; `None`: the RTP port + 1).
    pub rtcp: Option<SocketAddr>,
    /// RTCP shares the RTP port (`a=rtcp-mux`, RFC 5761).
    pub rtcp_mux: bool,
}

impl LegMedia {
    /// Where the leg's SDP says it receives RTCP.
    pub fn rtcp_remote(&self) -> Option<SocketAddr> {
        if self.rtcp_mux {
            return self.remote;
        }
        self.rtcp.or_else(|| {
            self.remote
                .map(|r| SocketAddr::new(r.ip(), r.port().wrapping_add(1)))
        })
    }
}

/// How a digit came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// An RFC 4733 telephone-event.
    Event,
    /// A tone in the audio.
    InBand,
}

/// What the driver should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `datagram` from `leg`'s socket to `to`.
    Send {
        /// The socket (leg) to send from.
        leg: Leg,
        /// Destination.
        to: SocketAddr,
        /// The datagram.
        datagram: Vec<u8>,
    },
    /// A key was pressed on `leg`.
    Digit {
        /// Which leg.
        leg: Leg,
        /// The key.
        digit: char,
        /// How it was detected.
        source: DigitSource,
    },
    /// Bytes to append to the recording file (after its 44-byte header).
    Record(Vec<u8>),
    /// `leg` has sent nothing for the timeout.
    TimedOut(Leg),
    /// `leg` has been silent for the time given to [`Bridge::detect_silence`] (reported once).
    Silent(Leg),
    /// A clip played to `leg` has been played out.
    Played {
        /// Which leg.
        leg: Leg,
        /// The clip's id.
        id: u64,
    },
    /// Send an RTCP compound packet from `leg`'s RTCP socket (not muxed; a muxed leg's RTCP is
    /// an [`Output::Send`] from its RTP socket).
    SendRtcp {
        /// The socket (leg) to send from.
        leg: Leg,
        /// Destination.
        to: SocketAddr,
        /// The compound packet.
        datagram: Vec<u8>,
    },
}

/// A leg's media quality at the end of a call (or at any time).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LegQuality {
    /// RTP packets received from the leg.
    pub received: u64,
    /// Packets lost (expected and not received).
    pub lost: u64,
    /// `lost` of the packets expected (0..=1).
    pub loss_fraction: f64,
    /// Our interarrival jitter of its stream, ms.
    pub jitter_ms: f64,
    /// RTP packets we sent to it.
    pub sent: u64,
    /// What the leg reported about our stream (and the round-trip time), if it sent RTCP.
    pub peer: Option<PeerView>,
}

/// Why a datagram was not relayed (counted by the driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drops {
    /// Not RTP, or broken.
    pub malformed: u64,
    /// From an address other than the latched one.
    pub stranger: u64,
    /// RTCP that could not be used: malformed (RFC 3550 A.2), or RTCP is off (it is never
    /// relayed: each leg's reports describe its own side).
    pub rtcp: u64,
    /// A payload type the leg did not negotiate.
    pub payload_type: u64,
    /// The other leg's address is not known yet.
    pub no_destination: u64,
}

#[derive(Debug, Clone)]
struct LegState {
    media: Option<LegMedia>,
    remote: Option<SocketAddr>,
    latched: bool,
    last_rx: Option<u64>,
    timed_out: bool,
    stats: ReceiveStats,
    events: EventReceiver,
    detector: Option<Detector>,
    audio: VecDeque<i16>,
    relayed: u64,
    player: Player,
    /// `now` of the next frame to play (while playing).
    play_next: Option<u64>,
    /// The played stream's own sequence, timestamp and SSRC.
    out_seq: u16,
    out_ts: u32,
    played: u64,
    /// The SSRC of the last packet received.
    remote_ssrc: u32,
    /// Packets expected and received from the leg's earlier sources (a new SSRC, e.g. another
    /// phone after a transfer, starts `stats` again).
    earlier: (u64, u64),
    /// What was sent to the leg (for its SRs).
    sent: Sent,
    /// Where its RTCP goes, and whether that was learned from its packets.
    rtcp_remote: Option<SocketAddr>,
    rtcp_latched: bool,
    reporter: Option<Reporter>,
    silence: Option<SilenceDetector>,
}

impl LegState {
    fn new() -> LegState {
        LegState {
            media: None,
            remote: None,
            latched: false,
            last_rx: None,
            timed_out: false,
            stats: ReceiveStats::default(),
            events: EventReceiver::default(),
            detector: None,
            audio: VecDeque::new(),
            relayed: 0,
            player: Player::new(),
            play_next: None,
            out_seq: 0,
            out_ts: 0,
            played: 0,
            remote_ssrc: 0,
            earlier: (0, 0),
            sent: Sent::default(),
            rtcp_remote: None,
            rtcp_latched: false,
            reporter: None,
            silence: None,
        }
    }

    /// Whether RTCP reports to this leg are due: its media is set and the session is live (we
    /// received from it or sent to it), not before (no RTCP into a session not yet answered).
    fn wants_reports(&self) -> bool {
        self.media.is_some()
            && (self.stats.expected() > 0 || self.sent.packets > 0 || self.rtcp_latched)
    }

    /// Counts a packet sent to this leg.
    fn count_sent(&mut self, now: u64, ssrc: u32, timestamp: u32, payload: usize) {
        self.sent.packets += 1;
        self.sent.octets += payload as u64;
        self.sent.ssrc = ssrc;
        self.sent.timestamp = timestamp;
        self.sent.at = now;
    }
}

/// Where a relayed packet's payload is and what the receiving leg's SR counts of it.
struct Sending {
    ssrc: u32,
    timestamp: u32,
    payload_at: usize,
    payload_len: usize,
}

/// A recording in progress.
#[derive(Debug, Clone)]
struct Recording {
    recorder: Recorder,
    /// `now` of the next 20 ms frame to write.
    next: u64,
}

/// The most audio buffered per leg for the recorder (1 s): a burst beyond it is cut.
const MAX_BUFFERED: usize = 8000;
/// Recording frames are written every 20 ms.
const FRAME_MS: u64 = 20;

/// One call's media bridge. See the module docs.
#[derive(Debug, Clone)]
pub struct Bridge {
    legs: [LegState; 2],
    recording: Option<Recording>,
    timeout_ms: u64,
    outputs: VecDeque<Output>,
    drops: Drops,
    scratch: Vec<i16>,
    cname: String,
}

impl Bridge {
    /// A bridge whose legs time out after `timeout_ms` without packets (0: never).
    pub fn new(timeout_ms: u64) -> Bridge {
        Bridge {
            legs: [LegState::new(), LegState::new()],
            recording: None,
            timeout_ms,
            outputs: VecDeque::new(),
            drops: Drops::default(),
            scratch: Vec::new(),
            cname: String::new(),
        }
    }

    /// Terminates RTCP on both legs: a report to each every `interval_ms` of `now` (the first
    /// after half of it, once the leg's media is set), NTP timestamps from `wall_at_zero` (Unix
    /// ms at `now` = 0), SDES CNAME `cname`.
    pub fn enable_rtcp(&mut self, interval_ms: u64, wall_at_zero: u64, cname: &str) {
        for l in &mut self.legs {
            l.reporter = Some(Reporter::new(interval_ms, wall_at_zero));
        }
        self.cname = cname.to_owned();
    }

    /// Sets (or changes, after a re-INVITE) what a leg negotiated. A new SDP address is taken
    /// until the leg's packets show where it really is.
    pub fn set_media(&mut self, leg: Leg, media: LegMedia) {
        let l = &mut self.legs[leg.index()];
        // A new address in the SDP (the phone moved) is learned again from its packets.
        let moved = l.media.is_some_and(|m| m.remote != media.remote);
        if !l.latched || moved {
            l.latched = false;
            l.remote = media.remote;
        }
        let rtcp_moved = l
            .media
            .is_some_and(|m| m.rtcp_remote() != media.rtcp_remote());
        if !l.rtcp_latched || rtcp_moved {
            l.rtcp_latched = false;
            l.rtcp_remote = media.rtcp_remote();
        }
        l.media = Some(media);
    }

    /// Reports [`Output::Silent`] once `leg` has been quiet for `hold_ms` from `now` (no frame
    /// above [`DEFAULT_THRESHOLD_DBFS`], or no packets); `None` turns it off.
    pub fn detect_silence(&mut self, now: u64, leg: Leg, hold_ms: Option<u64>) {
        self.legs[leg.index()].silence =
            hold_ms.map(|h| SilenceDetector::new(now, h, DEFAULT_THRESHOLD_DBFS));
    }

    /// Turns in-band DTMF detection on or off for a leg (trunks that send tones in the audio).
    pub fn detect_in_band(&mut self, leg: Leg, on: bool) {
        self.legs[leg.index()].detector = on.then(Detector::new);
    }

    /// Starts recording at `now` (returns false if it already records). The driver writes
    /// [`crate::wav::header`] first and [`Bridge::recording_header`] over it at the end.
    pub fn start_recording(&mut self, now: u64) -> bool {
        if self.recording.is_some() {
            return false;
        }
        for l in &mut self.legs {
            l.audio.clear();
        }
        self.recording = Some(Recording {
            recorder: Recorder::new(),
            next: now + FRAME_MS,
        });
        true
    }

    /// Pauses the recording (the timeline goes on as silence); false if not recording or paused.
    pub fn pause_recording(&mut self) -> bool {
        self.recording.as_mut().is_some_and(|r| r.recorder.pause())
    }

    /// Resumes a paused recording.
    pub fn resume_recording(&mut self) -> bool {
        self.recording.as_mut().is_some_and(|r| r.recorder.resume())
    }

    /// The recorder (for its header, frame count and paused spans), if recording.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recording.as_ref().map(|r| &r.recorder)
    }

    /// The WAV header for what was recorded so far.
    pub fn recording_header(&self) -> Option<[u8; crate::wav::HEADER_LEN]> {
        self.recorder().map(Recorder::header)
    }

    /// Receive statistics of a leg.
    pub fn stats(&self, leg: Leg) -> &ReceiveStats {
        &self.legs[leg.index()].stats
    }

    /// Packets relayed from a leg to the other.
    pub fn relayed(&self, leg: Leg) -> u64 {
        self.legs[leg.index()].relayed
    }

    /// The address a leg's packets are sent to.
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        self.legs[leg.index()].remote
    }

    /// What was dropped and why.
    pub fn drops(&self) -> Drops {
        self.drops
    }

    /// Queues `clip` to be played to `leg` (after what is queued already).
    pub fn play(&mut self, now: u64, leg: Leg, clip: Clip) {
        let l = &mut self.legs[leg.index()];
        l.player.push(clip);
        if l.play_next.is_none() {
            l.play_next = Some(now);
        }
    }

    /// Stops what is played to `leg`; true if something was.
    pub fn stop_playing(&mut self, leg: Leg) -> bool {
        let l = &mut self.legs[leg.index()];
        l.play_next = None;
        l.player.interrupt()
    }

    /// Whether `leg` is being played to (the other leg is not heard).
    pub fn is_playing(&self, leg: Leg) -> bool {
        self.legs[leg.index()].player.is_playing()
    }

    /// Frames of prompts sent to a leg.
    pub fn played(&self, leg: Leg) -> u64 {
        self.legs[leg.index()].played
    }

    /// A leg's quality: what we received from it, and what it reported about our stream.
    pub fn quality(&self, leg: Leg) -> LegQuality {
        let l = &self.legs[leg.index()];
        let expected = l.earlier.0 + l.stats.expected();
        let received = l.earlier.1 + l.stats.received();
        let lost = expected.saturating_sub(received);
        LegQuality {
            received,
            lost,
            loss_fraction: if expected == 0 {
                0.0
            } else {
                lost as f64 / expected as f64
            },
            jitter_ms: l.stats.jitter() / 8.0,
            sent: l.sent.packets,
            peer: l.reporter.as_ref().and_then(Reporter::peer),
        }
    }

    /// A datagram arrived on `leg`'s RTCP socket from `from` (not muxed): latched like RTP
    /// (the first source is kept, strangers are dropped), then read.
    pub fn handle_rtcp(&mut self, now: u64, leg: Leg, from: SocketAddr, datagram: &[u8]) {
        let l = &mut self.legs[leg.index()];
        if l.rtcp_latched && l.rtcp_remote != Some(from) {
            self.drops.stranger += 1;
            return;
        }
        if l.reporter.is_none() {
            self.drops.rtcp += 1;
            return;
        }
        l.rtcp_latched = true;
        l.rtcp_remote = Some(from);
        self.read_rtcp(now, leg, datagram);
    }

    fn read_rtcp(&mut self, now: u64, leg: Leg, datagram: &[u8]) {
        let Some(r) = self.legs[leg.index()].reporter.as_mut() else {
            self.drops.rtcp += 1;
            return;
        };
        match rtcp::parse(datagram) {
            Ok(packets) => r.handle_packets(now, &packets),
            Err(_) => self.drops.rtcp += 1,
        }
    }

    /// Writes `leg`'s report at `now` (the last one, with a BYE, when `bye`).
    fn send_report(&mut self, now: u64, leg: Leg, bye: bool) {
        let l = &mut self.legs[leg.index()];
        let Some(reporter) = l.reporter.as_mut() else {
            return;
        };
        let received = (l.stats.expected() > 0).then(|| Received {
            ssrc: l.remote_ssrc,
            expected: l.stats.expected(),
            received: l.stats.received(),
            highest_sequence: l.stats.extended_max(),
            jitter: l.stats.jitter() as u32,
        });
        let own = 0x5342_0000 | leg.index() as u32;
        let c = reporter.report(now, own, &l.sent, received.as_ref(), &self.cname, bye);
        let mux = l.media.is_some_and(|m| m.rtcp_mux);
        let to = if mux { l.remote } else { l.rtcp_remote };
        let Some(to) = to else {
            return;
        };
        let mut datagram = Vec::with_capacity(96);
        rtcp::write(&c, &mut datagram);
        self.outputs.push_back(if mux {
            Output::Send { leg, to, datagram }
        } else {
            Output::SendRtcp { leg, to, datagram }
        });
    }

    /// The call is over: each leg whose reports had started gets a last one with a BYE
    /// (RFC 3550 §6.6). Nothing is reported after this.
    pub fn close(&mut self, now: u64) {
        for leg in [Leg::Caller, Leg::Agent] {
            let started = self.legs[leg.index()]
                .reporter
                .as_ref()
                .is_some_and(|r| r.poll_timeout().is_some());
            if started {
                self.send_report(now, leg, true);
            }
        }
    }

    /// A datagram arrived on `leg`'s socket from `from`.
    pub fn handle_datagram(&mut self, now: u64, leg: Leg, from: SocketAddr, datagram: &[u8]) {
        let i = leg.index();
        {
            let l = &mut self.legs[i];
            if l.latched && l.remote != Some(from) {
                self.drops.stranger += 1;
                return;
            }
            if !l.latched {
                // RFC 4961 symmetric RTP: answer where it sends from.
                l.latched = true;
                l.remote = Some(from);
            }
            l.last_rx = Some(now);
            l.timed_out = false;
        }
        if is_rtcp(datagram) {
            // rtcp-mux (RFC 5761 §4): the packet type tells RTCP from RTP.
            self.read_rtcp(now, leg, datagram);
            return;
        }
        let Ok(p) = Packet::parse(datagram) else {
            self.drops.malformed += 1;
            return;
        };
        let Some(media) = self.legs[i].media else {
            self.drops.payload_type += 1;
            return;
        };
        // 8 kHz timestamps: `now` in ms is 8 samples each.
        let l = &mut self.legs[i];
        if l.remote_ssrc != p.header.ssrc && l.stats.expected() > 0 {
            // RFC 3550 A.1: statistics are per source. The old source's counts are kept for the
            // leg's quality; its sequence numbers say nothing about the new one's.
            l.earlier.0 += l.stats.expected();
            l.earlier.1 += l.stats.received();
            l.stats = ReceiveStats::default();
            if let Some(r) = &mut l.reporter {
                r.new_source();
            }
        }
        l.stats
            .record(p.header.sequence, p.header.timestamp, now * 8);
        l.remote_ssrc = p.header.ssrc;
        let sending = Sending {
            ssrc: p.header.ssrc,
            timestamp: p.header.timestamp,
            payload_at: p.payload.as_ptr() as usize - datagram.as_ptr() as usize,
            payload_len: p.payload.len(),
        };
        let other = leg.other();
        let o = other.index();
        let pt = p.header.payload_type;
        if Some(pt) == media.telephone_event {
            if let Some(d) = self.legs[i].events.handle(p.header.timestamp, p.payload) {
                self.outputs.push_back(Output::Digit {
                    leg,
                    digit: d.digit,
                    source: DigitSource::Event,
                });
            }
            let to_pt = self.legs[o].media.and_then(|m| m.telephone_event);
            match to_pt {
                Some(to_pt) => self.forward(now, leg, datagram, &sending, to_pt, None),
                None => self.drops.payload_type += 1,
            }
            return;
        }
        if pt != media.payload_type {
            self.drops.payload_type += 1;
            return;
        }
        let wants_audio = self.recording.is_some()
            || self.legs[i].detector.is_some()
            || self.legs[i].silence.is_some();
        if wants_audio {
            media.law.decode(p.payload, &mut self.scratch);
            let l = &mut self.legs[i];
            if let Some(s) = &mut l.silence {
                s.push(now, &self.scratch);
            }
            if let Some(det) = &mut l.detector {
                for digit in det.push(&self.scratch) {
                    self.outputs.push_back(Output::Digit {
                        leg,
                        digit,
                        source: DigitSource::InBand,
                    });
                }
            }
            if self.recording.is_some() {
                l.audio.extend(self.scratch.iter().copied());
                let excess = l.audio.len().saturating_sub(MAX_BUFFERED);
                l.audio.drain(..excess);
            }
        }
        let Some(to) = self.legs[o].media else {
            self.drops.no_destination += 1;
            return;
        };
        let transcode = (media.law != to.law).then_some((media.law, to.law));
        self.forward(now, leg, datagram, &sending, to.payload_type, transcode);
    }

    /// Sends `datagram` (from `from`) to the other leg with payload type `pt`, transcoding its
    /// payload when asked.
    fn forward(
        &mut self,
        now: u64,
        from: Leg,
        datagram: &[u8],
        sending: &Sending,
        pt: u8,
        transcode: Option<(Law, Law)>,
    ) {
        let o = from.other().index();
        if self.legs[o].player.is_playing() {
            // A prompt or music is played to that leg: it does not hear this one.
            return;
        }
        let Some(to) = self.legs[o].remote else {
            self.drops.no_destination += 1;
            return;
        };
        let mut out = datagram.to_vec();
        out[1] = (out[1] & 0x80) | (pt & 0x7F);
        if let Some((a, b)) = transcode {
            // The payload sits at the same offset in the copy.
            let (start, len) = (sending.payload_at, sending.payload_len);
            a.transcode(b, &mut out[start..start + len]);
        }
        self.legs[from.index()].relayed += 1;
        self.legs[o].count_sent(now, sending.ssrc, sending.timestamp, sending.payload_len);
        self.outputs.push_back(Output::Send {
            leg: from.other(),
            to,
            datagram: out,
        });
    }

    /// Sends the frames of `leg`'s prompt due at `now`.
    fn play_due(&mut self, now: u64, leg: Leg) {
        let l = &mut self.legs[leg.index()];
        let Some(mut next) = l.play_next else {
            return;
        };
        // Far behind (the task was starved): skip ahead instead of sending a burst.
        if now.saturating_sub(next) > 5 * FRAME_MS {
            next = now;
        }
        let mut payload = Vec::with_capacity(crate::FRAME);
        while next <= now {
            let Some(frame) = l.player.next_frame() else {
                l.play_next = None;
                break;
            };
            next += FRAME_MS;
            l.play_next = Some(next);
            let (Some(media), Some(to)) = (l.media, l.remote) else {
                continue;
            };
            payload.clear();
            media.law.encode(&frame, &mut payload);
            let mut datagram = Vec::with_capacity(12 + payload.len());
            Header {
                marker: l.played == 0,
                payload_type: media.payload_type,
                sequence: l.out_seq,
                timestamp: l.out_ts,
                ssrc: 0x5342_0000 | leg.index() as u32,
                csrc: Vec::new(),
            }
            .write(&payload, &mut datagram);
            let ssrc = 0x5342_0000 | leg.index() as u32;
            l.count_sent(now, ssrc, l.out_ts, payload.len());
            l.out_seq = l.out_seq.wrapping_add(1);
            l.out_ts = l.out_ts.wrapping_add(crate::FRAME as u32);
            l.played += 1;
            self.outputs.push_back(Output::Send { leg, to, datagram });
        }
        for id in l.player.take_finished() {
            self.outputs.push_back(Output::Played { leg, id });
        }
        if !l.player.is_playing() {
            l.play_next = None;
        }
    }

    /// Time has come (see [`Bridge::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: u64) {
        self.play_due(now, Leg::Caller);
        self.play_due(now, Leg::Agent);
        if let Some(rec) = &mut self.recording {
            let mut bytes = Vec::new();
            while rec.next <= now {
                let [a, b] = &mut self.legs;
                let take = |l: &mut LegState| -> Vec<i16> {
                    let n = l.audio.len().min(crate::FRAME);
                    let mut f: Vec<i16> = l.audio.drain(..n).collect();
                    f.resize(crate::FRAME, 0);
                    f
                };
                let (left, right) = (take(a), take(b));
                rec.recorder.push(&left, &right, &mut bytes);
                rec.next += FRAME_MS;
            }
            if !bytes.is_empty() {
                self.outputs.push_back(Output::Record(bytes));
            }
        }
        for leg in [Leg::Caller, Leg::Agent] {
            let l = &mut self.legs[leg.index()];
            let live = l.wants_reports();
            let due = l.reporter.as_mut().is_some_and(|r| {
                if live {
                    r.start(now);
                }
                r.is_due(now)
            });
            if due {
                self.send_report(now, leg, false);
            }
        }
        for (leg, l) in [Leg::Caller, Leg::Agent].into_iter().zip(&mut self.legs) {
            if l.silence.as_ref().is_some_and(|s| s.is_silent(now)) {
                l.silence = None;
                self.outputs.push_back(Output::Silent(leg));
            }
        }
        if self.timeout_ms > 0 {
            for (leg, l) in [Leg::Caller, Leg::Agent].into_iter().zip(&mut self.legs) {
                if let Some(last) = l.last_rx
                    && !l.timed_out
                    && now.saturating_sub(last) >= self.timeout_ms
                {
                    l.timed_out = true;
                    self.outputs.push_back(Output::TimedOut(leg));
                }
            }
        }
    }

    /// When to call [`Bridge::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        // Called after every datagram: a plain fold, no iterator chains.
        fn earlier(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, None) => x,
                (None, y) => y,
            }
        }
        let mut next = self.recording.as_ref().map(|r| r.next);
        for l in &self.legs {
            next = earlier(next, l.play_next);
            if self.timeout_ms > 0 && !l.timed_out {
                next = earlier(next, l.last_rx.map(|t| t + self.timeout_ms));
            }
            if let Some(r) = &l.reporter {
                next = earlier(
                    next,
                    if r.is_started() {
                        r.poll_timeout()
                    } else {
                        // The session just became live: start at once.
                        l.wants_reports().then_some(0)
                    },
                );
            }
            if let Some(s) = &l.silence {
                next = earlier(next, Some(s.poll_timeout()));
            }
        }
        next
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}
