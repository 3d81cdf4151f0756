//! `berth backup` and `berth restore`, with real processes: a backup taken while Berth
//! serves and writes restores to a Berth that serves the same teams, credentials and audit
//! trail; a restore refuses while Berth runs, without the master key, with the wrong key,
//! and for a file that is not a Berth database; the database it replaces is kept.

mod support;

use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Output, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};
use support::{berth_command, output_of};

const SECRET: &str = "backup-registry-secret-6d1f0a";

fn berth(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = berth_command(data_dir);
    command.args(args);
    output_of(command, stdin)
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn refused(output: Output) -> String {
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Serving {
    child: Child,
    url: String,
    data_dir: std::path::PathBuf,
}

impl Drop for Serving {
    /// Berth, then the router it started (which outlives Berth, as releases do).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = berth(&self.data_dir, &["stop-releases"], "");
    }
}

fn serve(data_dir: &Path) -> Serving {
    let mut child = berth_command(data_dir)
        .env("BERTH_ADDR", "127.0.0.1:0")
        .env("BERTH_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["message"] == "Berth is listening" {
                    let _ = sender.send(Ok(event["url"].as_str().unwrap_or_default().to_owned()));
                }
            }
            log.push_str(&line);
            log.push('\n');
        }
        let _ = sender.send(Err(log));
    });
    match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(url)) => Serving {
            child,
            url,
            data_dir: data_dir.to_owned(),
        },
        other => panic!("berth did not start: {other:?}"),
    }
}

fn stop(mut serving: Serving) {
    // SIGTERM: the graceful way an operator stops it.
    unsafe { libc_kill(serving.child.id() as i32, 15) };
    let _ = serving.child.wait();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn credential_names(client: &reqwest::Client, base: &str, token: &str) -> Vec<String> {
    let (status, body) = call(
        client,
        base,
        token,
        reqwest::Method::GET,
        "/api/v1/teams/ops/credentials",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_backup_taken_while_berth_writes_restores_to_a_berth_with_the_same_data() {
    let original = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    ok(berth(
        original.path(),
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--team",
            "ops",
        ],
        "a long enough password\n",
    ));
    let token = ok(berth(
        original.path(),
        &[
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "backup-test",
        ],
        "",
    ))
    .trim()
    .to_owned();
    let server = serve(original.path());
    let client = reqwest::Client::new();
    let (status, body) = call(
        &client,
        &server.url,
        &token,
        reqwest::Method::POST,
        "/api/v1/teams/ops/credentials",
        Some(json!({"name": "first", "registry": "registry.example.com", "username": "bot", "secret": SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Under load: credentials created one after another while the backup is taken.
    let writing = Arc::new(AtomicBool::new(true));
    let load = {
        let (client, base, token, writing) = (
            client.clone(),
            server.url.clone(),
            token.clone(),
            writing.clone(),
        );
        tokio::spawn(async move {
            let mut made = 0;
            while writing.load(Ordering::Relaxed) {
                let (status, body) = call(
                    &client,
                    &base,
                    &token,
                    reqwest::Method::POST,
                    "/api/v1/teams/ops/credentials",
                    Some(json!({"name": format!("load-{made:04}"), "registry": "registry.example.com", "username": "bot", "secret": SECRET})),
                )
                .await;
                assert_eq!(status, 201, "{body}");
                made += 1;
            }
            made
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backup = backups.path().join("berth-backup.db");
    let said = {
        let (dir, backup) = (original.path().to_owned(), backup.clone());
        tokio::task::spawn_blocking(move || {
            ok(berth(&dir, &["backup", backup.to_str().unwrap()], ""))
        })
        .await
        .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    writing.store(false, Ordering::Relaxed);
    let made = load.await.unwrap();
    assert!(made > 0, "the load wrote while the backup ran");
    assert!(
        said.contains("Backed up the database to") && said.contains("master key"),
        "{said}"
    );
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "secrets stay sealed in a backup"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A backup never overwrites, and a restore waits until Berth stops.
    assert!(refused(berth(
        original.path(),
        &["backup", backup.to_str().unwrap()],
        ""
    ))
    .contains("exists already"));
    let running = refused(berth(
        original.path(),
        &["restore", backup.to_str().unwrap()],
        "",
    ));
    assert!(running.contains("Berth is running"), "{running}");
    stop(server);

    // Another Berth's master key cannot open the backup's secrets: refused, naming the key.
    let wrong = tempfile::tempdir().unwrap();
    let other_key = vault::MasterKey::generate().to_base64();
    let mut command = berth_command(wrong.path());
    command
        .args(["restore", backup.to_str().unwrap()])
        .env("BERTH_MASTER_KEY", other_key.as_str());
    let error = refused(output_of(command, ""));
    assert!(error.contains("sealed with master key"), "{error}");
    assert!(
        !wrong.path().join("berth.db").exists(),
        "a refused restore puts nothing in place"
    );

    // A new machine: the backup and, kept apart, the master key.
    let restored = tempfile::tempdir().unwrap();
    let missing_key = refused(berth(
        restored.path(),
        &["restore", backup.to_str().unwrap()],
        "",
    ));
    assert!(
        missing_key.contains("master.key is missing"),
        "{missing_key}"
    );
    std::fs::copy(
        original.path().join("master.key"),
        restored.path().join("master.key"),
    )
    .unwrap();
    let said = ok(berth(
        restored.path(),
        &["restore", backup.to_str().unwrap()],
        "",
    ));
    assert!(said.contains("Restored"), "{said}");
    let server = serve(restored.path());
    let names = credential_names(&client, &server.url, &token).await;
    assert_eq!(names[0], "first");
    // Consistent as of one moment: the credentials made before it, none missing in between.
    let load_names: Vec<&String> = names.iter().filter(|n| n.starts_with("load-")).collect();
    assert!(
        !load_names.is_empty() && load_names.len() <= made,
        "{} of {made}",
        load_names.len()
    );
    for (i, name) in load_names.iter().enumerate() {
        assert_eq!(name.as_str(), format!("load-{i:04}"));
    }
    // The secret opens with the key kept apart (a verify reaches for the registry with it).
    let (status, audit) = call(
        &client,
        &server.url,
        &token,
        reqwest::Method::GET,
        "/api/v1/teams/ops/audit?limit=5",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert!(!audit["events"].as_array().unwrap().is_empty(), "{audit}");
    stop(server);

    // Restoring over a database keeps the one it replaces.
    let said = ok(berth(
        restored.path(),
        &["restore", backup.to_str().unwrap()],
        "",
    ));
    let kept = said
        .lines()
        .find(|l| l.contains("kept as"))
        .expect("says where the old one is")
        .to_owned();
    let aside = kept.trim_end_matches('.').rsplit(' ').next().unwrap();
    assert!(Path::new(aside).exists(), "{said}");
}

#[test]
fn a_restore_refuses_files_that_are_not_berth_databases_and_changes_nothing() {
    let other = tempfile::tempdir().unwrap();
    ok(berth(other.path(), &["migrate"], ""));
    let garbage = other.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a database at all, just text").unwrap();
    let error = refused(berth(
        other.path(),
        &["restore", garbage.to_str().unwrap()],
        "",
    ));
    assert!(
        error.contains("not a") && error.contains("database"),
        "{error}"
    );
    let empty = other.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let error = refused(berth(
        other.path(),
        &["restore", empty.to_str().unwrap()],
        "",
    ));
    assert!(error.contains("not a Berth database"), "{error}");
    // The failed restores changed nothing: the database is still there and serves.
    ok(berth(other.path(), &["migrate"], ""));
}

#[test]
fn with_postgresql_backup_and_restore_point_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    for args in [["backup", "x.db"], ["restore", "x.db"]] {
        let mut command = berth_command(dir.path());
        command
            .args(args)
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none");
        let error = refused(output_of(command, ""));
        assert!(
            error.contains("pg_dump") && error.contains("pg_restore"),
            "{error}"
        );
    }
}
