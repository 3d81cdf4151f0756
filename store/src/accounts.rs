use crate::{db::with_pool, now_ms, sha256_hex, Store, StoreError};
use domain::{Email, TeamHandle, TeamName};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    /// `None` for an invited member who has not yet chosen a password.
    pub password_hash: Option<String>,
    pub created_at: i64,
}

/// Everything sign-up (or `berth user create`) needs: the person and the team they found.
pub struct NewAccount<'a> {
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub team_handle: &'a TeamHandle,
    pub team_name: &'a TeamName,
}

/// An open invitation, as shown to the person who follows its link.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invite {
    pub user_id: i64,
    pub email: String,
    pub team_handle: String,
    pub team_name: String,
    pub expires_at: i64,
    /// The role the person gets in the team (`owner`, `deployer`, `viewer`), when known.
    pub role: Option<String>,
}

/// How long an invitation link stays valid.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

impl Store {
    /// Creates a user and the team they own, in one transaction: both or neither.
    pub async fn create_account(&self, account: NewAccount<'_>) -> Result<(User, i64), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let user: User = sqlx::query_as(
                "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3)
                 RETURNING id, email, password_hash, created_at",
            )
            .bind(account.email.as_str())
            .bind(account.password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::unique_as(e, "email"))?;
            let team_id = crate::teams::insert_team!(tx, account.team_handle, account.team_name, user.id, now);
            tx.commit().await?;
            Ok((user, team_id))
        })
    }

    /// Like [`Store::create_account`], but only while the database has no user at all (the
    /// first account of a new install, when sign-up is closed): `None` otherwise.
    pub async fn create_first_account(
        &self,
        account: NewAccount<'_>,
    ) -> Result<Option<(User, i64)>, StoreError> {
        let now = now_ms();
        let postgres = self.backend() == crate::Backend::Postgres;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                // Two first sign-ups at once must not both see an empty table. (SQLite runs
                // one writer at a time already.)
                sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            let user: Option<User> = sqlx::query_as(
                "INSERT INTO users (email, password_hash, created_at)
                 SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM users)
                 RETURNING id, email, password_hash, created_at",
            )
            .bind(account.email.as_str())
            .bind(account.password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user) = user else {
                return Ok(None);
            };
            let team_id = crate::teams::insert_team!(tx, account.team_handle, account.team_name, user.id, now);
            tx.commit().await?;
            Ok(Some((user, team_id)))
        })
    }

    /// True once any account exists.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let any: Option<i64> = sqlx::query_scalar("SELECT id FROM users LIMIT 1")
                .fetch_optional(pool)
                .await?;
            Ok(any.is_some())
        })
    }

    /// True when a team has this handle.
    pub async fn team_handle_taken(&self, handle: &TeamHandle) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let any: Option<i64> = sqlx::query_scalar("SELECT id FROM teams WHERE handle = $1")
                .bind(handle.as_str())
                .fetch_optional(pool)
                .await?;
            Ok(any.is_some())
        })
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?)
        })
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    pub async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The open, unexpired invitation behind `token`, if any.
    pub async fn invite(&self, token: &str) -> Result<Option<Invite>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT i.user_id, u.email, t.handle AS team_handle, t.name AS team_name, i.expires_at,
                        COALESCE(m.role, mi.role) AS role
                 FROM invites i JOIN users u ON u.id = i.user_id JOIN teams t ON t.id = i.team_id
                 LEFT JOIN memberships m ON m.team_id = i.team_id AND m.user_id = i.user_id
                 LEFT JOIN membership_invitations mi ON mi.team_id = i.team_id AND mi.user_id = i.user_id
                 WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > $2",
            )
            .bind(sha256_hex(token))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Accepts an invitation: sets the invited person's password and closes the invitation.
    /// Fails with `NotFound` when the token is unknown, used or expired.
    pub async fn accept_invite(
        &self,
        token: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        self.accept_invite_founding(token, password_hash, None)
            .await
    }

    /// [`Store::accept_invite`], and (with `new_team`) a team the person owns, in the same
    /// transaction: sign-up with an invitation. `Taken { what: "handle" }` when the handle is
    /// taken (and then nothing changed).
    pub async fn accept_invite_founding(
        &self,
        token: &str,
        password_hash: &str,
        new_team: Option<(&TeamHandle, &TeamName)>,
    ) -> Result<User, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let user_id: Option<i64> = sqlx::query_scalar(
                "UPDATE invites SET accepted_at = $1
                 WHERE token_hash = $2 AND accepted_at IS NULL AND expires_at > $1
                 RETURNING user_id",
            )
            .bind(now)
            .bind(sha256_hex(token))
            .fetch_optional(&mut *tx)
            .await?;
            let user_id = user_id.ok_or(StoreError::NotFound)?;
            // An invitation only ever sets the first password: once the account is active,
            // a leftover link must not be a way to take it over.
            let user: Option<User> = sqlx::query_as(
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash IS NULL
                 RETURNING id, email, password_hash, created_at",
            )
            .bind(password_hash)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            let user = user.ok_or(StoreError::NotFound)?;
            // The person is a member of every team that invited them; the other links are void.
            sqlx::query("DELETE FROM invites WHERE user_id = $1 AND accepted_at IS NULL")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if let Some((handle, name)) = new_team {
                crate::teams::insert_team!(tx, handle, name, user_id, now);
            }
            tx.commit().await?;
            Ok(user)
        })
    }
}
