//! Team registry credentials and the audit trail, as pages and the API show them: never a
//! secret.

use crate::session::{Flash, TeamSummary};
use domain::CredentialKind;
use serde::{Deserialize, Serialize};

/// A registry credential as pages show it: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialRow {
    pub name: String,
    pub registry: String,
    pub kind: CredentialKind,
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
    /// Kind `ecr`: the AWS side (the access key id is `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsRow>,
}

/// An `ecr` credential's region and role, and what happened when Berth last asked AWS for a
/// registry token (the token itself is never kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AwsRow {
    pub access_key_id: String,
    pub region: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// When the last token was minted, and when AWS said it expires (Unix ms).
    pub token_minted_at: Option<i64>,
    pub token_expires_at: Option<i64>,
    /// The last error AWS answered, verbatim (`SignatureDoesNotMatch: …`), until a token
    /// is minted again.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// When something was checked or used, whether it worked, and what happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// `wrong_credentials`, `denied`, `not_found`, `unreachable`, `timeout`,
    /// `aws_sign_in_failed`, `role_assumption_failed`, … when not ok.
    pub kind: Option<String>,
    /// Which step failed, in words: AWS sign-in, role assumption, registry login, image pull.
    pub step: Option<String>,
    pub message: String,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub platforms: Vec<String>,
    pub size: Option<u64>,
}
