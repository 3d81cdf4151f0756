//! What a person names when they deploy from git ([`GitRefName`]), what a name resolves to
//! ([`CommitId`]), and what the app page lists ([`GitRef`]).

use super::GitError;
use serde::{Deserialize, Serialize};
use std::fmt;

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
    pub fn parse(input: &str) -> Result<Self, GitError> {
        let value = input.trim();
        let invalid = |why: &str| {
            Err(GitError::InvalidRef(format!(
                "\"{}\" is not a branch, tag or commit: {why}",
                value.escape_debug()
            )))
        };
        if value.is_empty() {
            return Err(GitError::InvalidRef(
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
    pub(crate) fn candidate_refs(&self) -> Vec<String> {
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
    pub(crate) fn looks_like_commit(&self) -> bool {
        (4..=64).contains(&self.0.len()) && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

impl TryFrom<String> for GitRefName {
    type Error = GitError;
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
    pub fn parse(input: &str) -> Result<Self, GitError> {
        let value = input.trim();
        let hex = value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex && (value.len() == 40 || value.len() == 64) {
            Ok(Self(value.to_owned()))
        } else {
            Err(GitError::InvalidRef(format!(
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
    type Error = GitError;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    Branch,
    Tag,
}

/// A branch or tag of the fetched repository, with the commit it points at (for an
/// annotated tag: the commit the tag object names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRef {
    /// The short name: `main`, `feature/login`, `v1.2`.
    pub name: String,
    pub kind: RefKind,
    pub commit: CommitId,
    /// The first line (paragraph) of the commit message.
    pub subject: String,
    /// The committer date, in milliseconds since the Unix epoch.
    pub committed_at: i64,
}

impl GitRef {
    /// The name to deploy it by without ambiguity: `heads/main` or `tags/v1.2`.
    pub fn qualified_name(&self) -> String {
        match self.kind {
            RefKind::Branch => format!("heads/{}", self.name),
            RefKind::Tag => format!("tags/{}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let error = GitRefName::parse(name).unwrap_err();
            assert!(
                matches!(error, GitError::InvalidRef(_)),
                "{name:?}: {error:?}"
            );
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
}
