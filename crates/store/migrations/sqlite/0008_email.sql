-- Email: the stored copy of every mail (raw, exactly as received or as sent, and what was read
-- from it) and the ticket reference of each email interaction. Email addresses are channel
-- accounts with provider `email` (0007); replies and acknowledgements go through the outbox.

-- One row per email message (the `messages` row holds its plain text). `rfc_message_id` is the
-- Message-ID header without angle brackets; replies find their interaction by it.
CREATE TABLE email_messages (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    rfc_message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    parsed TEXT NOT NULL,
    raw BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX email_messages_rfc ON email_messages(tenant_id, rfc_message_id);
CREATE INDEX email_messages_interaction ON email_messages(tenant_id, interaction_id, created_at);

-- The ticket reference (`SB-XXXXXXXX`) of an email interaction, shown in subjects as
-- `[#SB-XXXXXXXX]`: the fallback for replies whose In-Reply-To and References are lost.
CREATE TABLE email_tickets (
    interaction_id TEXT PRIMARY KEY REFERENCES interactions(id),
    tenant_id TEXT NOT NULL,
    ticket_ref TEXT NOT NULL,
    UNIQUE (tenant_id, ticket_ref)
);
