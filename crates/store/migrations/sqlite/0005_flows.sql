-- Flows (IVR and chat bot): a flow has a name unique in its tenant and numbered versions; each
-- version's definition (JSON) is kept forever, so a running interaction keeps the version it
-- started with while a new one is saved. `current_version` is what new interactions run.
CREATE TABLE flows (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE flow_versions (
    flow_id TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    author_id TEXT,
    PRIMARY KEY (flow_id, version)
);

-- Which flow the tenant's chat widget runs (none: chats go straight to their queue).
CREATE TABLE flow_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    chat_flow_id TEXT REFERENCES flows(id) ON DELETE SET NULL,
    updated_at INTEGER NOT NULL
);

-- A customer who chose an email answer instead of waiting: the email channel answers these.
CREATE TABLE follow_up_requests (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    interaction_id TEXT NOT NULL REFERENCES interactions(id),
    customer_id TEXT REFERENCES customers(id),
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX follow_up_requests_open ON follow_up_requests(tenant_id, done_at);
