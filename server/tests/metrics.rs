//! `/metrics`: Prometheus text for the addresses the operator allows (through trusted
//! proxies like every client address), nothing for anyone else; operations by kind and
//! outcome with their durations, the queue, registry verification outcomes and HTTP latency
//! by route template.

mod support;

use serde_json::json;
use support::*;
use testregistry::TestRegistry;

const PASSWORD: &str = "metrics-pull-pass-51c9e0";

async fn scrape(app: &TestApp, from: &str) -> TestResponse {
    app.browser().connecting_from(from).get("/metrics").await
}

#[tokio::test]
async fn metrics_count_operations_verifications_and_requests_for_allowed_addresses_only() {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD), "metrics")
        .await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .with_metrics_allow("127.0.0.0/8, 10.1.0.0/16")
        .with_trusted_proxies("10.9.0.1/32")
        .start()
        .await;
    app.create_app("web", "image", None).await;
    let image = app.image("team/web:1");
    let deployed = app
        .deploy_and_wait(
            "web",
            json!({"image": image, "registry_username": "puller", "registry_password": PASSWORD}),
        )
        .await;
    app.succeeded(&deployed).await;
    let refused = app
        .deploy("web", json!({"image": image, "registry_username": "puller", "registry_password": "not-the-password"}))
        .await;
    assert_eq!(refused.status.as_u16(), 422);

    // The worker counts an operation just after its row says so: wait (bounded) for it.
    let counted = r#"berth_operations_total{kind="deploy",outcome="succeeded"} 1"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let scraped = loop {
        let scraped = scrape(&app, "127.0.0.1").await;
        assert_eq!(scraped.status.as_u16(), 200, "{}", scraped.body);
        if scraped.body.contains(counted) || std::time::Instant::now() > deadline {
            break scraped;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(scraped.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = scraped.body;
    for expected in [
        r#"berth_operations_total{kind="deploy",outcome="succeeded"} 1"#,
        r#"berth_operation_duration_seconds_bucket{kind="deploy",outcome="succeeded",le="+Inf"} 1"#,
        "berth_operations_queued 0",
        "berth_operations_running 0",
        r#"berth_registry_verifications_total{outcome="ok"}"#,
        r#"berth_registry_verifications_total{outcome="wrong_credentials"} 1"#,
        r#"berth_http_request_duration_seconds_bucket{method="POST",route="/api/v1/teams/{team}/apps/{app}/deploys",status="202""#,
        r#"route="/api/v1/teams/{team}/apps/{app}/deploys",status="422""#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // Paths never become series: only route templates do.
    assert!(!text.contains("/teams/acme/"), "{text}");
    assert!(!text.contains(PASSWORD) && !text.contains("not-the-password"));

    // Through a trusted proxy the forwarded address counts; anyone else gets nothing.
    let mut proxied = app.browser().connecting_from("10.9.0.1");
    proxied.forwarded_for = Some("10.1.2.3".into());
    assert_eq!(proxied.get("/metrics").await.status.as_u16(), 200);
    let mut spoofed = app.browser().connecting_from("203.0.113.9");
    spoofed.forwarded_for = Some("127.0.0.1".into());
    assert_eq!(spoofed.get("/metrics").await.status.as_u16(), 404);
    assert_eq!(scrape(&app, "203.0.113.9").await.status.as_u16(), 404);
    assert_eq!(
        app.browser().get("/metrics").await.status.as_u16(),
        404,
        "no peer address: no metrics"
    );
    app.stop().await;

    // Without BERTH_METRICS_ALLOW there is no endpoint at all.
    let plain = TestApp::sqlite().start().await;
    assert_eq!(scrape(&plain, "127.0.0.1").await.status.as_u16(), 404);
}
