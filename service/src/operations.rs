//! Operations other than deploys — configure and restart — and what can be done with any
//! operation: read it and its log, cancel it while it is queued, deploy its exact digest
//! again.

use crate::{
    apps,
    authz::{self, authorize, authorize_team_id},
    config::ConfigChanges,
    deploys::{self, DeployRequest, DeploySource},
    present,
    resolver::{CredentialChoice, Resolver},
    Berth, Error, Result,
};
use domain::{OperationKind, OperationStatus, Role, Secret};
use store::{
    AppChangesOnEnqueue, NewOperation, Operation, OperationSecrets, SecretSlot, TeamAccess,
};
use views::OperationPage;

/// Queues a configure operation: the changes are applied, and the running release restarted
/// with them, when it succeeds.
pub async fn configure(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    changes: ConfigChanges,
) -> Result<(TeamAccess, Operation)> {
    if changes.is_empty() {
        return Err(Error::invalid(
            "env",
            "Give at least one variable to set or unset.",
        ));
    }
    let access = authorize(&berth.store, actor, team, Role::Deployer, "configure apps").await?;
    let app = apps::load(berth, &access, handle).await?;
    let current = crate::config::Environment::load(berth, app.id).await?;
    crate::builds::check_private_host_binding(&current, &changes, "env")?;
    if app.current_release_id.is_some() {
        berth.ready_for(&app).await?;
    }
    let new =
        NewOperation::configure(access.team_id, app.id, actor).with_config_changes(changes.names());
    let operation = queue(berth, new, None, &changes, AppChangesOnEnqueue::default()).await?;
    tracing::info!(team = %access.handle, app = %handle, operation = operation.id, by = actor, "configure queued");
    Ok((access, operation))
}

/// Queues a restart of the running release.
pub async fn restart(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
) -> Result<(TeamAccess, Operation)> {
    let access = authorize(&berth.store, actor, team, Role::Deployer, "restart apps").await?;
    let app = apps::load(berth, &access, handle).await?;
    if app.current_release_id.is_none() {
        return Err(Error::invalid(
            "",
            "This app has no release yet: deploy it first.",
        ));
    }
    berth.ready_for(&app).await?;
    let operation = queue(
        berth,
        NewOperation::restart(access.team_id, app.id, actor),
        None,
        &ConfigChanges::default(),
        AppChangesOnEnqueue::default(),
    )
    .await?;
    Ok((access, operation))
}

/// Queues `new` with the secrets it carries until it ends — the registry password given
/// with a deploy and the configuration changes, each sealed with the operation's id — and
/// the app changes that go with it, in one transaction; then wakes the worker.
pub(crate) async fn queue(
    berth: &Berth,
    new: NewOperation,
    registry_password: Option<&Secret>,
    changes: &ConfigChanges,
    app_changes: AppChangesOnEnqueue,
) -> Result<Operation> {
    let operation = berth
        .store
        .enqueue_operation(
            new,
            |id| OperationSecrets {
                registry: registry_password
                    .map(|p| berth.secrets.seal(&SecretSlot::OperationRegistry(id), p)),
                env: (!changes.is_empty()).then(|| {
                    berth
                        .secrets
                        .seal(&SecretSlot::OperationEnv(id), &changes.to_json())
                }),
            },
            app_changes,
        )
        .await?;
    berth.operations_queued.notify_one();
    Ok(operation)
}

/// Operation `id`, when `actor` has at least `needed` in its team.
async fn authorized(
    berth: &Berth,
    actor: i64,
    id: i64,
    needed: Role,
    action: &str,
) -> Result<(TeamAccess, Operation)> {
    let operation = berth
        .store
        .operation(id)
        .await?
        .ok_or_else(Error::not_found)?;
    let access = authorize_team_id(&berth.store, actor, operation.team_id, needed, action).await?;
    Ok((access, operation))
}

/// An operation by id for its live view, and whether `actor` may read its log lines too
/// (otherwise the view follows its status only).
pub async fn watch(berth: &Berth, actor: i64, id: i64) -> Result<(Operation, bool)> {
    let (access, operation) = get(berth, actor, id).await?;
    Ok((operation, authz::may_read_logs(&access)))
}

/// An operation by id, for a member of its team.
pub async fn get(berth: &Berth, actor: i64, id: i64) -> Result<(TeamAccess, Operation)> {
    authorized(berth, actor, id, Role::Viewer, "see operations").await
}

/// Cancels a queued operation (a running one finishes or fails on its own).
pub async fn cancel(berth: &Berth, actor: i64, id: i64) -> Result<(TeamAccess, Operation)> {
    let (access, operation) =
        authorized(berth, actor, id, Role::Deployer, "cancel operations").await?;
    // Forwarded to Aptible: Aptible cancels it (it then ends failed, and Berth's operation
    // with it, when the worker following it sees that).
    if let Some(remote) = berth.store.remote_operation_id(id).await? {
        if !operation.is_final() {
            let token = crate::platforms::aptible_token(berth, operation.team_id).await?;
            if let Err(error) = berth.aptible.cancel_operation(&token, remote).await {
                return Err(crate::platforms::api_error(berth, operation.team_id, error).await);
            }
            tracing::info!(
                operation = id,
                remote,
                by = actor,
                "cancellation requested on Aptible"
            );
            return Ok((access, operation));
        }
    }
    if !berth.store.cancel_operation(id).await? {
        return Err(Error::conflict(
            "",
            format!(
                "Operation #{id} is {} and can no longer be cancelled; only queued operations (and operations running on Aptible) can.",
                operation.status
            ),
        ));
    }
    let cancelled = berth
        .store
        .operation(id)
        .await?
        .ok_or_else(Error::not_found)?;
    Ok((access, cancelled))
}

/// Redeploys the exact digest an earlier deploy ran, with the app's current credentials.
pub async fn redeploy(berth: &Berth, actor: i64, id: i64) -> Result<(TeamAccess, Operation)> {
    let (access, earlier) = get(berth, actor, id).await?;
    let Some(pinned) = earlier.pinned_image() else {
        return Err(Error::invalid(
            "",
            "Only deploys of an image can be redeployed.",
        ));
    };
    if platform::engine::is_built_image(&pinned) {
        return deploys::redeploy_build(berth, actor, &access.handle, &earlier, pinned).await;
    }
    deploys::deploy(
        berth,
        actor,
        &access.handle,
        earlier.app_handle.as_str(),
        DeployRequest {
            source: Some(DeploySource::Image(pinned)),
            credentials: CredentialChoice::Auto,
            env: ConfigChanges::default(),
            private_registry_host: None,
        },
    )
    .await
}

/// When the tag a finished deploy named now resolves to another digest: that digest.
pub async fn tag_moved(berth: &Berth, operation: &Operation) -> Option<String> {
    let image = operation.image.as_ref()?;
    if image.tag().is_none() || image.digest().is_some() {
        return None;
    }
    let app = berth.store.app_by_id(operation.app_id).await.ok()??;
    let resolver = Resolver::for_image_app(berth, &app).await.ok()?;
    let chosen = resolver
        .choose(image.registry(), &CredentialChoice::Auto)
        .await
        .ok()?;
    let verified = berth
        .registry
        .verify(image.registry(), chosen.login(), Some(image))
        .await
        .ok()?;
    let digest = verified.image?.digest;
    (Some(&digest) != operation.digest.as_ref()).then(|| digest.to_string())
}

/// An operation's page: the operation, its log so far and, for a finished deploy of a tag,
/// whether the tag now names another digest.
pub async fn page(berth: &Berth, actor: i64, id: i64) -> Result<OperationPage> {
    // Asking the registry must not hold the page up for long.
    const TAG_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
    const MAX_LOG_LINES: i64 = 10_000;
    let (access, operation) = get(berth, actor, id).await?;
    let log_withheld = !authz::may_read_logs(&access);
    let log = if log_withheld {
        Vec::new()
    } else {
        berth
            .store
            .operation_log(id, 0, MAX_LOG_LINES)
            .await?
            .into_iter()
            .map(present::log_line)
            .collect()
    };
    let tag_moved_to = if operation.kind == OperationKind::Deploy
        && matches!(
            operation.status,
            OperationStatus::Succeeded | OperationStatus::Failed
        ) {
        tokio::time::timeout(TAG_CHECK, tag_moved(berth, &operation))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    Ok(OperationPage {
        can_deploy: access.role.allows(Role::Deployer),
        team: present::team(&access),
        operation: present::operation(&access.handle, operation),
        log,
        log_withheld,
        tag_moved_to,
    })
}

/// The whole log of an operation, as text (`GET /api/v1/operations/{id}/log`).
pub async fn log_text(berth: &Berth, actor: i64, id: i64) -> Result<String> {
    let (access, operation) = get(berth, actor, id).await?;
    authz::check_log_access(&access)?;
    let mut text = String::new();
    let mut after = 0;
    loop {
        let lines = berth.store.operation_log(operation.id, after, 1000).await?;
        let Some(last) = lines.last() else { break };
        after = last.id;
        for line in &lines {
            text.push_str(&line.line);
            text.push('\n');
        }
    }
    Ok(text)
}
