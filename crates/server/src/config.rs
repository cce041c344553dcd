//! Configuration: defaults, then an optional TOML file (`--config`), then environment variables
//! (`SWITCHBOARD_*`), then command-line flags. Unknown keys and bad values are errors that name
//! the key, and the process exits with code 2.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem: which key, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {problem}")]
pub struct ConfigError {
    /// The key (`http`, `SWITCHBOARD_HTTP`, `auth.session_ttl_s`, ...).
    pub key: String,
    /// What is wrong and what to do.
    pub problem: String,
}

fn err(key: &str, problem: impl ToString) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        problem: problem.to_string(),
    }
}

/// The whole configuration of `switchboard serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// SIP listen address (UDP and TCP).
    pub sip: SocketAddr,
    /// SMTP listen address (inbound mail).
    pub smtp: SocketAddr,
    /// Data directory (SQLite file, later recordings and mail).
    pub data_dir: PathBuf,
    /// `sqlite://...`; `None` means `<data_dir>/switchboard.db`.
    pub database_url: Option<String>,
    /// Seed the demo tenant on an empty database.
    pub demo: bool,
    /// Login token lifetime.
    pub session_ttl: Duration,
    /// Failed logins per username within `login_window` before it is blocked.
    pub login_failures_per_user: u32,
    /// Failed logins per client address within `login_window` before it is blocked.
    pub login_failures_per_ip: u32,
    /// The window (and block time) of the login limits.
    pub login_window: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A waiting chat whose customer has had no socket open this long is abandoned.
    pub chat_abandon_after: Duration,
    /// Largest file a chat customer may attach (`[chat] max_attachment_bytes`).
    pub chat_max_attachment_bytes: usize,
    /// MIME types a chat customer may attach (`[chat] attachment_types`; `image/*` style
    /// wildcards allowed).
    pub chat_attachment_types: Vec<String>,
    /// SMS and messaging apps (`[messaging]`).
    pub messaging: MessagingConfig,
    /// SIP (`[voice]`).
    pub voice: VoiceConfig,
    /// Email (`[email]`).
    pub email: EmailConfig,
    /// How often the recording retention sweep runs (`[recordings] sweep_interval_s`).
    pub recording_sweep_interval: Duration,
    /// Largest recording accepted by `POST /api/v1/interactions/{id}/recordings`
    /// (`[recordings] max_import_bytes`).
    pub recording_max_import_bytes: usize,
}

/// Settings of email (docs/email.md).
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// Outbound relay `host:port` (`relay`, `SWITCHBOARD_SMTP_RELAY`); `None`: mail stays in
    /// the outbox.
    pub relay: Option<(String, u16)>,
    /// The name in the SMTP greeting and the EHLO to the relay (`hostname`).
    pub hostname: String,
    /// Largest message accepted (`max_message_bytes`).
    pub max_message_bytes: usize,
    /// Most recipients per message (`max_recipients`).
    pub max_recipients: usize,
    /// Most SMTP sessions at once (`max_sessions`).
    pub max_sessions: usize,
    /// PEM certificate chain for STARTTLS (`tls_cert`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for STARTTLS (`tls_key`).
    pub tls_key: Option<PathBuf>,
    /// Verify SPF, DKIM and DMARC of received mail (`verify_auth`, default true).
    pub verify_auth: bool,
    /// DNS servers for the verification (`dns_servers`, `IP:PORT`); empty: the system's.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// How long one DNS query may take (`dns_timeout_ms`, default 2000).
    pub dns_timeout: Duration,
    /// Mailboxes fetched by IMAP (`[[email.imap]]`).
    pub imap: Vec<ImapMailbox>,
    /// How often overdue email interactions are looked for (`sla_check_secs`, default 30).
    pub sla_check: Duration,
}

/// How an IMAP connection is protected (`security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// TLS from the start (port 993).
    Tls,
    /// Plain, then STARTTLS (RFC 3501 6.2.1).
    StartTls,
    /// No TLS at all (a mailbox on loopback or a private network only).
    Plain,
}

/// A mailbox fetched by IMAP: its new mail is delivered to the email address `address`.
#[derive(Clone)]
pub struct ImapMailbox {
    /// The email channel account (its address) the mail is for (`address`).
    pub address: String,
    /// Server host (`host`).
    pub host: String,
    /// Server port (`port`; default 993 for tls, 143 otherwise).
    pub port: u16,
    /// `tls`, `starttls` or `plain` (`security`, default tls).
    pub security: ImapSecurity,
    /// Login (`user`).
    pub user: String,
    /// Password (`password`).
    pub password: switchboard_model::Sensitive<String>,
    /// Folder (`folder`, default INBOX).
    pub folder: String,
    /// Poll interval when the server has no IDLE, and the longest IDLE (`poll_interval_secs`,
    /// default 60).
    pub poll_interval: Duration,
    /// Extra PEM CA certificates to trust (`ca_file`), e.g. a private CA.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ImapMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapMailbox")
            .field("address", &self.address)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            relay: None,
            hostname: "localhost".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 50,
            max_sessions: 1000,
            tls_cert: None,
            tls_key: None,
            verify_auth: true,
            dns_servers: Vec::new(),
            dns_timeout: Duration::from_millis(2000),
            imap: Vec::new(),
            sla_check: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEmail {
    relay: Option<String>,
    hostname: Option<String>,
    max_message_bytes: Option<usize>,
    max_recipients: Option<usize>,
    max_sessions: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    verify_auth: Option<bool>,
    dns_servers: Option<Vec<String>>,
    dns_timeout_ms: Option<u64>,
    sla_check_secs: Option<u64>,
    #[serde(default)]
    imap: Vec<FileImap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileImap {
    address: String,
    host: String,
    port: Option<u16>,
    security: Option<String>,
    user: String,
    password: String,
    folder: Option<String>,
    poll_interval_secs: Option<u64>,
    ca_file: Option<PathBuf>,
}

impl FileImap {
    fn into_mailbox(self, i: usize) -> Result<ImapMailbox, ConfigError> {
        let key = |k: &str| format!("email.imap[{i}].{k}");
        let security = match self.security.as_deref().unwrap_or("tls") {
            "tls" => ImapSecurity::Tls,
            "starttls" => ImapSecurity::StartTls,
            "plain" => ImapSecurity::Plain,
            other => {
                return Err(err(
                    &key("security"),
                    format!("{other:?} is not tls, starttls or plain"),
                ));
            }
        };
        if self.host.is_empty()
            || self
                .host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err(&key("host"), "a host name or IP address"));
        }
        let address = self.address.trim().to_lowercase();
        if !address.contains('@') {
            return Err(err(
                &key("address"),
                "the email address (channel account) the mail is for",
            ));
        }
        let bad_atom = |v: &str| v.is_empty() || v.chars().any(|c| c.is_control());
        if bad_atom(&self.user) {
            return Err(err(&key("user"), "a login without control characters"));
        }
        if self.password.chars().any(|c| c.is_control()) {
            return Err(err(&key("password"), "no control characters"));
        }
        let folder = self.folder.unwrap_or_else(|| "INBOX".into());
        if bad_atom(&folder) {
            return Err(err(
                &key("folder"),
                "a folder name without control characters",
            ));
        }
        let poll = self.poll_interval_secs.unwrap_or(60);
        if poll == 0 || poll > 3600 {
            return Err(err(&key("poll_interval_secs"), "between 1 and 3600"));
        }
        Ok(ImapMailbox {
            address,
            port: self.port.unwrap_or(if security == ImapSecurity::Tls {
                993
            } else {
                143
            }),
            host: self.host,
            security,
            user: self.user,
            password: switchboard_model::Sensitive::new(self.password),
            folder,
            poll_interval: Duration::from_secs(poll),
            ca_file: self.ca_file,
        })
    }
}

/// DNS servers: `IP` (port 53) or `IP:PORT` each.
fn parse_dns_servers<'a>(
    key: &str,
    list: impl Iterator<Item = &'a str>,
) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    list.map(str::trim)
        .map(|d| {
            d.parse::<std::net::SocketAddr>()
                .or_else(|_| d.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                .map_err(|_| err(key, format!("{d:?} is not IP or IP:PORT")))
        })
        .collect()
}

/// `host:port` of a relay (a name or an IP; IPv6 in brackets).
fn parse_relay(key: &str, v: &str) -> Result<(String, u16), ConfigError> {
    let bad = || err(key, format!("{v:?} is not HOST:PORT (e.g. 127.0.0.1:25)"));
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

impl FileEmail {
    fn apply(self, m: &mut EmailConfig) -> Result<(), ConfigError> {
        if let Some(r) = self.relay {
            m.relay = Some(parse_relay("email.relay", &r)?);
        }
        if let Some(h) = self.hostname {
            if h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(err(
                    "email.hostname",
                    "a host name (letters, digits, dots, hyphens)",
                ));
            }
            m.hostname = h;
        }
        if let Some(b) = self.max_message_bytes {
            if b < 1024 {
                return Err(err("email.max_message_bytes", "must be at least 1024"));
            }
            m.max_message_bytes = b;
        }
        if let Some(n) = self.max_recipients {
            if n == 0 {
                return Err(err("email.max_recipients", "must be positive"));
            }
            m.max_recipients = n;
        }
        if let Some(n) = self.max_sessions {
            if n == 0 {
                return Err(err("email.max_sessions", "must be positive"));
            }
            m.max_sessions = n;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(err("email.tls_cert", "tls_cert and tls_key go together"));
        }
        m.tls_cert = self.tls_cert;
        m.tls_key = self.tls_key;
        if let Some(v) = self.verify_auth {
            m.verify_auth = v;
        }
        if let Some(list) = self.dns_servers {
            m.dns_servers =
                parse_dns_servers("email.dns_servers", list.iter().map(String::as_str))?;
        }
        if let Some(ms) = self.dns_timeout_ms {
            if ms == 0 || ms > 30_000 {
                return Err(err("email.dns_timeout_ms", "between 1 and 30000"));
            }
            m.dns_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.sla_check_secs {
            if n == 0 || n > 3600 {
                return Err(err("email.sla_check_secs", "between 1 and 3600"));
            }
            m.sla_check = Duration::from_secs(n);
        }
        m.imap = self
            .imap
            .into_iter()
            .enumerate()
            .map(|(i, f)| f.into_mailbox(i))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// Settings of the messaging channels (docs/messaging.md).
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// Country code for national phone numbers (`default_country_code`).
    pub default_country_code: Option<switchboard_model::phone::CountryCode>,
    /// The URL providers reach this server at (`public_url`), for Twilio signatures and
    /// status callbacks; without it the request's Host header is used.
    pub public_url: Option<String>,
    /// Largest media file fetched from a provider (`max_media_bytes`).
    pub max_media_bytes: usize,
    /// First retry delay of a failed send; it doubles each time (`retry_base_ms`).
    pub retry_base: Duration,
    /// Sends given up after this many attempts (`max_attempts`).
    pub max_attempts: u32,
    /// Words that opt a customer out (`opt_out_keywords`), compared case-insensitively.
    pub opt_out_keywords: Vec<String>,
    /// Words that opt a customer back in (`opt_in_keywords`).
    pub opt_in_keywords: Vec<String>,
    /// The confirmation sent after an opt-out (`opt_out_reply`; empty sends none).
    pub opt_out_reply: String,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect();
        MessagingConfig {
            default_country_code: None,
            public_url: None,
            max_media_bytes: 16 * 1024 * 1024,
            retry_base: Duration::from_secs(2),
            max_attempts: 8,
            opt_out_keywords: words(&[
                "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "إلغاء", "الغاء",
                "توقف", "لغو",
            ]),
            opt_in_keywords: words(&["START", "UNSTOP", "YES", "ابدأ", "شروع"]),
            opt_out_reply: "You have been unsubscribed and will receive no more messages. Reply START to subscribe again.".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sip: SocketAddr::from(([127, 0, 0, 1], 5060)),
            smtp: SocketAddr::from(([127, 0, 0, 1], 2525)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            demo: true,
            session_ttl: Duration::from_secs(12 * 3600),
            login_failures_per_user: 5,
            login_failures_per_ip: 20,
            login_window: Duration::from_secs(60),
            max_body_bytes: 256 * 1024,
            chat_abandon_after: Duration::from_secs(120),
            chat_max_attachment_bytes: 10 * 1024 * 1024,
            chat_attachment_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
                "text/csv",
                "audio/mpeg",
                "audio/ogg",
                "video/mp4",
                "application/zip",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ]
            .map(String::from)
            .to_vec(),
            messaging: MessagingConfig::default(),
            voice: VoiceConfig::default(),
            email: EmailConfig::default(),
            recording_sweep_interval: Duration::from_secs(3600),
            recording_max_import_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<String>,
    sip: Option<String>,
    smtp: Option<String>,
    data: Option<PathBuf>,
    database_url: Option<String>,
    demo: Option<bool>,
    max_body_bytes: Option<usize>,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    chat: FileChat,
    #[serde(default)]
    messaging: FileMessaging,
    #[serde(default)]
    voice: FileVoice,
    #[serde(default)]
    email: FileEmail,
    #[serde(default)]
    recordings: FileRecordings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecordings {
    sweep_interval_s: Option<u64>,
    max_import_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMessaging {
    default_country_code: Option<String>,
    public_url: Option<String>,
    max_media_bytes: Option<usize>,
    retry_base_ms: Option<u64>,
    max_attempts: Option<u32>,
    opt_out_keywords: Option<Vec<String>>,
    opt_in_keywords: Option<Vec<String>>,
    opt_out_reply: Option<String>,
}

impl FileMessaging {
    fn apply(self, m: &mut MessagingConfig) -> Result<(), ConfigError> {
        if let Some(cc) = self.default_country_code {
            m.default_country_code = Some(
                cc.parse()
                    .map_err(|e| err("messaging.default_country_code", format!("{cc:?}: {e}")))?,
            );
        }
        if let Some(u) = self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(err(
                    "messaging.public_url",
                    "must start with http:// or https://",
                ));
            }
            m.public_url = Some(u.trim_end_matches('/').to_owned());
        }
        if let Some(b) = self.max_media_bytes {
            if b == 0 {
                return Err(err("messaging.max_media_bytes", "must be positive"));
            }
            m.max_media_bytes = b;
        }
        if let Some(r) = self.retry_base_ms {
            if r == 0 {
                return Err(err("messaging.retry_base_ms", "must be positive"));
            }
            m.retry_base = Duration::from_millis(r);
        }
        if let Some(a) = self.max_attempts {
            if a == 0 {
                return Err(err("messaging.max_attempts", "must be positive"));
            }
            m.max_attempts = a;
        }
        if let Some(k) = self.opt_out_keywords {
            m.opt_out_keywords = k;
        }
        if let Some(k) = self.opt_in_keywords {
            m.opt_in_keywords = k;
        }
        if let Some(r) = self.opt_out_reply {
            m.opt_out_reply = r;
        }
        Ok(())
    }
}

/// SIP settings.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// Digest algorithms offered to phones, one challenge each, in this order (RFC 8760 2.4).
    pub digest_algorithms: Vec<switchboard_sip::digest::Algorithm>,
    /// Thresholds of the registrar's brute-force guard.
    pub auth_limits: switchboard_sip::auth_limit::LimitConfig,
    /// The address in our session descriptions and the RTP sockets' (`rtp_ip`; default: the
    /// SIP address).
    pub rtp_ip: Option<std::net::IpAddr>,
    /// RTP ports (`rtp_port_min`..=`rtp_port_max`): an even RTP and odd RTCP pair per leg.
    pub rtp_ports: std::ops::RangeInclusive<u16>,
    /// A leg that sent RTP and then nothing for this long ends the call (`rtp_timeout_s`).
    pub rtp_timeout: Duration,
    /// Our RTCP reports to each leg go out this often (`rtcp_interval_ms`; RFC 3550's
    /// minimum, 5 s, by default).
    pub rtcp_interval: Duration,
    /// Music on hold: every WAV of this folder (`moh_dir`; default: a generated melody).
    pub moh_dir: Option<std::path::PathBuf>,
    /// Detect DTMF tones in callers' audio as well (`inband_dtmf`).
    pub inband_dtmf: bool,
    /// Tell the agent's phone the queue and the caller before the caller is heard (`whisper`).
    pub whisper: bool,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        use switchboard_sip::digest::Algorithm;
        VoiceConfig {
            // Many deployed UAs (SIPp among them) read only the first challenge and speak only
            // MD5; UAs that choose among challenges still pick SHA-256.
            digest_algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            auth_limits: Default::default(),
            rtp_ip: None,
            rtp_ports: 20000..=29999,
            rtp_timeout: Duration::from_secs(30),
            rtcp_interval: Duration::from_secs(5),
            moh_dir: None,
            inband_dtmf: false,
            whisper: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVoice {
    digest_algorithms: Option<Vec<String>>,
    auth_window_s: Option<u64>,
    auth_source_slow_after: Option<u32>,
    auth_source_block_after: Option<u32>,
    auth_user_slow_after: Option<u32>,
    auth_user_block_after: Option<u32>,
    auth_block_s: Option<u64>,
    auth_base_delay_ms: Option<u64>,
    auth_max_delay_ms: Option<u64>,
    auth_trust_s: Option<u64>,
    rtp_ip: Option<String>,
    rtp_port_min: Option<u16>,
    rtp_port_max: Option<u16>,
    rtp_timeout_s: Option<u64>,
    rtcp_interval_ms: Option<u64>,
    moh_dir: Option<String>,
    inband_dtmf: Option<bool>,
    whisper: Option<bool>,
}

fn positive<T: PartialEq + Default>(
    key: &str,
    v: Option<T>,
    into: &mut T,
) -> Result<(), ConfigError> {
    if let Some(v) = v {
        if v == T::default() {
            return Err(err(key, "must be positive"));
        }
        *into = v;
    }
    Ok(())
}

impl FileVoice {
    fn apply(self, v: &mut VoiceConfig) -> Result<(), ConfigError> {
        use switchboard_sip::digest::Algorithm;
        if let Some(ip) = &self.rtp_ip {
            v.rtp_ip = Some(
                ip.trim()
                    .parse()
                    .map_err(|_| err("voice.rtp_ip", format!("{ip:?} is not an IP address")))?,
            );
        }
        let min = self.rtp_port_min.unwrap_or(*v.rtp_ports.start());
        let max = self.rtp_port_max.unwrap_or(*v.rtp_ports.end());
        if min < 1024 || max < min.saturating_add(3) {
            return Err(err(
                "voice.rtp_port_min",
                "rtp_port_min must be 1024 or more and rtp_port_max at least 4 ports above",
            ));
        }
        v.rtp_ports = min..=max;
        if let Some(t) = self.rtp_timeout_s {
            // 0 turns the timeout off.
            v.rtp_timeout = Duration::from_secs(t);
        }
        if let Some(ms) = self.rtcp_interval_ms {
            if ms < 100 {
                return Err(err(
                    "voice.rtcp_interval_ms",
                    "must be at least 100 (RFC 3550 asks for 5000)",
                ));
            }
            v.rtcp_interval = Duration::from_millis(ms);
        }
        if let Some(d) = &self.moh_dir {
            v.moh_dir = Some(std::path::PathBuf::from(d));
        }
        if let Some(b) = self.inband_dtmf {
            v.inband_dtmf = b;
        }
        if let Some(b) = self.whisper {
            v.whisper = b;
        }
        if let Some(names) = self.digest_algorithms {
            let mut algs = Vec::new();
            for n in &names {
                let a = Algorithm::parse(n).ok_or_else(|| {
                    err(
                        "voice.digest_algorithms",
                        format!("{n:?}: use \"SHA-256\" or \"MD5\""),
                    )
                })?;
                if !algs.contains(&a) {
                    algs.push(a);
                }
            }
            if algs.is_empty() {
                return Err(err("voice.digest_algorithms", "name at least one"));
            }
            v.digest_algorithms = algs;
        }
        let l = &mut v.auth_limits;
        let secs = |x: Option<u64>| x.map(Duration::from_secs);
        let ms = |x: Option<u64>| x.map(Duration::from_millis);
        positive(
            "voice.auth_window_s",
            secs(self.auth_window_s),
            &mut l.window,
        )?;
        positive(
            "voice.auth_source_slow_after",
            self.auth_source_slow_after,
            &mut l.source_slow_after,
        )?;
        positive(
            "voice.auth_source_block_after",
            self.auth_source_block_after,
            &mut l.source_block_after,
        )?;
        positive(
            "voice.auth_user_slow_after",
            self.auth_user_slow_after,
            &mut l.user_slow_after,
        )?;
        positive(
            "voice.auth_user_block_after",
            self.auth_user_block_after,
            &mut l.user_block_after,
        )?;
        positive(
            "voice.auth_block_s",
            secs(self.auth_block_s),
            &mut l.block_for,
        )?;
        positive(
            "voice.auth_base_delay_ms",
            ms(self.auth_base_delay_ms),
            &mut l.base_delay,
        )?;
        positive(
            "voice.auth_max_delay_ms",
            ms(self.auth_max_delay_ms),
            &mut l.max_delay,
        )?;
        positive(
            "voice.auth_trust_s",
            secs(self.auth_trust_s),
            &mut l.trust_for,
        )?;
        if l.source_block_after < l.source_slow_after {
            return Err(err(
                "voice.auth_source_block_after",
                "must not be below auth_source_slow_after",
            ));
        }
        if l.user_block_after < l.user_slow_after {
            return Err(err(
                "voice.auth_user_block_after",
                "must not be below auth_user_slow_after",
            ));
        }
        if l.max_delay < l.base_delay {
            return Err(err(
                "voice.auth_max_delay_ms",
                "must not be below auth_base_delay_ms",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileChat {
    abandon_after_s: Option<u64>,
    max_attachment_bytes: Option<usize>,
    attachment_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    session_ttl_s: Option<u64>,
    login_failures_per_user: Option<u32>,
    login_failures_per_ip: Option<u32>,
    login_window_s: Option<u64>,
}

fn parse_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        err(
            key,
            format!(
                "{s:?} is not HOST:PORT with a numeric IP (e.g. 127.0.0.1:8080; port 0 picks one)"
            ),
        )
    })
}

fn check_database_url(key: &str, u: String) -> Result<String, ConfigError> {
    if u.starts_with("sqlite:") {
        Ok(u)
    } else {
        Err(err(
            key,
            format!(
                "{u:?}: only sqlite://PATH is supported by this build (PostgreSQL arrives with cluster mode)"
            ),
        ))
    }
}

impl Config {
    /// Loads the configuration: defaults, the file, then `env` (name → value) overrides.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
            let f: FileConfig = toml::from_str(&text).map_err(|e| {
                err(
                    &format!(
                        "{} ({})",
                        path.display(),
                        e.span()
                            .map(|s| format!("at byte {}", s.start))
                            .unwrap_or_default()
                    ),
                    e.message(),
                )
            })?;
            if let Some(h) = f.http {
                c.http = parse_addr("http", &h)?;
            }
            if let Some(h) = f.sip {
                c.sip = parse_addr("sip", &h)?;
            }
            if let Some(h) = f.smtp {
                c.smtp = parse_addr("smtp", &h)?;
            }
            if let Some(d) = f.data {
                c.data_dir = d;
            }
            if let Some(u) = f.database_url {
                c.database_url = Some(check_database_url("database_url", u)?);
            }
            c.demo = f.demo.unwrap_or(c.demo);
            if let Some(m) = f.max_body_bytes {
                if m < 1024 {
                    return Err(err("max_body_bytes", "must be at least 1024"));
                }
                c.max_body_bytes = m;
            }
            if let Some(t) = f.auth.session_ttl_s {
                if t == 0 {
                    return Err(err("auth.session_ttl_s", "must be positive"));
                }
                c.session_ttl = Duration::from_secs(t);
            }
            if let Some(n) = f.auth.login_failures_per_user {
                if n == 0 {
                    return Err(err("auth.login_failures_per_user", "must be positive"));
                }
                c.login_failures_per_user = n;
            }
            if let Some(n) = f.auth.login_failures_per_ip {
                if n == 0 {
                    return Err(err("auth.login_failures_per_ip", "must be positive"));
                }
                c.login_failures_per_ip = n;
            }
            if let Some(a) = f.chat.abandon_after_s {
                if a == 0 {
                    return Err(err("chat.abandon_after_s", "must be positive"));
                }
                c.chat_abandon_after = Duration::from_secs(a);
            }
            if let Some(b) = f.chat.max_attachment_bytes {
                if b == 0 {
                    return Err(err("chat.max_attachment_bytes", "must be positive"));
                }
                c.chat_max_attachment_bytes = b;
            }
            if let Some(t) = f.chat.attachment_types {
                if let Some(bad) = t.iter().find(|t| {
                    let mut p = t.split('/');
                    !matches!((p.next(), p.next(), p.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty())
                }) {
                    return Err(err(
                        "chat.attachment_types",
                        format!("{bad:?} is not a MIME type like \"image/png\" or \"image/*\""),
                    ));
                }
                c.chat_attachment_types = t.iter().map(|t| t.to_ascii_lowercase()).collect();
            }
            f.messaging.apply(&mut c.messaging)?;
            f.voice.apply(&mut c.voice)?;
            f.email.apply(&mut c.email)?;
            positive(
                "recordings.sweep_interval_s",
                f.recordings.sweep_interval_s.map(Duration::from_secs),
                &mut c.recording_sweep_interval,
            )?;
            positive(
                "recordings.max_import_bytes",
                f.recordings.max_import_bytes,
                &mut c.recording_max_import_bytes,
            )?;
            if let Some(w) = f.auth.login_window_s {
                if w == 0 {
                    return Err(err("auth.login_window_s", "must be positive"));
                }
                c.login_window = Duration::from_secs(w);
            }
        }
        if let Some(h) = env("SWITCHBOARD_HTTP") {
            c.http = parse_addr("SWITCHBOARD_HTTP", &h)?;
        }
        if let Some(h) = env("SWITCHBOARD_SIP") {
            c.sip = parse_addr("SWITCHBOARD_SIP", &h)?;
        }
        if let Some(h) = env("SWITCHBOARD_SMTP") {
            c.smtp = parse_addr("SWITCHBOARD_SMTP", &h)?;
        }
        if let Some(d) = env("SWITCHBOARD_DNS").filter(|d| !d.is_empty()) {
            if d == "off" {
                c.email.verify_auth = false;
            } else {
                c.email.verify_auth = true;
                c.email.dns_servers = parse_dns_servers("SWITCHBOARD_DNS", d.split(','))?;
            }
        }
        if let Some(r) = env("SWITCHBOARD_SMTP_RELAY").filter(|r| !r.is_empty()) {
            c.email.relay = Some(parse_relay("SWITCHBOARD_SMTP_RELAY", &r)?);
        }
        if let Some(d) = env("SWITCHBOARD_DATA") {
            c.data_dir = PathBuf::from(d);
        }
        if let Some(u) = env("SWITCHBOARD_DATABASE_URL") {
            c.database_url = Some(check_database_url("SWITCHBOARD_DATABASE_URL", u)?);
        }
        if let Some(n) = env("SWITCHBOARD_NATS") {
            return Err(err(
                "SWITCHBOARD_NATS",
                format!(
                    "{n:?}: cluster mode is not available in this build; unset it to run embedded"
                ),
            ));
        }
        Ok(c)
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("switchboard.db").display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn env_overrides_and_names_bad_keys() {
        let c = Config::load(None, &|k| {
            (k == "SWITCHBOARD_HTTP").then(|| "127.0.0.1:0".into())
        })
        .expect("valid");
        assert_eq!(c.http.port(), 0);
        let e = Config::load(None, &|k| {
            (k == "SWITCHBOARD_HTTP").then(|| "nowhere".into())
        })
        .expect_err("invalid");
        assert_eq!(e.key, "SWITCHBOARD_HTTP");
        assert_eq!(
            Config::load(None, &no_env).expect("defaults").http.port(),
            8080
        );
    }

    #[test]
    fn email_keys_dns_and_imap_mailboxes() {
        let dir = std::env::temp_dir().join(format!("sb-config-email-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let f = dir.join("c.toml");
        let load = |text: &str, env: &dyn Fn(&str) -> Option<String>| {
            std::fs::write(&f, text).expect("write");
            Config::load(Some(&f), env)
        };
        let c = load(
            "[email]\ndns_servers = [\"127.0.0.1:5353\", \"::1\"]\ndns_timeout_ms = 300\n\
             [[email.imap]]\naddress = \"Support@Demo.Example\"\nhost = \"imap.example.test\"\n\
             user = \"u\"\npassword = \"p\"\n",
            &no_env,
        )
        .expect("valid");
        assert_eq!(c.email.dns_servers.len(), 2);
        assert_eq!(c.email.dns_servers[1].port(), 53);
        assert_eq!(c.email.dns_timeout, Duration::from_millis(300));
        let m = &c.email.imap[0];
        assert_eq!(
            (m.address.as_str(), m.port, m.security, m.folder.as_str()),
            ("support@demo.example", 993, ImapSecurity::Tls, "INBOX")
        );
        assert_eq!(m.poll_interval, Duration::from_secs(60));
        assert!(
            !format!("{m:?}").contains("password"),
            "the password is not logged"
        );
        // SWITCHBOARD_DNS wins: off, or a list.
        let off = load("", &|k| (k == "SWITCHBOARD_DNS").then(|| "off".into())).expect("valid");
        assert!(!off.email.verify_auth);
        let e = load("", &|k| (k == "SWITCHBOARD_DNS").then(|| "resolver".into()))
            .expect_err("not an address");
        assert_eq!(e.key, "SWITCHBOARD_DNS");
        for (bad, key) in [
            (
                "[[email.imap]]\naddress = \"a@b\"\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\nsecurity = \"ssl3\"\n",
                "email.imap[0].security",
            ),
            (
                "[[email.imap]]\naddress = \"nobody\"\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\n",
                "email.imap[0].address",
            ),
            (
                "[[email.imap]]\naddress = \"a@b\"\nhost = \"h\"\nuser = \"u\\r\\nx\"\npassword = \"p\"\n",
                "email.imap[0].user",
            ),
            (
                "[[email.imap]]\naddress = \"a@b\"\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\npoll_interval_secs = 0\n",
                "email.imap[0].poll_interval_secs",
            ),
            ("[email]\ndns_timeout_ms = 0\n", "email.dns_timeout_ms"),
            (
                "[email]\ndns_servers = [\"dns.example\"]\n",
                "email.dns_servers",
            ),
            ("[email]\nsla_check_secs = 0\n", "email.sla_check_secs"),
        ] {
            let e = load(bad, &no_env).expect_err(bad);
            assert_eq!(e.key, key, "{bad}");
        }
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("sb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let f = dir.join("c.toml");
        std::fs::write(&f, "http = \"127.0.0.1:9000\"\nbogus = 1\n").expect("write");
        let e = Config::load(Some(&f), &no_env).expect_err("unknown key");
        assert!(e.problem.contains("bogus"), "{e}");
        std::fs::write(
            &f,
            "http = \"127.0.0.1:9000\"\n[auth]\nsession_ttl_s = 60\n",
        )
        .expect("write");
        let c = Config::load(Some(&f), &no_env).expect("valid");
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.session_ttl, Duration::from_secs(60));
    }

    #[test]
    fn recordings_keys_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("sb-config-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let f = dir.join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).expect("write");
            Config::load(Some(&f), &no_env)
        };
        let c = load("").expect("empty");
        assert_eq!(c.recording_sweep_interval, Duration::from_secs(3600));
        let c =
            load("[recordings]\nsweep_interval_s = 5\nmax_import_bytes = 4096\n").expect("valid");
        assert_eq!(c.recording_sweep_interval, Duration::from_secs(5));
        assert_eq!(c.recording_max_import_bytes, 4096);
        for (text, key) in [
            (
                "[recordings]\nsweep_interval_s = 0\n",
                "recordings.sweep_interval_s",
            ),
            (
                "[recordings]\nmax_import_bytes = 0\n",
                "recordings.max_import_bytes",
            ),
        ] {
            assert_eq!(load(text).expect_err(text).key, key);
        }
        assert!(load("[recordings]\nkeep = 1\n").is_err(), "unknown key");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn voice_keys_set_the_digest_order_and_the_guard() {
        use switchboard_sip::digest::Algorithm;
        let dir = std::env::temp_dir().join(format!("sb-config-voice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let f = dir.join("c.toml");
        let load = |text: &str| {
            std::fs::write(&f, text).expect("write");
            Config::load(Some(&f), &no_env)
        };
        let c = load("").expect("empty");
        assert_eq!(
            c.voice.digest_algorithms,
            vec![Algorithm::Md5, Algorithm::Sha256]
        );
        let c = load(
            "[voice]\ndigest_algorithms = [\"sha-256\"]\nauth_source_slow_after = 2\nauth_source_block_after = 4\nauth_block_s = 30\n",
        )
        .expect("valid");
        assert_eq!(c.voice.digest_algorithms, vec![Algorithm::Sha256]);
        assert_eq!(c.voice.auth_limits.source_slow_after, 2);
        assert_eq!(c.voice.auth_limits.source_block_after, 4);
        assert_eq!(c.voice.auth_limits.block_for, Duration::from_secs(30));
        assert_eq!(
            c.voice.rtcp_interval,
            Duration::from_secs(5),
            "RFC 3550's minimum"
        );
        let c = load("[voice]\nrtcp_interval_ms = 250\n").expect("valid");
        assert_eq!(c.voice.rtcp_interval, Duration::from_millis(250));
        for (text, key) in [
            ("[voice]\nrtcp_interval_ms = 50\n", "voice.rtcp_interval_ms"),
            (
                "[voice]\ndigest_algorithms = [\"SHA-512\"]\n",
                "voice.digest_algorithms",
            ),
            (
                "[voice]\ndigest_algorithms = []\n",
                "voice.digest_algorithms",
            ),
            ("[voice]\nauth_window_s = 0\n", "voice.auth_window_s"),
            (
                "[voice]\nauth_user_slow_after = 9\nauth_user_block_after = 3\n",
                "voice.auth_user_block_after",
            ),
        ] {
            let e = load(text).expect_err(text);
            assert_eq!(e.key, key, "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
