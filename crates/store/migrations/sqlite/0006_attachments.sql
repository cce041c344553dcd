-- Files that came with messages: a customer's chat upload, a provider's media, an email's
-- attachment. The bytes live content-addressed under `<data>/media/` (by `sha256`); this row says
-- whose they are: one tenant, one interaction once sent (`NULL` while uploaded but not yet sent),
-- and who uploaded them (the chat session's customer or a user). Downloads are checked here.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    interaction_id TEXT REFERENCES interactions(id),
    message_id TEXT,
    uploaded_by TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX attachments_interaction ON attachments(tenant_id, interaction_id);

-- What a message carries (a JSON array of {id, name, content_type, size}).
ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
