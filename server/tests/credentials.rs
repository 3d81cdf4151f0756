//! Team registry credentials through the JSON API, against a real registry (the Debian
//! distribution registry started by `testregistry`), with every secret searched for in the
//! responses, the pages, the logs and the database afterwards.

mod support;

use domain::Role;
use serde_json::json;
use support::*;
use testregistry::TestRegistry;

const REGISTRY_PASSWORD: &str = "reg-pass-7f3a91c2d4";
const ROTATED_PASSWORD: &str = "reg-pass-rotated-88e1b0";

struct World {
    app: TestApp,
    registry: TestRegistry,
    digest: String,
    owner: String,
    deployer: String,
    viewer: String,
    outsider: String,
}

async fn world(database_url: Option<&str>) -> World {
    captured_logs();
    let registry = TestRegistry::start_htpasswd(&[("bot", REGISTRY_PASSWORD)]).await;
    let digest = registry
        .push_image("team/app", "1.0", ("bot", REGISTRY_PASSWORD))
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
        digest,
    }
}

impl World {
    fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.registry.host)
    }

    async fn create(&self, token: &str, name: &str, secret: &str) -> TestResponse {
        self.app
            .api(
                "POST",
                "/api/v1/teams/acme/credentials",
                Some(token),
                Some(json!({
                    "name": name, "registry": self.registry.host.as_str(), "kind": "basic",
                    "username": "bot", "secret": secret, "note": "CI pulls",
                })),
            )
            .await
    }

    async fn verify(&self, token: &str, name: &str, image: Option<&str>) -> TestResponse {
        let body = image.map(|i| json!({ "image": i }));
        self.app
            .api(
                "POST",
                &format!("/api/v1/teams/acme/credentials/{name}/verify"),
                Some(token),
                body,
            )
            .await
    }
}

#[tokio::test]
async fn a_verified_credential_resolves_the_exact_digest() {
    let w = world(None).await;
    let created = w.create(&w.owner, "private", REGISTRY_PASSWORD).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert_eq!(created.json()["credential"]["username"], "bot");
    assert!(created.json()["credential"].get("secret").is_none());

    let verified = w
        .verify(&w.owner, "private", Some(&w.image("team/app:1.0")))
        .await;
    assert_eq!(verified.status.as_u16(), 200, "{}", verified.body);
    let body = verified.json();
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["digest"], w.digest.as_str());
    assert_eq!(body["platforms"][0], "linux/amd64");
    assert!(body["size"].as_u64().unwrap() > 0);
    assert_eq!(body["credential"]["last_verified"]["ok"], true);

    // Login only, with no image.
    let login = w.verify(&w.deployer, "private", None).await;
    assert_eq!(login.json()["ok"], true, "{}", login.body);
}

#[tokio::test]
async fn verification_failures_say_precisely_what_is_wrong() {
    let w = world(None).await;
    w.create(&w.owner, "wrong", "not-the-password").await;
    w.create(&w.owner, "right", REGISTRY_PASSWORD).await;
    let wrong = w
        .verify(&w.owner, "wrong", Some(&w.image("team/app:1.0")))
        .await;
    assert_eq!(wrong.json()["ok"], false);
    assert_eq!(wrong.json()["kind"], "wrong_credentials");
    let no_tag = w
        .verify(&w.owner, "right", Some(&w.image("team/app:2.0")))
        .await;
    assert_eq!(no_tag.json()["kind"], "not_found");
    assert!(
        no_tag.json()["message"].as_str().unwrap().contains("2.0"),
        "{}",
        no_tag.body
    );
    let no_repo = w
        .verify(&w.owner, "right", Some(&w.image("team/nothing:1.0")))
        .await;
    assert_eq!(no_repo.json()["kind"], "not_found");
    let elsewhere = w.verify(&w.owner, "right", Some("ghcr.io/org/app:1")).await;
    assert_eq!(elsewhere.status.as_u16(), 422);
    assert_eq!(elsewhere.json()["error"]["field"], "image");
    let bad_image = w.verify(&w.owner, "right", Some("Not An Image")).await;
    assert_eq!(bad_image.json()["error"]["field"], "image");

    // The last result is on the credential, and the audit trail has every attempt.
    let shown = w
        .app
        .api(
            "GET",
            "/api/v1/teams/acme/credentials/wrong",
            Some(&w.viewer),
            None,
        )
        .await;
    assert_eq!(shown.json()["credential"]["last_verified"]["ok"], false);
    let audit = w
        .app
        .api(
            "GET",
            "/api/v1/teams/acme/audit?credential=right",
            Some(&w.viewer),
            None,
        )
        .await;
    let events = audit.json()["events"].as_array().unwrap().clone();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("credential.verify", "failed"),
        ("credential.verify", "failed"),
        ("credential.create", "ok"),
    ];
    assert_eq!(
        summary,
        expected.map(|(a, o)| (a.to_owned(), o.to_owned())),
        "newest first"
    );
    assert_eq!(events[0]["actor"], "owner@example.com");
}

#[tokio::test]
async fn a_stopped_registry_is_reported_as_unreachable() {
    let mut w = world(None).await;
    w.create(&w.owner, "private", REGISTRY_PASSWORD).await;
    w.registry.stop();
    let result = w.verify(&w.owner, "private", None).await;
    assert_eq!(result.json()["kind"], "unreachable", "{}", result.body);
}

#[tokio::test]
async fn updating_without_a_secret_keeps_it_and_a_new_secret_replaces_it() {
    let w = world(None).await;
    w.create(&w.owner, "private", REGISTRY_PASSWORD).await;
    let path = "/api/v1/teams/acme/credentials/private";
    let renamed = w
        .app
        .api(
            "PATCH",
            path,
            Some(&w.owner),
            Some(json!({"name": "pull", "note": null})),
        )
        .await;
    assert_eq!(renamed.status.as_u16(), 200, "{}", renamed.body);
    assert_eq!(
        renamed.json()["credential"]["note"],
        serde_json::Value::Null
    );
    assert_eq!(
        w.verify(&w.owner, "pull", None).await.json()["ok"],
        true,
        "the secret was kept"
    );

    w.registry.set_password("bot", ROTATED_PASSWORD);
    assert_eq!(
        w.verify(&w.owner, "pull", None).await.json()["kind"],
        "wrong_credentials"
    );
    let path = "/api/v1/teams/acme/credentials/pull";
    let rotated = w
        .app
        .api(
            "PATCH",
            path,
            Some(&w.owner),
            Some(json!({"secret": ROTATED_PASSWORD})),
        )
        .await;
    assert_eq!(rotated.json()["credential"]["secret_version"], 2);
    assert_eq!(
        w.verify(&w.owner, "pull", Some(&w.image("team/app:1.0")))
            .await
            .json()["ok"],
        true
    );
}

#[tokio::test]
async fn roles_decide_who_manages_uses_and_reads_credentials() {
    let w = world(None).await;
    let list = "/api/v1/teams/acme/credentials";
    assert_eq!(w.create(&w.deployer, "x", "s").await.status.as_u16(), 403);
    assert_eq!(w.create(&w.viewer, "x", "s").await.status.as_u16(), 403);
    assert_eq!(w.create(&w.outsider, "x", "s").await.status.as_u16(), 404);
    assert_eq!(
        w.create(&w.owner, "private", REGISTRY_PASSWORD)
            .await
            .status
            .as_u16(),
        201
    );
    for token in [&w.owner, &w.deployer, &w.viewer] {
        let response = w.app.api("GET", list, Some(token), None).await;
        assert_eq!(response.json()["credentials"][0]["name"], "private");
    }
    assert_eq!(
        w.app
            .api("GET", list, Some(&w.outsider), None)
            .await
            .status
            .as_u16(),
        404
    );
    assert_eq!(
        w.app.api("GET", list, None, None).await.status.as_u16(),
        401
    );
    let one = "/api/v1/teams/acme/credentials/private";
    assert_eq!(
        w.app
            .api("PATCH", one, Some(&w.deployer), Some(json!({"note": "x"})))
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        w.app
            .api("DELETE", one, Some(&w.deployer), None)
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        w.verify(&w.viewer, "private", None).await.status.as_u16(),
        403
    );
    assert_eq!(
        w.verify(&w.deployer, "private", None).await.status.as_u16(),
        200
    );
    assert_eq!(
        w.verify(&w.outsider, "private", None).await.status.as_u16(),
        404
    );
    assert_eq!(
        w.app
            .api("DELETE", one, Some(&w.owner), None)
            .await
            .status
            .as_u16(),
        204
    );
    assert_eq!(
        w.app
            .api("GET", one, Some(&w.owner), None)
            .await
            .status
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_a_taken_name_is_a_conflict() {
    let w = world(None).await;
    let post = |body: serde_json::Value| {
        w.app.api(
            "POST",
            "/api/v1/teams/acme/credentials",
            Some(&w.owner),
            Some(body),
        )
    };
    let base = json!({"name": "ok", "registry": "ghcr.io", "username": "bot", "secret": "s"});
    for (field, value, needle) in [
        ("name", json!("Has Spaces"), "has-spaces"),
        ("registry", json!("https://ghcr.io/org"), "ghcr.io"),
        ("kind", json!("ecr"), "not supported yet"),
        ("username", json!(""), "username"),
        ("secret", json!(""), "password"),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let response = post(body).await;
        assert_eq!(response.status.as_u16(), 422, "{field}: {}", response.body);
        assert_eq!(response.json()["error"]["field"], field);
        assert!(
            response.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            response.body
        );
    }
    assert_eq!(post(base.clone()).await.status.as_u16(), 201);
    let again = post(base).await;
    assert_eq!(again.status.as_u16(), 409);
    assert_eq!(again.json()["error"]["field"], "name");
}

/// Creates, edits and verifies credentials, then searches every response, every page, the
/// logs and the database for the plaintext secrets.
async fn secrets_leak_nowhere(database_url: Option<&str>) -> (World, String) {
    let w = world(database_url).await;
    let mut seen = String::new();
    let mut keep = |r: TestResponse| {
        seen.push_str(&r.body);
        seen.push_str(&format!("{:?}", r.headers));
    };
    keep(w.create(&w.owner, "private", REGISTRY_PASSWORD).await);
    keep(w.create(&w.owner, "stale", "stale-secret-31b2a").await);
    keep(
        w.verify(&w.owner, "private", Some(&w.image("team/app:1.0")))
            .await,
    );
    keep(
        w.verify(&w.owner, "stale", Some(&w.image("team/app:1.0")))
            .await,
    );
    let path = "/api/v1/teams/acme/credentials/stale";
    keep(
        w.app
            .api(
                "PATCH",
                path,
                Some(&w.owner),
                Some(json!({"secret": ROTATED_PASSWORD})),
            )
            .await,
    );
    keep(w.verify(&w.deployer, "stale", None).await);
    for token in [&w.owner, &w.deployer, &w.viewer] {
        keep(
            w.app
                .api("GET", "/api/v1/teams/acme/credentials", Some(token), None)
                .await,
        );
        keep(
            w.app
                .api(
                    "GET",
                    "/api/v1/teams/acme/credentials/private",
                    Some(token),
                    None,
                )
                .await,
        );
        keep(
            w.app
                .api("GET", "/api/v1/teams/acme/audit", Some(token), None)
                .await,
        );
    }
    for email in [
        "owner@example.com",
        "deployer@example.com",
        "viewer@example.com",
    ] {
        let mut browser = w.app.signed_in(email).await;
        for page in [
            "/teams/acme",
            "/teams/acme/credentials",
            "/teams/acme/credentials/private",
            "/teams/acme/credentials/stale",
            "/teams/acme/audit",
        ] {
            keep(browser.get(page).await);
        }
    }
    for secret in [REGISTRY_PASSWORD, "stale-secret-31b2a", ROTATED_PASSWORD] {
        assert!(
            !seen.contains(secret),
            "a response or page contains a secret"
        );
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(!logs.contains(secret), "the logs contain a secret");
    }
    assert!(
        seen.contains("private") && seen.contains("credential.verify"),
        "the scan saw the data"
    );
    (w, seen)
}

#[tokio::test]
async fn secrets_leak_nowhere_with_sqlite() {
    let (w, _) = secrets_leak_nowhere(None).await;
    w.app.store.close().await;
    let mut bytes = Vec::new();
    for file in ["berth.db", "berth.db-wal", "berth.db-shm"] {
        bytes.extend(std::fs::read(w.app.dir.join(file)).unwrap_or_default());
    }
    assert!(bytes.len() > 4096);
    for secret in [REGISTRY_PASSWORD, "stale-secret-31b2a", ROTATED_PASSWORD] {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|win| win == secret.as_bytes()),
            "the SQLite file holds a secret"
        );
    }
}

#[tokio::test]
async fn secrets_leak_nowhere_with_postgresql() {
    let db = testdb::TestDatabase::postgres().await;
    let (w, _) = secrets_leak_nowhere(Some(db.url())).await;
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
    assert!(
        dump.contains("registry_credentials"),
        "the dump has the credentials table"
    );
    for secret in [REGISTRY_PASSWORD, "stale-secret-31b2a", ROTATED_PASSWORD] {
        assert!(!dump.contains(secret), "the PostgreSQL dump holds a secret");
    }
}

#[tokio::test]
async fn an_owner_records_when_a_credential_expires() {
    let w = world(None).await;
    let created = w
        .app
        .api(
            "POST",
            "/api/v1/teams/acme/credentials",
            Some(&w.owner),
            Some(json!({
                "name": "pat", "registry": w.registry.host.as_str(), "kind": "basic",
                "username": "bot", "secret": REGISTRY_PASSWORD, "expires_on": "2027-03-31",
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert_eq!(
        created.json()["credential"]["expires_at"],
        1_806_451_200_000_i64
    );
    let bad = w
        .app
        .api(
            "PATCH",
            "/api/v1/teams/acme/credentials/pat",
            Some(&w.owner),
            Some(json!({ "expires_on": "31/03/2027" })),
        )
        .await;
    assert_eq!(bad.status.as_u16(), 422, "{}", bad.body);
    assert_eq!(bad.json()["error"]["field"], "expires_on");
    let cleared = w
        .app
        .api(
            "PATCH",
            "/api/v1/teams/acme/credentials/pat",
            Some(&w.owner),
            Some(json!({ "expires_on": null })),
        )
        .await;
    assert_eq!(cleared.status.as_u16(), 200, "{}", cleared.body);
    assert!(cleared.json()["credential"]["expires_at"].is_null());
    let page = w
        .app
        .signed_in("owner@example.com")
        .await
        .get("/teams/acme/credentials/pat")
        .await;
    assert!(
        page.body.contains("Expires on"),
        "the edit form asks for the expiry date"
    );
}
