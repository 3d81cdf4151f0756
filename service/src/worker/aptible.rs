//! Operations of apps on Aptible: Berth forwards each one to Aptible's API, as Aptible's own
//! CLI would, follows it there until it ends, and copies its log into Berth's (redacted like
//! every operation log).
//!
//! An operation is posted at most once: Aptible's id is recorded as soon as Aptible answers,
//! and an operation that already has one is only followed (after Berth restarts, say).
//!
//! A Dockerfile deploy is built by Aptible, from git: Berth first pushes the deploy's commit
//! from its mirror to the Aptible app's git remote, on a branch of its own
//! (`berth-deploy-<operation>`, never the default branch, whose push would deploy by itself,
//! without this deploy's configuration), with the team's deploy key; then it posts one
//! `deploy` of that branch with the configuration changes and the registry login in `env`:
//! one build, one restart.

use super::{credential_words, failure, record_credential_use, Done, Prepared, ReleaseRecord};
use crate::{
    builds,
    config::{ConfigChanges, PRIVATE_REGISTRY_HOST, PRIVATE_REGISTRY_PASSWORD},
    deploy_keys, platforms,
    worker::log::DbLog,
    Berth,
};
use domain::{CredentialSource, OperationKind, RepositoryUrl, Secret};
use platform::{
    aptible::{
        AptibleError, OperationRequest, OperationStatus as RemoteStatus,
        APTIBLE_PRIVATE_REGISTRY_PASSWORD, APTIBLE_PRIVATE_REGISTRY_USERNAME,
    },
    engine::{OperationLog, Step},
    git::GitError,
};
use std::{collections::BTreeMap, time::Duration};
use store::{AptibleTarget, ConfigChange, Operation};
use views::BaseCredential;

/// How often a forwarded operation is polled (Aptible's CLI polls every few seconds too).
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How long Berth follows one operation before giving up on it (Aptible may still finish
/// it; its outcome is then visible on Aptible's dashboard).
const FOLLOW_AT_MOST: Duration = Duration::from_secs(3 * 60 * 60);

/// Forwards `operation` to the Aptible app `target` and follows it to its end.
pub(super) async fn forward(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    target: &AptibleTarget,
    log: &DbLog,
    config: Vec<ConfigChange>,
) -> Result<Done, String> {
    let token = platforms::aptible_token(berth, operation.team_id)
        .await
        .map_err(failure)?;
    let remote_id = match berth
        .store
        .remote_operation_id(operation.id)
        .await
        .map_err(|e| format!("cannot read the operation: {e}"))?
    {
        Some(id) => {
            log.line(&format!(
                "Following Aptible operation {id} again (it was posted before Berth restarted)"
            ));
            id
        }
        None => {
            let request = if operation.git_ref.is_some() {
                push_for_deploy(berth, operation, prepared, target, log).await?
            } else {
                request_for(operation, prepared)?
            };
            if operation.kind == OperationKind::Configure && request.env.is_empty() {
                // Only Berth's own settings changed: Aptible has nothing to apply, and a
                // configure with nothing in it would restart the app for nothing.
                log.line("Only Berth's own settings changed; nothing to forward to Aptible.");
                return Ok(Done {
                    release: None,
                    config,
                    url: None,
                });
            }
            post(berth, operation, prepared, target, &token, request, log).await?
        }
    };
    log.step(if operation.git_ref.is_some() {
        Step::Build
    } else {
        Step::Start
    });
    follow(berth, operation, &token, remote_id, log).await?;
    copy_log(berth, operation, &token, remote_id, log).await;
    log.step(Step::Switch);
    // Aptible builds a Dockerfile deploy's image itself and says no digest: such a deploy
    // records no release here (its operation keeps the git ref and the commit).
    let release = match operation.kind {
        OperationKind::Deploy => match (&operation.image, &operation.digest) {
            (Some(image), Some(digest)) => Some(ReleaseRecord {
                image: image.clone(),
                digest: digest.clone(),
                port: None,
            }),
            _ => None,
        },
        OperationKind::Configure | OperationKind::Restart => None,
    };
    Ok(Done {
        release,
        config,
        url: Some(format!(
            "Aptible app {}/{} (operation {remote_id})",
            target.environment, target.app
        )),
    })
}

/// Posts the operation (never retried: a second POST would run it twice) and records
/// Aptible's id at once.
async fn post(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    target: &AptibleTarget,
    token: &Secret,
    request: OperationRequest,
    log: &DbLog,
) -> Result<i64, String> {
    if operation.kind == OperationKind::Deploy && operation.git_ref.is_none() {
        log.step(Step::Verify);
        match (&operation.image, &operation.digest) {
            (Some(image), Some(digest)) => log.line(&format!(
                "{image} resolved to {digest} before queuing; credentials: {}",
                credential_words(operation)
            )),
            (Some(image), None) => log.line(&format!(
                "{image} is not verified before forwarding (verification is off for this app: \
                 Aptible pulls it); credentials: {}",
                credential_words(operation)
            )),
            _ => {}
        }
        record_credential_use(berth, operation, prepared).await;
    }
    log.line(&format!(
        "Forwarding a {} operation to Aptible app {}/{} (id {}){}",
        operation.kind,
        target.environment,
        target.app,
        target.app_id,
        describe(&request)
    ));
    let created = match berth
        .aptible
        .create_operation(token, target.app_id, &request)
        .await
    {
        Ok(created) => created,
        Err(error) => return Err(remote_failure(berth, operation, error).await),
    };
    if let Err(error) = berth
        .store
        .set_remote_operation_id(operation.id, created.id)
        .await
    {
        // Aptible runs it either way; without the id a restart could not follow it.
        tracing::error!(%error, operation = operation.id, remote = created.id, "could not record Aptible's operation id");
    }
    log.line(&format!("Aptible operation {} created", created.id));
    Ok(created.id)
}

/// The branch of the Aptible app's git remote that a Dockerfile deploy pushes to and
/// deploys: Berth's own, one per operation.
fn deploy_branch(operation: &Operation) -> String {
    format!("berth-deploy-{}", operation.id)
}

/// A Dockerfile deploy's part before anything is posted: the commit's build plan read again
/// (which registry login the build pulls its base images with), the commit pushed to the
/// Aptible app's git remote on [`deploy_branch`]; answers the `deploy` request of that
/// branch. A failure here posts nothing.
async fn push_for_deploy(
    berth: &Berth,
    operation: &Operation,
    prepared: &Prepared,
    target: &AptibleTarget,
    log: &DbLog,
) -> Result<OperationRequest, String> {
    let (Some(git_ref), Some(commit)) = (&operation.git_ref, &operation.commit_sha) else {
        return Err("the deploy names no commit".into());
    };
    let aptible_app = format!("{}/{}", target.environment, target.app);
    let remote = target.git_repo.as_deref().ok_or_else(|| {
        format!(
            "Aptible app {aptible_app} has no git remote (Aptible gave no git_repo for it), so \
             Berth cannot push the commit there; nothing was sent to Aptible"
        )
    })?;
    let remote = RepositoryUrl::parse(remote).map_err(|e| {
        format!(
            "Aptible's git remote of {aptible_app} ({remote}) cannot be pushed to: {}; nothing \
             was sent to Aptible",
            e.message
        )
    })?;
    // The same plan as when the deploy was queued, for the login Aptible's build needs.
    let (repository, plan) =
        super::fetch_and_plan(berth, operation, prepared, log, git_ref, commit).await?;
    let mut env = changes_as_env(&prepared.changes);
    if let Some(line) = forward_team_login(&plan, prepared, &mut env) {
        log.line(&line);
    }
    record_credential_use(berth, operation, prepared).await;

    let branch = deploy_branch(operation);
    let key = deploy_keys::ssh_key(berth, operation.team_id)
        .await
        .map_err(failure)?;
    log.line(&format!(
        "Pushing commit {commit} to {remote} as branch {branch}, with the team's deploy key \
         {}",
        key.fingerprint
    ));
    repository
        .push(commit, &remote, &branch, &key)
        .await
        .map_err(|error| push_refused(error, &remote))?;
    log.line(&format!("Pushed {} to {branch}", commit.short()));
    Ok(OperationRequest::deploy_git(&branch, env))
}

/// Aptible's build pulls its base images with one login, `APTIBLE_PRIVATE_REGISTRY_*`.
/// When this deploy gives none and no base uses the one Aptible stored (the app's
/// configuration), the login of the team credential chosen for a private base goes with
/// the deploy, fresh each time (an ECR token, say); it is not kept in Berth's configuration,
/// since the team credential stays its source. Answers what the log says about it.
fn forward_team_login(
    plan: &builds::BuildPlan,
    prepared: &Prepared,
    env: &mut BTreeMap<String, Secret>,
) -> Option<String> {
    if prepared.changes.sets(PRIVATE_REGISTRY_PASSWORD)
        || plan
            .bases
            .iter()
            .any(|base| base.credential == BaseCredential::Configuration)
    {
        return None;
    }
    let mut team_bases = plan.bases.iter().filter_map(|base| match &base.credential {
        BaseCredential::Team(name) => Some((name, base.image.registry())),
        _ => None,
    });
    let (name, host) = team_bases.next()?;
    let (_, login) = plan.registry_credentials.iter().find(|(h, _)| h == host)?;
    env.insert(
        APTIBLE_PRIVATE_REGISTRY_USERNAME.to_owned(),
        Secret::new(login.username.clone()),
    );
    env.insert(
        APTIBLE_PRIVATE_REGISTRY_PASSWORD.to_owned(),
        login.secret.clone(),
    );
    let others: Vec<String> = team_bases
        .filter(|(_, other)| *other != host)
        .map(|(_, other)| other.to_string())
        .collect();
    Some(format!(
        "Aptible's build pulls with team credential {name} (for {host}), sent as \
         {APTIBLE_PRIVATE_REGISTRY_USERNAME}/{APTIBLE_PRIVATE_REGISTRY_PASSWORD}{}",
        if others.is_empty() {
            String::new()
        } else {
            format!(
                "; Aptible takes one registry login per build, so bases on {} must be \
                 public to it",
                others.join(", ")
            )
        }
    ))
}

/// Why the push failed, in the words of what to do; nothing was posted.
fn push_refused(error: GitError, remote: &RepositoryUrl) -> String {
    match error {
        GitError::PushKeyRefused { fingerprint, .. } => format!(
            "Aptible refused the team's deploy key ({fingerprint}): add the team's public key \
             (shown on the Platforms page and the Members page) to Aptible as an SSH key, then \
             deploy again. Nothing was sent to Aptible."
        ),
        other => format!(
            "Pushing the commit to Aptible's git remote {remote} failed: {}. Nothing was sent \
             to Aptible.",
            other.to_string().trim_end_matches('.')
        ),
    }
}

/// What Aptible is asked to do, exactly as Aptible's CLI asks it (Dockerfile deploys:
/// [`push_for_deploy`]).
fn request_for(operation: &Operation, prepared: &Prepared) -> Result<OperationRequest, String> {
    let env = changes_as_env(&prepared.changes);
    match operation.kind {
        OperationKind::Deploy => {
            let image = operation
                .image
                .as_ref()
                .ok_or("the deploy names no image")?;
            // Sent only when Berth has a login to give: with none, Aptible keeps using the
            // one it stored (an empty value would make it forget it).
            let login = match (operation.credential_source, &prepared.credentials) {
                (CredentialSource::Given | CredentialSource::Team, Some(login)) => {
                    Some((login.username.as_str(), &login.secret))
                }
                _ => None,
            };
            let mut request = OperationRequest::deploy_image(&image.to_string(), login);
            request.env = env;
            Ok(request)
        }
        OperationKind::Configure => Ok(OperationRequest::configure(env)),
        OperationKind::Restart => Ok(OperationRequest::restart()),
    }
}

/// What the request carries, by name (never a value).
fn describe(request: &OperationRequest) -> String {
    let mut parts = Vec::new();
    if let Some(git_ref) = &request.git_ref {
        parts.push(format!("branch {git_ref}"));
    }
    if let Some(image) = request
        .settings
        .get(platform::aptible::APTIBLE_DOCKER_IMAGE)
    {
        parts.push(format!("image {image}"));
    }
    if request.sensitive_settings.is_some() {
        parts.push("with the registry login".to_owned());
    }
    if !request.env.is_empty() {
        parts.push(format!(
            "configuration {}",
            request.env.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

/// The configuration changes as Aptible's `env`: a value sets, `""` unsets.
///
/// `APTIBLE_PRIVATE_REGISTRY_HOST` stays with Berth: it is Berth's own setting (which
/// registry the private-registry login may be sent to, checked before queuing), not one
/// of Aptible's, and would only become a variable of the running app there.
fn changes_as_env(changes: &ConfigChanges) -> BTreeMap<String, Secret> {
    changes
        .iter()
        .filter(|(key, _)| key.as_str() != PRIVATE_REGISTRY_HOST)
        .map(|(key, value)| {
            (
                key.to_string(),
                value.map_or_else(|| Secret::new(String::new()), |v| v.value.clone()),
            )
        })
        .collect()
}

/// Polls the operation until it ends; fails when Aptible says it failed.
async fn follow(
    berth: &Berth,
    operation: &Operation,
    token: &Secret,
    remote_id: i64,
    log: &DbLog,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut last = None;
    loop {
        let current = match berth.aptible.operation(token, remote_id).await {
            Ok(current) => current,
            Err(error) => return Err(remote_failure(berth, operation, error).await),
        };
        if last.as_ref() != Some(&current.status) {
            log.line(&format!(
                "Aptible operation {remote_id}: {}{}",
                current.status.as_str(),
                if current.cancelled {
                    " (cancellation requested)"
                } else {
                    ""
                }
            ));
            last = Some(current.status.clone());
        }
        match current.status {
            RemoteStatus::Succeeded => return Ok(()),
            RemoteStatus::Failed if current.cancelled => {
                copy_log(berth, operation, token, remote_id, log).await;
                return Err(format!(
                    "Aptible operation {remote_id} was cancelled; the release that served \
                     before keeps serving"
                ));
            }
            RemoteStatus::Failed => {
                copy_log(berth, operation, token, remote_id, log).await;
                return Err(format!(
                    "Aptible operation {remote_id} failed (its log is above); the release \
                     that served before keeps serving"
                ));
            }
            _ => {}
        }
        if started.elapsed() > FOLLOW_AT_MOST {
            return Err(format!(
                "Aptible operation {remote_id} did not end within {} hours; see it on \
                 Aptible's dashboard",
                FOLLOW_AT_MOST.as_secs() / 3600
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Copies Aptible's log of the operation into Berth's (each line redacted by the log).
async fn copy_log(
    berth: &Berth,
    operation: &Operation,
    token: &Secret,
    remote_id: i64,
    log: &DbLog,
) {
    match berth.aptible.operation_logs(token, remote_id).await {
        Ok(text) => {
            log.line(&format!("--- Aptible's log of operation {remote_id} ---"));
            for line in text.lines() {
                log.line(line);
            }
            log.line("--- end of Aptible's log ---");
        }
        Err(error) => {
            let error = remote_failure(berth, operation, error).await;
            log.line(&format!(
                "Aptible's log of operation {remote_id} could not be read: {error}"
            ));
        }
    }
}

/// An Aptible error in the operation's words; a refused token marks the team's connection.
async fn remote_failure(berth: &Berth, operation: &Operation, error: AptibleError) -> String {
    if let AptibleError::ReconnectNeeded { message } = &error {
        platforms::token_refused(berth, operation.team_id, message).await;
        return format!(
            "Aptible no longer accepts this team's token ({message}): an owner connects again \
             on the Platforms page, then deploy again"
        );
    }
    format!("Aptible: {error}")
}
