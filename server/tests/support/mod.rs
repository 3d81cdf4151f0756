//! A Berth server for HTTP tests: a fresh SQLite database in a temp dir, the real router, and
//! requests sent through it with `tower::ServiceExt::oneshot`, plus a small "browser" that
//! keeps the session cookie and reads the CSRF token from pages like a person's browser does.

#![allow(dead_code)]

use app::ssr::ServerState;
use axum::{
    body::Body,
    http::{header, Request, Response, StatusCode},
    Router,
};
use domain::{Email, NewPassword, Role, TeamHandle, TeamName};
use http_body_util::BodyExt;
use leptos::server_fn::ServerFn;
use server::AppState;
use std::sync::{Mutex, OnceLock};
use store::{SignInLimits, Store};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub router: Router,
    pub dir: std::path::PathBuf,
    pub store: Store,
    pub server: ServerState,
    worker: tokio::task::JoinHandle<()>,
    /// Team handle → (team id, first owner's user id), for the helpers below.
    teams: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    _dir: tempfile::TempDir,
}

/// The local engine in the test's temp dir, with health checks short enough for tests.
pub async fn local_engine(
    dir: &std::path::Path,
    insecure_registries: Vec<domain::RegistryHost>,
    buildah: &str,
) -> std::sync::Arc<dyn platform::engine::Platform> {
    let mut settings = platform::local::LocalSettings::new(dir.join("engine"));
    settings.buildah = buildah.into();
    settings.insecure_registries = insecure_registries;
    settings.health_timeout = std::time::Duration::from_secs(20);
    std::sync::Arc::new(platform::local::LocalEngine::new(settings).await.unwrap())
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_registries(Vec::new()).await
    }

    /// A server that reaches `insecure_registries` over plain HTTP (test registries).
    pub async fn spawn_with_registries(insecure_registries: Vec<domain::RegistryHost>) -> Self {
        Self::spawn_on(None, insecure_registries).await
    }

    /// A server on the database at `database_url` (default: a SQLite file in a temp dir).
    pub async fn spawn_on(
        database_url: Option<&str>,
        insecure_registries: Vec<domain::RegistryHost>,
    ) -> Self {
        Self::spawn_with_buildah(database_url, insecure_registries, "buildah").await
    }

    /// A server whose local engine runs `buildah` (a missing one makes deploys unavailable).
    pub async fn spawn_with_buildah(
        database_url: Option<&str>,
        insecure_registries: Vec<domain::RegistryHost>,
        buildah: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = database_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("berth.db").display()));
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let leptos_options = leptos::config::LeptosOptions::builder()
            .output_name("berth")
            .site_root(dir.path().to_string_lossy().to_string())
            .build();
        let state = AppState {
            leptos_options,
            server: ServerState {
                store: store.clone(),
                sign_in_limits: SignInLimits::default(),
                public_url: "http://berth.test".into(),
                keys: std::sync::Arc::new(vault::SharedKeyring::new(
                    vault::Keyring::new(vec![vault::MasterKey::generate()]).unwrap(),
                    None,
                )),
                registry: platform::registry::RegistryClient::new(
                    insecure_registries.clone(),
                    std::time::Duration::from_secs(3),
                ),
                platform: local_engine(dir.path(), insecure_registries, buildah).await,
                operations_queued: std::sync::Arc::new(tokio::sync::Notify::new()),
                git_dir: dir.path().join("git"),
            },
        };
        let server = state.server.clone();
        let worker = server::worker::spawn(
            server.clone(),
            server::worker::WorkerSettings {
                concurrency: 4,
                lease: std::time::Duration::from_secs(5),
                poll: std::time::Duration::from_millis(300),
            },
        );
        let router = server::router::build(state, false);
        Self {
            router,
            store,
            server,
            worker,
            teams: Default::default(),
            dir: dir.path().to_owned(),
            _dir: dir,
        }
    }

    /// Stops the worker and every release this app's engine started.
    pub async fn stop(&self) {
        self.worker.abort();
        self.server.platform.shutdown().await;
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response: Response<Body> = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A user with a password, owning a new team `team`.
    pub async fn owner(&self, email: &str, team: &str) -> i64 {
        let hash = store::passwords::hash(&NewPassword::parse(PASSWORD).unwrap()).unwrap();
        let (user, team_id) = self
            .store
            .create_account(store::NewAccount {
                email: &Email::parse(email).unwrap(),
                password_hash: &hash,
                team_handle: &TeamHandle::parse(team).unwrap(),
                team_name: &TeamName::parse(team).unwrap(),
            })
            .await
            .unwrap();
        self.teams
            .lock()
            .unwrap()
            .insert(team.to_owned(), (team_id, user.id));
        user.id
    }

    /// A user with a password who is a `role` member of `team`.
    pub async fn member(&self, email: &str, team: &str, role: Role) -> i64 {
        let (team_id, owner) = self.teams.lock().unwrap()[team];
        let added = self
            .store
            .add_member(team_id, &Email::parse(email).unwrap(), role, owner)
            .await
            .unwrap();
        let id = match added {
            store::AddedMember::Invited { user_id, .. }
            | store::AddedMember::Existing { user_id } => user_id,
        };
        let hash = store::passwords::hash(&NewPassword::parse(PASSWORD).unwrap()).unwrap();
        self.store.set_password(id, &hash).await.unwrap();
        id
    }

    pub async fn token_for(&self, user_id: i64) -> String {
        self.store
            .create_api_token(user_id, &domain::ApiTokenName::parse("tests").unwrap())
            .await
            .unwrap()
            .secret
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookie: None,
        }
    }

    /// A browser already signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Browser<'_> {
        let mut browser = self.browser();
        let response = browser
            .call::<app::serverfns::session::SignIn>(&[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "sign-in failed: {}",
            response.body
        );
        browser
    }

    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }
}

/// Keeps a session cookie across requests, as a browser does.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookie: Option<String>,
}

impl Browser<'_> {
    fn remember_cookie(&mut self, response: &TestResponse) {
        if let Some(set) = response
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
    }

    /// `GET path` as a browser would (accepting HTML).
    pub async fn get(&mut self, path: &str) -> TestResponse {
        let mut request = Request::get(path).header(header::ACCEPT, "text/html");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = self.app.send(request.body(Body::empty()).unwrap()).await;
        self.remember_cookie(&response);
        response
    }

    /// The CSRF token the page at `path` puts in its forms.
    pub async fn csrf_token(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        csrf_from(&page.body).unwrap_or_else(|| panic!("no csrf_token on {path}: {}", page.body))
    }

    /// Posts a form to a server function. `accept_html` = a plain form post (no JavaScript).
    pub async fn post_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        accept_html: bool,
        referer: Option<&str>,
    ) -> TestResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                header::ACCEPT,
                if accept_html {
                    "text/html"
                } else {
                    "application/json"
                },
            );
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        let response = self.app.send(request.body(Body::from(body)).unwrap()).await;
        self.remember_cookie(&response);
        response
    }

    /// Calls a read-only server function (a GET) with `query` as its arguments.
    pub async fn fetch<F: ServerFn>(&mut self, query: &[(&str, &str)]) -> TestResponse {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let mut request =
            Request::get(format!("{}?{query}", F::PATH)).header(header::ACCEPT, "application/json");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = self.app.send(request.body(Body::empty()).unwrap()).await;
        self.remember_cookie(&response);
        response
    }

    /// The session's CSRF token, from a page that has forms for this person (signed in or not).
    pub async fn any_csrf_token(&mut self) -> String {
        for page in ["/settings/tokens", "/signin"] {
            if let Some(token) = csrf_from(&self.get(page).await.body) {
                return token;
            }
        }
        panic!("no page with a form");
    }

    /// Calls server function `F` as a page would with JavaScript: with the session's CSRF
    /// token and the given fields.
    pub async fn call<F: ServerFn>(&mut self, fields: &[(&str, &str)]) -> TestResponse {
        let token = self.any_csrf_token().await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(F::PATH, &all, false, None).await
    }
}

pub fn csrf_from(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The error kind a server function answered with (`{"kind": ...}`).
pub fn error_kind(response: &TestResponse) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
}

/// Everything the server logs in this test binary, for the leak scan.
pub fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Capture;
        impl std::io::Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                captured_logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| Capture)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// Debian's `pg_dump` wrapper, or the newest versioned binary.
pub fn pg_dump() -> String {
    let mut candidates: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.flatten()
                .map(|d| d.path().join("bin/pg_dump"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .pop()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "pg_dump".into())
}
