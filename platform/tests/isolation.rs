//! Hostile code on the local engine: releases and build steps written by an attacker, run
//! by the real engine (buildah, runc, slirp4netns), trying what such code tries: read the
//! host's files and other releases' secrets, signal Berth, reach the services on the
//! host's loopback (Berth, PostgreSQL, registries, other releases), take host ports, and
//! starve the host of processes or memory. Each probe writes what it managed; the tests
//! read it back and also check from the outside.
//!
//! Run with `-- --test-threads=1` like the other engine tests: they are heavy on 2 cores.

mod support;

use domain::{ImageReference, RegistryHost};
use platform::{
    engine::{BuildSpec, BuiltImage},
    registry::BasicCredentials,
    LocalEngine, LocalSettings, Platform, PlatformError, RunningRelease,
};
use std::{fs, net::SocketAddr, time::Duration};
use support::*;
use tempfile::TempDir;
use testregistry::TestRegistry;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

const USER: &str = "builder";
const PASSWORD: &str = "isolation-pw-5e0c7a13";
const CREDS: (&str, &str) = (USER, PASSWORD);
const PORTS_FROM: u16 = 33400;
/// What the host's loopback service answers; finding it in a probe's output means the
/// probe reached the host.
const HOST_SECRET: &str = "HOST-LOOPBACK-SECRET-91f3";
/// The victim release's environment; finding it means a release read another's.
const VICTIM_SECRET: &str = "VICTIM-ENV-SECRET-4b7d";
const MASTER_KEY: &str = "MASTER-KEY-SECRET-0c8e";
const VICTIM: i64 = 61;
const PROBER: i64 = 62;
const BOMBER: i64 = 64;
const PROCESS_LIMIT: u32 = 48;
const MEMORY_LIMIT: u64 = 64 << 20;

struct Harness {
    registry: TestRegistry,
    /// The digest of the base (and victim) image.
    base_digest: String,
    dir: TempDir,
    engine: LocalEngine,
    source: TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let registry = TestRegistry::start_htpasswd(&[CREDS]).await;
        let base_digest = registry
            .push_serving_image("base/busybox", "1", CREDS, "the victim's index")
            .await;
        let dir = tempfile::Builder::new()
            .prefix("berth-isolation-test-")
            .tempdir()
            .unwrap();
        let mut settings = LocalSettings::new(dir.path());
        settings.ports = ports_for(dir.path(), PORTS_FROM);
        settings.insecure_registries = vec![registry.host.clone()];
        settings.health_timeout = Duration::from_secs(30);
        settings.pids_limit = Some(PROCESS_LIMIT);
        settings.memory_limit = Some(MEMORY_LIMIT);
        settings.runtime_shim = Some(shim());
        settings.monitor = monitor();
        let engine = LocalEngine::new(settings).await.expect("the engine starts");
        assert_eq!(engine.unavailable().await, None, "the engine can confine");
        Harness {
            registry,
            base_digest,
            dir,
            engine,
            source: tempfile::tempdir().unwrap(),
        }
    }

    fn base(&self) -> String {
        format!("{}/base/busybox:1", self.registry.host)
    }

    fn host(&self) -> RegistryHost {
        self.registry.host.clone()
    }

    /// The victim: the serving test image, pulled and run with a secret in its environment.
    async fn deploy_victim(&self) -> RunningRelease {
        let image = ImageReference::parse(&format!(
            "{}/base/busybox@{}",
            self.registry.host, self.base_digest
        ))
        .unwrap();
        let log = RecordedLog::default();
        self.engine
            .deploy(
                release(
                    app_ref(VICTIM, "victims/web"),
                    1,
                    image,
                    &[("GREETING", VICTIM_SECRET)],
                ),
                Some(BasicCredentials::new(USER, PASSWORD)),
                &log,
            )
            .await
            .unwrap_or_else(|e| panic!("the victim deploys: {e}\n{}", log.text()))
    }

    /// Builds `dockerfile` (with `files` next to it) as app `app_id`'s operation `op`.
    async fn build(
        &self,
        app_id: i64,
        op: i64,
        dockerfile: &str,
        files: &[(&str, &str)],
    ) -> (Result<BuiltImage, PlatformError>, RecordedLog) {
        write_file(self.source.path(), "Dockerfile", dockerfile);
        for (path, contents) in files {
            write_file(self.source.path(), path, contents);
        }
        let spec = BuildSpec {
            app: app_ref(app_id, "probers/web"),
            operation_id: op,
            source_dir: self.source.path().to_owned(),
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            build_args: Vec::new(),
            registry_credentials: vec![(self.host(), BasicCredentials::new(USER, PASSWORD))],
        };
        let log = RecordedLog::default();
        let result = self.engine.build(spec, &log).await;
        (result, log)
    }

    /// Builds a release whose command is `probe` (a busybox sh script that ends by serving
    /// `/www`) and deploys it with `env`; returns what the probe wrote to `/www/probe.txt`.
    async fn run_probe(
        &self,
        app_id: i64,
        probe: &str,
        env: &[(&str, &str)],
    ) -> (RunningRelease, String) {
        let dockerfile = format!(
            "FROM {}\nCOPY probe.sh /probe.sh\nCMD [\"/bin/busybox\", \"sh\", \"/probe.sh\"]\n",
            self.base()
        );
        let (built, log) = self
            .build(app_id, 1, &dockerfile, &[("probe.sh", probe)])
            .await;
        let built = built.unwrap_or_else(|e| panic!("the prober builds: {e}\n{}", log.text()));
        let log = RecordedLog::default();
        let running = self
            .engine
            .deploy_built(
                release(app_ref(app_id, "probers/web"), 1, built.pinned(), env),
                &log,
            )
            .await
            .unwrap_or_else(|e| panic!("the prober deploys: {e}\n{}", log.text()));
        let url = format!("http://127.0.0.1:{}/probe.txt", running.port);
        let report = get(&url).await.expect("the probe's report");
        (running, report)
    }
}

/// A service on the host's loopback, as Berth, PostgreSQL or a registry are: it answers
/// every connection with [`HOST_SECRET`].
async fn host_loopback_service() -> SocketAddr {
    host_service_on("127.0.0.1:0").await
}

/// The host's first address that is not loopback, if it has one.
fn host_ip() -> Option<String> {
    let output = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| *word == "inet")?;
            Some(words.next()?.split_once('/')?.0.to_owned())
        })
        .find(|address| !address.starts_with("127."))
}

/// A service listening on `address` that answers every connection with [`HOST_SECRET`].
async fn host_service_on(address: &str) -> SocketAddr {
    let listener = TcpListener::bind(address).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read the request first: closing with it unread would reset the connection
            // and lose the answer.
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{HOST_SECRET}",
                        HOST_SECRET.len()
                    )
                    .as_bytes(),
                )
                .await;
            let _ = stream.shutdown().await;
        }
    });
    address
}

/// A port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of `key: value` in a probe's report.
fn reported<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("the report says nothing of {key}:\n{report}"))
}

/// Sends `GET /` to `$1` (host:port) with busybox nc (its wget crashes on `-T`); prints
/// what answered on one line, or `no`.
const REACH: &str = r#"reach() {
  out=$(printf 'GET / HTTP/1.0\r\n\r\n' | $bb nc -w 3 "${1%:*}" "${1##*:}" 2>/dev/null | $bb tr '\r\n' '  ')
  if [ -n "$out" ]; then echo "reach $1: $out"; else echo "reach $1: no"; fi
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_sees_and_reaches_nothing_of_the_host_or_of_other_releases() {
    let harness = Harness::start().await;
    let host_service = host_loopback_service().await;
    let victim = harness.deploy_victim().await;
    let extra_port = free_port();
    let probe = format!(
        r#"bb=/bin/busybox
{REACH}
{{
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
echo "processes: $n"
echo "victim env: $($bb cat /proc/[0-9]*/environ 2>/dev/null | $bb tr '\0' '\n' | $bb grep -c "$VICTIM_MARK")"
if $bb kill -9 "$BERTH_PID" 2>/dev/null; then echo "kill berth: done"; else echo "kill berth: refused"; fi
if $bb ls "$DATA_DIR" >/dev/null 2>&1; then echo "data dir: visible"; else echo "data dir: absent"; fi
echo "master key: $($bb cat "$DATA_DIR/master.key" /proc/[0-9]*/root"$DATA_DIR/master.key" 2>/dev/null)"
if $bb ls /run/netns >/dev/null 2>&1; then echo "host run: visible"; else echo "host run: absent"; fi
reach "127.0.0.1:$HOST_SERVICE_PORT"
reach "10.0.2.2:$HOST_SERVICE_PORT"
reach "10.0.2.2:$VICTIM_PORT"
reach "127.0.0.1:$VICTIM_PORT"
connect() {{
  if $bb nc -w 2 "${{1%:*}}" "${{1##*:}}" </dev/null >/dev/null 2>&1; then echo "connect $1: yes"; else echo "connect $1: no"; fi
}}
connect 127.0.0.1:5432
connect 10.0.2.2:5432
[ -n "$HOST_IP" ] && reach "$HOST_IP:$PUBLIC_SERVICE_PORT"
$bb grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status | $bb sed 's/:\t*/: /'
if echo h 2>/dev/null > /proc/sysrq-trigger; then echo "sysrq: written"; else echo "sysrq: refused"; fi
if $bb touch /sys/berth 2>/dev/null; then echo "sys: written"; else echo "sys: refused"; fi
$bb mkdir -p /www/mnt
if err=$($bb mount -t tmpfs none /www/mnt 2>&1); then echo "mount: done"; else echo "mount: refused ($err)"; fi
if err=$($bb mknod /www/disk b 8 0 2>&1); then echo "mknod: done"; else echo "mknod: refused ($err)"; fi
$bb httpd -p "0.0.0.0:$EXTRA_PORT" -h /www && echo "extra httpd: started"
}} > /www/probe.txt 2>&1
exec $bb httpd -f -p "0.0.0.0:$PORT" -h /www
"#
    );
    // As Berth's generated key would be (the original attack read it through
    // /proc/<pid>/root).
    fs::write(harness.dir.path().join("master.key"), MASTER_KEY).unwrap();
    // A service on all the host's addresses, as Berth with BERTH_ADDR=0.0.0.0:… would be.
    let public_service = host_service_on("0.0.0.0:0").await;
    let host_ip = host_ip().unwrap_or_default();
    let public_service_port = public_service.port().to_string();
    let berth_pid = std::process::id().to_string();
    let data_dir = harness.dir.path().display().to_string();
    let host_service_port = host_service.port().to_string();
    let victim_port = victim.port.to_string();
    let extra = extra_port.to_string();
    let (running, report) = harness
        .run_probe(
            PROBER,
            &probe,
            &[
                // Split, so that the probe's own environment does not match.
                ("VICTIM_MARK", &VICTIM_SECRET.replacen("-", "[-]", 1)),
                ("BERTH_PID", &berth_pid),
                ("DATA_DIR", &data_dir),
                ("HOST_SERVICE_PORT", &host_service_port),
                ("VICTIM_PORT", &victim_port),
                ("EXTRA_PORT", &extra),
                ("HOST_IP", &host_ip),
                ("PUBLIC_SERVICE_PORT", &public_service_port),
            ],
        )
        .await;

    // Its own PID namespace: a handful of its own processes, none of the victim's.
    let processes: usize = reported(&report, "processes").parse().unwrap();
    assert!(
        processes < 10,
        "the release sees the host's processes:\n{report}"
    );
    assert_eq!(reported(&report, "victim env"), "0", "{report}");
    assert_eq!(reported(&report, "kill berth"), "refused", "{report}");
    // Its own mount namespace and root: no engine directory, no host /run.
    assert_eq!(reported(&report, "data dir"), "absent", "{report}");
    assert_eq!(reported(&report, "host run"), "absent", "{report}");
    assert!(!report.contains(MASTER_KEY), "{report}");
    assert_eq!(reported(&report, "master key"), "", "{report}");
    // Its own network: the host's loopback services and the victim are out of reach.
    assert!(!report.contains(HOST_SECRET), "{report}");
    assert!(!report.contains("the victim's index"), "{report}");
    if !host_ip.is_empty() {
        assert!(get(&format!("http://{host_ip}:{public_service_port}/"))
            .await
            .is_ok());
        assert_eq!(
            reported(&report, &format!("reach {host_ip}:{public_service_port}")),
            "no",
            "{report}"
        );
    }
    for target in [
        format!("127.0.0.1:{host_service_port}"),
        format!("10.0.2.2:{host_service_port}"),
        format!("10.0.2.2:{victim_port}"),
        format!("127.0.0.1:{victim_port}"),
    ] {
        assert_eq!(
            reported(&report, &format!("reach {target}")),
            "no",
            "{report}"
        );
    }
    // PostgreSQL on the host's loopback (running wherever the test suite runs; checked
    // from the host first, so that "no" means something).
    if std::net::TcpStream::connect(("127.0.0.1", 5432)).is_ok() {
        assert_eq!(
            reported(&report, "connect 127.0.0.1:5432"),
            "no",
            "{report}"
        );
        assert_eq!(reported(&report, "connect 10.0.2.2:5432"), "no", "{report}");
    }
    // Reduced capabilities under seccomp.
    let caps = u64::from_str_radix(reported(&report, "CapEff"), 16).unwrap();
    for (bit, name) in [
        (21, "SYS_ADMIN"),
        (1, "DAC_OVERRIDE"),
        (13, "NET_RAW"),
        (19, "SYS_PTRACE"),
        (27, "MKNOD"),
    ] {
        assert_eq!(
            caps & (1 << bit),
            0,
            "the release has CAP_{name}:\n{report}"
        );
    }
    assert_eq!(reported(&report, "Seccomp"), "2", "{report}");
    assert_eq!(reported(&report, "NoNewPrivs"), "1", "{report}");
    // /proc and /sys of its own, read-only where runtimes make them so.
    assert_eq!(reported(&report, "sysrq"), "refused", "{report}");
    assert_eq!(reported(&report, "sys"), "refused", "{report}");
    // Refused for want of the capability, not for some other reason.
    for what in ["mount", "mknod"] {
        let answer = reported(&report, what);
        assert!(
            answer.starts_with("refused")
                && (answer.contains("denied") || answer.contains("not permitted")),
            "{what}: {answer}\n{report}"
        );
    }
    // Only its PORT is published; the extra listener stays inside its namespace.
    assert_eq!(reported(&report, "extra httpd"), "started", "{report}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", extra_port)).is_err(),
        "a port the release opened is reachable on the host"
    );
    // From the host both releases answer on their published ports.
    assert_eq!(get(&victim.url).await.unwrap(), "the victim's index");
    assert!(get(&running.url).await.is_ok());
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_and_a_memory_hog_meet_their_limits_and_the_host_goes_on() {
    let harness = Harness::start().await;
    let probe = r#"bb=/bin/busybox
{
( i=0; while [ $i -lt 400 ]; do $bb sleep 30 & i=$((i+1)); done ) 2>/www/bomb.err
echo "bomb: exit $?"
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
echo "processes at the limit: $n"
kill -9 -1
wait
$bb dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null; echo "small dd: $?"
$bb dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null; echo "big dd: $?"
} > /www/probe.txt 2>&1
exec $bb httpd -f -p "0.0.0.0:$PORT" -h /www
"#;
    // An app of its own: the process limit is per app.
    let (running, report) = harness.run_probe(BOMBER, probe, &[]).await;

    assert_ne!(
        reported(&report, "bomb"),
        "exit 0",
        "the bomb was never stopped:\n{report}"
    );
    let at_limit: u32 = reported(&report, "processes at the limit").parse().unwrap();
    assert!(
        at_limit <= PROCESS_LIMIT,
        "{at_limit} processes, above the limit of {PROCESS_LIMIT}:\n{report}"
    );
    assert!(
        at_limit > PROCESS_LIMIT / 2,
        "the bomb hardly forked:\n{report}"
    );
    assert_eq!(reported(&report, "small dd"), "0", "{report}");
    // SIGKILL by the memory cgroup's OOM killer: 128 + 9.
    assert_eq!(reported(&report, "big dd"), "137", "{report}");
    // The host and the release itself go on.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
    assert!(get(&running.url).await.is_ok());
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_step_reaches_neither_the_hosts_loopback_nor_its_files() {
    let harness = Harness::start().await;
    let host_service = host_loopback_service().await;
    let port = host_service.port();
    let public_port = host_service_on("0.0.0.0:0").await.port();
    // Without an address but loopback, the loopback check stands in.
    let host_ip = host_ip().unwrap_or_else(|| "127.0.0.1".into());
    let data_dir = harness.dir.path().display();
    let script = format!(
        r#"bb=/bin/busybox; {REACH}
reach 127.0.0.1:{port} | $bb sed 's/^/result: /'
reach 10.0.2.2:{port} | $bb sed 's/^/result: /'
reach {host_ip}:{public_port} | $bb sed 's/^/result: /'
if $bb ls {data_dir} >/dev/null 2>&1; then echo "result: data dir visible"; else echo "result: data dir absent"; fi
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "result: processes $n""#
    );
    let dockerfile = format!(
        "FROM {}\nRUN [\"/bin/busybox\", \"sh\", \"-c\", {}]\n",
        harness.base(),
        serde_json::to_string(&script).unwrap()
    );
    let (built, log) = harness.build(PROBER, 1, &dockerfile, &[]).await;
    let text = log.text();
    built.unwrap_or_else(|e| panic!("the build runs: {e}\n{text}"));
    let results: Vec<&str> = log_lines_with(&text, "result: ");
    assert!(!text.contains(HOST_SECRET), "{text}");
    assert!(
        results.contains(&format!("result: reach 127.0.0.1:{port}: no").as_str()),
        "{text}"
    );
    assert!(
        results.contains(&format!("result: reach 10.0.2.2:{port}: no").as_str()),
        "{text}"
    );
    assert!(
        results.contains(&format!("result: reach {host_ip}:{public_port}: no").as_str()),
        "{text}"
    );
    assert!(results.contains(&"result: data dir absent"), "{text}");
    let processes = results
        .iter()
        .find_map(|line| line.strip_prefix("result: processes "))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        processes < 10,
        "the build step sees the host's processes:\n{text}"
    );
    harness.engine.shutdown().await;
}

fn log_lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfiles_and_sources_that_reach_for_the_host_are_refused_before_building() {
    let harness = Harness::start().await;
    let base = harness.base();
    for (dockerfile, expected) in [
        (
            format!("FROM {base}\nRUN --mount=type=bind,source=/,target=/host cat /host/etc/shadow\n"),
            "line 2: RUN --mount=type=bind",
        ),
        (
            format!("FROM {base}\nRUN --mount=type=cache,from=localhost/berth/app-61:op-1,target=/x ls /x\n"),
            "from=",
        ),
        (format!("FROM {base}\nRUN --network=host ls\n"), "--network=host"),
        (format!("FROM {base}\nRUN --security=insecure ls\n"), "--security"),
    ] {
        let (result, log) = harness.build(PROBER, 2, &dockerfile, &[]).await;
        let message = match result {
            Err(PlatformError::Build(message)) => message,
            other => panic!("{dockerfile} was not refused: {other:?}\n{}", log.text()),
        };
        assert!(message.contains(expected), "{message}");
        assert!(!log.text().contains("STEP 1"), "buildah ran:\n{}", log.text());
    }

    // A link out of the source would let COPY read the host's files.
    fs::write(harness.source.path().join("app.txt"), "app").unwrap();
    std::os::unix::fs::symlink("/", harness.source.path().join("hostroot")).unwrap();
    let (result, log) = harness
        .build(
            PROBER,
            3,
            &format!("FROM {base}\nCOPY hostroot/etc/shadow /x\n"),
            &[],
        )
        .await;
    let message = result.expect_err("an escaping link is refused").to_string();
    assert!(message.contains("hostroot"), "{message}");
    assert!(
        !log.text().contains("STEP 1"),
        "buildah ran:\n{}",
        log.text()
    );
    fs::remove_file(harness.source.path().join("hostroot")).unwrap();
    // A link that stays inside is fine.
    std::os::unix::fs::symlink("app.txt", harness.source.path().join("link.txt")).unwrap();
    let (result, log) = harness
        .build(
            PROBER,
            4,
            &format!("FROM {base}\nCOPY link.txt /www/link.txt\n"),
            &[],
        )
        .await;
    result.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));
    harness.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_teams_build_cannot_use_another_teams_images() {
    let harness = Harness::start().await;
    // Team 62 builds on the private base (pulled with its credentials into its storage)
    // and has an image of its own.
    let (built, log) = harness
        .build(
            PROBER,
            5,
            &format!("FROM {}\nCOPY secret.txt /secret.txt\n", harness.base()),
            &[("secret.txt", "team 62's own")],
        )
        .await;
    let built = built.unwrap_or_else(|e| panic!("{e}\n{}", log.text()));

    // App 63 is in team 63: neither team 62's built image nor the private base it pulled
    // are there for the taking.
    for from in [
        built.image.to_string(),
        format!(
            "{}/base/busybox@{}",
            harness.registry.host, harness.base_digest
        ),
    ] {
        let dockerfile = format!("FROM {from}\n");
        write_file(harness.source.path(), "Dockerfile", &dockerfile);
        let spec = BuildSpec {
            app: app_ref(63, "others/web"),
            operation_id: 7,
            source_dir: harness.source.path().to_owned(),
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            build_args: Vec::new(),
            registry_credentials: Vec::new(),
        };
        let log = RecordedLog::default();
        let result = harness.engine.build(spec, &log).await;
        assert!(
            result.is_err(),
            "team 63 built FROM {from}:\n{}",
            log.text()
        );
        assert!(!log.text().contains("COMMIT"), "{}", log.text());
    }
    harness.engine.shutdown().await;
}
