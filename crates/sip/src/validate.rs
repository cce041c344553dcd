//! What a UAS does with a request before acting on it (RFC 3261 8.2), what a UAC drops
//! (RFC 3261 8.1.3.3), and the one-call triage of an incoming datagram.

use std::fmt;

use crate::parse::{Failure, parse_datagram};
use crate::{
    Header, HeaderName, Limits, MediaType, Message, Method, NameAddr, ParseError, Request,
    Response, StatusCode, Version,
};

/// Why a request is refused: the response status, reason phrase and the extra headers the
/// RFC asks for (Unsupported with 420, Accept with 415).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code of the response to send.
    pub status: StatusCode,
    /// Reason phrase, specific enough to debug with.
    pub reason: String,
    /// Headers to add to the response.
    pub headers: Vec<Header>,
}

impl Rejection {
    /// A rejection with no extra headers.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// `400 Bad Request (<detail>)`.
    pub fn bad_request(detail: impl fmt::Display) -> Self {
        Rejection::new(StatusCode::BAD_REQUEST, format!("Bad Request ({detail})"))
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name,
            value: value.into(),
        });
        self
    }
}

/// What this UAS understands; drives [`UasPolicy::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UasPolicy {
    /// Request-URI schemes served, lower case (others get 416).
    pub uri_schemes: Vec<String>,
    /// Option tags understood in Require (others get 420).
    pub extensions: Vec<String>,
    /// Body types understood (others get 415); also the Accept of that 415.
    pub content_types: Vec<MediaType>,
    /// Authorization schemes understood (others get 400).
    pub auth_schemes: Vec<String>,
}

impl Default for UasPolicy {
    /// `sip`, `sips`, `tel`; no extensions yet; SDP, multipart/mixed, text/plain,
    /// message/sipfrag and DTMF relay bodies; Digest.
    fn default() -> Self {
        UasPolicy {
            uri_schemes: vec!["sip".into(), "sips".into(), "tel".into()],
            extensions: Vec::new(),
            content_types: vec![
                MediaType::new("application", "sdp"),
                MediaType::new("multipart", "mixed"),
                MediaType::new("text", "plain"),
                MediaType::new("message", "sipfrag"),
                MediaType::new("application", "dtmf-relay"),
            ],
            auth_schemes: vec!["Digest".into()],
        }
    }
}

fn header_problem(e: ParseError) -> Rejection {
    Rejection::bad_request(e)
}

impl UasPolicy {
    /// The UAS checks of RFC 3261 8.2 that need no state, in the RFC's order after the
    /// basics: version (505), mandatory and single-value headers (400), CSeq method (400),
    /// Request-URI scheme (416) and headers (400), Require (420), Authorization scheme (400),
    /// Content-Type (415), and Accept of an INVITE (406).
    ///
    /// Not checked here: the method (405/501 is the application's call), merged requests
    /// (482, needs transaction state), Max-Forwards (an endpoint ignores 0, RFC 4475 3.3.11).
    pub fn validate(&self, req: &Request) -> Result<(), Rejection> {
        if req.version != Version::SIP_2_0 {
            return Err(Rejection::new(
                StatusCode::VERSION_NOT_SUPPORTED,
                "Version Not Supported",
            ));
        }
        // RFC 3261 8.1.1 mandatory headers; Max-Forwards is left out so RFC 2543 requests
        // (RFC 4475 3.4.1) still work.
        let h = &req.headers;
        if h.count(&HeaderName::VIA) == 0 {
            return Err(Rejection::bad_request("missing Via header"));
        }
        h.from().map_err(header_problem)?;
        h.to().map_err(header_problem)?;
        h.call_id().map_err(header_problem)?;
        let cseq = h.cseq().map_err(header_problem)?;
        h.max_forwards().map_err(header_problem)?;
        h.content_length().map_err(header_problem)?;
        let content_type = h.content_type().map_err(header_problem)?;
        h.expires().map_err(header_problem)?;
        if cseq.method != req.method {
            return Err(Rejection::bad_request(
                "CSeq method does not match the Request-Line",
            ));
        }
        // RFC 3261 8.2.2.1.
        if !self
            .uri_schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&req.uri.scheme()))
        {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_URI_SCHEME,
                "Unsupported URI Scheme",
            ));
        }
        // RFC 3261 19.1.1 table: no headers in a Request-URI (RFC 4475 3.1.2.11).
        if req.uri.as_sip().is_some_and(|u| !u.headers.is_empty()) {
            return Err(Rejection::bad_request("headers in the Request-URI"));
        }
        // RFC 3261 8.2.2.3; Require is ignored on CANCEL and on ACK.
        if req.method != Method::Cancel && req.method != Method::Ack {
            let unknown: Vec<String> = h
                .require()
                .map_err(header_problem)?
                .into_iter()
                .filter(|t| !self.extensions.iter().any(|e| e.eq_ignore_ascii_case(t)))
                .collect();
            if !unknown.is_empty() {
                return Err(Rejection::new(StatusCode::BAD_EXTENSION, "Bad Extension")
                    .with_header(HeaderName::UNSUPPORTED, unknown.join(", ")));
            }
        }
        // RFC 4475 3.3.7 allows 401 or 400; a 401 needs a challenge, which is the digest
        // layer's to make, so the stateless answer is 400.
        for auth in h.authorization().map_err(header_problem)? {
            if !self
                .auth_schemes
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&auth.scheme))
            {
                return Err(Rejection::bad_request(format!(
                    "unsupported Authorization scheme {}",
                    auth.scheme
                )));
            }
        }
        // RFC 3261 8.2.3.
        if let Some(ct) = content_type
            && !req.body.is_empty()
            && !self.content_types.iter().any(|t| t.covers(&ct))
        {
            let accept: Vec<String> = self.content_types.iter().map(|t| t.to_string()).collect();
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
            )
            .with_header(HeaderName::ACCEPT, accept.join(", ")));
        }
        // RFC 3261 21.4.7 and RFC 4475 3.3.15: an INVITE whose Accept rules out SDP cannot
        // get a session description back.
        if req.method == Method::Invite
            && let Some(accept) = h.accept().map_err(header_problem)?
        {
            let sdp = MediaType::new("application", "sdp");
            if !accept.iter().any(|r| r.covers(&sdp)) {
                return Err(Rejection::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "Not Acceptable (Accept rules out application/sdp)",
                ));
            }
        }
        Ok(())
    }
}

/// [`UasPolicy::validate`] with the default policy.
pub fn validate_request(req: &Request) -> Result<(), Rejection> {
    UasPolicy::default().validate(req)
}

/// Why a message is dropped without an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Discard {
    /// It does not parse, and no response can be formed (a response, an unreadable
    /// Request-Line, no usable Via, an ACK).
    Malformed(ParseError),
    /// An ACK that fails validation: an ACK is never answered.
    InvalidAck(Rejection),
    /// A response with a version other than SIP/2.0.
    Version(Version),
    /// A response whose Via names a broadcast address (RFC 4475 3.3.10).
    BroadcastVia,
    /// A response with other than exactly one Via: not for us (RFC 3261 8.1.3.3).
    ViaCount(usize),
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discard::Malformed(e) => write!(f, "malformed: {e}"),
            Discard::InvalidAck(r) => write!(f, "invalid ACK: {} {}", r.status, r.reason),
            Discard::Version(v) => write!(f, "response of version {v}"),
            Discard::BroadcastVia => f.write_str("response with a broadcast Via"),
            Discard::ViaCount(n) => write!(f, "response with {n} Via values"),
        }
    }
}

/// The checks a UAC makes on a response before the transaction layer sees it: version,
/// no broadcast sent-by, exactly one Via (RFC 3261 8.1.3.3), and the headers transaction
/// matching needs (CSeq, Call-ID, From, To).
pub fn validate_response(resp: &Response) -> Result<(), Discard> {
    if resp.version != Version::SIP_2_0 {
        return Err(Discard::Version(resp.version));
    }
    let vias = resp.headers.via().map_err(Discard::Malformed)?;
    if vias.iter().any(|v| {
        v.host
            .ip()
            .is_some_and(|ip| matches!(ip, std::net::IpAddr::V4(a) if a.is_broadcast()))
    }) {
        return Err(Discard::BroadcastVia);
    }
    if vias.len() != 1 {
        return Err(Discard::ViaCount(vias.len()));
    }
    let h = &resp.headers;
    h.cseq().map_err(Discard::Malformed)?;
    h.call_id().map_err(Discard::Malformed)?;
    h.from().map_err(Discard::Malformed)?;
    h.to().map_err(Discard::Malformed)?;
    Ok(())
}

/// A To tag derived from the request (FNV-1a of Call-ID, From tag, top branch and CSeq), so
/// a retransmitted request is refused with the same tag. RFC 3261 8.2.6.2 lets a stateless
/// UAS do this; dialogs use random tags from the engine's RNG instead.
fn derived_tag(req: &Request) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        req.headers.get(&HeaderName::CALL_ID).unwrap_or(""),
        req.headers.get(&HeaderName::FROM).unwrap_or(""),
        req.headers.get(&HeaderName::VIA).unwrap_or(""),
        req.headers.get(&HeaderName::CSEQ).unwrap_or(""),
    ];
    for p in parts {
        for b in p.bytes().chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The response that carries `rejection` back to the sender of `req`: Via, From, To,
/// Call-ID and CSeq copied, a To tag added when there is none (not on 100), the rejection's
/// headers appended, and an empty body.
pub fn response_for(req: &Request, rejection: &Rejection) -> Response {
    let mut resp = Response::for_request(req, rejection.status, rejection.reason.clone());
    if rejection.status != StatusCode::TRYING
        && let Some(Ok(mut to)) = req.headers.get(&HeaderName::TO).map(str::parse::<NameAddr>)
        && to.tag().is_none()
    {
        to.set_tag(derived_tag(req));
        resp.headers.set(HeaderName::TO, to.to_string());
    }
    for h in &rejection.headers {
        resp.headers.push(h.name.clone(), h.value.clone());
    }
    resp
}

/// What to do with an incoming message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Hand it to the transaction layer.
    Accept(Message),
    /// Send this response to the request's sender and go no further.
    Reply(Response),
    /// Drop it (count it, maybe log it).
    Drop(Discard),
}

/// Parses a datagram and decides its fate: malformed requests that can still be answered
/// get a 400, requests failing `policy` get its rejection, bad responses and ACKs are
/// dropped, the rest is accepted.
pub fn triage_datagram(bytes: &[u8], policy: &UasPolicy) -> Verdict {
    match parse_datagram(bytes, &Limits::default()) {
        Ok(m) => triage_message(m, policy),
        Err(Failure {
            error,
            request: Some(req),
        }) if req.method != Method::Ack && req.headers.top_via().is_ok() => {
            Verdict::Reply(response_for(&req, &Rejection::bad_request(error)))
        }
        Err(Failure { error, .. }) => Verdict::Drop(Discard::Malformed(error)),
    }
}

/// Decides the fate of a message that parsed (from a datagram or a
/// [`StreamParser`](crate::StreamParser)); see [`triage_datagram`].
pub fn triage_message(message: Message, policy: &UasPolicy) -> Verdict {
    match message {
        Message::Request(req) => match policy.validate(&req) {
            Ok(()) => Verdict::Accept(Message::Request(req)),
            Err(rejection) if req.method == Method::Ack => {
                Verdict::Drop(Discard::InvalidAck(rejection))
            }
            Err(_) if req.headers.top_via().is_err() => {
                Verdict::Drop(Discard::Malformed(ParseError::MissingHeader("Via")))
            }
            Err(rejection) => Verdict::Reply(response_for(&req, &rejection)),
        },
        Message::Response(resp) => match validate_response(&resp) {
            Ok(()) => Verdict::Accept(Message::Response(resp)),
            Err(d) => Verdict::Drop(d),
        },
    }
}
