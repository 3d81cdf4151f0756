use crate::support::*;
use domain::{
    ConfigKey, CredentialKind, CredentialName, CredentialSource, DeployMethod, HealthPath,
    OperationKind, OperationStatus, RegistryHost,
};
use store::{
    AppChangesOnEnqueue, ConfigChange, CredentialUse, Finish, NewApp, NewCredential, NewRelease,
    OperationSecrets, StoreError,
};

/// Claims `app`'s next operation and finishes it successfully with a release of `image`.
async fn deploy_now(store: &TestStore, app: &store::App, image: &str, by: i64) -> store::Operation {
    let queued = store.queue(new_deploy(app, image, by)).await;
    let claimed = store
        .claim_next_operation("w1", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, queued.id);
    store
        .finish_operation(
            claimed.id,
            "w1",
            Finish::Succeeded {
                release: Some(NewRelease {
                    image: &self::image(image),
                    digest: &digest(0xaaaa),
                    port: Some(8080),
                }),
                config: &[],
            },
        )
        .await
        .unwrap()
}

on_both_backends! {
    async fn a_duplicate_handle_in_the_team_is_a_field_error(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let web = store.image_app(acme, "web").await;
        assert_eq!((web.handle.as_str(), web.method.as_str()), ("web", "image"));
        assert!(web.current_release_id.is_none() && web.remembered_at.is_none());
        let again = store
            .create_app(acme.team_id, NewApp { handle: &app_handle("web"), method: DeployMethod::Dockerfile, health_path: None, created_by: acme.user_id })
            .await;
        assert!(matches!(again, Err(StoreError::Taken { what: "handle" })), "{again:?}");
        store.image_app(bobs, "web").await;

        assert_eq!(store.app(acme.team_id, "web").await.unwrap().map(|a| a.id), Some(web.id));
        assert!(store.app(bobs.team_id, "nope").await.unwrap().is_none());
        let bobs_web = store.app(bobs.team_id, "web").await.unwrap().unwrap();
        assert_ne!(bobs_web.id, web.id, "each team sees its own app");
        assert_eq!(store.app_by_id(web.id).await.unwrap().unwrap().team_id, acme.team_id);

        store.set_health_path(web.id, Some(&HealthPath::parse("/healthz").unwrap())).await.unwrap();
        assert_eq!(store.app_by_id(web.id).await.unwrap().unwrap().health_path.as_ref().map(HealthPath::as_str), Some("/healthz"));
        store.set_health_path(web.id, None).await.unwrap();
        assert_eq!(store.app_by_id(web.id).await.unwrap().unwrap().health_path, None);
    }

    async fn the_apps_list_shows_each_apps_release_and_last_operation(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        let idle = store.image_app(acme, "idle").await;
        store.image_app(bobs, "theirs").await;

        let deployed = deploy_now(store, &web, "ghcr.io/acme/web:1", acme.user_id).await;
        let queued = store.queue(new_restart(&web, acme.user_id)).await;
        let api_op = store.queue(new_deploy(&api, "ghcr.io/acme/api:1", acme.user_id)).await;

        let list = store.apps(acme.team_id).await.unwrap();
        assert_eq!(list.iter().map(|a| a.handle.as_str()).collect::<Vec<_>>(), ["api", "idle", "web"]);
        let (api_row, idle_row, web_row) = (&list[0], &list[1], &list[2]);

        assert_eq!(web_row.id, web.id);
        assert_eq!(web_row.release_id, deployed.release_id);
        assert_eq!(web_row.release_image.as_ref().map(ToString::to_string).as_deref(), Some("ghcr.io/acme/web:1"));
        assert_eq!(web_row.release_digest, Some(digest(0xaaaa)));
        assert_eq!(web_row.release_port, Some(8080));
        assert!(web_row.release_created_at.is_some());
        assert_eq!(web_row.last_operation_id, Some(queued.id), "the latest operation, not the one that made the release");
        assert_eq!(web_row.last_operation_kind, Some(OperationKind::Restart));
        assert_eq!(web_row.last_operation_status, Some(OperationStatus::Queued));
        assert_eq!(web_row.last_operation_created_at, Some(queued.created_at));

        assert_eq!(api_row.release_image, None);
        assert_eq!(api_row.last_operation_id, Some(api_op.id));
        assert_eq!(api_row.last_operation_kind, Some(OperationKind::Deploy));

        assert_eq!(idle_row.id, idle.id);
        assert!(idle_row.release_id.is_none() && idle_row.last_operation_id.is_none());
        assert_eq!(idle_row.method, DeployMethod::Image);
    }

    async fn releases_are_read_back_and_current_ones_listed_for_start_up(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let web = store.image_app(acme, "web").await;
        let never = store.image_app(acme, "never").await;
        let theirs = store.image_app(bobs, "theirs").await;
        let first = deploy_now(store, &web, "ghcr.io/acme/web:1", acme.user_id).await;
        let second = deploy_now(store, &web, "ghcr.io/acme/web:2", acme.user_id).await;
        deploy_now(store, &theirs, "docker.io/bobs/theirs:7", bobs.user_id).await;

        let old = store.release(first.release_id.unwrap()).await.unwrap().unwrap();
        assert_eq!((old.app_id, old.operation_id, old.image.to_string().as_str()), (web.id, first.id, "ghcr.io/acme/web:1"));
        assert_eq!(old.digest, digest(0xaaaa));
        let current = store.current_release(web.id).await.unwrap().unwrap();
        assert_eq!(current.id, second.release_id.unwrap());
        assert_eq!(current.image, image("ghcr.io/acme/web:2"));
        assert!(store.current_release(never.id).await.unwrap().is_none());
        assert!(store.release(i64::MAX).await.unwrap().is_none());

        let running = store.current_releases().await.unwrap();
        let summary: Vec<_> = running.iter().map(|(app, r)| (app.handle.as_str(), r.image.to_string(), r.app_id == app.id)).collect();
        assert_eq!(summary, [("web", "ghcr.io/acme/web:2".to_owned(), true), ("theirs", "docker.io/bobs/theirs:7".to_owned(), true)]);
        assert_eq!(running[0].0.current_release_id, Some(running[0].1.id));
        assert_eq!(running[0].1.port, Some(8080));
    }

    async fn remembered_credentials_are_replaced_by_later_ones_and_can_be_forgotten(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        assert!(store.remembered_secret(web.id).await.unwrap().is_none());
        for (username, secret) in [("first", "one"), ("second", "two")] {
            store
                .enqueue_operation(
                    new_deploy(&web, "ghcr.io/acme/web:1", acme.user_id),
                    |_| OperationSecrets::default(),
                    AppChangesOnEnqueue { remember: Some((RegistryHost::parse("ghcr.io").unwrap(), username.into(), sealed(secret))), team_credential: None },
                )
                .await
                .unwrap();
        }
        let (registry, username, secret) = store.remembered_secret(web.id).await.unwrap().unwrap();
        assert_eq!((registry.as_str(), username.as_str(), secret.value.as_str()), ("ghcr.io", "second", "v1.k1.two"));
        let app = store.app_by_id(web.id).await.unwrap().unwrap();
        assert_eq!(app.remembered_username.as_deref(), Some("second"));
        assert!(app.remembered_at.is_some());

        store.forget_remembered_credentials(web.id).await.unwrap();
        assert!(store.remembered_secret(web.id).await.unwrap().is_none());
        let app = store.app_by_id(web.id).await.unwrap().unwrap();
        assert!(app.remembered_registry.is_none() && app.remembered_username.is_none() && app.remembered_at.is_none());
        assert!(!store.table_as_text("apps").await.concat().iter().any(|v| v.contains("v1.k1.")), "the sealed value is gone too");
    }

    async fn config_is_listed_by_key_with_sealed_values(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let other = store.image_app(acme, "other").await;
        assert!(store.config(web.id).await.unwrap().is_empty());
        store.queue(new_configure(&web, acme.user_id)).await;
        let op = store.claim_next_operation("w1", 60_000).await.unwrap().unwrap();
        let changes = [
            ConfigChange { key: ConfigKey::parse("ZED").unwrap(), value: Some(sealed("z")), plain: true },
            ConfigChange { key: ConfigKey::parse("ALPHA").unwrap(), value: Some(sealed("a")), plain: false },
        ];
        store.finish_operation(op.id, "w1", Finish::Succeeded { release: None, config: &changes }).await.unwrap();
        let config = store.config(web.id).await.unwrap();
        assert_eq!(config.iter().map(|c| (c.key.as_str(), c.sealed.value.as_str())).collect::<Vec<_>>(), [("ALPHA", "v1.k1.a"), ("ZED", "v1.k1.z")]);
        assert_eq!(config[0].sealed.key_id, "k1");
        assert_eq!(config.iter().map(|c| c.plain).collect::<Vec<_>>(), [false, true], "the plain flag is kept per variable");
        assert!(config[0].updated_at > 0);
        assert!(store.config(other.id).await.unwrap().is_empty());
    }

    async fn used_by_apps_counts_the_apps_and_survives_a_credential_delete(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let registry = RegistryHost::parse("ghcr.io").unwrap();
        let (ghcr_name, spare_name) = (CredentialName::parse("ghcr").unwrap(), CredentialName::parse("spare").unwrap());
        let new_credential = |name| NewCredential { name, registry: &registry, kind: CredentialKind::Basic, username: "bot", note: None, created_by: acme.user_id, aws: None };
        let ghcr = store.create_credential(acme.team_id, new_credential(&ghcr_name), |_| sealed("c")).await.unwrap();
        let spare = store.create_credential(acme.team_id, new_credential(&spare_name), |_| sealed("s")).await.unwrap();
        assert_eq!(ghcr.used_by_apps, 0);
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        store.image_app(acme, "plain").await;
        for app in [&web, &api] {
            store
                .enqueue_operation(
                    new_deploy(app, "ghcr.io/acme/x:1", acme.user_id).with_credential(CredentialUse {
                        source: CredentialSource::Team,
                        team_credential: Some((ghcr.id, "ghcr".into(), ghcr.secret_version)),
                        registry_username: None,
                    }),
                    |_| OperationSecrets::default(),
                    AppChangesOnEnqueue { remember: None, team_credential: Some(Some(ghcr.id)) },
                )
                .await
                .unwrap();
        }
        assert_eq!(store.credential(acme.team_id, "ghcr").await.unwrap().unwrap().used_by_apps, 2);
        let listed: Vec<_> = store.credentials(acme.team_id).await.unwrap().into_iter().map(|c| (c.name.to_string(), c.used_by_apps)).collect();
        assert_eq!(listed, [("ghcr".to_owned(), 2), ("spare".to_owned(), 0)]);
        assert_eq!(store.apps_using_credential(ghcr.id).await.unwrap(), ["api", "web"]);
        let app = store.app_by_id(web.id).await.unwrap().unwrap();
        assert_eq!((app.team_credential_id, app.team_credential_name.as_deref()), (Some(ghcr.id), Some("ghcr")));

        // `Some(None)` detaches an app; a rename shows through the join.
        store
            .enqueue_operation(
                new_deploy(&api, "ghcr.io/acme/x:2", acme.user_id),
                |_| OperationSecrets::default(),
                AppChangesOnEnqueue { remember: None, team_credential: Some(None) },
            )
            .await
            .unwrap();
        assert_eq!(store.apps_using_credential(ghcr.id).await.unwrap(), ["web"]);
        let updated = store.update_credential(ghcr.id, store::CredentialChanges { name: Some(&CredentialName::parse("ghcr-prod").unwrap()), ..Default::default() }, None).await.unwrap();
        assert_eq!(updated.used_by_apps, 1, "every credential query counts its apps");
        assert_eq!(store.app_by_id(web.id).await.unwrap().unwrap().team_credential_name.as_deref(), Some("ghcr-prod"));

        store.record_credential_use(ghcr.id, "operation 1: pulled ghcr.io/acme/x:1").await.unwrap();
        let used = store.credential(acme.team_id, "ghcr-prod").await.unwrap().unwrap();
        assert!(used.last_used_at.is_some());
        assert_eq!(used.last_used_detail.as_deref(), Some("operation 1: pulled ghcr.io/acme/x:1"));

        store.delete_credential(ghcr.id).await.unwrap();
        let app = store.app_by_id(web.id).await.unwrap().unwrap();
        assert_eq!((app.team_credential_id, app.team_credential_name), (None, None), "the app falls back to remembered credentials");
        assert!(store.apps_using_credential(ghcr.id).await.unwrap().is_empty());
        let history = store.operations_page(&store::OperationFilter { team_id: acme.team_id, ..Default::default() }, None, 10).await.unwrap();
        assert_eq!(history.len(), 3, "history outlives the credential");
        let by_team: Vec<_> = history.iter().filter(|o| o.credential_source == CredentialSource::Team).collect();
        assert_eq!(by_team.len(), 2);
        for op in by_team {
            assert_eq!((op.credential_id, op.credential_name.as_deref(), op.credential_version), (None, Some("ghcr"), Some(1)));
        }
        assert_eq!(store.credential(acme.team_id, "spare").await.unwrap().unwrap().id, spare.id);
    }
}
