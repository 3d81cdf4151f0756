//! Dockerfile deploys: an app's git source, its refs, and the build plan a deploy is checked
//! against before it is queued — every external `FROM` image with the credential that will
//! pull it, verified against its registry.
//!
//! Base-image credentials come from two places (DESIGN.md §1): the app's configuration
//! variables `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD` (for
//! `APTIBLE_PRIVATE_REGISTRY_HOST`, by default the registry of the first `FROM` that cannot
//! be pulled anonymously), and team credentials matched by registry host for every other
//! registry, so one build can pull from several private registries. Those variables are
//! build-time only: they are never build arguments and never reach a running release.

use super::apps::{
    env_json, env_keys, load_app, open_text, parse_env_changes, platform_ready, seal,
};
use crate::{
    error::AppError,
    ssr::{authorize, ServerState},
};
use domain::{ConfigKey, OperationKind, RegistryHost, Role};
use platform::{
    git::{CommitId, GitError, GitRef, GitRefName, GitSource, Repository, RepositoryUrl},
    registry::BasicCredentials,
};
use std::collections::{BTreeMap, BTreeSet};
use store::{
    App, AppChangesOnEnqueue, NewOperation, Operation, OperationSecrets, SecretSlot, TeamAccess,
};

pub const PRIVATE_REGISTRY_USERNAME: &str = "APTIBLE_PRIVATE_REGISTRY_USERNAME";
pub const PRIVATE_REGISTRY_PASSWORD: &str = "APTIBLE_PRIVATE_REGISTRY_PASSWORD";
pub const PRIVATE_REGISTRY_HOST: &str = "APTIBLE_PRIVATE_REGISTRY_HOST";
/// Build-time registry credentials: never build arguments, never in a release's environment.
pub const BUILD_ONLY_PREFIX: &str = "APTIBLE_PRIVATE_REGISTRY_";

/// A git source as a form or the API gives it.
#[derive(Clone, Debug, Default)]
pub struct GitInput {
    pub url: String,
    pub dockerfile: String,
    pub context: String,
    pub username: String,
    pub password: String,
}

/// A parsed git source, ready to store.
pub struct ParsedSource {
    url: RepositoryUrl,
    dockerfile: String,
    context: String,
    credentials: Option<BasicCredentials>,
}

/// A path inside the repository: relative, without `..`.
fn repository_path(input: &str, default: &str, field: &str) -> Result<String, AppError> {
    let value = input.trim();
    let value = if value.is_empty() { default } else { value };
    if value.starts_with('/')
        || value.split('/').any(|part| part == "..")
        || value.chars().any(char::is_control)
        || value.len() > 300
    {
        return Err(AppError::invalid(
            field,
            format!("\"{value}\" must be a path inside the repository, e.g. {default}."),
        ));
    }
    Ok(value.to_owned())
}

fn git_field(error: &GitError) -> &'static str {
    match error {
        GitError::InvalidRef(_) | GitError::RefNotFound { .. } | GitError::AmbiguousRef { .. } => {
            "git_ref"
        }
        GitError::Auth(_) => "git_password",
        _ => "git_url",
    }
}

fn git_error(error: GitError) -> AppError {
    AppError::invalid(git_field(&error), error.to_string())
}

pub fn parse_source(input: GitInput) -> Result<ParsedSource, AppError> {
    let url = RepositoryUrl::parse(input.url.trim())
        .map_err(|e| AppError::invalid("git_url", e.to_string()))?;
    let dockerfile = repository_path(&input.dockerfile, "Dockerfile", "dockerfile")?;
    let context = repository_path(&input.context, ".", "context")?;
    let credentials = match (input.username.trim(), input.password.as_str()) {
        ("", "") => None,
        ("", _) => {
            return Err(AppError::invalid(
                "git_username",
                "Give the username that goes with the password or token.",
            ))
        }
        (_, "") => {
            return Err(AppError::invalid(
                "git_password",
                "Give the password or access token for this username.",
            ))
        }
        (username, password) => {
            let credentials = BasicCredentials::new(username, password);
            GitSource::with_credentials(url.clone(), credentials.clone())
                .map_err(|e| AppError::invalid("git_password", e.to_string()))?;
            Some(credentials)
        }
    };
    Ok(ParsedSource {
        url,
        dockerfile,
        context,
        credentials,
    })
}

pub async fn store_source(
    state: &ServerState,
    app: &App,
    source: ParsedSource,
) -> Result<App, AppError> {
    let credentials = source.credentials.as_ref().map(|c| {
        (
            c.username.as_str(),
            seal(state, c.secret.expose(), &SecretSlot::AppGit(app.id)),
        )
    });
    state
        .store
        .set_git_source(
            app.id,
            source.url.as_str(),
            &source.dockerfile,
            &source.context,
            credentials,
        )
        .await?;
    state
        .store
        .app_by_id(app.id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The app's mirror of its repository.
pub fn repository(state: &ServerState, app_id: i64) -> Repository {
    Repository::new(state.git_dir.join(format!("app-{app_id}.git")))
}

/// The app's git source, with its read credentials opened.
pub async fn git_source(state: &ServerState, app: &App) -> Result<GitSource, AppError> {
    let url = app.git_url.as_deref().ok_or_else(|| {
        AppError::invalid(
            "git_url",
            "This app has no git repository; it deploys images.",
        )
    })?;
    let url = RepositoryUrl::parse(url).map_err(|e| {
        tracing::error!(error = %e, app = app.id, "a stored repository URL does not parse");
        AppError::Internal
    })?;
    match state.store.git_secret(app.id).await? {
        Some((username, sealed)) => {
            let secret = open_text(state, &sealed, &SecretSlot::AppGit(app.id))?;
            GitSource::with_credentials(url, BasicCredentials::new(username, secret))
                .map_err(|e| AppError::invalid("git_password", e.to_string()))
        }
        None => Ok(GitSource::public(url)),
    }
}

/// Fetches the app's repository (its branches and tags) into its mirror.
pub async fn fetch(state: &ServerState, app: &App) -> Result<Repository, AppError> {
    let source = git_source(state, app).await?;
    let repository = repository(state, app.id);
    repository.fetch(&source).await.map_err(git_error)?;
    Ok(repository)
}

/// The app's branches and tags (fetched first when `fetch` or never fetched), and the
/// commit its current release was built from.
pub async fn refs(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    fetch_first: bool,
) -> Result<(TeamAccess, App, Vec<GitRef>, Option<String>), AppError> {
    let access = authorize(&state.store, actor, team, Role::Viewer, "see apps").await?;
    let app = load_app(state, &access, handle).await?;
    let repository = repository(state, app.id);
    if fetch_first || !repository.is_fetched() {
        fetch(state, &app).await?;
    }
    let refs = repository.refs().await.map_err(git_error)?;
    let deployed = deployed_commit(state, &app).await?;
    Ok((access, app, refs, deployed))
}

/// The commit the app's current release was built from.
pub async fn deployed_commit(state: &ServerState, app: &App) -> Result<Option<String>, AppError> {
    let Some(release) = app.current_release_id else {
        return Ok(None);
    };
    let Some(release) = state.store.release(release).await? else {
        return Ok(None);
    };
    Ok(state
        .store
        .operation(release.operation_id)
        .await?
        .and_then(|o| o.commit_sha))
}

/// Which credential pulls one base image.
#[derive(Clone, Debug)]
pub struct PlannedBase {
    pub image: String,
    pub line: usize,
    /// "configuration" (the APTIBLE_PRIVATE_REGISTRY_* variables), "team:<name>" or "none".
    pub credential: String,
}

/// What a Dockerfile deploy will build, checked before it is queued and followed by the worker.
pub struct BuildPlan {
    pub dockerfile: String,
    pub context: String,
    pub bases: Vec<PlannedBase>,
    pub registry_credentials: Vec<(RegistryHost, BasicCredentials)>,
    pub build_args: Vec<(String, String)>,
    /// For the operation's record: where the private-base credentials came from.
    pub credential_source: &'static str,
    pub team_credential: Option<(i64, String, i64)>,
}

/// Reads the Dockerfile at `commit`, lists its external base images and chooses (and, when
/// `verify`, proves with the registry) the credential for each.
#[allow(clippy::too_many_arguments)]
pub async fn plan_build(
    state: &ServerState,
    team_id: i64,
    app: &App,
    repository: &Repository,
    commit: &CommitId,
    env: &BTreeMap<String, String>,
    given_with_deploy: &BTreeSet<String>,
    verify: bool,
) -> Result<BuildPlan, AppError> {
    let dockerfile = app
        .dockerfile_path
        .clone()
        .unwrap_or_else(|| "Dockerfile".into());
    let context = app.context_path.clone().unwrap_or_else(|| ".".into());
    let text = repository
        .read_file(commit, &dockerfile)
        .await
        .map_err(git_error)?
        .ok_or_else(|| {
            AppError::invalid(
                "git_ref",
                format!(
                    "Commit {} has no {dockerfile}; check the Dockerfile path or the ref.",
                    commit.short()
                ),
            )
        })?;
    let build_args: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with(BUILD_ONLY_PREFIX))
        .filter(|(k, _)| platform::local::build::build_arg_problem(k).is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let args: BTreeMap<String, String> = build_args.iter().cloned().collect();
    let bases = dockerfile::base_images(&text, &args).map_err(|e| {
        AppError::invalid(
            "git_ref",
            format!("{dockerfile} at {}: {e}", commit.short()),
        )
    })?;

    let private = match (
        env.get(PRIVATE_REGISTRY_USERNAME),
        env.get(PRIVATE_REGISTRY_PASSWORD),
    ) {
        (Some(user), Some(password)) if !user.is_empty() && !password.is_empty() => {
            Some(BasicCredentials::new(user.clone(), password.clone()))
        }
        _ => None,
    };
    let private_host = match (&private, env.get(PRIVATE_REGISTRY_HOST)) {
        (None, _) => None,
        (Some(_), Some(host)) if !host.trim().is_empty() => {
            Some(RegistryHost::parse(host).map_err(|e| {
                AppError::invalid("env", format!("{PRIVATE_REGISTRY_HOST}: {}", e.message))
            })?)
        }
        (Some(_), _) => {
            // The registry of the first FROM that cannot be pulled anonymously.
            let mut found = None;
            for base in &bases {
                if state
                    .registry
                    .verify(base.image.registry(), None, Some(&base.image))
                    .await
                    .is_err()
                {
                    found = Some(base.image.registry().clone());
                    break;
                }
            }
            found
        }
    };
    let team_credentials = state.store.credentials(team_id).await?;
    let given = given_with_deploy.contains(PRIVATE_REGISTRY_PASSWORD);

    let mut planned = Vec::new();
    let mut registry_credentials: Vec<(RegistryHost, BasicCredentials)> = Vec::new();
    let mut credential_source = "none";
    let mut team_credential = None;
    for base in &bases {
        let host = base.image.registry().clone();
        let (credentials, label, field) = if private_host.as_ref() == Some(&host) {
            credential_source = if given { "given" } else { "remembered" };
            (private.clone(), "configuration".to_owned(), "env")
        } else if let Some(credential) = team_credentials
            .iter()
            .find(|c| c.registry == host.as_str())
        {
            let sealed = state.store.credential_secret(credential.id).await?;
            let secret = open_text(state, &sealed, &SecretSlot::Credential(credential.id))?;
            if credential_source == "none" {
                credential_source = "team";
            }
            team_credential.get_or_insert((
                credential.id,
                credential.name.clone(),
                credential.secret_version,
            ));
            (
                Some(BasicCredentials::new(credential.username.clone(), secret)),
                format!("team:{}", credential.name),
                "credential",
            )
        } else {
            (None, "none".to_owned(), "git_ref")
        };
        if verify {
            if let Err(error) = state
                .registry
                .verify(&host, credentials.as_ref(), Some(&base.image))
                .await
            {
                let error = match &credentials {
                    Some(c) => error.redact(c.secret.expose()),
                    None => error,
                };
                let whose = match label.as_str() {
                    "configuration" => {
                        format!("with {PRIVATE_REGISTRY_USERNAME}/{PRIVATE_REGISTRY_PASSWORD}")
                    }
                    "none" => {
                        "without credentials (no team credential matches its registry)".to_owned()
                    }
                    team => format!("with team credential {}", team.trim_start_matches("team:")),
                };
                return Err(AppError::VerificationFailed {
                    field: field.into(),
                    reason: error.kind().into(),
                    message: format!(
                        "Base image {} ({dockerfile} line {}) cannot be pulled {whose}: {}. Nothing was built.",
                        base.written,
                        base.line,
                        error.to_string().trim_end_matches('.')
                    ),
                });
            }
        }
        if let Some(credentials) = credentials {
            if !registry_credentials.iter().any(|(h, _)| h == &host) {
                registry_credentials.push((host, credentials));
            }
        }
        planned.push(PlannedBase {
            image: base.image.to_string(),
            line: base.line,
            credential: label,
        });
    }
    Ok(BuildPlan {
        dockerfile,
        context,
        bases: planned,
        registry_credentials,
        build_args,
        credential_source,
        team_credential,
    })
}

/// Verifies and queues a Dockerfile deploy of `git_ref`, with configuration changes applied
/// in the same operation (one build, one restart).
pub async fn deploy_ref(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    git_ref: &str,
    changes: &[(String, Option<String>)],
) -> Result<(TeamAccess, Operation), AppError> {
    if git_ref.trim().is_empty() {
        return Err(AppError::invalid(
            "git_ref",
            "Give the branch, tag or commit to deploy.",
        ));
    }
    let reference = GitRefName::parse(git_ref.trim())
        .map_err(|e| AppError::invalid("git_ref", e.to_string()))?;
    let changes = parse_env_changes(changes)?;
    let access = authorize(&state.store, actor, team, Role::Deployer, "deploy apps").await?;
    let app = load_app(state, &access, handle).await?;
    if app.git_url.is_none() {
        return Err(AppError::invalid(
            "git_ref",
            "This app deploys images: give an image instead of a git ref.",
        ));
    }
    platform_ready(state).await?;
    let repository = fetch(state, &app).await?;
    let commit = repository.resolve(&reference).await.map_err(git_error)?;
    let mut env: BTreeMap<String, String> = super::apps::config(state, app.id)
        .await?
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    for (key, value) in &changes {
        match value {
            Some(value) => env.insert(key.as_str().to_owned(), value.clone()),
            None => env.remove(key.as_str()),
        };
    }
    let given: BTreeSet<String> = changes
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.as_str().to_owned())
        .collect();
    let plan = plan_build(
        state,
        access.team_id,
        &app,
        &repository,
        &commit,
        &env,
        &given,
        true,
    )
    .await?;
    let env_plain = (!changes.is_empty()).then(|| env_json(&changes));
    let (credential_id, credential_name, credential_version) = match &plan.team_credential {
        Some((id, name, version)) if plan.credential_source == "team" => {
            (Some(*id), Some(name.clone()), Some(*version))
        }
        _ => (None, None, None),
    };
    let operation = state
        .store
        .enqueue_operation(
            NewOperation {
                team_id: access.team_id,
                app_id: app.id,
                kind: OperationKind::Deploy.as_str(),
                image: None,
                digest: None,
                git_ref: Some(reference.as_str()),
                commit_sha: Some(commit.as_str()),
                credential_source: plan.credential_source,
                credential_id,
                credential_name: credential_name.as_deref(),
                credential_version,
                registry_username: None,
                env_keys: env_keys(&changes).as_deref(),
                requested_by: actor,
            },
            |id| OperationSecrets {
                registry: None,
                env: env_plain
                    .as_ref()
                    .map(|e| seal(state, e, &SecretSlot::OperationEnv(id))),
            },
            AppChangesOnEnqueue::default(),
        )
        .await?;
    state.operations_queued.notify_one();
    tracing::info!(
        team = %access.handle, app = %handle, operation = operation.id, git_ref = %reference,
        commit = %commit.as_str(), by = actor, "Dockerfile deploy queued"
    );
    Ok((access, operation))
}

/// One base image of a ref's Dockerfile, the credential that will pull it, and whether the
/// registry lets it (what the app page shows before a deploy).
pub struct BaseCheck {
    pub base: PlannedBase,
    /// `None` when it can be pulled; otherwise the failure's kind and message.
    pub problem: Option<(String, String)>,
}

/// Checks every external base image of `git_ref`'s Dockerfile against its registry, with
/// the credential a deploy would use, without queuing anything.
pub async fn check_bases(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    git_ref: &str,
) -> Result<(TeamAccess, CommitId, Vec<BaseCheck>), AppError> {
    let reference = GitRefName::parse(git_ref.trim())
        .map_err(|e| AppError::invalid("git_ref", e.to_string()))?;
    let access = authorize(&state.store, actor, team, Role::Viewer, "see apps").await?;
    let app = load_app(state, &access, handle).await?;
    let repository = fetch(state, &app).await?;
    let commit = repository.resolve(&reference).await.map_err(git_error)?;
    let env: BTreeMap<String, String> = super::apps::config(state, app.id)
        .await?
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    let plan = plan_build(
        state,
        access.team_id,
        &app,
        &repository,
        &commit,
        &env,
        &BTreeSet::new(),
        false,
    )
    .await?;
    let mut checks = Vec::new();
    for base in plan.bases {
        let image = domain::ImageReference::parse(&base.image)
            .map_err(|e| AppError::invalid("git_ref", e.message))?;
        let credentials = plan
            .registry_credentials
            .iter()
            .find(|(host, _)| host == image.registry())
            .map(|(_, c)| c);
        let problem = match state
            .registry
            .verify(image.registry(), credentials, Some(&image))
            .await
        {
            Ok(_) => None,
            Err(error) => {
                let error = match credentials {
                    Some(c) => error.redact(c.secret.expose()),
                    None => error,
                };
                Some((error.kind().to_owned(), error.to_string()))
            }
        };
        checks.push(BaseCheck { base, problem });
    }
    Ok((access, commit, checks))
}

/// Whether a configuration key is a build-time registry credential.
pub fn is_build_only(key: &ConfigKey) -> bool {
    key.as_str().starts_with(BUILD_ONLY_PREFIX)
}
