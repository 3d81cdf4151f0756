//! Bounded disk on this server (`BERTH_KEEP_RELEASES`): after each successful deploy the
//! team's image storage keeps the images of each app's last releases and nothing a deploy
//! left before them — never one another app of the team runs — and what an app takes shows
//! on its page and in its JSON. Real registry, real buildah, real builds.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::*;
use testregistry::TestRegistry;

const PASSWORD: &str = "disk-pull-pass-61c0de";

/// Every image name in team `team`'s storage of the app's engine, read with buildah itself.
fn stored_names(app: &TestApp, team: &str) -> BTreeSet<String> {
    let team_id = app.team_id(team);
    let engine = app.dir.join("engine");
    let output = std::process::Command::new("buildah")
        .arg("--root")
        .arg(engine.join(format!("storage/team-{team_id}")))
        .arg("--runroot")
        .arg(engine.join(format!("run/team-{team_id}")))
        .args(["--storage-driver", "vfs", "images", "--all", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap_or(json!([]));
    listed
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|image| image["names"].as_array().cloned().unwrap_or_default())
        .map(|name| name.as_str().unwrap().to_owned())
        .collect()
}

/// The digests of `repository`'s images in the storage (pulled by digest).
fn stored_digests(app: &TestApp, repository: &str) -> BTreeSet<String> {
    let prefix = format!("{}/{repository}@", app.registry().host);
    stored_names(app, "acme")
        .into_iter()
        .filter_map(|name| name.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// Waits until a succeeded deploy's pruning (run once the deploy is recorded) has said what
/// it did at the end of the deploy's log.
async fn pruned(app: &TestApp, operation: &Value) {
    let id = operation["id"].as_i64().unwrap();
    for _ in 0..300 {
        if app.log(id).await.to_lowercase().contains("prun") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("deploy {id} was never pruned after: {}", app.log(id).await);
}

async fn redeploy(app: &TestApp, operation: &Value) -> TestResponse {
    app.call(
        "POST",
        &format!("/api/v1/operations/{}/redeploy", operation["id"]),
        &app.deployer(),
        None,
    )
    .await
}

#[tokio::test]
async fn each_app_keeps_the_images_of_its_last_releases_and_never_one_another_app_runs() {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .with_keep_releases(2)
        .start()
        .await;
    let login = json!({ "registry_username": "puller", "registry_password": PASSWORD });
    let mut digests = Vec::new();
    for n in 1..=5 {
        digests.push(
            app.registry()
                .push_serving_image(
                    "team/web",
                    &n.to_string(),
                    ("puller", PASSWORD),
                    &format!("release {n}"),
                )
                .await,
        );
    }
    // Another app of the team runs the first image.
    app.create_app("api", "image", None).await;
    let mut body = login.clone();
    body["image"] = json!(app.image("team/web:1"));
    let api = app.deploy_and_wait("api", body).await;
    app.succeeded(&api).await;
    pruned(&app, &api).await;

    // Five deploys of distinct images (N + 3, with N = 2).
    app.create_app("web", "image", None).await;
    let mut deploys = Vec::new();
    for n in 1..=5 {
        let mut body = login.clone();
        body["image"] = json!(app.image(&format!("team/web:{n}")));
        let deployed = app.deploy_and_wait("web", body).await;
        app.succeeded(&deployed).await;
        pruned(&app, &deployed).await;
        deploys.push(deployed);
    }
    let kept: BTreeSet<String> = [&digests[0], &digests[3], &digests[4]]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(
        stored_digests(&app, "team/web"),
        kept,
        "web's last two images, and the one api runs"
    );
    let log = app.log(deploys[4]["id"].as_i64().unwrap()).await;
    assert!(
        log.contains("Pruned 1 old image") && log.contains("BERTH_KEEP_RELEASES"),
        "{log}"
    );
    assert_eq!(
        served(&app.release_url("api").await)
            .await
            .as_deref()
            .map(str::trim),
        Some("release 1"),
        "api still serves the shared image"
    );

    // A pruned history entry is pulled again when redeployed.
    let again = redeploy(&app, &deploys[1]).await.expect(202);
    let again = app
        .wait(again.json()["operation"]["id"].as_i64().unwrap())
        .await;
    app.succeeded(&again).await;
    pruned(&app, &again).await;
    assert_eq!(again["digest"], digests[1].as_str());
    let log = app.log(again["id"].as_i64().unwrap()).await;
    assert!(log.contains("pulling"), "{log}");
    assert_eq!(
        served(&app.release_url("web").await)
            .await
            .as_deref()
            .map(str::trim),
        Some("release 2")
    );
    let kept: BTreeSet<String> = [&digests[0], &digests[1], &digests[4]]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(stored_digests(&app, "team/web"), kept);
    app.stop().await;
}

#[tokio::test]
async fn an_apps_disk_use_shows_on_its_page_and_in_its_json_and_grows_with_a_deploy() {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let app = TestApp::sqlite()
        .with_team()
        .with_registry(registry)
        .start()
        .await;
    for n in 1..=2 {
        app.registry()
            .push_serving_image(
                "team/web",
                &n.to_string(),
                ("puller", PASSWORD),
                &format!("release {n}"),
            )
            .await;
    }
    app.create_app("web", "image", None).await;
    let before = app.app_json("web").await["disk"].clone();
    assert_eq!(before["images_bytes"], 0, "{before}");

    let mut totals = Vec::new();
    for n in 1..=2 {
        let deployed = app
            .deploy_and_wait(
                "web",
                json!({
                    "image": app.image(&format!("team/web:{n}")),
                    "registry_username": "puller",
                    "registry_password": PASSWORD,
                }),
            )
            .await;
        app.succeeded(&deployed).await;
        pruned(&app, &deployed).await;
        let disk = app.app_json("web").await["disk"].clone();
        let part = |name: &str| disk[name].as_u64().unwrap();
        assert_eq!(
            part("total_bytes"),
            part("images_bytes") + part("logs_bytes") + part("source_bytes") + part("tmp_bytes"),
            "{disk}"
        );
        assert!(
            part("logs_bytes") > 0,
            "the release wrote its runtime log: {disk}"
        );
        totals.push((part("images_bytes"), disk));
    }
    assert!(totals[0].0 > 0, "{}", totals[0].1);
    assert!(
        totals[1].0 > totals[0].0,
        "a second kept image adds its own layers: {} then {}",
        totals[0].1,
        totals[1].1
    );

    let mut viewer = app.signed_in(VIEWER).await;
    let page = viewer.get("/teams/acme/apps/web").await;
    assert_eq!(page.status.as_u16(), 200);
    let total = totals[1].1["total_bytes"].as_u64().unwrap();
    let shown = format!("{:.1} MiB", total as f64 / (1u64 << 20) as f64);
    assert!(
        page.body.contains("id=\"disk-heading\"") && page.body.contains(&shown),
        "the page shows {shown}: {}",
        page.body
    );
    app.stop().await;
}

/// A repository whose Dockerfile builds from `base` and serves `hello.txt`: `main` and
/// `feature` differ in it.
fn repository(base: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             COPY hello.txt /www/hello.txt\n\
             CMD [\"/bin/busybox\", \"sh\", \"-c\", \"exec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /www\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from main\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "First version"]);
    git(dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("hello.txt"), "hello from feature\n").unwrap();
    git(dir, &["commit", "-q", "-am", "Feature greeting"]);
    git(dir, &["checkout", "-q", "main"]);
    repo
}

#[tokio::test]
async fn a_kept_build_runs_again_without_building_and_a_pruned_one_asks_for_its_commit() {
    let registry = TestRegistry::start_htpasswd(&[("builder", PASSWORD)]).await;
    registry
        .push_serving_image("base/busybox", "1", ("builder", PASSWORD), "base")
        .await;
    let host = registry.host.to_string();
    let repo = repository(&format!("{host}/base/busybox:1"));
    let app = TestApp::sqlite()
        .with_team()
        .with_git_local_roots(vec![std::env::temp_dir()])
        .with_registry(registry)
        .with_keep_releases(1)
        .start()
        .await;
    app.create_app(
        "web",
        "dockerfile",
        Some(json!({ "url": repo.path().display().to_string() })),
    )
    .await;
    let built = app
        .deploy_and_wait(
            "web",
            json!({
                "git_ref": "main",
                "registry_username": "builder",
                "registry_password": PASSWORD,
                "private_registry_host": host,
            }),
        )
        .await;
    app.succeeded(&built).await;
    pruned(&app, &built).await;
    let disk = app.app_json("web").await["disk"].clone();
    assert!(
        disk["source_bytes"].as_u64().unwrap() > 0,
        "the git mirror: {disk}"
    );
    assert!(disk["images_bytes"].as_u64().unwrap() > 0, "{disk}");

    // Kept: it runs again from the storage, without fetching or building.
    let again = redeploy(&app, &built).await.expect(202);
    let again = app
        .wait(again.json()["operation"]["id"].as_i64().unwrap())
        .await;
    app.succeeded(&again).await;
    pruned(&app, &again).await;
    assert_eq!(again["digest"], built["digest"]);
    let log = app.log(again["id"].as_i64().unwrap()).await;
    assert!(
        log.contains("running it again from the image storage"),
        "{log}"
    );
    assert!(!log.contains("building"), "{log}");

    // Another build takes its place (one kept release); the first build's image goes.
    let feature = app
        .deploy_and_wait("web", json!({ "git_ref": "feature" }))
        .await;
    app.succeeded(&feature).await;
    pruned(&app, &feature).await;
    let names = stored_names(&app, "acme");
    let built_name = built["image"].as_str().unwrap();
    assert!(!names.contains(built_name), "{names:?}");
    assert!(
        names.contains(feature["image"].as_str().unwrap()),
        "{names:?}"
    );
    // The base stays, by tag, as the build's cache.
    assert!(
        names.contains(&format!("{host}/base/busybox:1")),
        "{names:?}"
    );

    let refused = redeploy(&app, &built).await;
    assert_eq!(refused.status.as_u16(), 409, "{}", refused.body);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(
            "image of that build was pruned (BERTH_KEEP_RELEASES); deploy the commit again"
        ) && message.contains(&built["commit"].as_str().unwrap()[..7]),
        "{message}"
    );
    assert_eq!(
        served_file(&app.release_url("web").await, "hello.txt")
            .await
            .trim(),
        "hello from feature"
    );
    app.stop().await;
}
