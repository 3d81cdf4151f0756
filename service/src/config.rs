//! Configuration variables: the changes a form or the API asks for, and the environment an
//! app has. Values are [`Secret`]s from the moment they are parsed: any of them may be a
//! password, and the console decides by name which ones it may show.

use crate::{secrets::Secrets, Berth, Error, Result};
use domain::{parse_config_value, ConfigKey, Secret};
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

/// Whether the console treats the value as write-only: names that look secret, and the
/// build-time registry credentials.
pub fn is_write_only(key: &ConfigKey) -> bool {
    key.looks_secret() || is_build_only(key)
}

/// Changes to an app's configuration: each name at most once; `None` unsets it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChanges(BTreeMap<ConfigKey, Option<Secret>>);

impl ConfigChanges {
    /// Checks names and values: valid environment names, values without NUL bytes and at
    /// most 32 KiB, no name twice. Errors belong to the `env` field.
    pub fn parse(changes: Vec<(String, Option<String>)>) -> Result<Self> {
        let mut parsed = BTreeMap::new();
        for (key, value) in changes {
            let key = ConfigKey::parse(&key).map_err(|e| Error::invalid("env", e.message))?;
            if let Some(value) = &value {
                parse_config_value(value)
                    .map_err(|e| Error::invalid("env", format!("{key}: {}", e.message)))?;
            }
            if parsed.contains_key(&key) {
                return Err(Error::invalid(
                    "env",
                    format!("{key} is given twice; give each variable once."),
                ));
            }
            parsed.insert(key, value.map(Secret::new));
        }
        Ok(Self(parsed))
    }

    /// Reads the configuration textarea of the console's forms: `KEY=value` sets, `-KEY`
    /// unsets; blank lines and `#` comments are skipped.
    pub fn parse_text(text: &str) -> Result<Self> {
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
                        format!("Line {number}: -KEY unsets a variable; leave out the \"=value\"."),
                    ));
                }
                changes.push((key.trim().to_owned(), None));
            } else if let Some((key, value)) = line.split_once('=') {
                changes.push((key.trim().to_owned(), Some(value.to_owned())));
            } else {
                return Err(Error::invalid(
                    "env",
                    format!(
                        "Line {number}: write KEY=value to set a variable, or -KEY to unset it."
                    ),
                ));
            }
        }
        Self::parse(changes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.keys().any(|k| k.as_str() == key)
    }

    /// Sets `key` (one of Berth's own names) to `value`.
    pub(crate) fn set(&mut self, key: &str, value: Secret) {
        let key = ConfigKey::parse(key).expect("Berth's own configuration names are valid");
        self.0.insert(key, Some(value));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ConfigKey, Option<&Secret>)> {
        self.0.iter().map(|(k, v)| (k, v.as_ref()))
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

    /// The changes as JSON (`{"KEY": "value" | null}`), to be sealed with the operation that
    /// applies them.
    pub(crate) fn to_json(&self) -> Secret {
        let map: BTreeMap<&str, Option<&str>> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref().map(Secret::expose)))
            .collect();
        Secret::new(serde_json::to_string(&map).expect("a map of strings serialises"))
    }

    /// The changes from [`ConfigChanges::to_json`], opened.
    pub(crate) fn from_json(json: &Secret) -> Result<Self> {
        let map: BTreeMap<String, Option<String>> = serde_json::from_str(json.expose())
            .map_err(|e| Error::internal(format!("stored configuration changes: {e}")))?;
        Self::parse(map.into_iter().collect())
            .map_err(|e| Error::internal(format!("stored configuration changes: {e}")))
    }
}

/// An app's configuration, opened: what its releases get as their environment.
#[derive(Clone, Debug, Default)]
pub struct Environment(BTreeMap<ConfigKey, Secret>);

impl Environment {
    /// The app's stored configuration, every value opened through the secrets facade.
    pub async fn load(berth: &Berth, app_id: i64) -> Result<Self> {
        let mut values = BTreeMap::new();
        for entry in berth.store.config(app_id).await? {
            let value = berth
                .secrets
                .open(&slot(app_id, &entry.key), &entry.sealed)?;
            values.insert(entry.key, value);
        }
        Ok(Self(values))
    }

    pub fn get(&self, key: &str) -> Option<&Secret> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
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
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ConfigKey, &Secret)> {
        self.0.iter()
    }

    /// Values that must never appear in a log: those of write-only names.
    pub fn write_only_values(&self) -> impl Iterator<Item = &Secret> {
        self.0
            .iter()
            .filter(|(k, _)| is_write_only(k))
            .map(|(_, v)| v)
    }

    /// The configuration as a browser may see it: write-only values withheld.
    pub fn rows(&self) -> Vec<ConfigRow> {
        self.0
            .iter()
            .map(|(key, value)| {
                let secret = is_write_only(key);
                ConfigRow {
                    key: key.as_str().to_owned(),
                    value: (!secret).then(|| value.expose().to_owned()),
                    secret,
                }
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
            value: value.map(|v| secrets.seal(&slot(app_id, key), v)),
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
            .map(|(k, v)| (k.as_str(), v.map(Secret::expose)))
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
}
