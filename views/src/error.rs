//! The error the browser and the JSON API see, shared by the server and the browser so that
//! a form can show an error next to the field it concerns.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// A field's value is wrong; `message` says how to fix it.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Several fields are wrong at once: each with how to fix it, in the form's order, so
    /// that a form shows every problem after one submission.
    #[error("{}", summary(problems))]
    InvalidFields { problems: Vec<FieldProblem> },
    /// The value is valid but clashes with existing data (a taken e-mail, the last owner).
    #[error("{message}")]
    Conflict { field: String, message: String },
    #[error("Sign in to continue.")]
    Unauthenticated,
    /// The thing does not exist *or* belongs to a team the person is not in.
    #[error("Not found.")]
    NotFound,
    /// The person is in the team but their role does not allow this.
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after_secs: i64,
    },
    /// A registry refused what a deploy asked for (checked before anything is queued):
    /// `reason` is the precise kind (`wrong_credentials`, `denied`, `not_found`, …).
    #[error("{message}")]
    VerificationFailed {
        field: String,
        reason: String,
        message: String,
    },
    /// The platform cannot do this here (e.g. buildah is not installed).
    #[error("{message}")]
    Unavailable { message: String },
    /// Something failed on the server; the cause is in the server's log, not here.
    #[error("Something went wrong on our side; it has been logged. Please try again.")]
    Internal,
    /// The request itself failed (network, encoding).
    #[error("The request failed: {message}")]
    Request { message: String },
}

/// One field's problem within [`AppError::InvalidFields`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

fn summary(problems: &[FieldProblem]) -> String {
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    messages.join(" ")
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The form field this error belongs to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. }
            | AppError::Conflict { field, .. }
            | AppError::VerificationFailed { field, .. } => Some(field),
            AppError::InvalidFields { problems } => problems.first().map(|p| p.field.as_str()),
            _ => None,
        }
    }

    /// The message for form field `field`, if this error concerns it (one of several, for
    /// [`AppError::InvalidFields`]).
    pub fn message_for(&self, field: &str) -> Option<String> {
        match self {
            AppError::InvalidFields { problems } => problems
                .iter()
                .find(|p| p.field == field)
                .map(|p| p.message.clone()),
            other if other.field() == Some(field) => Some(other.to_string()),
            _ => None,
        }
    }

    /// Every field this error concerns.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            AppError::InvalidFields { problems } => {
                problems.iter().map(|p| p.field.as_str()).collect()
            }
            other => other.field().into_iter().collect(),
        }
    }

    /// A short machine-readable name (`invalid`, `not_found`, …) for the JSON API.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Invalid { .. } | AppError::InvalidFields { .. } => "invalid",
            AppError::Conflict { .. } => "conflict",
            AppError::Unauthenticated => "unauthenticated",
            AppError::NotFound => "not_found",
            AppError::Forbidden { .. } => "forbidden",
            AppError::Throttled { .. } => "throttled",
            AppError::VerificationFailed { .. } => "verification_failed",
            AppError::Unavailable { .. } => "unavailable",
            AppError::Internal => "internal",
            AppError::Request { .. } => "request",
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Invalid { .. } | AppError::InvalidFields { .. } => 422,
            AppError::Conflict { .. } => 409,
            AppError::Unauthenticated => 401,
            AppError::NotFound => 404,
            AppError::Forbidden { .. } => 403,
            AppError::Throttled { .. } => 429,
            AppError::VerificationFailed { .. } => 422,
            AppError::Unavailable { .. } => 503,
            AppError::Internal => 500,
            AppError::Request { .. } => 400,
        }
    }
}

#[cfg(feature = "server_fn")]
impl server_fn::error::FromServerFnError for AppError {
    type Encoder = server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: server_fn::error::ServerFnErrorErr) -> Self {
        AppError::Request {
            message: value.to_string(),
        }
    }
}

impl From<domain::ParseError> for AppError {
    /// A parse error without a field; prefer [`FieldExt::field`] at the edge.
    fn from(value: domain::ParseError) -> Self {
        AppError::invalid("", value.message)
    }
}

/// Attaches the form field name to a parse failure: `Email::parse(&email).field("email")?`.
pub trait FieldExt<T> {
    fn field(self, field: &str) -> Result<T, AppError>;
}

impl<T> FieldExt<T> for Result<T, domain::ParseError> {
    fn field(self, field: &str) -> Result<T, AppError> {
        self.map_err(|e| AppError::invalid(field, e.message))
    }
}

/// Collects every field's problem before answering, so that a form shows them all at once:
///
/// ```
/// # use views::{AppError, Problems};
/// let mut problems = Problems::default();
/// let email = problems.check(domain::Email::parse("nobody"), "email");
/// let name = problems.check(domain::TeamName::parse(""), "team_name");
/// let error = problems.finish().unwrap_err();
/// assert_eq!(error.fields(), ["email", "team_name"]);
/// assert!(email.is_none() && name.is_none());
/// ```
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldProblem>);

impl Problems {
    /// The parsed value, or `None` with the problem noted against `field`.
    pub fn check<T>(&mut self, parsed: Result<T, domain::ParseError>, field: &str) -> Option<T> {
        parsed.map_err(|e| self.add(field, e.message)).ok()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        if !self.0.iter().any(|p| p.field == field) {
            self.0.push(FieldProblem {
                field: field.to_owned(),
                message: message.into(),
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Notes a field's refusal (one problem or several); any other error is given back, to
    /// be answered at once.
    pub fn absorb(&mut self, error: AppError) -> Result<(), AppError> {
        match error {
            AppError::Invalid { field, message } => self.add(&field, message),
            AppError::InvalidFields { problems } => {
                for p in problems {
                    self.add(&p.field, p.message);
                }
            }
            other => return Err(other),
        }
        Ok(())
    }

    /// `Ok` when nothing was noted; one problem answers as [`AppError::Invalid`], several as
    /// [`AppError::InvalidFields`].
    pub fn finish(mut self) -> Result<(), AppError> {
        match self.0.len() {
            0 => Ok(()),
            1 => {
                let only = self.0.remove(0);
                Err(AppError::Invalid {
                    field: only.field,
                    message: only.message,
                })
            }
            _ => Err(AppError::InvalidFields { problems: self.0 }),
        }
    }
}
