//! The cgroups of containers: where runc puts a release's (or a build step's) processes,
//! and the only dependable way to end them all. A container's processes are in no process
//! group of Berth's (runc detaches them, and `buildah run` leaves them behind when it is
//! killed), but none of them can leave its cgroup: no `CAP_SYS_ADMIN`, a cgroup namespace
//! of its own and a read-only `/sys/fs/cgroup`.
//!
//! Containers go below Berth's own cgroup, `berth/<engine>/app-<id>/<container>`, in
//! every hierarchy (runc makes a relative `--cgroup-parent` relative to its own cgroup,
//! which is Berth's), so that `pids.max` of `app-<id>` binds all of an app's processes.
//! `<engine>` tells apart engines on one host (a test run next to a Berth in service).

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The parent cgroup of every app's containers, below Berth's own cgroup.
const PARENT: &str = "berth";

/// Berth's own cgroup in each hierarchy it can write to.
#[derive(Clone, Debug)]
pub(crate) struct OwnCgroups {
    hierarchies: Vec<Hierarchy>,
    /// `berth/<engine>`.
    parent: PathBuf,
}

#[derive(Clone, Debug)]
struct Hierarchy {
    /// cgroup v1 controllers of the hierarchy (`pids`, `memory`, `name=systemd`); empty
    /// for the cgroup v2 (unified) hierarchy.
    controllers: Vec<String>,
    /// Berth's cgroup in it.
    own: PathBuf,
}

impl OwnCgroups {
    /// Berth's cgroups, read from `/proc/self/cgroup` and the mount table, for the engine
    /// named `engine`. An error says why no container could be confined to a cgroup of
    /// Berth's making.
    pub fn discover(engine: &str) -> Result<Self, String> {
        let parent = Path::new(PARENT).join(engine);
        let membership = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mounts = cgroup_mounts(&mounts);
        let mut hierarchies = Vec::new();
        for line in membership.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let controllers: Vec<String> = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let Some((mount, _)) = mounts.iter().find(|(_, mounted)| *mounted == controllers)
            else {
                continue;
            };
            let own = mount.join(path.trim_start_matches('/'));
            // Only hierarchies Berth can make cgroups in: runc would fail in the others.
            if fs::create_dir_all(own.join(&parent)).is_ok() {
                hierarchies.push(Hierarchy { controllers, own });
            }
        }
        if hierarchies.is_empty() {
            return Err("Berth cannot make cgroups (is /sys/fs/cgroup mounted read-write, and does Berth run as root?)".into());
        }
        Ok(Self {
            hierarchies,
            parent,
        })
    }

    /// The cgroup path (relative to runc's own cgroup) for container `name` of app `app_id`.
    pub fn relative(&self, app_id: i64, name: &str) -> PathBuf {
        self.app(app_id).join(name)
    }

    fn app(&self, app_id: i64) -> PathBuf {
        self.parent.join(format!("app-{app_id}"))
    }

    /// Container `name` of app `app_id`, in every hierarchy.
    pub fn container(&self, app_id: i64, name: &str) -> ContainerCgroup {
        let relative = self.relative(app_id, name);
        ContainerCgroup {
            dirs: self
                .hierarchies
                .iter()
                .map(|h| h.own.join(&relative))
                .collect(),
        }
    }

    /// Caps the number of processes of all containers of app `app_id` together.
    pub fn limit_processes(&self, app_id: i64, pids: u32) -> Result<(), String> {
        let hierarchy = self
            .hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == "pids"))
            .or_else(|| self.hierarchies.iter().find(|h| h.controllers.is_empty()))
            .ok_or("no pids cgroup controller is mounted")?;
        let dir = hierarchy.own.join(self.app(app_id));
        fs::create_dir_all(&dir)
            .and_then(|()| fs::write(dir.join("pids.max"), pids.to_string()))
            .map_err(|e| format!("cannot set it in {}: {e}", dir.display()))
    }

    /// Removes the engine's app cgroups that hold no container any more, and the
    /// engine's own when it is empty (at shutdown: they would pile up otherwise).
    pub fn remove_empty(&self) {
        for hierarchy in &self.hierarchies {
            let engine = hierarchy.own.join(&self.parent);
            if let Ok(apps) = fs::read_dir(&engine) {
                for app in apps.filter_map(Result::ok) {
                    if app.file_type().is_ok_and(|t| t.is_dir()) {
                        // Fails, as it should, while a container's cgroup is inside.
                        let _ = fs::remove_dir(app.path());
                    }
                }
            }
            let _ = fs::remove_dir(&engine);
        }
    }
}

/// `(mount point, controllers)` of every cgroup mount; the unified hierarchy has none.
fn cgroup_mounts(mountinfo: &str) -> Vec<(PathBuf, Vec<String>)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `id parent major:minor root mount-point options … - fstype source super-options`
            let (before, after) = line.split_once(" - ")?;
            let mount_point = before.split(' ').nth(4)?;
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let super_options = after.nth(1).unwrap_or("");
            let controllers = match fstype {
                "cgroup2" => Vec::new(),
                "cgroup" => super_options
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro" && !o.contains("release_agent"))
                    .filter(|o| !matches!(*o, "noprefix" | "clone_children" | "xattr"))
                    .map(str::to_owned)
                    .collect(),
                _ => return None,
            };
            Some((PathBuf::from(unescape_octal(mount_point)), controllers))
        })
        .collect()
}

/// mountinfo writes spaces and the like as `\040`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if let (b'\\', Some(code)) = (bytes[i], code) {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One container's cgroup, in every hierarchy Berth writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContainerCgroup {
    dirs: Vec<PathBuf>,
}

impl ContainerCgroup {
    /// The directories, one per hierarchy (for a record on disk).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// A cgroup recorded by [`ContainerCgroup::dirs`]; `None` unless every directory is
    /// a container cgroup below `/sys/fs/cgroup` (a record is only trusted that far).
    pub fn from_dirs(dirs: Vec<PathBuf>) -> Option<Self> {
        let plausible = |dir: &PathBuf| {
            dir.starts_with("/sys/fs/cgroup")
                && dir
                    .components()
                    .any(|c| c.as_os_str() == std::ffi::OsStr::new(PARENT))
                && !dir
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        };
        (!dirs.is_empty() && dirs.iter().all(plausible)).then_some(Self { dirs })
    }

    /// The processes in the cgroup (host pids), in any hierarchy.
    pub fn members(&self) -> Vec<libc::pid_t> {
        let mut pids: Vec<libc::pid_t> = self
            .dirs
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|procs| {
                procs
                    .lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Sends `signal` to every process in the cgroup; returns how many there were.
    pub fn signal(&self, signal: libc::c_int) -> usize {
        self.signal_each(|_| signal)
    }

    /// Sends each process in the cgroup the signal `choose` picks for it; returns how many
    /// there were.
    pub fn signal_each(&self, choose: impl Fn(libc::pid_t) -> libc::c_int) -> usize {
        let members = self.members();
        for &pid in &members {
            if pid > 1 {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, choose(pid));
                }
            }
        }
        members.len()
    }

    /// SIGKILLs everything in the cgroup, again and again (a process may fork between the
    /// reading and the killing), until it is empty or `patience` is over; then removes
    /// the cgroup. Returns whether it is empty.
    pub async fn kill_and_remove(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            if self.signal(libc::SIGKILL) == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.remove();
        true
    }

    /// Removes the (empty) cgroup directories; runc does not when its container was
    /// killed from outside.
    pub fn remove(&self) {
        for dir in &self.dirs {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::debug!(cgroup = %dir.display(), error = %e, "cannot remove a container cgroup")
                }
            }
        }
    }
}

/// Kills a cgroup's processes when dropped: a build cancelled half-way, or a release
/// whose operation was dropped, must not go on in the background.
pub(crate) struct KillOnDrop(pub Option<ContainerCgroup>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(cgroup) = self.0.take() {
            cgroup.signal(libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_are_read_from_mountinfo() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /mnt/with\\040space rw,relatime - cgroup2 cgroup2 rw";
        let mounts = cgroup_mounts(mountinfo);
        assert_eq!(
            mounts,
            vec![
                (
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                    vec!["cpu".to_owned(), "cpuacct".to_owned()]
                ),
                (
                    PathBuf::from("/sys/fs/cgroup/pids"),
                    vec!["pids".to_owned()]
                ),
                (
                    PathBuf::from("/sys/fs/cgroup/systemd"),
                    vec!["name=systemd".to_owned()]
                ),
                (PathBuf::from("/sys/fs/cgroup/unified"), vec![]),
                (PathBuf::from("/mnt/with space"), vec![]),
            ]
        );
    }

    #[test]
    fn only_container_cgroups_are_trusted_from_a_record() {
        let good = PathBuf::from("/sys/fs/cgroup/pids/berth/app-1/berth-1-2-abc");
        assert!(ContainerCgroup::from_dirs(vec![good.clone()]).is_some());
        assert!(ContainerCgroup::from_dirs(vec![]).is_none());
        assert!(ContainerCgroup::from_dirs(vec![PathBuf::from("/sys/fs/cgroup/pids")]).is_none());
        assert!(ContainerCgroup::from_dirs(vec![
            good,
            PathBuf::from("/sys/fs/cgroup/pids/berth/../../x")
        ])
        .is_none());
        assert!(ContainerCgroup::from_dirs(vec![PathBuf::from("/tmp/berth/app-1/x")]).is_none());
    }
}
