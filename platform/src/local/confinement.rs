//! What confines a release's (and a build's `RUN` steps') processes, besides their own
//! network (see `network`): an OCI runtime (runc) with PID, mount, IPC, UTS and cgroup
//! namespaces of their own, so that they see none of the host's processes and files; the
//! capability set container runtimes give, minus what reaches the host; the seccomp
//! profile Debian's containers-common ships; and memory and process limits.
//!
//! Limits are cgroup limits. Memory: `buildah from -m` (the container's own cgroup).
//! Processes: RLIMIT_NPROC does not bind root, so a parent cgroup per app with `pids.max`
//! is made under Berth's own pids cgroup, and each container is put below it
//! (`--cgroup-parent`). Where a controller is missing or not writable (cgroup v2 without
//! delegation, a container without cgroup access), the limit cannot be enforced; the engine
//! says so in the operation's log instead of failing the deploy.

use super::cgroup::{ContainerCgroup, OwnCgroups};
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

/// Capabilities a release loses from the default set of container runtimes: each reaches
/// beyond the release (bypassing file permissions, chroot escapes, raw packets, mounts).
const RELEASE_DROPS: &[&str] = &[
    "CAP_DAC_OVERRIDE",
    "CAP_SYS_CHROOT",
    "CAP_NET_RAW",
    "CAP_SYS_ADMIN",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SYS_PTRACE",
    "CAP_SYS_MODULE",
];
/// What a build's `RUN` steps lose. Package managers and installers expect root to write
/// anywhere in the image and to make device nodes, which is harmless there: the step's
/// mount namespace holds nothing of the host (bind mounts are refused before the build).
const BUILD_DROPS: &[&str] = &[
    "CAP_NET_RAW",
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_SYS_MODULE",
];

/// What is being confined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Confined {
    Release,
    Build,
}

/// How processes are confined; made once from the engine's settings.
#[derive(Clone, Debug)]
pub(crate) struct Confinement {
    /// What buildah runs as its OCI runtime: runc, or the script that runs it through
    /// Berth's shim (see `runtime_shim`).
    pub runtime: PathBuf,
    /// Whether the shim sets no-new-privileges.
    no_new_privileges: bool,
    seccomp_profile: Option<PathBuf>,
    memory: Option<u64>,
    pids: Option<u32>,
    /// Where containers' cgroups go, when Berth can make cgroups.
    pub cgroups: Result<OwnCgroups, String>,
}

/// The confinement flags of one container (for `buildah from` and `buildah build`), and
/// what could not be enforced.
pub(crate) struct ContainerOptions {
    pub args: Vec<OsString>,
    pub not_enforced: Vec<String>,
    /// The container's cgroup, through which its processes are ended.
    pub cgroup: Option<ContainerCgroup>,
}

impl Confinement {
    /// `engine` names the engine's cgroups (see `cgroup`).
    pub fn new(
        engine: &str,
        runtime: PathBuf,
        no_new_privileges: bool,
        seccomp_profile: PathBuf,
        memory: Option<u64>,
        pids: Option<u32>,
    ) -> Self {
        let seccomp_profile = seccomp_profile.is_file().then_some(seccomp_profile);
        Self {
            runtime,
            no_new_privileges,
            seccomp_profile,
            memory,
            pids,
            cgroups: OwnCgroups::discover(engine),
        }
    }

    /// The flags that confine a container of `app`, whose network is `network` (a
    /// namespace's path, or `None` for the host's). Makes the app's parent cgroup when a
    /// process limit is set.
    /// `name` is the container's (or build's) own cgroup below the app's: runc removes it
    /// when the container ends, and the app's limit binds all of them together.
    pub fn options(
        &self,
        what: Confined,
        app_id: i64,
        name: &str,
        network: Option<&Path>,
    ) -> ContainerOptions {
        let drops = match what {
            Confined::Release => RELEASE_DROPS,
            Confined::Build => BUILD_DROPS,
        };
        let mut args: Vec<OsString> = vec![
            "--isolation".into(),
            "oci".into(),
            "--pid".into(),
            "private".into(),
            "--ipc".into(),
            "private".into(),
            "--uts".into(),
            "private".into(),
            "--cgroupns".into(),
            "private".into(),
            "--cap-drop".into(),
            drops.join(",").into(),
        ];
        let mut not_enforced = Vec::new();
        match network {
            Some(path) => {
                let mut ns = OsString::from("ns:");
                ns.push(path);
                args.extend([
                    "--network".into(),
                    ns,
                    "--dns".into(),
                    super::network::DNS.into(),
                ]);
            }
            None => args.extend(["--network".into(), "host".into()]),
        }
        match &self.seccomp_profile {
            Some(profile) => {
                let mut option = OsString::from("seccomp=");
                option.push(profile);
                args.extend(["--security-opt".into(), option]);
            }
            None => not_enforced.push(
                "no seccomp profile (apt install golang-github-containers-common)".to_owned(),
            ),
        }
        if !self.no_new_privileges {
            not_enforced
                .push("no-new-privileges (Berth's OCI runtime shim is not configured)".to_owned());
        }
        if let Some(memory) = self.memory {
            args.extend(["--memory".into(), format!("{memory}b").into()]);
        }
        let cgroup = match &self.cgroups {
            Ok(cgroups) => {
                if let Some(pids) = self.pids {
                    if let Err(why) = cgroups.limit_processes(app_id, pids) {
                        not_enforced.push(format!("the process limit ({why})"));
                    }
                }
                args.extend([
                    "--cgroup-parent".into(),
                    cgroups.relative(app_id, name).into(),
                ]);
                Some(cgroups.container(app_id, name))
            }
            Err(why) => {
                not_enforced.push(format!("the process limit ({why})"));
                None
            }
        };
        ContainerOptions {
            args,
            not_enforced,
            cgroup,
        }
    }
}

/// Why releases cannot be confined here, if they cannot: no OCI runtime, or no cgroups of
/// Berth's making (without them a release's processes could not be stopped).
pub(crate) async fn unavailable(confinement: &Confinement) -> Option<String> {
    if !super::network::succeeds(&confinement.runtime, &["--version"]).await {
        return Some(format!(
            "the OCI runtime {} cannot run; install it (apt install runc)",
            confinement.runtime.display()
        ));
    }
    if let Err(why) = &confinement.cgroups {
        return Some(format!("releases cannot be confined: {why}"));
    }
    None
}
