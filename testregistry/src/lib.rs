//! Throwaway container registries for tests: the real CNCF distribution registry (Debian's
//! `docker-registry`, 2.8), one per test, on a free port of 127.0.0.1 with its storage in a
//! temp dir, plus test images built on demand.
//!
//! ```no_run
//! # async fn example() {
//! use testregistry::TestRegistry;
//! let registry = TestRegistry::start_htpasswd(&[("ci", "s3cret")]).await;
//! let digest = registry.push_image("team/app", "1.0", ("ci", "s3cret")).await;
//! // registry.host is 127.0.0.1:PORT; the registry speaks plain HTTP.
//! # }
//! ```
//!
//! The test images run as a platform would run a release: they serve HTTP on
//! `0.0.0.0:$PORT` (every interface of its own network namespace) and publish their `$GREETING` at [`ENV_FILE_PATH`].
//! [`TestRegistry::push_serving_image`] pushes one whose `/` answers a given body (to tell
//! releases apart), [`TestRegistry::push_broken_image`] one that exits at once.
//!
//! Two ways to log in, as real registries have:
//! - [`TestRegistry::start_htpasswd`]: `Basic` auth against an htpasswd file (bcrypt), like
//!   a self-hosted registry. Every user may pull and push everything.
//! - [`TestRegistry::start_token_auth`]: `Bearer` tokens from an in-process token service
//!   (see `token_issuer.rs`), like Docker Hub, GHCR or GitLab; users may pull only the
//!   repositories listed for them, so "logged in but may not pull" can be tested.
//!
//! Needs the Debian packages docker-registry, skopeo, umoci and busybox-static. Dropping a
//! [`TestRegistry`] kills the registry and deletes its directory; a killed test process
//! leaves the registry running (it is an ordinary child process).

mod image;
pub mod moto;
mod process;
mod token_issuer;

pub use image::MultiPlatformImage;
pub use moto::{Moto, MotoKeys};

/// The URL path where a running test image serves the `GREETING` it was started with.
pub const ENV_FILE_PATH: &str = "/env.txt";
pub use token_issuer::{ISSUER as TOKEN_ISSUER, SERVICE as TOKEN_SERVICE};

use domain::RegistryHost;
use image::ImageLayout;
use process::RegistryProcess;
use std::{
    collections::BTreeMap,
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::Mutex,
};
use tempfile::TempDir;
use token_issuer::TokenIssuer;

/// bcrypt's minimum cost: the registry checks a password on every request, and tests
/// don't need the hashes to resist cracking.
const BCRYPT_COST: u32 = 4;

pub struct TestRegistry {
    /// `127.0.0.1:PORT`. The registry speaks plain HTTP, so clients must treat it as insecure.
    pub host: RegistryHost,
    port: u16,
    process: Option<RegistryProcess>,
    auth: Auth,
    images: tokio::sync::Mutex<ImageLayout>,
    /// After [`TestRegistry::stop`], the port stays bound (without listening) so that
    /// connections are refused rather than reaching another test's registry.
    closed_port: Option<tokio::net::TcpSocket>,
    // Last, so that the process is gone before its directory is removed.
    dir: TempDir,
}

enum Auth {
    Htpasswd {
        path: PathBuf,
        hashes: Mutex<BTreeMap<String, String>>,
    },
    Token(TokenIssuer),
}

impl TestRegistry {
    /// A registry with `auth: htpasswd` for these `(user, password)` pairs.
    pub async fn start_htpasswd(users: &[(&str, &str)]) -> TestRegistry {
        let dir = temp_dir();
        let path = dir.path().join("htpasswd");
        let hashes: BTreeMap<String, String> = users
            .iter()
            .map(|(user, password)| ((*user).to_owned(), bcrypt_hash(password)))
            .collect();
        write_htpasswd(&path, &hashes);
        let auth_config = format!(
            "auth:\n  htpasswd:\n    realm: berth-test-registry\n    path: {}\n",
            path.display()
        );
        let auth = Auth::Htpasswd {
            path,
            hashes: Mutex::new(hashes),
        };
        Self::start(dir, &auth_config, auth).await
    }

    /// A registry with `auth: token`, trusting a token service that knows these
    /// `(user, password, repositories)`: each user may pull and push the repositories
    /// listed (`"*"` for all) and nothing else. Anonymous token requests get a token that
    /// grants nothing.
    pub async fn start_token_auth(users: &[(&str, &str, &[&str])]) -> TestRegistry {
        let dir = temp_dir();
        let root_bundle = dir.path().join("token-signer.pem");
        let issuer = TokenIssuer::start(users, &root_bundle).await;
        let auth_config = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    \
             rootcertbundle: {bundle}\n",
            realm = issuer.realm,
            service = token_issuer::SERVICE,
            issuer = token_issuer::ISSUER,
            bundle = root_bundle.display(),
        );
        Self::start(dir, &auth_config, Auth::Token(issuer)).await
    }

    async fn start(dir: TempDir, auth_config: &str, auth: Auth) -> TestRegistry {
        let (process, port) = RegistryProcess::start(dir.path(), auth_config).await;
        TestRegistry {
            host: RegistryHost::parse(&format!("127.0.0.1:{port}")).expect("a loopback host"),
            port,
            process: Some(process),
            auth,
            images: tokio::sync::Mutex::new(ImageLayout::new(dir.path())),
            closed_port: None,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The token service's URL (the realm of the registry's challenges), in token mode.
    pub fn token_realm(&self) -> Option<&str> {
        match &self.auth {
            Auth::Token(issuer) => Some(&issuer.realm),
            Auth::Htpasswd { .. } => None,
        }
    }

    /// Pushes the busybox test image as `repo:tag`, logging in as `creds`; returns the
    /// manifest digest (`sha256:…`) as `skopeo inspect` reports it. The credentials reach
    /// skopeo through a 0600 auth file, never its command line.
    pub async fn push_image(&self, repo: &str, tag: &str, creds: (&str, &str)) -> String {
        let mut images = self.images.lock().await;
        images.push(self.host.as_str(), repo, tag, creds).await
    }

    /// Pushes a copy of the test image whose `/` answers `body`, so that a test can tell
    /// which release serves; returns its manifest digest. Like every test image, it serves
    /// on `0.0.0.0:$PORT` and writes `$GREETING` to `/env.txt` (see [`ENV_FILE_PATH`]).
    pub async fn push_serving_image(
        &self,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
        body: &str,
    ) -> String {
        let mut images = self.images.lock().await;
        images
            .push_serving(self.host.as_str(), repo, tag, creds, body)
            .await
    }

    /// Pushes a copy of the test image whose `/` answers `body`, with `padding` random bytes
    /// in a layer of its own: a different image at every call (for cold-pull benchmarks);
    /// returns its manifest digest.
    pub async fn push_padded_image(
        &self,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
        body: &str,
        padding: usize,
    ) -> String {
        let mut images = self.images.lock().await;
        images
            .push_padded(self.host.as_str(), repo, tag, creds, body, padding)
            .await
    }

    /// Pushes a copy of the test image that sleeps `seconds` before it serves; returns its
    /// manifest digest.
    pub async fn push_slow_image(
        &self,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
        seconds: u32,
    ) -> String {
        let mut images = self.images.lock().await;
        images
            .push_slow(self.host.as_str(), repo, tag, creds, seconds)
            .await
    }

    /// Pushes an image whose command exits with status 3 at once, without ever listening;
    /// returns its manifest digest.
    pub async fn push_broken_image(&self, repo: &str, tag: &str, creds: (&str, &str)) -> String {
        let mut images = self.images.lock().await;
        images
            .push_broken(self.host.as_str(), repo, tag, creds)
            .await
    }

    /// Pushes an OCI index with linux/amd64 and linux/arm64/v8 entries as `repo:tag`.
    pub async fn push_multi_platform_image(
        &self,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
    ) -> MultiPlatformImage {
        let mut images = self.images.lock().await;
        images
            .push_multi_platform(self.host.as_str(), repo, tag, creds)
            .await
    }

    /// Changes a user's password, as rotating a token at the registry would. The old one
    /// stops working at once (distribution re-reads htpasswd when its mtime changes).
    pub fn set_password(&self, user: &str, password: &str) {
        match &self.auth {
            Auth::Htpasswd { path, hashes } => {
                let mut hashes = hashes.lock().expect("htpasswd lock");
                hashes.insert(user.to_owned(), bcrypt_hash(password));
                write_htpasswd(path, &hashes);
            }
            Auth::Token(issuer) => issuer.set_password(user, password),
        }
    }

    /// Token mode only: from now on, issue tokens that expired ten minutes ago (beyond the
    /// registry's 60 s leeway), as a service with a wrong clock would.
    pub fn issue_expired_tokens(&self, expired: bool) {
        match &self.auth {
            Auth::Token(issuer) => issuer.set_expired_tokens(expired),
            Auth::Htpasswd { .. } => panic!("testregistry: an htpasswd registry issues no tokens"),
        }
    }

    /// Stops the registry, for "registry unreachable" tests. Its port keeps refusing
    /// connections until the `TestRegistry` is dropped.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
        if self.closed_port.is_none() {
            self.closed_port = reserve_port(self.port);
        }
    }

    /// The registry's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .and_then(|process| fs::read_to_string(&process.log).ok())
            .unwrap_or_default()
    }

    /// The registry's temp dir (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }
}

/// A server that accepts TCP connections and never answers, for timeout tests. It stops
/// when dropped.
pub struct BlackHole {
    pub host: RegistryHost,
    server: tokio::task::JoinHandle<()>,
}

pub async fn black_hole() -> BlackHole {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let server = tokio::spawn(async move {
        // Held, not dropped: a closed connection would be an answer.
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    BlackHole {
        host: RegistryHost::parse(&format!("127.0.0.1:{port}")).expect("a loopback host"),
        server,
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("berth-test-registry-")
        .tempdir()
        .expect("create a temp dir for the registry")
}

fn bcrypt_hash(password: &str) -> String {
    // `$2y$`, the prefix `htpasswd -B` writes.
    bcrypt::hash_with_result(password, BCRYPT_COST)
        .expect("bcrypt a password")
        .format_for_version(bcrypt::Version::TwoY)
}

/// Written whole and renamed into place, so the registry never reads half a file.
fn write_htpasswd(path: &Path, hashes: &BTreeMap<String, String>) {
    let contents: String = hashes
        .iter()
        .map(|(user, hash)| format!("{user}:{hash}\n"))
        .collect();
    let staging = path.with_extension("new");
    fs::write(&staging, contents).expect("write the htpasswd file");
    fs::rename(&staging, path).expect("move the htpasswd file into place");
}

/// Binds the port without listening: the kernel then refuses connections to it.
fn reserve_port(port: u16) -> Option<tokio::net::TcpSocket> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.set_reuseaddr(true).ok()?;
    socket
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .ok()?;
    Some(socket)
}

/// For the helper binaries of the browser tests: waits until standard input closes (the
/// parent went away) or SIGTERM or SIGINT arrives. Listen before starting anything, so that
/// no signal is missed: call [`StopSignals::listen`] first, then `wait`.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub fn listen() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            term: signal(SignalKind::terminate()).expect("listen for SIGTERM"),
            int: signal(SignalKind::interrupt()).expect("listen for SIGINT"),
        }
    }

    pub async fn wait(mut self) {
        // Stdin is read on a thread of its own (a blocking read); its end is the parent going.
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = closed_tx.send(());
        });
        tokio::select! {
            _ = closed_rx => {}
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
