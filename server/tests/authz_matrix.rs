//! Every route × every kind of caller: anonymous, a user of another team, viewer, deployer,
//! owner. Another team's resources answer "not found", never "forbidden".

mod support;

use app::serverfns::{
    apps::CheckBaseImages, deploy_key::GenerateDeployKey, history::LoadHistory, members::*,
    tokens::*,
};
use axum::http::StatusCode;
use domain::Role;
use support::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Anonymous,
    Outsider,
    Viewer,
    Deployer,
    Owner,
}

const CALLERS: [Caller; 5] = [
    Caller::Anonymous,
    Caller::Outsider,
    Caller::Viewer,
    Caller::Deployer,
    Caller::Owner,
];

fn email(caller: Caller) -> &'static str {
    match caller {
        Caller::Anonymous => "",
        Caller::Outsider => OUTSIDER,
        Caller::Viewer => VIEWER,
        Caller::Deployer => DEPLOYER,
        Caller::Owner => OWNER,
    }
}

/// Team `acme` with one member of each role, an outsider, and `target@example.com`, the
/// viewer that member management acts on; answers the app and the target's user id.
async fn start() -> (TestApp, i64) {
    let app = TestApp::sqlite().with_team().start().await;
    let target = app.member("target@example.com", "acme", Role::Viewer).await;
    (app, target)
}

/// Each caller's API token (none for the anonymous one).
fn tokens(app: &TestApp) -> Vec<(Caller, Option<String>)> {
    CALLERS
        .into_iter()
        .map(|caller| {
            let token = (caller != Caller::Anonymous).then(|| app.token(email(caller)));
            (caller, token)
        })
        .collect()
}

/// What a caller gets from a route that needs `needed` in team "acme".
fn expected_status(caller: Caller, needed: Role, ok: u16) -> u16 {
    match caller {
        Caller::Anonymous => 401,
        Caller::Outsider => 404,
        Caller::Viewer if needed > Role::Viewer => 403,
        Caller::Deployer if needed > Role::Deployer => 403,
        _ => ok,
    }
}

fn expected_kind(caller: Caller, needed: Role) -> Option<&'static str> {
    match expected_status(caller, needed, 200) {
        401 => Some("unauthenticated"),
        404 => Some("not_found"),
        403 => Some("forbidden"),
        _ => None,
    }
}

#[tokio::test]
async fn api_routes_check_the_role_of_every_caller() {
    let (app, target) = start().await;
    let routes: Vec<(&str, String, Option<serde_json::Value>, Role, u16)> = vec![
        ("GET", "/api/v1/teams/acme".into(), None, Role::Viewer, 200),
        (
            "PATCH",
            "/api/v1/teams/acme".into(),
            Some(serde_json::json!({"viewers_read_logs": false})),
            Role::Owner,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/members".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "POST",
            "/api/v1/teams/acme/members".into(),
            Some(serde_json::json!({"email": "new@example.com", "role": "viewer"})),
            Role::Owner,
            201,
        ),
        (
            "PATCH",
            format!("/api/v1/teams/acme/members/{target}"),
            Some(serde_json::json!({"role": "deployer"})),
            Role::Owner,
            200,
        ),
        (
            "DELETE",
            format!("/api/v1/teams/acme/members/{target}"),
            None,
            Role::Owner,
            204,
        ),
        (
            "GET",
            "/api/v1/teams/acme/deploy-key".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "POST",
            "/api/v1/teams/acme/deploy-key".into(),
            None,
            Role::Owner,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/platforms/aptible".into(),
            None,
            Role::Viewer,
            200,
        ),
        // An empty token: the role is checked first, then the token (nothing reaches Aptible).
        (
            "PUT",
            "/api/v1/teams/acme/platforms/aptible".into(),
            Some(serde_json::json!({"token": ""})),
            Role::Owner,
            422,
        ),
        // Not connected: nothing to disconnect.
        (
            "DELETE",
            "/api/v1/teams/acme/platforms/aptible".into(),
            None,
            Role::Owner,
            404,
        ),
    ];
    for (method, path, body, needed, ok) in routes {
        for (caller, token) in &tokens(&app) {
            let response = app.api(method, &path, token.as_deref(), body.clone()).await;
            let expected = expected_status(*caller, needed, ok);
            assert_eq!(
                response.status.as_u16(),
                expected,
                "{method} {path} as {caller:?}: {}",
                response.body
            );
            if let Some(kind) = expected_kind(*caller, needed) {
                assert_eq!(
                    response.json()["error"]["kind"],
                    kind,
                    "{method} {path} as {caller:?}"
                );
            }
        }
    }
    // /me needs only a valid token.
    for (caller, token) in &tokens(&app) {
        let response = app.api("GET", "/api/v1/me", token.as_deref(), None).await;
        let expected = if *caller == Caller::Anonymous {
            401
        } else {
            200
        };
        assert_eq!(response.status.as_u16(), expected, "/me as {caller:?}");
    }
}

#[tokio::test]
async fn another_teams_resources_are_not_found_even_when_they_do_not_exist() {
    let (app, _) = start().await;
    let outsider = app.outsider();
    let real = app
        .call("GET", "/api/v1/teams/acme/members", &outsider, None)
        .await;
    let missing = app
        .call("GET", "/api/v1/teams/no-such-team/members", &outsider, None)
        .await;
    assert_eq!(real.status, StatusCode::NOT_FOUND);
    assert_eq!(
        real.body, missing.body,
        "the answers must not tell the two apart"
    );
}

#[tokio::test]
async fn server_functions_check_the_role_of_every_caller() {
    let (app, target) = start().await;
    let target = target.to_string();
    for caller in CALLERS {
        let mut browser = if caller == Caller::Anonymous {
            app.browser()
        } else {
            app.signed_in(email(caller)).await
        };
        let cases: Vec<(&str, Role, support::TestResponse)> = vec![
            (
                "load_members",
                Role::Viewer,
                browser.fetch::<LoadMembers>(&[("team", "acme")]).await,
            ),
            (
                // Authorised from the teams read with the signed-in person for the request.
                "load_history",
                Role::Viewer,
                browser.fetch::<LoadHistory>(&[("team", "acme")]).await,
            ),
            (
                "add_member",
                Role::Owner,
                browser
                    .call::<AddMember>(&[
                        ("team", "acme"),
                        (
                            "email",
                            &format!("new-{caller:?}@example.com").to_lowercase(),
                        ),
                        ("role", "viewer"),
                    ])
                    .await,
            ),
            (
                "change_role",
                Role::Owner,
                browser
                    .call::<ChangeRole>(&[
                        ("team", "acme"),
                        ("user_id", &target),
                        ("role", "viewer"),
                    ])
                    .await,
            ),
            (
                "set_viewers_read_logs",
                Role::Owner,
                browser
                    .call::<SetViewersReadLogs>(&[("team", "acme")])
                    .await,
            ),
            (
                "generate_deploy_key",
                Role::Owner,
                browser.call::<GenerateDeployKey>(&[("team", "acme")]).await,
            ),
        ];
        for (name, needed, response) in cases {
            match expected_kind(caller, needed) {
                Some(kind) => {
                    assert_eq!(
                        error_kind(&response).as_deref(),
                        Some(kind),
                        "{name} as {caller:?}: {}",
                        response.body
                    );
                    // The refusal's own status, as the JSON API answers it, never a 500.
                    assert_eq!(
                        response.status.as_u16(),
                        expected_status(caller, needed, 200),
                        "{name} as {caller:?}"
                    );
                }
                None => assert_eq!(
                    response.status,
                    StatusCode::OK,
                    "{name} as {caller:?}: {}",
                    response.body
                ),
            }
        }
        // Removing goes last: the owner's call succeeds and the target is gone.
        let response = browser
            .call::<RemoveMember>(&[("team", "acme"), ("user_id", &target)])
            .await;
        match expected_kind(caller, Role::Owner) {
            Some(kind) => assert_eq!(
                error_kind(&response).as_deref(),
                Some(kind),
                "remove_member as {caller:?}"
            ),
            None => assert_eq!(
                response.status,
                StatusCode::OK,
                "remove_member as owner: {}",
                response.body
            ),
        }
        // Personal routes: any signed-in person, nobody else.
        let tokens = browser.fetch::<LoadApiTokens>(&[]).await;
        let create = browser.call::<CreateApiToken>(&[("name", "ci")]).await;
        if caller == Caller::Anonymous {
            assert_eq!(error_kind(&tokens).as_deref(), Some("unauthenticated"));
            assert_eq!(error_kind(&create).as_deref(), Some("unauthenticated"));
        } else {
            assert_eq!(tokens.status, StatusCode::OK, "{caller:?}");
            assert_eq!(create.status, StatusCode::OK, "{caller:?}");
        }
    }
}

#[tokio::test]
async fn pages_send_strangers_to_sign_in_and_outsiders_to_not_found() {
    let (app, _) = start().await;
    for caller in CALLERS {
        let mut browser = if caller == Caller::Anonymous {
            app.browser()
        } else {
            app.signed_in(email(caller)).await
        };
        for path in ["/teams/acme", "/teams/acme/members", "/teams/acme/history"] {
            let page = browser.get(path).await;
            match caller {
                Caller::Anonymous => {
                    assert_eq!(page.status, StatusCode::FOUND, "{path}");
                    assert_eq!(page.location(), Some("/signin"));
                }
                Caller::Outsider => {
                    assert_eq!(page.status, StatusCode::NOT_FOUND, "{path} as outsider")
                }
                _ => assert_eq!(page.status, StatusCode::OK, "{path} as {caller:?}"),
            }
        }
        let members = browser.get("/teams/acme/members").await;
        let has_controls =
            members.body.contains("Add member</h2>") && members.body.contains(">Yes, remove ");
        assert_eq!(
            has_controls,
            caller == Caller::Owner,
            "owner-only controls as {caller:?}"
        );
    }
}

#[tokio::test]
async fn revoking_another_persons_token_is_not_found() {
    let (app, _) = start().await;
    let owner_token = app.store.api_tokens(1).await.unwrap()[0].id.to_string();
    let mut viewer = app.signed_in(email(Caller::Viewer)).await;
    let response = viewer.call::<RevokeApiToken>(&[("id", &owner_token)]).await;
    assert_eq!(error_kind(&response).as_deref(), Some("not_found"));
    assert_eq!(
        app.call("GET", "/api/v1/me", &app.owner_token(), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn app_and_operation_routes_check_the_role_of_every_caller() {
    let (app, _) = start().await;
    let owner = app.owner_token();
    let created = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            &owner,
            Some(serde_json::json!({"handle": "web", "method": "image"})),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let configured = app
        .call(
            "PATCH",
            "/api/v1/teams/acme/apps/web/config",
            &owner,
            Some(serde_json::json!({"env": {"A": "1"}})),
        )
        .await;
    assert_eq!(configured.status.as_u16(), 202, "{}", configured.body);
    let op = configured.json()["operation"]["id"].as_i64().unwrap();
    let routes: Vec<(&str, String, Option<serde_json::Value>, Role, u16)> = vec![
        (
            "GET",
            "/api/v1/teams/acme/apps".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/apps/web".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/apps/web/config".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/apps/web/operations".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/operations".into(),
            None,
            Role::Viewer,
            200,
        ),
        (
            "GET",
            format!("/api/v1/operations/{op}"),
            None,
            Role::Viewer,
            200,
        ),
        // Viewers follow an operation live (its status only, unless an owner allows them
        // its log).
        (
            "GET",
            format!("/api/v1/operations/{op}/events"),
            None,
            Role::Viewer,
            200,
        ),
        // Logs hold whatever apps print: viewers read them only when an owner allows it.
        (
            "GET",
            format!("/api/v1/operations/{op}/log"),
            None,
            Role::Deployer,
            200,
        ),
        (
            "GET",
            "/api/v1/teams/acme/apps/web/logs".into(),
            None,
            Role::Deployer,
            200,
        ),
        (
            "PATCH",
            "/api/v1/teams/acme/apps/web/config".into(),
            Some(serde_json::json!({"env": {"B": "2"}})),
            Role::Deployer,
            202,
        ),
        // No release yet: allowed callers get a clear 422, the others the usual answers.
        (
            "POST",
            "/api/v1/teams/acme/apps/web/restart".into(),
            None,
            Role::Deployer,
            422,
        ),
        // The base check fetches and asks registries with the team's credentials: deployers
        // only (an image app has no Dockerfile: allowed callers get a clear 422).
        (
            "POST",
            "/api/v1/teams/acme/apps/web/bases".into(),
            Some(serde_json::json!({"git_ref": "main"})),
            Role::Deployer,
            422,
        ),
    ];
    for (method, path, body, needed, ok) in routes {
        for (caller, token) in &tokens(&app) {
            let response = app.api(method, &path, token.as_deref(), body.clone()).await;
            let expected = expected_status(*caller, needed, ok);
            assert_eq!(
                response.status.as_u16(),
                expected,
                "{method} {path} as {caller:?}: {}",
                response.body
            );
        }
    }
    // The base check is not a GET any more: it has side effects.
    let get = app
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/bases?git_ref=main",
            &owner,
            None,
        )
        .await;
    assert_eq!(get.status.as_u16(), 405, "{}", get.body);
    // Its server function checks the role the same way.
    for caller in CALLERS {
        let mut browser = if caller == Caller::Anonymous {
            app.browser()
        } else {
            app.signed_in(email(caller)).await
        };
        let response = browser
            .call::<CheckBaseImages>(&[("team", "acme"), ("app", "web"), ("git_ref", "main")])
            .await;
        let expected = expected_kind(caller, Role::Deployer).unwrap_or("invalid");
        assert_eq!(
            error_kind(&response).as_deref(),
            Some(expected),
            "check_base_images as {caller:?}: {}",
            response.body
        );
    }
    // A deploy is for deployers: once the input is valid, a viewer is refused.
    let viewer = app.viewer();
    let refused = app
        .call(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            &viewer,
            Some(serde_json::json!({"image": "127.0.0.1:1/team/web:1"})),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);

    // Once an owner allows it, viewers read the logs too.
    let allowed = app
        .call(
            "PATCH",
            "/api/v1/teams/acme",
            &owner,
            Some(serde_json::json!({"viewers_read_logs": true})),
        )
        .await;
    assert_eq!(allowed.status.as_u16(), 200, "{}", allowed.body);
    assert_eq!(allowed.json()["team"]["viewers_read_logs"], true);
    for path in [
        format!("/api/v1/operations/{op}/log"),
        "/api/v1/teams/acme/apps/web/logs".to_owned(),
    ] {
        let read = app.call("GET", &path, &viewer, None).await;
        assert_eq!(read.status.as_u16(), 200, "{path}: {}", read.body);
    }
    app.stop().await;
}
