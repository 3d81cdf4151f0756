//! Apps, and the operations that change them. A deploy is checked completely before it is
//! queued: the image parses, the credentials are chosen by the rules of DESIGN.md §1, and
//! the registry proves with them that the exact image can be pulled and says its digest.
//! Nothing is queued when any of that fails, so a bad deploy never touches what runs.

use crate::{
    error::{AppError, FieldExt},
    ssr::{authorize, authorize_team_id, ServerState},
};
use domain::{
    parse_config_value, AppHandle, ConfigKey, DeployMethod, HealthPath, ImageReference,
    OperationKind, OperationStatus, RegistryHost, Role,
};
use platform::registry::{BasicCredentials, RegistryError};
use std::collections::BTreeMap;
use store::{
    App, AppChangesOnEnqueue, NewAuditEvent, NewOperation, Operation, OperationSecrets,
    RegistryCredential, Sealed, SecretSlot, TeamAccess,
};

const DEPLOY: &str = "deploy apps";

/// How a deploy gets its registry credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialChoice {
    /// Berth picks: the team credential the app deploys with, else the app's remembered
    /// credentials, else a team credential for the image's registry, else none.
    Auto,
    /// The credentials remembered on the app.
    Remembered,
    /// A team credential, by name.
    Team(String),
    /// Typed with this deploy; `remember` keeps them on the app (replacing what it had).
    Given {
        username: String,
        password: String,
        remember: bool,
    },
    /// None: a public image.
    None,
}

/// A deploy as a form or the API asks for it.
pub struct DeployInput {
    pub image: String,
    pub credentials: CredentialChoice,
    /// Configuration changes applied with the deploy: `None` unsets.
    pub env: Vec<(String, Option<String>)>,
}

impl DeployInput {
    /// The API's fields: `credential`, `registry_username`/`registry_password`,
    /// `remember_credentials` (default true); none of them means [`CredentialChoice::Auto`].
    pub fn credentials_from_api(
        credential: Option<String>,
        username: Option<String>,
        password: Option<String>,
        remember: Option<bool>,
    ) -> Result<CredentialChoice, AppError> {
        let username = username.filter(|u| !u.trim().is_empty());
        let password = password.filter(|p| !p.is_empty());
        match (
            username,
            password,
            credential.filter(|c| !c.trim().is_empty()),
        ) {
            (Some(_), Some(_), Some(_)) => Err(AppError::invalid(
                "credential",
                "Give either a team credential or a username and password, not both.",
            )),
            (Some(username), Some(password), None) => Ok(CredentialChoice::Given {
                username,
                password,
                remember: remember.unwrap_or(true),
            }),
            (Some(_), None, _) => Err(AppError::invalid(
                "registry_password",
                "Give the registry password (or token) with the username.",
            )),
            (None, Some(_), _) => Err(AppError::invalid(
                "registry_username",
                "Give the registry username with the password.",
            )),
            (None, None, Some(name)) => Ok(CredentialChoice::Team(name)),
            (None, None, None) => Ok(CredentialChoice::Auto),
        }
    }
}

/// The credentials a deploy will pull with, and where they came from.
// One value per deploy request, moved rarely: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Chosen {
    None,
    Team {
        credential: RegistryCredential,
        login: BasicCredentials,
        matched: bool,
    },
    Remembered {
        login: BasicCredentials,
    },
    Given {
        login: BasicCredentials,
        remember: bool,
    },
}

impl Chosen {
    fn login(&self) -> Option<&BasicCredentials> {
        match self {
            Chosen::None => None,
            Chosen::Team { login, .. }
            | Chosen::Remembered { login }
            | Chosen::Given { login, .. } => Some(login),
        }
    }

    fn source(&self) -> &'static str {
        match self {
            Chosen::None => "none",
            Chosen::Team { .. } => "team",
            Chosen::Remembered { .. } => "remembered",
            Chosen::Given { .. } => "given",
        }
    }

    /// The form field a verification failure belongs to.
    fn field(&self) -> &'static str {
        match self {
            Chosen::None => "image",
            Chosen::Team { .. } => "credential",
            Chosen::Remembered { .. } => "credentials",
            Chosen::Given { .. } => "registry_password",
        }
    }

    fn describe(&self) -> String {
        match self {
            Chosen::None => "Without credentials".into(),
            Chosen::Team {
                credential,
                matched,
                ..
            } => format!(
                "With team credential {}{}",
                credential.name,
                if *matched {
                    " (matched by registry host)"
                } else {
                    ""
                }
            ),
            Chosen::Remembered { login } => {
                format!(
                    "With the credentials remembered on the app (user {})",
                    login.username
                )
            }
            Chosen::Given { login, .. } => {
                format!("With the credentials given (user {})", login.username)
            }
        }
    }
}

fn internal(what: &str) -> impl Fn(vault::VaultError) -> AppError + '_ {
    move |e| {
        tracing::error!(error = %e, what, "cannot open a stored secret");
        AppError::Internal
    }
}

pub(crate) fn open_text(
    state: &ServerState,
    sealed: &Sealed,
    slot: &SecretSlot,
) -> Result<String, AppError> {
    let bytes = state
        .keys
        .open(&sealed.value, &slot.context())
        .map_err(internal("secret"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub(crate) fn seal(state: &ServerState, plaintext: &str, slot: &SecretSlot) -> Sealed {
    let (value, key_id) = state.keys.seal(plaintext.as_bytes(), &slot.context());
    Sealed { value, key_id }
}

/// Parses configuration changes: valid names, valid values, no name twice.
pub fn parse_env_changes(
    changes: &[(String, Option<String>)],
) -> Result<BTreeMap<ConfigKey, Option<String>>, AppError> {
    let mut parsed = BTreeMap::new();
    for (key, value) in changes {
        let key = ConfigKey::parse(key).map_err(|e| AppError::invalid("env", e.message))?;
        let value = value
            .as_deref()
            .map(|v| parse_config_value(v).map(str::to_owned))
            .transpose()
            .map_err(|e| AppError::invalid("env", format!("{key}: {}", e.message)))?;
        if parsed.insert(key.clone(), value).is_some() {
            return Err(AppError::invalid(
                "env",
                format!("{key} is given twice; give each variable once."),
            ));
        }
    }
    Ok(parsed)
}

/// `{"KEY": "set" | "unset"}`: what history shows of configuration changes.
pub(crate) fn env_keys(changes: &BTreeMap<ConfigKey, Option<String>>) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let names: BTreeMap<&str, &str> = changes
        .iter()
        .map(|(k, v)| (k.as_str(), if v.is_some() { "set" } else { "unset" }))
        .collect();
    serde_json::to_string(&names).ok()
}

pub(crate) fn env_json(changes: &BTreeMap<ConfigKey, Option<String>>) -> String {
    let map: BTreeMap<&str, Option<&str>> = changes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

pub(crate) async fn load_app(
    state: &ServerState,
    access: &TeamAccess,
    handle: &str,
) -> Result<App, AppError> {
    state
        .store
        .app(access.team_id, handle)
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn create(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    method: &str,
    health_path: Option<&str>,
) -> Result<(TeamAccess, App), AppError> {
    create_with_source(state, actor, team, handle, method, health_path, None).await
}

/// Creates an app; a Dockerfile app needs its git source.
pub async fn create_with_source(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    method: &str,
    health_path: Option<&str>,
    git: Option<super::builds::GitInput>,
) -> Result<(TeamAccess, App), AppError> {
    let handle = AppHandle::parse(handle).field("handle")?;
    let method = DeployMethod::parse(method).field("method")?;
    let health_path = health_path
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| HealthPath::parse(p).field("health_path"))
        .transpose()?;
    let source = match (method, git) {
        (DeployMethod::Dockerfile, Some(git)) => Some(super::builds::parse_source(git)?),
        (DeployMethod::Dockerfile, None) => {
            return Err(AppError::invalid(
                "git_url",
                "A Dockerfile app builds from a git repository: give its URL.",
            ))
        }
        (DeployMethod::Image, _) => None,
    };
    let access = authorize(&state.store, actor, team, Role::Deployer, "create apps").await?;
    let app = state
        .store
        .create_app(
            access.team_id,
            store::NewApp {
                handle: handle.as_str(),
                method: method.as_str(),
                health_path: health_path.as_ref().map(HealthPath::as_str),
                created_by: actor,
            },
        )
        .await
        .map_err(|e| match e {
            store::StoreError::Taken { .. } => AppError::Conflict {
                field: "handle".into(),
                message: format!(
                    "This team already has an app named {handle}; choose another handle."
                ),
            },
            other => other.into(),
        })?;
    let app = match source {
        Some(source) => super::builds::store_source(state, &app, source).await?,
        None => app,
    };
    tracing::info!(team = %access.handle, app = %handle, by = actor, "app created");
    Ok((access, app))
}

pub async fn list(
    state: &ServerState,
    actor: i64,
    team: &str,
) -> Result<(TeamAccess, Vec<store::AppSummary>), AppError> {
    let access = authorize(&state.store, actor, team, Role::Viewer, "see apps").await?;
    let apps = state.store.apps(access.team_id).await?;
    Ok((access, apps))
}

/// One app, for any member.
pub async fn get(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
) -> Result<(TeamAccess, App), AppError> {
    let access = authorize(&state.store, actor, team, Role::Viewer, "see apps").await?;
    let app = load_app(state, &access, handle).await?;
    Ok((access, app))
}

/// The app's configuration, opened. Callers decide what a browser may see.
pub async fn config(
    state: &ServerState,
    app_id: i64,
) -> Result<Vec<(ConfigKey, String)>, AppError> {
    let mut values = Vec::new();
    for entry in state.store.config(app_id).await? {
        let key = ConfigKey::parse(&entry.key).map_err(|e| {
            tracing::error!(error = %e, "stored configuration key does not parse");
            AppError::Internal
        })?;
        let slot = SecretSlot::AppConfig {
            app_id,
            key: entry.key.clone(),
        };
        let value = open_text(state, &entry.sealed, &slot)?;
        values.push((key, value));
    }
    Ok(values)
}

/// Chooses the deploy's credentials by the rules of DESIGN.md §1 and opens their secret.
async fn choose_credentials(
    state: &ServerState,
    team_id: i64,
    app: &App,
    registry: &RegistryHost,
    choice: CredentialChoice,
) -> Result<Chosen, AppError> {
    let team_credential = |credential: RegistryCredential, matched: bool| async move {
        let sealed = state.store.credential_secret(credential.id).await?;
        let secret = open_text(state, &sealed, &SecretSlot::Credential(credential.id))?;
        let login = BasicCredentials::new(credential.username.clone(), secret);
        Ok::<_, AppError>(Chosen::Team {
            credential,
            login,
            matched,
        })
    };
    let remembered = || async {
        match state.store.remembered_secret(app.id).await? {
            Some((host, username, sealed)) if host == registry.as_str() => {
                let secret = open_text(state, &sealed, &SecretSlot::AppRemembered(app.id))?;
                Ok::<_, AppError>(Some(Chosen::Remembered {
                    login: BasicCredentials::new(username, secret),
                }))
            }
            _ => Ok(None),
        }
    };
    match choice {
        CredentialChoice::None => Ok(Chosen::None),
        CredentialChoice::Given {
            username,
            password,
            remember,
        } => {
            let username = domain::parse_username(&username).field("registry_username")?;
            let password =
                domain::SecretInput::parse(&password).field("registry_password")?;
            Ok(Chosen::Given {
                login: BasicCredentials::new(username, password.expose().to_owned()),
                remember,
            })
        }
        CredentialChoice::Team(name) => {
            let credential = state
                .store
                .credential(team_id, name.trim())
                .await?
                .ok_or_else(|| {
                    AppError::invalid(
                        "credential",
                        format!("This team has no credential named {}; choose one from the list.", name.trim()),
                    )
                })?;
            if credential.registry != registry.as_str() {
                return Err(AppError::invalid(
                    "credential",
                    format!(
                        "Credential {} is for {}, but the image is on {registry}.",
                        credential.name, credential.registry
                    ),
                ));
            }
            team_credential(credential, false).await
        }
        CredentialChoice::Remembered => remembered().await?.ok_or_else(|| {
            AppError::invalid(
                "credentials",
                format!("This app has no remembered credentials for {registry}; give credentials with this deploy."),
            )
        }),
        CredentialChoice::Auto => {
            let team = state.store.credentials(team_id).await?;
            let for_host: Vec<RegistryCredential> = team
                .into_iter()
                .filter(|c| c.registry == registry.as_str())
                .collect();
            if let Some(id) = app.team_credential_id {
                if let Some(credential) = for_host.iter().find(|c| c.id == id) {
                    return team_credential(credential.clone(), true).await;
                }
            }
            if let Some(chosen) = remembered().await? {
                return Ok(chosen);
            }
            match for_host.len() {
                0 => Ok(Chosen::None),
                1 => {
                    let credential = for_host.into_iter().next().expect("one credential");
                    team_credential(credential, true).await
                }
                _ => Err(AppError::invalid(
                    "credential",
                    format!(
                        "Several team credentials are for {registry} ({}); choose one.",
                        for_host.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
    }
}

pub(crate) async fn audit(
    state: &ServerState,
    team_id: i64,
    actor: Option<i64>,
    action: &str,
    subject: &str,
    ok: bool,
    detail: &str,
) -> Result<(), AppError> {
    state
        .store
        .record_audit(NewAuditEvent {
            team_id,
            actor_id: actor,
            action,
            subject,
            ok,
            detail: Some(detail),
        })
        .await?;
    Ok(())
}

fn verification_failed(chosen: &Chosen, image: &ImageReference, error: RegistryError) -> AppError {
    let secret = chosen.login().map(|l| l.secret.expose().to_owned());
    let error = match &secret {
        Some(secret) => error.redact(secret),
        None => error,
    };
    let advice = match (chosen, error.kind()) {
        (Chosen::Remembered { .. }, "wrong_credentials" | "expired") => {
            " Give new credentials with this deploy; they replace the remembered ones."
        }
        (Chosen::None, "credentials_required" | "wrong_credentials" | "denied") => {
            " The image is private: give registry credentials or choose a team credential."
        }
        _ => "",
    };
    AppError::VerificationFailed {
        field: chosen.field().into(),
        reason: error.kind().into(),
        message: format!(
            "{} Berth could not pull {image}: {}.{advice}",
            chosen.describe(),
            error.to_string().trim_end_matches('.')
        ),
    }
}

pub(crate) async fn platform_ready(state: &ServerState) -> Result<(), AppError> {
    match state.platform.unavailable().await {
        Some(message) => Err(AppError::Unavailable { message }),
        None => Ok(()),
    }
}

/// Verifies and queues a deploy of an image. Returns the queued operation.
pub async fn deploy(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    input: DeployInput,
) -> Result<(TeamAccess, Operation), AppError> {
    let image_text = input.image.trim();
    if image_text.is_empty() {
        return Err(AppError::invalid(
            "image",
            "Give the image to deploy, e.g. registry.example.com/team/app:1.4.",
        ));
    }
    let image = ImageReference::parse(image_text).field("image")?;
    let env = parse_env_changes(&input.env)?;
    let access = authorize(&state.store, actor, team, Role::Deployer, DEPLOY).await?;
    let app = load_app(state, &access, handle).await?;
    if app.method != DeployMethod::Image.as_str() {
        return Err(AppError::invalid(
            "image",
            "This app builds from a Dockerfile: deploy a git ref instead of an image.",
        ));
    }
    platform_ready(state).await?;
    let chosen = choose_credentials(
        state,
        access.team_id,
        &app,
        image.registry(),
        input.credentials,
    )
    .await?;

    let verified = state
        .registry
        .verify(image.registry(), chosen.login(), Some(&image))
        .await;
    let resolved = match verified {
        Ok(verified) => verified.image.ok_or_else(|| {
            tracing::error!("verification with an image returned no image");
            AppError::Internal
        })?,
        Err(error) => {
            let failure = verification_failed(&chosen, &image, error);
            if let Chosen::Team { credential, .. } = &chosen {
                let detail = format!("verifying {image} before a deploy of {handle}: {failure}");
                audit(
                    state,
                    access.team_id,
                    Some(actor),
                    "credential.use",
                    &format!("credential:{}", credential.name),
                    false,
                    &detail,
                )
                .await?;
            }
            return Err(failure);
        }
    };
    if resolved.linux_amd64_digest.is_none() {
        return Err(AppError::invalid(
            "image",
            format!(
                "{image} has no linux/amd64 image (it has {}); Berth runs linux/amd64.",
                resolved.platforms.join(", ")
            ),
        ));
    }

    let (credential_id, credential_name, credential_version) = match &chosen {
        Chosen::Team { credential, .. } => (
            Some(credential.id),
            Some(credential.name.clone()),
            Some(credential.secret_version),
        ),
        _ => (None, None, None),
    };
    let login = chosen.login().cloned();
    let remember = match &chosen {
        Chosen::Given {
            login,
            remember: true,
        } => Some((
            image.registry().as_str().to_owned(),
            login.username.clone(),
            seal(
                state,
                login.secret.expose(),
                &SecretSlot::AppRemembered(app.id),
            ),
        )),
        _ => None,
    };
    let team_credential = match &chosen {
        Chosen::Team { credential, .. } => Some(Some(credential.id)),
        // Credentials typed with a deploy and kept take over from a team credential.
        Chosen::Given { remember: true, .. } => Some(None),
        _ => None,
    };
    let env_plain = (!env.is_empty()).then(|| env_json(&env));
    let image_string = image.to_string();
    let operation = state
        .store
        .enqueue_operation(
            NewOperation {
                team_id: access.team_id,
                app_id: app.id,
                kind: OperationKind::Deploy.as_str(),
                image: Some(&image_string),
                digest: Some(&resolved.digest),
                git_ref: None,
                commit_sha: None,
                credential_source: chosen.source(),
                credential_id,
                credential_name: credential_name.as_deref(),
                credential_version,
                registry_username: login.as_ref().map(|l| l.username.as_str()),
                env_keys: env_keys(&env).as_deref(),
                requested_by: actor,
            },
            |id| OperationSecrets {
                registry: login
                    .as_ref()
                    .map(|l| seal(state, l.secret.expose(), &SecretSlot::OperationRegistry(id))),
                env: env_plain
                    .as_ref()
                    .map(|e| seal(state, e, &SecretSlot::OperationEnv(id))),
            },
            AppChangesOnEnqueue {
                remember,
                team_credential,
            },
        )
        .await?;
    state.operations_queued.notify_one();
    tracing::info!(
        team = %access.handle, app = %handle, operation = operation.id, image = %image,
        digest = %resolved.digest, credentials = chosen.source(), by = actor, "deploy queued"
    );
    Ok((access, operation))
}

/// Queues a configure operation: the changes are applied, and the running release restarted
/// with them, when it succeeds.
pub async fn configure(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
    changes: &[(String, Option<String>)],
) -> Result<(TeamAccess, Operation), AppError> {
    let env = parse_env_changes(changes)?;
    if env.is_empty() {
        return Err(AppError::invalid(
            "env",
            "Give at least one variable to set or unset.",
        ));
    }
    let access = authorize(&state.store, actor, team, Role::Deployer, "configure apps").await?;
    let app = load_app(state, &access, handle).await?;
    if app.current_release_id.is_some() {
        platform_ready(state).await?;
    }
    let env_plain = env_json(&env);
    let operation = state
        .store
        .enqueue_operation(
            NewOperation {
                team_id: access.team_id,
                app_id: app.id,
                kind: OperationKind::Configure.as_str(),
                image: None,
                digest: None,
                git_ref: None,
                commit_sha: None,
                credential_source: "none",
                credential_id: None,
                credential_name: None,
                credential_version: None,
                registry_username: None,
                env_keys: env_keys(&env).as_deref(),
                requested_by: actor,
            },
            |id| OperationSecrets {
                registry: None,
                env: Some(seal(state, &env_plain, &SecretSlot::OperationEnv(id))),
            },
            AppChangesOnEnqueue::default(),
        )
        .await?;
    state.operations_queued.notify_one();
    tracing::info!(team = %access.handle, app = %handle, operation = operation.id, by = actor, "configure queued");
    Ok((access, operation))
}

/// Queues a restart of the running release.
pub async fn restart(
    state: &ServerState,
    actor: i64,
    team: &str,
    handle: &str,
) -> Result<(TeamAccess, Operation), AppError> {
    let access = authorize(&state.store, actor, team, Role::Deployer, "restart apps").await?;
    let app = load_app(state, &access, handle).await?;
    if app.current_release_id.is_none() {
        return Err(AppError::invalid(
            "",
            "This app has no release yet: deploy it first.",
        ));
    }
    platform_ready(state).await?;
    let operation = state
        .store
        .enqueue_operation(
            NewOperation {
                team_id: access.team_id,
                app_id: app.id,
                kind: OperationKind::Restart.as_str(),
                image: None,
                digest: None,
                git_ref: None,
                commit_sha: None,
                credential_source: "none",
                credential_id: None,
                credential_name: None,
                credential_version: None,
                registry_username: None,
                env_keys: None,
                requested_by: actor,
            },
            |_| OperationSecrets::default(),
            AppChangesOnEnqueue::default(),
        )
        .await?;
    state.operations_queued.notify_one();
    Ok((access, operation))
}

/// An operation by id, for a member of its team.
pub async fn operation(
    state: &ServerState,
    actor: i64,
    id: i64,
) -> Result<(TeamAccess, Operation), AppError> {
    let operation = state.store.operation(id).await?.ok_or(AppError::NotFound)?;
    let access = authorize_team_id(
        &state.store,
        actor,
        operation.team_id,
        Role::Viewer,
        "see operations",
    )
    .await?;
    Ok((access, operation))
}

/// Cancels a queued operation (a running one finishes or fails on its own).
pub async fn cancel(state: &ServerState, actor: i64, id: i64) -> Result<Operation, AppError> {
    let operation = state.store.operation(id).await?.ok_or(AppError::NotFound)?;
    authorize_team_id(
        &state.store,
        actor,
        operation.team_id,
        Role::Deployer,
        "cancel operations",
    )
    .await?;
    if !state.store.cancel_operation(id).await? {
        return Err(AppError::Conflict {
            field: String::new(),
            message: format!(
                "Operation #{id} is {} and can no longer be cancelled; only queued operations can.",
                operation.status
            ),
        });
    }
    state.store.operation(id).await?.ok_or(AppError::NotFound)
}

/// Redeploys the exact digest an earlier deploy ran, with the app's current credentials.
pub async fn redeploy(
    state: &ServerState,
    actor: i64,
    id: i64,
) -> Result<(TeamAccess, Operation), AppError> {
    let (access, earlier) = operation(state, actor, id).await?;
    let (Some(image), Some(digest)) = (&earlier.image, &earlier.digest) else {
        return Err(AppError::invalid(
            "",
            "Only deploys of an image can be redeployed.",
        ));
    };
    let pinned = ImageReference::parse(image)
        .and_then(|i| i.with_digest(digest))
        .map_err(|e| AppError::invalid("image", e.message))?;
    deploy(
        state,
        actor,
        &access.handle,
        &earlier.app_handle,
        DeployInput {
            image: pinned.to_string(),
            credentials: CredentialChoice::Auto,
            env: Vec::new(),
        },
    )
    .await
}

/// When the tag a deploy named now resolves to another digest: that digest.
pub async fn tag_moved(state: &ServerState, operation: &Operation) -> Option<String> {
    let image = ImageReference::parse(operation.image.as_deref()?).ok()?;
    image.tag()?;
    if image.digest().is_some() {
        return None;
    }
    let app = state.store.app_by_id(operation.app_id).await.ok()??;
    let chosen = choose_credentials(
        state,
        operation.team_id,
        &app,
        image.registry(),
        CredentialChoice::Auto,
    )
    .await
    .ok()?;
    let verified = state
        .registry
        .verify(image.registry(), chosen.login(), Some(&image))
        .await
        .ok()?;
    let digest = verified.image?.digest;
    (Some(digest.as_str()) != operation.digest.as_deref()).then_some(digest)
}

/// A team's (or one app's) operations, newest first, keyset-paged and filtered.
pub async fn history(
    state: &ServerState,
    actor: i64,
    team: &str,
    app: Option<&str>,
    filter: HistoryFilter<'_>,
) -> Result<(TeamAccess, Vec<Operation>, Option<i64>), AppError> {
    let kind = filter
        .kind
        .filter(|k| !k.is_empty())
        .map(|k| OperationKind::parse(k).field("kind"))
        .transpose()?;
    let status = filter
        .status
        .filter(|s| !s.is_empty())
        .map(|s| OperationStatus::parse(s).field("status"))
        .transpose()?;
    let access = authorize(&state.store, actor, team, Role::Viewer, "see history").await?;
    let app_id = match app {
        Some(handle) => Some(load_app(state, &access, handle).await?.id),
        None => None,
    };
    let limit = filter.limit.clamp(1, 200);
    let mut operations = state
        .store
        .operations_page(
            &store::OperationFilter {
                team_id: access.team_id,
                app_id,
                kind: kind.map(|k| k.as_str().to_owned()),
                status: status.map(|s| s.as_str().to_owned()),
                requested_by: filter.requested_by,
            },
            filter.before,
            limit + 1,
        )
        .await?;
    let next = if operations.len() as i64 > limit {
        operations.truncate(limit as usize);
        operations.last().map(|o| o.id)
    } else {
        None
    };
    Ok((access, operations, next))
}

#[derive(Default, Clone, Copy)]
pub struct HistoryFilter<'a> {
    pub kind: Option<&'a str>,
    pub status: Option<&'a str>,
    pub requested_by: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// The page and API form of an operation.
pub fn operation_row(team: &str, o: Operation) -> crate::model::OperationRow {
    let config_changes = o
        .env_keys
        .as_deref()
        .and_then(|keys| serde_json::from_str::<BTreeMap<String, String>>(keys).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(key, change)| crate::model::ConfigChangeRow {
            key,
            set: change == "set",
        })
        .collect();
    crate::model::OperationRow {
        id: o.id,
        team: team.to_owned(),
        app: o.app_handle,
        kind: o.kind,
        status: o.status,
        image: o.image,
        digest: o.digest,
        git_ref: o.git_ref,
        commit: o.commit_sha,
        credential_source: o.credential_source,
        credential_name: o.credential_name,
        credential_version: o.credential_version,
        config_changes,
        requested_by: o.requested_by_email,
        created_at: o.created_at,
        started_at: o.started_at,
        finished_at: o.finished_at,
        error: o.error,
        step: o.step,
    }
}

/// The page and API form of an app, with where its release serves.
pub async fn app_row(
    state: &ServerState,
    app: &App,
    release: Option<store::Release>,
    last_operation: Option<crate::model::LastOperation>,
) -> crate::model::AppRow {
    let url = match &release {
        Some(_) => state.platform.running(app.id).await.map(|r| r.url),
        None => None,
    };
    crate::model::AppRow {
        handle: app.handle.clone(),
        method: app.method.clone(),
        health_path: app.health_path.clone(),
        release: release.map(|r| crate::model::ReleaseRow {
            image: r.image,
            digest: r.digest,
            url,
            since: r.created_at,
            operation_id: r.operation_id,
        }),
        last_operation,
    }
}

/// The configuration as a browser may see it: secret-looking values withheld.
pub fn config_rows(values: Vec<(ConfigKey, String)>) -> Vec<crate::model::ConfigRow> {
    values
        .into_iter()
        .map(|(key, value)| {
            let secret =
                key.looks_secret() || key.as_str().starts_with("APTIBLE_PRIVATE_REGISTRY_");
            crate::model::ConfigRow {
                key: key.as_str().to_owned(),
                value: (!secret).then_some(value),
                secret,
            }
        })
        .collect()
}
