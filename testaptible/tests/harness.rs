//! The stand-in's own promises: it takes the grant in both encodings Aptible's clients use,
//! stand-ins are independent and stop when dropped, and the binary serves until its
//! parent goes.

use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};
use testaptible::TestAptible;

#[tokio::test]
async fn the_grant_is_taken_as_a_form_like_the_cli_sends_it() {
    let aptible = TestAptible::builder()
        .user("a@example.com", "pw")
        .start()
        .await;
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/tokens", aptible.auth_url()))
        .form(&[
            ("grant_type", "password"),
            ("username", "a@example.com"),
            ("password", "pw"),
            ("scope", "manage"),
            ("expires_in", "3600"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let token: Value = answer.json().await.unwrap();
    assert_eq!(token["_type"], "token");
    assert_eq!(token["expires_in"], 3600);
    assert!(token["access_token"].as_str().unwrap().split('.').count() == 3);

    let refused = http
        .post(format!("{}/tokens", aptible.auth_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(body["code"], 400);
}

#[tokio::test]
async fn stand_ins_are_independent_and_stop_when_dropped() {
    let one = TestAptible::builder().start().await;
    let two = TestAptible::builder().start().await;
    assert_ne!(one.api_url(), two.api_url());
    assert_ne!(one.api_url(), one.auth_url());
    let token = one.token_for("a@example.com");
    let http = reqwest::Client::new();
    let elsewhere = http
        .get(format!("{}/current_token", two.auth_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 401);
    assert!(two.requests().len() == 1 && one.requests().is_empty());

    let api = one.api_url();
    drop(one);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(http.get(format!("{api}/apps")).send().await.is_err());
}

#[test]
fn the_binary_prints_where_it_listens_and_stops_with_its_parent() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth-test-aptible"))
        .args([
            "--user",
            "ci@example.com:s3cret",
            "--app",
            "prod/web=git@host:prod/web.git",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start berth-test-aptible");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let printed: Value = serde_json::from_str(&line).expect("one JSON line");
    assert!(printed["api_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert!(printed["auth_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(printed["email"], "ci@example.com");
    assert_eq!(printed["apps"][0]["id"], 1001);
    assert_eq!(printed["apps"][0]["git_repo"], "git@host:prod/web.git");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/find/app?handle=web&environment=prod",
                printed["api_url"].as_str().unwrap()
            ))
            .bearer_auth(printed["token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    drop(child.stdin.take());
    let exited = child.wait().expect("it exits when stdin closes");
    assert!(exited.success(), "{exited}");
}
