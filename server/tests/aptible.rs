//! Apps on Aptible, end to end through Berth's JSON API and pages, against the stand-in
//! (`testaptible`, Aptible's wire shapes, recording every request) and a real registry (the
//! image is verified before anything is forwarded): a team connects, an app is found on
//! Aptible, and deploys, configuration changes and restarts are forwarded exactly as
//! Aptible's CLI sends them, followed to their end, with Aptible's log in Berth's history.
//! A Dockerfile deploy pushes its commit to the app's git remote on a real ssh git host
//! (sshd with git-shell on a loopback port) before it is forwarded.

mod support;

use serde_json::{json, Value};
use support::{ssh_host::GitSshHost, *};
use testaptible::{RecordedRequest, TestAptible, FAIL_THIS_OPERATION};
use testregistry::TestRegistry;

const APTIBLE_EMAIL: &str = "ops@acme.example";
const APTIBLE_PASSWORD: &str = "aptible-password-7f3c0d91";
const OTP_EMAIL: &str = "careful@acme.example";
const OTP_PASSWORD: &str = "aptible-2fa-password-55e1";
const OTP_CODE: &str = "424242";
const REGISTRY_PASSWORD: &str = "pull-pass-for-aptible-3e8a21";
const CONFIG_SECRET: &str = "config-secret-for-aptible-90b4c6";
const TEAM_CREDENTIAL_PASSWORD: &str = "team-pull-pass-for-aptible-c17f52";

async fn stand_in() -> TestAptible {
    TestAptible::builder()
        .user(APTIBLE_EMAIL, APTIBLE_PASSWORD)
        .user(OTP_EMAIL, OTP_PASSWORD)
        .otp(OTP_CODE)
        .app(
            "production",
            "web",
            11,
            Some("git@127.0.0.1:production/web.git"),
        )
        .app("staging", "web", 12, None)
        .start()
        .await
}

async fn berth(aptible: &TestAptible) -> TestApp {
    berth_on(TestApp::sqlite(), aptible).await
}

async fn berth_on(database: TestAppBuilder, aptible: &TestAptible) -> TestApp {
    let registry = TestRegistry::start_htpasswd(&[("puller", REGISTRY_PASSWORD)]).await;
    database
        .with_team()
        .with_registry(registry)
        .with_aptible(&aptible.api_url(), &aptible.auth_url())
        .start()
        .await
}

fn platform_path() -> &'static str {
    "/api/v1/teams/acme/platforms/aptible"
}

/// The operations Berth posted to Aptible, in order.
fn posted_operations(aptible: &TestAptible) -> Vec<RecordedRequest> {
    aptible
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_only().ends_with("/operations"))
        .collect()
}

#[tokio::test]
async fn an_owner_connects_with_a_password_and_one_time_code_and_only_the_token_is_kept() {
    let aptible = stand_in().await;
    let app = berth(&aptible).await;

    let state = app
        .call("GET", platform_path(), &app.viewer(), None)
        .await
        .expect(200)
        .json();
    assert_eq!(state["platform"]["state"], "not_connected");
    let body = json!({"email": OTP_EMAIL, "password": OTP_PASSWORD});
    app.call("PUT", platform_path(), &app.deployer(), Some(body.clone()))
        .await
        .expect(403);
    app.call("PUT", platform_path(), &app.outsider(), Some(body.clone()))
        .await
        .expect(404);

    // A body that is neither a token nor a sign-in: the role is checked first.
    let unclear = json!({"token": "t", "email": OTP_EMAIL});
    app.call("PUT", platform_path(), &app.viewer(), Some(unclear.clone()))
        .await
        .expect(403);
    refusal(
        app.call("PUT", platform_path(), &app.owner_token(), Some(unclear))
            .await,
        "invalid",
        "token",
    );

    // Without the one-time code, Aptible asks for it, and Berth asks the person.
    refusal(
        app.call("PUT", platform_path(), &app.owner_token(), Some(body))
            .await,
        "invalid",
        "otp",
    );
    let wrong = json!({"email": OTP_EMAIL, "password": "not the password"});
    refusal(
        app.call("PUT", platform_path(), &app.owner_token(), Some(wrong))
            .await,
        "invalid",
        "password",
    );
    let with_code = json!({"email": OTP_EMAIL, "password": OTP_PASSWORD, "otp": OTP_CODE});
    let connected = app
        .call("PUT", platform_path(), &app.owner_token(), Some(with_code))
        .await
        .expect(200)
        .json();
    assert_eq!(connected["platform"]["state"], "connected");
    assert_eq!(connected["platform"]["account"], OTP_EMAIL);
    assert!(
        connected["platform"]["expires_at"].as_i64().is_some(),
        "{connected}"
    );
    assert_eq!(
        connected["platform"]["expires_soon"], false,
        "a fresh token: {connected}"
    );

    // The grant, as Aptible's clients send it: the password grant with scope manage, then
    // the same with the one-time code.
    let grants: Vec<Value> = aptible
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_only() == "/tokens")
        .map(|r| r.json())
        .collect();
    assert_eq!(grants.len(), 3, "{grants:?}");
    for grant in &grants {
        assert_eq!(grant["grant_type"], "password");
        assert_eq!(grant["scope"], "manage");
        assert!(grant["expires_in"].as_i64().is_some(), "{grant}");
    }
    assert_eq!(grants[0]["username"], OTP_EMAIL);
    assert!(grants[0].get("otp_token").is_none());
    assert_eq!(grants[2]["otp_token"], OTP_CODE);

    // A pasted token works too; it is checked first, then kept sealed, never shown.
    let token = aptible.token_for(APTIBLE_EMAIL);
    refusal(
        app.call(
            "PUT",
            platform_path(),
            &app.owner_token(),
            Some(json!({"token": "not-a-token"})),
        )
        .await,
        "invalid",
        "token",
    );
    let again = app
        .call(
            "PUT",
            platform_path(),
            &app.owner_token(),
            Some(json!({"token": token})),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(again["platform"]["state"], "connected");
    let page = app
        .signed_in(OWNER)
        .await
        .get("/teams/acme/platforms")
        .await;
    assert!(
        page.body.contains("Connected") && page.body.contains(&aptible.api_url()),
        "{}",
        page.body
    );
    let audit = app
        .call("GET", "/api/v1/teams/acme/audit", &app.owner_token(), None)
        .await
        .expect(200)
        .body;
    assert!(audit.contains("platform.connect"), "{audit}");

    // Disconnecting deletes the token.
    app.call("DELETE", platform_path(), &app.deployer(), None)
        .await
        .expect(403);
    let gone = app
        .call("DELETE", platform_path(), &app.owner_token(), None)
        .await
        .expect(200)
        .json();
    assert_eq!(gone["platform"]["state"], "not_connected");
    app.assert_no_leaks(&[OTP_PASSWORD, APTIBLE_PASSWORD, &token]);
}

async fn connected_app(aptible: &TestAptible) -> (TestApp, String) {
    connected_app_on(TestApp::sqlite(), aptible).await
}

async fn connected_app_on(database: TestAppBuilder, aptible: &TestAptible) -> (TestApp, String) {
    let app = berth_on(database, aptible).await;
    let token = aptible.token_for(APTIBLE_EMAIL);
    app.call(
        "PUT",
        platform_path(),
        &app.owner_token(),
        Some(json!({"token": token})),
    )
    .await
    .expect(200);
    (app, token)
}

#[tokio::test]
async fn an_app_on_aptible_is_found_by_handle_before_it_is_created() {
    let aptible = stand_in().await;
    let not_connected = berth(&aptible).await;
    let body = json!({"handle": "web", "method": "image",
        "platform": {"kind": "aptible", "environment": "production", "app": "web"}});
    let refused = not_connected
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &not_connected.deployer(),
            Some(body.clone()),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("not connected to Aptible"),
        "{}",
        refused.body
    );

    let (app, _) = connected_app(&aptible).await;
    let missing = json!({"handle": "web", "method": "image",
        "platform": {"kind": "aptible", "environment": "production", "app": "nope"}});
    refusal(
        app.call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(missing),
        )
        .await,
        "invalid",
        "aptible_app",
    );
    let bad = json!({"handle": "web", "method": "image", "platform": {"kind": "mars"}});
    refusal(
        app.call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(bad),
        )
        .await,
        "invalid",
        "platform",
    );
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(body),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(
        created["app"]["platform"],
        json!({"kind": "aptible", "environment": "production", "app": "web", "app_id": 11, "verify_images": true})
    );
    let local = app.create_app("site", "image", None).await;
    assert_eq!(local["platform"]["kind"], "local", "{local}");
}

#[tokio::test]
async fn deploys_configuration_and_restarts_are_forwarded_as_aptibles_cli_sends_them() {
    let aptible = stand_in().await;
    let (app, token) = connected_app(&aptible).await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", REGISTRY_PASSWORD), "one")
        .await;
    app.call(
        "POST",
        "/api/v1/teams/acme/apps",
        &app.deployer(),
        Some(json!({"handle": "web", "method": "image",
            "platform": {"kind": "aptible", "environment": "production", "app": "web"}})),
    )
    .await
    .expect(201);
    let image = app.image("team/web:1");

    // A deploy with credentials given: verified against the registry first, then one
    // operation on Aptible with the image, the login in sensitive_settings and the
    // configuration changes in env.
    let first = app
        .deploy_and_wait(
            "web",
            json!({
                "image": image,
                "registry_username": "puller",
                "registry_password": REGISTRY_PASSWORD,
                "env": {"DATABASE_URL": CONFIG_SECRET, "GREETING": {"value": "hello", "plain": true}},
            }),
        )
        .await;
    app.succeeded(&first).await;
    let remote = first["aptible_operation"]["id"]
        .as_i64()
        .expect("Aptible's operation id");
    assert_eq!(aptible.operation_ids(), vec![remote]);
    assert!(first["aptible_operation"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&remote.to_string()));
    let page = app
        .signed_in(DEPLOYER)
        .await
        .get(&format!("/teams/acme/operations/{}", first["id"]))
        .await;
    assert!(page.body.contains("On Aptible"), "{}", page.body);
    assert!(!page.body.contains(REGISTRY_PASSWORD) && !page.body.contains(CONFIG_SECRET));
    let posted = posted_operations(&aptible);
    assert_eq!(posted.len(), 1);
    let request = &posted[0];
    assert_eq!(request.path_only(), "/apps/11/operations");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "type": "deploy",
            "settings": {"APTIBLE_DOCKER_IMAGE": image},
            "sensitive_settings": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "puller",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            },
            "env": {"DATABASE_URL": CONFIG_SECRET, "GREETING": "hello"},
        })
    );
    // The registry password went nowhere else on Aptible's side.
    for other in aptible
        .requests()
        .iter()
        .filter(|r| !std::ptr::eq(*r, request))
    {
        if other.path_only() != "/apps/11/operations" {
            assert!(
                !other.contains(REGISTRY_PASSWORD),
                "{} {}",
                other.method,
                other.path
            );
        }
    }
    let log = app.log(first["id"].as_i64().unwrap()).await;
    assert!(
        log.contains("Aptible operation") && log.contains("succeeded"),
        "{log}"
    );
    assert!(log.contains("Aptible's log of operation"), "{log}");
    assert!(
        log.contains("DATABASE_URL=[redacted]"),
        "Aptible's log is redacted:\n{log}"
    );
    let shown = app.app_json("web").await;
    assert_eq!(shown["release"]["digest"], first["digest"]);

    // The next deploy has no credentials to give: Aptible keeps the ones it stored.
    let second = app.deploy_and_wait("web", json!({ "image": image })).await;
    app.succeeded(&second).await;
    assert_eq!(second["credential_source"], "remembered");
    let body = posted_operations(&aptible)[1].json();
    assert_eq!(
        body,
        json!({"type": "deploy", "settings": {"APTIBLE_DOCKER_IMAGE": image}})
    );

    // Fresh credentials given with a later deploy are forwarded again (this deploy only).
    let third = app
        .deploy_and_wait(
            "web",
            json!({"image": image, "registry_username": "puller",
                   "registry_password": REGISTRY_PASSWORD, "remember": false}),
        )
        .await;
    app.succeeded(&third).await;
    assert_eq!(third["credential_source"], "given");
    assert_eq!(
        posted_operations(&aptible)[2].json()["sensitive_settings"],
        json!({"APTIBLE_PRIVATE_REGISTRY_USERNAME": "puller",
               "APTIBLE_PRIVATE_REGISTRY_PASSWORD": REGISTRY_PASSWORD})
    );

    // Configure: set and unset ("" unsets on Aptible); restart.
    let configured = app
        .configure_and_wait(
            "web",
            json!({"GREETING": {"value": "bye", "plain": true}, "DATABASE_URL": null}),
        )
        .await;
    app.succeeded(&configured).await;
    assert_eq!(
        posted_operations(&aptible)[3].json(),
        json!({"type": "configure", "env": {"DATABASE_URL": "", "GREETING": "bye"}})
    );
    let restarted = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/restart",
            &app.deployer(),
            None,
        )
        .await
        .expect(202)
        .json()["operation"]
        .clone();
    let restarted = app.wait(restarted["id"].as_i64().unwrap()).await;
    app.succeeded(&restarted).await;
    assert_eq!(
        posted_operations(&aptible)[4].json(),
        json!({"type": "restart"})
    );

    // An operation that fails on Aptible fails in Berth, with Aptible's log, and changes
    // nothing: the configuration stays as it was.
    let failed = app
        .configure_and_wait("web", json!({FAIL_THIS_OPERATION: "1"}))
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("failed"),
        "{failed}"
    );
    let config = app.config("web").await;
    assert!(
        !config.iter().any(|v| v["key"] == FAIL_THIS_OPERATION),
        "{config:?}"
    );

    // A token Aptible no longer accepts fails the operation with what to do, and marks the
    // connection; later operations are refused before anything is queued.
    aptible.expire_token(&token);
    let refused = app.deploy_and_wait("web", json!({ "image": image })).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("connects again"),
        "{refused}"
    );
    let state = app
        .call("GET", platform_path(), &app.viewer(), None)
        .await
        .expect(200)
        .json();
    assert_eq!(state["platform"]["state"], "reconnect_needed", "{state}");
    let later = app.deploy("web", json!({ "image": image })).await;
    assert_eq!(later.status, 503, "{}", later.body);

    app.assert_no_leaks(&[REGISTRY_PASSWORD, CONFIG_SECRET, &token]);
}

/// A source repository with a Dockerfile whose base is private in `registry`, on `main`.
fn dockerfile_source(registry: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {registry}/base/busybox:1\nCOPY hello.txt /www/hello.txt\n"),
    )
    .unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from Aptible\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "Build me on Aptible"]);
    repo
}

#[tokio::test]
async fn a_dockerfile_deploy_pushes_its_commit_to_aptibles_git_remote_then_deploys_that_branch_with_the_registry_login(
) {
    let host = GitSshHost::start();
    let remote = host.serve_empty_repository("aptible-web");
    let aptible = TestAptible::builder()
        .user(APTIBLE_EMAIL, APTIBLE_PASSWORD)
        .app("production", "web", 11, Some(&remote))
        .start()
        .await;
    let registry = TestRegistry::start_htpasswd(&[
        ("puller", REGISTRY_PASSWORD),
        ("ci-bot", TEAM_CREDENTIAL_PASSWORD),
    ])
    .await;
    registry
        .push_serving_image("base/busybox", "1", ("puller", REGISTRY_PASSWORD), "base")
        .await;
    let registry_host = registry.host.to_string();
    let source = dockerfile_source(&registry_host);
    let main = git(source.path(), &["rev-parse", "main"]);
    let app = TestApp::sqlite()
        .with_team()
        // The source repository is made in the temporary directory; Aptible's git remote
        // is on a loopback port, allowed the way an operator allows it.
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_egress_allow(&host.authority())
        .with_registry(registry)
        .with_aptible(&aptible.api_url(), &aptible.auth_url())
        .start()
        .await;
    let token = aptible.token_for(APTIBLE_EMAIL);
    app.call(
        "PUT",
        platform_path(),
        &app.owner_token(),
        Some(json!({ "token": token })),
    )
    .await
    .expect(200);
    app.call(
        "POST",
        "/api/v1/teams/acme/apps",
        &app.deployer(),
        Some(json!({"handle": "web", "method": "dockerfile",
            "git": {"url": source.path().display().to_string()},
            "platform": {"kind": "aptible", "environment": "production", "app": "web"}})),
    )
    .await
    .expect(201);
    let deploy = json!({
        "git_ref": "main",
        "registry_username": "puller",
        "registry_password": REGISTRY_PASSWORD,
        "private_registry_host": registry_host,
        "env": {"GREETING": {"value": "hello", "plain": true}},
    });

    // The base image is still proved pullable before anything is queued (no local builder
    // needed): a wrong password is refused at once.
    let mut wrong = deploy.clone();
    wrong["registry_password"] = json!("not-the-pull-password");
    let error = refusal(
        app.deploy("web", wrong).await,
        "verification_failed",
        "registry_password",
    );
    assert_eq!(error["reason"], "wrong_credentials", "{error}");
    assert!(app.operations("web").await.is_empty(), "nothing was queued");

    // (a) The team's deploy key is made for the push, but Aptible (the git host) does not
    // know it yet: the deploy fails saying what to do, and nothing is posted to Aptible.
    let refused = app.deploy_and_wait("web", deploy.clone()).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let key = app
        .call("GET", "/api/v1/teams/acme/deploy-key", &app.viewer(), None)
        .await
        .expect(200)
        .json();
    let public_key = key["public_key"]
        .as_str()
        .expect("made for the push")
        .to_owned();
    let fingerprint = key["fingerprint"].as_str().unwrap().to_owned();
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("Aptible refused the team's deploy key")
            && message.contains(&fingerprint)
            && message.contains("to Aptible as an SSH key"),
        "{message}"
    );
    assert!(
        host.log().contains(&fingerprint),
        "sshd was offered the team's key: {}",
        host.log()
    );
    assert!(posted_operations(&aptible).is_empty(), "nothing was posted");
    assert!(
        host.branches("aptible-web").is_empty(),
        "nothing was pushed"
    );
    assert!(
        app.config("web").await.is_empty(),
        "a failed deploy changes no configuration"
    );

    // The Platforms page shows the key, and says where it goes.
    let page = app
        .signed_in(DEPLOYER)
        .await
        .get("/teams/acme/platforms")
        .await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body
            .contains(public_key.split_whitespace().nth(1).unwrap())
            && page.body.contains(&fingerprint)
            && page.body.contains("to Aptible as an SSH key"),
        "{}",
        page.body
    );

    // (b) Authorised, the same deploy pushes exactly its commit to Berth's own branch, then
    // posts one deploy of that branch with the registry login and the configuration changes.
    host.authorize(&[&public_key]);
    let deployed = app.deploy_and_wait("web", deploy).await;
    app.succeeded(&deployed).await;
    let id = deployed["id"].as_i64().unwrap();
    let branch = format!("berth-deploy-{id}");
    assert_eq!(deployed["git_ref"], "main");
    assert_eq!(deployed["commit"], main.as_str());
    assert_eq!(deployed["credential_source"], "given", "{deployed}");
    assert_eq!(
        host.branch_commit("aptible-web", &branch).as_deref(),
        Some(main.as_str()),
        "the deploy's commit is on {branch}"
    );
    assert_eq!(
        host.branches("aptible-web"),
        std::slice::from_ref(&branch),
        "the default branch is never pushed to"
    );
    let posted = posted_operations(&aptible);
    assert_eq!(posted.len(), 1, "one operation: one build, one restart");
    let request = &posted[0];
    assert_eq!(request.path_only(), "/apps/11/operations");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "type": "deploy",
            "git_ref": branch,
            "env": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "puller",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
                "GREETING": "hello",
            },
        })
    );
    for other in aptible
        .requests()
        .iter()
        .filter(|r| !(r.method == "POST" && r.path_only() == "/apps/11/operations"))
    {
        assert!(
            !other.contains(REGISTRY_PASSWORD),
            "{} {}",
            other.method,
            other.path
        );
    }
    let log = app.log(id).await;
    assert!(
        log.contains(&format!("Pushed {} to {branch}", &main[..7])),
        "{log}"
    );
    assert!(log.contains("Aptible's log of operation"), "{log}");
    assert!(
        log.contains("APTIBLE_PRIVATE_REGISTRY_PASSWORD=[redacted]"),
        "Aptible's log is redacted:\n{log}"
    );
    // Aptible built the image: there is no digest to record, and the history shows the
    // commit that was deployed.
    let history = app.operations("web").await;
    assert_eq!(history[0]["id"], deployed["id"]);
    assert_eq!(history[0]["commit"], main.as_str());
    // The configuration given with the deploy is the app's now (the password write-only).
    let config = app.config("web").await;
    for key in [
        "APTIBLE_PRIVATE_REGISTRY_USERNAME",
        "APTIBLE_PRIVATE_REGISTRY_PASSWORD",
        "APTIBLE_PRIVATE_REGISTRY_HOST",
        "GREETING",
    ] {
        assert!(
            config.iter().any(|row| row["key"] == key),
            "{key}: {config:?}"
        );
    }

    // Without a login in the configuration, the team credential that matches the base's
    // registry goes with the deploy, fresh each time (Aptible's build has no other way to
    // pull); it does not become the app's configuration.
    let cleared = app
        .configure_and_wait(
            "web",
            json!({"APTIBLE_PRIVATE_REGISTRY_USERNAME": null, "APTIBLE_PRIVATE_REGISTRY_PASSWORD": null}),
        )
        .await;
    app.succeeded(&cleared).await;
    assert_eq!(
        posted_operations(&aptible)[1].json(),
        json!({"type": "configure", "env": {
            "APTIBLE_PRIVATE_REGISTRY_PASSWORD": "", "APTIBLE_PRIVATE_REGISTRY_USERNAME": ""}})
    );
    app.create_credential(&app.owner_token(), "ci", "ci-bot", TEAM_CREDENTIAL_PASSWORD)
        .await
        .expect(201);
    let with_team = app
        .deploy_and_wait("web", json!({ "git_ref": "main" }))
        .await;
    app.succeeded(&with_team).await;
    assert_eq!(with_team["credential_source"], "team", "{with_team}");
    let team_branch = format!("berth-deploy-{}", with_team["id"]);
    assert_eq!(
        host.branch_commit("aptible-web", &team_branch).as_deref(),
        Some(main.as_str())
    );
    assert_eq!(
        posted_operations(&aptible)[2].json(),
        json!({
            "type": "deploy",
            "git_ref": team_branch,
            "env": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "ci-bot",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": TEAM_CREDENTIAL_PASSWORD,
            },
        })
    );
    let config = app.config("web").await;
    assert!(
        !config
            .iter()
            .any(|row| row["key"] == "APTIBLE_PRIVATE_REGISTRY_PASSWORD"),
        "{config:?}"
    );

    // (c) The registry passwords went to Aptible in those requests only, and the private
    // key nowhere: no API answer, page, log or database file holds any of them.
    let mut secrets = app.deploy_key_needles("acme", &public_key).await;
    secrets.push(REGISTRY_PASSWORD.to_owned());
    secrets.push(TEAM_CREDENTIAL_PASSWORD.to_owned());
    secrets.push(token.clone());
    for needle in &secrets {
        assert!(
            !page.body.contains(needle.as_str()),
            "a page holds a secret"
        );
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    app.assert_no_leaks(&secrets);
    app.stop().await;
}

/// Creates the app `web` on the stand-in's `production/web`.
async fn aptible_web(app: &TestApp) {
    app.call(
        "POST",
        "/api/v1/teams/acme/apps",
        &app.deployer(),
        Some(json!({"handle": "web", "method": "image",
            "platform": {"kind": "aptible", "environment": "production", "app": "web"}})),
    )
    .await
    .expect(201);
}

/// Waits until Berth has posted `count` operations to the stand-in.
async fn until_posted(aptible: &TestAptible, count: usize) {
    for _ in 0..200 {
        if posted_operations(aptible).len() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("Berth did not post operation {count} to Aptible");
}

#[tokio::test]
async fn a_forwarded_operation_is_followed_again_after_berth_stops_and_never_posted_twice() {
    followed_again_after_a_stop(TestApp::sqlite()).await;
}

#[tokio::test]
async fn a_forwarded_operation_is_followed_again_after_berth_stops_on_postgres() {
    followed_again_after_a_stop(TestApp::postgres()).await;
}

async fn followed_again_after_a_stop(database: TestAppBuilder) {
    let aptible = stand_in().await;
    let (app, _) = connected_app_on(database, &aptible).await;
    aptible_web(&app).await;
    let queued = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &app.deployer(),
            Some(json!({"env": {"GREETING": "hello"}})),
        )
        .await
        .expect(202)
        .json()["operation"]
        .clone();
    let id = queued["id"].as_i64().unwrap();
    until_posted(&aptible, 1).await;
    // Once Berth has recorded Aptible's operation id (a Berth killed between Aptible's answer
    // and that write fails the operation when its lease runs out: it cannot know the id).
    for _ in 0..200 {
        if app.operation(id).await["aptible_operation"].is_object() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(app.operation(id).await["aptible_operation"].is_object());

    // The worker dies while it follows the operation on Aptible (its lease with it); a new
    // one takes the operation over once the lease runs out, and follows it there again.
    app.stop().await;
    let _worker = app.another_worker();
    let done = app.wait(id).await;
    app.succeeded(&done).await;
    assert_eq!(posted_operations(&aptible).len(), 1, "posted once");
    let log = app.log(id).await;
    assert!(log.contains("again"), "{log}");
    let config = app.config("web").await;
    assert!(config.iter().any(|v| v["key"] == "GREETING"), "{config:?}");
}

#[tokio::test]
async fn an_operation_running_on_aptible_can_be_cancelled_there() {
    let aptible = stand_in().await;
    let (app, _) = connected_app(&aptible).await;
    aptible_web(&app).await;
    let queued = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &app.deployer(),
            Some(json!({"env": {"GREETING": "hello"}})),
        )
        .await
        .expect(202)
        .json()["operation"]
        .clone();
    let id = queued["id"].as_i64().unwrap();
    until_posted(&aptible, 1).await;
    let path = format!("/api/v1/operations/{id}/cancel");
    app.call("POST", &path, &app.viewer(), None)
        .await
        .expect(403);
    let asked = app
        .call("POST", &path, &app.deployer(), None)
        .await
        .expect(200)
        .json();
    assert_eq!(asked["operation"]["status"], "running", "{asked}");
    let put = aptible
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a cancellation sent to Aptible");
    assert!(put.path_only().starts_with("/operations/"), "{}", put.path);
    assert_eq!(put.json(), json!({"cancelled": true}));
    let done = app.wait(id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("cancelled"),
        "{done}"
    );
    // A cancelled configuration change is not applied.
    assert!(app
        .config("web")
        .await
        .iter()
        .all(|v| v["key"] != "GREETING"));
}

/// Against the real Aptible, when `APTIBLE_ACCESS_TOKEN`, `APTIBLE_TEST_ENVIRONMENT` and
/// `APTIBLE_TEST_APP` are set (and `BERTH_APTIBLE_API_URL` / `BERTH_APTIBLE_AUTH_URL` are
/// not needed: Aptible's own addresses are the defaults): connects with the token, finds the
/// app, and changes a throwaway variable through Berth (Aptible restarts the app),
/// following the operation to its end: about the least a live app can be asked to do; use
/// an app made for this test. Skipped, saying so, without the variables.
#[tokio::test]
async fn live_aptible_connect_find_and_configure() {
    let vars = [
        "APTIBLE_ACCESS_TOKEN",
        "APTIBLE_TEST_ENVIRONMENT",
        "APTIBLE_TEST_APP",
    ]
    .map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    let [Some(token), Some(environment), Some(handle)] = vars else {
        eprintln!(
            "skipped: the live Aptible test runs when APTIBLE_ACCESS_TOKEN, \
             APTIBLE_TEST_ENVIRONMENT and APTIBLE_TEST_APP are set"
        );
        return;
    };
    let app = TestApp::sqlite()
        .with_team()
        .with_aptible("https://api.aptible.com", "https://auth.aptible.com")
        .start()
        .await;
    let connected = app
        .call(
            "PUT",
            platform_path(),
            &app.owner_token(),
            Some(json!({"token": token})),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(connected["platform"]["state"], "connected", "{connected}");
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(json!({"handle": "live", "method": "image",
                "platform": {"kind": "aptible", "environment": environment, "app": handle}})),
        )
        .await
        .expect(201)
        .json();
    assert!(
        created["app"]["platform"]["app_id"].as_i64().is_some(),
        "{created}"
    );
    // Berth has no release of the app yet; a configure of a throwaway variable restarts it
    // on Aptible like a restart would, and is what Berth can ask of an app it never deployed.
    let done = app
        .configure_and_wait(
            "live",
            json!({"BERTH_LIVE_TEST": {"value": "1", "plain": true}}),
        )
        .await;
    let log = app.log(done["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{log}");
    assert!(done["aptible_operation"]["id"].as_i64().is_some(), "{done}");
    app.assert_no_leaks(&[&token]);
}

#[tokio::test]
async fn an_app_on_aptible_deploys_from_its_page_when_this_server_cannot_run_apps() {
    let aptible = stand_in().await;
    let registry = TestRegistry::start_htpasswd(&[("puller", REGISTRY_PASSWORD)]).await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .with_aptible(&aptible.api_url(), &aptible.auth_url())
        .with_buildah("/nonexistent/buildah")
        .start()
        .await;
    app.call(
        "PUT",
        platform_path(),
        &app.owner_token(),
        Some(json!({"token": aptible.token_for(APTIBLE_EMAIL)})),
    )
    .await
    .expect(200);
    let on_aptible = json!({"handle": "web", "method": "image",
        "platform": {"kind": "aptible", "environment": "production", "app": "web"}});
    let on_this_server = json!({"handle": "site", "method": "image"});
    for body in [on_aptible, on_this_server] {
        app.call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(body),
        )
        .await
        .expect(201);
    }
    let mut owner = app.signed_in(OWNER).await;

    // The app on Aptible says where it runs, and its forms are not held back by the
    // missing buildah (which the app on this server still reports).
    let page = owner.get("/teams/acme/apps/web/deploy").await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("runs on Aptible as ")
            && page.body.contains("<code>production/web</code>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("buildah"), "{}", page.body);
    let local = owner.get("/teams/acme/apps/site/deploy").await;
    assert!(local.body.contains("buildah"), "{}", local.body);
    assert!(!local.body.contains("runs on Aptible"), "{}", local.body);

    app.registry()
        .push_serving_image("team/web", "1", ("puller", REGISTRY_PASSWORD), "one")
        .await;
    let deployed = app
        .deploy_and_wait(
            "web",
            json!({"image": app.image("team/web:1"), "registry_username": "puller",
                "registry_password": REGISTRY_PASSWORD}),
        )
        .await;
    app.succeeded(&deployed).await;
    let page = owner.get("/teams/acme/apps/web").await;
    assert!(
        page.body.contains("served by Aptible (app "),
        "{}",
        page.body
    );

    // Disconnected, the app on Aptible's page says what to do instead.
    app.call("DELETE", platform_path(), &app.owner_token(), None)
        .await
        .expect(200);
    let page = owner.get("/teams/acme/apps/web/deploy").await;
    assert!(
        page.body.contains("not connected to Aptible"),
        "{}",
        page.body
    );
    app.assert_no_leaks(&[REGISTRY_PASSWORD]);
}

#[tokio::test]
async fn an_app_may_skip_verification_for_images_only_aptible_can_reach() {
    let aptible = stand_in().await;
    let (app, _) = connected_app(&aptible).await;
    // Only Aptible can reach this registry: Berth cannot verify the image.
    let image = "registry.internal.invalid/team/web:1";
    aptible_web(&app).await;
    let refused = app
        .deploy("web", json!({"image": image, "registry_username": "puller", "registry_password": REGISTRY_PASSWORD}))
        .await;
    assert_eq!(refused.status, 422, "verified by default: {}", refused.body);
    assert!(posted_operations(&aptible).is_empty());

    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(json!({"handle": "internal", "method": "image",
                "platform": {"kind": "aptible", "environment": "staging", "app": "web",
                             "verify_images": false}})),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(
        created["app"]["platform"]["verify_images"], false,
        "{created}"
    );
    let done = app
        .deploy_and_wait(
            "internal",
            json!({"image": image, "registry_username": "puller", "registry_password": REGISTRY_PASSWORD}),
        )
        .await;
    app.succeeded(&done).await;
    assert!(
        done["digest"].is_null(),
        "no digest without verification: {done}"
    );
    let posted = posted_operations(&aptible);
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path_only(), "/apps/12/operations");
    assert_eq!(
        posted[0].json(),
        json!({
            "type": "deploy",
            "settings": {"APTIBLE_DOCKER_IMAGE": image},
            "sensitive_settings": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "puller",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            },
        })
    );
    let log = app.log(done["id"].as_i64().unwrap()).await;
    assert!(log.contains("not verified before forwarding"), "{log}");
    app.assert_no_leaks(&[REGISTRY_PASSWORD]);
}
