//! Registry logins minted from an AWS key: ECR `GetAuthorizationToken` (AWS JSON 1.1, SigV4,
//! through the AWS SDK's service crates), after an STS `AssumeRole` when the credential names
//! a role. A token is a login (`AWS` and a 12-hour password) for one operation; one that is
//! still valid for well longer than an operation may be reused from memory, never stored.
//!
//! AWS's own endpoints are found from the region (checked to have AWS's shape, so a user
//! cannot point a signed request anywhere else); `BERTH_ECR_ENDPOINT_URL` and
//! `BERTH_STS_ENDPOINT_URL` replace them (ECR-compatible services, and tests with moto).

use crate::registry::BasicCredentials;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use base64::Engine;
use domain::Secret;
use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A token reused from memory must stay valid for at least this long: longer than any
/// operation (a build included) that pulls with it.
pub const REUSE_MARGIN: Duration = Duration::from_secs(2 * 3600);

/// How long Berth asks an assumed role's session to last: only long enough to mint a token.
const ROLE_SESSION_SECS: i32 = 900;

/// What time it is, for token expiry (tests set it: moto's tokens expire in 2015).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Where the AWS calls go, and how long each may take.
#[derive(Clone, Debug, Default)]
pub struct EcrSettings {
    /// `BERTH_ECR_ENDPOINT_URL`: instead of `https://api.ecr.{region}.amazonaws.com`.
    pub ecr_endpoint: Option<String>,
    /// `BERTH_STS_ENDPOINT_URL`: instead of `https://sts.{region}.amazonaws.com`.
    pub sts_endpoint: Option<String>,
    /// Each AWS call as a whole (retries included); 10 s when zero.
    pub timeout: Duration,
    /// `BERTH_ECR_REGISTRY_HOSTS`: registry hosts an `ecr` credential may name besides
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (ECR-compatible registries, and tests).
    pub extra_registry_hosts: Vec<domain::RegistryHost>,
}

/// An AWS key and what to do with it, as a team credential of kind `ecr` holds it.
pub struct AwsKey<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a Secret,
    pub region: &'a str,
    /// A role to assume first, and the external id its trust policy may require.
    pub role_arn: Option<&'a str>,
    pub external_id: Option<&'a str>,
    /// Names the role session in the account's CloudTrail, e.g. `berth-acme-ecr-prod`.
    pub session_name: &'a str,
}

/// Which step of getting a token failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsStep {
    /// Signing in to AWS with the key (STS or ECR refused it or could not be reached).
    SignIn,
    /// Assuming the role (STS `AssumeRole`).
    AssumeRole,
}

impl AwsStep {
    /// Machine-readable, as verification results name steps.
    pub fn as_str(self) -> &'static str {
        match self {
            AwsStep::SignIn => "aws_sign_in",
            AwsStep::AssumeRole => "role_assumption",
        }
    }

    /// The failure's kind, as API errors name it.
    pub fn failure_kind(self) -> &'static str {
        match self {
            AwsStep::SignIn => "aws_sign_in_failed",
            AwsStep::AssumeRole => "role_assumption_failed",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            AwsStep::SignIn => "AWS sign-in",
            AwsStep::AssumeRole => "Role assumption",
        }
    }
}

/// Why no token could be had, with AWS's own error code and message where it gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub step: AwsStep,
    /// AWS's error code, e.g. `UnrecognizedClientException`, `AccessDenied`,
    /// `SignatureDoesNotMatch`, `InvalidClientTokenId`.
    pub code: Option<String>,
    /// AWS's message, or what went wrong on the way to it (timeout, unreachable).
    pub message: String,
    /// The HTTP status AWS answered with, if it answered.
    pub status: Option<u16>,
}

impl AwsError {
    /// AWS's answer as it gave it: `Code: message` (shown on the credential's page).
    pub fn verbatim(&self) -> String {
        match &self.code {
            Some(code) => format!("{code}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// Replaces a secret wherever it appears in the text (AWS never echoes one, but a
    /// proxy's error page might).
    pub fn redact(mut self, secret: &str) -> Self {
        if !secret.is_empty() {
            self.message = self.message.replace(secret, "[redacted]");
        }
        self
    }

    fn new(step: AwsStep, message: impl Into<String>) -> Self {
        Self {
            step,
            code: None,
            message: message.into(),
            status: None,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step.words(), self.verbatim())?;
        if let Some(advice) = self.advice() {
            write!(f, " ({advice})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    fn advice(&self) -> Option<&'static str> {
        Some(match (self.step, self.code.as_deref()?) {
            (_, "SignatureDoesNotMatch" | "InvalidSignatureException") => {
                "the secret access key does not belong to this access key id; enter it again"
            }
            (_, "InvalidClientTokenId" | "UnrecognizedClientException") => {
                "AWS does not know this access key id: it was deleted, deactivated or mistyped"
            }
            (AwsStep::AssumeRole, "AccessDenied") => {
                "the key may not assume this role, or the role's trust policy wants another external id"
            }
            (AwsStep::SignIn, "AccessDenied" | "AccessDeniedException") => {
                "the key (or role) needs ecr:GetAuthorizationToken in its IAM policy"
            }
            (_, "ExpiredToken" | "ExpiredTokenException") => "the key's session has expired",
            _ => return None,
        })
    }
}

/// A login minted for one operation.
pub struct Minted {
    /// `AWS` and the token's password.
    pub login: BasicCredentials,
    /// When AWS says the token expires (Unix ms).
    pub expires_at: Option<i64>,
    /// Taken from memory rather than minted now.
    pub reused: bool,
}

struct Cached {
    login: BasicCredentials,
    expires_at: i64,
}

/// Mints ECR logins. Cheap to clone: clones share the settings, clock and memory of tokens.
#[derive(Clone)]
pub struct EcrClient {
    settings: EcrSettings,
    clock: Clock,
    /// Tokens by (credential id, a version that changes whenever its key, region or role
    /// does): only ever in memory.
    cache: Arc<Mutex<HashMap<(i64, i64), Cached>>>,
}

impl fmt::Debug for EcrClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcrClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl EcrClient {
    pub fn new(mut settings: EcrSettings) -> Self {
        if settings.timeout.is_zero() {
            settings.timeout = Duration::from_secs(10);
        }
        Self {
            settings,
            clock: Arc::new(SystemTime::now),
            cache: Default::default(),
        }
    }

    /// The extra registry hosts an `ecr` credential may name.
    pub fn extra_registry_hosts(&self) -> &[domain::RegistryHost] {
        &self.settings.extra_registry_hosts
    }

    /// The same client reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// A login for the registry: a token from memory when it stays valid for
    /// [`REUSE_MARGIN`] more, else a new one from ECR (assuming the role first, if any).
    /// `cache_key` names the credential and the version of its key.
    pub async fn login(&self, cache_key: (i64, i64), key: &AwsKey<'_>) -> Result<Minted, AwsError> {
        let now = self.now_ms();
        let margin = REUSE_MARGIN.as_millis() as i64;
        if let Some(cached) = self.cache.lock().unwrap().get(&cache_key) {
            if cached.expires_at - now > margin {
                metrics::counter!("berth_ecr_tokens_total", "outcome" => "reused").increment(1);
                return Ok(Minted {
                    login: cached.login.clone(),
                    expires_at: Some(cached.expires_at),
                    reused: true,
                });
            }
        }
        let secret = key.secret_access_key.expose();
        let minted = self.mint(key).await.map_err(|e| e.redact(secret));
        metrics::counter!(
            "berth_ecr_tokens_total",
            "outcome" => minted.as_ref().map_or_else(|e| e.step.failure_kind(), |_| "minted")
        )
        .increment(1);
        let minted = minted?;
        let mut cache = self.cache.lock().unwrap();
        cache.retain(|_, c| c.expires_at - now > margin);
        // Older versions of this credential are never used again.
        cache.retain(|(id, _), _| *id != cache_key.0);
        if let Some(expires_at) = minted.expires_at.filter(|at| at - now > margin) {
            cache.insert(
                cache_key,
                Cached {
                    login: minted.login.clone(),
                    expires_at,
                },
            );
        }
        Ok(minted)
    }

    /// Forgets every token of a credential (it was changed or deleted).
    pub fn forget(&self, credential_id: i64) {
        self.cache
            .lock()
            .unwrap()
            .retain(|(id, _), _| *id != credential_id);
    }

    async fn mint(&self, key: &AwsKey<'_>) -> Result<Minted, AwsError> {
        let region = aws_sdk_ecr::config::Region::new(key.region.to_owned());
        let mut credentials = aws_sdk_ecr::config::Credentials::new(
            key.access_key_id,
            key.secret_access_key.expose(),
            None,
            None,
            "berth-team-credential",
        );
        if let Some(role_arn) = key.role_arn {
            credentials = self
                .assume_role(&region, credentials, role_arn, key)
                .await?;
        }
        let mut config = aws_sdk_ecr::Config::builder()
            .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .timeout_config(self.timeouts())
            .retry_config(aws_sdk_ecr::config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &self.settings.ecr_endpoint {
            config = config.endpoint_url(endpoint);
        }
        let client = aws_sdk_ecr::Client::from_conf(config.build());
        let output = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| sdk_error(AwsStep::SignIn, e, "ECR", self.settings.timeout))?;
        let data = output
            .authorization_data()
            .first()
            .ok_or_else(|| AwsError::new(AwsStep::SignIn, "ECR answered without a token"))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| AwsError::new(AwsStep::SignIn, "ECR answered without a token"))?;
        let login = decode_token(token).ok_or_else(|| {
            AwsError::new(
                AwsStep::SignIn,
                "ECR answered a token that is not base64 \"user:password\"",
            )
        })?;
        Ok(Minted {
            login,
            expires_at: data.expires_at().and_then(|at| at.to_millis().ok()),
            reused: false,
        })
    }

    async fn assume_role(
        &self,
        region: &aws_sdk_ecr::config::Region,
        credentials: aws_sdk_ecr::config::Credentials,
        role_arn: &str,
        key: &AwsKey<'_>,
    ) -> Result<aws_sdk_ecr::config::Credentials, AwsError> {
        let mut config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials)
            .timeout_config(self.timeouts())
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &self.settings.sts_endpoint {
            config = config.endpoint_url(endpoint);
        }
        let client = aws_sdk_sts::Client::from_conf(config.build());
        let output = client
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name(key.session_name))
            .set_external_id(key.external_id.map(str::to_owned))
            .duration_seconds(ROLE_SESSION_SECS)
            .send()
            .await
            .map_err(|e| {
                // Refusing the key itself is a sign-in failure; refusing the role is not.
                let error = sdk_error(AwsStep::AssumeRole, e, "STS", self.settings.timeout);
                match error.code.as_deref() {
                    Some(
                        "SignatureDoesNotMatch"
                        | "InvalidClientTokenId"
                        | "UnrecognizedClientException"
                        | "IncompleteSignature",
                    ) => AwsError {
                        step: AwsStep::SignIn,
                        ..error
                    },
                    _ => error,
                }
            })?;
        let session = output.credentials().ok_or_else(|| {
            AwsError::new(AwsStep::AssumeRole, "STS answered without credentials")
        })?;
        Ok(aws_sdk_ecr::config::Credentials::new(
            session.access_key_id(),
            session.secret_access_key(),
            Some(session.session_token().to_owned()),
            None,
            "berth-assumed-role",
        ))
    }

    fn timeouts(&self) -> aws_sdk_ecr::config::timeout::TimeoutConfig {
        aws_sdk_ecr::config::timeout::TimeoutConfig::builder()
            .operation_timeout(self.settings.timeout)
            .connect_timeout(self.settings.timeout.min(Duration::from_secs(5)))
            .build()
    }
}

/// A role session name: 2 to 64 of letters, digits and `+=,.@-_`.
fn session_name(wanted: &str) -> String {
    let mut name: String = wanted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.len() < 2 {
        name = "berth".into();
    }
    name
}

/// `base64("user:password")` → the login.
fn decode_token(token: &str) -> Option<BasicCredentials> {
    let bytes = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?,
    );
    let text = std::str::from_utf8(&bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty() && !password.is_empty())
        .then(|| BasicCredentials::new(user, Secret::new(password)))
}

/// An SDK failure in words: AWS's code and message when it answered, else what stopped the
/// request (AWS answers some errors in a format the client does not parse, e.g. XML to a
/// JSON call: its `<Code>` and `<Message>` are read from the body then).
fn sdk_error<E, R>(
    step: AwsStep,
    error: SdkError<E, R>,
    service: &str,
    timeout: Duration,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + RawResponse,
{
    match &error {
        SdkError::ServiceError(context) => {
            let raw = context.raw();
            let (code, message) = match (context.err().code(), context.err().message()) {
                (Some(code), message) => (Some(code.to_owned()), message.map(str::to_owned)),
                _ => from_body(raw.body_bytes()),
            };
            AwsError {
                step,
                code,
                message: message.unwrap_or_else(|| {
                    format!("{service} refused the request (HTTP {})", raw.status_code())
                }),
                status: Some(raw.status_code()),
            }
        }
        SdkError::ResponseError(context) => {
            let raw = context.raw();
            let (code, message) = from_body(raw.body_bytes());
            AwsError {
                step,
                code,
                message: message.unwrap_or_else(|| {
                    format!(
                        "{service} answered HTTP {} that Berth cannot read",
                        raw.status_code()
                    )
                }),
                status: Some(raw.status_code()),
            }
        }
        SdkError::TimeoutError(_) => AwsError::new(
            step,
            format!("{service} did not answer within {} s", timeout.as_secs()),
        ),
        SdkError::DispatchFailure(_) => AwsError::new(
            step,
            format!(
                "could not reach {service}: {}",
                aws_sdk_ecr::error::DisplayErrorContext(&error)
            ),
        ),
        _ => AwsError::new(
            step,
            format!(
                "{service} request failed: {}",
                aws_sdk_ecr::error::DisplayErrorContext(&error)
            ),
        ),
    }
}

/// What the SDK's raw responses give for error reporting.
pub trait RawResponse {
    fn status_code(&self) -> u16;
    fn body_bytes(&self) -> &[u8];
}

impl RawResponse for aws_sdk_ecr::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
    fn body_bytes(&self) -> &[u8] {
        self.body().bytes().unwrap_or_default()
    }
}

/// `<Code>` and `<Message>` of an XML error body, or `__type` / `message` of a JSON one.
fn from_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(unescape_xml(text[start..end].trim()))
    };
    if let (Some(code), message) = (tag("Code"), tag("Message")) {
        return (Some(code), message);
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        let code = json["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
        let message = json["message"]
            .as_str()
            .or(json["Message"].as_str())
            .map(str::to_owned);
        return (code, message);
    }
    (None, None)
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_to_a_login() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:123456789012-auth-token");
        let login = decode_token(&token).unwrap();
        assert_eq!(login.username, "AWS");
        assert_eq!(login.secret.expose(), "123456789012-auth-token");
        assert!(decode_token("not base64!").is_none());
        assert!(
            decode_token(&base64::engine::general_purpose::STANDARD.encode("no-colon")).is_none()
        );
    }

    #[test]
    fn errors_are_read_from_xml_and_json_bodies() {
        let xml = br#"<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error></ErrorResponse>"#;
        let (code, message) = from_body(xml);
        assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(message.unwrap().starts_with("The request signature"));
        let json = br#"{"__type":"com.amazonaws.ecr#UnrecognizedClientException","message":"The security token included in the request is invalid."}"#;
        let (code, message) = from_body(json);
        assert_eq!(code.as_deref(), Some("UnrecognizedClientException"));
        assert_eq!(
            message.as_deref(),
            Some("The security token included in the request is invalid.")
        );
        assert_eq!(from_body(b"<html>bad gateway</html>"), (None, None));
    }

    #[test]
    fn errors_say_the_step_the_code_and_the_fix() {
        let error = AwsError {
            step: AwsStep::SignIn,
            code: Some("SignatureDoesNotMatch".into()),
            message: "The request signature we calculated does not match.".into(),
            status: Some(403),
        };
        let shown = error.to_string();
        assert!(
            shown.starts_with("AWS sign-in failed: SignatureDoesNotMatch: The request"),
            "{shown}"
        );
        assert!(shown.contains("enter it again"), "{shown}");
        assert_eq!(AwsStep::AssumeRole.failure_kind(), "role_assumption_failed");
    }

    #[test]
    fn session_names_are_what_sts_accepts() {
        assert_eq!(session_name("berth-acme-ecr.prod"), "berth-acme-ecr.prod");
        assert_eq!(session_name("a b/c"), "a-b-c");
        assert_eq!(session_name("x"), "berth");
        assert_eq!(session_name(&"y".repeat(100)).len(), 64);
    }
}
