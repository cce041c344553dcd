//! The registrar (RFC 3261 10.3): digest-authenticated REGISTER, bindings of several contacts
//! per address-of-record with expiry, `Contact: *` removal, Call-ID/CSeq ordering, and the
//! failed-authentication limiter of [`crate::auth_limit`]. Sans-IO, in the house shape:
//!
//! - [`handle_register`](Registrar::handle_register) takes a REGISTER that the transaction
//!   layer delivered, with a token naming its server transaction (a
//!   [`TransactionId`] in the runtime, anything in tests);
//! - [`poll_output`](Registrar::poll_output) hands back the responses to send in those
//!   transactions (a failed authentication's answer is held back by the limiter's delay),
//!   binding changes, and failures and refusals to count and log;
//! - [`poll_timeout`](Registrar::poll_timeout) / [`handle_timeout`](Registrar::handle_timeout)
//!   release delayed answers, expire bindings and prune the limiter;
//! - [`bindings`](Registrar::bindings) is the location service: the contacts to ring in
//!   parallel for an address-of-record.
//!
//! [`handle_stateless`](Registrar::handle_stateless) lets the driver answer the REGISTERs that
//! need no state (the challenge, a blocked source's 403) before a transaction is made for
//! them, so a flood of those costs no memory.
//!
//! Accounts: the registrar holds [`Credentials`] keyed by realm and username
//! ([`set_credentials`](Registrar::set_credentials)); the runtime loads them from the store.
//! The realm of a request is the host of its To URI when that is a known realm, else
//! [`RegistrarConfig::default_realm`], else the only known realm, else the host itself (which
//! then has no accounts). The digest username must equal the user part of the To URI (RFC
//! 3261 10.3 step 6). Unknown users are challenged like known ones and fail like a wrong
//! password, so the answers do not reveal which users exist.
//!
//! Answers: no Authorization for our realm → 401 with one challenge per algorithm; a right
//! password on an old nonce → 401 `stale=true`; a wrong one → 403 (counted, maybe delayed);
//! blocked → 403 at once; `Contact: *` without `Expires: 0` or with other contacts → 400;
//! an expiry below the minimum → 423 with Min-Expires; an out-of-order CSeq for a known
//! Call-ID → 500 and nothing changes (updates are all-or-nothing); success → 200 listing every
//! current binding with its remaining `expires`. Bindings live in memory: phones refresh them
//! within their expiry, so a restart heals itself within one registration interval.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use switchboard_model::MonoTime;

use crate::auth_limit::{Admission, AuthLimiter, BlockScope, LimitConfig};
use crate::digest::{Credentials, DigestConfig, DigestResponse, DigestServer, Verification};
use crate::transaction::{Peer, TransactionId};
use crate::{
    Contacts, HeaderName, Host, NameAddr, Rejection, Request, Response, StatusCode, response_for,
};

/// Settings of a [`Registrar`].
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (423 below it, RFC 3261 10.3 step 7).
    pub min_expires: u32,
    /// Longest registration granted (longer requests are shortened).
    pub max_expires: u32,
    /// Registration time when the request names none.
    pub default_expires: u32,
    /// Most contacts per address-of-record; the least recently refreshed go first.
    pub max_contacts: usize,
    /// The realm for requests whose To host is not a known realm (an IP address, say).
    pub default_realm: Option<String>,
    /// Nonces and algorithms.
    pub digest: DigestConfig,
    /// Failed-authentication limits.
    pub limits: LimitConfig,
    /// Most answers held back at once; beyond it failures are answered at once.
    pub max_delayed: usize,
}

impl RegistrarConfig {
    /// Defaults around the nonce secret: 60 s minimum, 3600 s maximum and default expiry,
    /// 10 contacts per address, the default limits, 4096 delayed answers.
    pub fn new(secret: impl Into<Vec<u8>>) -> RegistrarConfig {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            default_realm: None,
            digest: DigestConfig::new(secret),
            limits: LimitConfig::default(),
            max_delayed: 4096,
        }
    }
}

/// An address-of-record: a user in a realm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor {
    /// The realm (the tenant's SIP domain).
    pub realm: String,
    /// The user (the digest username).
    pub user: String,
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sip:{}@{}", self.user, self.realm)
    }
}

/// One registered contact of an address-of-record.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact as registered, without its `expires` parameter (`q`, `+sip.instance` and
    /// the like are kept).
    pub contact: NameAddr,
    /// When it lapses.
    pub expires_at: MonoTime,
    /// Call-ID of the REGISTER that last wrote it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Where that REGISTER came from: the flow to reach a phone behind NAT.
    pub source: Peer,
    /// When it was last written.
    pub updated_at: MonoTime,
    /// User-Agent of the phone, if it said.
    pub user_agent: Option<String>,
}

impl Binding {
    /// Seconds left at `now`, rounded up.
    pub fn remaining_secs(&self, now: MonoTime) -> u64 {
        self.expires_at
            .saturating_since(now)
            .as_millis()
            .div_ceil(1000) as u64
    }
}

/// What the driver must do or know.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<T> {
    /// Send `response` in the transaction named by `token`.
    Respond {
        /// The token given to [`Registrar::handle_register`].
        token: T,
        /// The response.
        response: Response,
    },
    /// The bindings of `aor` changed (registered, refreshed, removed or expired); `bindings`
    /// is the whole current list.
    BindingsChanged {
        /// The address-of-record.
        aor: Aor,
        /// Its current bindings.
        bindings: Vec<Binding>,
    },
    /// An authentication failed (count it; log the blocks).
    AuthFailed {
        /// The digest username tried.
        username: String,
        /// The realm.
        realm: String,
        /// The source address.
        source: IpAddr,
        /// Why it failed.
        reason: String,
        /// Failures of this source within the window.
        source_failures: u32,
        /// How long the answer is held back.
        delay: Duration,
        /// Blocks this failure started, with their end.
        blocked: Vec<(BlockScope, MonoTime)>,
    },
    /// A request was refused because of a block.
    Refused {
        /// The blocked source or user.
        scope: BlockScope,
        /// The source address of the request.
        source: IpAddr,
    },
}

#[derive(Debug, Default)]
struct AorEntry {
    bindings: Vec<Binding>,
    /// The earliest expiry, as scheduled in `Registrar::expiries`.
    scheduled: Option<MonoTime>,
}

/// Registrar state; see the module docs.
#[derive(Debug)]
pub struct Registrar<T = TransactionId> {
    config: RegistrarConfig,
    digest: DigestServer,
    limiter: AuthLimiter,
    /// (lowercased realm, username) → credentials.
    accounts: HashMap<(String, String), Credentials>,
    /// lowercased realm → (realm as configured, accounts in it).
    realms: BTreeMap<String, (String, usize)>,
    aors: HashMap<Aor, AorEntry>,
    expiries: BTreeSet<(MonoTime, Aor)>,
    delayed: BTreeMap<(MonoTime, u64), (T, Response)>,
    delayed_serial: u64,
    housekeeping: Option<MonoTime>,
    outputs: VecDeque<Output<T>>,
}

/// How often expired nonce-counts and limiter entries are pruned.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

enum Outcome {
    Reply(Response),
    Delayed(Response, Duration),
}

impl<T: Clone + fmt::Debug> Registrar<T> {
    /// An empty registrar.
    pub fn new(config: RegistrarConfig) -> Registrar<T> {
        Registrar {
            digest: DigestServer::new(config.digest.clone()),
            limiter: AuthLimiter::new(config.limits.clone()),
            config,
            accounts: HashMap::new(),
            realms: BTreeMap::new(),
            aors: HashMap::new(),
            expiries: BTreeSet::new(),
            delayed: BTreeMap::new(),
            delayed_serial: 0,
            housekeeping: None,
            outputs: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The failed-authentication limiter (for its counters).
    pub fn limiter(&self) -> &AuthLimiter {
        &self.limiter
    }

    /// Adds or replaces the account `credentials.username` in `credentials.realm`.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        let key = (
            credentials.realm.to_ascii_lowercase(),
            credentials.username.clone(),
        );
        let realm = credentials.realm.clone();
        if self.accounts.insert(key.clone(), credentials).is_none() {
            self.realms.entry(key.0).or_insert_with(|| (realm, 0)).1 += 1;
        }
    }

    /// Removes an account and its bindings (they can no longer be refreshed anyway).
    pub fn remove_credentials(&mut self, realm: &str, username: &str) {
        let key = (realm.to_ascii_lowercase(), username.to_string());
        let Some(creds) = self.accounts.remove(&key) else {
            return;
        };
        if let Some(r) = self.realms.get_mut(&key.0) {
            r.1 -= 1;
            if r.1 == 0 {
                self.realms.remove(&key.0);
            }
        }
        let aor = Aor {
            realm: creds.realm,
            user: creds.username,
        };
        if self.aors.contains_key(&aor) {
            self.commit(aor, Vec::new());
        }
    }

    /// Replaces every account by `all` (a reload from the store); bindings of accounts that
    /// are gone are removed.
    pub fn replace_credentials(&mut self, all: impl IntoIterator<Item = Credentials>) {
        let old: Vec<(String, String)> = self.accounts.keys().cloned().collect();
        let mut fresh = HashMap::new();
        for c in all {
            fresh.insert((c.realm.to_ascii_lowercase(), c.username.clone()), c);
        }
        for key in old {
            if !fresh.contains_key(&key)
                && let Some(c) = self.accounts.get(&key)
            {
                let (realm, user) = (c.realm.clone(), c.username.clone());
                self.remove_credentials(&realm, &user);
            }
        }
        for c in fresh.into_values() {
            self.set_credentials(c);
        }
    }

    /// Number of accounts.
    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// The realm a request for `host` belongs to.
    fn realm_for(&self, host: &Host) -> String {
        if let Host::Domain(d) = host
            && let Some((realm, _)) = self.realms.get(&d.to_ascii_lowercase())
        {
            return realm.clone();
        }
        if let Some(r) = &self.config.default_realm {
            return r.clone();
        }
        if self.realms.len() == 1
            && let Some((realm, _)) = self.realms.values().next()
        {
            return realm.clone();
        }
        host.to_string()
    }

    /// The live bindings of `aor` (the contacts to ring, in parallel), soonest-expiring last.
    pub fn bindings(&self, now: MonoTime, aor: &Aor) -> Vec<&Binding> {
        let mut list: Vec<&Binding> = self
            .aors
            .get(aor)
            .map(|e| e.bindings.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default();
        list.sort_by_key(|b| Reverse(b.expires_at));
        list
    }

    /// Number of bindings held (all addresses-of-record).
    pub fn binding_count(&self) -> usize {
        self.aors.values().map(|e| e.bindings.len()).sum()
    }

    /// The next output, `None` when there is nothing left.
    pub fn poll_output(&mut self) -> Option<Output<T>> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        [
            self.delayed.keys().next().map(|k| k.0),
            self.expiries.first().map(|e| e.0),
            self.housekeeping,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Releases delayed answers, expires bindings and prunes old state, as of `now`.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (token, response) = entry.remove();
            self.outputs.push_back(Output::Respond { token, response });
        }
        while let Some((at, aor)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.remove(&(at, aor.clone()));
            let live = self
                .aors
                .get_mut(&aor)
                .map(|e| {
                    e.scheduled = None;
                    e.bindings
                        .iter()
                        .filter(|b| b.expires_at > now)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            self.commit(aor, live);
        }
        if self.housekeeping.is_some_and(|h| h <= now) {
            self.limiter.handle_timeout(now);
            self.digest.handle_timeout(now);
            self.housekeeping = None;
            self.schedule_housekeeping(now);
        }
    }

    fn schedule_housekeeping(&mut self, now: MonoTime) {
        if self.housekeeping.is_none()
            && (!self.limiter.is_idle() || self.digest.tracked_nonces() > 0)
        {
            self.housekeeping = Some(now + HOUSEKEEPING);
        }
    }

    /// The answer to a REGISTER that needs no state, to send without a transaction (RFC 3261
    /// 8.2.7 allows a stateless UAS): 403 for a blocked source (counted and reported as
    /// [`Output::Refused`]) and the 401 challenge for a request without credentials for our
    /// realm. `None`: pass the request on to [`handle_register`](Self::handle_register). A
    /// flood of unauthenticated or blocked REGISTERs then costs no memory at all.
    pub fn handle_stateless(
        &mut self,
        now: MonoTime,
        request: &Request,
        source: IpAddr,
    ) -> Option<Response> {
        if let Admission::Blocked { scope, .. } = self.limiter.check(now, source, None) {
            self.outputs.push_back(Output::Refused { scope, source });
            return Some(reply(
                request,
                StatusCode::FORBIDDEN,
                "Forbidden (too many failed authentications; try again later)",
            ));
        }
        let (_, realm) = self.address_of_record(request).ok()?;
        let has_answer = request
            .headers
            .authorization()
            .unwrap_or_default()
            .iter()
            .any(|a| a.is_digest() && a.param("realm").is_some_and(|r| r == realm));
        (!has_answer).then(|| self.challenge(now, request, &realm, false))
    }

    /// The user of the To URI and the realm of the request (RFC 3261 10.3 step 5), or the
    /// response refusing it.
    fn address_of_record(&self, req: &Request) -> Result<(String, String), Response> {
        let to = req
            .headers
            .to()
            .map_err(|e| reply(req, StatusCode::BAD_REQUEST, &format!("Bad Request ({e})")))?;
        let (host, user) = to
            .uri
            .as_sip()
            .and_then(|u| {
                let user = u.user_decoded()?;
                Some((u.host.clone(), String::from_utf8(user).ok()?))
            })
            .ok_or_else(|| {
                reply(
                    req,
                    StatusCode::NOT_FOUND,
                    "Not Found (the To URI must be sip:user@domain)",
                )
            })?;
        Ok((user, self.realm_for(&host)))
    }

    /// Handles a REGISTER received from `peer`; the answer comes out of
    /// [`poll_output`](Self::poll_output) as [`Output::Respond`] with `token`, now or after
    /// the limiter's delay.
    pub fn handle_register(&mut self, now: MonoTime, token: T, request: &Request, peer: &Peer) {
        let outcome = self.register(now, request, peer);
        self.schedule_housekeeping(now);
        match outcome {
            Outcome::Reply(response) => self.outputs.push_back(Output::Respond { token, response }),
            Outcome::Delayed(response, delay) => {
                if delay.is_zero() || self.delayed.len() >= self.config.max_delayed {
                    self.outputs.push_back(Output::Respond { token, response });
                } else {
                    self.delayed_serial += 1;
                    self.delayed
                        .insert((now + delay, self.delayed_serial), (token, response));
                }
            }
        }
    }

    fn register(&mut self, now: MonoTime, req: &Request, peer: &Peer) -> Outcome {
        use Outcome::Reply;
        let source = peer.addr.ip();
        // RFC 3261 10.3 step 5: the address-of-record is the To URI; it needs a user.
        let (user, realm) = match self.address_of_record(req) {
            Ok(aor) => aor,
            Err(response) => return Reply(response),
        };

        // RFC 3261 10.3 step 4 and 22.3: authenticate.
        let mut answer = None;
        for auth in req.headers.authorization().unwrap_or_default() {
            match DigestResponse::from_auth(&auth) {
                Ok(a) if a.realm == realm => {
                    answer = Some(a);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    return Reply(reply(
                        req,
                        StatusCode::BAD_REQUEST,
                        &format!("Bad Request (Authorization: {e})"),
                    ));
                }
            }
        }
        let Some(answer) = answer else {
            return Reply(self.challenge(now, req, &realm, false));
        };
        if let Admission::Blocked { scope, .. } =
            self.limiter.check(now, source, Some(&answer.username))
        {
            self.outputs.push_back(Output::Refused { scope, source });
            return Reply(reply(
                req,
                StatusCode::FORBIDDEN,
                "Forbidden (too many failed authentications; try again later)",
            ));
        }
        let key = (realm.to_ascii_lowercase(), answer.username.clone());
        let verification = match self.accounts.get(&key) {
            Some(creds) => self
                .digest
                .verify(now, &req.method, &req.uri, &answer, creds),
            None => Verification::Refused(crate::digest::Refusal::WrongResponse),
        };
        match verification {
            Verification::Valid => {}
            Verification::Stale => return Reply(self.challenge(now, req, &realm, true)),
            Verification::Refused(refusal) => {
                let penalty = self.limiter.record_failure(now, source, &answer.username);
                self.outputs.push_back(Output::AuthFailed {
                    username: answer.username.clone(),
                    realm: realm.clone(),
                    source,
                    reason: refusal.to_string(),
                    source_failures: penalty.source_failures,
                    delay: penalty.delay,
                    blocked: penalty.blocked.clone(),
                });
                return Outcome::Delayed(
                    reply(
                        req,
                        StatusCode::FORBIDDEN,
                        "Forbidden (authentication failed)",
                    ),
                    penalty.delay,
                );
            }
        }
        self.limiter.record_success(now, source, &answer.username);
        // RFC 3261 10.3 step 6: the authenticated user may only touch its own bindings.
        if answer.username != user {
            return Reply(reply(
                req,
                StatusCode::FORBIDDEN,
                "Forbidden (this user may not register that address)",
            ));
        }
        let aor = Aor { realm, user };
        Reply(self.update_bindings(now, req, peer, aor))
    }

    fn challenge(&mut self, now: MonoTime, req: &Request, realm: &str, stale: bool) -> Response {
        let mut r = reply(req, StatusCode::UNAUTHORIZED, "Unauthorized");
        for c in self.digest.challenge(now, realm, stale) {
            r.headers.push(HeaderName::WWW_AUTHENTICATE, c.to_string());
        }
        r
    }

    /// RFC 3261 10.3 steps 7 and 8.
    fn update_bindings(&mut self, now: MonoTime, req: &Request, peer: &Peer, aor: Aor) -> Response {
        let h = &req.headers;
        let bad = |why: &str| {
            reply(
                req,
                StatusCode::BAD_REQUEST,
                &format!("Bad Request ({why})"),
            )
        };
        let (call_id, cseq) = match (h.call_id(), h.cseq()) {
            (Ok(c), Ok(s)) => (c.to_string(), s.seq),
            _ => return bad("Call-ID and CSeq are required"),
        };
        let contacts = match h.contact() {
            Ok(c) => c,
            Err(e) => return bad(&e.to_string()),
        };
        let header_expires = h.expires().ok().flatten();
        let current: Vec<Binding> = self
            .aors
            .get(&aor)
            .map(|e| {
                e.bindings
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let out_of_order = || {
            reply(
                req,
                StatusCode::SERVER_INTERNAL_ERROR,
                "Server Internal Error (CSeq not above the last one of this Call-ID)",
            )
        };
        let next = match contacts {
            // A query: list the bindings (RFC 3261 10.2.4).
            None => return self.ok(now, req, &current),
            Some(Contacts::Wildcard) => {
                if header_expires != Some(0) {
                    return bad("Contact: * needs Expires: 0");
                }
                // Remove every binding, unless one of this Call-ID is newer (RFC 3261 10.3
                // step 6 of the wildcard case).
                if current
                    .iter()
                    .any(|b| b.call_id == call_id && cseq <= b.cseq)
                {
                    return out_of_order();
                }
                Vec::new()
            }
            Some(Contacts::List(list)) => {
                let mut next = current.clone();
                let user_agent = h.get(&HeaderName::new("User-Agent")).map(str::to_string);
                let mut expiries = Vec::with_capacity(list.len());
                for c in &list {
                    let requested = c
                        .param("expires")
                        .and_then(|p| p.value.as_deref())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|v| v.min(u64::from(u32::MAX)) as u32)
                        .or(header_expires)
                        .unwrap_or(self.config.default_expires);
                    if requested != 0 && requested < self.config.min_expires {
                        let mut r =
                            reply(req, StatusCode::INTERVAL_TOO_BRIEF, "Interval Too Brief");
                        r.headers
                            .push("Min-Expires", self.config.min_expires.to_string());
                        return r;
                    }
                    expiries.push(requested.min(self.config.max_expires));
                }
                if list.len() > self.config.max_contacts {
                    return reply(req, StatusCode::FORBIDDEN, "Forbidden (too many contacts)");
                }
                for (c, expires) in list.into_iter().zip(expiries) {
                    let existing = next.iter().position(|b| b.contact.uri == c.uri);
                    if let Some(i) = existing {
                        if next[i].call_id == call_id && cseq <= next[i].cseq {
                            return out_of_order();
                        }
                        next.remove(i);
                    }
                    if expires == 0 {
                        continue;
                    }
                    let mut contact = c;
                    contact
                        .params
                        .retain(|p| !p.name.eq_ignore_ascii_case("expires"));
                    next.push(Binding {
                        contact,
                        expires_at: now + Duration::from_secs(u64::from(expires)),
                        call_id: call_id.clone(),
                        cseq,
                        source: peer.clone(),
                        updated_at: now,
                        user_agent: user_agent.clone(),
                    });
                }
                if next.len() > self.config.max_contacts {
                    next.sort_by_key(|b| Reverse(b.updated_at));
                    next.truncate(self.config.max_contacts);
                }
                next
            }
        };
        let response = self.ok(now, req, &next);
        self.commit(aor, next);
        response
    }

    fn ok(&self, now: MonoTime, req: &Request, bindings: &[Binding]) -> Response {
        let mut r = reply(req, StatusCode::OK, "OK");
        for b in bindings {
            r.headers.push(
                HeaderName::CONTACT,
                format!("{};expires={}", b.contact, b.remaining_secs(now)),
            );
        }
        r
    }

    /// Makes `bindings` the list of `aor`, reschedules its expiry and reports the change.
    fn commit(&mut self, aor: Aor, bindings: Vec<Binding>) {
        let old = self.aors.remove(&aor).unwrap_or_default();
        if let Some(at) = old.scheduled {
            self.expiries.remove(&(at, aor.clone()));
        }
        let changed = old.bindings != bindings;
        if !bindings.is_empty() {
            let at = bindings
                .iter()
                .map(|b| b.expires_at)
                .min()
                .expect("not empty");
            self.expiries.insert((at, aor.clone()));
            self.aors.insert(
                aor.clone(),
                AorEntry {
                    bindings: bindings.clone(),
                    scheduled: Some(at),
                },
            );
        }
        if changed {
            self.outputs
                .push_back(Output::BindingsChanged { aor, bindings });
        }
    }
}

/// A response to `req` with a To tag (derived from the request, so retransmissions get the
/// same one; RFC 3261 8.2.6.2).
fn reply(req: &Request, status: StatusCode, reason: &str) -> Response {
    response_for(req, &Rejection::new(status, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Challenge;
    use crate::{Auth, Method, Transport, parse};

    const REALM: &str = "demo.switchboard.local";

    fn peer(ip: &str) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: format!("{ip}:5062").parse().unwrap(),
        }
    }

    fn registrar() -> Registrar<u32> {
        let mut r = Registrar::new(RegistrarConfig::new(b"secret secret secret".to_vec()));
        r.set_credentials(Credentials::from_password("agent1", REALM, "agent"));
        r.set_credentials(Credentials::from_password("agent2", REALM, "agent"));
        r
    }

    fn register(user: &str, call_id: &str, cseq: u32, extra: &str) -> Request {
        let text = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK{call_id}{cseq}\r\n\
             From: <sip:{user}@{REALM}>;tag=f1\r\n\
             To: <sip:{user}@{REALM}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes())
            .expect("parses")
            .as_request()
            .expect("request")
            .clone()
    }

    fn respond(r: &mut Registrar<u32>, now: MonoTime, req: &Request, from: &Peer) -> Response {
        r.handle_register(now, 7, req, from);
        let mut response = None;
        while let Some(o) = r.poll_output() {
            if let Output::Respond {
                token,
                response: resp,
            } = o
            {
                assert_eq!(token, 7);
                response = Some(resp);
            }
        }
        response.expect("an immediate response")
    }

    /// Registers with the challenge flow; returns the 200.
    #[allow(clippy::too_many_arguments)] // a test helper: every argument is a test's knob
    fn authed(
        r: &mut Registrar<u32>,
        now: MonoTime,
        user: &str,
        password: &str,
        call_id: &str,
        cseq: u32,
        extra: &str,
        from: &Peer,
    ) -> Response {
        let first = respond(r, now, &register(user, call_id, cseq, extra), from);
        assert_eq!(first.status, StatusCode::UNAUTHORIZED, "{first:?}");
        let challenge: Auth = first
            .headers
            .www_authenticate()
            .unwrap()
            .into_iter()
            .find(|a| a.param("algorithm").as_deref() == Some("MD5"))
            .unwrap();
        let auth = Challenge::from_auth(&challenge).unwrap().authorize(
            user,
            password,
            &Method::Register,
            &format!("sip:{REALM}"),
            "abc",
            1,
        );
        let second = register(
            user,
            call_id,
            cseq + 1,
            &format!("{extra}Authorization: {auth}\r\n"),
        );
        respond(r, now, &second, from)
    }

    fn contacts(resp: &Response) -> Vec<String> {
        resp.headers
            .get_all(&HeaderName::CONTACT)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn register_with_two_contacts_then_expire_one() {
        let mut r = registrar();
        let p = peer("192.0.2.1");
        let t0 = MonoTime::from_secs(100);
        let ok = authed(
            &mut r,
            t0,
            "agent1",
            "agent",
            "c1",
            1,
            "Contact: <sip:agent1@192.0.2.1:5062>;expires=120, <sip:agent1@192.0.2.9>\r\nExpires: 600\r\n",
            &p,
        );
        assert_eq!(ok.status, StatusCode::OK);
        assert!(ok.headers.to().unwrap().tag().is_some());
        assert_eq!(
            contacts(&ok),
            vec![
                "<sip:agent1@192.0.2.1:5062>;expires=120",
                "<sip:agent1@192.0.2.9>;expires=600"
            ]
        );
        let aor = Aor {
            realm: REALM.into(),
            user: "agent1".into(),
        };
        assert_eq!(r.bindings(t0, &aor).len(), 2);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        // Virtual time: the first contact lapses at 120 s.
        let t1 = t0 + Duration::from_secs(120);
        r.handle_timeout(t1);
        let changes: Vec<_> = std::iter::from_fn(|| r.poll_output()).collect();
        assert!(
            matches!(&changes[..], [Output::BindingsChanged { bindings, .. }] if bindings.len() == 1)
        );
        assert_eq!(r.bindings(t1, &aor).len(), 1);
        assert_eq!(r.binding_count(), 1);
        let t2 = t0 + Duration::from_secs(600);
        while let Some(at) = r.poll_timeout().filter(|at| *at < t2) {
            r.handle_timeout(at);
            assert_eq!(r.binding_count(), 1, "still there at {at:?}");
        }
        assert_eq!(r.poll_timeout(), Some(t2));
        r.handle_timeout(t2);
        assert_eq!(r.binding_count(), 0);
        assert!(r.bindings(t2, &aor).is_empty());
    }

    #[test]
    fn expiry_rules_and_wildcard() {
        let mut r = registrar();
        let p = peer("192.0.2.1");
        let now = MonoTime::from_secs(10);
        let brief = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "c2",
            1,
            "Contact: <sip:a@192.0.2.1>;expires=30\r\n",
            &p,
        );
        assert_eq!(brief.status, StatusCode::INTERVAL_TOO_BRIEF);
        assert_eq!(
            brief.headers.get(&HeaderName::new("Min-Expires")),
            Some("60")
        );
        let long = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "c3",
            1,
            "Contact: <sip:a@192.0.2.1>\r\nExpires: 99999\r\n",
            &p,
        );
        assert_eq!(contacts(&long), vec!["<sip:a@192.0.2.1>;expires=3600"]);
        // Wildcard without Expires: 0 is a 400; with it, everything goes.
        let bad = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "c4",
            1,
            "Contact: *\r\n",
            &p,
        );
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let gone = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "c4",
            3,
            "Contact: *\r\nExpires: 0\r\n",
            &p,
        );
        assert_eq!(gone.status, StatusCode::OK);
        assert!(contacts(&gone).is_empty());
        assert_eq!(r.binding_count(), 0);
        // A query lists without changing.
        authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "c5",
            1,
            "Contact: <sip:b@192.0.2.1>\r\n",
            &p,
        );
        let q = authed(
            &mut r,
            now + Duration::from_secs(1),
            "agent1",
            "agent",
            "c6",
            1,
            "",
            &p,
        );
        assert_eq!(contacts(&q), vec!["<sip:b@192.0.2.1>;expires=3599"]);
    }

    #[test]
    fn call_id_and_cseq_ordering() {
        let mut r = registrar();
        let p = peer("192.0.2.1");
        let now = MonoTime::from_secs(10);
        authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "same",
            10,
            "Contact: <sip:a@192.0.2.1>\r\n",
            &p,
        );
        // CSeq 11 was used by the authenticated request; 5 with the same Call-ID is stale.
        let old = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "same",
            4,
            "Contact: <sip:a@192.0.2.1>;expires=0\r\n",
            &p,
        );
        assert_eq!(old.status, StatusCode::SERVER_INTERNAL_ERROR);
        assert_eq!(r.binding_count(), 1, "nothing changed");
        // Another Call-ID may remove it whatever its CSeq.
        let other = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "other",
            1,
            "Contact: <sip:a@192.0.2.1>;expires=0\r\n",
            &p,
        );
        assert_eq!(other.status, StatusCode::OK);
        assert_eq!(r.binding_count(), 0);
    }

    #[test]
    fn authentication_outcomes() {
        let mut r = registrar();
        let p = peer("192.0.2.1");
        let now = MonoTime::from_secs(10);
        // The challenge needs no state; an answer to it does.
        let plain = register("agent1", "st", 1, "");
        let stateless = r
            .handle_stateless(now, &plain, p.addr.ip())
            .expect("a challenge");
        assert_eq!(stateless.status, StatusCode::UNAUTHORIZED);
        let ch = Challenge::from_auth(&stateless.headers.www_authenticate().unwrap()[0]).unwrap();
        let auth = ch.authorize(
            "agent1",
            "agent",
            &Method::Register,
            &format!("sip:{REALM}"),
            "c",
            1,
        );
        let answered = register("agent1", "st", 2, &format!("Authorization: {auth}\r\n"));
        assert_eq!(r.handle_stateless(now, &answered, p.addr.ip()), None);
        // Wrong password: 403, counted.
        let wrong = authed(
            &mut r,
            now,
            "agent1",
            "nope",
            "w",
            1,
            "Contact: <sip:a@192.0.2.1>\r\n",
            &p,
        );
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert_eq!(r.limiter().stats().failures, 1);
        // Unknown user: same answers as a wrong password.
        let unknown = authed(
            &mut r,
            now,
            "ghost",
            "agent",
            "u",
            1,
            "Contact: <sip:a@192.0.2.1>\r\n",
            &p,
        );
        assert_eq!(unknown.status, StatusCode::FORBIDDEN);
        // agent2's credentials for agent1's address: 403, not counted as a failure.
        let first = respond(&mut r, now, &register("agent1", "x", 1, ""), &p);
        let ch = Challenge::from_auth(&first.headers.www_authenticate().unwrap()[1]).unwrap();
        let auth = ch.authorize(
            "agent2",
            "agent",
            &Method::Register,
            &format!("sip:{REALM}"),
            "c",
            1,
        );
        let other = respond(
            &mut r,
            now,
            &register("agent1", "x", 2, &format!("Authorization: {auth}\r\n")),
            &p,
        );
        assert_eq!(other.status, StatusCode::FORBIDDEN);
        assert_eq!(r.limiter().stats().failures, 2);
        // Right password, expired nonce: 401 stale=true.
        let later = now + Duration::from_secs(400);
        let auth = ch.authorize(
            "agent2",
            "agent",
            &Method::Register,
            &format!("sip:{REALM}"),
            "c",
            2,
        );
        let stale = respond(
            &mut r,
            later,
            &register("agent2", "y", 2, &format!("Authorization: {auth}\r\n")),
            &p,
        );
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
        assert!(
            stale
                .headers
                .www_authenticate()
                .unwrap()
                .iter()
                .all(|a| a.param("stale").as_deref() == Some("true"))
        );
    }

    #[test]
    fn a_scanner_is_slowed_then_blocked_while_others_register() {
        let mut r = registrar();
        let scanner = peer("203.0.113.9");
        let now = MonoTime::from_secs(10);
        let first = respond(&mut r, now, &register("agent1", "s", 1, ""), &scanner);
        let ch = Challenge::from_auth(&first.headers.www_authenticate().unwrap()[0]).unwrap();
        let mut immediate = 0;
        for i in 0..12u32 {
            let auth = ch.authorize(
                "agent1",
                &format!("guess{i}"),
                &Method::Register,
                &format!("sip:{REALM}"),
                "c",
                i + 1,
            );
            let req = register("agent1", "s", i + 2, &format!("Authorization: {auth}\r\n"));
            if let Some(resp) = r.handle_stateless(now, &req, scanner.addr.ip()) {
                assert_eq!(resp.status, StatusCode::FORBIDDEN);
                immediate += 1;
                continue;
            }
            r.handle_register(now, i, &req, &scanner);
        }
        assert_eq!(immediate, 2, "the 11th and 12th attempts meet the block");
        let outs: Vec<_> = std::iter::from_fn(|| r.poll_output()).collect();
        let now_answered = outs
            .iter()
            .filter(|o| matches!(o, Output::Respond { .. }))
            .count();
        assert_eq!(
            now_answered, 3,
            "the first three failures are answered at once"
        );
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::AuthFailed { blocked, .. } if !blocked.is_empty()))
        );
        assert_eq!(
            outs.iter()
                .filter(|o| matches!(o, Output::Refused { .. }))
                .count(),
            2
        );
        // Held-back answers come out in virtual time.
        let mut released = 0;
        while let Some(at) = r.poll_timeout() {
            if at > now + Duration::from_secs(5) {
                break;
            }
            r.handle_timeout(at);
            released += std::iter::from_fn(|| r.poll_output())
                .filter(|o| matches!(o, Output::Respond { .. }))
                .count();
        }
        assert_eq!(released, 7);
        // A phone elsewhere still registers.
        let ok = authed(
            &mut r,
            now,
            "agent1",
            "agent",
            "good",
            1,
            "Contact: <sip:agent1@192.0.2.50>\r\n",
            &peer("192.0.2.50"),
        );
        assert_eq!(ok.status, StatusCode::OK);
    }

    #[test]
    fn realm_from_to_host_or_default() {
        let mut r = registrar();
        // The only realm is used for an IP-addressed request.
        assert_eq!(r.realm_for(&"127.0.0.1".parse().unwrap()), REALM);
        r.set_credentials(Credentials::from_password("x", "other.example", "p"));
        assert_eq!(r.realm_for(&"127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(
            r.realm_for(&"OTHER.example".parse().unwrap()),
            "other.example"
        );
        r.remove_credentials("other.example", "x");
        assert_eq!(r.accounts(), 2);
        assert_eq!(r.realm_for(&"127.0.0.1".parse().unwrap()), REALM);
    }

    #[test]
    fn too_many_contacts_drop_the_stalest() {
        let mut r = registrar();
        let p = peer("192.0.2.1");
        for i in 0..12u64 {
            let now = MonoTime::from_secs(10 + i);
            let ok = authed(
                &mut r,
                now,
                "agent1",
                "agent",
                &format!("c{i}"),
                1,
                &format!("Contact: <sip:a{i}@192.0.2.1>\r\n"),
                &p,
            );
            assert_eq!(ok.status, StatusCode::OK);
        }
        assert_eq!(r.binding_count(), 10);
        let aor = Aor {
            realm: REALM.into(),
            user: "agent1".into(),
        };
        let live = r.bindings(MonoTime::from_secs(30), &aor);
        assert!(
            live.iter()
                .all(|b| b.contact.uri.to_string() != "sip:a0@192.0.2.1")
        );
    }
}
