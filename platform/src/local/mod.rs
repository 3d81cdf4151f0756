//! The local engine, Berth's embedded default platform: it does a platform's work on this
//! host with buildah. A deploy pulls the image by digest (credentials in a private,
//! short-lived auth file), starts it as a supervised `buildah run` with `PORT` and the
//! app's configuration in its environment, health-checks it over HTTP, and only then stops
//! the release it replaces.
//!
//! - `settings`: where and how releases run.
//! - `buildah`: every buildah command, and how config values reach a container without
//!   passing through argv.
//! - `auth_file`: the credentials of one pull or build.
//! - `build`: Dockerfile deploys, `buildah build` into the engine's storage.
//! - `supervisor`, `process_group`: running, restarting and stopping a release.
//! - `health`, `ports`, `runtime_log`: probing a release, giving it a port, keeping its
//!   output.

mod auth_file;
pub mod build;
mod buildah;
mod health;
mod ports;
mod process_group;
mod redact;
mod runtime_log;
mod settings;
mod supervisor;

pub use settings::LocalSettings;

use crate::engine::{BuildSpec, BuiltImage};
use crate::{
    engine::{BoxFuture, OperationLog, Platform, PlatformError, ReleaseSpec, RunningRelease, Step},
    registry::BasicCredentials,
};
use auth_file::AuthFile;
use buildah::{Buildah, BuildahError};
use domain::{HealthPath, ImageReference};
use health::Unhealthy;
use process_group::GroupRecord;
use rand::Rng as _;
use redact::Redactor;
use runtime_log::RuntimeLog;
use std::{
    collections::{HashMap, HashSet},
    fs,
    future::Future,
    io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::Path,
    sync::{Arc, Mutex},
};
use supervisor::{Launch, ReleaseOutput, Supervised};
use tokio::sync::mpsc;

/// Why deploys cannot run here, in the words the deploy form shows.
pub const BUILDAH_MISSING: &str =
    "buildah is not installed on this server (apt install buildah); deploys cannot run here";
/// Containers the engine creates are named `berth-<app id>-<release id>-<random>`.
const CONTAINER_PREFIX: &str = "berth-";

/// Runs releases on this host with buildah. Create it with [`LocalEngine::new`] at
/// start-up; it then serves as `Arc<dyn Platform>`. Call [`Platform::shutdown`] before
/// exiting: dropping the engine kills its releases without a grace period.
pub struct LocalEngine {
    settings: LocalSettings,
    buildah: Buildah,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The release that serves each app.
    serving: HashMap<i64, Arc<Release>>,
    /// Ports of serving releases and of releases being started.
    ports: HashSet<u16>,
    runtime_logs: HashMap<i64, Arc<RuntimeLog>>,
}

/// A started release: its supervised process and where it listens.
struct Release {
    release_id: i64,
    port: u16,
    process: Supervised,
}

impl Release {
    fn running(&self) -> RunningRelease {
        RunningRelease {
            release_id: self.release_id,
            port: self.port,
            url: format!("http://127.0.0.1:{}/", self.port),
        }
    }
}

impl LocalEngine {
    /// Prepares the engine's directory and clears what an earlier Berth left behind: it
    /// ends the process groups of releases it recorded (a Berth killed with SIGKILL leaves
    /// them holding their ports) and removes its `berth-*` containers. Succeeds without
    /// buildah: [`Platform::unavailable`] then says why deploys cannot run.
    pub async fn new(settings: LocalSettings) -> Result<LocalEngine, PlatformError> {
        let private = |path: &Path| -> io::Result<()> {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        };
        let prepared = private(&settings.dir)
            .and_then(|()| private(&settings.process_groups_dir()))
            .and_then(|()| private(&settings.auth_dir()))
            .and_then(|()| private(&settings.tmp_dir()))
            .and_then(|()| fs::create_dir_all(settings.dir.join("logs")));
        prepared.map_err(|e| {
            PlatformError::Other(format!(
                "the local engine cannot use {}: {e}",
                settings.dir.display()
            ))
        })?;

        let ended = process_group::end_leftovers(&settings.process_groups_dir())
            .await
            .map_err(|e| PlatformError::Other(format!("reading the engine's run state: {e}")))?;
        if ended > 0 {
            tracing::info!(ended, "ended releases left running by an earlier Berth");
        }
        // Auth files of a pull that was interrupted by a crash.
        if let Ok(entries) = fs::read_dir(settings.auth_dir()) {
            for entry in entries.filter_map(Result::ok) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }

        let engine = LocalEngine {
            buildah: Buildah::new(&settings),
            settings,
            state: Mutex::new(State::default()),
        };
        match engine.buildah.containers().await {
            Ok(containers) => {
                for container in containers
                    .iter()
                    .filter(|c| c.starts_with(CONTAINER_PREFIX))
                {
                    if let Err(e) = engine.buildah.remove_container(container).await {
                        tracing::warn!(container, error = %e.summary(), "cannot remove a leftover container");
                    }
                }
            }
            Err(BuildahError::NotInstalled(_)) => {}
            Err(e) => tracing::warn!(error = %e.summary(), "cannot list leftover containers"),
        }
        Ok(engine)
    }

    pub fn settings(&self) -> &LocalSettings {
        &self.settings
    }

    fn app_log(&self, app_id: i64) -> Arc<RuntimeLog> {
        let mut state = self.state.lock().expect("engine state lock");
        state
            .runtime_logs
            .entry(app_id)
            .or_insert_with(|| Arc::new(RuntimeLog::open(&self.settings.app_log_path(app_id))))
            .clone()
    }

    /// Pulls `image` with `credentials`, streaming buildah's output to `log`.
    async fn pull(
        &self,
        image: &ImageReference,
        pinned: &str,
        credentials: Option<&BasicCredentials>,
        log: &dyn OperationLog,
    ) -> Result<(), PlatformError> {
        let auth_dir = self.settings.auth_dir();
        let auth_file = match credentials {
            Some(credentials) => AuthFile::write(&auth_dir, image.registry(), credentials),
            None => AuthFile::anonymous(&auth_dir),
        }
        .map_err(|e| PlatformError::Other(format!("cannot write the pull's auth file: {e}")))?;
        let mut redactor = Redactor::new();
        if let Some(credentials) = credentials {
            redactor.hide(credentials.secret.expose());
        }
        redactor.hide(auth_file.encoded_secret());

        let tls_verify = !self.settings.insecure_registries.contains(image.registry());
        log.line(&format!(
            "pulling {pinned}{}",
            match credentials {
                Some(credentials) => format!(" as {}", credentials.username),
                None => String::new(),
            }
        ));
        let pulled = self
            .buildah
            .pull(
                pinned,
                auth_file.path(),
                tls_verify,
                &redactor,
                &mut |line| log.line(line),
            )
            .await;
        drop(auth_file);
        pulled.map_err(|e| match e {
            BuildahError::NotInstalled(_) => PlatformError::Unavailable(BUILDAH_MISSING.into()),
            e => PlatformError::Pull(explain_pull_failure(&e.summary())),
        })
    }

    /// Starts `release` from its image in local storage, health-checks it and makes it the
    /// app's serving release, stopping the one it replaces. On failure nothing of the new
    /// release is left and the serving one is untouched.
    async fn start_and_switch(
        &self,
        release: &ReleaseSpec,
        pinned: &str,
        log: &dyn OperationLog,
    ) -> Result<RunningRelease, PlatformError> {
        log.step(Step::Start);
        let failed = |e: BuildahError, what: &str| match e {
            BuildahError::NotInstalled(_) => PlatformError::Unavailable(BUILDAH_MISSING.into()),
            e => PlatformError::Start(format!("{what}: {}", e.summary())),
        };
        let command = self
            .buildah
            .image_command(pinned)
            .await
            .map_err(|e| failed(e, "reading the image's config failed"))?
            .ok_or_else(|| {
                PlatformError::Start(format!(
                    "the image {pinned} is no longer in this server's image storage; \
                     deploy it again to pull it"
                ))
            })?;
        if command.argv.is_empty() {
            return Err(PlatformError::Start(
                "the image names no command to run (it has neither Entrypoint nor Cmd)".into(),
            ));
        }
        if let Some((name, _)) = release
            .env
            .iter()
            .find(|(name, _)| name.is_empty() || name.contains('='))
        {
            return Err(PlatformError::Start(format!(
                "\"{name}\" cannot be an environment variable's name"
            )));
        }

        let port = self.reserve_port(release.preferred_port)?;
        let port_guard = PortGuard { engine: self, port };
        let container = format!(
            "{CONTAINER_PREFIX}{}-{}-{}",
            release.app.id,
            release.release_id,
            short_random()
        );
        self.buildah
            .create_container(pinned, &container)
            .await
            .map_err(|e| failed(e, "creating the container failed"))?;
        if let Err(e) = self.buildah.set_env(&container, &release.env, port).await {
            self.remove_container(&container).await;
            return Err(failed(e, "setting the release's environment failed"));
        }

        let output = Arc::new(ReleaseOutput::new(self.app_log(release.app.id)));
        let (forward, mut lines) = mpsc::unbounded_channel();
        output.forward_to(Some(forward));
        let buildah = self.buildah.clone();
        let (run_container, isolation, network) = (
            container.clone(),
            self.settings.isolation.clone(),
            self.settings.network.clone(),
        );
        let argv = command.argv;
        output.note(&format!(
            "starting release {} ({pinned}) as {container} on port {port}",
            release.release_id
        ));
        let process = Supervised::start(Launch {
            container: container.clone(),
            command: Box::new(move || {
                buildah.run_command(&run_container, &isolation, &network, &argv)
            }),
            record: GroupRecord::new(&self.settings.process_groups_dir(), &container),
            output: output.clone(),
        });
        let started = Release {
            release_id: release.release_id,
            port,
            process,
        };

        log.step(Step::HealthCheck);
        let path = release.health_path.as_ref().map_or("/", HealthPath::as_str);
        let slash = if path.starts_with('/') { "" } else { "/" };
        let url = format!("http://127.0.0.1:{port}{slash}{path}");
        let exits = started.process.exits();
        let health = forwarding(
            &mut lines,
            log,
            health::wait_until_serving(&url, self.settings.health_timeout, exits),
        )
        .await;
        output.forward_to(None);
        while let Ok(line) = lines.try_recv() {
            log.line(&line);
        }
        if let Err(unhealthy) = health {
            self.retire(&started).await;
            // The release's own words; the supervisor's notes are in the runtime log.
            let recent: Vec<String> = output
                .recent()
                .into_iter()
                .filter(|line| !line.starts_with("[berth]"))
                .collect();
            let recent = recent.join("\n");
            let recent = if recent.is_empty() {
                String::from("it printed nothing")
            } else {
                format!("its last output:\n{recent}")
            };
            return Err(match unhealthy {
                Unhealthy::Exited(how) => PlatformError::HealthCheck(format!(
                    "the release {how} before answering on port {port}; {recent}"
                )),
                Unhealthy::TimedOut(last_seen) => PlatformError::HealthCheck(format!(
                    "the release did not answer GET {url} below 500 within {} s ({last_seen}); {recent}",
                    self.settings.health_timeout.as_secs()
                )),
            });
        }

        log.step(Step::Switch);
        started.process.accept();
        let started = Arc::new(started);
        let running = started.running();
        port_guard.keep();
        let previous = self
            .state
            .lock()
            .expect("engine state lock")
            .serving
            .insert(release.app.id, started);
        if let Some(previous) = previous {
            log.line(&format!(
                "stopping release {} (port {})",
                previous.release_id, previous.port
            ));
            self.retire(&previous).await;
        }
        log.line(&format!(
            "release {} serves at {}",
            running.release_id, running.url
        ));
        Ok(running)
    }

    fn reserve_port(&self, preferred: Option<u16>) -> Result<u16, PlatformError> {
        let mut state = self.state.lock().expect("engine state lock");
        let port =
            ports::choose(&self.settings.ports, preferred, &state.ports).ok_or_else(|| {
                PlatformError::Start(format!(
                    "no free port in {}-{} for the release",
                    self.settings.ports.start(),
                    self.settings.ports.end()
                ))
            })?;
        state.ports.insert(port);
        Ok(port)
    }

    /// Stops a release, removes its container and frees its port.
    async fn retire(&self, release: &Release) {
        release.process.stop().await;
        self.remove_container(&release.process.container).await;
        self.state
            .lock()
            .expect("engine state lock")
            .ports
            .remove(&release.port);
    }

    async fn remove_container(&self, container: &str) {
        if let Err(e) = self.buildah.remove_container(container).await {
            tracing::warn!(container, error = %e.summary(), "cannot remove a release's container");
        }
    }
}

impl Platform for LocalEngine {
    fn unavailable(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            match self.buildah.version().await {
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e.summary(), "buildah cannot run");
                    Some(BUILDAH_MISSING.to_owned())
                }
            }
        })
    }

    fn deploy<'a>(
        &'a self,
        release: ReleaseSpec,
        credentials: Option<BasicCredentials>,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>> {
        Box::pin(async move {
            let pinned = pinned(&release.image)?;
            log.step(Step::Pull);
            self.pull(&release.image, &pinned, credentials.as_ref(), log)
                .await?;
            self.start_and_switch(&release, &pinned, log).await
        })
    }

    fn restart<'a>(
        &'a self,
        release: ReleaseSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>> {
        Box::pin(async move {
            let pinned = pinned(&release.image)?;
            self.start_and_switch(&release, &pinned, log).await
        })
    }

    fn build<'a>(
        &'a self,
        spec: BuildSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<BuiltImage, PlatformError>> {
        Box::pin(async move { self.build_image(&spec, log).await })
    }

    fn deploy_built<'a>(
        &'a self,
        release: ReleaseSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>> {
        Box::pin(async move {
            // A built image is in local storage under `localhost/berth/app-N@sha256:…`
            // (buildah finds it by repository and digest, like a pulled one), so restarts
            // and `ensure_running` start it the same way.
            if release.image.digest().is_none() {
                return Err(PlatformError::Start(format!(
                    "{} is not pinned to a digest; deploy the built image's pinned reference",
                    release.image
                )));
            }
            let pinned = pinned(&release.image)?;
            self.start_and_switch(&release, &pinned, log).await
        })
    }

    fn ensure_running(
        &self,
        release: ReleaseSpec,
    ) -> BoxFuture<'_, Result<RunningRelease, PlatformError>> {
        Box::pin(async move {
            let serving = self
                .state
                .lock()
                .expect("engine state lock")
                .serving
                .get(&release.app.id)
                .filter(|serving| serving.release_id == release.release_id)
                .map(|serving| serving.running());
            if let Some(running) = serving {
                return Ok(running);
            }
            let pinned = pinned(&release.image)?;
            self.start_and_switch(&release, &pinned, &NoOperation).await
        })
    }

    fn running(&self, app_id: i64) -> BoxFuture<'_, Option<RunningRelease>> {
        Box::pin(async move {
            self.state
                .lock()
                .expect("engine state lock")
                .serving
                .get(&app_id)
                .map(|serving| serving.running())
        })
    }

    fn runtime_log(&self, app_id: i64, lines: usize) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move { self.app_log(app_id).last(lines) })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let serving: Vec<Arc<Release>> = self
                .state
                .lock()
                .expect("engine state lock")
                .serving
                .drain()
                .map(|(_, release)| release)
                .collect();
            let mut stopping = tokio::task::JoinSet::new();
            for release in serving.iter().cloned() {
                stopping.spawn(async move { release.process.stop().await });
            }
            while stopping.join_next().await.is_some() {}
            for release in &serving {
                self.remove_container(&release.process.container).await;
            }
            self.state.lock().expect("engine state lock").ports.clear();
        })
    }
}

/// Frees a reserved port unless the release that holds it starts serving.
struct PortGuard<'a> {
    engine: &'a LocalEngine,
    port: u16,
}

impl PortGuard<'_> {
    /// The port now belongs to a serving release.
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for PortGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.engine.state.lock() {
            state.ports.remove(&self.port);
        }
    }
}

/// Where start-up reconciliation reports: nowhere, there is no operation.
struct NoOperation;

impl OperationLog for NoOperation {
    fn step(&self, _step: Step) {}
    fn line(&self, _line: &str) {}
}

/// `host/repo@sha256:…`: what runs is what was verified, and c/image does not take a tag
/// and a digest together.
fn pinned(image: &ImageReference) -> Result<String, PlatformError> {
    let digest = image.digest().ok_or_else(|| {
        PlatformError::Pull(format!(
            "{image} is not pinned to a digest; resolve it before deploying"
        ))
    })?;
    Ok(format!(
        "{}/{}@{digest}",
        image.registry(),
        image.repository()
    ))
}

/// buildah's message, led by what it means for the user when that is clear.
fn explain_pull_failure(summary: &str) -> String {
    let lower = summary.to_ascii_lowercase();
    let meaning = if lower.contains("unauthorized") || lower.contains("authentication required") {
        Some("the registry refused the credentials")
    } else if lower.contains("denied") {
        Some("the credentials may not pull this image")
    } else if lower.contains("manifest unknown") || lower.contains("not found") {
        Some("the registry has no such image")
    } else if lower.contains("connection refused")
        || lower.contains("no such host")
        || lower.contains("i/o timeout")
    {
        Some("the registry cannot be reached")
    } else {
        None
    };
    match meaning {
        Some(meaning) => format!("{meaning} ({summary})"),
        None => summary.to_owned(),
    }
}

/// Tells apart the containers of one release started several times (restarts).
fn short_random() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Runs `work`, passing `lines` to `log` as they come.
async fn forwarding<T>(
    lines: &mut mpsc::UnboundedReceiver<String>,
    log: &dyn OperationLog,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            Some(line) = lines.recv() => log.line(&line),
            result = &mut work => return result,
        }
    }
}
