//! Every sealed column in one place: which master keys sealed what is stored, and re-sealing
//! it under a new key while Berth serves.

use crate::{db::with_pool, Sealed, Store, StoreError};

/// Where a sealed value lives. Its [`context`](SecretSlot::context) is the AEAD associated
/// data it is sealed with, so a sealed value copied into another slot does not open there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretSlot {
    /// A team registry credential's secret.
    Credential(i64),
    /// The registry password remembered on an app.
    AppRemembered(i64),
    /// The read password (or token) of an app's git source.
    AppGit(i64),
    /// One configuration variable of an app.
    AppConfig { app_id: i64, key: String },
    /// The registry password an operation pulls with (erased when it finishes).
    OperationRegistry(i64),
    /// The configuration changes an operation applies (erased when it finishes).
    OperationEnv(i64),
    /// The private half of a team's ssh deploy key (by team id).
    TeamDeployKey(i64),
    /// A team's access token for Aptible (by team id).
    TeamAptibleToken(i64),
}

impl SecretSlot {
    /// The associated data for sealing and opening this slot's value. The credential form
    /// must never change: secrets already stored were sealed with it.
    pub fn context(&self) -> String {
        match self {
            SecretSlot::Credential(id) => format!("registry_credential:{id}:secret"),
            SecretSlot::AppRemembered(id) => format!("app:{id}:remembered_registry_password"),
            SecretSlot::AppGit(id) => format!("app:{id}:git_password"),
            SecretSlot::AppConfig { app_id, key } => format!("app:{app_id}:config:{key}"),
            SecretSlot::OperationRegistry(id) => format!("operation:{id}:registry_password"),
            SecretSlot::OperationEnv(id) => format!("operation:{id}:env"),
            SecretSlot::TeamDeployKey(id) => format!("team:{id}:deploy_key"),
            SecretSlot::TeamAptibleToken(id) => format!("team:{id}:aptible_token"),
        }
    }
}

/// One sealed value as listed for rotation.
#[derive(sqlx::FromRow)]
struct SlotRow {
    slot: String,
    id: i64,
    key: Option<String>,
    value: String,
    key_id: String,
}

impl SlotRow {
    fn into_slot(self) -> Result<(SecretSlot, Sealed), StoreError> {
        let slot = match (self.slot.as_str(), self.key) {
            ("credential", _) => SecretSlot::Credential(self.id),
            ("app_remembered", _) => SecretSlot::AppRemembered(self.id),
            ("app_git", _) => SecretSlot::AppGit(self.id),
            ("app_config", Some(key)) => SecretSlot::AppConfig {
                app_id: self.id,
                key,
            },
            ("operation_registry", _) => SecretSlot::OperationRegistry(self.id),
            ("operation_env", _) => SecretSlot::OperationEnv(self.id),
            ("deploy_key", _) => SecretSlot::TeamDeployKey(self.id),
            ("aptible_token", _) => SecretSlot::TeamAptibleToken(self.id),
            (other, _) => {
                return Err(StoreError::Database(sqlx::Error::Protocol(format!(
                    "unknown secret slot {other}"
                ))))
            }
        };
        Ok((
            slot,
            Sealed {
                value: self.value,
                key_id: self.key_id,
            },
        ))
    }
}

impl Store {
    /// The master key ids that sealed any stored secret (start-up checks that the keyring
    /// has them all). Each branch reads one `*_key_id` index.
    pub async fn secret_key_ids(&self) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT secret_key_id FROM registry_credentials
                 UNION SELECT remembered_secret_key_id FROM apps WHERE remembered_secret_key_id IS NOT NULL
                 UNION SELECT git_secret_key_id FROM apps WHERE git_secret_key_id IS NOT NULL
                 UNION SELECT value_key_id FROM app_config
                 UNION SELECT registry_secret_key_id FROM operations WHERE registry_secret_key_id IS NOT NULL
                 UNION SELECT env_key_id FROM operations WHERE env_key_id IS NOT NULL
                 UNION SELECT secret_key_id FROM team_deploy_keys
                 UNION SELECT token_key_id FROM team_platforms
                 ORDER BY 1",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Up to `limit` sealed values, from every sealed column, that `current_key_id` did not
    /// seal: a batch of work for rotation. Re-sealed values drop out of the next batch.
    pub async fn secrets_sealed_by_other_keys(
        &self,
        current_key_id: &str,
        limit: i64,
    ) -> Result<Vec<(SecretSlot, Sealed)>, StoreError> {
        with_pool!(self, pool => {
            let rows: Vec<SlotRow> = sqlx::query_as(
                "SELECT 'credential' AS slot, id, CAST(NULL AS TEXT) AS key,
                        secret_sealed AS value, secret_key_id AS key_id
                 FROM registry_credentials WHERE secret_key_id <> $1
                 UNION ALL
                 SELECT 'app_remembered', id, NULL, remembered_secret_sealed, remembered_secret_key_id
                 FROM apps
                 WHERE remembered_secret_key_id IS NOT NULL AND remembered_secret_key_id <> $1
                 UNION ALL
                 SELECT 'app_git', id, NULL, git_secret_sealed, git_secret_key_id
                 FROM apps
                 WHERE git_secret_key_id IS NOT NULL AND git_secret_key_id <> $1
                 UNION ALL
                 SELECT 'app_config', app_id, key, value_sealed, value_key_id
                 FROM app_config WHERE value_key_id <> $1
                 UNION ALL
                 SELECT 'operation_registry', id, NULL, registry_secret_sealed, registry_secret_key_id
                 FROM operations
                 WHERE registry_secret_key_id IS NOT NULL AND registry_secret_key_id <> $1
                 UNION ALL
                 SELECT 'operation_env', id, NULL, env_sealed, env_key_id
                 FROM operations WHERE env_key_id IS NOT NULL AND env_key_id <> $1
                 UNION ALL
                 SELECT 'deploy_key', team_id, NULL, secret_sealed, secret_key_id
                 FROM team_deploy_keys WHERE secret_key_id <> $1
                 UNION ALL
                 SELECT 'aptible_token', team_id, NULL, token_sealed, token_key_id
                 FROM team_platforms WHERE kind = 'aptible' AND token_key_id <> $1
                 LIMIT $2",
            )
            .bind(current_key_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(SlotRow::into_slot).collect()
        })
    }

    /// Replaces the sealed value in `slot` only if it is still `old` (a concurrent change
    /// wins, and an operation that finished meanwhile has erased its value), so that rotation
    /// can run while Berth serves. Returns whether it was replaced.
    pub async fn reseal_secret(
        &self,
        slot: &SecretSlot,
        old: &Sealed,
        new: &Sealed,
    ) -> Result<bool, StoreError> {
        let (sql, id, key) = match slot {
            SecretSlot::Credential(id) => (
                "UPDATE registry_credentials SET secret_sealed = $1, secret_key_id = $2
                 WHERE id = $3 AND secret_sealed = $4",
                *id,
                None,
            ),
            SecretSlot::AppRemembered(id) => (
                "UPDATE apps SET remembered_secret_sealed = $1, remembered_secret_key_id = $2
                 WHERE id = $3 AND remembered_secret_sealed = $4",
                *id,
                None,
            ),
            SecretSlot::AppGit(id) => (
                "UPDATE apps SET git_secret_sealed = $1, git_secret_key_id = $2
                 WHERE id = $3 AND git_secret_sealed = $4",
                *id,
                None,
            ),
            SecretSlot::AppConfig { app_id, key } => (
                "UPDATE app_config SET value_sealed = $1, value_key_id = $2
                 WHERE app_id = $3 AND value_sealed = $4 AND key = $5",
                *app_id,
                Some(key.as_str()),
            ),
            SecretSlot::OperationRegistry(id) => (
                "UPDATE operations SET registry_secret_sealed = $1, registry_secret_key_id = $2
                 WHERE id = $3 AND registry_secret_sealed = $4",
                *id,
                None,
            ),
            SecretSlot::OperationEnv(id) => (
                "UPDATE operations SET env_sealed = $1, env_key_id = $2
                 WHERE id = $3 AND env_sealed = $4",
                *id,
                None,
            ),
            SecretSlot::TeamDeployKey(team_id) => (
                "UPDATE team_deploy_keys SET secret_sealed = $1, secret_key_id = $2
                 WHERE team_id = $3 AND secret_sealed = $4",
                *team_id,
                None,
            ),
            SecretSlot::TeamAptibleToken(team_id) => (
                "UPDATE team_platforms SET token_sealed = $1, token_key_id = $2
                 WHERE team_id = $3 AND token_sealed = $4 AND kind = 'aptible'",
                *team_id,
                None,
            ),
        };
        with_pool!(self, pool => {
            let mut query = sqlx::query(sql)
                .bind(&new.value)
                .bind(&new.key_id)
                .bind(id)
                .bind(&old.value);
            if let Some(key) = key {
                query = query.bind(key);
            }
            let done = query.execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
