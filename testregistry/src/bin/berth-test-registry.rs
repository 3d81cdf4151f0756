//! Runs one throwaway htpasswd registry for tests outside Rust (the browser tests): pushes
//! the busybox test image as `team/app:1.0`, prints one JSON line
//! `{"host", "image", "digest", "user", "password"}` to stdout, and runs until stdin closes
//! or it gets SIGTERM or SIGINT; then it stops the registry and removes its directory.
//!
//!   berth-test-registry [USER [PASSWORD]]
//!
//! USER and PASSWORD default to $BERTH_TEST_REGISTRY_USER and $BERTH_TEST_REGISTRY_PASSWORD,
//! then to `ci` and a password made up for this run.

use std::time::{SystemTime, UNIX_EPOCH};
use testregistry::{StopSignals, TestRegistry};

const REPOSITORY: &str = "team/app";
const TAG: &str = "1.0";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let user = args
        .next()
        .or_else(|| std::env::var("BERTH_TEST_REGISTRY_USER").ok())
        .unwrap_or_else(|| "ci".to_owned());
    let password = args
        .next()
        .or_else(|| std::env::var("BERTH_TEST_REGISTRY_PASSWORD").ok())
        .unwrap_or_else(made_up_password);

    // Listen for the signals before anything starts, so that none is missed.
    let stop = StopSignals::listen();

    let registry = TestRegistry::start_htpasswd(&[(&user, &password)]).await;
    let digest = registry
        .push_image(REPOSITORY, TAG, (&user, &password))
        .await;
    let host = registry.host.to_string();
    let line = serde_json::json!({
        "host": host,
        "image": format!("{host}/{REPOSITORY}:{TAG}"),
        "digest": digest,
        "user": user,
        "password": password,
    });
    println!("{line}");

    stop.wait().await;
    // Dropping it kills the registry and removes its directory.
    drop(registry);
}

/// Not a secret worth guarding (a throwaway registry on loopback), only unique to the run.
fn made_up_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("reg-{:x}-{:x}", nanos, std::process::id())
}
