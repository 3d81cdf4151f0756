//! Every git command Berth runs, built in one place so that each one runs with nothing of
//! Berth's or the account's own set-up, and with a deadline.
//!
//! Why so strict: Berth's environment holds the master key and the database URL, and the
//! account's git configuration could hold credential helpers (which would store a team's
//! token on disk, or offer someone else's to a server), `url.*.insteadOf` rewrites or hooks.
//! So each [`Session`] gives git an empty environment (PATH, a private empty HOME, `LC_ALL=C`
//! so that its messages can be read), no system or global configuration, no credential
//! helpers, no terminal prompts, and only the transports Berth accepts.
//!
//! Credentials reach git through its askpass hook: a tiny script, private to this session,
//! that prints the user name and token from *its* environment, which it inherits from git.
//! They are never in an argument (`/proc/*/cmdline` and `ps` are readable by every user),
//! never in a file of git's configuration, and never stored by git.
//!
//! A team's ssh deploy key reaches ssh as a file (ssh reads keys from files only): mode
//! 0600 in the session's private directory, named by `-o IdentityFile`, and removed with
//! the session. Its text is never an argument or an environment variable.

use super::GitError;
use crate::registry::BasicCredentials;
use base64::Engine as _;
use domain::Secret;
use std::{
    ffi::OsString,
    fs::{self, DirBuilder, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    process::Command,
};
use zeroize::Zeroizing;

pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Configuration given to every command, before any the repository could hold.
const HARDENING: &[&str] = &[
    // No credential helper may store a token or offer one it stored earlier.
    "-c",
    "credential.helper=",
    // Only the transports a `RepositoryUrl` can name; never `ext::` (runs a command),
    // `fd::`, `git://` or a remote helper found on PATH.
    "-c",
    "protocol.allow=never",
    "-c",
    "protocol.https.allow=always",
    "-c",
    "protocol.http.allow=always",
    "-c",
    "protocol.ssh.allow=always",
    "-c",
    "protocol.file.allow=always",
    "-c",
    "protocol.ext.allow=never",
    // Nothing in a mirror should run code.
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    // Housekeeping after a fetch runs inside the command's deadline, not detached from it.
    "-c",
    "gc.autoDetach=false",
    "-c",
    "maintenance.autoDetach=false",
    "-c",
    "init.defaultBranch=main",
];

/// The askpass hook. `printf` is a shell builtin: the values never become an argument of
/// any process. It answers only the two prompts git makes for the repository's own origin,
/// compared whole (git's `credential_describe`: `scheme://host[:port]`, with `user@` in
/// the password prompt), so that a server redirecting git to another host, or a look-alike
/// such as `good.example.evil.com`, cannot collect the token.
const ASKPASS: &str = r#"#!/bin/sh
if [ "$1" = "Username for '${BERTH_GIT_ORIGIN}': " ]; then
  printf '%s\n' "$BERTH_GIT_USERNAME"
elif [ "$1" = "Password for '${BERTH_GIT_SCHEME}://${BERTH_GIT_USERNAME}@${BERTH_GIT_HOST}': " ]; then
  printf '%s\n' "$BERTH_GIT_PASSWORD"
else
  exit 1
fi
"#;

/// Output kept from one command: standard output up to a limit, and the end of standard
/// error (with any credential replaced by `[redacted]`).
pub(super) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// One git command: its arguments (after the hardening options) and what it needs.
pub(super) struct Run<'a> {
    /// Names the command in timeouts and logs ("fetch", "read-tree").
    pub name: &'static str,
    pub git_dir: Option<&'a Path>,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Standard output beyond this is an error rather than memory spent.
    pub max_stdout: usize,
}

impl<'a> Run<'a> {
    pub fn new(name: &'static str, git_dir: Option<&'a Path>, timeout: Duration) -> Self {
        Self {
            name,
            git_dir,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout,
            max_stdout: 64 << 20,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &'static str, value: impl Into<OsString>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    pub fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }
}

/// A private directory (0700) for the commands of one repository operation: git's empty
/// HOME, the askpass hook when there are credentials, a scratch index for checkouts.
/// Dropping it removes everything in it.
pub(super) struct Session {
    dir: tempfile::TempDir,
    home: PathBuf,
    credentials: Option<SessionCredentials>,
    /// `-c` settings that pin the connection to the address the egress guard checked.
    connection: Vec<String>,
    /// How git runs ssh: see [`Session::with_ssh`].
    ssh_command: String,
}

/// ssh without anything of the host account's: no configuration file (`-F /dev/null`), no
/// agent, none of its keys (only the identity given, or none), a known_hosts file of
/// Berth's, and never a prompt.
pub(super) fn ssh_command(
    identity: Option<&Path>,
    known_hosts: Option<&Path>,
    pin: Option<(&str, &str)>,
) -> Result<String, String> {
    let quote = |path: &Path| -> Result<String, String> {
        let text = path.to_str().ok_or("a path that is not UTF-8")?;
        if text.contains('\'') || text.chars().any(char::is_control) {
            return Err(format!("{text} has a quote or control character"));
        }
        Ok(format!("'{text}'"))
    };
    let mut command = vec![
        "ssh".to_owned(),
        "-F /dev/null".to_owned(),
        "-o BatchMode=yes".to_owned(),
        "-o IdentitiesOnly=yes".to_owned(),
        "-o IdentityAgent=none".to_owned(),
        "-o PasswordAuthentication=no".to_owned(),
        "-o KbdInteractiveAuthentication=no".to_owned(),
        "-o HostbasedAuthentication=no".to_owned(),
        "-o GlobalKnownHostsFile=/dev/null".to_owned(),
        "-o ForwardAgent=no".to_owned(),
        "-o ClearAllForwardings=yes".to_owned(),
    ];
    // With no identity file named, ssh would add the account's default keys (~/.ssh/id_*,
    // ~ being the account's home in the password database, not $HOME): name one, always.
    match identity {
        Some(key) => command.push(format!("-o IdentityFile={}", quote(key)?)),
        None => command.push("-o IdentityFile=/dev/null".to_owned()),
    }
    match known_hosts {
        Some(file) => {
            command.push(format!("-o UserKnownHostsFile={}", quote(file)?));
            command.push("-o StrictHostKeyChecking=accept-new".to_owned());
        }
        None => {
            command.push("-o UserKnownHostsFile=/dev/null".to_owned());
            command.push("-o StrictHostKeyChecking=yes".to_owned());
        }
    }
    if let Some((alias, address)) = pin {
        // Connect to the checked address; keep the host key under the name.
        command.push(format!("-o HostKeyAlias={alias}"));
        command.push(format!("-o HostName={address}"));
    }
    Ok(command.join(" "))
}

struct SessionCredentials {
    askpass: PathBuf,
    origin: String,
    scheme: String,
    host: String,
    username: String,
    password: Zeroizing<String>,
    /// How the token would look in an `Authorization: Basic` header, for redaction.
    encoded: Zeroizing<String>,
}

impl Session {
    /// Opens a session in `parent` (created 0700 if missing).
    pub fn open(parent: &Path) -> io::Result<Session> {
        private_dir(parent)?;
        let dir = tempfile::Builder::new()
            .prefix(".session-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        let home = dir.path().join("home");
        DirBuilder::new().mode(0o700).create(&home)?;
        Ok(Session {
            dir,
            home,
            credentials: None,
            connection: Vec::new(),
            ssh_command: ssh_command(None, None, None).expect("no paths to quote"),
        })
    }

    /// Pins http(s) connections to the address the egress guard checked
    /// (`host:port:address`, curl's `CURLOPT_RESOLVE`), and refuses redirects, which would
    /// lead git to an address nobody checked.
    pub fn pin_http(mut self, host: &str, port: u16, address: std::net::IpAddr) -> Session {
        self.connection = vec!["-c".into(), "http.followRedirects=false".into()];
        // An address in the URL is connected to as it is (and was checked as it is).
        if host.parse::<std::net::IpAddr>().is_err() {
            let address = match address {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            self.connection.push("-c".into());
            self.connection
                .push(format!("http.curloptResolve={host}:{port}:{address}"));
        }
        self
    }

    /// How git runs ssh for this session (see [`ssh_command`]).
    pub fn with_ssh(mut self, command: String) -> Session {
        self.ssh_command = command;
        self
    }

    /// Lets git answer credential prompts from `origin` (`https://host[:port]`) with these.
    pub fn with_credentials(
        mut self,
        origin: &str,
        credentials: &BasicCredentials,
    ) -> io::Result<Session> {
        let askpass = self.dir.path().join("askpass");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&askpass)?;
        file.write_all(ASKPASS.as_bytes())?;
        file.sync_all()?;
        // Closed before any git runs it: exec fails on a file open for writing.
        drop(file);
        let (scheme, host) = origin.split_once("://").unwrap_or(("https", origin));
        let encoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(
                Zeroizing::new(format!(
                    "{}:{}",
                    credentials.username,
                    credentials.secret.expose()
                ))
                .as_bytes(),
            ),
        );
        self.credentials = Some(SessionCredentials {
            askpass,
            origin: origin.to_owned(),
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            username: credentials.username.clone(),
            password: Zeroizing::new(credentials.secret.expose().to_owned()),
            encoded,
        });
        Ok(self)
    }

    /// Writes the private half of an ssh key into the session (0600, removed with the
    /// session) for [`ssh_command`] to name; answers its path.
    pub fn write_ssh_identity(&self, private_key: &Secret) -> io::Result<PathBuf> {
        let path = self.dir.path().join("identity");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(private_key.expose().as_bytes())?;
        // ssh refuses a key file whose last line has no line ending.
        if !private_key.expose().ends_with('\n') {
            file.write_all(b"\n")?;
        }
        file.sync_all()?;
        Ok(path)
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// A path in the session directory for a scratch file.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Hides the credentials in text git printed (a server may echo what it was sent).
    pub fn redact(&self, text: &str) -> String {
        match &self.credentials {
            Some(c) => [c.password.as_str(), c.encoded.as_str()]
                .iter()
                .filter(|secret| !secret.is_empty())
                .fold(text.to_owned(), |text, secret| {
                    text.replace(secret, "[redacted]")
                }),
            None => text.to_owned(),
        }
    }

    pub async fn run(&self, run: Run<'_>) -> Result<Output, GitError> {
        let mut command = Command::new("git");
        command
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            )
            .env("HOME", &self.home)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            // ssh reads keys and known_hosts from the account's home in the password
            // database, not $HOME: `ssh_command` keeps them out. No agent either (the
            // environment is empty, so SSH_AUTH_SOCK is unset).
            .env("GIT_SSH_COMMAND", &self.ssh_command)
            .env("GIT_SSH_VARIANT", "ssh")
            .current_dir(&self.home)
            .args(HARDENING)
            .args(&self.connection);
        if let Some(c) = &self.credentials {
            command
                .env("GIT_ASKPASS", &c.askpass)
                .env("BERTH_GIT_ORIGIN", &c.origin)
                .env("BERTH_GIT_SCHEME", &c.scheme)
                .env("BERTH_GIT_HOST", &c.host)
                .env("BERTH_GIT_USERNAME", &c.username)
                .env("BERTH_GIT_PASSWORD", c.password.as_str());
        }
        if let Some(git_dir) = run.git_dir {
            command.arg("--git-dir").arg(git_dir);
        }
        command
            .args(&run.args)
            .envs(run.env.iter().map(|(k, v)| (k, v)))
            .stdin(if run.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a deadline stops git's helpers too
            // (git-remote-https, ssh, upload-pack), not only git.
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(command = run.name, args = ?run.args, "running git");

        let mut child = command.spawn().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => GitError::GitNotInstalled,
            _ => GitError::Other(format!("Could not run git: {e}")),
        })?;
        let group = GroupGuard(child.id());
        let stdout = child
            .stdout
            .take()
            .map(|out| read_up_to(out, run.max_stdout));
        let stderr = child.stderr.take().map(|err| read_up_to(err, 1 << 20));
        let stdin = child.stdin.take();
        let input = run.stdin;

        let finished = tokio::time::timeout(run.timeout, async {
            let feed = async {
                if let (Some(mut stdin), Some(input)) = (stdin, input) {
                    // git may exit early (and close its end); its status says why.
                    let _ = stdin.write_all(&input).await;
                }
            };
            let read_out = async {
                match stdout {
                    Some(read) => read.await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let read_err = async {
                match stderr {
                    Some(read) => read.await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let ((), out, err, status) = tokio::join!(feed, read_out, read_err, child.wait());
            Ok::<_, io::Error>((status?, out?, err?))
        })
        .await;

        let (status, (stdout, stdout_overflow), (stderr, _)) = match finished {
            Ok(Ok(done)) => {
                group.disarm();
                done
            }
            Ok(Err(e)) => return Err(GitError::Other(format!("Running git failed: {e}"))),
            Err(_elapsed) => {
                drop(group);
                let _ = child.kill().await;
                tracing::warn!(command = run.name, after = ?run.timeout, "git timed out");
                return Err(GitError::Timeout {
                    command: run.name,
                    after: run.timeout,
                });
            }
        };
        if stdout_overflow {
            return Err(GitError::Other(format!(
                "git {} printed more than {} MiB; the repository is too large for this.",
                run.name,
                run.max_stdout >> 20
            )));
        }
        let stderr = self.redact(&String::from_utf8_lossy(&stderr));
        if !status.success() {
            tracing::debug!(command = run.name, %status, stderr = %stderr, "git failed");
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Reads up to `limit` bytes; the flag says whether there was more (the rest is drained so
/// that git does not block on a full pipe).
async fn read_up_to(mut from: impl AsyncRead + Unpin, limit: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut overflow = false;
    loop {
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, overflow));
        }
        if kept.len() + n > limit {
            overflow = true;
        } else {
            kept.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Kills the command's whole process group unless it finished: on a deadline, and when the
/// future running it is dropped (a cancelled operation).
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            if pgid > 1 {
                // SAFETY: kill has no memory-safety preconditions; a negative pid names a
                // group, and this group is the child's own (it has not been reaped yet).
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Creates `dir` (and its parents) and makes it private: mirrors hold a team's code.
pub(super) fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The mode given above applies only when the directory is new.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the session's askpass hook as git would, with `prompt`; its answer, if any.
    fn ask(session: &Session, prompt: &str) -> Option<String> {
        let c = session.credentials.as_ref().unwrap();
        let output = std::process::Command::new(&c.askpass)
            .arg(prompt)
            .env_clear()
            .env("BERTH_GIT_ORIGIN", &c.origin)
            .env("BERTH_GIT_SCHEME", &c.scheme)
            .env("BERTH_GIT_HOST", &c.host)
            .env("BERTH_GIT_USERNAME", &c.username)
            .env("BERTH_GIT_PASSWORD", c.password.as_str())
            .output()
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap())
    }

    #[test]
    fn askpass_answers_the_exact_origin_only() {
        let parent = tempfile::tempdir().unwrap();
        let session = Session::open(parent.path())
            .unwrap()
            .with_credentials(
                "https://good.example",
                &BasicCredentials::new("ci-bot", "tok-secret"),
            )
            .unwrap();
        assert_eq!(
            ask(&session, "Username for 'https://good.example': ").as_deref(),
            Some("ci-bot\n")
        );
        assert_eq!(
            ask(&session, "Password for 'https://ci-bot@good.example': ").as_deref(),
            Some("tok-secret\n")
        );
        for prompt in [
            "Username for 'https://good.example.evil.com': ",
            "Password for 'https://ci-bot@good.example.evil.com': ",
            "Username for 'https://evil.com/good.example': ",
            "Password for 'https://ci-bot@evil.com/@good.example': ",
            "Password for 'https://x@evil.com@good.example': ",
            "Password for 'http://ci-bot@good.example': ",
            "Username for 'https://good.example:8443': ",
            "Username for 'https://good.example'",
            "Password for 'https://ci-bot@good.example': extra",
        ] {
            assert_eq!(ask(&session, prompt), None, "{prompt}");
        }
    }

    #[test]
    fn ssh_never_uses_the_accounts_config_agent_or_keys() {
        let command = ssh_command(
            None,
            Some(Path::new("/data/git/known_hosts")),
            Some(("git.example.com", "203.0.113.7")),
        )
        .unwrap();
        for option in [
            "-F /dev/null",
            "-o IdentitiesOnly=yes",
            "-o IdentityAgent=none",
            "-o IdentityFile=/dev/null",
            "-o BatchMode=yes",
            "-o UserKnownHostsFile='/data/git/known_hosts'",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o HostKeyAlias=git.example.com",
            "-o HostName=203.0.113.7",
        ] {
            assert!(command.contains(option), "{option} in {command}");
        }
        assert!(ssh_command(None, Some(Path::new("/it's")), None).is_err());
    }

    #[test]
    fn a_deploy_key_is_the_only_identity_ssh_is_given() {
        let command = ssh_command(
            Some(Path::new("/data/git/.session-x1/identity")),
            Some(Path::new("/data/git/known_hosts")),
            None,
        )
        .unwrap();
        for option in [
            "-F /dev/null",
            "-o IdentitiesOnly=yes",
            "-o IdentityAgent=none",
            "-o BatchMode=yes",
            "-o IdentityFile='/data/git/.session-x1/identity'",
        ] {
            assert!(command.contains(option), "{option} in {command}");
        }
        assert_eq!(command.matches("IdentityFile").count(), 1, "{command}");
        assert!(!command.contains("IdentityFile=/dev/null"), "{command}");
        // The path goes through a shell (git runs GIT_SSH_COMMAND with one): a path that
        // could break out of its quotes is refused, not quoted differently.
        for bad in ["/data/it's/identity", "/data/a\nb/identity"] {
            assert!(
                ssh_command(Some(Path::new(bad)), None, None).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_identity_file_is_private_to_the_session_and_goes_with_it() {
        let parent = tempfile::tempdir().unwrap();
        let session = Session::open(parent.path()).unwrap();
        let key = Secret::new(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
        );
        let path = session.write_ssh_identity(&key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(fs::read_to_string(&path).unwrap().ends_with("KEY-----\n"));
        assert!(
            session.write_ssh_identity(&key).is_err(),
            "never overwritten"
        );
        drop(session);
        assert!(!path.exists(), "removed with the session");
    }
}
