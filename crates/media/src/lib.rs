//! Switchboard's media core: what a call's audio goes through once Switchboard anchors it.
//!
//! Owns, as pure functions and small state machines on frames and packets:
//! - [`g711`]: µ-law and A-law (ITU-T G.711), encode, decode and transcode;
//! - [`rtp`]: RTP packets (RFC 3550 §5.1), and per-stream receive statistics (sequence
//!   extension, loss, interarrival jitter: RFC 3550 A.1, A.3, A.8);
//! - [`rtcp`]: RTCP compound packets (RFC 3550 §6: SR, RR, SDES, BYE) read and written, and one
//!   leg's report state with its round-trip time;
//! - [`dtmf`]: RFC 4733 telephone-events (receiver that reports each digit once whatever the
//!   redundancy, and the packets a sender sends), and an in-band Goertzel detector for trunks that
//!   send tones in the audio;
//! - [`sdp`]: the audio part of SDP (RFC 4566) and the offer/answer choice of RFC 3264 for
//!   PCMU/PCMA and telephone-event;
//! - [`relay`]: one call's bridge between the caller's and the agent's legs (latching,
//!   transcoding, DTMF, recording, RTP timeouts, RTCP terminated per leg);
//! - [`mix`]: mixing with saturation (whisper, barge, conference) and silence;
//! - [`wav`]: the stereo recorder (caller left, agent right) with pause spans written as silence,
//!   and 16-bit PCM WAV reading with resampling to 8 kHz for prompts;
//! - [`player`]: prompts and music read out in 20 ms frames (queue, loop, barge-in);
//! - [`silence`]: how long decoded audio has been quiet (energy threshold; voicemail's end);
//! - [`tone`]: tones for tests and prompts (DTMF pairs, ringback, beeps).
//!
//! Deliberately absent: sockets, clocks and threads. Times are given by the caller (RTP timestamps,
//! sample counts, `now` where a timer is needed); the server's media task moves datagrams between
//! sockets and these functions. Everything here runs the same in a test and in production.

pub mod dtmf;
pub mod g711;
pub mod mix;
pub mod player;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod silence;
pub mod tone;
pub mod wav;

/// Samples per second of narrowband telephony (G.711).
pub const RATE: u32 = 8000;
/// Samples in one 20 ms frame at [`RATE`].
pub const FRAME: usize = 160;
