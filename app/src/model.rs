//! What server functions send to the browser. Plain data, no secrets beyond the ones a
//! person must see exactly once (a new API token, an invitation link).

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
pub struct TeamSummary {
    pub handle: String,
    pub name: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// A registry credential as pages show it: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialRow {
    pub name: String,
    pub registry: String,
    pub kind: String,
    pub username: String,
    pub note: Option<String>,
    pub secret_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_verified: Option<CheckRow>,
    pub last_used: Option<CheckRow>,
    pub expires_at: Option<i64>,
}

/// When something was checked or used, whether it worked, and what happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRow {
    pub at: i64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialsPage {
    pub team: TeamSummary,
    pub credentials: Vec<CredentialRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialPage {
    pub team: TeamSummary,
    pub credential: CredentialRow,
    pub events: Vec<AuditRow>,
    pub flash: Option<Flash>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub subject: String,
    pub ok: bool,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub team: TeamSummary,
    pub events: Vec<AuditRow>,
    /// The cursor for older events, when there are more.
    pub next: Option<i64>,
}

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// `wrong_credentials`, `denied`, `not_found`, `unreachable`, `timeout`, … when not ok.
    pub kind: Option<String>,
    pub message: String,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub platforms: Vec<String>,
    pub size: Option<u64>,
}
