//! What a person names when they deploy from git ([`GitRefName`]), what a name resolves to
//! ([`CommitId`]), and what the app page lists ([`GitRef`]).

pub use domain::{CommitId, GitRefName};
use serde::{Deserialize, Serialize};

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
