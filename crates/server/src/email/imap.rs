//! IMAP polling (RFC 3501, IDLE RFC 2177) of mailboxes kept elsewhere (`[[email.imap]]`), with
//! [async-imap](https://crates.io/crates/async-imap). Each new mail goes through the same
//! intake as SMTP ([`super::receive`]): stored raw and parsed, then its UID is recorded in the
//! store (`imap_mailboxes`), and only then is it flagged `\Seen` on the server. A restart goes on
//! after the recorded UID; a changed UIDVALIDITY starts over with the unseen mail (and the
//! Message-ID check of the intake keeps a mail from being stored twice).
//!
//! With IDLE the server tells us about new mail; without it the folder is polled every
//! `poll_interval_secs`. Errors (connection, login) are logged and retried with a backoff; they
//! never stop the server.

use super::auth::Origin;
use crate::config::{ImapMailbox, ImapSecurity};
use crate::state::AppState;
use async_imap::extensions::idle::IdleResponse;
use futures_util::TryStreamExt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Connecting and each command may take this long.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Most mails imported in one pass (the next pass goes on).
const BATCH: usize = 200;

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
type Stream = Box<dyn Io>;
type Session = async_imap::Session<Stream>;

/// Starts one task per configured mailbox.
pub fn start(s: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    s.config
        .email
        .imap
        .iter()
        .cloned()
        .map(|m| {
            let s = s.clone();
            tokio::spawn(async move { run(s, m).await })
        })
        .collect()
}

/// The mailbox's name in the store and in logs.
fn key(m: &ImapMailbox) -> String {
    format!("{}@{}:{}/{}", m.user, m.host, m.port, m.folder)
}

async fn run(s: AppState, m: ImapMailbox) {
    let name = key(&m);
    let mut backoff = Duration::from_secs(1);
    loop {
        match session(&s, &m, &name).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                metrics::counter!("switchboard_imap_errors_total").increment(1);
                tracing::warn!(mailbox = %name, error = %e, "imap: retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(m.poll_interval.max(Duration::from_secs(5)));
            }
        }
    }
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow::anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow::anyhow!("{what}: no answer in {IO_TIMEOUT:?}")),
    }
}

fn tls_connector(m: &ImapMailbox) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &m.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("ca_file {}: {e}", path.display()))?;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| anyhow::anyhow!("ca_file: {e}"))?)?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

async fn tls(m: &ImapMailbox, tcp: tokio::net::TcpStream) -> anyhow::Result<Stream> {
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(m.host.clone())
        .map_err(|e| anyhow::anyhow!("host {}: {e}", m.host))?;
    let stream = timed("tls handshake", tls_connector(m)?.connect(name, tcp)).await?;
    Ok(Box::new(stream))
}

/// Connects and logs in.
async fn login(m: &ImapMailbox) -> anyhow::Result<Session> {
    let tcp = timed(
        "connect",
        tokio::net::TcpStream::connect((m.host.as_str(), m.port)),
    )
    .await?;
    let (stream, greeted) = match m.security {
        ImapSecurity::Tls => (tls(m, tcp).await?, false),
        ImapSecurity::Plain => (Box::new(tcp) as Stream, false),
        // After STARTTLS no greeting comes (RFC 3501 6.2.1).
        ImapSecurity::StartTls => (tls(m, timed("STARTTLS", starttls(tcp)).await?).await?, true),
    };
    let mut c = async_imap::Client::new(stream);
    if !greeted {
        timed("greeting", async {
            c.read_response()
                .await?
                .ok_or_else(|| std::io::Error::other("closed before the greeting"))
        })
        .await?;
    }
    timed("LOGIN", async {
        c.login(&m.user, m.password.expose())
            .await
            .map_err(|(e, _)| e)
    })
    .await
}

/// The greeting and STARTTLS in clear, by hand: the stream goes on as TLS, and nothing the
/// server said before it is kept.
async fn starttls(tcp: tokio::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    let mut read_line = async |r: &mut BufReader<tokio::net::TcpStream>| {
        line.clear();
        let mut limited = r.take(8192);
        let n = limited.read_line(&mut line).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        Ok(line.clone())
    };
    let greeting = read_line(&mut r).await?;
    if !greeting.starts_with("* OK") {
        return Err(std::io::Error::other(format!(
            "greeting: {}",
            greeting.trim()
        )));
    }
    r.get_mut().write_all(b"s1 STARTTLS\r\n").await?;
    loop {
        let l = read_line(&mut r).await?;
        if let Some(rest) = l.strip_prefix("s1 ") {
            if rest.starts_with("OK") {
                break;
            }
            return Err(std::io::Error::other(format!("STARTTLS: {}", rest.trim())));
        }
    }
    if !r.buffer().is_empty() {
        return Err(std::io::Error::other(
            "data after STARTTLS (RFC 3501 6.2.1)",
        ));
    }
    Ok(r.into_inner())
}

/// One connection: import what is new, then wait (IDLE or a poll interval), until an error.
async fn session(s: &AppState, m: &ImapMailbox, name: &str) -> anyhow::Result<()> {
    let mut sess = login(m).await?;
    let idle = timed("CAPABILITY", sess.capabilities())
        .await?
        .has_str("IDLE");
    loop {
        let mailbox = timed("SELECT", sess.select(&m.folder)).await?;
        let validity = i64::from(mailbox.uid_validity.unwrap_or(0));
        import(s, m, name, &mut sess, validity).await?;
        if idle {
            let mut h = sess.idle();
            timed("IDLE", h.init()).await?;
            {
                let (wait, _stop) = h.wait_with_timeout(m.poll_interval);
                let r = wait.await.map_err(|e| anyhow::anyhow!("IDLE: {e}"))?;
                if let IdleResponse::NewData(_) = r {
                    tracing::debug!(mailbox = %name, "imap: new data");
                }
            }
            sess = timed("DONE", h.done()).await?;
        } else {
            tokio::time::sleep(m.poll_interval).await;
            timed("NOOP", sess.noop()).await?;
        }
    }
}

/// Imports the mail after the recorded UID (all unseen mail the first time and after a
/// UIDVALIDITY change), oldest first.
async fn import(
    s: &AppState,
    m: &ImapMailbox,
    name: &str,
    sess: &mut Session,
    validity: i64,
) -> anyhow::Result<()> {
    let Some(account) = s.store.email_account_by_address(&m.address).await? else {
        tracing::warn!(mailbox = %name, address = %m.address, "imap: no enabled email account has this address; nothing imported");
        return Ok(());
    };
    let last = match s.store.imap_state(name).await? {
        Some((v, last)) if v == validity => Some(last),
        _ => None,
    };
    // The first time, the mail already there and seen is not imported: only what is unseen,
    // and everything after the highest UID now.
    let highest = match last {
        Some(_) => None,
        None => Some(
            timed("UID SEARCH", sess.uid_search("ALL"))
                .await?
                .into_iter()
                .max()
                .map(i64::from)
                .unwrap_or(0),
        ),
    };
    let query = match last {
        Some(last) => format!("UID {}:*", last + 1),
        None => "UNSEEN".to_owned(),
    };
    let mut uids: Vec<u32> = timed("UID SEARCH", sess.uid_search(&query))
        .await?
        .into_iter()
        // `n:*` always matches the highest UID, even below n (RFC 3501 6.4.8).
        .filter(|u| last.is_none_or(|l| i64::from(*u) > l))
        .collect();
    uids.sort_unstable();
    if last.is_some() {
        uids.truncate(BATCH);
    }
    let max = s.config.email.max_message_bytes;
    for uid in uids {
        // `[email] max_message_bytes` holds here too: a larger mail is not fetched at all.
        let size = {
            let fetches =
                timed("UID FETCH", sess.uid_fetch(uid.to_string(), "RFC822.SIZE")).await?;
            let all: Vec<_> = timed("UID FETCH", fetches.try_collect::<Vec<_>>()).await?;
            all.iter().find_map(|f| f.size)
        };
        if size.is_some_and(|n| n as usize > max) {
            metrics::counter!("switchboard_email_refused_total", "reason" => "imap_too_large")
                .increment(1);
            tracing::warn!(mailbox = %name, uid, size, max, "imap: a mail over max_message_bytes was left in the mailbox, unseen");
            record_done(s, &account, name, validity, uid, last.is_some()).await?;
            continue;
        }
        let raw = {
            let fetches =
                timed("UID FETCH", sess.uid_fetch(uid.to_string(), "BODY.PEEK[]")).await?;
            let all: Vec<_> = timed("UID FETCH", fetches.try_collect::<Vec<_>>()).await?;
            all.iter().find_map(|f| f.body().map(<[u8]>::to_vec))
        };
        let Some(raw) = raw else {
            tracing::warn!(mailbox = %name, uid, "imap: the server sent no body; skipped");
            continue;
        };
        let mail_from = return_path(&raw);
        let origin = Origin {
            ip: None,
            helo: String::new(),
            mail_from: mail_from.clone(),
        };
        let checks = s
            .email
            .verifier
            .verify(&raw, &origin, s.clock.wall_ms())
            .await;
        match super::receive(s, &account, &mail_from, &raw, &checks).await {
            Ok(_) => {
                metrics::counter!("switchboard_imap_imported_total").increment(1);
            }
            Err((true, reason)) => {
                // Unreadable: recorded as done so it does not block the mailbox, left unseen.
                tracing::warn!(mailbox = %name, uid, %reason, "imap: a mail was refused");
                record_done(s, &account, name, validity, uid, last.is_some()).await?;
                continue;
            }
            Err((false, reason)) => return Err(anyhow::anyhow!("storing uid {uid}: {reason}")),
        }
        // Stored first, then recorded, then flagged: a crash in between imports nothing twice
        // (the recorded UID, and the Message-ID check) and loses nothing. A first pass records
        // its end only (below): interrupted, it runs again over what is still unseen, so mail
        // read elsewhere between the unseen ones is never taken for new.
        record_done(s, &account, name, validity, uid, last.is_some()).await?;
        let flagged = timed(
            "UID STORE",
            sess.uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)"),
        )
        .await?;
        let _: Vec<_> = timed("UID STORE", flagged.try_collect::<Vec<_>>()).await?;
    }
    if let Some(highest) = highest {
        let done = s.store.imap_state(name).await?;
        let done = match done {
            Some((v, l)) if v == validity => l,
            _ => 0,
        };
        let now = s.clock.wall_ms();
        s.store
            .set_imap_state(account.tenant, name, validity, done.max(highest), now)
            .await?;
    }
    Ok(())
}

/// Records `uid` of the mailbox as done (stored, or refused for good), so that a restart does
/// not fetch it again. `resumed`: the mailbox has a recorded state to move on; a first pass
/// records only its end (see [`import`]).
async fn record_done(
    s: &AppState,
    account: &switchboard_store::ChannelAccount,
    name: &str,
    validity: i64,
    uid: u32,
    resumed: bool,
) -> anyhow::Result<()> {
    if resumed {
        s.store
            .set_imap_state(
                account.tenant,
                name,
                validity,
                i64::from(uid),
                s.clock.wall_ms(),
            )
            .await?;
    }
    Ok(())
}

/// The envelope sender an MTA recorded (`Return-Path`, RFC 5321 4.4), or empty.
fn return_path(raw: &[u8]) -> String {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len().min(64 * 1024));
    let head = String::from_utf8_lossy(&raw[..head_end]);
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("return-path").then(|| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_lowercase()
            })
        })
        .filter(|a| a.len() <= 320 && !a.chars().any(char::is_whitespace))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_path_is_the_envelope_sender_and_bad_ones_are_dropped() {
        let m = b"Received: x\r\nReturn-Path: <Noor@Example.TEST>\r\nFrom: a@b\r\n\r\nReturn-Path: <body@x>\r\n";
        assert_eq!(return_path(m), "noor@example.test");
        assert_eq!(return_path(b"Return-Path: <>\r\n\r\n"), "");
        assert_eq!(return_path(b"From: a@b\r\n\r\n"), "");
        assert_eq!(return_path(b"Return-Path: <a b@c>\r\n\r\n"), "");
        assert_eq!(return_path(b"\xff\xfe"), "");
        assert_eq!(return_path(b""), "");
    }
}
