//! Files that came with messages: who they belong to. The bytes are the server's (content
//! addressed); a message links its attachments in the transaction that stores it.

use crate::ExecuteInTurn;
use crate::{Attachment, Result, Store, parse, parse_opt};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_model::{InteractionId, TenantId};

const COLUMNS: &str = "id, tenant_id, interaction_id, message_id, uploaded_by, name, content_type, size, sha256, created_at";

fn from_row(r: &SqliteRow) -> Result<Attachment> {
    const T: &str = "attachments";
    Ok(Attachment {
        id: r.try_get(0)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        interaction: parse_opt(T, r.try_get(2)?)?,
        message: r.try_get(3)?,
        uploaded_by: r.try_get(4)?,
        name: r.try_get(5)?,
        content_type: r.try_get(6)?,
        size: r.try_get(7)?,
        sha256: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

/// Links the attachments a message names to it and its interaction, within the message's
/// transaction. Only attachments of the same tenant that are not yet sent elsewhere are linked.
pub(crate) async fn link(
    tx: &mut crate::WriteTx,
    tenant: TenantId,
    interaction: InteractionId,
    message: &str,
    attachments: &serde_json::Value,
) -> Result<()> {
    let Some(list) = attachments.as_array() else {
        return Ok(());
    };
    for id in list.iter().filter_map(|a| a["id"].as_str()) {
        sqlx::query(
            "UPDATE attachments SET interaction_id = $1, message_id = $2
             WHERE id = $3 AND tenant_id = $4 AND (interaction_id IS NULL OR interaction_id = $1) AND message_id IS NULL",
        )
        .bind(interaction.to_string())
        .bind(message)
        .bind(id)
        .bind(tenant.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Records a stored file.
    pub async fn put_attachment(&self, a: &Attachment) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO attachments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&a.id)
        .bind(a.tenant.to_string())
        .bind(a.interaction.map(|i| i.to_string()))
        .bind(&a.message)
        .bind(&a.uploaded_by)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(a.created_at)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// One attachment of a tenant.
    pub async fn attachment(&self, tenant: TenantId, id: &str) -> Result<Option<Attachment>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM attachments WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }
}
