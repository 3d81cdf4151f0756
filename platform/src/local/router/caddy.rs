//! One Caddy process of the router: its files in the router's directory, starting it
//! detached from Berth, finding it again, loading a configuration into it, ending it.

use super::{admin, RouterError};
use crate::local::{process_group, write_private};
use std::{
    fs, io,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::Child;

/// How long Caddy has to answer its admin API after being started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long "is Caddy there?" waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reads of the admin API, and `/stop`.
pub(super) const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// A `/load` provisions every server of the new configuration before it answers.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A Caddy of the router, known by its files: `<name>.json` (the configuration it runs,
/// and comes back with when started again), `<name>.pid` (written by Caddy),
/// `<name>.log` (its output) and its admin socket.
pub(super) struct Caddy {
    /// What the operator reads in logs and errors: "the edge Caddy".
    pub role: &'static str,
    pub admin: PathBuf,
    pub config: PathBuf,
    pid_file: PathBuf,
    pub log: PathBuf,
}

impl Caddy {
    pub fn new(dir: &Path, name: &str, admin: &str, role: &'static str) -> Caddy {
        Caddy {
            role,
            admin: dir.join(admin),
            config: dir.join(format!("{name}.json")),
            pid_file: dir.join(format!("{name}.pid")),
            log: dir.join(format!("{name}.log")),
        }
    }

    /// Whether a Caddy answers on the admin socket.
    pub async fn answers(&self) -> bool {
        matches!(
            admin::request(&self.admin, "GET", "/config/admin", None, PROBE_TIMEOUT).await,
            Ok(answer) if answer.status == 200
        )
    }

    /// The process (and process group: Caddy leads its own session) of this Caddy when it
    /// runs: the pid Caddy recorded, if that process is Caddy on this configuration (a
    /// recorded pid may since have been given to another process).
    pub fn running(&self) -> Option<i32> {
        let pid = fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == self.config.as_os_str().as_encoded_bytes());
        (ours && process_group::has_live_members(pid)).then_some(pid)
    }

    /// Starts Caddy on `config`, detached from Berth, and waits until its admin API
    /// answers. `config` is saved first: it is what Caddy reads.
    pub async fn start(
        &self,
        caddy: &Path,
        dir: &Path,
        config: &[u8],
    ) -> Result<Child, RouterError> {
        // This Caddy, still running (not answering, or left broken by a refused change),
        // would keep its ports, and a new one would take its admin socket from under it:
        // end it first.
        if let Some(pid) = self.running() {
            tracing::warn!(pid, "ending {} of the router to start it again", self.role);
            process_group::kill_and_wait(pid, Duration::from_secs(5)).await;
        }
        write_private(&self.config, config).map_err(|source| RouterError::Io {
            doing: format!("writing {}", self.config.display()),
            source,
        })?;
        let log_io = |source| RouterError::Io {
            doing: format!("opening {}", self.log.display()),
            source,
        };
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.log)
            .map_err(log_io)?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log.try_clone().map_err(log_io)?;

        let mut command = tokio::process::Command::new(caddy);
        command
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--pidfile")
            .arg(&self.pid_file)
            // Caddy reads a `Caddyfile` it finds in its working directory.
            .current_dir(dir)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            // Caddy keeps data (and `.step`, `.config`) under these; not in root's home.
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        // SAFETY: `detach` makes only async-signal-safe calls, as `pre_exec` requires; a
        // session of its own and no parent-death signal: Caddy outlives Berth.
        unsafe {
            command.pre_exec(|| process_group::detach());
        }
        let mut child = command.spawn().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                RouterError::CaddyMissing {
                    caddy: caddy.to_owned(),
                }
            } else {
                RouterError::Io {
                    doing: format!("starting {}", caddy.display()),
                    source,
                }
            }
        })?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.did_not_start(format!("it exited ({status})"), log_start));
            }
            if self.answers().await {
                tracing::info!(pid = child.id(), "the router started {}", self.role);
                return Ok(child);
            }
            if Instant::now() >= deadline {
                if let Some(pid) = child.id() {
                    process_group::kill_and_wait(pid as i32, Duration::from_secs(5)).await;
                }
                let _ = child.wait().await;
                return Err(self.did_not_start(
                    format!(
                        "its admin API did not answer within {} s",
                        START_TIMEOUT.as_secs()
                    ),
                    log_start,
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Loads `config` into the running Caddy and, once Caddy took it, saves it (so that
    /// a Caddy started again comes back with it). When Caddy refuses it, nothing changes.
    pub async fn load(&self, config: &[u8]) -> Result<(), RouterError> {
        let staged = self.config.with_extension("json.new");
        write_private(&staged, config).map_err(|source| RouterError::Io {
            doing: format!("writing {}", staged.display()),
            source,
        })?;
        let loaded = admin::request(&self.admin, "POST", "/load", Some(config), LOAD_TIMEOUT)
            .await
            .map_err(|e| self.unreachable(e))
            .and_then(|answer| match answer.status {
                200 => Ok(()),
                status => Err(RouterError::Admin {
                    role: self.role,
                    status,
                    message: admin::message(&answer.body),
                }),
            });
        if let Err(e) = loaded {
            let _ = fs::remove_file(&staged);
            return Err(e);
        }
        fs::rename(&staged, &self.config).map_err(|source| RouterError::Io {
            doing: format!(
                "saving {} ({} serves it, but would not come back with it)",
                self.config.display(),
                self.role
            ),
            source,
        })
    }

    /// Ends this Caddy: asks it to stop (it lets requests in flight finish, up to its
    /// grace period), then kills it once `patience` is over.
    pub async fn stop(&self, child: Option<Child>, patience: Duration) {
        let pid = self.running();
        if let Err(e) = admin::request(&self.admin, "POST", "/stop", None, ADMIN_TIMEOUT).await {
            tracing::debug!(error = %e.into_io(), "{} did not take /stop", self.role);
        }
        if let Some(pid) = pid {
            let deadline = Instant::now() + patience;
            while process_group::has_live_members(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            process_group::kill_and_wait(pid, Duration::from_secs(5)).await;
        }
        if let Some(mut child) = child {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    pub fn unreachable(&self, failure: admin::Failure) -> RouterError {
        RouterError::Io {
            doing: format!("talking to {} at {}", self.role, self.admin.display()),
            source: failure.into_io(),
        }
    }

    fn did_not_start(&self, why: String, log_start: u64) -> RouterError {
        RouterError::CaddyDidNotStart {
            role: self.role,
            why,
            log: self.log.clone(),
            log_tail: log_tail(&self.log, log_start),
        }
    }
}

/// The last lines Caddy wrote to its log since `from`.
fn log_tail(log: &Path, from: u64) -> String {
    const LINES: usize = 20;
    let written = fs::read(log).unwrap_or_default();
    let since = written.get(from as usize..).unwrap_or_default();
    let text = String::from_utf8_lossy(since);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
    if tail.is_empty() {
        "(Caddy wrote nothing)".to_owned()
    } else {
        tail
    }
}
