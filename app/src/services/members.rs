//! Team membership operations shared by the server functions (forms) and the JSON API, so
//! that both validate, authorise and log the same way.

use crate::{
    error::{AppError, FieldExt},
    ssr::{authorize, ServerState},
};
use domain::{Email, Role};
use store::{AddedMember, TeamAccess};

/// The result of adding a member: the invitation link when the person had no account yet.
pub struct MemberAdded {
    pub access: TeamAccess,
    pub user_id: i64,
    pub email: Email,
    pub role: Role,
    pub invite_url: Option<String>,
}

pub async fn add_member(
    state: &ServerState,
    actor: i64,
    team: &str,
    email: &str,
    role: &str,
) -> Result<MemberAdded, AppError> {
    let email = Email::parse(email).field("email")?;
    let role: Role = role.parse().field("role")?;
    let access = authorize(&state.store, actor, team, Role::Owner, "add members").await?;
    let added = state
        .store
        .add_member(access.team_id, &email, role, actor)
        .await
        .map_err(|e| match e {
            store::StoreError::Taken { .. } => AppError::Conflict {
                field: "email".into(),
                message: format!("{email} is already a member of this team."),
            },
            other => other.into(),
        })?;
    tracing::info!(team = %access.handle, role = %role, by = actor, "member added");
    let (user_id, invite_url) = match added {
        AddedMember::Invited {
            user_id,
            invite_token,
        } => (
            user_id,
            Some(format!(
                "{}/invite/{invite_token}",
                state.public_url.trim_end_matches('/')
            )),
        ),
        AddedMember::Existing { user_id } => (user_id, None),
    };
    Ok(MemberAdded {
        access,
        user_id,
        email,
        role,
        invite_url,
    })
}

pub async fn change_role(
    state: &ServerState,
    actor: i64,
    team: &str,
    member: i64,
    role: &str,
) -> Result<Role, AppError> {
    let role: Role = role.parse().field("role")?;
    let access = authorize(&state.store, actor, team, Role::Owner, "change roles").await?;
    state
        .store
        .change_role(access.team_id, member, role)
        .await?;
    tracing::info!(team = %access.handle, member, role = %role, by = actor, "role changed");
    Ok(role)
}

pub async fn remove_member(
    state: &ServerState,
    actor: i64,
    team: &str,
    member: i64,
) -> Result<(), AppError> {
    let access = authorize(&state.store, actor, team, Role::Owner, "remove members").await?;
    state.store.remove_member(access.team_id, member).await?;
    tracing::info!(team = %access.handle, member, by = actor, "member removed");
    Ok(())
}
