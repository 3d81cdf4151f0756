use crate::support::*;
use domain::{
    ConfigKey, CredentialKind, CredentialName, CredentialSource, RegistryHost, RepositoryUrl,
};
use std::collections::HashSet;
use store::{
    AppChangesOnEnqueue, ConfigChange, CredentialUse, Finish, NewCredential, NewDeployKey,
    OperationSecrets, Sealed, SecretSlot,
};

fn under(key_id: &str, what: &str) -> Sealed {
    Sealed {
        value: format!("v1.{key_id}.{what}"),
        key_id: key_id.into(),
    }
}

#[test]
fn each_slot_names_its_own_associated_data() {
    let contexts = [
        (SecretSlot::Credential(7), "registry_credential:7:secret"),
        (
            SecretSlot::AppRemembered(7),
            "app:7:remembered_registry_password",
        ),
        (
            SecretSlot::AppConfig {
                app_id: 7,
                key: "DATABASE_URL".into(),
            },
            "app:7:config:DATABASE_URL",
        ),
        (
            SecretSlot::OperationRegistry(7),
            "operation:7:registry_password",
        ),
        (SecretSlot::OperationEnv(7), "operation:7:env"),
        (SecretSlot::AppGit(7), "app:7:git_password"),
        (SecretSlot::TeamDeployKey(7), "team:7:deploy_key"),
    ];
    for (slot, context) in contexts {
        assert_eq!(slot.context(), context, "{slot:?}");
    }
}

on_both_backends! {
    async fn rotation_covers_every_sealed_column(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        assert!(store.secret_key_ids().await.unwrap().is_empty());
        let credential = store
            .create_credential(
                acme.team_id,
                NewCredential {
                    name: &CredentialName::parse("ghcr").unwrap(),
                    registry: &RegistryHost::parse("ghcr.io").unwrap(),
                    kind: CredentialKind::Basic,
                    username: "bot",
                    note: None,
                    created_by: acme.user_id,
                    aws: None,
                },
                |_| under("k0", "credential"),
            )
            .await
            .unwrap();
        let web = store.image_app(acme, "web").await;
        // A finished configure leaves one configuration value...
        store.queue(new_configure(&web, acme.user_id)).await;
        let configure = store.claim_next_operation("w1", 60_000).await.unwrap().unwrap();
        let config = [ConfigChange { key: ConfigKey::parse("TOKEN").unwrap(), value: Some(under("k1", "config")), plain: false }];
        store.finish_operation(configure.id, "w1", Finish::Succeeded { release: None, config: &config }).await.unwrap();
        // ...and a queued deploy carries its own secrets and remembers a password on the app.
        let deploy = store
            .enqueue_operation(
                new_deploy(&web, "img", acme.user_id).with_credential(CredentialUse { source: CredentialSource::Given, ..CredentialUse::none() }),
                |_| OperationSecrets { registry: Some(under("k1", "op-registry")), env: Some(under("k1", "op-env")) },
                AppChangesOnEnqueue { remember: Some((RegistryHost::parse("ghcr.io").unwrap(), "bot".into(), under("k1", "remembered"))), team_credential: None },
            )
            .await
            .unwrap();
        // A Dockerfile app's git read password.
        let git_url = RepositoryUrl::parse("https://git.example.com/acme/web.git").unwrap();
        store.set_git_source(web.id, &git_url, "Dockerfile", ".", Some(("reader", under("k1", "git")))).await.unwrap();
        // The team's ssh deploy key.
        let deploy_key = NewDeployKey { public_key: "ssh-ed25519 AAAA berth:acme", fingerprint: "SHA256:abc", sealed: under("k1", "deploy-key"), created_by: None };
        assert!(store.add_deploy_key_if_none(acme.team_id, deploy_key).await.unwrap());
        // Already under the new key: not listed.
        let current = store.image_app(acme, "current").await;
        store
            .enqueue_operation(
                new_deploy(&current, "img", acme.user_id),
                |_| OperationSecrets { registry: None, env: Some(under("k2", "already")) },
                AppChangesOnEnqueue::default(),
            )
            .await
            .unwrap();

        assert_eq!(store.secret_key_ids().await.unwrap(), ["k0", "k1", "k2"]);
        let pending = store.secrets_sealed_by_other_keys("k2", 100).await.unwrap();
        let slots: HashSet<SecretSlot> = pending.iter().map(|(slot, _)| slot.clone()).collect();
        let expected: HashSet<SecretSlot> = [
            SecretSlot::Credential(credential.id),
            SecretSlot::AppRemembered(web.id),
            SecretSlot::AppConfig { app_id: web.id, key: "TOKEN".into() },
            SecretSlot::OperationRegistry(deploy.id),
            SecretSlot::OperationEnv(deploy.id),
            SecretSlot::AppGit(web.id),
            SecretSlot::TeamDeployKey(acme.team_id),
        ]
        .into_iter()
        .collect();
        assert_eq!(slots, expected);
        assert_eq!(pending.len(), 7);
        assert_eq!(store.secrets_sealed_by_other_keys("k2", 2).await.unwrap().len(), 2, "a batch at a time");

        for (slot, old) in &pending {
            assert!(old.value.starts_with(&format!("v1.{}.", old.key_id)), "{slot:?} lists its value and key");
            let new = under("k2", &slot.context());
            assert!(store.reseal_secret(slot, old, &new).await.unwrap(), "{slot:?}");
            // A stale value (someone changed it meanwhile) is never overwritten.
            assert!(!store.reseal_secret(slot, old, &under("k2", "stale")).await.unwrap(), "{slot:?}");
        }
        assert!(store.secrets_sealed_by_other_keys("k2", 100).await.unwrap().is_empty());
        assert_eq!(store.secret_key_ids().await.unwrap(), ["k2"]);

        // Each value landed in its own slot.
        let expect = |slot: SecretSlot| format!("v1.k2.{}", slot.context());
        assert_eq!(store.credential_secret(credential.id).await.unwrap().value, expect(SecretSlot::Credential(credential.id)));
        assert_eq!(store.remembered_secret(web.id).await.unwrap().unwrap().2.value, expect(SecretSlot::AppRemembered(web.id)));
        assert_eq!(store.config(web.id).await.unwrap()[0].sealed.value, expect(SecretSlot::AppConfig { app_id: web.id, key: "TOKEN".into() }));
        let (reader, git) = store.git_secret(web.id).await.unwrap().unwrap();
        assert_eq!(reader, "reader");
        assert_eq!(git.value, expect(SecretSlot::AppGit(web.id)));
        let app = store.app_by_id(web.id).await.unwrap().unwrap();
        assert_eq!(app.git_url.as_ref().map(RepositoryUrl::as_str), Some("https://git.example.com/acme/web.git"));
        assert_eq!(app.git_username.as_deref(), Some("reader"));
        let (registry, env) = store.operation_secrets(deploy.id).await.unwrap();
        assert_eq!(registry.unwrap().value, expect(SecretSlot::OperationRegistry(deploy.id)));
        assert_eq!(env.unwrap().value, expect(SecretSlot::OperationEnv(deploy.id)));
        let (key, sealed) = store.deploy_key_secret(acme.team_id).await.unwrap().unwrap();
        assert_eq!(key.fingerprint, "SHA256:abc");
        assert_eq!(sealed.value, expect(SecretSlot::TeamDeployKey(acme.team_id)));
    }

    async fn an_operation_that_finishes_during_rotation_is_not_resealed(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let deploy = store
            .enqueue_operation(
                new_deploy(&web, "img", acme.user_id),
                |_| OperationSecrets { registry: Some(under("k1", "op-registry")), env: None },
                AppChangesOnEnqueue::default(),
            )
            .await
            .unwrap();
        let pending = store.secrets_sealed_by_other_keys("k2", 100).await.unwrap();
        assert_eq!(pending.len(), 1);
        store.cancel_operation(deploy.id).await.unwrap();
        let (slot, old) = &pending[0];
        assert!(!store.reseal_secret(slot, old, &under("k2", "x")).await.unwrap(), "an erased secret stays erased");
        assert!(matches!(store.operation_secrets(deploy.id).await.unwrap(), (None, None)));
        assert!(store.secret_key_ids().await.unwrap().is_empty());
    }
}
