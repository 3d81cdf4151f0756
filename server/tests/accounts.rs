//! Sign-up, sign-in, sessions, CSRF, invitations and API tokens, through the real router.

mod support;

use app::serverfns::{members::*, session::*, tokens::*};
use axum::http::StatusCode;
use domain::Role;
use leptos::server_fn::ServerFn;
use service::SignUpPolicy;
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
async fn a_team_handle_left_empty_is_made_from_the_team_name() {
    let app = TestApp::sqlite().start().await;
    let mut browser = app.browser();
    let response = browser
        .call::<SignUp>(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("team_name", "My Web Team"),
            ("team_handle", ""),
        ])
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        browser.get("/").await.location(),
        Some("/teams/my-web-team")
    );
}

#[tokio::test]
async fn sign_up_names_the_field_that_is_wrong() {
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .start()
        .await;
    app.owner("taken@example.com", "taken").await;
    let cases = [
        (("nobody", PASSWORD, "acme"), "email"),
        (("a@example.com", "short", "acme"), "password"),
        (("a@example.com", PASSWORD, "Acme"), "team_handle"),
        (("b@example.com", PASSWORD, "taken"), "team_handle"),
        // An address that has an account with a taken handle: still about the handle.
        (("taken@example.com", PASSWORD, "taken"), "team_handle"),
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
async fn sign_up_names_every_wrong_field_at_once_with_and_without_javascript() {
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .start()
        .await;
    let fields = [
        ("email", "nobody"),
        ("password", "short"),
        ("team_name", "Acme"),
        ("team_handle", "Not A Handle"),
    ];
    // The server function (what the console's JavaScript calls): one answer, every field.
    let mut browser = app.browser();
    let response = browser.call::<SignUp>(&fields).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.json();
    assert_eq!(body["kind"], "invalid_fields", "{}", response.body);
    let named: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["email", "password", "team_handle"]);

    // A plain form post: the page it returns to shows each message next to its field and
    // fills in what was typed, never the password.
    let token = browser.csrf_token("/signup").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend(fields);
    let posted = browser
        .post_form(SignUp::PATH, &form, true, Some("http://berth.test/signup"))
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let page = browser.get("/signup").await;
    for (field, message_part) in [
        ("email", "e-mail"),
        ("password", "characters"),
        ("team_handle", "not-a-handle"),
    ] {
        let error = page
            .body
            .split(&format!("id=\"field-{field}-error\""))
            .nth(1)
            .unwrap_or_else(|| panic!("{field}'s error line: {}", page.body))
            .split("</p>")
            .next()
            .unwrap();
        assert!(
            error.to_lowercase().contains(message_part),
            "{field}: {error}"
        );
    }
    assert_eq!(page.body.matches("aria-invalid=\"true\"").count(), 3);
    assert!(page.body.contains("value=\"nobody\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"Not A Handle\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("value=\"short\""), "{}", page.body);
    // The API answers the same: `field` is the first, `problems` lists them all.
    let owner = app.owner("owner@example.com", "acme").await;
    let token = app.token_for(owner).await;
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            &token,
            Some(serde_json::json!({
                "name": "Not A Name", "registry": "not a host", "kind": "basic",
                "username": "", "secret": ""
            })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    let error = &api.json()["error"];
    assert_eq!(error["field"], "name", "{}", api.body);
    assert_eq!(
        problem_fields(&api),
        ["name", "registry", "username", "secret"]
    );
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &token,
            Some(serde_json::json!({ "handle": "Bad Handle", "method": "dockerfile" })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(problem_fields(&api), ["handle", "git_url"], "{}", api.body);
}

/// The field names of an API refusal's `problems`, in order.
fn problem_fields(api: &TestResponse) -> Vec<String> {
    api.json()["error"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems in {}", api.body))
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn git_sources_deploys_and_invitations_name_every_wrong_field_at_once() {
    let app = TestApp::sqlite().start().await;
    let owner = app.owner("owner@example.com", "acme").await;
    let token = app.token_for(owner).await;
    // A Dockerfile app's git source: the URL, the Dockerfile's path and the login together.
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &token,
            Some(serde_json::json!({
                "handle": "web", "method": "dockerfile",
                "git": { "url": "not a url", "dockerfile": "../../etc/passwd", "context": "/abs",
                         "password": "a-token-without-a-user" }
            })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(
        problem_fields(&api),
        ["git_url", "dockerfile", "context", "git_username"]
    );
    assert!(!api.body.contains("a-token-without-a-user"), "{}", api.body);
    // An Aptible app's two handles together (before Aptible is asked anything).
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &token,
            Some(serde_json::json!({
                "handle": "Bad Handle", "method": "image",
                "platform": { "kind": "aptible", "environment": "Not OK", "app": "" }
            })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(
        problem_fields(&api),
        ["handle", "aptible_environment", "aptible_app"]
    );
    // A deploy: the image and the credentials given with it.
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &token,
            Some(serde_json::json!({ "handle": "img", "method": "image" })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/img/deploys",
            &token,
            Some(serde_json::json!({
                "image": "Not An Image!", "registry_username": "robot"
            })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(problem_fields(&api), ["image", "registry_password"]);
    // An invitation: the address and the role.
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/members",
            &token,
            Some(serde_json::json!({ "email": "nobody", "role": "emperor" })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(problem_fields(&api), ["email", "role"]);
    // An ECR credential: the common fields and the AWS ones together.
    let api = app
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            &token,
            Some(serde_json::json!({
                "name": "Not A Name", "kind": "ecr",
                "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "access_key_id": "nope", "secret_access_key": "", "region": "mars-1",
                "external_id": "an-id-without-a-role", "expires_on": "someday"
            })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(
        problem_fields(&api),
        [
            "name",
            "access_key_id",
            "secret_access_key",
            "region",
            "external_id",
            "expires_on"
        ]
    );
    // Editing a credential: the name, the note, the expiry and the login together.
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            &token,
            Some(serde_json::json!({
                "name": "hub", "registry": "registry.example.com", "kind": "basic",
                "username": "robot", "secret": "a-registry-secret"
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let api = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/credentials/hub",
            &token,
            Some(serde_json::json!({
                "name": "Not A Name", "note": "x".repeat(600), "expires_on": "someday",
                "registry": "elsewhere.example.com"
            })),
        )
        .await;
    assert_eq!(api.status.as_u16(), 422, "{}", api.body);
    assert_eq!(
        problem_fields(&api),
        ["name", "note", "expires_on", "secret"],
        "a new registry needs the secret again, named with the rest"
    );
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
    // Post/redirect/get: the error waits in the session, not in the address.
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.location(), Some("/signin"));
    let page = browser.get("/signin").await;
    assert!(page
        .body
        .contains("That e-mail and password do not match an account."));
    // The message is tied to the password field for assistive technology.
    assert!(page
        .body
        .contains("aria-describedby=\"field-password-error\""));
    assert!(page.body.contains("aria-invalid=\"true\""));
    // What was typed is there again, but never the password.
    assert!(
        page.body.contains("value=\"ada@example.com\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("wrong password!"));
    // Shown once: a reload is a fresh form.
    let again = browser.get("/signin").await;
    assert!(!again
        .body
        .contains("That e-mail and password do not match an account."));
    assert!(!again.body.contains("value=\"ada@example.com\""));
    // The password was not kept in the session either.
    app.assert_no_leaks(&["wrong password!"]);
}

#[tokio::test]
async fn session_cookies_are_http_only_and_same_site_lax() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.browser();
    let page = browser.get("/signin").await;
    let set_cookies = |response: &support::TestResponse| -> Vec<String> {
        response
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    // Before signing in: the form token's cookie only.
    let visitor = set_cookies(&page);
    assert_eq!(visitor.len(), 1, "{visitor:?}");
    let signed_in = browser
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    let session = set_cookies(&signed_in);
    assert!(visitor[0].starts_with("berth_form="), "{visitor:?}");
    assert!(
        session.iter().any(|c| c.starts_with("berth_session=")),
        "{session:?}"
    );
    for cookie in visitor.iter().chain(&session) {
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain-HTTP default: {cookie}");
    }
}

#[tokio::test]
async fn reading_pages_without_signing_in_stores_no_session() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    // Browsers that keep nothing between requests, as crawlers and scripts do: each page
    // is answered with a form token in a cookie, and nothing is written.
    for page in [
        "/signin",
        "/signup",
        "/",
        "/teams/acme",
        "/nope",
        "/signin?signed_up=1",
    ] {
        for _ in 0..3 {
            let response = app.browser().get(page).await;
            let cookies: Vec<_> = response.headers.get_all("set-cookie").iter().collect();
            assert!(
                cookies
                    .iter()
                    .all(|c| c.to_str().unwrap().starts_with("berth_form=")),
                "{page}: {cookies:?}"
            );
        }
    }
    assert_eq!(app.store.stored_sessions().await.unwrap(), 0);

    // One browser keeps its cookie: the same token, under a new mask on every page, and
    // no new cookie.
    let mut browser = app.browser();
    let first = browser.csrf_token("/signin").await;
    let form_cookie = browser.form_cookie.clone().expect("a form cookie");
    let again = browser.get("/signin").await;
    assert!(again.headers.get("set-cookie").is_none());
    let second = support::csrf_from(&again.body).unwrap();
    assert_ne!(first, second);
    assert_eq!(browser.form_cookie, Some(form_cookie));
    assert_eq!(app.store.stored_sessions().await.unwrap(), 0);

    // Signing in stores the one session, with a token of its own.
    let response = browser
        .post_form(
            SignIn::PATH,
            &[
                ("csrf_token", &second),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
            false,
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(app.store.stored_sessions().await.unwrap(), 1);
    let signed_in_token = browser.csrf_token("/settings/tokens").await;
    let form = [("csrf_token", second.as_str()), ("name", "ci")];
    assert_eq!(
        browser
            .post_form(CreateApiToken::PATH, &form, false, None)
            .await
            .status,
        StatusCode::FORBIDDEN,
        "the visitor's token is worth nothing once a session has its own"
    );
    let form = [("csrf_token", signed_in_token.as_str()), ("name", "ci")];
    assert_eq!(
        browser
            .post_form(CreateApiToken::PATH, &form, false, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_visitor_form_needs_the_token_of_its_own_cookie() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let sign_in = |token: &str| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("csrf_token", token),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ])
            .finish()
    };
    let post = |cookie: Option<String>, body: String| {
        let mut request = axum::http::Request::post(SignIn::PATH)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.body(axum::body::Body::from(body)).unwrap()
    };
    let mut mine = app.browser();
    let my_token = mine.csrf_token("/signin").await;
    let mut theirs = app.browser();
    let their_token = theirs.csrf_token("/signin").await;

    // Without the cookie, with another browser's cookie, with a cookie Berth could not have
    // made, or with none of the token: refused, and nothing stored.
    for (cookie, token) in [
        (None, my_token.clone()),
        (theirs.form_cookie.clone(), my_token.clone()),
        (mine.form_cookie.clone(), their_token.clone()),
        (Some("berth_form=short".to_owned()), my_token.clone()),
        (mine.form_cookie.clone(), String::new()),
    ] {
        let response = app.send(post(cookie.clone(), sign_in(&token))).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{cookie:?}");
    }
    assert_eq!(app.store.stored_sessions().await.unwrap(), 0);
    // The token with its own cookie signs in.
    let response = app
        .send(post(mine.form_cookie.clone(), sign_in(&my_token)))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(app.store.stored_sessions().await.unwrap(), 1);
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
async fn a_session_in_use_stays_signed_in_and_reading_pages_writes_it_once_a_day() {
    use tower_sessions::{
        cookie::time::{Duration, OffsetDateTime},
        session::Id,
        session_store::SessionStore as _,
    };
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut browser = app.signed_in("ada@example.com").await;
    let cookie = browser.cookie.clone().unwrap();
    let id: Id = cookie
        .strip_prefix("berth_session=")
        .unwrap()
        .parse()
        .unwrap();
    let sessions = app.store.session_store();
    let signed_in = sessions
        .load(&id)
        .await
        .unwrap()
        .expect("stored at sign-in");
    let today = signed_in.data["renewed_on"]
        .as_i64()
        .expect("renewed at sign-in");

    // Reading pages on the day of sign-in writes nothing: no new cookie, the same record.
    for page in [
        "/teams/acme",
        "/teams/acme/history",
        "/teams/acme/members",
        "/settings/tokens",
    ] {
        let response = browser.get(page).await;
        assert_eq!(response.status, StatusCode::OK, "{page}");
        assert!(
            response.headers.get("set-cookie").is_none(),
            "{page} wrote the session back"
        );
    }
    let unchanged = sessions.load(&id).await.unwrap().unwrap();
    assert_eq!(unchanged.expiry_date, signed_in.expiry_date);
    assert_eq!(unchanged.data, signed_in.data);

    // Ten days on (as the database has it; and a session from before the day was kept):
    // the first page of the day starts the fourteen days again, in the database and the
    // cookie, and the pages after it write nothing again.
    for last_renewed in [Some(today - 10), None] {
        let mut aged = signed_in.clone();
        aged.expiry_date = OffsetDateTime::now_utc() + Duration::days(4);
        match last_renewed {
            Some(day) => aged.data.insert("renewed_on".into(), day.into()),
            None => aged.data.remove("renewed_on"),
        };
        sessions.save(&aged).await.unwrap();
        let page = browser.get("/teams/acme").await;
        assert_eq!(page.status, StatusCode::OK);
        let set = page.headers.get("set-cookie").expect("a renewed cookie");
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&cookie), "the same session: {set}");
        assert!(
            set.contains("Max-Age=") || set.contains("Expires="),
            "{set}"
        );
        let renewed = sessions.load(&id).await.unwrap().unwrap();
        assert!(
            renewed.expiry_date > OffsetDateTime::now_utc() + Duration::days(13),
            "{last_renewed:?}: expires {} ",
            renewed.expiry_date
        );
        assert_eq!(renewed.data["user_id"], signed_in.data["user_id"]);
        assert_eq!(renewed.data["renewed_on"].as_i64(), Some(today));
        let next = browser.get("/teams/acme/history").await;
        assert!(next.headers.get("set-cookie").is_none());
    }

    // A session past its expiry is gone, however recently it was renewed.
    let mut expired = signed_in.clone();
    expired.expiry_date = OffsetDateTime::now_utc() - Duration::minutes(1);
    sessions.save(&expired).await.unwrap();
    assert_eq!(browser.get("/teams/acme").await.location(), Some("/signin"));
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

// --- Issue 11, finding 5 (accounts) and the account parts of findings 6 and 8 ---

async fn sign_up_as(
    browser: &mut Browser<'_>,
    email: &str,
    password: &str,
    handle: &str,
    invite: Option<&str>,
) -> TestResponse {
    let mut fields = vec![
        ("email", email),
        ("password", password),
        ("team_name", handle),
        ("team_handle", handle),
    ];
    if let Some(invite) = invite {
        fields.push(("invite", invite));
    }
    browser.call::<SignUp>(&fields).await
}

#[tokio::test]
async fn with_sign_up_closed_only_the_first_account_can_sign_up() {
    // The default: nothing is set.
    let app = TestApp::sqlite().start().await;
    let mut first = app.browser();
    assert!(first.get("/signup").await.body.contains("first account"));
    sign_up_as(&mut first, "ada@example.com", PASSWORD, "acme", None)
        .await
        .expect(200);
    assert_eq!(first.get("/").await.location(), Some("/teams/acme"));

    let mut second = app.browser();
    let page = second.get("/signup").await;
    assert!(
        page.body.contains("Sign-up is closed on this server"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Create account"), "no form is offered");
    let refused = sign_up_as(&mut second, "mallory@example.com", PASSWORD, "evil", None).await;
    assert_eq!(
        error_kind(&refused).as_deref(),
        Some("forbidden"),
        "{}",
        refused.body
    );
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .contains("berth user create"));
    let mallory = domain::Email::parse("mallory@example.com").unwrap();
    assert!(app.store.user_by_email(&mallory).await.unwrap().is_none());
    assert!(!app
        .store
        .team_handle_taken(&domain::TeamHandle::parse("evil").unwrap())
        .await
        .unwrap());
    // An invitation link (for closed as for every mode) still lets people join.
    let mut owner = app.signed_in("ada@example.com").await;
    let invited = owner
        .call::<AddMember>(&[
            ("team", "acme"),
            ("email", "bob@example.com"),
            ("role", "viewer"),
        ])
        .await;
    let url = invited.json()["InviteLink"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();
    app.browser()
        .call::<AcceptInvite>(&[("token", &token), ("password", PASSWORD)])
        .await
        .expect(200);
}

#[tokio::test]
async fn with_sign_up_by_invitation_only_an_invitation_link_signs_up() {
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Invite)
        .start()
        .await;
    app.owner(OWNER, "acme").await;
    let mut owner = app.signed_in(OWNER).await;
    let invited = owner
        .call::<AddMember>(&[
            ("team", "acme"),
            ("email", "new@example.com"),
            ("role", "deployer"),
        ])
        .await;
    let url = invited.json()["InviteLink"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();

    let mut stranger = app.browser();
    assert!(stranger
        .get("/signup")
        .await
        .body
        .contains("Sign-up on this server is by invitation"));
    let refused = sign_up_as(
        &mut stranger,
        "stranger@example.com",
        PASSWORD,
        "mine",
        None,
    )
    .await;
    assert_eq!(
        error_kind(&refused).as_deref(),
        Some("forbidden"),
        "{}",
        refused.body
    );
    let wrong = sign_up_as(
        &mut stranger,
        "other@example.com",
        PASSWORD,
        "mine",
        Some(&token),
    )
    .await;
    assert_eq!(wrong.json()["field"], "email", "{}", wrong.body);
    let forged = sign_up_as(
        &mut stranger,
        "new@example.com",
        PASSWORD,
        "mine",
        Some("inv_forged"),
    )
    .await;
    assert_eq!(forged.json()["field"], "token", "{}", forged.body);

    let mut invitee = app.browser();
    let form = invitee.get(&format!("/signup?invite={token}")).await;
    assert!(form.body.contains("Create account") && form.body.contains(&token));
    sign_up_as(
        &mut invitee,
        "new@example.com",
        PASSWORD,
        "mine",
        Some(&token),
    )
    .await
    .expect(200);
    assert_eq!(invitee.get("/teams/mine").await.status, StatusCode::OK);
    assert_eq!(invitee.get("/teams/acme").await.status, StatusCode::OK);
    // The link is used up.
    let again = sign_up_as(
        &mut app.browser(),
        "new@example.com",
        PASSWORD,
        "mine2",
        Some(&token),
    )
    .await;
    assert_eq!(again.json()["field"], "token", "{}", again.body);
}

/// A page without what differs on every load (the script nonce, the session's CSRF token).
fn without_per_page_values(page: &str) -> String {
    let mut page = page.to_owned();
    for marker in ["nonce=\"", "name=\"csrf_token\" value=\""] {
        if let Some(start) = page.find(marker).map(|i| i + marker.len()) {
            let end = start + page[start..].find('"').unwrap();
            let value = page[start..end].to_owned();
            if !value.is_empty() {
                page = page.replace(&value, "");
            }
        }
    }
    page
}

#[tokio::test]
async fn open_sign_up_answers_the_same_for_an_existing_address() {
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .start()
        .await;
    app.owner("ada@example.com", "acme").await;
    let attacker_password = "the attacker's own password";

    // With JavaScript: the same answer, and nobody is signed in.
    let mut existing = app.browser();
    let mut fresh = app.browser();
    let a = sign_up_as(
        &mut existing,
        "ada@example.com",
        attacker_password,
        "evil",
        None,
    )
    .await;
    let b = sign_up_as(
        &mut fresh,
        "new@example.com",
        attacker_password,
        "fresh",
        None,
    )
    .await;
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers.contains_key("set-cookie"),
        b.headers.contains_key("set-cookie")
    );
    for browser in [&mut existing, &mut fresh] {
        assert_eq!(browser.get("/").await.location(), Some("/signin"));
    }

    // Without JavaScript: the same redirect, to the same page.
    let mut answers = Vec::new();
    for (email, handle) in [("ada@example.com", "evil2"), ("new2@example.com", "fresh2")] {
        let mut browser = app.browser();
        let csrf = browser.csrf_token("/signup").await;
        let response = browser
            .post_form(
                SignUp::PATH,
                &[
                    ("csrf_token", &csrf),
                    ("email", email),
                    ("password", attacker_password),
                    ("team_name", handle),
                    ("team_handle", handle),
                ],
                true,
                Some("http://berth.test/signup"),
            )
            .await;
        assert_eq!(response.status, StatusCode::FOUND, "{}", response.body);
        let location = response.location().unwrap().to_owned();
        let page = browser.get(&location).await;
        answers.push((location, page.status, without_per_page_values(&page.body)));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].2.contains("If the address was new to Berth"));

    // Nothing changed for the existing account: its own password works, the attacker's not.
    app.signed_in("ada@example.com").await;
    let attempt = app
        .browser()
        .call::<SignIn>(&[
            ("email", "ada@example.com"),
            ("password", attacker_password),
        ])
        .await;
    assert_eq!(attempt.json()["field"], "password");
    let evil = domain::TeamHandle::parse("evil").unwrap();
    assert!(!app.store.team_handle_taken(&evil).await.unwrap());
    // The new address has its account and team.
    let mut new = app.browser();
    new.call::<SignIn>(&[
        ("email", "new@example.com"),
        ("password", attacker_password),
    ])
    .await
    .expect(200);
    assert_eq!(new.get("/teams/fresh").await.status, StatusCode::OK);
}

#[tokio::test]
async fn adding_an_existing_account_to_a_team_waits_for_their_consent() {
    let app = TestApp::sqlite().start().await;
    let owner = app.owner(OWNER, "acme").await;
    let owner_token = app.token_for(owner).await;
    let bob = app.owner("bob@example.com", "globex").await;
    let bob_token = app.token_for(bob).await;
    let carol = app.owner("carol@example.com", "initech").await;
    let carol_token = app.token_for(carol).await;

    let added = app
        .call(
            "POST",
            "/api/v1/teams/acme/members",
            &owner_token,
            Some(serde_json::json!({"email": "bob@example.com", "role": "deployer"})),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(added["member"]["pending"], true);
    assert!(added["invite_url"].is_null());

    // Not a member yet: acme is not bob's to see, but the owner sees him as pending.
    app.call("GET", "/api/v1/teams/acme", &bob_token, None)
        .await
        .expect(404);
    let me = app
        .call("GET", "/api/v1/me", &bob_token, None)
        .await
        .expect(200)
        .json();
    assert_eq!(me["teams"].as_array().unwrap().len(), 1, "{me}");
    let members = app
        .call("GET", "/api/v1/teams/acme/members", &owner_token, None)
        .await
        .expect(200)
        .json();
    let row = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "bob@example.com")
        .cloned()
        .unwrap();
    assert_eq!(row["pending"], true);
    // Adding him twice is a conflict, not a second invitation.
    app.call(
        "POST",
        "/api/v1/teams/acme/members",
        &owner_token,
        Some(serde_json::json!({"email": "bob@example.com", "role": "viewer"})),
    )
    .await
    .expect(409);

    // Bob sees the invitation, in the API and on his overview.
    let invitations = app
        .call("GET", "/api/v1/me/invitations", &bob_token, None)
        .await
        .expect(200)
        .json();
    let invitation = invitations["invitations"][0].clone();
    assert_eq!(invitation["team_handle"], "acme");
    assert_eq!(invitation["role"], "deployer");
    assert_eq!(invitation["invited_by"], OWNER);
    let id = invitation["id"].as_i64().unwrap();
    let mut bob_browser = app.signed_in("bob@example.com").await;
    let overview = bob_browser.get("/teams/globex").await;
    assert!(overview.body.contains("Invitations") && overview.body.contains("Accept"));

    // Nobody else can answer it.
    app.call(
        "POST",
        &format!("/api/v1/invitations/{id}/accept"),
        &carol_token,
        None,
    )
    .await
    .expect(404);
    app.call("GET", "/api/v1/teams/acme", &carol_token, None)
        .await
        .expect(404);

    // Bob accepts in the console: now he is a deployer of acme.
    bob_browser
        .call::<AnswerInvitation>(&[("id", &id.to_string()), ("answer", "accept")])
        .await
        .expect(200);
    let team = app
        .call("GET", "/api/v1/teams/acme", &bob_token, None)
        .await
        .expect(200)
        .json();
    assert_eq!(team["team"]["role"], "deployer");
    app.call(
        "POST",
        &format!("/api/v1/invitations/{id}/accept"),
        &bob_token,
        None,
    )
    .await
    .expect(404);

    // Carol declines through the API: she never joins.
    app.call(
        "POST",
        "/api/v1/teams/acme/members",
        &owner_token,
        Some(serde_json::json!({"email": "carol@example.com", "role": "owner"})),
    )
    .await
    .expect(201);
    let carol_invitation = app
        .call("GET", "/api/v1/me/invitations", &carol_token, None)
        .await
        .json()["invitations"][0]["id"]
        .as_i64()
        .unwrap();
    let declined = app
        .call(
            "POST",
            &format!("/api/v1/invitations/{carol_invitation}/decline"),
            &carol_token,
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(declined["accepted"], false);
    app.call("GET", "/api/v1/teams/acme", &carol_token, None)
        .await
        .expect(404);
    let members = app
        .call("GET", "/api/v1/teams/acme/members", &owner_token, None)
        .await
        .json();
    assert!(
        !members.to_string().contains("carol@example.com"),
        "{members}"
    );
}

/// Someone in no team lands on a page that says so, with the invitations waiting for them
/// (read by the page itself: the frame of every page does not read invitations), and
/// once they accept, on the team's overview.
#[tokio::test]
async fn someone_in_no_team_sees_their_invitations_on_the_home_page() {
    let app = TestApp::sqlite().start().await;
    let owner = app.owner(OWNER, "acme").await;
    app.owner("carol@example.com", "globex").await;
    let bob = app.member("bob@example.com", "globex", Role::Viewer).await;
    let globex = app
        .store
        .team_access(bob, "globex")
        .await
        .unwrap()
        .unwrap()
        .team_id;
    app.store.remove_member(globex, bob).await.unwrap();

    let mut browser = app.signed_in("bob@example.com").await;
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("You are not in a team"), "{}", home.body);
    assert!(
        !home.body.contains("Invitations"),
        "none yet: {}",
        home.body
    );

    app.call(
        "POST",
        "/api/v1/teams/acme/members",
        &app.token_for(owner).await,
        Some(serde_json::json!({"email": "bob@example.com", "role": "deployer"})),
    )
    .await
    .expect(201);
    let home = browser.get("/").await;
    assert!(home.body.contains("You are not in a team"), "{}", home.body);
    assert!(
        home.body.contains("Invitations") && home.body.contains("invites you to join"),
        "{}",
        home.body
    );
    assert!(home.body.contains("<code>acme</code>"), "{}", home.body);
    let id = app
        .call(
            "GET",
            "/api/v1/me/invitations",
            &app.token_for(bob).await,
            None,
        )
        .await
        .json()["invitations"][0]["id"]
        .as_i64()
        .unwrap();
    browser
        .call::<AnswerInvitation>(&[("id", &id.to_string()), ("answer", "accept")])
        .await
        .expect(200);
    assert_eq!(browser.get("/").await.location(), Some("/teams/acme"));
    let overview = browser.get("/teams/acme").await;
    assert!(!overview.body.contains("invites you to join"));
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_owner_out_from_another() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut attacker = app.browser().connecting_from("203.0.113.66");
    for _ in 0..5 {
        let response = attacker
            .call::<SignIn>(&[("email", "ada@example.com"), ("password", "a wrong guess!")])
            .await;
        assert_eq!(response.json()["field"], "password", "{}", response.body);
    }
    let locked = attacker
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(
        error_kind(&locked).as_deref(),
        Some("throttled"),
        "{}",
        locked.body
    );
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers.contains_key("retry-after"));

    let mut owner = app.browser().connecting_from("198.51.100.7");
    owner
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .await
        .expect(200);
    assert_eq!(owner.get("/teams/acme").await.status, StatusCode::OK);
}

async fn guess(browser: &mut Browser<'_>) -> TestResponse {
    browser
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", "a wrong guess!")])
        .await
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    // Behind a trusted proxy: each client address has its own count.
    let app = TestApp::sqlite()
        .with_trusted_proxies("127.0.0.1/32")
        .start()
        .await;
    app.owner("ada@example.com", "acme").await;
    let mut via_proxy = app.browser().connecting_from("127.0.0.1");
    via_proxy.forwarded_for = Some("203.0.113.66".into());
    for _ in 0..5 {
        guess(&mut via_proxy).await;
    }
    assert_eq!(
        error_kind(&guess(&mut via_proxy).await).as_deref(),
        Some("throttled")
    );
    via_proxy.forwarded_for = Some("198.51.100.7".into());
    via_proxy
        .call::<SignIn>(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .await
        .expect(200);

    // From anyone else the header is ignored: a new address in it does not reset the count.
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let mut direct = app.browser().connecting_from("127.0.0.1");
    direct.forwarded_for = Some("203.0.113.66".into());
    for _ in 0..5 {
        guess(&mut direct).await;
    }
    direct.forwarded_for = Some("198.51.100.7".into());
    assert_eq!(
        error_kind(&guess(&mut direct).await).as_deref(),
        Some("throttled")
    );
}

#[tokio::test]
async fn the_sessions_table_holds_no_session_id() {
    let app = TestApp::sqlite().start().await;
    app.owner("ada@example.com", "acme").await;
    let browser = app.signed_in("ada@example.com").await;
    let cookie = browser.cookie.clone().unwrap();
    let id = cookie.strip_prefix("berth_session=").unwrap().to_owned();
    app.store.close().await;
    let mut database = Vec::new();
    for suffix in ["", "-wal"] {
        database
            .extend(std::fs::read(app.dir.join(format!("berth.db{suffix}"))).unwrap_or_default());
    }
    let holds = |needle: &str| {
        database
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(
        !holds(&id),
        "the sessions table holds the cookie's session id"
    );
    // The session is there, under the hash of its id.
    let stored = store::stored_session_id(&id.parse().unwrap()).to_string();
    assert!(holds(&stored), "no session stored under the id's hash");
}

#[tokio::test]
async fn sign_ups_are_throttled_per_address_with_429_and_retry_after() {
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .start()
        .await;
    let mut from_a = app.browser().connecting_from("203.0.113.5");
    for i in 0..5 {
        sign_up_as(
            &mut from_a,
            &format!("p{i}@example.com"),
            PASSWORD,
            &format!("team-{i}"),
            None,
        )
        .await
        .expect(200);
    }
    let refused = sign_up_as(&mut from_a, "p5@example.com", PASSWORD, "team-5", None).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12 * 60).contains(&wait), "{wait}");
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Too many sign-ups from this address"));
    // Another address is not held up.
    sign_up_as(
        &mut app.browser().connecting_from("198.51.100.5"),
        "q@example.com",
        PASSWORD,
        "team-q",
        None,
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn credential_checks_and_deploys_are_throttled_with_429_and_retry_after() {
    let app = TestApp::sqlite().with_team().start().await;
    // Verifications: 10 at once per person and team, then one every 6 seconds.
    for _ in 0..10 {
        app.call(
            "POST",
            "/api/v1/teams/acme/credentials/none/verify",
            &app.deployer(),
            Some(serde_json::json!({})),
        )
        .await
        .expect(404);
    }
    let refused = app
        .call(
            "POST",
            "/api/v1/teams/acme/credentials/none/verify",
            &app.deployer(),
            Some(serde_json::json!({})),
        )
        .await
        .expect(429);
    assert_eq!(refused.json()["error"]["kind"], "throttled");
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("credential checks"));
    assert!(refused.headers.contains_key("retry-after"));
    // Another person is not held up.
    app.call(
        "POST",
        "/api/v1/teams/acme/credentials/none/verify",
        &app.owner_token(),
        Some(serde_json::json!({})),
    )
    .await
    .expect(404);

    // Deploys: 20 at once per person, then one every 3 seconds.
    let deploy = || app.deploy("missing", serde_json::json!({"image": "example.com/x:1"}));
    for _ in 0..20 {
        deploy().await.expect(404);
    }
    let refused = deploy().await.expect(429);
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("deploys"));
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&wait), "{wait}");
}

// --- Issue 11, finding 5: with an SMTP server, open sign-up proves the address ---

/// A real SMTP server on loopback (Debian's python3-aiosmtpd) that keeps every message it
/// receives in a Maildir.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (scripts/setup.sh installs it)");
        let sink = SmtpSink { child, port, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return sink;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message delivered to `to` so far, oldest first, with quoted-printable soft
    /// line breaks undone.
    fn messages_to(&self, to: &str) -> Vec<String> {
        let mut messages: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(self.dir.path().join("mail").join("new"))
                .map(|entries| {
                    entries
                        .map(|e| e.unwrap().path())
                        .map(|path| {
                            let text = std::fs::read_to_string(&path).unwrap();
                            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                            (modified, text)
                        })
                        .collect()
                })
                .unwrap_or_default();
        messages.sort();
        messages
            .into_iter()
            .map(|(_, text)| {
                text.replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .filter(|text| text.contains(&format!("X-RcptTo: {to}")))
            .collect()
    }

    /// The confirmation link's token in the latest message to `to`.
    fn last_token_for(&self, to: &str) -> String {
        let messages = self.messages_to(to);
        let last = messages.last().unwrap_or_else(|| panic!("no mail to {to}"));
        let start = last
            .find("/signup/confirm/")
            .unwrap_or_else(|| panic!("no confirmation link in: {last}"))
            + "/signup/confirm/".len();
        last[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn confirm_as(browser: &mut Browser<'_>, token: &str, password: &str) -> TestResponse {
    browser
        .call::<ConfirmSignUp>(&[("token", token), ("password", password)])
        .await
}

#[tokio::test]
async fn with_smtp_an_address_must_be_proved_and_a_sign_up_by_someone_else_cannot_take_it() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .with_throttles(service::throttle::Throttles::with_sign_ups_per_hour(100))
        .with_smtp(&smtp.url())
        .start()
        .await;
    let attacker_password = "the attacker's own password";
    let victim_password = "the victim's own password";

    // The page says a link will come.
    let page = app.browser().get("/signup").await;
    assert!(page.body.contains("e-mail you a link"), "{}", page.body);

    // An attacker signs up with the victim's address: no account, only a mail to the victim.
    let mut attacker = app.browser();
    let response = sign_up_as(
        &mut attacker,
        "victim@example.com",
        attacker_password,
        "evil",
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(attacker.get("/").await.location(), Some("/signin"));
    let signed_in = app
        .browser()
        .call::<SignIn>(&[
            ("email", "victim@example.com"),
            ("password", attacker_password),
        ])
        .await;
    assert_eq!(signed_in.json()["field"], "password", "{}", signed_in.body);
    let attackers_token = smtp.last_token_for("victim@example.com");
    assert!(attackers_token.starts_with("su_"), "{attackers_token}");
    let mail = &smtp.messages_to("victim@example.com")[0];
    assert!(
        mail.contains("Subject: Confirm your Berth account"),
        "{mail}"
    );
    assert!(
        mail.contains("http://berth.test/signup/confirm/su_"),
        "{mail}"
    );
    assert!(!mail.contains(attacker_password), "{mail}");

    // The victim signs up too, and gets a link of their own.
    let mut victim = app.browser();
    sign_up_as(
        &mut victim,
        "victim@example.com",
        victim_password,
        "victims",
        None,
    )
    .await;
    let victims_token = smtp.last_token_for("victim@example.com");
    assert_ne!(victims_token, attackers_token);

    // The confirmation page names the address and the team.
    let page = victim
        .get(&format!("/signup/confirm/{attackers_token}"))
        .await;
    assert!(
        page.body.contains("victim@example.com") && page.body.contains("evil"),
        "{}",
        page.body
    );
    // Opening the attacker's link with the victim's password does not make the account...
    let refused = confirm_as(&mut victim, &attackers_token, victim_password).await;
    assert_eq!(refused.json()["field"], "password", "{}", refused.body);
    assert_eq!(victim.get("/").await.location(), Some("/signin"));
    // ...and the attacker cannot open it: they never saw the link. The victim's own link,
    // with their own password, makes the account and signs them in.
    let confirmed = confirm_as(&mut victim, &victims_token, victim_password).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(victim.get("/").await.location(), Some("/teams/victims"));
    // Every other sign-up for the address is void now.
    let used = confirm_as(&mut app.browser(), &attackers_token, attacker_password).await;
    assert_eq!(used.json()["field"], "token", "{}", used.body);
    let used = confirm_as(&mut app.browser(), &victims_token, victim_password).await;
    assert_eq!(used.json()["field"], "token", "{}", used.body);
    assert!(app
        .browser()
        .get(&format!("/signup/confirm/{victims_token}"))
        .await
        .body
        .contains("no longer valid"));
    let signed_in = app
        .browser()
        .call::<SignIn>(&[
            ("email", "victim@example.com"),
            ("password", victim_password),
        ])
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
}

#[tokio::test]
async fn with_smtp_sign_up_answers_the_same_for_an_existing_address_and_mails_it_a_note() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .with_throttles(service::throttle::Throttles::with_sign_ups_per_hour(100))
        .with_smtp(&smtp.url())
        .start()
        .await;
    app.owner("ada@example.com", "acme").await;
    let mut answers = Vec::new();
    for (email, handle) in [("ada@example.com", "one"), ("new@example.com", "two")] {
        let mut browser = app.browser();
        let csrf = browser.csrf_token("/signup").await;
        let response = browser
            .post_form(
                SignUp::PATH,
                &[
                    ("csrf_token", &csrf),
                    ("email", email),
                    ("password", PASSWORD),
                    ("team_name", handle),
                    ("team_handle", handle),
                ],
                true,
                Some("http://berth.test/signup"),
            )
            .await;
        assert_eq!(response.status, StatusCode::FOUND, "{}", response.body);
        let location = response.location().unwrap().to_owned();
        let page = browser.get(&location).await;
        assert!(page.body.contains("Check your e-mail"), "{}", page.body);
        answers.push((location, page.status, without_per_page_values(&page.body)));
    }
    assert_eq!(answers[0], answers[1]);
    let note = &smtp.messages_to("ada@example.com")[0];
    assert!(note.contains("already has an account"), "{note}");
    assert!(!note.contains("/signup/confirm/"), "{note}");
    assert!(smtp.messages_to("new@example.com")[0].contains("/signup/confirm/su_"));

    // An address gets three such mails an hour, however many sign-ups name it.
    for handle in ["t3", "t4", "t5", "t6"] {
        let response = sign_up_as(
            &mut app.browser(),
            "new@example.com",
            PASSWORD,
            handle,
            None,
        )
        .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    assert_eq!(smtp.messages_to("new@example.com").len(), 3);
}

#[tokio::test]
async fn with_smtp_down_sign_up_says_the_mail_could_not_be_sent() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::sqlite()
        .with_sign_up(SignUpPolicy::Open)
        .with_smtp(&format!("smtp://127.0.0.1:{closed_port}"))
        .start()
        .await;
    let response = sign_up_as(
        &mut app.browser(),
        "ada@example.com",
        PASSWORD,
        "acme",
        None,
    )
    .await;
    let error = response.json();
    assert_eq!(error["kind"], "unavailable", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("could not send the e-mail"),
        "{error}"
    );
}
