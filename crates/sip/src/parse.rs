//! Turning bytes into messages: datagrams (RFC 3261 18.3) and byte streams.

use crate::{
    HeaderName, Headers, Message, Method, ParseError, Request, Response, StatusCode, Uri, Version,
};

/// Bounds that keep a hostile peer from making the parser allocate or work without limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (header section plus body) in bytes.
    pub max_message_size: usize,
    /// Most header lines (after unfolding).
    pub max_headers: usize,
    /// Longest start line or unfolded header line in bytes.
    pub max_line_length: usize,
}

impl Default for Limits {
    /// 65 535 bytes (the largest UDP payload), 256 header lines, 8 KiB per line.
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_headers: 256,
            max_line_length: 8 * 1024,
        }
    }
}

/// A failed parse, with the request as far as it could be read when the start line was a
/// valid Request-Line and the header section could be split into lines: enough to answer 400.
pub(crate) struct Failure {
    pub(crate) error: ParseError,
    pub(crate) request: Option<Box<Request>>,
}

impl From<ParseError> for Failure {
    fn from(error: ParseError) -> Self {
        Failure {
            error,
            request: None,
        }
    }
}

/// Parses one datagram with the default [`Limits`].
///
/// RFC 3261 18.3: Content-Length governs; octets beyond it are ignored; a Content-Length
/// larger than what arrived is an error; without Content-Length the body runs to the end of
/// the datagram. Leading line breaks are skipped (RFC 3261 7.5). Line ends may be CRLF or a
/// bare LF. Every header that [`Headers`] has a typed accessor for is checked here, so
/// a message that parses has well-formed Via, From, To, CSeq, Contact and so on.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    parse_with(bytes, &Limits::default())
}

/// Parses one datagram with the given limits; see [`parse`].
pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    parse_datagram(bytes, limits).map_err(|f| f.error)
}

fn skip_line_breaks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len())
}

/// Finds the empty line ending the header section: `(head_len, body_start)`, where the head
/// includes the last header line's terminator.
fn find_head_end(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\n' {
            match data.get(i + 1..) {
                Some([b'\r', b'\n', ..]) => return Some((i + 1, i + 3)),
                Some([b'\n', ..]) => return Some((i + 1, i + 2)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Splits a header section into its start line and header lines, undoing folding.
fn split_head(head: &[u8], limits: &Limits) -> Result<(String, Headers), ParseError> {
    // Header text is UTF-8 by RFC 3261 (TEXT-UTF8); stray other bytes become U+FFFD rather
    // than costing the whole message.
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or("");
    if start.contains('\r') {
        return Err(ParseError::StartLine("bare CR in the start line"));
    }
    if start.len() > limits.max_line_length {
        return Err(ParseError::LineTooLong {
            limit: limits.max_line_length,
        });
    }
    let mut raw: Vec<String> = Vec::new();
    for line in lines {
        if line.contains('\r') {
            return Err(ParseError::HeaderLine("bare CR in the header section"));
        }
        if line.is_empty() {
            continue; // the terminator of the last line
        }
        if line.starts_with([' ', '\t']) {
            // RFC 3261 7.3.1: a line starting with whitespace continues the previous one;
            // the line break and surrounding whitespace amount to one SP.
            let last = raw.last_mut().ok_or(ParseError::HeaderLine(
                "continuation line before any header",
            ))?;
            let trimmed_len = last.trim_end_matches([' ', '\t']).len();
            last.truncate(trimmed_len);
            last.push(' ');
            last.push_str(line.trim_start_matches([' ', '\t']));
            if last.len() > limits.max_line_length {
                return Err(ParseError::LineTooLong {
                    limit: limits.max_line_length,
                });
            }
        } else {
            if raw.len() >= limits.max_headers {
                return Err(ParseError::TooManyHeaders {
                    limit: limits.max_headers,
                });
            }
            if line.len() > limits.max_line_length {
                return Err(ParseError::LineTooLong {
                    limit: limits.max_line_length,
                });
            }
            raw.push(line.to_string());
        }
    }
    let mut headers = Headers::new();
    for line in raw {
        let (name, value) = line
            .split_once(':')
            .ok_or(ParseError::HeaderLine("no colon"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !crate::scan::all(name, crate::scan::is_token) {
            return Err(ParseError::HeaderLine("header name is not a token"));
        }
        headers.push(HeaderName::new(name), value.trim_matches([' ', '\t']));
    }
    Ok((start.to_string(), headers))
}

enum StartLine {
    Request(Method, Uri, Version),
    Response(Version, StatusCode, String),
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 7.2). The SP
        // before an empty reason is sometimes missing; accept that.
        let (version, rest) = line
            .split_once(' ')
            .ok_or(ParseError::StartLine("no status code"))?;
        let version = Version::parse(version).ok_or(ParseError::StartLine("bad SIP version"))?;
        let code = rest.get(..3).unwrap_or("");
        let after = rest.get(3..).unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::StartLine("status code is not three digits"));
        }
        let reason = match after.strip_prefix(' ') {
            Some(r) => r,
            None if after.is_empty() => "",
            None => return Err(ParseError::StartLine("status code is not three digits")),
        };
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(StatusCode::new)
            .ok_or(ParseError::StartLine("status code outside 100..=699"))?;
        Ok(StartLine::Response(version, status, reason.to_string()))
    } else {
        // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces
        // (RFC 4475 3.1.2.8-10 reject extra or trailing whitespace).
        let mut parts = line.split(' ');
        let (Some(method), Some(uri), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::StartLine(
                "Request-Line needs exactly three parts separated by single spaces",
            ));
        };
        let method = method
            .parse::<Method>()
            .map_err(|_| ParseError::StartLine("method is not a token"))?;
        let uri = uri
            .parse::<Uri>()
            .map_err(|_| ParseError::StartLine("bad Request-URI"))?;
        let version = Version::parse(version).ok_or(ParseError::StartLine("bad SIP version"))?;
        Ok(StartLine::Request(method, uri, version))
    }
}

fn failure(error: ParseError, message: Message, available: &[u8]) -> Failure {
    let request = match message {
        Message::Request(mut r) => {
            r.body = available.to_vec();
            Some(Box::new(r))
        }
        Message::Response(_) => None,
    };
    Failure { error, request }
}

pub(crate) fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Message, Failure> {
    if bytes.len() > limits.max_message_size {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_message_size,
        }
        .into());
    }
    let data = &bytes[skip_line_breaks(bytes)..];
    if data.is_empty() {
        return Err(ParseError::Empty.into());
    }
    let (head_len, body_start) = match find_head_end(data) {
        Some(found) => found,
        // A datagram whose last header line ends the packet: lenient, no body.
        None if data.ends_with(b"\n") => (data.len(), data.len()),
        None => return Err(ParseError::UnterminatedHead.into()),
    };
    let (start, headers) = split_head(&data[..head_len], limits)?;
    let available = data.get(body_start..).unwrap_or(&[]);
    let mut message = match parse_start_line(&start)? {
        StartLine::Request(method, uri, version) => Message::Request(Request {
            method,
            uri,
            version,
            headers,
            body: Vec::new(),
        }),
        StartLine::Response(version, status, reason) => Message::Response(Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
        }),
    };
    let body = match message.headers().content_length() {
        Err(e) => return Err(failure(e, message, available)),
        Ok(Some(n)) if n > available.len() => {
            let error = ParseError::BodyTruncated {
                declared: n,
                available: available.len(),
            };
            return Err(failure(error, message, available));
        }
        Ok(Some(n)) => available[..n].to_vec(),
        Ok(None) => available.to_vec(),
    };
    if let Err(e) = message.headers().check_syntax() {
        return Err(failure(e, message, available));
    }
    match &mut message {
        Message::Request(r) => r.body = body,
        Message::Response(r) => r.body = body,
    }
    Ok(message)
}

/// What a [`StreamParser`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A complete, well-formed message.
    Message(Message),
    /// A complete message (framed by its Content-Length) that does not parse. The stream is
    /// still usable; pass `frame` to [`triage_datagram`](crate::triage_datagram) to get the
    /// 400 to answer, if any.
    Invalid {
        /// Why it does not parse.
        error: ParseError,
        /// Its bytes.
        frame: Vec<u8>,
    },
    /// A CRLFCRLF keep-alive ping (RFC 5626 3.5.1): answer with a single CRLF.
    KeepAlive,
}

/// Frames messages out of a byte stream (TCP, TLS) by their Content-Length.
///
/// Feed bytes with [`push`](Self::push), then call [`poll_event`](Self::poll_event) until it
/// returns `Ok(None)`. An `Err` means framing is lost (a malformed or missing-able
/// Content-Length, a header section or message over the size limit): close the connection.
/// A message without Content-Length is taken to have an empty body (RFC 3261 18.3 makes the
/// header mandatory on streams). The buffer never holds more than one message beyond
/// `max_message_size` plus the last pushed chunk.
#[derive(Debug, Clone)]
pub struct StreamParser {
    buf: Vec<u8>,
    limits: Limits,
    failed: Option<ParseError>,
    /// Total length of the message at the front, once its header section is known.
    pending: Option<usize>,
}

impl StreamParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            buf: Vec::new(),
            limits,
            failed: None,
            pending: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn fail(&mut self, e: ParseError) -> Result<Option<StreamEvent>, ParseError> {
        self.buf = Vec::new();
        self.failed = Some(e.clone());
        Err(e)
    }

    /// The next message or keep-alive, `Ok(None)` when more bytes are needed.
    pub fn poll_event(&mut self) -> Result<Option<StreamEvent>, ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.pending.is_none() {
            // Line breaks between messages: a CRLFCRLF ping, or stray CRLFs (a pong).
            loop {
                if self.buf.starts_with(b"\r\n\r\n") {
                    self.buf.drain(..4);
                    return Ok(Some(StreamEvent::KeepAlive));
                }
                match self.buf.as_slice() {
                    [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                    [b'\r', b'\n', ..] => {
                        self.buf.drain(..2);
                    }
                    [b'\n', ..] | [b'\r', ..] => {
                        self.buf.drain(..1);
                    }
                    _ => break,
                }
            }
            let Some((head_len, body_start)) = find_head_end(&self.buf) else {
                if self.buf.len() > self.limits.max_message_size {
                    let size = self.buf.len();
                    return self.fail(ParseError::TooLarge {
                        size,
                        limit: self.limits.max_message_size,
                    });
                }
                return Ok(None);
            };
            let length = match split_head(&self.buf[..head_len], &self.limits)
                .and_then(|(_, headers)| headers.content_length())
            {
                Ok(length) => length.unwrap_or(0),
                Err(e) => return self.fail(e),
            };
            let total = body_start.saturating_add(length);
            if total > self.limits.max_message_size {
                return self.fail(ParseError::TooLarge {
                    size: total,
                    limit: self.limits.max_message_size,
                });
            }
            self.pending = Some(total);
        }
        let total = self.pending.expect("set above or on an earlier call");
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(match parse_datagram(&frame, &self.limits) {
            Ok(m) => StreamEvent::Message(m),
            Err(f) => StreamEvent::Invalid {
                error: f.error,
                frame,
            },
        }))
    }
}

impl Default for StreamParser {
    /// A parser with the default [`Limits`].
    fn default() -> Self {
        StreamParser::new(Limits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn start_line_strictness() {
        assert!(parse_start_line("INVITE sip:a@b SIP/2.0").is_ok());
        assert!(parse_start_line("INVITE  sip:a@b SIP/2.0").is_err());
        assert!(parse_start_line("INVITE sip:a@b SIP/2.0 ").is_err());
        assert!(parse_start_line("INVITE <sip:a@b> SIP/2.0").is_err());
        assert!(parse_start_line("SIP/2.0 100").is_ok());
        assert!(parse_start_line("SIP/2.0 1000 x").is_err());
        assert!(parse_start_line("SIP/2.0 099 x").is_err());
        assert!(parse_start_line("SIP/2.0 4294967301 x").is_err());
    }

    #[test]
    fn folding_is_undone() {
        let (_, h) = split_head(
            b"X y\r\nSubject: a  \r\n   b\r\n\tc\r\nTo :\r\n sip:x@y\r\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(h.get(&HeaderName::new("subject")), Some("a b c"));
        assert_eq!(h.get(&HeaderName::TO), Some("sip:x@y"));
        assert!(split_head(b"X y\r\n cont\r\n", &Limits::default()).is_err());
        assert!(split_head(b"X y\r\nBad Name: v\r\n", &Limits::default()).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let small = Limits {
            max_message_size: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with(OPTIONS, &small),
            Err(ParseError::TooLarge { .. })
        ));
        let few = Limits {
            max_headers: 1,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with(OPTIONS, &few),
            Err(ParseError::TooManyHeaders { limit: 1 })
        ));
        let short = Limits {
            max_line_length: 20,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with(OPTIONS, &short),
            Err(ParseError::LineTooLong { .. })
        ));
        assert_eq!(parse(b"\r\n\r\n"), Err(ParseError::Empty));
    }

    #[test]
    fn stream_frames_byte_by_byte() {
        let mut input = b"\r\n\r\n".to_vec();
        input.extend_from_slice(OPTIONS);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(OPTIONS);
        let mut p = StreamParser::default();
        let mut events = Vec::new();
        for b in &input {
            p.push(&[*b]);
            while let Some(e) = p.poll_event().unwrap() {
                events.push(e);
            }
        }
        assert_eq!(events.len(), 3);
        assert_eq!(events[0], StreamEvent::KeepAlive);
        for e in &events[1..] {
            match e {
                StreamEvent::Message(m) => assert_eq!(m.body(), b"hello"),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn stream_framing_errors_are_sticky() {
        let mut p = StreamParser::new(Limits {
            max_message_size: 100,
            ..Limits::default()
        });
        p.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert!(p.poll_event().is_err());
        p.push(OPTIONS);
        assert!(p.poll_event().is_err());
        let mut p = StreamParser::default();
        p.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n");
        assert!(p.poll_event().is_err());
    }

    #[test]
    fn stream_invalid_message_keeps_stream() {
        let mut p = StreamParser::default();
        p.push(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: x\r\nContent-Length: 0\r\n\r\n");
        p.push(OPTIONS);
        assert!(matches!(
            p.poll_event().unwrap(),
            Some(StreamEvent::Invalid { .. })
        ));
        assert!(matches!(
            p.poll_event().unwrap(),
            Some(StreamEvent::Message(_))
        ));
    }
}
