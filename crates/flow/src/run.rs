//! The interpreter: one [`FlowRun`] per interaction.

use crate::def::{FlowDef, Node};
use crate::hours::is_open;
use crate::text::{Text, builtin, substitute};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::time::Duration;
use switchboard_model::{Channel, MonoTime};

/// Most nodes a run passes through between two inputs; a run that needs more is stopped with
/// [`Output::Error`] (a guard against loops the validation cannot see, e.g. through `branch`).
pub const STEP_BUDGET: u32 = 1000;

/// What a run starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// Attributes known up front (caller number, page, customer id, ...).
    pub attributes: Map<String, Value>,
    /// The interaction's channel.
    pub channel: Channel,
    /// The customer's language (`en`, `ar`, `fa`); texts fall back to English.
    pub language: String,
}

/// The time, as the driver knows it: monotonic for timers, wall time for business hours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    /// Monotonic time.
    pub mono: MonoTime,
    /// Wall time (UTC).
    pub wall: jiff::Timestamp,
}

/// Something that happened, told to the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Keys pressed (voice DTMF), in order.
    Digits(String),
    /// A typed answer (chat).
    Text(String),
    /// The response to [`Output::HttpRequest`] `id`.
    HttpResponse {
        /// The request's id.
        id: u64,
        /// HTTP status.
        status: u16,
        /// Response body (JSON expected).
        body: String,
    },
    /// The request `id` failed (connection error, timeout at the driver).
    HttpFailed {
        /// The request's id.
        id: u64,
    },
    /// The interaction's place in its queue (fed by the driver while it waits).
    QueueUpdate {
        /// Position, 1 = next.
        position: usize,
        /// Estimated wait.
        wait: Duration,
    },
}

/// A choice shown with a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// DTMF key / number typed in chat.
    pub key: String,
    /// Label in the run's language.
    pub label: String,
}

/// An HTTP request for the driver to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Id to answer with.
    pub id: u64,
    /// `GET` or `POST`.
    pub method: String,
    /// URL, attributes substituted.
    pub url: String,
    /// JSON body for POST.
    pub body: Option<String>,
    /// Give up after this long (the run also times out on its own).
    pub timeout: Duration,
}

/// Where and how to queue the interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRequest {
    /// Queue name.
    pub queue: String,
    /// Priority; `None` takes the queue's.
    pub priority: Option<i32>,
    /// Skill names wanted.
    pub skills: Vec<String>,
    /// The run's attributes at this point.
    pub attributes: Map<String, Value>,
    /// How often the driver should feed [`Input::QueueUpdate`] (announcements).
    pub announce_every: Option<Duration>,
    /// Long-wait threshold.
    pub long_wait: Option<Duration>,
    /// Help-center link offered at a long wait.
    pub self_service_url: Option<String>,
    /// Email answer offered at a long wait.
    pub email_follow_up: bool,
    /// Call back offered at a long wait.
    pub callback: bool,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Say (chat: a bot message) or play (voice) a text.
    Say {
        /// The text, attributes substituted.
        text: String,
        /// Its language.
        lang: String,
        /// A recorded prompt to play instead (voice).
        prompt_file: Option<String>,
    },
    /// Ask a question with choices (chat: buttons; voice: a prompt and DTMF).
    Menu {
        /// The node asking.
        node: String,
        /// The question.
        prompt: String,
        /// Its language.
        lang: String,
        /// A recorded prompt (voice).
        prompt_file: Option<String>,
        /// The choices.
        options: Vec<Choice>,
    },
    /// A menu choice was made (for the event log).
    Chosen {
        /// The node.
        node: String,
        /// The key chosen.
        key: String,
        /// Its label (in the run's language).
        label: String,
    },
    /// Collect digits.
    Collect {
        /// The node asking.
        node: String,
        /// The question, if any.
        prompt: Option<String>,
        /// Its language.
        lang: String,
        /// A recorded prompt (voice).
        prompt_file: Option<String>,
        /// Most digits.
        max_digits: u32,
        /// Wait per digit.
        timeout: Duration,
        /// Key that ends input early.
        terminator: Option<char>,
    },
    /// Perform an HTTP request and answer with [`Input::HttpResponse`] or
    /// [`Input::HttpFailed`].
    HttpRequest(HttpRequest),
    /// Queue the interaction. The run keeps going: feed it [`Input::QueueUpdate`] while it
    /// waits, and typed answers to the long-wait offer.
    Queue(QueueRequest),
    /// The customer wants an email answer instead of waiting; the run ends next.
    FollowUp {
        /// The email address given.
        email: String,
    },
    /// Record a voicemail for `queue`; the run is over.
    Voicemail {
        /// The queue.
        queue: String,
        /// Longest recording.
        max: Duration,
        /// The recording ends after this much silence (`None`: it does not).
        silence: Option<Duration>,
    },
    /// Register a call back from `queue`; the run is over.
    Callback {
        /// The queue.
        queue: String,
        /// The number to call; `None` means the caller's own.
        number: Option<String>,
        /// What confirms it to the caller (the node's own text or the built-in one, in
        /// en/ar/fa), `{{number}}` the number being called back; see [`crate::render`].
        confirm: Text,
        /// The run's language, to say it in.
        lang: String,
    },
    /// The run is over.
    End {
        /// Why (`flow_ended`, `follow_up_requested`, an `end` node's reason, `flow_error`).
        reason: String,
    },
    /// Something went wrong at run time (a node missing, the step budget used up); an
    /// [`Output::End`] with reason `flow_error` follows.
    Error {
        /// The node.
        node: String,
        /// What went wrong.
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Between steps (only inside `advance`).
    At(String),
    Menu {
        node: String,
        attempts: u32,
        deadline: Option<MonoTime>,
    },
    Collect {
        node: String,
        digits: String,
        deadline: MonoTime,
    },
    Http {
        node: String,
        id: u64,
        deadline: MonoTime,
    },
    Queued {
        node: String,
        last_announce: Option<MonoTime>,
        offer: Offer,
    },
    /// A `follow_up` node waits for an email address.
    Email {
        node: String,
    },
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// The long-wait offer was not made yet.
    NotYet,
    /// Shown; a typed answer picks from it.
    Open,
    /// The customer chose the email answer and we wait for the address.
    AwaitingEmail,
    /// Declined (keep waiting) or not wanted: nothing more is offered.
    Closed,
}

/// Keys of the long-wait offer's choices.
const KEY_SELF_SERVICE: &str = "1";
const KEY_FOLLOW_UP: &str = "2";
const KEY_CALLBACK: &str = "3";
const KEY_KEEP_WAITING: &str = "9";
/// The key a caller presses for a call back, unless the queue node names another.
pub const DEFAULT_CALLBACK_KEY: &str = "1";

/// One interaction's run through a flow. See the crate docs for the driving loop.
#[derive(Debug, Clone)]
pub struct FlowRun {
    def: FlowDef,
    attributes: Map<String, Value>,
    channel: Channel,
    lang: String,
    state: State,
    outputs: VecDeque<Output>,
    next_http: u64,
}

impl FlowRun {
    /// Starts a run at the definition's start node and runs it to its first wait.
    pub fn start(def: FlowDef, ctx: Context, now: Now) -> FlowRun {
        let start = def.start.clone();
        let mut run = FlowRun {
            def,
            attributes: ctx.attributes,
            channel: ctx.channel,
            lang: ctx.language,
            state: State::At(start),
            outputs: VecDeque::new(),
            next_http: 1,
        };
        run.advance(now);
        run
    }

    /// The attributes as the flow has set them.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// The run's language.
    pub fn language(&self) -> &str {
        &self.lang
    }

    /// The interaction's channel.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// Whether the run is over.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Whether the run handed the interaction to a queue and keeps it company there.
    pub fn is_queued(&self) -> bool {
        matches!(self.state, State::Queued { .. })
    }

    /// The node the run waits at, if any.
    pub fn node(&self) -> Option<&str> {
        match &self.state {
            State::At(n)
            | State::Menu { node: n, .. }
            | State::Collect { node: n, .. }
            | State::Http { node: n, .. }
            | State::Queued { node: n, .. }
            | State::Email { node: n } => Some(n),
            State::Finished => None,
        }
    }

    /// The menu the run waits on (to show it again, e.g. to a reconnecting customer).
    pub fn open_menu(&self) -> Option<Output> {
        match &self.state {
            State::Menu { node, .. } => match self.def.nodes.get(node) {
                Some(Node::Menu {
                    prompt,
                    prompt_file,
                    options,
                    ..
                }) => Some(Output::Menu {
                    node: node.clone(),
                    prompt: self.text(prompt),
                    lang: prompt.lang_of(&self.lang).to_owned(),
                    prompt_file: prompt_file.clone(),
                    options: options
                        .iter()
                        .map(|o| Choice {
                            key: o.key.clone(),
                            label: self.text(&o.label),
                        })
                        .collect(),
                }),
                _ => None,
            },
            State::Queued {
                node,
                offer: Offer::Open,
                ..
            } => self.long_wait_menu(node),
            _ => None,
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`FlowRun::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        match &self.state {
            State::Menu { deadline, .. } => *deadline,
            State::Collect { deadline, .. } | State::Http { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// Tells the run what happened. Returns whether the input meant something to the flow
    /// (false: e.g. a chat message while queued that is for the agent, not the bot).
    pub fn handle_input(&mut self, now: Now, input: Input) -> bool {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let (state, used) = self.on_input(state, now, input);
        self.state = state;
        self.advance(now);
        used
    }

    /// Wakes the run at (or after) its [`FlowRun::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Now) {
        let due = self.poll_timeout().is_some_and(|d| d <= now.mono);
        if !due {
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Finished);
        self.state = match state {
            State::Menu { node, attempts, .. } => match self.def.nodes.get(&node) {
                Some(Node::Menu {
                    on_timeout: Some(t),
                    ..
                }) => State::At(t.clone()),
                _ => self.menu_invalid(node, attempts, now),
            },
            State::Collect { node, digits, .. } => self.collect_done(&node, digits),
            State::Http { node, .. } => self.http_error(&node),
            other => other,
        };
        self.advance(now);
    }

    /// A queue node's call back confirmation: its own, else the built-in one.
    fn callback_confirmation(&self, node: &str) -> Text {
        self.queue_node(node)
            .and_then(|q| q.callback_confirm_text.cloned())
            .unwrap_or_else(builtin::callback_confirm)
    }

    fn text(&self, t: &Text) -> String {
        substitute(t.get(&self.lang), &self.attributes)
    }

    fn say(&mut self, t: &Text, prompt_file: Option<String>) {
        let text = self.text(t);
        let lang = t.lang_of(&self.lang).to_owned();
        self.outputs.push_back(Output::Say {
            text,
            lang,
            prompt_file,
        });
    }

    fn say_with(&mut self, t: &Text, extra: &[(&str, String)]) {
        let mut attrs = self.attributes.clone();
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), Value::String(v.clone()));
        }
        let text = substitute(t.get(&self.lang), &attrs);
        let lang = t.lang_of(&self.lang).to_owned();
        self.outputs.push_back(Output::Say {
            text,
            lang,
            prompt_file: None,
        });
    }

    fn fail(&mut self, node: &str, message: String) -> State {
        self.outputs.push_back(Output::Error {
            node: node.to_owned(),
            message,
        });
        self.outputs.push_back(Output::End {
            reason: "flow_error".into(),
        });
        State::Finished
    }

    fn on_input(&mut self, state: State, now: Now, input: Input) -> (State, bool) {
        match (state, input) {
            (State::Menu { node, attempts, .. }, Input::Digits(d) | Input::Text(d)) => {
                let Some(Node::Menu { options, .. }) = self.def.nodes.get(&node) else {
                    return (self.fail(&node, "not a menu".into()), true);
                };
                let answer = normalize(&d);
                let hit = options.iter().find(|o| {
                    o.key == answer
                        || o.label
                            .variants()
                            .iter()
                            .any(|v| normalize(&substitute(v, &self.attributes)) == answer)
                });
                match hit {
                    Some(o) => {
                        let (next, key) = (o.next.clone(), o.key.clone());
                        let label = self.text(&o.label.clone());
                        self.outputs.push_back(Output::Chosen { node, key, label });
                        (State::At(next), true)
                    }
                    None => (self.menu_invalid(node, attempts, now), true),
                }
            }
            (
                State::Collect {
                    node,
                    mut digits,
                    deadline,
                },
                input @ (Input::Digits(_) | Input::Text(_)),
            ) => {
                let Some(Node::Collect {
                    max_digits,
                    terminator,
                    timeout_s,
                    ..
                }) = self.def.nodes.get(&node)
                else {
                    return (self.fail(&node, "not a collect".into()), true);
                };
                let (max, term) = (*max_digits as usize, terminator.chars().next());
                let typed = matches!(input, Input::Text(_));
                let (Input::Digits(keys) | Input::Text(keys)) = input else {
                    unreachable!("matched above")
                };
                for c in keys.chars().map(ascii_digit) {
                    if Some(c) == term && !typed {
                        return (self.collect_done(&node, digits), true);
                    }
                    if c.is_ascii_digit() && digits.len() < max {
                        digits.push(c);
                    }
                    if digits.len() >= max {
                        return (self.collect_done(&node, digits), true);
                    }
                }
                if typed {
                    // A typed answer is complete as it is.
                    return (self.collect_done(&node, digits), true);
                }
                let deadline = if keys.is_empty() {
                    deadline
                } else {
                    now.mono + Duration::from_secs(*timeout_s)
                };
                (
                    State::Collect {
                        node,
                        digits,
                        deadline,
                    },
                    true,
                )
            }
            (
                State::Http { node, id, deadline },
                Input::HttpResponse {
                    id: got,
                    status,
                    body,
                },
            ) if got == id => {
                let _ = deadline;
                let Some(Node::Http { map, next, .. }) = self.def.nodes.get(&node) else {
                    return (self.fail(&node, "not an http node".into()), true);
                };
                if !(200..300).contains(&status) {
                    return (self.http_error(&node), true);
                }
                let Ok(json) = serde_json::from_str::<Value>(&body) else {
                    return (self.http_error(&node), true);
                };
                let next = next.clone();
                for (attr, pointer) in map.clone() {
                    if let Some(v) = json.pointer(&pointer) {
                        self.set_attribute(&attr, v.clone());
                    }
                }
                (State::At(next), true)
            }
            (State::Http { node, id, .. }, Input::HttpFailed { id: got }) if got == id => {
                (self.http_error(&node), true)
            }
            (
                State::Queued {
                    node,
                    last_announce,
                    offer,
                },
                Input::QueueUpdate { position, wait },
            ) => {
                let (last_announce, offer) =
                    self.queue_update(&node, now, last_announce, offer, position, wait);
                (
                    State::Queued {
                        node,
                        last_announce,
                        offer,
                    },
                    true,
                )
            }
            (
                State::Queued {
                    node,
                    last_announce,
                    offer,
                },
                Input::Digits(t) | Input::Text(t),
            ) => self.queue_answer(node, last_announce, offer, &t),
            (State::Email { node }, Input::Text(t) | Input::Digits(t)) => {
                match self.take_email(&t) {
                    None => (State::Email { node }, true),
                    Some(()) => match self.def.nodes.get(&node) {
                        Some(Node::FollowUp { next: Some(n), .. }) => (State::At(n.clone()), true),
                        _ => {
                            self.outputs.push_back(Output::End {
                                reason: "follow_up_requested".into(),
                            });
                            (State::Finished, true)
                        }
                    },
                }
            }
            (state, _) => (state, false),
        }
    }

    fn menu_invalid(&mut self, node: String, attempts: u32, now: Now) -> State {
        let Some(Node::Menu {
            retries,
            invalid_text,
            on_invalid,
            ..
        }) = self.def.nodes.get(&node)
        else {
            return self.fail(&node, "not a menu".into());
        };
        if attempts >= *retries {
            return match on_invalid {
                Some(n) => State::At(n.clone()),
                None => {
                    self.outputs.push_back(Output::End {
                        reason: "no_choice".into(),
                    });
                    State::Finished
                }
            };
        }
        let t = invalid_text.clone().unwrap_or_else(builtin::invalid_choice);
        self.say(&t, None);
        self.show_menu(node, attempts + 1, now)
    }

    fn show_menu(&mut self, node: String, attempts: u32, now: Now) -> State {
        let Some(Node::Menu { timeout_s, .. }) = self.def.nodes.get(&node) else {
            return self.fail(&node, "not a menu".into());
        };
        let deadline = timeout_s.map(|s| now.mono + Duration::from_secs(s));
        let state = State::Menu {
            node,
            attempts,
            deadline,
        };
        let prev = std::mem::replace(&mut self.state, state);
        if let Some(m) = self.open_menu() {
            self.outputs.push_back(m);
        }
        std::mem::replace(&mut self.state, prev)
    }

    fn collect_done(&mut self, node: &str, digits: String) -> State {
        let Some(Node::Collect {
            min_digits,
            into,
            next,
            on_timeout,
            ..
        }) = self.def.nodes.get(node)
        else {
            return self.fail(node, "not a collect".into());
        };
        if digits.len() >= *min_digits as usize && !digits.is_empty() {
            let (into, next) = (into.clone(), next.clone());
            self.set_attribute(&into, Value::String(digits));
            return State::At(next);
        }
        match on_timeout {
            Some(n) => State::At(n.clone()),
            None => {
                self.outputs.push_back(Output::End {
                    reason: "no_input".into(),
                });
                State::Finished
            }
        }
    }

    fn http_error(&mut self, node: &str) -> State {
        match self.def.nodes.get(node) {
            Some(Node::Http { on_error, .. }) => State::At(on_error.clone()),
            _ => self.fail(node, "not an http node".into()),
        }
    }

    fn set_attribute(&mut self, name: &str, value: Value) {
        let value = match value {
            Value::String(s) => {
                let s = substitute(&s, &self.attributes);
                if name == "priority" {
                    s.trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::Null)
                } else {
                    Value::String(s)
                }
            }
            v => v,
        };
        if name == "language"
            && let Value::String(l) = &value
        {
            self.lang = l.clone();
        }
        self.attributes.insert(name.to_owned(), value);
    }

    fn queue_node(&self, node: &str) -> Option<QueueNode<'_>> {
        match self.def.nodes.get(node)? {
            Node::Queue {
                announce_every_s,
                long_wait_s,
                self_service_url,
                email_follow_up,
                callback,
                callback_key,
                callback_text,
                callback_confirm_text,
                position_text,
                long_wait_text,
                queue,
                ..
            } => Some(QueueNode {
                queue,
                announce_every: announce_every_s.map(Duration::from_secs),
                long_wait: long_wait_s.map(Duration::from_secs),
                self_service_url: self_service_url.as_deref(),
                email_follow_up: *email_follow_up,
                callback: *callback,
                callback_key: callback_key.as_deref().unwrap_or(DEFAULT_CALLBACK_KEY),
                callback_text: callback_text.as_ref(),
                callback_confirm_text: callback_confirm_text.as_ref(),
                position_text: position_text.as_ref(),
                long_wait_text: long_wait_text.as_ref(),
            }),
            _ => None,
        }
    }

    fn queue_update(
        &mut self,
        node: &str,
        now: Now,
        last_announce: Option<MonoTime>,
        offer: Offer,
        position: usize,
        wait: Duration,
    ) -> (Option<MonoTime>, Offer) {
        let Some(q) = self.queue_node(node) else {
            return (last_announce, offer);
        };
        let (every, long_wait, text) = (
            q.announce_every,
            q.long_wait,
            q.position_text.cloned().unwrap_or_else(builtin::position),
        );
        let has_offer = q.self_service_url.is_some() || q.email_follow_up || q.callback;
        let voice_offer = (self.channel == Channel::Voice && q.callback).then(|| {
            (
                q.callback_text
                    .cloned()
                    .unwrap_or_else(builtin::callback_offer),
                q.callback_key.to_owned(),
            )
        });
        let mut last = last_announce;
        let mut announced = false;
        if let Some(every) = every
            && last.is_none_or(|l| now.mono.saturating_since(l) >= every)
        {
            let w = builtin::wait(wait.as_secs(), &self.lang);
            self.say_with(&text, &[("position", position.to_string()), ("wait", w)]);
            last = Some(now.mono);
            announced = true;
        }
        if self.channel == Channel::Voice {
            // Calls: the only other way is a call back, offered by a key once the wait is
            // long enough (at once without `long_wait_s`), and again with each announcement.
            let Some((offer_text, key)) = voice_offer else {
                return (last, offer);
            };
            let due = long_wait.is_none_or(|lw| wait >= lw);
            let offer = match offer {
                Offer::NotYet if due => {
                    self.say_also(announced, &offer_text, key);
                    Offer::Open
                }
                Offer::Open if announced => {
                    self.say_also(announced, &offer_text, key);
                    Offer::Open
                }
                o => o,
            };
            return (last, offer);
        }
        let mut offer = offer;
        if offer == Offer::NotYet && has_offer && long_wait.is_some_and(|lw| wait >= lw) {
            if let Some(m) = self.long_wait_menu(node) {
                self.outputs.push_back(m);
            }
            offer = Offer::Open;
        }
        (last, offer)
    }

    /// Says the call back offer; right after an announcement, as part of it (one prompt: a
    /// second one would cut the first on a call).
    fn say_also(&mut self, after_announcement: bool, t: &Text, key: String) {
        self.say_with(t, &[("key", key)]);
        let n = self.outputs.len();
        if !after_announcement
            || n < 2
            || !matches!(self.outputs.get(n - 2), Some(Output::Say { .. }))
        {
            return;
        }
        if let Some(Output::Say { text: add, .. }) = self.outputs.pop_back()
            && let Some(Output::Say { text, .. }) = self.outputs.back_mut()
        {
            text.push(' ');
            text.push_str(&add);
        }
    }

    fn long_wait_menu(&self, node: &str) -> Option<Output> {
        let q = self.queue_node(node)?;
        let mut options = Vec::new();
        let mut add = |key: &str, t: Text| {
            options.push(Choice {
                key: key.to_owned(),
                label: self.text(&t),
            })
        };
        if q.self_service_url.is_some() {
            add(KEY_SELF_SERVICE, builtin::self_service());
        }
        if q.email_follow_up {
            add(KEY_FOLLOW_UP, builtin::follow_up());
        }
        if q.callback {
            add(KEY_CALLBACK, builtin::callback());
        }
        add(KEY_KEEP_WAITING, builtin::keep_waiting());
        let t = q.long_wait_text.cloned().unwrap_or_else(builtin::long_wait);
        Some(Output::Menu {
            node: node.to_owned(),
            prompt: self.text(&t),
            lang: t.lang_of(&self.lang).to_owned(),
            prompt_file: None,
            options,
        })
    }

    fn queue_answer(
        &mut self,
        node: String,
        last_announce: Option<MonoTime>,
        offer: Offer,
        answer: &str,
    ) -> (State, bool) {
        let queued = |offer| State::Queued {
            node: node.clone(),
            last_announce,
            offer,
        };
        if self.channel == Channel::Voice {
            // Calls: only the call back key means something, once offered.
            let key = self.queue_node(&node).and_then(|q| {
                (q.callback && offer == Offer::Open).then(|| q.callback_key.to_owned())
            });
            let queue = self.queue_node(&node).map(|q| q.queue.to_owned());
            let confirm = self.callback_confirmation(&node);
            return match (key, queue) {
                (Some(k), Some(queue)) if answer.trim() == k => {
                    self.outputs.push_back(Output::Chosen {
                        node: node.clone(),
                        key: k,
                        label: self.text(&builtin::callback()),
                    });
                    let queue = substitute(&queue, &self.attributes);
                    self.outputs.push_back(Output::Callback {
                        queue,
                        number: None,
                        confirm,
                        lang: self.lang.clone(),
                    });
                    self.outputs.push_back(Output::End {
                        reason: "callback_requested".into(),
                    });
                    (State::Finished, true)
                }
                _ => (queued(offer), false),
            };
        }
        match offer {
            Offer::Open => {
                let Some(Output::Menu { options, .. }) = self.long_wait_menu(&node) else {
                    return (queued(offer), false);
                };
                let a = normalize(answer);
                let Some(choice) = options
                    .iter()
                    .find(|c| c.key == a || normalize(&c.label) == a)
                    .cloned()
                else {
                    // Not an answer to the offer: a message for the agent.
                    return (queued(offer), false);
                };
                self.outputs.push_back(Output::Chosen {
                    node: node.clone(),
                    key: choice.key.clone(),
                    label: choice.label.clone(),
                });
                let q = self
                    .queue_node(&node)
                    .map(|q| (q.self_service_url.map(str::to_owned), q.queue.to_owned()));
                let (url, queue) = q.unwrap_or_default();
                match choice.key.as_str() {
                    KEY_SELF_SERVICE => {
                        self.say_with(
                            &builtin::self_service_link(),
                            &[("url", url.unwrap_or_default())],
                        );
                        (queued(Offer::Open), true)
                    }
                    KEY_FOLLOW_UP => {
                        self.say(&builtin::ask_email(), None);
                        (queued(Offer::AwaitingEmail), true)
                    }
                    KEY_CALLBACK => {
                        let queue = substitute(&queue, &self.attributes);
                        let confirm = self.callback_confirmation(&node);
                        self.outputs.push_back(Output::Callback {
                            queue,
                            number: None,
                            confirm,
                            lang: self.lang.clone(),
                        });
                        self.outputs.push_back(Output::End {
                            reason: "callback_requested".into(),
                        });
                        (State::Finished, true)
                    }
                    _ => (queued(Offer::Closed), true),
                }
            }
            Offer::AwaitingEmail => match self.take_email(answer) {
                None => (queued(offer), true),
                Some(()) => {
                    self.outputs.push_back(Output::End {
                        reason: "follow_up_requested".into(),
                    });
                    (State::Finished, true)
                }
            },
            Offer::NotYet | Offer::Closed => (queued(offer), false),
        }
    }

    /// Takes a typed email address for a follow-up: confirms it and emits [`Output::FollowUp`],
    /// or asks again (`None`).
    fn take_email(&mut self, answer: &str) -> Option<()> {
        let email = answer.trim().to_lowercase();
        if !is_email(&email) {
            self.say(&builtin::bad_email(), None);
            return None;
        }
        self.say_with(&builtin::follow_up_done(), &[("email", email.clone())]);
        self.attributes
            .insert("follow_up_email".into(), Value::String(email.clone()));
        self.outputs.push_back(Output::FollowUp { email });
        Some(())
    }

    /// Runs from the current node until the run waits or finishes.
    fn advance(&mut self, now: Now) {
        let mut steps = 0u32;
        while let State::At(id) = &self.state {
            let id = id.clone();
            steps += 1;
            if steps > STEP_BUDGET {
                self.state = self.fail(
                    &id,
                    format!("more than {STEP_BUDGET} steps without waiting for input"),
                );
                return;
            }
            let Some(node) = self.def.nodes.get(&id).cloned() else {
                self.state = self.fail(&id, "no such node".into());
                return;
            };
            self.state = self.step(id, node, now);
        }
    }

    fn step(&mut self, id: String, node: Node, now: Now) -> State {
        match node {
            Node::Say {
                text,
                prompt_file,
                next,
            } => {
                self.say(&text, prompt_file);
                match next {
                    Some(n) => State::At(n),
                    None => self.end(None, None),
                }
            }
            Node::Menu { .. } => self.show_menu(id, 0, now),
            Node::Collect {
                prompt,
                prompt_file,
                max_digits,
                timeout_s,
                terminator,
                ..
            } => {
                let timeout = Duration::from_secs(timeout_s);
                let lang = prompt
                    .as_ref()
                    .map(|p| p.lang_of(&self.lang).to_owned())
                    .unwrap_or_else(|| self.lang.clone());
                self.outputs.push_back(Output::Collect {
                    node: id.clone(),
                    prompt: prompt.as_ref().map(|p| self.text(p)),
                    lang,
                    prompt_file,
                    max_digits,
                    timeout,
                    terminator: terminator.chars().next(),
                });
                State::Collect {
                    node: id,
                    digits: String::new(),
                    deadline: now.mono + timeout,
                }
            }
            Node::Hours {
                schedule,
                open_next,
                closed_next,
            } => match is_open(&schedule, now.wall) {
                Ok(true) => State::At(open_next),
                Ok(false) => State::At(closed_next),
                Err(e) => self.fail(&id, e.to_string()),
            },
            Node::Set { attributes, next } => {
                for (k, v) in attributes {
                    self.set_attribute(&k, v);
                }
                State::At(next)
            }
            Node::Branch {
                attribute,
                cases,
                otherwise,
            } => {
                let value = self.attributes.get(&attribute);
                let hit = cases.iter().find(|c| c.holds(value));
                State::At(hit.map(|c| c.next.clone()).unwrap_or(otherwise))
            }
            Node::Http {
                method,
                url,
                body,
                timeout_s,
                ..
            } => {
                let reqid = self.next_http;
                self.next_http += 1;
                let timeout = Duration::from_secs(timeout_s);
                let body = body.map(|b| substitute_json(b, &self.attributes).to_string());
                self.outputs.push_back(Output::HttpRequest(HttpRequest {
                    id: reqid,
                    method,
                    url: substitute(&url, &self.attributes),
                    body,
                    timeout,
                }));
                State::Http {
                    node: id,
                    id: reqid,
                    deadline: now.mono + timeout,
                }
            }
            Node::Queue {
                queue,
                priority,
                skills,
                announce_every_s,
                long_wait_s,
                self_service_url,
                email_follow_up,
                callback,
                ..
            } => {
                let queue = match self.attributes.get("queue") {
                    Some(Value::String(q)) if !q.is_empty() => q.clone(),
                    _ => substitute(&queue, &self.attributes),
                };
                let priority = match self.attributes.get("priority") {
                    Some(p) if p.is_i64() => p.as_i64().map(|p| p.clamp(-1000, 1000) as i32),
                    _ => priority,
                };
                let skills = match self.attributes.get("skills") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    Some(Value::String(s)) => s
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                    _ => skills,
                };
                self.outputs.push_back(Output::Queue(QueueRequest {
                    queue,
                    priority,
                    skills,
                    attributes: self.attributes.clone(),
                    announce_every: announce_every_s.map(Duration::from_secs),
                    long_wait: long_wait_s.map(Duration::from_secs),
                    self_service_url,
                    email_follow_up,
                    callback,
                }));
                State::Queued {
                    node: id,
                    last_announce: None,
                    offer: Offer::NotYet,
                }
            }
            Node::Voicemail {
                prompt,
                prompt_file,
                max_s,
                silence_s,
                queue,
            } => {
                if let Some(p) = prompt {
                    self.say(&p, prompt_file);
                }
                self.outputs.push_back(Output::Voicemail {
                    queue: substitute(&queue, &self.attributes),
                    max: Duration::from_secs(max_s),
                    silence: (silence_s > 0).then(|| Duration::from_secs(silence_s)),
                });
                State::Finished
            }
            Node::Callback {
                prompt,
                queue,
                number_attribute,
                confirm_text,
            } => {
                if let Some(p) = prompt {
                    self.say(&p, None);
                }
                let number = number_attribute
                    .and_then(|a| self.attributes.get(&a))
                    .and_then(|v| v.as_str().map(str::to_owned));
                self.outputs.push_back(Output::Callback {
                    queue: substitute(&queue, &self.attributes),
                    number,
                    confirm: confirm_text.unwrap_or_else(builtin::callback_confirm),
                    lang: self.lang.clone(),
                });
                State::Finished
            }
            Node::FollowUp { prompt, .. } => {
                let p = prompt.unwrap_or_else(builtin::ask_email);
                self.say(&p, None);
                State::Email { node: id }
            }
            Node::End { message, reason } => self.end(message, reason),
        }
    }

    fn end(&mut self, message: Option<Text>, reason: Option<String>) -> State {
        if let Some(m) = message {
            self.say(&m, None);
        }
        self.outputs.push_back(Output::End {
            reason: reason.unwrap_or_else(|| "flow_ended".into()),
        });
        State::Finished
    }
}

struct QueueNode<'a> {
    queue: &'a str,
    announce_every: Option<Duration>,
    long_wait: Option<Duration>,
    self_service_url: Option<&'a str>,
    email_follow_up: bool,
    callback: bool,
    callback_key: &'a str,
    callback_text: Option<&'a Text>,
    callback_confirm_text: Option<&'a Text>,
    position_text: Option<&'a Text>,
    long_wait_text: Option<&'a Text>,
}

/// Arabic-Indic and Persian digits as ASCII ones.
fn ascii_digit(c: char) -> char {
    match c {
        '٠'..='٩' => char::from(b'0' + (c as u32 - '٠' as u32) as u8),
        '۰'..='۹' => char::from(b'0' + (c as u32 - '۰' as u32) as u8),
        c => c,
    }
}

/// A typed answer for comparison: trimmed, lower case, ASCII digits, no final full stop.
fn normalize(s: &str) -> String {
    s.trim()
        .trim_end_matches(['.', '!', '。'])
        .chars()
        .map(ascii_digit)
        .collect::<String>()
        .to_lowercase()
}

/// A plausible email address (one `@`, a dotted domain, no spaces).
pub fn is_email(s: &str) -> bool {
    s.len() <= 254
        && !s.contains(char::is_whitespace)
        && s.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && !d.contains('@')
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
        })
}

fn substitute_json(v: Value, attrs: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(&s, attrs)),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| substitute_json(v, attrs)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, substitute_json(v, attrs)))
                .collect(),
        ),
        v => v,
    }
}
