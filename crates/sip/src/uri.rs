//! URIs: `sip`/`sips` (RFC 3261 19.1), `tel` (RFC 3966) and any other scheme kept raw.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::ParseError;
use crate::scan::{
    all, escapes_ok, is_header_char, is_param_char, is_password_char, is_uric, is_user_char,
    normalize_escapes, percent_decode,
};

/// A `name[=value]` parameter, of a URI or of a header field.
///
/// Values are kept as written: %-escapes in URI parameters, quotes in header parameters
/// (see [`Param::unquoted_value`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param {
    /// Parameter name as written.
    pub name: String,
    /// Value as written, `None` for a flag parameter such as `lr`.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Param {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A parameter without a value.
    pub fn flag(name: impl Into<String>) -> Self {
        Param {
            name: name.into(),
            value: None,
        }
    }

    /// The value with surrounding quotes and quoted-pair escapes removed.
    pub fn unquoted_value(&self) -> Option<String> {
        self.value.as_deref().map(crate::scan::unquote)
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

/// Finds a parameter by name: case-insensitive, and %-escapes in names count as their
/// characters (RFC 3261 19.1.4).
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    let want = normalize_escapes(name);
    params
        .iter()
        .find(|p| normalize_escapes(&p.name).eq_ignore_ascii_case(&want))
}

/// The host part of a SIP URI or a Via sent-by.
#[derive(Debug, Clone)]
pub enum Host {
    /// A host name, as written.
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl PartialEq for Host {
    /// Host names compare case-insensitively; a name never equals an address (RFC 3261 19.1.4).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Host {}

impl FromStr for Host {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(ParseError::InvalidUri("unterminated IPv6 reference"))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::Ipv6)
                .map_err(|_| ParseError::InvalidUri("bad IPv6 address"));
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.is_empty() {
            // A host name's top label starts with a letter, so all-digit hosts are addresses.
            return s
                .parse::<Ipv4Addr>()
                .map(Host::Ipv4)
                .map_err(|_| ParseError::InvalidUri("bad IPv4 address"));
        }
        if all(s, |b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'
        }) {
            Ok(Host::Domain(s.to_string()))
        } else {
            Err(ParseError::InvalidUri("bad host name"))
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]` (IPv6 references in brackets) and parses both.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let (h, rest) = s.split_at(end + 1);
                match rest {
                    "" => (h, None),
                    _ => (
                        h,
                        Some(
                            rest.strip_prefix(':')
                                .ok_or(ParseError::InvalidUri("junk after IPv6 reference"))?,
                        ),
                    ),
                }
            }
            None => return Err(ParseError::InvalidUri("unterminated IPv6 reference")),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    Ok((host.parse()?, port))
}

pub(crate) fn parse_port(p: &str) -> Result<u16, ParseError> {
    crate::scan::parse_digits(p)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(ParseError::InvalidUri("bad port"))
}

/// A `sip:` or `sips:` URI (RFC 3261 19.1).
///
/// User, password, parameters and headers are kept as written, %-escapes included (so
/// `%00` survives); [`PartialEq`] follows the comparison rules of RFC 3261 19.1.4, which
/// treat an escape of an unreserved character as that character.
#[derive(Debug, Clone)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, escapes as written.
    pub user: Option<String>,
    /// Password, escapes as written (deprecated by RFC 3261 but still legal).
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters in order.
    pub params: Vec<Param>,
    /// Header components (`?name=value&...`), as written.
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    /// `sip:host` with nothing else.
    pub fn new(host: Host) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Sets the user part (escape anything outside RFC 3261's `user` characters first).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Appends a parameter.
    pub fn with_param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// The parameter called `name` (case-insensitive, escape-aware).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The user part with every %-escape decoded (may contain any byte, `NUL` included).
    pub fn user_decoded(&self) -> Option<Vec<u8>> {
        self.user.as_deref().map(percent_decode)
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").and_then(|p| p.value.as_deref())
    }

    /// Has the `lr` parameter (a loose router, RFC 3261 19.1.1).
    pub fn is_loose_router(&self) -> bool {
        self.param("lr").is_some()
    }

    fn parse_after_scheme(secure: bool, rest: &str) -> Result<SipUri, ParseError> {
        let (userinfo, after) = match rest.split_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if !all(u, is_user_char) || !escapes_ok(u) {
                    return Err(ParseError::InvalidUri("bad user part"));
                }
                if let Some(p) = p
                    && (!p.bytes().all(is_password_char) || !escapes_ok(p))
                {
                    return Err(ParseError::InvalidUri("bad password"));
                }
                (Some(u.to_string()), p.map(str::to_string))
            }
        };
        let (before_headers, headers_text) = match after.split_once('?') {
            Some((b, h)) => (b, Some(h)),
            None => (after, None),
        };
        let mut parts = before_headers.split(';');
        let hostport = parts.next().unwrap_or("");
        let (host, port) = parse_hostport(hostport)?;
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if !all(name, is_param_char) || !escapes_ok(name) {
                return Err(ParseError::InvalidUri("bad parameter name"));
            }
            if let Some(v) = value
                && (!all(v, is_param_char) || !escapes_ok(v))
            {
                return Err(ParseError::InvalidUri("bad parameter value"));
            }
            params.push(Param {
                name: name.to_string(),
                value: value.map(str::to_string),
            });
        }
        let mut headers = Vec::new();
        if let Some(text) = headers_text {
            for h in text.split('&') {
                let (name, value) = h
                    .split_once('=')
                    .ok_or(ParseError::InvalidUri("URI header without '='"))?;
                if !all(name, is_header_char) || !escapes_ok(name) {
                    return Err(ParseError::InvalidUri("bad URI header name"));
                }
                if !value.bytes().all(is_header_char) || !escapes_ok(value) {
                    return Err(ParseError::InvalidUri("bad URI header value"));
                }
                headers.push((name.to_string(), value.to_string()));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

fn norm_ci(s: &str) -> Vec<u8> {
    let mut v = normalize_escapes(s);
    v.make_ascii_lowercase();
    v
}

impl PartialEq for SipUri {
    /// RFC 3261 19.1.4: userinfo case-sensitive, the rest case-insensitive, escapes of
    /// unreserved characters equal the characters, `user`/`ttl`/`method`/`maddr` parameters
    /// must be in both, other parameters only compared when in both, headers always compared.
    fn eq(&self, other: &Self) -> bool {
        let opt_eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => normalize_escapes(a) == normalize_escapes(b),
            _ => false,
        };
        if self.secure != other.secure
            || !opt_eq(&self.user, &other.user)
            || !opt_eq(&self.password, &other.password)
            || self.host != other.host
            || self.port != other.port
        {
            return false;
        }
        // Grouped by name so that a repeated name compares as a whole.
        let grouped = |u: &SipUri| -> BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>> {
            let mut m: BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>> = BTreeMap::new();
            for p in &u.params {
                m.entry(norm_ci(&p.name))
                    .or_default()
                    .push(p.value.as_deref().map(norm_ci));
            }
            for values in m.values_mut() {
                values.sort();
            }
            m
        };
        let (a, b) = (grouped(self), grouped(other));
        const MUST_MATCH: [&[u8]; 4] = [b"user", b"ttl", b"method", b"maddr"];
        for (name, values) in &a {
            match b.get(name) {
                Some(v) if v != values => return false,
                Some(_) => {}
                None if MUST_MATCH.contains(&name.as_slice()) => return false,
                None => {}
            }
        }
        if b.keys()
            .any(|name| MUST_MATCH.contains(&name.as_slice()) && !a.contains_key(name))
        {
            return false;
        }
        let headers = |u: &SipUri| -> Vec<(Vec<u8>, Vec<u8>)> {
            let mut h: Vec<_> = u
                .headers
                .iter()
                .map(|(n, v)| (norm_ci(n), norm_ci(v)))
                .collect();
            h.sort();
            h
        };
        headers(self) == headers(other)
    }
}

/// A `tel:` URI (RFC 3966), number and parameters as written.
#[derive(Debug, Clone)]
pub struct TelUri {
    /// The number, visual separators included (`+1-201-555-0123`).
    pub number: String,
    /// Parameters in order (`phone-context`, `ext`, ...).
    pub params: Vec<Param>,
}

impl TelUri {
    /// The number without visual separators (`-`, `.`, `(`, `)`).
    pub fn digits(&self) -> String {
        self.number
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .collect()
    }

    fn parse_after_scheme(rest: &str) -> Result<TelUri, ParseError> {
        let mut parts = rest.split(';');
        let number = parts.next().unwrap_or("");
        if !all(number, |b| {
            b.is_ascii_hexdigit() || b"+-.()*#pPwW".contains(&b)
        }) {
            return Err(ParseError::InvalidUri("bad telephone number"));
        }
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if !all(name, is_param_char) || value.is_some_and(|v| !all(v, is_param_char)) {
                return Err(ParseError::InvalidUri("bad tel parameter"));
            }
            params.push(Param {
                name: name.to_string(),
                value: value.map(str::to_string),
            });
        }
        Ok(TelUri {
            number: number.to_string(),
            params,
        })
    }
}

impl PartialEq for TelUri {
    /// RFC 3966 5: same digits (separators ignored), same parameters in any order.
    fn eq(&self, other: &Self) -> bool {
        let params = |u: &TelUri| {
            let mut v: Vec<_> = u
                .params
                .iter()
                .map(|p| (norm_ci(&p.name), p.value.as_deref().map(norm_ci)))
                .collect();
            v.sort();
            v
        };
        self.digits().eq_ignore_ascii_case(&other.digits()) && params(self) == params(other)
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}", self.number)?;
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

/// A URI of a scheme this crate does not interpret, kept as written.
#[derive(Debug, Clone)]
pub struct AbsoluteUri {
    /// The scheme, as written.
    pub scheme: String,
    /// Everything after the first colon.
    pub rest: String,
}

impl PartialEq for AbsoluteUri {
    /// Scheme case-insensitive, the rest octet by octet.
    fn eq(&self, other: &Self) -> bool {
        self.scheme.eq_ignore_ascii_case(&other.scheme) && self.rest == other.rest
    }
}

/// Any URI found in a SIP message.
#[derive(Debug, Clone, PartialEq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:`.
    Tel(TelUri),
    /// Any other scheme (`http:`, `isbn:`, `soap.beep:` ...), uninterpreted.
    Other(AbsoluteUri),
}

impl Uri {
    /// The scheme in lower case.
    pub fn scheme(&self) -> String {
        match self {
            Uri::Sip(u) if u.secure => "sips".into(),
            Uri::Sip(_) => "sip".into(),
            Uri::Tel(_) => "tel".into(),
            Uri::Other(o) => o.scheme.to_ascii_lowercase(),
        }
    }

    /// The SIP URI, if it is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl FromStr for Uri {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or(ParseError::InvalidUri("no scheme"))?;
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(ParseError::InvalidUri("bad scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_after_scheme(false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_after_scheme(true, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_after_scheme(rest).map(Uri::Tel)
        } else if all(rest, is_uric) {
            Ok(Uri::Other(AbsoluteUri {
                scheme: scheme.to_string(),
                rest: rest.to_string(),
            }))
        } else {
            Err(ParseError::InvalidUri("bad characters in URI"))
        }
    }
}

impl FromStr for SipUri {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.parse::<Uri>()? {
            Uri::Sip(u) => Ok(u),
            _ => Err(ParseError::InvalidUri("not a sip or sips URI")),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        s.parse().unwrap()
    }

    #[test]
    fn parses_all_parts() {
        let u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&x=");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.is_loose_router());
        assert_eq!(u.headers.len(), 2);
        assert_eq!(
            u.to_string(),
            "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&x="
        );
    }

    #[test]
    fn rfc3261_19_1_4_equal_examples() {
        // The equal pairs of RFC 3261 19.1.4.
        assert_eq!(
            sip("sip:%61lice@atlanta.com;transport=TCP"),
            sip("sip:alice@AtLanTa.CoM;Transport=tcp")
        );
        assert_eq!(
            sip("sip:carol@chicago.com"),
            sip("sip:carol@chicago.com;newparam=5")
        );
        assert_eq!(
            sip("sip:carol@chicago.com;security=on"),
            sip("sip:carol@chicago.com;newparam=5")
        );
        assert_eq!(
            sip("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com"),
            sip("sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
        );
        assert_eq!(
            sip("sip:alice@atlanta.com?subject=project%20x&priority=urgent"),
            sip("sip:alice@atlanta.com?priority=urgent&subject=project%20x")
        );
    }

    #[test]
    fn rfc3261_19_1_4_unequal_examples() {
        assert_ne!(
            sip("SIP:ALICE@AtLanTa.CoM;Transport=udp"),
            sip("sip:alice@AtLanTa.CoM;Transport=UDP")
        );
        assert_ne!(sip("sip:bob@biloxi.com"), sip("sip:bob@biloxi.com:5060"));
        assert_ne!(
            sip("sip:bob@biloxi.com"),
            sip("sip:bob@biloxi.com;transport=udp").with_param(Param::flag("maddr"))
        );
        assert_ne!(
            sip("sip:bob@biloxi.com:6000;transport=tcp"),
            sip("sip:bob@biloxi.com:6000;transport=udp")
        );
        assert_ne!(
            sip("sip:carol@chicago.com"),
            sip("sip:carol@chicago.com?Subject=next%20meeting")
        );
        assert_ne!(
            sip("sip:bob@phone21.boxesbybob.com"),
            sip("sip:bob@192.0.2.4")
        );
        assert_ne!(
            sip("sip:carol@chicago.com;security=on"),
            sip("sip:carol@chicago.com;security=off")
        );
        assert_ne!(sip("sip:carol@chicago.com"), sip("sips:carol@chicago.com"));
        assert_ne!(sip("sip:a@h"), sip("sip:a@h;user=phone"));
    }

    #[test]
    fn escapes_of_reserved_characters_stay_distinct() {
        assert_ne!(sip("sip:a%3Ab@h"), sip("sip:a:b@h"));
        assert_eq!(sip("sip:a%3ab@h"), sip("sip:a%3Ab@h"));
    }

    #[test]
    fn other_schemes_kept_raw() {
        let u: Uri = "soap.beep://192.0.2.103:3002".parse().unwrap();
        assert_eq!(u.scheme(), "soap.beep");
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
        let t: Uri = "tel:+1-201-555-0123;phone-context=example.com"
            .parse()
            .unwrap();
        let t2: Uri = "tel:+12015550123;PHONE-CONTEXT=example.com"
            .parse()
            .unwrap();
        assert_eq!(t, t2);
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:",
            "sip:@host",
            "sip:user@host:99999",
            "sip:user@host;=x",
            "sip:u%zz@host",
            "sip:user@[::1",
            "1sip:x",
            "sip:user@999.1.1.1",
        ] {
            assert!(bad.parse::<Uri>().is_err(), "{bad} should not parse");
        }
    }
}
