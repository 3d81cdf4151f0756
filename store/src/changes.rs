//! Change notices for running operations, so that live log feeds read the database when
//! something changed rather than on a timer. Within one process the worker wakes its own
//! feeds; across PostgreSQL instances a `NOTIFY` on [`OPERATION_CHANGES`] carries the
//! operation's id to every other instance's listener. SQLite is one process: nothing to say.

use crate::{db::with_pool, db::Pool, Store, StoreError};

/// The PostgreSQL channel whose payload is the id of an operation that has new log lines or
/// a new status.
pub const OPERATION_CHANGES: &str = "berth_operation_changes";

impl Store {
    /// The id of the operation's last log line (0 when it has none).
    pub async fn operation_log_last_id(&self, operation_id: i64) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let (last,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(id) FROM operation_logs WHERE operation_id = $1")
                    .bind(operation_id)
                    .fetch_one(pool)
                    .await?;
            Ok(last.unwrap_or(0))
        })
    }

    /// Tells the other instances sharing a PostgreSQL database that `operation_id` changed.
    pub async fn announce_operation_change(&self, operation_id: i64) -> Result<(), StoreError> {
        if let Pool::Postgres(pool) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(OPERATION_CHANGES)
                .bind(operation_id.to_string())
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// On PostgreSQL, a listener for [`Store::announce_operation_change`]s of every instance
    /// (this one's included); `None` on SQLite.
    pub async fn operation_change_listener(
        &self,
    ) -> Result<Option<OperationChangeListener>, StoreError> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(OPERATION_CHANGES).await?;
        Ok(Some(OperationChangeListener(listener)))
    }
}

/// See [`Store::operation_change_listener`].
pub struct OperationChangeListener(sqlx::postgres::PgListener);

impl OperationChangeListener {
    /// The id of the next operation announced as changed. A lost connection is re-opened
    /// (announcements made meanwhile are lost: feeds also look on their own now and then).
    pub async fn next(&mut self) -> Result<i64, StoreError> {
        loop {
            let notification = self.0.recv().await?;
            if let Ok(id) = notification.payload().parse() {
                return Ok(id);
            }
        }
    }
}
