//! Deploys. A deploy is checked completely before it is queued: what it names parses, the
//! credentials are chosen by [`crate::resolver`]'s rule, and the registry proves with them
//! that the exact image (or, for a Dockerfile deploy, every base image) can be pulled and
//! says its digest. Nothing is queued when any of that fails, so a bad deploy never touches
//! what runs.
//!
//! The form and the JSON API fill the same [`DeployFields`]; [`DeployRequest::parse`] reads
//! them once, with one set of rules and field names, for both deploy methods.

use crate::{
    apps,
    audit::{self, credential_subject},
    authz::authorize,
    builds::{self, PlanRequest},
    config::{
        ConfigChanges, Environment, PRIVATE_REGISTRY_HOST, PRIVATE_REGISTRY_PASSWORD,
        PRIVATE_REGISTRY_USERNAME,
    },
    operations,
    resolver::{Chosen, CredentialChoice, Resolver},
    Berth, Error, Result,
};
use domain::{
    parse_username, CredentialName, DeployMethod, GitRefName, ImageReference, RegistryHost, Role,
    Secret,
};
use platform::registry::RegistryError;
use store::{AppChangesOnEnqueue, NewOperation, Operation, SecretSlot, TeamAccess};
use views::{AppError, FieldExt};

const DEPLOY: &str = "deploy apps";

/// A deploy's fields as the console's forms and the JSON API send them, before parsing.
#[derive(Clone, Debug, Default)]
pub struct DeployFields {
    pub image: Option<String>,
    pub git_ref: Option<String>,
    /// The form's choice of credentials: `auto`, `remembered`, `team`, `new` or `none`.
    /// Without it (the API), the fields given decide: a username and password, a team
    /// credential's name, or neither (Berth picks).
    pub credentials: Option<String>,
    /// A team credential's name (empty: matched by the image's registry host).
    pub credential: Option<String>,
    pub registry_username: Option<String>,
    pub registry_password: Option<String>,
    /// Keep the credentials given with the deploy on the app (the default), or use them for
    /// this deploy only.
    pub remember: Option<bool>,
    /// Configuration changes applied with the deploy: one operation, one restart.
    pub env: ConfigChanges,
    /// Dockerfile deploys: the registry the person confirms for the private-registry
    /// credentials (`APTIBLE_PRIVATE_REGISTRY_*`), which becomes the app's
    /// `APTIBLE_PRIVATE_REGISTRY_HOST` in the same operation.
    pub private_registry_host: Option<String>,
}

/// What a deploy runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeploySource {
    /// A Direct Docker Image deploy of this image.
    Image(ImageReference),
    /// A Dockerfile deploy of this branch, tag or commit.
    GitRef(GitRefName),
}

/// A deploy, parsed.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    /// `None` when the request named neither an image nor a git ref (the app's method then
    /// says which was missing).
    pub source: Option<DeploySource>,
    pub credentials: CredentialChoice,
    pub env: ConfigChanges,
    pub private_registry_host: Option<RegistryHost>,
}

/// The form's "Keep them?" choice: `app` (the default) or `once`.
pub fn parse_remember(choice: Option<&str>) -> Result<Option<bool>> {
    match choice.map(str::trim) {
        None | Some("") => Ok(None),
        Some("app") => Ok(Some(true)),
        Some("once") => Ok(Some(false)),
        Some(other) => Err(Error::invalid(
            "remember",
            format!("\"{other}\" is not a choice; use \"app\" or \"once\"."),
        )),
    }
}

fn given(username: String, password: String, remember: Option<bool>) -> Result<CredentialChoice> {
    let mut problems = views::Problems::default();
    let username = problems.check(parse_username(&username), "registry_username");
    let password = problems.check(Secret::parse(&password), "registry_password");
    problems.finish()?;
    match (username, password) {
        (Some(username), Some(password)) => Ok(CredentialChoice::Given {
            username,
            password,
            remember: remember.unwrap_or(true),
        }),
        _ => Err(Error::unchecked("deploy credentials")),
    }
}

fn credential_name(name: &str) -> Result<CredentialName> {
    Ok(CredentialName::parse(name).field("credential")?)
}

/// What to deploy: an image or a git ref (`None`: neither was given).
fn deploy_source(image: Option<String>, git_ref: Option<String>) -> Result<Option<DeploySource>> {
    Ok(match (image, git_ref) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "git_ref",
                "Give either \"image\" or \"git_ref\", not both.",
            ))
        }
        (Some(image), None) => Some(DeploySource::Image(
            ImageReference::parse(&image).field("image")?,
        )),
        (None, Some(git_ref)) => Some(DeploySource::GitRef(
            GitRefName::parse(&git_ref).field("git_ref")?,
        )),
        (None, None) => None,
    })
}

/// Which credentials pull the image (or the base images): the form's choice, or (the API)
/// what the fields given say.
fn credential_choice(
    choice: Option<&str>,
    credential: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remember: Option<bool>,
) -> Result<CredentialChoice> {
    Ok(match choice.map(str::trim) {
        None => match (username, password, credential) {
            (Some(_), Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "credential",
                    "Give either a team credential or a username and password, not both.",
                ))
            }
            (Some(username), Some(password), None) => given(username, password, remember)?,
            (Some(_), None, _) => {
                return Err(Error::invalid(
                    "registry_password",
                    "Give the registry password (or token) that goes with the username.",
                ))
            }
            (None, Some(_), _) => {
                return Err(Error::invalid(
                    "registry_username",
                    "Give the registry username that goes with the password (or token).",
                ))
            }
            (None, None, Some(name)) => CredentialChoice::Team(Some(credential_name(&name)?)),
            (None, None, None) => CredentialChoice::Auto,
        },
        Some("auto" | "") => CredentialChoice::Auto,
        Some("remembered") => CredentialChoice::Remembered,
        Some("team") => {
            CredentialChoice::Team(credential.as_deref().map(credential_name).transpose()?)
        }
        Some("new") => given(
            username.unwrap_or_default(),
            password.unwrap_or_default(),
            remember,
        )?,
        Some("none") => CredentialChoice::None,
        Some(other) => {
            return Err(Error::invalid(
                "credentials",
                format!("\"{other}\" is not a choice; use auto, remembered, team, new or none."),
            ))
        }
    })
}

impl DeployRequest {
    /// Every field is checked before answering, so that the form shows all its problems at
    /// once (the image and the credentials, say).
    pub fn parse(fields: DeployFields) -> Result<Self> {
        let non_empty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let mut problems = views::Problems::default();
        let source = Error::noted(
            &mut problems,
            deploy_source(non_empty(fields.image), non_empty(fields.git_ref)),
        )?;
        let credentials = Error::noted(
            &mut problems,
            credential_choice(
                fields.credentials.as_deref(),
                non_empty(fields.credential),
                non_empty(fields.registry_username),
                fields.registry_password.filter(|p| !p.is_empty()),
                fields.remember,
            ),
        )?;
        let private_registry_host = Error::noted(
            &mut problems,
            builds::parse_confirmed_host(fields.private_registry_host.as_deref()),
        )?;
        if let (Some(Some(_)), Some(Some(DeploySource::Image(_)))) =
            (&private_registry_host, &source)
        {
            problems.add(
                "private_registry_host",
                "private_registry_host is for Dockerfile deploys (the registry that gets APTIBLE_PRIVATE_REGISTRY_*); an image deploy sends credentials to the image's own registry.",
            );
        }
        problems.finish()?;
        let (Some(source), Some(credentials), Some(private_registry_host)) =
            (source, credentials, private_registry_host)
        else {
            return Err(Error::unchecked("deploy"));
        };
        Ok(Self {
            source,
            credentials,
            env: fields.env,
            private_registry_host,
        })
    }
}

/// Verifies and queues a deploy; answers the queued operation.
pub async fn deploy(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    request: DeployRequest,
) -> Result<(TeamAccess, Operation)> {
    let access = authorize(&berth.store, actor, team, Role::Deployer, DEPLOY).await?;
    // Each deploy reaches registries and queues a build or a pull: throttled per person.
    berth.accounts.throttles.deploy.check(&actor.to_string())?;
    let app = apps::load(berth, &access, handle).await?;
    let operation = match (app.method, request.source) {
        (DeployMethod::Image, Some(DeploySource::Image(image))) => {
            deploy_image(
                berth,
                &access,
                &app,
                actor,
                image,
                request.credentials,
                request.env,
            )
            .await?
        }
        (DeployMethod::Dockerfile, Some(DeploySource::GitRef(git_ref))) => {
            deploy_ref(
                berth,
                &access,
                &app,
                actor,
                git_ref,
                request.credentials,
                request.env,
                request.private_registry_host,
            )
            .await?
        }
        (DeployMethod::Image, Some(DeploySource::GitRef(_))) => {
            return Err(Error::invalid(
                "git_ref",
                "This app deploys images: give an image instead of a git ref.",
            ))
        }
        (DeployMethod::Dockerfile, Some(DeploySource::Image(_))) => {
            return Err(Error::invalid(
                "image",
                "This app builds from a Dockerfile: deploy a git ref instead of an image.",
            ))
        }
        (DeployMethod::Image, None) => {
            return Err(Error::invalid(
                "image",
                "Give the image to deploy, e.g. registry.example.com/team/app:1.4.",
            ))
        }
        (DeployMethod::Dockerfile, None) => {
            return Err(Error::invalid(
                "git_ref",
                "Give the branch, tag or commit to deploy.",
            ))
        }
    };
    Ok((access, operation))
}

/// Why the registry refused an image deploy, next to the field the person can fix.
fn image_refused(chosen: &Chosen, image: &ImageReference, error: RegistryError) -> Error {
    let error = match chosen.login() {
        Some(login) => error.redact(login.secret.expose()),
        None => error,
    };
    let advice = match (chosen, &error) {
        (
            Chosen::Remembered { .. },
            RegistryError::WrongCredentials | RegistryError::TokenExpired,
        ) => " Give new credentials with this deploy; they replace the remembered ones.",
        (
            Chosen::None,
            RegistryError::CredentialsRequired
            | RegistryError::WrongCredentials
            | RegistryError::Denied { .. },
        ) => " The image is private: give registry credentials or choose a team credential.",
        _ => "",
    };
    AppError::VerificationFailed {
        field: refused_field(chosen, &error).into(),
        reason: error.kind().into(),
        message: format!(
            "{} Berth could not pull {image}: {}.{advice}",
            chosen.describe(),
            error.to_string().trim_end_matches('.')
        ),
    }
    .into()
}

/// The deploy field a registry's refusal is about: the image when the login worked (or
/// never got that far) but the image is not there or the registry cannot be reached, the
/// credentials when they were refused.
fn refused_field(chosen: &Chosen, error: &RegistryError) -> &'static str {
    let about_the_image = matches!(
        error,
        RegistryError::NotFound { .. }
            | RegistryError::Unreachable(_)
            | RegistryError::Timeout
            | RegistryError::Protocol(_)
            | RegistryError::Refused(_)
    );
    match chosen {
        _ if about_the_image => "image",
        Chosen::None => "image",
        Chosen::Team { .. } => "credential",
        Chosen::Remembered { .. } => "credentials",
        Chosen::Given { .. } => "registry_password",
    }
}

/// A Direct Docker Image deploy: verified and pinned to the image's digest, then queued.
async fn deploy_image(
    berth: &Berth,
    access: &TeamAccess,
    app: &store::App,
    actor: i64,
    image: ImageReference,
    choice: CredentialChoice,
    env: ConfigChanges,
) -> Result<Operation> {
    berth.ready_for(app).await?;
    let resolver = Resolver::for_image_app(berth, app).await?;
    let chosen = resolver.choose(image.registry(), &choice).await?;
    // An app on Aptible may skip the check, for registries only Aptible can reach: its
    // deploy then records no digest.
    let verify = app
        .platform
        .aptible()
        .is_none_or(|target| target.verify_images);
    let digest = if verify {
        Some(verified_digest(berth, access, app, actor, &image, &chosen).await?)
    } else {
        None
    };
    let remember = match &chosen {
        Chosen::Given {
            login,
            remember: true,
        } => Some((
            image.registry().clone(),
            login.username.clone(),
            berth
                .secrets
                .seal(&SecretSlot::AppRemembered(app.id), &login.secret),
        )),
        _ => None,
    };
    let team_credential = match &chosen {
        Chosen::Team { credential, .. } => Some(Some(credential.id)),
        // Credentials typed with a deploy and kept take over from a team credential.
        Chosen::Given { remember: true, .. } => Some(None),
        _ => None,
    };
    let new =
        NewOperation::deploy_image(access.team_id, app.id, actor, image.clone(), digest.clone())
            .with_credential(chosen.record())
            .with_config_changes(env.names());
    let operation = operations::queue(
        berth,
        new,
        chosen.login().map(|l| &l.secret),
        &env,
        AppChangesOnEnqueue {
            remember,
            team_credential,
        },
    )
    .await?;
    tracing::info!(
        team = %access.handle, app = %app.handle, operation = operation.id, image = %image,
        digest = %digest.as_ref().map_or("not verified".to_owned(), ToString::to_string), credentials = %chosen.source(), by = actor, "deploy queued"
    );
    Ok(operation)
}

/// Verifies `image` against its registry with the chosen login and answers its digest; a
/// refusal is audited against the team credential that was tried.
async fn verified_digest(
    berth: &Berth,
    access: &TeamAccess,
    app: &store::App,
    actor: i64,
    image: &ImageReference,
    chosen: &Chosen,
) -> Result<domain::Digest> {
    let resolved = match berth
        .registry
        .verify(image.registry(), chosen.login(), Some(image))
        .await
    {
        Ok(verified) => verified
            .image
            .ok_or_else(|| Error::internal("verification with an image returned no image"))?,
        Err(error) => {
            let refused = image_refused(chosen, image, error);
            if let Some(credential) = chosen.team_credential() {
                let detail = format!(
                    "verifying {image} before a deploy of {}: {refused}",
                    app.handle
                );
                audit::record(
                    berth,
                    access.team_id,
                    Some(actor),
                    "credential.use",
                    &credential_subject(credential.name.as_str()),
                    false,
                    &detail,
                )
                .await?;
            }
            return Err(refused);
        }
    };
    if resolved.linux_amd64_digest.is_none() {
        return Err(Error::invalid(
            "image",
            format!(
                "{image} has no linux/amd64 image (it has {}); Berth runs linux/amd64.",
                resolved.platforms.join(", ")
            ),
        ));
    }
    Ok(resolved.digest)
}

/// A Dockerfile deploy of `git_ref`: the ref resolved to a commit, every base image proved
/// pullable with the credentials the build will use, then queued — with the configuration
/// changes (and registry credentials given with it) applied in the same operation: one
/// build, one restart.
///
/// The private-registry credentials go only to `APTIBLE_PRIVATE_REGISTRY_HOST`, or to the
/// registry confirmed with the deploy (`confirmed`, which must be one of the Dockerfile's
/// base registries and becomes that setting); credentials typed with the deploy and no host
/// for them are refused rather than sent to a guess.
#[allow(clippy::too_many_arguments)]
async fn deploy_ref(
    berth: &Berth,
    access: &TeamAccess,
    app: &store::App,
    actor: i64,
    git_ref: GitRefName,
    choice: CredentialChoice,
    mut env: ConfigChanges,
    confirmed: Option<RegistryHost>,
) -> Result<Operation> {
    // Credentials typed with a Dockerfile deploy become the app's private-registry
    // configuration in this same operation; a team credential named is used for its
    // registry's base images; anything else leaves the choice to the rule.
    let (registry_fields, named) = match choice {
        CredentialChoice::Given {
            username,
            password,
            remember,
        } => {
            if !remember {
                return Err(Error::invalid(
                    "remember_credentials",
                    "A Dockerfile deploy keeps registry credentials in the app's configuration \
                     (APTIBLE_PRIVATE_REGISTRY_*), so they cannot be for this deploy only; \
                     leave remember_credentials out.",
                ));
            }
            for key in [PRIVATE_REGISTRY_USERNAME, PRIVATE_REGISTRY_PASSWORD] {
                if env.contains(key) {
                    return Err(Error::invalid(
                        "env",
                        format!(
                            "{key} is also given in the registry fields; give it in one place only."
                        ),
                    ));
                }
            }
            env.set(PRIVATE_REGISTRY_USERNAME, Secret::new(username));
            env.set(PRIVATE_REGISTRY_PASSWORD, password);
            (true, None)
        }
        CredentialChoice::Team(Some(name)) => (false, Some(name)),
        CredentialChoice::Auto
        | CredentialChoice::Remembered
        | CredentialChoice::Team(None)
        | CredentialChoice::None => (false, None),
    };
    if let Some(host) = &confirmed {
        if env.contains(PRIVATE_REGISTRY_HOST) {
            return Err(Error::invalid(
                "env",
                format!(
                    "{PRIVATE_REGISTRY_HOST} is also given as private_registry_host; give it in one place only."
                ),
            ));
        }
        env.set(PRIVATE_REGISTRY_HOST, Secret::new(host.to_string()));
    }
    let current = Environment::load(berth, app.id).await?;
    builds::check_private_host_binding(
        &current,
        &env,
        if confirmed.is_some() {
            "private_registry_host"
        } else {
            "env"
        },
    )?;
    let environment = current.with(&env);
    if registry_fields && builds::private_registry_host(&environment)?.is_none() {
        return Err(Error::invalid(
            "private_registry_host",
            format!(
                "Registry credentials given with a Dockerfile deploy go only to a registry you confirm: choose the registry of the FROM image they are for (private_registry_host), or set {PRIVATE_REGISTRY_HOST}. Nothing was sent."
            ),
        ));
    }
    // An app on Aptible needs the team's connection here, not the local builder: Aptible
    // builds it (the worker pushes the commit and forwards the deploy). The base images are
    // still proved pullable below, with registries only.
    berth.ready_for(app).await?;
    let (repository, commit) = builds::resolve(berth, app, &git_ref).await?;
    let plan = builds::plan_build(
        berth,
        app,
        PlanRequest {
            repository: &repository,
            commit: &commit,
            environment: &environment,
            credentials_given: env.sets(PRIVATE_REGISTRY_PASSWORD),
            registry_fields,
            credential: named.as_ref(),
        },
    )
    .await?;
    if let Some(host) = &confirmed {
        plan.check_confirmed_host(host)?;
    }
    plan.verify(berth).await?;
    let new = NewOperation::deploy_ref(
        access.team_id,
        app.id,
        actor,
        git_ref.clone(),
        commit.clone(),
    )
    .with_credential(plan.credential)
    .with_config_changes(env.names());
    let operation =
        operations::queue(berth, new, None, &env, AppChangesOnEnqueue::default()).await?;
    tracing::info!(
        team = %access.handle, app = %app.handle, operation = operation.id, git_ref = %git_ref,
        commit = %commit, by = actor, "Dockerfile deploy queued"
    );
    Ok(operation)
}

/// Runs again the image an earlier Dockerfile deploy built (`pinned`), from this server's
/// image storage: nothing is fetched or built, so it is the same build. Refused when the
/// image was pruned (a build is never rebuilt by digest: the same commit may build
/// differently), and for apps on Aptible, which builds their images there.
pub(crate) async fn redeploy_build(
    berth: &Berth,
    actor: i64,
    team: &str,
    earlier: &Operation,
    pinned: ImageReference,
) -> Result<(TeamAccess, Operation)> {
    let access = authorize(&berth.store, actor, team, Role::Deployer, DEPLOY).await?;
    berth.accounts.throttles.deploy.check(&actor.to_string())?;
    let app = apps::load(berth, &access, earlier.app_handle.as_str()).await?;
    let (Some(digest), Some(commit)) = (pinned.digest().cloned(), earlier.commit_sha.clone())
    else {
        return Err(Error::invalid(
            "",
            "That deploy recorded no built image to run again; deploy a commit instead.",
        ));
    };
    if app.platform.aptible().is_some() {
        return Err(Error::invalid(
            "",
            format!(
                "This app runs on Aptible, which builds its images: deploy commit {} again.",
                commit.short()
            ),
        ));
    }
    berth.ready_for(&app).await?;
    let stored = berth
        .platform
        .has_image(&crate::disk::app_ref(&app), &pinned)
        .await
        .map_err(|e| Error::internal(format!("looking for {pinned}: {e}")))?;
    if !stored {
        return Err(Error::conflict(
            "",
            format!(
                "The {} (commit {}).",
                crate::disk::BUILD_PRUNED.trim_start_matches("the "),
                commit.short()
            ),
        ));
    }
    let image = earlier.image.clone().unwrap_or_else(|| pinned.clone());
    let new = NewOperation::redeploy_build(access.team_id, app.id, actor, image, digest, commit);
    let operation = operations::queue(
        berth,
        new,
        None,
        &ConfigChanges::default(),
        AppChangesOnEnqueue::default(),
    )
    .await?;
    tracing::info!(
        team = %access.handle, app = %app.handle, operation = operation.id, image = %pinned,
        by = actor, "redeploy of a built image queued"
    );
    Ok((access, operation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fields: DeployFields) -> std::result::Result<DeployRequest, AppError> {
        DeployRequest::parse(fields).map_err(AppError::from)
    }

    fn field_of(fields: DeployFields) -> String {
        parse(fields)
            .unwrap_err()
            .field()
            .unwrap_or_default()
            .to_owned()
    }

    fn api(
        username: Option<&str>,
        password: Option<&str>,
        credential: Option<&str>,
    ) -> DeployFields {
        DeployFields {
            image: Some("ghcr.io/acme/web:1".into()),
            registry_username: username.map(Into::into),
            registry_password: password.map(Into::into),
            credential: credential.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn without_a_choice_the_fields_given_decide_the_credentials() {
        assert_eq!(
            parse(api(None, None, None)).unwrap().credentials,
            CredentialChoice::Auto
        );
        assert_eq!(
            parse(api(None, None, Some("ghcr"))).unwrap().credentials,
            CredentialChoice::Team(Some(CredentialName::parse("ghcr").unwrap()))
        );
        match parse(api(Some("bot"), Some("pw-1"), None))
            .unwrap()
            .credentials
        {
            CredentialChoice::Given {
                username,
                password,
                remember,
            } => assert_eq!(
                (username.as_str(), password.expose(), remember),
                ("bot", "pw-1", true)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(field_of(api(Some("bot"), None, None)), "registry_password");
        assert_eq!(field_of(api(None, Some("pw-1"), None)), "registry_username");
        assert_eq!(
            field_of(api(Some("bot"), Some("pw-1"), Some("ghcr"))),
            "credential"
        );
    }

    #[test]
    fn the_forms_choice_is_read_by_the_same_rules() {
        let form = |choice: &str| DeployFields {
            credentials: Some(choice.into()),
            ..api(None, None, None)
        };
        assert_eq!(
            parse(form("remembered")).unwrap().credentials,
            CredentialChoice::Remembered
        );
        assert_eq!(
            parse(form("none")).unwrap().credentials,
            CredentialChoice::None
        );
        assert_eq!(
            parse(form("team")).unwrap().credentials,
            CredentialChoice::Team(None)
        );
        assert_eq!(field_of(form("new")), "registry_username");
        assert_eq!(field_of(form("sometimes")), "credentials");
        let once = DeployFields {
            credentials: Some("new".into()),
            remember: parse_remember(Some("once")).unwrap(),
            ..api(Some("bot"), Some("pw-1"), None)
        };
        assert!(matches!(
            parse(once).unwrap().credentials,
            CredentialChoice::Given {
                remember: false,
                ..
            }
        ));
        assert_eq!(
            AppError::from(parse_remember(Some("forever")).unwrap_err()).field(),
            Some("remember")
        );
    }

    #[test]
    fn a_deploy_names_an_image_or_a_git_ref() {
        let source = |image: Option<&str>, git_ref: Option<&str>| DeployFields {
            image: image.map(Into::into),
            git_ref: git_ref.map(Into::into),
            ..Default::default()
        };
        assert!(matches!(
            parse(source(Some("nginx"), None)).unwrap().source,
            Some(DeploySource::Image(_))
        ));
        assert!(matches!(
            parse(source(None, Some("main"))).unwrap().source,
            Some(DeploySource::GitRef(_))
        ));
        assert_eq!(parse(source(Some(" "), None)).unwrap().source, None);
        assert_eq!(field_of(source(Some("nginx"), Some("main"))), "git_ref");
        assert_eq!(field_of(source(Some("Nginx"), None)), "image");
        assert_eq!(field_of(source(None, Some("-c"))), "git_ref");
    }

    #[test]
    fn a_refusal_is_put_next_to_the_field_it_is_about() {
        let given = Chosen::Given {
            login: platform::registry::BasicCredentials::new("bot", Secret::parse("pass").unwrap()),
            remember: true,
        };
        let missing = RegistryError::NotFound {
            what: platform::registry::Missing::Tag,
            repository: "team/web".into(),
            reference: "nope".into(),
        };
        assert_eq!(refused_field(&given, &missing), "image");
        assert_eq!(refused_field(&given, &RegistryError::Timeout), "image");
        assert_eq!(
            refused_field(&given, &RegistryError::WrongCredentials),
            "registry_password"
        );
        assert_eq!(
            refused_field(&Chosen::None, &RegistryError::CredentialsRequired),
            "image"
        );
    }
}
