//! Team registry credentials. The secret column only ever holds a value sealed by the
//! `vault` crate; this module never sees plaintext. Sealing needs the row's id (it is the
//! AEAD associated data), so creating a row takes a `seal` callback that runs inside the
//! inserting transaction once the id is known.

use crate::{db::with_pool, now_ms, Store, StoreError};
use domain::{CredentialKind, CredentialName, RegistryHost};

/// A credential as stored, without its sealed secret.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RegistryCredential {
    pub id: i64,
    pub team_id: i64,
    #[sqlx(try_from = "String")]
    pub name: CredentialName,
    #[sqlx(try_from = "String")]
    pub registry: RegistryHost,
    #[sqlx(try_from = "String")]
    pub kind: CredentialKind,
    pub username: String,
    pub secret_version: i64,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_verified_at: Option<i64>,
    pub last_verified_ok: Option<bool>,
    pub last_verified_detail: Option<String>,
    pub last_used_at: Option<i64>,
    pub last_used_detail: Option<String>,
    pub expires_at: Option<i64>,
    /// How many apps' deploys use it: shown before a rotation or a delete.
    pub used_by_apps: i64,
    /// Kind `ecr`: the region, and the role assumed first (with its external id).
    pub aws_region: Option<String>,
    pub aws_role_arn: Option<String>,
    pub aws_external_id: Option<String>,
    /// Kind `ecr`: when the last token was minted and when AWS said it expires.
    pub ecr_token_minted_at: Option<i64>,
    pub ecr_token_expires_at: Option<i64>,
    /// Kind `ecr`: the last error AWS answered (cleared by the next token minted).
    pub aws_error: Option<String>,
    pub aws_error_at: Option<i64>,
}

/// Where an `ecr` credential's key is used: its region and the role it assumes first.
#[derive(Clone, Copy, Debug)]
pub struct AwsSettings<'a> {
    pub region: &'a str,
    pub role_arn: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

/// A sealed secret and the master key id that sealed it.
#[derive(Clone)]
pub struct Sealed {
    pub value: String,
    pub key_id: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed(key {})", self.key_id)
    }
}

pub struct NewCredential<'a> {
    pub name: &'a CredentialName,
    pub registry: &'a RegistryHost,
    pub kind: CredentialKind,
    pub username: &'a str,
    pub note: Option<&'a str>,
    pub created_by: i64,
    /// For kind `ecr`.
    pub aws: Option<AwsSettings<'a>>,
}

/// Changes to a credential; `None` keeps the stored value.
#[derive(Default)]
pub struct CredentialChanges<'a> {
    pub name: Option<&'a CredentialName>,
    pub registry: Option<&'a RegistryHost>,
    pub username: Option<&'a str>,
    pub note: Option<Option<&'a str>>,
    /// Kind `ecr`: a new region; a role (`Some(None)` drops it) and its external id.
    pub aws_region: Option<&'a str>,
    pub aws_role_arn: Option<Option<&'a str>>,
    pub aws_external_id: Option<Option<&'a str>>,
}

const COLUMNS: &str =
    "id, team_id, name, registry, kind, username, secret_version, note, created_at, updated_at,
     last_verified_at, (last_verified_ok = 1) AS last_verified_ok, last_verified_detail,
     last_used_at, last_used_detail, expires_at,
     aws_region, aws_role_arn, aws_external_id, ecr_token_minted_at, ecr_token_expires_at,
     aws_error, aws_error_at,
     (SELECT COUNT(*) FROM apps WHERE apps.team_credential_id = registry_credentials.id) AS used_by_apps";

impl Store {
    /// Creates a credential; `seal(id)` seals the secret for the new row's id.
    pub async fn create_credential(
        &self,
        team_id: i64,
        new: NewCredential<'_>,
        seal: impl FnOnce(i64) -> Sealed,
    ) -> Result<RegistryCredential, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO registry_credentials
                   (team_id, name, registry, kind, username, secret_sealed, secret_key_id, secret_version,
                    note, created_by, created_at, updated_at, aws_region, aws_role_arn, aws_external_id)
                 VALUES ($1, $2, $3, $4, $5, '', '', 1, $6, $7, $8, $8, $9, $10, $11)
                 RETURNING id",
            )
            .bind(team_id)
            .bind(new.name.as_str())
            .bind(new.registry.as_str())
            .bind(new.kind.as_str())
            .bind(new.username)
            .bind(new.note)
            .bind(new.created_by)
            .bind(now)
            .bind(new.aws.map(|a| a.region))
            .bind(new.aws.and_then(|a| a.role_arn))
            .bind(new.aws.and_then(|a| a.external_id))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::unique_as(e, "name"))?;
            let sealed = seal(id);
            sqlx::query("UPDATE registry_credentials SET secret_sealed = $1, secret_key_id = $2 WHERE id = $3")
                .bind(&sealed.value)
                .bind(&sealed.key_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let credential = sqlx::query_as(&format!("SELECT {COLUMNS} FROM registry_credentials WHERE id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(credential)
        })
    }

    /// The team's credentials by name.
    pub async fn credentials(&self, team_id: i64) -> Result<Vec<RegistryCredential>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM registry_credentials WHERE team_id = $1 ORDER BY name"))
                .bind(team_id)
                .fetch_all(pool)
                .await?)
        })
    }

    pub async fn credential(
        &self,
        team_id: i64,
        name: &str,
    ) -> Result<Option<RegistryCredential>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM registry_credentials WHERE team_id = $1 AND name = $2"))
                .bind(team_id)
                .bind(name)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// A credential by its id (an operation names the one it was queued with).
    pub async fn credential_by_id(
        &self,
        credential_id: i64,
    ) -> Result<Option<RegistryCredential>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM registry_credentials WHERE id = $1"))
                .bind(credential_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The sealed secret of a credential, for the one place that opens it.
    pub async fn credential_secret(&self, credential_id: i64) -> Result<Sealed, StoreError> {
        with_pool!(self, pool => {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT secret_sealed, secret_key_id FROM registry_credentials WHERE id = $1")
                    .bind(credential_id)
                    .fetch_optional(pool)
                    .await?;
            row.map(|(value, key_id)| Sealed { value, key_id }).ok_or(StoreError::NotFound)
        })
    }

    /// Applies `changes`, and replaces the secret when `seal` is given (bumping its version).
    pub async fn update_credential(
        &self,
        credential_id: i64,
        changes: CredentialChanges<'_>,
        seal: Option<Sealed>,
    ) -> Result<RegistryCredential, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE registry_credentials SET
                   name = COALESCE($1, name),
                   registry = COALESCE($2, registry),
                   username = COALESCE($3, username),
                   note = CASE WHEN $4 = 1 THEN $5 ELSE note END,
                   updated_at = $6,
                   aws_region = COALESCE($8, aws_region),
                   aws_role_arn = CASE WHEN $9 = 1 THEN $10 ELSE aws_role_arn END,
                   aws_external_id = CASE WHEN $11 = 1 THEN $12 ELSE aws_external_id END
                 WHERE id = $7",
            )
            .bind(changes.name.map(CredentialName::as_str))
            .bind(changes.registry.map(RegistryHost::as_str))
            .bind(changes.username)
            .bind(i64::from(changes.note.is_some()))
            .bind(changes.note.flatten())
            .bind(now)
            .bind(credential_id)
            .bind(changes.aws_region)
            .bind(i64::from(changes.aws_role_arn.is_some()))
            .bind(changes.aws_role_arn.flatten())
            .bind(i64::from(changes.aws_external_id.is_some()))
            .bind(changes.aws_external_id.flatten())
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::unique_as(e, "name"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if let Some(sealed) = seal {
                sqlx::query(
                    "UPDATE registry_credentials SET secret_sealed = $1, secret_key_id = $2,
                       secret_version = secret_version + 1, expires_at = NULL,
                       last_verified_at = NULL, last_verified_ok = NULL, last_verified_detail = NULL
                     WHERE id = $3",
                )
                .bind(&sealed.value)
                .bind(&sealed.key_id)
                .bind(credential_id)
                .execute(&mut *tx)
                .await?;
            }
            let credential = sqlx::query_as(&format!("SELECT {COLUMNS} FROM registry_credentials WHERE id = $1"))
                .bind(credential_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(credential)
        })
    }

    pub async fn delete_credential(&self, credential_id: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM registry_credentials WHERE id = $1")
                .bind(credential_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// Records the outcome of a verification (shown as "last verified" on the list).
    pub async fn record_verification(
        &self,
        credential_id: i64,
        ok: bool,
        detail: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE registry_credentials SET last_verified_at = $1, last_verified_ok = $2, last_verified_detail = $3
                 WHERE id = $4",
            )
            .bind(now_ms())
            .bind(i64::from(ok))
            .bind(detail)
            .bind(credential_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records that an operation used the credential ("last used" on the list).
    pub async fn record_credential_use(
        &self,
        credential_id: i64,
        detail: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE registry_credentials SET last_used_at = $1, last_used_detail = $2 WHERE id = $3")
                .bind(now_ms())
                .bind(detail)
                .bind(credential_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records an ECR token minted with an `ecr` credential (never the token): when, and
    /// when AWS says it expires. Clears the last AWS error.
    pub async fn record_ecr_token(
        &self,
        credential_id: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE registry_credentials SET ecr_token_minted_at = $1, ecr_token_expires_at = $2,
                   aws_error = NULL, aws_error_at = NULL
                 WHERE id = $3",
            )
            .bind(now_ms())
            .bind(expires_at)
            .bind(credential_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records what AWS answered when an `ecr` credential could not mint a token.
    pub async fn record_aws_error(
        &self,
        credential_id: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE registry_credentials SET aws_error = $1, aws_error_at = $2 WHERE id = $3")
                .bind(error)
                .bind(now_ms())
                .bind(credential_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Sets (or clears) when a credential's secret expires, as its owner says.
    pub async fn set_credential_expiry(
        &self,
        credential_id: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE registry_credentials SET expires_at = $1 WHERE id = $2")
                .bind(expires_at)
                .bind(credential_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
