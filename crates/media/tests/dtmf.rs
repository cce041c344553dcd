//! DTMF: RFC 4733 events (with redundancy and the end triple) and in-band detection at the
//! edges of the ITU-T Q.24 tolerances (frequency ±1.5% accepted, ±3.5% rejected; 40 ms tones
//! detected, 20 ms not; twist), with and without noise.

use switchboard_media::dtmf::{Detector, Event, EventReceiver, event_of, event_packets};
use switchboard_media::tone::{dtmf_pair, tones};

#[test]
fn event_payloads_round_trip() {
    let e = Event {
        event: 11,
        end: true,
        volume: 10,
        duration: 1600,
    };
    assert_eq!(e.to_bytes(), [11, 0x8A, 0x06, 0x40]);
    assert_eq!(Event::parse(&e.to_bytes()), Some(e));
    assert_eq!(Event::parse(&[1, 2, 3]), None);
    assert_eq!(event_of('#'), Some(11));
    assert_eq!(event_of('x'), None);
}

#[test]
fn a_sender_sends_updates_then_three_end_packets() {
    let p = event_packets('5', 800, 160, 10);
    // 160, 320, 480, 640 then 800 three times
    assert_eq!(p.len(), 7);
    assert!(p[0].0, "marker on the first");
    assert!(p[1..].iter().all(|(m, _)| !m));
    let durations: Vec<u16> = p
        .iter()
        .map(|(_, b)| Event::parse(b).expect("event").duration)
        .collect();
    assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
    let ends: Vec<bool> = p
        .iter()
        .map(|(_, b)| Event::parse(b).expect("e").end)
        .collect();
    assert_eq!(ends, vec![false, false, false, false, true, true, true]);
}

#[test]
fn each_digit_is_reported_once_whatever_the_redundancy_and_order() {
    let mut r = EventReceiver::default();
    let mut digits = Vec::new();
    for (ts, d) in [(1000u32, '1'), (3000, '1'), (5000, '#')] {
        for (_, payload) in event_packets(d, 800, 160, 10) {
            if let Some(got) = r.handle(ts, &payload) {
                digits.push((got.timestamp, got.digit));
            }
        }
    }
    // a late end packet of the first press counts for nothing
    let (_, late) = event_packets('1', 800, 160, 10)[6];
    assert_eq!(r.handle(1000, &late), None);
    assert_eq!(digits, vec![(1000, '1'), (3000, '1'), (5000, '#')]);
    // not an event, not DTMF
    assert_eq!(r.handle(7000, &[1]), None);
    assert_eq!(r.handle(7000, &[200, 0x80, 0, 160]), None);
}

/// A key press of `ms` at `amp`, with frequencies scaled by (1 + `dev`), `twist_db` more on the
/// high tone, then 60 ms of silence, optionally with white noise at `noise` amplitude.
fn press(digit: char, ms: usize, dev: f64, twist_db: f64, noise: f64, seed: &mut u64) -> Vec<i16> {
    let (lo, hi) = dtmf_pair(digit).expect("key");
    let n = ms * 8;
    let amp = 6000.0;
    let high = amp * 10f64.powf(twist_db / 20.0);
    let a = tones(&[lo * (1.0 + dev)], amp, 0, n);
    let b = tones(&[hi * (1.0 + dev)], high, 0, n);
    let mut out: Vec<i16> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.saturating_add(*y))
        .collect();
    out.extend(std::iter::repeat_n(0, 480));
    if noise > 0.0 {
        for s in &mut out {
            // xorshift: uniform noise in [-noise, noise]
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            let u = (*seed % 20_001) as f64 / 10_000.0 - 1.0;
            *s = (f64::from(*s) + u * noise).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
    out
}

fn detect(samples: &[i16]) -> Vec<char> {
    let mut d = Detector::new();
    let mut out = Vec::new();
    // in 20 ms frames, as RTP brings them
    for frame in samples.chunks(160) {
        out.extend(d.push(frame));
    }
    out
}

#[test]
fn every_key_is_detected_once() {
    let mut seed = 1;
    let mut audio = Vec::new();
    let keys = "0123456789*#ABCD";
    for k in keys.chars() {
        audio.extend(press(k, 60, 0.0, 0.0, 0.0, &mut seed));
    }
    assert_eq!(detect(&audio).into_iter().collect::<String>(), keys);
}

#[test]
fn frequency_tolerance_accepts_1_5_percent_and_rejects_3_5() {
    let mut seed = 7;
    for k in "1590#D".chars() {
        for dev in [0.015, -0.015] {
            assert_eq!(
                detect(&press(k, 60, dev, 0.0, 0.0, &mut seed)),
                vec![k],
                "{k} at {dev}"
            );
        }
        for dev in [0.035, -0.035] {
            assert!(
                detect(&press(k, 60, dev, 0.0, 0.0, &mut seed)).is_empty(),
                "{k} at {dev}"
            );
        }
    }
}

#[test]
fn timing_detects_40_ms_and_ignores_20_ms() {
    let mut seed = 3;
    for k in "12468*D".chars() {
        for dev in [0.0, 0.015, -0.015] {
            assert_eq!(
                detect(&press(k, 40, dev, 0.0, 0.0, &mut seed)),
                vec![k],
                "40 ms {k} {dev}"
            );
            assert!(
                detect(&press(k, 23, dev, 0.0, 0.0, &mut seed)).is_empty(),
                "23 ms {k} {dev}"
            );
            assert!(
                detect(&press(k, 20, dev, 0.0, 0.0, &mut seed)).is_empty(),
                "20 ms {k} {dev}"
            );
        }
    }
    // two presses of the same key with a 40 ms pause are two digits
    let mut a = press('7', 50, 0.0, 0.0, 0.0, &mut seed);
    a.truncate(400 + 320);
    a.extend(press('7', 50, 0.0, 0.0, 0.0, &mut seed));
    assert_eq!(detect(&a), vec!['7', '7']);
}

#[test]
fn twist_up_to_the_limits_and_not_beyond() {
    let mut seed = 5;
    assert_eq!(detect(&press('5', 60, 0.0, 7.5, 0.0, &mut seed)), vec!['5']);
    assert_eq!(
        detect(&press('5', 60, 0.0, -3.5, 0.0, &mut seed)),
        vec!['5']
    );
    assert!(detect(&press('5', 60, 0.0, 12.0, 0.0, &mut seed)).is_empty());
    assert!(detect(&press('5', 60, 0.0, -8.0, 0.0, &mut seed)).is_empty());
}

#[test]
fn noise_does_not_hide_keys_or_make_them_up() {
    let mut seed = 11;
    // about 15 dB signal to noise
    let mut audio = Vec::new();
    for k in "314#".chars() {
        audio.extend(press(k, 60, 0.01, 2.0, 1500.0, &mut seed));
    }
    assert_eq!(detect(&audio).into_iter().collect::<String>(), "314#");
    // noise alone, a single tone, and speech-like chords are not keys
    let noise = press('1', 0, 0.0, 0.0, 8000.0, &mut seed);
    let noise: Vec<i16> = noise.iter().cycle().take(8000).copied().collect();
    assert!(detect(&noise).is_empty());
    assert!(detect(&tones(&[697.0], 8000.0, 0, 8000)).is_empty());
    assert!(detect(&tones(&[300.0, 700.0, 1250.0, 2100.0], 3000.0, 0, 8000)).is_empty());
}
