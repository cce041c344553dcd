//! RTCP (RFC 3550 §6): compound packets read and written, round-trip time from report blocks,
//! and one leg's report state ([`Reporter`]).
//!
//! [`parse`] reads a compound packet with the validity checks of RFC 3550 A.2: every packet is
//! version 2, the first is an SR or an RR, only the last may be padded, and the lengths add up
//! to the datagram's. Anything else is an [`RtcpError`] (the caller counts and drops it); no
//! input panics. SR, RR, SDES and BYE are read; APP and the feedback and XR types are skipped
//! as [`RtcpPacket::Other`].
//!
//! [`write()`] builds our compound packets: an SR (when we sent media in the interval) or an RR,
//! at most one report block, an SDES with our CNAME, and optionally a BYE (RFC 3550 §6.1:
//! every compound packet carries a report and a CNAME).
//!
//! [`Reporter`] is what a media anchor that terminates RTCP keeps per leg: the last SR heard
//! from the peer (for LSR and DLSR), the counts at the last report (for the fraction lost of
//! the interval, A.3), the peer's reports about our stream with their round-trip time (§6.4.1),
//! and a deterministic report interval driven by `now` (milliseconds, given by the caller; no
//! clock is read here). Its first report is due half an interval after it starts (§6.2 allows
//! half the minimum for the first one).

use thiserror::Error;

/// Why a datagram is not a valid compound RTCP packet (RFC 3550 A.2).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtcpError {
    /// Shorter than a header, or than the lengths announce.
    #[error("truncated RTCP packet")]
    Truncated,
    /// Not version 2.
    #[error("RTCP version {0} is not 2")]
    Version(u8),
    /// The first packet of a compound packet is not an SR or an RR.
    #[error("a compound RTCP packet starts with type {0}, not SR or RR")]
    NotReport(u8),
    /// A packet's contents do not fit its length.
    #[error("RTCP packet of type {0} does not fit its length")]
    Length(u8),
    /// Padding on a packet other than the last, or a padding count that does not fit.
    #[error("bad RTCP padding")]
    Padding,
}

/// Sender report (SR), RFC 3550 §6.4.1.
pub const SR: u8 = 200;
/// Receiver report (RR), §6.4.2.
pub const RR: u8 = 201;
/// Source description (SDES), §6.5.
pub const SDES: u8 = 202;
/// Goodbye (BYE), §6.6.
pub const BYE: u8 = 203;
/// Application-defined (APP), §6.7.
pub const APP: u8 = 204;

/// SDES item type of the canonical name.
const CNAME: u8 = 1;

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low).
    pub ntp: u64,
    /// The same instant in the stream's RTP timestamp units.
    pub rtp_timestamp: u32,
    /// Packets sent since the start (wraps).
    pub packets: u32,
    /// Payload octets sent since the start (wraps).
    pub octets: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction of packets lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates may make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from that source (0: none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (0: none).
    pub delay_since_last_sr: u32,
}

/// One packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// A sender report.
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// What it sent.
        info: SenderInfo,
        /// What it received.
        reports: Vec<ReportBlock>,
    },
    /// A receiver report.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// What it received.
        reports: Vec<ReportBlock>,
    },
    /// Source descriptions: each chunk's source and its CNAME, if it has one.
    SourceDescription(Vec<(u32, Option<String>)>),
    /// Sources leaving, with the reason if given.
    Bye {
        /// The sources.
        sources: Vec<u32>,
        /// The reason, if any.
        reason: Option<String>,
    },
    /// APP or a type this module does not read (feedback, XR): skipped.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

fn blocks(body: &[u8], at: usize, count: usize, pt: u8) -> Result<Vec<ReportBlock>, RtcpError> {
    if body.len() < at + 24 * count {
        return Err(RtcpError::Length(pt));
    }
    Ok((0..count)
        .filter_map(|i| {
            let b = at + 24 * i;
            let lost = be32(body, b + 4)?;
            // 24-bit two's complement in the low bits.
            let cumulative = ((lost << 8) as i32) >> 8;
            Some(ReportBlock {
                ssrc: be32(body, b)?,
                fraction_lost: (lost >> 24) as u8,
                cumulative_lost: cumulative,
                highest_sequence: be32(body, b + 8)?,
                jitter: be32(body, b + 12)?,
                last_sr: be32(body, b + 16)?,
                delay_since_last_sr: be32(body, b + 20)?,
            })
        })
        .collect())
}

fn sdes(body: &[u8], count: usize) -> Result<Vec<(u32, Option<String>)>, RtcpError> {
    let mut out = Vec::with_capacity(count.min(31));
    let mut at = 4;
    for _ in 0..count {
        let ssrc = be32(body, at).ok_or(RtcpError::Length(SDES))?;
        at += 4;
        let mut cname = None;
        loop {
            let ty = *body.get(at).ok_or(RtcpError::Length(SDES))?;
            if ty == 0 {
                // The null item ends the chunk; the chunk is padded to a 32-bit boundary.
                at = (at + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(at + 1).ok_or(RtcpError::Length(SDES))?);
            let text = body
                .get(at + 2..at + 2 + len)
                .ok_or(RtcpError::Length(SDES))?;
            if ty == CNAME {
                cname = Some(String::from_utf8_lossy(text).into_owned());
            }
            at += 2 + len;
        }
        if at > body.len() {
            return Err(RtcpError::Length(SDES));
        }
        out.push((ssrc, cname));
    }
    Ok(out)
}

/// Parses a compound RTCP packet (validity checks of RFC 3550 A.2).
pub fn parse(datagram: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let head = datagram.get(at..at + 4).ok_or(RtcpError::Truncated)?;
        let version = head[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let padded = head[0] & 0x20 != 0;
        let count = usize::from(head[0] & 0x1F);
        let pt = head[1];
        if at == 0 && pt != SR && pt != RR {
            return Err(RtcpError::NotReport(pt));
        }
        let len = 4 * (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1);
        let mut body = datagram.get(at..at + len).ok_or(RtcpError::Truncated)?;
        at += len;
        if padded {
            // Only the last packet of a compound packet may be padded.
            if at != datagram.len() {
                return Err(RtcpError::Padding);
            }
            let n = usize::from(body[len - 1]);
            if n == 0 || n > len - 4 {
                return Err(RtcpError::Padding);
            }
            body = &body[..len - n];
        }
        let packet = match pt {
            SR => {
                if body.len() < 28 {
                    return Err(RtcpError::Length(pt));
                }
                let word = |i: usize| be32(body, i).ok_or(RtcpError::Length(pt));
                let info = SenderInfo {
                    ntp: (u64::from(word(8)?) << 32) | u64::from(word(12)?),
                    rtp_timestamp: word(16)?,
                    packets: word(20)?,
                    octets: word(24)?,
                };
                RtcpPacket::SenderReport {
                    ssrc: word(4)?,
                    info,
                    reports: blocks(body, 28, count, pt)?,
                }
            }
            RR => {
                let ssrc = be32(body, 4).ok_or(RtcpError::Length(pt))?;
                RtcpPacket::ReceiverReport {
                    ssrc,
                    reports: blocks(body, 8, count, pt)?,
                }
            }
            SDES => RtcpPacket::SourceDescription(sdes(body, count)?),
            BYE => {
                let sources = (0..count)
                    .map(|i| be32(body, 4 + 4 * i).ok_or(RtcpError::Length(pt)))
                    .collect::<Result<Vec<_>, _>>()?;
                let r = 4 + 4 * count;
                let reason = match body.get(r) {
                    Some(&n) => {
                        let text = body
                            .get(r + 1..r + 1 + usize::from(n))
                            .ok_or(RtcpError::Length(pt))?;
                        Some(String::from_utf8_lossy(text).into_owned())
                    }
                    None => None,
                };
                RtcpPacket::Bye { sources, reason }
            }
            other => RtcpPacket::Other { packet_type: other },
        };
        out.push(packet);
    }
    if out.is_empty() {
        return Err(RtcpError::Truncated);
    }
    Ok(out)
}

/// What one of our compound packets says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compound<'a> {
    /// Our SSRC on this leg.
    pub ssrc: u32,
    /// Sender information: an SR when present, else an RR.
    pub sender: Option<SenderInfo>,
    /// The report block about the source we receive, if we receive one.
    pub report: Option<ReportBlock>,
    /// Our canonical name (at most 255 bytes are written).
    pub cname: &'a str,
    /// End with a BYE for our SSRC.
    pub bye: bool,
}

fn header(out: &mut Vec<u8>, count: usize, pt: u8, words_after: usize) {
    out.push(0x80 | (count as u8 & 0x1F));
    out.push(pt);
    out.extend_from_slice(&(words_after as u16).to_be_bytes());
}

fn write_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_sequence.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

/// Appends the compound packet `c` to `out`: SR or RR, SDES (CNAME), then BYE if asked.
pub fn write(c: &Compound<'_>, out: &mut Vec<u8>) {
    let blocks = usize::from(c.report.is_some());
    match &c.sender {
        Some(info) => {
            header(out, blocks, SR, 6 + 6 * blocks);
            out.extend_from_slice(&c.ssrc.to_be_bytes());
            out.extend_from_slice(&info.ntp.to_be_bytes());
            out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&info.packets.to_be_bytes());
            out.extend_from_slice(&info.octets.to_be_bytes());
        }
        None => {
            header(out, blocks, RR, 1 + 6 * blocks);
            out.extend_from_slice(&c.ssrc.to_be_bytes());
        }
    }
    if let Some(b) = &c.report {
        write_block(out, b);
    }
    // SDES: one chunk, the CNAME item, a null item, padded to 32 bits (RFC 3550 §6.5).
    let name = &c.cname.as_bytes()[..c.cname.len().min(255)];
    let chunk = 4 + 2 + name.len() + 1;
    let padded = (chunk + 3) & !3;
    header(out, 1, SDES, padded / 4);
    out.extend_from_slice(&c.ssrc.to_be_bytes());
    out.push(CNAME);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + (padded - chunk) + 1, 0);
    if c.bye {
        header(out, 1, BYE, 1);
        out.extend_from_slice(&c.ssrc.to_be_bytes());
    }
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX: u64 = 2_208_988_800;

/// The NTP timestamp of a wall-clock time in milliseconds since the Unix epoch.
pub fn ntp_from_unix_ms(ms: u64) -> u64 {
    let secs = ms / 1000 + NTP_UNIX;
    let frac = ((ms % 1000) << 32) / 1000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (LSR and the arrival time of §6.4.1).
pub fn middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Milliseconds as the 1/65536 s units of DLSR.
fn ms_to_units(ms: u64) -> u32 {
    ((ms.min(u64::from(u32::MAX) / 66) << 16) / 1000) as u32
}

/// Round-trip time from a report block about our stream that arrived at `arrival` (the middle 32
/// bits of our NTP time then): `arrival - LSR - DLSR` (RFC 3550 §6.4.1), in 1/65536 s. `None`
/// when the peer has not received an SR from us (LSR 0) or the result would be negative.
pub fn round_trip(arrival: u32, last_sr: u32, delay_since_last_sr: u32) -> Option<u32> {
    if last_sr == 0 {
        return None;
    }
    let since = arrival.wrapping_sub(last_sr);
    // More than half the 32-bit range back is a time before our SR: not a round trip.
    if since >= 0x8000_0000 || since < delay_since_last_sr {
        return None;
    }
    Some(since - delay_since_last_sr)
}

/// 1/65536 s units as milliseconds.
pub fn units_to_ms(units: u32) -> f64 {
    f64::from(units) * 1000.0 / 65536.0
}

/// What we sent on a leg (kept by the relay as it sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    /// Packets sent since the start.
    pub packets: u64,
    /// Payload octets sent since the start.
    pub octets: u64,
    /// The SSRC of the last packet sent.
    pub ssrc: u32,
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// `now` (ms) when it was sent.
    pub at: u64,
}

/// What we receive on a leg, for the report block (from [`crate::rtp::ReceiveStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// The source.
    pub ssrc: u32,
    /// Packets expected (first to highest sequence).
    pub expected: u64,
    /// Packets received.
    pub received: u64,
    /// Extended highest sequence number.
    pub highest_sequence: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
}

/// The peer's view of our stream, from its last report block, and the round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeerView {
    /// Fraction lost in its last interval (0..=1).
    pub fraction_lost: f64,
    /// Cumulative packets lost.
    pub cumulative_lost: i64,
    /// Its interarrival jitter of our stream, in ms (8 kHz timestamps).
    pub jitter_ms: f64,
    /// The last round-trip time measured, in ms.
    pub rtt_ms: Option<f64>,
    /// Report blocks received.
    pub reports: u64,
}

/// One leg's RTCP state. See the module docs.
#[derive(Debug, Clone)]
pub struct Reporter {
    interval_ms: u64,
    /// Wall-clock Unix ms at `now` = 0 (for the NTP timestamps).
    wall_at_zero: u64,
    next: Option<u64>,
    started: bool,
    expected_prior: u64,
    received_prior: u64,
    sent_prior: u64,
    /// Middle bits of the peer's last SR and `now` when it came.
    last_sr: Option<(u32, u64)>,
    peer: Option<PeerView>,
    peer_ssrc: Option<u32>,
    peer_bye: bool,
    reports_sent: u64,
}

impl Reporter {
    /// Reports every `interval_ms` (at least 1); `wall_at_zero` is the Unix time in ms at
    /// `now` = 0.
    pub fn new(interval_ms: u64, wall_at_zero: u64) -> Reporter {
        Reporter {
            interval_ms: interval_ms.max(1),
            wall_at_zero,
            next: None,
            started: false,
            expected_prior: 0,
            received_prior: 0,
            sent_prior: 0,
            last_sr: None,
            peer: None,
            peer_ssrc: None,
            peer_bye: false,
            reports_sent: 0,
        }
    }

    /// Our NTP timestamp at `now`.
    pub fn ntp(&self, now: u64) -> u64 {
        ntp_from_unix_ms(self.wall_at_zero.saturating_add(now))
    }

    /// Starts the schedule at `now` if it has not started: the first report is due half an
    /// interval later.
    pub fn start(&mut self, now: u64) {
        if !self.started {
            self.started = true;
            self.next = Some(now + self.interval_ms / 2);
        }
    }

    /// Whether the schedule has started (it stays started after the BYE).
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The peer's stream has a new source: the interval's counts start again.
    pub fn new_source(&mut self) {
        self.expected_prior = 0;
        self.received_prior = 0;
        self.last_sr = None;
    }

    /// When the next report is due (none before the start and after the BYE).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next
    }

    /// Whether a report is due at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.next.is_some_and(|t| t <= now)
    }

    /// Reads a compound packet the peer sent, arrived at `now`.
    pub fn handle_packets(&mut self, now: u64, packets: &[RtcpPacket]) {
        for p in packets {
            let reports = match p {
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    self.last_sr = Some((middle(info.ntp), now));
                    self.peer_ssrc = Some(*ssrc);
                    reports
                }
                RtcpPacket::ReceiverReport { ssrc, reports } => {
                    self.peer_ssrc = Some(*ssrc);
                    reports
                }
                RtcpPacket::Bye { .. } => {
                    self.peer_bye = true;
                    continue;
                }
                _ => continue,
            };
            // The peer receives only from us on this leg: its first block is about our stream.
            if let Some(b) = reports.first() {
                let rtt = round_trip(middle(self.ntp(now)), b.last_sr, b.delay_since_last_sr)
                    .map(units_to_ms);
                let previous = self.peer.and_then(|p| p.rtt_ms);
                let reports = self.peer.map_or(0, |p| p.reports) + 1;
                self.peer = Some(PeerView {
                    fraction_lost: f64::from(b.fraction_lost) / 256.0,
                    cumulative_lost: i64::from(b.cumulative_lost),
                    jitter_ms: f64::from(b.jitter) / 8.0,
                    rtt_ms: rtt.or(previous),
                    reports,
                });
            }
        }
    }

    /// The report due at `now` (or the last one, with `bye`): what to write with [`write()`].
    /// `ssrc` is ours when we have not sent. Moves the schedule and the interval's counts on.
    pub fn report<'a>(
        &mut self,
        now: u64,
        ssrc: u32,
        sent: &Sent,
        received: Option<&Received>,
        cname: &'a str,
        bye: bool,
    ) -> Compound<'a> {
        let ntp = self.ntp(now);
        // An SR when we sent media since the last report (RFC 3550 §6.4).
        let sender = (sent.packets > self.sent_prior).then(|| SenderInfo {
            ntp,
            // The last packet's timestamp moved on to `now` at 8 kHz.
            rtp_timestamp: sent
                .timestamp
                .wrapping_add((now.saturating_sub(sent.at) * 8) as u32),
            packets: sent.packets as u32,
            octets: sent.octets as u32,
        });
        let report = received.map(|r| {
            // RFC 3550 A.3: the fraction lost of this interval.
            let expected = r.expected.saturating_sub(self.expected_prior);
            let got = r.received.saturating_sub(self.received_prior);
            self.expected_prior = r.expected;
            self.received_prior = r.received;
            let lost = expected.saturating_sub(got);
            let fraction = (lost << 8)
                .checked_div(expected)
                .map_or(0, |f| f.min(255) as u8);
            let (last_sr, dlsr) = self
                .last_sr
                .map_or((0, 0), |(m, at)| (m, ms_to_units(now.saturating_sub(at))));
            ReportBlock {
                ssrc: r.ssrc,
                fraction_lost: fraction,
                cumulative_lost: (r.expected as i64 - r.received as i64)
                    .clamp(-0x80_0000, 0x7F_FFFF) as i32,
                highest_sequence: r.highest_sequence,
                jitter: r.jitter,
                last_sr,
                delay_since_last_sr: dlsr,
            }
        });
        self.sent_prior = sent.packets;
        self.reports_sent += 1;
        self.next = if bye {
            None
        } else {
            Some(now + self.interval_ms)
        };
        Compound {
            ssrc: if sent.packets > 0 { sent.ssrc } else { ssrc },
            sender,
            report,
            cname,
            bye,
        }
    }

    /// The peer's view of our stream, if it reported.
    pub fn peer(&self) -> Option<PeerView> {
        self.peer
    }

    /// The peer's SSRC from its reports.
    pub fn peer_ssrc(&self) -> Option<u32> {
        self.peer_ssrc
    }

    /// Whether the peer sent a BYE.
    pub fn has_peer_left(&self) -> bool {
        self.peer_bye
    }

    /// Reports written so far.
    pub fn reports_sent(&self) -> u64 {
        self.reports_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SR shaped like RFC 3550 §6.4.1's figure, written out by hand: SSRC 0x11223344, NTP
    /// 0x83AA7E80_80000000 (1970-01-01 00:00:00.5, the Unix epoch in NTP), RTP timestamp 1000, 50 packets, 8000 octets,
    /// one block about 0xAABBCCDD (fraction 64/256, 3 lost, highest 0x0001_0005, jitter 12,
    /// LSR 0x7E80_8000, DLSR 0x0000_8000), then SDES CNAME "a@b" and a BYE.
    const SR_BYTES: [u8; 76] = [
        0x81, 200, 0x00, 0x0C, // V=2, RC=1, SR, length 12 words
        0x11, 0x22, 0x33, 0x44, // SSRC
        0x83, 0xAA, 0x7E, 0x80, 0x80, 0x00, 0x00, 0x00, // NTP
        0x00, 0x00, 0x03, 0xE8, // RTP timestamp
        0x00, 0x00, 0x00, 0x32, // packets
        0x00, 0x00, 0x1F, 0x40, // octets
        0xAA, 0xBB, 0xCC, 0xDD, // report block: SSRC_1
        0x40, 0x00, 0x00, 0x03, // fraction 64, cumulative 3
        0x00, 0x01, 0x00, 0x05, // extended highest sequence
        0x00, 0x00, 0x00, 0x0C, // jitter
        0x7E, 0x80, 0x80, 0x00, // LSR
        0x00, 0x00, 0x80, 0x00, // DLSR
        0x81, 202, 0x00, 0x03, // SDES, 1 chunk, 3 words
        0x11, 0x22, 0x33, 0x44, // SSRC
        0x01, 0x03, b'a', b'@', b'b', 0x00, 0x00, 0x00, // CNAME "a@b", null item, padding
        0x81, 203, 0x00, 0x01, // BYE, 1 source
        0x11, 0x22, 0x33, 0x44,
    ];

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0xAABB_CCDD,
            fraction_lost: 64,
            cumulative_lost: 3,
            highest_sequence: 0x0001_0005,
            jitter: 12,
            last_sr: 0x7E80_8000,
            delay_since_last_sr: 0x8000,
        }
    }

    #[test]
    fn a_hand_built_sr_is_read_field_by_field() {
        let p = parse(&SR_BYTES).expect("valid");
        assert_eq!(
            p,
            vec![
                RtcpPacket::SenderReport {
                    ssrc: 0x1122_3344,
                    info: SenderInfo {
                        ntp: 0x83AA_7E80_8000_0000,
                        rtp_timestamp: 1000,
                        packets: 50,
                        octets: 8000,
                    },
                    reports: vec![block()],
                },
                RtcpPacket::SourceDescription(vec![(0x1122_3344, Some("a@b".into()))]),
                RtcpPacket::Bye {
                    sources: vec![0x1122_3344],
                    reason: None,
                },
            ]
        );
    }

    #[test]
    fn we_write_the_same_bytes_as_the_hand_built_sr() {
        let mut out = Vec::new();
        write(
            &Compound {
                ssrc: 0x1122_3344,
                sender: Some(SenderInfo {
                    ntp: 0x83AA_7E80_8000_0000,
                    rtp_timestamp: 1000,
                    packets: 50,
                    octets: 8000,
                }),
                report: Some(block()),
                cname: "a@b",
                bye: true,
            },
            &mut out,
        );
        assert_eq!(out, SR_BYTES);
    }

    #[test]
    fn an_rr_without_blocks_and_a_long_cname_round_trip() {
        let name = "switchboard-caller@example.com";
        let mut out = Vec::new();
        write(
            &Compound {
                ssrc: 7,
                sender: None,
                report: None,
                cname: name,
                bye: false,
            },
            &mut out,
        );
        assert_eq!(out.len() % 4, 0);
        assert_eq!(&out[..8], &[0x80, 201, 0, 1, 0, 0, 0, 7]);
        assert_eq!(
            parse(&out).expect("valid"),
            vec![
                RtcpPacket::ReceiverReport {
                    ssrc: 7,
                    reports: vec![]
                },
                RtcpPacket::SourceDescription(vec![(7, Some(name.into()))]),
            ]
        );
    }

    #[test]
    fn negative_cumulative_loss_is_24_bit_signed() {
        let mut b = block();
        b.cumulative_lost = -2;
        let mut out = Vec::new();
        write(
            &Compound {
                ssrc: 1,
                sender: None,
                report: Some(b),
                cname: "x",
                bye: false,
            },
            &mut out,
        );
        assert_eq!(&out[12..16], &[0x40, 0xFF, 0xFF, 0xFE]);
        let RtcpPacket::ReceiverReport { reports, .. } = &parse(&out).expect("valid")[0] else {
            panic!("an RR");
        };
        assert_eq!(reports[0].cumulative_lost, -2);
    }

    #[test]
    fn invalid_compounds_are_errors() {
        // not version 2
        let mut v1 = SR_BYTES;
        v1[0] = 0x41;
        assert_eq!(parse(&v1), Err(RtcpError::Version(1)));
        // starts with SDES
        assert_eq!(parse(&SR_BYTES[52..]), Err(RtcpError::NotReport(SDES)));
        // lengths do not add up: cut in the middle of the BYE
        assert_eq!(parse(&SR_BYTES[..72]), Err(RtcpError::Truncated));
        // the SR announces 2 blocks in its 12 words
        let mut rc = SR_BYTES;
        rc[0] = 0x82;
        assert_eq!(parse(&rc), Err(RtcpError::Length(SR)));
        // padding on the first packet of three
        let mut pad = SR_BYTES;
        pad[0] |= 0x20;
        assert_eq!(parse(&pad), Err(RtcpError::Padding));
        // a trailing stray byte
        let mut long = SR_BYTES.to_vec();
        long.push(0);
        assert_eq!(parse(&long), Err(RtcpError::Truncated));
        assert_eq!(parse(&[]), Err(RtcpError::Truncated));
        // the relay test's short RR (RC 1 in one word)
        assert_eq!(
            parse(&[0x81, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::Length(RR))
        );
    }

    #[test]
    fn padding_on_the_last_packet_is_removed() {
        // RR with no blocks, padded by 4 bytes: length 2 words after the header.
        let rr = [0xA0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
        assert_eq!(
            parse(&rr).expect("valid"),
            vec![RtcpPacket::ReceiverReport {
                ssrc: 9,
                reports: vec![]
            }]
        );
        let zero = [0xA0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0];
        assert_eq!(parse(&zero), Err(RtcpError::Padding));
        let too_much = [0xA0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 12];
        assert_eq!(parse(&too_much), Err(RtcpError::Padding));
    }

    #[test]
    fn app_and_feedback_packets_are_skipped() {
        let mut c = SR_BYTES[..52].to_vec();
        // APP "name" with 4 bytes of data, and an RTPFB (205) of 2 words.
        c.extend_from_slice(&[
            0x80, APP, 0, 3, 0, 0, 0, 1, b'n', b'a', b'm', b'e', 1, 2, 3, 4,
        ]);
        c.extend_from_slice(&[0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        let p = parse(&c).expect("valid");
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], RtcpPacket::Other { packet_type: APP });
        assert_eq!(p[2], RtcpPacket::Other { packet_type: 205 });
    }

    #[test]
    fn round_trip_time_is_arrival_minus_lsr_minus_dlsr() {
        // RFC 3550 §6.4.1's example: A = 0xb710_8000 (46864.500 s), LSR = 0xb705_2000
        // (46853.125 s), DLSR = 0x0005_4000 (5.250 s): RTT 6.125 s.
        let rtt = round_trip(0xB710_8000, 0xB705_2000, 0x0005_4000).expect("rtt");
        assert_eq!(rtt, 0x0006_2000);
        assert_eq!(units_to_ms(rtt), 6125.0);
        assert_eq!(round_trip(0xB710_8000, 0, 0), None, "no SR received yet");
        assert_eq!(round_trip(0xB705_2000, 0xB705_2000, 0x10), None, "negative");
        // across the wrap of the middle 32 bits
        assert_eq!(round_trip(0x0000_1000, 0xFFFF_F000, 0x1000), Some(0x1000));
    }

    #[test]
    fn ntp_of_a_unix_time() {
        // 2000-01-01T00:00:00.5Z is 946684800.5 s after 1970, 3155673600.5 after 1900.
        let ntp = ntp_from_unix_ms(946_684_800_500);
        assert_eq!(ntp >> 32, 3_155_673_600);
        assert_eq!(ntp as u32, 0x8000_0000);
        assert_eq!(ntp >> 32, 0xBC17_C200);
        assert_eq!(middle(ntp), 0xC200_8000);
        assert_eq!(ntp_from_unix_ms(500), 0x83AA_7E80_8000_0000);
        assert_eq!(middle(0x83AA_7E80_8000_0000), 0x7E80_8000);
    }

    /// Two reporters facing each other: the round trip is the time the report spent in flight
    /// (the peer's DLSR removes its own holding time).
    #[test]
    fn a_reporter_measures_the_round_trip_and_the_peer_sees_our_loss_figures() {
        let mut us = Reporter::new(5000, 1_700_000_000_000);
        us.start(0);
        assert_eq!(
            us.poll_timeout(),
            Some(2500),
            "the first after half an interval"
        );
        assert!(!us.is_due(2499) && us.is_due(2500));
        let sent = Sent {
            packets: 125,
            octets: 20_000,
            ssrc: 0x5342_0000,
            timestamp: 20_000,
            at: 2480,
        };
        // 100 expected, 90 received from the peer's source
        let rx = Received {
            ssrc: 0x7E57,
            expected: 100,
            received: 90,
            highest_sequence: 99,
            jitter: 16,
        };
        let c = us.report(2500, 1, &sent, Some(&rx), "sb@test", false);
        assert_eq!(us.poll_timeout(), Some(7500));
        let info = c.sender.expect("we sent: an SR");
        assert_eq!((info.packets, info.octets), (125, 20_000));
        assert_eq!(info.rtp_timestamp, 20_000 + 20 * 8);
        assert_eq!(c.ssrc, 0x5342_0000);
        let b = c.report.expect("a block");
        assert_eq!(
            (b.ssrc, b.cumulative_lost, b.fraction_lost),
            (0x7E57, 10, 25)
        );
        assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0), "no SR heard");
        let mut bytes = Vec::new();
        write(&c, &mut bytes);
        let ours = parse(&bytes).expect("valid");

        // The peer gets it 30 ms later, holds it 100 ms, and answers with an RR whose DLSR is
        // those 100 ms; it arrives back 30 ms later: RTT 60 ms.
        let RtcpPacket::SenderReport { info, .. } = ours[0] else {
            panic!("an SR first");
        };
        let answer = RtcpPacket::ReceiverReport {
            ssrc: 0x7E57,
            reports: vec![ReportBlock {
                ssrc: 0x5342_0000,
                fraction_lost: 128,
                cumulative_lost: 4,
                highest_sequence: 124,
                jitter: 40,
                last_sr: middle(info.ntp),
                delay_since_last_sr: ms_to_units(100),
            }],
        };
        us.handle_packets(2660, &[answer]);
        let peer = us.peer().expect("reported");
        let rtt = peer.rtt_ms.expect("rtt");
        assert!((rtt - 60.0).abs() < 1.0, "{rtt}");
        assert_eq!(peer.cumulative_lost, 4);
        assert_eq!(peer.fraction_lost, 0.5);
        assert_eq!(peer.jitter_ms, 5.0);
        assert_eq!(us.peer_ssrc(), Some(0x7E57));

        // The peer's SR is echoed in our next block: LSR its middle bits, DLSR the wait.
        let peer_sr = RtcpPacket::SenderReport {
            ssrc: 0x7E57,
            info: SenderInfo {
                ntp: 0x0000_1234_5678_0000,
                ..SenderInfo::default()
            },
            reports: vec![],
        };
        us.handle_packets(7000, &[peer_sr]);
        let rx2 = Received {
            expected: 350,
            received: 340,
            ..rx
        };
        let c = us.report(7500, 1, &sent, Some(&rx2), "sb@test", false);
        assert!(c.sender.is_none(), "nothing sent in the interval: an RR");
        let b = c.report.expect("block");
        assert_eq!(b.last_sr, 0x1234_5678);
        assert_eq!(b.delay_since_last_sr, 32768, "500 ms");
        assert_eq!(b.cumulative_lost, 10);
        assert_eq!(b.fraction_lost, 0, "no new loss in this interval");
        let last = us.report(8000, 1, &sent, None, "sb@test", true);
        assert!(last.bye && last.report.is_none());
        assert_eq!(us.poll_timeout(), None, "nothing after the BYE");
        us.handle_packets(
            8001,
            &[RtcpPacket::Bye {
                sources: vec![0x7E57],
                reason: None,
            }],
        );
        assert!(us.has_peer_left());
        assert_eq!(us.reports_sent(), 3);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]
            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse(&bytes);
            }

            /// Random bytes behind a valid-looking first header: the length walk and the
            /// item walks are what gets exercised.
            #[test]
            fn random_bodies_never_panic(
                first in 0u8..32, pt in 200u8..=204, len in 0u16..64,
                rest in proptest::collection::vec(any::<u8>(), 0..300)
            ) {
                let mut b = vec![0x80 | first, pt, (len >> 8) as u8, len as u8];
                b.extend(rest);
                let _ = parse(&b);
                // and the same behind a valid RR
                let mut c = vec![0x80, 201, 0, 1, 0, 0, 0, 1];
                c.extend_from_slice(&b);
                let _ = parse(&c);
            }

            #[test]
            fn what_we_write_parses_back(
                ssrc: u32, sr: bool, ntp: u64, packets: u32, lost in -0x80_0000i32..0x80_0000,
                fraction: u8, cname in "[a-z@.]{0,40}", bye: bool, with_block: bool
            ) {
                let block = ReportBlock { ssrc: ssrc ^ 1, fraction_lost: fraction, cumulative_lost: lost, ..ReportBlock::default() };
                let c = Compound {
                    ssrc,
                    sender: sr.then_some(SenderInfo { ntp, packets, ..SenderInfo::default() }),
                    report: with_block.then_some(block),
                    cname: &cname,
                    bye,
                };
                let mut out = Vec::new();
                write(&c, &mut out);
                prop_assert_eq!(out.len() % 4, 0);
                let p = parse(&out).expect("ours is valid");
                prop_assert_eq!(p.len(), 2 + usize::from(bye));
                let reports = match &p[0] {
                    RtcpPacket::SenderReport { info, reports, .. } => { prop_assert_eq!(info.ntp, ntp); reports.clone() }
                    RtcpPacket::ReceiverReport { reports, .. } => reports.clone(),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert_eq!(reports, with_block.then_some(block).into_iter().collect::<Vec<_>>());
                prop_assert_eq!(&p[1], &RtcpPacket::SourceDescription(vec![(ssrc, Some(cname.clone()))]));
            }
        }
    }
}
