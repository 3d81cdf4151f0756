//! The history pages: a team's or one app's operations, filtered and paged.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, HistoryPage};

/// A page of the team's (or one app's) history, newest first, with the chart's numbers
/// for the last `views::CHART_DAYS` days and the members for the "requested by" filter.
#[server(input = GetUrl)]
pub async fn load_history(
    team: String,
    app: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    requested_by: Option<i64>,
    before: Option<i64>,
) -> Result<HistoryPage, AppError> {
    use service::history::{self, HistoryFilter};
    let reader = crate::ssr::signed_in()
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let filter = HistoryFilter {
        kind: kind.as_deref(),
        status: status.as_deref(),
        requested_by,
        before,
        limit: views::HISTORY_PAGE,
    };
    Ok(history::page(
        &crate::ssr::berth()?,
        &reader,
        &team,
        app.as_deref(),
        filter,
    )
    .await?)
}
