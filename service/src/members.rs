//! A team's members: who is in it and with which role. Owners add, change and remove them.
//! Nobody becomes a member without consent: someone added without an account gets an
//! invitation link (shown to the owner once) with which they choose a password; someone
//! with an account is invited and joins when they accept (`accounts::answer_invitation`).

use crate::{authz::authorize, present, Berth, Result};
use domain::{Email, Role};
use store::{AddedMember, Member, TeamAccess};
use views::{FieldExt, Flash, MemberRow, TeamMembers};

/// The result of adding a member: the invitation link when the person had no account yet.
pub struct MemberAdded {
    pub access: TeamAccess,
    pub user_id: i64,
    pub email: Email,
    pub role: Role,
    pub invite_url: Option<String>,
    /// Not a member until they accept (always true: the link or the person's Accept).
    pub pending: bool,
}

impl MemberAdded {
    /// What the members page shows once: the link, or who joined.
    pub fn flash(&self) -> Flash {
        match &self.invite_url {
            Some(url) => Flash::InviteLink {
                email: self.email.to_string(),
                url: url.clone(),
            },
            None => Flash::Notice(format!(
                "{} is invited as a {}: they join once they accept on their Berth overview.",
                self.email, self.role
            )),
        }
    }
}

/// The team's members, for anyone in the team.
pub async fn list(berth: &Berth, actor: i64, team: &str) -> Result<(TeamAccess, Vec<Member>)> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see the members").await?;
    let members = berth.store.members(access.team_id).await?;
    Ok((access, members))
}

/// The members page.
pub async fn page(
    berth: &Berth,
    actor: i64,
    team: &str,
    flash: Option<Flash>,
) -> Result<TeamMembers> {
    let (access, members) = list(berth, actor, team).await?;
    let deploy_key = crate::deploy_keys::of_team(berth, &access).await?;
    Ok(TeamMembers {
        team: present::team(&access),
        you: actor,
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id,
                email: m.email,
                role: m.role,
                joined_at: m.joined_at,
                pending: m.pending,
            })
            .collect(),
        deploy_key,
        flash,
    })
}

pub async fn add(
    berth: &Berth,
    actor: i64,
    team: &str,
    email: &str,
    role: &str,
) -> Result<MemberAdded> {
    let mut problems = views::Problems::default();
    let email = problems.check(Email::parse(email), "email");
    let role = problems.check(role.parse::<Role>(), "role");
    problems.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(crate::Error::unchecked("member"));
    };
    let access = authorize(&berth.store, actor, team, Role::Owner, "add members").await?;
    let added = berth
        .store
        .add_member(access.team_id, &email, role, actor)
        .await
        .map_err(|e| match e {
            store::StoreError::Taken { .. } => crate::Error::conflict(
                "email",
                format!("{email} is already a member of this team, or invited to it."),
            ),
            other => other.into(),
        })?;
    tracing::info!(team = %access.handle, role = %role, by = actor, "member invited");
    let (user_id, invite_url) = match added {
        AddedMember::Invited {
            user_id,
            invite_token,
        } => (
            user_id,
            Some(format!(
                "{}/invite/{invite_token}",
                berth.public_url.trim_end_matches('/')
            )),
        ),
        AddedMember::Pending { user_id, .. } => (user_id, None),
    };
    Ok(MemberAdded {
        access,
        user_id,
        email,
        role,
        invite_url,
        pending: true,
    })
}

pub async fn change_role(
    berth: &Berth,
    actor: i64,
    team: &str,
    member: i64,
    role: &str,
) -> Result<Role> {
    let role: Role = role.parse().field("role")?;
    let access = authorize(&berth.store, actor, team, Role::Owner, "change roles").await?;
    berth
        .store
        .change_role(access.team_id, member, role)
        .await?;
    tracing::info!(team = %access.handle, member, role = %role, by = actor, "role changed");
    Ok(role)
}

pub async fn remove(berth: &Berth, actor: i64, team: &str, member: i64) -> Result<()> {
    let access = authorize(&berth.store, actor, team, Role::Owner, "remove members").await?;
    berth.store.remove_member(access.team_id, member).await?;
    tracing::info!(team = %access.handle, member, by = actor, "member removed");
    Ok(())
}

/// A team the person is in, for any member (`GET /api/v1/teams/{team}`).
/// Owners choose whether the team's viewers may read runtime and operation logs (see
/// [`crate::authz::may_read_logs`]). Answers the team with the setting applied.
pub async fn set_viewers_read_logs(
    berth: &Berth,
    actor: i64,
    team: &str,
    allowed: bool,
) -> Result<TeamAccess> {
    let mut access = authorize(
        &berth.store,
        actor,
        team,
        Role::Owner,
        "change the team's settings",
    )
    .await?;
    berth
        .store
        .set_viewers_read_logs(access.team_id, allowed)
        .await?;
    access.viewers_read_logs = allowed;
    Ok(access)
}

pub async fn team(berth: &Berth, actor: i64, team: &str) -> Result<TeamAccess> {
    authorize(&berth.store, actor, team, Role::Viewer, "see this team").await
}
