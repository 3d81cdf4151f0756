use crate::support::*;
use domain::{CredentialKind, CredentialName, RegistryHost};
use std::sync::OnceLock;
use store::{CredentialChanges, NewAuditEvent, NewCredential, Sealed, SecretSlot, StoreError};

fn ghcr() -> &'static RegistryHost {
    static GHCR: OnceLock<RegistryHost> = OnceLock::new();
    GHCR.get_or_init(|| RegistryHost::parse("ghcr.io").unwrap())
}

fn new<'a>(name: &'a CredentialName, owner: &Owner) -> NewCredential<'a> {
    NewCredential {
        name,
        registry: ghcr(),
        kind: CredentialKind::Basic,
        username: "bot",
        note: Some("rotates quarterly"),
        created_by: owner.user_id,
        aws: None,
    }
}

fn name(value: &str) -> CredentialName {
    CredentialName::parse(value).unwrap()
}

fn sealed_for(id: i64, value: &str) -> Sealed {
    Sealed {
        value: format!("v1.k1.{id}-{value}"),
        key_id: "k1".into(),
    }
}

on_both_backends! {
    async fn a_credential_is_sealed_with_its_own_row_id(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let created = store
            .create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "x"))
            .await
            .unwrap();
        assert_eq!(created.name.as_str(), "ghcr");
        assert_eq!(created.secret_version, 1);
        assert!(created.last_verified_at.is_none());
        let sealed = store.credential_secret(created.id).await.unwrap();
        assert_eq!(sealed.value, format!("v1.k1.{}-x", created.id));
        assert_eq!(store.secret_key_ids().await.unwrap(), vec!["k1".to_owned()]);
    }

    async fn names_are_unique_within_a_team_only(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        store.create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "a")).await.unwrap();
        let again = store.create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "b")).await;
        assert!(matches!(again, Err(StoreError::Taken { what: "name" })), "{again:?}");
        store.create_credential(bobs.team_id, new(&name("ghcr"), &bobs), |id| sealed_for(id, "c")).await.unwrap();
        assert_eq!(store.credentials(acme.team_id).await.unwrap().len(), 1);
        assert!(store.credential(acme.team_id, "ghcr").await.unwrap().is_some());
        assert!(store.credential(acme.team_id, "nope").await.unwrap().is_none());
    }

    async fn updating_without_a_secret_keeps_it_and_a_new_secret_bumps_the_version(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let c = store.create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "old")).await.unwrap();
        store.record_verification(c.id, true, "logged in").await.unwrap();
        let renamed = store
            .update_credential(c.id, CredentialChanges { name: Some(&name("ghcr-prod")), note: Some(None), ..Default::default() }, None)
            .await
            .unwrap();
        assert_eq!(renamed.name.as_str(), "ghcr-prod");
        assert_eq!(renamed.note, None);
        assert_eq!(renamed.secret_version, 1);
        assert_eq!(renamed.last_verified_ok, Some(true), "a rename keeps the verification");
        assert_eq!(store.credential_secret(c.id).await.unwrap().value, format!("v1.k1.{}-old", c.id));

        let rotated = store.update_credential(c.id, CredentialChanges::default(), Some(sealed_for(c.id, "new"))).await.unwrap();
        assert_eq!(rotated.secret_version, 2);
        assert_eq!(rotated.last_verified_ok, None, "a new secret has not been verified yet");
        assert_eq!(store.credential_secret(c.id).await.unwrap().value, format!("v1.k1.{}-new", c.id));
    }

    async fn verifications_are_recorded_with_their_outcome(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let c = store.create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "x")).await.unwrap();
        store.record_verification(c.id, false, "wrong_credentials: rejected").await.unwrap();
        let after = store.credential(acme.team_id, "ghcr").await.unwrap().unwrap();
        assert_eq!(after.last_verified_ok, Some(false));
        assert_eq!(after.last_verified_detail.as_deref(), Some("wrong_credentials: rejected"));
        assert!(after.last_verified_at.is_some());
    }

    async fn rotation_reseals_only_unchanged_rows(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let c = store.create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "x")).await.unwrap();
        let pending = store.secrets_sealed_by_other_keys("k2", 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        let (slot, old) = &pending[0];
        assert_eq!(slot, &SecretSlot::Credential(c.id));
        let new = Sealed { value: "v1.k2.new".into(), key_id: "k2".into() };
        assert!(store.reseal_secret(slot, old, &new).await.unwrap());
        // A second attempt with the stale value changes nothing.
        assert!(!store.reseal_secret(slot, old, &Sealed { value: "v1.k2.other".into(), key_id: "k2".into() }).await.unwrap());
        assert_eq!(store.credential_secret(c.id).await.unwrap().value, "v1.k2.new");
        assert!(store.secrets_sealed_by_other_keys("k2", 10).await.unwrap().is_empty());
    }

    async fn deleting_a_credential_removes_it(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let c = store.create_credential(acme.team_id, new(&name("ghcr"), &acme), |id| sealed_for(id, "x")).await.unwrap();
        store.delete_credential(c.id).await.unwrap();
        assert!(store.credential(acme.team_id, "ghcr").await.unwrap().is_none());
        assert!(matches!(store.delete_credential(c.id).await, Err(StoreError::NotFound)));
    }

    async fn the_audit_trail_pages_newest_first_by_keyset(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        for i in 0..5 {
            let subject = if i % 2 == 0 { "credential:a" } else { "credential:b" };
            store
                .record_audit(NewAuditEvent {
                    team_id: acme.team_id,
                    actor_id: Some(acme.user_id),
                    action: "credential.verify",
                    subject,
                    ok: i != 3,
                    detail: Some(&format!("event {i}")),
                })
                .await
                .unwrap();
        }
        store
            .record_audit(NewAuditEvent { team_id: bobs.team_id, actor_id: None, action: "x", subject: "credential:a", ok: true, detail: None })
            .await
            .unwrap();
        let first = store.audit_events(acme.team_id, None, None, 2).await.unwrap();
        assert_eq!(first.iter().map(|e| e.detail.clone().unwrap()).collect::<Vec<_>>(), ["event 4", "event 3"]);
        assert_eq!(first[1].outcome, "failed");
        assert_eq!(first[0].actor_email.as_deref(), Some("ada@example.com"));
        let next = store.audit_events(acme.team_id, None, Some(first[1].id), 10).await.unwrap();
        assert_eq!(next.len(), 3);
        let only_a = store.audit_events(acme.team_id, Some("credential:a"), None, 10).await.unwrap();
        assert_eq!(only_a.len(), 3, "other teams' events never show");
    }

    async fn an_ecr_credential_keeps_its_region_and_role_and_the_last_token_s_expiry_never_the_token(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let registry = RegistryHost::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        let ecr = name("ecr-prod");
        let created = store
            .create_credential(
                acme.team_id,
                NewCredential {
                    name: &ecr,
                    registry: &registry,
                    kind: CredentialKind::Ecr,
                    username: "AKIAIOSFODNN7EXAMPLE",
                    note: None,
                    created_by: acme.user_id,
                    aws: Some(store::AwsSettings { region: "eu-west-1", role_arn: Some("arn:aws:iam::123456789012:role/pull"), external_id: Some("berth-acme") }),
                },
                |id| sealed_for(id, "aws-secret"),
            )
            .await
            .unwrap();
        assert_eq!(created.kind, CredentialKind::Ecr);
        assert_eq!(created.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(created.aws_role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/pull"));
        assert_eq!(created.aws_external_id.as_deref(), Some("berth-acme"));
        assert_eq!((created.ecr_token_minted_at, created.ecr_token_expires_at, created.aws_error.clone()), (None, None, None));

        store.record_aws_error(created.id, "SignatureDoesNotMatch: The request signature we calculated does not match").await.unwrap();
        let failed = store.credential(acme.team_id, "ecr-prod").await.unwrap().unwrap();
        assert!(failed.aws_error.unwrap().starts_with("SignatureDoesNotMatch"));
        assert!(failed.aws_error_at.is_some());
        store.record_ecr_token(created.id, Some(1_420_070_400_000)).await.unwrap();
        let minted = store.credential(acme.team_id, "ecr-prod").await.unwrap().unwrap();
        assert_eq!(minted.ecr_token_expires_at, Some(1_420_070_400_000));
        assert!(minted.ecr_token_minted_at.is_some());
        assert_eq!(minted.aws_error, None, "a token minted clears the last error");

        let changed = store
            .update_credential(created.id, CredentialChanges { aws_region: Some("us-east-1"), aws_role_arn: Some(None), aws_external_id: Some(None), ..Default::default() }, None)
            .await
            .unwrap();
        assert_eq!(changed.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!((changed.aws_role_arn, changed.aws_external_id), (None, None));
        let kept = store.update_credential(created.id, CredentialChanges { note: Some(Some("n")), ..Default::default() }, None).await.unwrap();
        assert_eq!(kept.aws_region.as_deref(), Some("us-east-1"), "absent fields keep their value");
    }
}
