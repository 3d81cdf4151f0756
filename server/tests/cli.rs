//! The `berth` binary's administration commands and its start-up checks.

mod support;

use std::{
    path::Path,
    process::{Output, Stdio},
};
use support::{berth_command, output_of};

fn berth(data_dir: &Path, args: &[&str], stdin: &str, extra_env: &[(&str, &str)]) -> Output {
    let mut command = berth_command(data_dir);
    command.args(args).envs(extra_env.iter().copied());
    output_of(command, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn user_and_token_can_be_created_without_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let password = "a long enough password";
    let created = berth(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--team",
            "ops",
        ],
        &format!("{password}\n"),
        &[],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("owning team ops"));
    let all_output = format!("{}{}", text(&created.stdout), text(&created.stderr));
    assert!(
        !all_output.contains(password),
        "the password is never echoed"
    );

    let again = berth(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--team",
            "ops2",
        ],
        "another long password\n",
        &[],
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("--email"),
        "{}",
        text(&again.stderr)
    );

    let token = berth(
        dir.path(),
        &[
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "CI",
        ],
        "",
        &[],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout);
    assert!(token.trim().starts_with("berth_"), "{token}");

    let migrate = berth(dir.path(), &["migrate"], "", &[]);
    assert!(migrate.status.success());
}

#[test]
fn a_short_password_on_stdin_is_refused_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--team",
            "ops",
        ],
        "short\n",
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("at least 10 characters"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_settings_stop_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &["serve"], "", &[("BERTH_ADDR", "nowhere")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("BERTH_ADDR"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(
        dir.path(),
        &["migrate"],
        "",
        &[("BERTH_LISTEN", "127.0.0.1:1")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("BERTH_LISTEN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = berth_command(dir.path())
        .env("BERTH_ADDR", "127.0.0.1:0")
        .env("BERTH_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut events = Vec::new();
    for _ in 0..10 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let listening = event["message"] == "Berth is listening";
        events.push(event);
        if listening {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The router (Caddy) outlives Berth, as releases do: ended as an operator would.
    let mut stop = berth_command(dir.path());
    stop.arg("stop-releases");
    assert!(output_of(stop, "").status.success());
    let listening = events
        .iter()
        .find(|e| e["message"] == "Berth is listening")
        .expect("start-up is logged");
    assert_eq!(listening["level"], "INFO");
    // A first start generates the master key and says to back it up.
    assert!(events
        .iter()
        .any(|e| e["level"] == "WARN" && e["message"].as_str().unwrap().contains("master key")));
}

#[tokio::test]
async fn user_unlock_forgets_the_failed_sign_ins_of_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let created = berth(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--team",
            "acme",
        ],
        "a long enough password\n",
        &[],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let url = format!("sqlite://{}", dir.path().join("berth.db").display());
    let store = store::Store::connect(&url).await.unwrap();
    let limits = store::SignInLimits::default();
    for _ in 0..limits.per_account {
        store
            .record_sign_in("ada@example.com", "203.0.113.9", false)
            .await
            .unwrap();
    }
    let locked = store
        .check_sign_in_allowed("ada@example.com", "203.0.113.9", limits)
        .await
        .unwrap();
    assert!(locked.is_err(), "five failures lock that address out");

    let unlock = berth(
        dir.path(),
        &["user", "unlock", "--email", "Ada@Example.com"],
        "",
        &[],
    );
    assert!(unlock.status.success(), "{}", text(&unlock.stderr));
    assert!(
        text(&unlock.stdout).contains("forgot 5 failed sign-in(s)"),
        "{}",
        text(&unlock.stdout)
    );
    let allowed = store
        .check_sign_in_allowed("ada@example.com", "203.0.113.9", limits)
        .await
        .unwrap();
    assert!(allowed.is_ok());

    let bad = berth(
        dir.path(),
        &["user", "unlock", "--email", "nobody"],
        "",
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--email"),
        "{}",
        text(&bad.stderr)
    );
}
