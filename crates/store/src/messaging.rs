//! Messaging channels: provider accounts, the reply route of each conversation, provider ids
//! and delivery states of messages, the durable outbox, 24-hour windows, opt-outs, and manual
//! customer merges (recorded with what moved, so an undo restores exactly that).

use crate::ExecuteInTurn;
use crate::chat::insert_message;
use crate::{
    Change, EmailRecord, Event, Message, NewEvent, Result, Store, StoreError, apply_change, json,
    map_unique, parse, parse_opt,
};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_model::{
    Channel, ChannelAccountId, CustomerId, InteractionId, MergeId, QueueId, Sensitive, TenantId,
};

/// A messaging provider account of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAccount {
    /// Id (also in the webhook URL).
    pub id: ChannelAccountId,
    /// Tenant.
    pub tenant: TenantId,
    /// `twilio`, `http_sms`, `whatsapp`, `telegram`, `messenger`, `instagram`.
    pub provider: String,
    /// Unique name within the tenant.
    pub name: String,
    /// Where new conversations wait.
    pub queue: QueueId,
    /// The provider's API base URL.
    pub base_url: String,
    /// Provider settings shown to admins (JSON object).
    pub settings: Value,
    /// Tokens and keys (JSON object), never shown.
    pub secrets: Sensitive<Value>,
    /// Disabled accounts refuse webhooks and sends.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Where the replies of a conversation go.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageThread {
    /// The interaction.
    pub interaction: InteractionId,
    /// Tenant.
    pub tenant: TenantId,
    /// The channel replies travel on.
    pub channel: Channel,
    /// The provider account (none for email, which another module sends).
    pub account: Option<ChannelAccountId>,
    /// `phone`, `email`, `telegram`, `messenger`, `instagram`.
    pub contact_kind: String,
    /// The customer's address on that channel.
    pub contact_value: Sensitive<String>,
    /// Last change.
    pub updated_at: i64,
}

/// The provider side of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The message.
    pub message_id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// The interaction.
    pub interaction: InteractionId,
    /// The account it came in or goes out through.
    pub account: Option<ChannelAccountId>,
    /// Channel.
    pub channel: Channel,
    /// `in` or `out`.
    pub direction: String,
    /// The provider's id of the message.
    pub provider_message_id: Option<String>,
    /// `received`, `queued`, `sent`, `delivered`, `read` or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Stored attachments (JSON array).
    pub attachments: Value,
    /// Last change.
    pub updated_at: i64,
}

/// A message waiting to be sent to a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// The message.
    pub message_id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// The account to send through (none: waits for another sender, e.g. email).
    pub account: Option<ChannelAccountId>,
    /// What to send (JSON; shape owned by the server).
    pub request: Sensitive<Value>,
    /// `pending`, `done`, `failed`, or `held` (email without a relay: not attempted).
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When to try next.
    pub next_at: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// A manual merge of two customers.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMerge {
    /// Id.
    pub id: MergeId,
    /// Tenant.
    pub tenant: TenantId,
    /// The customer that stayed.
    pub customer: CustomerId,
    /// The customer merged into it (deleted until an undo).
    pub other: CustomerId,
    /// The other's name.
    pub other_name: String,
    /// The other's creation time.
    pub other_created_at: i64,
    /// What moved: `{"contact_points": [[kind, value]], "interactions": [...], "chat_sessions": [...]}`.
    pub moved: Sensitive<Value>,
    /// Who merged.
    pub by_user: Option<String>,
    /// When.
    pub created_at: i64,
    /// When it was undone.
    pub undone_at: Option<i64>,
}

/// A delivery state only moves forward: queued < sent < delivered < read; failed ends it.
pub fn delivery_rank(state: &str) -> i32 {
    match state {
        "queued" => 1,
        "sent" => 2,
        "delivered" => 3,
        "read" => 4,
        "failed" => 5,
        _ => 0,
    }
}

pub(crate) const ACCOUNT_COLUMNS: &str = "id, tenant_id, provider, name, queue_id, base_url, settings, secrets, enabled, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "message_id, tenant_id, interaction_id, account_id, channel, direction, provider_message_id, state, error, attachments, updated_at";
const OUTBOX_COLUMNS: &str =
    "message_id, tenant_id, account_id, request, state, attempts, next_at, last_error, created_at";
const MERGE_COLUMNS: &str = "id, tenant_id, customer_id, other_id, other_name, other_created_at, moved, by_user, created_at, undone_at";

pub(crate) fn account_from_row(r: &SqliteRow) -> Result<ChannelAccount> {
    const T: &str = "channel_accounts";
    Ok(ChannelAccount {
        id: parse(T, &r.try_get::<String, _>(0)?)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        provider: r.try_get(2)?,
        name: r.try_get(3)?,
        queue: parse(T, &r.try_get::<String, _>(4)?)?,
        base_url: r.try_get(5)?,
        settings: json(T, &r.try_get::<String, _>(6)?)?,
        secrets: Sensitive::new(json(T, &r.try_get::<String, _>(7)?)?),
        enabled: r.try_get::<i64, _>(8)? != 0,
        created_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
    })
}

fn delivery_from_row(r: &SqliteRow) -> Result<Delivery> {
    const T: &str = "message_deliveries";
    Ok(Delivery {
        message_id: r.try_get(0)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        interaction: parse(T, &r.try_get::<String, _>(2)?)?,
        account: parse_opt(T, r.try_get(3)?)?,
        channel: parse(T, &r.try_get::<String, _>(4)?)?,
        direction: r.try_get(5)?,
        provider_message_id: r.try_get(6)?,
        state: r.try_get(7)?,
        error: r.try_get(8)?,
        attachments: json(T, &r.try_get::<String, _>(9)?)?,
        updated_at: r.try_get(10)?,
    })
}

fn outbox_from_row(r: &SqliteRow) -> Result<OutboxItem> {
    const T: &str = "outbox";
    Ok(OutboxItem {
        message_id: r.try_get(0)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        account: parse_opt(T, r.try_get(2)?)?,
        request: Sensitive::new(json(T, &r.try_get::<String, _>(3)?)?),
        state: r.try_get(4)?,
        attempts: r.try_get(5)?,
        next_at: r.try_get(6)?,
        last_error: r.try_get(7)?,
        created_at: r.try_get(8)?,
    })
}

fn merge_from_row(r: &SqliteRow) -> Result<CustomerMerge> {
    const T: &str = "customer_merges";
    Ok(CustomerMerge {
        id: parse(T, &r.try_get::<String, _>(0)?)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        customer: parse(T, &r.try_get::<String, _>(2)?)?,
        other: parse(T, &r.try_get::<String, _>(3)?)?,
        other_name: r.try_get(4)?,
        other_created_at: r.try_get(5)?,
        moved: Sensitive::new(json(T, &r.try_get::<String, _>(6)?)?),
        by_user: r.try_get(7)?,
        created_at: r.try_get(8)?,
        undone_at: r.try_get(9)?,
    })
}

fn thread_from_row(r: &SqliteRow) -> Result<MessageThread> {
    const T: &str = "message_threads";
    Ok(MessageThread {
        interaction: parse(T, &r.try_get::<String, _>(0)?)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        channel: parse(T, &r.try_get::<String, _>(2)?)?,
        account: parse_opt(T, r.try_get(3)?)?,
        contact_kind: r.try_get(4)?,
        contact_value: Sensitive::new(r.try_get(5)?),
        updated_at: r.try_get(6)?,
    })
}

async fn insert_delivery(tx: &mut crate::WriteTx, d: &Delivery) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_deliveries (message_id, tenant_id, interaction_id, account_id, channel, direction, provider_message_id, state, error, attachments, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&d.message_id)
    .bind(d.tenant.to_string())
    .bind(d.interaction.to_string())
    .bind(d.account.map(|a| a.to_string()))
    .bind(d.channel.as_str())
    .bind(&d.direction)
    .bind(&d.provider_message_id)
    .bind(&d.state)
    .bind(&d.error)
    .bind(d.attachments.to_string())
    .bind(d.updated_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_unique(e, "a message with this provider id"))?;
    Ok(())
}

async fn event_in(tx: &mut crate::WriteTx, e: NewEvent) -> Result<Option<Event>> {
    let mut out = Vec::new();
    apply_change(tx, &Change::Event(e), &mut out).await?;
    Ok(out.pop())
}

async fn upsert_thread(tx: &mut crate::WriteTx, t: &MessageThread) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_threads (interaction_id, tenant_id, channel, account_id, contact_kind, contact_value, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (interaction_id) DO UPDATE SET channel = excluded.channel, account_id = excluded.account_id,
            contact_kind = excluded.contact_kind, contact_value = excluded.contact_value, updated_at = excluded.updated_at",
    )
    .bind(t.interaction.to_string())
    .bind(t.tenant.to_string())
    .bind(t.channel.as_str())
    .bind(t.account.map(|a| a.to_string()))
    .bind(&t.contact_kind)
    .bind(t.contact_value.expose())
    .bind(t.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One provider message to store: the message with its event and provider side, and with it
/// (outbound) its outbox entry, (email) its stored mail, (a new conversation) its thread.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderAppend {
    /// The message.
    pub msg: Message,
    /// Its event.
    pub event: Option<NewEvent>,
    /// Its provider side.
    pub delivery: Delivery,
    /// Its outbox entry.
    pub outbox: Option<OutboxItem>,
    /// Its stored mail.
    pub email: Option<EmailRecord>,
    /// The conversation's reply route, written first.
    pub thread: Option<MessageThread>,
    /// The sender's contact point (kind, value) whose latest inbound time at the delivery's
    /// account moves to the message's time (service windows), in the same transaction.
    pub window: Option<(String, String)>,
}

async fn append_provider_in(
    tx: &mut crate::WriteTx,
    item: ProviderAppend,
) -> Result<Option<(Message, Option<Event>)>> {
    let ProviderAppend {
        msg,
        event,
        delivery,
        outbox,
        email,
        thread,
        window,
    } = item;
    if let (Some(account), Some(pid)) = (delivery.account, &delivery.provider_message_id) {
        let known = sqlx::query(
            "SELECT 1 FROM message_deliveries WHERE account_id = $1 AND provider_message_id = $2",
        )
        .bind(account.to_string())
        .bind(pid)
        .fetch_optional(&mut **tx)
        .await?;
        if known.is_some() {
            return Ok(None);
        }
    }
    if let Some(t) = &thread {
        upsert_thread(tx, t).await?;
    }
    let (stored, event) = insert_message(tx, msg, event).await?;
    insert_delivery(tx, &delivery).await?;
    if let (Some(account), Some((kind, value))) = (delivery.account, &window) {
        sqlx::query(
            "INSERT INTO contact_windows (tenant_id, account_id, contact_kind, contact_value, last_inbound_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, contact_kind, contact_value) DO UPDATE
                SET last_inbound_at = MAX(last_inbound_at, excluded.last_inbound_at)",
        )
        .bind(delivery.tenant.to_string())
        .bind(account.to_string())
        .bind(kind)
        .bind(value)
        .bind(stored.created_at)
        .execute(&mut **tx)
        .await?;
    }
    if let Some(e) = &email {
        crate::email::insert_email(tx, &stored, e).await?;
    }
    if let Some(o) = outbox {
        sqlx::query(
            "INSERT INTO outbox (message_id, tenant_id, account_id, request, state, attempts, next_at, last_error, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&o.message_id)
        .bind(o.tenant.to_string())
        .bind(o.account.map(|a| a.to_string()))
        .bind(o.request.expose().to_string())
        .bind(&o.state)
        .bind(o.attempts)
        .bind(o.next_at)
        .bind(&o.last_error)
        .bind(o.created_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Some((stored, event)))
}

impl Store {
    // ----- accounts -----

    /// Creates or replaces a channel account.
    pub async fn put_channel_account(&self, a: &ChannelAccount) -> Result<()> {
        sqlx::query(
            "INSERT INTO channel_accounts (id, tenant_id, provider, name, queue_id, base_url, settings, secrets, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, queue_id = excluded.queue_id,
                base_url = excluded.base_url, settings = excluded.settings, secrets = excluded.secrets,
                enabled = excluded.enabled, updated_at = excluded.updated_at",
        )
        .bind(a.id.to_string())
        .bind(a.tenant.to_string())
        .bind(&a.provider)
        .bind(&a.name)
        .bind(a.queue.to_string())
        .bind(&a.base_url)
        .bind(a.settings.to_string())
        .bind(a.secrets.expose().to_string())
        .bind(i64::from(a.enabled))
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute_in_turn(self)
        .await
        .map_err(|e| map_unique(e, "channel account name"))?;
        Ok(())
    }

    /// Every channel account of a tenant, by name.
    pub async fn channel_accounts(&self, tenant: TenantId) -> Result<Vec<ChannelAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 ORDER BY name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// One channel account of a tenant.
    pub async fn channel_account(
        &self,
        tenant: TenantId,
        id: ChannelAccountId,
    ) -> Result<Option<ChannelAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// A channel account by id alone: a provider's webhook names only the account, whose row
    /// then says the tenant.
    pub async fn channel_account_for_webhook(
        &self,
        id: ChannelAccountId,
    ) -> Result<Option<ChannelAccount>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Deletes a channel account.
    pub async fn delete_channel_account(
        &self,
        tenant: TenantId,
        id: ChannelAccountId,
    ) -> Result<bool> {
        let r = sqlx::query("DELETE FROM channel_accounts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ----- threads -----

    /// Sets where the replies of a conversation go (with an event saying so).
    pub async fn put_thread(
        &self,
        t: &MessageThread,
        event: Option<NewEvent>,
    ) -> Result<Option<Event>> {
        let mut tx = self.write_tx().await?;
        upsert_thread(&mut tx, t).await?;
        let e = match event {
            Some(e) => event_in(&mut tx, e).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(e)
    }

    /// The reply route of a conversation.
    pub async fn thread(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Option<MessageThread>> {
        let row = sqlx::query(
            "SELECT interaction_id, tenant_id, channel, account_id, contact_kind, contact_value, updated_at
             FROM message_threads WHERE tenant_id = $1 AND interaction_id = $2",
        )
        .bind(tenant.to_string())
        .bind(interaction.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(thread_from_row).transpose()
    }

    /// The newest interaction of a customer, not ended, whose replies go through `account`.
    pub async fn open_thread_interaction(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        account: ChannelAccountId,
    ) -> Result<Option<InteractionId>> {
        let row = sqlx::query(
            "SELECT i.id FROM interactions i JOIN message_threads t ON t.interaction_id = i.id
             WHERE i.tenant_id = $1 AND i.customer_id = $2 AND t.account_id = $3 AND i.state <> 'ended'
             ORDER BY i.created_at DESC LIMIT 1",
        )
        .bind(tenant.to_string())
        .bind(customer.to_string())
        .bind(account.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| parse("interactions", &r.try_get::<String, _>(0)?))
            .transpose()
    }

    // ----- provider messages and deliveries -----

    /// The delivery row of a provider's message id at an account.
    pub async fn delivery_by_provider_id(
        &self,
        account: ChannelAccountId,
        provider_message_id: &str,
    ) -> Result<Option<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM message_deliveries WHERE account_id = $1 AND provider_message_id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.to_string())
            .bind(provider_message_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// The delivery rows of a conversation.
    pub async fn deliveries(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM message_deliveries WHERE tenant_id = $1 AND interaction_id = $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(interaction.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Stores provider messages in one transaction (group commit), each as
    /// [`ProviderAppend`] says, in order. A message whose provider id is already stored for the
    /// account (or earlier in the batch) is not stored again: its answer is `None`.
    pub async fn append_provider_messages(
        &self,
        items: Vec<ProviderAppend>,
    ) -> Result<Vec<Option<(Message, Option<Event>)>>> {
        let mut tx = self.write_tx().await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(append_provider_in(&mut tx, item).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Moves a delivery state forward (a receipt, or the outcome of a send), recording the
    /// provider's id when given and an event built from the row. Returns the row and its event
    /// when the state changed; receipts that arrive late or twice change nothing.
    pub async fn advance_delivery(
        &self,
        by: DeliveryKey<'_>,
        state: &str,
        error: Option<&str>,
        now_ms: i64,
        event: impl FnOnce(&Delivery) -> NewEvent,
    ) -> Result<Option<(Delivery, Option<Event>)>> {
        let mut tx = self.write_tx().await?;
        let (sql, a, b) = match by {
            DeliveryKey::Provider(account, pid) => (
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM message_deliveries WHERE account_id = $1 AND provider_message_id = $2"
                ),
                account.to_string(),
                Some(pid.to_owned()),
            ),
            DeliveryKey::Message(id) => (
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM message_deliveries WHERE message_id = $1 AND $2 IS NULL"
                ),
                id.to_owned(),
                None,
            ),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(a)
            .bind(b)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut d = delivery_from_row(&row)?;
        if d.direction != "out"
            || delivery_rank(state) <= delivery_rank(&d.state)
            || d.state == "failed"
        {
            return Ok(None);
        }
        d.state = state.to_owned();
        d.error = error.map(str::to_owned);
        d.updated_at = now_ms;
        sqlx::query(
            "UPDATE message_deliveries SET state = $1, error = $2, updated_at = $3 WHERE message_id = $4",
        )
        .bind(&d.state)
        .bind(&d.error)
        .bind(now_ms)
        .bind(&d.message_id)
        .execute(&mut *tx)
        .await?;
        let e = event_in(&mut tx, event(&d)).await?;
        tx.commit().await?;
        Ok(Some((d, e)))
    }

    /// Outbound messages of a conversation sent through `account` up to `until_ms` that are
    /// not yet in `state` (for watermark receipts: "everything before this was read").
    pub async fn outbound_before(
        &self,
        account: ChannelAccountId,
        contact_value: &str,
        until_ms: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {} FROM message_deliveries d
             JOIN messages m ON m.id = d.message_id
             JOIN message_threads t ON t.interaction_id = d.interaction_id
             WHERE d.account_id = $1 AND d.direction = 'out' AND t.contact_value = $2
               AND m.created_at <= $3 AND d.state IN ('sent', 'delivered')",
            DELIVERY_COLUMNS
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.to_string())
            .bind(contact_value)
            .bind(until_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    // ----- outbox -----

    /// Outbox entries due at `now_ms` (oldest first), of accounts that send.
    pub async fn due_outbox(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' AND account_id IS NOT NULL AND next_at <= $1
             ORDER BY next_at, created_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Makes held entries (email kept for want of a relay) pending again, due at `now_ms`;
    /// returns how many.
    pub async fn release_held_outbox(&self, now_ms: i64) -> Result<u64> {
        let r =
            sqlx::query("UPDATE outbox SET state = 'pending', next_at = $1 WHERE state = 'held'")
                .bind(now_ms)
                .execute_in_turn(self)
                .await?;
        Ok(r.rows_affected())
    }

    /// When the next pending outbox entry is due.
    pub async fn next_outbox_at(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_at) FROM outbox WHERE state = 'pending' AND account_id IS NOT NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The outbox entry of a message.
    pub async fn outbox_item(&self, message_id: &str) -> Result<Option<OutboxItem>> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE message_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    /// Records a send attempt: `done` (with the provider's id), `failed`, or `pending` again at
    /// `next_at`. `counts`: false when nothing was attempted (held), so no attempt is used up.
    pub async fn outbox_attempted(
        &self,
        message_id: &str,
        state: &str,
        next_at: i64,
        error: Option<&str>,
        provider_message_id: Option<&str>,
        counts: bool,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + $5, next_at = $2, last_error = $3 WHERE message_id = $4",
        )
        .bind(state)
        .bind(next_at)
        .bind(error)
        .bind(message_id)
        .bind(i64::from(counts))
        .execute(&mut *tx)
        .await?;
        if let Some(pid) = provider_message_id {
            sqlx::query(
                "UPDATE message_deliveries SET provider_message_id = $1 WHERE message_id = $2",
            )
            .bind(pid)
            .bind(message_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, "a message with this provider id"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ----- windows and opt-outs -----

    /// The customer's latest message at an account.
    pub async fn last_inbound_at(
        &self,
        account: ChannelAccountId,
        kind: &str,
        value: &str,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT last_inbound_at FROM contact_windows WHERE account_id = $1 AND contact_kind = $2 AND contact_value = $3",
        )
        .bind(account.to_string())
        .bind(kind)
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get(0).map_err(StoreError::from))
            .transpose()
    }

    /// Records an opt-out (`Some(keyword)`) or an opt-in (`None`) of a contact point with its
    /// event. Returns the event when something changed.
    pub async fn set_opt_out(
        &self,
        tenant: TenantId,
        kind: &str,
        value: &str,
        keyword: Option<&str>,
        event: NewEvent,
    ) -> Result<Option<Event>> {
        let mut tx = self.write_tx().await?;
        let changed = match keyword {
            Some(k) => sqlx::query(
                "INSERT INTO contact_opt_outs (tenant_id, contact_kind, contact_value, keyword, at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.to_string())
            .bind(kind)
            .bind(value)
            .bind(k)
            .bind(event.at)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "DELETE FROM contact_opt_outs WHERE tenant_id = $1 AND contact_kind = $2 AND contact_value = $3",
            )
            .bind(tenant.to_string())
            .bind(kind)
            .bind(value)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if changed == 0 {
            return Ok(None);
        }
        let e = event_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// The opt-out of a contact point: the keyword and when.
    pub async fn opt_out(
        &self,
        tenant: TenantId,
        kind: &str,
        value: &str,
    ) -> Result<Option<(String, i64)>> {
        let row = sqlx::query(
            "SELECT keyword, at FROM contact_opt_outs WHERE tenant_id = $1 AND contact_kind = $2 AND contact_value = $3",
        )
        .bind(tenant.to_string())
        .bind(kind)
        .bind(value)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    // ----- customer merges -----

    /// Merges customer `other` into `keep`: its contact points, interactions and chat sessions
    /// move to `keep`, `other` is deleted, and the merge is recorded with exactly what moved
    /// (and its event). `None` when either customer is not in the tenant.
    pub async fn merge_customers(
        &self,
        merge: MergeId,
        tenant: TenantId,
        keep: CustomerId,
        other: CustomerId,
        by_user: Option<String>,
        event: impl FnOnce(&CustomerMerge) -> NewEvent,
    ) -> Result<Option<(CustomerMerge, Option<Event>)>> {
        let mut tx = self.write_tx().await?;
        let t = tenant.to_string();
        let (k, o) = (keep.to_string(), other.to_string());
        let keep_row = sqlx::query("SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $2")
            .bind(&t)
            .bind(&k)
            .fetch_optional(&mut *tx)
            .await?;
        let other_row =
            sqlx::query("SELECT name, created_at FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(&t)
                .bind(&o)
                .fetch_optional(&mut *tx)
                .await?;
        let (Some(_), Some(other_row)) = (keep_row, other_row) else {
            return Ok(None);
        };
        let points: Vec<Value> = sqlx::query(
            "SELECT kind, value FROM contact_points WHERE tenant_id = $1 AND customer_id = $2 ORDER BY kind, value",
        )
        .bind(&t)
        .bind(&o)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok(json!([r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?])))
        .collect::<Result<_>>()?;
        let interactions: Vec<String> = sqlx::query(
            "SELECT id FROM interactions WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id",
        )
        .bind(&t)
        .bind(&o)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
        let sessions: Vec<String> = sqlx::query(
            "SELECT token_hash FROM chat_sessions WHERE tenant_id = $1 AND customer_id = $2 ORDER BY token_hash",
        )
        .bind(&t)
        .bind(&o)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
        for sql in [
            "UPDATE contact_points SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
            "UPDATE interactions SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
            "UPDATE chat_sessions SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3",
        ] {
            sqlx::query(sql)
                .bind(&k)
                .bind(&t)
                .bind(&o)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM customers WHERE tenant_id = $1 AND id = $2")
            .bind(&t)
            .bind(&o)
            .execute(&mut *tx)
            .await?;
        let m = CustomerMerge {
            id: merge,
            tenant,
            customer: keep,
            other,
            other_name: other_row.try_get(0)?,
            other_created_at: other_row.try_get(1)?,
            moved: Sensitive::new(json!({
                "contact_points": points, "interactions": interactions, "chat_sessions": sessions,
            })),
            by_user,
            created_at: 0,
            undone_at: None,
        };
        let e = event(&m);
        let m = CustomerMerge {
            created_at: e.at,
            ..m
        };
        sqlx::query(
            "INSERT INTO customer_merges (id, tenant_id, customer_id, other_id, other_name, other_created_at, moved, by_user, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(m.id.to_string())
        .bind(&t)
        .bind(&k)
        .bind(&o)
        .bind(&m.other_name)
        .bind(m.other_created_at)
        .bind(m.moved.expose().to_string())
        .bind(&m.by_user)
        .bind(m.created_at)
        .execute(&mut *tx)
        .await?;
        let e = event_in(&mut tx, e).await?;
        tx.commit().await?;
        Ok(Some((m, e)))
    }

    /// The merges into a customer, newest first.
    pub async fn customer_merges(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Vec<CustomerMerge>> {
        let sql = format!(
            "SELECT {MERGE_COLUMNS} FROM customer_merges WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(customer.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(merge_from_row).collect()
    }

    /// Undoes a merge exactly: the other customer comes back with its id, name and creation
    /// time, and everything that moved moves back. Refused (`Ok(Err(reason))`) when the merge
    /// was undone already or something that moved has moved on since.
    pub async fn undo_merge(
        &self,
        tenant: TenantId,
        keep: CustomerId,
        merge: MergeId,
        now_ms: i64,
        event: impl FnOnce(&CustomerMerge) -> NewEvent,
    ) -> Result<Option<std::result::Result<(CustomerMerge, Option<Event>), &'static str>>> {
        let mut tx = self.write_tx().await?;
        let t = tenant.to_string();
        let sql = format!(
            "SELECT {MERGE_COLUMNS} FROM customer_merges WHERE tenant_id = $1 AND customer_id = $2 AND id = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&t)
            .bind(keep.to_string())
            .bind(merge.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut m = merge_from_row(&row)?;
        if m.undone_at.is_some() {
            return Ok(Some(Err("this merge was undone already")));
        }
        let (k, o) = (keep.to_string(), m.other.to_string());
        sqlx::query(
            "INSERT INTO customers (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&o)
        .bind(&t)
        .bind(&m.other_name)
        .bind(m.other_created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, "the merged customer"))?;
        let moved = m.moved.expose().clone();
        let list = |key: &str| -> Vec<Value> { moved[key].as_array().cloned().unwrap_or_default() };
        for p in list("contact_points") {
            let r = sqlx::query(
                "UPDATE contact_points SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3 AND kind = $4 AND value = $5",
            )
            .bind(&o)
            .bind(&t)
            .bind(&k)
            .bind(p[0].as_str().unwrap_or_default())
            .bind(p[1].as_str().unwrap_or_default())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(Some(Err("a contact point that moved has changed since")));
            }
        }
        for (key, sql) in [
            (
                "interactions",
                "UPDATE interactions SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3 AND id = $4",
            ),
            (
                "chat_sessions",
                "UPDATE chat_sessions SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3 AND token_hash = $4",
            ),
        ] {
            for v in list(key) {
                let r = sqlx::query(sql)
                    .bind(&o)
                    .bind(&t)
                    .bind(&k)
                    .bind(v.as_str().unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() != 1 {
                    return Ok(Some(Err("something that moved has moved again since")));
                }
            }
        }
        sqlx::query("UPDATE customer_merges SET undone_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(m.id.to_string())
            .execute(&mut *tx)
            .await?;
        m.undone_at = Some(now_ms);
        let e = event_in(&mut tx, event(&m)).await?;
        tx.commit().await?;
        Ok(Some(Ok((m, e))))
    }

    /// Per interaction of a customer: messages shown to the customer, and the time of the last.
    pub async fn conversation_counts(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Vec<(InteractionId, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT m.interaction_id, COUNT(*), MAX(m.created_at) FROM messages m
             JOIN interactions i ON i.id = m.interaction_id
             WHERE i.tenant_id = $1 AND i.customer_id = $2 AND m.internal = 0
             GROUP BY m.interaction_id",
        )
        .bind(tenant.to_string())
        .bind(customer.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse("messages", &r.try_get::<String, _>(0)?)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                ))
            })
            .collect()
    }

    /// The threads of a customer's interactions.
    pub async fn customer_threads(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> Result<Vec<MessageThread>> {
        let rows = sqlx::query(
            "SELECT t.interaction_id, t.tenant_id, t.channel, t.account_id, t.contact_kind, t.contact_value, t.updated_at
             FROM message_threads t JOIN interactions i ON i.id = t.interaction_id
             WHERE i.tenant_id = $1 AND i.customer_id = $2",
        )
        .bind(tenant.to_string())
        .bind(customer.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(thread_from_row).collect()
    }
}

/// How [`Store::advance_delivery`] finds its row.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryKey<'a> {
    /// By the provider's id at an account (receipts).
    Provider(ChannelAccountId, &'a str),
    /// By our message id (send outcomes).
    Message(&'a str),
}
