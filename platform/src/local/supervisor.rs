//! Keeps a release running (inside its monitor, see `monitor`): `buildah run` in a process group of its own, its output line
//! by line into the app's runtime log (and the operation's log while one watches), and a
//! restart with exponential backoff when it exits without being asked to — once it has
//! been accepted. Before, an exit is the end of its health check, not a reason to retry.
//! The release's own processes (under runc, outside the group) are signalled through the
//! container's cgroup, and nothing of them outlives a run.

use super::{
    buildah::forward_lines,
    cgroup::ContainerCgroup,
    process_group::{self, GroupRecord},
    redact::Redactor,
    runtime_log::RuntimeLog,
};
use std::{
    process::{ExitStatus, Stdio},
    sync::{
        atomic::{AtomicI32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    process::{Child, Command},
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

/// Between SIGTERM and SIGKILL when a release is stopped.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A release that ran this long was not crash-looping: its next restart is quick again.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// After buildah exits, how long its output pipes may take to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the release's process has ended, and how it last did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Exits {
    pub count: u32,
    pub last: Option<String>,
}

/// Where a release's output goes: always the app's runtime log; to an operation's log
/// while [`ReleaseOutput::forward_to`] is set.
pub(crate) struct ReleaseOutput {
    app_log: Arc<RuntimeLog>,
    /// The app's secrets: hidden before a line reaches either log.
    redactor: Redactor,
    operation: Mutex<Option<mpsc::UnboundedSender<String>>>,
}

impl ReleaseOutput {
    pub fn new(app_log: Arc<RuntimeLog>, redactor: Redactor) -> Self {
        Self {
            app_log,
            redactor,
            operation: Mutex::new(None),
        }
    }

    pub fn line(&self, line: &str) {
        let line = &self.redactor.redact(line);
        self.app_log.push(line);
        if let Some(operation) = self.operation.lock().expect("operation tap lock").as_ref() {
            let _ = operation.send(line.to_owned());
        }
    }

    /// The supervisor's own words, marked so that nobody takes them for the app's.
    pub fn note(&self, note: &str) {
        self.line(&format!("[berth] {note}"));
    }

    pub fn forward_to(&self, operation: Option<mpsc::UnboundedSender<String>>) {
        *self.operation.lock().expect("operation tap lock") = operation;
    }
}

/// What the supervisor needs to (re)start a release.
pub(crate) struct Launch {
    pub container: String,
    /// Builds the `buildah run` command; called for every (re)start.
    pub command: Box<dyn Fn() -> Command + Send + Sync>,
    pub record: GroupRecord,
    pub output: Arc<ReleaseOutput>,
    /// The container's cgroup: runc runs the release's processes outside buildah's
    /// process group, so they are ended through it.
    pub cgroup: Option<ContainerCgroup>,
}

/// A release under supervision.
pub(crate) struct Supervised {
    exits: watch::Receiver<Exits>,
    stop: watch::Sender<bool>,
    accepted: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// The current run's process group (0 between runs).
    pgid: Arc<AtomicI32>,
    cgroup: Option<ContainerCgroup>,
}

impl Supervised {
    pub fn start(launch: Launch) -> Supervised {
        let (stop, stop_requested) = watch::channel(false);
        let (accepted, acceptance) = watch::channel(false);
        let (exits_sender, exits) = watch::channel(Exits::default());
        let pgid = Arc::new(AtomicI32::new(0));
        let cgroup = launch.cgroup.clone();
        let task = tokio::spawn(supervise(
            launch,
            stop_requested,
            acceptance,
            exits_sender,
            pgid.clone(),
        ));
        Supervised {
            exits,
            stop,
            accepted,
            task: Mutex::new(Some(task)),
            pgid,
            cgroup,
        }
    }

    pub fn exits(&self) -> watch::Receiver<Exits> {
        self.exits.clone()
    }

    /// The release passed its health check: from now on, restart it when it exits.
    pub fn accept(&self) {
        let _ = self.accepted.send(true);
    }

    /// Stops the release: SIGTERM to its group, SIGKILL after [`STOP_GRACE`]; no restart.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().expect("supervisor task lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Supervised {
    /// A release nobody holds any more (its engine was dropped, or the operation starting
    /// it was cancelled) must not run on unsupervised: it ends at once, without the grace
    /// period a drop cannot wait for. Its container is removed at the next engine start.
    fn drop(&mut self) {
        let Ok(task) = self.task.get_mut() else {
            return;
        };
        if let Some(task) = task.take() {
            let _ = self.stop.send(true);
            process_group::signal(self.pgid.load(Ordering::SeqCst), libc::SIGKILL);
            if let Some(cgroup) = &self.cgroup {
                cgroup.signal(libc::SIGKILL);
            }
            task.abort();
        }
    }
}

enum RunEnd {
    Stopped,
    Exited(String),
}

async fn supervise(
    launch: Launch,
    mut stop_requested: watch::Receiver<bool>,
    mut acceptance: watch::Receiver<bool>,
    exits: watch::Sender<Exits>,
    pgid: Arc<AtomicI32>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let how = match run_once(&launch, &mut stop_requested, &pgid).await {
            RunEnd::Stopped => return,
            RunEnd::Exited(how) => how,
        };
        exits.send_modify(|exits| {
            exits.count += 1;
            exits.last = Some(how.clone());
        });
        if !*acceptance.borrow() {
            launch.output.note(&format!("the release {how}"));
            // Its deploy is failing and will stop it; should the health check have passed
            // just before the exit, the acceptance is on its way.
            tokio::select! {
                _ = requested(&mut acceptance) => {}
                _ = requested(&mut stop_requested) => return,
            }
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff = FIRST_BACKOFF;
        }
        launch.output.note(&format!(
            "the release {how}; restarting it in {} s",
            backoff.as_secs()
        ));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = requested(&mut stop_requested) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn run_once(
    launch: &Launch,
    stop_requested: &mut watch::Receiver<bool>,
    pgid: &AtomicI32,
) -> RunEnd {
    if *stop_requested.borrow() {
        return RunEnd::Stopped;
    }
    let mut command = (launch.command)();
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let berth = std::process::id() as libc::pid_t;
    // SAFETY: the closure only makes async-signal-safe calls (see detach_and_die_with_berth).
    unsafe {
        command.pre_exec(move || process_group::detach_and_die_with_berth(berth));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return RunEnd::Exited(format!("could not be started ({e})")),
    };
    // setsid made the child the leader of a new group whose id is its pid.
    let group = child.id().map_or(0, |pid| pid as i32);
    pgid.store(group, Ordering::SeqCst);
    if let Err(e) = launch.record.write(group, launch.cgroup.as_ref()) {
        launch
            .output
            .note(&format!("cannot record the release's process group ({e})"));
    }
    let (sender, mut lines) = mpsc::unbounded_channel();
    let readers = [
        child
            .stdout
            .take()
            .map(|out| forward_lines(out, sender.clone())),
        child
            .stderr
            .take()
            .map(|err| forward_lines(err, sender.clone())),
    ];
    drop(sender);
    let output = launch.output.clone();
    let pump = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            output.line(&line);
        }
    });

    let end = tokio::select! {
        status = child.wait() => RunEnd::Exited(describe(status)),
        _ = requested(stop_requested) => {
            terminate(group, launch.cgroup.as_ref(), &mut child).await;
            RunEnd::Stopped
        }
    };
    // buildah is gone; whatever is left of its group (a daemonised child) and of the
    // container goes with it.
    process_group::kill_and_wait(group, Duration::from_secs(2)).await;
    if let Some(cgroup) = &launch.cgroup {
        if !cgroup.kill_and_remove(Duration::from_secs(5)).await {
            launch
                .output
                .note("some of the release's processes could not be ended");
        }
    }
    pgid.store(0, Ordering::SeqCst);
    launch.record.remove();
    for reader in readers.into_iter().flatten() {
        if tokio::time::timeout(DRAIN_TIMEOUT, reader).await.is_err() {
            tracing::debug!(container = %launch.container, "output still open after exit");
        }
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, pump).await;
    end
}

/// Asks the release to end, then forces it after [`STOP_GRACE`]. With a cgroup, the
/// release's own processes get the signal, and buildah ends when its container does;
/// without, buildah's whole group does.
async fn terminate(group: i32, cgroup: Option<&ContainerCgroup>, child: &mut Child) {
    match cgroup {
        Some(cgroup) => {
            ask_to_end(cgroup);
            if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
                return;
            }
            cgroup.signal(libc::SIGKILL);
            if tokio::time::timeout(Duration::from_secs(2), child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        None => {
            process_group::signal(group, libc::SIGTERM);
            if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
                return;
            }
        }
    }
    process_group::signal(group, libc::SIGKILL);
    let _ = child.wait().await;
}

/// SIGTERM to every process of the container that handles it. The release's first
/// process is its PID namespace's init, which the kernel shields from signals it has no
/// handler for: waiting out the grace period for it would only delay the stop, so the
/// processes that would have died of SIGTERM (no handler, not ignored) get SIGKILL.
fn ask_to_end(cgroup: &ContainerCgroup) {
    cgroup.signal_each(|pid| {
        if handles_or_ignores(pid, libc::SIGTERM) {
            libc::SIGTERM
        } else {
            libc::SIGKILL
        }
    });
}

/// Whether process `pid` catches or ignores `signal` (`SigCgt`, `SigIgn` of its status).
fn handles_or_ignores(pid: libc::pid_t, signal: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let bit = 1u64 << (signal - 1);
    status.lines().any(|line| {
        let mask = line
            .strip_prefix("SigCgt:")
            .or_else(|| line.strip_prefix("SigIgn:"));
        mask.and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & bit != 0)
    })
}

/// Resolves once the flag is set (a stop requested, the release accepted), or when whoever
/// could set it is gone.
async fn requested(flag: &mut watch::Receiver<bool>) {
    while !*flag.borrow_and_update() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => format!("ended ({status})"),
        },
        Err(e) => format!("could not be waited for ({e})"),
    }
}
