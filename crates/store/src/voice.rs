//! Voice: the SIP credentials of agents' phones (digest HA1s, never passwords). One credential
//! per agent; a username is unique within its realm and a realm belongs to one tenant.
//! Registrations are not stored (the registrar keeps them in memory).

use crate::ExecuteInTurn;
use crate::{Result, Store, StoreError, map_unique, parse};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_model::{AgentId, Sensitive, TenantId};

/// The SIP account of an agent's phones.
#[derive(Debug, Clone, PartialEq)]
pub struct SipCredential {
    /// Tenant.
    pub tenant: TenantId,
    /// The agent whose phones use it.
    pub agent: AgentId,
    /// Digest realm (the tenant's SIP domain, e.g. `demo.switchboard.local`).
    pub realm: String,
    /// Digest username (the user part of the phone's address-of-record).
    pub username: String,
    /// Hex `MD5(username:realm:password)`; `None` disables MD5 for this user.
    pub ha1_md5: Option<Sensitive<String>>,
    /// Hex `SHA-256(username:realm:password)`; `None` disables SHA-256 for this user.
    pub ha1_sha256: Option<Sensitive<String>>,
    /// Last change (UTC ms).
    pub updated_at: i64,
}

const T: &str = "sip_credentials";
// A macro so `concat!` keeps the queries static SQL.
macro_rules! credential_select {
    () => {
        "SELECT tenant_id, agent_id, realm, username, ha1_md5, ha1_sha256, updated_at FROM sip_credentials"
    };
}

fn credential_from_row(r: &SqliteRow) -> Result<SipCredential> {
    Ok(SipCredential {
        tenant: parse(T, &r.try_get::<String, _>(0)?)?,
        agent: parse(T, &r.try_get::<String, _>(1)?)?,
        realm: r.try_get(2)?,
        username: r.try_get(3)?,
        ha1_md5: r.try_get::<Option<String>, _>(4)?.map(Sensitive::new),
        ha1_sha256: r.try_get::<Option<String>, _>(5)?.map(Sensitive::new),
        updated_at: r.try_get(6)?,
    })
}

impl Store {
    /// Sets the SIP credential of `c.agent`, replacing any previous one. Conflict when the
    /// username is taken in the realm by another agent, or the realm belongs to another
    /// tenant.
    pub async fn put_sip_credential(&self, c: &SipCredential) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM sip_credentials WHERE realm = $1 AND tenant_id <> $2 LIMIT 1",
        )
        .bind(&c.realm)
        .bind(c.tenant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if owner.is_some() {
            return Err(StoreError::Conflict(format!(
                "SIP realm {:?} belongs to another tenant",
                c.realm
            )));
        }
        sqlx::query("DELETE FROM sip_credentials WHERE tenant_id = $1 AND agent_id = $2")
            .bind(c.tenant.to_string())
            .bind(c.agent.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sip_credentials (tenant_id, agent_id, realm, username, ha1_md5, ha1_sha256, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.tenant.to_string())
        .bind(c.agent.to_string())
        .bind(&c.realm)
        .bind(&c.username)
        .bind(c.ha1_md5.as_ref().map(|h| h.expose().clone()))
        .bind(c.ha1_sha256.as_ref().map(|h| h.expose().clone()))
        .bind(c.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, "SIP username in this realm"))?;
        tx.commit().await?;
        Ok(())
    }

    /// The SIP credential of an agent.
    pub async fn sip_credential(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<Option<SipCredential>> {
        let row = sqlx::query(concat!(
            credential_select!(),
            " WHERE tenant_id = $1 AND agent_id = $2"
        ))
        .bind(tenant.to_string())
        .bind(agent.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// Every SIP credential of a tenant.
    pub async fn sip_credentials(&self, tenant: TenantId) -> Result<Vec<SipCredential>> {
        let rows = sqlx::query(concat!(
            credential_select!(),
            " WHERE tenant_id = $1 ORDER BY realm, username"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(credential_from_row).collect()
    }

    /// Every SIP credential of every tenant (the registrar serves them all).
    pub async fn all_sip_credentials(&self) -> Result<Vec<SipCredential>> {
        let rows = sqlx::query(concat!(credential_select!(), " ORDER BY realm, username"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(credential_from_row).collect()
    }

    /// Removes an agent's SIP credential.
    pub async fn delete_sip_credential(&self, tenant: TenantId, agent: AgentId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM sip_credentials WHERE tenant_id = $1 AND agent_id = $2")
            .bind(tenant.to_string())
            .bind(agent.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentRecord, Tenant, User};
    use switchboard_model::{Presence, Role, UserId};

    async fn tenant_with_agents(store: &Store, slug: &str, n: usize) -> (TenantId, Vec<AgentId>) {
        let tenant = TenantId::from_uuid(uuid::Uuid::now_v7());
        store
            .create_tenant(&Tenant {
                id: tenant,
                slug: slug.into(),
                name: slug.into(),
                created_at: 0,
            })
            .await
            .unwrap();
        let mut agents = Vec::new();
        for i in 0..n {
            let user = UserId::from_uuid(uuid::Uuid::now_v7());
            store
                .create_user(&User {
                    id: user,
                    tenant,
                    username: format!("{slug}-u{i}"),
                    password_hash: "x".into(),
                    role: Role::Agent,
                    display_name: "a".into(),
                    created_at: 0,
                })
                .await
                .unwrap();
            let id = AgentId::from_uuid(uuid::Uuid::now_v7());
            store
                .put_agent(&AgentRecord {
                    id,
                    tenant,
                    user,
                    name: format!("a{i}"),
                    skills: serde_json::json!([]),
                    capacity: serde_json::json!({}),
                    presence: Presence::Offline,
                    presence_reason: None,
                    presence_since: 0,
                    created_at: 0,
                })
                .await
                .unwrap();
            agents.push(id);
        }
        (tenant, agents)
    }

    fn cred(tenant: TenantId, agent: AgentId, realm: &str, user: &str) -> SipCredential {
        SipCredential {
            tenant,
            agent,
            realm: realm.into(),
            username: user.into(),
            ha1_md5: Some(Sensitive::new("00".repeat(16))),
            ha1_sha256: None,
            updated_at: 1,
        }
    }

    #[tokio::test]
    async fn credentials_round_trip_and_stay_in_their_tenant() {
        let dir = std::env::temp_dir().join(format!("sb-voice-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open_sqlite(&dir.join("db.sqlite")).await.unwrap();
        let (t1, a1) = tenant_with_agents(&store, "one", 2).await;
        let (t2, a2) = tenant_with_agents(&store, "two", 1).await;
        store
            .put_sip_credential(&cred(t1, a1[0], "one.example", "alice"))
            .await
            .unwrap();
        // Replacing the agent's credential.
        let mut c = cred(t1, a1[0], "one.example", "alice2");
        c.ha1_sha256 = Some(Sensitive::new("ab".repeat(32)));
        store.put_sip_credential(&c).await.unwrap();
        assert_eq!(
            store.sip_credential(t1, a1[0]).await.unwrap(),
            Some(c.clone())
        );
        // The username is taken in the realm.
        assert!(matches!(
            store
                .put_sip_credential(&cred(t1, a1[1], "one.example", "alice2"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        // The realm belongs to tenant one.
        assert!(matches!(
            store
                .put_sip_credential(&cred(t2, a2[0], "one.example", "bob"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        store
            .put_sip_credential(&cred(t2, a2[0], "two.example", "alice2"))
            .await
            .unwrap();
        assert_eq!(store.sip_credentials(t1).await.unwrap().len(), 1);
        assert_eq!(store.all_sip_credentials().await.unwrap().len(), 2);
        assert!(store.sip_credential(t2, a1[0]).await.unwrap().is_none());
        assert!(!format!("{c:?}").contains(&"ab".repeat(32)));
        // Deleting the agent removes its credential.
        assert!(store.delete_agent(t2, a2[0]).await.unwrap());
        assert_eq!(store.all_sip_credentials().await.unwrap().len(), 1);
        assert!(store.delete_sip_credential(t1, a1[0]).await.unwrap());
        assert!(store.all_sip_credentials().await.unwrap().is_empty());
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A SIP trunk of a tenant: the peers allowed to send it calls, and the provider its outbound
/// calls go through.
#[derive(Debug, Clone, PartialEq)]
pub struct Trunk {
    /// Id.
    pub id: uuid::Uuid,
    /// Tenant.
    pub tenant: TenantId,
    /// Name, unique in the tenant.
    pub name: String,
    /// Source networks allowed to send calls, as `address/prefix` (or a bare address).
    pub allow: Vec<String>,
    /// Where outbound calls go (`sip:host:port`), if this trunk sends calls out.
    pub outbound_uri: Option<String>,
    /// Digest username at the provider.
    pub outbound_username: Option<String>,
    /// Digest password at the provider.
    pub outbound_password: Option<Sensitive<String>>,
    /// The number presented on outbound calls.
    pub caller_id: Option<String>,
    /// Whether the trunk's P-Asserted-Identity names the caller (RFC 3325 trust domain).
    pub trust_identity: bool,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Last change (UTC ms).
    pub updated_at: i64,
}

/// A number (DID) and the queue its calls go to.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceNumber {
    /// Tenant.
    pub tenant: TenantId,
    /// The number as dialled (the user part of the Request-URI).
    pub number: String,
    /// The queue its calls wait in.
    pub queue: switchboard_model::QueueId,
    /// The flow its calls run first, by name (callers reach `queue` when it has none).
    pub flow: Option<String>,
    /// Created (UTC ms).
    pub created_at: i64,
}

const TRUNKS: &str = "voice_trunks";
const NUMBERS: &str = "voice_numbers";

fn trunk_from_row(r: &SqliteRow) -> Result<Trunk> {
    let allow: String = r.try_get(3)?;
    Ok(Trunk {
        id: parse(TRUNKS, &r.try_get::<String, _>(0)?)?,
        tenant: parse(TRUNKS, &r.try_get::<String, _>(1)?)?,
        name: r.try_get(2)?,
        allow: serde_json::from_str(&allow).map_err(|e| StoreError::Corrupt {
            table: TRUNKS,
            detail: e.to_string(),
        })?,
        outbound_uri: r.try_get(4)?,
        outbound_username: r.try_get(5)?,
        outbound_password: r.try_get::<Option<String>, _>(6)?.map(Sensitive::new),
        caller_id: r.try_get(7)?,
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
        trust_identity: r.try_get(10)?,
    })
}

fn number_from_row(r: &SqliteRow) -> Result<VoiceNumber> {
    Ok(VoiceNumber {
        tenant: parse(NUMBERS, &r.try_get::<String, _>(0)?)?,
        number: r.try_get(1)?,
        queue: parse(NUMBERS, &r.try_get::<String, _>(2)?)?,
        flow: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

macro_rules! trunk_select {
    () => {
        "SELECT id, tenant_id, name, allow, outbound_uri, outbound_username, outbound_password, caller_id, created_at, updated_at, trust_identity FROM voice_trunks"
    };
}

impl Store {
    /// Creates or replaces a trunk (by id). Conflict when the name is taken in the tenant.
    pub async fn put_trunk(&self, t: &Trunk) -> Result<()> {
        let allow = serde_json::to_string(&t.allow).map_err(|e| StoreError::Corrupt {
            table: TRUNKS,
            detail: e.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO voice_trunks (id, tenant_id, name, allow, outbound_uri, outbound_username, outbound_password, caller_id, created_at, updated_at, trust_identity)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, allow = excluded.allow,
               outbound_uri = excluded.outbound_uri, outbound_username = excluded.outbound_username,
               outbound_password = excluded.outbound_password, caller_id = excluded.caller_id,
               updated_at = excluded.updated_at, trust_identity = excluded.trust_identity
             WHERE voice_trunks.tenant_id = excluded.tenant_id",
        )
        .bind(t.id.to_string())
        .bind(t.tenant.to_string())
        .bind(&t.name)
        .bind(allow)
        .bind(&t.outbound_uri)
        .bind(&t.outbound_username)
        .bind(t.outbound_password.as_ref().map(|p| p.expose().clone()))
        .bind(&t.caller_id)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.trust_identity)
        .execute_in_turn(self)
        .await
        .map_err(|e| map_unique(e, "a trunk with this name"))?;
        Ok(())
    }

    /// The trunks of a tenant, by name.
    pub async fn trunks(&self, tenant: TenantId) -> Result<Vec<Trunk>> {
        sqlx::query(concat!(
            trunk_select!(),
            " WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(trunk_from_row)
        .collect()
    }

    /// One trunk of a tenant.
    pub async fn trunk(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<Trunk>> {
        sqlx::query(concat!(
            trunk_select!(),
            " WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(trunk_from_row)
        .transpose()
    }

    /// Every trunk of every tenant (the SIP listener's directory).
    pub async fn all_trunks(&self) -> Result<Vec<Trunk>> {
        sqlx::query(trunk_select!())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(trunk_from_row)
            .collect()
    }

    /// Deletes a trunk; false when there was none.
    pub async fn delete_trunk(&self, tenant: TenantId, id: uuid::Uuid) -> Result<bool> {
        let r = sqlx::query("DELETE FROM voice_trunks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Creates or replaces a number of a tenant.
    pub async fn put_voice_number(&self, n: &VoiceNumber) -> Result<()> {
        sqlx::query(
            "INSERT INTO voice_numbers (tenant_id, number, queue_id, flow, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, number) DO UPDATE SET queue_id = excluded.queue_id, flow = excluded.flow",
        )
        .bind(n.tenant.to_string())
        .bind(&n.number)
        .bind(n.queue.to_string())
        .bind(&n.flow)
        .bind(n.created_at)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// The numbers of a tenant.
    pub async fn voice_numbers(&self, tenant: TenantId) -> Result<Vec<VoiceNumber>> {
        sqlx::query("SELECT tenant_id, number, queue_id, flow, created_at FROM voice_numbers WHERE tenant_id = $1 ORDER BY number")
            .bind(tenant.to_string())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(number_from_row)
            .collect()
    }

    /// Every number of every tenant.
    pub async fn all_voice_numbers(&self) -> Result<Vec<VoiceNumber>> {
        sqlx::query("SELECT tenant_id, number, queue_id, flow, created_at FROM voice_numbers")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(number_from_row)
            .collect()
    }

    /// Deletes a number; false when there was none.
    pub async fn delete_voice_number(&self, tenant: TenantId, number: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM voice_numbers WHERE tenant_id = $1 AND number = $2")
            .bind(tenant.to_string())
            .bind(number)
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
