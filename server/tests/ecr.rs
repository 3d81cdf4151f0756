//! ECR credentials end to end: a team stores an AWS key once and every verification and
//! deploy gets a fresh token, with nothing typed — image deploys and Dockerfile builds on
//! the local engine, and both forwarded to Aptible.
//!
//! moto stands in for ECR and STS and really checks SigV4 and IAM policies; a real
//! distribution registry with the htpasswd user `AWS` and moto's token password stands in
//! for the ECR registry host (named in `BERTH_ECR_REGISTRY_HOSTS`), so the whole path
//! mint → verify → pull → run is exercised.

mod support;

use serde_json::{json, Value};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};
use support::{ssh_host::GitSshHost, *};
use testaptible::TestAptible;
use testregistry::{Moto, TestRegistry};

/// A registry that lets in only the logins moto mints.
async fn ecr_registry() -> TestRegistry {
    let registry = TestRegistry::start_htpasswd(&[("AWS", Moto::TOKEN_PASSWORD)]).await;
    registry
        .push_serving_image("team/web", "1", ("AWS", Moto::TOKEN_PASSWORD), "from-ecr")
        .await;
    registry
        .push_serving_image("base/busybox", "1", ("AWS", Moto::TOKEN_PASSWORD), "base")
        .await;
    registry
}

async fn berth_with(builder: TestAppBuilder, moto: &Moto, registry: TestRegistry) -> TestApp {
    let host = registry.host.clone();
    builder
        .with_team()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_ecr(&moto.url, &[&host])
        .with_registry(registry)
        .start()
        .await
}

/// The body that stores moto's good key as credential `name` for the app's registry.
fn ecr_credential(app: &TestApp, moto: &Moto, name: &str) -> Value {
    json!({
        "name": name,
        "registry": app.registry().host.as_str(),
        "kind": "ecr",
        "access_key_id": moto.keys.access_key_id,
        "secret_access_key": moto.keys.secret_access_key,
        "region": "us-east-1",
    })
}

async fn create(app: &TestApp, body: Value) -> TestResponse {
    app.call(
        "POST",
        "/api/v1/teams/acme/credentials",
        &app.owner_token(),
        Some(body),
    )
    .await
}

async fn verify(app: &TestApp, name: &str, image: Option<&str>) -> Value {
    let body = image.map(|image| json!({ "image": image }));
    app.call(
        "POST",
        &format!("/api/v1/teams/acme/credentials/{name}/verify"),
        &app.deployer(),
        body,
    )
    .await
    .expect(200)
    .json()
}

async fn credential(app: &TestApp, name: &str) -> Value {
    app.call(
        "GET",
        &format!("/api/v1/teams/acme/credentials/{name}"),
        &app.viewer(),
        None,
    )
    .await
    .expect(200)
    .json()["credential"]
        .clone()
}

/// A repository whose Dockerfile builds from `base` (a test image serving `/www` on
/// `$PORT`) and adds `hello.txt`.
fn repository(base: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nCOPY hello.txt /www/hello.txt\n"),
    )
    .unwrap();
    std::fs::write(dir.join("hello.txt"), "built on an ECR base\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "Build on ECR"]);
    repo
}

#[tokio::test]
async fn an_image_deploy_pulls_with_a_token_minted_for_it_and_nothing_typed() {
    let moto = Moto::start().await;
    let app = berth_with(TestApp::sqlite(), &moto, ecr_registry().await).await;
    let created = create(&app, ecr_credential(&app, &moto, "ecr"))
        .await
        .expect(201)
        .json();
    let shown = &created["credential"];
    assert_eq!(shown["kind"], "ecr");
    assert_eq!(shown["username"], moto.keys.access_key_id.as_str());
    assert_eq!(
        shown["aws"]["access_key_id"],
        moto.keys.access_key_id.as_str()
    );
    assert_eq!(shown["aws"]["region"], "us-east-1");
    assert_eq!(shown["aws"]["token_minted_at"], Value::Null);

    // Verification mints a token, logs in with it and resolves the image.
    let image = app.image("team/web:1");
    let verified = verify(&app, "ecr", Some(&image)).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        verified["credential"]["aws"]["token_expires_at"],
        Moto::TOKEN_EXPIRES_AT
    );
    let minted_at = verified["credential"]["aws"]["token_minted_at"]
        .as_i64()
        .expect("minted");
    assert_eq!(verified["credential"]["last_verified"]["ok"], true);

    // An image deploy on that registry with no credentials chosen uses it (matched by host).
    app.create_app("web", "image", None).await;
    let deployed = app.deploy_and_wait("web", json!({ "image": image })).await;
    app.succeeded(&deployed).await;
    assert_eq!(deployed["credential_source"], "team", "{deployed}");
    assert_eq!(
        served(&app.release_url("web").await).await.as_deref(),
        Some("from-ecr")
    );
    // moto's tokens have expired by the real clock: each use mints anew, and the pull gets a
    // token minted when the operation ran, not the one minted when it was queued.
    let after = credential(&app, "ecr").await;
    let minted_for_pull = after["aws"]["token_minted_at"].as_i64().unwrap();
    assert!(minted_for_pull > minted_at);
    assert!(
        minted_for_pull >= deployed["started_at"].as_i64().unwrap(),
        "minted by the worker: {after} {deployed}"
    );
    assert!(
        after["last_used"]["detail"]
            .as_str()
            .unwrap()
            .contains("team/web"),
        "{after}"
    );
    let again = app.deploy_and_wait("web", json!({ "image": image })).await;
    app.succeeded(&again).await;

    // The page shows the key, the region and the last token's expiry; never the secrets.
    let page = app
        .signed_in(OWNER)
        .await
        .get("/teams/acme/credentials/ecr")
        .await;
    assert_eq!(page.status.as_u16(), 200);
    for shown in [
        moto.keys.access_key_id.as_str(),
        "us-east-1",
        "Last token",
        "2015-01-01",
    ] {
        assert!(page.body.contains(shown), "{shown} missing:\n{}", page.body);
    }
    for secret in [moto.keys.secret_access_key.as_str(), Moto::TOKEN_PASSWORD] {
        assert!(!page.body.contains(secret), "the page holds a secret");
    }
    app.assert_no_leaks(&[&moto.keys.secret_access_key, Moto::TOKEN_PASSWORD]);
    app.stop().await;
}

#[tokio::test]
async fn a_dockerfile_build_pulls_every_base_on_the_ecr_registry_with_a_fresh_token_on_postgres() {
    let moto = Moto::start().await;
    let registry = ecr_registry().await;
    let repo = repository(&format!("{}/base/busybox:1", registry.host));
    let app = berth_with(TestApp::postgres(), &moto, registry).await;
    create(&app, ecr_credential(&app, &moto, "ecr"))
        .await
        .expect(201);
    app.create_app(
        "site",
        "dockerfile",
        Some(json!({ "url": repo.path().display().to_string() })),
    )
    .await;
    // The base check before queuing says which credential pulls the base.
    let bases = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/site/bases",
            &app.deployer(),
            Some(json!({ "git_ref": "main" })),
        )
        .await
        .expect(200)
        .json();
    assert!(bases.to_string().contains("ecr"), "{bases}");
    let deployed = app
        .deploy_and_wait("site", json!({ "git_ref": "main" }))
        .await;
    app.succeeded(&deployed).await;
    assert_eq!(deployed["credential_source"], "team", "{deployed}");
    let log = app.log(deployed["id"].as_i64().unwrap()).await;
    assert!(log.contains("credentials from team:ecr"), "{log}");
    assert_eq!(
        served_file(&app.release_url("site").await, "hello.txt")
            .await
            .trim(),
        "built on an ECR base"
    );
    for secret in [moto.keys.secret_access_key.as_str(), Moto::TOKEN_PASSWORD] {
        assert!(!log.contains(secret), "the build log holds a secret");
    }
    app.assert_no_leaks(&[&moto.keys.secret_access_key, Moto::TOKEN_PASSWORD]);
    app.assert_postgres_dump_free_of(&[&moto.keys.secret_access_key, Moto::TOKEN_PASSWORD])
        .await;
    app.stop().await;
}

#[tokio::test]
async fn each_refusal_names_its_step_and_aws_s_words_are_kept_verbatim() {
    let moto = Moto::start().await;
    let app = berth_with(TestApp::sqlite(), &moto, ecr_registry().await).await;
    let image = app.image("team/web:1");

    // A wrong secret: AWS sign-in fails with SignatureDoesNotMatch.
    let mut wrong = ecr_credential(&app, &moto, "wrong-secret");
    wrong["secret_access_key"] = json!("x".repeat(40));
    create(&app, wrong).await.expect(201);
    let refused = verify(&app, "wrong-secret", Some(&image)).await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["kind"], "aws_sign_in_failed", "{refused}");
    assert_eq!(refused["step"], "aws_sign_in");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{refused}"
    );
    let kept = credential(&app, "wrong-secret").await;
    assert!(
        kept["aws"]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("SignatureDoesNotMatch: "),
        "{kept}"
    );
    assert!(kept["aws"]["last_error_at"].is_i64());
    // A deploy with it is refused before anything is queued, on the credential field.
    app.create_app("web", "image", None).await;
    let error = refusal(
        app.deploy("web", json!({"image": image, "credential": "wrong-secret"}))
            .await,
        "verification_failed",
        "credential",
    );
    assert_eq!(error["reason"], "aws_sign_in_failed", "{error}");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("SignatureDoesNotMatch"));
    assert!(app.operations("web").await.is_empty(), "nothing was queued");
    // The page shows AWS's error verbatim and which step failed.
    let mut browser = app.signed_in(DEPLOYER).await;
    let page = browser.get("/teams/acme/credentials/wrong-secret").await;
    assert!(
        page.body.contains("Last AWS error") && page.body.contains("SignatureDoesNotMatch"),
        "{}",
        page.body
    );

    // An unknown key: InvalidClientTokenId.
    let mut unknown = ecr_credential(&app, &moto, "unknown-key");
    unknown["access_key_id"] = json!("AKIAUNKNOWNUNKNOWN12");
    create(&app, unknown).await.expect(201);
    let refused = verify(&app, "unknown-key", None).await;
    assert_eq!(refused["step"], "aws_sign_in");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("InvalidClientTokenId"),
        "{refused}"
    );

    // A key that may not assume the role: the role assumption step, AccessDenied.
    let mut bare = ecr_credential(&app, &moto, "bare-role");
    bare["access_key_id"] = json!(moto.keys.bare_access_key_id);
    bare["secret_access_key"] = json!(moto.keys.bare_secret_access_key);
    bare["role_arn"] = json!(moto.keys.role_arn);
    bare["external_id"] = json!("berth-acme");
    create(&app, bare).await.expect(201);
    let refused = verify(&app, "bare-role", None).await;
    assert_eq!(refused["kind"], "role_assumption_failed", "{refused}");
    assert_eq!(refused["step"], "role_assumption");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{refused}"
    );

    // The good key through the role works.
    let mut role = ecr_credential(&app, &moto, "with-role");
    role["role_arn"] = json!(moto.keys.role_arn);
    create(&app, role).await.expect(201);
    let verified = verify(&app, "with-role", Some(&image)).await;
    assert_eq!(verified["ok"], true, "{verified}");

    // A token the registry refuses: the registry login step.
    let elsewhere = TestRegistry::start_htpasswd(&[("AWS", "not-moto-s-token")]).await;
    let app2 = berth_with(TestApp::sqlite(), &moto, elsewhere).await;
    create(&app2, ecr_credential(&app2, &moto, "ecr"))
        .await
        .expect(201);
    let refused = verify(&app2, "ecr", Some(&app2.image("team/web:1"))).await;
    assert_eq!(refused["kind"], "wrong_credentials", "{refused}");
    assert_eq!(refused["step"], "registry_login");
    app2.stop().await;

    // A tag that does not exist: the image pull step.
    let refused = verify(&app, "with-role", Some(&app.image("team/web:missing"))).await;
    assert_eq!(refused["kind"], "not_found", "{refused}");
    assert_eq!(refused["step"], "image_pull");

    // A new secret access key mints again and clears the last error.
    app.call(
        "PATCH",
        "/api/v1/teams/acme/credentials/wrong-secret",
        &app.owner_token(),
        Some(json!({ "secret_access_key": moto.keys.secret_access_key })),
    )
    .await
    .expect(200);
    let verified = verify(&app, "wrong-secret", None).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["credential"]["aws"]["last_error"], Value::Null);
    app.assert_no_leaks(&[
        &moto.keys.secret_access_key,
        &moto.keys.bare_secret_access_key,
        Moto::TOKEN_PASSWORD,
    ]);
    app.stop().await;
}

#[tokio::test]
async fn ecr_fields_are_validated_each_error_naming_its_field() {
    let moto = Moto::start().await;
    let app = berth_with(TestApp::sqlite(), &moto, ecr_registry().await).await;
    let good = ecr_credential(&app, &moto, "ecr");
    let with = |changes: Value| {
        let mut body = good.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let cases = [
        (json!({"registry": "ghcr.io"}), "registry", "kind basic"),
        (
            json!({"registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com"}),
            "registry",
            "region eu-west-1",
        ),
        (
            json!({"region": "us-east-1.evil.example"}),
            "region",
            "not an AWS region",
        ),
        (json!({"region": null}), "region", "region"),
        (
            json!({"access_key_id": null}),
            "access_key_id",
            "access key id",
        ),
        (
            json!({"access_key_id": "akia-lower"}),
            "access_key_id",
            "upper-case",
        ),
        (
            json!({"secret_access_key": null}),
            "secret_access_key",
            "secret access key",
        ),
        (
            json!({"secret_access_key": "has spaces in it"}),
            "secret_access_key",
            "no spaces",
        ),
        (
            json!({"external_id": "berth-acme"}),
            "external_id",
            "role ARN",
        ),
        (
            json!({"role_arn": "arn:aws:iam::123456789012:user/bob"}),
            "role_arn",
            "IAM role ARN",
        ),
        (json!({"kind": "gcr"}), "kind", "use basic"),
    ];
    for (changes, field, says) in cases {
        let error = refusal(create(&app, with(changes.clone())).await, "invalid", field);
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{changes}: {error}"
        );
    }
    // An ECR registry host in its region is accepted without being listed by the operator.
    create(
        &app,
        with(json!({"name": "real-ecr", "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "region": "eu-west-1"})),
    )
    .await
    .expect(201);
    // Deployers use credentials; only owners store them.
    app.call(
        "POST",
        "/api/v1/teams/acme/credentials",
        &app.deployer(),
        Some(good.clone()),
    )
    .await
    .expect(403);
    create(&app, good).await.expect(201);

    // Changes are checked by the credential's kind.
    let app = &app;
    let patch = |name: &str, body: Value| {
        let path = format!("/api/v1/teams/acme/credentials/{name}");
        let token = app.owner_token();
        async move { app.call("PATCH", &path, &token, Some(body)).await }
    };
    refusal(
        patch("ecr", json!({"username": "someone"})).await,
        "invalid",
        "username",
    );
    refusal(
        patch("ecr", json!({"secret": "a-password"})).await,
        "invalid",
        "secret",
    );
    refusal(
        patch("ecr", json!({"secret_access_key": ""})).await,
        "invalid",
        "secret_access_key",
    );
    refusal(patch("ecr", json!({"region": "eu-west-1", "registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com"})).await, "invalid", "registry");
    refusal(
        patch("ecr", json!({"external_id": "berth-acme"})).await,
        "invalid",
        "external_id",
    );
    let changed = patch(
        "ecr",
        json!({"role_arn": moto.keys.role_arn, "external_id": "berth-acme"}),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(
        changed["credential"]["aws"]["role_arn"],
        moto.keys.role_arn.as_str()
    );
    let dropped = patch("ecr", json!({"role_arn": null, "external_id": null}))
        .await
        .expect(200)
        .json();
    assert_eq!(dropped["credential"]["aws"]["role_arn"], Value::Null);
    app.create_credential(&app.owner_token(), "basic", "bot", "bot-password-1f2e")
        .await
        .expect(201);
    refusal(
        patch("basic", json!({"region": "us-east-1"})).await,
        "invalid",
        "region",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_token_is_reused_from_memory_only_while_it_outlasts_an_operation() {
    let moto = Moto::start().await;
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms as u64);
    // Twelve hours before moto's tokens expire, as if it had just minted them.
    let now = Arc::new(Mutex::new(at(Moto::TOKEN_EXPIRES_AT - 12 * 3_600_000)));
    let clock = now.clone();
    let builder = TestApp::sqlite().with_ecr_clock(Arc::new(move || *clock.lock().unwrap()));
    let app = berth_with(builder, &moto, ecr_registry().await).await;
    create(&app, ecr_credential(&app, &moto, "ecr"))
        .await
        .expect(201);
    let first = verify(&app, "ecr", None).await;
    assert_eq!(first["ok"], true, "{first}");
    let minted = first["credential"]["aws"]["token_minted_at"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = verify(&app, "ecr", None).await;
    assert_eq!(second["ok"], true);
    assert_eq!(
        second["credential"]["aws"]["token_minted_at"].as_i64(),
        Some(minted),
        "valid for 12 more hours: the token in memory is used"
    );
    // Within two hours of expiry a token is too short-lived for an operation.
    *now.lock().unwrap() = at(Moto::TOKEN_EXPIRES_AT - 3_600_000);
    let third = verify(&app, "ecr", None).await;
    let reminted = third["credential"]["aws"]["token_minted_at"]
        .as_i64()
        .unwrap();
    assert!(reminted > minted, "minted anew");
    // Any change to the credential forgets its tokens.
    *now.lock().unwrap() = at(Moto::TOKEN_EXPIRES_AT - 12 * 3_600_000);
    let fourth = verify(&app, "ecr", None).await;
    let kept = fourth["credential"]["aws"]["token_minted_at"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.call(
        "PATCH",
        "/api/v1/teams/acme/credentials/ecr",
        &app.owner_token(),
        Some(json!({ "note": "rotated" })),
    )
    .await
    .expect(200);
    let fifth = verify(&app, "ecr", None).await;
    assert!(
        fifth["credential"]["aws"]["token_minted_at"]
            .as_i64()
            .unwrap()
            > kept
    );
    app.stop().await;
}

#[tokio::test]
async fn on_aptible_the_minted_login_goes_with_each_deploy_for_images_and_dockerfile_builds() {
    let moto = Moto::start().await;
    let host = GitSshHost::start();
    let remote = host.serve_empty_repository("aptible-web");
    let aptible = TestAptible::builder()
        .user("ops@acme.example", "aptible-password-ecr-1")
        .app("production", "web", 11, Some(&remote))
        .app("production", "api", 12, None)
        .start()
        .await;
    let registry = ecr_registry().await;
    let repo = repository(&format!("{}/base/busybox:1", registry.host));
    let app = TestApp::sqlite()
        .with_team()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_egress_allow(&host.authority())
        .with_ecr(&moto.url, &[&registry.host])
        .with_aptible(&aptible.api_url(), &aptible.auth_url())
        .with_registry(registry)
        .start()
        .await;
    let token = aptible.token_for("ops@acme.example");
    app.call(
        "PUT",
        "/api/v1/teams/acme/platforms/aptible",
        &app.owner_token(),
        Some(json!({ "token": token })),
    )
    .await
    .expect(200);
    create(&app, ecr_credential(&app, &moto, "ecr"))
        .await
        .expect(201);
    let posted = || {
        aptible
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path_only().ends_with("/operations"))
            .collect::<Vec<_>>()
    };

    // An image app: the minted login is the deploy's sensitive settings.
    app.call(
        "POST",
        "/api/v1/teams/acme/apps",
        &app.deployer(),
        Some(json!({"handle": "api", "method": "image",
            "platform": {"kind": "aptible", "environment": "production", "app": "api"}})),
    )
    .await
    .expect(201);
    let image = app.image("team/web:1");
    let deployed = app.deploy_and_wait("api", json!({ "image": image })).await;
    app.succeeded(&deployed).await;
    assert_eq!(deployed["credential_source"], "team", "{deployed}");
    assert_eq!(
        posted()[0].json(),
        json!({
            "type": "deploy",
            "settings": {"APTIBLE_DOCKER_IMAGE": image},
            "sensitive_settings": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "AWS",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": Moto::TOKEN_PASSWORD,
            },
        })
    );

    // A Dockerfile app: pushed over ssh with the team's deploy key, then one deploy whose
    // env carries the minted login for Aptible's build (never the app's configuration).
    let key = app
        .call(
            "POST",
            "/api/v1/teams/acme/deploy-key",
            &app.owner_token(),
            None,
        )
        .await
        .json();
    host.authorize(&[key["public_key"].as_str().expect("a deploy key")]);
    app.call(
        "POST",
        "/api/v1/teams/acme/apps",
        &app.deployer(),
        Some(json!({"handle": "web", "method": "dockerfile",
            "git": {"url": repo.path().display().to_string()},
            "platform": {"kind": "aptible", "environment": "production", "app": "web"}})),
    )
    .await
    .expect(201);
    let built = app
        .deploy_and_wait("web", json!({ "git_ref": "main" }))
        .await;
    app.succeeded(&built).await;
    assert_eq!(built["credential_source"], "team", "{built}");
    assert_eq!(
        posted()[1].json(),
        json!({
            "type": "deploy",
            "git_ref": format!("berth-deploy-{}", built["id"]),
            "env": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "AWS",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": Moto::TOKEN_PASSWORD,
            },
        })
    );
    assert!(
        app.config("web").await.is_empty(),
        "the login is not configuration"
    );
    app.assert_no_leaks(&[&moto.keys.secret_access_key]);
    app.stop().await;
}
