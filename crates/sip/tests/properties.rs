//! Property tests: messages built from the types survive serialize → parse; arbitrary and
//! mutated input never panics, and whatever parses re-serializes to something that parses
//! to the same message.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use proptest::prelude::*;
use switchboard_sip::{
    CSeq, HeaderName, Host, Limits, Message, Method, NameAddr, Param, Request, Response, SipUri,
    StatusCode, StreamEvent, StreamParser, Transport, UasPolicy, Uri, Via, parse, parse_with,
    triage_datagram,
};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Options),
        Just(Method::Register),
        Just(Method::Update),
        "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,12}".prop_map(|s| s.parse::<Method>().expect("token")),
    ]
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}".prop_map(Host::Domain),
        any::<u32>().prop_map(|a| Host::Ipv4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| Host::Ipv6(Ipv6Addr::from(a))),
    ]
}

fn uri_param() -> impl Strategy<Value = Param> {
    (
        "[a-z][a-z0-9-]{0,8}",
        proptest::option::of("[A-Za-z0-9.~_!*()-]{1,10}|%[0-9A-F]{2}"),
    )
        .prop_map(|(n, v)| Param { name: n, value: v })
}

fn header_param() -> impl Strategy<Value = Param> {
    (
        "[a-z][a-z0-9-]{0,8}",
        proptest::option::of(prop_oneof![
            "[A-Za-z0-9.!%*_+`'~-]{1,12}",
            "\"[a-z ,;:<>@]{0,10}\"",
        ]),
    )
        .prop_map(|(n, v)| Param { name: n, value: v })
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    (
        any::<bool>(),
        proptest::option::of("[A-Za-z0-9._~!*+&=$,;?/-]{1,12}|[a-z]{1,4}%00[a-z]{0,3}"),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(uri_param(), 0..3),
    )
        .prop_map(|(secure, user, host, port, params)| SipUri {
            secure,
            user,
            password: None,
            host,
            port,
            params,
            headers: Vec::new(),
        })
}

fn uri() -> impl Strategy<Value = Uri> {
    prop_oneof![
        4 => sip_uri().prop_map(Uri::Sip),
        1 => "\\+?[0-9]{1,12}".prop_map(|n| format!("tel:{n}").parse::<Uri>().expect("tel")),
        1 => "x[a-z]{1,5}:[a-z0-9/._]{1,12}".prop_map(|s| s.parse::<Uri>().expect("absolute")),
    ]
}

fn name_addr(tag: bool) -> impl Strategy<Value = NameAddr> {
    (
        proptest::option::of("[A-Za-z0-9 \"\\\\.,;:<>@\u{e9}\u{4e2d}]{0,16}"),
        uri(),
        proptest::collection::vec(header_param(), 0..2),
        "[a-z0-9]{4,10}",
    )
        .prop_map(move |(display_name, uri, mut params, t)| {
            params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
            if tag {
                params.push(Param::new("tag", t));
            }
            NameAddr {
                display_name,
                uri,
                params,
            }
        })
}

fn via() -> impl Strategy<Value = Via> {
    (
        prop_oneof![
            Just(Transport::Udp),
            Just(Transport::Tcp),
            Just(Transport::Tls),
            Just(Transport::Ws),
            Just(Transport::Other("XYZ".into())),
        ],
        host(),
        proptest::option::of(1u16..),
        "z9hG4bK[A-Za-z0-9.!%*_+`'~-]{1,16}",
        any::<bool>(),
    )
        .prop_map(|(t, h, p, branch, rport)| {
            let mut v = Via::new(t, h, p, &branch);
            if rport {
                v.params.push(Param::flag("rport"));
            }
            v
        })
}

/// Headers every built message gets, and the typed values they came from.
#[derive(Debug, Clone)]
struct Parts {
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        proptest::collection::vec(via(), 1..4),
        name_addr(true),
        name_addr(false),
        "[A-Za-z0-9.!%*_+`'~()<>:/\\[\\]?{}-]{1,20}(@[a-z0-9.]{1,12})?",
        (any::<u32>(), method()),
        proptest::collection::vec(
            (
                "X-[A-Za-z0-9-]{1,10}",
                "[ -~\u{e9}\u{4e2d}]{0,30}".prop_map(|s| s.trim_matches([' ', '\t']).to_string()),
            ),
            0..4,
        ),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(vias, from, to, call_id, (seq, method), extra, body)| Parts {
                vias,
                from,
                to,
                call_id,
                cseq: CSeq { seq, method },
                extra,
                body,
            },
        )
}

fn fill(headers: &mut switchboard_sip::Headers, p: &Parts) {
    // One Via per line for the first, the rest comma-joined on a second line.
    headers.push(HeaderName::VIA, p.vias[0].to_string());
    if p.vias.len() > 1 {
        let rest: Vec<String> = p.vias[1..].iter().map(Via::to_string).collect();
        headers.push("v", rest.join(", "));
    }
    headers.push("f", p.from.to_string());
    headers.push(HeaderName::TO, p.to.to_string());
    headers.push("i", p.call_id.clone());
    headers.push(HeaderName::CSEQ, p.cseq.to_string());
    headers.push(HeaderName::MAX_FORWARDS, "70");
    for (n, v) in &p.extra {
        headers.push(n.as_str(), v.clone());
    }
    if !p.body.is_empty() {
        headers.push("c", "application/octet-stream");
    }
}

fn check_typed(m: &Message, p: &Parts) {
    let h = m.headers();
    assert_eq!(h.via().unwrap(), p.vias);
    assert_eq!(h.from().unwrap(), p.from);
    assert_eq!(h.from().unwrap().to_string(), p.from.to_string());
    assert_eq!(h.to().unwrap(), p.to);
    assert_eq!(h.call_id().unwrap(), p.call_id);
    assert_eq!(h.cseq().unwrap(), p.cseq);
    assert_eq!(m.body(), p.body.as_slice());
}

fn without_length(m: &Message) -> Message {
    let mut m = m.clone();
    m.headers_mut().remove(&HeaderName::CONTENT_LENGTH);
    m
}

/// Parse never panics; a message that parses serializes to bytes that parse to the same
/// message; triage and the stream framer never panic either.
fn exercise(bytes: &[u8]) {
    let limits = Limits {
        max_message_size: 4096,
        max_headers: 64,
        max_line_length: 1024,
    };
    if let Ok(m) = parse_with(bytes, &limits) {
        let out = m.to_bytes();
        let again = parse(&out)
            .unwrap_or_else(|e| panic!("re-parse failed: {e}\n{}", String::from_utf8_lossy(&out)));
        assert_eq!(without_length(&again), without_length(&m));
        assert_eq!(again.to_bytes(), out);
    }
    let _ = triage_datagram(bytes, &UasPolicy::default());
    let mut sp = StreamParser::new(limits);
    for chunk in bytes.chunks(97) {
        sp.push(chunk);
        loop {
            match sp.poll_event() {
                Ok(Some(StreamEvent::Invalid { frame, .. })) => {
                    let _ = triage_datagram(&frame, &UasPolicy::default());
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        assert!(sp.buffered() <= 4096 + 97);
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/sip-rfc4475");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "dat"))
                .filter_map(|p| std::fs::read(p).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    // Always have something to mutate, even without the corpus.
    out.push(
        b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\
          From: \"A\" <sip:a@h>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c@h\r\n\
          CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
            .to_vec(),
    );
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\r\n \t:;,<>\"\\%@=/?0".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize, len: usize| i % len;
    match *m {
        Mutation::Flip(i, b) => {
            let i = at(i, bytes.len());
            bytes[i] = b;
        }
        Mutation::Insert(i, b) => {
            let i = at(i, bytes.len() + 1);
            bytes.insert(i, b);
        }
        Mutation::Delete(i) => {
            let i = at(i, bytes.len());
            bytes.remove(i);
        }
        Mutation::Truncate(i) => {
            let i = at(i, bytes.len());
            bytes.truncate(i);
        }
        Mutation::Duplicate(i, n) => {
            let i = at(i, bytes.len());
            let end = (i + n).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(i..i, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn built_requests_round_trip(p in parts(), target in uri()) {
        let mut req = Request::new(p.cseq.method.clone(), target);
        fill(&mut req.headers, &p);
        req.body = p.body.clone();
        let msg = Message::Request(req);
        let parsed = parse(&msg.to_bytes()).expect("built request parses");
        prop_assert_eq!(without_length(&parsed), without_length(&msg));
        let parsed_req = parsed.as_request().expect("request");
        prop_assert_eq!(parsed_req.uri.to_string(), msg.as_request().expect("request").uri.to_string());
        check_typed(&parsed, &p);
    }

    #[test]
    fn built_responses_round_trip(p in parts(), code in 100u16..700, reason in "[ -~\u{430}-\u{44f}]{0,20}") {
        let reason = reason.trim_end_matches(' ').to_string();
        let mut resp = Response::new(StatusCode::new(code).expect("in range"), reason);
        fill(&mut resp.headers, &p);
        resp.body = p.body.clone();
        let msg = Message::Response(resp);
        let parsed = parse(&msg.to_bytes()).expect("built response parses");
        prop_assert_eq!(without_length(&parsed), without_length(&msg));
        check_typed(&parsed, &p);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        exercise(&bytes);
    }

    #[test]
    fn sip_shaped_noise_never_panics(
        lines in proptest::collection::vec("[ -~\t]{0,60}", 0..20),
        start in prop_oneof![Just("INVITE sip:a@b SIP/2.0"), Just("SIP/2.0 200 OK")],
    ) {
        let text = format!("{start}\r\n{}\r\n\r\n", lines.join("\r\n"));
        exercise(text.as_bytes());
    }

    #[test]
    fn mutated_torture_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let mut bytes = pick.get(&corpus).clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(&bytes);
    }
}

#[test]
fn every_torture_message_survives_exercise_unmutated() {
    for bytes in corpus() {
        exercise(&bytes);
    }
}
