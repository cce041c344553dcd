//! G.711 against reference values made with SoX 14.4.2 (an independent implementation):
//! every code decoded, and a sweep of linear values encoded (`tests/data/{ulaw,alaw}.txt`).

use switchboard_media::g711::{
    Law, alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear,
};

/// Decoded (code, linear) and encoded (linear, code) pairs.
type Reference = (Vec<(u8, i16)>, Vec<(i16, u8)>);

fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(format!(
        "{}/tests/data/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("reference file");
    let (mut dec, mut enc) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "d" => dec.push((f[1].parse().expect("code"), f[2].parse().expect("linear"))),
            "e" => enc.push((f[1].parse().expect("linear"), f[2].parse().expect("code"))),
            _ => panic!("bad line {line}"),
        }
    }
    (dec, enc)
}

#[test]
fn ulaw_matches_the_reference() {
    let (dec, enc) = reference("ulaw");
    assert_eq!(dec.len(), 256);
    for (code, linear) in dec {
        assert_eq!(ulaw_to_linear(code), linear, "decode {code:#04x}");
    }
    assert!(enc.len() > 1000);
    for (linear, code) in enc {
        assert_eq!(linear_to_ulaw(linear), code, "encode {linear}");
    }
}

#[test]
fn alaw_matches_the_reference() {
    let (dec, enc) = reference("alaw");
    assert_eq!(dec.len(), 256);
    for (code, linear) in dec {
        assert_eq!(alaw_to_linear(code), linear, "decode {code:#04x}");
    }
    for (linear, code) in enc {
        assert_eq!(linear_to_alaw(linear), code, "encode {linear}");
    }
}

#[test]
fn well_known_values() {
    // G.711 Table 2a/2b end points and silence.
    assert_eq!(ulaw_to_linear(0xFF), 0);
    assert_eq!(ulaw_to_linear(0x00), -32124);
    assert_eq!(ulaw_to_linear(0x80), 32124);
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xAA), 32256);
    assert_eq!(Law::Ulaw.silence(), 0xFF);
    assert_eq!(Law::Alaw.silence(), 0xD5);
}

#[test]
fn every_code_survives_a_round_trip_and_transcoding_keeps_the_level() {
    for c in 0..=255u8 {
        // µ-law 0x7F is "negative zero": it decodes to 0, which encodes as 0xFF.
        if c != 0x7F {
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), c, "µ-law {c:#04x}");
        }
        assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
    }
    let mut bytes: Vec<u8> = (0..=255).collect();
    let orig = bytes.clone();
    Law::Ulaw.transcode(Law::Alaw, &mut bytes);
    for (u, a) in orig.iter().zip(&bytes) {
        let (lu, la) = (i32::from(ulaw_to_linear(*u)), i32::from(alaw_to_linear(*a)));
        // The two laws' steps differ: within one A-law step of the µ-law value.
        let step = (lu.abs() / 16).max(16);
        assert!((lu - la).abs() <= step, "{u:#04x}: µ {lu} vs A {la}");
    }
}

#[test]
fn decode_and_encode_slices() {
    let mut pcm = Vec::new();
    Law::Alaw.decode(&[0xD5, 0xAA, 0x2A], &mut pcm);
    assert_eq!(pcm, vec![8, 32256, -32256]);
    let mut out = Vec::new();
    Law::Alaw.encode(&pcm, &mut out);
    assert_eq!(out, vec![0xD5, 0xAA, 0x2A]);
    assert_eq!(Law::from_payload_type(8), Some(Law::Alaw));
    assert_eq!(Law::from_payload_type(9), None);
}
