//! Dialogs (RFC 3261 12, 13.2.2.4, 13.3.1.4), sans-IO.
//!
//! A [`Dialog`] is the state two user agents share after an INVITE: Call-ID, both tags, both
//! CSeq counters, the remote target and the route set. It builds the requests sent inside the
//! dialog (BYE, re-INVITE, REFER, NOTIFY, INFO, and the ACK of a 2xx, which is not part of any
//! transaction), checks the requests received in it (CSeq order, RFC 3261 12.2.2) and follows
//! target refreshes.
//!
//! [`AnswerRetransmit`] is the UAS core's duty for a 2xx to INVITE (RFC 3261 13.3.1.4): send it
//! again at T1, 2*T1 ... capped at T2 until the ACK arrives, and give up (and end the dialog
//! with BYE) after 64*T1. Time comes in as `now`; nothing here reads a clock.
//!
//! Forked answers (RFC 3261 13.2.2.4): every 2xx with a new To tag makes a dialog of its own;
//! [`DialogId::of_response`] tells them apart, and the user acknowledges each and ends the
//! ones it does not want.

use std::fmt;
use std::time::Duration;

use switchboard_model::MonoTime;

use crate::transaction::Peer;
use crate::{
    CSeq, HeaderName, Method, NameAddr, Param, Rejection, Request, Response, StatusCode, Uri, Via,
};

/// What identifies a dialog at one end: Call-ID, our tag and the peer's tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The other side's tag (empty for an RFC 2543 peer that sent none).
    pub remote_tag: String,
}

impl DialogId {
    /// The id a received request belongs to at its recipient: the To tag is ours, the From
    /// tag the sender's. `None` without a To tag (not a request inside a dialog) or when the
    /// headers do not parse.
    pub fn of_request(req: &Request) -> Option<DialogId> {
        let to = req.headers.to().ok()?;
        let from = req.headers.from().ok()?;
        Some(DialogId {
            call_id: req.headers.call_id().ok()?.to_string(),
            local_tag: to.tag()?.to_string(),
            remote_tag: from.tag().unwrap_or_default().to_string(),
        })
    }

    /// The id a received response belongs to at the UAC: the From tag is ours, the To tag the
    /// answerer's. `None` without a To tag.
    pub fn of_response(resp: &Response) -> Option<DialogId> {
        let to = resp.headers.to().ok()?;
        let from = resp.headers.from().ok()?;
        Some(DialogId {
            call_id: resp.headers.call_id().ok()?.to_string(),
            local_tag: from.tag().unwrap_or_default().to_string(),
            remote_tag: to.tag()?.to_string(),
        })
    }
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{};{}", self.call_id, self.local_tag, self.remote_tag)
    }
}

/// Early (after a provisional response with a To tag) or confirmed (after a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx: only BYE-less requests (or CANCEL of the INVITE) make sense yet.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Why a dialog could not be made from a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs is missing or does not parse.
    #[error("cannot form a dialog: {0}")]
    Header(&'static str),
    /// The response carries no To tag, so it cannot create a dialog.
    #[error("the response has no To tag")]
    NoRemoteTag,
}

/// The dialog state of one end (RFC 3261 12.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Our address with our tag (the From of requests we send).
    pub local: NameAddr,
    /// The peer's address with its tag (the To of requests we send).
    pub remote: NameAddr,
    /// CSeq of the last request we sent in the dialog.
    pub local_seq: u32,
    /// CSeq of the last request the peer sent; `None` until it sends one.
    pub remote_seq: Option<u32>,
    /// Where requests go: the peer's Contact.
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<NameAddr>,
    /// Our Contact.
    pub local_contact: NameAddr,
    /// Early or confirmed.
    pub state: DialogState,
}

fn contact_uri(headers: &crate::Headers) -> Option<Uri> {
    headers
        .contact()
        .ok()??
        .addresses()
        .first()
        .map(|a| a.uri.clone())
}

impl Dialog {
    /// The UAS side of a dialog created by `request` (normally an INVITE) when we answer it with
    /// our tag `local_tag` (RFC 3261 12.1.1). The dialog is early until [`confirm`]ed by the
    /// 2xx we send. `initial_seq` is the first CSeq we will use for our own requests minus one.
    ///
    /// [`confirm`]: Dialog::confirm
    pub fn uas(
        request: &Request,
        local_tag: &str,
        local_contact: NameAddr,
        initial_seq: u32,
    ) -> Result<Dialog, DialogError> {
        let h = &request.headers;
        let call_id = h.call_id().map_err(|_| DialogError::Header("Call-ID"))?;
        let remote = h.from().map_err(|_| DialogError::Header("From"))?;
        let mut local = h.to().map_err(|_| DialogError::Header("To"))?;
        local.set_tag(local_tag);
        let cseq = h.cseq().map_err(|_| DialogError::Header("CSeq"))?;
        let remote_target = contact_uri(h).ok_or(DialogError::Header("Contact"))?;
        let route_set = h
            .record_route()
            .map_err(|_| DialogError::Header("Record-Route"))?;
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: remote.tag().unwrap_or_default().to_string(),
            },
            local,
            remote,
            local_seq: initial_seq,
            remote_seq: Some(cseq.seq),
            remote_target,
            route_set,
            local_contact,
            state: DialogState::Early,
        })
    }

    /// The UAC side of a dialog created by `response` (a 1xx with a To tag or a 2xx) to our
    /// `request` (RFC 3261 12.1.2).
    pub fn uac(
        request: &Request,
        response: &Response,
        local_contact: NameAddr,
    ) -> Result<Dialog, DialogError> {
        let id = DialogId::of_response(response).ok_or(DialogError::NoRemoteTag)?;
        let rh = &request.headers;
        let local = rh.from().map_err(|_| DialogError::Header("From"))?;
        let remote = response
            .headers
            .to()
            .map_err(|_| DialogError::Header("To"))?;
        let cseq = rh.cseq().map_err(|_| DialogError::Header("CSeq"))?;
        // A 1xx may lack a Contact; the request URI stands in until one arrives.
        let remote_target = contact_uri(&response.headers).unwrap_or_else(|| request.uri.clone());
        let mut route_set = response
            .headers
            .record_route()
            .map_err(|_| DialogError::Header("Record-Route"))?;
        route_set.reverse();
        Ok(Dialog {
            id,
            local,
            remote,
            local_seq: cseq.seq,
            remote_seq: None,
            remote_target,
            route_set,
            local_contact,
            state: if response.status.is_success() {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
        })
    }

    /// The dialog is confirmed (a 2xx was sent or received).
    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// A new request inside the dialog (RFC 3261 12.2.1.1) with `via` on top. Every method but
    /// ACK and CANCEL takes the next local CSeq. Target-refresh methods carry our Contact.
    pub fn request(&mut self, method: Method, via: Via) -> Request {
        let seq = match method {
            Method::Ack | Method::Cancel => self.local_seq,
            _ => {
                self.local_seq = self.local_seq.wrapping_add(1);
                self.local_seq
            }
        };
        self.build(method, seq, via)
    }

    /// The ACK of a 2xx to the INVITE whose CSeq number was `invite_seq` (RFC 3261 13.2.2.4):
    /// sent outside any transaction, with a fresh branch in `via`.
    pub fn ack(&self, invite_seq: u32, via: Via) -> Request {
        self.build(Method::Ack, invite_seq, via)
    }

    fn build(&self, method: Method, seq: u32, via: Via) -> Request {
        // RFC 3261 12.2.1.1: loose routing puts the target in the Request-URI; a strict router
        // first in the set takes the Request-URI and the target goes last in Route.
        let strict = self
            .route_set
            .first()
            .and_then(|r| r.uri.as_sip())
            .is_some_and(|u| !u.is_loose_router());
        let (uri, routes): (Uri, Vec<String>) = if strict {
            let mut rest: Vec<String> = self.route_set[1..].iter().map(|r| r.to_string()).collect();
            rest.push(format!("<{}>", self.remote_target));
            (self.route_set[0].uri.clone(), rest)
        } else {
            (
                self.remote_target.clone(),
                self.route_set.iter().map(|r| r.to_string()).collect(),
            )
        };
        let mut r = Request::new(method.clone(), uri);
        r.headers.push(HeaderName::VIA, via.to_string());
        r.headers.push(HeaderName::MAX_FORWARDS, "70");
        for route in routes {
            r.headers.push(HeaderName::ROUTE, route);
        }
        r.headers.push(HeaderName::FROM, self.local.to_string());
        r.headers.push(HeaderName::TO, self.remote.to_string());
        r.headers.push(HeaderName::CALL_ID, self.id.call_id.clone());
        r.headers.push(HeaderName::CSEQ, format!("{seq} {method}"));
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Refer | Method::Subscribe | Method::Notify
        ) {
            r.headers
                .push(HeaderName::CONTACT, self.local_contact.to_string());
        }
        r
    }

    /// Checks a request the peer sent in this dialog (RFC 3261 12.2.2): a CSeq lower than the
    /// last one is answered 500; a target refresh moves the remote target. ACK and CANCEL
    /// reuse their INVITE's number and are not checked.
    pub fn on_request(&mut self, req: &Request) -> Result<(), Rejection> {
        let cseq: CSeq = req
            .headers
            .cseq()
            .map_err(|_| Rejection::bad_request("CSeq"))?;
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if let Some(last) = self.remote_seq
            && cseq.seq <= last
        {
            return Err(Rejection::new(
                StatusCode::SERVER_INTERNAL_ERROR,
                "CSeq out of order",
            ));
        }
        self.remote_seq = Some(cseq.seq);
        if matches!(req.method, Method::Invite | Method::Update)
            && let Some(target) = contact_uri(&req.headers)
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// Follows a response to a request we sent in this dialog: a 2xx confirms it, and a 2xx
    /// to a target refresh moves the remote target.
    pub fn on_response(&mut self, method: &Method, resp: &Response) {
        if !resp.status.is_success() {
            return;
        }
        self.state = DialogState::Confirmed;
        if matches!(method, Method::Invite | Method::Update)
            && let Some(target) = contact_uri(&resp.headers)
        {
            self.remote_target = target;
        }
    }

    /// A response to `req` (a request of this dialog) carrying our tag and Contact: what a UAS
    /// sends to answer in the dialog.
    pub fn response(&self, req: &Request, status: StatusCode, reason: &str) -> Response {
        let mut r = Response::for_request(req, status, reason);
        let mut to = self.local.clone();
        if let Ok(t) = req.headers.to() {
            // Keep what the peer wrote, add our tag.
            to = t;
            to.set_tag(self.id.local_tag.clone());
        }
        r.headers.set(HeaderName::TO, to.to_string());
        if req.method == Method::Invite && (status.is_success() || status.as_u16() > 100) {
            r.headers
                .push(HeaderName::CONTACT, self.local_contact.to_string());
        }
        if req.method == Method::Invite || req.method == Method::Update {
            for rr in req.headers.get_all(&HeaderName::RECORD_ROUTE) {
                r.headers.push(HeaderName::RECORD_ROUTE, rr);
            }
        }
        r
    }
}

/// A Via for a request we originate: our sent-by and a branch.
pub fn via(transport: crate::Transport, host: crate::Host, port: u16, branch: &str) -> Via {
    let mut v = Via::new(transport, host, Some(port), branch);
    v.params.push(Param::flag("rport"));
    v
}

/// What [`AnswerRetransmit::on_timeout`] asks of the user.
#[derive(Debug, Clone, PartialEq)]
pub enum RetransmitAction {
    /// Send this 2xx again to this peer.
    Send(Peer, Response),
    /// 64*T1 passed without an ACK: end the dialog (send BYE, RFC 3261 13.3.1.4).
    GiveUp,
}

/// Retransmission of a 2xx to INVITE until its ACK arrives (RFC 3261 13.3.1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRetransmit {
    peer: Peer,
    response: Response,
    interval: Duration,
    t2: Duration,
    next: Option<MonoTime>,
    give_up: MonoTime,
}

impl AnswerRetransmit {
    /// Starts after the 2xx was first sent at `now`. On a reliable transport it is not sent
    /// again, but the ACK is still awaited for 64*T1.
    pub fn new(now: MonoTime, peer: Peer, response: Response, t1: Duration, t2: Duration) -> Self {
        let next = (!peer.transport.is_reliable()).then_some(now + t1);
        AnswerRetransmit {
            peer,
            response,
            interval: t1,
            t2,
            next,
            give_up: now + t1 * 64,
        }
    }

    /// When to call [`on_timeout`](Self::on_timeout).
    pub fn poll_timeout(&self) -> MonoTime {
        self.next.map_or(self.give_up, |n| n.min(self.give_up))
    }

    /// Time passed: what to do now, if anything.
    pub fn on_timeout(&mut self, now: MonoTime) -> Option<RetransmitAction> {
        if now >= self.give_up {
            self.next = None;
            return Some(RetransmitAction::GiveUp);
        }
        match self.next {
            Some(at) if now >= at => {
                self.interval = (self.interval * 2).min(self.t2);
                self.next = Some(now + self.interval);
                Some(RetransmitAction::Send(
                    self.peer.clone(),
                    self.response.clone(),
                ))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Transport};

    fn parse_req(s: &str) -> Request {
        match Message::parse(s.replace('\n', "\r\n").as_bytes()).expect("parses") {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    fn parse_resp(s: &str) -> Response {
        match Message::parse(s.replace('\n', "\r\n").as_bytes()).expect("parses") {
            Message::Response(r) => r,
            Message::Request(_) => panic!("not a response"),
        }
    }

    fn invite() -> Request {
        parse_req(
            "INVITE sip:1000@sb.example SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.net>;tag=a1
To: <sip:1000@sb.example>
Call-ID: c1@192.0.2.1
CSeq: 10 INVITE
Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>
Contact: <sip:alice@192.0.2.1:5060>
Content-Length: 0

",
        )
    }

    fn contact() -> NameAddr {
        "<sip:sb@127.0.0.1:5060>".parse().expect("contact")
    }

    fn top_via() -> Via {
        via(
            Transport::Udp,
            "127.0.0.1".parse().expect("host"),
            5060,
            "z9hG4bKx",
        )
    }

    #[test]
    fn uas_dialog_from_invite_builds_bye_with_route_set_and_tags() {
        let mut d = Dialog::uas(&invite(), "s1", contact(), 100).expect("dialog");
        assert_eq!(d.id.remote_tag, "a1");
        assert_eq!(d.id.local_tag, "s1");
        assert_eq!(d.state, DialogState::Early);
        d.confirm();
        let bye = d.request(Method::Bye, top_via());
        assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.1:5060");
        let routes: Vec<&str> = bye.headers.get_all(&HeaderName::ROUTE).collect();
        assert_eq!(routes, vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        assert_eq!(bye.headers.from().expect("from").tag(), Some("s1"));
        assert_eq!(bye.headers.to().expect("to").tag(), Some("a1"));
        assert_eq!(bye.headers.cseq().expect("cseq").seq, 101);
        assert_eq!(
            DialogId::of_request(&invite_in_dialog(&d)).expect("id"),
            DialogId {
                call_id: "c1@192.0.2.1".into(),
                local_tag: "s1".into(),
                remote_tag: "a1".into()
            }
        );
    }

    fn invite_in_dialog(d: &Dialog) -> Request {
        let mut r = invite();
        r.headers.set(
            HeaderName::TO,
            format!("<sip:1000@sb.example>;tag={}", d.id.local_tag),
        );
        r.headers.set(HeaderName::CSEQ, "11 INVITE");
        r.headers
            .set(HeaderName::CONTACT, "<sip:alice@198.51.100.7:5070>");
        r
    }

    #[test]
    fn uas_checks_cseq_order_and_follows_target_refresh() {
        let mut d = Dialog::uas(&invite(), "s1", contact(), 1).expect("dialog");
        let reinvite = invite_in_dialog(&d);
        assert_eq!(d.on_request(&reinvite), Ok(()));
        assert_eq!(d.remote_target.to_string(), "sip:alice@198.51.100.7:5070");
        // The same CSeq again (or lower) is out of order: 500.
        let err = d.on_request(&reinvite).expect_err("old cseq");
        assert_eq!(err.status, StatusCode::SERVER_INTERNAL_ERROR);
        let mut ack = reinvite.clone();
        ack.method = Method::Ack;
        ack.headers.set(HeaderName::CSEQ, "11 ACK");
        assert_eq!(d.on_request(&ack), Ok(()));
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_invite_cseq() {
        let req = invite();
        let resp = parse_resp(
            "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1
From: \"Alice\" <sip:alice@example.net>;tag=a1
To: <sip:1000@sb.example>;tag=b7
Call-ID: c1@192.0.2.1
CSeq: 10 INVITE
Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>
Contact: <sip:agent@10.0.0.5:5062>
Content-Length: 0

",
        );
        let d = Dialog::uac(&req, &resp, contact()).expect("dialog");
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(d.id.local_tag, "a1");
        assert_eq!(d.id.remote_tag, "b7");
        let ack = d.ack(10, top_via());
        assert_eq!(ack.uri.to_string(), "sip:agent@10.0.0.5:5062");
        assert_eq!(ack.headers.cseq().expect("cseq").to_string(), "10 ACK");
        let routes: Vec<&str> = ack.headers.get_all(&HeaderName::ROUTE).collect();
        assert_eq!(routes, vec!["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
        // A 1xx without a To tag makes no dialog.
        let mut trying = resp.clone();
        trying.headers.set(HeaderName::TO, "<sip:1000@sb.example>");
        assert_eq!(
            Dialog::uac(&req, &trying, contact()),
            Err(DialogError::NoRemoteTag)
        );
    }

    #[test]
    fn forked_answers_are_different_dialogs() {
        let base = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1
From: <sip:alice@example.net>;tag=a1
To: <sip:1000@sb.example>;tag=TAG
Call-ID: c1@192.0.2.1
CSeq: 10 INVITE
Contact: <sip:x@10.0.0.5>
Content-Length: 0

";
        let one = DialogId::of_response(&parse_resp(&base.replace("TAG", "f1"))).expect("id");
        let two = DialogId::of_response(&parse_resp(&base.replace("TAG", "f2"))).expect("id");
        assert_ne!(one, two);
        assert_eq!(one.call_id, two.call_id);
    }

    #[test]
    fn strict_router_takes_the_request_uri() {
        let mut req = invite();
        req.headers
            .set(HeaderName::RECORD_ROUTE, "<sip:strict.example>");
        let mut d = Dialog::uas(&req, "s1", contact(), 0).expect("dialog");
        let bye = d.request(Method::Bye, top_via());
        assert_eq!(bye.uri.to_string(), "sip:strict.example");
        let routes: Vec<&str> = bye.headers.get_all(&HeaderName::ROUTE).collect();
        assert_eq!(routes, vec!["<sip:alice@192.0.2.1:5060>"]);
    }

    #[test]
    fn answer_retransmits_doubling_to_t2_then_gives_up() {
        let t1 = Duration::from_millis(500);
        let t2 = Duration::from_secs(4);
        let peer = Peer {
            transport: Transport::Udp,
            addr: "192.0.2.1:5060".parse().expect("addr"),
        };
        let resp = Response::new(StatusCode::OK, "OK");
        let start = MonoTime::ZERO;
        let mut r = AnswerRetransmit::new(start, peer.clone(), resp, t1, t2);
        let mut sends = Vec::new();
        loop {
            let at = r.poll_timeout();
            match r.on_timeout(at) {
                Some(RetransmitAction::Send(..)) => sends.push(at.saturating_since(start)),
                Some(RetransmitAction::GiveUp) => {
                    assert_eq!(at.saturating_since(start), t1 * 64);
                    break;
                }
                None => panic!("woken for nothing"),
            }
        }
        let ms: Vec<u128> = sends.iter().map(|d| d.as_millis()).collect();
        assert_eq!(&ms[..5], &[500, 1500, 3500, 7500, 11500]);
        assert!(ms.windows(2).all(|w| w[1] - w[0] <= 4000));
        // Reliable transports are not retransmitted, only timed out.
        let tcp = Peer {
            transport: Transport::Tcp,
            ..peer
        };
        let mut r = AnswerRetransmit::new(start, tcp, Response::new(StatusCode::OK, "OK"), t1, t2);
        assert_eq!(r.poll_timeout(), start + t1 * 64);
        assert_eq!(
            r.on_timeout(start + t1 * 64),
            Some(RetransmitAction::GiveUp)
        );
    }
}
