-- Voice: SIP trunks (peers allowed to send calls, and the provider to send calls out through)
-- and the numbers (DIDs) whose calls start interactions. `allow` is a JSON array of
-- "address/prefix" networks. The outbound password is kept as given: the server must answer
-- the provider's digest challenges with it (it is never returned by the API).
CREATE TABLE voice_trunks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    allow TEXT NOT NULL,
    outbound_uri TEXT,
    outbound_username TEXT,
    outbound_password TEXT,
    caller_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE voice_numbers (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    number TEXT NOT NULL,
    queue_id TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    flow TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
