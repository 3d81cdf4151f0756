use domain::RegistryHost;
use std::{ops::RangeInclusive, path::PathBuf, time::Duration};

/// How the local engine runs releases on this host.
#[derive(Clone, Debug)]
pub struct LocalSettings {
    /// The engine's own directory, `<BERTH_DATA_DIR>/engine`: image storage, run state,
    /// runtime logs and the short-lived auth files.
    pub dir: PathBuf,
    /// buildah's storage driver: `vfs` works everywhere (copies whole layers); `overlay`
    /// is faster where the kernel and filesystem allow it.
    pub storage_driver: String,
    /// `private` (the default): every release and every build's `RUN` steps get a network
    /// namespace of their own (slirp4netns), with no way to the host's loopback or to other
    /// releases. `host` shares the host's network with them: for debugging only.
    pub network: String,
    /// The OCI runtime releases and builds run under.
    pub runtime: PathBuf,
    /// The command (program and leading arguments) that runs [`super::runtime_shim::main`]
    /// (`berth oci-runtime`): buildah runs containers through it, and it sets what
    /// buildah cannot (no-new-privileges) before handing over to `runtime`. Without it
    /// containers run as buildah configures them, and deploys say what is not enforced.
    pub runtime_shim: Option<Vec<std::ffi::OsString>>,
    /// The command (program and leading arguments) that runs [`super::monitor::main`]
    /// (`berth release-monitor`): every release runs under such a monitor, which outlives
    /// Berth.
    pub monitor: Vec<std::ffi::OsString>,
    /// The seccomp profile containers run with (Debian's containers-common ships it).
    pub seccomp_profile: PathBuf,
    /// A release's (and a build's) memory limit, in bytes.
    pub memory_limit: Option<u64>,
    /// How many processes a release (and a build) may have at once.
    pub pids_limit: Option<u32>,
    pub slirp4netns: PathBuf,
    /// iproute2's `ip`, which makes the network namespaces.
    pub ip: PathBuf,
    /// Ports handed to releases as `PORT`.
    pub ports: RangeInclusive<u16>,
    /// The router that gives each app a stable address (Caddy); `None` serves each app at
    /// its release's own port only (the platform's tests).
    pub router: Option<super::router::RouterSettings>,
    /// The apps' stable ports, one per app for good (kept in the database).
    pub route_ports: RangeInclusive<u16>,
    /// How long a new release has to answer its health check.
    pub health_timeout: Duration,
    /// Registries reached over plain HTTP or with unverified TLS (`--tls-verify=false`).
    pub insecure_registries: Vec<RegistryHost>,
    /// The buildah binary.
    pub buildah: PathBuf,
    /// How long a passed check of the tools (buildah, the OCI runtime, the network's tools)
    /// is trusted: every deploy asks before it is queued, and a check runs four programs.
    /// A failed check is never kept: the next deploy checks again. A tool removed while
    /// trusted still fails the operation that needs it, with the same explanation.
    pub tools_check_kept: Duration,
}

impl LocalSettings {
    /// The defaults, with the engine's directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            storage_driver: "vfs".into(),
            network: "private".into(),
            runtime: PathBuf::from("runc"),
            runtime_shim: None,
            // This very program, when it is Berth; tests name theirs.
            monitor: vec![
                std::env::current_exe()
                    .unwrap_or_else(|_| PathBuf::from("berth"))
                    .into_os_string(),
                "release-monitor".into(),
            ],
            seccomp_profile: PathBuf::from("/usr/share/containers/seccomp.json"),
            memory_limit: Some(512 << 20),
            pids_limit: Some(512),
            slirp4netns: PathBuf::from("slirp4netns"),
            ip: PathBuf::from("ip"),
            ports: 20000..=20999,
            router: None,
            route_ports: 21000..=21999,
            health_timeout: Duration::from_secs(60),
            insecure_registries: Vec::new(),
            buildah: PathBuf::from("buildah"),
            tools_check_kept: Duration::from_secs(30),
        }
    }

    /// Where auth files live while a pull runs; empty otherwise.
    pub fn auth_dir(&self) -> PathBuf {
        self.dir.join("auth")
    }

    /// Where the process group of each running release is recorded, so that the next
    /// start of Berth can end releases a killed Berth left behind.
    pub fn process_groups_dir(&self) -> PathBuf {
        self.dir.join("run").join("releases")
    }

    /// Each release's own files, in a directory named after its container (root-only):
    /// its runtime script and environment (`runtime_shim::write_release_files`).
    pub fn release_files_dir(&self) -> PathBuf {
        self.dir.join("releases")
    }

    /// Where each release's monitor is recorded, for the next Berth to adopt it.
    pub fn monitors_dir(&self) -> PathBuf {
        self.dir.join("run").join("monitors")
    }

    /// The app's runtime log file.
    pub fn app_log_path(&self, app_id: i64) -> PathBuf {
        self.dir.join("logs").join(format!("app-{app_id}.log"))
    }

    /// The image storage of one team: no other team's build can mount or copy from its
    /// pulled or built images, or share its layer cache.
    pub(crate) fn storage_dir(&self, team_id: i64) -> PathBuf {
        self.storages_dir().join(format!("team-{team_id}"))
    }

    pub(crate) fn storages_dir(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// buildah's run state for one team's storage.
    pub(crate) fn runroot_dir(&self, team_id: i64) -> PathBuf {
        self.dir.join("run").join(format!("team-{team_id}"))
    }

    /// Where slirp4netns's sockets and process records live.
    pub fn networks_dir(&self) -> PathBuf {
        self.dir.join("run").join("networks")
    }

    /// A temporary directory per app: pulls stage layers there, and a build's
    /// `RUN --mount=type=cache` keeps its cache there (buildah puts it under TMPDIR), so
    /// that no other app's build shares it.
    pub(crate) fn tmp_dir(&self, app_id: i64) -> PathBuf {
        self.dir.join("tmp").join(format!("app-{app_id}"))
    }
}
