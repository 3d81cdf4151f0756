//! The loopback SSRF suite: registries and git hosts that point Berth at its own network
//! (127.0.0.1, 169.254.169.254, private addresses) through a token realm, a redirect, a
//! manifest or a URL, and the egress guard refusing each time without contacting them.
//!
//! A recorder (a TCP listener on 127.0.0.1 that counts connections) stands for "a service
//! on Berth's network" and proves nothing arrived. For 169.254.169.254 and 10.1.2.3, which
//! this machine may not even route, the proof is the guard's refusal, its kind, and its
//! speed (well under the connect timeout, so no connection was tried).

use axum::{
    extract::State,
    http::{header, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};
use domain::{ImageReference, RegistryHost};
use platform::{
    egress::{AllowEntry, Egress},
    git::{GitError, GitSource, Repository, RepositoryUrl},
    registry::{RegistryClient, RegistryError},
};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

const TIMEOUT: Duration = Duration::from_secs(10);
/// A refusal by the guard is decided before any connection: far below [`TIMEOUT`].
const QUICK: Duration = Duration::from_secs(2);

/// A TCP listener on loopback that counts the connections it accepts.
struct Recorder {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Recorder { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// How the hostile registry answers.
#[derive(Clone)]
enum Hostile {
    /// `GET /v2/` asks for a token at this realm.
    Realm(String),
    /// Every API request is redirected to this URL.
    Redirect(String),
    /// The manifest is an index whose entry has this digest.
    IndexDigest(String),
    /// The manifest is an image manifest; its config blob is redirected to this URL.
    BlobRedirect(String),
    /// Every request fails with a body a port scanner would like to read.
    ErrorBody,
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INTERNAL_PAGE: &str = "<html>Internal admin: ami-id i-0abc123, db password hunter2</html>";

async fn hostile_registry(answer: Hostile) -> RegistryHost {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = RegistryHost::parse(&listener.local_addr().unwrap().to_string()).unwrap();
    let app = Router::new().fallback(answer_hostile).with_state(answer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    host
}

async fn answer_hostile(State(answer): State<Hostile>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    match answer {
        Hostile::Realm(realm) => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"{realm}\",service=\"hostile\""),
            )],
            "",
        )
            .into_response(),
        Hostile::Redirect(to) => {
            (StatusCode::FOUND, [(header::LOCATION, to)], "").into_response()
        }
        Hostile::IndexDigest(digest) if path.contains("/manifests/") => (
            [(header::CONTENT_TYPE, INDEX)],
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{{"mediaType":"{MANIFEST}","digest":"{digest}","size":10,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
            ),
        )
            .into_response(),
        Hostile::BlobRedirect(to) if path.contains("/blobs/") => {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)], "").into_response()
        }
        Hostile::BlobRedirect(_) if path.contains("/manifests/") => {
            let config = format!("sha256:{}", "ab".repeat(32));
            (
                [(header::CONTENT_TYPE, MANIFEST)],
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[]}}"#
                ),
            )
                .into_response()
        }
        Hostile::ErrorBody => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"{INTERNAL_PAGE}"}}]}}"#),
        )
            .into_response(),
        // `/v2/` and anything else: open.
        _ => (StatusCode::OK, "{}").into_response(),
    }
}

/// The operator listed the hostile registry as insecure: it is allowed, nothing else on
/// loopback is.
async fn verify_on(
    host: &RegistryHost,
    image: Option<&str>,
) -> (Result<(), RegistryError>, Duration) {
    let client = RegistryClient::new(vec![host.clone()], TIMEOUT);
    let image = image.map(|name| ImageReference::parse(&format!("{host}/{name}")).unwrap());
    let started = Instant::now();
    let result = client.verify(host, None, image.as_ref()).await.map(|_| ());
    (result, started.elapsed())
}

fn assert_refused(result: &Result<(), RegistryError>, says: &str) {
    let error = result.as_ref().expect_err("the request is refused");
    assert_eq!(error.kind(), "refused", "{error:?}");
    assert!(error.to_string().contains(says), "{says:?} in {error}");
}

// ---------------------------------------------------------------------------------------
// Token realms
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_realm_on_loopback_is_refused_and_nothing_arrives() {
    let recorder = Recorder::start().await;
    for realm in [
        format!("http://127.0.0.1:{}/token", recorder.port),
        format!("https://127.0.0.1:{}/token", recorder.port),
        format!("https://localhost:{}/token", recorder.port),
        format!("https://[::ffff:127.0.0.1]:{}/token", recorder.port),
    ] {
        let registry = hostile_registry(Hostile::Realm(realm.clone())).await;
        let (result, _) = verify_on(&registry, Some("team/app:1")).await;
        assert_refused(&result, "loopback address");
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("BERTH_EGRESS_ALLOW"),
            "{realm}"
        );
    }
    assert_eq!(
        recorder.connections(),
        0,
        "nothing reached the loopback service"
    );
}

#[tokio::test]
async fn token_realms_at_the_metadata_service_or_a_private_address_are_refused_at_once() {
    for (realm, says) in [
        (
            "https://169.254.169.254/latest/meta-data/",
            "link-local address",
        ),
        ("https://10.1.2.3/token", "private address"),
        ("https://[fd00::1]/token", "unique-local address"),
        ("https://100.64.0.1/token", "CGNAT"),
    ] {
        let registry = hostile_registry(Hostile::Realm(realm.into())).await;
        let (result, took) = verify_on(&registry, Some("team/app:1")).await;
        assert_refused(&result, says);
        assert!(
            took < QUICK,
            "{realm}: refused before connecting, took {took:?}"
        );
    }
}

#[tokio::test]
async fn a_plain_http_realm_is_refused_unless_its_host_is_a_listed_registry() {
    // Public address, plain HTTP, not on a listed registry's host: never asked.
    let registry = hostile_registry(Hostile::Realm("http://203.0.113.9/token".into())).await;
    let (result, took) = verify_on(&registry, None).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), "protocol", "{error:?}");
    assert!(error.to_string().contains("plain HTTP"), "{error}");
    assert!(took < QUICK, "{took:?}");
}

// ---------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redirect_to_another_port_on_loopback_is_refused_and_nothing_arrives() {
    let recorder = Recorder::start().await;
    for to in [
        format!("http://127.0.0.1:{}/v2/", recorder.port),
        format!("http://localhost:{}/v2/", recorder.port),
    ] {
        let registry = hostile_registry(Hostile::Redirect(to.clone())).await;
        let (result, _) = verify_on(&registry, None).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), "refused", "{to}: {error:?}");
        assert!(error.to_string().contains("same host only"), "{error}");
    }
    assert_eq!(recorder.connections(), 0);
}

#[tokio::test]
async fn redirects_to_the_metadata_service_or_a_private_address_are_refused_at_once() {
    for to in [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/v2/",
    ] {
        let registry = hostile_registry(Hostile::Redirect(to.into())).await;
        let (result, took) = verify_on(&registry, None).await;
        assert_eq!(result.unwrap_err().kind(), "refused", "{to}");
        assert!(took < QUICK, "{to}: {took:?}");
    }
}

#[tokio::test]
async fn a_blob_redirect_may_not_go_to_http_loopback_or_private_addresses() {
    let recorder = Recorder::start().await;
    for (to, says) in [
        // From a plain-HTTP registry, http on its own host is no downgrade; the guard
        // still refuses the port nobody listed.
        (
            format!("http://127.0.0.1:{}/blob", recorder.port),
            "loopback address",
        ),
        (
            format!("https://127.0.0.1:{}/blob", recorder.port),
            "loopback address",
        ),
        (
            format!("https://localhost:{}/blob", recorder.port),
            "loopback address",
        ),
        (
            "https://169.254.169.254/blob".to_owned(),
            "link-local address",
        ),
        ("https://192.168.0.10/blob".to_owned(), "private address"),
    ] {
        let registry = hostile_registry(Hostile::BlobRedirect(to.clone())).await;
        let (result, took) = verify_on(&registry, Some("team/app:1")).await;
        assert_refused(&result, says);
        assert!(took < QUICK, "{to}: {took:?}");
    }
    assert_eq!(recorder.connections(), 0);
}

// ---------------------------------------------------------------------------------------
// Registries named by users, manifests, error bodies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_registry_on_an_unlisted_internal_address_is_refused_and_nothing_arrives() {
    let recorder = Recorder::start().await;
    let client = RegistryClient::new(Vec::new(), TIMEOUT);
    for host in [
        format!("127.0.0.1:{}", recorder.port),
        format!("localhost:{}", recorder.port),
        format!("[::1]:{}", recorder.port),
    ] {
        let host = RegistryHost::parse(&host).unwrap();
        let result = client.verify(&host, None, None).await.map(|_| ());
        assert_refused(&result, "loopback address");
    }
    // Listed as insecure on another port: that listing does not open this one.
    let other = RegistryHost::parse("127.0.0.1:1").unwrap();
    let client = RegistryClient::new(vec![other], TIMEOUT);
    let host = RegistryHost::parse(&format!("127.0.0.1:{}", recorder.port)).unwrap();
    let result = client.verify(&host, None, None).await.map(|_| ());
    assert_refused(&result, "loopback address");
    assert_eq!(recorder.connections(), 0);

    for host in [
        "169.254.169.254",
        "10.1.2.3:5000",
        "172.16.0.1",
        "[fe80::1]:443",
    ] {
        let host = RegistryHost::parse(host).unwrap();
        let started = Instant::now();
        let result = RegistryClient::new(Vec::new(), TIMEOUT)
            .verify(&host, None, None)
            .await
            .map(|_| ());
        assert_eq!(result.unwrap_err().kind(), "refused", "{host}");
        assert!(started.elapsed() < QUICK);
    }
}

#[tokio::test]
async fn the_operator_can_allow_an_internal_registry() {
    let registry = hostile_registry(Hostile::ErrorBody).await;
    let denied = RegistryClient::new(Vec::new(), TIMEOUT)
        .verify(&registry, None, None)
        .await;
    assert_eq!(denied.unwrap_err().kind(), "refused");
    // Allowed (but not insecure): Berth now connects (and speaks TLS, which fails).
    let allowed = Egress::new(vec![AllowEntry::parse(registry.as_str()).unwrap()]);
    let client = RegistryClient::with_egress(Vec::new(), TIMEOUT, allowed);
    let error = client.verify(&registry, None, None).await.unwrap_err();
    assert_eq!(error.kind(), "unreachable", "{error:?}");
}

#[tokio::test]
async fn a_digest_with_a_path_in_it_never_reaches_a_url() {
    for digest in [
        "sha256:../../../../v2/other/manifests/latest".to_owned(),
        format!("sha256:{}/../../x", "ab".repeat(32)),
        format!("sha512:{}", "ab".repeat(64)),
    ] {
        let registry = hostile_registry(Hostile::IndexDigest(digest.clone())).await;
        let (result, _) = verify_on(&registry, Some("team/app:1")).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), "protocol", "{digest}: {error:?}");
        assert!(error.to_string().contains("invalid digest"), "{error}");
        assert!(!error.to_string().contains(".."), "{error}");
    }
}

#[tokio::test]
async fn error_bodies_are_never_relayed() {
    let registry = hostile_registry(Hostile::ErrorBody).await;
    let (result, _) = verify_on(&registry, Some("team/app:1")).await;
    let error = result.unwrap_err();
    let shown = format!("{error}");
    assert!(shown.contains("502"), "{shown}");
    for leaked in ["ami-id", "hunter2", "Internal admin"] {
        assert!(!shown.contains(leaked), "{shown}");
    }
}

// ---------------------------------------------------------------------------------------
// Git
// ---------------------------------------------------------------------------------------

fn guarded_mirror(dir: &tempfile::TempDir) -> Repository {
    Repository::new(dir.path().join("git/app.git"))
}

#[tokio::test]
async fn git_urls_to_loopback_are_refused_and_nothing_arrives() {
    let recorder = Recorder::start().await;
    let data = tempfile::tempdir().unwrap();
    for url in [
        format!("http://127.0.0.1:{}/org/app.git", recorder.port),
        format!("https://localhost:{}/org/app.git", recorder.port),
        format!("ssh://git@127.0.0.1:{}/org/app.git", recorder.port),
        format!("ssh://git@localhost:{}/org/app.git", recorder.port),
    ] {
        let url = RepositoryUrl::parse(&url).unwrap();
        let error = guarded_mirror(&data)
            .fetch(&GitSource::public(url.clone()))
            .await
            .unwrap_err();
        assert!(matches!(error, GitError::Refused(_)), "{url}: {error:?}");
        assert_eq!(error.kind(), "refused");
        assert!(error.to_string().contains("loopback address"), "{error}");
    }
    assert_eq!(recorder.connections(), 0);
}

#[tokio::test]
async fn git_urls_to_metadata_and_private_addresses_are_refused_at_once() {
    let data = tempfile::tempdir().unwrap();
    for (url, says) in [
        (
            "http://169.254.169.254/latest/meta-data.git",
            "link-local address",
        ),
        ("https://10.1.2.3/org/app.git", "private address"),
        ("ssh://git@192.168.1.20/org/app.git", "private address"),
        ("git@172.20.0.5:org/app.git", "private address"),
        ("https://[fd12::1]/org/app.git", "unique-local address"),
    ] {
        let url = RepositoryUrl::parse(url).unwrap();
        let started = Instant::now();
        let error = guarded_mirror(&data)
            .fetch(&GitSource::public(url.clone()))
            .await
            .unwrap_err();
        assert!(error.to_string().contains(says), "{url}: {error}");
        assert_eq!(error.kind(), "refused");
        assert!(started.elapsed() < QUICK, "{url}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn repositories_on_this_server_are_refused_without_listed_roots() {
    let data = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(source.path())
        .status()
        .unwrap();
    assert!(status.success());
    for url in [
        format!("file://{}", source.path().display()),
        source.path().display().to_string(),
        "/etc".to_owned(),
    ] {
        let url = RepositoryUrl::parse(&url).unwrap();
        let error = guarded_mirror(&data)
            .fetch(&GitSource::public(url.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "refused", "{url}: {error:?}");
        assert!(
            error.to_string().contains("BERTH_GIT_LOCAL_ROOTS"),
            "{error}"
        );
    }
    // Listed roots: only what is under them.
    let elsewhere = tempfile::tempdir().unwrap();
    let egress = Egress::default().with_git_local_roots(vec![elsewhere.path().to_owned()]);
    let url = RepositoryUrl::parse(&format!("file://{}", source.path().display())).unwrap();
    let error = guarded_mirror(&data)
        .with_egress(egress)
        .fetch(&GitSource::public(url.clone()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "refused", "{error:?}");
    let egress = Egress::default().with_git_local_roots(vec![source.path().to_owned()]);
    let listed = guarded_mirror(&data)
        .with_egress(egress)
        .fetch(&GitSource::public(url))
        .await;
    // An empty repository: git has nothing to fetch, but it was allowed to look.
    if let Err(error) = listed {
        assert_ne!(error.kind(), "refused", "{error:?}");
    }
}
