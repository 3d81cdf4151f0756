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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRow {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
    /// Invited but has not chosen a password yet.
    pub pending: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamMembers {
    pub team: TeamSummary,
    pub you: i64,
    pub members: Vec<MemberRow>,
    pub flash: Option<Flash>,
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
    Notice(String),
}
