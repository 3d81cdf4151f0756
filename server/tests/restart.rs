//! Killing Berth (`kill -9`) in the middle of a deploy: the previous release keeps serving
//! while no Berth runs, and after a restart no operation is left "running" and the release
//! is adopted, not started again. Stopping Berth (SIGTERM) leaves releases serving too;
//! `berth stop-releases` ends them. Runs the real `berth` binary.

mod support;

use serde_json::{json, Value};
use std::{path::Path, process::Command, time::Duration};
use support::{
    berth_command,
    binary::{owner_token, Api, RealBerth, StopReleases},
    served, served_by_name,
};
use testregistry::TestRegistry;

const PASSWORD: &str = "restart-pull-pass-0b6e2d";

/// `berth` on `data_dir`, pulling from `registry` over plain HTTP, with a short operation
/// lease and its own port range.
fn command(data_dir: &Path, registry: &str) -> Command {
    let mut command = berth_command(data_dir);
    command
        .env("BERTH_INSECURE_REGISTRIES", registry)
        .env("BERTH_OPERATION_LEASE_SECS", "3")
        .env("BERTH_HEALTH_TIMEOUT_SECS", "20")
        .env("BERTH_PORT_RANGE", "23000-23099");
    command
}

#[tokio::test]
async fn a_deploy_interrupted_by_kill_9_is_failed_and_the_previous_release_serves_again() {
    let registry = TestRegistry::start_htpasswd(&[("puller", PASSWORD)]).await;
    let host = registry.host.as_str().to_owned();
    let v1 = registry
        .push_serving_image("team/web", "1", ("puller", PASSWORD), "first release")
        .await;
    registry
        .push_serving_image("team/web", "2", ("puller", PASSWORD), "second release")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let berth_on = {
        let (dir, host) = (dir.path().to_owned(), host.clone());
        move || command(&dir, &host)
    };
    let _cleanup = StopReleases(Box::new(berth_on.clone()));
    let token = owner_token(&berth_on);

    let mut berth = RealBerth::start(berth_on());
    let mut api = Api::new(&berth.url, &token);
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps",
            Some(json!({ "handle": "web", "method": "image" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let deploy = |tag: &str| {
        json!({
            "image": format!("{host}/team/web:{tag}"),
            "registry_username": "puller",
            "registry_password": PASSWORD,
        })
    };
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps/web/deploys",
            Some(deploy("1")),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let first = body["operation"]["id"].as_i64().unwrap();
    let mut done = Value::Null;
    for _ in 0..300 {
        done = api.operation(first).await;
        if done["status"] != "queued" && done["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        done["status"],
        "succeeded",
        "{done}\n{}",
        berth.log.lock().unwrap()
    );
    let first_url = api
        .call(reqwest::Method::GET, "/api/v1/teams/acme/apps/web", None)
        .await
        .1["app"]["release"]["port_url"]
        .as_str()
        .unwrap()
        .to_owned();
    // The app's named address goes through the router too.
    let named = api
        .call(reqwest::Method::GET, "/api/v1/teams/acme/apps/web", None)
        .await
        .1["app"]["release"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(named.starts_with("http://web.acme.localhost:"), "{named}");
    assert_eq!(
        served_by_name(&named).await.as_deref().map(str::trim),
        Some("first release")
    );

    // The second deploy is killed while it runs.
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/teams/acme/apps/web/deploys",
            Some(deploy("2")),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let second = body["operation"]["id"].as_i64().unwrap();
    for _ in 0..400 {
        if api.operation(second).await["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    berth.kill9();
    // No Berth runs: the first release goes on serving all the same.
    assert_eq!(
        served(&first_url).await.as_deref().map(str::trim),
        Some("first release")
    );

    let berth = RealBerth::start(berth_on());
    api.base = berth.url.clone();
    let mut interrupted = Value::Null;
    for _ in 0..150 {
        interrupted = api.operation(second).await;
        if interrupted["status"] != "running" && interrupted["status"] != "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Killed while running (a pull, start and health check take well over the 25 ms
    // between polls): failed with the reason, never left running.
    assert_eq!(interrupted["status"], "failed", "{interrupted}");
    assert!(
        interrupted["error"].as_str().unwrap().contains("stopped"),
        "{interrupted}"
    );
    let expected_digest = v1.clone();
    let expected_body = "first release";

    // The release that should serve is adopted by the new process, at the same address.
    let mut app = Value::Null;
    let mut body = None;
    for _ in 0..150 {
        app = api
            .call(reqwest::Method::GET, "/api/v1/teams/acme/apps/web", None)
            .await
            .1["app"]
            .clone();
        if let Some(url) = app["release"]["port_url"].as_str() {
            body = served(url).await;
            if body.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app["release"]["digest"], expected_digest.as_str(), "{app}");
    assert_eq!(
        body.as_deref().map(str::trim),
        Some(expected_body),
        "{app}\n{}",
        berth.log.lock().unwrap()
    );
    assert_eq!(
        app["release"]["port_url"].as_str(),
        Some(first_url.as_str())
    );
    assert!(
        berth.log.lock().unwrap().contains("adopted a release"),
        "{}",
        berth.log.lock().unwrap()
    );
    assert!(!berth.log.lock().unwrap().contains(PASSWORD));

    // A clean stop leaves the release serving; `berth stop-releases` ends it.
    let mut berth = berth;
    berth.terminate();
    assert_eq!(
        served(&first_url).await.as_deref().map(str::trim),
        Some("first release")
    );
    assert_eq!(
        served_by_name(&named).await.as_deref().map(str::trim),
        Some("first release"),
        "the router outlives Berth too"
    );
    let stopped = support::binary::admin(berth_on(), &["stop-releases"], "");
    assert!(stopped.contains("stopped"), "{stopped}");
    assert_eq!(served(&first_url).await, None);
    assert_eq!(
        served_by_name(&named).await,
        None,
        "the router is stopped with the apps"
    );
}
