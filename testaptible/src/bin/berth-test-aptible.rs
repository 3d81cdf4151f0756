//! Runs the Aptible stand-in for tests outside Rust (the browser tests): prints one JSON
//! line `{"api_url", "auth_url", "email", "password", "otp", "token", "apps": [{"id",
//! "environment", "handle", "git_repo"}]}` to stdout, and runs until stdin closes or it
//! gets SIGTERM or SIGINT.
//!
//!   berth-test-aptible [--user EMAIL:PASSWORD] [--otp CODE] [--app ENV/HANDLE[=GIT_REPO]]...
//!
//! Defaults: the user `owner@example.com` with a password made up for this run, no
//! one-time code, and the apps `staging/web` (id 1001) and `staging/worker` (id 1002),
//! without git remotes. Apps get ids from 1001 in the order given. `token` is a valid
//! token for the user, for connecting a team with a pasted token.

use serde_json::json;
use std::{
    io::Read,
    time::{SystemTime, UNIX_EPOCH},
};
use testaptible::TestAptible;
use tokio::signal::unix::{signal, SignalKind};

struct App {
    environment: String,
    handle: String,
    git_repo: Option<String>,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "berth-test-aptible: {problem}\nusage: berth-test-aptible [--user EMAIL:PASSWORD] \
         [--otp CODE] [--app ENV/HANDLE[=GIT_REPO]]..."
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut email = "owner@example.com".to_owned();
    let mut password = made_up_password();
    let mut otp = None;
    let mut apps = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--user" => match value.split_once(':') {
                Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                    email = user.to_owned();
                    password = pass.to_owned();
                }
                _ => usage("--user takes EMAIL:PASSWORD"),
            },
            "--otp" => otp = Some(value),
            "--app" => {
                let (names, git_repo) = match value.split_once('=') {
                    Some((names, repo)) => (names, Some(repo.to_owned())),
                    None => (value.as_str(), None),
                };
                let Some((environment, handle)) = names.split_once('/') else {
                    usage("--app takes ENV/HANDLE[=GIT_REPO]")
                };
                apps.push(App {
                    environment: environment.to_owned(),
                    handle: handle.to_owned(),
                    git_repo,
                });
            }
            other => usage(&format!("unknown option {other}")),
        }
    }
    if apps.is_empty() {
        for handle in ["web", "worker"] {
            apps.push(App {
                environment: "staging".into(),
                handle: handle.into(),
                git_repo: None,
            });
        }
    }

    // Listen for the signals before anything starts, so that none is missed.
    let mut term = signal(SignalKind::terminate()).expect("listen for SIGTERM");
    let mut int = signal(SignalKind::interrupt()).expect("listen for SIGINT");

    let mut builder = TestAptible::builder().user(&email, &password);
    if let Some(code) = &otp {
        builder = builder.otp(code);
    }
    let mut listed = Vec::new();
    for (index, app) in apps.iter().enumerate() {
        let id = 1001 + index as i64;
        builder = builder.app(&app.environment, &app.handle, id, app.git_repo.as_deref());
        listed.push(json!({
            "id": id,
            "environment": app.environment,
            "handle": app.handle,
            "git_repo": app.git_repo,
        }));
    }
    let aptible = builder.start().await;
    let line = json!({
        "api_url": aptible.api_url(),
        "auth_url": aptible.auth_url(),
        "email": email,
        "password": password,
        "otp": otp,
        "token": aptible.token_for(&email),
        "apps": listed,
    });
    println!("{line}");

    // Stdin is read on a thread of its own (a blocking read); its end is the parent going.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    tokio::select! {
        _ = closed_rx => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    drop(aptible);
}

/// Not a secret worth guarding (a stand-in on loopback), only unique to the run.
fn made_up_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("aptible-{:x}-{:x}", nanos, std::process::id())
}
