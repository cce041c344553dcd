//! Switchboard's persistence: the append-only event log, the projections of current state
//! (interactions, agents' presence), configuration documents (queues, skills) and accounts.
//!
//! One [`Store`] enum holds the backend (DESIGN rule 8). SQLite is the default and the only
//! backend so far; PostgreSQL joins it for the cluster mode, so the SQL here keeps to a portable
//! subset (TEXT ids, INTEGER epoch-millisecond times, TEXT JSON, `$n` placeholders) and all
//! schema changes live in `migrations/`.
//!
//! Durability contract: [`Store::commit`] writes events and projection changes in one
//! transaction with `synchronous = FULL`, and returns only after the commit. Callers acknowledge
//! a customer's contact (a 2xx) only after `commit` returned.
//!
//! Not here: business rules (who may do what, which state follows which) and HTTP shapes. The
//! store stores what it is told, scoped by tenant in every query.

mod attachments;
mod chat;
mod email;
pub mod flows;
mod messaging;
mod migrate;
pub mod recordings;
mod records;
pub mod voice;

pub use email::*;
pub use messaging::*;
pub use records::*;

use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use switchboard_model::{
    AgentId, Channel, CustomerId, InteractionId, InteractionState, Presence, QueueId, Role,
    SkillId, TenantId, UserId,
};

// Column lists shared by several queries; macros so `concat!` keeps them static SQL.
macro_rules! user_select {
    () => {
        "SELECT id, tenant_id, username, password_hash, role, display_name, created_at FROM users"
    };
}
macro_rules! queue_select {
    () => {
        "SELECT id, tenant_id, name, config, version, created_at, updated_at FROM queues"
    };
}
macro_rules! agent_select {
    () => {
        "SELECT id, tenant_id, user_id, name, skills, capacity, presence, presence_reason, presence_since, created_at FROM agents"
    };
}
macro_rules! interaction_select {
    () => {
        "SELECT id, tenant_id, channel, state, queue_id, priority, subject, customer_id, attributes, agent_id, disposition, notes, created_at, waiting_since, offered_at, answered_at, ended_at, updated_at FROM interactions"
    };
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no (connection, constraint, I/O).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A row broke a uniqueness rule (duplicate name, username, contact point).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored value could not be read back (corrupt row or an unknown enum name).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The database URL is not one this build supports.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH")]
    UnsupportedUrl(String),
}

/// Store result.
pub type Result<T> = std::result::Result<T, StoreError>;

fn map_unique(e: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict(what.to_owned());
    }
    StoreError::Database(e)
}

pub(crate) fn corrupt(table: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

pub(crate) fn parse<T: FromStr>(table: &'static str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| corrupt(table, e))
}

pub(crate) fn parse_opt<T: FromStr>(table: &'static str, s: Option<String>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    s.map(|s| parse(table, &s)).transpose()
}

fn json(table: &'static str, s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| corrupt(table, e))
}

/// The persistence backend.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file (the default), and the turn its writers take.
    Sqlite(SqlitePool, WriteTurn),
}

/// The turn of this process's writers of one database, taken in arrival order before `BEGIN
/// IMMEDIATE`. Without it, a writer that finds the database locked waits in SQLite's busy
/// handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ... ms before it looks again however soon the
/// lock is free: a commit that takes a millisecond could keep a waiting writer asleep for tens.
pub type WriteTurn = std::sync::Arc<tokio::sync::Mutex<()>>;

/// A write transaction that holds its writers' turn until it commits or is dropped.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// A single-statement write (autocommit) in the writers' turn.
pub(crate) trait ExecuteInTurn {
    /// Executes the statement once this process's writers' turn comes.
    async fn execute_in_turn(
        self,
        store: &Store,
    ) -> std::result::Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>;
}

impl<'q> ExecuteInTurn for sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
    async fn execute_in_turn(
        self,
        store: &Store,
    ) -> std::result::Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
        let _turn = store.write_turn().await;
        self.execute(store.pool()).await
    }
}

impl WriteTx {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Store {
    /// Opens (creating if missing) the SQLite database at `path` and applies migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durable before acknowledged (DESIGN rule 3): fsync at every commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        migrate::apply(&pool).await?;
        Ok(Store::Sqlite(pool, WriteTurn::default()))
    }

    /// Opens a store from a URL: `sqlite://PATH` (or `sqlite:PATH`).
    pub async fn open_url(url: &str) -> Result<Store> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        Store::open_sqlite(Path::new(path)).await
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting up to the
    /// busy timeout): a deferred transaction that reads first and then writes is refused at once
    /// with "database is locked" when another writer committed in between.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx> {
        let turn = self.write_turn().await;
        let tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Waits for this process's writers' turn (held by a single-statement write, or by a
    /// [`WriteTx`] until it ends).
    pub(crate) async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        match self {
            Store::Sqlite(_, turn) => turn.clone().lock_owned().await,
        }
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        match self {
            Store::Sqlite(p, _) => p,
        }
    }

    /// Whether the database answers.
    pub async fn is_ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(self.pool()).await.is_ok()
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool().close().await;
    }

    // ----- tenants -----

    /// Creates a tenant.
    pub async fn create_tenant(&self, t: &Tenant) -> Result<()> {
        sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(t.id.to_string())
            .bind(&t.slug)
            .bind(&t.name)
            .bind(t.created_at)
            .execute_in_turn(self)
            .await
            .map_err(|e| map_unique(e, "tenant slug"))?;
        Ok(())
    }

    /// Every tenant.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows =
            sqlx::query("SELECT id, slug, name, created_at FROM tenants ORDER BY created_at")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// A tenant by its slug.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    // ----- users and sessions -----

    /// Creates a user.
    pub async fn create_user(&self, u: &User) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, username, password_hash, role, display_name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(u.id.to_string())
        .bind(u.tenant.to_string())
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(u.role.as_str())
        .bind(&u.display_name)
        .bind(u.created_at)
        .execute_in_turn(self)
        .await
        .map_err(|e| map_unique(e, "username"))?;
        Ok(())
    }

    /// A user by username (usernames are unique across tenants: login names no tenant).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!(user_select!(), " WHERE username = $1"))
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// A user of a tenant.
    pub async fn user(&self, tenant: TenantId, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(concat!(user_select!(), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user of a tenant.
    pub async fn users(&self, tenant: TenantId) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(
            user_select!(),
            " WHERE tenant_id = $1 ORDER BY username"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Replaces a user's role, display name and password hash.
    pub async fn update_user(&self, u: &User) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET role = $1, display_name = $2, password_hash = $3
             WHERE tenant_id = $4 AND id = $5",
        )
        .bind(u.role.as_str())
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(u.tenant.to_string())
        .bind(u.id.to_string())
        .execute_in_turn(self)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes a user and its sessions.
    pub async fn delete_user(&self, tenant: TenantId, id: UserId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Stores a session (its token only as a hash).
    pub async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, tenant_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(s.user.to_string())
        .bind(s.tenant.to_string())
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute_in_turn(self)
        .await?;
        Ok(())
    }

    /// A session that has not expired at `now_ms`, with its user and the user's agent profile
    /// (one query: every authenticated request asks this).
    pub async fn session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(Session, User, Option<AgentId>)>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_id, s.tenant_id, s.created_at, s.expires_at,
                    u.id, u.tenant_id, u.username, u.password_hash, u.role, u.display_name, u.created_at,
                    a.id
             FROM sessions s JOIN users u ON u.id = s.user_id
             LEFT JOIN agents a ON a.user_id = u.id AND a.tenant_id = u.tenant_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = Session {
            token_hash: row.try_get(0)?,
            user: parse("sessions", &row.try_get::<String, _>(1)?)?,
            tenant: parse("sessions", &row.try_get::<String, _>(2)?)?,
            created_at: row.try_get(3)?,
            expires_at: row.try_get(4)?,
        };
        let user = User {
            id: parse("users", &row.try_get::<String, _>(5)?)?,
            tenant: parse("users", &row.try_get::<String, _>(6)?)?,
            username: row.try_get(7)?,
            password_hash: row.try_get(8)?,
            role: parse("users", &row.try_get::<String, _>(9)?)?,
            display_name: row.try_get(10)?,
            created_at: row.try_get(11)?,
        };
        let agent = parse_opt("agents", row.try_get(12)?)?;
        Ok(Some((session, user, agent)))
    }

    /// Deletes one session (logout).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute_in_turn(self)
            .await?;
        Ok(())
    }

    /// Deletes sessions that expired before `now_ms`.
    pub async fn purge_sessions(&self, now_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms)
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected())
    }

    // ----- skills -----

    /// Creates or replaces a skill.
    pub async fn put_skill(&self, s: &Skill) -> Result<()> {
        sqlx::query(
            "INSERT INTO skills (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description",
        )
        .bind(s.id.to_string())
        .bind(s.tenant.to_string())
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.created_at)
        .execute_in_turn(self)
        .await
        .map_err(|e| map_unique(e, "skill name"))?;
        Ok(())
    }

    /// Every skill of a tenant.
    pub async fn skills(&self, tenant: TenantId) -> Result<Vec<Skill>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, description, created_at FROM skills WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(skill_from_row).collect()
    }

    /// One skill of a tenant.
    pub async fn skill(&self, tenant: TenantId, id: SkillId) -> Result<Option<Skill>> {
        let row = sqlx::query(
            "SELECT id, tenant_id, name, description, created_at FROM skills WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(skill_from_row).transpose()
    }

    /// Deletes a skill.
    pub async fn delete_skill(&self, tenant: TenantId, id: SkillId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM skills WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ----- queues -----

    /// Creates or replaces a queue (its version is bumped by the caller).
    pub async fn put_queue(&self, q: &QueueRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO queues (id, tenant_id, name, config, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, config = excluded.config,
                 version = excluded.version, updated_at = excluded.updated_at",
        )
        .bind(q.id.to_string())
        .bind(q.tenant.to_string())
        .bind(&q.name)
        .bind(q.config.to_string())
        .bind(q.version)
        .bind(q.created_at)
        .bind(q.updated_at)
        .execute_in_turn(self)
        .await
        .map_err(|e| map_unique(e, "queue name"))?;
        Ok(())
    }

    /// Every queue of a tenant.
    pub async fn queues(&self, tenant: TenantId) -> Result<Vec<QueueRecord>> {
        let rows = sqlx::query(concat!(
            queue_select!(),
            " WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(queue_from_row).collect()
    }

    /// One queue of a tenant.
    pub async fn queue(&self, tenant: TenantId, id: QueueId) -> Result<Option<QueueRecord>> {
        let row = sqlx::query(concat!(
            queue_select!(),
            " WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(queue_from_row).transpose()
    }

    /// Deletes a queue.
    pub async fn delete_queue(&self, tenant: TenantId, id: QueueId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM queues WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ----- agents -----

    /// Creates or replaces an agent profile (not its presence, see [`Change::AgentPresence`]).
    pub async fn put_agent(&self, a: &AgentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, user_id, name, skills, capacity, presence, presence_reason, presence_since, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, skills = excluded.skills,
                 capacity = excluded.capacity",
        )
        .bind(a.id.to_string())
        .bind(a.tenant.to_string())
        .bind(a.user.to_string())
        .bind(&a.name)
        .bind(a.skills.to_string())
        .bind(a.capacity.to_string())
        .bind(a.presence.as_str())
        .bind(&a.presence_reason)
        .bind(a.presence_since)
        .bind(a.created_at)
        .execute_in_turn(self)
        .await
        .map_err(|e| map_unique(e, "agent for this user"))?;
        Ok(())
    }

    /// Every agent of a tenant.
    pub async fn agents(&self, tenant: TenantId) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query(concat!(
            agent_select!(),
            " WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(agent_from_row).collect()
    }

    /// One agent of a tenant.
    pub async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<AgentRecord>> {
        let row = sqlx::query(concat!(
            agent_select!(),
            " WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// The agent profile of a user, if it has one.
    pub async fn agent_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<AgentRecord>> {
        let row = sqlx::query(concat!(
            agent_select!(),
            " WHERE tenant_id = $1 AND user_id = $2"
        ))
        .bind(tenant.to_string())
        .bind(user.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    /// Deletes an agent profile.
    pub async fn delete_agent(&self, tenant: TenantId, id: AgentId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM agents WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute_in_turn(self)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ----- customers -----

    /// Creates a customer with its contact points (all or nothing).
    pub async fn create_customer(&self, c: &Customer) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO customers (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(c.id.to_string())
        .bind(c.tenant.to_string())
        .bind(&c.name)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        for cp in &c.contact_points {
            sqlx::query(
                "INSERT INTO contact_points (tenant_id, customer_id, kind, value) VALUES ($1, $2, $3, $4)",
            )
            .bind(c.tenant.to_string())
            .bind(c.id.to_string())
            .bind(&cp.kind)
            .bind(cp.value.expose())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_unique(e, "a customer with this contact point"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One customer with its contact points.
    pub async fn customer(&self, tenant: TenantId, id: CustomerId) -> Result<Option<Customer>> {
        let row = sqlx::query(
            "SELECT id, tenant_id, name, created_at FROM customers WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut c = customer_from_row(&row)?;
        c.contact_points = self.contact_points(tenant, id).await?;
        Ok(Some(c))
    }

    async fn contact_points(&self, tenant: TenantId, id: CustomerId) -> Result<Vec<ContactPoint>> {
        let rows = sqlx::query(
            "SELECT kind, value FROM contact_points WHERE tenant_id = $1 AND customer_id = $2 ORDER BY kind, value",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ContactPoint {
                    kind: r.try_get(0)?,
                    value: switchboard_model::Sensitive::new(r.try_get(1)?),
                })
            })
            .collect()
    }

    /// Customers of a tenant, newest first, optionally those with a contact point equal to `q`.
    pub async fn customers(
        &self,
        tenant: TenantId,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Customer>> {
        let rows = match q {
            Some(q) => {
                sqlx::query(
                    "SELECT DISTINCT c.id, c.tenant_id, c.name, c.created_at FROM customers c
                     JOIN contact_points p ON p.customer_id = c.id
                     WHERE c.tenant_id = $1 AND p.value = $2 ORDER BY c.created_at DESC LIMIT $3",
                )
                .bind(tenant.to_string())
                .bind(q)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, tenant_id, name, created_at FROM customers WHERE tenant_id = $1
                     ORDER BY created_at DESC LIMIT $2",
                )
                .bind(tenant.to_string())
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut c = customer_from_row(row)?;
            c.contact_points = self.contact_points(tenant, c.id).await?;
            out.push(c);
        }
        Ok(out)
    }

    // ----- interactions and the event log -----

    /// Applies changes in one transaction, appending events in order, and returns the stored
    /// events with their sequence numbers. Returns only once the transaction is durable.
    pub async fn commit(&self, changes: &[Change]) -> Result<Vec<Event>> {
        let mut tx = self.write_tx().await?;
        let mut events = Vec::new();
        apply_changes(&mut tx, changes, &mut events).await?;
        tx.commit().await?;
        Ok(events)
    }

    /// One interaction of a tenant.
    pub async fn interaction(
        &self,
        tenant: TenantId,
        id: InteractionId,
    ) -> Result<Option<Interaction>> {
        let row = sqlx::query(concat!(
            interaction_select!(),
            " WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(interaction_from_row).transpose()
    }

    /// Interactions of a tenant matching `filter`, newest first.
    pub async fn interactions(
        &self,
        tenant: TenantId,
        filter: &InteractionFilter,
    ) -> Result<Vec<Interaction>> {
        // Filters are bound as parameters; an unset filter matches everything via `$n IS NULL`.
        let rows = sqlx::query(concat!(
            interaction_select!(),
            " WHERE tenant_id = $1
               AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR channel = $3)
               AND ($4 IS NULL OR queue_id = $4) AND ($5 IS NULL OR customer_id = $5)
               AND ($6 IS NULL OR agent_id = $6)
             ORDER BY created_at DESC, id DESC LIMIT $7"
        ))
        .bind(tenant.to_string())
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.channel.map(|c| c.as_str()))
        .bind(filter.queue.map(|q| q.to_string()))
        .bind(filter.customer.map(|c| c.to_string()))
        .bind(filter.agent.map(|a| a.to_string()))
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(interaction_from_row).collect()
    }

    /// Every interaction of a tenant that is not ended, oldest waiting first (for a restart).
    pub async fn open_interactions(&self, tenant: TenantId) -> Result<Vec<Interaction>> {
        let rows = sqlx::query(concat!(
            interaction_select!(),
            " WHERE tenant_id = $1 AND state <> 'ended'
             ORDER BY COALESCE(waiting_since, created_at), id"
        ))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(interaction_from_row).collect()
    }

    /// The events of one interaction in order.
    pub async fn interaction_events(
        &self,
        tenant: TenantId,
        id: InteractionId,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT seq, tenant_id, interaction_id, agent_id, kind, at, data FROM events
             WHERE tenant_id = $1 AND interaction_id = $2 ORDER BY seq",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Per queue, today's figures from `since_ms`: offered, answered within `threshold_ms` of
    /// waiting, answered, abandoned. Keyed by queue id.
    pub async fn queue_service(
        &self,
        tenant: TenantId,
        since_ms: i64,
        threshold_ms: &[(QueueId, i64)],
    ) -> Result<Vec<QueueService>> {
        let mut out = Vec::with_capacity(threshold_ms.len());
        for (queue, threshold) in threshold_ms {
            let row = sqlx::query(
                "SELECT
                    COUNT(*),
                    COALESCE(SUM(CASE WHEN answered_at IS NOT NULL AND answered_at - waiting_since <= $3 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN answered_at IS NULL AND state = 'ended' THEN 1 ELSE 0 END), 0)
                 FROM interactions WHERE tenant_id = $1 AND queue_id = $2 AND waiting_since >= $4
                   AND (answered_at IS NOT NULL OR state = 'ended')",
            )
            .bind(tenant.to_string())
            .bind(queue.to_string())
            .bind(threshold)
            .bind(since_ms)
            .fetch_one(self.pool())
            .await?;
            out.push(QueueService {
                queue: *queue,
                offered: row.try_get(0)?,
                answered_in_threshold: row.try_get(1)?,
                answered: row.try_get(2)?,
                abandoned: row.try_get(3)?,
            });
        }
        Ok(out)
    }
}

/// Applies one change inside a transaction (see [`apply_changes`]).
pub(crate) async fn apply_change(
    tx: &mut WriteTx,
    change: &Change,
    events: &mut Vec<Event>,
) -> Result<()> {
    apply_changes(tx, std::slice::from_ref(change), events).await
}

/// Rows per multi-row statement (SQLite allows 32,766 bound values; an interaction row binds
/// 18, an event row 6).
const ROWS_PER_STATEMENT: usize = 64;

/// Applies changes inside a transaction, appending the stored events (with their sequence
/// numbers) to `events` in the order of `changes`. An interaction changed several times in the
/// batch is written once, as it was last; events are appended in multi-row statements. So a
/// batch costs a few statements, not one per change: each statement is a round trip to
/// SQLite's worker thread.
pub(crate) async fn apply_changes(
    tx: &mut WriteTx,
    changes: &[Change],
    events: &mut Vec<Event>,
) -> Result<()> {
    let mut last = std::collections::HashMap::new();
    for (n, c) in changes.iter().enumerate() {
        if let Change::Interaction(i) = c {
            last.insert(i.id, n);
        }
    }
    let interactions: Vec<&Interaction> = changes
        .iter()
        .enumerate()
        .filter_map(|(n, c)| match c {
            Change::Interaction(i) if last.get(&i.id) == Some(&n) => Some(i),
            _ => None,
        })
        .collect();
    for chunk in interactions.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO interactions (id, tenant_id, channel, state, queue_id, priority, subject,
                customer_id, attributes, agent_id, disposition, notes, created_at, waiting_since,
                offered_at, answered_at, ended_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, i| {
            b.push_bind(i.id.to_string())
                .push_bind(i.tenant.to_string())
                .push_bind(i.channel.as_str())
                .push_bind(i.state.as_str())
                .push_bind(i.queue.map(|q| q.to_string()))
                .push_bind(i.priority)
                .push_bind(i.subject.clone())
                .push_bind(i.customer.map(|c| c.to_string()))
                .push_bind(i.attributes.to_string())
                .push_bind(i.agent.map(|a| a.to_string()))
                .push_bind(i.disposition.clone())
                .push_bind(i.notes.clone())
                .push_bind(i.created_at)
                .push_bind(i.waiting_since)
                .push_bind(i.offered_at)
                .push_bind(i.answered_at)
                .push_bind(i.ended_at)
                .push_bind(i.updated_at);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, queue_id = excluded.queue_id,
                priority = excluded.priority, subject = excluded.subject,
                customer_id = excluded.customer_id, attributes = excluded.attributes,
                agent_id = excluded.agent_id, disposition = excluded.disposition,
                notes = excluded.notes, waiting_since = excluded.waiting_since,
                offered_at = excluded.offered_at, answered_at = excluded.answered_at,
                ended_at = excluded.ended_at, updated_at = excluded.updated_at",
        );
        q.build().execute(&mut **tx).await?;
    }
    for c in changes {
        if let Change::AgentPresence {
            tenant,
            agent,
            presence,
            reason,
            since,
        } = c
        {
            sqlx::query(
                "UPDATE agents SET presence = $1, presence_reason = $2, presence_since = $3
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(presence.as_str())
            .bind(reason)
            .bind(since)
            .bind(tenant.to_string())
            .bind(agent.to_string())
            .execute(&mut **tx)
            .await?;
        }
    }
    let new_events: Vec<&NewEvent> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    for chunk in new_events.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (tenant_id, interaction_id, agent_id, kind, at, data) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.tenant.to_string())
                .push_bind(e.interaction.map(|i| i.to_string()))
                .push_bind(e.agent.map(|a| a.to_string()))
                .push_bind(e.kind.clone())
                .push_bind(e.at)
                .push_bind(e.data.to_string());
        });
        q.push(" RETURNING seq");
        let rows = q.build().fetch_all(&mut **tx).await?;
        // RETURNING gives the rows in no set order; rows are inserted in the order of VALUES,
        // and an AUTOINCREMENT key only grows, so the sorted keys are the events' in order.
        let mut seqs = rows
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if seqs.len() != chunk.len() {
            return Err(corrupt("events", "an insert returned fewer keys than rows"));
        }
        seqs.sort_unstable();
        for (e, seq) in chunk.iter().zip(seqs) {
            events.push(Event {
                seq,
                tenant: e.tenant,
                interaction: e.interaction,
                agent: e.agent,
                kind: e.kind.clone(),
                at: e.at,
                data: e.data.clone(),
            });
        }
    }
    Ok(())
}

fn tenant_from_row(r: &SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: parse("tenants", &r.try_get::<String, _>(0)?)?,
        slug: r.try_get(1)?,
        name: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

fn user_from_row(r: &SqliteRow) -> Result<User> {
    Ok(User {
        id: parse("users", &r.try_get::<String, _>(0)?)?,
        tenant: parse("users", &r.try_get::<String, _>(1)?)?,
        username: r.try_get(2)?,
        password_hash: r.try_get(3)?,
        role: parse::<Role>("users", &r.try_get::<String, _>(4)?)?,
        display_name: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}

fn skill_from_row(r: &SqliteRow) -> Result<Skill> {
    Ok(Skill {
        id: parse("skills", &r.try_get::<String, _>(0)?)?,
        tenant: parse("skills", &r.try_get::<String, _>(1)?)?,
        name: r.try_get(2)?,
        description: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn queue_from_row(r: &SqliteRow) -> Result<QueueRecord> {
    Ok(QueueRecord {
        id: parse("queues", &r.try_get::<String, _>(0)?)?,
        tenant: parse("queues", &r.try_get::<String, _>(1)?)?,
        name: r.try_get(2)?,
        config: json("queues", &r.try_get::<String, _>(3)?)?,
        version: r.try_get(4)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn agent_from_row(r: &SqliteRow) -> Result<AgentRecord> {
    Ok(AgentRecord {
        id: parse("agents", &r.try_get::<String, _>(0)?)?,
        tenant: parse("agents", &r.try_get::<String, _>(1)?)?,
        user: parse("agents", &r.try_get::<String, _>(2)?)?,
        name: r.try_get(3)?,
        skills: json("agents", &r.try_get::<String, _>(4)?)?,
        capacity: json("agents", &r.try_get::<String, _>(5)?)?,
        presence: parse::<Presence>("agents", &r.try_get::<String, _>(6)?)?,
        presence_reason: r.try_get(7)?,
        presence_since: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

fn customer_from_row(r: &SqliteRow) -> Result<Customer> {
    Ok(Customer {
        id: parse("customers", &r.try_get::<String, _>(0)?)?,
        tenant: parse("customers", &r.try_get::<String, _>(1)?)?,
        name: r.try_get(2)?,
        created_at: r.try_get(3)?,
        contact_points: Vec::new(),
    })
}

fn interaction_from_row(r: &SqliteRow) -> Result<Interaction> {
    const T: &str = "interactions";
    Ok(Interaction {
        id: parse(T, &r.try_get::<String, _>(0)?)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        channel: parse::<Channel>(T, &r.try_get::<String, _>(2)?)?,
        state: parse::<InteractionState>(T, &r.try_get::<String, _>(3)?)?,
        queue: parse_opt(T, r.try_get(4)?)?,
        priority: r.try_get(5)?,
        subject: r.try_get(6)?,
        customer: parse_opt(T, r.try_get(7)?)?,
        attributes: json(T, &r.try_get::<String, _>(8)?)?,
        agent: parse_opt(T, r.try_get(9)?)?,
        disposition: r.try_get(10)?,
        notes: r.try_get(11)?,
        created_at: r.try_get(12)?,
        waiting_since: r.try_get(13)?,
        offered_at: r.try_get(14)?,
        answered_at: r.try_get(15)?,
        ended_at: r.try_get(16)?,
        updated_at: r.try_get(17)?,
    })
}

fn event_from_row(r: &SqliteRow) -> Result<Event> {
    const T: &str = "events";
    Ok(Event {
        seq: r.try_get(0)?,
        tenant: parse(T, &r.try_get::<String, _>(1)?)?,
        interaction: parse_opt(T, r.try_get(2)?)?,
        agent: parse_opt(T, r.try_get(3)?)?,
        kind: r.try_get(4)?,
        at: r.try_get(5)?,
        data: json(T, &r.try_get::<String, _>(6)?)?,
    })
}
