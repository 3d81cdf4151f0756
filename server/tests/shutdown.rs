//! What a stopping Berth does with the work in flight (SIGTERM, an upgrade): running
//! operations get `BERTH_SHUTDOWN_TIMEOUT_SECS` to finish, and those that do not are put
//! back in the queue — the next worker runs them again, first of their app's — while the
//! release that served keeps serving; live-log streams end at once so that the HTTP server
//! can stop (browsers reconnect to the next Berth).

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;
use testregistry::TestRegistry;

const PASSWORD: &str = "shutdown-pull-pass-7e1c55";

#[tokio::test]
async fn an_operation_still_running_when_berth_stops_is_put_back_in_the_queue_and_runs_again() {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let mut app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .start()
        .await;
    app.registry()
        .push_serving_image("team/web", "1", ("puller", PASSWORD), "first release")
        .await;
    // Its health check passes only after 6 s: longer than the 2 s the worker is given.
    app.registry()
        .push_slow_image("team/web", "slow", ("puller", PASSWORD), 6)
        .await;
    app.create_app("web", "image", None).await;
    let first = app
        .deploy_and_wait(
            "web",
            json!({
                "image": app.image("team/web:1"),
                "registry_username": "puller",
                "registry_password": PASSWORD,
            }),
        )
        .await;
    app.succeeded(&first).await;
    let url = app.release_url("web").await;

    let queued = app
        .deploy("web", json!({ "image": app.image("team/web:slow") }))
        .await
        .expect(202)
        .json()["operation"]
        .clone();
    let id = queued["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.operation(id).await["step"] != "health_check" {
        assert!(Instant::now() < deadline, "{}", app.log(id).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stopping = Instant::now();
    app.stop_worker_gracefully().await;
    assert!(stopping.elapsed() < Duration::from_secs(10));
    let handed_back = app.operation(id).await;
    assert_eq!(handed_back["status"], "queued", "{handed_back}");
    assert_eq!(handed_back["started_at"], serde_json::Value::Null);
    assert!(app.log(id).await.contains("put back in the queue"));
    // The release that served serves on; nothing of the stopped deploy runs.
    assert_eq!(
        served(&url).await.as_deref().map(str::trim),
        Some("first release")
    );
    assert_eq!(
        app.app_json("web").await["release"]["digest"],
        first["digest"]
    );

    // The next Berth's worker runs it again, to the end.
    let _worker = app.another_worker();
    let done = app.wait(id).await;
    app.succeeded(&done).await;
    let log = app.log(id).await;
    assert_eq!(log.matches("starting in 6 s").count(), 2, "{log}");
    assert_eq!(
        app.app_json("web").await["release"]["digest"],
        done["digest"]
    );
    app.stop().await;
}
