//! Apps: the list, a new app, an app's page, and the forms on it that are not deploys
//! (fetch the repository, check base images, configure, restart).

// A server function takes one argument per form field, so long argument lists are the norm.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, AppLogPage, AppPage, AppsPage, BaseCheckReport};

// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_apps(team: String) -> Result<AppsPage, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::apps::list_page(&crate::ssr::berth()?, user, &team).await?)
}

/// Creates an app and goes to its page, where it can be deployed. A Dockerfile app also
/// takes its git source: `git_url`, `dockerfile` and `context` (defaults `Dockerfile` and
/// `.`), and optional read credentials `git_username` / `git_password` (stored encrypted).
#[server]
pub async fn create_app(
    csrf_token: String,
    team: String,
    handle: String,
    method: String,
    health_path: Option<String>,
    git_url: Option<String>,
    dockerfile: Option<String>,
    context: Option<String>,
    git_username: Option<String>,
    git_password: Option<String>,
    #[server(default)] platform: Option<String>,
    #[server(default)] aptible_environment: Option<String>,
    #[server(default)] aptible_app: Option<String>,
    #[server(default)] aptible_skip_verification: Option<String>,
) -> Result<String, AppError> {
    use service::builds::GitInput;
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let git_url = git_url.unwrap_or_default();
    // Without JavaScript the git fields are on the form whatever the method, so a repository
    // given with the image method is most likely a forgotten choice of method.
    let git = match domain::DeployMethod::parse(&method) {
        Ok(domain::DeployMethod::Dockerfile) => Some(GitInput {
            url: git_url,
            dockerfile: dockerfile.unwrap_or_default(),
            context: context.unwrap_or_default(),
            username: git_username.unwrap_or_default(),
            password: git_password.unwrap_or_default(),
        }),
        _ if !git_url.trim().is_empty() => {
            return Err(AppError::invalid(
                "git_url",
                "A repository is for Dockerfile apps: choose \"Dockerfile\" as the deploy method, or leave the repository empty.",
            ))
        }
        _ => None,
    };
    let (access, app) = service::apps::create(
        &crate::ssr::berth()?,
        user,
        &team,
        service::apps::NewAppInput {
            handle: &handle,
            method: &method,
            health_path: health_path.as_deref(),
            git,
            platform: platform
                .as_deref()
                .map(|kind| service::apps::PlatformInput {
                    kind,
                    environment: aptible_environment.as_deref().unwrap_or_default(),
                    app: aptible_app.as_deref().unwrap_or_default(),
                    verify_images: aptible_skip_verification.is_none(),
                }),
        },
    )
    .await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{}/apps/{}", access.handle, app.handle));
    Ok(app.handle.to_string())
}

/// An app's page: its release, credentials (names only), configuration (secret values
/// withheld), recent operations and what its deploy form offers.
#[server(input = GetUrl)]
pub async fn load_app(team: String, app: String) -> Result<AppPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let flash = crate::ssr::take_flash().await?;
    Ok(service::apps::page(&crate::ssr::berth()?, user, &team, &app, flash).await?)
}

/// An app's Logs tab: its running release's latest output, read again while it is open.
#[server(input = GetUrl)]
pub async fn load_app_log(team: String, app: String) -> Result<AppLogPage, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::apps::log_page(&crate::ssr::berth()?, user, &team, &app).await?)
}

/// Fetches a Dockerfile app's repository again, so that new branches, tags and commits show.
/// Answers how many branches and tags it has.
#[server]
pub async fn fetch_refs(csrf_token: String, team: String, app: String) -> Result<usize, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let (access, found, refs, _) =
        service::builds::refs(&crate::ssr::berth()?, user, &team, &app, true).await?;
    crate::ssr::redirect_plain_form_post(&format!(
        "/teams/{}/apps/{}/deploy#source-heading",
        access.handle, found.handle
    ));
    Ok(refs.len())
}

/// Checks every external base image of `git_ref`'s Dockerfile with the credential a deploy
/// would use (with `private_registry_host`: as if the deploy confirmed that registry for the
/// private-registry credentials). Nothing is queued, but it fetches the repository and asks
/// registries with credentials: a POST, for deployers. A plain form post finds the report on
/// the app's page it is sent back to.
#[server]
pub async fn check_base_images(
    csrf_token: String,
    team: String,
    app: String,
    git_ref: String,
    private_registry_host: Option<String>,
) -> Result<Option<BaseCheckReport>, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let report = service::builds::check_bases(
        &crate::ssr::berth()?,
        user,
        &team,
        &app,
        &git_ref,
        private_registry_host.as_deref(),
    )
    .await?;
    if crate::ssr::is_plain_form_post() {
        crate::ssr::set_flash(&views::Flash::BaseCheck(report)).await?;
        crate::ssr::redirect_plain_form_post(&format!(
            "/teams/{team}/apps/{app}/deploy#base-check-heading"
        ));
        Ok(None)
    } else {
        Ok(Some(report))
    }
}

/// Queues a configure operation (which restarts the running release with the changes).
#[server]
pub async fn configure_app(
    csrf_token: String,
    team: String,
    app: String,
    env_text: Option<String>,
    plain_env_text: Option<String>,
) -> Result<i64, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let changes = service::config::ConfigChanges::parse_form(
        env_text.as_deref().unwrap_or_default(),
        plain_env_text.as_deref().unwrap_or_default(),
    )?;
    let (access, operation) =
        service::operations::configure(&crate::ssr::berth()?, user, &team, &app, changes).await?;
    crate::ssr::redirect_to_operation(&access.handle, operation.id);
    Ok(operation.id)
}

/// Queues a restart of the running release.
#[server]
pub async fn restart_app(csrf_token: String, team: String, app: String) -> Result<i64, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let (access, operation) =
        service::operations::restart(&crate::ssr::berth()?, user, &team, &app).await?;
    crate::ssr::redirect_to_operation(&access.handle, operation.id);
    Ok(operation.id)
}
