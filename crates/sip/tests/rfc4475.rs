//! RFC 4475 torture messages: every file of `shared/conformance/sip-rfc4475` gets the
//! treatment its row of `expect.tsv` names.
//!
//! Two layers of assertions per file:
//! 1. the generic verdict read from the treatment column (`parse`/`accept` → accepted,
//!    `reject` → parse error or 400, `answer NNN (or MMM)` → a response with one of those
//!    codes, `discard`/`do not forward` → dropped);
//! 2. a pinned outcome and field checks per file (the table in [`expectation`]), so a
//!    change of behaviour shows up even where the RFC allows either.

use std::collections::BTreeSet;
use std::path::PathBuf;

use switchboard_sip::{
    Contacts, Discard, HeaderName, Message, Method, ParseError, Request, Response, SipUri,
    Transport, UasPolicy, Uri, Verdict, parse, triage_datagram,
};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/sip-rfc4475")
}

struct Row {
    file: String,
    class: String,
    treatment: String,
}

fn rows() -> Vec<Row> {
    let dir = corpus_dir();
    let tsv = dir.join("expect.tsv");
    let text = std::fs::read_to_string(&tsv).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. The RFC 4475 corpus must sit beside the repository \
             (shared/conformance/sip-rfc4475).",
            tsv.display()
        )
    });
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "bad expect.tsv row: {l}");
            Row {
                file: cols[0].to_string(),
                class: cols[2].to_string(),
                treatment: cols[3].to_string(),
            }
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    let path = corpus_dir().join(format!("{file}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The outcome pinned for a file.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Parses and passes validation.
    Accept,
    /// Parses but validation answers with this status.
    Rejected(u16),
    /// Does not parse; answered 400 because the request is readable enough.
    Malformed400,
    /// Does not parse (or is a bad response); dropped.
    Dropped,
}

fn req(m: &Message) -> &Request {
    m.as_request().expect("a request")
}

fn resp(m: &Message) -> &Response {
    m.as_response().expect("a response")
}

fn sip(u: &Uri) -> &SipUri {
    u.as_sip().expect("a SIP URI")
}

fn uri(s: &str) -> Uri {
    s.parse().expect("test URI parses")
}

type Check = fn(&Message);

/// Pinned outcome and field checks for each of the 49 files.
fn expectation(file: &str) -> Option<(Outcome, Option<Check>)> {
    use Outcome::*;
    let e: (Outcome, Option<Check>) = match file {
        "wsinv" => (Accept, Some(check_wsinv)),
        "intmeth" => (Accept, Some(check_intmeth)),
        "esc01" => (Accept, Some(check_esc01)),
        "escnull" => (Accept, Some(check_escnull)),
        "esc02" => (Accept, Some(check_esc02)),
        "lwsdisp" => (
            Accept,
            Some(|m| {
                let from = m.headers().from().unwrap();
                assert_eq!(from.display_name.as_deref(), Some("caller"));
                assert_eq!(from.tag(), Some("323"));
            }),
        ),
        "longreq" => (Accept, Some(check_longreq)),
        "dblreq" => (
            Accept,
            Some(|m| {
                assert_eq!(req(m).method, Method::Register);
                assert!(m.body().is_empty());
                assert_eq!(
                    m.headers().call_id().unwrap(),
                    "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
                );
            }),
        ),
        "semiuri" => (
            Accept,
            Some(|m| {
                let u = sip(&req(m).uri);
                assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
                assert_eq!(u.user_decoded().unwrap(), b"user;par=u@example.net");
                assert_eq!(u.host.to_string(), "example.com");
                assert!(u.params.is_empty());
                assert_eq!(m.headers().accept().unwrap().unwrap().len(), 6);
            }),
        ),
        "transports" => (
            Accept,
            Some(|m| {
                let t: Vec<Transport> = m
                    .headers()
                    .via()
                    .unwrap()
                    .into_iter()
                    .map(|v| v.transport)
                    .collect();
                assert_eq!(
                    t,
                    vec![
                        Transport::Udp,
                        Transport::Sctp,
                        Transport::Tls,
                        Transport::Other("UNKNOWN".into()),
                        Transport::Tcp
                    ]
                );
            }),
        ),
        "mpart01" => (
            Accept,
            Some(|m| {
                assert_eq!(m.body().len(), 553);
                assert!(std::str::from_utf8(m.body()).is_err(), "binary part kept");
                let ct = m.headers().content_type().unwrap().unwrap();
                assert!(ct.is("multipart", "mixed"));
                assert_eq!(
                    ct.param("boundary").unwrap().value.as_deref(),
                    Some("7a9cbec02ceef655")
                );
                assert_eq!(m.headers().top_via().unwrap().rport(), Some(None));
            }),
        ),
        "unreason" => (
            Accept,
            Some(|m| {
                let r = resp(m);
                assert_eq!(r.status.as_u16(), 200);
                assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
                assert_eq!(m.body().len(), 154);
            }),
        ),
        "noreason" => (
            Accept,
            Some(|m| {
                assert_eq!(resp(m).status.as_u16(), 100);
                assert_eq!(resp(m).reason, "");
            }),
        ),
        "badinv01" => (Dropped, None),
        "clerr" => (Malformed400, None),
        "ncl" => (Malformed400, None),
        "scalar02" => (Malformed400, None),
        "scalarlg" => (Dropped, None),
        "quotbal" => (Malformed400, None),
        "ltgtruri" => (Dropped, None),
        "lwsruri" => (Dropped, None),
        "lwsstart" => (Dropped, None),
        "trws" => (Dropped, None),
        "escruri" => (Rejected(400), None),
        "baddate" => (
            Accept,
            Some(|m| {
                assert_eq!(
                    m.headers().get(&HeaderName::new("date")),
                    Some("Fri, 01 Jan 2010 16:00:00 EST")
                );
            }),
        ),
        "regbadct" => (Malformed400, None),
        "badaspec" => (Malformed400, None),
        "baddn" => (Malformed400, None),
        "badvers" => (Rejected(505), None),
        "mismatch01" => (Rejected(400), None),
        "mismatch02" => (
            Rejected(400),
            Some(|m| {
                assert_eq!(req(m).method, Method::Extension("NEWMETHOD".into()));
            }),
        ),
        "bigcode" => (Dropped, None),
        "badbranch" => (
            Accept,
            Some(|m| {
                let via = m.headers().top_via().unwrap();
                assert_eq!(via.branch(), Some("z9hG4bK"));
                assert!(!via.has_rfc3261_branch(), "RFC 2543 matching applies");
            }),
        ),
        "insuf" => (Rejected(400), None),
        "unkscm" => (
            Rejected(416),
            Some(|m| assert_eq!(req(m).uri.scheme(), "nobodyknowsthisscheme")),
        ),
        "novelsc" => (
            Rejected(416),
            Some(|m| assert_eq!(req(m).uri.to_string(), "soap.beep://192.0.2.103:3002")),
        ),
        "unksm2" => (
            Accept,
            Some(|m| {
                let h = m.headers();
                assert_eq!(h.to().unwrap().uri.scheme(), "isbn");
                assert_eq!(h.from().unwrap().uri.to_string(), "http://www.example.com");
                let c = h.contact().unwrap().unwrap();
                assert_eq!(c.addresses()[0].uri.to_string(), "name:John_Smith");
            }),
        ),
        "bext01" => (Rejected(420), None),
        "invut" => (Rejected(415), None),
        "regaut01" => (
            Rejected(400),
            Some(|m| {
                let a = m.headers().authorization().unwrap();
                assert_eq!(a[0].scheme, "NoOneKnowsThisScheme");
                assert_eq!(a[0].param("opaque-data").as_deref(), Some("here"));
            }),
        ),
        "multi01" => (Rejected(400), None),
        "mcl01" => (Malformed400, None),
        "bcast" => (Dropped, None),
        "zeromf" => (
            Accept,
            Some(|m| assert_eq!(m.headers().max_forwards().unwrap(), Some(0))),
        ),
        "cparam01" => (
            Accept,
            Some(|m| {
                let c = m.headers().contact().unwrap().unwrap();
                let a = &c.addresses()[0];
                assert!(a.param("unknownparam").is_some(), "header parameter");
                assert!(sip(&a.uri).params.is_empty(), "not a URI parameter");
                assert_eq!(sip(&a.uri).user.as_deref(), Some("+19725552222"));
            }),
        ),
        "cparam02" => (
            Accept,
            Some(|m| {
                let c = m.headers().contact().unwrap().unwrap();
                let a = &c.addresses()[0];
                assert!(a.params.is_empty(), "not a header parameter");
                assert!(sip(&a.uri).param("unknownparam").is_some(), "URI parameter");
            }),
        ),
        "regescrt" => (
            Accept,
            Some(|m| {
                let c = m.headers().contact().unwrap().unwrap();
                let u = sip(&c.addresses()[0].uri);
                assert_eq!(
                    u.headers,
                    vec![("Route".to_string(), "%3Csip:sip.example.com%3E".to_string())]
                );
            }),
        ),
        "sdp01" => (Rejected(406), None),
        "inv2543" => (
            Accept,
            Some(|m| {
                let h = m.headers();
                assert_eq!(
                    m.body().len(),
                    105,
                    "no Content-Length: body runs to the end"
                );
                assert_eq!(h.max_forwards().unwrap(), None);
                assert_eq!(h.top_via().unwrap().branch(), None);
                assert_eq!(h.from().unwrap().tag(), None);
                // Outside <...>, ";user=phone" is a header parameter (RFC 3261 20).
                let to = h.to().unwrap();
                assert_eq!(to.param("user").unwrap().value.as_deref(), Some("phone"));
                let from = sip(&h.from().unwrap().uri).clone();
                assert_eq!(from.param("user").unwrap().value.as_deref(), Some("phone"));
                let rr = h.record_route().unwrap();
                assert_eq!(
                    sip(&rr[0].uri).param("maddr").unwrap().value.as_deref(),
                    Some("ss1.example.com")
                );
            }),
        ),
        _ => return None,
    };
    Some(e)
}

fn check_wsinv(m: &Message) {
    let r = req(m);
    let h = &r.headers;
    assert_eq!(r.method, Method::Invite);
    assert!(sip(&r.uri).param("unknownparam").is_some());
    let to = h.to().unwrap();
    assert_eq!(to.uri, uri("sip:vivekg@chair-dnrc.example.com"));
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = h.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some(r#"J Rosenberg \""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    assert_eq!(h.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let via = h.via().unwrap();
    assert_eq!(via.len(), 3);
    assert_eq!(via[0].protocol, "SIP/2.0");
    assert_eq!(via[0].transport, Transport::Udp);
    assert_eq!(via[0].host.to_string(), "192.0.2.2");
    assert_eq!(via[0].branch(), Some("390skdjuw"));
    assert_eq!(via[1].transport, Transport::Tcp);
    assert_eq!(via[1].host.to_string(), "spindle.example.com");
    assert_eq!(via[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(via[2].host.to_string(), "192.168.255.111");
    assert_eq!(via[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(h.get(&HeaderName::new("Subject")), Some(""));
    assert_eq!(
        h.get(&HeaderName::new("newfangledheader")),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        h.get(&HeaderName::new("UnknownHeaderWithUnusualValue")),
        Some(";;,,;;,;")
    );
    let route = h.route().unwrap();
    let ru = sip(&route[0].uri);
    assert!(ru.is_loose_router());
    assert_eq!(
        ru.param("unknownwith").unwrap().value.as_deref(),
        Some("value")
    );
    assert!(ru.param("unknown-no-value").unwrap().value.is_none());
    let Some(Contacts::List(contacts)) = h.contact().unwrap() else {
        panic!("contact list expected")
    };
    let c = &contacts[0];
    assert_eq!(c.display_name.as_deref(), Some(r#"Quoted string """#));
    assert_eq!(
        c.param("newparam").unwrap().value.as_deref(),
        Some("newvalue")
    );
    assert!(c.param("secondparam").unwrap().value.is_none());
    assert_eq!(c.param("q").unwrap().value.as_deref(), Some("0.33"));
    assert!(h.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(r.body.len(), 150);
}

fn check_intmeth(m: &Message) {
    let r = req(m);
    let h = &r.headers;
    let method = Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into());
    assert_eq!(r.method, method);
    let u = sip(&r.uri);
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(u.host.to_string(), "example.com");
    let to = h.to().unwrap();
    assert_eq!(to.display_name.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
    let from = h.from().unwrap();
    assert_eq!(
        from.display_name.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        from.param("fromParam''~+*_!.-%")
            .unwrap()
            .unquoted_value()
            .as_deref(),
        Some("работающий")
    );
    assert_eq!(
        h.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (139_122_385, method));
    assert_eq!(h.max_forwards().unwrap(), Some(255));
    assert!(
        h.get(&HeaderName::new("extensionHeader-!.%*+_`'~"))
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
}

fn check_esc01(m: &Message) {
    let r = req(m);
    let h = &r.headers;
    let u = sip(&r.uri);
    assert_eq!(u.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(u.user_decoded().unwrap(), b"sips:user@example.com");
    assert_eq!(h.to().unwrap().uri, uri("sip:user@example.com"));
    assert_eq!(
        sip(&h.from().unwrap().uri).user_decoded().unwrap(),
        b"I have spaces"
    );
    let contacts = h.contact().unwrap().unwrap();
    let cu = &contacts.addresses()[0].uri;
    assert!(sip(cu).param("lr").is_some(), "%6C%72 is lr");
    // "value%41" is not "valueA": unescaping is not recursive (RFC 4475 3.1.1.3).
    assert_eq!(*cu, uri("sip:caller@host5.example.net;lr;name=value%2541"));
    assert_ne!(*cu, uri("sip:caller@host5.example.net;lr;name=valueA"));
    assert_eq!(r.body.len(), 150);
}

fn check_escnull(m: &Message) {
    let h = m.headers();
    let to = h.to().unwrap();
    let u = sip(&to.uri);
    assert_eq!(u.user.as_deref(), Some("null-%00-null"));
    assert_eq!(u.user_decoded().unwrap(), b"null-\0-null");
    let contacts = h.contact().unwrap().unwrap();
    let users: Vec<_> = contacts
        .addresses()
        .iter()
        .map(|a| sip(&a.uri).user_decoded().unwrap())
        .collect();
    assert_eq!(users, vec![vec![0u8], vec![0u8, 0]]);
}

fn check_esc02(m: &Message) {
    let r = req(m);
    let h = &r.headers;
    let method = Method::Extension("RE%47IST%45R".into());
    assert_eq!(r.method, method);
    assert_eq!(h.cseq().unwrap().method, method);
    assert_eq!(h.to().unwrap().display_name.as_deref(), Some("%Z%45"));
    assert_eq!(h.contact().unwrap().unwrap().addresses().len(), 2);
    assert_eq!(
        h.get(&HeaderName::new("C%6Fntact")),
        Some("<sip:alias2@host2.example.com>")
    );
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
}

fn check_longreq(m: &Message) {
    let h = m.headers();
    assert_eq!(h.via().unwrap().len(), 34);
    let to = h.to().unwrap();
    assert!(to.display_name.unwrap().contains("extremeextreme"));
    assert_eq!(sip(&to.uri).port, Some(6000));
    assert!(h.from().unwrap().tag().unwrap().len() > 100);
    let last = h.via().unwrap().pop().unwrap();
    assert_eq!(last.received(), Some("192.0.2.5"));
    assert!(last.branch().unwrap().len() > 100);
    assert_eq!(m.body().len(), 150);
}

/// The verdict the treatment column asks for.
fn generic_ok(row: &Row, parsed: &Result<Message, ParseError>, verdict: &Verdict) -> bool {
    let t = row.treatment.to_ascii_lowercase();
    let action = t.split(';').next().unwrap_or("").trim();
    let accepted = matches!(verdict, Verdict::Accept(_));
    let replied =
        |codes: &[u16]| matches!(verdict, Verdict::Reply(r) if codes.contains(&r.status.as_u16()));
    let codes: Vec<u16> = action
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| s.len() == 3)
        .filter_map(|s| s.parse().ok())
        .collect();
    if action.starts_with("parse")
        || action.starts_with("accept")
        || action.starts_with("an endpoint processes")
    {
        accepted
    } else if action.starts_with("discard") || action.starts_with("do not forward") {
        matches!(verdict, Verdict::Drop(_))
    } else if action.starts_with("reject or ignore") {
        true
    } else if action.starts_with("reject") {
        !accepted && (parsed.is_err() || replied(&[400]) || replied(&codes))
    } else if action.starts_with("answer") {
        replied(&codes) || (action.contains("or ignore") && accepted)
    } else {
        panic!("{}: treatment not understood: {}", row.file, row.treatment)
    }
}

#[test]
fn every_torture_message_gets_its_treatment() {
    let rows = rows();
    let policy = UasPolicy::default();

    // Every .dat has a row and every row a .dat.
    let files: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir readable")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "dat" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    let listed: BTreeSet<String> = rows.iter().map(|r| r.file.clone()).collect();
    assert_eq!(files, listed, ".dat files and expect.tsv rows differ");
    assert_eq!(rows.len(), 49, "RFC 4475 has 49 messages");

    let mut failures = Vec::new();
    for row in &rows {
        let bytes = read(&row.file);
        let parsed = parse(&bytes);
        let verdict = triage_datagram(&bytes, &policy);
        eprintln!("{:<11} {:<9} {}", row.file, row.class, describe(&verdict));
        let Some((outcome, check)) = expectation(&row.file) else {
            failures.push(format!("{}: no verdict pinned for this file", row.file));
            continue;
        };
        if !generic_ok(row, &parsed, &verdict) {
            failures.push(format!(
                "{} ({}): treatment '{}' not met: parse={:?} verdict={}",
                row.file,
                row.class,
                row.treatment,
                parsed.as_ref().err(),
                describe(&verdict)
            ));
        }
        let actual = match (&parsed, &verdict) {
            (Ok(_), Verdict::Accept(_)) => Outcome::Accept,
            (Ok(_), Verdict::Reply(r)) => Outcome::Rejected(r.status.as_u16()),
            (Err(_), Verdict::Reply(r)) if r.status.as_u16() == 400 => Outcome::Malformed400,
            (_, Verdict::Drop(_)) => Outcome::Dropped,
            _ => {
                failures.push(format!("{}: inconsistent parse/verdict", row.file));
                continue;
            }
        };
        if actual != outcome {
            failures.push(format!(
                "{}: expected {outcome:?}, got {actual:?} (parse={:?}, verdict={})",
                row.file,
                parsed.as_ref().err(),
                describe(&verdict)
            ));
            continue;
        }
        if matches!(row.class.as_str(), "valid" | "compat") {
            assert!(parsed.is_ok(), "{} must parse", row.file);
        }
        if let (Some(check), Ok(m)) = (check, &parsed) {
            check(m);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Accept(_) => "accept".into(),
        Verdict::Reply(r) => format!("reply {} {}", r.status, r.reason),
        Verdict::Drop(d) => format!("drop ({d})"),
    }
}

fn reply(file: &str) -> Response {
    match triage_datagram(&read(file), &UasPolicy::default()) {
        Verdict::Reply(r) => r,
        other => panic!("{file}: expected a reply, got {}", describe(&other)),
    }
}

#[test]
fn rejections_carry_the_headers_the_rfc_asks_for() {
    let r = reply("bext01");
    assert_eq!(
        r.headers.unsupported().unwrap(),
        vec!["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    let r = reply("invut");
    let accept = r.headers.accept().unwrap().unwrap();
    assert!(accept.iter().any(|t| t.is("application", "sdp")));

    // Copied headers and a To tag; the reply itself parses.
    for file in ["badvers", "insuf", "mcl01", "multi01", "clerr", "ncl"] {
        let r = reply(file);
        let again = parse(&r.to_bytes()).unwrap_or_else(|e| panic!("{file}: reply parses: {e}"));
        let h = again.headers();
        assert!(h.top_via().is_ok(), "{file}: Via copied");
        assert!(h.get(&HeaderName::CSEQ).is_some(), "{file}: CSeq copied");
        if h.get(&HeaderName::TO).is_some() {
            assert!(h.to().unwrap().tag().is_some(), "{file}: To tag added");
        }
    }
    // A malformed header is echoed as received: the 400 still reaches the sender.
    let r = reply("scalar02");
    assert_eq!(
        r.headers.get(&HeaderName::CSEQ),
        Some("36893488147419103232 REGISTER")
    );
    assert!(r.reason.contains("CSeq"), "{}", r.reason);
    // The same request refused twice gets the same tag (retransmissions).
    let a = reply("mismatch01");
    let b = reply("mismatch01");
    assert_eq!(a.headers.to().unwrap().tag(), b.headers.to().unwrap().tag());
}

#[test]
fn discarded_responses_say_why() {
    for (file, want) in [
        ("bcast", "broadcast"),
        ("bigcode", "status code"),
        ("scalarlg", "CSeq"),
    ] {
        match triage_datagram(&read(file), &UasPolicy::default()) {
            Verdict::Drop(d) => {
                let text = d.to_string();
                assert!(text.contains(want), "{file}: {text}");
            }
            other => panic!("{file}: {}", describe(&other)),
        }
    }
    assert!(matches!(
        triage_datagram(&read("bcast"), &UasPolicy::default()),
        Verdict::Drop(Discard::BroadcastVia)
    ));
}

/// Removes Content-Length lines (serialization writes its own).
fn without_length(m: &Message) -> Message {
    let mut m = m.clone();
    m.headers_mut().remove(&HeaderName::CONTENT_LENGTH);
    m
}

#[test]
fn parsed_torture_messages_round_trip() {
    let mut count = 0;
    for row in rows() {
        let Ok(m) = parse(&read(&row.file)) else {
            continue;
        };
        let bytes = m.to_bytes();
        let again = parse(&bytes).unwrap_or_else(|e| panic!("{}: re-parse: {e}", row.file));
        assert_eq!(without_length(&again), without_length(&m), "{}", row.file);
        assert_eq!(
            again.to_bytes(),
            bytes,
            "{}: serialization is a fixpoint",
            row.file
        );
        count += 1;
    }
    assert!(count >= 30, "only {count} messages parsed");
}
