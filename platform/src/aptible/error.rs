//! Why a call to Aptible failed, in the kinds Berth's pages and API tell apart.

use serde::Deserialize;

/// At most this much of Aptible's `message` reaches a user.
const MAX_MESSAGE_CHARS: usize = 500;
/// Error ids are short snake_case words; anything longer is not one.
const MAX_ERROR_ID_CHARS: usize = 64;

/// A failed call to Aptible. Each variant is one thing the UI says; [`AptibleError::kind`]
/// is its stable name. No variant holds the token or the password: messages are built from
/// statuses, Aptible's `error` id and its documented `message` field (cut to 500
/// characters), and [`AptibleError::redact`] scrubs a secret from that remote text as a
/// second line of defence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AptibleError {
    /// The account has two-factor authentication: ask for the one-time code and sign in
    /// again with it, passing `previous_login_attempt_id` back.
    #[error("Aptible asks for the one-time code from the account's two-factor app.")]
    OtpRequired {
        previous_login_attempt_id: Option<String>,
    },

    /// The auth server rejected the email, password or one-time code.
    #[error("Aptible did not accept the sign-in: {message}")]
    WrongCredentials { message: String },

    /// The token expired or was revoked (`expired_token`, `invalid_token`, or any 401 to a
    /// request that carried one): the team must connect again. Aptible's clients never
    /// refresh tokens.
    #[error("Aptible no longer accepts Berth's token ({message}); connect the team again.")]
    ReconnectNeeded { message: String },

    #[error("{message}")]
    NotFound { message: String },

    /// `multiple_resources_found`: the handle names several apps.
    #[error("{message}")]
    Ambiguous { message: String },

    /// Any other error Aptible answered; shown with its `error` id.
    #[error("Aptible answered {error} (HTTP {status}): {message}")]
    Api {
        status: u16,
        error: String,
        message: String,
    },

    /// Connection refused, DNS or TLS failure, timeout, or a connection that broke off.
    #[error("Cannot reach Aptible: {message}")]
    Unreachable { message: String },

    /// Aptible answered, but not in the shape its clients expect.
    #[error("Aptible answered unexpectedly: {message}")]
    Protocol { message: String },

    /// The egress guard, or Berth's rule for URLs named in Aptible's answers (the log
    /// download), kept Berth from contacting an address. Nothing was sent there.
    #[error("Berth did not contact {message}")]
    Refused { message: String },
}

impl AptibleError {
    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OtpRequired { .. } => "otp_required",
            Self::WrongCredentials { .. } => "wrong_credentials",
            Self::ReconnectNeeded { .. } => "reconnect_needed",
            Self::NotFound { .. } => "not_found",
            Self::Ambiguous { .. } => "ambiguous",
            Self::Api { .. } => "api",
            Self::Unreachable { .. } => "unreachable",
            Self::Protocol { .. } => "protocol",
            Self::Refused { .. } => "refused",
        }
    }

    /// Replaces `secret` in every text the error holds (a remote message could quote what
    /// it was sent).
    pub fn redact(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |text: String| text.replace(secret, "[redacted]");
        match self {
            Self::OtpRequired {
                previous_login_attempt_id,
            } => Self::OtpRequired {
                previous_login_attempt_id: previous_login_attempt_id.map(scrub),
            },
            Self::WrongCredentials { message } => Self::WrongCredentials {
                message: scrub(message),
            },
            Self::ReconnectNeeded { message } => Self::ReconnectNeeded {
                message: scrub(message),
            },
            Self::NotFound { message } => Self::NotFound {
                message: scrub(message),
            },
            Self::Ambiguous { message } => Self::Ambiguous {
                message: scrub(message),
            },
            Self::Api {
                status,
                error,
                message,
            } => Self::Api {
                status,
                error: scrub(error),
                message: scrub(message),
            },
            Self::Unreachable { message } => Self::Unreachable {
                message: scrub(message),
            },
            Self::Protocol { message } => Self::Protocol {
                message: scrub(message),
            },
            Self::Refused { message } => Self::Refused {
                message: scrub(message),
            },
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol {
            message: message.into(),
        }
    }
}

/// Aptible's error body, `{"code", "error", "message"}` (the `Error` schema of the API's
/// OpenAPI document), plus the auth server's `exception_context`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub exception_context: Option<ExceptionContext>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExceptionContext {
    #[serde(default)]
    pub failed_login_attempt_id: Option<serde_json::Value>,
}

impl ErrorBody {
    /// `None` when the body is not Aptible's error shape (an HTML page from a proxy, an
    /// empty body): then only the status is known.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let parsed: Self = serde_json::from_slice(body).ok()?;
        parsed.error.as_ref()?;
        Some(parsed)
    }

    /// The `error` id, if it looks like one (`invalid_token`, `multiple_resources_found`).
    pub fn error_id(&self) -> Option<String> {
        let id = self.error.as_deref()?.trim();
        let plausible = !id.is_empty()
            && id.len() <= MAX_ERROR_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        plausible.then(|| id.to_owned())
    }

    /// Aptible's `message`, cut to [`MAX_MESSAGE_CHARS`] and to one line's worth of
    /// printable text; empty when there is none.
    pub fn message(&self) -> String {
        let text: String = self
            .message
            .as_deref()
            .unwrap_or("")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = text.trim();
        match text.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }

    /// `exception_context.failed_login_attempt_id`, which the CLI sends back as
    /// `previous_login_attempt_id` (a string in the CLI's tests; a number is taken too).
    pub fn failed_login_attempt_id(&self) -> Option<String> {
        match self
            .exception_context
            .as_ref()?
            .failed_login_attempt_id
            .as_ref()?
        {
            serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
            serde_json::Value::Number(id) => Some(id.to_string()),
            _ => None,
        }
    }

    /// "error_id: message", or the one that is there.
    pub fn describe(&self) -> String {
        match (self.error_id(), self.message()) {
            (Some(id), message) if message.is_empty() => id,
            (Some(id), message) => format!("{id}: {message}"),
            (None, message) => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aptible_error_bodies_are_read() {
        let body = br#"{"code": 401, "error": "expired_token", "message": "Token expired"}"#;
        let parsed = ErrorBody::parse(body).unwrap();
        assert_eq!(parsed.error_id().as_deref(), Some("expired_token"));
        assert_eq!(parsed.message(), "Token expired");
        assert_eq!(parsed.describe(), "expired_token: Token expired");
    }

    #[test]
    fn the_otp_challenge_carries_the_login_attempt() {
        let body = br#"{"code": 401, "error": "otp_token_required", "message": "",
            "exception_context": {"failed_login_attempt_id": "attempt-123"}}"#;
        let parsed = ErrorBody::parse(body).unwrap();
        assert_eq!(parsed.describe(), "otp_token_required");
        assert_eq!(
            parsed.failed_login_attempt_id().as_deref(),
            Some("attempt-123")
        );
        let numeric = br#"{"error": "otp_token_required", "exception_context": {"failed_login_attempt_id": 42}}"#;
        assert_eq!(
            ErrorBody::parse(numeric)
                .unwrap()
                .failed_login_attempt_id()
                .as_deref(),
            Some("42")
        );
        let without = br#"{"error": "otp_token_required", "exception_context": {}}"#;
        assert_eq!(
            ErrorBody::parse(without).unwrap().failed_login_attempt_id(),
            None
        );
    }

    #[test]
    fn other_bodies_are_not_taken_for_aptible_errors() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{}",
            br#"{"message": "no error id"}"#,
            b"[1, 2]",
        ] {
            assert!(ErrorBody::parse(body).is_none(), "{body:?}");
        }
    }

    #[test]
    fn remote_text_is_bounded() {
        let long = "x".repeat(2000);
        let body = format!(r#"{{"error": "{long}", "message": "{long}\nsecond line"}}"#);
        let parsed = ErrorBody::parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.error_id(), None, "not an id");
        let message = parsed.message();
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
        let spaced = ErrorBody::parse(br#"{"error": "e", "message": "a\nb\u0007c"}"#).unwrap();
        assert_eq!(spaced.message(), "a b c");
    }

    #[test]
    fn secrets_are_scrubbed_from_messages() {
        let error = AptibleError::Api {
            status: 422,
            error: "unprocessable_entity".into(),
            message: "password hunter2 is invalid".into(),
        }
        .redact("hunter2");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(error.kind(), "api");
    }
}
