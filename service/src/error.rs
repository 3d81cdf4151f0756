//! How a use case fails. Either it is refused for a reason the person can act on (a field to
//! fix, a missing permission, a registry that said no) and the reason travels to the form or
//! the API as a [`views::AppError`]; or something broke on Berth's side, and the cause goes
//! to the server's log while the person sees a generic message.

use views::AppError;

#[derive(Debug)]
pub enum Error {
    /// Refused, with what to do about it.
    Refused(AppError),
    /// Failed on Berth's side. `cause` is for the operator: it never reaches a page or an API
    /// answer, and never holds a secret.
    Internal { cause: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Refused(AppError::invalid(field, message))
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Error::Refused(AppError::Conflict {
            field: field.to_owned(),
            message: message.into(),
        })
    }

    pub fn not_found() -> Self {
        Error::Refused(AppError::NotFound)
    }

    /// Something Berth itself could not do; `what` says what, for the log.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal {
            cause: what.to_string(),
        }
    }

    /// A form whose checks all passed but left a field without its value: a bug in the
    /// checks of `form`, never the person's mistake.
    pub fn unchecked(form: &str) -> Self {
        Error::internal(format!("{form}: a field without a value passed its checks"))
    }

    /// `result`'s value, or `None` with its field's refusal noted in `problems` (so that a
    /// form can show every wrong field at once); any other error is answered at once.
    pub fn noted<T>(problems: &mut views::Problems, result: Result<T>) -> Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Error::Refused(refusal)) => problems
                .absorb(refusal)
                .map(|()| None)
                .map_err(Error::Refused),
            Err(internal) => Err(internal),
        }
    }

    /// The refusal, if it is one (for code that turns one refusal into another).
    pub fn refusal(&self) -> Option<&AppError> {
        match self {
            Error::Refused(error) => Some(error),
            Error::Internal { .. } => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Refused(error) => error.fmt(f),
            Error::Internal { cause } => write!(f, "internal error: {cause}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<AppError> for Error {
    fn from(error: AppError) -> Self {
        Error::Refused(error)
    }
}

impl From<domain::ParseError> for Error {
    /// A parse error without a field; prefer `views::FieldExt::field` at the edge.
    fn from(error: domain::ParseError) -> Self {
        Error::invalid("", error.message)
    }
}

impl From<store::StoreError> for Error {
    fn from(error: store::StoreError) -> Self {
        use store::StoreError;
        match error {
            StoreError::Taken { what: "email" } => {
                Error::conflict("email", "That e-mail address is already in use.")
            }
            StoreError::Taken { what: "handle" } => {
                Error::conflict("handle", "That handle is taken; choose another.")
            }
            StoreError::Taken { what } => {
                Error::conflict(what, format!("That {what} is already taken."))
            }
            StoreError::LastOwner => Error::conflict(
                "role",
                "A team needs at least one owner: make someone else an owner first.",
            ),
            StoreError::NotFound => Error::not_found(),
            other => Error::internal(format!("store: {other}")),
        }
    }
}

impl From<Error> for AppError {
    /// At the edge: a refusal is shown as it is; an internal failure is logged with its
    /// cause and shown as a generic message.
    fn from(error: Error) -> Self {
        match error {
            Error::Refused(error) => error,
            Error::Internal { cause } => {
                tracing::error!(%cause, "internal error");
                AppError::Internal
            }
        }
    }
}
