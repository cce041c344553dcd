//! The inbound SMTP session (RFC 5321), sans-IO: the driver feeds it one line at a time
//! ([`Session::handle_line`]) and does what each [`Step`] says: send a reply, look a recipient
//! up (the answer comes back through [`Session::handle_recipient`]), store a whole message (the
//! outcome comes back through [`Session::handle_stored`]), start TLS, or close. No sockets and
//! no store here, so every reply is unit-tested.
//!
//! Supported: EHLO/HELO, MAIL FROM (with `SIZE=`, `BODY=8BITMIME`, `SMTPUTF8`), RCPT TO, DATA
//! with dot-unstuffing (RFC 5321 4.5.2), RSET, NOOP, VRFY (not disclosed), HELP, QUIT, and
//! STARTTLS (RFC 3207) when the driver has a certificate. Extensions advertised: SIZE,
//! PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS. Not here: AUTH (this server
//! receives mail for its own addresses only, it never relays), BDAT/CHUNKING.

/// Limits and names of a session.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The name in the greeting and EHLO answer.
    pub hostname: String,
    /// Largest message (bytes of DATA after dot-unstuffing).
    pub max_message_bytes: usize,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Whether STARTTLS is offered (the driver has a certificate).
    pub tls_available: bool,
}

/// A message received whole: the envelope and the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (empty for bounces, RFC 5321 4.5.5).
    pub mail_from: String,
    /// Accepted recipients (lower-case).
    pub rcpt_to: Vec<String>,
    /// The message, CRLF line ends, without the final dot.
    pub data: Vec<u8>,
    /// The domain the client gave in EHLO/HELO (for SPF, RFC 7208 2.3).
    pub helo: String,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this reply (one or more CRLF-ended lines).
    Reply(String),
    /// Nothing to send (a data line).
    Nothing,
    /// Check whether a recipient address (lower-case) is ours; then call
    /// [`Session::handle_recipient`].
    CheckRecipient(String),
    /// Store the message durably, then call [`Session::handle_stored`] and send its reply.
    Store(Envelope),
    /// Send this reply, then start TLS on the connection and call [`Session::handle_tls`].
    StartTls(String),
    /// Send this reply and close.
    Close(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before EHLO/HELO.
    Greeted,
    /// After EHLO/HELO, no transaction.
    Ready,
    /// After MAIL FROM.
    Mail,
    /// Reading DATA.
    Data,
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session {
    limits: Limits,
    phase: Phase,
    tls: bool,
    helo: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
    /// DATA went over the size limit: read on to the end, then answer 552.
    too_big: bool,
    /// The recipient being checked.
    pending_rcpt: Option<String>,
    /// Bad commands in a row (closes after 10, RFC 5321 does not forbid it).
    errors: u32,
}

fn reply(code: u16, enhanced: &str, text: &str) -> String {
    format!("{code} {enhanced} {text}\r\n")
}

/// The address inside `<...>` of a MAIL FROM or RCPT TO argument, and the parameters after it.
fn path_and_params(arg: &str) -> Option<(String, &str)> {
    let arg = arg.trim_start();
    let rest = arg.strip_prefix('<')?;
    let end = rest.find('>')?;
    let addr = rest[..end].trim();
    // RFC 5321 4.1.2: a source route (`@a,@b:user@c`) is accepted and ignored.
    let addr = addr.rsplit(':').next().unwrap_or(addr);
    if addr.len() > 320 || addr.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    Some((addr.to_lowercase(), rest[end + 1..].trim()))
}

/// The EHLO/HELO argument as a domain: its first word, at most 255 characters, lower-case.
fn helo_domain(arg: &str) -> String {
    arg.split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect::<String>()
        .to_ascii_lowercase()
}

impl Session {
    /// A new session; the first step is the greeting.
    pub fn new(limits: Limits) -> (Session, String) {
        let greeting = format!("220 {} ESMTP Switchboard\r\n", limits.hostname);
        (
            Session {
                limits,
                phase: Phase::Greeted,
                tls: false,
                helo: String::new(),
                mail_from: String::new(),
                rcpt_to: Vec::new(),
                data: Vec::new(),
                too_big: false,
                pending_rcpt: None,
                errors: 0,
            },
            greeting,
        )
    }

    fn reset(&mut self) {
        self.mail_from.clear();
        self.rcpt_to.clear();
        self.data = Vec::new();
        self.too_big = false;
        self.pending_rcpt = None;
        if self.phase != Phase::Greeted {
            self.phase = Phase::Ready;
        }
    }

    fn error(&mut self, r: String) -> Step {
        self.errors += 1;
        if self.errors >= 10 {
            return Step::Close(reply(421, "4.7.0", "too many errors, closing"));
        }
        Step::Reply(r)
    }

    /// A line as read, with its line end (`\r\n`, or a bare `\n`). A line over the driver's
    /// limit comes without its end; in commands it is refused, in DATA it counts to the size.
    pub fn handle_line(&mut self, line: &[u8]) -> Step {
        if self.phase == Phase::Data {
            return self.data_line(line);
        }
        if !line.ends_with(b"\n") {
            return self.error(reply(500, "5.5.2", "line too long"));
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return self.error(reply(500, "5.5.2", "command is not UTF-8"));
        };
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.find(' ') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.trim().is_empty() => self.error(reply(
                501,
                "5.5.4",
                "a domain or address literal is required",
            )),
            "EHLO" => {
                self.reset();
                self.phase = Phase::Ready;
                self.helo = helo_domain(arg);
                let mut r = format!("250-{} greets {}\r\n", self.limits.hostname, arg.trim());
                r.push_str(&format!("250-SIZE {}\r\n", self.limits.max_message_bytes));
                r.push_str("250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
                if self.limits.tls_available && !self.tls {
                    r.push_str("250-STARTTLS\r\n");
                }
                r.push_str("250 ENHANCEDSTATUSCODES\r\n");
                Step::Reply(r)
            }
            "HELO" => {
                self.reset();
                self.phase = Phase::Ready;
                self.helo = helo_domain(arg);
                Step::Reply(format!("250 {}\r\n", self.limits.hostname))
            }
            "STARTTLS" => {
                if !self.limits.tls_available || self.tls {
                    return self.error(reply(454, "4.7.0", "TLS not available"));
                }
                if !arg.is_empty() {
                    return self.error(reply(501, "5.5.4", "STARTTLS takes no argument"));
                }
                Step::StartTls(reply(220, "2.0.0", "ready to start TLS"))
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => {
                if self.phase != Phase::Mail || self.rcpt_to.is_empty() {
                    return self.error(reply(503, "5.5.1", "need RCPT TO first"));
                }
                self.phase = Phase::Data;
                self.data = Vec::new();
                Step::Reply("354 end data with <CR><LF>.<CR><LF>\r\n".into())
            }
            "RSET" => {
                self.reset();
                Step::Reply(reply(250, "2.0.0", "reset"))
            }
            "NOOP" => Step::Reply(reply(250, "2.0.0", "ok")),
            // RFC 5321 3.5.3: 252 when an address is not verified (no disclosure of addresses).
            "VRFY" => Step::Reply(reply(
                252,
                "2.5.0",
                "cannot verify, but will accept mail for our addresses",
            )),
            "HELP" => Step::Reply(reply(214, "2.0.0", "see RFC 5321")),
            "QUIT" => Step::Close(reply(221, "2.0.0", "bye")),
            "AUTH" | "BDAT" | "ETRN" | "EXPN" | "TURN" => {
                self.error(reply(502, "5.5.1", "command not implemented"))
            }
            _ => self.error(reply(500, "5.5.2", "command not recognised")),
        }
    }

    fn mail(&mut self, arg: &str) -> Step {
        match self.phase {
            Phase::Greeted => return self.error(reply(503, "5.5.1", "say EHLO first")),
            Phase::Mail => return self.error(reply(503, "5.5.1", "nested MAIL command")),
            _ => {}
        }
        let Some(arg) = strip_keyword(arg, "FROM:") else {
            return self.error(reply(501, "5.5.4", "syntax: MAIL FROM:<address>"));
        };
        let Some((from, params)) = path_and_params(arg) else {
            return self.error(reply(501, "5.1.7", "bad sender address syntax"));
        };
        for p in params.split_whitespace() {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.to_ascii_uppercase().as_str() {
                "SIZE" => match v.parse::<u64>() {
                    Ok(n) if n > self.limits.max_message_bytes as u64 => {
                        return Step::Reply(reply(
                            552,
                            "5.3.4",
                            &format!(
                                "message size exceeds the limit of {} bytes",
                                self.limits.max_message_bytes
                            ),
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => return self.error(reply(501, "5.5.4", "bad SIZE value")),
                },
                "BODY" | "SMTPUTF8" | "AUTH" | "RET" | "ENVID" => {}
                _ => return self.error(reply(555, "5.5.4", "unsupported MAIL parameter")),
            }
        }
        self.mail_from = from;
        self.rcpt_to.clear();
        self.phase = Phase::Mail;
        Step::Reply(reply(250, "2.1.0", "sender ok"))
    }

    fn rcpt(&mut self, arg: &str) -> Step {
        if self.phase != Phase::Mail {
            return self.error(reply(503, "5.5.1", "need MAIL FROM first"));
        }
        let Some(arg) = strip_keyword(arg, "TO:") else {
            return self.error(reply(501, "5.5.4", "syntax: RCPT TO:<address>"));
        };
        let Some((to, _params)) = path_and_params(arg) else {
            return self.error(reply(501, "5.1.3", "bad recipient address syntax"));
        };
        if to.is_empty() || !to.contains('@') {
            return self.error(reply(501, "5.1.3", "bad recipient address syntax"));
        }
        if self.rcpt_to.len() >= self.limits.max_recipients {
            return Step::Reply(reply(452, "4.5.3", "too many recipients"));
        }
        self.pending_rcpt = Some(to.clone());
        Step::CheckRecipient(to)
    }

    /// The answer to [`Step::CheckRecipient`]: `Ok(true)` ours, `Ok(false)` not ours, `Err` the
    /// check failed (try again later).
    pub fn handle_recipient(&mut self, found: Result<bool, ()>) -> String {
        let Some(to) = self.pending_rcpt.take() else {
            return reply(503, "5.5.1", "no recipient pending");
        };
        match found {
            Ok(true) => {
                if !self.rcpt_to.contains(&to) {
                    self.rcpt_to.push(to);
                }
                reply(250, "2.1.5", "recipient ok")
            }
            Ok(false) => {
                self.errors += 1;
                reply(
                    550,
                    "5.1.1",
                    "no such mailbox here; this server does not relay",
                )
            }
            Err(()) => reply(451, "4.3.0", "temporary failure, try again later"),
        }
    }

    fn data_line(&mut self, line: &[u8]) -> Step {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let complete = line.ends_with(b"\n");
        if complete && body == b"." {
            let too_big = self.too_big;
            let envelope = Envelope {
                mail_from: std::mem::take(&mut self.mail_from),
                rcpt_to: std::mem::take(&mut self.rcpt_to),
                data: std::mem::take(&mut self.data),
                helo: self.helo.clone(),
            };
            self.reset();
            if too_big {
                return Step::Reply(reply(
                    552,
                    "5.3.4",
                    &format!(
                        "message size exceeds the limit of {} bytes; nothing was stored",
                        self.limits.max_message_bytes
                    ),
                ));
            }
            return Step::Store(envelope);
        }
        if self.too_big {
            return Step::Nothing;
        }
        // RFC 5321 4.5.2: a leading dot was doubled by the sender.
        let body = if complete {
            body.strip_prefix(b".").unwrap_or(body)
        } else {
            body
        };
        if self.data.len() + body.len() + 2 > self.limits.max_message_bytes {
            self.too_big = true;
            self.data = Vec::new();
            return Step::Nothing;
        }
        self.data.extend_from_slice(body);
        if complete {
            self.data.extend_from_slice(b"\r\n");
        }
        Step::Nothing
    }

    /// The answer to [`Step::Store`]: `Ok` stored (the reply names `id`), `Err` a permanent
    /// (`true`) or temporary refusal with its reason.
    pub fn handle_stored(&mut self, outcome: Result<String, (bool, String)>) -> String {
        match outcome {
            Ok(id) => reply(250, "2.0.0", &format!("queued as {id}")),
            Err((true, why)) => reply(554, "5.6.0", &why),
            Err((false, why)) => reply(451, "4.3.0", &why),
        }
    }

    /// TLS is up (RFC 3207 4.2: the session starts over, the client says EHLO again).
    pub fn handle_tls(&mut self) {
        self.tls = true;
        self.phase = Phase::Greeted;
        self.reset();
    }
}

fn strip_keyword<'a>(arg: &'a str, kw: &str) -> Option<&'a str> {
    let head = arg.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw).then(|| &arg[kw.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(max: usize) -> Session {
        Session::new(Limits {
            hostname: "mx.test".into(),
            max_message_bytes: max,
            max_recipients: 3,
            tls_available: true,
        })
        .0
    }

    fn code(s: &Step) -> &str {
        match s {
            Step::Reply(r) | Step::Close(r) | Step::StartTls(r) => &r[..3],
            Step::CheckRecipient(_) => "chk",
            Step::Store(_) => "sto",
            Step::Nothing => "",
        }
    }

    #[test]
    fn a_whole_transaction_with_dot_unstuffing() {
        let mut s = session(1000);
        let ehlo = s.handle_line(b"EHLO client.test\r\n");
        assert!(
            matches!(&ehlo, Step::Reply(r) if r.contains("250-SIZE 1000") && r.contains("STARTTLS"))
        );
        assert_eq!(
            code(&s.handle_line(b"MAIL FROM:<A@X.test> SIZE=10\r\n")),
            "250"
        );
        assert_eq!(
            s.handle_line(b"RCPT TO:<Support@Demo.example>\r\n"),
            Step::CheckRecipient("support@demo.example".into())
        );
        assert!(s.handle_recipient(Ok(true)).starts_with("250"));
        assert_eq!(code(&s.handle_line(b"DATA\r\n")), "354");
        assert_eq!(s.handle_line(b"Subject: hi\r\n"), Step::Nothing);
        assert_eq!(s.handle_line(b"\r\n"), Step::Nothing);
        assert_eq!(s.handle_line(b"..leading dot\r\n"), Step::Nothing);
        match s.handle_line(b".\r\n") {
            Step::Store(e) => {
                assert_eq!(e.mail_from, "a@x.test");
                assert_eq!(e.rcpt_to, vec!["support@demo.example".to_owned()]);
                assert_eq!(e.data, b"Subject: hi\r\n\r\n.leading dot\r\n");
            }
            other => panic!("{other:?}"),
        }
        assert!(s.handle_stored(Ok("m1".into())).starts_with("250 2.0.0"));
        // The next transaction starts clean.
        assert_eq!(code(&s.handle_line(b"DATA\r\n")), "503");
    }

    #[test]
    fn unknown_recipients_are_refused_at_rcpt_and_data_needs_one() {
        let mut s = session(1000);
        s.handle_line(b"EHLO c\r\n");
        s.handle_line(b"MAIL FROM:<>\r\n");
        assert_eq!(
            code(&s.handle_line(b"RCPT TO:<nobody@elsewhere.test>\r\n")),
            "chk"
        );
        assert!(s.handle_recipient(Ok(false)).starts_with("550 5.1.1"));
        assert_eq!(code(&s.handle_line(b"DATA\r\n")), "503");
        assert_eq!(code(&s.handle_line(b"RCPT TO:<x@y.test>\r\n")), "chk");
        assert!(s.handle_recipient(Err(())).starts_with("451"));
    }

    #[test]
    fn oversized_messages_get_552_at_mail_or_at_the_end_of_data() {
        let mut s = session(50);
        s.handle_line(b"EHLO c\r\n");
        assert_eq!(
            code(&s.handle_line(b"MAIL FROM:<a@b.test> SIZE=51\r\n")),
            "552"
        );
        assert_eq!(code(&s.handle_line(b"MAIL FROM:<a@b.test>\r\n")), "250");
        s.handle_line(b"RCPT TO:<s@d.test>\r\n");
        s.handle_recipient(Ok(true));
        s.handle_line(b"DATA\r\n");
        for _ in 0..10 {
            assert_eq!(s.handle_line(b"0123456789\r\n"), Step::Nothing);
        }
        let end = s.handle_line(b".\r\n");
        assert_eq!(code(&end), "552", "{end:?}");
        assert_eq!(code(&s.handle_line(b"NOOP\r\n")), "250");
    }

    #[test]
    fn bad_commands_get_clear_codes_and_end_the_session_when_they_go_on() {
        let mut s = session(50);
        assert_eq!(code(&s.handle_line(b"MAIL FROM:<a@b>\r\n")), "503");
        assert_eq!(code(&s.handle_line(b"EHLO\r\n")), "501");
        assert_eq!(code(&s.handle_line(b"\xff\xfe\r\n")), "500");
        assert_eq!(code(&s.handle_line(b"EHLO c")), "500");
        s.handle_line(b"EHLO c\r\n");
        assert_eq!(code(&s.handle_line(b"MAIL FROM:a@b\r\n")), "501");
        assert_eq!(code(&s.handle_line(b"MAIL FROM:<a b@c>\r\n")), "501");
        assert_eq!(code(&s.handle_line(b"MAIL FROM:<a@b> X=1\r\n")), "555");
        assert_eq!(code(&s.handle_line(b"AUTH PLAIN\r\n")), "502");
        let mut last = Step::Nothing;
        for _ in 0..5 {
            last = s.handle_line(b"BOGUS\r\n");
        }
        assert!(matches!(last, Step::Close(r) if r.starts_with("421")));
    }

    #[test]
    fn starttls_restarts_the_session() {
        let mut s = session(50);
        s.handle_line(b"EHLO c\r\n");
        assert_eq!(code(&s.handle_line(b"STARTTLS\r\n")), "220");
        s.handle_tls();
        assert_eq!(code(&s.handle_line(b"MAIL FROM:<a@b>\r\n")), "503");
        let again = s.handle_line(b"EHLO c\r\n");
        assert!(matches!(&again, Step::Reply(r) if !r.contains("STARTTLS")));
        assert_eq!(code(&s.handle_line(b"STARTTLS\r\n")), "454");
    }
}
