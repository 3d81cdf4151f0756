//! Direct Docker Image deploys end to end, through the JSON API: a real registry (the Debian
//! distribution registry with htpasswd auth), images that serve HTTP on `$PORT`, the local
//! engine running them with buildah, and the operation worker in between. Every rule of a
//! Direct Docker Image deploy (remembered, per-deploy, "this deploy only" and team
//! credentials; verification before queuing; pinning to the digest) has a test named after
//! it.

mod support;

use serde_json::json;
use support::*;
use testregistry::TestRegistry;

const PASSWORD_1: &str = "pull-pass-4a7d19e3c2";
const PASSWORD_2: &str = "pull-pass-rotated-b81f07";
const OTHER_USER_PASSWORD: &str = "other-pull-pass-5c02ee";
const CONFIG_SECRET: &str = "config-secret-value-91d3a7";

/// A registry with users `puller` and `other`, and the app (with team `acme`) that reaches it.
async fn start(database: TestAppBuilder) -> TestApp {
    let registry =
        TestRegistry::start_htpasswd(&[("puller", PASSWORD_1), ("other", OTHER_USER_PASSWORD)])
            .await;
    database.with_team().with_registry(registry).start().await
}

#[tokio::test]
async fn remembered_credentials_serve_later_deploys_and_are_replaced_by_per_deploy_ones() {
    let app = start(TestApp::sqlite()).await;
    let v1 = app
        .registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "release one")
        .await;
    let v2 = app
        .registry()
        .push_serving_image("team/web", "2", ("puller", PASSWORD_1), "release two")
        .await;
    app.create_app("web", "image", None).await;

    // The first deploy of a private image carries credentials; Berth remembers them.
    let first = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    app.succeeded(&first).await;
    assert_eq!(first["digest"], v1.as_str());
    assert_eq!(first["credential_source"], "given");
    let shown = app.app_json("web").await;
    assert_eq!(shown["release"]["digest"], v1.as_str());
    assert_eq!(shown["credentials"]["remembered"]["username"], "puller");
    assert_eq!(
        served(&app.release_url("web").await)
            .await
            .as_deref()
            .map(str::trim),
        Some("release one")
    );
    let log = app.log(first["id"].as_i64().unwrap()).await;
    for step in ["Verify", "Pull", "Start", "Health check", "Switch"] {
        assert!(log.contains(step), "the log shows the {step} step:\n{log}");
    }

    // A later deploy needs no credentials: the remembered ones are used.
    let second = app
        .deploy_and_wait("web", json!({ "image": app.image("team/web:2") }))
        .await;
    app.succeeded(&second).await;
    assert_eq!(second["credential_source"], "remembered");
    let shown = app.app_json("web").await;
    assert_eq!(shown["release"]["digest"], v2.as_str());
    let url_two = app.release_url("web").await;
    assert_eq!(
        served(&url_two).await.as_deref().map(str::trim),
        Some("release two")
    );

    // The registry password changes: the remembered credentials fail verification, and
    // nothing is queued; the running release is untouched.
    app.registry().set_password("puller", PASSWORD_2);
    let before = app.operations("web").await.len();
    let refused = app
        .deploy("web", json!({ "image": app.image("team/web:1") }))
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    let error = &refused.json()["error"];
    assert_eq!(error["kind"], "verification_failed");
    assert_eq!(error["reason"], "wrong_credentials");
    assert_eq!(error["field"], "credentials");
    assert_eq!(
        app.operations("web").await.len(),
        before,
        "nothing was queued"
    );
    assert_eq!(
        served(&url_two).await.as_deref().map(str::trim),
        Some("release two")
    );

    // New credentials with a deploy succeed and replace the remembered ones.
    let third = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_2,
            }),
        )
        .await;
    app.succeeded(&third).await;
    let fourth = app
        .deploy_and_wait("web", json!({ "image": app.image("team/web:2") }))
        .await;
    app.succeeded(&fourth).await;
    assert_eq!(fourth["credential_source"], "remembered");

    // "This deploy only": used once, the remembered ones stay.
    let once = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "other",
                "registry_password": OTHER_USER_PASSWORD,
                "remember_credentials": false,
            }),
        )
        .await;
    app.succeeded(&once).await;
    assert_eq!(once["credential_source"], "given");
    let shown = app.app_json("web").await;
    assert_eq!(shown["credentials"]["remembered"]["username"], "puller");

    // Redeploying a history entry redeploys its exact digest.
    let redeploy = app
        .call(
            "POST",
            &format!("/api/v1/operations/{}/redeploy", second["id"]),
            &app.deployer(),
            None,
        )
        .await;
    assert_eq!(redeploy.status.as_u16(), 202, "{}", redeploy.body);
    let redeployed = app
        .wait(redeploy.json()["operation"]["id"].as_i64().unwrap())
        .await;
    app.succeeded(&redeployed).await;
    assert_eq!(redeployed["digest"], v2.as_str());

    // Per-deploy secrets are discarded once an operation ends; none of them is stored,
    // logged or answered anywhere.
    app.assert_no_leaks(&[PASSWORD_1, PASSWORD_2, OTHER_USER_PASSWORD]);
    app.stop().await;
}

#[tokio::test]
async fn a_team_credential_is_matched_by_registry_host_and_each_use_is_audited() {
    let app = start(TestApp::sqlite()).await;
    let digest = app
        .registry()
        .push_serving_image("team/api", "1", ("puller", PASSWORD_1), "api")
        .await;
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            &app.owner_token(),
            Some(json!({
                "name": "ci-pull", "registry": app.registry().host.as_str(), "kind": "basic",
                "username": "puller", "secret": PASSWORD_1,
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    app.create_app("api", "image", None).await;

    let deployed = app
        .deploy_and_wait("api", json!({ "image": app.image("team/api:1") }))
        .await;
    app.succeeded(&deployed).await;
    assert_eq!(deployed["credential_source"], "team");
    assert_eq!(deployed["credential_name"], "ci-pull");
    assert_eq!(deployed["credential_version"], 1);
    assert_eq!(deployed["digest"], digest.as_str());

    let credential = app
        .call(
            "GET",
            "/api/v1/teams/acme/credentials/ci-pull",
            &app.owner_token(),
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
    let audit = app
        .call("GET", "/api/v1/teams/acme/audit", &app.owner_token(), None)
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
    let shown = app.app_json("api").await;
    assert_eq!(shown["credentials"]["team_credential"], "ci-pull");

    // The credential page names the apps that use it before a delete...
    let page = app
        .signed_in(OWNER)
        .await
        .get("/teams/acme/credentials/ci-pull")
        .await;
    assert!(
        page.body.contains("Used by 1 app(s)"),
        "the delete section lists the apps"
    );
    // ...and once it is deleted, the app (with nothing remembered) fails clearly at deploy.
    let deleted = app
        .call(
            "DELETE",
            "/api/v1/teams/acme/credentials/ci-pull",
            &app.owner_token(),
            None,
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.body);
    assert!(app.app_json("api").await["credentials"]["team_credential"].is_null());
    let refused = app
        .deploy("api", json!({ "image": app.image("team/api:1") }))
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("private"), "{message}");
    app.assert_no_leaks(&[PASSWORD_1]);
    app.stop().await;
}

#[tokio::test]
async fn a_release_that_fails_its_health_check_leaves_the_previous_one_serving() {
    let app = start(TestApp::sqlite()).await;
    app.registry()
        .push_serving_image("team/web", "good", ("puller", PASSWORD_1), "good release")
        .await;
    app.registry()
        .push_broken_image("team/web", "broken", ("puller", PASSWORD_1))
        .await;
    app.create_app("web", "image", None).await;
    let good = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:good"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    app.succeeded(&good).await;
    let url = app.release_url("web").await;

    let broken = app
        .deploy_and_wait("web", json!({ "image": app.image("team/web:broken") }))
        .await;
    assert_eq!(broken["status"], "failed", "{broken}");
    assert!(broken["error"].as_str().unwrap().len() > 10, "{broken}");
    let shown = app.app_json("web").await;
    assert_eq!(shown["release"]["digest"], good["digest"]);
    assert_eq!(shown["release"]["port_url"], url.as_str(), "{shown}");
    assert_eq!(
        served(&url).await.as_deref().map(str::trim),
        Some("good release")
    );

    // The team's overview puts the failing app first (before `alpha`, never deployed), says
    // so, and shows what each serves.
    app.create_app("alpha", "image", None).await;
    let mut owner = app.signed_in(OWNER).await;
    let overview = owner.get("/teams/acme").await;
    let body = &overview.body;
    let at = |needle: &str| {
        body.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {body}"))
    };
    assert!(
        at("/teams/acme/apps/web\"") < at("/teams/acme/apps/alpha\""),
        "the failing app comes first"
    );
    assert!(
        body.contains("1 app&#x27;s last operation failed")
            || body.contains("1 app's last operation failed"),
        "{body}"
    );
    assert!(body.contains("not deployed"), "{body}");
    assert!(
        body.contains("href=\"/teams/acme/credentials/new\""),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn one_apps_operations_run_in_order_while_different_apps_run_in_parallel() {
    let app = start(TestApp::sqlite()).await;
    for (tag, body) in [("a", "alpha"), ("b", "beta")] {
        app.registry()
            .push_serving_image("team/svc", tag, ("puller", PASSWORD_1), body)
            .await;
    }
    app.create_app("one", "image", None).await;
    app.create_app("two", "image", None).await;
    let creds = |tag: &str| {
        json!({
            "image": app.image(&format!("team/svc:{tag}")),
            "registry_username": "puller",
            "registry_password": PASSWORD_1,
        })
    };
    let mut ids = Vec::new();
    for (handle, tag) in [("one", "a"), ("one", "b"), ("two", "a")] {
        let queued = app.deploy(handle, creds(tag)).await;
        assert_eq!(queued.status.as_u16(), 202, "{}", queued.body);
        ids.push(queued.json()["operation"]["id"].as_i64().unwrap());
    }
    let mut done = Vec::new();
    for id in &ids {
        let operation = app.wait(*id).await;
        app.succeeded(&operation).await;
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
    let shown = app.app_json("one").await;
    assert_eq!(shown["release"]["digest"], second["digest"]);
    app.stop().await;
}

#[tokio::test]
async fn a_queued_operation_can_be_cancelled_and_never_runs() {
    let app = start(TestApp::sqlite()).await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "one")
        .await;
    app.create_app("web", "image", None).await;
    let body = json!({
        "image": app.image("team/web:1"),
        "registry_username": "puller",
        "registry_password": PASSWORD_1,
    });
    let first = app.deploy("web", body.clone()).await.json()["operation"]["id"]
        .as_i64()
        .unwrap();
    let second = app.deploy("web", body).await.json()["operation"]["id"]
        .as_i64()
        .unwrap();
    let viewer_cancel = app
        .call(
            "POST",
            &format!("/api/v1/operations/{second}/cancel"),
            &app.viewer(),
            None,
        )
        .await;
    assert_eq!(viewer_cancel.status.as_u16(), 403);
    let cancelled = app
        .call(
            "POST",
            &format!("/api/v1/operations/{second}/cancel"),
            &app.deployer(),
            None,
        )
        .await;
    assert_eq!(cancelled.status.as_u16(), 200, "{}", cancelled.body);
    assert_eq!(cancelled.json()["operation"]["status"], "cancelled");
    app.succeeded(&app.wait(first).await).await;
    let second = app.operation(second).await;
    assert_eq!(second["status"], "cancelled");
    assert!(second["started_at"].is_null(), "{second}");
    let again = app
        .call(
            "POST",
            &format!("/api/v1/operations/{first}/cancel"),
            &app.deployer(),
            None,
        )
        .await;
    assert_eq!(again.status.as_u16(), 409, "{}", again.body);
    app.stop().await;
}

#[tokio::test]
async fn configuration_changes_restart_the_release_and_secret_values_stay_write_only() {
    let app = start(TestApp::sqlite()).await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "configured")
        .await;
    app.create_app("web", "image", None).await;
    let deployed = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
                "env": { "GREETING": "hello from the deploy" },
            }),
        )
        .await;
    app.succeeded(&deployed).await;
    assert_eq!(deployed["config_changes"][0]["key"], "GREETING");
    let url = app.release_url("web").await;
    let env = served(&format!("{url}env.txt")).await.unwrap_or_default();
    assert!(env.contains("hello from the deploy"), "{env}");
    // The release's own output is kept as the app's runtime log.
    let runtime = app
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/logs?lines=50",
            &app.deployer(),
            None,
        )
        .await;
    assert_eq!(runtime.status.as_u16(), 200, "{}", runtime.body);
    assert!(runtime.body.contains("serving on port"), "{}", runtime.body);

    let configure = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &app.deployer(),
            Some(json!({ "env": {
                "GREETING": { "value": "hello again", "plain": true },
                "API_TOKEN": CONFIG_SECRET,
            } })),
        )
        .await;
    assert_eq!(configure.status.as_u16(), 202, "{}", configure.body);
    assert_eq!(configure.json()["operation"]["kind"], "configure");
    let configured = app
        .wait(configure.json()["operation"]["id"].as_i64().unwrap())
        .await;
    app.succeeded(&configured).await;
    let url = app.release_url("web").await;
    let env = served(&format!("{url}env.txt")).await.unwrap_or_default();
    assert!(env.contains("hello again"), "{env}");

    let config = app
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/config",
            &app.viewer(),
            None,
        )
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

    let unset = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &app.deployer(),
            Some(json!({ "env": { "GREETING": null } })),
        )
        .await;
    let unset = app
        .wait(unset.json()["operation"]["id"].as_i64().unwrap())
        .await;
    app.succeeded(&unset).await;
    assert_eq!(unset["config_changes"][0]["set"], false);

    let restart = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/restart",
            &app.deployer(),
            None,
        )
        .await;
    assert_eq!(restart.status.as_u16(), 202, "{}", restart.body);
    let restarted = app
        .wait(restart.json()["operation"]["id"].as_i64().unwrap())
        .await;
    app.succeeded(&restarted).await;
    app.assert_no_leaks(&[PASSWORD_1, CONFIG_SECRET]);
    app.stop().await;
}

#[tokio::test]
async fn deploy_requests_are_validated_field_by_field_and_authorised() {
    let app = start(TestApp::sqlite()).await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "x")
        .await;
    app.create_app("web", "image", None).await;
    let cases = [
        (json!({ "image": "Not An Image!" }), "image"),
        (json!({ "image": "" }), "image"),
        (
            json!({ "image": app.image("team/web:1"), "registry_username": "puller" }),
            "registry_password",
        ),
        (
            json!({ "image": app.image("team/web:1"), "credential": "nope" }),
            "credential",
        ),
        (
            json!({ "image": app.image("team/web:1"), "env": { "1BAD": "x" } }),
            "env",
        ),
        (
            json!({ "image": app.image("team/web:1"), "env": { "PORT": "80" } }),
            "env",
        ),
    ];
    for (body, field) in cases {
        let response = app.deploy("web", body.clone()).await;
        assert_eq!(response.status.as_u16(), 422, "{body}: {}", response.body);
        assert_eq!(
            response.json()["error"]["field"],
            field,
            "{body}: {}",
            response.body
        );
    }
    // A private image without credentials says so, and queues nothing.
    let anonymous = app
        .deploy("web", json!({ "image": app.image("team/web:1") }))
        .await;
    assert_eq!(anonymous.status.as_u16(), 422, "{}", anonymous.body);
    assert_eq!(anonymous.json()["error"]["kind"], "verification_failed");
    // A missing tag is "not found".
    let missing = app
        .deploy(
            "web",
            json!({ "image": app.image("team/web:nope"), "registry_username": "puller", "registry_password": PASSWORD_1 }),
        )
        .await;
    assert_eq!(
        missing.json()["error"]["reason"],
        "not_found",
        "{}",
        missing.body
    );
    assert!(app.operations("web").await.is_empty());

    let duplicate = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(duplicate.status.as_u16(), 409);
    assert_eq!(duplicate.json()["error"]["field"], "handle");
    let bad_handle = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.deployer(),
            Some(json!({ "handle": "Web App", "method": "image" })),
        )
        .await;
    assert_eq!(bad_handle.status.as_u16(), 422);
    assert_eq!(bad_handle.json()["error"]["field"], "handle");

    let body = json!({ "image": app.image("team/web:1") });
    let viewer = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            &app.viewer(),
            Some(body.clone()),
        )
        .await;
    assert_eq!(viewer.status.as_u16(), 403, "{}", viewer.body);
    let outsider = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            &app.outsider(),
            Some(body),
        )
        .await;
    assert_eq!(outsider.status.as_u16(), 404, "{}", outsider.body);
    let outsider_app = app
        .call("GET", "/api/v1/teams/acme/apps/web", &app.outsider(), None)
        .await;
    assert_eq!(outsider_app.status.as_u16(), 404);
    app.stop().await;
}

#[tokio::test]
async fn operations_history_is_keyset_paged_and_filtered() {
    let app = start(TestApp::sqlite()).await;
    app.create_app("web", "image", None).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let configured = app
            .call(
                "PATCH",
                "/api/v1/teams/acme/apps/web/config",
                &app.deployer(),
                Some(json!({ "env": { "N": { "value": n.to_string(), "plain": true } } })),
            )
            .await;
        assert_eq!(configured.status.as_u16(), 202, "{}", configured.body);
        ids.push(configured.json()["operation"]["id"].as_i64().unwrap());
    }
    for id in &ids {
        app.succeeded(&app.wait(*id).await).await;
    }
    let page = app
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/operations?limit=2",
            &app.viewer(),
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
    let page = app
        .call(
            "GET",
            &format!("/api/v1/teams/acme/apps/web/operations?limit=2&before={next}"),
            &app.viewer(),
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
    let deploys = app
        .call(
            "GET",
            "/api/v1/teams/acme/operations?kind=deploy",
            &app.viewer(),
            None,
        )
        .await
        .json();
    assert!(deploys["operations"].as_array().unwrap().is_empty());
    let bad = app
        .call(
            "GET",
            "/api/v1/teams/acme/operations?status=done",
            &app.viewer(),
            None,
        )
        .await;
    assert_eq!(bad.status.as_u16(), 422);
    assert_eq!(bad.json()["error"]["field"], "status");
    // The configuration is stored even without a release.
    let config = app
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/config",
            &app.viewer(),
            None,
        )
        .await
        .json();
    assert_eq!(config["env"][0]["value"], "4", "{config}");
    app.stop().await;
}

#[tokio::test]
async fn deploys_work_on_postgresql_too() {
    let app = start(TestApp::postgres()).await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "on postgres")
        .await;
    app.create_app("web", "image", None).await;
    let deployed = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    app.succeeded(&deployed).await;
    let url = app.release_url("web").await;
    assert_eq!(
        served(&url).await.as_deref().map(str::trim),
        Some("on postgres")
    );
    let again = app
        .deploy_and_wait("web", json!({ "image": app.image("team/web:1") }))
        .await;
    app.succeeded(&again).await;
    assert_eq!(again["credential_source"], "remembered");
    app.assert_no_leaks(&[PASSWORD_1]);
    // The dump holds the operations, and not the registry password (this stops the app).
    let dump = app.assert_postgres_dump_free_of(&[PASSWORD_1]).await;
    assert!(
        dump.contains("INSERT INTO public.operations"),
        "the dump has the operations"
    );
}

#[tokio::test]
async fn without_buildah_deploys_say_so_and_the_rest_of_berth_works() {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD_1)]).await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .with_buildah("/nonexistent/buildah")
        .start()
        .await;
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &app.owner_token(),
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let deploy = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            &app.owner_token(),
            Some(json!({ "image": app.image("team/web:1") })),
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
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &app.owner_token(),
            Some(json!({ "env": { "A": "1" } })),
        )
        .await;
    assert_eq!(configured.status.as_u16(), 202, "{}", configured.body);
    let page = app
        .signed_in(OWNER)
        .await
        .get("/teams/acme/apps/web/deploy")
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
    let app = start(TestApp::sqlite()).await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD_1), "live")
        .await;
    app.create_app("web", "image", None).await;
    let done = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD_1,
            }),
        )
        .await;
    app.succeeded(&done).await;
    let id = done["id"].as_i64().unwrap();
    let mut member = app.signed_in(DEPLOYER).await;
    let stream = member.get(&format!("/operations/{id}/events")).await;
    assert_eq!(stream.status.as_u16(), 200);
    assert!(stream.body.contains("event: lines"), "{}", stream.body);
    assert!(stream.body.contains("Health check"), "{}", stream.body);
    assert!(stream.body.contains("event: status"), "{}", stream.body);
    assert!(stream.body.contains("succeeded"), "{}", stream.body);
    assert!(!stream.body.contains(PASSWORD_1));
    // A viewer follows the status only, until the team's owners let viewers read logs.
    let mut viewer = app.signed_in(VIEWER).await;
    let stream = viewer.get(&format!("/operations/{id}/events")).await;
    assert_eq!(stream.status.as_u16(), 200);
    assert!(stream.body.contains("succeeded"), "{}", stream.body);
    assert!(!stream.body.contains("event: lines"), "{}", stream.body);
    let mut outsider = app.signed_in(OUTSIDER).await;
    assert_eq!(
        outsider
            .get(&format!("/operations/{id}/events"))
            .await
            .status
            .as_u16(),
        404
    );
    let mut anonymous = app.browser();
    assert_eq!(
        anonymous
            .get(&format!("/operations/{id}/events"))
            .await
            .status
            .as_u16(),
        401
    );
    app.stop().await;
}

/// Berth's own share of a deploy's time: a Direct Docker Image deploy of a 1 MB and of a
/// 50 MB image, and a Dockerfile deploy, each from the API call until the new release
/// answers at the app's address, against raw buildah doing the least the same needs
/// (`pull` or `build`, `from`, `run` on the host's network, until it answers). Cold on both
/// sides: every run pushes an image (or commits a change) neither storage has seen; one
/// warm-up per side first pulls the busybox layer they share. Prints one `BENCH deploy`
/// line per case with the medians; `BENCH_DEPLOY_RUNS` sets the runs per case (5), and
/// `BENCH_DEPLOY_STEPS=1` prints each Berth deploy's log with the time of every line.
///
/// Berth runs here as `berth serve` runs it: on a runtime with a thread per core (the
/// other tests run on one), logging at `info` (the others capture every level, for their
/// leak scans; formatting every library's trace events is work `berth serve` never does).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: scripts/bench.sh runs it"]
async fn bench_deploy_overhead() {
    use std::time::{Duration, Instant};
    use support::raw_buildah::{median_ms, RawBuildah};

    support::capture_logs_at(tracing::Level::INFO);

    let runs: usize = std::env::var("BENCH_DEPLOY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD_1)]).await;
    let creds = ("puller", PASSWORD_1);
    let app = TestApp::sqlite()
        .with_team()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_registry(registry)
        .start()
        .await;
    let raw = RawBuildah::new("vfs");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut count = 0;
    let mut unique = |what: &str| {
        count += 1;
        format!("{what} {count} {}", std::process::id())
    };

    // Deploys, and answers how long until the operation ended with the new release serving
    // (the engine's health check saw it answer, and the switch is done); then checks that
    // the app's address answers `body`. The test server has no router in front of its
    // releases, so each release's own port is the app's address.
    let berth_deploy = |handle: &'static str, request: serde_json::Value, body: String| {
        let app = &app;
        let client = client.clone();
        async move {
            let started = Instant::now();
            let wall = store::now_ms();
            let queued = app.deploy(handle, request).await.expect(202).json();
            let answered = started.elapsed();
            let id = queued["operation"]["id"].as_i64().unwrap();
            let operation = loop {
                let operation = app.operation(id).await;
                if !["queued", "running"].contains(&operation["status"].as_str().unwrap()) {
                    break operation;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let took = started.elapsed();
            app.succeeded(&operation).await;
            if std::env::var_os("BENCH_DEPLOY_STEPS").is_some() {
                // Where the time went: each log line, ms after the API call began.
                println!("  {:>6} ms  (the API answered 202)", answered.as_millis());
                for line in app.store.operation_log(id, 0, 1000).await.unwrap() {
                    println!("  {:>6} ms  {}", line.at - wall, line.line);
                }
                println!("  {:>6} ms  (seen succeeded)", took.as_millis());
            }
            let url = app.release_url(handle).await;
            let served = client.get(&url).send().await.unwrap().text().await.unwrap();
            assert_eq!(served.trim(), body, "what {url} serves");
            took
        }
    };

    // Direct Docker Image deploys.
    app.create_app("web", "image", None).await;
    let body = unique("warm-up");
    app.registry()
        .push_padded_image("bench/img", "warm", creds, &body, 1 << 20)
        .await;
    let image = app.image("bench/img:warm");
    let first = app
        .deploy_and_wait(
            "web",
            json!({ "image": image, "registry_username": creds.0, "registry_password": creds.1 }),
        )
        .await;
    app.succeeded(&first).await;
    raw.log_in(&app.registry().host.to_string(), creds).await;
    raw.deploy_image(&image, &body).await;
    for (label, bytes) in [("1 MB", 1usize << 20), ("50 MB", 50 << 20)] {
        let (mut berth, mut by_hand) = (Vec::new(), Vec::new());
        for run in 0..runs {
            // An image of its own for each side, answering a page of its own.
            let mut fresh = Vec::new();
            for _ in 0..2 {
                let body = unique(label);
                let tag = format!("t{}", body.replace([' ', '.'], "-"));
                app.registry()
                    .push_padded_image("bench/img", &tag, creds, &body, bytes)
                    .await;
                fresh.push((app.image(&format!("bench/img:{tag}")), body));
            }
            let [(image, body), (raw_image, raw_body)] = <[_; 2]>::try_from(fresh).unwrap();
            let (b, r) = alternate(
                run,
                berth_deploy("web", json!({ "image": image }), body),
                raw.deploy_image(&raw_image, &raw_body),
            )
            .await;
            berth.push(b);
            by_hand.push(r);
        }
        report(&format!("image {label}"), &mut berth, &mut by_hand);
    }

    // Dockerfile deploys: a repository whose Dockerfile builds on a private base; every run
    // commits a new page (so the COPY layer and the release are new on both sides).
    let base = format!("{}/bench/img:warm", app.registry().host);
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    let dockerfile = format!(
        "FROM {base}\n\
         COPY index.html /www/index.html\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /www/run.txt\"]\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"exec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /www\"]\n"
    );
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let commit = |body: &str| {
        std::fs::write(dir.join("index.html"), format!("{body}\n")).unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", body]);
    };
    let host = app.registry().host.to_string();
    let request = json!({
        "git_ref": "main", "private_registry_host": host,
        "registry_username": creds.0, "registry_password": creds.1,
    });
    app.create_app(
        "built",
        "dockerfile",
        Some(json!({ "url": dir.display().to_string() })),
    )
    .await;
    let body = unique("built warm-up");
    commit(&body);
    app.succeeded(&app.deploy_and_wait("built", request.clone()).await)
        .await;
    raw.build_and_run(dir, &body).await;
    let (mut berth, mut by_hand) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let body = unique("built");
        commit(&body);
        let raw_body = unique("built by hand");
        // Raw buildah builds the same tree with a page of its own, so that its COPY is new too.
        let raw_tree = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join("Dockerfile"), raw_tree.path().join("Dockerfile")).unwrap();
        std::fs::write(raw_tree.path().join("index.html"), format!("{raw_body}\n")).unwrap();
        let (b, r) = alternate(
            run,
            berth_deploy("built", request.clone(), body),
            raw.build_and_run(raw_tree.path(), &raw_body),
        )
        .await;
        berth.push(b);
        by_hand.push(r);
    }
    report("dockerfile", &mut berth, &mut by_hand);

    /// Runs both (the futures start nothing until awaited), Berth first on even runs, raw
    /// buildah first on odd ones, so that neither always meets a warmer machine.
    async fn alternate(
        run: usize,
        berth: impl std::future::Future<Output = Duration>,
        by_hand: impl std::future::Future<Output = Duration>,
    ) -> (Duration, Duration) {
        if run.is_multiple_of(2) {
            let berth = berth.await;
            (berth, by_hand.await)
        } else {
            let by_hand = by_hand.await;
            (berth.await, by_hand)
        }
    }

    fn report(case: &str, berth: &mut [Duration], by_hand: &mut [Duration]) {
        let runs = berth.len();
        let (berth, by_hand) = (median_ms(berth), median_ms(by_hand));
        println!(
            "BENCH deploy case={} runs={runs} berth_ms={berth:.0} raw_ms={by_hand:.0} ratio={:.2}",
            case.replace(' ', "_"),
            berth / by_hand
        );
    }
}
