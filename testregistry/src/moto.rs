//! moto (PyPI `moto[server]`), the AWS emulator, standing in for ECR, STS and IAM in the
//! ECR tests: one `moto_server` per test on a free loopback port, which checks SigV4 and IAM
//! policies (it is started with `INITIAL_NO_AUTH_ACTION_COUNT` and prepared through its
//! IAM API by `moto.py`, so the right key works, a wrong secret gets 403
//! `SignatureDoesNotMatch` and an unknown key 403 `InvalidClientTokenId`).
//!
//! moto's tokens decode to `AWS:<account>-auth-token` ([`Moto::TOKEN_PASSWORD`]) and expire
//! at 2015-01-01 ([`Moto::TOKEN_EXPIRES_AT`]).
//!
//! `moto_server` and its python come from `BERTH_MOTO_BIN` (the virtualenv's `bin`
//! directory that `scripts/setup.sh` makes), else the newest `~/.cache/berth/moto-*/bin`,
//! else the PATH.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How many requests `moto.py` makes before moto starts checking signatures.
const SETUP_REQUESTS: u32 = 7;

/// Keys and a role made in a [`Moto`].
#[derive(Clone, Debug, serde::Deserialize)]
pub struct MotoKeys {
    /// May call `ecr:GetAuthorizationToken` and `sts:AssumeRole`.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// A key with no permission at all (AccessDenied).
    pub bare_access_key_id: String,
    pub bare_secret_access_key: String,
    /// A role that may call `ecr:GetAuthorizationToken`.
    pub role_arn: String,
}

pub struct Moto {
    /// `http://127.0.0.1:PORT`: both the ECR and the STS endpoint.
    pub url: String,
    pub keys: MotoKeys,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// The account moto answers as.
    pub const ACCOUNT: &'static str = "123456789012";
    /// The password of every token moto mints (the user is `AWS`).
    pub const TOKEN_PASSWORD: &'static str = "123456789012-auth-token";
    /// When moto says its tokens expire: 2015-01-01T00:00:00Z, in Unix ms.
    pub const TOKEN_EXPIRES_AT: i64 = 1_420_070_400_000;

    /// Starts a moto server and prepares its keys and role.
    pub async fn start() -> Moto {
        let bin = bin_dir();
        let server = bin
            .as_ref()
            .map(|d| d.join("moto_server"))
            .unwrap_or_else(|| "moto_server".into());
        let python = bin
            .as_ref()
            .map(|d| d.join("python"))
            .unwrap_or_else(|| "python3".into());
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("a log file for moto");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string())
                .stdin(Stdio::null())
                .stdout(log.reopen().unwrap())
                .stderr(log.reopen().unwrap())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "testregistry: cannot run {} ({e}); `. scripts/setup.sh; berth_setup test` installs moto[server] from PyPI",
                        server.display()
                    )
                });
            let url = format!("http://127.0.0.1:{port}");
            let mut moto = Moto {
                url: url.clone(),
                keys: MotoKeys {
                    access_key_id: String::new(),
                    secret_access_key: String::new(),
                    bare_access_key_id: String::new(),
                    bare_secret_access_key: String::new(),
                    role_arn: String::new(),
                },
                child,
                log,
            };
            if let Err(why) = moto.wait_until_ready().await {
                failures.push(why);
                continue;
            }
            let script = tempfile::Builder::new().suffix(".py").tempfile().unwrap();
            std::fs::write(script.path(), include_str!("moto.py")).unwrap();
            let output = Command::new(&python)
                .arg(script.path())
                .arg(&url)
                .output()
                .unwrap_or_else(|e| panic!("testregistry: cannot run {} ({e})", python.display()));
            assert!(
                output.status.success(),
                "testregistry: preparing moto failed: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                moto.log()
            );
            moto.keys = serde_json::from_slice(&output.stdout).expect("moto.py prints the keys");
            return moto;
        }
        panic!(
            "testregistry: moto did not start:\n{}",
            failures.join("\n---\n")
        );
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = self.url.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server exited ({status}):\n{}", self.log()));
            }
            // moto's own API answers without counting as an action.
            if let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: {address}\r\n\r\n");
                let mut answer = Vec::new();
                if stream.write_all(request.as_bytes()).await.is_ok()
                    && stream.read_to_end(&mut answer).await.is_ok()
                    && answer.starts_with(b"HTTP/1.")
                {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "moto_server did not answer in 30 s:\n{}",
            self.log()
        ))
    }

    /// What moto printed (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BERTH_MOTO_BIN") {
        return Some(dir.into());
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache.join("berth"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("moto-"))
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("moto_server").exists())
        .collect();
    found.sort();
    found.pop()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
