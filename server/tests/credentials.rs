//! Team registry credentials through the JSON API, against a real registry (the Debian
//! distribution registry started by `testregistry`), with every secret searched for in the
//! responses, the pages, the logs and the database afterwards.

mod support;

use serde_json::json;
use support::*;
use testregistry::TestRegistry;

const REGISTRY_PASSWORD: &str = "reg-pass-7f3a91c2d4";
const ROTATED_PASSWORD: &str = "reg-pass-rotated-88e1b0";
const STALE_SECRET: &str = "stale-secret-31b2a";
const SECRETS: [&str; 3] = [REGISTRY_PASSWORD, STALE_SECRET, ROTATED_PASSWORD];

/// Starts `app` with team `acme` and a registry that lets `bot` in with
/// [`REGISTRY_PASSWORD`] and holds `team/app:1.0`; answers the app and that image's digest.
async fn start(app: TestAppBuilder) -> (TestApp, String) {
    let registry = TestRegistry::start_htpasswd(&[("bot", REGISTRY_PASSWORD)]).await;
    let digest = registry
        .push_image("team/app", "1.0", ("bot", REGISTRY_PASSWORD))
        .await;
    (
        app.with_team().with_registry(registry).start().await,
        digest,
    )
}

/// Verifies credential `name` of team `acme` (the login only, or a pull of `image`).
async fn verify(app: &TestApp, token: &str, name: &str, image: Option<&str>) -> TestResponse {
    let body = image.map(|i| json!({ "image": i }));
    app.call(
        "POST",
        &format!("/api/v1/teams/acme/credentials/{name}/verify"),
        token,
        body,
    )
    .await
}

#[tokio::test]
async fn a_verified_credential_resolves_the_exact_digest() {
    let (app, digest) = start(TestApp::sqlite()).await;
    let created = app
        .create_credential(&app.owner_token(), "private", "bot", REGISTRY_PASSWORD)
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert_eq!(created.json()["credential"]["username"], "bot");
    assert!(created.json()["credential"].get("secret").is_none());

    let verified = verify(
        &app,
        &app.owner_token(),
        "private",
        Some(&app.image("team/app:1.0")),
    )
    .await;
    assert_eq!(verified.status.as_u16(), 200, "{}", verified.body);
    let body = verified.json();
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["digest"], digest.as_str());
    assert_eq!(body["platforms"][0], "linux/amd64");
    assert!(body["size"].as_u64().unwrap() > 0);
    assert_eq!(body["credential"]["last_verified"]["ok"], true);

    // Login only, with no image.
    let login = verify(&app, &app.deployer(), "private", None).await;
    assert_eq!(login.json()["ok"], true, "{}", login.body);
}

#[tokio::test]
async fn verification_failures_say_precisely_what_is_wrong() {
    let (app, _) = start(TestApp::sqlite()).await;
    let owner = app.owner_token();
    app.create_credential(&owner, "wrong", "bot", "not-the-password")
        .await;
    app.create_credential(&owner, "right", "bot", REGISTRY_PASSWORD)
        .await;
    let wrong = verify(&app, &owner, "wrong", Some(&app.image("team/app:1.0"))).await;
    assert_eq!(wrong.json()["ok"], false);
    assert_eq!(wrong.json()["kind"], "wrong_credentials");
    let no_tag = verify(&app, &owner, "right", Some(&app.image("team/app:2.0"))).await;
    assert_eq!(no_tag.json()["kind"], "not_found");
    assert!(
        no_tag.json()["message"].as_str().unwrap().contains("2.0"),
        "{}",
        no_tag.body
    );
    let no_repo = verify(&app, &owner, "right", Some(&app.image("team/nothing:1.0"))).await;
    assert_eq!(no_repo.json()["kind"], "not_found");
    let elsewhere = verify(&app, &owner, "right", Some("ghcr.io/org/app:1")).await;
    assert_eq!(elsewhere.status.as_u16(), 422);
    assert_eq!(elsewhere.json()["error"]["field"], "image");
    let bad_image = verify(&app, &owner, "right", Some("Not An Image")).await;
    assert_eq!(bad_image.json()["error"]["field"], "image");

    // The last result is on the credential, and the audit trail has every attempt.
    let shown = app
        .call(
            "GET",
            "/api/v1/teams/acme/credentials/wrong",
            &app.viewer(),
            None,
        )
        .await;
    assert_eq!(shown.json()["credential"]["last_verified"]["ok"], false);
    let right = app
        .call(
            "GET",
            "/api/v1/teams/acme/credentials/right",
            &app.viewer(),
            None,
        )
        .await;
    assert_eq!(
        right.json()["credential"]["last_verified"]["ok"],
        true,
        "{}",
        right.body
    );
    let audit = app
        .call(
            "GET",
            "/api/v1/teams/acme/audit?credential=right",
            &app.viewer(),
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
    // A missing tag or repository is the image's problem: the login worked, so the
    // credential is not marked failed for it.
    let expected = [
        ("credential.verify", "ok"),
        ("credential.verify", "ok"),
        ("credential.create", "ok"),
    ];
    assert_eq!(
        summary,
        expected.map(|(a, o)| (a.to_owned(), o.to_owned())),
        "newest first"
    );
    assert_eq!(events[0]["actor"], OWNER);
}

#[tokio::test]
async fn a_stopped_registry_is_reported_as_unreachable() {
    let (mut app, _) = start(TestApp::sqlite()).await;
    app.create_credential(&app.owner_token(), "private", "bot", REGISTRY_PASSWORD)
        .await;
    app.registry.as_mut().unwrap().stop();
    let result = verify(&app, &app.owner_token(), "private", None).await;
    assert_eq!(result.json()["kind"], "unreachable", "{}", result.body);
}

#[tokio::test]
async fn updating_without_a_secret_keeps_it_and_a_new_secret_replaces_it() {
    let (app, _) = start(TestApp::sqlite()).await;
    let owner = app.owner_token();
    app.create_credential(&owner, "private", "bot", REGISTRY_PASSWORD)
        .await;
    let path = "/api/v1/teams/acme/credentials/private";
    let renamed = app
        .call(
            "PATCH",
            path,
            &owner,
            Some(json!({"name": "pull", "note": null})),
        )
        .await;
    assert_eq!(renamed.status.as_u16(), 200, "{}", renamed.body);
    assert_eq!(
        renamed.json()["credential"]["note"],
        serde_json::Value::Null
    );
    assert_eq!(
        verify(&app, &owner, "pull", None).await.json()["ok"],
        true,
        "the secret was kept"
    );

    app.registry().set_password("bot", ROTATED_PASSWORD);
    assert_eq!(
        verify(&app, &owner, "pull", None).await.json()["kind"],
        "wrong_credentials"
    );
    let path = "/api/v1/teams/acme/credentials/pull";
    let rotated = app
        .call(
            "PATCH",
            path,
            &owner,
            Some(json!({"secret": ROTATED_PASSWORD})),
        )
        .await;
    assert_eq!(rotated.json()["credential"]["secret_version"], 2);
    assert_eq!(
        verify(&app, &owner, "pull", Some(&app.image("team/app:1.0")))
            .await
            .json()["ok"],
        true
    );
}

#[tokio::test]
async fn a_secret_stays_with_the_registry_it_was_entered_for() {
    // Another host, which answers every request with a Basic challenge and records what it
    // was sent: the host a second owner would point the credential at.
    let other_host = auth_recorder::AuthRecorder::start().await;
    let (app, _) = start(TestApp::sqlite().with_insecure_registry(other_host.host.clone())).await;
    let owner = app.owner_token();
    app.create_credential(&owner, "private", "bot", REGISTRY_PASSWORD)
        .await
        .expect(201);
    let path = "/api/v1/teams/acme/credentials/private";

    // A PATCH of only the registry is refused: the secret must be entered again.
    // An empty secret is refused on the same field, for being empty.
    refusal(
        app.call(
            "PATCH",
            path,
            &owner,
            Some(json!({"registry": other_host.host.as_str(), "secret": ""})),
        )
        .await,
        "invalid",
        "secret",
    );
    for body in [
        json!({"registry": other_host.host.as_str()}),
        json!({"registry": other_host.host.as_str(), "username": "bot", "note": "moved"}),
    ] {
        let error = refusal(
            app.call("PATCH", path, &owner, Some(body.clone())).await,
            "invalid",
            "secret",
        );
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("needs the secret again")
                && message.contains(app.registry().host.as_str())
                && message.contains(other_host.host.as_str()),
            "{body}: {message}"
        );
    }
    let shown = app.call("GET", path, &owner, None).await.expect(200).json();
    assert_eq!(
        shown["credential"]["registry"],
        app.registry().host.as_str(),
        "nothing changed: {shown}"
    );
    assert_eq!(shown["credential"]["note"], "CI pulls", "{shown}");
    // Verifying (with and without an image on the other host) sends the old secret nowhere
    // but its own registry.
    assert_eq!(
        verify(&app, &owner, "private", None).await.json()["ok"],
        true
    );
    let image = format!("{}/team/app:1.0", other_host.host);
    verify(&app, &owner, "private", Some(&image)).await;
    // The same registry written differently is no change of host.
    let same = app
        .call(
            "PATCH",
            path,
            &owner,
            Some(json!({"registry": format!(" {} ", app.registry().host)})),
        )
        .await;
    assert_eq!(same.status.as_u16(), 200, "{}", same.body);

    // With the secret entered again, the move is allowed, and the next verify sends the
    // new secret (so the recorder does see secrets: the old one never reached it).
    let moved = app
        .call(
            "PATCH",
            path,
            &owner,
            Some(json!({"registry": other_host.host.as_str(), "secret": ROTATED_PASSWORD})),
        )
        .await;
    assert_eq!(moved.status.as_u16(), 200, "{}", moved.body);
    let refused = verify(&app, &owner, "private", None).await.json();
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(other_host.requests() > 0, "the new host was asked");
    assert!(
        other_host.received("bot", ROTATED_PASSWORD),
        "{:?}",
        other_host.authorizations()
    );
    assert!(
        !other_host.received("bot", REGISTRY_PASSWORD),
        "the old secret reached the new host: {:?}",
        other_host.authorizations()
    );
    app.assert_no_leaks(&[REGISTRY_PASSWORD, ROTATED_PASSWORD]);
}

#[tokio::test]
async fn roles_decide_who_manages_uses_and_reads_credentials() {
    let (app, _) = start(TestApp::sqlite()).await;
    let (owner, deployer, viewer, outsider) = (
        app.owner_token(),
        app.deployer(),
        app.viewer(),
        app.outsider(),
    );
    let list = "/api/v1/teams/acme/credentials";
    assert_eq!(
        app.create_credential(&deployer, "x", "bot", "s")
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        app.create_credential(&viewer, "x", "bot", "s")
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        app.create_credential(&outsider, "x", "bot", "s")
            .await
            .status
            .as_u16(),
        404
    );
    assert_eq!(
        app.create_credential(&owner, "private", "bot", REGISTRY_PASSWORD)
            .await
            .status
            .as_u16(),
        201
    );
    for token in [&owner, &deployer, &viewer] {
        let response = app.call("GET", list, token, None).await;
        assert_eq!(response.json()["credentials"][0]["name"], "private");
    }
    assert_eq!(
        app.call("GET", list, &outsider, None).await.status.as_u16(),
        404
    );
    assert_eq!(app.api("GET", list, None, None).await.status.as_u16(), 401);
    let one = "/api/v1/teams/acme/credentials/private";
    assert_eq!(
        app.call("PATCH", one, &deployer, Some(json!({"note": "x"})))
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        app.call("DELETE", one, &deployer, None)
            .await
            .status
            .as_u16(),
        403
    );
    assert_eq!(
        verify(&app, &viewer, "private", None).await.status.as_u16(),
        403
    );
    assert_eq!(
        verify(&app, &deployer, "private", None)
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(
        verify(&app, &outsider, "private", None)
            .await
            .status
            .as_u16(),
        404
    );
    assert_eq!(
        app.call("DELETE", one, &owner, None).await.status.as_u16(),
        204
    );
    assert_eq!(
        app.call("GET", one, &owner, None).await.status.as_u16(),
        404
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_a_taken_name_is_a_conflict() {
    let (app, _) = start(TestApp::sqlite()).await;
    let owner = app.owner_token();
    let post = |body: serde_json::Value| {
        app.call("POST", "/api/v1/teams/acme/credentials", &owner, Some(body))
    };
    let base = json!({"name": "ok", "registry": "ghcr.io", "username": "bot", "secret": "s"});
    for (field, value, needle) in [
        ("name", json!("Has Spaces"), "has-spaces"),
        ("registry", json!("https://ghcr.io/org"), "ghcr.io"),
        ("kind", json!("gcr"), "use basic"),
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

/// Creates, edits and verifies credentials, then searches every response (bodies and
/// headers), every page, the logs and the SQLite file for the plaintext secrets.
async fn secrets_leak_nowhere(app: TestAppBuilder) -> TestApp {
    let (app, _) = start(app).await;
    let (owner, deployer) = (app.owner_token(), app.deployer());
    let mut seen = String::new();
    let mut keep = |r: TestResponse| {
        seen.push_str(&r.body);
        seen.push_str(&format!("{:?}", r.headers));
    };
    keep(
        app.create_credential(&owner, "private", "bot", REGISTRY_PASSWORD)
            .await,
    );
    keep(
        app.create_credential(&owner, "stale", "bot", STALE_SECRET)
            .await,
    );
    keep(verify(&app, &owner, "private", Some(&app.image("team/app:1.0"))).await);
    keep(verify(&app, &owner, "stale", Some(&app.image("team/app:1.0"))).await);
    let path = "/api/v1/teams/acme/credentials/stale";
    keep(
        app.call(
            "PATCH",
            path,
            &owner,
            Some(json!({"secret": ROTATED_PASSWORD})),
        )
        .await,
    );
    keep(verify(&app, &deployer, "stale", None).await);
    for token in [owner, deployer, app.viewer()] {
        for path in [
            "/api/v1/teams/acme/credentials",
            "/api/v1/teams/acme/credentials/private",
            "/api/v1/teams/acme/audit",
        ] {
            keep(app.call("GET", path, &token, None).await);
        }
    }
    for email in [OWNER, DEPLOYER, VIEWER] {
        let mut browser = app.signed_in(email).await;
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
    for secret in SECRETS {
        assert!(
            !seen.contains(secret),
            "a response or page contains a secret"
        );
    }
    assert!(
        seen.contains("private") && seen.contains("credential.verify"),
        "the scan saw the data"
    );
    // Everything has been written: the SQLite file (if any) is complete.
    app.store.close().await;
    app.assert_no_leaks(&SECRETS);
    app
}

#[tokio::test]
async fn secrets_leak_nowhere_with_sqlite() {
    let app = secrets_leak_nowhere(TestApp::sqlite()).await;
    let size: u64 = ["berth.db", "berth.db-wal", "berth.db-shm"]
        .iter()
        .filter_map(|file| std::fs::metadata(app.dir.join(file)).ok())
        .map(|m| m.len())
        .sum();
    assert!(size > 4096, "the scan read the database");
}

#[tokio::test]
async fn secrets_leak_nowhere_with_postgresql() {
    let app = secrets_leak_nowhere(TestApp::postgres()).await;
    let dump = app.assert_postgres_dump_free_of(&SECRETS).await;
    assert!(
        dump.contains("INSERT INTO public.registry_credentials"),
        "the dump has the credentials"
    );
}

#[tokio::test]
async fn an_owner_records_when_a_credential_expires() {
    let (app, _) = start(TestApp::sqlite()).await;
    let owner = app.owner_token();
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            &owner,
            Some(json!({
                "name": "pat", "registry": app.registry().host.as_str(), "kind": "basic",
                "username": "bot", "secret": REGISTRY_PASSWORD, "expires_on": "2027-03-31",
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert_eq!(
        created.json()["credential"]["expires_at"],
        1_806_451_200_000_i64
    );
    let bad = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/credentials/pat",
            &owner,
            Some(json!({ "expires_on": "31/03/2027" })),
        )
        .await;
    assert_eq!(bad.status.as_u16(), 422, "{}", bad.body);
    assert_eq!(bad.json()["error"]["field"], "expires_on");
    let cleared = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/credentials/pat",
            &owner,
            Some(json!({ "expires_on": null })),
        )
        .await;
    assert_eq!(cleared.status.as_u16(), 200, "{}", cleared.body);
    assert!(cleared.json()["credential"]["expires_at"].is_null());
    let page = app
        .signed_in(OWNER)
        .await
        .get("/teams/acme/credentials/pat")
        .await;
    assert!(
        page.body.contains("Expires on"),
        "the edit form asks for the expiry date"
    );
}
