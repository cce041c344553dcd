//! Requests, responses and their serialization.

use std::fmt;

use crate::{HeaderName, Headers, Method, ParseError, Uri};

/// A SIP protocol version (`SIP/2.0`). Other versions parse so a UAS can answer 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl Version {
    /// SIP/2.0, the only version this crate speaks.
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };

    /// Parses `SIP/<digits>.<digits>` ("SIP" in any case, RFC 3261 7.1).
    pub(crate) fn parse(s: &str) -> Option<Version> {
        let rest = s.get(..4).filter(|p| p.eq_ignore_ascii_case("SIP/"))?;
        let (major, minor) = s.get(rest.len()..)?.split_once('.')?;
        let num = |d: &str| {
            crate::scan::parse_digits(d)
                .filter(|_| d.len() <= 5)
                .and_then(|v| u16::try_from(v).ok())
        };
        Some(Version {
            major: num(major)?,
            minor: num(minor)?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}.{}", self.major, self.minor)
    }
}

/// A response status code, always in 100..=699 (RFC 3261 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

macro_rules! codes {
    ($($konst:ident = $n:literal, $reason:literal;)*) => {
        impl StatusCode {
            $(
                #[doc = concat!("`", stringify!($n), " ", $reason, "`.")]
                pub const $konst: StatusCode = StatusCode($n);
            )*

            /// The reason phrase RFC 3261 suggests for this code (`""` when it names none).
            pub fn canonical_reason(self) -> &'static str {
                match self.0 {
                    $($n => $reason,)*
                    _ => "",
                }
            }
        }
    };
}

codes! {
    TRYING = 100, "Trying";
    RINGING = 180, "Ringing";
    SESSION_PROGRESS = 183, "Session Progress";
    OK = 200, "OK";
    ACCEPTED = 202, "Accepted";
    MOVED_TEMPORARILY = 302, "Moved Temporarily";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    NOT_ACCEPTABLE = 406, "Not Acceptable";
    PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required";
    REQUEST_TIMEOUT = 408, "Request Timeout";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    UNSUPPORTED_URI_SCHEME = 416, "Unsupported URI Scheme";
    BAD_EXTENSION = 420, "Bad Extension";
    INTERVAL_TOO_BRIEF = 423, "Interval Too Brief";
    TEMPORARILY_UNAVAILABLE = 480, "Temporarily Unavailable";
    CALL_DOES_NOT_EXIST = 481, "Call/Transaction Does Not Exist";
    LOOP_DETECTED = 482, "Loop Detected";
    TOO_MANY_HOPS = 483, "Too Many Hops";
    BUSY_HERE = 486, "Busy Here";
    REQUEST_TERMINATED = 487, "Request Terminated";
    NOT_ACCEPTABLE_HERE = 488, "Not Acceptable Here";
    SERVER_INTERNAL_ERROR = 500, "Server Internal Error";
    NOT_IMPLEMENTED = 501, "Not Implemented";
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    VERSION_NOT_SUPPORTED = 505, "Version Not Supported";
    DECLINE = 603, "Decline";
}

impl StatusCode {
    /// The code, if it is in 100..=699.
    pub fn new(code: u16) -> Option<StatusCode> {
        (100..=699).contains(&code).then_some(StatusCode(code))
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 1xx.
    pub fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 2xx..6xx.
    pub fn is_final(self) -> bool {
        self.0 >= 200
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Method of the Request-Line.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Version of the Request-Line.
    pub version: Version,
    /// Header fields in order.
    pub headers: Headers,
    /// Body octets (exactly Content-Length of them when parsed).
    pub body: Vec<u8>,
}

impl Request {
    /// A SIP/2.0 request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            version: Version::SIP_2_0,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The wire form; Content-Length is written from the body's length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} {}", self.method, self.uri, self.version);
        serialize(&start, &self.headers, &self.body)
    }
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Version of the Status-Line.
    pub version: Version,
    /// Status code.
    pub status: StatusCode,
    /// Reason phrase (any UTF-8, may be empty).
    pub reason: String,
    /// Header fields in order.
    pub headers: Headers,
    /// Body octets.
    pub body: Vec<u8>,
}

impl Response {
    /// A SIP/2.0 response with no headers and no body.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Response {
            version: Version::SIP_2_0,
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` with Via, From, To, Call-ID and CSeq copied (RFC 3261 8.2.6.2)
    /// and no To tag added; the first line of each single-value header is used.
    pub fn for_request(request: &Request, status: StatusCode, reason: impl Into<String>) -> Self {
        let mut r = Response::new(status, reason);
        for h in request.headers.iter() {
            if h.name == HeaderName::VIA {
                r.headers.push(h.name.clone(), h.value.clone());
            }
        }
        for name in [
            HeaderName::FROM,
            HeaderName::TO,
            HeaderName::CALL_ID,
            HeaderName::CSEQ,
        ] {
            if let Some(v) = request.headers.get(&name) {
                r.headers.push(name, v);
            }
        }
        r
    }

    /// The wire form; Content-Length is written from the body's length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} {}", self.version, self.status, self.reason);
        serialize(&start, &self.headers, &self.body)
    }
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// Header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    /// Body octets.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// The wire form; Content-Length is written from the body's length.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    /// The request, if it is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if it is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Request(_) => None,
            Message::Response(r) => Some(r),
        }
    }

    /// Parses a datagram; see [`parse`](crate::parse).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        crate::parse(bytes)
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

/// Writes a message. The first Content-Length line gets the body's length, later ones are
/// dropped, and one is appended if there was none (RFC 3261 18.3 wants it on streams; it
/// never hurts on datagrams). CR and LF inside values become spaces so a value set by hand
/// cannot inject header lines.
fn serialize(start: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(start.len() + 64 * headers.len() + body.len() + 32);
    push_clean(&mut out, start);
    out.extend_from_slice(b"\r\n");
    let mut wrote_length = false;
    for h in headers {
        if h.name == HeaderName::CONTENT_LENGTH {
            if wrote_length {
                continue;
            }
            wrote_length = true;
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            continue;
        }
        push_clean(&mut out, h.name.as_str());
        out.extend_from_slice(b": ");
        push_clean(&mut out, &h.value);
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn push_clean(out: &mut Vec<u8>, s: &str) {
    out.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(Version::parse("SIP/2.0"), Some(Version::SIP_2_0));
        assert_eq!(
            Version::parse("sip/7.0"),
            Some(Version { major: 7, minor: 0 })
        );
        assert_eq!(Version::parse("SIP/2"), None);
        assert_eq!(Version::parse("SIP/2.0 "), None);
        assert_eq!(Version::parse("HTTP/1.1"), None);
    }

    #[test]
    fn status_codes() {
        assert_eq!(StatusCode::new(99), None);
        assert_eq!(StatusCode::new(700), None);
        assert_eq!(
            StatusCode::BAD_EXTENSION.canonical_reason(),
            "Bad Extension"
        );
        assert!(StatusCode::RINGING.is_provisional());
        assert!(StatusCode::OK.is_success() && StatusCode::OK.is_final());
    }

    #[test]
    fn content_length_is_rewritten() {
        let mut r = Request::new(Method::Options, "sip:a@b".parse().unwrap());
        r.headers.push("l", "99");
        r.headers.push("Content-Length", "7");
        r.headers.push("Subject", "evil\r\nVia: x");
        r.body = b"hello".to_vec();
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            text,
            "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\nSubject: evil  Via: x\r\n\r\nhello"
        );
    }
}
