//! The HTTP edge, on every kind of route: bodies over the limit are refused before anything
//! reads them, every answer carries the security headers, and answers travel compressed
//! (the bundle precompressed and cached for a year, pages and JSON as they go).

mod support;

use app::serverfns::apps::ConfigureApp;
use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};
use leptos::server_fn::ServerFn;
use serde_json::json;
use server::edge::MAX_BODY_BYTES;
use support::*;

/// A body a little over the limit: `KEY=…` lines, as a configuration form would send.
fn oversized_env() -> String {
    let line = format!("KEY=value-{}\n", "x".repeat(100));
    line.repeat(MAX_BODY_BYTES / line.len() + 10)
}

/// A request body of `chunks`, streamed without a Content-Length (as a chunked upload is).
fn streamed(chunks: Vec<String>) -> Body {
    Body::from_stream(futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::from(c))),
    ))
}

#[tokio::test]
async fn the_json_api_refuses_a_body_over_the_limit_with_a_json_error() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let body = json!({ "env": { "BIG": "x".repeat(MAX_BODY_BYTES) } }).to_string();
    let path = "/api/v1/teams/acme/apps/web/config";

    let announced = app
        .send(
            Request::patch(path)
                .header(header::AUTHORIZATION, format!("Bearer {}", app.deployer()))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(announced.status, StatusCode::PAYLOAD_TOO_LARGE);
    let error = announced.json();
    assert_eq!(error["error"]["kind"], "too_large", "{error}");
    assert_eq!(error["error"]["field"], "body", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("64 KiB"),
        "{error}"
    );

    // Chunked, without a length: counted as it arrives.
    let chunks: Vec<String> = body
        .as_bytes()
        .chunks(4096)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let chunked = app
        .send(
            Request::patch(path)
                .header(header::AUTHORIZATION, format!("Bearer {}", app.deployer()))
                .header(header::CONTENT_TYPE, "application/json")
                .body(streamed(chunks))
                .unwrap(),
        )
        .await;
    assert_eq!(chunked.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(chunked.json()["error"]["kind"], "too_large");

    // Nothing was queued; a body within the limit still works.
    assert!(app.operations("web").await.is_empty());
    app.call(
        "PATCH",
        path,
        &app.deployer(),
        Some(json!({ "env": { "SMALL": "x".repeat(1000) } })),
    )
    .await
    .expect(202);
}

#[tokio::test]
async fn a_server_function_refuses_a_body_over_the_limit_even_with_a_csrf_token() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let mut deployer = app.signed_in(DEPLOYER).await;
    let token = deployer.any_csrf_token().await;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf_token", token.as_str()),
            ("team", "acme"),
            ("app", "web"),
            ("env_text", &oversized_env()),
        ])
        .finish();
    // The token in the header: the CSRF check reads no body, the server function would.
    let response = app
        .send(
            Request::post(ConfigureApp::PATH)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .header("x-csrf-token", &token)
                .header(header::COOKIE, deployer.cookie.clone().unwrap())
                .body(streamed(vec![body]))
                .unwrap(),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        response.body
    );
    assert!(response.body.contains("64 KiB"), "{}", response.body);
    assert!(app.operations("web").await.is_empty());
}

#[tokio::test]
async fn a_form_post_over_the_limit_gets_a_page_saying_so() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let mut deployer = app.signed_in(DEPLOYER).await;
    let token = deployer.any_csrf_token().await;
    let response = deployer
        .post_form(
            ConfigureApp::PATH,
            &[
                ("csrf_token", &token),
                ("team", "acme"),
                ("app", "web"),
                ("env_text", &oversized_env()),
            ],
            true,
            Some("http://berth.test/teams/acme/apps/web"),
        )
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        response.body.contains("<h1>The form is too large</h1>"),
        "{}",
        response.body
    );
    assert!(app.operations("web").await.is_empty());

    // The same form within the limit is accepted.
    let small = deployer
        .post_form(
            ConfigureApp::PATH,
            &[
                ("csrf_token", &token),
                ("team", "acme"),
                ("app", "web"),
                ("env_text", "GREETING=hello"),
            ],
            true,
            Some("http://berth.test/teams/acme/apps/web"),
        )
        .await;
    assert_eq!(small.status, StatusCode::FOUND, "{}", small.body);
}

fn assert_security_headers(what: &str, response: &TestResponse) -> String {
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_owned()
    };
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    let policy = header("content-security-policy");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    policy
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::sqlite().with_team().start().await;
    std::fs::create_dir_all(app.dir.join("pkg")).unwrap();
    std::fs::write(app.dir.join("pkg/berth.css"), "body { margin: 0 }").unwrap();
    let mut browser = app.browser();

    let static_file = browser.get("/pkg/berth.css").await.expect(200);
    assert_security_headers("a static file", &static_file);
    let api = app
        .call("GET", "/api/v1/me", &app.viewer(), None)
        .await
        .expect(200);
    assert_security_headers("an API answer", &api);
    let api_error = app.api("GET", "/api/v1/me", None, None).await.expect(401);
    assert_security_headers("an API error", &api_error);
    let health = app
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_security_headers("the health check", &health);
    let refused = app
        .send(
            Request::post(ConfigureApp::PATH)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "http://evil.example")
                .body(Body::from("team=acme"))
                .unwrap(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_security_headers("a CSRF refusal", &refused);

    for (path, status) in [("/signin", 200), ("/no/such/page", 404)] {
        let page = browser.get(path).await.expect(status);
        let policy = assert_security_headers(path, &page);
        // Pages allow their own inline scripts by the response's nonce, and no others.
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {policy}"));
        assert!(nonce.len() >= 16, "{policy}");
        let scripts = page.body.matches("<script").count();
        assert!(scripts > 0, "{path}: the hydration scripts are missing");
        assert_eq!(
            page.body
                .matches(&format!("<script nonce=\"{nonce}\""))
                .count()
                + page
                    .body
                    .matches(&format!("<script type=\"module\" nonce=\"{nonce}\""))
                    .count(),
            scripts,
            "{path}: every inline script carries the nonce: {}",
            page.body
        );
        // A fresh nonce per response.
        let again = browser.get(path).await;
        assert!(!again.body.contains(nonce), "{path}: the nonce was reused");
    }
}

#[tokio::test]
async fn reading_branches_and_tags_never_contacts_the_repository() {
    let app = TestApp::sqlite()
        .with_team()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .start()
        .await;
    let parent = tempfile::tempdir().unwrap();
    let repo = parent.path().join("repo");
    // The repository does not exist yet: the first fetch (at creation) fails, and the app
    // is created all the same.
    app.create_app(
        "web",
        "dockerfile",
        Some(json!({ "url": repo.to_str().unwrap() })),
    )
    .await;
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("Dockerfile"), "FROM busybox\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "First"]);

    // Reading — the API's GET and the app's page — lists what the last fetch found: nothing.
    let refs_path = "/api/v1/teams/acme/apps/web/refs";
    let listed = app
        .call("GET", refs_path, &app.viewer(), None)
        .await
        .expect(200);
    assert_eq!(listed.json()["refs"], json!([]), "{}", listed.body);
    let page = app
        .signed_in(VIEWER)
        .await
        .get("/teams/acme/apps/web/deploy")
        .await
        .expect(200);
    assert!(
        page.body.contains("No branches or tags to show."),
        "{}",
        page.body
    );
    let listed = app
        .call("GET", refs_path, &app.viewer(), None)
        .await
        .expect(200);
    assert_eq!(
        listed.json()["refs"],
        json!([]),
        "the page fetched: {}",
        listed.body
    );

    // The old `?fetch=true` is refused with the way to fetch, rather than ignored.
    let old = app
        .call(
            "GET",
            &format!("{refs_path}?fetch=true"),
            &app.viewer(),
            None,
        )
        .await;
    let error = refusal(old, "invalid", "fetch");
    assert!(
        error["message"].as_str().unwrap().contains("POST"),
        "{error}"
    );

    // Fetching is a POST.
    let fetched = app
        .call("POST", &format!("{refs_path}/fetch"), &app.viewer(), None)
        .await
        .expect(200)
        .json();
    assert_eq!(fetched["refs"][0]["name"], "main", "{fetched}");
    let listed = app
        .call("GET", refs_path, &app.viewer(), None)
        .await
        .expect(200);
    assert_eq!(listed.json()["refs"][0]["name"], "main");
}

const BASE_PASSWORD: &str = "edge-base-pass-71c0d2";

#[tokio::test]
async fn a_build_that_floods_its_output_is_cut_to_the_line_and_log_limits() {
    let registry = testregistry::TestRegistry::start_htpasswd(&[("builder", BASE_PASSWORD)]).await;
    registry
        .push_serving_image("base/busybox", "1", ("builder", BASE_PASSWORD), "base")
        .await;
    let base = format!("{}/base/busybox:1", registry.host);
    let app = TestApp::sqlite()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_team()
        .with_registry(registry)
        .start()
        .await;
    // One line of 100,000 bytes, then 1,400 lines of 8,000 bytes (11 MB): more than an
    // operation's log keeps.
    let script = "b=/bin/busybox; $b head -c 100000 /dev/zero | $b tr '\\0' x; echo; \
                  echo after-the-huge-line; i=0; \
                  while [ $i -lt 1400 ]; do $b head -c 8000 /dev/zero | $b tr '\\0' f; echo; i=$((i+1)); done; \
                  echo end-of-the-flood";
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.path().join("Dockerfile"),
        format!(
            "FROM {base}\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", {script:?}]\n\
             CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"0.0.0.0:8080\", \"-h\", \"/www\"]\n"
        ),
    )
    .unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "Flood"]);
    app.create_app(
        "web",
        "dockerfile",
        Some(json!({ "url": repo.path().to_str().unwrap() })),
    )
    .await;
    let done = app
        .deploy_and_wait(
            "web",
            json!({
                "git_ref": "main",
                "registry_username": "builder",
                "registry_password": BASE_PASSWORD,
                "private_registry_host": base.split('/').next().unwrap(),
            }),
        )
        .await;
    let log = app.log(done["id"].as_i64().unwrap()).await;
    app.stop().await;

    let huge = log
        .lines()
        .find(|line| line.contains("xxxxxxxx"))
        .unwrap_or_else(|| panic!("no huge line in {} bytes of log", log.len()));
    assert!(
        huge.ends_with(platform::output::CUT_MARKER),
        "{}",
        huge.len()
    );
    assert!(huge.len() < 9 * 1024, "{}", huge.len());
    // (buildah's "STEP" line shows the script, so look for the output lines themselves.)
    let printed = |text: &str| log.lines().any(|line| line.trim() == text);
    assert!(printed("after-the-huge-line"));
    assert_eq!(
        log.matches(service::worker::LOG_FULL_MARKER).count(),
        1,
        "the log says once that it is full"
    );
    assert!(
        !printed("end-of-the-flood"),
        "output after the limit is not kept"
    );
    assert!(
        (log.len() as u64) < service::worker::MAX_OPERATION_LOG_BYTES + 64 * 1024,
        "{} bytes kept",
        log.len()
    );
}

#[tokio::test]
async fn the_form_token_is_masked_afresh_on_every_page_and_each_mask_works() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let mut deployer = app.signed_in(DEPLOYER).await;
    let page = "/teams/acme/apps/web";
    let (one, two) = (
        deployer.csrf_token(page).await,
        deployer.csrf_token(page).await,
    );
    // Pages are compressed: the secret never appears twice in the same bytes.
    assert_ne!(one, two);
    let configure = |token: String, value: &'static str| {
        vec![
            ("csrf_token".to_owned(), token),
            ("team".to_owned(), "acme".to_owned()),
            ("app".to_owned(), "web".to_owned()),
            ("env_text".to_owned(), format!("GREETING={value}")),
        ]
    };
    let mut altered = one.clone().into_bytes();
    altered[0] = if altered[0] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();
    for (token, expected) in [
        (one.clone(), StatusCode::FOUND),
        (two, StatusCode::FOUND),
        (altered, StatusCode::FORBIDDEN),
        (one[one.len() / 2..].to_owned(), StatusCode::FORBIDDEN),
    ] {
        let fields = configure(token.clone(), "hello");
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = deployer
            .post_form(
                ConfigureApp::PATH,
                &fields,
                true,
                Some("http://berth.test/teams/acme/apps/web"),
            )
            .await;
        assert_eq!(response.status, expected, "{token}: {}", response.body);
    }
}

/// Decodes a body by its `Content-Encoding`.
fn decoded(headers: &axum::http::HeaderMap, body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        None => out.extend_from_slice(body),
        Some(other) => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test]
async fn the_bundle_is_sent_precompressed_under_hashed_names_that_browsers_keep_for_a_year() {
    let app = TestApp::sqlite()
        .with_team()
        .with_built_site()
        .start()
        .await;
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site");
    let assets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("assets.json")).unwrap()).unwrap();
    let get = |path: &str, encodings: Option<&str>| {
        let mut request = Request::get(path).header(header::ACCEPT, "*/*");
        if let Some(encodings) = encodings {
            request = request.header(header::ACCEPT_ENCODING, encodings);
        }
        app.send_raw(request.body(Body::empty()).unwrap())
    };

    // The page names the hashed files, and its script hydrates with them.
    let (status, headers, body) = get("/signin", Some("gzip, deflate, br")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "br");
    let page = String::from_utf8(decoded(&headers, &body)).unwrap();
    for (key, content_type) in [
        ("js", "text/javascript"),
        ("wasm", "application/wasm"),
        ("css", "text/css"),
    ] {
        let path = assets[key].as_str().unwrap();
        let hash = path.rsplit('/').next().unwrap().split('.').nth(1).unwrap();
        assert_eq!(hash.len(), 16, "{path}");
        assert!(page.contains(&format!("\"{path}\"")), "{path} in {page}");
        let plain = std::fs::read(site.join(path.trim_start_matches('/'))).unwrap();
        for (accepts, encoding) in [
            (Some("gzip, deflate, br"), Some("br")),
            (Some("gzip"), Some("gzip")),
            (None, None),
        ] {
            let (status, headers, body) = get(path, accepts).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                headers
                    .get(header::CONTENT_ENCODING)
                    .and_then(|v| v.to_str().ok()),
                encoding,
                "{path} for {accepts:?}"
            );
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with(content_type),
                "{path}: {:?}",
                headers[header::CONTENT_TYPE]
            );
            assert_eq!(
                headers[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
            assert!(decoded(&headers, &body) == plain, "{path} for {accepts:?}");
            if encoding.is_some() {
                assert!(body.len() < plain.len() / 2, "{path} for {accepts:?}");
            }
        }
    }
    assert!(!page.contains("/pkg/berth.js") && !page.contains("/pkg/berth.css"));

    // What is not there is not cached; JSON is compressed as it goes.
    let (status, headers, _) = get("/pkg/berth.0000000000000000.js", Some("br")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers.get(header::CACHE_CONTROL).is_none());
    let (status, headers, body) = get("/api/v1/openapi.json", Some("gzip")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let document: serde_json::Value = serde_json::from_slice(&decoded(&headers, &body)).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
}

/// Islands mode hydrates nothing outside the islands, so pages do not carry their data a
/// second time as JSON for the browser; an island's props are only what it shows (the deploy
/// form's, not the whole app page).
#[tokio::test]
async fn pages_carry_no_data_for_the_browser_but_their_islands_props() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let mut owner = app.signed_in(OWNER).await;
    for path in ["/teams/acme/history", "/teams/acme/apps/web", "/teams/acme"] {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        // Leptos still writes the (empty) arrays the data would go into.
        assert!(
            page.body.contains("__RESOLVED_RESOURCES=[];")
                && !page.body.contains("__RESOLVED_RESOURCES["),
            "{path} carries its resources' data: {}",
            page.body
        );
    }
    let page = owner.get("/teams/acme/apps/web/deploy").await;
    let island = page
        .body
        .split("<leptos-island")
        .nth(1)
        .expect("the app page has the deploy island")
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    assert!(island.contains("DeployImageIsland"), "{island}");
    assert!(island.contains("data-props"), "{island}");
    // What the form needs and nothing of the rest of the page (keys are quoted as `"` or
    // `&quot;` in the attribute).
    assert!(island.contains("current_image"), "{island}");
    for key in ["operations", "config", "flash", "disk", "platform"] {
        for quoted in [format!("{key}\":"), format!("{key}&quot;:")] {
            assert!(!island.contains(&quoted), "{key} in {island}");
        }
    }
}

/// The main navigation marks the page's own section, once: one `aria-current` attribute
/// on one link (a second copy of an attribute on one element is an HTML parse error).
#[tokio::test]
async fn the_navigation_marks_the_pages_section_once() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let mut owner = app.signed_in(OWNER).await;
    for (path, section) in [
        ("/teams/acme", "Overview"),
        ("/teams/acme/apps", "Apps"),
        ("/teams/acme/apps/web", "Apps"),
        ("/teams/acme/apps/web/history", "Apps"),
        ("/teams/acme/history", "History"),
        ("/teams/acme/members", "Members"),
        ("/teams/acme/credentials", "Credentials"),
        ("/settings/tokens", "API tokens"),
    ] {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let nav = page
            .body
            .split("<nav")
            .nth(1)
            .and_then(|rest| rest.split("</nav>").next())
            .unwrap_or_else(|| panic!("{path} has no navigation: {}", page.body));
        assert_eq!(nav.matches("aria-current").count(), 1, "{path}: {nav}");
        assert!(
            nav.contains(&format!(r#"aria-current="page">{section}</a>"#)),
            "{path}: {nav}"
        );
    }
}

#[tokio::test]
async fn every_page_has_a_title_of_its_own_and_the_icon_answers() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let operation = app
        .configure_and_wait("web", serde_json::json!({"GREETING": "hello"}))
        .await;
    let id = operation["id"].as_i64().unwrap();
    let title = |body: &str| {
        body.split("<title>")
            .nth(1)
            .and_then(|rest| rest.split("</title>").next())
            .map(str::to_owned)
    };
    let mut anonymous = app.browser();
    for (path, expected) in [
        ("/signin", "Sign in · Berth"),
        ("/signup", "Sign up · Berth"),
    ] {
        let page = anonymous.get(path).await;
        assert_eq!(title(&page.body).as_deref(), Some(expected), "{path}");
    }
    let mut owner = app.signed_in(OWNER).await;
    for (path, expected) in [
        ("/teams/acme/members", "Members · Berth".to_owned()),
        ("/teams/acme/apps/web", "web · Berth".to_owned()),
        (
            "/teams/acme/apps/web/deploy",
            "Deploy · web · Berth".to_owned(),
        ),
        (
            "/teams/acme/apps/web/config",
            "Configuration · web · Berth".to_owned(),
        ),
        ("/teams/acme/apps/web/logs", "Logs · web · Berth".to_owned()),
        (
            &format!("/teams/acme/operations/{id}"),
            format!("Operation {id} · configure of web · Berth"),
        ),
    ] {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(title(&page.body), Some(expected), "{path}");
    }
    let overview = owner.get("/teams/acme").await;
    let overview_title = title(&overview.body).unwrap_or_default();
    assert!(
        overview_title.ends_with("overview · Berth"),
        "{overview_title}"
    );
    assert!(overview
        .body
        .contains(r#"<link rel="icon" href="/favicon.svg""#));

    for path in ["/favicon.ico", "/favicon.svg"] {
        let icon = anonymous.get(path).await;
        assert_eq!(icon.status, StatusCode::OK, "{path}");
        assert_eq!(icon.headers["content-type"], "image/svg+xml", "{path}");
        assert!(icon.body.starts_with("<svg"), "{path}");
    }
}

#[tokio::test]
async fn a_refused_plain_deploy_form_comes_back_filled_in_without_its_password() {
    use app::serverfns::deploys::DeployImage;
    use leptos::server_fn::ServerFn;
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let mut owner = app.signed_in(OWNER).await;
    let csrf = owner.csrf_token("/teams/acme/apps/web/deploy").await;
    let refused = owner
        .post_form(
            DeployImage::PATH,
            &[
                ("csrf_token", csrf.as_str()),
                ("team", "acme"),
                ("app", "web"),
                ("image", "Not An Image"),
                ("credentials", "new"),
                ("registry_username", "bob"),
                ("registry_password", "hunter2-not-kept"),
                ("remember", "once"),
                ("env_text", "API_TOKEN=s3cr3t-not-kept"),
            ],
            true,
            Some("http://berth.test/teams/acme/apps/web/deploy"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(refused.location(), Some("/teams/acme/apps/web/deploy"));
    let page = owner.get("/teams/acme/apps/web/deploy").await;
    let form = page
        .body
        .split("id=\"deploy\"")
        .nth(1)
        .expect("the deploy form");
    assert!(form.contains("value=\"Not An Image\""), "{form}");
    assert!(form.contains("aria-invalid=\"true\""), "{form}");
    assert!(form.contains("value=\"bob\""), "{form}");
    for (id, checked) in [
        ("credentials-new", true),
        ("remember-once", true),
        ("remember-app", false),
    ] {
        let input = form
            .split(&format!("id=\"{id}\""))
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .unwrap_or_else(|| panic!("{id}"));
        assert_eq!(input.contains("checked"), checked, "{id}: {input}");
    }
    app.assert_no_leaks(&["hunter2-not-kept", "s3cr3t-not-kept"]);
}
