//! Platforms other than the local engine: a team connects to Aptible once (an owner gives a
//! token, or an e-mail and password and perhaps a one-time code), and its apps on Aptible are
//! found there by handle. The token is sealed like every secret and opened only to talk to
//! Aptible.

use crate::{audit, authz::authorize, Berth, Error, Result};
use domain::{AptibleHandle, PlatformKind, Role, Secret};
use platform::aptible::AptibleError;
use store::{AptibleTarget, NewTeamPlatform, SecretSlot, TeamPlatform};
use views::{
    api::{AppPlatformView, PlatformView},
    AppError,
};

/// How long before expiry the Platforms page warns, at most.
const EXPIRY_WARNING_MS: i64 = 24 * 60 * 60 * 1000;

/// How an owner signs Berth in to Aptible.
pub enum AptibleLogin<'a> {
    /// An access token made elsewhere (e.g. `aptible login`, then the CLI's token file).
    Token(&'a str),
    /// Aptible's e-mail and password, and the one-time code when the account has 2FA.
    Password {
        email: &'a str,
        password: &'a str,
        otp: Option<&'a str>,
    },
    /// Neither, or a token with an e-mail or password (refused once the role is checked).
    Ambiguous,
}

/// Connects the team to Aptible (or gives it a new token): owners only. Only the access
/// token is kept, sealed; the password is used once and forgotten.
pub async fn connect_aptible(
    berth: &Berth,
    actor: i64,
    team: &str,
    login: AptibleLogin<'_>,
) -> Result<PlatformView> {
    let access = authorize(&berth.store, actor, team, Role::Owner, "connect platforms").await?;
    let client = &berth.aptible;
    let (token, expires_at, account) = match login {
        AptibleLogin::Ambiguous => {
            return Err(Error::invalid(
                "token",
                "Give either an access token, or an e-mail and password (and the one-time \
                 code when Aptible asks for it): one of the two.",
            ))
        }
        AptibleLogin::Token(token) => {
            let token = token.trim();
            if token.is_empty() {
                return Err(Error::invalid(
                    "token",
                    "Paste an Aptible access token, or sign in with e-mail and password.",
                ));
            }
            let token = Secret::new(token.to_owned());
            let info = client
                .check_token(&token)
                .await
                .map_err(|e| login_error(e, "token"))?;
            (token, info.expires_at_ms, None)
        }
        AptibleLogin::Password {
            email,
            password,
            otp,
        } => {
            let email = email.trim();
            let mut problems = views::Problems::default();
            if email.is_empty() {
                problems.add("email", "Give the e-mail you sign in to Aptible with.");
            }
            if password.is_empty() {
                problems.add("password", "Give your Aptible password.");
            }
            problems.finish()?;
            let otp = otp.map(str::trim).filter(|o| !o.is_empty());
            let password = Secret::new(password.to_owned());
            let granted = client
                .sign_in(email, &password, otp, None)
                .await
                .map_err(|e| login_error(e, "password"))?;
            (granted.token, granted.expires_at_ms, Some(email.to_owned()))
        }
    };
    let sealed = berth
        .secrets
        .seal(&SecretSlot::TeamAptibleToken(access.team_id), &token);
    let connected = berth
        .store
        .connect_platform(
            access.team_id,
            NewTeamPlatform {
                kind: PlatformKind::Aptible,
                account: account.as_deref(),
                token: &sealed,
                expires_at,
                connected_by: actor,
            },
        )
        .await?;
    audit::record(
        berth,
        access.team_id,
        Some(actor),
        "platform.connect",
        "platform:aptible",
        true,
        &format!(
            "connected to Aptible{}",
            account.map(|a| format!(" as {a}")).unwrap_or_default()
        ),
    )
    .await?;
    tracing::info!(team = %access.handle, by = actor, "team connected to Aptible");
    Ok(view(berth, Some(connected)))
}

/// The team's connection to Aptible, for any member (nothing secret in it).
pub async fn aptible_state(berth: &Berth, actor: i64, team: &str) -> Result<PlatformView> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see platforms").await?;
    let connection = berth
        .store
        .team_platform(access.team_id, PlatformKind::Aptible)
        .await?;
    Ok(view(berth, connection))
}

/// Disconnects the team from Aptible (its token is deleted): owners only. Apps on Aptible
/// stay, and their operations fail with "connect the team" until it connects again.
pub async fn disconnect_aptible(berth: &Berth, actor: i64, team: &str) -> Result<PlatformView> {
    let access = authorize(
        &berth.store,
        actor,
        team,
        Role::Owner,
        "disconnect platforms",
    )
    .await?;
    if !berth
        .store
        .disconnect_platform(access.team_id, PlatformKind::Aptible)
        .await?
    {
        return Err(Error::not_found());
    }
    audit::record(
        berth,
        access.team_id,
        Some(actor),
        "platform.disconnect",
        "platform:aptible",
        true,
        "disconnected from Aptible; its token is deleted",
    )
    .await?;
    Ok(view(berth, None))
}

fn view(berth: &Berth, connection: Option<TeamPlatform>) -> PlatformView {
    let api_url = berth
        .aptible
        .api_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    match connection {
        None => PlatformView {
            kind: "aptible".into(),
            state: "not_connected".into(),
            account: None,
            expires_at: None,
            expires_soon: false,
            last_error: None,
            connected_by: None,
            connected_at: None,
            api_url,
        },
        Some(c) => PlatformView {
            kind: c.kind.as_str().into(),
            state: c.state.clone(),
            expires_soon: c.expires_at.is_some_and(|at| {
                // A day before, or the last quarter of a shorter token's life (a 12-hour
                // token from a sign-in with a one-time code warns 3 hours before).
                let lifetime = at - c.connected_at;
                at - store::now_ms() < EXPIRY_WARNING_MS.min(lifetime / 4)
            }),
            account: c.account,
            expires_at: c.expires_at,
            last_error: c.last_error,
            connected_by: c.connected_by_email,
            connected_at: Some(c.connected_at),
            api_url,
        },
    }
}

/// The team's Aptible token, opened, or why there is none to use.
pub(crate) async fn aptible_token(berth: &Berth, team_id: i64) -> Result<Secret> {
    let connection = berth
        .store
        .team_platform(team_id, PlatformKind::Aptible)
        .await?;
    let not_connected = || AppError::Unavailable {
        message: "This team is not connected to Aptible: an owner connects it on the Platforms \
                  page."
            .into(),
    };
    let Some(connection) = connection else {
        return Err(not_connected().into());
    };
    if connection.needs_reconnect() {
        return Err(AppError::Unavailable {
            message: format!(
                "Aptible no longer accepts this team's token ({}): an owner connects again on \
                 the Platforms page.",
                connection.last_error.as_deref().unwrap_or("expired")
            ),
        }
        .into());
    }
    let sealed = berth
        .store
        .team_platform_token(team_id, PlatformKind::Aptible)
        .await?
        .ok_or_else(not_connected)?;
    berth
        .secrets
        .open(&SecretSlot::TeamAptibleToken(team_id), &sealed)
}

/// Aptible refused the team's token: the connection is marked "reconnect needed" so the
/// Platforms page and every later operation say so, instead of failing obscurely.
pub(crate) async fn token_refused(berth: &Berth, team_id: i64, message: &str) {
    if let Err(error) = berth
        .store
        .mark_platform_reconnect_needed(team_id, PlatformKind::Aptible, message)
        .await
    {
        tracing::warn!(%error, team_id, "could not mark the Aptible connection");
    }
}

/// Finds the Aptible app an app of Berth will forward to (with the team's token).
pub(crate) async fn find_aptible_app(
    berth: &Berth,
    team_id: i64,
    environment: AptibleHandle,
    handle: AptibleHandle,
    verify_images: bool,
) -> Result<AptibleTarget> {
    let token = aptible_token(berth, team_id).await?;
    match berth
        .aptible
        .find_app(&token, environment.as_str(), handle.as_str())
        .await
    {
        Ok(found) => Ok(AptibleTarget {
            environment,
            app: handle,
            app_id: found.id,
            git_repo: found.git_repo,
            verify_images,
        }),
        Err(AptibleError::NotFound { .. }) => Err(Error::invalid(
            "aptible_app",
            format!(
                "Aptible has no app {handle} in environment {environment} that this team's \
                 token can see; check both handles (aptible apps --environment {environment})."
            ),
        )),
        Err(AptibleError::Ambiguous { .. }) => Err(Error::invalid(
            "aptible_environment",
            format!(
                "More than one Aptible app is called {handle} in environments named \
                 {environment}; Aptible cannot tell which one is meant."
            ),
        )),
        Err(error) => Err(api_error(berth, team_id, error).await),
    }
}

/// An error of a call made with the team's token, for the person who asked.
pub(crate) async fn api_error(berth: &Berth, team_id: i64, error: AptibleError) -> Error {
    if let AptibleError::ReconnectNeeded { message } = &error {
        token_refused(berth, team_id, message).await;
    }
    platform_error(error)
}

/// An Aptible error in words for a person; the field is the login field to fix, if any.
fn login_error(error: AptibleError, field: &str) -> Error {
    match error {
        AptibleError::OtpRequired { .. } => Error::invalid(
            "otp",
            "This Aptible account uses two-factor authentication: enter the one-time code \
             from your authenticator app.",
        ),
        AptibleError::WrongCredentials { message } => Error::invalid(
            field,
            format!("Aptible did not accept these credentials: {message}"),
        ),
        AptibleError::ReconnectNeeded { message } => Error::invalid(
            field,
            format!("Aptible did not accept this token: {message}. Make a new one and paste it."),
        ),
        other => platform_error(other),
    }
}

fn platform_error(error: AptibleError) -> Error {
    let message = match &error {
        AptibleError::Unreachable { .. } => format!("Berth cannot reach Aptible: {error}"),
        _ => format!("Aptible: {error}"),
    };
    AppError::Unavailable { message }.into()
}

/// Where an app runs, for its page and the API.
pub fn app_platform_view(platform: &store::AppPlatform) -> AppPlatformView {
    match platform.aptible() {
        Some(target) => AppPlatformView {
            kind: "aptible".into(),
            environment: Some(target.environment.to_string()),
            app: Some(target.app.to_string()),
            app_id: Some(target.app_id),
            verify_images: Some(target.verify_images),
        },
        None => AppPlatformView {
            kind: "local".into(),
            environment: None,
            app: None,
            app_id: None,
            verify_images: None,
        },
    }
}

/// The Platforms page, for any member (owners see the forms).
pub async fn page(berth: &Berth, actor: i64, team: &str) -> Result<views::PlatformsPage> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see platforms").await?;
    let connection = berth
        .store
        .team_platform(access.team_id, PlatformKind::Aptible)
        .await?;
    Ok(views::PlatformsPage {
        team: crate::present::team(&access),
        aptible: view(berth, connection),
        deploy_key: crate::deploy_keys::of_team(berth, &access).await?,
    })
}
