//! A stand-in for Aptible, which tests cannot reach: its auth server and its API, each on a
//! free port of 127.0.0.1, speaking the wire shapes documented in `platform::aptible` (HAL
//! resources, `{"code", "error", "message"}` errors), and recording every request so that
//! tests can assert exactly what Berth sent.
//!
//! ```no_run
//! # async fn example() {
//! use testaptible::TestAptible;
//! let aptible = TestAptible::builder()
//!     .user("owner@example.com", "correct horse")
//!     .otp("123456")
//!     .app("production", "web", 42, Some("git@127.0.0.1:production/web.git"))
//!     .start()
//!     .await;
//! let token = aptible.token_for("owner@example.com");
//! // Point the client at aptible.api_url() and aptible.auth_url(), then:
//! let sent = aptible.requests();
//! # }
//! ```
//!
//! What it does, route by route:
//! - auth server: `POST /tokens` (the password grant, as JSON or a form; a user with a
//!   one-time code gets `otp_token_required` with `exception_context.failed_login_attempt_id`
//!   until the right `otp_token` comes), `GET /current_token`.
//! - API: `GET /find/app?handle=&environment=` (404 `not_found`, 400
//!   `multiple_resources_found`; or a bare 404, like a server without the route, after
//!   [`Builder::without_find_app`]), `GET /apps` paged by [`Builder::page_size`] (2) with
//!   absolute `_links.next`, `GET /accounts/{id}`, `GET /apps/{id}`, `POST
//!   /apps/{id}/operations`, `GET` and `PUT /operations/{id}`, `GET
//!   /operations/{id}/logs` (200, the log's URL as plain text), and the log itself at that
//!   URL, without a token, like an S3 presigned URL.
//! - An operation answers `queued` when created, `running` on its first two polls and then
//!   `succeeded` — or `failed` when its request had the `env` key
//!   [`FAIL_THIS_OPERATION`], an `APTIBLE_DOCKER_IMAGE` containing `fail`, or was
//!   cancelled (`PUT {"cancelled": true}`) before it ended.
//! - The log repeats the operation's `env` as `KEY=value` lines, secrets included, so that
//!   tests can prove Berth redacts what it stores.
//! - Every route wants a live bearer token; an unknown one gets 401 `invalid_token`, an
//!   expired one ([`Builder::expired_token`], [`TestAptible::expire_token`]) 401
//!   `expired_token`.
//! - [`TestAptible::fail_next`] makes the next requests answer an error status, to test
//!   retries.
//!
//! Where the sources leave a detail open (the status of `otp_token_required`, of
//! `multiple_resources_found`, the form of `expires_at`), the stand-in follows Aptible's
//! dashboard's mocks, and `platform::aptible` accepts the other forms too.

mod api;
mod auth;
mod clock;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};
use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};
use tokio::task::JoinHandle;

/// An `env` key that makes the operation fail.
pub const FAIL_THIS_OPERATION: &str = "FAIL_THIS_OPERATION";

/// Which of the stand-in's servers a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    Auth,
    Api,
    /// Where logs are downloaded from, when [`Builder::logs_on_another_host`] put them
    /// there (otherwise they are on the API's port).
    LogStorage,
}

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub server: Server,
    pub method: String,
    /// The path with its query, as sent: `/find/app?handle=web&environment=prod`.
    pub path: String,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for bytes that are not UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The first value of a header (`name` in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON (`Value::Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// Whether any header or the body contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
            || self.path.contains(text)
            || self
                .headers
                .iter()
                .any(|(name, value)| name.contains(text) || value.contains(text))
    }
}

/// The stand-in's configuration; see [`TestAptible::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    users: Vec<User>,
    apps: Vec<AppConfig>,
    expired_tokens: Vec<String>,
    find_app_route: bool,
    page_size: usize,
    logs_on_another_host: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub email: String,
    pub password: String,
    pub otp: Option<String>,
}

#[derive(Debug, Clone)]
struct AppConfig {
    environment: String,
    handle: String,
    id: i64,
    git_repo: Option<String>,
}

impl Builder {
    /// A user who can sign in with this email and password.
    pub fn user(mut self, email: &str, password: &str) -> Self {
        self.users.push(User {
            email: email.to_owned(),
            password: password.to_owned(),
            otp: None,
        });
        self
    }

    /// The user added last must also give this one-time code.
    pub fn otp(mut self, code: &str) -> Self {
        let user = self
            .users
            .last_mut()
            .expect("testaptible: .otp(..) follows the .user(..) it applies to");
        user.otp = Some(code.to_owned());
        self
    }

    /// An app with this id in the environment with this handle (environments are created
    /// as apps name them). Two apps may share a handle in one environment, which Aptible
    /// never allows, to make `/find/app` ambiguous.
    pub fn app(mut self, environment: &str, handle: &str, id: i64, git_repo: Option<&str>) -> Self {
        self.apps.push(AppConfig {
            environment: environment.to_owned(),
            handle: handle.to_owned(),
            id,
            git_repo: git_repo.map(str::to_owned),
        });
        self
    }

    /// A token the servers know but answer `expired_token` to.
    pub fn expired_token(mut self, token: &str) -> Self {
        self.expired_tokens.push(token.to_owned());
        self
    }

    /// `/find/app` answers a bare 404, as a server without the route would.
    pub fn without_find_app(mut self) -> Self {
        self.find_app_route = false;
        self
    }

    /// Apps per page of `GET /apps`.
    pub fn page_size(mut self, apps: usize) -> Self {
        self.page_size = apps.max(1);
        self
    }

    /// Log downloads come from a third server (another port), as Aptible's come from S3.
    pub fn logs_on_another_host(mut self) -> Self {
        self.logs_on_another_host = true;
        self
    }

    pub async fn start(self) -> TestAptible {
        TestAptible::start(self).await
    }
}

/// A running stand-in. Dropping it stops its servers.
pub struct TestAptible {
    api_url: String,
    auth_url: String,
    shared: Arc<Shared>,
    servers: Vec<JoinHandle<()>>,
}

/// What every route reads and changes.
pub(crate) struct Shared {
    pub api_url: String,
    pub auth_url: String,
    pub logs_url: String,
    pub users: Vec<User>,
    pub apps: Vec<App>,
    /// `(id, handle)`.
    pub environments: Vec<(i64, String)>,
    pub page_size: usize,
    pub find_app_route: bool,
    pub state: Mutex<MutableState>,
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub id: i64,
    pub handle: String,
    pub environment_id: i64,
    pub git_repo: Option<String>,
}

#[derive(Default)]
pub(crate) struct MutableState {
    pub requests: Vec<RecordedRequest>,
    pub tokens: HashMap<String, Token>,
    pub next_token: u64,
    pub login_attempts: Vec<String>,
    pub operations: BTreeMap<i64, api::Operation>,
    pub next_operation: i64,
    /// `(requests left, status)`.
    pub failing: Option<(usize, u16)>,
    pub log_padding: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub email: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub expired: bool,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, MutableState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn environment_handle(&self, id: i64) -> Option<&str> {
        self.environments
            .iter()
            .find(|(environment, _)| *environment == id)
            .map(|(_, handle)| handle.as_str())
    }
}

impl TestAptible {
    /// No users and no apps; add them with the builder's methods.
    pub fn builder() -> Builder {
        Builder {
            users: Vec::new(),
            apps: Vec::new(),
            expired_tokens: Vec::new(),
            find_app_route: true,
            page_size: 2,
            logs_on_another_host: false,
        }
    }

    async fn start(config: Builder) -> TestAptible {
        let bind = || async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("testaptible: bind a loopback port")
        };
        let api = bind().await;
        let auth = bind().await;
        let logs = if config.logs_on_another_host {
            Some(bind().await)
        } else {
            None
        };
        let url = |address: SocketAddr| format!("http://{address}");
        let api_url = url(api.local_addr().expect("the API's address"));
        let auth_url = url(auth.local_addr().expect("the auth server's address"));
        let logs_url = match &logs {
            Some(listener) => url(listener.local_addr().expect("the log server's address")),
            None => api_url.clone(),
        };

        let mut environments: Vec<(i64, String)> = Vec::new();
        let mut apps = Vec::new();
        for app in &config.apps {
            let environment_id = match environments.iter().find(|(_, h)| *h == app.environment) {
                Some((id, _)) => *id,
                None => {
                    let id = environments.len() as i64 + 1;
                    environments.push((id, app.environment.clone()));
                    id
                }
            };
            apps.push(App {
                id: app.id,
                handle: app.handle.clone(),
                environment_id,
                git_repo: app.git_repo.clone(),
            });
        }
        apps.sort_by_key(|app| app.id);

        let mut state = MutableState {
            next_operation: 1001,
            ..MutableState::default()
        };
        let now = clock::now_seconds();
        for token in config.expired_tokens {
            state.tokens.insert(
                token,
                Token {
                    email: String::new(),
                    scope: "manage".into(),
                    created_at: now - 7200,
                    expires_at: now - 3600,
                    expired: true,
                },
            );
        }
        let shared = Arc::new(Shared {
            api_url: api_url.clone(),
            auth_url: auth_url.clone(),
            logs_url,
            users: config.users,
            apps,
            environments,
            page_size: config.page_size,
            find_app_route: config.find_app_route,
            state: Mutex::new(state),
        });

        let mut servers = Vec::new();
        let mut listeners = vec![(api, Server::Api), (auth, Server::Auth)];
        if let Some(logs) = logs {
            listeners.push((logs, Server::LogStorage));
        }
        for (listener, server) in listeners {
            let router = Router::new()
                .fallback(handle)
                .with_state((shared.clone(), server));
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        TestAptible {
            api_url,
            auth_url,
            shared,
            servers,
        }
    }

    /// `http://127.0.0.1:PORT`, for `BERTH_APTIBLE_API_URL`.
    pub fn api_url(&self) -> String {
        self.api_url.clone()
    }

    /// `http://127.0.0.1:PORT` (another port), for `BERTH_APTIBLE_AUTH_URL`.
    pub fn auth_url(&self) -> String {
        self.auth_url.clone()
    }

    /// A valid `manage` token for `email` (valid for a week), as if they had signed in.
    pub fn token_for(&self, email: &str) -> String {
        auth::mint(&self.shared, email, 7 * 24 * 3600)
    }

    /// From now on the servers answer `expired_token` to `token`.
    pub fn expire_token(&self, token: &str) {
        if let Some(record) = self.shared.lock().tokens.get_mut(token) {
            record.expired = true;
        }
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The next `count` requests (to any of the servers) answer `status` with an Aptible
    /// error body, before anything else happens.
    pub fn fail_next(&self, count: usize, status: u16) {
        self.shared.lock().failing = (count > 0).then_some((count, status));
    }

    /// Puts this many bytes of filler lines at the start of every log (to test how much
    /// of a long log a client keeps).
    pub fn set_log_padding(&self, bytes: usize) {
        self.shared.lock().log_padding = bytes;
    }

    /// The ids of the operations created so far.
    pub fn operation_ids(&self) -> Vec<i64> {
        self.shared.lock().operations.keys().copied().collect()
    }
}

impl Drop for TestAptible {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Every request comes here: it is recorded, then routed.
async fn handle(
    State((shared, server)): State<(Arc<Shared>, Server)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        server,
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|path| path.as_str().to_owned())
            .unwrap_or_else(|| uri.path().to_owned()),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let injected = {
        let mut state = shared.lock();
        state.requests.push(request.clone());
        match state.failing.take() {
            Some((left, status)) => {
                if left > 1 {
                    state.failing = Some((left - 1, status));
                }
                Some(status)
            }
            None => None,
        }
    };
    if let Some(status) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return error(
            status,
            "service_unavailable",
            "The stand-in was told to fail this request.",
        );
    }
    match server {
        Server::Auth => auth::route(&shared, &request),
        Server::Api => api::route(&shared, &request),
        Server::LogStorage => api::download_log(&shared, &request),
    }
}

/// Aptible's error body.
pub(crate) fn error(status: StatusCode, id: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": status.as_u16(), "error": id, "message": message})),
    )
        .into_response()
}

/// What a server without the route answers: no Aptible error body.
pub(crate) fn no_route() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

pub(crate) fn hal(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/hal+json; charset=utf-8",
        )],
        body.to_string(),
    )
        .into_response()
}

/// An error answer not yet built: small enough to travel in a `Result`.
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            id,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.id, &self.message)
    }
}

/// `Bearer TOKEN` → the live token's record, or the 401 Aptible answers.
pub(crate) fn authenticate(shared: &Shared, request: &RecordedRequest) -> Result<Token, Refusal> {
    let presented = request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if presented.is_empty() {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Missing or malformed Authorization header",
        ));
    }
    let state = shared.lock();
    match state.tokens.get(presented) {
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid Token",
        )),
        Some(token) if token.expired || token.expires_at <= clock::now_seconds() => Err(
            Refusal::new(StatusCode::UNAUTHORIZED, "expired_token", "Expired Token"),
        ),
        Some(token) => Ok(token.clone()),
    }
}
