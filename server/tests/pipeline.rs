//! `berth deploy`, `berth config:set`, `berth config:unset` and `berth operation:follow`
//! against a running Berth (the real binary on both sides), as a CI pipeline uses them:
//! `BERTH_URL` and `BERTH_TOKEN` in the environment, the registry password on standard
//! input, the exit status saying how the operation ended.

mod support;

use serde_json::json;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
};
use support::{
    berth_command,
    binary::{owner_token, Api, RealBerth, StopReleases},
    output_of,
};
use testregistry::TestRegistry;

const PASSWORD: &str = "pipeline-pull-pass-7c21e9";

fn server(data_dir: &Path, registry: &str) -> Command {
    let mut command = berth_command(data_dir);
    command
        .env("BERTH_INSECURE_REGISTRIES", registry)
        .env("BERTH_HEALTH_TIMEOUT_SECS", "20")
        .env("BERTH_PORT_RANGE", "23400-23499");
    command
}

/// The `berth` client, with only what a pipeline gives it.
fn cli(url: &str, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_URL", url)
        .env("BERTH_TOKEN", token)
        .args(args);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the client to its end; answers (exit code, stdout, stderr).
fn run(command: Command, stdin: &str) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = output_of(command, stdin);
    (status.code().unwrap_or(-1), text(&stdout), text(&stderr))
}

struct Pipeline {
    registry: TestRegistry,
    host: String,
    api: Api,
    berth: RealBerth,
    token: String,
    _cleanup: StopReleases,
    _dir: tempfile::TempDir,
}

async fn pipeline() -> Pipeline {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let host = registry.host.as_str().to_owned();
    for (tag, body) in [("1", "release one"), ("2", "release two")] {
        registry
            .push_serving_image("team/web", tag, ("puller", PASSWORD), body)
            .await;
    }
    registry
        .push_broken_image("team/web", "broken", ("puller", PASSWORD))
        .await;
    registry
        .push_slow_image("team/web", "slow", ("puller", PASSWORD), 4)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let server_on = {
        let (dir, host) = (dir.path().to_owned(), host.clone());
        move || server(&dir, &host)
    };
    let cleanup = StopReleases(Box::new(server_on.clone()));
    let token = owner_token(&server_on);
    let berth = RealBerth::start(server_on());
    let api = Api::new(&berth.url, &token);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps",
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Pipeline {
        registry,
        host,
        api,
        berth,
        token,
        _cleanup: cleanup,
        _dir: dir,
    }
}

impl Pipeline {
    fn cli(&self, args: &[&str]) -> Command {
        cli(&self.berth.url, &self.token, args)
    }

    /// `berth deploy --app web --docker-image <the tag's image> EXTRA…`, run to its end with
    /// `stdin`; answers (exit code, stdout, stderr).
    fn deploy(&self, tag: &str, extra: &[&str], stdin: &str) -> (i32, String, String) {
        let image = self.image(tag);
        let mut args = vec!["deploy", "--app", "web", "--docker-image", image.as_str()];
        args.extend_from_slice(extra);
        run(self.cli(&args), stdin)
    }

    fn image(&self, tag: &str) -> String {
        format!("{}/team/web:{tag}", self.host)
    }

    /// What the app's current release answers at `/`.
    async fn serving(&self) -> String {
        let app = self.api.app("web").await;
        let url = app["release"]["port_url"].as_str().expect("a release");
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }
}

#[tokio::test]
async fn a_pipeline_deploys_with_the_password_from_stdin_and_the_exit_status_tells_how_it_ended() {
    let p = pipeline().await;

    // A first deploy with the registry login (remembered on the app) and a variable riding
    // along; no --team: the token's user is in one team. The log is followed to the end.
    let (code, stdout, stderr) = p.deploy(
        "1",
        &[
            "--private-registry-username",
            "puller",
            "--private-registry-password-stdin",
            "GREETING=hello",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("(deploy of"), "{stderr}");
    assert!(stdout.contains("Operation succeeded"), "{stdout}");
    assert!(stderr.contains("succeeded."), "{stderr}");
    assert_eq!(p.serving().await.trim(), "release one");
    let config = p
        .api
        .call(
            reqwest::Method::GET,
            "/api/v1/teams/acme/apps/web/config",
            None,
        )
        .await
        .1;
    assert!(
        config["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["key"] == "GREETING"),
        "{config}"
    );

    // The next deploy uses the login remembered on the app; a release that never answers
    // fails the deploy: exit status 1, the reason said, the previous release serving.
    let (code, stdout, stderr) = run(
        p.cli(&[
            "deploy",
            "--app",
            "web",
            "--team",
            "acme",
            "--docker-image",
            &p.image("broken"),
        ]),
        "",
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("failed:"), "{stderr}");
    assert!(stdout.contains("Operation failed"), "{stdout}");
    assert_eq!(p.serving().await.trim(), "release one");

    // Refused before anything is queued: a tag the registry does not have, and a wrong
    // password; each error names the flag to fix.
    let (code, _, stderr) = p.deploy("nope", &[], "");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("berth: --docker-image: "), "{stderr}");
    let (code, _, stderr) = p.deploy(
        "2",
        &[
            "--private-registry-username",
            "puller",
            "--private-registry-password-stdin",
        ],
        "not-the-password\n",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("berth: --private-registry-password-stdin: "),
        "{stderr}"
    );

    // The password on the command line works when the user insists, with a warning.
    let (code, stdout, stderr) = p.deploy(
        "2",
        &[
            "--private-registry-username",
            "puller",
            "--private-registry-password",
            PASSWORD,
            "--this-deploy-only",
        ],
        "",
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("prefer --private-registry-password-stdin"),
        "{stderr}"
    );
    assert_eq!(p.serving().await.trim(), "release two");

    // Neither the password nor the token is in anything the client or Berth printed.
    let log = p.berth.log_text();
    for secret in [PASSWORD, p.token.as_str()] {
        assert!(!log.contains(secret), "Berth's log holds a secret");
    }
    let history = p
        .api
        .call(
            reqwest::Method::GET,
            "/api/v1/teams/acme/apps/web/operations",
            None,
        )
        .await
        .1;
    assert!(!history.to_string().contains(PASSWORD));
    let _ = &p.registry;
}

#[tokio::test]
async fn config_changes_and_a_detached_deploy_are_followed_live_to_their_end() {
    let p = pipeline().await;
    let (code, stdout, stderr) = p.deploy(
        "1",
        &[
            "--private-registry-username",
            "puller",
            "--private-registry-password-stdin",
        ],
        PASSWORD,
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // config:set and config:unset follow the restart they cause.
    let (code, stdout, stderr) = run(
        p.cli(&["config:set", "--app", "web", "GREETING=bye", "OTHER=x"]),
        "",
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("(configure)"), "{stderr}");
    assert!(stdout.contains("Operation succeeded"), "{stdout}");
    let (code, stdout, stderr) = run(p.cli(&["config:unset", "--app", "web", "OTHER"]), "");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let config = p
        .api
        .call(
            reqwest::Method::GET,
            "/api/v1/teams/acme/apps/web/config",
            None,
        )
        .await
        .1
        .to_string();
    assert!(
        config.contains("GREETING") && !config.contains("OTHER"),
        "{config}"
    );

    // A detached deploy prints the operation's id; operation:follow streams its log while
    // it runs (the slow release takes seconds to answer) and ends with its outcome.
    let (code, stdout, stderr) = p.deploy("slow", &["--detach"], "");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let id: i64 = stdout.trim().parse().expect("the operation's id");
    let mut follow = p.cli(&["operation:follow", &id.to_string()]);
    let mut child = follow
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    assert!(!first.is_empty());
    let running = p.api.operation(id).await;
    assert!(
        ["queued", "running"].contains(&running["status"].as_str().unwrap()),
        "the first line came only once the operation ended: {running}"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("Operation succeeded")),
        "{rest:?}"
    );
    // Followed again after the end: the whole log, then the same outcome.
    let (code, stdout, _) = run(p.cli(&["operation:follow", &id.to_string()]), "");
    assert_eq!(code, 0);
    assert!(stdout.starts_with(&first), "{stdout}");

    // A failed operation followed afterwards exits 1 too.
    let (code, stdout, _) = p.deploy("broken", &["--detach"], "");
    assert_eq!(code, 0);
    let (code, _, stderr) = run(p.cli(&["operation:follow", stdout.trim()]), "");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("operation {} failed", stdout.trim())),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_wrong_setting_or_command_line_is_said_plainly_with_its_exit_status() {
    let p = pipeline().await;
    // Another team's operation, or none, is "not found".
    let (code, _, stderr) = run(p.cli(&["operation:follow", "99999"]), "");
    assert_eq!(code, 1);
    assert!(stderr.to_lowercase().contains("not found"), "{stderr}");
    // A revoked or mistyped token.
    let (code, _, stderr) = run(
        cli(
            &p.berth.url,
            "berth_not-a-token",
            &["operation:follow", "1"],
        ),
        "",
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("BERTH_TOKEN was refused"), "{stderr}");
    assert!(!stderr.contains("not-a-token"), "{stderr}");
    // No address, or one that is not Berth's.
    let (code, _, stderr) = run(cli("", &p.token, &["operation:follow", "1"]), "");
    assert_eq!(code, 1);
    assert!(stderr.contains("BERTH_URL: set it"), "{stderr}");
    let (code, _, stderr) = run(cli("ftp://x", &p.token, &["operation:follow", "1"]), "");
    assert_eq!(code, 1);
    assert!(stderr.contains("BERTH_URL"), "{stderr}");
    // The command line itself: clap's usage errors exit 2; a value is never echoed back.
    let (code, _, stderr) = run(p.cli(&["deploy", "--docker-image", "x"]), "");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--app"), "{stderr}");
    let (code, _, stderr) = run(p.cli(&["config:set", "--app", "web", "s3cr3t-value"]), "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("KEY=VALUE") && !stderr.contains("s3cr3t"),
        "{stderr}"
    );
    let (code, _, stderr) = p.deploy(
        "1",
        &[
            "--private-registry-username",
            "puller",
            "--private-registry-password-stdin",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("standard input is empty"), "{stderr}");
    let (code, _, stderr) = run(
        p.cli(&["deploy", "--app", "Not A Handle", "--docker-image", "x"]),
        "",
    );
    assert_eq!(code, 1);
    assert!(stderr.starts_with("berth: --app: "), "{stderr}");
}
