//! Dockerfile deploys end to end: real git repositories (two branches), a Dockerfile whose
//! `FROM` is a private image in a real registry, pulled with the app's
//! `APTIBLE_PRIVATE_REGISTRY_*` configuration or a team credential, real buildah builds,
//! and the built image run and health-checked like any release.

mod support;

use domain::Role;
use serde_json::{json, Value};
use std::{path::Path, process::Command, time::Duration};
use support::*;
use testregistry::TestRegistry;

const BASE_PASSWORD: &str = "base-pull-pass-2f81c9";
const ROTATED_PASSWORD: &str = "base-pull-pass-rotated-77d0aa";
const TOOLS_PASSWORD: &str = "tools-pull-pass-9ce41b";

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Tests",
            "-c",
            "user.email=tests@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A Dockerfile that copies `hello.txt` into the served directory, runs a command, and
/// dumps the release's environment (to prove what reaches it) before serving.
fn dockerfile(base: &str) -> String {
    format!(
        "# Built by Berth's tests\n\
         ARG BASE={base}\n\
         FROM $BASE\n\
         COPY hello.txt /www/hello.txt\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built-by-run > /www/run.txt\"]\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox env > /www/envdump.txt; exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www\"]\n"
    )
}

struct World {
    app: TestApp,
    registry: TestRegistry,
    repo: tempfile::TempDir,
    token: String,
}

impl World {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> TestResponse {
        self.app.api(method, path, Some(&self.token), body).await
    }

    async fn wait(&self, id: i64) -> Value {
        for _ in 0..900 {
            let op = self
                .call("GET", &format!("/api/v1/operations/{id}"), None)
                .await
                .json()["operation"]
                .clone();
            if ["succeeded", "failed", "cancelled"].contains(&op["status"].as_str().unwrap()) {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("operation {id} did not finish");
    }

    async fn log(&self, id: i64) -> String {
        self.call("GET", &format!("/api/v1/operations/{id}/log"), None)
            .await
            .body
    }

    async fn succeeded(&self, op: &Value) {
        assert_eq!(
            op["status"],
            "succeeded",
            "{op}\n{}",
            self.log(op["id"].as_i64().unwrap()).await
        );
    }

    async fn deploy(&self, body: Value) -> TestResponse {
        self.call("POST", "/api/v1/teams/acme/apps/web/deploys", Some(body))
            .await
    }

    async fn deploy_and_wait(&self, body: Value) -> Value {
        let queued = self.deploy(body).await;
        assert_eq!(queued.status.as_u16(), 202, "{}", queued.body);
        self.wait(queued.json()["operation"]["id"].as_i64().unwrap())
            .await
    }

    async fn url(&self) -> String {
        let app = self
            .call("GET", "/api/v1/teams/acme/apps/web", None)
            .await
            .json();
        app["app"]["release"]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no URL: {app}"))
            .to_owned()
    }

    async fn configure(&self, env: Value) -> Value {
        let response = self
            .call(
                "PATCH",
                "/api/v1/teams/acme/apps/web/config",
                Some(json!({ "env": env })),
            )
            .await;
        assert_eq!(response.status.as_u16(), 202, "{}", response.body);
        self.wait(response.json()["operation"]["id"].as_i64().unwrap())
            .await
    }
}

async fn served(url: &str) -> String {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn world() -> World {
    let registry = TestRegistry::start_htpasswd(&[("builder", BASE_PASSWORD)]).await;
    registry
        .push_serving_image("base/busybox", "1", ("builder", BASE_PASSWORD), "base")
        .await;
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile(&format!("{}/base/busybox:1", registry.host)),
    )
    .unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from main\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "First version"]);
    git(dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("hello.txt"), "hello from feature\n").unwrap();
    git(dir, &["commit", "-q", "-am", "Feature greeting"]);
    git(dir, &["checkout", "-q", "main"]);

    let app = TestApp::spawn_with_registries(vec![registry.host.clone()]).await;
    let owner = app.owner("owner@example.com", "acme").await;
    let token = app.token_for(owner).await;
    let w = World {
        app,
        registry,
        repo,
        token,
    };
    let created = w
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            Some(json!({
                "handle": "web", "method": "dockerfile",
                "git": { "url": w.repo.path().display().to_string() },
            })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    assert_eq!(created.json()["app"]["git"]["dockerfile"], "Dockerfile");
    w
}

#[tokio::test]
async fn a_branch_builds_from_a_private_base_with_the_configuration_credentials() {
    let w = world().await;
    let main = git(w.repo.path(), &["rev-parse", "main"]);

    // Without credentials the private base cannot be pulled: refused before building.
    let refused = w.deploy(json!({ "git_ref": "main" })).await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.body);
    let error = &refused.json()["error"];
    assert_eq!(error["kind"], "verification_failed");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("base/busybox:1"),
        "{error}"
    );
    assert!(
        w.call("GET", "/api/v1/teams/acme/apps/web/operations", None)
            .await
            .json()["operations"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was queued"
    );

    // The page's preview says the same before anything is queued.
    let bases = w
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/bases?git_ref=main",
            None,
        )
        .await
        .json();
    assert_eq!(bases["commit"], main.as_str());
    assert_eq!(bases["bases"][0]["ok"], false, "{bases}");
    assert_eq!(bases["bases"][0]["credential"], "none");
    assert_eq!(bases["bases"][0]["line"], 3);

    // The credentials as configuration variables (stored; the app has no release yet).
    let configured = w
        .configure(json!({
            "APTIBLE_PRIVATE_REGISTRY_USERNAME": "builder",
            "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD,
            "GREETING": "runtime value",
        }))
        .await;
    w.succeeded(&configured).await;
    let bases = w
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/bases?git_ref=main",
            None,
        )
        .await
        .json();
    assert_eq!(bases["bases"][0]["ok"], true, "{bases}");
    assert_eq!(bases["bases"][0]["credential"], "configuration");
    assert!(!bases.to_string().contains(BASE_PASSWORD));
    // The app page shows the same check, on request, before a deploy.
    let page = w
        .app
        .signed_in("owner@example.com")
        .await
        .get("/teams/acme/apps/web?check=main")
        .await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.body.contains("can be pulled"),
        "the page shows the base image check"
    );
    assert!(page
        .body
        .contains("APTIBLE_PRIVATE_REGISTRY_* configuration"));
    assert!(!page.body.contains(BASE_PASSWORD));
    let deployed = w.deploy_and_wait(json!({ "git_ref": "main" })).await;
    w.succeeded(&deployed).await;
    assert_eq!(deployed["commit"], main.as_str());
    assert_eq!(deployed["git_ref"], "main");
    assert!(
        deployed["digest"].as_str().unwrap().starts_with("sha256:"),
        "{deployed}"
    );
    let log = w.log(deployed["id"].as_i64().unwrap()).await;
    assert!(log.contains("Build"), "{log}");
    assert!(log.contains("credentials from configuration"), "{log}");
    let url = w.url().await;
    assert_eq!(
        served(&format!("{url}hello.txt")).await.trim(),
        "hello from main"
    );
    assert_eq!(
        served(&format!("{url}run.txt")).await.trim(),
        "built-by-run"
    );
    let env = served(&format!("{url}envdump.txt")).await;
    assert!(env.contains("GREETING=runtime value"), "{env}");
    assert!(
        !env.contains("APTIBLE_PRIVATE_REGISTRY"),
        "build-time credentials reached the release: {env}"
    );

    // A new commit on feature is present but not deployed.
    git(w.repo.path(), &["checkout", "-q", "feature"]);
    std::fs::write(
        w.repo.path().join("hello.txt"),
        "hello again from feature\n",
    )
    .unwrap();
    git(w.repo.path(), &["commit", "-q", "-am", "Newer feature"]);
    git(w.repo.path(), &["checkout", "-q", "main"]);
    let feature = git(w.repo.path(), &["rev-parse", "feature"]);
    let refs = w
        .call("GET", "/api/v1/teams/acme/apps/web/refs?fetch=true", None)
        .await
        .json();
    let by_name = |name: &str| {
        refs["refs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{refs}"))
    };
    assert_eq!(by_name("feature")["commit"], feature.as_str());
    assert_eq!(by_name("feature")["deployed"], false);
    assert_eq!(by_name("feature")["subject"], "Newer feature");
    assert_eq!(by_name("main")["deployed"], true);

    // The registry password rotates; deploy feature with the new password in the same
    // operation: one operation, one build, the new configuration stored.
    w.registry.set_password("builder", ROTATED_PASSWORD);
    let stale = w.deploy(json!({ "git_ref": "feature" })).await;
    assert_eq!(stale.status.as_u16(), 422, "{}", stale.body);
    assert_eq!(stale.json()["error"]["reason"], "wrong_credentials");
    let before = w
        .call("GET", "/api/v1/teams/acme/apps/web/operations", None)
        .await
        .json()["operations"]
        .as_array()
        .unwrap()
        .len();
    let synced = w
        .deploy_and_wait(json!({ "git_ref": "feature", "env": { "APTIBLE_PRIVATE_REGISTRY_PASSWORD": ROTATED_PASSWORD } }))
        .await;
    w.succeeded(&synced).await;
    assert_eq!(synced["commit"], feature.as_str());
    assert_eq!(synced["credential_source"], "given");
    let after = w
        .call("GET", "/api/v1/teams/acme/apps/web/operations", None)
        .await
        .json()["operations"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before + 1, "one operation");
    assert_eq!(
        served(&format!("{}hello.txt", w.url().await)).await.trim(),
        "hello again from feature"
    );
    let config = w
        .call("GET", "/api/v1/teams/acme/apps/web/config", None)
        .await
        .json();
    let password = config["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "APTIBLE_PRIVATE_REGISTRY_PASSWORD")
        .unwrap()
        .clone();
    assert!(password["value"].is_null(), "write-only: {config}");

    // The two-step path: configuration first (restarts the running release), then deploy.
    w.registry.set_password("builder", BASE_PASSWORD);
    let configured = w
        .configure(json!({ "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD }))
        .await;
    w.succeeded(&configured).await;
    let redeployed = w.deploy_and_wait(json!({ "git_ref": "main" })).await;
    w.succeeded(&redeployed).await;
    let history = w
        .call(
            "GET",
            "/api/v1/teams/acme/apps/web/operations?limit=2",
            None,
        )
        .await
        .json();
    let kinds: Vec<&str> = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["deploy", "configure"],
        "the extra restart is visible in history"
    );

    // No secret in any log, response or the database.
    let logs: String = {
        let mut all = String::new();
        for op in [
            deployed["id"].as_i64().unwrap(),
            synced["id"].as_i64().unwrap(),
            redeployed["id"].as_i64().unwrap(),
        ] {
            all.push_str(&w.log(op).await);
        }
        all
    };
    let database = std::fs::read(w.app.dir.join("berth.db")).unwrap();
    for secret in [BASE_PASSWORD, ROTATED_PASSWORD] {
        assert!(!logs.contains(secret), "a build log holds a secret");
        assert!(!database
            .windows(secret.len())
            .any(|win| win == secret.as_bytes()));
    }
    w.app.stop().await;
}

#[tokio::test]
async fn a_build_pulls_bases_from_two_registries_with_a_team_credential_for_the_second() {
    let w = world().await;
    let tools = TestRegistry::start_htpasswd(&[("tools-bot", TOOLS_PASSWORD)]).await;
    tools
        .push_serving_image("tools/busybox", "2", ("tools-bot", TOOLS_PASSWORD), "tools")
        .await;
    // The app's server must reach the second registry over plain HTTP too.
    let app =
        TestApp::spawn_with_registries(vec![w.registry.host.clone(), tools.host.clone()]).await;
    let owner = app.owner("owner@example.com", "acme").await;
    let token = app.token_for(owner).await;
    let w = World {
        app,
        registry: w.registry,
        repo: w.repo,
        token,
    };
    let dir = w.repo.path();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {}/tools/busybox:2 AS tools\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo from-tools > /tools.txt\"]\n\
             FROM {}/base/busybox:1\n\
             COPY --from=tools /tools.txt /www/tools.txt\n\
             COPY hello.txt /www/hello.txt\n",
            tools.host, w.registry.host
        ),
    )
    .unwrap();
    git(dir, &["commit", "-q", "-am", "Two registries"]);
    let created = w
        .call(
            "POST",
            "/api/v1/teams/acme/apps",
            Some(json!({ "handle": "web", "method": "dockerfile", "git": { "url": format!("file://{}", dir.display()) } })),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let credential = w
        .call(
            "POST",
            "/api/v1/teams/acme/credentials",
            Some(json!({ "name": "tools", "registry": tools.host.as_str(), "kind": "basic", "username": "tools-bot", "secret": TOOLS_PASSWORD })),
        )
        .await;
    assert_eq!(credential.status.as_u16(), 201, "{}", credential.body);
    let configured = w
        .configure(json!({ "APTIBLE_PRIVATE_REGISTRY_USERNAME": "builder", "APTIBLE_PRIVATE_REGISTRY_PASSWORD": BASE_PASSWORD, "APTIBLE_PRIVATE_REGISTRY_HOST": w.registry.host.as_str() }))
        .await;
    w.succeeded(&configured).await;
    let deployed = w.deploy_and_wait(json!({ "git_ref": "main" })).await;
    w.succeeded(&deployed).await;
    let log = w.log(deployed["id"].as_i64().unwrap()).await;
    assert!(log.contains("credentials from team:tools"), "{log}");
    assert!(log.contains("credentials from configuration"), "{log}");
    assert_eq!(
        served(&format!("{}tools.txt", w.url().await)).await.trim(),
        "from-tools"
    );
    for secret in [BASE_PASSWORD, TOOLS_PASSWORD] {
        assert!(!log.contains(secret));
    }
    w.app.stop().await;
}

#[tokio::test]
async fn dockerfile_apps_and_ref_deploys_are_validated() {
    let w = world().await;
    for (body, field) in [
        (json!({ "handle": "x", "method": "dockerfile" }), "git_url"),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "ext::sh -c evil" } }),
            "git_url",
        ),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "https://user:pw@example.com/r.git" } }),
            "git_url",
        ),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "https://example.com/r.git", "dockerfile": "../etc/passwd" } }),
            "dockerfile",
        ),
        (
            json!({ "handle": "x", "method": "dockerfile", "git": { "url": "https://example.com/r.git", "username": "u" } }),
            "git_password",
        ),
    ] {
        let response = w
            .call("POST", "/api/v1/teams/acme/apps", Some(body.clone()))
            .await;
        assert_eq!(response.status.as_u16(), 422, "{body}: {}", response.body);
        assert_eq!(
            response.json()["error"]["field"],
            field,
            "{body}: {}",
            response.body
        );
    }
    for git_ref in ["", "-bad", "no-such-branch"] {
        let response = w.deploy(json!({ "git_ref": git_ref })).await;
        assert_eq!(
            response.status.as_u16(),
            422,
            "{git_ref}: {}",
            response.body
        );
        assert_eq!(
            response.json()["error"]["field"],
            "git_ref",
            "{git_ref}: {}",
            response.body
        );
    }
    let member = w
        .app
        .member("viewer@example.com", "acme", Role::Viewer)
        .await;
    let viewer = w.app.token_for(member).await;
    let refused = w
        .app
        .api(
            "POST",
            "/api/v1/teams/acme/apps/web/deploys",
            Some(&viewer),
            Some(json!({ "git_ref": "main" })),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403);
    w.app.stop().await;
}
