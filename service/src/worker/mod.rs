//! The operation worker: claims queued operations from the database and has the platform
//! carry them out.
//!
//! Ordering and exclusion live in the database, not here: `claim_next_operation` only hands
//! out the oldest queued operation of an app with nothing running (a partial unique index
//! makes "one running per app" a database rule), so several Berth processes on one
//! PostgreSQL database can share the queue. Each claim is a lease renewed by a heartbeat; a
//! lease that runs out means its process died, and the operation is failed with that reason
//! (a failed operation never moves the app's current release, so the previous one serves on).

mod aptible;
mod log;

pub use log::{LOG_FULL_MARKER, MAX_OPERATION_LOG_BYTES};

use crate::{
    audit::{self, app_subject, credential_subject},
    builds::{self, PlanRequest},
    config::{self, ConfigChanges, Environment, PRIVATE_REGISTRY_PASSWORD},
    disk, redaction, Berth, Error,
};
use domain::{CredentialName, CredentialSource, ImageReference, OperationKind, Secret};
use log::DbLog;
use platform::{
    engine::{is_built_image, AppRef, BuildSpec, OperationLog, ReleaseSpec, RunningRelease, Step},
    registry::BasicCredentials,
};
use std::time::Duration;
use store::{ConfigChange, Finish, NewRelease, Operation, SecretSlot};
use tokio::task::JoinSet;

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub lease: Duration,
    /// How often the queue is polled for operations queued by other processes.
    pub poll: Duration,
    /// When Berth stops: how long running operations may take to finish before they are
    /// handed back to the queue.
    pub drain: Duration,
}

/// Runs the worker until `stop` is set (Berth is stopping); then it claims nothing more,
/// lets running operations finish for [`WorkerSettings::drain`], hands back the ones still
/// running (they run again, first of their app's, on the next Berth to claim them) and
/// ends.
pub fn spawn(
    berth: Berth,
    settings: WorkerSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let worker_id = format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        store::random_token(6)
    );
    tokio::spawn(run(berth, settings, worker_id, stop))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "berth".to_owned())
}

async fn run(
    berth: Berth,
    settings: WorkerSettings,
    worker_id: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let lease_ms = settings.lease.as_millis() as i64;
    let mut running = JoinSet::new();
    // Which operation each task runs, to hand back the unfinished ones.
    let mut operations: std::collections::HashMap<tokio::task::Id, i64> = Default::default();
    tracing::info!(worker = %worker_id, concurrency = settings.concurrency, "operation worker started");
    // Leases last many polls, so looking for expired ones once a poll is enough; an
    // operation queued in this process is claimed without waiting for those two writes.
    let mut leases_checked: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if leases_checked.is_none_or(|at| at.elapsed() >= settings.poll) {
            leases_checked = Some(tokio::time::Instant::now());
            fail_expired(&berth).await;
        }
        while running.len() < settings.concurrency {
            match berth.store.claim_next_operation(&worker_id, lease_ms).await {
                Ok(Some(operation)) => {
                    let berth = berth.clone();
                    let worker_id = worker_id.clone();
                    let lease = settings.lease;
                    let id = operation.id;
                    let task = running.spawn(async move {
                        execute(berth, worker_id, lease, operation).await;
                    });
                    operations.insert(task.id(), id);
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not claim an operation");
                    break;
                }
            }
        }
        tokio::select! {
            _ = berth.operations_queued.notified() => {}
            _ = tokio::time::sleep(settings.poll) => {}
            () = async {
                // With nobody left to set it, the worker runs until the process ends.
                if stop.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                match done {
                    Ok((task, ())) => { operations.remove(&task); }
                    Err(error) => {
                        operations.remove(&error.id());
                        tracing::error!(%error, "an operation task panicked");
                    }
                }
            }
        }
    }
    drain(&berth, &worker_id, running, operations, settings.drain).await;
}

/// Fails the operations whose worker stopped renewing their lease (its process died).
async fn fail_expired(berth: &Berth) {
    match berth
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
}

/// Berth is stopping: lets the running operations finish within `patience`, then stops
/// the others and puts them back in the queue. A deploy stopped half-way leaves nothing
/// running (its new release was never accepted) and the previous release serving.
async fn drain(
    berth: &Berth,
    worker_id: &str,
    mut running: JoinSet<()>,
    mut operations: std::collections::HashMap<tokio::task::Id, i64>,
    patience: Duration,
) {
    if running.is_empty() {
        return;
    }
    tracing::info!(
        operations = running.len(),
        patience_secs = patience.as_secs(),
        "Berth is stopping: waiting for running operations"
    );
    let deadline = tokio::time::Instant::now() + patience;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, running.join_next_with_id()).await
    {
        let task = match done {
            Ok((task, ())) => task,
            Err(error) => error.id(),
        };
        operations.remove(&task);
    }
    running.shutdown().await;
    for (_, id) in operations {
        let _ = berth
            .store
            .append_operation_log(
                id,
                &[format!(
                    "Berth stopped before this operation finished ({} s allowed); it was put back \
                     in the queue and runs again when Berth starts.",
                    patience.as_secs()
                )],
            )
            .await;
        match berth.store.hand_back_operation(id, worker_id).await {
            Ok(true) => {
                tracing::warn!(
                    operation = id,
                    "an unfinished operation was put back in the queue"
                );
                berth.live.wake(id).await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, operation = id, "could not put an unfinished operation back in the queue")
            }
        }
    }
}

/// A task that is aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What an operation needs, opened from the database.
struct Prepared {
    app: store::App,
    app_ref: AppRef,
    /// The registry login an image deploy pulls with.
    credentials: Option<BasicCredentials>,
    /// The configuration changes this operation applies.
    changes: ConfigChanges,
    /// The environment the new release gets: current configuration with the changes.
    env: Environment,
    /// What must never appear in the operation's log or the release's output: the app's
    /// secrets before and after the changes, and the registry login given with the
    /// operation ([`redaction::prepare`]d).
    secrets: Vec<Secret>,
}

impl Prepared {
    /// A release of `image` for this operation, with the operation's environment.
    fn release(&self, operation: &Operation, image: ImageReference) -> ReleaseSpec {
        ReleaseSpec::new(
            self.app_ref.clone(),
            operation.id,
            image,
            self.env.for_release(),
            self.app.health_path.clone(),
        )
        .redacting(self.secrets.clone())
    }
}

async fn execute(berth: Berth, worker_id: String, lease: Duration, operation: Operation) {
    let id = operation.id;
    let started = std::time::Instant::now();
    let prepared = prepare(&berth, &operation).await;
    let secrets = prepared
        .as_ref()
        .map(|p| p.secrets.clone())
        .unwrap_or_default();
    let (log, writer) = DbLog::start(berth.store.clone(), berth.live.clone(), id, secrets);

    // Aborted when this task ends in any way (panic and abort included), so that a lease
    // is never kept alive for an operation nobody runs.
    let heartbeat = AbortOnDrop({
        let store = berth.store.clone();
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
    });

    tracing::info!(operation = id, kind = %operation.kind, app = %operation.app_handle, "operation started");
    let mut pruning = None;
    let outcome = match prepared {
        Ok(prepared) => {
            let outcome = perform(&berth, &operation, &prepared, log.as_ref()).await;
            if outcome.is_ok() {
                pruning = Some(prepared);
            }
            outcome
        }
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
    drop(heartbeat);
    match berth.store.finish_operation(id, &worker_id, finish).await {
        Ok(finished) => {
            // Counted as soon as it is recorded, not after the switch and the pruning below.
            let (kind, status) = (operation.kind.to_string(), finished.status.to_string());
            metrics::counter!("berth_operations_total", "kind" => kind.clone(), "outcome" => status.clone())
                .increment(1);
            metrics::histogram!("berth_operation_duration_seconds", "kind" => kind, "outcome" => status)
                .record(started.elapsed().as_secs_f64());
            berth.live.wake(id).await;
            // Recorded: what the new release replaced may stop now, and then its image
            // may go (the pruning's lines end the operation's log).
            berth.platform.settle(operation.app_id).await;
            if let (Some(prepared), Ok(done)) = (&pruning, &outcome) {
                let lines = CollectedLog::default();
                after_deploy(&berth, &operation, prepared, done, &lines).await;
                let lines = lines.0.into_inner().unwrap_or_default();
                if !lines.is_empty() {
                    if let Err(error) = berth.store.append_operation_log(id, &lines).await {
                        tracing::warn!(%error, operation = id, "could not log the pruning");
                    }
                    berth.live.wake(id).await;
                }
            }
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
    image: ImageReference,
    digest: domain::Digest,
    port: Option<i64>,
}

impl Done {
    fn running(
        image: ImageReference,
        digest: domain::Digest,
        running: RunningRelease,
        config: Vec<ConfigChange>,
    ) -> Self {
        Done {
            release: Some(ReleaseRecord {
                image,
                digest,
                port: Some(i64::from(running.port)),
            }),
            config,
            url: Some(running.url),
        }
    }
}

/// After a deploy on this server succeeded and was recorded, once the release it replaced
/// stopped: the images the team no longer keeps are removed, and the app's disk use
/// measured. (The images of queued and running operations are kept, so an operation of the
/// app that starts meanwhile loses nothing.)
async fn after_deploy(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    done: &Done,
    log: &dyn OperationLog,
) {
    let (OperationKind::Deploy, None, Some(release)) = (
        operation.kind,
        prepared.app.platform.aptible(),
        &done.release,
    ) else {
        return;
    };
    let deployed = release.image.pinned(&release.digest);
    disk::prune_after_deploy(berth, &prepared.app, &deployed, log).await;
}

/// Why an operation failed, as its `error` says it: an internal failure's cause is logged
/// for the operator and summarised here.
fn failure(error: Error) -> String {
    match error {
        Error::Refused(error) => error.to_string(),
        Error::Internal { cause } => {
            tracing::error!(%cause, "an operation failed on Berth's side");
            "Berth could not carry out this operation (see the server log)".to_owned()
        }
    }
}

/// An image deploy with an `ecr` team credential pulls with a token minted for the pull (or
/// one from memory that stays valid for hours), not the one minted when the deploy was
/// verified: a deploy that waited in the queue never pulls with a token about to lapse.
/// Other logins are the ones sealed with the operation.
async fn fresh_ecr_login(
    berth: &Berth,
    operation: &Operation,
    queued: BasicCredentials,
) -> Result<BasicCredentials, String> {
    let (CredentialSource::Team, Some(id), None) = (
        operation.credential_source,
        operation.credential_id,
        &operation.git_ref,
    ) else {
        return Ok(queued);
    };
    let credential = match berth.store.credential_by_id(id).await {
        Ok(Some(credential)) if credential.kind == domain::CredentialKind::Ecr => credential,
        _ => return Ok(queued),
    };
    match crate::credentials::team_login(berth, &credential).await {
        Ok(Ok(login)) => Ok(login),
        Ok(Err(aws)) => Err(format!(
            "team credential {} could not get a registry token from AWS: {aws}",
            credential.name
        )),
        Err(e) => Err(format!(
            "cannot read team credential {}: {}",
            credential.name,
            failure(e)
        )),
    }
}

async fn prepare(berth: &Berth, operation: &Operation) -> Result<Prepared, String> {
    let app = berth
        .store
        .app_by_id(operation.app_id)
        .await
        .map_err(|e| format!("cannot read the app: {e}"))?
        .ok_or("the app no longer exists")?;
    let (registry_sealed, env_sealed) = berth
        .store
        .operation_secrets(operation.id)
        .await
        .map_err(|e| format!("cannot read the operation: {e}"))?;
    let credentials = match (&operation.registry_username, registry_sealed) {
        (Some(username), Some(sealed)) => Some(BasicCredentials::new(
            username.clone(),
            berth
                .secrets
                .open(&SecretSlot::OperationRegistry(operation.id), &sealed)
                .map_err(failure)?,
        )),
        (_, None)
            if operation.credential_source != CredentialSource::None
                && operation.kind == OperationKind::Deploy
                && operation.git_ref.is_none() =>
        {
            return Err("the credentials of this deploy are gone (it was interrupted and its secrets discarded); deploy again".into())
        }
        _ => None,
    };
    let credentials = match credentials {
        Some(queued) => Some(fresh_ecr_login(berth, operation, queued).await?),
        None => None,
    };
    let changes = match env_sealed {
        Some(sealed) => {
            let json = berth
                .secrets
                .open(&SecretSlot::OperationEnv(operation.id), &sealed)
                .map_err(failure)?;
            ConfigChanges::from_json(&json).map_err(failure)?
        }
        None => ConfigChanges::default(),
    };
    let current = Environment::load(berth, app.id)
        .await
        .map_err(|e| format!("cannot read the configuration: {}", failure(e)))?;
    let mut secrets = redaction::app_secrets(berth, &app, &current)
        .await
        .map_err(|e| format!("cannot read the app's secrets: {}", failure(e)))?;
    secrets.extend(changes.secret_values().cloned());
    secrets.extend(credentials.iter().map(|c| c.secret.clone()));
    let secrets = redaction::prepare(secrets);
    let env = current.with(&changes);
    let app_ref = app_ref(berth, &app).await;
    Ok(Prepared {
        app,
        app_ref,
        credentials,
        changes,
        env,
        secrets,
    })
}

async fn perform(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    log: &DbLog,
) -> Result<Done, String> {
    let config = config::sealed_changes(&berth.secrets, prepared.app.id, &prepared.changes);
    if !prepared.changes.is_empty() {
        let names: Vec<String> = prepared
            .changes
            .iter()
            .map(|(k, v)| format!("{}{k}", if v.is_some() { "" } else { "-" }))
            .collect();
        log.line(&format!("Configuration changes: {}", names.join(", ")));
    }
    if let Some(target) = prepared.app.platform.aptible() {
        return aptible::forward(berth, operation, prepared, &target, log, config).await;
    }
    match operation.kind {
        OperationKind::Deploy if operation.git_ref.is_some() => {
            build_and_deploy(berth, operation, prepared, log, config).await
        }
        OperationKind::Deploy => {
            let (Some(image), Some(digest), Some(pinned)) = (
                &operation.image,
                &operation.digest,
                operation.pinned_image(),
            ) else {
                return Err("the deploy names no image".into());
            };
            if is_built_image(image) {
                let release = ReleaseRecord {
                    image: image.clone(),
                    digest: digest.clone(),
                    port: None,
                };
                return run_build_again(berth, operation, prepared, log, release, config).await;
            }
            log.step(Step::Verify);
            log.line(&format!(
                "{image} resolved to {digest} before queuing; credentials: {}",
                credential_words(operation)
            ));
            record_credential_use(berth, operation, prepared).await;
            let running = berth
                .platform
                .deploy(
                    prepared.release(operation, pinned),
                    prepared.credentials.clone(),
                    log,
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(Done::running(
                image.clone(),
                digest.clone(),
                running,
                config,
            ))
        }
        OperationKind::Configure | OperationKind::Restart => {
            let current = match prepared.app.current_release_id {
                Some(id) => berth
                    .store
                    .release(id)
                    .await
                    .map_err(|e| format!("cannot read the current release: {e}"))?,
                None => None,
            };
            let Some(current) = current else {
                if operation.kind == OperationKind::Restart {
                    return Err("the app has no release to restart; deploy it first".into());
                }
                log.line("The app has no release yet: the configuration is stored and applies from its first deploy.");
                return Ok(Done {
                    release: None,
                    config,
                    url: None,
                });
            };
            let running = berth
                .platform
                .restart(prepared.release(operation, current.pinned_image()), log)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Done::running(
                current.image,
                current.digest,
                running,
                config,
            ))
        }
    }
}

/// A Dockerfile deploy: fetch the commit, plan the build (credentials for every base image,
/// by the same rule as when it was queued), build with the platform, then run the built
/// image like any release.
async fn build_and_deploy(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    log: &DbLog,
    config: Vec<ConfigChange>,
) -> Result<Done, String> {
    let (Some(git_ref), Some(commit)) = (&operation.git_ref, &operation.commit_sha) else {
        return Err("the deploy names no commit".into());
    };
    let (repository, plan) =
        fetch_and_plan(berth, operation, prepared, log, git_ref, commit).await?;
    record_credential_use(berth, operation, prepared).await;
    let source_dir = builds::checkout(berth, &repository, commit, operation.id)
        .await
        .map_err(failure)?;
    let built = berth
        .platform
        .build(
            BuildSpec {
                app: prepared.app_ref.clone(),
                operation_id: operation.id,
                source_dir: source_dir.clone(),
                context: plan.context.clone(),
                dockerfile: plan.dockerfile.clone(),
                build_args: plan.build_args.clone(),
                registry_credentials: plan.registry_credentials.clone(),
            },
            log,
        )
        .await;
    let _ = tokio::fs::remove_dir_all(&source_dir).await;
    let built = built.map_err(|e| e.to_string())?;
    if let Err(error) = berth
        .store
        .set_operation_image(operation.id, &built.image, &built.digest)
        .await
    {
        tracing::warn!(%error, operation = operation.id, "could not record the built image");
    }
    log.line(&format!("Built {} ({})", built.image, built.digest));
    let running = berth
        .platform
        .deploy_built(prepared.release(operation, built.pinned()), log)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Done::running(built.image, built.digest, running, config))
}

/// A redeploy of the image an earlier Dockerfile deploy built: it exists only in this
/// server's image storage, so it runs from there (nothing is fetched, built or pulled) while
/// it is kept, and a pruned one must be built again from its commit.
async fn run_build_again(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    log: &DbLog,
    built: ReleaseRecord,
    config: Vec<ConfigChange>,
) -> Result<Done, String> {
    let pinned = built.image.pinned(&built.digest);
    log.step(Step::Verify);
    log.line(&format!(
        "{pinned} was built on this server{}; running it again from the image storage",
        operation
            .commit_sha
            .as_ref()
            .map(|commit| format!(" from commit {}", commit.short()))
            .unwrap_or_default()
    ));
    match berth.platform.has_image(&prepared.app_ref, &pinned).await {
        Ok(true) => {}
        Ok(false) => return Err(disk::BUILD_PRUNED.into()),
        Err(error) => return Err(error.to_string()),
    }
    let running = berth
        .platform
        .deploy_built(prepared.release(operation, pinned), log)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Done::running(built.image, built.digest, running, config))
}

/// A Dockerfile deploy's first part, wherever it builds: fetch the commit and plan the build
/// by the same rule as when it was queued (which credential pulls each base image), with the
/// plan's logins hidden from the log and each base named in it.
async fn fetch_and_plan(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    log: &DbLog,
    git_ref: &domain::GitRefName,
    commit: &domain::CommitId,
) -> Result<(platform::git::Repository, builds::BuildPlan), String> {
    log.step(Step::Verify);
    log.line(&format!(
        "Fetching {} for {git_ref} ({commit})",
        prepared
            .app
            .git_url
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ));
    let repository = builds::fetch(berth, &prepared.app).await.map_err(failure)?;
    // The team credential the deploy was checked with pulls its registry's bases again.
    let named = match operation.credential_source {
        CredentialSource::Team => operation
            .credential_name
            .as_deref()
            .and_then(|name| CredentialName::parse(name).ok()),
        _ => None,
    };
    let plan = builds::plan_build(
        berth,
        &prepared.app,
        PlanRequest {
            repository: &repository,
            commit,
            environment: &prepared.env,
            credentials_given: prepared.changes.sets(PRIVATE_REGISTRY_PASSWORD),
            registry_fields: false,
            credential: named.as_ref(),
        },
    )
    .await
    .map_err(failure)?;
    // The team credentials chosen for the bases are secrets of this operation too.
    log.hide(
        plan.registry_credentials
            .iter()
            .map(|(_, login)| login.secret.clone()),
    );
    for base in &plan.bases {
        log.line(&format!(
            "Base image {} (line {}): credentials from {}",
            base.image,
            base.line,
            String::from(base.credential.clone())
        ));
    }
    Ok((repository, plan))
}

fn credential_words(operation: &Operation) -> String {
    match operation.credential_source {
        CredentialSource::Team => format!(
            "team credential {} (version {})",
            operation.credential_name.as_deref().unwrap_or("?"),
            operation.credential_version.unwrap_or_default()
        ),
        CredentialSource::Given if operation.git_ref.is_some() => {
            "given with this deploy (APTIBLE_PRIVATE_REGISTRY_*)".into()
        }
        CredentialSource::Remembered if operation.git_ref.is_some() => {
            "the app's APTIBLE_PRIVATE_REGISTRY_* configuration".into()
        }
        CredentialSource::Given => "given with this deploy".into(),
        CredentialSource::Remembered => "remembered on the app".into(),
        CredentialSource::None => "none".into(),
    }
}

/// Every use of a credential is audited; a team credential also records its last use.
async fn record_credential_use(berth: &Berth, operation: &Operation, prepared: &Prepared) {
    let image = operation
        .image
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    // A build is named by its ref: its image is Berth's own local name for the result.
    let (deploys, pulls) = match &operation.git_ref {
        Some(git_ref) => (
            format!("builds {git_ref}"),
            format!("builds {git_ref}, pulling its base images"),
        ),
        None => (format!("deploys {image}"), format!("pulls {image}")),
    };
    let (subject, detail) = match operation.credential_source {
        CredentialSource::Team => {
            let name = operation.credential_name.clone().unwrap_or_default();
            let detail = format!(
                "operation #{} {deploys} to {}",
                operation.id, prepared.app.handle
            );
            if let Some(id) = operation.credential_id {
                if let Err(error) = berth.store.record_credential_use(id, &detail).await {
                    tracing::warn!(%error, "could not record a credential's last use");
                }
            }
            (credential_subject(&name), detail)
        }
        CredentialSource::Given | CredentialSource::Remembered => (
            app_subject(prepared.app.handle.as_str()),
            format!(
                "operation #{} {pulls} with credentials {}{}",
                operation.id,
                credential_words(operation),
                operation
                    .registry_username
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .map(|u| format!(" (user {u})"))
                    .unwrap_or_default()
            ),
        ),
        CredentialSource::None => return,
    };
    if let Err(error) = audit::record(
        berth,
        operation.team_id,
        operation.requested_by,
        "credential.use",
        &subject,
        true,
        &detail,
    )
    .await
    {
        tracing::warn!(%error, "could not audit a credential use");
    }
}

/// At start-up, makes `app`'s current release run: adopted or started from the image
/// storage, or, when its image is not there (a backup restored on a new machine, a storage
/// that was lost), pulled again first with the credentials a deploy of it would use. A
/// built image cannot be pulled: its app must deploy the commit again.
async fn start_current(
    berth: &Berth,
    app: &store::App,
    spec: ReleaseSpec,
) -> std::result::Result<RunningRelease, String> {
    let in_storage = berth
        .platform
        .has_image(&spec.app, &spec.image)
        .await
        .unwrap_or(true);
    if in_storage || platform::engine::is_built_image(&spec.image) {
        return berth
            .platform
            .ensure_running(spec)
            .await
            .map_err(|e| e.to_string());
    }
    tracing::info!(app = %app.handle, image = %spec.image, "the current release's image is not on this server; pulling it again");
    let resolver = crate::resolver::Resolver::for_image_app(berth, app)
        .await
        .map_err(|e| e.to_string())?;
    let chosen = resolver
        .choose(
            spec.image.registry(),
            &crate::resolver::CredentialChoice::Auto,
        )
        .await
        .map_err(|e| e.to_string())?;
    let running = berth
        .platform
        .deploy(spec, chosen.login().cloned(), &StartUpLog(app.id))
        .await
        .map_err(|e| e.to_string())?;
    // Nothing ran before it here; whatever it replaced may stop.
    berth.platform.settle(app.id).await;
    Ok(running)
}

/// Lines kept to be written to an operation's log after it ended.
#[derive(Default)]
struct CollectedLog(std::sync::Mutex<Vec<String>>);

impl OperationLog for CollectedLog {
    fn step(&self, _step: Step) {}
    fn line(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.to_owned());
        }
    }
}

/// Where a release started without an operation (at start-up) reports: Berth's own log.
struct StartUpLog(i64);

impl OperationLog for StartUpLog {
    fn step(&self, _step: Step) {}
    fn line(&self, line: &str) {
        tracing::debug!(app = self.0, line, "starting a release");
    }
}

/// How the platform knows `app`: with its stable address when the platform routes (its
/// stable port is given at its first deploy and kept for good). Without a port (they are
/// all taken, or the database failed) the app is served at its release's own address, and
/// the reason is logged.
async fn app_ref(berth: &Berth, app: &store::App) -> AppRef {
    let route = match berth.platform.route_ports() {
        Some(ports) if app.platform.aptible().is_none() => {
            match berth.store.route_port(app.id, ports).await {
                Ok(port) => Some(platform::engine::AppRoute {
                    app: app.handle.to_string(),
                    team: app.team_handle.to_string(),
                    port,
                }),
                Err(error) => {
                    tracing::error!(%error, app = app.id, "the app has no stable port; it is served at its release's address");
                    None
                }
            }
        }
        _ => None,
    };
    AppRef {
        id: app.id,
        team_id: app.team_id,
        name: format!("{}/{}", app.team_handle, app.handle),
        route,
    }
}

/// At start-up: every app's current release runs (desired state lives in the database):
/// adopted when it kept running while Berth was away, started otherwise; what else an
/// earlier Berth left running is stopped. Runs in the background; a release that cannot
/// start is logged.
pub fn reconcile(berth: Berth) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(reason) = berth.platform.unavailable().await {
            tracing::warn!(%reason, "releases are not started: the platform is unavailable");
            return;
        }
        let releases = match berth.store.current_releases().await {
            Ok(releases) => releases,
            Err(error) => {
                tracing::error!(%error, "cannot read the releases to start");
                return;
            }
        };
        let mut started = 0usize;
        for (app, release) in releases {
            let loaded = match Environment::load(&berth, app.id).await {
                Ok(env) => redaction::app_secrets(&berth, &app, &env)
                    .await
                    .map(|secrets| (env, redaction::prepare(secrets))),
                Err(error) => Err(error),
            };
            let (env, secrets) = match loaded {
                Ok(loaded) => loaded,
                Err(error) => {
                    tracing::error!(error = %error, app = app.id, "cannot read an app's configuration");
                    continue;
                }
            };
            let spec = ReleaseSpec::new(
                app_ref(&berth, &app).await,
                release.operation_id,
                release.pinned_image(),
                env.for_release(),
                app.health_path.clone(),
            )
            .redacting(secrets)
            .on_port(release.port.and_then(|p| u16::try_from(p).ok()));
            match start_current(&berth, &app, spec).await {
                Ok(running) => {
                    started += 1;
                    tracing::info!(app = %app.handle, url = %running.url, "release running");
                }
                Err(error) => {
                    tracing::error!(%error, app = %app.handle, "could not start a release")
                }
            }
        }
        berth.platform.reconciled().await;
        tracing::info!(started, "releases running");
    })
}
