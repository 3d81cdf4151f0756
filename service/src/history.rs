//! History: a team's (or one app's) operations, newest first, filtered and paged by keyset
//! (the millionth row costs what the first does), with the per-day chart's numbers.

use crate::{apps, authz::authorize, present, Berth, Result};
use domain::{OperationKind, OperationStatus, Role};
use store::{DayCount, Operation, OperationFilter, TeamAccess};
use views::{DayRow, FieldExt, HistoryPage, OperationSummaryRow};

use views::CHART_DAYS;

const DAY_MS: i64 = 86_400_000;

/// Which operations to show, as a form or the API gives the filter.
#[derive(Default, Clone, Copy)]
pub struct HistoryFilter<'a> {
    pub kind: Option<&'a str>,
    pub status: Option<&'a str>,
    pub requested_by: Option<i64>,
    /// Only operations older than this one (the keyset cursor).
    pub before: Option<i64>,
    pub limit: i64,
}

/// A page of history: the operations, and the cursor for the next (older) page.
pub async fn page_of(
    berth: &Berth,
    actor: i64,
    team: &str,
    app: Option<&str>,
    filter: HistoryFilter<'_>,
) -> Result<(TeamAccess, Vec<Operation>, Option<i64>)> {
    let (access, selection, limit) = selection(berth, actor, team, app, filter).await?;
    let operations = berth
        .store
        .operations_page(&selection, filter.before, limit + 1)
        .await?;
    let (operations, next) = paged(operations, limit, |o| o.id);
    Ok((access, operations, next))
}

/// Who may see which operations: the reader's standing in the team, the store's filter for
/// what they asked, and how many to show.
async fn selection(
    berth: &Berth,
    actor: i64,
    team: &str,
    app: Option<&str>,
    filter: HistoryFilter<'_>,
) -> Result<(TeamAccess, OperationFilter, i64)> {
    let kind = filter
        .kind
        .filter(|k| !k.is_empty())
        .map(|k| OperationKind::parse(k).field("kind"))
        .transpose()?;
    let status = filter
        .status
        .filter(|s| !s.is_empty())
        .map(|s| OperationStatus::parse(s).field("status"))
        .transpose()?;
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see history").await?;
    let app_id = match app {
        Some(handle) => Some(apps::load(berth, &access, handle).await?.id),
        None => None,
    };
    let selection = OperationFilter {
        team_id: access.team_id,
        app_id,
        kind,
        status,
        requested_by: filter.requested_by,
    };
    Ok((access, selection, filter.limit.clamp(1, 200)))
}

/// `limit` of `rows` (read with one more, to tell whether there is an older page) and the
/// cursor for that page.
fn paged<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(id)
    } else {
        None
    };
    (rows, next)
}

/// The newest `limit` operations of an app its reader is already allowed to see, as its
/// page's table shows them.
pub async fn recent(
    berth: &Berth,
    access: &TeamAccess,
    app_id: i64,
    limit: i64,
) -> Result<Vec<OperationSummaryRow>> {
    let selection = OperationFilter {
        team_id: access.team_id,
        app_id: Some(app_id),
        ..Default::default()
    };
    let operations = berth
        .store
        .operation_summaries(&selection, None, limit)
        .await?;
    Ok(operations
        .into_iter()
        .map(present::operation_summary)
        .collect())
}

/// A history page: the operations, the chart's numbers for the last [`CHART_DAYS`] days
/// (of the same operations: the filters apply to both), and the members for the
/// "requested by" filter.
pub async fn page(
    berth: &Berth,
    actor: i64,
    team: &str,
    app: Option<&str>,
    filter: HistoryFilter<'_>,
) -> Result<HistoryPage> {
    let (access, selection, limit) = selection(berth, actor, team, app, filter).await?;
    let operations = berth
        .store
        .operation_summaries(&selection, filter.before, limit + 1)
        .await?;
    let (operations, next) = paged(operations, limit, |o| o.id);
    let first_day = store::now_ms().div_euclid(DAY_MS) - (CHART_DAYS - 1);
    let counts = berth
        .store
        .operation_days(&selection, first_day * DAY_MS)
        .await?;
    let members = berth
        .store
        .members(access.team_id)
        .await?
        .into_iter()
        .map(|m| (m.user_id, m.email))
        .collect();
    Ok(HistoryPage {
        app: app.map(str::to_owned),
        operations: operations
            .into_iter()
            .map(present::operation_summary)
            .collect(),
        next,
        days: days(&counts, first_day, CHART_DAYS),
        members,
        team: present::team(&access),
    })
}

/// Operations per day for the chart: every one of the last `days` days, empty ones
/// included, with the mean run time of the operations that ran.
fn days(counts: &[DayCount], first_day: i64, days: i64) -> Vec<DayRow> {
    (first_day..first_day + days)
        .map(|day| {
            let mut row = DayRow {
                day,
                succeeded: 0,
                failed: 0,
                other: 0,
                avg_duration_ms: None,
            };
            let (mut total_ms, mut timed) = (0i128, 0i128);
            for c in counts.iter().filter(|c| c.day == day) {
                match c.status {
                    OperationStatus::Succeeded => row.succeeded += c.count,
                    OperationStatus::Failed => row.failed += c.count,
                    _ => row.other += c.count,
                }
                if let (Some(avg), OperationStatus::Succeeded | OperationStatus::Failed) =
                    (c.avg_duration_ms, c.status)
                {
                    total_ms += i128::from(avg) * i128::from(c.count);
                    timed += i128::from(c.count);
                }
            }
            if timed > 0 {
                row.avg_duration_ms = Some((total_ms / timed) as i64);
            }
            row
        })
        .collect()
}
