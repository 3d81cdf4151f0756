use serde::Deserialize;
use std::fmt;

/// Why a registry could not be logged in to, or an image not resolved. Each variant is one
/// message the UI shows; [`RegistryError::kind`] is its stable name for APIs and the audit
/// trail. No variant ever holds a password or token: messages are built from status codes,
/// registry error codes and URLs, and [`RegistryError::redact`] scrubs the secret from any
/// registry-supplied text as a second line of defence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("The registry rejected the username or password (or access token).")]
    WrongCredentials,

    /// The registry refuses anonymous access and no credentials were given.
    #[error("The registry requires a username and password (or access token).")]
    CredentialsRequired,

    /// Logged in, but the account may not pull from this repository. Registries that hide
    /// private repositories (Docker Hub, GHCR) say this for repositories that do not exist.
    #[error("{}", denied_message(.repository.as_deref()))]
    Denied { repository: Option<String> },

    #[error("{}", not_found_message(*.what, .repository, .reference))]
    NotFound {
        what: Missing,
        repository: String,
        reference: String,
    },

    /// Connection refused, DNS failure, TLS failure, connection reset.
    #[error("Cannot reach the registry: {0}")]
    Unreachable(String),

    #[error("The registry did not answer in time.")]
    Timeout,

    /// The registry says the credential (or the token it was exchanged for) has expired.
    #[error(
        "The registry says the credential has expired; enter a fresh token or password. (If \
         it was just issued, check this server's clock.)"
    )]
    TokenExpired,

    /// The image names a different registry than the credential is for.
    #[error("The image is on {image_registry}, but these credentials are for {registry}.")]
    ImageOnAnotherRegistry {
        registry: String,
        image_registry: String,
    },

    /// The registry answered, but not as the Registry HTTP API v2 says it should.
    #[error("The registry answered unexpectedly: {0}")]
    Protocol(String),

    /// The egress guard refused to contact an address (the registry's, its token
    /// service's, or a redirect's), or a redirect was not followed. Nothing was sent there.
    #[error("Berth did not contact the registry: {0}")]
    Refused(String),
}

/// What a [`RegistryError::NotFound`] could not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    Repository,
    Tag,
    Digest,
}

impl RegistryError {
    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongCredentials => "wrong_credentials",
            Self::CredentialsRequired => "credentials_required",
            Self::Denied { .. } => "denied",
            Self::NotFound { .. } => "not_found",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout => "timeout",
            Self::TokenExpired => "expired",
            Self::ImageOnAnotherRegistry { .. } => "wrong_registry",
            Self::Protocol(_) => "protocol",
            Self::Refused(_) => "refused",
        }
    }

    /// Replaces any occurrence of `secret` in registry-supplied text. Registries should never
    /// echo a password, but error pages of proxies in front of them are not so careful.
    pub fn redact(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |text: String| text.replace(secret, "[redacted]");
        match self {
            Self::Unreachable(text) => Self::Unreachable(scrub(text)),
            Self::Protocol(text) => Self::Protocol(scrub(text)),
            other => other,
        }
    }
}

fn denied_message(repository: Option<&str>) -> String {
    match repository {
        Some(repository) => format!(
            "The credentials are valid but may not pull {repository} (some registries say \
             this when the repository does not exist)."
        ),
        None => "The credentials are valid but the registry refuses access.".to_owned(),
    }
}

fn not_found_message(what: Missing, repository: &str, reference: &str) -> String {
    match what {
        Missing::Repository => format!("The registry has no repository {repository}."),
        Missing::Tag => format!("The repository {repository} has no tag {reference}."),
        Missing::Digest => format!("The repository {repository} has no image {reference}."),
    }
}

/// The error body of the Registry HTTP API: `{"errors":[{"code":…,"message":…}]}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ApiErrors {
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl ApiErrors {
    /// Parses a body that may not be JSON at all (a proxy's HTML page): then it has no codes.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.code.eq_ignore_ascii_case(code))
    }

    /// Whether the registry says something expired. There is no error code for it: ECR
    /// answers an expired token with 403 `DENIED` "Your authorization token has expired",
    /// others put it in the message or the challenge's `error_description`.
    pub fn mention_expiry(&self) -> bool {
        self.errors.iter().any(|e| mentions_expiry(&e.message))
    }
}

pub(crate) fn mentions_expiry(text: &str) -> bool {
    text.to_ascii_lowercase().contains("expired")
}

/// The error codes of the Registry HTTP API (distribution's `errcode` list). Only these are
/// quoted back to users: a code outside the list is text the remote chose.
const KNOWN_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "UNKNOWN",
    "UNAVAILABLE",
];

/// A short description of an unexpected response, for [`RegistryError::Protocol`]: the
/// status, and the registry's standard error codes when it sent any. Never the body or the
/// messages in it: they are the remote's text (an internal service's page, if a request
/// ever reached one), and a message users see must not relay it.
pub(crate) fn describe_unexpected(what: &str, status: reqwest::StatusCode, body: &[u8]) -> String {
    let errors = ApiErrors::parse(body);
    let mut text = format!("{what} returned HTTP {}", status.as_u16());
    let codes: Vec<&str> = KNOWN_CODES
        .iter()
        .copied()
        .filter(|code| errors.has_code(code))
        .take(3)
        .collect();
    if !codes.is_empty() {
        text.push_str(&format!(" ({})", codes.join(", ")));
    }
    text
}

/// The chain of a transport error, de-duplicated, e.g. "error sending request for url
/// (https://…/v2/): client error (Connect): tcp connect error: Connection refused".
pub(crate) fn describe_transport(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missing::Repository => "repository",
            Missing::Tag => "tag",
            Missing::Digest => "digest",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_are_read_for_their_codes() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"team/missing"}}]}"#;
        let errors = ApiErrors::parse(body);
        assert!(errors.has_code("NAME_UNKNOWN"));
        assert!(!errors.has_code("MANIFEST_UNKNOWN"));
        assert!(!ApiErrors::parse(b"<html>502</html>").has_code("NAME_UNKNOWN"));
    }

    #[test]
    fn an_expired_ecr_token_is_recognised() {
        let body = br#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#;
        assert!(ApiErrors::parse(body).mention_expiry());
        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        assert!(!ApiErrors::parse(body).mention_expiry());
    }

    #[test]
    fn unexpected_answers_quote_standard_codes_only() {
        let body = br#"{"errors":[{"code":"UNSUPPORTED","message":"secret internal detail"},{"code":"ami-id: i-0abc","message":"x"}]}"#;
        let text = describe_unexpected("GET /v2/", reqwest::StatusCode::BAD_GATEWAY, body);
        assert_eq!(text, "GET /v2/ returned HTTP 502 (UNSUPPORTED)");
        let page = b"<html>root:x:0:0:root:/root:/bin/bash</html>";
        let text = describe_unexpected("GET /v2/", reqwest::StatusCode::OK, page);
        assert_eq!(text, "GET /v2/ returned HTTP 200");
    }

    #[test]
    fn redaction_scrubs_registry_text() {
        let error = RegistryError::Protocol("proxy said: bad password pw-123".into());
        assert_eq!(
            error.redact("pw-123").to_string(),
            "The registry answered unexpectedly: proxy said: bad password [redacted]"
        );
    }
}
