//! Registry failure drills: whatever goes wrong with the registry of a deploy — wrong
//! password, no such tag, a registry that never answers, one that is down before the deploy
//! or stops once it is queued, one that dies in the middle of the pull — the deploy fails
//! with a precise reason and nothing is half-deployed: the previous release serves on at
//! the app's stable port, the app's release (digest, operation) does not change, and no
//! new release is left running (one release monitor record on the engine).
//!
//! (That each error is named precisely at verification time is proved in `deploys.rs` and
//! `credentials.rs`; these drills are about what is left behind.)
//!
//! A small TCP proxy stands between Berth and the real registry where a failure must be
//! made on cue: it forwards, holds every request unanswered, cuts the puller's blob
//! downloads half-way, or closes its port.

mod support;

use serde_json::{json, Value};
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use support::*;
use testregistry::TestRegistry;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const PASSWORD: &str = "drill-registry-pull-pass-8c41f2";

/// What the proxy does with requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Passes everything both ways.
    Forward,
    /// Accepts connections and forwards nothing more: no answer, ever (a hung registry).
    Hold,
    /// Forwards, but cuts the connection half-way through the body of every blob the puller
    /// (anyone but Berth's own registry client) downloads.
    CutBlobs,
}

/// A TCP proxy in front of a registry, whose behaviour the test switches.
struct Proxy {
    host: domain::RegistryHost,
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Blob downloads cut so far.
    cuts: Arc<AtomicUsize>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    /// After [`Proxy::close`]: the port, bound without listening (connections are refused).
    closed: Option<tokio::net::TcpSocket>,
}

impl Proxy {
    async fn start(upstream: &domain::RegistryHost) -> Proxy {
        let upstream: SocketAddr = upstream.as_str().parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Forward));
        let cuts = Arc::new(AtomicUsize::new(0));
        let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let accept = {
            let (mode, cuts, tasks) = (mode.clone(), cuts.clone(), tasks.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let connection =
                        tokio::spawn(serve(client, upstream, mode.clone(), cuts.clone()));
                    tasks.lock().unwrap().push(connection.abort_handle());
                }
            })
        };
        tasks.lock().unwrap().push(accept.abort_handle());
        Proxy {
            host: domain::RegistryHost::parse(&addr.to_string()).unwrap(),
            addr,
            mode,
            cuts,
            tasks,
            closed: None,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The registry goes away: open connections are dropped and the port refuses new ones.
    async fn close(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        // The listener goes with its task; bind its port (without listening) once it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            if socket.bind(self.addr).is_ok() {
                self.closed = Some(socket);
                return;
            }
            assert!(Instant::now() < deadline, "the proxy's port stays taken");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `PROXY/repo_tag`.
    fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// One client connection: requests to the registry, answers back, as the mode says.
async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    cuts: Arc<AtomicUsize>,
) {
    let Ok(registry) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut registry_read, mut registry_write) = registry.into_split();
    // Set when a request the proxy will cut has been forwarded: HTTP/1.1 clients wait for
    // an answer before they send another request, so what comes back next is its answer.
    let cut_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let requests = {
        let (mode, cut_next) = (mode.clone(), cut_next.clone());
        async move {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let n = match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let current = *mode.lock().unwrap();
                if current == Mode::Hold {
                    // Never forwarded, never answered; the connection stays open.
                    std::future::pending::<()>().await;
                }
                let text = String::from_utf8_lossy(&buffer[..n]).to_ascii_lowercase();
                if current == Mode::CutBlobs
                    && text.starts_with("get ")
                    && text.contains("/blobs/sha256:")
                    && !text.contains("user-agent: berth/")
                {
                    cut_next.store(true, Ordering::SeqCst);
                }
                if registry_write.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let answers = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        // The answer to a request being cut: its bytes so far, and where to cut it once its
        // headers are known.
        let mut head: Vec<u8> = Vec::new();
        let mut cut_at: Option<usize> = None;
        let mut sent = 0usize;
        loop {
            let n = match registry_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if !cut_next.load(Ordering::SeqCst) {
                if client_write.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
                continue;
            }
            head.extend_from_slice(&buffer[..n]);
            if cut_at.is_none() {
                let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue; // the headers are not all here yet
                };
                let headers = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                let length = headers
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok());
                match length {
                    Some(length) if headers.starts_with("http/1.1 200") && length > 1 => {
                        cut_at = Some(end + 4 + length / 2);
                    }
                    // Not a blob's body (a challenge, a redirect): passed on whole.
                    _ => {
                        cut_next.store(false, Ordering::SeqCst);
                        if client_write.write_all(&head).await.is_err() {
                            return;
                        }
                        head.clear();
                        continue;
                    }
                }
            }
            let cut = cut_at.unwrap();
            let upto = head.len().min(cut);
            if client_write.write_all(&head[sent..upto]).await.is_err() {
                return;
            }
            sent = upto;
            if sent >= cut {
                // Half the blob is out: the registry "dies" for this connection.
                cuts.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    };
    // Either direction ending ends the connection (both sockets are dropped).
    tokio::select! {
        () = requests => {}
        () = answers => {}
    }
}

/// Makes app `web` serve its first release, `image` (on the registry itself or through a
/// proxy in front of it); answers its deploy and its stable address.
async fn serving(app: &TestApp, image: &str) -> (Value, String) {
    app.create_app("web", "image", None).await;
    let first = app
        .deploy_and_wait(
            "web",
            json!({
                "image": image,
                "registry_username": "puller",
                "registry_password": PASSWORD,
            }),
        )
        .await;
    app.succeeded(&first).await;
    let url = app.release_url("web").await;
    assert_eq!(
        served(&url).await.as_deref().map(str::trim),
        Some("first release")
    );
    (first, url)
}

/// The registry with `team/web:1` ("first release") and `team/web:2` ("second release").
async fn registry() -> TestRegistry {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    for (tag, body) in [("1", "first release"), ("2", "second release")] {
        registry
            .push_serving_image("team/web", tag, ("puller", PASSWORD), body)
            .await;
    }
    registry
}

/// Nothing half-deployed: the app's release is still `release` (same digest, same
/// operation, same address `url`), `url` answers `body`, and the engine runs exactly one
/// release — once the release a successful deploy replaced has stopped, which happens
/// after the deploy is recorded. (Without a router, as here, the address is the release's
/// own: it changes with each release that succeeds, and only then.)
async fn still_serving(app: &TestApp, release: &Value, url: &str, body: &str) {
    let shown = app.app_json("web").await;
    assert_eq!(shown["release"]["digest"], release["digest"], "{shown}");
    assert_eq!(shown["release"]["operation_id"], release["id"], "{shown}");
    assert_eq!(shown["release"]["port_url"].as_str(), Some(url), "{shown}");
    assert_eq!(served(url).await.as_deref().map(str::trim), Some(body));
    let monitors = support::binary::release_records_once_settled(&app.dir).await;
    assert_eq!(monitors.len(), 1, "one release runs: {monitors:?}");
}

/// A deploy refused before anything was queued: 422 `verification_failed` for `reason`.
async fn refused(app: &TestApp, body: Value, reason: &str) -> Value {
    let before = app.operations("web").await.len();
    let response = app.deploy("web", body).await;
    let error = response.expect(422).json()["error"].clone();
    assert_eq!(error["kind"], "verification_failed", "{error}");
    assert_eq!(error["reason"], reason, "{error}");
    assert!(
        !error["message"].as_str().unwrap_or_default().is_empty(),
        "{error}"
    );
    assert_eq!(
        app.operations("web").await.len(),
        before,
        "nothing was queued"
    );
    error
}

#[tokio::test]
async fn each_registry_failure_found_by_verification_queues_nothing_and_the_previous_release_serves_on(
) {
    let registry = registry().await;
    let mut proxy = Proxy::start(&registry.host).await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .with_insecure_registry(proxy.host.clone())
        .start()
        .await;
    let (first, url) = serving(&app, &proxy.image("team/web:1")).await;
    let two = proxy.image("team/web:2");

    // 401: a wrong password given with the deploy.
    refused(
        &app,
        json!({"image": two, "registry_username": "puller", "registry_password": "not-it"}),
        "wrong_credentials",
    )
    .await;
    still_serving(&app, &first, &url, "first release").await;

    // 404: no such tag (with the remembered credentials, which the refused ones did not
    // replace).
    refused(
        &app,
        json!({"image": proxy.image("team/web:no-such-tag")}),
        "not_found",
    )
    .await;
    still_serving(&app, &first, &url, "first release").await;

    // A registry that accepts connections and never answers: a timeout, in the registry
    // timeout (3 s in tests) and not much more.
    proxy.set(Mode::Hold);
    let asked = Instant::now();
    let error = refused(&app, json!({"image": two}), "timeout").await;
    let waited = asked.elapsed();
    eprintln!("refused after {waited:?}: {}", error["message"]);
    assert!(
        waited >= Duration::from_millis(2_500) && waited < Duration::from_secs(8),
        "answered after {waited:?}: {error}"
    );
    still_serving(&app, &first, &url, "first release").await;

    // Back again, the same deploy goes through: nothing the failures left blocks it, and
    // the remembered credentials are the right ones.
    proxy.set(Mode::Forward);
    let second = app.deploy_and_wait("web", json!({"image": two})).await;
    app.succeeded(&second).await;
    assert_eq!(second["credential_source"], "remembered");
    let url = app.release_url("web").await;
    still_serving(&app, &second, &url, "second release").await;

    // Down: the port refuses connections.
    proxy.close().await;
    let error = refused(&app, json!({"image": two}), "unreachable").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(proxy.host.as_str()),
        "names the registry: {error}"
    );
    still_serving(&app, &second, &url, "second release").await;
    app.stop().await;
}

#[tokio::test]
async fn a_registry_that_stops_once_the_deploy_is_queued_fails_it_at_the_pull_step_and_the_previous_release_serves_on(
) {
    let mut app = TestApp::sqlite()
        .with_team()
        .with_registry(registry().await)
        .start()
        .await;
    let (first, url) = serving(&app, &app.image("team/web:1")).await;
    let host = app.registry().host.as_str().to_owned();

    // Verified and queued while no worker runs; then the registry stops.
    app.stop_worker_gracefully().await;
    let queued = app
        .deploy("web", json!({"image": app.image("team/web:2")}))
        .await
        .expect(202)
        .json()["operation"]
        .clone();
    app.registry.as_mut().unwrap().stop();
    let (stop, worker) = app.another_worker();
    let done = app.wait(queued["id"].as_i64().unwrap()).await;
    let log = app.log(queued["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}\n{log}");
    let error = done["error"].as_str().unwrap();
    eprintln!("the deploy failed: {error}");
    assert!(error.contains(&host), "names the registry: {error}");
    assert!(
        error.contains("the registry cannot be reached"),
        "says what it means: {error}"
    );
    assert!(log.contains("==> Pull"), "{log}");
    assert!(!log.contains("==> Start"), "failed at the pull: {log}");
    still_serving(&app, &first, &url, "first release").await;

    stop.send_replace(true);
    worker.await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_registry_that_dies_in_the_middle_of_the_pull_fails_the_deploy_with_the_pullers_reason_and_leaves_nothing_behind(
) {
    let registry = registry().await;
    let proxy = Proxy::start(&registry.host).await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .with_insecure_registry(proxy.host.clone())
        .start()
        .await;
    let (first, url) = serving(&app, &proxy.image("team/web:1")).await;

    // Verification (Berth's own client) passes; the pull's blobs are cut half-way.
    proxy.set(Mode::CutBlobs);
    let done = app
        .deploy_and_wait("web", json!({"image": proxy.image("team/web:2")}))
        .await;
    let id = done["id"].as_i64().unwrap();
    let log = app.log(id).await;
    assert_eq!(done["status"], "failed", "{done}\n{log}");
    assert!(proxy.cuts.load(Ordering::SeqCst) >= 1, "{log}");
    let error = done["error"].as_str().unwrap();
    eprintln!("the deploy failed: {error}");
    assert!(
        error.starts_with("pulling the image failed") && error.contains("unexpected EOF"),
        "buildah's reason: {error}"
    );
    assert!(log.contains("==> Pull"), "{log}");
    assert!(!log.contains("==> Start"), "failed at the pull: {log}");
    still_serving(&app, &first, &url, "first release").await;
    app.assert_no_leaks(&[PASSWORD]);

    // Once the registry is whole again, the same deploy succeeds.
    proxy.set(Mode::Forward);
    let again = app
        .deploy_and_wait("web", json!({"image": proxy.image("team/web:2")}))
        .await;
    app.succeeded(&again).await;
    let url = app.release_url("web").await;
    still_serving(&app, &again, &url, "second release").await;
    app.stop().await;
}
