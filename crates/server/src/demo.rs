//! The demo tenant: created on first start of an empty database unless `--no-demo`. Logins and
//! names follow API.md: `admin`/`admin`, `supervisor`/`supervisor`, `agent1`..`agent3`/`agent`;
//! queues `sales` and `support`, every agent skilled for both. Agents' phones register as
//! `agent1`..`agent3` with SIP password `agent` in realm [`SIP_REALM`]. Flows: `demo-chat` (the
//! chat widget's: greeting, topic menu, queue with announcements and a long-wait offer),
//! `demo-ivr` and `demo-support` (for the voice numbers).

use crate::auth::hash_password;
use crate::clock::Clock;
use crate::shapes::{AgentSkill, CapacityBody, QueueConfig, RecordingPolicy, RequiredSkill};
use serde_json::{Value, json};
use switchboard_model::FlowId;
use switchboard_model::{
    AgentId, Capacity, Presence, QueueId, RecordingMode, Role, Sensitive, SkillId, TenantId, UserId,
};
use switchboard_sip::digest::Credentials;
use switchboard_store::flows::FlowRecord;
use switchboard_store::voice::SipCredential;
use switchboard_store::{AgentRecord, QueueRecord, Skill, Store, Tenant, User};

/// The demo logins, printed at start-up.
pub const LOGINS: &[(&str, &str, &str)] = &[
    ("admin", "admin", "admin"),
    ("supervisor", "supervisor", "supervisor"),
    ("agent1", "agent", "agent"),
    ("agent2", "agent", "agent"),
    ("agent3", "agent", "agent"),
];

/// The demo tenant's SIP realm (API.md, demo telephony).
pub const SIP_REALM: &str = "demo.switchboard.local";

/// The demo agents' SIP password.
const SIP_PASSWORD: &str = "agent";

/// The SIP credential of a demo agent (HA1s only; the password is not stored).
fn demo_sip_credential(agent: &AgentRecord, now: i64) -> SipCredential {
    let c = Credentials::from_password(&agent.name, SIP_REALM, SIP_PASSWORD);
    SipCredential {
        tenant: agent.tenant,
        agent: agent.id,
        realm: c.realm,
        username: c.username,
        ha1_md5: c.ha1_md5.map(Sensitive::new),
        ha1_sha256: c.ha1_sha256.map(Sensitive::new),
        updated_at: now,
    }
}

/// Gives the demo agents their SIP credentials when they have none (a demo database seeded
/// before voice existed); does nothing without a demo tenant.
pub async fn ensure_sip_credentials(store: &Store, clock: &Clock) -> anyhow::Result<()> {
    let Some(tenant) = store.tenant_by_slug("demo").await? else {
        return Ok(());
    };
    for agent in store.agents(tenant.id).await? {
        let is_demo_agent = LOGINS
            .iter()
            .any(|(u, _, role)| *role == "agent" && *u == agent.name);
        if is_demo_agent && store.sip_credential(tenant.id, agent.id).await?.is_none() {
            store
                .put_sip_credential(&demo_sip_credential(&agent, clock.wall_ms()))
                .await?;
        }
    }
    Ok(())
}

/// The demo tenant's voice set-up when it has none: a trunk that accepts calls from this
/// machine (a SIP phone or SIPp on loopback plays the provider), and numbers 1000 and 1001 for
/// support (API.md: 1001 goes straight to support; 1000 is the demo IVR, whose no-input choice
/// is support, until calls have media to play it).
pub async fn ensure_voice_directory(store: &Store, clock: &Clock) -> anyhow::Result<()> {
    let Some(tenant) = store.tenant_by_slug("demo").await? else {
        return Ok(());
    };
    if !store.trunks(tenant.id).await?.is_empty() {
        return Ok(());
    }
    let now = clock.wall_ms();
    store
        .put_trunk(&switchboard_store::voice::Trunk {
            id: clock.new_uuid(),
            tenant: tenant.id,
            name: "demo-trunk".into(),
            allow: vec!["127.0.0.1/32".into(), "::1/128".into()],
            outbound_uri: None,
            outbound_username: None,
            outbound_password: None,
            caller_id: None,
            // Loopback is this machine: what it asserts is believed.
            trust_identity: true,
            created_at: now,
            updated_at: now,
        })
        .await?;
    let queues = store.queues(tenant.id).await?;
    // 1000 runs the demo IVR (its queue is where a call goes if the flow is missing).
    for (number, queue, flow) in [
        ("1000", "support", Some("demo-ivr")),
        ("1001", "support", None),
    ] {
        if let Some(q) = queues.iter().find(|q| q.name == queue) {
            store
                .put_voice_number(&switchboard_store::voice::VoiceNumber {
                    tenant: tenant.id,
                    number: number.into(),
                    queue: q.id,
                    flow: flow.map(str::to_string),
                    created_at: now,
                })
                .await?;
        }
    }
    Ok(())
}

/// Gives the demo's `support` queue its recording policy (`all`) when its configuration
/// predates recordings (no `recording` key at all: an admin's own choice, `none` included, is
/// kept); does nothing without a demo tenant.
pub async fn ensure_recording_policy(store: &Store, clock: &Clock) -> anyhow::Result<()> {
    let Some(tenant) = store.tenant_by_slug("demo").await? else {
        return Ok(());
    };
    for mut q in store.queues(tenant.id).await? {
        if q.name != "support" || q.config.get("recording").is_some() {
            continue;
        }
        let mut config: QueueConfig = serde_json::from_value(q.config.clone())?;
        config.recording.policy = RecordingMode::All;
        q.config = serde_json::to_value(&config)?;
        q.version += 1;
        q.updated_at = clock.wall_ms();
        store.put_queue(&q).await?;
    }
    Ok(())
}

/// Creates a tenant with one admin user (used by `switchboard admin create` as well).
pub async fn create_tenant_admin(
    store: &Store,
    clock: &Clock,
    slug: &str,
    username: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<TenantId> {
    let tenant = match store.tenant_by_slug(slug).await? {
        Some(t) => t.id,
        None => {
            let t = Tenant {
                id: TenantId::from_uuid(clock.new_uuid()),
                slug: slug.to_owned(),
                name: slug.to_owned(),
                created_at: clock.wall_ms(),
            };
            store.create_tenant(&t).await?;
            t.id
        }
    };
    let hash = hash_password(password.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    store
        .create_user(&User {
            id: UserId::from_uuid(clock.new_uuid()),
            tenant,
            username: username.to_owned(),
            password_hash: hash,
            role,
            display_name: username.to_owned(),
            created_at: clock.wall_ms(),
        })
        .await?;
    Ok(tenant)
}

/// Seeds the demo tenant.
pub async fn seed(store: &Store, clock: &Clock) -> anyhow::Result<()> {
    let tenant = create_tenant_admin(store, clock, "demo", "admin", "admin", Role::Admin).await?;
    let now = clock.wall_ms();
    let mut skills = Vec::new();
    for name in ["sales", "support"] {
        let s = Skill {
            id: SkillId::from_uuid(clock.new_uuid()),
            tenant,
            name: name.to_owned(),
            description: format!("Handles {name} contacts"),
            created_at: now,
        };
        store.put_skill(&s).await?;
        skills.push(s);
    }
    let mut support_queue = None;
    for s in &skills {
        let config = QueueConfig {
            description: format!("Demo {} queue", s.name),
            required_skills: vec![RequiredSkill {
                skill: s.id,
                min_level: 1,
            }],
            dispositions: vec![
                "resolved".into(),
                "follow_up".into(),
                "escalated".into(),
                "no_action".into(),
            ],
            // The demo records every support call (docs/voice.md, "Recordings").
            recording: RecordingPolicy {
                policy: if s.name == "support" {
                    RecordingMode::All
                } else {
                    RecordingMode::None
                },
                ..RecordingPolicy::default()
            },
            ..QueueConfig::default()
        };
        let id = QueueId::from_uuid(clock.new_uuid());
        if s.name == "support" {
            support_queue = Some(id);
        }
        store
            .put_queue(&QueueRecord {
                id,
                tenant,
                name: s.name.clone(),
                config: serde_json::to_value(&config)?,
                version: 1,
                created_at: now,
                updated_at: now,
            })
            .await?;
    }
    seed_flows(store, clock, tenant).await?;
    if let Some(queue) = support_queue {
        seed_email(store, clock, tenant, queue).await?;
    }
    for &(username, password, role) in &LOGINS[1..] {
        let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let user = User {
            id: UserId::from_uuid(clock.new_uuid()),
            tenant,
            username: username.to_owned(),
            password_hash: hash_password(password.to_owned())
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?,
            role,
            display_name: username.to_owned(),
            created_at: now,
        };
        store.create_user(&user).await?;
        if role == Role::Agent {
            let agent_skills: Vec<AgentSkill> = skills
                .iter()
                .map(|s| AgentSkill {
                    skill: s.id,
                    level: 5,
                })
                .collect();
            let capacity: CapacityBody = Capacity::default().into();
            let agent = AgentRecord {
                id: AgentId::from_uuid(clock.new_uuid()),
                tenant,
                user: user.id,
                name: username.to_owned(),
                skills: serde_json::to_value(&agent_skills)?,
                capacity: serde_json::to_value(&capacity)?,
                presence: Presence::Offline,
                presence_reason: None,
                presence_since: now,
                created_at: now,
            };
            store.put_agent(&agent).await?;
            store
                .put_sip_credential(&demo_sip_credential(&agent, now))
                .await?;
        }
    }
    Ok(())
}

/// Open every day, all day: the demo and its tests behave the same at any hour.
fn always_open() -> Value {
    json!({
        "time_zone": "UTC",
        "open": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "24:00"}],
    })
}

/// The demo chat flow: greeting, topic menu (Sales, Support), then the topic's queue with
/// position announcements every 30 s and, beyond 120 s of estimated wait, the help center and an
/// email answer.
pub fn demo_chat_flow() -> Value {
    let queue = |name: &str| {
        json!({
            "type": "queue", "queue": name, "announce_every_s": 30, "long_wait_s": 120,
            "self_service_url": "https://help.demo.example", "email_follow_up": true,
        })
    };
    json!({
        "start": "hours",
        "nodes": {
            "hours": {"type": "hours", "schedule": always_open(), "open_next": "greeting", "closed_next": "closed"},
            "greeting": {"type": "say", "next": "topic", "text": {
                "en": "Hello! Welcome to the demo shop.",
                "ar": "مرحباً! أهلاً بك في المتجر التجريبي.",
                "fa": "سلام! به فروشگاه نمایشی خوش آمدید.",
            }},
            "topic": {"type": "menu", "retries": 2, "on_invalid": "support",
                "prompt": {"en": "What can we help you with?", "ar": "كيف يمكننا مساعدتك؟", "fa": "چطور می‌توانیم کمکتان کنیم؟"},
                "options": [
                    {"key": "1", "label": {"en": "Sales", "ar": "المبيعات", "fa": "فروش"}, "next": "sales"},
                    {"key": "2", "label": {"en": "Support", "ar": "الدعم", "fa": "پشتیبانی"}, "next": "support"},
                ]},
            "sales": queue("sales"),
            "support": queue("support"),
            "closed": {"type": "end", "reason": "out_of_hours", "message": {
                "en": "We are closed now. Please come back during business hours.",
                "ar": "نحن مغلقون الآن. يرجى العودة خلال ساعات العمل.",
                "fa": "اکنون تعطیل هستیم. لطفاً در ساعات کاری برگردید.",
            }},
        }
    })
}

/// The demo address `support@demo.example` → queue `support`, acknowledging new mail.
async fn seed_email(
    store: &Store,
    clock: &Clock,
    tenant: switchboard_model::TenantId,
    queue: QueueId,
) -> anyhow::Result<()> {
    let now = clock.wall_ms();
    store
        .put_channel_account(&switchboard_store::ChannelAccount {
            id: switchboard_model::ChannelAccountId::from_uuid(clock.new_uuid()),
            tenant,
            provider: "email".into(),
            name: "Support mail".into(),
            queue,
            base_url: String::new(),
            settings: json!({
                "address": "support@demo.example",
                "display_name": "Demo Support",
                "ack_text": "Thank you for writing to us. Your reference is {ticket}; please keep it in the subject of your replies. We answer within {response_time}.",
                "response_time": "4 hours",
            }),
            secrets: switchboard_model::Sensitive::new(json!({})),
            enabled: true,
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok(())
}

/// The demo IVR: greeting, 1 for sales, 2 for support; no answer in 5 s goes to support.
pub fn demo_ivr_flow() -> Value {
    json!({
        "start": "greeting",
        "nodes": {
            "greeting": {"type": "say", "text": "Welcome to the Switchboard demo.", "next": "menu"},
            "menu": {"type": "menu", "prompt": "For sales press 1. For support press 2.",
                "timeout_s": 5, "retries": 2, "on_timeout": "support", "on_invalid": "support",
                "options": [
                    {"key": "1", "label": "Sales", "next": "sales"},
                    {"key": "2", "label": "Support", "next": "support"},
                ]},
            "sales": {"type": "queue", "queue": "sales", "announce_every_s": 60, "callback": true},
            "support": {"type": "queue", "queue": "support", "announce_every_s": 60, "callback": true},
        }
    })
}

/// Straight to the support queue.
pub fn demo_support_flow() -> Value {
    json!({"start": "support", "nodes": {"support": {"type": "queue", "queue": "support"}}})
}

/// Creates the demo flows and makes `demo-chat` the chat widget's flow.
async fn seed_flows(store: &Store, clock: &Clock, tenant: TenantId) -> anyhow::Result<()> {
    let now = clock.wall_ms();
    for (name, definition) in [
        ("demo-chat", demo_chat_flow()),
        ("demo-ivr", demo_ivr_flow()),
        ("demo-support", demo_support_flow()),
    ] {
        switchboard_flow::FlowDef::from_json(&definition)
            .map_err(|e| anyhow::anyhow!("demo flow {name}: {e}"))?;
        let f = FlowRecord {
            id: FlowId::from_uuid(clock.new_uuid()),
            tenant,
            name: name.to_owned(),
            current_version: 1,
            definition,
            created_at: now,
            updated_at: now,
        };
        store.create_flow(&f, None).await?;
        if name == "demo-chat" {
            store.set_chat_flow(tenant, Some(f.id), now).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_flows_validate() {
        for f in [
            super::demo_chat_flow(),
            super::demo_ivr_flow(),
            super::demo_support_flow(),
        ] {
            switchboard_flow::FlowDef::from_json(&f).expect("valid demo flow");
        }
    }

    #[tokio::test]
    async fn a_support_queue_from_before_recordings_records_all_and_a_choice_is_kept() {
        let dir = std::env::temp_dir().join(format!(
            "sb-demo-rec-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Store::open_sqlite(&dir.join("db.sqlite"))
            .await
            .expect("store");
        let clock = Clock::new();
        let tenant = TenantId::from_u128(1);
        store
            .create_tenant(&Tenant {
                id: tenant,
                slug: "demo".into(),
                name: "demo".into(),
                created_at: 0,
            })
            .await
            .expect("tenant");
        let old = QueueConfig {
            wrap_up_s: 7,
            ..QueueConfig::default()
        };
        let mut old = serde_json::to_value(&old).expect("json");
        old.as_object_mut().expect("object").remove("recording");
        for (n, name, config) in [(1, "support", old.clone()), (2, "sales", old)] {
            store
                .put_queue(&QueueRecord {
                    id: QueueId::from_u128(n),
                    tenant,
                    name: name.into(),
                    config,
                    version: 1,
                    created_at: 0,
                    updated_at: 0,
                })
                .await
                .expect("queue");
        }
        ensure_recording_policy(&store, &clock)
            .await
            .expect("ensure");
        let read = |id| {
            let store = store.clone();
            async move {
                let q = store
                    .queue(tenant, QueueId::from_u128(id))
                    .await
                    .expect("q")
                    .expect("q");
                let c: QueueConfig = serde_json::from_value(q.config).expect("config");
                (q.version, c)
            }
        };
        let (v, c) = read(1).await;
        assert_eq!(
            (v, c.recording.policy, c.wrap_up_s),
            (2, RecordingMode::All, 7)
        );
        let (v, c) = read(2).await;
        assert_eq!((v, c.recording.policy), (1, RecordingMode::None));
        // an admin who then chose `none` for support keeps it
        let mut q = store
            .queue(tenant, QueueId::from_u128(1))
            .await
            .expect("q")
            .expect("q");
        q.config["recording"]["policy"] = "none".into();
        store.put_queue(&q).await.expect("put");
        ensure_recording_policy(&store, &clock)
            .await
            .expect("ensure");
        let (v, c) = read(1).await;
        assert_eq!((v, c.recording.policy), (2, RecordingMode::None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
