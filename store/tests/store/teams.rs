use crate::support::*;
use domain::Role;
use store::{AddedMember, StoreError};

on_both_backends! {
    async fn a_user_can_found_more_teams(store: &TestStore) {
        let ada = store.owner("ada@example.com", "zeta").await;
        let second = store
            .create_team(ada.user_id, &handle("alpha"), &team_name("Alpha Ltd"))
            .await
            .unwrap();

        let teams = store.teams_of(ada.user_id).await.unwrap();
        let listed: Vec<(&str, Role)> =
            teams.iter().map(|t| (t.handle.as_str(), t.role)).collect();
        assert_eq!(listed, [("alpha", Role::Owner), ("zeta", Role::Owner)], "by handle");
        assert_eq!(teams[0].team_id, second);
        assert_eq!(teams[0].name, "Alpha Ltd");
    }

    /// The frame's one query answers what `user` and `teams_of` answer apart.
    async fn user_with_teams_is_the_user_and_their_teams(store: &TestStore) {
        let ada = store.owner("ada@example.com", "zeta").await;
        let bob = store.owner("bob@example.com", "bobs").await;
        store.create_team(ada.user_id, &handle("alpha"), &team_name("Alpha Ltd")).await.unwrap();
        store.member(bob, "ada@example.com", Role::Viewer).await;
        store.set_viewers_read_logs(bob.team_id, true).await.unwrap();
        let cy = store.member(bob, "cy@example.com", Role::Deployer).await;
        store.remove_member(bob.team_id, cy).await.unwrap();

        for user_id in [ada.user_id, bob.user_id, cy] {
            let (user, teams) = store.user_with_teams(user_id).await.unwrap().expect("the person");
            let alone = store.user(user_id).await.unwrap().unwrap();
            assert_eq!(
                (user.id, &user.email, &user.password_hash, user.created_at),
                (alone.id, &alone.email, &alone.password_hash, alone.created_at)
            );
            let listed = |teams: &[store::TeamAccess]| -> Vec<(i64, String, String, Role, bool)> {
                teams.iter().map(|t| (t.team_id, t.handle.clone(), t.name.clone(), t.role, t.viewers_read_logs)).collect()
            };
            assert_eq!(listed(&teams), listed(&store.teams_of(user_id).await.unwrap()), "user {user_id}");
        }
        let (_, teams) = store.user_with_teams(ada.user_id).await.unwrap().unwrap();
        let handles: Vec<(&str, Role, bool)> = teams.iter().map(|t| (t.handle.as_str(), t.role, t.viewers_read_logs)).collect();
        assert_eq!(handles, [("alpha", Role::Owner, false), ("bobs", Role::Viewer, true), ("zeta", Role::Owner, false)]);
        let (_, none) = store.user_with_teams(cy).await.unwrap().expect("a person in no team is still a person");
        assert!(none.is_empty());
        assert!(store.user_with_teams(-1).await.unwrap().is_none());
    }

    async fn viewers_read_logs_is_off_until_an_owner_turns_it_on(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;
        let access = store.team_access(ada.user_id, "acme").await.unwrap().unwrap();
        assert!(!access.viewers_read_logs, "off by default");
        store.set_viewers_read_logs(ada.team_id, true).await.unwrap();
        assert!(store.team_access(ada.user_id, "acme").await.unwrap().unwrap().viewers_read_logs);
        assert!(store.team_access_by_id(ada.user_id, ada.team_id).await.unwrap().unwrap().viewers_read_logs);
        assert!(store.teams_of(ada.user_id).await.unwrap()[0].viewers_read_logs);
        assert!(!store.team_access(bob.user_id, "bobs").await.unwrap().unwrap().viewers_read_logs, "per team");
        store.set_viewers_read_logs(ada.team_id, false).await.unwrap();
        assert!(!store.team_access(ada.user_id, "acme").await.unwrap().unwrap().viewers_read_logs);
        assert!(matches!(store.set_viewers_read_logs(-1, true).await, Err(StoreError::NotFound)));
    }

    async fn team_handles_are_unique(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;

        let taken = store.create_team(bob.user_id, &handle("acme"), &team_name("Acme")).await;
        assert!(matches!(taken, Err(StoreError::Taken { what: "handle" })), "{taken:?}");
        assert_eq!(store.teams_of(bob.user_id).await.unwrap().len(), 1);
        assert_eq!(store.members(ada.team_id).await.unwrap().len(), 1);
    }

    /// Callers must not be able to tell "no such team" from "not your team".
    async fn team_access_is_none_for_other_teams(store: &TestStore) {
        let ada = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;

        assert_eq!(store.role_in(ada.user_id, "acme").await, Some(Role::Owner));
        assert_eq!(store.role_in(ada.user_id, "bobs").await, None);
        assert_eq!(store.role_in(bob.user_id, "acme").await, None);
        assert_eq!(store.role_in(ada.user_id, "no-such-team").await, None);

        let access = store.team_access(ada.user_id, "acme").await.unwrap().unwrap();
        assert_eq!(access.team_id, ada.team_id);
        assert_eq!(access.name, "acme");
    }

    async fn members_are_listed_owners_first_then_by_email(store: &TestStore) {
        let team = store.owner("zoe@example.com", "acme").await;
        store.member(team, "vic@example.com", Role::Viewer).await;
        store.member(team, "dan@example.com", Role::Deployer).await;
        store.member(team, "amy@example.com", Role::Owner).await;
        store.invitee(team, "ann@example.com", Role::Viewer).await;

        let members = store.members(team.team_id).await.unwrap();
        let listed: Vec<(&str, Role, bool)> = members
            .iter()
            .map(|m| (m.email.as_str(), m.role, m.pending))
            .collect();
        assert_eq!(
            listed,
            [
                ("amy@example.com", Role::Owner, false),
                ("zoe@example.com", Role::Owner, false),
                ("dan@example.com", Role::Deployer, false),
                ("ann@example.com", Role::Viewer, true),
                ("vic@example.com", Role::Viewer, false),
            ]
        );
        assert!(members.iter().all(|m| m.joined_at > 0));
    }

    async fn a_person_with_an_account_joins_only_when_they_accept(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;

        let added = store
            .add_member(acme.team_id, &email("Bob@Example.com"), Role::Deployer, acme.user_id)
            .await
            .unwrap();
        let AddedMember::Pending { user_id, invitation_id } = added else {
            panic!("an existing account is invited, not added: {added:?}");
        };
        assert_eq!(user_id, bob.user_id);
        assert_eq!(store.role_in(bob.user_id, "acme").await, None, "not before accepting");
        store
            .respond_to_invitation(bob.user_id, invitation_id, true)
            .await
            .unwrap();
        assert_eq!(store.role_in(bob.user_id, "acme").await, Some(Role::Deployer));
        assert_eq!(store.role_in(bob.user_id, "bobs").await, Some(Role::Owner));
    }

    async fn a_person_without_an_account_is_invited(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;

        let (user_id, token) = store.invitee(acme, "new@example.com", Role::Viewer).await;

        assert!(token.starts_with("inv_") && token.len() > 30, "{token}");
        let user = store.user(user_id).await.unwrap().unwrap();
        assert_eq!(user.email, "new@example.com");
        assert_eq!(user.password_hash, None, "they choose it through the invitation");
        assert_eq!(store.role_in(user_id, "acme").await, Some(Role::Viewer));
    }

    async fn adding_an_existing_member_twice_is_a_conflict(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        store.member(acme, "bob@example.com", Role::Viewer).await;
        let (_, token) = store.invitee(acme, "new@example.com", Role::Viewer).await;

        for (who, role) in [
            ("bob@example.com", Role::Owner),
            ("new@example.com", Role::Deployer),
            ("ada@example.com", Role::Viewer),
        ] {
            let again = store.add_member(acme.team_id, &email(who), role, acme.user_id).await;
            assert!(matches!(again, Err(StoreError::Taken { what: "email" })), "{who}: {again:?}");
        }

        // The refused additions changed nothing: roles stand, the invitation still works.
        let members = store.members(acme.team_id).await.unwrap();
        let roles: Vec<(&str, Role)> =
            members.iter().map(|m| (m.email.as_str(), m.role)).collect();
        assert_eq!(
            roles,
            [
                ("ada@example.com", Role::Owner),
                ("bob@example.com", Role::Viewer),
                ("new@example.com", Role::Viewer),
            ]
        );
        assert!(store.invite(&token).await.unwrap().is_some());
    }

    /// Several owners adding people at the same moment (or one adding while others sign in)
    /// must all succeed: a writer waits for the database's write lock rather than failing.
    async fn members_can_be_added_concurrently(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let mut additions = tokio::task::JoinSet::new();
        for n in 0..16 {
            let store = (**store).clone();
            let (team, by) = if n % 2 == 0 { (acme, "acme") } else { (bobs, "bobs") };
            additions.spawn(async move {
                let who = email(&format!("person{n}@example.com"));
                let added = store.add_member(team.team_id, &who, Role::Viewer, team.user_id).await;
                (by, who, added)
            });
        }
        while let Some(joined) = additions.join_next().await {
            let (team, who, added) = joined.unwrap();
            assert!(added.is_ok(), "adding {who} to {team}: {added:?}");
        }
        assert_eq!(store.members(acme.team_id).await.unwrap().len(), 9);
        assert_eq!(store.members(bobs.team_id).await.unwrap().len(), 9);
    }

    async fn an_owner_can_change_a_members_role(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bob = store.member(acme, "bob@example.com", Role::Viewer).await;

        for role in [Role::Deployer, Role::Owner, Role::Viewer] {
            store.change_role(acme.team_id, bob, role).await.unwrap();
            assert_eq!(store.role_in(bob, "acme").await, Some(role));
        }
    }

    async fn the_last_owner_cannot_be_removed_or_demoted(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bob = store.member(acme, "bob@example.com", Role::Deployer).await;

        for role in [Role::Deployer, Role::Viewer] {
            let demoted = store.change_role(acme.team_id, acme.user_id, role).await;
            assert!(matches!(demoted, Err(StoreError::LastOwner)), "{demoted:?}");
        }
        let removed = store.remove_member(acme.team_id, acme.user_id).await;
        assert!(matches!(removed, Err(StoreError::LastOwner)), "{removed:?}");
        assert_eq!(store.role_in(acme.user_id, "acme").await, Some(Role::Owner));

        // Re-stating the owner's role is not a demotion.
        store.change_role(acme.team_id, acme.user_id, Role::Owner).await.unwrap();

        // With a second owner, either may step down, but then the other is the last one.
        store.change_role(acme.team_id, bob, Role::Owner).await.unwrap();
        store.change_role(acme.team_id, acme.user_id, Role::Viewer).await.unwrap();
        let removed = store.remove_member(acme.team_id, bob).await;
        assert!(matches!(removed, Err(StoreError::LastOwner)), "{removed:?}");
        let demoted = store.change_role(acme.team_id, bob, Role::Deployer).await;
        assert!(matches!(demoted, Err(StoreError::LastOwner)), "{demoted:?}");
        assert_eq!(store.role_in(bob, "acme").await, Some(Role::Owner));
    }

    /// The membership change locks the team first, so two owners removing each other at the
    /// same moment cannot both succeed.
    async fn two_owners_cannot_remove_each_other_at_once(store: &TestStore) {
        for round in 0..5 {
            let team = store
                .owner(&format!("ada{round}@example.com"), &format!("team{round}"))
                .await;
            let bob = store.member(team, &format!("bob{round}@example.com"), Role::Owner).await;

            let (first, second) = tokio::join!(
                store.remove_member(team.team_id, bob),
                store.remove_member(team.team_id, team.user_id),
            );

            let refused = [&first, &second]
                .iter()
                .filter(|r| matches!(r, Err(StoreError::LastOwner)))
                .count();
            assert_eq!(refused, 1, "round {round}: {first:?} / {second:?}");
            assert!(first.is_ok() || second.is_ok(), "round {round}: {first:?} / {second:?}");
            let members = store.members(team.team_id).await.unwrap();
            assert_eq!(members.len(), 1);
            assert_eq!(members[0].role, Role::Owner);
        }
    }

    async fn only_members_can_be_changed_or_removed(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;

        let changed = store.change_role(acme.team_id, bob.user_id, Role::Viewer).await;
        assert!(matches!(changed, Err(StoreError::NotFound)), "{changed:?}");
        let removed = store.remove_member(acme.team_id, bob.user_id).await;
        assert!(matches!(removed, Err(StoreError::NotFound)), "{removed:?}");
        let unknown = store.remove_member(acme.team_id, 4242).await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");

        assert_eq!(store.role_in(bob.user_id, "bobs").await, Some(Role::Owner));
    }

    async fn a_removed_member_loses_access_to_that_team_only(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bob = store.owner("bob@example.com", "bobs").await;
        store.member(acme, "bob@example.com", Role::Deployer).await;

        store.remove_member(acme.team_id, bob.user_id).await.unwrap();

        assert_eq!(store.role_in(bob.user_id, "acme").await, None);
        assert_eq!(store.role_in(bob.user_id, "bobs").await, Some(Role::Owner));
        let members = store.members(acme.team_id).await.unwrap();
        assert!(members.iter().all(|m| m.user_id != bob.user_id));
        assert!(store.user(bob.user_id).await.unwrap().is_some(), "the account stays");
    }
}
