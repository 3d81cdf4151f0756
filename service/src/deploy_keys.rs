//! Each team's ssh deploy key: an ed25519 pair Berth makes for the team, whose public half
//! owners add to their repositories as a read-only deploy key, and whose private half only
//! git over ssh uses (never the host account's keys or agent).
//!
//! A team gets its key when it first needs one: at the first fetch of an ssh repository for
//! one of its apps, or when an owner asks for one. Reading it (pages, `GET …/deploy-key`)
//! never makes one: a GET has no side effects. An owner may replace the key at any time;
//! Berth uses the new one from the next fetch on, so the old one stops working in Berth at
//! once (owners remove it from their repositories too). The private half is sealed by
//! [`crate::secrets`] like every other secret and opened only to hand it to git.

use crate::{audit, authz::authorize, Berth, Error, Result};
use domain::Role;
use platform::git::{DeployKey, GitError, SshKey};
use store::{NewDeployKey, SecretSlot, TeamAccess, TeamDeployKey};
use views::{api::DeployKeyBody, AppError, DeployKeyRow};

/// The subject of the deploy key's audit events.
pub const SUBJECT: &str = "deploy_key";

/// The public half as pages and the API show it.
pub fn row(key: TeamDeployKey) -> DeployKeyRow {
    DeployKeyRow {
        public_key: key.public_key,
        fingerprint: key.fingerprint,
        created_at: key.created_at,
    }
}

/// The team's deploy key (its public half), for any member: it is public. `None` while the
/// team has none; this never makes one.
pub async fn get(berth: &Berth, actor: i64, team: &str) -> Result<Option<DeployKeyRow>> {
    let access = authorize(
        &berth.store,
        actor,
        team,
        Role::Viewer,
        "see the team's deploy key",
    )
    .await?;
    of_team(berth, &access).await
}

/// The team's deploy key for a page that authorised `access` already.
pub async fn of_team(berth: &Berth, access: &TeamAccess) -> Result<Option<DeployKeyRow>> {
    Ok(berth.store.deploy_key(access.team_id).await?.map(row))
}

/// `GET /api/v1/teams/{team}/deploy-key`.
pub async fn body(berth: &Berth, actor: i64, team: &str) -> Result<DeployKeyBody> {
    Ok(get(berth, actor, team).await?.into())
}

/// Makes a new key for the team, replacing the one it had (owners only): from the next
/// fetch on Berth uses the new key, and the old one no longer works in Berth. Audited as
/// `deploy_key.create` or `deploy_key.rotate`.
pub async fn generate(berth: &Berth, actor: i64, team: &str) -> Result<DeployKeyRow> {
    let access = authorize(
        &berth.store,
        actor,
        team,
        Role::Owner,
        "replace the team's deploy key",
    )
    .await?;
    let pair = make(berth, &access.handle).await?;
    let old = berth
        .store
        .replace_deploy_key(
            access.team_id,
            new_key(berth, access.team_id, &pair, Some(actor)),
        )
        .await?;
    let (action, detail) = match &old {
        Some(old) => (
            "deploy_key.rotate",
            format!(
                "new key {} replaces {}; the old key no longer works in Berth",
                pair.fingerprint, old.fingerprint
            ),
        ),
        None => ("deploy_key.create", format!("key {}", pair.fingerprint)),
    };
    audit::record(
        berth,
        access.team_id,
        Some(actor),
        action,
        SUBJECT,
        true,
        &detail,
    )
    .await?;
    tracing::info!(team = %access.handle, fingerprint = %pair.fingerprint, replaced = old.is_some(), by = actor, "deploy key generated");
    berth
        .store
        .deploy_key(access.team_id)
        .await?
        .map(row)
        .ok_or_else(|| Error::internal("the deploy key just stored is missing"))
}

/// The key a fetch for the team's app authenticates with: the team's deploy key, opened,
/// made first when the team has none yet (audited, with no actor: Berth made it).
pub(crate) async fn ssh_key(berth: &Berth, team_id: i64) -> Result<SshKey> {
    if let Some(key) = open(berth, team_id).await? {
        return Ok(key);
    }
    let handle = berth
        .store
        .team_handle(team_id)
        .await?
        .ok_or_else(Error::not_found)?;
    let pair = make(berth, &handle).await?;
    let stored = berth
        .store
        .add_deploy_key_if_none(team_id, new_key(berth, team_id, &pair, None))
        .await?;
    if stored {
        audit::record(
            berth,
            team_id,
            None,
            "deploy_key.create",
            SUBJECT,
            true,
            &format!(
                "key {} made for the first fetch of an ssh repository",
                pair.fingerprint
            ),
        )
        .await?;
        tracing::info!(team = %handle, fingerprint = %pair.fingerprint, "deploy key made for a fetch");
    }
    // Another fetch may have stored its key first: the stored one is the team's.
    open(berth, team_id)
        .await?
        .ok_or_else(|| Error::internal("the deploy key just stored is missing"))
}

async fn open(berth: &Berth, team_id: i64) -> Result<Option<SshKey>> {
    let Some((key, sealed)) = berth.store.deploy_key_secret(team_id).await? else {
        return Ok(None);
    };
    let private_key = berth
        .secrets
        .open(&SecretSlot::TeamDeployKey(team_id), &sealed)?;
    Ok(Some(SshKey {
        private_key,
        fingerprint: key.fingerprint,
    }))
}

fn new_key<'a>(
    berth: &Berth,
    team_id: i64,
    pair: &'a DeployKey,
    created_by: Option<i64>,
) -> NewDeployKey<'a> {
    NewDeployKey {
        public_key: &pair.public_key,
        fingerprint: &pair.fingerprint,
        sealed: berth
            .secrets
            .seal(&SecretSlot::TeamDeployKey(team_id), &pair.private_key),
        created_by,
    }
}

/// A new pair whose comment names the team (`berth:acme`), so that a code host's list of
/// deploy keys says whose it is.
async fn make(berth: &Berth, team_handle: &str) -> Result<DeployKey> {
    DeployKey::generate(&format!("berth:{team_handle}"), &berth.git_dir)
        .await
        .map_err(|error| match error {
            GitError::SshNotInstalled => AppError::Unavailable {
                message: error.to_string(),
            }
            .into(),
            other => Error::internal(format!("cannot make a deploy key: {other}")),
        })
}
