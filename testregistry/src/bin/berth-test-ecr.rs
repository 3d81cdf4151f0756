//! Stands in for AWS ECR in tests outside Rust (the browser tests): starts moto (ECR and STS,
//! checking SigV4; see `testregistry::moto`) and a registry that takes the logins moto mints
//! (user `AWS`, moto's token password), pushes the busybox test image as `team/ecr-app:1.0`,
//! prints one JSON line `{"endpoint", "registry_host", "image", "digest", "access_key_id",
//! "secret_access_key", "token_password"}` and runs until stdin closes or it gets SIGTERM or
//! SIGINT; then it stops both and removes what they made.

use testregistry::{Moto, StopSignals, TestRegistry};

const REPOSITORY: &str = "team/ecr-app";
const TAG: &str = "1.0";

#[tokio::main]
async fn main() {
    let stop = StopSignals::listen();

    let moto = Moto::start().await;
    let registry = TestRegistry::start_htpasswd(&[("AWS", Moto::TOKEN_PASSWORD)]).await;
    let digest = registry
        .push_image(REPOSITORY, TAG, ("AWS", Moto::TOKEN_PASSWORD))
        .await;
    let host = registry.host.to_string();
    let line = serde_json::json!({
        "endpoint": moto.url,
        "registry_host": host,
        "image": format!("{host}/{REPOSITORY}:{TAG}"),
        "digest": digest,
        "access_key_id": moto.keys.access_key_id,
        "secret_access_key": moto.keys.secret_access_key,
        "token_password": Moto::TOKEN_PASSWORD,
    });
    println!("{line}");

    stop.wait().await;
    drop(registry);
    drop(moto);
}
