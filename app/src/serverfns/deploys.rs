//! The deploy forms of an app's page: an image, or a branch, tag or commit. Both fill the
//! same `DeployFields` the JSON API fills, and `service::deploys` reads them with one set of
//! rules.

// A server function takes one argument per form field, so long argument lists are the norm.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use views::AppError;

#[cfg(feature = "ssr")]
async fn deploy(
    team: &str,
    app: &str,
    fields: service::deploys::DeployFields,
) -> Result<i64, AppError> {
    let user = crate::ssr::require_user().await?;
    let request = service::deploys::DeployRequest::parse(fields)?;
    let (access, operation) =
        service::deploys::deploy(&crate::ssr::berth()?, user, team, app, request).await?;
    crate::ssr::redirect_to_operation(&access.handle, operation.id);
    Ok(operation.id)
}

/// Verifies and queues a deploy of an image; answers the operation's id. `credentials` is
/// `auto`, `remembered`, `team` (with `credential`, or matched by registry host when it is
/// empty), `new` (with `registry_username`, `registry_password` and `remember`: `app` or
/// `once`) or `none`. `env_text` (secret values) and `plain_env_text` (plain ones) hold configuration changes
/// applied with the deploy.
#[server]
pub async fn deploy_image(
    csrf_token: String,
    team: String,
    app: String,
    image: String,
    credentials: Option<String>,
    credential: Option<String>,
    registry_username: Option<String>,
    registry_password: Option<String>,
    remember: Option<String>,
    env_text: Option<String>,
    plain_env_text: Option<String>,
) -> Result<i64, AppError> {
    use service::{config::ConfigChanges, deploys};
    let _ = csrf_token;
    let fields = deploys::DeployFields {
        image: Some(image),
        git_ref: None,
        credentials: Some(credentials.unwrap_or_else(|| "auto".into())),
        credential,
        registry_username,
        registry_password,
        remember: deploys::parse_remember(remember.as_deref())?,
        env: ConfigChanges::parse_form(
            env_text.as_deref().unwrap_or_default(),
            plain_env_text.as_deref().unwrap_or_default(),
        )?,
        private_registry_host: None,
    };
    deploy(&team, &app, fields).await
}

/// Verifies and queues a Dockerfile deploy of `git_ref` (a branch, tag or commit); answers
/// the operation's id. `registry_username` / `registry_password` are the credentials for
/// private base images: they become the `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD`
/// configuration changes of this same operation, like the changes in `env_text` (one
/// build, one restart). They, and those configured before, go only to the registry of
/// `APTIBLE_PRIVATE_REGISTRY_HOST` or to `private_registry_host`, the registry the person
/// confirms (which becomes that setting).
#[server]
pub async fn deploy_ref(
    csrf_token: String,
    team: String,
    app: String,
    git_ref: String,
    registry_username: Option<String>,
    registry_password: Option<String>,
    private_registry_host: Option<String>,
    env_text: Option<String>,
    plain_env_text: Option<String>,
) -> Result<i64, AppError> {
    use service::{config::ConfigChanges, deploys};
    let _ = csrf_token;
    let fields = deploys::DeployFields {
        git_ref: Some(git_ref),
        registry_username,
        registry_password,
        private_registry_host,
        env: ConfigChanges::parse_form(
            env_text.as_deref().unwrap_or_default(),
            plain_env_text.as_deref().unwrap_or_default(),
        )?,
        ..Default::default()
    };
    deploy(&team, &app, fields).await
}
