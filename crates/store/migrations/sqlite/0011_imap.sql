-- IMAP polling: how far each configured mailbox has been imported. A mailbox is named
-- `user@host:port/folder`. `last_uid` is the highest UID already stored as a message; it counts
-- only while the folder's UIDVALIDITY is `uid_validity` (RFC 3501 2.3.1.1). A restart goes on
-- after `last_uid`, so nothing is imported twice.
CREATE TABLE imap_mailboxes (
    mailbox TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
