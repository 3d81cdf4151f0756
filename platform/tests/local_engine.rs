//! The local engine against real buildah and a real private registry: what a deploy, a
//! restart and a Berth restart promise, and where credentials and config values must never
//! show up. Each test has its own registry and its own engine directory.
//!
//! They also pass in parallel; `-- --test-threads=1` makes the command-line checks (which
//! look at every process on the machine) see only one test's processes.

mod support;

use domain::ImageReference;
use platform::{
    registry::BasicCredentials, AppRef, LocalEngine, LocalSettings, Platform, PlatformError,
    ReleaseSpec, RunningRelease, Step,
};
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};
use support::*;
use tempfile::TempDir;
use testregistry::{TestRegistry, ENV_FILE_PATH};

const USER: &str = "deployer";
/// Distinctive, so that finding it anywhere means it leaked.
const PASSWORD: &str = "registry-pw-5c1e9b7a";
const WRONG_PASSWORD: &str = "wrong-pw-0d3f8e21";
const CREDS: (&str, &str) = (USER, PASSWORD);
const APP: i64 = 41;
/// Where this file's engines' port ranges start, away from the other engine tests'.
const PORTS_FROM: u16 = 31000;

struct Harness {
    registry: TestRegistry,
    dir: TempDir,
    engine: LocalEngine,
}

impl Harness {
    async fn start() -> Harness {
        let registry = TestRegistry::start_htpasswd(&[CREDS]).await;
        let dir = tempfile::Builder::new()
            .prefix("berth-engine-test-")
            .tempdir()
            .unwrap();
        let engine = engine_on(dir.path(), PORTS_FROM, std::slice::from_ref(&registry.host)).await;
        Harness {
            registry,
            dir,
            engine,
        }
    }

    fn image(&self, digest: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/team/app@{digest}", self.registry.host)).unwrap()
    }

    async fn deploy(
        &self,
        release: ReleaseSpec,
        password: &str,
    ) -> (Result<RunningRelease, PlatformError>, RecordedLog) {
        let log = RecordedLog::default();
        let result = self
            .engine
            .deploy(release, Some(BasicCredentials::new(USER, password)), &log)
            .await;
        assert_auth_dir_is_empty(&self.engine);
        (result, log)
    }

    /// Pushes an image answering `body` and deploys it as `release_id`.
    async fn deploy_serving(&self, release_id: i64, body: &str) -> RunningRelease {
        let digest = self
            .registry
            .push_serving_image("team/app", &format!("r{release_id}"), CREDS, body)
            .await;
        let (result, log) = self
            .deploy(
                release(app(), release_id, self.image(&digest), &[]),
                PASSWORD,
            )
            .await;
        result.unwrap_or_else(|e| panic!("deploy failed: {e}\nlog:\n{}", log.text()))
    }
}

/// The app every release here belongs to.
fn app() -> AppRef {
    app_ref(APP, "team/app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_image_deployed_with_its_credentials_serves_on_the_returned_url() {
    let harness = Harness::start().await;
    let digest = harness
        .registry
        .push_serving_image("team/app", "1.0", CREDS, "hello from release one")
        .await;

    let (result, log) = harness
        .deploy(release(app(), 1, harness.image(&digest), &[]), PASSWORD)
        .await;

    let running = result.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert_eq!(running.release_id, 1);
    assert_eq!(running.url, format!("http://127.0.0.1:{}/", running.port));
    assert!(harness.engine.settings().ports.contains(&running.port));
    assert_eq!(get(&running.url).await.unwrap(), "hello from release one");
    assert_eq!(
        log.steps(),
        [Step::Pull, Step::Start, Step::HealthCheck, Step::Switch]
    );
    assert!(
        log.text().contains("Copying blob"),
        "pull output is streamed:\n{}",
        log.text()
    );
    assert!(log
        .text()
        .contains(&format!("serving on port {}", running.port)));
    assert_eq!(harness.engine.running(APP).await, Some(running.clone()));

    let runtime_log = harness.engine.runtime_log(APP, 100).await;
    assert!(
        runtime_log
            .iter()
            .any(|line| line == &format!("serving on port {}", running.port)),
        "{runtime_log:?}"
    );
    let file = fs::read_to_string(harness.engine.settings().app_log_path(APP)).unwrap();
    assert!(
        file.contains(&format!("serving on port {}", running.port)),
        "{file}"
    );
    harness.engine.shutdown().await;
    assert!(
        get(&running.url).await.is_err(),
        "shut down releases stop serving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_deploy_replaces_the_serving_release_and_the_old_port_stops_answering() {
    let harness = Harness::start().await;
    let first = harness.deploy_serving(1, "release one").await;
    let second = harness.deploy_serving(2, "release two").await;

    assert_ne!(first.port, second.port);
    assert_eq!(get(&second.url).await.unwrap(), "release two");
    // The replaced release runs on until the switch is recorded (Berth's worker settles).
    assert_eq!(get(&first.url).await.unwrap(), "release one");
    harness.engine.settle(APP).await;
    assert!(
        get(&first.url).await.is_err(),
        "the previous release still answers on {}",
        first.url
    );
    assert_eq!(harness.engine.running(APP).await, Some(second));
    let records = fs::read_dir(harness.engine.settings().process_groups_dir())
        .unwrap()
        .count();
    assert_eq!(
        records, 1,
        "one running release, one recorded process group"
    );
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_exits_at_once_fails_its_deploy_and_the_previous_one_keeps_serving() {
    let harness = Harness::start().await;
    let serving = harness.deploy_serving(1, "still serving").await;
    let broken = harness
        .registry
        .push_broken_image("team/app", "broken", CREDS)
        .await;

    let started = Instant::now();
    let (result, log) = harness
        .deploy(release(app(), 2, harness.image(&broken), &[]), PASSWORD)
        .await;

    let error = result.expect_err("a broken release must not deploy");
    let PlatformError::HealthCheck(message) = &error else {
        panic!("expected a health check failure, got {error:?}");
    };
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(message.contains("this release fails at once"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "an exit fails the health check at once, not at its timeout"
    );
    assert_eq!(log.steps(), [Step::Pull, Step::Start, Step::HealthCheck]);
    assert_eq!(get(&serving.url).await.unwrap(), "still serving");
    assert_eq!(harness.engine.running(APP).await, Some(serving));
    let records = fs::read_dir(harness.engine.settings().process_groups_dir())
        .unwrap()
        .count();
    assert_eq!(records, 1, "nothing of the broken release is left running");
    assert_eq!(
        release_files(&harness.engine),
        [1],
        "the broken release's files went with it"
    );
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_pull_without_ever_showing_the_password() {
    let harness = Harness::start().await;
    let digest = harness.registry.push_image("team/app", "1.0", CREDS).await;

    let (result, log) = harness
        .deploy(
            release(app(), 1, harness.image(&digest), &[]),
            WRONG_PASSWORD,
        )
        .await;

    let error = result.expect_err("the registry refuses a wrong password");
    let PlatformError::Pull(message) = &error else {
        panic!("expected a pull failure, got {error:?}");
    };
    assert!(message.contains("refused the credentials"), "{message}");
    let encoded = basic_auth(USER, WRONG_PASSWORD);
    let everything = format!("{error}\n{error:?}\n{}", log.text());
    for secret in [WRONG_PASSWORD, encoded.as_str()] {
        assert!(!everything.contains(secret), "{everything}");
    }
    assert_eq!(log.steps(), [Step::Pull]);
    assert_eq!(harness.engine.running(APP).await, None);
    // The release's network, made while the image was being pulled, went with the pull.
    assert_eq!(networks(&harness.engine), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_password_is_in_no_command_line_while_a_deploy_runs() {
    let harness = Harness::start().await;
    let digest = harness
        .registry
        .push_serving_image("team/app", "1.0", CREDS, "private")
        .await;

    let watch = CommandLineWatch::start(&[PASSWORD]);
    let (result, log) = harness
        .deploy(release(app(), 1, harness.image(&digest), &[]), PASSWORD)
        .await;
    let watched = watch.finish();

    result.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert!(
        watched.saw(&["buildah", " pull "]),
        "the sampling saw no buildah pull: {:?}",
        watched.seen_with("buildah")
    );
    // The image's command is read from storage's copy of the config the pull stored (the
    // watch sees every test's commands: this engine's are those on its directory).
    let engine_dir = harness.engine.settings().release_files_dir();
    let engine_dir = engine_dir.parent().unwrap().to_str().unwrap();
    assert!(
        watched.saw(&["buildah", engine_dir, " pull "]),
        "{:?}",
        watched.seen_with("buildah")
    );
    assert!(
        !watched.saw(&["buildah", engine_dir, " inspect "]),
        "{:?}",
        watched.seen_with("buildah")
    );
    assert!(
        watched.leaks.is_empty(),
        "the password was on a command line: {:?}",
        watched.leaks
    );
    assert!(!log.text().contains(PASSWORD));
    assert!(
        !networks(&harness.engine).is_empty(),
        "the release's network is recorded"
    );
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_gives_the_release_its_new_config_through_no_command_line() {
    let harness = Harness::start().await;
    let digest = harness
        .registry
        .push_serving_image("team/app", "1.0", CREDS, "configured")
        .await;
    let image = harness.image(&digest);
    let (deployed, log) = harness
        .deploy(
            release(app(), 1, image.clone(), &[("GREETING", "first value")]),
            PASSWORD,
        )
        .await;
    let deployed = deployed.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    let env_url = format!("http://127.0.0.1:{}{ENV_FILE_PATH}", deployed.port);
    assert_eq!(get(&env_url).await.unwrap(), "first value\n");

    // A value a shell or buildah might mangle: `$`, quotes, spaces.
    let secret = "s3cret-config $HOME ${PATH} \"quoted\" 7a1c";
    let watch = CommandLineWatch::start(&[secret, "s3cret-config"]);
    let log = RecordedLog::default();
    let restarted = harness
        .engine
        .restart(
            release(
                app(),
                2,
                image,
                &[("GREETING", secret), ("EMPTY", ""), ("PORT", "1")],
            ),
            &log,
        )
        .await;
    let watched = watch.finish();

    let restarted = restarted.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert_eq!(log.steps(), [Step::Start, Step::HealthCheck, Step::Switch]);
    let env_url = format!("http://127.0.0.1:{}{ENV_FILE_PATH}", restarted.port);
    assert_eq!(get(&env_url).await.unwrap(), format!("{secret}\n"));
    assert!(
        watched.saw(&["buildah", " run "]),
        "the sampling saw the release start: {:?}",
        watched.seen_with("buildah")
    );
    // Through the shim the values need no `buildah config` (a buildah start less).
    assert!(
        !watched.saw(&["buildah", " config "]),
        "{:?}",
        watched.seen_with("buildah")
    );
    assert!(
        watched.leaks.is_empty(),
        "a config value was on a command line: {:?}",
        watched.leaks
    );
    assert!(!log.text().contains("s3cret-config"), "{}", log.text());
    harness.engine.settle(APP).await;
    assert!(
        get(&deployed.url).await.is_err(),
        "the old release was stopped"
    );
    // The values wait for the shim (and a crash's restart) in the release's own root-only
    // file, which goes with the release it belongs to.
    assert_eq!(release_files(&harness.engine), [2]);
    let files = fs::read_dir(harness.engine.settings().release_files_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files), 0o700);
    assert_eq!(mode(&files.join("env.json")), 0o600);
    harness.engine.shutdown().await;
}

/// The releases (of [`APP`]) whose files are in the engine's directory, by the name of
/// their container (`berth-APP-RELEASE-random`).
/// What the engine records of its networks: a slirp4netns's process group and socket, a
/// namespace's record.
fn networks(engine: &LocalEngine) -> Vec<String> {
    let dir = engine.settings().networks_dir();
    let names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found: Vec<String> = names(&dir)
        .into_iter()
        .filter(|name| name != "namespaces")
        .chain(names(&dir.join("namespaces")))
        .collect();
    found.sort();
    found
}

fn release_files(engine: &LocalEngine) -> Vec<i64> {
    let mut releases: Vec<i64> = fs::read_dir(engine.settings().release_files_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let rest = name
                        .strip_prefix(&format!("berth-{APP}-"))
                        .unwrap_or_else(|| panic!("{name}"));
                    rest.split('-').next().unwrap().parse().unwrap()
                })
                .collect()
        })
        .unwrap_or_default();
    releases.sort();
    releases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_the_image_in_storage_asks_for_a_new_deploy() {
    let harness = Harness::start().await;
    let digest = harness.registry.push_image("team/app", "1.0", CREDS).await;

    let log = RecordedLog::default();
    let error = harness
        .engine
        .restart(release(app(), 1, harness.image(&digest), &[]), &log)
        .await
        .expect_err("nothing was pulled");

    let PlatformError::Start(message) = &error else {
        panic!("expected a start failure, got {error:?}");
    };
    assert!(message.contains("deploy it again"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_running_in_a_restarted_berth_brings_the_release_back_on_its_port() {
    let harness = Harness::start().await;
    let digest = harness
        .registry
        .push_serving_image("team/app", "1.0", CREDS, "back again")
        .await;
    let spec = release(app(), 1, harness.image(&digest), &[("GREETING", "kept")]);
    let (before, log) = harness.deploy(spec.clone(), PASSWORD).await;
    let before = before.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));

    // Berth goes away without shutting down, as a crash or SIGKILL would leave it.
    let Harness {
        registry,
        dir,
        engine,
    } = harness;
    drop(engine);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&before.url).await.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        get(&before.url).await.is_err(),
        "the release died with its engine"
    );

    let engine = engine_on(dir.path(), PORTS_FROM, std::slice::from_ref(&registry.host)).await;
    assert_eq!(engine.running(APP).await, None);
    let after = engine
        .ensure_running(spec.clone().on_port(Some(before.port)))
        .await
        .expect("the release starts again from local storage, without credentials");

    assert_eq!(after, before, "same release, same port, same URL");
    assert_eq!(get(&after.url).await.unwrap(), "back again");
    let env_url = format!("http://127.0.0.1:{}{ENV_FILE_PATH}", after.port);
    assert_eq!(get(&env_url).await.unwrap(), "kept\n");
    // Already running: nothing to do.
    assert_eq!(engine.ensure_running(spec).await.unwrap(), after);
    let earlier_output = engine.runtime_log(APP, 1000).await;
    assert!(
        earlier_output
            .iter()
            .filter(|line| line.starts_with("serving on port"))
            .count()
            >= 2,
        "the runtime log keeps the earlier Berth's lines: {earlier_output:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_group_left_by_a_dead_berth_is_killed_when_the_engine_starts() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("run/releases");
    fs::create_dir_all(&records).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // An orphaned release: its own process group, holding a port.
    let mut orphan = {
        use std::os::unix::process::CommandExt;
        Command::new("/bin/busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("run busybox httpd")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    fs::write(
        records.join("berth-41-7-dead00.pgid"),
        format!("{}\n{}\n", orphan.id(), boot_id.trim()),
    )
    .unwrap();

    let engine = LocalEngine::new(LocalSettings::new(dir.path()))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        match orphan.try_wait().unwrap() {
            Some(status) => break status,
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            None => panic!("the orphaned release still runs"),
        }
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(
        fs::read_dir(&records).unwrap().count(),
        0,
        "the record is gone"
    );
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_crashes_is_restarted() {
    let harness = Harness::start().await;
    let running = harness.deploy_serving(1, "resilient").await;

    // Kill the app itself (not buildah): as if it crashed.
    let listen = format!("0.0.0.0:{}", running.port);
    let (app_pid, _) = processes()
        .into_iter()
        .find(|(_, cmdline)| cmdline.starts_with("/bin/busybox httpd") && cmdline.contains(&listen))
        .expect("the release's httpd process");
    let killed = Command::new("kill")
        .args(["-9", &app_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut went_down = false;
    loop {
        match get(&running.url).await {
            Ok(body) if went_down => {
                assert_eq!(body, "resilient");
                break;
            }
            Ok(_) => {}
            Err(_) => went_down = true,
        }
        if Instant::now() > deadline {
            let runtime_log = harness.engine.runtime_log(APP, 100).await.join("\n");
            panic!("the release was not restarted (went down: {went_down}):\n{runtime_log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runtime_log = harness.engine.runtime_log(APP, 100).await.join("\n");
    assert!(
        runtime_log.contains("restarting it in 1 s"),
        "the restart is in the runtime log:\n{runtime_log}"
    );
    harness.engine.shutdown().await;
}

#[tokio::test]
async fn without_buildah_the_engine_says_why_deploys_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = LocalSettings::new(dir.path());
    settings.buildah = "/nonexistent/buildah".into();
    let engine = LocalEngine::new(settings)
        .await
        .expect("Berth keeps working");

    let why = engine.unavailable().await.expect("deploys cannot run");
    assert!(why.contains("buildah is not installed"), "{why}");

    let installed = LocalEngine::new(LocalSettings::new(dir.path()))
        .await
        .unwrap();
    assert_eq!(installed.unavailable().await, None);
}

/// Every deploy asks whether the engine can run it before it is queued: a check that passed
/// is trusted for `tools_check_kept`, one that failed is not kept at all.
#[tokio::test]
async fn a_passed_tools_check_is_trusted_for_a_while_and_a_failed_one_not_at_all() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let buildah = dir.path().join("buildah");
    let mut settings = LocalSettings::new(dir.path().join("engine"));
    settings.buildah = buildah.clone();
    settings.tools_check_kept = Duration::from_secs(3);
    let engine = LocalEngine::new(settings).await.unwrap();
    let missing =
        |why: Option<String>| why.is_some_and(|why| why.contains("buildah is not installed"));

    assert!(missing(engine.unavailable().await), "no buildah yet");
    std::fs::write(&buildah, "#!/bin/sh\nexec buildah \"$@\"\n").unwrap();
    std::fs::set_permissions(&buildah, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The engine notes when its check passed: between `checking` and `passed`.
    let checking = Instant::now();
    assert_eq!(
        engine.unavailable().await,
        None,
        "a failed check is not kept: installing buildah is seen at once"
    );
    let passed = Instant::now();

    std::fs::remove_file(&buildah).unwrap();
    let asked = Instant::now();
    assert_eq!(
        engine.unavailable().await,
        None,
        "a passed check is trusted for a while"
    );
    assert!(
        asked - checking < Duration::from_secs(3),
        "the checks took {:?}: this test cannot tell trust from a pass",
        asked - checking
    );
    tokio::time::sleep(
        (passed + Duration::from_millis(3100)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert!(
        missing(engine.unavailable().await),
        "after tools_check_kept the tools are checked again"
    );
}

/// Where the child test that plays a Berth killed mid-run keeps its engine; unset, that
/// test does nothing.
const KILLED_BERTH_DIR: &str = "BERTH_TEST_KILLED_BERTH_DIR";
const KILLED_BERTH_IMAGE: &str = "BERTH_TEST_KILLED_BERTH_IMAGE";
/// Ports of the killed Berth's engine, away from every other test's.
const KILLED_BERTH_PORTS: std::ops::RangeInclusive<u16> = 31900..=31919;
/// The killed Berth's app: an id no other test uses, so that the namespaces and processes
/// this test counts are its own while the other tests run beside it.
const KILLED_BERTH_APP: i64 = 4141;

/// Run by the test below in a process of its own: deploys a release, says where it
/// serves, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_berth_that_will_be_killed() {
    let (Ok(dir), Ok(image)) = (
        std::env::var(KILLED_BERTH_DIR),
        std::env::var(KILLED_BERTH_IMAGE),
    ) else {
        return;
    };
    let image = ImageReference::parse(&image).unwrap();
    let mut settings = LocalSettings::new(&dir);
    settings.ports = KILLED_BERTH_PORTS;
    settings.insecure_registries = vec![image.registry().clone()];
    settings.runtime_shim = Some(shim());
    settings.monitor = monitor();
    let engine = LocalEngine::new(settings).await.unwrap();
    let log = RecordedLog::default();
    let running = engine
        .deploy(
            release(app_ref(KILLED_BERTH_APP, "team/app"), 1, image, &[]),
            Some(BasicCredentials::new(USER, PASSWORD)),
            &log,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    println!("SERVING {}", running.port);
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_outlives_a_killed_berth_and_the_next_engine_adopts_it() {
    use std::io::{BufRead, BufReader};
    let registry = TestRegistry::start_htpasswd(&[CREDS]).await;
    let digest = registry
        .push_serving_image("team/app", "1", CREDS, "left behind")
        .await;
    let dir = tempfile::Builder::new()
        .prefix("berth-engine-test-")
        .tempdir()
        .unwrap();
    let own_prefix = format!("berth-{KILLED_BERTH_APP}-");
    let namespaces = || -> std::collections::BTreeSet<String> {
        fs::read_dir("/run/netns")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.starts_with(&own_prefix))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaces_before = namespaces();
    let mut berth = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_berth_that_will_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILLED_BERTH_DIR, dir.path())
        .env(
            KILLED_BERTH_IMAGE,
            format!("{}/team/app@{digest}", registry.host),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = berth.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest may have started the line ("test … ... ").
            .find_map(|line| line.split("SERVING ").nth(1)?.trim().parse::<u16>().ok())
    })
    .await
    .unwrap()
    .expect("the child Berth deployed its release");
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/")).await.unwrap(),
        "left behind"
    );
    let listen = format!("0.0.0.0:{port}");
    let release_processes = || -> Vec<u32> {
        processes()
            .into_iter()
            .filter(|(_, cmdline)| {
                cmdline.starts_with("/bin/busybox httpd") && cmdline.contains(&listen)
            })
            .map(|(pid, _)| pid)
            .collect()
    };
    assert_eq!(release_processes().len(), 1);
    let left_namespaces: Vec<String> = namespaces()
        .difference(&namespaces_before)
        .cloned()
        .collect();
    assert_eq!(left_namespaces.len(), 1, "{left_namespaces:?}");

    // SIGKILL: no shutdown at all. The release runs under its monitor, in a session of its
    // own, with its network: it goes on answering.
    berth.kill().unwrap();
    berth.wait().unwrap();
    let pid = release_processes();
    for _ in 0..10 {
        assert_eq!(
            get(&format!("http://127.0.0.1:{port}/")).await.unwrap(),
            "left behind",
            "the release answers while no Berth runs"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(release_processes(), pid);

    let settings = || {
        let mut settings = LocalSettings::new(dir.path());
        settings.ports = KILLED_BERTH_PORTS;
        settings.insecure_registries = vec![registry.host.clone()];
        settings.runtime_shim = Some(shim());
        settings.monitor = monitor();
        settings
    };
    let image = ImageReference::parse(&format!("{}/team/app@{digest}", registry.host)).unwrap();
    let app = app_ref(KILLED_BERTH_APP, "team/app");
    let engine = LocalEngine::new(settings()).await.unwrap();
    // The next Berth adopts it: the same process on the same port, nothing started again.
    let adopted = engine
        .ensure_running(release(app.clone(), 1, image.clone(), &[]))
        .await
        .unwrap();
    assert_eq!(adopted.port, port);
    assert_eq!(release_processes(), pid);
    assert_eq!(engine.running(KILLED_BERTH_APP).await, Some(adopted));
    engine.reconciled().await;
    assert_eq!(
        release_processes(),
        pid,
        "the adopted release is the app's current one"
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/")).await.unwrap(),
        "left behind"
    );

    // A deploy replaces the adopted release like any other.
    let log = RecordedLog::default();
    let second = engine
        .restart(release(app.clone(), 2, image.clone(), &[]), &log)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    assert_ne!(second.port, port);
    engine.settle(KILLED_BERTH_APP).await;
    assert!(
        release_processes().is_empty(),
        "the adopted release was stopped"
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{}/", second.port))
            .await
            .unwrap(),
        "left behind"
    );

    // A Berth that stops cleanly leaves its releases serving too.
    engine.detach().await;
    drop(engine);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        get(&format!("http://127.0.0.1:{}/", second.port))
            .await
            .unwrap(),
        "left behind"
    );
    // A release an earlier Berth left that no app claims (here: release 2, which the
    // database would not know had it been killed during the switch) is stopped once
    // start-up is reconciled, its network deleted.
    let engine = LocalEngine::new(settings()).await.unwrap();
    assert!(get(&format!("http://127.0.0.1:{}/", second.port))
        .await
        .is_ok());
    engine.reconciled().await;
    assert!(get(&format!("http://127.0.0.1:{}/", second.port))
        .await
        .is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while namespaces().difference(&namespaces_before).next().is_some() {
        assert!(
            Instant::now() < deadline,
            "the stray release's namespace is deleted"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        fs::read_dir(dir.path().join("run/monitors"))
            .unwrap()
            .next()
            .is_none(),
        "no monitor record is left"
    );
    engine.shutdown().await;
}

/// A release monitor started as Berth starts one, running `/bin/sleep SECONDS` (a number
/// no other process on the machine uses) as its release; answers the monitor and its
/// stdout, read up to its `ready`.
fn monitor_of_a_sleep(
    dir: &Path,
    seconds: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::{BufRead, Write};
    let os = |s: &str| serde_json::json!({ "Unix": s.as_bytes() });
    fs::create_dir_all(dir.join("groups")).unwrap();
    let spec = serde_json::json!({
        "container": format!("sleep-{seconds}"),
        "run": { "program": "/bin/sleep", "args": [os(seconds)], "env": [] },
        "log": dir.join("app.log"),
        "groups_dir": dir.join("groups"),
        "cgroup": [],
        "redact": [],
        "note": "a release that sleeps",
    });
    let mut monitor = Command::new(monitor()[0].clone())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = monitor.stdin.take().unwrap();
    stdin.write_all(spec.to_string().as_bytes()).unwrap();
    drop(stdin);
    let mut events = std::io::BufReader::new(monitor.stdout.take().unwrap());
    let mut line = String::new();
    events.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "\"ready\"", "{line}");
    (monitor, events)
}

/// The pids of `/bin/sleep SECONDS`.
fn sleeps(seconds: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline == format!("/bin/sleep\0{seconds}\0").as_bytes())
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

fn sleeping(seconds: &str) -> bool {
    !sleeps(seconds).is_empty()
}

/// Kills what a failed assertion would leave: the monitors and their sleeping releases.
struct Reap(Vec<(u32, &'static str)>);

impl Drop for Reap {
    fn drop(&mut self) {
        for (monitor, seconds) in &self.0 {
            for pid in std::iter::once(*monitor as i32).chain(sleeps(seconds)) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn ended_within(child: &mut std::process::Child, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A Berth killed while it health-checks a release (before it even recorded the monitor,
/// say) never comes back for that release: no later Berth adopts one that was not accepted.
/// Its monitor notices that nobody reads its events and ends the release and itself. An
/// accepted release goes on running without Berth, as ever.
#[test]
fn a_monitor_whose_berth_is_gone_before_accepting_ends_its_release_and_itself() {
    let dir = TempDir::new().unwrap();
    let mut reap = Reap(Vec::new());

    let waiting = "613.271";
    let (mut monitor, events) = monitor_of_a_sleep(&dir.path().join("waiting"), waiting);
    reap.0.push((monitor.id(), waiting));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sleeping(waiting) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(sleeping(waiting), "the release runs under its monitor");
    thread::sleep(Duration::from_millis(1500));
    assert!(
        monitor.try_wait().unwrap().is_none(),
        "it waits while Berth reads"
    );
    drop(events);
    assert!(
        ended_within(&mut monitor, Duration::from_secs(15)),
        "the monitor of a release never accepted outlived its Berth"
    );
    assert!(!sleeping(waiting), "its release was left running");

    let accepted = "613.282";
    let (mut monitor, events) = monitor_of_a_sleep(&dir.path().join("accepted"), accepted);
    reap.0.push((monitor.id(), accepted));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGUSR1) };
    thread::sleep(Duration::from_millis(300));
    drop(events);
    thread::sleep(Duration::from_millis(2500));
    assert!(
        monitor.try_wait().unwrap().is_none(),
        "an accepted release outlives Berth"
    );
    assert!(sleeping(accepted));
    // SAFETY: as above.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    assert!(ended_within(&mut monitor, Duration::from_secs(15)));
    assert!(!sleeping(accepted));
}

/// The apps of a team share its image storage. Three other apps prune again and again,
/// with a `keep` that names none of this app's images (as one read before this app's
/// deploys were queued would), while this app deploys image after image: every deploy
/// still starts the image it pulled. Prunes that come while a deploy is pulling or
/// starting are postponed; once nothing is under way a prune removes what no one keeps.
/// Without the storage shared out, this failed about one deploy in ten here: c/storage
/// names a pulled image only after creating it, and the dangling sweep (`rmi --prune`) in
/// between removed it ("creating the container failed: … image not known", or "… is no
/// longer in this server's image storage", as seen once in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_apps_prunes_never_remove_the_image_a_deploy_is_about_to_run() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    const DEPLOYS: i64 = 16;
    let harness = Harness::start().await;
    let mut images = Vec::new();
    for n in 1..=DEPLOYS {
        let digest = harness
            .registry
            .push_serving_image("team/app", &format!("p{n}"), CREDS, &format!("release {n}"))
            .await;
        images.push(harness.image(&digest));
    }
    let other = |id: i64| app_in_team_of(&app(), id, &format!("team/other-{id}"));

    let deploying = AtomicBool::new(true);
    let deploys = async {
        let mut failed = Vec::new();
        for (n, image) in (1..).zip(&images) {
            let (result, log) = harness
                .deploy(release(app(), n, image.clone(), &[]), PASSWORD)
                .await;
            match result {
                Ok(running) => {
                    assert_eq!(get(&running.url).await.unwrap(), format!("release {n}"));
                    harness.engine.settle(APP).await;
                }
                Err(e) => failed.push(format!("deploy {n}: {e}\n{}", log.text())),
            }
        }
        deploying.store(false, SeqCst);
        failed
    };
    let prunes = |app: AppRef| {
        let deploying = &deploying;
        let engine = &harness.engine;
        async move {
            let (mut ran, mut postponed) = (0, 0);
            while deploying.load(SeqCst) {
                let report = engine.prune(&app, Vec::new()).await.unwrap();
                if report.postponed {
                    postponed += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                } else {
                    ran += 1;
                }
            }
            (ran, postponed)
        }
    };
    let (failed, a, b, c) = tokio::join!(
        deploys,
        prunes(other(APP + 1)),
        prunes(other(APP + 2)),
        prunes(other(APP + 3))
    );
    assert!(
        failed.is_empty(),
        "{} of {DEPLOYS} deploys failed while other apps pruned:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let (ran, postponed) = (a.0 + b.0 + c.0, a.1 + b.1 + c.1);
    assert!(
        postponed > 0 && ran > 0,
        "{ran} prunes ran and {postponed} were postponed during {DEPLOYS} deploys"
    );

    // Nothing under way now: the prune runs; the serving release's container keeps its
    // image, the earlier ones (stopped, their containers gone) go.
    let last = images.last().unwrap();
    let report = harness
        .engine
        .prune(&other(APP + 1), Vec::new())
        .await
        .unwrap();
    assert!(!report.postponed, "{report:?}");
    assert!(harness.engine.has_image(&app(), last).await.unwrap());
    for image in &images[..images.len() - 1] {
        assert!(
            !harness.engine.has_image(&app(), image).await.unwrap(),
            "{image} is still stored after a prune that keeps nothing: {report:?}"
        );
    }
    harness.engine.shutdown().await;
}
