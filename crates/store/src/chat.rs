//! Conversations of digital channels: messages (append-only, numbered per interaction,
//! idempotent per sender's `client_id`), customers' chat sessions and read marks.

use crate::ExecuteInTurn;
use crate::{
    ChatSession, Event, Message, NewEvent, ReadMarks, Result, Sender, Store, parse, parse_opt,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_model::{InteractionId, Sensitive, TenantId};

pub(crate) fn message_from_row(r: &SqliteRow) -> Result<Message> {
    const T: &str = "messages";
    Ok(Message {
        id: r.try_get(0)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        interaction: parse(T, &r.try_get::<String, _>(2)?)?,
        seq: r.try_get(3)?,
        sender: parse::<Sender>(T, &r.try_get::<String, _>(4)?)?,
        author_id: r.try_get(5)?,
        author_name: r.try_get(6)?,
        body: Sensitive::new(r.try_get(7)?),
        internal: r.try_get::<i64, _>(8)? != 0,
        client_id: r.try_get(9)?,
        created_at: r.try_get(10)?,
        attachments: crate::json(T, &r.try_get::<String, _>(11)?)?,
    })
}

/// Inserts a message (assigning its `seq`) and its event (whose `data` gets the `seq`) within
/// a transaction.
pub(crate) async fn insert_message(
    tx: &mut crate::WriteTx,
    msg: Message,
    event: Option<NewEvent>,
) -> Result<(Message, Option<Event>)> {
    let seq: i64 = sqlx::query(
        "INSERT INTO messages (id, tenant_id, interaction_id, seq, sender, author_id, author_name, body, internal, client_id, created_at, attachments)
         VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE interaction_id = $3), $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING seq",
    )
    .bind(&msg.id)
    .bind(msg.tenant.to_string())
    .bind(msg.interaction.to_string())
    .bind(msg.sender.as_str())
    .bind(&msg.author_id)
    .bind(&msg.author_name)
    .bind(msg.body.expose())
    .bind(i64::from(msg.internal))
    .bind(&msg.client_id)
    .bind(msg.created_at)
    .bind(msg.attachments.to_string())
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    crate::attachments::link(tx, msg.tenant, msg.interaction, &msg.id, &msg.attachments).await?;
    let mut stored = msg;
    stored.seq = seq;
    let event = match event {
        Some(mut e) => {
            if let serde_json::Value::Object(m) = &mut e.data {
                m.insert("seq".into(), seq.into());
            }
            let mut out = Vec::new();
            crate::apply_change(tx, &crate::Change::Event(e), &mut out).await?;
            out.pop()
        }
        None => None,
    };
    Ok((stored, event))
}

const MESSAGE_COLUMNS: &str = "id, tenant_id, interaction_id, seq, sender, author_id, author_name, body, internal, client_id, created_at, attachments";

impl Store {
    /// Appends a message (its `seq` is assigned here) and, in the same transaction, an event
    /// whose `data` gets the message's `seq`. A message whose `client_id` is already stored for
    /// the interaction is not stored again: the stored one comes back with `false`.
    pub async fn append_message(
        &self,
        msg: &Message,
        event: Option<NewEvent>,
    ) -> Result<(Message, bool, Option<Event>)> {
        let mut out = self.append_messages(vec![(msg.clone(), event)]).await?;
        out.pop().ok_or_else(|| crate::StoreError::Corrupt {
            table: "messages",
            detail: "append returned nothing".into(),
        })
    }

    /// Appends several messages in one transaction (group commit: one fsync for all), each as
    /// [`Store::append_message`] does, in order.
    pub async fn append_messages(
        &self,
        items: Vec<(Message, Option<NewEvent>)>,
    ) -> Result<Vec<(Message, bool, Option<Event>)>> {
        let mut tx = self.write_tx().await?;
        let mut results = Vec::with_capacity(items.len());
        for (msg, event) in items {
            if let Some(cid) = &msg.client_id {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE interaction_id = $1 AND client_id = $2"
                )))
                .bind(msg.interaction.to_string())
                .bind(cid)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row {
                    results.push((message_from_row(&row)?, false, None));
                    continue;
                }
            }
            let (stored, event) = insert_message(&mut tx, msg, event).await?;
            results.push((stored, true, event));
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Messages of an interaction in order (internal notes only with `internal`).
    pub async fn messages(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        internal: bool,
    ) -> Result<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND interaction_id = $2 AND ($3 = 1 OR internal = 0) ORDER BY seq"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(interaction.to_string())
            .bind(i64::from(internal))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    /// Stores a new chat session.
    pub async fn create_chat_session(&self, s: &ChatSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_sessions (token_hash, tenant_id, customer_id, interaction_id, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.token_hash)
        .bind(s.tenant.to_string())
        .bind(s.customer.to_string())
        .bind(s.interaction.map(|i| i.to_string()))
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// A chat session of a tenant by its token hash.
    pub async fn chat_session(
        &self,
        tenant: TenantId,
        token_hash: &str,
    ) -> Result<Option<ChatSession>> {
        const T: &str = "chat_sessions";
        let row = sqlx::query(
            "SELECT token_hash, tenant_id, customer_id, interaction_id, created_at, last_seen_at
             FROM chat_sessions WHERE tenant_id = $1 AND token_hash = $2",
        )
        .bind(tenant.to_string())
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ChatSession {
            token_hash: r.try_get(0)?,
            tenant: parse(T, &r.try_get::<String, _>(1)?)?,
            customer: parse(T, &r.try_get::<String, _>(2)?)?,
            interaction: parse_opt(T, r.try_get(3)?)?,
            created_at: r.try_get(4)?,
            last_seen_at: r.try_get(5)?,
        }))
    }

    /// Points a chat session at its current conversation and marks it used.
    pub async fn touch_chat_session(
        &self,
        token_hash: &str,
        interaction: Option<InteractionId>,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE chat_sessions SET interaction_id = $1, last_seen_at = $2 WHERE token_hash = $3",
        )
        .bind(interaction.map(|i| i.to_string()))
        .bind(now_ms)
        .bind(token_hash)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// Raises a read mark (never lowers it); returns the marks after the change.
    pub async fn mark_read(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        by: Sender,
        seq: i64,
    ) -> Result<ReadMarks> {
        let column = match by {
            Sender::Customer => "customer_read_seq",
            _ => "agent_read_seq",
        };
        let sql = format!(
            "INSERT INTO conversations (interaction_id, tenant_id, {column}) VALUES ($1, $2, $3)
             ON CONFLICT (interaction_id) DO UPDATE SET {column} = MAX({column}, excluded.{column})"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(interaction.to_string())
            .bind(tenant.to_string())
            .bind(seq.max(0))
            .execute_in_turn(self)
            .await?;
        self.read_marks(tenant, interaction).await
    }

    /// The read marks of a conversation.
    pub async fn read_marks(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<ReadMarks> {
        let row = sqlx::query(
            "SELECT customer_read_seq, agent_read_seq FROM conversations WHERE tenant_id = $1 AND interaction_id = $2",
        )
        .bind(tenant.to_string())
        .bind(interaction.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => ReadMarks {
                customer: r.try_get(0)?,
                agent: r.try_get(1)?,
            },
            None => ReadMarks::default(),
        })
    }

    /// Records a customer's request for the transcript by email.
    pub async fn request_transcript(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
        email: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO conversations (interaction_id, tenant_id, transcript_email) VALUES ($1, $2, $3)
             ON CONFLICT (interaction_id) DO UPDATE SET transcript_email = excluded.transcript_email",
        )
        .bind(interaction.to_string())
        .bind(tenant.to_string())
        .bind(email)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// Chats that ended with a transcript request whose transcript has not gone out yet (no
    /// email thread to the requested address): (tenant, interaction, address).
    pub async fn pending_transcripts(&self) -> Result<Vec<(TenantId, InteractionId, String)>> {
        self.transcripts_due(None).await
    }

    /// The address the transcript of one ended chat is due to, if it is due.
    pub async fn transcript_due(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Option<String>> {
        let due = self.transcripts_due(Some((tenant, interaction))).await?;
        Ok(due.into_iter().next().map(|(_, _, a)| a))
    }

    async fn transcripts_due(
        &self,
        one: Option<(TenantId, InteractionId)>,
    ) -> Result<Vec<(TenantId, InteractionId, String)>> {
        const T: &str = "conversations";
        let rows = sqlx::query(
            "SELECT c.tenant_id, c.interaction_id, c.transcript_email FROM conversations c
             JOIN interactions i ON i.id = c.interaction_id
             WHERE c.transcript_email IS NOT NULL AND i.state = 'ended' AND i.channel = 'chat'
               AND ($1 IS NULL OR (c.tenant_id = $1 AND c.interaction_id = $2))
               AND NOT EXISTS (SELECT 1 FROM message_threads t WHERE t.interaction_id = c.interaction_id
                               AND t.channel = 'email' AND t.contact_value = c.transcript_email)
             ORDER BY i.ended_at LIMIT 1000",
        )
        .bind(one.map(|(t, _)| t.to_string()))
        .bind(one.map(|(_, i)| i.to_string()))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse(T, &r.try_get::<String, _>(0)?)?,
                    parse(T, &r.try_get::<String, _>(1)?)?,
                    r.try_get(2)?,
                ))
            })
            .collect()
    }

    /// The customer owning a contact point of a tenant, if any.
    pub async fn customer_by_contact(
        &self,
        tenant: TenantId,
        kind: &str,
        value: &str,
    ) -> Result<Option<switchboard_model::CustomerId>> {
        let row = sqlx::query("SELECT customer_id FROM contact_points WHERE tenant_id = $1 AND kind = $2 AND value = $3")
            .bind(tenant.to_string())
            .bind(kind)
            .bind(value)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| parse("contact_points", &r.try_get::<String, _>(0)?))
            .transpose()
    }
}
