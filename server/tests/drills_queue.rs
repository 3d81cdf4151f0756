//! Queue drills with the real `berth` binary: the operation queue under load and across
//! processes.
//!
//! - A hundred deploys of one app fired at once: every request is answered (accepted with
//!   202, or refused with a 4xx and the JSON error — a throttle with `Retry-After`), never a
//!   5xx or a hang; every accepted operation runs to its end, none is lost or swapped, they
//!   run one at a time in queue order, and the app ends up serving the last one.
//! - Two Berths on one PostgreSQL database share the queue; one is killed (`kill -9`) while
//!   it runs an operation: the other fails that operation when its lease runs out (with a
//!   reason that says its process stopped: never left `running`) and runs everything still
//!   queued.
//!
//! Releases and the router outlive Berth by design: every data dir a test runs Berth on is
//! emptied with `berth stop-releases` when the test ends, after its Berth is gone.

mod support;

use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};
use support::{
    berth_command,
    binary::{owner_token, Api, RealBerth, StopReleases},
    served,
};
use testregistry::TestRegistry;

const PASSWORD: &str = "drill-queue-pull-pass-5be21d";

/// How `berth` runs on one data dir: [`berth_command`] with the drill's settings.
#[derive(Clone)]
struct Setup {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(dir: &std::path::Path, env: &[(&str, &str)]) -> Setup {
        Setup {
            dir: dir.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn command(&self) -> Command {
        let mut command = berth_command(&self.dir);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Ends the data dir's releases and router when dropped (see [`StopReleases`]).
    fn stop_releases(&self) -> StopReleases {
        let setup = self.clone();
        StopReleases(Box::new(move || setup.command()))
    }
}

/// The operations a Berth's log shows it started.
fn started_in(log: &str) -> BTreeSet<i64> {
    log_events(log, "operation started")
}

/// The operations a Berth's log shows it started and has not finished.
fn running_in(log: &str) -> BTreeSet<i64> {
    let finished = log_events(log, "operation finished");
    started_in(log)
        .into_iter()
        .filter(|id| !finished.contains(id))
        .collect()
}

fn log_events(log: &str, message: &str) -> BTreeSet<i64> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["message"] == message)
        .filter_map(|event| event["operation"].as_i64())
        .collect()
}

async fn create_app(api: &Api, handle: &str) {
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps",
            Some(json!({ "handle": handle, "method": "image" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Asks `berth` for a deploy of `image` to app `handle`; answers the queued operation's id.
async fn deploy(api: &Api, berth: &RealBerth, handle: &str, image: &str) -> i64 {
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/teams/acme/apps/{handle}/deploys"),
            Some(json!({
                "image": image,
                "registry_username": "puller",
                "registry_password": PASSWORD,
            })),
        )
        .await;
    assert_eq!(status, 202, "{body}\n{}", berth.log_text());
    body["operation"]["id"].as_i64().unwrap()
}

/// App `handle`'s history, newest first (all of it: the drills stay below 200).
async fn history(api: &Api, handle: &str) -> Vec<Value> {
    let (status, body) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/teams/acme/apps/{handle}/operations?limit=200"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], Value::Null, "one page holds the history");
    body["operations"].as_array().unwrap().clone()
}

/// Waits (up to `within`) until none of `handles`' operations is queued or running.
async fn settled(api: &Api, handles: &[&str], within: Duration, log: &dyn Fn() -> String) {
    let deadline = Instant::now() + within;
    loop {
        let mut open = Vec::new();
        for handle in handles {
            open.extend(
                history(api, handle)
                    .await
                    .into_iter()
                    .filter(|op| op["status"] == "queued" || op["status"] == "running"),
            );
        }
        if open.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "operations still open after {within:?}: {open:#?}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The operation's `started_at`/`finished_at` (milliseconds), both present.
fn interval(operation: &Value) -> (i64, i64) {
    let started = operation["started_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("never started: {operation}"));
    let finished = operation["finished_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("never finished: {operation}"));
    assert!(started <= finished, "{operation}");
    (started, finished)
}

#[tokio::test]
async fn a_hundred_concurrent_deploys_of_one_app_are_each_accepted_or_refused_clearly_and_run_one_at_a_time(
) {
    let began = Instant::now();
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let host = registry.host.as_str().to_owned();
    // image → (digest, what its release serves)
    let mut images = BTreeMap::new();
    for (tag, body) in [("a", "release a"), ("b", "release b")] {
        let digest = registry
            .push_serving_image("team/web", tag, ("puller", PASSWORD), body)
            .await;
        images.insert(format!("{host}/team/web:{tag}"), (digest, body));
    }
    let image_names: Vec<String> = images.keys().cloned().collect();

    let dir = tempfile::tempdir().unwrap();
    // Ports below the kernel's ephemeral range, which other tests' clients take from.
    let setup = Setup::new(
        dir.path(),
        &[
            ("BERTH_INSECURE_REGISTRIES", &host),
            ("BERTH_HEALTH_TIMEOUT_SECS", "20"),
            ("BERTH_PORT_RANGE", "31200-31279"),
            ("BERTH_APPS_ADDR", "127.0.0.1:31280"),
            ("BERTH_APP_PORTS", "31281-31299"),
        ],
    );
    let _cleanup = setup.stop_releases();
    let token = owner_token(|| setup.command());
    let berth = RealBerth::start(setup.command());
    let api = Arc::new(Api::new(&berth.url, &token));
    create_app(&api, "web").await;

    // A hundred requests, released together, alternating the two images.
    const REQUESTS: usize = 100;
    let gate = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let mut requests = Vec::new();
    for i in 0..REQUESTS {
        let (api, gate) = (api.clone(), gate.clone());
        let image = image_names[i % 2].clone();
        requests.push(tokio::spawn(async move {
            gate.wait().await;
            let response = api
                .client
                .post(format!("{}/api/v1/teams/acme/apps/web/deploys", api.base))
                .bearer_auth(&api.token)
                .json(&json!({
                    "image": image,
                    "registry_username": "puller",
                    "registry_password": PASSWORD,
                }))
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i} got no answer: {e}"));
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap();
            (image, status, retry_after, text)
        }));
    }
    let mut accepted: BTreeMap<i64, String> = BTreeMap::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for request in requests {
        let (image, status, retry_after, text) = request.await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
        assert!(
            status == 202 || (400..500).contains(&status),
            "{status}: {text}"
        );
        if status == 202 {
            let operation = &body["operation"];
            assert_eq!(operation["status"], "queued", "{text}");
            let id = operation["id"].as_i64().unwrap();
            assert!(accepted.insert(id, image).is_none(), "id {id} given twice");
            *tally.entry("202".into()).or_default() += 1;
        } else {
            let error = &body["error"];
            let kind = error["kind"].as_str().unwrap_or_default();
            assert!(!kind.is_empty(), "{status}: {text}");
            assert!(
                !error["message"].as_str().unwrap_or_default().is_empty(),
                "{status}: {text}"
            );
            if status == 429 {
                assert_eq!(kind, "throttled", "{text}");
                let wait: u64 = retry_after
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("429 without Retry-After: {text}"));
                assert!(wait >= 1, "{wait}");
            }
            *tally.entry(format!("{status} {kind}")).or_default() += 1;
        }
    }
    eprintln!("answers: {tally:?}");
    assert!(!accepted.is_empty(), "{tally:?}");

    // Every accepted operation runs to its end.
    settled(&api, &["web"], Duration::from_secs(240), &|| {
        berth.log_text()
    })
    .await;
    let mut listed: Vec<Value> = history(&api, "web").await;
    listed.sort_by_key(|op| op["id"].as_i64().unwrap());
    let listed_ids: Vec<i64> = listed.iter().map(|op| op["id"].as_i64().unwrap()).collect();
    assert_eq!(
        listed_ids,
        accepted.keys().copied().collect::<Vec<_>>(),
        "the history lists exactly the accepted deploys"
    );
    for operation in &listed {
        let id = operation["id"].as_i64().unwrap();
        assert_eq!(
            operation["status"],
            "succeeded",
            "{operation}\n{}",
            berth.log_text()
        );
        // Each ran what was asked of it.
        let (digest, _) = &images[&accepted[&id]];
        assert_eq!(operation["digest"], digest.as_str(), "{operation}");
    }
    // One at a time, in queue order.
    for pair in listed.windows(2) {
        let (first_start, first_end) = interval(&pair[0]);
        let (next_start, _) = interval(&pair[1]);
        assert!(
            first_start <= next_start,
            "started out of order: {} then {}",
            pair[0],
            pair[1]
        );
        assert!(
            first_end <= next_start,
            "overlapping operations: {} and {}",
            pair[0],
            pair[1]
        );
    }

    // The app serves the last deploy, at its stable port.
    let (&last, last_image) = accepted.iter().next_back().unwrap();
    let (digest, body) = &images[last_image];
    let app = api.app("web").await;
    assert_eq!(app["release"]["digest"], digest.as_str(), "{app}");
    assert_eq!(app["release"]["operation_id"], last, "{app}");
    let url = app["release"]["port_url"].as_str().unwrap().to_owned();
    assert_eq!(served(&url).await.as_deref().map(str::trim), Some(*body));
    let log = berth.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(PASSWORD));
    eprintln!(
        "{} deploys accepted and run in {:?}",
        accepted.len(),
        began.elapsed()
    );
}

#[tokio::test]
async fn on_postgresql_two_berths_share_the_queue_and_one_killed_midway_leaves_the_work_to_the_other(
) {
    let began = Instant::now();
    let database = testdb::TestDatabase::postgres().await;
    let master_key = vault::MasterKey::generate().to_base64();
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let host = registry.host.as_str().to_owned();
    // Releases that answer their health check only after 3 or 4 s: operations in flight.
    let mut digests = BTreeMap::new();
    for seconds in [3, 4] {
        let tag = format!("slow-{seconds}");
        let digest = registry
            .push_slow_image("team/app", &tag, ("puller", PASSWORD), seconds)
            .await;
        digests.insert(format!("{host}/team/app:{tag}"), digest);
    }
    let image_names: Vec<String> = digests.keys().cloned().collect();

    // Two hosts, as a shared PostgreSQL database is meant to be used: each Berth has its
    // own data dir, release ports and router; their routers use the same stable ports
    // (an app's stable port is one for all Berths, in the database) on addresses of their
    // own. (On one address, a Berth cannot route an app whose port the other's router
    // holds: its deploy fails at the switch.) The ports are below the kernel's ephemeral
    // range, which the other tests' clients keep taking ports from.
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let common = [
        ("DATABASE_URL", database.url()),
        ("BERTH_MASTER_KEY", master_key.as_str()),
        ("BERTH_INSECURE_REGISTRIES", host.as_str()),
        ("BERTH_OPERATION_LEASE_SECS", "3"),
        ("BERTH_HEALTH_TIMEOUT_SECS", "20"),
    ];
    let a = Setup::new(
        dir_a.path(),
        &[
            &common[..],
            &[
                ("BERTH_PORT_RANGE", "31000-31079"),
                ("BERTH_APPS_ADDR", "127.0.0.1:31080"),
                ("BERTH_APP_PORTS", "31081-31099"),
            ],
        ]
        .concat(),
    );
    let b = Setup::new(
        dir_b.path(),
        &[
            &common[..],
            &[
                ("BERTH_PORT_RANGE", "31100-31179"),
                ("BERTH_APPS_ADDR", "127.0.0.2:31080"),
                ("BERTH_APP_PORTS", "31081-31099"),
            ],
        ]
        .concat(),
    );
    let _cleanup_a = a.stop_releases();
    let _cleanup_b = b.stop_releases();
    let token = owner_token(|| a.command());
    let mut berth_a = RealBerth::start(a.command());
    let berth_b = RealBerth::start(b.command());
    let api_a = Api::new(&berth_a.url, &token);
    let api_b = Api::new(&berth_b.url, &token);
    let (log_a, log_b) = (berth_a.log.clone(), berth_b.log.clone());
    let logs = move || {
        format!(
            "--- A:\n{}\n--- B:\n{}",
            log_a.lock().unwrap(),
            log_b.lock().unwrap()
        )
    };
    create_app(&api_a, "one").await;
    create_app(&api_b, "two").await;
    // Deployed only when A has no work left to be killed in (below).
    create_app(&api_a, "three").await;
    let handles = ["one", "two", "three"];

    // Four deploys per app, asked of both Berths in turn (each Berth is woken by its own):
    // the first of app one is A's, the first of app two is B's.
    let mut queued: BTreeMap<i64, String> = BTreeMap::new();
    for round in 0..4 {
        for (n, handle) in ["one", "two"].into_iter().enumerate() {
            let (api, berth) = if (round + n) % 2 == 0 {
                (&api_a, &berth_a)
            } else {
                (&api_b, &berth_b)
            };
            let image = image_names[round % 2].clone();
            let id = deploy(api, berth, handle, &image).await;
            queued.insert(id, image);
        }
    }

    // Once both Berths have done some of the work (two deploys succeeded), kill A while
    // it runs an operation well inside its health check: started under 2 s ago, while its
    // release answers 3 s after it starts at the earliest.
    //
    // Which Berth claims each next operation is a race: the Berth that ran an app's last
    // operation looks again only once it has settled it, while the other's poll may land
    // first, and a Berth that lost the race for both apps gets no more of their work. Then
    // A is given an app of its own: it is woken by its own queue at once, B only by its 2 s
    // poll.
    let mut gave_a_work = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (chosen, killed_at) = 'kill: loop {
        assert!(
            Instant::now() < deadline,
            "A never ran an operation to kill\n{}",
            logs()
        );
        let mut succeeded = 0;
        for handle in ["one", "two"] {
            succeeded += history(&api_b, handle)
                .await
                .iter()
                .filter(|op| op["status"] == "succeeded")
                .count();
        }
        if succeeded >= 2 {
            for id in running_in(&berth_a.log_text()) {
                let operation = api_b.operation(id).await;
                let young = operation["started_at"]
                    .as_i64()
                    .is_some_and(|started| now_ms() - started < 2_000);
                if operation["status"] == "running" && young {
                    berth_a.kill9();
                    break 'kill (id, now_ms());
                }
            }
            let a_is_idle = running_in(&berth_a.log_text()).is_empty();
            if a_is_idle && !gave_a_work {
                let image = image_names[0].clone();
                let id = deploy(&api_a, &berth_a, "three", &image).await;
                queued.insert(id, image);
                gave_a_work = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ran_on_a = started_in(&berth_a.log_text());

    // B fails what A was running once its lease runs out, and runs all the rest.
    settled(&api_b, &handles, Duration::from_secs(90), &logs).await;
    let mut all: Vec<Value> = Vec::new();
    for handle in handles {
        all.extend(history(&api_b, handle).await);
    }
    all.sort_by_key(|op| op["id"].as_i64().unwrap());
    assert_eq!(
        all.iter()
            .map(|op| op["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        queued.keys().copied().collect::<Vec<_>>(),
        "no operation lost"
    );
    let ran_on_b = started_in(&berth_b.log_text());
    let mut failed = BTreeSet::new();
    let mut after_kill = 0;
    for operation in &all {
        let id = operation["id"].as_i64().unwrap();
        if operation["status"] == "failed" {
            // Only what A was running when it died: failed for that reason, not run again.
            let error = operation["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("process running this operation stopped") && error.contains("lease"),
                "{operation}\n{}",
                logs()
            );
            assert!(!ran_on_b.contains(&id), "B ran {id} too\n{}", logs());
            // Within the 3 s lease and B's 2 s poll, with room to spare.
            let ended = operation["finished_at"].as_i64().unwrap();
            assert!(ended - killed_at < 15_000, "{operation}");
            failed.insert(id);
            continue;
        }
        assert_eq!(operation["status"], "succeeded", "{operation}\n{}", logs());
        assert_eq!(operation["digest"], digests[&queued[&id]].as_str());
        assert!(
            ran_on_a.contains(&id) != ran_on_b.contains(&id),
            "operation {id} ran on exactly one Berth\n{}",
            logs()
        );
        if operation["started_at"].as_i64().unwrap() > killed_at {
            assert!(ran_on_b.contains(&id));
            after_kill += 1;
        }
    }
    assert!(failed.contains(&chosen), "{failed:?} {chosen}");
    assert!(
        failed.len() <= handles.len(),
        "one running operation per app at most: {failed:?}"
    );
    assert!(
        after_kill > 0,
        "nothing was left queued when A died\n{}",
        logs()
    );
    assert!(
        berth_b
            .log_text()
            .contains("operation failed: its lease expired"),
        "{}",
        logs()
    );
    // One at a time per app, in queue order, across both processes; each app's release is
    // its last succeeded deploy.
    for handle in handles {
        let ops: Vec<&Value> = all.iter().filter(|op| op["app"] == handle).collect();
        for pair in ops.windows(2) {
            let (first_start, first_end) = interval(pair[0]);
            let (next_start, _) = interval(pair[1]);
            assert!(
                first_start <= next_start && first_end <= next_start,
                "{} and {}",
                pair[0],
                pair[1]
            );
        }
        let Some(last) = ops.iter().rev().find(|op| op["status"] == "succeeded") else {
            // Only app three, when A died running its one deploy, or it was never deployed.
            assert!(handle == "three" && ops.len() <= 1, "{handle}: {ops:?}");
            continue;
        };
        let app = api_b.app(handle).await;
        assert_eq!(app["release"]["digest"], last["digest"], "{app}");
    }
    eprintln!(
        "killed A running {failed:?}; A started {ran_on_a:?}, B started {ran_on_b:?}; {:?}",
        began.elapsed()
    );
    assert!(began.elapsed() < Duration::from_secs(120));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
