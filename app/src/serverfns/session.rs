#[cfg(feature = "ssr")]
use crate::error::FieldExt;
use crate::{error::AppError, model::*};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// The signed-in person (if any) and the CSRF token their forms must carry.
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_session() -> Result<SessionInfo, AppError> {
    use crate::ssr::{self, keys};
    let session = ssr::session().await?;
    let csrf_token = match session.get::<String>(keys::CSRF_TOKEN).await.ok().flatten() {
        Some(token) => token,
        None => {
            let token = store::random_token(32);
            session
                .insert(keys::CSRF_TOKEN, &token)
                .await
                .map_err(|_| AppError::Internal)?;
            token
        }
    };
    let viewer = match ssr::current_user().await? {
        Some(user) => {
            let teams = ssr::state()?.store.teams_of(user.id).await?;
            Some(Viewer {
                user_id: user.id,
                email: user.email,
                teams: teams
                    .into_iter()
                    .map(|t| TeamSummary {
                        handle: t.handle,
                        name: t.name,
                        role: t.role.0,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let public_url = ssr::state()?.public_url;
    Ok(SessionInfo {
        csrf_token,
        viewer,
        public_url,
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
    let email = domain::Email::parse(&email).field("email")?;
    let password = domain::NewPassword::parse(&password).field("password")?;
    let team_name = domain::TeamName::parse(&team_name).field("team_name")?;
    let team_handle = domain::TeamHandle::parse(&team_handle).field("team_handle")?;
    let state = crate::ssr::state()?;
    let hash = store::passwords::hash(&password)?;
    let (user, _) = state
        .store
        .create_account(store::NewAccount {
            email: &email,
            password_hash: &hash,
            team_handle: &team_handle,
            team_name: &team_name,
        })
        .await
        .map_err(|e| match AppError::from(e) {
            AppError::Conflict { field, message } if field == "handle" => AppError::Conflict {
                field: "team_handle".into(),
                message,
            },
            other => other,
        })?;
    tracing::info!(user_id = user.id, team = %team_handle, "account created");
    crate::ssr::sign_in_session(user.id).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{team_handle}"));
    Ok(())
}

#[server]
pub async fn sign_in(csrf_token: String, email: String, password: String) -> Result<(), AppError> {
    let _ = csrf_token;
    let email = domain::Email::parse(&email).field("email")?;
    let state = crate::ssr::state()?;
    let ip = crate::ssr::client_ip();
    if let Err(throttled) = state
        .store
        .check_sign_in_allowed(email.as_str(), &ip, state.sign_in_limits)
        .await?
    {
        let minutes = (throttled.retry_after_secs + 59) / 60;
        tracing::warn!(email = %email, ip = %ip, "sign-in throttled");
        return Err(AppError::Throttled {
            message: format!(
                "Too many failed sign-ins. Wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            ),
            retry_after_secs: throttled.retry_after_secs,
        });
    }
    let user = state.store.user_by_email(&email).await?;
    let ok = store::passwords::verify(
        &password,
        user.as_ref().and_then(|u| u.password_hash.as_deref()),
    );
    state.store.record_sign_in(email.as_str(), &ip, ok).await?;
    match user {
        Some(user) if ok => {
            crate::ssr::sign_in_session(user.id).await?;
            tracing::info!(user_id = user.id, "signed in");
            crate::ssr::redirect_plain_form_post("/");
            Ok(())
        }
        _ => Err(AppError::invalid(
            "password",
            "That e-mail and password do not match an account.",
        )),
    }
}

#[server]
pub async fn sign_out(csrf_token: String) -> Result<(), AppError> {
    let _ = csrf_token;
    let session = crate::ssr::session().await?;
    session.flush().await.map_err(|_| AppError::Internal)?;
    crate::ssr::redirect_plain_form_post("/signin");
    Ok(())
}

// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_invite(token: String) -> Result<InviteInfo, AppError> {
    let invite = crate::ssr::state()?
        .store
        .invite(&token)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(InviteInfo {
        email: invite.email,
        team_name: invite.team_name,
        team_handle: invite.team_handle,
    })
}

#[server]
pub async fn accept_invite(
    csrf_token: String,
    token: String,
    password: String,
) -> Result<(), AppError> {
    let _ = csrf_token;
    let password = domain::NewPassword::parse(&password).field("password")?;
    let state = crate::ssr::state()?;
    let invite = state.store.invite(&token).await?.ok_or_else(|| {
        AppError::invalid(
            "token",
            "This invitation link is used up or has expired; ask an owner for a new one.",
        )
    })?;
    let hash = store::passwords::hash(&password)?;
    let user = state
        .store
        .accept_invite(&token, &hash)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => AppError::invalid(
                "token",
                "This invitation link is used up or has expired; ask an owner for a new one.",
            ),
            other => other.into(),
        })?;
    crate::ssr::sign_in_session(user.id).await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{}", invite.team_handle));
    Ok(())
}
