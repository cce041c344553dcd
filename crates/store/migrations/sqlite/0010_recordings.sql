-- Call recordings: one row per recording of an interaction (a call may have several: an
-- on-demand recording started, stopped with the call, and a transfer's next leg). The audio is a
-- stereo WAV under the data directory (`path` is relative to it:
-- `recordings/<tenant>/<yyyy>/<mm>/<id>.wav`); this row is its metadata. A deleted recording
-- keeps its row (who had it, how long it was, its checksum) with state 'deleted' and no file.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    interaction_id TEXT NOT NULL REFERENCES interactions(id),
    -- The queue whose policy (and retention) applies; NULL for a call in no queue.
    queue_id TEXT,
    path TEXT NOT NULL,
    format TEXT NOT NULL,
    channels INTEGER NOT NULL,
    sample_rate INTEGER NOT NULL,
    -- 'recording' | 'complete' | 'deleted'
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    duration_ms INTEGER,
    size_bytes INTEGER,
    -- JSON array of {from_ms, to_ms}: stretches written as silence (card payments)
    paused_spans TEXT NOT NULL DEFAULT '[]',
    sha256 TEXT,
    -- When the retention sweep deletes it (UTC ms); NULL: kept until deleted by hand.
    retain_until INTEGER,
    deleted_at INTEGER,
    -- 'admin:<user id>', 'retention' or 'missing' (the file was gone)
    deleted_by TEXT
);
CREATE INDEX recordings_interaction ON recordings(tenant_id, interaction_id, started_at);
CREATE INDEX recordings_retention ON recordings(state, retain_until);
CREATE INDEX recordings_queue ON recordings(tenant_id, queue_id);
