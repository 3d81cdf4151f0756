//! Raw buildah, as someone without Berth would deploy: `buildah pull` (or `buildah build`),
//! `buildah from`, `buildah run` on the host's network, until the container answers. The
//! benchmarks time Berth's deploys against it, in storage of its own with Berth's storage
//! driver, so that neither side finds the other's layers.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, process::Command};

pub struct RawBuildah {
    root: PathBuf,
    runroot: PathBuf,
    driver: String,
    /// Where `buildah login` keeps the registry's credentials (never in a command line).
    auth_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl RawBuildah {
    /// Storage in a temp dir of its own, with `driver` (`vfs` or `overlay`).
    pub fn new(driver: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for raw buildah");
        Self {
            root: dir.path().join("root"),
            runroot: dir.path().join("runroot"),
            driver: driver.to_owned(),
            auth_file: dir.path().join("auth.json"),
            _dir: dir,
        }
    }

    /// `buildah login` to the plain-HTTP registry `host` as `user:password`, the password
    /// on stdin: pulls and builds then use it, as someone deploying by hand would.
    pub async fn log_in(&self, host: &str, creds: (&str, &str)) {
        let mut login = self.buildah();
        login
            .args(["login", "--tls-verify=false", "--authfile"])
            .arg(&self.auth_file)
            .args(["--username", creds.0, "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = login.spawn().expect("buildah runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(creds.1.as_bytes()).await.unwrap();
        drop(stdin);
        let output = child.wait_with_output().await.unwrap();
        assert!(
            output.status.success(),
            "raw buildah login failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn buildah(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--storage-driver")
            .arg(&self.driver)
            .stdin(Stdio::null());
        command
    }

    async fn must(&self, what: &str, mut command: Command) -> String {
        let output = command.output().await.expect("buildah runs");
        assert!(
            output.status.success(),
            "raw buildah {what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Pulls `image` (from a plain-HTTP registry [`RawBuildah::log_in`] logged in to),
    /// starts it and waits until its `/` answers `body`: how long that took. The container
    /// is removed after.
    pub async fn deploy_image(&self, image: &str, body: &str) -> Duration {
        let started = Instant::now();
        let mut pull = self.buildah();
        pull.args(["pull", "--quiet", "--tls-verify=false", "--authfile"])
            .arg(&self.auth_file)
            .arg(image);
        let id = self.must("pull", pull).await;
        self.step("pulled", started);
        self.run_until_serving(&id, body, started).await
    }

    /// Builds `context` (its `Dockerfile`, base images from a plain-HTTP registry
    /// [`RawBuildah::log_in`] logged in to), starts the image and waits until its `/`
    /// answers `body`.
    pub async fn build_and_run(&self, context: &Path, body: &str) -> Duration {
        let started = Instant::now();
        let mut build = self.buildah();
        build
            .args(["build", "--quiet", "--isolation", "oci", "--layers"])
            .args(["--tls-verify=false", "--authfile"])
            .arg(&self.auth_file)
            .arg(context);
        let id = self.must("build", build).await;
        let id = id.lines().last().unwrap_or_default().to_owned();
        self.step("built", started);
        self.run_until_serving(&id, body, started).await
    }

    async fn run_until_serving(&self, image: &str, body: &str, started: Instant) -> Duration {
        let mut from = self.buildah();
        from.args(["from", "--quiet", image]);
        let container = self.must("from", from).await;
        self.step("container made", started);
        let port = free_port();
        let mut run = self.buildah();
        let serve = format!("/bin/busybox httpd -f -p 127.0.0.1:{port} -h /www");
        run.args(["run", "--isolation", "oci", "--network", "host", "--env"])
            .arg(format!("PORT={port}"))
            .arg(&container)
            .arg("--")
            .args(serve.split(' '))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = run.spawn().expect("buildah run starts");
        let url = format!("http://127.0.0.1:{port}/");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let took = loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.text().await.is_ok_and(|text| text.trim() == body) {
                    self.step("answered", started);
                    break started.elapsed();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "raw buildah's container never answered {url}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // buildah run's container outlives a killed buildah, and its command is the init of
        // a PID namespace (deaf to SIGTERM): it is killed by its command line, which its
        // port makes this run's only.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &serve])
            .status()
            .await;
        child.kill().await.ok();
        let mut rm = self.buildah();
        rm.args(["rm", &container]);
        let _ = rm.output().await;
        took
    }
}

impl RawBuildah {
    /// With `BENCH_DEPLOY_STEPS` set, prints how long after `started` a step ended.
    fn step(&self, what: &str, started: Instant) {
        if std::env::var_os("BENCH_DEPLOY_STEPS").is_some() {
            println!(
                "  {:>6} ms  raw buildah: {what}",
                started.elapsed().as_millis()
            );
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The median of some durations, in milliseconds.
pub fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    let middle = times.len() / 2;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if times.len() % 2 == 1 {
        ms(times[middle])
    } else {
        (ms(times[middle - 1]) + ms(times[middle])) / 2.0
    }
}
