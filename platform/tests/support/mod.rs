//! The shared harness of the platform tests: an operation log that keeps what it is told,
//! local engines on ports of their own, release builders, an HTTP `get`, the checks that
//! no auth file is left behind, and the sampling of every command line on the machine that
//! proves secrets never reach one. Each test file declares `mod support;` and uses what
//! it needs of it.

// Every test binary compiles all of this module but uses only part of it.
#![allow(dead_code)]

use domain::{ImageReference, RegistryHost};
use platform::{
    registry::Secret, AppRef, LocalEngine, LocalSettings, OperationLog, ReleaseSpec, Step,
};
use std::{
    collections::BTreeSet,
    fs,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU16, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

/// An operation log that keeps everything it is told: the steps in order, and the lines.
#[derive(Default)]
pub struct RecordedLog {
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
    /// The steps reported so far, in order.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap().clone()
    }

    /// The lines logged so far, each as it was logged.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines logged so far, one a line.
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

/// The 20 ports an engine directory gets: its own, so that a release is never mistaken
/// for another test's release that was handed the same port, and the same ones when the
/// directory is opened again (a Berth restart keeps its releases' ports). New ranges are
/// handed out from `ports_from` up; each test file passes its own start, away from the
/// other files', so that test binaries running at the same time do not collide either.
pub fn ports_for(dir: &Path, ports_from: u16) -> RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    static RANGES: Mutex<Vec<(PathBuf, u16)>> = Mutex::new(Vec::new());
    let mut ranges = RANGES.lock().unwrap();
    let start = match ranges.iter().find(|(known, _)| known == dir) {
        Some((_, start)) => *start,
        None => {
            let start = ports_from + NEXT.fetch_add(1, Ordering::SeqCst) * 20;
            ranges.push((dir.to_owned(), start));
            start
        }
    };
    start..=start + 19
}

/// A local engine on `dir` (new, or opened again as a restarted Berth would), with the
/// ports of [`ports_for`], trusting the `insecure` registries over plain HTTP, and a
/// health timeout that a slow, busy machine still meets.
pub async fn engine_on(dir: &Path, ports_from: u16, insecure: &[RegistryHost]) -> LocalEngine {
    let mut settings = LocalSettings::new(dir);
    settings.ports = ports_for(dir, ports_from);
    settings.insecure_registries = insecure.to_vec();
    settings.health_timeout = Duration::from_secs(30);
    settings.runtime_shim = Some(shim());
    settings.monitor = monitor();
    LocalEngine::new(settings).await.expect("the engine starts")
}

/// The engine's OCI runtime shim, as the platform's own test program.
pub fn shim() -> Vec<std::ffi::OsString> {
    vec![env!("CARGO_BIN_EXE_berth-oci-runtime").into()]
}

/// The release monitor every release runs under (Berth runs `berth release-monitor`).
pub fn monitor() -> Vec<std::ffi::OsString> {
    vec![env!("CARGO_BIN_EXE_berth-release-monitor").into()]
}

/// The app `id`, named `name` (`team/app`).
pub fn app_ref(id: i64, name: &str) -> AppRef {
    AppRef {
        id,
        // One team per app: each test's app keeps its images to itself.
        team_id: id,
        name: name.to_owned(),
        route: None,
    }
}

/// Another app, `id`, of the team `of` belongs to: it shares that team's image storage.
pub fn app_in_team_of(of: &AppRef, id: i64, name: &str) -> AppRef {
    AppRef {
        id,
        team_id: of.team_id,
        name: name.to_owned(),
        route: None,
    }
}

/// Release `release_id` of `app`, running `image` with `env` as its environment, on
/// whatever port is free and probed at `/`.
pub fn release(
    app: AppRef,
    release_id: i64,
    image: ImageReference,
    env: &[(&str, &str)],
) -> ReleaseSpec {
    let env = env
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Secret::new(*value)))
        .collect();
    ReleaseSpec::new(app, release_id, image, env, None)
}

/// The body of a successful `GET url`, past no proxy and within 3 seconds; an error for
/// anything else (a release that does not answer, or answers with an error status).
pub async fn get(url: &str) -> Result<String, reqwest::Error> {
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

/// Fails the test when the engine left a registry auth file behind.
pub fn assert_auth_dir_is_empty(engine: &LocalEngine) {
    let left: Vec<PathBuf> = fs::read_dir(engine.settings().auth_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(left.is_empty(), "auth files left behind: {left:?}");
}

/// Writes `contents` to `path` below `root`, making the directories on the way.
pub fn write_file(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// Standard base64 (with padding) of `text`.
pub fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// What an HTTP Basic `Authorization` header carries for `user` and `password` (after
/// `Basic `): a form of the password that must not leak either.
pub fn basic_auth(user: &str, password: &str) -> String {
    base64(&format!("{user}:{password}"))
}

/// Every process on the machine with its command line (arguments joined by spaces), as
/// any user of the machine can read them in `/proc`.
pub fn processes() -> Vec<(u32, String)> {
    fs::read_dir("/proc")
        .expect("/proc lists the processes")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

/// Every process's command line, as any user of the machine can read it.
pub fn command_lines() -> Vec<String> {
    processes().into_iter().map(|(_, line)| line).collect()
}

/// Reads every command line on the machine again and again, without pausing, until
/// finished: which ones contained a needle, and what it saw (the proof that it looked
/// while the work ran).
pub struct CommandLineWatch {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Watched>,
}

/// What a [`CommandLineWatch`] saw.
#[derive(Debug, Default)]
pub struct Watched {
    /// The command lines that contained a needle, each once.
    pub leaks: Vec<String>,
    /// Every command line seen, each once.
    pub seen: BTreeSet<String>,
    /// How many times it read every command line.
    pub scans: usize,
}

impl Watched {
    /// Whether some command line seen contained all of `parts`.
    pub fn saw(&self, parts: &[&str]) -> bool {
        self.seen
            .iter()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    }

    /// The command lines seen that contained `part`, for failure messages.
    pub fn seen_with(&self, part: &str) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|line| line.contains(part))
            .map(String::as_str)
            .collect()
    }
}

impl CommandLineWatch {
    /// Starts watching for any of `needles`.
    pub fn start(needles: &[&str]) -> CommandLineWatch {
        let needles: Vec<String> = needles.iter().map(|n| (*n).to_owned()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut watched = Watched::default();
            while !stopped.load(Ordering::SeqCst) {
                for line in command_lines() {
                    if needles.iter().any(|needle| line.contains(needle.as_str()))
                        && !watched.leaks.contains(&line)
                    {
                        watched.leaks.push(line.clone());
                    }
                    watched.seen.insert(line);
                }
                watched.scans += 1;
            }
            watched
        });
        CommandLineWatch { stop, thread }
    }

    /// Stops watching: what it saw.
    pub fn finish(self) -> Watched {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}
