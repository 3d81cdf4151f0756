use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// A team's handle: the name it has in URLs and in the API (`/teams/{handle}`).
/// Lower-case letters, digits and single hyphens, 2–40 characters, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamHandle(String);

crate::parsed_string!(TeamHandle);

impl TeamHandle {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Choose a handle for the team, e.g. \"acme\"; it appears in URLs.",
            ));
        }
        if value.len() < 2 || value.len() > 40 {
            return Err(ParseError::new("Use 2 to 40 characters for the handle."));
        }
        crate::team::check_handle_characters(value)?;
        Ok(Self(value.to_owned()))
    }
}

/// The character rules team and app handles share (they appear in URLs): lower-case
/// letters, digits and single hyphens, starting with a letter.
pub(crate) fn check_handle_characters(value: &str) -> Result<(), ParseError> {
    let valid = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && !value.contains("--");
    if valid {
        return Ok(());
    }
    let rule = "Use lower-case letters, digits and single hyphens, starting with a letter";
    Err(ParseError::new(match handle_suggestion(value) {
        Some(suggestion) => format!("{rule}, e.g. \"{suggestion}\"."),
        None => format!("{rule}, e.g. \"acme\"."),
    }))
}

/// A valid handle made from `text` (a name such as "My Web" gives "my-web"), when the text
/// has a letter to start one with: lower-case ASCII letters and digits, every run of
/// anything else one hyphen, at most 40 characters.
pub fn handle_suggestion(text: &str) -> Option<String> {
    let mut handle = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || (c.is_ascii_digit() && !handle.is_empty()) {
            handle.push(c);
        } else if !handle.is_empty() && !handle.ends_with('-') {
            handle.push('-');
        }
        if handle.len() >= 40 {
            break;
        }
    }
    let handle = handle.trim_end_matches('-');
    (handle.len() >= 2).then(|| handle.to_owned())
}

/// A team's display name ("Acme Corp").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamName(String);

crate::parsed_string!(TeamName);

impl TeamName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new("Enter the team's name."));
        }
        if value.chars().count() > 80 {
            return Err(ParseError::new("Use at most 80 characters for the name."));
        }
        if value.chars().any(char::is_control) {
            return Err(ParseError::new(
                "The name cannot contain control characters.",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// What a member may do in a team. Ordered: each role can do everything the roles below it
/// can (`Owner > Deployer > Viewer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Reads history and settings.
    Viewer,
    /// Deploys, configures and uses team credentials.
    Deployer,
    /// Manages members and credentials.
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Deployer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Deployer => "deployer",
            Role::Viewer => "viewer",
        }
    }

    /// What the role allows, in the words the members page uses.
    pub fn summary(self) -> &'static str {
        match self {
            Role::Owner => "manage members and credentials, and deploy",
            Role::Deployer => "deploy and configure apps with the team's credentials",
            Role::Viewer => "read apps and their history",
        }
    }

    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.trim() {
            "owner" => Ok(Role::Owner),
            "deployer" => Ok(Role::Deployer),
            "viewer" => Ok(Role::Viewer),
            other => Err(ParseError::new(format!(
                "\"{other}\" is not a role; choose owner, deployer or viewer."
            ))),
        }
    }
}

impl TryFrom<String> for Role {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn handles_follow_the_url_grammar() {
        assert!(TeamHandle::parse("acme").is_ok());
        assert!(TeamHandle::parse("acme-2").is_ok());
        for bad in [
            "", "a", "Acme", "2acme", "acme-", "ac--me", "ac me", "ac_me",
        ] {
            assert!(TeamHandle::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TeamHandle::parse("Acme")
            .unwrap_err()
            .message
            .contains("\"acme\""));
    }

    #[test]
    fn a_suggested_handle_is_itself_valid() {
        assert_eq!(handle_suggestion("My Web").as_deref(), Some("my-web"));
        assert_eq!(
            handle_suggestion("  Acme Corp. (EU) ").as_deref(),
            Some("acme-corp-eu")
        );
        assert_eq!(handle_suggestion("2nd team").as_deref(), Some("nd-team"));
        assert_eq!(handle_suggestion("42"), None);
        let refused = TeamHandle::parse("My Web").unwrap_err().message;
        assert!(refused.contains("\"my-web\""), "{refused}");
    }

    proptest! {
        #[test]
        fn every_suggestion_parses(input in any::<String>()) {
            if let Some(handle) = handle_suggestion(&input) {
                prop_assert!(TeamHandle::parse(&handle).is_ok(), "{handle:?}");
            }
        }
    }

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(Role::Owner.allows(Role::Deployer));
        assert!(Role::Deployer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Deployer));
        assert!(!Role::Deployer.allows(Role::Owner));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    proptest! {
        #[test]
        fn handle_parsing_never_panics_and_accepts_only_url_safe_text(input in any::<String>()) {
            if let Ok(handle) = TeamHandle::parse(&input) {
                prop_assert!(handle.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
