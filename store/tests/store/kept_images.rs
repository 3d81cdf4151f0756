use crate::support::*;
use store::{Finish, KeptBecause, KeptImage, NewRelease, Operation};

const LEASE_MS: i64 = 60_000;

/// Runs `operation` to success, releasing `image` at `digest(n)`.
async fn release(store: &TestStore, operation: Operation, image_name: &str, n: u64) {
    let claimed = store
        .claim_next_operation("w1", LEASE_MS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, operation.id);
    store
        .finish_operation(
            operation.id,
            "w1",
            Finish::Succeeded {
                release: Some(NewRelease {
                    image: &image(image_name),
                    digest: &digest(n),
                    port: None,
                }),
                config: &[],
            },
        )
        .await
        .unwrap();
}

fn pinned(name: &str, n: u64) -> Option<domain::ImageReference> {
    Some(image(name).pinned(&digest(n)))
}

on_both_backends! {
    async fn each_app_keeps_its_newest_release_images_and_what_its_deploys_will_run(store: &TestStore) {
        let acme = store.owner("ada@example.com", "acme").await;
        let web = store.image_app(acme, "web").await;
        let api = store.image_app(acme, "api").await;
        for n in 1..=4 {
            let deploy = store.queue(new_deploy(&web, "web", acme.user_id)).await;
            release(store, deploy, &format!("ghcr.io/acme/web:{n}"), n).await;
        }
        // A restart releases the current image again: it does not push an older one out.
        let restart = store.queue(new_restart(&web, acme.user_id)).await;
        release(store, restart, "ghcr.io/acme/web:4", 4).await;
        let deploy = store.queue(new_deploy(&api, "api", acme.user_id)).await;
        release(store, deploy, "ghcr.io/acme/api:1", 11).await;
        // Queued, not run yet: its image is about to be pulled.
        let queued = store
            .queue(new_deploy(&api, "ghcr.io/acme/api:2", acme.user_id))
            .await;
        // Another team's apps are not this team's storage.
        let other = store.owner("bob@example.com", "other").await;
        let theirs = store.image_app(other, "web").await;
        store.queue(new_deploy(&theirs, "ghcr.io/other/web:1", other.user_id)).await;

        let mut kept = store.kept_images(acme.team_id, 2).await.unwrap();
        kept.sort_by_key(|k| (k.app_id, format!("{:?}", k.because)));
        assert_eq!(
            kept,
            [
                KeptImage { app_id: web.id, image: pinned("ghcr.io/acme/web:4", 4), because: KeptBecause::Current },
                KeptImage { app_id: web.id, image: pinned("ghcr.io/acme/web:4", 4), because: KeptBecause::Release { newness: 1 } },
                KeptImage { app_id: web.id, image: pinned("ghcr.io/acme/web:3", 3), because: KeptBecause::Release { newness: 2 } },
                KeptImage { app_id: api.id, image: pinned("ghcr.io/acme/api:1", 11), because: KeptBecause::Current },
                KeptImage { app_id: api.id, image: pinned("ghcr.io/acme/api:2", 0x0123), because: KeptBecause::Operation { operation_id: queued.id } },
                KeptImage { app_id: api.id, image: pinned("ghcr.io/acme/api:1", 11), because: KeptBecause::Release { newness: 1 } },
            ]
        );
        let all = store.kept_images(acme.team_id, 100).await.unwrap();
        assert_eq!(all.iter().filter(|k| matches!(k.because, KeptBecause::Release { .. })).count(), 5);
    }
}
