use crate::support::*;
use domain::Role;
use store::{passwords, AddedMember, StoreError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

on_both_backends! {
    async fn an_invite_link_works_once(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let (user_id, token) = store.invitee(acme, "new@example.com", Role::Deployer).await;

        let invite = store.invite(&token).await.unwrap().expect("an open invitation");
        assert_eq!(invite.user_id, user_id);
        assert_eq!(invite.email, "new@example.com");
        assert_eq!(invite.team_handle, "acme");
        assert_eq!(invite.team_name, "acme");

        let user = store.accept_invite(&token, &hash_of("my own password")).await.unwrap();
        assert_eq!(user.id, user_id);
        assert!(passwords::verify("my own password", user.password_hash.as_deref()));
        let members = store.members(acme.team_id).await.unwrap();
        let newcomer = members.iter().find(|m| m.user_id == user_id).unwrap();
        assert!(!newcomer.pending);
        assert_eq!(newcomer.role, Role::Deployer);

        // Used: the link neither shows nor sets a password again.
        assert!(store.invite(&token).await.unwrap().is_none());
        let again = store.accept_invite(&token, &hash_of("someone else's password")).await;
        assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
        let stored = store.user(user_id).await.unwrap().unwrap().password_hash;
        assert!(passwords::verify("my own password", stored.as_deref()));
    }

    async fn invitations_last_seven_days(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let before = now_ms();
        let (_, token) = store.invitee(acme, "new@example.com", Role::Viewer).await;

        let invite = store.invite(&token).await.unwrap().unwrap();
        assert!(invite.expires_at >= before + 7 * DAY_MS, "{}", invite.expires_at);
        assert!(invite.expires_at <= now_ms() + 7 * DAY_MS, "{}", invite.expires_at);
    }

    async fn expired_or_unknown_invites_are_refused(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let (user_id, token) = store.invitee(acme, "new@example.com", Role::Viewer).await;

        for unknown in ["inv_doesnotexist", "", &token[..token.len() - 1]] {
            assert!(store.invite(unknown).await.unwrap().is_none(), "{unknown:?}");
            let accepted = store.accept_invite(unknown, password_hash()).await;
            assert!(matches!(accepted, Err(StoreError::NotFound)), "{unknown:?}: {accepted:?}");
        }

        let aged = store
            .execute_sql(&format!("UPDATE invites SET expires_at = {}", now_ms() - 1))
            .await;
        assert_eq!(aged, 1);
        assert!(store.invite(&token).await.unwrap().is_none());
        let accepted = store.accept_invite(&token, password_hash()).await;
        assert!(matches!(accepted, Err(StoreError::NotFound)), "{accepted:?}");

        let user = store.user(user_id).await.unwrap().unwrap();
        assert_eq!(user.password_hash, None, "no password was set");
    }

    async fn removing_a_member_voids_their_open_invite(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let (user_id, token) = store.invitee(acme, "new@example.com", Role::Viewer).await;

        store.remove_member(acme.team_id, user_id).await.unwrap();

        assert!(store.invite(&token).await.unwrap().is_none());
        let accepted = store.accept_invite(&token, password_hash()).await;
        assert!(matches!(accepted, Err(StoreError::NotFound)), "{accepted:?}");
        assert_eq!(store.user(user_id).await.unwrap().unwrap().password_hash, None);

        // Adding them again sends a fresh, working invitation.
        let (again, new_token) = store.invitee(acme, "new@example.com", Role::Viewer).await;
        assert_eq!(again, user_id, "the same account");
        assert_ne!(new_token, token);
        assert!(store.invite(&new_token).await.unwrap().is_some());
    }

    /// A person has at most one open invitation: the latest. It sets their one password; the
    /// memberships themselves do not depend on it.
    async fn each_team_invites_separately_and_the_first_accepted_link_voids_the_rest(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let (user_id, first) = store.invitee(acme, "new@example.com", Role::Viewer).await;
        let (same, second) = store.invitee(bobs, "new@example.com", Role::Deployer).await;
        assert_eq!(same, user_id);
        assert_eq!(store.invite(&first).await.unwrap().unwrap().team_handle, "acme");
        assert_eq!(store.invite(&second).await.unwrap().unwrap().team_handle, "bobs");

        store.accept_invite(&second, password_hash()).await.unwrap();
        assert_eq!(store.role_in(user_id, "acme").await, Some(Role::Viewer));
        assert_eq!(store.role_in(user_id, "bobs").await, Some(Role::Deployer));
        // The other link cannot reset the now active account's password.
        assert!(store.invite(&first).await.unwrap().is_none());
        let takeover = store.accept_invite(&first, &hash_of("an attacker's password")).await;
        assert!(matches!(takeover, Err(StoreError::NotFound)), "{takeover:?}");
    }

    async fn a_new_link_to_the_same_team_replaces_the_earlier_one(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let (user_id, first) = store.invitee(acme, "new@example.com", Role::Viewer).await;
        store.remove_member(acme.team_id, user_id).await.unwrap();
        let (_, second) = store.invitee(acme, "new@example.com", Role::Viewer).await;
        assert!(store.invite(&first).await.unwrap().is_none());
        assert!(store.invite(&second).await.unwrap().is_some());
    }

    async fn once_accepted_a_person_is_added_without_invitation(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let (user_id, token) = store.invitee(acme, "new@example.com", Role::Viewer).await;
        store.accept_invite(&token, password_hash()).await.unwrap();

        let added = store
            .add_member(bobs.team_id, &email("new@example.com"), Role::Viewer, bobs.user_id)
            .await
            .unwrap();
        assert!(
            matches!(added, AddedMember::Pending { user_id: id, .. } if id == user_id),
            "{added:?}"
        );
    }
}
