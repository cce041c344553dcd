-- Messaging channels (SMS, WhatsApp, Telegram, Messenger, Instagram): provider accounts per
-- tenant, the reply route of each messaging conversation, delivery state of provider messages,
-- the durable outbox, per-contact windows and opt-outs, and customer merges.

-- A provider account. `settings` is JSON shown to admins; `secrets` is JSON that is never
-- returned by the API (tokens, app secrets, HMAC keys).
CREATE TABLE channel_accounts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    base_url TEXT NOT NULL,
    settings TEXT NOT NULL,
    secrets TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX channel_accounts_tenant ON channel_accounts(tenant_id);

-- Where the replies of a conversation go: channel, account and the customer's address there.
-- A conversation continued on another channel keeps its interaction and changes this row.
CREATE TABLE message_threads (
    interaction_id TEXT PRIMARY KEY REFERENCES interactions(id),
    tenant_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    account_id TEXT,
    contact_kind TEXT NOT NULL,
    contact_value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX message_threads_account ON message_threads(tenant_id, account_id);

-- Provider side of a message: its id at the provider (unique per account, so a webhook
-- delivered twice stores one message), the delivery state, and stored attachments.
CREATE TABLE message_deliveries (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    account_id TEXT,
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    provider_message_id TEXT,
    state TEXT NOT NULL,
    error TEXT,
    attachments TEXT NOT NULL DEFAULT '[]',
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX message_deliveries_provider ON message_deliveries(account_id, provider_message_id);
CREATE INDEX message_deliveries_interaction ON message_deliveries(tenant_id, interaction_id);

-- Messages waiting to be sent to a provider, retried with backoff until done or failed.
CREATE TABLE outbox (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id TEXT NOT NULL,
    account_id TEXT,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(state, next_at);

-- The customer's last message per account and address (24-hour windows).
CREATE TABLE contact_windows (
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    contact_kind TEXT NOT NULL,
    contact_value TEXT NOT NULL,
    last_inbound_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_kind, contact_value)
);

-- Contact points that opted out of messages (STOP); deleted when they opt in again.
CREATE TABLE contact_opt_outs (
    tenant_id TEXT NOT NULL,
    contact_kind TEXT NOT NULL,
    contact_value TEXT NOT NULL,
    keyword TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, contact_kind, contact_value)
);

-- Manual merges of two customers, with exactly what moved, so that an undo restores it.
CREATE TABLE customer_merges (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    other_name TEXT NOT NULL,
    other_created_at INTEGER NOT NULL,
    moved TEXT NOT NULL,
    by_user TEXT,
    created_at INTEGER NOT NULL,
    undone_at INTEGER
);
CREATE INDEX customer_merges_customer ON customer_merges(tenant_id, customer_id);
