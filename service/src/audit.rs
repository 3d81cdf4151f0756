//! The audit trail: who created, changed, verified, used and deleted each credential, and
//! when. Subjects are `credential:NAME` for team credentials and `app:HANDLE` for the
//! credentials given with a deploy or remembered on an app. Details never hold a secret.

use crate::{authz::authorize, present, Berth, Result};
use domain::Role;
use store::NewAuditEvent;
use views::{
    api::{AuditEventView, AuditEventsBody},
    AuditPage, AuditRow,
};

/// The subject of a team credential's events.
pub fn credential_subject(name: &str) -> String {
    format!("credential:{name}")
}

/// The subject of the events about credentials given with an app's deploys.
pub fn app_subject(handle: &str) -> String {
    format!("app:{handle}")
}

/// Records one event.
pub async fn record(
    berth: &Berth,
    team_id: i64,
    actor: Option<i64>,
    action: &str,
    subject: &str,
    ok: bool,
    detail: &str,
) -> Result<()> {
    berth
        .store
        .record_audit(NewAuditEvent {
            team_id,
            actor_id: actor,
            action,
            subject,
            ok,
            detail: Some(detail),
        })
        .await?;
    Ok(())
}

/// The trail of a team (or of one credential, by name), newest first, keyset-paged: at
/// most `limit` (1 to 200) events with ids below `before`, and the cursor for the next page
/// when it may have more.
async fn events(
    berth: &Berth,
    actor: i64,
    team: &str,
    credential: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<(store::TeamAccess, Vec<store::AuditEvent>, Option<i64>)> {
    let access = authorize(
        &berth.store,
        actor,
        team,
        Role::Viewer,
        "see the audit trail",
    )
    .await?;
    let subject = credential.map(credential_subject);
    let limit = limit.clamp(1, 200);
    let events = berth
        .store
        .audit_events(access.team_id, subject.as_deref(), before, limit)
        .await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok((access, events, next))
}

/// How many events a page of the audit trail shows.
pub const PAGE: i64 = 50;

/// A page of the team's audit trail.
pub async fn page(berth: &Berth, actor: i64, team: &str, before: Option<i64>) -> Result<AuditPage> {
    let (access, events, next) = events(berth, actor, team, None, before, PAGE).await?;
    Ok(AuditPage {
        team: present::team(&access),
        events: events
            .into_iter()
            .map(present::audit_event)
            .collect::<Vec<AuditRow>>(),
        next,
    })
}

/// The trail as the JSON API answers it (`?credential=NAME` for one credential's).
pub async fn events_body(
    berth: &Berth,
    actor: i64,
    team: &str,
    credential: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<AuditEventsBody> {
    let (_, events, next) = events(berth, actor, team, credential, before, limit).await?;
    Ok(AuditEventsBody {
        events: events
            .into_iter()
            .map(|e| AuditEventView {
                id: e.id,
                at: e.at,
                actor: e.actor_email,
                action: e.action,
                subject: e.subject,
                outcome: e.outcome,
                detail: e.detail,
            })
            .collect(),
        next,
    })
}
