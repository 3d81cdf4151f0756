//! What a Dockerfile app's source is made of, as people type it: the repository
//! ([`RepositoryUrl`]), a branch, tag or commit to deploy ([`GitRefName`]) and the commit it
//! resolved to ([`CommitId`]). Each is parsed once at the edge; git only ever sees values
//! that passed these rules.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::{fmt, path::PathBuf};

/// A branch, tag or commit as a person types it for a deploy: `main`, `feature/login`,
/// `v1.2`, `heads/main`, `tags/v1.2`, `refs/heads/main`, `3f9c2a1` or a full commit id.
///
/// The rules are git's own (`git check-ref-format`) and stricter: the name reaches git as
/// an argument, so a leading `-` (which git would read as an option), whitespace, control
/// characters and git's revision syntax (`~`, `^`, `:`, `@{`, `..`) are refused here rather
/// than interpreted by git.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GitRefName(String);

/// Git itself allows longer names, but no branch a person types is this long.
const MAX_REF_NAME: usize = 255;

impl GitRefName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        let invalid = |why: &str| {
            Err(ParseError::new(format!(
                "\"{}\" is not a branch, tag or commit: {why}",
                value.escape_debug()
            )))
        };
        if value.is_empty() {
            return Err(ParseError::new(
                "Name a branch, tag or commit to deploy, e.g. \"main\".".to_owned(),
            ));
        }
        if value.len() > MAX_REF_NAME {
            return invalid(&format!("use at most {MAX_REF_NAME} characters."));
        }
        if value.starts_with('-') {
            return invalid("a name cannot start with '-'.");
        }
        if value.chars().any(|c| c.is_control()) {
            return invalid("it contains a control character.");
        }
        if value.chars().any(char::is_whitespace) {
            return invalid("git names cannot contain spaces.");
        }
        if let Some(c) = value
            .chars()
            .find(|c| matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
        {
            return invalid(&format!("git names cannot contain '{c}'."));
        }
        if value.contains("..") {
            return invalid("git names cannot contain \"..\".");
        }
        if value.contains("@{") || value == "@" {
            return invalid("git names cannot contain \"@{\" or be \"@\".");
        }
        if value.starts_with('/') || value.ends_with('/') || value.contains("//") {
            return invalid("'/' separates parts of a name, as in \"feature/login\".");
        }
        if value.ends_with('.') {
            return invalid("a name cannot end with '.'.");
        }
        for part in value.split('/') {
            if part.starts_with('.') {
                return invalid("no part of a name can start with '.'.");
            }
            if part.ends_with(".lock") {
                return invalid("no part of a name can end with \".lock\".");
            }
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full ref names this could mean, in git's order of precedence (`git help
    /// revisions`), limited to branches and tags: a mirror holds nothing else.
    pub fn candidate_refs(&self) -> Vec<String> {
        let name = self.as_str();
        let mut candidates = Vec::new();
        if name.starts_with("refs/") {
            candidates.push(name.to_owned());
        }
        for prefix in ["refs/", "refs/tags/", "refs/heads/"] {
            candidates.push(format!("{prefix}{name}"));
        }
        candidates.retain(|r| r.starts_with("refs/heads/") || r.starts_with("refs/tags/"));
        candidates.dedup();
        candidates
    }

    /// Whether this could be an abbreviated or full commit id. Git needs 4 digits at least.
    pub fn looks_like_commit(&self) -> bool {
        (4..=64).contains(&self.0.len()) && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

impl TryFrom<String> for GitRefName {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GitRefName> for String {
    fn from(value: GitRefName) -> Self {
        value.0
    }
}

impl fmt::Display for GitRefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full commit id: 40 lower-case hex digits (64 in SHA-256 repositories). What a deploy
/// records, so that it can be built again exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

impl CommitId {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        let hex = value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex && (value.len() == 40 || value.len() == 64) {
            Ok(Self(value.to_owned()))
        } else {
            Err(ParseError::new(format!(
                "\"{}\" is not a full commit id (40 lower-case hex digits).",
                value.escape_debug()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 7 digits, as git and code hosts show commits.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl TryFrom<String> for CommitId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommitId> for String {
    fn from(value: CommitId) -> Self {
        value.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository location git may fetch from:
///
/// - `https://host/org/app.git`;
/// - `http://host/org/app.git` — **insecure**: the code and any credentials travel in
///   plain text ([`RepositoryUrl::is_insecure`] lets the UI say so);
/// - `ssh://[user@]host[:port]/path` and the scp-like `user@host:path`, authenticated with
///   with a key of Berth's own (never the host account's keys, configuration or agent);
/// - `file:///srv/git/app.git` or `/srv/git/app.git`, a repository on this server.
///
/// Refused: a user name or password inside the URL (they would be stored, logged and shown
/// in plain text — credentials have fields of their own), query strings, relative paths,
/// git's remote-helper forms (`ext::sh -c …` runs a command, `fd::` reads a descriptor),
/// other transports (`git://` has no authentication or encryption), and anything git could
/// read as an option (a leading `-`, also in a host or user name, where ssh would read it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryUrl {
    url: String,
    form: Form,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Form {
    Https,
    Http,
    Ssh,
    Local,
}

const EXAMPLES: &str = "https://github.com/org/app.git, git@github.com:org/app.git, \
                        ssh://git@host/org/app.git, file:///srv/git/app.git or /srv/git/app.git";

fn invalid<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::new(message))
}

impl RepositoryUrl {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let url = input.trim();
        if url.is_empty() {
            return invalid(format!("Enter the repository's URL, e.g. {EXAMPLES}."));
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return invalid("Remove the spaces or control characters from the repository URL.");
        }
        if url.starts_with('-') {
            return invalid("A repository URL cannot start with '-'.");
        }
        // `<transport>::<address>` asks git for a remote helper; `ext::` runs any command.
        if let Some(at) = url.find("::") {
            if url[..at]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return invalid(format!(
                    "\"{}::\" URLs (git remote helpers) are not allowed; use {EXAMPLES}.",
                    &url[..at]
                ));
            }
        }
        let mut normalized = url.to_owned();
        let form = if let Some((scheme, rest)) = url.split_once("://") {
            // Git names the origin in lower case when it asks for credentials.
            normalized = format!("{}://{rest}", scheme.to_ascii_lowercase());
            match scheme.to_ascii_lowercase().as_str() {
                "https" => {
                    check_http(rest)?;
                    Form::Https
                }
                "http" => {
                    check_http(rest)?;
                    Form::Http
                }
                "ssh" | "git+ssh" | "ssh+git" => {
                    check_ssh(rest)?;
                    Form::Ssh
                }
                "file" => {
                    if !rest.starts_with('/') {
                        return invalid(
                            "A file URL names a path on this server: file:///srv/git/app.git \
                             (three slashes).",
                        );
                    }
                    check_local_path(rest)?;
                    Form::Local
                }
                "git" => {
                    return invalid(
                        "git:// has neither authentication nor encryption; use the https:// \
                         or ssh:// URL of the repository.",
                    )
                }
                _ => return invalid(format!("Unsupported kind of URL; use {EXAMPLES}.")),
            }
        } else if url.starts_with('/') {
            check_local_path(url)?;
            Form::Local
        } else if let Some((authority, path)) = scp_like(url) {
            check_user_host(authority)?;
            // `user:password@host:path` would reach here as host `user`.
            if path.split('/').next().unwrap_or_default().contains('@') {
                return invalid(
                    "Remove the password from the URL: ssh URLs authenticate with a key, not \
                     a password.",
                );
            }
            if path.is_empty() {
                return invalid("Add the repository's path after ':', as in git@host:org/app.git.");
            }
            Form::Ssh
        } else {
            return invalid(format!(
                "Use a full URL or an absolute path (starting with /), e.g. {EXAMPLES}."
            ));
        };
        Ok(Self {
            url: normalized,
            form,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Plain http: code and credentials can be read and changed on the way.
    pub fn is_insecure(&self) -> bool {
        self.form == Form::Http
    }

    /// https or http: the only forms that use read credentials.
    pub fn uses_http(&self) -> bool {
        matches!(self.form, Form::Https | Form::Http)
    }

    /// `scheme://host[:port]` of an http(s) URL, as git names it when it asks for
    /// credentials.
    pub fn http_origin(&self) -> Option<String> {
        if !self.uses_http() {
            return None;
        }
        let (scheme, rest) = self.url.split_once("://")?;
        let host = rest.split('/').next().unwrap_or_default();
        Some(format!("{scheme}://{host}"))
    }

    /// ssh: the scp-like form or `ssh://`.
    pub fn uses_ssh(&self) -> bool {
        self.form == Form::Ssh
    }

    /// The host (an IPv6 address without brackets) and port of an http(s) or ssh URL, the
    /// port being the scheme's default when the URL names none (443, 80, 22).
    pub fn host_port(&self) -> Option<(String, u16)> {
        let (authority, default) = match self.form {
            Form::Https | Form::Http | Form::Ssh if self.url.contains("://") => {
                let (scheme, rest) = self.url.split_once("://")?;
                let authority = rest.split('/').next().unwrap_or_default();
                let default = match scheme {
                    "https" => 443,
                    "http" => 80,
                    _ => 22,
                };
                (authority, default)
            }
            Form::Ssh => (scp_like(&self.url)?.0, 22),
            _ => return None,
        };
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (address, after) = v6.split_once(']')?;
            (address, after.strip_prefix(':'))
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        let port = match port {
            Some(port) => port.parse().ok()?,
            None => default,
        };
        Some((host.to_ascii_lowercase(), port))
    }

    /// The directory of a repository on this server.
    pub fn local_path(&self) -> Option<PathBuf> {
        if self.form != Form::Local {
            return None;
        }
        let path = match self.url.split_once("://") {
            Some((_, rest)) => rest,
            None => self.url.as_str(),
        };
        Some(PathBuf::from(path))
    }
}

fn check_http(rest: &str) -> Result<(), ParseError> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return invalid(
            "Remove the user name and password (or token) from the URL and enter them in the \
             repository credentials instead: a URL is stored and shown in plain text.",
        );
    }
    if rest.contains('?') || rest.contains('#') {
        return invalid(
            "Remove the query (?…) or fragment (#…) from the repository URL; if it holds a \
             token, enter the token in the repository credentials instead.",
        );
    }
    check_host(authority)?;
    if path.trim_matches('/').is_empty() {
        return invalid("Add the repository's path to the URL, as in https://host/org/app.git.");
    }
    Ok(())
}

fn check_ssh(rest: &str) -> Result<(), ParseError> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    check_user_host(authority)?;
    if path.trim_matches('/').is_empty() {
        return invalid("Add the repository's path to the URL, as in ssh://git@host/org/app.git.");
    }
    Ok(())
}

/// `[user@]host[:port]`: a user name (ssh's `git@`) is fine, a password is not.
fn check_user_host(authority: &str) -> Result<(), ParseError> {
    let host = match authority.rsplit_once('@') {
        Some((user, host)) => {
            if user.contains(':') {
                return invalid(
                    "Remove the password from the URL: ssh URLs authenticate with a key, not \
                     a password.",
                );
            }
            if user.is_empty()
                || user.starts_with('-')
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return invalid(format!("\"{user}\" is not a valid SSH user name."));
            }
            host
        }
        None => authority,
    };
    check_host(host)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; never starting with '-'.
fn check_host(authority: &str) -> Result<(), ParseError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((address, after)) if !address.is_empty() => {
                if !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return invalid(format!("\"[{address}]\" is not an IPv6 address."));
                }
                (address, after.strip_prefix(':'))
            }
            _ => return invalid("Close the IPv6 address with ']'."),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok {
        return invalid(format!(
            "\"{authority}\" is not a host name; use letters, digits, dots and hyphens."
        ));
    }
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()) {
            return invalid(format!("\"{port}\" is not a port number."));
        }
    }
    Ok(())
}

fn check_local_path(path: &str) -> Result<(), ParseError> {
    if path.contains(['?', '#', '%']) {
        return invalid("Remove '?', '#' and '%' from the repository path.");
    }
    if path.split('/').any(|part| part == "..") {
        return invalid("Write the repository path without \"..\".");
    }
    Ok(())
}

/// `[user@]host:path` as git reads it: a ':' with no '/' before it.
fn scp_like(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    if url[..colon].contains('/') {
        return None;
    }
    Some((&url[..colon], &url[colon + 1..]))
}

impl TryFrom<String> for RepositoryUrl {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RepositoryUrl> for String {
    fn from(value: RepositoryUrl) -> Self {
        value.url
    }
}

impl fmt::Display for RepositoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_of_remote_repositories() {
        let cases = [
            (
                "https://Git.Example.com/org/app.git",
                Some(("git.example.com", 443)),
            ),
            ("http://127.0.0.1:8080/app.git", Some(("127.0.0.1", 8080))),
            ("https://[::1]:8443/app.git", Some(("::1", 8443))),
            (
                "ssh://git@host.example:2222/org/app.git",
                Some(("host.example", 2222)),
            ),
            ("git@github.com:org/app.git", Some(("github.com", 22))),
            ("file:///srv/git/app.git", None),
            ("/srv/git/app.git", None),
        ];
        for (url, expected) in cases {
            let parsed = RepositoryUrl::parse(url).unwrap();
            assert_eq!(
                parsed.host_port(),
                expected.map(|(h, p)| (h.to_owned(), p)),
                "{url}"
            );
        }
    }

    #[test]
    fn names_people_use_are_accepted() {
        for name in [
            "main",
            "feature/login",
            "v1.2",
            "release-2024.01",
            "heads/main",
            "tags/v1.2",
            "refs/heads/main",
            "3f9c2a1",
            "user@host-branch",
        ] {
            assert_eq!(GitRefName::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(GitRefName::parse("  main \n").unwrap().as_str(), "main");
    }

    #[test]
    fn option_like_revision_syntax_and_malformed_names_are_refused() {
        for name in [
            "",
            "   ",
            "-c",
            "--upload-pack=touch /tmp/x",
            "main branch",
            "main\u{7}",
            "tab\there",
            "main~1",
            "main^",
            "HEAD^{tree}",
            "main:Dockerfile",
            "a..b",
            "main@{yesterday}",
            "@",
            "/main",
            "main/",
            "feature//x",
            ".hidden",
            "feature/.x",
            "main.lock",
            "main.",
            "ma*n",
            "ma?n",
            "ma[n",
            "ma\\n",
            &"x".repeat(256),
        ] {
            assert!(GitRefName::parse(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn candidates_follow_gits_precedence() {
        let name = GitRefName::parse("main").unwrap();
        assert_eq!(name.candidate_refs(), ["refs/tags/main", "refs/heads/main"]);
        let name = GitRefName::parse("heads/main").unwrap();
        assert_eq!(
            name.candidate_refs(),
            [
                "refs/heads/main",
                "refs/tags/heads/main",
                "refs/heads/heads/main"
            ]
        );
        let name = GitRefName::parse("refs/tags/v1").unwrap();
        assert_eq!(
            name.candidate_refs(),
            [
                "refs/tags/v1",
                "refs/tags/refs/tags/v1",
                "refs/heads/refs/tags/v1"
            ]
        );
    }

    #[test]
    fn commit_ids_are_full_lower_case_hex() {
        let id = CommitId::parse("3338bc72ec0a831058dec38274371ea3019b3057").unwrap();
        assert_eq!(id.short(), "3338bc7");
        for bad in [
            "3338bc7",
            "3338BC72EC0A831058DEC38274371EA3019B3057",
            "-338bc72ec0a831058dec38274371ea3019b3057",
            "zz38bc72ec0a831058dec38274371ea3019b3057",
        ] {
            assert!(CommitId::parse(bad).is_err(), "{bad}");
        }
    }
    #[test]
    fn the_forms_git_users_write_are_accepted() {
        assert_eq!(
            RepositoryUrl::parse("HTTPS://github.com/org/app.git")
                .unwrap()
                .as_str(),
            "https://github.com/org/app.git"
        );
        for url in [
            "https://github.com/org/app.git",
            "https://git.example.com:8443/group/sub/app",
            "http://127.0.0.1:3000/app.git",
            "https://[::1]:8443/app.git",
            "ssh://git@github.com/org/app.git",
            "ssh://git@host:2222/org/app.git",
            "git+ssh://host/org/app.git",
            "git@github.com:org/app.git",
            "host.example.com:org/app.git",
            "file:///srv/git/app.git",
            "/srv/git/app.git",
        ] {
            assert_eq!(RepositoryUrl::parse(url).unwrap().as_str(), url);
        }
    }

    #[test]
    fn dangerous_or_ambiguous_urls_are_refused() {
        for url in [
            "",
            "https://user:token@github.com/org/app.git",
            "https://token@github.com/org/app.git",
            "https://github.com/org/app.git?private_token=abc",
            "https://github.com",
            "https://-oProxyCommand=x/app.git",
            "ssh://-oProxyCommand=touch%20x/app.git",
            "ssh://-user@host/app.git",
            "ssh://user:pass@host/app.git",
            "user:pass@host:app.git",
            "-oProxyCommand=x:app.git",
            "--upload-pack=touch /tmp/x",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::17",
            "git://github.com/org/app.git",
            "ftp://host/app.git",
            "file://host/app.git",
            "relative/path",
            "app.git",
            "/srv/../etc/app.git",
            "/srv/git/app\n.git",
            "https://host/app .git",
            "git@host:",
        ] {
            assert!(RepositoryUrl::parse(url).is_err(), "{url:?}");
        }
    }

    #[test]
    fn embedded_credentials_are_refused_without_echoing_them() {
        let error = RepositoryUrl::parse("https://bot:s3cr3t-token@github.com/org/app.git")
            .unwrap_err()
            .to_string();
        assert!(error.contains("credentials"), "{error}");
        assert!(!error.contains("s3cr3t-token"), "{error}");
    }

    #[test]
    fn what_the_rest_of_berth_asks_about_a_url() {
        let http = RepositoryUrl::parse("http://127.0.0.1:3000/app.git").unwrap();
        assert!(http.is_insecure() && http.uses_http());
        assert_eq!(http.http_origin().unwrap(), "http://127.0.0.1:3000");
        let https = RepositoryUrl::parse("https://github.com/org/app.git").unwrap();
        assert!(!https.is_insecure());
        let file = RepositoryUrl::parse("file:///srv/git/app.git").unwrap();
        assert_eq!(
            file.local_path().unwrap(),
            PathBuf::from("/srv/git/app.git")
        );
        assert!(file.http_origin().is_none());
        let ssh = RepositoryUrl::parse("git@github.com:org/app.git").unwrap();
        assert!(ssh.local_path().is_none() && !ssh.uses_http());
    }
}
