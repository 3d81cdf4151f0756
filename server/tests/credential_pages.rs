//! The credential pages, as people use them: with forms posted without JavaScript (the
//! server redirects back and shows the outcome) and with each role's controls.

mod support;

use app::serverfns::credentials::*;
use axum::http::StatusCode;
use leptos::server_fn::ServerFn;
use support::*;
use testregistry::TestRegistry;

const PASSWORD_AT_REGISTRY: &str = "pages-reg-secret-5d1e";

#[tokio::test]
async fn an_owner_creates_and_verifies_a_credential_without_javascript() {
    let registry = TestRegistry::start_htpasswd(&[("bot", PASSWORD_AT_REGISTRY)]).await;
    let digest = registry
        .push_image("team/app", "1.0", ("bot", PASSWORD_AT_REGISTRY))
        .await;
    let host = registry.host.to_string();
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .start()
        .await;
    let mut owner = app.signed_in(OWNER).await;

    let list = owner.get("/teams/acme/credentials").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("No credentials yet"),
        "an empty state says what to do"
    );
    assert!(list.body.contains("New credential"));

    let csrf = owner.any_csrf_token().await;
    let created = owner
        .post_form(
            CreateCredential::PATH,
            &[
                ("csrf_token", &csrf),
                ("team", "acme"),
                ("name", "private"),
                ("registry", &host),
                ("username", "bot"),
                ("secret", PASSWORD_AT_REGISTRY),
                ("note", ""),
            ],
            true,
            Some("http://berth.test/teams/acme/credentials/new"),
        )
        .await;
    assert_eq!(created.status, StatusCode::FOUND, "{}", created.body);
    assert_eq!(created.location(), Some("/teams/acme/credentials/private"));

    let image = format!("{host}/team/app:1.0");
    let verified = owner
        .post_form(
            VerifyCredential::PATH,
            &[
                ("csrf_token", &csrf),
                ("team", "acme"),
                ("name", "private"),
                ("image", &image),
            ],
            true,
            Some("http://berth.test/teams/acme/credentials/private"),
        )
        .await;
    assert_eq!(verified.status, StatusCode::FOUND);
    let page = owner.get("/teams/acme/credentials/private").await;
    assert!(page.body.contains("Verified"), "{}", page.body);
    assert!(page.body.contains(&digest), "the digest is shown");
    assert!(
        page.body.contains("credential.verify"),
        "the history shows the verification"
    );
    assert!(!page.body.contains(PASSWORD_AT_REGISTRY));
    // The outcome is shown once; the credential keeps "last verified".
    let again = owner.get("/teams/acme/credentials/private").await;
    assert!(!again.body.contains("Verified</strong>"));
    assert!(again.body.contains("✓ ok"));

    // A wrong confirmation does not delete.
    let refused = owner
        .call::<DeleteCredential>(&[("team", "acme"), ("name", "private"), ("confirm", "nope")])
        .await;
    assert_eq!(refused.json()["field"], "confirm");
    let deleted = owner
        .call::<DeleteCredential>(&[
            ("team", "acme"),
            ("name", "private"),
            ("confirm", "private"),
        ])
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        owner.get("/teams/acme/credentials/private").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn each_role_sees_only_its_controls_and_never_a_secret() {
    let app = TestApp::sqlite().with_team().start().await;
    let mut owner = app.signed_in(OWNER).await;
    let created = owner
        .call::<CreateCredential>(&[
            ("team", "acme"),
            ("name", "ghcr"),
            ("registry", "ghcr.io"),
            ("username", "bot"),
            ("secret", "ghp_pagesecret123"),
            ("note", "rotates quarterly"),
        ])
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);

    let cases = [
        (OWNER, true, true, true),
        (DEPLOYER, false, true, false),
        (VIEWER, false, false, false),
    ];
    for (email, new_button, verify_form, edit_form) in cases {
        let mut browser = app.signed_in(email).await;
        let list = browser.get("/teams/acme/credentials").await;
        assert_eq!(list.status, StatusCode::OK, "{email}");
        assert!(
            list.body.contains("ghcr.io") && list.body.contains("bot"),
            "{email} sees the list"
        );
        assert_eq!(
            list.body.contains(">New credential<"),
            new_button,
            "{email}"
        );
        let page = browser.get("/teams/acme/credentials/ghcr").await;
        assert_eq!(
            page.body.contains(">Verify</button>"),
            verify_form,
            "{email}"
        );
        assert_eq!(page.body.contains("Save changes"), edit_form, "{email}");
        assert_eq!(
            page.body.contains("Delete credential"),
            edit_form,
            "{email}"
        );
        assert!(
            !list.body.contains("ghp_pagesecret123") && !page.body.contains("ghp_pagesecret123")
        );
        let new_page = browser.get("/teams/acme/credentials/new").await;
        assert_eq!(
            new_page.body.contains("Save credential"),
            new_button,
            "{email}"
        );
    }
    let mut outsider = app.signed_in(OUTSIDER).await;
    assert_eq!(
        outsider.get("/teams/acme/credentials").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider.get("/teams/acme/credentials/ghcr").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        outsider.get("/teams/acme/audit").await.status,
        StatusCode::NOT_FOUND
    );
    let audit = owner.get("/teams/acme/audit").await;
    assert!(audit.body.contains("credential.create") && audit.body.contains(OWNER));
}

#[tokio::test]
async fn editing_without_a_new_secret_keeps_the_stored_one() {
    let app = TestApp::sqlite().with_team().start().await;
    let mut owner = app.signed_in(OWNER).await;
    owner
        .call::<CreateCredential>(&[
            ("team", "acme"),
            ("name", "ghcr"),
            ("registry", "ghcr.io"),
            ("username", "bot"),
            ("secret", "first-secret"),
            ("note", ""),
        ])
        .await;
    let before = app.store.credential_secret(1).await.unwrap();
    let edited = owner
        .call::<UpdateCredential>(&[
            ("team", "acme"),
            ("current", "ghcr"),
            ("name", "ghcr-prod"),
            ("registry", "ghcr.io"),
            ("username", "deploy-bot"),
            ("secret", ""),
            ("note", "owned by platform"),
        ])
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let after = app.store.credential_secret(1).await.unwrap();
    assert_eq!(before.value, after.value, "the secret was kept");
    let page = owner.get("/teams/acme/credentials/ghcr-prod").await;
    assert!(page.body.contains("deploy-bot") && page.body.contains("renamed from ghcr"));
}
