//! Configuration variables: the changes a form or the API asks for, and the environment an
//! app has. Values are [`Secret`]s from the moment they are parsed, and every value is secret
//! unless it was marked plain (visible) when it was set: only a plain value is shown to the
//! team, may name a base image, and is left in logs. A name that looks secret
//! ([`ConfigKey::looks_secret`]) or a value that carries a password cannot be marked plain.

use crate::{secrets::Secrets, Berth, Error, Result};
use domain::{config_value_looks_secret, parse_config_value, ConfigKey, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::SecretSlot;
use views::ConfigRow;

/// The username a Dockerfile build pulls private base images with (the names are Aptible's,
/// kept so that apps move between Berth and Aptible unchanged).
pub const PRIVATE_REGISTRY_USERNAME: &str = "APTIBLE_PRIVATE_REGISTRY_USERNAME";
pub const PRIVATE_REGISTRY_PASSWORD: &str = "APTIBLE_PRIVATE_REGISTRY_PASSWORD";
/// The registry those credentials are for; by default the registry of the first `FROM`
/// that cannot be pulled anonymously.
pub const PRIVATE_REGISTRY_HOST: &str = "APTIBLE_PRIVATE_REGISTRY_HOST";
/// Build-time registry credentials: never build arguments, never in a release's environment.
const BUILD_ONLY_PREFIX: &str = "APTIBLE_PRIVATE_REGISTRY_";

/// Whether a configuration variable is a build-time registry credential.
pub fn is_build_only(key: &ConfigKey) -> bool {
    key.as_str().starts_with(BUILD_ONLY_PREFIX)
}

/// A value set for a variable, and whether the team may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValue {
    pub value: Secret,
    /// Marked plain (visible): shown to the team, usable in `FROM`, left in logs.
    pub plain: bool,
}

impl ConfigValue {
    pub fn secret(value: Secret) -> Self {
        Self {
            value,
            plain: false,
        }
    }
}

/// One change as a form or the API gives it, before it is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigInput {
    /// Set the variable to a secret value (the default).
    Secret(String),
    /// Set the variable to a plain (visible) value.
    Plain(String),
    Unset,
}

/// Changes to an app's configuration: each name at most once; `None` unsets it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChanges(BTreeMap<ConfigKey, Option<ConfigValue>>);

impl ConfigChanges {
    /// [`ConfigChanges::parse_inputs`] for changes that set secret values or unset.
    pub fn parse(changes: Vec<(String, Option<String>)>) -> Result<Self> {
        Self::parse_inputs(
            changes
                .into_iter()
                .map(|(key, value)| (key, value.map_or(ConfigInput::Unset, ConfigInput::Secret)))
                .collect(),
        )
    }

    /// Checks names and values: valid environment names, values without NUL bytes and at
    /// most 32 KiB, no name twice, and nothing secret-looking marked plain. Errors belong to
    /// the `env` field and name the variable.
    pub fn parse_inputs(changes: Vec<(String, ConfigInput)>) -> Result<Self> {
        let mut parsed = BTreeMap::new();
        for (key, input) in changes {
            let key = ConfigKey::parse(&key).map_err(|e| Error::invalid("env", e.message))?;
            let (value, plain) = match input {
                ConfigInput::Unset => (None, false),
                ConfigInput::Secret(value) => (Some(value), false),
                ConfigInput::Plain(value) => (Some(value), true),
            };
            if let Some(value) = &value {
                parse_config_value(value)
                    .map_err(|e| Error::invalid("env", format!("{key}: {}", e.message)))?;
            }
            if plain && key.looks_secret() {
                return Err(Error::invalid(
                    "env",
                    format!(
                        "{key} looks like a secret, so it cannot be marked plain: leave it secret, or rename it if it really holds nothing secret."
                    ),
                ));
            }
            if plain && value.as_deref().is_some_and(config_value_looks_secret) {
                return Err(Error::invalid(
                    "env",
                    format!(
                        "{key}: the value holds a password (user:password@ in a URL, or a private key), so it cannot be marked plain; leave it secret."
                    ),
                ));
            }
            let value = value.map(|value| ConfigValue {
                value: Secret::new(value),
                plain,
            });
            if parsed.contains_key(&key) {
                return Err(Error::invalid(
                    "env",
                    format!("{key} is given twice; give each variable once."),
                ));
            }
            parsed.insert(key, value);
        }
        Ok(Self(parsed))
    }

    /// Reads the configuration textareas of the console's forms: `KEY=value` sets, `-KEY`
    /// unsets; blank lines and `#` comments are skipped. Variables set in `secret_text` are
    /// secret, those in `plain_text` plain (visible).
    pub fn parse_form(secret_text: &str, plain_text: &str) -> Result<Self> {
        let mut changes = text_changes(secret_text, "Line")?
            .into_iter()
            .map(|(k, v)| (k, v.map_or(ConfigInput::Unset, ConfigInput::Secret)))
            .collect::<Vec<_>>();
        changes.extend(
            text_changes(plain_text, "Plain variables, line")?
                .into_iter()
                .map(|(k, v)| (k, v.map_or(ConfigInput::Unset, ConfigInput::Plain))),
        );
        Self::parse_inputs(changes)
    }

    /// [`ConfigChanges::parse_form`] with secret values only.
    pub fn parse_text(text: &str) -> Result<Self> {
        Self::parse_form(text, "")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.keys().any(|k| k.as_str() == key)
    }

    /// Sets `key` (one of Berth's own names) to a secret `value`.
    pub(crate) fn set(&mut self, key: &str, value: Secret) {
        let key = ConfigKey::parse(key).expect("Berth's own configuration names are valid");
        self.0.insert(key, Some(ConfigValue::secret(value)));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ConfigKey, Option<&ConfigValue>)> {
        self.0.iter().map(|(k, v)| (k, v.as_ref()))
    }

    /// The values these changes set that are secret (for redacting logs).
    pub fn secret_values(&self) -> impl Iterator<Item = &Secret> {
        self.0
            .values()
            .flatten()
            .filter(|v| !v.plain)
            .map(|v| &v.value)
    }

    /// The names set (`true`) or unset, for history: never values.
    pub fn names(&self) -> Vec<(ConfigKey, bool)> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.is_some()))
            .collect()
    }

    /// The values set whose names were given with this request (for telling credentials
    /// given with a deploy from ones configured before).
    pub fn sets(&self, key: &str) -> bool {
        self.0.iter().any(|(k, v)| k.as_str() == key && v.is_some())
    }

    /// The changes as JSON (`{"KEY": {"value", "plain"} | null}`), to be sealed with the
    /// operation that applies them.
    pub(crate) fn to_json(&self) -> Secret {
        let map: BTreeMap<&str, Option<StoredValue>> = self
            .0
            .iter()
            .map(|(k, v)| {
                let stored = v.as_ref().map(|v| StoredValue::Marked {
                    value: v.value.expose().to_owned(),
                    plain: v.plain,
                });
                (k.as_str(), stored)
            })
            .collect();
        Secret::new(serde_json::to_string(&map).expect("a map of strings serialises"))
    }

    /// The changes from [`ConfigChanges::to_json`], opened. Operations queued before values
    /// could be plain hold bare strings: secret values.
    pub(crate) fn from_json(json: &Secret) -> Result<Self> {
        let map: BTreeMap<String, Option<StoredValue>> = serde_json::from_str(json.expose())
            .map_err(|e| Error::internal(format!("stored configuration changes: {e}")))?;
        let inputs = map
            .into_iter()
            .map(|(key, value)| {
                let input = match value {
                    None => ConfigInput::Unset,
                    Some(StoredValue::Bare(value)) => ConfigInput::Secret(value),
                    Some(StoredValue::Marked { value, plain: true }) => ConfigInput::Plain(value),
                    Some(StoredValue::Marked { value, .. }) => ConfigInput::Secret(value),
                };
                (key, input)
            })
            .collect();
        Self::parse_inputs(inputs)
            .map_err(|e| Error::internal(format!("stored configuration changes: {e}")))
    }
}

/// A value in an operation's sealed changes.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredValue {
    Bare(String),
    Marked { value: String, plain: bool },
}

/// The `(name, value)` changes of a configuration textarea; errors start with `line_word`
/// and the line's number ("Line 3: …").
fn text_changes(text: &str, line_word: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut changes = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim_start();
        let number = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(key) = line.strip_prefix('-') {
            if key.contains('=') {
                return Err(Error::invalid(
                    "env",
                    format!(
                        "{line_word} {number}: -KEY unsets a variable; leave out the \"=value\"."
                    ),
                ));
            }
            changes.push((key.trim().to_owned(), None));
        } else if let Some((key, value)) = line.split_once('=') {
            changes.push((key.trim().to_owned(), Some(value.to_owned())));
        } else {
            return Err(Error::invalid(
                "env",
                format!(
                    "{line_word} {number}: write KEY=value to set a variable, or -KEY to unset it."
                ),
            ));
        }
    }
    Ok(changes)
}

/// An app's configuration, opened: what its releases get as their environment.
#[derive(Clone, Debug, Default)]
pub struct Environment(BTreeMap<ConfigKey, ConfigValue>);

impl Environment {
    /// The app's stored configuration, every value opened through the secrets facade.
    pub async fn load(berth: &Berth, app_id: i64) -> Result<Self> {
        let mut values = BTreeMap::new();
        for entry in berth.store.config(app_id).await? {
            let value = berth
                .secrets
                .open(&slot(app_id, &entry.key), &entry.sealed)?;
            values.insert(
                entry.key,
                ConfigValue {
                    value,
                    plain: entry.plain,
                },
            );
        }
        Ok(Self(values))
    }

    pub fn get(&self, key: &str) -> Option<&Secret> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| &v.value)
    }

    /// The value of `key` when it is set and not blank.
    pub fn non_blank(&self, key: &str) -> Option<&Secret> {
        self.get(key).filter(|v| !v.expose().trim().is_empty())
    }

    /// This environment with `changes` applied.
    pub fn with(mut self, changes: &ConfigChanges) -> Self {
        for (key, value) in changes.iter() {
            match value {
                Some(value) => self.0.insert(key.clone(), value.clone()),
                None => self.0.remove(key),
            };
        }
        self
    }

    /// What a release's environment holds: everything but the build-time registry
    /// credentials.
    pub fn for_release(&self) -> Vec<(String, Secret)> {
        self.0
            .iter()
            .filter(|(k, _)| !is_build_only(k))
            .map(|(k, v)| (k.as_str().to_owned(), v.value.clone()))
            .collect()
    }

    /// Every variable with its value and whether it is plain.
    pub fn iter(&self) -> impl Iterator<Item = (&ConfigKey, &ConfigValue)> {
        self.0.iter()
    }

    /// The plain (visible) variables: the only ones a base image's `FROM` may use.
    pub fn plain_values(&self) -> impl Iterator<Item = (&ConfigKey, &Secret)> {
        self.0
            .iter()
            .filter(|(_, v)| v.plain)
            .map(|(k, v)| (k, &v.value))
    }

    /// Values that must never appear in a log or a page: every value not marked plain.
    pub fn secret_values(&self) -> impl Iterator<Item = &Secret> {
        self.0.values().filter(|v| !v.plain).map(|v| &v.value)
    }

    /// The configuration as a browser may see it: secret values withheld.
    pub fn rows(&self) -> Vec<ConfigRow> {
        self.0
            .iter()
            .map(|(key, value)| ConfigRow {
                key: key.as_str().to_owned(),
                value: value.plain.then(|| value.value.expose().to_owned()),
                secret: !value.plain,
            })
            .collect()
    }
}

/// Where one configuration value of an app is sealed.
pub(crate) fn slot(app_id: i64, key: &ConfigKey) -> SecretSlot {
    SecretSlot::AppConfig {
        app_id,
        key: key.as_str().to_owned(),
    }
}

/// The changes sealed for the app's configuration rows, as the store applies them when the
/// operation succeeds.
pub(crate) fn sealed_changes(
    secrets: &Secrets,
    app_id: i64,
    changes: &ConfigChanges,
) -> Vec<store::ConfigChange> {
    changes
        .iter()
        .map(|(key, value)| store::ConfigChange {
            key: key.clone(),
            value: value.map(|v| secrets.seal(&slot(app_id, key), &v.value)),
            plain: value.is_some_and(|v| v.plain),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_text_sets_and_unsets() {
        let text =
            "# comment\nLOG_LEVEL=debug\n\n  -OLD_FLAG\r\nURL=https://x.example/?a=b\nEMPTY=\n";
        let changes = ConfigChanges::parse_text(text).unwrap();
        let listed: Vec<(&str, Option<&str>)> = changes
            .iter()
            .map(|(k, v)| (k.as_str(), v.map(|v| v.value.expose())))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("EMPTY", Some("")),
                ("LOG_LEVEL", Some("debug")),
                ("OLD_FLAG", None),
                ("URL", Some("https://x.example/?a=b")),
            ]
        );
    }

    #[test]
    fn configuration_text_errors_name_the_line() {
        let error = views::AppError::from(ConfigChanges::parse_text("A=1\nnonsense").unwrap_err());
        assert_eq!(error.field(), Some("env"));
        assert!(error.to_string().starts_with("Line 2:"));
        assert!(ConfigChanges::parse_text("-A=1").is_err());
    }

    #[test]
    fn a_name_given_twice_or_an_invalid_one_is_refused_at_env() {
        for changes in [
            vec![
                ("A".to_owned(), Some("1".to_owned())),
                ("A".to_owned(), None),
            ],
            vec![("PORT".to_owned(), Some("1".to_owned()))],
            vec![("A".to_owned(), Some("nul\0".to_owned()))],
        ] {
            let error = views::AppError::from(ConfigChanges::parse(changes).unwrap_err());
            assert_eq!(error.field(), Some("env"), "{error}");
        }
    }

    #[test]
    fn changes_survive_the_round_trip_through_their_sealed_form() {
        let changes = ConfigChanges::parse_text("A=1\n-B\nTOKEN=s3cr3t").unwrap();
        assert_eq!(
            ConfigChanges::from_json(&changes.to_json()).unwrap(),
            changes
        );
    }

    #[test]
    fn values_are_secret_unless_marked_plain() {
        let changes =
            ConfigChanges::parse_form("GREETING=hi there\n", "LOG_LEVEL=debug\n").unwrap();
        let environment = Environment::default().with(&changes);
        let rows = environment.rows();
        assert_eq!(rows[0].key, "GREETING");
        assert_eq!((rows[0].value.as_deref(), rows[0].secret), (None, true));
        assert_eq!(rows[1].key, "LOG_LEVEL");
        assert_eq!(
            (rows[1].value.as_deref(), rows[1].secret),
            (Some("debug"), false)
        );
        let secrets: Vec<&str> = environment.secret_values().map(Secret::expose).collect();
        assert_eq!(secrets, ["hi there"]);
        let plain: Vec<&str> = environment
            .plain_values()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(plain, ["LOG_LEVEL"]);
    }

    #[test]
    fn secret_looking_names_and_values_cannot_be_plain_and_the_error_names_the_variable() {
        for (key, value) in [
            ("SMTP_PASS", "hunter22"),
            ("REDIS_URL", "redis://cache:6379"),
            ("MONGO_URI", "mongodb://db"),
            ("STRIPE_SK", "sk_live_x"),
            ("APTIBLE_PRIVATE_REGISTRY_PASSWORD", "pw"),
            ("UPSTREAM", "https://user:s3cret@upstream.example/"),
        ] {
            let error = views::AppError::from(
                ConfigChanges::parse_inputs(vec![(
                    key.to_owned(),
                    ConfigInput::Plain(value.to_owned()),
                )])
                .unwrap_err(),
            );
            assert_eq!(error.field(), Some("env"), "{key}");
            assert!(error.to_string().starts_with(key), "{key}: {error}");
            assert!(!error.to_string().contains(value), "{key}: {error}");
            // The same, secret, is fine.
            assert!(ConfigChanges::parse_inputs(vec![(
                key.to_owned(),
                ConfigInput::Secret(value.to_owned())
            )])
            .is_ok());
        }
        let error =
            views::AppError::from(ConfigChanges::parse_form("", "A=1\nnonsense").unwrap_err());
        assert!(
            error.to_string().starts_with("Plain variables, line 2:"),
            "{error}"
        );
        assert!(
            ConfigChanges::parse_form("A=1", "A=2").is_err(),
            "given twice"
        );
    }

    #[test]
    fn the_plain_mark_survives_the_sealed_form_and_old_bare_values_stay_secret() {
        let changes = ConfigChanges::parse_form("TOKEN=s3cr3t\n-B", "A=1").unwrap();
        let round_trip = ConfigChanges::from_json(&changes.to_json()).unwrap();
        assert_eq!(round_trip, changes);
        let old = ConfigChanges::from_json(&Secret::new(r#"{"A":"1","B":null}"#)).unwrap();
        let listed: Vec<(&str, Option<bool>)> = old
            .iter()
            .map(|(k, v)| (k.as_str(), v.map(|v| v.plain)))
            .collect();
        assert_eq!(listed, [("A", Some(false)), ("B", None)]);
    }
}
