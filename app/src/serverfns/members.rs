//! A team's members.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, Flash, TeamMembers};

/// The team's members, for anyone in the team.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_members(team: String) -> Result<TeamMembers, AppError> {
    let user = crate::ssr::require_user().await?;
    let flash = crate::ssr::take_flash().await?;
    Ok(service::members::page(&crate::ssr::berth()?, user, &team, flash).await?)
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
    let added = service::members::add(&crate::ssr::berth()?, user, &team, &email, &role).await?;
    crate::ssr::flash_for_form_post(added.flash()).await
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
    service::members::change_role(&crate::ssr::berth()?, user, &team, user_id, &role).await?;
    Ok(())
}

#[server]
pub async fn remove_member(csrf_token: String, team: String, user_id: i64) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    Ok(service::members::remove(&crate::ssr::berth()?, user, &team, user_id).await?)
}

/// Owners allow or forbid viewers to read logs (the checkbox `viewers_read_logs`: present
/// when ticked).
#[server]
pub async fn set_viewers_read_logs(
    csrf_token: String,
    team: String,
    viewers_read_logs: Option<String>,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    service::members::set_viewers_read_logs(
        &crate::ssr::berth()?,
        user,
        &team,
        viewers_read_logs.is_some(),
    )
    .await?;
    Ok(())
}
