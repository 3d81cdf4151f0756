//! `buildah run` (and slirp4netns) run in process groups of their own, so that one signal
//! reaches them and their helpers; the release itself, which runc starts outside the group,
//! is reached through its cgroup (see `cgroup`). Each group is recorded on disk
//! while it runs: a Berth killed with SIGKILL cannot stop its releases, and the next Berth
//! must end them before it starts new ones on the same ports.

use super::cgroup::ContainerCgroup;
use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

const RECORD_EXTENSION: &str = "pgid";

/// For `Command::pre_exec`, between fork and exec of a release.
///
/// # Safety
/// Only async-signal-safe calls (setsid, prctl, getppid, kill), as `pre_exec` requires.
pub(crate) unsafe fn detach_and_die_with_berth(berth: libc::pid_t) -> io::Result<()> {
    // A new session (hence group) whose id is the child's pid: signalling `-pgid` reaches
    // the whole release and nothing of Berth.
    if libc::setsid() == -1 {
        return Err(io::Error::last_os_error());
    }
    // If Berth dies, even by SIGKILL, the kernel kills buildah (or slirp4netns); what runc
    // started is ended through its cgroup by the next Berth. (The signal follows the *thread* that spawned the child; Tokio's
    // worker threads live as long as the runtime.)
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
        return Err(io::Error::last_os_error());
    }
    // Berth may have died between fork and prctl; the signal would then never come.
    if libc::getppid() != berth {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    Ok(())
}

/// For `Command::pre_exec` of what outlives Berth (a release's monitor, its network): a
/// session of its own, and no parent-death signal.
///
/// # Safety
/// Only async-signal-safe calls (setsid), as `pre_exec` requires.
pub(crate) unsafe fn detach() -> io::Result<()> {
    if libc::setsid() == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to every process of group `pgid`.
pub(crate) fn signal(pgid: i32, signal: libc::c_int) {
    if pgid > 1 {
        // SAFETY: kill has no memory-safety preconditions; a negative pid names a group.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Whether any process of group `pgid` is still alive (not a zombie: zombies hold no
/// ports, and orphaned ones may wait long for a reaper).
pub(crate) fn has_live_members(pgid: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, after_comm)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = after_comm.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(pgid) && !matches!(state, Some("Z") | Some("X"))
    })
}

/// SIGKILLs group `pgid` and waits (up to `patience`) until none of it is alive.
pub(crate) async fn kill_and_wait(pgid: i32, patience: Duration) {
    signal(pgid, libc::SIGKILL);
    let deadline = Instant::now() + patience;
    while has_live_members(pgid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The on-disk record of one running release's process group:
/// `<dir>/run/releases/<container>.pgid`, holding the group id, the boot it belongs to
/// and the directories of the container's cgroup (its processes are in no group of ours).
pub(crate) struct GroupRecord {
    path: PathBuf,
}

impl GroupRecord {
    pub fn new(dir: &Path, container: &str) -> Self {
        Self {
            path: dir.join(format!("{container}.{RECORD_EXTENSION}")),
        }
    }

    pub fn write(&self, pgid: i32, cgroup: Option<&ContainerCgroup>) -> io::Result<()> {
        let mut contents = format!("{pgid}\n{}\n", boot_id());
        for dir in cgroup.map(ContainerCgroup::dirs).unwrap_or_default() {
            contents.push_str(&dir.to_string_lossy());
            contents.push('\n');
        }
        let staging = self.path.with_extension("new");
        fs::write(&staging, contents)?;
        fs::rename(&staging, &self.path)
    }

    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// The group id recorded in this boot, if any.
    pub fn read_group(&self) -> Option<i32> {
        let contents = fs::read_to_string(&self.path).ok()?;
        let mut lines = contents.lines();
        let pgid = lines.next()?.trim().parse().ok()?;
        (lines.next().map(str::trim) == Some(boot_id().as_str())).then_some(pgid)
    }
}

/// Ends the process groups recorded in `dir` by a Berth that is gone, but those of the
/// releases it adopts (`keep`, by name); returns how many groups were still alive. Records
/// from an earlier boot are only removed: their ids may now belong to unrelated processes.
pub(crate) async fn end_leftovers(
    dir: &Path,
    keep: &std::collections::HashSet<String>,
) -> io::Result<usize> {
    let boot = boot_id();
    let mut ended = 0;
    for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
        let path = entry.path();
        let kept = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .is_some_and(|stem| keep.contains(stem));
        if kept {
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some(RECORD_EXTENSION) {
            let _ = fs::remove_file(&path);
            continue;
        }
        let contents = fs::read_to_string(&path).unwrap_or_default();
        let mut lines = contents.lines();
        let pgid = lines
            .next()
            .and_then(|line| line.trim().parse::<i32>().ok());
        let same_boot = lines.next().map(str::trim) == Some(boot.as_str());
        let cgroup = ContainerCgroup::from_dirs(lines.map(PathBuf::from).collect());
        if let (Some(pgid), true) = (pgid, same_boot) {
            let container_alive = cgroup.as_ref().is_some_and(|c| !c.members().is_empty());
            if has_live_members(pgid) || container_alive {
                tracing::warn!(pgid, record = %path.display(), "ending a release left running by an earlier Berth");
                kill_and_wait(pgid, Duration::from_secs(5)).await;
                ended += 1;
            }
            if let Some(cgroup) = &cgroup {
                cgroup.kill_and_remove(Duration::from_secs(5)).await;
            }
        }
        let _ = fs::remove_file(&path);
    }
    Ok(ended)
}

/// Changes with every boot of the machine.
pub(crate) fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}
