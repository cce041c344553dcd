//! Call recordings: the metadata of the WAV files under the data directory (the bytes are the
//! server's). Every read and write names the tenant, except the two the server's own sweeps
//! make across tenants ([`Store::expired_recordings`], [`Store::unfinished_recordings`]), which
//! hand back each row with its tenant.
//!
//! A state change and its event are written in one transaction, so the log and the row agree.

use crate::ExecuteInTurn;
use crate::{Change, Event, NewEvent, Result, Store, apply_change, corrupt, parse, parse_opt};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_model::{
    InteractionId, PausedSpan, QueueId, RecordingId, RecordingState, TenantId,
};

/// One recording of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Id.
    pub id: RecordingId,
    /// Tenant.
    pub tenant: TenantId,
    /// The call.
    pub interaction: InteractionId,
    /// The queue whose retention applies (`None`: a call in no queue).
    pub queue: Option<QueueId>,
    /// The file, relative to the data directory.
    pub path: String,
    /// `wav` (16-bit PCM).
    pub format: String,
    /// Channels (2: caller left, agent right).
    pub channels: i64,
    /// Samples per second.
    pub sample_rate: i64,
    /// Where it is in its life.
    pub state: RecordingState,
    /// When it started (UTC ms).
    pub started_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Length of the audio.
    pub duration_ms: Option<i64>,
    /// Size of the file.
    pub size_bytes: Option<i64>,
    /// Stretches written as silence.
    pub paused_spans: Vec<PausedSpan>,
    /// Hex SHA-256 of the finished file.
    pub sha256: Option<String>,
    /// When the retention sweep deletes it; `None`: kept until deleted by hand.
    pub retain_until: Option<i64>,
    /// When it was deleted.
    pub deleted_at: Option<i64>,
    /// Who deleted it: `admin:<user id>`, `retention` or `missing`.
    pub deleted_by: Option<String>,
}

/// What [`Store::finish_recording`] sets.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRecording {
    /// When it ended.
    pub ended_at: i64,
    /// Length of the audio.
    pub duration_ms: i64,
    /// Size of the file.
    pub size_bytes: i64,
    /// Stretches written as silence.
    pub paused_spans: Vec<PausedSpan>,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// When the retention sweep deletes it.
    pub retain_until: Option<i64>,
}

const T: &str = "recordings";
const COLUMNS: &str = "id, tenant_id, interaction_id, queue_id, path, format, channels, sample_rate, state, started_at, ended_at, duration_ms, size_bytes, paused_spans, sha256, retain_until, deleted_at, deleted_by";
const DAY_MS: i64 = 86_400_000;

fn from_row(r: &SqliteRow) -> Result<Recording> {
    let spans: String = r.try_get(13)?;
    Ok(Recording {
        id: parse(T, &r.try_get::<String, _>(0)?)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        interaction: parse(T, &r.try_get::<String, _>(2)?)?,
        queue: parse_opt(T, r.try_get(3)?)?,
        path: r.try_get(4)?,
        format: r.try_get(5)?,
        channels: r.try_get(6)?,
        sample_rate: r.try_get(7)?,
        state: parse(T, &r.try_get::<String, _>(8)?)?,
        started_at: r.try_get(9)?,
        ended_at: r.try_get(10)?,
        duration_ms: r.try_get(11)?,
        size_bytes: r.try_get(12)?,
        paused_spans: serde_json::from_str(&spans).map_err(|e| corrupt(T, e))?,
        sha256: r.try_get(14)?,
        retain_until: r.try_get(15)?,
        deleted_at: r.try_get(16)?,
        deleted_by: r.try_get(17)?,
    })
}

fn spans_json(s: &[PausedSpan]) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "[]".to_owned())
}

async fn event_in(tx: &mut crate::WriteTx, e: NewEvent) -> Result<Option<Event>> {
    let mut out = Vec::new();
    apply_change(tx, &Change::Event(e), &mut out).await?;
    Ok(out.pop())
}

/// `ended_at + days`, or `None` (kept) for 0 days.
pub fn retention_deadline(ended_at: i64, retention_days: u32) -> Option<i64> {
    (retention_days > 0).then(|| ended_at.saturating_add(i64::from(retention_days) * DAY_MS))
}

impl Store {
    /// Stores a recording that starts (state `recording`) with its event.
    pub async fn begin_recording(&self, r: &Recording, event: NewEvent) -> Result<Option<Event>> {
        let mut tx = self.write_tx().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO recordings ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )))
        .bind(r.id.to_string())
        .bind(r.tenant.to_string())
        .bind(r.interaction.to_string())
        .bind(r.queue.map(|q| q.to_string()))
        .bind(&r.path)
        .bind(&r.format)
        .bind(r.channels)
        .bind(r.sample_rate)
        .bind(r.state.as_str())
        .bind(r.started_at)
        .bind(r.ended_at)
        .bind(r.duration_ms)
        .bind(r.size_bytes)
        .bind(spans_json(&r.paused_spans))
        .bind(&r.sha256)
        .bind(r.retain_until)
        .bind(r.deleted_at)
        .bind(&r.deleted_by)
        .execute(&mut *tx)
        .await?;
        let e = event_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// One recording of a tenant.
    pub async fn recording(&self, tenant: TenantId, id: RecordingId) -> Result<Option<Recording>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM recordings WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The recordings of an interaction, oldest first (deleted ones included).
    pub async fn interaction_recordings(
        &self,
        tenant: TenantId,
        interaction: InteractionId,
    ) -> Result<Vec<Recording>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM recordings WHERE tenant_id = $1 AND interaction_id = $2 ORDER BY started_at, id"
        )))
        .bind(tenant.to_string())
        .bind(interaction.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Marks a recording complete with its figures, and appends `event`; `None` (and no event)
    /// when it is not `recording` in this tenant (finished already, deleted, unknown).
    pub async fn finish_recording(
        &self,
        tenant: TenantId,
        id: RecordingId,
        f: &FinishedRecording,
        event: NewEvent,
    ) -> Result<Option<Event>> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(
            "UPDATE recordings SET state = 'complete', ended_at = $1, duration_ms = $2, size_bytes = $3,
                paused_spans = $4, sha256 = $5, retain_until = $6
             WHERE tenant_id = $7 AND id = $8 AND state = 'recording'",
        )
        .bind(f.ended_at)
        .bind(f.duration_ms)
        .bind(f.size_bytes)
        .bind(spans_json(&f.paused_spans))
        .bind(&f.sha256)
        .bind(f.retain_until)
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        let e = event_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// Marks a recording deleted (its file is the caller's to remove, before this), and appends
    /// `event`; `None` (and no event) when it is deleted already or unknown in this tenant.
    pub async fn delete_recording(
        &self,
        tenant: TenantId,
        id: RecordingId,
        at: i64,
        by: &str,
        event: NewEvent,
    ) -> Result<Option<Event>> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(
            "UPDATE recordings SET state = 'deleted', deleted_at = $1, deleted_by = $2, retain_until = NULL
             WHERE tenant_id = $3 AND id = $4 AND state <> 'deleted'",
        )
        .bind(at)
        .bind(by)
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        let e = event_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// Applies a queue's new retention to its complete recordings (`0` days: kept). Returns how
    /// many changed.
    pub async fn set_queue_retention(
        &self,
        tenant: TenantId,
        queue: QueueId,
        retention_days: u32,
    ) -> Result<u64> {
        let days = (retention_days > 0).then_some(i64::from(retention_days) * DAY_MS);
        let r = sqlx::query(
            "UPDATE recordings SET retain_until = CASE WHEN $1 IS NULL THEN NULL ELSE ended_at + $1 END
             WHERE tenant_id = $2 AND queue_id = $3 AND state = 'complete' AND ended_at IS NOT NULL",
        )
        .bind(days)
        .bind(tenant.to_string())
        .bind(queue.to_string())
        .execute_in_turn(self)
        .await?;
        Ok(r.rows_affected())
    }

    /// Complete recordings of every tenant whose retention ended by `now_ms`, oldest deadline
    /// first, at most `limit` (the retention sweep). `after` is the (deadline, id) of the last
    /// one a sweep saw: the page goes on past it, so recordings that could not be deleted do not
    /// hide the ones behind them.
    pub async fn expired_recordings(
        &self,
        now_ms: i64,
        after: Option<(i64, RecordingId)>,
        limit: i64,
    ) -> Result<Vec<Recording>> {
        let (after_deadline, after_id) = match after {
            Some((d, id)) => (d, id.to_string()),
            None => (i64::MIN, String::new()),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM recordings WHERE state = 'complete' AND retain_until IS NOT NULL
               AND retain_until <= $1 AND (retain_until > $2 OR (retain_until = $2 AND id > $3))
               ORDER BY retain_until, id LIMIT $4"
        )))
        .bind(now_ms)
        .bind(after_deadline)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Recordings of every tenant begun before `before_ms` and still marked `recording` (at
    /// start-up: calls that a stop or a crash cut off).
    pub async fn unfinished_recordings(&self, before_ms: i64) -> Result<Vec<Recording>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM recordings WHERE state = 'recording' AND started_at < $1 ORDER BY started_at, id"
        )))
        .bind(before_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }
}
