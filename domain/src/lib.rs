//! Parsed values. Each input concept is parsed once at the edge (a form, an API body, a CLI
//! flag) into one of these types; code past the edge trusts them and never re-validates.

mod account;
mod credential;
mod image;
mod team;

pub use account::{ApiTokenName, Email, NewPassword};
pub use credential::{parse_note, parse_username, CredentialKind, CredentialName, SecretInput};
pub use image::{ImageReference, RegistryHost, DOCKER_HUB};
pub use team::{Role, TeamHandle, TeamName};

/// Why a value was rejected, phrased for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}
