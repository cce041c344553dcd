//! Flows: named, versioned definitions (JSON) per tenant, the tenant's chat flow setting, and
//! follow-up requests (customers who chose an email answer instead of waiting).
//!
//! A version is never changed once written: saving makes a new version and moves
//! `current_version`, so an interaction running an older version keeps it.

use crate::ExecuteInTurn;
use crate::{Result, Store, StoreError, map_unique, parse, parse_opt};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_model::{CustomerId, FlowId, InteractionId, Sensitive, TenantId, UserId};

/// A flow with its current definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    /// Id.
    pub id: FlowId,
    /// Tenant.
    pub tenant: TenantId,
    /// Name, unique in the tenant.
    pub name: String,
    /// The version new interactions run.
    pub current_version: i64,
    /// The current version's definition.
    pub definition: Value,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Last new version (UTC ms).
    pub updated_at: i64,
}

/// One saved version of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowVersion {
    /// The flow.
    pub flow: FlowId,
    /// Version number, from 1.
    pub version: i64,
    /// The definition.
    pub definition: Value,
    /// Saved (UTC ms).
    pub created_at: i64,
    /// Who saved it.
    pub author: Option<UserId>,
}

/// A customer's request to be answered by email instead of waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpRequest {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// The interaction that left the queue.
    pub interaction: InteractionId,
    /// The customer.
    pub customer: Option<CustomerId>,
    /// The channel to answer on (`email`).
    pub channel: String,
    /// The address.
    pub address: Sensitive<String>,
    /// Requested (UTC ms).
    pub created_at: i64,
}

const T: &str = "flows";

macro_rules! flow_select {
    () => {
        "SELECT f.id, f.tenant_id, f.name, f.current_version, v.definition, f.created_at, f.updated_at
         FROM flows f JOIN flow_versions v ON v.flow_id = f.id AND v.version = f.current_version"
    };
}

fn flow_from_row(r: &SqliteRow) -> Result<FlowRecord> {
    Ok(FlowRecord {
        id: parse(T, &r.try_get::<String, _>(0)?)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        name: r.try_get(2)?,
        current_version: r.try_get(3)?,
        definition: json(&r.try_get::<String, _>(4)?)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        table: "flow_versions",
        detail: e.to_string(),
    })
}

fn version_from_row(r: &SqliteRow) -> Result<FlowVersion> {
    Ok(FlowVersion {
        flow: parse(T, &r.try_get::<String, _>(0)?)?,
        version: r.try_get(1)?,
        definition: json(&r.try_get::<String, _>(2)?)?,
        created_at: r.try_get(3)?,
        author: parse_opt(T, r.try_get(4)?)?,
    })
}

impl Store {
    /// Creates a flow with its version 1. Conflict when the name is taken in the tenant.
    pub async fn create_flow(&self, f: &FlowRecord, author: Option<UserId>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO flows (id, tenant_id, name, current_version, created_at, updated_at)
             VALUES ($1, $2, $3, 1, $4, $4)",
        )
        .bind(f.id.to_string())
        .bind(f.tenant.to_string())
        .bind(&f.name)
        .bind(f.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, "a flow with this name"))?;
        sqlx::query(
            "INSERT INTO flow_versions (flow_id, tenant_id, version, definition, created_at, author_id)
             VALUES ($1, $2, 1, $3, $4, $5)",
        )
        .bind(f.id.to_string())
        .bind(f.tenant.to_string())
        .bind(f.definition.to_string())
        .bind(f.created_at)
        .bind(author.map(|a| a.to_string()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves a new version of a flow (and renames it when `name` is given); returns the flow
    /// as it is now, or `None` when there is no such flow.
    pub async fn save_flow_version(
        &self,
        tenant: TenantId,
        id: FlowId,
        name: Option<&str>,
        definition: &Value,
        author: Option<UserId>,
        now_ms: i64,
    ) -> Result<Option<FlowRecord>> {
        let mut tx = self.write_tx().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT current_version FROM flows WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let version = current + 1;
        sqlx::query(
            "INSERT INTO flow_versions (flow_id, tenant_id, version, definition, created_at, author_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .bind(version)
        .bind(definition.to_string())
        .bind(now_ms)
        .bind(author.map(|a| a.to_string()))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE flows SET current_version = $1, updated_at = $2, name = COALESCE($3, name)
             WHERE tenant_id = $4 AND id = $5",
        )
        .bind(version)
        .bind(now_ms)
        .bind(name)
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, "a flow with this name"))?;
        tx.commit().await?;
        self.flow(tenant, id).await
    }

    /// A flow with its current definition.
    pub async fn flow(&self, tenant: TenantId, id: FlowId) -> Result<Option<FlowRecord>> {
        let row = sqlx::query(concat!(
            flow_select!(),
            " WHERE f.tenant_id = $1 AND f.id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(flow_from_row).transpose()
    }

    /// The current version of the flow named `name` (what the voice DIDs and the chat widget
    /// load when an interaction starts).
    pub async fn flow_by_name(&self, tenant: TenantId, name: &str) -> Result<Option<FlowRecord>> {
        let row = sqlx::query(concat!(
            flow_select!(),
            " WHERE f.tenant_id = $1 AND f.name = $2"
        ))
        .bind(tenant.to_string())
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(flow_from_row).transpose()
    }

    /// Every flow of a tenant, by name, with current definitions.
    pub async fn flows(&self, tenant: TenantId) -> Result<Vec<FlowRecord>> {
        let rows = sqlx::query(concat!(
            flow_select!(),
            " WHERE f.tenant_id = $1 ORDER BY f.name"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(flow_from_row).collect()
    }

    /// Every version of a flow, oldest first.
    pub async fn flow_versions(&self, tenant: TenantId, id: FlowId) -> Result<Vec<FlowVersion>> {
        let rows = sqlx::query(
            "SELECT flow_id, version, definition, created_at, author_id FROM flow_versions
             WHERE tenant_id = $1 AND flow_id = $2 ORDER BY version",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// One version of a flow.
    pub async fn flow_version(
        &self,
        tenant: TenantId,
        id: FlowId,
        version: i64,
    ) -> Result<Option<FlowVersion>> {
        let row = sqlx::query(
            "SELECT flow_id, version, definition, created_at, author_id FROM flow_versions
             WHERE tenant_id = $1 AND flow_id = $2 AND version = $3",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Deletes a flow and its versions (running interactions keep the copy they hold).
    pub async fn delete_flow(&self, tenant: TenantId, id: FlowId) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE flow_settings SET chat_flow_id = NULL WHERE tenant_id = $1 AND chat_flow_id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM flow_versions WHERE tenant_id = $1 AND flow_id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM flows WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// The flow the tenant's chat widget runs, if one is set.
    pub async fn chat_flow(&self, tenant: TenantId) -> Result<Option<FlowId>> {
        let id: Option<Option<String>> =
            sqlx::query_scalar("SELECT chat_flow_id FROM flow_settings WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_optional(self.pool())
                .await?;
        parse_opt(T, id.flatten())
    }

    /// Sets (or clears) the tenant's chat flow. The caller checks the flow is the tenant's.
    pub async fn set_chat_flow(
        &self,
        tenant: TenantId,
        flow: Option<FlowId>,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO flow_settings (tenant_id, chat_flow_id, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET chat_flow_id = excluded.chat_flow_id,
             updated_at = excluded.updated_at",
        )
        .bind(tenant.to_string())
        .bind(flow.map(|f| f.to_string()))
        .bind(now_ms)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// Records a follow-up request and makes its address a contact point of the customer
    /// (unless the address already belongs to a customer of the tenant).
    pub async fn record_follow_up(&self, r: &FollowUpRequest) -> Result<()> {
        let mut tx = self.write_tx().await?;
        if let Some(c) = r.customer {
            sqlx::query(
                "INSERT INTO contact_points (tenant_id, customer_id, kind, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, kind, value) DO NOTHING",
            )
            .bind(r.tenant.to_string())
            .bind(c.to_string())
            .bind(&r.channel)
            .bind(r.address.expose())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO follow_up_requests (id, tenant_id, interaction_id, customer_id, channel, address, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(r.tenant.to_string())
        .bind(r.interaction.to_string())
        .bind(r.customer.map(|c| c.to_string()))
        .bind(&r.channel)
        .bind(r.address.expose())
        .bind(r.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Follow-up requests not yet answered, oldest first.
    pub async fn open_follow_ups(&self, tenant: TenantId) -> Result<Vec<FollowUpRequest>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, interaction_id, customer_id, channel, address, created_at
             FROM follow_up_requests WHERE tenant_id = $1 AND done_at IS NULL ORDER BY created_at",
        )
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FollowUpRequest {
                    id: r.try_get(0)?,
                    tenant: parse(T, &r.try_get::<String, _>(1)?)?,
                    interaction: parse(T, &r.try_get::<String, _>(2)?)?,
                    customer: parse_opt(T, r.try_get(3)?)?,
                    channel: r.try_get(4)?,
                    address: Sensitive::new(r.try_get(5)?),
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }
}
