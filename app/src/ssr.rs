//! Server-only plumbing for server functions: the state they share, the signed-in person,
//! and the one authorisation check that every server function and API route goes through.

use crate::error::AppError;
use domain::Role;
use store::{SignInLimits, Store, TeamAccess, User};
use tower_sessions::Session;

/// What server functions share; provided as Leptos context by the server.
#[derive(Clone)]
pub struct ServerState {
    pub store: Store,
    pub sign_in_limits: SignInLimits,
    /// Where people reach Berth (for invitation links), e.g. `http://127.0.0.1:3000`.
    pub public_url: String,
    /// The master keys that seal and open stored secrets.
    pub keys: std::sync::Arc<vault::SharedKeyring>,
    /// Talks to container registries (verification).
    pub registry: platform::registry::RegistryClient,
    /// Where apps run (the local engine by default).
    pub platform: std::sync::Arc<dyn platform::engine::Platform>,
    /// Wakes this process's operation worker when an operation is queued (other processes
    /// find it on their next poll).
    pub operations_queued: std::sync::Arc<tokio::sync::Notify>,
    /// Where Dockerfile apps' git mirrors and build checkouts live (`<data dir>/git`).
    pub git_dir: std::path::PathBuf,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Keys of the values Berth keeps in a browser session.
pub mod keys {
    pub const USER_ID: &str = "user_id";
    pub const CSRF_TOKEN: &str = "csrf_token";
    /// A one-time message for the next page (e.g. a new token, shown once).
    pub const FLASH: &str = "flash";
}

pub fn state() -> Result<ServerState, AppError> {
    leptos::prelude::use_context::<ServerState>().ok_or_else(|| {
        tracing::error!("ServerState missing from context");
        AppError::Internal
    })
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        AppError::Internal
    })
}

fn session_error(error: tower_sessions::session::Error) -> AppError {
    tracing::error!(error = %error, "session store error");
    AppError::Internal
}

/// The signed-in person, if any.
pub async fn current_user() -> Result<Option<User>, AppError> {
    let session = session().await?;
    let Some(user_id) = session
        .get::<i64>(keys::USER_ID)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let user = state()?.store.user(user_id).await?;
    if user.is_none() {
        // The account is gone: forget it rather than fail every request.
        session.flush().await.map_err(session_error)?;
    }
    Ok(user)
}

pub async fn require_user() -> Result<User, AppError> {
    current_user().await?.ok_or(AppError::Unauthenticated)
}

/// The authorisation rule, in one place: a person outside the team gets `NotFound` (so
/// that team handles cannot be probed), a member whose role is below `needed` gets
/// `Forbidden` naming what they tried and who can do it.
pub async fn authorize(
    store: &Store,
    user_id: i64,
    team: &str,
    needed: Role,
    action: &str,
) -> Result<TeamAccess, AppError> {
    let access = store.team_access(user_id, team).await?;
    check_role(access, needed, action)
}

/// [`authorize`] for a team known by id (e.g. the team of an operation looked up by id).
pub async fn authorize_team_id(
    store: &Store,
    user_id: i64,
    team_id: i64,
    needed: Role,
    action: &str,
) -> Result<TeamAccess, AppError> {
    let access = store.team_access_by_id(user_id, team_id).await?;
    check_role(access, needed, action)
}

fn check_role(
    access: Option<TeamAccess>,
    needed: Role,
    action: &str,
) -> Result<TeamAccess, AppError> {
    let access = access.ok_or(AppError::NotFound)?;
    if !access.role.0.allows(needed) {
        return Err(AppError::Forbidden {
            message: format!(
                "Your role in this team ({}) cannot {action}; ask an owner.",
                access.role.0
            ),
        });
    }
    Ok(access)
}

/// The signed-in person and their standing in `team`, checked against `needed`.
pub async fn require_role(
    team: &str,
    needed: Role,
    action: &str,
) -> Result<(User, TeamAccess), AppError> {
    let user = require_user().await?;
    let access = authorize(&state()?.store, user.id, team, needed, action).await?;
    Ok((user, access))
}

/// Starts a signed-in session for `user_id`: a new session id (so an id planted before
/// sign-in is worthless afterwards) and a new CSRF token.
pub async fn sign_in_session(user_id: i64) -> Result<(), AppError> {
    let session = session().await?;
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(keys::USER_ID, user_id)
        .await
        .map_err(session_error)?;
    session
        .insert(keys::CSRF_TOKEN, store::random_token(32))
        .await
        .map_err(session_error)?;
    Ok(())
}

pub async fn set_flash(message: &crate::model::Flash) -> Result<(), AppError> {
    session()
        .await?
        .insert(keys::FLASH, message)
        .await
        .map_err(session_error)
}

/// Takes the one-time message, if any: it is shown once and then gone.
pub async fn take_flash() -> Result<Option<crate::model::Flash>, AppError> {
    session()
        .await?
        .remove(keys::FLASH)
        .await
        .map_err(session_error)
}

/// The client's address, for throttling sign-in per IP.
pub fn client_ip() -> String {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// True when the request is a plain HTML form post (no JavaScript): the server function's
/// answer becomes a redirect back to the page rather than data for the page's script.
pub fn is_plain_form_post() -> bool {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|accept| accept.contains("text/html"))
        })
        .unwrap_or(false)
}

/// Sends a plain form post on to `path`. With JavaScript the page itself reloads from the
/// right place (see `reload_on_success`), so no redirect is sent.
pub fn redirect_plain_form_post(path: &str) {
    if is_plain_form_post() {
        leptos_axum::redirect(path);
    }
}

/// Hands a once-only message to whoever posted the form. A browser running Berth's
/// JavaScript gets it in the response; a plain HTML form post is redirected back to the page,
/// so the message waits in the session until that page shows (and removes) it.
pub async fn flash_for_form_post(
    flash: crate::model::Flash,
) -> Result<Option<crate::model::Flash>, AppError> {
    if is_plain_form_post() {
        set_flash(&flash).await?;
        Ok(None)
    } else {
        Ok(Some(flash))
    }
}
