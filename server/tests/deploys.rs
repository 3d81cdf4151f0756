//! Direct Docker Image deploys end to end, through the JSON API: a real registry (the Debian
//! distribution registry with htpasswd auth), images that serve HTTP on `$PORT`, the local
//! engine running them with buildah, and the operation worker in between. Every rule of
//! DESIGN.md §1 "Direct Docker Image deploy" has a test named after it.

mod support;

use domain::Role;
use serde_json::{json, Value};
use std::{sync::Mutex, time::Duration};
use support::*;
use testregistry::TestRegistry;

const PASSWORD_1: &str = "pull-pass-4a7d19e3c2";
const PASSWORD_2: &str = "pull-pass-rotated-b81f07";
const OTHER_USER_PASSWORD: &str = "other-pull-pass-5c02ee";
const CONFIG_SECRET: &str = "config-secret-value-91d3a7";

struct World {
    app: TestApp,
    registry: TestRegistry,
    owner: String,
    deployer: String,
    viewer: String,
    outsider: String,
    /// Every API response body, for the leak scan.
    responses: Mutex<Vec<String>>,
}

async fn world(database_url: Option<&str>) -> World {
    captured_logs();
    let registry =
        TestRegistry::start_htpasswd(&[("puller", PASSWORD_1), ("other", OTHER_USER_PASSWORD)])
            .await;
    let app = TestApp::spawn_on(database_url, vec![registry.host.clone()]).await;
    let owner = app.owner("owner@example.com", "acme").await;
    let deployer = app
        .member("deployer@example.com", "acme", Role::Deployer)
        .await;
    let viewer = app.member("viewer@example.com", "acme", Role::Viewer).await;
    let outsider = app.owner("outsider@example.com", "other").await;
    World {
        owner: app.token_for(owner).await,
        deployer: app.token_for(deployer).await,
        viewer: app.token_for(viewer).await,
        outsider: app.token_for(outsider).await,
        app,
        registry,
        responses: Mutex::new(Vec::new()),
    }
}

impl World {
    fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.registry.host)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let response = self.app.api(method, path, Some(token), body).await;
        self.responses.lock().unwrap().push(response.body.clone());
        response
    }

    async fn create_app(&self, handle: &str) {
        let created = self
            .call(
                "POST",
                "/api/v1/teams/acme/apps",
                &self.deployer,
                Some(json!({ "handle": handle, "method": "image" })),
            )
            .await;
        assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    }

    async fn deploy(&self, app: &str, body: Value) -> TestResponse {
        self.call(
            "POST",
            &format!("/api/v1/teams/acme/apps/{app}/deploys"),
            &self.deployer,
            Some(body),
        )
        .await
    }

    /// Deploys and waits for the operation to end; returns the final operation.
    async fn deploy_and_wait(&self, app: &str, body: Value) -> Value {
        let queued = self.deploy(app, body).await;
        assert_eq!(queued.status.as_u16(), 202, "{}", queued.body);
        let operation = queued.json()["operation"].clone();
        assert_eq!(operation["status"], "queued");
        self.wait(operation["id"].as_i64().unwrap()).await
    }

    async fn operation(&self, id: i64) -> Value {
        let response = self
            .call(
                "GET",
                &format!("/api/v1/operations/{id}"),
                &self.viewer,
                None,
            )
            .await;
        assert_eq!(response.status.as_u16(), 200, "{}", response.body);
        response.json()["operation"].clone()
    }

    async fn wait(&self, id: i64) -> Value {
        for _ in 0..600 {
            let operation = self.operation(id).await;
            if ["succeeded", "failed", "cancelled"].contains(&operation["status"].as_str().unwrap())
            {
                return operation;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("operation {id} did not finish: {}", self.log(id).await);
    }

    async fn log(&self, id: i64) -> String {
        self.call(
            "GET",
            &format!("/api/v1/operations/{id}/log"),
            &self.viewer,
            None,
        )
        .await
        .body
    }

    async fn app_json(&self, handle: &str) -> Value {
        let response = self
            .call(
                "GET",
                &format!("/api/v1/teams/acme/apps/{handle}"),
                &self.viewer,
                None,
            )
            .await;
        assert_eq!(response.status.as_u16(), 200, "{}", response.body);
        response.json()["app"].clone()
    }

    async fn operations(&self, handle: &str) -> Vec<Value> {
        let response = self
            .call(
                "GET",
                &format!("/api/v1/teams/acme/apps/{handle}/operations?limit=200"),
                &self.viewer,
                None,
            )
            .await;
        assert_eq!(response.status.as_u16(), 200, "{}", response.body);
        response.json()["operations"].as_array().unwrap().clone()
    }

    async fn succeeded(&self, operation: &Value) {
        let id = operation["id"].as_i64().unwrap();
        assert_eq!(
            operation["status"],
            "succeeded",
            "{operation}\n{}",
            self.log(id).await
        );
    }
}

/// What the app's current release serves at `/`.
async fn served(url: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let response = client.get(url).send().await.ok()?;
    response.text().await.ok()
}

fn release_url(app: &Value) -> String {
    app["release"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("the app has no URL: {app}"))
        .to_owned()
}

#[tokio::test]
async fn remembered_credentials_serve_later_deploys_and_are_replaced_by_per_deploy_ones() {
    let w = world(None).await;
    let v1 = w
        .registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "release one")
        .await;
    let v2 = w
        .registry
        .push_serving_image("team/web", "2", ("puller", PASSWORD_1), "release two")
        .await;
    w.create_app("web").await;

    // The first deploy of a private image carries credentials; Berth remembers them.
    let first = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    w.succeeded(&first).await;
    assert_eq!(first["digest"], v1.as_str());
    assert_eq!(first["credential_source"], "given");
    let app = w.app_json("web").await;
    assert_eq!(app["release"]["digest"], v1.as_str());
    assert_eq!(app["credentials"]["remembered"]["username"], "puller");
    assert_eq!(
        served(&release_url(&app)).await.as_deref().map(str::trim),
        Some("release one")
    );
    let log = w.log(first["id"].as_i64().unwrap()).await;
    for step in ["Verify", "Pull", "Start", "Health check", "Switch"] {
        assert!(log.contains(step), "the log shows the {step} step:\n{log}");
    }

    // A later deploy needs no credentials: the remembered ones are used.
    let second = w
        .deploy_and_wait("web", json!({ "image": w.image("team/web:2") }))
        .await;
    w.succeeded(&second).await;
    assert_eq!(second["credential_source"], "remembered");
    let app = w.app_json("web").await;
    assert_eq!(app["release"]["digest"], v2.as_str());
    let url_two = release_url(&app);
    assert_eq!(
        served(&url_two).await.as_deref().map(str::trim),
        Some("release two")
    );

    // The registry password changes: the remembered credentials fail verification, and
    // nothing is queued; the running release is untouched.
    w.registry.set_password("puller", PASSWORD_2);
    let before = w.operations("web").await.len();
    let refused = w
        .deploy("web", json!({ "image": w.image("team/web:1") }))
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    let error = &refused.json()["error"];
    assert_eq!(error["kind"], "verification_failed");
    assert_eq!(error["reason"], "wrong_credentials");
    assert_eq!(error["field"], "credentials");
    assert_eq!(
        w.operations("web").await.len(),
        before,
        "nothing was queued"
    );
    assert_eq!(
        served(&url_two).await.as_deref().map(str::trim),
        Some("release two")
    );

    // New credentials with a deploy succeed and replace the remembered ones.
    let third = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_2,
            }),
        )
        .await;
    w.succeeded(&third).await;
    let fourth = w
        .deploy_and_wait("web", json!({ "image": w.image("team/web:2") }))
        .await;
    w.succeeded(&fourth).await;
    assert_eq!(fourth["credential_source"], "remembered");

    // "This deploy only": used once, the remembered ones stay.
    let once = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:1"),
                "registry_username": "other",
                "registry_password": OTHER_USER_PASSWORD,
                "remember_credentials": false,
            }),
        )
        .await;
    w.succeeded(&once).await;
    assert_eq!(once["credential_source"], "given");
    let app = w.app_json("web").await;
    assert_eq!(app["credentials"]["remembered"]["username"], "puller");

    // Redeploying a history entry redeploys its exact digest.
    let redeploy = w
        .call(
            "POST",
            &format!("/api/v1/operations/{}/redeploy", second["id"]),
            &w.deployer,
            None,
        )
        .await;
    assert_eq!(redeploy.status.as_u16(), 202, "{}", redeploy.body);
    let redeployed = w
        .wait(redeploy.json()["operation"]["id"].as_i64().unwrap())
        .await;
    w.succeeded(&redeployed).await;
    assert_eq!(redeployed["digest"], v2.as_str());

    // Per-deploy secrets are discarded once an operation ends; none of them is stored,
    // logged or answered anywhere.
    leak_scan(&w, &[PASSWORD_1, PASSWORD_2, OTHER_USER_PASSWORD]).await;
    w.app.stop().await;
}

#[tokio::test]
async fn a_team_credential_is_matched_by_registry_host_and_each_use_is_audited() {
    let w = world(None).await;
    let digest = w
        .registry
        .push_serving_image("team/api", "1", ("puller", PASSWORD_1), "api")
        .await;
    let created = w
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            &w.owner,
            Some(json!({
                "name": "ci-pull", "registry": w.registry.host.as_str(), "kind": "basic",
                "username": "puller", "secret": PASSWORD_1,
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    w.create_app("api").await;

    let deployed = w
        .deploy_and_wait("api", json!({ "image": w.image("team/api:1") }))
        .await;
    w.succeeded(&deployed).await;
    assert_eq!(deployed["credential_source"], "team");
    assert_eq!(deployed["credential_name"], "ci-pull");
    assert_eq!(deployed["credential_version"], 1);
    assert_eq!(deployed["digest"], digest.as_str());

    let credential = w
        .call(
            "GET",
            "/api/v1/teams/acme/credentials/ci-pull",
            &w.owner,
            None,
        )
        .await
        .json()["credential"]
        .clone();
    assert_eq!(credential["used_by_apps"], 1, "{credential}");
    assert!(
        credential["last_used"]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("operation #{}", deployed["id"])),
        "{credential}"
    );
    let audit = w
        .call("GET", "/api/v1/teams/acme/audit", &w.owner, None)
        .await
        .json();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "credential.use"
                && e["subject"] == "credential:ci-pull"
                && e["outcome"] == "ok"),
        "{audit}"
    );
    let app = w.app_json("api").await;
    assert_eq!(app["credentials"]["team_credential"], "ci-pull");

    // The credential page names the apps that use it before a delete...
    let page = w
        .app
        .signed_in("owner@example.com")
        .await
        .get("/teams/acme/credentials/ci-pull")
        .await;
    assert!(
        page.body.contains("Used by 1 app(s)"),
        "the delete section lists the apps"
    );
    // ...and once it is deleted, the app (with nothing remembered) fails clearly at deploy.
    let deleted = w
        .call(
            "DELETE",
            "/api/v1/teams/acme/credentials/ci-pull",
            &w.owner,
            None,
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.body);
    assert!(w.app_json("api").await["credentials"]["team_credential"].is_null());
    let refused = w
        .deploy("api", json!({ "image": w.image("team/api:1") }))
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("private"), "{message}");
    leak_scan(&w, &[PASSWORD_1]).await;
    w.app.stop().await;
}

#[tokio::test]
async fn a_release_that_fails_its_health_check_leaves_the_previous_one_serving() {
    let w = world(None).await;
    w.registry
        .push_serving_image("team/web", "good", ("puller", PASSWORD_1), "good release")
        .await;
    w.registry
        .push_broken_image("team/web", "broken", ("puller", PASSWORD_1))
        .await;
    w.create_app("web").await;
    let good = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:good"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    w.succeeded(&good).await;
    let url = release_url(&w.app_json("web").await);

    let broken = w
        .deploy_and_wait("web", json!({ "image": w.image("team/web:broken") }))
        .await;
    assert_eq!(broken["status"], "failed", "{broken}");
    assert!(broken["error"].as_str().unwrap().len() > 10, "{broken}");
    let app = w.app_json("web").await;
    assert_eq!(app["release"]["digest"], good["digest"]);
    assert_eq!(release_url(&app), url);
    assert_eq!(
        served(&url).await.as_deref().map(str::trim),
        Some("good release")
    );
    w.app.stop().await;
}

#[tokio::test]
async fn one_apps_operations_run_in_order_while_different_apps_run_in_parallel() {
    let w = world(None).await;
    for (tag, body) in [("a", "alpha"), ("b", "beta")] {
        w.registry
            .push_serving_image("team/svc", tag, ("puller", PASSWORD_1), body)
            .await;
    }
    w.create_app("one").await;
    w.create_app("two").await;
    let creds = |tag: &str| {
        json!({
            "image": w.image(&format!("team/svc:{tag}")),
            "registry_username": "puller",
            "registry_password": PASSWORD_1,
        })
    };
    let mut ids = Vec::new();
    for (app, tag) in [("one", "a"), ("one", "b"), ("two", "a")] {
        let queued = w.deploy(app, creds(tag)).await;
        assert_eq!(queued.status.as_u16(), 202, "{}", queued.body);
        ids.push(queued.json()["operation"]["id"].as_i64().unwrap());
    }
    let mut done = Vec::new();
    for id in &ids {
        let operation = w.wait(*id).await;
        w.succeeded(&operation).await;
        done.push(operation);
    }
    let (first, second, other) = (&done[0], &done[1], &done[2]);
    assert!(
        second["started_at"].as_i64() >= first["finished_at"].as_i64(),
        "the second deploy of one app started after the first ended: {first} {second}"
    );
    assert!(
        other["started_at"].as_i64() < first["finished_at"].as_i64(),
        "another app's deploy ran meanwhile: {first} {other}"
    );
    let app = w.app_json("one").await;
    assert_eq!(app["release"]["digest"], second["digest"]);
    w.app.stop().await;
}

#[tokio::test]
async fn a_queued_operation_can_be_cancelled_and_never_runs() {
    let w = world(None).await;
    w.registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "one")
        .await;
    w.create_app("web").await;
    let body = json!({
        "image": w.image("team/web:1"),
        "registry_username": "puller",
        "registry_password": PASSWORD_1,
    });
    let first = w.deploy("web", body.clone()).await.json()["operation"]["id"]
        .as_i64()
        .unwrap();
    let second = w.deploy("web", body).await.json()["operation"]["id"]
        .as_i64()
        .unwrap();
    let viewer_cancel = w
        .call(
            "POST",
            &format!("/api/v1/operations/{second}/cancel"),
            &w.viewer,
            None,
        )
        .await;
    assert_eq!(viewer_cancel.status.as_u16(), 403);
    let cancelled = w
        .call(
            "POST",
            &format!("/api/v1/operations/{second}/cancel"),
            &w.deployer,
            None,
        )
        .await;
    assert_eq!(cancelled.status.as_u16(), 200, "{}", cancelled.body);
    assert_eq!(cancelled.json()["operation"]["status"], "cancelled");
    w.succeeded(&w.wait(first).await).await;
    let second = w.operation(second).await;
    assert_eq!(second["status"], "cancelled");
    assert!(second["started_at"].is_null(), "{second}");
    let again = w
        .call(
            "POST",
            &format!("/api/v1/operations/{first}/cancel"),
            &w.deployer,
            None,
        )
        .await;
    assert_eq!(again.status.as_u16(), 409, "{}", again.body);
    w.app.stop().await;
}

#[tokio::test]
async fn configuration_changes_restart_the_release_and_secret_values_stay_write_only() {
    let w = world(None).await;
    w.registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "configured")
        .await;
    w.create_app("web").await;
    let deployed = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
                "env": { "GREETING": "hello from the deploy" },
            }),
        )
        .await;
    w.succeeded(&deployed).await;
    assert_eq!(deployed["config_changes"][0]["key"], "GREETING");
    let url = release_url(&w.app_json("web").await);
    let env = served(&format!("{url}env.txt")).await.unwrap_or_default();
    assert!(env.contains("hello from the deploy"), "{env}");
    // The release's own output is kept as the app's runtime log.
    let runtime = w
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/logs?lines=50",
            &w.viewer,
            None,
        )
        .await;
    assert_eq!(runtime.status.as_u16(), 200, "{}", runtime.body);
    assert!(runtime.body.contains("serving on port"), "{}", runtime.body);

    let configure = w
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &w.deployer,
            Some(json!({ "env": { "GREETING": "hello again", "API_TOKEN": CONFIG_SECRET } })),
        )
        .await;
    assert_eq!(configure.status.as_u16(), 202, "{}", configure.body);
    assert_eq!(configure.json()["operation"]["kind"], "configure");
    let configured = w
        .wait(configure.json()["operation"]["id"].as_i64().unwrap())
        .await;
    w.succeeded(&configured).await;
    let url = release_url(&w.app_json("web").await);
    let env = served(&format!("{url}env.txt")).await.unwrap_or_default();
    assert!(env.contains("hello again"), "{env}");

    let config = w
        .call("GET", "/api/v1/teams/acme/apps/web/config", &w.viewer, None)
        .await
        .json();
    let entries = config["env"].as_array().unwrap();
    let token = entries.iter().find(|e| e["key"] == "API_TOKEN").unwrap();
    assert_eq!(token["secret"], true);
    assert!(
        token["value"].is_null(),
        "secret values are write-only: {config}"
    );
    let greeting = entries.iter().find(|e| e["key"] == "GREETING").unwrap();
    assert_eq!(greeting["value"], "hello again");

    let unset = w
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &w.deployer,
            Some(json!({ "env": { "GREETING": null } })),
        )
        .await;
    let unset = w
        .wait(unset.json()["operation"]["id"].as_i64().unwrap())
        .await;
    w.succeeded(&unset).await;
    assert_eq!(unset["config_changes"][0]["set"], false);

    let restart = w
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/restart",
            &w.deployer,
            None,
        )
        .await;
    assert_eq!(restart.status.as_u16(), 202, "{}", restart.body);
    let restarted = w
        .wait(restart.json()["operation"]["id"].as_i64().unwrap())
        .await;
    w.succeeded(&restarted).await;
    leak_scan(&w, &[PASSWORD_1, CONFIG_SECRET]).await;
    w.app.stop().await;
}

#[tokio::test]
async fn deploy_requests_are_validated_field_by_field_and_authorised() {
    let w = world(None).await;
    w.registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "x")
        .await;
    w.create_app("web").await;
    let cases = [
        (json!({ "image": "Not An Image!" }), "image"),
        (json!({ "image": "" }), "image"),
        (
            json!({ "image": w.image("team/web:1"), "registry_username": "puller" }),
            "registry_password",
        ),
        (
            json!({ "image": w.image("team/web:1"), "credential": "nope" }),
            "credential",
        ),
        (
            json!({ "image": w.image("team/web:1"), "env": { "1BAD": "x" } }),
            "env",
        ),
        (
            json!({ "image": w.image("team/web:1"), "env": { "PORT": "80" } }),
            "env",
        ),
    ];
    for (body, field) in cases {
        let response = w.deploy("web", body.clone()).await;
        assert_eq!(response.status.as_u16(), 422, "{body}: {}", response.body);
        assert_eq!(
            response.json()["error"]["field"],
            field,
            "{body}: {}",
            response.body
        );
    }
    // A private image without credentials says so, and queues nothing.
    let anonymous = w
        .deploy("web", json!({ "image": w.image("team/web:1") }))
        .await;
    assert_eq!(anonymous.status.as_u16(), 422, "{}", anonymous.body);
    assert_eq!(anonymous.json()["error"]["kind"], "verification_failed");
    // A missing tag is "not found".
    let missing = w
        .deploy(
            "web",
            json!({ "image": w.image("team/web:nope"), "registry_username": "puller", "registry_password": PASSWORD_1 }),
        )
        .await;
    assert_eq!(
        missing.json()["error"]["reason"],
        "not_found",
        "{}",
        missing.body
    );
    assert!(w.operations("web").await.is_empty());

    let duplicate = w
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &w.deployer,
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(duplicate.status.as_u16(), 409);
    assert_eq!(duplicate.json()["error"]["field"], "handle");
    let bad_handle = w
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &w.deployer,
            Some(json!({ "handle": "Web App", "method": "image" })),
        )
        .await;
    assert_eq!(bad_handle.status.as_u16(), 422);
    assert_eq!(bad_handle.json()["error"]["field"], "handle");

    let body = json!({ "image": w.image("team/web:1") });
    let viewer = w
        .app
        .api(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            Some(&w.viewer),
            Some(body.clone()),
        )
        .await;
    assert_eq!(viewer.status.as_u16(), 403, "{}", viewer.body);
    let outsider = w
        .app
        .api(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            Some(&w.outsider),
            Some(body),
        )
        .await;
    assert_eq!(outsider.status.as_u16(), 404, "{}", outsider.body);
    let outsider_app = w
        .app
        .api(
            "GET",
            "/api/v1/teams/acme/apps/web",
            Some(&w.outsider),
            None,
        )
        .await;
    assert_eq!(outsider_app.status.as_u16(), 404);
    w.app.stop().await;
}

#[tokio::test]
async fn operations_history_is_keyset_paged_and_filtered() {
    let w = world(None).await;
    w.create_app("web").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let configured = w
            .call(
                "PATCH",
                "/api/v1/teams/acme/apps/web/config",
                &w.deployer,
                Some(json!({ "env": { "N": n.to_string() } })),
            )
            .await;
        assert_eq!(configured.status.as_u16(), 202, "{}", configured.body);
        ids.push(configured.json()["operation"]["id"].as_i64().unwrap());
    }
    for id in &ids {
        w.succeeded(&w.wait(*id).await).await;
    }
    let page = w
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/operations?limit=2",
            &w.viewer,
            None,
        )
        .await
        .json();
    let got: Vec<i64> = page["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![ids[4], ids[3]]);
    let next = page["next"].as_i64().unwrap();
    let page = w
        .call(
            "GET",
            &format!("/api/v1/teams/acme/apps/web/operations?limit=2&before={next}"),
            &w.viewer,
            None,
        )
        .await
        .json();
    let got: Vec<i64> = page["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2], ids[1]]);
    let deploys = w
        .call(
            "GET",
            "/api/v1/teams/acme/operations?kind=deploy",
            &w.viewer,
            None,
        )
        .await
        .json();
    assert!(deploys["operations"].as_array().unwrap().is_empty());
    let bad = w
        .call(
            "GET",
            "/api/v1/teams/acme/operations?status=done",
            &w.viewer,
            None,
        )
        .await;
    assert_eq!(bad.status.as_u16(), 422);
    assert_eq!(bad.json()["error"]["field"], "status");
    // The configuration is stored even without a release.
    let config = w
        .call("GET", "/api/v1/teams/acme/apps/web/config", &w.viewer, None)
        .await
        .json();
    assert_eq!(config["env"][0]["value"], "4", "{config}");
    w.app.stop().await;
}

#[tokio::test]
async fn deploys_work_on_postgresql_too() {
    let db = testdb::TestDatabase::postgres().await;
    let w = world(Some(db.url())).await;
    w.registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "on postgres")
        .await;
    w.create_app("web").await;
    let deployed = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    w.succeeded(&deployed).await;
    let url = release_url(&w.app_json("web").await);
    assert_eq!(
        served(&url).await.as_deref().map(str::trim),
        Some("on postgres")
    );
    let again = w
        .deploy_and_wait("web", json!({ "image": w.image("team/web:1") }))
        .await;
    w.succeeded(&again).await;
    assert_eq!(again["credential_source"], "remembered");
    w.app.stop().await;
    w.app.store.close().await;
    let dump = std::process::Command::new(pg_dump())
        .args(["--data-only", "--inserts", db.url()])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("operations"));
    assert!(
        !dump.contains(PASSWORD_1),
        "the PostgreSQL dump holds the registry password"
    );
}

/// Searches every API response, the operation logs, the captured server logs and the
/// SQLite file for each secret.
async fn leak_scan(w: &World, secrets: &[&str]) {
    let responses = w.responses.lock().unwrap().join("\n");
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    let db_path = w.app.dir.join("berth.db");
    let mut database = std::fs::read(&db_path).unwrap_or_default();
    for suffix in ["-wal", "-shm"] {
        let mut path = db_path.clone().into_os_string();
        path.push(suffix);
        database.extend(std::fs::read(path).unwrap_or_default());
    }
    let mut engine_logs = String::new();
    if let Ok(dir) = std::fs::read_dir(w.app.dir.join("engine/logs")) {
        for entry in dir.flatten() {
            engine_logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    for secret in secrets {
        assert!(
            !responses.contains(secret),
            "an API response holds a secret"
        );
        assert!(!logs.contains(secret), "the server log holds a secret");
        assert!(
            !engine_logs.contains(secret),
            "a runtime log holds a secret"
        );
        assert!(
            !database
                .windows(secret.len())
                .any(|win| win == secret.as_bytes()),
            "the SQLite file holds a secret"
        );
    }
}

#[tokio::test]
async fn without_buildah_deploys_say_so_and_the_rest_of_berth_works() {
    captured_logs();
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD_1)]).await;
    let app =
        TestApp::spawn_with_buildah(None, vec![registry.host.clone()], "/nonexistent/buildah")
            .await;
    let owner = app.owner("owner@example.com", "acme").await;
    let token = app.token_for(owner).await;
    let created = app
        .api(
            "POST",
            "/api/v1/teams/acme/apps",
            Some(&token),
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let deploy = app
        .api(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            Some(&token),
            Some(json!({ "image": format!("{}/team/web:1", registry.host) })),
        )
        .await;
    assert_eq!(deploy.status.as_u16(), 503, "{}", deploy.body);
    let error = &deploy.json()["error"];
    assert_eq!(error["kind"], "unavailable");
    assert!(
        error["message"].as_str().unwrap().contains("buildah"),
        "{error}"
    );
    // Configuration without a release, credentials and the rest still work.
    let configured = app
        .api(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            Some(&token),
            Some(json!({ "env": { "A": "1" } })),
        )
        .await;
    assert_eq!(configured.status.as_u16(), 202, "{}", configured.body);
    let page = app
        .signed_in("owner@example.com")
        .await
        .get("/teams/acme/apps/web")
        .await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("buildah"),
        "the deploy form says what is missing"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_live_log_streams_lines_and_the_final_status_to_members_only() {
    let w = world(None).await;
    w.registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "live")
        .await;
    w.create_app("web").await;
    let done = w
        .deploy_and_wait(
            "web",
            json!({
                "image": w.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    w.succeeded(&done).await;
    let id = done["id"].as_i64().unwrap();
    let mut member = w.app.signed_in("viewer@example.com").await;
    let stream = member.get(&format!("/operations/{id}/events")).await;
    assert_eq!(stream.status.as_u16(), 200);
    assert!(stream.body.contains("event: lines"), "{}", stream.body);
    assert!(stream.body.contains("Health check"), "{}", stream.body);
    assert!(stream.body.contains("event: status"), "{}", stream.body);
    assert!(stream.body.contains("succeeded"), "{}", stream.body);
    assert!(!stream.body.contains(PASSWORD_1));
    let mut outsider = w.app.signed_in("outsider@example.com").await;
    assert_eq!(
        outsider
            .get(&format!("/operations/{id}/events"))
            .await
            .status
            .as_u16(),
        404
    );
    let mut anonymous = w.app.browser();
    assert_eq!(
        anonymous
            .get(&format!("/operations/{id}/events"))
            .await
            .status
            .as_u16(),
        401
    );
    w.app.stop().await;
}
