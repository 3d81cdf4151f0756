//! An operation's log as the worker writes it: every line redacted of the operation's
//! secrets, then stored in batches by a writer task, so that a chatty pull does not make one
//! database round trip per line.

use domain::Secret;
use platform::engine::{OperationLog, Step};
use std::sync::Arc;
use store::Store;
use tokio::sync::mpsc;

pub(super) struct DbLog {
    sender: mpsc::UnboundedSender<LogMessage>,
    /// Longest first, so that a secret containing another is redacted whole.
    redact: Vec<Secret>,
}

enum LogMessage {
    Step(Step),
    Line(String),
}

impl DbLog {
    pub(super) fn start(
        store: Store,
        operation_id: i64,
        secrets: impl IntoIterator<Item = Secret>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let mut redact: Vec<Secret> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        redact.sort_by_key(|s| std::cmp::Reverse(s.len()));
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
            }
            flush(&store, operation_id, &mut lines).await;
        });
        (Arc::new(Self { sender, redact }), writer)
    }

    pub(super) fn redacted(&self, line: &str) -> String {
        let mut line = line.trim_end().to_owned();
        for secret in &self.redact {
            if line.contains(secret.expose()) {
                line = line.replace(secret.expose(), "[redacted]");
            }
        }
        line
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
        let _ = self.sender.send(LogMessage::Line(self.redacted(line)));
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
