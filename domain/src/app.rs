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

    /// Whether the name says its value is a secret: such a variable can never be marked
    /// plain, so it is never shown, never a base image's build argument and always redacted
    /// from logs. Names are matched by their `_`-separated words, so that `SMTP_PASS`,
    /// `STRIPE_SK` and `REDIS_URL` count and `PASSENGER_COUNT` or `SKIP_MIGRATIONS` do not.
    pub fn looks_secret(&self) -> bool {
        let upper = self.0.to_ascii_uppercase();
        let words: Vec<&str> = upper.split('_').filter(|w| !w.is_empty()).collect();
        // Anywhere in the name, even glued to other words (`DBPASSWORD`, `APIKEY`).
        const FRAGMENTS: &[&str] = &[
            "PASSWORD",
            "PASSWD",
            "PASSPHRASE",
            "SECRET",
            "TOKEN",
            "CREDENTIAL",
            "APIKEY",
            "PRIVATEKEY",
            "DSN",
            "CONNECTION_STRING",
            "CONNSTR",
        ];
        // Whole words only: `KEY` but not `KEYBOARD`, `PASS` and `PASS1` but not `PASSENGER`.
        const WORDS: &[&str] = &[
            "KEY", "KEYS", "PASS", "PWD", "PW", "SK", "AUTH", "SALT", "PEPPER", "JWT",
        ];
        // Addresses of data stores and mail servers usually carry their password.
        const STORES: &[&str] = &[
            "DATABASE",
            "DB",
            "POSTGRES",
            "POSTGRESQL",
            "PG",
            "MYSQL",
            "MARIADB",
            "SQL",
            "REDIS",
            "MONGO",
            "MONGODB",
            "AMQP",
            "RABBIT",
            "RABBITMQ",
            "MEMCACHE",
            "MEMCACHED",
            "ELASTIC",
            "ELASTICSEARCH",
            "OPENSEARCH",
            "CLICKHOUSE",
            "KAFKA",
            "NATS",
            "CASSANDRA",
            "COUCHDB",
            "NEO4J",
            "INFLUX",
            "INFLUXDB",
            "BROKER",
            "CACHE",
            "QUEUE",
            "SMTP",
            "MAIL",
            "IMAP",
            "LDAP",
            "FTP",
            "SFTP",
            "S3",
            "SENTRY",
            "CELERY",
            "STORAGE",
            "BUCKET",
        ];
        let is_word = |w: &str| WORDS.contains(&w.trim_end_matches(|c: char| c.is_ascii_digit()));
        let is_address =
            |w: &str| matches!(w, "URL" | "URI" | "URLS" | "URIS" | "ADDR" | "ADDRESS");
        FRAGMENTS.iter().any(|f| upper.contains(f))
            || words.iter().any(|w| is_word(w))
            || (words.last().is_some_and(|w| is_address(w))
                && words.iter().any(|w| STORES.contains(w)))
    }
}

/// Whether a configuration value carries a secret whatever its name: a URL with a password
/// in it (`postgres://app:s3cret@db/app`, `redis://:s3cret@cache`) or a private key.
pub fn config_value_looks_secret(value: &str) -> bool {
    let has_password_in_url = value.match_indices("://").any(|(at, sep)| {
        let rest = &value[at + sep.len()..];
        let authority = rest
            .split(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    });
    has_password_in_url || value.contains("PRIVATE KEY-----")
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

/// Where an app's releases run: Berth's own engine on this host, or Aptible (Berth forwards
/// each operation to Aptible's API).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlatformKind {
    #[default]
    Local,
    Aptible,
}

keyword_enum!(PlatformKind, "a platform", {
    Local => "local",
    Aptible => "aptible",
});

/// The handle of an Aptible environment or app: what `aptible apps --environment` shows.
/// Aptible allows lower-case letters, digits, `.`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AptibleHandle(String);

crate::parsed_string!(AptibleHandle);

impl AptibleHandle {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Give the handle as Aptible shows it, e.g. \"my-app\".",
            ));
        }
        if value.len() > 64 {
            return Err(ParseError::new(
                "An Aptible handle has at most 64 characters.",
            ));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ParseError::new(
                "Use the handle exactly as Aptible shows it: lower-case letters, digits, \
                 \".\", \"_\" and \"-\".",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

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
    fn secret_looking_names_are_recognised() {
        // (name, looks secret)
        let table = [
            ("APTIBLE_PRIVATE_REGISTRY_PASSWORD", true),
            ("API_TOKEN", true),
            ("AWS_SECRET_ACCESS_KEY", true),
            ("DATABASE_URL", true),
            ("DATABASE_URI", true),
            ("SMTP_PASS", true),
            ("SMTP_PASSWORD", true),
            ("MAIL_PASS1", true),
            ("DB_PWD", true),
            ("REDIS_URL", true),
            ("REDIS_TLS_URL", true),
            ("MONGO_URI", true),
            ("MONGODB_URI", true),
            ("AMQP_URL", true),
            ("CELERY_BROKER_URL", true),
            ("SENTRY_DSN", true),
            ("SQLALCHEMY_DSN", true),
            ("STRIPE_SK", true),
            ("STRIPE_SECRET_KEY", true),
            ("SECRET_KEY_BASE", true),
            ("GITHUB_TOKEN", true),
            ("SLACK_WEBHOOK_SECRET", true),
            ("GOOGLE_APPLICATION_CREDENTIALS", true),
            ("APP_KEY", true),
            ("APIKEY", true),
            ("JWT_SIGNING_KEY", true),
            ("SESSION_COOKIE_SALT", true),
            ("SESSION_TIMEOUT", false),
            ("BASIC_AUTH", true),
            ("ssl_private_key", true),
            ("GREETING", false),
            ("RUST_LOG", false),
            ("NODE_ENV", false),
            ("PUBLIC_URL", false),
            ("APP_URL", false),
            ("CALLBACK_URI", false),
            ("PASSENGER_COUNT", false),
            ("SKIP_MIGRATIONS", false),
            ("KEYBOARD_LAYOUT", false),
            ("APTIBLE_PRIVATE_REGISTRY_USERNAME", false),
            ("APTIBLE_PRIVATE_REGISTRY_HOST", false),
            ("BASE_IMAGE", false),
        ];
        for (name, secret) in table {
            assert_eq!(
                ConfigKey::parse(name).unwrap().looks_secret(),
                secret,
                "{name}"
            );
        }
    }

    #[test]
    fn values_with_a_password_look_secret_whatever_their_name() {
        let table = [
            ("postgres://app:s3cret@db.internal:5432/app", true),
            ("redis://:s3cret@cache:6379/0", true),
            ("amqp://guest:guest@rabbit", true),
            ("smtp user https://u:p@x.example/path later", true),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc", true),
            ("postgres://app@db/app", false),
            ("https://example.com/a:b@c", false),
            ("user@example.com", false),
            ("hello", false),
            ("registry.example/team/app:1.2", false),
        ];
        for (value, secret) in table {
            assert_eq!(config_value_looks_secret(value), secret, "{value}");
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
