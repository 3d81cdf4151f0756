//! Sign-ups waiting for their address to be proved (open sign-up with e-mail verification):
//! each becomes an account only when the link sent to the address is opened.

use crate::{db::with_pool, now_ms, random_token, sha256_hex, NewAccount, Store, StoreError, User};
use domain::{Email, TeamHandle, TeamName};

/// How long a confirmation link stays valid.
pub const SIGN_UP_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A sign-up whose address is not proved yet, as its confirmation page shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PendingSignUp {
    pub email: String,
    /// Argon2 hash of the password chosen at sign-up: confirming asks for it again, so a
    /// link that someone else's sign-up sent to your address cannot give them your account.
    pub password_hash: String,
    pub team_handle: String,
    pub team_name: String,
    pub expires_at: i64,
}

impl Store {
    /// Records a sign-up and answers the token of its confirmation link (only its hash is
    /// stored). Forgets expired sign-ups on the way.
    pub async fn create_pending_sign_up(
        &self,
        account: NewAccount<'_>,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let token = format!("su_{}", random_token(40));
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM pending_sign_ups WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO pending_sign_ups
                   (email, password_hash, team_handle, team_name, token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(account.email.as_str())
            .bind(account.password_hash)
            .bind(account.team_handle.as_str())
            .bind(account.team_name.as_str())
            .bind(sha256_hex(&token))
            .bind(now)
            .bind(now + SIGN_UP_TTL_MS)
            .execute(pool)
            .await?;
            Ok(token)
        })
    }

    /// How many sign-ups for `email` were recorded since `since_ms` (confirmation mails to
    /// one address are rate-limited, so sign-up cannot be used to flood someone's inbox).
    pub async fn pending_sign_ups_since(
        &self,
        email: &Email,
        since_ms: i64,
    ) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM pending_sign_ups WHERE email = $1 AND created_at >= $2",
            )
            .bind(email.as_str())
            .bind(since_ms)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The unexpired sign-up behind `token`, if any.
    pub async fn pending_sign_up(&self, token: &str) -> Result<Option<PendingSignUp>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT email, password_hash, team_handle, team_name, expires_at
                 FROM pending_sign_ups WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(sha256_hex(token))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Turns the sign-up behind `token` into an account and its team, in one transaction,
    /// and forgets every other sign-up for the same address. `NotFound` when the token is
    /// unknown, used or expired; `Taken { what: "email" | "handle" }` when the address got
    /// an account or the handle a team meanwhile (then nothing changed).
    pub async fn complete_sign_up(&self, token: &str) -> Result<(User, i64), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let pending: Option<PendingSignUp> = sqlx::query_as(
                "DELETE FROM pending_sign_ups WHERE token_hash = $1 AND expires_at > $2
                 RETURNING email, password_hash, team_handle, team_name, expires_at",
            )
            .bind(sha256_hex(token))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let pending = pending.ok_or(StoreError::NotFound)?;
            let (email, handle, name) = parse_pending(&pending)?;
            let user: User = sqlx::query_as(
                "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)
                 RETURNING id, email, password_hash, created_at",
            )
            .bind(email.as_str())
            .bind(&pending.password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::unique_as(e, "email"))?;
            let team_id = crate::teams::insert_team!(tx, handle, name, user.id, now);
            sqlx::query("DELETE FROM pending_sign_ups WHERE email = $1")
                .bind(email.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((user, team_id))
        })
    }
}

/// The stored values, checked again on the way out (they were valid when stored).
fn parse_pending(pending: &PendingSignUp) -> Result<(Email, TeamHandle, TeamName), StoreError> {
    Ok((
        Email::parse(&pending.email)
            .map_err(|e| StoreError::corrupt("pending_sign_ups.email", e))?,
        TeamHandle::parse(&pending.team_handle)
            .map_err(|e| StoreError::corrupt("pending_sign_ups.team_handle", e))?,
        TeamName::parse(&pending.team_name)
            .map_err(|e| StoreError::corrupt("pending_sign_ups.team_name", e))?,
    ))
}
