//! The local engine, Berth's embedded default platform: it does a platform's work on this
//! host with buildah. A deploy pulls the image by digest (credentials in a private,
//! short-lived auth file) into its team's storage, starts it as a monitored `buildah run`
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
//! - `monitor`, `supervisor`, `process_group`: running, restarting and stopping a
//!   release, under a monitor process that outlives Berth and that the next Berth adopts.
//! - `health`, `ports`, `runtime_log`: probing a release, giving it a port, keeping its
//!   output.

mod auth_file;
pub mod build;
mod buildah;
mod cgroup;
mod confinement;
mod disk;
mod health;
pub mod monitor;
mod network;
mod ports;
mod process_group;
mod redact;
pub mod router;
mod runtime_log;
pub mod runtime_shim;
mod settings;
mod supervisor;

pub use settings::LocalSettings;

use crate::engine::{AppRoute, BuildSpec, BuiltImage};
use crate::{
    engine::{BoxFuture, OperationLog, Platform, PlatformError, ReleaseSpec, RunningRelease, Step},
    registry::BasicCredentials,
};
use auth_file::AuthFile;
use buildah::{Buildah, BuildahError, ImageCommand};
use confinement::Confinement;
use domain::{HealthPath, ImageReference};
use health::Unhealthy;
use monitor::{MonitorSpec, Monitored, ReleaseRecord};
use network::{Network, NetworkTools};
use rand::Rng as _;
use redact::Redactor;
use std::{
    collections::{HashMap, HashSet},
    fs,
    future::Future,
    io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};
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
    /// The apps' stable addresses; why there are none when the router could not start.
    router: Option<Result<router::Router, String>>,
    confinement: Confinement,
    network_tools: NetworkTools,
    state: Mutex<State>,
    /// When [`Platform::unavailable`] last found every tool working (trusted for
    /// [`LocalSettings::tools_check_kept`]).
    tools_worked: Mutex<Option<std::time::Instant>>,
    /// Deploys and builds using each team's image storage: a prune is postponed while any is.
    storage_use: disk::StorageUse,
}

#[derive(Default)]
struct State {
    /// The release that serves each app.
    serving: HashMap<i64, Arc<Release>>,
    /// Releases an app was switched away from, kept running until the switch is recorded
    /// ([`Platform::settle`]).
    replaced: HashMap<i64, Vec<Arc<Release>>>,
    /// Releases an earlier Berth left running that no app has claimed again yet (see
    /// [`Platform::ensure_running`] and [`Platform::reconciled`]).
    adopted: Vec<Arc<Release>>,
    /// Ports of serving releases and of releases being started.
    ports: HashSet<u16>,
}

/// A started release: its monitored process, its network and where it listens.
struct Release {
    team_id: i64,
    app_id: i64,
    release_id: i64,
    port: u16,
    process: Monitored,
    /// `None` on the host's network (`network = "host"`).
    network: Mutex<Option<Network>>,
    /// The app's stable address, when it has one (an adopted release learns it when its
    /// app claims it).
    route: Mutex<Option<AppRoute>>,
}

impl Release {
    fn running(&self, router: Option<&router::Router>) -> RunningRelease {
        let own = format!("http://127.0.0.1:{}/", self.port);
        let (url, port_url) = match (router, self.route()) {
            (Some(router), Some(route)) => router.urls(&self.route_to_self(&route)),
            _ => (own.clone(), own),
        };
        RunningRelease {
            release_id: self.release_id,
            port: self.port,
            url,
            port_url,
        }
    }

    fn route(&self) -> Option<AppRoute> {
        self.route.lock().expect("release route lock").clone()
    }

    /// The router's route of this release's app, to this release.
    fn route_to_self(&self, route: &AppRoute) -> router::Route {
        router::Route {
            app_id: self.app_id,
            app: route.app.clone(),
            team: route.team.clone(),
            port: route.port,
            upstream: Some(self.port),
        }
    }
}

impl LocalEngine {
    /// Prepares the engine's directory, adopts the releases an earlier Berth left serving
    /// (their monitors still run: Berth was stopped, upgraded or killed) and clears the rest
    /// of what it left behind: releases that never passed their health check, builds,
    /// their networks and `berth-*` containers. Succeeds without buildah:
    /// [`Platform::unavailable`] then says why deploys cannot run.
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
            .and_then(|()| private(&settings.monitors_dir()))
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

        let network_tools = NetworkTools {
            slirp4netns: settings.slirp4netns.clone(),
            ip: settings.ip.clone(),
            run_dir: settings.networks_dir(),
        };
        let adopted = adopt(&settings, &network_tools).await;
        let keep: HashSet<String> = adopted
            .iter()
            .map(|release| release.process.container.clone())
            .collect();
        let ended = process_group::end_leftovers(&settings.process_groups_dir(), &keep)
            .await
            .map_err(|e| PlatformError::Other(format!("reading the engine's run state: {e}")))?;
        if ended > 0 {
            tracing::info!(
                ended,
                "ended what an earlier Berth left running half-started"
            );
        }
        if let Err(e) = network::end_leftovers(&network_tools, &keep).await {
            tracing::warn!(error = %e, "cannot clear the networks an earlier Berth left");
        }
        // The files of releases that are gone (a crash between starting one and recording
        // it, or between retiring one and removing them).
        if let Ok(entries) = fs::read_dir(settings.release_files_dir()) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name();
                if !name.to_str().is_some_and(|name| keep.contains(name)) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
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
        let router = match &settings.router {
            Some(router_settings) => Some(
                router::Router::start(router_settings.clone())
                    .await
                    .map_err(|e| e.to_string()),
            ),
            None => None,
        };
        if let Some(Err(why)) = &router {
            tracing::error!(%why, "the router of the apps' stable addresses cannot start");
        }
        let engine = LocalEngine {
            router,
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
            tools_worked: Mutex::new(None),
            storage_use: disk::StorageUse::default(),
        };
        {
            let mut state = engine.state.lock().expect("engine state lock");
            for release in adopted {
                tracing::info!(
                    app = release.app_id,
                    release = release.release_id,
                    port = release.port,
                    "adopted a release that kept serving while Berth was away"
                );
                state.ports.insert(release.port);
                state.adopted.push(Arc::new(release));
            }
        }
        for team_id in engine.teams_with_storage() {
            let buildah = engine.buildah(team_id, 0);
            match buildah.containers().await {
                Ok(containers) => {
                    for container in containers
                        .iter()
                        .filter(|c| c.starts_with(CONTAINER_PREFIX) && !keep.contains(*c))
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

    /// A network of its own for a container named `name`, unless releases share the host's;
    /// a release's outlives Berth (`outlive_berth`), a build's does not.
    async fn network(&self, name: &str, outlive_berth: bool) -> Result<Option<Network>, String> {
        if self.settings.network == "host" {
            return Ok(None);
        }
        Network::start(&self.network_tools, name, outlive_berth)
            .await
            .map(Some)
    }

    /// Where [`Self::network`] puts the network of a container named `name` (none when
    /// releases share the host's): known before it runs.
    fn network_path(&self, name: &str) -> Option<std::path::PathBuf> {
        (self.settings.network != "host").then(|| Network::path_of(name))
    }

    /// Why the engine's programs cannot run (buildah, the OCI runtime, the network's).
    async fn tools_unavailable(&self) -> Option<String> {
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
    }

    pub fn settings(&self) -> &LocalSettings {
        &self.settings
    }

    /// The router, when there is one and it runs.
    fn router(&self) -> Option<&router::Router> {
        self.router.as_ref().and_then(|router| router.as_ref().ok())
    }

    /// Points the app's stable address at `release` (nothing without a router or a route).
    async fn route_to(&self, release: &Release) -> Result<(), String> {
        match (self.router(), release.route()) {
            (Some(router), Some(route)) => router
                .set(release.route_to_self(&route))
                .await
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// Waits (bounded) until the requests the router still sends to `port` have finished:
    /// a release that no route names any more finishes what it was asked before it stops.
    async fn drain(&self, port: u16, log: &dyn OperationLog) {
        if let Some(router) = self.router() {
            let patience = router_drain_timeout(&self.settings);
            if !router.drained(port, patience).await {
                log.line(&format!(
                    "requests to port {port} were still running after {} s; stopping it anyway",
                    patience.as_secs()
                ));
            }
        }
    }

    /// Pulls `image` with `credentials` into `app`'s team storage, streaming buildah's
    /// output to `log`; answers the stored image's id when buildah printed it.
    async fn pull(
        &self,
        app: &crate::engine::AppRef,
        image: &ImageReference,
        pinned: &str,
        credentials: Option<&BasicCredentials>,
        log: &dyn OperationLog,
    ) -> Result<Option<String>, PlatformError> {
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
        staged: Staged,
        log: &dyn OperationLog,
    ) -> Result<RunningRelease, PlatformError> {
        log.step(Step::Start);
        let failed = |e: BuildahError, what: &str| match e {
            BuildahError::NotInstalled(_) => PlatformError::Unavailable(BUILDAH_MISSING.into()),
            e => PlatformError::Start(format!("{what}: {}", e.summary())),
        };
        let buildah = self.buildah(release.app.team_id, release.app.id);
        let Staged {
            container,
            network: staged_network,
            command: known_command,
            storage,
        } = staged;
        // Until the container is made, only this share keeps a prune off its image.
        let storage = match storage {
            Some(share) => share,
            None => self.storage_use.share(release.app.team_id).await,
        };
        // With the shim, the release's environment reaches it in a root-only file, read as
        // the container starts; without it, through `buildah config` once the container is
        // made (a whole buildah start more before the release can start).
        let ready = check_env_names(release).and_then(|()| {
            let port = self.reserve_port(release.preferred_port)?;
            let port_guard = PortGuard { engine: self, port };
            let files = ReleaseFiles::new(self.settings.release_files_dir().join(&container));
            let runtime = match &self.settings.runtime_shim {
                Some(shim) => Some(
                    runtime_shim::write_release_files(
                        &files.dir,
                        shim,
                        &self.settings.runtime,
                        &release.env,
                        port,
                    )
                    .map_err(|e| {
                        PlatformError::Start(format!("cannot write the release's environment: {e}"))
                    })?,
                ),
                None => None,
            };
            Ok((port_guard, files, runtime))
        });
        let (port_guard, mut files, runtime) = match ready {
            Ok(ready) => ready,
            Err(e) => {
                if let Some(Ok(Some(network))) = staged_network {
                    network.stop().await;
                }
                return Err(e);
            }
        };
        let port = port_guard.port;
        // The release's network, its container (made, then given its environment) and
        // reading the image's command do not wait for each other: each is a process of its
        // own, and together they take the longest one's time, not the sum. A deploy has
        // made the network while it pulled, and usually read the command from storage.
        let network = async {
            match staged_network {
                Some(staged) => staged,
                None => self.network(&container, true).await,
            }
        };
        let (network, inspected) = tokio::join!(network, async {
            // The network's path is known before the network runs (it is named after the
            // container), so the container can be made meanwhile.
            let options = self.confinement.options(
                confinement::Confined::Release,
                release.app.id,
                &container,
                self.network_path(&container).as_deref(),
            );
            let command = async {
                match known_command {
                    Some(command) => Ok(Some(command)),
                    None => buildah.image_command(pinned).await,
                }
            };
            let (command, created) = tokio::join!(command, async {
                buildah
                    .create_container(pinned, &container, &options.args)
                    .await
                    .map_err(|e| failed(e, "creating the container failed"))?;
                if runtime.is_some() {
                    return Ok(());
                }
                if let Err(e) = buildah.set_env(&container, &release.env, port).await {
                    buildah.remove_container(&container).await.ok();
                    return Err(failed(e, "setting the release's environment failed"));
                }
                Ok(())
            });
            (options, command, created)
        });
        // `created` is Ok when the container is there with its environment (an error
        // removed it). A container holds its image: a prune leaves it alone from here.
        drop(storage);
        let (options, command, created) = inspected;
        let network =
            network.map_err(|e| PlatformError::Start(format!("the release's network: {e}")));
        let command = command
            .map_err(|e| failed(e, "reading the image's config failed"))
            .and_then(|command| {
                command.ok_or_else(|| {
                    PlatformError::Start(format!(
                        "the image {pinned} is no longer in this server's image storage; \
                         deploy it again to pull it"
                    ))
                })
            })
            .and_then(|command| match command.argv.is_empty() {
                true => Err(PlatformError::Start(
                    "the image names no command to run (it has neither Entrypoint nor Cmd)".into(),
                )),
                false => Ok(command),
            });
        let (network, command) = match (network, command, created) {
            (Ok(network), Ok(command), Ok(())) => (network, command),
            (network, command, created) => {
                if created.is_ok() {
                    buildah.remove_container(&container).await.ok();
                }
                let network_error = match network {
                    Ok(Some(network)) => {
                        network.stop().await;
                        None
                    }
                    Ok(None) => None,
                    Err(e) => Some(e),
                };
                // What the image lacks says most; then the network; then buildah's refusal.
                return Err(command
                    .err()
                    .or(network_error)
                    .or(created.err())
                    .expect("one of the three failed"));
            }
        };
        for what in &options.not_enforced {
            log.line(&format!("this server cannot enforce {what}"));
        }
        let published = match &network {
            Some(network) => network.publish(port, port).await,
            None => Ok(()),
        };
        if let Err(e) = published {
            buildah.remove_container(&container).await.ok();
            if let Some(network) = network {
                network.stop().await;
            }
            return Err(PlatformError::Start(e));
        }

        let cgroup_dirs = options
            .cgroup
            .as_ref()
            .map(|cgroup| cgroup.dirs().to_vec())
            .unwrap_or_default();
        let spec = MonitorSpec {
            container: container.clone(),
            run: buildah.run_invocation(
                &container,
                runtime.as_deref().unwrap_or(&self.confinement.runtime),
                &command.argv,
            ),
            log: self.settings.app_log_path(release.app.id),
            groups_dir: self.settings.process_groups_dir(),
            cgroup: cgroup_dirs.clone(),
            redact: release
                .redact
                .iter()
                .map(|secret| secret.expose().to_owned())
                .collect(),
            note: format!(
                "starting release {} ({pinned}) as {container} on port {port}",
                release.release_id
            ),
        };
        let record = ReleaseRecord {
            container: container.clone(),
            team_id: release.app.team_id,
            app_id: release.app.id,
            release_id: release.release_id,
            port,
            boot: String::new(),
            monitor_pid: 0,
            monitor_started: 0,
            accepted: false,
            stopping: false,
            network: network.as_ref().map(|_| container.clone()),
            cgroup: cgroup_dirs,
        };
        let process = match Monitored::start(
            &self.settings.monitor,
            &spec,
            &self.settings.monitors_dir(),
            record,
        )
        .await
        {
            Ok(process) => process,
            Err(e) => {
                drop(spec);
                buildah.remove_container(&container).await.ok();
                if let Some(network) = network {
                    network.stop().await;
                }
                return Err(PlatformError::Start(format!(
                    "the release's monitor did not start: {e}"
                )));
            }
        };
        drop(spec);
        // From here the release owns its files: retiring it removes them.
        files.keep();
        let mut lines = process.take_lines().expect("a new release's lines");
        let started = Release {
            team_id: release.app.team_id,
            app_id: release.app.id,
            release_id: release.release_id,
            port,
            process,
            network: Mutex::new(network),
            route: Mutex::new(release.app.route.clone()),
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
        while let Ok(line) = lines.try_recv() {
            log.line(&line);
        }
        if let Err(unhealthy) = health {
            self.retire(&started).await;
            // The release's own words; the supervisor's notes are in the runtime log.
            let recent: Vec<String> = started
                .process
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
        // Accepted (and recorded so) before the address points at it: a Berth killed right
        // after the switch must find it to adopt, never end it under the router's feet.
        if let Err(e) = started.process.accept() {
            self.retire(&started).await;
            return Err(PlatformError::Start(format!(
                "recording the new release failed: {e}"
            )));
        }
        if let Err(e) = self.route_to(&started).await {
            self.retire(&started).await;
            return Err(PlatformError::Start(format!(
                "switching the app's address to the new release failed: {e}"
            )));
        }
        let started = Arc::new(started);
        let running = started.running(self.router());
        port_guard.keep();
        let previous = self
            .state
            .lock()
            .expect("engine state lock")
            .serving
            .insert(release.app.id, started);
        log.line(&format!(
            "release {} serves at {}",
            running.release_id, running.url
        ));
        if let Some(previous) = previous {
            // The router sends it nothing new; it stops once the switch is recorded.
            log.line(&format!(
                "release {} (port {}) stops once this is recorded",
                previous.release_id, previous.port
            ));
            self.state
                .lock()
                .expect("engine state lock")
                .replaced
                .entry(release.app.id)
                .or_default()
                .push(previous);
        }
        Ok(running)
    }

    /// Stops the releases app `app_id` was switched away from, after their requests finish.
    async fn settle_app(&self, app_id: i64) {
        let replaced = self
            .state
            .lock()
            .expect("engine state lock")
            .replaced
            .remove(&app_id)
            .unwrap_or_default();
        for previous in replaced {
            self.drain(previous.port, &NoOperation).await;
            tracing::info!(
                app = app_id,
                release = previous.release_id,
                port = previous.port,
                "stopping the release the app was switched away from"
            );
            self.retire(&previous).await;
        }
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
        remove_release_files(&self.settings.release_files_dir().join(container));
    }
}

/// A release's own files (`runtime_shim::write_release_files`): removed when this is
/// dropped, unless [`ReleaseFiles::keep`] handed them to a started release.
struct ReleaseFiles {
    dir: PathBuf,
    keep: bool,
}

impl ReleaseFiles {
    fn new(dir: PathBuf) -> Self {
        Self { dir, keep: false }
    }

    fn keep(&mut self) {
        self.keep = true;
    }
}

/// What a release's start may be given ready: the container's name, the release's network
/// (it does not depend on the image, so a deploy makes it while the image is pulled) and the
/// image's command (a pull says which image it stored, whose config storage holds).
struct Staged {
    container: String,
    /// `None`: not made yet.
    network: Option<Result<Option<Network>, String>>,
    command: Option<ImageCommand>,
    /// The share of the team's storage the pull took, kept until the container is made.
    storage: Option<disk::StorageShare>,
}

impl Staged {
    /// Nothing ready but the container's name.
    fn new(release: &ReleaseSpec) -> Self {
        Self {
            container: format!(
                "{CONTAINER_PREFIX}{}-{}-{}",
                release.app.id,
                release.release_id,
                short_random()
            ),
            network: None,
            command: None,
            storage: None,
        }
    }
}

/// The release's environment names are checked by whoever configured them; one that cannot
/// be an environment variable's name still stops the start.
fn check_env_names(release: &ReleaseSpec) -> Result<(), PlatformError> {
    match release
        .env
        .iter()
        .find(|(name, _)| name.is_empty() || name.contains('='))
    {
        Some((name, _)) => Err(PlatformError::Start(format!(
            "\"{name}\" cannot be an environment variable's name"
        ))),
        None => Ok(()),
    }
}

impl Drop for ReleaseFiles {
    fn drop(&mut self) {
        if !self.keep {
            remove_release_files(&self.dir);
        }
    }
}

fn remove_release_files(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a release's files");
        }
    }
}

impl Platform for LocalEngine {
    fn unavailable(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            if let Some(Err(why)) = &self.router {
                return Some(format!(
                    "the router of the apps' addresses (Caddy) cannot start: {why}"
                ));
            }
            let trusted = self
                .tools_worked
                .lock()
                .expect("tools check lock")
                .is_some_and(|at| at.elapsed() < self.settings.tools_check_kept);
            if trusted {
                return None;
            }
            let why = self.tools_unavailable().await;
            *self.tools_worked.lock().expect("tools check lock") =
                why.is_none().then(std::time::Instant::now);
            why
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
            check_env_names(&release)?;
            log.step(Step::Pull);
            let mut staged = Staged::new(&release);
            staged.storage = Some(self.storage_use.share(release.app.team_id).await);
            let (pulled, network) = tokio::join!(
                self.pull(
                    &release.app,
                    &release.image,
                    &pinned,
                    credentials.as_ref(),
                    log,
                ),
                self.network(&staged.container, true)
            );
            let id = match pulled {
                Ok(id) => id,
                Err(e) => {
                    if let Ok(Some(network)) = network {
                        network.stop().await;
                    }
                    return Err(e);
                }
            };
            staged.network = Some(network);
            staged.command = id.and_then(|id| {
                self.buildah(release.app.team_id, release.app.id)
                    .stored_image_command(&id)
            });
            self.start_and_switch(&release, &pinned, staged, log).await
        })
    }

    fn restart<'a>(
        &'a self,
        release: ReleaseSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>> {
        Box::pin(async move {
            let pinned = pinned(&release.image)?;
            self.start_and_switch(&release, &pinned, Staged::new(&release), log)
                .await
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
            self.start_and_switch(&release, &pinned, Staged::new(&release), log)
                .await
        })
    }

    fn ensure_running(
        &self,
        release: ReleaseSpec,
    ) -> BoxFuture<'_, Result<RunningRelease, PlatformError>> {
        Box::pin(async move {
            let router = self.router();
            let claimed = {
                let mut state = self.state.lock().expect("engine state lock");
                let serving = state
                    .serving
                    .get(&release.app.id)
                    .filter(|serving| serving.release_id == release.release_id)
                    .map(|serving| serving.running(router));
                match serving {
                    Some(running) => Some(running),
                    None => {
                        // A release that kept serving while Berth was away.
                        let found = state.adopted.iter().position(|adopted| {
                            adopted.app_id == release.app.id
                                && adopted.release_id == release.release_id
                        });
                        found.map(|index| {
                            let adopted = state.adopted.swap_remove(index);
                            *adopted.route.lock().expect("release route lock") =
                                release.app.route.clone();
                            let running = adopted.running(router);
                            if let Some(previous) = state.serving.insert(release.app.id, adopted) {
                                state.adopted.push(previous);
                            }
                            running
                        })
                    }
                }
            };
            if let Some(running) = claimed {
                return Ok(running);
            }
            let pinned = pinned(&release.image)?;
            self.start_and_switch(&release, &pinned, Staged::new(&release), &NoOperation)
                .await
        })
    }

    fn settle(&self, app_id: i64) -> BoxFuture<'_, ()> {
        Box::pin(self.settle_app(app_id))
    }

    fn reconciled(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Every app's address to its current release (a Berth killed during a switch may
            // have left one on a release that is no longer current), before anything stops.
            if let Some(router) = self.router() {
                let routes: Vec<router::Route> = self
                    .state
                    .lock()
                    .expect("engine state lock")
                    .serving
                    .values()
                    .filter_map(|serving| {
                        serving.route().map(|route| serving.route_to_self(&route))
                    })
                    .collect();
                if let Err(e) = router.replace_all(routes).await {
                    tracing::error!(error = %e, "cannot restore the apps' routes");
                }
            }
            let strays: Vec<Arc<Release>> = {
                let mut state = self.state.lock().expect("engine state lock");
                let mut strays: Vec<Arc<Release>> = state.adopted.drain(..).collect();
                strays.extend(state.replaced.drain().flat_map(|(_, replaced)| replaced));
                strays
            };
            for stray in strays {
                tracing::info!(
                    app = stray.app_id,
                    release = stray.release_id,
                    "stopping a release an earlier Berth left that is no app's current release"
                );
                self.drain(stray.port, &NoOperation).await;
                self.retire(&stray).await;
            }
        })
    }

    fn running(&self, app_id: i64) -> BoxFuture<'_, Option<RunningRelease>> {
        Box::pin(async move {
            self.state
                .lock()
                .expect("engine state lock")
                .serving
                .get(&app_id)
                .map(|serving| serving.running(self.router()))
        })
    }

    fn route_ports(&self) -> Option<std::ops::RangeInclusive<u16>> {
        self.router
            .is_some()
            .then(|| self.settings.route_ports.clone())
    }

    fn runtime_log(&self, app_id: i64, lines: usize) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let path = self.settings.app_log_path(app_id);
            tokio::task::spawn_blocking(move || runtime_log::read_last(&path, lines))
                .await
                .unwrap_or_default()
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let releases: Vec<Arc<Release>> = {
                let mut state = self.state.lock().expect("engine state lock");
                let mut releases: Vec<Arc<Release>> =
                    state.serving.drain().map(|(_, release)| release).collect();
                releases.append(&mut state.adopted);
                releases.extend(state.replaced.drain().flat_map(|(_, replaced)| replaced));
                releases
            };
            let mut stopping = tokio::task::JoinSet::new();
            for release in releases.iter().cloned() {
                stopping.spawn(async move { release.process.stop().await });
            }
            while stopping.join_next().await.is_some() {}
            for release in &releases {
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
            // Nothing is left to route to.
            if let Some(router) = self.router() {
                router.stop_caddy().await;
            }
        })
    }

    fn detach(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut state = self.state.lock().expect("engine state lock");
            let mut releases: Vec<Arc<Release>> =
                state.serving.drain().map(|(_, release)| release).collect();
            releases.append(&mut state.adopted);
            releases.extend(state.replaced.drain().flat_map(|(_, replaced)| replaced));
            for release in releases {
                release.process.detach();
                if let Some(network) = release.network.lock().expect("release network lock").take()
                {
                    network.detach();
                }
            }
            state.ports.clear();
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

/// The releases an earlier Berth left serving, found from their records: those whose
/// monitor still runs and which had passed their health check (with their network, when
/// they have one of their own). The others are ended here: a release that was still being
/// health-checked belonged to an operation that is marked failed.
async fn adopt(settings: &LocalSettings, tools: &NetworkTools) -> Vec<Release> {
    let dir = settings.monitors_dir();
    let mut adopted = Vec::new();
    for record in ReleaseRecord::all(&dir) {
        if !(record.accepted && !record.stopping && record.monitor_alive()) {
            Monitored::end_recorded(&record, &dir).await;
            continue;
        }
        let network = match &record.network {
            Some(name) => match Network::adopt(tools, name) {
                Some(network) => Some(network),
                None => {
                    // Its network is gone: nothing can reach it any more.
                    tracing::warn!(container = %record.container, "a release's network is gone; ending the release");
                    Monitored::end_recorded(&record, &dir).await;
                    continue;
                }
            },
            None => None,
        };
        adopted.push(Release {
            team_id: record.team_id,
            app_id: record.app_id,
            release_id: record.release_id,
            port: record.port,
            network: Mutex::new(network),
            route: Mutex::new(None),
            process: Monitored::adopt(record, &dir),
        });
    }
    adopted
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

/// How long a release that no route names any more may finish its requests.
fn router_drain_timeout(settings: &LocalSettings) -> std::time::Duration {
    settings
        .router
        .as_ref()
        .map_or(std::time::Duration::ZERO, |router| router.drain_timeout)
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
    } else if lower.contains("unexpected eof") || lower.contains("connection reset") {
        Some("the connection to the registry broke during the pull")
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

/// Writes `contents` to `path` through a new 0600 file renamed into place, so that a crash
/// leaves either the old file or the new one (run records, the router's configurations).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let staging = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&staging)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&staging, path)
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
