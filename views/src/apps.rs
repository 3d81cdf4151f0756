//! Apps, their releases, configuration and git sources, as pages and the API show them.

use crate::{
    operations::OperationSummaryRow,
    session::{Flash, TeamSummary},
};
use domain::{DeployMethod, OperationKind, OperationStatus};
use serde::{Deserialize, Serialize};

/// The release an app serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseRow {
    pub image: String,
    pub digest: String,
    /// The app's address when it runs on this host: the same across deploys
    /// (`http://web.acme.localhost:8000/`).
    pub url: Option<String>,
    /// The app's stable port on this host (`http://127.0.0.1:21000/`), the same across
    /// deploys too.
    pub port_url: Option<String>,
    pub since: i64,
    pub operation_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppRow {
    pub handle: String,
    pub method: DeployMethod,
    pub health_path: Option<String>,
    pub release: Option<ReleaseRow>,
    pub last_operation: Option<LastOperation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastOperation {
    pub id: i64,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppsPage {
    pub team: TeamSummary,
    pub apps: Vec<AppRow>,
}

/// A configuration variable as the browser sees it: secret-looking ones without a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigRow {
    pub key: String,
    /// `None` for a secret value (write-only).
    pub value: Option<String>,
    pub secret: bool,
}

/// How much of this server's disk an app takes (apps on this server only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUsageView {
    /// The images it keeps (those of its last `BERTH_KEEP_RELEASES` releases), each layer
    /// counted once however many images share it.
    pub images_bytes: u64,
    /// Its runtime log files.
    pub logs_bytes: u64,
    /// Its git mirror (Dockerfile apps).
    pub source_bytes: u64,
    /// Its temporary directory (pulls in progress, build cache mounts).
    pub tmp_bytes: u64,
    pub total_bytes: u64,
    /// When it was measured (Unix ms): after each deploy, and on a read when the last
    /// measurement is over a minute old.
    pub measured_at: i64,
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
    pub operations: Vec<OperationSummaryRow>,
    /// Team credentials a deploy may choose (name, registry).
    pub team_credentials: Vec<(String, String)>,
    /// Where the app runs: this server, or an app on Aptible.
    pub platform: crate::api::AppPlatformView,
    /// Why the app's operations cannot run where it runs, if they cannot (this server lacks
    /// its tools; the team is not, or no longer, connected to Aptible).
    pub platform_unavailable: Option<String>,
    pub flash: Option<Flash>,
    /// For a Dockerfile app: its git source, branches and tags.
    pub build: Option<BuildSource>,
    /// What it takes on this server's disk; none for an app on Aptible, or when it could
    /// not be measured.
    pub disk: Option<DiskUsageView>,
}

/// An app's Logs tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppLogPage {
    pub team: TeamSummary,
    pub app: AppRow,
    pub platform: crate::api::AppPlatformView,
    /// The running release's latest output, newest last, secrets hidden.
    pub lines: Vec<String>,
    /// Why the person sees no output (a viewer, unless the team lets viewers read logs).
    pub withheld: Option<String>,
    /// When the lines were read (Unix ms).
    pub read_at: i64,
}

/// A Dockerfile app's git source as pages show it: the read password never leaves the server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The registries of the base images of the Dockerfile at the deployed commit (else the
    /// main branch), read with the ARGs' defaults: the hosts the deploy form offers to
    /// confirm for the private-registry credentials.
    pub base_registries: Vec<String>,
}

/// One external base image of a ref's Dockerfile: which credential pulls it, and whether the
/// registry lets it (checked on request, before a deploy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseCheckRow {
    pub image: String,
    pub line: usize,
    pub credential: BaseCredential,
    /// `None` when it can be pulled; otherwise the failure's kind and message.
    pub problem: Option<(String, String)>,
}

/// Which credential pulls a base image of a Dockerfile build. Written as the API has always
/// said it: `configuration`, `team:<name>` or `none`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum BaseCredential {
    /// The app's `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD` configuration (given
    /// with the deploy, or set before).
    Configuration,
    /// A team credential, by name.
    Team(String),
    /// None: a public image.
    None,
}

impl BaseCredential {
    /// In words, for the page.
    pub fn label(&self) -> String {
        match self {
            BaseCredential::Configuration => "APTIBLE_PRIVATE_REGISTRY_* configuration".into(),
            BaseCredential::Team(name) => format!("team credential {name}"),
            BaseCredential::None => "none (public)".into(),
        }
    }
}

impl From<BaseCredential> for String {
    fn from(value: BaseCredential) -> Self {
        match value {
            BaseCredential::Configuration => "configuration".into(),
            BaseCredential::Team(name) => format!("team:{name}"),
            BaseCredential::None => "none".into(),
        }
    }
}

impl From<String> for BaseCredential {
    fn from(value: String) -> Self {
        match value.strip_prefix("team:") {
            Some(name) => BaseCredential::Team(name.to_owned()),
            None if value == "configuration" => BaseCredential::Configuration,
            None => BaseCredential::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseCheckReport {
    pub git_ref: String,
    pub commit: String,
    pub bases: Vec<BaseCheckRow>,
    /// The one registry that gets `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD`: the
    /// configured (or confirmed) `APTIBLE_PRIVATE_REGISTRY_HOST`, when those are set.
    pub private_registry_host: Option<String>,
    /// The distinct registries of the base images: those a deploy may confirm.
    pub registries: Vec<String>,
}
