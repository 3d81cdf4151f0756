//! Operations, their logs and the history pages.

use crate::session::TeamSummary;
use domain::{CredentialSource, OperationKind, OperationStatus};
use serde::{Deserialize, Serialize};

/// How many operations a history page shows.
pub const HISTORY_PAGE: i64 = 50;
/// How many days the history chart covers (today included).
pub const CHART_DAYS: i64 = 30;

/// An operation as pages and the JSON API show it: what ran, with which credential source
/// (never a value), and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationRow {
    pub id: i64,
    pub team: String,
    pub app: String,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub credential_source: CredentialSource,
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
    /// For an app on Aptible: the operation Berth forwarded there, once posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aptible_operation: Option<AptibleOperationRef>,
    /// When the log was deleted (`BERTH_OPERATION_LOG_DAYS` after the operation ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_pruned_at: Option<i64>,
}

/// An operation as one line of a history table (the team's, an app's, an app page's
/// recent ones): what ran, who asked, when and for how long. [`OperationRow`] has the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationSummaryRow {
    pub id: i64,
    pub app: String,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub requested_by: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// An operation on Aptible, and where Aptible's dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AptibleOperationRef {
    pub id: i64,
    pub url: String,
}

impl OperationRow {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// How the credentials were chosen, in words.
    pub fn credential_label(&self) -> String {
        match self.credential_source {
            CredentialSource::Team => format!(
                "team credential {}{}",
                self.credential_name.as_deref().unwrap_or("(deleted)"),
                self.credential_version
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
            // A build's login is the app's `APTIBLE_PRIVATE_REGISTRY_*` configuration.
            CredentialSource::Given if self.git_ref.is_some() => {
                "given with this deploy (now the app's APTIBLE_PRIVATE_REGISTRY_* configuration)"
                    .into()
            }
            CredentialSource::Remembered if self.git_ref.is_some() => {
                "the app's APTIBLE_PRIVATE_REGISTRY_* configuration".into()
            }
            CredentialSource::Given => "given with this deploy".into(),
            CredentialSource::Remembered => "remembered on the app".into(),
            CredentialSource::None if self.git_ref.is_some() => "none (public base images)".into(),
            CredentialSource::None => "none (public image)".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigChangeRow {
    pub key: String,
    /// `false` when the variable was unset.
    pub set: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationPage {
    pub team: TeamSummary,
    pub operation: OperationRow,
    pub log: Vec<LogLineRow>,
    /// The reader is a viewer and the team's owners have not allowed viewers to read logs:
    /// `log` is empty.
    pub log_withheld: bool,
    /// When the tag the operation deployed now resolves to another digest.
    pub tag_moved_to: Option<String>,
    pub can_deploy: bool,
}

/// What the live view of an operation hears when it moves on (`status` events of
/// `/operations/{id}/events`; new log lines come as `lines` events of [`LogLineRow`]s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationProgress {
    pub status: OperationStatus,
    pub step: Option<String>,
    pub error: Option<String>,
    pub finished_at: Option<i64>,
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
    pub operations: Vec<OperationSummaryRow>,
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
