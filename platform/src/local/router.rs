//! The apps' stable addresses. Each release of an app listens on a port of its own, so an
//! app's URL would change with every deploy; the router gives each app two addresses that
//! do not — `http://APP.TEAM.<domain>:<listen port>/` and `http://<listen IP>:<stable
//! port>/` — served by Caddy, which Berth drives through its admin API and switches to the
//! new release once it is healthy.
//!
//! Caddy outlives Berth: it runs in a session of its own with no parent-death signal, so
//! stopping, restarting or upgrading Berth drops no connection and no route. The next
//! Berth adopts the Caddies it finds answering on the router's admin sockets and reads
//! the routes back from the configuration files the router writes beside every change
//! (from which a Caddy that died also comes back).
//!
//! There are two Caddy processes, because Caddy 2.6 replaces every server on any change:
//! on Linux each replaced TCP server opens a new `SO_REUSEPORT` socket and closes the old
//! one, resetting the connections still queued on it (unless `net.ipv4.tcp_migrate_req`
//! is set), and closes every idle kept-alive connection, failing a request a client sends
//! on it at that moment — measured here, a few failed requests for every switch, for
//! every app. So:
//! - the **edge** Caddy listens on the TCP addresses and passes every request on, over a
//!   new UNIX-socket connection each, to the routes Caddy. Its configuration changes
//!   only when apps or their stable ports come and go, never on a deploy (and then the
//!   router waits until its replaced sockets are closed before it answers);
//! - the **routes** Caddy holds the host names and the releases behind them, and takes
//!   every change (a whole configuration through `POST /load`). Caddy hands its UNIX
//!   sockets over to the new servers with their queues, and the edge keeps no
//!   connection to it idle, so a switch fails no request.

mod admin;
mod caddy;
mod config;
mod listeners;

use caddy::Caddy;
use config::{CaddyConfig, Desired};
use serde::Deserialize;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt, fs, io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::PathBuf,
    sync::Mutex as StdMutex,
    time::{Duration, Instant},
};
use tokio::{process::Child, sync::Mutex};

/// How long a change waits for the Caddy servers it replaced to stop listening.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(2);
/// How often `drained` asks Caddy how many requests an upstream still has.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long after a switch the servers it replaced may still take a request (Caddy answers
/// the change before it has closed them): `drained` counts nothing as finished before.
const LATE_ACCEPTS: Duration = Duration::from_millis(500);
/// The longest path a UNIX socket address holds (`sun_path`, less its final NUL).
const MAX_SOCKET_PATH: usize = 107;
/// A host is `APP.TEAM.<domain>`, two labels of at most 63 bytes and their dots before
/// the domain, and a host name has at most 253 bytes.
const MAX_DOMAIN: usize = 253 - 2 * 64;

/// Where and how the router serves the apps.
#[derive(Clone, Debug)]
pub struct RouterSettings {
    /// The Caddy binary.
    pub caddy: PathBuf,
    /// The router's own directory (0700): Caddy's admin and UNIX sockets (whoever can
    /// reach them controls or bypasses every route), its configuration files, its data
    /// and config directories (which it would otherwise put under the home directory)
    /// and its logs.
    pub dir: PathBuf,
    /// Where `http://APP.TEAM.<domain>` is served; the apps' stable ports are opened on
    /// the same IP.
    pub listen: SocketAddr,
    /// The domain under which apps are named.
    pub domain: String,
    /// How long requests in flight on a Caddy server replaced by a change, or on a
    /// release's port that no route uses any more, are let finish.
    pub drain_timeout: Duration,
}

impl RouterSettings {
    /// The defaults, with the router's directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            caddy: PathBuf::from("caddy"),
            dir: dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            domain: "localhost".to_owned(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// How one app is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub app_id: i64,
    /// The app's handle, the first label of its host name.
    pub app: String,
    /// Its team's handle, the second label.
    pub team: String,
    /// The app's stable port (kept in the database; the router does not choose it).
    pub port: u16,
    /// The port of the release that serves the app; `None` answers 503.
    pub upstream: Option<u16>,
}

/// Which handle of a route was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleKind {
    App,
    Team,
}

impl fmt::Display for HandleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleKind::App => "app",
            HandleKind::Team => "team",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(
        "Caddy is not installed on this server (apt install caddy): `{}` was not found, so \
         apps have no stable address",
        caddy.display()
    )]
    CaddyMissing { caddy: PathBuf },
    #[error("{role} did not start: {why}; the end of {}:\n{log_tail}", log.display())]
    CaddyDidNotStart {
        role: &'static str,
        why: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("{role} refused the router's configuration (HTTP {status}): {message}")]
    Admin {
        role: &'static str,
        status: u16,
        message: String,
    },
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "the {kind} handle {handle:?} cannot be part of a host name: use 1 to 63 lower-case \
         letters, digits and inner hyphens"
    )]
    InvalidHandle { kind: HandleKind, handle: String },
    #[error(
        "the apps domain {domain:?} is not a host name (dot-separated labels of lower-case \
         letters, digits and inner hyphens, at most {MAX_DOMAIN} characters)"
    )]
    InvalidDomain { domain: String },
    #[error("app {app_id} cannot use port {port}: {why}")]
    InvalidPort { app_id: i64, port: u16, why: String },
    #[error(
        "the router's socket {} is longer than a UNIX socket path may be \
         ({MAX_SOCKET_PATH} bytes); choose a shorter data directory",
        path.display()
    )]
    SocketPathTooLong { path: PathBuf },
}

/// Serves the apps' stable addresses through Caddy. Create it with [`Router::start`] at
/// start-up, then [`Router::replace_all`] with the routes the database holds. Dropping it
/// leaves Caddy running with its routes.
pub struct Router {
    settings: RouterSettings,
    /// Holds the host names and the releases; takes every change.
    routes: Caddy,
    /// Holds the TCP addresses; changes only when apps or their ports do.
    edge: Caddy,
    /// Changes are made one at a time: each loads configurations built from all routes.
    state: Mutex<State>,
    /// Release ports that no route uses any more, until when they are kept known to Caddy
    /// (see [`Router::drained`]). Apart from `state` so that `drained` never waits for a
    /// change to finish.
    draining: StdMutex<HashMap<u16, Draining>>,
}

/// A release port no route uses any more.
#[derive(Clone, Copy)]
struct Draining {
    /// When the route left it.
    since: Instant,
    /// Until when Caddy keeps counting its requests.
    until: Instant,
}

struct State {
    /// The routes Caddy serves, by app id.
    routes: BTreeMap<i64, Route>,
    /// The configuration the edge Caddy runs, when known: it is loaded again only when
    /// it changes.
    edge_config: Option<Vec<u8>>,
    /// The Caddies this router started (not those it adopted).
    routes_process: Option<Child>,
    edge_process: Option<Child>,
}

impl Router {
    /// Adopts the Caddies that answer on the router's admin sockets (leaving their routes
    /// as they are until the first change), or starts them from the saved configuration.
    pub async fn start(settings: RouterSettings) -> Result<Router, RouterError> {
        if !is_domain(&settings.domain) {
            return Err(RouterError::InvalidDomain {
                domain: settings.domain.clone(),
            });
        }
        let mut settings = settings;
        // Caddy runs in the directory and is given the paths of its sockets and files:
        // they must not depend on Berth's working directory.
        let dir = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.dir)
            .and_then(|()| fs::set_permissions(&settings.dir, fs::Permissions::from_mode(0o700)))
            .and_then(|()| fs::canonicalize(&settings.dir))
            .map_err(|source| RouterError::Io {
                doing: format!(
                    "preparing the router's directory {}",
                    settings.dir.display()
                ),
                source,
            })?;
        settings.dir = dir.clone();
        let routes = Caddy::new(&dir, "caddy", "admin.sock", "the routes Caddy");
        let edge = Caddy::new(&dir, "edge", "edge-admin.sock", "the edge Caddy");
        for socket in [
            &routes.admin,
            &edge.admin,
            &config::app_socket(&dir, i64::MAX),
        ] {
            if socket.as_os_str().len() > MAX_SOCKET_PATH {
                return Err(RouterError::SocketPathTooLong {
                    path: socket.clone(),
                });
            }
        }
        let router = Router {
            settings,
            routes,
            edge,
            state: Mutex::new(State {
                routes: BTreeMap::new(),
                edge_config: None,
                routes_process: None,
                edge_process: None,
            }),
            draining: StdMutex::new(HashMap::new()),
        };
        if !listeners::queued_connections_survive_a_reload() {
            tracing::warn!(
                "net.ipv4.tcp_migrate_req is off: when an app is added or removed, the few \
                 connections being opened to the apps at that moment may be reset \
                 (sysctl -w net.ipv4.tcp_migrate_req=1 hands them over)"
            );
        }
        let mut state = router.state.lock().await;
        // What the Caddies serve, when they run: a Berth killed while Caddy took a change
        // did not save it.
        state.routes = match router.live_routes().await {
            Some(routes) => routes,
            None => router.saved_routes(),
        };
        if router.edge.answers().await {
            // What it runs, unless a change was cut short after Caddy took it.
            state.edge_config = fs::read(&router.edge.config).ok();
        }
        if router.routes.answers().await && state.edge_config.is_some() {
            tracing::info!(
                apps = state.routes.len(),
                "the router adopts the Caddies already serving the apps"
            );
        }
        if let Err(e) = router.start_missing(&mut state).await {
            // Half a router serves nothing: whatever of it runs (the routes Caddy, when the
            // edge could not bind its address) stops, rather than be left orphaned.
            let patience = router.settings.drain_timeout;
            router.edge.stop(state.edge_process.take(), patience).await;
            router
                .routes
                .stop(state.routes_process.take(), patience)
                .await;
            return Err(e);
        }
        drop(state);
        Ok(router)
    }

    /// Routes one app (adding it, or replacing its route): its host name and stable port
    /// lead to `route.upstream` once this returns.
    pub async fn set(&self, route: Route) -> Result<(), RouterError> {
        check_handles(&route)?;
        let mut state = self.state.lock().await;
        let mut routes = state.routes.clone();
        routes.insert(route.app_id, route);
        self.apply(&mut state, routes).await
    }

    /// Makes `routes` the only routes (the start-up reconcile with the database).
    pub async fn replace_all(&self, routes: Vec<Route>) -> Result<(), RouterError> {
        for route in &routes {
            check_handles(route)?;
        }
        let routes = routes.into_iter().map(|r| (r.app_id, r)).collect();
        let mut state = self.state.lock().await;
        self.apply(&mut state, routes).await
    }

    /// Stops serving one app: its host name then answers 404 and its stable port closes.
    pub async fn remove(&self, app_id: i64) -> Result<(), RouterError> {
        let mut state = self.state.lock().await;
        if !state.routes.contains_key(&app_id) {
            return Ok(());
        }
        let mut routes = state.routes.clone();
        routes.remove(&app_id);
        self.apply(&mut state, routes).await
    }

    /// Whether the requests Caddy had in flight to release port `upstream` have all
    /// finished, waiting up to `timeout`: after a switch, the release it replaced is
    /// stopped only once this says so (or gives up). Ports are tracked for
    /// `drain_timeout` after a switch; a longer `timeout` extends that.
    pub async fn drained(&self, upstream: u16, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let since = self.draining().get_mut(&upstream).map(|draining| {
            draining.until = draining.until.max(deadline);
            draining.since
        });
        // A request the replaced servers took in the instant after the switch is counted
        // only once it has reached Caddy's proxy.
        if let Some(since) = since {
            tokio::time::sleep_until((since + LATE_ACCEPTS).min(deadline).into()).await;
        }
        let address = SocketAddr::from(([127, 0, 0, 1], upstream)).to_string();
        let mut complained = false;
        let drained = loop {
            match self.upstreams().await {
                Ok(upstreams) => {
                    let in_flight = upstreams
                        .iter()
                        .find(|u| u.address == address)
                        .map_or(0, |u| u.num_requests);
                    if in_flight <= 0 {
                        break true;
                    }
                }
                // Nothing is in flight through a Caddy that is gone.
                Err(admin::Failure::NotListening(_)) if self.routes.running().is_none() => {
                    break true
                }
                Err(e) => {
                    if !complained {
                        tracing::warn!(error = %e.into_io(), upstream, "cannot ask Caddy what is in flight");
                        complained = true;
                    }
                }
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        };
        if drained {
            // Caddy forgets the port at the next change.
            self.draining().remove(&upstream);
        }
        drained
    }

    /// The app's host name, `APP.TEAM.<domain>`.
    pub fn host(&self, route: &Route) -> String {
        format!("{}.{}.{}", route.app, route.team, self.settings.domain)
    }

    /// The app's two stable URLs: by host name, and by its stable port.
    pub fn urls(&self, route: &Route) -> (String, String) {
        let listen = self.settings.listen;
        let by_name = match listen.port() {
            80 => format!("http://{}/", self.host(route)),
            port => format!("http://{}:{port}/", self.host(route)),
        };
        // A Caddy listening on every address is reached on loopback from this host.
        let ip = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let by_port = format!("http://{}/", SocketAddr::new(ip, route.port));
        (by_name, by_port)
    }

    /// Ends the Caddies (those it started or adopted), letting requests in flight finish
    /// within the drain timeout. For tests: in service Caddy outlives Berth.
    pub async fn stop_caddy(&self) {
        let mut state = self.state.lock().await;
        let patience = self.settings.drain_timeout + Duration::from_secs(5);
        // The edge first: no new request comes in while the routes Caddy finishes.
        self.edge.stop(state.edge_process.take(), patience).await;
        self.routes
            .stop(state.routes_process.take(), patience)
            .await;
        state.edge_config = None;
        self.draining().clear();
    }

    /// Loads the configurations of `routes` (starting a Caddy again if it is not
    /// answering) and keeps `routes`. When Caddy refuses them, nothing changes.
    async fn apply(
        &self,
        state: &mut State,
        routes: BTreeMap<i64, Route>,
    ) -> Result<(), RouterError> {
        check_ports(self.settings.listen, &routes)?;
        self.check_new_ports_free(&state.routes, &routes)?;
        self.start_missing(state).await?;
        let draining = self.note_draining(&state.routes, &routes);
        // The routes Caddy first: a new app's socket exists before the edge leads to it.
        // Its replaced servers may still accept a request in the instant after this
        // answers (`listeners` says why it cannot be waited for); that request reaches
        // the replaced release, which `drained` waits for.
        self.routes
            .load(&self.routes_config(&routes, &draining))
            .await?;
        let edge_config = self.edge_config(&routes);
        if state.edge_config.as_ref() != Some(&edge_config) {
            if let Err(e) = self.edge.load(&edge_config).await {
                self.recover_edge(state, &draining).await;
                return Err(e);
            }
            state.edge_config = Some(edge_config);
            self.edge_handover(&routes).await;
        }
        state.routes = routes;
        Ok(())
    }

    /// Refuses a new stable port that another process listens on before Caddy is asked
    /// to: Caddy 2.6, failing half-way through starting a configuration, leaves the
    /// servers it had started running beside the old ones, and they fail requests.
    fn check_new_ports_free(
        &self,
        current: &BTreeMap<i64, Route>,
        new: &BTreeMap<i64, Route>,
    ) -> Result<(), RouterError> {
        let held: HashSet<u16> = current.values().map(|r| r.port).collect();
        for route in new.values().filter(|r| !held.contains(&r.port)) {
            let address = SocketAddr::new(self.settings.listen.ip(), route.port);
            if let Err(e) = std::net::TcpListener::bind(address) {
                return Err(RouterError::InvalidPort {
                    app_id: route.app_id,
                    port: route.port,
                    why: format!("{address} cannot be listened on ({e})"),
                });
            }
        }
        Ok(())
    }

    /// After the edge refused a change: puts the routes Caddy back to the routes the edge
    /// leads to, and starts the edge again on what it ran, since a configuration Caddy
    /// 2.6 failed to start leaves broken servers behind that only a new process is rid of.
    async fn recover_edge(&self, state: &mut State, draining: &[u16]) {
        let previous = self.routes_config(&state.routes, draining);
        if let Err(e) = self.routes.load(&previous).await {
            tracing::warn!(error = %e, "cannot put the routes Caddy back after the edge refused a change");
        }
        let running = state
            .edge_config
            .clone()
            .unwrap_or_else(|| self.edge_config(&state.routes));
        tracing::warn!("starting the edge Caddy again on its previous configuration");
        let (caddy, dir) = (&self.settings.caddy, &self.settings.dir);
        match self.edge.start(caddy, dir, &running).await {
            Ok(started) => {
                if let Some(mut replaced) = state.edge_process.replace(started) {
                    let _ = replaced.wait().await;
                }
                state.edge_config = Some(running);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the edge Caddy again");
                state.edge_config = None;
            }
        }
    }

    /// Waits (briefly) until the edge servers a change replaced stop listening: Caddy
    /// answers the change before it closes them, and a connection queued on one of them
    /// then would be reset (see `listeners`). Once a change returns, new connections
    /// reach the new servers.
    async fn edge_handover(&self, routes: &BTreeMap<i64, Route>) {
        let Some(pid) = self.edge.running() else {
            return;
        };
        let listen = self.settings.listen;
        let addresses: Vec<SocketAddr> = std::iter::once(listen)
            .chain(
                routes
                    .values()
                    .map(|r| SocketAddr::new(listen.ip(), r.port)),
            )
            .collect();
        let deadline = Instant::now() + HANDOVER_TIMEOUT;
        while listeners::held_by(pid, &addresses)
            .iter()
            .any(|held| *held > 1)
        {
            if Instant::now() >= deadline {
                tracing::warn!("the edge Caddy still listens twice on an address after a change");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Starts again each Caddy that does not answer, on the current routes.
    async fn start_missing(&self, state: &mut State) -> Result<(), RouterError> {
        let (caddy, dir) = (&self.settings.caddy, &self.settings.dir);
        if !self.routes.answers().await {
            if let Some(mut gone) = state.routes_process.take() {
                if let Ok(Some(status)) = gone.try_wait() {
                    tracing::warn!(%status, "the routes Caddy had ended");
                }
            }
            // Requests in flight died with it; nothing is left to drain.
            self.draining().clear();
            let config = self.routes_config(&state.routes, &[]);
            state.routes_process = Some(self.routes.start(caddy, dir, &config).await?);
        }
        if !self.edge.answers().await {
            if let Some(mut gone) = state.edge_process.take() {
                if let Ok(Some(status)) = gone.try_wait() {
                    tracing::warn!(%status, "the edge Caddy had ended");
                }
            }
            let config = self.edge_config(&state.routes);
            state.edge_process = Some(self.edge.start(caddy, dir, &config).await?);
            state.edge_config = Some(config);
        }
        Ok(())
    }

    /// Adds the release ports `old` routed to and `new` does not to those Caddy keeps
    /// counting; drops those whose time is up or that serve again. Returns them, sorted.
    fn note_draining(&self, old: &BTreeMap<i64, Route>, new: &BTreeMap<i64, Route>) -> Vec<u16> {
        let now = Instant::now();
        let serving: HashSet<u16> = new.values().filter_map(|r| r.upstream).collect();
        let mut draining = self.draining();
        for port in old.values().filter_map(|r| r.upstream) {
            if !serving.contains(&port) {
                let until = now + self.settings.drain_timeout;
                let entry = draining
                    .entry(port)
                    .or_insert(Draining { since: now, until });
                entry.until = entry.until.max(until);
            }
        }
        draining.retain(|port, draining| draining.until > now && !serving.contains(port));
        let mut ports: Vec<u16> = draining.keys().copied().collect();
        ports.sort_unstable();
        ports
    }

    fn desired<'a>(&'a self, routes: &'a BTreeMap<i64, Route>, draining: &'a [u16]) -> Desired<'a> {
        Desired {
            dir: &self.settings.dir,
            listen: self.settings.listen,
            domain: &self.settings.domain,
            grace_period: self.settings.drain_timeout,
            routes,
            draining,
        }
    }

    fn routes_config(&self, routes: &BTreeMap<i64, Route>, draining: &[u16]) -> Vec<u8> {
        let config = CaddyConfig::routes(&self.desired(routes, draining), &self.routes.admin);
        serde_json::to_vec_pretty(&config).expect("a Caddy configuration serialises")
    }

    fn edge_config(&self, routes: &BTreeMap<i64, Route>) -> Vec<u8> {
        let config = CaddyConfig::edge(&self.desired(routes, &[]), &self.edge.admin);
        serde_json::to_vec_pretty(&config).expect("a Caddy configuration serialises")
    }

    /// The routes the running Caddies serve, when both answer with a configuration this
    /// router wrote.
    ///
    /// Also keeps counting, for `drain_timeout`, the release ports that Caddy still
    /// counts for an earlier router (one killed while a replaced release drained): the
    /// next change would otherwise drop them, and Caddy would forget the requests still
    /// running on them, which `drained` must wait for.
    async fn live_routes(&self) -> Option<BTreeMap<i64, Route>> {
        let mut configs = Vec::new();
        for caddy in [&self.routes, &self.edge] {
            let answer =
                admin::request(&caddy.admin, "GET", "/config/", None, caddy::ADMIN_TIMEOUT)
                    .await
                    .ok()
                    .filter(|answer| answer.status == 200)?;
            let config: CaddyConfig = serde_json::from_slice(&answer.body)
                .inspect_err(|e| tracing::warn!(error = %e, "{} runs a configuration this router did not write", caddy.role))
                .ok()?;
            configs.push(config);
        }
        let now = Instant::now();
        let until = now + self.settings.drain_timeout;
        let mut draining = self.draining();
        for port in configs[0].draining() {
            draining
                .entry(port)
                .or_insert(Draining { since: now, until });
        }
        drop(draining);
        Some(CaddyConfig::read_back(&configs[0], &configs[1]))
    }

    /// The routes of the configurations saved in the router's directory.
    fn saved_routes(&self) -> BTreeMap<i64, Route> {
        let read = |caddy: &Caddy| -> Option<CaddyConfig> {
            let saved = match fs::read(&caddy.config) {
                Ok(saved) => saved,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
                Err(e) => {
                    tracing::warn!(error = %e, path = %caddy.config.display(), "cannot read the router's saved configuration; starting with no routes");
                    return None;
                }
            };
            serde_json::from_slice(&saved)
                .inspect_err(|e| tracing::warn!(error = %e, path = %caddy.config.display(), "the router's saved configuration is not one it wrote; starting with no routes"))
                .ok()
        };
        match (read(&self.routes), read(&self.edge)) {
            (Some(routes), Some(edge)) => CaddyConfig::read_back(&routes, &edge),
            _ => BTreeMap::new(),
        }
    }

    /// The routes Caddy's count of requests in flight per upstream.
    async fn upstreams(&self) -> Result<Vec<UpstreamStatus>, admin::Failure> {
        let answer = admin::request(
            &self.routes.admin,
            "GET",
            "/reverse_proxy/upstreams",
            None,
            caddy::ADMIN_TIMEOUT,
        )
        .await?;
        if answer.status != 200 {
            return Err(admin::Failure::Broken(io::Error::other(format!(
                "GET /reverse_proxy/upstreams answered HTTP {}: {}",
                answer.status,
                admin::message(&answer.body)
            ))));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| admin::Failure::Broken(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    fn draining(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Draining>> {
        self.draining.lock().expect("router draining lock")
    }
}

#[derive(Deserialize)]
struct UpstreamStatus {
    address: String,
    num_requests: i64,
}

fn check_handles(route: &Route) -> Result<(), RouterError> {
    for (kind, handle) in [
        (HandleKind::App, &route.app),
        (HandleKind::Team, &route.team),
    ] {
        if !is_label(handle) {
            return Err(RouterError::InvalidHandle {
                kind,
                handle: handle.clone(),
            });
        }
    }
    Ok(())
}

/// A DNS label as Berth writes host names: 1 to 63 lower-case ASCII letters, digits and
/// hyphens, neither first nor last a hyphen. Anything else in a host matcher could match
/// more (or other) hosts than the app's, or break the configuration.
fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_domain(domain: &str) -> bool {
    domain.len() <= MAX_DOMAIN && domain.split('.').all(is_label)
}

/// Every stable port is the app's alone (Caddy would refuse two servers on one address),
/// and no route leads back into the router.
fn check_ports(listen: SocketAddr, routes: &BTreeMap<i64, Route>) -> Result<(), RouterError> {
    let mut stable: HashMap<u16, i64> = HashMap::new();
    let invalid = |route: &Route, port, why: String| RouterError::InvalidPort {
        app_id: route.app_id,
        port,
        why,
    };
    for route in routes.values() {
        if route.port == 0 {
            return Err(invalid(route, 0, "port 0 is no stable port".to_owned()));
        }
        if route.port == listen.port() {
            return Err(invalid(
                route,
                route.port,
                "it is the router's own port".to_owned(),
            ));
        }
        if let Some(other) = stable.insert(route.port, route.app_id) {
            return Err(invalid(
                route,
                route.port,
                format!("it is app {other}'s stable port"),
            ));
        }
    }
    for route in routes.values() {
        let Some(upstream) = route.upstream else {
            continue;
        };
        let why = if upstream == 0 {
            Some("a release does not listen on port 0".to_owned())
        } else if upstream == listen.port() || stable.contains_key(&upstream) {
            Some("it is one of the router's own ports, not a release's".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(invalid(route, upstream, why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels_are_lower_case_letters_digits_and_inner_hyphens() {
        for good in ["web", "a", "web-2", "2fa", &"a".repeat(63)] {
            assert!(is_label(good), "{good:?} should be accepted");
        }
        for bad in [
            "",
            "a.b",
            "X",
            "a b",
            "..",
            "-web",
            "web-",
            "wéb",
            "a*",
            &"a".repeat(64),
        ] {
            assert!(!is_label(bad), "{bad:?} should be refused");
        }
        assert!(is_domain("localhost"));
        assert!(is_domain("apps.example.com"));
        assert!(!is_domain("apps..example.com"));
        assert!(!is_domain(".localhost"));
        assert!(!is_domain(&format!("{}.com", "a".repeat(130))));
    }

    fn route(app_id: i64, port: u16, upstream: Option<u16>) -> (i64, Route) {
        let route = Route {
            app_id,
            app: "web".to_owned(),
            team: "acme".to_owned(),
            port,
            upstream,
        };
        (app_id, route)
    }

    #[test]
    fn stable_ports_are_one_app_s_and_never_an_upstream() {
        let listen: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let ok = BTreeMap::from([route(1, 30001, Some(20001)), route(2, 30002, None)]);
        assert!(check_ports(listen, &ok).is_ok());
        for (routes, port) in [
            (
                BTreeMap::from([route(1, 30001, None), route(2, 30001, None)]),
                30001,
            ),
            (BTreeMap::from([route(1, 8000, None)]), 8000),
            (BTreeMap::from([route(1, 0, None)]), 0),
            (
                BTreeMap::from([route(1, 30001, Some(30002)), route(2, 30002, None)]),
                30002,
            ),
            (BTreeMap::from([route(1, 30001, Some(8000))]), 8000),
        ] {
            match check_ports(listen, &routes) {
                Err(RouterError::InvalidPort { port: refused, .. }) => assert_eq!(refused, port),
                other => panic!("{routes:?} should be refused, got {other:?}"),
            }
        }
    }
}
