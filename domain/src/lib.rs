//! Parsed values. Each input concept is parsed once at the edge (a form, an API body, a CLI
//! flag) into one of these types; code past the edge trusts them and never re-validates.

pub use account::{ApiTokenName, Email, NewPassword};
pub use app::{
    config_value_looks_secret, parse_config_value, AppHandle, AptibleHandle, ConfigKey,
    CredentialSource, DeployMethod, HealthPath, OperationKind, OperationStatus, PlatformKind,
    RESERVED_CONFIG_KEYS,
};
pub use aws::{
    check_ecr_registry, ecr_host_parts, parse_external_id, AwsAccessKeyId, AwsRegion, AwsRoleArn,
};
pub use credential::{
    parse_expiry_date, parse_note, parse_username, CredentialKind, CredentialName,
};
pub use git::{CommitId, GitRefName, RepositoryUrl};
pub use image::{Digest, ImageReference, RegistryHost, DOCKER_HUB};
pub use secret::{NotText, Secret};
pub use team::{handle_suggestion, Role, TeamHandle, TeamName};

/// Implements the conversions every parsed string type shares: `as_str`, `Display`, and
/// `TryFrom<String>` / `Into<String>` (so that serde parses on the way in).
macro_rules! parsed_string {
    ($type:ident) => {
        impl $type {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $type {
            type Error = $crate::ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use parsed_string;

mod account;
mod app;
mod aws;
mod credential;
mod git;
mod image;
mod secret;
mod team;

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
