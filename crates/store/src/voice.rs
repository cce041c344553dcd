//! Voice: the SIP credentials of agents' phones (digest HA1s, never passwords). One credential
//! per agent; a username is unique within its realm and a realm belongs to one tenant.
//! Registrations are not stored (the registrar keeps them in memory).

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
            .execute(self.pool())
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
