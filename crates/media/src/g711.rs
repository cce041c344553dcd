//! G.711 (ITU-T G.711, 11/1988): 8-bit companded telephony samples.
//!
//! The encoders follow the reference segment search (the well-known Sun Microsystems public
//! domain implementation of G.711): µ-law on 14-bit magnitudes with a bias of 33, A-law on 13-bit
//! magnitudes with even bits inverted. The 16-bit input is first rounded to 14 or 13 bits, as
//! SoX does, so that `-x` encodes as the mirror of `x`. Decoding goes through 256-entry tables built at compile
//! time; transcoding between the two laws goes through linear, as G.711 Appendix does.

const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
/// µ-law clip level in 14-bit magnitude.
const ULAW_CLIP: i32 = 8159;
/// µ-law bias (0x84 in 16-bit, 33 in 14-bit).
const ULAW_BIAS: i32 = 0x84;

const fn segment(v: i32, ends: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if v <= ends[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// The 16-bit sample reduced to `bits` by rounding to nearest (half up), saturating at the top,
/// as SoX does: a plain shift would floor negative samples and make the encoding asymmetric.
const fn reduce(sample: i16, bits: u32) -> i32 {
    let shift = 16 - bits;
    let max = (1i32 << (bits - 1)) - 1;
    let v = ((sample as i32) + (1 << (shift - 1))) >> shift;
    if v > max { max } else { v }
}

/// Encodes a 16-bit linear sample to µ-law.
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    let mut v = reduce(sample, 14);
    let mask: i32 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > ULAW_CLIP {
        v = ULAW_CLIP;
    }
    v += ULAW_BIAS >> 2;
    let seg = segment(v, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let u = ((seg as i32) << 4) | ((v >> (seg + 1)) & 0x0F);
    (u ^ mask) as u8
}

/// Decodes a µ-law byte to a 16-bit linear sample.
pub const fn ulaw_to_linear_calc(u: u8) -> i16 {
    let u = !u as i32;
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

/// Encodes a 16-bit linear sample to A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    let mut v = reduce(sample, 13);
    let mask: i32 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut a = (seg as i32) << 4;
    if seg < 2 {
        a |= (v >> 1) & 0x0F;
    } else {
        a |= (v >> seg) & 0x0F;
    }
    (a ^ mask) as u8
}

/// Decodes an A-law byte to a 16-bit linear sample.
pub const fn alaw_to_linear_calc(a: u8) -> i16 {
    let a = (a ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn decode_table(ulaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if ulaw {
            ulaw_to_linear_calc(i as u8)
        } else {
            alaw_to_linear_calc(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW: [i16; 256] = decode_table(true);
static ALAW: [i16; 256] = decode_table(false);

const fn transcode_table(from_ulaw: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if from_ulaw {
            linear_to_alaw(ulaw_to_linear_calc(i as u8))
        } else {
            linear_to_ulaw(alaw_to_linear_calc(i as u8))
        };
        i += 1;
    }
    t
}

static ULAW_TO_ALAW: [u8; 256] = transcode_table(true);
static ALAW_TO_ULAW: [u8; 256] = transcode_table(false);

/// Decodes a µ-law byte (table lookup).
#[inline]
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW[u as usize]
}

/// Decodes an A-law byte (table lookup).
#[inline]
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW[a as usize]
}

/// A G.711 law, as negotiated in SDP (payload types 0 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, `PCMU`, static payload type 0.
    Ulaw,
    /// A-law, `PCMA`, static payload type 8.
    Alaw,
}

impl Law {
    /// Its static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The law of a static payload type.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// The byte of silence (linear 0).
    pub fn silence(self) -> u8 {
        self.encode_sample(0)
    }

    /// Encodes one sample.
    #[inline]
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Law::Ulaw => linear_to_ulaw(s),
            Law::Alaw => linear_to_alaw(s),
        }
    }

    /// Decodes one byte.
    #[inline]
    pub fn decode_sample(self, b: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_to_linear(b),
            Law::Alaw => alaw_to_linear(b),
        }
    }

    /// Decodes `bytes` into `out` (cleared first).
    pub fn decode(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.clear();
        let t = match self {
            Law::Ulaw => &ULAW,
            Law::Alaw => &ALAW,
        };
        out.extend(bytes.iter().map(|&b| t[b as usize]));
    }

    /// Encodes `samples` into `out` (cleared first).
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        out.clear();
        out.extend(samples.iter().map(|&s| self.encode_sample(s)));
    }

    /// Rewrites `bytes` of this law in place into law `to`.
    pub fn transcode(self, to: Law, bytes: &mut [u8]) {
        let t = match (self, to) {
            (Law::Ulaw, Law::Alaw) => &ULAW_TO_ALAW,
            (Law::Alaw, Law::Ulaw) => &ALAW_TO_ULAW,
            _ => return,
        };
        for b in bytes {
            *b = t[*b as usize];
        }
    }
}
