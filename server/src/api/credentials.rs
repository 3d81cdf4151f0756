//! `/api/v1/teams/{team}/credentials`: team registry credentials. The secret goes in and
//! never comes out.

use super::{ApiResult, ApiUser, Body};
use crate::router::AppState;
use app::services::credentials::{self, CredentialPatch, NewCredentialInput};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use store::RegistryCredential;

/// The JSON form of a credential: everything but the secret.
pub fn credential_json(c: &RegistryCredential) -> Value {
    json!({
        "name": c.name,
        "registry": c.registry,
        "kind": c.kind,
        "username": c.username,
        "note": c.note,
        "secret_version": c.secret_version,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "last_verified": c.last_verified_at.map(|at| json!({
            "at": at, "ok": c.last_verified_ok, "detail": c.last_verified_detail,
        })),
        "last_used": c.last_used_at.map(|at| json!({ "at": at, "detail": c.last_used_detail })),
        "expires_at": c.expires_at,
        "used_by_apps": c.used_by_apps,
    })
}

pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, list) = credentials::list(&state.server, user.id, &team).await?;
    Ok(Json(
        json!({ "credentials": list.iter().map(credential_json).collect::<Vec<_>>() }),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, credential) = credentials::get(&state.server, user.id, &team, &name).await?;
    Ok(Json(json!({ "credential": credential_json(&credential) })))
}

#[derive(Deserialize)]
pub struct NewCredential {
    name: String,
    registry: String,
    #[serde(default)]
    kind: String,
    username: String,
    secret: String,
    #[serde(default)]
    note: Option<String>,
    /// `YYYY-MM-DD`: when the secret stops working, if its owner knows.
    #[serde(default)]
    expires_on: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<NewCredential>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = NewCredentialInput {
        name: &body.name,
        registry: &body.registry,
        kind: &body.kind,
        username: &body.username,
        secret: &body.secret,
        note: body.note.as_deref().unwrap_or(""),
        expires_on: body.expires_on.as_deref().unwrap_or(""),
    };
    let credential = credentials::create(&state.server, user.id, &team, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "credential": credential_json(&credential) })),
    ))
}

#[derive(Deserialize)]
pub struct CredentialChanges {
    name: Option<String>,
    registry: Option<String>,
    username: Option<String>,
    secret: Option<String>,
    /// `null` or `""` clears the note; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    note: Option<Option<String>>,
    /// `null` or `""` clears the expiry date; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    expires_on: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
    Body(body): Body<CredentialChanges>,
) -> ApiResult<Json<Value>> {
    if body.secret.as_deref() == Some("") {
        return Err(app::error::AppError::invalid(
            "secret",
            "Leave \"secret\" out to keep the stored one; it cannot be empty.",
        )
        .into());
    }
    let patch = CredentialPatch {
        name: body.name.as_deref(),
        registry: body.registry.as_deref(),
        username: body.username.as_deref(),
        secret: body.secret.as_deref(),
        note: body.note.as_ref().map(|n| n.as_deref().unwrap_or("")),
        expires_on: body.expires_on.as_ref().map(|e| e.as_deref().unwrap_or("")),
    };
    let credential = credentials::update(&state.server, user.id, &team, &name, patch).await?;
    Ok(Json(json!({ "credential": credential_json(&credential) })))
}

pub async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    credentials::delete(&state.server, user.id, &team, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
pub struct VerifyRequest {
    image: Option<String>,
}

/// `POST …/credentials/{name}/verify` `{"image"?}` → 200 with `ok` true or false: a failed
/// verification is an answer, not an error in the request.
pub async fn verify(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: none (or `{}`) verifies the login only.
    let request: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            app::error::AppError::invalid(
                "body",
                format!("The body must be JSON like {{\"image\": \"ghcr.io/org/app:tag\"}}: {e}"),
            )
        })?
    };
    let image = request.image;
    let verification =
        credentials::verify(&state.server, user.id, &team, &name, image.as_deref()).await?;
    let credential = credential_json(&verification.credential);
    Ok(Json(match verification.result {
        Ok(Some(image)) => json!({
            "ok": true,
            "digest": image.digest,
            "media_type": image.media_type,
            "platforms": image.platforms,
            "linux_amd64_digest": image.linux_amd64_digest,
            "size": image.size,
            "credential": credential,
        }),
        Ok(None) => {
            json!({ "ok": true, "digest": null, "platforms": [], "credential": credential })
        }
        Err(error) => json!({
            "ok": false,
            "kind": error.kind(),
            "message": error.to_string(),
            "credential": credential,
        }),
    }))
}
