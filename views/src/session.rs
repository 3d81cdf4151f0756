//! Who is signed in, their teams, members, API tokens and invitations; and the once-only
//! messages (flash) a page shows after a form post.

use crate::credentials::VerifyReport;
use domain::Role;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Sent back with every form; see the server's CSRF middleware.
    pub csrf_token: String,
    pub viewer: Option<Viewer>,
    /// Where people reach Berth, e.g. for the API examples.
    pub public_url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub user_id: i64,
    pub email: String,
    pub teams: Vec<TeamSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamSummary {
    pub handle: String,
    pub name: String,
    pub role: Role,
    /// The team's setting: viewers may read runtime and operation logs (off by default).
    #[serde(default)]
    pub viewers_read_logs: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRow {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
    /// Invited, and not a member until they accept (or choose a password, when they had no
    /// account).
    pub pending: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamMembers {
    pub team: TeamSummary,
    pub you: i64,
    pub members: Vec<MemberRow>,
    /// The team's ssh deploy key, once it has one.
    pub deploy_key: Option<DeployKeyRow>,
    pub flash: Option<Flash>,
}

/// The public half of a team's ssh deploy key: what owners add to their repositories as a
/// read-only deploy key. (The private half never leaves the server.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployKeyRow {
    /// One line of `authorized_keys`: `ssh-ed25519 AAAA… berth:<team>`.
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l`, GitHub and GitLab show it.
    pub fingerprint: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokensPage {
    pub tokens: Vec<TokenRow>,
    pub flash: Option<Flash>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub email: String,
    pub team_name: String,
    pub team_handle: String,
    /// The role the person gets in the team.
    #[serde(default)]
    pub role: Option<domain::Role>,
}

/// A message for the page after a form post, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Flash {
    /// A member without an account was added: the link lets them choose a password.
    InviteLink {
        email: String,
        url: String,
    },
    /// A new API token: the only time it is ever shown.
    NewToken {
        name: String,
        token: String,
    },
    /// The outcome of verifying a credential.
    Verification(VerifyReport),
    /// The outcome of checking a Dockerfile's base images.
    BaseCheck(crate::apps::BaseCheckReport),
    Notice(String),
}

/// An invitation to join a team, as the invited person sees it (they Accept or Decline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingInvitation {
    pub id: i64,
    pub team_handle: String,
    pub team_name: String,
    pub role: Role,
    /// The e-mail of the owner who invited them.
    pub invited_by: String,
    pub created_at: i64,
}

/// What the sign-up page says applies on this server (`BERTH_SIGNUP`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpMode {
    /// `closed`, `invite` or `open`.
    pub policy: String,
    /// No account exists yet: this sign-up makes the first one, whatever the policy.
    pub first_account: bool,
    /// Open sign-up proves the address first: the account exists once the link e-mailed to
    /// it is opened (an SMTP server is configured).
    pub confirms_email: bool,
}

/// A sign-up waiting for its address to be proved, as its confirmation link shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignUpInfo {
    pub email: String,
    pub team_name: String,
    pub team_handle: String,
}

/// `/teams/{team}/platforms`: where the team's apps can run besides this server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlatformsPage {
    pub team: TeamSummary,
    pub aptible: crate::api::PlatformView,
    /// The team's deploy key (its public half), which Aptible needs as an SSH key for Berth
    /// to push Dockerfile apps there; `None` while the team has none.
    pub deploy_key: Option<DeployKeyRow>,
}
