//! Dockerfile deploys on the local engine, against real buildah and real private
//! registries: what a build promises (the release serves what the Dockerfile put in the
//! image, bases come from several private registries, the layer cache works) and where
//! registry credentials and build arg values must never show up.
//!
//! Run with `-- --test-threads=1`: the command-line checks look at every process on the
//! machine and should see only one build's.

use domain::{ImageReference, RegistryHost};
use platform::{
    engine::{BuildSpec, BuiltImage},
    registry::{BasicCredentials, Secret},
    AppRef, LocalEngine, LocalSettings, OperationLog, Platform, PlatformError, ReleaseSpec, Step,
};
use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU16, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};
use tempfile::TempDir;
use testregistry::TestRegistry;

const USER: &str = "builder";
/// Distinctive, so that finding it anywhere means it leaked.
const PASSWORD: &str = "base-pw-7d2c41e9";
const WRONG_PASSWORD: &str = "wrong-base-pw-3a9f0b66";
const CREDS: (&str, &str) = (USER, PASSWORD);
const APP: i64 = 52;
/// The private base every Dockerfile here starts from: the busybox test image, which
/// serves `/www` on `$PORT`. It has no `/bin/sh`, so `RUN` steps use the exec form.
const BASE_REPO: &str = "base/busybox";
const BASE_TAG: &str = "1";
const BASE_INDEX: &str = "the base image's own index";

/// An operation log that keeps everything it is told.
#[derive(Default)]
struct RecordedLog {
    steps: Mutex<Vec<Step>>,
    lines: Mutex<Vec<String>>,
}

impl OperationLog for RecordedLog {
    fn step(&self, step: Step) {
        self.steps.lock().unwrap().push(step);
    }
    fn line(&self, line: &str) {
        self.lines.lock().unwrap().push(line.to_owned());
    }
}

impl RecordedLog {
    fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap().clone()
    }
    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

struct Harness {
    registry: TestRegistry,
    dir: TempDir,
    engine: LocalEngine,
    /// Where the app's "checked-out" source is written.
    source: TempDir,
}

impl Harness {
    /// A registry holding the private base image, and an engine that trusts `registries`
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
        let engine = engine_on(dir.path(), &insecure).await;
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
            let path = self.source.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
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

/// Ports of their own, away from the other engine tests'; the same ones for an engine
/// directory opened again (a Berth restart keeps its releases' ports).
fn ports_for(dir: &Path) -> std::ops::RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    static RANGES: Mutex<Vec<(PathBuf, u16)>> = Mutex::new(Vec::new());
    let mut ranges = RANGES.lock().unwrap();
    let start = match ranges.iter().find(|(known, _)| known == dir) {
        Some((_, start)) => *start,
        None => {
            let start = 32400 + NEXT.fetch_add(1, Ordering::SeqCst) * 20;
            ranges.push((dir.to_owned(), start));
            start
        }
    };
    start..=start + 19
}

async fn engine_on(dir: &Path, insecure: &[RegistryHost]) -> LocalEngine {
    let mut settings = LocalSettings::new(dir);
    settings.ports = ports_for(dir);
    settings.insecure_registries = insecure.to_vec();
    settings.health_timeout = Duration::from_secs(30);
    LocalEngine::new(settings).await.expect("the engine starts")
}

fn app() -> AppRef {
    AppRef {
        id: APP,
        name: "team/web".into(),
    }
}

fn release(release_id: i64, image: ImageReference) -> ReleaseSpec {
    ReleaseSpec {
        app: app(),
        release_id,
        image,
        env: Vec::new(),
        health_path: None,
        preferred_port: None,
    }
}

/// `RUN ["/bin/busybox", "sh", "-c", script]`, the script's quotes escaped for JSON.
fn run(script: &str) -> String {
    format!(
        "RUN [\"/bin/busybox\", \"sh\", \"-c\", {}]",
        serde_json::to_string(script).unwrap()
    )
}

async fn get(url: &str) -> Result<String, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()?
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

fn assert_auth_dir_is_empty(engine: &LocalEngine) {
    let left: Vec<PathBuf> = fs::read_dir(engine.settings().auth_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(left.is_empty(), "auth files left behind: {left:?}");
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every process's command line, as any user of the machine can read it.
fn command_lines() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| fs::read(entry.path().join("cmdline")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .collect()
}

/// Samples every command line on the machine until finished: those that contained a
/// needle, and whether a `buildah build` was among them (proof that it looked in time).
struct CommandLineWatch {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(Vec<String>, bool)>,
}

impl CommandLineWatch {
    fn start(needles: &[&str]) -> CommandLineWatch {
        let needles: Vec<String> = needles.iter().map(|n| (*n).to_owned()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let (mut leaks, mut saw_build) = (Vec::new(), false);
            while !stopped.load(Ordering::SeqCst) {
                for line in command_lines() {
                    if needles.iter().any(|needle| line.contains(needle.as_str())) {
                        leaks.push(line.clone());
                    }
                    saw_build |= line.contains("buildah") && line.contains(" build ");
                }
                thread::sleep(Duration::from_millis(2));
            }
            (leaks, saw_build)
        });
        CommandLineWatch { stop, thread }
    }

    fn finish(self) -> (Vec<String>, bool) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
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
    assert!(built.digest.starts_with("sha256:"), "{built:?}");
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
        .deploy_built(release(1, built.pinned()), &deploy_log)
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
        .deploy_built(release(1, pinned.clone()), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));

    // A configure operation: the same image, started again without any registry.
    let log = RecordedLog::default();
    let restarted = harness
        .engine
        .restart(release(2, pinned.clone()), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let hello = format!("http://127.0.0.1:{}/hello.txt", restarted.port);
    assert_eq!(get(&hello).await.unwrap(), "built once\n");
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
    let engine = engine_on(dir.path(), std::slice::from_ref(&registry.host)).await;
    let back = engine
        .ensure_running(ReleaseSpec {
            preferred_port: Some(restarted.port),
            ..release(2, pinned)
        })
        .await
        .expect("the built release starts again from local storage");
    assert_eq!(back, restarted);
    assert_eq!(get(&hello).await.unwrap(), "built once\n");

    let unpinned = engine
        .deploy_built(release(3, built.image.clone()), &RecordedLog::default())
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
    let encoded = base64(&format!("{USER}:{WRONG_PASSWORD}"));

    let watch = CommandLineWatch::start(&[WRONG_PASSWORD, &encoded]);
    let (result, log) = harness.build(harness.spec(3, WRONG_PASSWORD)).await;
    let (leaks, saw_build) = watch.finish();

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
    assert!(saw_build, "the sampling saw no buildah build");
    assert!(
        leaks.is_empty(),
        "a secret was on a command line: {leaks:?}"
    );
    assert_eq!(log.steps(), [Step::Build]);
    assert!(
        !log.lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line == "never runs"),
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
    let (leaks, saw_build) = watch.finish();

    assert!(saw_build, "the sampling saw no buildah build");
    assert!(
        leaks.is_empty(),
        "a password was on a command line: {leaks:?}"
    );
    let text = log.text();
    for (host, user) in [(&harness.registry.host, USER), (&tools.host, TOOLS_USER)] {
        assert!(text.contains(&format!("{host} (as {user})")), "{text}");
    }
    for secret in [
        PASSWORD,
        TOOLS_PASSWORD,
        &base64(&format!("{TOOLS_USER}:{TOOLS_PASSWORD}")),
    ] {
        assert!(!text.contains(secret), "{text}");
    }

    let log = RecordedLog::default();
    let running = harness
        .engine
        .deploy_built(release(1, built.pinned()), &log)
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
    let (leaks, saw_build) = watch.finish();

    assert!(saw_build, "the sampling saw no buildah build");
    assert!(
        leaks.is_empty(),
        "a secret was on a command line: {leaks:?}"
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
        .deploy_built(release(1, built.pinned()), &log)
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
