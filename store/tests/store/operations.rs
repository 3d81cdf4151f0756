use crate::support::*;
use domain::{ConfigKey, CredentialSource, OperationKind, OperationStatus, RegistryHost, Role};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use store::{
    AppChangesOnEnqueue, ConfigChange, CredentialUse, DayCount, Finish, NewOperation, NewRelease,
    Operation, OperationFilter, OperationSecrets, Store, StoreError,
};

const LEASE_MS: i64 = 60_000;

fn succeeded() -> Finish<'static> {
    Finish::Succeeded {
        release: None,
        config: &[],
    }
}

/// Claims the next operation as `worker`, which must be `expected`.
async fn claim(store: &TestStore, worker: &str, expected: &Operation) -> Operation {
    let claimed = store.claim_next_operation(worker, LEASE_MS).await.unwrap();
    let claimed = claimed.unwrap_or_else(|| panic!("expected to claim operation {}", expected.id));
    assert_eq!(claimed.id, expected.id);
    claimed
}

async fn nothing_to_claim(store: &TestStore) {
    let claimed = store
        .claim_next_operation("w-idle", LEASE_MS)
        .await
        .unwrap();
    assert!(claimed.is_none(), "claimed {claimed:?}");
}

fn key(name: &str) -> ConfigKey {
    ConfigKey::parse(name).unwrap()
}

fn ghcr() -> RegistryHost {
    RegistryHost::parse("ghcr.io").unwrap()
}

/// A deploy of `image` on `app` with credentials given for it (username `bot`) that sets
/// configuration variable `A`.
fn deploy_given(app: &store::App, image: &str, by: i64) -> NewOperation {
    new_deploy(app, image, by)
        .with_credential(CredentialUse {
            source: CredentialSource::Given,
            team_credential: None,
            registry_username: Some("bot".into()),
        })
        .with_config_changes(vec![(key("A"), true)])
}

/// A deploy carrying a registry password and configuration changes, sealed with its id.
async fn queue_with_secrets(store: &TestStore, app: &store::App, by: i64) -> Operation {
    store
        .enqueue_operation(
            deploy_given(app, "ghcr.io/acme/web:2", by),
            |id| OperationSecrets {
                registry: Some(sealed(&format!("op{id}-registry"))),
                env: Some(sealed(&format!("op{id}-env"))),
            },
            AppChangesOnEnqueue::default(),
        )
        .await
        .unwrap()
}

/// Whether the operation no longer holds any sealed secret.
async fn secrets_erased(store: &TestStore, operation_id: i64) -> bool {
    matches!(
        store.operation_secrets(operation_id).await.unwrap(),
        (None, None)
    )
}

/// Whether any stored value of `table` contains `needle`.
async fn table_mentions(store: &TestStore, table: &str, needle: &str) -> bool {
    store
        .table_as_text(table)
        .await
        .concat()
        .iter()
        .any(|value| value.contains(needle))
}

on_both_backends! {
    async fn enqueue_stores_sealed_secrets_and_remembered_credentials_atomically(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let web = store.image_app(acme, "web").await;
        let theirs = store.image_app(bobs, "theirs").await;

        let op = store
            .enqueue_operation(
                deploy_given(&web, "ghcr.io/acme/web:1", acme.user_id),
                |id| OperationSecrets {
                    registry: Some(sealed(&format!("op{id}-registry"))),
                    env: Some(sealed(&format!("op{id}-env"))),
                },
                AppChangesOnEnqueue { remember: Some((ghcr(), "bot".into(), sealed("remembered"))), team_credential: None },
            )
            .await
            .unwrap();
        assert_eq!((op.status, op.kind, op.app_handle.as_str()), (OperationStatus::Queued, OperationKind::Deploy, "web"));
        assert_eq!(op.requested_by_email.as_deref(), Some("ada@example.com"));
        assert_eq!((&op.image, &op.digest), (&Some(image("ghcr.io/acme/web:1")), &Some(digest(0x0123))));
        assert_eq!(op.pinned_image().map(|i| i.to_string()), Some(format!("ghcr.io/acme/web:1@{}", digest(0x0123))));
        assert_eq!((op.credential_source, op.registry_username.as_deref()), (CredentialSource::Given, Some("bot")));
        assert_eq!(op.env_keys.as_deref(), Some(r#"{"A":"set"}"#));
        assert_eq!(op.config_changes(), [("A".to_owned(), true)]);
        assert!(op.started_at.is_none() && op.lease_owner.is_none());
        let (registry, env) = store.operation_secrets(op.id).await.unwrap();
        assert_eq!(registry.unwrap().value, format!("v1.k1.op{}-registry", op.id), "sealed for the new row's id");
        assert_eq!(env.unwrap().value, format!("v1.k1.op{}-env", op.id));
        let (_, username, remembered) = store.remembered_secret(web.id).await.unwrap().unwrap();
        assert_eq!((username.as_str(), remembered.value.as_str()), ("bot", "v1.k1.remembered"));
        assert_eq!(store.operation(op.id).await.unwrap().unwrap().id, op.id);

        // Another team's app: refused before anything is sealed or remembered.
        let refused = store
            .enqueue_operation(
                NewOperation { team_id: acme.team_id, ..new_deploy(&theirs, "x", acme.user_id) },
                |_| panic!("nothing is sealed for a refused operation"),
                AppChangesOnEnqueue { remember: Some((ghcr(), "evil".into(), sealed("evil"))), team_credential: None },
            )
            .await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
        assert!(store.remembered_secret(theirs.id).await.unwrap().is_none());

        // A change to the app that fails undoes the whole enqueue.
        let failed = store
            .enqueue_operation(
                new_deploy(&web, "ghcr.io/acme/web:9", acme.user_id),
                |id| OperationSecrets { registry: Some(sealed(&format!("op{id}-lost"))), env: None },
                AppChangesOnEnqueue { remember: Some((ghcr(), "later".into(), sealed("later"))), team_credential: Some(Some(i64::MAX)) },
            )
            .await;
        assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
        let (_, username, _) = store.remembered_secret(web.id).await.unwrap().unwrap();
        assert_eq!(username, "bot", "the remembered credentials are unchanged");
        let all = store.operations_page(&OperationFilter { team_id: acme.team_id, ..Default::default() }, None, 10).await.unwrap();
        assert_eq!(all.iter().map(|o| o.id).collect::<Vec<_>>(), [op.id], "no operation was queued");
        assert!(!table_mentions(store, "operations", "-lost").await);
    }

    async fn one_apps_operations_are_claimed_one_at_a_time_in_order(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let first = store.queue(new_deploy(&web, "ghcr.io/acme/web:1", acme.user_id)).await;
        let second = store.queue(new_configure(&web, acme.user_id)).await;
        let third = store.queue(new_restart(&web, acme.user_id)).await;

        let running = claim(store, "w1", &first).await;
        assert_eq!((running.status, running.lease_owner.as_deref()), (OperationStatus::Running, Some("w1")));
        assert!(running.started_at.is_some());
        assert!(running.lease_expires_at.unwrap() >= running.started_at.unwrap() + LEASE_MS);
        nothing_to_claim(store).await;
        store.finish_operation(first.id, "w1", succeeded()).await.unwrap();
        claim(store, "w2", &second).await;
        nothing_to_claim(store).await;
        store.finish_operation(second.id, "w2", Finish::Failed { error: "boom" }).await.unwrap();
        claim(store, "w1", &third).await;
        nothing_to_claim(store).await;
    }

    async fn different_apps_are_claimed_in_parallel(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        let theirs = store.image_app(bobs, "theirs").await;
        let web1 = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        let web2 = store.queue(new_deploy(&web, "web:2", acme.user_id)).await;
        let api1 = store.queue(new_deploy(&api, "api:1", acme.user_id)).await;
        let theirs1 = store.queue(new_deploy(&theirs, "theirs:1", bobs.user_id)).await;

        claim(store, "w1", &web1).await;
        // web2 waits for web1, but the queue moves on past it.
        claim(store, "w2", &api1).await;
        claim(store, "w3", &theirs1).await;
        nothing_to_claim(store).await;
        store.finish_operation(web1.id, "w1", succeeded()).await.unwrap();
        claim(store, "w1", &web2).await;
    }

    async fn concurrent_claimers_never_run_two_of_one_app_or_claim_one_twice(store: &TestStore) {
        const APPS: usize = 3;
        const PER_APP: usize = 5;
        const WORKERS: usize = 8;
        let acme = store.owner("ada@example.com", "acme").await;
        let mut apps = Vec::new();
        for i in 0..APPS {
            apps.push(store.image_app(acme, &format!("app{i}")).await);
        }
        let mut queued: HashMap<i64, Vec<i64>> = HashMap::new();
        for round in 0..PER_APP {
            for app in &apps {
                let op = store.queue(new_deploy(app, &format!("img:{round}"), acme.user_id)).await;
                queued.entry(app.id).or_default().push(op.id);
            }
        }

        #[derive(Default)]
        struct Seen {
            running: HashMap<i64, i64>,
            claimed: HashSet<i64>,
            order: HashMap<i64, Vec<i64>>,
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        let finished = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (store, seen, finished) = (Store::clone(store), seen.clone(), finished.clone());
            workers.push(tokio::spawn(async move {
                let worker = format!("w{w}");
                while finished.load(Ordering::SeqCst) < APPS * PER_APP {
                    let Some(op) = store.claim_next_operation(&worker, LEASE_MS).await.unwrap() else {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    };
                    {
                        let mut seen = seen.lock().unwrap();
                        assert!(seen.claimed.insert(op.id), "operation {} claimed twice", op.id);
                        if let Some(other) = seen.running.insert(op.app_id, op.id) {
                            panic!("operations {other} and {} of app {} run at once", op.id, op.app_id);
                        }
                        seen.order.entry(op.app_id).or_default().push(op.id);
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    // Off the books before the database says so: the app's next claim
                    // cannot come before the finish commits.
                    seen.lock().unwrap().running.remove(&op.app_id);
                    store.finish_operation(op.id, &worker, Finish::Succeeded { release: None, config: &[] }).await.unwrap();
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for worker in workers {
            tokio::time::timeout(Duration::from_secs(60), worker).await.expect("workers finish").unwrap();
        }
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.claimed.len(), APPS * PER_APP);
            assert_eq!(seen.order, queued, "each app's operations ran in the order they were queued");
        }
        nothing_to_claim(store).await;
    }

    /// The unique index `operations_one_running_per_app` is the last word: a claim that
    /// meets another process starting an operation of the same app gets nothing, not an
    /// error (on PostgreSQL the claim waits on the other's index entry, then is refused).
    async fn a_claim_that_meets_another_start_of_the_same_app_claims_nothing(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let first = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        let second = store.queue(new_deploy(&web, "web:2", acme.user_id)).await;
        store.cancel_operation(first.id).await.unwrap();
        let other_start = format!("UPDATE operations SET status = 'running', lease_owner = 'other' WHERE id = {}", first.id);
        let claimed = store.while_uncommitted(&other_start, store.claim_next_operation("w1", LEASE_MS)).await;
        assert!(matches!(claimed, Ok(None)), "{claimed:?}");
        assert_eq!(store.operation(second.id).await.unwrap().unwrap().status, OperationStatus::Queued);
    }

    async fn heartbeat_extends_the_lease_and_fails_for_another_worker(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let op = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        assert!(!store.heartbeat(op.id, "w1", LEASE_MS).await.unwrap(), "a queued operation has no lease");
        let claimed = store.claim_next_operation("w1", 1_000).await.unwrap().unwrap();
        assert!(store.heartbeat(op.id, "w1", LEASE_MS).await.unwrap());
        let renewed = store.operation(op.id).await.unwrap().unwrap();
        assert!(renewed.lease_expires_at.unwrap() >= claimed.lease_expires_at.unwrap() + LEASE_MS - 1_000);
        assert!(!store.heartbeat(op.id, "w2", LEASE_MS).await.unwrap());
        assert_eq!(store.operation(op.id).await.unwrap().unwrap().lease_expires_at, renewed.lease_expires_at);

        store.set_operation_step(op.id, "pull").await.unwrap();
        assert_eq!(store.operation(op.id).await.unwrap().unwrap().step.as_deref(), Some("pull"));
        store.finish_operation(op.id, "w1", succeeded()).await.unwrap();
        assert!(!store.heartbeat(op.id, "w1", LEASE_MS).await.unwrap(), "a finished operation has no lease");
    }

    async fn finish_erases_secrets_inserts_the_release_moves_the_current_release_and_applies_config(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        // A first configure sets OLD and KEEP.
        store.queue(new_configure(&web, acme.user_id)).await;
        let configure = store.claim_next_operation("w1", LEASE_MS).await.unwrap().unwrap();
        let initial = [
            ConfigChange { key: key("OLD"), value: Some(sealed("old")), plain: false },
            ConfigChange { key: key("KEEP"), value: Some(sealed("keep")), plain: false },
        ];
        let done = store.finish_operation(configure.id, "w1", Finish::Succeeded { release: None, config: &initial }).await.unwrap();
        assert_eq!(done.release_id, None, "a configure without a new release");

        let op = queue_with_secrets(store, &web, acme.user_id).await;
        claim(store, "w1", &op).await;
        store.set_operation_step(op.id, "switch").await.unwrap();
        let changes = [
            ConfigChange { key: key("OLD"), value: None, plain: false },
            ConfigChange { key: key("KEEP"), value: Some(sealed("kept-anew")), plain: false },
            ConfigChange { key: key("NEW"), value: Some(sealed("new")), plain: false },
        ];
        let finished = store
            .finish_operation(
                op.id,
                "w1",
                Finish::Succeeded {
                    release: Some(NewRelease { image: &image("ghcr.io/acme/web:2"), digest: &digest(0xbeef), port: Some(5000) }),
                    config: &changes,
                },
            )
            .await
            .unwrap();
        assert_eq!(finished.status, OperationStatus::Succeeded);
        assert!(finished.is_final());
        assert!(finished.finished_at.is_some() && finished.error.is_none());
        assert_eq!((finished.lease_owner, finished.lease_expires_at, finished.step), (None, None, None));

        assert!(secrets_erased(store, op.id).await);
        assert!(!table_mentions(store, "operations", "-registry").await, "the sealed password is erased");
        assert!(!table_mentions(store, "operations", "-env").await, "the sealed configuration is erased");

        let release = store.current_release(web.id).await.unwrap().unwrap();
        assert_eq!(Some(release.id), finished.release_id);
        assert_eq!((release.operation_id, &release.image, &release.digest, release.port), (op.id, &image("ghcr.io/acme/web:2"), &digest(0xbeef), Some(5000)));
        assert_eq!(release.pinned_image().to_string(), format!("ghcr.io/acme/web:2@{}", digest(0xbeef)));
        assert_eq!(store.app_by_id(web.id).await.unwrap().unwrap().current_release_id, Some(release.id));

        let config: Vec<_> = store.config(web.id).await.unwrap().into_iter().map(|c| (c.key.to_string(), c.sealed.value)).collect();
        assert_eq!(config, [("KEEP".to_owned(), "v1.k1.kept-anew".to_owned()), ("NEW".to_owned(), "v1.k1.new".to_owned())]);
    }

    async fn a_failed_operation_leaves_the_current_release_alone(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let good = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        claim(store, "w1", &good).await;
        let good = store
            .finish_operation(good.id, "w1", Finish::Succeeded { release: Some(NewRelease { image: &image("web:1"), digest: &digest(1), port: None }), config: &[] })
            .await
            .unwrap();

        let bad = queue_with_secrets(store, &web, acme.user_id).await;
        claim(store, "w1", &bad).await;
        let failed = store.finish_operation(bad.id, "w1", Finish::Failed { error: "health check failed: 503" }).await.unwrap();
        assert_eq!((failed.status, failed.error.as_deref()), (OperationStatus::Failed, Some("health check failed: 503")));
        assert_eq!(failed.release_id, None);
        assert!(failed.finished_at.is_some());
        assert!(secrets_erased(store, bad.id).await, "secrets are erased on failure too");
        assert_eq!(store.current_release(web.id).await.unwrap().unwrap().id, good.release_id.unwrap());
        assert!(store.config(web.id).await.unwrap().is_empty());
    }

    async fn finishing_with_a_lost_lease_is_refused(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let op = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        let refused = store.finish_operation(op.id, "w1", succeeded()).await;
        assert!(matches!(refused, Err(StoreError::LeaseLost)), "a queued operation: {refused:?}");
        claim(store, "w1", &op).await;
        let refused = store.finish_operation(op.id, "w2", succeeded()).await;
        assert!(matches!(refused, Err(StoreError::LeaseLost)), "another worker's: {refused:?}");
        let unknown = store.finish_operation(i64::MAX, "w1", succeeded()).await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
        assert_eq!(store.operation(op.id).await.unwrap().unwrap().status, OperationStatus::Running);

        store.finish_operation(op.id, "w1", Finish::Failed { error: "x" }).await.unwrap();
        let twice = store.finish_operation(op.id, "w1", succeeded()).await;
        assert!(matches!(twice, Err(StoreError::LeaseLost)), "{twice:?}");
        assert_eq!(store.operation(op.id).await.unwrap().unwrap().status, OperationStatus::Failed);
    }

    async fn expired_leases_are_failed_with_the_reason_and_the_app_can_claim_again(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        let abandoned = queue_with_secrets(store, &web, acme.user_id).await;
        let next = store.queue(new_restart(&web, acme.user_id)).await;
        let alive = store.queue(new_deploy(&api, "api:1", acme.user_id)).await;
        // The holder of `abandoned` died: its lease has already run out.
        let claimed = store.claim_next_operation("dead", -1).await.unwrap().unwrap();
        assert_eq!(claimed.id, abandoned.id);
        claim(store, "w1", &alive).await;
        nothing_to_claim(store).await;

        let reason = "Berth stopped while this operation ran; the previous release keeps serving";
        let failed = store.fail_expired_operations(reason).await.unwrap();
        assert_eq!(failed.iter().map(|o| o.id).collect::<Vec<_>>(), [abandoned.id], "a live lease is left alone");
        let failed = &failed[0];
        assert_eq!((failed.status, failed.error.as_deref()), (OperationStatus::Failed, Some(reason)));
        assert!(failed.finished_at.is_some() && failed.lease_owner.is_none() && failed.lease_expires_at.is_none());
        assert!(secrets_erased(store, abandoned.id).await);
        assert!(!store.heartbeat(abandoned.id, "dead", LEASE_MS).await.unwrap());
        assert!(matches!(store.finish_operation(abandoned.id, "dead", succeeded()).await, Err(StoreError::LeaseLost)));
        assert!(store.fail_expired_operations(reason).await.unwrap().is_empty());

        claim(store, "w2", &next).await;
        assert_eq!(store.operation(alive.id).await.unwrap().unwrap().status, OperationStatus::Running);
    }

    async fn only_queued_operations_can_be_cancelled(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let running = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        let queued = queue_with_secrets(store, &web, acme.user_id).await;
        let after = store.queue(new_restart(&web, acme.user_id)).await;
        claim(store, "w1", &running).await;

        assert!(!store.cancel_operation(running.id).await.unwrap(), "a running operation is not cancelled");
        assert!(store.cancel_operation(queued.id).await.unwrap());
        assert!(!store.cancel_operation(queued.id).await.unwrap(), "nor a cancelled one");
        assert!(!store.cancel_operation(i64::MAX).await.unwrap());
        let cancelled = store.operation(queued.id).await.unwrap().unwrap();
        assert_eq!(cancelled.status, OperationStatus::Cancelled);
        assert!(cancelled.is_final());
        assert!(cancelled.finished_at.is_some() && cancelled.started_at.is_none());
        assert!(secrets_erased(store, queued.id).await);
        let still_running = store.operation(running.id).await.unwrap().unwrap();
        assert_eq!(still_running.status, OperationStatus::Running);
        assert!(!still_running.is_final());

        store.finish_operation(running.id, "w1", succeeded()).await.unwrap();
        claim(store, "w1", &after).await;
        assert!(!store.cancel_operation(running.id).await.unwrap(), "nor a finished one");
    }

    async fn logs_append_in_order_and_tail_after_a_cursor(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let op = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        let other = store.queue(new_deploy(&web, "web:2", acme.user_id)).await;
        store.append_operation_log(op.id, &[]).await.unwrap();
        store.append_operation_log(op.id, &["pulling".into(), "pulled".into()]).await.unwrap();
        store.append_operation_log(other.id, &["elsewhere".into()]).await.unwrap();
        let many: Vec<String> = (0..450).map(|i| format!("layer {i}")).collect();
        store.append_operation_log(op.id, &many).await.unwrap();

        let head = store.operation_log(op.id, 0, 2).await.unwrap();
        assert_eq!(head.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), ["pulling", "pulled"]);
        assert!(head[0].at > 0 && head[0].id < head[1].id);
        let mut cursor = head[1].id;
        let mut tail = Vec::new();
        loop {
            let page = store.operation_log(op.id, cursor, 100).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = last.id;
            tail.extend(page.into_iter().map(|l| l.line));
        }
        assert_eq!(tail, many);
        assert!(store.operation_log(op.id, cursor, 100).await.unwrap().is_empty());
        assert_eq!(store.operation_log(other.id, 0, 100).await.unwrap().len(), 1);
    }

    async fn keyset_paging_with_each_filter_returns_exactly_the_right_rows(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let bea = store.member(acme, "bea@example.com", Role::Deployer).await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let apps = [store.image_app(acme, "web").await, store.image_app(acme, "api").await, store.image_app(acme, "db").await];
        let theirs = store.image_app(bobs, "theirs").await;
        let kinds = [OperationKind::Deploy, OperationKind::Configure, OperationKind::Restart];
        let users = [acme.user_id, bea];

        // Every combination of app, kind, user and status, in a scrambled order, with
        // another team's operations in between.
        let statuses = [OperationStatus::Succeeded, OperationStatus::Failed, OperationStatus::Cancelled, OperationStatus::Queued];
        let mut made = Vec::new();
        let mut by_status: Vec<Vec<i64>> = vec![Vec::new(); statuses.len()];
        for i in 0..72usize {
            let j = (i * 29) % 72;
            let (app, kind, user, status) = (&apps[j % 3], kinds[(j / 3) % 3], users[(j / 9) % 2], j / 18);
            let op = store.queue(new_operation(app, kind, user)).await;
            made.push((op.id, app.id, kind, user, statuses[status]));
            by_status[status].push(op.id);
            if i % 9 == 0 {
                store.queue(new_operation(&theirs, kind, bobs.user_id)).await;
            }
        }
        // No operation runs here, so any status can be written directly.
        for (status, ids) in statuses.iter().zip(&by_status) {
            let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
            store.execute_sql(&format!("UPDATE operations SET status = '{}' WHERE id IN ({})", status.as_str(), ids.join(", "))).await;
        }

        let mut combinations = 0;
        for app in [None, Some(apps[1].id)] {
            for kind in [None, Some(OperationKind::Restart)] {
                for status in [None, Some(OperationStatus::Failed)] {
                    for user in [None, Some(bea)] {
                        let filter = OperationFilter {
                            team_id: acme.team_id,
                            app_id: app,
                            kind,
                            status,
                            requested_by: user,
                        };
                        let mut expected: Vec<i64> = made
                            .iter()
                            .filter(|(_, a, k, u, s)| {
                                app.is_none_or(|x| x == *a)
                                    && kind.is_none_or(|x| x == *k)
                                    && status.is_none_or(|x| x == *s)
                                    && user.is_none_or(|x| x == *u)
                            })
                            .map(|(id, ..)| *id)
                            .collect();
                        expected.reverse();
                        assert!(!expected.is_empty(), "{filter:?} is a useful case");

                        let (mut got, mut before, mut pages) = (Vec::new(), None, 0);
                        loop {
                            let page = store.operations_page(&filter, before, 3).await.unwrap();
                            pages += 1;
                            for op in &page {
                                assert_eq!(op.team_id, acme.team_id);
                                let (_, app_id, kind, user, status) = made.iter().find(|m| m.0 == op.id).unwrap();
                                assert_eq!((op.app_id, op.kind, op.requested_by, op.status), (*app_id, *kind, Some(*user), *status));
                                let email = if *user == bea { "bea@example.com" } else { "ada@example.com" };
                                assert_eq!(op.requested_by_email.as_deref(), Some(email));
                            }
                            // The history tables' lean rows: the same operations, the same fields.
                            let summaries = store.operation_summaries(&filter, before, 3).await.unwrap();
                            let lean: Vec<_> = summaries.iter().map(|s| (s.id, s.app_handle.clone(), s.kind, s.status, s.image.clone(), s.digest.clone(), s.requested_by_email.clone(), s.created_at, s.started_at, s.finished_at)).collect();
                            let full: Vec<_> = page.iter().map(|o| (o.id, o.app_handle.to_string(), o.kind, o.status, o.image.as_ref().map(|i| i.to_string()), o.digest.as_ref().map(|d| d.to_string()), o.requested_by_email.clone(), o.created_at, o.started_at, o.finished_at)).collect();
                            assert_eq!(lean, full, "{filter:?}");
                            got.extend(page.iter().map(|o| o.id));
                            match page.last() {
                                Some(last) if page.len() == 3 => before = Some(last.id),
                                _ => break,
                            }
                        }
                        assert_eq!(got, expected, "{filter:?}");
                        assert_eq!(pages, expected.len() / 3 + 1, "{filter:?}");
                        combinations += 1;
                    }
                }
            }
        }
        assert_eq!(combinations, 16);

        let app_handles: Vec<_> = store
            .operations_page(&OperationFilter { team_id: acme.team_id, app_id: Some(apps[2].id), ..Default::default() }, None, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.app_handle.to_string())
            .collect();
        assert_eq!(app_handles, ["db", "db"]);
        let crossing = OperationFilter { team_id: acme.team_id, app_id: Some(theirs.id), ..Default::default() };
        assert!(store.operations_page(&crossing, None, 10).await.unwrap().is_empty(), "another team's app shows nothing");
    }

    async fn operation_days_group_by_day_and_status(store: &TestStore) {
        const DAY: i64 = 86_400_000;
        let d0 = 20_000;
        let acme = store.owner("ada@example.com", "acme").await;
        let bobs = store.owner("bob@example.com", "bobs").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        let theirs = store.image_app(bobs, "theirs").await;
        // (app, day, offset into the day, status, duration)
        use OperationStatus::{Cancelled, Failed, Succeeded};
        let plan: [(&store::App, i64, i64, OperationStatus, Option<i64>); 8] = [
            (&web, d0, 1_000, Succeeded, Some(3_000)),
            (&web, d0, DAY - 1, Succeeded, Some(5_000)),
            (&web, d0, 50_000, Failed, Some(1_000)),
            (&web, d0 + 1, 0, Succeeded, Some(2_000)),
            (&web, d0 - 1, DAY - 1, Succeeded, Some(9_000)),
            (&api, d0, 7_000, Succeeded, Some(4_000)),
            (&web, d0 + 1, 9_000, Cancelled, None),
            (&theirs, d0, 1_000, Failed, Some(1)),
        ];
        for (app, day, offset, status, duration) in plan {
            let op = store.queue(new_deploy(app, "img", acme.user_id)).await;
            let created = day * DAY + offset;
            let (started, finished) = match duration {
                Some(ms) => ((created + 10).to_string(), (created + 10 + ms).to_string()),
                None => ("NULL".to_owned(), (created + 10).to_string()),
            };
            store
                .execute_sql(&format!(
                    "UPDATE operations SET status = '{}', created_at = {created},
                       started_at = {started}, finished_at = {finished} WHERE id = {}",
                    status.as_str(),
                    op.id
                ))
                .await;
        }
        let rows = |days: Vec<DayCount>| -> Vec<(i64, OperationStatus, i64, Option<i64>)> {
            days.into_iter().map(|d| (d.day, d.status, d.count, d.avg_duration_ms)).collect()
        };
        let team = store.operation_days(&OperationFilter { team_id: acme.team_id, ..Default::default() }, d0 * DAY).await.unwrap();
        assert_eq!(
            rows(team),
            [
                (d0, Failed, 1, Some(1_000)),
                (d0, Succeeded, 3, Some(4_000)),
                (d0 + 1, Cancelled, 1, None),
                (d0 + 1, Succeeded, 1, Some(2_000)),
            ]
        );
        let web_only = store.operation_days(&OperationFilter { team_id: acme.team_id, app_id: Some(web.id), ..Default::default() }, d0 * DAY).await.unwrap();
        assert_eq!(
            rows(web_only),
            [
                (d0, Failed, 1, Some(1_000)),
                (d0, Succeeded, 2, Some(4_000)),
                (d0 + 1, Cancelled, 1, None),
                (d0 + 1, Succeeded, 1, Some(2_000)),
            ]
        );
        let earlier = store.operation_days(&OperationFilter { team_id: acme.team_id, app_id: Some(web.id), ..Default::default() }, (d0 - 1) * DAY).await.unwrap();
        assert_eq!(rows(earlier)[0], (d0 - 1, Succeeded, 1, Some(9_000)));
        assert!(store.operation_days(&OperationFilter { team_id: acme.team_id, app_id: Some(theirs.id), ..Default::default() }, 0).await.unwrap().is_empty(), "another team's app shows nothing");
        // The chart follows the list's filters.
        let failed_only = store
            .operation_days(&OperationFilter { team_id: acme.team_id, status: Some(Failed), ..Default::default() }, d0 * DAY)
            .await
            .unwrap();
        assert_eq!(rows(failed_only), [(d0, Failed, 1, Some(1_000))]);

        // Members of each kind, for the page's member list: an owner, a viewer who joined, a
        // deployer invited without an account and an account invited (both pending).
        store.member(acme, "vic@example.com", Role::Viewer).await;
        store.invitee(acme, "dee@example.com", Role::Deployer).await;
        store.add_member(acme.team_id, &email("bob@example.com"), Role::Deployer, acme.user_id).await.unwrap();
        let listed = store.members(acme.team_id).await.unwrap();
        let pending: Vec<_> = listed.iter().map(|m| (m.email.as_str(), m.pending)).collect();
        assert_eq!(pending, [("ada@example.com", false), ("bob@example.com", true), ("dee@example.com", true), ("vic@example.com", false)]);

        // A history page's reads in one statement answer what the three reads answer.
        for filter in [
            OperationFilter { team_id: acme.team_id, ..Default::default() },
            OperationFilter { team_id: acme.team_id, app_id: Some(web.id), status: Some(Succeeded), ..Default::default() },
            // Every condition at once (each numbered parameter of both queries in use).
            OperationFilter {
                team_id: acme.team_id,
                app_id: Some(web.id),
                requested_by: Some(acme.user_id),
                kind: Some(OperationKind::Deploy),
                status: Some(Succeeded),
            },
            OperationFilter { team_id: bobs.team_id, ..Default::default() },
        ] {
            for (before, limit) in [(None, 50), (None, 2), (Some(i64::MAX), 3)] {
                let view = store.history_view(&filter, before, limit, d0 * DAY).await.unwrap();
                let ids = |page: &[store::OperationSummary]| page.iter().map(|o| o.id).collect::<Vec<_>>();
                let summaries = store.operation_summaries(&filter, before, limit).await.unwrap();
                assert!(!summaries.is_empty(), "{filter:?} is a useful case");
                assert_eq!(ids(&view.operations), ids(&summaries), "{filter:?}");
                let days = store.operation_days(&filter, d0 * DAY).await.unwrap();
                assert_eq!(rows(view.days), rows(days), "{filter:?}");
                let nothing = store.history_view(&OperationFilter { team_id: -1, ..filter.clone() }, before, limit, 0).await.unwrap();
                assert!(nothing.operations.is_empty() && nothing.days.is_empty(), "an empty page and chart are read as such");
                let members = |m: Vec<store::Member>| m.into_iter().map(|m| (m.user_id, m.email, m.role, m.pending)).collect::<Vec<_>>();
                assert_eq!(members(view.members), members(store.members(filter.team_id).await.unwrap()), "{filter:?}");
            }
        }
    }

    /// Rows are parsed as they are read: a stored value that no longer parses (written by
    /// hand, or by a Berth with other rules) is an error naming its column, never a value
    /// that code further up trusts.
    async fn a_stored_value_that_does_not_parse_is_a_decode_error_naming_its_column(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        let broken = store.queue(new_deploy(&web, "web:1", acme.user_id)).await;
        let sound = store.queue(new_deploy(&api, "api:1", acme.user_id)).await;
        let written = store.execute_sql(&format!("UPDATE operations SET digest = 'not-a-digest' WHERE id = {}", broken.id)).await;
        assert_eq!(written, 1);

        let read = store.operation(broken.id).await;
        match &read {
            // (sqlx 0.8's `try_from` keeps the column but not the parse error's message.)
            Err(StoreError::Database(sqlx::Error::ColumnDecode { index, .. })) => assert_eq!(index, "digest"),
            other => panic!("expected a decode error naming the digest column, got {other:?}"),
        }
        assert!(read.unwrap_err().to_string().contains("digest"));

        // A history page holding the row fails the same way rather than skipping or
        // guessing; rows that parse still read.
        let page = store.operations_page(&OperationFilter { team_id: acme.team_id, ..Default::default() }, None, 10).await;
        assert!(
            matches!(&page, Err(StoreError::Database(sqlx::Error::ColumnDecode { index, .. })) if index == "digest"),
            "{page:?}"
        );
        let api_only = OperationFilter { team_id: acme.team_id, app_id: Some(api.id), ..Default::default() };
        let page = store.operations_page(&api_only, None, 10).await.unwrap();
        assert_eq!(page.iter().map(|o| o.id).collect::<Vec<_>>(), [sound.id]);
        assert_eq!(page[0].digest, Some(digest(0x0123)));
    }

    /// History tables' rows are read as JSON, by position: each stored text comes back as
    /// it was stored, whatever characters it holds, in its own field. (Kind and status
    /// cannot be stored unparseable: the table's checks refuse other words.)
    async fn history_rows_carry_every_text_in_its_own_field(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let api = store.image_app(acme, "api").await;
        let op = store.queue(new_deploy(&api, "api:1", acme.user_id)).await;
        let odd = "web\"1\\ ☃\n\t\u{1}";
        store
            .execute_sql(&format!(
                "UPDATE operations SET image = '{}', git_ref = 'the-ref', commit_sha = 'the-commit' WHERE id = {}",
                odd.replace('\'', "''"),
                op.id
            ))
            .await;
        let texts = |o: &store::OperationSummary| {
            (o.id, o.app_handle.clone(), o.image.clone(), o.digest.clone(), o.git_ref.clone(), o.commit_sha.clone(), o.requested_by_email.clone())
        };
        let expected = (
            op.id,
            "api".to_owned(),
            Some(odd.to_owned()),
            Some(digest(0x0123).to_string()),
            Some("the-ref".to_owned()),
            Some("the-commit".to_owned()),
            Some("ada@example.com".to_owned()),
        );
        let filter = OperationFilter { team_id: acme.team_id, ..Default::default() };
        let lean = store.operation_summaries(&filter, None, 10).await.unwrap();
        let view = store.history_view(&filter, None, 10, 0).await.unwrap();
        for (read, rows) in [("operation_summaries", &lean), ("history_view", &view.operations)] {
            assert_eq!(rows.iter().map(texts).collect::<Vec<_>>(), std::slice::from_ref(&expected), "{read}");
        }
    }

    async fn logs_of_operations_that_ended_long_ago_are_deleted_and_the_operations_stay(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        // Three deploys that run and end, one after the other on `web`, one on `api` still running.
        let mut ended = Vec::new();
        for n in 0..3 {
            let queued = store.queue(new_deploy(&web, "ghcr.io/acme/web:1", acme.user_id)).await;
            claim(store, "w1", &queued).await;
            store.append_operation_log(queued.id, &[format!("line one of {n}"), "line two".into()]).await.unwrap();
            store.finish_operation(queued.id, "w1", succeeded()).await.unwrap();
            ended.push(queued.id);
        }
        let running = store.queue(new_deploy(&api, "ghcr.io/acme/api:1", acme.user_id)).await;
        claim(store, "w1", &running).await;
        store.append_operation_log(running.id, &["still going".into()]).await.unwrap();
        // The first two ended long ago.
        let long_ago = now_ms() - 100 * 86_400_000;
        for id in &ended[..2] {
            store.execute_sql(&format!("UPDATE operations SET finished_at = {long_ago} WHERE id = {id}")).await;
        }

        let cutoff = now_ms() - 90 * 86_400_000;
        // A batch of one: the loop goes on until nothing is due.
        assert_eq!(store.prune_operation_logs(cutoff, 1).await.unwrap(), 2);
        assert_eq!(store.prune_operation_logs(cutoff, 1).await.unwrap(), 0, "nothing twice");
        for id in &ended[..2] {
            assert!(store.operation_log(*id, 0, 100).await.unwrap().is_empty());
            let kept = store.operation(*id).await.unwrap().unwrap();
            assert!(kept.log_pruned_at.is_some(), "the operation stays, marked");
            assert_eq!(kept.status, OperationStatus::Succeeded);
        }
        assert_eq!(store.operation_log(ended[2], 0, 100).await.unwrap().len(), 2, "a recent log is kept");
        assert_eq!(store.operation_log(running.id, 0, 100).await.unwrap().len(), 1, "a running one too");
        assert!(store.operation(ended[2]).await.unwrap().unwrap().log_pruned_at.is_none());
    }
}
