//! The stereo recorder (exact sample counts, pause spans as silence) and prompt files.

use switchboard_media::mix::{mix_into, mix_minus, rms, scale};
use switchboard_media::tone::tones;
use switchboard_media::wav::{HEADER_LEN, Recorder, WavError, header, parse, to_8k_mono};

#[test]
fn a_recording_has_exact_counts_both_channels_and_silent_pauses() {
    let mut r = Recorder::new();
    let mut file = Vec::new();
    file.extend_from_slice(&r.header());
    let caller = tones(&[440.0], 8000.0, 0, 160);
    let agent = tones(&[1000.0], 4000.0, 0, 160);
    let mut chunk = Vec::new();
    for _ in 0..50 {
        r.push(&caller, &agent, &mut chunk);
    }
    assert!(r.pause());
    assert!(!r.pause(), "already paused");
    for _ in 0..25 {
        r.push(&caller, &agent, &mut chunk);
    }
    assert!(r.resume());
    // the agent side may be short (a late packet): padded with silence
    r.push(&caller, &agent[..80], &mut chunk);
    file.extend_from_slice(&chunk);
    file[..HEADER_LEN].copy_from_slice(&r.header());
    assert_eq!(r.frames(), 76 * 160);
    assert_eq!(r.paused_spans(), vec![(50 * 160, 75 * 160)]);

    let w = parse(&file).expect("our own file parses");
    assert_eq!((w.rate, w.channels), (8000, 2));
    assert_eq!(w.samples.len(), 76 * 160 * 2);
    let left: Vec<i16> = w.samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = w.samples.iter().skip(1).step_by(2).copied().collect();
    // before the pause both channels carry their own tone
    assert_eq!(&left[..160], &caller[..]);
    assert_eq!(&right[..160], &agent[..]);
    // the paused span is silence on both
    let paused = 50 * 160..75 * 160;
    assert!(left[paused.clone()].iter().all(|&s| s == 0));
    assert!(right[paused].iter().all(|&s| s == 0));
    // after it, sound again; the short agent side ends in silence
    assert!(rms(&left[75 * 160..]) > 1000.0);
    assert!(right[75 * 160 + 80..].iter().all(|&s| s == 0));
}

#[test]
fn prompts_of_other_rates_and_layouts_become_8k_mono() {
    // 16 kHz stereo, 1 s of 500 Hz on the left and silence on the right
    let n = 16_000;
    let tone16: Vec<i16> = (0..n)
        .map(|i| ((i as f64 * 500.0 * std::f64::consts::TAU / 16_000.0).sin() * 10_000.0) as i16)
        .collect();
    let mut data = Vec::new();
    for s in &tone16 {
        data.extend_from_slice(&s.to_le_bytes());
        data.extend_from_slice(&0i16.to_le_bytes());
    }
    let mut h = header(2, 16_000, data.len() as u32).to_vec();
    h.extend(data);
    let w = parse(&h).expect("parses");
    let out = to_8k_mono(&w);
    assert_eq!(out.len(), 8000);
    // averaged with a silent channel: half the amplitude, RMS of a sine is A/√2
    let want = 5000.0 / std::f64::consts::SQRT_2;
    assert!((rms(&out) - want).abs() / want < 0.05, "{}", rms(&out));
    // 8 kHz mono passes unchanged
    let same = switchboard_media::wav::Wav {
        rate: 8000,
        channels: 1,
        samples: vec![1, 2, 3],
    };
    assert_eq!(to_8k_mono(&same), vec![1, 2, 3]);
}

#[test]
fn broken_and_unsupported_files_are_errors() {
    assert!(matches!(parse(b"RIFF"), Err(WavError::Malformed(_))));
    assert!(matches!(
        parse(b"RIFF\0\0\0\0WAVEdata\0\0\0\0"),
        Err(WavError::Malformed(_))
    ));
    let mut float = header(1, 8000, 0).to_vec();
    float[20] = 3; // IEEE float
    float[34] = 32;
    assert_eq!(
        parse(&float),
        Err(WavError::Unsupported {
            format: 3,
            bits: 32
        })
    );
    // a data chunk longer than the file is read as far as it goes
    let mut short = header(1, 8000, 1000).to_vec();
    short.extend_from_slice(&[1, 0, 2, 0]);
    assert_eq!(parse(&short).expect("parses").samples, vec![1, 2]);
}

#[test]
fn mixing_saturates_and_leaves_out_oneself() {
    let loud = [30_000i16, -30_000, 5];
    let mut out = Vec::new();
    mix_into(&[&loud, &loud, &[1]], &mut out);
    assert_eq!(out, vec![32_767, -32_768, 10]);
    let each = mix_minus(&[&[100, 100], &[10, 10], &[1]]);
    assert_eq!(each, vec![vec![11, 10], vec![101, 100], vec![110, 110]]);
    let mut f = [20_000i16, -20_000];
    scale(&mut f, 2.0);
    assert_eq!(f, [32_767, -32_768]);
    assert_eq!(rms(&[]), 0.0);
}
