//! The B2BUA: a caller's leg and an agent's leg are separate dialogs, joined by Switchboard.
//! Sans-IO like the rest of the core: it reacts to transaction events and to what the driver
//! tells it about the interaction (queued, offered, accepted ...), and says what it needs from
//! the routing engine as [`CallNotice`]s. Unit-tested on virtual time below.
//!
//! The life of a call:
//! 1. A trunk (allowed source address) sends INVITE to one of its tenant's numbers (DIDs):
//!    `100 Trying` at once, then [`CallNotice::Incoming`]; the driver creates the voice
//!    interaction and calls [`SipCore::call_queued`]: the caller gets `180 Ringing` while it
//!    waits (media comes with part 2).
//! 2. The router offers the interaction to an agent: [`SipCore::offer`] sends INVITE with the
//!    caller's session description to every registered contact of the agent at once.
//! 3. The first 2xx wins: it is acknowledged, the other contacts are cancelled, and
//!    [`CallNotice::Answered`] asks the engine to accept; [`SipCore::accepted`] then answers
//!    the caller `200 OK` with the agent's session description (or hangs the agent up when the
//!    offer was meanwhile withdrawn). When every contact failed (busy, declined, unreachable)
//!    [`CallNotice::OfferFailed`] sends the call back to the queue.
//! 4. BYE on either leg ends the other ([`CallNotice::Hangup`]); CANCEL or BYE from the caller
//!    before the answer abandons ([`CallNotice::CallerLeft`]). Re-INVITEs (hold, unhold) are
//!    passed to the other leg and their answers back. REFER from the agent's phone is a blind
//!    transfer ([`CallNotice::Refer`]) to a queue, an agent or a number.
//!
//! Calls out go through the tenant's outbound trunk ([`OutboundRoute`]); a 401/407 from the
//! provider is answered once with the trunk's digest credentials:
//! - a transfer out ([`SipCore::transfer_out`]) replaces the agent's leg with the provider's,
//!   which gets the caller's session description; its answer reaches the caller in a
//!   re-INVITE. The interaction has ended by then; the bridge lives until either side hangs up.
//! - click-to-dial ([`SipCore::dial`], RFC 3725 flow I) rings the agent's phones without a
//!   session description, sends the answering phone's offer to the provider and brings the
//!   provider's answer back in the ACK of the phone's 2xx. The provider is then the caller
//!   side of the call.
//!
//! Media anchoring (when [`Calls::media`] is set, as it is in the server): every call's RTP
//! goes through two ports of ours, one per leg. The caller's offer is answered with our own
//! session description ([`switchboard_media::sdp::answer`]), each agent phone is offered our
//! second port, and the driver's media task bridges the two ([`MediaOp`]). Re-INVITEs are
//! answered by us on their own leg (the other leg's session with us does not change): an agent
//! phone's hold (`sendonly`/`inactive`) makes the driver play music to the caller. A DID with a
//! flow is answered at once (the IVR runs on our media) and queued by the flow. Without
//! [`Calls::media`] (unit tests) session descriptions pass through untouched.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use switchboard_model::{AgentId, InteractionId, MonoTime, QueueId, TenantId};
use switchboard_sip::dialog::{AnswerRetransmit, Dialog, DialogId, RetransmitAction, via};
use switchboard_sip::registrar::Binding;
use switchboard_sip::transaction::{Peer, TransactionId};
use switchboard_sip::{
    HeaderName, Host, Message, Method, NameAddr, Param, Request, Response, SipUri, StatusCode,
    Transport, Uri,
};

use super::ua::{CoreOutput, SipCore};
use switchboard_media::g711::Law;
use switchboard_media::relay::{Leg, LegMedia};
use switchboard_media::sdp;

/// The payload type we offer telephone-event on.
const TELEPHONE_EVENT: u8 = 101;

/// Where calls' media is anchored: our address, and the RTP ports the driver has bound and
/// holds ready (it tops them up; the core only takes and gives back numbers, no sockets).
#[derive(Debug, Clone)]
pub struct MediaPorts {
    /// The address in our session descriptions.
    pub ip: IpAddr,
    ready: std::collections::VecDeque<u16>,
}

impl MediaPorts {
    /// No ports ready yet, on `ip`.
    pub fn new(ip: IpAddr) -> MediaPorts {
        MediaPorts {
            ip,
            ready: std::collections::VecDeque::new(),
        }
    }

    /// A port the driver has bound is ready for a call.
    pub fn add_ready(&mut self, port: u16) {
        self.ready.push_back(port);
    }

    /// How many ports are ready.
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    pub(super) fn take_pair(&mut self) -> Option<(u16, u16)> {
        if self.ready.len() < 2 {
            return None;
        }
        let a = self.ready.pop_front()?;
        let b = self.ready.pop_front()?;
        Some((a, b))
    }
}

/// What the driver does with a call's media task.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOp {
    /// Start the call's media on these two ready ports (caller's, agent's).
    Start {
        /// The caller leg's port.
        caller_port: u16,
        /// The agent leg's port.
        agent_port: u16,
    },
    /// A leg's negotiated media (again after a re-INVITE).
    Set(Leg, LegMedia),
    /// Music on hold for the caller (the agent's phone holds it, or it waits again after a
    /// transfer), or no more (the phone took the call back).
    Hold(bool),
    /// The agent is connected: stop what is played to the caller and bridge the legs.
    Bridged {
        /// The interaction (for the whisper and the IVR).
        interaction: Option<InteractionId>,
    },
    /// The caller pressed a key, told in a SIP INFO (`application/dtmf-relay`).
    Digit(char),
    /// The call is over: stop the task (its ports are given back to the OS); the call's tenant
    /// and interaction, if it had one, for its quality report.
    Stop(Option<(TenantId, InteractionId)>),
}

/// The media side of one call.
#[derive(Debug, Clone)]
struct CallMedia {
    caller_port: u16,
    agent_port: u16,
    /// Our answer to the caller's offer (sent with the caller's 200).
    caller_answer: Vec<u8>,
    /// The caller's codec, offered first to agents.
    caller_law: Law,
    session: u64,
    version: u64,
    /// Since when the agent's phone holds the caller.
    held_since: Option<MonoTime>,
    /// Hold time so far.
    held: std::time::Duration,
    /// Click-to-dial: our answer to the phone's offer, sent in the ACK of its 2xx.
    phone_answer: Option<Vec<u8>>,
    /// The caller's INVITE had no offer: our 200 offers, its ACK carries the answer.
    late_offer: bool,
}

fn leg_media(n: &sdp::Negotiated) -> LegMedia {
    LegMedia {
        law: n.law,
        payload_type: n.payload_type,
        telephone_event: n.telephone_event,
        remote: Some(n.remote),
        rtcp: n.rtcp,
        rtcp_mux: n.rtcp_mux,
    }
}

/// The digit of a SIP INFO body (`application/dtmf-relay`: `Signal=5`; `application/dtmf`:
/// `5`).
fn info_digit(req: &Request) -> Option<char> {
    let ctype = req
        .headers
        .get(&HeaderName::CONTENT_TYPE)?
        .to_ascii_lowercase();
    let body = std::str::from_utf8(&req.body).ok()?;
    let v = if ctype.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ctype.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = v.chars();
    let c = chars.next()?.to_ascii_uppercase();
    let digit = match (c, chars.next()) {
        ('1', Some('0')) => '*',
        ('1', Some('1')) => '#',
        (c, None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => c,
        _ => return None,
    };
    Some(digit)
}

/// One call inside the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// Which leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The caller (trunk) leg.
    Caller,
    /// The agent's phone leg.
    Agent,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Caller => Side::Agent,
            Side::Agent => Side::Caller,
        }
    }

    /// Label for events.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Caller => "caller",
            Side::Agent => "agent",
        }
    }
}

/// A trunk: a peer allowed to send calls for a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TrunkRoute {
    /// Tenant.
    pub tenant: TenantId,
    /// Trunk name, for logs and events.
    pub name: String,
    /// Source networks allowed (address, prefix length).
    pub allow: Vec<(IpAddr, u8)>,
    /// Whether its P-Asserted-Identity is believed.
    pub trust_identity: bool,
    /// Where its outbound calls go, if it sends any.
    pub outbound: Option<OutboundRoute>,
}

/// A trunk's provider for calls out.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRoute {
    /// The provider's address (resolved by the driver: the core does no DNS).
    pub peer: std::net::SocketAddr,
    /// The provider's URI; a call to `number` goes to `sip:number@` its host and port.
    pub uri: SipUri,
    /// Digest username and password for the provider's challenges (RFC 3261 22.2).
    pub credentials: Option<(String, switchboard_model::Sensitive<String>)>,
    /// The number presented (From), else the original caller's.
    pub caller_id: Option<String>,
}

/// A dialled number and where its calls go.
#[derive(Debug, Clone, PartialEq)]
pub struct DidRoute {
    /// Tenant.
    pub tenant: TenantId,
    /// The queue its calls wait in.
    pub queue: QueueId,
    /// The flow its calls run first (by name), answered by us.
    pub flow: Option<String>,
}

/// Trunks and numbers, as the store last said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    /// Trunks.
    pub trunks: Vec<TrunkRoute>,
    /// Numbers (digits as dialled, `+` kept) by tenant.
    pub dids: HashMap<(TenantId, String), DidRoute>,
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl Directory {
    /// The first trunk of `tenant` that sends calls out.
    pub fn outbound_for(&self, tenant: TenantId) -> Option<&OutboundRoute> {
        self.trunks
            .iter()
            .filter(|t| t.tenant == tenant)
            .find_map(|t| t.outbound.as_ref())
    }

    /// The trunks that allow `ip`.
    pub fn trunks_for(&self, ip: IpAddr) -> impl Iterator<Item = &TrunkRoute> {
        self.trunks
            .iter()
            .filter(move |t| t.allow.iter().any(|(n, p)| in_net(ip, *n, *p)))
    }
}

/// What the core needs the routing engine for.
#[derive(Debug, Clone, PartialEq)]
pub enum CallNotice {
    /// A new call for `queue`: create the interaction, then call `call_queued`.
    Incoming {
        /// The call.
        call: CallKey,
        /// Tenant.
        tenant: TenantId,
        /// Queue.
        queue: QueueId,
        /// The dialled number.
        did: String,
        /// The caller's number (user part of P-Asserted-Identity or From).
        caller: String,
        /// The caller's display name.
        display: Option<String>,
        /// The trunk's name.
        trunk: String,
        /// The flow to run first (the caller is answered and hears it).
        flow: Option<String>,
    },
    /// The agent's phone answered: accept the offer, then call `accepted`.
    Answered {
        /// The call (its media task plays the whisper).
        call: CallKey,
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// Agent.
        agent: AgentId,
    },
    /// No phone of the agent took the call.
    OfferFailed {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// Agent.
        agent: AgentId,
        /// The final status (486 busy, 603 declined, 408 no answer, 480 no phone).
        status: u16,
    },
    /// The caller hung up before an agent answered.
    CallerLeft {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
    },
    /// A connected call ended.
    Hangup {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// Who hung up.
        by: Side,
        /// How long the caller was held by the agent's phone.
        hold: std::time::Duration,
    },
    /// A leg of a call sent no RTP for the timeout: the call was hung up.
    MediaTimeout {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// The silent leg.
        leg: Side,
        /// Hold time of the call.
        hold: std::time::Duration,
    },
    /// The agent's phone put the caller on hold (`held`) or took the call back.
    Hold {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// On hold now.
        held: bool,
        /// Taking back: how long this hold lasted.
        lasted: std::time::Duration,
    },
    /// An interaction was offered whose call this process does not have.
    Lost {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
    },
    /// A click-to-dial's number was not reached (the provider's final status).
    DialFailed {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// The status.
        status: u16,
    },
    /// The agent's phone asked for a blind transfer.
    Refer {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// The agent.
        agent: AgentId,
        /// The target: the user part of Refer-To (a queue name, an agent, a number).
        target: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the interaction to be created.
    Starting,
    /// In the queue (ringback).
    Queued,
    /// Agent phones ringing.
    Ringing,
    /// An agent's phone answered; waiting for the engine's acceptance.
    Connecting,
    /// Talking.
    Connected,
    /// Transferred out: the provider is being called (the caller's interaction has ended).
    Dialing,
}

#[derive(Debug)]
struct Fork {
    tx: TransactionId,
    failed: Option<u16>,
}

#[derive(Debug)]
struct AgentLeg {
    agent: AgentId,
    forks: Vec<Fork>,
    /// The answered fork's dialog and where it is.
    dialog: Option<(Dialog, Peer)>,
    /// The answer's session description.
    answer: Option<(Vec<u8>, Option<String>)>,
}

#[derive(Debug)]
struct CallerLeg {
    /// The INVITE server transaction while it is unanswered.
    tx: Option<TransactionId>,
    invite: Request,
    peer: Peer,
    dialog: Dialog,
    retransmit: Option<AnswerRetransmit>,
}

/// A re-INVITE passed from one leg to the other.
#[derive(Debug)]
struct Relay {
    from: Side,
    server_tx: TransactionId,
    request: Request,
}

#[derive(Debug)]
struct Call {
    tenant: TenantId,
    interaction: Option<InteractionId>,
    phase: Phase,
    caller: CallerLeg,
    agent: Option<AgentLeg>,
    /// The caller left before the interaction existed.
    gone: bool,
    /// A re-INVITE on the caller leg that we originated (after a transfer) and its answer.
    pending_refresh: bool,
    /// The leg through the outbound trunk: a transfer out, or a click-to-dial.
    outbound: Option<ProviderLeg>,
    /// Anchored media.
    media: Option<CallMedia>,
    /// Answered by us at once: a flow runs before the queue.
    ivr: bool,
}

/// A call to the provider of an outbound trunk.
#[derive(Debug)]
struct ProviderLeg {
    route: OutboundRoute,
    /// The provider INVITE in flight (none while a click-to-dial still rings the agent).
    tx: Option<TransactionId>,
    /// A challenge was answered already: a second one ends the attempt.
    challenged: bool,
    /// Click-to-dial: the provider is the caller side of the call (its INVITE waits in
    /// `caller.invite` until the agent's phone answers).
    click_to_dial: bool,
    /// Click-to-dial: the CSeq of the agent phone's 2xx, acknowledged with the provider's
    /// answer once it comes (RFC 3725 flow I: the phone's 2xx carries the offer).
    agent_ack: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Fork(AgentId),
    /// The INVITE to the provider of a transfer out.
    Outbound,
    Relay,
    Refresh,
    Other,
}

/// Every call of the core.
#[derive(Debug, Default)]
pub struct Calls {
    next: u64,
    calls: HashMap<CallKey, Call>,
    by_interaction: HashMap<InteractionId, CallKey>,
    by_server_tx: HashMap<TransactionId, CallKey>,
    by_client_tx: HashMap<TransactionId, (CallKey, Purpose)>,
    by_dialog: HashMap<DialogId, (CallKey, Side)>,
    relays: HashMap<TransactionId, (CallKey, Relay)>,
    retransmits: BTreeSet<(MonoTime, CallKey)>,
    /// Every INVITE sent to an agent's phone while its transaction lives, so a late 2xx can
    /// still be acknowledged and hung up.
    fork_requests: HashMap<TransactionId, (Request, Peer)>,
    /// Offers that arrived before the interaction of their call was known (the engine's news
    /// and its answer travel different ways), with when they came.
    early_offers: HashMap<InteractionId, (MonoTime, EarlyOffer)>,
    /// Trunks and numbers.
    pub directory: Directory,
    /// Where media is anchored (`None`: session descriptions pass through).
    pub media: Option<MediaPorts>,
}

#[derive(Debug)]
struct EarlyOffer {
    tenant: TenantId,
    agent: AgentId,
    user: String,
    realm: String,
    contacts: Vec<Binding>,
}

/// How long an offer for an unknown interaction is kept for its call to show up.
const EARLY_OFFER_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl Calls {
    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub(super) fn poll_timeout(&self) -> Option<MonoTime> {
        let early = self
            .early_offers
            .values()
            .map(|(at, _)| *at + EARLY_OFFER_TTL)
            .min();
        [self.retransmits.first().map(|(at, _)| *at), early]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The user part of a URI, or its whole text for other schemes.
fn user_of(uri: &Uri) -> String {
    match uri {
        Uri::Sip(s) => s.user.clone().unwrap_or_default(),
        Uri::Tel(t) => t.digits(),
        other => other.to_string(),
    }
}

/// Who is calling: the first P-Asserted-Identity when the trunk is trusted (RFC 3325 9.1: a
/// proxy outside the trust domain may not assert identities, so the header is ignored from
/// others), else From.
fn caller_identity(req: &Request, trusted: bool) -> Option<NameAddr> {
    let asserted = trusted
        .then(|| req.headers.get(&HeaderName::new("P-Asserted-Identity")))
        .flatten()
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<NameAddr>().ok());
    asserted.or_else(|| req.headers.from().ok())
}

impl SipCore {
    fn alloc_call(&mut self) -> CallKey {
        self.calls.next += 1;
        CallKey(self.calls.next)
    }

    /// A new call with its caller side (indexed by interaction when it has one).
    fn add_call(
        &mut self,
        tenant: TenantId,
        interaction: Option<InteractionId>,
        phase: Phase,
        caller: CallerLeg,
    ) -> CallKey {
        let key = self.alloc_call();
        if let Some(i) = interaction {
            self.calls.by_interaction.insert(i, key);
        }
        self.calls.calls.insert(
            key,
            Call {
                tenant,
                interaction,
                phase,
                caller,
                agent: None,
                gone: false,
                pending_refresh: false,
                outbound: None,
                media: None,
                ivr: false,
            },
        );
        metrics::gauge!("switchboard_sip_calls_active").set(self.calls.len() as f64);
        key
    }

    /// A fresh token for tags and Call-IDs.
    pub(super) fn token(&mut self) -> String {
        self.transactions.new_branch()[7..].to_string()
    }

    fn our_host(&self) -> Host {
        match self.local.ip() {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }

    fn our_contact(&self, transport: &Transport) -> NameAddr {
        let mut uri = SipUri::new(self.our_host())
            .with_user("switchboard")
            .with_port(self.local.port());
        if transport.is_reliable() {
            uri = uri.with_param(Param::new(
                "transport",
                transport.to_string().to_lowercase(),
            ));
        }
        NameAddr::new(Uri::Sip(uri))
    }

    fn our_via(&mut self, transport: &Transport) -> switchboard_sip::Via {
        let branch = self.transactions.new_branch();
        via(
            transport.clone(),
            self.our_host(),
            self.local.port(),
            &branch,
        )
    }

    fn notice(&mut self, n: CallNotice) {
        self.outputs.push_back(CoreOutput::Call(n));
    }

    fn send_in(&mut self, now: MonoTime, id: TransactionId, response: Response) {
        let _ = self.transactions.send_response(now, id, response);
    }

    /// An INVITE without a To tag: a new call, if a trunk may send it.
    pub(super) fn on_new_invite(
        &mut self,
        now: MonoTime,
        id: TransactionId,
        req: Request,
        peer: Peer,
    ) {
        let tenants: Vec<(TenantId, (String, bool))> = self
            .calls
            .directory
            .trunks_for(peer.addr.ip())
            .map(|t| (t.tenant, (t.name.clone(), t.trust_identity)))
            .collect();
        if tenants.is_empty() {
            // Toll-fraud guard: nobody but a configured trunk starts a call.
            metrics::counter!("switchboard_sip_calls_refused_total", "reason" => "not_a_trunk")
                .increment(1);
            tracing::info!(source = %peer.addr, "INVITE from an address that is no trunk refused");
            let r = Response::for_request(&req, StatusCode::FORBIDDEN, "Forbidden");
            return self.reject_new(now, id, r);
        }
        let did = user_of(&req.uri);
        let route = tenants.iter().find_map(|(t, name)| {
            self.calls
                .directory
                .dids
                .get(&(*t, did.clone()))
                .map(|r| (r.clone(), name.clone()))
        });
        let Some((route, (trunk, trusted))) = route else {
            metrics::counter!("switchboard_sip_calls_refused_total", "reason" => "unknown_number")
                .increment(1);
            let r = Response::for_request(&req, StatusCode::NOT_FOUND, "Not Found");
            return self.reject_new(now, id, r);
        };
        let tag = self.token();
        let contact = self.our_contact(&peer.transport);
        let dialog = match Dialog::uas(&req, &tag, contact, 0) {
            Ok(d) => d,
            Err(e) => {
                let r = Response::for_request(
                    &req,
                    StatusCode::BAD_REQUEST,
                    format!("Bad Request ({e})"),
                );
                return self.reject_new(now, id, r);
            }
        };
        // Anchored media: our answer to the caller's offer, on two ports of ours.
        let mut media = None;
        if self.calls.media.is_some() {
            let offer = std::str::from_utf8(&req.body)
                .ok()
                .and_then(|t| sdp::parse(t).ok());
            let session = self.calls.next + 1;
            let negotiated = offer.as_ref().map(|o| {
                sdp::answer(
                    o,
                    &sdp::Local {
                        addr: std::net::SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0),
                        session_id: session,
                        version: 1,
                    },
                    &[Law::Ulaw, Law::Alaw],
                )
            });
            // No body: a late offer (RFC 3261 13.2.1): our 200 offers, the ACK answers.
            let late = req.body.is_empty();
            if !late && !matches!(negotiated, Some(Ok(_))) {
                metrics::counter!("switchboard_sip_calls_refused_total", "reason" => "no_codec")
                    .increment(1);
                let r = Response::for_request(
                    &req,
                    StatusCode::new(488).expect("488"),
                    "Not Acceptable Here (an SDP offer with PCMU or PCMA is needed)",
                );
                return self.reject_new(now, id, r);
            }
            let ports = self.calls.media.as_mut().and_then(MediaPorts::take_pair);
            let Some((caller_port, agent_port)) = ports else {
                metrics::counter!("switchboard_sip_calls_refused_total", "reason" => "no_media_port")
                    .increment(1);
                let r = Response::for_request(
                    &req,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable (no RTP port free)",
                );
                return self.reject_new(now, id, r);
            };
            let ip = self.calls.media.as_ref().map(|m| m.ip).expect("checked");
            let local = sdp::Local {
                addr: std::net::SocketAddr::new(ip, caller_port),
                session_id: session,
                version: 1,
            };
            let (text, law, caller_media) = if late {
                let offer = sdp::offer(
                    &local,
                    &[Law::Ulaw, Law::Alaw],
                    Some(TELEPHONE_EVENT),
                    sdp::Direction::SendRecv,
                );
                (offer, Law::Ulaw, None)
            } else {
                let (text, n) = sdp::answer(
                    offer.as_ref().expect("parsed"),
                    &local,
                    &[Law::Ulaw, Law::Alaw],
                )
                .expect("answered above");
                (text, n.law, Some(leg_media(&n)))
            };
            media = Some((
                CallMedia {
                    caller_port,
                    agent_port,
                    caller_answer: text.into_bytes(),
                    caller_law: law,
                    session,
                    version: 1,
                    held_since: None,
                    held: std::time::Duration::ZERO,
                    phone_answer: None,
                    late_offer: late,
                },
                caller_media,
            ));
        }
        let trying = Response::for_request(&req, StatusCode::TRYING, "Trying");
        self.send_in(now, id, trying);
        let identity = caller_identity(&req, trusted);
        let caller = identity
            .as_ref()
            .map(|a| user_of(&a.uri))
            .unwrap_or_default();
        let display = identity.and_then(|a| a.display_name);
        let dialog_id = dialog.id.clone();
        let leg = CallerLeg {
            tx: Some(id),
            invite: req,
            peer,
            dialog,
            retransmit: None,
        };
        let key = self.add_call(route.tenant, None, Phase::Starting, leg);
        self.calls.by_server_tx.insert(id, key);
        self.calls.by_dialog.insert(dialog_id, (key, Side::Caller));
        metrics::counter!("switchboard_sip_calls_total").increment(1);
        let anchored = media.is_some();
        if let Some((m, caller_media)) = media {
            let (caller_port, agent_port) = (m.caller_port, m.agent_port);
            if let Some(c) = self.calls.calls.get_mut(&key) {
                c.media = Some(m);
                c.ivr = route.flow.is_some();
            }
            self.media_op(
                key,
                MediaOp::Start {
                    caller_port,
                    agent_port,
                },
            );
            if let Some(m) = caller_media {
                self.media_op(key, MediaOp::Set(Leg::Caller, m));
            }
        }
        self.notice(CallNotice::Incoming {
            call: key,
            tenant: route.tenant,
            queue: route.queue,
            did,
            caller,
            display,
            trunk,
            // A flow needs our media (prompts, digits).
            flow: route.flow.filter(|_| anchored),
        });
    }

    fn media_op(&mut self, call: CallKey, op: MediaOp) {
        self.outputs.push_back(CoreOutput::Media { call, op });
    }

    /// Our session description for `leg` of a call: an offer from the leg's port (PCMU and
    /// PCMA, the caller's first, and telephone-event), with a new version.
    fn our_offer(&mut self, key: CallKey, leg: Leg, dir: sdp::Direction) -> Option<Vec<u8>> {
        let ip = self.calls.media.as_ref()?.ip;
        let m = self.calls.calls.get_mut(&key)?.media.as_mut()?;
        m.version += 1;
        let port = match leg {
            Leg::Caller => m.caller_port,
            Leg::Agent => m.agent_port,
        };
        let laws = match m.caller_law {
            Law::Ulaw => [Law::Ulaw, Law::Alaw],
            Law::Alaw => [Law::Alaw, Law::Ulaw],
        };
        let local = sdp::Local {
            addr: std::net::SocketAddr::new(ip, port),
            session_id: m.session,
            version: m.version,
        };
        Some(sdp::offer(&local, &laws, Some(TELEPHONE_EVENT), dir).into_bytes())
    }

    /// Our answer on `leg` to an offer from that leg, and what it negotiated.
    fn our_answer(
        &mut self,
        key: CallKey,
        leg: Leg,
        offer: &[u8],
    ) -> Option<(Vec<u8>, sdp::Negotiated)> {
        let ip = self.calls.media.as_ref()?.ip;
        let m = self.calls.calls.get_mut(&key)?.media.as_mut()?;
        let offer = sdp::parse(std::str::from_utf8(offer).ok()?).ok()?;
        m.version += 1;
        let port = match leg {
            Leg::Caller => m.caller_port,
            Leg::Agent => m.agent_port,
        };
        let local = sdp::Local {
            addr: std::net::SocketAddr::new(ip, port),
            session_id: m.session,
            version: m.version,
        };
        let (text, n) = sdp::answer(&offer, &local, &[Law::Ulaw, Law::Alaw]).ok()?;
        Some((text.into_bytes(), n))
    }

    /// The agent side's answer to our offer: the bridge learns the agent leg's media.
    fn take_agent_answer(&mut self, key: CallKey, body: &[u8]) {
        let n = std::str::from_utf8(body)
            .ok()
            .and_then(|t| sdp::parse(t).ok())
            .and_then(|s| sdp::accept_answer(&s).ok());
        match n {
            Some(n) => self.media_op(key, MediaOp::Set(Leg::Agent, leg_media(&n))),
            None => tracing::info!("the agent side's answer has no usable audio"),
        }
    }

    /// The call of an interaction, if this process holds it.
    pub fn call_of(&self, interaction: InteractionId) -> Option<CallKey> {
        self.calls.by_interaction.get(&interaction).copied()
    }

    /// The media task could not start (its ports were gone): the call is refused or ended.
    pub fn media_failed(&mut self, now: MonoTime, call: CallKey) {
        tracing::warn!("a call's media could not start; the call ends");
        if let Some(c) = self.calls.calls.get_mut(&call) {
            c.media = None;
        }
        self.media_timed_out(now, call, Leg::Caller);
    }

    /// A leg sent no RTP for `[voice] rtp_timeout_s`: the call is dead, both legs are hung up.
    /// The agent's leg of a held call is allowed to be silent.
    pub fn media_timed_out(&mut self, now: MonoTime, call: CallKey, leg: Leg) {
        let Some(c) = self.calls.calls.get(&call) else {
            return;
        };
        let held = c.media.as_ref().is_some_and(|m| m.held_since.is_some());
        if leg == Leg::Agent && held {
            return;
        }
        metrics::counter!("switchboard_media_timeouts_total").increment(1);
        if let Some(interaction) = c.interaction {
            let hold = self.hold_total(now, call);
            let tenant = c.tenant;
            self.notice(CallNotice::MediaTimeout {
                tenant,
                interaction,
                leg: match leg {
                    Leg::Caller => Side::Caller,
                    Leg::Agent => Side::Agent,
                },
                hold,
            });
        }
        self.end_call(now, call, None);
    }

    fn hold_total(&self, now: MonoTime, call: CallKey) -> std::time::Duration {
        self.calls
            .calls
            .get(&call)
            .and_then(|c| c.media.as_ref())
            .map(|m| {
                m.held
                    + m.held_since
                        .map(|t| now.saturating_since(t))
                        .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn reject_new(&mut self, now: MonoTime, id: TransactionId, mut r: Response) {
        if let Ok(mut to) = r.headers.to()
            && to.tag().is_none()
        {
            to.set_tag(self.token());
            r.headers.set(HeaderName::TO, to.to_string());
        }
        self.send_in(now, id, r);
    }

    /// The caller's response with our tag (and Contact on 1xx/2xx).
    fn caller_response(&self, call: &Call, status: StatusCode, reason: &str) -> Response {
        call.caller
            .dialog
            .response(&call.caller.invite, status, reason)
    }

    /// The interaction exists (or could not be made: `Err(status)` refuses the call).
    pub fn call_queued(
        &mut self,
        now: MonoTime,
        call: CallKey,
        result: Result<InteractionId, u16>,
    ) {
        let Some(c) = self.calls.calls.get_mut(&call) else {
            return;
        };
        match result {
            Ok(interaction) => {
                c.interaction = Some(interaction);
                self.calls.by_interaction.insert(interaction, call);
                if c.gone {
                    let tenant = c.tenant;
                    self.notice(CallNotice::CallerLeft {
                        tenant,
                        interaction,
                    });
                    self.forget(call);
                    return;
                }
                if c.phase == Phase::Starting {
                    c.phase = Phase::Queued;
                }
                if let Some((_, o)) = self.calls.early_offers.remove(&interaction) {
                    self.offer(
                        now,
                        o.tenant,
                        interaction,
                        o.agent,
                        &o.user,
                        &o.realm,
                        o.contacts,
                    );
                }
                let c = &self.calls.calls[&call];
                if c.ivr
                    && let Some(m) = &c.media
                {
                    // The flow speaks to the caller: answer now, with our media.
                    let body = m.caller_answer.clone();
                    return self.answer_caller(now, call, body, Some("application/sdp".into()));
                }
                let ringing = self.caller_response(c, StatusCode::RINGING, "Ringing");
                if let Some(tx) = self.calls.calls[&call].caller.tx {
                    self.send_in(now, tx, ringing);
                }
            }
            Err(status) => {
                let c = &self.calls.calls[&call];
                let code = StatusCode::new(status).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
                let r = self.caller_response(c, code, code.canonical_reason());
                if let Some(tx) = c.caller.tx {
                    self.send_in(now, tx, r);
                }
                self.forget(call);
            }
        }
    }

    /// The router offers the interaction to `agent`: ring its phones. No contact at all fails
    /// the offer at once (480).
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &mut self,
        now: MonoTime,
        tenant: TenantId,
        interaction: InteractionId,
        agent: AgentId,
        aor_user: &str,
        realm: &str,
        contacts: Vec<Binding>,
    ) {
        let Some(&key) = self.calls.by_interaction.get(&interaction) else {
            self.calls.early_offers.insert(
                interaction,
                (
                    now,
                    EarlyOffer {
                        tenant,
                        agent,
                        user: aor_user.to_string(),
                        realm: realm.to_string(),
                        contacts,
                    },
                ),
            );
            return;
        };
        let Some(c) = self.calls.calls.get(&key) else {
            return;
        };
        if contacts.is_empty() {
            self.notice(CallNotice::OfferFailed {
                tenant,
                interaction,
                agent,
                status: 480,
            });
            return;
        }
        let caller_from = c.caller.invite.headers.from().ok();
        let mut body = c.caller.invite.body.clone();
        let mut ctype = c
            .caller
            .invite
            .headers
            .get(&HeaderName::CONTENT_TYPE)
            .map(str::to_string);
        let click_to_dial = c.outbound.as_ref().is_some_and(|o| o.click_to_dial);
        if c.media.is_some() && !click_to_dial {
            // The agent's phone talks to our second port.
            body = self
                .our_offer(key, Leg::Agent, sdp::Direction::SendRecv)
                .unwrap_or_default();
            ctype = Some("application/sdp".into());
        }
        let call_id = format!("{}@switchboard", self.token());
        let from_tag = self.token();
        let mut forks = Vec::new();
        for b in contacts {
            let peer = b.source.clone();
            let mut req = Request::new(Method::Invite, b.contact.uri.clone());
            let v = self.our_via(&peer.transport);
            req.headers.push(HeaderName::VIA, v.to_string());
            req.headers.push(HeaderName::MAX_FORWARDS, "70");
            let mut from = NameAddr::new(Uri::Sip(
                SipUri::new(self.our_host())
                    .with_user(
                        caller_from
                            .as_ref()
                            .map(|f| user_of(&f.uri))
                            .filter(|u| !u.is_empty())
                            .unwrap_or_else(|| "anonymous".into()),
                    )
                    .with_port(self.local.port()),
            ));
            if let Some(name) = caller_from.as_ref().and_then(|f| f.display_name.clone()) {
                from = from.with_display_name(name);
            }
            from.set_tag(from_tag.clone());
            req.headers.push(HeaderName::FROM, from.to_string());
            let to: NameAddr = NameAddr::new(Uri::Sip(
                SipUri::new(Host::Domain(realm.to_string())).with_user(aor_user),
            ));
            req.headers.push(HeaderName::TO, to.to_string());
            req.headers.push(HeaderName::CALL_ID, call_id.clone());
            req.headers.push(HeaderName::CSEQ, "1 INVITE");
            req.headers.push(
                HeaderName::CONTACT,
                self.our_contact(&peer.transport).to_string(),
            );
            req.headers.push(
                HeaderName::new("X-Switchboard-Interaction"),
                interaction.to_string(),
            );
            if let Some(t) = &ctype {
                req.headers.push(HeaderName::CONTENT_TYPE, t.clone());
            }
            req.body = body.clone();
            match self
                .transactions
                .send_request(now, req.clone(), peer.clone())
            {
                Ok(tx) => {
                    self.calls
                        .by_client_tx
                        .insert(tx, (key, Purpose::Fork(agent)));
                    self.calls
                        .fork_requests
                        .insert(tx, (req.clone(), peer.clone()));
                    forks.push(Fork { tx, failed: None });
                }
                Err(e) => tracing::warn!(error = %e, "could not ring an agent's phone"),
            }
        }
        if forks.is_empty() {
            self.notice(CallNotice::OfferFailed {
                tenant,
                interaction,
                agent,
                status: 500,
            });
            return;
        }
        if let Some(c) = self.calls.calls.get_mut(&key) {
            c.phase = Phase::Ringing;
            c.agent = Some(AgentLeg {
                agent,
                forks,
                dialog: None,
                answer: None,
            });
        }
    }

    /// The offer ended without an answer (expired, revoked): stop ringing.
    pub fn offer_withdrawn(&mut self, now: MonoTime, interaction: InteractionId, agent: AgentId) {
        let Some(&key) = self.calls.by_interaction.get(&interaction) else {
            return;
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        if c.agent.as_ref().is_none_or(|a| a.agent != agent) {
            return;
        }
        if matches!(c.phase, Phase::Ringing) {
            c.phase = Phase::Queued;
            let leg = c.agent.take();
            self.cancel_forks(now, leg);
        }
    }

    fn cancel_forks(&mut self, now: MonoTime, leg: Option<AgentLeg>) {
        let Some(leg) = leg else { return };
        for f in leg.forks {
            if f.failed.is_none()
                && let Ok(c) = self.transactions.cancel(now, f.tx)
                && let Some(entry) = self.calls.by_client_tx.get(&f.tx).copied()
            {
                self.calls.by_client_tx.insert(c, (entry.0, Purpose::Other));
            }
        }
        if let Some((mut d, peer)) = leg.dialog {
            self.bye(now, &mut d, peer);
        }
    }

    fn bye(&mut self, now: MonoTime, dialog: &mut Dialog, peer: Peer) {
        let v = self.our_via(&peer.transport);
        let bye = dialog.request(Method::Bye, v);
        self.calls.by_dialog.remove(&dialog.id);
        if let Ok(tx) = self.transactions.send_request(now, bye, peer) {
            self.calls
                .by_client_tx
                .insert(tx, (CallKey(0), Purpose::Other));
        }
    }

    /// The engine's answer to [`CallNotice::Answered`].
    pub fn accepted(&mut self, now: MonoTime, interaction: InteractionId, ok: bool) {
        let Some(&key) = self.calls.by_interaction.get(&interaction) else {
            return;
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        if c.phase != Phase::Connecting {
            return;
        }
        let click_to_dial = c.outbound.as_ref().is_some_and(|o| o.click_to_dial);
        if !ok && click_to_dial {
            return self.outbound_failed(now, key, 480);
        }
        if !ok {
            c.phase = Phase::Queued;
            let leg = c.agent.take();
            self.cancel_forks(now, leg);
            return;
        }
        if click_to_dial {
            return self.dial_out(now, key);
        }
        c.phase = Phase::Connected;
        if let Some(m) = &c.media {
            // Anchored: the caller keeps its session with us (answered now, or before by the
            // flow or a transfer); the bridge joins the legs.
            let body = m.caller_answer.clone();
            let answered = c.caller.tx.is_none();
            self.media_op(
                key,
                MediaOp::Bridged {
                    interaction: Some(interaction),
                },
            );
            if answered {
                return;
            }
            return self.answer_caller(now, key, body, Some("application/sdp".into()));
        }
        let (body, ctype) = c
            .agent
            .as_ref()
            .and_then(|a| a.answer.clone())
            .unwrap_or_default();
        if c.caller.tx.is_none() {
            // Answered before (a transfer): refresh the caller's session instead.
            return self.refresh_caller(now, key, body, ctype);
        }
        self.answer_caller(now, key, body, ctype);
    }

    /// The caller's `200 OK` (retransmitted until its ACK).
    fn answer_caller(&mut self, now: MonoTime, key: CallKey, body: Vec<u8>, ctype: Option<String>) {
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        c.caller.dialog.confirm();
        let tx = c.caller.tx.take();
        let peer = c.caller.peer.clone();
        let mut ok_resp = c
            .caller
            .dialog
            .response(&c.caller.invite, StatusCode::OK, "OK");
        if let Some(t) = ctype {
            ok_resp.headers.push(HeaderName::CONTENT_TYPE, t);
        }
        ok_resp.body = body;
        let rt = AnswerRetransmit::new(now, peer, ok_resp.clone(), self.t1, self.t2);
        let at = rt.poll_timeout();
        c.caller.retransmit = Some(rt);
        self.calls.retransmits.insert((at, key));
        if let Some(tx) = tx {
            self.calls.by_server_tx.remove(&tx);
            self.send_in(now, tx, ok_resp);
        }
    }

    /// Sends the caller a re-INVITE with the new agent's session description.
    fn refresh_caller(
        &mut self,
        now: MonoTime,
        key: CallKey,
        body: Vec<u8>,
        ctype: Option<String>,
    ) {
        let transport = self.calls.calls[&key].caller.peer.transport.clone();
        let v = self.our_via(&transport);
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let mut req = c.caller.dialog.request(Method::Invite, v);
        if let Some(t) = ctype {
            req.headers.push(HeaderName::CONTENT_TYPE, t);
        }
        req.body = body;
        c.pending_refresh = true;
        let peer = c.caller.peer.clone();
        if let Ok(tx) = self.transactions.send_request(now, req, peer) {
            self.calls.by_client_tx.insert(tx, (key, Purpose::Refresh));
        }
    }

    /// The interaction went back to a queue (a transfer through the API): the agent's phone is
    /// hung up, the caller stays and waits for the next agent.
    pub fn requeued(&mut self, now: MonoTime, interaction: InteractionId) {
        let Some(&key) = self.calls.by_interaction.get(&interaction) else {
            return;
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        c.phase = Phase::Queued;
        let leg = c.agent.take();
        // An answered caller waits again with music (till the next agent is bridged).
        let music = c.media.is_some() && c.caller.tx.is_none();
        self.cancel_forks(now, leg);
        if music {
            self.media_op(key, MediaOp::Hold(true));
        }
    }

    /// The interaction ended elsewhere (an agent or supervisor ended it through the API): both
    /// legs are hung up.
    pub fn hang_up(&mut self, now: MonoTime, interaction: InteractionId) {
        let Some(&key) = self.calls.by_interaction.get(&interaction) else {
            return;
        };
        self.end_call(now, key, None);
    }

    /// Hangs up the call `key` without touching its interaction, which lives on without it (a
    /// call back, a voicemail): the call is detached first, so nothing is reported.
    pub fn hang_up_call(&mut self, now: MonoTime, key: CallKey) {
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        if let Some(i) = c.interaction.take()
            && self.calls.by_interaction.get(&i) == Some(&key)
        {
            self.calls.by_interaction.remove(&i);
        }
        self.end_call(now, key, None);
    }

    /// Ends both legs (except `spare`, which already ended) and forgets the call.
    fn end_call(&mut self, now: MonoTime, key: CallKey, spare: Option<Side>) {
        let Some(mut c) = self.calls.calls.remove(&key) else {
            return;
        };
        if spare != Some(Side::Agent) {
            let leg = c.agent.take();
            self.cancel_forks(now, leg);
        }
        let unanswered_dial = c
            .outbound
            .as_ref()
            .is_some_and(|o| o.click_to_dial && c.phase != Phase::Connected);
        if unanswered_dial {
            // The caller side is only our INVITE: cancel it if it is out.
            if let Some(tx) = c.outbound.as_mut().and_then(|o| o.tx.take()) {
                let _ = self.transactions.cancel(now, tx);
            }
        } else if spare != Some(Side::Caller) {
            if let Some(tx) = c.caller.tx.take() {
                let r = c.caller.dialog.response(
                    &c.caller.invite,
                    StatusCode::TEMPORARILY_UNAVAILABLE,
                    "Temporarily Unavailable",
                );
                self.send_in(now, tx, r);
            } else {
                let peer = c.caller.peer.clone();
                self.bye(now, &mut c.caller.dialog, peer);
            }
        }
        self.calls.calls.insert(key, c);
        self.forget(key);
    }

    fn forget(&mut self, key: CallKey) {
        if let Some(c) = self.calls.calls.remove(&key) {
            if c.media.is_some() {
                self.outputs.push_back(CoreOutput::Media {
                    call: key,
                    op: MediaOp::Stop(c.interaction.map(|i| (c.tenant, i))),
                });
            }
            if let Some(i) = c.interaction {
                self.calls.by_interaction.remove(&i);
            }
            self.calls.by_dialog.remove(&c.caller.dialog.id);
            if let Some((d, _)) = c.agent.as_ref().and_then(|a| a.dialog.as_ref()) {
                self.calls.by_dialog.remove(&d.id);
            }
            if let Some(rt) = &c.caller.retransmit {
                self.calls.retransmits.remove(&(rt.poll_timeout(), key));
            }
            if let Some(tx) = c.caller.tx {
                self.calls.by_server_tx.remove(&tx);
            }
        }
        metrics::gauge!("switchboard_sip_calls_active").set(self.calls.len() as f64);
    }

    /// CANCEL of a caller's INVITE.
    pub(super) fn on_caller_cancel(&mut self, now: MonoTime, invite_tx: TransactionId) -> bool {
        let Some(&key) = self.calls.by_server_tx.get(&invite_tx) else {
            return false;
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return false;
        };
        let r = c.caller.dialog.response(
            &c.caller.invite,
            StatusCode::REQUEST_TERMINATED,
            "Request Terminated",
        );
        c.caller.tx = None;
        self.calls.by_server_tx.remove(&invite_tx);
        self.send_in(now, invite_tx, r);
        self.caller_left(now, key);
        true
    }

    fn caller_left(&mut self, now: MonoTime, key: CallKey) {
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        if c.phase == Phase::Dialing {
            // Its interaction ended with the transfer out: only the provider leg is left.
            return self.end_call(now, key, Some(Side::Caller));
        }
        match c.interaction {
            Some(interaction) => {
                let tenant = c.tenant;
                self.notice(CallNotice::CallerLeft {
                    tenant,
                    interaction,
                });
                self.end_call(now, key, Some(Side::Caller));
            }
            None => {
                // The interaction is still being made; `call_queued` finishes the job.
                c.gone = true;
                let leg = c.agent.take();
                self.cancel_forks(now, leg);
            }
        }
    }

    /// A request carrying a To tag: inside one of our dialogs, or 481.
    pub(super) fn on_dialog_request(
        &mut self,
        now: MonoTime,
        id: Option<TransactionId>,
        req: Request,
        peer: Peer,
    ) {
        let found = DialogId::of_request(&req).and_then(|d| self.calls.by_dialog.get(&d).copied());
        let Some((key, side)) = found else {
            if let Some(id) = id
                && req.method != Method::Ack
            {
                let r = Response::for_request(
                    &req,
                    StatusCode::CALL_DOES_NOT_EXIST,
                    "Call/Transaction Does Not Exist",
                );
                self.send_in(now, id, r);
            }
            return;
        };
        let Some(id) = id else { return };
        let Some(dialog) = self.dialog_mut(key, side) else {
            return;
        };
        if let Err(rej) = dialog.on_request(&req) {
            let r = switchboard_sip::response_for(&req, &rej);
            return self.send_in(now, id, r);
        }
        match req.method {
            Method::Bye => {
                let r = Response::for_request(&req, StatusCode::OK, "OK");
                self.send_in(now, id, r);
                self.on_bye(now, key, side);
            }
            Method::Invite | Method::Update if self.is_anchored(key) => {
                self.answer_reoffer(now, key, side, id, req)
            }
            Method::Invite | Method::Update => self.relay_request(now, key, side, id, req),
            Method::Refer if side == Side::Agent => self.on_refer(now, key, id, req, peer),
            Method::Info => {
                // DTMF relay (SIP INFO): the caller's keys go to the flow.
                if side == Side::Caller
                    && self.is_anchored(key)
                    && let Some(d) = info_digit(&req)
                {
                    self.media_op(key, MediaOp::Digit(d));
                }
                let r = Response::for_request(&req, StatusCode::OK, "OK");
                self.send_in(now, id, r);
            }
            Method::Notify | Method::Options => {
                let r = Response::for_request(&req, StatusCode::OK, "OK");
                self.send_in(now, id, r);
            }
            _ => {
                let r = Response::for_request(
                    &req,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Method Not Allowed",
                );
                self.send_in(now, id, r);
            }
        }
    }

    fn is_anchored(&self, key: CallKey) -> bool {
        self.calls
            .calls
            .get(&key)
            .is_some_and(|c| c.media.is_some())
    }

    /// A re-INVITE or UPDATE on an anchored leg: answered by us on that leg (the other leg's
    /// session with us is unchanged). The agent's phone holding (`sendonly`, `inactive`) or
    /// taking back the call is told to the driver (music on hold) and the engine (events).
    fn answer_reoffer(
        &mut self,
        now: MonoTime,
        key: CallKey,
        side: Side,
        id: TransactionId,
        req: Request,
    ) {
        let leg = match side {
            Side::Caller => Leg::Caller,
            Side::Agent => Leg::Agent,
        };
        let mut resp_body = None;
        if req.body.is_empty() {
            if req.method == Method::Invite {
                // An offerless re-INVITE: our 200 carries an offer (its ACK the answer).
                resp_body = self.our_offer(key, leg, sdp::Direction::SendRecv);
            }
        } else {
            match self.our_answer(key, leg, &req.body) {
                Some((body, n)) => {
                    resp_body = Some(body);
                    self.media_op(key, MediaOp::Set(leg, leg_media(&n)));
                    if side == Side::Agent {
                        self.agent_hold(now, key, n.remote_direction.is_hold());
                    }
                }
                None => {
                    let r = Response::for_request(
                        &req,
                        StatusCode::new(488).expect("488"),
                        "Not Acceptable Here",
                    );
                    return self.send_in(now, id, r);
                }
            }
        }
        let Some(d) = self.dialog_mut(key, side) else {
            return;
        };
        let mut r = d.response(&req, StatusCode::OK, "OK");
        if let Some(b) = resp_body {
            r.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
            r.body = b;
        }
        self.send_in(now, id, r);
    }

    /// Holds (or takes back) the caller of `interaction`'s bridged call, as from the agent's
    /// phone but through the API: music to the caller, hold time counted. False when this
    /// process holds no bridged call media for it.
    pub fn hold_interaction(
        &mut self,
        now: MonoTime,
        interaction: InteractionId,
        hold: bool,
    ) -> bool {
        let Some(key) = self.call_of(interaction) else {
            return false;
        };
        let bridged = self.calls.calls.get(&key).is_some_and(|c| {
            c.media.is_some() && c.agent.as_ref().is_some_and(|a| a.dialog.is_some())
        });
        if bridged {
            self.agent_hold(now, key, hold);
        }
        bridged
    }

    /// The agent's phone holds (or takes back) the caller.
    fn agent_hold(&mut self, now: MonoTime, key: CallKey, hold: bool) {
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let (tenant, interaction) = (c.tenant, c.interaction);
        let Some(m) = c.media.as_mut() else { return };
        let lasted = match (hold, m.held_since) {
            (true, None) => {
                m.held_since = Some(now);
                std::time::Duration::ZERO
            }
            (false, Some(since)) => {
                let d = now.saturating_since(since);
                m.held += d;
                m.held_since = None;
                d
            }
            // No change (a repeated hold, a refresh of a talking call).
            _ => return,
        };
        self.media_op(key, MediaOp::Hold(hold));
        if let Some(interaction) = interaction {
            self.notice(CallNotice::Hold {
                tenant,
                interaction,
                held: hold,
                lasted,
            });
        }
    }

    fn dialog_mut(&mut self, key: CallKey, side: Side) -> Option<&mut Dialog> {
        let c = self.calls.calls.get_mut(&key)?;
        match side {
            Side::Caller => Some(&mut c.caller.dialog),
            Side::Agent => c
                .agent
                .as_mut()
                .and_then(|a| a.dialog.as_mut())
                .map(|(d, _)| d),
        }
    }

    /// The ACK of a 2xx we sent: the caller's answer is confirmed.
    pub(super) fn on_ack_request(&mut self, req: &Request) {
        let Some((key, side)) =
            DialogId::of_request(req).and_then(|d| self.calls.by_dialog.get(&d).copied())
        else {
            return;
        };
        if side != Side::Caller {
            return;
        }
        if let Some(c) = self.calls.calls.get_mut(&key)
            && let Some(rt) = c.caller.retransmit.take()
        {
            self.calls.retransmits.remove(&(rt.poll_timeout(), key));
        }
        // A late offer's answer (RFC 3264 via RFC 3261 13.2.1).
        let late = self
            .calls
            .calls
            .get_mut(&key)
            .and_then(|c| c.media.as_mut())
            .is_some_and(|m| std::mem::take(&mut m.late_offer));
        if late {
            let n = std::str::from_utf8(&req.body)
                .ok()
                .and_then(|t| sdp::parse(t).ok())
                .and_then(|s| sdp::accept_answer(&s).ok());
            match n {
                Some(n) => self.media_op(key, MediaOp::Set(Leg::Caller, leg_media(&n))),
                None => tracing::info!("a caller's ACK brought no usable answer"),
            }
        }
    }

    fn on_bye(&mut self, now: MonoTime, key: CallKey, side: Side) {
        let Some(c) = self.calls.calls.get(&key) else {
            return;
        };
        match (side, c.phase) {
            (_, Phase::Connected) => {
                if let Some(interaction) = c.interaction {
                    let tenant = c.tenant;
                    let hold = self.hold_total(now, key);
                    self.notice(CallNotice::Hangup {
                        tenant,
                        interaction,
                        by: side,
                        hold,
                    });
                }
                self.end_call(now, key, Some(side));
            }
            (Side::Caller, _) => self.caller_left(now, key),
            // The agent's phone hung up before the engine confirmed: treat as a failed offer.
            (Side::Agent, _) => {
                let tenant = c.tenant;
                let interaction = c.interaction;
                let agent = c.agent.as_ref().map(|a| a.agent);
                if let Some(c) = self.calls.calls.get_mut(&key) {
                    c.phase = Phase::Queued;
                    if let Some(leg) = c.agent.take()
                        && let Some((d, _)) = leg.dialog
                    {
                        self.calls.by_dialog.remove(&d.id);
                    }
                }
                if let (Some(interaction), Some(agent)) = (interaction, agent) {
                    self.notice(CallNotice::OfferFailed {
                        tenant,
                        interaction,
                        agent,
                        status: 487,
                    });
                }
            }
        }
    }

    fn relay_request(
        &mut self,
        now: MonoTime,
        key: CallKey,
        from: Side,
        server_tx: TransactionId,
        req: Request,
    ) {
        let to = from.other();
        let peer = match self.calls.calls.get(&key) {
            Some(c) if c.phase == Phase::Connected => match to {
                Side::Caller => Some(c.caller.peer.clone()),
                Side::Agent => c
                    .agent
                    .as_ref()
                    .and_then(|a| a.dialog.as_ref())
                    .map(|(_, p)| p.clone()),
            },
            _ => None,
        };
        let Some(peer) = peer else {
            let r =
                Response::for_request(&req, StatusCode::new(491).expect("491"), "Request Pending");
            return self.send_in(now, server_tx, r);
        };
        let v = self.our_via(&peer.transport);
        let Some(d) = self.dialog_mut(key, to) else {
            return;
        };
        let mut out = d.request(req.method.clone(), v);
        if let Some(t) = req.headers.get(&HeaderName::CONTENT_TYPE) {
            out.headers.push(HeaderName::CONTENT_TYPE, t);
        }
        out.body = req.body.clone();
        match self.transactions.send_request(now, out, peer) {
            Ok(tx) => {
                self.calls.by_client_tx.insert(tx, (key, Purpose::Relay));
                self.calls.relays.insert(
                    tx,
                    (
                        key,
                        Relay {
                            from,
                            server_tx,
                            request: req,
                        },
                    ),
                );
            }
            Err(_) => {
                let r =
                    Response::for_request(&req, StatusCode::SERVER_INTERNAL_ERROR, "Relay failed");
                self.send_in(now, server_tx, r);
            }
        }
    }

    fn on_refer(
        &mut self,
        now: MonoTime,
        key: CallKey,
        id: TransactionId,
        req: Request,
        peer: Peer,
    ) {
        let target = req
            .headers
            .get(&HeaderName::new("Refer-To"))
            .and_then(|v| v.trim().parse::<NameAddr>().ok())
            .map(|a| user_of(&a.uri))
            .filter(|t| !t.is_empty());
        let Some(target) = target else {
            let r = Response::for_request(&req, StatusCode::BAD_REQUEST, "Bad Request (Refer-To)");
            return self.send_in(now, id, r);
        };
        let Some(c) = self.calls.calls.get(&key) else {
            return;
        };
        let (Some(interaction), Some(agent)) = (c.interaction, c.agent.as_ref().map(|a| a.agent))
        else {
            return;
        };
        let tenant = c.tenant;
        let accepted = Response::for_request(&req, StatusCode::ACCEPTED, "Accepted");
        self.send_in(now, id, accepted);
        // RFC 3515: tell the transferor how it went, then its leg is done.
        let v = self.our_via(&peer.transport);
        if let Some(d) = self.dialog_mut(key, Side::Agent) {
            let mut notify = d.request(Method::Notify, v);
            notify.headers.push(HeaderName::new("Event"), "refer");
            notify.headers.push(
                HeaderName::new("Subscription-State"),
                "terminated;reason=noresource",
            );
            notify
                .headers
                .push(HeaderName::CONTENT_TYPE, "message/sipfrag;version=2.0");
            notify.body = b"SIP/2.0 200 OK\r\n".to_vec();
            if let Ok(tx) = self.transactions.send_request(now, notify, peer) {
                self.calls.by_client_tx.insert(tx, (key, Purpose::Other));
            }
        }
        self.notice(CallNotice::Refer {
            tenant,
            interaction,
            agent,
            target,
        });
    }

    /// The interaction was transferred out to `number` (it has ended): the agent's phone is
    /// hung up and the number is called through the tenant's outbound trunk with the caller's
    /// session description; its answer goes to the caller in a re-INVITE. Without an outbound
    /// trunk the call ends.
    pub fn transfer_out(&mut self, now: MonoTime, interaction: InteractionId, number: &str) {
        let Some(key) = self.calls.by_interaction.remove(&interaction) else {
            return;
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        c.interaction = None;
        let leg = c.agent.take();
        let tenant = c.tenant;
        let agent = leg.as_ref().map(|l| l.agent);
        self.cancel_forks(now, leg);
        let route = self.calls.directory.outbound_for(tenant).cloned();
        let (Some(route), Some(agent)) = (route, agent) else {
            tracing::info!("a transfer out found no outbound trunk; the call ends");
            return self.end_call(now, key, None);
        };
        let c = &self.calls.calls[&key];
        let caller_from = c.caller.invite.headers.from().ok();
        let from_user = route
            .caller_id
            .clone()
            .or_else(|| caller_from.as_ref().map(|f| user_of(&f.uri)));
        let body = c.caller.invite.body.clone();
        let ctype = c
            .caller
            .invite
            .headers
            .get(&HeaderName::CONTENT_TYPE)
            .map(str::to_string);
        let (mut req, peer) = self.provider_invite(&route, number, from_user);
        let (body, ctype) = match self.our_offer(key, Leg::Agent, sdp::Direction::SendRecv) {
            // Anchored: the provider takes the agent's place on our second port.
            Some(offer) => (offer, Some("application/sdp".to_string())),
            None => (body, ctype),
        };
        if let Some(t) = ctype {
            req.headers.push(HeaderName::CONTENT_TYPE, t);
        }
        req.body = body;
        let Some(tx) = self.send_outbound(now, key, req, peer) else {
            return self.end_call(now, key, None);
        };
        metrics::counter!("switchboard_sip_transfers_out_total").increment(1);
        if let Some(c) = self.calls.calls.get_mut(&key) {
            c.phase = Phase::Dialing;
            c.outbound = Some(ProviderLeg {
                route,
                tx: Some(tx),
                challenged: false,
                click_to_dial: false,
                agent_ack: None,
            });
            c.agent = Some(AgentLeg {
                agent,
                forks: vec![Fork { tx, failed: None }],
                dialog: None,
                answer: None,
            });
        }
    }

    /// An INVITE to `number` through `route` (without a session description yet), From our
    /// `from_user` (else anonymous), and where to send it.
    fn provider_invite(
        &mut self,
        route: &OutboundRoute,
        number: &str,
        from_user: Option<String>,
    ) -> (Request, Peer) {
        let peer = Peer {
            transport: Transport::Udp,
            addr: route.peer,
        };
        let target = route.uri.clone().with_user(number);
        let mut req = Request::new(Method::Invite, Uri::Sip(target.clone()));
        let v = self.our_via(&peer.transport);
        req.headers.push(HeaderName::VIA, v.to_string());
        req.headers.push(HeaderName::MAX_FORWARDS, "70");
        let user = from_user
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "anonymous".into());
        let mut from = NameAddr::new(Uri::Sip(
            SipUri::new(self.our_host())
                .with_user(user)
                .with_port(self.local.port()),
        ));
        from.set_tag(self.token());
        req.headers.push(HeaderName::FROM, from.to_string());
        req.headers
            .push(HeaderName::TO, NameAddr::new(Uri::Sip(target)).to_string());
        let call_id = format!("{}@switchboard", self.token());
        req.headers.push(HeaderName::CALL_ID, call_id);
        req.headers.push(HeaderName::CSEQ, "1 INVITE");
        req.headers.push(
            HeaderName::CONTACT,
            self.our_contact(&peer.transport).to_string(),
        );
        (req, peer)
    }

    /// Click-to-dial (the interaction exists, offered to `agent`): the agent's phones ring
    /// first, with no session description; once one answers (and the engine accepted), the
    /// number is called with the phone's offer ([`SipCore::accepted`]). Without an outbound
    /// trunk or a phone the call fails at once.
    #[allow(clippy::too_many_arguments)]
    pub fn dial(
        &mut self,
        now: MonoTime,
        tenant: TenantId,
        interaction: InteractionId,
        agent: AgentId,
        aor_user: &str,
        realm: &str,
        contacts: Vec<Binding>,
        number: &str,
    ) {
        // A call back offered again (its last agent's phone did not answer): the earlier
        // attempt's call goes.
        if let Some(&old) = self.calls.by_interaction.get(&interaction) {
            self.hang_up_call(now, old);
        }
        let Some(route) = self.calls.directory.outbound_for(tenant).cloned() else {
            return self.notice(CallNotice::OfferFailed {
                tenant,
                interaction,
                agent,
                status: 503,
            });
        };
        let (req, peer) = self.provider_invite(&route, number, route.caller_id.clone());
        let (Ok(call_id), Ok(local), Ok(remote)) = (
            req.headers.call_id().map(str::to_string),
            req.headers.from(),
            req.headers.to(),
        ) else {
            return;
        };
        // Until the provider answers, the caller side is only our INVITE: this dialog is
        // not indexed and nothing is sent in it.
        let dialog = Dialog {
            id: DialogId {
                call_id,
                local_tag: local.tag().unwrap_or_default().to_string(),
                remote_tag: String::new(),
            },
            local,
            remote,
            local_seq: 1,
            remote_seq: None,
            remote_target: req.uri.clone(),
            route_set: Vec::new(),
            local_contact: self.our_contact(&peer.transport),
            state: switchboard_sip::dialog::DialogState::Early,
        };
        let caller = CallerLeg {
            tx: None,
            invite: req,
            peer,
            dialog,
            retransmit: None,
        };
        let key = self.add_call(tenant, Some(interaction), Phase::Queued, caller);
        let ports = self.calls.media.as_mut().and_then(MediaPorts::take_pair);
        if let Some((caller_port, agent_port)) = ports {
            if let Some(c) = self.calls.calls.get_mut(&key) {
                c.media = Some(CallMedia {
                    caller_port,
                    agent_port,
                    caller_answer: Vec::new(),
                    caller_law: Law::Ulaw,
                    session: key.0,
                    version: 1,
                    held_since: None,
                    held: std::time::Duration::ZERO,
                    phone_answer: None,
                    late_offer: false,
                });
            }
            self.media_op(
                key,
                MediaOp::Start {
                    caller_port,
                    agent_port,
                },
            );
        }
        if let Some(c) = self.calls.calls.get_mut(&key) {
            c.outbound = Some(ProviderLeg {
                route,
                tx: None,
                challenged: false,
                click_to_dial: true,
                agent_ack: None,
            });
        }
        metrics::counter!("switchboard_sip_outbound_calls_total").increment(1);
        self.offer(now, tenant, interaction, agent, aor_user, realm, contacts);
    }

    fn is_click_to_dial(&self, key: CallKey) -> bool {
        self.calls
            .calls
            .get(&key)
            .and_then(|c| c.outbound.as_ref())
            .is_some_and(|o| o.click_to_dial)
    }

    /// Click-to-dial: the agent's phone answered and the engine accepted: the number is
    /// called with the phone's offer.
    fn dial_out(&mut self, now: MonoTime, key: CallKey) {
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let (body, ctype) = c
            .agent
            .as_ref()
            .and_then(|a| a.answer.clone())
            .unwrap_or_default();
        let (body, ctype) = if c.media.is_some() {
            // Anchored: we answer the phone's offer (in the ACK, once the provider answered)
            // and offer the provider our caller-side port.
            let Some((answer, n)) = self.our_answer(key, Leg::Agent, &body) else {
                return self.outbound_failed(now, key, 488);
            };
            self.media_op(key, MediaOp::Set(Leg::Agent, leg_media(&n)));
            if let Some(m) = self
                .calls
                .calls
                .get_mut(&key)
                .and_then(|c| c.media.as_mut())
            {
                m.phone_answer = Some(answer);
                m.caller_law = n.law;
            }
            let offer = self
                .our_offer(key, Leg::Caller, sdp::Direction::SendRecv)
                .unwrap_or_default();
            (offer, Some("application/sdp".to_string()))
        } else {
            (body, ctype)
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let mut req = c.caller.invite.clone();
        if let Some(t) = ctype {
            req.headers.set(HeaderName::CONTENT_TYPE, t);
        }
        req.body = body;
        let peer = c.caller.peer.clone();
        c.caller.invite = req.clone();
        c.phase = Phase::Dialing;
        match self.send_outbound(now, key, req, peer) {
            Some(tx) => {
                if let Some(o) = self
                    .calls
                    .calls
                    .get_mut(&key)
                    .and_then(|c| c.outbound.as_mut())
                {
                    o.tx = Some(tx);
                }
            }
            None => self.outbound_failed(now, key, 500),
        }
    }

    fn send_outbound(
        &mut self,
        now: MonoTime,
        key: CallKey,
        req: Request,
        peer: Peer,
    ) -> Option<TransactionId> {
        match self
            .transactions
            .send_request(now, req.clone(), peer.clone())
        {
            Ok(tx) => {
                self.calls.by_client_tx.insert(tx, (key, Purpose::Outbound));
                self.calls.fork_requests.insert(tx, (req, peer));
                Some(tx)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not call out through the trunk");
                None
            }
        }
    }

    /// The provider's answer (a transfer out or a click-to-dial): a challenge is answered
    /// once with the trunk's credentials (RFC 3261 22.2; the strongest algorithm offered,
    /// RFC 8760 2.4), a 2xx connects the call, anything else ends it.
    fn on_outbound_response(
        &mut self,
        now: MonoTime,
        key: CallKey,
        tx: TransactionId,
        resp: Response,
    ) {
        if resp.status.is_provisional() {
            return;
        }
        let Some((request, peer)) = self.calls.fork_requests.get(&tx).cloned() else {
            return;
        };
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let current =
            c.phase == Phase::Dialing && c.outbound.as_ref().is_some_and(|o| o.tx == Some(tx));
        if resp.status.is_success() {
            let contact = self.our_contact(&peer.transport);
            let Ok(mut dialog) = Dialog::uac(&request, &resp, contact) else {
                return;
            };
            let seq = resp.headers.cseq().map(|c| c.seq).unwrap_or(1);
            let v = self.our_via(&peer.transport);
            let ack = dialog.ack(seq, v);
            self.transactions
                .transmit(peer.clone(), Message::Request(ack));
            if self.calls.by_dialog.contains_key(&dialog.id) {
                return;
            }
            if !current {
                return self.bye(now, &mut dialog, peer);
            }
            return self.outbound_answered(now, key, request, dialog, peer, resp);
        }
        if !current {
            return;
        }
        let status = resp.status.as_u16();
        if matches!(status, 401 | 407)
            && let Some(retry) = self.answer_challenge(key, &request, &resp)
            && let Some(next) = self.send_outbound(now, key, retry, peer)
        {
            let c = self.calls.calls.get_mut(&key).expect("call");
            if let Some(o) = c.outbound.as_mut() {
                o.challenged = true;
                o.tx = Some(next);
            }
            if let Some(leg) = c.agent.as_mut()
                && leg.forks.iter().any(|f| f.tx == tx)
            {
                leg.forks = vec![Fork {
                    tx: next,
                    failed: None,
                }];
            }
            return;
        }
        self.outbound_failed(now, key, status);
    }

    /// `request` again with the trunk's answer to the challenge in `resp`, unless one was
    /// answered already or the trunk has no credentials.
    fn answer_challenge(
        &mut self,
        key: CallKey,
        request: &Request,
        resp: &Response,
    ) -> Option<Request> {
        use switchboard_sip::digest::{Algorithm, Challenge};
        let o = self.calls.calls.get(&key)?.outbound.as_ref()?;
        if o.challenged {
            return None;
        }
        let (user, password) = o.route.credentials.clone()?;
        let (auths, header) = if resp.status.as_u16() == 401 {
            (resp.headers.www_authenticate(), HeaderName::AUTHORIZATION)
        } else {
            (
                resp.headers.proxy_authenticate(),
                HeaderName::PROXY_AUTHORIZATION,
            )
        };
        let mut challenges: Vec<Challenge> = auths
            .unwrap_or_default()
            .iter()
            .filter_map(Challenge::from_auth)
            .collect();
        challenges.sort_by_key(|c| c.algorithm != Algorithm::Sha256);
        let ch = challenges.first()?;
        let mut retry = request.clone();
        let seq = retry.headers.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        retry.headers.set(HeaderName::CSEQ, format!("{seq} INVITE"));
        let v = self.our_via(&Transport::Udp);
        retry.headers.set(HeaderName::VIA, v.to_string());
        let cnonce = self.token();
        let auth = ch.authorize(
            &user,
            password.expose(),
            &Method::Invite,
            &retry.uri.to_string(),
            &cnonce,
            1,
        );
        retry.headers.push(header, auth.to_string());
        Some(retry)
    }

    /// The provider answered: a transfer out gives the caller the provider's session in a
    /// re-INVITE; a click-to-dial acknowledges the agent phone's 2xx with it.
    fn outbound_answered(
        &mut self,
        now: MonoTime,
        key: CallKey,
        request: Request,
        dialog: Dialog,
        peer: Peer,
        resp: Response,
    ) {
        let ctype = resp
            .headers
            .get(&HeaderName::CONTENT_TYPE)
            .map(str::to_string);
        let click_to_dial = self.is_click_to_dial(key);
        let c = self.calls.calls.get_mut(&key).expect("call");
        c.phase = Phase::Connected;
        let agent_ack = c.outbound.as_mut().and_then(|o| {
            o.tx = None;
            o.agent_ack.take()
        });
        let anchored = c.media.is_some();
        if !click_to_dial {
            let leg = c.agent.as_mut().expect("provider leg");
            leg.forks.clear();
            self.calls
                .by_dialog
                .insert(dialog.id.clone(), (key, Side::Agent));
            leg.dialog = Some((dialog, peer));
            if anchored {
                self.take_agent_answer(key, &resp.body);
                return self.media_op(key, MediaOp::Bridged { interaction: None });
            }
            return self.refresh_caller(now, key, resp.body, ctype);
        }
        self.calls
            .by_dialog
            .insert(dialog.id.clone(), (key, Side::Caller));
        c.caller.dialog = dialog;
        c.caller.invite = request;
        c.caller.peer = peer;
        let Some((phone, phone_peer)) = c.agent.as_ref().and_then(|a| a.dialog.clone()) else {
            return;
        };
        let interaction = c.interaction;
        let phone_answer = c.media.as_mut().and_then(|m| m.phone_answer.take());
        let v = self.our_via(&phone_peer.transport);
        let mut ack = phone.ack(agent_ack.unwrap_or(1), v);
        let (body, ctype) = match phone_answer {
            Some(answer) => {
                let n = std::str::from_utf8(&resp.body)
                    .ok()
                    .and_then(|t| sdp::parse(t).ok())
                    .and_then(|s| sdp::accept_answer(&s).ok());
                if let Some(n) = n {
                    self.media_op(key, MediaOp::Set(Leg::Caller, leg_media(&n)));
                }
                self.media_op(key, MediaOp::Bridged { interaction });
                (answer, Some("application/sdp".to_string()))
            }
            None => (resp.body, ctype),
        };
        if let Some(t) = ctype {
            ack.headers.push(HeaderName::CONTENT_TYPE, t);
        }
        ack.body = body;
        self.transactions
            .transmit(phone_peer, Message::Request(ack));
    }

    /// The provider did not take the call (`status`): it ends. A click-to-dial acknowledges
    /// the agent phone's 2xx first, then hangs the phone up.
    fn outbound_failed(&mut self, now: MonoTime, key: CallKey, status: u16) {
        tracing::info!(status, "the number was not reached; the call ends");
        metrics::counter!("switchboard_sip_outbound_failed_total").increment(1);
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let click_to_dial = c.outbound.as_ref().is_some_and(|o| o.click_to_dial);
        let agent_ack = c.outbound.take().and_then(|o| o.agent_ack);
        if !click_to_dial {
            // The provider's transaction is over: nothing of that leg to cancel.
            c.agent = None;
            return self.end_call(now, key, None);
        }
        let (tenant, interaction) = (c.tenant, c.interaction);
        if let (Some(seq), Some((phone, peer))) =
            (agent_ack, c.agent.as_ref().and_then(|a| a.dialog.clone()))
        {
            let v = self.our_via(&peer.transport);
            let ack = phone.ack(seq, v);
            self.transactions.transmit(peer, Message::Request(ack));
        }
        if let Some(interaction) = interaction {
            self.notice(CallNotice::DialFailed {
                tenant,
                interaction,
                status,
            });
        }
        self.end_call(now, key, Some(Side::Caller));
    }

    /// A response to one of our client transactions.
    pub(super) fn on_call_response(&mut self, now: MonoTime, tx: TransactionId, resp: Response) {
        let Some(&(key, purpose)) = self.calls.by_client_tx.get(&tx) else {
            return;
        };
        match purpose {
            Purpose::Fork(agent) => self.on_fork_response(now, key, agent, tx, resp),
            Purpose::Outbound => self.on_outbound_response(now, key, tx, resp),
            Purpose::Relay => self.on_relay_response(now, tx, resp),
            Purpose::Refresh => {
                if resp.status.is_success()
                    && let Some(c) = self.calls.calls.get_mut(&key)
                {
                    c.pending_refresh = false;
                    let transport = c.caller.peer.transport.clone();
                    let peer = c.caller.peer.clone();
                    let seq = resp.headers.cseq().map(|c| c.seq).unwrap_or_default();
                    let v = self.our_via(&transport);
                    if let Some(c) = self.calls.calls.get(&key) {
                        let ack = c.caller.dialog.ack(seq, v);
                        self.transactions.transmit(peer, Message::Request(ack));
                    }
                }
            }
            Purpose::Other => {}
        }
    }

    fn on_relay_response(&mut self, now: MonoTime, tx: TransactionId, resp: Response) {
        if resp.status.is_provisional() {
            return;
        }
        let Some((key, relay)) = self.calls.relays.remove(&tx) else {
            return;
        };
        let to = relay.from.other();
        // Acknowledge a 2xx on the leg we sent the re-INVITE to.
        if resp.status.is_success()
            && relay.request.method == Method::Invite
            && let Some(c) = self.calls.calls.get(&key)
        {
            let peer = match to {
                Side::Caller => Some(c.caller.peer.clone()),
                Side::Agent => c
                    .agent
                    .as_ref()
                    .and_then(|a| a.dialog.as_ref())
                    .map(|(_, p)| p.clone()),
            };
            if let Some(peer) = peer {
                let seq = resp.headers.cseq().map(|c| c.seq).unwrap_or_default();
                let v = self.our_via(&peer.transport);
                if let Some(d) = self.dialog_mut(key, to) {
                    d.on_response(&Method::Invite, &resp);
                    let ack = d.ack(seq, v);
                    self.transactions.transmit(peer, Message::Request(ack));
                }
            }
        }
        let Some(c) = self.calls.calls.get(&key) else {
            return;
        };
        let d = match relay.from {
            Side::Caller => Some(&c.caller.dialog),
            Side::Agent => c
                .agent
                .as_ref()
                .and_then(|a| a.dialog.as_ref())
                .map(|(d, _)| d),
        };
        let Some(d) = d else { return };
        let mut r = d.response(&relay.request, resp.status, &resp.reason);
        if let Some(t) = resp.headers.get(&HeaderName::CONTENT_TYPE) {
            r.headers.push(HeaderName::CONTENT_TYPE, t);
        }
        r.body = resp.body;
        self.send_in(now, relay.server_tx, r);
    }

    fn on_fork_response(
        &mut self,
        now: MonoTime,
        key: CallKey,
        agent: AgentId,
        tx: TransactionId,
        resp: Response,
    ) {
        let status = resp.status;
        if status.is_provisional() {
            return;
        }
        let contact = self.our_contact(&Transport::Udp);
        let Some(c) = self.calls.calls.get_mut(&key) else {
            return;
        };
        let current =
            c.agent.as_ref().is_some_and(|a| a.agent == agent) && matches!(c.phase, Phase::Ringing);
        let fork = c
            .agent
            .as_mut()
            .and_then(|a| a.forks.iter_mut().find(|f| f.tx == tx));
        if status.is_success() {
            let Some((request, peer)) = self.calls.fork_requests.get(&tx).cloned() else {
                return;
            };
            let Ok(mut dialog) = Dialog::uac(&request, &resp, contact) else {
                return;
            };
            dialog.local_contact = self.our_contact(&peer.transport);
            let known = self.calls.by_dialog.contains_key(&dialog.id);
            // A click-to-dial phone's 2xx carries the offer: its ACK brings the provider's
            // answer later (RFC 3725 flow I). Every other 2xx is acknowledged (RFC 3261
            // 13.2.2.4), a retransmitted one again.
            let delayed = self.is_click_to_dial(key) && (known || current);
            if !delayed {
                let v = self.our_via(&peer.transport);
                let ack = dialog.ack(1, v);
                self.transactions
                    .transmit(peer.clone(), Message::Request(ack));
            }
            if known {
                return;
            }
            if !current {
                // A second phone answered, or the offer is gone: hang that one up.
                return self.bye(now, &mut dialog, peer);
            }
            let c = self.calls.calls.get_mut(&key).expect("call");
            let leg = c.agent.as_mut().expect("agent leg");
            let others: Vec<TransactionId> = leg
                .forks
                .iter()
                .filter(|f| f.tx != tx && f.failed.is_none())
                .map(|f| f.tx)
                .collect();
            leg.answer = Some((
                resp.body.clone(),
                resp.headers
                    .get(&HeaderName::CONTENT_TYPE)
                    .map(str::to_string),
            ));
            let anchored = c.media.is_some();
            self.calls
                .by_dialog
                .insert(dialog.id.clone(), (key, Side::Agent));
            leg.dialog = Some((dialog, peer));
            c.phase = Phase::Connecting;
            if let Some(o) = c.outbound.as_mut() {
                o.agent_ack = resp.headers.cseq().ok().map(|c| c.seq);
            }
            let (tenant, interaction) = (c.tenant, c.interaction);
            for o in others {
                let _ = self.transactions.cancel(now, o);
            }
            if anchored && !self.is_click_to_dial(key) {
                self.take_agent_answer(key, &resp.body);
            }
            if let Some(interaction) = interaction {
                self.notice(CallNotice::Answered {
                    call: key,
                    tenant,
                    interaction,
                    agent,
                });
            }
            return;
        }
        // A final failure of one phone.
        let Some(f) = fork else { return };
        f.failed = Some(status.as_u16());
        if !current {
            return;
        }
        let leg = c.agent.as_ref().expect("agent leg");
        let declined = status == StatusCode::DECLINE;
        let all_failed = leg.forks.iter().all(|f| f.failed.is_some());
        if !(declined || all_failed) {
            return;
        }
        // Busy phones say 486; a phone that declines says 603 (and that settles it for all).
        let worst = if declined {
            603
        } else {
            leg.forks
                .iter()
                .filter_map(|f| f.failed)
                .find(|s| *s == 486)
                .unwrap_or(status.as_u16())
        };
        let (tenant, interaction) = (c.tenant, c.interaction);
        c.phase = Phase::Queued;
        let leg = c.agent.take();
        self.cancel_forks(now, leg);
        if let Some(interaction) = interaction {
            self.notice(CallNotice::OfferFailed {
                tenant,
                interaction,
                agent,
                status: worst,
            });
        }
    }

    /// A client transaction timed out or could not be sent: as a 408 from that phone.
    pub(super) fn on_call_tx_failed(&mut self, now: MonoTime, tx: TransactionId) {
        let Some(&(key, purpose)) = self.calls.by_client_tx.get(&tx) else {
            return;
        };
        match purpose {
            Purpose::Fork(agent) => {
                let fake = Response::new(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
                self.on_fork_response(now, key, agent, tx, fake);
            }
            Purpose::Relay => {
                let fake = Response::new(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
                self.on_relay_response(now, tx, fake);
            }
            Purpose::Outbound => {
                let fake = Response::new(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
                self.on_outbound_response(now, key, tx, fake);
            }
            Purpose::Refresh | Purpose::Other => {}
        }
    }

    /// A transaction ended: forget its index entries.
    pub(super) fn on_tx_terminated(&mut self, tx: TransactionId) {
        self.calls.by_client_tx.remove(&tx);
        self.calls.relays.remove(&tx);
        self.calls.fork_requests.remove(&tx);
        if let Some(key) = self.calls.by_server_tx.get(&tx).copied()
            && self
                .calls
                .calls
                .get(&key)
                .is_none_or(|c| c.caller.tx != Some(tx))
        {
            self.calls.by_server_tx.remove(&tx);
        }
    }

    /// 2xx retransmissions due at `now`, and offers whose call never showed up.
    pub(super) fn calls_timeout(&mut self, now: MonoTime) {
        let stale: Vec<(InteractionId, TenantId)> = self
            .calls
            .early_offers
            .iter()
            .filter(|(_, (at, _))| *at + EARLY_OFFER_TTL <= now)
            .map(|(i, (_, o))| (*i, o.tenant))
            .collect();
        for (interaction, tenant) in stale {
            self.calls.early_offers.remove(&interaction);
            // No call of this process has it (a restart lost it): it is abandoned.
            self.notice(CallNotice::Lost {
                tenant,
                interaction,
            });
        }
        while let Some(&(at, key)) = self.calls.retransmits.first() {
            if at > now {
                break;
            }
            self.calls.retransmits.pop_first();
            let Some(c) = self.calls.calls.get_mut(&key) else {
                continue;
            };
            let Some(rt) = c.caller.retransmit.as_mut() else {
                continue;
            };
            match rt.on_timeout(now) {
                Some(RetransmitAction::Send(peer, resp)) => {
                    let next = rt.poll_timeout();
                    self.calls.retransmits.insert((next, key));
                    self.transactions.transmit(peer, Message::Response(resp));
                }
                Some(RetransmitAction::GiveUp) => {
                    // The caller never acknowledged the answer: the call is dead.
                    c.caller.retransmit = None;
                    if let (Some(interaction), tenant) = (c.interaction, c.tenant) {
                        self.notice(CallNotice::Hangup {
                            tenant,
                            interaction,
                            by: Side::Caller,
                            hold: std::time::Duration::ZERO,
                        });
                    }
                    self.end_call(now, key, None);
                }
                None => {
                    let next = rt.poll_timeout();
                    self.calls.retransmits.insert((next, key));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sip::registrar::RegistrarConfig;
    use switchboard_sip::transaction::TransactionConfig;

    const PROVIDER: &str = "127.0.0.1:5090";
    const PHONE: &str = "127.0.0.1:5070";

    fn dialing_core(tenant: TenantId) -> SipCore {
        let mut c = SipCore::new(
            RegistrarConfig::new(b"calls test secret".to_vec()),
            TransactionConfig::default(),
            "127.0.0.1:5060".parse().expect("addr"),
        );
        c.calls_mut().directory.trunks.push(TrunkRoute {
            tenant,
            name: "carrier".into(),
            allow: Vec::new(),
            trust_identity: false,
            outbound: Some(OutboundRoute {
                peer: PROVIDER.parse().expect("addr"),
                uri: "sip:127.0.0.1:5090"
                    .parse::<Uri>()
                    .expect("uri")
                    .as_sip()
                    .cloned()
                    .expect("sip"),
                credentials: Some((
                    "acct".into(),
                    switchboard_model::Sensitive::new("pw".into()),
                )),
                caller_id: Some("+442079460000".into()),
            }),
        });
        c
    }

    fn phone_binding(now: MonoTime) -> Binding {
        Binding {
            contact: "<sip:agent1@127.0.0.1:5070>".parse().expect("contact"),
            expires_at: now + std::time::Duration::from_secs(600),
            call_id: "reg".into(),
            cseq: 1,
            source: Peer {
                transport: Transport::Udp,
                addr: PHONE.parse().expect("addr"),
            },
            updated_at: now,
            user_agent: None,
        }
    }

    /// Everything the core wants to send, as (destination, message), and its notices.
    fn drain(c: &mut SipCore, now: MonoTime) -> (Vec<(String, Message)>, Vec<CallNotice>) {
        c.flush_calls(now);
        let mut sent = Vec::new();
        let mut notices = Vec::new();
        while let Some(o) = c.poll_output() {
            match o {
                CoreOutput::Transmit { peer, bytes } => sent.push((
                    peer.addr.to_string(),
                    switchboard_sip::parse(&bytes).expect("we send what we parse"),
                )),
                CoreOutput::Call(n) => notices.push(n),
                CoreOutput::Bindings { .. } | CoreOutput::Media { .. } => {}
            }
        }
        (sent, notices)
    }

    fn requests<'a>(sent: &'a [(String, Message)], to: &str, m: Method) -> Vec<&'a Request> {
        sent.iter()
            .filter(|(a, _)| a == to)
            .filter_map(|(_, msg)| msg.as_request())
            .filter(|r| r.method == m)
            .collect()
    }

    fn answer(req: &Request, status: u16, extra: &[(&str, &str)], body: &[u8]) -> Message {
        let code = StatusCode::new(status).expect("status");
        let mut r = Response::for_request(req, code, code.canonical_reason());
        let mut to = r.headers.to().expect("to");
        to.set_tag("far");
        r.headers.set(HeaderName::TO, to.to_string());
        for (k, v) in extra {
            r.headers.push(HeaderName::new(k), *v);
        }
        if !body.is_empty() {
            r.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
        }
        r.body = body.to_vec();
        Message::Response(r)
    }

    /// Click-to-dial on virtual time: the phone's 2xx is held unacknowledged, the provider's
    /// first 407 is answered with the trunk's credentials, a second one gives up: the phone's
    /// 2xx is acknowledged and the phone hung up, and the engine is told.
    #[test]
    fn click_to_dial_answers_one_challenge_and_gives_up_on_the_second() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let interaction = InteractionId::from_uuid(uuid::Uuid::from_u128(2));
        let agent = AgentId::from_uuid(uuid::Uuid::from_u128(3));
        let mut c = dialing_core(tenant);
        let now = MonoTime::from_secs(1);
        let contacts = vec![phone_binding(now)];
        c.dial(
            now,
            tenant,
            interaction,
            agent,
            "agent1",
            "demo.local",
            contacts,
            "+4420",
        );
        let (sent, _) = drain(&mut c, now);
        let invite = requests(&sent, PHONE, Method::Invite)[0].clone();
        assert!(invite.body.is_empty(), "the phone is asked for the offer");
        let phone_ok = answer(
            &invite,
            200,
            &[("Contact", "<sip:agent1@127.0.0.1:5070>")],
            b"v=0 offer",
        );
        c.handle_message(
            now,
            phone_ok,
            Peer {
                transport: Transport::Udp,
                addr: PHONE.parse().expect("addr"),
            },
        );
        let (sent, notices) = drain(&mut c, now);
        assert!(
            requests(&sent, PHONE, Method::Ack).is_empty(),
            "ACK waits for the answer"
        );
        assert!(
            matches!(notices[..], [CallNotice::Answered { .. }]),
            "{notices:?}"
        );
        c.accepted(now, interaction, true);
        let (sent, _) = drain(&mut c, now);
        let out = requests(&sent, PROVIDER, Method::Invite)[0].clone();
        assert_eq!(out.uri.to_string(), "sip:+4420@127.0.0.1:5090");
        assert_eq!(out.body, b"v=0 offer".to_vec());
        let provider = Peer {
            transport: Transport::Udp,
            addr: PROVIDER.parse().expect("addr"),
        };
        let challenge = [(
            "Proxy-Authenticate",
            "Digest realm=\"p\", nonce=\"n1\", algorithm=MD5",
        )];
        c.handle_message(now, answer(&out, 407, &challenge, b""), provider.clone());
        let (sent, _) = drain(&mut c, now);
        let retry = requests(&sent, PROVIDER, Method::Invite)[0].clone();
        let auth = retry
            .headers
            .get(&HeaderName::PROXY_AUTHORIZATION)
            .expect("answered the challenge")
            .to_string();
        assert!(
            auth.contains("username=\"acct\"") && auth.contains("nonce=\"n1\""),
            "{auth}"
        );
        assert_eq!(retry.headers.cseq().expect("cseq").seq, 2);
        c.handle_message(now, answer(&retry, 407, &challenge, b""), provider);
        let (sent, notices) = drain(&mut c, now);
        assert_eq!(
            requests(&sent, PROVIDER, Method::Invite).len(),
            0,
            "one try only"
        );
        assert_eq!(requests(&sent, PHONE, Method::Ack).len(), 1);
        assert_eq!(requests(&sent, PHONE, Method::Bye).len(), 1);
        assert!(
            notices
                .iter()
                .any(|n| matches!(n, CallNotice::DialFailed { status: 407, .. })),
            "{notices:?}"
        );
        assert_eq!(c.calls_mut().len(), 0);
    }

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: \"Claimed\" <sip:+4930111@127.0.0.1>;tag=a\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match switchboard_sip::parse(text.as_bytes()).expect("parses") {
            Message::Request(r) => r,
            Message::Response(_) => panic!("a request"),
        }
    }

    const TRUNK: &str = "127.0.0.1:5080";

    fn anchored_core(tenant: TenantId, queue: QueueId) -> SipCore {
        let mut c = SipCore::new(
            RegistrarConfig::new(b"calls test secret".to_vec()),
            TransactionConfig::default(),
            "127.0.0.1:5060".parse().expect("addr"),
        );
        let calls = c.calls_mut();
        calls.directory.trunks.push(TrunkRoute {
            tenant,
            name: "trunk".into(),
            allow: vec![("127.0.0.1".parse().expect("ip"), 32)],
            trust_identity: false,
            outbound: None,
        });
        calls.directory.dids.insert(
            (tenant, "1001".into()),
            DidRoute {
                tenant,
                queue,
                flow: None,
            },
        );
        let mut ports = MediaPorts::new("10.0.0.1".parse().expect("ip"));
        for p in [30000, 30002, 30004] {
            ports.add_ready(p);
        }
        calls.media = Some(ports);
        c
    }

    fn peer(addr: &str) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: addr.parse().expect("addr"),
        }
    }

    fn msg(text: &str) -> Message {
        switchboard_sip::parse(text.as_bytes()).expect("test message parses")
    }

    fn with_body(head: &str, ctype: &str, body: &str) -> Message {
        msg(&format!(
            "{head}Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// Sent messages, notices and media operations.
    fn drain_all(
        c: &mut SipCore,
        now: MonoTime,
    ) -> (Vec<(String, Message)>, Vec<CallNotice>, Vec<MediaOp>) {
        c.flush_calls(now);
        let (mut sent, mut notices, mut ops) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(o) = c.poll_output() {
            match o {
                CoreOutput::Transmit { peer, bytes } => sent.push((
                    peer.addr.to_string(),
                    switchboard_sip::parse(&bytes).expect("we send what we parse"),
                )),
                CoreOutput::Call(n) => notices.push(n),
                CoreOutput::Media { op, .. } => ops.push(op),
                CoreOutput::Bindings { .. } => {}
            }
        }
        (sent, notices, ops)
    }

    fn responses_to(sent: &[(String, Message)], to: &str) -> Vec<Response> {
        sent.iter()
            .filter(|(a, _)| a == to)
            .filter_map(|(_, m)| m.as_response().cloned())
            .collect()
    }

    const CALLER_SDP: &str = "v=0\r\no=c 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn caller_invite(sdp: &str) -> Message {
        with_body(
            "INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKinv\r\nFrom: <sip:+4930111@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: anchored\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5080>\r\n",
            "application/sdp",
            sdp,
        )
    }

    /// A call hung up by its key (a call back, a voicemail) leaves its interaction alone: the
    /// caller gets its final response (or BYE), the media stops, no notice is given, and the
    /// interaction is no longer this call's (a later offer is not for it).
    #[test]
    fn a_call_hung_up_by_key_reports_nothing_and_forgets_its_interaction() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let queue = QueueId::from_uuid(uuid::Uuid::from_u128(4));
        let interaction = InteractionId::from_uuid(uuid::Uuid::from_u128(2));
        let mut c = anchored_core(tenant, queue);
        let now = MonoTime::from_secs(1);
        c.handle_message(now, caller_invite(CALLER_SDP), peer(TRUNK));
        let (_, notices, _) = drain_all(&mut c, now);
        let Some(CallNotice::Incoming { call, .. }) = notices.first().cloned() else {
            panic!("{notices:?}");
        };
        c.call_queued(now, call, Ok(interaction));
        let _ = drain_all(&mut c, now);
        assert_eq!(c.call_of(interaction), Some(call));
        c.hang_up_call(now, call);
        let (sent, notices, ops) = drain_all(&mut c, now);
        assert!(notices.is_empty(), "{notices:?}");
        assert!(ops.contains(&MediaOp::Stop(None)), "{ops:?}");
        assert!(
            responses_to(&sent, TRUNK)
                .iter()
                .any(|r| r.status == StatusCode::TEMPORARILY_UNAVAILABLE),
            "the unanswered caller is refused"
        );
        assert_eq!(c.call_of(interaction), None);
        assert_eq!(c.calls_mut().len(), 0);
        // Again: nothing.
        c.hang_up_call(now, call);
        assert!(drain_all(&mut c, now).1.is_empty());
    }

    /// Media anchoring on virtual time: the caller's offer is answered with our address and
    /// first port, the agent's phone is offered our second port, both legs' media go to the
    /// driver, the agent phone's hold is answered `recvonly` by us (music, a Hold notice) and
    /// counted, a SIP INFO key reaches the media, and the BYE stops it.
    #[test]
    fn an_anchored_call_answers_each_leg_with_our_media() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let queue = QueueId::from_uuid(uuid::Uuid::from_u128(4));
        let interaction = InteractionId::from_uuid(uuid::Uuid::from_u128(2));
        let agent = AgentId::from_uuid(uuid::Uuid::from_u128(3));
        let mut c = anchored_core(tenant, queue);
        let mut now = MonoTime::from_secs(1);
        c.handle_message(now, caller_invite(CALLER_SDP), peer(TRUNK));
        let (_, notices, ops) = drain_all(&mut c, now);
        assert_eq!(
            ops,
            vec![
                MediaOp::Start {
                    caller_port: 30000,
                    agent_port: 30002
                },
                MediaOp::Set(
                    Leg::Caller,
                    LegMedia {
                        law: Law::Alaw,
                        payload_type: 8,
                        telephone_event: Some(101),
                        remote: Some("192.0.2.5:4000".parse().expect("addr")),
                        rtcp: None,
                        rtcp_mux: false,
                    }
                ),
            ]
        );
        let Some(CallNotice::Incoming { call, flow, .. }) = notices.first().cloned() else {
            panic!("{notices:?}");
        };
        assert_eq!(flow, None);
        c.call_queued(now, call, Ok(interaction));
        c.offer(
            now,
            tenant,
            interaction,
            agent,
            "agent1",
            "demo.local",
            vec![phone_binding(now)],
        );
        let (sent, _, _) = drain_all(&mut c, now);
        let ring = requests(&sent, PHONE, Method::Invite)[0].clone();
        let offer = String::from_utf8(ring.body.clone()).expect("utf-8");
        assert!(offer.contains("c=IN IP4 10.0.0.1"), "{offer}");
        assert!(
            offer.contains("m=audio 30002 RTP/AVP 8 0 101"),
            "the caller's law first: {offer}"
        );
        let phone_sdp = b"v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let ok = answer(
            &ring,
            200,
            &[("Contact", "<sip:agent1@127.0.0.1:5070>")],
            phone_sdp,
        );
        c.handle_message(now, ok, peer(PHONE));
        let (sent, notices, ops) = drain_all(&mut c, now);
        assert_eq!(requests(&sent, PHONE, Method::Ack).len(), 1);
        assert!(
            ops.iter().any(|o| matches!(o, MediaOp::Set(Leg::Agent, m)
                if m.law == Law::Ulaw && m.remote == Some("127.0.0.1:5004".parse().expect("a")))),
            "{ops:?}"
        );
        assert!(matches!(notices[..], [CallNotice::Answered { .. }]));
        c.accepted(now, interaction, true);
        let (sent, _, ops) = drain_all(&mut c, now);
        let ok = responses_to(&sent, TRUNK)
            .into_iter()
            .find(|r| r.status == StatusCode::OK)
            .expect("the caller is answered");
        let body = String::from_utf8(ok.body.clone()).expect("utf-8");
        assert!(
            body.contains("m=audio 30000 RTP/AVP 8 101") && body.contains("c=IN IP4 10.0.0.1"),
            "{body}"
        );
        assert!(ops.contains(&MediaOp::Bridged {
            interaction: Some(interaction)
        }));
        let our_tag = ok.headers.to().expect("to").tag().expect("tag").to_string();

        // The agent's phone holds: answered by us, not passed to the caller.
        let hold_sdp = "v=0\r\no=p 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n";
        let from = ring.headers.from().expect("from");
        let call_id = ring.headers.call_id().expect("call-id").to_string();
        let head = format!(
            "INVITE sip:switchboard@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKhold\r\nFrom: <sip:agent1@demo.local>;tag=far\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: 7 INVITE\r\nContact: <sip:agent1@127.0.0.1:5070>\r\n"
        );
        c.handle_message(
            now,
            with_body(&head, "application/sdp", hold_sdp),
            peer(PHONE),
        );
        let (sent, notices, ops) = drain_all(&mut c, now);
        let r = responses_to(&sent, PHONE)
            .into_iter()
            .find(|r| r.status.is_final())
            .expect("answered");
        assert_eq!(r.status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&r.body).contains("a=recvonly"));
        assert!(
            requests(&sent, TRUNK, Method::Invite).is_empty(),
            "not relayed"
        );
        assert!(ops.contains(&MediaOp::Hold(true)), "{ops:?}");
        assert!(matches!(notices[..], [CallNotice::Hold { held: true, .. }]));

        // A key by SIP INFO.
        let head = format!(
            "INFO sip:switchboard@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKinfo\r\nFrom: <sip:+4930111@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>;tag={our_tag}\r\nCall-ID: anchored\r\nCSeq: 2 INFO\r\n"
        );
        c.handle_message(
            now,
            with_body(
                &head,
                "application/dtmf-relay",
                "Signal=5\r\nDuration=160\r\n",
            ),
            peer(TRUNK),
        );
        let (_, _, ops) = drain_all(&mut c, now);
        assert_eq!(ops, vec![MediaOp::Digit('5')]);

        // Three seconds later the caller hangs up: the hold is counted, the media stops.
        now += std::time::Duration::from_secs(3);
        let bye = format!(
            "BYE sip:switchboard@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbye\r\nFrom: <sip:+4930111@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>;tag={our_tag}\r\nCall-ID: anchored\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        c.handle_message(now, msg(&bye), peer(TRUNK));
        let (sent, notices, ops) = drain_all(&mut c, now);
        assert_eq!(requests(&sent, PHONE, Method::Bye).len(), 1);
        let hold = notices.iter().find_map(|n| match n {
            CallNotice::Hangup { hold, .. } => Some(*hold),
            _ => None,
        });
        assert_eq!(hold, Some(std::time::Duration::from_secs(3)));
        assert!(
            ops.contains(&MediaOp::Stop(Some((tenant, interaction)))),
            "the quality report names the call's interaction: {ops:?}"
        );
        assert_eq!(c.calls_mut().len(), 0);
    }

    /// A caller's INVITE without an offer (late offer): our 200 carries an offer and the
    /// caller's ACK the answer, which gives the bridge the caller's media.
    #[test]
    fn a_late_offer_is_answered_in_the_callers_ack() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let queue = QueueId::from_uuid(uuid::Uuid::from_u128(4));
        let interaction = InteractionId::from_uuid(uuid::Uuid::from_u128(2));
        let agent = AgentId::from_uuid(uuid::Uuid::from_u128(3));
        let mut c = anchored_core(tenant, queue);
        let now = MonoTime::from_secs(1);
        let invite = "INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKlate\r\nFrom: <sip:+4930111@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: late\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n";
        c.handle_message(now, msg(invite), peer(TRUNK));
        let (_, notices, ops) = drain_all(&mut c, now);
        assert_eq!(ops.len(), 1, "ports, but no caller media yet: {ops:?}");
        let Some(CallNotice::Incoming { call, .. }) = notices.first().cloned() else {
            panic!("{notices:?}");
        };
        c.call_queued(now, call, Ok(interaction));
        c.offer(
            now,
            tenant,
            interaction,
            agent,
            "agent1",
            "demo.local",
            vec![phone_binding(now)],
        );
        let (sent, _, _) = drain_all(&mut c, now);
        let ring = requests(&sent, PHONE, Method::Invite)[0].clone();
        let phone_sdp = b"v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
        let ok = answer(
            &ring,
            200,
            &[("Contact", "<sip:agent1@127.0.0.1:5070>")],
            phone_sdp,
        );
        c.handle_message(now, ok, peer(PHONE));
        drain_all(&mut c, now);
        c.accepted(now, interaction, true);
        let (sent, _, _) = drain_all(&mut c, now);
        let ok = responses_to(&sent, TRUNK)
            .into_iter()
            .find(|r| r.status == StatusCode::OK)
            .expect("answered");
        let body = String::from_utf8(ok.body.clone()).expect("utf-8");
        assert!(
            body.contains("m=audio 30000 RTP/AVP 0 8 101"),
            "an offer: {body}"
        );
        let tag = ok.headers.to().expect("to").tag().expect("tag").to_string();
        let head = format!(
            "ACK sip:switchboard@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKack\r\nFrom: <sip:+4930111@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>;tag={tag}\r\nCall-ID: late\r\nCSeq: 1 ACK\r\n"
        );
        let answer_sdp = "v=0\r\no=c 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        c.handle_message(
            now,
            with_body(&head, "application/sdp", answer_sdp),
            peer(TRUNK),
        );
        let (_, _, ops) = drain_all(&mut c, now);
        assert_eq!(
            ops,
            vec![MediaOp::Set(
                Leg::Caller,
                LegMedia {
                    law: Law::Alaw,
                    payload_type: 8,
                    telephone_event: None,
                    remote: Some("192.0.2.5:4000".parse().expect("addr")),
                    rtcp: None,
                    rtcp_mux: false,
                }
            )]
        );
    }

    #[test]
    fn an_offer_without_g711_is_refused_and_takes_no_ports() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let queue = QueueId::from_uuid(uuid::Uuid::from_u128(4));
        let mut c = anchored_core(tenant, queue);
        let now = MonoTime::from_secs(1);
        let g729 = "v=0\r\no=c 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        c.handle_message(now, caller_invite(g729), peer(TRUNK));
        let (sent, notices, ops) = drain_all(&mut c, now);
        let finals: Vec<u16> = responses_to(&sent, TRUNK)
            .iter()
            .filter(|r| r.status.is_final())
            .map(|r| r.status.as_u16())
            .collect();
        assert_eq!(finals, vec![488]);
        assert!(notices.is_empty() && ops.is_empty());
        assert_eq!(c.calls_mut().media.as_ref().map(MediaPorts::ready), Some(3));
        // A garbled body too.
        c.handle_message(now, caller_invite("v=0\r\nm=audio x\r\n"), peer(TRUNK));
        let (sent, _, _) = drain_all(&mut c, now);
        assert!(
            responses_to(&sent, TRUNK)
                .iter()
                .any(|r| r.status.as_u16() == 488)
        );
    }

    #[test]
    fn sip_info_digits_are_read_from_both_content_types() {
        let info = |ctype: &str, body: &str| match with_body(
            "INFO sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKi\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: i\r\nCSeq: 1 INFO\r\n",
            ctype,
            body,
        ) {
            Message::Request(r) => info_digit(&r),
            Message::Response(_) => None,
        };
        assert_eq!(
            info("application/dtmf-relay", "Signal=1\r\nDuration=160\r\n"),
            Some('1')
        );
        assert_eq!(info("application/dtmf-relay", "Signal= #\r\n"), Some('#'));
        assert_eq!(info("application/dtmf-relay", "Signal=11\r\n"), Some('#'));
        assert_eq!(info("application/dtmf", "*"), Some('*'));
        assert_eq!(info("application/dtmf-relay", "Signal=X\r\n"), None);
        assert_eq!(info("text/plain", "1"), None);
        assert_eq!(info("application/dtmf-relay", ""), None);
    }

    #[test]
    fn asserted_identity_counts_only_from_a_trusted_trunk() {
        let req = invite("P-Asserted-Identity: \"Real\" <tel:+44-20-7946-0018>, <sip:x@y>\r\n");
        let trusted = caller_identity(&req, true).expect("identity");
        assert_eq!(user_of(&trusted.uri), "+442079460018");
        assert_eq!(trusted.display_name.as_deref(), Some("Real"));
        let untrusted = caller_identity(&req, false).expect("identity");
        assert_eq!(user_of(&untrusted.uri), "+4930111");
        // A garbled header from a trusted trunk falls back to From.
        let bad = invite("P-Asserted-Identity: <<<\r\n");
        assert_eq!(
            user_of(&caller_identity(&bad, true).expect("from").uri),
            "+4930111"
        );
    }
}
