//! The per-tenant engine driver: one tokio task owns the tenant's [`Router`] and its open
//! interactions, so every change of an interaction's state goes through one place in order.
//!
//! The loop: take a command (from an API handler) or wake at the router's deadline; check the
//! command against the current state; tell the router; collect the router's outputs into store
//! changes and events; commit them in one transaction (durable before any reply, DESIGN rule 3);
//! then publish the events on the bus and reply.
//!
//! On start the engine rebuilds the router from the store: queues, agents, connected
//! interactions (their capacity), then queued and offered ones (offered ones go back to the
//! queue) in their original order, so a crash loses nothing that was acknowledged.

use crate::bus::{Bus, BusEvent};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::shapes::{AgentSkill, CapacityBody, QueueConfig, agent_spec};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use switchboard_model::{
    AgentId, Channel, CustomerId, FlowId, InteractionId, InteractionState, MonoTime, Presence,
    QueueId, Sensitive, TenantId,
};
use switchboard_routing::{
    Arrival, Input, Output, QueueStats, Router, RouterConfig, WithdrawReason,
};
use switchboard_store::{AgentRecord, Change, Interaction, NewEvent, Store};
use tokio::sync::{mpsc, oneshot};

/// A reply channel.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// What an API handler asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Create an interaction (a task from the API, a chat from the widget) in a queue.
    Create {
        /// Its channel.
        channel: Channel,
        /// The queue.
        queue: QueueId,
        /// Subject line.
        subject: Option<String>,
        /// Customer.
        customer: Option<CustomerId>,
        /// Attributes (JSON object).
        attributes: Value,
        /// Priority; `None` takes the queue's.
        priority: Option<i32>,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// Create an interaction that runs a flow first (state `flow`, in no queue yet).
    Open {
        /// Its channel.
        channel: Channel,
        /// Subject line.
        subject: Option<String>,
        /// Customer.
        customer: Option<CustomerId>,
        /// Attributes (JSON object).
        attributes: Value,
        /// The flow and the version it runs (logged as `flow.started`).
        flow: (FlowId, i64),
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// A step of an interaction's flow: logged, and for `Queue`/`End` acted on.
    Flow {
        /// Interaction.
        id: InteractionId,
        /// The step.
        step: FlowStep,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// Where a waiting interaction stands: position (1 = next) and estimated wait.
    Position {
        /// Interaction.
        id: InteractionId,
        /// Reply (`None` when it is not waiting).
        reply: oneshot::Sender<Option<(usize, Duration)>>,
    },
    /// The customer left (hung up, closed the chat): abandoned while waiting; noted while
    /// connected (the agent still ends it with a disposition).
    CustomerLeft {
        /// Interaction.
        id: InteractionId,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// An agent accepts its offer.
    Accept {
        /// Interaction.
        id: InteractionId,
        /// The caller's agent.
        agent: AgentId,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// An agent rejects its offer.
    Reject {
        /// Interaction.
        id: InteractionId,
        /// The caller's agent.
        agent: AgentId,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// End an interaction with a disposition.
    End {
        /// Interaction.
        id: InteractionId,
        /// The caller's agent; `None` for a supervisor acting on anyone's.
        by_agent: Option<AgentId>,
        /// Outcome code.
        disposition: String,
        /// Notes.
        notes: Option<String>,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// A call's phone leg failed to take the offer (busy, declined, no answer, no phone): the
    /// call goes back to the head of the queue and the agent to break `missed_offer`.
    OfferFailed {
        /// Interaction.
        id: InteractionId,
        /// The agent it was offered to.
        agent: AgentId,
        /// The SIP status that ended it.
        status: u16,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// A call ended (BYE from either side): a connected call goes to wrap-up (the disposition
    /// comes through the API), a waiting one is abandoned.
    CallEnded {
        /// Interaction.
        id: InteractionId,
        /// `caller` or `agent`.
        by: &'static str,
        /// Time the caller was held (counted apart from talk time).
        hold: std::time::Duration,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// An outbound call by an agent (click-to-dial): a voice interaction offered to `agent`
    /// alone; its phone rings first, and once it answers the number is dialled.
    Dial {
        /// The agent.
        agent: AgentId,
        /// The number (E.164).
        number: Sensitive<String>,
        /// The customer owning the number.
        customer: Option<CustomerId>,
        /// Attributes (`direction`, `to`, `trunk`).
        attributes: Value,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// Move a connected interaction to another queue or straight to an agent.
    Transfer {
        /// Interaction.
        id: InteractionId,
        /// The caller's agent; `None` for a supervisor.
        by_agent: Option<AgentId>,
        /// Where it goes.
        to: TransferTarget,
        /// Reply.
        reply: Reply<Interaction>,
    },
    /// Set an agent's presence.
    SetPresence {
        /// Agent.
        agent: AgentId,
        /// Presence.
        presence: Presence,
        /// Reason (breaks).
        reason: Option<String>,
        /// Reply.
        reply: Reply<AgentStatus>,
    },
    /// A queue was created or changed (already stored).
    QueueUpserted {
        /// Id.
        id: QueueId,
        /// Name.
        name: String,
        /// Configuration.
        config: QueueConfig,
    },
    /// A queue was deleted (already stored).
    QueueRemoved(QueueId),
    /// An agent was created or changed (already stored).
    AgentUpserted(Box<AgentRecord>),
    /// An agent is to be deleted; the engine refuses while it holds work.
    AgentRemoved {
        /// Agent.
        agent: AgentId,
        /// Reply (Ok: the caller may delete the row).
        reply: Reply<()>,
    },
    /// Interactions moved to another customer (a merge or its undo, already stored): open ones
    /// take the new customer in memory, so later saves keep it.
    CustomerChanged {
        /// The interactions.
        ids: Vec<InteractionId>,
        /// Their customer now.
        customer: CustomerId,
    },
    /// Current figures.
    Snapshot {
        /// Reply.
        reply: oneshot::Sender<Snapshot>,
    },
    /// An agent's live status.
    Status {
        /// Agent.
        agent: AgentId,
        /// Reply.
        reply: oneshot::Sender<Option<AgentStatus>>,
    },
}

/// The attribute holding the skills an interaction needs besides its queue's (set by a flow or
/// given when a task is created): `[{"skill_id", "min_level"}]`, resolved from names.
pub const ROUTING_SKILLS: &str = "routing_skills";

/// An interaction's own skills ([`ROUTING_SKILLS`]); entries that do not parse are skipped.
pub fn own_skills(attributes: &Value) -> Vec<switchboard_model::SkillRequirement> {
    attributes[ROUTING_SKILLS]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    Some(switchboard_model::SkillRequirement {
                        skill: e["skill_id"].as_str()?.parse().ok()?,
                        min_level: u8::try_from(e["min_level"].as_u64().unwrap_or(1))
                            .ok()?
                            .clamp(1, 10),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The [`ROUTING_SKILLS`] value for `skills`.
pub fn routing_skills_json(skills: &[switchboard_model::SkillRequirement]) -> Value {
    Value::Array(
        skills
            .iter()
            .map(|r| json!({"skill_id": r.skill, "min_level": r.min_level}))
            .collect(),
    )
}

/// A step of a flow, told to the engine by the flow's driver (chat_flow, voice).
#[derive(Debug)]
pub enum FlowStep {
    /// Log an event of the flow (e.g. `flow.menu_choice`); the state is unchanged.
    Note {
        /// Event kind.
        kind: String,
        /// Event data.
        data: Value,
    },
    /// The flow hands the interaction (in state `flow`) to a queue.
    Queue {
        /// The queue.
        queue: QueueId,
        /// Priority; `None` takes the queue's.
        priority: Option<i32>,
        /// Attributes set by the flow (merged into the interaction's).
        attributes: Value,
    },
    /// The flow ends the interaction (in state `flow` or waiting in a queue) with `reason` as
    /// its disposition (`out_of_hours`, `follow_up_requested`, ...).
    End {
        /// Why.
        reason: String,
    },
    /// Attributes merged into the interaction (no event), e.g. a voicemail being recorded.
    Attributes(Value),
    /// The caller asked to be called back at `number` (E.164) and is hung up: the interaction
    /// waits as a call back ([`CALLBACK`] attribute), at its place if it was queued already,
    /// else in `queue` as a new arrival. Offered to an agent, it rings the agent's phone and
    /// then dials the number (like click-to-dial).
    Callback {
        /// The queue, for an interaction still in its flow.
        queue: Option<QueueId>,
        /// The number to call.
        number: String,
    },
    /// A voicemail was left (the caller is gone): the interaction (in state `flow`) waits in
    /// `queue` under `subject`, offered to agents like a task (no phone rings).
    Voicemail {
        /// The queue.
        queue: QueueId,
        /// The new subject ("Voicemail from ...").
        subject: String,
        /// Attributes merged in (the [`VOICEMAIL`] attribute).
        attributes: Value,
    },
}

/// The attribute of a call back: `{"number", "requested_at"}`.
pub const CALLBACK: &str = "callback";
/// The attribute of a voicemail: `{"state": "recording" | "left", "recording_id", ...}`.
pub const VOICEMAIL: &str = "voicemail";

/// The number a call back dials, when the interaction is one.
pub fn callback_number(it: &Interaction) -> Option<&str> {
    it.attributes.get(CALLBACK)?.get("number")?.as_str()
}

/// Whether the interaction is a voicemail (being recorded or left): it has no live call.
pub fn is_voicemail(it: &Interaction) -> bool {
    it.attributes.get(VOICEMAIL).is_some_and(|v| v.is_object())
}

/// An agent's presence plus the work it holds.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AgentStatus {
    /// `offline`, `available` or `break`.
    pub state: String,
    /// Reason of a break.
    pub reason: Option<String>,
    /// Since when (RFC 3339).
    pub since: String,
    /// `idle`, `busy` (holding work) or `wrap_up`, for a present agent; `null` when offline.
    pub activity: Option<String>,
    /// Interactions held per channel.
    #[schema(value_type = HashMap<String, u16>)]
    pub load: HashMap<Channel, u16>,
}

/// Per-queue figures for the real-time view.
#[derive(Debug, Clone)]
pub struct QueueSnapshot {
    /// Queue.
    pub id: QueueId,
    /// Name.
    pub name: String,
    /// Configuration.
    pub config: QueueConfig,
    /// Router figures.
    pub stats: QueueStats,
    /// Qualified agents by state (`offline`, `available`, `busy`, `break`).
    pub agents: HashMap<&'static str, usize>,
}

/// A tenant's current figures.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Per queue.
    pub queues: Vec<QueueSnapshot>,
    /// All agents by state.
    pub agents: HashMap<&'static str, usize>,
}

struct AgentInfo {
    skills: Vec<AgentSkill>,
    presence: Presence,
    reason: Option<String>,
    since: i64,
}

/// Most commands written in one transaction.
const MAX_BATCH: usize = 256;

/// A reply waiting for its batch to be stored.
enum Deferred {
    Interaction(Reply<Interaction>, Result<InteractionId, ApiError>),
    Status(Reply<AgentStatus>, Result<AgentId, ApiError>),
}

/// Where a transfer sends an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// Back to waiting, in this queue.
    Queue(QueueId),
    /// Offered to this agent alone, bypassing the queue. If the agent does not take it, it
    /// waits in its current queue like any other.
    Agent(AgentId),
    /// A call leaves the contact center for this number (E.164), dialled through the
    /// tenant's outbound trunk: the interaction ends (disposition `transferred`).
    Number(Sensitive<String>),
}

/// The engine of one tenant.
pub struct Engine {
    tenant: TenantId,
    store: Store,
    clock: Clock,
    bus: Bus,
    router: Router,
    queues: HashMap<QueueId, (String, QueueConfig)>,
    agents: HashMap<AgentId, AgentInfo>,
    open: HashMap<InteractionId, Interaction>,
    pending: Vec<Change>,
    /// Voice events of the pending changes, sent once they are stored.
    voice_pending: Vec<crate::bus::VoiceEvent>,
    /// Replies waiting for the batch's commit.
    deferred: Vec<Deferred>,
    /// Lengths of `pending` and `voice_pending` when the current command began.
    mark: (usize, usize),
    now: MonoTime,
    now_ms: i64,
    /// A commit failed after the router moved on: memory is ahead of the store, and the engine
    /// reloads from the store before it does anything else.
    stale: bool,
    /// Interactions offered straight to an agent by a transfer: the router counts them as held
    /// by that agent from the offer on (`InteractionRestored`), not as offers of a queue.
    direct: std::collections::HashSet<InteractionId>,
    /// When each transfer's direct offer lapses (the queue's offer timeout), with the agent it
    /// was offered to: the router does not time these out, the engine does.
    direct_until: HashMap<InteractionId, (MonoTime, AgentId)>,
}

fn in_state(it: &Interaction, want: InteractionState, what: &str) -> Result<(), ApiError> {
    if it.state == want {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "wrong_state",
            format!("cannot {what}: the interaction is {}", it.state.as_str()),
        ))
    }
}

/// Answers a command with 503 while the engine cannot reach its store.
fn refuse(cmd: Command) {
    let e = || ApiError::unavailable("the store is not answering; try again shortly");
    match cmd {
        Command::Create { reply, .. }
        | Command::Open { reply, .. }
        | Command::Flow { reply, .. }
        | Command::CustomerLeft { reply, .. }
        | Command::Accept { reply, .. }
        | Command::Reject { reply, .. }
        | Command::End { reply, .. }
        | Command::OfferFailed { reply, .. }
        | Command::CallEnded { reply, .. }
        | Command::Transfer { reply, .. }
        | Command::Dial { reply, .. } => {
            let _ = reply.send(Err(e()));
        }
        Command::SetPresence { reply, .. } => {
            let _ = reply.send(Err(e()));
        }
        Command::AgentRemoved { reply, .. } => {
            let _ = reply.send(Err(e()));
        }
        Command::Snapshot { reply } => {
            let _ = reply.send(Snapshot::default());
        }
        Command::Status { reply, .. } => {
            let _ = reply.send(None);
        }
        Command::Position { reply, .. } => {
            let _ = reply.send(None);
        }
        // Configuration is already stored; the reload that ends the outage picks it up.
        Command::QueueUpserted { .. }
        | Command::QueueRemoved(_)
        | Command::AgentUpserted(_)
        | Command::CustomerChanged { .. } => {}
    }
}

fn gauge(state: InteractionState, channel: Channel, delta: f64) {
    if state != InteractionState::Ended {
        metrics::gauge!("switchboard_interactions", "state" => state.as_str(), "channel" => channel.as_str())
            .increment(delta);
    }
}

impl Engine {
    /// Loads a tenant's state from the store and starts its task.
    pub async fn start(
        tenant: TenantId,
        store: Store,
        clock: Clock,
        bus: Bus,
    ) -> anyhow::Result<(mpsc::Sender<Command>, tokio::task::JoinHandle<()>)> {
        let mut e = Engine {
            tenant,
            store,
            clock,
            bus,
            router: Router::new(RouterConfig::default()),
            queues: HashMap::new(),
            agents: HashMap::new(),
            open: HashMap::new(),
            pending: Vec::new(),
            voice_pending: Vec::new(),
            deferred: Vec::new(),
            mark: (0, 0),
            now: MonoTime::ZERO,
            now_ms: 0,
            stale: false,
            direct: Default::default(),
            direct_until: HashMap::new(),
        };
        e.recover().await?;
        let (tx, rx) = mpsc::channel(1024);
        let handle = tokio::spawn(e.run(rx));
        Ok((tx, handle))
    }

    fn tick(&mut self) {
        self.now = self.clock.mono();
        self.now_ms = self.clock.wall_ms();
    }

    async fn recover(&mut self) -> anyhow::Result<()> {
        self.tick();
        for q in self.store.queues(self.tenant).await? {
            let config: QueueConfig = serde_json::from_value(q.config)?;
            self.router
                .handle_input(self.now, Input::QueueUpserted(config.spec(q.id)));
            self.queues.insert(q.id, (q.name, config));
        }
        for a in self.store.agents(self.tenant).await? {
            self.load_agent(&a)?;
        }
        let open = self.store.open_interactions(self.tenant).await?;
        let mut arrivals = Vec::new();
        for mut it in open {
            gauge(it.state, it.channel, 1.0);
            match it.state {
                InteractionState::Connected | InteractionState::WrapUp => {
                    if let Some(agent) = it.agent {
                        self.router.handle_input(
                            self.now,
                            Input::InteractionRestored {
                                interaction: it.id,
                                agent,
                                channel: it.channel,
                            },
                        );
                        if it.state == InteractionState::WrapUp {
                            let wrap = self.wrap_up_of(it.queue);
                            let done = Duration::from_millis(
                                (self.now_ms - it.ended_at.unwrap_or(self.now_ms)).max(0) as u64,
                            );
                            self.router.handle_input(
                                self.now,
                                Input::InteractionCompleted {
                                    interaction: it.id,
                                    wrap_up: wrap.saturating_sub(done),
                                },
                            );
                        }
                    }
                    self.open.insert(it.id, it);
                }
                InteractionState::Offered | InteractionState::Queued => {
                    if it.state == InteractionState::Offered {
                        let agent = it.agent.take();
                        self.set_state(&mut it, InteractionState::Queued);
                        self.event(
                            &it,
                            "interaction.requeued",
                            agent,
                            json!({"reason": "restart", "agent_id": agent}),
                        );
                        self.pending.push(Change::Interaction(it.clone()));
                    }
                    arrivals.push(it.id);
                    self.open.insert(it.id, it);
                }
                InteractionState::Flow | InteractionState::Ended => {
                    self.open.insert(it.id, it);
                }
            }
        }
        let available: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| a.presence == Presence::Available)
            .map(|(id, _)| *id)
            .collect();
        for agent in available {
            self.router.handle_input(
                self.now,
                Input::AgentPresence {
                    agent,
                    available: true,
                },
            );
        }
        for id in arrivals {
            let it = &self.open[&id];
            let Some(queue) = it.queue else { continue };
            let since = it.waiting_since.unwrap_or(it.created_at);
            let arrival = Arrival {
                id,
                queue,
                channel: it.channel,
                priority: Some(it.priority),
                waiting_since: Some(self.clock.mono_at_wall(since)),
                skills: own_skills(&it.attributes),
            };
            self.router
                .handle_input(self.now, Input::InteractionArrived(arrival));
        }
        // Estimated-wait outputs of the replayed arrivals are not news; offers are.
        self.drain(false);
        self.flush().await?;
        Ok(())
    }

    fn load_agent(&mut self, a: &AgentRecord) -> anyhow::Result<()> {
        let skills: Vec<AgentSkill> = serde_json::from_value(a.skills.clone())?;
        let capacity: CapacityBody = serde_json::from_value(a.capacity.clone())?;
        self.router.handle_input(
            self.now,
            Input::AgentUpserted(agent_spec(a.id, &skills, &capacity)),
        );
        let prev = self.agents.insert(
            a.id,
            AgentInfo {
                skills,
                presence: a.presence,
                reason: a.presence_reason.clone(),
                since: a.presence_since,
            },
        );
        if let Some(prev) = prev {
            // An update keeps the live presence.
            let info = self.agents.get_mut(&a.id).expect("just inserted");
            info.presence = prev.presence;
            info.reason = prev.reason;
            info.since = prev.since;
        }
        Ok(())
    }

    /// How long an offer of `queue`'s waits for the agent (the queue's default without one).
    fn offer_timeout_of(&self, queue: Option<QueueId>) -> Duration {
        let secs = queue
            .and_then(|q| self.queues.get(&q))
            .map(|(_, c)| c.offer_timeout_s)
            .unwrap_or_else(|| crate::shapes::QueueConfig::default().offer_timeout_s);
        Duration::from_secs(secs)
    }

    /// The earliest deadline of a transfer's direct offer still pending.
    fn next_direct_deadline(&self) -> Option<MonoTime> {
        self.direct_until.values().map(|(t, _)| *t).min()
    }

    /// Direct offers whose agent let the offer time out: the interaction goes back to its queue
    /// (the phone stops ringing), and the agent, whom the router did not choose, stays as it was.
    fn expire_direct_offers(&mut self) {
        let now = self.now;
        let due: Vec<(InteractionId, AgentId)> = self
            .direct_until
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(id, (_, a))| (*id, *a))
            .collect();
        for (id, agent) in due {
            self.direct_until.remove(&id);
            let Some(mut it) = self.open.get(&id).cloned() else {
                continue;
            };
            if it.state != InteractionState::Offered
                || it.agent != Some(agent)
                || !self.direct.contains(&id)
            {
                continue;
            }
            metrics::counter!("switchboard_routing_decisions_total", "decision" => "expired")
                .increment(1);
            self.release_direct(&mut it, agent);
            self.event(
                &it,
                "interaction.offer_expired",
                Some(agent),
                json!({"agent_id": agent, "transfer": true}),
            );
            let queue = it.queue;
            self.event(&it, "interaction.queued", None, json!({"queue_id": queue}));
            self.save(it);
        }
    }

    /// A transfer's direct offer the agent did not take (its phone refused, or it lapsed):
    /// `agent` lets it go and it waits in its queue again as a new arrival.
    fn release_direct(&mut self, it: &mut Interaction, agent: AgentId) {
        self.hand_back(it, agent);
        self.set_state(it, InteractionState::Queued);
        it.agent = None;
        it.waiting_since = Some(self.now_ms);
    }

    fn wrap_up_of(&self, queue: Option<QueueId>) -> Duration {
        queue
            .and_then(|q| self.queues.get(&q))
            .map(|(_, c)| Duration::from_secs(c.wrap_up_s))
            .unwrap_or_default()
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let deadline = match (self.router.poll_timeout(), self.next_direct_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(self.clock.tokio_instant(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(mut cmd) = cmd else { break };
                    if self.stale {
                        self.resync().await;
                    }
                    if self.stale {
                        refuse(cmd);
                        continue;
                    }
                    self.tick();
                    let started = self.now;
                    // Group commit: the commands already waiting join this one's transaction.
                    let mut n = 0;
                    loop {
                        self.mark = (self.pending.len(), self.voice_pending.len());
                        self.handle(cmd).await;
                        n += 1;
                        if n >= MAX_BATCH || self.stale {
                            break;
                        }
                        match rx.try_recv() {
                            Ok(next) => cmd = next,
                            Err(_) => break,
                        }
                    }
                    self.end_batch().await;
                    metrics::histogram!("switchboard_engine_batch_size").record(n as f64);
                    metrics::histogram!("switchboard_engine_command_seconds")
                        .record((self.clock.mono() - started).as_secs_f64());
                }
                _ = sleep => {
                    self.tick();
                    self.router.handle_timeout(self.now);
                    self.expire_direct_offers();
                    self.drain(true);
                    if let Err(e) = self.flush().await {
                        tracing::error!(tenant = %self.tenant, error = %e, "could not store timer outcomes");
                        self.stale = true;
                    }
                }
            }
        }
        tracing::debug!(tenant = %self.tenant, "engine stopped");
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Create {
                channel,
                queue,
                subject,
                customer,
                attributes,
                priority,
                reply,
            } => {
                let r = self.create(channel, queue, subject, customer, attributes, priority);
                self.defer(r, reply);
            }
            Command::CustomerChanged { ids, customer } => {
                // Saved again too: a save between the merge's commit and this command wrote the
                // old customer back.
                for id in ids {
                    if let Some(mut it) = self.open.get(&id).cloned() {
                        it.customer = Some(customer);
                        self.save(it);
                    }
                }
                if let Err(e) = self.flush().await {
                    tracing::error!(tenant = %self.tenant, error = %e, "could not store a customer change");
                    self.stale = true;
                }
            }
            Command::Open {
                channel,
                subject,
                customer,
                attributes,
                flow,
                reply,
            } => {
                let r = self.open_in_flow(channel, subject, customer, attributes, flow);
                self.defer(r, reply);
            }
            Command::Flow { id, step, reply } => {
                let r = self.flow_step(id, step);
                self.defer(r.map(|_| id), reply);
            }
            Command::Position { id, reply } => {
                self.end_batch().await;
                let _ = reply.send(self.position(id));
            }
            Command::CustomerLeft { id, reply } => {
                let r = self.customer_left(id);
                self.defer(r.map(|_| id), reply);
            }
            Command::Accept { id, agent, reply } => {
                let r = self.accept(id, agent);
                self.defer(r.map(|_| id), reply);
            }
            Command::Reject { id, agent, reply } => {
                let r = self.reject(id, agent);
                self.defer(r.map(|_| id), reply);
            }
            Command::End {
                id,
                by_agent,
                disposition,
                notes,
                reply,
            } => {
                let r = self.end(id, by_agent, disposition, notes);
                self.defer(r.map(|_| id), reply);
            }
            Command::OfferFailed {
                id,
                agent,
                status,
                reply,
            } => {
                let r = self.offer_failed(id, agent, status);
                self.defer(r.map(|_| id), reply);
            }
            Command::CallEnded {
                id,
                by,
                hold,
                reply,
            } => {
                let r = self.call_ended(id, by, hold);
                self.defer(r.map(|_| id), reply);
            }
            Command::Dial {
                agent,
                number,
                customer,
                attributes,
                reply,
            } => {
                let r = self.dial(agent, number, customer, attributes);
                self.defer(r, reply);
            }
            Command::Transfer {
                id,
                by_agent,
                to,
                reply,
            } => {
                let r = match to {
                    TransferTarget::Queue(queue) => self.transfer(id, by_agent, queue),
                    TransferTarget::Agent(agent) => self.transfer_to_agent(id, by_agent, agent),
                    TransferTarget::Number(number) => self.transfer_out(id, by_agent, number),
                };
                self.defer(r.map(|_| id), reply);
            }
            Command::SetPresence {
                agent,
                presence,
                reason,
                reply,
            } => {
                let r = self.set_presence(agent, presence, reason);
                self.deferred
                    .push(Deferred::Status(reply, r.map(|()| agent)));
            }
            Command::QueueUpserted { id, name, config } => {
                self.router
                    .handle_input(self.now, Input::QueueUpserted(config.spec(id)));
                self.queues.insert(id, (name, config));
                self.settle().await;
            }
            Command::QueueRemoved(id) => {
                self.router.handle_input(self.now, Input::QueueRemoved(id));
                self.queues.remove(&id);
                self.settle().await;
            }
            Command::AgentUpserted(a) => {
                let was_known = self.agents.contains_key(&a.id);
                if let Err(e) = self.load_agent(&a) {
                    tracing::error!(agent = %a.id, error = %e, "bad agent record");
                }
                if !was_known && a.presence == Presence::Available {
                    self.router.handle_input(
                        self.now,
                        Input::AgentPresence {
                            agent: a.id,
                            available: true,
                        },
                    );
                }
                self.settle().await;
            }
            Command::AgentRemoved { agent, reply } => {
                let holds = self
                    .open
                    .values()
                    .any(|it| it.agent == Some(agent) && it.state != InteractionState::Queued);
                if holds {
                    let _ = reply.send(Err(ApiError::conflict(
                        "agent_busy",
                        "the agent holds interactions; end or transfer them first",
                    )));
                } else {
                    self.router
                        .handle_input(self.now, Input::AgentRemoved(agent));
                    self.agents.remove(&agent);
                    self.settle().await;
                    let _ = reply.send(Ok(()));
                }
            }
            // Reads see only what is stored: the batch so far is committed first.
            Command::Snapshot { reply } => {
                self.end_batch().await;
                let _ = reply.send(self.snapshot());
            }
            Command::Status { agent, reply } => {
                self.end_batch().await;
                let _ = reply.send(self.status(agent));
            }
        }
    }

    /// Throws away the in-memory state and rebuilds it from the store (after a failed commit).
    async fn resync(&mut self) {
        tracing::warn!(tenant = %self.tenant, "reloading routing state from the store after a failed commit");
        for it in self.open.values() {
            gauge(it.state, it.channel, -1.0);
        }
        self.router = Router::new(RouterConfig::default());
        self.queues.clear();
        self.agents.clear();
        self.open.clear();
        self.direct.clear();
        self.direct_until.clear();
        self.pending.clear();
        self.voice_pending.clear();
        match self.recover().await {
            Ok(()) => self.stale = false,
            Err(e) => {
                tracing::error!(tenant = %self.tenant, error = %e, "reload failed; will retry")
            }
        }
    }

    /// Drains the router, commits, and logs a failure (for changes nobody waits on).
    async fn settle(&mut self) {
        self.drain(true);
        if let Err(e) = self.flush().await {
            tracing::error!(tenant = %self.tenant, error = %e, "could not store routing outcomes");
            self.stale = true;
        }
    }

    /// Answers `reply` once the batch is stored (group commit: every command that arrived
    /// together is written in one transaction, then all are answered). A failed command's own
    /// changes are dropped at once.
    fn defer(&mut self, r: Result<InteractionId, ApiError>, reply: Reply<Interaction>) {
        if r.is_err() {
            self.pending.truncate(self.mark.0);
            self.voice_pending.truncate(self.mark.1);
        }
        self.deferred.push(Deferred::Interaction(reply, r));
    }

    /// Drains the router, commits the batch in one transaction, and answers every command of
    /// it: with the current state when stored, with the error when the commit failed.
    async fn end_batch(&mut self) {
        self.drain(true);
        let stored = match self.flush().await {
            Ok(()) if !self.stale => Ok(()),
            Ok(()) => Err("an earlier commit of this batch failed".to_owned()),
            Err(e) => {
                self.stale = true;
                tracing::error!(tenant = %self.tenant, error = %e, "could not store a batch of commands");
                Err(e.to_string())
            }
        };
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Deferred::Interaction(reply, r) => {
                    let out = match (r, &stored) {
                        (Err(e), _) => Err(e),
                        (Ok(_), Err(e)) => Err(ApiError::internal(e)),
                        (Ok(id), Ok(())) => self.current(id).await,
                    };
                    let _ = reply.send(out);
                }
                Deferred::Status(reply, r) => {
                    let out = match (r, &stored) {
                        (Err(e), _) => Err(e),
                        (Ok(_), Err(e)) => Err(ApiError::internal(e)),
                        (Ok(agent), Ok(())) => self
                            .status(agent)
                            .ok_or_else(|| ApiError::not_found("agent")),
                    };
                    let _ = reply.send(out);
                }
            }
        }
    }

    async fn current(&self, id: InteractionId) -> Result<Interaction, ApiError> {
        match self.open.get(&id) {
            Some(it) => Ok(it.clone()),
            None => self
                .store
                .interaction(self.tenant, id)
                .await?
                .ok_or_else(|| ApiError::not_found("interaction")),
        }
    }

    fn create(
        &mut self,
        channel: Channel,
        queue: QueueId,
        subject: Option<String>,
        customer: Option<CustomerId>,
        attributes: Value,
        priority: Option<i32>,
    ) -> Result<InteractionId, ApiError> {
        let Some((_, config)) = self.queues.get(&queue) else {
            return Err(ApiError::unprocessable(
                "unknown_queue",
                format!("no queue {queue} in this tenant"),
            ));
        };
        let priority = priority.unwrap_or(config.priority);
        let mut it = Interaction {
            queue: Some(queue),
            priority,
            waiting_since: Some(self.now_ms),
            ..self.new_interaction(
                channel,
                InteractionState::Queued,
                subject,
                customer,
                attributes,
            )
        };
        self.event(
            &it,
            "interaction.created",
            None,
            json!({
                "channel": it.channel, "queue_id": queue, "priority": priority,
                "subject": it.subject, "customer_id": it.customer,
            }),
        );
        self.event(&it, "interaction.queued", None, json!({"queue_id": queue}));
        self.pending.push(Change::Interaction(it.clone()));
        // Durable before acknowledged: the creation and the router's first outcome are committed
        // together with the batch before the reply (a failed commit reloads the router).
        metrics::counter!("switchboard_interactions_created_total", "channel" => it.channel.as_str()).increment(1);
        gauge(it.state, it.channel, 1.0);
        it.updated_at = self.now_ms;
        let id = it.id;
        let skills = own_skills(&it.attributes);
        self.open.insert(id, it);
        self.router.handle_input(
            self.now,
            Input::InteractionArrived(Arrival {
                id,
                queue,
                channel,
                priority: Some(priority),
                waiting_since: None,
                skills,
            }),
        );
        Ok(id)
    }

    /// Click-to-dial: the interaction starts offered to `agent` alone, in no queue (counted
    /// against the agent like a transfer to it). Its phone's answer accepts it; if the phone
    /// does not answer, or the number does not, it ends.
    fn dial(
        &mut self,
        agent: AgentId,
        number: Sensitive<String>,
        customer: Option<CustomerId>,
        attributes: Value,
    ) -> Result<InteractionId, ApiError> {
        let Some(info) = self.agents.get(&agent) else {
            return Err(ApiError::unprocessable(
                "unknown_agent",
                format!("no agent {agent} in this tenant"),
            ));
        };
        let busy = self.router.agent_load(agent, Channel::Voice).unwrap_or(0) > 0;
        if matches!(info.presence, Presence::Offline) || busy {
            return Err(ApiError::conflict(
                "agent_unavailable",
                "the agent is offline or already on a call",
            ));
        }
        let mut it = Interaction {
            agent: Some(agent),
            offered_at: Some(self.now_ms),
            ..self.new_interaction(
                Channel::Voice,
                InteractionState::Offered,
                Some("Outbound call".into()),
                customer,
                attributes,
            )
        };
        self.event(
            &it,
            "interaction.created",
            None,
            json!({
                "channel": it.channel, "queue_id": null, "direction": "outbound",
                "subject": it.subject, "customer_id": it.customer,
            }),
        );
        self.event(
            &it,
            "interaction.offered",
            Some(agent),
            json!({
                "agent_id": agent, "queue_id": null, "expires_at": null, "channel": it.channel,
                "subject": it.subject, "customer_id": it.customer, "direction": "outbound",
                "to_number": number.expose(),
            }),
        );
        self.pending.push(Change::Interaction(it.clone()));
        metrics::counter!("switchboard_interactions_created_total", "channel" => it.channel.as_str()).increment(1);
        gauge(it.state, it.channel, 1.0);
        it.updated_at = self.now_ms;
        let id = it.id;
        self.open.insert(id, it);
        self.router.handle_input(
            self.now,
            Input::InteractionRestored {
                interaction: id,
                agent,
                channel: Channel::Voice,
            },
        );
        self.direct.insert(id);
        Ok(id)
    }

    /// A new interaction record created now, in no queue and with no agent.
    fn new_interaction(
        &self,
        channel: Channel,
        state: InteractionState,
        subject: Option<String>,
        customer: Option<CustomerId>,
        attributes: Value,
    ) -> Interaction {
        Interaction {
            id: InteractionId::from_uuid(self.clock.new_uuid()),
            tenant: self.tenant,
            channel,
            state,
            queue: None,
            priority: 0,
            subject,
            customer,
            attributes,
            agent: None,
            disposition: None,
            notes: None,
            created_at: self.now_ms,
            waiting_since: None,
            offered_at: None,
            answered_at: None,
            ended_at: None,
            updated_at: self.now_ms,
        }
    }

    fn open_in_flow(
        &mut self,
        channel: Channel,
        subject: Option<String>,
        customer: Option<CustomerId>,
        attributes: Value,
        (flow, version): (FlowId, i64),
    ) -> Result<InteractionId, ApiError> {
        let it = self.new_interaction(
            channel,
            InteractionState::Flow,
            subject,
            customer,
            attributes,
        );
        self.event(
            &it,
            "interaction.created",
            None,
            json!({
                "channel": it.channel, "queue_id": null, "priority": it.priority,
                "subject": it.subject, "customer_id": it.customer,
            }),
        );
        self.event(
            &it,
            "flow.started",
            None,
            json!({"flow_id": flow, "version": version}),
        );
        self.save(it.clone());
        // Durable before acknowledged: the reply waits for the batch's commit.
        metrics::counter!("switchboard_interactions_created_total", "channel" => it.channel.as_str()).increment(1);
        gauge(it.state, it.channel, 1.0);
        Ok(it.id)
    }

    fn flow_step(&mut self, id: InteractionId, step: FlowStep) -> Result<(), ApiError> {
        let mut it = self.get_open(id)?;
        match step {
            FlowStep::Note { kind, data } => {
                self.event(&it, &kind, None, data);
            }
            FlowStep::Queue {
                queue,
                priority,
                attributes,
            } => {
                self.enqueue(it, queue, priority, attributes)?;
            }
            FlowStep::Attributes(attributes) => {
                if let (Value::Object(have), Value::Object(add)) = (&mut it.attributes, attributes)
                {
                    have.extend(add);
                }
                self.save(it);
            }
            FlowStep::Callback { queue, number } => {
                // Not once offered: the agent's phone rings with the call already.
                let queued = it.state == InteractionState::Queued;
                if !queued && it.state != InteractionState::Flow {
                    return Err(ApiError::conflict(
                        "wrong_state",
                        "only a waiting call or one in its flow can become a call back",
                    ));
                }
                let queue = it.queue.or(queue);
                let mark =
                    json!({"number": number, "requested_at": crate::clock::rfc3339(self.now_ms)});
                if let Value::Object(have) = &mut it.attributes {
                    have.insert(CALLBACK.into(), mark);
                }
                self.event(
                    &it,
                    "interaction.callback_requested",
                    None,
                    json!({"number": number, "queue_id": queue}),
                );
                if queued {
                    // It keeps its place (same waiting_since, same position in the router).
                    self.save(it);
                } else {
                    let Some(queue) = queue else {
                        return Err(ApiError::unprocessable(
                            "unknown_queue",
                            "a call back needs a queue",
                        ));
                    };
                    self.enqueue(it, queue, None, json!({}))?;
                }
            }
            FlowStep::Voicemail {
                queue,
                subject,
                attributes,
            } => {
                it.subject = Some(subject);
                self.enqueue(it, queue, None, attributes)?;
            }
            FlowStep::End { reason } => {
                if !matches!(
                    it.state,
                    InteractionState::Flow | InteractionState::Queued | InteractionState::Offered
                ) {
                    return Err(ApiError::conflict(
                        "wrong_state",
                        format!(
                            "a flow cannot end an interaction that is {}",
                            it.state.as_str()
                        ),
                    ));
                }
                if it.state != InteractionState::Flow {
                    self.withdraw(id);
                }
                let agent = it.agent.take();
                self.set_state(&mut it, InteractionState::Ended);
                it.disposition = Some(reason.clone());
                it.ended_at = Some(self.now_ms);
                metrics::counter!("switchboard_interactions_ended_total", "channel" => it.channel.as_str(), "outcome" => "flow").increment(1);
                self.event(
                    &it,
                    "interaction.ended",
                    agent,
                    json!({"disposition": reason, "by": "flow", "agent_id": agent}),
                );
                self.save(it);
            }
        }
        Ok(())
    }

    /// Hands an interaction in its flow to `queue` (attributes merged in).
    fn enqueue(
        &mut self,
        mut it: Interaction,
        queue: QueueId,
        priority: Option<i32>,
        attributes: Value,
    ) -> Result<(), ApiError> {
        let id = it.id;
        in_state(&it, InteractionState::Flow, "queue")?;
        let Some((_, config)) = self.queues.get(&queue) else {
            return Err(ApiError::unprocessable(
                "unknown_queue",
                format!("no queue {queue} in this tenant"),
            ));
        };
        let priority = priority.unwrap_or(config.priority);
        if let (Value::Object(have), Value::Object(add)) = (&mut it.attributes, attributes) {
            have.extend(add);
        }
        self.set_state(&mut it, InteractionState::Queued);
        it.queue = Some(queue);
        it.priority = priority;
        it.waiting_since = Some(self.now_ms);
        self.event(
            &it,
            "interaction.queued",
            None,
            json!({"queue_id": queue, "priority": priority, "by": "flow"}),
        );
        let arrival = Arrival {
            id,
            queue,
            channel: it.channel,
            priority: Some(priority),
            waiting_since: None,
            skills: own_skills(&it.attributes),
        };
        self.save(it);
        self.router
            .handle_input(self.now, Input::InteractionArrived(arrival));
        Ok(())
    }

    /// Position and estimated wait of a waiting interaction: the queue's estimate for a new
    /// arrival, scaled to the interaction's place in line.
    fn position(&self, id: InteractionId) -> Option<(usize, Duration)> {
        let it = self.open.get(&id)?;
        if it.state != InteractionState::Queued {
            return None;
        }
        let position = self.router.position(id)?;
        let stats = self.router.queue_stats(it.queue?, self.clock.mono())?;
        let line = stats.waiting as u32 + 1;
        let wait = stats.estimated_wait * position as u32 / line.max(1);
        Some((position, wait))
    }

    fn customer_left(&mut self, id: InteractionId) -> Result<(), ApiError> {
        let mut it = self.get_open(id)?;
        match it.state {
            InteractionState::Queued | InteractionState::Offered | InteractionState::Flow => {
                // An interaction still in its flow is in no queue: the router does not know it.
                if it.state != InteractionState::Flow {
                    self.withdraw(id);
                }
                let agent = it.agent.take();
                self.set_state(&mut it, InteractionState::Ended);
                it.disposition = Some("abandoned".into());
                it.ended_at = Some(self.now_ms);
                let wait = it.waiting_since.map(|w| (self.now_ms - w) as f64 / 1000.0);
                metrics::counter!("switchboard_interactions_ended_total", "channel" => it.channel.as_str(), "outcome" => "abandoned").increment(1);
                self.event(
                    &it,
                    "interaction.abandoned",
                    agent,
                    json!({"wait_s": wait, "agent_id": agent}),
                );
                self.save(it);
            }
            InteractionState::Connected => {
                let agent = it.agent;
                self.event(
                    &it,
                    "interaction.customer_left",
                    agent,
                    json!({"agent_id": agent}),
                );
            }
            InteractionState::WrapUp | InteractionState::Ended => {}
        }
        Ok(())
    }

    fn get_open(&self, id: InteractionId) -> Result<Interaction, ApiError> {
        self.open
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::conflict("wrong_state", "the interaction is not open"))
    }

    /// The open interaction `id`, if it is offered to `agent`.
    fn offered_to(
        &self,
        id: InteractionId,
        agent: AgentId,
        what: &str,
    ) -> Result<Interaction, ApiError> {
        let it = self.get_open(id)?;
        in_state(&it, InteractionState::Offered, what)?;
        if it.agent != Some(agent) {
            return Err(ApiError::conflict(
                "not_offered_to_you",
                "this interaction is offered to another agent",
            ));
        }
        Ok(it)
    }

    fn accept(&mut self, id: InteractionId, agent: AgentId) -> Result<(), ApiError> {
        let mut it = self.offered_to(id, agent, "accept")?;
        // A direct offer is already counted against the agent (see `transfer_to_agent`).
        if !self.direct.remove(&id) {
            self.router.handle_input(
                self.now,
                Input::OfferAccepted {
                    interaction: id,
                    agent,
                },
            );
        }
        self.set_state(&mut it, InteractionState::Connected);
        it.answered_at = Some(self.now_ms);
        let wait = it.waiting_since.map(|w| (self.now_ms - w) as f64 / 1000.0);
        let ring = it.offered_at.map(|o| (self.now_ms - o) as f64 / 1000.0);
        self.event(
            &it,
            "interaction.accepted",
            Some(agent),
            json!({"agent_id": agent, "wait_s": wait, "ring_s": ring}),
        );
        self.save(it);
        Ok(())
    }

    fn reject(&mut self, id: InteractionId, agent: AgentId) -> Result<(), ApiError> {
        let mut it = self.offered_to(id, agent, "reject")?;
        if self.is_dial(&it) {
            self.end_dial(it, agent);
            return Ok(());
        }
        self.hand_back(&it, agent);
        metrics::counter!("switchboard_routing_decisions_total", "decision" => "rejected")
            .increment(1);
        self.set_state(&mut it, InteractionState::Queued);
        it.agent = None;
        self.event(
            &it,
            "interaction.offer_rejected",
            Some(agent),
            json!({"agent_id": agent}),
        );
        self.save(it);
        Ok(())
    }

    fn offer_failed(
        &mut self,
        id: InteractionId,
        agent: AgentId,
        status: u16,
    ) -> Result<(), ApiError> {
        let it = self.offered_to(id, agent, "fail")?;
        let reason = match status {
            486 | 600 => "busy",
            603 => "declined",
            408 | 487 => "no_answer",
            480 | 404 => "no_phone",
            _ => "failed",
        };
        metrics::counter!("switchboard_routing_decisions_total", "decision" => "offer_failed")
            .increment(1);
        self.event(
            &it,
            "interaction.offer_failed",
            Some(agent),
            json!({"agent_id": agent, "reason": reason, "sip_status": status}),
        );
        if self.is_dial(&it) {
            self.end_dial(it, agent);
            return Ok(());
        }
        if self.direct.contains(&id) {
            // A transfer the agent's phone did not take: the call waits in its queue, and the
            // agent, who was not chosen by the router, stays as it was.
            let mut it = it;
            self.release_direct(&mut it, agent);
            let queue = it.queue;
            self.event(&it, "interaction.queued", None, json!({"queue_id": queue}));
            self.save(it);
            return Ok(());
        }
        // Going on break hands the offer back to the head of the queue (set_presence).
        self.set_presence(agent, Presence::Break, Some("missed_offer".into()))
    }

    /// Whether `it` is an outbound call still ringing its agent's phone.
    fn is_dial(&self, it: &Interaction) -> bool {
        it.queue.is_none() && self.direct.contains(&it.id)
    }

    /// An outbound call its agent did not take (phone unanswered, rejected, agent left): it
    /// ends, as it has no queue to wait in.
    fn end_dial(&mut self, mut it: Interaction, agent: AgentId) {
        self.hand_back(&it, agent);
        it.agent = None;
        self.set_state(&mut it, InteractionState::Ended);
        it.disposition = Some("not_answered".into());
        it.ended_at = Some(self.now_ms);
        self.event(
            &it,
            "interaction.ended",
            Some(agent),
            json!({"disposition": "not_answered", "by": "agent", "agent_id": agent}),
        );
        self.save(it);
    }

    /// Takes an offered interaction back from `agent`: a queue's offer returns to the head of
    /// its queue; a direct offer is released by the agent and joins its queue.
    fn hand_back(&mut self, it: &Interaction, agent: AgentId) {
        let id = it.id;
        if !self.direct.remove(&id) {
            self.router.handle_input(
                self.now,
                Input::OfferRejected {
                    interaction: id,
                    agent,
                },
            );
            return;
        }
        self.router
            .handle_input(self.now, Input::InteractionReleased(id));
        if let Some(queue) = it.queue {
            self.router.handle_input(
                self.now,
                Input::InteractionArrived(Arrival {
                    id,
                    queue,
                    channel: it.channel,
                    priority: Some(it.priority),
                    waiting_since: None,
                    skills: own_skills(&it.attributes),
                }),
            );
        }
    }

    /// Removes a waiting or offered interaction from the router.
    fn withdraw(&mut self, id: InteractionId) {
        let input = if self.direct.remove(&id) {
            Input::InteractionReleased(id)
        } else {
            Input::InteractionWithdrawn(id)
        };
        self.router.handle_input(self.now, input);
    }

    fn call_ended(
        &mut self,
        id: InteractionId,
        by: &'static str,
        hold: std::time::Duration,
    ) -> Result<(), ApiError> {
        let mut it = self.get_open(id)?;
        match it.state {
            InteractionState::Connected => {
                if by == "number" && callback_number(&it).is_some() {
                    // The customer of a call back was not reached.
                    it.disposition = Some("callback_failed".into());
                }
                let wrap_up = self.wrap_up_of(it.queue);
                self.router.handle_input(
                    self.now,
                    Input::InteractionCompleted {
                        interaction: id,
                        wrap_up,
                    },
                );
                self.set_state(&mut it, InteractionState::WrapUp);
                it.ended_at = Some(self.now_ms);
                // Hold time is counted apart: talk is the connected time without it.
                let hold_s = hold.as_secs_f64();
                let talk = it
                    .answered_at
                    .map(|a| ((self.now_ms - a) as f64 / 1000.0 - hold_s).max(0.0));
                let agent = it.agent;
                self.event(
                    &it,
                    "interaction.call_ended",
                    agent,
                    json!({"agent_id": agent, "by": by, "talk_s": talk, "hold_s": hold_s, "wrap_up_s": wrap_up.as_secs(), "disposition": it.disposition}),
                );
                self.save(it);
                Ok(())
            }
            // A voicemail's caller hanging up ends the recording, not the interaction (the
            // flow's driver queues it); a call back waits without its caller.
            _ if is_voicemail(&it) => Ok(()),
            InteractionState::Queued | InteractionState::Offered
                if callback_number(&it).is_some() =>
            {
                Ok(())
            }
            InteractionState::Queued | InteractionState::Offered | InteractionState::Flow => {
                self.customer_left(id)
            }
            InteractionState::WrapUp | InteractionState::Ended => Ok(()),
        }
    }

    fn end(
        &mut self,
        id: InteractionId,
        by_agent: Option<AgentId>,
        disposition: String,
        notes: Option<String>,
    ) -> Result<(), ApiError> {
        let mut it = self.get_open(id)?;
        if let Some(list) = it
            .queue
            .and_then(|q| self.queues.get(&q))
            .map(|(_, c)| &c.dispositions)
            && !list.is_empty()
            && !list.contains(&disposition)
        {
            return Err(ApiError::unprocessable(
                "unknown_disposition",
                format!(
                    "disposition must be one of the queue's: {}",
                    list.join(", ")
                ),
            ));
        }
        match it.state {
            InteractionState::Connected => {
                if by_agent.is_some() && it.agent != by_agent {
                    return Err(ApiError::forbidden(
                        "only its agent or a supervisor can end this interaction",
                    ));
                }
                let wrap_up = self.wrap_up_of(it.queue);
                self.router.handle_input(
                    self.now,
                    Input::InteractionCompleted {
                        interaction: id,
                        wrap_up,
                    },
                );
                self.set_state(&mut it, InteractionState::WrapUp);
                it.disposition = Some(disposition.clone());
                it.notes = notes.clone();
                it.ended_at = Some(self.now_ms);
                let talk = it.answered_at.map(|a| (self.now_ms - a) as f64 / 1000.0);
                let agent = it.agent;
                self.event(
                    &it,
                    "interaction.completed",
                    agent,
                    json!({
                        "agent_id": agent, "disposition": disposition, "notes": notes,
                        "handle_s": talk, "wrap_up_s": wrap_up.as_secs(),
                    }),
                );
                self.save(it);
                Ok(())
            }
            InteractionState::Queued | InteractionState::Offered | InteractionState::Flow => {
                if by_agent.is_some() {
                    return Err(ApiError::forbidden(
                        "only a supervisor can cancel an interaction that is not connected",
                    ));
                }
                if it.state != InteractionState::Flow {
                    self.withdraw(id);
                }
                let agent = it.agent.take();
                self.set_state(&mut it, InteractionState::Ended);
                it.disposition = Some(disposition.clone());
                it.notes = notes.clone();
                it.ended_at = Some(self.now_ms);
                self.event(
                    &it,
                    "interaction.cancelled",
                    agent,
                    json!({"disposition": disposition, "notes": notes, "agent_id": agent}),
                );
                metrics::counter!("switchboard_interactions_ended_total", "channel" => it.channel.as_str(), "outcome" => "cancelled").increment(1);
                self.save(it);
                Ok(())
            }
            // A call the phones ended is in wrap-up without a disposition: set it now.
            InteractionState::WrapUp if it.disposition.is_none() => {
                if by_agent.is_some() && it.agent != by_agent {
                    return Err(ApiError::forbidden(
                        "only its agent or a supervisor can end this interaction",
                    ));
                }
                it.disposition = Some(disposition.clone());
                it.notes = notes.clone();
                let agent = it.agent;
                self.event(
                    &it,
                    "interaction.disposition_set",
                    agent,
                    json!({"agent_id": agent, "disposition": disposition, "notes": notes}),
                );
                self.save(it);
                Ok(())
            }
            InteractionState::WrapUp | InteractionState::Ended => Err(ApiError::conflict(
                "wrong_state",
                "the interaction has already ended",
            )),
        }
    }

    /// The connected interaction `id`, if `by_agent` (`None`: a supervisor) may transfer it.
    fn transferable(
        &self,
        id: InteractionId,
        by_agent: Option<AgentId>,
    ) -> Result<Interaction, ApiError> {
        let it = self.get_open(id)?;
        in_state(&it, InteractionState::Connected, "transfer")?;
        if by_agent.is_some() && it.agent != by_agent {
            return Err(ApiError::forbidden(
                "only its agent or a supervisor can transfer this interaction",
            ));
        }
        Ok(it)
    }

    fn transfer(
        &mut self,
        id: InteractionId,
        by_agent: Option<AgentId>,
        queue: QueueId,
    ) -> Result<(), ApiError> {
        let mut it = self.transferable(id, by_agent)?;
        if !self.queues.contains_key(&queue) {
            return Err(ApiError::unprocessable(
                "unknown_queue",
                format!("no queue {queue} in this tenant"),
            ));
        }
        self.router
            .handle_input(self.now, Input::InteractionReleased(id));
        let from_agent = it.agent.take();
        let from_queue = it.queue;
        self.set_state(&mut it, InteractionState::Queued);
        it.queue = Some(queue);
        it.waiting_since = Some(self.now_ms);
        it.answered_at = None;
        self.event(
            &it,
            "interaction.transferred",
            from_agent,
            json!({
                "from_agent_id": from_agent, "from_queue_id": from_queue, "to_queue_id": queue,
            }),
        );
        self.event(&it, "interaction.queued", None, json!({"queue_id": queue}));
        let arrival = Arrival {
            id,
            queue,
            channel: it.channel,
            priority: Some(it.priority),
            waiting_since: None,
            skills: own_skills(&it.attributes),
        };
        self.save(it);
        self.router
            .handle_input(self.now, Input::InteractionArrived(arrival));
        Ok(())
    }

    /// A blind transfer of a call to a number outside: the agent is released at once (no
    /// wrap-up) and the interaction ends; the SIP side dials the number.
    fn transfer_out(
        &mut self,
        id: InteractionId,
        by_agent: Option<AgentId>,
        number: Sensitive<String>,
    ) -> Result<(), ApiError> {
        let mut it = self.transferable(id, by_agent)?;
        if it.channel != Channel::Voice {
            return Err(ApiError::unprocessable(
                "voice_only",
                "only a call can be transferred to a number",
            ));
        }
        self.router
            .handle_input(self.now, Input::InteractionReleased(id));
        let from_agent = it.agent.take();
        let queue = it.queue;
        self.set_state(&mut it, InteractionState::Ended);
        it.disposition = Some("transferred".into());
        it.ended_at = Some(self.now_ms);
        metrics::counter!("switchboard_interactions_ended_total", "channel" => it.channel.as_str(), "outcome" => "transferred").increment(1);
        self.event(
            &it,
            "interaction.transferred",
            from_agent,
            json!({"from_agent_id": from_agent, "from_queue_id": queue, "to_number": number.expose()}),
        );
        self.save(it);
        Ok(())
    }

    /// A blind transfer to one agent: the interaction is offered to `agent` alone (its phones
    /// ring for a call). The router counts it against the agent's capacity from now on.
    fn transfer_to_agent(
        &mut self,
        id: InteractionId,
        by_agent: Option<AgentId>,
        agent: AgentId,
    ) -> Result<(), ApiError> {
        let mut it = self.transferable(id, by_agent)?;
        if it.agent == Some(agent) {
            return Err(ApiError::conflict(
                "same_agent",
                "the interaction is already with this agent",
            ));
        }
        let Some(info) = self.agents.get(&agent) else {
            return Err(ApiError::unprocessable(
                "unknown_agent",
                format!("no agent {agent} in this tenant"),
            ));
        };
        // A phone carries one call: a voice transfer needs an agent without one.
        let busy = it.channel == Channel::Voice
            && self.router.agent_load(agent, it.channel).unwrap_or(0) > 0;
        if info.presence != Presence::Available || busy {
            return Err(ApiError::conflict(
                "agent_unavailable",
                "the agent is not available to take it; transfer to a queue instead",
            ));
        }
        self.router
            .handle_input(self.now, Input::InteractionReleased(id));
        self.router.handle_input(
            self.now,
            Input::InteractionRestored {
                interaction: id,
                agent,
                channel: it.channel,
            },
        );
        self.direct.insert(id);
        let timeout = self.offer_timeout_of(it.queue);
        self.direct_until.insert(id, (self.now + timeout, agent));
        let from_agent = it.agent.take();
        let queue = it.queue;
        self.event(
            &it,
            "interaction.transferred",
            from_agent,
            json!({"from_agent_id": from_agent, "from_queue_id": queue, "to_agent_id": agent}),
        );
        self.set_state(&mut it, InteractionState::Offered);
        it.agent = Some(agent);
        it.offered_at = Some(self.now_ms);
        it.answered_at = None;
        self.event(
            &it,
            "interaction.offered",
            Some(agent),
            json!({
                "agent_id": agent, "queue_id": queue,
                "expires_at": crate::clock::rfc3339(self.now_ms + timeout.as_millis() as i64),
                "channel": it.channel,
                "subject": it.subject, "customer_id": it.customer, "transfer": true,
            }),
        );
        self.save(it);
        Ok(())
    }

    fn set_presence(
        &mut self,
        agent: AgentId,
        presence: Presence,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        let info = self
            .agents
            .get_mut(&agent)
            .ok_or_else(|| ApiError::not_found("agent"))?;
        let reason = if presence == Presence::Break {
            reason
        } else {
            None
        };
        info.presence = presence;
        info.reason = reason.clone();
        info.since = self.now_ms;
        self.router.handle_input(
            self.now,
            Input::AgentPresence {
                agent,
                available: presence == Presence::Available,
            },
        );
        self.presence_changed(agent, presence, reason);
        if presence != Presence::Available {
            // An agent who leaves does not sit on offers: they go back to the head of their
            // queues for someone else now, not when the offer times out.
            let pending: Vec<InteractionId> = self
                .open
                .values()
                .filter(|it| it.state == InteractionState::Offered && it.agent == Some(agent))
                .map(|it| it.id)
                .collect();
            for id in pending {
                let Some(mut it) = self.open.get(&id).cloned() else {
                    continue;
                };
                if self.is_dial(&it) {
                    self.end_dial(it, agent);
                    continue;
                }
                self.hand_back(&it, agent);
                metrics::counter!("switchboard_routing_decisions_total", "decision" => "revoked")
                    .increment(1);
                self.set_state(&mut it, InteractionState::Queued);
                it.agent = None;
                self.event(
                    &it,
                    "interaction.offer_revoked",
                    Some(agent),
                    json!({"agent_id": agent, "reason": "agent_unavailable"}),
                );
                self.save(it);
            }
        }
        Ok(())
    }

    fn presence_changed(&mut self, agent: AgentId, presence: Presence, reason: Option<String>) {
        self.pending.push(Change::AgentPresence {
            tenant: self.tenant,
            agent,
            presence,
            reason: reason.clone(),
            since: self.now_ms,
        });
        self.pending.push(Change::Event(NewEvent {
            tenant: self.tenant,
            interaction: None,
            agent: Some(agent),
            kind: "agent.state_changed".into(),
            at: self.now_ms,
            data: json!({"agent_id": agent, "state": presence.as_str(), "reason": reason}),
        }));
    }

    fn status(&self, agent: AgentId) -> Option<AgentStatus> {
        let info = self.agents.get(&agent)?;
        let mut load = HashMap::new();
        for c in Channel::ALL {
            let n = self.router.agent_load(agent, c).unwrap_or(0);
            if n > 0 {
                load.insert(c, n);
            }
        }
        let wrapping = self
            .open
            .values()
            .any(|it| it.agent == Some(agent) && it.state == InteractionState::WrapUp);
        let activity = match info.presence {
            Presence::Offline => None,
            _ if wrapping => Some("wrap_up".to_owned()),
            _ if !load.is_empty() => Some("busy".to_owned()),
            _ => Some("idle".to_owned()),
        };
        Some(AgentStatus {
            state: info.presence.as_str().to_owned(),
            reason: info.reason.clone(),
            since: crate::clock::rfc3339(info.since),
            activity,
            load,
        })
    }

    fn agent_bucket(&self, id: AgentId, info: &AgentInfo) -> &'static str {
        match info.presence {
            Presence::Offline => "offline",
            Presence::Break => "break",
            Presence::Available => {
                let busy = Channel::ALL
                    .iter()
                    .any(|c| self.router.agent_load(id, *c).unwrap_or(0) > 0);
                if busy { "busy" } else { "available" }
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for (id, info) in &self.agents {
            *snap.agents.entry(self.agent_bucket(*id, info)).or_default() += 1;
        }
        let mut queues: Vec<_> = self.queues.iter().collect();
        queues.sort_by(|a, b| a.1.0.cmp(&b.1.0));
        for (qid, (name, config)) in queues {
            let Some(stats) = self.router.queue_stats(*qid, self.clock.mono()) else {
                continue;
            };
            let mut agents: HashMap<&'static str, usize> = HashMap::new();
            for (aid, info) in &self.agents {
                let qualifies = config.required_skills.iter().all(|r| {
                    info.skills
                        .iter()
                        .any(|s| s.skill == r.skill && s.level >= r.min_level)
                });
                if qualifies {
                    *agents.entry(self.agent_bucket(*aid, info)).or_default() += 1;
                }
            }
            snap.queues.push(QueueSnapshot {
                id: *qid,
                name: name.clone(),
                config: config.clone(),
                stats,
                agents,
            });
        }
        snap
    }

    /// Turns the router's outputs into changes. `announce` is false while replaying a restart.
    fn drain(&mut self, announce: bool) {
        while let Some(out) = self.router.poll_output() {
            self.apply(out, announce);
        }
    }

    fn apply(&mut self, out: Output, announce: bool) {
        match out {
            Output::Offer {
                interaction,
                agent,
                queue,
                expires_at,
            } => {
                let Some(mut it) = self.open.get(&interaction).cloned() else {
                    return;
                };
                self.set_state(&mut it, InteractionState::Offered);
                it.agent = Some(agent);
                it.offered_at = Some(self.now_ms);
                let expires = self.now_ms + (expires_at - self.now).as_millis() as i64;
                if let Some(w) = it.waiting_since {
                    metrics::histogram!("switchboard_offer_wait_seconds")
                        .record((self.now_ms - w).max(0) as f64 / 1000.0);
                }
                metrics::counter!("switchboard_routing_decisions_total", "decision" => "offer")
                    .increment(1);
                self.event(&it, "interaction.offered", Some(agent), json!({
                    "agent_id": agent, "queue_id": queue, "expires_at": crate::clock::rfc3339(expires),
                    "channel": it.channel, "subject": it.subject, "customer_id": it.customer,
                }));
                self.save(it);
            }
            Output::OfferExpired { interaction, agent } => {
                metrics::counter!("switchboard_routing_decisions_total", "decision" => "expired")
                    .increment(1);
                if let Some(mut it) = self.open.get(&interaction).cloned() {
                    self.set_state(&mut it, InteractionState::Queued);
                    it.agent = None;
                    self.event(
                        &it,
                        "interaction.offer_expired",
                        Some(agent),
                        json!({"agent_id": agent}),
                    );
                    self.save(it);
                }
                // Only a present agent is put on break; one who already left stays as it chose.
                let reason = Some("missed_offer".to_owned());
                if let Some(info) = self.agents.get_mut(&agent)
                    && info.presence == Presence::Available
                {
                    info.presence = Presence::Break;
                    info.reason = reason.clone();
                    info.since = self.now_ms;
                    self.presence_changed(agent, Presence::Break, reason);
                }
            }
            Output::Overflowed {
                interaction,
                from,
                to,
                rule,
            } => {
                // Replaying a restart re-fires skills steps that fired before the crash: not news.
                if !announce && from == to {
                    return;
                }
                metrics::counter!("switchboard_routing_decisions_total", "decision" => "overflow")
                    .increment(1);
                let Some(mut it) = self.open.get(&interaction).cloned() else {
                    return;
                };
                it.queue = Some(to);
                self.event(
                    &it,
                    "interaction.overflowed",
                    None,
                    json!({"from_queue_id": from, "to_queue_id": to, "rule": rule}),
                );
                self.save(it);
            }
            Output::EstimatedWait {
                interaction,
                queue,
                position,
                wait,
            } => {
                if !announce {
                    return;
                }
                let Some(it) = self.open.get(&interaction).cloned() else {
                    return;
                };
                self.event(&it, "interaction.estimated_wait", None, json!({
                    "queue_id": queue, "position": position, "wait_s": wait.as_secs_f64().round(),
                }));
            }
            Output::WrapUpFinished { interaction, agent } => {
                let Some(mut it) = self.open.get(&interaction).cloned() else {
                    return;
                };
                self.set_state(&mut it, InteractionState::Ended);
                metrics::counter!("switchboard_interactions_ended_total", "channel" => it.channel.as_str(), "outcome" => "completed").increment(1);
                self.event(
                    &it,
                    "interaction.ended",
                    Some(agent),
                    json!({"agent_id": agent, "disposition": it.disposition}),
                );
                self.save(it);
            }
            Output::Withdrawn {
                interaction,
                reason,
            } => {
                let Some(mut it) = self.open.get(&interaction).cloned() else {
                    return;
                };
                let agent = it.agent.take();
                self.set_state(&mut it, InteractionState::Ended);
                it.ended_at = Some(self.now_ms);
                it.disposition = Some("withdrawn".into());
                metrics::counter!("switchboard_interactions_ended_total", "channel" => it.channel.as_str(), "outcome" => "withdrawn").increment(1);
                let reason = match reason {
                    WithdrawReason::NoSuchQueue => "no_such_queue",
                };
                self.event(
                    &it,
                    "interaction.withdrawn",
                    agent,
                    json!({"reason": reason, "agent_id": agent}),
                );
                self.save(it);
            }
            Output::Ignored { input, reason } => {
                metrics::counter!("switchboard_routing_ignored_total").increment(1);
                tracing::warn!(tenant = %self.tenant, input, ?reason, "router ignored an input");
            }
        }
    }

    fn set_state(&self, it: &mut Interaction, state: InteractionState) {
        gauge(it.state, it.channel, -1.0);
        gauge(state, it.channel, 1.0);
        it.state = state;
    }

    fn save(&mut self, mut it: Interaction) {
        it.updated_at = self.now_ms;
        self.pending.push(Change::Interaction(it.clone()));
        if it.state == InteractionState::Ended {
            self.open.remove(&it.id);
        } else {
            self.open.insert(it.id, it);
        }
    }

    fn event(&mut self, it: &Interaction, kind: &str, agent: Option<AgentId>, mut data: Value) {
        if it.channel == Channel::Voice {
            use crate::bus::VoiceEventKind as V;
            let v = match (kind, agent) {
                ("interaction.offered", Some(a)) if data["direction"] == "outbound" => {
                    data["to_number"].as_str().map(|n| V::Dial {
                        agent: a,
                        number: Sensitive::new(n.to_owned()),
                    })
                }
                // A voicemail has no call: it is offered like a task.
                _ if is_voicemail(it) => None,
                // A call back rings the agent, then dials the customer (like click-to-dial).
                ("interaction.offered", Some(a)) if callback_number(it).is_some() => {
                    callback_number(it).map(|n| V::Dial {
                        agent: a,
                        number: Sensitive::new(n.to_owned()),
                    })
                }
                ("interaction.offered", Some(a)) => Some(V::Offered(a)),
                (
                    "interaction.offer_expired"
                    | "interaction.offer_revoked"
                    | "interaction.offer_rejected",
                    Some(a),
                ) => Some(V::OfferEnded(a)),
                ("interaction.transferred", _) => match data["to_number"].as_str() {
                    Some(n) => Some(V::TransferredOut(Sensitive::new(n.to_owned()))),
                    None => Some(V::Requeued),
                },
                (
                    "interaction.completed"
                    | "interaction.cancelled"
                    | "interaction.withdrawn"
                    | "interaction.ended",
                    _,
                ) => Some(V::Ended),
                _ => None,
            };
            if let Some(kind) = v {
                self.voice_pending.push(crate::bus::VoiceEvent {
                    tenant: self.tenant,
                    interaction: it.id,
                    kind,
                });
            }
        }
        if let Value::Object(m) = &mut data {
            m.insert("interaction_id".into(), json!(it.id));
            m.insert("state".into(), json!(it.state.as_str()));
        }
        self.pending.push(Change::Event(NewEvent {
            tenant: self.tenant,
            interaction: Some(it.id),
            agent,
            kind: kind.to_owned(),
            at: self.now_ms,
            data,
        }));
    }

    /// Commits pending changes in one transaction, then publishes their events.
    async fn flush(&mut self) -> Result<(), switchboard_store::StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.pending);
        let voice = std::mem::take(&mut self.voice_pending);
        let events = self.store.commit(&changes).await?;
        for e in events {
            self.bus.publish(BusEvent::from(e));
        }
        for v in voice {
            self.bus.publish_voice(v);
        }
        Ok(())
    }
}
