//! An operation's log as the worker writes it: every line redacted of the app's and the
//! operation's secrets (anywhere in the line: see [`crate::redaction`]), cut at
//! [`platform::output::MAX_LINE_BYTES`] and counted against [`MAX_OPERATION_LOG_BYTES`], then
//! stored in batches by a writer task, so that a chatty pull does not make one database round
//! trip per line. After each batch the writer wakes the operation's live feed (see
//! [`crate::live`]), so watchers see the lines at once.

use crate::live::OperationFeeds;
use crate::redaction;
use domain::Secret;
use platform::engine::{OperationLog, Step};
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, RwLock,
};
use store::Store;
use tokio::sync::mpsc;

/// The most an operation's log keeps of its output. A build or release that prints more
/// gets one [`LOG_FULL_MARKER`] line, and its further output is dropped (step titles are
/// still kept; the operation's outcome is its status).
pub const MAX_OPERATION_LOG_BYTES: u64 = 10 * 1024 * 1024;

/// The last line of output kept once a log reached [`MAX_OPERATION_LOG_BYTES`].
pub const LOG_FULL_MARKER: &str =
    "[berth] This log reached 10 MiB: further output of this operation is not kept.";

pub(super) struct DbLog {
    sender: mpsc::UnboundedSender<LogMessage>,
    /// As [`redaction::prepare`] orders them; grows when the operation learns a secret
    /// (a build's registry logins).
    redact: RwLock<Vec<Secret>>,
    /// Bytes of output stored so far (see [`DbLog::within_budget`]).
    used: AtomicU64,
}

enum LogMessage {
    Step(Step),
    Line(String),
}

impl DbLog {
    pub(super) fn start(
        store: Store,
        feeds: OperationFeeds,
        operation_id: i64,
        secrets: impl IntoIterator<Item = Secret>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let redact = RwLock::new(redaction::prepare(secrets));
        let (sender, mut receiver) = mpsc::unbounded_channel::<LogMessage>();
        let writer = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                // Gather what else arrived meanwhile, up to a few hundred lines.
                while batch.len() < 500 {
                    match receiver.try_recv() {
                        Ok(message) => batch.push(message),
                        Err(_) => break,
                    }
                }
                for message in batch {
                    match message {
                        LogMessage::Line(line) => lines.push(line),
                        LogMessage::Step(step) => {
                            flush(&store, operation_id, &mut lines).await;
                            if let Err(error) =
                                store.set_operation_step(operation_id, step.as_str()).await
                            {
                                tracing::warn!(%error, operation = operation_id, "could not record the step");
                            }
                        }
                    }
                }
                flush(&store, operation_id, &mut lines).await;
                feeds.wake(operation_id).await;
            }
            flush(&store, operation_id, &mut lines).await;
            feeds.wake(operation_id).await;
        });
        (
            Arc::new(Self {
                sender,
                redact,
                used: AtomicU64::new(0),
            }),
            writer,
        )
    }

    /// `line` cut to the line limit, counted against the log's budget: `None` once the
    /// budget is spent, [`LOG_FULL_MARKER`] instead of the line that spends it.
    fn within_budget(&self, line: String) -> Option<String> {
        let line = match platform::output::cut_line(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(cut) => cut,
        };
        let size = line.len() as u64 + 1;
        let before = self.used.fetch_add(size, Ordering::Relaxed);
        if before + size <= MAX_OPERATION_LOG_BYTES {
            Some(line)
        } else if before <= MAX_OPERATION_LOG_BYTES {
            // This line crosses the limit: the only one to do so, so the marker is written once.
            Some(LOG_FULL_MARKER.to_owned())
        } else {
            None
        }
    }

    pub(super) fn redacted(&self, line: &str) -> String {
        redaction::redact(
            line.trim_end(),
            &self.redact.read().expect("redaction lock"),
        )
    }

    /// Redacts `secrets` too from every line written from now on.
    pub(super) fn hide(&self, secrets: impl IntoIterator<Item = Secret>) {
        let mut redact = self.redact.write().expect("redaction lock");
        let known = std::mem::take(&mut *redact);
        *redact = redaction::prepare(known.into_iter().chain(secrets));
    }
}

async fn flush(store: &Store, operation_id: i64, lines: &mut Vec<String>) {
    if lines.is_empty() {
        return;
    }
    if let Err(error) = store.append_operation_log(operation_id, lines).await {
        tracing::warn!(%error, operation = operation_id, "could not store operation log lines");
    }
    lines.clear();
}

impl OperationLog for DbLog {
    fn step(&self, step: Step) {
        let _ = self
            .sender
            .send(LogMessage::Line(format!("==> {}", step_title(step))));
        let _ = self.sender.send(LogMessage::Step(step));
    }

    fn line(&self, line: &str) {
        if let Some(line) = self.within_budget(self.redacted(line)) {
            let _ = self.sender.send(LogMessage::Line(line));
        }
    }
}

fn step_title(step: Step) -> &'static str {
    match step {
        Step::Verify => "Verify: credentials and image",
        Step::Build => "Build: building the image from the Dockerfile",
        Step::Pull => "Pull: downloading the image",
        Step::Start => "Start: starting the new release",
        Step::HealthCheck => "Health check: waiting for the release to answer on PORT",
        Step::Switch => "Switch: the new release takes over; stopping the previous one",
    }
}
