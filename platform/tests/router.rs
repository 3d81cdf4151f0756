//! The router against a real Caddy and real HTTP: what an app's stable addresses promise
//! while releases are switched under load, while a replaced release drains, and when Berth
//! goes away and comes back. Each test has its own directory, ports and Caddies (the edge
//! and the routes Caddy), which its harness ends even when the test fails.

use platform::local::router::{HandleKind, Route, Router, RouterError, RouterSettings};
use std::{
    fs,
    net::{SocketAddr, TcpListener as StdTcpListener},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tempfile::TempDir;

/// A router on a directory and a loopback port of its own.
struct Harness {
    /// First, so that the Caddies are ended before their directory goes.
    _caddy: CaddyGuard,
    dir: TempDir,
    settings: RouterSettings,
    router: Router,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::Builder::new()
            .prefix("berth-router-")
            .tempdir()
            .unwrap();
        let mut settings = RouterSettings::new(dir.path().join("router"));
        settings.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        settings.drain_timeout = Duration::from_secs(5);
        let caddy = CaddyGuard(settings.dir.clone());
        let router = Router::start(settings.clone()).await.unwrap();
        Harness {
            _caddy: caddy,
            dir,
            settings,
            router,
        }
    }

    /// A route for app `app_id` named `app` in team "acme", on a stable port of its own.
    fn route(&self, app_id: i64, app: &str, upstream: Option<u16>) -> Route {
        Route {
            app_id,
            app: app.to_owned(),
            team: "acme".to_owned(),
            port: free_port(),
            upstream,
        }
    }

    /// The pids of the routes and the edge Caddy serving this harness's directory.
    fn caddy_pids(&self) -> [i32; 2] {
        caddy_pids(&self.settings.dir).map(|pid| pid.expect("a Caddy runs"))
    }

    /// A client that reaches every given host name on the router's IP, with or without
    /// keeping connections open between requests.
    fn client(&self, routes: &[&Route], keep_alive: bool) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy();
        for route in routes {
            builder = builder.resolve(
                &self.router.host(route),
                SocketAddr::new(self.settings.listen.ip(), 0),
            );
        }
        builder = builder.resolve(
            &format!("nobody.acme.{}", self.settings.domain),
            SocketAddr::new(self.settings.listen.ip(), 0),
        );
        if !keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        builder.build().unwrap()
    }
}

/// Ends the Caddies of a router directory when dropped (a test that panics included,
/// showing their logs).
struct CaddyGuard(PathBuf);

impl Drop for CaddyGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in ["edge.log", "caddy.log"] {
                eprintln!(
                    "==== {log}\n{}",
                    fs::read_to_string(self.0.join(log)).unwrap_or_default()
                );
            }
        }
        for pid in caddy_pids(&self.0).into_iter().flatten() {
            kill(pid);
        }
    }
}

/// The pids of the routes Caddy and of the edge Caddy of `dir`, as they recorded them,
/// for those still running.
fn caddy_pids(dir: &Path) -> [Option<i32>; 2] {
    ["caddy", "edge"].map(|name| caddy_pid(dir, name))
}

/// The pid in `<dir>/<name>.pid` if that process is still the Caddy of `<name>.json`.
fn caddy_pid(dir: &Path, name: &str) -> Option<i32> {
    let pid: i32 = fs::read_to_string(dir.join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let config = dir.join(format!("{name}.json"));
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == config.as_os_str().as_encoded_bytes());
    (ours && alive(pid)).then_some(pid)
}

/// Whether `pid` runs (a zombie does not: it serves nothing).
fn alive(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// SIGKILLs `pid` and waits until it is gone.
fn kill(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid), "Caddy {pid} survived SIGKILL");
}

/// How soon after a switch returns every new request reaches the new release. Caddy 2.6
/// answers a change as the servers it replaced begin to stop, and a request one of them
/// accepts in that instant still reaches the release being replaced (which `drained`
/// then waits for).
const SWITCHED_WITHIN: Duration = Duration::from_millis(50);

/// GETs `url` until `expected` answers, for at most [`SWITCHED_WITHIN`].
async fn switched(client: &reqwest::Client, url: &str, expected: &str) {
    let deadline = Instant::now() + SWITCHED_WITHIN;
    loop {
        let answer = get(client, url).await.unwrap();
        if answer == (200, expected.to_owned()) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} still answers {answer:?}");
    }
}

/// A loopback port nothing listens on right now, for Caddy to take later.
fn free_port() -> u16 {
    held_port().local_addr().unwrap().port()
}

/// A listener on a loopback port below the kernel's ephemeral range (32768 and up here),
/// from 12000 to 19999: nobody else in these tests binds there. A port from the ephemeral
/// range, once let go, may become the local end of any outgoing connection (another test's
/// client) before Caddy binds it, and the test fails with "address already in use".
fn held_port() -> StdTcpListener {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const FIRST: usize = 12_000;
    const COUNT: usize = 8_000;
    let start = std::process::id() as usize * 7_919;
    for _ in 0..COUNT {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        if let Ok(listener) = StdTcpListener::bind(("127.0.0.1", port as u16)) {
            return listener;
        }
    }
    panic!(
        "no free loopback port from {FIRST} to {}",
        FIRST + COUNT - 1
    );
}

/// A release stand-in: `GET /` answers its name; `GET /hold` answers "held" after a
/// second, counting the requests it holds and those it let go; `GET /forwarded-for`
/// answers the `X-Forwarded-For` it was sent.
struct Backend {
    port: u16,
    held: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn backend(name: &'static str) -> Backend {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let (on_hold, on_release) = (held.clone(), released.clone());
    let app = axum::Router::new()
        .route("/", get(move || async move { name }))
        .route(
            "/forwarded-for",
            get(|headers: axum::http::HeaderMap| async move {
                let forwarded = headers.get_all("x-forwarded-for").iter();
                forwarded
                    .map(|v| v.to_str().unwrap_or("?").to_owned())
                    .collect::<Vec<_>>()
                    .join(" | ")
            }),
        )
        .route(
            "/hold",
            get(move || async move {
                on_hold.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                on_release.fetch_add(1, Ordering::SeqCst);
                "held"
            }),
        );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Backend {
        port,
        held,
        released,
        task,
    }
}

/// Sends `GET /hold` through `by_name` and waits until `backend` holds it; answers the
/// request's task.
async fn held_request(
    client: &reqwest::Client,
    by_name: &str,
    backend: &Backend,
) -> tokio::task::JoinHandle<Result<(u16, String), reqwest::Error>> {
    let held = tokio::spawn({
        let (client, url) = (client.clone(), format!("{by_name}hold"));
        async move { get(&client, &url).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.held.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the held request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    held
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String), reqwest::Error> {
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_serves_by_host_name_and_by_stable_port_and_nothing_else() {
    let harness = Harness::start().await;
    let one = backend("one").await;
    let web = harness.route(1, "web", Some(one.port));
    let api = harness.route(2, "api", None);
    harness.router.set(web.clone()).await.unwrap();
    harness.router.set(api.clone()).await.unwrap();
    let client = harness.client(&[&web, &api], false);

    let (by_name, by_port) = harness.router.urls(&web);
    assert_eq!(
        by_name,
        format!(
            "http://web.acme.localhost:{}/",
            harness.settings.listen.port()
        )
    );
    assert_eq!(by_port, format!("http://127.0.0.1:{}/", web.port));
    assert_eq!(get(&client, &by_name).await.unwrap(), (200, "one".into()));
    assert_eq!(get(&client, &by_port).await.unwrap(), (200, "one".into()));
    // The release learns the client's address, not Caddy's own, nor one the client made
    // up.
    let forwarded = client
        .get(format!("{by_name}forwarded-for"))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.text().await.unwrap(), "127.0.0.1");

    let unknown = format!(
        "http://nobody.acme.localhost:{}/",
        harness.settings.listen.port()
    );
    let (status, body) = get(&client, &unknown).await.unwrap();
    assert_eq!(
        (status, body.trim()),
        (404, "no app is served at this address")
    );

    for url in [harness.router.urls(&api).0, harness.router.urls(&api).1] {
        let (status, body) = get(&client, &url).await.unwrap();
        assert_eq!(
            (status, body.trim()),
            (503, "api has no running release"),
            "{url}"
        );
    }

    // Removed: its name is nobody's, its stable port closed.
    harness.router.remove(web.app_id).await.unwrap();
    assert_eq!(get(&client, &by_name).await.unwrap().0, 404);
    assert!(
        get(&client, &by_port).await.is_err(),
        "port {} still open",
        web.port
    );
    assert_eq!(
        get(&client, &harness.router.urls(&api).0).await.unwrap().0,
        503
    );

    // Whoever reaches the admin sockets controls every route; Caddy keeps its files in
    // the router's directory, not in a home directory, and sees none of Berth's
    // environment.
    let dir = &harness.settings.dir;
    let mode = |path: PathBuf| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.clone()), 0o700);
    assert_eq!(mode(dir.join("caddy.json")), 0o600);
    assert_eq!(mode(dir.join("edge.json")), 0o600);
    let mut expected = vec![
        format!("PATH={}", std::env::var("PATH").unwrap()),
        format!("HOME={}", dir.display()),
        format!("XDG_CONFIG_HOME={}", dir.join("config").display()),
        format!("XDG_DATA_HOME={}", dir.join("data").display()),
    ];
    expected.sort();
    for pid in harness.caddy_pids() {
        let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
        let mut environ: Vec<String> = environ
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        environ.sort();
        assert_eq!(environ, expected);
    }
    harness.router.stop_caddy().await;
    assert_eq!(
        caddy_pids(dir),
        [None, None],
        "stop_caddy left Caddy running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_releases_under_load_fails_no_request_and_new_requests_reach_the_new_one() {
    let harness = Harness::start().await;
    let (a, b) = (backend("a").await, backend("b").await);
    // Switch n leads to "b" when n is odd, back to "a" when it is even.
    let serving = |switches: usize| if switches.is_multiple_of(2) { "a" } else { "b" };
    let mut route = harness.route(1, "web", Some(a.port));
    harness.router.set(route.clone()).await.unwrap();
    let (by_name, by_port) = harness.router.urls(&route);

    // How far the switches have gone: `2n - 1` while switch n is under way, `2n` once
    // it is done, and when it was done. A request sent at `2n`, after SWITCHED_WITHIN,
    // must reach `serving(n)` unless another switch began before its answer came.
    let progress = Arc::new(Mutex::new((0usize, Instant::now())));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for (url, keep_alive) in [
        (by_name.clone(), true),
        (by_name.clone(), false),
        (by_port.clone(), true),
        (by_port.clone(), false),
    ] {
        // hyper's pool: unlike browsers, it does not send a request again when a kept
        // connection turns out closed; any connection Caddy closed would fail a request.
        let client = harness.client(&[&route], keep_alive);
        let (progress, stop) = (progress.clone(), stop.clone());
        let (failures, answered) = (failures.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let connections = if keep_alive { "kept" } else { "new" };
            while !stop.load(Ordering::SeqCst) {
                let (sent, done_at) = *progress.lock().unwrap();
                let settled = done_at.elapsed() > SWITCHED_WITHIN;
                let result = get(&client, &url).await;
                let checked =
                    sent.is_multiple_of(2) && settled && progress.lock().unwrap().0 == sent;
                let what = format!("{url} ({connections} connections) at {sent}");
                match result {
                    Ok((200, body)) if !checked || body == serving(sent / 2) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{what}: {status} {body}")),
                    Err(e) => failures.lock().unwrap().push(format!("{what}: {e:?}")),
                }
            }
        }));
    }

    let fresh = harness.client(&[&route], false);
    for switch in 1..=20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        route.upstream = Some(if serving(switch) == "a" {
            a.port
        } else {
            b.port
        });
        *progress.lock().unwrap() = (2 * switch - 1, Instant::now());
        harness.router.set(route.clone()).await.unwrap();
        *progress.lock().unwrap() = (2 * switch, Instant::now());
        for url in [&by_name, &by_port] {
            switched(&fresh, url, serving(switch)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed:\n{}",
        failures.len(),
        failures.len() + answered.load(Ordering::SeqCst),
        failures.join("\n")
    );
    let answered = answered.load(Ordering::SeqCst);
    assert!(
        answered > 400,
        "only {answered} requests were made under load"
    );
    harness.router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_release_is_drained_only_once_its_request_in_flight_has_finished() {
    let harness = Harness::start().await;
    let (old, new) = (backend("old").await, backend("new").await);
    let mut route = harness.route(1, "web", Some(old.port));
    harness.router.set(route.clone()).await.unwrap();
    let client = harness.client(&[&route], true);
    let (by_name, _) = harness.router.urls(&route);

    let held = held_request(&client, &by_name, &old).await;

    route.upstream = Some(new.port);
    harness.router.set(route.clone()).await.unwrap();
    switched(&client, &by_name, "new").await;

    assert!(
        !harness
            .router
            .drained(old.port, Duration::from_millis(200))
            .await,
        "drained while a request was in flight on the old release"
    );
    assert_eq!(old.released.load(Ordering::SeqCst), 0);
    let waited = Instant::now();
    assert!(
        harness
            .router
            .drained(old.port, Duration::from_secs(5))
            .await,
        "not drained after its request finished"
    );
    assert_eq!(
        old.released.load(Ordering::SeqCst),
        1,
        "drained before the held request finished"
    );
    assert!(waited.elapsed() > Duration::from_millis(300));
    assert_eq!(held.await.unwrap().unwrap(), (200, "held".into()));

    // An upstream with nothing in flight is drained at once.
    let started = Instant::now();
    assert!(
        harness
            .router
            .drained(new.port, Duration::from_secs(5))
            .await
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    harness.router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_draining_when_its_router_went_away_is_still_drained_by_the_next() {
    let harness = Harness::start().await;
    let (old, new) = (backend("old").await, backend("new").await);
    let mut route = harness.route(1, "web", Some(old.port));
    harness.router.set(route.clone()).await.unwrap();
    let client = harness.client(&[&route], true);
    let (by_name, _) = harness.router.urls(&route);
    let held = held_request(&client, &by_name, &old).await;
    route.upstream = Some(new.port);
    harness.router.set(route.clone()).await.unwrap();
    let Harness {
        _caddy,
        dir: _dir,
        settings,
        router,
    } = harness;
    // Berth killed while the old release drains; the next one reconciles the routes.
    drop(router);
    let router = Router::start(settings.clone()).await.unwrap();
    router.replace_all(vec![route.clone()]).await.unwrap();
    switched(&client, &by_name, "new").await;
    assert!(
        router.drained(old.port, Duration::from_secs(5)).await,
        "not drained after its request finished"
    );
    assert_eq!(
        old.released.load(Ordering::SeqCst),
        1,
        "drained before the held request finished"
    );
    assert_eq!(held.await.unwrap().unwrap(), (200, "held".into()));
    router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_outlives_its_router_is_adopted_by_the_next_and_restarted_when_killed() {
    let harness = Harness::start().await;
    let (one, two) = (backend("one").await, backend("two").await);
    let web = harness.route(1, "web", Some(one.port));
    let api = harness.route(2, "api", Some(two.port));
    harness.router.set(web.clone()).await.unwrap();
    let client = harness.client(&[&web, &api], false);
    let (web_name, web_port) = harness.router.urls(&web);
    let (api_name, api_port) = harness.router.urls(&api);
    let first = harness.caddy_pids();
    let Harness {
        _caddy,
        dir: _dir,
        settings,
        router,
    } = harness;

    // Berth goes away: Caddy keeps serving.
    drop(router);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&client, &web_name).await.unwrap(), (200, "one".into()));

    // The next Berth adopts it, routes and all; setting one app keeps the others.
    let router = Router::start(settings.clone()).await.unwrap();
    assert_eq!(
        caddy_pids(&settings.dir),
        first.map(Some),
        "Caddy was replaced"
    );
    assert_eq!(get(&client, &web_port).await.unwrap(), (200, "one".into()));
    router.set(api.clone()).await.unwrap();
    assert_eq!(caddy_pids(&settings.dir), first.map(Some));
    for (url, body) in [
        (&web_name, "one"),
        (&web_port, "one"),
        (&api_name, "two"),
        (&api_port, "two"),
    ] {
        assert_eq!(
            get(&client, url).await.unwrap(),
            (200, body.into()),
            "{url}"
        );
    }
    drop(router);

    // Caddy killed while no Berth ran: the next one starts it again from what it saved.
    first.into_iter().for_each(kill);
    assert!(get(&client, &web_name).await.is_err());
    let router = Router::start(settings.clone()).await.unwrap();
    let second = caddy_pids(&settings.dir).map(|pid| pid.expect("a new Caddy"));
    assert!(second[0] != first[0] && second[1] != first[1]);
    for (url, body) in [(&web_name, "one"), (&api_port, "two")] {
        assert_eq!(
            get(&client, url).await.unwrap(),
            (200, body.into()),
            "{url}"
        );
    }

    // One Caddy killed under a running Berth: its next change starts it again, the other
    // keeps running.
    let mut web = web;
    for (killed, upstream) in [(0, two.port), (1, one.port)] {
        let before = caddy_pids(&settings.dir).map(Option::unwrap);
        kill(before[killed]);
        web.upstream = Some(upstream);
        router.set(web.clone()).await.unwrap();
        let after = caddy_pids(&settings.dir).map(|pid| pid.expect("a Caddy"));
        assert_ne!(after[killed], before[killed]);
        assert_eq!(after[1 - killed], before[1 - killed]);
        let body = if upstream == one.port { "one" } else { "two" };
        // A request the replaced servers accept in the instant after the change still
        // reaches the old release (see `switched`).
        switched(&client, &web_name, body).await;
        switched(&client, &web_port, body).await;
        assert_eq!(get(&client, &api_name).await.unwrap(), (200, "two".into()));
    }
    router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_caddy_took_from_a_berth_killed_before_saving_it_is_adopted_as_it_runs() {
    let harness = Harness::start().await;
    let (one, two) = (backend("one").await, backend("two").await);
    let web = harness.route(1, "web", Some(one.port));
    let api = harness.route(2, "api", Some(two.port));
    harness.router.set(web.clone()).await.unwrap();
    let dir = harness.settings.dir.clone();
    let saved = |name: &str| fs::read(dir.join(name)).unwrap();
    let before = [saved("caddy.json"), saved("edge.json")];
    harness.router.set(api.clone()).await.unwrap();
    // Berth killed between Caddy's answer and the saving of what it took: the saved
    // configurations still lack app "api", which Caddy serves.
    fs::write(dir.join("caddy.json"), &before[0]).unwrap();
    fs::write(dir.join("edge.json"), &before[1]).unwrap();
    let client = harness.client(&[&web, &api], false);
    let (api_name, api_port) = harness.router.urls(&api);
    let Harness {
        _caddy,
        dir: _dir,
        settings,
        router,
    } = harness;
    drop(router);

    // The next Berth goes by what runs: changing app "web" keeps app "api".
    let router = Router::start(settings.clone()).await.unwrap();
    let mut web = web;
    web.upstream = Some(two.port);
    router.set(web.clone()).await.unwrap();
    let (web_name, _) = router.urls(&web);
    assert_eq!(get(&client, &web_name).await.unwrap(), (200, "two".into()));
    for url in [&api_name, &api_port] {
        assert_eq!(
            get(&client, url).await.unwrap(),
            (200, "two".into()),
            "{url}"
        );
    }
    drop(one);
    router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_handles_are_refused_naming_them_and_change_nothing() {
    let harness = Harness::start().await;
    let one = backend("one").await;
    let good = harness.route(1, "web", Some(one.port));
    harness.router.set(good.clone()).await.unwrap();
    let saved = fs::read(harness.settings.dir.join("caddy.json")).unwrap();

    let long = "a".repeat(300);
    for bad in ["a.b", "X", "a b", "..", long.as_str(), "", "web-", "*"] {
        for kind in [HandleKind::App, HandleKind::Team] {
            let mut route = harness.route(2, "api", None);
            match kind {
                HandleKind::App => route.app = bad.to_owned(),
                HandleKind::Team => route.team = bad.to_owned(),
            }
            let refused = harness.router.set(route.clone()).await.unwrap_err();
            match &refused {
                RouterError::InvalidHandle {
                    kind: refused_kind,
                    handle,
                } => assert_eq!((*refused_kind, handle.as_str()), (kind, bad)),
                other => panic!("{bad:?} as {kind}: {other}"),
            }
            let message = refused.to_string();
            assert!(
                message.contains(&format!("{kind} handle {bad:?}")),
                "{message}"
            );
            let refused = harness
                .router
                .replace_all(vec![good.clone(), route])
                .await
                .unwrap_err();
            assert!(matches!(refused, RouterError::InvalidHandle { .. }));
        }
    }
    assert_eq!(
        fs::read(harness.settings.dir.join("caddy.json")).unwrap(),
        saved,
        "a refused route changed the configuration"
    );
    let client = harness.client(&[&good], false);
    let (by_name, _) = harness.router.urls(&good);
    assert_eq!(get(&client, &by_name).await.unwrap(), (200, "one".into()));
    harness.router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caddy_that_cannot_start_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = RouterSettings::new(dir.path().join("router"));
    settings.caddy = PathBuf::from("/nonexistent/caddy");
    let missing = Router::start(settings.clone()).await.err().unwrap();
    assert!(matches!(missing, RouterError::CaddyMissing { .. }));
    assert!(
        missing.to_string().contains("apt install caddy"),
        "{missing}"
    );

    // The router's port is taken: the edge Caddy exits, and its own words say why.
    let taken = held_port();
    settings.caddy = PathBuf::from("caddy");
    settings.listen = taken.local_addr().unwrap();
    let _caddy = CaddyGuard(settings.dir.clone());
    let failed = Router::start(settings).await.err().unwrap();
    match &failed {
        RouterError::CaddyDidNotStart { role, log_tail, .. } => {
            assert_eq!(*role, "the edge Caddy");
            assert!(log_tail.contains("address already in use"), "{log_tail}");
        }
        other => panic!("expected CaddyDidNotStart, got {other}"),
    }
    assert!(failed.to_string().contains("edge.log"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stable_port_another_process_holds_is_refused_and_changes_nothing() {
    let harness = Harness::start().await;
    let one = backend("one").await;
    let web = harness.route(1, "web", Some(one.port));
    harness.router.set(web.clone()).await.unwrap();
    let dir = &harness.settings.dir;
    let saved = [dir.join("caddy.json"), dir.join("edge.json")].map(|p| fs::read(p).unwrap());

    let taken = held_port();
    let mut api = harness.route(2, "api", Some(one.port));
    api.port = taken.local_addr().unwrap().port();
    let refused = harness.router.set(api.clone()).await.unwrap_err();
    match &refused {
        RouterError::InvalidPort { app_id, port, why } => {
            assert_eq!((*app_id, *port), (2, api.port));
            assert!(why.contains("in use"), "{why}");
        }
        other => panic!("expected InvalidPort, got {other}"),
    }
    assert_eq!(
        [dir.join("caddy.json"), dir.join("edge.json")].map(|p| fs::read(p).unwrap()),
        saved,
        "a refused route changed the saved configuration"
    );
    let client = harness.client(&[&web, &api], false);
    let (web_name, web_port) = harness.router.urls(&web);
    assert_eq!(get(&client, &web_name).await.unwrap(), (200, "one".into()));
    assert_eq!(
        get(&client, &harness.router.urls(&api).0).await.unwrap().0,
        404
    );

    // Once the port is free, the same route is taken, and the other apps are kept. (A
    // process another test forks just then holds the listener until it execs: the port is
    // free once a bind of it succeeds.)
    drop(taken);
    let deadline = Instant::now() + Duration::from_secs(10);
    while StdTcpListener::bind(("127.0.0.1", api.port)).is_err() {
        assert!(Instant::now() < deadline, "port {} stays taken", api.port);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    harness.router.set(api.clone()).await.unwrap();
    for url in [harness.router.urls(&api).1, web_port] {
        assert_eq!(
            get(&client, &url).await.unwrap(),
            (200, "one".into()),
            "{url}"
        );
    }
    harness.router.stop_caddy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_refuses_a_change_is_started_again_on_what_it_served() {
    let harness = Harness::start().await;
    let one = backend("one").await;
    let web = harness.route(1, "web", Some(one.port));
    harness.router.set(web.clone()).await.unwrap();
    let client = harness.client(&[&web], false);
    let (web_name, _) = harness.router.urls(&web);
    let [routes_pid, edge_pid] = harness.caddy_pids();
    let Harness {
        _caddy,
        dir: _dir,
        settings,
        router,
    } = harness;
    drop(router);

    // Berth comes back with a listen address another process holds: it adopts the
    // running Caddies, and its first change is one the edge cannot start.
    let taken = held_port();
    let mut moved = settings.clone();
    moved.listen = taken.local_addr().unwrap();
    let router = Router::start(moved).await.unwrap();
    assert_eq!(
        caddy_pids(&settings.dir),
        [Some(routes_pid), Some(edge_pid)]
    );
    let refused = router.set(web.clone()).await.unwrap_err();
    match &refused {
        RouterError::Admin { role, message, .. } => {
            assert_eq!(*role, "the edge Caddy");
            assert!(message.contains("address already in use"), "{message}");
        }
        other => panic!("expected Admin, got {other}"),
    }

    // A new edge process serves what the old one did, and every request is answered.
    let [routes_after, edge_after] = caddy_pids(&settings.dir).map(|pid| pid.expect("a Caddy"));
    assert_eq!(routes_after, routes_pid);
    assert_ne!(edge_after, edge_pid);
    for _ in 0..50 {
        assert_eq!(get(&client, &web_name).await.unwrap(), (200, "one".into()));
    }
    router.stop_caddy().await;
}
