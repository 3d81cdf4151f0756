//! Reliability drills with the real `berth` binary: an app's stable address keeps answering
//! while it is deployed, configured and restarted, and while Berth itself is killed with
//! `kill -9` again and again in the middle of deploys — its release and its route outlive
//! Berth, and every Berth that starts finds the work where the last one left it.

mod support;

use serde_json::{json, Value};
use std::{
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use support::{
    berth_command,
    binary::{owner_token, Api, RealBerth, StopReleases},
};
use testregistry::TestRegistry;

const PASSWORD: &str = "drill-pull-pass-3f9a0c";

fn command(data_dir: &Path, registry: &str, ports: &str) -> Command {
    let mut command = berth_command(data_dir);
    command
        .env("BERTH_INSECURE_REGISTRIES", registry)
        .env("BERTH_OPERATION_LEASE_SECS", "3")
        .env("BERTH_HEALTH_TIMEOUT_SECS", "20")
        .env("BERTH_PORT_RANGE", ports);
    command
}

/// Clients that request `url` without pause (two keeping their connection alive, two
/// opening one per request) until stopped; they count what each body said and every
/// request that failed.
struct Hammer {
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Hammer {
    fn start(url: &str) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let mut tasks = Vec::new();
        for client in 0..4 {
            let keep_alive = client % 2 == 0;
            let (stop, requests, failures, bodies) = (
                stop.clone(),
                requests.clone(),
                failures.clone(),
                bodies.clone(),
            );
            let url = url.to_owned();
            tasks.push(tokio::spawn(async move {
                let build = || {
                    let builder = reqwest::Client::builder()
                        .no_proxy()
                        .timeout(Duration::from_secs(10));
                    let builder = if keep_alive {
                        builder
                    } else {
                        builder.pool_max_idle_per_host(0)
                    };
                    builder.build().unwrap()
                };
                let client = build();
                while !stop.load(Ordering::SeqCst) {
                    requests.fetch_add(1, Ordering::SeqCst);
                    match client.get(&url).send().await {
                        Ok(response) if response.status().is_success() => {
                            let body = response.text().await.unwrap_or_default();
                            *bodies
                                .lock()
                                .unwrap()
                                .entry(body.trim().to_owned())
                                .or_default() += 1;
                        }
                        Ok(response) => failures.lock().unwrap().push(format!(
                            "{} status {}",
                            unix_time(),
                            response.status()
                        )),
                        Err(error) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {error:?}", unix_time())),
                    }
                }
            }));
        }
        Hammer {
            stop,
            requests,
            failures,
            bodies,
            tasks,
        }
    }

    /// Stops the clients; answers (requests, failures, bodies seen).
    async fn stop(self) -> (u64, Vec<String>, std::collections::BTreeMap<String, u64>) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.requests.load(Ordering::SeqCst),
            self.failures.lock().unwrap().clone(),
            self.bodies.lock().unwrap().clone(),
        )
    }
}

/// Now, in seconds since the epoch (as Caddy's logs write it), to find a failed request in
/// the logs.
fn unix_time() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:.3}", now.as_secs_f64())
}

/// The lines of the router's Caddy logs that are not about a normal request: what to read
/// when a request through the router failed.
fn router_complaints(data_dir: &std::path::Path) -> String {
    let mut complaints = String::new();
    for name in ["caddy.log", "edge.log"] {
        let path = data_dir.join("engine/router").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().filter(|line| {
            !line.contains("\"level\":\"info\"") && !line.contains("\"level\":\"debug\"")
        }) {
            complaints.push_str(name);
            complaints.push_str(": ");
            complaints.push_str(line);
            complaints.push('\n');
        }
    }
    complaints
}

/// Deploys `image` to app `web` and waits for the operation to end; answers it.
async fn deploy(api: &Api, image: &str) -> Value {
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps/web/deploys",
            Some(json!({ "image": image })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    api.wait(
        body["operation"]["id"].as_i64().unwrap(),
        Duration::from_secs(120),
    )
    .await
}

/// Registry with three serving images, Berth with app `web` deployed from the first one.
struct Drill {
    registry: TestRegistry,
    images: Vec<String>,
    api: Api,
    berth: RealBerth,
    berth_on: Box<dyn Fn() -> Command>,
    _cleanup: StopReleases,
    _dir: tempfile::TempDir,
}

async fn drill(ports: &str) -> Drill {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let host = registry.host.as_str().to_owned();
    let mut images = Vec::new();
    for (tag, body) in [
        ("1", "release one"),
        ("2", "release two"),
        ("3", "release three"),
    ] {
        registry
            .push_serving_image("team/web", tag, ("puller", PASSWORD), body)
            .await;
        images.push(format!("{host}/team/web:{tag}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let berth_on = {
        let (dir, host, ports) = (dir.path().to_owned(), host.clone(), ports.to_owned());
        move || command(&dir, &host, &ports)
    };
    let cleanup = StopReleases(Box::new(berth_on.clone()));
    let token = owner_token(&berth_on);
    let berth = RealBerth::start(berth_on());
    let api = Api::new(&berth.url, &token);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps",
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps/web/deploys",
            Some(json!({
                "image": images[0],
                "registry_username": "puller",
                "registry_password": PASSWORD,
            })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let first = api
        .wait(
            body["operation"]["id"].as_i64().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(
        first["status"],
        "succeeded",
        "{first}\n{}",
        berth.log_text()
    );
    Drill {
        registry,
        images,
        api,
        berth,
        berth_on: Box::new(berth_on),
        _cleanup: cleanup,
        _dir: dir,
    }
}

#[tokio::test]
async fn the_stable_address_answers_every_request_through_deploys_a_configure_and_a_restart() {
    let drill = drill("23100-23199").await;
    let api = &drill.api;
    let app = api.app("web").await;
    let url = app["release"]["port_url"].as_str().unwrap().to_owned();
    let named = app["release"]["url"].as_str().unwrap().to_owned();
    let hammer = Hammer::start(&url);
    tokio::time::sleep(Duration::from_millis(300)).await;

    for image in [&drill.images[1], &drill.images[2], &drill.images[1]] {
        let done = deploy(api, image).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(api.app("web").await["release"]["port_url"], url.as_str());
        assert_eq!(api.app("web").await["release"]["url"], named.as_str());
    }
    let (status, body) = api
        .call(
            reqwest::Method::PATCH,
            "/api/v1/teams/acme/apps/web/config",
            Some(json!({ "env": { "GREETING": "hello" } })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let configured = api
        .wait(
            body["operation"]["id"].as_i64().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(configured["status"], "succeeded", "{configured}");
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps/web/restart",
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let restarted = api
        .wait(
            body["operation"]["id"].as_i64().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(restarted["status"], "succeeded", "{restarted}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (requests, failures, bodies) = hammer.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(requests > 100, "only {requests} requests were made");
    for body in ["release one", "release two", "release three"] {
        assert!(
            bodies.contains_key(body),
            "{body} was never served: {bodies:?}"
        );
    }
    assert_eq!(api.app("web").await["release"]["port_url"], url.as_str());
    assert_eq!(
        support::served_by_name(&named)
            .await
            .as_deref()
            .map(str::trim),
        Some("release two")
    );
}

#[tokio::test]
async fn kill_9_twenty_times_in_the_middle_of_deploys_loses_nothing_and_the_app_keeps_answering() {
    let mut drill = drill("23200-23299").await;
    let url = drill.api.app("web").await["release"]["port_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let hammer = Hammer::start(&url);
    let mut accepted = Vec::new();
    let mut earlier_logs = String::new();
    let started = Instant::now();
    for round in 0..20u64 {
        let image = &drill.images[(round % 3) as usize];
        let (status, body) = drill
            .api
            .call(
                reqwest::Method::POST,
                "/api/v1/teams/acme/apps/web/deploys",
                Some(json!({ "image": image })),
            )
            .await;
        assert_eq!(status, 202, "round {round}: {body}");
        accepted.push(body["operation"]["id"].as_i64().unwrap());
        // Somewhere in the deploy: queued, pulling, starting, health-checking, switching.
        let pause = (round * 7919) % 1500;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        drill.berth.kill9();
        earlier_logs.push_str(&drill.berth.log_text());
        drill.berth = RealBerth::start((drill.berth_on)());
        drill.api.base = drill.berth.url.clone();
    }
    let killed_for = started.elapsed();

    // Every accepted operation ends: run by a later Berth, or failed with the reason once
    // its lease ran out; none is left queued or running.
    let mut ended = Vec::new();
    for id in &accepted {
        ended.push(drill.api.wait(*id, Duration::from_secs(180)).await);
    }
    for operation in &ended {
        match operation["status"].as_str().unwrap() {
            "succeeded" => {}
            "failed" => assert!(
                operation["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("stopped"),
                "{operation}"
            ),
            other => panic!("operation ended {other}: {operation}"),
        }
    }
    assert!(
        ended.iter().any(|op| op["status"] == "succeeded"),
        "some deploys succeeded between the kills"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (requests, failures, _) = hammer.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed while Berth was killed 20 times in {killed_for:?}: \
         {:?}\nthe router logged:\n{}\nthe Berths logged:\n{earlier_logs}{}",
        failures.len(),
        &failures[..failures.len().min(10)],
        router_complaints(drill._dir.path()),
        drill.berth.log_text()
    );

    // No release is lost or doubled: the current release serves at the same address, and it
    // is the only one running for the app.
    let app = drill.api.app("web").await;
    assert_eq!(app["release"]["port_url"], url.as_str());
    let digest = app["release"]["digest"].as_str().unwrap().to_owned();
    let last_succeeded = ended
        .iter()
        .filter(|op| op["status"] == "succeeded")
        .max_by_key(|op| op["finished_at"].as_i64())
        .unwrap();
    assert_eq!(digest, last_succeeded["digest"].as_str().unwrap(), "{app}");
    let records: Vec<String> = support::binary::release_records_once_settled(drill._dir.path())
        .await
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect();
    assert_eq!(
        records.len(),
        1,
        "one release runs for the app: {records:#?}\n{app}\n{}",
        drill.berth.log_text()
    );
    let deployed = last_succeeded["image"].as_str().unwrap();
    let expected = match deployed.rsplit(':').next() {
        Some("1") => "release one",
        Some("2") => "release two",
        _ => "release three",
    };
    assert_eq!(support::served(&url).await.unwrap().trim(), expected);
    drop(drill.registry);
}

/// The app's operations, newest first, as `(id, status)`.
async fn history(api: &Api) -> Vec<(i64, String)> {
    let (status, body) = api
        .call(
            reqwest::Method::GET,
            "/api/v1/teams/acme/apps/web/operations?limit=100",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["id"].as_i64().unwrap(),
                op["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_backup_taken_during_deploys_restores_to_a_berth_that_serves_the_same_app_and_history() {
    let mut drill = drill("23300-23399").await;
    // Under load: deploys one after another while the backup is taken.
    let deploying = Arc::new(AtomicBool::new(true));
    let load = {
        let (api, images, deploying) = (
            Api::new(&drill.api.base, &drill.api.token),
            drill.images.clone(),
            deploying.clone(),
        );
        tokio::spawn(async move {
            let mut round = 0;
            while deploying.load(Ordering::SeqCst) {
                let done = deploy(&api, &images[(round + 1) % 3]).await;
                assert_eq!(done["status"], "succeeded", "{done}");
                round += 1;
            }
            round
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("berth.db");
    let said = support::binary::admin(
        (drill.berth_on)(),
        &["backup", backup.to_str().unwrap()],
        "",
    );
    assert!(said.contains("Backed up"), "{said}");
    deploying.store(false, Ordering::SeqCst);
    let rounds = load.await.unwrap();
    assert!(rounds > 0);
    let original_history = history(&drill.api).await;
    let original_url = drill.api.app("web").await["release"]["port_url"].clone();

    // The machine is replaced: the old Berth and its apps are gone; the backup and the
    // master key (kept apart) come to a new data dir.
    drill.berth.terminate();
    support::binary::admin((drill.berth_on)(), &["stop-releases"], "");
    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        drill._dir.path().join("master.key"),
        restored_dir.path().join("master.key"),
    )
    .unwrap();
    let restored_on = {
        let (dir, host) = (
            restored_dir.path().to_owned(),
            drill.registry.host.as_str().to_owned(),
        );
        move || command(&dir, &host, "23400-23499")
    };
    let _restored_cleanup = StopReleases(Box::new(restored_on.clone()));
    let said = support::binary::admin(restored_on(), &["restore", backup.to_str().unwrap()], "");
    assert!(said.contains("Restored"), "{said}");
    let berth = RealBerth::start(restored_on());
    let api = Api::new(&berth.url, &drill.api.token);

    // The same history as of the backup's moment: what had ended then is there as it was;
    // what was running then ends (failed with the reason, its process being gone), queued
    // ones run.
    let restored_history = history(&api).await;
    assert!(!restored_history.is_empty());
    for (id, status) in &restored_history {
        let original = original_history
            .iter()
            .find(|(original, _)| original == id)
            .unwrap_or_else(|| panic!("operation {id} was not in the original history"));
        if status != "running" && status != "queued" {
            assert_eq!(status, &original.1, "operation {id}");
        }
        let ended = api.wait(*id, Duration::from_secs(120)).await;
        assert_ne!(ended["status"], "running");
    }
    // The same app at the same stable address, serving the release the backup names (pulled
    // again and started by the new Berth).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut app = api.app("web").await;
    while app["release"]["port_url"].is_null() {
        assert!(Instant::now() < deadline, "{app}\n{}", berth.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
        app = api.app("web").await;
    }
    let current = app["release"]["operation_id"].as_i64().unwrap();
    let deployed = api.operation(current).await["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = match deployed.rsplit(':').next() {
        Some("1") => "release one",
        Some("2") => "release two",
        _ => "release three",
    };
    let url = app["release"]["port_url"].as_str().unwrap().to_owned();
    assert_eq!(
        app["release"]["port_url"], original_url,
        "the app keeps its address"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = support::served(&url).await {
            assert_eq!(body.trim(), expected, "{app}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{url} does not answer: {app}\n{}",
            berth.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(berth);
}
