//! The local engine, Berth's embedded default platform: it does a platform's work on this
//! host with buildah. A deploy pulls the image by digest (credentials in a private,
//! short-lived auth file) into its team's storage, starts it as a supervised `buildah run`
//! under runc — namespaces of its own, a network of its own (slirp4netns) with its `PORT`
//! published on the host's loopback, reduced capabilities, seccomp, memory and process
//! limits — with `PORT` and the app's configuration in its environment, health-checks it
//! over HTTP, and only then stops the release it replaces.
//!
//! - `settings`: where and how releases run.
//! - `confinement`, `network`, `cgroup`: what a release (and a build's `RUN` steps) can
//!   reach, and the cgroups that limit and end its processes.
//! - `runtime_shim`: buildah's OCI runtime, which hardens each container's config
//!   (no-new-privileges) before handing over to runc.
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
mod cgroup;
mod confinement;
mod disk;
mod health;
mod network;
mod ports;
mod process_group;
mod redact;
mod runtime_log;
pub mod runtime_shim;
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
use confinement::Confinement;
use domain::{HealthPath, ImageReference};
use health::Unhealthy;
use network::{Network, NetworkTools};
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
    confinement: Confinement,
    network_tools: NetworkTools,
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

/// A started release: its supervised process, its network and where it listens.
struct Release {
    team_id: i64,
    app_id: i64,
    release_id: i64,
    port: u16,
    process: Supervised,
    /// `None` on the host's network (`network = "host"`).
    network: Mutex<Option<Network>>,
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
            .and_then(|()| private(&settings.networks_dir()))
            .and_then(|()| private(&settings.auth_dir()))
            .and_then(|()| private(&settings.dir.join("tmp")))
            .and_then(|()| private(&settings.storages_dir()))
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
        let network_tools = NetworkTools {
            slirp4netns: settings.slirp4netns.clone(),
            ip: settings.ip.clone(),
            run_dir: settings.networks_dir(),
        };
        if let Err(e) = network::end_leftovers(&network_tools).await {
            tracing::warn!(error = %e, "cannot clear the networks an earlier Berth left");
        }
        // Auth files of a pull that was interrupted by a crash.
        if let Ok(entries) = fs::read_dir(settings.auth_dir()) {
            for entry in entries.filter_map(Result::ok) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }

        // buildah runs the OCI runtime through Berth's shim when there is one.
        let runtime = match &settings.runtime_shim {
            Some(shim) => {
                runtime_shim::write_script(&settings.dir.join("bin"), shim, &settings.runtime)
                    .map_err(|e| {
                        PlatformError::Other(format!(
                            "the local engine cannot write its runtime script in {}: {e}",
                            settings.dir.display()
                        ))
                    })?
            }
            None => settings.runtime.clone(),
        };
        let engine = LocalEngine {
            confinement: Confinement::new(
                &engine_name(&settings.dir),
                runtime,
                settings.runtime_shim.is_some(),
                settings.seccomp_profile.clone(),
                settings.memory_limit,
                settings.pids_limit,
            ),
            network_tools,
            settings,
            state: Mutex::new(State::default()),
        };
        for team_id in engine.teams_with_storage() {
            let buildah = engine.buildah(team_id, 0);
            match buildah.containers().await {
                Ok(containers) => {
                    for container in containers
                        .iter()
                        .filter(|c| c.starts_with(CONTAINER_PREFIX))
                    {
                        if let Err(e) = buildah.remove_container(container).await {
                            tracing::warn!(container, error = %e.summary(), "cannot remove a leftover container");
                        }
                    }
                }
                Err(BuildahError::NotInstalled(_)) => break,
                Err(e) => tracing::warn!(error = %e.summary(), "cannot list leftover containers"),
            }
        }
        Ok(engine)
    }

    /// buildah on `team_id`'s storage, for `app_id` (its temporary directory).
    fn buildah(&self, team_id: i64, app_id: i64) -> Buildah {
        Buildah::new(&self.settings, team_id, app_id)
    }

    /// The teams whose storage is in the engine's directory.
    fn teams_with_storage(&self) -> Vec<i64> {
        fs::read_dir(self.settings.storages_dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| {
                        entry
                            .file_name()
                            .to_str()?
                            .strip_prefix("team-")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A network of its own for a container named `name`, unless releases share the host's.
    async fn network(&self, name: &str) -> Result<Option<Network>, String> {
        if self.settings.network == "host" {
            return Ok(None);
        }
        Network::start(&self.network_tools, name).await.map(Some)
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

    /// Pulls `image` with `credentials` into `app`'s team storage, streaming buildah's
    /// output to `log`.
    async fn pull(
        &self,
        app: &crate::engine::AppRef,
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
            .buildah(app.team_id, app.id)
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
        let buildah = self.buildah(release.app.team_id, release.app.id);
        let command = buildah
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
        let network = self
            .network(&container)
            .await
            .map_err(|e| PlatformError::Start(format!("the release's network: {e}")))?;
        let options = self.confinement.options(
            confinement::Confined::Release,
            release.app.id,
            &container,
            network.as_ref().map(Network::path),
        );
        for what in &options.not_enforced {
            log.line(&format!("this server cannot enforce {what}"));
        }
        let prepared = async {
            buildah
                .create_container(pinned, &container, &options.args)
                .await
                .map_err(|e| failed(e, "creating the container failed"))?;
            if let Err(e) = buildah.set_env(&container, &release.env, port).await {
                buildah.remove_container(&container).await.ok();
                return Err(failed(e, "setting the release's environment failed"));
            }
            if let Some(network) = &network {
                if let Err(e) = network.publish(port, port).await {
                    buildah.remove_container(&container).await.ok();
                    return Err(PlatformError::Start(e));
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = prepared {
            if let Some(network) = network {
                network.stop().await;
            }
            return Err(e);
        }

        let mut redactor = redact::Redactor::new();
        for secret in &release.redact {
            redactor.hide(secret.expose());
        }
        let output = Arc::new(ReleaseOutput::new(self.app_log(release.app.id), redactor));
        let (forward, mut lines) = mpsc::unbounded_channel();
        output.forward_to(Some(forward));
        let (run_container, runtime) = (container.clone(), self.confinement.runtime.clone());
        let argv = command.argv;
        output.note(&format!(
            "starting release {} ({pinned}) as {container} on port {port}",
            release.release_id
        ));
        let process = Supervised::start(Launch {
            container: container.clone(),
            command: Box::new(move || buildah.run_command(&run_container, &runtime, &argv)),
            record: GroupRecord::new(&self.settings.process_groups_dir(), &container),
            output: output.clone(),
            cgroup: options.cgroup.clone(),
        });
        let started = Release {
            team_id: release.app.team_id,
            app_id: release.app.id,
            release_id: release.release_id,
            port,
            process,
            network: Mutex::new(network),
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

    /// Stops a release, removes its container and its network, and frees its port.
    async fn retire(&self, release: &Release) {
        release.process.stop().await;
        self.remove_container(release).await;
        let network = release.network.lock().expect("release network lock").take();
        if let Some(network) = network {
            network.stop().await;
        }
        self.state
            .lock()
            .expect("engine state lock")
            .ports
            .remove(&release.port);
    }

    async fn remove_container(&self, release: &Release) {
        let container = &release.process.container;
        let buildah = self.buildah(release.team_id, release.app_id);
        if let Err(e) = buildah.remove_container(container).await {
            tracing::warn!(container, error = %e.summary(), "cannot remove a release's container");
        }
    }
}

impl Platform for LocalEngine {
    fn unavailable(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            if let Err(e) = Buildah::program(&self.settings).version().await {
                tracing::warn!(error = %e.summary(), "buildah cannot run");
                return Some(BUILDAH_MISSING.to_owned());
            }
            if let Some(why) = confinement::unavailable(&self.confinement).await {
                return Some(why);
            }
            if self.settings.network != "host" {
                if let Some(why) = network::unavailable(&self.network_tools).await {
                    return Some(why);
                }
            }
            None
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
            self.pull(
                &release.app,
                &release.image,
                &pinned,
                credentials.as_ref(),
                log,
            )
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
                self.remove_container(release).await;
                let network = release.network.lock().expect("release network lock").take();
                if let Some(network) = network {
                    network.stop().await;
                }
            }
            self.state.lock().expect("engine state lock").ports.clear();
            if let Ok(cgroups) = &self.confinement.cgroups {
                cgroups.remove_empty();
            }
        })
    }

    fn prune<'a>(
        &'a self,
        app: &'a crate::engine::AppRef,
        keep: Vec<ImageReference>,
    ) -> BoxFuture<'a, Result<crate::engine::PruneReport, PlatformError>> {
        Box::pin(self.prune_images(app, keep))
    }

    fn disk_usage<'a>(
        &'a self,
        app: &'a crate::engine::AppRef,
        images: Vec<ImageReference>,
    ) -> BoxFuture<'a, Result<crate::engine::DiskUsage, PlatformError>> {
        Box::pin(self.app_disk_usage(app, images))
    }

    fn has_image<'a>(
        &'a self,
        app: &'a crate::engine::AppRef,
        image: &'a ImageReference,
    ) -> BoxFuture<'a, Result<bool, PlatformError>> {
        Box::pin(self.image_stored(app, image))
    }
}

impl Drop for LocalEngine {
    /// The engine's empty cgroups go with it (those of containers still ending stay; the
    /// next engine on this directory ends and removes them).
    fn drop(&mut self) {
        if let Ok(cgroups) = &self.confinement.cgroups {
            cgroups.remove_empty();
        }
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

/// Names the engine whose directory is `dir` among the engines of this host (its cgroups):
/// the directory's inode, which stays the same for as long as the directory exists.
fn engine_name(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(dir) {
        Ok(metadata) => format!("engine-{}-{}", metadata.dev(), metadata.ino()),
        Err(_) => "engine".to_owned(),
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
