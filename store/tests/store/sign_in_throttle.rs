use crate::support::*;
use store::{SignInLimits, Throttled};

const MINUTE_MS: i64 = 60 * 1000;

fn limits(per_account: i64, per_ip: i64) -> SignInLimits {
    SignInLimits {
        window_ms: 15 * MINUTE_MS,
        per_account,
        per_ip,
    }
}

/// Moves every recorded attempt `ms` into the past.
async fn age_attempts(store: &TestStore, ms: i64) {
    store
        .execute_sql(&format!(
            "UPDATE sign_in_attempts SET attempted_at = attempted_at - {ms}"
        ))
        .await;
}

async fn allowed(store: &TestStore, email: &str, ip: &str, limits: SignInLimits) -> bool {
    store
        .check_sign_in_allowed(email, ip, limits)
        .await
        .unwrap()
        .is_ok()
}

on_both_backends! {
    async fn sign_in_is_throttled_per_account_and_address_and_per_address(store: &TestStore) {
        // Per account and address: failures from one address add up for that address only.
        let per_account = limits(3, 100);
        for _ in 0..2 {
            store.record_sign_in("ada@example.com", "10.0.0.1", false).await.unwrap();
        }
        assert!(allowed(store, "ada@example.com", "10.0.0.1", per_account).await);
        store.record_sign_in("ada@example.com", "10.0.0.1", false).await.unwrap();
        let refused = store
            .check_sign_in_allowed("ada@example.com", "10.0.0.1", per_account)
            .await
            .unwrap();
        let Err(Throttled { retry_after_secs }) = refused else {
            panic!("the fourth attempt on ada's account from 10.0.0.1 is allowed");
        };
        assert!((14 * 60..=15 * 60).contains(&retry_after_secs), "{retry_after_secs}");
        // Someone guessing elsewhere cannot lock ada out from her own address.
        assert!(allowed(store, "ada@example.com", "10.0.0.9", per_account).await);
        assert!(allowed(store, "bob@example.com", "10.0.0.1", per_account).await);

        // `berth user unlock` forgets the account's failures.
        assert_eq!(store.clear_failed_sign_ins("ada@example.com").await.unwrap(), 3);
        assert!(allowed(store, "ada@example.com", "10.0.0.1", per_account).await);

        // Per address: failures against many accounts add up.
        let per_ip = limits(100, 3);
        for account in ["carol@example.com", "dave@example.com"] {
            store.record_sign_in(account, "192.0.2.7", false).await.unwrap();
        }
        assert!(allowed(store, "erin@example.com", "192.0.2.7", per_ip).await);
        store.record_sign_in("erin@example.com", "192.0.2.7", false).await.unwrap();
        assert!(!allowed(store, "frank@example.com", "192.0.2.7", per_ip).await);
        assert!(allowed(store, "frank@example.com", "192.0.2.8", per_ip).await);
    }

    async fn successful_sign_ins_do_not_count(store: &TestStore) {
        for _ in 0..5 {
            store.record_sign_in("ada@example.com", "10.0.0.1", true).await.unwrap();
        }
        assert!(allowed(store, "ada@example.com", "10.0.0.1", limits(1, 1)).await);
    }

    async fn a_successful_sign_in_clears_failures(store: &TestStore) {
        let limits = limits(3, 100);
        for _ in 0..2 {
            store.record_sign_in("ada@example.com", "10.0.0.1", false).await.unwrap();
            store.record_sign_in("bob@example.com", "10.0.0.1", false).await.unwrap();
        }
        store.record_sign_in("ada@example.com", "10.0.0.1", true).await.unwrap();

        // Ada starts afresh: two more failures leave her below three.
        for _ in 0..2 {
            store.record_sign_in("ada@example.com", "10.0.0.2", false).await.unwrap();
        }
        assert!(allowed(store, "ada@example.com", "10.0.0.2", limits).await);
        store.record_sign_in("ada@example.com", "10.0.0.2", false).await.unwrap();
        assert!(!allowed(store, "ada@example.com", "10.0.0.2", limits).await);

        // Only her own failures were cleared.
        store.record_sign_in("bob@example.com", "10.0.0.1", false).await.unwrap();
        assert!(!allowed(store, "bob@example.com", "10.0.0.1", limits).await);
    }

    async fn the_wait_ends_when_the_oldest_failure_leaves_the_window(store: &TestStore) {
        let limits = limits(2, 100);
        for _ in 0..2 {
            store.record_sign_in("ada@example.com", "10.0.0.1", false).await.unwrap();
        }
        age_attempts(store, 10 * MINUTE_MS).await;

        let Err(Throttled { retry_after_secs }) = store
            .check_sign_in_allowed("ada@example.com", "10.0.0.1", limits)
            .await
            .unwrap()
        else {
            panic!("ada is not throttled");
        };
        assert!((4 * 60..=5 * 60).contains(&retry_after_secs), "{retry_after_secs}");

        age_attempts(store, 5 * MINUTE_MS + 1).await;
        assert!(allowed(store, "ada@example.com", "10.0.0.1", limits).await);
    }

    /// Attempts older than a day serve no limit and are deleted as new ones come in.
    async fn old_attempts_are_pruned(store: &TestStore) {
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            store.record_sign_in("ada@example.com", ip, false).await.unwrap();
        }
        age_attempts(store, 25 * 60 * MINUTE_MS).await;
        store.record_sign_in("bob@example.com", "10.0.0.9", false).await.unwrap();

        let rows = store.table_as_text("sign_in_attempts").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].contains(&"bob@example.com".to_owned()), "{rows:?}");
    }
}
