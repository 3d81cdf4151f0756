use std::collections::HashMap;
use tower_sessions::{
    cookie::time::{Duration, OffsetDateTime},
    session::{Id, Record},
    ExpiredDeletion, SessionStore,
};

/// A session record expiring `expires_in` from now (whole seconds, as a cookie's would).
fn record(user_id: i64, expires_in: Duration) -> Record {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Record {
        id: Id::default(),
        data: HashMap::from([("user_id".to_owned(), serde_json::json!(user_id))]),
        expiry_date: OffsetDateTime::from_unix_timestamp(now).unwrap() + expires_in,
    }
}

on_both_backends! {
    /// Sessions live in the shared database, so any Berth process can serve any request.
    async fn sessions_round_trip(store: &TestStore) {
        let sessions = store.session_store();
        assert_eq!(store.stored_sessions().await.unwrap(), 0);
        let mut created = record(7, Duration::hours(1));
        sessions.create(&mut created).await.unwrap();
        assert_eq!(store.stored_sessions().await.unwrap(), 1);

        // Another process sees it.
        let other_process = store::Store::connect(store.db.url()).await.unwrap();
        let loaded = other_process.session_store().load(&created.id).await.unwrap();
        assert_eq!(loaded.as_ref(), Some(&created));
        other_process.close().await;

        let mut changed = created.clone();
        changed.data.insert("csrf".to_owned(), serde_json::json!("abc123"));
        changed.expiry_date += Duration::hours(1);
        sessions.save(&changed).await.unwrap();
        assert_eq!(sessions.load(&created.id).await.unwrap(), Some(changed));

        sessions.delete(&created.id).await.unwrap();
        assert_eq!(sessions.load(&created.id).await.unwrap(), None);
        assert_eq!(store.stored_sessions().await.unwrap(), 0);
        assert_eq!(sessions.load(&Id::default()).await.unwrap(), None, "unknown id");
    }

    async fn creating_a_session_never_overwrites_another(store: &TestStore) {
        let sessions = store.session_store();
        let mut first = record(1, Duration::hours(1));
        sessions.create(&mut first).await.unwrap();

        let mut second = record(2, Duration::hours(1));
        second.id = first.id;
        sessions.create(&mut second).await.unwrap();

        assert_ne!(second.id, first.id, "a colliding id is replaced");
        assert_eq!(sessions.load(&first.id).await.unwrap(), Some(first));
        assert_eq!(sessions.load(&second.id).await.unwrap(), Some(second));
    }

    async fn expired_sessions_are_neither_loaded_nor_kept(store: &TestStore) {
        let sessions = store.session_store();
        let mut expired = record(1, Duration::seconds(-1));
        let mut live = record(2, Duration::hours(1));
        sessions.create(&mut expired).await.unwrap();
        sessions.create(&mut live).await.unwrap();

        assert_eq!(sessions.load(&expired.id).await.unwrap(), None);

        sessions.delete_expired().await.unwrap();
        assert_eq!(sessions.load(&live.id).await.unwrap(), Some(live));
        // What is left in the table is the live session only.
        let table = match store.db.backend_name() {
            "sqlite" => "tower_sessions",
            _ => "tower_sessions.session",
        };
        assert_eq!(store.execute_sql(&format!("DELETE FROM {table}")).await, 1);
    }
}
