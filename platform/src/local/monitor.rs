//! Releases that outlive Berth. Each release runs under a monitor process of its own
//! (`berth release-monitor`, like conmon for podman): the monitor runs the release's
//! `buildah run` under the supervisor (restarts with backoff once accepted), writes its
//! output, redacted, to the app's runtime log file (rotated by size), and keeps doing so when
//! Berth stops, crashes or is upgraded. Berth starts the monitor in a session of its own and
//! without a parent-death signal; at its next start it finds the monitor again from the
//! record it left (`run/monitors/<container>.json`) and adopts the release.
//!
//! Berth and the monitor talk through:
//! - the monitor's stdin: the [`MonitorSpec`] as JSON, then end of file. It holds the app's
//!   secrets to redact, so they never appear in argv or the environment;
//! - the monitor's stdout, one JSON [`Event`] per line, while Berth listens: `ready` once
//!   the monitor handles its signals, the release's lines until it is accepted (for the
//!   operation's log and a failed health check's message), and each exit;
//! - signals: SIGUSR1 accepts the release (from then on an exit means a restart), SIGTERM
//!   stops it (SIGTERM to the release, SIGKILL after the grace period) and ends the monitor.

use super::{
    cgroup::ContainerCgroup,
    process_group::{self, GroupRecord},
    redact::Redactor,
    runtime_log::RuntimeLog,
    supervisor::{Exits, Launch, ReleaseOutput, Supervised, STOP_GRACE},
};
use serde::{Deserialize, Serialize};
use std::{
    collections::VecDeque,
    ffi::OsString,
    fs,
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::{mpsc, watch},
};

/// The largest spec a monitor reads (the app's secrets are in it).
const MAX_SPEC_BYTES: u64 = 4 << 20;
/// How long a monitor may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// What a failed health check quotes of the release's own output.
const RECENT_LINES: usize = 20;
/// How often a monitor whose release is not accepted yet looks for its Berth.
const WAITING_EVERY: Duration = Duration::from_secs(1);

/// How to run `buildah run` for the release: program, arguments and the whole environment
/// (the monitor clears its own).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Invocation {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

impl Invocation {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .stdin(Stdio::null())
            .kill_on_drop(false);
        command
    }
}

/// What Berth hands a monitor on its stdin.
#[derive(Serialize, Deserialize)]
pub(crate) struct MonitorSpec {
    pub container: String,
    pub run: Invocation,
    /// The app's runtime log file.
    pub log: PathBuf,
    /// Where the supervisor records `buildah run`'s process group.
    pub groups_dir: PathBuf,
    /// The container's cgroup directories.
    pub cgroup: Vec<PathBuf>,
    /// Values hidden from everything the release prints.
    pub redact: Vec<String>,
    /// The first line of the release in the runtime log.
    pub note: String,
}

impl Drop for MonitorSpec {
    fn drop(&mut self) {
        for secret in &mut self.redact {
            zeroize::Zeroize::zeroize(secret);
        }
    }
}

/// One line of the monitor's stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Event {
    Ready,
    /// The release waits for its health check (and the monitor checks that Berth reads).
    Waiting,
    Line(String),
    Exit {
        count: u32,
        how: String,
    },
}

/// The monitor's entry point (`berth release-monitor`, or the `berth-release-monitor`
/// program in the platform's tests). Returns the exit status.
pub fn main(_args: Vec<OsString>) -> i32 {
    let mut input = Vec::new();
    if let Err(e) = io::stdin().take(MAX_SPEC_BYTES).read_to_end(&mut input) {
        eprintln!("berth release-monitor: cannot read the spec: {e}");
        return 2;
    }
    let spec: Result<MonitorSpec, _> = serde_json::from_slice(&input);
    zeroize::Zeroize::zeroize(&mut input);
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("berth release-monitor: the spec is not valid: {e}");
            return 2;
        }
    };
    // No terminal and no reader must end a release: a closed stdout (Berth gone) is
    // EPIPE on write, not a fatal signal.
    // SAFETY: setting signal dispositions before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("berth release-monitor: {e}");
            return 1;
        }
    };
    runtime.block_on(monitor(spec))
}

async fn monitor(spec: MonitorSpec) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut accept), Ok(mut terminate)) = (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("berth release-monitor: cannot handle signals");
        return 1;
    };
    let events = EventWriter::stdout();

    let mut redactor = Redactor::new();
    for secret in &spec.redact {
        redactor.hide(secret);
    }
    let output = Arc::new(ReleaseOutput::new(
        Arc::new(RuntimeLog::open(&spec.log)),
        redactor,
    ));
    let (forward, mut lines) = mpsc::unbounded_channel();
    output.forward_to(Some(forward));
    output.note(&spec.note);
    let run = spec.run.clone();
    let process = Supervised::start(Launch {
        container: spec.container.clone(),
        command: Box::new(move || run.command()),
        record: GroupRecord::new(&spec.groups_dir, &spec.container),
        output: output.clone(),
        cgroup: ContainerCgroup::from_dirs(spec.cgroup.clone()),
    });
    drop(spec);
    let mut exits = process.exits();
    events.send(&Event::Ready);
    // Until the release is accepted, the Berth that started it is health-checking it and
    // reads these events; no later Berth takes over a release that was never accepted. A
    // Berth killed in that time (perhaps before it even recorded this monitor) is gone for
    // good, so the monitor says it is waiting every second and, once nobody reads, ends
    // the release and itself rather than run it unseen for ever.
    let mut accepted = false;
    let mut waiting = tokio::time::interval(WAITING_EVERY);
    loop {
        tokio::select! {
            // An acceptance that arrived goes first: the Berth that sent it may be gone
            // by the time the next wait is said.
            biased;
            Some(_) = accept.recv() => {
                // From now on the release's lines go to the runtime log only.
                output.forward_to(None);
                process.accept();
                accepted = true;
            }
            _ = waiting.tick(), if !accepted => {
                events.send(&Event::Waiting);
                if events.nobody_reads() {
                    process.stop().await;
                    return 0;
                }
            }
            Some(_) = terminate.recv() => {
                process.stop().await;
                return 0;
            }
            Some(line) = lines.recv() => events.send(&Event::Line(line)),
            changed = exits.changed() => {
                if changed.is_err() {
                    return 0;
                }
                let exits = exits.borrow_and_update().clone();
                events.send(&Event::Exit {
                    count: exits.count,
                    how: exits.last.unwrap_or_default(),
                });
            }
        }
    }
}

/// Writes events to stdout without ever blocking the monitor: with Berth gone (or not
/// reading), events are dropped.
struct EventWriter {
    out: Mutex<Option<fs::File>>,
}

impl EventWriter {
    fn stdout() -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: fd 1 is open for the monitor's lifetime and owned by nothing else here.
        let file = unsafe {
            let flags = libc::fcntl(1, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(1, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
            fs::File::from_raw_fd(libc::dup(1))
        };
        Self {
            out: Mutex::new(Some(file)),
        }
    }

    fn send(&self, event: &Event) {
        let mut out = self.out.lock().expect("event writer lock");
        let Some(file) = out.as_mut() else {
            return;
        };
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        match file.write_all(&line) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Berth is gone: nobody reads any more.
            Err(_) => *out = None,
        }
    }

    /// Whether a write found that nobody reads the events any more (Berth is gone).
    fn nobody_reads(&self) -> bool {
        self.out.lock().expect("event writer lock").is_none()
    }
}

/// What Berth keeps on disk about a release it started, so that the next Berth can adopt it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ReleaseRecord {
    pub container: String,
    pub team_id: i64,
    pub app_id: i64,
    pub release_id: i64,
    pub port: u16,
    /// The machine's boot: pids of an earlier boot mean nothing.
    pub boot: String,
    pub monitor_pid: i32,
    /// The monitor's start time (clock ticks after boot), so that a pid reused by another
    /// process is not taken for the monitor.
    pub monitor_started: u64,
    /// Whether the release passed its health check; one that did not is never adopted.
    pub accepted: bool,
    /// Set before Berth stops it: a release being stopped is never adopted (a Berth killed
    /// half-way through stopping it would otherwise adopt a release about to end).
    #[serde(default)]
    pub stopping: bool,
    /// The release's network namespace, when it has one of its own.
    pub network: Option<String>,
    pub cgroup: Vec<PathBuf>,
}

impl ReleaseRecord {
    fn path(dir: &Path, container: &str) -> PathBuf {
        dir.join(format!("{container}.json"))
    }

    pub fn write(&self, dir: &Path) -> io::Result<()> {
        super::write_private(
            &Self::path(dir, &self.container),
            &serde_json::to_vec(self).map_err(io::Error::other)?,
        )
    }

    pub fn remove(dir: &Path, container: &str) {
        let _ = fs::remove_file(Self::path(dir, container));
    }

    /// Every record in `dir` (unreadable ones are removed).
    pub fn all(dir: &Path) -> Vec<ReleaseRecord> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let path = entry.path();
                let record = (path.extension().and_then(|e| e.to_str()) == Some("json"))
                    .then(|| fs::read(&path).ok())
                    .flatten()
                    .and_then(|bytes| serde_json::from_slice::<ReleaseRecord>(&bytes).ok());
                if record.is_none() {
                    let _ = fs::remove_file(&path);
                }
                record
            })
            .collect()
    }

    /// Whether the monitor this record names still runs.
    pub fn monitor_alive(&self) -> bool {
        self.boot == process_group::boot_id()
            && self.monitor_pid > 1
            && start_time(self.monitor_pid) == Some(self.monitor_started)
    }
}

/// A process's start time (field 22 of `/proc/<pid>/stat`), `None` when it is gone or a
/// zombie.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    // after_comm starts at field 3 (state); field 22 is at index 19.
    fields.get(19)?.parse().ok()
}

/// A release under its monitor, seen from Berth.
pub(crate) struct Monitored {
    pub container: String,
    pid: i32,
    started: u64,
    exits: watch::Receiver<Exits>,
    recent: Arc<Mutex<VecDeque<String>>>,
    lines: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    child: tokio::sync::Mutex<Option<Child>>,
    cgroup: Option<ContainerCgroup>,
    records_dir: PathBuf,
    /// Set when Berth leaves: the release keeps running.
    detached: AtomicBool,
    record: Mutex<ReleaseRecord>,
}

impl Monitored {
    /// Starts a monitor running `spec` with `program` (`berth release-monitor`), and
    /// records it in `records_dir` (with `record`'s ids, port and network).
    pub async fn start(
        program: &[OsString],
        spec: &MonitorSpec,
        records_dir: &Path,
        mut record: ReleaseRecord,
    ) -> io::Result<Monitored> {
        let (first, rest) = program.split_first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no release monitor program")
        })?;
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(records_dir.join(format!("{}.monitor.log", spec.container)))?;
        let mut command = Command::new(first);
        command
            .args(rest)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(false);
        // SAFETY: `detach` only calls setsid, which is async-signal-safe. A session of its
        // own and no parent-death signal: the release outlives Berth.
        unsafe {
            command.pre_exec(|| process_group::detach());
        }
        let mut child = command.spawn()?;
        let pid = child.id().map_or(0, |pid| pid as i32);
        let mut input = serde_json::to_vec(spec).map_err(io::Error::other)?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = stdin.write_all(&input).await;
        zeroize::Zeroize::zeroize(&mut input);
        drop(stdin);
        let stdout = child.stdout.take().expect("piped stdout");
        let mut events = BufReader::new(stdout).lines();
        let ready = async {
            written?;
            while let Some(line) = events.next_line().await? {
                if matches!(serde_json::from_str(&line), Ok(Event::Ready)) {
                    return Ok(());
                }
            }
            Err(io::Error::other(
                "the release monitor ended before it was ready",
            ))
        };
        if let Err(e) = tokio::time::timeout(READY_TIMEOUT, ready)
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the release monitor did not get ready")))
        {
            process_group::signal(pid, libc::SIGKILL);
            let _ = child.wait().await;
            let why =
                fs::read_to_string(records_dir.join(format!("{}.monitor.log", spec.container)))
                    .unwrap_or_default();
            let why = why.lines().last().unwrap_or_default();
            return Err(io::Error::other(format!("{e} {why}").trim().to_owned()));
        }

        record.monitor_pid = pid;
        record.monitor_started = start_time(pid).unwrap_or_default();
        record.boot = process_group::boot_id();
        record.accepted = false;
        record.write(records_dir)?;

        let (exits_sender, exits) = watch::channel(Exits::default());
        let (lines_sender, lines) = mpsc::unbounded_channel();
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        let kept = recent.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = events.next_line().await {
                match serde_json::from_str(&line) {
                    Ok(Event::Line(line)) => {
                        {
                            let mut recent = kept.lock().expect("recent output lock");
                            if recent.len() == RECENT_LINES {
                                recent.pop_front();
                            }
                            recent.push_back(line.clone());
                        }
                        let _ = lines_sender.send(line);
                    }
                    Ok(Event::Exit { count, how }) => exits_sender.send_modify(|exits| {
                        exits.count = count;
                        exits.last = Some(how);
                    }),
                    _ => {}
                }
            }
            // The monitor is gone (or Berth detached from it): an exit, for a health check
            // that is still waiting.
            exits_sender.send_modify(|exits| {
                exits.count += 1;
                exits
                    .last
                    .get_or_insert_with(|| "ended with its monitor".to_owned());
            });
        });
        Ok(Monitored {
            container: spec.container.clone(),
            pid,
            started: record.monitor_started,
            exits,
            recent,
            lines: Mutex::new(Some(lines)),
            child: tokio::sync::Mutex::new(Some(child)),
            cgroup: ContainerCgroup::from_dirs(spec.cgroup.clone()),
            records_dir: records_dir.to_owned(),
            detached: AtomicBool::new(false),
            record: Mutex::new(record),
        })
    }

    /// A release an earlier Berth started, whose monitor still runs.
    pub fn adopt(record: ReleaseRecord, records_dir: &Path) -> Monitored {
        let (_, exits) = watch::channel(Exits::default());
        Monitored {
            container: record.container.clone(),
            pid: record.monitor_pid,
            started: record.monitor_started,
            exits,
            recent: Arc::default(),
            lines: Mutex::new(None),
            child: tokio::sync::Mutex::new(None),
            cgroup: ContainerCgroup::from_dirs(record.cgroup.clone()),
            records_dir: records_dir.to_owned(),
            detached: AtomicBool::new(false),
            record: Mutex::new(record),
        }
    }

    /// Ends a recorded release whose monitor is gone or which was never accepted: its
    /// monitor (when it still runs) and everything in its cgroup.
    pub async fn end_recorded(record: &ReleaseRecord, records_dir: &Path) {
        if record.monitor_alive() {
            process_group::kill_and_wait(record.monitor_pid, Duration::from_secs(5)).await;
        }
        if let Some(cgroup) = ContainerCgroup::from_dirs(record.cgroup.clone()) {
            cgroup.kill_and_remove(Duration::from_secs(5)).await;
        }
        ReleaseRecord::remove(records_dir, &record.container);
        let _ = fs::remove_file(records_dir.join(format!("{}.monitor.log", record.container)));
    }

    pub fn exits(&self) -> watch::Receiver<Exits> {
        self.exits.clone()
    }

    /// The release's lines as they come, until it is accepted (taken once).
    pub fn take_lines(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.lines.lock().expect("lines lock").take()
    }

    /// The release's last lines before it was accepted.
    pub fn recent(&self) -> Vec<String> {
        self.recent
            .lock()
            .expect("recent output lock")
            .iter()
            .cloned()
            .collect()
    }

    fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }

    /// The release passed its health check: its monitor restarts it when it exits, and the
    /// next Berth adopts it.
    pub fn accept(&self) -> io::Result<()> {
        if self.pid > 1 {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(self.pid, libc::SIGUSR1);
            }
        }
        let mut record = self.record.lock().expect("record lock");
        record.accepted = true;
        record.write(&self.records_dir)
    }

    /// Stops the release (its monitor gives it [`STOP_GRACE`] after SIGTERM) and forgets it.
    pub async fn stop(&self) {
        {
            let mut record = self.record.lock().expect("record lock");
            record.stopping = true;
            if let Err(e) = record.write(&self.records_dir) {
                tracing::warn!(container = %self.container, error = %e, "cannot record that a release is stopping");
            }
        }
        if self.alive() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
            let patience = STOP_GRACE + Duration::from_secs(10);
            let mut child = self.child.lock().await;
            let ended = match child.as_mut() {
                Some(child) => tokio::time::timeout(patience, child.wait()).await.is_ok(),
                None => {
                    let deadline = tokio::time::Instant::now() + patience;
                    while self.alive() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    !self.alive()
                }
            };
            if !ended {
                tracing::warn!(container = %self.container, "a release monitor did not end in time; killing it");
                process_group::kill_and_wait(self.pid, Duration::from_secs(2)).await;
                if let Some(child) = child.as_mut() {
                    let _ = child.wait().await;
                }
            }
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_and_remove(Duration::from_secs(5)).await;
        }
        ReleaseRecord::remove(&self.records_dir, &self.container);
        let _ = fs::remove_file(
            self.records_dir
                .join(format!("{}.monitor.log", self.container)),
        );
        self.detached.store(true, Ordering::SeqCst);
    }

    /// Berth is leaving: the release goes on running under its monitor.
    pub fn detach(&self) {
        self.detached.store(true, Ordering::SeqCst);
    }
}

impl Drop for Monitored {
    /// A release nobody holds any more without having been detached (its engine dropped in
    /// a test, the operation starting it cancelled) ends at once.
    fn drop(&mut self) {
        if self.detached.load(Ordering::SeqCst) {
            return;
        }
        if self.alive() {
            process_group::signal(self.pid, libc::SIGKILL);
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.signal(libc::SIGKILL);
        }
        ReleaseRecord::remove(&self.records_dir, &self.container);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_start_time_is_read_and_a_missing_process_has_none() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn events_round_trip_as_json_lines() {
        let line = serde_json::to_string(&Event::Exit {
            count: 2,
            how: "exited with status 1".into(),
        })
        .unwrap();
        assert_eq!(line, r#"{"exit":{"count":2,"how":"exited with status 1"}}"#);
        assert!(matches!(
            serde_json::from_str::<Event>(r#""ready""#),
            Ok(Event::Ready)
        ));
    }
}
