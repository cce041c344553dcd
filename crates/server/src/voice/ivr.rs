//! Flows on calls (the IVR): the same flow language and interpreter as the chat bot
//! ([`switchboard_flow::FlowRun`], sans-IO), driven by one task per call, like `chat_flow.rs`.
//!
//! A number (DID) with a flow: the interaction is opened in state `flow` (durably) before the
//! caller is answered; the caller gets `200 OK` with our media, and the run starts. `say`,
//! `menu` and `collect` prompts are played to the caller (a prompt file, else the text spoken by
//! `espeak-ng`, see `prompts.rs`); keys come from RFC 4733 events, SIP INFO, or in-band tones
//! (`[voice] inband_dtmf`) through the call's media task, and a key stops the prompt playing
//! (barge-in). A `queue` node queues the call with the flow's priority, skills and attributes;
//! the caller then hears music on hold, interrupted every `announce_every_s` by the position
//! and estimated wait, spoken. An agent answering (or the call ending) ends the task; the
//! B2BUA stops the music and bridges the legs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_flow::{Context, FlowDef, FlowRun, Input, Now, Output};
use switchboard_media::player::Clip;
use switchboard_media::relay::Leg;
use switchboard_model::{Channel, CustomerId, FlowId, InteractionState, QueueId, TenantId};
use switchboard_store::Interaction;
use tokio::sync::mpsc;

use super::Command as Sip;
use super::calls::CallKey;
use super::media::{MediaCommand, MediaEvent};
use super::prompts::Prompts;
use crate::engine::{Command, FlowStep};
use crate::state::AppState;

/// The media tasks of running calls, by call, for their flows to play to.
pub type Registry =
    Arc<std::sync::Mutex<std::collections::HashMap<CallKey, mpsc::Sender<MediaCommand>>>>;

/// What the flows of calls share.
#[derive(Clone, Debug)]
pub struct IvrContext {
    /// Prompts and music.
    pub prompts: Arc<Prompts>,
    /// Media tasks by call.
    pub registry: Registry,
}

/// Opens a call's interaction in its flow, answers the caller (through the SIP engine) and
/// starts the run. A flow that does not exist or validate sends the call to `queue` instead.
#[allow(clippy::too_many_arguments)]
pub async fn open(
    s: &AppState,
    call: CallKey,
    tenant: TenantId,
    flow: String,
    queue: QueueId,
    subject: String,
    customer: Option<CustomerId>,
    attributes: Value,
    sip: mpsc::Sender<Sip>,
    ctx: IvrContext,
) {
    let rec = match s.store.flow_by_name(tenant, &flow).await {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            tracing::warn!(
                flow,
                "a number names a flow this tenant does not have; the call goes to its queue"
            );
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read a number's flow");
            None
        }
    };
    let def = rec.as_ref().and_then(|r| match FlowDef::from_json(&r.definition) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(flow = %r.id, error = %e, "stored flow does not validate; the call goes to its queue");
            None
        }
    });
    let (Some(rec), Some(def)) = (rec, def) else {
        let r = s
            .ask(tenant, |reply| Command::Create {
                channel: Channel::Voice,
                queue,
                subject: Some(subject),
                customer,
                attributes,
                priority: None,
                reply,
            })
            .await;
        let result = match r {
            Ok(Ok(it)) => Ok(it.id),
            _ => Err(503),
        };
        let ok = result.is_ok();
        let _ = sip.send(Sip::Queued { call, result }).await;
        if ok {
            hold_music(&ctx, call);
        }
        return;
    };
    let mut attributes = attributes;
    attributes["language"] = json!("en");
    let r = s
        .ask(tenant, |reply| Command::Open {
            channel: Channel::Voice,
            subject: Some(subject),
            customer,
            attributes: attributes.clone(),
            flow: (rec.id, rec.current_version),
            reply,
        })
        .await;
    let it = match r {
        Ok(Ok(it)) => it,
        Ok(Err(e)) => {
            tracing::warn!(error = %e.message, "a call's flow could not be opened");
            let _ = sip
                .send(Sip::Queued {
                    call,
                    result: Err(480),
                })
                .await;
            return;
        }
        Err(_) => {
            let _ = sip
                .send(Sip::Queued {
                    call,
                    result: Err(503),
                })
                .await;
            return;
        }
    };
    let _ = sip
        .send(Sip::Queued {
            call,
            result: Ok(it.id),
        })
        .await;
    let Some(media) = ctx.registry.lock().ok().and_then(|r| r.get(&call).cloned()) else {
        tracing::warn!("a call's media task is gone before its flow started");
        return;
    };
    let (ltx, lrx) = mpsc::unbounded_channel();
    let _ = media.send(MediaCommand::Listen(ltx)).await;
    let mut run_attrs = Map::new();
    if let Value::Object(a) = attributes {
        run_attrs = a;
    }
    let now = now_of(s);
    let run = FlowRun::start(
        def,
        Context {
            attributes: run_attrs,
            channel: Channel::Voice,
            language: "en".into(),
        },
        now,
    );
    let driver = Ivr {
        s: s.clone(),
        it,
        flow: rec.id,
        run,
        media,
        ctx,
        sip,
        queued: false,
        check_every: None,
        next_check: None,
        done: false,
        clip_id: 0,
        frozen: None,
        paused: Duration::ZERO,
    };
    tokio::spawn(driver.run(lrx));
}

/// Music on hold for a call that waits without a flow's announcements.
fn hold_music(ctx: &IvrContext, call: CallKey) {
    if let Some(m) = ctx.registry.lock().ok().and_then(|r| r.get(&call).cloned()) {
        let _ = m.try_send(MediaCommand::FlowPlay(Clip {
            samples: ctx.prompts.hold_music(),
            looping: true,
            id: 0,
        }));
    }
}

fn now_of(s: &AppState) -> Now {
    Now {
        mono: s.clock.mono(),
        wall: jiff::Timestamp::from_millisecond(s.clock.wall_ms())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    }
}

struct Ivr {
    s: AppState,
    it: Interaction,
    flow: FlowId,
    run: FlowRun,
    media: mpsc::Sender<MediaCommand>,
    ctx: IvrContext,
    sip: mpsc::Sender<Sip>,
    queued: bool,
    check_every: Option<Duration>,
    next_check: Option<tokio::time::Instant>,
    done: bool,
    clip_id: u64,
    /// The flow's clock stands still while a prompt plays (a menu's timeout counts from the
    /// end of its prompt): since when, and until when the queued prompts play.
    frozen: Option<(switchboard_model::MonoTime, switchboard_model::MonoTime)>,
    /// Time the flow's clock stood still so far.
    paused: Duration,
}

impl Ivr {
    /// The flow's time: the real time less the time prompts were playing.
    fn flow_now(&self) -> Now {
        let real = self.s.clock.mono();
        let at = self.frozen.map_or(real, |(since, _)| since);
        Now {
            mono: switchboard_model::MonoTime::from_duration(
                at.since_origin().saturating_sub(self.paused),
            ),
            ..now_of(&self.s)
        }
    }

    fn unfreeze(&mut self, at: switchboard_model::MonoTime) {
        if let Some((since, _)) = self.frozen.take() {
            self.paused += at.saturating_since(since);
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<MediaEvent>) {
        let mut events = self.s.bus.subscribe_conversation(self.it.id);
        self.drain().await;
        while !self.done {
            let timer = match self.frozen {
                Some((_, until)) => Some(self.s.clock.tokio_instant(until)),
                None => self
                    .run
                    .poll_timeout()
                    .map(|t| self.s.clock.tokio_instant(t + self.paused)),
            };
            let check = self.next_check;
            tokio::select! {
                ev = rx.recv() => match ev {
                    // The media task ended: the call is over.
                    None => break,
                    Some(MediaEvent::Digit(Leg::Caller, d)) => {
                        if !self.queued {
                            // Barge-in: a key stops the prompt.
                            let _ = self.media.send(MediaCommand::StopPlay(Leg::Caller)).await;
                            let real = self.s.clock.mono();
                            self.unfreeze(real);
                        }
                        let now = self.flow_now();
                        self.run.handle_input(now, Input::Digits(d.to_string()));
                    }
                    Some(_) => {}
                },
                _ = sleep_until(timer) => {
                    match self.frozen {
                        Some((_, until)) => self.unfreeze(until),
                        None => {
                            let now = self.flow_now();
                            self.run.handle_timeout(now);
                        }
                    }
                }
                _ = sleep_until(check) => self.check_position().await,
                ev = events.recv() => match ev {
                    Ok(e) if crate::chat_flow::is_over(&e) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
            self.drain().await;
        }
    }

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
        let now = self.flow_now();
        if let Some((position, wait)) = pos {
            self.run
                .handle_input(now, Input::QueueUpdate { position, wait });
        }
    }

    /// Plays a prompt to the caller (after what plays); while queued, an announcement
    /// interrupts the music, which goes on after it.
    async fn say(&mut self, lang: &str, text: &str, file: Option<&str>) {
        let Some(samples) = self.ctx.prompts.clip(lang, text, file).await else {
            return;
        };
        if self.queued {
            let _ = self.media.send(MediaCommand::StopPlay(Leg::Caller)).await;
        } else {
            let real = self.s.clock.mono();
            let len = Duration::from_micros(samples.len() as u64 * 125);
            let (since, until) = self.frozen.unwrap_or((real, real));
            self.frozen = Some((since, until.max(real) + len));
        }
        self.clip_id += 1;
        let _ = self
            .media
            .send(MediaCommand::FlowPlay(Clip {
                samples,
                looping: false,
                id: self.clip_id,
            }))
            .await;
        if self.queued {
            self.music().await;
        }
    }

    async fn music(&mut self) {
        let _ = self
            .media
            .send(MediaCommand::FlowPlay(Clip {
                samples: self.ctx.prompts.hold_music(),
                looping: true,
                id: 0,
            }))
            .await;
    }

    async fn step(&mut self, step: FlowStep) -> bool {
        let id = self.it.id;
        match self
            .s
            .ask(self.it.tenant, |reply| Command::Flow { id, step, reply })
            .await
        {
            Ok(Ok(it)) => {
                self.it = it;
                true
            }
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(interaction = %id, code = %e.code, error = %e.message, "flow step refused");
                false
            }
        }
    }

    async fn note(&mut self, kind: &str, data: Value) {
        self.step(FlowStep::Note {
            kind: kind.to_owned(),
            data,
        })
        .await;
    }

    async fn end(&mut self, reason: String) {
        if matches!(
            self.it.state,
            InteractionState::Flow | InteractionState::Queued | InteractionState::Offered
        ) {
            self.step(FlowStep::End { reason }).await;
        }
        let _ = self.sip.send(Sip::HangUp(self.it.id)).await;
        self.done = true;
    }

    async fn drain(&mut self) {
        while let Some(out) = self.run.poll_output() {
            match out {
                Output::Say {
                    text,
                    lang,
                    prompt_file,
                } => self.say(&lang, &text, prompt_file.as_deref()).await,
                Output::Menu {
                    prompt,
                    lang,
                    prompt_file,
                    ..
                } => self.say(&lang, &prompt, prompt_file.as_deref()).await,
                Output::Collect {
                    prompt,
                    lang,
                    prompt_file,
                    ..
                } => {
                    if prompt.is_some() || prompt_file.is_some() {
                        let text = prompt.unwrap_or_default();
                        self.say(&lang, &text, prompt_file.as_deref()).await;
                    }
                }
                Output::Chosen { node, key, label } => {
                    let data =
                        json!({"flow_id": self.flow, "node": node, "key": key, "label": label});
                    self.note("flow.menu_choice", data).await;
                }
                Output::HttpRequest(req) => {
                    let id = req.id;
                    let input = match crate::chat_flow::perform(&self.s.messaging.http, req).await {
                        Ok((status, body)) => {
                            self.note("flow.http", json!({"status": status})).await;
                            Input::HttpResponse { id, status, body }
                        }
                        Err(why) => {
                            self.note("flow.http", json!({"error": why})).await;
                            Input::HttpFailed { id }
                        }
                    };
                    let now = self.flow_now();
                    self.run.handle_input(now, input);
                }
                Output::Queue(q) => self.queue(q).await,
                Output::FollowUp { .. } | Output::Voicemail { .. } | Output::Callback { .. } => {
                    // Not on calls yet (voice part 2 goes on): the caller is told nothing more.
                    self.note("flow.unsupported", json!({"on": "voice"})).await;
                }
                Output::End { reason } => self.end(reason).await,
                Output::Error { node, message } => {
                    tracing::warn!(interaction = %self.it.id, node, message, "flow error");
                    self.note("flow.error", json!({"node": node, "message": message}))
                        .await;
                }
            }
            if self.done {
                return;
            }
        }
    }

    async fn queue(&mut self, q: switchboard_flow::QueueRequest) {
        let tenant = self.it.tenant;
        let queues = self.s.store.queues(tenant).await.unwrap_or_default();
        let Some(queue) = queues
            .iter()
            .find(|r| r.name == q.queue || r.id.to_string() == q.queue)
        else {
            self.note(
                "flow.error",
                json!({"message": "no such queue", "queue": q.queue}),
            )
            .await;
            return self.end("flow_error".into()).await;
        };
        let mut attributes = Value::Object(q.attributes);
        if !q.skills.is_empty() {
            attributes["skills"] = json!(q.skills);
            let known = self.s.store.skills(tenant).await.unwrap_or_default();
            let own: Vec<_> = q
                .skills
                .iter()
                .filter_map(|name| {
                    known
                        .iter()
                        .find(|k| k.name.eq_ignore_ascii_case(name) || k.id.to_string() == *name)
                        .map(|k| switchboard_model::SkillRequirement {
                            skill: k.id,
                            min_level: 1,
                        })
                })
                .collect();
            attributes[crate::engine::ROUTING_SKILLS] = crate::engine::routing_skills_json(&own);
        }
        let ok = self
            .step(FlowStep::Queue {
                queue: queue.id,
                priority: q.priority,
                attributes,
            })
            .await;
        if !ok {
            return self.end("flow_error".into()).await;
        }
        self.queued = true;
        // Music after what is still playing (the last prompt), until an agent answers.
        self.music().await;
        if q.announce_every.is_some() {
            self.check_every = q.announce_every;
            let clock = &self.s.clock;
            self.next_check = q
                .announce_every
                .map(|d| clock.tokio_instant(clock.mono() + d));
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
