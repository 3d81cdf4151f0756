//! A throwaway PostgreSQL cluster, started once per test process when no server is named.
//!
//! The cluster lives in a temp dir (`berth-test-pg-<pid>-XXXXXX`: data directory, socket,
//! log), in `/dev/shm` when there is one, and listens on a free port of 127.0.0.1 with trust
//! authentication for the role `postgres`. Durability is switched off (`fsync`,
//! `synchronous_commit`, `full_page_writes`): nothing in it outlives the process.
//!
//! Stopping it: Rust never drops statics, so a `Drop` on the `OnceLock` below would never
//! run. Instead, once the cluster is up, a `libc::atexit` handler is registered; it runs
//! when the test binary returns from `main` or calls `std::process::exit` (which libtest does
//! when a test failed), and runs `pg_ctl stop -m immediate` and deletes the directory. It does
//! not run when the process is killed (Ctrl-C, a CI timeout): the postmaster, started in
//! its own session by `pg_ctl`, would then outlive it. So each start first sweeps away
//! clusters left by processes that no longer exist.
//!
//! `initdb` and `pg_ctl` refuse to run as root. As root (this machine, CI containers) they
//! run as the OS user `postgres` through `runuser`, in a temp dir handed over to that user.

use std::{
    ffi::CString,
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

const DIR_PREFIX: &str = "berth-test-pg-";
const OS_USER_WHEN_ROOT: &str = "postgres";
const START_ATTEMPTS: u32 = 5;

struct Cluster {
    root: PathBuf,
    pg_ctl: PathBuf,
    os_user: Option<&'static str>,
    url: String,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The admin URL of this process's cluster, starting it on first use. A failure is kept,
/// so that every PostgreSQL test reports it instead of trying again.
pub(crate) fn server_url() -> Result<&'static str, &'static str> {
    let cluster = CLUSTER.get_or_init(|| {
        let cluster = Cluster::start()?;
        // SAFETY: registers a plain `extern "C" fn` with no captured state.
        if unsafe { libc::atexit(stop_at_exit) } != 0 {
            eprintln!(
                "testdb: could not register the cluster's clean-up; stop it with \
                 `pg_ctl stop -D {}/data`",
                cluster.root.display()
            );
        }
        Ok(cluster)
    });
    match cluster {
        Ok(cluster) => Ok(&cluster.url),
        Err(why) => Err(why),
    }
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(cluster)) = CLUSTER.get() {
        cluster.stop();
    }
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        let began = Instant::now();
        let (initdb, pg_ctl) = find_binaries()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let os_user = (unsafe { libc::geteuid() } == 0).then_some(OS_USER_WHEN_ROOT);
        remove_stale_clusters();

        let root = cluster_dir()?;
        let cluster = Cluster {
            root,
            pg_ctl,
            os_user,
            url: String::new(),
        };
        match cluster.init_and_start(&initdb) {
            Ok(port) => {
                let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                if std::env::var_os("TESTDB_VERBOSE").is_some() {
                    eprintln!(
                        "testdb: started a PostgreSQL cluster at {url} in {} in {:.1?}",
                        cluster.root.display(),
                        began.elapsed()
                    );
                }
                Ok(Cluster { url, ..cluster })
            }
            Err(why) => {
                cluster.stop();
                Err(why)
            }
        }
    }

    fn init_and_start(&self, initdb: &Path) -> Result<u16, String> {
        if let Some(user) = self.os_user {
            let (uid, gid) = os_user_ids(user)?;
            std::os::unix::fs::chown(&self.root, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} over to {user}: {e}", self.root.display()))?;
        }
        let data = self.root.join("data");
        run(self
            .command(initdb)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .args(["--no-locale", "--no-sync"]))
        .map_err(|e| self.with_hint(e))?;

        let log = self.root.join("postgres.log");
        let mut last_error = String::new();
        // The port is free when chosen but may be taken before the server binds it (another
        // test process doing the same), hence the retries.
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                self.root.display()
            );
            let started = run(self
                .command(&self.pg_ctl)
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(options));
            match started {
                Ok(()) => return Ok(port),
                Err(why) => {
                    let server_log = fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = server_log.lines().rev().take(20).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    last_error = format!("{why}\nserver log:\n{}", tail.join("\n"));
                }
            }
        }
        Err(last_error)
    }

    /// Stops the server (if it runs) and deletes the directory. Never panics: it runs from
    /// `atexit`, where a panic would abort.
    fn stop(&self) {
        if self.root.join("data/postmaster.pid").exists() {
            let _ = self
                .command(&self.pg_ctl)
                .args(["stop", "-w", "-m", "immediate", "-D"])
                .arg(self.root.join("data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(&self.root);
    }

    /// `program`, run as the cluster's OS user when that is not us.
    fn command(&self, program: &Path) -> Command {
        let mut command = match self.os_user {
            None => Command::new(program),
            Some(user) => {
                let mut command = Command::new(runuser());
                command.args(["-u", user, "--"]).arg(program);
                command
            }
        };
        // The postgres user may not be allowed into the test's working directory.
        command.current_dir("/").stdin(Stdio::null());
        command
    }

    fn with_hint(&self, error: String) -> String {
        match self.os_user {
            Some(user) => format!(
                "{error}\n(running as root, the cluster runs as the OS user {user}, who must \
                 be able to reach {})",
                self.root.display()
            ),
            None => error,
        }
    }
}

/// Where clusters live: in memory when `/dev/shm` has room (nothing in the cluster needs to
/// survive, and on this machine's disk creating a database takes ~300 ms instead of
/// ~20 ms), otherwise in the temp dir.
fn parent_dirs() -> [PathBuf; 2] {
    [PathBuf::from("/dev/shm"), std::env::temp_dir()]
}

/// A cluster takes ~40 MB and each open test database ~8 MB more; Docker gives containers
/// a 64 MB `/dev/shm` unless told otherwise, which is too small.
const ROOM_NEEDED: u64 = 1 << 30;

fn has_room(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain old data, for which all zeroes is a valid value; `path` is a
    // valid C string and `stats` a properly sized, writable struct.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return false;
    }
    (stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64) >= ROOM_NEEDED
}

fn cluster_dir() -> Result<PathBuf, String> {
    let mut failures = Vec::new();
    let [in_memory, temp] = parent_dirs();
    let parents = if has_room(&in_memory) {
        vec![in_memory, temp]
    } else {
        vec![temp]
    };
    for parent in parents {
        let created = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in(&parent);
        match created {
            Ok(dir) => return Ok(dir.keep()),
            Err(e) => failures.push(format!("{}: {e}", parent.display())),
        }
    }
    Err(format!(
        "cannot create a directory for the cluster ({})",
        failures.join("; ")
    ))
}

/// `initdb` and `pg_ctl` from PATH, or else from Debian's versioned directories (which are
/// not on PATH), newest version first.
fn find_binaries() -> Result<(PathBuf, PathBuf), String> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().unwrap_or(0);
            (version, entry.path().join("bin"))
        })
        .collect();
    debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .into_iter()
        .chain(debian.into_iter().map(|(_, dir)| dir))
        .map(|dir| (dir.join("initdb"), dir.join("pg_ctl")))
        .find(|(initdb, pg_ctl)| initdb.is_file() && pg_ctl.is_file())
        .ok_or_else(|| {
            "initdb/pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin \
             (Debian/Ubuntu: apt-get install postgresql)"
                .to_owned()
        })
}

fn runuser() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

fn os_user_ids(user: &str) -> Result<(u32, u32), String> {
    let name = CString::new(user).map_err(|e| e.to_string())?;
    // SAFETY: `name` is a valid C string; getpwnam returns NULL or a pointer to a static
    // entry, which is read at once (this runs once, inside the OnceLock's initialisation).
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(format!(
            "running as root, the cluster needs the OS user {user} (initdb refuses root), \
             and there is none; install PostgreSQL's server package, which creates it"
        ));
    }
    // SAFETY: checked non-null above.
    let entry = unsafe { &*entry };
    Ok((entry.pw_uid, entry.pw_gid))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Deletes the clusters of test processes that are gone (killed before their `atexit` ran),
/// first ending their servers, which would otherwise run on for good.
fn remove_stale_clusters() {
    let entries = parent_dirs()
        .into_iter()
        .filter_map(|parent| fs::read_dir(parent).ok())
        .flatten()
        .flatten();
    for entry in entries {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
            .filter(|pid| *pid > 0)
        else {
            continue;
        };
        if process_exists(owner) {
            continue;
        }
        let dir = entry.path();
        let data = dir.join("data");
        if let Some(postmaster) = postmaster_of(&data) {
            // SIGQUIT is PostgreSQL's immediate shutdown, what `pg_ctl stop -m immediate` sends.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(postmaster, libc::SIGQUIT) };
            // Not `process_exists`: the exited postmaster stays a zombie until init reaps it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while postmaster_of(&data).is_some() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// The pid of the postmaster serving `data`, if one runs. The pid file alone is not proof
/// (the pid may have been reused since), so the process's command line must name `data`.
fn postmaster_of(data: &Path) -> Option<i32> {
    let pid_file = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = pid_file.lines().next()?.trim().parse().ok()?;
    let command_line = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let data = data.to_string_lossy();
    String::from_utf8_lossy(&command_line)
        .split('\0')
        .any(|arg| arg == data)
        .then_some(pid)
}

fn process_exists(pid: i32) -> bool {
    // Signal 0 checks for the process without signalling it; EPERM means it exists but
    // belongs to someone else.
    // SAFETY: kill has no memory-safety preconditions.
    let signalled = unsafe { libc::kill(pid, 0) } == 0;
    signalled || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
