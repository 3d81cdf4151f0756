use crate::support::*;
use store::NewDeployKey;

fn key<'a>(public_key: &'a str, fingerprint: &'a str, by: Option<i64>) -> NewDeployKey<'a> {
    NewDeployKey {
        public_key,
        fingerprint,
        sealed: sealed(fingerprint),
        created_by: by,
    }
}

on_both_backends! {
    /// Two fetches that both found no key each make one: the first stays, so that the key a
    /// team was shown is the key Berth uses.
    async fn a_teams_first_deploy_key_is_never_overwritten_by_a_second_first(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        assert!(store.deploy_key(acme.team_id).await.unwrap().is_none());
        assert!(store.deploy_key_secret(acme.team_id).await.unwrap().is_none());
        assert!(store.add_deploy_key_if_none(acme.team_id, key("ssh-ed25519 AAAA1 berth:acme", "SHA256:one", None)).await.unwrap());
        assert!(!store.add_deploy_key_if_none(acme.team_id, key("ssh-ed25519 AAAA2 berth:acme", "SHA256:two", None)).await.unwrap());
        let stored = store.deploy_key(acme.team_id).await.unwrap().unwrap();
        assert_eq!((stored.public_key.as_str(), stored.fingerprint.as_str()), ("ssh-ed25519 AAAA1 berth:acme", "SHA256:one"));
        assert_eq!(stored.created_by, None);
        let (_, sealed) = store.deploy_key_secret(acme.team_id).await.unwrap().unwrap();
        assert_eq!(sealed.value, "v1.k1.SHA256:one");
    }

    /// A new key replaces the old one at once: the old one is answered (for the audit
    /// trail) and gone.
    async fn a_new_deploy_key_replaces_the_old_one(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let other = store.owner("bob@example.com", "other").await;
        assert!(store.replace_deploy_key(acme.team_id, key("ssh-ed25519 AAAA1 berth:acme", "SHA256:one", Some(acme.user_id))).await.unwrap().is_none(), "nothing to replace");
        store.add_deploy_key_if_none(other.team_id, key("ssh-ed25519 BBBB berth:other", "SHA256:other", None)).await.unwrap();
        let old = store
            .replace_deploy_key(acme.team_id, key("ssh-ed25519 AAAA2 berth:acme", "SHA256:two", Some(acme.user_id)))
            .await
            .unwrap()
            .expect("the old key");
        assert_eq!(old.fingerprint, "SHA256:one");
        let (now, sealed) = store.deploy_key_secret(acme.team_id).await.unwrap().unwrap();
        assert_eq!((now.fingerprint.as_str(), now.created_by), ("SHA256:two", Some(acme.user_id)));
        assert_eq!(sealed.value, "v1.k1.SHA256:two");
        // Another team's key is its own.
        assert_eq!(store.deploy_key(other.team_id).await.unwrap().unwrap().fingerprint, "SHA256:other");
        assert_eq!(store.table_as_text("team_deploy_keys").await.len(), 2);
    }
}
