//! Sign-up, sign-in, sessions, CSRF, invitations and API tokens, through the real router.

mod support;

use app::serverfns::{members::*, session::*, tokens::*};
use axum::http::StatusCode;
use domain::Role;
use leptos::server_fn::ServerFn;
use support::*;

#[tokio::test]
async fn signing_up_creates_an_owned_team_and_signs_in() {
    let app = TestApp::sqlite().start().await;
    let mut browser = app.browser();
    let response = browser
        .call::<SignUp>(&[
            ("email", "Ada@Example.com"),
            ("password", PASSWORD),
            ("team_name", "Acme Corp"),
            ("team_handle", "acme"),
        ])
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let home = browser.get("/").await;
    assert_eq!(home.location(), Some("/teams/acme"));
    let team = browser.get("/teams/acme").await;
    assert!(team.body.contains("Acme Corp"));
    assert!(
        team.body.contains("ada@example.com"),
        "e-mail shown lower-cased"
    );
}

#[tokio::test]
async fn sign_up_names_the_field_that_is_wrong() {
    let app = TestApp::sqlite().start().await;
    app.owner("taken@example.com", "taken").await;
    let cases = [
        (("nobody", PASSWORD, "acme"), "email"),
        (("a@example.com", "short", "acme"), "password"),
        (("a@example.com", PASSWORD, "Acme"), "team_handle"),
        (("taken@example.com", PASSWORD, "acme"), "email"),
        (("b@example.com", PASSWORD, "taken"), "team_handle"),
    ];
    for ((email, password, handle), field) in cases {
        let mut browser = app.browser();
        let response = browser
            .call::<SignUp>(&[
                ("email", email),
                ("password", password),
                ("team_name", "Acme"),
                ("team_handle", handle),
            ])
            .await;
        let body = response.json();
        assert_eq!(body["field"], field, "{email} {handle}: {}", response.body);
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_plain_form_post_redirects_back_with_the_error_shown_on_the_page() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.browser();
    let token = browser.csrf_token("/signin").await;
    let response = browser
        .post_form(
            SignIn::PATH,
            &[
                ("csrf_token", &token),
                ("email", "ada@example.com"),
                ("password", "wrong password!"),
            ],
            true,
            Some("http://berth.test/signin"),
        )
        .await;
    assert_eq!(response.status, StatusCode::FOUND);
    let location = response
        .location()
        .unwrap()
        .replace("http://berth.test", "");
    assert!(location.starts_with("/signin?"), "{location}");
    let page = browser.get(&location).await;
    assert!(page
        .body
        .contains("That e-mail and password do not match an account."));
    // The message is tied to the password field for assistive technology.
    assert!(page
        .body
        .contains("aria-describedby=\"field-password-error\""));
    assert!(page.body.contains("aria-invalid=\"true\""));
}

#[tokio::test]
async fn session_cookies_are_http_only_and_same_site_lax() {
    let app = TestApp::sqlite().start().await;
    let mut browser = app.browser();
    let page = browser.get("/signin").await;
    let cookie = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-HTTP default: {cookie}");
}

#[tokio::test]
async fn signing_in_changes_the_session_id_and_signing_out_ends_it() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.browser();
    browser.get("/signin").await;
    let before = browser.cookie.clone();
    let response = browser
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_ne!(
        browser.cookie, before,
        "a session id planted before sign-in must not survive it"
    );
    assert_eq!(browser.get("/teams/acme").await.status, StatusCode::OK);
    let stolen = browser.cookie.clone();
    assert_eq!(browser.call::<SignOut>(&[]).await.status, StatusCode::OK);
    let mut thief = app.browser();
    thief.cookie = stolen;
    assert_eq!(thief.get("/teams/acme").await.location(), Some("/signin"));
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_with_a_clear_message() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.browser();
    for _ in 0..5 {
        let response = browser
            .call::<SignIn>(&[
                ("email", "ada@example.com"),
                ("password", "not the password"),
            ])
            .await;
        assert_eq!(response.json()["field"], "password");
    }
    let response = browser
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(
        error_kind(&response).as_deref(),
        Some("throttled"),
        "{}",
        response.body
    );
    assert!(response.json()["message"]
        .as_str()
        .unwrap()
        .contains("Wait 15 minutes"));
}

#[tokio::test]
async fn state_changing_requests_without_the_csrf_token_are_refused() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.signed_in("ada@example.com").await;
    let fields = [
        ("team", "acme"),
        ("email", "mallory@example.com"),
        ("role", "owner"),
    ];
    // No token.
    let response = browser
        .post_form(AddMember::PATH, &fields, false, None)
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // Another session's token.
    let other = app.browser().any_csrf_token().await;
    let mut with_other = vec![("csrf_token", other.as_str())];
    with_other.extend_from_slice(&fields);
    assert_eq!(
        browser
            .post_form(AddMember::PATH, &with_other, false, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The right token, but the browser says the form is on another site.
    let token = browser.any_csrf_token().await;
    let body = format!("csrf_token={token}&team=acme&email=mallory%40example.com&role=owner");
    let request = axum::http::Request::post(AddMember::PATH)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", browser.cookie.clone().unwrap())
        .header("sec-fetch-site", "cross-site")
        .body(axum::body::Body::from(body))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::FORBIDDEN);
    let members = app.store.members(1).await.unwrap();
    assert!(
        members.iter().all(|m| m.email != "mallory@example.com"),
        "nothing was added"
    );
}

#[tokio::test]
async fn an_invited_member_sets_a_password_through_the_link_once() {
    let app = TestApp::sqlite().start().await;
    app.owner(OWNER, "acme").await;
    let mut owner = app.signed_in(OWNER).await;
    let response = owner
        .call::<AddMember>(&[
            ("team", "acme"),
            ("email", "new@example.com"),
            ("role", "viewer"),
        ])
        .await;
    let url = response.json()["InviteLink"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://berth.test/invite/inv_"), "{url}");
    let path = url.trim_start_matches("http://berth.test");
    let token = path.trim_start_matches("/invite/");

    let mut invited = app.browser();
    let page = invited.get(path).await;
    assert!(page.body.contains("new@example.com") && page.body.contains("acme"));
    let accept = invited
        .call::<AcceptInvite>(&[("token", token), ("password", PASSWORD)])
        .await;
    assert_eq!(accept.status, StatusCode::OK, "{}", accept.body);
    let members = invited.get("/teams/acme/members").await;
    assert!(members
        .body
        .contains("Only owners can add or remove members"));

    let mut again = app.browser();
    let reuse = again
        .call::<AcceptInvite>(&[("token", token), ("password", "another password")])
        .await;
    assert_eq!(reuse.json()["field"], "token");
    assert!(again.get(path).await.body.contains("no longer valid"));
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed_or_demoted() {
    let app = TestApp::sqlite().start().await;
    let owner = app.owner(OWNER, "acme").await.to_string();
    let mut browser = app.signed_in(OWNER).await;
    let remove = browser
        .call::<RemoveMember>(&[("team", "acme"), ("user_id", &owner)])
        .await;
    assert_eq!(error_kind(&remove).as_deref(), Some("conflict"));
    assert!(remove.json()["message"]
        .as_str()
        .unwrap()
        .contains("at least one owner"));
    let demote = browser
        .call::<ChangeRole>(&[("team", "acme"), ("user_id", &owner), ("role", "viewer")])
        .await;
    assert_eq!(error_kind(&demote).as_deref(), Some("conflict"));
    // With a second owner, the first may step down.
    let second = app.member("second@example.com", "acme", Role::Owner).await;
    assert!(second > 0);
    let demote = browser
        .call::<ChangeRole>(&[("team", "acme"), ("user_id", &owner), ("role", "viewer")])
        .await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.body);
}

#[tokio::test]
async fn api_tokens_are_shown_once_work_and_stop_working_when_revoked() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.signed_in("ada@example.com").await;
    let created = browser
        .call::<CreateApiToken>(&[("name", "CI deploys")])
        .await;
    let token = created.json()["NewToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("berth_"));
    let me = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user"]["email"], "ada@example.com");
    assert_eq!(me.json()["teams"][0]["role"], "owner");
    // The list shows the name and when it was used, never the token.
    let page = browser.get("/settings/tokens").await;
    assert!(page.body.contains("CI deploys"));
    assert!(
        !page.body.contains(&token),
        "the token must not be shown again"
    );
    let id = app.store.api_tokens(1).await.unwrap()[0].id.to_string();
    assert_eq!(
        browser.call::<RevokeApiToken>(&[("id", &id)]).await.status,
        StatusCode::OK
    );
    let me = app.api("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.json()["error"]["kind"], "unauthenticated");
    assert!(me.headers.get("www-authenticate").is_some());
}

#[tokio::test]
async fn a_token_made_with_a_plain_form_post_is_shown_on_the_next_page_only() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.signed_in("ada@example.com").await;
    let csrf = browser.any_csrf_token().await;
    let response = browser
        .post_form(
            CreateApiToken::PATH,
            &[("csrf_token", &csrf), ("name", "laptop")],
            true,
            Some("http://berth.test/settings/tokens"),
        )
        .await;
    assert_eq!(response.status, StatusCode::FOUND);
    let first = browser.get("/settings/tokens").await;
    assert!(
        first.body.contains("berth_"),
        "shown once after the redirect"
    );
    let second = browser.get("/settings/tokens").await;
    let shown = |body: &str| body.matches("value=\"berth_").count();
    assert_eq!(shown(&second.body), 0, "and never again");
    assert_eq!(shown(&first.body), 1);
}

#[tokio::test]
async fn the_api_answers_validation_errors_with_the_field() {
    let app = TestApp::sqlite().start().await;
    let owner = app.owner("ada@example.com", "acme").await;
    let token = app.token_for(owner).await;
    let bad_email = app
        .api(
            "POST",
            "/api/v1/teams/acme/members",
            Some(&token),
            Some(serde_json::json!({"email": "nope", "role": "viewer"})),
        )
        .await;
    assert_eq!(bad_email.status.as_u16(), 422);
    assert_eq!(bad_email.json()["error"]["field"], "email");
    let bad_role = app
        .api(
            "POST",
            "/api/v1/teams/acme/members",
            Some(&token),
            Some(serde_json::json!({"email": "a@example.com", "role": "admin"})),
        )
        .await;
    assert_eq!(bad_role.json()["error"]["field"], "role");
    assert!(bad_role.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("owner, deployer or viewer"));
    let missing = app
        .api(
            "POST",
            "/api/v1/teams/acme/members",
            Some(&token),
            Some(serde_json::json!({"email": "a@example.com"})),
        )
        .await;
    assert_eq!(missing.status.as_u16(), 422);
    assert_eq!(missing.json()["error"]["field"], "body");
    let twice = app
        .api(
            "POST",
            "/api/v1/teams/acme/members",
            Some(&token),
            Some(serde_json::json!({"email": "ada@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(twice.status.as_u16(), 409);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::sqlite().start().await;
    assert_eq!(
        app.api("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
    let ready = app.api("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
    app.store.close().await;
    assert_eq!(
        app.api("GET", "/readyz", None, None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_member_of_several_teams_can_switch_between_them() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    app.owner("bob@example.com", "globex").await;
    app.member("ada@example.com", "globex", Role::Viewer).await;
    let mut ada = app.signed_in("ada@example.com").await;
    let page = ada.get("/teams/acme").await;
    assert!(
        page.body.contains("href=\"/teams/globex\""),
        "the switcher lists every team"
    );
    let other = ada.get("/teams/globex").await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other
        .body
        .contains("Your role: <span class=\"badge badge-role\">viewer"));
}
