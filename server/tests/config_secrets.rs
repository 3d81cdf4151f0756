//! Secret configuration (issue #11, findings 1 and 7): values are secret unless marked
//! plain, a secret value never names a base image, and no secret of an app reaches a viewer
//! or a log — through the API, the pages, the base check, the operation log, the runtime log
//! or the live stream. Real git repositories, a real registry, real buildah builds and
//! releases.

mod support;

use app::serverfns::{apps::ConfigureApp, members::SetViewersReadLogs};
use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use testregistry::TestRegistry;

const BASE_PASSWORD: &str = "secrets-base-pass-61d0c4";
/// A secret value under a name that does not look secret: secret because nobody marked it
/// plain.
const WORDS_SECRET: &str = "quiet-words-s3cr3t-8e41fa";
const SMTP_SECRET: &str = "smtp-pass-s3cr3t-27b9d3";
const PLAIN_VALUE: &str = "debug-visible-5a0c";

/// A repository on `main` holding `dockerfile`.
fn repository(dockerfile: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(repo.path().join("Dockerfile"), dockerfile).unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "Dockerfile"]);
    repo
}

/// Team `acme` with Dockerfile app `web` building `dockerfile` (`{base}` replaced by the
/// private base image in the app's registry).
async fn started(dockerfile: &str) -> (TestApp, tempfile::TempDir, String) {
    let registry = TestRegistry::start_htpasswd(&[("builder", BASE_PASSWORD)]).await;
    registry
        .push_serving_image("base/busybox", "1", ("builder", BASE_PASSWORD), "base")
        .await;
    let host = registry.host.to_string();
    let repo = repository(&dockerfile.replace("{base}", &format!("{host}/base/busybox:1")));
    let app = TestApp::sqlite()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_team()
        .with_registry(registry)
        .start()
        .await;
    app.create_app(
        "web",
        "dockerfile",
        Some(json!({ "url": repo.path().display().to_string() })),
    )
    .await;
    (app, repo, host)
}

fn assert_free_of_secrets(what: &str, text: &str) {
    for secret in [WORDS_SECRET, SMTP_SECRET, BASE_PASSWORD] {
        assert!(!text.contains(secret), "{what} holds a secret: {text}");
    }
}

#[tokio::test]
async fn no_secret_of_an_app_reaches_a_viewer_or_a_log() {
    // The build echoes a secret build argument, and the release prints its secret
    // environment, each in the middle of a line.
    let (app, _repo, host) = started(
        "ARG BASE={base}\n\
         FROM $BASE\n\
         ARG WELCOME_WORDS\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo build says [$WELCOME_WORDS] mid-line\"]\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo release says [$WELCOME_WORDS] and [$SMTP_PASS] mid-line; exec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /www\"]\n",
    )
    .await;
    let deployed = app
        .deploy_and_wait(
            "web",
            json!({
                "git_ref": "main",
                "private_registry_host": host,
                "env": {
                    "APTIBLE_PRIVATE_REGISTRY_USERNAME": "builder",
                    "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD,
                    "WELCOME_WORDS": WORDS_SECRET,
                    "SMTP_PASS": SMTP_SECRET,
                    "LOG_LEVEL": { "value": PLAIN_VALUE, "plain": true },
                },
            }),
        )
        .await;
    app.succeeded(&deployed).await;
    let id = deployed["id"].as_i64().unwrap();

    // The operation log (build output and the release's first lines), for a deployer.
    let log = app.log(id).await;
    assert!(log.contains("build says [[redacted]] mid-line"), "{log}");
    assert_free_of_secrets("the operation log", &log);

    // The runtime log, for a deployer.
    let mut runtime = String::new();
    for _ in 0..100 {
        runtime = app
            .call(
                "GET",
                "/api/v1/teams/acme/apps/web/logs?lines=100",
                &app.deployer(),
                None,
            )
            .await
            .expect(200)
            .body;
        if runtime.contains("release says") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        runtime.contains("release says [[redacted]] and [[redacted]] mid-line"),
        "{runtime}"
    );
    assert_free_of_secrets("the runtime log", &runtime);

    // The live stream of the operation, for the owner: lines, redacted.
    let mut owner = app.signed_in(OWNER).await;
    let stream = owner.get(&format!("/operations/{id}/events")).await;
    assert!(stream.body.contains("event: lines"), "{}", stream.body);
    assert!(stream.body.contains("[redacted]"), "{}", stream.body);
    assert_free_of_secrets("the live stream", &stream.body);
    let page = owner.get(&format!("/teams/acme/operations/{id}")).await;
    assert!(page.body.contains("build says"), "the owner reads the log");
    assert_free_of_secrets("the operation page", &page.body);
    // The app's Logs tab: the running release's output, redacted, in the page itself (so it
    // reads without JavaScript too).
    let logs = owner.get("/teams/acme/apps/web/logs").await;
    assert_eq!(logs.status.as_u16(), 200);
    assert!(
        logs.body
            .contains("release says [[redacted]] and [[redacted]] mid-line"),
        "{}",
        logs.body
    );
    assert!(
        logs.body.contains(r#"aria-current="page">Logs<"#),
        "{}",
        logs.body
    );
    assert_free_of_secrets("the Logs tab", &logs.body);

    // A viewer: configuration without secret values, and no log by default.
    let viewer = app.viewer();
    let config = app
        .call("GET", "/api/v1/teams/acme/apps/web/config", &viewer, None)
        .await
        .expect(200)
        .json();
    let row = |key: &str| -> Value {
        config["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("{key}: {config}"))
            .clone()
    };
    assert_eq!(row("WELCOME_WORDS")["secret"], true);
    assert!(row("WELCOME_WORDS")["value"].is_null(), "{config}");
    assert!(row("SMTP_PASS")["value"].is_null(), "{config}");
    assert_eq!(row("LOG_LEVEL")["value"], PLAIN_VALUE);
    for path in [
        format!("/api/v1/operations/{id}/log"),
        "/api/v1/teams/acme/apps/web/logs".to_owned(),
    ] {
        let refused = app.call("GET", &path, &viewer, None).await;
        assert_eq!(refused.status.as_u16(), 403, "{path}: {}", refused.body);
        assert_eq!(refused.json()["error"]["kind"], "forbidden");
    }
    let refused = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/bases",
            &viewer,
            Some(json!({ "git_ref": "main" })),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
    let mut viewer_browser = app.signed_in(VIEWER).await;
    let app_page = viewer_browser.get("/teams/acme/apps/web/config").await;
    assert_eq!(app_page.status.as_u16(), 200);
    assert!(
        app_page.body.contains(PLAIN_VALUE),
        "plain values are shown"
    );
    assert_free_of_secrets("the app page", &app_page.body);
    let op_page = viewer_browser
        .get(&format!("/teams/acme/operations/{id}"))
        .await;
    assert!(!op_page.body.contains("build says"), "{}", op_page.body);
    assert!(op_page
        .body
        .contains("Viewers of this team cannot read logs"));
    let stream = viewer_browser
        .get(&format!("/operations/{id}/events"))
        .await;
    assert!(stream.body.contains("event: status"), "{}", stream.body);
    assert!(!stream.body.contains("event: lines"), "{}", stream.body);
    let logs = viewer_browser.get("/teams/acme/apps/web/logs").await;
    assert_eq!(logs.status.as_u16(), 200);
    assert!(!logs.body.contains("release says"), "{}", logs.body);
    assert!(
        logs.body
            .contains("cannot read logs unless an owner allows viewers"),
        "{}",
        logs.body
    );

    // Once an owner allows it (here in the console), viewers read the logs, redacted.
    let allowed = owner
        .call::<SetViewersReadLogs>(&[("team", "acme"), ("viewers_read_logs", "on")])
        .await;
    assert_eq!(allowed.status.as_u16(), 200, "{}", allowed.body);
    let runtime = app
        .call("GET", "/api/v1/teams/acme/apps/web/logs", &viewer, None)
        .await
        .expect(200)
        .body;
    assert!(runtime.contains("release says [[redacted]]"), "{runtime}");
    assert_free_of_secrets("the runtime log", &runtime);
    let logs = viewer_browser.get("/teams/acme/apps/web/logs").await;
    assert!(
        logs.body.contains("release says [[redacted]]"),
        "{}",
        logs.body
    );
    assert_free_of_secrets("the Logs tab", &logs.body);
    let log = app
        .call(
            "GET",
            &format!("/api/v1/operations/{id}/log"),
            &viewer,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_free_of_secrets("the operation log", &log);

    // Nothing anywhere: API answers, the server's log, the runtime log files, the database.
    app.assert_no_leaks(&[WORDS_SECRET, SMTP_SECRET, BASE_PASSWORD]);
    app.stop().await;
}

#[tokio::test]
async fn a_secret_value_never_names_a_base_image() {
    let (app, _repo, host) = started("ARG IMAGE\nFROM $IMAGE\n").await;
    // A repository nobody pushed: had the value reached the registry, its log would say.
    let secret_image = format!("{host}/never-pushed-s3cr3t/app:1");
    app.succeeded(
        &app.configure_and_wait("web", json!({ "IMAGE": secret_image }))
            .await,
    )
    .await;
    let bases_path = "/api/v1/teams/acme/apps/web/bases";
    let check = || json!({ "git_ref": "main" });
    let refused = app
        .call("POST", bases_path, &app.deployer(), Some(check()))
        .await;
    let error = refusal(refused, "invalid", "env");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("(IMAGE)"), "{message}");
    assert!(!message.contains("never-pushed-s3cr3t"), "{message}");
    let deploy = app.deploy("web", json!({ "git_ref": "main" })).await;
    let error = refusal(deploy, "invalid", "env");
    assert!(
        !error.to_string().contains("never-pushed-s3cr3t"),
        "{error}"
    );
    assert!(
        app.operations("web")
            .await
            .iter()
            .all(|o| o["kind"] != "deploy"),
        "no deploy was queued"
    );
    assert!(
        !app.registry().log().contains("never-pushed-s3cr3t"),
        "the secret value reached the registry"
    );

    // Marked plain, the same kind of value names the base image.
    app.succeeded(
        &app.configure_and_wait(
            "web",
            json!({ "IMAGE": { "value": format!("{host}/base/busybox:1"), "plain": true } }),
        )
        .await,
    )
    .await;
    let bases = app
        .call("POST", bases_path, &app.deployer(), Some(check()))
        .await
        .expect(200)
        .json();
    assert_eq!(
        bases["bases"][0]["image"],
        format!("{host}/base/busybox:1"),
        "{bases}"
    );
    app.stop().await;
}

#[tokio::test]
async fn secret_looking_names_cannot_be_marked_plain() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    for (key, value) in [
        ("SMTP_PASS", json!({ "value": "hunter22", "plain": true })),
        (
            "REDIS_URL",
            json!({ "value": "redis://cache:6379", "plain": true }),
        ),
        (
            "MONGO_URI",
            json!({ "value": "mongodb://db/app", "plain": true }),
        ),
        (
            "STRIPE_SK",
            json!({ "value": "sk_live_123", "plain": true }),
        ),
        (
            "UPSTREAM",
            json!({ "value": "https://bot:pa55word@upstream.example/", "plain": true }),
        ),
    ] {
        let refused = app
            .call(
                "PATCH",
                "/api/v1/teams/acme/apps/web/config",
                &app.deployer(),
                Some(json!({ "env": { key: value } })),
            )
            .await;
        let error = refusal(refused, "invalid", "env");
        assert!(
            error["message"].as_str().unwrap().starts_with(key),
            "{error}"
        );
        assert!(!error.to_string().contains("pa55word"), "{error}");
    }
    // Malformed values name the variable too.
    for value in [
        json!({ "value": "x", "plain": "yes" }),
        json!({ "value": "x", "shown": true }),
        json!({ "plain": true }),
        json!(["x"]),
    ] {
        let refused = app
            .call(
                "PATCH",
                "/api/v1/teams/acme/apps/web/config",
                &app.deployer(),
                Some(json!({ "env": { "GREETING": value } })),
            )
            .await;
        let error = refusal(refused, "invalid", "env");
        assert!(
            error["message"].as_str().unwrap().starts_with("GREETING"),
            "{error}"
        );
    }
    // The console's form says the same, next to the field.
    let mut browser = app.signed_in(DEPLOYER).await;
    let refused = browser
        .call::<ConfigureApp>(&[
            ("team", "acme"),
            ("app", "web"),
            ("env_text", ""),
            ("plain_env_text", "DATABASE_URI=postgres://db/app"),
        ])
        .await;
    assert!(
        refused.body.contains("DATABASE_URI looks like a secret"),
        "{}",
        refused.body
    );
    assert!(app.operations("web").await.is_empty(), "nothing was queued");
    // A plain value from the form is shown; one from the secret box is not.
    let accepted = browser
        .call::<ConfigureApp>(&[
            ("team", "acme"),
            ("app", "web"),
            ("env_text", "GREETING=hello-secret-by-default"),
            ("plain_env_text", "LOG_LEVEL=debug"),
        ])
        .await;
    assert_eq!(accepted.status.as_u16(), 200, "{}", accepted.body);
    let id: i64 = accepted.body.trim().parse().unwrap();
    app.succeeded(&app.wait(id).await).await;
    let config = app.config("web").await;
    assert_eq!(
        config,
        [
            json!({ "key": "GREETING", "value": null, "secret": true }),
            json!({ "key": "LOG_LEVEL", "value": "debug", "secret": false }),
        ]
    );
    app.stop().await;
}
