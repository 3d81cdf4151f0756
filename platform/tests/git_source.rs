//! `platform::git` against real git: repositories made with `git init` in temporary
//! directories, a Berth data directory per test, and tiny HTTP servers that stand in for a
//! git host where credentials are concerned.

mod support;

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    Router,
};
use platform::{
    egress::{AllowEntry, Egress},
    git::{CommitId, GitError, GitRefName, GitSource, RefKind, Repository, RepositoryUrl},
    registry::BasicCredentials,
};
use std::{
    cell::Cell,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};
use support::{basic_auth, command_lines, write_file, CommandLineWatch};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A repository people push to: `main` (Dockerfile, app.txt, run.sh, a symlink, docs/),
/// an annotated tag `v1.0` on it, `feature` one commit further with its own file, and a
/// branch `old` to delete later.
struct Upstream {
    dir: TempDir,
    clock: Cell<i64>,
}

const DOCKERFILE: &str =
    "FROM registry.example.com/base:1\nCOPY app.txt /srv/app.txt\nRUN cat /srv/app.txt\n";

impl Upstream {
    fn new() -> Self {
        let upstream = Upstream {
            dir: tempfile::tempdir().unwrap(),
            clock: Cell::new(1_700_000_000),
        };
        upstream.git(&["init", "--quiet", "--initial-branch=main"]);
        upstream.write("Dockerfile", DOCKERFILE);
        upstream.write("app.txt", "hello from main\n");
        upstream.write("run.sh", "#!/bin/sh\necho run\n");
        fs::set_permissions(
            upstream.path().join("run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("app.txt", upstream.path().join("link")).unwrap();
        upstream.write("docs/readme.md", "# docs\n");
        upstream.commit("Add the app\n\nWith a longer body.");
        upstream.git(&["tag", "--annotate", "v1.0", "--message", "Release 1.0"]);
        upstream.git(&["branch", "old"]);
        upstream.git(&["checkout", "--quiet", "-b", "feature"]);
        upstream.write("feature.txt", "only on feature\n");
        upstream.write("app.txt", "hello from feature\n");
        upstream.commit("Add the feature");
        upstream.git(&["checkout", "--quiet", "main"]);
        upstream
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file_url(&self) -> RepositoryUrl {
        RepositoryUrl::parse(&format!("file://{}", self.path().display())).unwrap()
    }

    fn write(&self, path: &str, contents: &str) {
        write_file(self.path(), path, contents);
    }

    /// Commits everything with a committer date one minute after the previous commit's.
    fn commit(&self, message: &str) -> String {
        self.clock.set(self.clock.get() + 60);
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--message", message]);
        self.rev("HEAD")
    }

    fn rev(&self, name: &str) -> String {
        self.git(&["rev-parse", &format!("{name}^{{commit}}")])
    }

    fn committed_at_ms(&self, name: &str) -> i64 {
        self.git(&[
            "show",
            "--no-patch",
            "--format=%ct",
            &format!("{name}^{{commit}}"),
        ])
        .parse::<i64>()
        .unwrap()
            * 1000
    }

    fn git(&self, args: &[&str]) -> String {
        let date = format!("{} +0000", self.clock.get());
        let output = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

/// Berth's data directory: mirrors live in `<data>/git/<app>.git`.
struct DataDir(TempDir);

impl DataDir {
    fn new() -> Self {
        DataDir(tempfile::tempdir().unwrap())
    }

    fn git_dir(&self) -> PathBuf {
        self.0.path().join("git")
    }

    /// The operator's settings these tests run with: repositories on this server are read
    /// under the temporary directory (where every test repository is made), and the fake
    /// git hosts on 127.0.0.1 may be contacted.
    fn repository(&self, app: &str) -> Repository {
        let egress = Egress::new(vec![AllowEntry::parse("127.0.0.1").unwrap()])
            .with_git_local_roots(vec![std::env::temp_dir()]);
        Repository::new(self.git_dir().join(format!("{app}.git"))).with_egress(egress)
    }

    /// What is in `<data>/git` besides mirrors: scratch directories left behind.
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.git_dir())
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.ends_with(".git"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn name(text: &str) -> GitRefName {
    GitRefName::parse(text).unwrap()
}

fn commit(text: &str) -> CommitId {
    CommitId::parse(text).unwrap()
}

async fn fetched(upstream: &Upstream, data: &DataDir) -> Repository {
    let repository = data.repository("web");
    repository
        .fetch(&GitSource::public(upstream.file_url()))
        .await
        .unwrap();
    repository
}

/// Every tracing event and span field of this test binary, as text.
fn captured_logs() -> &'static Mutex<String> {
    static LOGS: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(String::new()));
        let _ = tracing::subscriber::set_global_default(capture::Capture(logs.clone()));
        logs
    })
}

mod capture {
    use std::{
        fmt::Write as _,
        sync::{
            atomic::{AtomicU64, Ordering},
            Arc, Mutex,
        },
    };
    use tracing::{
        field::{Field, Visit},
        span, Event, Metadata, Subscriber,
    };

    pub struct Capture(pub Arc<Mutex<String>>);
    struct Line<'a>(&'a mut String);

    impl Visit for Line<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            span.record(&mut Line(&mut self.0.lock().unwrap()));
            span::Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
        }
        fn record(&self, _: &span::Id, values: &span::Record<'_>) {
            values.record(&mut Line(&mut self.0.lock().unwrap()));
        }
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut logs = self.0.lock().unwrap();
            event.record(&mut Line(&mut logs));
            logs.push('\n');
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }
}

/// What a fake git host saw of one request.
#[derive(Clone, Debug, Default)]
struct Seen {
    uri: String,
    authorization: Option<String>,
    /// Command lines of every process while the request was being answered.
    cmdlines: Vec<String>,
    /// `(session dir mode, askpass mode)` of each scratch directory in `<data>/git` then.
    sessions: Vec<(u32, Option<u32>)>,
}

#[derive(Clone)]
struct Host {
    seen: Arc<Mutex<Vec<Seen>>>,
    data_git_dir: Option<PathBuf>,
    answer: Answer,
}

#[derive(Clone)]
enum Answer {
    /// 401 with a Basic challenge, whatever the request carries.
    Unauthorized,
    /// A redirect of every request to this origin.
    RedirectTo(String),
    /// No answer for a long time.
    Hang,
}

/// Starts a fake git host on a free loopback port; returns its origin and what it saw.
async fn start_host(answer: Answer, data: Option<&DataDir>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let host = Host {
        seen: seen.clone(),
        data_git_dir: data.map(DataDir::git_dir),
        answer,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(answer_git).with_state(host);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, seen)
}

async fn answer_git(State(host): State<Host>, uri: Uri, headers: HeaderMap) -> Response {
    let sessions = host
        .data_git_dir
        .as_deref()
        .map(|dir| {
            fs::read_dir(dir)
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(".session-"))
                .map(|e| {
                    let mode = e.metadata().unwrap().mode() & 0o777;
                    let askpass = fs::metadata(e.path().join("askpass"))
                        .ok()
                        .map(|m| m.mode() & 0o777);
                    (mode, askpass)
                })
                .collect()
        })
        .unwrap_or_default();
    host.seen.lock().unwrap().push(Seen {
        uri: uri.to_string(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned()),
        cmdlines: command_lines(),
        sessions,
    });
    match host.answer {
        Answer::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"berth-test\"")],
            "",
        )
            .into_response(),
        Answer::RedirectTo(origin) => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{origin}{uri}"))],
            "",
        )
            .into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fetching and listing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_file_url_fetch_lists_branches_and_tags_with_their_commits() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = data.repository("web");
    assert!(matches!(repository.refs().await, Err(GitError::NotFetched)));

    repository
        .fetch(&GitSource::public(upstream.file_url()))
        .await
        .unwrap();

    let refs = repository.refs().await.unwrap();
    let listed: Vec<(&str, RefKind)> = refs.iter().map(|r| (r.name.as_str(), r.kind)).collect();
    assert_eq!(
        listed,
        [
            ("feature", RefKind::Branch),
            ("main", RefKind::Branch),
            ("old", RefKind::Branch),
            ("v1.0", RefKind::Tag),
        ]
    );
    for r in &refs {
        assert_eq!(r.commit.as_str(), upstream.rev(&r.name), "{}", r.name);
        assert_eq!(r.committed_at, upstream.committed_at_ms(&r.name));
    }
    let subject = |n: &str| refs.iter().find(|r| r.name == n).unwrap().subject.clone();
    assert_eq!(subject("main"), "Add the app");
    assert_eq!(subject("feature"), "Add the feature");
    // An annotated tag shows the commit it names, not the tag's own message.
    assert_eq!(subject("v1.0"), "Add the app");
    assert_eq!(refs[0].committed_at, 1_700_000_120_000);
    assert!(data.leftovers().is_empty(), "{:?}", data.leftovers());
    let mode = fs::metadata(data.git_dir()).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "the mirrors' directory is private");
}

#[tokio::test]
async fn an_absolute_path_fetches_like_a_file_url() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let url = RepositoryUrl::parse(upstream.path().to_str().unwrap()).unwrap();
    let repository = data.repository("web");
    repository.fetch(&GitSource::public(url)).await.unwrap();
    let main = repository.resolve(&name("main")).await.unwrap();
    assert_eq!(main.as_str(), upstream.rev("main"));
}

#[tokio::test]
async fn a_second_fetch_brings_new_commits_and_forgets_deleted_branches_and_tags() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;
    let before = repository.resolve(&name("feature")).await.unwrap();

    upstream.git(&["checkout", "--quiet", "feature"]);
    upstream.write("feature.txt", "second version\n");
    let pushed = upstream.commit("Improve the feature");
    upstream.git(&["branch", "--delete", "--force", "old"]);
    upstream.git(&["tag", "--delete", "v1.0"]);
    upstream.git(&["tag", "v2.0", "main"]);

    // Present is not deployed: the mirror only changes when Berth fetches.
    assert_eq!(repository.resolve(&name("feature")).await.unwrap(), before);
    repository
        .fetch(&GitSource::public(upstream.file_url()))
        .await
        .unwrap();

    let refs = repository.refs().await.unwrap();
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["feature", "main", "v2.0"]);
    let feature = refs.iter().find(|r| r.name == "feature").unwrap();
    assert_eq!(feature.commit.as_str(), pushed);
    assert_eq!(feature.subject, "Improve the feature");
    assert_ne!(feature.commit, before);
    // The old commit is still in the mirror: a deploy that recorded it can be redeployed.
    assert_eq!(
        repository.resolve(&name(before.as_str())).await.unwrap(),
        before
    );
}

#[tokio::test]
async fn a_missing_repository_is_not_found_and_leaves_nothing_behind() {
    let data = DataDir::new();
    let missing = tempfile::tempdir().unwrap().path().join("nothing.git");
    let url = RepositoryUrl::parse(&format!("file://{}", missing.display())).unwrap();
    let repository = data.repository("web");
    let error = repository
        .fetch(&GitSource::public(url.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitError::RepositoryNotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(url.as_str()), "{error}");

    let empty = tempfile::tempdir().unwrap();
    let url = RepositoryUrl::parse(empty.path().to_str().unwrap()).unwrap();
    let error = repository.fetch(&GitSource::public(url)).await.unwrap_err();
    assert!(
        matches!(error, GitError::RepositoryNotFound { .. }),
        "{error:?}"
    );

    assert!(!repository.is_fetched());
    assert!(!repository.dir().exists());
    assert!(data.leftovers().is_empty(), "{:?}", data.leftovers());
}

#[tokio::test]
async fn a_repository_on_this_server_cannot_be_one_of_berths_own_mirrors() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let other_team = fetched(&upstream, &data).await;
    let url = RepositoryUrl::parse(other_team.dir().to_str().unwrap()).unwrap();
    let error = data
        .repository("intruder")
        .fetch(&GitSource::public(url))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::InvalidUrl(_)), "{error:?}");
    assert!(!data.repository("intruder").is_fetched());
}

// ---------------------------------------------------------------------------------------
// Resolving what a deploy names
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn branches_tags_and_full_or_short_commits_resolve_to_commits() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;
    let main = upstream.rev("main");
    let feature = upstream.rev("feature");

    let cases = [
        ("main", &main),
        ("feature", &feature),
        ("v1.0", &main),
        ("heads/feature", &feature),
        ("tags/v1.0", &main),
        ("refs/heads/main", &main),
        (&feature[..7], &feature),
        (&feature[..4], &feature),
        (feature.as_str(), &feature),
    ];
    for (reference, expected) in cases {
        let resolved = repository.resolve(&name(reference)).await.unwrap();
        assert_eq!(resolved.as_str(), expected.as_str(), "{reference}");
    }
}

#[tokio::test]
async fn an_unknown_ref_is_not_found() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;
    for reference in ["nope", "tags/main", "deadbeef", &"0".repeat(40)] {
        let error = repository.resolve(&name(reference)).await.unwrap_err();
        assert!(
            matches!(&error, GitError::RefNotFound { reference: r } if r == reference),
            "{reference}: {error:?}"
        );
        assert!(error.to_string().contains(reference), "{error}");
    }
}

#[tokio::test]
async fn a_name_that_is_both_a_branch_and_a_tag_must_be_qualified() {
    let upstream = Upstream::new();
    let feature = upstream.rev("feature");
    upstream.git(&["tag", "feature", "main"]);
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;

    let error = repository.resolve(&name("feature")).await.unwrap_err();
    let GitError::AmbiguousRef { candidates, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(candidates, &["tags/feature", "heads/feature"]);
    assert!(error.to_string().contains("heads/feature"), "{error}");

    let branch = repository.resolve(&name("heads/feature")).await.unwrap();
    assert_eq!(branch.as_str(), feature);
    let tag = repository.resolve(&name("tags/feature")).await.unwrap();
    assert_eq!(tag.as_str(), upstream.rev("main"));
}

#[tokio::test]
async fn refs_that_git_could_read_as_options_or_revision_syntax_are_refused_up_front() {
    for typed in [
        "-c",
        "--output=/tmp/owned",
        "-",
        "main~1",
        "main:Dockerfile",
        "a..b",
        " ",
    ] {
        let error = GitRefName::parse(typed).unwrap_err();
        assert!(
            error.message.contains("branch, tag or commit"),
            "{typed}: {error:?}"
        );
    }
    for typed in [
        "--upload-pack=touch /tmp/owned",
        "-oProxyCommand=touch /tmp/owned",
        "ext::sh -c touch% /tmp/owned",
        "fd::3",
        "ssh://-oProxyCommand=x/app.git",
    ] {
        assert!(RepositoryUrl::parse(typed).is_err(), "{typed}");
    }
}

// ---------------------------------------------------------------------------------------
// Checking out and reading files
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn checkout_writes_the_files_of_that_commit_and_nothing_else() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;
    let builds = tempfile::tempdir().unwrap();

    let main = repository.resolve(&name("main")).await.unwrap();
    let dest = builds.path().join("main");
    repository.checkout(&main, &dest).await.unwrap();
    let read = |p: &str| fs::read_to_string(dest.join(p)).unwrap();
    assert_eq!(read("Dockerfile"), DOCKERFILE);
    assert_eq!(read("app.txt"), "hello from main\n");
    assert_eq!(read("docs/readme.md"), "# docs\n");
    assert!(!dest.join("feature.txt").exists());
    assert!(!dest.join(".git").exists());
    let mode = fs::metadata(dest.join("run.sh")).unwrap().mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit kept: {mode:o}");
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        PathBuf::from("app.txt")
    );

    let feature = repository.resolve(&name("feature")).await.unwrap();
    let dest = builds.path().join("feature");
    repository.checkout(&feature, &dest).await.unwrap();
    assert_eq!(
        fs::read_to_string(dest.join("app.txt")).unwrap(),
        "hello from feature\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("feature.txt")).unwrap(),
        "only on feature\n"
    );

    // Into a directory that already holds files: refused, nothing overwritten.
    let error = repository.checkout(&main, &dest).await.unwrap_err();
    assert!(error.to_string().contains("not empty"), "{error}");
    assert_eq!(
        fs::read_to_string(dest.join("app.txt")).unwrap(),
        "hello from feature\n"
    );
    // A commit the mirror does not have.
    let error = repository
        .checkout(&commit(&"1".repeat(40)), &builds.path().join("none"))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::RefNotFound { .. }), "{error:?}");
    assert!(data.leftovers().is_empty(), "{:?}", data.leftovers());
}

#[tokio::test]
async fn read_file_reads_one_file_at_a_commit() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;
    let main = repository.resolve(&name("main")).await.unwrap();
    let feature = repository.resolve(&name("feature")).await.unwrap();

    let file = |c: &CommitId, p: &'static str| {
        let (repository, c) = (repository.clone(), c.clone());
        async move { repository.read_file(&c, p).await }
    };
    assert_eq!(
        file(&main, "Dockerfile").await.unwrap().unwrap(),
        DOCKERFILE
    );
    assert_eq!(
        file(&main, "./docs/readme.md").await.unwrap().unwrap(),
        "# docs\n"
    );
    assert_eq!(file(&main, "feature.txt").await.unwrap(), None);
    assert_eq!(
        file(&feature, "feature.txt").await.unwrap().unwrap(),
        "only on feature\n"
    );
    assert_eq!(file(&main, "nope/Dockerfile").await.unwrap(), None);
    assert_eq!(file(&main, "Docker").await.unwrap(), None);

    for (path, says) in [
        ("docs", "directory"),
        ("link", "symbolic link"),
        ("../etc/passwd", ".."),
        ("/etc/passwd", "relative"),
    ] {
        let error = file(&main, path).await.unwrap_err();
        assert!(error.to_string().contains(says), "{path}: {error}");
    }
    let error = repository
        .read_file(&commit(&"2".repeat(40)), "Dockerfile")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::RefNotFound { .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------

#[test]
fn a_url_with_credentials_in_it_is_refused_with_a_pointer_to_the_credential_fields() {
    for url in [
        "https://ci-bot:tok-in-url-123@git.example.com/org/app.git",
        "https://tok-in-url-123@git.example.com/org/app.git",
        "http://ci-bot:tok-in-url-123@127.0.0.1:3000/app.git",
        "ssh://git:tok-in-url-123@git.example.com/org/app.git",
    ] {
        let error = RepositoryUrl::parse(url).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("tok-in-url-123"), "{shown}");
        assert!(shown.contains("password"), "{shown}");
    }
}

const TOKEN: &str = "tok-9f2c41d7e3-never-show-me";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_credentials_reach_git_only_through_its_askpass_hook() {
    let logs = captured_logs();
    let data = DataDir::new();
    let (origin, seen) = start_host(Answer::Unauthorized, Some(&data)).await;
    let url = RepositoryUrl::parse(&format!("{origin}/org/app.git")).unwrap();
    assert!(url.is_insecure());
    let source = GitSource::with_credentials(url, BasicCredentials::new("ci-bot", TOKEN)).unwrap();

    let watch = CommandLineWatch::start(&[TOKEN]);
    let error = data.repository("web").fetch(&source).await.unwrap_err();
    let watched = watch.finish();

    // git asked, the hook answered, and the host got exactly these credentials.
    let seen = seen.lock().unwrap().clone();
    let expected = format!("Basic {}", basic_auth("ci-bot", TOKEN));
    let authorized: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.authorization.as_deref() == Some(expected.as_str()))
        .collect();
    assert!(!authorized.is_empty(), "{seen:#?}");
    assert!(authorized[0].uri.starts_with("/org/app.git/info/refs"));
    assert!(
        seen[0].authorization.is_none(),
        "git asks only when challenged"
    );

    // The token was in no command line, even while git was talking to the host (the
    // URL was: the snapshot did see git's processes).
    assert!(watched.leaks.is_empty(), "{:?}", watched.leaks);
    assert!(watched.scans > 0);
    for s in &seen {
        assert!(s.cmdlines.iter().any(|c| c.contains(&origin)), "{s:#?}");
        assert!(!s.cmdlines.iter().any(|c| c.contains(TOKEN)), "{s:#?}");
        // The hook lived in a private directory, itself private.
        assert_eq!(s.sessions, [(0o700, Some(0o700))]);
    }
    // …and is gone afterwards, as is the failed first mirror.
    assert!(data.leftovers().is_empty(), "{:?}", data.leftovers());
    assert!(!data.repository("web").dir().exists());

    assert!(matches!(error, GitError::Auth(_)), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("rejected the user name or token"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    let logs = logs.lock().unwrap();
    assert!(logs.contains("fetch"), "the capture works: {logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_without_credentials_says_credentials_are_needed() {
    let data = DataDir::new();
    let (origin, seen) = start_host(Answer::Unauthorized, None).await;
    let url = RepositoryUrl::parse(&format!("{origin}/org/app.git")).unwrap();
    let error = data
        .repository("web")
        .fetch(&GitSource::public(url))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::Auth(_)), "{error:?}");
    assert!(
        error.to_string().contains("requires credentials"),
        "{error}"
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.authorization.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_does_not_follow_a_redirect_to_another_host() {
    let data = DataDir::new();
    let (elsewhere, seen_elsewhere) = start_host(Answer::Unauthorized, None).await;
    let (origin, seen_origin) = start_host(Answer::RedirectTo(elsewhere.clone()), None).await;
    let url = RepositoryUrl::parse(&format!("{origin}/org/app.git")).unwrap();
    let source = GitSource::with_credentials(url, BasicCredentials::new("ci-bot", TOKEN)).unwrap();

    let error = data.repository("web").fetch(&source).await.unwrap_err();

    // The redirect target was checked by nobody: git is pinned to the checked address
    // and follows no redirect, so the other host hears nothing (credentials or not).
    assert!(!seen_origin.lock().unwrap().is_empty());
    let seen = seen_elsewhere.lock().unwrap().clone();
    assert!(seen.is_empty(), "git followed the redirect: {seen:#?}");
    assert!(!format!("{error} {error:?}").contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_hangs_is_stopped_at_its_deadline_with_its_helpers() {
    let data = DataDir::new();
    let (origin, seen) = start_host(Answer::Hang, None).await;
    let url = RepositoryUrl::parse(&format!("{origin}/org/app.git")).unwrap();
    let repository = data.repository("web").with_timeouts(
        Duration::from_secs(2),
        Duration::from_secs(30),
        Duration::from_secs(30),
    );

    let started = Instant::now();
    let error = repository.fetch(&GitSource::public(url)).await.unwrap_err();
    assert!(
        matches!(
            error,
            GitError::Timeout {
                command: "fetch",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "git was waiting for the host"
    );

    // git-remote-http (whose command line names the URL) went with git.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<String> = command_lines()
            .into_iter()
            .filter(|c| c.contains(&origin))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {alive:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(data.leftovers().is_empty(), "{:?}", data.leftovers());
}

/// The mirror's loose objects (`objects/xx/…`), by id.
fn loose_objects(mirror: &Path) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for dir in fs::read_dir(mirror.join("objects")).unwrap() {
        let dir = dir.unwrap();
        let prefix = dir.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 {
            continue;
        }
        for object in fs::read_dir(dir.path()).unwrap() {
            ids.insert(format!(
                "{prefix}{}",
                object.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    ids
}

/// Every object a branch or tag of the mirror reaches.
fn reachable_objects(mirror: &Path) -> std::collections::BTreeSet<String> {
    let output = Command::new("git")
        .args(["--git-dir"])
        .arg(mirror)
        .args(["rev-list", "--objects", "--all"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split(' ').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_twentieth_fetch_packs_the_mirror_and_keeps_what_a_deploy_may_still_name() {
    let upstream = Upstream::new();
    let data = DataDir::new();
    let repository = fetched(&upstream, &data).await;
    let mirror = repository.dir().to_owned();
    let source = GitSource::public(upstream.file_url());

    // A commit a deploy resolved, on a branch deleted right after: unreachable in the
    // mirror once fetched again, and still there for the deploy's checkout.
    upstream.git(&["checkout", "--quiet", "-b", "short-lived"]);
    upstream.write("short.txt", "gone soon\n");
    let short_lived = upstream.commit("A branch that will be deleted");
    upstream.git(&["checkout", "--quiet", "main"]);
    repository.fetch(&source).await.unwrap();
    upstream.git(&["branch", "--delete", "--force", "short-lived"]);

    // Small fetches (below fetch.unpackLimit) leave their objects loose.
    assert_eq!(platform::git::FULL_GC_EVERY, 20);
    for n in 3..20 {
        upstream.write("app.txt", &format!("version {n}\n"));
        upstream.commit(&format!("Version {n}"));
        repository.fetch(&source).await.unwrap();
    }
    let reachable = reachable_objects(&mirror);
    assert!(
        loose_objects(&mirror).intersection(&reachable).count() > 10,
        "nineteen fetches leave loose objects"
    );

    upstream.write("app.txt", "version 20\n");
    let last = upstream.commit("Version 20");
    repository.fetch(&source).await.unwrap();
    assert_eq!(
        fs::read_to_string(mirror.join("berth-fetches"))
            .unwrap()
            .trim(),
        "20"
    );
    let reachable = reachable_objects(&mirror);
    let loose = loose_objects(&mirror);
    assert!(
        loose.intersection(&reachable).next().is_none(),
        "the twentieth fetch packs every reachable object: {loose:?}"
    );
    assert!(
        fs::read_dir(mirror.join("objects/pack")).unwrap().any(|f| f
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".pack")),
        "into a pack"
    );
    // Unreachable objects are kept for git's two weeks: the deleted branch's commit still
    // checks out, as the newest one does.
    for (commit_id, file) in [(short_lived, "short.txt"), (last, "app.txt")] {
        let dest = data.0.path().join(format!("checkout-{commit_id}"));
        repository
            .checkout(&commit(&commit_id), &dest)
            .await
            .unwrap();
        assert!(dest.join(file).exists(), "{file} of {commit_id}");
    }
}
