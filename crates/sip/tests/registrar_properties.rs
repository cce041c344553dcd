//! Property tests of the registrar on virtual time: whatever sequence of REGISTERs (any
//! contacts, expiries, Call-IDs and CSeqs) and waits, no address-of-record holds more than its
//! contact limit, no lapsed binding is ever returned, every answer is one the RFC allows, and
//! everything expires in the end. Digest: only the right password authenticates.

use std::time::Duration;

use proptest::prelude::*;
use switchboard_model::MonoTime;
use switchboard_sip::digest::{Algorithm, Challenge, Credentials, DigestConfig, DigestResponse};
use switchboard_sip::digest::{DigestServer, Verification};
use switchboard_sip::registrar::{Aor, Output, Registrar, RegistrarConfig};
use switchboard_sip::transaction::Peer;
use switchboard_sip::{Auth, Method, Request, Response, StatusCode, Transport, Uri, parse};

const REALM: &str = "example.test";
const USERS: [&str; 2] = ["alice", "bob"];

#[derive(Debug, Clone)]
enum Op {
    Register {
        user: usize,
        contacts: Vec<(u8, Option<u32>)>,
        expires: Option<u32>,
        call_id: u8,
        cseq: u32,
    },
    Unregister {
        user: usize,
        call_id: u8,
        cseq: u32,
    },
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            0..USERS.len(),
            prop::collection::vec((0u8..14, prop::option::of(0u32..5000)), 1..4),
            prop::option::of(0u32..5000),
            0u8..3,
            1u32..40,
        )
            .prop_map(|(user, contacts, expires, call_id, cseq)| Op::Register {
                user,
                contacts,
                expires,
                call_id,
                cseq,
            }),
        1 => (0..USERS.len(), 0u8..3, 1u32..40)
            .prop_map(|(user, call_id, cseq)| Op::Unregister { user, call_id, cseq }),
        2 => (0u64..2000).prop_map(Op::Wait),
    ]
}

fn request(user: &str, call_id: u8, cseq: u32, extra: &str) -> Request {
    let text = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{call_id}x{cseq}\r\n\
         From: <sip:{user}@{REALM}>;tag=1\r\nTo: <sip:{user}@{REALM}>\r\nCall-ID: call{call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    parse(text.as_bytes())
        .expect("parses")
        .as_request()
        .expect("request")
        .clone()
}

fn answer(r: &mut Registrar<u32>, now: MonoTime, req: &Request, peer: &Peer) -> Response {
    r.handle_register(now, 1, req, peer);
    let mut got = None;
    while let Some(o) = r.poll_output() {
        if let Output::Respond { response, .. } = o {
            got = Some(response);
        }
    }
    got.expect("answered at once")
}

/// The challenge round, then `extra` with credentials at CSeq `cseq`.
fn authed(
    r: &mut Registrar<u32>,
    now: MonoTime,
    user: &str,
    call_id: u8,
    cseq: u32,
    extra: &str,
    peer: &Peer,
) -> Response {
    let first = answer(r, now, &request(user, 200, 1, ""), peer);
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    let ch: Auth = first.headers.www_authenticate().expect("challenges")[0].clone();
    let auth = Challenge::from_auth(&ch).expect("digest").authorize(
        user,
        "pw",
        &Method::Register,
        &format!("sip:{REALM}"),
        "cn",
        1,
    );
    answer(
        r,
        now,
        &request(
            user,
            call_id,
            cseq,
            &format!("{extra}Authorization: {auth}\r\n"),
        ),
        peer,
    )
}

fn advance(r: &mut Registrar<u32>, to: MonoTime) {
    while let Some(at) = r.poll_timeout().filter(|at| *at <= to) {
        r.handle_timeout(at);
        while r.poll_output().is_some() {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bindings_stay_bounded_live_and_expire(ops in prop::collection::vec(op(), 1..40)) {
        let mut config = RegistrarConfig::new(b"property secret".to_vec());
        config.max_contacts = 4;
        let max_expires = config.max_expires;
        let mut r: Registrar<u32> = Registrar::new(config);
        for u in USERS {
            r.set_credentials(Credentials::from_password(u, REALM, "pw"));
        }
        let peer = Peer { transport: Transport::Udp, addr: "192.0.2.1:5060".parse().unwrap() };
        let mut now = MonoTime::from_secs(1);
        for op in ops {
            match op {
                Op::Register { user, contacts, expires, call_id, cseq } => {
                    let mut extra = String::new();
                    for (c, e) in contacts {
                        extra += &format!("Contact: <sip:{}@192.0.2.{c}>", USERS[user]);
                        if let Some(e) = e {
                            extra += &format!(";expires={e}");
                        }
                        extra += "\r\n";
                    }
                    if let Some(e) = expires {
                        extra += &format!("Expires: {e}\r\n");
                    }
                    let resp = authed(&mut r, now, USERS[user], call_id, cseq, &extra, &peer);
                    prop_assert!(
                        [200, 423, 500].contains(&resp.status.as_u16()),
                        "unexpected {}", resp.status
                    );
                    if resp.status == StatusCode::INTERVAL_TOO_BRIEF {
                        prop_assert!(resp.headers.get(&"Min-Expires".into()).is_some());
                    }
                }
                Op::Unregister { user, call_id, cseq } => {
                    let resp = authed(&mut r, now, USERS[user], call_id, cseq,
                        "Contact: *\r\nExpires: 0\r\n", &peer);
                    prop_assert!([200, 500].contains(&resp.status.as_u16()));
                }
                Op::Wait(s) => {
                    now += Duration::from_secs(s);
                    advance(&mut r, now);
                }
            }
            for u in USERS {
                let aor = Aor { realm: REALM.into(), user: u.into() };
                let live = r.bindings(now, &aor);
                prop_assert!(live.len() <= 4);
                for b in live {
                    prop_assert!(b.expires_at > now);
                    prop_assert!(b.expires_at <= now + Duration::from_secs(u64::from(max_expires)));
                }
            }
        }
        now += Duration::from_secs(u64::from(max_expires) + 1);
        advance(&mut r, now);
        prop_assert_eq!(r.binding_count(), 0);
    }

    #[test]
    fn only_the_right_password_authenticates(
        password in "[ -~]{0,24}",
        guess in "[ -~]{0,24}",
        sha in any::<bool>(),
        nc in 1u32..1000,
    ) {
        let mut server = DigestServer::new(DigestConfig::new(b"k".to_vec()));
        let creds = Credentials::from_password("u", REALM, &password);
        let now = MonoTime::from_secs(9);
        let challenges = server.challenge(now, REALM, false);
        let want = if sha { Algorithm::Sha256 } else { Algorithm::Md5 };
        let ch = challenges
            .iter()
            .filter_map(Challenge::from_auth)
            .find(|c| c.algorithm == want)
            .expect("offered");
        let uri: Uri = format!("sip:{REALM}").parse().unwrap();
        let auth = ch.authorize("u", &guess, &Method::Register, &uri.to_string(), "cn", nc);
        let parsed: Auth = auth.to_string().parse().expect("reparses");
        let answer = DigestResponse::from_auth(&parsed).expect("digest answer");
        let v = server.verify(now, &Method::Register, &uri, &answer, &creds);
        prop_assert_eq!(v == Verification::Valid, guess == password);
    }
}
