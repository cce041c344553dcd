//! The flow definition (the JSON stored and versioned by the server) and its validation.

use crate::hours::Schedule;
use crate::text::Text;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// A flow: named nodes and the node to start at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    /// Id of the first node.
    pub start: String,
    /// Nodes by id.
    pub nodes: BTreeMap<String, Node>,
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// Say (chat) or play (voice) a text, then go on.
    Say {
        /// The text; `{{name}}` is replaced by attributes.
        text: Text,
        /// A recorded prompt for voice instead of speech synthesis.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_file: Option<String>,
        /// Next node; none ends the flow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Offer choices and wait for one.
    Menu {
        /// The question.
        prompt: Text,
        /// A recorded prompt for voice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_file: Option<String>,
        /// The choices.
        options: Vec<MenuOption>,
        /// Times the menu is asked again after an invalid answer.
        #[serde(default = "default_retries")]
        retries: u32,
        /// Seconds to wait for an answer; none waits forever (chat).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_s: Option<u64>,
        /// Said after an invalid answer before asking again (a built-in text if none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_text: Option<Text>,
        /// Where to go when the retries are used up; none ends the flow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_invalid: Option<String>,
        /// Where to go on timeout; none counts a timeout as an invalid answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_timeout: Option<String>,
    },
    /// Collect digits (voice) or a typed number (chat) into an attribute.
    Collect {
        /// The question.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Text>,
        /// A recorded prompt for voice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_file: Option<String>,
        /// Most digits; collection stops when reached.
        max_digits: u32,
        /// Fewest digits accepted at timeout or terminator.
        #[serde(default = "default_min_digits")]
        min_digits: u32,
        /// Seconds to wait for the (next) digit.
        #[serde(default = "default_collect_timeout")]
        timeout_s: u64,
        /// The key that ends the input early (`#` if none given; `""` for none).
        #[serde(default = "default_terminator")]
        terminator: String,
        /// Attribute that receives the digits.
        into: String,
        /// Next node.
        next: String,
        /// Where to go when too few digits came in time; none ends the flow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_timeout: Option<String>,
    },
    /// Branch on business hours.
    Hours {
        /// The schedule.
        schedule: Schedule,
        /// Next node when open.
        open_next: String,
        /// Next node when closed.
        closed_next: String,
    },
    /// Set attributes. Well-known: `language`, `priority`, `skills`, `queue`.
    Set {
        /// Values (strings get `{{name}}` substitution).
        attributes: Map<String, Value>,
        /// Next node.
        next: String,
    },
    /// Branch on an attribute.
    Branch {
        /// The attribute compared.
        attribute: String,
        /// Cases in order; the first that holds wins.
        cases: Vec<Case>,
        /// Next node when no case holds.
        #[serde(rename = "else")]
        otherwise: String,
    },
    /// Look something up over HTTP (e.g. a CRM) and map JSON fields into attributes.
    Http {
        /// `GET` or `POST`.
        #[serde(default = "default_method")]
        method: String,
        /// The URL (`{{name}}` substituted).
        url: String,
        /// JSON body for POST (strings inside get `{{name}}` substitution).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
        /// Seconds to wait for the response.
        #[serde(default = "default_http_timeout")]
        timeout_s: u64,
        /// Attribute name → JSON pointer into the response (e.g. `/customer/tier`).
        #[serde(default)]
        map: BTreeMap<String, String>,
        /// Next node after a 2xx response.
        next: String,
        /// Next node after an error, a non-2xx status or a timeout.
        on_error: String,
    },
    /// Hand the interaction to a queue; the flow then keeps the customer company while waiting.
    Queue {
        /// Queue name (`{{name}}` substituted; the `queue` attribute wins when set).
        queue: String,
        /// Priority; the `priority` attribute wins when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i32>,
        /// Skill names; the `skills` attribute wins when set.
        #[serde(default)]
        skills: Vec<String>,
        /// Announce position and estimated wait this often (seconds); none stays silent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        announce_every_s: Option<u64>,
        /// Once the estimated wait exceeds this many seconds, offer other ways.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        long_wait_s: Option<u64>,
        /// Help-center link offered at a long wait.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        self_service_url: Option<String>,
        /// Offer an email answer instead of waiting (chat).
        #[serde(default)]
        email_follow_up: bool,
        /// Offer a call back instead of waiting (voice).
        #[serde(default)]
        callback: bool,
        /// Voice: the key that asks for the call back (default `1`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_key: Option<String>,
        /// Voice: replaces the built-in call back offer (`{{key}}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_text: Option<Text>,
        /// Voice: replaces the built-in confirmation of a call back (`{{number}}`: the number,
        /// digit by digit).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_confirm_text: Option<Text>,
        /// Replaces the built-in position text (`{{position}}`, `{{wait}}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position_text: Option<Text>,
        /// Replaces the built-in long-wait offer text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        long_wait_text: Option<Text>,
    },
    /// Record a voicemail; the driver routes the recording to agents as an interaction.
    Voicemail {
        /// Said before the tone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Text>,
        /// A recorded prompt for voice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_file: Option<String>,
        /// Longest recording in seconds.
        #[serde(default = "default_voicemail_s")]
        max_s: u64,
        /// The recording ends after this many seconds of silence (0: never).
        #[serde(default = "default_silence_s")]
        silence_s: u64,
        /// Queue that receives the voicemail.
        queue: String,
    },
    /// Register a call back (to the number in `number_attribute`, or the caller's).
    Callback {
        /// Said to confirm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Text>,
        /// Queue that will call back.
        queue: String,
        /// Attribute holding the number; none means the caller's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number_attribute: Option<String>,
        /// Voice: replaces the built-in confirmation (`{{number}}`: the number, digit by digit).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_text: Option<Text>,
    },
    /// Take an email address for an answer by email (e.g. outside business hours): records a
    /// follow-up request ([`crate::Output::FollowUp`]), then goes on or ends as
    /// `follow_up_requested`.
    FollowUp {
        /// The question (a built-in text if none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<Text>,
        /// Next node; none ends the flow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// End the flow.
    End {
        /// Said last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Text>,
        /// Why (the interaction's disposition), default `flow_ended`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// A choice of a menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    /// The DTMF key for voice and the number typed in chat: one of `0-9`, `*`, `#`.
    pub key: String,
    /// The label shown (chat buttons; typing it works too, in any language variant).
    pub label: Text,
    /// Where the choice leads.
    pub next: String,
}

/// One case of a `branch`: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The attribute equals this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    /// The attribute is one of these values.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// The attribute is a number greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greater: Option<f64>,
    /// The attribute is a number less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub less: Option<f64>,
    /// Where the case leads.
    pub next: String,
}

impl Case {
    /// Whether the case holds for `value` (`None`: the attribute is not set).
    pub fn holds(&self, value: Option<&Value>) -> bool {
        let num = value.and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let loose_eq = |want: &Value| match (value, want) {
            (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (Some(v), w) if v == w => true,
            (Some(Value::String(_)), w @ Value::Number(_)) => num.is_some() && w.as_f64() == num,
            (Some(Value::Number(_)), Value::String(b)) => b.trim().parse::<f64>().ok() == num,
            _ => false,
        };
        self.equals.as_ref().is_none_or(loose_eq)
            && self
                .one_of
                .as_ref()
                .is_none_or(|vs| vs.iter().any(loose_eq))
            && self.greater.is_none_or(|g| num.is_some_and(|n| n > g))
            && self.less.is_none_or(|l| num.is_some_and(|n| n < l))
    }
}

fn default_retries() -> u32 {
    2
}
fn default_min_digits() -> u32 {
    1
}
fn default_collect_timeout() -> u64 {
    10
}
fn default_terminator() -> String {
    "#".into()
}
fn default_method() -> String {
    "GET".into()
}
fn default_http_timeout() -> u64 {
    5
}
fn default_voicemail_s() -> u64 {
    120
}

fn default_silence_s() -> u64 {
    5
}

/// Why a flow definition is refused. Every variant names the node at fault where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The JSON does not have the shape of a flow.
    #[error("not a flow definition: {0}")]
    Shape(String),
    /// No node has the start id.
    #[error("the start node {0:?} does not exist")]
    MissingStart(String),
    /// A node leads to a node that does not exist.
    #[error("node {node:?} leads to {target:?}, which does not exist")]
    Dangling {
        /// The node.
        node: String,
        /// The missing target.
        target: String,
    },
    /// A node's settings are wrong.
    #[error("node {node:?}: {message}")]
    Invalid {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// Nodes that lead to each other with no node between them that waits for input.
    #[error("nodes {0:?} form a loop with no node that waits for input")]
    Cycle(Vec<String>),
}

impl FlowError {
    /// The node at fault, if one.
    pub fn node(&self) -> Option<&str> {
        match self {
            FlowError::Dangling { node, .. } | FlowError::Invalid { node, .. } => Some(node),
            FlowError::MissingStart(n) => Some(n),
            FlowError::Cycle(ns) => ns.first().map(String::as_str),
            FlowError::Shape(_) => None,
        }
    }
}

/// Most nodes in a flow.
pub const MAX_NODES: usize = 500;

impl Node {
    /// Every node id this node can lead to.
    pub fn targets(&self) -> Vec<&str> {
        let mut t: Vec<&str> = Vec::new();
        match self {
            Node::Say { next, .. } | Node::FollowUp { next, .. } => t.extend(next.as_deref()),
            Node::Menu {
                options,
                on_invalid,
                on_timeout,
                ..
            } => {
                t.extend(options.iter().map(|o| o.next.as_str()));
                t.extend(on_invalid.as_deref());
                t.extend(on_timeout.as_deref());
            }
            Node::Collect {
                next, on_timeout, ..
            } => {
                t.push(next);
                t.extend(on_timeout.as_deref());
            }
            Node::Hours {
                open_next,
                closed_next,
                ..
            } => t.extend([open_next.as_str(), closed_next.as_str()]),
            Node::Set { next, .. } => t.push(next),
            Node::Branch {
                cases, otherwise, ..
            } => {
                t.extend(cases.iter().map(|c| c.next.as_str()));
                t.push(otherwise);
            }
            Node::Http { next, on_error, .. } => t.extend([next.as_str(), on_error.as_str()]),
            Node::Queue { .. }
            | Node::Voicemail { .. }
            | Node::Callback { .. }
            | Node::End { .. } => {}
        }
        t
    }

    /// Whether the run stops at this node until something happens (input, response, timer).
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Node::Menu { .. }
                | Node::Collect { .. }
                | Node::Http { .. }
                | Node::Queue { .. }
                | Node::Voicemail { .. }
                | Node::Callback { .. }
                | Node::FollowUp { .. }
                | Node::End { .. }
        )
    }
}

fn is_key(k: &str) -> bool {
    k.len() == 1
        && k.chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

impl FlowDef {
    /// Parses and validates a definition from JSON.
    pub fn from_json(v: &Value) -> Result<FlowDef, FlowError> {
        let def: FlowDef =
            serde_json::from_value(v.clone()).map_err(|e| FlowError::Shape(e.to_string()))?;
        def.validate()?;
        Ok(def)
    }

    /// Checks the definition: the start exists, every reference resolves, settings are sane
    /// (time zones, digits, times), and no loop runs without waiting for input.
    pub fn validate(&self) -> Result<(), FlowError> {
        if self.nodes.len() > MAX_NODES {
            return Err(FlowError::Shape(format!(
                "a flow has at most {MAX_NODES} nodes"
            )));
        }
        if !self.nodes.contains_key(&self.start) {
            return Err(FlowError::MissingStart(self.start.clone()));
        }
        for (id, node) in &self.nodes {
            let bad = |message: String| FlowError::Invalid {
                node: id.clone(),
                message,
            };
            if id.is_empty() || id.len() > 100 {
                return Err(bad("a node id has 1 to 100 characters".into()));
            }
            for t in node.targets() {
                if !self.nodes.contains_key(t) {
                    return Err(FlowError::Dangling {
                        node: id.clone(),
                        target: t.to_owned(),
                    });
                }
            }
            match node {
                Node::Menu { options, .. } => {
                    if options.is_empty() {
                        return Err(bad("a menu needs at least one option".into()));
                    }
                    let mut seen = HashMap::new();
                    for o in options {
                        if !is_key(&o.key) {
                            return Err(bad(format!(
                                "option key {:?} is not one of 0-9, * or #",
                                o.key
                            )));
                        }
                        if seen.insert(o.key.as_str(), ()).is_some() {
                            return Err(bad(format!("option key {:?} is used twice", o.key)));
                        }
                    }
                }
                Node::Collect {
                    max_digits,
                    min_digits,
                    terminator,
                    into,
                    ..
                } => {
                    if *max_digits == 0 || *max_digits > 64 || min_digits > max_digits {
                        return Err(bad(
                            "max_digits must be 1..=64 and min_digits at most max_digits".into(),
                        ));
                    }
                    if !terminator.is_empty() && !is_key(terminator) {
                        return Err(bad(format!(
                            "terminator {terminator:?} is not one of 0-9, * or #"
                        )));
                    }
                    if into.is_empty() {
                        return Err(bad("collect needs an attribute name in `into`".into()));
                    }
                }
                Node::Hours { schedule, .. } => {
                    schedule.check().map_err(|e| bad(e.to_string()))?;
                }
                Node::Branch { cases, .. }
                    if cases.iter().any(|c| {
                        c.equals.is_none()
                            && c.one_of.is_none()
                            && c.greater.is_none()
                            && c.less.is_none()
                    }) =>
                {
                    return Err(bad(
                        "every case needs a condition: equals, in, greater or less".into(),
                    ));
                }
                Node::Http { method, url, .. } => {
                    if !matches!(method.as_str(), "GET" | "POST") {
                        return Err(bad(format!("method {method:?} is not GET or POST")));
                    }
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(bad("the url must start with http:// or https://".into()));
                    }
                }
                Node::Queue {
                    queue,
                    announce_every_s,
                    callback_key,
                    ..
                } => {
                    if queue.trim().is_empty() {
                        return Err(bad("a queue node needs a queue name".into()));
                    }
                    if let Some(k) = callback_key
                        && !is_key(k)
                    {
                        return Err(bad(format!("callback_key {k:?} is not one of 0-9, * or #")));
                    }
                    if *announce_every_s == Some(0) {
                        return Err(bad("announce_every_s must be at least 1".into()));
                    }
                }
                Node::Set { attributes, .. } => {
                    if let Some(p) = attributes.get("priority")
                        && !p.is_i64()
                        && !p.as_str().is_some_and(|s| s.contains("{{"))
                    {
                        return Err(bad("priority must be an integer".into()));
                    }
                }
                _ => {}
            }
        }
        self.check_loops()
    }

    /// Finds a cycle among nodes that do not wait (depth-first search with colours).
    fn check_loops(&self) -> Result<(), FlowError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut mark: HashMap<&str, Mark> =
            self.nodes.keys().map(|k| (k.as_str(), Mark::New)).collect();
        for root in self.nodes.keys() {
            if mark[root.as_str()] != Mark::New {
                continue;
            }
            // An explicit stack of (node, next target index) keeps deep flows off the call stack.
            let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
            mark.insert(root, Mark::Active);
            while let Some((id, i)) = stack.last().copied() {
                let node = &self.nodes[id];
                let targets = if node.waits() {
                    Vec::new()
                } else {
                    node.targets()
                };
                if let Some(t) = targets.get(i).copied() {
                    stack.last_mut().expect("non-empty").1 += 1;
                    match mark[t] {
                        Mark::New => {
                            mark.insert(t, Mark::Active);
                            stack.push((t, 0));
                        }
                        Mark::Active => {
                            let from = stack.iter().position(|(n, _)| *n == t).unwrap_or(0);
                            return Err(FlowError::Cycle(
                                stack[from..].iter().map(|(n, _)| (*n).to_owned()).collect(),
                            ));
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark.insert(id, Mark::Done);
                    stack.pop();
                }
            }
        }
        Ok(())
    }
}
