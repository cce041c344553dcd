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
//!
//! - **Prompts**: a leg can be played to ([`Bridge::play`]: IVR prompts, announcements, music
//!   on hold); while it is, the other leg's audio is not relayed to it, and the bridge sends a
//!   20 ms frame of the clip every 20 ms of `now`, in the leg's codec, as its own RTP stream.
//!
//! Sequence numbers, timestamps and SSRCs pass through unchanged: each direction is one stream
//! from one source. Hold (a `sendonly` re-INVITE) simply stops the held side's packets.

use crate::dtmf::{Detector, EventReceiver};
use crate::g711::Law;
use crate::player::{Clip, Player};
use crate::rtp::{Header, Packet, ReceiveStats, is_rtcp};
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
    /// A clip played to `leg` has been played out.
    Played {
        /// Which leg.
        leg: Leg,
        /// The clip's id.
        id: u64,
    },
}

/// Why a datagram was not relayed (counted by the driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drops {
    /// Not RTP, or broken.
    pub malformed: u64,
    /// From an address other than the latched one.
    pub stranger: u64,
    /// RTCP (not relayed: each leg's reports describe its own side).
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
        }
    }
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
        }
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
        l.media = Some(media);
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
            self.drops.rtcp += 1;
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
        self.legs[i]
            .stats
            .record(p.header.sequence, p.header.timestamp, now * 8);
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
                Some(to_pt) => self.forward(leg, datagram, to_pt, None),
                None => self.drops.payload_type += 1,
            }
            return;
        }
        if pt != media.payload_type {
            self.drops.payload_type += 1;
            return;
        }
        let wants_audio = self.recording.is_some() || self.legs[i].detector.is_some();
        if wants_audio {
            media.law.decode(p.payload, &mut self.scratch);
            let l = &mut self.legs[i];
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
        self.forward(leg, datagram, to.payload_type, transcode);
    }

    /// Sends `datagram` (from `from`) to the other leg with payload type `pt`, transcoding its
    /// payload when asked.
    fn forward(&mut self, from: Leg, datagram: &[u8], pt: u8, transcode: Option<(Law, Law)>) {
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
        if let Some((a, b)) = transcode
            && let Ok(p) = Packet::parse(datagram)
        {
            // The payload sits at the same offset in the copy.
            let start = p.payload.as_ptr() as usize - datagram.as_ptr() as usize;
            a.transcode(b, &mut out[start..start + p.payload.len()]);
        }
        self.legs[from.index()].relayed += 1;
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
        let rec = self.recording.as_ref().map(|r| r.next);
        let dead = (self.timeout_ms > 0)
            .then(|| {
                self.legs
                    .iter()
                    .filter(|l| !l.timed_out)
                    .filter_map(|l| l.last_rx.map(|t| t + self.timeout_ms))
                    .min()
            })
            .flatten();
        [rec, dead, self.legs[0].play_next, self.legs[1].play_next]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}
