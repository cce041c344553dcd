//! Silence detection on decoded audio: how long a stream has been quiet (a voicemail ends after
//! a few seconds of it).
//!
//! The energy of every 20 ms frame (RMS of the 16-bit samples) is compared with a threshold in
//! dBFS; a frame above it is sound. [`SilenceDetector::is_silent`] says whether nothing but
//! silence came for the hold time, counted on `now` (milliseconds, given by the caller) from
//! the last sound, or from the start when there was none. Time passes whether packets come or
//! not, so a caller who stops sending is silent too. No clock is read here.

use crate::FRAME;

/// Frames quieter than this are silence: -45 dBFS (RMS about 184), well under speech on a phone
/// (-20 to -30 dBFS) and above line noise and comfort noise (-55 dBFS and below).
pub const DEFAULT_THRESHOLD_DBFS: f64 = -45.0;

/// Counts the silence of one stream. See the module docs.
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    hold_ms: u64,
    /// Mean square of a frame at the threshold.
    threshold: f64,
    /// `now` of the start, then of the last sound.
    last_sound: u64,
    /// Samples of a frame not yet complete.
    partial: Vec<i16>,
}

impl SilenceDetector {
    /// Silence is `hold_ms` without a frame louder than `threshold_dbfs`, from `now` on.
    pub fn new(now: u64, hold_ms: u64, threshold_dbfs: f64) -> SilenceDetector {
        let rms = 32768.0 * 10f64.powf(threshold_dbfs / 20.0);
        SilenceDetector {
            hold_ms,
            threshold: rms * rms,
            last_sound: now,
            partial: Vec::with_capacity(FRAME),
        }
    }

    /// Takes decoded samples that arrived at `now`.
    pub fn push(&mut self, now: u64, samples: &[i16]) {
        for &s in samples {
            self.partial.push(s);
            if self.partial.len() == FRAME {
                let energy = self
                    .partial
                    .iter()
                    .map(|&x| f64::from(x) * f64::from(x))
                    .sum::<f64>()
                    / FRAME as f64;
                if energy > self.threshold {
                    self.last_sound = self.last_sound.max(now);
                }
                self.partial.clear();
            }
        }
    }

    /// Whether it has been silent for the hold time at `now`.
    pub fn is_silent(&self, now: u64) -> bool {
        now.saturating_sub(self.last_sound) >= self.hold_ms
    }

    /// When it will have been silent for the hold time, if no sound comes.
    pub fn poll_timeout(&self) -> u64 {
        self.last_sound + self.hold_ms
    }

    /// `now` of the last sound (or of the start).
    pub fn last_sound(&self) -> u64 {
        self.last_sound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::tones;

    /// Feeds 20 ms frames of `samples` from `start`, one frame every 20 ms of `now`.
    fn feed(d: &mut SilenceDetector, start: u64, samples: &[i16]) -> u64 {
        let mut now = start;
        for f in samples.chunks(FRAME) {
            d.push(now, f);
            now += 20;
        }
        now
    }

    /// A deterministic noise in `-amp..=amp` (a linear congruential generator).
    fn noise(n: usize, amp: i32, seed: u32) -> Vec<i16> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 16) as i32 % (2 * amp + 1) - amp) as i16
            })
            .collect()
    }

    #[test]
    fn speech_like_tones_then_silence_is_silent_after_the_hold() {
        let mut d = SilenceDetector::new(0, 5000, DEFAULT_THRESHOLD_DBFS);
        // 2 s of a two-tone "voice" at about -20 dBFS, with a quiet pause between words
        let word = tones(&[300.0, 1200.0], 2300.0, 0, 8000);
        let mut now = feed(&mut d, 0, &word);
        assert_eq!(d.last_sound(), now - 20);
        now = feed(&mut d, now, &vec![0; 4000]); // 0.5 s pause: still speech
        assert!(!d.is_silent(now));
        now = feed(&mut d, now, &word);
        let spoke = d.last_sound();
        assert_eq!(spoke, now - 20);
        // then silence: not yet at 4.98 s, silent at 5 s after the last sound
        let end = feed(&mut d, now, &vec![0; 8000 * 6]);
        assert!(!d.is_silent(spoke + 4980));
        assert!(d.is_silent(spoke + 5000));
        assert!(d.is_silent(end));
        assert_eq!(d.poll_timeout(), spoke + 5000);
    }

    #[test]
    fn noise_below_the_threshold_is_silence_and_above_it_is_sound() {
        // about -60 dBFS (uniform in ±60: RMS about 35)
        let mut d = SilenceDetector::new(1000, 1000, DEFAULT_THRESHOLD_DBFS);
        let end = feed(&mut d, 1000, &noise(8000 * 2, 60, 7));
        assert_eq!(d.last_sound(), 1000, "quiet noise is no sound");
        assert!(d.is_silent(end));
        // about -30 dBFS (±1800: RMS about 1040) is sound
        let mut d = SilenceDetector::new(0, 1000, DEFAULT_THRESHOLD_DBFS);
        let end = feed(&mut d, 0, &noise(8000, 1800, 9));
        assert_eq!(d.last_sound(), end - 20);
        assert!(!d.is_silent(end));
    }

    #[test]
    fn nothing_at_all_is_silence_from_the_start_and_a_partial_frame_waits() {
        let d = SilenceDetector::new(500, 2000, DEFAULT_THRESHOLD_DBFS);
        assert!(!d.is_silent(2499));
        assert!(d.is_silent(2500), "no packets: silent from the start");
        let mut d = SilenceDetector::new(0, 2000, DEFAULT_THRESHOLD_DBFS);
        let loud = tones(&[1000.0], 9000.0, 0, FRAME);
        d.push(10, &loud[..80]);
        assert_eq!(d.last_sound(), 0, "half a frame is not judged yet");
        d.push(30, &loud[80..]);
        assert_eq!(d.last_sound(), 30);
    }
}
