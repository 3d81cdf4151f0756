//! The real `berth` binary, for tests that stop, kill and restart it: started with a command
//! from [`super::berth_command`], driven through its JSON API with a token, and cleaned up
//! whatever happens to the test (releases and the router outlive Berth by design, so a
//! test ends them with `berth stop-releases`).

use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

/// A running `berth serve`.
pub struct RealBerth {
    pub child: Child,
    /// Where it listens, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// What it logged (JSON lines).
    pub log: Arc<Mutex<String>>,
}

impl RealBerth {
    /// Starts `command` (a [`super::berth_command`] with the test's settings) on a free
    /// port; answers once it listens.
    pub fn start(mut command: Command) -> RealBerth {
        let mut child = command
            .env("BERTH_ADDR", "127.0.0.1:0")
            .env("BERTH_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(event) = serde_json::from_str::<Value>(&line) {
                        if event["message"] == "Berth is listening" {
                            let _ =
                                sender.send(event["url"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let url = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("berth did not start:\n{}", log.lock().unwrap()));
        RealBerth { child, url, log }
    }

    /// `kill -9`: no shutdown at all.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RealBerth {
    /// A failing test must not leave its Berth running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an administration command (`berth user create …`) to success; answers its output.
pub fn admin(mut command: Command, args: &[&str], stdin: &str) -> String {
    command.args(args);
    let output = super::output_of(command, stdin);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Creates the owner `ops@example.com` of team `acme` and answers an API token of theirs.
pub fn owner_token(command: impl Fn() -> Command) -> String {
    admin(
        command(),
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--team",
            "acme",
        ],
        "a long enough password\n",
    );
    admin(
        command(),
        &[
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ci",
        ],
        "",
    )
}

/// Ends the releases (and the router) of a data dir when dropped: declare it after the
/// temporary directory and before any [`RealBerth`], so that it runs after every Berth is
/// gone and before the directory is.
pub struct StopReleases(pub Box<dyn Fn() -> Command>);

impl Drop for StopReleases {
    fn drop(&mut self) {
        let mut command = (self.0)();
        command.arg("stop-releases");
        let _ = super::output_of(command, "");
    }
}

/// The JSON API of a [`RealBerth`], as a token holder.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn operation(&self, id: i64) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/operations/{id}"),
            None,
        )
        .await
        .1["operation"]
            .clone()
    }

    /// Team `acme`'s app `handle`.
    pub async fn app(&self, handle: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/teams/acme/apps/{handle}"),
            None,
        )
        .await
        .1["app"]
            .clone()
    }

    /// Waits (up to `within`) for operation `id` to end; answers it.
    pub async fn wait(&self, id: i64, within: Duration) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let operation = self.operation(id).await;
            if ["succeeded", "failed", "cancelled"]
                .contains(&operation["status"].as_str().unwrap_or(""))
            {
                return operation;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "operation {id} did not end: {operation}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The run records of the releases running from `data_dir` (`engine/run/monitors/*.json`),
/// once at most one is left or 30 s have passed: the release a successful deploy replaced
/// stops after the deploy is recorded.
pub async fn release_records_once_settled(data_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let records = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(data_dir.join("engine/run/monitors"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default()
    };
    for _ in 0..300 {
        if records().len() <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    records()
}
