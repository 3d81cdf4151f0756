use crate::support::*;
use domain::Role;
use store::{passwords, NewAccount, StoreError};

on_both_backends! {
    async fn an_account_comes_with_a_team_it_owns(store: &TestStore) {
        let before = now_ms();
        let (user, team_id) = store
            .create_account(NewAccount {
                email: &email("ada@example.com"),
                password_hash: password_hash(),
                team_handle: &handle("acme"),
                team_name: &team_name("Acme Corp"),
            })
            .await
            .unwrap();

        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.password_hash.as_deref(), Some(password_hash()));
        assert!(user.created_at >= before && user.created_at <= now_ms());

        let teams = store.teams_of(user.id).await.unwrap();
        assert_eq!(teams.len(), 1);
        assert_eq!(teams[0].team_id, team_id);
        assert_eq!(teams[0].handle, "acme");
        assert_eq!(teams[0].name, "Acme Corp");
        assert_eq!(teams[0].role, Role::Owner);

        let members = store.members(team_id).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].user_id, user.id);
        assert_eq!(members[0].role, Role::Owner);
        assert!(!members[0].pending);
    }

    /// `Email::parse` lower-cases, so differently cased spellings are one address.
    async fn emails_are_unique_case_insensitively(store: &TestStore) {
        let ada = store.owner("Ada@Example.com", "acme").await;

        let again = store
            .create_account(NewAccount {
                email: &email("ada@EXAMPLE.COM"),
                password_hash: password_hash(),
                team_handle: &handle("other"),
                team_name: &team_name("Other"),
            })
            .await;
        assert!(matches!(again, Err(StoreError::Taken { what: "email" })), "{again:?}");

        let found = store.user_by_email(&email("ADA@example.com")).await.unwrap().unwrap();
        assert_eq!(found.id, ada.user_id);
        assert_eq!(found.email, "ada@example.com");
    }

    /// Sign-up creates the person and their team together: both or neither.
    async fn a_taken_handle_creates_neither_user_nor_team(store: &TestStore) {
        store.owner("ada@example.com", "acme").await;

        let attempt = store
            .create_account(NewAccount {
                email: &email("bob@example.com"),
                password_hash: password_hash(),
                team_handle: &handle("acme"),
                team_name: &team_name("Bob's Acme"),
            })
            .await;
        assert!(matches!(attempt, Err(StoreError::Taken { what: "handle" })), "{attempt:?}");
        assert!(store.user_by_email(&email("bob@example.com")).await.unwrap().is_none());

        // Nothing half-made stands in the way of trying again with another handle.
        store.owner("bob@example.com", "bobs").await;
    }

    async fn users_are_found_by_email_and_by_id(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;

        let by_id = store.user(ada.user_id).await.unwrap().unwrap();
        let by_email = store.user_by_email(&email("ada@example.com")).await.unwrap().unwrap();
        assert_eq!(by_id.id, by_email.id);
        assert_eq!(by_id.email, by_email.email);

        assert!(store.user(ada.user_id + 1000).await.unwrap().is_none());
        assert!(store.user_by_email(&email("nobody@example.com")).await.unwrap().is_none());
    }

    async fn a_new_password_replaces_the_old_one(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;

        store.set_password(ada.user_id, &hash_of("a brand new password")).await.unwrap();

        let stored = store.user(ada.user_id).await.unwrap().unwrap().password_hash;
        assert!(passwords::verify("a brand new password", stored.as_deref()));
        assert!(!passwords::verify(PASSWORD, stored.as_deref()));
    }

    async fn setting_the_password_of_an_unknown_user_is_not_found(store: &TestStore) {
        let result = store.set_password(4242, password_hash()).await;
        assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    }
}

#[test]
fn passwords_verify_only_against_their_own_hash() {
    let hash = hash_of(PASSWORD);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    assert_ne!(hash, hash_of(PASSWORD), "hashes are salted");

    assert!(passwords::verify(PASSWORD, Some(&hash)));
    assert!(!passwords::verify(
        "correct horse battery stapler",
        Some(&hash)
    ));
    assert!(!passwords::verify(PASSWORD, Some("not a hash")));
    // No account, or an invitee without a password: never a match, whatever is typed.
    assert!(!passwords::verify(PASSWORD, None));
    assert!(!passwords::verify("", None));
}
