//! Email (docs/email.md): the inbound SMTP listener on `SWITCHBOARD_SMTP`, the intake that
//! turns a received mail into a message of an email interaction ([`receive`]), threading (by
//! In-Reply-To/References, then by the `[#SB-XXXXXXXX]` ticket reference in the subject),
//! acknowledgements, and outgoing mail: [`compose`] builds the reply with its threading headers
//! when it is queued (the stored copy is exactly what is sent), [`send`] hands it to the relay
//! (`SWITCHBOARD_SMTP_RELAY`) from the shared outbox.
//!
//! Email addresses are channel accounts with provider `email` (settings `address`,
//! `display_name`?, `ack_text`?, `response_time`?). The SMTP session itself is sans-IO in
//! [`smtp`]; reading a mail is pure in [`parse`]. [`auth`] verifies SPF/DKIM/DMARC of each
//! received mail (recorded, never refusing), [`imap`] fetches mailboxes kept elsewhere into the
//! same intake, and [`sla`] gives email interactions a due time in business hours.

pub mod auth;
pub mod imap;
pub mod markup;
pub mod parse;
pub mod sla;
pub mod smtp;

use crate::engine::Command;
use crate::error::ApiError;
use crate::messaging::providers::SendOutcome;
use crate::state::AppState;
use lettre::AsyncTransport;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, Message as MailMessage, MultiPart, SinglePart};
use parse::{AutoKind, ParsedMail};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_model::{Channel, InteractionId, Sensitive, TenantId};
use switchboard_store::{
    ChannelAccount, EmailRecord, Interaction, Message, MessageThread, OutboxItem, Sender,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Longest command or data line read at once (RFC 5321 4.5.3.1.6 says 1000; we are lenient).
const MAX_LINE: u64 = 64 * 1024;
/// How long a client may be silent (RFC 5321 4.5.3.2: at least 5 minutes).
const IDLE: Duration = Duration::from_secs(300);
/// Intake locks by sender: one sender's mails are threaded one after the other.
const SHARDS: usize = 64;

/// Runtime parts of email, held by the app state.
pub struct Email {
    shards: Vec<tokio::sync::Mutex<()>>,
    relay: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
    /// SPF/DKIM/DMARC of received mail.
    pub verifier: auth::Verifier,
}

impl Email {
    /// Builds it from the configuration.
    pub fn new(cfg: &crate::config::Config) -> Self {
        let relay = cfg.email.relay.as_ref().map(|(host, port)| {
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host.clone())
                .port(*port)
                .timeout(Some(Duration::from_secs(30)))
                .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                    cfg.email.hostname.clone(),
                ))
                .build()
        });
        Email {
            shards: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
            relay,
            verifier: auth::Verifier::new(&cfg.email),
        }
    }

    fn shard(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let h = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.shards[h % SHARDS]
    }
}

/// An account's setting (empty when unset).
fn setting<'a>(a: &'a ChannelAccount, k: &str) -> &'a str {
    a.settings[k].as_str().unwrap_or_default()
}

/// The ticket reference of an interaction: `SB-` and the last 8 hex digits of its id (the
/// random part of a UUIDv7), upper-case.
pub fn ticket_for(id: InteractionId) -> String {
    let hex = id.to_string().replace('-', "");
    format!("SB-{}", hex[hex.len() - 8..].to_ascii_uppercase())
}

// ----- the listener -----

/// Binds the SMTP listener and starts accepting sessions.
pub async fn start(
    s: AppState,
    addr: SocketAddr,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (SWITCHBOARD_SMTP): {e}"))?;
    let local = listener.local_addr()?;
    let acceptor = tls_acceptor(&s.config.email)?;
    let sessions = std::sync::Arc::new(tokio::sync::Semaphore::new(s.config.email.max_sessions));
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "smtp: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let s = s.clone();
            let tls = acceptor.clone();
            let Ok(permit) = sessions.clone().try_acquire_owned() else {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let _ = stream
                        .write_all(b"421 4.7.0 too many connections, try again later\r\n")
                        .await;
                });
                continue;
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                session(&s, stream, peer, tls).await;
                drop(permit);
            });
        }
    });
    Ok((local, task))
}

/// The server side of STARTTLS (RFC 3207), from `[email] tls_cert` and `tls_key` (PEM).
pub fn tls_acceptor(
    cfg: &crate::config::EmailConfig,
) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    use rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path, key: &str| {
        std::fs::read(p)
            .map_err(|e| anyhow::anyhow!("email.{key}: cannot read {}: {e}", p.display()))
    };
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&read(cert, "tls_cert")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("email.tls_cert: not PEM certificates: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&read(key, "tls_key")?)
        .map_err(|e| anyhow::anyhow!("email.tls_key: not a PEM private key: {e}"))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("email.tls_cert/tls_key: {e}"))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
        config,
    ))))
}

async fn session(
    s: &AppState,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let cfg = &s.config.email;
    let (mut sess, greeting) = smtp::Session::new(smtp::Limits {
        hostname: cfg.hostname.clone(),
        max_message_bytes: cfg.max_message_bytes,
        max_recipients: cfg.max_recipients,
        tls_available: tls.is_some(),
    });
    let mut io = BufReader::with_capacity(64 * 1024, stream);
    if io.get_mut().write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let Some(io) = drive(s, io, peer, &mut sess).await else {
        return;
    };
    let Some(acceptor) = tls else { return };
    // RFC 3207 4.2: nothing the client pipelined before TLS is used.
    let tcp = io.into_inner();
    match acceptor.accept(tcp).await {
        Ok(stream) => {
            sess.handle_tls();
            drive(
                s,
                BufReader::with_capacity(64 * 1024, stream),
                peer,
                &mut sess,
            )
            .await;
        }
        Err(_) => {
            metrics::counter!("switchboard_email_refused_total", "reason" => "tls_handshake")
                .increment(1);
        }
    }
}

/// Runs a session's commands until it ends (`None`) or asks for TLS (the connection back).
async fn drive<S>(
    s: &AppState,
    mut io: BufReader<S>,
    peer: SocketAddr,
    sess: &mut smtp::Session,
) -> Option<BufReader<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // Recipients accepted in this session and their accounts (an MTA sends many mails on one
    // connection), and those of the current transaction.
    let mut known: HashMap<String, ChannelAccount> = HashMap::new();
    let mut accounts: HashMap<String, ChannelAccount> = HashMap::new();
    let mut line = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        line.clear();
        let mut limited = (&mut io).take(MAX_LINE);
        let read = tokio::time::timeout(IDLE, limited.read_until(b'\n', &mut line)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => {}
            Err(_) => {
                let _ = io
                    .get_mut()
                    .write_all(b"421 4.4.2 idle too long, closing\r\n")
                    .await;
                return None;
            }
        }
        let reply = match sess.handle_line(&line) {
            smtp::Step::Nothing => None,
            smtp::Step::Reply(r) => Some(r),
            smtp::Step::CheckRecipient(addr) => {
                let looked_up = match known.get(&addr) {
                    Some(a) => Ok(Some(a.clone())),
                    None => s.store.email_account_by_address(&addr).await,
                };
                let found = match looked_up {
                    Ok(Some(a)) => {
                        known.insert(addr.clone(), a.clone());
                        accounts.insert(addr, a);
                        Ok(true)
                    }
                    Ok(None) => Ok(false),
                    Err(e) => {
                        tracing::warn!(error = %e, "smtp: recipient check failed");
                        Err(())
                    }
                };
                if found == Ok(false) {
                    metrics::counter!("switchboard_email_refused_total", "reason" => "unknown_recipient").increment(1);
                }
                Some(sess.handle_recipient(found))
            }
            smtp::Step::Store(env) => {
                let outcome = deliver(s, &accounts, peer, &env).await;
                accounts.clear();
                Some(sess.handle_stored(outcome))
            }
            smtp::Step::StartTls(r) => {
                out.extend_from_slice(r.as_bytes());
                if io.get_mut().write_all(&out).await.is_err()
                    || io.get_mut().flush().await.is_err()
                {
                    return None;
                }
                return Some(io);
            }
            smtp::Step::Close(r) => {
                out.extend_from_slice(r.as_bytes());
                let _ = io.get_mut().write_all(&out).await;
                let _ = io.get_mut().flush().await;
                return None;
            }
        };
        if let Some(r) = reply {
            out.extend_from_slice(r.as_bytes());
        }
        // Pipelining (RFC 2920): the replies to a batch of commands go out together.
        if io.buffer().is_empty() && !out.is_empty() {
            if io.get_mut().write_all(&out).await.is_err() || io.get_mut().flush().await.is_err() {
                return None;
            }
            out.clear();
        }
    }
}

/// Stores a received mail for each distinct account among its recipients.
async fn deliver(
    s: &AppState,
    accounts: &HashMap<String, ChannelAccount>,
    peer: SocketAddr,
    env: &smtp::Envelope,
) -> Result<String, (bool, String)> {
    // Verified once per mail, whatever the number of its recipients.
    let origin = auth::Origin {
        // A v4 client on a dual-stack socket is checked as v4 (SPF `ip4:`).
        ip: Some(peer.ip().to_canonical()),
        helo: env.helo.clone(),
        mail_from: env.mail_from.clone(),
    };
    let checks = s
        .email
        .verifier
        .verify(&env.data, &origin, s.clock.wall_ms())
        .await;
    let mut done: Vec<String> = Vec::new();
    let mut ids = Vec::new();
    for rcpt in &env.rcpt_to {
        let Some(a) = accounts.get(rcpt) else {
            continue;
        };
        let key = a.id.to_string();
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        match receive(s, a, &env.mail_from, &env.data, &checks).await {
            Ok(id) => ids.push(id),
            Err(e) => {
                metrics::counter!("switchboard_email_refused_total", "reason" => if e.0 { "unreadable" } else { "temporary" }).increment(1);
                return Err(e);
            }
        }
    }
    metrics::counter!("switchboard_email_received_total").increment(1);
    Ok(ids.join(","))
}

// ----- intake -----

/// The intake of email: a received mail becomes a message of an email interaction. The
/// sender's address finds the customer (or a new one); a reply (In-Reply-To/References, or the
/// ticket reference in the subject) joins its interaction if that has not ended; anything else
/// is a new interaction in the account's queue, acknowledged if the account says so and the
/// mail was written by a person. Raw and parsed mail are stored in one transaction before this
/// returns (and the SMTP client hears 250). `Err((permanent, reason))` otherwise. `checks` are
/// the SPF/DKIM/DMARC results ([`auth::Verifier::verify`]), recorded with the mail.
pub async fn receive(
    s: &AppState,
    a: &ChannelAccount,
    mail_from: &str,
    raw: &[u8],
    checks: &Value,
) -> Result<String, (bool, String)> {
    let temporary = |e: ApiError| {
        tracing::warn!(error = %e.message, account = %a.id, "email: cannot store a received mail");
        (
            false,
            "temporary failure storing the message, try again later".to_owned(),
        )
    };
    let p =
        parse::parse(raw, mail_from).map_err(|e| (true, format!("message refused: {}", e.0)))?;
    let sender = p
        .from_address
        .clone()
        .filter(|f| f.contains('@'))
        .or_else(|| Some(mail_from.to_owned()).filter(|f| f.contains('@')))
        .unwrap_or_else(|| "mailer-daemon@unknown.invalid".to_owned());
    // Files first, outside the lock: stored by content, so a duplicate costs nothing.
    let mut attachments = Vec::new();
    for part in &p.parts {
        let hash = s
            .messaging
            .media
            .put(&part.bytes)
            .await
            .map_err(|e| temporary(ApiError::internal(e)))?;
        attachments.push(
            json!({"sha256": hash, "size": part.bytes.len(), "content_type": part.content_type,
            "name": part.name, "inline": part.inline, "content_id": part.content_id}),
        );
    }
    let attachments = Value::Array(attachments);
    let _guard = s.email.shard(&sender).lock().await;
    if let Some(id) = stored_already(s, a, &p.message_id)
        .await
        .map_err(temporary)?
    {
        return Ok(id);
    }
    intake(s, a, &p, &sender, raw, attachments, checks)
        .await
        .map_err(temporary)
}

/// The message a mail with this Message-ID was stored as at the account, if it was.
async fn stored_already(
    s: &AppState,
    a: &ChannelAccount,
    message_id: &str,
) -> Result<Option<String>, ApiError> {
    Ok(s.store
        .delivery_by_provider_id(a.id, message_id)
        .await?
        .map(|d| d.message_id))
}

/// Where a received mail goes when it is not a new topic.
enum Existing {
    /// The open conversation it replies to.
    Thread(Interaction),
    /// The interaction this very mail (by Message-ID) created before a crash cut it off from
    /// its mail: the router's commit came first, the mail's never did, and no `250` (or
    /// recorded IMAP UID) told the sender it was taken, so it comes again.
    CutOff(Interaction),
}

/// The open email interaction of `customer` created for the mail `message_id` that has no
/// mail: the thread row is written in the same transaction as the first mail, so an
/// interaction without one never got its mail.
async fn cut_off(
    s: &AppState,
    tenant: TenantId,
    customer: switchboard_model::CustomerId,
    message_id: &str,
) -> Result<Option<Interaction>, ApiError> {
    let recent = s
        .store
        .interactions(
            tenant,
            &switchboard_store::InteractionFilter {
                channel: Some(Channel::Email),
                customer: Some(customer),
                limit: Some(20),
                ..Default::default()
            },
        )
        .await?;
    for it in recent {
        if it.ended_at.is_none()
            && it.attributes["email_message_id"].as_str() == Some(message_id)
            && s.store.thread(tenant, it.id).await?.is_none()
        {
            tracing::warn!(interaction = %it.id, "email: a mail cut off from its interaction by a crash joins it now");
            return Ok(Some(it));
        }
    }
    Ok(None)
}

/// The thread row of a new email conversation with `sender` through `a`.
fn new_thread(it: &Interaction, a: &ChannelAccount, sender: &str, now: i64) -> MessageThread {
    MessageThread {
        interaction: it.id,
        tenant: it.tenant,
        channel: Channel::Email,
        account: Some(a.id),
        contact_kind: "email".into(),
        contact_value: Sensitive::new(sender.to_owned()),
        updated_at: now,
    }
}

async fn intake(
    s: &AppState,
    a: &ChannelAccount,
    p: &ParsedMail,
    sender: &str,
    raw: &[u8],
    attachments: Value,
    checks: &Value,
) -> Result<String, ApiError> {
    let tenant = a.tenant;
    let now = s.clock.wall_ms();
    let customer =
        crate::messaging::customer_for(s, tenant, "email", sender, p.from_name.clone()).await?;
    let existing = match thread_of_mail(s, tenant, p).await? {
        Some(id) => s
            .store
            .interaction(tenant, id)
            .await?
            // Any channel: a chat or SMS thread continued by email is answered by mail.
            .filter(|i| i.ended_at.is_none()),
        None => None,
    };
    let existing = match existing {
        Some(it) => Some(Existing::Thread(it)),
        None => cut_off(s, tenant, customer, &p.message_id)
            .await?
            .map(Existing::CutOff),
    };
    let (it, ticket_ref, thread) = match existing {
        Some(Existing::Thread(it)) => (it, None, None),
        Some(Existing::CutOff(it)) => {
            let thread = new_thread(&it, a, sender, now);
            let t = ticket_for(it.id);
            (it, Some(t), Some(thread))
        }
        None => {
            let sla = sla::attributes(s, tenant, a.queue, now).await?;
            let subject: String = if p.subject.is_empty() {
                "(no subject)".into()
            } else {
                p.subject.chars().take(200).collect()
            };
            let it = s
                .ask(tenant, |reply| Command::Create {
                    channel: Channel::Email,
                    queue: a.queue,
                    subject: Some(subject),
                    customer: Some(customer),
                    attributes: json!({"channel_account_id": a.id, "email_auto": p.auto.map(AutoKind::as_str), "email_sla": sla, "email_message_id": p.message_id}),
                    priority: None,
                    reply,
                })
                .await??;
            // Written with the mail, in one transaction.
            let thread = new_thread(&it, a, sender, now);
            let t = ticket_for(it.id);
            (it, Some(t), Some(thread))
        }
    };
    let is_new = ticket_ref.is_some();
    let text = if p.text.trim().is_empty() && !p.parts.is_empty() {
        "(attachments only)".to_owned()
    } else {
        p.text.clone()
    };
    let (msg, delivery) = crate::messaging::inbound(
        s,
        &it,
        (a, Channel::Email),
        customer,
        p.from_name.clone(),
        &text,
        &p.message_id,
        attachments.clone(),
    )
    .await?;
    let record = EmailRecord {
        direction: "in".into(),
        rfc_message_id: p.message_id.clone(),
        subject: Sensitive::new(p.subject.clone()),
        parsed: Sensitive::new({
            let mut v = p.summary(&attachments);
            v["auth"] = checks.clone();
            v
        }),
        raw: Sensitive::new(raw.to_vec()),
        ticket_ref,
    };
    let id = msg.id.clone();
    let stored = crate::messaging::store_and_publish(
        s,
        &it,
        msg,
        delivery,
        None,
        Some(record),
        thread,
        None,
    )
    .await?;
    if stored.is_none() {
        return Ok(id);
    }
    if is_new && should_acknowledge(a, p, sender) {
        // Off the path to the 250: the mail is stored; the acknowledgement follows it.
        let text = acknowledgement(a, &ticket_for(it.id));
        let s = s.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::messaging::queue_system_message(&s, &it, &text).await {
                tracing::warn!(error = %e.message, interaction = %it.id, "email: cannot queue the acknowledgement");
            }
        });
    }
    Ok(id)
}

/// The interaction a mail answers: by its In-Reply-To and References ids (newest first), then
/// by the ticket reference in its subject.
async fn thread_of_mail(
    s: &AppState,
    tenant: TenantId,
    p: &ParsedMail,
) -> Result<Option<InteractionId>, ApiError> {
    let mut ids: Vec<String> = p.in_reply_to.clone();
    ids.extend(p.references.iter().rev().take(30).cloned());
    if let Some(id) = s.store.email_interaction_by_ids(tenant, &ids).await? {
        return Ok(Some(id));
    }
    match parse::ticket_in_subject(&p.subject) {
        Some(r) => Ok(s.store.email_ticket_interaction(tenant, &r).await?),
        None => Ok(None),
    }
}

/// RFC 3834 2: never answer automatic mail (bounces, auto-replies, lists), nor ourselves.
fn should_acknowledge(a: &ChannelAccount, p: &ParsedMail, sender: &str) -> bool {
    !setting(a, "ack_text").is_empty()
        && p.auto.is_none()
        && !sender.eq_ignore_ascii_case(setting(a, "address"))
}

fn acknowledgement(a: &ChannelAccount, ticket: &str) -> String {
    let rt = setting(a, "response_time");
    let rt = if rt.is_empty() {
        "as soon as we can"
    } else {
        rt
    };
    setting(a, "ack_text")
        .replace("{ticket}", ticket)
        .replace("{response_time}", rt)
}

// ----- outgoing mail -----

/// Most addresses in each of a reply's `cc` and `bcc`.
pub const MAX_COPIES: usize = 20;

/// Who else gets a reply besides the customer. `Debug` shows only how many (addresses are
/// personal data, like everything in `Sensitive`).
#[derive(Clone, Default)]
pub struct Copies {
    /// In the `Cc` header. `None`: those of the customer's last mail ("reply all", see
    /// [`reply_all`]), for an agent's reply; an automatic message copies nobody.
    pub cc: Option<Vec<String>>,
    /// Only in the SMTP envelope (`RCPT TO`), never in a header of the mail.
    pub bcc: Vec<String>,
}

impl std::fmt::Debug for Copies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Copies")
            .field("cc", &self.cc.as_ref().map(Vec::len))
            .field("bcc", &self.bcc.len())
            .finish()
    }
}

/// One address of a reply's `cc` or `bcc`, lower-case: a single RFC 5322 addr-spec
/// (`user@example.com`). No display name, and no space, comma, semicolon, angle bracket, quote
/// or control character (CR, LF): nothing that could add a recipient or a header. A `400
/// invalid_address` naming the field otherwise (the address itself is not repeated: it is
/// personal data).
pub fn copy_address(field: &str, index: usize, raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(
            "invalid_address",
            format!("{field}[{index}]: {why}; give one address like user@example.com"),
        )
    };
    let a = raw.trim_matches(' ');
    if a.is_empty() {
        return Err(bad("empty"));
    }
    if a.chars().count() > 254 {
        return Err(bad("longer than 254 characters"));
    }
    if a.chars().any(|c| c.is_control()) {
        return Err(bad("line breaks and control characters are not allowed"));
    }
    if a.chars().any(|c| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | '<' | '>' | '"' | '(' | ')' | '\\' | '[' | ']' | ':'
            )
    }) {
        return Err(bad(
            "not a single address (no names, spaces, commas or brackets)",
        ));
    }
    if a.matches('@').count() != 1 {
        return Err(bad("an address has exactly one @"));
    }
    let parsed: lettre::Address = a.parse().map_err(|_| bad("not a valid address"))?;
    Ok(parsed.to_string().to_lowercase())
}

/// A reply's `cc` or `bcc` list: each address checked ([`copy_address`]), at most
/// [`MAX_COPIES`], duplicates once.
pub fn copy_list(field: &str, list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_COPIES {
        return Err(ApiError::unprocessable(
            "invalid_value",
            format!("{field}: at most {MAX_COPIES} addresses"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let a = copy_address(field, i, raw)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// The tenant's own email addresses (of all its email accounts), lower-case.
async fn own_addresses(s: &AppState, tenant: TenantId) -> Result<Vec<String>, ApiError> {
    Ok(s.store
        .channel_accounts(tenant)
        .await?
        .iter()
        .filter(|a| a.provider == "email")
        .map(|a| setting(a, "address").to_lowercase())
        .filter(|a| !a.is_empty())
        .collect())
}

/// "Reply all": the addresses a mail was also sent to (its `To` and `Cc`), without the
/// customer and without the tenant's own addresses, at most [`MAX_COPIES`].
pub fn reply_all(parsed: &Value, customer: &str, own: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in ["to", "cc"]
        .iter()
        .flat_map(|k| parsed[*k].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
    {
        let a = a.to_lowercase();
        if !a.eq_ignore_ascii_case(customer)
            && !own.contains(&a)
            && !out.contains(&a)
            && out.len() < MAX_COPIES
            // Only what would pass as an address given by an agent.
            && copy_address("cc", 0, &a).is_ok()
        {
            out.push(a);
        }
    }
    out
}

/// The Cc an agent's next reply gets by default: [`reply_all`] of the customer's last mail.
pub async fn default_cc(
    s: &AppState,
    it: &Interaction,
    thread: &MessageThread,
) -> Result<Vec<String>, ApiError> {
    let mails = s.store.emails(it.tenant, it.id).await?;
    let Some(last_in) = mails.iter().rev().find(|m| m.record.direction == "in") else {
        return Ok(Vec::new());
    };
    let own = own_addresses(s, it.tenant).await?;
    Ok(reply_all(
        last_in.record.parsed.expose(),
        thread.contact_value.expose(),
        &own,
    ))
}

/// The email account replies of a thread go out through: its own, or (a conversation
/// continued on email) the tenant's first enabled one.
pub async fn sending_account(
    s: &AppState,
    thread: &MessageThread,
) -> Result<ChannelAccount, ApiError> {
    if let Some(id) = thread.account
        && let Some(a) = s.store.channel_account(thread.tenant, id).await?
        && a.provider == "email"
    {
        return Ok(a);
    }
    s.store
        .channel_accounts(thread.tenant)
        .await?
        .into_iter()
        .find(|a| a.provider == "email" && a.enabled)
        .ok_or_else(|| {
            ApiError::conflict(
                "no_email_address",
                "the tenant has no email address to send from; create a channel account with provider email",
            )
        })
}

/// Builds an outgoing mail when it is queued: From the account, To the thread's address, the
/// subject of the customer's last mail with `Re:` and the ticket reference (CR/LF and other
/// control characters removed), Message-ID `<message id@domain>`, In-Reply-To and References
/// of the last mail received, and `Auto-Submitted: auto-replied` on automatic messages. `Cc`
/// the `copies` (by default, for an agent's reply, [`reply_all`] of the last mail); their `bcc`
/// goes into no header, only into the stored record and from there into the envelope.
pub async fn compose(
    s: &AppState,
    it: &Interaction,
    thread: &MessageThread,
    a: &ChannelAccount,
    msg: &Message,
    copies: &Copies,
) -> Result<EmailRecord, ApiError> {
    let mails = s.store.emails(it.tenant, it.id).await?;
    // Each stored mail carries its interaction's ticket; none yet (a conversation continued
    // on email): this mail brings it.
    let existing_ticket = mails.iter().find_map(|m| m.record.ticket_ref.clone());
    let new_ticket = existing_ticket.is_none();
    let ticket = existing_ticket.unwrap_or_else(|| ticket_for(it.id));
    let last_in = mails.iter().rev().find(|m| m.record.direction == "in");
    let base = last_in
        .map(|m| m.record.subject.expose().clone())
        .or_else(|| it.subject.clone())
        .unwrap_or_default();
    let subject = reply_subject(&base, &ticket);
    let mut attachments: Vec<SinglePart> = Vec::new();
    let address = setting(a, "address");
    let domain = address.rsplit('@').next().unwrap_or("switchboard.invalid");
    let rfc_id = format!("{}@{domain}", msg.id);
    let bad = |what: &str| {
        ApiError::unprocessable(
            "invalid_address",
            format!("{what} is not a usable email address"),
        )
    };
    let from_addr: lettre::Address = address.parse().map_err(|_| bad("the account's address"))?;
    let name = parse::one_line(setting(a, "display_name"));
    let from = Mailbox::new((!name.is_empty()).then_some(name), from_addr);
    let to_addr: lettre::Address = thread
        .contact_value
        .expose()
        .parse()
        .map_err(|_| bad("the customer's address"))?;
    // Copies: never the tenant's own addresses (the mail would come back in as a new one),
    // the customer once (in To), an address in both lists only in Cc.
    let own = own_addresses(s, it.tenant).await?;
    let customer = thread.contact_value.expose().to_lowercase();
    let cc: Vec<String> = match (&copies.cc, msg.sender) {
        (Some(list), _) => list.clone(),
        (None, Sender::Agent) => last_in
            .map(|m| reply_all(m.record.parsed.expose(), &customer, &own))
            .unwrap_or_default(),
        (None, _) => Vec::new(),
    };
    for (field, list) in [("cc", &cc), ("bcc", &copies.bcc)] {
        if list.iter().any(|x| own.contains(x)) {
            return Err(ApiError::unprocessable(
                "invalid_value",
                format!(
                    "{field}: one of the addresses is this tenant's own support address; mail to it would come back as a new mail"
                ),
            ));
        }
    }
    let cc: Vec<String> = cc.into_iter().filter(|x| *x != customer).collect();
    let bcc: Vec<String> = copies
        .bcc
        .iter()
        .filter(|x| **x != customer && !cc.contains(x))
        .cloned()
        .collect();
    let mut b = MailMessage::builder()
        .from(from)
        .to(Mailbox::new(None, to_addr))
        .subject(subject.clone())
        .message_id(Some(format!("<{rfc_id}>")))
        .date(std::time::UNIX_EPOCH + Duration::from_millis(msg.created_at.max(0) as u64));
    for x in &cc {
        let addr: lettre::Address = x.parse().map_err(|_| bad("an address in cc"))?;
        b = b.cc(Mailbox::new(None, addr));
    }
    let mut references: Vec<String> = Vec::new();
    if let Some(m) = last_in {
        let parsed = m.record.parsed.expose();
        references = parsed["references"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(parse::clean_id)
            .collect();
        references.push(m.record.rfc_message_id.clone());
        // RFC 5322 3.6.4: keep the first and the most recent ones when the list is long.
        if references.len() > 20 {
            let first = references[0].clone();
            references = std::iter::once(first)
                .chain(references[references.len() - 19..].iter().cloned())
                .collect();
        }
        b = b
            .in_reply_to(format!("<{}>", m.record.rfc_message_id))
            .references(
                references
                    .iter()
                    .map(|r| format!("<{r}>"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
    }
    if msg.sender == Sender::System {
        // RFC 3834 5: an automatic response says so, and asks responders not to answer it.
        b = b
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-replied".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".into(),
            ));
    }
    // RFC 2046 5.1.4: the text and its HTML rendering as alternatives (the plain one first),
    // then the files, in one multipart/mixed.
    let text = msg.body.expose().clone();
    let alternative = MultiPart::alternative_plain_html(text.clone(), html_of(&text));
    let mut files = Vec::new();
    for f in msg.attachments.as_array().into_iter().flatten() {
        let id = f["id"].as_str().unwrap_or_default();
        let Some(rec) = s.store.attachment(it.tenant, id).await? else {
            return Err(ApiError::unprocessable(
                "unknown_attachment",
                format!("attachment {id} is not stored"),
            ));
        };
        let path = s
            .messaging
            .media
            .path(&rec.sha256)
            .ok_or_else(|| ApiError::internal("an attachment without a valid hash"))?;
        let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
        let ct = ContentType::parse(&rec.content_type).unwrap_or_else(|_| {
            ContentType::parse("application/octet-stream").expect("a valid type")
        });
        files.push(
            json!({"id": rec.id, "name": rec.name, "content_type": rec.content_type,
            "size": rec.size, "sha256": rec.sha256}),
        );
        attachments.push(Attachment::new(parse::one_line(&rec.name)).body(bytes, ct));
    }
    let built = if attachments.is_empty() {
        b.multipart(alternative)
    } else {
        let mixed = attachments
            .into_iter()
            .fold(MultiPart::mixed().multipart(alternative), |m, a| {
                m.singlepart(a)
            });
        b.multipart(mixed)
    };
    let mail = built.map_err(|e| {
        ApiError::unprocessable("invalid_message", format!("cannot build the mail: {e}"))
    })?;
    let raw = mail.formatted();
    Ok(EmailRecord {
        direction: "out".into(),
        rfc_message_id: rfc_id.clone(),
        subject: Sensitive::new(subject),
        parsed: Sensitive::new(json!({
            "message_id": rfc_id,
            "from": address,
            "to": [thread.contact_value.expose()],
            "cc": cc,
            "bcc": bcc,
            "in_reply_to": last_in.map(|m| vec![m.record.rfc_message_id.clone()]).unwrap_or_default(),
            "references": references,
            "auto": (msg.sender == Sender::System).then_some("auto_reply"),
            "has_html": true,
            "attachments": files,
        })),
        raw: Sensitive::new(raw),
        ticket_ref: new_ticket.then_some(ticket),
    })
}

/// The HTML alternative of a reply: the agent's formatting ([`markup`]: bold, italic, lists,
/// quotes, safe links) rendered, everything else escaped (never markup of its own), paragraphs
/// at blank lines, line breaks kept, links for `http(s)://` addresses, and `dir="auto"` so
/// Arabic and Persian read right to left.
pub fn html_of(text: &str) -> String {
    markup::document(text)
}

/// `Re: <subject> [#ticket]`, on one line, without earlier `Re:` prefixes or ticket tags.
pub fn reply_subject(subject: &str, ticket: &str) -> String {
    let mut base = parse::one_line(subject);
    let tag = format!("[#{ticket}]");
    base = base.replace(&tag, " ");
    loop {
        let t = base.trim_start();
        let lower = t.to_ascii_lowercase();
        let cut = ["re:", "aw:", "fwd:", "fw:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len());
        match cut {
            Some(n) => base = t[n..].to_owned(),
            None => {
                base = t.to_owned();
                break;
            }
        }
    }
    let base: String = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let base: String = base.chars().take(200).collect();
    if base.is_empty() {
        format!("Re: {tag}")
    } else {
        format!("Re: {base} {tag}")
    }
}

/// Sends a queued mail through the relay: the stored copy, to the address in the request.
/// Without a relay the mail stays in the outbox (`held`, released by a start with a relay); the
/// relay's permanent refusals fail it, anything else is retried.
pub async fn send(s: &AppState, a: &ChannelAccount, item: &OutboxItem) -> SendOutcome {
    let Some(relay) = &s.email.relay else {
        return SendOutcome::Held(
            "no SMTP relay is configured (SWITCHBOARD_SMTP_RELAY); the mail is kept in the outbox"
                .into(),
        );
    };
    let stored = match s.store.email(&item.message_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return SendOutcome::Failed("the stored mail is missing".into()),
        Err(e) => return SendOutcome::Retry(format!("store: {e}")),
    };
    // The envelope: the customer, then the copies the stored record names (Bcc is only here).
    let to = item.request.expose()["to"].as_str().unwrap_or_default();
    let parsed = stored.record.parsed.expose();
    let copies = ["cc", "bcc"]
        .iter()
        .flat_map(|k| parsed[*k].as_array().into_iter().flatten())
        .filter_map(Value::as_str);
    let mut rcpt: Vec<lettre::Address> = Vec::new();
    for x in std::iter::once(to).chain(copies) {
        match x.parse::<lettre::Address>() {
            Ok(addr) if !rcpt.contains(&addr) => rcpt.push(addr),
            Ok(_) => {}
            Err(_) => return SendOutcome::Failed("an address of the mail is not usable".into()),
        }
    }
    let Ok(from) = setting(a, "address").parse::<lettre::Address>() else {
        return SendOutcome::Failed("the account's address is not usable".into());
    };
    let envelope = match lettre::address::Envelope::new(Some(from), rcpt) {
        Ok(e) => e,
        Err(e) => return SendOutcome::Failed(format!("envelope: {e}")),
    };
    match relay.send_raw(&envelope, stored.record.raw.expose()).await {
        Ok(_) => SendOutcome::Sent(stored.record.rfc_message_id),
        Err(e) if e.is_permanent() => {
            SendOutcome::Failed(format!("the relay refused the mail: {e}"))
        }
        Err(e) => SendOutcome::Retry(format!("relay: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_carry_one_ticket_tag_and_no_line_breaks() {
        assert_eq!(reply_subject("Order 5", "SB-1"), "Re: Order 5 [#SB-1]");
        assert_eq!(
            reply_subject("Re: RE: Order 5 [#SB-1]", "SB-1"),
            "Re: Order 5 [#SB-1]"
        );
        assert_eq!(
            reply_subject("Hi\r\nBcc: victim@example.test", "SB-1"),
            "Re: Hi Bcc: victim@example.test [#SB-1]"
        );
        assert_eq!(reply_subject("", "SB-1"), "Re: [#SB-1]");
        assert_eq!(reply_subject("سفارش ۱۲۳", "SB-1"), "Re: سفارش ۱۲۳ [#SB-1]");
    }

    #[test]
    fn the_html_alternative_escapes_everything_and_keeps_lines_and_links() {
        let h = html_of(
            "Hello <b>Sara</b> & \"you\"\r\nsecond line\n\nSee https://example.test/a?b=1&c=2.\n<script>alert(1)</script>",
        );
        assert!(h.contains("<p dir=\"auto\">Hello &lt;b&gt;Sara&lt;/b&gt; &amp; &quot;you&quot;<br>\nsecond line</p>"), "{h}");
        assert!(h.contains("<a href=\"https://example.test/a?b=1&amp;c=2\">https://example.test/a?b=1&amp;c=2</a>."), "{h}");
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{h}");
        assert!(!h.contains("<script"), "{h}");
        let h = html_of("javascript:alert(1) \"><img src=x onerror=alert(1)>");
        assert!(!h.contains("<img") && !h.contains("href"), "{h}");
        let fa = html_of("سلام، سفارش شما ارسال شد.");
        assert!(
            fa.contains("<p dir=\"auto\">سلام، سفارش شما ارسال شد.</p>"),
            "{fa}"
        );
        assert_eq!(html_of("\u{0}\u{7}x"), html_of("x"));
    }

    #[test]
    fn copies_are_single_addresses_and_reply_all_leaves_out_ourselves() {
        assert_eq!(
            copy_address("cc", 0, " Reza@Example.TEST ").expect("ok"),
            "reza@example.test"
        );
        for bad in [
            "a@b.c\r\nBcc: x@y.z",
            "a@b.c\nx",
            "a@b.c, d@e.f",
            "a@b.c;d@e.f",
            "Reza <reza@example.test>",
            "\"a b\"@example.test",
            "a@@b.c",
            "a@b@c.d",
            "nobody",
            "",
            "a@",
            "@b.c",
        ] {
            let e = copy_address("bcc", 3, bad).expect_err(bad);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.starts_with("bcc[3]: "), "{}", e.message);
            assert!(
                !bad.contains('@') || !e.message.contains(bad),
                "{}",
                e.message
            );
        }
        let long = format!("{}@example.test", "a".repeat(250));
        assert!(copy_address("cc", 0, &long).is_err());
        assert_eq!(
            copy_list(
                "cc",
                &["a@x.test".into(), "A@X.test".into(), "b@x.test".into()]
            )
            .expect("ok"),
            vec!["a@x.test", "b@x.test"]
        );
        let many: Vec<String> = (0..21).map(|i| format!("p{i}@x.test")).collect();
        assert_eq!(
            copy_list("cc", &many).expect_err("too many").status,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        let parsed = json!({
            "to": ["support@demo.example", "sales@demo.example", "colleague@example.test"],
            "cc": ["reza@example.test", "Leila@example.test", "reza@example.test", "bad address"],
        });
        let own = vec![
            "support@demo.example".to_owned(),
            "sales@demo.example".to_owned(),
        ];
        assert_eq!(
            reply_all(&parsed, "leila@example.test", &own),
            vec!["colleague@example.test", "reza@example.test"]
        );
        assert!(reply_all(&json!({}), "leila@example.test", &own).is_empty());
        let copies = Copies {
            cc: Some(vec!["reza@example.test".into()]),
            bcc: vec!["audit@example.test".into()],
        };
        assert_eq!(
            format!("{copies:?}"),
            "Copies { cc: Some(1), bcc: 1 }",
            "no address in debug output"
        );
    }

    #[test]
    fn tickets_are_short_and_stable() {
        let id: InteractionId = "0190c0de-0000-7000-8000-00000abcdef1".parse().expect("id");
        assert_eq!(ticket_for(id), "SB-0ABCDEF1");
    }
}
