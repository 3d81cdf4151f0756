//! Accounts: sign-up (a person and the team they found), sign-in (throttled per account and
//! per address), invitations, and who a signed-in person is. Sessions themselves belong to
//! the web edge; this module only says whether a person may have one.

use crate::{present, Berth, Error, Result};
use domain::{Email, NewPassword, TeamHandle, TeamName};
use store::{NewAccount, Store, User};
use views::{AppError, FieldExt, InviteInfo, Viewer};

/// What sign-up asks for.
pub struct SignUp<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub team_name: &'a str,
    pub team_handle: &'a str,
}

/// Creates an account and the team it owns; answers the user and the team's handle.
pub async fn sign_up(berth: &Berth, input: SignUp<'_>) -> Result<(User, TeamHandle)> {
    let email = Email::parse(input.email).field("email")?;
    let password = NewPassword::parse(input.password).field("password")?;
    let team_name = TeamName::parse(input.team_name).field("team_name")?;
    let team_handle = TeamHandle::parse(input.team_handle).field("team_handle")?;
    let user = create_account(&berth.store, &email, &password, &team_handle, &team_name)
        .await
        .map_err(|e| match e {
            Error::Refused(AppError::Conflict { field, message }) if field == "handle" => {
                Error::conflict("team_handle", message)
            }
            other => other,
        })?;
    tracing::info!(user_id = user.id, team = %team_handle, "account created");
    Ok((user, team_handle))
}

/// Creates a person with a password who owns a new team (sign-up, and `berth user create`).
pub async fn create_account(
    store: &Store,
    email: &Email,
    password: &NewPassword,
    team_handle: &TeamHandle,
    team_name: &TeamName,
) -> Result<User> {
    let hash = store::passwords::hash(password)?;
    let (user, _) = store
        .create_account(NewAccount {
            email,
            password_hash: &hash,
            team_handle,
            team_name,
        })
        .await?;
    Ok(user)
}

/// Checks an e-mail and password, from the client at `ip`. Too many failures for the
/// account or the address refuse further tries for a while.
pub async fn sign_in(berth: &Berth, email: &str, password: &str, ip: &str) -> Result<User> {
    let email = Email::parse(email).field("email")?;
    if let Err(throttled) = berth
        .store
        .check_sign_in_allowed(email.as_str(), ip, berth.sign_in_limits)
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
        }
        .into());
    }
    let user = berth.store.user_by_email(&email).await?;
    let ok = store::passwords::verify(
        password,
        user.as_ref().and_then(|u| u.password_hash.as_deref()),
    );
    berth.store.record_sign_in(email.as_str(), ip, ok).await?;
    match user {
        Some(user) if ok => {
            tracing::info!(user_id = user.id, "signed in");
            Ok(user)
        }
        _ => Err(Error::invalid(
            "password",
            "That e-mail and password do not match an account.",
        )),
    }
}

/// The person with this id, if the account still exists.
pub async fn user(berth: &Berth, user_id: i64) -> Result<Option<User>> {
    Ok(berth.store.user(user_id).await?)
}

/// Who is signed in, with their teams and roles.
pub async fn viewer(berth: &Berth, user: User) -> Result<Viewer> {
    let teams = berth.store.teams_of(user.id).await?;
    Ok(Viewer {
        user_id: user.id,
        email: user.email,
        teams: teams.iter().map(present::team).collect(),
    })
}

/// What an invitation link is for: the address and the team.
pub async fn invite(berth: &Berth, token: &str) -> Result<InviteInfo> {
    let invite = berth
        .store
        .invite(token)
        .await?
        .ok_or_else(Error::not_found)?;
    Ok(InviteInfo {
        email: invite.email,
        team_name: invite.team_name,
        team_handle: invite.team_handle,
    })
}

fn invite_used_up() -> Error {
    Error::invalid(
        "token",
        "This invitation link is used up or has expired; ask an owner for a new one.",
    )
}

/// Accepts an invitation by choosing a password; answers the person and the handle of the
/// team they joined. A link never resets the password of an account that has one.
pub async fn accept_invite(berth: &Berth, token: &str, password: &str) -> Result<(User, String)> {
    let password = NewPassword::parse(password).field("password")?;
    let invite = berth
        .store
        .invite(token)
        .await?
        .ok_or_else(invite_used_up)?;
    let hash = store::passwords::hash(&password)?;
    let user = berth
        .store
        .accept_invite(token, &hash)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => invite_used_up(),
            other => other.into(),
        })?;
    Ok((user, invite.team_handle))
}

/// A new API token for the person with `email` (for the command line): the token, shown
/// once.
pub async fn create_token_for(store: &Store, email: &Email, name: &str) -> Result<String> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| Error::invalid("email", format!("no user {email}")))?;
    let (_, token) = crate::tokens::create(store, user.id, name).await?;
    Ok(token)
}
