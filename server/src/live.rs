//! Live operation logs for the browser: `GET /operations/{id}/events`, a server-sent event
//! stream of new log lines and status changes, authenticated by the session cookie.
//!
//! It polls the database rather than listening to this process's worker, because the
//! operation may run in another Berth process sharing the database.

use crate::router::AppState;
use app::ssr::keys;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::stream::{self, Stream};
use std::{convert::Infallible, time::Duration};
use tower_sessions::Session;
use views::{LogLineRow, OperationProgress};

const POLL: Duration = Duration::from_millis(400);

pub async fn events(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "Not found.").into_response();
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    let Ok(Some(user_id)) = session.get::<i64>(keys::USER_ID).await else {
        return (StatusCode::UNAUTHORIZED, "Sign in to continue.").into_response();
    };
    // The one authorisation rule decides whether the lines are sent too, or the status only
    // (a viewer whose team's owners have not allowed viewers to read logs).
    let Ok((_, with_lines)) = service::operations::watch(&state.berth, user_id, id).await else {
        return not_found();
    };
    Sse::new(stream(state.berth.store.clone(), id, with_lines))
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Cursor {
    store: store::Store,
    id: i64,
    after: i64,
    with_lines: bool,
    last_status: Option<(domain::OperationStatus, Option<String>)>,
    done: bool,
}

fn stream(
    store: store::Store,
    id: i64,
    with_lines: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        store,
        id,
        after: 0,
        with_lines,
        last_status: None,
        done: false,
    };
    stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        loop {
            // Read the status first: lines written before a final status are then all
            // in the log read next, so nothing is missed when the stream ends.
            let operation = cursor.store.operation(cursor.id).await.ok().flatten();
            let lines = if cursor.with_lines {
                cursor
                    .store
                    .operation_log(cursor.id, cursor.after, 500)
                    .await
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if let Some(last) = lines.last() {
                cursor.after = last.id;
                let data: Vec<LogLineRow> =
                    lines.into_iter().map(service::present::log_line).collect();
                let event = Event::default()
                    .event("lines")
                    .data(serde_json::to_string(&data).unwrap_or_default());
                return Some((Ok(event), cursor));
            }
            let operation = operation?;
            let status = (operation.status, operation.step.clone());
            if cursor.last_status.as_ref() != Some(&status) {
                cursor.last_status = Some(status);
                cursor.done = operation.is_final();
                let progress = OperationProgress {
                    status: operation.status,
                    step: operation.step,
                    error: operation.error,
                    finished_at: operation.finished_at,
                };
                let event = Event::default()
                    .event("status")
                    .data(serde_json::to_string(&progress).unwrap_or_default());
                return Some((Ok(event), cursor));
            }
            tokio::time::sleep(POLL).await;
        }
    })
}
