//! The audit trail: who did what to which credential (or other subject), when, and whether
//! it worked. Details are written by the services and never contain secrets.

use crate::{db::with_pool, now_ms, Store, StoreError};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub actor_email: Option<String>,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: i64,
}

pub struct NewAuditEvent<'a> {
    pub team_id: i64,
    pub actor_id: Option<i64>,
    pub action: &'a str,
    pub subject: &'a str,
    pub ok: bool,
    pub detail: Option<&'a str>,
}

impl Store {
    pub async fn record_audit(&self, event: NewAuditEvent<'_>) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO audit_events (team_id, actor_id, action, subject, outcome, detail, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(event.team_id)
            .bind(event.actor_id)
            .bind(event.action)
            .bind(event.subject)
            .bind(if event.ok { "ok" } else { "failed" })
            .bind(event.detail)
            .bind(now_ms())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The team's events, newest first, `limit` at a time before event id `before` (keyset
    /// paging: as fast on the millionth page as on the first); optionally for one subject.
    pub async fn audit_events(
        &self,
        team_id: i64,
        subject: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT e.id, u.email AS actor_email, e.action, e.subject, e.outcome, e.detail, e.at
                 FROM audit_events e LEFT JOIN users u ON u.id = e.actor_id
                 WHERE e.team_id = $1 AND ($2 IS NULL OR e.subject = $2) AND e.id < $3
                 ORDER BY e.id DESC LIMIT $4",
            )
            .bind(team_id)
            .bind(subject)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }
}
