//! SIP test kit shared by the voice end-to-end tests: running SIPp scenarios (Debian's
//! sip-tester) and a minimal phone that registers with digest authentication.
#![allow(dead_code)] // each test file uses a different part

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use switchboard_sip::digest::{Algorithm, Challenge};
use switchboard_sip::{Method, Response, StatusCode, parse};

/// The demo tenant's SIP realm.
pub const REALM: &str = "demo.switchboard.local";

/// A scenario file of `tests/sipp`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Runs a SIPp scenario against `server` from `local_ip`; panics with SIPp's error log unless
/// every call succeeds.
pub fn sipp(server: SocketAddr, name: &str, local_ip: &str, args: &[&str], work: &Path) {
    let mut cmd = Command::new("sipp");
    cmd.arg("-sf")
        .arg(scenario(name))
        .args(["-i", local_ip, "-nostdin", "-trace_err", "-trace_msg"])
        .args(["-timeout", "20s", "-recv_timeout", "8000"])
        .args(args)
        .arg(server.to_string())
        .current_dir(work);
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "sipp is not installed (Debian package sip-tester): run ./scripts/test.sh, \
             which installs the packages the end-to-end tests need"
        ),
        Err(e) => panic!("cannot run sipp: {e}"),
    };
    if !out.status.success() {
        let mut logs = String::new();
        for entry in std::fs::read_dir(work).expect("work dir").flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                logs += &format!(
                    "--- {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
        panic!(
            "sipp {name} from {local_ip} failed ({}):\n{}\n{logs}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
}

/// A minimal SIP phone over UDP: registers with digest, sends what a test needs.
pub struct Phone {
    /// Its socket (dropped before a SIPp process takes over the port).
    pub socket: UdpSocket,
    server: SocketAddr,
    n: u32,
    user: String,
}

impl Phone {
    /// agent1's phone on `ip`.
    pub fn new(ip: &str, server: SocketAddr) -> Phone {
        Phone::of("agent1", ip, server)
    }

    /// `user`'s phone on `ip`.
    pub fn of(user: &str, ip: &str, server: SocketAddr) -> Phone {
        let socket = UdpSocket::bind((ip, 0)).expect("bind client");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        Phone {
            socket,
            server,
            n: 0,
            user: user.to_owned(),
        }
    }

    /// A request with the phone's one Call-ID and the next CSeq (RFC 3261 10.2: a UA keeps
    /// its Call-ID across registrations and counts up).
    pub fn request(&mut self, method: &str, extra: &str) -> String {
        self.n += 1;
        let (n, local, user) = (self.n, self.socket.local_addr().expect("local"), &self.user);
        format!(
            "{method} sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKtest{n}\r\n\
             From: <sip:{user}@{REALM}>;tag=t{n}\r\nTo: <sip:{user}@{REALM}>\r\n\
             Call-ID: phone@{local}\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        )
    }

    pub fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).expect("send");
    }

    /// Sends, retransmitting every 500 ms as a UA does over UDP (a flooded server may drop
    /// a datagram), until the final response of this Call-ID and CSeq arrives.
    pub fn transact(&self, text: &str) -> Response {
        let request = parse(text.as_bytes()).expect("our request parses");
        let call_id = request.headers().call_id().expect("call-id").to_owned();
        let cseq = request.headers().cseq().expect("cseq").seq;
        let mut buf = vec![0u8; 65_535];
        for _ in 0..20 {
            self.send(text.as_bytes());
            // Up to the read timeout (500 ms) of silence, or 100 other datagrams.
            for _ in 0..100 {
                let Ok((n, _)) = self.socket.recv_from(&mut buf) else {
                    break;
                };
                if let Ok(m) = parse(&buf[..n])
                    && let Some(r) = m.as_response()
                    && r.headers.call_id().is_ok_and(|c| c == call_id)
                    && r.headers.cseq().is_ok_and(|c| c.seq == cseq)
                    && r.status.is_final()
                {
                    return r.clone();
                }
            }
        }
        panic!("no answer to {call_id} within 10 s");
    }

    pub fn options_ok(&mut self) {
        let req = self.request("OPTIONS", "");
        let r = self.transact(&req);
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }

    /// Registers agent1 with SHA-256 digest; returns the 200.
    pub fn register_sha256(&mut self, password: &str) -> Response {
        let contact = format!(
            "Contact: <sip:{}@{}>\r\n",
            self.user,
            self.socket.local_addr().expect("l")
        );
        let first = self.request("REGISTER", &contact);
        let challenge = self.transact(&first);
        assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
        let offered: Vec<Challenge> = challenge
            .headers
            .www_authenticate()
            .expect("challenges")
            .iter()
            .filter_map(Challenge::from_auth)
            .collect();
        assert_eq!(
            offered.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
            [Algorithm::Md5, Algorithm::Sha256]
        );
        let sha = offered
            .iter()
            .find(|c| c.algorithm == Algorithm::Sha256)
            .expect("SHA-256 offered");
        assert!(sha.qop_auth && sha.realm == REALM);
        let auth = sha.authorize(
            &self.user,
            password,
            &Method::Register,
            &format!("sip:{REALM}"),
            "0a4f113b",
            1,
        );
        let second = self.request("REGISTER", &format!("{contact}Authorization: {auth}\r\n"));
        self.transact(&second)
    }
}
