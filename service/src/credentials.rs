//! Team registry credentials: create, change, delete and verify, each one authorised,
//! audited and logged without its secret. The secret goes in through [`crate::secrets`] and
//! comes out only as a login for a registry.

use crate::{
    audit::{self, credential_subject},
    authz::authorize,
    present, Berth, Error, Result,
};
use domain::{
    parse_note, parse_username, AwsAccessKeyId, AwsRegion, AwsRoleArn, CredentialKind,
    CredentialName, ImageReference, RegistryHost, Role, Secret,
};
use platform::{
    ecr::{AwsError, AwsKey},
    registry::{BasicCredentials, RegistryError, ResolvedImage},
};
use store::{CredentialChanges, RegistryCredential, SecretSlot, TeamAccess};
use views::{
    api::VerifyBody, AppError, CredentialPage, CredentialsPage, FieldExt, Flash, VerifyReport,
};

/// What a form or API body gives for a new credential. Kind `basic` takes `username` and
/// `secret`; kind `ecr` takes the AWS fields (and ignores those two).
#[derive(Default)]
pub struct NewCredentialInput<'a> {
    pub name: &'a str,
    pub registry: &'a str,
    pub kind: &'a str,
    pub username: &'a str,
    pub secret: &'a str,
    pub note: &'a str,
    /// `YYYY-MM-DD` or empty.
    pub expires_on: &'a str,
    pub aws: AwsInput<'a>,
}

/// The fields of an `ecr` credential, as typed (empty = not given).
#[derive(Default, Clone, Copy)]
pub struct AwsInput<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub role_arn: &'a str,
    pub external_id: &'a str,
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
    /// Kind `ecr` (`None` keeps the value; an empty role or external id drops it; an empty
    /// secret access key keeps it).
    pub access_key_id: Option<&'a str>,
    pub secret_access_key: Option<&'a str>,
    pub region: Option<&'a str>,
    pub role_arn: Option<&'a str>,
    pub external_id: Option<&'a str>,
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

/// The login a team credential gives: kind `basic`, its username and its secret, opened;
/// kind `ecr`, a token minted now from its AWS key (or one from memory that stays valid for
/// longer than an operation), its expiry or AWS's refusal recorded on the credential.
pub(crate) async fn team_login(
    berth: &Berth,
    credential: &RegistryCredential,
) -> Result<std::result::Result<BasicCredentials, AwsError>> {
    let sealed = berth.store.credential_secret(credential.id).await?;
    let secret = berth
        .secrets
        .open(&SecretSlot::Credential(credential.id), &sealed)?;
    if credential.kind == CredentialKind::Basic {
        return Ok(Ok(BasicCredentials::new(
            credential.username.clone(),
            secret,
        )));
    }
    let region = credential.aws_region.as_deref().ok_or_else(|| {
        Error::internal(format!("ECR credential {} has no region", credential.id))
    })?;
    let key = AwsKey {
        access_key_id: &credential.username,
        secret_access_key: &secret,
        region,
        role_arn: credential.aws_role_arn.as_deref(),
        external_id: credential.aws_external_id.as_deref(),
        session_name: &format!("berth-{}", credential.name),
    };
    // Any change to the credential (its key, region or role) changes `updated_at`.
    match berth
        .ecr
        .login((credential.id, credential.updated_at), &key)
        .await
    {
        Ok(minted) => {
            if !minted.reused {
                berth
                    .store
                    .record_ecr_token(credential.id, minted.expires_at)
                    .await?;
            }
            Ok(Ok(minted.login))
        }
        Err(error) => {
            berth
                .store
                .record_aws_error(credential.id, &error.verbatim())
                .await?;
            tracing::warn!(credential = %credential.name, %error, "no ECR token");
            Ok(Err(error))
        }
    }
}

/// As [`team_login`], with AWS's refusal as a verification failure of the `credential`
/// field (a deploy or a build plan stops there, nothing queued).
pub(crate) async fn team_login_or_refusal(
    berth: &Berth,
    credential: &RegistryCredential,
) -> Result<BasicCredentials> {
    team_login(berth, credential).await?.map_err(|error| {
        AppError::VerificationFailed {
            field: "credential".into(),
            reason: error.step.failure_kind().into(),
            message: format!(
                "Team credential {} could not get a registry token from AWS. {error}.",
                credential.name
            ),
        }
        .into()
    })
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
    // The fields every credential has are all checked before answering, so that the form
    // shows every problem at once.
    let mut problems = views::Problems::default();
    let name = problems.check(CredentialName::parse(input.name), "name");
    let registry = problems.check(RegistryHost::parse(input.registry), "registry");
    let kind = problems.check(CredentialKind::parse(input.kind), "kind");
    let basic = (kind == Some(CredentialKind::Basic)).then(|| {
        (
            problems.check(parse_username(input.username), "username"),
            problems.check(Secret::parse(input.secret), "secret"),
        )
    });
    let ecr = match (kind, &registry) {
        (Some(CredentialKind::Ecr), registry) => Some((
            problems.check(
                AwsAccessKeyId::parse(input.aws.access_key_id),
                "access_key_id",
            ),
            Error::noted(
                &mut problems,
                parse_secret_access_key(input.aws.secret_access_key),
            )?,
            match registry {
                Some(registry) => {
                    Error::noted(&mut problems, ParsedAws::parse(berth, registry, input.aws))?
                }
                None => None,
            },
        )),
        _ => None,
    };
    let note = problems.check(parse_note(input.note), "note");
    let expires_at = problems.check(domain::parse_expiry_date(input.expires_on), "expires_on");
    problems.finish()?;
    let (Some(name), Some(registry), Some(kind), Some(note), Some(expires_at)) =
        (name, registry, kind, note, expires_at)
    else {
        return Err(Error::unchecked("credential"));
    };
    let (username, secret, aws) = match (kind, basic) {
        (CredentialKind::Basic, Some((Some(username), Some(secret)))) => (username, secret, None),
        (CredentialKind::Basic, _) => return Err(Error::unchecked("credential")),
        (CredentialKind::Ecr, _) => match ecr {
            Some((Some(key_id), Some(secret), Some(aws))) => {
                (key_id.to_string(), secret, Some(aws))
            }
            _ => return Err(Error::unchecked("credential")),
        },
    };
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
                aws: aws.as_ref().map(ParsedAws::settings),
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
    let detail = match &aws {
        None => format!("registry {registry}, username {username}"),
        Some(aws) => format!("registry {registry}, {}", aws.describe(&username)),
    };
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

/// An AWS secret access key as typed: any printable text without spaces (AWS's are 40
/// characters of base64).
fn parse_secret_access_key(input: &str) -> Result<Secret> {
    let secret = Secret::parse(input.trim()).map_err(|_| {
        Error::invalid(
            "secret_access_key",
            "Enter the secret access key that was shown once, when the access key was created.",
        )
    })?;
    if secret.expose().len() > 128
        || secret
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "secret_access_key",
            "That is not an AWS secret access key (40 characters, no spaces); paste it again from the key's CSV or the IAM console.",
        ));
    }
    Ok(secret)
}

/// An `ecr` credential's region and role, checked against its registry.
struct ParsedAws {
    region: AwsRegion,
    role_arn: Option<AwsRoleArn>,
    external_id: Option<String>,
}

impl ParsedAws {
    fn parse(berth: &Berth, registry: &RegistryHost, input: AwsInput<'_>) -> Result<Self> {
        let mut problems = views::Problems::default();
        let region = problems.check(AwsRegion::parse(input.region), "region");
        if let Some(region) = &region {
            problems.check(
                domain::check_ecr_registry(registry, region, berth.ecr.extra_registry_hosts()),
                "registry",
            );
        }
        let role_arn = problems.check(
            Some(input.role_arn.trim())
                .filter(|r| !r.is_empty())
                .map(AwsRoleArn::parse)
                .transpose(),
            "role_arn",
        );
        let external_id =
            problems.check(domain::parse_external_id(input.external_id), "external_id");
        if let (Some(Some(_)), Some(None)) = (&external_id, &role_arn) {
            problems.add(
                "external_id",
                "An external id goes with a role to assume; give the role ARN too, or leave the external id empty.",
            );
        }
        problems.finish()?;
        match (region, role_arn, external_id) {
            (Some(region), Some(role_arn), Some(external_id)) => Ok(Self {
                region,
                role_arn,
                external_id,
            }),
            _ => Err(Error::unchecked("credential")),
        }
    }

    fn settings(&self) -> store::AwsSettings<'_> {
        store::AwsSettings {
            region: self.region.as_str(),
            role_arn: self.role_arn.as_ref().map(AwsRoleArn::as_str),
            external_id: self.external_id.as_deref(),
        }
    }

    fn describe(&self, access_key_id: &str) -> String {
        match &self.role_arn {
            Some(role) => format!(
                "AWS key {access_key_id} in {}, assuming {role}",
                self.region
            ),
            None => format!("AWS key {access_key_id} in {}", self.region),
        }
    }
}

async fn reload(berth: &Berth, access: &TeamAccess, name: &str) -> Result<RegistryCredential> {
    berth
        .store
        .credential(access.team_id, name)
        .await?
        .ok_or_else(Error::not_found)
}

/// The key-related changes of a patch, by the credential's kind.
#[derive(Default)]
struct KeyChanges {
    username: Option<String>,
    secret: Option<Secret>,
    region: Option<AwsRegion>,
    role_arn: Option<Option<AwsRoleArn>>,
    external_id: Option<Option<String>>,
}

fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn basic_changes(
    patch: &CredentialPatch<'_>,
    existing: &RegistryCredential,
    registry: Option<&RegistryHost>,
) -> Result<KeyChanges> {
    for (field, value) in [
        ("access_key_id", patch.access_key_id),
        ("secret_access_key", patch.secret_access_key),
        ("region", patch.region),
        ("role_arn", patch.role_arn),
        ("external_id", patch.external_id),
    ] {
        if given(value).is_some() {
            return Err(Error::invalid(
                field,
                format!("Only ECR credentials have AWS fields; {} is a basic credential (a username and a password or token).", existing.name),
            ));
        }
    }
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
    // A secret is bound to the host it was entered for. Keeping it across a change of
    // registry would let any owner point another owner's write-only secret at a host of
    // their own and read it off the next verify's Authorization header.
    if let (Some(registry), None) = (registry, &secret) {
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
    Ok(KeyChanges {
        username,
        secret,
        ..Default::default()
    })
}

/// An `ecr` credential's changes. Its secret access key only ever goes to AWS (the registry
/// gets minted tokens), so a new registry needs no new key; it must still be an ECR
/// registry of the credential's region.
fn ecr_changes(
    berth: &Berth,
    patch: &CredentialPatch<'_>,
    existing: &RegistryCredential,
    registry: Option<&RegistryHost>,
) -> Result<KeyChanges> {
    if given(patch.username).is_some_and(|u| u != existing.username) {
        return Err(Error::invalid(
            "username",
            "An ECR credential's username is its AWS access key id: change access_key_id instead.",
        ));
    }
    if given(patch.secret).is_some() {
        return Err(Error::invalid(
            "secret",
            "An ECR credential has a secret access key, not a password: send it as secret_access_key.",
        ));
    }
    let username = given(patch.access_key_id)
        .map(|k| AwsAccessKeyId::parse(k).field("access_key_id"))
        .transpose()?
        .map(String::from);
    let secret = given(patch.secret_access_key)
        .map(parse_secret_access_key)
        .transpose()?;
    let region = patch
        .region
        .map(|r| AwsRegion::parse(r).field("region"))
        .transpose()?;
    let role_arn = patch
        .role_arn
        .map(|r| {
            given(Some(r))
                .map(|r| AwsRoleArn::parse(r).field("role_arn"))
                .transpose()
        })
        .transpose()?;
    let external_id = patch
        .external_id
        .map(|e| domain::parse_external_id(e).field("external_id"))
        .transpose()?;
    let effective_region = match &region {
        Some(region) => region.clone(),
        None => {
            AwsRegion::parse(existing.aws_region.as_deref().unwrap_or_default()).field("region")?
        }
    };
    domain::check_ecr_registry(
        registry.unwrap_or(&existing.registry),
        &effective_region,
        berth.ecr.extra_registry_hosts(),
    )
    .field("registry")?;
    let has_role = match &role_arn {
        Some(role) => role.is_some(),
        None => existing.aws_role_arn.is_some(),
    };
    let has_external_id = match &external_id {
        Some(id) => id.is_some(),
        None => existing.aws_external_id.is_some(),
    };
    if has_external_id && !has_role {
        return Err(Error::invalid(
            "external_id",
            "An external id goes with a role to assume; give the role ARN too, or leave the external id empty.",
        ));
    }
    Ok(KeyChanges {
        username,
        secret,
        region,
        role_arn,
        external_id,
    })
}

pub async fn update(
    berth: &Berth,
    actor: i64,
    team: &str,
    current: &str,
    patch: CredentialPatch<'_>,
) -> Result<RegistryCredential> {
    // Every field is checked before answering, so that the form shows all its problems at
    // once (those of the login need the stored credential, read once the person may).
    let mut problems = views::Problems::default();
    let name = problems.check(patch.name.map(CredentialName::parse).transpose(), "name");
    let registry = problems.check(
        patch.registry.map(RegistryHost::parse).transpose(),
        "registry",
    );
    let note = problems.check(patch.note.map(parse_note).transpose(), "note");
    let expires_at = problems.check(
        patch.expires_on.map(domain::parse_expiry_date).transpose(),
        "expires_on",
    );
    let access = authorize(&berth.store, actor, team, Role::Owner, MANAGE).await?;
    let existing = reload(berth, &access, current).await?;
    let key = match (existing.kind, &registry) {
        (CredentialKind::Basic, Some(registry)) => Error::noted(
            &mut problems,
            basic_changes(&patch, &existing, registry.as_ref()),
        )?,
        (CredentialKind::Ecr, Some(registry)) => Error::noted(
            &mut problems,
            ecr_changes(berth, &patch, &existing, registry.as_ref()),
        )?,
        // The login's checks depend on the registry: they wait for a valid one.
        (_, None) => None,
    };
    problems.finish()?;
    let (Some(name), Some(registry), Some(note), Some(expires_at), Some(key)) =
        (name, registry, note, expires_at, key)
    else {
        return Err(Error::unchecked("credential"));
    };
    let sealed = key
        .secret
        .as_ref()
        .map(|s| berth.secrets.seal(&SecretSlot::Credential(existing.id), s));
    let updated = berth
        .store
        .update_credential(
            existing.id,
            CredentialChanges {
                name: name.as_ref(),
                registry: registry.as_ref(),
                username: key.username.as_deref(),
                note: note.as_ref().map(|n| n.as_deref()),
                aws_region: key.region.as_ref().map(AwsRegion::as_str),
                aws_role_arn: key
                    .role_arn
                    .as_ref()
                    .map(|r| r.as_ref().map(AwsRoleArn::as_str)),
                aws_external_id: key.external_id.as_ref().map(|e| e.as_deref()),
            },
            sealed,
        )
        .await
        .map_err(|e| match &name {
            Some(name) => name_taken(name)(e),
            None => e.into(),
        })?;
    // Tokens minted with the old key, region or role are never used again.
    berth.ecr.forget(existing.id);
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
        changed.push(match updated.kind {
            CredentialKind::Basic => format!("username {}", updated.username),
            CredentialKind::Ecr => format!("access key id {}", updated.username),
        });
    }
    if key.secret.is_some() {
        changed.push(format!("new secret (version {})", updated.secret_version));
    }
    if updated.aws_region != existing.aws_region {
        changed.push(format!(
            "region {}",
            updated.aws_region.as_deref().unwrap_or("")
        ));
    }
    if updated.aws_role_arn != existing.aws_role_arn {
        changed.push(match &updated.aws_role_arn {
            Some(role) => format!("role {role}"),
            None => "no role".into(),
        });
    }
    if updated.aws_external_id != existing.aws_external_id {
        changed.push("external id".into());
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
    berth.ecr.forget(existing.id);
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

/// Why a verification failed, and at which step: AWS sign-in or role assumption (kind
/// `ecr`), the registry login, or the image pull.
#[derive(Debug)]
pub enum VerifyFailure {
    Aws(AwsError),
    Registry {
        error: RegistryError,
        /// An image was given to pull.
        pulling: bool,
    },
}

impl VerifyFailure {
    /// `aws_sign_in_failed`, `role_assumption_failed`, or the registry's kind
    /// (`wrong_credentials`, `denied`, `not_found`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyFailure::Aws(error) => error.step.failure_kind(),
            VerifyFailure::Registry { error, .. } => error.kind(),
        }
    }

    /// `aws_sign_in`, `role_assumption`, `registry_login` or `image_pull`.
    pub fn step(&self) -> &'static str {
        match self {
            VerifyFailure::Aws(error) => error.step.as_str(),
            VerifyFailure::Registry { error, pulling } => match error {
                RegistryError::Denied { .. }
                | RegistryError::NotFound { .. }
                | RegistryError::ImageOnAnotherRegistry { .. }
                    if *pulling =>
                {
                    "image_pull"
                }
                _ => "registry_login",
            },
        }
    }

    pub fn step_words(&self) -> &'static str {
        match self.step() {
            "aws_sign_in" => "AWS sign-in",
            "role_assumption" => "role assumption",
            "image_pull" => "image pull",
            _ => "registry login",
        }
    }

    pub fn message(&self) -> String {
        match self {
            VerifyFailure::Aws(error) => error.to_string(),
            VerifyFailure::Registry { error, .. } => error.to_string(),
        }
    }
}

/// The outcome of a verification, for the page or the API.
pub struct Verification {
    pub credential: RegistryCredential,
    pub image: Option<ImageReference>,
    pub result: std::result::Result<Option<ResolvedImage>, VerifyFailure>,
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
                step: None,
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
                step: None,
                message: None,
                credential,
            },
            Err(failure) => VerifyBody {
                ok: false,
                digest: None,
                media_type: None,
                platforms: Vec::new(),
                linux_amd64_digest: None,
                size: None,
                kind: Some(failure.kind().to_owned()),
                step: Some(failure.step().to_owned()),
                message: Some(failure.message()),
                credential,
            },
        }
    }

    /// What the credential's page shows of it.
    pub fn report(&self) -> VerifyReport {
        let image = self.image.as_ref().map(ToString::to_string);
        let minted = self.credential.kind == CredentialKind::Ecr;
        match &self.result {
            Ok(Some(resolved)) => VerifyReport {
                ok: true,
                kind: None,
                step: None,
                message: if minted {
                    "Got a token from AWS, logged in and resolved the image."
                } else {
                    "Logged in and resolved the image."
                }
                .into(),
                image,
                digest: Some(resolved.digest.to_string()),
                platforms: resolved.platforms.clone(),
                size: resolved.size,
            },
            Ok(None) => VerifyReport {
                ok: true,
                kind: None,
                step: None,
                message: if minted {
                    "Got a token from AWS and logged in. Give an image to prove pull access too."
                } else {
                    "Logged in. Give an image to prove pull access too."
                }
                .into(),
                image: None,
                digest: None,
                platforms: Vec::new(),
                size: None,
            },
            Err(failure) => VerifyReport {
                ok: false,
                kind: Some(failure.kind().to_owned()),
                step: Some(failure.step_words().to_owned()),
                message: failure.message(),
                image,
                digest: None,
                platforms: Vec::new(),
                size: None,
            },
        }
    }
}

/// Logs in to the credential's registry (with a token minted from AWS for kind `ecr`) and,
/// given an image, proves it can be pulled. Deployers may verify: they use the credentials,
/// and verifying reveals nothing secret.
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
    let result = match team_login(berth, &credential).await? {
        Err(error) => Err(VerifyFailure::Aws(error)),
        Ok(login) => berth
            .registry
            .verify(&registry, Some(&login), image.as_ref())
            .await
            .map(|verified| verified.image)
            .map_err(|e| VerifyFailure::Registry {
                error: e.redact(login.secret.expose()),
                pulling: image.is_some(),
            }),
    };
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
        // The registry took the login and then had no such image: the credential works (a
        // mistyped tag is no reason to mark it failed).
        Err(VerifyFailure::Registry {
            error: error @ platform::registry::RegistryError::NotFound { .. },
            ..
        }) => (
            true,
            format!(
                "logged in; the image to pull was not found: {}",
                error.to_string().trim_end_matches('.')
            ),
        ),
        Err(failure) => (
            false,
            format!(
                "{} failed, {}: {}",
                failure.step_words(),
                failure.kind(),
                failure.message()
            ),
        ),
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
