use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An e-mail address, trimmed and lower-cased so that one person has one account.
///
/// The check is deliberately modest (one `@`, a dot in the domain, no spaces): the only
/// authority on whether an address works is a mail server, and Berth does not send mail.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

crate::parsed_string!(Email);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim().to_lowercase();
        if value.is_empty() {
            return Err(ParseError::new("Enter an e-mail address."));
        }
        if value.len() > 254 {
            return Err(ParseError::new(
                "That e-mail address is too long (at most 254 characters).",
            ));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(ParseError::new(
                "An e-mail address needs an @, like name@example.com.",
            ));
        };
        let well_formed = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err(ParseError::new(
                "That is not an e-mail address; use the form name@example.com.",
            ));
        }
        Ok(Self(value))
    }
}

/// A password someone is choosing. Its `Debug` never shows the value, so it cannot end up
/// in a log line by accident.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ParseError::new(format!(
                "Use at least {} characters for the password.",
                Self::MIN_CHARS
            )));
        }
        if chars > Self::MAX_CHARS {
            return Err(ParseError::new(format!(
                "Use at most {} characters for the password.",
                Self::MAX_CHARS
            )));
        }
        if input.trim().is_empty() {
            return Err(ParseError::new("The password cannot be only spaces."));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

/// The label a person gives an API token ("CI deploys", "laptop").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiTokenName(String);

crate::parsed_string!(ApiTokenName);

impl ApiTokenName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Name the token after where it will be used, e.g. \"CI deploys\".",
            ));
        }
        if value.chars().count() > 64 {
            return Err(ParseError::new("Use at most 64 characters for the name."));
        }
        if value.chars().any(char::is_control) {
            return Err(ParseError::new(
                "The name cannot contain control characters.",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected_with_a_hint() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert!(!err.message.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn short_passwords_are_rejected_and_never_printed() {
        assert!(NewPassword::parse("short").is_err());
        let password = NewPassword::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    proptest! {
        #[test]
        fn a_parsed_email_parses_to_itself(local in "[a-z0-9._+-]{1,20}", domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}") {
            let email = Email::parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email);
        }

        #[test]
        fn email_parsing_never_panics(input in any::<String>()) {
            let _ = Email::parse(&input);
        }
    }
}
