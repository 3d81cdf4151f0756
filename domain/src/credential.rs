//! The parts of a registry credential that people type.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A credential's name, unique in its team and used in URLs
/// (`/api/v1/teams/{team}/credentials/{name}`): lower-case letters, digits, '.', '_', '-'.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CredentialName(String);

crate::parsed_string!(CredentialName);

impl CredentialName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Name the credential, e.g. \"ghcr-deploy\"; deploys refer to it by name.",
            ));
        }
        if value.len() > 63 {
            return Err(ParseError::new("Use at most 63 characters for the name."));
        }
        let valid = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
            && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid {
            return Err(ParseError::new(format!(
                "Use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. \"{}\".",
                suggestion(value)
            )));
        }
        Ok(Self(value.to_owned()))
    }
}

fn suggestion(value: &str) -> String {
    let mut out: String = value
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.starts_with(['.', '_', '-']) {
        out.remove(0);
    }
    if out.is_empty() {
        "registry-login".into()
    } else {
        out
    }
}

/// What kind of login a credential holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialKind {
    /// Username and password or token: Docker Hub, GHCR, GitLab, Harbor, Quay, any
    /// distribution registry.
    Basic,
    /// An AWS access key (or a role it may assume) from which Berth mints a fresh ECR
    /// token for every verification and deploy.
    Ecr,
}

impl CredentialKind {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        match input.trim() {
            "" | "basic" => Ok(CredentialKind::Basic),
            "ecr" => Ok(CredentialKind::Ecr),
            other => Err(ParseError::new(format!(
                "\"{other}\" is not a credential kind; use basic (a username and password or token) or ecr (an AWS access key)."
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Basic => "basic",
            CredentialKind::Ecr => "ecr",
        }
    }
}

impl TryFrom<String> for CredentialKind {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registry username (or the fixed user name a token goes with, such as `AWS`).
pub fn parse_username(input: &str) -> Result<String, ParseError> {
    let value = input.trim();
    if value.is_empty() {
        return Err(ParseError::new(
            "Enter the username the registry expects with this password or token.",
        ));
    }
    if value.len() > 255 || value.chars().any(char::is_control) {
        return Err(ParseError::new(
            "Use at most 255 printable characters for the username.",
        ));
    }
    Ok(value.to_owned())
}

/// An optional free-text note ("rotates every 90 days; owner: platform team").
pub fn parse_note(input: &str) -> Result<Option<String>, ParseError> {
    let value = input.trim();
    if value.chars().count() > 500 {
        return Err(ParseError::new("Keep the note under 500 characters."));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// An optional expiry date, `YYYY-MM-DD` (as an `<input type="date">` sends it), as Unix
/// milliseconds at the start of that day (UTC). Registries do not say when a token expires,
/// so the person who made it tells Berth, and the list warns before it lapses.
pub fn parse_expiry_date(input: &str) -> Result<Option<i64>, ParseError> {
    let value = input.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ParseError::new(format!(
            "\"{value}\" is not a date; use YYYY-MM-DD, e.g. 2027-03-31."
        ))
    };
    let parts: Vec<&str> = value.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(invalid());
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(invalid());
    }
    let (year, month, day): (i64, u32, u32) = (
        year.parse().map_err(|_| invalid())?,
        month.parse().map_err(|_| invalid())?,
        day.parse().map_err(|_| invalid())?,
    );
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    if !(2000..=2200).contains(&year) || day == 0 || day > days_in_month {
        return Err(invalid());
    }
    Ok(Some(days_from_civil(year, month, day) * 86_400_000))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn expiry_dates_are_days_in_utc() {
        assert_eq!(parse_expiry_date("").unwrap(), None);
        assert_eq!(
            parse_expiry_date("2000-01-01").unwrap(),
            Some(946_684_800_000)
        );
        assert_eq!(
            parse_expiry_date("2024-02-29").unwrap(),
            Some(1_709_164_800_000)
        );
        for bad in [
            "2023-02-29",
            "2027-13-01",
            "27-01-01",
            "2027/01/01",
            "tomorrow",
            "2027-1-1",
        ] {
            assert!(parse_expiry_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_url_safe_with_a_suggestion_when_not() {
        assert!(CredentialName::parse("ghcr-deploy").is_ok());
        assert!(CredentialName::parse("harbor.prod_2").is_ok());
        let e = CredentialName::parse("GHCR Deploy").unwrap_err();
        assert!(e.message.contains("\"ghcr-deploy\""), "{}", e.message);
        assert!(CredentialName::parse("-x").is_err());
    }

    #[test]
    fn kinds_are_basic_or_ecr() {
        assert_eq!(CredentialKind::parse("ecr").unwrap(), CredentialKind::Ecr);
        assert!(CredentialKind::parse("gcr")
            .unwrap_err()
            .message
            .contains("use basic"));
        assert_eq!(
            CredentialKind::parse("basic").unwrap(),
            CredentialKind::Basic
        );
    }

    proptest! {
        #[test]
        fn accepted_names_are_url_path_safe(input in any::<String>()) {
            if let Ok(name) = CredentialName::parse(&input) {
                prop_assert!(name.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
            }
        }
    }
}
