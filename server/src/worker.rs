//! The operation worker: claims queued operations from the database and has the platform
//! carry them out.
//!
//! Ordering and exclusion live in the database, not here: `claim_next_operation` only hands
//! out the oldest queued operation of an app with nothing running (a partial unique index
//! makes "one running per app" a database rule), so several Berth processes on one
//! PostgreSQL database can share the queue. Each claim is a lease renewed by a heartbeat; a
//! lease that runs out means its process died, and the operation is failed with that reason
//! (a failed operation never moves the app's current release, so the previous one serves on).

use app::{services::apps as app_services, ssr::ServerState};
use domain::{ConfigKey, ImageReference, OperationKind};
use platform::{
    engine::{AppRef, OperationLog, ReleaseSpec, Step},
    registry::{BasicCredentials, Secret},
};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use store::{ConfigChange, Finish, NewAuditEvent, NewRelease, Operation, SecretSlot, Store};
use tokio::{sync::mpsc, task::JoinSet};

use app::services::builds::BUILD_ONLY_PREFIX;

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub lease: Duration,
    /// How often the queue is polled for operations queued by other processes.
    pub poll: Duration,
}

/// Runs the worker until the process ends.
pub fn spawn(state: ServerState, settings: WorkerSettings) -> tokio::task::JoinHandle<()> {
    let worker_id = format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        store::random_token(6)
    );
    tokio::spawn(run(state, settings, worker_id))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "berth".to_owned())
}

async fn run(state: ServerState, settings: WorkerSettings, worker_id: String) {
    let lease_ms = settings.lease.as_millis() as i64;
    let mut running = JoinSet::new();
    tracing::info!(worker = %worker_id, concurrency = settings.concurrency, "operation worker started");
    loop {
        match state
            .store
            .fail_expired_operations(
                "The Berth process running this operation stopped (its lease expired); \
                 the previous release keeps serving. Deploy again to retry.",
            )
            .await
        {
            Ok(failed) => {
                for operation in failed {
                    tracing::warn!(operation = operation.id, app = %operation.app_handle, "operation failed: its lease expired");
                }
            }
            Err(error) => tracing::warn!(%error, "could not check for expired operation leases"),
        }
        while running.len() < settings.concurrency {
            match state.store.claim_next_operation(&worker_id, lease_ms).await {
                Ok(Some(operation)) => {
                    let state = state.clone();
                    let worker_id = worker_id.clone();
                    let lease = settings.lease;
                    running.spawn(async move {
                        let id = operation.id;
                        execute(state, worker_id, lease, operation).await;
                        id
                    });
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not claim an operation");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.operations_queued.notified() => {}
            _ = tokio::time::sleep(settings.poll) => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Err(error) = done {
                    tracing::error!(%error, "an operation task panicked");
                }
            }
        }
    }
}

/// The operation's log: lines are redacted, then stored in batches by a writer task, so
/// that a chatty pull does not make one database round trip per line.
struct DbLog {
    sender: mpsc::UnboundedSender<LogMessage>,
    redact: Vec<String>,
}

enum LogMessage {
    Step(Step),
    Line(String),
}

impl DbLog {
    fn start(
        store: Store,
        operation_id: i64,
        redact: Vec<String>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<LogMessage>();
        let writer = tokio::spawn(async move {
            let mut lines = Vec::new();
            loop {
                let Some(first) = receiver.recv().await else {
                    break;
                };
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

    fn redacted(&self, line: &str) -> String {
        let mut line = line.trim_end().to_owned();
        for secret in &self.redact {
            if line.contains(secret.as_str()) {
                line = line.replace(secret.as_str(), "[redacted]");
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

/// What an operation needs, opened from the database.
struct Prepared {
    app: store::App,
    app_ref: AppRef,
    credentials: Option<BasicCredentials>,
    /// The configuration changes this operation applies.
    changes: BTreeMap<String, Option<String>>,
    /// The environment the new release gets: current configuration with the changes.
    env: BTreeMap<String, String>,
}

async fn execute(state: ServerState, worker_id: String, lease: Duration, operation: Operation) {
    let id = operation.id;
    let prepared = prepare(&state, &operation).await;
    let mut redact: Vec<String> = Vec::new();
    if let Ok(prepared) = &prepared {
        if let Some(credentials) = &prepared.credentials {
            redact.push(credentials.secret.expose().to_owned());
        }
        for (key, value) in prepared.env.iter().chain(
            prepared
                .changes
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k, v))),
        ) {
            let secret = key.starts_with(BUILD_ONLY_PREFIX)
                || ConfigKey::parse(key).is_ok_and(|k| k.looks_secret());
            if secret && value.len() >= 3 {
                redact.push(value.clone());
            }
        }
    }
    // Longest first, so that a secret containing another is redacted whole.
    redact.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let (log, writer) = DbLog::start(state.store.clone(), id, redact);

    let heartbeat = {
        let store = state.store.clone();
        let worker_id = worker_id.clone();
        let lease_ms = lease.as_millis() as i64;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(lease / 3);
            every.tick().await;
            loop {
                every.tick().await;
                match store.heartbeat(id, &worker_id, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(operation = id, "lost the lease on a running operation");
                        break;
                    }
                    Err(error) => tracing::warn!(%error, operation = id, "heartbeat failed"),
                }
            }
        })
    };

    tracing::info!(operation = id, kind = %operation.kind, app = %operation.app_handle, "operation started");
    let outcome = match prepared {
        Ok(prepared) => perform(&state, &operation, &prepared, log.as_ref()).await,
        Err(error) => Err(error),
    };
    let error_text: String;
    let finish = match &outcome {
        Ok(done) => {
            log.line(&format!(
                "Operation succeeded{}",
                done.url
                    .as_deref()
                    .map(|u| format!(": serving at {u}"))
                    .unwrap_or_default()
            ));
            Finish::Succeeded {
                release: done.release.as_ref().map(|r| NewRelease {
                    image: &r.image,
                    digest: &r.digest,
                    port: r.port,
                }),
                config: &done.config,
            }
        }
        Err(error) => {
            error_text = log.redacted(error);
            log.line(&format!("Operation failed: {error_text}"));
            Finish::Failed { error: &error_text }
        }
    };
    drop(log);
    let _ = writer.await;
    heartbeat.abort();
    match state.store.finish_operation(id, &worker_id, finish).await {
        Ok(finished) => {
            tracing::info!(operation = id, status = %finished.status, app = %finished.app_handle, "operation finished")
        }
        // Another process took the operation over after our lease ran out: its record wins.
        Err(store::StoreError::LeaseLost) => {
            tracing::warn!(
                operation = id,
                "the operation's lease was lost; its outcome was not recorded here"
            )
        }
        Err(error) => {
            tracing::error!(%error, operation = id, "could not record the end of an operation")
        }
    }
}

struct Done {
    release: Option<ReleaseRecord>,
    config: Vec<ConfigChange>,
    url: Option<String>,
}

struct ReleaseRecord {
    image: String,
    digest: String,
    port: Option<i64>,
}

async fn prepare(state: &ServerState, operation: &Operation) -> Result<Prepared, String> {
    let app = state
        .store
        .app_by_id(operation.app_id)
        .await
        .map_err(|e| format!("cannot read the app: {e}"))?
        .ok_or("the app no longer exists")?;
    let team = state
        .store
        .team_access_by_id(
            operation.requested_by.unwrap_or_default(),
            operation.team_id,
        )
        .await
        .ok()
        .flatten()
        .map(|t| t.handle)
        .unwrap_or_else(|| format!("team-{}", operation.team_id));
    let (registry_sealed, env_sealed) = state
        .store
        .operation_secrets(operation.id)
        .await
        .map_err(|e| format!("cannot read the operation: {e}"))?;
    let open = |sealed: &store::Sealed, slot: SecretSlot| -> Result<String, String> {
        state
            .keys
            .open(&sealed.value, &slot.context())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| {
                tracing::error!(error = %e, operation = operation.id, "cannot open an operation secret");
                "Berth could not open this operation's stored secrets (see the server log)".to_owned()
            })
    };
    let credentials = match (&operation.registry_username, registry_sealed) {
        (Some(username), Some(sealed)) => Some(BasicCredentials::new(
            username.clone(),
            open(&sealed, SecretSlot::OperationRegistry(operation.id))?,
        )),
        (_, None)
            if operation.credential_source != "none"
                && operation.kind == "deploy"
                && operation.git_ref.is_none() =>
        {
            return Err("the credentials of this deploy are gone (it was interrupted and its secrets discarded); deploy again".into())
        }
        _ => None,
    };
    let changes: BTreeMap<String, Option<String>> = match env_sealed {
        Some(sealed) => {
            serde_json::from_str(&open(&sealed, SecretSlot::OperationEnv(operation.id))?)
                .map_err(|e| format!("the configuration changes are unreadable: {e}"))?
        }
        None => BTreeMap::new(),
    };
    let mut env: BTreeMap<String, String> = app_services::config(state, app.id)
        .await
        .map_err(|e| format!("cannot read the configuration: {e}"))?
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    for (key, value) in &changes {
        match value {
            Some(value) => env.insert(key.clone(), value.clone()),
            None => env.remove(key),
        };
    }
    let app_ref = AppRef {
        id: app.id,
        name: format!("{team}/{}", app.handle),
    };
    Ok(Prepared {
        app,
        app_ref,
        credentials,
        changes,
        env,
    })
}

fn release_env(env: &BTreeMap<String, String>) -> Vec<(String, Secret)> {
    env.iter()
        .filter(|(k, _)| !k.starts_with(BUILD_ONLY_PREFIX))
        .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
        .collect()
}

fn config_changes(
    state: &ServerState,
    app_id: i64,
    changes: &BTreeMap<String, Option<String>>,
) -> Vec<ConfigChange> {
    changes
        .iter()
        .map(|(key, value)| ConfigChange {
            key: key.clone(),
            value: value.as_ref().map(|v| {
                let slot = SecretSlot::AppConfig {
                    app_id,
                    key: key.clone(),
                };
                let (value, key_id) = state.keys.seal(v.as_bytes(), &slot.context());
                store::Sealed { value, key_id }
            }),
        })
        .collect()
}

async fn perform(
    state: &ServerState,
    operation: &Operation,
    prepared: &Prepared,
    log: &dyn OperationLog,
) -> Result<Done, String> {
    let kind = OperationKind::parse(&operation.kind).map_err(|e| e.message)?;
    let config = config_changes(state, prepared.app.id, &prepared.changes);
    if !prepared.changes.is_empty() {
        let names: Vec<String> = prepared
            .changes
            .iter()
            .map(|(k, v)| format!("{}{k}", if v.is_some() { "" } else { "-" }))
            .collect();
        log.line(&format!("Configuration changes: {}", names.join(", ")));
    }
    match kind {
        OperationKind::Deploy if operation.git_ref.is_some() => {
            build_and_deploy(state, operation, prepared, log, config).await
        }
        OperationKind::Deploy => {
            let (Some(image), Some(digest)) = (&operation.image, &operation.digest) else {
                return Err("the deploy names no image".into());
            };
            let pinned = ImageReference::parse(image)
                .and_then(|i| i.with_digest(digest))
                .map_err(|e| format!("the image does not parse: {}", e.message))?;
            log.step(Step::Verify);
            log.line(&format!(
                "{image} resolved to {digest} before queuing; credentials: {}",
                credential_words(operation)
            ));
            record_credential_use(state, operation, prepared).await;
            let spec = ReleaseSpec {
                app: prepared.app_ref.clone(),
                release_id: operation.id,
                image: pinned,
                env: release_env(&prepared.env),
                health_path: prepared.app.health_path.clone(),
                preferred_port: None,
            };
            let running = state
                .platform
                .deploy(spec, prepared.credentials.clone(), log)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Done {
                release: Some(ReleaseRecord {
                    image: image.clone(),
                    digest: digest.clone(),
                    port: Some(i64::from(running.port)),
                }),
                config,
                url: Some(running.url),
            })
        }
        OperationKind::Configure | OperationKind::Restart => {
            let current = match prepared.app.current_release_id {
                Some(id) => state
                    .store
                    .release(id)
                    .await
                    .map_err(|e| format!("cannot read the current release: {e}"))?,
                None => None,
            };
            let Some(current) = current else {
                if kind == OperationKind::Restart {
                    return Err("the app has no release to restart; deploy it first".into());
                }
                log.line("The app has no release yet: the configuration is stored and applies from its first deploy.");
                return Ok(Done {
                    release: None,
                    config,
                    url: None,
                });
            };
            let pinned = ImageReference::parse(&current.image)
                .and_then(|i| i.with_digest(&current.digest))
                .map_err(|e| {
                    format!("the current release's image does not parse: {}", e.message)
                })?;
            let spec = ReleaseSpec {
                app: prepared.app_ref.clone(),
                release_id: operation.id,
                image: pinned,
                env: release_env(&prepared.env),
                health_path: prepared.app.health_path.clone(),
                preferred_port: None,
            };
            let running = state
                .platform
                .restart(spec, log)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Done {
                release: Some(ReleaseRecord {
                    image: current.image,
                    digest: current.digest,
                    port: Some(i64::from(running.port)),
                }),
                config,
                url: Some(running.url),
            })
        }
    }
}

/// A Dockerfile deploy: fetch the commit, plan the build (credentials for every base image),
/// build with buildah, then run the built image like any release.
async fn build_and_deploy(
    state: &ServerState,
    operation: &Operation,
    prepared: &Prepared,
    log: &dyn OperationLog,
    config: Vec<ConfigChange>,
) -> Result<Done, String> {
    use app::services::builds;
    let commit = operation
        .commit_sha
        .as_deref()
        .ok_or("the deploy names no commit")?;
    let commit = platform::git::CommitId::parse(commit).map_err(|e| e.to_string())?;
    log.step(Step::Verify);
    log.line(&format!(
        "Fetching {} for {} ({})",
        prepared.app.git_url.as_deref().unwrap_or_default(),
        operation.git_ref.as_deref().unwrap_or_default(),
        commit.as_str()
    ));
    let repository = builds::fetch(state, &prepared.app)
        .await
        .map_err(|e| e.to_string())?;
    let given: std::collections::BTreeSet<String> = prepared
        .changes
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let plan = builds::plan_build(
        state,
        operation.team_id,
        &prepared.app,
        &repository,
        &commit,
        &prepared.env,
        &given,
        false,
    )
    .await
    .map_err(|e| e.to_string())?;
    for base in &plan.bases {
        log.line(&format!(
            "Base image {} (line {}): credentials from {}",
            base.image, base.line, base.credential
        ));
    }
    record_credential_use(state, operation, prepared).await;
    let source_dir = state
        .git_dir
        .join("builds")
        .join(format!("op-{}", operation.id));
    let _ = tokio::fs::remove_dir_all(&source_dir).await;
    if let Some(parent) = source_dir.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot prepare the build directory: {e}"))?;
    }
    repository
        .checkout(&commit, &source_dir)
        .await
        .map_err(|e| e.to_string())?;
    let built = state
        .platform
        .build(
            platform::engine::BuildSpec {
                app: prepared.app_ref.clone(),
                operation_id: operation.id,
                source_dir: source_dir.clone(),
                context: plan.context.clone(),
                dockerfile: plan.dockerfile.clone(),
                build_args: plan
                    .build_args
                    .iter()
                    .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                    .collect(),
                registry_credentials: plan.registry_credentials.clone(),
            },
            log,
        )
        .await;
    let _ = tokio::fs::remove_dir_all(&source_dir).await;
    let built = built.map_err(|e| e.to_string())?;
    let image = built.image.to_string();
    if let Err(error) = state
        .store
        .set_operation_image(operation.id, &image, &built.digest)
        .await
    {
        tracing::warn!(%error, operation = operation.id, "could not record the built image");
    }
    log.line(&format!("Built {image} ({})", built.digest));
    let spec = ReleaseSpec {
        app: prepared.app_ref.clone(),
        release_id: operation.id,
        image: built.pinned(),
        env: release_env(&prepared.env),
        health_path: prepared.app.health_path.clone(),
        preferred_port: None,
    };
    let running = state
        .platform
        .deploy_built(spec, log)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Done {
        release: Some(ReleaseRecord {
            image,
            digest: built.digest,
            port: Some(i64::from(running.port)),
        }),
        config,
        url: Some(running.url),
    })
}

fn credential_words(operation: &Operation) -> String {
    match operation.credential_source.as_str() {
        "team" => format!(
            "team credential {} (version {})",
            operation.credential_name.as_deref().unwrap_or("?"),
            operation.credential_version.unwrap_or_default()
        ),
        "given" => "given with this deploy".into(),
        "remembered" => "remembered on the app".into(),
        _ => "none".into(),
    }
}

/// Every use of a credential is audited; a team credential also records its last use.
async fn record_credential_use(state: &ServerState, operation: &Operation, prepared: &Prepared) {
    let (subject, detail) = match operation.credential_source.as_str() {
        "team" => {
            let name = operation.credential_name.clone().unwrap_or_default();
            let detail = format!(
                "operation #{} deploys {} to {}",
                operation.id,
                operation.image.as_deref().unwrap_or_default(),
                prepared.app.handle
            );
            if let Some(id) = operation.credential_id {
                if let Err(error) = state.store.record_credential_use(id, &detail).await {
                    tracing::warn!(%error, "could not record a credential's last use");
                }
            }
            (format!("credential:{name}"), detail)
        }
        "given" | "remembered" => (
            format!("app:{}", prepared.app.handle),
            format!(
                "operation #{} pulls {} with credentials {} (user {})",
                operation.id,
                operation.image.as_deref().unwrap_or_default(),
                credential_words(operation),
                operation.registry_username.as_deref().unwrap_or_default()
            ),
        ),
        _ => return,
    };
    if let Err(error) = state
        .store
        .record_audit(NewAuditEvent {
            team_id: operation.team_id,
            actor_id: operation.requested_by,
            action: "credential.use",
            subject: &subject,
            ok: true,
            detail: Some(&detail),
        })
        .await
    {
        tracing::warn!(%error, "could not audit a credential use");
    }
}

/// At start-up: every app's current release runs again (desired state lives in the
/// database). Runs in the background; a release that cannot start is logged.
pub fn reconcile(state: ServerState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(reason) = state.platform.unavailable().await {
            tracing::warn!(%reason, "releases are not started: the platform is unavailable");
            return;
        }
        let releases = match state.store.current_releases().await {
            Ok(releases) => releases,
            Err(error) => {
                tracing::error!(%error, "cannot read the releases to start");
                return;
            }
        };
        let mut started = 0usize;
        for (app, release) in releases {
            let env = match app_services::config(&state, app.id).await {
                Ok(values) => values
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect::<BTreeMap<_, _>>(),
                Err(error) => {
                    tracing::error!(%error, app = app.id, "cannot read an app's configuration");
                    continue;
                }
            };
            let image = match ImageReference::parse(&release.image)
                .and_then(|i| i.with_digest(&release.digest))
            {
                Ok(image) => image,
                Err(error) => {
                    tracing::error!(%error, app = app.id, "a release's image does not parse");
                    continue;
                }
            };
            let spec = ReleaseSpec {
                app: AppRef {
                    id: app.id,
                    name: format!("team-{}/{}", app.team_id, app.handle),
                },
                release_id: release.operation_id,
                image,
                env: release_env(&env),
                health_path: app.health_path.clone(),
                preferred_port: release.port.and_then(|p| u16::try_from(p).ok()),
            };
            match state.platform.ensure_running(spec).await {
                Ok(running) => {
                    started += 1;
                    tracing::info!(app = %app.handle, url = %running.url, "release running");
                }
                Err(error) => {
                    tracing::error!(%error, app = %app.handle, "could not start a release")
                }
            }
        }
        tracing::info!(started, "releases started");
    })
}
