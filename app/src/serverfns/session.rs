//! Signing up, in and out; invitations; who is signed in.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, InviteInfo, PendingInvitation, PendingSignUpInfo, SessionInfo, SignUpMode};

/// The signed-in person (if any) and the CSRF token their forms must carry.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_session() -> Result<SessionInfo, AppError> {
    use crate::ssr;
    let csrf_token = ssr::csrf_token().await?;
    let berth = ssr::berth()?;
    let viewer = ssr::signed_in().await?.map(|signed_in| signed_in.viewer());
    Ok(SessionInfo {
        csrf_token,
        viewer,
        public_url: berth.public_url.clone(),
    })
}

/// Teams that invited the signed-in person, waiting for Accept or Decline (the home and
/// team pages show them; the frame of every page does not read them).
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_invitations() -> Result<Vec<PendingInvitation>, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::accounts::invitations(&crate::ssr::berth()?, user).await?)
}

/// What `/signup` may do on this server (`BERTH_SIGNUP`).
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_sign_up_mode() -> Result<SignUpMode, AppError> {
    Ok(service::accounts::sign_up_mode(&crate::ssr::berth()?).await?)
}

/// Where the sign-up page goes after a successful sign-up: the sign-in page, which sends a
/// signed-in person on to their team.
pub const AFTER_SIGN_UP: &str = "/signin?signed_up=1";

/// Where the sign-up page goes when the address must be confirmed first (open sign-up with
/// an SMTP server): the sign-in page, saying to look for the e-mail.
pub const AFTER_SIGN_UP_TO_CONFIRM: &str = "/signin?check_email=1";

#[server]
pub async fn sign_up(
    csrf_token: String,
    email: String,
    password: String,
    team_name: String,
    team_handle: String,
    #[server(default)] invite: Option<String>,
) -> Result<(), AppError> {
    use service::accounts::SignedUp;
    let _ = csrf_token;
    let outcome = service::accounts::sign_up(
        &crate::ssr::berth()?,
        service::accounts::SignUp {
            email: &email,
            password: &password,
            team_name: &team_name,
            team_handle: &team_handle,
            invite: invite.as_deref(),
        },
        &crate::ssr::client_ip(),
    )
    .await?;
    match outcome {
        SignedUp::SignedIn(user, team) => {
            crate::ssr::sign_in_session(user.id).await?;
            crate::ssr::redirect_plain_form_post(&format!("/teams/{team}"));
        }
        SignedUp::SignInNext => crate::ssr::redirect_plain_form_post(AFTER_SIGN_UP),
        SignedUp::CheckEmail => crate::ssr::redirect_plain_form_post(AFTER_SIGN_UP_TO_CONFIRM),
    }
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

/// What an e-mailed sign-up confirmation link is for.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_pending_sign_up(token: String) -> Result<PendingSignUpInfo, AppError> {
    Ok(service::accounts::pending_sign_up(&crate::ssr::berth()?, &token).await?)
}

/// Finishes a sign-up from its e-mailed link with the password chosen at sign-up; signs the
/// new person in.
#[server]
pub async fn confirm_sign_up(
    csrf_token: String,
    token: String,
    password: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let (user, team) = service::accounts::confirm_sign_up(
        &crate::ssr::berth()?,
        &token,
        &password,
        &crate::ssr::client_ip(),
    )
    .await?;
    crate::ssr::sign_in_session(user.id).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team}"));
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

/// Accepts or declines an invitation to a team (`answer`: `accept` or `decline`).
#[server]
pub async fn answer_invitation(
    csrf_token: String,
    id: i64,
    answer: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let accept = match answer.as_str() {
        "accept" => true,
        "decline" => false,
        _ => return Err(AppError::invalid("answer", "Answer accept or decline.")),
    };
    let user = crate::ssr::require_user().await?;
    let team =
        service::accounts::answer_invitation(&crate::ssr::berth()?, user, id, accept).await?;
    crate::ssr::redirect_plain_form_post(&if accept {
        format!("/teams/{team}")
    } else {
        "/".to_owned()
    });
    Ok(())
}
