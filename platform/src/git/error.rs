use std::time::Duration;

/// Why git work for an app failed, in words the person at the deploy form can act on. Each
/// variant is one kind the UI and API tell apart ([`GitError::kind`]).
///
/// No variant ever holds a credential: URLs cannot carry one (see
/// [`RepositoryUrl`](super::RepositoryUrl)), tokens reach git only through its askpass
/// helper, git's own output is scrubbed of the token before it is quoted here, and a deploy
/// key is named only by its (public) fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("{0}")]
    InvalidUrl(String),

    /// A branch, tag, commit or path as typed cannot be used.
    #[error("{0}")]
    InvalidRef(String),

    #[error(
        "There is no git repository at {url}. Check the URL (some hosts also answer this way \
         when the credentials may not read the repository)."
    )]
    RepositoryNotFound { url: String },

    #[error(
        "The repository has no branch, tag or commit named \"{reference}\". If it was pushed \
         just now, fetch the repository again."
    )]
    RefNotFound { reference: String },

    #[error(
        "\"{reference}\" could mean {}; name one of them.",
        .candidates.join(" or ")
    )]
    AmbiguousRef {
        reference: String,
        candidates: Vec<String>,
    },

    /// Credentials are missing, wrong, or lack read access; the message says which.
    #[error("{0}")]
    Auth(String),

    /// The remote refused to let the team's deploy key push: it may read there at most.
    #[error(
        "The SSH server refused the team's deploy key ({fingerprint}) for pushing to {url}: \
         the key needs write access there."
    )]
    PushKeyRefused { fingerprint: String, url: String },

    /// DNS, connection or TLS failure.
    #[error("{0}")]
    Unreachable(String),

    /// The egress guard refused the repository's address, or the repository is on this
    /// server outside the directories the operator allows. Nothing was contacted or read.
    #[error("{0}")]
    Refused(String),

    #[error("git {command} did not finish within {} seconds and was stopped.", .after.as_secs())]
    Timeout {
        command: &'static str,
        after: Duration,
    },

    #[error("The repository has not been fetched yet.")]
    NotFetched,

    #[error(
        "git is not installed on this server (no `git` on PATH); install it to deploy from \
         source."
    )]
    GitNotInstalled,

    #[error(
        "ssh-keygen is not installed on this server (no `ssh-keygen` on PATH); install the \
         openssh-client package to use ssh repositories."
    )]
    SshNotInstalled,

    #[error("{0}")]
    Other(String),
}

impl GitError {
    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_url",
            Self::InvalidRef(_) => "invalid_ref",
            Self::RepositoryNotFound { .. } => "repository_not_found",
            Self::RefNotFound { .. } => "ref_not_found",
            Self::AmbiguousRef { .. } => "ambiguous_ref",
            Self::Auth(_) | Self::PushKeyRefused { .. } => "auth",
            Self::Unreachable(_) => "unreachable",
            Self::Refused(_) => "refused",
            Self::Timeout { .. } => "timeout",
            Self::NotFetched => "not_fetched",
            Self::GitNotInstalled => "git_not_installed",
            Self::SshNotInstalled => "ssh_not_installed",
            Self::Other(_) => "other",
        }
    }
}

/// How a fetch authenticated, for the message that says why it was refused.
#[derive(Clone, Copy, Debug)]
pub(super) enum Authenticated<'a> {
    Nothing,
    /// A user name and token through the askpass hook.
    Credentials,
    /// The team's ssh deploy key with this fingerprint.
    DeployKey(&'a str),
}

/// Reads why a push with the deploy key `fingerprint` failed from git's (`LC_ALL=C`) error
/// output: a refused key is said as such; the rest reads as for a fetch.
pub(super) fn push_failure(stderr: &str, url: &str, fingerprint: &str) -> GitError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("permission denied (publickey") {
        return GitError::PushKeyRefused {
            fingerprint: fingerprint.to_owned(),
            url: url.to_owned(),
        };
    }
    match transfer_failure(
        stderr,
        url,
        Authenticated::DeployKey(fingerprint),
        "push to",
    ) {
        GitError::Other(_) => {
            GitError::Other(format!("Pushing to {url} failed: {}", telling_line(stderr)))
        }
        other => other,
    }
}

/// Reads why a fetch failed from git's (redacted, `LC_ALL=C`) error output.
pub(super) fn fetch_failure(stderr: &str, url: &str, with: Authenticated<'_>) -> GitError {
    transfer_failure(stderr, url, with, "fetch from")
}

/// Why a fetch or push (`doing`: "fetch from", "push to") failed.
fn transfer_failure(stderr: &str, url: &str, with: Authenticated<'_>, doing: &str) -> GitError {
    let had_credentials = matches!(with, Authenticated::Credentials);
    let lower = stderr.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    let reason = telling_line(stderr);

    if has("could not read username") || has("could not read password") {
        return GitError::Auth(if had_credentials {
            format!(
                "{url} asked for credentials again, or for another host's; check the URL \
                 and the user name and token."
            )
        } else {
            format!(
                "{url} requires credentials: enter a user name and a token with read access \
                 to the repository."
            )
        });
    }
    if has("authentication failed") || has("http basic: access denied") || has("error: 401") {
        return GitError::Auth(format!(
            "The git server rejected the user name or token for {url}; check them, and that \
             the token has not expired."
        ));
    }
    if has("error: 403") {
        return GitError::Auth(format!(
            "The git server refused access to {url} (HTTP 403): the credentials may not read \
             this repository."
        ));
    }
    if has("permission denied (publickey") || has("permission denied, please try again") {
        return GitError::Auth(match with {
            Authenticated::DeployKey(fingerprint) => format!(
                "The SSH server refused the team's deploy key ({fingerprint}) for {url}: add \
                 the team's public key (the team's Members page, under Deploy key) to the \
                 repository as a read-only deploy key. A key generated anew replaces the old \
                 one: add the new public key there too."
            ),
            _ => format!(
                "The SSH server refused Berth's key ({reason}); Berth uses only the team's \
                 deploy key, never the SSH keys of the account it runs as."
            ),
        });
    }
    if has("host key verification failed") {
        return GitError::Auth(format!(
            "The SSH host key of {url} is not the one Berth recorded on its first \
             connection (in known_hosts in Berth's git directory); if the server's key \
             really changed, the operator removes the old one there."
        ));
    }
    if has("repository not found")
        || has("does not appear to be a git repository")
        || has("error: 404")
        || (has("repository") && has("not found"))
        || has("not a git repository")
        || has("no such file or directory")
    {
        return GitError::RepositoryNotFound {
            url: url.to_owned(),
        };
    }
    if has("could not resolve host")
        || has("could not resolve hostname")
        || has("failed to connect")
        || has("connection refused")
        || has("connection timed out")
        || has("couldn't connect")
        || has("network is unreachable")
        || has("no route to host")
        || has("ssl certificate")
        || has("ssl connect")
        || has("tls connect")
        || has("gnutls")
        || has("certificate")
        || has("unable to access")
        || has("connection reset")
        || has("empty reply from server")
        || has("the remote end hung up")
    {
        return GitError::Unreachable(format!("Cannot {doing} {url}: {reason}"));
    }
    GitError::Other(format!("Fetching {url} failed: {reason}"))
}

/// The line that says most: git's last `fatal:` (or `error:`) line, else the last line.
pub(super) fn telling_line(stderr: &str) -> String {
    // `remote:` lines are the server's own text: never relayed to users.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:") && !l.starts_with("remote:"))
        .collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("fatal:"))
        .or_else(|| lines.iter().rev().find(|l| l.starts_with("error:")))
        .or(lines.last())
        .copied()
        .unwrap_or("git gave no reason");
    line.trim_start_matches("fatal: ")
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gits_messages_become_kinds() {
        let url = "https://git.example.com/app.git";
        let cases = [
            ("fatal: could not read Username for 'https://git.example.com': terminal prompts disabled", "auth"),
            ("remote: Invalid username or password.\nfatal: Authentication failed for 'https://git.example.com/app.git/'", "auth"),
            ("fatal: unable to access 'https://git.example.com/app.git/': The requested URL returned error: 403", "auth"),
            ("git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.", "auth"),
            ("remote: Repository not found.\nfatal: repository 'https://git.example.com/app.git/' not found", "repository_not_found"),
            ("fatal: '/srv/git/x.git' does not appear to be a git repository\nfatal: Could not read from remote repository.", "repository_not_found"),
            ("fatal: unable to access 'https://git.example.com/app.git/': Could not resolve host: git.example.com", "unreachable"),
            ("fatal: unable to access 'https://git.example.com/app.git/': Failed to connect to git.example.com port 443 after 1 ms: Couldn't connect to server", "unreachable"),
            ("fatal: unable to access 'https://git.example.com/app.git/': SSL certificate problem: self-signed certificate", "unreachable"),
            ("fatal: something new", "other"),
        ];
        for (stderr, kind) in cases {
            assert_eq!(
                fetch_failure(stderr, url, Authenticated::Nothing).kind(),
                kind,
                "{stderr}"
            );
        }
    }

    #[test]
    fn a_refused_deploy_key_is_named_by_its_fingerprint() {
        let stderr = "berth-git@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.";
        let error = fetch_failure(
            stderr,
            "ssh://git@host/app.git",
            Authenticated::DeployKey("SHA256:abc"),
        );
        assert_eq!(error.kind(), "auth");
        let message = error.to_string();
        assert!(message.contains("SHA256:abc"), "{message}");
        assert!(message.contains("deploy key"), "{message}");
    }

    #[test]
    fn a_deploy_key_refused_for_a_push_says_it_needs_write_access() {
        let url = "git@beta.aptible.com:production/web.git";
        let refused = push_failure(
            "git@beta.aptible.com: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            url,
            "SHA256:abc",
        );
        assert_eq!(
            refused,
            GitError::PushKeyRefused {
                fingerprint: "SHA256:abc".into(),
                url: url.into()
            }
        );
        assert_eq!(refused.kind(), "auth");
        let unreachable = push_failure(
            "ssh: connect to host 203.0.113.7 port 22: Connection refused\nfatal: Could not read from remote repository.",
            url,
            "SHA256:abc",
        );
        assert_eq!(unreachable.kind(), "unreachable");
        assert!(
            unreachable.to_string().starts_with("Cannot push to"),
            "{unreachable}"
        );
        let rejected = push_failure(
            "error: failed to push some refs to 'git@beta.aptible.com:production/web.git'",
            url,
            "SHA256:abc",
        );
        assert_eq!(rejected.kind(), "other");
        assert!(rejected.to_string().starts_with("Pushing to"), "{rejected}");
    }

    #[test]
    fn the_fatal_line_is_quoted() {
        assert_eq!(
            telling_line("warning: x\nerror: first\nfatal: the reason\nhint: try"),
            "the reason"
        );
        assert_eq!(telling_line(""), "git gave no reason");
        assert_eq!(
            telling_line("remote: <html>internal admin page</html>"),
            "git gave no reason"
        );
    }
}
