//! The web chat channel (docs/chat.md): the customer's WebSocket `/chat/ws`, and the one way a
//! message of any conversation is stored and delivered ([`post_message`]), used by the widget
//! and by agents' replies alike.
//!
//! A customer is known by a chat session token the widget keeps (only its hash is stored), or,
//! on a new browser, by the email of the pre-chat form. The first message creates the `chat`
//! interaction through the tenant's engine (durable before the echo), which routes it like any
//! other. Messages are stored before they are echoed or pushed; the echo with its `seq` is the
//! delivery acknowledgement, and a retry with the same `client_id` is not stored twice.

use crate::auth::{new_token, token_hash};
use crate::bus::BusEvent;
use crate::engine::Command;
use crate::error::{ApiError, ApiWebSocket};
use crate::state::AppState;
use axum::Router;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_model::{
    Channel, CustomerId, InteractionId, InteractionState, MonoTime, QueueId, Sensitive, TenantId,
};
use switchboard_store::{
    ChatSession, ContactPoint, Customer, Interaction, Message, NewEvent, Sender,
};
use tokio::sync::broadcast::error::RecvError;

/// Largest accepted frame (a bigger one gets a `too_large` error frame).
const MAX_FRAME: usize = 16 * 1024;
/// Longest message text, in characters.
const MAX_TEXT: usize = 4000;
/// Messages allowed per connection per [`RATE_WINDOW`].
const RATE_MESSAGES: usize = 10;
/// The message rate window.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Chat sockets allowed per client address at once.
const MAX_SOCKETS_PER_IP: usize = 20;
/// Time a new socket has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts open chat sockets per client address.
#[derive(Debug, Default)]
pub struct SocketCounter(Mutex<HashMap<IpAddr, usize>>);

/// One counted socket; uncounted on drop.
pub struct SocketSlot(Arc<SocketCounter>, IpAddr);

impl SocketCounter {
    /// A slot for `ip`, unless it already has the maximum.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SocketSlot> {
        let mut m = self.0.lock().ok()?;
        let n = m.entry(ip).or_default();
        if *n >= MAX_SOCKETS_PER_IP {
            return None;
        }
        *n += 1;
        Some(SocketSlot(self.clone(), ip))
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.0.lock()
            && let Some(n) = m.get_mut(&self.1)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Counts open sockets per chat session, to notice a customer who has gone away.
#[derive(Debug, Default)]
pub struct SessionSockets(Mutex<HashMap<String, usize>>);

impl SessionSockets {
    fn open(&self, token_hash: &str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(token_hash.to_owned()).or_default() += 1;
        }
    }

    /// Counts one socket closed; true when the session has none left.
    fn close(&self, token_hash: &str) -> bool {
        let Ok(mut m) = self.0.lock() else {
            return false;
        };
        let Some(n) = m.get_mut(token_hash) else {
            return true;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(token_hash);
            true
        } else {
            false
        }
    }

    fn is_open(&self, token_hash: &str) -> bool {
        self.0
            .lock()
            .map(|m| m.contains_key(token_hash))
            .unwrap_or(true)
    }
}

/// Whether a channel carries a written conversation (messages).
pub fn is_conversation(c: Channel) -> bool {
    !matches!(
        c,
        Channel::Voice | Channel::Video | Channel::Fax | Channel::Task
    )
}

/// The JSON of a message for the widget, the desktop and the events.
pub fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id, "seq": m.seq, "interaction_id": m.interaction, "from": m.sender.as_str(),
        "name": m.author_name, "text": m.body.expose(), "internal": m.internal,
        "client_id": m.client_id, "at": crate::clock::rfc3339(m.created_at),
    })
}

/// A message to store and deliver.
pub struct NewMessage {
    /// Who writes.
    pub sender: Sender,
    /// The writing user or customer id.
    pub author_id: Option<String>,
    /// The name shown.
    pub author_name: Option<String>,
    /// The text.
    pub text: String,
    /// An internal note.
    pub internal: bool,
    /// The sender's id for de-duplication.
    pub client_id: Option<String>,
}

/// Stores a message of `it` (with its `message.created` event) and publishes it. Returns the
/// stored message and whether it is new (a retry with a known `client_id` is not).
pub async fn post_message(
    s: &AppState,
    it: &Interaction,
    m: NewMessage,
) -> Result<(Message, bool), ApiError> {
    let msg = Message {
        id: s.clock.new_uuid().to_string(),
        tenant: it.tenant,
        interaction: it.id,
        seq: 0,
        sender: m.sender,
        author_id: m.author_id,
        author_name: m.author_name,
        body: Sensitive::new(m.text),
        internal: m.internal,
        client_id: m.client_id,
        created_at: s.clock.wall_ms(),
    };
    // The log records that a message was written and by whom; the text lives in `messages`.
    let event = NewEvent {
        tenant: it.tenant,
        interaction: Some(it.id),
        agent: it.agent,
        kind: "message.created".into(),
        at: msg.created_at,
        data: json!({"interaction_id": it.id, "message_id": msg.id, "from": msg.sender.as_str(), "internal": msg.internal}),
    };
    let (stored, new, event) = s.messages.append(msg, Some(event)).await?;
    if new {
        metrics::counter!("switchboard_messages_total", "channel" => it.channel.as_str(), "from" => stored.sender.as_str()).increment(1);
        if let Some(e) = event {
            let mut be = BusEvent::from(e);
            be.data = message_json(&stored);
            s.bus.publish(be);
        }
    }
    Ok((stored, new))
}

/// What appending one message gives: the stored message, whether it is new, its event.
type Appended = Result<Stored, ApiError>;

/// A stored message, whether it is new, and its event.
type Stored = (Message, bool, Option<switchboard_store::Event>);

/// Group commit of chat messages ([`crate::group_commit`]).
#[derive(Clone)]
pub struct MessageWriter {
    writer: crate::group_commit::GroupWriter<(Message, Option<NewEvent>), Stored>,
}

impl MessageWriter {
    /// Starts the writer task.
    pub fn start(store: switchboard_store::Store) -> Self {
        MessageWriter {
            writer: crate::group_commit::GroupWriter::start("messages", move |items| {
                let store = store.clone();
                async move { store.append_messages(items).await }
            }),
        }
    }

    /// Stores one message (with its event); answers after the commit.
    pub async fn append(&self, m: Message, e: Option<NewEvent>) -> Appended {
        self.writer.write((m, e)).await
    }
}

/// Publishes a passing indicator (typing, read) of a conversation; nothing is stored.
pub fn signal(s: &AppState, it: &Interaction, kind: &str, data: Value) {
    s.bus.publish(BusEvent {
        seq: 0,
        tenant: it.tenant,
        agent: it.agent,
        kind: kind.to_owned(),
        at: s.clock.wall_ms(),
        data,
    });
}

/// The `/chat/ws` route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/chat/ws", get(ws))
}

async fn ws(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiWebSocket(ws): ApiWebSocket,
) -> Response {
    let Some(slot) = s.chat_sockets.acquire(addr.ip()) else {
        return ApiError::too_many("too many chat connections from this address", 10)
            .into_response();
    };
    // The transport limit is above MAX_FRAME so that a too-large frame gets a readable error.
    // Small buffers: thousands of mostly idle customers each hold one (tungstenite's default
    // read buffer is 128 KiB).
    ws.max_message_size(4 * MAX_FRAME)
        .max_frame_size(4 * MAX_FRAME)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            metrics::gauge!("switchboard_chat_sockets").increment(1.0);
            let mut conn = Conn {
                s,
                socket,
                rate: VecDeque::new(),
            };
            conn.run().await;
            metrics::gauge!("switchboard_chat_sockets").decrement(1.0);
            drop(slot);
        })
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Frame {
    Hello {
        tenant: String,
        session: Option<String>,
        queue: Option<String>,
        name: Option<String>,
        email: Option<String>,
        lang: Option<String>,
        flow: Option<String>,
    },
    Message {
        text: String,
        client_id: Option<String>,
    },
    Typing {
        on: bool,
    },
    Read {
        seq: i64,
    },
    Transcript {
        email: String,
    },
    Close,
}

/// A customer's place after `hello`.
struct Place {
    tenant: TenantId,
    token_hash: String,
    customer: CustomerId,
    name: String,
    queue: QueueId,
    interaction: Option<InteractionId>,
    /// The widget's language and flow choice (`hello`), for the chat flow.
    flow: (Option<String>, Option<String>, bool),
    /// Events of the current conversation, once there is one.
    rx: Option<tokio::sync::broadcast::Receiver<Arc<BusEvent>>>,
}

struct Conn {
    s: AppState,
    socket: WebSocket,
    rate: VecDeque<MonoTime>,
}

/// The next event of a followed conversation; pending forever while there is none.
async fn next_event(
    rx: &mut Option<tokio::sync::broadcast::Receiver<Arc<BusEvent>>>,
) -> Result<Arc<BusEvent>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn err(code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message})
}

impl Conn {
    async fn send(&mut self, v: Value) -> bool {
        self.socket
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .socket
            .send(WsMessage::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }

    /// Reads the next frame; `None` when the socket is gone.
    async fn next_frame(&mut self) -> Option<Result<Frame, Value>> {
        next_frame(&mut self.socket).await
    }

    async fn run(&mut self) {
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, self.next_frame()).await {
            Ok(Some(Ok(Frame::Hello {
                tenant,
                session,
                queue,
                name,
                email,
                lang,
                flow,
            }))) => (
                (tenant, session, queue.clone(), name, email),
                (lang, flow, queue.is_some()),
            ),
            Ok(Some(Ok(_))) => {
                self.send(err("hello_first", "the first frame must be hello"))
                    .await;
                return self.close(1008, "hello first").await;
            }
            Ok(Some(Err(e))) => {
                self.send(e).await;
                return self.close(1008, "hello first").await;
            }
            Ok(None) => return,
            Err(_) => return self.close(1008, "no hello").await,
        };
        let (hello, flow) = hello;
        let mut place = match self.hello(hello).await {
            Ok(p) => Place { flow, ..p },
            Err((code, message)) => {
                self.send(err(code, &message)).await;
                return self.close(1008, "refused").await;
            }
        };
        place.rx = place
            .interaction
            .map(|id| self.s.bus.subscribe_conversation(id));
        if let Some(menu) = crate::chat_flow::resume(&self.s, place.tenant, place.interaction).await
        {
            self.send(menu).await;
        }
        self.s.chat_sessions.open(&place.token_hash);
        self.watch(&mut place).await;
        if self.s.chat_sessions.close(&place.token_hash) {
            self.abandon_later(&place);
        }
    }

    /// The connection's main loop after `hello`.
    async fn watch(&mut self, place: &mut Place) {
        loop {
            tokio::select! {
                frame = next_frame(&mut self.socket) => {
                    let Some(frame) = frame else { break };
                    match frame {
                        Err(e) => {
                            if !self.send(e).await {
                                break;
                            }
                        }
                        Ok(f) => match self.handle(place, f).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => {
                                if !self.send(e).await {
                                    break;
                                }
                            }
                        },
                    }
                }
                ev = next_event(&mut place.rx) => match ev {
                    Ok(e) => {
                        let s = self.s.clone();
                        if let Some(out) = for_customer(&s, place, &e).await
                            && !self.send(out).await
                        {
                            break;
                        }
                    }
                    // Missed events: send the conversation again so nothing is lost.
                    Err(RecvError::Lagged(_)) => {
                        if let Some(id) = place.interaction
                            && let Ok(msgs) = self.s.store.messages(place.tenant, id, false).await
                        {
                            let list: Vec<Value> = msgs.iter().map(message_json).collect();
                            if !self.send(json!({"type": "messages", "messages": list})).await {
                                break;
                            }
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    }

    /// After the last socket of a session closed without `close`: if the customer is still away
    /// after the configured time and the conversation still waits, it is abandoned.
    fn abandon_later(&self, place: &Place) {
        let Some(id) = place.interaction else { return };
        let (s, tenant, token) = (self.s.clone(), place.tenant, place.token_hash.clone());
        tokio::spawn(async move {
            tokio::time::sleep(s.config.chat_abandon_after).await;
            if s.chat_sessions.is_open(&token) {
                return;
            }
            let waiting = matches!(
                s.store.interaction(tenant, id).await,
                Ok(Some(it)) if matches!(it.state, InteractionState::Flow | InteractionState::Queued | InteractionState::Offered)
            );
            if waiting {
                let _ = s
                    .ask(tenant, |reply| Command::CustomerLeft { id, reply })
                    .await;
            }
        });
    }

    /// Resolves tenant, queue, customer and session; sends `welcome`.
    async fn hello(
        &mut self,
        (tenant, session, queue, name, email): (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
    ) -> Result<Place, (&'static str, String)> {
        let internal =
            |e: switchboard_store::StoreError| ("internal", ApiError::internal(e).message);
        let s = self.s.clone();
        let t = s
            .store
            .tenant_by_slug(&tenant)
            .await
            .map_err(internal)?
            .ok_or(("no_such_tenant", format!("no tenant {tenant:?}")))?;
        let queues = s.store.queues(t.id).await.map_err(internal)?;
        let queue = match &queue {
            Some(q) => queues
                .iter()
                .find(|x| &x.name == q || x.id.to_string() == *q),
            None => queues.first(),
        }
        .ok_or((
            "no_such_queue",
            "this tenant has no such chat queue".to_owned(),
        ))?
        .id;
        let email = email
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .map(|e| {
                let ok = e.len() <= 254
                    && e.split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
                if ok {
                    Ok(e)
                } else {
                    Err(("invalid_email", "that is not an email address".to_owned()))
                }
            })
            .transpose()?;
        let name = name
            .map(|n| n.trim().chars().take(100).collect::<String>())
            .filter(|n| !n.is_empty());
        let now = s.clock.wall_ms();
        // Resume a known session.
        if let Some(token) = session.filter(|t| t.len() <= 128) {
            let hash = token_hash(&token);
            if let Some(sess) = s.store.chat_session(t.id, &hash).await.map_err(internal)? {
                let customer = s
                    .store
                    .customer(t.id, sess.customer)
                    .await
                    .map_err(internal)?;
                let cname = customer.map(|c| c.name).unwrap_or_else(|| "Visitor".into());
                let place = Place {
                    tenant: t.id,
                    token_hash: hash,
                    customer: sess.customer,
                    name: name.unwrap_or(cname),
                    queue,
                    interaction: sess.interaction,
                    flow: Default::default(),
                    rx: None,
                };
                self.welcome(&place, &token).await;
                return Ok(place);
            }
        }
        // A new session: the same customer when the email is known, else a new one.
        let known = match &email {
            Some(e) => s
                .store
                .customer_by_contact(t.id, "email", e)
                .await
                .map_err(internal)?,
            None => None,
        };
        let customer = match known {
            Some(c) => c,
            None => {
                let c = Customer {
                    id: CustomerId::from_uuid(s.clock.new_uuid()),
                    tenant: t.id,
                    name: name.clone().unwrap_or_else(|| "Visitor".into()),
                    created_at: now,
                    contact_points: email
                        .iter()
                        .map(|e| ContactPoint {
                            kind: "email".into(),
                            value: Sensitive::new(e.clone()),
                        })
                        .collect(),
                };
                s.store
                    .create_customer(&c)
                    .await
                    .map_err(|e| ("internal", ApiError::from(e).message))?;
                c.id
            }
        };
        let token = new_token().map_err(|e| ("internal", e.message))?;
        let hash = token_hash(&token);
        s.store
            .create_chat_session(&ChatSession {
                token_hash: hash.clone(),
                tenant: t.id,
                customer,
                interaction: None,
                created_at: now,
                last_seen_at: now,
            })
            .await
            .map_err(internal)?;
        let place = Place {
            tenant: t.id,
            token_hash: hash,
            customer,
            name: name.unwrap_or_else(|| "Visitor".into()),
            queue,
            interaction: None,
            flow: Default::default(),
            rx: None,
        };
        self.welcome(&place, &token).await;
        Ok(place)
    }

    async fn welcome(&mut self, place: &Place, token: &str) {
        let mut interaction = Value::Null;
        let mut messages = Vec::new();
        let mut read = json!({"customer": 0, "agent": 0});
        if let Some(id) = place.interaction
            && let Ok(Some(it)) = self.s.store.interaction(place.tenant, id).await
        {
            interaction = json!({"id": it.id, "state": it.state.as_str()});
            if let Ok(msgs) = self.s.store.messages(place.tenant, id, false).await {
                messages = msgs.iter().map(message_json).collect();
            }
            if let Ok(marks) = self.s.store.read_marks(place.tenant, id).await {
                read = json!({"customer": marks.customer, "agent": marks.agent});
            }
        }
        self.send(json!({
            "type": "welcome", "session": token, "customer_id": place.customer, "name": place.name,
            "interaction": interaction, "messages": messages, "read": read,
        }))
        .await;
    }

    /// Handles one frame after `hello`; `Ok(false)` ends the connection.
    async fn handle(&mut self, place: &mut Place, f: Frame) -> Result<bool, Value> {
        let s = self.s.clone();
        match f {
            Frame::Hello { .. } => Err(err("already_hello", "hello was already sent")),
            Frame::Message { text, client_id } => {
                let now = s.clock.mono();
                while self.rate.front().is_some_and(|t| now - *t >= RATE_WINDOW) {
                    self.rate.pop_front();
                }
                if self.rate.len() >= RATE_MESSAGES {
                    return Err(err("rate_limited", "too many messages; wait a few seconds"));
                }
                self.rate.push_back(now);
                let text = text.trim().to_owned();
                if text.is_empty() || text.chars().count() > MAX_TEXT {
                    return Err(err("invalid_message", "a message has 1 to 4000 characters"));
                }
                if client_id.as_ref().is_some_and(|c| c.len() > 64) {
                    return Err(err("invalid_message", "client_id is at most 64 characters"));
                }
                let it = match open_interaction(&s, place).await? {
                    Some(it) => it,
                    None => {
                        let subject: String = text.chars().take(80).collect();
                        let (queue, customer) = (place.queue, place.customer);
                        let (lang, flow, pinned) = &place.flow;
                        let flowing = crate::chat_flow::open(
                            &s,
                            place.tenant,
                            customer,
                            flow.as_deref(),
                            *pinned,
                            lang.as_deref(),
                            subject.clone(),
                        )
                        .await
                        .map_err(|e| err(&e.code, &e.message))?;
                        let it = match flowing {
                            Some(it) => it,
                            None => s
                                .ask(place.tenant, |reply| Command::Create {
                                    channel: Channel::Chat,
                                    queue,
                                    subject: Some(subject),
                                    customer: Some(customer),
                                    attributes: json!({}),
                                    priority: None,
                                    reply,
                                })
                                .await
                                .and_then(|r| r)
                                .map_err(|e| err(&e.code, &e.message))?,
                        };
                        place.interaction = Some(it.id);
                        // Follow the new conversation before its first message is posted.
                        place.rx = Some(s.bus.subscribe_conversation(it.id));
                        s.store
                            .touch_chat_session(&place.token_hash, Some(it.id), s.clock.wall_ms())
                            .await
                            .map_err(|_| err("internal", "try again"))?;
                        self.send(json!({"type": "status", "state": it.state.as_str(), "interaction_id": it.id})).await;
                        it
                    }
                };
                let msg = NewMessage {
                    sender: Sender::Customer,
                    author_id: Some(place.customer.to_string()),
                    author_name: Some(place.name.clone()),
                    text,
                    internal: false,
                    client_id,
                };
                let (stored, new) = post_message(&s, &it, msg)
                    .await
                    .map_err(|e| err(&e.code, &e.message))?;
                if new {
                    crate::chat_flow::customer_said(&s, it.id, stored.body.expose());
                }
                if !new {
                    // A retry: echo the stored one again (the bus delivered it the first time).
                    let mut v = message_json(&stored);
                    v["type"] = json!("message");
                    self.send(v).await;
                }
                Ok(true)
            }
            Frame::Typing { on } => {
                if let Some(it) = open_interaction(&s, place).await? {
                    signal(
                        &s,
                        &it,
                        "message.typing",
                        json!({"interaction_id": it.id, "from": "customer", "name": place.name, "on": on}),
                    );
                }
                Ok(true)
            }
            Frame::Read { seq } => {
                if let Some(id) = place.interaction
                    && let Ok(Some(it)) = s.store.interaction(place.tenant, id).await
                {
                    s.store
                        .mark_read(place.tenant, id, Sender::Customer, seq)
                        .await
                        .map_err(|_| err("internal", "try again"))?;
                    signal(
                        &s,
                        &it,
                        "message.read",
                        json!({"interaction_id": id, "by": "customer", "seq": seq}),
                    );
                }
                Ok(true)
            }
            Frame::Transcript { email } => {
                let email = email.trim().to_lowercase();
                if !email
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                    || email.len() > 254
                {
                    return Err(err("invalid_email", "that is not an email address"));
                }
                let Some(id) = place.interaction else {
                    return Err(err("no_conversation", "there is no conversation yet"));
                };
                s.store
                    .request_transcript(place.tenant, id, &email)
                    .await
                    .map_err(|_| err("internal", "try again"))?;
                self.send(json!({"type": "transcript", "status": "requested"}))
                    .await;
                Ok(true)
            }
            Frame::Close => {
                if let Some(it) = open_interaction(&s, place).await? {
                    let id = it.id;
                    let _ = s
                        .ask(place.tenant, |reply| Command::CustomerLeft { id, reply })
                        .await;
                }
                self.send(json!({"type": "status", "state": "ended"})).await;
                Ok(true)
            }
        }
    }
}

/// Reads the next frame of a socket; `None` when it is gone.
async fn next_frame(socket: &mut WebSocket) -> Option<Result<Frame, Value>> {
    loop {
        let text = match socket.recv().await? {
            Ok(WsMessage::Text(t)) => t.to_string(),
            Ok(WsMessage::Binary(_)) => {
                return Some(Err(err("invalid_json", "send JSON text frames")));
            }
            Ok(WsMessage::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        return Some(parse_frame(&text));
    }
}

/// The open interaction of this customer, if any.
async fn open_interaction(s: &AppState, place: &Place) -> Result<Option<Interaction>, Value> {
    let Some(id) = place.interaction else {
        return Ok(None);
    };
    let it = s
        .store
        .interaction(place.tenant, id)
        .await
        .map_err(|_| err("internal", "try again"))?;
    Ok(it.filter(|it| it.state != InteractionState::Ended))
}

/// What the customer sees of a bus event, if anything.
async fn for_customer(s: &AppState, place: &Place, e: &BusEvent) -> Option<Value> {
    if e.tenant != place.tenant {
        return None;
    }
    let id = place.interaction?;
    if e.data.get("interaction_id").and_then(Value::as_str) != Some(id.to_string().as_str()) {
        return None;
    }
    let d = &e.data;
    Some(match e.kind.as_str() {
        "message.created" if d["internal"] != json!(true) => {
            let mut v = d.clone();
            v["type"] = json!("message");
            v
        }
        "message.typing" if d["from"] != "customer" => {
            json!({"type": "typing", "from": d["from"], "name": d["name"], "on": d["on"]})
        }
        "message.read" if d["by"] != "customer" => json!({"type": "read", "seq": d["seq"]}),
        "flow.menu" => d.clone(),
        "interaction.estimated_wait" => {
            json!({"type": "status", "state": "queued", "position": d["position"], "wait_s": d["wait_s"]})
        }
        "interaction.queued"
        | "interaction.requeued"
        | "interaction.offer_rejected"
        | "interaction.offer_expired"
        | "interaction.offer_revoked"
        | "interaction.transferred" => json!({"type": "status", "state": "queued"}),
        "interaction.accepted" => {
            let agent = match d["agent_id"].as_str().and_then(|a| a.parse().ok()) {
                Some(a) => s
                    .store
                    .agent(place.tenant, a)
                    .await
                    .ok()
                    .flatten()
                    .map(|a| a.name),
                None => None,
            };
            json!({"type": "status", "state": "connected", "agent": agent})
        }
        "interaction.completed"
        | "interaction.ended"
        | "interaction.cancelled"
        | "interaction.withdrawn"
        | "interaction.abandoned" => json!({"type": "status", "state": "ended"}),
        _ => return None,
    })
}

fn parse_frame(text: &str) -> Result<Frame, Value> {
    if text.len() > MAX_FRAME {
        return Err(err("too_large", "frames are at most 16 KiB"));
    }
    let v: Value =
        serde_json::from_str(text).map_err(|_| err("invalid_json", "frames are JSON objects"))?;
    let known = ["hello", "message", "typing", "read", "transcript", "close"];
    match v.get("type").and_then(Value::as_str) {
        Some(t) if known.contains(&t) => {}
        Some(_) => return Err(err("unknown_type", "unknown frame type")),
        None => return Err(err("invalid_json", "a frame needs a string `type`")),
    }
    serde_json::from_value(v).map_err(|e| err("invalid_frame", &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_or_give_the_documented_error_codes() {
        assert!(matches!(
            parse_frame(r#"{"type":"message","text":"hi","client_id":"c1"}"#),
            Ok(Frame::Message { .. })
        ));
        assert!(matches!(
            parse_frame(r#"{"type":"close"}"#),
            Ok(Frame::Close)
        ));
        assert_eq!(
            parse_frame("nope").err().map(|e| e["code"].clone()),
            Some(json!("invalid_json"))
        );
        assert_eq!(
            parse_frame(r#"{"type":"dance"}"#)
                .err()
                .map(|e| e["code"].clone()),
            Some(json!("unknown_type"))
        );
        assert_eq!(
            parse_frame(r#"{"type":"typing"}"#)
                .err()
                .map(|e| e["code"].clone()),
            Some(json!("invalid_frame"))
        );
        assert_eq!(
            parse_frame(r#"{"type":"read","seq":1,"x":2}"#)
                .err()
                .map(|e| e["code"].clone()),
            Some(json!("invalid_frame"))
        );
        let big = format!(r#"{{"type":"message","text":"{}"}}"#, "x".repeat(MAX_FRAME));
        assert_eq!(
            parse_frame(&big).err().map(|e| e["code"].clone()),
            Some(json!("too_large"))
        );
    }

    #[test]
    fn sockets_are_counted_per_address() {
        let c = Arc::new(SocketCounter::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let slots: Vec<_> = (0..MAX_SOCKETS_PER_IP)
            .map(|_| c.acquire(ip).expect("slot"))
            .collect();
        assert!(c.acquire(ip).is_none());
        assert!(c.acquire([10, 0, 0, 2].into()).is_some());
        drop(slots);
        assert!(c.acquire(ip).is_some());
    }
}
