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
    /// How many apps deploy with it (their last deploy used it).
    pub used_by_apps: i64,
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
    /// The apps that deploy with it, shown before a delete.
    pub used_by: Vec<String>,
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

/// An operation as pages and the JSON API show it: what ran, with which credential source
/// (never a value), and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationRow {
    pub id: i64,
    pub team: String,
    pub app: String,
    pub kind: String,
    pub status: String,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    /// `none`, `team`, `given` or `remembered`.
    pub credential_source: String,
    /// The team credential's name and secret version, when one was used.
    pub credential_name: Option<String>,
    pub credential_version: Option<i64>,
    /// Configuration changes applied with the operation: names only.
    pub config_changes: Vec<ConfigChangeRow>,
    pub requested_by: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// The step running now (`verify`, `pull`, `start`, `health_check`, `switch`).
    pub step: Option<String>,
}

impl OperationRow {
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }

    /// How the credentials were chosen, in words.
    pub fn credential_label(&self) -> String {
        match self.credential_source.as_str() {
            "team" => format!(
                "team credential {}{}",
                self.credential_name.as_deref().unwrap_or("(deleted)"),
                self.credential_version
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
            "given" => "given with this deploy".into(),
            "remembered" => "remembered on the app".into(),
            _ => "none (public image)".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigChangeRow {
    pub key: String,
    /// `false` when the variable was unset.
    pub set: bool,
}

/// The release an app serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRow {
    pub image: String,
    pub digest: String,
    /// Where it serves, when it runs on this host.
    pub url: Option<String>,
    pub since: i64,
    pub operation_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppRow {
    pub handle: String,
    pub method: String,
    pub health_path: Option<String>,
    pub release: Option<ReleaseRow>,
    pub last_operation: Option<LastOperation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastOperation {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppsPage {
    pub team: TeamSummary,
    pub apps: Vec<AppRow>,
}

/// A configuration variable as the browser sees it: secret-looking ones without a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigRow {
    pub key: String,
    /// `None` for a secret value (write-only).
    pub value: Option<String>,
    pub secret: bool,
}

/// Which registry credentials an app deploys with: names, never values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppCredentials {
    /// `registry` and `username` of the credentials remembered on the app.
    pub remembered: Option<(String, String)>,
    pub remembered_at: Option<i64>,
    /// The team credential its last deploy used.
    pub team_credential: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppPage {
    pub team: TeamSummary,
    pub app: AppRow,
    pub credentials: AppCredentials,
    pub config: Vec<ConfigRow>,
    pub operations: Vec<OperationRow>,
    /// Team credentials a deploy may choose (name, registry).
    pub team_credentials: Vec<(String, String)>,
    /// Why deploys cannot run on this server, if they cannot.
    pub platform_unavailable: Option<String>,
    pub flash: Option<Flash>,
    /// For a Dockerfile app: its git source, branches and tags.
    pub build: Option<BuildSource>,
}

/// A Dockerfile app's git source as pages show it: the read password never leaves the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitSourceRow {
    pub url: String,
    pub dockerfile: String,
    pub context: String,
    /// The read username, when the repository needs credentials.
    pub username: Option<String>,
}

/// A branch or tag of the app's repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitRefRow {
    pub name: String,
    /// `branch` or `tag`.
    pub kind: String,
    pub commit: String,
    pub short_commit: String,
    pub subject: String,
    pub committed_at: i64,
}

/// What a Dockerfile app builds from, and which credentials pull its private base images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildSource {
    pub source: GitSourceRow,
    pub refs: Vec<GitRefRow>,
    /// Why the branches and tags could not be read (the repository is unreachable, …).
    pub refs_error: Option<String>,
    /// The commit the current release was built from.
    pub deployed_commit: Option<String>,
    /// Whether the configuration holds `APTIBLE_PRIVATE_REGISTRY_USERNAME` and `_PASSWORD`.
    pub private_registry_configured: bool,
    /// `APTIBLE_PRIVATE_REGISTRY_HOST`, when set (a host name is not a secret).
    pub private_registry_host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationPage {
    pub team: TeamSummary,
    pub operation: OperationRow,
    pub log: Vec<LogLineRow>,
    /// When the tag the operation deployed now resolves to another digest.
    pub tag_moved_to: Option<String>,
    pub can_deploy: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLineRow {
    pub id: i64,
    pub at: i64,
    pub line: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub team: TeamSummary,
    /// Set for one app's history.
    pub app: Option<String>,
    pub operations: Vec<OperationRow>,
    pub next: Option<i64>,
    pub days: Vec<DayRow>,
    /// Members, for the "requested by" filter (user id, e-mail).
    pub members: Vec<(i64, String)>,
}

/// Operations on one day, for the history chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// Days since the Unix epoch.
    pub day: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub other: i64,
    pub avg_duration_ms: Option<i64>,
}

/// One external base image of a ref's Dockerfile: which credential pulls it, and whether the
/// registry lets it (checked on request, before a deploy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseCheckRow {
    pub image: String,
    pub line: usize,
    /// `configuration`, `team:<name>` or `none`.
    pub credential: String,
    /// `None` when it can be pulled; otherwise the failure's kind and message.
    pub problem: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseCheckReport {
    pub git_ref: String,
    pub commit: String,
    pub bases: Vec<BaseCheckRow>,
}
