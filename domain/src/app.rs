use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An app's handle: its name in URLs and in the API (`/teams/{team}/apps/{handle}`), unique
/// in its team. Lower-case letters, digits and single hyphens, 1–40 characters, starting
/// with a letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppHandle(String);

crate::parsed_string!(AppHandle);

impl AppHandle {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Choose a handle for the app, e.g. \"web\"; it appears in URLs.",
            ));
        }
        if value.len() > 40 {
            return Err(ParseError::new("Use at most 40 characters for the handle."));
        }
        crate::team::check_handle_characters(value)?;
        // `/teams/{team}/apps/new` is the page that creates an app.
        if value == "new" {
            return Err(ParseError::new(
                "\"new\" is reserved; choose another handle.",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// How an app's releases are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeployMethod {
    /// Direct Docker Image deploy: run a prebuilt image.
    Image,
    /// Dockerfile deploy: build from a git repository.
    Dockerfile,
}

impl DeployMethod {
    pub fn label(self) -> &'static str {
        match self {
            Self::Image => "Direct Docker Image",
            Self::Dockerfile => "Dockerfile",
        }
    }
}

/// The HTTP path a release must answer (any status below 500) before it takes traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HealthPath(String);

crate::parsed_string!(HealthPath);

impl HealthPath {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if !value.starts_with('/') {
            return Err(ParseError::new(
                "Start the health-check path with \"/\", e.g. \"/healthz\".",
            ));
        }
        if value.len() > 200 {
            return Err(ParseError::new("Use at most 200 characters for the path."));
        }
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
        {
            return Err(ParseError::new(
                "The path cannot hold spaces, control characters or \"#\".",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// The name of a configuration variable: a POSIX environment variable name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigKey(String);

crate::parsed_string!(ConfigKey);

/// Set by Berth for every release; an app cannot override it.
pub const RESERVED_CONFIG_KEYS: &[&str] = &["PORT"];

impl ConfigKey {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Give the variable a name, e.g. DATABASE_URL.",
            ));
        }
        if value.len() > 128 {
            return Err(ParseError::new("Use at most 128 characters for the name."));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ParseError::new(format!(
                "\"{value}\" is not a variable name: use letters, digits and \"_\", not starting with a digit."
            )));
        }
        if RESERVED_CONFIG_KEYS.contains(&value) {
            return Err(ParseError::new(format!(
                "{value} is set by Berth for every release; choose another name."
            )));
        }
        Ok(Self(value.to_owned()))
    }

    /// Whether the value is treated as a secret in the UI (shown masked, never sent back to
    /// the browser): names that say password, secret, token, key or credential.
    pub fn looks_secret(&self) -> bool {
        let upper = self.0.to_ascii_uppercase();
        [
            "PASSWORD",
            "PASSWD",
            "SECRET",
            "TOKEN",
            "KEY",
            "CREDENTIAL",
            "_AUTH",
            "DATABASE_URL",
            "DSN",
        ]
        .iter()
        .any(|word| upper.contains(word))
    }
}

/// Checks a configuration value: any text up to 32 KiB without NUL bytes (which no
/// environment can hold).
pub fn parse_config_value(input: &str) -> Result<&str, ParseError> {
    if input.contains('\0') {
        return Err(ParseError::new("The value cannot hold a NUL character."));
    }
    if input.len() > 32 * 1024 {
        return Err(ParseError::new("Use at most 32 KiB for a value."));
    }
    Ok(input)
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OperationKind {
    Deploy,
    Configure,
    Restart,
}

/// Where an operation is in its life: `queued → running → succeeded | failed | cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OperationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// The text forms of an enum that is stored and sent as a keyword: `as_str`, `parse` (with
/// a message listing the keywords), `Display` and `TryFrom<String>` (for serde and the
/// store's rows).
macro_rules! keyword_enum {
    ($type:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($type::$variant => $text),+ }
            }

            pub fn parse(input: &str) -> Result<Self, ParseError> {
                match input.trim() {
                    $($text => Ok($type::$variant),)+
                    "" => Err(ParseError::new(format!(
                        "Choose {}: one of {}.",
                        $what,
                        [$($text),+].join(", ")
                    ))),
                    other => Err(ParseError::new(format!(
                        "\"{other}\" is not {}; use one of: {}.",
                        $what,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $type {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
    };
}

keyword_enum!(DeployMethod, "a deploy method", {
    Image => "image",
    Dockerfile => "dockerfile",
});

keyword_enum!(OperationKind, "an operation kind", {
    Deploy => "deploy",
    Configure => "configure",
    Restart => "restart",
});

keyword_enum!(OperationStatus, "an operation status", {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl OperationStatus {
    /// Whether the operation has ended (it will not change again).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Where the registry credentials an operation pulled with came from: what history shows
/// instead of any value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialSource {
    /// None: public images only.
    None,
    /// A team credential (the operation records its name and secret version).
    Team,
    /// Typed with this deploy.
    Given,
    /// Remembered on the app (for a Dockerfile app: its `APTIBLE_PRIVATE_REGISTRY_*`
    /// configuration).
    Remembered,
}

keyword_enum!(CredentialSource, "a credential source", {
    None => "none",
    Team => "team",
    Given => "given",
    Remembered => "remembered",
});

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn app_handles_follow_the_team_handle_rules() {
        assert_eq!(AppHandle::parse(" web-2 ").unwrap().as_str(), "web-2");
        for bad in [
            "",
            "Web",
            "2web",
            "web-",
            "we--b",
            "web_app",
            "new",
            &"a".repeat(41),
        ] {
            assert!(AppHandle::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(AppHandle::parse("Web")
            .unwrap_err()
            .message
            .contains("\"web\""));
    }

    #[test]
    fn config_keys_are_environment_names_and_port_is_reserved() {
        assert!(ConfigKey::parse("DATABASE_URL").is_ok());
        assert!(ConfigKey::parse("_private").is_ok());
        for bad in ["", "1ABC", "A-B", "A B", "PORT", "É"] {
            assert!(ConfigKey::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(ConfigKey::parse("PORT")
            .unwrap_err()
            .message
            .contains("set by Berth"));
    }

    #[test]
    fn secret_looking_names_are_masked() {
        for secret in [
            "APTIBLE_PRIVATE_REGISTRY_PASSWORD",
            "API_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DATABASE_URL",
        ] {
            assert!(ConfigKey::parse(secret).unwrap().looks_secret(), "{secret}");
        }
        for plain in ["GREETING", "RUST_LOG", "APTIBLE_PRIVATE_REGISTRY_USERNAME"] {
            assert!(!ConfigKey::parse(plain).unwrap().looks_secret(), "{plain}");
        }
    }

    #[test]
    fn health_paths_start_with_a_slash() {
        assert!(HealthPath::parse("/healthz").is_ok());
        assert!(HealthPath::parse("healthz").is_err());
        assert!(HealthPath::parse("/a b").is_err());
    }

    #[test]
    fn kinds_and_statuses_round_trip() {
        for kind in OperationKind::ALL {
            assert_eq!(OperationKind::parse(kind.as_str()).unwrap(), *kind);
        }
        for status in OperationStatus::ALL {
            assert_eq!(OperationStatus::parse(status.as_str()).unwrap(), *status);
        }
        assert!(OperationStatus::parse("done")
            .unwrap_err()
            .message
            .contains("succeeded"));
        assert_eq!(DeployMethod::parse("image").unwrap(), DeployMethod::Image);
        assert!(DeployMethod::parse("docker").is_err());
    }

    proptest! {
        #[test]
        fn parsed_handles_are_stable(input in "[a-z][a-z0-9-]{0,45}") {
            if let Ok(handle) = AppHandle::parse(&input) {
                prop_assert_eq!(AppHandle::parse(handle.as_str()).unwrap(), handle);
            }
        }

        #[test]
        fn parsed_config_keys_are_valid_env_names(input in "\\PC{0,20}") {
            if let Ok(key) = ConfigKey::parse(&input) {
                let valid_start = key.as_str().starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
                prop_assert!(valid_start);
                prop_assert!(key.as_str().chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            }
        }
    }
}
