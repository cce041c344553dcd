//! The SIP user-agent core of the server: one struct that owns the transaction layer and the
//! registrar and decides what each request gets. No sockets and no clock: the driver
//! (`transport.rs`) feeds it triaged messages with `now` and sends what it hands back, so it is
//! tested here on virtual time.
//!
//! Requests: REGISTER → the registrar (challenges and a blocked source's refusals are sent
//! statelessly, before any transaction exists); OPTIONS → 200 with Allow; INVITE → 480 until
//! the B2BUA lands; CANCEL → 200 when it matches an INVITE transaction, else 481; BYE → 481
//! (no dialogs yet); other methods of the RFCs → 405 with Allow; extension methods → 501.
//! Responses and stray ACKs are counted and dropped.

use std::collections::VecDeque;

use std::net::SocketAddr;
use std::time::Duration;
use switchboard_model::MonoTime;
use switchboard_sip::registrar::{Aor, Binding, Output as RegOutput, Registrar, RegistrarConfig};
use switchboard_sip::transaction::{
    Event, Input, Output as TxOutput, Peer, TransactionConfig, TransactionId, TransactionLayer,
};

use super::calls::{CallNotice, Calls};
use switchboard_sip::{
    Discard, HeaderName, Message, Method, Rejection, Request, StatusCode, UasPolicy, Verdict,
    response_for, triage_datagram, triage_message,
};

/// Methods this server answers (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreOutput {
    /// Send `bytes` to `peer`.
    Transmit {
        /// Destination (transport and address).
        peer: Peer,
        /// The serialized message.
        bytes: Vec<u8>,
    },
    /// The bindings of `aor` changed; `bindings` is the new list (empty: unregistered).
    Bindings {
        /// Address-of-record.
        aor: Aor,
        /// Its current bindings.
        bindings: Vec<Binding>,
    },
    /// The B2BUA needs the routing engine.
    Call(CallNotice),
    /// Something for a call's media task.
    Media {
        /// The call.
        call: super::calls::CallKey,
        /// What to do.
        op: super::calls::MediaOp,
    },
}

/// The metric label of a message: the method of a request (`other` for extensions, so the
/// label set stays bounded), `response` for a response.
pub fn method_label(message: &Message) -> &'static str {
    match message {
        Message::Request(r) => request_label(&r.method),
        Message::Response(_) => "response",
    }
}

fn request_label(m: &Method) -> &'static str {
    match m {
        Method::Invite => "INVITE",
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Options => "OPTIONS",
        Method::Register => "REGISTER",
        Method::Prack => "PRACK",
        Method::Subscribe => "SUBSCRIBE",
        Method::Notify => "NOTIFY",
        Method::Publish => "PUBLISH",
        Method::Info => "INFO",
        Method::Refer => "REFER",
        Method::Message => "MESSAGE",
        Method::Update => "UPDATE",
        Method::Extension(_) => "other",
    }
}

/// Counts a message in or out.
pub fn count(direction: &'static str, message: &Message) {
    metrics::counter!("switchboard_sip_messages_total", "direction" => direction, "method" => method_label(message))
        .increment(1);
}

/// Counts a dropped input.
pub fn count_drop(reason: &'static str) {
    metrics::counter!("switchboard_sip_dropped_total", "reason" => reason).increment(1);
}

/// The outcome of triage in a transport task.
pub enum Triaged {
    /// For the core.
    Accept(Message),
    /// Answer with this at once (a 400, 505, 420 ...), statelessly.
    Reply(Vec<u8>),
    /// Dropped (already counted).
    Dropped,
}

fn triaged(verdict: Verdict) -> Triaged {
    match verdict {
        Verdict::Accept(m) => {
            count("in", &m);
            Triaged::Accept(m)
        }
        Verdict::Reply(r) => {
            metrics::counter!("switchboard_sip_messages_total", "direction" => "in", "method" => "invalid")
                .increment(1);
            let m = Message::Response(r);
            count("out", &m);
            Triaged::Reply(m.to_bytes())
        }
        Verdict::Drop(d) => {
            count_drop(match d {
                Discard::Malformed(_) => "malformed",
                Discard::InvalidAck(_) => "invalid_ack",
                Discard::Version(_) | Discard::BroadcastVia | Discard::ViaCount(_) => {
                    "bad_response"
                }
            });
            Triaged::Dropped
        }
    }
}

/// Parses and checks a datagram (or an unparsable stream frame).
pub fn triage_bytes(bytes: &[u8], policy: &UasPolicy) -> Triaged {
    triaged(triage_datagram(bytes, policy))
}

/// Checks a message framed from a stream.
pub fn triage_parsed(message: Message, policy: &UasPolicy) -> Triaged {
    triaged(triage_message(message, policy))
}

fn has_to_tag(req: &Request) -> bool {
    req.headers.to().ok().is_some_and(|t| t.tag().is_some())
}

/// The transaction layer, the registrar and the dispatch between them.
pub struct SipCore {
    pub(super) transactions: TransactionLayer,
    registrar: Registrar<TransactionId>,
    pub(super) outputs: VecDeque<CoreOutput>,
    /// The calls of the B2BUA.
    pub(super) calls: Calls,
    /// Our address, for Via and Contact.
    pub(super) local: SocketAddr,
    pub(super) t1: Duration,
    pub(super) t2: Duration,
}

impl SipCore {
    /// A core with the given settings.
    pub fn new(
        registrar: RegistrarConfig,
        transactions: TransactionConfig,
        local: SocketAddr,
    ) -> SipCore {
        SipCore {
            t1: transactions.t1,
            t2: transactions.t2,
            transactions: TransactionLayer::new(transactions),
            registrar: Registrar::new(registrar),
            outputs: VecDeque::new(),
            calls: Calls::default(),
            local,
        }
    }

    /// The calls (to replace the directory of trunks and numbers).
    pub fn calls_mut(&mut self) -> &mut Calls {
        &mut self.calls
    }

    /// The registrar, to change accounts.
    pub fn registrar_mut(&mut self) -> &mut Registrar<TransactionId> {
        &mut self.registrar
    }

    /// A message that passed triage arrived from `peer`.
    pub fn handle_message(&mut self, now: MonoTime, message: Message, peer: Peer) {
        if let Message::Request(req) = &message
            && req.method == Method::Register
            && let Some(resp) = self.registrar.handle_stateless(now, req, peer.addr.ip())
        {
            // A challenge or a block: answered without a transaction, so a flood of them
            // costs no memory.
            self.transmit(peer, Message::Response(resp));
        } else {
            self.transactions
                .handle_input(now, Input::Received { message, peer });
        }
        self.pump(now);
    }

    /// Wakes timers due at `now`.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        self.transactions.handle_timeout(now);
        self.registrar.handle_timeout(now);
        self.calls_timeout(now);
        self.pump(now);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        [
            self.transactions.poll_timeout(),
            self.registrar.poll_timeout(),
            self.calls.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<CoreOutput> {
        self.outputs.pop_front()
    }

    fn transmit(&mut self, peer: Peer, message: Message) {
        count("out", &message);
        self.outputs.push_back(CoreOutput::Transmit {
            peer,
            bytes: message.to_bytes(),
        });
    }

    /// Moves what the B2BUA queued (after a driver call) to the outputs.
    pub fn flush_calls(&mut self, now: MonoTime) {
        self.pump(now);
    }

    /// Moves outputs between the layers until both are quiet.
    fn pump(&mut self, now: MonoTime) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.transactions.poll_output() {
                progressed = true;
                match out {
                    TxOutput::Transmit { peer, message } => self.transmit(peer, message),
                    TxOutput::Event(e) => self.on_event(now, e),
                }
            }
            while let Some(out) = self.registrar.poll_output() {
                progressed = true;
                self.on_registrar(now, out);
            }
            if !progressed {
                break;
            }
        }
    }

    fn respond(&mut self, now: MonoTime, id: TransactionId, req: &Request, rejection: Rejection) {
        let response = response_for(req, &rejection);
        // The transaction may be gone (a transport error, a timeout): nothing to answer then.
        let _ = self.transactions.send_response(now, id, response);
    }

    fn on_event(&mut self, now: MonoTime, event: Event) {
        match event {
            Event::Request {
                id: Some(id),
                request,
                peer,
                cancels,
            } => self.on_request(now, id, request, peer, cancels),
            // The ACK of a 2xx: outside any transaction, or matched to one in Accepted.
            Event::Request {
                id: None, request, ..
            }
            | Event::Ack { request, .. } => self.on_ack_request(&request),
            Event::Response { id, response } => self.on_call_response(now, id, response),
            Event::StrayResponse { .. } => count_drop("stray_response"),
            Event::Timeout { id } | Event::TransportError { id } => self.on_call_tx_failed(now, id),
            Event::Terminated { id } => self.on_tx_terminated(id),
        }
    }

    fn on_request(
        &mut self,
        now: MonoTime,
        id: TransactionId,
        req: Request,
        peer: Peer,
        cancels: Option<TransactionId>,
    ) {
        let allow = || Rejection::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        match &req.method {
            Method::Register => self.registrar.handle_register(now, id, &req, &peer),
            Method::Options => self.respond(
                now,
                id,
                &req,
                Rejection::new(StatusCode::OK, "OK")
                    .with_header(HeaderName::ALLOW, ALLOW)
                    .with_header(HeaderName::ACCEPT, "application/sdp"),
            ),
            // Requests inside a dialog (re-INVITE, BYE, REFER, INFO ...) go to the B2BUA,
            // which answers 481 for dialogs it does not know.
            _ if has_to_tag(&req) && req.method != Method::Cancel => {
                self.on_dialog_request(now, Some(id), req, peer)
            }
            Method::Invite => self.on_new_invite(now, id, req, peer),
            // RFC 3261 9.2: a CANCEL matching a transaction gets 200, and the INVITE 487 if it
            // is still unanswered.
            Method::Cancel => {
                let r = match cancels {
                    Some(_) => Rejection::new(StatusCode::OK, "OK"),
                    None => Rejection::new(
                        StatusCode::CALL_DOES_NOT_EXIST,
                        "Call/Transaction Does Not Exist",
                    ),
                };
                self.respond(now, id, &req, r);
                if let Some(invite) = cancels {
                    self.on_caller_cancel(now, invite);
                }
            }
            Method::Bye => self.respond(
                now,
                id,
                &req,
                Rejection::new(
                    StatusCode::CALL_DOES_NOT_EXIST,
                    "Call/Transaction Does Not Exist",
                ),
            ),
            Method::Ack => {}
            Method::Extension(_) => self.respond(
                now,
                id,
                &req,
                Rejection::new(StatusCode::NOT_IMPLEMENTED, "Not Implemented")
                    .with_header(HeaderName::ALLOW, ALLOW),
            ),
            // RFC 3261 8.2.1: known but not supported here.
            _ => self.respond(now, id, &req, allow().with_header(HeaderName::ALLOW, ALLOW)),
        }
    }

    fn on_registrar(&mut self, now: MonoTime, out: RegOutput<TransactionId>) {
        match out {
            RegOutput::Respond { token, response } => {
                let _ = self.transactions.send_response(now, token, response);
            }
            RegOutput::BindingsChanged { aor, bindings } => {
                metrics::gauge!("switchboard_sip_registrations")
                    .set(self.registrar.binding_count() as f64);
                tracing::info!(aor = %aor, contacts = bindings.len(), "SIP registration changed");
                self.outputs
                    .push_back(CoreOutput::Bindings { aor, bindings });
            }
            RegOutput::AuthFailed {
                username,
                realm,
                source,
                reason,
                source_failures,
                delay,
                blocked,
            } => {
                metrics::counter!("switchboard_sip_auth_failures_total").increment(1);
                tracing::info!(%source, %username, %realm, %reason, source_failures,
                    delay_ms = delay.as_millis() as u64, "SIP authentication failed");
                for (scope, until) in blocked {
                    metrics::counter!("switchboard_sip_auth_blocks_total").increment(1);
                    tracing::warn!(%source, blocked = ?scope,
                        for_s = until.saturating_since(now).as_secs(),
                        "SIP authentication blocked after repeated failures");
                }
            }
            RegOutput::Refused { .. } => {
                metrics::counter!("switchboard_sip_auth_refused_total").increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use switchboard_sip::digest::{Challenge, Credentials};
    use switchboard_sip::{Response, Transport, parse};

    const REALM: &str = "demo.switchboard.local";

    fn core() -> SipCore {
        let mut c = SipCore::new(
            RegistrarConfig::new(b"core test secret".to_vec()),
            TransactionConfig::default(),
            "127.0.0.1:5060".parse().unwrap(),
        );
        c.registrar_mut()
            .set_credentials(Credentials::from_password("agent1", REALM, "agent"));
        c
    }

    fn peer() -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: "127.0.0.1:5070".parse().unwrap(),
        }
    }

    fn request(method: &str, branch: &str, extra: &str) -> Message {
        let text = format!(
            "{method} sip:agent1@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch}\r\n\
             From: <sip:agent1@{REALM}>;tag=a\r\nTo: <sip:agent1@{REALM}>\r\nCall-ID: {branch}\r\n\
             CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).unwrap()
    }

    fn responses(c: &mut SipCore) -> Vec<Response> {
        std::iter::from_fn(|| c.poll_output())
            .filter_map(|o| match o {
                CoreOutput::Transmit { bytes, .. } => {
                    parse(&bytes).ok().and_then(|m| m.as_response().cloned())
                }
                CoreOutput::Bindings { .. } | CoreOutput::Call(_) | CoreOutput::Media { .. } => {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn methods_get_their_answers() {
        let mut c = core();
        let now = MonoTime::from_secs(1);
        for (method, status) in [
            ("OPTIONS", 200),
            // No trunk allows this source: refused (toll-fraud guard).
            ("INVITE", 403),
            ("BYE", 481),
            ("CANCEL", 481),
            ("SUBSCRIBE", 405),
            ("FOO", 501),
            ("REGISTER", 401),
        ] {
            c.handle_message(now, request(method, method, ""), peer());
            let r = responses(&mut c);
            assert_eq!(r.len(), 1, "{method}: {r:?}");
            assert_eq!(r[0].status.as_u16(), status, "{method}");
            assert!(r[0].headers.to().unwrap().tag().is_some());
            if status == 405 || method == "OPTIONS" {
                assert_eq!(r[0].headers.get(&HeaderName::ALLOW), Some(ALLOW));
            }
        }
        // A retransmitted OPTIONS is answered from the transaction.
        c.handle_message(now, request("OPTIONS", "OPTIONS", ""), peer());
        assert_eq!(responses(&mut c)[0].status, StatusCode::OK);
    }

    #[test]
    fn register_flow_and_blocked_source() {
        let mut c = core();
        let now = MonoTime::from_secs(1);
        c.handle_message(now, request("REGISTER", "r1", ""), peer());
        let challenge = responses(&mut c).remove(0);
        let ch = challenge.headers.www_authenticate().unwrap()[0].clone();
        let ch = Challenge::from_auth(&ch).unwrap();
        let auth = ch.authorize(
            "agent1",
            "agent",
            &Method::Register,
            &format!("sip:agent1@{REALM}"),
            "x",
            1,
        );
        c.handle_message(
            now,
            request(
                "REGISTER",
                "r2",
                &format!("Contact: <sip:agent1@127.0.0.1:5070>\r\nAuthorization: {auth}\r\n"),
            ),
            peer(),
        );
        let outs: Vec<CoreOutput> = std::iter::from_fn(|| c.poll_output()).collect();
        assert!(
            outs.iter()
                .any(|o| matches!(o, CoreOutput::Bindings { bindings, .. } if bindings.len() == 1))
        );
        // Ten wrong passwords from a scanner, then it is refused without a transaction.
        let scanner = Peer {
            transport: Transport::Udp,
            addr: "127.0.0.9:5070".parse().unwrap(),
        };
        for i in 0..10 {
            let auth = ch.authorize(
                "agent1",
                "bad",
                &Method::Register,
                &format!("sip:agent1@{REALM}"),
                "x",
                i + 2,
            );
            c.handle_message(
                now,
                request(
                    "REGISTER",
                    &format!("s{i}"),
                    &format!("Authorization: {auth}\r\n"),
                ),
                scanner.clone(),
            );
        }
        let mut t = now;
        while let Some(at) = c
            .poll_timeout()
            .filter(|at| *at < now + Duration::from_secs(10))
        {
            t = at;
            c.handle_timeout(at);
        }
        assert_eq!(
            responses(&mut c)
                .iter()
                .filter(|r| r.status == StatusCode::FORBIDDEN)
                .count(),
            10
        );
        c.handle_message(t, request("REGISTER", "late", ""), scanner);
        let r = responses(&mut c);
        assert_eq!(r[0].status, StatusCode::FORBIDDEN);
        assert!(r[0].reason.contains("too many"));
    }
}
