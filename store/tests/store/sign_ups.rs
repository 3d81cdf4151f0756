use crate::support::*;
use domain::{Email, TeamHandle, TeamName};
use store::{passwords, NewAccount, StoreError};

fn sign_up<'a>(
    email: &'a Email,
    hash: &'a str,
    handle: &'a TeamHandle,
    name: &'a TeamName,
) -> NewAccount<'a> {
    NewAccount {
        email,
        password_hash: hash,
        team_handle: handle,
        team_name: name,
    }
}

on_both_backends! {
    async fn a_confirmed_sign_up_becomes_an_account_once_and_voids_the_others(store: &TestStore) {
        let email = Email::parse("new@example.com").unwrap();
        let (first_handle, second_handle) = (TeamHandle::parse("first").unwrap(), TeamHandle::parse("second").unwrap());
        let name = TeamName::parse("A team").unwrap();
        let first_hash = hash_of("the first password");
        let since = now_ms() - 1;
        let first = store.create_pending_sign_up(sign_up(&email, &first_hash, &first_handle, &name)).await.unwrap();
        let second_hash = hash_of("the second password");
        let second = store.create_pending_sign_up(sign_up(&email, &second_hash, &second_handle, &name)).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(store.pending_sign_ups_since(&email, since).await.unwrap(), 2);

        // Nothing exists until one is confirmed.
        assert!(store.user_by_email(&email).await.unwrap().is_none());
        let pending = store.pending_sign_up(&second).await.unwrap().expect("a pending sign-up");
        assert_eq!((pending.email.as_str(), pending.team_handle.as_str()), ("new@example.com", "second"));
        assert!(passwords::verify("the second password", Some(&pending.password_hash)));

        let (user, team_id) = store.complete_sign_up(&second).await.unwrap();
        assert_eq!(user.email, "new@example.com");
        assert!(passwords::verify("the second password", user.password_hash.as_deref()));
        let teams = store.teams_of(user.id).await.unwrap();
        assert_eq!(teams.len(), 1);
        assert_eq!(teams[0].team_id, team_id);

        // Both links are spent: the used one and the other for the same address.
        for token in [&first, &second] {
            assert!(store.pending_sign_up(token).await.unwrap().is_none());
            let again = store.complete_sign_up(token).await;
            assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
        }
    }

    async fn a_sign_up_for_a_taken_address_or_handle_changes_nothing(store: &TestStore) {
        store.owner("ada@example.com", "acme").await;
        let name = TeamName::parse("A team").unwrap();
        let hash = hash_of("a password");
        let taken_email = Email::parse("ada@example.com").unwrap();
        let free_handle = TeamHandle::parse("free").unwrap();
        let token = store.create_pending_sign_up(sign_up(&taken_email, &hash, &free_handle, &name)).await.unwrap();
        let taken = store.complete_sign_up(&token).await;
        assert!(matches!(taken, Err(StoreError::Taken { what: "email" })), "{taken:?}");

        let free_email = Email::parse("new@example.com").unwrap();
        let taken_handle = TeamHandle::parse("acme").unwrap();
        let token = store.create_pending_sign_up(sign_up(&free_email, &hash, &taken_handle, &name)).await.unwrap();
        let taken = store.complete_sign_up(&token).await;
        assert!(matches!(taken, Err(StoreError::Taken { what: "handle" })), "{taken:?}");
        assert!(store.user_by_email(&free_email).await.unwrap().is_none());
        // Rolled back: the link still works once the handle question is settled elsewhere.
        assert!(store.pending_sign_up(&token).await.unwrap().is_some());
    }

    async fn confirmation_links_expire_after_a_day(store: &TestStore) {
        let email = Email::parse("new@example.com").unwrap();
        let handle = TeamHandle::parse("fresh").unwrap();
        let name = TeamName::parse("Fresh").unwrap();
        let hash = hash_of("a password");
        let before = now_ms();
        let token = store.create_pending_sign_up(sign_up(&email, &hash, &handle, &name)).await.unwrap();
        let pending = store.pending_sign_up(&token).await.unwrap().unwrap();
        assert!(pending.expires_at >= before + store::SIGN_UP_TTL_MS);
        store
            .execute_sql(&format!("UPDATE pending_sign_ups SET expires_at = {}", now_ms() - 1))
            .await;
        assert!(store.pending_sign_up(&token).await.unwrap().is_none());
        let expired = store.complete_sign_up(&token).await;
        assert!(matches!(expired, Err(StoreError::NotFound)), "{expired:?}");
        assert!(store.user_by_email(&email).await.unwrap().is_none());
    }
}
