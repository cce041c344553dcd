//! Email end to end against the real binary: `swaks` delivers mail (multipart, attachment,
//! Persian subject) to the SMTP port, the interaction is queued and offered, the agent replies
//! through the API, the reply reaches a local SMTP sink (the relay) with its threading headers,
//! and the customer's answer joins the same interaction. Hostile input: unknown recipients,
//! oversized and unreadable mail, malformed MIME, header injection through the subject, and
//! auto-responders that must not be answered.

mod common;
mod helpers;
mod messaging_support;

use base64::Engine as _;
use common::{Server, Session, TempDir};
use helpers::id_of;
use mail_parser::MimeHeaders as _;
use messaging_support::{accept_offer, chat};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One mail the sink received.
#[derive(Debug, Clone)]
struct Sunk {
    rcpt: Vec<String>,
    data: Vec<u8>,
}

impl Sunk {
    fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a readable mail")
    }
    fn header(&self, name: &str) -> String {
        self.parsed()
            .header_raw(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }
}

/// A tiny SMTP server playing the relay: records every mail, or refuses recipients with 550.
#[derive(Clone)]
struct Sink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Sunk>>>,
    refuse: Arc<Mutex<bool>>,
}

impl Sink {
    async fn start() -> Sink {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let sink = Sink {
            addr: l.local_addr().expect("addr"),
            mails: Arc::default(),
            refuse: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            loop {
                let Ok((c, _)) = l.accept().await else { return };
                let s = s.clone();
                tokio::spawn(async move { s.serve(c).await });
            }
        });
        sink
    }

    async fn serve(&self, c: tokio::net::TcpStream) {
        let (r, mut w) = c.into_split();
        let mut r = BufReader::new(r);
        let _ = w.write_all(b"220 sink ESMTP\r\n").await;
        let mut rcpt = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let up = line.to_ascii_uppercase();
            let answer: &[u8] = if up.starts_with("EHLO") {
                b"250-sink\r\n250 8BITMIME\r\n"
            } else if up.starts_with("RCPT") {
                if *self.refuse.lock().expect("lock") {
                    b"550 5.1.1 no such user\r\n"
                } else {
                    rcpt.push(line.trim().to_owned());
                    b"250 ok\r\n"
                }
            } else if up.starts_with("DATA") {
                let _ = w.write_all(b"354 go\r\n").await;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if r.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if l == b".\r\n" {
                        break;
                    }
                    let l = l.strip_prefix(b".").unwrap_or(&l).to_vec();
                    data.extend_from_slice(&l);
                }
                self.mails.lock().expect("lock").push(Sunk {
                    rcpt: std::mem::take(&mut rcpt),
                    data,
                });
                b"250 queued\r\n"
            } else if up.starts_with("QUIT") {
                let _ = w.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 ok\r\n"
            };
            let _ = w.write_all(answer).await;
        }
    }

    fn mails(&self) -> Vec<Sunk> {
        self.mails.lock().expect("lock").clone()
    }

    /// Waits until `n` mails arrived.
    async fn wait(&self, n: usize) -> Vec<Sunk> {
        for _ in 0..200 {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sink got {} mails, not {n}", self.mails().len());
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Runs swaks against the server; returns (exit ok, transcript).
fn swaks(s: &Server, args: &[&str]) -> (bool, String) {
    let smtp = s.smtp.expect("smtp= printed at start-up");
    let out = Command::new("swaks")
        .args([
            "--server",
            &smtp.ip().to_string(),
            "--port",
            &smtp.port().to_string(),
        ])
        .args(["--helo", "client.example.test", "--timeout", "20"])
        .args(args)
        .output()
        .expect("swaks runs (apt-get install swaks)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A raw SMTP conversation: sends each command and returns each reply (a DATA payload is
/// sent as given, it must end with CRLF.CRLF).
async fn smtp_talk(s: &Server, steps: &[&[u8]]) -> Vec<String> {
    let c = tokio::net::TcpStream::connect(s.smtp.expect("smtp"))
        .await
        .expect("connect");
    let (r, mut w) = c.into_split();
    let mut r = BufReader::new(r);
    let mut replies = Vec::new();
    replies.push(read_reply(&mut r).await);
    for step in steps {
        w.write_all(step).await.expect("write");
        replies.push(read_reply(&mut r).await);
    }
    replies
}

/// One whole transaction to support@demo.example with raw DATA (ending in CRLF.CRLF); the
/// replies, the last one to the data.
async fn deliver_raw(s: &Server, mail_from: &[u8], data: &[u8]) -> Vec<String> {
    smtp_talk(
        s,
        &[
            b"EHLO c\r\n",
            mail_from,
            b"RCPT TO:<support@demo.example>\r\n",
            b"DATA\r\n",
            data,
        ],
    )
    .await
}

/// One SMTP reply (all lines of a multi-line one).
async fn read_reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).await.unwrap_or(0) == 0 {
            return all;
        }
        all.push_str(&l);
        if l.len() < 4 || l.as_bytes()[3] == b' ' {
            return all;
        }
    }
}

async fn agent(s: &Server) -> Session {
    let a = s.login("agent1", "agent").await;
    a.set_state("available").await;
    a
}

/// The email interactions of the tenant, newest first.
async fn email_interactions(admin: &Session) -> Vec<Value> {
    admin
        .get("/api/v1/interactions?channel=email")
        .await
        .expect(200)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_interactions(admin: &Session, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let list = email_interactions(admin).await;
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} email interactions");
}

async fn email_view(admin: &Session, id: &str) -> Value {
    admin
        .get(&format!("/api/v1/interactions/{id}/messaging"))
        .await
        .expect(200)
}

/// Waits until the messages of an interaction satisfy `pred` (10 s at most).
async fn poll_messages(sess: &Session, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    sess.poll(
        &format!("/api/v1/interactions/{id}/messages"),
        Duration::from_secs(10),
        pred,
    )
    .await
}

async fn wait_delivery(admin: &Session, id: &str, message: &str, state: &str) -> Value {
    for _ in 0..200 {
        let v = email_view(admin, id).await;
        if let Some(d) = v["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["message_id"] == message && d["state"] == state)
        {
            return d.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "message {message} never became {state}: {}",
        email_view(admin, id).await
    );
}

#[tokio::test]
async fn mail_in_reply_out_answer_joins_the_same_interaction() {
    let dir = TempDir::new("email-e2e");
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_SMTP_RELAY", &relay)]);
    let admin = s.login("admin", "admin").await;
    let agent = agent(&s).await;

    // 1. The customer writes: multipart with an attachment, a Persian subject, an
    //    Authentication-Results header from the MTA in front.
    let subject = "سفارش شماره ۱۲۳ نرسیده است";
    let body = "سلام، بسته من هنوز نرسیده. لطفاً پیگیری کنید.";
    let attachment = dir.0.join("receipt.txt");
    std::fs::write(&attachment, "receipt 123\n").expect("write attachment");
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "sara@example.test",
            "--header",
            &format!("Subject: =?UTF-8?B?{}?=", b64(subject)),
            "--header",
            "From: =?UTF-8?B?2LPYp9ix2Kc=?= <sara@example.test>",
            "--header",
            "Message-ID: <first-1@example.test>",
            "--add-header",
            "Authentication-Results: mx.demo.example; spf=pass smtp.mailfrom=example.test; dkim=pass header.d=example.test",
            "--attach-type",
            "text/plain; charset=UTF-8",
            "--attach-body",
            body,
            "--attach-type",
            "text/plain",
            "--attach-name",
            "receipt.txt",
            "--attach",
            &format!("@{}", attachment.display()),
        ],
    );
    assert!(ok, "swaks delivered: {out}");
    assert!(out.contains("250 2.0.0 queued as"), "{out}");

    // 2. Queued and offered on channel email; the subject came through exactly.
    let id = accept_offer(&agent).await;
    let it = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    assert_eq!(it["channel"], "email");
    assert_eq!(it["subject"], subject);
    let msgs = poll_messages(&agent, &id, |v| v.as_array().is_some_and(|a| a.len() >= 2)).await;
    let msgs = msgs.as_array().cloned().unwrap_or_default();
    assert_eq!(msgs.len(), 2, "the mail and the acknowledgement: {msgs:?}");
    assert_eq!(msgs[0]["from"], "customer");
    assert_eq!(msgs[1]["from"], "system");
    assert!(
        msgs[0]["text"].as_str().expect("text").contains(body),
        "{msgs:?}"
    );
    assert_eq!(msgs[0]["name"], "سارا");

    // Stored raw and parsed, with the MTA's authentication results and the attachment.
    let v = email_view(&admin, &id).await;
    let ticket = v["email"]["ticket"].as_str().expect("ticket").to_owned();
    assert!(ticket.starts_with("SB-"), "{v}");
    let first = &v["email"]["mails"][0];
    assert_eq!(first["rfc_message_id"], "first-1@example.test");
    assert!(first["raw_size"].as_u64().expect("size") > 300);
    let h = &first["headers"];
    assert!(
        h["authentication_results"][0]
            .as_str()
            .expect("auth")
            .contains("spf=pass"),
        "{h}"
    );
    assert_eq!(h["from"], "sara@example.test");
    let files = h["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 1, "{h}");
    assert_eq!(files[0]["name"], "receipt.txt");
    assert_eq!(files[0]["size"], 12);

    // 3. The acknowledgement: ticket and response time, marked automatic, threaded.
    let mails = sink.wait(1).await;
    let ack = &mails[0];
    assert_eq!(ack.header("Auto-Submitted"), "auto-replied");
    assert_eq!(ack.header("In-Reply-To"), "<first-1@example.test>");
    let ack_subject = ack.parsed().subject().expect("subject").to_owned();
    assert_eq!(ack_subject, format!("Re: {subject} [#{ticket}]"));
    let ack_text = ack.parsed().body_text(0).expect("text").to_string();
    assert!(
        ack_text.contains(&ticket) && ack_text.contains("4 hours"),
        "{ack_text}"
    );
    assert!(ack.rcpt[0].contains("sara@example.test"), "{:?}", ack.rcpt);

    // 4. The agent replies through the API: the mail reaches the relay with its headers.
    let reply = agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "سلام سارا، بسته شما فردا می‌رسد."}),
        )
        .await
        .expect(201);
    let reply_id = id_of(&reply);
    let mails = sink.wait(2).await;
    let out_mail = &mails[1];
    let p = out_mail.parsed();
    assert_eq!(
        p.subject().expect("subject"),
        format!("Re: {subject} [#{ticket}]")
    );
    assert_eq!(out_mail.header("In-Reply-To"), "<first-1@example.test>");
    assert!(
        out_mail
            .header("References")
            .contains("<first-1@example.test>")
    );
    let mid = p.message_id().expect("Message-ID").to_owned();
    assert!(
        mid.starts_with(&reply_id) && mid.ends_with("@demo.example"),
        "{mid}"
    );
    assert_eq!(
        p.body_text(0).expect("text").trim(),
        "سلام سارا، بسته شما فردا می‌رسد."
    );
    assert!(out_mail.header("From").contains("support@demo.example"));
    assert_eq!(out_mail.header("Auto-Submitted"), "");
    wait_delivery(&admin, &id, &reply_id, "sent").await;
    // The stored copy is what was sent.
    let v = email_view(&admin, &id).await;
    let stored_out = v["email"]["mails"]
        .as_array()
        .expect("mails")
        .iter()
        .find(|m| m["message_id"] == reply_id.as_str())
        .cloned()
        .expect("the reply is stored");
    assert_eq!(stored_out["direction"], "out");
    assert_eq!(stored_out["rfc_message_id"], mid.as_str());

    // 5. The customer answers the reply (In-Reply-To only): same interaction.
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "sara@example.test",
            "--header",
            &format!("Subject: =?UTF-8?B?{}?=", b64(&format!("RE: {subject}"))),
            "--header",
            &format!("In-Reply-To: <{mid}>"),
            "--body",
            "Thank you! مرسی",
        ],
    );
    assert!(ok, "{out}");
    let msgs = poll_messages(&agent, &id, |v| v.as_array().is_some_and(|a| a.len() >= 4)).await;
    let last = msgs
        .as_array()
        .expect("list")
        .last()
        .cloned()
        .expect("last");
    assert_eq!(last["from"], "customer");
    assert!(last["text"].as_str().expect("text").contains("مرسی"));

    // 6. Lost headers, but the ticket reference in the subject: still the same interaction.
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "sara@example.test",
            "--header",
            &format!("Subject: one more thing [#{ticket}]"),
            "--body",
            "and the invoice please",
        ],
    );
    assert!(ok, "{out}");
    poll_messages(&agent, &id, |v| v.as_array().is_some_and(|a| a.len() >= 5)).await;

    // 7. A new topic from the same customer is a new interaction (and acknowledged).
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "sara@example.test",
            "--header",
            "Subject: a different question",
            "--body",
            "do you ship to Shiraz?",
        ],
    );
    assert!(ok, "{out}");
    let list = wait_interactions(&admin, 2).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let customers: Vec<&Value> = list.iter().map(|i| &i["customer_id"]).collect();
    assert_eq!(customers[0], customers[1], "one customer, two topics");
    sink.wait(3).await;

    // 8. A relay that refuses the recipient: the failure shows on the interaction.
    *sink.refuse.lock().expect("lock") = true;
    let reply = agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "one more"}),
        )
        .await
        .expect(201);
    let d = wait_delivery(&admin, &id, &id_of(&reply), "failed").await;
    assert!(d["error"].as_str().expect("error").contains("550"), "{d}");
    let it = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    let kinds: Vec<&str> = it["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().or(e["kind"].as_str()))
        .collect();
    assert!(kinds.contains(&"message.delivery"), "{kinds:?}");

    // No address or body reached the log.
    let log = s.log();
    assert!(
        !log.contains("sara@example.test") && !log.contains("سلام"),
        "{log}"
    );
}

#[tokio::test]
async fn hostile_mail_is_refused_or_contained_with_a_reason() {
    let dir = TempDir::new("email-hostile");
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(&cfg, "[email]\nmax_message_bytes = 20000\n").expect("config");
    let s = Server::start_with(
        &dir.0,
        &["--config", cfg.to_str().expect("path")],
        &[("SWITCHBOARD_SMTP_RELAY", &relay)],
    );
    let admin = s.login("admin", "admin").await;
    let agent = agent(&s).await;

    // Unknown recipients are refused at RCPT.
    let (ok, out) = swaks(
        &s,
        &["--to", "nobody@elsewhere.test", "--from", "x@example.test"],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("550 5.1.1"), "{out}");

    // Over the size limit: 552 at the end of DATA, nothing stored.
    let big = "x".repeat(70);
    let big_body = std::iter::repeat_n(big.as_str(), 400)
        .collect::<Vec<_>>()
        .join("\n");
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "big@example.test",
            "--body",
            &big_body,
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("552 5.3.4"), "{out}");
    // Announced too big: 552 at MAIL.
    let r = smtp_talk(
        &s,
        &[
            b"EHLO c\r\n",
            b"MAIL FROM:<big@example.test> SIZE=999999\r\n",
        ],
    )
    .await;
    assert!(r[2].starts_with("552"), "{r:?}");

    // No header section at all: refused with a reason.
    let r = deliver_raw(&s, b"MAIL FROM:<g@example.test>\r\n", b"\r\n\r\n.\r\n").await;
    assert!(r[5].starts_with("554 5.6.0"), "{r:?}");
    assert!(email_interactions(&admin).await.is_empty());

    // Malformed MIME (no closing boundary, broken base64) is accepted and kept.
    let broken = b"From: Broken <broken@example.test>\r\nTo: support@demo.example\r\nSubject: broken mime\r\nMessage-ID: <broken-1@example.test>\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nreadable part\r\n--zz\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n.\r\n";
    let r = deliver_raw(&s, b"MAIL FROM:<broken@example.test>\r\n", broken).await;
    assert!(r[5].starts_with("250"), "{r:?}");
    // The same mail again (a retrying MTA) stores nothing new.
    let again = deliver_raw(&s, b"MAIL FROM:<broken@example.test>\r\n", broken).await;
    assert!(again[5].starts_with("250"), "{again:?}");
    let list = wait_interactions(&admin, 1).await;
    assert_eq!(list.len(), 1);
    let broken_id = id_of(&list[0]);
    let acks = sink.wait(1).await;
    assert_eq!(acks.len(), 1, "one acknowledgement for the human mail");

    // Header injection through an encoded subject: the reply's subject stays one line.
    let evil = "Hello\r\nBcc: victim@evil.test\r\nX-Injected: yes";
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "mallory@example.test",
            "--header",
            &format!("Subject: =?UTF-8?B?{}?=", b64(evil)),
            "--header",
            "Message-ID: <evil-1@example.test>",
            "--body",
            "hi",
        ],
    );
    assert!(ok, "{out}");
    sink.wait(2).await;
    // Offers go one by one; accept until the injected one is ours.
    let mut evil_id = None;
    for _ in 0..2 {
        let id = accept_offer(&agent).await;
        let v = email_view(&admin, &id).await;
        if v["email"]["mails"][0]["rfc_message_id"] == "evil-1@example.test" {
            evil_id = Some(id);
            break;
        }
    }
    let evil_id = evil_id.expect("the injected mail was offered");
    agent
        .post(
            &format!("/api/v1/interactions/{evil_id}/messages"),
            json!({"text": "answer"}),
        )
        .await
        .expect(201);
    let mails = sink.wait(3).await;
    let reply = &mails[2];
    let p = reply.parsed();
    assert!(
        p.header_raw("Bcc").is_none() && p.header_raw("X-Injected").is_none(),
        "{}",
        String::from_utf8_lossy(&reply.data)
    );
    let subj = p.subject().expect("subject");
    assert!(!subj.contains('\r') && !subj.contains('\n'), "{subj:?}");
    assert!(
        subj.starts_with("Re: Hello Bcc: victim@evil.test"),
        "{subj}"
    );
    assert_eq!(reply.rcpt.len(), 1, "only the customer: {:?}", reply.rcpt);
    assert!(reply.rcpt[0].contains("mallory@example.test"));

    // Automatic mail is stored but never answered: auto-replies, bulk, lists, bounces.
    let before = sink.mails().len();
    let automatic: [(&str, &[&str]); 4] = [
        (
            "auto@example.test",
            &["--add-header", "Auto-Submitted: auto-replied"],
        ),
        ("bulk@example.test", &["--add-header", "Precedence: bulk"]),
        (
            "list@example.test",
            &["--add-header", "List-Id: <news.example.test>"],
        ),
        ("", &["--header", "From: MAILER-DAEMON@example.test"]),
    ];
    for (from, extra) in automatic {
        let mut args = vec![
            "--to",
            "support@demo.example",
            "--from",
            from,
            "--body",
            "automatic",
        ];
        args.extend_from_slice(extra);
        let (ok, out) = swaks(&s, &args);
        assert!(ok, "{out}");
    }
    // A loop between two auto-responders: the customer's responder answers our ack...
    let ack_id = sink.mails()[0]
        .parsed()
        .message_id()
        .expect("id")
        .to_owned();
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "broken@example.test",
            "--header",
            "Subject: Out of office",
            "--header",
            &format!("In-Reply-To: <{ack_id}>"),
            "--add-header",
            "Auto-Submitted: auto-replied",
            "--body",
            "I am away",
        ],
    );
    assert!(ok, "{out}");
    // ... it joins the interaction, and nothing answers it.
    let msgs = poll_messages(&admin, &broken_id, |v| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .any(|m| m["text"].as_str().is_some_and(|t| t.contains("I am away")))
        })
    })
    .await;
    assert!(msgs.as_array().is_some_and(|a| a.len() >= 2));
    let list = wait_interactions(&admin, 6).await;
    assert_eq!(list.len(), 6, "every automatic mail was kept: {list:?}");
    let autos: Vec<&Value> = list
        .iter()
        .filter(|i| !i["attributes"]["email_auto"].is_null())
        .collect();
    assert_eq!(autos.len(), 4, "{list:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.mails().len(),
        before,
        "no acknowledgement to automatic mail"
    );
}

#[tokio::test]
async fn without_a_relay_replies_wait_in_the_outbox_with_a_clear_status() {
    let dir = TempDir::new("email-norelay");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let agent = agent(&s).await;
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "Support@Demo.Example",
            "--from",
            "n@example.test",
            "--header",
            "Subject: hello",
            "--body",
            "hi",
        ],
    );
    assert!(ok, "{out}");
    let id = accept_offer(&agent).await;
    let reply = agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "hello back"}),
        )
        .await
        .expect(201);
    let rid = id_of(&reply);
    let mut status = Value::Null;
    for _ in 0..100 {
        let v = email_view(&admin, &id).await;
        if let Some(d) = v["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["message_id"] == rid.as_str())
            && d["outbox"]["last_error"].is_string()
        {
            status = d.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["state"], "queued", "{status}");
    assert_eq!(status["outbox"]["state"], "held", "{status}");
    assert_eq!(status["outbox"]["attempts"], 0, "{status}");
    assert!(
        status["outbox"]["last_error"]
            .as_str()
            .expect("reason")
            .contains("SWITCHBOARD_SMTP_RELAY"),
        "{status}"
    );
    // An email address is one account's only; addresses must be addresses; a new address
    // receives at once.
    for (name, address, queue, status, code) in [
        (
            "dup",
            "support@demo.example",
            "support",
            409,
            "address_taken",
        ),
        ("bad", "not an address", "support", 422, "invalid_value"),
        ("Sales mail", "sales@demo.example", "sales", 201, ""),
    ] {
        let r = admin
            .post(
                "/api/v1/channel-accounts",
                json!({"provider": "email", "name": name, "queue": queue,
                       "settings": {"address": address}}),
            )
            .await;
        if status == 201 {
            r.expect(201);
        } else {
            r.expect_error(status, code);
        }
    }
    let (ok, out) = swaks(
        &s,
        &["--to", "sales@demo.example", "--from", "n@example.test"],
    );
    assert!(ok, "{out}");
    // The next start with a relay sends what was held: the acknowledgement and the reply.
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    assert_eq!(s.terminate(), Some(0));
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_SMTP_RELAY", &relay)]);
    let mails = sink.wait(2).await;
    assert!(
        mails.iter().any(|m| m
            .parsed()
            .body_text(0)
            .is_some_and(|t| t.contains("hello back"))),
        "{mails:?}"
    );
    let admin = s.login("admin", "admin").await;
    wait_delivery(&admin, &id, &rid, "sent").await;
}

#[tokio::test]
async fn starttls_is_offered_with_a_certificate_and_mail_arrives_over_it() {
    let dir = TempDir::new("email-tls");
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            "[email]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("path")], &[]);
    let admin = s.login("admin", "admin").await;
    let r = smtp_talk(&s, &[b"EHLO c\r\n"]).await;
    assert!(r[1].contains("250-STARTTLS"), "{r:?}");
    let (ok, out) = swaks(
        &s,
        &[
            "--tls",
            "--to",
            "support@demo.example",
            "--from",
            "tls@example.test",
            "--header",
            "Subject: over TLS",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("TLS started"), "{out}");
    assert!(out.contains("250 2.0.0 queued as"), "{out}");
    let list = wait_interactions(&admin, 1).await;
    assert_eq!(list[0]["subject"], "over TLS");
    // A half-configured certificate is a configuration error naming the key.
    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        format!("[email]\ntls_cert = {:?}\n", cert.display().to_string()),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config", bad.to_str().expect("path")])
        .env("SWITCHBOARD_DATA", dir.0.join("other"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("email.tls_cert"));
}

#[tokio::test]
async fn a_chat_continued_by_email_is_answered_by_mail_and_the_answer_joins_it() {
    let dir = TempDir::new("email-continue");
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_SMTP_RELAY", &relay)]);
    let agent = agent(&s).await;
    let id = chat(&s, "Dana@Example.test").await;
    assert_eq!(accept_offer(&agent).await, id);
    agent
        .post(
            &format!("/api/v1/interactions/{id}/continue"),
            json!({"channel": "email"}),
        )
        .await
        .expect(200);
    let reply = agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "more by mail"}),
        )
        .await
        .expect(201);
    let mails = sink.wait(1).await;
    let mail = &mails[0];
    let mid = mail.parsed().message_id().expect("Message-ID").to_owned();
    assert!(mid.starts_with(id_of(&reply).as_str()), "{mid}");
    assert!(
        mail.rcpt[0].contains("dana@example.test"),
        "{:?}",
        mail.rcpt
    );
    let subject = mail.parsed().subject().expect("subject").to_owned();
    assert!(subject.contains("[#SB-"), "{subject}");
    let (ok, out) = swaks(
        &s,
        &[
            "--to",
            "support@demo.example",
            "--from",
            "dana@example.test",
            "--header",
            &format!("Subject: Re: {subject}"),
            "--header",
            &format!("In-Reply-To: <{mid}>"),
            "--body",
            "answering by mail",
        ],
    );
    assert!(ok, "{out}");
    let msgs = poll_messages(&agent, &id, |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("answering by mail"))
            })
        })
    })
    .await;
    assert_eq!(
        msgs.as_array().expect("list").last().expect("last")["from"],
        "customer"
    );
}

#[tokio::test]
async fn a_chat_transcript_asked_for_in_the_widget_is_mailed_when_the_chat_ends() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = TempDir::new("email-transcript");
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_SMTP_RELAY", &relay)]);
    let agent = agent(&s).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/chat/ws"))
        .await
        .expect("connect");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"type": "hello", "tenant": "demo", "queue": "support", "name": "Sara"}),
    ))
    .await
    .expect("send");
    ws.send(send(
        json!({"type": "message", "text": "سلام، رسید می‌خواهم"}),
    ))
    .await
    .expect("send");
    let mut id = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while id.is_none() {
        let f = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("frames in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = f {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "status" && v["interaction_id"].is_string() {
                id = v["interaction_id"].as_str().map(str::to_owned);
            }
        }
    }
    let id = id.expect("interaction");
    ws.send(send(
        json!({"type": "transcript", "email": "Sara@Example.test"}),
    ))
    .await
    .expect("send");
    assert_eq!(accept_offer(&agent).await, id);
    agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "مرحبا، هذا إيصالك"}),
        )
        .await
        .expect(201);
    // nothing is mailed while the chat goes on
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.mails().is_empty());
    agent
        .post(
            &format!("/api/v1/interactions/{id}/end"),
            json!({"disposition": "resolved"}),
        )
        .await
        .expect(200);
    let mails = sink.wait(1).await;
    let mail = &mails[0];
    assert!(
        mail.rcpt[0].contains("sara@example.test"),
        "{:?}",
        mail.rcpt
    );
    let body = mail.parsed().body_text(0).expect("text").into_owned();
    assert!(body.contains("سلام، رسید می‌خواهم"), "{body}");
    assert!(body.contains("مرحبا، هذا إيصالك"), "{body}");
    let subject = mail.parsed().subject().expect("subject").to_owned();
    assert!(subject.contains("[#SB-"), "{subject}");
    // it goes out once, and the interaction's events say so
    let it = agent
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    let sent = common::event_types(&it)
        .iter()
        .filter(|t| *t == "chat.transcript_sent")
        .count();
    assert_eq!(sent, 1, "{it}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().len(), 1);
}

// ----- SPF / DKIM / DMARC -----

/// A small authoritative DNS server on loopback UDP answering TXT queries from a table (names
/// lower-case, without the final dot); other names get NXDOMAIN, other types an empty answer.
struct Dns {
    addr: SocketAddr,
}

impl Dns {
    async fn start(records: Vec<(&str, String)>) -> Dns {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind dns");
        let addr = sock.local_addr().expect("addr");
        let table: std::collections::HashMap<String, Vec<String>> =
            records
                .into_iter()
                .fold(Default::default(), |mut m, (k, v)| {
                    m.entry(k.to_owned()).or_default().push(v);
                    m
                });
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(answer) = dns_answer(&buf[..n], &table) {
                    let _ = sock.send_to(&answer, from).await;
                }
            }
        });
        Dns { addr }
    }
}

/// RFC 1035 4.1: the response to one query.
fn dns_answer(q: &[u8], table: &std::collections::HashMap<String, Vec<String>>) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question = &q[12..i + 4];
    let name = labels.join(".");
    let found = table.get(&name);
    let answers: Vec<&String> = match (found, qtype) {
        (Some(v), 16) => v.iter().collect(),
        _ => Vec::new(),
    };
    let rcode = if found.is_none() && !table.keys().any(|k| k.ends_with(&format!(".{name}"))) {
        3
    } else {
        0
    };
    let mut r = Vec::new();
    r.extend_from_slice(&q[0..2]);
    r.extend_from_slice(&[0x84 | (q[2] & 1), 0x80 | rcode]);
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(question);
    for a in answers {
        let mut rdata = Vec::new();
        for chunk in a.as_bytes().chunks(255) {
            rdata.push(chunk.len() as u8);
            rdata.extend_from_slice(chunk);
        }
        r.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
    }
    Some(r)
}

/// A test DKIM key (Ed25519, PKCS#8) and the DNS records of example.test: the key under
/// selector `sel`, SPF allowing 127.0.0.1, and a DMARC reject policy.
fn test_key() -> (Vec<u8>, Vec<(&'static str, String)>) {
    use mail_auth::common::crypto::Ed25519Key;
    let pkcs8 = Ed25519Key::generate_pkcs8().expect("generate a test key");
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("key");
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    let records = vec![
        (
            "sel._domainkey.example.test",
            format!("v=DKIM1; k=ed25519; p={public}"),
        ),
        ("example.test", "v=spf1 ip4:127.0.0.1 -all".to_owned()),
        ("_dmarc.example.test", "v=DMARC1; p=reject".to_owned()),
    ];
    (pkcs8, records)
}

/// A mail from sara@example.test signed with the test key by example.test.
fn signed_mail(pkcs8: &[u8], message_id: &str, text: &str) -> Vec<u8> {
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;
    let key = Ed25519Key::from_pkcs8_der(pkcs8).expect("key");
    let body = format!(
        "From: Sara <sara@example.test>\r\nTo: support@demo.example\r\nSubject: Signed order question\r\nMessage-ID: <{message_id}>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\n{text}\r\n"
    );
    let sig = DkimSigner::from_key(key)
        .domain("example.test")
        .selector("sel")
        .headers(["From", "To", "Subject", "Message-ID", "Date"])
        .sign(body.as_bytes())
        .expect("sign");
    let mut raw = sig.to_header().into_bytes();
    raw.extend_from_slice(body.as_bytes());
    raw
}

/// Sends raw mail (CRLF line ends, no final dot) with SMTP dot-stuffing.
async fn deliver_mail(s: &Server, raw: &[u8]) -> Vec<String> {
    let mut data = Vec::new();
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    data.extend_from_slice(b".\r\n");
    smtp_talk(
        s,
        &[
            b"EHLO mx.example.test\r\n",
            b"MAIL FROM:<sara@example.test>\r\n",
            b"RCPT TO:<support@demo.example>\r\n",
            b"DATA\r\n",
            &data,
        ],
    )
    .await
}

/// The `headers.auth` of the mail with this Message-ID, once its interaction exists.
async fn auth_of(admin: &Session, message_id: &str) -> Value {
    for _ in 0..200 {
        for it in email_interactions(admin).await {
            let v = email_view(admin, it["id"].as_str().expect("id")).await;
            if let Some(m) = v["email"]["mails"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["rfc_message_id"] == message_id)
            {
                return m["headers"]["auth"].clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no stored mail {message_id}");
}

fn server_with_dns(dir: &TempDir, dns: &str, timeout_ms: u64) -> Server {
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(&cfg, format!("[email]\ndns_timeout_ms = {timeout_ms}\n"))
        .expect("write config");
    Server::start_with(
        &dir.0,
        &["--config", cfg.to_str().expect("utf8")],
        &[("SWITCHBOARD_DNS", dns)],
    )
}

#[tokio::test]
async fn spf_dkim_and_dmarc_are_verified_and_shown_a_tampered_body_fails() {
    let dir = TempDir::new("email-auth");
    let (key, mut records) = test_key();
    records.push(("strict.example.test", "v=spf1 -all".to_owned()));
    let dns = Dns::start(records).await;
    let s = server_with_dns(&dir, &dns.addr.to_string(), 1000);
    let admin = s.login("admin", "admin").await;

    let raw = signed_mail(&key, "signed-1@example.test", "Where is order 77?");
    let replies = deliver_mail(&s, &raw).await;
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "{replies:?}"
    );
    let auth = auth_of(&admin, "signed-1@example.test").await;
    assert_eq!(auth["verified"], true, "{auth}");
    assert_eq!(auth["spf"]["result"], "pass", "{auth}");
    assert_eq!(auth["spf"]["domain"], "example.test", "{auth}");
    assert_eq!(auth["dkim"][0]["result"], "pass", "{auth}");
    assert_eq!(auth["dkim"][0]["domain"], "example.test", "{auth}");
    assert_eq!(auth["dkim"][0]["selector"], "sel", "{auth}");
    assert_eq!(auth["dmarc"]["result"], "pass", "{auth}");
    assert_eq!(auth["dmarc"]["policy"], "reject", "{auth}");
    assert_eq!(auth["dmarc"]["dkim_aligned"], "pass", "{auth}");

    // The body changed after signing: the body hash no longer matches (RFC 6376 6.1.3).
    let raw = signed_mail(&key, "signed-2@example.test", "Where is order 77?");
    let tampered = String::from_utf8(raw)
        .expect("utf8")
        .replace("order 77?", "order 78?");
    let replies = deliver_mail(&s, tampered.as_bytes()).await;
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "a failing signature does not refuse the mail: {replies:?}"
    );
    let auth = auth_of(&admin, "signed-2@example.test").await;
    assert_eq!(auth["dkim"][0]["result"], "fail", "{auth}");
    assert_eq!(auth["dkim"][0]["domain"], "example.test", "{auth}");
    // SPF still passes aligned, so DMARC passes on SPF (RFC 7489 4.2).
    assert_eq!(auth["spf"]["result"], "pass", "{auth}");
    assert_ne!(auth["dmarc"]["dkim_aligned"], "pass", "{auth}");
    assert_eq!(auth["dmarc"]["result"], "pass", "{auth}");
    assert_eq!(auth["dmarc"]["spf_aligned"], "pass", "{auth}");

    // A domain whose SPF allows no host at all (`-all`): SPF fails, the mail is kept.
    let replies = smtp_talk(
        &s,
        &[
            b"EHLO mx.example.test\r\n",
            b"MAIL FROM:<bob@strict.example.test>\r\n",
            b"RCPT TO:<support@demo.example>\r\n",
            b"DATA\r\n",
            b"From: bob@strict.example.test\r\nMessage-ID: <strict-1@example.test>\r\nSubject: hi\r\n\r\nhello\r\n.\r\n",
        ],
    )
    .await;
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "{replies:?}"
    );
    let auth = auth_of(&admin, "strict-1@example.test").await;
    assert_eq!(auth["spf"]["result"], "fail", "{auth}");
    assert_eq!(auth["spf"]["domain"], "strict.example.test", "{auth}");
    assert_eq!(auth["dkim"], json!([]), "{auth}");
}

#[tokio::test]
async fn without_dns_mail_is_accepted_quickly_with_temperror() {
    let dir = TempDir::new("email-auth-nodns");
    // A DNS server that never answers: a bound socket nobody reads.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let s = server_with_dns(&dir, &silent.local_addr().expect("addr").to_string(), 300);
    let admin = s.login("admin", "admin").await;
    let (key, _) = test_key();
    let raw = signed_mail(&key, "nodns-1@example.test", "Anyone there?");
    let started = tokio::time::Instant::now();
    let replies = deliver_mail(&s, &raw).await;
    let took = started.elapsed();
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "{replies:?}"
    );
    assert!(took < Duration::from_secs(5), "the 250 took {took:?}");
    let auth = auth_of(&admin, "nodns-1@example.test").await;
    assert_eq!(auth["spf"]["result"], "temperror", "{auth}");
    assert_eq!(auth["dkim"][0]["result"], "temperror", "{auth}");
    assert_eq!(auth["dmarc"]["result"], "temperror", "{auth}");
    // Right after a timeout the resolver rests: the next mail is not slowed down at all.
    let raw = signed_mail(&key, "nodns-2@example.test", "Still there?");
    let started = tokio::time::Instant::now();
    let replies = deliver_mail(&s, &raw).await;
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "{replies:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let auth = auth_of(&admin, "nodns-2@example.test").await;
    assert_eq!(auth["dkim"][0]["result"], "temperror", "{auth}");
}

// ----- IMAP polling against a real Dovecot -----

/// A private Dovecot (IMAP only, plain text on loopback) with one passwd-file user `sara` /
/// `secret`, all under a temp dir; stopped when dropped.
struct Dovecot {
    port: u16,
    child: std::process::Child,
    /// Its sockets: a short path of its own (a Unix socket path has at most 107 bytes).
    run: std::path::PathBuf,
}

impl Dovecot {
    fn start(dir: &std::path::Path) -> Dovecot {
        Dovecot::start_with(dir, None, "")
    }

    /// With `tls` (certificate and key PEM files), STARTTLS is offered and required for login.
    fn start_with(
        dir: &std::path::Path,
        tls: Option<(&std::path::Path, &std::path::Path)>,
        extra: &str,
    ) -> Dovecot {
        let bin = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("dovecot is not installed: apt-get install -y dovecot-imapd (scripts/test.sh installs it)")
            });
        let root = dir.join("dovecot");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let run = std::path::PathBuf::from(format!("/tmp/sbdv-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&run).expect("dovecot run dir");
        for d in ["state", "mail"] {
            std::fs::create_dir_all(root.join(d)).expect("dovecot dirs");
        }
        // The mail user is `nobody` (Dovecot refuses uid 0 for mail).
        std::os::unix::fs::chown(root.join("mail"), Some(65534), Some(65534))
            .expect("chown the maildir to nobody (the tests run as root)");
        let r = root.display();
        let b = run.display();
        std::fs::write(
            root.join("passwd"),
            format!("sara:{{PLAIN}}secret:65534:65534::{r}/home::\n"),
        )
        .expect("passwd");
        std::fs::write(
            root.join("dovecot.conf"),
            format!(
                "base_dir = {b}\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\n\
                 protocols = imap\nlisten = 127.0.0.1\n{ssl}\
                 auth_mechanisms = plain login\nmail_location = maildir:{r}/mail/%u\n\
                 first_valid_uid = 1\nmailbox_idle_check_interval = 1 secs\n\
                 passdb {{\n driver = passwd-file\n args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
                 userdb {{\n driver = passwd-file\n args = username_format=%u {r}/passwd\n}}\n\
                 service imap-login {{\n inet_listener imap {{\n  address = 127.0.0.1\n  port = {port}\n }}\n inet_listener imaps {{\n  port = 0\n }}\n}}\n\
                 service pop3-login {{\n inet_listener pop3 {{\n  port = 0\n }}\n}}\n{extra}\n",
                ssl = match tls {
                    None => "ssl = no\ndisable_plaintext_auth = no\n".to_owned(),
                    Some((cert, key)) => format!(
                        "ssl = required\nssl_cert = <{}\nssl_key = <{}\n",
                        cert.display(),
                        key.display()
                    ),
                }
            ),
        )
        .expect("dovecot.conf");
        let child = Command::new(bin)
            .args(["-F", "-c"])
            .arg(root.join("dovecot.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dovecot");
        let d = Dovecot { port, child, run };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "dovecot did not listen on {port}: {}",
            std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default()
        );
    }
}

impl Dovecot {
    fn log(&self, dir: &std::path::Path) -> String {
        std::fs::read_to_string(dir.join("dovecot").join("dovecot.log")).unwrap_or_default()
    }
}

/// A test CA and a certificate it signed for 127.0.0.1 and localhost: (ca.pem, cert.pem,
/// key.pem) under `dir`, made with the openssl command.
fn test_certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints = CA:FALSE\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n",
    )
    .expect("ext");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Switchboard Test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

/// A logged-in IMAP connection of the test (a few commands by hand).
struct Imap {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    n: u32,
}

impl Imap {
    async fn login(port: u16) -> Imap {
        let c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect dovecot");
        let (r, w) = c.into_split();
        let mut i = Imap {
            r: BufReader::new(r),
            w,
            n: 0,
        };
        let mut greeting = String::new();
        i.r.read_line(&mut greeting).await.expect("greeting");
        let ok = i.cmd("LOGIN sara secret").await;
        assert!(ok.contains(" OK"), "{ok}");
        let ok = i.cmd("SELECT INBOX").await;
        assert!(ok.contains(" OK"), "{ok}");
        i
    }

    /// Sends a command (with a literal after `{n+}` given inline) and reads to its tagged end.
    async fn cmd(&mut self, c: &str) -> String {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.w
            .write_all(format!("{tag} {c}\r\n").as_bytes())
            .await
            .expect("write");
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).await.unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    async fn append(&mut self, mail: &str, flags: &str) {
        let r = self
            .cmd(&format!(
                "APPEND INBOX ({flags}) {{{}+}}\r\n{mail}",
                mail.len()
            ))
            .await;
        assert!(r.contains(" OK"), "{r}");
    }

    /// Waits until no mail of the mailbox is unseen (Switchboard flags what it imported).
    async fn wait_all_seen(&mut self) {
        let mut seen = String::new();
        for _ in 0..100 {
            seen = self.cmd("UID SEARCH UNSEEN").await;
            if seen.lines().any(|l| l.trim() == "* SEARCH") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("still unseen: {seen}");
    }
}

fn imap_mail(id: &str, subject: &str) -> String {
    format!(
        "Return-Path: <noor@example.test>\r\nFrom: Noor <noor@example.test>\r\nTo: support@demo.example\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Fri, 04 Dec 2026 09:00:00 +0000\r\n\r\nSent to the mailbox the business keeps elsewhere.\r\n"
    )
}

/// The subjects of the tenant's email interactions.
async fn email_subjects(admin: &Session) -> Vec<String> {
    let mut v: Vec<String> = email_interactions(admin)
        .await
        .iter()
        .filter_map(|i| i["subject"].as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

async fn wait_subjects(admin: &Session, want: &[&str]) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..300 {
        got = email_subjects(admin).await;
        if want.iter().all(|w| got.iter().any(|g| g == w)) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("wanted {want:?}, the interactions are {got:?}");
}

#[tokio::test]
async fn imap_mail_is_imported_once_flagged_seen_and_new_mail_comes_by_idle() {
    let dir = TempDir::new("email-imap");
    let dovecot = Dovecot::start(&dir.0);
    let mut imap = Imap::login(dovecot.port).await;
    // Already read in another client: not ours to import. Unread: imported.
    imap.append(&imap_mail("old-1@example.test", "Read long ago"), "\\Seen")
        .await;
    imap.append(
        &imap_mail("imap-1@example.test", "Unread in the mailbox"),
        "",
    )
    .await;

    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[email.imap]]\naddress = \"support@demo.example\"\nhost = \"127.0.0.1\"\nport = {}\n\
             security = \"plain\"\nuser = \"sara\"\npassword = \"secret\"\nfolder = \"INBOX\"\n\
             poll_interval_secs = 60\n",
            dovecot.port
        ),
    )
    .expect("config");
    let args = ["--config", cfg.to_str().expect("utf8")];
    let s = Server::start_with(&dir.0, &args, &[]);
    let admin = s.login("admin", "admin").await;
    let got = wait_subjects(&admin, &["Unread in the mailbox"]).await;
    assert_eq!(got, ["Unread in the mailbox"], "the seen mail stays out");

    // Stored raw and parsed, like mail over SMTP; then flagged \Seen on the server.
    let it = &email_interactions(&admin).await[0];
    let view = email_view(&admin, it["id"].as_str().expect("id")).await;
    let mail = &view["email"]["mails"][0];
    assert_eq!(mail["rfc_message_id"], "imap-1@example.test", "{view}");
    assert_eq!(mail["headers"]["from"], "noor@example.test", "{view}");
    assert!(mail["raw_size"].as_u64().unwrap_or(0) > 100, "{view}");
    imap.wait_all_seen().await;

    // New mail while we IDLE: it comes within seconds, though the poll interval is a minute.
    imap.append(
        &imap_mail("imap-2@example.test", "Arrived while idling"),
        "",
    )
    .await;
    wait_subjects(&admin, &["Arrived while idling", "Unread in the mailbox"]).await;
    // Its interaction shows before its mail is stored (the router commits first): the import
    // is over once the mail is flagged \Seen, which comes after it is stored and its UID
    // recorded.
    imap.wait_all_seen().await;

    // A restart: even with the mail marked unseen again, nothing is imported twice (the
    // UIDVALIDITY/UID in the store), and what arrived meanwhile is.
    drop(s);
    let r = imap.cmd("UID STORE 1:* -FLAGS (\\Seen)").await;
    assert!(r.contains(" OK"), "{r}");
    imap.append(
        &imap_mail("imap-3@example.test", "Arrived while we were down"),
        "",
    )
    .await;
    let s = Server::start_with(&dir.0, &args, &[]);
    let admin = s.login("admin", "admin").await;
    let got = wait_subjects(
        &admin,
        &[
            "Arrived while idling",
            "Arrived while we were down",
            "Unread in the mailbox",
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_later = email_subjects(&admin).await;
    assert_eq!(got, got_later);
    assert_eq!(
        got_later,
        [
            "Arrived while idling",
            "Arrived while we were down",
            "Unread in the mailbox"
        ],
        "each mail once, the one read elsewhere never"
    );
}

// ----- replies with files and an HTML alternative -----

#[tokio::test]
async fn an_agent_reply_carries_files_and_a_safe_html_alternative() {
    let dir = TempDir::new("email-files");
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_SMTP_RELAY", &relay)]);
    let admin = s.login("admin", "admin").await;
    let agent = agent(&s).await;
    let replies = deliver_raw(
        &s,
        b"MAIL FROM:<omid@example.test>\r\n",
        b"From: Omid <omid@example.test>\r\nTo: support@demo.example\r\nSubject: Invoice please\r\nMessage-ID: <inv-1@example.test>\r\n\r\nCould you send my invoice?\r\n.\r\n",
    )
    .await;
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "{replies:?}"
    );
    let id = accept_offer(&agent).await;
    sink.wait(1).await; // the acknowledgement

    // The agent uploads two files, then replies with them.
    let pdf = b"%PDF-1.4\n% a tiny invoice\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let up = agent
        .post_bytes(
            "/api/v1/attachments?name=invoice%20123.pdf",
            "application/pdf",
            pdf.clone(),
        )
        .await
        .expect(201);
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake but well-started".to_vec();
    let up2 = agent
        .post_bytes(
            "/api/v1/attachments?name=stamp.png",
            "image/png",
            png.clone(),
        )
        .await
        .expect(201);
    // A file whose bytes are not what it claims is refused.
    agent
        .post_bytes(
            "/api/v1/attachments?name=x.pdf",
            "application/pdf",
            b"<html>".to_vec(),
        )
        .await
        .expect_error(422, "attachment_content_mismatch");
    let text = "Dear Omid,\n\nyour invoice is attached <b>as promised</b> & more: https://example.test/inv?id=1&x=2\n\nسپاس";
    let reply = agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": text, "attachments": [id_of(&up), id_of(&up2)]}),
        )
        .await
        .expect(201);
    assert_eq!(
        reply["attachments"].as_array().map(Vec::len),
        Some(2),
        "{reply}"
    );
    let reply_id = id_of(&reply);

    let mails = sink.wait(2).await;
    let out = &mails[1];
    let raw = String::from_utf8_lossy(&out.data).to_string();
    let p = out.parsed();
    assert!(
        out.header("Content-Type").starts_with("multipart/mixed"),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert_eq!(
        p.body_text(0).expect("text").trim().replace("\r\n", "\n"),
        text.trim()
    );
    let html = p.body_html(0).expect("an HTML alternative").to_string();
    assert!(
        html.contains("&lt;b&gt;as promised&lt;/b&gt; &amp; more"),
        "the HTML is the text escaped: {html}"
    );
    assert!(!html.contains("<b>"), "{html}");
    assert!(
        html.contains("<a href=\"https://example.test/inv?id=1&amp;x=2\">"),
        "{html}"
    );
    assert!(html.contains("dir=\"auto\""), "{html}");
    let files: Vec<_> = p.attachments().collect();
    assert_eq!(files.len(), 2, "{raw}");
    assert_eq!(files[0].attachment_name(), Some("invoice 123.pdf"));
    assert_eq!(files[0].contents(), pdf.as_slice());
    assert_eq!(
        files[0]
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))),
        Some("application/pdf".to_owned())
    );
    assert_eq!(files[1].attachment_name(), Some("stamp.png"));
    assert_eq!(files[1].contents(), png.as_slice());
    // Threading as for any reply.
    assert_eq!(out.header("In-Reply-To"), "<inv-1@example.test>");
    wait_delivery(&admin, &id, &reply_id, "sent").await;
    // The stored copy lists the files; they can be downloaded from the interaction.
    let v = email_view(&admin, &id).await;
    let stored = v["email"]["mails"]
        .as_array()
        .expect("mails")
        .iter()
        .find(|m| m["message_id"] == reply_id.as_str())
        .cloned()
        .expect("stored");
    assert_eq!(
        stored["headers"]["attachments"][0]["name"], "invoice 123.pdf",
        "{stored}"
    );
    assert_eq!(stored["headers"]["has_html"], true);
    let got = reqwest::Client::new()
        .get(s.url(&format!(
            "/api/v1/interactions/{id}/attachments/{}",
            id_of(&up)
        )))
        .bearer_auth(&agent.token)
        .send()
        .await
        .expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), pdf.as_slice());
    // A file already sent cannot be sent again.
    agent
        .post(
            &format!("/api/v1/interactions/{id}/messages"),
            json!({"text": "again", "attachments": [id_of(&up)]}),
        )
        .await
        .expect_error(422, "unknown_attachment");
}

// ----- the email service-level clock -----

async fn support_queue(admin: &Session) -> String {
    let qs = admin.get("/api/v1/queues").await.expect(200);
    qs.as_array()
        .into_iter()
        .flatten()
        .find(|q| q["name"] == "support")
        .and_then(|q| q["id"].as_str())
        .expect("the demo's support queue")
        .to_owned()
}

async fn mail_in(s: &Server, id: &str, subject: &str) -> Vec<String> {
    let data = format!(
        "From: Lale <lale@example.test>\r\nTo: support@demo.example\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\nHello.\r\n.\r\n"
    );
    deliver_raw(s, b"MAIL FROM:<lale@example.test>\r\n", data.as_bytes()).await
}

async fn interaction_with_subject(admin: &Session, subject: &str) -> Value {
    for _ in 0..200 {
        if let Some(it) = email_interactions(admin)
            .await
            .into_iter()
            .find(|i| i["subject"] == subject)
        {
            return admin
                .get(&format!(
                    "/api/v1/interactions/{}",
                    it["id"].as_str().expect("id")
                ))
                .await
                .expect(200);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no interaction {subject:?}");
}

#[tokio::test]
async fn email_interactions_carry_a_due_time_in_business_hours_and_breaches_are_events() {
    let dir = TempDir::new("email-sla");
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(&cfg, "[email]\nsla_check_secs = 1\n").expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("utf8")], &[]);
    let admin = s.login("admin", "admin").await;
    let queue = support_queue(&admin).await;

    // Without an email_sla, no due time.
    mail_in(&s, "sla-0@example.test", "No clock").await;
    let it = interaction_with_subject(&admin, "No clock").await;
    assert!(it["attributes"]["email_sla"].is_null(), "{it}");
    let created: jiff::Timestamp = it["created_at"]
        .as_str()
        .expect("created_at")
        .parse()
        .expect("RFC 3339");
    let today = created.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let days: Vec<String> = (0..3)
        .map(|n| {
            today
                .checked_add(jiff::Span::new().days(n))
                .expect("date")
                .to_string()
        })
        .collect();

    // Open around the clock, except three holidays from today: 4 hours are due at 04:00 on
    // the day after them.
    admin
        .patch(
            &format!("/api/v1/queues/{queue}"),
            json!({"email_sla": {"hours": 4, "business_hours": {
                "time_zone": "UTC",
                "open": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "from": "00:00", "to": "24:00"}],
                "holidays": days}}}),
        )
        .await
        .expect(200);
    // A schedule that never opens is refused.
    admin
        .patch(
            &format!("/api/v1/queues/{queue}"),
            json!({"email_sla": {"hours": 4, "business_hours": {"time_zone": "UTC", "open": []}}}),
        )
        .await
        .expect_error(422, "invalid_value");
    mail_in(&s, "sla-1@example.test", "Over the holidays").await;
    let it = interaction_with_subject(&admin, "Over the holidays").await;
    let sla = &it["attributes"]["email_sla"];
    let after = today.checked_add(jiff::Span::new().days(3)).expect("date");
    assert_eq!(sla["due_at"], format!("{after}T04:00:00.000Z"), "{it}");
    assert_eq!(sla["hours"], 4.0);
    assert_eq!(sla["business_hours"], true);

    // A clock of 1.8 s without business hours: breached, reported once as an event.
    admin
        .patch(
            &format!("/api/v1/queues/{queue}"),
            json!({"email_sla": {"hours": 0.0005}}),
        )
        .await
        .expect(200);
    mail_in(&s, "sla-2@example.test", "Quick one").await;
    let it = interaction_with_subject(&admin, "Quick one").await;
    let id = it["id"].as_str().expect("id").to_owned();
    assert_eq!(it["attributes"]["email_sla"]["business_hours"], false);
    let mut breaches = Vec::new();
    for _ in 0..100 {
        let v = admin
            .get(&format!("/api/v1/interactions/{id}"))
            .await
            .expect(200);
        breaches = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "email.sla_breached")
            .cloned()
            .collect();
        if !breaches.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(
        breaches[0]["data"]["due_at"],
        it["attributes"]["email_sla"]["due_at"]
    );
    // Not reported again by later sweeps; the holiday one is not due.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = admin
        .get(&format!("/api/v1/interactions/{id}"))
        .await
        .expect(200);
    let n = v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "email.sla_breached")
        .count();
    assert_eq!(n, 1);
    let held = interaction_with_subject(&admin, "Over the holidays").await;
    assert!(
        !held["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["type"] == "email.sla_breached"),
        "{held}"
    );
    assert!(
        s.metrics()
            .await
            .contains("switchboard_email_sla_breached_total 1")
    );
}

// ----- a real MTA in front: Postfix relaying to our SMTP port -----

/// A private Postfix (its own config, queue and log under a short temp path) that accepts mail
/// for demo.example on a free loopback port and relays it to `to`; stopped when dropped.
struct Postfix {
    port: u16,
    child: std::process::Child,
    root: std::path::PathBuf,
}

impl Postfix {
    fn start(to: SocketAddr) -> Postfix {
        let master = "/usr/lib/postfix/sbin/master";
        assert!(
            std::path::Path::new(master).exists(),
            "postfix is not installed: apt-get install -y postfix (scripts/test.sh installs it)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Short: Postfix's Unix sockets live under the queue directory (107 bytes at most).
        let root = std::path::PathBuf::from(format!("/tmp/sbpf-{}-{port}", std::process::id()));
        let etc = root.join("etc");
        let queue = root.join("queue");
        std::fs::create_dir_all(queue.join("pid")).expect("postfix dirs");
        std::fs::create_dir_all(&etc).expect("postfix etc");
        // The accounts the package made: `getent passwd postfix`, `getent group postdrop`.
        let id = |db: &str, name: &str| -> u32 {
            let out = Command::new("getent")
                .args([db, name])
                .output()
                .expect("getent");
            String::from_utf8_lossy(&out.stdout)
                .split(':')
                .nth(2)
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} account: apt-get install -y postfix"))
        };
        let (postfix, postdrop) = (id("passwd", "postfix"), id("group", "postdrop"));
        use std::os::unix::fs::PermissionsExt as _;
        for (d, group, mode) in [
            ("active", None, 0o700),
            ("bounce", None, 0o700),
            ("corrupt", None, 0o700),
            ("defer", None, 0o700),
            ("deferred", None, 0o700),
            ("flush", None, 0o700),
            ("hold", None, 0o700),
            ("incoming", None, 0o700),
            ("private", None, 0o700),
            ("saved", None, 0o700),
            ("trace", None, 0o700),
            ("maildrop", Some(postdrop), 0o730),
            ("public", Some(postdrop), 0o710),
        ] {
            let p = queue.join(d);
            std::fs::create_dir_all(&p).expect("queue dir");
            std::os::unix::fs::chown(&p, Some(postfix), group).expect("chown (tests run as root)");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let data = root.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::os::unix::fs::chown(&data, Some(postfix), None).expect("chown");
        let r = root.display();
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {r}/queue\ndata_directory = {r}/data\n\
                 mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\nmyhostname = mx.demo.example\nmydestination =\n\
                 relay_domains = demo.example\n\
                 transport_maps = inline:{{ demo.example=smtp:[{}]:{} }}\n\
                 mynetworks = 127.0.0.0/8\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 smtp_dns_support_level = disabled\nsmtpd_peername_lookup = no\n\
                 maillog_file_prefixes = /tmp/\nmaillog_file = {r}/maillog\n",
                to.ip(),
                to.port()
            ),
        )
        .expect("main.cf");
        let stock = std::fs::read_to_string("/etc/postfix/master.cf").expect("stock master.cf");
        // Our port instead of 25, and no chroot (the queue is not set up as one).
        let mut master_cf = String::new();
        for line in stock.lines() {
            let mut cols: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with(|c: char| c.is_ascii_alphanumeric()) && cols.len() >= 8 {
                let listen = format!("127.0.0.1:{port}");
                if cols[0] == "smtp" && cols[1] == "inet" {
                    cols[0] = &listen;
                    cols[4] = "n";
                    master_cf.push_str(&cols.join(" "));
                } else {
                    cols[4] = "n";
                    master_cf.push_str(&cols.join(" "));
                }
            } else {
                master_cf.push_str(line);
            }
            master_cf.push('\n');
        }
        std::fs::write(etc.join("master.cf"), master_cf).expect("master.cf");
        let child = Command::new(master)
            .arg("-c")
            .arg(&etc)
            .arg("-d")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start postfix");
        let p = Postfix { port, child, root };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return p;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "postfix did not listen on {port}: {}",
            std::fs::read_to_string(p.root.join("maillog")).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // SIGTERM: the master stops its children too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[tokio::test]
async fn postfix_in_front_relays_signed_mail_that_verifies() {
    let started = tokio::time::Instant::now();
    let dir = TempDir::new("email-postfix");
    let (key, records) = test_key();
    let dns = Dns::start(records).await;
    let s = server_with_dns(&dir, &dns.addr.to_string(), 1000);
    let admin = s.login("admin", "admin").await;
    let postfix = Postfix::start(s.smtp.expect("smtp"));

    let raw = signed_mail(&key, "via-postfix-1@example.test", "Relayed by our MX.");
    let path = dir.0.join("signed.eml");
    std::fs::write(&path, &raw).expect("write mail");
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &postfix.port.to_string()])
        .args(["--helo", "client.example.test", "--timeout", "20"])
        .args([
            "--from",
            "sara@example.test",
            "--to",
            "support@demo.example",
        ])
        .args(["--data", &format!("@{}", path.display())])
        .output()
        .expect("swaks runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("250 2.0.0 Ok"),
        "{text}"
    );

    let auth = auth_of(&admin, "via-postfix-1@example.test").await;
    // Postfix added its Received line above the signature: DKIM still passes, and SPF checks
    // Postfix's address (127.0.0.1, allowed by example.test's record).
    assert_eq!(
        auth["dkim"][0]["result"],
        "pass",
        "{auth}\n{}",
        postfix.log()
    );
    assert_eq!(auth["spf"]["result"], "pass", "{auth}");
    assert_eq!(auth["dmarc"]["result"], "pass", "{auth}");
    assert!(
        postfix.log().contains("status=sent"),
        "postfix relayed it: {}",
        postfix.log()
    );
    let it = &email_interactions(&admin).await[0];
    assert_eq!(it["subject"], "Signed order question");
    drop(postfix);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn imap_over_starttls_checks_the_servers_certificate() {
    let dir = TempDir::new("email-imaps");
    let (ca, cert, key) = test_certificates(&dir.0);
    let dovecot = Dovecot::start_with(&dir.0, Some((&cert, &key)), "");
    // The test's own client appends in clear: Dovecot trusts loopback for that, but our
    // server's login below must go over TLS (`ssl = required`).
    let mut imap = Imap::login(dovecot.port).await;
    imap.append(&imap_mail("tls-1@example.test", "Fetched over TLS"), "")
        .await;
    let config = |ca_file: Option<&std::path::Path>| {
        let mut c = format!(
            "[[email.imap]]\naddress = \"support@demo.example\"\nhost = \"127.0.0.1\"\nport = {}\n\
             security = \"starttls\"\nuser = \"sara\"\npassword = \"secret\"\npoll_interval_secs = 1\n",
            dovecot.port
        );
        if let Some(ca) = ca_file {
            c.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
        }
        c
    };

    // A certificate from a CA nobody trusts: no login, nothing imported, errors counted.
    let untrusted = TempDir::new("email-imaps-untrusted");
    let cfg = untrusted.0.join("switchboard.toml");
    std::fs::write(&cfg, config(None)).expect("config");
    let s = Server::start_with(
        &untrusted.0,
        &["--config", cfg.to_str().expect("utf8")],
        &[],
    );
    let admin = s.login("admin", "admin").await;
    let mut errors = 0.0;
    for _ in 0..100 {
        let m = s.metrics().await;
        errors = m
            .lines()
            .find_map(|l| l.strip_prefix("switchboard_imap_errors_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if errors >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(errors >= 1.0, "the failed handshake is counted");
    assert!(email_interactions(&admin).await.is_empty());
    drop(s);

    // With the CA as ca_file: STARTTLS, LOGIN over TLS, imported.
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(&cfg, config(Some(&ca))).expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("utf8")], &[]);
    let admin = s.login("admin", "admin").await;
    wait_subjects(&admin, &["Fetched over TLS"]).await;
    let log = dovecot.log(&dir.0);
    assert!(
        log.lines()
            .any(|l| l.contains("Login: user=<sara>") && l.contains("TLS")),
        "our server logged in over TLS: {log}"
    );
}

#[tokio::test]
async fn an_imap_server_without_idle_is_polled() {
    let dir = TempDir::new("email-imap-poll");
    // Dovecot announcing no IDLE: we must not use it.
    let dovecot = Dovecot::start_with(&dir.0, None, "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS");
    let cfg = dir.0.join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            "[email]\nmax_message_bytes = 4096\n\
             [[email.imap]]\naddress = \"support@demo.example\"\nhost = \"127.0.0.1\"\nport = {}\n\
             security = \"plain\"\nuser = \"sara\"\npassword = \"secret\"\npoll_interval_secs = 1\n",
            dovecot.port
        ),
    )
    .expect("config");
    let s = Server::start_with(&dir.0, &["--config", cfg.to_str().expect("utf8")], &[]);
    let admin = s.login("admin", "admin").await;
    // Give it time to log in and find the folder empty, then deliver.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut imap = Imap::login(dovecot.port).await;
    let caps = imap.cmd("CAPABILITY").await;
    assert!(!caps.contains("IDLE"), "{caps}");
    // Over `max_message_bytes`: not fetched, left unseen in the mailbox.
    let big = imap_mail("big-1@example.test", "Too big for us")
        .replace("Sent to the mailbox", &"x".repeat(8000));
    imap.append(&big, "").await;
    imap.append(&imap_mail("poll-1@example.test", "Found by polling"), "")
        .await;
    let got = wait_subjects(&admin, &["Found by polling"]).await;
    assert_eq!(got, ["Found by polling"]);
    // (The imported one is flagged right after it is stored.)
    let mut unseen = String::new();
    for _ in 0..100 {
        unseen = imap.cmd("UID SEARCH UNSEEN").await;
        if unseen.lines().any(|l| l.trim() == "* SEARCH 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        unseen.lines().any(|l| l.trim() == "* SEARCH 1"),
        "the big one stays unseen: {unseen}"
    );
    assert!(
        s.metrics()
            .await
            .contains("switchboard_email_refused_total{reason=\"imap_too_large\"} 1")
    );
}

// ----- formatting, Cc and Bcc -----

/// The addresses of a sunk mail's `RCPT TO` commands, in order.
fn rcpt_addresses(m: &Sunk) -> Vec<String> {
    m.rcpt
        .iter()
        .map(|l| {
            let start = l.find('<').map_or(0, |i| i + 1);
            let end = l[start..].find('>').map_or(l.len(), |i| start + i);
            l[start..end].to_ascii_lowercase()
        })
        .collect()
}

#[tokio::test]
async fn a_formatted_reply_goes_to_cc_and_bcc_and_no_header_names_the_bcc() {
    let dir = TempDir::new("email-copies");
    let sink = Sink::start().await;
    let relay = sink.addr.to_string();
    let s = Server::start_with(&dir.0, &[], &[("SWITCHBOARD_SMTP_RELAY", &relay)]);
    let admin = s.login("admin", "admin").await;
    let agent = agent(&s).await;
    // The customer copies a colleague, and (as mail clients do) the support address itself.
    let replies = deliver_raw(
        &s,
        b"MAIL FROM:<leila@example.test>\r\n",
        b"From: Leila <leila@example.test>\r\nTo: support@demo.example\r\n\
Cc: \"Reza Karimi\" <Reza@Example.test>, Support <support@demo.example>\r\n\
Subject: Where is my order?\r\nMessage-ID: <order-1@example.test>\r\n\r\nIt has not come yet.\r\n.\r\n",
    )
    .await;
    assert!(
        replies.last().expect("reply").starts_with("250"),
        "{replies:?}"
    );
    let id = accept_offer(&agent).await;
    // The acknowledgement is automatic: it copies nobody.
    let ack = sink.wait(1).await;
    assert_eq!(rcpt_addresses(&ack[0]), vec!["leila@example.test"]);
    assert_eq!(ack[0].header("Cc"), "");

    // The customer's Cc is recorded, and the reply-all default leaves out the tenant's address.
    let v = email_view(&admin, &id).await;
    let inbound = v["email"]["mails"]
        .as_array()
        .expect("mails")
        .iter()
        .find(|m| m["direction"] == "in")
        .cloned()
        .expect("the mail");
    assert_eq!(
        inbound["headers"]["cc"],
        json!(["reza@example.test", "support@demo.example"]),
        "{inbound}"
    );
    assert_eq!(v["email"]["reply_cc"], json!(["reza@example.test"]), "{v}");

    // Header injection through an address, and other bad copies: refused, nothing stored or sent.
    let path = format!("/api/v1/interactions/{id}/messages");
    for bad in [
        json!({"text": "x", "cc": ["a@b.c\r\nBcc: x@y.z"]}),
        json!({"text": "x", "bcc": ["a@b.c, d@e.f"]}),
        json!({"text": "x", "cc": ["Reza <reza@example.test>"]}),
        json!({"text": "x", "cc": ["reza@example.test\n"]}),
        json!({"text": "x", "bcc": ["not-an-address"]}),
    ] {
        agent
            .post(&path, bad.clone())
            .await
            .expect_error(400, "invalid_address");
    }
    let many: Vec<String> = (0..21).map(|i| format!("p{i}@example.test")).collect();
    agent
        .post(&path, json!({"text": "x", "cc": many}))
        .await
        .expect_error(422, "invalid_value");
    agent
        .post(&path, json!({"text": "x", "bcc": ["Support@Demo.Example"]}))
        .await
        .expect_error(422, "invalid_value");
    agent
        .post(
            &path,
            json!({"text": "x", "internal": true, "cc": ["reza@example.test"]}),
        )
        .await
        .expect_error(422, "invalid_value");
    let msgs = agent.get(&path).await.expect(200);
    assert!(
        msgs.as_array()
            .expect("list")
            .iter()
            .all(|m| m["from"] != "agent"),
        "nothing was stored: {msgs}"
    );

    // The reply: markup, the default Cc, and a Bcc.
    let text = "Hello Leila,\n\nyour order is **on its way**:\n- tracking: [DHL 123](https://track.example.test/?id=123&x=1)\n- [bad](javascript:alert(1)) <script>alert(2)</script>\n\n_Thanks_ — با سپاس";
    let reply = agent
        .post(&path, json!({"text": text, "bcc": ["Audit@Example.test"]}))
        .await
        .expect(201);
    let reply_id = id_of(&reply);
    let mails = sink.wait(2).await;
    assert_eq!(mails.len(), 2, "the refused replies sent nothing");
    let out = &mails[1];
    assert_eq!(
        rcpt_addresses(out),
        vec![
            "leila@example.test",
            "reza@example.test",
            "audit@example.test"
        ]
    );
    assert_eq!(out.header("Cc"), "reza@example.test");
    let p = out.parsed();
    assert!(p.header_raw("Bcc").is_none(), "no Bcc header");
    let raw = String::from_utf8_lossy(&out.data).to_ascii_lowercase();
    assert!(
        !raw.contains("audit@"),
        "the bcc is nowhere in the mail: {raw}"
    );
    assert!(
        out.header("Content-Type")
            .starts_with("multipart/alternative"),
        "{raw}"
    );
    assert_eq!(
        p.body_text(0).expect("text").trim().replace("\r\n", "\n"),
        text,
        "the text part keeps the markup as written"
    );
    let html = p.body_html(0).expect("an HTML part").to_string();
    assert!(html.contains("<strong>on its way</strong>"), "{html}");
    assert!(
        html.contains("<a href=\"https://track.example.test/?id=123&amp;x=1\">DHL 123</a>"),
        "{html}"
    );
    assert!(html.contains("<li>tracking: "), "{html}");
    assert!(html.contains("<em>Thanks</em> — با سپاس"), "{html}");
    assert!(
        html.contains("[bad](javascript:alert(1)) &lt;script&gt;alert(2)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("href=\"javascript"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("dir=\"auto\""), "{html}");
    // The preview is the same renderer.
    let preview = agent
        .post("/api/v1/email/preview", json!({"text": text}))
        .await
        .expect(200);
    assert_eq!(
        preview["html"].as_str().expect("html").trim(),
        html.replace("\r\n", "\n").trim()
    );
    assert!(
        preview["fragment"]
            .as_str()
            .expect("fragment")
            .starts_with("<p dir=\"auto\">Hello Leila,</p>"),
        "{preview}"
    );

    // The stored copy records both lists.
    wait_delivery(&admin, &id, &reply_id, "sent").await;
    let v = email_view(&admin, &id).await;
    let stored = v["email"]["mails"]
        .as_array()
        .expect("mails")
        .iter()
        .find(|m| m["message_id"] == reply_id.as_str())
        .cloned()
        .expect("stored");
    assert_eq!(
        stored["headers"]["cc"],
        json!(["reza@example.test"]),
        "{stored}"
    );
    assert_eq!(
        stored["headers"]["bcc"],
        json!(["audit@example.test"]),
        "{stored}"
    );

    // An agent who empties the Cc copies nobody; a Cc named twice (or the customer) once.
    agent
        .post(&path, json!({"text": "Just you.", "cc": []}))
        .await
        .expect(201);
    let mails = sink.wait(3).await;
    assert_eq!(rcpt_addresses(&mails[2]), vec!["leila@example.test"]);
    assert_eq!(mails[2].header("Cc"), "");
    agent
        .post(
            &path,
            json!({"text": "Both.", "cc": ["sam@example.test", "SAM@example.test", "leila@example.test"], "bcc": ["sam@example.test"]}),
        )
        .await
        .expect(201);
    let mails = sink.wait(4).await;
    assert_eq!(
        rcpt_addresses(&mails[3]),
        vec!["leila@example.test", "sam@example.test"]
    );
    assert_eq!(mails[3].header("Cc"), "sam@example.test");
}

#[tokio::test]
async fn a_mail_cut_off_from_its_interaction_by_a_crash_joins_it_when_it_comes_again() {
    use switchboard_model::{
        Channel, CustomerId, InteractionId, InteractionState, QueueId, Sensitive,
    };
    use switchboard_store::{Change, ContactPoint, Customer, Interaction, NewEvent, Store};

    let dir = TempDir::new("email-cut-off");
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let queue: QueueId = support_queue(&admin).await.parse().expect("queue id");
    s.kill9();

    // What a crash between the router's commit and the mail's leaves behind (the router
    // commits the new interaction first; the mail, its thread row and its 250 never came):
    // the sender as a customer, and a queued email interaction made for that Message-ID.
    let store = Store::open_sqlite(&dir.0.join("switchboard.db"))
        .await
        .expect("open the server's database");
    let tenant = store
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .find(|t| t.slug == "demo")
        .expect("the demo tenant")
        .id;
    let customer = CustomerId::from_u128(0x5eed);
    store
        .create_customer(&Customer {
            id: customer,
            tenant,
            name: "Lale".into(),
            created_at: 1,
            contact_points: vec![ContactPoint {
                kind: "email".into(),
                value: Sensitive::new("lale@example.test".into()),
            }],
        })
        .await
        .expect("customer");
    let orphan = InteractionId::from_u128(0xc0ff);
    let now = jiff::Timestamp::now().as_millisecond();
    let it = Interaction {
        id: orphan,
        tenant,
        channel: Channel::Email,
        state: InteractionState::Queued,
        queue: Some(queue),
        priority: 0,
        subject: Some("Where is my parcel?".into()),
        customer: Some(customer),
        attributes: json!({"email_message_id": "cut-off-1@example.test"}),
        agent: None,
        disposition: None,
        notes: None,
        created_at: now,
        waiting_since: Some(now),
        offered_at: None,
        answered_at: None,
        ended_at: None,
        updated_at: now,
    };
    store
        .commit(&[
            Change::Interaction(it),
            Change::Event(NewEvent {
                tenant,
                interaction: Some(orphan),
                agent: None,
                kind: "interaction.created".into(),
                at: now,
                data: json!({"channel": "email"}),
            }),
        ])
        .await
        .expect("the cut-off interaction");
    store.close().await;

    // The sender had no 250, so it delivers the same mail again: it joins that interaction.
    let s = Server::start(&dir.0);
    let admin = s.login("admin", "admin").await;
    let replies = mail_in(&s, "cut-off-1@example.test", "Where is my parcel?").await;
    assert!(
        replies.last().is_some_and(|r| r.starts_with("250")),
        "{replies:?}"
    );
    let list = email_interactions(&admin).await;
    assert_eq!(list.len(), 1, "no second interaction: {list:?}");
    assert_eq!(list[0]["id"], orphan.to_string());
    let view = email_view(&admin, &orphan.to_string()).await;
    assert_eq!(
        view["email"]["mails"][0]["rfc_message_id"], "cut-off-1@example.test",
        "{view}"
    );

    // A new topic from the same customer is still a new interaction, and a redelivery of the
    // mail now stored changes nothing.
    mail_in(&s, "cut-off-2@example.test", "Another question").await;
    mail_in(&s, "cut-off-1@example.test", "Where is my parcel?").await;
    let list = email_interactions(&admin).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let view = email_view(&admin, &orphan.to_string()).await;
    let received = view["email"]["mails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["direction"] == "in")
        .count();
    assert_eq!(received, 1, "{view}");
}
