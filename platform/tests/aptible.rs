//! The Aptible client against the stand-in (`testaptible`), which speaks Aptible's wire
//! shapes and records every request: these tests assert what Berth sends — method, path,
//! headers, body — and what it makes of each answer.

use domain::Secret;
use platform::aptible::{
    AptibleClient, AptibleError, AptibleOperation, OperationRequest, OperationStatus,
    APTIBLE_PRIVATE_REGISTRY_PASSWORD, APTIBLE_PRIVATE_REGISTRY_USERNAME, MAX_LOG_BYTES,
};
use serde_json::json;
use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use testaptible::{RecordedRequest, Server, TestAptible, FAIL_THIS_OPERATION};

const EMAIL: &str = "owner@example.com";
const PASSWORD: &str = "correct horse battery staple";
const OTP_EMAIL: &str = "careful@example.com";
const OTP_PASSWORD: &str = "another long password";
const OTP_CODE: &str = "424242";
const REGISTRY_PASSWORD: &str = "registry-pa55word-do-not-leak";

async fn stand_in() -> TestAptible {
    TestAptible::builder()
        .user(EMAIL, PASSWORD)
        .user(OTP_EMAIL, OTP_PASSWORD)
        .otp(OTP_CODE)
        .app(
            "production",
            "web",
            11,
            Some("git@127.0.0.1:production/web.git"),
        )
        .app("staging", "web", 12, Some("git@127.0.0.1:staging/web.git"))
        .app("staging", "worker", 13, None)
        .expired_token("an-expired-token")
        .start()
        .await
}

fn client_for(aptible: &TestAptible) -> AptibleClient {
    AptibleClient::new(
        &aptible.api_url(),
        &aptible.auth_url(),
        Duration::from_secs(10),
    )
    .expect("loopback URLs are accepted")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), Secret::new(*value)))
        .collect()
}

/// The three headers every request to Aptible carries, with this token.
fn assert_aptible_headers(request: &RecordedRequest, token: Option<&str>) {
    assert_eq!(
        request.header("content-type"),
        Some("application/json"),
        "{request:?}"
    );
    assert_eq!(
        request.header("accept"),
        Some("application/json"),
        "{request:?}"
    );
    match token {
        Some(token) => assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "{} {}",
            request.method,
            request.path
        ),
        None => assert_eq!(request.header("authorization"), None, "{request:?}"),
    }
}

fn only_request(aptible: &TestAptible) -> RecordedRequest {
    let requests = aptible.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

async fn poll_to_the_end(
    client: &AptibleClient,
    token: &Secret,
    id: i64,
) -> (Vec<OperationStatus>, AptibleOperation) {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let operation = client.operation(token, id).await.expect("poll");
        seen.push(operation.status.clone());
        if operation.status.is_finished() {
            return (seen, operation);
        }
    }
    panic!("operation {id} never finished: {seen:?}");
}

// --- Signing in ---------------------------------------------------------------------

#[tokio::test]
async fn signing_in_sends_the_password_grant_and_keeps_the_token_and_its_expiry() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let before = now_ms();
    let token = client
        .sign_in(EMAIL, &Secret::new(PASSWORD), None, None)
        .await
        .expect("signed in");

    let week = 7 * 24 * 3600 * 1000;
    let expires = token.expires_at_ms.expect("an expiry");
    assert!(
        expires >= before + week - 5_000 && expires <= now_ms() + week + 5_000,
        "{expires}"
    );
    let request = only_request(&aptible);
    assert_eq!(request.server, Server::Auth);
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/tokens")
    );
    assert_aptible_headers(&request, None);
    assert_eq!(
        request.json(),
        json!({
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
            "scope": "manage",
            "expires_in": 604800,
        })
    );
    // The token is one Aptible takes.
    let info = client.check_token(&token.token).await.expect("accepted");
    assert_eq!(info.scope.as_deref(), Some("manage"));
}

#[tokio::test]
async fn an_account_with_two_factor_gets_asked_for_the_code_then_signs_in_with_it() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let password = Secret::new(OTP_PASSWORD);

    let asked = client
        .sign_in(OTP_EMAIL, &password, None, None)
        .await
        .unwrap_err();
    let AptibleError::OtpRequired {
        previous_login_attempt_id: Some(attempt),
    } = asked
    else {
        panic!("expected OtpRequired with an attempt id, got {asked:?}");
    };
    let wrong = client
        .sign_in(OTP_EMAIL, &password, Some("000000"), Some(&attempt))
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, AptibleError::OtpRequired { .. }),
        "{wrong:?}"
    );

    aptible.clear_requests();
    let token = client
        .sign_in(OTP_EMAIL, &password, Some(OTP_CODE), Some(&attempt))
        .await
        .expect("signed in with the code");
    let twelve_hours = 12 * 3600 * 1000;
    assert!(token.expires_at_ms.unwrap() <= now_ms() + twelve_hours + 5_000);
    let request = only_request(&aptible);
    assert_eq!(
        request.json(),
        json!({
            "grant_type": "password",
            "username": OTP_EMAIL,
            "password": OTP_PASSWORD,
            "scope": "manage",
            "expires_in": 43200,
            "otp_token": OTP_CODE,
            "previous_login_attempt_id": attempt,
        })
    );
}

#[tokio::test]
async fn a_wrong_password_is_wrong_credentials_and_never_quoted() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let error = client
        .sign_in(EMAIL, &Secret::new("not the password"), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AptibleError::WrongCredentials { .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), "wrong_credentials");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("invalid_credentials"), "{shown}");
    assert!(!shown.contains("not the password"), "{shown}");
    // Sign-in is a POST: never retried, even when it fails.
    assert_eq!(aptible.requests().len(), 1);
}

#[tokio::test]
async fn a_pasted_token_is_checked_with_the_auth_server() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let token = aptible.token_for(EMAIL);
    let info = client
        .check_token(&Secret::new(token.clone()))
        .await
        .unwrap();
    let expires = info.expires_at_ms.expect("an expiry");
    assert!(
        (expires - now_ms() - 7 * 24 * 3600 * 1000).abs() < 60_000,
        "{expires}"
    );
    let request = only_request(&aptible);
    assert_eq!(request.server, Server::Auth);
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/current_token")
    );
    assert_aptible_headers(&request, Some(&token));

    let unknown = client
        .check_token(&Secret::new("made-up"))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, AptibleError::ReconnectNeeded { .. }),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn an_expired_token_means_reconnect_everywhere() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let expired = Secret::new("an-expired-token");
    let errors = [
        client.check_token(&expired).await.unwrap_err(),
        client
            .find_app(&expired, "production", "web")
            .await
            .unwrap_err(),
        client.operation(&expired, 1).await.unwrap_err(),
        client
            .create_operation(&expired, 11, &OperationRequest::restart())
            .await
            .unwrap_err(),
    ];
    for error in errors {
        let AptibleError::ReconnectNeeded { message } = &error else {
            panic!("expected ReconnectNeeded, got {error:?}");
        };
        assert!(message.starts_with("expired_token"), "{message}");
        assert!(!error.to_string().contains("an-expired-token"), "{error}");
    }

    // A token that expires while in use.
    let token = aptible.token_for(EMAIL);
    let secret = Secret::new(token.clone());
    client.check_token(&secret).await.expect("still valid");
    aptible.expire_token(&token);
    assert!(matches!(
        client.check_token(&secret).await,
        Err(AptibleError::ReconnectNeeded { .. })
    ));
}

// --- Finding apps -------------------------------------------------------------------

#[tokio::test]
async fn an_app_is_found_by_environment_and_handle() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let token = aptible.token_for(EMAIL);
    let app = client
        .find_app(&Secret::new(token.clone()), "staging", "web")
        .await
        .unwrap();
    assert_eq!(app.id, 12);
    assert_eq!(app.handle, "web");
    assert_eq!(app.environment, "staging");
    assert_eq!(
        app.git_repo.as_deref(),
        Some("git@127.0.0.1:staging/web.git")
    );
    let request = only_request(&aptible);
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/find/app?handle=web&environment=staging");
    assert_aptible_headers(&request, Some(&token));

    let worker = client
        .find_app(&Secret::new(token), "staging", "worker")
        .await
        .unwrap();
    assert_eq!((worker.id, worker.git_repo), (13, None));
}

#[tokio::test]
async fn a_missing_app_is_not_found_and_a_duplicate_is_ambiguous() {
    let aptible = TestAptible::builder()
        .user(EMAIL, PASSWORD)
        .app("production", "web", 1, None)
        .app("production", "web", 2, None)
        .start()
        .await;
    let client = client_for(&aptible);
    let token = Secret::new(aptible.token_for(EMAIL));
    let missing = client
        .find_app(&token, "production", "api")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, AptibleError::NotFound { .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("\"api\""), "{missing}");
    let elsewhere = client.find_app(&token, "staging", "web").await.unwrap_err();
    assert!(
        matches!(elsewhere, AptibleError::NotFound { .. }),
        "{elsewhere:?}"
    );
    let ambiguous = client
        .find_app(&token, "production", "web")
        .await
        .unwrap_err();
    assert!(
        matches!(ambiguous, AptibleError::Ambiguous { .. }),
        "{ambiguous:?}"
    );
    // A real "no such app" is not a reason to page through every app.
    assert!(aptible
        .requests()
        .iter()
        .all(|r| r.path_only() == "/find/app"));
}

#[tokio::test]
async fn without_find_app_the_apps_are_paged_through() {
    let aptible = TestAptible::builder()
        .user(EMAIL, PASSWORD)
        .app("production", "web", 1, None)
        .app("production", "api", 2, None)
        .app("staging", "web", 3, Some("git@127.0.0.1:staging/web.git"))
        .app("staging", "api", 4, None)
        .app("staging", "jobs", 5, None)
        .app("staging", "jobs", 6, None)
        .page_size(2)
        .without_find_app()
        .start()
        .await;
    let client = client_for(&aptible);
    let token = aptible.token_for(EMAIL);
    let secret = Secret::new(token.clone());

    let app = client.find_app(&secret, "staging", "web").await.unwrap();
    assert_eq!((app.id, app.environment.as_str()), (3, "staging"));
    assert_eq!(
        app.git_repo.as_deref(),
        Some("git@127.0.0.1:staging/web.git")
    );
    let paths: Vec<String> = aptible.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/find/app?handle=web&environment=staging",
            "/apps",
            "/accounts/1",
            "/apps?page=2",
            "/accounts/2",
            "/apps?page=3",
        ]
    );
    for request in aptible.requests() {
        assert_eq!(request.method, "GET");
        assert_aptible_headers(&request, Some(&token));
    }

    let missing = client
        .find_app(&secret, "staging", "cron")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, AptibleError::NotFound { .. }),
        "{missing:?}"
    );
    let ambiguous = client
        .find_app(&secret, "staging", "jobs")
        .await
        .unwrap_err();
    assert!(
        matches!(ambiguous, AptibleError::Ambiguous { .. }),
        "{ambiguous:?}"
    );
}

// --- Operations ---------------------------------------------------------------------

/// Creates the operation and returns the request the stand-in got.
async fn create(
    aptible: &TestAptible,
    request: &OperationRequest,
) -> (AptibleOperation, RecordedRequest, String) {
    let client = client_for(aptible);
    let token = aptible.token_for(EMAIL);
    aptible.clear_requests();
    let operation = client
        .create_operation(&Secret::new(token.clone()), 12, request)
        .await
        .expect("created");
    let sent = only_request(aptible);
    assert_eq!(sent.server, Server::Api);
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/apps/12/operations")
    );
    assert_aptible_headers(&sent, Some(&token));
    (operation, sent, token)
}

#[tokio::test]
async fn an_image_deploy_forwards_the_image_and_given_credentials() {
    let aptible = stand_in().await;
    let password = Secret::new(REGISTRY_PASSWORD);
    let request =
        OperationRequest::deploy_image("registry.example/team/app:1.0", Some(("ci", &password)));
    let (operation, sent, _) = create(&aptible, &request).await;
    assert_eq!(operation.status, OperationStatus::Queued);
    assert!(!operation.cancelled);
    assert_eq!(
        sent.json(),
        json!({
            "type": "deploy",
            "settings": {"APTIBLE_DOCKER_IMAGE": "registry.example/team/app:1.0"},
            "sensitive_settings": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "ci",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
            },
        })
    );
}

#[tokio::test]
async fn an_image_deploy_with_remembered_credentials_sends_none() {
    let aptible = stand_in().await;
    let mut request = OperationRequest::deploy_image("registry.example/team/app:1.1", None);
    request.env = secrets(&[("GREETING", "hello")]);
    let (_, sent, _) = create(&aptible, &request).await;
    assert_eq!(
        sent.json(),
        json!({
            "type": "deploy",
            "env": {"GREETING": "hello"},
            "settings": {"APTIBLE_DOCKER_IMAGE": "registry.example/team/app:1.1"},
        })
    );
}

#[tokio::test]
async fn a_dockerfile_deploy_sends_the_ref_with_build_credentials_in_env() {
    let aptible = stand_in().await;
    let request = OperationRequest::deploy_git(
        "berth-deploy-7",
        secrets(&[
            (APTIBLE_PRIVATE_REGISTRY_USERNAME, "ci"),
            (APTIBLE_PRIVATE_REGISTRY_PASSWORD, REGISTRY_PASSWORD),
            ("REMOVED", ""),
        ]),
    );
    let (_, sent, _) = create(&aptible, &request).await;
    assert_eq!(
        sent.json(),
        json!({
            "type": "deploy",
            "git_ref": "berth-deploy-7",
            "env": {
                "APTIBLE_PRIVATE_REGISTRY_USERNAME": "ci",
                "APTIBLE_PRIVATE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
                "REMOVED": "",
            },
        })
    );
}

#[tokio::test]
async fn configure_and_restart_send_only_their_fields() {
    let aptible = stand_in().await;
    let (_, sent, _) = create(
        &aptible,
        &OperationRequest::configure(secrets(&[("DATABASE_URL", "postgres://x"), ("OLD", "")])),
    )
    .await;
    assert_eq!(
        sent.json(),
        json!({"type": "configure", "env": {"DATABASE_URL": "postgres://x", "OLD": ""}})
    );
    let (_, sent, _) = create(&aptible, &OperationRequest::restart()).await;
    assert_eq!(sent.body, r#"{"type":"restart"}"#);
}

#[tokio::test]
async fn an_operation_is_polled_to_success() {
    let aptible = stand_in().await;
    let (operation, _, token) = create(&aptible, &OperationRequest::restart()).await;
    let client = client_for(&aptible);
    aptible.clear_requests();
    let (seen, last) = poll_to_the_end(&client, &Secret::new(token.clone()), operation.id).await;
    assert_eq!(
        seen,
        [
            OperationStatus::Running,
            OperationStatus::Running,
            OperationStatus::Succeeded
        ]
    );
    assert_eq!(last.id, operation.id);
    for request in aptible.requests() {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, format!("/operations/{}", operation.id));
        assert_aptible_headers(&request, Some(&token));
    }
}

#[tokio::test]
async fn a_failing_operation_is_polled_to_failure() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let token = Secret::new(aptible.token_for(EMAIL));
    for request in [
        OperationRequest::configure(secrets(&[(FAIL_THIS_OPERATION, "1")])),
        OperationRequest::deploy_image("registry.example/fail:1", None),
    ] {
        let created = client.create_operation(&token, 11, &request).await.unwrap();
        let (_, last) = poll_to_the_end(&client, &token, created.id).await;
        assert_eq!(last.status, OperationStatus::Failed);
        assert!(!last.cancelled);
    }
}

#[tokio::test]
async fn a_cancelled_operation_is_put_with_cancelled_and_ends_failed() {
    let aptible = stand_in().await;
    let (operation, _, token) = create(&aptible, &OperationRequest::restart()).await;
    let client = client_for(&aptible);
    let secret = Secret::new(token.clone());
    assert_eq!(
        client
            .operation(&secret, operation.id)
            .await
            .unwrap()
            .status,
        OperationStatus::Running
    );
    aptible.clear_requests();
    let cancelled = client
        .cancel_operation(&secret, operation.id)
        .await
        .unwrap();
    assert!(cancelled.cancelled);
    let request = only_request(&aptible);
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, format!("/operations/{}", operation.id));
    assert_aptible_headers(&request, Some(&token));
    assert_eq!(request.body, r#"{"cancelled":true}"#);
    let (_, last) = poll_to_the_end(&client, &secret, operation.id).await;
    assert_eq!(last.status, OperationStatus::Failed);
    assert!(last.cancelled);

    let missing = client.cancel_operation(&secret, 999_999).await.unwrap_err();
    assert!(
        matches!(missing, AptibleError::NotFound { .. }),
        "{missing:?}"
    );
}

// --- Logs ---------------------------------------------------------------------------

#[tokio::test]
async fn logs_come_from_the_url_aptible_answers_without_the_token() {
    let aptible = stand_in().await;
    let mut request = OperationRequest::deploy_image("registry.example/team/app:2", None);
    request.env = secrets(&[("SECRET_KEY", "s3cret-value")]);
    let (operation, _, token) = create(&aptible, &request).await;
    let client = client_for(&aptible);
    let secret = Secret::new(token.clone());
    poll_to_the_end(&client, &secret, operation.id).await;
    aptible.clear_requests();

    let log = client.operation_logs(&secret, operation.id).await.unwrap();
    assert!(log.contains(&format!("with ID: {}", operation.id)), "{log}");
    assert!(
        log.contains("Configuration: SECRET_KEY=s3cret-value"),
        "{log}"
    );
    assert!(log.ends_with("Operation succeeded.\n"), "{log}");

    let requests = aptible.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", format!("/operations/{}/logs", operation.id).as_str())
    );
    assert_aptible_headers(&requests[0], Some(&token));
    assert_eq!(requests[1].method, "GET");
    assert!(
        requests[1]
            .path
            .starts_with(&format!("/_logs/{}?X-Amz-Signature=", operation.id)),
        "{}",
        requests[1].path
    );
    assert_eq!(requests[1].header("authorization"), None);
}

#[tokio::test]
async fn a_long_log_keeps_its_last_ten_mebibytes() {
    let aptible = stand_in().await;
    let (operation, _, token) = create(&aptible, &OperationRequest::restart()).await;
    let client = client_for(&aptible);
    let secret = Secret::new(token);
    poll_to_the_end(&client, &secret, operation.id).await;
    aptible.set_log_padding(MAX_LOG_BYTES + 1024 * 1024);
    let log = client.operation_logs(&secret, operation.id).await.unwrap();
    assert!(log.len() <= MAX_LOG_BYTES, "{}", log.len());
    assert!(log.len() > MAX_LOG_BYTES - 1024, "{}", log.len());
    assert!(
        log.starts_with("[Berth kept the end of this log"),
        "{}",
        &log[..100]
    );
    assert!(log.ends_with("Operation succeeded.\n"));
}

#[tokio::test]
async fn a_log_url_elsewhere_must_be_https_and_is_not_contacted_otherwise() {
    let aptible = TestAptible::builder()
        .user(EMAIL, PASSWORD)
        .app("production", "web", 12, None)
        .logs_on_another_host()
        .start()
        .await;
    let (operation, _, token) = create(&aptible, &OperationRequest::restart()).await;
    let client = client_for(&aptible);
    let error = client
        .operation_logs(&Secret::new(token), operation.id)
        .await
        .unwrap_err();
    assert!(matches!(error, AptibleError::Refused { .. }), "{error:?}");
    assert!(error.to_string().contains("not https"), "{error}");
    assert!(
        aptible
            .requests()
            .iter()
            .all(|r| r.server != Server::LogStorage),
        "the log host was contacted"
    );
}

// --- Retries ------------------------------------------------------------------------

#[tokio::test]
async fn a_get_is_tried_again_after_a_503() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let token = Secret::new(aptible.token_for(EMAIL));
    let created = client
        .create_operation(&token, 11, &OperationRequest::restart())
        .await
        .unwrap();
    aptible.clear_requests();
    aptible.fail_next(1, 503);
    let operation = client
        .operation(&token, created.id)
        .await
        .expect("the retry succeeds");
    assert_eq!(operation.id, created.id);
    assert_eq!(aptible.requests().len(), 2);

    aptible.clear_requests();
    aptible.fail_next(5, 503);
    let error = client.operation(&token, created.id).await.unwrap_err();
    assert!(
        matches!(&error, AptibleError::Api { status: 503, error, .. } if error == "service_unavailable"),
        "{error:?}"
    );
    assert_eq!(aptible.requests().len(), 3, "three tries in all");
}

#[tokio::test]
async fn a_post_or_put_is_never_tried_again() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let token = Secret::new(aptible.token_for(EMAIL));

    aptible.fail_next(1, 503);
    let error = client
        .create_operation(&token, 11, &OperationRequest::restart())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AptibleError::Api { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(aptible.requests().len(), 1);
    assert!(aptible.operation_ids().is_empty());

    let created = client
        .create_operation(&token, 11, &OperationRequest::restart())
        .await
        .unwrap();
    aptible.clear_requests();
    aptible.fail_next(1, 500);
    assert!(client.cancel_operation(&token, created.id).await.is_err());
    assert_eq!(aptible.requests().len(), 1);

    aptible.clear_requests();
    aptible.fail_next(1, 502);
    assert!(client
        .sign_in(EMAIL, &Secret::new(PASSWORD), None, None)
        .await
        .is_err());
    assert_eq!(aptible.requests().len(), 1);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = AptibleClient::new(&url, &url, Duration::from_secs(5)).unwrap();
    let error = client
        .sign_in(EMAIL, &Secret::new(PASSWORD), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AptibleError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains(PASSWORD), "{error}");
}

// --- Where secrets go ---------------------------------------------------------------

#[tokio::test]
async fn the_registry_password_travels_only_in_the_operation_body() {
    let aptible = stand_in().await;
    let client = client_for(&aptible);
    let token = client
        .sign_in(EMAIL, &Secret::new(PASSWORD), None, None)
        .await
        .unwrap()
        .token;
    client.check_token(&token).await.unwrap();
    let app = client.find_app(&token, "staging", "web").await.unwrap();
    let registry_password = Secret::new(REGISTRY_PASSWORD);
    let image =
        OperationRequest::deploy_image("registry.example/a:1", Some(("ci", &registry_password)));
    let git = OperationRequest::deploy_git(
        "berth-deploy-1",
        secrets(&[(APTIBLE_PRIVATE_REGISTRY_PASSWORD, REGISTRY_PASSWORD)]),
    );
    for request in [&image, &git] {
        let created = client
            .create_operation(&token, app.id, request)
            .await
            .unwrap();
        poll_to_the_end(&client, &token, created.id).await;
        client.operation_logs(&token, created.id).await.unwrap();
    }
    let created = client
        .create_operation(&token, app.id, &OperationRequest::restart())
        .await
        .unwrap();
    client.cancel_operation(&token, created.id).await.unwrap();

    let requests = aptible.requests();
    let carrying: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|request| request.contains(REGISTRY_PASSWORD))
        .collect();
    assert_eq!(carrying.len(), 2, "{carrying:#?}");
    let bodies: Vec<serde_json::Value> = carrying.iter().map(|request| request.json()).collect();
    assert_eq!(carrying[0].path, format!("/apps/{}/operations", app.id));
    assert_eq!(
        bodies[0]["sensitive_settings"][APTIBLE_PRIVATE_REGISTRY_PASSWORD],
        REGISTRY_PASSWORD
    );
    assert_eq!(
        bodies[1]["env"][APTIBLE_PRIVATE_REGISTRY_PASSWORD],
        REGISTRY_PASSWORD
    );
    for request in &carrying {
        assert!(
            request
                .headers
                .iter()
                .all(|(_, value)| !value.contains(REGISTRY_PASSWORD)),
            "{request:?}"
        );
    }

    // The account password goes to the token grant only, and the token never to the log
    // storage.
    let with_password: Vec<&str> = requests
        .iter()
        .filter(|request| request.contains(PASSWORD))
        .map(|request| request.path.as_str())
        .collect();
    assert_eq!(with_password, ["/tokens"]);
    for request in requests.iter().filter(|r| r.path.starts_with("/_logs/")) {
        assert!(!request.contains(token.expose()), "{request:?}");
    }
}
