//! The chat bot: runs a flow (crates/flow) for a web chat before an agent joins.
//!
//! Which flow: the one the widget names (`data-flow`, the `flow` of `hello`), else the tenant's
//! chat flow setting unless the widget pins a queue (`data-queue`), else none (the chat goes
//! straight to its queue as before). The customer's first message opens the interaction in
//! state `flow` (event `flow.started` with flow id and version) and starts the run; the run's
//! texts become messages from `system` (stored, so agents see them in the transcript), menus
//! are also sent to the widget as `menu` frames (buttons), later customer messages are the
//! run's input. A `queue` node queues the interaction through the engine; while it waits the
//! driver feeds the run its position and estimated wait, and the run announces them and makes
//! the long-wait offer. The run stops when an agent accepts or the interaction ends.
//!
//! One task per running flow owns its [`FlowRun`] (sans-IO); this module is its driver. The
//! definition is the version loaded at the start, so saving a new version does not change a
//! running chat.

use crate::bus::BusEvent;
use crate::chat::{NewMessage, post_message};
use crate::engine::{Command, FlowStep};
use crate::error::ApiError;
use crate::state::AppState;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use switchboard_flow::{Context, FlowDef, FlowRun, Input, Now, Output};
use switchboard_model::{
    Channel, CustomerId, FlowId, InteractionId, InteractionState, Sensitive, TenantId,
};
use switchboard_store::Interaction;
use switchboard_store::Sender;
use switchboard_store::flows::{FlowRecord, FollowUpRequest};
use tokio::sync::{mpsc, oneshot};

/// How often a waiting chat's position is checked when the flow asks for no announcements
/// but has a long-wait offer.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The name the bot's messages carry.
const BOT_NAME: &str = "Bot";

enum Msg {
    /// A customer message (the first one starts the run).
    Said(String),
    /// Start the run now (resuming after a restart).
    Start,
    /// The open menu, to show again to a reconnecting customer.
    Menu(oneshot::Sender<Option<Value>>),
}

/// The running chat flows of this process, by interaction.
#[derive(Debug, Default)]
pub struct Runs(Mutex<HashMap<InteractionId, mpsc::UnboundedSender<Msg>>>);

impl Runs {
    fn get(&self, id: InteractionId) -> Option<mpsc::UnboundedSender<Msg>> {
        self.0.lock().ok()?.get(&id).cloned()
    }
    /// Registers the run of `id` unless one is registered already.
    fn claim(&self, id: InteractionId, tx: mpsc::UnboundedSender<Msg>) -> bool {
        match self.0.lock() {
            Ok(mut m) if !m.contains_key(&id) => {
                m.insert(id, tx);
                true
            }
            _ => false,
        }
    }
    fn remove(&self, id: InteractionId) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&id);
        }
    }
}

/// The flow a new chat runs, if any: `flow` named by the widget, else the tenant's chat flow
/// unless the widget pinned a queue.
async fn pick(
    s: &AppState,
    tenant: TenantId,
    flow: Option<&str>,
    queue_pinned: bool,
) -> Result<Option<FlowRecord>, ApiError> {
    if let Some(name) = flow {
        return Ok(s.store.flow_by_name(tenant, name).await?);
    }
    if queue_pinned {
        return Ok(None);
    }
    match s.store.chat_flow(tenant).await? {
        Some(id) => Ok(s.store.flow(tenant, id).await?),
        None => Ok(None),
    }
}

/// Opens a chat that runs a flow: creates the interaction in state `flow` and the run's task
/// (which starts at the first [`customer_said`]). `None` when no flow applies.
pub async fn open(
    s: &AppState,
    tenant: TenantId,
    customer: CustomerId,
    flow: Option<&str>,
    queue_pinned: bool,
    lang: Option<&str>,
    subject: String,
) -> Result<Option<Interaction>, ApiError> {
    let Some(rec) = pick(s, tenant, flow, queue_pinned).await? else {
        return Ok(None);
    };
    let def = match FlowDef::from_json(&rec.definition) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(tenant = %tenant, flow = %rec.id, error = %e, "stored flow does not validate; chat goes to its queue");
            return Ok(None);
        }
    };
    let lang = lang
        .filter(|l| (2..=8).contains(&l.len()))
        .unwrap_or("en")
        .to_owned();
    let it = s
        .ask(tenant, |reply| Command::Open {
            channel: Channel::Chat,
            subject: Some(subject),
            customer: Some(customer),
            attributes: json!({"language": lang}),
            flow: (rec.id, rec.current_version),
            reply,
        })
        .await??;
    spawn(s, it.clone(), rec.id, def, lang);
    Ok(Some(it))
}

/// Starts the task driving the flow of `it`; `None` if one runs already.
fn spawn(
    s: &AppState,
    it: Interaction,
    flow: FlowId,
    def: FlowDef,
    lang: String,
) -> Option<mpsc::UnboundedSender<Msg>> {
    let (tx, rx) = mpsc::unbounded_channel();
    if !s.flow_runs.claim(it.id, tx.clone()) {
        return None;
    }
    let driver = Driver {
        s: s.clone(),
        it,
        flow,
        def,
        lang,
        run: None,
        check_every: None,
        next_check: None,
        done: false,
    };
    tokio::spawn(driver.run(rx));
    Some(tx)
}

/// Hands a customer message to the interaction's flow, if one runs.
pub fn customer_said(s: &AppState, id: InteractionId, text: &str) {
    if let Some(tx) = s.flow_runs.get(id) {
        let _ = tx.send(Msg::Said(text.to_owned()));
    }
}

/// For a customer who (re)connects to a conversation: the `menu` frame its flow waits on, to
/// show again. A chat still in its flow whose run this process does not have (the server
/// restarted) starts its flow again, with the version it started with (event `flow.resumed`).
pub async fn resume(s: &AppState, tenant: TenantId, id: Option<InteractionId>) -> Option<Value> {
    let id = id?;
    if let Some(tx) = s.flow_runs.get(id) {
        let (reply, rx) = oneshot::channel();
        tx.send(Msg::Menu(reply)).ok()?;
        return rx.await.ok().flatten();
    }
    let it = s.store.interaction(tenant, id).await.ok()??;
    if it.state != InteractionState::Flow {
        return None;
    }
    let events = s.store.interaction_events(tenant, id).await.ok()?;
    let started = events.iter().rev().find(|e| e.kind == "flow.started")?;
    let flow: FlowId = started.data["flow_id"].as_str()?.parse().ok()?;
    let version = started.data["version"].as_i64()?;
    let stored = s.store.flow_version(tenant, flow, version).await.ok()??;
    let def = FlowDef::from_json(&stored.definition).ok()?;
    let lang = it.attributes["language"]
        .as_str()
        .unwrap_or("en")
        .to_owned();
    let tx = spawn(s, it, flow, def, lang)?;
    let _ = s
        .ask(tenant, |reply| Command::Flow {
            id,
            step: FlowStep::Note {
                kind: "flow.resumed".into(),
                data: json!({"flow_id": flow, "version": version, "reason": "restart"}),
            },
            reply,
        })
        .await;
    let _ = tx.send(Msg::Start);
    None
}

/// The `menu` frame of a menu output.
fn menu_frame(id: InteractionId, out: &Output) -> Option<Value> {
    let Output::Menu {
        node,
        prompt,
        lang,
        options,
        ..
    } = out
    else {
        return None;
    };
    let options: Vec<Value> = options
        .iter()
        .map(|c| json!({"key": c.key, "label": c.label}))
        .collect();
    Some(json!({
        "type": "menu", "interaction_id": id, "node": node, "prompt": prompt, "lang": lang,
        "options": options,
    }))
}

struct Driver {
    s: AppState,
    it: Interaction,
    flow: FlowId,
    def: FlowDef,
    lang: String,
    run: Option<FlowRun>,
    /// While queued: how often to feed the position.
    check_every: Option<Duration>,
    next_check: Option<tokio::time::Instant>,
    done: bool,
}

impl Driver {
    fn now(&self) -> Now {
        Now {
            mono: self.s.clock.mono(),
            wall: jiff::Timestamp::from_millisecond(self.s.clock.wall_ms())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let id = self.it.id;
        let mut events = self.s.bus.subscribe_conversation(id);
        while !self.done {
            let timer = self
                .run
                .as_ref()
                .and_then(FlowRun::poll_timeout)
                .map(|t| self.s.clock.tokio_instant(t));
            let check = self.next_check;
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => break,
                    Some(Msg::Start) => self.start(),
                    Some(Msg::Said(text)) => {
                        let now = self.now();
                        match &mut self.run {
                            None => self.start(),
                            Some(run) => {
                                run.handle_input(now, Input::Text(text));
                            }
                        }
                    }
                    Some(Msg::Menu(reply)) => {
                        let menu = self.run.as_ref().and_then(FlowRun::open_menu);
                        let _ = reply.send(menu.and_then(|m| menu_frame(id, &m)));
                    }
                },
                _ = sleep_until(timer) => {
                    let now = self.now();
                    if let Some(run) = &mut self.run {
                        run.handle_timeout(now);
                    }
                }
                _ = sleep_until(check) => self.check_position().await,
                ev = events.recv() => match ev {
                    Ok(e) if is_over(&e) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
            self.drain().await;
        }
        self.s.flow_runs.remove(id);
    }

    /// Starts the run (once).
    fn start(&mut self) {
        if self.run.is_some() {
            return;
        }
        let ctx = Context {
            attributes: Map::from_iter([("language".to_owned(), json!(self.lang))]),
            channel: Channel::Chat,
            language: self.lang.clone(),
        };
        self.run = Some(FlowRun::start(self.def.clone(), ctx, self.now()));
    }

    /// Feeds the run the interaction's place in its queue.
    async fn check_position(&mut self) {
        let clock = &self.s.clock;
        self.next_check = self
            .check_every
            .map(|d| clock.tokio_instant(clock.mono() + d));
        let id = self.it.id;
        let pos = self
            .s
            .ask(self.it.tenant, |reply| Command::Position { id, reply })
            .await
            .ok()
            .flatten();
        let now = self.now();
        if let (Some((position, wait)), Some(run)) = (pos, &mut self.run) {
            run.handle_input(now, Input::QueueUpdate { position, wait });
        }
    }

    async fn say(&self, text: String) {
        let m = NewMessage {
            sender: Sender::System,
            author_id: Some(format!("flow:{}", self.flow)),
            author_name: Some(BOT_NAME.to_owned()),
            text,
            internal: false,
            client_id: None,
            attachments: serde_json::json!([]),
        };
        if let Err(e) = post_message(&self.s, &self.it, m).await {
            tracing::warn!(interaction = %self.it.id, error = %e.message, "could not store a bot message");
        }
    }

    async fn step(&mut self, step: FlowStep) -> bool {
        crate::chat_flow::flow_step(&self.s, &mut self.it, step).await
    }

    async fn note(&mut self, kind: &str, data: Value) {
        self.step(FlowStep::Note {
            kind: kind.to_owned(),
            data,
        })
        .await;
    }

    /// Carries out what the run asks for.
    async fn drain(&mut self) {
        loop {
            let Some(out) = self.run.as_mut().and_then(FlowRun::poll_output) else {
                return;
            };
            match out {
                Output::Say { text, .. } => self.say(text).await,
                Output::Menu {
                    ref prompt,
                    ref options,
                    ..
                } => {
                    // The transcript shows the choices too (and typing a number works).
                    let mut text = prompt.clone();
                    for c in options {
                        text.push_str(&format!("\n{}. {}", c.key, c.label));
                    }
                    self.say(text).await;
                    if let Some(frame) = menu_frame(self.it.id, &out) {
                        // Not stored: the message above is the record; this draws buttons.
                        self.s.bus.publish(BusEvent {
                            seq: 0,
                            tenant: self.it.tenant,
                            agent: None,
                            kind: "flow.menu".into(),
                            at: self.s.clock.wall_ms(),
                            data: frame,
                        });
                    }
                }
                Output::Chosen { node, key, label } => {
                    self.note(
                        "flow.menu_choice",
                        json!({"flow_id": self.flow, "node": node, "key": key, "label": label}),
                    )
                    .await;
                }
                Output::Collect { prompt, .. } => {
                    if let Some(p) = prompt {
                        self.say(p).await;
                    }
                }
                Output::HttpRequest(req) => {
                    let id = req.id;
                    let input = match perform(&self.s.messaging.http, req).await {
                        Ok((status, body)) => {
                            self.note("flow.http", json!({"status": status})).await;
                            Input::HttpResponse { id, status, body }
                        }
                        Err(why) => {
                            tracing::warn!(interaction = %self.it.id, why, "flow HTTP lookup failed");
                            self.note("flow.http", json!({"error": why})).await;
                            Input::HttpFailed { id }
                        }
                    };
                    let now = self.now();
                    if let Some(run) = &mut self.run {
                        run.handle_input(now, input);
                    }
                }
                Output::Queue(q) => self.queue(q).await,
                Output::FollowUp { email } => {
                    let r = FollowUpRequest {
                        id: self.s.clock.new_uuid().to_string(),
                        tenant: self.it.tenant,
                        interaction: self.it.id,
                        customer: self.it.customer,
                        channel: "email".into(),
                        address: Sensitive::new(email),
                        created_at: self.s.clock.wall_ms(),
                    };
                    if let Err(e) = self.s.store.record_follow_up(&r).await {
                        tracing::error!(interaction = %self.it.id, error = %e, "could not store a follow-up request");
                    }
                    self.note("flow.follow_up_requested", json!({"channel": "email"}))
                        .await;
                }
                Output::Voicemail { .. } | Output::Callback { .. } => {
                    // Voice only; a chat flow that reaches one just ends.
                    self.note("flow.unsupported", json!({"node": "voicemail/callback"}))
                        .await;
                }
                Output::End { reason } => {
                    if matches!(
                        self.it.state,
                        InteractionState::Flow
                            | InteractionState::Queued
                            | InteractionState::Offered
                    ) {
                        self.step(FlowStep::End { reason }).await;
                    }
                    self.done = true;
                }
                Output::Error { node, message } => {
                    tracing::warn!(interaction = %self.it.id, node, message, "flow error");
                    self.note("flow.error", json!({"node": node, "message": message}))
                        .await;
                }
            }
        }
    }

    async fn queue(&mut self, q: switchboard_flow::QueueRequest) {
        let queues = match self.s.store.queues(self.it.tenant).await {
            Ok(qs) => qs,
            Err(e) => {
                tracing::error!(error = %e, "could not read queues");
                Vec::new()
            }
        };
        let Some(queue) = queues
            .iter()
            .find(|r| r.name == q.queue || r.id.to_string() == q.queue)
        else {
            tracing::warn!(interaction = %self.it.id, "flow names a queue this tenant does not have");
            self.note(
                "flow.error",
                json!({"message": "no such queue", "queue": q.queue}),
            )
            .await;
            self.step(FlowStep::End {
                reason: "flow_error".into(),
            })
            .await;
            self.done = true;
            return;
        };
        let mut attributes = Value::Object(q.attributes);
        if !q.skills.is_empty() {
            attributes["skills"] = json!(q.skills);
            // The router needs an agent with these too: names (or ids) to skills.
            let known = match self.s.store.skills(self.it.tenant).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::error!(error = %e, "could not read skills; routing by the queue's");
                    Vec::new()
                }
            };
            let mut own = Vec::new();
            for name in &q.skills {
                match known
                    .iter()
                    .find(|k| k.name.eq_ignore_ascii_case(name) || k.id.to_string() == *name)
                {
                    Some(k) => own.push(switchboard_model::SkillRequirement {
                        skill: k.id,
                        min_level: 1,
                    }),
                    None => {
                        self.note(
                            "flow.error",
                            json!({"message": "no such skill; routing without it", "skill": name}),
                        )
                        .await;
                    }
                }
            }
            attributes[crate::engine::ROUTING_SKILLS] = crate::engine::routing_skills_json(&own);
        }
        let ok = self
            .step(FlowStep::Queue {
                queue: queue.id,
                priority: q.priority,
                attributes,
            })
            .await;
        if ok && (q.announce_every.is_some() || q.long_wait.is_some()) {
            self.check_every = Some(q.announce_every.unwrap_or(CHECK_EVERY));
            // The first figures at once (a long-wait threshold of 0 offers right away).
            self.next_check = Some(self.s.clock.tokio_instant(self.s.clock.mono()));
        }
    }
}

/// Largest answer of a flow's HTTP lookup that is read.
const MAX_HTTP_BODY: usize = 256 * 1024;

/// Performs a flow's HTTP lookup (a CRM, an order system): the status and body, or why it
/// failed (timeout, connection, an answer too large). Statuses are the flow's to judge.
pub(crate) async fn perform(
    http: &reqwest::Client,
    req: switchboard_flow::HttpRequest,
) -> Result<(u16, String), String> {
    let method = match req.method.as_str() {
        "POST" => reqwest::Method::POST,
        _ => reqwest::Method::GET,
    };
    let mut r = http
        .request(method, &req.url)
        .timeout(req.timeout)
        .header("Accept", "application/json");
    if let Some(body) = req.body {
        r = r.header("Content-Type", "application/json").body(body);
    }
    let mut res = r.send().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "could not connect".to_owned()
        }
    })?;
    let status = res.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|_| "the answer broke off")? {
        if body.len() + chunk.len() > MAX_HTTP_BODY {
            return Err(format!("the answer is larger than {MAX_HTTP_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Whether an event of the conversation ends the bot's part: an agent took it, or it ended.
pub(crate) fn is_over(e: &BusEvent) -> bool {
    matches!(
        e.kind.as_str(),
        "interaction.accepted"
            | "interaction.ended"
            | "interaction.completed"
            | "interaction.cancelled"
            | "interaction.withdrawn"
            | "interaction.abandoned"
    )
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Hands a flow step of `it` (chat or call) to its tenant's engine; `it` becomes the
/// engine's answer. False (logged) when the engine refused it.
pub(crate) async fn flow_step(s: &AppState, it: &mut Interaction, step: FlowStep) -> bool {
    let id = it.id;
    match s
        .ask(it.tenant, |reply| Command::Flow { id, step, reply })
        .await
    {
        Ok(Ok(next)) => {
            *it = next;
            true
        }
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(interaction = %id, code = %e.code, error = %e.message, "flow step refused");
            false
        }
    }
}
