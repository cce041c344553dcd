-- Web chat: messages of digital conversations, customers' chat sessions, read marks.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL REFERENCES interactions(id),
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    author_id TEXT,
    author_name TEXT,
    body TEXT NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0,
    client_id TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (interaction_id, seq),
    UNIQUE (interaction_id, client_id)
);
CREATE INDEX messages_tenant ON messages(tenant_id, interaction_id);

CREATE TABLE chat_sessions (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    interaction_id TEXT,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX chat_sessions_customer ON chat_sessions(customer_id);

CREATE TABLE conversations (
    interaction_id TEXT PRIMARY KEY REFERENCES interactions(id),
    tenant_id TEXT NOT NULL,
    customer_read_seq INTEGER NOT NULL DEFAULT 0,
    agent_read_seq INTEGER NOT NULL DEFAULT 0,
    transcript_email TEXT
);
