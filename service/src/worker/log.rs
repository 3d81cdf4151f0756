//! An operation's log as the worker writes it: every line redacted of the app's and the
//! operation's secrets (anywhere in the line: see [`crate::redaction`]), then stored in
//! batches by a writer task, so that a chatty pull does not make one database round trip
//! per line.

use crate::redaction;
use domain::Secret;
use platform::engine::{OperationLog, Step};
use std::sync::{Arc, RwLock};
use store::Store;
use tokio::sync::mpsc;

pub(super) struct DbLog {
    sender: mpsc::UnboundedSender<LogMessage>,
    /// As [`redaction::prepare`] orders them; grows when the operation learns a secret
    /// (a build's registry logins).
    redact: RwLock<Vec<Secret>>,
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
            }
            flush(&store, operation_id, &mut lines).await;
        });
        (Arc::new(Self { sender, redact }), writer)
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
