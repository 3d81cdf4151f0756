//! Dockerfile deploys end to end: real git repositories (two branches), a Dockerfile whose
//! `FROM` is a private image in a real registry, pulled with the app's
//! `APTIBLE_PRIVATE_REGISTRY_*` configuration, registry credentials given with the deploy,
//! or a team credential, real buildah builds, and the built image run and health-checked
//! like any release.

mod support;

use serde_json::{json, Value};
use support::*;
use testregistry::TestRegistry;

const BASE_PASSWORD: &str = "base-pull-pass-2f81c9";
const ROTATED_PASSWORD: &str = "base-pull-pass-rotated-77d0aa";
const TOOLS_PASSWORD: &str = "tools-pull-pass-9ce41b";
const WRONG_PASSWORD: &str = "not-the-base-pass-5e03b7";
const CI_PASSWORD: &str = "ci-pull-pass-a4c2e8";

/// A Dockerfile that copies `hello.txt` into the served directory, runs a command, and
/// dumps the release's environment (to prove what reaches it) before serving.
fn dockerfile(base: &str) -> String {
    format!(
        "# Built by Berth's tests\n\
         ARG BASE={base}\n\
         FROM $BASE\n\
         COPY hello.txt /www/hello.txt\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built-by-run > /www/run.txt\"]\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox env > /www/envdump.txt; exec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /www\"]\n"
    )
}

/// A registry that lets only `builder` in, holding the private base `base/busybox:1`.
async fn base_registry() -> TestRegistry {
    let registry = TestRegistry::start_htpasswd(&[("builder", BASE_PASSWORD)]).await;
    push_base(&registry).await;
    registry
}

async fn push_base(registry: &TestRegistry) {
    registry
        .push_serving_image("base/busybox", "1", ("builder", BASE_PASSWORD), "base")
        .await;
}

/// A repository whose Dockerfile builds from `base`, with two branches: `main` serves
/// "hello from main", `feature` "hello from feature".
fn repository(base: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("Dockerfile"), dockerfile(base)).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from main\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "First version"]);
    git(dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("hello.txt"), "hello from feature\n").unwrap();
    git(dir, &["commit", "-q", "-am", "Feature greeting"]);
    git(dir, &["checkout", "-q", "main"]);
    repo
}

/// Creates Dockerfile app `handle` in team `acme`, building from `url`.
async fn dockerfile_app(app: &TestApp, handle: &str, url: &str) -> Value {
    let created = app
        .create_app(handle, "dockerfile", Some(json!({ "url": url })))
        .await;
    assert_eq!(created["git"]["dockerfile"], "Dockerfile", "{created}");
    created
}

/// The usual setup: team `acme` with app `web` building from a repository whose base image
/// is private in the app's registry.
async fn started() -> (TestApp, tempfile::TempDir) {
    let registry = base_registry().await;
    let repo = repository(&format!("{}/base/busybox:1", registry.host));
    let app = TestApp::sqlite()
        .with_team()
        // The test repositories are made in the temporary directory.
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_registry(registry)
        .start()
        .await;
    dockerfile_app(&app, "web", &repo.path().display().to_string()).await;
    (app, repo)
}

#[tokio::test]
async fn a_branch_builds_from_a_private_base_with_the_configuration_credentials() {
    let (app, repo) = started().await;
    let main = git(repo.path(), &["rev-parse", "main"]);

    // Without credentials the private base cannot be pulled: refused before building.
    let refused = app.deploy("web", json!({ "git_ref": "main" })).await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    let error = &refused.json()["error"];
    assert_eq!(error["kind"], "verification_failed");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("base/busybox:1"),
        "{error}"
    );
    assert!(app.operations("web").await.is_empty(), "nothing was queued");

    // The page's preview says the same before anything is queued.
    let host = app.registry().host.to_string();
    let app_ref = &app;
    let check = |confirmed: Option<&str>| {
        let mut body = json!({ "git_ref": "main" });
        if let Some(confirmed) = confirmed {
            body["private_registry_host"] = json!(confirmed);
        }
        async move {
            app_ref
                .call(
                    "POST",
                    "/api/v1/teams/acme/apps/web/bases",
                    &app_ref.deployer(),
                    Some(body),
                )
                .await
        }
    };
    let bases = check(None).await.expect(200).json();
    assert_eq!(bases["commit"], main.as_str());
    assert_eq!(bases["bases"][0]["ok"], false, "{bases}");
    assert_eq!(bases["bases"][0]["credential"], "none");
    assert_eq!(bases["bases"][0]["line"], 3);
    assert_eq!(bases["registries"], json!([host]));

    // The credentials as configuration variables (stored; the app has no release yet).
    let configured = app
        .configure_and_wait(
            "web",
            json!({
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "builder",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD,
                "GREETING": "runtime value",
            }),
        )
        .await;
    app.succeeded(&configured).await;
    // Configured without APTIBLE_PRIVATE_REGISTRY_HOST, they go to no registry until one is
    // confirmed; the check shows which host would get them.
    let bases = check(None).await.expect(200).json();
    assert_eq!(bases["bases"][0]["ok"], false, "{bases}");
    assert_eq!(bases["bases"][0]["credential"], "none");
    assert_eq!(bases["private_registry_host"], Value::Null, "{bases}");
    let bases = check(Some(&host)).await.expect(200).json();
    assert_eq!(bases["bases"][0]["ok"], true, "{bases}");
    assert_eq!(bases["bases"][0]["credential"], "configuration");
    assert_eq!(bases["private_registry_host"], host.as_str(), "{bases}");
    assert!(!bases.to_string().contains(BASE_PASSWORD));
    // The app page runs the same check on request (a POST form: without JavaScript the
    // report comes back with the page).
    let mut browser = app.signed_in(OWNER).await;
    let csrf = browser.csrf_token("/teams/acme/apps/web").await;
    let posted = browser
        .post_form(
            <app::serverfns::apps::CheckBaseImages as leptos::server_fn::ServerFn>::PATH,
            &[
                ("csrf_token", &csrf),
                ("team", "acme"),
                ("app", "web"),
                ("git_ref", "main"),
                ("private_registry_host", &host),
            ],
            true,
            None,
        )
        .await;
    assert!(posted.status.is_redirection(), "{}", posted.body);
    assert_eq!(
        posted.location(),
        Some("/teams/acme/apps/web/deploy#base-check-heading")
    );
    let page = browser.get("/teams/acme/apps/web/deploy").await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("can be pulled"),
        "the page shows the base image check"
    );
    assert!(page
        .body
        .contains("APTIBLE_PRIVATE_REGISTRY_* configuration"));
    assert!(!page.body.contains(BASE_PASSWORD));
    // A deploy that confirms no registry does not send them, and says how to.
    let unconfirmed = refusal(
        app.deploy("web", json!({ "git_ref": "main" })).await,
        "verification_failed",
        "private_registry_host",
    );
    assert!(
        unconfirmed["message"]
            .as_str()
            .unwrap()
            .contains("go to no registry until one is confirmed"),
        "{unconfirmed}"
    );
    let deployed = app
        .deploy_and_wait(
            "web",
            json!({ "git_ref": "main", "private_registry_host": host }),
        )
        .await;
    app.succeeded(&deployed).await;
    assert_eq!(deployed["commit"], main.as_str());
    assert_eq!(deployed["git_ref"], "main");
    assert!(
        deployed["digest"].as_str().unwrap().starts_with("sha256:"),
        "{deployed}"
    );
    let log = app.log(deployed["id"].as_i64().unwrap()).await;
    assert!(log.contains("Build"), "{log}");
    assert!(log.contains("credentials from configuration"), "{log}");
    let url = app.release_url("web").await;
    assert_eq!(
        served_file(&url, "hello.txt").await.trim(),
        "hello from main"
    );
    assert_eq!(served_file(&url, "run.txt").await.trim(), "built-by-run");
    let env = served_file(&url, "envdump.txt").await;
    assert!(env.contains("GREETING=runtime value"), "{env}");
    assert!(
        !env.contains("APTIBLE_PRIVATE_REGISTRY"),
        "build-time credentials reached the release: {env}"
    );

    // A new commit on feature is present but not deployed.
    git(repo.path(), &["checkout", "-q", "feature"]);
    std::fs::write(repo.path().join("hello.txt"), "hello again from feature\n").unwrap();
    git(repo.path(), &["commit", "-q", "-am", "Newer feature"]);
    git(repo.path(), &["checkout", "-q", "main"]);
    let feature = git(repo.path(), &["rev-parse", "feature"]);
    let refs = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/refs/fetch",
            &app.viewer(),
            None,
        )
        .await
        .json();
    let by_name = |name: &str| {
        refs["refs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{refs}"))
    };
    assert_eq!(by_name("feature")["commit"], feature.as_str());
    assert_eq!(by_name("feature")["deployed"], false);
    assert_eq!(by_name("feature")["subject"], "Newer feature");
    assert_eq!(by_name("main")["deployed"], true);

    // The registry password rotates; deploy feature with the new password in the same
    // operation: one operation, one build, the new configuration stored.
    app.registry().set_password("builder", ROTATED_PASSWORD);
    let stale = app.deploy("web", json!({ "git_ref": "feature" })).await;
    assert_eq!(stale.status.as_u16(), 422, "{}", stale.body);
    assert_eq!(stale.json()["error"]["reason"], "wrong_credentials");
    let before = app.operations("web").await.len();
    let synced = app
        .deploy_and_wait(
            "web",
            json!({ "git_ref": "feature", "env": { "APTIBLE_PRIVATE_REGISTRY_PASSWORD": ROTATED_PASSWORD } }),
        )
        .await;
    app.succeeded(&synced).await;
    assert_eq!(synced["commit"], feature.as_str());
    assert_eq!(synced["credential_source"], "given");
    let after = app.operations("web").await.len();
    assert_eq!(after, before + 1, "one operation");
    assert_eq!(
        served_file(&app.release_url("web").await, "hello.txt")
            .await
            .trim(),
        "hello again from feature"
    );
    let rows = app.config("web").await;
    let password = rows
        .iter()
        .find(|e| e["key"] == "APTIBLE_PRIVATE_REGISTRY_PASSWORD")
        .unwrap_or_else(|| panic!("{rows:?}"))
        .clone();
    assert!(password["value"].is_null(), "write-only: {rows:?}");

    // The two-step path: configuration first (restarts the running release), then deploy.
    app.registry().set_password("builder", BASE_PASSWORD);
    let configured = app
        .configure_and_wait(
            "web",
            json!({ "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD }),
        )
        .await;
    app.succeeded(&configured).await;
    let redeployed = app
        .deploy_and_wait("web", json!({ "git_ref": "main" }))
        .await;
    app.succeeded(&redeployed).await;
    let history = app
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/operations?limit=2",
            &app.viewer(),
            None,
        )
        .await
        .json();
    let kinds: Vec<&str> = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["deploy", "configure"],
        "the extra restart is visible in history"
    );

    // No secret in any log, response or the database.
    let mut logs = String::new();
    for operation in [&deployed, &synced, &redeployed] {
        logs.push_str(&app.log(operation["id"].as_i64().unwrap()).await);
    }
    let database = std::fs::read(app.dir.join("berth.db")).unwrap();
    for secret in [BASE_PASSWORD, ROTATED_PASSWORD] {
        assert!(!logs.contains(secret), "a build log holds a secret");
        assert!(!database
            .windows(secret.len())
            .any(|win| win == secret.as_bytes()));
    }
    app.assert_no_leaks(&[BASE_PASSWORD, ROTATED_PASSWORD]);
    app.stop().await;
}

#[tokio::test]
async fn a_build_pulls_bases_from_two_registries_with_a_team_credential_for_the_second() {
    let registry = base_registry().await;
    let tools = TestRegistry::start_htpasswd(&[("tools-bot", TOOLS_PASSWORD)]).await;
    tools
        .push_serving_image("tools/busybox", "2", ("tools-bot", TOOLS_PASSWORD), "tools")
        .await;
    let repo = repository(&format!("{}/base/busybox:1", registry.host));
    let dir = repo.path();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {}/tools/busybox:2 AS tools\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo from-tools > /tools.txt\"]\n\
             FROM {}/base/busybox:1\n\
             COPY --from=tools /tools.txt /www/tools.txt\n\
             COPY hello.txt /www/hello.txt\n",
            tools.host, registry.host
        ),
    )
    .unwrap();
    git(dir, &["commit", "-q", "-am", "Two registries"]);
    // The app's server must reach the second registry over plain HTTP too.
    let app = TestApp::sqlite()
        .with_team()
        // The test repositories are made in the temporary directory.
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_registry(registry)
        .with_insecure_registry(tools.host.clone())
        .start()
        .await;
    dockerfile_app(&app, "web", &format!("file://{}", dir.display())).await;
    app.call(
        "POST",
        "/api/v1/teams/acme/credentials",
        &app.owner_token(),
        Some(json!({ "name": "tools", "registry": tools.host.as_str(), "kind": "basic", "username": "tools-bot", "secret": TOOLS_PASSWORD })),
    )
    .await
    .expect(201);
    let configured = app
        .configure_and_wait(
            "web",
            json!({
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "builder",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD,
                "APTIBLE_PRIVATE_REGISTRY_HOST": app.registry().host.as_str(),
            }),
        )
        .await;
    app.succeeded(&configured).await;
    let deployed = app
        .deploy_and_wait("web", json!({ "git_ref": "main" }))
        .await;
    app.succeeded(&deployed).await;
    let log = app.log(deployed["id"].as_i64().unwrap()).await;
    assert!(log.contains("credentials from team:tools"), "{log}");
    assert!(log.contains("credentials from configuration"), "{log}");
    assert_eq!(
        served_file(&app.release_url("web").await, "tools.txt")
            .await
            .trim(),
        "from-tools"
    );
    for secret in [BASE_PASSWORD, TOOLS_PASSWORD] {
        assert!(!log.contains(secret));
    }
    app.stop().await;
}

#[tokio::test]
async fn dockerfile_apps_and_ref_deploys_are_validated() {
    let (app, _repo) = started().await;
    for (body, field) in [
        (json!({ "handle": "x", "method": "dockerfile" }), "git_url"),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "ext::sh -c evil" } }),
            "git_url",
        ),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "https://user:pw@example.com/r.git" } }),
            "git_url",
        ),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "https://example.com/r.git", "dockerfile": "../etc/passwd" } }),
            "dockerfile",
        ),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "https://example.com/r.git", "username": "u" } }),
            "git_password",
        ),
    ] {
        let response = app
            .call(
                "POST",
                "/api/v1/teams/acme/apps",
                &app.deployer(),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status.as_u16(), 422, "{body}: {}", response.body);
        assert_eq!(
            response.json()["error"]["field"],
            field,
            "{body}: {}",
            response.body
        );
    }
    for git_ref in ["", "-bad", "no-such-branch"] {
        let response = app.deploy("web", json!({ "git_ref": git_ref })).await;
        assert_eq!(
            response.status.as_u16(),
            422,
            "{git_ref}: {}",
            response.body
        );
        assert_eq!(
            response.json()["error"]["field"],
            "git_ref",
            "{git_ref}: {}",
            response.body
        );
    }
    let refused = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            &app.viewer(),
            Some(json!({ "git_ref": "main" })),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403);
    app.stop().await;
}

#[tokio::test]
async fn an_api_git_ref_deploy_with_registry_credentials_builds_a_private_base_in_one_operation() {
    let (app, repo) = started().await;
    let main = git(repo.path(), &["rev-parse", "main"]);
    let host = app.registry().host.to_string();
    let given = |password: &str| json!({ "git_ref": "main", "registry_username": "builder", "registry_password": password, "private_registry_host": host });

    // A wrong password given with the deploy: the registry refuses it, nothing is queued.
    let error = refusal(
        app.deploy("web", given(WRONG_PASSWORD)).await,
        "verification_failed",
        "registry_password",
    );
    assert_eq!(error["reason"], "wrong_credentials", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("base/busybox:1"),
        "{error}"
    );
    // Fields that do not go together are refused by name, before any registry is asked.
    let mut with_credential = given(BASE_PASSWORD);
    with_credential["credential"] = json!("base");
    let mut once = given(BASE_PASSWORD);
    once["remember_credentials"] = json!(false);
    for (body, field) in [
        (
            json!({ "git_ref": "main", "registry_username": "builder" }),
            "registry_password",
        ),
        (with_credential, "credential"),
        (once, "remember_credentials"),
        // Credentials with the deploy go to a confirmed registry only.
        (
            json!({ "git_ref": "main", "registry_username": "builder", "registry_password": BASE_PASSWORD }),
            "private_registry_host",
        ),
        (
            json!({ "git_ref": "main", "private_registry_host": "https://ghcr.io" }),
            "private_registry_host",
        ),
    ] {
        refusal(app.deploy("web", body).await, "invalid", field);
    }
    assert!(app.operations("web").await.is_empty(), "nothing was queued");
    assert!(app.config("web").await.is_empty(), "nothing was stored");

    // The right credentials with the deploy, and no configuration before: one operation
    // stores them and builds with them.
    let deployed = app.deploy_and_wait("web", given(BASE_PASSWORD)).await;
    app.succeeded(&deployed).await;
    let history = app.operations("web").await;
    assert_eq!(history.len(), 1, "one operation: {history:?}");
    assert_eq!(history[0]["id"], deployed["id"]);
    assert_eq!(deployed["kind"], "deploy");
    assert_eq!(deployed["commit"], main.as_str());
    assert_eq!(deployed["credential_source"], "given", "{deployed}");
    let changes = deployed["config_changes"].as_array().unwrap();
    for key in [
        "APTIBLE_PRIVATE_REGISTRY_USERNAME",
        "APTIBLE_PRIVATE_REGISTRY_PASSWORD",
        "APTIBLE_PRIVATE_REGISTRY_HOST",
    ] {
        assert!(
            changes.contains(&json!({ "key": key, "set": true })),
            "{key} is set by the deploy: {deployed}"
        );
    }
    let log = app.log(deployed["id"].as_i64().unwrap()).await;
    assert!(log.contains("credentials from configuration"), "{log}");
    let url = app.release_url("web").await;
    assert_eq!(
        served_file(&url, "hello.txt").await.trim(),
        "hello from main"
    );
    let env = served_file(&url, "envdump.txt").await;
    assert!(
        !env.contains("APTIBLE_PRIVATE_REGISTRY"),
        "build-time credentials reached the release: {env}"
    );

    // The app's configuration now holds them, the password write-only.
    let rows = app.config("web").await;
    let row = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key}: {rows:?}"))
    };
    row("APTIBLE_PRIVATE_REGISTRY_USERNAME");
    let password = row("APTIBLE_PRIVATE_REGISTRY_PASSWORD");
    assert!(password["value"].is_null(), "write-only: {password}");
    assert_eq!(password["secret"], true, "{password}");

    app.assert_no_leaks(&[BASE_PASSWORD, WRONG_PASSWORD]);
    app.stop().await;
}

#[tokio::test]
async fn several_team_credentials_for_one_host_are_the_same_field_error_for_both_deploy_methods() {
    let registry =
        TestRegistry::start_htpasswd(&[("builder", BASE_PASSWORD), ("ci-bot", CI_PASSWORD)]).await;
    push_base(&registry).await;
    registry
        .push_serving_image("shop/web", "1", ("builder", BASE_PASSWORD), "shop")
        .await;
    let repo = repository(&format!("{}/base/busybox:1", registry.host));
    let app = TestApp::sqlite()
        .with_team()
        // The test repositories are made in the temporary directory.
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_registry(registry)
        .start()
        .await;
    // Two apps of one team reading the same registry: one deploys its image, one builds
    // from a base image on it.
    app.create_app("shop", "image", None).await;
    dockerfile_app(&app, "web", &repo.path().display().to_string()).await;
    let names = ["registry-builder", "registry-ci"];
    app.create_credential(&app.owner_token(), names[0], "builder", BASE_PASSWORD)
        .await
        .expect(201);
    app.create_credential(&app.owner_token(), names[1], "ci-bot", CI_PASSWORD)
        .await
        .expect(201);

    // Neither deploy names a credential, and the rule cannot choose between the two.
    let image = app.image("shop/web:1");
    let by_image = refusal(
        app.deploy("shop", json!({ "image": image })).await,
        "invalid",
        "credential",
    );
    let by_ref = refusal(
        app.deploy("web", json!({ "git_ref": "main" })).await,
        "invalid",
        "credential",
    );
    let message = |error: &Value| error["message"].as_str().unwrap().to_owned();
    for error in [&by_image, &by_ref] {
        let message = message(error);
        for name in names {
            assert!(message.contains(name), "{name} is named: {message}");
        }
        assert!(message.contains("choose one by name"), "{message}");
    }
    let without_names = |message: String| {
        names
            .iter()
            .fold(message, |message, name| message.replace(name, "NAME"))
    };
    assert_eq!(
        without_names(message(&by_image)),
        without_names(message(&by_ref)),
        "one message for both deploy methods"
    );
    assert!(
        app.operations("shop").await.is_empty(),
        "nothing was queued"
    );
    assert!(app.operations("web").await.is_empty(), "nothing was queued");

    // Naming one of them passes verification, for both methods.
    let chosen = names[1];
    let queued = app
        .deploy("shop", json!({ "image": image, "credential": chosen }))
        .await
        .expect(202)
        .json()["operation"]
        .clone();
    assert_eq!(queued["credential_source"], "team", "{queued}");
    assert_eq!(queued["credential_name"], chosen, "{queued}");
    let built = app
        .deploy_and_wait("web", json!({ "git_ref": "main", "credential": chosen }))
        .await;
    app.succeeded(&built).await;
    assert_eq!(built["credential_source"], "team", "{built}");
    assert_eq!(built["credential_name"], chosen, "{built}");
    let log = app.log(built["id"].as_i64().unwrap()).await;
    assert!(
        log.contains(&format!("credentials from team:{chosen}")),
        "{log}"
    );
    assert_eq!(
        served_file(&app.release_url("web").await, "hello.txt")
            .await
            .trim(),
        "hello from main"
    );
    // The image deploy verified with the credential named pulls with it too.
    let deployed = app.wait(queued["id"].as_i64().unwrap()).await;
    let deployed_log = app.log(deployed["id"].as_i64().unwrap()).await;

    app.assert_no_leaks(&[BASE_PASSWORD, CI_PASSWORD]);
    app.stop().await;
    assert_eq!(
        deployed["status"], "succeeded",
        "{deployed}\n{deployed_log}"
    );
}

#[tokio::test]
async fn dockerfiles_and_sources_that_reach_for_the_host_fail_plainly_and_the_release_keeps_serving(
) {
    let (app, repo) = started().await;
    let host = app.registry().host.to_string();
    let with_credentials = |git_ref: &str| {
        json!({
            "git_ref": git_ref,
            "registry_username": "builder",
            "registry_password": BASE_PASSWORD,
            "private_registry_host": host,
        })
    };
    let deployed = app.deploy_and_wait("web", with_credentials("main")).await;
    app.succeeded(&deployed).await;
    let url = app.release_url("web").await;
    assert_eq!(
        served_file(&url, "hello.txt").await.trim(),
        "hello from main"
    );
    let base = format!("{}/base/busybox:1", app.registry().host);

    // CVE-2024-1753: buildah 1.28 follows a bind mount's source through a symlink onto
    // the host. Refused before anything is queued, naming the line.
    git(repo.path(), &["checkout", "-q", "-b", "hostile"]);
    std::os::unix::fs::symlink("/", repo.path().join("hostroot")).unwrap();
    std::fs::write(
        repo.path().join("Dockerfile"),
        format!(
            "FROM {base}\nRUN --mount=type=bind,source=hostroot,target=/h [\"/bin/busybox\", \"cat\", \"/h/etc/shadow\"]\n"
        ),
    )
    .unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "Read the host"]);
    let error = refusal(
        app.deploy("web", with_credentials("hostile")).await,
        "invalid",
        "git_ref",
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("line 2: RUN --mount=type=bind"),
        "{message}"
    );
    assert!(message.contains("Nothing was built"), "{message}");
    assert_eq!(app.operations("web").await.len(), 1, "nothing was queued");

    // Without the mount, the link alone would let COPY read the host: the build refuses
    // it, naming the file, and the release keeps serving.
    std::fs::write(
        repo.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY hostroot/etc/shadow /www/shadow\n"),
    )
    .unwrap();
    git(repo.path(), &["commit", "-q", "-am", "Copy from the host"]);
    let failed = app
        .deploy_and_wait("web", with_credentials("hostile"))
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let shown = failed.to_string();
    assert!(shown.contains("hostroot"), "{shown}");
    assert!(shown.contains("symbolic link"), "{shown}");
    assert_eq!(app.release_url("web").await, url);
    assert_eq!(
        served_file(&url, "hello.txt").await.trim(),
        "hello from main"
    );
    app.stop().await;
}

#[tokio::test]
async fn private_registry_credentials_reach_only_a_confirmed_host() {
    // `FROM <evil>/x:1`: a registry that answers 401 to everyone and records what it is sent.
    let evil = auth_recorder::AuthRecorder::start().await;
    let registry = base_registry().await;
    let repo = repository(&format!("{}/x:1", evil.host));
    let app = TestApp::sqlite()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_team()
        .with_registry(registry)
        .with_insecure_registry(evil.host.clone())
        .start()
        .await;
    dockerfile_app(&app, "web", &repo.path().display().to_string()).await;
    let evil_host = evil.host.to_string();
    let configured = app
        .configure_and_wait(
            "web",
            json!({
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "builder",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD,
            }),
        )
        .await;
    app.succeeded(&configured).await;
    let bases_path = "/api/v1/teams/acme/apps/web/bases";

    // Before: the registry of the first FROM that could not be pulled anonymously got them.
    // Now the check and the deploy ask it anonymously and send nothing.
    let bases = app
        .call(
            "POST",
            bases_path,
            &app.deployer(),
            Some(json!({ "git_ref": "main" })),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(bases["bases"][0]["credential"], "none", "{bases}");
    assert_eq!(bases["bases"][0]["ok"], false, "{bases}");
    assert_eq!(bases["private_registry_host"], Value::Null, "{bases}");
    assert_eq!(bases["registries"], json!([evil_host]), "{bases}");
    refusal(
        app.deploy("web", json!({ "git_ref": "main" })).await,
        "verification_failed",
        "private_registry_host",
    );
    assert!(evil.requests() > 0, "the check did reach the host");
    assert!(
        evil.authorizations().is_empty(),
        "credentials were sent unconfirmed: {:?}",
        evil.authorizations()
    );

    // Credentials given with the deploy and no registry for them: refused before any
    // registry is asked.
    let before = evil.requests();
    refusal(
        app.deploy(
            "web",
            json!({ "git_ref": "main", "registry_username": "builder", "registry_password": BASE_PASSWORD }),
        )
        .await,
        "invalid",
        "private_registry_host",
    );
    assert_eq!(evil.requests(), before);
    // A registry no FROM names cannot be confirmed.
    let error = refusal(
        app.deploy(
            "web",
            json!({ "git_ref": "main", "private_registry_host": app.registry().host.as_str() }),
        )
        .await,
        "invalid",
        "private_registry_host",
    );
    assert!(
        error["message"].as_str().unwrap().contains(&evil_host),
        "the message lists the Dockerfile's registries: {error}"
    );

    // Once a host is set, moving the stored password to another host needs it again.
    let named = app
        .configure_and_wait(
            "web",
            json!({ "APTIBLE_PRIVATE_REGISTRY_HOST": app.registry().host.as_str() }),
        )
        .await;
    app.succeeded(&named).await;
    let moved = refusal(
        app.call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &app.deployer(),
            Some(json!({ "env": { "APTIBLE_PRIVATE_REGISTRY_HOST": evil_host } })),
        )
        .await,
        "invalid",
        "env",
    );
    assert!(
        moved["message"]
            .as_str()
            .unwrap()
            .contains("needs the password again"),
        "{moved}"
    );
    for (body, field) in [
        (
            json!({ "git_ref": "main", "private_registry_host": evil_host }),
            "private_registry_host",
        ),
        (
            json!({ "git_ref": "main", "env": { "APTIBLE_PRIVATE_REGISTRY_HOST": null } }),
            "env",
        ),
    ] {
        refusal(app.deploy("web", body).await, "invalid", field);
    }
    assert!(
        evil.authorizations().is_empty(),
        "{:?}",
        evil.authorizations()
    );

    // Confirmed by the person deploying, with the password given again, that host gets
    // them: what confirming means (and proof the recorder sees credentials when sent).
    let bases = app
        .call(
            "POST",
            bases_path,
            &app.deployer(),
            Some(json!({ "git_ref": "main", "private_registry_host": evil_host })),
        )
        .await;
    refusal(bases, "invalid", "private_registry_host");
    let confirmed = app
        .deploy(
            "web",
            json!({
                "git_ref": "main",
                "private_registry_host": evil_host,
                "registry_username": "builder",
                "registry_password": WRONG_PASSWORD,
            }),
        )
        .await;
    refusal(confirmed, "verification_failed", "registry_password");
    assert!(evil.received("builder", WRONG_PASSWORD));
    assert!(!evil.received("builder", BASE_PASSWORD));
    app.assert_no_leaks(&[BASE_PASSWORD, WRONG_PASSWORD]);
    app.stop().await;
}

#[tokio::test]
async fn a_secret_build_arg_in_from_is_never_shown_in_errors() {
    const DATABASE_URL: &str = "postgres://app:db-S3cret-5d1e@db.internal:5432/prod";
    let (app, repo) = started().await;
    std::fs::write(
        repo.path().join("Dockerfile"),
        "ARG DATABASE_URL\nFROM ${DATABASE_URL}\nCMD [\"true\"]\n",
    )
    .unwrap();
    git(
        repo.path(),
        &["commit", "-q", "-am", "Base from configuration"],
    );
    let configured = app
        .configure_and_wait("web", json!({ "DATABASE_URL": DATABASE_URL }))
        .await;
    app.succeeded(&configured).await;

    let deploy = refusal(
        app.deploy("web", json!({ "git_ref": "main" })).await,
        "invalid",
        "git_ref",
    );
    let message = deploy["message"].as_str().unwrap();
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("DATABASE_URL"), "names the ARG: {message}");
    let bases = refusal(
        app.call(
            "POST",
            "/api/v1/teams/acme/apps/web/bases",
            &app.deployer(),
            Some(json!({ "git_ref": "main" })),
        )
        .await,
        "invalid",
        "git_ref",
    );
    let mut browser = app.signed_in(DEPLOYER).await;
    let page = browser
        .call::<app::serverfns::apps::CheckBaseImages>(&[
            ("team", "acme"),
            ("app", "web"),
            ("git_ref", "main"),
        ])
        .await;
    for shown in [deploy.to_string(), bases.to_string(), page.body.clone()] {
        for part in ["db-S3cret-5d1e", "db.internal", "postgres://"] {
            assert!(!shown.contains(part), "{shown}");
        }
    }
    assert!(page.body.contains("DATABASE_URL"), "{}", page.body);
    app.assert_no_leaks(&["db-S3cret-5d1e"]);
    app.stop().await;
}

/// Repositories on Berth's own server are read only under BERTH_GIT_LOCAL_ROOTS: without
/// it (the default) a local path or file:// URL is refused on the `git_url` field, before
/// the app exists; with it, only what is under the roots.
#[tokio::test]
async fn local_repositories_need_an_operator_listed_root() {
    let repo = repository("docker.io/library/busybox:1");
    let path = repo.path().display().to_string();
    let closed = TestApp::sqlite().with_team().start().await;
    for url in [path.clone(), format!("file://{path}"), "/root".to_owned()] {
        let body = json!({ "handle": "local", "method": "dockerfile", "git": { "url": url } });
        let response = closed
            .call(
                "POST",
                "/api/v1/teams/acme/apps",
                &closed.deployer(),
                Some(body),
            )
            .await;
        assert_eq!(response.status.as_u16(), 422, "{url}: {}", response.body);
        let error = &response.json()["error"];
        assert_eq!(error["field"], "git_url", "{}", response.body);
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("BERTH_GIT_LOCAL_ROOTS"), "{message}");
    }
    let listed = closed
        .call("GET", "/api/v1/teams/acme/apps", &closed.deployer(), None)
        .await;
    assert!(
        !listed.body.contains("\"local\""),
        "no app was made: {}",
        listed.body
    );
    closed.stop().await;

    let open = TestApp::sqlite()
        .with_team()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .start()
        .await;
    let body = json!({ "handle": "outside", "method": "dockerfile", "git": { "url": "/etc" } });
    let response = open
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &open.deployer(),
            Some(body),
        )
        .await;
    assert_eq!(response.status.as_u16(), 422, "{}", response.body);
    assert_eq!(response.json()["error"]["field"], "git_url");
    dockerfile_app(&open, "inside", &path).await;
    open.stop().await;
}
