// A server function takes one argument per form field, so long argument lists are the norm.
#![allow(clippy::too_many_arguments)]

use crate::{error::AppError, model::*};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
mod convert {
    use crate::model::*;

    pub fn team(access: &store::TeamAccess) -> TeamSummary {
        TeamSummary {
            handle: access.handle.clone(),
            name: access.name.clone(),
            role: access.role.0,
        }
    }

    pub fn credential(c: store::RegistryCredential) -> CredentialRow {
        CredentialRow {
            last_verified: c.last_verified_at.map(|at| CheckRow {
                at,
                ok: c.last_verified_ok.unwrap_or(false),
                detail: c.last_verified_detail.clone().unwrap_or_default(),
            }),
            last_used: c.last_used_at.map(|at| CheckRow {
                at,
                ok: true,
                detail: c.last_used_detail.clone().unwrap_or_default(),
            }),
            name: c.name,
            registry: c.registry,
            kind: c.kind,
            username: c.username,
            note: c.note,
            secret_version: c.secret_version,
            created_at: c.created_at,
            updated_at: c.updated_at,
            expires_at: c.expires_at,
            used_by_apps: c.used_by_apps,
        }
    }

    pub fn event(e: store::AuditEvent) -> AuditRow {
        AuditRow {
            id: e.id,
            at: e.at,
            actor: e.actor_email,
            action: e.action,
            subject: e.subject,
            ok: e.outcome == "ok",
            detail: e.detail,
        }
    }
}

// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_credentials(team: String) -> Result<CredentialsPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, list) = crate::services::credentials::list(&state, user.id, &team).await?;
    Ok(CredentialsPage {
        team: convert::team(&access),
        credentials: list.into_iter().map(convert::credential).collect(),
    })
}

#[server(input = GetUrl)]
pub async fn load_credential(team: String, name: String) -> Result<CredentialPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, credential, events) =
        crate::services::credentials::get_with_history(&state, user.id, &team, &name, 20).await?;
    let used_by = state.store.apps_using_credential(credential.id).await?;
    Ok(CredentialPage {
        team: convert::team(&access),
        used_by,
        credential: convert::credential(credential),
        events: events.into_iter().map(convert::event).collect(),
        flash: crate::ssr::take_flash().await?,
    })
}

#[server(input = GetUrl)]
pub async fn load_audit(team: String, before: Option<i64>) -> Result<AuditPage, AppError> {
    const PAGE: i64 = 50;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, events) =
        crate::services::credentials::audit_events(&state, user.id, &team, None, before, PAGE)
            .await?;
    let next = (events.len() as i64 == PAGE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(AuditPage {
        team: convert::team(&access),
        events: events.into_iter().map(convert::event).collect(),
        next,
    })
}

/// Creates a credential and goes to its page (where it can be verified).
#[server]
pub async fn create_credential(
    csrf_token: String,
    team: String,
    name: String,
    registry: String,
    username: String,
    secret: String,
    note: String,
    expires_on: Option<String>,
) -> Result<String, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let input = crate::services::credentials::NewCredentialInput {
        name: &name,
        registry: &registry,
        kind: "basic",
        username: &username,
        secret: &secret,
        note: &note,
        expires_on: expires_on.as_deref().unwrap_or(""),
    };
    let created = crate::services::credentials::create(&state, user.id, &team, input).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/credentials/{}", created.name));
    Ok(created.name)
}

/// Changes a credential; an empty `secret` keeps the stored one.
#[server]
pub async fn update_credential(
    csrf_token: String,
    team: String,
    current: String,
    name: String,
    registry: String,
    username: String,
    secret: String,
    note: String,
    expires_on: Option<String>,
) -> Result<String, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let patch = crate::services::credentials::CredentialPatch {
        name: Some(&name),
        registry: Some(&registry),
        username: Some(&username),
        secret: Some(&secret),
        note: Some(&note),
        expires_on: expires_on.as_deref(),
    };
    let updated =
        crate::services::credentials::update(&state, user.id, &team, &current, patch).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/credentials/{}", updated.name));
    Ok(updated.name)
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
    crate::services::credentials::delete(&crate::ssr::state()?, user.id, &team, &name).await?;
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
    let verification = crate::services::credentials::verify(
        &crate::ssr::state()?,
        user.id,
        &team,
        &name,
        Some(&image),
    )
    .await?;
    let image = (!image.trim().is_empty()).then(|| image.trim().to_owned());
    let report = match verification.result {
        Ok(Some(resolved)) => VerifyReport {
            ok: true,
            kind: None,
            message: "Logged in and resolved the image.".into(),
            image,
            digest: Some(resolved.digest),
            platforms: resolved.platforms,
            size: resolved.size,
        },
        Ok(None) => VerifyReport {
            ok: true,
            kind: None,
            message: "Logged in. Give an image to prove pull access too.".into(),
            image: None,
            digest: None,
            platforms: Vec::new(),
            size: None,
        },
        Err(error) => VerifyReport {
            ok: false,
            kind: Some(error.kind().to_owned()),
            message: error.to_string(),
            image,
            digest: None,
            platforms: Vec::new(),
            size: None,
        },
    };
    crate::ssr::flash_for_form_post(Flash::Verification(report)).await
}
