//! Typed header field values: addresses, Via, CSeq, media types, credentials.
//!
//! Each type parses from the unfolded text of one header line (`FromStr`, or a list parser
//! used by [`Headers`](crate::Headers)) and prints back in a canonical form (`Display`).

use std::fmt;
use std::str::FromStr;

use crate::scan::{Scanner, all, is_token, is_ws, quote};
use crate::uri::{Param, find_param, parse_hostport, parse_port};
use crate::{Host, Method, ParseError, Uri};

pub(crate) type R<T> = Result<T, &'static str>;

/// One header parameter: `SEMI` already consumed; `name [EQUAL (token / host / quoted-string)]`.
pub(crate) fn header_param(sc: &mut Scanner<'_>) -> R<Param> {
    let name = sc.token().ok_or("bad parameter name")?;
    let value = if sc.eat_sws(b'=') {
        let v = if sc.peek() == Some(b'"') {
            sc.quoted_raw()?
        } else {
            sc.take_while(|b| is_token(b) || b"[]:".contains(&b))
        };
        if v.is_empty() {
            return Err("empty parameter value");
        }
        Some(v.to_string())
    } else {
        None
    };
    Ok(Param {
        name: name.to_string(),
        value,
    })
}

/// `*( SEMI param )`.
pub(crate) fn header_params(sc: &mut Scanner<'_>) -> R<Vec<Param>> {
    let mut params = Vec::new();
    while sc.eat_sws(b';') {
        params.push(header_param(sc)?);
    }
    Ok(params)
}

/// After an item of a comma list: true if a comma follows (and was consumed), false at the
/// end, an error on anything else.
pub(crate) fn list_next(sc: &mut Scanner<'_>) -> R<bool> {
    sc.skip_ws();
    if sc.eat(b',') {
        sc.skip_ws();
        Ok(true)
    } else if sc.is_end() {
        Ok(false)
    } else {
        Err("unexpected text after value")
    }
}

fn expect_end(sc: &mut Scanner<'_>) -> R<()> {
    sc.skip_ws();
    if sc.is_end() {
        Ok(())
    } else {
        Err("unexpected text after value")
    }
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for p in params {
        write!(f, ";{p}")?;
    }
    Ok(())
}

/// An address with optional display name and header parameters: From, To, Contact, Route,
/// Record-Route, Reply-To (RFC 3261 20, `name-addr` / `addr-spec`).
#[derive(Debug, Clone, PartialEq)]
pub struct NameAddr {
    /// Display name with quotes and escapes removed.
    pub display_name: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, ...), values as written.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// An address with no display name and no parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Vec::new(),
        }
    }

    /// Sets the display name.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Appends a header parameter.
    pub fn with_param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// The header parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter (From/To, RFC 3261 19.3).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|p| p.value.as_deref())
    }

    /// Sets or replaces the `tag` parameter.
    pub fn set_tag(&mut self, tag: impl Into<String>) {
        let tag = tag.into();
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case("tag"))
        {
            Some(p) => p.value = Some(tag),
            None => self.params.push(Param::new("tag", tag)),
        }
    }

    /// Parses one address at the cursor. `angle_required` for Route/Record-Route; `in_list`
    /// makes a comma end a bare `addr-spec`.
    pub(crate) fn parse_at(sc: &mut Scanner<'_>, angle_required: bool) -> R<NameAddr> {
        sc.skip_ws();
        let start = sc.pos();
        let mut display_name = None;
        let mut bracketed = false;
        if sc.peek() == Some(b'"') {
            display_name = Some(sc.quoted_string()?);
            sc.skip_ws();
            if !sc.eat(b'<') {
                return Err("expected '<' after the display name");
            }
            bracketed = true;
        } else {
            // display-name = *(token LWS): try it, fall back to a bare addr-spec.
            let mut words = Vec::new();
            loop {
                let t = sc.take_while(is_token);
                if t.is_empty() {
                    break;
                }
                words.push(t);
                if !sc.skip_ws() {
                    break;
                }
            }
            if sc.eat(b'<') {
                bracketed = true;
                if !words.is_empty() {
                    display_name = Some(words.join(" "));
                }
            } else {
                sc.set_pos(start);
            }
        }
        let uri = if bracketed {
            // RFC 3261 25.1: LAQUOT = SWS "<", RAQUOT = ">" SWS: no whitespace inside.
            let text = sc.take_while(|b| b != b'>' && !is_ws(b));
            if !sc.eat(b'>') {
                return Err("'<' without '>' or whitespace inside '<...>'");
            }
            text.parse::<Uri>().map_err(|_| "bad URI")?
        } else {
            if angle_required {
                return Err("address must be enclosed in '<...>'");
            }
            let text = sc.take_while(|b| !is_ws(b) && b != b';' && b != b',');
            // RFC 3261 20: a URI with a comma, question mark or semicolon needs '<...>'.
            if text.contains('?') {
                return Err("URI with '?' must be enclosed in '<...>'");
            }
            text.parse::<Uri>().map_err(|_| "bad URI")?
        };
        let params = header_params(sc)?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// Parses a comma-separated list of addresses.
    pub(crate) fn parse_list(value: &str, angle_required: bool) -> R<Vec<NameAddr>> {
        let mut sc = Scanner::new(value);
        let mut out = Vec::new();
        loop {
            out.push(NameAddr::parse_at(&mut sc, angle_required)?);
            if !list_next(&mut sc)? {
                return Ok(out);
            }
        }
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut sc = Scanner::new(s);
        let na = NameAddr::parse_at(&mut sc, false).map_err(ParseError::InvalidValue)?;
        expect_end(&mut sc).map_err(ParseError::InvalidValue)?;
        Ok(na)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// The value of the Contact header: `*` or addresses (RFC 3261 20.10).
#[derive(Debug, Clone, PartialEq)]
pub enum Contacts {
    /// `Contact: *` (REGISTER: remove all bindings).
    Wildcard,
    /// The addresses of all Contact lines in order.
    List(Vec<NameAddr>),
}

impl Contacts {
    /// The addresses (empty for the wildcard).
    pub fn addresses(&self) -> &[NameAddr] {
        match self {
            Contacts::Wildcard => &[],
            Contacts::List(l) => l,
        }
    }
}

/// A transport named in a Via header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other token, kept as written.
    Other(String),
}

impl Transport {
    /// Reliable transports get no retransmissions from the transaction layer (RFC 3261 17).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp | Transport::Other(_))
    }

    fn from_token(t: &str) -> Transport {
        match t.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "SCTP" => Transport::Sctp,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            _ => Transport::Other(t.to_string()),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t,
        })
    }
}

/// The branch magic cookie of RFC 3261 8.1.1.7.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via header value (RFC 3261 20.42).
#[derive(Debug, Clone, PartialEq)]
pub struct Via {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: String,
    /// Transport token.
    pub transport: Transport,
    /// sent-by host.
    pub host: Host,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`, others) as written.
    pub params: Vec<Param>,
}

impl Via {
    /// `SIP/2.0/<transport> host[:port];branch=<branch>`.
    pub fn new(transport: Transport, host: Host, port: Option<u16>, branch: &str) -> Self {
        Via {
            protocol: "SIP/2.0".into(),
            transport,
            host,
            port,
            params: vec![Param::new("branch", branch)],
        }
    }

    /// The parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }

    /// The branch starts with the magic cookie and has something after it, so the transaction
    /// can be matched by branch (RFC 3261 17.2.3); otherwise use RFC 2543 matching.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(|p| p.value.as_deref())
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|p| p.value.as_deref().and_then(|v| v.parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.param("maddr").and_then(|p| p.value.as_deref())
    }

    /// The sent-by as `host[:port]`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    fn parse_at(sc: &mut Scanner<'_>) -> R<Via> {
        sc.skip_ws();
        let name = sc.token().ok_or("bad protocol name")?;
        if !sc.eat_sws(b'/') {
            return Err("expected '/' after the protocol name");
        }
        let version = sc.token().ok_or("bad protocol version")?;
        if !sc.eat_sws(b'/') {
            return Err("expected '/' after the protocol version");
        }
        let transport = sc.token().ok_or("bad transport")?;
        if !sc.skip_ws() {
            return Err("expected whitespace before sent-by");
        }
        let host_text = if sc.peek() == Some(b'[') {
            let start = sc.pos();
            sc.take_while(|b| b != b']');
            if !sc.eat(b']') {
                return Err("unterminated IPv6 reference");
            }
            sc.since(start)
        } else {
            sc.take_while(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        };
        let (host, _) = parse_hostport(host_text).map_err(|_| "bad sent-by host")?;
        let port = if sc.eat_sws(b':') {
            Some(
                parse_port(sc.take_while(|b| b.is_ascii_digit()))
                    .map_err(|_| "bad sent-by port")?,
            )
        } else {
            None
        };
        let params = header_params(sc)?;
        let via = Via {
            protocol: format!("{name}/{version}"),
            transport: Transport::from_token(transport),
            host,
            port,
            params,
        };
        if let Some(p) = via.param("received") {
            let v = p.value.as_deref().unwrap_or("");
            let v = v.trim_start_matches('[').trim_end_matches(']');
            if v.parse::<std::net::IpAddr>().is_err() {
                return Err("received is not an IP address");
            }
        }
        if let Some(p) = via.param("rport")
            && let Some(v) = &p.value
            && parse_port(v).is_err()
        {
            return Err("bad rport");
        }
        if let Some(p) = via.param("ttl")
            && p.value
                .as_deref()
                .and_then(crate::scan::parse_digits)
                .is_none_or(|v| v > 255)
        {
            return Err("bad ttl");
        }
        if via.param("branch").is_some_and(|p| p.value.is_none()) {
            return Err("branch without value");
        }
        Ok(via)
    }

    /// Parses a comma-separated list of Via values.
    pub(crate) fn parse_list(value: &str) -> R<Vec<Via>> {
        let mut sc = Scanner::new(value);
        let mut out = Vec::new();
        loop {
            out.push(Via::parse_at(&mut sc)?);
            if !list_next(&mut sc)? {
                return Ok(out);
            }
        }
    }
}

impl FromStr for Via {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut sc = Scanner::new(s);
        let v = Via::parse_at(&mut sc).map_err(ParseError::InvalidValue)?;
        expect_end(&mut sc).map_err(ParseError::InvalidValue)?;
        Ok(v)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.sent_by())?;
        write_params(f, &self.params)
    }
}

/// The CSeq header: sequence number and method (RFC 3261 20.16).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Sequence number (RFC 3261 8.1.1.5 wants it below 2^31; up to 2^32-1 parses).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl FromStr for CSeq {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = |r| ParseError::header("CSeq", r);
        let mut sc = Scanner::new(s);
        sc.skip_ws();
        let digits = sc.take_while(|b| b.is_ascii_digit());
        let seq = crate::scan::parse_digits(digits)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(err("sequence number missing or out of range"))?;
        if !sc.skip_ws() {
            return Err(err("expected whitespace before the method"));
        }
        let method = sc.token().ok_or(err("bad method"))?;
        expect_end(&mut sc).map_err(err)?;
        Ok(CSeq {
            seq,
            method: method.parse()?,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A media type or, in Accept, a media range (`type/subtype;params`, RFC 3261 20.1, 20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Type (`application`, or `*` in a range), as written.
    pub kind: String,
    /// Subtype (`sdp`, or `*` in a range), as written.
    pub subtype: String,
    /// Parameters (`boundary`, `charset`, `q` ...), values as written.
    pub params: Vec<Param>,
}

impl MediaType {
    /// `kind/subtype` without parameters.
    pub fn new(kind: impl Into<String>, subtype: impl Into<String>) -> Self {
        MediaType {
            kind: kind.into(),
            subtype: subtype.into(),
            params: Vec::new(),
        }
    }

    /// True when this is `kind/subtype` (case-insensitive, parameters ignored).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// True when this range (possibly with `*`) covers `t`.
    pub fn covers(&self, t: &MediaType) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(&t.kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(&t.subtype))
    }

    /// The parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    fn parse_at(sc: &mut Scanner<'_>) -> R<MediaType> {
        sc.skip_ws();
        let kind = sc.token().ok_or("bad media type")?;
        if !sc.eat_sws(b'/') {
            return Err("expected '/' in media type");
        }
        let subtype = sc.token().ok_or("bad media subtype")?;
        let params = header_params(sc)?;
        Ok(MediaType {
            kind: kind.to_string(),
            subtype: subtype.to_string(),
            params,
        })
    }

    /// Parses an Accept value: a possibly empty comma list of ranges.
    pub(crate) fn parse_list(value: &str) -> R<Vec<MediaType>> {
        let mut sc = Scanner::new(value);
        sc.skip_ws();
        let mut out = Vec::new();
        if sc.is_end() {
            return Ok(out);
        }
        loop {
            out.push(MediaType::parse_at(&mut sc)?);
            if !list_next(&mut sc)? {
                return Ok(out);
            }
        }
    }
}

impl FromStr for MediaType {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut sc = Scanner::new(s);
        let m = MediaType::parse_at(&mut sc).map_err(ParseError::InvalidValue)?;
        expect_end(&mut sc).map_err(ParseError::InvalidValue)?;
        Ok(m)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.subtype)?;
        write_params(f, &self.params)
    }
}

/// Credentials or a challenge: Authorization, Proxy-Authorization, WWW-Authenticate,
/// Proxy-Authenticate (RFC 3261 20.7, 20.44; digest parameters of RFC 2617).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The scheme (`Digest`), as written.
    pub scheme: String,
    /// Comma-separated `name=value` parameters, values as written (quotes kept).
    pub params: Vec<Param>,
}

impl Auth {
    /// The scheme is Digest (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// The value of parameter `name` without quotes (`realm`, `nonce`, `response` ...).
    pub fn param(&self, name: &str) -> Option<String> {
        find_param(&self.params, name).and_then(Param::unquoted_value)
    }
}

impl FromStr for Auth {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let inner = || -> R<Auth> {
            let mut sc = Scanner::new(s);
            sc.skip_ws();
            let scheme = sc.token().ok_or("bad scheme")?;
            let mut params = Vec::new();
            let had_ws = sc.skip_ws();
            if !sc.is_end() {
                if !had_ws {
                    return Err("expected whitespace after the scheme");
                }
                loop {
                    let p = header_param(&mut sc)?;
                    if p.value.is_none() {
                        return Err("auth parameter without value");
                    }
                    params.push(p);
                    if !list_next(&mut sc)? {
                        break;
                    }
                }
            }
            Ok(Auth {
                scheme: scheme.to_string(),
                params,
            })
        };
        inner().map_err(ParseError::InvalidValue)
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, p) in self.params.iter().enumerate() {
            write!(f, "{}{p}", if i == 0 { " " } else { ", " })?;
        }
        Ok(())
    }
}

/// Parses a comma list of tokens (Require, Supported, Proxy-Require, Unsupported, Allow).
pub(crate) fn parse_tokens(value: &str) -> R<Vec<String>> {
    let mut sc = Scanner::new(value);
    sc.skip_ws();
    let mut out = Vec::new();
    if sc.is_end() {
        return Ok(out);
    }
    loop {
        out.push(sc.token().ok_or("bad token")?.to_string());
        if !list_next(&mut sc)? {
            return Ok(out);
        }
    }
}

/// Checks a Call-ID: `word ["@" word]` (RFC 3261 25.1).
pub(crate) fn check_call_id(value: &str) -> R<()> {
    let (a, b) = match value.split_once('@') {
        Some((a, b)) => (a, Some(b)),
        None => (value, None),
    };
    if all(a, crate::scan::is_word) && b.is_none_or(|b| all(b, crate::scan::is_word)) {
        Ok(())
    } else {
        Err("not word[@word]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let a: NameAddr = r#""A \"B\"" <sip:a@b>;tag=1"#.parse().unwrap();
        assert_eq!(a.display_name.as_deref(), Some(r#"A "B""#));
        assert_eq!(a.tag(), Some("1"));
        let b: NameAddr = "sip:a@b;tag=2".parse().unwrap();
        assert_eq!(b.display_name, None);
        assert_eq!(b.tag(), Some("2"));
        assert!(b.uri.as_sip().unwrap().params.is_empty());
        let c: NameAddr = "caller<sip:c@d>".parse().unwrap();
        assert_eq!(c.display_name.as_deref(), Some("caller"));
        for bad in [
            "Bell, Alexander <sip:a@b>",
            "< sip:a@b >",
            "\"open <sip:a@b>",
            "sip:a@b?Route=x",
            "<sip:a@b>;;",
        ] {
            assert!(bad.parse::<NameAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse_list(
            "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].transport, Transport::Tcp);
        assert_eq!(v[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(v[1].host, Host::Ipv4("192.168.255.111".parse().unwrap()));
        assert!(v[1].has_rfc3261_branch());
        let v: Via = "SIP/2.0/UDP h:5070;rport;received=10.0.0.1;branch=z9hG4bK"
            .parse()
            .unwrap();
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.port, Some(5070));
        assert!(!v.has_rfc3261_branch());
        assert!(Via::parse_list("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse_list("SIP/2.0/UDP h;received=host").is_err());
    }

    #[test]
    fn cseq_and_auth() {
        let c: CSeq = "0009   INVITE".parse().unwrap();
        assert_eq!((c.seq, c.method), (9, Method::Invite));
        assert!("36893488147419103232 REGISTER".parse::<CSeq>().is_err());
        assert!("1INVITE".parse::<CSeq>().is_err());
        let a: Auth = r#"Digest username="bob", realm="x", nc=00000001, uri="sip:a@b""#
            .parse()
            .unwrap();
        assert!(a.is_digest());
        assert_eq!(a.param("uri").as_deref(), Some("sip:a@b"));
        assert_eq!(a.to_string().parse::<Auth>().unwrap(), a);
    }

    #[test]
    fn media_ranges() {
        let l = MediaType::parse_list("application/sdp;level=1, */*;q=0.1").unwrap();
        assert_eq!(l.len(), 2);
        assert!(l[1].covers(&MediaType::new("text", "plain")));
        assert!(MediaType::parse_list("").unwrap().is_empty());
    }
}
