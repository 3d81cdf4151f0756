//! Server-only plumbing for server functions: the [`Berth`] they work with (from context),
//! the browser session, the signed-in person, and how a plain HTML form post is answered.
//! Everything a server function decides is decided in the `service` crate.

use service::{accounts::SignedIn, Berth};
use tower_sessions::Session;
use views::{AppError, Flash};

/// Keys of the values Berth keeps in a browser session.
pub mod keys {
    pub const USER_ID: &str = "user_id";
    pub const CSRF_TOKEN: &str = "csrf_token";
    /// A one-time message for the next page (e.g. a new token, shown once).
    pub const FLASH: &str = "flash";
    /// A plain form post's refusal, for the page it returns to ([`super::FormFlash`]).
    pub const FORM_FLASH: &str = "form_flash";
    /// The day (since the Unix epoch) the signed-in session's expiry last started again
    /// ([`super::keep_signed_in`]).
    pub const RENEWED_ON: &str = "renewed_on";
}

/// A plain HTML form post (no JavaScript) that a server function refused, carried to the
/// page the browser is sent back to through the session (post/redirect/get), not in the
/// address: the error, shown once, next to its field, and what was typed, secrets left out.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FormFlash {
    /// The path of the page the browser goes back to; the flash is for that page only.
    pub page: String,
    /// The server function's path, which its form's action is matched by.
    pub server_fn: String,
    /// The error as the server function encodes it.
    pub error: String,
    /// The fields to fill in again ([`ECHOED_FIELDS`] only).
    pub fields: Vec<(String, String)>,
    /// When the post was refused (Unix ms): an old flash is dropped rather than shown.
    pub at: i64,
}

/// The form fields that are written back into a form after a refusal. Only these: a field
/// not named here (a password, a token, a secret, configuration values) is never kept, so a
/// new secret field cannot end up in the session by being forgotten here.
pub const ECHOED_FIELDS: &[&str] = &[
    "email",
    "name",
    "team_name",
    "team_handle",
    "handle",
    "method",
    "platform",
    "health_path",
    "git_url",
    "git_username",
    "dockerfile",
    "context",
    "aptible_environment",
    "aptible_app",
    "aptible_skip_verification",
    "registry",
    "username",
    "kind",
    "region",
    "access_key_id",
    "role_arn",
    "external_id",
    "note",
    "image",
    "git_ref",
    "credentials",
    "credential",
    "remember",
    "registry_username",
    "private_registry_host",
    "role",
    "expires_on",
];

/// Makes this request's form flash (put in the request by the server's middleware) the
/// error of the form it is about, and what was typed the value of that form's fields: the
/// page renders them as a browser running the form's script would have.
pub fn provide_form_flash() {
    let Some(flash) = leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<FormFlash>().cloned())
    else {
        return;
    };
    leptos::prelude::provide_context(leptos::server::ServerActionError::new(
        &flash.server_fn,
        &flash.error,
    ));
    leptos::prelude::provide_context(crate::components::form::FormEcho::new(flash.fields));
}

/// The use cases, as the server provides them in context.
pub fn berth() -> Result<Berth, AppError> {
    leptos::prelude::use_context::<Berth>().ok_or_else(|| {
        tracing::error!("Berth missing from context");
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

/// What one request has already read, so that the page frame and the page's own data do
/// not read it again: provided afresh for every request (the server's context closures).
#[derive(Clone, Default)]
pub struct RequestMemo {
    signed_in: std::sync::Arc<tokio::sync::OnceCell<Option<SignedIn>>>,
}

/// The signed-in person and their teams, if anyone is signed in (read once per request).
pub async fn signed_in() -> Result<Option<SignedIn>, AppError> {
    match leptos::prelude::use_context::<RequestMemo>() {
        Some(memo) => memo
            .signed_in
            .get_or_try_init(read_signed_in)
            .await
            .cloned(),
        None => read_signed_in().await,
    }
}

/// The signed-in person, if any (read once per request, with their teams: [`signed_in`]).
pub async fn current_user() -> Result<Option<service::User>, AppError> {
    Ok(signed_in().await?.map(|signed_in| signed_in.user))
}

async fn read_signed_in() -> Result<Option<SignedIn>, AppError> {
    let session = session().await?;
    let Some(user_id) = session
        .get::<i64>(keys::USER_ID)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let user = service::accounts::signed_in(&berth()?, user_id).await?;
    if user.is_none() {
        // The account is gone: forget it rather than fail every request.
        session.flush().await.map_err(session_error)?;
    } else {
        keep_signed_in(&session).await?;
    }
    Ok(user)
}

/// Today, in days since the Unix epoch.
fn today() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() / 86_400) as i64
}

/// A session expires after fourteen days without use, but the session layer only moves its
/// expiry (in the database and the cookie) when the session is written, and reading a page
/// writes nothing. So the first request of each day that finds someone signed in writes
/// the day into the session, and the fourteen days start again: one write a day per person
/// instead of one per page.
async fn keep_signed_in(session: &Session) -> Result<(), AppError> {
    let today = today();
    let renewed = session
        .get::<i64>(keys::RENEWED_ON)
        .await
        .map_err(session_error)?;
    if renewed != Some(today) {
        session
            .insert(keys::RENEWED_ON, today)
            .await
            .map_err(session_error)?;
    }
    Ok(())
}

/// The signed-in person's id; "sign in to continue" for anyone else.
pub async fn require_user() -> Result<i64, AppError> {
    current_user()
        .await?
        .map(|user| user.id)
        .ok_or(AppError::Unauthenticated)
}

/// The form token of a visitor who is not signed in. Such a visitor has no session in the
/// database: reading a page must not write a row (a crawler or a script asking for pages
/// without cookies would otherwise add one per request). Their token lives in a cookie of
/// its own instead, which the server's CSRF middleware reads, or draws afresh and sets, and
/// puts in the request for the page (`server::csrf`). Signing in starts a session with a
/// token of its own, which is the one checked from then on.
/// (No `Debug`: the token is not for logs.)
#[derive(Clone, Default)]
pub struct VisitorToken(std::sync::Arc<Visitor>);

#[derive(Default)]
struct Visitor {
    token: std::sync::OnceLock<String>,
    handed_out: std::sync::atomic::AtomicBool,
}

impl VisitorToken {
    /// The token the request's cookie holds; without one, a token is drawn when first asked
    /// for (most requests never are: assets, the API, signed-in pages).
    pub fn new(held: Option<String>) -> Self {
        let visitor = Visitor::default();
        if let Some(token) = held {
            let _ = visitor.token.set(token);
        }
        Self(std::sync::Arc::new(visitor))
    }

    /// The token, for the cookie that carries it.
    pub fn token(&self) -> &str {
        self.0.token.get_or_init(|| service::random_token(32))
    }

    /// The token, noting that a page or a server function handed it out (so the cookie
    /// that carries it must be set).
    fn hand_out(&self) -> &str {
        self.0
            .handed_out
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.token()
    }

    /// Whether this request handed the token out.
    pub fn handed_out(&self) -> bool {
        self.0.handed_out.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The CSRF token of this request, masked afresh for this page (`service::csrf`): the
/// session's when it has one (everyone signed in), else the visitor's ([`VisitorToken`],
/// which the server's CSRF middleware puts in every request).
pub async fn csrf_token() -> Result<String, AppError> {
    let session = session().await?;
    if let Some(token) = session
        .get::<String>(keys::CSRF_TOKEN)
        .await
        .map_err(session_error)?
    {
        return Ok(service::csrf::masked(&token));
    }
    let visitor = leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<VisitorToken>().cloned())
        .ok_or_else(|| {
            tracing::error!("the visitor's form token is missing from the request");
            AppError::Internal
        })?;
    Ok(service::csrf::masked(visitor.hand_out()))
}

/// Starts a signed-in session for `user_id`: a new session id (so an id planted before
/// sign-in is worthless afterwards) and a new CSRF token.
pub async fn sign_in_session(user_id: i64) -> Result<(), AppError> {
    // Whoever this request read as signed in before is not who is signed in now.
    leptos::prelude::provide_context(RequestMemo::default());
    let session = session().await?;
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(keys::USER_ID, user_id)
        .await
        .map_err(session_error)?;
    session
        .insert(keys::CSRF_TOKEN, service::random_token(32))
        .await
        .map_err(session_error)?;
    session
        .insert(keys::RENEWED_ON, today())
        .await
        .map_err(session_error)?;
    Ok(())
}

/// Ends the session (sign-out).
pub async fn end_session() -> Result<(), AppError> {
    leptos::prelude::provide_context(RequestMemo::default());
    session().await?.flush().await.map_err(session_error)
}

pub async fn set_flash(message: &Flash) -> Result<(), AppError> {
    session()
        .await?
        .insert(keys::FLASH, message)
        .await
        .map_err(session_error)
}

/// Takes the one-time message, if any: it is shown once and then gone. Without one, the
/// session is left as it was (a removal marks it changed, and a changed session is written
/// back to the store at the end of the request).
pub async fn take_flash() -> Result<Option<Flash>, AppError> {
    let session = session().await?;
    let flash = session
        .get::<Flash>(keys::FLASH)
        .await
        .map_err(session_error)?;
    if flash.is_some() {
        session
            .remove_value(keys::FLASH)
            .await
            .map_err(session_error)?;
    }
    Ok(flash)
}

/// The client's address, for throttling sign-in and sign-up per address: the peer's, or
/// what a trusted proxy (`BERTH_TRUSTED_PROXIES`) says in `X-Forwarded-For`.
pub fn client_ip() -> String {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() else {
        return "unknown".to_owned();
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let proxies = berth()
        .map(|berth| berth.accounts.trusted_proxies.clone())
        .unwrap_or_default();
    proxies
        .client_ip(peer, forwarded)
        .map(|ip| ip.to_string())
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

/// Where a plain form post goes after an operation is queued: the operation's page.
pub fn redirect_to_operation(team: &str, id: i64) {
    redirect_plain_form_post(&format!("/teams/{team}/operations/{id}"));
}

/// Hands a once-only message to whoever posted the form. A browser running Berth's
/// JavaScript gets it in the response; a plain HTML form post is redirected back to the page,
/// so the message waits in the session until that page shows (and removes) it.
pub async fn flash_for_form_post(flash: Flash) -> Result<Option<Flash>, AppError> {
    if is_plain_form_post() {
        set_flash(&flash).await?;
        Ok(None)
    } else {
        Ok(Some(flash))
    }
}
