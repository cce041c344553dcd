//! The call bridge, driven like the media task drives it: datagrams in, outputs out, on a
//! virtual clock of milliseconds.

use std::net::SocketAddr;
use switchboard_media::dtmf::event_packets;
use switchboard_media::g711::Law;
use switchboard_media::relay::{Bridge, DigitSource, Leg, LegMedia, Output};
use switchboard_media::rtp::{Header, Packet};
use switchboard_media::tone::{dtmf_pair, tones};
use switchboard_media::wav;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

const CALLER: &str = "192.0.2.10:4000";
const NATTED: &str = "198.51.100.7:31000";
const AGENT: &str = "127.0.0.1:5004";

fn media(law: Law, te: Option<u8>, remote: &str) -> LegMedia {
    LegMedia {
        law,
        payload_type: law.payload_type(),
        telephone_event: te,
        remote: Some(addr(remote)),
        rtcp: None,
        rtcp_mux: false,
    }
}

fn packet(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    Header {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0xCAFE,
        csrc: Vec::new(),
    }
    .write(payload, &mut b);
    b
}

fn drain(b: &mut Bridge) -> Vec<Output> {
    std::iter::from_fn(|| b.poll_output()).collect()
}

fn sent(outs: &[Output]) -> Vec<(Leg, SocketAddr, Vec<u8>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { leg, to, datagram } => Some((*leg, *to, datagram.clone())),
            _ => None,
        })
        .collect()
}

fn bridge() -> Bridge {
    let mut b = Bridge::new(30_000);
    // the caller speaks A-law with events on 101, the agent µ-law with events on 96
    b.set_media(Leg::Caller, media(Law::Alaw, Some(101), CALLER));
    b.set_media(Leg::Agent, media(Law::Ulaw, Some(96), AGENT));
    b
}

#[test]
fn audio_is_transcoded_and_sent_to_where_each_side_really_is() {
    let mut b = bridge();
    // the agent's phone talks first: it goes to the caller's SDP address, as A-law
    let pcm = tones(&[440.0], 8000.0, 0, 160);
    let mut ulaw = Vec::new();
    Law::Ulaw.encode(&pcm, &mut ulaw);
    b.handle_datagram(0, Leg::Agent, addr(AGENT), &packet(0, 1, 0, true, &ulaw));
    let out = sent(&drain(&mut b));
    assert_eq!(out.len(), 1);
    let (leg, to, d) = &out[0];
    assert_eq!((*leg, *to), (Leg::Caller, addr(CALLER)));
    let p = Packet::parse(d).expect("rtp");
    assert_eq!(p.header.payload_type, 8);
    assert_eq!(
        (p.header.sequence, p.header.ssrc),
        (1, 0xCAFE),
        "numbering passes through"
    );
    let mut back = Vec::new();
    Law::Alaw.decode(p.payload, &mut back);
    let err: i64 = pcm
        .iter()
        .zip(&back)
        .map(|(a, b)| (i64::from(*a) - i64::from(*b)).abs())
        .max()
        .unwrap_or(0);
    assert!(err < 600, "A-law of the µ-law audio stays close: {err}");

    // the caller is behind NAT: its packets come from elsewhere; replies follow them there
    let mut alaw = Vec::new();
    Law::Alaw.encode(&pcm, &mut alaw);
    b.handle_datagram(
        20,
        Leg::Caller,
        addr(NATTED),
        &packet(8, 9, 160, false, &alaw),
    );
    let out = sent(&drain(&mut b));
    assert_eq!(out[0].1, addr(AGENT));
    assert_eq!(
        Packet::parse(&out[0].2).expect("rtp").header.payload_type,
        0
    );
    b.handle_datagram(
        40,
        Leg::Agent,
        addr(AGENT),
        &packet(0, 2, 160, false, &ulaw),
    );
    assert_eq!(sent(&drain(&mut b))[0].1, addr(NATTED));
    assert_eq!(b.remote(Leg::Caller), Some(addr(NATTED)));

    // a stranger on the caller's port is dropped
    b.handle_datagram(
        60,
        Leg::Caller,
        addr("203.0.113.66:9999"),
        &packet(8, 10, 320, false, &alaw),
    );
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.drops().stranger, 1);
    assert_eq!(b.relayed(Leg::Caller), 1);
    assert_eq!(b.relayed(Leg::Agent), 2);
}

#[test]
fn the_same_codec_passes_byte_for_byte() {
    let mut b = Bridge::new(0);
    b.set_media(Leg::Caller, media(Law::Ulaw, None, CALLER));
    b.set_media(Leg::Agent, media(Law::Ulaw, None, AGENT));
    let d = packet(0, 5, 800, false, &[1, 2, 3, 4]);
    b.handle_datagram(0, Leg::Caller, addr(CALLER), &d);
    assert_eq!(sent(&drain(&mut b))[0].2, d);
}

#[test]
fn key_presses_are_reported_once_and_passed_on_with_the_other_sides_payload_type() {
    let mut b = bridge();
    let mut seq = 100;
    for (ts, key) in [(8000u32, '1'), (16000, '#')] {
        for (marker, payload) in event_packets(key, 800, 160, 10) {
            seq += 1;
            b.handle_datagram(
                u64::from(ts / 8),
                Leg::Caller,
                addr(CALLER),
                &packet(101, seq, ts, marker, &payload),
            );
        }
    }
    let outs = drain(&mut b);
    let digits: Vec<char> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Digit {
                leg: Leg::Caller,
                digit,
                source: DigitSource::Event,
            } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec!['1', '#']);
    let to_agent = sent(&outs);
    assert_eq!(to_agent.len(), 14, "every event packet is passed on");
    assert!(
        to_agent.iter().all(|(_, to, d)| *to == addr(AGENT)
            && Packet::parse(d).expect("rtp").header.payload_type == 96)
    );
}

#[test]
fn in_band_tones_are_found_when_asked() {
    let mut b = bridge();
    b.detect_in_band(Leg::Caller, true);
    let (lo, hi) = dtmf_pair('7').expect("key");
    let mut samples = tones(&[lo, hi], 6000.0, 0, 8 * 80);
    samples.extend(vec![0; 8 * 80]);
    let mut digits = Vec::new();
    for (n, frame) in samples.chunks(160).enumerate() {
        let mut alaw = Vec::new();
        Law::Alaw.encode(frame, &mut alaw);
        b.handle_datagram(
            n as u64 * 20,
            Leg::Caller,
            addr(CALLER),
            &packet(8, n as u16, n as u32 * 160, false, &alaw),
        );
        for o in drain(&mut b) {
            if let Output::Digit { digit, source, .. } = o {
                assert_eq!(source, DigitSource::InBand);
                digits.push(digit);
            }
        }
    }
    assert_eq!(digits, vec!['7']);
}

#[test]
fn the_recording_is_stereo_on_the_calls_timeline_with_a_silent_pause() {
    let mut b = bridge();
    assert!(b.start_recording(0));
    assert!(!b.start_recording(0));
    let caller = tones(&[500.0], 8000.0, 0, 160);
    let agent = tones(&[1200.0], 8000.0, 0, 160);
    let (mut a, mut u) = (Vec::new(), Vec::new());
    Law::Alaw.encode(&caller, &mut a);
    Law::Ulaw.encode(&agent, &mut u);
    let mut file = wav::header(2, 8000, 0).to_vec();
    let mut now = 0u64;
    // 2 s of talk both ways, then 1 s paused, then 1 s where only the caller talks
    for n in 0..200u64 {
        now = n * 20;
        if n == 100 {
            assert!(b.pause_recording());
        }
        if n == 150 {
            assert!(b.resume_recording());
        }
        b.handle_datagram(
            now,
            Leg::Caller,
            addr(CALLER),
            &packet(8, n as u16, n as u32 * 160, false, &a),
        );
        if n < 150 {
            b.handle_datagram(
                now,
                Leg::Agent,
                addr(AGENT),
                &packet(0, n as u16, n as u32 * 160, false, &u),
            );
        }
        b.handle_timeout(now + 20);
        for o in drain(&mut b) {
            if let Output::Record(bytes) = o {
                file.extend(bytes);
            }
        }
    }
    let h = b.recording_header().expect("recording");
    file[..wav::HEADER_LEN].copy_from_slice(&h);
    let rec = b.recorder().expect("recorder");
    // one 20 ms frame per tick: exactly 4 s of samples
    assert_eq!(rec.frames(), (now + 20) / 20 * 160);
    assert_eq!(rec.paused_spans(), vec![(100 * 160, 150 * 160)]);
    let w = wav::parse(&file).expect("wav");
    assert_eq!((w.channels, w.rate), (2, 8000));
    let left: Vec<i16> = w.samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = w.samples.iter().skip(1).step_by(2).copied().collect();
    let rms = switchboard_media::mix::rms;
    // caller left, agent right, each with its own tone
    assert!(rms(&left[..100 * 160]) > 4000.0);
    assert!(rms(&right[..100 * 160]) > 4000.0);
    let seconds = |x: &[i16]| x.len() as f64 / 8000.0;
    assert!((seconds(&left) - 4.0).abs() < 0.001);
    // the pause is silence on both; afterwards the agent's side is silent, the caller's is not
    assert!(left[100 * 160..150 * 160].iter().all(|&s| s == 0));
    assert!(right[100 * 160..150 * 160].iter().all(|&s| s == 0));
    assert!(rms(&left[150 * 160..]) > 4000.0);
    assert!(rms(&right[150 * 160..]) < 1.0);
}

#[test]
fn a_silent_leg_times_out_once_and_junk_is_counted() {
    let mut b = bridge();
    b.handle_datagram(
        0,
        Leg::Caller,
        addr(CALLER),
        &packet(8, 1, 0, false, &[0xD5; 160]),
    );
    drain(&mut b);
    assert_eq!(b.poll_timeout(), Some(30_000));
    b.handle_timeout(29_999);
    assert!(drain(&mut b).is_empty());
    b.handle_timeout(30_000);
    assert_eq!(drain(&mut b), vec![Output::TimedOut(Leg::Caller)]);
    b.handle_timeout(60_000);
    assert!(drain(&mut b).is_empty(), "reported once");
    // junk, RTCP and an unknown payload type are dropped and counted
    b.handle_datagram(60_001, Leg::Caller, addr(CALLER), b"hello");
    b.handle_datagram(
        60_002,
        Leg::Caller,
        addr(CALLER),
        &[0x81, 201, 0, 1, 0, 0, 0, 0],
    );
    b.handle_datagram(
        60_003,
        Leg::Caller,
        addr(CALLER),
        &packet(18, 2, 160, false, &[0; 20]),
    );
    assert!(drain(&mut b).is_empty());
    let d = b.drops();
    assert_eq!((d.malformed, d.rtcp, d.payload_type), (1, 1, 1));
    // a packet brings the leg back: it can time out again later
    b.handle_datagram(
        60_010,
        Leg::Caller,
        addr(CALLER),
        &packet(8, 3, 320, false, &[0xD5; 160]),
    );
    assert_eq!(b.poll_timeout(), Some(90_010));
}

/// A prompt played to the caller goes out every 20 ms in the caller's codec as its own
/// stream, masks the agent's audio while it plays, and is reported when played out.
#[test]
fn a_prompt_is_played_to_a_leg_in_its_codec_and_masks_the_other_leg() {
    use switchboard_media::player::Clip;
    let mut b = bridge();
    let tone = tones(&[440.0], 8000.0, 0, 800); // 100 ms: five frames
    b.play(
        0,
        Leg::Caller,
        Clip {
            samples: tone.clone().into(),
            looping: false,
            id: 7,
        },
    );
    assert_eq!(b.poll_timeout(), Some(0));
    // The agent talks meanwhile: not relayed to the caller.
    b.handle_datagram(
        5,
        Leg::Agent,
        addr(AGENT),
        &packet(0, 1, 160, false, &[0x55; 160]),
    );
    let mut frames = Vec::new();
    let mut played = Vec::new();
    let mut now = 0;
    while let Some(t) = b.poll_timeout().filter(|t| *t < 1000) {
        now = t.max(now);
        b.handle_timeout(now);
        for o in drain(&mut b) {
            match o {
                Output::Send { leg, to, datagram } => {
                    assert_eq!((leg, to), (Leg::Caller, addr(CALLER)));
                    frames.push((now, datagram));
                }
                Output::Played { leg, id } => played.push((leg, id)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(frames.len(), 5, "100 ms in 20 ms frames");
    assert_eq!(played, vec![(Leg::Caller, 7)]);
    assert!(!b.is_playing(Leg::Caller));
    let mut decoded = Vec::new();
    for (i, (at, d)) in frames.iter().enumerate() {
        assert_eq!(*at, i as u64 * 20, "paced by now");
        let p = Packet::parse(d).expect("rtp");
        assert_eq!(p.header.payload_type, 8, "the caller's A-law");
        assert_eq!(p.header.sequence, i as u16);
        assert_eq!(p.header.timestamp, i as u32 * 160);
        let mut frame = Vec::new();
        Law::Alaw.decode(p.payload, &mut frame);
        decoded.extend(frame);
    }
    let err = decoded
        .iter()
        .zip(&tone)
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
        .max()
        .expect("samples");
    assert!(err < 300, "A-law of the tone, max error {err}");
    // Done playing: the agent is heard again.
    b.handle_datagram(
        200,
        Leg::Agent,
        addr(AGENT),
        &packet(0, 2, 320, false, &[0x55; 160]),
    );
    assert_eq!(sent(&drain(&mut b)).len(), 1);
    // A loop plays until stopped.
    b.play(
        300,
        Leg::Caller,
        Clip {
            samples: tone.into(),
            looping: true,
            id: 8,
        },
    );
    b.handle_timeout(2300);
    assert_eq!(sent(&drain(&mut b)).len(), 1, "late: skips ahead, no burst");
    b.handle_timeout(2400);
    assert_eq!(sent(&drain(&mut b)).len(), 5, "then every 20 ms");
    assert!(b.stop_playing(Leg::Caller));
    assert_eq!(b.poll_timeout().filter(|t| *t < 10_000), None);
}

mod rtcp_termination {
    use super::*;
    use switchboard_media::rtcp::{self, ReportBlock, RtcpPacket, middle};

    const WALL: u64 = 1_700_000_000_000;

    fn rtcp_out(outs: &[Output]) -> Vec<(Leg, SocketAddr, Vec<RtcpPacket>, bool)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::SendRtcp { leg, to, datagram } => {
                    Some((*leg, *to, rtcp::parse(datagram).expect("ours"), false))
                }
                Output::Send { leg, to, datagram } if switchboard_media::rtp::is_rtcp(datagram) => {
                    Some((*leg, *to, rtcp::parse(datagram).expect("ours"), true))
                }
                _ => None,
            })
            .collect()
    }

    fn rr(ssrc: u32, about: u32, lost: i32, lsr: u32, dlsr: u32) -> Vec<u8> {
        let mut out = Vec::new();
        rtcp::write(
            &rtcp::Compound {
                ssrc,
                sender: None,
                report: Some(ReportBlock {
                    ssrc: about,
                    fraction_lost: 0,
                    cumulative_lost: lost,
                    highest_sequence: 0,
                    jitter: 80,
                    last_sr: lsr,
                    delay_since_last_sr: dlsr,
                }),
                cname: "peer",
                bye: false,
            },
            &mut out,
        );
        out
    }

    /// Both legs' reports: the caller (RTCP on its RTP port + 1, latched from a NAT) gets an SR
    /// about the agent's stream we relay to it with a block about its own stream and its
    /// losses; its RR's LSR/DLSR give the round-trip time; a stranger's RTCP is dropped; the
    /// end sends a BYE.
    #[test]
    fn each_leg_gets_its_own_reports_and_its_reports_give_the_round_trip() {
        let mut b = Bridge::new(0);
        b.enable_rtcp(1000, WALL, "switchboard@test");
        b.set_media(Leg::Caller, media(Law::Ulaw, None, CALLER));
        b.set_media(Leg::Agent, media(Law::Ulaw, None, AGENT));
        assert_eq!(b.poll_timeout(), None, "no RTCP before the session is live");
        b.handle_timeout(0);
        assert!(drain(&mut b).is_empty());
        // 50 packets from the caller with 5 missing (10..15), 50 from the agent, 20 ms apart
        for i in 0..50u16 {
            let t = u64::from(i) * 20;
            if !(10..15).contains(&i) {
                b.handle_datagram(
                    t,
                    Leg::Caller,
                    addr(CALLER),
                    &packet(0, i, u32::from(i) * 160, false, &[0xFF; 160]),
                );
            }
            b.handle_datagram(
                t,
                Leg::Agent,
                addr(AGENT),
                &packet(0, 1000 + i, u32::from(i) * 160, false, &[0xFF; 160]),
            );
            if i == 0 {
                assert_eq!(
                    b.poll_timeout(),
                    Some(0),
                    "live: the schedule starts at once"
                );
            }
            if b.poll_timeout().is_some_and(|w| w <= t) {
                b.handle_timeout(t);
            }
            if i == 0 {
                assert_eq!(
                    b.poll_timeout(),
                    Some(500),
                    "the first report after half an interval"
                );
            }
        }
        let outs = drain(&mut b);
        let reports = rtcp_out(&outs);
        assert_eq!(
            reports.len(),
            2,
            "one report per leg at 500 ms: {reports:?}"
        );
        let (leg, to, packets, muxed) = &reports[0];
        assert_eq!(
            (*leg, *to, *muxed),
            (Leg::Caller, addr("192.0.2.10:4001"), false)
        );
        let RtcpPacket::SenderReport {
            ssrc,
            info,
            reports: blocks,
        } = &packets[0]
        else {
            panic!("we relayed the agent's stream to the caller: an SR, {packets:?}");
        };
        assert_eq!(*ssrc, 0xCAFE, "the stream's own SSRC");
        assert_eq!(info.packets, 26);
        let block = blocks[0];
        assert_eq!(block.cumulative_lost, 5, "the caller's 5 missing packets");
        assert_eq!(block.highest_sequence, 25);
        assert!(
            matches!(&packets[1], RtcpPacket::SourceDescription(c) if c[0].1.as_deref() == Some("switchboard@test"))
        );
        assert_eq!(
            reports[1].1,
            addr("127.0.0.1:5005"),
            "the agent's RTP port + 1"
        );

        // The caller's RTCP comes from behind a NAT: latched, and our reports go there.
        let natted_rtcp = addr("198.51.100.7:31001");
        let lsr = middle(info.ntp);
        // it held our SR for 100 ms (6553 units) and answers at 700 ms: RTT 100 ms
        b.handle_rtcp(
            700,
            Leg::Caller,
            natted_rtcp,
            &rr(0x7E57, 0xCAFE, 2, lsr, 6553),
        );
        b.handle_rtcp(
            700,
            Leg::Caller,
            addr("203.0.113.9:9"),
            &rr(1, 0xCAFE, 99, lsr, 0),
        );
        assert_eq!(b.drops().stranger, 1);
        b.handle_rtcp(701, Leg::Caller, natted_rtcp, b"\x80\xc9junk");
        assert_eq!(b.drops().rtcp, 1, "malformed RTCP is counted");
        let q = b.quality(Leg::Caller);
        assert_eq!((q.received, q.lost), (45, 5));
        assert!((q.loss_fraction - 0.1).abs() < 1e-9, "{q:?}");
        let peer = q.peer.expect("the caller reported");
        assert_eq!(peer.cumulative_lost, 2);
        assert_eq!(peer.jitter_ms, 10.0);
        let rtt = peer.rtt_ms.expect("rtt");
        assert!((rtt - 100.0).abs() < 2.0, "{rtt}");
        assert!(
            b.quality(Leg::Agent).peer.is_none(),
            "the agent sent no RTCP"
        );

        b.handle_timeout(1500);
        let reports = rtcp_out(&drain(&mut b));
        assert_eq!(reports[0].1, natted_rtcp);
        let RtcpPacket::SenderReport {
            reports: blocks, ..
        } = &reports[0].2[0]
        else {
            panic!("the agent's stream went on to the caller: an SR, {reports:?}");
        };
        assert_eq!(blocks[0].fraction_lost, 0, "no loss in that interval");
        assert_eq!(blocks[0].cumulative_lost, 5);
        b.handle_timeout(2500);
        let reports = rtcp_out(&drain(&mut b));
        assert!(
            matches!(&reports[0].2[0], RtcpPacket::ReceiverReport { .. }),
            "nothing relayed to the caller since: an RR, {reports:?}"
        );
        b.close(1600);
        let last = rtcp_out(&drain(&mut b));
        assert_eq!(last.len(), 2);
        for (_, _, p, _) in &last {
            assert!(matches!(p.last(), Some(RtcpPacket::Bye { .. })), "{p:?}");
        }
        assert_eq!(b.poll_timeout(), None, "nothing after the end");
    }

    /// rtcp-mux (RFC 5761): reports go to the leg's RTP address from its RTP socket, and its
    /// RTCP arriving on the RTP socket is read, not relayed.
    #[test]
    fn a_muxed_leg_gets_its_reports_on_the_rtp_port() {
        let mut b = Bridge::new(0);
        b.enable_rtcp(1000, WALL, "sb");
        let mut m = media(Law::Ulaw, None, CALLER);
        m.rtcp_mux = true;
        b.set_media(Leg::Caller, m);
        b.set_media(Leg::Agent, media(Law::Ulaw, None, AGENT));
        b.handle_datagram(
            10,
            Leg::Caller,
            addr(CALLER),
            &packet(0, 1, 160, false, &[0xFF; 160]),
        );
        b.handle_datagram(
            20,
            Leg::Caller,
            addr(CALLER),
            &rr(0x7E57, 0x5342_0000, 7, 0, 0),
        );
        let relayed = sent(&drain(&mut b));
        assert_eq!(relayed.len(), 1, "only the RTP packet reaches the agent");
        assert!(!switchboard_media::rtp::is_rtcp(&relayed[0].2));
        assert_eq!(
            b.quality(Leg::Caller).peer.map(|p| p.cumulative_lost),
            Some(7)
        );
        b.handle_timeout(20);
        assert_eq!(b.poll_timeout(), Some(520));
        b.handle_timeout(520);
        let reports = rtcp_out(&drain(&mut b));
        let caller = reports
            .iter()
            .find(|r| r.0 == Leg::Caller)
            .expect("caller's report");
        assert_eq!((caller.1, caller.3), (addr(CALLER), true));
        assert!(
            matches!(&caller.2[0], RtcpPacket::ReceiverReport { reports, .. } if reports[0].ssrc == 0xCAFE)
        );
    }

    /// Without `enable_rtcp` nothing is reported and RTCP is only counted.
    #[test]
    fn rtcp_off_reports_nothing() {
        let mut b = Bridge::new(0);
        b.set_media(Leg::Caller, media(Law::Ulaw, None, CALLER));
        assert_eq!(b.poll_timeout(), None);
        b.handle_rtcp(5, Leg::Caller, addr(CALLER), &rr(1, 2, 0, 0, 0));
        b.close(10);
        assert!(drain(&mut b).is_empty());
        assert_eq!(b.drops().rtcp, 1);
    }
}

/// A leg quiet for the hold time is reported once: after its tone stops (silent packets still
/// coming), and with no packets at all.
#[test]
fn a_silent_leg_is_reported_once_after_the_hold() {
    let mut b = Bridge::new(0);
    b.set_media(Leg::Caller, media(Law::Alaw, None, CALLER));
    b.set_media(Leg::Agent, media(Law::Ulaw, None, AGENT));
    b.detect_silence(0, Leg::Caller, Some(1000));
    assert_eq!(b.poll_timeout(), Some(1000));
    let mut silent_at = None;
    for i in 0..150u16 {
        let t = u64::from(i) * 20;
        // 1 s of tone, then A-law silence
        let samples = if i < 50 {
            tones(&[1000.0], 9000.0, u64::from(i) * 160, 160)
        } else {
            vec![0; 160]
        };
        let mut payload = Vec::new();
        Law::Alaw.encode(&samples, &mut payload);
        b.handle_datagram(
            t,
            Leg::Caller,
            addr(CALLER),
            &packet(8, i, u32::from(i) * 160, false, &payload),
        );
        if b.poll_timeout().is_some_and(|w| w <= t) {
            b.handle_timeout(t);
        }
        if drain(&mut b).contains(&Output::Silent(Leg::Caller)) {
            assert!(silent_at.is_none(), "reported once");
            silent_at = Some(t);
        }
    }
    // the last loud frame came at 980 ms: silent from 1980 ms
    assert_eq!(silent_at, Some(1980));
    assert_eq!(b.poll_timeout(), None);

    let mut b = Bridge::new(0);
    b.set_media(Leg::Caller, media(Law::Alaw, None, CALLER));
    b.detect_silence(100, Leg::Caller, Some(500));
    b.handle_timeout(599);
    assert!(drain(&mut b).is_empty());
    b.handle_timeout(600);
    assert_eq!(
        drain(&mut b),
        vec![Output::Silent(Leg::Caller)],
        "no packets is silence"
    );
    b.detect_silence(600, Leg::Caller, None);
    b.handle_timeout(5000);
    assert!(drain(&mut b).is_empty(), "off");
}

/// A leg's new source (another phone after a transfer): its statistics start again, and the
/// leg's quality adds both without counting the jump in sequence numbers as loss.
#[test]
fn a_new_source_on_a_leg_is_not_counted_as_loss() {
    let mut b = Bridge::new(0);
    b.set_media(Leg::Caller, media(Law::Ulaw, None, CALLER));
    b.set_media(Leg::Agent, media(Law::Ulaw, None, AGENT));
    let from = |ssrc: u32, seq: u16| {
        let mut d = Vec::new();
        Header {
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc,
            csrc: Vec::new(),
        }
        .write(&[0xFF; 160], &mut d);
        d
    };
    for i in 0..50u16 {
        if i != 7 {
            b.handle_datagram(u64::from(i) * 20, Leg::Agent, addr(AGENT), &from(1, i));
        }
    }
    for i in 0..50u16 {
        let t = 1000 + u64::from(i) * 20;
        b.handle_datagram(t, Leg::Agent, addr(AGENT), &from(2, 30_000 + i));
    }
    let q = b.quality(Leg::Agent);
    assert_eq!((q.received, q.lost), (99, 1), "{q:?}");
    assert_eq!(b.stats(Leg::Agent).expected(), 50, "the new source's own");
}
