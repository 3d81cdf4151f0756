//! A Berth server for HTTP tests, built the way each test needs it:
//!
//! ```ignore
//! let app = TestApp::sqlite().with_team().with_registry(registry).start().await;
//! let created = app.call("POST", "/api/v1/teams/acme/apps", &app.deployer(), Some(body)).await;
//! ```
//!
//! Each app gets a fresh database (a SQLite file in a temp dir, or a PostgreSQL database of
//! its own), the real router driven with `tower::ServiceExt::oneshot`, the real worker and
//! local engine, and a small "browser" that keeps the session cookie and reads the CSRF
//! token from pages like a person's browser does. Every API answer is kept for the leak
//! scans.

#![allow(dead_code)]

pub mod auth_recorder;
pub mod binary;
pub mod raw_buildah;
pub mod ssh_host;

use axum::{
    body::Body,
    http::{header, Request, Response, StatusCode},
    Router,
};
use domain::{Email, NewPassword, Role, TeamHandle, TeamName};
use http_body_util::BodyExt;
use leptos::server_fn::ServerFn;
use serde_json::Value;
use server::AppState;
use service::{worker::WorkerSettings, Berth, BerthParts, Secrets};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
    time::Duration,
};
use store::{SignInLimits, Store};
use testdb::TestDatabase;
use testregistry::TestRegistry;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple";

/// The people of [`TestAppBuilder::with_team`]: team `acme` with one member of each role,
/// and an owner of team `other` who must see nothing of `acme`.
pub const OWNER: &str = "owner@example.com";
pub const DEPLOYER: &str = "deployer@example.com";
pub const VIEWER: &str = "viewer@example.com";
pub const OUTSIDER: &str = "outsider@example.com";

/// How a [`TestApp`] is put together; [`TestAppBuilder::start`] starts it.
pub struct TestAppBuilder {
    database: Database,
    registries: Vec<domain::RegistryHost>,
    registry: Option<TestRegistry>,
    buildah: String,
    team: bool,
    accounts: service::AccountSettings,
    /// As `BERTH_EGRESS_ALLOW` would give them.
    egress_allow: Vec<platform::egress::AllowEntry>,
    /// As `BERTH_GIT_LOCAL_ROOTS` would give them (none unless a test lists some).
    git_local_roots: Vec<PathBuf>,
    /// As `BERTH_APTIBLE_API_URL` and `BERTH_APTIBLE_AUTH_URL` would give them.
    aptible: Option<(String, String)>,
    /// As `BERTH_ECR_ENDPOINT_URL`, `BERTH_STS_ENDPOINT_URL` and `BERTH_ECR_REGISTRY_HOSTS`
    /// would give them, and the clock token expiry is judged by.
    ecr: platform::ecr::EcrSettings,
    ecr_clock: Option<platform::ecr::Clock>,
    /// As `BERTH_METRICS_ALLOW` would give them.
    metrics_allow: Vec<service::client_ip::Cidr>,
    /// As `BERTH_KEEP_RELEASES` would give it.
    keep_releases: service::disk::KeepReleases,
    /// As `BERTH_SITE_ROOT` would give it (default: the app's own directory, with no
    /// bundle in it).
    site_root: Option<PathBuf>,
}

enum Database {
    /// A SQLite file in the app's temp dir.
    Sqlite,
    /// A database of its own on the test PostgreSQL server (dropped with the app).
    Postgres,
}

pub struct TestApp {
    pub router: Router,
    /// The app's data dir: its SQLite file, its engine's storage and logs, its git mirrors.
    pub dir: PathBuf,
    pub store: Store,
    pub berth: Berth,
    /// The registry the app was built with, if any.
    pub registry: Option<TestRegistry>,
    worker: tokio::task::JoinHandle<()>,
    /// Set to stop the worker as a stopping Berth does (drain, then hand back).
    stop_worker: tokio::sync::watch::Sender<bool>,
    /// Team handle → (team id, first owner's user id), for the helpers below.
    teams: Mutex<HashMap<String, (i64, i64)>>,
    /// E-mail → API token, for the people of `with_team` (and any made by `token_for`).
    tokens: Mutex<HashMap<String, String>>,
    /// Every API answer, for the leak scans.
    responses: Mutex<Vec<String>>,
    database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it is another.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        self
    }
}

impl TestApp {
    /// An app on a fresh SQLite file.
    pub fn sqlite() -> TestAppBuilder {
        TestAppBuilder::new(Database::Sqlite)
    }

    /// An app on a fresh PostgreSQL database (`BERTH_TEST_DATABASE_URL`, or a throwaway
    /// cluster).
    pub fn postgres() -> TestAppBuilder {
        TestAppBuilder::new(Database::Postgres)
    }
}

impl TestAppBuilder {
    fn new(database: Database) -> Self {
        Self {
            database,
            registries: Vec::new(),
            registry: None,
            buildah: "buildah".into(),
            team: false,
            accounts: service::AccountSettings::default(),
            egress_allow: Vec::new(),
            git_local_roots: Vec::new(),
            aptible: None,
            ecr: Default::default(),
            ecr_clock: None,
            metrics_allow: Vec::new(),
            keep_releases: service::disk::KeepReleases::default(),
            site_root: None,
        }
    }

    /// `BERTH_SIGNUP` (the default is `closed`, as in production).
    pub fn with_sign_up(mut self, policy: service::SignUpPolicy) -> Self {
        self.accounts.sign_up = policy;
        self
    }

    /// Throttles of other rates than the production defaults.
    pub fn with_throttles(mut self, throttles: service::throttle::Throttles) -> Self {
        self.accounts.throttles = throttles;
        self
    }

    /// `BERTH_TRUSTED_PROXIES`.
    pub fn with_trusted_proxies(mut self, list: &str) -> Self {
        self.accounts.trusted_proxies = service::client_ip::TrustedProxies::parse(list).unwrap();
        self
    }

    /// Aptible's API and auth server are at these URLs (a stand-in's).
    pub fn with_aptible(mut self, api_url: &str, auth_url: &str) -> Self {
        self.aptible = Some((api_url.to_owned(), auth_url.to_owned()));
        self
    }

    /// ECR and STS are this endpoint (moto), and `ecr` credentials may name these registry
    /// hosts (`BERTH_ECR_REGISTRY_HOSTS`).
    pub fn with_ecr(mut self, endpoint: &str, registry_hosts: &[&domain::RegistryHost]) -> Self {
        self.ecr.ecr_endpoint = Some(endpoint.to_owned());
        self.ecr.sts_endpoint = Some(endpoint.to_owned());
        self.ecr.extra_registry_hosts = registry_hosts.iter().map(|h| (*h).clone()).collect();
        self
    }

    /// `/metrics` answers these address blocks (`BERTH_METRICS_ALLOW`).
    pub fn with_metrics_allow(mut self, list: &str) -> Self {
        self.metrics_allow = service::client_ip::TrustedProxies::parse(list).unwrap().0;
        self
    }

    /// Serves the browser bundle `cargo run -p xtask -- site` built (the test command builds
    /// it before the server's tests).
    pub fn with_built_site(mut self) -> Self {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site");
        assert!(
            site.join("assets.json").exists(),
            "{} has no bundle: build it first (cargo run -p xtask -- site)",
            site.display()
        );
        self.site_root = Some(site);
        self
    }

    /// Each app keeps the images of its last `n` releases (`BERTH_KEEP_RELEASES`).
    pub fn with_keep_releases(mut self, n: u32) -> Self {
        self.keep_releases = service::disk::KeepReleases::parse(Some(&n.to_string())).unwrap();
        self
    }

    /// Token expiry is judged by this clock (moto's tokens expire in 2015).
    pub fn with_ecr_clock(mut self, clock: platform::ecr::Clock) -> Self {
        self.ecr_clock = Some(clock);
        self
    }

    /// Mail goes through this SMTP server (`BERTH_SMTP_URL`, `BERTH_SMTP_FROM`).
    pub fn with_smtp(mut self, url: &str) -> Self {
        self.accounts.mailer =
            Some(service::mail::Mailer::new(url, "Berth <berth@berth.test>").unwrap());
        self
    }

    /// Team `acme` with an owner, a deployer and a viewer, team `other` with its owner, and
    /// an API token for each ([`TestApp::owner`], [`TestApp::deployer`], …).
    pub fn with_team(mut self) -> Self {
        self.team = true;
        self
    }

    /// A registry the app reaches over plain HTTP, kept on the app as `registry`.
    pub fn with_registry(mut self, registry: TestRegistry) -> Self {
        self.registries.push(registry.host.clone());
        // Its token service runs on another port of 127.0.0.1: allowed the way an
        // operator allows it, in BERTH_EGRESS_ALLOW.
        if let Some(realm) = registry.token_realm() {
            let url = reqwest::Url::parse(realm).unwrap();
            let authority = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
            self.egress_allow
                .push(platform::egress::AllowEntry::parse(&authority).unwrap());
        }
        self.registry = Some(registry);
        self
    }

    /// Another registry the app reaches over plain HTTP (the test keeps it).
    pub fn with_insecure_registry(mut self, host: domain::RegistryHost) -> Self {
        self.registries.push(host);
        self
    }

    /// Berth may connect to `authority` (`host:port`) as if the operator listed it in
    /// `BERTH_EGRESS_ALLOW` (e.g. a git host on 127.0.0.1).
    pub fn with_egress_allow(mut self, authority: &str) -> Self {
        self.egress_allow
            .push(platform::egress::AllowEntry::parse(authority).unwrap());
        self
    }

    /// Local repositories may be read under these directories (`BERTH_GIT_LOCAL_ROOTS`).
    pub fn with_git_local_roots(mut self, roots: Vec<PathBuf>) -> Self {
        self.git_local_roots = roots;
        self
    }

    /// The local engine runs this buildah (a missing one makes deploys unavailable).
    pub fn with_buildah(mut self, buildah: &str) -> Self {
        self.buildah = buildah.into();
        self
    }

    pub async fn start(self) -> TestApp {
        captured_logs();
        let dir = tempfile::tempdir().unwrap();
        let (url, database) = match self.database {
            Database::Sqlite => (
                format!("sqlite://{}", dir.path().join("berth.db").display()),
                None,
            ),
            Database::Postgres => {
                let database = TestDatabase::postgres().await;
                (database.url().to_owned(), Some(database))
            }
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let egress = platform::egress::Egress::new(self.egress_allow.clone())
            .with_git_local_roots(self.git_local_roots.clone());
        let leptos_options = leptos::config::LeptosOptions::builder()
            .output_name("berth")
            .site_root(
                self.site_root
                    .clone()
                    .unwrap_or_else(|| dir.path().to_owned())
                    .to_string_lossy()
                    .to_string(),
            )
            .build();
        let aptible = match &self.aptible {
            Some((api, auth)) => platform::aptible::AptibleClient::with_egress(
                api,
                auth,
                Duration::from_secs(5),
                egress.clone(),
            ),
            None => platform::aptible::AptibleClient::new(
                "https://api.aptible.com",
                "https://auth.aptible.com",
                Duration::from_secs(5),
            ),
        }
        .unwrap();
        let mut ecr_settings = self.ecr.clone();
        ecr_settings.timeout = Duration::from_secs(10);
        let mut ecr = platform::ecr::EcrClient::new(ecr_settings);
        if let Some(clock) = self.ecr_clock.clone() {
            ecr = ecr.with_clock(clock);
        }
        let berth = Berth::new(BerthParts {
            aptible,
            ecr,
            store: store.clone(),
            sign_in_limits: SignInLimits::default(),
            public_url: "http://berth.test".into(),
            secrets: Secrets::new(vault::SharedKeyring::new(
                vault::Keyring::new(vec![vault::MasterKey::generate()]).unwrap(),
                None,
            )),
            // Token services of test registries run on other ports of 127.0.0.1: allowed
            // the way an operator allows them, in BERTH_EGRESS_ALLOW.
            registry: platform::registry::RegistryClient::with_egress(
                self.registries.clone(),
                Duration::from_secs(3),
                egress.clone(),
            ),
            // Tests make their git repositories in the temporary directory.
            egress: egress.clone(),
            platform: local_engine(dir.path(), self.registries, &self.buildah).await,
            operations_queued: std::sync::Arc::new(tokio::sync::Notify::new()),
            live: service::live::OperationFeeds::new(store.clone()),
            git_dir: dir.path().join("git"),
            accounts: std::sync::Arc::new(self.accounts),
            disk: std::sync::Arc::new(service::disk::Disk::new(self.keep_releases)),
        });
        let (stop_worker, stopping) = tokio::sync::watch::channel(false);
        let worker = service::worker::spawn(
            berth.clone(),
            WorkerSettings {
                concurrency: 4,
                lease: Duration::from_secs(5),
                poll: Duration::from_millis(300),
                drain: Duration::from_secs(2),
            },
            stopping,
        );
        let router = server::router::build(
            AppState {
                metrics: server::metrics::Metrics::new(self.metrics_allow.clone()),
                leptos_options,
                berth: berth.clone(),
            },
            false,
        );
        let app = TestApp {
            router,
            store,
            berth,
            registry: self.registry,
            worker,
            stop_worker,
            teams: Default::default(),
            tokens: Default::default(),
            responses: Default::default(),
            dir: dir.path().to_owned(),
            database,
            _dir: dir,
        };
        if self.team {
            let owner = app.owner(OWNER, "acme").await;
            let deployer = app.member(DEPLOYER, "acme", Role::Deployer).await;
            let viewer = app.member(VIEWER, "acme", Role::Viewer).await;
            let outsider = app.owner(OUTSIDER, "other").await;
            for id in [owner, deployer, viewer, outsider] {
                app.token_for(id).await;
            }
        }
        app
    }
}

/// The local engine in the test's temp dir, with health checks short enough for tests.
pub async fn local_engine(
    dir: &Path,
    insecure_registries: Vec<domain::RegistryHost>,
    buildah: &str,
) -> std::sync::Arc<dyn platform::engine::Platform> {
    let mut settings = platform::local::LocalSettings::new(dir.join("engine"));
    settings.buildah = buildah.into();
    settings.runtime_shim = Some(vec![
        env!("CARGO_BIN_EXE_berth").into(),
        "oci-runtime".into(),
    ]);
    settings.monitor = vec![env!("CARGO_BIN_EXE_berth").into(), "release-monitor".into()];
    // A port range of its own, so that a release is never answered by another test's.
    let start = 24_000 + (rand::random::<u16>() % 30) * 200;
    settings.ports = start..=start + 199;
    settings.insecure_registries = insecure_registries;
    settings.health_timeout = Duration::from_secs(20);
    std::sync::Arc::new(platform::local::LocalEngine::new(settings).await.unwrap())
}

impl TestApp {
    /// Stops the worker as a stopping Berth does: running operations get the drain time
    /// (2 s here) to finish, then are put back in the queue.
    pub async fn stop_worker_gracefully(&mut self) {
        self.stop_worker.send_replace(true);
        (&mut self.worker).await.unwrap();
    }

    /// Starts another worker on this app's Berth (the next Berth's, after `stop` or
    /// `stop_worker_gracefully`); it runs until the answered sender is set or dropped with
    /// the handle.
    pub fn another_worker(
        &self,
    ) -> (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let worker = service::worker::spawn(
            self.berth.clone(),
            WorkerSettings {
                concurrency: 1,
                lease: Duration::from_secs(5),
                poll: Duration::from_millis(300),
                drain: Duration::from_secs(2),
            },
            stopping,
        );
        (stop, worker)
    }

    /// Stops the worker and every release this app's engine started.
    pub async fn stop(&self) {
        self.worker.abort();
        self.berth.platform.shutdown().await;
    }

    /// The app's database URL (for `pg_dump`), when it is on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(TestDatabase::url)
    }

    /// Sends `request`; answers the response with its body as it came (compressed, say).
    pub async fn send_raw(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response: Response<Body> = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
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
            store::AddedMember::Invited { user_id, .. } => user_id,
            // Someone with an account joins when they accept.
            store::AddedMember::Pending {
                user_id,
                invitation_id,
            } => {
                self.store
                    .respond_to_invitation(user_id, invitation_id, true)
                    .await
                    .unwrap();
                return user_id;
            }
        };
        let hash = store::passwords::hash(&NewPassword::parse(PASSWORD).unwrap()).unwrap();
        self.store.set_password(id, &hash).await.unwrap();
        id
    }

    /// A new API token for the user; the latest is kept under their e-mail.
    pub async fn token_for(&self, user_id: i64) -> String {
        let token = self
            .store
            .create_api_token(user_id, &domain::ApiTokenName::parse("tests").unwrap())
            .await
            .unwrap()
            .secret;
        let email = self.store.user(user_id).await.unwrap().unwrap().email;
        self.tokens.lock().unwrap().insert(email, token.clone());
        token
    }

    /// The id of team `team` (made by `with_team` or [`TestApp::owner`]).
    pub fn team_id(&self, team: &str) -> i64 {
        self.teams.lock().unwrap()[team].0
    }

    /// The API token of someone made with `with_team` (or by `token_for`).
    pub fn token(&self, email: &str) -> String {
        self.tokens
            .lock()
            .unwrap()
            .get(email)
            .unwrap_or_else(|| panic!("no token for {email}: build the app with_team()"))
            .clone()
    }

    pub fn owner_token(&self) -> String {
        self.token(OWNER)
    }

    pub fn deployer(&self) -> String {
        self.token(DEPLOYER)
    }

    pub fn viewer(&self) -> String {
        self.token(VIEWER)
    }

    pub fn outsider(&self) -> String {
        self.token(OUTSIDER)
    }

    /// `registry_host/repo:tag` on the app's registry.
    pub fn image(&self, repo_tag: &str) -> String {
        let registry = self.registry.as_ref().expect("built with_registry()");
        format!("{}/{repo_tag}", registry.host)
    }

    pub fn registry(&self) -> &TestRegistry {
        self.registry.as_ref().expect("built with_registry()")
    }

    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
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
        let response = self.send(request.unwrap()).await;
        self.responses.lock().unwrap().push(response.body.clone());
        response
    }

    /// An API call with `token`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        self.api(method, path, Some(token), body).await
    }

    /// Every API answer so far, for the leak scans.
    pub fn responses(&self) -> String {
        self.responses.lock().unwrap().join("\n")
    }

    /// Creates app `handle` in team `acme` as the deployer (`method`: image or dockerfile;
    /// `git` for a Dockerfile app's source).
    pub async fn create_app(&self, handle: &str, method: &str, git: Option<Value>) -> Value {
        let mut body = serde_json::json!({ "handle": handle, "method": method });
        if let Some(git) = git {
            body["git"] = git;
        }
        self.call(
            "POST",
            "/api/v1/teams/acme/apps",
            &self.deployer(),
            Some(body),
        )
        .await
        .expect(201)
        .json()["app"]
            .clone()
    }

    /// Asks for a deploy of `app` in team `acme` as the deployer.
    pub async fn deploy(&self, app: &str, body: Value) -> TestResponse {
        self.call(
            "POST",
            &format!("/api/v1/teams/acme/apps/{app}/deploys"),
            &self.deployer(),
            Some(body),
        )
        .await
    }

    /// Deploys and waits for the operation to end; answers the final operation.
    pub async fn deploy_and_wait(&self, app: &str, body: Value) -> Value {
        let operation = self.deploy(app, body).await.expect(202).json()["operation"].clone();
        assert_eq!(operation["status"], "queued");
        self.wait(operation["id"].as_i64().unwrap()).await
    }

    /// Changes `app`'s configuration and waits for the configure operation to end.
    pub async fn configure_and_wait(&self, app: &str, env: Value) -> Value {
        let operation = self
            .call(
                "PATCH",
                &format!("/api/v1/teams/acme/apps/{app}/config"),
                &self.deployer(),
                Some(serde_json::json!({ "env": env })),
            )
            .await
            .expect(202)
            .json()["operation"]
            .clone();
        self.wait(operation["id"].as_i64().unwrap()).await
    }

    /// An operation as the viewer reads it.
    pub async fn operation(&self, id: i64) -> Value {
        self.call(
            "GET",
            &format!("/api/v1/operations/{id}"),
            &self.viewer(),
            None,
        )
        .await
        .expect(200)
        .json()["operation"]
            .clone()
    }

    /// Waits for an operation to end (up to three minutes: a build may pull and compile).
    pub async fn wait(&self, id: i64) -> Value {
        for _ in 0..900 {
            let operation = self.operation(id).await;
            if ["succeeded", "failed", "cancelled"].contains(&operation["status"].as_str().unwrap())
            {
                return operation;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("operation {id} did not finish: {}", self.log(id).await);
    }

    /// An operation's log, as text (read by the deployer: viewers read logs only when the
    /// team allows it).
    pub async fn log(&self, id: i64) -> String {
        self.call(
            "GET",
            &format!("/api/v1/operations/{id}/log"),
            &self.deployer(),
            None,
        )
        .await
        .body
    }

    /// Asserts that the operation succeeded, showing its log when it did not.
    pub async fn succeeded(&self, operation: &Value) {
        let id = operation["id"].as_i64().unwrap();
        assert_eq!(
            operation["status"],
            "succeeded",
            "{operation}\n{}",
            self.log(id).await
        );
    }

    /// App `handle`'s operations, newest first, as the viewer reads them (up to 200).
    pub async fn operations(&self, handle: &str) -> Vec<Value> {
        self.call(
            "GET",
            &format!("/api/v1/teams/acme/apps/{handle}/operations?limit=200"),
            &self.viewer(),
            None,
        )
        .await
        .expect(200)
        .json()["operations"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// App `handle`'s configuration rows (`{"key", "value", "secret"}`), as the viewer reads
    /// them.
    pub async fn config(&self, handle: &str) -> Vec<Value> {
        self.call(
            "GET",
            &format!("/api/v1/teams/acme/apps/{handle}/config"),
            &self.viewer(),
            None,
        )
        .await
        .expect(200)
        .json()["env"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Asks for a `basic` team credential of team `acme` on the app's registry, as `token`.
    pub async fn create_credential(
        &self,
        token: &str,
        name: &str,
        username: &str,
        secret: &str,
    ) -> TestResponse {
        self.call(
            "POST",
            "/api/v1/teams/acme/credentials",
            token,
            Some(serde_json::json!({
                "name": name, "registry": self.registry().host.as_str(), "kind": "basic",
                "username": username, "secret": secret, "note": "CI pulls",
            })),
        )
        .await
    }

    /// App `handle` of team `acme`, as the viewer reads it.
    pub async fn app_json(&self, handle: &str) -> Value {
        self.call(
            "GET",
            &format!("/api/v1/teams/acme/apps/{handle}"),
            &self.viewer(),
            None,
        )
        .await
        .expect(200)
        .json()["app"]
            .clone()
    }

    /// Where app `handle` serves: its stable port (its named address needs a resolver that
    /// knows `*.localhost`, as browsers do).
    pub async fn release_url(&self, handle: &str) -> String {
        let app = self.app_json(handle).await;
        app["release"]["port_url"]
            .as_str()
            .unwrap_or_else(|| panic!("the app has no URL: {app}"))
            .to_owned()
    }

    /// Searches every API answer, the captured server log, the runtime logs and the SQLite
    /// file for each secret.
    pub fn assert_no_leaks(&self, secrets: &[&str]) {
        let responses = self.responses();
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        let db_path = self.dir.join("berth.db");
        let mut database = std::fs::read(&db_path).unwrap_or_default();
        for suffix in ["-wal", "-shm"] {
            let mut path = db_path.clone().into_os_string();
            path.push(suffix);
            database.extend(std::fs::read(path).unwrap_or_default());
        }
        let mut engine_logs = String::new();
        if let Ok(dir) = std::fs::read_dir(self.dir.join("engine/logs")) {
            for entry in dir.flatten() {
                engine_logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        for secret in secrets {
            assert!(
                !responses.contains(secret),
                "an API response holds a secret"
            );
            assert!(!logs.contains(secret), "the server log holds a secret");
            assert!(
                !engine_logs.contains(secret),
                "a runtime log holds a secret"
            );
            assert!(
                !database
                    .windows(secret.len())
                    .any(|win| win == secret.as_bytes()),
                "the SQLite file holds a secret"
            );
        }
    }

    /// The private half of `team`'s deploy key, opened as Berth opens it, as the texts a
    /// leak would show: each line of the key's body that is not constant (the first line is
    /// the same for every ed25519 key) and not part of the public key.
    pub async fn deploy_key_needles(&self, team: &str, public_key: &str) -> Vec<String> {
        let team_id = self.team_id(team);
        let (_, sealed) = self
            .store
            .deploy_key_secret(team_id)
            .await
            .unwrap()
            .expect("the team has a key");
        let private = self
            .berth
            .secrets
            .open(&store::SecretSlot::TeamDeployKey(team_id), &sealed)
            .unwrap();
        let private = private.expose();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let needles: Vec<String> = private
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .skip(1)
            .filter(|line| line.len() >= 20 && !public_key.contains(line))
            .map(str::to_owned)
            .collect();
        assert!(needles.len() >= 3, "{needles:?}");
        needles
    }

    /// Asserts that a `pg_dump` of the app's PostgreSQL database holds none of `secrets`
    /// (stops the app first: the dump must see everything it wrote); answers the dump.
    pub async fn assert_postgres_dump_free_of(&self, secrets: &[&str]) -> String {
        let url = self.database_url().expect("a PostgreSQL app");
        self.stop().await;
        self.store.close().await;
        let dump = std::process::Command::new(pg_dump())
            .args(["--data-only", "--inserts", url])
            .output()
            .expect("pg_dump runs");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("INSERT INTO"), "the dump holds no data");
        for secret in secrets {
            assert!(!dump.contains(secret), "the PostgreSQL dump holds a secret");
        }
        dump.into_owned()
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookie: None,
            form_cookie: None,
            ip: None,
            forwarded_for: None,
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
}

/// What the app's current release serves at `url`, if it answers.
pub async fn served(url: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let response = client.get(url).send().await.ok()?;
    response.text().await.ok()
}

/// What `url` (`http://APP.TEAM.localhost:PORT/`, an app's named address) serves, resolving
/// the name to loopback as browsers do.
pub async fn served_by_name(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_owned();
    let port = parsed.port()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// What the release at `url` serves at `path`; panics when nothing answers.
pub async fn served_file(url: &str, path: &str) -> String {
    let at = format!("{url}{path}");
    served(&at)
        .await
        .unwrap_or_else(|| panic!("{at} does not answer"))
}

/// The JSON error of a refused request, checked to be a 422 of `kind` naming `field`.
pub fn refusal(response: TestResponse, kind: &str, field: &str) -> Value {
    let error = response.expect(422).json()["error"].clone();
    assert_eq!(error["kind"], kind, "{error}");
    assert_eq!(error["field"], field, "{error}");
    error
}

/// The `berth` binary with a clean environment (only `PATH`) and `data_dir` as its data
/// dir.
pub fn berth_command(data_dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_DATA_DIR", data_dir);
    // The router's ports, the same for every start on this data dir (its Caddy outlives
    // Berth and is adopted), apart from other tests' and below the ephemeral ports
    // (32768 and up), which any outgoing connection may take.
    let base = 30_000 + (fnv(data_dir.as_os_str().as_encoded_bytes()) % 137) as u16 * 20;
    command
        .env("BERTH_APPS_ADDR", format!("127.0.0.1:{base}"))
        .env("BERTH_APP_PORTS", format!("{}-{}", base + 1, base + 19));
    command
}

/// FNV-1a, to spread tests' port ranges.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `command` to its end with `stdin` as its input; answers what it printed.
pub fn output_of(mut command: std::process::Command, stdin: &str) -> std::process::Output {
    use std::{io::Write, process::Stdio};
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Keeps a session cookie across requests, as a browser does.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    /// The session cookie (`berth_session=…`), once the server set one.
    pub cookie: Option<String>,
    /// The cookie with the form token of a visitor not signed in (`berth_form=…`).
    pub form_cookie: Option<String>,
    /// The address the browser connects from (none: the request has no peer address, as
    /// with `oneshot`).
    pub ip: Option<std::net::IpAddr>,
    /// An `X-Forwarded-For` header sent with every request.
    pub forwarded_for: Option<String>,
}

impl Browser<'_> {
    /// This browser, connecting from `ip`.
    pub fn connecting_from(mut self, ip: &str) -> Self {
        self.ip = Some(ip.parse().unwrap());
        self
    }

    /// Sends a request from this browser's address.
    async fn send(&self, mut request: Request<Body>) -> TestResponse {
        if let Some(ip) = self.ip {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
                    ip, 40_000,
                )));
        }
        if let Some(forwarded) = &self.forwarded_for {
            request
                .headers_mut()
                .insert("x-forwarded-for", forwarded.parse().unwrap());
        }
        self.app.send(request).await
    }

    fn remember_cookie(&mut self, response: &TestResponse) {
        for set in response
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap().to_owned();
            if pair.starts_with("berth_form=") || pair.starts_with("__Host-berth_form=") {
                self.form_cookie = Some(pair);
            } else {
                self.cookie = Some(pair);
            }
        }
    }

    /// The `Cookie` header this browser sends: its session's and its form token's cookies.
    pub fn cookies(&self) -> Option<String> {
        match (&self.cookie, &self.form_cookie) {
            (Some(session), Some(form)) => Some(format!("{session}; {form}")),
            (session, form) => session.clone().or_else(|| form.clone()),
        }
    }

    /// `GET path` as a browser would (accepting HTML).
    pub async fn get(&mut self, path: &str) -> TestResponse {
        let mut request = Request::get(path).header(header::ACCEPT, "text/html");
        if let Some(cookies) = self.cookies() {
            request = request.header(header::COOKIE, cookies);
        }
        let response = self.send(request.body(Body::empty()).unwrap()).await;
        self.remember_cookie(&response);
        self.app
            .responses
            .lock()
            .unwrap()
            .push(response.body.clone());
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
        if let Some(cookies) = self.cookies() {
            request = request.header(header::COOKIE, cookies);
        }
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        let response = self.send(request.body(Body::from(body)).unwrap()).await;
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
        if let Some(cookies) = self.cookies() {
            request = request.header(header::COOKIE, cookies);
        }
        let response = self.send(request.body(Body::empty()).unwrap()).await;
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
    serde_json::from_str::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
}

/// Everything the server logs in this test binary, for the leak scan.
pub fn captured_logs() -> &'static Mutex<Vec<u8>> {
    capture_logs_at(tracing::Level::TRACE)
}

/// The log capture, at `level` and above when this call is the first: a test binary
/// captures every level unless it asked for less before its first `TestApp` started.
pub fn capture_logs_at(level: tracing::Level) -> &'static Mutex<Vec<u8>> {
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
            .with_max_level(level)
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

/// Runs git in `dir` as the tests' own user (no system or user configuration): its output,
/// trimmed; panics with git's error when it fails.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Tests",
            "-c",
            "user.email=tests@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
