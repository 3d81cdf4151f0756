//! An app's source code for Dockerfile deploys: Berth keeps a bare mirror of the app's git
//! repository under `<data>/git/<app id>.git`, fetches every branch and tag into it, lists
//! them on the app page, resolves what a deploy names to a commit, and writes that commit's
//! files into a fresh directory for the build.
//!
//! Pushing code and deploying it are separate steps: [`Repository::fetch`] brings commits in;
//! only a deploy, naming a ref that [`Repository::resolve`] turns into a [`CommitId`], builds
//! one.
//!
//! Git runs as the `git` program (`command.rs` says how it is confined), one command at a
//! time per call, each with a deadline. Callers run one operation per app at a time; two
//! fetches of the same mirror at once may fail on git's ref locks (and can be retried).

mod command;
mod deploy_key;
mod error;
mod reference;
mod source;

pub use deploy_key::DeployKey;
pub use error::GitError;
pub use reference::{CommitId, GitRef, GitRefName, RefKind};
pub use source::{GitSource, RepositoryUrl, SshKey};

use crate::egress::Egress;
use command::{private_dir, ssh_command, Run, Session};
use std::{
    fs, io,
    path::{Component, Path, PathBuf},
    time::Duration,
};

/// Fetching talks to another server and may move a large history.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(300);
/// Everything else works on the local mirror.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Writing out a large tree takes longer than a lookup.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(120);
/// [`Repository::read_file`] is for Dockerfiles and the like, not for assets.
pub const MAX_READ_FILE: u64 = 10 << 20;
/// Housekeeping after a fetch: packing a large mirror whole takes a while, but must not
/// hold a deploy up for long.
pub const GC_TIMEOUT: Duration = Duration::from_secs(120);
/// Every this many fetches a mirror is packed whole (`git gc`); in between, `git gc --auto`
/// packs only once git counts thousands of loose objects, which small fetches (each below
/// `fetch.unpackLimit`, stored loose) take long to reach.
pub const FULL_GC_EVERY: u64 = 20;
/// How many fetches the mirror has had, in a file of its own inside it.
const FETCH_COUNT_FILE: &str = "berth-fetches";

/// Every branch and every tag, each under its own name; anything else (pull requests,
/// notes, the remote's HEAD) is not deployable and not fetched.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// The bare mirror of one app's repository.
#[derive(Clone, Debug)]
pub struct Repository {
    dir: PathBuf,
    egress: Egress,
    fetch_timeout: Duration,
    local_timeout: Duration,
    checkout_timeout: Duration,
}

impl Repository {
    /// The mirror at `dir` (`<data>/git/<app id>.git`); nothing is created until the first
    /// [`fetch`](Self::fetch). Its parent directory also holds each operation's private
    /// scratch directory, and is kept private (0700).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            egress: Egress::default(),
            fetch_timeout: FETCH_TIMEOUT,
            local_timeout: LOCAL_TIMEOUT,
            checkout_timeout: CHECKOUT_TIMEOUT,
        }
    }

    /// What fetches may reach: remote hosts through the egress guard, repositories on this
    /// server only under its git local roots. By default public hosts only, and no local
    /// repositories.
    pub fn with_egress(mut self, egress: Egress) -> Self {
        self.egress = egress;
        self
    }

    /// Changes the deadlines ([`FETCH_TIMEOUT`], [`LOCAL_TIMEOUT`] and [`CHECKOUT_TIMEOUT`]
    /// by default).
    pub fn with_timeouts(mut self, fetch: Duration, local: Duration, checkout: Duration) -> Self {
        self.fetch_timeout = fetch;
        self.local_timeout = local;
        self.checkout_timeout = checkout;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the mirror takes on disk (0 before the first fetch).
    pub fn disk_bytes(&self) -> io::Result<u64> {
        if !self.dir.exists() {
            return Ok(0);
        }
        crate::disk_use::disk_bytes(&self.dir)
    }

    /// Whether a fetch has succeeded at least once.
    pub fn is_fetched(&self) -> bool {
        is_bare_repository(&self.dir)
    }

    /// Brings the mirror up to date with `source`: every branch and tag, new commits, moved
    /// and deleted refs (`--prune`). Creates the mirror on the first call; a first fetch that
    /// fails leaves nothing behind.
    ///
    /// The URL is given to git on each fetch and never stored in the mirror, so changing an
    /// app's repository URL needs no clean-up.
    pub async fn fetch(&self, source: &GitSource) -> Result<(), GitError> {
        let parent = self.parent();
        private_dir(&parent).map_err(|e| io_error("create the git directory", &parent, e))?;
        let mut session = Session::open(&parent).map_err(|e| io_error("prepare", &parent, e))?;
        if let Some(path) = source.url().local_path() {
            self.egress
                .check_git_local_path(&path)
                .map_err(GitError::Refused)?;
            self.refuse_berths_own_files(&path, source.url())?;
        } else {
            session = self
                .connect(session, source.url(), source.ssh_key())
                .await?;
        }
        if let (Some(credentials), Some(origin)) =
            (source.credentials(), source.url().http_origin())
        {
            session = session
                .with_credentials(&origin, credentials)
                .map_err(|e| io_error("prepare", &parent, e))?;
        }

        // A new mirror is made beside its final place and moved there once it holds
        // something, so that a mirror on disk is always one that fetched.
        let mut fresh = None;
        let mirror = if self.is_fetched() {
            self.dir.clone()
        } else {
            if self.dir.exists() {
                return Err(GitError::Other(format!(
                    "{} exists but is not a git repository; remove it and fetch again.",
                    self.dir.display()
                )));
            }
            let new = tempfile::Builder::new()
                .prefix(".new-")
                .tempdir_in(&parent)
                .map_err(|e| io_error("create the mirror in", &parent, e))?;
            let init = session
                .run(
                    Run::new("init", None, self.local_timeout)
                        .args(["init", "--bare", "--quiet", "--"])
                        .arg(new.path()),
                )
                .await?;
            if !init.status.success() {
                return Err(GitError::Other(format!(
                    "Could not create the mirror: {}",
                    error::telling_line(&init.stderr)
                )));
            }
            let path = new.path().to_owned();
            fresh = Some(new);
            path
        };

        tracing::info!(url = %source.url(), mirror = %self.dir.display(), "fetching git repository");
        let fetched = session
            .run(
                Run::new("fetch", Some(&mirror), self.fetch_timeout)
                    .args([
                        "fetch",
                        "--prune",
                        "--no-tags",
                        "--quiet",
                        // Housekeeping runs after the fetch with a deadline of its own
                        // (`collect_garbage`), so that it can neither fail nor slow it.
                        "--no-auto-maintenance",
                        "--no-write-fetch-head",
                        "--no-recurse-submodules",
                        "--",
                        source.url().as_str(),
                    ])
                    .args(REFSPECS),
            )
            .await?;
        if !fetched.status.success() {
            let authenticated = match source.ssh_key() {
                Some(key) if source.url().uses_ssh() => {
                    error::Authenticated::DeployKey(&key.fingerprint)
                }
                _ if session.has_credentials() => error::Authenticated::Credentials,
                _ => error::Authenticated::Nothing,
            };
            let error = error::fetch_failure(&fetched.stderr, source.url().as_str(), authenticated);
            tracing::info!(url = %source.url(), kind = error.kind(), "git fetch failed: {error}");
            return Err(error);
        }

        if let Some(new) = fresh {
            match fs::rename(new.path(), &self.dir) {
                Ok(()) => {
                    let _ = new.keep();
                }
                // Another fetch created the mirror first; it is as good as this one.
                Err(_) if self.is_fetched() => {}
                Err(e) => return Err(io_error("move the new mirror to", &self.dir, e)),
            }
        }
        if let Err(error) = self.collect_garbage().await {
            tracing::warn!(mirror = %self.dir.display(), %error, "git gc after a fetch failed; the next fetch tries again");
        }
        Ok(())
    }

    /// Keeps the mirror's disk bounded: `git gc --auto` after each fetch, and every
    /// [`FULL_GC_EVERY`]th fetch a whole `git gc`, each within [`GC_TIMEOUT`].
    ///
    /// Safe beside a deploy of the same app, whose fetch, checkout and file reads may run
    /// at the same time (fetches are not serialised: the worker's deploy and the app page's
    /// Fetch button each fetch): gc writes the new pack before it deletes the old ones (a
    /// reader that misses an object looks for packs again), and deletes unreachable objects
    /// only after git's default two weeks — never `--prune=now`, which could delete the
    /// objects of a fetch still writing them, or of a commit a deploy resolved just before
    /// a force push made it unreachable. A second gc at the same time finds git's
    /// `gc.pid` lock and does nothing. One killed by its deadline leaves a temporary pack,
    /// which the next gc removes.
    async fn collect_garbage(&self) -> Result<(), GitError> {
        let count_file = self.dir.join(FETCH_COUNT_FILE);
        let fetches = fs::read_to_string(&count_file)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        // Two fetches counting at once may count one: the next whole gc comes a fetch later.
        fs::write(&count_file, format!("{fetches}\n"))
            .map_err(|e| io_error("count the fetches of", &self.dir, e))?;
        let session = self.local_session()?;
        let run = Run::new("gc", Some(&self.dir), GC_TIMEOUT).args(["gc", "--quiet"]);
        let run = if fetches.is_multiple_of(FULL_GC_EVERY) {
            run.arg("--prune=2.weeks.ago")
        } else {
            run.arg("--auto")
        };
        let output = session.run(run).await?;
        if !output.status.success() {
            return Err(local_failure("collect garbage", &output.stderr));
        }
        Ok(())
    }

    /// Pushes `commit` from the mirror to `branch` of the ssh repository `remote`,
    /// authenticated with `key` (the team's deploy key), through the egress guard like a
    /// fetch. The branch is replaced whatever it held (a force push): it is meant to be a
    /// branch of Berth's own, such as `berth-deploy-<operation>`, never someone's work.
    ///
    /// Only ssh remotes: Berth has no other write credentials to offer, and a push to a
    /// repository on this server would let an app write where the operator never allowed.
    pub async fn push(
        &self,
        commit: &CommitId,
        remote: &RepositoryUrl,
        branch: &str,
        key: &SshKey,
    ) -> Result<(), GitError> {
        if !remote.uses_ssh() {
            return Err(GitError::InvalidUrl(format!(
                "{remote} is not an ssh repository (git@host:path.git or ssh://…): Berth \
                 pushes only over ssh, with the team's deploy key."
            )));
        }
        branch_name(branch)?;
        let session = self.local_session()?;
        let session = self.connect(session, remote, Some(key)).await?;
        tracing::info!(url = %remote, mirror = %self.dir.display(), commit = %commit, branch, "pushing to git repository");
        let pushed = session
            .run(
                Run::new("push", Some(&self.dir), self.fetch_timeout)
                    .args([
                        "push",
                        "--force",
                        "--quiet",
                        "--recurse-submodules=no",
                        "--",
                        remote.as_str(),
                    ])
                    .arg(format!("{commit}:refs/heads/{branch}")),
            )
            .await?;
        if !pushed.status.success() {
            let error = error::push_failure(&pushed.stderr, remote.as_str(), &key.fingerprint);
            tracing::info!(url = %remote, kind = error.kind(), "git push failed: {error}");
            return Err(error);
        }
        Ok(())
    }

    /// Makes `session` reach the remote repository `url`: its host resolved and checked by
    /// the egress guard, and git pinned to the checked address, so that a second DNS answer
    /// cannot send it elsewhere. Over ssh, only `key` is offered (written into the session's
    /// private directory and gone with it; without one ssh offers no key at all), and the
    /// host key is recorded at the first connection in `known_hosts` of Berth's git
    /// directory and checked at every later one.
    async fn connect(
        &self,
        mut session: Session,
        url: &RepositoryUrl,
        key: Option<&SshKey>,
    ) -> Result<Session, GitError> {
        let Some((host, port)) = url.host_port() else {
            return Ok(session);
        };
        let addresses = self
            .egress
            .resolve(&host, port)
            .await
            .map_err(|refusal| GitError::Refused(refusal.to_string()))?;
        let address = addresses
            .first()
            .ok_or_else(|| GitError::Unreachable(format!("{host} does not resolve.")))?
            .ip();
        if url.uses_ssh() {
            let parent = self.parent();
            let known_hosts = parent.join("known_hosts");
            let identity = key
                .map(|key| session.write_ssh_identity(&key.private_key))
                .transpose()
                .map_err(|e| io_error("prepare", &parent, e))?;
            let command = ssh_command(
                identity.as_deref(),
                Some(&known_hosts),
                Some((&host, &address.to_string())),
            )
            .map_err(|why| GitError::Other(format!("Cannot run ssh: {why}")))?;
            session = session.with_ssh(command);
        } else {
            session = session.pin_http(&host, port, address);
        }
        Ok(session)
    }

    /// The branches and tags of the last fetch with the commits they point at; branches
    /// first, then tags, each by name. Tags of something other than a commit are left out.
    pub async fn refs(&self) -> Result<Vec<GitRef>, GitError> {
        let session = self.local_session()?;
        // For an annotated tag, the `*` fields describe the commit it (finally) names.
        let format = [
            "%(refname)",
            "%(objecttype)",
            "%(objectname)",
            "%(committerdate:unix)",
            "%(subject)",
            "%(*objecttype)",
            "%(*objectname)",
            "%(*committerdate:unix)",
            "%(*subject)",
        ]
        .join("%00");
        let output = session
            .run(
                Run::new("for-each-ref", Some(&self.dir), self.local_timeout)
                    .arg("for-each-ref")
                    .arg(format!("--format={format}"))
                    .args(["refs/heads", "refs/tags"]),
            )
            .await?;
        if !output.status.success() {
            return Err(local_failure("list branches and tags", &output.stderr));
        }
        let mut refs: Vec<GitRef> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(parse_ref_line)
            .collect();
        refs.sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
        Ok(refs)
    }

    /// The commit a deploy of `reference` builds: a branch, a tag, `heads/<branch>` or
    /// `tags/<tag>` (to tell apart a branch and a tag of the same name), or a full or
    /// abbreviated commit id. A name that could mean two different commits is an error
    /// rather than a guess.
    pub async fn resolve(&self, reference: &GitRefName) -> Result<CommitId, GitError> {
        let session = self.local_session()?;
        let commit = if reference.looks_like_commit() {
            self.find_commit(&session, reference.as_str()).await?
        } else {
            FoundCommit::Missing
        };
        // A full commit id is never a branch name.
        if matches!(reference.as_str().len(), 40 | 64) {
            if let FoundCommit::One(id) = commit {
                return Ok(id);
            }
        }

        let candidates = reference.candidate_refs();
        let mut matches: Vec<(usize, String, CommitId)> = Vec::new();
        for r in self.refs().await? {
            let full = match r.kind {
                RefKind::Branch => format!("refs/heads/{}", r.name),
                RefKind::Tag => format!("refs/tags/{}", r.name),
            };
            if let Some(rank) = candidates.iter().position(|c| *c == full) {
                matches.push((rank, r.qualified_name(), r.commit));
            }
        }
        // Listed in git's order of precedence, as it would name them.
        matches.sort_by_key(|(rank, _, _)| *rank);
        let mut matches: Vec<(String, CommitId)> = matches
            .into_iter()
            .map(|(_, name, commit)| (name, commit))
            .collect();
        if let FoundCommit::One(id) = &commit {
            matches.push((format!("commit {}", id.short()), id.clone()));
        }
        let mut commits: Vec<&CommitId> = matches.iter().map(|(_, c)| c).collect();
        commits.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        commits.dedup();
        match (commits.as_slice(), commit) {
            ([one], _) => Ok((*one).clone()),
            ([], FoundCommit::Several) => Err(GitError::AmbiguousRef {
                reference: reference.to_string(),
                candidates: vec!["several commits (type more digits of the commit id)".into()],
            }),
            ([], _) => Err(GitError::RefNotFound {
                reference: reference.to_string(),
            }),
            _ => Err(GitError::AmbiguousRef {
                reference: reference.to_string(),
                candidates: matches.into_iter().map(|(name, _)| name).collect(),
            }),
        }
    }

    /// Writes the files of `commit` into `dest` (which must not exist, or be empty) for a
    /// build: the tree as git would check it out (executable bits, symbolic links), without
    /// a `.git` directory. Submodules are left as empty directories.
    pub async fn checkout(&self, commit: &CommitId, dest: &Path) -> Result<(), GitError> {
        let session = self.local_session()?;
        if dest.exists() {
            let empty = fs::read_dir(dest)
                .map_err(|e| io_error("read", dest, e))?
                .next()
                .is_none();
            if !empty {
                return Err(GitError::Other(format!(
                    "{} is not empty; a checkout goes into a fresh directory.",
                    dest.display()
                )));
            }
        }
        fs::create_dir_all(dest).map_err(|e| io_error("create", dest, e))?;
        let dest = dest.canonicalize().map_err(|e| io_error("find", dest, e))?;

        // A scratch index in the session, so that the mirror itself is never written to
        // and checkouts of the same mirror can run side by side.
        let index = session.scratch("index");
        let steps: [(&'static str, Vec<&str>); 2] = [
            ("read-tree", vec!["read-tree", commit.as_str()]),
            ("checkout-index", vec!["checkout-index", "--all"]),
        ];
        for (name, args) in steps {
            let output = session
                .run(
                    Run::new(name, Some(&self.dir), self.checkout_timeout)
                        .arg("--work-tree")
                        .arg(&dest)
                        .args(args)
                        .env("GIT_INDEX_FILE", index.as_os_str()),
                )
                .await?;
            if !output.status.success() {
                return Err(commit_failure(commit, "check out", &output.stderr));
            }
        }
        Ok(())
    }

    /// The text of the file at `path` (relative to the repository's root, e.g.
    /// `Dockerfile` or `docker/web.Dockerfile`) in `commit`, or `None` when there is no
    /// such file. A directory, symbolic link, submodule, binary or oversized file is an
    /// error that says so.
    pub async fn read_file(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<String>, GitError> {
        let path = repository_path(path)?;
        let session = self.local_session()?;
        let listed = session
            .run(
                Run::new("ls-tree", Some(&self.dir), self.local_timeout)
                    .args(["--literal-pathspecs", "ls-tree", "-l", "-z"])
                    .args([commit.as_str(), "--", path.as_str()]),
            )
            .await?;
        if !listed.status.success() {
            return Err(commit_failure(commit, "read", &listed.stderr));
        }
        // `<mode> <type> <object> <size>\t<path>\0`
        let listing = String::from_utf8_lossy(&listed.stdout);
        let Some((mode, kind, object, size)) = listing
            .split('\0')
            .filter_map(|entry| entry.split_once('\t'))
            .find(|(_, name)| *name == path)
            .and_then(|(info, _)| {
                let mut fields = info.split_whitespace();
                Some((
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                ))
            })
        else {
            return Ok(None);
        };
        let not_a_file = |what: &str| {
            Err(GitError::InvalidRef(format!(
                "{path} is {what} in commit {}, not a file.",
                commit.short()
            )))
        };
        match (kind, mode) {
            ("blob", "120000") => return not_a_file("a symbolic link"),
            ("blob", _) => {}
            ("tree", _) => return not_a_file("a directory"),
            _ => return not_a_file("a submodule"),
        }
        if size
            .parse::<u64>()
            .map_or(true, |size| size > MAX_READ_FILE)
        {
            return Err(GitError::Other(format!(
                "{path} is larger than {} MiB.",
                MAX_READ_FILE >> 20
            )));
        }
        let blob = session
            .run(
                Run::new("cat-file", Some(&self.dir), self.local_timeout)
                    .args(["cat-file", "blob", object]),
            )
            .await?;
        if !blob.status.success() {
            return Err(commit_failure(commit, "read", &blob.stderr));
        }
        String::from_utf8(blob.stdout).map(Some).map_err(|_| {
            GitError::Other(format!(
                "{path} in commit {} is not UTF-8 text.",
                commit.short()
            ))
        })
    }

    fn parent(&self) -> PathBuf {
        match self.dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    fn local_session(&self) -> Result<Session, GitError> {
        if !self.is_fetched() {
            return Err(GitError::NotFetched);
        }
        let parent = self.parent();
        Session::open(&parent).map_err(|e| io_error("prepare", &parent, e))
    }

    /// `prefix` as a commit: one, none, or more than one (too short to tell).
    async fn find_commit(&self, session: &Session, prefix: &str) -> Result<FoundCommit, GitError> {
        let output = session
            .run(
                Run::new("cat-file", Some(&self.dir), self.local_timeout)
                    .args(["cat-file", "--batch-check=%(objectname) %(objecttype)"])
                    .stdin(format!("{prefix}^{{commit}}\n").into_bytes()),
            )
            .await?;
        if !output.status.success() {
            return Err(local_failure("look up a commit", &output.stderr));
        }
        let answer = String::from_utf8_lossy(&output.stdout);
        let answer = answer.trim_end();
        Ok(match answer.split_once(' ') {
            Some((id, "commit")) => FoundCommit::One(
                CommitId::parse(id).map_err(|e| GitError::Other(format!("git answered {e}")))?,
            ),
            _ if answer.ends_with(" ambiguous") => FoundCommit::Several,
            _ => FoundCommit::Missing,
        })
    }

    /// A repository on this server may be any directory Berth can read, but not Berth's
    /// own mirrors: an app of one team must not read another team's code through them.
    fn refuse_berths_own_files(&self, path: &Path, url: &RepositoryUrl) -> Result<(), GitError> {
        let Ok(source) = path.canonicalize() else {
            return Err(GitError::RepositoryNotFound {
                url: url.to_string(),
            });
        };
        let parent = self.parent();
        let mirrors = parent.canonicalize().unwrap_or(parent);
        if source.starts_with(&mirrors) || mirrors.starts_with(&source) {
            return Err(GitError::InvalidUrl(format!(
                "{url} is inside Berth's own storage; name the repository the code is pushed to."
            )));
        }
        Ok(())
    }
}

enum FoundCommit {
    One(CommitId),
    Several,
    Missing,
}

fn is_bare_repository(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

fn parse_ref_line(line: &str) -> Option<GitRef> {
    let fields: Vec<&str> = line.split('\0').collect();
    let [refname, kind, id, date, subject, peeled_kind, peeled_id, peeled_date, peeled_subject] =
        fields.as_slice()
    else {
        return None;
    };
    let (id, date, subject) = match (*kind, *peeled_kind) {
        ("commit", _) => (id, date, subject),
        ("tag", "commit") => (peeled_id, peeled_date, peeled_subject),
        _ => return None,
    };
    let (name, kind) = if let Some(name) = refname.strip_prefix("refs/heads/") {
        (name, RefKind::Branch)
    } else {
        (refname.strip_prefix("refs/tags/")?, RefKind::Tag)
    };
    Some(GitRef {
        name: name.to_owned(),
        kind,
        commit: CommitId::parse(id).ok()?,
        subject: (*subject).to_owned(),
        committed_at: date.parse::<i64>().ok()?.saturating_mul(1000),
    })
}

/// A branch Berth pushes to: plain words separated by `-`, `_`, `.` or `/`, so that git
/// reads it as one branch name and never as an option or a revision expression.
fn branch_name(branch: &str) -> Result<(), GitError> {
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['-', '.'])
            && !part.ends_with(".lock")
            && !part.contains("..")
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if branch.len() <= 200 && branch.split('/').all(plain) {
        Ok(())
    } else {
        Err(GitError::InvalidRef(format!(
            "\"{}\" cannot be the name of a branch Berth pushes to.",
            branch.escape_debug()
        )))
    }
}

/// A path inside the repository as git names it: relative, `/`-separated, no `.` or `..`.
fn repository_path(input: &str) -> Result<String, GitError> {
    let invalid = |why: &str| {
        Err(GitError::InvalidRef(format!(
            "\"{}\" is not a path in the repository: {why}",
            input.escape_debug()
        )))
    };
    if input.chars().any(char::is_control) {
        return invalid("it contains a control character.");
    }
    let mut parts = Vec::new();
    for component in Path::new(input.trim()).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return invalid("give it relative to the repository's root, e.g. \"Dockerfile\".")
            }
            Component::ParentDir => return invalid("it cannot go up with \"..\"."),
        }
    }
    if parts.is_empty() {
        return invalid("name a file, e.g. \"Dockerfile\".");
    }
    Ok(parts.join("/"))
}

fn io_error(doing: &str, path: &Path, error: io::Error) -> GitError {
    GitError::Other(format!("Could not {doing} {}: {error}", path.display()))
}

fn local_failure(doing: &str, stderr: &str) -> GitError {
    GitError::Other(format!(
        "Could not {doing} in the mirror: {}",
        error::telling_line(stderr)
    ))
}

/// A failure naming a commit: usually one the mirror does not have (any more).
fn commit_failure(commit: &CommitId, doing: &str, stderr: &str) -> GitError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("not a tree object")
        || lower.contains("failed to unpack tree")
        || lower.contains("not a valid object")
        || lower.contains("bad object")
        || lower.contains("invalid object")
    {
        return GitError::RefNotFound {
            reference: commit.to_string(),
        };
    }
    GitError::Other(format!(
        "Could not {doing} commit {}: {}",
        commit.short(),
        error::telling_line(stderr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_are_relative_and_stay_inside() {
        assert_eq!(repository_path("Dockerfile").unwrap(), "Dockerfile");
        assert_eq!(
            repository_path("./docker//web.Dockerfile").unwrap(),
            "docker/web.Dockerfile"
        );
        for bad in ["", ".", "/etc/passwd", "../x", "a/../../x", "a\nb"] {
            assert!(repository_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn berths_branches_are_plain_names() {
        for good in ["berth-deploy-42", "berth/deploy_7", "v1.2"] {
            assert!(branch_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", "-f", "a..b", ".hidden", "x.lock", "a b", "a:b", "HEAD~1", "a//b", "a/", "^x",
        ] {
            assert!(branch_name(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn only_ssh_remotes_are_pushed_to() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = Repository::new(dir.path().join("app-1.git"));
        let key = SshKey {
            private_key: domain::Secret::new(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            ),
            fingerprint: "SHA256:abc".into(),
        };
        let commit = CommitId::parse("3338bc72ec0a831058dec38274371ea3019b3057").unwrap();
        for url in ["https://git.example.com/app.git", "/srv/git/app.git"] {
            let remote = RepositoryUrl::parse(url).unwrap();
            let error = mirror
                .push(&commit, &remote, "berth-deploy-1", &key)
                .await
                .unwrap_err();
            assert!(matches!(error, GitError::InvalidUrl(_)), "{url}: {error:?}");
        }
        let ssh = RepositoryUrl::parse("git@git.example.com:env/app.git").unwrap();
        let error = mirror.push(&commit, &ssh, "-f", &key).await.unwrap_err();
        assert!(matches!(error, GitError::InvalidRef(_)), "{error:?}");
        // Nothing to push from before the first fetch; nothing was contacted either.
        let error = mirror
            .push(&commit, &ssh, "berth-deploy-1", &key)
            .await
            .unwrap_err();
        assert!(matches!(error, GitError::NotFetched), "{error:?}");
    }

    #[test]
    fn for_each_ref_lines_become_refs() {
        let id = "3338bc72ec0a831058dec38274371ea3019b3057";
        let tag = "36aa5662697d3ac7f15ea02bbc848e4e6be1457b";
        let branch = format!("refs/heads/feature/x\0commit\0{id}\01700000000\0Add x\0\0\0\0");
        let r = parse_ref_line(&branch).unwrap();
        assert_eq!((r.name.as_str(), r.kind), ("feature/x", RefKind::Branch));
        assert_eq!(r.committed_at, 1_700_000_000_000);
        let annotated =
            format!("refs/tags/v1\0tag\0{tag}\0\0Release 1\0commit\0{id}\01700000001\0Add x");
        let r = parse_ref_line(&annotated).unwrap();
        assert_eq!(
            (r.kind, r.commit.as_str(), r.subject.as_str()),
            (RefKind::Tag, id, "Add x")
        );
        let tree_tag = format!("refs/tags/t\0tag\0{tag}\0\0T\0tree\0{id}\0\0");
        assert!(parse_ref_line(&tree_tag).is_none());
    }
}
