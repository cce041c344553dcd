//! Reading a received mail with `mail-parser` (pure, no I/O): addresses, the decoded subject
//! (RFC 2047 encoded words, any charset), the threading headers, the plain text (HTML-only mail
//! rendered to text), attachments and inline images, the authentication results the receiving
//! MTA recorded, and whether the mail was sent automatically (RFC 3834: bounces, auto-replies,
//! mailing lists), which is never answered automatically.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Why a mail is not a person writing (RFC 3834 3.1, RFC 2369, RFC 3464).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoKind {
    /// A delivery status notification (empty reverse path, MAILER-DAEMON, multipart/report).
    Bounce,
    /// An auto-reply (`Auto-Submitted` other than `no`, `Precedence: auto_reply`,
    /// `X-Autoreply`).
    AutoReply,
    /// A mailing list or bulk mail (`List-Id`, `List-Unsubscribe`, `Precedence: bulk|list|junk`).
    List,
}

impl AutoKind {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoKind::Bounce => "bounce",
            AutoKind::AutoReply => "auto_reply",
            AutoKind::List => "list",
        }
    }
}

/// A file that came with a mail.
#[derive(Debug, Clone)]
pub struct Part {
    /// The file name, if any.
    pub name: Option<String>,
    /// `type/subtype`.
    pub content_type: String,
    /// Shown inside the body (an inline image), not offered as a download.
    pub inline: bool,
    /// The `Content-ID` (what `cid:` URLs in the HTML name).
    pub content_id: Option<String>,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
}

/// What was read from a mail.
#[derive(Debug, Clone)]
pub struct ParsedMail {
    /// The Message-ID without angle brackets (made from the content's hash if missing).
    pub message_id: String,
    /// The first `From` address, lower-case.
    pub from_address: Option<String>,
    /// The first `From` display name.
    pub from_name: Option<String>,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// The decoded subject (may be empty).
    pub subject: String,
    /// `In-Reply-To` ids.
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first.
    pub references: Vec<String>,
    /// The plain text of the message.
    pub text: String,
    /// Whether an HTML body came with it.
    pub has_html: bool,
    /// Attachments and inline parts.
    pub parts: Vec<Part>,
    /// Sent automatically?
    pub auto: Option<AutoKind>,
    /// `Authentication-Results` headers (RFC 8601) added by the MTA in front.
    pub authentication_results: Vec<String>,
    /// `Received-SPF` headers (RFC 7208 9.1).
    pub received_spf: Vec<String>,
    /// Whether a `DKIM-Signature` header is present (not verified here).
    pub dkim_signed: bool,
}

/// The mail cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub &'static str);

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|s| clean_id(&s))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A message id without brackets, spaces or control characters.
pub fn clean_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(250)
        .collect()
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(str::to_lowercase)
            .collect()
    })
    .unwrap_or_default()
}

fn raw_headers(m: &mail_parser::Message<'_>, name: &str) -> Vec<String> {
    m.headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| one_line(v))
        .collect()
}

/// A header value on one line: folding undone, control characters (CR, LF, ...) dropped.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

fn is_daemon(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or_default();
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

/// Reads a mail. `mail_from` is the envelope's reverse path (empty for bounces).
pub fn parse(raw: &[u8], mail_from: &str) -> Result<ParsedMail, Unreadable> {
    let m = MessageParser::default()
        .parse(raw)
        .ok_or(Unreadable("the message has no header section"))?;
    if m.headers().is_empty() {
        return Err(Unreadable("the message has no header section"));
    }
    let from = m.from().and_then(|a| a.first());
    let from_address = from.and_then(|a| a.address()).map(str::to_lowercase);
    let from_name = from
        .and_then(|a| a.name())
        .map(one_line)
        .filter(|n| !n.is_empty());
    let message_id = m
        .message_id()
        .map(clean_id)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let h: String = Sha256::digest(raw)
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{h}@no-message-id.switchboard.invalid")
        });
    let texts: Vec<String> = (0..m.text_body_count())
        .filter_map(|i| m.body_text(i).map(|t| t.into_owned()))
        .collect();
    let mut parts = Vec::new();
    for p in m.attachments() {
        let content_type = p
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_lowercase();
        let inline = p.content_disposition().is_some_and(|d| d.is_inline())
            || (p.content_id().is_some()
                && !p.content_disposition().is_some_and(|d| d.is_attachment()));
        parts.push(Part {
            name: p.attachment_name().map(one_line),
            content_type,
            inline,
            content_id: p.content_id().map(clean_id),
            bytes: p.contents().to_vec(),
        });
    }
    let header_text = |n: &str| {
        m.header_raw(n)
            .map(|v| one_line(v).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let auto_submitted = header_text("Auto-Submitted");
    let precedence = header_text("Precedence");
    let is_report = m.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("multipart")
            && c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let auto = if mail_from.is_empty()
        || is_daemon(mail_from)
        || from_address.as_deref().is_some_and(is_daemon)
        || is_report
    {
        Some(AutoKind::Bounce)
    } else if (!auto_submitted.is_empty() && auto_submitted != "no")
        || precedence == "auto_reply"
        || m.header_raw("X-Autoreply").is_some()
        || m.header_raw("X-Autorespond").is_some()
    {
        Some(AutoKind::AutoReply)
    } else if m.header_raw("List-Id").is_some()
        || m.header_raw("List-Unsubscribe").is_some()
        || m.header_raw("List-Post").is_some()
        || matches!(precedence.as_str(), "bulk" | "list" | "junk")
    {
        Some(AutoKind::List)
    } else {
        None
    };
    Ok(ParsedMail {
        message_id,
        from_address,
        from_name,
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        subject: m.subject().map(one_line).unwrap_or_default(),
        in_reply_to: ids(m.in_reply_to()),
        references: ids(m.references()),
        text: texts.join("\n\n"),
        has_html: m.html_body_count() > 0 && m.html_bodies().any(|p| p.is_text_html()),
        parts,
        auto,
        authentication_results: raw_headers(&m, "Authentication-Results"),
        received_spf: raw_headers(&m, "Received-SPF"),
        dkim_signed: m.header_raw("DKIM-Signature").is_some(),
    })
}

impl ParsedMail {
    /// The JSON stored with the mail (without the bodies and files).
    pub fn summary(&self, attachments: &Value) -> Value {
        json!({
            "message_id": self.message_id,
            "from": self.from_address,
            "from_name": self.from_name,
            "to": self.to,
            "cc": self.cc,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "has_html": self.has_html,
            "auto": self.auto.map(AutoKind::as_str),
            "authentication_results": self.authentication_results,
            "received_spf": self.received_spf,
            "dkim_signed": self.dkim_signed,
            "attachments": attachments,
        })
    }
}

/// The ticket reference in a subject (`[#SB-XXXXXXXX]`), upper-case.
pub fn ticket_in_subject(subject: &str) -> Option<String> {
    let start = subject.find("[#")? + 2;
    let rest = &subject[start..];
    let end = rest.find(']')?;
    let r = rest[..end].trim().to_ascii_uppercase();
    (r.starts_with("SB-")
        && r.len() <= 20
        && r[3..].chars().all(|c| c.is_ascii_alphanumeric())
        && r.len() > 3)
        .then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persian_and_arabic_encoded_words_and_bodies_come_through_exactly() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let subject = "سفارش شماره ۱۲۳ — طلب رقم ١٢٣";
        let raw = format!(
            "From: =?UTF-8?B?{}?= <Sara@Example.test>\r\nTo: support@demo.example\r\n\
Subject: =?UTF-8?B?{}?=\r\nMessage-ID: <abc@example.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=windows-1256\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            b64("سارا"),
            b64(subject)
        );
        let mut bytes = raw.into_bytes();
        // "مرحبا" in windows-1256.
        bytes.extend_from_slice(&[0xE3, 0xD1, 0xCD, 0xC8, 0xC7, b'\r', b'\n']);
        let p = parse(&bytes, "sara@example.test").expect("parsed");
        assert_eq!(p.subject, subject);
        assert_eq!(p.from_name.as_deref(), Some("سارا"));
        assert_eq!(p.from_address.as_deref(), Some("sara@example.test"));
        assert_eq!(p.text.trim(), "مرحبا");
        assert_eq!(p.message_id, "abc@example.test");
        assert_eq!(p.auto, None);
    }

    #[test]
    fn automatic_mail_is_recognised() {
        let base = "From: a@b.test\r\nTo: s@d.test\r\nSubject: x\r\n";
        let with = |h: &str, from: &str| {
            parse(format!("{base}{h}\r\nbody\r\n").as_bytes(), from)
                .expect("parsed")
                .auto
        };
        assert_eq!(
            with("Auto-Submitted: auto-replied\r\n", "a@b.test"),
            Some(AutoKind::AutoReply)
        );
        assert_eq!(with("Auto-Submitted: no\r\n", "a@b.test"), None);
        assert_eq!(
            with("Precedence: bulk\r\n", "a@b.test"),
            Some(AutoKind::List)
        );
        assert_eq!(
            with("List-Id: <news.b.test>\r\n", "a@b.test"),
            Some(AutoKind::List)
        );
        assert_eq!(with("", ""), Some(AutoKind::Bounce));
        assert_eq!(with("", "MAILER-DAEMON@b.test"), Some(AutoKind::Bounce));
        assert_eq!(with("", "a@b.test"), None);
    }

    #[test]
    fn ticket_references_and_header_lines() {
        assert_eq!(
            ticket_in_subject("Re: [#SB-0A1B2C3D] help"),
            Some("SB-0A1B2C3D".into())
        );
        assert_eq!(
            ticket_in_subject("Re: [#sb-0a1b] help"),
            Some("SB-0A1B".into())
        );
        assert_eq!(ticket_in_subject("[#SB-] x"), None);
        assert_eq!(ticket_in_subject("[#XY-12] x"), None);
        assert_eq!(one_line("Hi\r\nBcc: x@y"), "Hi Bcc: x@y");
        assert_eq!(clean_id(" <a@b> "), "a@b");
    }

    #[test]
    fn garbage_is_unreadable_but_broken_mime_is_kept() {
        assert!(parse(b"", "a@b").is_err());
        let broken = b"From: a@b.test\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n";
        let p = parse(broken, "a@b.test").expect("kept");
        assert_eq!(p.subject, "broken");
    }
}
