//! Operations of apps on Aptible: Berth forwards each one to Aptible's API, as Aptible's own
//! CLI would, follows it there until it ends, and copies its log into Berth's (redacted like
//! every operation log).
//!
//! An operation is posted at most once: Aptible's id is recorded as soon as Aptible answers,
//! and an operation that already has one is only followed (after Berth restarts, say).

use super::{credential_words, failure, record_credential_use, Done, Prepared, ReleaseRecord};
use crate::{config::ConfigChanges, platforms, worker::log::DbLog, Berth};
use domain::{CredentialSource, OperationKind, Secret};
use platform::{
    aptible::{AptibleError, OperationRequest, OperationStatus as RemoteStatus},
    engine::{OperationLog, Step},
};
use std::{collections::BTreeMap, time::Duration};
use store::{AptibleTarget, ConfigChange, Operation};

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
        None => post(berth, operation, prepared, target, &token, log).await?,
    };
    log.step(Step::Start);
    follow(berth, operation, &token, remote_id, log).await?;
    copy_log(berth, operation, &token, remote_id, log).await;
    log.step(Step::Switch);
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
    log: &DbLog,
) -> Result<i64, String> {
    let request = request_for(operation, prepared)?;
    log.step(Step::Verify);
    if operation.kind == OperationKind::Deploy {
        if let (Some(image), Some(digest)) = (&operation.image, &operation.digest) {
            log.line(&format!(
                "{image} resolved to {digest} before queuing; credentials: {}",
                credential_words(operation)
            ));
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

/// What Aptible is asked to do, exactly as Aptible's CLI asks it.
fn request_for(operation: &Operation, prepared: &Prepared) -> Result<OperationRequest, String> {
    let env = changes_as_env(&prepared.changes);
    match operation.kind {
        OperationKind::Deploy if operation.git_ref.is_some() => Err(
            "Dockerfile deploys of apps on Aptible are not forwarded yet: deploy an image, or \
             push to the app's Aptible git remote yourself"
                .into(),
        ),
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
fn changes_as_env(changes: &ConfigChanges) -> BTreeMap<String, Secret> {
    changes
        .iter()
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
