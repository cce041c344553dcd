//! The prompt player: what a leg hears while Switchboard, not the other party, speaks to it
//! (IVR prompts, queue announcements, music on hold, the whisper to an agent).
//!
//! Pure: a queue of clips of 8 kHz samples, read out in 20 ms frames by [`Player::next_frame`].
//! Each clip plays once or loops (music on hold loops until something replaces it); the last
//! frame of a clip is padded with silence. [`Player::interrupt`] drops everything (a caller
//! pressing a key stops the prompt: barge-in). The bridge ([`crate::relay`]) asks for a frame
//! every 20 ms of its `now` and sends it as RTP in the leg's codec.

use std::collections::VecDeque;
use std::sync::Arc;

/// One clip: 8 kHz mono samples, shared (music on hold is played to many calls at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// The samples.
    pub samples: Arc<[i16]>,
    /// Start again at the end.
    pub looping: bool,
    /// An id the driver chose, reported when the clip has been played out.
    pub id: u64,
}

/// Reads queued clips out in frames. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Player {
    clips: VecDeque<Clip>,
    pos: usize,
    finished: Vec<u64>,
}

impl Player {
    /// An idle player.
    pub fn new() -> Player {
        Player::default()
    }

    /// Queues a clip after those queued.
    pub fn push(&mut self, clip: Clip) {
        self.clips.push_back(clip);
    }

    /// Drops every clip (barge-in, or the agent answered). Returns whether it was playing.
    pub fn interrupt(&mut self) -> bool {
        let was = !self.clips.is_empty();
        self.clips.clear();
        self.pos = 0;
        was
    }

    /// Whether something is queued.
    pub fn is_playing(&self) -> bool {
        !self.clips.is_empty()
    }

    /// The ids of clips played out since the last call (in order).
    pub fn take_finished(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.finished)
    }

    /// The next 20 ms ([`crate::FRAME`] samples), or `None` when nothing is queued. Empty
    /// clips are skipped; a looping empty clip is dropped (it would never yield a frame).
    pub fn next_frame(&mut self) -> Option<[i16; crate::FRAME]> {
        let mut out = [0i16; crate::FRAME];
        let mut filled = 0;
        while filled < crate::FRAME {
            let Some(clip) = self.clips.front() else {
                break;
            };
            let samples = clip.samples.clone();
            if samples.is_empty() || self.pos >= samples.len() {
                let done = self.clips.pop_front().expect("front exists");
                self.pos = 0;
                if done.looping && !done.samples.is_empty() {
                    self.clips.push_front(done);
                } else {
                    self.finished.push(done.id);
                    // The frame that ends a clip is padded, not joined to the next clip.
                    if filled > 0 {
                        break;
                    }
                }
                continue;
            }
            let n = (crate::FRAME - filled).min(samples.len() - self.pos);
            out[filled..filled + n].copy_from_slice(&samples[self.pos..self.pos + n]);
            filled += n;
            self.pos += n;
            if self.pos >= samples.len() {
                let looping = self.clips.front().is_some_and(|c| c.looping);
                if looping {
                    self.pos = 0;
                } else {
                    let done = self.clips.pop_front().expect("front exists");
                    self.pos = 0;
                    self.finished.push(done.id);
                    break;
                }
            }
        }
        (filled > 0).then_some(out)
    }
}

/// A short default music on hold when no folder is configured: a gentle arpeggio of pure
/// tones (C major, A minor, F major, G major), 8 s, with fades so the loop does not click.
pub fn default_hold_music() -> Vec<i16> {
    const CHORDS: [[f64; 3]; 4] = [
        [261.63, 329.63, 392.00],
        [220.00, 261.63, 329.63],
        [174.61, 220.00, 261.63],
        [196.00, 246.94, 293.66],
    ];
    let note = crate::RATE as usize / 4; // 250 ms per note
    let mut out = Vec::with_capacity(note * 32);
    for chord in CHORDS {
        for i in 0..8 {
            let f = chord[i % 3] * if i >= 4 { 2.0 } else { 1.0 };
            for n in 0..note {
                let t = n as f64 / f64::from(crate::RATE);
                // 10 ms attack, exponential decay: a soft plucked sound.
                let env = (n as f64 / 80.0).min(1.0) * (-3.0 * t).exp();
                let s = (2.0 * std::f64::consts::PI * f * t).sin() * env * 6000.0;
                out.push(s as i16);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(n: usize, v: i16, looping: bool, id: u64) -> Clip {
        Clip {
            samples: vec![v; n].into(),
            looping,
            id,
        }
    }

    #[test]
    fn a_clip_is_read_in_frames_and_its_last_frame_padded() {
        let mut p = Player::new();
        p.push(clip(400, 7, false, 1));
        let a = p.next_frame().expect("frame 1");
        let b = p.next_frame().expect("frame 2");
        let c = p.next_frame().expect("frame 3");
        assert!(a.iter().chain(b.iter()).all(|&s| s == 7));
        assert_eq!(c[..80], [7; 80]);
        assert_eq!(c[80..], [0; 80], "padded with silence");
        assert_eq!(p.take_finished(), vec![1]);
        assert!(p.next_frame().is_none());
        assert!(!p.is_playing());
    }

    #[test]
    fn clips_follow_each_other_and_a_loop_goes_on() {
        let mut p = Player::new();
        p.push(clip(160, 1, false, 1));
        p.push(clip(100, 2, true, 2));
        assert_eq!(p.next_frame().expect("first"), [1; 160]);
        // The loop of 100 samples fills a frame from 1.6 passes.
        let f = p.next_frame().expect("loop");
        assert!(f.iter().all(|&s| s == 2));
        for _ in 0..100 {
            assert!(p.next_frame().is_some(), "a loop never ends");
        }
        assert_eq!(p.take_finished(), vec![1]);
        assert!(p.interrupt());
        assert!(p.next_frame().is_none());
        assert!(!p.interrupt(), "nothing left to interrupt");
    }

    #[test]
    fn empty_clips_are_skipped_and_reported() {
        let mut p = Player::new();
        p.push(clip(0, 0, true, 1));
        p.push(clip(0, 0, false, 2));
        p.push(clip(10, 5, false, 3));
        let f = p.next_frame().expect("frame");
        assert_eq!(f[..10], [5; 10]);
        assert_eq!(p.take_finished(), vec![1, 2, 3]);
    }

    #[test]
    fn the_default_hold_music_is_audible_and_eight_seconds() {
        let m = default_hold_music();
        assert_eq!(m.len(), 8 * 8000);
        let loud = m.iter().filter(|s| s.abs() > 1000).count();
        assert!(loud > m.len() / 4, "{loud}");
    }
}
