//! The transaction layer (RFC 3261 17, with the Accepted state of RFC 6026), sans-IO.
//!
//! One [`TransactionLayer`] holds every client and server transaction of an endpoint. The
//! driver feeds it parsed messages with [`handle_input`](TransactionLayer::handle_input),
//! wakes it at [`poll_timeout`](TransactionLayer::poll_timeout) with
//! [`handle_timeout`](TransactionLayer::handle_timeout), and after each call drains
//! [`poll_output`](TransactionLayer::poll_output): messages to transmit and events for the
//! transaction user (the UA core or dialog layer). The transaction user starts client
//! transactions with [`send_request`](TransactionLayer::send_request), answers server
//! transactions with [`send_response`](TransactionLayer::send_response) and cancels INVITEs
//! with [`cancel`](TransactionLayer::cancel).
//!
//! Time is only ever the `now` passed in. Branches are derived from a seed in the
//! configuration and a counter, so runs are reproducible.
//!
//! Choices where the RFC leaves room:
//! - responses go back to the address and transport the request came from (symmetric
//!   response routing, as RFC 3581 does for UDP);
//! - a server INVITE transaction sends `100 Trying` only if the transaction user has not
//!   answered within [`TransactionConfig::trying_delay`] (RFC 3261 17.2.1 allows this);
//! - 2xx to INVITE: both sides enter Accepted (RFC 6026). The server transaction absorbs
//!   INVITE retransmissions and passes ACKs up; the client transaction passes 2xx
//!   retransmissions up. Retransmitting the 2xx and ACKing it are the transaction user's job
//!   (RFC 3261 13.3.1.4, 13.2.2.4);
//! - a CANCEL asked for before any provisional response is held back until one arrives
//!   (RFC 3261 9.1), and dropped if a final response comes first;
//! - on reliable transports Timers D, I, J and K are zero, so those transactions end at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_model::MonoTime;

use crate::{
    HeaderName, MAGIC_COOKIE, Message, Method, Param, Request, Response, StatusCode, Transport, Via,
};

/// Timer values (RFC 3261 17.1.1.1 and Table 4) and the branch seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionConfig {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message stays in the network, 5 s.
    pub t4: Duration,
    /// How long a server INVITE transaction waits for the transaction user before sending
    /// `100 Trying` itself (RFC 3261 17.2.1: 200 ms).
    pub trying_delay: Duration,
    /// Seed for generated branch parameters; give each process start a different one.
    pub branch_seed: u64,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying_delay: Duration::from_millis(200),
            branch_seed: 0,
        }
    }
}

/// Identifies one transaction within a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// The other end of a message: transport and address (the driver maps it to a socket or
/// connection).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport the message travels on.
    pub transport: Transport,
    /// Remote address.
    pub addr: SocketAddr,
}

impl Peer {
    fn is_reliable(&self) -> bool {
        self.transport.is_reliable()
    }
}

/// What happened on the network.
// Inputs are moved in once and never stored, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A message arrived from `peer` (already parsed and triaged).
    Received {
        /// The message.
        message: Message,
        /// Where it came from.
        peer: Peer,
    },
    /// Sending for a transaction failed (connection refused, ICMP unreachable ...).
    TransportError {
        /// The transaction whose message could not be sent.
        id: TransactionId,
    },
}

/// News for the transaction user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new request. `id` is its server transaction; `None` for an ACK that matches no
    /// transaction (the ACK of a 2xx, for the dialog layer). For a CANCEL, `cancels` names
    /// the INVITE server transaction it matches (RFC 3261 9.2); `None` means answer 481.
    Request {
        /// Server transaction to answer in.
        id: Option<TransactionId>,
        /// The request.
        request: Request,
        /// Where it came from.
        peer: Peer,
        /// For a CANCEL, the INVITE transaction it targets.
        cancels: Option<TransactionId>,
    },
    /// An ACK for a 2xx that matched a server INVITE transaction in the Accepted state.
    Ack {
        /// The INVITE server transaction.
        id: TransactionId,
        /// The ACK.
        request: Request,
    },
    /// A response for a client transaction (retransmissions of non-2xx are absorbed;
    /// retransmitted 2xx to INVITE are passed on, for the dialog layer to ACK again).
    Response {
        /// The client transaction.
        id: TransactionId,
        /// The response.
        response: Response,
    },
    /// A response that matches no client transaction (RFC 3261 18.1.2: to the core).
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        peer: Peer,
    },
    /// Timer B or F fired (no final response: act as if 408 arrived), or Timer H fired (a
    /// non-2xx final response to INVITE was never acknowledged).
    Timeout {
        /// The transaction that gave up.
        id: TransactionId,
    },
    /// The transport failed for this transaction (RFC 3261 17.1.4, 17.2.4).
    TransportError {
        /// The transaction.
        id: TransactionId,
    },
    /// The transaction is gone; its id will not be seen again.
    Terminated {
        /// The transaction.
        id: TransactionId,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `message` to `peer`.
    Transmit {
        /// Destination.
        peer: Peer,
        /// Message to serialize and send.
        message: Message,
    },
    /// Tell the transaction user.
    Event(Event),
}

/// A transaction's state (RFC 3261 figures 5-8, RFC 6026 figures 3-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Client INVITE: request sent, no response yet.
    Calling,
    /// Client or server non-INVITE: no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server), or a server INVITE
    /// transaction waits for its user.
    Proceeding,
    /// A final (non-2xx for INVITE) response was received or sent.
    Completed,
    /// Server INVITE: the ACK of the non-2xx arrived.
    Confirmed,
    /// INVITE: a 2xx was received or sent (RFC 6026).
    Accepted,
}

/// The transaction user asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// No such transaction (never existed, already terminated, or of the other side).
    #[error("no such transaction: {0}")]
    NoSuchTransaction(TransactionId),
    /// The request has no Via to carry the branch.
    #[error("the request has no Via header")]
    MissingVia,
    /// ACK is not sent through a transaction (RFC 3261 17.1.1.3, 13.2.2.4).
    #[error("ACK does not start a transaction")]
    AckTransaction,
    /// Another client transaction already uses this branch and method.
    #[error("a client transaction with this branch and method exists")]
    DuplicateBranch,
    /// The transaction already sent or received its final response.
    #[error("the transaction has already completed")]
    AlreadyCompleted,
    /// Only INVITE client transactions can be cancelled.
    #[error("only an INVITE client transaction can be cancelled")]
    NotCancellable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    A,
    B,
    D,
    E,
    F,
    K,
    G,
    H,
    I,
    J,
    L,
    M,
    Trying,
}

/// Server transaction key (RFC 3261 17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ServerKey {
    /// Branch with the magic cookie, sent-by, method (ACK counted as INVITE).
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number, top Via, method.
    /// The To tag is checked separately (it differs between INVITE and ACK).
    Rfc2543 {
        uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        via: String,
        method: String,
    },
}

fn method_class(m: &Method) -> String {
    match m {
        Method::Ack => "INVITE".into(),
        other => other.as_str().to_string(),
    }
}

/// The server key of `req`, with `method` overriding the request's own (CANCEL lookup).
fn server_key(req: &Request, method: Option<&Method>) -> Option<ServerKey> {
    let via = req.headers.top_via().ok()?;
    let method = method_class(method.unwrap_or(&req.method));
    if via.has_rfc3261_branch() {
        return Some(ServerKey::Rfc3261 {
            branch: via.branch()?.to_string(),
            sent_by: via.sent_by().to_ascii_lowercase(),
            method,
        });
    }
    Some(ServerKey::Rfc2543 {
        uri: req.uri.to_string(),
        from_tag: req
            .headers
            .from()
            .ok()?
            .tag()
            .unwrap_or_default()
            .to_string(),
        call_id: req.headers.call_id().ok()?.to_string(),
        cseq: req.headers.cseq().ok()?.seq,
        via: via.to_string(),
        method,
    })
}

/// Client transaction key (RFC 3261 17.1.3): top branch and CSeq method.
fn client_key_of(branch: &str, method: &Method) -> (String, String) {
    (branch.to_string(), method.as_str().to_string())
}

#[derive(Debug)]
struct ClientTx {
    request: Request,
    ack: Option<Request>,
    /// A CANCEL asked for before any provisional response (RFC 3261 9.1).
    pending_cancel: Option<TransactionId>,
}

#[derive(Debug)]
struct ServerTx {
    request: Request,
    last_response: Option<Response>,
    /// To tag of the final response, for RFC 2543 ACK matching.
    to_tag: Option<String>,
    answered: bool,
}

#[derive(Debug)]
enum Role {
    Client(ClientTx),
    Server(ServerTx),
}

#[derive(Debug)]
struct Tx {
    role: Role,
    invite: bool,
    state: State,
    peer: Peer,
    /// Current retransmit interval of Timer A, E or G.
    interval: Duration,
    timers: Vec<(Timer, MonoTime)>,
    client_key: Option<(String, String)>,
    server_key: Option<ServerKey>,
}

/// Every client and server transaction of one endpoint; see the module docs.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TransactionConfig,
    next_id: u64,
    branches: u64,
    txs: BTreeMap<TransactionId, Tx>,
    clients: BTreeMap<(String, String), TransactionId>,
    servers: BTreeMap<ServerKey, TransactionId>,
    timers: BTreeSet<(MonoTime, TransactionId, Timer)>,
    outputs: VecDeque<Output>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(config: TransactionConfig) -> Self {
        TransactionLayer {
            config,
            next_id: 1,
            branches: 0,
            txs: BTreeMap::new(),
            clients: BTreeMap::new(),
            servers: BTreeMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// No live transactions.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The state of a live transaction.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.txs.get(&id).map(|t| t.state)
    }

    /// A fresh branch: magic cookie, then the seed and a counter mixed (splitmix64).
    pub fn new_branch(&mut self) -> String {
        self.branches += 1;
        let mut z = self
            .config
            .branch_seed
            .wrapping_add(self.branches.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        format!("{MAGIC_COOKIE}{z:016x}{:x}", self.branches)
    }

    /// The next thing to do, `None` when there is nothing left.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        self.timers.first().map(|(at, _, _)| *at)
    }

    /// Sends a message outside any transaction (the ACK of a 2xx, a stateless rejection).
    pub fn transmit(&mut self, peer: Peer, message: Message) {
        self.outputs.push_back(Output::Transmit { peer, message });
    }

    fn alloc_id(&mut self) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id += 1;
        id
    }

    fn set_timer(&mut self, id: TransactionId, timer: Timer, at: MonoTime) {
        self.cancel_timer(id, timer);
        if let Some(tx) = self.txs.get_mut(&id) {
            tx.timers.push((timer, at));
            self.timers.insert((at, id, timer));
        }
    }

    fn cancel_timer(&mut self, id: TransactionId, timer: Timer) {
        if let Some(tx) = self.txs.get_mut(&id) {
            tx.timers.retain(|(t, at)| {
                if *t == timer {
                    self.timers.remove(&(*at, id, *t));
                    false
                } else {
                    true
                }
            });
        }
    }

    fn event(&mut self, e: Event) {
        self.outputs.push_back(Output::Event(e));
    }

    fn terminate(&mut self, id: TransactionId) {
        if let Some(tx) = self.txs.remove(&id) {
            for (t, at) in tx.timers {
                self.timers.remove(&(at, id, t));
            }
            if let Some(k) = tx.client_key {
                self.clients.remove(&k);
            }
            if let Some(k) = tx.server_key {
                self.servers.remove(&k);
            }
            if let Role::Client(c) = tx.role
                && let Some(cancel) = c.pending_cancel
            {
                // The CANCEL was never sent; its id ends with the INVITE.
                self.event(Event::Terminated { id: cancel });
            }
            self.event(Event::Terminated { id });
        }
    }

    /// Starts a client transaction for `request` towards `peer` and sends it.
    ///
    /// The top Via must exist; if its branch lacks the magic cookie a fresh branch replaces
    /// it. Retransmissions (Timer A or E) run only on unreliable transports.
    pub fn send_request(
        &mut self,
        now: MonoTime,
        mut request: Request,
        peer: Peer,
    ) -> Result<TransactionId, TransactionError> {
        let id = self.alloc_id();
        self.start_client(now, id, &mut request, peer)?;
        Ok(id)
    }

    fn start_client(
        &mut self,
        now: MonoTime,
        id: TransactionId,
        request: &mut Request,
        peer: Peer,
    ) -> Result<(), TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckTransaction);
        }
        let mut via = request
            .headers
            .top_via()
            .map_err(|_| TransactionError::MissingVia)?;
        if !via.has_rfc3261_branch() {
            let branch = self.new_branch();
            via.params
                .retain(|p| !p.name.eq_ignore_ascii_case("branch"));
            via.params.insert(0, Param::new("branch", branch));
            replace_top_via(request, &via);
        }
        let branch = via.branch().unwrap_or_default().to_string();
        let key = client_key_of(&branch, &request.method);
        if self.clients.contains_key(&key) {
            return Err(TransactionError::DuplicateBranch);
        }
        let invite = request.method == Method::Invite;
        let reliable = peer.is_reliable();
        let t1 = self.config.t1;
        self.clients.insert(key.clone(), id);
        self.txs.insert(
            id,
            Tx {
                role: Role::Client(ClientTx {
                    request: request.clone(),
                    ack: None,
                    pending_cancel: None,
                }),
                invite,
                state: if invite {
                    State::Calling
                } else {
                    State::Trying
                },
                peer: peer.clone(),
                interval: t1,
                timers: Vec::new(),
                client_key: Some(key),
                server_key: None,
            },
        );
        self.transmit(peer, Message::Request(request.clone()));
        // RFC 3261 17.1.1.2 / 17.1.2.2: A or E start at T1 on unreliable transports; B and F
        // are 64*T1 whatever the transport.
        if !reliable {
            self.set_timer(id, if invite { Timer::A } else { Timer::E }, now + t1);
        }
        self.set_timer(id, if invite { Timer::B } else { Timer::F }, now + t1 * 64);
        Ok(())
    }

    /// Cancels an INVITE client transaction (RFC 3261 9.1): builds the CANCEL and sends it
    /// now if a provisional response has arrived, or as soon as one does. Returns the id the
    /// CANCEL's own transaction will have; its responses arrive as events with that id.
    pub fn cancel(
        &mut self,
        now: MonoTime,
        invite: TransactionId,
    ) -> Result<TransactionId, TransactionError> {
        let tx = self
            .txs
            .get(&invite)
            .ok_or(TransactionError::NoSuchTransaction(invite))?;
        let Role::Client(client) = &tx.role else {
            return Err(TransactionError::NotCancellable);
        };
        if !tx.invite {
            return Err(TransactionError::NotCancellable);
        }
        if let Some(pending) = client.pending_cancel {
            return Ok(pending);
        }
        let state = tx.state;
        let request = client.request.clone();
        let peer = tx.peer.clone();
        match state {
            State::Calling => {
                let id = self.alloc_id();
                if let Some(Tx {
                    role: Role::Client(c),
                    ..
                }) = self.txs.get_mut(&invite)
                {
                    c.pending_cancel = Some(id);
                }
                Ok(id)
            }
            State::Proceeding => {
                let mut cancel = cancel_for(&request);
                let id = self.alloc_id();
                self.start_client(now, id, &mut cancel, peer)?;
                Ok(id)
            }
            _ => Err(TransactionError::AlreadyCompleted),
        }
    }

    /// Sends `response` in server transaction `id` and moves it on (RFC 3261 17.2.1,
    /// 17.2.2, RFC 6026 for 2xx to INVITE, which the transaction user may send again while
    /// the transaction is Accepted).
    pub fn send_response(
        &mut self,
        now: MonoTime,
        id: TransactionId,
        response: Response,
    ) -> Result<(), TransactionError> {
        let t1 = self.config.t1;
        let tx = self
            .txs
            .get_mut(&id)
            .ok_or(TransactionError::NoSuchTransaction(id))?;
        let Role::Server(server) = &mut tx.role else {
            return Err(TransactionError::NoSuchTransaction(id));
        };
        let status = response.status;
        let allowed = match tx.state {
            State::Trying | State::Proceeding => true,
            State::Accepted => status.is_success(),
            _ => false,
        };
        if !allowed {
            return Err(TransactionError::AlreadyCompleted);
        }
        server.answered = true;
        if status.is_final() {
            server.to_tag = response
                .headers
                .to()
                .ok()
                .and_then(|t| t.tag().map(str::to_string));
        }
        server.last_response = Some(response.clone());
        let peer = tx.peer.clone();
        let reliable = peer.is_reliable();
        let invite = tx.invite;
        let was = tx.state;
        tx.state = match (invite, status.is_provisional(), status.is_success()) {
            (_, true, _) => State::Proceeding,
            (true, false, true) => State::Accepted,
            (_, false, _) => State::Completed,
        };
        let state = tx.state;
        self.cancel_timer(id, Timer::Trying);
        self.transmit(peer, Message::Response(response));
        match (invite, state) {
            (true, State::Accepted) if was != State::Accepted => {
                // RFC 6026 8.7: Timer L = 64*T1.
                self.set_timer(id, Timer::L, now + t1 * 64);
            }
            (true, State::Completed) => {
                // RFC 3261 17.2.1: G (unreliable only) and H.
                if !reliable {
                    self.set_timer(id, Timer::G, now + t1);
                }
                self.set_timer(id, Timer::H, now + t1 * 64);
            }
            (false, State::Completed) => {
                // RFC 3261 17.2.2: J = 64*T1 unreliable, zero reliable.
                if reliable {
                    self.terminate(id);
                } else {
                    self.set_timer(id, Timer::J, now + t1 * 64);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Feeds what happened on the network.
    pub fn handle_input(&mut self, now: MonoTime, input: Input) {
        match input {
            Input::Received {
                message: Message::Response(r),
                peer,
            } => self.on_response(now, r, peer),
            Input::Received {
                message: Message::Request(r),
                peer,
            } => self.on_request(now, r, peer),
            Input::TransportError { id } => {
                if self.txs.contains_key(&id) {
                    self.event(Event::TransportError { id });
                    self.terminate(id);
                }
            }
        }
    }

    fn on_response(&mut self, now: MonoTime, response: Response, peer: Peer) {
        let key = match (response.headers.top_via(), response.headers.cseq()) {
            (Ok(via), Ok(cseq)) => via.branch().map(|b| client_key_of(b, &cseq.method)),
            _ => None,
        };
        let Some(id) = key.and_then(|k| self.clients.get(&k).copied()) else {
            self.event(Event::StrayResponse { response, peer });
            return;
        };
        let t1 = self.config.t1;
        let t4 = self.config.t4;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let Role::Client(client) = &mut tx.role else {
            return;
        };
        let status = response.status;
        let reliable = tx.peer.is_reliable();
        match (tx.invite, tx.state) {
            // RFC 3261 17.1.1.2: client INVITE.
            (true, State::Calling | State::Proceeding) => {
                if status.is_provisional() {
                    let first = tx.state == State::Calling;
                    tx.state = State::Proceeding;
                    let pending = client.pending_cancel.take();
                    let request = client.request.clone();
                    let peer = tx.peer.clone();
                    if first {
                        self.cancel_timer(id, Timer::A);
                        self.cancel_timer(id, Timer::B);
                    }
                    self.event(Event::Response { id, response });
                    if let Some(cancel_id) = pending {
                        let mut cancel = cancel_for(&request);
                        if self
                            .start_client(now, cancel_id, &mut cancel, peer)
                            .is_err()
                        {
                            self.event(Event::Terminated { id: cancel_id });
                        }
                    }
                } else if status.is_success() {
                    tx.state = State::Accepted;
                    let pending = client.pending_cancel.take();
                    self.cancel_timer(id, Timer::A);
                    self.cancel_timer(id, Timer::B);
                    // RFC 6026 8.4: Timer M = 64*T1.
                    self.set_timer(id, Timer::M, now + t1 * 64);
                    self.event(Event::Response { id, response });
                    if let Some(cancel_id) = pending {
                        self.event(Event::Terminated { id: cancel_id });
                    }
                } else {
                    tx.state = State::Completed;
                    let ack = ack_for(&client.request, &response);
                    client.ack = Some(ack.clone());
                    let pending = client.pending_cancel.take();
                    let peer = tx.peer.clone();
                    self.cancel_timer(id, Timer::A);
                    self.cancel_timer(id, Timer::B);
                    self.event(Event::Response { id, response });
                    self.transmit(peer, Message::Request(ack));
                    if let Some(cancel_id) = pending {
                        self.event(Event::Terminated { id: cancel_id });
                    }
                    // Timer D: at least 32 s unreliable, zero reliable.
                    if reliable {
                        self.terminate(id);
                    } else {
                        self.set_timer(id, Timer::D, now + (t1 * 64).max(Duration::from_secs(32)));
                    }
                }
            }
            (true, State::Completed) => {
                // A retransmitted final response: send the ACK again, tell no one.
                if !status.is_success()
                    && let Some(ack) = client.ack.clone()
                {
                    let peer = tx.peer.clone();
                    self.transmit(peer, Message::Request(ack));
                }
            }
            (true, State::Accepted) if status.is_success() => {
                self.event(Event::Response { id, response });
            }
            // RFC 3261 17.1.2.2: client non-INVITE.
            (false, State::Trying | State::Proceeding) => {
                if status.is_provisional() {
                    tx.state = State::Proceeding;
                } else {
                    tx.state = State::Completed;
                    self.cancel_timer(id, Timer::E);
                    self.cancel_timer(id, Timer::F);
                    if reliable {
                        self.event(Event::Response { id, response });
                        self.terminate(id);
                        return;
                    }
                    self.set_timer(id, Timer::K, now + t4);
                }
                self.event(Event::Response { id, response });
            }
            _ => {} // Completed non-INVITE: retransmissions absorbed.
        }
    }

    fn on_request(&mut self, now: MonoTime, request: Request, peer: Peer) {
        let Some(key) = server_key(&request, None) else {
            // Without a usable Via nothing can be answered; triage drops these earlier.
            return;
        };
        let t4 = self.config.t4;
        if request.method == Method::Ack {
            let to_tag = request
                .headers
                .to()
                .ok()
                .and_then(|t| t.tag().map(str::to_string));
            let found = self.servers.get(&key).copied().filter(|id| {
                matches!(&key, ServerKey::Rfc3261 { .. })
                    || self.txs.get(id).is_some_and(|t| match &t.role {
                        Role::Server(s) => s.to_tag == to_tag,
                        Role::Client(_) => false,
                    })
            });
            let Some(id) = found else {
                self.event(Event::Request {
                    id: None,
                    request,
                    peer,
                    cancels: None,
                });
                return;
            };
            let Some(tx) = self.txs.get_mut(&id) else {
                return;
            };
            match tx.state {
                State::Completed => {
                    // RFC 3261 17.2.1: ACK of the non-2xx: Confirmed, Timer I.
                    tx.state = State::Confirmed;
                    let reliable = tx.peer.is_reliable();
                    self.cancel_timer(id, Timer::G);
                    self.cancel_timer(id, Timer::H);
                    if reliable {
                        self.terminate(id);
                    } else {
                        self.set_timer(id, Timer::I, now + t4);
                    }
                }
                State::Accepted => self.event(Event::Ack { id, request }),
                _ => {} // Confirmed: absorbed. Proceeding: an ACK before any final, ignored.
            }
            return;
        }
        if let Some(&id) = self.servers.get(&key) {
            // A retransmission: answer with the last response, if any (RFC 3261 17.2.1-2).
            if let Some(tx) = self.txs.get(&id)
                && let Role::Server(s) = &tx.role
                && tx.state != State::Accepted
                && let Some(last) = s.last_response.clone()
            {
                let peer = tx.peer.clone();
                self.transmit(peer, Message::Response(last));
            }
            return;
        }
        let cancels = if request.method == Method::Cancel {
            server_key(&request, Some(&Method::Invite)).and_then(|k| self.servers.get(&k).copied())
        } else {
            None
        };
        let id = self.alloc_id();
        let invite = request.method == Method::Invite;
        self.servers.insert(key.clone(), id);
        self.txs.insert(
            id,
            Tx {
                role: Role::Server(ServerTx {
                    request: request.clone(),
                    last_response: None,
                    to_tag: None,
                    answered: false,
                }),
                invite,
                state: if invite {
                    State::Proceeding
                } else {
                    State::Trying
                },
                peer: peer.clone(),
                interval: self.config.t1,
                timers: Vec::new(),
                client_key: None,
                server_key: Some(key),
            },
        );
        if invite {
            let at = now + self.config.trying_delay;
            self.set_timer(id, Timer::Trying, at);
        }
        self.event(Event::Request {
            id: Some(id),
            request,
            peer,
            cancels,
        });
    }

    /// Fires every timer due at `now`, in deadline order.
    pub fn handle_timeout(&mut self, now: MonoTime) {
        while let Some(&(at, id, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id, timer));
            if let Some(tx) = self.txs.get_mut(&id) {
                tx.timers.retain(|(t, _)| *t != timer);
            }
            self.fire(now, id, timer);
        }
    }

    fn fire(&mut self, now: MonoTime, id: TransactionId, timer: Timer) {
        let t2 = self.config.t2;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        match timer {
            Timer::A | Timer::E => {
                // RFC 3261 17.1.1.2: A doubles without bound until B.
                // RFC 3261 17.1.2.2: E doubles up to T2 in Trying, is T2 in Proceeding.
                let next = match (timer, tx.state) {
                    (Timer::A, _) => tx.interval * 2,
                    (_, State::Trying) => (tx.interval * 2).min(t2),
                    _ => t2,
                };
                tx.interval = next;
                let Role::Client(c) = &tx.role else { return };
                let (peer, request) = (tx.peer.clone(), c.request.clone());
                self.transmit(peer, Message::Request(request));
                self.set_timer(id, timer, now + next);
            }
            Timer::G => {
                // RFC 3261 17.2.1: G doubles up to T2.
                tx.interval = (tx.interval * 2).min(t2);
                let next = tx.interval;
                let Role::Server(s) = &tx.role else { return };
                if let Some(last) = s.last_response.clone() {
                    let peer = tx.peer.clone();
                    self.transmit(peer, Message::Response(last));
                }
                self.set_timer(id, timer, now + next);
            }
            Timer::B | Timer::F | Timer::H => {
                self.event(Event::Timeout { id });
                self.terminate(id);
            }
            Timer::D | Timer::K | Timer::I | Timer::J | Timer::L | Timer::M => self.terminate(id),
            Timer::Trying => {
                let Role::Server(s) = &mut tx.role else {
                    return;
                };
                if !s.answered {
                    let trying = Response::for_request(&s.request, StatusCode::TRYING, "Trying");
                    s.last_response = Some(trying.clone());
                    let peer = tx.peer.clone();
                    self.transmit(peer, Message::Response(trying));
                }
            }
        }
    }
}

fn replace_top_via(request: &mut Request, via: &Via) {
    // The top Via may share a line with others; rewrite that line with the new first value.
    let mut rest = request.headers.via().unwrap_or_default();
    if rest.is_empty() {
        return;
    }
    rest[0] = via.clone();
    let first_line_values = request
        .headers
        .get(&HeaderName::VIA)
        .and_then(|v| crate::values::Via::parse_list(v).ok())
        .map_or(1, |l| l.len());
    let line: Vec<String> = rest[..first_line_values.min(rest.len())]
        .iter()
        .map(Via::to_string)
        .collect();
    let mut new = crate::Headers::new();
    let mut replaced = false;
    for h in request.headers.iter() {
        if h.name == HeaderName::VIA && !replaced {
            new.push(HeaderName::VIA, line.join(", "));
            replaced = true;
        } else {
            new.push(h.name.clone(), h.value.clone());
        }
    }
    request.headers = new;
}

/// The CANCEL for `invite` (RFC 3261 9.1): same Request-URI, Call-ID, To, From, CSeq number
/// and top Via, method CANCEL, the INVITE's Route set, no body.
pub fn cancel_for(invite: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    if let Ok(top) = invite.headers.top_via() {
        c.headers.push(HeaderName::VIA, top.to_string());
    }
    for name in [HeaderName::FROM, HeaderName::TO, HeaderName::CALL_ID] {
        if let Some(v) = invite.headers.get(&name) {
            c.headers.push(name, v);
        }
    }
    if let Ok(cseq) = invite.headers.cseq() {
        c.headers
            .push(HeaderName::CSEQ, format!("{} CANCEL", cseq.seq));
    }
    for r in invite.headers.get_all(&HeaderName::ROUTE) {
        c.headers.push(HeaderName::ROUTE, r);
    }
    c.headers.push(HeaderName::MAX_FORWARDS, "70");
    c
}

/// The ACK of a non-2xx final response (RFC 3261 17.1.1.3): the INVITE's Request-URI,
/// Call-ID, From, top Via and Route set, the response's To (with its tag), CSeq number of
/// the INVITE with method ACK.
fn ack_for(invite: &Request, response: &Response) -> Request {
    let mut a = Request::new(Method::Ack, invite.uri.clone());
    if let Ok(top) = invite.headers.top_via() {
        a.headers.push(HeaderName::VIA, top.to_string());
    }
    if let Some(v) = invite.headers.get(&HeaderName::FROM) {
        a.headers.push(HeaderName::FROM, v);
    }
    if let Some(v) = response.headers.get(&HeaderName::TO) {
        a.headers.push(HeaderName::TO, v);
    } else if let Some(v) = invite.headers.get(&HeaderName::TO) {
        a.headers.push(HeaderName::TO, v);
    }
    if let Some(v) = invite.headers.get(&HeaderName::CALL_ID) {
        a.headers.push(HeaderName::CALL_ID, v);
    }
    if let Ok(cseq) = invite.headers.cseq() {
        a.headers
            .push(HeaderName::CSEQ, format!("{} ACK", cseq.seq));
    }
    for r in invite.headers.get_all(&HeaderName::ROUTE) {
        a.headers.push(HeaderName::ROUTE, r);
    }
    a.headers.push(HeaderName::MAX_FORWARDS, "70");
    a
}
