//! Schema migrations: numbered SQL files embedded in the binary and applied in order, each in
//! its own transaction, recorded in `schema_migrations`. A database newer than this binary
//! (a migration number we do not know) is refused rather than guessed at.

use crate::{Result, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

/// The SQLite migrations, in order. Add new ones at the end; never edit a released one.
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, include_str!("../migrations/sqlite/0002_chat.sql")),
    (3, include_str!("../migrations/sqlite/0003_voice.sql")),
    (4, include_str!("../migrations/sqlite/0004_trunks.sql")),
    (5, include_str!("../migrations/sqlite/0005_flows.sql")),
    (6, include_str!("../migrations/sqlite/0006_attachments.sql")),
    (7, include_str!("../migrations/sqlite/0007_messaging.sql")),
    (8, include_str!("../migrations/sqlite/0008_email.sql")),
    (
        9,
        include_str!("../migrations/sqlite/0009_voice_outbound.sql"),
    ),
    (10, include_str!("../migrations/sqlite/0010_recordings.sql")),
    (11, include_str!("../migrations/sqlite/0011_imap.sql")),
];

pub(crate) async fn apply(pool: &SqlitePool) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    let known = SQLITE.last().map(|m| m.0).unwrap_or(0);
    if let Some(newest) = applied.last()
        && *newest > known
    {
        return Err(StoreError::Corrupt {
            table: "schema_migrations",
            detail: format!(
                "database schema version {newest} is newer than this binary knows ({known}); upgrade switchboard"
            ),
        });
    }
    for (version, sql) in SQLITE {
        if applied.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
