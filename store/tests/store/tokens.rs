use crate::support::*;
use domain::ApiTokenName;
use sha2::{Digest, Sha256};
use store::StoreError;

fn token_name(value: &str) -> ApiTokenName {
    ApiTokenName::parse(value).unwrap()
}

on_both_backends! {
    async fn a_new_token_authenticates_its_owner(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;

        let token = store.create_api_token(ada.user_id, &token_name("CI deploys")).await.unwrap();

        assert!(token.secret.starts_with("berth_"), "scanners recognise the prefix");
        assert!(token.secret.len() >= 40, "{}", token.secret.len());
        assert_eq!(token.summary.name, "CI deploys");
        assert!(token.secret.starts_with(&token.summary.prefix));
        assert!(token.summary.prefix.len() < token.secret.len() / 2, "{}", token.summary.prefix);
        assert_eq!(token.summary.last_used_at, None);
        assert!(!format!("{token:?}").contains(&token.secret), "Debug hides the secret");

        let before_use = now_ms();
        assert_eq!(store.authenticate_api_token(&token.secret).await.unwrap(), Some(ada.user_id));
        let listed = store.api_tokens(ada.user_id).await.unwrap();
        let last_used = listed[0].last_used_at.expect("use is recorded");
        assert!(last_used >= before_use, "{last_used} < {before_use}");
    }

    async fn tokens_are_listed_newest_first_to_their_owner_only(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;
        for name in ["laptop", "CI deploys", "staging"] {
            store.create_api_token(ada.user_id, &token_name(name)).await.unwrap();
        }

        let listed = store.api_tokens(ada.user_id).await.unwrap();
        let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["staging", "CI deploys", "laptop"]);
        assert!(store.api_tokens(bob.user_id).await.unwrap().is_empty());
    }

    async fn revoked_tokens_no_longer_authenticate(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let revoked = store.create_api_token(ada.user_id, &token_name("old")).await.unwrap();
        let kept = store.create_api_token(ada.user_id, &token_name("new")).await.unwrap();

        store.revoke_api_token(ada.user_id, revoked.summary.id).await.unwrap();

        assert_eq!(store.authenticate_api_token(&revoked.secret).await.unwrap(), None);
        assert_eq!(store.authenticate_api_token(&kept.secret).await.unwrap(), Some(ada.user_id));
        let listed = store.api_tokens(ada.user_id).await.unwrap();
        let listed: Vec<i64> = listed.iter().map(|t| t.id).collect();
        assert_eq!(listed, [kept.summary.id]);
        let again = store.revoke_api_token(ada.user_id, revoked.summary.id).await;
        assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    }

    async fn only_its_owner_can_revoke_a_token(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;
        let token = store.create_api_token(ada.user_id, &token_name("CI")).await.unwrap();

        let by_bob = store.revoke_api_token(bob.user_id, token.summary.id).await;
        assert!(matches!(by_bob, Err(StoreError::NotFound)), "{by_bob:?}");
        let unknown = store.revoke_api_token(ada.user_id, token.summary.id + 1000).await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");

        assert_eq!(store.authenticate_api_token(&token.secret).await.unwrap(), Some(ada.user_id));
    }

    async fn unknown_tokens_do_not_authenticate(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let token = store.create_api_token(ada.user_id, &token_name("CI")).await.unwrap();

        let uppercased = token.secret.to_uppercase();
        let without_prefix = token.secret.trim_start_matches("berth_").to_owned();
        let truncated = token.secret[..token.secret.len() - 1].to_owned();
        let near_misses = [truncated.as_str(), &uppercased, &without_prefix];
        for secret in ["", "berth_", "berth_doesnotexist"].into_iter().chain(near_misses) {
            assert_eq!(store.authenticate_api_token(secret).await.unwrap(), None, "{secret:?}");
        }
    }

    /// A copy of the database (a backup, a leaked dump) must not hand out working tokens:
    /// only a SHA-256 of each token is kept.
    async fn tokens_are_stored_hashed(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let token = store.create_api_token(ada.user_id, &token_name("CI")).await.unwrap();
        store.authenticate_api_token(&token.secret).await.unwrap();

        let rows = store.table_as_text("api_tokens").await;
        assert_eq!(rows.len(), 1);
        let random_part = token.secret.trim_start_matches("berth_");
        for value in &rows[0] {
            assert!(!value.contains(random_part), "the secret is in the table: {value}");
        }
        let digest = hex::encode(Sha256::digest(token.secret.as_bytes()));
        assert!(rows[0].contains(&digest), "no SHA-256 of the token in {:?}", rows[0]);
    }
}
