//! Calls with media anchored on Switchboard, end to end against the real binary: the caller and
//! the agent's phone are small SIP user agents written here (UDP sockets for signaling and for
//! RTP, so every packet we send them can be counted and decoded), and SIPp plays a caller that
//! presses a key with a real RFC 4733 capture (Debian's sip-tester ships them). Prompts are
//! spoken by Debian's espeak-ng; SIPp or espeak-ng missing is a failure (`./scripts/test.sh`
//! installs them).

mod common;
mod helpers;
mod sipkit;

use common::{Server, Session, TempDir, event_types};
use helpers::events_of;
use serde_json::{Value, json};
use sipkit::{Phone, scenario};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;
use switchboard_media::dtmf::event_packets;
use switchboard_media::g711::Law;
use switchboard_media::rtp::{Header, Packet};
use switchboard_media::tone::tones;
use switchboard_sip::{HeaderName, Message, Method, Request, Response, StatusCode, parse};

const CALLER_NUMBER: &str = "+442079460123";

async fn available(s: &Server, user: &str) -> Session {
    let a = s.login(user, "agent").await;
    a.set_state("available").await;
    a
}

async fn calls(admin: &Session) -> Vec<Value> {
    let list = admin
        .get("/api/v1/interactions?channel=voice&limit=200")
        .await
        .expect(200);
    let mut items = list.as_array().cloned().unwrap_or_default();
    items.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
    items
}

async fn queue_id(admin: &Session, name: &str) -> String {
    admin
        .get("/api/v1/queues")
        .await
        .expect(200)
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .and_then(|q| q["id"].as_str())
        .expect("queue")
        .to_owned()
}

/// A server whose config file adds `extra` to `[voice]`.
fn server_with(dir: &TempDir, extra: &str) -> Server {
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(&cfg, format!("[voice]\n{extra}\n")).expect("config");
    Server::start_with(&dir.0, &["--config", cfg.to_str().expect("path")], &[])
}

fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    Header {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0x7e57,
        csrc: Vec::new(),
    }
    .write(payload, &mut b);
    b
}

fn sdp(port: u16, formats: &str, rtpmaps: &str, dir: &str) -> String {
    format!(
        "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\n{rtpmaps}a={dir}\r\n"
    )
}

/// The RTP address of a session description (ours).
fn media_addr(body: &[u8]) -> SocketAddr {
    let s = switchboard_media::sdp::parse(std::str::from_utf8(body).expect("utf-8")).expect("sdp");
    let (m, ip) = s.audio().expect("audio");
    SocketAddr::new(ip.expect("c="), m.port)
}

/// One side's SIP socket and its RTP socket.
struct Ua {
    sip: UdpSocket,
    rtp: UdpSocket,
    server: SocketAddr,
}

impl Ua {
    fn new(sip: UdpSocket, server: SocketAddr) -> Ua {
        sip.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp");
        rtp.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Ua { sip, rtp, server }
    }

    fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().expect("addr").port()
    }

    fn local(&self) -> SocketAddr {
        self.sip.local_addr().expect("addr")
    }

    fn send(&self, m: &Message) {
        self.sip.send_to(&m.to_bytes(), self.server).expect("send");
    }

    fn send_text(&self, t: &str) {
        self.sip.send_to(t.as_bytes(), self.server).expect("send");
    }

    /// The next message matching `pred` within about `secs` (counted in the socket's 100 ms
    /// read timeouts: tests read no clock), others skipped.
    fn try_wait(&self, secs: u64, pred: impl Fn(&Message) -> bool) -> Option<Message> {
        let mut buf = vec![0u8; 65535];
        let (mut quiet, mut other) = (0, 0);
        while quiet < secs * 10 && other < 10_000 {
            let Ok((n, _)) = self.sip.recv_from(&mut buf) else {
                quiet += 1;
                continue;
            };
            other += 1;
            let Ok(m) = parse(&buf[..n]) else { continue };
            if pred(&m) {
                return Some(m);
            }
        }
        None
    }

    fn wait(&self, secs: u64, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        self.try_wait(secs, pred)
            .unwrap_or_else(|| panic!("no {what} within {secs} s"))
    }

    fn wait_request(&self, secs: u64, method: Method) -> Request {
        let what = format!("{method} request");
        let m = self.wait(secs, &what, |m| {
            m.as_request().is_some_and(|r| r.method == method)
        });
        m.as_request().expect("request").clone()
    }

    fn wait_final(&self, secs: u64, method: Method) -> Response {
        let m = self.wait(secs, "final response", |m| {
            m.as_response().is_some_and(|r| {
                r.status.is_final() && r.headers.cseq().is_ok_and(|c| c.method == method)
            })
        });
        m.as_response().expect("response").clone()
    }

    /// RTP packets arriving for `ms` (payload type, payload), stopping early after `quiet_ms`
    /// without any once some came.
    /// (Time is counted in 10 ms read timeouts and 20 ms packets: tests read no clock.)
    fn collect_rtp(&self, ms: u64, quiet_ms: u64) -> Vec<(u8, Vec<u8>)> {
        self.rtp
            .set_read_timeout(Some(Duration::from_millis(10)))
            .expect("timeout");
        let (mut spent, mut quiet) = (0u64, 0u64);
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while spent < ms && (quiet < quiet_ms || out.is_empty()) {
            match self.rtp.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Ok(p) = Packet::parse(&buf[..n]) {
                        out.push((p.header.payload_type, p.payload.to_vec()));
                    }
                    spent += 20;
                    quiet = 0;
                }
                Err(_) => {
                    spent += 10;
                    quiet += 10;
                }
            }
        }
        out
    }

    /// `n` packets of a 1 kHz tone in `law` every 20 ms to `to`, from sequence `seq`.
    fn stream(&self, to: SocketAddr, law: Law, seq: u16, n: u16) {
        for i in 0..n {
            let s = seq.wrapping_add(i);
            let t = tones(&[1000.0], 9000.0, u64::from(s) * 160, 160);
            let mut payload = Vec::new();
            law.encode(&t, &mut payload);
            let d = rtp(law.payload_type(), s, u32::from(s) * 160, i == 0, &payload);
            self.rtp.send_to(&d, to).expect("rtp");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The audio of `packets` of payload type `pt` in `law`, decoded.
fn decode(packets: &[(u8, Vec<u8>)], pt: u8, law: Law) -> Vec<i16> {
    let mut all = Vec::new();
    for (p, payload) in packets {
        if *p == pt {
            let mut f = Vec::new();
            law.decode(payload, &mut f);
            all.extend(f);
        }
    }
    all
}

fn loud(samples: &[i16]) -> usize {
    samples.iter().filter(|s| s.abs() > 1000).count()
}

/// A caller on the demo trunk (127.0.0.1).
struct Caller {
    ua: Ua,
    /// Our answer's session description.
    answer: String,
    to_tag: String,
    target: String,
    our_media: SocketAddr,
    call_id: String,
    cseq: u32,
}

impl Caller {
    /// Dials `did` offering PCMA (then PCMU) and telephone-event 101; returns once answered.
    fn dial(server: SocketAddr, did: &str) -> Caller {
        Caller::dial_with(server, did, "")
    }

    /// Dials with `attrs` (`a=` lines) added to the offer's audio.
    fn dial_with(server: SocketAddr, did: &str, attrs: &str) -> Caller {
        let ua = Ua::new(UdpSocket::bind("127.0.0.1:0").expect("bind"), server);
        let body = sdp(
            ua.rtp_port(),
            "8 0 101",
            &format!(
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n{attrs}"
            ),
            "sendrecv",
        );
        let local = ua.local();
        let call_id = format!("media-{}@127.0.0.1", local.port());
        let invite = format!(
            "INVITE sip:{did}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKc1\r\n\
             From: \"Media Caller\" <sip:{CALLER_NUMBER}@127.0.0.1>;tag=caller\r\n\
             To: <sip:{did}@{server}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{local}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        ua.send_text(&invite);
        let ok = ua.wait_final(30, Method::Invite);
        assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
        assert!(
            String::from_utf8_lossy(&ok.body).contains("o=switchboard "),
            "our own SDP"
        );
        let to_tag = ok.headers.to().expect("to").tag().expect("tag").to_string();
        let target = ok
            .headers
            .get(&HeaderName::CONTACT)
            .expect("contact")
            .trim_matches(['<', '>', ' '])
            .to_string();
        let c = Caller {
            answer: String::from_utf8_lossy(&ok.body).into_owned(),
            our_media: media_addr(&ok.body),
            ua,
            to_tag,
            target,
            call_id,
            cseq: 1,
        };
        c.in_dialog("ACK", 1, "");
        c
    }

    fn in_dialog(&self, method: &str, cseq: u32, extra: &str) {
        let (local, server) = (self.ua.local(), self.ua.server);
        let text = format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKc{method}{cseq}\r\n\
             From: \"Media Caller\" <sip:{CALLER_NUMBER}@127.0.0.1>;tag=caller\r\n\
             To: <sip:1000@{server}>;tag={}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\n{extra}",
            self.target, self.to_tag, self.call_id
        );
        let text = if extra.contains("Content-Length") {
            text
        } else {
            format!("{text}Content-Length: 0\r\n\r\n")
        };
        self.ua.send_text(&text);
    }

    /// Presses `digit` with RFC 4733 events (payload type 101).
    fn press(&self, digit: char, seq: u16) {
        for (i, (end, payload)) in event_packets(digit, 800, 160, 10).into_iter().enumerate() {
            let d = rtp(101, seq + i as u16, 90_000, i == 0, &payload);
            self.ua.rtp.send_to(&d, self.our_media).expect("rtp");
            if !end {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn hang_up(&mut self) {
        self.cseq += 1;
        self.in_dialog("BYE", self.cseq, "");
        let r = self.ua.wait_final(10, Method::Bye);
        assert_eq!(r.status, StatusCode::OK);
    }
}

/// An agent's phone: registers (SHA-256 digest), then answers the call with PCMU.
struct AgentPhone {
    ua: Ua,
    invite: Option<Request>,
    our_media: Option<SocketAddr>,
}

impl AgentPhone {
    fn register(server: SocketAddr, user: &str) -> AgentPhone {
        let mut phone = Phone::of(user, "127.0.0.1", server);
        let r = phone.register_sha256("agent");
        assert_eq!(r.status.as_u16(), 200, "{user} registers: {r:?}");
        AgentPhone {
            ua: Ua::new(phone.socket, server),
            invite: None,
            our_media: None,
        }
    }

    /// Waits for the INVITE, answers 200 with PCMU, waits for the ACK.
    fn answer(&mut self, secs: u64) {
        let invite = self.ua.wait_request(secs, Method::Invite);
        assert!(
            String::from_utf8_lossy(&invite.body).contains("o=switchboard "),
            "the phone is offered our media"
        );
        self.our_media = Some(media_addr(&invite.body));
        let body = sdp(
            self.ua.rtp_port(),
            "0",
            "a=rtpmap:0 PCMU/8000\r\n",
            "sendrecv",
        );
        let mut ok = Response::for_request(&invite, StatusCode::OK, "OK");
        let mut to = ok.headers.to().expect("to");
        to.set_tag("phone");
        ok.headers.set(HeaderName::TO, to.to_string());
        ok.headers.push(
            HeaderName::CONTACT,
            format!("<sip:agent@{}>", self.ua.local()),
        );
        ok.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
        ok.body = body.into_bytes();
        self.ua.send(&Message::Response(ok));
        self.ua.wait_request(10, Method::Ack);
        self.invite = Some(invite);
    }

    /// Sends a re-INVITE in the call's dialog with direction `dir`; returns our answer.
    fn reinvite(&self, cseq: u32, dir: &str) -> Response {
        let inv = self.invite.as_ref().expect("answered");
        let from = inv.headers.from().expect("from");
        let target = inv
            .headers
            .get(&HeaderName::CONTACT)
            .expect("contact")
            .trim_matches(['<', '>', ' '])
            .to_string();
        let body = sdp(self.ua.rtp_port(), "0", "a=rtpmap:0 PCMU/8000\r\n", dir);
        let local = self.ua.local();
        let text = format!(
            "INVITE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKre{cseq}\r\n\
             From: <sip:agent1@{}>;tag=phone\r\nTo: {from}\r\nCall-ID: {}\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:agent@{local}>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            sipkit::REALM,
            inv.headers.call_id().expect("call-id"),
            body.len()
        );
        self.ua.send_text(&text);
        let r = self.ua.wait_final(10, Method::Invite);
        let ack = format!(
            "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKack{cseq}\r\n\
             From: <sip:agent1@{}>;tag=phone\r\nTo: {from}\r\nCall-ID: {}\r\n\
             CSeq: {cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            sipkit::REALM,
            inv.headers.call_id().expect("call-id"),
        );
        self.ua.send_text(&ack);
        r
    }

    /// Waits for the BYE and confirms it.
    fn bye(&self, secs: u64) {
        let bye = self.ua.wait_request(secs, Method::Bye);
        let ok = Response::for_request(&bye, StatusCode::OK, "OK");
        self.ua.send(&Message::Response(ok));
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

/// The call's media task has ended: its two RTP ports can be bound again.
async fn ports_freed(ports: &[SocketAddr]) {
    for _ in 0..100 {
        if ports.iter().all(|p| UdpSocket::bind(p).is_ok()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the call's RTP ports {ports:?} are still bound");
}

/// The samples espeak-ng makes of `text`, at 8 kHz.
fn spoken_len(text: &str) -> usize {
    let out = Command::new("espeak-ng")
        .args(["-v", "en", "--stdout", text])
        .output()
        .expect("espeak-ng (Debian package espeak-ng) is installed");
    let w = switchboard_media::wav::parse(&out.stdout).expect("wav");
    switchboard_media::wav::to_8k_mono(&w).len()
}

async fn wait_state(admin: &Session, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(c) = calls(admin).await.into_iter().find(|c| pred(c)) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no call reached the state: {:?}", calls(admin).await);
}

/// The demo IVR on 1000: the caller is answered with our SDP and hears both prompts (A-law,
/// about as long as espeak-ng speaks them, not silence), presses 1 (RFC 4733) and lands in
/// sales; agent1's phone (µ-law) answers; audio flows both ways through the bridge, transcoded;
/// the caller's BYE hangs the phone up.
#[tokio::test]
async fn the_caller_hears_the_ivr_presses_1_and_talks_to_a_sales_agent_both_ways() {
    let dir = TempDir::new("media-ivr");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let sales = queue_id(&admin, "sales").await;
    let agent = available(&s, "agent1").await;
    let mut phone = AgentPhone::register(sip, "agent1");

    let (greeting, menu) = (
        "Welcome to the Switchboard demo.",
        "For sales press 1. For support press 2.",
    );
    let expected = spoken_len(greeting) + spoken_len(menu);
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "1000"))
        .await
        .expect("dial");
    let it = wait_state(&admin, |c| c["state"] == "flow").await;
    let it = admin
        .get(&format!(
            "/api/v1/interactions/{}",
            it["id"].as_str().expect("id")
        ))
        .await
        .expect(200);
    assert!(
        event_types(&it).contains(&"flow.started".to_string()),
        "{it}"
    );

    // The prompts: RTP in the caller's codec (PCMA, 8), then quiet while the menu waits.
    let (caller, heard) = tokio::task::spawn_blocking(move || {
        let heard = caller.ua.collect_rtp(12_000, 600);
        (caller, heard)
    })
    .await
    .expect("listen");
    assert!(heard.iter().all(|(pt, _)| *pt == 8), "A-law only");
    let audio = decode(&heard, 8, Law::Alaw);
    let ratio = audio.len() as f64 / expected as f64;
    assert!(
        (0.8..1.3).contains(&ratio),
        "heard {} samples of prompts, espeak-ng speaks {expected}",
        audio.len()
    );
    assert!(loud(&audio) > audio.len() / 10, "speech, not silence");

    // 1 for sales.
    let caller = tokio::task::spawn_blocking(move || {
        caller.press('1', 1);
        caller
    })
    .await
    .expect("press");
    let phone_task = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        phone
    });
    let phone = phone_task.await.expect("answer");
    let it = wait_state(&admin, |c| c["state"] == "connected").await;
    assert_eq!(it["queue_id"], sales, "{it}");
    let id = it["id"].as_str().expect("id").to_owned();
    let full = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    let choice = &events_of(&full, "flow.menu_choice")[0];
    assert_eq!(choice["data"]["key"], "1");

    // Audio both ways: caller A-law → agent µ-law, and back.
    let (mut caller, phone, at_agent, at_caller) = tokio::task::spawn_blocking(move || {
        let to_us = caller.our_media;
        let to_us_agent = phone.our_media.expect("offered");
        let c = std::thread::scope(|sc| {
            let listen = sc.spawn(|| phone.ua.collect_rtp(3000, 500));
            caller.ua.stream(to_us, Law::Alaw, 100, 50);
            listen.join().expect("listen")
        });
        let a = std::thread::scope(|sc| {
            let listen = sc.spawn(|| caller.ua.collect_rtp(3000, 500));
            phone.ua.stream(to_us_agent, Law::Ulaw, 500, 50);
            listen.join().expect("listen")
        });
        (caller, phone, c, a)
    })
    .await
    .expect("talk");
    let to_agent: Vec<_> = at_agent.iter().filter(|(pt, _)| *pt == 0).collect();
    assert!(
        to_agent.len() >= 45,
        "{} of 50 reached the agent",
        to_agent.len()
    );
    assert!(
        loud(&decode(&at_agent, 0, Law::Ulaw)) > 40 * 160 / 2,
        "transcoded tone"
    );
    let to_caller = decode(&at_caller, 8, Law::Alaw);
    assert!(
        to_caller.len() >= 45 * 160,
        "{} samples reached the caller",
        to_caller.len()
    );
    assert!(
        loud(&to_caller) > to_caller.len() / 2,
        "the agent's tone, no music"
    );

    let ports = [caller.our_media, phone.our_media.expect("offered")];
    tokio::task::spawn_blocking(move || {
        caller.hang_up();
        phone.bye(10);
    })
    .await
    .expect("bye");
    ports_freed(&ports).await;
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let ended = &events_of(&it, "interaction.call_ended")[0];
    assert_eq!(ended["data"]["by"], "caller");
    drop(agent);
}

/// The agent's phone holds the caller (re-INVITE `sendonly`): we answer `recvonly`, the caller
/// hears music on hold; taking the call back stops it. Both are events, and the hold time is
/// counted apart from talk time.
#[tokio::test]
async fn hold_from_the_agents_phone_plays_music_and_is_counted_apart() {
    let dir = TempDir::new("media-hold");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let _agent = available(&s, "agent1").await;
    let mut phone = AgentPhone::register(sip, "agent1");
    let answering = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        phone
    });
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "1001"))
        .await
        .expect("dial");
    let phone = answering.await.expect("answer");
    let it = wait_state(&admin, |c| c["state"] == "connected").await;
    let id = it["id"].as_str().expect("id").to_owned();

    let (mut caller, phone, music) = tokio::task::spawn_blocking(move || {
        let r = phone.reinvite(1, "sendonly");
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            String::from_utf8_lossy(&r.body).contains("a=recvonly"),
            "hold answered recvonly"
        );
        let music = caller.ua.collect_rtp(3000, 1000);
        std::thread::sleep(Duration::from_millis(500));
        let r = phone.reinvite(2, "sendrecv");
        assert_eq!(r.status, StatusCode::OK);
        (caller, phone, music)
    })
    .await
    .expect("hold");
    let audio = decode(&music, 8, Law::Alaw);
    assert!(
        audio.len() >= 75 * 160,
        "about 2 s of music: {} samples",
        audio.len()
    );
    assert!(loud(&audio) > audio.len() / 10, "music, not silence");
    let after = tokio::task::spawn_blocking(move || {
        // Music stops at once after the resume (a frame or two in flight): what is left in
        // the socket from before is read first.
        std::thread::sleep(Duration::from_millis(200));
        caller.ua.collect_rtp(5000, 100);
        let after = caller.ua.collect_rtp(1000, 1000);
        caller.hang_up();
        phone.bye(10);
        after
    })
    .await
    .expect("resume");
    assert!(
        after.len() <= 3,
        "{} packets of music after the resume",
        after.len()
    );
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let (hold, ended) = held_then_resumed(&it);
    assert!((2.0..4.5).contains(&hold), "hold {hold}");
    let talk = ended["data"]["talk_s"].as_f64().expect("talk_s");
    assert!(talk < 3.0, "talk {talk} without the hold");
}

/// Asserts the call was held, then resumed (in that order); its hold time (`call_ended`'s
/// `hold_s`) and that event.
fn held_then_resumed(it: &Value) -> (f64, Value) {
    let types = event_types(it);
    let held = types
        .iter()
        .position(|t| t == "interaction.held")
        .expect("held");
    let resumed = types
        .iter()
        .position(|t| t == "interaction.resumed")
        .expect("resumed");
    assert!(held < resumed, "{types:?}");
    let ended = events_of(it, "interaction.call_ended")[0].clone();
    let hold = ended["data"]["hold_s"].as_f64().expect("hold_s");
    (hold, ended)
}

/// A caller who goes silent for `[voice] rtp_timeout_s` is a dead call: both legs get a BYE and
/// the interaction ends, `by` `rtp_timeout`.
#[tokio::test]
async fn a_call_whose_caller_goes_silent_is_ended_by_the_rtp_timeout() {
    let dir = TempDir::new("media-timeout");
    let s = server_with(&dir, "rtp_timeout_s = 2");
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let _agent = available(&s, "agent1").await;
    let mut phone = AgentPhone::register(sip, "agent1");
    let answering = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        phone
    });
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "1001"))
        .await
        .expect("dial");
    let phone = answering.await.expect("answer");
    let it = wait_state(&admin, |c| c["state"] == "connected").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let ports = [caller.our_media, phone.our_media.expect("offered")];
    tokio::task::spawn_blocking(move || {
        // Half a second of audio, then nothing: not hung up at once, but within the timeout
        // and a bit, on both legs.
        caller.ua.stream(caller.our_media, Law::Alaw, 1, 25);
        let early = caller.ua.try_wait(1, |m| {
            m.as_request().is_some_and(|r| r.method == Method::Bye)
        });
        assert!(early.is_none(), "hung up before the timeout");
        let bye = caller.ua.wait_request(6, Method::Bye);
        caller.ua.send(&Message::Response(Response::for_request(
            &bye,
            StatusCode::OK,
            "OK",
        )));
        phone.bye(3);
    })
    .await
    .expect("timeout");
    ports_freed(&ports).await;
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let ended = &events_of(&it, "interaction.call_ended")[0];
    assert_eq!(ended["data"]["by"], "rtp_timeout", "{ended}");
}

/// SIPp as the caller: dials 1000, and once answered plays Debian's capture of an RFC 4733 "1"
/// (`play_pcap_audio`), then streams a G.711 WAV made with sox (`rtp_stream`). The call lands
/// in sales; the agent's phone (ours) counts the caller's audio; SIPp's BYE hangs it up.
#[tokio::test]
async fn a_sipp_caller_pressing_1_from_a_pcap_reaches_sales_and_its_audio_the_agent() {
    let dir = TempDir::new("media-sipp");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let work = TempDir::new("media-sipp-logs");
    let admin = s.login("admin", "admin").await;
    let sales = queue_id(&admin, "sales").await;
    let _agent = available(&s, "agent1").await;
    let wav = work.0.join("tone.wav");
    let st = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-e", "u-law"])
        .arg(&wav)
        .args(["synth", "3", "sine", "700"])
        .status()
        .expect("sox (Debian package sox) is installed");
    assert!(st.success());
    let mut phone = AgentPhone::register(sip, "agent1");
    let mut sipp = Command::new("sipp")
        .arg("-sf")
        .arg(scenario("caller_ivr_dtmf.xml"))
        .args(["-i", "127.0.0.1", "-nostdin", "-m", "1", "-s", "1000"])
        .args([
            "-timeout",
            "60s",
            "-trace_err",
            "-mp",
            &free_udp_port().to_string(),
        ])
        .arg(sip.to_string())
        .current_dir(&work.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (Debian package sip-tester) is installed");
    let heard = tokio::task::spawn_blocking(move || {
        phone.answer(30);
        let heard = phone.ua.collect_rtp(8000, 1000);
        phone.bye(15);
        heard
    })
    .await
    .expect("agent");
    let status = sipp.wait().expect("sipp");
    assert!(
        status.success(),
        "the SIPp caller's scenario failed: {status}"
    );
    let audio = decode(&heard, 0, Law::Ulaw);
    assert!(
        audio.len() >= 100 * 160,
        "{} samples of the caller reached the agent",
        audio.len()
    );
    assert!(loud(&audio) > audio.len() / 2, "the caller's tone");
    let it = calls(&admin).await.pop().expect("a call");
    assert_eq!(it["queue_id"], sales, "{it}");
}

/// `[voice] whisper`: as the call is bridged, the agent's phone alone hears the queue and the
/// caller's number spoken (about as long as espeak-ng speaks it); the caller hears nothing of it.
#[tokio::test]
async fn the_agent_hears_the_whisper_and_the_caller_does_not() {
    let dir = TempDir::new("media-whisper");
    let s = server_with(&dir, "whisper = true");
    let sip = s.sip.expect("sip");
    let _agent = available(&s, "agent1").await;
    let mut phone = AgentPhone::register(sip, "agent1");
    let answering = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        let heard = phone.ua.collect_rtp(10_000, 700);
        (phone, heard)
    });
    let mut caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "1001"))
        .await
        .expect("dial");
    let (phone, heard) = answering.await.expect("answer");
    let expected = spoken_len("Call from queue support, caller 4 4 2 0 7 9 4 6 0 1 2 3.");
    let audio = decode(&heard, 0, Law::Ulaw);
    let ratio = audio.len() as f64 / expected as f64;
    assert!(
        (0.8..1.3).contains(&ratio),
        "the agent heard {} samples, espeak-ng speaks {expected}",
        audio.len()
    );
    assert!(loud(&audio) > audio.len() / 10, "speech, not silence");
    tokio::task::spawn_blocking(move || {
        let at_caller = caller.ua.collect_rtp(300, 300);
        assert!(
            at_caller.is_empty(),
            "the caller heard {} packets",
            at_caller.len()
        );
        caller.hang_up();
        phone.bye(10);
    })
    .await
    .expect("bye");
}

/// Packet indexes at which the stream (A-law) starts the hold music from its beginning.
fn music_starts(audio: &[i16]) -> Vec<usize> {
    let music = switchboard_media::player::default_hold_music();
    let mut quantized = Vec::new();
    let mut enc = Vec::new();
    Law::Alaw.encode(&music[..400], &mut enc);
    Law::Alaw.decode(&enc, &mut quantized);
    (0..audio.len().saturating_sub(400) / 160 + 1)
        .filter(|i| audio[i * 160..i * 160 + 400] == quantized[..])
        .collect()
}

/// While queued, the caller hears music on hold (the default melody without `[voice]
/// moh_dir`), interrupted every `announce_every_s` by its position spoken; the music starts
/// again after each announcement.
#[tokio::test]
async fn a_queued_caller_hears_music_interrupted_by_position_announcements() {
    let dir = TempDir::new("media-announce");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    admin
        .post(
            "/api/v1/flows",
            serde_json::json!({"name": "wait", "definition": {"start": "q", "nodes": {"q": {
                "type": "queue", "queue": "sales", "announce_every_s": 2,
                "position_text": "You are number {{position}} in the queue."}}}}),
        )
        .await
        .expect(201);
    admin
        .put(
            "/api/v1/voice/numbers/2000",
            serde_json::json!({"queue": "sales", "flow": "wait"}),
        )
        .await
        .expect(200);
    // Nobody is available: the caller waits.
    let caller = tokio::task::spawn_blocking(move || {
        let mut c = Caller::dial(sip, "2000");
        let heard = c.ua.collect_rtp(9000, 1000);
        c.hang_up();
        heard
    })
    .await
    .expect("caller");
    let it = wait_state(&admin, |c| c["state"] == "ended").await;
    assert_eq!(it["disposition"], "abandoned", "{it}");
    let audio = decode(&caller, 8, Law::Alaw);
    assert!(audio.len() >= 8000 * 6, "{} samples in 9 s", audio.len());
    let starts = music_starts(&audio);
    assert_eq!(starts.first(), Some(&0), "the music first: {starts:?}");
    assert!(
        starts.len() >= 2,
        "music again after an announcement: {starts:?}"
    );
    // Between two starts: the 2 s of music, then the announcement (about as long as spoken).
    let spoken = spoken_len("You are number 1 in the queue.");
    let gap = (starts[1] - starts[0]) * 160;
    assert!(
        gap >= 16000 + spoken * 8 / 10 && gap <= 16000 + spoken * 13 / 10 + 4000,
        "{gap} samples between music starts, announcement {spoken}"
    );
    drop(caller);
}

/// The IVR's keys by SIP INFO (`application/dtmf-relay`) and, with `[voice] inband_dtmf`, by
/// tones in the caller's audio (Goertzel): 1 by INFO reaches sales, 2 in band reaches support.
#[tokio::test]
async fn ivr_keys_come_by_sip_info_and_in_band_tones() {
    let dir = TempDir::new("media-keys");
    let s = server_with(&dir, "inband_dtmf = true");
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let (sales, support) = (
        queue_id(&admin, "sales").await,
        queue_id(&admin, "support").await,
    );
    for (key, queue) in [('1', &sales), ('2', &support)] {
        let mut caller = tokio::task::spawn_blocking(move || {
            let mut c = Caller::dial(sip, "1000");
            // The prompts, then the key.
            c.ua.collect_rtp(12_000, 600);
            if key == '1' {
                c.cseq += 1;
                let body = "Signal=1\r\nDuration=160\r\n";
                c.in_dialog(
                    "INFO",
                    c.cseq,
                    &format!(
                        "Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    ),
                );
            } else {
                // 100 ms of the pair of 2 (697 and 1336 Hz), then silence, in A-law.
                let pair = switchboard_media::tone::dtmf_pair('2').expect("key");
                for i in 0..10u16 {
                    let samples = if i < 5 {
                        tones(&[pair.0, pair.1], 6000.0, u64::from(i) * 160, 160)
                    } else {
                        vec![0; 160]
                    };
                    let mut payload = Vec::new();
                    Law::Alaw.encode(&samples, &mut payload);
                    let d = rtp(8, i, u32::from(i) * 160, i == 0, &payload);
                    c.ua.rtp.send_to(&d, c.our_media).expect("rtp");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            c
        })
        .await
        .expect("caller");
        let it = wait_state(&admin, |c| c["state"] == "queued").await;
        assert_eq!(&it["queue_id"], queue, "key {key}: {it}");
        let id = it["id"].as_str().expect("id").to_owned();
        let full = admin
            .get(&format!("/api/v1/interactions/{id}"))
            .await
            .expect(200);
        let choice = &events_of(&full, "flow.menu_choice")[0];
        assert_eq!(
            choice["data"]["key"],
            key.to_string(),
            "chosen, not timed out"
        );
        caller = tokio::task::spawn_blocking(move || {
            caller.hang_up();
            caller
        })
        .await
        .expect("bye");
        drop(caller);
        admin.wait_for(&id, |v| v["state"] == "ended").await;
    }
}

/// `sox FILE -n remix CHANNEL stats`: the channel's RMS level in dB.
fn sox_rms_db(file: &std::path::Path, channel: u16) -> f64 {
    let out = Command::new("sox")
        .arg(file)
        .args(["-n", "remix", &channel.to_string(), "stats"])
        .output()
        .expect("sox (Debian package sox) is installed");
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.starts_with("RMS lev dB"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no RMS level in sox's statistics: {text}"))
}

/// The demo's support queue records every call: a call to 1001 answered by agent1's phone is
/// recorded as a stereo WAV (caller left, agent right) with both sides' audio, a pause through
/// the API (card details) is silence in the file and a span in its metadata, and the file's
/// length matches the talk time within 5%.
#[tokio::test]
async fn a_recorded_call_is_stereo_with_both_sides_and_a_silent_pause() {
    let dir = TempDir::new("media-record");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let agent = available(&s, "agent1").await;
    let mut phone = AgentPhone::register(sip, "agent1");
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "1001"));
    let phone = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        phone
    })
    .await
    .expect("answer");
    let caller = caller.await.expect("dial");
    let it = wait_state(&admin, |c| c["state"] == "connected").await;
    let id = it["id"].as_str().expect("id").to_owned();
    // The recording began with the bridge.
    let recs = admin
        .poll(
            &format!("/api/v1/interactions/{id}/recordings"),
            Duration::from_secs(5),
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    assert_eq!(recs[0]["state"], "recording", "{recs}");
    let rid = recs[0]["id"].as_str().expect("recording id").to_owned();

    // 1 s of the caller, then 1 s of the agent.
    let (caller, phone) = tokio::task::spawn_blocking(move || {
        caller.ua.stream(caller.our_media, Law::Alaw, 100, 50);
        phone
            .ua
            .stream(phone.our_media.expect("offered"), Law::Ulaw, 500, 50);
        (caller, phone)
    })
    .await
    .expect("talk");
    // The caller reads out a card number: paused, 1 s of the caller, resumed.
    let p = agent
        .post(
            &format!("/api/v1/interactions/{id}/recording/pause"),
            Value::Null,
        )
        .await
        .expect(200);
    assert_eq!(p["recording_id"], rid.as_str(), "{p}");
    let caller = tokio::task::spawn_blocking(move || {
        caller.ua.stream(caller.our_media, Law::Alaw, 150, 50);
        caller
    })
    .await
    .expect("card");
    agent
        .post(
            &format!("/api/v1/interactions/{id}/recording/resume"),
            Value::Null,
        )
        .await
        .expect(200);
    agent
        .post(
            &format!("/api/v1/interactions/{id}/recording/resume"),
            Value::Null,
        )
        .await
        .expect_error(409, "wrong_state");
    let mut caller = tokio::task::spawn_blocking(move || {
        caller.ua.stream(caller.our_media, Law::Alaw, 200, 25);
        caller
    })
    .await
    .expect("talk");
    tokio::task::spawn_blocking(move || {
        caller.hang_up();
        phone.bye(10);
    })
    .await
    .expect("bye");

    let rec = admin
        .poll(
            &format!("/api/v1/recordings/{rid}"),
            Duration::from_secs(10),
            |v| v["state"] == "complete",
        )
        .await;
    assert_eq!(rec["channels"], 2, "{rec}");
    let spans = rec["paused_spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 1, "{rec}");
    let (from, to) = (
        spans[0]["from_ms"].as_u64().expect("from"),
        spans[0]["to_ms"].as_u64().expect("to"),
    );
    assert!(
        (700..=1600).contains(&(to - from)),
        "the pause lasted about the card's second: {from}..{to}"
    );
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let ended = &events_of(&it, "interaction.call_ended")[0];
    let talk_ms = ended["data"]["talk_s"].as_f64().expect("talk_s") * 1000.0;
    let duration_ms = rec["duration_ms"].as_f64().expect("duration");
    assert!(
        (duration_ms - talk_ms).abs() <= talk_ms * 0.05,
        "recording {duration_ms} ms, talk {talk_ms} ms"
    );
    let types = event_types(&it);
    for k in [
        "recording.started",
        "recording.paused",
        "recording.resumed",
        "recording.completed",
    ] {
        assert!(types.iter().any(|t| t == k), "{k} in {types:?}");
    }

    // The file: stereo, both sides heard (sox), silence in the paused span.
    let r = admin
        .http
        .get(format!("{}/api/v1/recordings/{rid}/audio", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("audio").to_vec();
    let file = dir.0.join("call.wav");
    std::fs::write(&file, &bytes).expect("write");
    let (left, right) = (sox_rms_db(&file, 1), sox_rms_db(&file, 2));
    assert!(
        left > -30.0,
        "the caller's channel carries audio: {left} dB"
    );
    assert!(
        right > -30.0,
        "the agent's channel carries audio: {right} dB"
    );
    let w = switchboard_media::wav::parse(&bytes).expect("wav");
    assert_eq!((w.channels, w.rate), (2, 8000));
    let frames = w.samples.len() / 2;
    let ms = |f: usize| f as u64 * 1000 / 8000;
    assert!(
        (ms(frames) as f64 - duration_ms).abs() < 50.0,
        "{} frames for {duration_ms} ms",
        frames
    );
    let at = |ms: u64| (ms * 8) as usize;
    let paused = &w.samples[at(from + 50) * 2..at(to.saturating_sub(50)) * 2];
    assert!(paused.iter().all(|s| *s == 0), "the paused span is silence");
    // The caller's first second is on the left only (the agent's next second on the right).
    let start = w
        .samples
        .chunks(2)
        .position(|f| f[0].abs() > 1000)
        .expect("the caller is heard");
    let first: Vec<&[i16]> = w.samples.chunks(2).skip(start).take(at(800)).collect();
    let caller_part: Vec<i16> = first.iter().map(|f| f[0]).collect();
    let agent_side_then: Vec<i16> = first.iter().map(|f| f[1]).collect();
    assert!(
        loud(&caller_part) > caller_part.len() / 3,
        "the caller on the left"
    );
    assert!(
        loud(&agent_side_then) < agent_side_then.len() / 10,
        "the agent was silent then"
    );
    drop(agent);
}

/// Points the demo trunk's outbound side at a provider written here (no challenge).
async fn outbound_to(admin: &Session, provider: SocketAddr) {
    let trunk = admin.get("/api/v1/voice/trunks").await.expect(200)[0].clone();
    let body = serde_json::json!({
        "name": trunk["name"], "allow": trunk["allow"], "trust_identity": true,
        "outbound_uri": format!("sip:{provider}"),
        "caller_id": "+442079460000",
    });
    admin
        .put(
            &format!("/api/v1/voice/trunks/{}", trunk["id"].as_str().expect("id")),
            body,
        )
        .await
        .expect(200);
}

/// Answers `req` with 200, a To tag, our Contact and (if any) a PCMU offer or answer on `ua`.
fn ok_with_sdp(ua: &Ua, req: &Request, tag: &str) {
    let mut ok = Response::for_request(req, StatusCode::OK, "OK");
    let mut to = ok.headers.to().expect("to");
    to.set_tag(tag);
    ok.headers.set(HeaderName::TO, to.to_string());
    ok.headers
        .push(HeaderName::CONTACT, format!("<sip:{tag}@{}>", ua.local()));
    ok.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
    ok.body = sdp(ua.rtp_port(), "0", "a=rtpmap:0 PCMU/8000\r\n", "sendrecv").into_bytes();
    ua.send(&Message::Response(ok));
}

/// A queued caller presses the call back key (offered by the queue node): it hears the
/// confirmation and is hung up; the interaction stays queued at its place, marked as a call
/// back. agent1 becomes available: its phone rings (no SDP, like click-to-dial) and answers;
/// Switchboard calls the caller's number through the trunk's provider, which answers; the
/// provider and the phone are bridged (RTP both ways).
#[tokio::test]
async fn a_queued_caller_asks_for_a_call_back_and_is_called_back_when_an_agent_answers() {
    let dir = TempDir::new("media-callback");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let provider = Ua::new(UdpSocket::bind("127.0.0.1:0").expect("bind"), sip);
    outbound_to(&admin, provider.local()).await;
    admin
        .post(
            "/api/v1/flows",
            serde_json::json!({"name": "cb", "definition": {"start": "q", "nodes": {"q": {
                "type": "queue", "queue": "sales", "announce_every_s": 1, "callback": true,
                "position_text": "Please hold."}}}}),
        )
        .await
        .expect(201);
    admin
        .put(
            "/api/v1/voice/numbers/2000",
            serde_json::json!({"queue": "sales", "flow": "cb"}),
        )
        .await
        .expect(200);
    let phone = AgentPhone::register(sip, "agent1");
    // Nobody is available: the caller waits, hears the offer, presses 1.
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "2000"))
        .await
        .expect("dial");
    let queued = wait_state(&admin, |c| c["state"] == "queued").await;
    let id = queued["id"].as_str().expect("id").to_owned();
    let caller = tokio::task::spawn_blocking(move || {
        let heard = caller.ua.collect_rtp(3000, 3000);
        caller.press('1', 300);
        // The confirmation, then our BYE.
        let bye = caller.ua.wait_request(20, Method::Bye);
        caller.ua.send(&Message::Response(Response::for_request(
            &bye,
            StatusCode::OK,
            "OK",
        )));
        (caller, heard)
    });
    let (caller, heard) = caller.await.expect("pressed");
    assert!(
        loud(&decode(&heard, 8, Law::Alaw)) > 4000,
        "the offer is spoken"
    );
    let it = admin
        .wait_for(&id, |v| v["attributes"]["callback"]["number"].is_string())
        .await;
    assert_eq!(it["state"], "queued", "still waiting: {it}");
    assert_eq!(
        it["attributes"]["callback"]["number"], CALLER_NUMBER,
        "{it}"
    );
    assert_eq!(it["waiting_since"], queued["waiting_since"], "at its place");
    let types = event_types(&it);
    assert!(
        types.iter().any(|t| t == "interaction.callback_requested"),
        "{types:?}"
    );
    assert!(
        !types.iter().any(|t| t == "interaction.abandoned"),
        "{types:?}"
    );
    drop(caller);

    // agent1 comes: its phone rings with no SDP, answers with its offer.
    let agent = available(&s, "agent1").await;
    let legs = tokio::task::spawn_blocking(move || {
        let invite = phone.ua.wait_request(15, Method::Invite);
        assert!(invite.body.is_empty(), "a call back rings the phone first");
        ok_with_sdp(&phone.ua, &invite, "phone");
        // Then the number is called through the trunk.
        let out = provider.wait_request(15, Method::Invite);
        assert!(
            out.uri.to_string().contains(CALLER_NUMBER),
            "the caller's number is dialled: {}",
            out.uri
        );
        let provider_media = media_addr(&out.body);
        ok_with_sdp(&provider, &out, "provider");
        provider.wait_request(10, Method::Ack);
        // The phone's ACK brings our answer.
        let ack = phone.ua.wait_request(10, Method::Ack);
        let phone_media = media_addr(&ack.body);
        (phone, provider, phone_media, provider_media)
    });
    let (phone, provider, phone_media, provider_media) = legs.await.expect("legs");
    let it = admin.wait_for(&id, |v| v["state"] == "connected").await;
    assert_eq!(it["agent_id"], agent.agent_id().as_str(), "{it}");
    // Both ways through the bridge.
    let (to_phone, to_provider) = tokio::task::spawn_blocking(move || {
        provider.stream(provider_media, Law::Ulaw, 10, 50);
        let to_phone = phone.ua.collect_rtp(1500, 300);
        phone.ua.stream(phone_media, Law::Ulaw, 500, 50);
        let to_provider = provider.collect_rtp(1500, 300);
        (to_phone, to_provider)
    })
    .await
    .expect("talk");
    assert!(
        loud(&decode(&to_phone, 0, Law::Ulaw)) > 4000,
        "the customer is heard by the agent: {} packets",
        to_phone.len()
    );
    assert!(
        loud(&decode(&to_provider, 0, Law::Ulaw)) > 4000,
        "the agent is heard by the customer: {} packets",
        to_provider.len()
    );
}

/// Puts DID 2001 on a flow that is one voicemail node into `support` (`max_s` 20, and `extra`
/// options), dials it, and waits for the recording that begins after the beep: the caller, the
/// interaction's id and the recording's id.
async fn dial_voicemail(
    admin: &Session,
    sip: SocketAddr,
    extra: serde_json::Value,
) -> (Caller, String, String) {
    let mut node = json!({"type": "voicemail", "queue": "support", "max_s": 20});
    if let (Some(n), Some(x)) = (node.as_object_mut(), extra.as_object()) {
        n.extend(x.clone());
    }
    admin
        .post(
            "/api/v1/flows",
            json!({"name": "vm", "definition": {"start": "vm", "nodes": {"vm": node}}}),
        )
        .await
        .expect(201);
    admin
        .put(
            "/api/v1/voice/numbers/2001",
            json!({"queue": "sales", "flow": "vm"}),
        )
        .await
        .expect(200);
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "2001"))
        .await
        .expect("dial");
    let it = wait_state(admin, |c| c["state"] == "flow").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let recs = admin
        .poll(
            &format!("/api/v1/interactions/{id}/recordings"),
            Duration::from_secs(10),
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    let rid = recs[0]["id"].as_str().expect("recording id").to_owned();
    (caller, id, rid)
}

/// A caller leaves a voicemail: a beep, 2 s of a tone, then `#`; the caller is hung up, the
/// interaction waits in the node's queue as "Voicemail from <number>", with a complete
/// recording of about 2 s that can be downloaded, the caller's tone on its left channel.
#[tokio::test]
async fn a_caller_leaves_a_voicemail_that_agents_find_with_its_recording() {
    let dir = TempDir::new("media-voicemail");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let (caller, id, rid) = dial_voicemail(&admin, sip, json!({})).await;
    let caller = tokio::task::spawn_blocking(move || {
        caller.ua.stream(caller.our_media, Law::Alaw, 100, 100);
        caller.press('#', 300);
        let bye = caller.ua.wait_request(10, Method::Bye);
        caller.ua.send(&Message::Response(Response::for_request(
            &bye,
            StatusCode::OK,
            "OK",
        )));
        caller
    })
    .await
    .expect("message");
    drop(caller);
    let it = admin.wait_for(&id, |v| v["state"] != "flow").await;
    assert_eq!(it["state"], "queued", "{it}");
    assert_eq!(it["queue_id"], queue_id(&admin, "support").await.as_str());
    assert_eq!(it["subject"], format!("Voicemail from {CALLER_NUMBER}"));
    assert_eq!(it["attributes"]["voicemail"]["state"], "left", "{it}");
    assert_eq!(it["attributes"]["voicemail"]["recording_id"], rid.as_str());
    let rec = admin
        .poll(
            &format!("/api/v1/recordings/{rid}"),
            Duration::from_secs(10),
            |v| v["state"] == "complete",
        )
        .await;
    let ms = rec["duration_ms"].as_u64().expect("duration");
    assert!((1800..=3000).contains(&ms), "about the 2 s left: {ms} ms");
    let r = admin
        .http
        .get(format!("{}/api/v1/recordings/{rid}/audio", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("audio").to_vec();
    let w = switchboard_media::wav::parse(&bytes).expect("wav");
    assert_eq!(w.rate, 8000);
    let left: Vec<i16> = w
        .samples
        .chunks(w.channels as usize)
        .map(|f| f[0])
        .collect();
    assert!(
        loud(&left) > 9000, // 3 of 8 samples of a 1 kHz tone are near 0: 2 s is 12,000
        "the caller's tone is recorded: {} loud samples of {}",
        loud(&left),
        left.len()
    );
    // Nobody was rung for it, and the caller's leaving did not abandon it.
    let types = event_types(&it);
    assert!(
        !types.iter().any(|t| t == "interaction.abandoned"),
        "{types:?}"
    );
}

/// A `callback` node of the IVR: the caller hears the confirmation and is hung up at once; the
/// call back joins the node's queue. Offered to agent1, its phone answers, the provider refuses
/// the number (486): the phone is hung up and the interaction goes to wrap-up as
/// `callback_failed`.
#[tokio::test]
async fn a_callback_node_queues_a_call_back_and_an_unreached_number_ends_it_callback_failed() {
    let dir = TempDir::new("media-callback-node");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let provider = Ua::new(UdpSocket::bind("127.0.0.1:0").expect("bind"), sip);
    outbound_to(&admin, provider.local()).await;
    admin
        .post(
            "/api/v1/flows",
            serde_json::json!({"name": "cbnode", "definition": {"start": "cb", "nodes": {
                "cb": {"type": "callback", "queue": "sales"}}}}),
        )
        .await
        .expect(201);
    admin
        .put(
            "/api/v1/voice/numbers/2002",
            serde_json::json!({"queue": "support", "flow": "cbnode"}),
        )
        .await
        .expect(200);
    let phone = AgentPhone::register(sip, "agent1");
    let caller = tokio::task::spawn_blocking(move || {
        let c = Caller::dial(sip, "2002");
        let heard = c.ua.collect_rtp(15_000, 1000);
        let bye = c.ua.wait_request(10, Method::Bye);
        c.ua.send(&Message::Response(Response::for_request(
            &bye,
            StatusCode::OK,
            "OK",
        )));
        heard
    })
    .await
    .expect("caller");
    let spoken = spoken_len("Thank you. We will call you back at 4 4 2 0 7 9 4 6 0 1 2 3.");
    let audio = decode(&caller, 8, Law::Alaw);
    assert!(
        audio.len() * 10 >= spoken * 8,
        "the confirmation is heard: {} samples of {spoken}",
        audio.len()
    );
    let it = wait_state(&admin, |c| {
        c["attributes"]["callback"]["number"].is_string()
    })
    .await;
    assert_eq!(it["state"], "queued", "{it}");
    assert_eq!(it["queue_id"], queue_id(&admin, "sales").await.as_str());
    let id = it["id"].as_str().expect("id").to_owned();

    let _agent = available(&s, "agent1").await;
    tokio::task::spawn_blocking(move || {
        let invite = phone.ua.wait_request(15, Method::Invite);
        ok_with_sdp(&phone.ua, &invite, "phone");
        let out = provider.wait_request(15, Method::Invite);
        assert!(out.uri.to_string().contains(CALLER_NUMBER), "{}", out.uri);
        let busy = Response::for_request(&out, StatusCode::BUSY_HERE, "Busy Here");
        provider.send(&Message::Response(busy));
        phone.ua.wait_request(10, Method::Ack);
        phone.bye(10);
    })
    .await
    .expect("not reached");
    let it = admin
        .wait_for(&id, |v| v["state"] == "wrap_up" || v["state"] == "ended")
        .await;
    // (sales has no wrap-up time: it ends at once, with the disposition.)
    assert_eq!(it["disposition"], "callback_failed", "{it}");
    let ended = &events_of(&it, "interaction.call_ended")[0];
    assert_eq!(ended["data"]["by"], "number", "{ended}");
}

/// The desktop holds the caller through the API (no re-INVITE from the phone): music to the
/// caller, `interaction.held`/`resumed`, hold time apart; only the call's agent or a
/// supervisor may, and only a connected call.
#[tokio::test]
async fn hold_through_the_api_plays_music_and_is_counted_apart() {
    let dir = TempDir::new("media-api-hold");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let agent = available(&s, "agent1").await;
    let other = s.login("agent2", "agent").await;
    let mut phone = AgentPhone::register(sip, "agent1");
    let answering = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        phone
    });
    let caller = tokio::task::spawn_blocking(move || Caller::dial(sip, "1001"))
        .await
        .expect("dial");
    let phone = answering.await.expect("answer");
    let it = wait_state(&admin, |c| c["state"] == "connected").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let hold = format!("/api/v1/interactions/{id}/hold");

    other
        .post(&hold, serde_json::json!({"on": true}))
        .await
        .expect_error(403, "forbidden");
    let r = agent
        .post(&hold, serde_json::json!({"on": true}))
        .await
        .expect(200);
    assert_eq!(r["held"], true);
    let (caller, music) = tokio::task::spawn_blocking(move || {
        let music = caller.ua.collect_rtp(3000, 1000);
        (caller, music)
    })
    .await
    .expect("listen");
    let audio = decode(&music, 8, Law::Alaw);
    assert!(
        audio.len() >= 75 * 160,
        "about 2 s of music: {} samples",
        audio.len()
    );
    assert!(loud(&audio) > audio.len() / 10, "music, not silence");
    agent
        .post(&hold, serde_json::json!({"on": false}))
        .await
        .expect(200);
    let mut caller = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(200));
        caller.ua.collect_rtp(5000, 100);
        let after = caller.ua.collect_rtp(1000, 1000);
        assert!(after.len() <= 3, "{} packets of music after", after.len());
        caller
    })
    .await
    .expect("resume");
    tokio::task::spawn_blocking(move || {
        caller.hang_up();
        phone.bye(10);
    })
    .await
    .expect("bye");
    let it = admin.wait_for(&id, |v| v["state"] != "connected").await;
    let (hold_s, _) = held_then_resumed(&it);
    assert!((1.5..4.5).contains(&hold_s), "hold {hold_s}");
    // The call is over: nothing to hold.
    agent
        .post(&hold, serde_json::json!({"on": true}))
        .await
        .expect_error(409, "wrong_state");
}

/// Our compound packets as the test peer reads them (RTCP packets of RFC 3550 §6).
fn read_reports(
    sock: &UdpSocket,
    polls: u32,
    pred: impl Fn(&[switchboard_media::rtcp::RtcpPacket]) -> bool,
) -> Option<Vec<switchboard_media::rtcp::RtcpPacket>> {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 1500];
    for _ in 0..polls {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let packets = switchboard_media::rtcp::parse(&buf[..n]).expect("our RTCP is valid");
        if pred(&packets) {
            return Some(packets);
        }
    }
    None
}

/// RTCP is terminated per leg (RFC 3550 §6, `[voice] rtcp_interval_ms` short here): the caller
/// names its RTCP port (`a=rtcp`, RFC 3605) and our answer names ours (the RTP port + 1), as
/// does our offer to the agent's phone. The caller skips 5 of its packets: our SR to it (we relay
/// the agent's stream) carries a block about its stream with those 5 lost, within a few
/// seconds. Its own SR and RR (sent to our RTCP port) come back as the next block's LSR and
/// give the round-trip time (it holds our SR 300 ms and says 100 ms: 200 ms). At hang-up
/// `call.quality` has both legs: the caller's loss as we saw it and what it reported.
#[tokio::test]
async fn each_leg_gets_our_rtcp_reports_and_the_call_quality_is_recorded() {
    use switchboard_media::rtcp::{self, Compound, ReportBlock, RtcpPacket, SenderInfo, middle};
    let dir = TempDir::new("media-rtcp");
    let s = server_with(&dir, "rtcp_interval_ms = 1000");
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let _agent = available(&s, "agent1").await;
    let mut phone = AgentPhone::register(sip, "agent1");
    let answering = tokio::task::spawn_blocking(move || {
        phone.answer(15);
        phone
    });
    let caller_rtcp = UdpSocket::bind("127.0.0.1:0").expect("rtcp");
    let attr = format!(
        "a=rtcp:{}\r\n",
        caller_rtcp.local_addr().expect("addr").port()
    );
    let caller = tokio::task::spawn_blocking(move || Caller::dial_with(sip, "1001", &attr))
        .await
        .expect("dial");
    let phone = answering.await.expect("answer");
    let ours = caller.our_media;
    assert!(
        caller
            .answer
            .contains(&format!("a=rtcp:{}\r\n", ours.port() + 1)),
        "{}",
        caller.answer
    );
    let offer = String::from_utf8_lossy(&phone.invite.as_ref().expect("invite").body).into_owned();
    let agent_media = phone.our_media.expect("offered");
    assert!(
        offer.contains(&format!("a=rtcp:{}\r\n", agent_media.port() + 1)),
        "{offer}"
    );
    let it = wait_state(&admin, |c| c["state"] == "connected").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let our_rtcp = SocketAddr::new(ours.ip(), ours.port() + 1);

    // The agent talks for 3 s (relayed to the caller: our SRs to it); the caller talks for 3 s
    // without packets 20..25.
    let agent_rtp = phone.ua.rtp.try_clone().expect("clone");
    let agent_talks = std::thread::spawn(move || {
        for i in 0..150u16 {
            let d = rtp(0, i, u32::from(i) * 160, i == 0, &[0xFF; 160]);
            agent_rtp.send_to(&d, agent_media).expect("rtp");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let caller_rtp = caller.ua.rtp.try_clone().expect("clone");
    let caller_talks = std::thread::spawn(move || {
        for i in 0..150u16 {
            if !(20..25).contains(&i) {
                let d = rtp(8, i, u32::from(i) * 160, i == 0, &[0xD5; 160]);
                caller_rtp.send_to(&d, ours).expect("rtp");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (first, second) = tokio::task::spawn_blocking(move || {
        let lost_5 = |p: &[RtcpPacket]| {
            matches!(&p[0], RtcpPacket::SenderReport { reports, .. }
                if reports.first().is_some_and(|b| b.ssrc == 0x7e57 && b.cumulative_lost == 5))
        };
        let first = read_reports(&caller_rtcp, 60, lost_5)
            .expect("an SR about the caller's stream with its 5 lost within 6 s");
        let RtcpPacket::SenderReport { ssrc, info, .. } = &first[0] else {
            unreachable!("matched above");
        };
        // Held 300 ms, reported as 100 ms: the round trip is the other 200 ms.
        std::thread::sleep(Duration::from_millis(300));
        let mut out = Vec::new();
        rtcp::write(
            &Compound {
                ssrc: 0x7e57,
                sender: Some(SenderInfo {
                    ntp: 0x0000_1234_5678_0000,
                    rtp_timestamp: 0,
                    packets: 100,
                    octets: 16_000,
                }),
                report: Some(ReportBlock {
                    ssrc: *ssrc,
                    fraction_lost: 64,
                    cumulative_lost: 3,
                    highest_sequence: 100,
                    jitter: 40,
                    last_sr: middle(info.ntp),
                    delay_since_last_sr: 6554,
                }),
                cname: "caller@test",
                bye: false,
            },
            &mut out,
        );
        caller_rtcp.send_to(&out, our_rtcp).expect("rtcp");
        // Our next report echoes the caller's SR.
        let second = read_reports(&caller_rtcp, 30, |p| {
            matches!(&p[0], RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. }
                if reports.first().is_some_and(|b| b.last_sr == 0x1234_5678))
        })
        .expect("a report echoing the caller's SR");
        (first, second)
    })
    .await
    .expect("rtcp peer");
    assert!(
        matches!(&first[1], RtcpPacket::SourceDescription(c) if c[0].1.as_deref().is_some_and(|n| n.starts_with("switchboard@"))),
        "{first:?}"
    );
    let (RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. }) =
        &second[0]
    else {
        panic!("{second:?}");
    };
    assert!(reports[0].delay_since_last_sr > 0, "{reports:?}");
    agent_talks.join().expect("agent");
    caller_talks.join().expect("caller");
    let mut caller = caller;
    tokio::task::spawn_blocking(move || {
        caller.hang_up();
        phone.bye(10);
    })
    .await
    .expect("bye");
    let it = admin
        .wait_for(&id, |v| !events_of(v, "call.quality").is_empty())
        .await;
    let q = &events_of(&it, "call.quality")[0]["data"];
    let c = &q["caller"];
    assert_eq!(c["lost"], 5, "{q}");
    assert_eq!(c["received"], 145, "{q}");
    assert!((c["loss_fraction"].as_f64().expect("fraction") - 5.0 / 150.0).abs() < 1e-3);
    assert!(c["jitter_ms"].as_f64().expect("jitter") < 20.0, "{q}");
    let peer = &c["peer"];
    assert_eq!(peer["lost"], 3, "what the caller reported: {q}");
    assert_eq!(peer["loss_fraction"], 0.25);
    assert_eq!(peer["jitter_ms"], 5.0);
    let rtt = peer["rtt_ms"].as_f64().expect("rtt");
    assert!((190.0..2000.0).contains(&rtt), "rtt {rtt} ms: {q}");
    let a = &q["agent"];
    assert_eq!(
        (a["received"].as_u64(), a["lost"].as_u64()),
        (Some(150), Some(0)),
        "{q}"
    );
    assert!(a["peer"].is_null(), "the phone sent no RTCP: {q}");
}

/// A voicemail node with `silence_s`: the caller speaks (a tone) for a second and then sends
/// only silence: a second later the recording ends and the caller is hung up, `ended_by`
/// `silence`; the trailing silence is kept in the file.
#[tokio::test]
async fn a_voicemail_ends_after_the_callers_silence() {
    let dir = TempDir::new("media-voicemail-silence");
    let s = Server::start(&dir.0);
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let (caller, id, rid) = dial_voicemail(&admin, sip, json!({"silence_s": 1})).await;
    tokio::task::spawn_blocking(move || {
        caller.ua.stream(caller.our_media, Law::Alaw, 100, 50);
        // A-law silence until we hang up (at most 4 s)
        let rtp_sock = caller.ua.rtp.try_clone().expect("clone");
        let to = caller.our_media;
        let quiet = std::thread::spawn(move || {
            for i in 0..200u16 {
                let d = rtp(8, 150 + i, u32::from(150 + i) * 160, false, &[0xD5; 160]);
                if rtp_sock.send_to(&d, to).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let bye = caller.ua.wait_request(4, Method::Bye);
        caller.ua.send(&Message::Response(Response::for_request(
            &bye,
            StatusCode::OK,
            "OK",
        )));
        drop(caller);
        let _ = quiet.join();
    })
    .await
    .expect("message");
    let it = admin.wait_for(&id, |v| v["state"] != "flow").await;
    assert_eq!(it["state"], "queued", "{it}");
    assert_eq!(it["attributes"]["voicemail"]["ended_by"], "silence", "{it}");
    let rec = admin
        .poll(
            &format!("/api/v1/recordings/{rid}"),
            Duration::from_secs(10),
            |v| v["state"] == "complete",
        )
        .await;
    let ms = rec["duration_ms"].as_u64().expect("duration");
    assert!(
        (1900..=3500).contains(&ms),
        "a second of tone and the second of silence: {ms} ms"
    );
    let r = admin
        .http
        .get(format!("{}/api/v1/recordings/{rid}/audio", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("download");
    let w = switchboard_media::wav::parse(&r.bytes().await.expect("audio")).expect("wav");
    let left: Vec<i16> = w
        .samples
        .chunks(w.channels as usize)
        .map(|f| f[0])
        .collect();
    assert!(loud(&left) > 4000, "the tone is recorded");
    let tail = &left[left.len().saturating_sub(6400)..];
    assert_eq!(
        loud(tail),
        0,
        "the trailing silence is kept (its last 0.8 s)"
    );
}

/// rtcp-mux (RFC 5761): a caller that offers `a=rtcp-mux` is answered `a=rtcp-mux` (no
/// `a=rtcp`), gets our reports on its RTP port among the IVR's prompt packets (an SR: we send it
/// the prompts), and its RR sent to our RTP port is read, not taken for audio: the quality has
/// what it reported.
#[tokio::test]
async fn a_caller_offering_rtcp_mux_gets_its_reports_on_the_rtp_port() {
    use switchboard_media::rtcp::{self, Compound, ReportBlock, RtcpPacket};
    use switchboard_media::rtp::is_rtcp;
    let dir = TempDir::new("media-rtcp-mux");
    let s = server_with(&dir, "rtcp_interval_ms = 500");
    let sip = s.sip.expect("sip");
    let admin = s.login("admin", "admin").await;
    let caller =
        tokio::task::spawn_blocking(move || Caller::dial_with(sip, "1000", "a=rtcp-mux\r\n"))
            .await
            .expect("dial");
    assert!(
        caller.answer.contains("a=rtcp-mux\r\n"),
        "{}",
        caller.answer
    );
    assert!(!caller.answer.contains("a=rtcp:"), "{}", caller.answer);
    let it = wait_state(&admin, |c| c["state"] == "flow").await;
    let id = it["id"].as_str().expect("id").to_owned();
    let mut caller = tokio::task::spawn_blocking(move || {
        caller
            .ua
            .rtp
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut buf = [0u8; 2048];
        let mut report = None;
        for _ in 0..60 {
            let Ok((n, _)) = caller.ua.rtp.recv_from(&mut buf) else {
                continue;
            };
            if is_rtcp(&buf[..n]) {
                report = Some(rtcp::parse(&buf[..n]).expect("our RTCP"));
                break;
            }
        }
        let report = report.expect("our RTCP on the RTP port within 3 s");
        let RtcpPacket::SenderReport { ssrc, info, .. } = &report[0] else {
            panic!("we play the IVR's prompts to it: an SR, {report:?}");
        };
        assert!(info.packets > 0, "{info:?}");
        let mut rr = Vec::new();
        rtcp::write(
            &Compound {
                ssrc: 0x7e57,
                sender: None,
                report: Some(ReportBlock {
                    ssrc: *ssrc,
                    cumulative_lost: 9,
                    ..ReportBlock::default()
                }),
                cname: "mux@test",
                bye: false,
            },
            &mut rr,
        );
        caller.ua.rtp.send_to(&rr, caller.our_media).expect("rr");
        std::thread::sleep(Duration::from_millis(200));
        caller
    })
    .await
    .expect("mux");
    tokio::task::spawn_blocking(move || caller.hang_up())
        .await
        .expect("bye");
    let it = admin
        .wait_for(&id, |v| !events_of(v, "call.quality").is_empty())
        .await;
    let q = &events_of(&it, "call.quality")[0]["data"];
    assert_eq!(q["caller"]["peer"]["lost"], 9, "{q}");
    assert_eq!(q["caller"]["received"], 0, "its RR is not audio: {q}");
    assert!(q["caller"]["sent"].as_u64().expect("sent") > 0, "{q}");
}
