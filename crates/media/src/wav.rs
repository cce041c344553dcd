//! WAV files: the stereo call recorder, and reading prompt files.
//!
//! The recorder writes 16-bit PCM at 8 kHz, caller on the left channel and agent on the right.
//! It produces bytes and never touches a file: the media task appends what [`Recorder::push`]
//! returns to the file and, at the end, writes [`header`] over the first 44 bytes with the final
//! length. While paused (a card number being read out) it writes silence of the same length, so
//! the recording keeps the call's timeline, and it remembers the paused spans.
//!
//! [`parse`] reads the prompts a business uploads (16-bit PCM, µ-law or A-law, mono or stereo, any
//! rate) and [`to_8k_mono`] makes them playable on a G.711 call.

use crate::g711::Law;
use thiserror::Error;

/// The length of [`header`].
pub const HEADER_LEN: usize = 44;

/// The header of a 16-bit PCM WAV file with `data_bytes` of samples.
pub fn header(channels: u16, rate: u32, data_bytes: u32) -> [u8; HEADER_LEN] {
    let block = channels * 2;
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36u32.saturating_add(data_bytes)).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// The stereo call recorder's state.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    frames: u64,
    paused_at: Option<u64>,
    spans: Vec<(u64, u64)>,
}

impl Recorder {
    /// A recorder at the start of the call.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Appends one stretch of audio: `caller` and `agent` samples for the same instants (the
    /// shorter side is padded with silence). Returns the interleaved little-endian bytes to
    /// append to the file after the header.
    pub fn push(&mut self, caller: &[i16], agent: &[i16], out: &mut Vec<u8>) {
        let n = caller.len().max(agent.len());
        out.reserve(n * 4);
        let silent = self.paused_at.is_some();
        for i in 0..n {
            let (l, r) = if silent {
                (0, 0)
            } else {
                (
                    caller.get(i).copied().unwrap_or(0),
                    agent.get(i).copied().unwrap_or(0),
                )
            };
            out.extend_from_slice(&l.to_le_bytes());
            out.extend_from_slice(&r.to_le_bytes());
        }
        self.frames += n as u64;
    }

    /// Stops recording sound (the timeline goes on as silence). True if it was running.
    pub fn pause(&mut self) -> bool {
        if self.paused_at.is_some() {
            return false;
        }
        self.paused_at = Some(self.frames);
        true
    }

    /// Records sound again. True if it was paused.
    pub fn resume(&mut self) -> bool {
        match self.paused_at.take() {
            Some(from) => {
                self.spans.push((from, self.frames));
                true
            }
            None => false,
        }
    }

    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Sample frames written so far (one per 1/8000 s).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The paused spans as (first frame, end frame), a pause still running included.
    pub fn paused_spans(&self) -> Vec<(u64, u64)> {
        let mut v = self.spans.clone();
        if let Some(from) = self.paused_at {
            v.push((from, self.frames));
        }
        v
    }

    /// The header for what was written.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        let bytes = u32::try_from(self.frames.saturating_mul(4)).unwrap_or(u32::MAX);
        header(2, crate::RATE, bytes)
    }
}

/// Why a WAV file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WavError {
    /// Not RIFF/WAVE, or chunks that do not add up.
    #[error("not a WAV file: {0}")]
    Malformed(&'static str),
    /// A format other than 16-bit PCM, µ-law or A-law.
    #[error("unsupported WAV format {format} with {bits} bits per sample")]
    Unsupported {
        /// The format tag.
        format: u16,
        /// Bits per sample.
        bits: u16,
    },
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// Sample rate.
    pub rate: u32,
    /// Channels.
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

/// Reads a WAV file (PCM 16-bit, or G.711 µ-law/A-law: format tags 1, 7, 6).
pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::Malformed("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = at + 8;
        let end = body
            .checked_add(len)
            .ok_or(WavError::Malformed("chunk too long"))?;
        if id == b"fmt " {
            if len < 16 || end > bytes.len() {
                return Err(WavError::Malformed("short fmt chunk"));
            }
            let f = &bytes[body..];
            fmt = Some((
                u16::from_le_bytes([f[0], f[1]]),
                u16::from_le_bytes([f[2], f[3]]),
                u32::from_le_bytes([f[4], f[5], f[6], f[7]]),
                u16::from_le_bytes([f[14], f[15]]),
            ));
        } else if id == b"data" {
            let (format, channels, rate, bits) =
                fmt.ok_or(WavError::Malformed("data before fmt"))?;
            if channels == 0 || rate == 0 {
                return Err(WavError::Malformed("no channels or no rate"));
            }
            // A data chunk that claims more than the file holds is read as far as it goes
            // (recorders that crashed leave such files).
            let data = &bytes[body..end.min(bytes.len())];
            let samples = match (format, bits) {
                (1, 16) => data
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                (7, 8) => data.iter().map(|&b| Law::Ulaw.decode_sample(b)).collect(),
                (6, 8) => data.iter().map(|&b| Law::Alaw.decode_sample(b)).collect(),
                (format, bits) => return Err(WavError::Unsupported { format, bits }),
            };
            return Ok(Wav {
                rate,
                channels,
                samples,
            });
        }
        // Chunks are padded to an even length.
        at = end + (len & 1);
    }
    Err(WavError::Malformed("no data chunk"))
}

/// The file as 8 kHz mono: channels averaged, then resampled (a box low-pass over the source
/// samples each output sample spans when downsampling, linear interpolation when upsampling).
pub fn to_8k_mono(w: &Wav) -> Vec<i16> {
    let ch = usize::from(w.channels.max(1));
    let mono: Vec<f64> = w
        .samples
        .chunks(ch)
        .map(|c| c.iter().map(|&s| f64::from(s)).sum::<f64>() / c.len() as f64)
        .collect();
    if w.rate == crate::RATE || mono.is_empty() {
        return mono.iter().map(|&s| s.round() as i16).collect();
    }
    let ratio = f64::from(w.rate) / f64::from(crate::RATE);
    let out_len = ((mono.len() as f64) / ratio).floor() as usize;
    (0..out_len)
        .map(|i| {
            let v = if ratio > 1.0 {
                let from = (i as f64 * ratio) as usize;
                let to = (((i + 1) as f64 * ratio) as usize)
                    .min(mono.len())
                    .max(from + 1);
                mono[from..to].iter().sum::<f64>() / (to - from) as f64
            } else {
                let x = i as f64 * ratio;
                let j = x.floor() as usize;
                let frac = x - j as f64;
                let a = mono[j.min(mono.len() - 1)];
                let b = mono[(j + 1).min(mono.len() - 1)];
                a + (b - a) * frac
            };
            v.round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}
