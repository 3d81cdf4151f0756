//! The request and response bodies Berth exchanges with Aptible, and the values it hands
//! to the rest of Berth. The wire facts behind each are in the [module docs](super).

use domain::Secret;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt};

/// The image an Aptible deploy runs (`settings`).
pub const APTIBLE_DOCKER_IMAGE: &str = "APTIBLE_DOCKER_IMAGE";
/// Registry credentials: in `sensitive_settings` for a Direct Docker Image deploy, in
/// `env` (build-time) for a Dockerfile deploy with a private `FROM`.
pub const APTIBLE_PRIVATE_REGISTRY_USERNAME: &str = "APTIBLE_PRIVATE_REGISTRY_USERNAME";
pub const APTIBLE_PRIVATE_REGISTRY_PASSWORD: &str = "APTIBLE_PRIVATE_REGISTRY_PASSWORD";

/// The scope Berth asks for: enough to deploy and configure (the CLI's default).
pub(crate) const TOKEN_SCOPE: &str = "manage";
/// The lifetimes the CLI asks for: a week, or 12 hours when signing in with a one-time code.
pub const TOKEN_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;
pub const OTP_TOKEN_LIFETIME_SECONDS: u64 = 12 * 3600;

/// An access token from the auth server, and when it expires (when Aptible says, or the
/// token's own `exp` claim does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at_ms: Option<i64>,
}

/// What the auth server says of a token (`GET /current_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub expires_at_ms: Option<i64>,
    /// `manage`, `read`, `elevated`, …; `None` when the answer does not say.
    pub scope: Option<String>,
}

/// An app on Aptible, as [`super::AptibleClient::find_app`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptibleApp {
    pub id: i64,
    pub handle: String,
    /// The environment's handle (Aptible's API calls environments "accounts").
    pub environment: String,
    /// The app's git remote (`git@beta.aptible.com:env/app.git`), for Dockerfile deploys.
    pub git_repo: Option<String>,
}

/// The operations Berth forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    Deploy,
    Configure,
    Restart,
}

impl OperationKind {
    /// The operation's `type` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Configure => "configure",
            Self::Restart => "restart",
        }
    }
}

/// `POST /apps/{id}/operations`. Empty maps and `None` are left out of the body, as the
/// CLI does (`delete_if { v.nil? || v.empty? }`); an empty *value* is sent, because it
/// means something: `""` in `env` unsets a variable, and in `sensitive_settings` clears the
/// registry credentials Aptible remembers.
#[derive(Clone, PartialEq, Eq)]
pub struct OperationRequest {
    pub kind: OperationKind,
    /// `APTIBLE_DOCKER_IMAGE` for a Direct Docker Image deploy.
    pub settings: BTreeMap<String, String>,
    /// The registry credentials, only when Berth has some to give: with `None`, Aptible
    /// keeps using the ones it remembers.
    pub sensitive_settings: Option<BTreeMap<String, Secret>>,
    /// Configuration changes (a Dockerfile deploy's build-time registry credentials too).
    pub env: BTreeMap<String, Secret>,
    /// The branch, tag or commit a Dockerfile deploy builds, pushed to the app's
    /// `git_repo` beforehand.
    pub git_ref: Option<String>,
}

impl fmt::Debug for OperationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys only: values may be secret.
        f.debug_struct("OperationRequest")
            .field("kind", &self.kind)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field(
                "sensitive_settings",
                &self
                    .sensitive_settings
                    .as_ref()
                    .map(|map| map.keys().collect::<Vec<_>>()),
            )
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("git_ref", &self.git_ref)
            .finish()
    }
}

impl OperationRequest {
    fn new(kind: OperationKind) -> Self {
        Self {
            kind,
            settings: BTreeMap::new(),
            sensitive_settings: None,
            env: BTreeMap::new(),
            git_ref: None,
        }
    }

    /// A Direct Docker Image deploy of `image`, forwarding registry credentials when given.
    pub fn deploy_image(image: &str, credentials: Option<(&str, &Secret)>) -> Self {
        let mut request = Self::new(OperationKind::Deploy);
        request
            .settings
            .insert(APTIBLE_DOCKER_IMAGE.into(), image.into());
        if let Some((username, password)) = credentials {
            request.sensitive_settings = Some(BTreeMap::from([
                (
                    APTIBLE_PRIVATE_REGISTRY_USERNAME.to_owned(),
                    Secret::new(username),
                ),
                (
                    APTIBLE_PRIVATE_REGISTRY_PASSWORD.to_owned(),
                    password.clone(),
                ),
            ]));
        }
        request
    }

    /// A Dockerfile deploy of `git_ref` with configuration changes in the same operation.
    pub fn deploy_git(git_ref: &str, env: BTreeMap<String, Secret>) -> Self {
        let mut request = Self::new(OperationKind::Deploy);
        request.git_ref = Some(git_ref.into());
        request.env = env;
        request
    }

    /// Sets (or, with `""`, unsets) configuration variables and restarts the app.
    pub fn configure(env: BTreeMap<String, Secret>) -> Self {
        let mut request = Self::new(OperationKind::Configure);
        request.env = env;
        request
    }

    pub fn restart() -> Self {
        Self::new(OperationKind::Restart)
    }

    /// The JSON body. Secret values are exposed here and nowhere else; the bytes go
    /// straight into the request and are never logged.
    pub(crate) fn to_body(&self) -> Vec<u8> {
        fn exposed(map: &BTreeMap<String, Secret>) -> BTreeMap<&str, &str> {
            map.iter()
                .map(|(key, value)| (key.as_str(), value.expose()))
                .collect()
        }
        let body = OperationBody {
            kind: self.kind.as_str(),
            env: exposed(&self.env),
            settings: self
                .settings
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect(),
            sensitive_settings: self
                .sensitive_settings
                .as_ref()
                .map(exposed)
                .unwrap_or_default(),
            git_ref: self
                .git_ref
                .as_deref()
                .filter(|git_ref| !git_ref.is_empty()),
        };
        serde_json::to_vec(&body).expect("string maps serialise")
    }
}

/// Field order as the CLI builds its hash (type, env, settings, sensitive_settings,
/// git_ref), which is also the order tests read most easily.
#[derive(Serialize)]
struct OperationBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    settings: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sensitive_settings: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    git_ref: Option<&'a str>,
}

/// An operation's `status`. Aptible's own clients know these four; anything else is kept
/// as it came, so that a new status does not break polling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Other(String),
}

impl OperationStatus {
    pub fn parse(status: &str) -> Self {
        match status {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Other(other) => other,
        }
    }

    /// Whether polling can stop: succeeded or failed. (The CLI waits while the status is
    /// `queued` or `running`; an unknown status is polled on, as it may be transitional.)
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// An operation on Aptible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptibleOperation {
    pub id: i64,
    pub status: OperationStatus,
    /// Cancellation was requested (`PUT {"cancelled": true}`). A cancelled operation ends
    /// `failed` (or `succeeded`, if it finished first): Aptible has no `cancelled` status.
    pub cancelled: bool,
}

// --- What Aptible sends -------------------------------------------------------------

/// A HAL link, `{"href": "https://api.aptible.com/accounts/1"}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Link {
    pub href: String,
}

/// The token resource (`POST /tokens` and `GET /current_token`).
#[derive(Deserialize)]
pub(crate) struct TokenResource {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_at: Option<serde_json::Value>,
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// `POST /tokens`: the OAuth 2 password grant.
#[derive(Serialize)]
pub(crate) struct TokenGrant<'a> {
    pub grant_type: &'static str,
    pub username: &'a str,
    pub password: &'a str,
    pub scope: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_login_attempt_id: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AppResource {
    pub id: i64,
    pub handle: String,
    #[serde(default)]
    pub git_repo: Option<String>,
    #[serde(default, rename = "_links")]
    pub links: AppLinks,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AppLinks {
    #[serde(default)]
    pub account: Option<Link>,
}

/// A page of `GET /apps`.
#[derive(Debug, Deserialize)]
pub(crate) struct AppPage {
    #[serde(default, rename = "_embedded")]
    pub embedded: AppPageEmbedded,
    #[serde(default, rename = "_links")]
    pub links: PageLinks,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AppPageEmbedded {
    #[serde(default)]
    pub apps: Vec<AppResource>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageLinks {
    #[serde(default)]
    pub next: Option<Link>,
}

/// An environment (`/accounts/{id}`).
#[derive(Debug, Deserialize)]
pub(crate) struct AccountResource {
    pub handle: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OperationResource {
    pub id: i64,
    pub status: String,
    #[serde(default)]
    pub cancelled: Option<bool>,
}

impl From<OperationResource> for AptibleOperation {
    fn from(resource: OperationResource) -> Self {
        Self {
            id: resource.id,
            status: OperationStatus::parse(&resource.status),
            cancelled: resource.cancelled.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn body(request: &OperationRequest) -> Value {
        serde_json::from_slice(&request.to_body()).unwrap()
    }

    fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Secret::new(*value)))
            .collect()
    }

    #[test]
    fn an_image_deploy_with_credentials_sends_them_as_sensitive_settings() {
        let password = Secret::new("s3cret");
        let request = OperationRequest::deploy_image(
            "registry.example/team/app:1.0",
            Some(("ci", &password)),
        );
        assert_eq!(
            String::from_utf8(request.to_body()).unwrap(),
            r#"{"type":"deploy","settings":{"APTIBLE_DOCKER_IMAGE":"registry.example/team/app:1.0"},"sensitive_settings":{"APTIBLE_PRIVATE_REGISTRY_PASSWORD":"s3cret","APTIBLE_PRIVATE_REGISTRY_USERNAME":"ci"}}"#
        );
    }

    #[test]
    fn an_image_deploy_with_remembered_credentials_sends_none() {
        let mut request = OperationRequest::deploy_image("nginx:1.27", None);
        request.env = secrets(&[("GREETING", "hi")]);
        assert_eq!(
            body(&request),
            json!({
                "type": "deploy",
                "env": {"GREETING": "hi"},
                "settings": {"APTIBLE_DOCKER_IMAGE": "nginx:1.27"},
            })
        );
        // An empty map is nothing to give, like `None`.
        request.sensitive_settings = Some(BTreeMap::new());
        assert!(body(&request).get("sensitive_settings").is_none());
    }

    #[test]
    fn forgetting_credentials_sends_empty_strings() {
        let mut request = OperationRequest::deploy_image("nginx:1.27", None);
        request.sensitive_settings = Some(secrets(&[
            (APTIBLE_PRIVATE_REGISTRY_USERNAME, ""),
            (APTIBLE_PRIVATE_REGISTRY_PASSWORD, ""),
        ]));
        assert_eq!(
            body(&request)["sensitive_settings"],
            json!({"APTIBLE_PRIVATE_REGISTRY_USERNAME": "", "APTIBLE_PRIVATE_REGISTRY_PASSWORD": ""})
        );
    }

    #[test]
    fn a_dockerfile_deploy_sends_the_ref_and_env_in_one_operation() {
        let request = OperationRequest::deploy_git(
            "berth-deploy-42",
            secrets(&[
                (APTIBLE_PRIVATE_REGISTRY_USERNAME, "ci"),
                (APTIBLE_PRIVATE_REGISTRY_PASSWORD, "s3cret"),
                ("OLD", ""),
            ]),
        );
        assert_eq!(
            String::from_utf8(request.to_body()).unwrap(),
            r#"{"type":"deploy","env":{"APTIBLE_PRIVATE_REGISTRY_PASSWORD":"s3cret","APTIBLE_PRIVATE_REGISTRY_USERNAME":"ci","OLD":""},"git_ref":"berth-deploy-42"}"#
        );
    }

    #[test]
    fn configure_and_restart_send_what_the_cli_sends() {
        let request = OperationRequest::configure(secrets(&[("A", "1"), ("GONE", "")]));
        assert_eq!(
            String::from_utf8(request.to_body()).unwrap(),
            r#"{"type":"configure","env":{"A":"1","GONE":""}}"#
        );
        assert_eq!(
            String::from_utf8(OperationRequest::restart().to_body()).unwrap(),
            r#"{"type":"restart"}"#
        );
        let mut empty_ref = OperationRequest::restart();
        empty_ref.git_ref = Some(String::new());
        assert_eq!(body(&empty_ref), json!({"type": "restart"}));
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let password = Secret::new("s3cret");
        let mut request = OperationRequest::deploy_image("nginx", Some(("ci", &password)));
        request.env = secrets(&[("TOKEN", "t0ken")]);
        let printed = format!("{request:?}");
        assert!(
            printed.contains("APTIBLE_PRIVATE_REGISTRY_PASSWORD"),
            "{printed}"
        );
        assert!(
            !printed.contains("s3cret") && !printed.contains("t0ken"),
            "{printed}"
        );
    }

    #[test]
    fn the_token_grant_is_the_password_grant_with_manage_scope() {
        let grant = TokenGrant {
            grant_type: "password",
            username: "a@example.com",
            password: "pw",
            scope: TOKEN_SCOPE,
            expires_in: OTP_TOKEN_LIFETIME_SECONDS,
            otp_token: Some("123456"),
            previous_login_attempt_id: None,
        };
        assert_eq!(
            serde_json::to_value(&grant).unwrap(),
            json!({
                "grant_type": "password",
                "username": "a@example.com",
                "password": "pw",
                "scope": "manage",
                "expires_in": 43200,
                "otp_token": "123456",
            })
        );
    }

    #[test]
    fn operations_and_statuses_parse() {
        let resource: OperationResource = serde_json::from_value(json!({
            "id": 7, "status": "running", "cancelled": false, "type": "deploy",
            "_links": {"self": {"href": "https://api.aptible.com/operations/7"}}
        }))
        .unwrap();
        let operation = AptibleOperation::from(resource);
        assert_eq!(operation.id, 7);
        assert_eq!(operation.status, OperationStatus::Running);
        assert!(!operation.status.is_finished());
        for (text, finished) in [
            ("queued", false),
            ("running", false),
            ("succeeded", true),
            ("failed", true),
            ("paused", false),
        ] {
            let status = OperationStatus::parse(text);
            assert_eq!(status.as_str(), text);
            assert_eq!(status.is_finished(), finished, "{text}");
        }
    }

    #[test]
    fn app_pages_follow_hal() {
        let page: AppPage = serde_json::from_value(json!({
            "_embedded": {"apps": [{
                "id": 1, "handle": "web", "git_repo": "git@beta.aptible.com:prod/web.git",
                "_links": {"account": {"href": "https://api.aptible.com/accounts/3"}}
            }]},
            "_links": {"next": {"href": "https://api.aptible.com/apps?page=2"}},
            "current_page": 1, "per_page": 1, "total_count": 2
        }))
        .unwrap();
        assert_eq!(page.embedded.apps[0].handle, "web");
        assert_eq!(
            page.embedded.apps[0].links.account.as_ref().unwrap().href,
            "https://api.aptible.com/accounts/3"
        );
        assert!(page.links.next.is_some());
        let last: AppPage =
            serde_json::from_value(json!({"_links": {"self": {"href": "x"}}})).unwrap();
        assert!(last.embedded.apps.is_empty() && last.links.next.is_none());
    }
}
