//! Header fields: names (with compact forms), the ordered list, typed accessors.

use std::borrow::Cow;
use std::fmt;

use crate::scan::split_commas;
use crate::values::{Auth, CSeq, Contacts, MediaType, NameAddr, Via, check_call_id, parse_tokens};
use crate::{ParseError, scan};

/// Known header names and their compact forms (RFC 3261 7.3.3 and the extensions' RFCs).
const KNOWN: &[(&str, Option<char>)] = &[
    ("Accept", None),
    ("Accept-Contact", Some('a')),
    ("Accept-Encoding", None),
    ("Accept-Language", None),
    ("Alert-Info", None),
    ("Allow", None),
    ("Allow-Events", Some('u')),
    ("Authentication-Info", None),
    ("Authorization", None),
    ("Call-ID", Some('i')),
    ("Call-Info", None),
    ("Contact", Some('m')),
    ("Content-Disposition", None),
    ("Content-Encoding", Some('e')),
    ("Content-Language", None),
    ("Content-Length", Some('l')),
    ("Content-Type", Some('c')),
    ("CSeq", None),
    ("Date", None),
    ("Error-Info", None),
    ("Event", Some('o')),
    ("Expires", None),
    ("From", Some('f')),
    ("Identity", Some('y')),
    ("Identity-Info", Some('n')),
    ("In-Reply-To", None),
    ("Max-Forwards", None),
    ("MIME-Version", None),
    ("Min-Expires", None),
    ("Min-SE", None),
    ("Organization", None),
    ("P-Asserted-Identity", None),
    ("Path", None),
    ("Priority", None),
    ("Privacy", None),
    ("Proxy-Authenticate", None),
    ("Proxy-Authorization", None),
    ("Proxy-Require", None),
    ("RAck", None),
    ("Reason", None),
    ("Record-Route", None),
    ("Refer-To", Some('r')),
    ("Referred-By", Some('b')),
    ("Reject-Contact", Some('j')),
    ("Replaces", None),
    ("Reply-To", None),
    ("Request-Disposition", Some('d')),
    ("Require", None),
    ("Retry-After", None),
    ("Route", None),
    ("RSeq", None),
    ("Server", None),
    ("Session-Expires", Some('x')),
    ("Subject", Some('s')),
    ("Subscription-State", None),
    ("Supported", Some('k')),
    ("Timestamp", None),
    ("To", Some('t')),
    ("Unsupported", None),
    ("User-Agent", None),
    ("Via", Some('v')),
    ("Warning", None),
    ("WWW-Authenticate", None),
];

/// A header field name. Known names and compact forms are stored in their canonical full
/// form (`v`, `VIA` → `Via`); others as written. Comparison ignores ASCII case.
#[derive(Debug, Clone)]
pub struct HeaderName(Cow<'static, str>);

macro_rules! names {
    ($($konst:ident = $s:literal;)*) => {
        impl HeaderName {
            $(
                #[doc = concat!("`", $s, "`.")]
                pub const $konst: HeaderName = HeaderName(Cow::Borrowed($s));
            )*
        }
    };
}

names! {
    ACCEPT = "Accept";
    ALLOW = "Allow";
    AUTHORIZATION = "Authorization";
    CALL_ID = "Call-ID";
    CONTACT = "Contact";
    CONTENT_ENCODING = "Content-Encoding";
    CONTENT_LENGTH = "Content-Length";
    CONTENT_TYPE = "Content-Type";
    CSEQ = "CSeq";
    EXPIRES = "Expires";
    FROM = "From";
    MAX_FORWARDS = "Max-Forwards";
    PROXY_AUTHENTICATE = "Proxy-Authenticate";
    PROXY_AUTHORIZATION = "Proxy-Authorization";
    PROXY_REQUIRE = "Proxy-Require";
    RECORD_ROUTE = "Record-Route";
    REQUIRE = "Require";
    ROUTE = "Route";
    SUPPORTED = "Supported";
    TO = "To";
    UNSUPPORTED = "Unsupported";
    VIA = "Via";
    WWW_AUTHENTICATE = "WWW-Authenticate";
}

impl HeaderName {
    /// The name for `s`, expanding compact forms and canonicalising known names.
    pub fn new(s: &str) -> HeaderName {
        let mut chars = s.chars();
        if let (Some(c), None) = (chars.next(), chars.next())
            && let Some((full, _)) = KNOWN
                .iter()
                .find(|(_, compact)| compact.is_some_and(|k| k.eq_ignore_ascii_case(&c)))
        {
            return HeaderName(Cow::Borrowed(full));
        }
        match KNOWN.iter().find(|(full, _)| full.eq_ignore_ascii_case(s)) {
            Some((full, _)) => HeaderName(Cow::Borrowed(full)),
            None => HeaderName(Cow::Owned(s.to_string())),
        }
    }

    /// The name as it is written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact form (RFC 3261 7.3.3), if the name has one.
    pub fn compact(&self) -> Option<char> {
        KNOWN
            .iter()
            .find(|(full, _)| full.eq_ignore_ascii_case(&self.0))
            .and_then(|(_, c)| *c)
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for HeaderName {}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::new(s)
    }
}

/// One header line: name and value (folding undone, surrounding whitespace trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name.
    pub name: HeaderName,
    /// Value as received (a list header keeps its commas).
    pub value: String,
}

/// The header fields of a message, in order. Lookups ignore case and compact forms.
///
/// Typed accessors parse on each call. For a message that came through
/// [`parse`](crate::parse) they cannot fail on syntax (it checked every header they read),
/// only on absence or repetition; for a message built by hand they report what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No header lines at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All header lines in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: impl Into<HeaderName>, value: impl Into<String>) {
        self.0.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Inserts a header line before all others (a proxy's Via, for instance).
    pub fn push_front(&mut self, name: impl Into<HeaderName>, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name: name.into(),
                value: value.into(),
            },
        );
    }

    /// Replaces every line called `name` by one line with `value` (at the first one's place).
    pub fn set(&mut self, name: impl Into<HeaderName>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = 0;
                self.0.retain(|h| {
                    if h.name == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line called `name`; says how many there were.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| &h.name != name);
        before - self.0.len()
    }

    /// The value of the first line called `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// The values of every line called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Number of lines called `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.get_all(name).count()
    }

    /// Every comma-separated value of every line called `name` (commas inside quotes or
    /// `<...>` do not split). Only meaningful for list headers.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(split_commas)
    }

    /// The single value of a header that may appear once.
    fn single(&self, name: &HeaderName, label: &'static str) -> Result<Option<&str>, ParseError> {
        if self.count(name) > 1 {
            return Err(ParseError::MultipleHeaders(label));
        }
        Ok(self.get(name))
    }

    fn required(&self, name: &HeaderName, label: &'static str) -> Result<&str, ParseError> {
        self.single(name, label)?
            .ok_or(ParseError::MissingHeader(label))
    }

    /// Call-ID (`word[@word]`).
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = self.required(&HeaderName::CALL_ID, "Call-ID")?;
        check_call_id(v).map_err(|r| ParseError::header("Call-ID", r))?;
        Ok(v)
    }

    /// CSeq: number and method.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        self.required(&HeaderName::CSEQ, "CSeq")?.parse()
    }

    /// From (its `tag` via [`NameAddr::tag`]).
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        parse_addr("From", self.required(&HeaderName::FROM, "From")?)
    }

    /// To (its `tag` via [`NameAddr::tag`]).
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        parse_addr("To", self.required(&HeaderName::TO, "To")?)
    }

    /// All Via values, topmost first, across lines. Empty when there is none.
    pub fn via(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(&HeaderName::VIA) {
            out.extend(Via::parse_list(v).map_err(|r| ParseError::header("Via", r))?);
        }
        Ok(out)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        self.via()?
            .into_iter()
            .next()
            .ok_or(ParseError::MissingHeader("Via"))
    }

    /// Contact: `*` or the addresses of all lines; `None` when absent.
    pub fn contact(&self) -> Result<Option<Contacts>, ParseError> {
        let mut list = Vec::new();
        let mut wildcard = false;
        let mut lines = 0;
        for v in self.get_all(&HeaderName::CONTACT) {
            lines += 1;
            if v.trim() == "*" {
                wildcard = true;
            } else {
                list.extend(
                    NameAddr::parse_list(v, false).map_err(|r| ParseError::header("Contact", r))?,
                );
            }
        }
        match (lines, wildcard) {
            (0, _) => Ok(None),
            (1, true) => Ok(Some(Contacts::Wildcard)),
            (_, true) => Err(ParseError::header(
                "Contact",
                "'*' must be the only Contact value",
            )),
            (_, false) => Ok(Some(Contacts::List(list))),
        }
    }

    /// Route set (each must be in `<...>`), topmost first.
    pub fn route(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.addr_list(&HeaderName::ROUTE, "Route")
    }

    /// Record-Route set, topmost first.
    pub fn record_route(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.addr_list(&HeaderName::RECORD_ROUTE, "Record-Route")
    }

    fn addr_list(&self, name: &HeaderName, label: &str) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            out.extend(NameAddr::parse_list(v, true).map_err(|r| ParseError::header(label, r))?);
        }
        Ok(out)
    }

    /// Max-Forwards (0..=255), `None` when absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.single(&HeaderName::MAX_FORWARDS, "Max-Forwards")?
            .map(|v| {
                scan::parse_digits(v.trim())
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or(ParseError::header(
                        "Max-Forwards",
                        "not a number in 0..=255",
                    ))
            })
            .transpose()
    }

    /// Content-Length, `None` when absent.
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        self.single(&HeaderName::CONTENT_LENGTH, "Content-Length")?
            .map(|v| {
                scan::parse_digits(v.trim())
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(ParseError::header(
                        "Content-Length",
                        "not a non-negative number",
                    ))
            })
            .transpose()
    }

    /// Content-Type, `None` when absent.
    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        self.single(&HeaderName::CONTENT_TYPE, "Content-Type")?
            .map(|v| {
                v.parse::<MediaType>()
                    .map_err(|_| ParseError::header("Content-Type", "not a media type"))
            })
            .transpose()
    }

    /// Expires in seconds, `None` when absent.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.single(&HeaderName::EXPIRES, "Expires")?
            .map(|v| {
                scan::parse_digits(v.trim())
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or(ParseError::header("Expires", "not a number below 2^32"))
            })
            .transpose()
    }

    /// Option tags of all Require lines.
    pub fn require(&self) -> Result<Vec<String>, ParseError> {
        self.tokens(&HeaderName::REQUIRE, "Require")
    }

    /// Option tags of all Proxy-Require lines.
    pub fn proxy_require(&self) -> Result<Vec<String>, ParseError> {
        self.tokens(&HeaderName::PROXY_REQUIRE, "Proxy-Require")
    }

    /// Option tags of all Supported lines.
    pub fn supported(&self) -> Result<Vec<String>, ParseError> {
        self.tokens(&HeaderName::SUPPORTED, "Supported")
    }

    /// Option tags of all Unsupported lines.
    pub fn unsupported(&self) -> Result<Vec<String>, ParseError> {
        self.tokens(&HeaderName::UNSUPPORTED, "Unsupported")
    }

    fn tokens(&self, name: &HeaderName, label: &str) -> Result<Vec<String>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            out.extend(parse_tokens(v).map_err(|r| ParseError::header(label, r))?);
        }
        Ok(out)
    }

    /// Accept: `None` when absent, else the media ranges of all lines (possibly none: an
    /// empty Accept accepts no body at all).
    pub fn accept(&self) -> Result<Option<Vec<MediaType>>, ParseError> {
        let mut out: Option<Vec<MediaType>> = None;
        for v in self.get_all(&HeaderName::ACCEPT) {
            let list = MediaType::parse_list(v).map_err(|r| ParseError::header("Accept", r))?;
            out.get_or_insert_with(Vec::new).extend(list);
        }
        Ok(out)
    }

    /// Credentials of every Authorization line.
    pub fn authorization(&self) -> Result<Vec<Auth>, ParseError> {
        self.auths(&HeaderName::AUTHORIZATION, "Authorization")
    }

    /// Credentials of every Proxy-Authorization line.
    pub fn proxy_authorization(&self) -> Result<Vec<Auth>, ParseError> {
        self.auths(&HeaderName::PROXY_AUTHORIZATION, "Proxy-Authorization")
    }

    /// Challenges of every WWW-Authenticate line.
    pub fn www_authenticate(&self) -> Result<Vec<Auth>, ParseError> {
        self.auths(&HeaderName::WWW_AUTHENTICATE, "WWW-Authenticate")
    }

    /// Challenges of every Proxy-Authenticate line.
    pub fn proxy_authenticate(&self) -> Result<Vec<Auth>, ParseError> {
        self.auths(&HeaderName::PROXY_AUTHENTICATE, "Proxy-Authenticate")
    }

    fn auths(&self, name: &HeaderName, label: &str) -> Result<Vec<Auth>, ParseError> {
        self.get_all(name)
            .map(|v| {
                v.parse::<Auth>()
                    .map_err(|_| ParseError::header(label, "bad credentials or challenge"))
            })
            .collect()
    }

    /// Checks the syntax of every header this type has a typed accessor for, line by line
    /// (repetition is the validator's business, not the parser's).
    pub(crate) fn check_syntax(&self) -> Result<(), ParseError> {
        for h in &self.0 {
            let one = Headers(vec![h.clone()]);
            match h.name.as_str() {
                "Call-ID" => one.call_id().map(drop)?,
                "CSeq" => one.cseq().map(drop)?,
                "From" => one.from().map(drop)?,
                "To" => one.to().map(drop)?,
                "Via" => one.via().map(drop)?,
                "Contact" => one.contact().map(drop)?,
                "Route" => one.route().map(drop)?,
                "Record-Route" => one.record_route().map(drop)?,
                "Max-Forwards" => one.max_forwards().map(drop)?,
                "Content-Length" => one.content_length().map(drop)?,
                "Content-Type" => one.content_type().map(drop)?,
                "Expires" => one.expires().map(drop)?,
                "Require" => one.require().map(drop)?,
                "Proxy-Require" => one.proxy_require().map(drop)?,
                "Supported" => one.supported().map(drop)?,
                "Unsupported" => one.unsupported().map(drop)?,
                "Accept" => one.accept().map(drop)?,
                "Authorization" => one.authorization().map(drop)?,
                "Proxy-Authorization" => one.proxy_authorization().map(drop)?,
                "WWW-Authenticate" => one.www_authenticate().map(drop)?,
                "Proxy-Authenticate" => one.proxy_authenticate().map(drop)?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn parse_addr(label: &str, v: &str) -> Result<NameAddr, ParseError> {
    let mut sc = scan::Scanner::new(v);
    let na = NameAddr::parse_at(&mut sc, false).map_err(|r| ParseError::header(label, r))?;
    sc.skip_ws();
    if !sc.is_end() {
        return Err(ParseError::header(
            label,
            "unexpected text after the address",
        ));
    }
    Ok(na)
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_odd_case_names() {
        assert_eq!(HeaderName::new("v").as_str(), "Via");
        assert_eq!(HeaderName::new("MaX-fOrWaRdS").as_str(), "Max-Forwards");
        assert_eq!(HeaderName::new("l"), HeaderName::CONTENT_LENGTH);
        assert_eq!(HeaderName::new("o").as_str(), "Event");
        assert_eq!(HeaderName::new("C%6Fntact").as_str(), "C%6Fntact");
        assert_eq!(HeaderName::CALL_ID.compact(), Some('i'));
        assert_eq!(HeaderName::new("X-Foo"), HeaderName::new("x-foo"));
    }

    #[test]
    fn set_remove_and_values() {
        let mut h = Headers::new();
        h.push("Supported", "timer, 100rel");
        h.push("k", "path");
        h.push("Subject", "a, b");
        assert_eq!(h.supported().unwrap(), vec!["timer", "100rel", "path"]);
        assert_eq!(h.values(&HeaderName::SUPPORTED).count(), 3);
        h.set("Supported", "replaces");
        assert_eq!(h.count(&HeaderName::SUPPORTED), 1);
        assert_eq!(h.remove(&HeaderName::new("subject")), 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn single_value_headers_reject_repetition() {
        let mut h = Headers::new();
        h.push("CSeq", "1 INVITE");
        h.push("CSeq", "2 INVITE");
        assert_eq!(h.cseq(), Err(ParseError::MultipleHeaders("CSeq")));
        assert_eq!(h.call_id(), Err(ParseError::MissingHeader("Call-ID")));
    }

    #[test]
    fn contact_wildcard() {
        let mut h = Headers::new();
        h.push("Contact", "*");
        assert_eq!(h.contact().unwrap(), Some(Contacts::Wildcard));
        h.push("Contact", "<sip:a@b>");
        assert!(h.contact().is_err());
    }
}
