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
    /// `buildah run --network`: `host` lets the release listen on the host's loopback.
    pub network: String,
    /// `buildah run --isolation`: `chroot` needs no user namespaces or cgroups.
    pub isolation: String,
    /// Ports handed to releases as `PORT`.
    pub ports: RangeInclusive<u16>,
    /// How long a new release has to answer its health check.
    pub health_timeout: Duration,
    /// Registries reached over plain HTTP or with unverified TLS (`--tls-verify=false`).
    pub insecure_registries: Vec<RegistryHost>,
    /// The buildah binary.
    pub buildah: PathBuf,
}

impl LocalSettings {
    /// The defaults, with the engine's directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            storage_driver: "vfs".into(),
            network: "host".into(),
            isolation: "chroot".into(),
            ports: 20000..=20999,
            health_timeout: Duration::from_secs(60),
            insecure_registries: Vec::new(),
            buildah: PathBuf::from("buildah"),
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

    /// The app's runtime log file.
    pub fn app_log_path(&self, app_id: i64) -> PathBuf {
        self.dir.join("logs").join(format!("app-{app_id}.log"))
    }

    pub(crate) fn storage_dir(&self) -> PathBuf {
        self.dir.join("storage")
    }

    pub(crate) fn runroot_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }
}
