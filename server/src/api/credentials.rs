//! `/api/v1/teams/{team}/credentials`: team registry credentials. The secret goes in and
//! never comes out.

use super::{ApiResult, ApiUser, Body, Path};
use crate::router::AppState;
use axum::{extract::State, http::StatusCode, Json};
use serde::Deserialize;
use service::{
    credentials::{self, CredentialPatch, NewCredentialInput},
    present,
};
use utoipa::ToSchema;
use views::{
    api::{CredentialBody, CredentialsBody, VerifyBody},
    AppError,
};

#[utoipa::path(get, path = "/api/v1/teams/{team}/credentials", tag = "credentials", summary = "List the team's registry credentials",
    params(("team" = String, Path, description = "The team's handle.")), responses((status = 200, description = "The credentials, never their secrets.", body = CredentialsBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<CredentialsBody>> {
    let page = credentials::list_page(&state.berth, user.id, &team).await?;
    Ok(Json(CredentialsBody {
        credentials: page.credentials,
    }))
}

fn credential_body(credential: store::RegistryCredential) -> Json<CredentialBody> {
    Json(CredentialBody {
        credential: present::credential(credential),
    })
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/credentials/{name}", tag = "credentials", summary = "Show a registry credential",
    params(("team" = String, Path, description = "The team's handle."), ("name" = String, Path, description = "The credential's name.")),
    responses((status = 200, description = "The credential, never its secret.", body = CredentialBody)))]
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<Json<CredentialBody>> {
    let (_, credential) = credentials::get(&state.berth, user.id, &team, &name).await?;
    Ok(credential_body(credential))
}

/// A new credential: kind `basic` (the default) takes `username` and `secret`; kind `ecr`
/// takes `access_key_id`, `secret_access_key`, `region` and optionally `role_arn` (with
/// `external_id`), and Berth mints a fresh ECR token from them for every use.
#[derive(Deserialize, ToSchema)]
pub struct NewCredential {
    name: String,
    /// The registry host; for `ecr`, `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.
    registry: String,
    /// `basic` (the default) or `ecr`.
    #[serde(default)]
    #[schema(value_type = Option<domain::CredentialKind>)]
    kind: String,
    /// Kind `basic`.
    #[serde(default)]
    username: String,
    /// Kind `basic`: the password or token (write-only).
    #[serde(default)]
    secret: String,
    /// Kind `ecr`: the AWS access key id.
    #[serde(default)]
    access_key_id: String,
    /// Kind `ecr`: the AWS secret access key (write-only; only ever sent to AWS).
    #[serde(default)]
    secret_access_key: String,
    /// Kind `ecr`: the registry's region, e.g. `us-east-1`.
    #[serde(default)]
    region: String,
    /// Kind `ecr`: an IAM role Berth assumes first (STS `AssumeRole`).
    #[serde(default)]
    role_arn: Option<String>,
    /// Kind `ecr`: the external id the role's trust policy requires, if any.
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    note: Option<String>,
    /// `YYYY-MM-DD`: when the secret stops working, if its owner knows.
    #[serde(default)]
    expires_on: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/credentials", tag = "credentials", summary = "Store a registry credential",
    params(("team" = String, Path, description = "The team's handle.")), request_body = NewCredential,
    responses((status = 201, description = "The stored credential (the secret is never returned).", body = CredentialBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<NewCredential>,
) -> ApiResult<(StatusCode, Json<CredentialBody>)> {
    let input = NewCredentialInput {
        name: &body.name,
        registry: &body.registry,
        kind: &body.kind,
        username: &body.username,
        secret: &body.secret,
        note: body.note.as_deref().unwrap_or(""),
        expires_on: body.expires_on.as_deref().unwrap_or(""),
        aws: credentials::AwsInput {
            access_key_id: &body.access_key_id,
            secret_access_key: &body.secret_access_key,
            region: &body.region,
            role_arn: body.role_arn.as_deref().unwrap_or(""),
            external_id: body.external_id.as_deref().unwrap_or(""),
        },
    };
    let credential = credentials::create(&state.berth, user.id, &team, input).await?;
    Ok((StatusCode::CREATED, credential_body(credential)))
}

#[derive(Deserialize, ToSchema)]
pub struct CredentialChanges {
    name: Option<String>,
    registry: Option<String>,
    username: Option<String>,
    secret: Option<String>,
    /// `null` or `""` clears the note; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    note: Option<Option<String>>,
    /// `null` or `""` clears the expiry date; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    expires_on: Option<Option<String>>,
    /// Kind `ecr`.
    access_key_id: Option<String>,
    /// Kind `ecr`: absent keeps the stored key.
    secret_access_key: Option<String>,
    /// Kind `ecr`.
    region: Option<String>,
    /// Kind `ecr`: `null` or `""` drops the role (and needs no external id); absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    role_arn: Option<Option<String>>,
    /// Kind `ecr`: `null` or `""` drops it; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    external_id: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/api/v1/teams/{team}/credentials/{name}", tag = "credentials", summary = "Change a registry credential",
    params(("team" = String, Path, description = "The team's handle."), ("name" = String, Path, description = "The credential's name.")),
    request_body = CredentialChanges,
    responses((status = 200, description = "The changed credential.", body = CredentialBody)))]
pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
    Body(changes): Body<CredentialChanges>,
) -> ApiResult<Json<CredentialBody>> {
    for (field, value) in [
        ("secret", &changes.secret),
        ("secret_access_key", &changes.secret_access_key),
    ] {
        if value.as_deref() == Some("") {
            return Err(AppError::invalid(
                field,
                format!("Leave \"{field}\" out to keep the stored one; it cannot be empty."),
            )
            .into());
        }
    }
    let patch = CredentialPatch {
        name: changes.name.as_deref(),
        registry: changes.registry.as_deref(),
        username: changes.username.as_deref(),
        secret: changes.secret.as_deref(),
        note: changes.note.as_ref().map(|n| n.as_deref().unwrap_or("")),
        expires_on: changes
            .expires_on
            .as_ref()
            .map(|e| e.as_deref().unwrap_or("")),
        access_key_id: changes.access_key_id.as_deref(),
        secret_access_key: changes.secret_access_key.as_deref(),
        region: changes.region.as_deref(),
        role_arn: changes
            .role_arn
            .as_ref()
            .map(|r| r.as_deref().unwrap_or("")),
        external_id: changes
            .external_id
            .as_ref()
            .map(|e| e.as_deref().unwrap_or("")),
    };
    let credential = credentials::update(&state.berth, user.id, &team, &name, patch).await?;
    Ok(credential_body(credential))
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}/credentials/{name}", tag = "credentials", summary = "Delete a registry credential",
    params(("team" = String, Path, description = "The team's handle."), ("name" = String, Path, description = "The credential's name.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    credentials::delete(&state.berth, user.id, &team, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
pub struct VerifyRequest {
    image: Option<String>,
}

/// `POST …/credentials/{name}/verify` `{"image"?}` → 200 with `ok` true or false: a failed
/// verification is an answer, not an error in the request.
#[utoipa::path(post, path = "/api/v1/teams/{team}/credentials/{name}/verify", tag = "credentials", summary = "Verify a registry credential",
    params(("team" = String, Path, description = "The team's handle."), ("name" = String, Path, description = "The credential's name.")),
    request_body(content = Option<VerifyRequest>, description = "Optional: an image to resolve; without a body only the login is verified."),
    responses((status = 200, description = "`ok` true with the image's digest, or `ok` false with the precise `kind`.", body = VerifyBody)))]
pub async fn verify(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<VerifyBody>> {
    // The body is optional: none (or `{}`) verifies the login only.
    let request: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            AppError::invalid(
                "body",
                format!("The body must be JSON like {{\"image\": \"ghcr.io/org/app:tag\"}}: {e}"),
            )
        })?
    };
    let verification = credentials::verify(
        &state.berth,
        user.id,
        &team,
        &name,
        request.image.as_deref(),
    )
    .await?;
    Ok(Json(verification.body()))
}
