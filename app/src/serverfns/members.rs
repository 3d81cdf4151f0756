use crate::{error::AppError, model::*};
#[cfg(feature = "ssr")]
use domain::Role;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// The team's members, for anyone in the team.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_members(team: String) -> Result<TeamMembers, AppError> {
    let (user, access) = crate::ssr::require_role(&team, Role::Viewer, "see the members").await?;
    let members = crate::ssr::state()?.store.members(access.team_id).await?;
    Ok(TeamMembers {
        team: TeamSummary {
            handle: access.handle,
            name: access.name,
            role: access.role.0,
        },
        you: user.id,
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id,
                email: m.email,
                role: m.role.0,
                joined_at: m.joined_at,
                pending: m.pending,
            })
            .collect(),
        flash: crate::ssr::take_flash().await?,
    })
}

/// Adds a member by e-mail. Someone without an account gets an invitation link, shown to
/// the owner once (in the result, or, for a form posted without JavaScript, on the next page).
#[server]
pub async fn add_member(
    csrf_token: String,
    team: String,
    email: String,
    role: String,
) -> Result<Option<Flash>, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let added =
        crate::services::add_member(&crate::ssr::state()?, user.id, &team, &email, &role).await?;
    let flash = match added.invite_url {
        Some(url) => Flash::InviteLink {
            email: added.email.to_string(),
            url,
        },
        None => Flash::Notice(format!(
            "{} is now a {} of this team.",
            added.email, added.role
        )),
    };
    crate::ssr::flash_for_form_post(flash).await
}

#[server]
pub async fn change_role(
    csrf_token: String,
    team: String,
    user_id: i64,
    role: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    crate::services::change_role(&crate::ssr::state()?, user.id, &team, user_id, &role).await?;
    Ok(())
}

#[server]
pub async fn remove_member(csrf_token: String, team: String, user_id: i64) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    crate::services::remove_member(&crate::ssr::state()?, user.id, &team, user_id).await
}
