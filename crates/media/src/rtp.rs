//! RTP packets (RFC 3550 §5.1) and receive statistics (RFC 3550 Appendix A).
//!
//! [`Packet::parse`] reads a datagram without copying; [`Header::write`] builds one. A datagram
//! that is not RTP version 2, or whose lengths do not add up, is an [`RtpError`]: the caller
//! counts and drops it. [`is_rtcp`] tells RTCP from RTP on a multiplexed port (RFC 5761 §4).

use thiserror::Error;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header, or than the header it announces.
    #[error("truncated RTP packet")]
    Truncated,
    /// Not version 2.
    #[error("RTP version {0} is not 2")]
    Version(u8),
    /// The padding count is zero or runs past the payload.
    #[error("bad RTP padding")]
    Padding,
}

/// The fixed header (and what follows it up to the payload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Marker bit (the first packet of a talkspurt, the start of a DTMF event).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp (8 kHz units for G.711).
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources.
    pub csrc: Vec<u32>,
}

/// A parsed packet borrowing its payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The header.
    pub header: Header,
    /// The header extension (profile, data), if any; passed through, not interpreted.
    pub extension: Option<(u16, &'a [u8])>,
    /// The payload, padding removed.
    pub payload: &'a [u8],
}

/// Whether a datagram on a multiplexed port is RTCP (payload types 64-95 in the second byte's low
/// seven bits, i.e. packet types 192-223: RFC 5761 §4).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

impl<'a> Packet<'a> {
    /// Parses a datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::Truncated);
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let padding = buf[0] & 0x20 != 0;
        let has_ext = buf[0] & 0x10 != 0;
        let cc = (buf[0] & 0x0F) as usize;
        let mut at = 12 + 4 * cc;
        if buf.len() < at {
            return Err(RtpError::Truncated);
        }
        let csrc = (0..cc)
            .map(|i| u32::from_be_bytes(word(buf, 12 + 4 * i)))
            .collect();
        let extension = if has_ext {
            if buf.len() < at + 4 {
                return Err(RtpError::Truncated);
            }
            let profile = u16::from_be_bytes([buf[at], buf[at + 1]]);
            let words = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
            let start = at + 4;
            at = start + 4 * words;
            if buf.len() < at {
                return Err(RtpError::Truncated);
            }
            Some((profile, &buf[start..at]))
        } else {
            None
        };
        let mut end = buf.len();
        if padding {
            let n = buf[end - 1] as usize;
            if n == 0 || at + n > end {
                return Err(RtpError::Padding);
            }
            end -= n;
        }
        Ok(Packet {
            header: Header {
                marker: buf[1] & 0x80 != 0,
                payload_type: buf[1] & 0x7F,
                sequence: u16::from_be_bytes([buf[2], buf[3]]),
                timestamp: u32::from_be_bytes(word(buf, 4)),
                ssrc: u32::from_be_bytes(word(buf, 8)),
                csrc,
            },
            extension,
            payload: &buf[at..end],
        })
    }
}

fn word(buf: &[u8], at: usize) -> [u8; 4] {
    [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
}

impl Header {
    /// Appends this header and `payload` to `out` (no extension, no padding).
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        let cc = self.csrc.len().min(15);
        out.push(0x80 | cc as u8);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrc[..cc] {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(payload);
    }
}

/// Rewrites the sequence number, timestamp and SSRC of an RTP datagram in place: a relay that
/// sends one stream towards a leg after another (a prompt, then the agent) keeps the leg's
/// numbering continuous. Returns false for a datagram too short to be RTP.
pub fn rewrite(datagram: &mut [u8], sequence: u16, timestamp: u32, ssrc: u32) -> bool {
    if datagram.len() < 12 {
        return false;
    }
    datagram[2..4].copy_from_slice(&sequence.to_be_bytes());
    datagram[4..8].copy_from_slice(&timestamp.to_be_bytes());
    datagram[8..12].copy_from_slice(&ssrc.to_be_bytes());
    true
}

/// Receive statistics of one stream (RFC 3550 A.1 sequence validation simplified to the
/// extended highest sequence, A.3 loss, A.8 interarrival jitter).
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    started: bool,
    base: u32,
    max: u32,
    cycles: u32,
    received: u64,
    duplicates: u64,
    late: u64,
    transit: Option<i64>,
    jitter: f64,
}

/// How a packet relates to the stream so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next or a later packet (a gap counts as loss until the missing ones come).
    InOrder,
    /// An older packet arriving after a newer one.
    Late,
    /// The sequence number of a packet already counted (only recognised for the newest).
    Duplicate,
}

impl ReceiveStats {
    /// Counts a packet with `sequence` and media `timestamp`, received at `arrival` (in the same
    /// units as the timestamp: samples at the clock rate).
    pub fn record(&mut self, sequence: u16, timestamp: u32, arrival: u64) -> Arrival {
        let seq = u32::from(sequence);
        // A.8: D(i-1, i) from the difference of relative transit times.
        let transit = arrival as i64 - i64::from(timestamp);
        if let Some(prev) = self.transit {
            let d = (transit - prev).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
        if !self.started {
            self.started = true;
            self.base = seq;
            self.max = seq;
            self.received = 1;
            return Arrival::InOrder;
        }
        let max_low = self.max & 0xFFFF;
        let delta = seq.wrapping_sub(max_low) & 0xFFFF;
        if delta == 0 {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.received += 1;
        if delta < 0x8000 {
            if seq < max_low {
                self.cycles += 1 << 16;
            }
            self.max = self.cycles | seq;
            Arrival::InOrder
        } else {
            self.late += 1;
            Arrival::Late
        }
    }

    /// Packets expected from the first to the highest sequence seen.
    pub fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        u64::from(self.max.wrapping_sub(self.base)) + 1
    }

    /// Packets received (duplicates not counted).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets lost (expected and not received; late arrivals fill gaps).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Packets that arrived after a newer one.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Duplicates seen.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Interarrival jitter estimate, in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The extended highest sequence number received.
    pub fn extended_max(&self) -> u32 {
        self.max
    }
}
