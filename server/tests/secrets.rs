//! Secrets at rest: sealed in the database, opened only with the right master key, and
//! re-sealed by `berth rotate-key`.

mod support;

use std::{path::Path, process::Output};
use store::{NewCredential, Sealed, SecretSlot, Store};
use support::{berth_command, output_of};

const SECRET: &str = "registry-password-0f9c2e7a";

fn berth(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = berth_command(data_dir);
    command
        .args(args)
        .env("BERTH_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied());
    output_of(command, "")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A data dir whose database holds one credential sealed with the generated key file.
async fn data_dir_with_a_secret() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    assert!(berth(dir.path(), &["migrate"], &[]).status.success());
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("berth.db").display()
    ))
    .await
    .unwrap();
    let hash =
        store::passwords::hash(&domain::NewPassword::parse("a long enough password").unwrap())
            .unwrap();
    let (user, team) = store
        .create_account(store::NewAccount {
            email: &domain::Email::parse("ops@example.com").unwrap(),
            password_hash: &hash,
            team_handle: &domain::TeamHandle::parse("ops").unwrap(),
            team_name: &domain::TeamName::parse("Ops").unwrap(),
        })
        .await
        .unwrap();
    let keyring = vault::Keyring::from_file(&dir.path().join("master.key"), true).unwrap();
    let credential = store
        .create_credential(
            team,
            NewCredential {
                name: &domain::CredentialName::parse("ghcr").unwrap(),
                registry: &domain::RegistryHost::parse("ghcr.io").unwrap(),
                kind: domain::CredentialKind::parse("basic").unwrap(),
                username: "bot",
                note: None,
                created_by: user.id,
                aws: None,
            },
            |id| Sealed {
                value: keyring.seal(SECRET.as_bytes(), &SecretSlot::Credential(id).context()),
                key_id: keyring.current().id().to_owned(),
            },
        )
        .await
        .unwrap();
    (dir, store, credential.id)
}

fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["berth.db", "berth.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_never_in_the_database_file_in_plaintext() {
    let (dir, store, _) = data_dir_with_a_secret().await;
    store.close().await;
    let bytes = database_bytes(dir.path());
    assert!(!bytes.is_empty());
    assert!(!contains(&bytes, SECRET));
}

#[tokio::test]
async fn a_sealed_secret_cannot_be_opened_for_another_row() {
    let (dir, store, id) = data_dir_with_a_secret().await;
    let keyring = vault::Keyring::from_file(&dir.path().join("master.key"), false).unwrap();
    let sealed = store.credential_secret(id).await.unwrap();
    let context = SecretSlot::Credential(id).context();
    assert_eq!(
        &*keyring.open(&sealed.value, &context).unwrap(),
        SECRET.as_bytes()
    );
    let elsewhere = SecretSlot::Credential(id + 1).context();
    assert!(keyring.open(&sealed.value, &elsewhere).is_err());
}

#[tokio::test]
async fn start_up_with_a_key_that_cannot_open_the_secrets_is_refused() {
    let (dir, store, _) = data_dir_with_a_secret().await;
    store.close().await;
    let other = vault::MasterKey::generate().to_base64();
    let output = berth(
        dir.path(),
        &["serve"],
        &[("BERTH_MASTER_KEY", other.as_str())],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("BERTH_MASTER_KEY: the database holds secrets sealed with master key"),
        "{message}"
    );
    let missing_file = berth(
        dir.path(),
        &["serve"],
        &[("BERTH_MASTER_KEY_FILE", "/nonexistent/berth.key")],
    );
    assert!(!missing_file.status.success());
    assert!(
        text(&missing_file).contains("BERTH_MASTER_KEY_FILE"),
        "{}",
        text(&missing_file)
    );
}

#[tokio::test]
async fn rotate_key_reseals_every_secret_under_a_new_key() {
    let (dir, store, id) = data_dir_with_a_secret().await;
    let key_file = dir.path().join("master.key");
    let old = vault::Keyring::from_file(&key_file, false).unwrap();
    let output = berth(dir.path(), &["rotate-key"], &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("Re-sealed 1 secret(s)"),
        "{}",
        text(&output)
    );

    let rotated = vault::Keyring::from_file(&key_file, false).unwrap();
    assert_ne!(rotated.current().id(), old.current().id());
    let sealed = store.credential_secret(id).await.unwrap();
    assert_eq!(sealed.key_id, rotated.current().id());
    let context = SecretSlot::Credential(id).context();
    assert_eq!(
        &*rotated.open(&sealed.value, &context).unwrap(),
        SECRET.as_bytes()
    );

    // Once every secret is re-sealed the old key can go, and Berth still starts.
    let retire = berth(dir.path(), &["rotate-key", "--retire-old-keys"], &[]);
    assert!(retire.status.success(), "{}", text(&retire));
    let only_new = vault::Keyring::from_file(&key_file, false).unwrap();
    assert_eq!(only_new.key_ids().count(), 1);
    let sealed = store.credential_secret(id).await.unwrap();
    assert!(only_new.open(&sealed.value, &context).is_ok());
    store.close().await;
    assert!(!contains(&database_bytes(dir.path()), SECRET));
}

#[tokio::test]
async fn rotate_key_reseals_a_teams_deploy_key_too() {
    let (dir, store, _) = data_dir_with_a_secret().await;
    let user = store
        .user_by_email(&domain::Email::parse("ops@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let team = store.team_access(user.id, "ops").await.unwrap().unwrap();
    let key_file = dir.path().join("master.key");
    let old = vault::Keyring::from_file(&key_file, false).unwrap();
    let slot = SecretSlot::TeamDeployKey(team.team_id);
    const PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtest\n-----END OPENSSH PRIVATE KEY-----\n";
    store
        .add_deploy_key_if_none(
            team.team_id,
            store::NewDeployKey {
                public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest berth:ops",
                fingerprint: "SHA256:test",
                sealed: Sealed {
                    value: old.seal(PRIVATE_KEY.as_bytes(), &slot.context()),
                    key_id: old.current().id().to_owned(),
                },
                created_by: None,
            },
        )
        .await
        .unwrap();

    let output = berth(dir.path(), &["rotate-key"], &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("Re-sealed 2 secret(s)"),
        "the credential and the deploy key: {}",
        text(&output)
    );
    let rotated = vault::Keyring::from_file(&key_file, false).unwrap();
    let (_, sealed) = store
        .deploy_key_secret(team.team_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed.key_id, rotated.current().id());
    assert_eq!(
        &*rotated.open(&sealed.value, &slot.context()).unwrap(),
        PRIVATE_KEY.as_bytes()
    );
    store.close().await;
    assert!(!contains(
        &database_bytes(dir.path()),
        "b3BlbnNzaC1rZXktdjEAAAAAtest"
    ));
}
