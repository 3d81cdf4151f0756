//! The `docker-registry` process: its config file, its start on a free loopback port, and
//! its end.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BINARY: &str = "docker-registry";
const START_ATTEMPTS: u32 = 5;
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct RegistryProcess {
    child: Child,
    pub log: PathBuf,
}

impl RegistryProcess {
    /// Writes the config (storage and logs in `dir`, `auth` as the `auth:` section) and
    /// starts the registry, retrying with another port when the chosen one was taken.
    pub async fn start(dir: &Path, auth: &str) -> (RegistryProcess, u16) {
        let storage = dir.join("storage");
        let config_path = dir.join("config.yml");
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            // Free now, but another test may take it before the registry binds it: the
            // registry then exits with "address already in use" and we try again.
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-registry-http-secret\n\
                 {auth}",
                storage = storage.display(),
            );
            fs::write(&config_path, config).expect("write the registry's config");
            let log = dir.join(format!("registry-{attempt}.log"));
            let log_file = fs::File::create(&log).expect("create the registry's log file");
            let spawned = Command::new(BINARY)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log file handle"))
                .stderr(log_file)
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(e) => panic!(
                    "testregistry: cannot run `{BINARY}` ({e}); install the Debian package \
                     docker-registry (apt-get install docker-registry)"
                ),
            };
            let mut process = RegistryProcess { child, log };
            match process.wait_until_listening(port).await {
                Ok(()) => return (process, port),
                Err(why) => {
                    process.stop();
                    let retry = why.contains("address already in use");
                    failures.push(why);
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!(
            "testregistry: the registry did not start:\n{}",
            failures.join("\n---\n")
        );
    }

    /// Ready is when the registry logs that it listens on our port (it logs this after
    /// binding): a successful connect alone could reach another test's registry that took
    /// the port first.
    async fn wait_until_listening(&mut self, port: u16) -> Result<(), String> {
        let ready_line = format!("listening on 127.0.0.1:{port}");
        let began = Instant::now();
        loop {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(&ready_line) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("the registry exited ({status}); its log:\n{log}"));
            }
            if began.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the registry did not listen within {START_TIMEOUT:?}; its log:\n{log}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn stop(&mut self) {
        // SIGKILL: nothing in a test registry needs a graceful shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind a free port on 127.0.0.1")
}
