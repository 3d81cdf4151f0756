//! Signing up, in and out; invitations; who is signed in.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, InviteInfo, SessionInfo};

/// The signed-in person (if any) and the CSRF token their forms must carry.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_session() -> Result<SessionInfo, AppError> {
    use crate::ssr;
    let csrf_token = ssr::csrf_token().await?;
    let berth = ssr::berth()?;
    let viewer = match ssr::current_user().await? {
        Some(user) => Some(service::accounts::viewer(&berth, user).await?),
        None => None,
    };
    Ok(SessionInfo {
        csrf_token,
        viewer,
        public_url: berth.public_url,
    })
}

#[server]
pub async fn sign_up(
    csrf_token: String,
    email: String,
    password: String,
    team_name: String,
    team_handle: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let (user, team) = service::accounts::sign_up(
        &crate::ssr::berth()?,
        service::accounts::SignUp {
            email: &email,
            password: &password,
            team_name: &team_name,
            team_handle: &team_handle,
        },
    )
    .await?;
    crate::ssr::sign_in_session(user.id).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}"));
    Ok(())
}

#[server]
pub async fn sign_in(csrf_token: String, email: String, password: String) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = service::accounts::sign_in(
        &crate::ssr::berth()?,
        &email,
        &password,
        &crate::ssr::client_ip(),
    )
    .await?;
    crate::ssr::sign_in_session(user.id).await?;
    crate::ssr::redirect_plain_form_post("/");
    Ok(())
}

#[server]
pub async fn sign_out(csrf_token: String) -> Result<(), AppError> {
    let _ = csrf_token;
    crate::ssr::end_session().await?;
    crate::ssr::redirect_plain_form_post("/signin");
    Ok(())
}

// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_invite(token: String) -> Result<InviteInfo, AppError> {
    Ok(service::accounts::invite(&crate::ssr::berth()?, &token).await?)
}

#[server]
pub async fn accept_invite(
    csrf_token: String,
    token: String,
    password: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let (user, team) =
        service::accounts::accept_invite(&crate::ssr::berth()?, &token, &password).await?;
    crate::ssr::sign_in_session(user.id).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}"));
    Ok(())
}
