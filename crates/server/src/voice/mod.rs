//! Voice: the SIP listener of the server (UDP and TCP on one port), its registrar and the
//! B2BUA. The protocol work is the sans-IO `switchboard-sip` crate; this module is the
//! thin runtime around it (DESIGN rule 1):
//!
//! - `ua.rs`: [`ua::SipCore`], the dispatch between the transaction layer and the registrar
//!   and the answer to every method, driven by `now` (unit-tested on virtual time);
//! - `calls.rs`: the B2BUA inside the core (calls in, transfers, calls out);
//! - `driver.rs`: between the B2BUA and the routing engine;
//! - `transport.rs`: one task reads UDP, one accepts TCP (a reader and a writer task per
//!   connection), one engine task owns the core; no thread per call.
//!
//! Accounts are the agents' SIP credentials from the store (HA1s only), loaded at start and
//! again by [`VoiceHandle::reload_credentials`]. Registrations live in memory, in the
//! registrar, mirrored into a table that [`VoiceHandle::bindings`] reads without asking the
//! engine: that lookup is the B2BUA's way to ring every registered phone of an agent.
//!
//! The nonce secret and the branch seed are drawn from the OS at each start, so nonces of a
//! previous process are answered `stale=true` and phones simply re-authenticate. Digest
//! challenges offer (by default; `[voice] digest_algorithms`) MD5 first and SHA-256 second:
//! many deployed UAs (SIPp among them) read only the first challenge and speak only MD5; UAs
//! that choose among challenges still pick SHA-256 (RFC 8760 2.4 lets the server order by its
//! own preference).
//!
//! The call flows are described in `docs/voice.md`.
//!
//! Not yet: media (part 2), TLS, outgoing TCP connections (calls out use UDP), Via `received`
//! on responses (they are sent back to the source address and port, as RFC 3581 asks,
//! whatever the Via says).

mod calls;
mod driver;
mod ivr;
pub mod media;
mod prompts;
pub mod record_calls;
pub use driver::{caller_number, parse_network};
pub(crate) use driver::{customer_for, outbound_number};
mod transport;
mod ua;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use switchboard_model::{AgentId, InteractionId, TenantId};
use switchboard_sip::Message;
use switchboard_sip::digest::Credentials;
use switchboard_sip::registrar::{Aor, Binding, RegistrarConfig};
use switchboard_sip::transaction::{Peer, TransactionConfig};
use switchboard_store::Store;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::state::AppState;

/// What the engine task is told.
// Messages are the common case and are moved once; boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// A message from the network that passed triage.
    Message {
        /// The message.
        message: Message,
        /// Where it came from.
        peer: Peer,
    },
    /// The complete set of accounts (a reload).
    Credentials(Vec<Credentials>),
    /// Trunks and numbers (a reload).
    Directory(calls::Directory),
    /// The interaction of a new call exists (or could not be made: the SIP status to refuse).
    Queued {
        /// The call.
        call: calls::CallKey,
        /// The interaction, or the status to answer the caller with.
        result: Result<InteractionId, u16>,
    },
    /// Ring an agent's phones.
    Offer {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// Agent.
        agent: AgentId,
        /// The agent's address-of-record, if it has a SIP account.
        aor: Option<Aor>,
        /// Its live registrations.
        contacts: Vec<Binding>,
    },
    /// An outbound call: ring the agent's phones, then dial `number`.
    Dial {
        /// Tenant.
        tenant: TenantId,
        /// Interaction.
        interaction: InteractionId,
        /// Agent.
        agent: AgentId,
        /// The agent's address-of-record, if it has a SIP account.
        aor: Option<Aor>,
        /// Its live registrations.
        contacts: Vec<Binding>,
        /// The number (E.164).
        number: switchboard_model::Sensitive<String>,
    },
    /// The offer to `agent` ended without an answer.
    OfferEnded {
        /// Interaction.
        interaction: InteractionId,
        /// Agent.
        agent: AgentId,
    },
    /// The engine's answer to an answered phone.
    Accepted {
        /// Interaction.
        interaction: InteractionId,
        /// Accepted.
        ok: bool,
    },
    /// The interaction went back to a queue.
    Requeued(InteractionId),
    /// The call was transferred out to a number.
    TransferOut {
        /// Interaction.
        interaction: InteractionId,
        /// The number (E.164).
        number: switchboard_model::Sensitive<String>,
    },
    /// The interaction ended through the API.
    HangUp(InteractionId),
    /// Hang up this call, leaving its interaction as it is (a call back, a voicemail).
    HangUpCall(calls::CallKey),
    /// Hold (or take back) the caller of a bridged call; the answer says whether there was one.
    Hold {
        /// The call's interaction.
        interaction: InteractionId,
        /// Hold (true) or take back.
        hold: bool,
        /// Whether this process held the call's media.
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// Start, pause or resume the recording of a live call.
    Record {
        /// The call's interaction.
        interaction: InteractionId,
        /// What to do.
        action: media::RecordingAction,
    },
}

/// Current bindings per address-of-record, as the engine last reported them.
pub(crate) type BindingTable = HashMap<Aor, Vec<Binding>>;

/// Capacity of the channel from the transports to the engine.
const ENGINE_QUEUE: usize = 4096;

/// The running voice listener.
pub struct VoiceHandle {
    addr: SocketAddr,
    clock: Clock,
    table: Arc<RwLock<BindingTable>>,
    agents: Arc<RwLock<HashMap<(TenantId, AgentId), Aor>>>,
    commands: mpsc::Sender<Command>,
    tasks: Vec<JoinHandle<()>>,
    recordings: tokio::sync::broadcast::Sender<media::RecordingDone>,
}

// The lookups are the B2BUA's entry points (issue 4, next step); tests use them meanwhile.
#[allow(dead_code)]
impl VoiceHandle {
    /// The address bound for UDP and TCP.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live bindings of an address-of-record: the contacts to ring in parallel, with the
    /// flow (transport and address) each registered from.
    pub fn bindings(&self, aor: &Aor) -> Vec<Binding> {
        let now = self.clock.mono();
        self.table
            .read()
            .map(|t| {
                t.get(aor)
                    .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// The address-of-record of an agent's phones, if the agent has SIP credentials.
    pub fn aor_of_agent(&self, tenant: TenantId, agent: AgentId) -> Option<Aor> {
        self.agents
            .read()
            .ok()
            .and_then(|a| a.get(&(tenant, agent)).cloned())
    }

    /// The live bindings of an agent's phones.
    pub fn agent_bindings(&self, tenant: TenantId, agent: AgentId) -> Vec<Binding> {
        self.aor_of_agent(tenant, agent)
            .map(|aor| self.bindings(&aor))
            .unwrap_or_default()
    }

    /// Reloads the accounts from the store (after an agent's SIP password changed).
    pub async fn reload_credentials(&self, store: &Store) -> anyhow::Result<()> {
        self.reloader().reload(store).await
    }

    /// A handle that reloads the accounts, for the API (cheap to clone).
    pub fn reloader(&self) -> CredentialReloader {
        CredentialReloader {
            agents: self.agents.clone(),
            commands: self.commands.clone(),
        }
    }

    /// The handle that records live calls (cheap to clone).
    pub fn recorder(&self) -> CallRecorder {
        CallRecorder {
            commands: self.commands.clone(),
            recordings: self.recordings.clone(),
        }
    }

    /// Stops the listener's tasks.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

impl CredentialReloader {
    /// Reads trunks and numbers from the store and hands them to the SIP engine.
    pub async fn reload_directory(&self, store: &Store) -> anyhow::Result<()> {
        let d = driver::load_directory(store).await?;
        self.commands
            .send(Command::Directory(d))
            .await
            .map_err(|_| anyhow::anyhow!("the SIP engine has stopped"))
    }
}

/// Records live calls: the hook the recordings module (per-queue policy, the API) drives.
/// Files are stereo WAV, caller left and agent right, on the call's timeline (a pause is
/// silence); [`CallRecorder::subscribe`] reports each finished file.
#[derive(Clone)]
pub struct CallRecorder {
    commands: mpsc::Sender<Command>,
    recordings: tokio::sync::broadcast::Sender<media::RecordingDone>,
}

impl CallRecorder {
    /// Starts (into a file), pauses or resumes recording the call of `interaction`; false when
    /// the SIP engine has stopped. A call this process does not hold is ignored.
    pub async fn record(&self, interaction: InteractionId, action: media::RecordingAction) -> bool {
        self.commands
            .send(Command::Record {
                interaction,
                action,
            })
            .await
            .is_ok()
    }

    /// Holds (music to the caller, hold time counted) or takes back the caller of the
    /// interaction's bridged call: `Some(false)` when this process has no such call, `None`
    /// when the SIP engine has stopped.
    pub async fn hold(&self, interaction: InteractionId, hold: bool) -> Option<bool> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Hold {
                interaction,
                hold,
                reply,
            })
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Finished recordings (interaction, path, duration, paused spans), as they complete.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<media::RecordingDone> {
        self.recordings.subscribe()
    }
}

/// Reloads the SIP accounts after an admin changed one.
#[derive(Clone)]
pub struct CredentialReloader {
    agents: Arc<RwLock<HashMap<(TenantId, AgentId), Aor>>>,
    commands: mpsc::Sender<Command>,
}

impl CredentialReloader {
    /// Reads every account from the store and hands them to the SIP engine.
    pub async fn reload(&self, store: &Store) -> anyhow::Result<()> {
        let (creds, agents) = load_credentials(store).await?;
        if let Ok(mut a) = self.agents.write() {
            *a = agents;
        }
        self.commands
            .send(Command::Credentials(creds))
            .await
            .map_err(|_| anyhow::anyhow!("the SIP engine has stopped"))
    }
}

type Accounts = (Vec<Credentials>, HashMap<(TenantId, AgentId), Aor>);

async fn load_credentials(store: &Store) -> anyhow::Result<Accounts> {
    let mut creds = Vec::new();
    let mut agents = HashMap::new();
    for c in store.all_sip_credentials().await? {
        agents.insert(
            (c.tenant, c.agent),
            Aor {
                realm: c.realm.clone(),
                user: c.username.clone(),
            },
        );
        creds.push(Credentials {
            username: c.username,
            realm: c.realm,
            ha1_md5: c.ha1_md5.map(|h| h.into_inner()),
            ha1_sha256: c.ha1_sha256.map(|h| h.into_inner()),
        });
    }
    Ok((creds, agents))
}

/// Binds UDP and then TCP on the same port. With port 0 the OS picks the UDP port; if that
/// port is taken for TCP, another is tried.
async fn bind(addr: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}/udp (SWITCHBOARD_SIP): {e}"))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last_error = Some(e);
            }
            Err(e) => {
                anyhow::bail!("cannot listen on {addr}/tcp (SWITCHBOARD_SIP): {e}")
            }
        }
    }
    anyhow::bail!(
        "cannot find a port free for both UDP and TCP on {} (SWITCHBOARD_SIP): {}",
        addr.ip(),
        last_error.map(|e| e.to_string()).unwrap_or_default()
    )
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(b)
}

/// Binds `addr` (UDP and TCP) and starts the SIP tasks.
pub async fn start(state: AppState, addr: SocketAddr) -> anyhow::Result<VoiceHandle> {
    if state.config.demo {
        crate::demo::ensure_sip_credentials(&state.store, &state.clock).await?;
        crate::demo::ensure_voice_directory(&state.store, &state.clock).await?;
    }
    let (udp, tcp) = bind(addr).await?;
    let local = udp.local_addr()?;
    let mut registrar = RegistrarConfig::new(random_bytes::<32>()?.to_vec());
    // `[voice] digest_algorithms`; see the module docs for the default order.
    registrar.digest.algorithms = state.config.voice.digest_algorithms.clone();
    registrar.limits = state.config.voice.auth_limits.clone();
    let transactions = TransactionConfig {
        branch_seed: u64::from_le_bytes(random_bytes::<8>()?),
        ..TransactionConfig::default()
    };
    let advertised = if local_ip_unspecified(local) {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    let mut core = ua::SipCore::new(registrar, transactions, advertised);
    let vc = &state.config.voice;
    let media_ip = vc.rtp_ip.unwrap_or(advertised.ip());
    core.calls_mut().media = Some(calls::MediaPorts::new(media_ip));
    let prompts = Arc::new(prompts::Prompts::new(
        &state.config.data_dir,
        vc.moh_dir.as_deref(),
    ));
    let registry: ivr::Registry = Default::default();
    let (media_tx, media_events) = mpsc::unbounded_channel();
    let (recordings, _) = tokio::sync::broadcast::channel(64);
    let (quality_tx, quality) = mpsc::unbounded_channel();
    let anchor = media::Anchor::new(
        media_ip,
        vc.rtp_ports.clone(),
        vc.rtp_timeout.as_millis() as u64,
        vc.rtcp_interval.as_millis() as u64,
        state.clock.clone(),
        vc.inband_dtmf,
        media_tx,
        registry.clone(),
        prompts.clone(),
        recordings.clone(),
        quality_tx,
    );
    let ivr_ctx = ivr::IvrContext { prompts, registry };
    let (creds, agents) = load_credentials(&state.store).await?;
    let accounts = creds.len();
    core.registrar_mut().replace_credentials(creds);
    core.calls_mut().directory = driver::load_directory(&state.store).await?;
    driver::end_orphans(&state).await;
    metrics::gauge!("switchboard_sip_registrations").set(0.0);

    let udp = Arc::new(udp);
    let connections: transport::Connections = Arc::new(Mutex::new(HashMap::new()));
    let table = Arc::new(RwLock::new(BindingTable::new()));
    let (commands, rx) = mpsc::channel(ENGINE_QUEUE);
    let (notices_tx, notices) = mpsc::unbounded_channel();
    let (voice_tx, voice_events) = mpsc::unbounded_channel();
    state.bus.set_voice_sink(voice_tx);
    let agents = Arc::new(RwLock::new(agents));
    let tasks = vec![
        tokio::spawn(transport::engine_loop(
            core,
            state.clock.clone(),
            rx,
            udp.clone(),
            connections.clone(),
            table.clone(),
            notices_tx,
            anchor,
            media_events,
        )),
        tokio::spawn(driver::notices_loop(
            state.clone(),
            notices,
            commands.clone(),
            ivr_ctx,
        )),
        tokio::spawn(driver::voice_events_loop(
            voice_events,
            commands.clone(),
            table.clone(),
            agents.clone(),
            state.clock.clone(),
        )),
        tokio::spawn(quality_loop(state.clone(), quality)),
        tokio::spawn(transport::udp_loop(udp, commands.clone())),
        tokio::spawn(transport::tcp_accept_loop(
            tcp,
            commands.clone(),
            connections,
        )),
    ];
    tracing::info!(%local, accounts, "SIP listening on UDP and TCP");
    Ok(VoiceHandle {
        addr: local,
        clock: state.clock.clone(),
        table,
        agents,
        commands,
        tasks,
        recordings,
    })
}

/// Appends each finished call's `call.quality` event to its interaction (whatever its state by
/// then: the call may have ended into wrap-up or been ended already). The reports waiting at
/// a moment share one commit, so a busy server does not queue one fsync per ended call.
async fn quality_loop(state: AppState, mut quality: mpsc::UnboundedReceiver<media::CallQuality>) {
    const BATCH: usize = 256;
    let mut waiting = Vec::with_capacity(BATCH);
    while quality.recv_many(&mut waiting, BATCH).await > 0 {
        let mut changes = Vec::with_capacity(waiting.len());
        for q in waiting.drain(..) {
            let agent = match state.store.interaction(q.tenant, q.interaction).await {
                Ok(Some(it)) => it.agent,
                _ => None,
            };
            changes.push(switchboard_store::Change::Event(
                switchboard_store::NewEvent {
                    tenant: q.tenant,
                    interaction: Some(q.interaction),
                    agent,
                    kind: "call.quality".into(),
                    at: state.clock.wall_ms(),
                    data: q.to_json(),
                },
            ));
        }
        match state.store.commit(&changes).await {
            Ok(events) => {
                for e in events {
                    state.bus.publish(crate::bus::BusEvent::from(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, calls = changes.len(), "cannot record calls' quality")
            }
        }
    }
}

fn local_ip_unspecified(a: SocketAddr) -> bool {
    a.ip().is_unspecified()
}
