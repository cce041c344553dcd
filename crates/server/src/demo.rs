//! The demo tenant: created on first start of an empty database unless `--no-demo`. Logins and
//! names follow API.md: `admin`/`admin`, `supervisor`/`supervisor`, `agent1`..`agent3`/`agent`;
//! queues `sales` and `support`, every agent skilled for both.

use crate::auth::hash_password;
use crate::clock::Clock;
use crate::shapes::{AgentSkill, CapacityBody, QueueConfig, RequiredSkill};
use switchboard_model::{AgentId, Capacity, Presence, QueueId, Role, SkillId, TenantId, UserId};
use switchboard_store::{AgentRecord, QueueRecord, Skill, Store, Tenant, User};

/// The demo logins, printed at start-up.
pub const LOGINS: &[(&str, &str, &str)] = &[
    ("admin", "admin", "admin"),
    ("supervisor", "supervisor", "supervisor"),
    ("agent1", "agent", "agent"),
    ("agent2", "agent", "agent"),
    ("agent3", "agent", "agent"),
];

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
            ..QueueConfig::default()
        };
        store
            .put_queue(&QueueRecord {
                id: QueueId::from_uuid(clock.new_uuid()),
                tenant,
                name: s.name.clone(),
                config: serde_json::to_value(&config)?,
                version: 1,
                created_at: now,
                updated_at: now,
            })
            .await?;
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
            store
                .put_agent(&AgentRecord {
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
                })
                .await?;
        }
    }
    Ok(())
}
