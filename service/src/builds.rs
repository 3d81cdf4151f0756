//! Dockerfile apps: their git source, its branches and tags, and the build plan a deploy is
//! checked against before it is queued — every external `FROM` image with the credential
//! that will pull it (chosen by [`crate::resolver`]), verified against its registry.
//!
//! Base-image credentials come from the app's configuration variables
//! `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD` (for `APTIBLE_PRIVATE_REGISTRY_HOST`,
//! by default the registry of the first `FROM` that cannot be pulled anonymously) and from
//! team credentials matched by registry host, so one build can pull from several private
//! registries. Those variables are build-time only: never build arguments, never in a
//! running release's environment.

use crate::{
    authz::authorize,
    config::{
        is_build_only, Environment, PRIVATE_REGISTRY_HOST, PRIVATE_REGISTRY_PASSWORD,
        PRIVATE_REGISTRY_USERNAME,
    },
    resolver::{Chosen, CredentialChoice, Resolver},
    Berth, Error, Result,
};
use domain::{
    CommitId, CredentialName, CredentialSource, GitRefName, RegistryHost, RepositoryUrl, Role,
    Secret,
};
use platform::{
    git::{GitError, GitRef, GitSource, RefKind, Repository},
    registry::{BasicCredentials, RegistryError},
};
use store::{App, CredentialUse, SecretSlot, TeamAccess};
use views::{
    api::{RefView, RefsBody},
    AppError, BaseCheckReport, BaseCheckRow, BaseCredential, BuildSource, FieldExt, GitRefRow,
    GitSourceRow,
};

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
fn repository_path(input: &str, default: &str, field: &str) -> Result<String> {
    let value = input.trim();
    let value = if value.is_empty() { default } else { value };
    if value.starts_with('/')
        || value.split('/').any(|part| part == "..")
        || value.chars().any(char::is_control)
        || value.len() > 300
    {
        return Err(Error::invalid(
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

fn git_error(error: GitError) -> Error {
    Error::invalid(git_field(&error), error.to_string())
}

pub fn parse_source(input: GitInput) -> Result<ParsedSource> {
    let url = RepositoryUrl::parse(input.url.trim()).field("git_url")?;
    let dockerfile = repository_path(&input.dockerfile, "Dockerfile", "dockerfile")?;
    let context = repository_path(&input.context, ".", "context")?;
    let credentials = match (input.username.trim(), input.password.as_str()) {
        ("", "") => None,
        ("", _) => {
            return Err(Error::invalid(
                "git_username",
                "Give the username that goes with the password or token.",
            ))
        }
        (_, "") => {
            return Err(Error::invalid(
                "git_password",
                "Give the password or access token for this username.",
            ))
        }
        (username, password) => {
            let credentials = BasicCredentials::new(username, Secret::new(password));
            GitSource::with_credentials(url.clone(), credentials.clone())
                .map_err(|e| Error::invalid("git_password", e.to_string()))?;
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

pub async fn store_source(berth: &Berth, app: &App, source: ParsedSource) -> Result<App> {
    let credentials = source.credentials.as_ref().map(|c| {
        (
            c.username.as_str(),
            berth.secrets.seal(&SecretSlot::AppGit(app.id), &c.secret),
        )
    });
    berth
        .store
        .set_git_source(
            app.id,
            &source.url,
            &source.dockerfile,
            &source.context,
            credentials,
        )
        .await?;
    berth
        .store
        .app_by_id(app.id)
        .await?
        .ok_or_else(Error::not_found)
}

/// The app's mirror of its repository.
pub fn repository(berth: &Berth, app_id: i64) -> Repository {
    Repository::new(berth.git_dir.join(format!("app-{app_id}.git")))
}

/// The app's git source, with its read credentials opened.
async fn git_source(berth: &Berth, app: &App) -> Result<GitSource> {
    let url = app.git_url.clone().ok_or_else(|| {
        Error::invalid(
            "git_url",
            "This app has no git repository; it deploys images.",
        )
    })?;
    match berth.store.git_secret(app.id).await? {
        Some((username, sealed)) => {
            let secret = berth.secrets.open(&SecretSlot::AppGit(app.id), &sealed)?;
            GitSource::with_credentials(url, BasicCredentials::new(username, secret))
                .map_err(|e| Error::invalid("git_password", e.to_string()))
        }
        None => Ok(GitSource::public(url)),
    }
}

/// Fetches the app's repository (its branches and tags) into its mirror.
pub async fn fetch(berth: &Berth, app: &App) -> Result<Repository> {
    let source = git_source(berth, app).await?;
    let repository = repository(berth, app.id);
    repository.fetch(&source).await.map_err(git_error)?;
    Ok(repository)
}

/// The app's branches and tags (fetched first when `fetch_first`; otherwise what the last
/// fetch found, none when it was never fetched), and the commit its current release was
/// built from.
pub async fn refs(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    fetch_first: bool,
) -> Result<(TeamAccess, App, Vec<GitRef>, Option<CommitId>)> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see apps").await?;
    let app = crate::apps::load(berth, &access, handle).await?;
    let refs = list_refs(berth, &app, fetch_first).await?;
    let deployed = deployed_commit(berth, &app).await?;
    Ok((access, app, refs, deployed))
}

/// Only `fetch_first` contacts the remote: reading (pages, `GET …/refs`) never does, so a
/// GET has no side effect and cannot be used to make Berth connect anywhere.
async fn list_refs(berth: &Berth, app: &App, fetch_first: bool) -> Result<Vec<GitRef>> {
    let repository = if fetch_first {
        fetch(berth, app).await?
    } else {
        repository(berth, app.id)
    };
    if !repository.is_fetched() {
        return Ok(Vec::new());
    }
    repository.refs().await.map_err(git_error)
}

/// The first fetch of a new Dockerfile app's repository, so that its page lists branches
/// and tags straight away. A slow or unreachable remote must not fail the app's creation:
/// the page then lists nothing, and its Fetch button retries and shows the error.
pub async fn first_fetch(berth: &Berth, app: &App) {
    const FIRST_FETCH: std::time::Duration = std::time::Duration::from_secs(15);
    match tokio::time::timeout(FIRST_FETCH, fetch(berth, app)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::info!(app = app.id, error = %AppError::from(error), "the first fetch of a new app's repository failed")
        }
        Err(_) => tracing::info!(
            app = app.id,
            "the first fetch of a new app's repository took longer than {} seconds",
            FIRST_FETCH.as_secs()
        ),
    }
}

/// The commit the app's current release was built from.
pub async fn deployed_commit(berth: &Berth, app: &App) -> Result<Option<CommitId>> {
    let Some(release) = app.current_release_id else {
        return Ok(None);
    };
    let Some(release) = berth.store.release(release).await? else {
        return Ok(None);
    };
    Ok(berth
        .store
        .operation(release.operation_id)
        .await?
        .and_then(|o| o.commit_sha))
}

/// A Dockerfile app's source and refs for its page, as the last fetch found them (the page
/// is a GET: it never contacts the repository). A mirror that cannot be read must not take
/// the page down with it: the error is shown in the section, with the Fetch button to retry.
pub async fn source_section(
    berth: &Berth,
    app: &App,
    environment: &Environment,
) -> Result<BuildSource> {
    let (refs, refs_error) = match list_refs(berth, app, false).await {
        Ok(refs) => (refs, None),
        Err(error) => (Vec::new(), Some(AppError::from(error).to_string())),
    };
    Ok(BuildSource {
        source: source_row(app).unwrap_or_default(),
        refs: refs.into_iter().map(ref_row).collect(),
        refs_error,
        deployed_commit: deployed_commit(berth, app).await?.map(String::from),
        private_registry_configured: environment.non_blank(PRIVATE_REGISTRY_USERNAME).is_some()
            && environment.non_blank(PRIVATE_REGISTRY_PASSWORD).is_some(),
        private_registry_host: environment
            .non_blank(PRIVATE_REGISTRY_HOST)
            .map(|host| host.expose().to_owned()),
    })
}

/// A Dockerfile app's git source as pages and the API show it (never its read password).
pub fn source_row(app: &App) -> Option<GitSourceRow> {
    let url = app.git_url.as_ref()?;
    Some(GitSourceRow {
        url: url.to_string(),
        dockerfile: dockerfile_path(app),
        context: context_path(app),
        username: app.git_username.clone(),
    })
}

/// The app's branches and tags as the JSON API lists them.
pub async fn refs_body(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    fetch_first: bool,
) -> Result<RefsBody> {
    let (_, _, refs, deployed) = refs(berth, actor, team, handle, fetch_first).await?;
    Ok(RefsBody {
        refs: refs
            .into_iter()
            .map(|r| RefView {
                deployed: deployed.as_ref() == Some(&r.commit),
                kind: ref_kind(r.kind).to_owned(),
                commit: r.commit.to_string(),
                name: r.name,
                subject: r.subject,
                committed_at: r.committed_at,
            })
            .collect(),
        deployed_commit: deployed.map(String::from),
    })
}

pub fn ref_kind(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Branch => "branch",
        RefKind::Tag => "tag",
    }
}

fn ref_row(r: GitRef) -> GitRefRow {
    GitRefRow {
        kind: ref_kind(r.kind).to_owned(),
        short_commit: r.commit.short().to_owned(),
        commit: r.commit.to_string(),
        name: r.name,
        subject: r.subject,
        committed_at: r.committed_at,
    }
}

/// The Dockerfile, relative to the repository root.
pub(crate) fn dockerfile_path(app: &App) -> String {
    app.dockerfile_path
        .clone()
        .unwrap_or_else(|| "Dockerfile".into())
}

/// The build context, relative to the repository root.
pub(crate) fn context_path(app: &App) -> String {
    app.context_path.clone().unwrap_or_else(|| ".".into())
}

/// One base image of the build and the credentials that pull it.
#[derive(Clone, Debug)]
pub struct PlannedBase {
    pub image: domain::ImageReference,
    /// How it is written in the Dockerfile.
    pub written: String,
    pub line: usize,
    pub credential: BaseCredential,
    login: Option<BasicCredentials>,
    /// The form field a failure to pull it belongs to.
    field: &'static str,
}

/// What a Dockerfile deploy will build, checked before it is queued and followed by the
/// worker.
pub struct BuildPlan {
    pub dockerfile: String,
    pub context: String,
    pub bases: Vec<PlannedBase>,
    /// At most one login per registry: a build may pull from several private registries.
    pub registry_credentials: Vec<(RegistryHost, BasicCredentials)>,
    /// The configuration a build sees as build arguments (never the registry credentials).
    pub build_args: Vec<(String, Secret)>,
    /// What the operation records: where the private bases' credentials came from.
    pub credential: CredentialUse,
}

/// What a build plan is for.
pub struct PlanRequest<'a> {
    pub repository: &'a Repository,
    pub commit: &'a CommitId,
    /// The configuration the build sees (the app's, with the deploy's changes).
    pub environment: &'a Environment,
    /// Whether the private-registry password was given with this deploy (as configuration
    /// changes, or in the registry fields).
    pub credentials_given: bool,
    /// Whether it was given in the deploy's registry fields: a refusal then belongs to them.
    pub registry_fields: bool,
    /// A team credential the deploy named.
    pub credential: Option<&'a CredentialName>,
}

/// Reads the Dockerfile at the commit, lists its external base images and chooses the
/// credentials for each by the resolver's rule. Nothing is asked of a registry except, when
/// the configuration has private-registry credentials without a host, which registry
/// refuses anonymous pulls.
pub async fn plan_build(berth: &Berth, app: &App, request: PlanRequest<'_>) -> Result<BuildPlan> {
    let dockerfile = dockerfile_path(app);
    let context = context_path(app);
    let commit = request.commit;
    let text = request
        .repository
        .read_file(commit, &dockerfile)
        .await
        .map_err(git_error)?
        .ok_or_else(|| {
            Error::invalid(
                "git_ref",
                format!(
                    "Commit {} has no {dockerfile}; check the Dockerfile path or the ref.",
                    commit.short()
                ),
            )
        })?;
    if let Some(refused) = dockerfile::refused_run_options(&text)
        .ok()
        .and_then(|refused| refused.into_iter().next())
    {
        return Err(Error::invalid(
            "git_ref",
            format!(
                "{dockerfile} at {}, {refused}. Nothing was built.",
                commit.short()
            ),
        ));
    }
    let build_args: Vec<(String, Secret)> = request
        .environment
        .iter()
        .filter(|(k, _)| !is_build_only(k))
        .filter(|(k, _)| platform::local::build::build_arg_problem(k.as_str()).is_none())
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    let args: std::collections::BTreeMap<String, String> = build_args
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    let bases = dockerfile::base_images(&text, &args).map_err(|e| {
        Error::invalid(
            "git_ref",
            format!("{dockerfile} at {}: {e}", commit.short()),
        )
    })?;

    let private = match (
        request.environment.non_blank(PRIVATE_REGISTRY_USERNAME),
        request.environment.non_blank(PRIVATE_REGISTRY_PASSWORD),
    ) {
        (Some(user), Some(password)) => Some(BasicCredentials::new(
            user.expose().to_owned(),
            password.clone(),
        )),
        _ => None,
    };
    let private_host = match (
        &private,
        request.environment.non_blank(PRIVATE_REGISTRY_HOST),
    ) {
        (None, _) => None,
        (Some(_), Some(host)) => Some(RegistryHost::parse(host.expose()).map_err(|e| {
            Error::invalid("env", format!("{PRIVATE_REGISTRY_HOST}: {}", e.message))
        })?),
        (Some(_), None) => {
            // The registry of the first FROM that cannot be pulled anonymously.
            let mut found = None;
            for base in &bases {
                if berth
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
    let resolver = Resolver::for_build(berth, app, private_host.zip(private)).await?;
    let named = match request.credential {
        Some(name) => {
            let credential = resolver.team_credential(name).ok_or_else(|| {
                Error::invalid(
                    "credential",
                    format!("This team has no credential named {name}; choose one from the list."),
                )
            })?;
            if !bases
                .iter()
                .any(|b| b.image.registry() == &credential.registry)
            {
                return Err(Error::invalid(
                    "credential",
                    format!(
                        "Credential {name} is for {}, but no base image of {dockerfile} at {} is on it.",
                        credential.registry,
                        commit.short()
                    ),
                ));
            }
            Some((credential.registry.clone(), name.clone()))
        }
        None => None,
    };

    let mut planned = Vec::new();
    let mut registry_credentials: Vec<(RegistryHost, BasicCredentials)> = Vec::new();
    let mut source = CredentialSource::None;
    let mut team_credential = None;
    for base in bases {
        let host = base.image.registry().clone();
        let choice = match &named {
            Some((named_host, name)) if named_host == &host => {
                CredentialChoice::Team(Some(name.clone()))
            }
            _ => CredentialChoice::Auto,
        };
        let chosen = resolver.choose(&host, &choice).await?;
        let (credential, field) = match &chosen {
            Chosen::None => (BaseCredential::None, "git_ref"),
            Chosen::Team { credential, .. } => {
                if source == CredentialSource::None {
                    source = CredentialSource::Team;
                }
                team_credential.get_or_insert((
                    credential.id,
                    credential.name.to_string(),
                    credential.secret_version,
                ));
                (
                    BaseCredential::Team(credential.name.to_string()),
                    "credential",
                )
            }
            Chosen::Remembered { .. } | Chosen::Given { .. } => {
                source = if request.credentials_given {
                    CredentialSource::Given
                } else {
                    CredentialSource::Remembered
                };
                (
                    BaseCredential::Configuration,
                    if request.registry_fields {
                        "registry_password"
                    } else {
                        "env"
                    },
                )
            }
        };
        let login = chosen.login().cloned();
        if let Some(login) = &login {
            if !registry_credentials.iter().any(|(h, _)| h == &host) {
                registry_credentials.push((host, login.clone()));
            }
        }
        planned.push(PlannedBase {
            image: base.image,
            written: base.written,
            line: base.line,
            credential,
            login,
            field,
        });
    }
    Ok(BuildPlan {
        dockerfile,
        context,
        bases: planned,
        registry_credentials,
        build_args,
        credential: CredentialUse {
            source,
            team_credential: team_credential.filter(|_| source == CredentialSource::Team),
            registry_username: None,
        },
    })
}

impl PlannedBase {
    /// Asks the base image's registry whether the planned credentials may pull it.
    pub async fn check(&self, berth: &Berth) -> std::result::Result<(), RegistryError> {
        berth
            .registry
            .verify(
                self.image.registry(),
                self.login.as_ref(),
                Some(&self.image),
            )
            .await
            .map(|_| ())
            .map_err(|error| match &self.login {
                Some(login) => error.redact(login.secret.expose()),
                None => error,
            })
    }

    /// Why a deploy cannot build with this base, in words that name the image, its line and
    /// the credentials tried.
    fn refused(&self, dockerfile: &str, error: RegistryError) -> Error {
        let whose = match &self.credential {
            BaseCredential::Configuration => {
                format!("with {PRIVATE_REGISTRY_USERNAME}/{PRIVATE_REGISTRY_PASSWORD}")
            }
            BaseCredential::None => {
                "without credentials (no team credential matches its registry)".to_owned()
            }
            BaseCredential::Team(name) => format!("with team credential {name}"),
        };
        AppError::VerificationFailed {
            field: self.field.into(),
            reason: error.kind().into(),
            message: format!(
                "Base image {} ({dockerfile} line {}) cannot be pulled {whose}: {}. Nothing was built.",
                self.written,
                self.line,
                error.to_string().trim_end_matches('.')
            ),
        }
        .into()
    }
}

impl BuildPlan {
    /// Proves with every base image's registry that the build can pull it; the first that
    /// cannot is the error.
    pub async fn verify(&self, berth: &Berth) -> Result<()> {
        for base in &self.bases {
            if let Err(error) = base.check(berth).await {
                return Err(base.refused(&self.dockerfile, error));
            }
        }
        Ok(())
    }
}

/// Checks every external base image of `git_ref`'s Dockerfile against its registry, with
/// the credential a deploy would use, without queuing anything (what the app page shows
/// before a deploy).
pub async fn check_bases(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    git_ref: &str,
) -> Result<BaseCheckReport> {
    let reference = GitRefName::parse(git_ref).field("git_ref")?;
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see apps").await?;
    let app = crate::apps::load(berth, &access, handle).await?;
    let (repository, commit) = resolve(berth, &app, &reference).await?;
    let environment = Environment::load(berth, app.id).await?;
    let plan = plan_build(
        berth,
        &app,
        PlanRequest {
            repository: &repository,
            commit: &commit,
            environment: &environment,
            credentials_given: false,
            registry_fields: false,
            credential: None,
        },
    )
    .await?;
    let mut bases = Vec::new();
    for base in &plan.bases {
        let problem = base
            .check(berth)
            .await
            .err()
            .map(|error| (error.kind().to_owned(), error.to_string()));
        bases.push(BaseCheckRow {
            image: base.image.to_string(),
            line: base.line,
            credential: base.credential.clone(),
            problem,
        });
    }
    Ok(BaseCheckReport {
        git_ref: reference.to_string(),
        commit: commit.to_string(),
        bases,
    })
}

/// Resolves `reference` to a commit in the app's freshly fetched repository.
pub(crate) async fn resolve(
    berth: &Berth,
    app: &App,
    reference: &GitRefName,
) -> Result<(Repository, CommitId)> {
    let repository = fetch(berth, app).await?;
    let commit = repository.resolve(reference).await.map_err(git_error)?;
    Ok((repository, commit))
}

/// Checks the commit out for a build, into a fresh directory under the app's git dir.
pub(crate) async fn checkout(
    berth: &Berth,
    repository: &Repository,
    commit: &CommitId,
    operation_id: i64,
) -> Result<std::path::PathBuf> {
    let dir = berth
        .git_dir
        .join("builds")
        .join(format!("op-{operation_id}"));
    let _ = tokio::fs::remove_dir_all(&dir).await;
    if let Some(parent) = dir.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::internal(format!("cannot prepare the build directory: {e}")))?;
    }
    repository.checkout(commit, &dir).await.map_err(git_error)?;
    Ok(dir)
}
