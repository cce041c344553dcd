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
//!
//! Call backs (the queue node's `callback` key, or a `callback` node): the interaction is
//! marked ([`FlowStep::Callback`]), the caller hears the number and is hung up by its call's
//! key (`HangUpCall`: the interaction is detached, nothing is reported); the engine then offers
//! it as a click-to-dial. Voicemail (a `voicemail` node): after the prompt and a beep the call's
//! media task records the caller ([`MediaCommand::Record`]) until `#`, the node's `max_s` or
//! hang-up; this task begins and finishes the recording ([`crate::recordings::Recordings`])
//! and queues the interaction as the voicemail ([`FlowStep::Voicemail`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_flow::{Context, FlowDef, FlowRun, Input, Now, Output, Text};
use switchboard_media::player::Clip;
use switchboard_media::relay::Leg;
use switchboard_model::{Channel, CustomerId, FlowId, InteractionState, QueueId, TenantId};
use switchboard_store::Interaction;
use tokio::sync::mpsc;

use super::Command as Sip;
use super::calls::CallKey;
use super::media::{MediaCommand, MediaEvent};
use super::prompts::Prompts;
use crate::engine::{Command, FlowStep, VOICEMAIL};
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
        call,
        rx: lrx,
        pending: None,
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
    tokio::spawn(driver.run());
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

/// What the run asked for that ends the flow's part of the call (see [`Ivr::carry_out`]).
#[derive(Debug)]
enum Pending {
    Voicemail {
        queue: String,
        max: Duration,
        silence: Option<Duration>,
    },
    Callback {
        queue: String,
        number: Option<String>,
        confirm: Text,
        lang: String,
    },
}

/// What confirms a call back to `number`: `confirm` in `lang` (the run's) with `{{number}}` the
/// number digit by digit (and the run's attributes), and the language to speak it in.
fn confirmation(
    confirm: &Text,
    lang: &str,
    number: &str,
    attributes: &Map<String, Value>,
) -> (String, String) {
    let mut a = attributes.clone();
    a.insert("number".into(), json!(spelled(number)));
    switchboard_flow::render(confirm, lang, &a)
}

/// How often a queued call without announcements checks whether to offer the call back.
const CALLBACK_CHECK: Duration = Duration::from_secs(10);

/// The built-in voicemail beep: 1 kHz for 400 ms.
fn beep() -> Arc<[i16]> {
    switchboard_media::tone::tones(&[1000.0], 8000.0, 0, 3200).into()
}

/// A number spoken digit by digit ("4 4 2 0 ...").
fn spelled(number: &str) -> String {
    number
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Ivr {
    s: AppState,
    /// The call (hung up by key: its interaction may already have another call, a call back).
    call: CallKey,
    /// The media task's digits and played-out clips.
    rx: mpsc::UnboundedReceiver<MediaEvent>,
    /// A voicemail or a call back the run asked for.
    pending: Option<Pending>,
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

    async fn run(mut self) {
        let mut events = self.s.bus.subscribe_conversation(self.it.id);
        self.drain().await;
        while !self.done {
            if let Some(p) = self.pending.take() {
                if self.carry_out(p).await {
                    break;
                }
                continue;
            }
            let timer = match self.frozen {
                Some((_, until)) => Some(self.s.clock.tokio_instant(until)),
                None => self
                    .run
                    .poll_timeout()
                    .map(|t| self.s.clock.tokio_instant(t + self.paused)),
            };
            let check = self.next_check;
            tokio::select! {
                ev = self.rx.recv() => match ev {
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
    async fn say(&mut self, lang: &str, text: &str, file: Option<&str>) -> Option<(u64, Duration)> {
        let samples = self.ctx.prompts.clip(lang, text, file).await?;
        let len = Duration::from_micros(samples.len() as u64 * 125);
        if self.queued {
            let _ = self.media.send(MediaCommand::StopPlay(Leg::Caller)).await;
        } else {
            let real = self.s.clock.mono();
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
        Some((self.clip_id, len))
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
        crate::chat_flow::flow_step(&self.s, &mut self.it, step).await
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
                } => {
                    self.say(&lang, &text, prompt_file.as_deref()).await;
                }
                Output::Menu {
                    prompt,
                    lang,
                    prompt_file,
                    ..
                } => {
                    self.say(&lang, &prompt, prompt_file.as_deref()).await;
                }
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
                Output::Voicemail {
                    queue,
                    max,
                    silence,
                } => {
                    // Carried out by the loop (it needs the media events); what the run says
                    // after it is not for this call.
                    self.pending = Some(Pending::Voicemail {
                        queue,
                        max,
                        silence,
                    });
                    while self.run.poll_output().is_some() {}
                    return;
                }
                Output::Callback {
                    queue,
                    number,
                    confirm,
                    lang,
                } => {
                    self.pending = Some(Pending::Callback {
                        queue,
                        number,
                        confirm,
                        lang,
                    });
                    // The run's own end (`callback_requested`) is not this call's: the
                    // interaction lives on as the call back.
                    while self.run.poll_output().is_some() {}
                    return;
                }
                Output::FollowUp { .. } => {
                    // An email address cannot be typed on a phone: the caller is told nothing.
                    self.note(
                        "flow.unsupported",
                        json!({"on": "voice", "node": "follow_up"}),
                    )
                    .await;
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
        // The run hears of the wait for its announcements, and for the call back offer (which
        // waits for `long_wait_s`) at least every CALLBACK_CHECK.
        let every = q.announce_every.or(q.callback.then_some(CALLBACK_CHECK));
        if every.is_some() {
            self.check_every = every;
            let clock = &self.s.clock;
            self.next_check = every.map(|d| clock.tokio_instant(clock.mono() + d));
        }
    }
}

impl Ivr {
    /// Carries out a voicemail or a call back; true when the flow's part of the call is over.
    async fn carry_out(&mut self, p: Pending) -> bool {
        match p {
            Pending::Voicemail {
                queue,
                max,
                silence,
            } => {
                self.voicemail(queue, max, silence).await;
                true
            }
            Pending::Callback {
                queue,
                number,
                confirm,
                lang,
            } => self.callback(queue, number, &confirm, &lang).await,
        }
    }

    /// A queue of the tenant by name or id.
    async fn queue_named(&self, name: &str) -> Option<QueueId> {
        let queues = self
            .s
            .store
            .queues(self.it.tenant)
            .await
            .unwrap_or_default();
        queues
            .iter()
            .find(|r| r.name == name || r.id.to_string() == name)
            .map(|r| r.id)
    }

    /// The caller's number (E.164), from the run's `caller` attribute, or `raw` when given.
    fn number_of(&self, raw: Option<String>) -> Option<String> {
        let raw = raw.or_else(|| {
            self.run
                .attributes()
                .get("caller")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })?;
        super::caller_number(&raw, self.s.config.messaging.default_country_code)
    }

    /// Waits until the clip `id` has played to the caller (at most `limit`); false when the
    /// call ended meanwhile.
    async fn played(&mut self, id: u64, limit: Duration) -> bool {
        let clock = self.s.clock.clone();
        let until = clock.tokio_instant(clock.mono() + limit);
        loop {
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    None => return false,
                    Some(MediaEvent::Played(Leg::Caller, i)) if i == id => return true,
                    Some(_) => {}
                },
                _ = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    /// Says `text` (in `lang`) and waits until it has been heard; false when the caller left.
    async fn say_and_wait(&mut self, lang: &str, text: &str) -> bool {
        match self.say(lang, text, None).await {
            Some((id, len)) => self.played(id, len + Duration::from_secs(5)).await,
            None => true,
        }
    }

    /// A call back: confirmed to the caller (in the run's language `lang`), who is hung up; the
    /// interaction waits (at its place if it was queued) as a call back to the number. True
    /// when the flow's part is over.
    async fn callback(
        &mut self,
        queue: String,
        number: Option<String>,
        confirm: &Text,
        lang: &str,
    ) -> bool {
        let Some(number) = self.number_of(number) else {
            self.note(
                "flow.error",
                json!({"message": "no number to call back", "node": "callback"}),
            )
            .await;
            let (sorry, in_lang) = switchboard_flow::render(
                &switchboard_flow::callback_no_number(),
                lang,
                self.run.attributes(),
            );
            self.say_and_wait(&in_lang, &sorry).await;
            if self.queued {
                // It keeps waiting, with music.
                return false;
            }
            self.end("flow_error".into()).await;
            return true;
        };
        let (confirm, in_lang) = confirmation(confirm, lang, &number, self.run.attributes());
        if self.queued {
            // Marked first, so an offer from now on dials the number instead of ringing the
            // agent with this call.
            let ok = self
                .step(FlowStep::Callback {
                    queue: None,
                    number: number.clone(),
                })
                .await;
            if !ok {
                return false;
            }
            self.say_and_wait(&in_lang, &confirm).await;
            let _ = self.sip.send(Sip::HangUpCall(self.call)).await;
            return true;
        }
        let Some(queue) = self.queue_named(&queue).await else {
            self.note(
                "flow.error",
                json!({"message": "no such queue", "queue": queue}),
            )
            .await;
            self.end("flow_error".into()).await;
            return true;
        };
        // Still in the flow: nobody can be offered it before it is queued, after the caller
        // has heard the confirmation and is gone.
        self.say_and_wait(&in_lang, &confirm).await;
        let _ = self.sip.send(Sip::HangUpCall(self.call)).await;
        let ok = self
            .step(FlowStep::Callback {
                queue: Some(queue),
                number,
            })
            .await;
        if !ok {
            self.step(FlowStep::End {
                reason: "flow_error".into(),
            })
            .await;
        }
        true
    }

    /// A voicemail: the beep (after the node's prompt), then the caller is recorded until `#`,
    /// `max` or hang-up; the recording is stored with the interaction, which then waits in
    /// `queue` as a voicemail.
    async fn voicemail(&mut self, queue: String, max: Duration, silence: Option<Duration>) {
        let tenant = self.it.tenant;
        let id = self.it.id;
        let Some(queue_id) = self.queue_named(&queue).await else {
            self.note(
                "flow.error",
                json!({"message": "no such queue", "queue": queue}),
            )
            .await;
            return self.end("flow_error".into()).await;
        };
        self.clip_id += 1;
        let beep_id = self.clip_id;
        let _ = self
            .media
            .send(MediaCommand::FlowPlay(Clip {
                samples: beep(),
                looping: false,
                id: beep_id,
            }))
            .await;
        // The prompt plays first; its length is what the flow's clock stands still for.
        let ahead = self
            .frozen
            .map(|(_, until)| until.saturating_since(self.s.clock.mono()))
            .unwrap_or_default();
        if !self.played(beep_id, ahead + Duration::from_secs(5)).await {
            // Gone before the tone: abandoned like any caller in a flow.
            self.done = true;
            return;
        }
        self.step(FlowStep::Attributes(
            json!({VOICEMAIL: {"state": "recording"}}),
        ))
        .await;
        let Some(mut done) = self.s.call_recorder.get().map(|r| r.subscribe()) else {
            tracing::error!("no call recorder: the voicemail cannot be recorded");
            return self.end("flow_error".into()).await;
        };
        let started = match self.s.recordings.begin(tenant, id).await {
            Ok(st) => st,
            Err(e) => {
                tracing::error!(interaction = %id, error = %e, "cannot begin a voicemail's recording");
                return self.end("flow_error".into()).await;
            }
        };
        let _ = self
            .media
            .send(MediaCommand::Record(started.path.clone()))
            .await;
        if let Some(s) = silence {
            let ms = u64::try_from(s.as_millis()).unwrap_or(u64::MAX);
            let _ = self
                .media
                .send(MediaCommand::DetectSilence(Leg::Caller, Some(ms)))
                .await;
        }
        // Until `#`, the longest message, `silence` quiet, or the caller hangs up (the media
        // task then stops). The trailing silence stays in the recording.
        let clock = self.s.clock.clone();
        let until = clock.tokio_instant(clock.mono() + max);
        let ended_by = loop {
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    None => break "caller",
                    Some(MediaEvent::Digit(Leg::Caller, '#')) => break "key",
                    Some(MediaEvent::Silent(Leg::Caller)) => break "silence",
                    Some(_) => {}
                },
                _ = tokio::time::sleep_until(until) => break "max_length",
            }
        };
        if ended_by != "caller" {
            let _ = self.sip.send(Sip::HangUpCall(self.call)).await;
        }
        // The media task writes the file's header when it stops, then reports it.
        let wait = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(wait);
        let finished = loop {
            tokio::select! {
                r = done.recv() => match r {
                    Ok(d) if d.path == started.path => break Some(d),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break None,
                },
                _ = &mut wait => break None,
            }
        };
        let duration_ms = finished.map_or(0, |d| d.duration.as_millis() as u64);
        let size = tokio::fs::metadata(&started.path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if let Err(e) = self
            .s
            .recordings
            .finish(tenant, started.id, duration_ms, &[], size)
            .await
        {
            tracing::error!(recording = %started.id, error = %e, "cannot finish a voicemail's recording");
        }
        let number = self.number_of(None);
        let subject = match &number {
            Some(n) => format!("Voicemail from {n}"),
            None => "Voicemail from an anonymous caller".to_string(),
        };
        let attributes = json!({VOICEMAIL: {
            "state": "left",
            "recording_id": started.id,
            "duration_s": duration_ms as f64 / 1000.0,
            "ended_by": ended_by,
        }});
        let ok = self
            .step(FlowStep::Voicemail {
                queue: queue_id,
                subject,
                attributes,
            })
            .await;
        if !ok {
            self.step(FlowStep::End {
                reason: "flow_error".into(),
            })
            .await;
        }
        self.done = true;
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_spoken_digit_by_digit_and_the_beep_lasts_400_ms() {
        assert_eq!(spelled("+44 20 79"), "4 4 2 0 7 9");
        assert_eq!(spelled("anonymous"), "");
        let b = beep();
        assert_eq!(b.len(), 3200);
        assert!(b.iter().filter(|s| s.abs() > 4000).count() > 1600);
    }

    /// The confirmation is the flow's text (or the built-in) in the call's language, with the
    /// number digit by digit, and spoken in the language of the variant used.
    #[test]
    fn a_call_back_is_confirmed_in_the_calls_language() {
        let attrs = Map::new();
        let builtin = switchboard_flow::FlowRun::start(
            serde_json::from_value(
                json!({"start": "cb", "nodes": {"cb": {"type": "callback", "queue": "q"}}}),
            )
            .expect("flow"),
            Context {
                attributes: Map::new(),
                channel: Channel::Voice,
                language: "fa".into(),
            },
            Now {
                mono: switchboard_model::MonoTime::from_secs(1),
                wall: jiff::Timestamp::UNIX_EPOCH,
            },
        )
        .poll_output();
        let Some(Output::Callback { confirm, lang, .. }) = builtin else {
            panic!("{builtin:?}");
        };
        let (text, voice) = confirmation(&confirm, &lang, "+44 20 7946", &attrs);
        assert_eq!(voice, "fa");
        assert!(
            text.contains("4 4 2 0 7 9 4 6") && text.contains("تماس"),
            "{text}"
        );
        assert_eq!(super::super::prompts::voice_of(&voice), "fa");
        let en = confirmation(&confirm, "en", "+1 555", &attrs);
        assert_eq!(
            en,
            (
                "Thank you. We will call you back at 1 5 5 5.".into(),
                "en".into()
            )
        );
        let ar = confirmation(&confirm, "ar", "12", &attrs);
        assert_eq!(ar, ("شكراً لك. سنتصل بك على الرقم 1 2.".into(), "ar".into()));
        // The flow's own, English only: an Arabic call hears it in English.
        let own = Text::of(&[("en", "Bye, {{number}}.")]);
        assert_eq!(
            confirmation(&own, "ar", "7", &attrs),
            ("Bye, 7.".into(), "en".into())
        );
    }
}
