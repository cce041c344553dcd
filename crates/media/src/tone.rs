//! Tones at 8 kHz: DTMF pairs (for tests and for dialing in band), call-progress tones, beeps.
//! Pure sample generators; the phase runs on from `start` so consecutive frames join smoothly.

use std::f64::consts::TAU;

/// `count` samples of the sum of `freqs` (Hz), each at `amplitude` (of 32767), starting at sample
/// index `start`.
pub fn tones(freqs: &[f64], amplitude: f64, start: u64, count: usize) -> Vec<i16> {
    (0..count)
        .map(|i| {
            let t = (start + i as u64) as f64 / f64::from(crate::RATE);
            let v: f64 = freqs.iter().map(|f| (TAU * f * t).sin()).sum::<f64>() * amplitude;
            v.round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// The two frequencies of a DTMF key.
pub fn dtmf_pair(digit: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: &str = "123A456B789C*0#D";
    let i = KEYS.find(digit.to_ascii_uppercase())?;
    Some((ROWS[i / 4], COLS[i % 4]))
}

/// North American ringback (440 + 480 Hz, 2 s on, 4 s off) for the samples from `start`.
pub fn ringback(start: u64, count: usize) -> Vec<i16> {
    let on = tones(&[440.0, 480.0], 3000.0, start, count);
    on.into_iter()
        .enumerate()
        .map(|(i, s)| {
            let t = (start + i as u64) % u64::from(6 * crate::RATE);
            if t < u64::from(2 * crate::RATE) { s } else { 0 }
        })
        .collect()
}
