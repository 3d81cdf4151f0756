//! Sign-in throttling. Attempts are kept in the database rather than in memory so that the
//! limit holds across restarts and across several Berth processes.
//!
//! Failures are counted per (account, client address) and per address, never per account
//! alone: someone guessing from elsewhere locks out only their own address, not the
//! account's owner (`berth user unlock` clears an account's failures).

use crate::{db::with_pool, now_ms, Store, StoreError};

/// How many failed sign-ins are tolerated within a window.
#[derive(Clone, Copy, Debug)]
pub struct SignInLimits {
    pub window_ms: i64,
    /// Failures allowed for one account from one client address.
    pub per_account: i64,
    pub per_ip: i64,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            window_ms: 15 * 60 * 1000,
            per_account: 5,
            per_ip: 20,
        }
    }
}

/// Sign-in is refused for now; `retry_after_secs` says when it will be allowed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: i64,
}

impl Store {
    /// Refuses with [`Throttled`] when `email` from `ip`, or `ip` for any account, has used
    /// up its failed attempts.
    pub async fn check_sign_in_allowed(
        &self,
        email: &str,
        ip: &str,
        limits: SignInLimits,
    ) -> Result<Result<(), Throttled>, StoreError> {
        let now = now_ms();
        let since = now - limits.window_ms;
        // For each key: the failures in the window and the oldest of them; the lock lifts
        // when enough of them have aged out of the window.
        let (account_failures, account_oldest, ip_failures, ip_oldest): (
            i64,
            Option<i64>,
            i64,
            Option<i64>,
        ) = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT
                   (SELECT COUNT(*) FROM sign_in_attempts WHERE email = $1 AND ip = $2 AND attempted_at > $3 AND succeeded = 0),
                   (SELECT MIN(attempted_at) FROM sign_in_attempts WHERE email = $1 AND ip = $2 AND attempted_at > $3 AND succeeded = 0),
                   (SELECT COUNT(*) FROM sign_in_attempts WHERE ip = $2 AND attempted_at > $3 AND succeeded = 0),
                   (SELECT MIN(attempted_at) FROM sign_in_attempts WHERE ip = $2 AND attempted_at > $3 AND succeeded = 0)",
            )
            .bind(email)
            .bind(ip)
            .bind(since)
            .fetch_one(pool)
            .await?
        });
        let wait = |oldest: Option<i64>| {
            let unlock_at = oldest.unwrap_or(now) + limits.window_ms;
            ((unlock_at - now) / 1000).max(1)
        };
        if account_failures >= limits.per_account {
            return Ok(Err(Throttled {
                retry_after_secs: wait(account_oldest),
            }));
        }
        if ip_failures >= limits.per_ip {
            return Ok(Err(Throttled {
                retry_after_secs: wait(ip_oldest),
            }));
        }
        Ok(Ok(()))
    }

    /// Records an attempt. A success clears the account's earlier failures from that address,
    /// so a person who mistypes a few times and then gets in starts afresh (and someone
    /// guessing elsewhere does not).
    pub async fn record_sign_in(
        &self,
        email: &str,
        ip: &str,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            if succeeded {
                sqlx::query("DELETE FROM sign_in_attempts WHERE email = $1 AND ip = $2 AND succeeded = 0")
                    .bind(email)
                    .bind(ip)
                    .execute(pool)
                    .await?;
            }
            sqlx::query("INSERT INTO sign_in_attempts (email, ip, attempted_at, succeeded) VALUES ($1, $2, $3, $4)")
                .bind(email)
                .bind(ip)
                .bind(now)
                .bind(i64::from(succeeded))
                .execute(pool)
                .await?;
            // Keep the table small: attempts older than a day serve no limit.
            sqlx::query("DELETE FROM sign_in_attempts WHERE attempted_at < $1")
                .bind(now - 24 * 60 * 60 * 1000)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Forgets every failed sign-in of `email` (`berth user unlock`); answers how many.
    pub async fn clear_failed_sign_ins(&self, email: &str) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM sign_in_attempts WHERE email = $1 AND succeeded = 0")
                .bind(email)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}
