//! Git over ssh with each team's deploy key, against a real ssh git host (sshd with a
//! git-shell account on a loopback port): a private repository reads only once the team's
//! public key is authorised there, only with that team's key, and only with the key Berth
//! holds now (a new key replaces the old one at once). Owners alone make new keys; every
//! member sees the public half; the private half is in no API answer, page, log, command
//! line, child environment or database file.

mod support;

use app::serverfns::deploy_key::GenerateDeployKey;
use leptos::server_fn::ServerFn;
use serde_json::Value;
use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
};
use support::{ssh_host::GitSshHost, *};

/// A repository with a Dockerfile on `main` and a tag `v1`, made in a temp dir.
fn source_repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY hello.txt /\n").unwrap();
    std::fs::write(dir.join("hello.txt"), "hello over ssh\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "Private code"]);
    git(dir, &["tag", "v1"]);
    repo
}

/// Team `team`'s deploy key as `token` reads it through the API.
async fn deploy_key(app: &TestApp, team: &str, token: &str) -> Value {
    app.call(
        "GET",
        &format!("/api/v1/teams/{team}/deploy-key"),
        token,
        None,
    )
    .await
    .expect(200)
    .json()
}

/// Fetches app `handle` of `team` as `token` (`POST …/refs/fetch`).
async fn fetch(app: &TestApp, team: &str, handle: &str, token: &str) -> TestResponse {
    app.call(
        "POST",
        &format!("/api/v1/teams/{team}/apps/{handle}/refs/fetch"),
        token,
        None,
    )
    .await
}

/// The refused fetch's message, checked to be Berth's own: the deploy key by fingerprint.
fn refused_key(response: TestResponse, fingerprint: &str) -> String {
    let error = refusal(response, "invalid", "git_password");
    let message = error["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("refused the team's deploy key") && message.contains(fingerprint),
        "{message}"
    );
    message
}

/// Reads every process's command line and environment, again and again, while it runs:
/// which held a needle, and whether it has seen ssh started with a key file (the proof that
/// it looked while a fetch ran).
struct ProcessWatch {
    stop: Arc<AtomicBool>,
    saw_ssh: Arc<AtomicBool>,
    thread: thread::JoinHandle<BTreeSet<String>>,
}

impl ProcessWatch {
    fn start(needles: Vec<String>) -> ProcessWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let saw_ssh = Arc::new(AtomicBool::new(false));
        let (stopped, seen) = (stop.clone(), saw_ssh.clone());
        let thread = thread::spawn(move || {
            let mut leaks = BTreeSet::new();
            while !stopped.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let name = entry.file_name();
                    if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    for what in ["cmdline", "environ"] {
                        let Ok(bytes) = std::fs::read(entry.path().join(what)) else {
                            continue;
                        };
                        let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
                        if what == "cmdline" && text.contains("IdentityFile='") {
                            seen.store(true, Ordering::SeqCst);
                        }
                        if needles.iter().any(|needle| text.contains(needle.as_str())) {
                            leaks.insert(format!("{what}: {text}"));
                        }
                    }
                }
            }
            leaks
        });
        ProcessWatch {
            stop,
            saw_ssh,
            thread,
        }
    }

    fn saw_ssh(&self) -> bool {
        self.saw_ssh.load(Ordering::SeqCst)
    }

    /// Stops watching: the command lines and environments that held a needle.
    fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The whole story on one database; answers the private-key needles of every key the
/// teams had, for the database checks that differ between SQLite and PostgreSQL.
async fn a_teams_deploy_key_reads_its_private_ssh_repository(
    app: &TestApp,
    host: &GitSshHost,
) -> Vec<String> {
    let repo = source_repository();
    let url = host.serve_repository("web", repo.path());
    let main = git(repo.path(), &["rev-parse", "main"]);

    // No key yet, and reading says so without making one: a GET has no side effects.
    for token in [app.viewer(), app.owner_token()] {
        let none = deploy_key(app, "acme", &token).await;
        assert_eq!(
            none,
            serde_json::json!({"public_key": null, "fingerprint": null, "created_at": null})
        );
    }
    assert!(app
        .store
        .deploy_key(app.team_id("acme"))
        .await
        .unwrap()
        .is_none());

    // (a) The app's first fetch makes the team's key, which the host does not know yet:
    // Berth's own message, naming the key by fingerprint.
    let created = app
        .create_app("web", "dockerfile", Some(serde_json::json!({ "url": url })))
        .await;
    assert_eq!(created["git"]["url"], url.as_str());
    let key = deploy_key(app, "acme", &app.viewer()).await;
    let public_key = key["public_key"]
        .as_str()
        .expect("made by the first fetch")
        .to_owned();
    let fingerprint = key["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        public_key.starts_with("ssh-ed25519 AAAA") && public_key.ends_with(" berth:acme"),
        "{public_key}"
    );
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    assert!(key["created_at"].as_i64().unwrap() > 0);
    assert_eq!(
        deploy_key(app, "acme", &app.deployer()).await,
        key,
        "every member sees it"
    );
    let refused = refused_key(
        fetch(app, "acme", "web", &app.deployer()).await,
        &fingerprint,
    );
    assert!(!refused.contains("PRIVATE KEY"));
    assert!(
        host.log().contains(&fingerprint),
        "sshd was offered the team's key, and refused it: {}",
        host.log()
    );

    // (b) Authorised on the host, the team's key reads the repository (while nothing of it
    // reaches a command line or a child's environment).
    host.authorize(&[&public_key]);
    let mut needles = app.deploy_key_needles("acme", &public_key).await;
    let watch = ProcessWatch::start(needles.clone());
    // Fetched until the watch has seen ssh at work at least once (a fetch is quick).
    let mut fetched = Value::Null;
    for _ in 0..30 {
        fetched = fetch(app, "acme", "web", &app.viewer())
            .await
            .expect(200)
            .json();
        if watch.saw_ssh() {
            break;
        }
    }
    let saw_ssh = watch.saw_ssh();
    let leaks = watch.finish();
    assert!(leaks.is_empty(), "the private key in a process: {leaks:?}");
    assert!(saw_ssh, "the watch saw ssh run with the key file");
    let refs = fetched["refs"].as_array().unwrap();
    let names: Vec<(&str, &str)> = refs
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("main", "branch"), ("v1", "tag")], "{fetched}");
    assert_eq!(refs[0]["commit"], main.as_str());
    // The app's page says which key reads it.
    let mut browser = app.signed_in(DEPLOYER).await;
    let page = browser.get("/teams/acme/apps/web/deploy").await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.body.contains("/teams/acme/members#deploy-key"));

    // (c) Another team's key is refused by the same repository.
    let other = app
        .call(
            "POST",
            "/api/v1/teams/other/apps",
            &app.outsider(),
            Some(serde_json::json!({ "handle": "copy", "method": "dockerfile", "git": { "url": url } })),
        )
        .await
        .expect(201);
    assert_eq!(other.json()["app"]["handle"], "copy");
    let other_key = deploy_key(app, "other", &app.outsider()).await;
    let other_fingerprint = other_key["fingerprint"].as_str().unwrap().to_owned();
    assert_ne!(
        other_fingerprint, fingerprint,
        "each team has a key of its own"
    );
    assert!(other_key["public_key"]
        .as_str()
        .unwrap()
        .ends_with(" berth:other"));
    refused_key(
        fetch(app, "other", "copy", &app.outsider()).await,
        &other_fingerprint,
    );
    assert!(host.log().contains(&other_fingerprint), "{}", host.log());
    // …and the other team's owner cannot read or replace acme's.
    for method in ["GET", "POST"] {
        app.call(
            method,
            "/api/v1/teams/acme/deploy-key",
            &app.outsider(),
            None,
        )
        .await
        .expect(404);
    }
    needles.extend(
        app.deploy_key_needles("other", other_key["public_key"].as_str().unwrap())
            .await,
    );

    // (d) Only owners make a new key; it replaces the old one at once, so the old one
    // (still authorised on the host) no longer works in Berth.
    for token in [app.deployer(), app.viewer()] {
        let refused = app
            .call("POST", "/api/v1/teams/acme/deploy-key", &token, None)
            .await
            .expect(403);
        assert_eq!(refused.json()["error"]["kind"], "forbidden");
    }
    assert_eq!(
        deploy_key(app, "acme", &app.viewer()).await,
        key,
        "unchanged"
    );
    let rotated = app
        .call(
            "POST",
            "/api/v1/teams/acme/deploy-key",
            &app.owner_token(),
            None,
        )
        .await
        .expect(200)
        .json();
    let new_public_key = rotated["public_key"].as_str().unwrap().to_owned();
    let new_fingerprint = rotated["fingerprint"].as_str().unwrap().to_owned();
    assert_ne!(new_fingerprint, fingerprint);
    assert_eq!(deploy_key(app, "acme", &app.viewer()).await, rotated);
    needles.extend(app.deploy_key_needles("acme", &new_public_key).await);
    refused_key(
        fetch(app, "acme", "web", &app.deployer()).await,
        &new_fingerprint,
    );
    // Authorising the new key (and only it) makes the repository readable again.
    host.authorize(&[&new_public_key]);
    fetch(app, "acme", "web", &app.deployer()).await.expect(200);

    // Without JavaScript, the members page's form makes a new key too and shows it.
    let mut owner = app.signed_in(OWNER).await;
    let members = owner.get("/teams/acme/members").await;
    assert_eq!(members.status.as_u16(), 200);
    assert!(members.body.contains(&new_fingerprint));
    assert!(members
        .body
        .contains(new_public_key.split_whitespace().nth(1).unwrap()));
    assert!(members.body.contains("Generate a new key"));
    let csrf = csrf_from(&members.body).unwrap();
    let posted = owner
        .post_form(
            GenerateDeployKey::PATH,
            &[("csrf_token", &csrf), ("team", "acme")],
            true,
            Some("http://berth.test/teams/acme/members"),
        )
        .await;
    assert!(posted.status.is_redirection(), "{}", posted.body);
    let page = owner.get("/teams/acme/members").await;
    let third = deploy_key(app, "acme", &app.viewer()).await;
    let third_fingerprint = third["fingerprint"].as_str().unwrap();
    assert_ne!(third_fingerprint, new_fingerprint);
    assert!(
        page.body
            .contains(&format!("New deploy key {third_fingerprint}")),
        "the notice shows once"
    );
    assert!(page.body.contains(
        third["public_key"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
    ));
    needles.extend(
        app.deploy_key_needles("acme", third["public_key"].as_str().unwrap())
            .await,
    );
    // Deployers and viewers see the key, but no form to replace it.
    let mut viewer = app.signed_in(VIEWER).await;
    let seen = viewer.get("/teams/acme/members").await;
    assert!(seen.body.contains(third_fingerprint));
    assert!(!seen.body.contains("Generate a new key"));
    assert!(seen.body.contains("Only owners can replace the key."));

    // The audit trail: made by Berth for the first fetch, then replaced by the owner.
    let audit = app
        .call("GET", "/api/v1/teams/acme/audit", &app.owner_token(), None)
        .await
        .expect(200)
        .json();
    let events: Vec<(&str, &str, Option<&str>)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == "deploy_key")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["actor"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("deploy_key.rotate", "ok", Some(OWNER)),
            ("deploy_key.rotate", "ok", Some(OWNER)),
            ("deploy_key.create", "ok", None),
        ],
        "{audit}"
    );
    assert!(audit
        .to_string()
        .contains(&format!("new key {new_fingerprint} replaces {fingerprint}")));

    // (e) The private halves are in no API answer, page, server or runtime log, and (on
    // SQLite) not in the database file.
    for page in [page.body, seen.body, members.body] {
        for needle in &needles {
            assert!(
                !page.contains(needle.as_str()),
                "a page holds a private key"
            );
        }
    }
    let needle_refs: Vec<&str> = needles.iter().map(String::as_str).collect();
    app.assert_no_leaks(&needle_refs);
    needles
}

#[tokio::test]
async fn a_teams_deploy_key_reads_its_private_ssh_repository_on_sqlite() {
    let host = GitSshHost::start();
    let app = TestApp::sqlite()
        .with_team()
        .with_egress_allow(&host.authority())
        .start()
        .await;
    a_teams_deploy_key_reads_its_private_ssh_repository(&app, &host).await;
    // `assert_no_leaks` searched the database file and its write-ahead log: they hold the
    // keys' public halves, so the search looked where the keys are.
    let mut database = std::fs::read(app.dir.join("berth.db")).unwrap();
    database.extend(std::fs::read(app.dir.join("berth.db-wal")).unwrap_or_default());
    assert!(database.windows(11).any(|w| w == b"ssh-ed25519"));
    app.stop().await;
}

#[tokio::test]
async fn a_teams_deploy_key_reads_its_private_ssh_repository_on_postgres() {
    let host = GitSshHost::start();
    let app = TestApp::postgres()
        .with_team()
        .with_egress_allow(&host.authority())
        .start()
        .await;
    let needles = a_teams_deploy_key_reads_its_private_ssh_repository(&app, &host).await;
    let needle_refs: Vec<&str> = needles.iter().map(String::as_str).collect();
    let dump = app.assert_postgres_dump_free_of(&needle_refs).await;
    assert!(dump.contains("team_deploy_keys") && dump.contains("ssh-ed25519"));
}

/// Without a listed address the egress guard refuses the ssh host before anything connects:
/// loopback is Berth's own network.
#[tokio::test]
async fn an_ssh_repository_on_an_unlisted_address_is_refused_before_anything_connects() {
    let host = GitSshHost::start();
    let repo = source_repository();
    let url = host.serve_repository("web", repo.path());
    let app = TestApp::sqlite().with_team().start().await;
    app.create_app("web", "dockerfile", Some(serde_json::json!({ "url": url })))
        .await;
    let refused = refusal(
        fetch(&app, "acme", "web", &app.deployer()).await,
        "invalid",
        "git_url",
    );
    assert!(
        refused["message"].as_str().unwrap().contains("127.0.0.1"),
        "{refused}"
    );
    assert!(
        !host.log().contains("Connection from"),
        "nothing connected: {}",
        host.log()
    );
    app.stop().await;
}
