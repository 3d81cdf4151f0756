use crate::support::*;
use store::{Backend, Store, StoreError};

on_both_backends! {
    /// Every start runs the migrations; running them on an up-to-date database changes
    /// nothing and loses nothing.
    async fn migrations_are_idempotent(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        store.migrate().await.expect("a second run succeeds");
        store.migrate().await.expect("a third run succeeds");

        // As a second Berth process starting against the same database would.
        let other_process = Store::connect(store.db.url()).await.unwrap();
        other_process.migrate().await.expect("another process migrates too");
        let found = other_process.user_by_email(&email("ada@example.com")).await.unwrap();
        assert_eq!(found.map(|user| user.id), Some(ada.user_id));
        other_process.close().await;
    }

    async fn the_url_picks_the_backend(store: &TestStore) {
        let expected = match store.db.backend_name() {
            "sqlite" => Backend::Sqlite,
            _ => Backend::Postgres,
        };
        assert_eq!(store.backend(), expected);
    }

    /// `/readyz` relies on this.
    async fn ping_reports_whether_the_database_answers(store: &TestStore) {
        store.ping().await.expect("a live database answers");
        let closed = Store::connect(store.db.url()).await.unwrap();
        closed.close().await;
        assert!(closed.ping().await.is_err(), "a closed store does not answer");
    }
}

#[tokio::test]
async fn urls_of_other_databases_are_refused() {
    for url in ["mysql://root@localhost/berth", "berth.db", ""] {
        let error = Store::connect(url).await.expect_err(url);
        assert!(
            matches!(error, StoreError::Database(sqlx::Error::Configuration(_))),
            "{url}: {error:?}"
        );
    }
}
