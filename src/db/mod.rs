//! The database: one connection enum over SQLite and PostgreSQL, the pool, embedded migrations,
//! the schema, and one file of queries per table (the order tables' queries live with their
//! owner, `crate::orders`). Queries are synchronous diesel code run off the
//! async threads through [`Db::run`].

pub mod background;
pub mod in_use;
pub mod instances;
pub mod logistics;
mod migrations;
pub mod prices;
pub mod products;
pub mod schema;
pub mod stocks;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod text_enum;

use crate::config::{DatabaseConfig, DatabaseUrl};
use anyhow::Context as _;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use std::time::Duration;

pub use migrations::run_migrations;

/// A connection to whichever backend the config names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// How long a SQLite connection waits for a lock before giving up, unless `[database] wait_ms`
/// says otherwise.
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

/// The least time the pool waits for a free SQLite connection: those are only busy while a
/// statement runs, so the wait is for another statement, not for the server.
const SQLITE_POOL_WAIT: Duration = Duration::from_secs(30);

/// Opens connections for the pool, keeping the real error (diesel's multi-connection URL parser
/// hides it), and sets up every SQLite connection.
#[derive(Clone)]
pub struct ConnectionOpener {
    url: DatabaseUrl,
    busy_timeout_ms: u64,
}

impl ConnectionOpener {
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            busy_timeout_ms: SQLITE_BUSY_TIMEOUT_MS,
        }
    }

    /// How long a SQLite connection waits for a lock another connection holds.
    pub fn with_busy_timeout_ms(mut self, busy_timeout_ms: u64) -> Self {
        self.busy_timeout_ms = busy_timeout_ms;
        self
    }

    pub fn open(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url.expose())?;
                // Plan every execution for its own parameters. A sync starts on empty tables, and a
                // generic plan cached then (a sequential scan) stays slow after they fill up.
                conn.batch_execute("SET plan_cache_mode = force_custom_plan")
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Pg(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                // busy_timeout first: switching to WAL needs a lock, and a fresh file is contended
                // while the pool opens several connections at once.
                let pragmas = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout_ms
                );
                conn.batch_execute(&pragmas)
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionOpener {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        let _in_use = in_use::InUse::enter();
        self.open().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        let _in_use = in_use::InUse::enter();
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Closes the pool's connections under an [`in_use::InUse`] mark (closing one is a call into
/// libpq, wherever the pool drops it).
#[derive(Debug)]
struct CloseMarked;

impl r2d2::CustomizeConnection<DbConnection, r2d2::Error> for CloseMarked {
    fn on_release(&self, conn: DbConnection) {
        let _in_use = in_use::InUse::enter();
        drop(conn);
    }
}

pub type Pool = r2d2::Pool<ConnectionOpener>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionOpener>;

/// The shared handle to the database: a pool and the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    url: DatabaseUrl,
    background: background::BackgroundWrites,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the pool (and checks one connection works).
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Db> {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Self::connect_blocking(&config))
            .await
            .context("Failed to join the database connect task")?
    }

    /// Opens the pool from synchronous code.
    pub fn connect_blocking(config: &DatabaseConfig) -> anyhow::Result<Db> {
        let backend = match config.url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let opener = ConnectionOpener::new(config.url.clone()).with_busy_timeout_ms(config.wait_ms);
        // Open one connection by hand first so that a bad URL reports diesel's own message, with
        // the file or server it was about.
        opener
            .open()
            .map_err(|e| anyhow::anyhow!("Failed to open {}: {e}", describe_database(&config.url)))?;
        let pool = r2d2::Pool::builder()
            .max_size(config.max_connections)
            // No connections are opened in the background to refill the pool: a process that
            // exits while the pool's worker thread is in the middle of a TLS handshake with
            // PostgreSQL can crash in libpq's exit handlers.
            .min_idle(Some(0))
            // A pooled SQLite connection cannot go stale (no server, no socket): no `SELECT 1`
            // before every use, which was half the statements of an idle outbox poll.
            // PostgreSQL connections are still checked, as a server may have closed them.
            .test_on_check_out(backend == Backend::Postgres)
            // How long a statement waits for a connection: for PostgreSQL, the wait for a server
            // that does not answer; for SQLite, the wait for another statement to end.
            .connection_timeout(match backend {
                Backend::Postgres => Duration::from_millis(config.wait_ms.max(1)),
                Backend::Sqlite => Duration::from_millis(config.wait_ms).max(SQLITE_POOL_WAIT),
            })
            .event_handler(Box::new(in_use::PoolEvents))
            .connection_customizer(Box::new(CloseMarked))
            .build(opener)
            .with_context(|| format!("Failed to open the {backend} connection pool"))?;
        Ok(Db {
            pool,
            backend,
            url: config.url.clone(),
            background: background::BackgroundWrites::default(),
        })
    }

    /// The writes this process retries in the background until the database takes them (shared
    /// by every clone of this handle).
    pub fn background(&self) -> &background::BackgroundWrites {
        &self.background
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL this pool was opened with (for opening a dedicated connection, e.g. LISTEN).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A pooled connection, for synchronous code that is already off the async threads.
    pub fn get(&self) -> anyhow::Result<PooledConnection> {
        self.pool
            .get()
            .context("Failed to get a database connection from the pool")
    }

    /// Runs `f` with a pooled connection on tokio's blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConnection) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .context("Failed to get a database connection from the pool")?;
            f(&mut conn)
        })
        .await
        .context("Failed to join a database task")?
    }

    /// Applies pending migrations; returns the names of those applied.
    pub async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        self.run(run_migrations).await
    }
}

/// Runs one statement per backend: `db_run!(conn, |c| ...)` expands the body once for
/// `PgConnection` and once for `SqliteConnection`, for statements (upserts, `RETURNING` models)
/// that diesel cannot express through the connection enum.
#[macro_export]
macro_rules! db_run {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// The database a URL names, for messages: the SQLite file with its absolute path (and a missing
/// folder), or the PostgreSQL server and database without user or password.
fn describe_database(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Sqlite(path) if path == ":memory:" => "the in-memory SQLite database".to_owned(),
        DatabaseUrl::Sqlite(path) => {
            let path = std::path::Path::new(path);
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let mut text = format!("the SQLite database file {}", absolute.display());
            if let Some(folder) = absolute.parent().filter(|f| !f.as_os_str().is_empty()) {
                if !folder.is_dir() {
                    text.push_str(&format!(" (the folder {} does not exist)", folder.display()));
                }
            }
            text
        }
        DatabaseUrl::Postgres(url) => match url::Url::parse(url.expose()) {
            Ok(parsed) => format!(
                "the PostgreSQL database {}{}{}",
                parsed.host_str().unwrap_or("(default host)"),
                parsed.port().map(|p| format!(":{p}")).unwrap_or_default(),
                parsed.path()
            ),
            Err(_) => "the PostgreSQL database".to_owned(),
        },
    }
}

/// This process's name in `instance` columns: `host:pid`.
pub fn instance_name() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The current time as stored in the database: UTC, without a zone, to the microsecond (both
/// backends keep microseconds, so a value read back equals the value written).
pub fn now_utc() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}
