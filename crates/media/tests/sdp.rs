//! SDP parsing and the RFC 3264 answer for G.711 with telephone-event.

use std::net::SocketAddr;
use switchboard_media::g711::Law;
use switchboard_media::sdp::{Direction, Local, SdpError, accept_answer, answer, offer, parse};

const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

fn local() -> Local {
    Local {
        addr: "127.0.0.1:20000".parse().expect("addr"),
        session_id: 42,
        version: 1,
    }
}

#[test]
fn an_offer_is_read() {
    let s = parse(SIPP_OFFER).expect("parses");
    let (m, addr) = s.audio().expect("audio");
    assert_eq!(addr, Some("127.0.0.1".parse().expect("ip")));
    assert_eq!(m.port, 6000);
    assert_eq!(m.formats, vec![8, 0, 101]);
    assert_eq!(m.encoding(101), Some(("TELEPHONE-EVENT".into(), 8000)));
    assert_eq!(m.ptime, Some(20));
    assert_eq!(m.direction, Direction::SendRecv);
}

#[test]
fn the_answer_takes_the_offerers_first_choice_and_telephone_event() {
    let s = parse(SIPP_OFFER).expect("parses");
    let (text, n) = answer(&s, &local(), &[Law::Ulaw, Law::Alaw]).expect("answer");
    assert_eq!(n.law, Law::Alaw);
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(
        n.remote,
        "127.0.0.1:6000".parse::<SocketAddr>().expect("addr")
    );
    assert!(text.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{text}");
    assert!(text.contains("c=IN IP4 127.0.0.1\r\n"));
    assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    assert!(text.contains("a=sendrecv\r\n"));
    // and it reads back as the same choice
    let back = accept_answer(&parse(&text).expect("parses")).expect("accept");
    assert_eq!((back.law, back.telephone_event), (Law::Alaw, Some(101)));
    assert_eq!(back.remote.port(), 20000);
}

#[test]
fn we_answer_only_what_we_support() {
    let s = parse(SIPP_OFFER).expect("parses");
    let (_, n) = answer(&s, &local(), &[Law::Ulaw]).expect("answer");
    assert_eq!(n.law, Law::Ulaw);
    let g729 = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    assert_eq!(
        answer(
            &parse(g729).expect("parses"),
            &local(),
            &[Law::Ulaw, Law::Alaw]
        )
        .err(),
        Some(SdpError::NoCodec)
    );
}

#[test]
fn hold_directions_are_mirrored_and_other_streams_refused() {
    let hold = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\na=sendonly\r\n";
    let s = parse(hold).expect("parses");
    let (m, addr) = s.audio().expect("audio");
    assert!(m.direction.is_hold());
    assert_eq!(
        addr,
        Some("10.0.0.2".parse().expect("ip")),
        "the media-level c= wins"
    );
    let (text, n) = answer(&s, &local(), &[Law::Ulaw]).expect("answer");
    assert_eq!(n.remote_direction, Direction::SendOnly);
    assert!(text.contains("a=recvonly\r\n"), "{text}");
    // the video stream is answered with port 0, in its place
    let video = text.find("m=video 0 RTP/AVP 96").expect("refused video");
    assert!(video < text.find("m=audio").expect("audio"));
}

#[test]
fn malformed_descriptions_are_errors_not_panics() {
    for bad in [
        "",
        "o=- 1 1 IN IP4 1.2.3.4\r\n",
        "v=1\r\n",
        "v=0\r\nc=IN IP4 not-an-ip\r\n",
        "v=0\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\nm=audio 1000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
        "v=0\r\njunk\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    // no address anywhere: not answerable
    let s = parse("v=0\r\nm=audio 1000 RTP/AVP 0\r\n").expect("parses");
    assert!(answer(&s, &local(), &[Law::Ulaw]).is_err());
}

#[test]
fn our_offer_lists_both_laws_and_events() {
    let text = offer(
        &local(),
        &[Law::Ulaw, Law::Alaw],
        Some(101),
        Direction::SendRecv,
    );
    let s = parse(&text).expect("parses");
    let (m, _) = s.audio().expect("audio");
    assert_eq!(m.formats, vec![0, 8, 101]);
    let hold = offer(&local(), &[Law::Ulaw], None, Direction::SendOnly);
    assert!(hold.contains("a=sendonly\r\n"));
}

#[test]
fn rtcp_ports_are_read_and_ours_is_the_next_port() {
    // RFC 3605's example attribute, with an address of its own.
    let with_rtcp = SIPP_OFFER.replace(
        "a=ptime:20\r\n",
        "a=ptime:20\r\na=rtcp:53020 IN IP4 126.16.64.4\r\n",
    );
    let s = parse(&with_rtcp).expect("parses");
    let (m, _) = s.audio().expect("audio");
    assert_eq!(
        m.rtcp,
        Some((53020, Some("126.16.64.4".parse().expect("ip"))))
    );
    assert!(!m.rtcp_mux);
    let (text, n) = answer(&s, &local(), &[Law::Ulaw, Law::Alaw]).expect("answer");
    assert_eq!(n.rtcp, Some("126.16.64.4:53020".parse().expect("addr")));
    assert!(!n.rtcp_mux);
    assert!(text.contains("a=rtcp:20001\r\n"), "{text}");
    assert!(!text.contains("rtcp-mux"), "{text}");
    // a bare port is on the stream's address; none at all says nothing (the RTP port + 1)
    let bare = SIPP_OFFER.replace("a=ptime:20\r\n", "a=rtcp:6003\r\n");
    let (_, n) = answer(&parse(&bare).expect("parses"), &local(), &[Law::Ulaw]).expect("answer");
    assert_eq!(n.rtcp, Some("127.0.0.1:6003".parse().expect("addr")));
    let (_, n) =
        answer(&parse(SIPP_OFFER).expect("parses"), &local(), &[Law::Ulaw]).expect("answer");
    assert_eq!(n.rtcp, None);
    // our offers name our RTCP port
    let o = offer(&local(), &[Law::Ulaw], Some(101), Direction::SendRecv);
    assert!(o.contains("a=rtcp:20001\r\n"), "{o}");
    let back = accept_answer(&parse(&o).expect("parses")).expect("accept");
    assert_eq!(back.rtcp, Some("127.0.0.1:20001".parse().expect("addr")));
}

#[test]
fn an_offer_of_rtcp_mux_is_answered_with_rtcp_mux() {
    let mux = SIPP_OFFER.replace("a=ptime:20\r\n", "a=ptime:20\r\na=rtcp-mux\r\n");
    let s = parse(&mux).expect("parses");
    assert!(s.audio().expect("audio").0.rtcp_mux);
    let (text, n) = answer(&s, &local(), &[Law::Ulaw, Law::Alaw]).expect("answer");
    assert!(n.rtcp_mux);
    assert!(text.contains("a=rtcp-mux\r\n"), "{text}");
    assert!(!text.contains("a=rtcp:"), "{text}");
}
