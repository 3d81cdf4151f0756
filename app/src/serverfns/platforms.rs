//! The team's platforms: its connection to Aptible.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, PlatformsPage};

/// The Platforms page, for anyone in the team.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_platforms(team: String) -> Result<PlatformsPage, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::platforms::page(&crate::ssr::berth()?, user, &team).await?)
}

/// Connects the team to Aptible (owners): with a pasted `token`, or with `email`,
/// `password` and, for an account with two-factor authentication, `otp`.
#[server]
pub async fn connect_aptible(
    csrf_token: String,
    team: String,
    #[server(default)] token: Option<String>,
    #[server(default)] email: Option<String>,
    #[server(default)] password: Option<String>,
    #[server(default)] otp: Option<String>,
) -> Result<(), AppError> {
    use service::platforms::AptibleLogin;
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let token = token.filter(|t| !t.trim().is_empty());
    let login = match &token {
        Some(token) => AptibleLogin::Token(token),
        None => AptibleLogin::Password {
            email: email.as_deref().unwrap_or_default(),
            password: password.as_deref().unwrap_or_default(),
            otp: otp.as_deref(),
        },
    };
    service::platforms::connect_aptible(&crate::ssr::berth()?, user, &team, login).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/platforms"));
    Ok(())
}

/// Disconnects the team from Aptible (owners); its token is deleted.
#[server]
pub async fn disconnect_aptible(csrf_token: String, team: String) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    service::platforms::disconnect_aptible(&crate::ssr::berth()?, user, &team).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}/platforms"));
    Ok(())
}
