//! Between the B2BUA and the routing engine: what a call needs of the engine (create the
//! interaction, accept, fail an offer, end) runs here, off the SIP engine task, and the answers
//! come back to it as [`Command`]s; the engine's voice events (offered, offer ended, requeued,
//! ended) come in the other way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use serde_json::json;
use switchboard_model::{Channel, CustomerId, InteractionId, Sensitive, TenantId};
use switchboard_sip::registrar::Aor;
use switchboard_store::{ContactPoint, Customer, Store};
use tokio::sync::mpsc;

use super::calls::{CallNotice, DidRoute, Directory, OutboundRoute, TrunkRoute};
use super::{BindingTable, Command};
use crate::api::interactions::{find_agent, find_queue};
use crate::bus::{VoiceEvent, VoiceEventKind};
use crate::clock::Clock;
use crate::engine::{Command as Engine, TransferTarget};
use crate::state::AppState;

/// Parses `address/prefix` (or a bare address, a host route).
pub fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((ip, prefix))
}

/// Trunks and numbers of every tenant, from the store.
pub async fn load_directory(store: &Store) -> anyhow::Result<Directory> {
    let mut d = Directory::default();
    for t in store.all_trunks().await? {
        let outbound = outbound_route(&t).await;
        d.trunks.push(TrunkRoute {
            tenant: t.tenant,
            name: t.name,
            allow: t.allow.iter().filter_map(|n| parse_network(n)).collect(),
            trust_identity: t.trust_identity,
            outbound,
        });
    }
    for n in store.all_voice_numbers().await? {
        d.dids.insert(
            (n.tenant, n.number),
            DidRoute {
                tenant: n.tenant,
                queue: n.queue,
                flow: n.flow,
            },
        );
    }
    Ok(d)
}

/// A trunk's outbound settings with the provider's address resolved (once per reload: the
/// SIP core does no DNS). `None` when the trunk sends no calls out or its host does not
/// resolve (logged).
async fn outbound_route(t: &switchboard_store::voice::Trunk) -> Option<OutboundRoute> {
    let uri = t
        .outbound_uri
        .as_deref()?
        .parse::<switchboard_sip::Uri>()
        .ok()?
        .as_sip()
        .cloned()?;
    let port = uri.port.unwrap_or(5060);
    let host = match &uri.host {
        switchboard_sip::Host::Ipv6(a) => a.to_string(),
        h => h.to_string(),
    };
    let peer = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut addrs) => addrs.next()?,
        Err(e) => {
            tracing::warn!(trunk = %t.name, error = %e, "the outbound provider's host does not resolve");
            return None;
        }
    };
    let credentials = match (&t.outbound_username, &t.outbound_password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        _ => None,
    };
    Some(OutboundRoute {
        peer,
        uri: switchboard_sip::SipUri {
            user: None,
            password: None,
            headers: Vec::new(),
            ..uri
        },
        credentials,
        caller_id: t.caller_id.clone(),
    })
}

/// Calls do not survive a restart (their dialogs lived in memory): voice interactions left
/// open by the previous process are ended now — waiting ones as abandoned, connected ones go to
/// wrap-up for their disposition.
pub async fn end_orphans(state: &AppState) {
    let Ok(tenants) = state.store.tenants().await else {
        return;
    };
    for t in tenants {
        let Ok(open) = state.store.open_interactions(t.id).await else {
            continue;
        };
        // Call backs still waiting and voicemails left have no call to lose: they stay.
        let lives_on = |i: &switchboard_store::Interaction| {
            use switchboard_model::InteractionState as S;
            (crate::engine::callback_number(i).is_some()
                && matches!(i.state, S::Queued | S::Offered))
                || (crate::engine::is_voicemail(i) && i.state != S::Flow)
        };
        for it in open
            .into_iter()
            .filter(|i| i.channel == Channel::Voice && !lives_on(i))
        {
            let r = state
                .ask(t.id, |reply| Engine::CallEnded {
                    id: it.id,
                    by: "restart",
                    hold: std::time::Duration::ZERO,
                    reply,
                })
                .await;
            if let Ok(Err(e)) = r {
                tracing::debug!(error = %e.message, "orphaned call could not be ended");
            }
        }
    }
}

/// The caller's number as a contact point, in E.164 (national numbers take the configured
/// `[messaging] default_country_code`, as on every channel). `None` for an anonymous caller or
/// something that is no phone number (an extension, a name).
pub fn caller_number(
    raw: &str,
    default_country: Option<switchboard_model::phone::CountryCode>,
) -> Option<String> {
    switchboard_model::phone::normalize(raw, default_country)
        .ok()
        .map(String::from)
}

/// The customer calling from `number`: the owner of that contact point, or a new customer.
pub(crate) async fn customer_for(
    state: &AppState,
    tenant: TenantId,
    number: &str,
    name: Option<&str>,
) -> Option<CustomerId> {
    let kind = "phone";
    if let Ok(Some(c)) = state.store.customer_by_contact(tenant, kind, number).await {
        return Some(c);
    }
    let c = Customer {
        id: CustomerId::from_uuid(state.clock.new_uuid()),
        tenant,
        name: name.unwrap_or(number).to_string(),
        created_at: state.clock.wall_ms(),
        contact_points: vec![ContactPoint {
            kind: kind.into(),
            value: Sensitive::new(number.to_string()),
        }],
    };
    match state.store.create_customer(&c).await {
        Ok(()) => Some(c.id),
        // Two calls from a new number at once: the other one made the customer.
        Err(_) => state
            .store
            .customer_by_contact(tenant, kind, number)
            .await
            .ok()
            .flatten(),
    }
}

/// Runs each notice of the B2BUA against the routing engine, concurrently, and sends the
/// outcome back to the SIP engine.
pub async fn notices_loop(
    state: AppState,
    mut notices: mpsc::UnboundedReceiver<CallNotice>,
    sip: mpsc::Sender<Command>,
    ivr: super::ivr::IvrContext,
) {
    while let Some(n) = notices.recv().await {
        let state = state.clone();
        let sip = sip.clone();
        let ivr = ivr.clone();
        tokio::spawn(async move { handle_notice(state, n, sip, ivr).await });
    }
}

async fn handle_notice(
    state: AppState,
    n: CallNotice,
    sip: mpsc::Sender<Command>,
    ivr: super::ivr::IvrContext,
) {
    match n {
        CallNotice::Incoming {
            call,
            tenant,
            queue,
            did,
            caller,
            display,
            trunk,
            flow,
        } => {
            let number = caller_number(&caller, state.config.messaging.default_country_code);
            let customer = match &number {
                Some(n) => customer_for(&state, tenant, n, display.as_deref()).await,
                None => None,
            };
            let subject = match (&display, &number) {
                (Some(d), Some(n)) => format!("Call from {d} ({n})"),
                (None, Some(n)) => format!("Call from {n}"),
                _ => "Call from an anonymous caller".to_string(),
            };
            let attributes = json!({"did": did, "caller": number, "trunk": trunk});
            if let Some(flow) = flow {
                return super::ivr::open(
                    &state, call, tenant, flow, queue, subject, customer, attributes, sip, ivr,
                )
                .await;
            }
            let r = state
                .ask(tenant, |reply| Engine::Create {
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
                Ok(Err(e)) => {
                    tracing::warn!(error = %e.message, "a call could not be queued");
                    Err(if e.status.is_server_error() { 503 } else { 480 })
                }
                Err(_) => Err(503),
            };
            let _ = sip.send(Command::Queued { call, result }).await;
        }
        CallNotice::Answered {
            call,
            tenant,
            interaction,
            agent,
        } => {
            let r = state
                .ask(tenant, |reply| Engine::Accept {
                    id: interaction,
                    agent,
                    reply,
                })
                .await;
            let ok = matches!(r, Ok(Ok(_)));
            let _ = sip.send(Command::Accepted { interaction, ok }).await;
            if let (true, Ok(Ok(it))) = (state.config.voice.whisper, r) {
                whisper(&state, &ivr, call, &it).await;
            }
        }
        CallNotice::OfferFailed {
            tenant,
            interaction,
            agent,
            status,
        } => {
            let _ = state
                .ask(tenant, |reply| Engine::OfferFailed {
                    id: interaction,
                    agent,
                    status,
                    reply,
                })
                .await;
        }
        CallNotice::CallerLeft {
            tenant,
            interaction,
        } => end(&state, tenant, interaction, "caller").await,
        CallNotice::Lost {
            tenant,
            interaction,
        } => end(&state, tenant, interaction, "lost").await,
        CallNotice::DialFailed {
            tenant,
            interaction,
            status,
        } => {
            tracing::info!(status, "an outbound call was not answered");
            end(&state, tenant, interaction, "number").await
        }
        CallNotice::Hangup {
            tenant,
            interaction,
            by,
            hold,
        } => end_held(&state, tenant, interaction, by.as_str(), hold).await,
        CallNotice::MediaTimeout {
            tenant,
            interaction,
            leg,
            hold,
        } => {
            tracing::info!(interaction = %interaction, leg = leg.as_str(), "no RTP for the timeout; the call was hung up");
            end_held(&state, tenant, interaction, "rtp_timeout", hold).await
        }
        CallNotice::Hold {
            tenant,
            interaction,
            held,
            lasted,
        } => {
            let (kind, data) = if held {
                ("interaction.held", json!({"by": "agent"}))
            } else {
                (
                    "interaction.resumed",
                    json!({"by": "agent", "hold_s": lasted.as_secs_f64()}),
                )
            };
            let step = crate::engine::FlowStep::Note {
                kind: kind.into(),
                data,
            };
            let r = state
                .ask(tenant, |reply| Engine::Flow {
                    id: interaction,
                    step,
                    reply,
                })
                .await;
            if let Ok(Err(e)) = r {
                tracing::debug!(error = %e.message, "could not record a hold");
            }
        }
        CallNotice::Refer {
            tenant,
            interaction,
            agent,
            target,
        } => {
            // Refer-To names a queue, else an agent (its SIP or login username).
            // Refer-To names a queue, else an agent (its SIP or login username), else a number
            // (out through the tenant's outbound trunk).
            let to = match find_queue(&state, tenant, &target).await {
                Ok(Some(q)) => Some(TransferTarget::Queue(q)),
                _ => match find_agent(&state, tenant, &target).await {
                    Ok(Some(a)) => Some(TransferTarget::Agent(a)),
                    _ => outbound_number(&state, tenant, &target)
                        .await
                        .ok()
                        .map(|(n, _)| TransferTarget::Number(n)),
                },
            };
            let refused = match to {
                Some(to) => {
                    let r = state
                        .ask(tenant, |reply| Engine::Transfer {
                            id: interaction,
                            by_agent: Some(agent),
                            to,
                            reply,
                        })
                        .await;
                    match r {
                        Ok(Ok(_)) => false,
                        Ok(Err(e)) => {
                            tracing::info!(error = %e.message, "a phone's transfer was refused");
                            true
                        }
                        Err(_) => true,
                    }
                }
                None => {
                    tracing::info!("a phone asked to transfer to an unknown target");
                    true
                }
            };
            if refused {
                // The transferring phone has already left (blind transfer): the call ends.
                end(&state, tenant, interaction, "agent").await;
                let _ = sip.send(Command::HangUp(interaction)).await;
            }
        }
    }
}

/// The whisper: "Call from queue X, caller Y" spoken to the agent's leg only, as the call is
/// bridged (`[voice] whisper`).
async fn whisper(
    state: &AppState,
    ivr: &super::ivr::IvrContext,
    call: super::calls::CallKey,
    it: &switchboard_store::Interaction,
) {
    let queue = match it.queue {
        Some(q) => state
            .store
            .queues(it.tenant)
            .await
            .ok()
            .and_then(|qs| qs.into_iter().find(|r| r.id == q))
            .map(|r| r.name),
        None => None,
    };
    let text = whisper_text(
        queue.as_deref(),
        it.attributes.get("caller").and_then(|v| v.as_str()),
    );
    let Some(samples) = ivr.prompts.speak("en", &text).await else {
        return;
    };
    let media = ivr.registry.lock().ok().and_then(|r| r.get(&call).cloned());
    if let Some(m) = media {
        let clip = switchboard_media::player::Clip {
            samples,
            looping: false,
            id: 0,
        };
        let _ = m
            .send(super::media::MediaCommand::Play(
                switchboard_media::relay::Leg::Agent,
                clip,
            ))
            .await;
    }
}

/// What the whisper says: the queue, and the caller's number digit by digit.
pub(crate) fn whisper_text(queue: Option<&str>, caller: Option<&str>) -> String {
    let caller = caller
        .map(|n| {
            n.chars()
                .filter(char::is_ascii_digit)
                .map(String::from)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "anonymous".into());
    match queue {
        Some(q) => format!("Call from queue {q}, caller {caller}."),
        None => format!("Call for you, caller {caller}."),
    }
}

/// A number to call out: normalised to E.164, and the name of the tenant's outbound trunk it
/// goes through (422 without one).
pub(crate) async fn outbound_number(
    state: &AppState,
    tenant: TenantId,
    raw: &str,
) -> Result<(Sensitive<String>, String), crate::error::ApiError> {
    use crate::error::ApiError;
    let number =
        caller_number(raw, state.config.messaging.default_country_code).ok_or_else(|| {
            ApiError::unprocessable("invalid_number", "the number is not a phone number")
        })?;
    let trunk = state
        .store
        .trunks(tenant)
        .await?
        .into_iter()
        .find(|t| t.outbound_uri.is_some())
        .ok_or_else(|| {
            ApiError::unprocessable(
                "no_outbound_trunk",
                "no trunk of this tenant sends calls out; set a trunk's outbound_uri",
            )
        })?;
    Ok((Sensitive::new(number), trunk.name))
}

async fn end(state: &AppState, tenant: TenantId, interaction: InteractionId, by: &'static str) {
    end_held(state, tenant, interaction, by, std::time::Duration::ZERO).await
}

/// Ends a call's interaction; `hold` is the time the caller was held (not talk time).
async fn end_held(
    state: &AppState,
    tenant: TenantId,
    interaction: InteractionId,
    by: &'static str,
    hold: std::time::Duration,
) {
    let r = state
        .ask(tenant, |reply| Engine::CallEnded {
            id: interaction,
            by,
            hold,
            reply,
        })
        .await;
    if let Ok(Err(e)) = r {
        tracing::debug!(error = %e.message, "ending a call's interaction");
    }
}

/// Turns the engine's voice events into commands for the SIP engine.
pub async fn voice_events_loop(
    mut events: mpsc::UnboundedReceiver<VoiceEvent>,
    sip: mpsc::Sender<Command>,
    table: Arc<RwLock<BindingTable>>,
    agents: Arc<RwLock<HashMap<(TenantId, switchboard_model::AgentId), Aor>>>,
    clock: Clock,
) {
    while let Some(e) = events.recv().await {
        let phones = |agent| {
            let aor = agents
                .read()
                .ok()
                .and_then(|a| a.get(&(e.tenant, agent)).cloned());
            let now = clock.mono();
            let contacts = aor
                .as_ref()
                .and_then(|aor| {
                    table.read().ok().map(|t| {
                        t.get(aor)
                            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
                            .unwrap_or_default()
                    })
                })
                .unwrap_or_default();
            (aor, contacts)
        };
        let cmd = match e.kind {
            VoiceEventKind::Offered(agent) => {
                let (aor, contacts) = phones(agent);
                Command::Offer {
                    tenant: e.tenant,
                    interaction: e.interaction,
                    agent,
                    aor,
                    contacts,
                }
            }
            VoiceEventKind::Dial { agent, number } => {
                let (aor, contacts) = phones(agent);
                Command::Dial {
                    tenant: e.tenant,
                    interaction: e.interaction,
                    agent,
                    aor,
                    contacts,
                    number,
                }
            }
            VoiceEventKind::OfferEnded(agent) => Command::OfferEnded {
                interaction: e.interaction,
                agent,
            },
            VoiceEventKind::Requeued => Command::Requeued(e.interaction),
            VoiceEventKind::TransferredOut(number) => Command::TransferOut {
                interaction: e.interaction,
                number,
            },
            VoiceEventKind::Ended => Command::HangUp(e.interaction),
        };
        if sip.send(cmd).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_numbers_parse() {
        assert_eq!(
            parse_network("127.0.0.1"),
            Some(("127.0.0.1".parse().unwrap(), 32))
        );
        assert_eq!(
            parse_network("10.0.0.0/8"),
            Some(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(parse_network("::1/129"), None);
        assert_eq!(parse_network("nonsense"), None);
        assert_eq!(
            caller_number("+44 20 7946 0000", None).as_deref(),
            Some("+442079460000")
        );
        assert_eq!(caller_number("anonymous", None), None);
    }

    #[test]
    fn the_whisper_names_the_queue_and_spells_the_number() {
        assert_eq!(
            whisper_text(Some("sales"), Some("+4420")),
            "Call from queue sales, caller 4 4 2 0."
        );
        assert_eq!(whisper_text(None, None), "Call for you, caller anonymous.");
    }
}
