//! Transaction layer on virtual time: every timer, every retransmission schedule, matching,
//! CANCEL races and termination. No sockets, no sleeps.

use std::time::Duration;

use proptest::prelude::*;
use switchboard_model::MonoTime;
use switchboard_sip::transaction::{
    Event, Input, Output, Peer, State, TransactionConfig, TransactionError, TransactionId,
    TransactionLayer,
};
use switchboard_sip::{
    HeaderName, Message, Method, Request, Response, StatusCode, Transport, parse,
};

fn peer(transport: Transport) -> Peer {
    Peer {
        transport,
        addr: "192.0.2.10:5060".parse().expect("address"),
    }
}

fn udp() -> Peer {
    peer(Transport::Udp)
}

fn ms(n: u64) -> MonoTime {
    MonoTime::from_millis(n)
}

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
         From: <sip:alice@example.net>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: call-1@192.0.2.1\r\n\
         CSeq: 7 {method}\r\n\
         Route: <sip:proxy.example.com;lr>\r\n\
         Max-Forwards: 70\r\n\r\n"
    );
    match parse(text.as_bytes()).expect("test request parses") {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!("a request"),
    }
}

fn invite() -> Request {
    request("INVITE", "z9hG4bKinv1")
}

fn response(req: &Request, code: u16) -> Response {
    let status = StatusCode::new(code).expect("valid code");
    let mut r = Response::for_request(req, status, status.canonical_reason());
    if code > 100 {
        let mut to = req.headers.to().expect("To");
        to.set_tag("b2");
        r.headers.set(HeaderName::TO, to.to_string());
    }
    r
}

fn recv(layer: &mut TransactionLayer, now: MonoTime, message: impl Into<Message>) {
    layer.handle_input(
        now,
        Input::Received {
            message: message.into(),
            peer: udp(),
        },
    );
}

fn drain(layer: &mut TransactionLayer) -> Vec<Output> {
    std::iter::from_fn(|| layer.poll_output()).collect()
}

/// Runs timers up to and including `end`; returns every output with the time it appeared.
fn run_until(layer: &mut TransactionLayer, end: MonoTime) -> Vec<(MonoTime, Output)> {
    let mut out = Vec::new();
    while let Some(at) = layer.poll_timeout() {
        if at > end {
            break;
        }
        layer.handle_timeout(at);
        out.extend(drain(layer).into_iter().map(|o| (at, o)));
    }
    out
}

fn transmit_times(outs: &[(MonoTime, Output)]) -> Vec<u64> {
    outs.iter()
        .filter(|(_, o)| matches!(o, Output::Transmit { .. }))
        .map(|(t, _)| t.since_origin().as_millis() as u64)
        .collect()
}

fn events(outs: &[Output]) -> Vec<&Event> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            Output::Transmit { .. } => None,
        })
        .collect()
}

fn sent(outs: &[Output]) -> Vec<&Message> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit { message, .. } => Some(message),
            Output::Event(_) => None,
        })
        .collect()
}

fn layer() -> TransactionLayer {
    TransactionLayer::new(TransactionConfig::default())
}

#[test]
fn client_invite_timer_a_doubles_without_cap_until_timer_b() {
    let mut l = layer();
    let id = l.send_request(ms(0), invite(), udp()).unwrap();
    assert_eq!(sent(&drain(&mut l)).len(), 1);
    assert_eq!(l.state(id), Some(State::Calling));
    let outs = run_until(&mut l, ms(60_000));
    // RFC 3261 17.1.1.2: retransmit at T1, 3T1, 7T1, 15T1, 31T1, 63T1; B at 64*T1.
    assert_eq!(
        transmit_times(&outs),
        vec![500, 1500, 3500, 7500, 15_500, 31_500]
    );
    let last: Vec<_> = outs.iter().filter(|(t, _)| *t == ms(32_000)).collect();
    assert!(matches!(last[0].1, Output::Event(Event::Timeout { id: i }) if i == id));
    assert!(matches!(last[1].1, Output::Event(Event::Terminated { id: i }) if i == id));
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn client_invite_on_tcp_never_retransmits() {
    let mut l = layer();
    let id = l
        .send_request(ms(0), invite(), peer(Transport::Tcp))
        .unwrap();
    drain(&mut l);
    let outs = run_until(&mut l, ms(60_000));
    assert!(transmit_times(&outs).is_empty());
    assert_eq!(outs[0].0, ms(32_000), "Timer B still runs");
    assert!(matches!(outs[0].1, Output::Event(Event::Timeout { id: i }) if i == id));
}

#[test]
fn client_non_invite_timer_e_doubles_up_to_t2_then_f() {
    let mut l = layer();
    let id = l
        .send_request(ms(0), request("OPTIONS", "z9hG4bKopt"), udp())
        .unwrap();
    drain(&mut l);
    let outs = run_until(&mut l, ms(60_000));
    assert_eq!(
        transmit_times(&outs),
        vec![
            500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert!(
        outs.iter()
            .any(|(t, o)| *t == ms(32_000) && *o == Output::Event(Event::Timeout { id }))
    );
    assert!(l.is_empty());
}

#[test]
fn client_non_invite_in_proceeding_retransmits_every_t2() {
    let mut l = layer();
    let req = request("REGISTER", "z9hG4bKreg");
    let id = l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    let mut outs = run_until(&mut l, ms(600)); // one retransmission at 500
    recv(&mut l, ms(700), response(&req, 100));
    assert_eq!(l.state(id), Some(State::Proceeding));
    let evs = drain(&mut l);
    assert!(matches!(events(&evs)[0], Event::Response { id: i, .. } if *i == id));
    outs.extend(run_until(&mut l, ms(14_000)));
    // E was due at 1500 (interval 1 s); in Proceeding it then stays at T2.
    assert_eq!(transmit_times(&outs), vec![500, 1500, 5500, 9500, 13_500]);
    recv(&mut l, ms(14_000), response(&req, 200));
    let evs = drain(&mut l);
    assert!(
        matches!(events(&evs)[0], Event::Response { response, .. } if response.status == StatusCode::OK)
    );
    assert_eq!(l.state(id), Some(State::Completed));
    // Retransmitted final absorbed; Timer K = T4.
    recv(&mut l, ms(15_000), response(&req, 200));
    assert!(drain(&mut l).is_empty());
    let outs = run_until(&mut l, ms(60_000));
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].0, ms(19_000));
    assert!(l.is_empty());
}

#[test]
fn client_non_invite_on_tcp_ends_with_its_final_response() {
    let mut l = layer();
    let req = request("OPTIONS", "z9hG4bKtcp");
    let id = l
        .send_request(ms(0), req.clone(), peer(Transport::Tcp))
        .unwrap();
    drain(&mut l);
    l.handle_input(
        ms(10),
        Input::Received {
            message: response(&req, 200).into(),
            peer: peer(Transport::Tcp),
        },
    );
    let evs = drain(&mut l);
    let e = events(&evs);
    assert!(matches!(e[0], Event::Response { .. }));
    assert_eq!(*e[1], Event::Terminated { id });
    assert!(l.is_empty(), "Timer K is zero on reliable transports");
}

#[test]
fn client_invite_non_2xx_is_acked_and_absorbed_until_timer_d() {
    let mut l = layer();
    let req = invite();
    let id = l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    recv(&mut l, ms(100), response(&req, 180));
    recv(&mut l, ms(1000), response(&req, 486));
    let outs = drain(&mut l);
    let e = events(&outs);
    assert_eq!(e.len(), 2, "180 and 486 reach the user");
    let acks = sent(&outs);
    assert_eq!(acks.len(), 1);
    let Message::Request(ack) = acks[0] else {
        panic!("ACK expected")
    };
    // RFC 3261 17.1.1.3.
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, req.uri);
    assert_eq!(ack.headers.cseq().unwrap().seq, 7);
    assert_eq!(ack.headers.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.headers.to().unwrap().tag(), Some("b2"));
    assert_eq!(ack.headers.via().unwrap().len(), 1);
    assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKinv1"));
    assert_eq!(ack.headers.route().unwrap().len(), 1);
    assert_eq!(l.state(id), Some(State::Completed));
    // A retransmitted 486 gets the ACK again and is not reported.
    recv(&mut l, ms(2000), response(&req, 486));
    let outs = drain(&mut l);
    assert!(events(&outs).is_empty());
    assert_eq!(sent(&outs).len(), 1);
    let outs = run_until(&mut l, ms(60_000));
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].0, ms(33_000), "Timer D = 32 s");
    assert!(l.is_empty());
}

#[test]
fn client_invite_2xx_goes_to_accepted_and_passes_retransmissions_until_timer_m() {
    let mut l = layer();
    let req = invite();
    let id = l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    recv(&mut l, ms(300), response(&req, 200));
    let outs = drain(&mut l);
    assert!(sent(&outs).is_empty(), "the ACK of a 2xx is the user's job");
    assert_eq!(l.state(id), Some(State::Accepted));
    recv(&mut l, ms(800), response(&req, 200));
    let outs = drain(&mut l);
    assert!(matches!(events(&outs)[0], Event::Response { .. }));
    // No retransmission of the INVITE after the 2xx.
    let outs = run_until(&mut l, ms(60_000));
    assert!(transmit_times(&outs).is_empty());
    assert_eq!(outs[0].0, ms(32_300), "Timer M = 64*T1");
    assert!(l.is_empty());
}

#[test]
fn configurable_timers() {
    let mut l = TransactionLayer::new(TransactionConfig {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(300),
        ..TransactionConfig::default()
    });
    l.send_request(ms(0), request("BYE", "z9hG4bKbye"), udp())
        .unwrap();
    drain(&mut l);
    let outs = run_until(&mut l, ms(10_000));
    assert_eq!(
        transmit_times(&outs),
        vec![
            100, 300, 600, 900, 1200, 1500, 1800, 2100, 2400, 2700, 3000, 3300, 3600, 3900, 4200,
            4500, 4800, 5100, 5400, 5700, 6000, 6300
        ]
    );
    assert!(
        outs.iter()
            .any(|(t, o)| *t == ms(6400) && matches!(o, Output::Event(Event::Timeout { .. })))
    );
}

#[test]
fn server_invite_sends_trying_after_200ms_and_retransmits_provisional() {
    let mut l = layer();
    let req = invite();
    recv(&mut l, ms(0), req.clone());
    let outs = drain(&mut l);
    let Event::Request {
        id: Some(id),
        cancels: None,
        ..
    } = events(&outs)[0]
    else {
        panic!("new request expected")
    };
    let id = *id;
    assert!(sent(&outs).is_empty());
    let outs = run_until(&mut l, ms(250));
    assert_eq!(transmit_times(&outs), vec![200]);
    let Output::Transmit {
        message: Message::Response(trying),
        ..
    } = &outs[0].1
    else {
        panic!("100 expected")
    };
    assert_eq!(trying.status, StatusCode::TRYING);
    assert_eq!(trying.headers.to().unwrap().tag(), None);
    // The retransmitted INVITE gets the 100 again and no new event.
    recv(&mut l, ms(500), req.clone());
    let outs = drain(&mut l);
    assert!(events(&outs).is_empty());
    assert_eq!(sent(&outs).len(), 1);
    assert_eq!(l.state(id), Some(State::Proceeding));
}

#[test]
fn server_invite_answered_quickly_sends_no_trying() {
    let mut l = layer();
    let req = invite();
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(50), id, response(&req, 180)).unwrap();
    assert_eq!(sent(&drain(&mut l)).len(), 1);
    let outs = run_until(&mut l, ms(1000));
    assert!(outs.is_empty(), "no 100 after the user answered");
}

fn first_request_id(outs: &[Output]) -> TransactionId {
    match events(outs)[0] {
        Event::Request { id: Some(id), .. } => *id,
        other => panic!("request event expected, got {other:?}"),
    }
}

#[test]
fn server_invite_non_2xx_timer_g_doubles_to_t2_until_timer_h() {
    let mut l = layer();
    let req = invite();
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(100), id, response(&req, 486)).unwrap();
    assert_eq!(sent(&drain(&mut l)).len(), 1);
    assert_eq!(l.state(id), Some(State::Completed));
    let outs = run_until(&mut l, ms(60_000));
    // G: 600, 1600, 3600, 7600, then every T2 until H at 100 + 32000.
    assert_eq!(
        transmit_times(&outs),
        vec![
            600, 1600, 3600, 7600, 11_600, 15_600, 19_600, 23_600, 27_600, 31_600
        ]
    );
    assert!(
        outs.iter()
            .any(|(t, o)| *t == ms(32_100) && *o == Output::Event(Event::Timeout { id }))
    );
    assert!(l.is_empty());
}

#[test]
fn server_invite_ack_confirms_stops_g_and_timer_i_ends_it() {
    let mut l = layer();
    let req = invite();
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(0), id, response(&req, 603)).unwrap();
    drain(&mut l);
    // An INVITE retransmission in Completed gets the final response again.
    recv(&mut l, ms(200), req.clone());
    assert_eq!(sent(&drain(&mut l)).len(), 1);
    assert_eq!(
        transmit_times(&run_until(&mut l, ms(600))),
        vec![500],
        "Timer G"
    );
    let mut ack = request("ACK", "z9hG4bKinv1");
    ack.headers
        .set(HeaderName::TO, "<sip:bob@example.com>;tag=b2");
    recv(&mut l, ms(700), ack.clone());
    assert!(drain(&mut l).is_empty(), "ACK of a non-2xx is absorbed");
    assert_eq!(l.state(id), Some(State::Confirmed));
    recv(&mut l, ms(800), ack);
    assert!(drain(&mut l).is_empty());
    let outs = run_until(&mut l, ms(60_000));
    // No more G after the ACK; only Timer I at 700 + T4.
    assert_eq!(transmit_times(&outs), Vec::<u64>::new());
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].0, ms(5700));
    assert!(l.is_empty());
}

#[test]
fn server_invite_2xx_accepted_absorbs_invites_and_passes_acks() {
    let mut l = layer();
    let req = invite();
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(10), id, response(&req, 200)).unwrap();
    drain(&mut l);
    assert_eq!(l.state(id), Some(State::Accepted));
    recv(&mut l, ms(500), req.clone());
    assert!(
        drain(&mut l).is_empty(),
        "INVITE retransmission absorbed (RFC 6026)"
    );
    // The user retransmits its 2xx through the transaction.
    l.send_response(ms(510), id, response(&req, 200)).unwrap();
    assert_eq!(sent(&drain(&mut l)).len(), 1);
    assert_eq!(
        l.send_response(ms(520), id, response(&req, 486)),
        Err(TransactionError::AlreadyCompleted)
    );
    // An ACK with a new branch (the usual 2xx ACK) matches nothing: to the dialog layer.
    let ack = request("ACK", "z9hG4bKack2");
    recv(&mut l, ms(600), ack);
    let outs = drain(&mut l);
    assert!(
        matches!(events(&outs)[0], Event::Request { id: None, request, .. } if request.method == Method::Ack)
    );
    // One that reuses the INVITE's branch matches the Accepted transaction.
    recv(&mut l, ms(650), request("ACK", "z9hG4bKinv1"));
    let outs = drain(&mut l);
    assert!(matches!(events(&outs)[0], Event::Ack { id: i, .. } if *i == id));
    let outs = run_until(&mut l, ms(60_000));
    assert_eq!(outs[0].0, ms(32_010), "Timer L = 64*T1");
    assert!(l.is_empty());
}

#[test]
fn server_non_invite_absorbs_then_replays_final_until_timer_j() {
    let mut l = layer();
    let req = request("OPTIONS", "z9hG4bKsopt");
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    assert_eq!(l.state(id), Some(State::Trying));
    recv(&mut l, ms(400), req.clone());
    assert!(drain(&mut l).is_empty(), "absorbed in Trying");
    l.send_response(ms(500), id, response(&req, 100)).unwrap();
    drain(&mut l);
    recv(&mut l, ms(600), req.clone());
    assert_eq!(
        sent(&drain(&mut l)).len(),
        1,
        "provisional replayed in Proceeding"
    );
    l.send_response(ms(700), id, response(&req, 200)).unwrap();
    drain(&mut l);
    recv(&mut l, ms(900), req.clone());
    let outs = drain(&mut l);
    let Message::Response(r) = sent(&outs)[0] else {
        panic!("response expected")
    };
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        l.send_response(ms(950), id, response(&req, 500)),
        Err(TransactionError::AlreadyCompleted)
    );
    let outs = run_until(&mut l, ms(60_000));
    assert_eq!(outs[0].0, ms(32_700), "Timer J = 64*T1");
    assert!(l.is_empty());
}

#[test]
fn server_non_invite_on_tcp_ends_with_its_final_response() {
    let mut l = layer();
    let req = request("OPTIONS", "z9hG4bKtcp2");
    l.handle_input(
        ms(0),
        Input::Received {
            message: req.clone().into(),
            peer: peer(Transport::Tcp),
        },
    );
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(1), id, response(&req, 200)).unwrap();
    let outs = drain(&mut l);
    assert_eq!(*events(&outs)[0], Event::Terminated { id });
    assert!(l.is_empty());
}

#[test]
fn responses_match_by_branch_and_cseq_method() {
    let mut l = layer();
    let req = invite();
    let id = l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    // Other branch: stray.
    let mut other = response(&req, 180);
    other.headers.set(
        HeaderName::VIA,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKother",
    );
    recv(&mut l, ms(10), other);
    let outs = drain(&mut l);
    assert!(matches!(events(&outs)[0], Event::StrayResponse { .. }));
    // Same branch, CSeq method CANCEL: not the INVITE's.
    let mut cancel_resp = response(&req, 200);
    cancel_resp.headers.set(HeaderName::CSEQ, "7 CANCEL");
    recv(&mut l, ms(20), cancel_resp);
    let outs = drain(&mut l);
    assert!(matches!(events(&outs)[0], Event::StrayResponse { .. }));
    assert_eq!(l.state(id), Some(State::Calling));
}

#[test]
fn late_responses_after_termination_are_stray() {
    let mut l = layer();
    let req = request("OPTIONS", "z9hG4bKlate");
    l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    run_until(&mut l, ms(40_000));
    assert!(l.is_empty());
    recv(&mut l, ms(40_001), response(&req, 200));
    let outs = drain(&mut l);
    assert!(matches!(events(&outs)[0], Event::StrayResponse { .. }));
}

#[test]
fn rfc2543_requests_match_without_the_magic_cookie() {
    // RFC 4475 3.2.1 (badbranch): branch is exactly the cookie, so RFC 2543 matching applies.
    let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/sip-rfc4475/badbranch.dat");
    let bytes = std::fs::read(&corpus).expect("badbranch.dat beside the repository");
    let Message::Request(req) = parse(&bytes).unwrap() else {
        panic!("request")
    };
    let mut l = layer();
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(10), id, response(&req, 200)).unwrap();
    drain(&mut l);
    recv(&mut l, ms(500), req.clone());
    assert_eq!(
        sent(&drain(&mut l)).len(),
        1,
        "retransmission matched, 200 replayed"
    );
    // A different CSeq is a different transaction.
    let mut next = req.clone();
    next.headers.set(HeaderName::CSEQ, "9 OPTIONS");
    recv(&mut l, ms(600), next);
    assert!(matches!(events(&drain(&mut l))[0], Event::Request { id: Some(i), .. } if *i != id));
}

#[test]
fn rfc2543_ack_matches_by_to_tag() {
    let mut l = layer();
    let req = request("INVITE", "2543branch");
    recv(&mut l, ms(0), req.clone());
    let id = first_request_id(&drain(&mut l));
    l.send_response(ms(0), id, response(&req, 404)).unwrap();
    drain(&mut l);
    let mut wrong = request("ACK", "2543branch");
    wrong
        .headers
        .set(HeaderName::TO, "<sip:bob@example.com>;tag=zz");
    recv(&mut l, ms(100), wrong);
    assert!(matches!(
        events(&drain(&mut l))[0],
        Event::Request { id: None, .. }
    ));
    assert_eq!(l.state(id), Some(State::Completed));
    let mut ack = request("ACK", "2543branch");
    ack.headers
        .set(HeaderName::TO, "<sip:bob@example.com>;tag=b2");
    recv(&mut l, ms(200), ack);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.state(id), Some(State::Confirmed));
}

#[test]
fn branch_is_generated_when_missing_and_deterministic() {
    let make = || {
        let mut l = TransactionLayer::new(TransactionConfig {
            branch_seed: 42,
            ..TransactionConfig::default()
        });
        let req = request("OPTIONS", "nocookie");
        l.send_request(ms(0), req, udp()).unwrap();
        let outs = drain(&mut l);
        let Message::Request(r) = sent(&outs)[0].clone() else {
            panic!("request")
        };
        r.headers.top_via().unwrap().branch().unwrap().to_string()
    };
    let a = make();
    assert!(a.starts_with("z9hG4bK") && a.len() > 7);
    assert_eq!(a, make());
    let mut l = layer();
    assert_eq!(
        l.send_request(ms(0), request("ACK", "z9hG4bKx"), udp()),
        Err(TransactionError::AckTransaction)
    );
    let mut no_via = request("OPTIONS", "z9hG4bKx");
    no_via.headers.remove(&HeaderName::VIA);
    assert_eq!(
        l.send_request(ms(0), no_via, udp()),
        Err(TransactionError::MissingVia)
    );
    l.send_request(ms(0), request("OPTIONS", "z9hG4bKdup"), udp())
        .unwrap();
    assert_eq!(
        l.send_request(ms(0), request("OPTIONS", "z9hG4bKdup"), udp()),
        Err(TransactionError::DuplicateBranch)
    );
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut l = layer();
    let req = invite();
    let inv = l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    let cancel = l.cancel(ms(100), inv).unwrap();
    assert!(
        drain(&mut l).is_empty(),
        "RFC 3261 9.1: no CANCEL before a provisional"
    );
    assert_eq!(
        l.cancel(ms(150), inv),
        Ok(cancel),
        "asking twice is harmless"
    );
    recv(&mut l, ms(200), response(&req, 180));
    let outs = drain(&mut l);
    let Message::Request(c) = sent(&outs)[0] else {
        panic!("CANCEL expected")
    };
    assert_eq!(c.method, Method::Cancel);
    assert_eq!(c.uri, req.uri);
    assert_eq!(c.headers.top_via().unwrap().branch(), Some("z9hG4bKinv1"));
    assert_eq!(c.headers.cseq().unwrap().seq, 7);
    assert_eq!(c.headers.cseq().unwrap().method, Method::Cancel);
    assert_eq!(c.headers.to().unwrap().tag(), None);
    assert_eq!(l.state(cancel), Some(State::Trying));
    // 200 to the CANCEL, then 487 to the INVITE.
    recv(&mut l, ms(300), response(c, 200));
    assert!(matches!(events(&drain(&mut l))[0], Event::Response { id, .. } if *id == cancel));
    recv(&mut l, ms(350), response(&req, 487));
    let outs = drain(&mut l);
    assert!(
        matches!(events(&outs)[0], Event::Response { id, response } if *id == inv && response.status.as_u16() == 487)
    );
    assert_eq!(sent(&outs).len(), 1, "487 is ACKed");
    run_until(&mut l, ms(100_000));
    assert!(l.is_empty());
}

#[test]
fn final_response_overtaking_a_pending_cancel_drops_it() {
    let mut l = layer();
    let req = invite();
    let inv = l.send_request(ms(0), req.clone(), udp()).unwrap();
    drain(&mut l);
    let cancel = l.cancel(ms(100), inv).unwrap();
    recv(&mut l, ms(200), response(&req, 200));
    let outs = drain(&mut l);
    assert!(sent(&outs).is_empty(), "no CANCEL after a final response");
    assert!(events(&outs).contains(&&Event::Terminated { id: cancel }));
    assert_eq!(l.state(inv), Some(State::Accepted));
    assert_eq!(
        l.cancel(ms(300), inv),
        Err(TransactionError::AlreadyCompleted)
    );
}

#[test]
fn cancel_crossing_a_2xx_on_the_wire() {
    // CANCEL sent in Proceeding; the 200 to the INVITE was already on its way.
    let mut l = layer();
    let req = invite();
    let inv = l.send_request(ms(0), req.clone(), udp()).unwrap();
    recv(&mut l, ms(100), response(&req, 180));
    drain(&mut l);
    let cancel = l.cancel(ms(200), inv).unwrap();
    assert_eq!(sent(&drain(&mut l)).len(), 1);
    recv(&mut l, ms(250), response(&req, 200));
    assert_eq!(l.state(inv), Some(State::Accepted));
    let mut c = cancel_for_test(&req);
    c.headers.set(HeaderName::CSEQ, "7 CANCEL");
    recv(&mut l, ms(300), response(&c, 200));
    let outs = drain(&mut l);
    let e = events(&outs);
    assert!(
        e.iter()
            .any(|e| matches!(e, Event::Response { id, .. } if *id == inv))
    );
    assert!(
        e.iter()
            .any(|e| matches!(e, Event::Response { id, .. } if *id == cancel))
    );
    run_until(&mut l, ms(100_000));
    assert!(l.is_empty());
}

fn cancel_for_test(req: &Request) -> Request {
    switchboard_sip::transaction::cancel_for(req)
}

#[test]
fn server_cancel_finds_its_invite() {
    let mut l = layer();
    let req = invite();
    recv(&mut l, ms(0), req.clone());
    let inv = first_request_id(&drain(&mut l));
    recv(&mut l, ms(100), cancel_for_test(&req));
    let outs = drain(&mut l);
    let Event::Request {
        id: Some(cid),
        cancels,
        request,
        ..
    } = events(&outs)[0]
    else {
        panic!("CANCEL event expected")
    };
    assert_eq!(request.method, Method::Cancel);
    assert_eq!(*cancels, Some(inv));
    let cid = *cid;
    l.send_response(ms(110), cid, response(request, 200))
        .unwrap();
    l.send_response(ms(110), inv, response(&req, 487)).unwrap();
    drain(&mut l);
    // A CANCEL for an unknown INVITE: the user answers 481.
    let mut stray = cancel_for_test(&req);
    stray.headers.set(
        HeaderName::VIA,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKunknown",
    );
    recv(&mut l, ms(200), stray);
    assert!(matches!(
        events(&drain(&mut l))[0],
        Event::Request { cancels: None, .. }
    ));
}

#[test]
fn transport_errors_end_transactions() {
    let mut l = layer();
    let id = l.send_request(ms(0), invite(), udp()).unwrap();
    drain(&mut l);
    l.handle_input(ms(5), Input::TransportError { id });
    let outs = drain(&mut l);
    assert_eq!(
        events(&outs),
        vec![&Event::TransportError { id }, &Event::Terminated { id }]
    );
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(
        l.send_response(ms(6), id, response(&invite(), 200)),
        Err(TransactionError::NoSuchTransaction(id))
    );
}

/// One scripted network reaction for the termination property.
#[derive(Debug, Clone)]
struct Reaction {
    delay_ms: u64,
    code: u16,
    repeat: u8,
}

fn reaction() -> impl Strategy<Value = Reaction> {
    (
        0u64..40_000,
        prop_oneof![
            Just(100u16),
            Just(180),
            Just(200),
            Just(404),
            Just(487),
            Just(503)
        ],
        0u8..3,
    )
        .prop_map(|(delay_ms, code, repeat)| Reaction {
            delay_ms,
            code,
            repeat,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the network does (no answer, late, duplicated, out-of-order responses), every
    /// client transaction ends, reports at most one timeout, and leaves no timers behind.
    /// Server transactions whose user answers at a random time end too.
    #[test]
    fn every_transaction_terminates(
        reactions in proptest::collection::vec(reaction(), 0..6),
        invite_tx in any::<bool>(),
        reliable in any::<bool>(),
        answer_at in 0u64..5_000,
        answer_code in prop_oneof![Just(200u16), Just(486)],
        ack in any::<bool>(),
    ) {
        let p = peer(if reliable { Transport::Tcp } else { Transport::Udp });
        let mut l = layer();
        let req = if invite_tx { invite() } else { request("OPTIONS", "z9hG4bKprop") };
        let id = l.send_request(ms(0), req.clone(), p.clone()).unwrap();
        // The server side of another transaction, in the same layer.
        let sreq = if invite_tx { request("INVITE", "z9hG4bKsrv") } else { request("INFO", "z9hG4bKsrv") };
        l.handle_input(ms(0), Input::Received { message: sreq.clone().into(), peer: p.clone() });
        let sid = first_request_id(&drain(&mut l));

        let mut script: Vec<(u64, Message)> = Vec::new();
        for r in &reactions {
            for k in 0..=r.repeat {
                script.push((r.delay_ms + u64::from(k) * 700, response(&req, r.code).into()));
            }
        }
        if ack && invite_tx && answer_code != 200 {
            let mut a = request("ACK", "z9hG4bKsrv");
            a.headers.set(HeaderName::TO, "<sip:bob@example.com>;tag=b2");
            script.push((answer_at + 300, a.into()));
        }
        script.sort_by_key(|(t, _)| *t);
        let mut answered = false;
        let mut timeouts = 0;
        let mut terminated = Vec::new();
        let mut now = ms(0);
        let mut i = 0;
        loop {
            let next_script = script.get(i).map(|(t, _)| ms(*t));
            let next_answer = (!answered).then(|| ms(answer_at));
            let next_timer = l.poll_timeout();
            let Some(t) = [next_script, next_answer, next_timer].into_iter().flatten().min() else {
                break;
            };
            prop_assert!(t >= now, "time never goes back");
            now = t;
            if next_answer == Some(t) {
                answered = true;
                let _ = l.send_response(now, sid, response(&sreq, answer_code));
            } else if next_script == Some(t) {
                let (_, m) = script[i].clone();
                i += 1;
                l.handle_input(now, Input::Received { message: m, peer: p.clone() });
            } else {
                l.handle_timeout(now);
            }
            for o in std::iter::from_fn(|| l.poll_output()) {
                match o {
                    Output::Event(Event::Timeout { id: tid }) if tid == id => timeouts += 1,
                    Output::Event(Event::Terminated { id: tid }) => terminated.push(tid),
                    _ => {}
                }
            }
            prop_assert!(now < ms(10 * 60 * 1000), "ran away");
        }
        prop_assert!(timeouts <= 1);
        // A client INVITE left in Proceeding waits for its user (Timer C is a proxy's);
        // everything else must be gone.
        let stuck_in_proceeding = invite_tx && l.state(id) == Some(State::Proceeding);
        if !stuck_in_proceeding {
            prop_assert!(terminated.contains(&id), "client transaction ended");
        }
        prop_assert!(terminated.contains(&sid), "server transaction ended");
        prop_assert_eq!(terminated.iter().filter(|t| **t == id).count() <= 1, true);
        if l.is_empty() {
            prop_assert_eq!(l.poll_timeout(), None);
        }
    }
}
