//! A fresh, migrated database per test, on the backend `HAIER_SYNC_TEST_BACKEND` names
//! (`sqlite`, the default, or `postgres`). PostgreSQL tests each get their own database on the
//! server `HAIER_SYNC_TEST_PG_URL` points at (default `postgres://postgres@127.0.0.1:5432/test`),
//! so they run in parallel. Used by the tests and benchmarks (the `test-support` feature); not
//! part of the daemon.

use super::{Backend, ConnectionOpener, Db};
use crate::config::{DatabaseConfig, DatabaseUrl, Secret};
use diesel::{Connection, RunQueryDsl};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The backend the test suite runs on.
pub fn test_backend() -> Backend {
    match std::env::var("HAIER_SYNC_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// The PostgreSQL server the test databases are made on: `HAIER_SYNC_TEST_PG_URL`, else
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn pg_admin_url() -> String {
    std::env::var("HAIER_SYNC_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// A migrated database that is removed when dropped.
pub struct TestDb {
    pub db: Db,
    pub config: DatabaseConfig,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { admin_url, name } = self {
            if let Ok(mut conn) = diesel::pg::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `<pid><sep><n><sep><random>`: a name no other test of this or another process takes.
fn unique_suffix(sep: char) -> String {
    format!(
        "{}{sep}{}{sep}{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// A folder of its own under the system's temporary directory, removed with what it holds when
/// dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty folder named `<prefix>-<pid>-<n>-<random>`.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", unique_suffix('-')));
        // `create_dir` fails on an existing folder: the name is this folder's alone.
        std::fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl TestDb {
    /// A fresh database on the suite's backend, migrated.
    pub async fn new() -> TestDb {
        tokio::task::spawn_blocking(Self::new_blocking)
            .await
            .expect("test database setup panicked")
    }

    /// The same, from synchronous code.
    pub fn new_blocking() -> TestDb {
        Self::new_blocking_on(test_backend())
    }

    /// A fresh database on `backend`, migrated (benchmarks that run on both backends).
    pub async fn new_on(backend: Backend) -> TestDb {
        tokio::task::spawn_blocking(move || Self::new_blocking_on(backend))
            .await
            .expect("test database setup panicked")
    }

    /// The same, from synchronous code.
    pub fn new_blocking_on(backend: Backend) -> TestDb {
        let (config, guard) = match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("haier-sync-test").expect("create a temporary directory");
                let path = dir.path().join("haier-sync-test.db");
                let url = DatabaseUrl::Sqlite(path.to_string_lossy().into_owned());
                (
                    DatabaseConfig {
                        wait_ms: DatabaseConfig::default_wait_ms(&url),
                        url,
                        max_connections: 4,
                    },
                    Guard::Sqlite(dir),
                )
            }
            Backend::Postgres => {
                let admin_url = pg_admin_url();
                let name = format!("haier_sync_t_{}", unique_suffix('_'));
                let mut admin = diesel::pg::PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is not reachable: {e}"));
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .expect("create a test database");
                let url = DatabaseUrl::Postgres(Secret::new(replace_database(&admin_url, &name)));
                (
                    DatabaseConfig {
                        wait_ms: DatabaseConfig::default_wait_ms(&url),
                        url,
                        max_connections: 6,
                    },
                    Guard::Postgres { admin_url, name },
                )
            }
        };
        let db = Db::connect_blocking(&config).expect("connect to the test database");
        let mut conn = ConnectionOpener::new(config.url.clone())
            .open()
            .expect("open a test connection");
        super::run_migrations(&mut conn).expect("migrate the test database");
        TestDb {
            db,
            config,
            _guard: guard,
        }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// The URL as `jobs.toml` would write it.
    pub fn url_text(&self) -> String {
        match &self.config.url {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
            DatabaseUrl::Postgres(url) => url.expose().to_owned(),
        }
    }
}

/// `postgres://user@host:port/old?x` → `postgres://user@host:port/new?x`.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{replace_database, TempDir};

    #[test]
    fn a_temporary_folder_is_new_and_removed_with_its_files_when_dropped() {
        let first = TempDir::new("haier-sync-unit").unwrap();
        let second = TempDir::new("haier-sync-unit").unwrap();
        assert_ne!(first.path(), second.path());
        let path = first.path().to_owned();
        std::fs::write(path.join("x.db"), "x").unwrap();
        drop(first);
        assert!(!path.exists());
        assert!(second.path().is_dir());
    }

    #[test]
    fn database_name_is_replaced_in_a_url() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/test?sslmode=disable", "y"),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "z"), "postgres://h/z");
    }
}
