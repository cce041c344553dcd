//! Character classes of RFC 3261 25.1 and a small cursor over an unfolded header value.
//!
//! Header values reach the typed parsers with folding already undone (see `parse`), so the
//! only whitespace left is SP and HTAB; `SWS` and `LWS` of the grammar both become "skip SP/HT".

/// `token` characters (RFC 3261 25.1).
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `word` characters (Call-ID): token plus a few separators.
pub(crate) fn is_word(b: u8) -> bool {
    is_token(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

/// `unreserved` = alphanum / mark.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// `reserved` characters: these stay distinct from their %-escape when comparing URIs.
pub(crate) fn is_reserved(b: u8) -> bool {
    b";/?:@&=+$,".contains(&b)
}

/// Characters of a URI `user` part (escapes are checked separately).
pub(crate) fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/%".contains(&b)
}

/// Characters of a URI `password`.
pub(crate) fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,%".contains(&b)
}

/// `paramchar` of a URI parameter name or value.
pub(crate) fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$%".contains(&b)
}

/// Characters of a URI header name or value (`hnv-unreserved` / unreserved / escaped).
pub(crate) fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/?:+$%".contains(&b)
}

/// Characters that may appear in an absolute URI of a scheme we do not interpret.
pub(crate) fn is_uric(b: u8) -> bool {
    is_unreserved(b) || is_reserved(b) || b"%[]#".contains(&b)
}

/// SP or HTAB.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// True when every `%` in `s` starts a `% HEXDIG HEXDIG` escape.
pub(crate) fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// True when `s` is non-empty and all its bytes satisfy `f`.
pub(crate) fn all(s: &str, f: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.bytes().all(f)
}

/// A cursor over a header value.
///
/// Every predicate used with it treats all bytes >= 0x80 alike, so it only ever stops on an
/// ASCII byte and slices stay on `char` boundaries; slicing still goes through `str::get`.
pub(crate) struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    pub(crate) fn is_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// The text from `start` to the cursor.
    pub(crate) fn since(&self, start: usize) -> &'a str {
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// Skips SP/HT; says whether there was any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `SWS c SWS` (the grammar's SEMI, COMMA, EQUAL, SLASH, COLON) if present.
    pub(crate) fn eat_sws(&mut self, c: u8) -> bool {
        let start = self.pos;
        self.skip_ws();
        if self.eat(c) {
            self.skip_ws();
            true
        } else {
            self.pos = start;
            false
        }
    }

    /// Consumes the longest run of bytes satisfying `f`.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.since(start)
    }

    /// A non-empty token.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string starting at the cursor, returned with its quotes and escapes as written.
    pub(crate) fn quoted_raw(&mut self) -> Result<&'a str, &'static str> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err("expected a quoted string");
        }
        loop {
            match self.peek() {
                None => {
                    self.pos = start;
                    return Err("unterminated quoted string");
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(self.since(start));
                }
                Some(b'\\') => {
                    // RFC 3261 25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    match self.s.as_bytes().get(self.pos + 1) {
                        Some(&c) if c < 0x80 && c != b'\r' && c != b'\n' => self.pos += 2,
                        _ => return Err("bad escape in quoted string"),
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// A quoted string starting at the cursor, returned without quotes and with escapes undone.
    pub(crate) fn quoted_string(&mut self) -> Result<String, &'static str> {
        let raw = self.quoted_raw()?;
        Ok(unquote(raw))
    }
}

/// Removes the quotes and quoted-pair escapes of a quoted string; other text is returned as is.
pub(crate) fn unquote(raw: &str) -> String {
    let inner = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner,
        None => return raw.to_string(),
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes `s` as a quoted string, escaping `"` and `\` (and control characters, which a
/// quoted-pair may carry).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' || (c.is_ascii_control() && c != '\t') {
            if c == '\r' || c == '\n' {
                // Not representable even as a quoted-pair: fold to a space.
                out.push(' ');
                continue;
            }
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits `value` on commas that are outside quoted strings and angle brackets, trimming each
/// item and dropping empty ones.
pub(crate) fn split_commas(value: &str) -> Vec<&str> {
    let b = value.as_bytes();
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                if let Some(item) = value.get(start..i) {
                    items.push(item.trim_matches([' ', '\t']));
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(item) = value.get(start..) {
        items.push(item.trim_matches([' ', '\t']));
    }
    items.retain(|s| !s.is_empty());
    items
}

/// Decodes `%XX` escapes that stand for non-reserved characters and upper-cases the hex of
/// the others: two strings are equal after this exactly when RFC 3261 19.1.4 calls them equal
/// (before any case folding).
pub(crate) fn normalize_escapes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex_val(*c)),
                b.get(i + 2).and_then(|c| hex_val(*c)),
            )
        {
            let v = h * 16 + l;
            if is_reserved(v) {
                out.push(b'%');
                out.extend_from_slice(format!("{v:02X}").as_bytes());
            } else {
                out.push(v);
            }
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Decodes every `%XX` escape of `s` into bytes.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex_val(*c)),
                b.get(i + 2).and_then(|c| hex_val(*c)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a run of ASCII digits into a `u64`, `None` on empty input, non-digits or overflow.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_unescape_and_requote() {
        let mut sc = Scanner::new(r#""J Rosenberg \\\"" <x>"#);
        assert_eq!(sc.quoted_string().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(quote(r#"J Rosenberg \""#), r#""J Rosenberg \\\"""#);
        let mut sc = Scanner::new("\"open");
        assert!(sc.quoted_raw().is_err());
    }

    #[test]
    fn commas_inside_quotes_and_angles_do_not_split() {
        assert_eq!(
            split_commas(r#""a, b" <sip:x,y@h>, <sip:z@h> , ,"#),
            vec![r#""a, b" <sip:x,y@h>"#, "<sip:z@h>"]
        );
    }

    #[test]
    fn escapes_normalize_per_rfc3261_19_1_4() {
        assert_eq!(normalize_escapes("%75se%72"), b"user");
        assert_eq!(normalize_escapes("a%3ab"), b"a%3Ab");
        assert_eq!(percent_decode("null-%00-null"), b"null-\0-null");
        assert!(escapes_ok("a%00b"));
        assert!(!escapes_ok("a%0"));
        assert!(!escapes_ok("%zz"));
    }

    #[test]
    fn digits_overflow_is_none() {
        assert_eq!(parse_digits("0068"), Some(68));
        assert_eq!(parse_digits("36893488147419103232"), None);
        assert_eq!(parse_digits("-1"), None);
        assert_eq!(parse_digits(""), None);
    }
}
