//! Operation logs are kept for `BERTH_OPERATION_LOG_DAYS` after an operation ends: once
//! deleted, the operation stays in the history, and its page and the API say why the log is
//! empty.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn a_deleted_log_is_explained_and_the_operation_stays() {
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "image", None).await;
    let configured = app
        .configure_and_wait("web", json!({"GREETING": {"value": "hi", "plain": true}}))
        .await;
    let id = configured["id"].as_i64().unwrap();
    assert!(!app.log(id).await.is_empty(), "it wrote a log");
    assert!(configured.get("log_pruned_at").is_none(), "{configured}");

    // As the hourly task does once the days have passed (here: everything that ended).
    let pruned = app
        .store
        .prune_operation_logs(store::now_ms() + 1, 100)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(app.log(id).await.is_empty());
    let shown = app.operation(id).await;
    assert!(shown["log_pruned_at"].is_i64(), "{shown}");
    assert_eq!(shown["status"], configured["status"]);
    assert_eq!(app.operations("web").await.len(), 1, "the history keeps it");
    let page = app
        .signed_in(DEPLOYER)
        .await
        .get(&format!("/teams/acme/operations/{id}"))
        .await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("log was deleted") && page.body.contains("BERTH_OPERATION_LOG_DAYS"),
        "{}",
        page.body
    );
    app.stop().await;
}
