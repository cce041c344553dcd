//! SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) verification of received mail with
//! [mail-auth](https://crates.io/crates/mail-auth). The results are recorded with the mail
//! (`headers.auth` in the API); they never decide whether a mail is accepted: the MTA in front
//! or the agent does. DNS that does not answer gives `temperror` within a bounded time, and after
//! a timeout the resolver is given a rest (mail goes on being accepted, marked `temperror`) so a
//! dead resolver cannot slow every delivery down.

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult,
    dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How long verification is skipped after DNS timed out.
const REST_MS: i64 = 30_000;

/// Where the mail came from, as the SMTP session saw it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The client's address (`None`: not received over SMTP, e.g. fetched by IMAP: no SPF).
    pub ip: Option<IpAddr>,
    /// The EHLO/HELO domain.
    pub helo: String,
    /// The envelope sender (empty for bounces).
    pub mail_from: String,
}

/// The verifier: a resolver with a short timeout, or nothing when verification is off.
pub struct Verifier {
    resolver: Option<MessageAuthenticator>,
    timeout: Duration,
    /// Our own host name (the SPF `%{r}` macro).
    hostname: String,
    /// Wall ms until which DNS is considered unreachable.
    resting_until: AtomicI64,
}

impl Verifier {
    /// Builds it from `[email] verify_auth`, `dns_servers` and `dns_timeout_ms`. No DNS servers
    /// configured: the system's (`/etc/resolv.conf`); that unreadable: verification is off.
    pub fn new(cfg: &crate::config::EmailConfig) -> Self {
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.dns_timeout;
        opts.attempts = 1;
        let resolver = if !cfg.verify_auth {
            None
        } else if cfg.dns_servers.is_empty() {
            match mail_auth::hickory_resolver::system_conf::read_system_conf() {
                Ok((config, _)) => MessageAuthenticator::new(config, opts).ok(),
                Err(e) => {
                    tracing::warn!(error = %e, "email: no system DNS configuration; SPF/DKIM/DMARC are not verified");
                    None
                }
            }
        } else {
            let servers = cfg.dns_servers.iter().map(name_server).collect();
            match MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), opts) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "email: cannot set up DNS; SPF/DKIM/DMARC are not verified");
                    None
                }
            }
        };
        Verifier {
            resolver,
            timeout: cfg.dns_timeout,
            hostname: cfg.hostname.clone(),
            resting_until: AtomicI64::new(0),
        }
    }

    /// Verifies a mail; `now` is wall ms (for the rest after a DNS timeout). Never fails: every
    /// check has a result, `temperror` when DNS did not answer in time.
    pub async fn verify(&self, raw: &[u8], origin: &Origin, now: i64) -> Value {
        let Some(resolver) = &self.resolver else {
            return json!({"verified": false});
        };
        let Some(msg) = AuthenticatedMessage::parse(raw) else {
            return json!({"verified": true, "spf": none(), "dkim": [], "dmarc": none()});
        };
        if now < self.resting_until.load(Ordering::Relaxed) {
            let spf = match origin.ip {
                Some(_) => resting(),
                None => none(),
            };
            let dkim = if msg.dkim_headers.is_empty() {
                json!([])
            } else {
                json!([resting()])
            };
            return json!({"verified": true, "spf": spf, "dkim": dkim, "dmarc": resting()});
        }
        // A stage may need a few look-ups (SPF includes, the DMARC organisational domain).
        let budget = self.timeout * 3;
        let mut timed_out = false;
        let dkim = match tokio::time::timeout(budget, resolver.verify_dkim(&msg)).await {
            Ok(d) => Some(d),
            Err(_) => {
                timed_out = true;
                None
            }
        };
        let mail_from = if origin.mail_from.contains('@') {
            origin.mail_from.clone()
        } else {
            // RFC 7208 2.4: a null reverse path is checked as postmaster@helo.
            format!("postmaster@{}", origin.helo)
        };
        let mail_from_domain = mail_from
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        let spf = match origin.ip {
            None => None,
            Some(ip) => {
                let params =
                    SpfParameters::verify_mail_from(ip, &origin.helo, &self.hostname, &mail_from);
                match tokio::time::timeout(budget, resolver.verify_spf(params)).await {
                    Ok(s) => Some(s),
                    Err(_) => {
                        timed_out = true;
                        None
                    }
                }
            }
        };
        let dmarc = match (&dkim, &spf) {
            (Some(dkim), Some(spf)) => {
                let params = DmarcParameters::new(&msg, dkim, &mail_from_domain, spf);
                match tokio::time::timeout(budget, resolver.verify_dmarc(params)).await {
                    Ok(d) => Some(dmarc_json(&d)),
                    Err(_) => {
                        timed_out = true;
                        None
                    }
                }
            }
            // Without SPF (IMAP), DMARC is judged on DKIM alone.
            (Some(dkim), None) if origin.ip.is_none() => {
                let spf = mail_auth::SpfOutput::new(mail_from_domain.clone());
                let params = DmarcParameters::new(&msg, dkim, &mail_from_domain, &spf);
                match tokio::time::timeout(budget, resolver.verify_dmarc(params)).await {
                    Ok(d) => Some(dmarc_json(&d)),
                    Err(_) => {
                        timed_out = true;
                        None
                    }
                }
            }
            _ => None,
        };
        if timed_out {
            self.resting_until.store(now + REST_MS, Ordering::Relaxed);
            metrics::counter!("switchboard_email_dns_timeouts_total").increment(1);
        }
        let temp = || json!({"result": "temperror", "reason": "DNS did not answer in time"});
        let dkim = match dkim {
            Some(d) => Value::Array(d.iter().map(dkim_json).collect()),
            None if msg.dkim_headers.is_empty() => json!([]),
            None => json!([temp()]),
        };
        let spf = match (origin.ip, spf) {
            (None, _) => none(),
            (Some(_), Some(s)) => json!({"result": spf_name(s.result()), "domain": s.domain()}),
            (Some(_), None) => {
                let mut t = temp();
                t["domain"] = json!(mail_from_domain);
                t
            }
        };
        json!({
            "verified": true,
            "spf": spf,
            "dkim": dkim,
            "dmarc": dmarc.unwrap_or_else(temp),
        })
    }
}

fn name_server(addr: &SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

fn none() -> Value {
    json!({"result": "none"})
}

fn resting() -> Value {
    json!({"result": "temperror", "reason": "DNS timed out recently; not asked again yet"})
}

fn spf_name(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_json(d: &mail_auth::DkimOutput<'_>) -> Value {
    let (result, reason) = match d.result() {
        DkimResult::Pass => ("pass", None),
        // RFC 8601 2.7.1: a body that no longer matches its hash failed verification.
        DkimResult::Neutral(
            e @ mail_auth::Error::Dkim(mail_auth::dkim::DkimError::FailedBodyHashMatch),
        ) => ("fail", Some(e.to_string())),
        DkimResult::Neutral(e) => ("neutral", Some(e.to_string())),
        DkimResult::Fail(e) => ("fail", Some(e.to_string())),
        DkimResult::PermError(e) => ("permerror", Some(e.to_string())),
        DkimResult::TempError(e) => ("temperror", Some(e.to_string())),
        DkimResult::None => ("none", None),
    };
    let mut v = json!({"result": result});
    if let Some(r) = reason {
        v["reason"] = json!(r);
    }
    if let Some(s) = d.signature() {
        v["domain"] = json!(s.d);
        v["selector"] = json!(s.s);
    }
    v
}

fn dmarc_name(r: &DmarcResult) -> (&'static str, Option<String>) {
    match r {
        DmarcResult::Pass => ("pass", None),
        DmarcResult::Fail(e) => ("fail", Some(e.to_string())),
        DmarcResult::TempError(e) => ("temperror", Some(e.to_string())),
        DmarcResult::PermError(e) => ("permerror", Some(e.to_string())),
        DmarcResult::None => ("none", None),
    }
}

fn dmarc_json(d: &mail_auth::DmarcOutput) -> Value {
    // RFC 7489 6.6.2: DMARC passes when SPF or DKIM passes aligned.
    let (spf, _) = dmarc_name(d.spf_result());
    let (dkim, dkim_reason) = dmarc_name(d.dkim_result());
    let result = if spf == "pass" || dkim == "pass" {
        "pass"
    } else if spf == "temperror" || dkim == "temperror" {
        "temperror"
    } else if d.dmarc_record().is_none() {
        "none"
    } else if spf == "permerror" || dkim == "permerror" {
        "permerror"
    } else {
        "fail"
    };
    let policy = match d.dmarc_record() {
        Some(_) => d.policy().to_string(),
        None => "none".to_owned(),
    };
    let mut v = json!({
        "result": result, "domain": d.domain(), "policy": policy,
        "spf_aligned": spf, "dkim_aligned": dkim,
    });
    if result != "pass"
        && let Some(r) = dkim_reason
    {
        v["reason"] = json!(r);
    }
    v
}
