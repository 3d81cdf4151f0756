//! Live operation logs: `GET /operations/{id}/events` for the browser (the session cookie)
//! and `GET /api/v1/operations/{id}/events` for API tokens (`berth operation:follow`), a
//! server-sent event stream of new log lines (`lines`: a JSON array of `{id, at, line}`) and
//! status changes (`status`: `{status, step, error, finished_at}`), ending after the final
//! status.
//!
//! A stream reads what happened so far once, then follows the operation's one shared feed in
//! this process (`service::live`), which the worker — here, or in another instance through
//! PostgreSQL `LISTEN/NOTIFY` — wakes when there is something new. A person may have
//! [`service::live::MAX_STREAMS_PER_USER`] streams open at once; one more is answered 429.

use crate::router::AppState;
use app::ssr::keys;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::stream::{self, Stream};
use service::live::{progress, StreamPermit, Update, MAX_STREAMS_PER_USER};
use std::{collections::VecDeque, convert::Infallible};
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tower_sessions::Session;
use views::{LogLineRow, OperationProgress};

/// Lines read from the database at a time when catching up.
const PAGE: i64 = 500;

/// Where a stream resumes: `?after=N` sends only the log lines after line id N (a client
/// that reconnects after Berth restarted has the lines up to N already).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Resume {
    #[serde(default)]
    after: Option<i64>,
}

impl Resume {
    pub fn after(line: i64) -> Self {
        Self { after: Some(line) }
    }
}

/// `GET /operations/{id}/events`: the console's stream, for the signed-in person.
pub async fn events(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(resume): Query<Resume>,
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
    stream(&state, user_id, id, with_lines, resume).await
}

/// The stream of operation `id`'s status changes, and its log lines after `resume.after`
/// when `with_lines`, for `user_id`, who may watch it (`service::operations::watch`).
pub async fn stream(
    state: &AppState,
    user_id: i64,
    id: i64,
    with_lines: bool,
    resume: Resume,
) -> Response {
    let Some(permit) = state.berth.live.open_stream(user_id) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You are already following {MAX_STREAMS_PER_USER} live logs: close one of them, then reload this page."
            ),
        )
            .into_response();
    };
    let updates = match state.berth.live.subscribe(id).await {
        Ok(updates) => updates,
        Err(error) => {
            tracing::warn!(%error, operation = id, "cannot follow an operation");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The live log is unavailable; reload the page.",
            )
                .into_response();
        }
    };
    let watcher = Watcher {
        stopping: Box::pin(state.berth.live.stopping()),
        store: state.berth.store.clone(),
        id,
        after: resume.after.unwrap_or(0).max(0),
        with_lines,
        last_status: None,
        pending: VecDeque::new(),
        updates,
        started: false,
        done: false,
        _permit: permit,
    };
    Sse::new(watcher.into_stream())
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Watcher {
    /// Berth is stopping: the stream ends, and the browser reconnects to the next Berth.
    stopping: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    store: store::Store,
    id: i64,
    /// The last line id sent.
    after: i64,
    /// Whether the log's lines are sent, or the status only (see `operations::watch`).
    with_lines: bool,
    last_status: Option<OperationProgress>,
    pending: VecDeque<Event>,
    updates: Receiver<Update>,
    started: bool,
    /// The final status was queued: the stream ends once `pending` is sent.
    done: bool,
    _permit: StreamPermit,
}

impl Watcher {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        stream::unfold(self, |mut watcher| async move {
            loop {
                if let Some(event) = watcher.pending.pop_front() {
                    return Some((Ok(event), watcher));
                }
                if watcher.done {
                    return None;
                }
                if !watcher.started {
                    watcher.started = true;
                    watcher.catch_up().await;
                    continue;
                }
                let update = tokio::select! {
                    update = watcher.updates.recv() => update,
                    () = &mut watcher.stopping => return None,
                };
                match update {
                    Ok(Update::Lines(lines)) => watcher.lines(lines.iter().cloned()),
                    Ok(Update::Status(status)) => watcher.status(status),
                    // Fell behind the feed: read what was missed from the database.
                    Err(RecvError::Lagged(_)) => watcher.catch_up().await,
                    // The feed ended (the operation ended, or is gone): say what is last.
                    Err(RecvError::Closed) => {
                        watcher.catch_up().await;
                        watcher.done = true;
                    }
                }
            }
        })
    }

    /// Reads the status, then the lines after the last one sent (so that lines written before
    /// a final status are all sent before it).
    async fn catch_up(&mut self) {
        let operation = match self.store.operation(self.id).await {
            Ok(Some(operation)) => operation,
            Ok(None) => {
                self.done = true;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, operation = self.id, "the live log could not read the operation");
                self.done = true;
                return;
            }
        };
        while self.with_lines {
            match self.store.operation_log(self.id, self.after, PAGE).await {
                Ok(lines) => {
                    let full = lines.len() as i64 == PAGE;
                    self.lines(lines.into_iter().map(service::present::log_line));
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, operation = self.id, "the live log could not read the log");
                    break;
                }
            }
        }
        self.status(progress(&operation));
    }

    fn lines(&mut self, lines: impl Iterator<Item = LogLineRow>) {
        if !self.with_lines {
            return;
        }
        let new: Vec<LogLineRow> = lines.filter(|line| line.id > self.after).collect();
        let Some(last) = new.last() else { return };
        self.after = last.id;
        self.pending.push_back(
            Event::default()
                .event("lines")
                .data(serde_json::to_string(&new).unwrap_or_default()),
        );
    }

    fn status(&mut self, status: OperationProgress) {
        let same = self
            .last_status
            .as_ref()
            .is_some_and(|last| last.status == status.status && last.step == status.step);
        if same || self.done {
            return;
        }
        self.done = status.status.is_final();
        self.pending.push_back(
            Event::default()
                .event("status")
                .data(serde_json::to_string(&status).unwrap_or_default()),
        );
        self.last_status = Some(status);
    }
}
