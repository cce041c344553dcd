//! Mixing 8 kHz linear frames with saturation: what a supervisor hears when listening (caller and
//! agent), what the agent hears while a supervisor whispers (caller and supervisor), and a barge
//! or conference (everyone but oneself).

/// Adds `frames` sample by sample into `out` (cleared and sized to the longest), saturating at
/// the 16-bit limits instead of wrapping.
pub fn mix_into(frames: &[&[i16]], out: &mut Vec<i16>) {
    out.clear();
    let len = frames.iter().map(|f| f.len()).max().unwrap_or(0);
    out.resize(len, 0);
    for f in frames {
        for (o, &s) in out.iter_mut().zip(f.iter()) {
            *o = o.saturating_add(s);
        }
    }
}

/// For each party, the mix of everyone else's frame (a conference without echo of oneself).
pub fn mix_minus(frames: &[&[i16]]) -> Vec<Vec<i16>> {
    let len = frames.iter().map(|f| f.len()).max().unwrap_or(0);
    let mut sum = vec![0i32; len];
    for f in frames {
        for (a, &s) in sum.iter_mut().zip(f.iter()) {
            *a += i32::from(s);
        }
    }
    frames
        .iter()
        .map(|f| {
            sum.iter()
                .enumerate()
                .map(|(i, &a)| {
                    let own = f.get(i).copied().map_or(0, i32::from);
                    (a - own).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
                })
                .collect()
        })
        .collect()
}

/// Scales a frame by `gain` (e.g. 0.5 for -6 dB), saturating.
pub fn scale(frame: &mut [i16], gain: f32) {
    for s in frame {
        *s = (f32::from(*s) * gain)
            .round()
            .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
    }
}

/// Root mean square of a frame (0 for an empty one).
pub fn rms(frame: &[i16]) -> f64 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len() as f64).sqrt()
}
