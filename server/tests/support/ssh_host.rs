//! A real git host over ssh: Debian's sshd (openssh-server) on a free port of 127.0.0.1,
//! started by the test itself (there is no systemd here), with one account whose login
//! shell is git-shell, as on a code host, and bare repositories in that account's home.
//! Which keys may read them is the host's `authorized_keys`, which a test rewrites at will
//! ([`GitSshHost::authorize`]); sshd reads it at every connection.
//!
//! Needs the Debian packages openssh-server and openssh-client and git's git-shell, and
//! runs as root (it creates the account): a missing one fails the test, never skips it.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The account git-shell serves repositories as; shared by every test (made once).
pub const USER: &str = "berth-git";
const SSHD: &str = "/usr/sbin/sshd";
const START_ATTEMPTS: u32 = 5;
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct GitSshHost {
    pub port: u16,
    child: Child,
    /// sshd's own files (configuration, host key, log): root's only.
    config: tempfile::TempDir,
    /// This host's `authorized_keys` and repositories, in the account's home and owned by
    /// it (sshd reads `authorized_keys` as the account; git refuses a repository its user
    /// does not own).
    site: tempfile::TempDir,
}

impl GitSshHost {
    /// Starts sshd with nobody authorised yet.
    pub fn start() -> GitSshHost {
        let home = account();
        let site = tempfile::Builder::new()
            .prefix("site-")
            .tempdir_in(&home)
            .expect("a directory in the git account's home");
        chown(site.path());
        let config = tempfile::tempdir().unwrap();
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "berth-test-host",
                "-f",
            ])
            .arg(config.path().join("host_ed25519")));
        // sshd's privilege separation directory (made by its init script, which nobody ran).
        fs::create_dir_all("/run/sshd").unwrap();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            // Free now, but another test may take it first: sshd then fails to bind, and we
            // try another.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config_file = config.path().join("sshd_config");
            fs::write(
                &config_file,
                format!(
                    "Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {dir}/host_ed25519\n\
                     PidFile {dir}/sshd.pid\n\
                     AuthorizedKeysFile {site}/authorized_keys\n\
                     AllowUsers {USER}\n\
                     PermitRootLogin no\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     LogLevel VERBOSE\n",
                    dir = config.path().display(),
                    site = site.path().display(),
                ),
            )
            .unwrap();
            let log = config.path().join(format!("sshd-{attempt}.log"));
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config_file)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run {SSHD} ({e}): install the Debian package openssh-server \
                         (scripts/setup.sh test does)"
                    )
                });
            match wait_until_listening(&mut child, port, &log) {
                Ok(()) => {
                    let host = GitSshHost {
                        port,
                        child,
                        config,
                        site,
                    };
                    host.authorize(&[]);
                    return host;
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let retry = why.contains("Address already in use");
                    failures.push(why);
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("sshd did not start:\n{}", failures.join("\n---\n"));
    }

    /// `127.0.0.1:PORT`, as `BERTH_EGRESS_ALLOW` lists it.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Makes `authorized_keys` hold exactly these public keys (one `ssh-ed25519 …` line
    /// each); the next connection sees them.
    pub fn authorize(&self, public_keys: &[&str]) {
        let file = self.site.path().join("authorized_keys");
        let mut text = String::new();
        for key in public_keys {
            text.push_str(key.trim());
            text.push('\n');
        }
        fs::write(&file, text).unwrap();
        chown(&file);
    }

    /// A bare copy of the repository at `source` served as `name`; answers its ssh URL.
    pub fn serve_repository(&self, name: &str, source: &Path) -> String {
        let bare = self.site.path().join(format!("{name}.git"));
        run(Command::new("git")
            .args(["clone", "--bare", "--quiet"])
            .arg(source)
            .arg(&bare)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.site.path()));
        chown(&bare);
        format!("ssh://{USER}@127.0.0.1:{}{}", self.port, bare.display())
    }

    /// An empty bare repository served as `name`, as a platform's git remote that Berth
    /// pushes to; answers its ssh URL.
    pub fn serve_empty_repository(&self, name: &str) -> String {
        let bare = self.site.path().join(format!("{name}.git"));
        run(Command::new("git")
            .args(["init", "--bare", "--quiet", "-b", "main"])
            .arg(&bare)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.site.path()));
        chown(&bare);
        format!("ssh://{USER}@127.0.0.1:{}{}", self.port, bare.display())
    }

    /// The commit branch `branch` of repository `name` points at, if it exists (read as
    /// root, from a repository the git account owns: git is told that is fine).
    pub fn branch_commit(&self, name: &str, branch: &str) -> Option<String> {
        let bare = self.site.path().join(format!("{name}.git"));
        let output = Command::new("git")
            .args(["-c", "safe.directory=*", "--git-dir"])
            .arg(&bare)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}^{{commit}}"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.site.path())
            .output()
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The branches of repository `name`.
    pub fn branches(&self, name: &str) -> Vec<String> {
        let bare = self.site.path().join(format!("{name}.git"));
        let output = Command::new("git")
            .args(["-c", "safe.directory=*", "--git-dir"])
            .arg(&bare)
            .args(["for-each-ref", "--format=%(refname:short)", "refs/heads"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.site.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What sshd logged (for failure messages: which key it was offered, and why it said no).
    pub fn log(&self) -> String {
        let mut logs: Vec<PathBuf> = fs::read_dir(self.config.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        logs.last()
            .map(|log| fs::read_to_string(log).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for GitSshHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ready is when sshd logs that it listens on `port` (a connection alone could reach another
/// test's sshd that took the port first).
fn wait_until_listening(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let ready = format!("Server listening on 127.0.0.1 port {port}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(&ready) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited ({status}):\n{text}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "sshd did not listen within {START_TIMEOUT:?}:\n{text}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The git account's home, made on first use: an account whose shell is git-shell, with no
/// password but unlocked (`useradd` leaves it locked, `!` in /etc/shadow, and sshd refuses a
/// locked account even for keys; `*` allows keys only). Safe to run again and from several
/// test processes at once.
fn account() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let shell = git_shell();
        if passwd_entry().is_none() {
            let made = Command::new("useradd")
                .args(["--create-home", "--shell"])
                .arg(&shell)
                .arg(USER)
                .output()
                .unwrap_or_else(|e| panic!("cannot run useradd ({e}): the tests run as root"));
            // Exit 9: another test process made it first.
            assert!(
                made.status.success() || made.status.code() == Some(9),
                "useradd {USER}: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        run(Command::new("usermod")
            .args(["--password", "*", "--shell"])
            .arg(&shell)
            .arg(USER));
        let entry = passwd_entry().expect("the git account exists");
        let home = PathBuf::from(entry.split(':').nth(5).expect("a home in the passwd entry"));
        fs::create_dir_all(&home).unwrap();
        chown(&home);
        home
    })
    .clone()
}

fn passwd_entry() -> Option<String> {
    let output = Command::new("getent")
        .args(["passwd", USER])
        .output()
        .expect("getent runs");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// git-shell: on the PATH, or beside git's own programs.
fn git_shell() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("git-shell"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_default();
    on_path
        .or_else(|| {
            let exec_path = Command::new("git").arg("--exec-path").output().ok()?;
            let dir = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
            let candidate = Path::new(&dir).join("git-shell");
            candidate.is_file().then_some(candidate)
        })
        .expect("git-shell is installed with git (Debian: /usr/bin/git-shell)")
}

/// Hands `path` (and everything in it) to the git account.
fn chown(path: &Path) {
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:"))
        .arg(path));
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
