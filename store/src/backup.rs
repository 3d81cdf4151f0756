//! Backups of the SQLite database while Berth serves. PostgreSQL has its own tools
//! (`pg_dump`, `pg_restore`), which the CLI points to.

use crate::{db::Pool, Store, StoreError};
use std::path::Path;

impl Store {
    /// Writes a consistent copy of the SQLite database to `path`, which must not exist yet,
    /// while others keep reading and writing: `VACUUM INTO` reads the whole database in one
    /// read transaction (with the write-ahead log, writers are not blocked) and writes a
    /// compact copy. `Ok(false)` on PostgreSQL, which this does not back up.
    pub async fn backup_into(&self, path: &Path) -> Result<bool, StoreError> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(false);
        };
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string_lossy().into_owned())
            .execute(pool)
            .await?;
        Ok(true)
    }

    /// SQLite's own check of every page and index (`PRAGMA integrity_check`): the problems it
    /// found, none when the file is sound. Nothing to check on PostgreSQL.
    pub async fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(Vec::new());
        };
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(pool)
            .await?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// The versions of the migrations applied to this database, oldest first (none for a
    /// file that is not a Berth database).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        crate::db::with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(pool)
            .await
            .unwrap_or_default())
        })
    }

    /// The migrations this version of Berth knows, by version.
    pub fn known_migrations(&self) -> Vec<i64> {
        match &self.pool {
            Pool::Sqlite(_) => crate::db::SQLITE_MIGRATIONS
                .iter()
                .map(|m| m.version)
                .collect(),
            Pool::Postgres(_) => crate::db::POSTGRES_MIGRATIONS
                .iter()
                .map(|m| m.version)
                .collect(),
        }
    }
}
