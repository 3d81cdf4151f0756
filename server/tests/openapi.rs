//! The OpenAPI document of `/api/v1` and its docs page: every route the API router serves is
//! in the document (so a new route cannot be left out), every documented operation is
//! served, and the document is the JSON schemathesis reads in the test command.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::*;

/// Every `(METHOD, path)` the API router in `src/api/mod.rs` registers, read from its
/// `.route("…", get(…).post(…))` calls, with the `/api/v1` it is nested under.
fn routes_in_router() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/api/mod.rs");
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        rest = &rest[start + ".route(".len()..];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route( call");
        let call = &rest[..end];
        let path = call.split('"').nth(1).expect("a route path literal");
        let router = &call[call.find(',').expect("a method router")..];
        // `get(`, `.post(`, `routing::patch(`: a method name not inside a longer name.
        let methods = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|method| {
                router.match_indices(&format!("{method}(")).any(|(at, _)| {
                    !router[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            })
            .map(str::to_uppercase)
            .collect::<Vec<_>>();
        assert!(!methods.is_empty(), "no method found in .route({call})");
        for method in methods {
            routes.insert((method, format!("/api/v1{path}")));
        }
        rest = &rest[end..];
    }
    routes
}

fn operations_in(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(|method| (method.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn document(app: &TestApp) -> Value {
    let response = app.api("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(response.status.as_u16(), 200, "{}", response.body);
    assert_eq!(
        response.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    serde_json::from_str(&response.body).expect("the document is JSON")
}

#[test]
fn the_route_reader_finds_the_router_s_routes() {
    let routes = routes_in_router();
    // A route on several lines with three methods, and one with a path-qualified method.
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(routes.contains(&(
            method.into(),
            "/api/v1/teams/{team}/credentials/{name}".into()
        )));
    }
    assert!(routes.contains(&(
        "POST".into(),
        "/api/v1/teams/{team}/credentials/{name}/verify".into()
    )));
    assert!(routes.len() >= 30, "{routes:?}");
}

#[tokio::test]
async fn every_route_of_the_api_router_is_in_the_document_and_no_other() {
    let app = TestApp::sqlite().start().await;
    let document = document(&app).await;
    let documented = operations_in(&document);
    let served = routes_in_router();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes without a #[utoipa::path] in openapi.rs's paths(...): {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not routed: {unserved:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_served_and_asks_for_a_token() {
    let app = TestApp::sqlite().start().await;
    let document = document(&app).await;
    for (method, path) in operations_in(&document) {
        let url = path
            .replace("{team}", "acme")
            .replace("{app}", "web")
            .replace("{name}", "hub")
            .replace("{user_id}", "1")
            .replace("{id}", "1");
        let body = (method != "GET" && method != "DELETE").then(|| serde_json::json!({}));
        let response = app.api(&method, &url, None, body).await;
        let operation = &document["paths"][&path][method.to_lowercase()];
        if path == "/api/v1/openapi.json" {
            assert_eq!(response.status.as_u16(), 200);
            assert_eq!(operation["security"], serde_json::json!([{}]));
            continue;
        }
        // Not 404 or 405: the route exists with this method; 401 in the documented shape.
        assert_eq!(
            response.status.as_u16(),
            401,
            "{method} {url}: {}",
            response.body
        );
        assert_eq!(response.json()["error"]["kind"], "unauthenticated");
        assert!(
            operation["responses"]["401"].is_object(),
            "{method} {path} does not document 401"
        );
        assert!(operation.get("security").is_none(), "{method} {path}");
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_bodies_errors_and_the_bearer_scheme() {
    let app = TestApp::sqlite().start().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Berth API");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        serde_json::json!({"type": "http", "scheme": "bearer", "description": "An API token: *API tokens* in the console, or `berth token create`."})
    );
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    let schemas = &doc["components"]["schemas"];
    for name in [
        "ErrorBody",
        "AppBody",
        "OperationBody",
        "OperationsBody",
        "CredentialBody",
        "VerifyBody",
        "NewApp",
        "NewDeploy",
        "NewCredential",
        "CredentialChanges",
        "Role",
        "OperationStatus",
    ] {
        assert!(schemas[name].is_object(), "schema {name} is missing");
    }
    // The error shape, and the keywords of the enums.
    assert_eq!(
        schemas["ErrorView"]["required"],
        serde_json::json!(["kind", "message"])
    );
    assert_eq!(
        schemas["Role"]["enum"],
        serde_json::json!(["viewer", "deployer", "owner"])
    );
    // Secrets go in and never come out: the credential's schema has no secret.
    assert!(schemas["CredentialRow"]["properties"]
        .get("secret")
        .is_none());
    assert!(schemas["NewCredential"]["properties"]["secret"].is_object());

    let create = &doc["paths"]["/api/v1/teams/{team}/apps"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewApp"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AppBody"
    );
    for status in ["401", "403", "404", "409", "413", "422", "429"] {
        assert_eq!(
            create["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "POST …/apps: {status}"
        );
    }
    // Query parameters with their types; text answers as text.
    let history = &doc["paths"]["/api/v1/teams/{team}/operations"]["get"];
    let limit = history["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit");
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["schema"]["maximum"], 200);
    let log = &doc["paths"]["/api/v1/operations/{id}/log"]["get"];
    assert!(log["responses"]["200"]["content"]["text/plain"].is_object());
    // A read has no body to be wrong about and conflicts with nothing.
    let me = &doc["paths"]["/api/v1/me"]["get"];
    assert!(me["responses"]["409"].is_null() && me["responses"]["422"].is_null());
}

#[tokio::test]
async fn the_docs_page_lists_every_operation_with_its_parameters() {
    let app = TestApp::sqlite().start().await;
    let doc = document(&app).await;
    let page = app.api("GET", "/api/docs", None, None).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    for (method, path) in operations_in(&doc) {
        assert!(
            page.body.contains(&format!("<code>{method} {path}</code>")),
            "{method} {path} is not on the page"
        );
        let summary = doc["paths"][&path][method.to_lowercase()]["summary"]
            .as_str()
            .unwrap();
        assert!(
            page.body.contains(&summary.replace('\'', "&#39;")),
            "{summary}"
        );
    }
    assert!(
        page.body.contains("<code>limit</code>"),
        "query parameters are listed"
    );
    assert!(page.body.contains("href=\"/api/v1/openapi.json\""));
    assert!(!page.body.contains("<script"), "a plain page, no script");
}

/// What schemathesis found: path and query parameters that axum could not read were
/// answered with a plain-text 400, which the document (and the README's promise of
/// `{"error": …}` bodies) does not allow. Each is now a JSON error naming what is wrong.
#[tokio::test]
async fn unreadable_path_and_query_parameters_answer_json_errors() {
    let app = TestApp::sqlite().with_team().start().await;
    let owner = app.owner_token();
    for (method, path, status, field) in [
        (
            "GET",
            "/api/v1/teams/acme/audit?limit=many",
            422,
            Some("limit"),
        ),
        (
            "GET",
            "/api/v1/teams/acme/audit?before=-",
            422,
            Some("before"),
        ),
        (
            "GET",
            "/api/v1/teams/acme/operations?limit=1&limit=2",
            422,
            Some("query"),
        ),
        (
            "GET",
            "/api/v1/teams/acme/apps/web/refs?fetch=maybe",
            422,
            Some("fetch"),
        ),
        ("DELETE", "/api/v1/teams/acme/members/someone", 404, None),
        ("GET", "/api/v1/teams/%FF/apps", 404, None),
        ("GET", "/api/v1/operations/%FF%FE", 404, None),
    ] {
        let body = (method == "PATCH").then(|| serde_json::json!({"role": "viewer"}));
        let response = app.call(method, path, &owner, body).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{method} {path}: {}",
            response.body
        );
        let error = &response.json()["error"];
        assert_eq!(
            error["field"].as_str(),
            field,
            "{method} {path}: {}",
            response.body
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A member's id that is a number still works (the owner cannot remove themselves as the
    // last owner: a conflict, in the documented shape).
    let me = app.call("GET", "/api/v1/me", &owner, None).await.json();
    let id = me["user"]["id"].as_i64().unwrap();
    let response = app
        .call(
            "PATCH",
            &format!("/api/v1/teams/acme/members/{id}"),
            &owner,
            Some(serde_json::json!({"role": "viewer"})),
        )
        .await;
    assert!(
        [200, 409, 422].contains(&response.status.as_u16()),
        "{}",
        response.body
    );
    assert!(response.json().is_object());
}
