//! Each team's ssh deploy key: the public half and its fingerprint in plain text, the
//! private half only ever as a value sealed by the `vault` crate (see
//! [`SecretSlot::TeamDeployKey`](crate::SecretSlot::TeamDeployKey)). One key per team.

use crate::{db::with_pool, now_ms, Sealed, Store, StoreError};

/// A team's deploy key as stored, without its sealed private half.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TeamDeployKey {
    pub team_id: i64,
    /// One line of `authorized_keys`: `ssh-ed25519 AAAA… berth:<team>`.
    pub public_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    /// Who asked for it; `None` when Berth made it for a fetch.
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// A key pair to store: the public half, its fingerprint and the sealed private half.
pub struct NewDeployKey<'a> {
    pub public_key: &'a str,
    pub fingerprint: &'a str,
    pub sealed: Sealed,
    pub created_by: Option<i64>,
}

const COLUMNS: &str = "team_id, public_key, fingerprint, created_by, created_at";

impl Store {
    /// The team's deploy key, if it has one.
    pub async fn deploy_key(&self, team_id: i64) -> Result<Option<TeamDeployKey>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM team_deploy_keys WHERE team_id = $1"))
                .bind(team_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The team's deploy key with its sealed private half, for the one place that opens it.
    pub async fn deploy_key_secret(
        &self,
        team_id: i64,
    ) -> Result<Option<(TeamDeployKey, Sealed)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            key: TeamDeployKey,
            secret_sealed: String,
            secret_key_id: String,
        }
        with_pool!(self, pool => {
            let row: Option<Row> = sqlx::query_as(&format!(
                "SELECT {COLUMNS}, secret_sealed, secret_key_id FROM team_deploy_keys WHERE team_id = $1"
            ))
            .bind(team_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|row| {
                (
                    row.key,
                    Sealed {
                        value: row.secret_sealed,
                        key_id: row.secret_key_id,
                    },
                )
            }))
        })
    }

    /// Stores `new` as the team's deploy key unless the team has one already (two fetches
    /// that both found none: the first one's key stays). Answers whether it was stored.
    pub async fn add_deploy_key_if_none(
        &self,
        team_id: i64,
        new: NewDeployKey<'_>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "INSERT INTO team_deploy_keys
                   (team_id, public_key, fingerprint, secret_sealed, secret_key_id, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (team_id) DO NOTHING",
            )
            .bind(team_id)
            .bind(new.public_key)
            .bind(new.fingerprint)
            .bind(&new.sealed.value)
            .bind(&new.sealed.key_id)
            .bind(new.created_by)
            .bind(now_ms())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Makes `new` the team's deploy key, replacing the one it had (answered, if any): from
    /// now on only the new key is used.
    pub async fn replace_deploy_key(
        &self,
        team_id: i64,
        new: NewDeployKey<'_>,
    ) -> Result<Option<TeamDeployKey>, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Written first and read back in one statement: a SQLite transaction that reads
            // before it writes cannot wait for the write lock.
            let old: Option<TeamDeployKey> = sqlx::query_as(&format!(
                "DELETE FROM team_deploy_keys WHERE team_id = $1 RETURNING {COLUMNS}"
            ))
            .bind(team_id)
            .fetch_optional(&mut *tx)
            .await?;
            // An upsert, not a plain insert: a replacement running at the same moment on
            // PostgreSQL may have inserted its key after this one's delete; the last one wins.
            sqlx::query(
                "INSERT INTO team_deploy_keys
                   (team_id, public_key, fingerprint, secret_sealed, secret_key_id, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (team_id) DO UPDATE SET
                   public_key = excluded.public_key, fingerprint = excluded.fingerprint,
                   secret_sealed = excluded.secret_sealed, secret_key_id = excluded.secret_key_id,
                   created_by = excluded.created_by, created_at = excluded.created_at",
            )
            .bind(team_id)
            .bind(new.public_key)
            .bind(new.fingerprint)
            .bind(&new.sealed.value)
            .bind(&new.sealed.key_id)
            .bind(new.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(old)
        })
    }
}
