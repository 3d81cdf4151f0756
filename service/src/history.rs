//! History: a team's (or one app's) operations, newest first, filtered and paged by keyset
//! (the millionth row costs what the first does), with the per-day chart's numbers.

use crate::{
    accounts::SignedIn,
    apps,
    authz::{authorize, authorize_signed_in},
    present, Berth, Result,
};
use domain::{OperationKind, OperationStatus, Role};
use store::{DayCount, Operation, OperationFilter, TeamAccess};
use views::{DayRow, FieldExt, HistoryPage, OperationSummaryRow};

use views::CHART_DAYS;

const DAY_MS: i64 = 86_400_000;

/// What a reader needs to be allowed, as a refusal names it.
const SEE_HISTORY: &str = "see history";

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
    let (kind, status) = parsed(filter)?;
    let access = authorize(&berth.store, actor, team, Role::Viewer, SEE_HISTORY).await?;
    selected(berth, access, app, kind, status, filter).await
}

/// The filter's kind and status, checked before anything is read.
fn parsed(filter: HistoryFilter<'_>) -> Result<(Option<OperationKind>, Option<OperationStatus>)> {
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
    Ok((kind, status))
}

/// The store's filter for what a reader who may see the team's history asked.
async fn selected(
    berth: &Berth,
    access: TeamAccess,
    app: Option<&str>,
    kind: Option<OperationKind>,
    status: Option<OperationStatus>,
    filter: HistoryFilter<'_>,
) -> Result<(TeamAccess, OperationFilter, i64)> {
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
/// "requested by" filter. For a signed-in person, whose teams the request has read: the
/// page's own reads then take one database connection ([`store::Store::history_view`]).
pub async fn page(
    berth: &Berth,
    reader: &SignedIn,
    team: &str,
    app: Option<&str>,
    filter: HistoryFilter<'_>,
) -> Result<HistoryPage> {
    let (kind, status) = parsed(filter)?;
    let access = authorize_signed_in(reader, team, Role::Viewer, SEE_HISTORY)?;
    let (access, selection, limit) = selected(berth, access, app, kind, status, filter).await?;
    let first_day = store::now_ms().div_euclid(DAY_MS) - (CHART_DAYS - 1);
    let view = berth
        .store
        .history_view(&selection, filter.before, limit + 1, first_day * DAY_MS)
        .await?;
    let (operations, next) = paged(view.operations, limit, |o| o.id);
    Ok(HistoryPage {
        app: app.map(str::to_owned),
        operations: operations
            .into_iter()
            .map(present::operation_summary)
            .collect(),
        next,
        days: days(&view.days, first_day, CHART_DAYS),
        members: view
            .members
            .into_iter()
            .map(|m| (m.user_id, m.email))
            .collect(),
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
