//! Dockerfile deploys on the local engine, against real buildah and real private
//! registries: what a build promises (the release serves what the Dockerfile put in the
//! image, bases come from several private registries, the layer cache works) and where
//! registry credentials and build arg values must never show up.
//!
//! Run with `-- --test-threads=1`: the command-line checks look at every process on the
//! machine and should see only one build's.

mod support;

use domain::RegistryHost;
use platform::{
    engine::{BuildSpec, BuiltImage},
    registry::{BasicCredentials, Secret},
    AppRef, LocalEngine, LocalSettings, Platform, PlatformError, Step,
};
use std::fs;
use support::*;
use tempfile::TempDir;
use testregistry::TestRegistry;

const USER: &str = "builder";
/// Distinctive, so that finding it anywhere means it leaked.
const PASSWORD: &str = "base-pw-7d2c41e9";
const WRONG_PASSWORD: &str = "wrong-base-pw-3a9f0b66";
const CREDS: (&str, &str) = (USER, PASSWORD);
const APP: i64 = 52;
/// Where this file's engines' port ranges start, away from the other engine tests'.
const PORTS_FROM: u16 = 32400;
/// The private base every Dockerfile here starts from: the busybox test image, which
/// serves `/www` on `$PORT`. It has no `/bin/sh`, so `RUN` steps use the exec form.
const BASE_REPO: &str = "base/busybox";
const BASE_TAG: &str = "1";
const BASE_INDEX: &str = "the base image's own index";

struct Harness {
    registry: TestRegistry,
    dir: TempDir,
    engine: LocalEngine,
    /// Where the app's "checked-out" source is written.
    source: TempDir,
}

impl Harness {
    /// A registry holding the private base image, and an engine that trusts `others`
    /// (besides it) over plain HTTP.
    async fn start_with(others: &[&TestRegistry]) -> Harness {
        let registry = TestRegistry::start_htpasswd(&[CREDS]).await;
        registry
            .push_serving_image(BASE_REPO, BASE_TAG, CREDS, BASE_INDEX)
            .await;
        let dir = tempfile::Builder::new()
            .prefix("berth-build-test-")
            .tempdir()
            .unwrap();
        let mut insecure = vec![registry.host.clone()];
        insecure.extend(others.iter().map(|other| other.host.clone()));
        let engine = engine_on(dir.path(), PORTS_FROM, &insecure).await;
        Harness {
            registry,
            dir,
            engine,
            source: tempfile::tempdir().unwrap(),
        }
    }

    async fn start() -> Harness {
        Self::start_with(&[]).await
    }

    /// `host/base/busybox:1`.
    fn base(&self) -> String {
        format!("{}/{BASE_REPO}:{BASE_TAG}", self.registry.host)
    }

    fn write_source(&self, files: &[(&str, &str)]) {
        for (path, contents) in files {
            write_file(self.source.path(), path, contents);
        }
    }

    fn spec(&self, operation_id: i64, password: &str) -> BuildSpec {
        BuildSpec {
            app: app(),
            operation_id,
            source_dir: self.source.path().to_owned(),
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            build_args: Vec::new(),
            registry_credentials: vec![(
                self.registry.host.clone(),
                BasicCredentials::new(USER, password),
            )],
        }
    }

    async fn build(&self, spec: BuildSpec) -> (Result<BuiltImage, PlatformError>, RecordedLog) {
        let log = RecordedLog::default();
        let result = self.engine.build(spec, &log).await;
        assert_auth_dir_is_empty(&self.engine);
        (result, log)
    }

    async fn build_ok(&self, spec: BuildSpec) -> (BuiltImage, RecordedLog) {
        let (result, log) = self.build(spec).await;
        let built = result.unwrap_or_else(|e| panic!("the build failed: {e}\n{}", log.text()));
        (built, log)
    }
}

/// The app every build and release here belongs to.
fn app() -> AppRef {
    app_ref(APP, "team/web")
}

/// `RUN ["/bin/busybox", "sh", "-c", script]`, the script's quotes escaped for JSON.
fn run(script: &str) -> String {
    format!(
        "RUN [\"/bin/busybox\", \"sh\", \"-c\", {}]",
        serde_json::to_string(script).unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_on_a_private_base_builds_and_its_release_serves_the_copied_file() {
    let harness = Harness::start().await;
    harness.write_source(&[
        (
            "Dockerfile",
            &format!(
                "FROM {}\nCOPY hello.txt /www/hello.txt\n{}\n",
                harness.base(),
                run("echo ran at build time > /www/ran.txt")
            ),
        ),
        ("hello.txt", "hello from the repository\n"),
    ]);

    let (built, log) = harness.build_ok(harness.spec(7, PASSWORD)).await;

    assert_eq!(
        built.image.to_string(),
        format!("localhost/berth/app-{APP}:op-7")
    );
    assert!(built.digest.as_str().starts_with("sha256:"), "{built:?}");
    assert_eq!(built.image_id.len(), 64, "{built:?}");
    assert_eq!(log.steps(), [Step::Build]);
    let text = log.text();
    assert!(
        text.contains(&format!("STEP 1/3: FROM {}", harness.base())),
        "{text}"
    );
    assert!(
        text.contains("COMMIT localhost/berth/app-52:op-7"),
        "{text}"
    );
    assert!(text.contains(&format!("({})", built.digest)), "{text}");

    let deploy_log = RecordedLog::default();
    let running = harness
        .engine
        .deploy_built(release(app(), 1, built.pinned(), &[]), &deploy_log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", deploy_log.text()));
    assert_eq!(
        deploy_log.steps(),
        [Step::Start, Step::HealthCheck, Step::Switch]
    );
    let hello = format!("http://127.0.0.1:{}/hello.txt", running.port);
    assert_eq!(get(&hello).await.unwrap(), "hello from the repository\n");
    let ran = format!("http://127.0.0.1:{}/ran.txt", running.port);
    assert_eq!(get(&ran).await.unwrap(), "ran at build time\n");
    assert_eq!(get(&running.url).await.unwrap(), BASE_INDEX);
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_release_restarts_from_local_storage_also_after_berth_restarts() {
    let harness = Harness::start().await;
    harness.write_source(&[
        (
            "Dockerfile",
            &format!("FROM {}\nCOPY hello.txt /www/hello.txt\n", harness.base()),
        ),
        ("hello.txt", "built once\n"),
    ]);
    let (built, _) = harness.build_ok(harness.spec(1, PASSWORD)).await;
    let pinned = built.pinned();
    assert_eq!(
        pinned.to_string(),
        format!("localhost/berth/app-{APP}:op-1@{}", built.digest)
    );
    let log = RecordedLog::default();
    let first = harness
        .engine
        .deploy_built(release(app(), 1, pinned.clone(), &[]), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));

    // A configure operation: the same image, started again without any registry.
    let log = RecordedLog::default();
    let restarted = harness
        .engine
        .restart(release(app(), 2, pinned.clone(), &[]), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let hello = format!("http://127.0.0.1:{}/hello.txt", restarted.port);
    assert_eq!(get(&hello).await.unwrap(), "built once\n");
    harness.engine.settle(APP).await;
    assert!(get(&first.url).await.is_err(), "the first release stopped");

    // Berth restarts: the release comes back from the engine's storage.
    harness.engine.shutdown().await;
    let Harness {
        registry,
        dir,
        engine,
        source,
    } = harness;
    drop(engine);
    let engine = engine_on(dir.path(), PORTS_FROM, std::slice::from_ref(&registry.host)).await;
    let back = engine
        .ensure_running(release(app(), 2, pinned, &[]).on_port(Some(restarted.port)))
        .await
        .expect("the built release starts again from local storage");
    assert_eq!(back, restarted);
    assert_eq!(get(&hello).await.unwrap(), "built once\n");

    let unpinned = engine
        .deploy_built(
            release(app(), 3, built.image.clone(), &[]),
            &RecordedLog::default(),
        )
        .await
        .expect_err("a built image is deployed by digest");
    assert!(
        matches!(&unpinned, PlatformError::Start(m) if m.contains("not pinned")),
        "{unpinned:?}"
    );
    engine.shutdown().await;
    drop(source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_base_image_credentials_fail_the_build_naming_the_image_and_showing_no_secret() {
    let harness = Harness::start().await;
    harness.write_source(&[(
        "Dockerfile",
        &format!("FROM {}\n{}\n", harness.base(), run("echo never runs")),
    )]);
    let encoded = basic_auth(USER, WRONG_PASSWORD);

    let watch = CommandLineWatch::start(&[WRONG_PASSWORD, &encoded]);
    let (result, log) = harness.build(harness.spec(3, WRONG_PASSWORD)).await;
    let watched = watch.finish();

    let error = result.expect_err("the registry refuses a wrong password");
    let PlatformError::Build(message) = &error else {
        panic!("expected a build failure, got {error:?}");
    };
    assert!(message.contains(&harness.base()), "{message}");
    assert!(message.contains("refused the credentials"), "{message}");
    let everything = format!("{error}\n{error:?}\n{}", log.text());
    for secret in [WRONG_PASSWORD, encoded.as_str(), &base64(WRONG_PASSWORD)] {
        assert!(!everything.contains(secret), "{everything}");
    }
    assert!(
        watched.saw(&["buildah", " build "]),
        "the sampling saw no buildah build"
    );
    assert!(
        watched.leaks.is_empty(),
        "a secret was on a command line: {:?}",
        watched.leaks
    );
    assert_eq!(log.steps(), [Step::Build]);
    assert!(
        !log.lines().iter().any(|line| line == "never runs"),
        "{}",
        log.text()
    );
    assert_eq!(harness.engine.running(APP).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_build_pulls_bases_from_two_registries_with_different_users() {
    const TOOLS_USER: &str = "tools-reader";
    const TOOLS_PASSWORD: &str = "tools-pw-61b0c2aa";
    let tools = TestRegistry::start_htpasswd(&[(TOOLS_USER, TOOLS_PASSWORD)]).await;
    tools
        .push_serving_image("tools/busybox", "2", (TOOLS_USER, TOOLS_PASSWORD), "tools")
        .await;
    let harness = Harness::start_with(&[&tools]).await;
    harness.write_source(&[(
        "Dockerfile",
        &format!(
            "FROM {tools}/tools/busybox:2 AS tools\n\
             {stage_one}\n\
             FROM {base}\n\
             COPY --from=tools /made-by-stage-one.txt /www/tool.txt\n",
            tools = tools.host,
            stage_one = run("echo made in the tools stage > /made-by-stage-one.txt"),
            base = harness.base(),
        ),
    )]);
    let mut spec = harness.spec(4, PASSWORD);
    spec.registry_credentials.push((
        tools.host.clone(),
        BasicCredentials::new(TOOLS_USER, TOOLS_PASSWORD),
    ));

    let watch = CommandLineWatch::start(&[PASSWORD, TOOLS_PASSWORD]);
    let (built, log) = harness.build_ok(spec).await;
    let watched = watch.finish();

    assert!(
        watched.saw(&["buildah", " build "]),
        "the sampling saw no buildah build"
    );
    assert!(
        watched.leaks.is_empty(),
        "a password was on a command line: {:?}",
        watched.leaks
    );
    let text = log.text();
    for (host, user) in [(&harness.registry.host, USER), (&tools.host, TOOLS_USER)] {
        assert!(text.contains(&format!("{host} (as {user})")), "{text}");
    }
    for secret in [
        PASSWORD,
        TOOLS_PASSWORD,
        &basic_auth(TOOLS_USER, TOOLS_PASSWORD),
    ] {
        assert!(!text.contains(secret), "{text}");
    }

    let log = RecordedLog::default();
    let running = harness
        .engine
        .deploy_built(release(app(), 1, built.pinned(), &[]), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let tool = format!("http://127.0.0.1:{}/tool.txt", running.port);
    assert_eq!(get(&tool).await.unwrap(), "made in the tools stage\n");
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_build_arg_reaches_the_build_but_no_command_line_or_log() {
    let harness = Harness::start().await;
    // A value a shell or buildah might mangle: `$`, quotes, spaces.
    let token = "tok $HOME \"q\" 9c1d-build-secret";
    harness.write_source(&[(
        "Dockerfile",
        &format!(
            "FROM {}\nARG API_TOKEN\nARG EMPTY\n{}\n",
            harness.base(),
            run("echo \"token is $API_TOKEN, empty is [$EMPTY]\"; \
                 echo \"$API_TOKEN\" > /www/token.txt")
        ),
    )]);
    let mut spec = harness.spec(5, PASSWORD);
    spec.build_args = vec![
        ("API_TOKEN".into(), Secret::new(token)),
        ("EMPTY".into(), Secret::new("")),
    ];

    let watch = CommandLineWatch::start(&[token, "9c1d-build-secret", PASSWORD]);
    let (built, log) = harness.build_ok(spec).await;
    let watched = watch.finish();

    assert!(
        watched.saw(&["buildah", " build "]),
        "the sampling saw no buildah build"
    );
    assert!(
        watched.leaks.is_empty(),
        "a secret was on a command line: {:?}",
        watched.leaks
    );
    let text = log.text();
    assert!(
        text.contains("token is [redacted], empty is []"),
        "the RUN step's echo is in the log, redacted:\n{text}"
    );
    assert!(!text.contains("9c1d-build-secret"), "{text}");

    let log = RecordedLog::default();
    let running = harness
        .engine
        .deploy_built(release(app(), 1, built.pinned(), &[]), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let url = format!("http://127.0.0.1:{}/token.txt", running.port);
    assert_eq!(
        get(&url).await.unwrap(),
        format!("{token}\n"),
        "the value reached the build verbatim"
    );
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_args_named_like_the_builders_own_settings_are_refused() {
    let harness = Harness::start().await;
    harness.write_source(&[("Dockerfile", &format!("FROM {}\n", harness.base()))]);
    for name in ["LD_PRELOAD", "https_proxy", "CONTAINERS_REGISTRIES_CONF"] {
        let mut spec = harness.spec(6, PASSWORD);
        spec.build_args = vec![(name.into(), Secret::new("/tmp/evil.so"))];
        let (result, log) = harness.build(spec).await;
        let error = result.expect_err("refused");
        assert!(
            matches!(&error, PlatformError::Build(m) if m.contains(name)),
            "{error:?}"
        );
        assert!(!log.text().contains("STEP"), "nothing was built");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_outside_the_source_is_refused() {
    let harness = Harness::start().await;
    harness.write_source(&[("Dockerfile", &format!("FROM {}\n", harness.base()))]);
    std::os::unix::fs::symlink("/etc/passwd", harness.source.path().join("Linked")).unwrap();
    for dockerfile in ["../Dockerfile", "/etc/passwd", "Linked", "Missing"] {
        let mut spec = harness.spec(8, PASSWORD);
        spec.dockerfile = dockerfile.into();
        let (result, _) = harness.build(spec).await;
        assert!(
            matches!(result, Err(PlatformError::Build(_))),
            "{dockerfile}: {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_build_of_the_same_dockerfile_reuses_cached_layers() {
    let harness = Harness::start().await;
    harness.write_source(&[
        (
            "app/Dockerfile",
            &format!(
                "FROM {}\nCOPY hello.txt /www/hello.txt\n{}\n",
                harness.base(),
                run("echo slow step > /www/slow.txt")
            ),
        ),
        ("app/hello.txt", "cached\n"),
    ]);
    let spec = |operation_id| BuildSpec {
        context: "app".into(),
        dockerfile: "app/Dockerfile".into(),
        ..harness.spec(operation_id, PASSWORD)
    };

    let (first, first_log) = harness.build_ok(spec(10)).await;
    let (second, second_log) = harness.build_ok(spec(11)).await;

    assert!(
        !first_log.text().contains("Using cache"),
        "{}",
        first_log.text()
    );
    let text = second_log.text();
    assert_eq!(
        text.matches("Using cache").count(),
        2,
        "COPY and RUN come from the cache:\n{text}"
    );
    assert_eq!(second.image.to_string(), "localhost/berth/app-52:op-11");
    assert_eq!(
        second.image_id, first.image_id,
        "the same layers, the same image"
    );
    assert_eq!(second.digest, first.digest);
}

#[tokio::test]
async fn without_buildah_a_build_says_why_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    fs::write(source.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let mut settings = LocalSettings::new(dir.path());
    settings.buildah = "/nonexistent/buildah".into();
    let engine = LocalEngine::new(settings).await.unwrap();

    let spec = BuildSpec {
        app: app(),
        operation_id: 1,
        source_dir: source.path().to_owned(),
        context: ".".into(),
        dockerfile: "Dockerfile".into(),
        build_args: Vec::new(),
        registry_credentials: vec![(
            RegistryHost::parse("registry.example.com").unwrap(),
            BasicCredentials::new(USER, PASSWORD),
        )],
    };
    let error = engine
        .build(spec, &RecordedLog::default())
        .await
        .expect_err("no buildah");
    assert!(
        matches!(&error, PlatformError::Unavailable(m) if m.contains("buildah is not installed")),
        "{error:?}"
    );
    assert_auth_dir_is_empty(&engine);
}

/// A build's step images have no name until the build tags its last one, so another app
/// of the team (same storage) pruning meanwhile, with a `keep` that names nothing, is
/// postponed until the build is done; the build ends with its image, which a prune with
/// nothing under way then removes (nothing keeps it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_apps_prune_waits_for_a_build_of_the_team_to_end() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let harness = Harness::start().await;
    harness.write_source(&[
        (
            "Dockerfile",
            &format!(
                "FROM {}\nCOPY hello.txt /www/hello.txt\n{}\n{}\n",
                harness.base(),
                run("sleep 2; echo first > /www/first.txt"),
                run("sleep 1; echo second > /www/second.txt"),
            ),
        ),
        ("hello.txt", "built\n"),
    ]);
    let other = app_in_team_of(&app(), APP + 1, "team/other");

    let building = AtomicBool::new(true);
    let build = async {
        let built = harness.build_ok(harness.spec(20, PASSWORD)).await;
        building.store(false, SeqCst);
        built
    };
    let prunes = async {
        let mut reports = Vec::new();
        while building.load(SeqCst) {
            reports.push(harness.engine.prune(&other, Vec::new()).await.unwrap());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        reports
    };
    let ((built, log), reports) = tokio::join!(build, prunes);
    assert!(
        reports.iter().any(|report| report.postponed),
        "no prune was postponed during a 3-second build: {reports:?}\n{}",
        log.text()
    );
    assert!(harness
        .engine
        .has_image(&app(), &built.image)
        .await
        .unwrap());

    let report = harness.engine.prune(&other, Vec::new()).await.unwrap();
    assert!(!report.postponed, "{report:?}");
    assert!(
        report.removed.contains(&built.image.to_string()),
        "{report:?}"
    );
    assert!(!harness
        .engine
        .has_image(&app(), &built.image)
        .await
        .unwrap());
}
