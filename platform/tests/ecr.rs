//! ECR logins minted from an AWS key, against moto (which checks SigV4 and IAM policies):
//! the right key, a wrong secret, an unknown key, a key without permission, a role, and
//! reuse of a token that stays valid (with the clock set, as moto's tokens expire in 2015).

use domain::Secret;
use platform::ecr::{AwsKey, AwsStep, EcrClient, EcrSettings};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use testregistry::Moto;

fn client(moto: &Moto) -> EcrClient {
    EcrClient::new(EcrSettings {
        ecr_endpoint: Some(moto.url.clone()),
        sts_endpoint: Some(moto.url.clone()),
        timeout: Duration::from_secs(10),
        extra_registry_hosts: Vec::new(),
    })
}

fn key<'a>(id: &'a str, secret: &'a Secret) -> AwsKey<'a> {
    AwsKey {
        access_key_id: id,
        secret_access_key: secret,
        region: "us-east-1",
        role_arn: None,
        external_id: None,
        session_name: "berth-acme-ecr",
    }
}

#[tokio::test]
async fn the_right_key_mints_a_login_and_wrong_ones_say_what_aws_said() {
    let moto = Moto::start().await;
    let ecr = client(&moto);
    let secret = Secret::new(moto.keys.secret_access_key.clone());
    let minted = ecr
        .login((1, 1), &key(&moto.keys.access_key_id, &secret))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", moto.log()));
    assert_eq!(minted.login.username, "AWS");
    assert_eq!(minted.login.secret.expose(), Moto::TOKEN_PASSWORD);
    assert_eq!(minted.expires_at, Some(Moto::TOKEN_EXPIRES_AT));
    assert!(!minted.reused);

    let wrong = Secret::new("x".repeat(40));
    let error = ecr
        .login((2, 1), &key(&moto.keys.access_key_id, &wrong))
        .await
        .err()
        .expect("a wrong secret is refused");
    assert_eq!(error.step, AwsStep::SignIn);
    assert_eq!(
        error.code.as_deref(),
        Some("SignatureDoesNotMatch"),
        "{error}"
    );
    assert_eq!(error.status, Some(403));
    assert!(
        error
            .to_string()
            .starts_with("AWS sign-in failed: SignatureDoesNotMatch: "),
        "{error}"
    );

    let unknown = ecr
        .login((3, 1), &key("AKIAUNKNOWNUNKNOWN12", &wrong))
        .await
        .err()
        .expect("an unknown key is refused");
    assert_eq!(
        unknown.code.as_deref(),
        Some("InvalidClientTokenId"),
        "{unknown}"
    );

    let bare_secret = Secret::new(moto.keys.bare_secret_access_key.clone());
    let denied = ecr
        .login((4, 1), &key(&moto.keys.bare_access_key_id, &bare_secret))
        .await
        .err()
        .expect("a key without ecr:GetAuthorizationToken is refused");
    assert_eq!(denied.step, AwsStep::SignIn);
    assert_eq!(denied.code.as_deref(), Some("AccessDenied"), "{denied}");
    assert!(
        denied.message.contains("ecr:GetAuthorizationToken"),
        "{denied}"
    );
    for error in [&error, &unknown, &denied] {
        assert!(!error.to_string().contains(&*"x".repeat(40)));
    }
}

#[tokio::test]
async fn a_role_is_assumed_first_and_its_refusal_is_its_own_step() {
    let moto = Moto::start().await;
    let ecr = client(&moto);
    let secret = Secret::new(moto.keys.secret_access_key.clone());
    let mut with_role = key(&moto.keys.access_key_id, &secret);
    with_role.role_arn = Some(&moto.keys.role_arn);
    with_role.external_id = Some("berth-acme");
    let minted = ecr
        .login((1, 1), &with_role)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", moto.log()));
    assert_eq!(minted.login.secret.expose(), Moto::TOKEN_PASSWORD);

    let bare_secret = Secret::new(moto.keys.bare_secret_access_key.clone());
    let mut bare = key(&moto.keys.bare_access_key_id, &bare_secret);
    bare.role_arn = Some(&moto.keys.role_arn);
    let refused = ecr
        .login((2, 1), &bare)
        .await
        .err()
        .expect("may not assume");
    assert_eq!(refused.step, AwsStep::AssumeRole);
    assert_eq!(refused.code.as_deref(), Some("AccessDenied"), "{refused}");
    assert!(
        refused
            .to_string()
            .starts_with("Role assumption failed: AccessDenied"),
        "{refused}"
    );

    // A wrong secret is the key's failure, not the role's.
    let wrong = Secret::new("y".repeat(40));
    let mut wrong_key = key(&moto.keys.access_key_id, &wrong);
    wrong_key.role_arn = Some(&moto.keys.role_arn);
    let refused = ecr
        .login((3, 1), &wrong_key)
        .await
        .err()
        .expect("wrong secret");
    assert_eq!(refused.step, AwsStep::SignIn, "{refused}");
    assert_eq!(refused.code.as_deref(), Some("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn a_token_is_reused_only_while_it_stays_valid_for_longer_than_an_operation() {
    let moto = Moto::start().await;
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms as u64);
    // Twelve hours before moto's tokens expire.
    let now = Arc::new(Mutex::new(at(Moto::TOKEN_EXPIRES_AT - 12 * 3_600_000)));
    let clock = now.clone();
    let ecr = client(&moto).with_clock(Arc::new(move || *clock.lock().unwrap()));
    let secret = Secret::new(moto.keys.secret_access_key.clone());
    let key = key(&moto.keys.access_key_id, &secret);

    assert!(!ecr.login((1, 1), &key).await.unwrap().reused);
    assert!(
        ecr.login((1, 1), &key).await.unwrap().reused,
        "valid for 12 h: reused"
    );
    // Another version of the credential (its key or role changed) mints anew.
    assert!(!ecr.login((1, 2), &key).await.unwrap().reused);
    assert!(ecr.login((1, 2), &key).await.unwrap().reused);
    // An hour before expiry a token is too short-lived for an operation.
    *now.lock().unwrap() = at(Moto::TOKEN_EXPIRES_AT - 3_600_000);
    assert!(!ecr.login((1, 2), &key).await.unwrap().reused);
    // With the real clock moto's tokens have long expired: always minted.
    let ecr = client(&moto);
    assert!(!ecr.login((1, 1), &key).await.unwrap().reused);
    assert!(!ecr.login((1, 1), &key).await.unwrap().reused);
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_is_a_clear_failure() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ecr = EcrClient::new(EcrSettings {
        ecr_endpoint: Some(format!("http://127.0.0.1:{port}")),
        sts_endpoint: None,
        timeout: Duration::from_secs(3),
        extra_registry_hosts: Vec::new(),
    });
    let secret = Secret::new("s".repeat(40));
    let error = ecr
        .login((1, 1), &key("AKIAIOSFODNN7EXAMPLE", &secret))
        .await
        .err()
        .expect("nothing answers");
    assert_eq!(error.step, AwsStep::SignIn);
    assert_eq!(error.code, None);
    assert!(
        error.message.contains("could not reach ECR") || error.message.contains("did not answer"),
        "{error}"
    );
}

/// Against AWS itself, when `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `BERTH_TEST_ECR_IMAGE` (an image in an ECR registry the key may pull) are set; the region
/// is `AWS_REGION`, else the image's. Mints a token and resolves the image with it.
#[tokio::test]
async fn live_aws_mints_a_token_that_pulls_the_test_image() {
    let (Ok(id), Ok(secret), Ok(image)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
        std::env::var("BERTH_TEST_ECR_IMAGE"),
    ) else {
        eprintln!(
            "skipped: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and BERTH_TEST_ECR_IMAGE to mint a token from AWS"
        );
        return;
    };
    let image = domain::ImageReference::parse(&image).expect("BERTH_TEST_ECR_IMAGE is an image");
    let (_, image_region) = domain::ecr_host_parts(image.registry())
        .expect("BERTH_TEST_ECR_IMAGE is on an ECR registry");
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| image_region.to_owned());
    let secret = Secret::new(secret);
    let ecr = EcrClient::new(EcrSettings::default());
    let minted = ecr
        .login(
            (1, 1),
            &AwsKey {
                access_key_id: &id,
                secret_access_key: &secret,
                region: &region,
                role_arn: None,
                external_id: None,
                session_name: "berth-live-test",
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expires = minted.expires_at.expect("AWS says when the token expires");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(expires > now + 3_600_000, "a fresh token lasts hours");
    let registry = platform::registry::RegistryClient::new(Vec::new(), Duration::from_secs(20));
    let verified = registry
        .verify(image.registry(), Some(&minted.login), Some(&image))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "pulled {image}: {:?}",
        verified.image.map(|i| i.digest.to_string())
    );
}
