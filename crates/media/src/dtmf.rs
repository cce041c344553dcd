//! DTMF: RFC 4733 telephone-events and in-band detection.
//!
//! - [`Event`] is the 4-byte telephone-event payload (RFC 4733 §2.3).
//! - [`EventReceiver`] turns a stream of telephone-event packets into digits, each reported
//!   once: an event is identified by its RTP timestamp (RFC 4733 §2.5.1.2), so the redundant
//!   packets of a long press and the three end packets (§2.5.1.4) all belong to the one digit.
//! - [`event_packets`] gives what a sender sends for one digit: updates every packetization
//!   interval, then the end packet three times.
//! - [`Detector`] finds DTMF tones in 8 kHz linear audio with the Goertzel algorithm, for trunks
//!   that send digits in band. Its tolerances follow ITU-T Q.24: frequencies within 1.5% are
//!   accepted and those off by 3.5% rejected; tones of 40 ms are detected, tones of 20 ms are not;
//!   the twist (level difference of the two tones) may be up to 8 dB with the high tone louder
//!   and 4 dB with the low tone louder.

/// The digits of events 0-15 (RFC 4733 §3.2).
const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The digit of an event code (0-15), if it is one.
pub fn digit_of(event: u8) -> Option<char> {
    DIGITS.get(event as usize).copied()
}

/// The event code of a digit.
pub fn event_of(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&x| x == d).map(|i| i as u8)
}

/// A telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Event code (0-15 for DTMF).
    pub event: u8,
    /// The last packet(s) of the event.
    pub end: bool,
    /// Power level, 0 to -63 dBm0, as a positive number.
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl Event {
    /// Reads a payload (4 bytes; more are redundant events of RFC 2198 and are not read here).
    pub fn parse(payload: &[u8]) -> Option<Event> {
        if payload.len() < 4 {
            return None;
        }
        Some(Event {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3F,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A digit as the receiver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The digit.
    pub digit: char,
    /// RTP timestamp of the event's start.
    pub timestamp: u32,
}

/// Telephone-event packets to digits, each once.
#[derive(Debug, Clone, Default)]
pub struct EventReceiver {
    /// Timestamps of the last events seen (a few, for packets that arrive out of order).
    seen: Vec<u32>,
}

impl EventReceiver {
    /// Takes one telephone-event packet's timestamp and payload; returns the digit when this is
    /// the first packet of a new event.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let e = Event::parse(payload)?;
        let digit = digit_of(e.event)?;
        if self.seen.contains(&timestamp) {
            return None;
        }
        if self.seen.len() >= 8 {
            self.seen.remove(0);
        }
        self.seen.push(timestamp);
        Some(Digit { digit, timestamp })
    }
}

/// The payloads (with their marker bit) a sender sends for `digit` held `duration` timestamp
/// units, one update every `step` units (160 = 20 ms at 8 kHz): the first with the marker, the
/// end packet three times (RFC 4733 §2.5.1.4). All share the event's start timestamp.
pub fn event_packets(digit: char, duration: u16, step: u16, volume: u8) -> Vec<(bool, [u8; 4])> {
    let Some(event) = event_of(digit) else {
        return Vec::new();
    };
    let step = step.max(1);
    let mut out = Vec::new();
    let mut d = step.min(duration);
    loop {
        let end = d >= duration;
        let e = Event {
            event,
            end,
            volume,
            duration: d,
        };
        if end {
            for _ in 0..3 {
                out.push((out.is_empty(), e.to_bytes()));
            }
            return out;
        }
        out.push((out.is_empty(), e.to_bytes()));
        d = d.saturating_add(step).min(duration);
    }
}

const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Samples between two evaluations (5 ms at 8 kHz).
const HOP: usize = 40;
/// Window length factor: a window of `WINDOW_HZ / f` samples puts a 1.5% deviation at 0.45
/// bin (about -3 dB) and a 3.5% deviation at 1.05 bins, near the first null (below -25 dB).
const WINDOW_HZ: f64 = 240_000.0;
/// Longest window (25 ms): longer ones would blur the timing of short presses. The low group's
/// windows are capped here, which still leaves a 3.5% deviation more than 6 dB down.
const MAX_WINDOW: usize = 200;
/// Share of the windows' power the two tones must hold: the power-weighted mean of their
/// on-frequency responses (1 for clean tones exactly on frequency, about 0.6 at 1.5% off, at
/// most 0.12 at 3.5% off).
const MIN_SHARE: f64 = 0.30;
/// Least power of each tone (amplitude about 300 of 32767, near -40 dBm0).
const MIN_TONE_POWER: f64 = 300.0 * 300.0;
/// Each tone must beat the others of its group by this factor (6 dB).
const GROUP_MARGIN: f64 = 4.0;
/// Consecutive evaluations a digit must hold before it counts (25 ms of hits). Measured: every
/// key is found from 35 ms on, 1.5% off frequency included, and none at 26 ms or shorter (Q.24:
/// accept 40 ms, reject 23 ms; `tests/dtmf.rs` holds both edges).
const HOLD: usize = 5;
/// Evaluations without it before the same digit may count again (15 ms).
const GAP: usize = 3;

/// Goertzel state for one frequency over one window.
fn goertzel_power(samples: &[f64], freq: f64) -> f64 {
    let n = samples.len() as f64;
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(crate::RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let mag2 = s1 * s1 + s2 * s2 - k * s1 * s2;
    // A tone of amplitude A exactly on the frequency gives |X| = A·N/2: report A².
    4.0 * mag2 / (n * n)
}

/// In-band DTMF detection on 8 kHz linear audio. Feed it samples as they come
/// ([`Detector::push`]); it reports each key press once.
#[derive(Debug, Clone)]
pub struct Detector {
    buf: Vec<f64>,
    windows: [usize; 8],
    longest: usize,
    pending: usize,
    candidate: Option<char>,
    run: usize,
    reported: Option<char>,
    quiet: usize,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

impl Detector {
    /// A detector for 8 kHz audio.
    pub fn new() -> Detector {
        let mut windows = [0usize; 8];
        for (w, f) in windows.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *w = ((WINDOW_HZ / f).round() as usize).min(MAX_WINDOW);
        }
        let longest = windows.iter().copied().max().unwrap_or(0);
        Detector {
            buf: Vec::with_capacity(4 * longest),
            windows,
            longest,
            pending: 0,
            candidate: None,
            run: 0,
            reported: None,
            quiet: GAP,
        }
    }

    /// Takes samples; returns the digits whose press completed within them.
    pub fn push(&mut self, samples: &[i16]) -> Vec<char> {
        let mut out = Vec::new();
        for &s in samples {
            self.buf.push(f64::from(s));
            if self.buf.len() >= 4 * self.longest {
                // Keep the last window; compacting now and then keeps pushes O(1) on average.
                self.buf.drain(..self.buf.len() - self.longest);
            }
            self.pending += 1;
            if self.pending >= HOP {
                self.pending = 0;
                if let Some(d) = self.evaluate() {
                    out.push(d);
                }
            }
        }
        out
    }

    /// The key the last window holds, if any.
    fn key(&self) -> Option<char> {
        if self.buf.len() < self.longest {
            return None;
        }
        let mut power = [0f64; 8];
        let mut total = [0f64; 8];
        for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
            let w = &self.buf[self.buf.len() - self.windows[i]..];
            power[i] = goertzel_power(w, *f);
            total[i] = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
        }
        let best = |range: std::ops::Range<usize>| {
            let mut idx: Vec<usize> = range.collect();
            idx.sort_by(|&a, &b| power[b].total_cmp(&power[a]));
            (idx[0], idx[1])
        };
        let (r, r2) = best(0..4);
        let (c, c2) = best(4..8);
        let (pr, pc) = (power[r], power[c]);
        if pr < MIN_TONE_POWER || pc < MIN_TONE_POWER {
            return None;
        }
        if pr < GROUP_MARGIN * power[r2] || pc < GROUP_MARGIN * power[c2] {
            return None;
        }
        // The two tones hold most of the power of the windows they were measured on (a tone
        // off frequency, speech or noise does not).
        let share = (pr / (2.0 * total[r]).max(1.0)) + (pc / (2.0 * total[c]).max(1.0));
        if share < MIN_SHARE {
            return None;
        }
        // Twist: high tone up to 8 dB louder, low tone up to 4 dB louder.
        let twist_db = 10.0 * (pc / pr).log10();
        if !(-4.0..=8.0).contains(&twist_db) {
            return None;
        }
        Some(KEYPAD[r][c - 4])
    }

    fn evaluate(&mut self) -> Option<char> {
        let key = self.key();
        match key {
            Some(k) if self.candidate == Some(k) => self.run += 1,
            Some(k) => {
                self.candidate = Some(k);
                self.run = 1;
            }
            None => {
                self.candidate = None;
                self.run = 0;
            }
        }
        if key.is_none() {
            self.quiet += 1;
            if self.quiet >= GAP {
                self.reported = None;
            }
            return None;
        }
        self.quiet = 0;
        if self.run >= HOLD && self.reported != key {
            self.reported = key;
            return key;
        }
        None
    }
}
