//! Apps on Aptible, end to end through Berth's JSON API and pages, against the stand-in
//! (`testaptible`, Aptible's wire shapes, recording every request) and a real registry (the
//! image is verified before anything is forwarded): a team connects, an app is found on
//! Aptible, and deploys, configuration changes and restarts are forwarded exactly as
//! Aptible's CLI sends them, followed to their end, with Aptible's log in Berth's history.

mod support;

use serde_json::{json, Value};
use support::*;
use testaptible::{RecordedRequest, TestAptible, FAIL_THIS_OPERATION};
use testregistry::TestRegistry;

const APTIBLE_EMAIL: &str = "ops@acme.example";
const APTIBLE_PASSWORD: &str = "aptible-password-7f3c0d91";
const OTP_EMAIL: &str = "careful@acme.example";
const OTP_PASSWORD: &str = "aptible-2fa-password-55e1";
const OTP_CODE: &str = "424242";
const REGISTRY_PASSWORD: &str = "pull-pass-for-aptible-3e8a21";
const CONFIG_SECRET: &str = "config-secret-for-aptible-90b4c6";

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
    let registry = TestRegistry::start_htpasswd(&[("puller", REGISTRY_PASSWORD)]).await;
    TestApp::sqlite()
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
    let app = berth(aptible).await;
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
        json!({"kind": "aptible", "environment": "production", "app": "web", "app_id": 11})
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

    // Configure: set and unset ("" unsets on Aptible); restart.
    let configured = app
        .configure_and_wait(
            "web",
            json!({"GREETING": {"value": "bye", "plain": true}, "DATABASE_URL": null}),
        )
        .await;
    app.succeeded(&configured).await;
    assert_eq!(
        posted_operations(&aptible)[2].json(),
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
        posted_operations(&aptible)[3].json(),
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
    let page = owner.get("/teams/acme/apps/web").await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("runs on Aptible as ")
            && page.body.contains("<code>production/web</code>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("buildah"), "{}", page.body);
    let local = owner.get("/teams/acme/apps/site").await;
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
    let page = owner.get("/teams/acme/apps/web").await;
    assert!(
        page.body.contains("not connected to Aptible"),
        "{}",
        page.body
    );
    app.assert_no_leaks(&[REGISTRY_PASSWORD]);
}
