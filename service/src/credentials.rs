//! Team registry credentials: create, change, delete and verify, each one authorised,
//! audited and logged without its secret. The secret goes in through [`crate::secrets`] and
//! comes out only as a login for a registry.

use crate::{
    audit::{self, credential_subject},
    authz::authorize,
    present, Berth, Error, Result,
};
use domain::{
    parse_note, parse_username, CredentialKind, CredentialName, ImageReference, RegistryHost, Role,
    Secret,
};
use platform::registry::{BasicCredentials, RegistryError, ResolvedImage};
use store::{CredentialChanges, RegistryCredential, SecretSlot, TeamAccess};
use views::{api::VerifyBody, CredentialPage, CredentialsPage, FieldExt, Flash, VerifyReport};

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

/// How many audit events a credential's page shows.
const PAGE_EVENTS: i64 = 20;

async fn record(
    berth: &Berth,
    access: &TeamAccess,
    actor: i64,
    action: &str,
    name: &str,
    ok: bool,
    detail: &str,
) -> Result<()> {
    audit::record(
        berth,
        access.team_id,
        Some(actor),
        action,
        &credential_subject(name),
        ok,
        detail,
    )
    .await
}

fn name_taken(name: &CredentialName) -> impl Fn(store::StoreError) -> Error + '_ {
    move |e| match e {
        store::StoreError::Taken { .. } => Error::conflict(
            "name",
            format!("This team already has a credential named {name}; choose another name."),
        ),
        other => other.into(),
    }
}

/// The login a team credential gives: its username and its secret, opened.
pub(crate) fn open_login(
    berth: &Berth,
    credential: &RegistryCredential,
    sealed: &store::Sealed,
) -> Result<BasicCredentials> {
    let secret = berth
        .secrets
        .open(&SecretSlot::Credential(credential.id), sealed)?;
    Ok(BasicCredentials::new(credential.username.clone(), secret))
}

/// The team's credentials, for any member (secrets are never part of them).
pub async fn list(
    berth: &Berth,
    actor: i64,
    team: &str,
) -> Result<(TeamAccess, Vec<RegistryCredential>)> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see credentials").await?;
    let credentials = berth.store.credentials(access.team_id).await?;
    Ok((access, credentials))
}

/// The credentials page.
pub async fn list_page(berth: &Berth, actor: i64, team: &str) -> Result<CredentialsPage> {
    let (access, credentials) = list(berth, actor, team).await?;
    Ok(CredentialsPage {
        team: present::team(&access),
        credentials: credentials.into_iter().map(present::credential).collect(),
    })
}

/// One credential, for any member.
pub async fn get(
    berth: &Berth,
    actor: i64,
    team: &str,
    name: &str,
) -> Result<(TeamAccess, RegistryCredential)> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see credentials").await?;
    let credential = berth
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or_else(Error::not_found)?;
    Ok((access, credential))
}

/// A credential's page: the credential, the apps that deploy with it (shown before a
/// delete) and its latest audit events, authorised once.
pub async fn page(
    berth: &Berth,
    actor: i64,
    team: &str,
    name: &str,
    flash: Option<Flash>,
) -> Result<CredentialPage> {
    let (access, credential) = get(berth, actor, team, name).await?;
    let events = berth
        .store
        .audit_events(
            access.team_id,
            Some(&credential_subject(name)),
            None,
            PAGE_EVENTS,
        )
        .await?;
    let used_by = berth.store.apps_using_credential(credential.id).await?;
    Ok(CredentialPage {
        team: present::team(&access),
        used_by,
        credential: present::credential(credential),
        events: events.into_iter().map(present::audit_event).collect(),
        flash,
    })
}

pub async fn create(
    berth: &Berth,
    actor: i64,
    team: &str,
    input: NewCredentialInput<'_>,
) -> Result<RegistryCredential> {
    let name = CredentialName::parse(input.name).field("name")?;
    let registry = RegistryHost::parse(input.registry).field("registry")?;
    let kind = CredentialKind::parse(input.kind).field("kind")?;
    let username = parse_username(input.username).field("username")?;
    let secret = Secret::parse(input.secret).field("secret")?;
    let note = parse_note(input.note).field("note")?;
    let expires_at = domain::parse_expiry_date(input.expires_on).field("expires_on")?;
    let access = authorize(&berth.store, actor, team, Role::Owner, MANAGE).await?;
    let credential = berth
        .store
        .create_credential(
            access.team_id,
            store::NewCredential {
                name: &name,
                registry: &registry,
                kind,
                username: &username,
                note: note.as_deref(),
                created_by: actor,
            },
            |id| berth.secrets.seal(&SecretSlot::Credential(id), &secret),
        )
        .await
        .map_err(name_taken(&name))?;
    let credential = if expires_at.is_some() {
        berth
            .store
            .set_credential_expiry(credential.id, expires_at)
            .await?;
        reload(berth, &access, name.as_str()).await?
    } else {
        credential
    };
    let detail = format!("registry {registry}, username {username}");
    record(
        berth,
        &access,
        actor,
        "credential.create",
        name.as_str(),
        true,
        &detail,
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %name, by = actor, "credential created");
    Ok(credential)
}

async fn reload(berth: &Berth, access: &TeamAccess, name: &str) -> Result<RegistryCredential> {
    berth
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or_else(Error::not_found)
}

pub async fn update(
    berth: &Berth,
    actor: i64,
    team: &str,
    current: &str,
    patch: CredentialPatch<'_>,
) -> Result<RegistryCredential> {
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
        .map(|s| Secret::parse(s).field("secret"))
        .transpose()?;
    let note = patch
        .note
        .map(|n| parse_note(n).field("note"))
        .transpose()?;
    let expires_at = patch
        .expires_on
        .map(|e| domain::parse_expiry_date(e).field("expires_on"))
        .transpose()?;
    let access = authorize(&berth.store, actor, team, Role::Owner, MANAGE).await?;
    let existing = reload(berth, &access, current).await?;
    // A secret is bound to the host it was entered for. Keeping it across a change of
    // registry would let any owner point another owner's write-only secret at a host of
    // their own and read it off the next verify's Authorization header.
    if let (Some(registry), None) = (&registry, &secret) {
        if registry != &existing.registry {
            return Err(Error::invalid(
                "secret",
                format!(
                    "The secret was entered for {}; Berth sends a secret only to the registry it was entered for, so moving this credential to {registry} needs the secret again. Enter the password or token for {registry}.",
                    existing.registry
                ),
            ));
        }
    }
    let sealed = secret
        .as_ref()
        .map(|s| berth.secrets.seal(&SecretSlot::Credential(existing.id), s));
    let updated = berth
        .store
        .update_credential(
            existing.id,
            CredentialChanges {
                name: name.as_ref(),
                registry: registry.as_ref(),
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
            berth
                .store
                .set_credential_expiry(updated.id, expires_at)
                .await?;
            reload(berth, &access, updated.name.as_str()).await?
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
    record(
        berth,
        &access,
        actor,
        "credential.update",
        updated.name.as_str(),
        true,
        &detail,
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %updated.name, by = actor, "credential updated");
    Ok(updated)
}

pub async fn delete(berth: &Berth, actor: i64, team: &str, name: &str) -> Result<()> {
    let access = authorize(&berth.store, actor, team, Role::Owner, MANAGE).await?;
    let existing = reload(berth, &access, name).await?;
    berth.store.delete_credential(existing.id).await?;
    let detail = format!(
        "registry {}, username {}",
        existing.registry, existing.username
    );
    record(
        berth,
        &access,
        actor,
        "credential.delete",
        name,
        true,
        &detail,
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %name, by = actor, "credential deleted");
    Ok(())
}

/// The outcome of a verification, for the page or the API.
pub struct Verification {
    pub credential: RegistryCredential,
    pub image: Option<ImageReference>,
    pub result: std::result::Result<Option<ResolvedImage>, RegistryError>,
}

impl Verification {
    /// What the JSON API answers.
    pub fn body(self) -> VerifyBody {
        let credential = present::credential(self.credential);
        match self.result {
            Ok(Some(image)) => VerifyBody {
                ok: true,
                digest: Some(image.digest.to_string()),
                media_type: Some(image.media_type),
                platforms: image.platforms,
                linux_amd64_digest: image.linux_amd64_digest.map(String::from),
                size: image.size,
                kind: None,
                message: None,
                credential,
            },
            Ok(None) => VerifyBody {
                ok: true,
                digest: None,
                media_type: None,
                platforms: Vec::new(),
                linux_amd64_digest: None,
                size: None,
                kind: None,
                message: None,
                credential,
            },
            Err(error) => VerifyBody {
                ok: false,
                digest: None,
                media_type: None,
                platforms: Vec::new(),
                linux_amd64_digest: None,
                size: None,
                kind: Some(error.kind().to_owned()),
                message: Some(error.to_string()),
                credential,
            },
        }
    }

    /// What the credential's page shows of it.
    pub fn report(&self) -> VerifyReport {
        let image = self.image.as_ref().map(ToString::to_string);
        match &self.result {
            Ok(Some(resolved)) => VerifyReport {
                ok: true,
                kind: None,
                message: "Logged in and resolved the image.".into(),
                image,
                digest: Some(resolved.digest.to_string()),
                platforms: resolved.platforms.clone(),
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
        }
    }
}

/// Logs in to the credential's registry and, given an image, proves it can be pulled.
/// Deployers may verify: they use the credentials, and verifying reveals nothing secret.
pub async fn verify(
    berth: &Berth,
    actor: i64,
    team: &str,
    name: &str,
    image: Option<&str>,
) -> Result<Verification> {
    let image = image
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|i| ImageReference::parse(i).field("image"))
        .transpose()?;
    let access = authorize(
        &berth.store,
        actor,
        team,
        Role::Deployer,
        "verify credentials",
    )
    .await?;
    // Each check reaches a registry: throttled per person and team.
    berth
        .accounts
        .throttles
        .verify
        .check(&format!("{actor}/{}", access.team_id))?;
    let credential = reload(berth, &access, name).await?;
    let registry = credential.registry.clone();
    if let Some(image) = &image {
        if image.registry() != &registry {
            return Err(Error::invalid(
                "image",
                format!(
                    "{image} is on {}, but this credential is for {registry}.",
                    image.registry()
                ),
            ));
        }
    }
    let sealed = berth.store.credential_secret(credential.id).await?;
    let login = open_login(berth, &credential, &sealed)?;
    let result = berth
        .registry
        .verify(&registry, Some(&login), image.as_ref())
        .await
        .map(|verified| verified.image)
        .map_err(|e| e.redact(login.secret.expose()));
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
    berth
        .store
        .record_verification(credential.id, ok, &detail)
        .await?;
    record(
        berth,
        &access,
        actor,
        "credential.verify",
        name,
        ok,
        &detail,
    )
    .await?;
    tracing::info!(team = %access.handle, credential = %name, ok, by = actor, "credential verified");
    let credential = reload(berth, &access, name).await?;
    Ok(Verification {
        credential,
        image,
        result,
    })
}
