//! `berth deploy`, `berth config:set`, `berth config:unset` and `berth operation:follow`:
//! Berth's JSON API from a CI pipeline, in the words Aptible's CLI uses. The server is
//! `BERTH_URL`, the caller `BERTH_TOKEN` (an API token); neither needs Berth's own settings.
//!
//! An operation is followed to its end over `GET /api/v1/operations/{id}/events`: its log on
//! standard output, what happens to it on standard error, and the exit status says how it
//! ended (0 succeeded, 1 failed, was cancelled or was refused; 2 for a wrong command line).

use anyhow::{anyhow, bail, Context};
use clap::Args;
use domain::OperationStatus;
use domain::{AppHandle, TeamHandle};
use serde_json::{json, Map, Value};
use std::{io::Read, time::Duration};
use views::{
    api::{ErrorBody, MeBody, OperationBody},
    LogLineRow, OperationProgress, OperationRow,
};

/// Where the operation's app is.
#[derive(Args, Debug)]
pub struct AppArgs {
    /// The app's handle.
    #[arg(long)]
    app: String,
    /// The team's handle (default: the only team the token's user is in).
    #[arg(long, env = "BERTH_TEAM")]
    team: Option<String>,
    /// Print the operation's id and return once it is queued, instead of following it.
    #[arg(long)]
    detach: bool,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    target: AppArgs,
    /// For an image app: the image to deploy (`registry/namespace/repo:tag` or `…@sha256:…`).
    #[arg(long, value_name = "IMAGE")]
    docker_image: Option<String>,
    /// For a Dockerfile app: the branch, tag or commit to build.
    #[arg(long, value_name = "REF", conflicts_with = "docker_image")]
    git_commitish: Option<String>,
    /// The registry username that pulls the image (with a password or token).
    #[arg(long, value_name = "USERNAME")]
    private_registry_username: Option<String>,
    /// Read the registry password (or token) from the first line of standard input:
    /// `aws ecr get-login-password | berth deploy … --private-registry-password-stdin`.
    #[arg(long, conflicts_with = "private_registry_password")]
    private_registry_password_stdin: bool,
    /// The registry password on the command line, where other users of this machine and
    /// the shell history can read it: prefer --private-registry-password-stdin.
    #[arg(long, value_name = "PASSWORD")]
    private_registry_password: Option<String>,
    /// Use only this deploy's registry credentials, without remembering them on the app.
    #[arg(long)]
    this_deploy_only: bool,
    /// Pull with this team credential (by name) instead.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["private_registry_username", "private_registry_password_stdin", "private_registry_password"]
    )]
    credential: Option<String>,
    /// For a Dockerfile app: the registry (one a `FROM` names) that gets the private
    /// registry credentials.
    #[arg(long, value_name = "HOST")]
    private_registry_host: Option<String>,
    /// Configuration changes that ride along with the deploy (one restart): KEY=VALUE.
    #[arg(value_name = "KEY=VALUE")]
    env: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConfigSetArgs {
    #[command(flatten)]
    target: AppArgs,
    /// The variables to set (their values are kept secret): KEY=VALUE.
    #[arg(value_name = "KEY=VALUE", required = true)]
    env: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConfigUnsetArgs {
    #[command(flatten)]
    target: AppArgs,
    /// The variables to remove.
    #[arg(value_name = "KEY", required = true)]
    keys: Vec<String>,
}

#[derive(Args, Debug)]
pub struct FollowArgs {
    /// The operation's id (as `berth deploy --detach` printed it, or the console shows it).
    id: i64,
}

/// How long a lost connection is tried again before giving up: Berth restarting during a
/// deploy is expected, and the operation goes on without it.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// The most of standard input read for a password (an ECR token is about 2 KB).
const PASSWORD_LIMIT: u64 = 64 * 1024;

pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let password = match (
        args.private_registry_password_stdin,
        args.private_registry_password,
    ) {
        (true, _) => Some(password_from_stdin()?),
        (false, Some(password)) => {
            eprintln!(
                "berth: warning: --private-registry-password is readable by other users of this \
                 machine and kept in shell history; prefer --private-registry-password-stdin"
            );
            Some(password)
        }
        (false, None) => None,
    };
    if password.is_some() && args.private_registry_username.is_none() {
        bail!("--private-registry-username: give the username that goes with the password");
    }
    let env = env_assignments(&args.env)?;
    let mut body = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.to_owned(), value);
        }
    };
    put("image", args.docker_image.map(Value::from));
    put("git_ref", args.git_commitish.map(Value::from));
    put(
        "registry_username",
        args.private_registry_username.map(Value::from),
    );
    put("registry_password", password.map(Value::from));
    put("credential", args.credential.map(Value::from));
    put(
        "private_registry_host",
        args.private_registry_host.map(Value::from),
    );
    if args.this_deploy_only {
        put("remember_credentials", Some(Value::Bool(false)));
    }
    if !env.is_empty() {
        put("env", Some(Value::Object(env)));
    }
    let (team, app) = client.target(&args.target).await?;
    let queued = client
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/teams/{team}/apps/{app}/deploys"),
            Some(Value::Object(body)),
        )
        .await?;
    client.queued(queued, args.target.detach).await
}

pub async fn config_set(args: ConfigSetArgs) -> anyhow::Result<()> {
    let env = env_assignments(&args.env)?;
    configure(&args.target, env).await
}

pub async fn config_unset(args: ConfigUnsetArgs) -> anyhow::Result<()> {
    let mut env = Map::new();
    for key in &args.keys {
        if key.is_empty() || key.contains('=') {
            bail!("{key:?}: give the names of the variables to remove, without values");
        }
        env.insert(key.clone(), Value::Null);
    }
    configure(&args.target, env).await
}

async fn configure(target: &AppArgs, env: Map<String, Value>) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    let (team, app) = client.target(target).await?;
    let queued = client
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/teams/{team}/apps/{app}/config"),
            Some(json!({ "env": env })),
        )
        .await?;
    client.queued(queued, target.detach).await
}

pub async fn operation_follow(args: FollowArgs) -> anyhow::Result<()> {
    let client = Client::from_env()?;
    client.follow(args.id).await
}

/// `KEY=VALUE` arguments as the API's `env` object (each value secret, as Berth keeps them).
fn env_assignments(arguments: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut env = Map::new();
    for argument in arguments {
        let Some((key, value)) = argument.split_once('=') else {
            // The argument may be a value someone meant to keep secret: not repeated.
            bail!(
                "an argument without \"=\": configuration is given as KEY=VALUE (to remove a \
                 variable, use `berth config:unset --app APP KEY`)"
            );
        };
        if key.is_empty() {
            bail!("an argument starts with \"=\": give it as KEY=VALUE");
        }
        if env.insert(key.to_owned(), Value::from(value)).is_some() {
            bail!("{key}: given twice");
        }
    }
    Ok(env)
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(PASSWORD_LIMIT)
        .read_to_string(&mut input)
        .context("--private-registry-password-stdin: reading standard input")?;
    let line = input.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("--private-registry-password-stdin: standard input is empty; pipe the password in");
    }
    Ok(line.to_owned())
}

struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl Client {
    fn from_env() -> anyhow::Result<Self> {
        let url = std::env::var("BERTH_URL").unwrap_or_default();
        if url.trim().is_empty() {
            bail!("BERTH_URL: set it to your Berth's address, e.g. https://berth.example.com");
        }
        let base = reqwest::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                anyhow!("BERTH_URL: {url:?} is not an http(s) address such as https://berth.example.com")
            })?;
        let token = std::env::var("BERTH_TOKEN").unwrap_or_default();
        let token = token.trim();
        if token.is_empty() {
            bail!(
                "BERTH_TOKEN: set it to an API token (API tokens in the console, or `berth token \
                 create` on the server)"
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("starting the HTTP client")?;
        Ok(Self {
            http,
            base,
            token: token.to_owned(),
        })
    }

    fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        // `path` starts with `/api/v1/`: kept under a Berth served below a path prefix.
        let base = self.base.as_str().trim_end_matches('/');
        reqwest::Url::parse(&format!("{base}{path}")).context("building the request's address")
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(self
            .http
            .request(method, self.url(path)?)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json"))
    }

    /// Sends a JSON request and answers the JSON answer, or the API's refusal in words.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .request(method, path)?
            .timeout(Duration::from_secs(300));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| anyhow!("reading Berth's answer: {e}"))?;
        if !status.is_success() {
            return Err(refusal(status, &text));
        }
        serde_json::from_str(&text).map_err(|_| {
            anyhow!("Berth answered {status} with something other than JSON: is BERTH_URL Berth's address?")
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        // reqwest's error names the URL, which carries no secret; its source says why.
        let why = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_else(|| error.to_string());
        anyhow!("cannot reach Berth at {}: {why}", self.base)
    }

    /// The team and app named on the command line, checked, the team found when not given.
    async fn target(&self, target: &AppArgs) -> anyhow::Result<(TeamHandle, AppHandle)> {
        let app = AppHandle::parse(&target.app).map_err(|e| anyhow!("--app: {e}"))?;
        if let Some(team) = &target.team {
            let team = TeamHandle::parse(team).map_err(|e| anyhow!("--team: {e}"))?;
            return Ok((team, app));
        }
        let me: MeBody =
            serde_json::from_value(self.send(reqwest::Method::GET, "/api/v1/me", None).await?)
                .context("reading /api/v1/me")?;
        match me.teams.as_slice() {
            [only] => Ok((
                TeamHandle::parse(&only.handle).map_err(|e| anyhow!("the team: {e}"))?,
                app,
            )),
            [] => bail!("--team: {} is in no team yet", me.user.email),
            teams => bail!(
                "--team: {} is in {} teams ({}); say which with --team or BERTH_TEAM",
                me.user.email,
                teams.len(),
                teams
                    .iter()
                    .map(|t| t.handle.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// An operation was queued: says so, then follows it unless `detach`.
    async fn queued(&self, answer: Value, detach: bool) -> anyhow::Result<()> {
        let OperationBody { operation } =
            serde_json::from_value(answer).context("reading the queued operation")?;
        eprintln!("{}", describe(&operation));
        if detach {
            println!("{}", operation.id);
            return Ok(());
        }
        self.follow(operation.id).await
    }

    /// Prints operation `id`'s log as it is written until the operation ends; succeeds when
    /// the operation did. A dropped stream (Berth restarting) is followed again from the
    /// last line printed.
    async fn follow(&self, id: i64) -> anyhow::Result<()> {
        let mut after = 0;
        let mut step: Option<String> = None;
        let mut lost_since: Option<std::time::Instant> = None;
        loop {
            let ended = match self.follow_once(id, &mut after, &mut step).await {
                Ok(Some(ended)) => Some(ended),
                Ok(None) => {
                    lost_since = None;
                    None
                }
                Err(Lost::Refused(error)) => return Err(error),
                Err(Lost::Connection(why)) => {
                    let since = *lost_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() > RECONNECT_FOR {
                        bail!("operation {id}: lost Berth for {} s ({why}); the operation goes on: `berth operation:follow {id}` follows it again", RECONNECT_FOR.as_secs());
                    }
                    None
                }
            };
            if let Some(progress) = ended {
                return match progress.status {
                    OperationStatus::Succeeded => {
                        eprintln!("Operation {id} succeeded.");
                        Ok(())
                    }
                    status => Err(anyhow!(
                        "operation {id} {}: {}",
                        status.as_str(),
                        progress.error.as_deref().unwrap_or("no reason recorded")
                    )),
                };
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// One stream of the operation's events: the final status when the stream carried it,
    /// `None` when the stream ended before (Berth stopping).
    async fn follow_once(
        &self,
        id: i64,
        after: &mut i64,
        step: &mut Option<String>,
    ) -> Result<Option<OperationProgress>, Lost> {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/api/v1/operations/{id}/events"),
            )
            .map_err(Lost::Refused)?
            .query(&[("after", *after)])
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| Lost::Connection(self.unreachable(e).to_string()))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Lost::Connection(format!("Berth answered {status}")));
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(Lost::Refused(refusal(status, &text)));
        }
        let mut response = response;
        let mut events = EventReader::default();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(None),
                Err(error) => return Err(Lost::Connection(self.unreachable(error).to_string())),
            };
            for (event, data) in events.push(&chunk) {
                match event.as_str() {
                    "lines" => {
                        let lines: Vec<LogLineRow> = serde_json::from_str(&data)
                            .map_err(|e| Lost::Refused(anyhow!("a log event Berth sent: {e}")))?;
                        for line in lines {
                            if line.id > *after {
                                println!("{}", line.line);
                                *after = line.id;
                            }
                        }
                    }
                    "status" => {
                        let progress: OperationProgress =
                            serde_json::from_str(&data).map_err(|e| {
                                Lost::Refused(anyhow!("a status event Berth sent: {e}"))
                            })?;
                        if progress.status.is_final() {
                            return Ok(Some(progress));
                        }
                        if progress.step != *step {
                            if let Some(now) = &progress.step {
                                eprintln!("--> {now}");
                            }
                            step.clone_from(&progress.step);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Why a stream of events ended early.
enum Lost {
    /// Berth said no (unknown operation, revoked token): following again will not help.
    Refused(anyhow::Error),
    /// The connection went (or Berth is restarting): following again may.
    Connection(String),
}

/// A line saying what was queued.
fn describe(operation: &OperationRow) -> String {
    let what = operation
        .image
        .as_deref()
        .or(operation.git_ref.as_deref())
        .map(|s| format!(" of {s}"))
        .unwrap_or_default();
    format!(
        "Operation {} ({}{what}) on {}/{} is {}.",
        operation.id,
        operation.kind.as_str(),
        operation.team,
        operation.app,
        operation.status.as_str()
    )
}

/// The API's refusal in the command line's words: the flag to fix, not the JSON field.
fn refusal(status: reqwest::StatusCode, text: &str) -> anyhow::Error {
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(text) else {
        return anyhow!("Berth answered {status}: is BERTH_URL Berth's address?");
    };
    let message = match error.reason.as_deref() {
        Some(reason) => format!("{} ({})", error.message, reason.replace('_', " ")),
        None => error.message,
    };
    match (status.as_u16(), error.field.as_deref()) {
        (401, _) => anyhow!("BERTH_TOKEN was refused: {message}"),
        (_, Some(field)) => anyhow!("{}: {message}", flag(field)),
        _ => anyhow!("{message}"),
    }
}

/// The command-line flag that gives an API field.
fn flag(field: &str) -> String {
    match field {
        "image" => "--docker-image".into(),
        "git_ref" => "--git-commitish".into(),
        "registry_username" => "--private-registry-username".into(),
        "registry_password" => "--private-registry-password-stdin".into(),
        "credential" | "credentials" => "--credential".into(),
        "remember" | "remember_credentials" => "--this-deploy-only".into(),
        "private_registry_host" => "--private-registry-host".into(),
        "handle" | "app" => "--app".into(),
        "team" => "--team".into(),
        // A configuration variable's name: its KEY=VALUE argument.
        other => other.strip_prefix("env.").unwrap_or(other).to_owned(),
    }
}

/// Server-sent events from a byte stream: `(event, data)` pairs as each blank line ends one.
#[derive(Default)]
struct EventReader {
    buffer: Vec<u8>,
    event: String,
    data: String,
}

impl EventReader {
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buffer.extend_from_slice(bytes);
        let mut done = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    done.push((
                        std::mem::take(&mut self.event),
                        std::mem::take(&mut self.data),
                    ));
                }
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match name {
                "event" => self.event = value.to_owned(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                // Comments (keep-alives), ids and retry hints.
                _ => {}
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunks_and_comments_ignored() {
        let mut reader = EventReader::default();
        assert!(reader.push(b": keep-alive\n\nevent: li").is_empty());
        let events = reader.push(b"nes\ndata: [1,\ndata: 2]\n\nevent: status\r\ndata:{}\r\n\r\n");
        assert_eq!(
            events,
            vec![
                ("lines".to_owned(), "[1,\n2]".to_owned()),
                ("status".to_owned(), "{}".to_owned())
            ]
        );
    }

    #[test]
    fn assignments_keep_everything_after_the_first_equals_and_refuse_repeats() {
        let env = env_assignments(&["A=b=c".into(), "EMPTY=".into()]).unwrap();
        assert_eq!(env["A"], "b=c");
        assert_eq!(env["EMPTY"], "");
        let twice = env_assignments(&["A=1".into(), "A=2".into()]).unwrap_err();
        assert_eq!(twice.to_string(), "A: given twice");
        // A value someone forgot the name of is not echoed.
        let bare = env_assignments(&["s3cr3t".into()]).unwrap_err();
        assert!(!bare.to_string().contains("s3cr3t"), "{bare}");
    }

    #[test]
    fn refusals_name_the_flag_to_fix() {
        let body = r#"{"error":{"kind":"verification_failed","message":"The registry refused the login.","field":"registry_password","reason":"wrong_credentials"}}"#;
        let error = refusal(reqwest::StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            error.to_string(),
            "--private-registry-password-stdin: The registry refused the login. (wrong credentials)"
        );
        let error = refusal(reqwest::StatusCode::BAD_GATEWAY, "<html>");
        assert!(error.to_string().contains("BERTH_URL"), "{error}");
    }
}
