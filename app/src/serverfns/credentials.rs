//! Team registry credentials: the list, one credential's page, and the forms that create,
//! change, delete and verify them.

// A server function takes one argument per form field, so long argument lists are the norm.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, CredentialPage, CredentialsPage, Flash};

// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_credentials(team: String) -> Result<CredentialsPage, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::credentials::list_page(&crate::ssr::berth()?, user, &team).await?)
}

#[server(input = GetUrl)]
pub async fn load_credential(team: String, name: String) -> Result<CredentialPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let flash = crate::ssr::take_flash().await?;
    Ok(service::credentials::page(&crate::ssr::berth()?, user, &team, &name, flash).await?)
}

/// Creates a credential and goes to its page (where it can be verified). Kind `basic`
/// takes the username and secret, kind `ecr` the AWS fields; the form has both.
#[server]
pub async fn create_credential(
    csrf_token: String,
    team: String,
    name: String,
    registry: String,
    kind: Option<String>,
    username: Option<String>,
    secret: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    region: Option<String>,
    role_arn: Option<String>,
    external_id: Option<String>,
    note: String,
    expires_on: Option<String>,
) -> Result<String, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let text = |v: &Option<String>| v.as_deref().unwrap_or("").to_owned();
    let (username, secret) = (text(&username), text(&secret));
    let aws = [
        &access_key_id,
        &secret_access_key,
        &region,
        &role_arn,
        &external_id,
    ]
    .map(text);
    let input = service::credentials::NewCredentialInput {
        name: &name,
        registry: &registry,
        kind: kind.as_deref().unwrap_or("basic"),
        username: &username,
        secret: &secret,
        note: &note,
        expires_on: expires_on.as_deref().unwrap_or(""),
        aws: service::credentials::AwsInput {
            access_key_id: &aws[0],
            secret_access_key: &aws[1],
            region: &aws[2],
            role_arn: &aws[3],
            external_id: &aws[4],
        },
    };
    let created = service::credentials::create(&crate::ssr::berth()?, user, &team, input).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/credentials/{}", created.name));
    Ok(created.name.to_string())
}

/// Changes a credential; an empty `secret` (or `secret_access_key`) keeps the stored one.
/// The form sends the fields of the credential's kind only.
#[server]
pub async fn update_credential(
    csrf_token: String,
    team: String,
    current: String,
    name: String,
    registry: String,
    username: Option<String>,
    secret: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    region: Option<String>,
    role_arn: Option<String>,
    external_id: Option<String>,
    note: String,
    expires_on: Option<String>,
) -> Result<String, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let patch = service::credentials::CredentialPatch {
        name: Some(&name),
        registry: Some(&registry),
        username: username.as_deref(),
        secret: secret.as_deref(),
        note: Some(&note),
        expires_on: expires_on.as_deref(),
        access_key_id: access_key_id.as_deref(),
        secret_access_key: secret_access_key.as_deref(),
        region: region.as_deref(),
        role_arn: role_arn.as_deref(),
        external_id: external_id.as_deref(),
    };
    let updated =
        service::credentials::update(&crate::ssr::berth()?, user, &team, &current, patch).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/credentials/{}", updated.name));
    Ok(updated.name.to_string())
}

/// Deletes a credential once its name is typed again to confirm.
#[server]
pub async fn delete_credential(
    csrf_token: String,
    team: String,
    name: String,
    confirm: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    if confirm.trim() != name {
        return Err(AppError::invalid(
            "confirm",
            format!("Type {name} to confirm that it should be deleted."),
        ));
    }
    let user = crate::ssr::require_user().await?;
    service::credentials::delete(&crate::ssr::berth()?, user, &team, &name).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/credentials"));
    Ok(())
}

/// Logs in to the registry with the credential and, given an image, resolves it.
#[server]
pub async fn verify_credential(
    csrf_token: String,
    team: String,
    name: String,
    image: String,
) -> Result<Option<Flash>, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let verification =
        service::credentials::verify(&crate::ssr::berth()?, user, &team, &name, Some(&image))
            .await?;
    crate::ssr::flash_for_form_post(Flash::Verification(verification.report())).await
}

/// A page of the team's audit trail.
#[server(input = GetUrl)]
pub async fn load_audit(team: String, before: Option<i64>) -> Result<views::AuditPage, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::audit::page(&crate::ssr::berth()?, user, &team, before).await?)
}
