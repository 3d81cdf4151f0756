//! Throwaway databases for Berth's tests: every test gets a database of its own, so tests run
//! in parallel and never see each other's rows.
//!
//! - [`TestDatabase::sqlite`]: a fresh file in a fresh temp dir, deleted on drop.
//! - [`TestDatabase::postgres`]: a fresh, uniquely named database, dropped on drop. It lives
//!   on the server named by `BERTH_TEST_DATABASE_URL` (an admin URL such as
//!   `postgres://postgres@127.0.0.1:5432/postgres`) when that is set; otherwise on a
//!   throwaway cluster that the first PostgreSQL test of the process starts with the
//!   `initdb`/`pg_ctl` binaries and that is stopped and deleted when the process exits (see
//!   the `cluster` module for how).
//!
//! ```no_run
//! # async fn example() {
//! let db = testdb::TestDatabase::postgres().await;
//! // store::Store::connect(db.url()).await ...
//! # }
//! ```

mod cluster;

use sqlx::{Connection, Executor, PgConnection};
use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime},
};

/// The environment variable naming an existing PostgreSQL server to create databases on.
pub const SERVER_URL_VAR: &str = "BERTH_TEST_DATABASE_URL";

/// One test's database; gone when this value is dropped.
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

enum Kind {
    /// The directory is deleted, with the database file and its WAL files, when dropped.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        server_url: String,
        name: String,
    },
}

impl TestDatabase {
    /// A fresh SQLite file (not yet created: `Store::connect` creates it) in a fresh temp dir.
    pub async fn sqlite() -> TestDatabase {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-sqlite-")
            .tempdir()
            .unwrap_or_else(|e| panic!("testdb: cannot create a temp dir for SQLite: {e}"));
        let url = format!("sqlite://{}", dir.path().join("berth.db").display());
        TestDatabase {
            url,
            kind: Kind::Sqlite { _dir: dir },
        }
    }

    /// A fresh, empty PostgreSQL database (see the crate docs for which server holds it).
    pub async fn postgres() -> TestDatabase {
        let server_url = server_url().await;
        let name = unique_database_name();
        let mut admin = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "testdb: cannot connect to the PostgreSQL server at {}: {e}",
                    redacted(&server_url)
                )
            });
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "testdb: cannot create database {name} on {}: {e}",
                    redacted(&server_url)
                )
            });
        let _ = admin.close().await;
        TestDatabase {
            url: with_database(&server_url, &name),
            kind: Kind::Postgres { server_url, name },
        }
    }

    /// The URL to give `Store::connect`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `"sqlite"` or `"postgres"`: handy in test names and failure messages.
    pub fn backend_name(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
        }
    }
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &self.backend_name())
            .field("url", &redacted(&self.url))
            .finish()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { server_url, name } = &self.kind {
            drop_database(server_url.clone(), name.clone());
        }
    }
}

/// The admin URL of the server that holds the test databases.
async fn server_url() -> String {
    if let Some(url) = std::env::var(SERVER_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return url;
    }
    // Starting the cluster blocks for a few seconds (initdb, pg_ctl); it runs on the blocking
    // pool so that it does not stall the caller's runtime.
    let started = tokio::task::spawn_blocking(cluster::server_url)
        .await
        .expect("starting the throwaway PostgreSQL cluster panicked");
    match started {
        Ok(url) => url.to_owned(),
        Err(why) => panic!(
            "testdb: no PostgreSQL server for the tests. Set {SERVER_URL_VAR} (e.g. \
             postgres://postgres@127.0.0.1:5432/postgres) or install PostgreSQL's server \
             binaries so that a throwaway cluster can be started. Starting one failed: {why}"
        ),
    }
}

/// Drops the database, ending any connections still open to it (a test's pool may not have
/// closed). Best effort: a database left behind is harmless, a panic in `drop` is not.
fn drop_database(server_url: String, name: String) {
    // `drop` cannot await, and it usually runs inside the test's runtime, where blocking on a
    // future panics; so the work is done on a short-lived thread with its own runtime.
    let worker = std::thread::Builder::new()
        .name(format!("drop {name}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), async {
                    let mut admin = PgConnection::connect(&server_url).await.ok()?;
                    // WITH (FORCE) needs PostgreSQL 13; older servers get the plain form,
                    // which works once the test's connections are gone.
                    let forced = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    if admin.execute(forced.as_str()).await.is_err() {
                        let plain = format!(r#"DROP DATABASE IF EXISTS "{name}""#);
                        admin.execute(plain.as_str()).await.ok()?;
                    }
                    admin.close().await.ok()
                })
                .await
                .ok()
                .flatten()
            })
        });
    if let Ok(worker) = worker {
        let _ = worker.join();
    }
}

/// `berth_test_<pid>_<random>`: unique across the tests of a process and across processes
/// sharing one server; the pid tells whose database a leftover one was.
fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS's randomness; no extra dependency needed.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("berth_test_{}_{:016x}", std::process::id(), hasher.finish())
}

/// `server_url` with its database replaced by `name`, keeping user, host, port and
/// parameters (a `dbname` parameter would override the path, so it is dropped).
fn with_database(server_url: &str, name: &str) -> String {
    let (scheme, rest) = server_url
        .split_once("://")
        .unwrap_or_else(|| panic!("testdb: {} is not a postgres:// URL", redacted(server_url)));
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let authority = location.split('/').next().unwrap_or_default();
    let mut url = format!("{scheme}://{authority}/{name}");
    let kept: Vec<&str> = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter(|pair| !pair.is_empty() && !pair.starts_with("dbname="))
        .collect();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    url
}

/// The URL with any password masked, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Row, SqliteConnection};

    #[test]
    fn the_database_name_replaces_the_path_and_nothing_else() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@db/admin?sslmode=disable&dbname=x", "t1"),
            "postgres://u:p@db/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://localhost:5433", "t1"),
            "postgresql://localhost:5433/t1"
        );
        assert_eq!(
            with_database("postgres:///postgres?host=/run/postgresql", "t1"),
            "postgres:///t1?host=/run/postgresql"
        );
    }

    #[test]
    fn messages_never_show_a_password() {
        assert_eq!(
            redacted("postgres://admin:s3cret@db:5432/postgres"),
            "postgres://admin:***@db:5432/postgres"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1/postgres"),
            "postgres://postgres@127.0.0.1/postgres"
        );
    }

    #[test]
    fn database_names_are_unique() {
        let names: std::collections::HashSet<String> =
            (0..1000).map(|_| unique_database_name()).collect();
        assert_eq!(names.len(), 1000);
        assert!(
            names.iter().all(|name| name.len() <= 63),
            "PostgreSQL's limit"
        );
    }

    #[tokio::test]
    async fn sqlite_databases_are_separate_and_deleted_on_drop() {
        let first = TestDatabase::sqlite().await;
        let second = TestDatabase::sqlite().await;
        assert_eq!(first.backend_name(), "sqlite");
        assert_ne!(first.url(), second.url());

        let path = std::path::PathBuf::from(first.url().trim_start_matches("sqlite://"));
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        connection.execute("CREATE TABLE t (x)").await.unwrap();
        connection.close().await.unwrap();
        assert!(path.exists());

        drop(first);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
    }

    #[tokio::test]
    async fn postgres_databases_are_separate_and_dropped_on_drop() {
        let first = TestDatabase::postgres().await;
        let second = TestDatabase::postgres().await;
        assert_eq!(first.backend_name(), "postgres");
        assert_ne!(first.url(), second.url());

        let mut in_first = PgConnection::connect(first.url()).await.unwrap();
        in_first.execute("CREATE TABLE t (x int)").await.unwrap();
        let mut in_second = PgConnection::connect(second.url()).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 't'",
        )
        .fetch_one(&mut in_second)
        .await
        .unwrap();
        assert_eq!(tables, 0, "a table in one database shows in another");

        // The connection is deliberately left open: drop must end it.
        let Kind::Postgres { server_url, name } = &first.kind else {
            unreachable!()
        };
        let (server_url, name) = (server_url.clone(), name.clone());
        drop(first);
        let mut admin = PgConnection::connect(&server_url).await.unwrap();
        let left = sqlx::query("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap()
            .get::<i64, _>(0);
        assert_eq!(left, 0, "{name} is still there");
        drop(in_first);
    }
}
