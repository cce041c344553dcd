-- Foundation schema. Portable subset (TEXT ids, INTEGER epoch-ms times, TEXT JSON) so the
-- PostgreSQL twin of this file stays a straight translation.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX users_tenant ON users(tenant_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE skills (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE queues (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL UNIQUE REFERENCES users(id),
    name TEXT NOT NULL,
    skills TEXT NOT NULL,
    capacity TEXT NOT NULL,
    presence TEXT NOT NULL,
    presence_reason TEXT,
    presence_since INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX agents_tenant ON agents(tenant_id);

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX customers_tenant ON customers(tenant_id);

CREATE TABLE contact_points (
    tenant_id TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);
CREATE INDEX contact_points_customer ON contact_points(customer_id);

-- Projection of the event log: the current state of each interaction.
CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    queue_id TEXT,
    priority INTEGER NOT NULL,
    subject TEXT,
    customer_id TEXT,
    attributes TEXT NOT NULL,
    agent_id TEXT,
    disposition TEXT,
    notes TEXT,
    created_at INTEGER NOT NULL,
    waiting_since INTEGER,
    offered_at INTEGER,
    answered_at INTEGER,
    ended_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX interactions_tenant_state ON interactions(tenant_id, state);
CREATE INDEX interactions_customer ON interactions(tenant_id, customer_id);

-- The append-only event log. `seq` orders everything.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    interaction_id TEXT,
    agent_id TEXT,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_interaction ON events(interaction_id, seq);
CREATE INDEX events_tenant ON events(tenant_id, seq);
