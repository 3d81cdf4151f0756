//! The JSON API's response bodies (`/api/v1`): the contract CI pipelines script against.
//! Each body is one object with a named member (`{"app": …}`, `{"operations": […], "next"}`),
//! built from the same view types the pages show. Secrets are never part of any of them.

use crate::{
    apps::{AppRow, BaseCheckReport, BaseCredential, ConfigRow, GitSourceRow, ReleaseRow},
    credentials::CredentialRow,
    operations::OperationRow,
    session::{DeployKeyRow, MemberRow, TeamSummary},
    AppError,
};
use domain::{DeployMethod, Role};
use serde::{Deserialize, Serialize};

/// `{"error": {"kind", "message", "field"?, "reason"?}}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorView,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorView {
    /// `invalid`, `conflict`, `unauthenticated`, `not_found`, `forbidden`, `throttled`,
    /// `verification_failed`, `unavailable`, `internal` or `request`.
    pub kind: String,
    pub message: String,
    /// The request field to fix, when the error concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `verification_failed`: what the registry said (`wrong_credentials`, `denied`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When several fields are wrong at once, each with its message (`field` names the
    /// first, `message` joins them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<crate::FieldProblem>,
}

impl From<&AppError> for ErrorBody {
    fn from(error: &AppError) -> Self {
        ErrorBody {
            error: ErrorView {
                kind: error.kind().to_owned(),
                message: error.to_string(),
                field: error.field().filter(|f| !f.is_empty()).map(str::to_owned),
                reason: match error {
                    AppError::VerificationFailed { reason, .. } => Some(reason.clone()),
                    _ => None,
                },
                problems: match error {
                    AppError::InvalidFields { problems } => problems.clone(),
                    _ => Vec::new(),
                },
            },
        }
    }
}

/// `GET /me`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeBody {
    pub user: UserView,
    pub teams: Vec<TeamSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: i64,
    pub email: String,
}

/// `GET /teams/{team}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamBody {
    pub team: TeamSummary,
}

/// `GET /teams/{team}/members`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembersBody {
    pub members: Vec<MemberRow>,
}

/// `POST /teams/{team}/members`: the member, and the invitation link (shown this once) when
/// the person had no account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddedMemberBody {
    pub member: AddedMember,
    pub invite_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddedMember {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    /// Not a member until they accept (the link, or Accept on their overview).
    pub pending: bool,
}

/// `PATCH /teams/{team}/members/{user_id}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleChangedBody {
    pub member: MemberRole,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRole {
    pub user_id: i64,
    pub role: Role,
}

/// `GET|POST /teams/{team}/deploy-key`: the public half of the team's ssh deploy key. All
/// three are `null` while the team has none (Berth makes one at the first fetch of an ssh
/// repository, or when an owner asks with `POST`). The private half is never answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployKeyBody {
    /// One line of `authorized_keys`: `ssh-ed25519 AAAA… berth:<team>`; add it to the
    /// repository as a read-only deploy key.
    pub public_key: Option<String>,
    /// `SHA256:…`, as `ssh-keygen -l`, GitHub and GitLab show it.
    pub fingerprint: Option<String>,
    pub created_at: Option<i64>,
}

impl From<Option<DeployKeyRow>> for DeployKeyBody {
    fn from(key: Option<DeployKeyRow>) -> Self {
        match key {
            Some(key) => DeployKeyBody {
                public_key: Some(key.public_key),
                fingerprint: Some(key.fingerprint),
                created_at: Some(key.created_at),
            },
            None => DeployKeyBody {
                public_key: None,
                fingerprint: None,
                created_at: None,
            },
        }
    }
}

/// `GET /teams/{team}/audit`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventsBody {
    pub events: Vec<AuditEventView>,
    /// The cursor for older events (`?before=`), when there are more.
    pub next: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub id: i64,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub subject: String,
    /// `ok` or `failed`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// `GET …/credentials/{name}`, and the answer to creating or changing one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialBody {
    pub credential: CredentialRow,
}

/// `GET …/credentials`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialsBody {
    pub credentials: Vec<CredentialRow>,
}

/// `POST …/credentials/{name}/verify`: a failed verification is an answer (`ok: false` with
/// the precise `kind`), not an error of the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyBody {
    pub ok: bool,
    /// The image's digest, when an image was given and resolved.
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux_amd64_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// When not ok: `wrong_credentials`, `denied`, `not_found`, `unreachable`,
    /// `aws_sign_in_failed`, `role_assumption_failed`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When not ok, the step that failed: `aws_sign_in`, `role_assumption` (ECR
    /// credentials), `registry_login` or `image_pull`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub credential: CredentialRow,
}

/// An app as the API shows it: its release and the credentials it deploys with (names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppView {
    pub handle: String,
    pub method: DeployMethod,
    pub health_path: Option<String>,
    pub release: Option<ReleaseRow>,
    /// A Dockerfile app's source (its read password is never shown).
    pub git: Option<GitSourceRow>,
    pub credentials: AppCredentialsView,
    /// Where the app runs.
    pub platform: AppPlatformView,
    /// What it takes on this server's disk; null for an app on Aptible, or when it could
    /// not be measured.
    pub disk: Option<crate::apps::DiskUsageView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppCredentialsView {
    pub remembered: Option<RememberedView>,
    /// The team credential the app's deploys use.
    pub team_credential: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RememberedView {
    pub registry: String,
    pub username: String,
    pub at: Option<i64>,
}

/// `GET …/apps/{app}`, and the answer to creating one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppBody {
    pub app: AppView,
}

/// `GET …/apps`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppsBody {
    pub apps: Vec<AppRow>,
}

/// `GET …/apps/{app}/config`: names, and the values that are not secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigBody {
    pub env: Vec<ConfigRow>,
}

/// One operation: `GET /operations/{id}`, and the answer to anything that queues one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationBody {
    pub operation: OperationRow,
}

/// A page of history, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationsBody {
    pub operations: Vec<OperationRow>,
    /// The cursor for older operations (`?before=`), when there are more.
    pub next: Option<i64>,
}

/// `GET …/apps/{app}/refs`: branches and tags, each marked when it is the deployed commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefsBody {
    pub refs: Vec<RefView>,
    pub deployed_commit: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefView {
    pub name: String,
    /// `branch` or `tag`.
    pub kind: String,
    pub commit: String,
    pub subject: String,
    pub committed_at: i64,
    pub deployed: bool,
}

/// `POST …/apps/{app}/bases` `{"git_ref", "private_registry_host"?}`: each external base
/// image of that ref's Dockerfile, the credential that pulls it, and whether the registry
/// lets it; which registry gets the private-registry credentials, and which could.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BasesBody {
    pub commit: String,
    pub bases: Vec<BaseView>,
    /// The one registry that gets `APTIBLE_PRIVATE_REGISTRY_*` (none: they are sent nowhere).
    pub private_registry_host: Option<String>,
    /// The registries of the base images: what `private_registry_host` may name.
    pub registries: Vec<String>,
}

/// The body of `POST …/apps/{app}/bases`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BasesRequest {
    #[serde(default)]
    pub git_ref: String,
    /// Check as if the deploy confirmed this registry for `APTIBLE_PRIVATE_REGISTRY_*`.
    #[serde(default)]
    pub private_registry_host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaseView {
    pub image: String,
    pub line: usize,
    /// `configuration`, `team:<name>` or `none`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub credential: BaseCredential,
    pub ok: bool,
    pub kind: Option<String>,
    pub message: Option<String>,
}

impl From<BaseCheckReport> for BasesBody {
    fn from(report: BaseCheckReport) -> Self {
        BasesBody {
            commit: report.commit,
            private_registry_host: report.private_registry_host,
            registries: report.registries,
            bases: report
                .bases
                .into_iter()
                .map(|b| {
                    let (kind, message) = b.problem.unzip();
                    BaseView {
                        ok: kind.is_none(),
                        image: b.image,
                        line: b.line,
                        credential: b.credential,
                        kind,
                        message,
                    }
                })
                .collect(),
        }
    }
}

/// `GET /me/invitations`: teams that invited the person, waiting for an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationsBody {
    pub invitations: Vec<crate::session::PendingInvitation>,
}

/// `POST /invitations/{id}/accept|decline`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationAnsweredBody {
    /// The team's handle.
    pub team: String,
    pub accepted: bool,
}

/// A team's connection to Aptible (`GET …/platforms/aptible`). Its token is never shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformView {
    /// `aptible`.
    pub kind: String,
    /// `not_connected`, `connected` or `reconnect_needed` (Aptible refused the token:
    /// an owner must connect again).
    pub state: String,
    /// Whose token it is, as Aptible says, when known.
    pub account: Option<String>,
    /// When the token expires (ms since the epoch), when known. Aptible's tokens are
    /// never refreshed: connect again before then.
    pub expires_at: Option<i64>,
    /// The token expires within a day (or has expired).
    pub expires_soon: bool,
    /// Why Aptible last refused the token.
    pub last_error: Option<String>,
    pub connected_by: Option<String>,
    pub connected_at: Option<i64>,
    /// Where Berth reaches Aptible's API (`BERTH_APTIBLE_API_URL`).
    pub api_url: String,
}

/// `{"platform": …}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformBody {
    pub platform: PlatformView,
}

/// Where an app runs, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppPlatformView {
    /// `local` or `aptible`.
    pub kind: String,
    /// For Aptible: the environment's handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// For Aptible: the app's handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// For Aptible: the app's id there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<i64>,
    /// For Aptible: image deploys are verified against the registry before they are
    /// forwarded (`false`: for registries only Aptible can reach; no digest is recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_images: Option<bool>,
}
