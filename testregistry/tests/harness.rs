//! The harness's own promises: registries are independent, and nothing outlives them.

use std::net::TcpStream;
use testregistry::TestRegistry;

fn port_of(registry: &TestRegistry) -> u16 {
    registry
        .host
        .as_str()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

#[tokio::test]
async fn registries_are_independent_and_dropping_one_removes_it() {
    let (one, two) = tokio::join!(
        TestRegistry::start_htpasswd(&[("a", "b")]),
        TestRegistry::start_token_auth(&[("a", "b", &["*"])]),
    );
    assert_ne!(one.host, two.host);
    assert_ne!(one.dir(), two.dir());
    assert!(two.token_realm().unwrap().starts_with("http://127.0.0.1:"));

    let dir = one.dir().to_owned();
    let port = port_of(&one);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(one);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test]
async fn a_stopped_registry_refuses_connections_and_pushes_leave_no_auth_file() {
    let mut registry = TestRegistry::start_htpasswd(&[("a", "b")]).await;
    let digest = registry.push_image("team/app", "1", ("a", "b")).await;
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(registry.dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("push-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    registry.stop();
    let refused = TcpStream::connect(("127.0.0.1", port_of(&registry))).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}
