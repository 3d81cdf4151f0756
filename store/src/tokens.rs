use crate::{db::with_pool, now_ms, random_token, sha256_hex, Store, StoreError};
use domain::ApiTokenName;

/// A token as listed to its owner: never the token itself, which is shown once at creation.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiTokenSummary {
    pub id: i64,
    pub name: String,
    /// The first characters, so that a person can tell their tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A freshly created token: `secret` exists only in this value and the response that shows it.
pub struct ApiToken {
    pub summary: ApiTokenSummary,
    pub secret: String,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("summary", &self.summary)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Tokens begin with this, so that secret scanners and people recognise them.
pub const TOKEN_PREFIX: &str = "berth_";

impl Store {
    pub async fn create_api_token(
        &self,
        user_id: i64,
        name: &ApiTokenName,
    ) -> Result<ApiToken, StoreError> {
        let secret = format!("{TOKEN_PREFIX}{}", random_token(40));
        let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
        let summary = with_pool!(self, pool => {
            sqlx::query_as::<_, ApiTokenSummary>(
                "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 RETURNING id, name, prefix, created_at, last_used_at",
            )
            .bind(user_id)
            .bind(name.as_str())
            .bind(sha256_hex(&secret))
            .bind(&prefix)
            .bind(now_ms())
            .fetch_one(pool)
            .await?
        });
        Ok(ApiToken { summary, secret })
    }

    /// The user's live tokens, newest first.
    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiTokenSummary>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT id, name, prefix, created_at, last_used_at FROM api_tokens
                 WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Revokes one of the user's tokens; `NotFound` if it is not theirs or already revoked.
    pub async fn revoke_api_token(&self, user_id: i64, token_id: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            )
            .bind(now_ms())
            .bind(token_id)
            .bind(user_id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The user a bearer token belongs to, recording that it was used.
    pub async fn authenticate_api_token(&self, secret: &str) -> Result<Option<i64>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "UPDATE api_tokens SET last_used_at = $1
                 WHERE token_hash = $2 AND revoked_at IS NULL
                 RETURNING user_id",
            )
            .bind(now_ms())
            .bind(sha256_hex(secret))
            .fetch_optional(pool)
            .await?)
        })
    }
}
