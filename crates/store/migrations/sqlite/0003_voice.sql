-- Voice: the SIP credentials of agents' phones. Only digest HA1s are stored, one per
-- algorithm (H(username:realm:password) with MD5 and SHA-256; NULL disables that algorithm
-- for the user), never the password. An HA1 is password-equivalent within its realm.
-- A realm belongs to one tenant (checked by the store on write); a username is unique within
-- its realm. Registrations (bindings) are not stored: they live in the registrar's memory and
-- phones refresh them within their expiry.
CREATE TABLE sip_credentials (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    agent_id TEXT NOT NULL UNIQUE REFERENCES agents(id) ON DELETE CASCADE,
    realm TEXT NOT NULL,
    username TEXT NOT NULL,
    ha1_md5 TEXT,
    ha1_sha256 TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (realm, username)
);
CREATE INDEX sip_credentials_tenant ON sip_credentials(tenant_id);
