//! Team registry credentials: create, change, delete and verify, each one authorised, audited
//! and logged without its secret. This is the only module that opens a sealed secret.

use crate::{
    error::{AppError, FieldExt},
    ssr::{authorize, ServerState},
};
use domain::{
    parse_note, parse_username, CredentialKind, CredentialName, ImageReference, RegistryHost, Role,
    SecretInput,
};
use platform::registry::{BasicCredentials, RegistryError, ResolvedImage};
use store::{CredentialChanges, NewAuditEvent, RegistryCredential, Sealed, TeamAccess};

/// The associated data binding a credential's sealed secret to its row: a sealed value
/// copied into another row does not open there.
pub fn secret_context(credential_id: i64) -> String {
    store::SecretSlot::Credential(credential_id).context()
}

/// What a form or API body gives for a new credential.
pub struct NewCredentialInput<'a> {
    pub name: &'a str,
    pub registry: &'a str,
    pub kind: &'a str,
    pub username: &'a str,
    pub secret: &'a str,
    pub note: &'a str,
    /// `YYYY-MM-DD` or empty.
    pub expires_on: &'a str,
}

/// Changes to a credential: `None` keeps the stored value (no secret = keep the secret).
#[derive(Default)]
pub struct CredentialPatch<'a> {
    pub name: Option<&'a str>,
    pub registry: Option<&'a str>,
    pub username: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub note: Option<&'a str>,
    /// `YYYY-MM-DD`, or empty to clear; `None` keeps it.
    pub expires_on: Option<&'a str>,
}

const MANAGE: &str = "manage registry credentials";

fn subject(name: &str) -> String {
    format!("credential:{name}")
}

async fn audit(
    state: &ServerState,
    access: &TeamAccess,
    actor: i64,
    action: &str,
    name: &str,
    ok: bool,
    detail: Option<&str>,
) -> Result<(), AppError> {
    state
        .store
        .record_audit(NewAuditEvent {
            team_id: access.team_id,
            actor_id: Some(actor),
            action,
            subject: &subject(name),
            ok,
            detail,
        })
        .await?;
    Ok(())
}

fn seal(state: &ServerState, secret: &SecretInput, credential_id: i64) -> Sealed {
    let (value, key_id) = state
        .keys
        .seal(secret.expose().as_bytes(), &secret_context(credential_id));
    Sealed { value, key_id }
}

fn name_taken(name: &CredentialName) -> impl Fn(store::StoreError) -> AppError + '_ {
    move |e| match e {
        store::StoreError::Taken { .. } => AppError::Conflict {
            field: "name".into(),
            message: format!(
                "This team already has a credential named {name}; choose another name."
            ),
        },
        other => other.into(),
    }
}

/// The team's credentials, for any member (secrets are never part of them).
pub async fn list(
    state: &ServerState,
    actor: i64,
    team: &str,
) -> Result<(TeamAccess, Vec<RegistryCredential>), AppError> {
    let access = authorize(&state.store, actor, team, Role::Viewer, "see credentials").await?;
    let credentials = state.store.credentials(access.team_id).await?;
    Ok((access, credentials))
}

/// One credential, for any member.
pub async fn get(
    state: &ServerState,
    actor: i64,
    team: &str,
    name: &str,
) -> Result<(TeamAccess, RegistryCredential), AppError> {
    let access = authorize(&state.store, actor, team, Role::Viewer, "see credentials").await?;
    let credential = state
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((access, credential))
}

/// One credential and its latest audit events, authorised once.
pub async fn get_with_history(
    state: &ServerState,
    actor: i64,
    team: &str,
    name: &str,
    limit: i64,
) -> Result<(TeamAccess, RegistryCredential, Vec<store::AuditEvent>), AppError> {
    let (access, credential) = get(state, actor, team, name).await?;
    let events = state
        .store
        .audit_events(
            access.team_id,
            Some(&subject(name)),
            None,
            limit.clamp(1, 200),
        )
        .await?;
    Ok((access, credential, events))
}

pub async fn create(
    state: &ServerState,
    actor: i64,
    team: &str,
    input: NewCredentialInput<'_>,
) -> Result<RegistryCredential, AppError> {
    let name = CredentialName::parse(input.name).field("name")?;
    let registry = RegistryHost::parse(input.registry).field("registry")?;
    let kind = CredentialKind::parse(input.kind).field("kind")?;
    let username = parse_username(input.username).field("username")?;
    let secret = SecretInput::parse(input.secret).field("secret")?;
    let note = parse_note(input.note).field("note")?;
    let expires_at = domain::parse_expiry_date(input.expires_on).field("expires_on")?;
    let access = authorize(&state.store, actor, team, Role::Owner, MANAGE).await?;
    let credential = state
        .store
        .create_credential(
            access.team_id,
            store::NewCredential {
                name: name.as_str(),
                registry: registry.as_str(),
                kind: kind.as_str(),
                username: &username,
                note: note.as_deref(),
                created_by: actor,
            },
            |id| seal(state, &secret, id),
        )
        .await
        .map_err(name_taken(&name))?;
    let credential = if expires_at.is_some() {
        state
            .store
            .set_credential_expiry(credential.id, expires_at)
            .await?;
        state
            .store
            .credential(access.team_id, name.as_str())
            .await?
            .ok_or(AppError::NotFound)?
    } else {
        credential
    };
    let detail = format!("registry {registry}, username {username}");
    audit(
        state,
        &access,
        actor,
        "credential.create",
        name.as_str(),
        true,
        Some(&detail),
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %name, by = actor, "credential created");
    Ok(credential)
}

pub async fn update(
    state: &ServerState,
    actor: i64,
    team: &str,
    current: &str,
    patch: CredentialPatch<'_>,
) -> Result<RegistryCredential, AppError> {
    let name = patch
        .name
        .map(|n| CredentialName::parse(n).field("name"))
        .transpose()?;
    let registry = patch
        .registry
        .map(|r| RegistryHost::parse(r).field("registry"))
        .transpose()?;
    let username = patch
        .username
        .map(|u| parse_username(u).field("username"))
        .transpose()?;
    // An empty secret field means "keep the stored secret".
    let secret = patch
        .secret
        .filter(|s| !s.is_empty())
        .map(|s| SecretInput::parse(s).field("secret"))
        .transpose()?;
    let note = patch
        .note
        .map(|n| parse_note(n).field("note"))
        .transpose()?;
    let expires_at = patch
        .expires_on
        .map(|e| domain::parse_expiry_date(e).field("expires_on"))
        .transpose()?;
    let access = authorize(&state.store, actor, team, Role::Owner, MANAGE).await?;
    let existing = state
        .store
        .credential(access.team_id, current)
        .await?
        .ok_or(AppError::NotFound)?;
    let sealed = secret.as_ref().map(|s| seal(state, s, existing.id));
    let updated = state
        .store
        .update_credential(
            existing.id,
            CredentialChanges {
                name: name.as_ref().map(CredentialName::as_str),
                registry: registry.as_ref().map(RegistryHost::as_str),
                username: username.as_deref(),
                note: note.as_ref().map(|n| n.as_deref()),
            },
            sealed,
        )
        .await
        .map_err(|e| match &name {
            Some(name) => name_taken(name)(e),
            None => e.into(),
        })?;
    let updated = match expires_at {
        Some(expires_at) if expires_at != updated.expires_at => {
            state
                .store
                .set_credential_expiry(updated.id, expires_at)
                .await?;
            state
                .store
                .credential(access.team_id, &updated.name)
                .await?
                .ok_or(AppError::NotFound)?
        }
        _ => updated,
    };
    let mut changed = Vec::new();
    if updated.expires_at != existing.expires_at {
        changed.push("expiry date".into());
    }
    if updated.name != existing.name {
        changed.push(format!("renamed from {}", existing.name));
    }
    if updated.registry != existing.registry {
        changed.push(format!("registry {}", updated.registry));
    }
    if updated.username != existing.username {
        changed.push(format!("username {}", updated.username));
    }
    if secret.is_some() {
        changed.push(format!("new secret (version {})", updated.secret_version));
    }
    if updated.note != existing.note {
        changed.push("note".into());
    }
    let detail = if changed.is_empty() {
        "no change".to_owned()
    } else {
        changed.join(", ")
    };
    audit(
        state,
        &access,
        actor,
        "credential.update",
        &updated.name,
        true,
        Some(&detail),
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %updated.name, by = actor, "credential updated");
    Ok(updated)
}

pub async fn delete(
    state: &ServerState,
    actor: i64,
    team: &str,
    name: &str,
) -> Result<(), AppError> {
    let access = authorize(&state.store, actor, team, Role::Owner, MANAGE).await?;
    let existing = state
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or(AppError::NotFound)?;
    state.store.delete_credential(existing.id).await?;
    let detail = format!(
        "registry {}, username {}",
        existing.registry, existing.username
    );
    audit(
        state,
        &access,
        actor,
        "credential.delete",
        name,
        true,
        Some(&detail),
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %name, by = actor, "credential deleted");
    Ok(())
}

/// The outcome of a verification, for the page or the API.
pub struct Verification {
    pub credential: RegistryCredential,
    pub result: Result<Option<ResolvedImage>, RegistryError>,
}

/// Logs in to the credential's registry and, given an image, proves it can be pulled.
/// Deployers may verify: they use the credentials, and verifying reveals nothing secret.
pub async fn verify(
    state: &ServerState,
    actor: i64,
    team: &str,
    name: &str,
    image: Option<&str>,
) -> Result<Verification, AppError> {
    let image = image
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|i| ImageReference::parse(i).field("image"))
        .transpose()?;
    let access = authorize(
        &state.store,
        actor,
        team,
        Role::Deployer,
        "verify credentials",
    )
    .await?;
    let credential = state
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or(AppError::NotFound)?;
    let registry = RegistryHost::parse(&credential.registry).map_err(|e| {
        tracing::error!(error = %e, "stored registry host does not parse");
        AppError::Internal
    })?;
    if let Some(image) = &image {
        if image.registry() != &registry {
            return Err(AppError::invalid(
                "image",
                format!(
                    "{image} is on {}, but this credential is for {registry}.",
                    image.registry()
                ),
            ));
        }
    }
    let sealed = state.store.credential_secret(credential.id).await?;
    let secret = state
        .keys
        .open(&sealed.value, &secret_context(credential.id))
        .map_err(|e| {
            tracing::error!(error = %e, credential = credential.id, "cannot open a stored secret");
            AppError::Internal
        })?;
    let secret = String::from_utf8_lossy(&secret).into_owned();
    let login = BasicCredentials::new(credential.username.clone(), secret.clone());
    let result = state
        .registry
        .verify(&registry, Some(&login), image.as_ref())
        .await
        .map(|verified| verified.image)
        .map_err(|e| e.redact(&secret));
    drop(login);
    let (ok, detail) = match &result {
        Ok(Some(resolved)) => (
            true,
            format!(
                "pulled {} ({})",
                image.as_ref().map(ToString::to_string).unwrap_or_default(),
                resolved.digest
            ),
        ),
        Ok(None) => (true, "logged in".to_owned()),
        Err(error) => (false, format!("{}: {error}", error.kind())),
    };
    state
        .store
        .record_verification(credential.id, ok, &detail)
        .await?;
    audit(
        state,
        &access,
        actor,
        "credential.verify",
        name,
        ok,
        Some(&detail),
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %name, ok, by = actor, "credential verified");
    let credential = state
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Verification { credential, result })
}

/// The audit trail of a team (or of one credential), newest first, keyset-paged.
pub async fn audit_events(
    state: &ServerState,
    actor: i64,
    team: &str,
    credential: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<(TeamAccess, Vec<store::AuditEvent>), AppError> {
    let access = authorize(
        &state.store,
        actor,
        team,
        Role::Viewer,
        "see the audit trail",
    )
    .await?;
    let subject = credential.map(subject);
    let events = state
        .store
        .audit_events(
            access.team_id,
            subject.as_deref(),
            before,
            limit.clamp(1, 200),
        )
        .await?;
    Ok((access, events))
}
