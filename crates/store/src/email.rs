//! Email: addresses (channel accounts with provider `email`), the stored copy of each mail (raw
//! and what was read from it), threading look-ups by Message-ID and by ticket reference.
//!
//! The mail row is written in the same transaction as its message
//! ([`Store::append_provider_messages`]), so a mail answered `250` is stored whole.

use crate::ExecuteInTurn;
use crate::messaging::{ACCOUNT_COLUMNS, account_from_row};
use crate::{ChannelAccount, Message, Result, Store, json, parse};
use serde_json::Value;
use sqlx::Row;
use switchboard_model::{InteractionId, Sensitive, TenantId};

/// The stored copy of one mail.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailRecord {
    /// `in` or `out`.
    pub direction: String,
    /// The Message-ID header, without angle brackets.
    pub rfc_message_id: String,
    /// The decoded subject.
    pub subject: Sensitive<String>,
    /// What was read from it (addresses, threading headers, authentication results, auto-reply
    /// kind, attachments), JSON.
    pub parsed: Sensitive<Value>,
    /// The mail exactly as received or sent.
    pub raw: Sensitive<Vec<u8>>,
    /// A new interaction's ticket reference, stored with its first mail.
    pub ticket_ref: Option<String>,
}

/// A stored mail with its message and interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmail {
    /// The message.
    pub message_id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// The interaction.
    pub interaction: InteractionId,
    /// The mail.
    pub record: EmailRecord,
    /// When it was stored.
    pub created_at: i64,
}

pub(crate) async fn insert_email(
    tx: &mut crate::WriteTx,
    m: &Message,
    e: &EmailRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO email_messages (message_id, tenant_id, interaction_id, direction, rfc_message_id, subject, parsed, raw, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&m.id)
    .bind(m.tenant.to_string())
    .bind(m.interaction.to_string())
    .bind(&e.direction)
    .bind(&e.rfc_message_id)
    .bind(e.subject.expose())
    .bind(e.parsed.expose().to_string())
    .bind(e.raw.expose().as_slice())
    .bind(m.created_at)
    .execute(&mut **tx)
    .await?;
    if let Some(r) = &e.ticket_ref {
        sqlx::query(
            "INSERT INTO email_tickets (interaction_id, tenant_id, ticket_ref) VALUES ($1, $2, $3)
             ON CONFLICT (interaction_id) DO NOTHING",
        )
        .bind(m.interaction.to_string())
        .bind(m.tenant.to_string())
        .bind(r)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

const EMAIL_COLUMNS: &str = "m.message_id, m.tenant_id, m.interaction_id, m.direction, m.rfc_message_id, m.subject, m.parsed, m.raw, m.created_at, t.ticket_ref";

fn email_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredEmail> {
    const T: &str = "email_messages";
    Ok(StoredEmail {
        message_id: r.try_get(0)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        interaction: parse(T, &r.try_get::<String, _>(2)?)?,
        record: EmailRecord {
            direction: r.try_get(3)?,
            rfc_message_id: r.try_get(4)?,
            subject: Sensitive::new(r.try_get(5)?),
            parsed: Sensitive::new(json(T, &r.try_get::<String, _>(6)?)?),
            raw: Sensitive::new(r.try_get(7)?),
            ticket_ref: r.try_get(9)?,
        },
        created_at: r.try_get(8)?,
    })
}

impl Store {
    /// The enabled email account (of any tenant) that receives mail for `address`
    /// (lower-case), if any: the SMTP server's recipient check.
    pub async fn email_account_by_address(&self, address: &str) -> Result<Option<ChannelAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts
             WHERE provider = 'email' AND enabled = 1 AND lower(json_extract(settings, '$.address')) = $1
             ORDER BY created_at LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(address)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// The newest interaction of a tenant with a mail whose Message-ID is one of `ids`.
    pub async fn email_interaction_by_ids(
        &self,
        tenant: TenantId,
        ids: &[String],
    ) -> Result<Option<InteractionId>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT interaction_id FROM email_messages WHERE tenant_id = $1 AND rfc_message_id IN ({})
             ORDER BY created_at DESC LIMIT 1",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.to_string());
        for id in ids {
            q = q.bind(id);
        }
        let row = q.fetch_optional(self.pool()).await?;
        row.map(|r| parse("email_messages", &r.try_get::<String, _>(0)?))
            .transpose()
    }

    /// The interaction of a ticket reference.
    pub async fn email_ticket_interaction(
        &self,
        tenant: TenantId,
        ticket_ref: &str,
    ) -> Result<Option<InteractionId>> {
        let row = sqlx::query(
            "SELECT interaction_id FROM email_tickets WHERE tenant_id = $1 AND ticket_ref = $2",
        )
        .bind(tenant.to_string())
        .bind(ticket_ref)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| parse("email_tickets", &r.try_get::<String, _>(0)?))
            .transpose()
    }

    /// The ticket reference of an interaction.
    pub async fn email_ticket(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT ticket_ref FROM email_tickets WHERE tenant_id = $1 AND interaction_id = $2",
        )
        .bind(tenant.to_string())
        .bind(interaction.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The stored mails of an interaction, oldest first.
    pub async fn emails(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Vec<StoredEmail>> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM email_messages m LEFT JOIN email_tickets t ON t.interaction_id = m.interaction_id
             WHERE m.tenant_id = $1 AND m.interaction_id = $2 ORDER BY m.created_at, m.rowid"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(interaction.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(email_from_row).collect()
    }

    /// The stored mail of a message.
    pub async fn email(&self, message_id: &str) -> Result<Option<StoredEmail>> {
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} FROM email_messages m LEFT JOIN email_tickets t ON t.interaction_id = m.interaction_id
             WHERE m.message_id = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(email_from_row).transpose()
    }

    /// How far an IMAP mailbox was imported: `(uid_validity, last_uid)`.
    pub async fn imap_state(&self, mailbox: &str) -> Result<Option<(i64, i64)>> {
        let row =
            sqlx::query("SELECT uid_validity, last_uid FROM imap_mailboxes WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// Records that an IMAP mailbox was imported up to `last_uid` under `uid_validity`.
    pub async fn set_imap_state(
        &self,
        tenant: TenantId,
        mailbox: &str,
        uid_validity: i64,
        last_uid: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO imap_mailboxes (mailbox, tenant_id, uid_validity, last_uid, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (mailbox) DO UPDATE SET tenant_id = $2, uid_validity = $3,
               last_uid = $4, updated_at = $5",
        )
        .bind(mailbox)
        .bind(tenant.to_string())
        .bind(uid_validity)
        .bind(last_uid)
        .bind(now)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// Open email interactions whose service-level clock (`attributes.email_sla.due_at_ms`) ran
    /// out at `now` without an answer by an agent before it, and not yet reported
    /// (`email.sla_breached`): `(tenant, interaction, due_at_ms)`, at most `limit`.
    pub async fn email_sla_breaches(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(TenantId, InteractionId, i64)>> {
        let rows = sqlx::query(
            "SELECT i.tenant_id, i.id, CAST(json_extract(i.attributes, '$.email_sla.due_at_ms') AS INTEGER) AS due
             FROM interactions i
             WHERE i.channel = 'email' AND i.ended_at IS NULL
               AND CAST(json_extract(i.attributes, '$.email_sla.due_at_ms') AS INTEGER) <= $1
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.interaction_id = i.id AND e.kind = 'email.sla_breached')
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.interaction_id = i.id AND m.sender = 'agent'
                               AND m.internal = 0
                               AND m.created_at <= CAST(json_extract(i.attributes, '$.email_sla.due_at_ms') AS INTEGER))
             ORDER BY due LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse("interactions", &r.try_get::<String, _>(0)?)?,
                    parse("interactions", &r.try_get::<String, _>(1)?)?,
                    r.try_get(2)?,
                ))
            })
            .collect()
    }
}
