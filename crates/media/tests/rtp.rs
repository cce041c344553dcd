//! RTP packets and receive statistics.

use proptest::prelude::*;
use switchboard_media::rtp::{Arrival, Header, Packet, ReceiveStats, RtpError, is_rtcp, rewrite};

fn header(seq: u16) -> Header {
    Header {
        marker: true,
        payload_type: 8,
        sequence: seq,
        timestamp: 0xDEAD_BEEF,
        ssrc: 0x1234_5678,
        csrc: vec![7, 9],
    }
}

#[test]
fn a_packet_round_trips() {
    let mut buf = Vec::new();
    header(65535).write(&[1, 2, 3, 4], &mut buf);
    assert_eq!(buf.len(), 12 + 8 + 4);
    let p = Packet::parse(&buf).expect("parses");
    assert_eq!(p.header, header(65535));
    assert_eq!(p.payload, &[1, 2, 3, 4]);
    assert_eq!(p.extension, None);
    assert!(!is_rtcp(&buf));
}

#[test]
fn extension_and_padding_are_stripped() {
    // V=2, P=1, X=1, CC=0; PT 0; one extension word; 3 bytes of padding.
    let mut b = vec![0xB0, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42];
    b.extend([0xBE, 0xDE, 0, 1, 0xAA, 0xBB, 0xCC, 0xDD]);
    b.extend([0x11, 0x22]);
    b.extend([0, 0, 3]);
    let p = Packet::parse(&b).expect("parses");
    assert_eq!(p.extension, Some((0xBEDE, &[0xAA, 0xBB, 0xCC, 0xDD][..])));
    assert_eq!(p.payload, &[0x11, 0x22]);
    assert_eq!(p.header.timestamp, 160);
}

#[test]
fn broken_datagrams_are_errors() {
    assert_eq!(Packet::parse(&[0x80; 5]), Err(RtpError::Truncated));
    assert_eq!(Packet::parse(&[0x40; 12]), Err(RtpError::Version(1)));
    // CSRC count 15 without the CSRCs
    assert_eq!(Packet::parse(&[0x8F; 12]), Err(RtpError::Truncated));
    // padding longer than the packet
    let mut b = vec![0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9];
    b.push(200);
    assert_eq!(Packet::parse(&b), Err(RtpError::Padding));
    // an extension that runs past the end
    let b = [0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 9];
    assert_eq!(Packet::parse(&b), Err(RtpError::Truncated));
}

#[test]
fn rtcp_is_told_apart() {
    // A receiver report: V=2, PT=201.
    assert!(is_rtcp(&[0x81, 201, 0, 7]));
    assert!(!is_rtcp(&[0x80, 0x08, 0, 7]));
}

#[test]
fn rewriting_keeps_the_payload() {
    let mut buf = Vec::new();
    header(1).write(&[5, 6], &mut buf);
    assert!(rewrite(&mut buf, 77, 8000, 99));
    let p = Packet::parse(&buf).expect("parses");
    assert_eq!(
        (p.header.sequence, p.header.timestamp, p.header.ssrc),
        (77, 8000, 99)
    );
    assert_eq!(p.payload, &[5, 6]);
    assert!(!rewrite(&mut [0u8; 4], 1, 1, 1));
}

#[test]
fn loss_late_and_duplicates_across_the_sequence_wrap() {
    let mut s = ReceiveStats::default();
    let mut t = 0u64;
    let mut feed = |s: &mut ReceiveStats, seq: u16| {
        t += 160;
        s.record(seq, (t as u32).wrapping_sub(160), t)
    };
    for seq in [65533u16, 65534, 65535, 0, 2, 3] {
        assert_eq!(feed(&mut s, seq), Arrival::InOrder);
    }
    // #1 is missing: expected 7 (65533..=3), received 6
    assert_eq!(s.expected(), 7);
    assert_eq!(s.lost(), 1);
    assert_eq!(s.extended_max(), 65536 + 3);
    // it arrives late: no loss any more
    assert_eq!(feed(&mut s, 1), Arrival::Late);
    assert_eq!(s.lost(), 0);
    assert_eq!(s.late(), 1);
    assert_eq!(feed(&mut s, 3), Arrival::Duplicate);
    assert_eq!(s.duplicates(), 1);
    assert_eq!(s.received(), 7);
}

#[test]
fn steady_streams_have_no_jitter_and_late_ones_do() {
    let mut s = ReceiveStats::default();
    for i in 0..100u32 {
        s.record(i as u16, i * 160, 10_000 + u64::from(i) * 160);
    }
    assert!(s.jitter() < 1e-9);
    // every other packet 40 samples (5 ms) late
    let mut s = ReceiveStats::default();
    for i in 0..400u32 {
        let late = if i % 2 == 1 { 40 } else { 0 };
        s.record(i as u16, i * 160, 10_000 + u64::from(i) * 160 + late);
    }
    // |D| is 40 every time: J converges to 40
    assert!((s.jitter() - 40.0).abs() < 1.0, "{}", s.jitter());
}

proptest! {
    #[test]
    fn parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Packet::parse(&bytes);
    }

    #[test]
    fn written_packets_parse_back(seq in any::<u16>(), ts in any::<u32>(), ssrc in any::<u32>(),
                                  pt in 0u8..128, marker in any::<bool>(),
                                  csrc in prop::collection::vec(any::<u32>(), 0..16),
                                  payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let h = Header { marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc, csrc };
        let mut buf = Vec::new();
        h.write(&payload, &mut buf);
        let p = Packet::parse(&buf).expect("parses");
        let mut want = h.clone();
        want.csrc.truncate(15);
        prop_assert_eq!(p.header, want);
        prop_assert_eq!(p.payload, &payload[..]);
    }

    #[test]
    fn a_stream_with_drops_counts_exactly_what_was_lost(start in any::<u16>(), n in 1usize..400,
                                                         drops in prop::collection::vec(any::<bool>(), 400)) {
        let mut s = ReceiveStats::default();
        let mut sent_last = false;
        let mut received = 0u64;
        for (i, dropped) in drops.iter().take(n).enumerate() {
            // the first and the last always arrive, so expected is n
            let keep = i == 0 || i == n - 1 || !dropped;
            if keep {
                s.record(start.wrapping_add(i as u16), (i * 160) as u32, (i * 160) as u64);
                received += 1;
            }
            sent_last = keep;
        }
        prop_assert!(sent_last);
        prop_assert_eq!(s.expected(), n as u64);
        prop_assert_eq!(s.lost(), n as u64 - received);
    }
}
