//! Dockerfile apps: their git source, its branches and tags, and the build plan a deploy is
//! checked against before it is queued — every external `FROM` image with the credential
//! that will pull it (chosen by [`crate::resolver`]), verified against its registry.
//!
//! Base-image credentials come from the app's configuration variables
//! `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD` and from team credentials matched by
//! registry host, so one build can pull from several private registries. Those variables are
//! build-time only: never build arguments, never in a running release's environment.
//!
//! The private-registry credentials go to one host only: `APTIBLE_PRIVATE_REGISTRY_HOST`, set
//! in the configuration or confirmed by the person deploying (then it becomes the app's
//! configuration in that same operation). There is no default: a Dockerfile is code anyone
//! with push access to the branch can change, and a guessed host (say, "the first `FROM` that
//! cannot be pulled anonymously") would hand the password to whatever registry a `FROM
//! evil.example/x` names.

use crate::{
    authz::authorize,
    config::{
        is_build_only, ConfigChanges, Environment, PRIVATE_REGISTRY_HOST,
        PRIVATE_REGISTRY_PASSWORD, PRIVATE_REGISTRY_USERNAME,
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

impl ParsedSource {
    /// A repository on this server is read only under the operator's
    /// BERTH_GIT_LOCAL_ROOTS; checked before the app is made, not at its first fetch.
    pub fn check_local_root(&self, berth: &Berth) -> Result<()> {
        match self.url.local_path() {
            Some(path) => berth
                .egress
                .check_git_local_path(&path)
                .map(|_| ())
                .map_err(|message| Error::invalid("git_url", message)),
            None => Ok(()),
        }
    }
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
    match error {
        // Missing on this server: nothing the person at the form can fix.
        GitError::GitNotInstalled | GitError::SshNotInstalled => AppError::Unavailable {
            message: error.to_string(),
        }
        .into(),
        _ => Error::invalid(git_field(&error), error.to_string()),
    }
}

pub fn parse_source(input: GitInput) -> Result<ParsedSource> {
    // Every field is checked before answering, so that the form shows all its problems at once.
    let mut problems = views::Problems::default();
    let url = problems.check(RepositoryUrl::parse(input.url.trim()), "git_url");
    let dockerfile = Error::noted(
        &mut problems,
        repository_path(&input.dockerfile, "Dockerfile", "dockerfile"),
    )?;
    let context = Error::noted(
        &mut problems,
        repository_path(&input.context, ".", "context"),
    )?;
    let credentials = match (input.username.trim(), input.password.as_str()) {
        ("", "") => None,
        ("", _) => {
            problems.add(
                "git_username",
                "Give the username that goes with the password or token.",
            );
            None
        }
        (_, "") => {
            problems.add(
                "git_password",
                "Give the password or access token for this username.",
            );
            None
        }
        (username, password) => {
            let credentials = BasicCredentials::new(username, Secret::new(password));
            match &url {
                Some(url) => match GitSource::with_credentials(url.clone(), credentials.clone()) {
                    Ok(_) => Some(credentials),
                    Err(e) => {
                        problems.add("git_password", e.to_string());
                        None
                    }
                },
                None => None,
            }
        }
    };
    problems.finish()?;
    let (Some(url), Some(dockerfile), Some(context)) = (url, dockerfile, context) else {
        return Err(Error::unchecked("git source"));
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
        .with_egress(berth.egress.clone())
}

/// The app's git source, with its read credentials opened: the team's deploy key for an
/// ssh repository (made when the team has none yet), the stored user name and token for an
/// https one.
async fn git_source(berth: &Berth, app: &App) -> Result<GitSource> {
    let url = app.git_url.clone().ok_or_else(|| {
        Error::invalid(
            "git_url",
            "This app has no git repository; it deploys images.",
        )
    })?;
    if url.uses_ssh() {
        let key = crate::deploy_keys::ssh_key(berth, app.team_id).await?;
        return GitSource::with_ssh_key(url, key).map_err(git_error);
    }
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
    let deployed = deployed_commit(berth, app).await?;
    let candidate_commit = deployed.clone().or_else(|| {
        refs.iter()
            .filter(|r| r.kind == RefKind::Branch)
            .find(|r| r.name == "main" || r.name == "master")
            .or_else(|| refs.iter().find(|r| r.kind == RefKind::Branch))
            .map(|r| r.commit.clone())
    });
    let base_registries = match candidate_commit {
        Some(commit) => base_registries(berth, app, &commit).await,
        None => Vec::new(),
    };
    Ok(BuildSource {
        source: source_row(app).unwrap_or_default(),
        refs: refs.into_iter().map(ref_row).collect(),
        refs_error,
        deployed_commit: deployed.map(String::from),
        base_registries,
        private_registry_configured: environment.non_blank(PRIVATE_REGISTRY_USERNAME).is_some()
            && environment.non_blank(PRIVATE_REGISTRY_PASSWORD).is_some(),
        private_registry_host: environment
            .non_blank(PRIVATE_REGISTRY_HOST)
            .map(|host| host.expose().to_owned()),
    })
}

/// The registries the Dockerfile at `commit` pulls from, read from the local mirror with the
/// ARGs' defaults (no configuration: this is for offering hosts, not for building). Empty
/// when the file cannot be read: the deploy itself says why.
async fn base_registries(berth: &Berth, app: &App, commit: &CommitId) -> Vec<String> {
    let Ok(Some(text)) = repository(berth, app.id)
        .read_file(commit, &dockerfile_path(app))
        .await
    else {
        return Vec::new();
    };
    let Ok(bases) = dockerfile::base_images(&text, &Default::default()) else {
        return Vec::new();
    };
    let mut hosts: Vec<String> = Vec::new();
    for base in bases {
        let host = base.image.registry().to_string();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
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
    /// The configuration has private-registry credentials but names no host for them, so
    /// they are sent nowhere: said in a refusal, which may be why a base cannot be pulled.
    unconfirmed_private_registry: bool,
}

/// The app's `APTIBLE_PRIVATE_REGISTRY_HOST`, parsed.
pub fn private_registry_host(environment: &Environment) -> Result<Option<RegistryHost>> {
    environment
        .non_blank(PRIVATE_REGISTRY_HOST)
        .map(|host| {
            RegistryHost::parse(host.expose()).map_err(|e| {
                Error::invalid("env", format!("{PRIVATE_REGISTRY_HOST}: {}", e.message))
            })
        })
        .transpose()
}

/// A private-registry password is bound to the host it was entered for: a change of
/// `APTIBLE_PRIVATE_REGISTRY_HOST` away from the host the stored password serves must give
/// the password again (in the same changes), or the next build would send someone else's
/// secret to a registry of the changer's choosing. Naming a host for the first time (the
/// stored password had none) is the confirmation [`plan_build`] asks for. `field` is where
/// a refusal belongs.
pub fn check_private_host_binding(
    current: &Environment,
    changes: &ConfigChanges,
    field: &str,
) -> Result<()> {
    if !changes.contains(PRIVATE_REGISTRY_HOST) || changes.sets(PRIVATE_REGISTRY_PASSWORD) {
        return Ok(());
    }
    let (Some(_), Some(old_host)) = (
        current.non_blank(PRIVATE_REGISTRY_PASSWORD),
        current.non_blank(PRIVATE_REGISTRY_HOST),
    ) else {
        return Ok(());
    };
    let new_host = current.clone().with(changes);
    let new_host = new_host.non_blank(PRIVATE_REGISTRY_HOST);
    let same = new_host.is_some_and(|new| {
        match (
            RegistryHost::parse(new.expose()),
            RegistryHost::parse(old_host.expose()),
        ) {
            (Ok(new), Ok(old)) => new == old,
            _ => new.expose().trim() == old_host.expose().trim(),
        }
    });
    if same {
        return Ok(());
    }
    Err(Error::invalid(
        field,
        format!(
            "{PRIVATE_REGISTRY_PASSWORD} was entered for {}; a password is only sent to the host it was entered for, so changing {PRIVATE_REGISTRY_HOST} needs the password again: give {PRIVATE_REGISTRY_PASSWORD} (and {PRIVATE_REGISTRY_USERNAME}) with this change.",
            old_host.expose().trim()
        ),
    ))
}

/// A registry the person deploying confirms for the private-registry credentials, as the
/// form or the API gives it (`private_registry_host`): it must be the registry of one of the
/// Dockerfile's base images, and it becomes the app's `APTIBLE_PRIVATE_REGISTRY_HOST` in the
/// same operation.
pub fn parse_confirmed_host(input: Option<&str>) -> Result<Option<RegistryHost>> {
    match input.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(None),
        Some(host) => Ok(Some(
            RegistryHost::parse(host).field("private_registry_host")?,
        )),
    }
}

impl BuildPlan {
    /// The distinct registries of the base images, in file order: where the private-registry
    /// credentials may be sent, once confirmed.
    pub fn registries(&self) -> Vec<RegistryHost> {
        let mut hosts: Vec<RegistryHost> = Vec::new();
        for base in &self.bases {
            if !hosts.contains(base.image.registry()) {
                hosts.push(base.image.registry().clone());
            }
        }
        hosts
    }

    /// Refuses a confirmed host that no base image is on: the credentials would serve no
    /// pull, only reach another host.
    pub fn check_confirmed_host(&self, host: &RegistryHost) -> Result<()> {
        let registries = self.registries();
        if registries.contains(host) {
            return Ok(());
        }
        let listed = registries
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::invalid(
            "private_registry_host",
            format!(
                "No base image of {} is on {host}, so the private-registry credentials are not sent there. Choose the registry of a FROM image{}.",
                self.dockerfile,
                if listed.is_empty() {
                    String::new()
                } else {
                    format!(": {listed}")
                }
            ),
        ))
    }
}

enum BaseImagesError {
    Dockerfile(dockerfile::DockerfileError),
    /// A secret value would change a `FROM`; the secret names the Dockerfile mentions.
    SecretInFrom(Vec<String>),
}

/// The Dockerfile's base images with only the plain configuration values as build
/// arguments: a secret value never becomes part of an image name (which would send it to a
/// registry, and echo it in the error that names a bad `FROM`). buildah gets every build
/// argument, though, so a Dockerfile whose `FROM` would read differently with the secret
/// values is refused rather than built from an image nobody checked. Its error then names the
/// secret variables, never their values.
fn base_images_with_plain_args(
    text: &str,
    build_args: &[(String, Secret)],
    environment: &Environment,
) -> std::result::Result<Vec<dockerfile::BaseImage>, BaseImagesError> {
    let plain: std::collections::BTreeSet<&str> = environment
        .plain_values()
        .map(|(k, _)| k.as_str())
        .collect();
    let args_of = |with_secrets: bool| -> std::collections::BTreeMap<String, String> {
        build_args
            .iter()
            .filter(|(k, _)| with_secrets || plain.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect()
    };
    let with_plain = dockerfile::base_images(text, &args_of(false));
    let secret_names: Vec<&str> = build_args
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !plain.contains(k))
        .collect();
    if !secret_names.is_empty() {
        // Compared, never shown: what the secret values make of the FROM lines.
        let with_secrets = dockerfile::base_images(text, &args_of(true));
        let summary = |bases: &[dockerfile::BaseImage]| -> Vec<(String, Option<String>, usize)> {
            bases
                .iter()
                .map(|b| (b.written.clone(), b.platform.clone(), b.line))
                .collect()
        };
        let differs = match (&with_plain, &with_secrets) {
            (Ok(plain), Ok(secret)) => summary(plain) != summary(secret),
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => true,
            (Err(_), Err(_)) => false,
        };
        if differs {
            let mentioned = secret_names
                .iter()
                .filter(|name| {
                    text.contains(&format!("${name}")) || text.contains(&format!("${{{name}"))
                })
                .map(|name| (*name).to_owned())
                .collect();
            return Err(BaseImagesError::SecretInFrom(mentioned));
        }
    }
    with_plain.map_err(BaseImagesError::Dockerfile)
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

/// The most distinct base images a build plan checks against their registries before a
/// deploy: each is a request to a registry on the user's behalf.
pub const MAX_BASE_IMAGES: usize = 16;

/// Reads the Dockerfile at the commit, lists its external base images and chooses the
/// credentials for each by the resolver's rule. Nothing is asked of a registry.
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
        .map(|(k, v)| (k.as_str().to_owned(), v.value.clone()))
        .collect();
    let bases = base_images_with_plain_args(&text, &build_args, request.environment).map_err(
        |e| match e {
            BaseImagesError::Dockerfile(e) => Error::invalid(
                "git_ref",
                format!("{dockerfile} at {}: {e}", commit.short()),
            ),
            BaseImagesError::SecretInFrom(names) => Error::invalid(
                "env",
                format!(
                    "{dockerfile} at {}: a FROM line uses a secret configuration variable{}. Only plain (visible) variables may name a base image, so that no secret is sent to a registry: set it again marked plain if it holds nothing secret, or write the image in the Dockerfile.",
                    commit.short(),
                    if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
                ),
            ),
        },
    )?;
    let mut distinct: Vec<&domain::ImageReference> = Vec::new();
    for base in &bases {
        if !distinct.contains(&&base.image) {
            distinct.push(&base.image);
        }
    }
    if distinct.len() > MAX_BASE_IMAGES {
        return Err(Error::invalid(
            "git_ref",
            format!(
                "{dockerfile} at {} pulls {} different base images; Berth checks up to {MAX_BASE_IMAGES} before a build. Use fewer base images (stages built on earlier stages do not count).",
                commit.short(),
                distinct.len()
            ),
        ));
    }

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
    // Only the host named in the configuration (or confirmed with this deploy, which puts it
    // there) gets the private-registry credentials; without one they go nowhere.
    let private_host = match private_registry_host(request.environment)? {
        Some(host) if private.is_some() => Some(host),
        _ => None,
    };
    let unconfirmed_private_registry = private.is_some() && private_host.is_none();
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
        unconfirmed_private_registry,
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
    fn refused(&self, dockerfile: &str, error: RegistryError, unconfirmed: bool) -> Error {
        let whose = match &self.credential {
            BaseCredential::Configuration => {
                format!("with {PRIVATE_REGISTRY_USERNAME}/{PRIVATE_REGISTRY_PASSWORD}")
            }
            BaseCredential::None => {
                "without credentials (no team credential matches its registry)".to_owned()
            }
            BaseCredential::Team(name) => format!("with team credential {name}"),
        };
        let unconfirmed = unconfirmed && self.credential == BaseCredential::None;
        AppError::VerificationFailed {
            field: if unconfirmed {
                "private_registry_host".into()
            } else {
                self.field.into()
            },
            reason: error.kind().into(),
            message: format!(
                "Base image {} ({dockerfile} line {}) cannot be pulled {whose}: {}.{} Nothing was built.",
                self.written,
                self.line,
                error.to_string().trim_end_matches('.'),
                if unconfirmed {
                    format!(
                        " {PRIVATE_REGISTRY_USERNAME}/{PRIVATE_REGISTRY_PASSWORD} are set but go to no registry until one is confirmed: choose {} as the private registry with the deploy (private_registry_host) or set {PRIVATE_REGISTRY_HOST}.",
                        self.image.registry()
                    )
                } else {
                    String::new()
                }
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
                return Err(base.refused(
                    &self.dockerfile,
                    error,
                    self.unconfirmed_private_registry,
                ));
            }
        }
        Ok(())
    }
}

/// Checks every external base image of `git_ref`'s Dockerfile against its registry, with
/// the credential a deploy would use, without queuing anything (what the app page shows
/// before a deploy). With `confirm_host`, as if the deploy confirmed that registry for the
/// private-registry credentials (`private_registry_host`).
///
/// Deployers only: it fetches the repository and sends credentials to registries, and its
/// answer reads the Dockerfile with the app's configuration as build arguments.
pub async fn check_bases(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    git_ref: &str,
    confirm_host: Option<&str>,
) -> Result<BaseCheckReport> {
    let reference = GitRefName::parse(git_ref).field("git_ref")?;
    // Deployers: the check reads the Dockerfile with the app's configuration and asks
    // registries with its credentials, which is a deploy's work, not a viewer's.
    let confirmed = parse_confirmed_host(confirm_host)?;
    let access = authorize(
        &berth.store,
        actor,
        team,
        Role::Deployer,
        "check base images",
    )
    .await?;
    let app = crate::apps::load(berth, &access, handle).await?;
    let (repository, commit) = resolve(berth, &app, &reference).await?;
    let mut environment = Environment::load(berth, app.id).await?;
    if let Some(host) = &confirmed {
        let mut changes = ConfigChanges::default();
        changes.set(PRIVATE_REGISTRY_HOST, Secret::new(host.to_string()));
        check_private_host_binding(&environment, &changes, "private_registry_host")?;
        environment = environment.with(&changes);
    }
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
    if let Some(host) = &confirmed {
        plan.check_confirmed_host(host)?;
    }
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
    let private_registry_configured = environment.non_blank(PRIVATE_REGISTRY_USERNAME).is_some()
        && environment.non_blank(PRIVATE_REGISTRY_PASSWORD).is_some();
    Ok(BaseCheckReport {
        git_ref: reference.to_string(),
        commit: commit.to_string(),
        private_registry_host: private_registry_host(&environment)?
            .filter(|_| private_registry_configured)
            .map(|h| h.to_string()),
        registries: plan.registries().iter().map(ToString::to_string).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigChanges, ConfigInput};

    fn environment(changes: &[(&str, ConfigInput)]) -> (Environment, Vec<(String, Secret)>) {
        let changes = ConfigChanges::parse_inputs(
            changes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
        .unwrap();
        let environment = Environment::default().with(&changes);
        let build_args = environment
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.value.clone()))
            .collect();
        (environment, build_args)
    }

    fn images(bases: &[dockerfile::BaseImage]) -> Vec<String> {
        bases.iter().map(|b| b.image.to_string()).collect()
    }

    #[test]
    fn only_plain_values_name_base_images() {
        let text = "ARG BASE=alpine:3\nARG TOOLS=busybox:1\nFROM $BASE\nFROM ${TOOLS}\n";
        let (environment, args) = environment(&[
            (
                "BASE",
                ConfigInput::Plain("registry.example/team/base:2".into()),
            ),
            ("UNUSED", ConfigInput::Secret("s3cr3t-unused".into())),
        ]);
        let bases = base_images_with_plain_args(text, &args, &environment)
            .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(
            images(&bases),
            [
                "registry.example/team/base:2",
                "docker.io/library/busybox:1"
            ]
        );
    }

    fn stored_environment(pairs: &[(&str, &str)]) -> Environment {
        Environment::default().with(&changes(pairs, &[]))
    }

    fn changes(set: &[(&str, &str)], unset: &[&str]) -> ConfigChanges {
        ConfigChanges::parse(
            set.iter()
                .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
                .chain(unset.iter().map(|k| ((*k).to_owned(), None)))
                .collect(),
        )
        .unwrap()
    }

    fn field(result: Result<()>) -> Option<String> {
        result
            .err()
            .map(|e| AppError::from(e).field().unwrap_or_default().to_owned())
    }

    #[test]
    fn a_stored_password_does_not_follow_its_host_elsewhere() {
        let stored = stored_environment(&[
            (PRIVATE_REGISTRY_USERNAME, "bot"),
            (PRIVATE_REGISTRY_PASSWORD, "pw-1"),
            (PRIVATE_REGISTRY_HOST, "registry.example.com"),
        ]);
        let check =
            |changes: ConfigChanges| field(check_private_host_binding(&stored, &changes, "env"));
        // Another host, or none, without the password again: refused.
        assert_eq!(
            check(changes(&[(PRIVATE_REGISTRY_HOST, "evil.example")], &[])).as_deref(),
            Some("env")
        );
        assert_eq!(
            check(changes(&[], &[PRIVATE_REGISTRY_HOST])).as_deref(),
            Some("env")
        );
        // The same host written differently, other variables, or the password again: fine.
        assert_eq!(
            check(changes(
                &[(PRIVATE_REGISTRY_HOST, " Registry.Example.com ")],
                &[]
            )),
            None
        );
        assert_eq!(check(changes(&[("GREETING", "hi")], &[])), None);
        assert_eq!(
            check(changes(
                &[
                    (PRIVATE_REGISTRY_HOST, "evil.example"),
                    (PRIVATE_REGISTRY_PASSWORD, "pw-for-evil")
                ],
                &[]
            )),
            None
        );
    }

    #[test]
    fn a_secret_value_that_would_change_a_from_is_refused_without_being_shown() {
        let secret = "registry.example/s3cr3t-db-password:1";
        // With a default (the check would use it, buildah the secret) and without one.
        for text in [
            "ARG DATABASE_IMAGE=alpine:3\nFROM ${DATABASE_IMAGE}\n",
            "ARG DATABASE_IMAGE\nFROM $DATABASE_IMAGE\n",
        ] {
            let (environment, args) =
                environment(&[("DATABASE_IMAGE", ConfigInput::Secret(secret.into()))]);
            match base_images_with_plain_args(text, &args, &environment) {
                Err(BaseImagesError::SecretInFrom(names)) => {
                    assert_eq!(names, ["DATABASE_IMAGE"], "{text}")
                }
                Err(BaseImagesError::Dockerfile(e)) => panic!("{text}: {e}"),
                Ok(bases) => panic!("{text}: accepted {:?}", images(&bases)),
            }
        }
        // The same value, plain, is the base image.
        let (environment, args) =
            environment(&[("DATABASE_IMAGE", ConfigInput::Plain(secret.into()))]);
        let bases = base_images_with_plain_args(
            "ARG DATABASE_IMAGE\nFROM $DATABASE_IMAGE\n",
            &args,
            &environment,
        )
        .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(images(&bases), [secret]);
    }

    #[test]
    fn secret_values_that_no_from_uses_change_nothing() {
        let text = "FROM alpine:3\nARG API_TOKEN\nRUN echo $API_TOKEN\n";
        let (environment, args) =
            environment(&[("API_TOKEN", ConfigInput::Secret("s3cr3t".into()))]);
        let bases = base_images_with_plain_args(text, &args, &environment)
            .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(images(&bases), ["docker.io/library/alpine:3"]);
    }

    #[test]
    fn a_password_without_a_host_may_be_given_its_first_host() {
        let stored = stored_environment(&[
            (PRIVATE_REGISTRY_USERNAME, "bot"),
            (PRIVATE_REGISTRY_PASSWORD, "pw-1"),
        ]);
        let first = changes(&[(PRIVATE_REGISTRY_HOST, "registry.example.com")], &[]);
        assert_eq!(
            field(check_private_host_binding(&stored, &first, "env")),
            None
        );
        assert_eq!(
            private_registry_host(&stored.with(&first))
                .unwrap()
                .map(|h| h.to_string())
                .as_deref(),
            Some("registry.example.com")
        );
    }

    #[test]
    fn a_confirmed_host_is_parsed_and_named_by_its_field() {
        assert_eq!(parse_confirmed_host(None).unwrap(), None);
        assert_eq!(parse_confirmed_host(Some("  ")).unwrap(), None);
        assert_eq!(
            parse_confirmed_host(Some("ghcr.io")).unwrap(),
            Some(RegistryHost::parse("ghcr.io").unwrap())
        );
        let error = AppError::from(parse_confirmed_host(Some("https://ghcr.io")).unwrap_err());
        assert_eq!(error.field(), Some("private_registry_host"));
    }
}
