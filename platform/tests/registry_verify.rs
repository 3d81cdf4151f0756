//! Verifying credentials against a real distribution registry, with htpasswd (Basic) and
//! token (Bearer) auth. Each test has its own registry.

mod support;

use domain::{ImageReference, RegistryHost};
use platform::egress::{AllowEntry, Egress};
use platform::registry::{
    AuthScheme, BasicCredentials, Missing, RegistryClient, RegistryError, Verified, OCI_INDEX,
    OCI_MANIFEST,
};
use std::time::{Duration, Instant};
use support::basic_auth;
use testregistry::TestRegistry;

const TIMEOUT: Duration = Duration::from_secs(10);
const ADMIN: (&str, &str) = ("admin", "admin-password");

/// The registry over plain HTTP, as an operator lists a registry on loopback; its token
/// service (another port of 127.0.0.1) is allowed the way an operator would allow it, in
/// `BERTH_EGRESS_ALLOW`.
fn client_for(host: &RegistryHost) -> RegistryClient {
    RegistryClient::with_egress(vec![host.clone()], TIMEOUT, loopback_allowed())
}

fn loopback_allowed() -> Egress {
    Egress::new(vec![AllowEntry::parse("127.0.0.1").unwrap()])
}

fn creds((user, password): (&str, &str)) -> BasicCredentials {
    BasicCredentials::new(user, password)
}

fn image(host: &RegistryHost, name: &str) -> ImageReference {
    ImageReference::parse(&format!("{host}/{name}")).expect("a valid image reference")
}

async fn verify(
    registry: &TestRegistry,
    credentials: Option<(&str, &str)>,
    name: Option<&str>,
) -> Result<Verified, RegistryError> {
    let credentials = credentials.map(creds);
    let image = name.map(|name| image(&registry.host, name));
    client_for(&registry.host)
        .verify(&registry.host, credentials.as_ref(), image.as_ref())
        .await
}

/// The digest `skopeo inspect` reports, independently of Berth's client.
async fn skopeo_digest(
    registry: &TestRegistry,
    name: &str,
    (user, password): (&str, &str),
) -> String {
    let output = tokio::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            "--creds",
        ])
        .arg(format!("{user}:{password}"))
        .arg(format!("docker://{}/{name}", registry.host))
        .output()
        .await
        .expect("run skopeo inspect");
    assert!(
        output.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn assert_single_amd64_image(verified: &Verified, digest: &str) {
    let image = verified.image.as_ref().expect("an image was resolved");
    assert_eq!(image.digest, digest);
    assert_eq!(image.media_type, OCI_MANIFEST);
    assert_eq!(image.platforms, ["linux/amd64"]);
    assert_eq!(
        image
            .linux_amd64_digest
            .as_ref()
            .map(domain::Digest::as_str),
        Some(digest)
    );
    let size = image.size.expect("a size");
    // busybox-static is about a megabyte compressed.
    assert!((100_000..20_000_000).contains(&size), "size {size}");
}

mod htpasswd {
    use super::*;

    async fn registry() -> TestRegistry {
        TestRegistry::start_htpasswd(&[ADMIN, ("reader", "reader-password")]).await
    }

    #[tokio::test]
    async fn right_credentials_resolve_the_digest_skopeo_reports() {
        let registry = registry().await;
        let pushed = registry.push_image("team/app", "1.0", ADMIN).await;
        let inspected = skopeo_digest(&registry, "team/app:1.0", ADMIN).await;
        assert_eq!(pushed, inspected);

        let verified = verify(
            &registry,
            Some(("reader", "reader-password")),
            Some("team/app:1.0"),
        )
        .await
        .unwrap();
        assert_eq!(verified.auth, AuthScheme::Basic);
        assert_single_amd64_image(&verified, &inspected);
    }

    #[tokio::test]
    async fn ping_only_with_right_credentials_logs_in() {
        let registry = registry().await;
        let verified = verify(&registry, Some(ADMIN), None).await.unwrap();
        assert_eq!(verified.auth, AuthScheme::Basic);
        assert_eq!(verified.image, None);
    }

    #[tokio::test]
    async fn a_wrong_password_or_unknown_user_is_wrong_credentials() {
        let registry = registry().await;
        registry.push_image("team/app", "1.0", ADMIN).await;
        for (credentials, name) in [
            (("admin", "not-the-password"), None),
            (("admin", "not-the-password"), Some("team/app:1.0")),
            (("nobody", "admin-password"), Some("team/app:1.0")),
        ] {
            let error = verify(&registry, Some(credentials), name)
                .await
                .unwrap_err();
            assert_eq!(
                error,
                RegistryError::WrongCredentials,
                "{credentials:?} {name:?}"
            );
            assert_eq!(error.kind(), "wrong_credentials");
        }
    }

    /// Anonymous verification of a registry that needs a login is its own kind, so that the
    /// UI can ask for credentials rather than say they are wrong.
    #[tokio::test]
    async fn without_credentials_the_registry_requires_them() {
        let registry = registry().await;
        for name in [None, Some("team/app:1.0")] {
            let error = verify(&registry, None, name).await.unwrap_err();
            assert_eq!(error, RegistryError::CredentialsRequired);
            assert_eq!(error.kind(), "credentials_required");
        }
    }

    #[tokio::test]
    async fn a_missing_repository_and_a_missing_tag_are_told_apart() {
        let registry = registry().await;
        registry.push_image("team/app", "1.0", ADMIN).await;

        let error = verify(&registry, Some(ADMIN), Some("team/nothing:1.0"))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            RegistryError::NotFound {
                what: Missing::Repository,
                repository: "team/nothing".into(),
                reference: "1.0".into(),
            }
        );
        assert_eq!(error.kind(), "not_found");

        let error = verify(&registry, Some(ADMIN), Some("team/app:2.0"))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            RegistryError::NotFound {
                what: Missing::Tag,
                repository: "team/app".into(),
                reference: "2.0".into(),
            }
        );
        assert_eq!(error.to_string(), "The repository team/app has no tag 2.0.");
    }

    #[tokio::test]
    async fn an_image_pinned_by_digest_resolves_and_an_unknown_digest_is_not_found() {
        let registry = registry().await;
        let digest = registry.push_image("team/app", "1.0", ADMIN).await;

        let verified = verify(&registry, Some(ADMIN), Some(&format!("team/app@{digest}")))
            .await
            .unwrap();
        assert_single_amd64_image(&verified, &digest);

        let unknown = format!("sha256:{}", "0".repeat(64));
        let error = verify(&registry, Some(ADMIN), Some(&format!("team/app@{unknown}")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::NotFound {
                    what: Missing::Digest,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_multi_platform_image_lists_its_platforms_and_picks_linux_amd64() {
        let registry = registry().await;
        let pushed = registry
            .push_multi_platform_image("team/multi", "1.0", ADMIN)
            .await;
        assert_eq!(
            pushed.index_digest,
            skopeo_digest(&registry, "team/multi:1.0", ADMIN).await
        );

        let verified = verify(&registry, Some(ADMIN), Some("team/multi:1.0"))
            .await
            .unwrap();
        let image = verified.image.unwrap();
        assert_eq!(image.digest, pushed.index_digest);
        assert_eq!(image.media_type, OCI_INDEX);
        assert_eq!(image.platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(
            image
                .linux_amd64_digest
                .as_ref()
                .map(domain::Digest::as_str),
            Some(pushed.linux_amd64_digest.as_str())
        );
        assert!(image.size.unwrap() > 100_000);
    }

    /// Nexus with anonymous access on answers `GET /v2/` with 200 and challenges only at
    /// the repository. The front below does that for a real registry.
    #[tokio::test]
    async fn a_registry_open_at_v2_is_logged_in_to_at_the_repository() {
        let registry = registry().await;
        let digest = registry.push_image("team/app", "1.0", ADMIN).await;
        let front = open_ping_front(&registry).await;

        let verified = verify_at(&front, Some(ADMIN), "team/app:1.0")
            .await
            .unwrap();
        assert_eq!(verified.auth, AuthScheme::Basic);
        assert_eq!(verified.image.unwrap().digest, digest);
        let error = verify_at(&front, Some(("admin", "wrong")), "team/app:1.0")
            .await
            .unwrap_err();
        assert_eq!(error, RegistryError::WrongCredentials);
        let error = verify_at(&front, None, "team/app:1.0").await.unwrap_err();
        assert_eq!(error, RegistryError::CredentialsRequired);
    }

    async fn verify_at(
        host: &RegistryHost,
        credentials: Option<(&str, &str)>,
        name: &str,
    ) -> Result<Verified, RegistryError> {
        client_for(host)
            .verify(
                host,
                credentials.map(creds).as_ref(),
                Some(&image(host, name)),
            )
            .await
    }

    /// Serves `GET /v2/` itself and forwards every other request to `upstream`.
    async fn open_ping_front(upstream: &TestRegistry) -> RegistryHost {
        use axum::{
            body::Body,
            extract::{Request, State},
            http::{header, StatusCode},
            response::Response,
        };
        async fn forward(State(upstream): State<String>, request: Request) -> Response {
            if request.uri().path() == "/v2/" {
                return Response::new(Body::from("{}"));
            }
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let mut forwarded = reqwest::Client::new().get(format!("{upstream}{path}"));
            for name in [header::AUTHORIZATION, header::ACCEPT] {
                if let Some(value) = request.headers().get(&name) {
                    forwarded = forwarded.header(name, value);
                }
            }
            let answer = forwarded
                .send()
                .await
                .expect("the upstream registry answers");
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                    response = response.header(name, value);
                }
            }
            let body = answer.bytes().await.expect("the upstream body");
            response.body(Body::from(body)).unwrap_or_else(|_| {
                let mut failed = Response::new(Body::empty());
                *failed.status_mut() = StatusCode::BAD_GATEWAY;
                failed
            })
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(upstream.url());
        tokio::spawn(async move { axum::serve(listener, app).await });
        RegistryHost::parse(&format!("127.0.0.1:{port}")).unwrap()
    }

    #[tokio::test]
    async fn a_rotated_password_stops_working() {
        let registry = registry().await;
        verify(&registry, Some(ADMIN), None).await.unwrap();
        registry.set_password("admin", "rotated-password");
        let error = verify(&registry, Some(ADMIN), None).await.unwrap_err();
        assert_eq!(error, RegistryError::WrongCredentials);
        verify(&registry, Some(("admin", "rotated-password")), None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_stopped_registry_is_unreachable() {
        let mut registry = registry().await;
        registry.stop();
        let error = verify(&registry, Some(ADMIN), Some("team/app:1.0"))
            .await
            .unwrap_err();
        assert!(matches!(error, RegistryError::Unreachable(_)), "{error:?}");
        assert_eq!(error.kind(), "unreachable");
        // The kind of failure, not the transport's text (address, port, errno).
        assert!(
            error.to_string().contains("the connection failed"),
            "{error}"
        );
        assert!(
            !error.to_string().contains(registry.host.as_str()),
            "{error}"
        );
    }

    /// Without the host in the insecure list, the client speaks TLS, which a plain HTTP
    /// registry cannot answer.
    #[tokio::test]
    async fn tls_to_a_plain_http_registry_is_unreachable() {
        let registry = registry().await;
        let client = RegistryClient::with_egress(Vec::new(), TIMEOUT, loopback_allowed());
        let error = client
            .verify(&registry.host, Some(&creds(ADMIN)), None)
            .await
            .unwrap_err();
        assert!(matches!(error, RegistryError::Unreachable(_)), "{error:?}");
        assert!(
            error.to_string().contains("TLS handshake failed"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_image_on_another_registry_is_refused_before_any_request() {
        let registry = registry().await;
        let elsewhere = ImageReference::parse("ghcr.io/team/app:1.0").unwrap();
        let error = client_for(&registry.host)
            .verify(&registry.host, Some(&creds(ADMIN)), Some(&elsewhere))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "wrong_registry");
    }
}

mod token_auth {
    use super::*;

    const READER: (&str, &str) = ("reader", "reader-password");

    async fn registry() -> TestRegistry {
        TestRegistry::start_token_auth(&[
            (ADMIN.0, ADMIN.1, &["*"]),
            (READER.0, READER.1, &["team/app"]),
        ])
        .await
    }

    #[tokio::test]
    async fn right_credentials_resolve_the_digest_skopeo_reports() {
        let registry = registry().await;
        let pushed = registry.push_image("team/app", "1.0", ADMIN).await;
        assert_eq!(
            pushed,
            skopeo_digest(&registry, "team/app:1.0", READER).await
        );

        let verified = verify(&registry, Some(READER), Some("team/app:1.0"))
            .await
            .unwrap();
        assert_eq!(verified.auth, AuthScheme::Bearer);
        assert_single_amd64_image(&verified, &pushed);

        let verified = verify(&registry, Some(READER), None).await.unwrap();
        assert_eq!(verified.auth, AuthScheme::Bearer);
    }

    #[tokio::test]
    async fn a_wrong_password_is_wrong_credentials() {
        let registry = registry().await;
        for name in [None, Some("team/app:1.0")] {
            let error = verify(&registry, Some(("reader", "wrong")), name)
                .await
                .unwrap_err();
            assert_eq!(error, RegistryError::WrongCredentials, "{name:?}");
        }
    }

    #[tokio::test]
    async fn a_user_without_pull_access_is_denied() {
        let registry = registry().await;
        registry.push_image("team/secret", "1.0", ADMIN).await;
        let error = verify(&registry, Some(READER), Some("team/secret:1.0"))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            RegistryError::Denied {
                repository: Some("team/secret".into())
            }
        );
        assert_eq!(error.kind(), "denied");
    }

    #[tokio::test]
    async fn a_missing_repository_and_a_missing_tag_are_told_apart() {
        let registry = registry().await;
        registry.push_image("team/app", "1.0", ADMIN).await;
        let error = verify(&registry, Some(ADMIN), Some("team/nothing:1.0"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::NotFound {
                    what: Missing::Repository,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = verify(&registry, Some(READER), Some("team/app:2.0"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::NotFound {
                    what: Missing::Tag,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    /// Like Docker Hub: anyone gets a token, which opens `/v2/` but pulls nothing private.
    #[tokio::test]
    async fn anonymous_tokens_log_in_but_pulling_requires_credentials() {
        let registry = registry().await;
        registry.push_image("team/app", "1.0", ADMIN).await;
        let verified = verify(&registry, None, None).await.unwrap();
        assert_eq!(verified.auth, AuthScheme::Bearer);
        let error = verify(&registry, None, Some("team/app:1.0"))
            .await
            .unwrap_err();
        assert_eq!(error, RegistryError::CredentialsRequired);
    }

    #[tokio::test]
    async fn a_token_the_registry_finds_expired_is_token_expired() {
        let registry = registry().await;
        registry.push_image("team/app", "1.0", ADMIN).await;
        registry.issue_expired_tokens(true);
        for name in [None, Some("team/app:1.0")] {
            let error = verify(&registry, Some(READER), name).await.unwrap_err();
            assert_eq!(error, RegistryError::TokenExpired, "{name:?}");
            assert_eq!(error.kind(), "expired");
        }
    }
}

#[tokio::test]
async fn a_registry_that_never_answers_times_out() {
    let hole = testregistry::black_hole().await;
    let client = RegistryClient::new(vec![hole.host.clone()], Duration::from_millis(300));
    let began = Instant::now();
    let error = client
        .verify(&hole.host, Some(&creds(ADMIN)), None)
        .await
        .unwrap_err();
    assert_eq!(error, RegistryError::Timeout);
    assert_eq!(error.kind(), "timeout");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

/// Every failure a verification can end in, with a recognisable secret: neither the secret
/// nor its Basic encoding may appear in any message or debug output.
#[tokio::test]
async fn the_secret_never_appears_in_errors() {
    const SECRET: &str = "Plaintext-Secret-4f1c9e";
    let needles = [
        SECRET.to_owned(),
        basic_auth("admin", SECRET),
        basic_auth("reader", SECRET),
    ];
    let mut errors = Vec::new();

    let basic = TestRegistry::start_htpasswd(&[("admin", SECRET)]).await;
    basic.push_image("team/app", "1.0", ("admin", SECRET)).await;
    let token = TestRegistry::start_token_auth(&[
        ("admin", SECRET, &["*"]),
        ("reader", SECRET, &["team/app"]),
    ])
    .await;
    token
        .push_image("team/secret", "1.0", ("admin", SECRET))
        .await;
    let wrong = ("admin", "Plaintext-Secret-4f1c9e-wrong");

    errors.push(verify(&basic, Some(wrong), Some("team/app:1.0")).await);
    errors.push(verify(&basic, Some(("admin", SECRET)), Some("team/none:1")).await);
    errors.push(verify(&basic, Some(("admin", SECRET)), Some("team/app:2")).await);
    errors.push(verify(&token, Some(wrong), Some("team/app:1.0")).await);
    errors.push(verify(&token, Some(("reader", SECRET)), Some("team/secret:1.0")).await);
    token.issue_expired_tokens(true);
    errors.push(verify(&token, Some(("reader", SECRET)), None).await);
    let tls = RegistryClient::with_egress(Vec::new(), TIMEOUT, loopback_allowed())
        .verify(&basic.host, Some(&creds(("admin", SECRET))), None)
        .await;
    errors.push(tls);
    let hole = testregistry::black_hole().await;
    let timeout = RegistryClient::new(vec![hole.host.clone()], Duration::from_millis(200))
        .verify(&hole.host, Some(&creds(("admin", SECRET))), None)
        .await;
    errors.push(timeout);
    let mut stopped = basic;
    stopped.stop();
    errors.push(verify(&stopped, Some(("admin", SECRET)), Some("team/app:1.0")).await);

    let kinds: Vec<&str> = errors
        .iter()
        .map(|result| result.as_ref().expect_err("every case fails").kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "wrong_credentials",
            "not_found",
            "not_found",
            "wrong_credentials",
            "denied",
            "expired",
            "unreachable",
            "timeout",
            "unreachable"
        ]
    );
    for error in errors.iter().filter_map(|result| result.as_ref().err()) {
        let shown = format!("{error} {error:?}");
        for needle in &needles {
            assert!(!shown.contains(needle.as_str()), "secret leaked: {shown}");
        }
    }
    let credentials = format!("{:?}", creds(("admin", SECRET)));
    assert!(!credentials.contains(SECRET), "{credentials}");
}
