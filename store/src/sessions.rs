//! Browser sessions live in the same database as everything else, so that several Berth
//! processes behind a load balancer share them.
//!
//! The table never holds a session's id (the cookie's value): rows are keyed by a SHA-256
//! of it, so that a copy of the database (a backup, a read-only SQL injection) does not let
//! anyone take over a signed-in session.

use crate::{db::Pool, Store, StoreError};
use async_trait::async_trait;
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, ExpiredDeletion},
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// tower-sessions' SQL store for whichever backend the [`Store`] uses.
#[derive(Clone, Debug)]
pub enum SessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    pub fn session_store(&self) -> SessionStore {
        match &self.pool {
            Pool::Sqlite(pool) => SessionStore::Sqlite(SqliteStore::new(pool.clone())),
            Pool::Postgres(pool) => SessionStore::Postgres(PostgresStore::new(pool.clone())),
        }
    }

    /// How many browser sessions are stored: people signed in, and visitors holding a
    /// one-time message (a form post that was refused). Reading pages stores none.
    pub async fn stored_sessions(&self) -> Result<i64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
                    .fetch_one(pool)
                    .await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_scalar(r#"SELECT COUNT(*) FROM "tower_sessions"."session""#)
                    .fetch_one(pool)
                    .await?
            }
        })
    }
}

impl SessionStore {
    pub(crate) async fn migrate(&self) -> sqlx::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.migrate().await,
            SessionStore::Postgres(store) => store.migrate().await,
        }
    }
}

/// The key a session is stored under: the first 128 bits of SHA-256 over its id.
pub fn stored_id(id: &Id) -> Id {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"berth session id\0")
        .chain_update(id.0.to_le_bytes())
        .finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

impl SessionStore {
    async fn create_stored(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => session_store::SessionStore::create(store, record).await,
            SessionStore::Postgres(store) => {
                session_store::SessionStore::create(store, record).await
            }
        }
    }

    async fn save_stored(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => session_store::SessionStore::save(store, record).await,
            SessionStore::Postgres(store) => session_store::SessionStore::save(store, record).await,
        }
    }

    async fn load_stored(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionStore::Sqlite(store) => session_store::SessionStore::load(store, id).await,
            SessionStore::Postgres(store) => session_store::SessionStore::load(store, id).await,
        }
    }

    async fn delete_stored(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => session_store::SessionStore::delete(store, id).await,
            SessionStore::Postgres(store) => session_store::SessionStore::delete(store, id).await,
        }
    }
}

/// Every operation maps the cookie's id to [`stored_id`] on the way in and back on the way
/// out; the session layer above never sees the stored key.
#[async_trait]
impl session_store::SessionStore for SessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let key = stored_id(&record.id);
            let mut stored = record.clone();
            stored.id = key;
            self.create_stored(&mut stored).await?;
            if stored.id == key {
                return Ok(());
            }
            // The key was taken, so the SQL store saved the record under an id of its own
            // choosing, whose cookie value we could not know: drop it and draw a new id.
            self.delete_stored(&stored.id).await?;
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut stored = record.clone();
        stored.id = stored_id(&record.id);
        self.save_stored(&stored).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self.load_stored(&stored_id(id)).await?.map(|mut record| {
            record.id = *id;
            record
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.delete_stored(&stored_id(id)).await
    }
}

#[async_trait]
impl ExpiredDeletion for SessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.delete_expired().await,
            SessionStore::Postgres(store) => store.delete_expired().await,
        }
    }
}
