//! The one type every layer holds a secret in: a registry password, an access token, a git
//! read password, a secret configuration value.

use crate::ParseError;
use std::fmt;
use zeroize::Zeroizing;

/// A password, token or secret value. It cannot be printed (`Debug` and `Display` show
/// `[redacted]`), it has no `Serialize`, and its memory is wiped when it is dropped. The
/// only way to the text is [`Secret::expose`], which is easy to search for.
///
/// A secret travels as this type from the form or API body that carries it to the platform
/// that uses it: sealed and opened only by the service's secrets facade, never copied into a
/// plain `String` on the way.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// A secret someone typed (a password or token): what was given, bar a pasted line
    /// ending, not empty and at most 8 KiB. Not trimmed inside: a secret is exactly its text.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(ParseError::new("Enter the password or access token."));
        }
        if value.len() > 8192 {
            return Err(ParseError::new(
                "That is longer than any registry token (8 KiB at most).",
            ));
        }
        Ok(Self::new(value))
    }

    /// A secret from a trusted place (one opened from the database, or built by Berth).
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The secret's text from bytes that must be UTF-8 (an opened sealed value). The bytes
    /// are wiped whether or not they are text.
    pub fn from_utf8(bytes: Vec<u8>) -> Result<Self, NotText> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Self(Zeroizing::new(text))),
            Err(error) => {
                drop(Zeroizing::new(error.into_bytes()));
                Err(NotText)
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Sealed bytes that did not open to text: a corrupt value, never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret is not UTF-8 text")]
pub struct NotText;

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::parse("s3cr3t-value\n").unwrap();
        assert_eq!(s.expose(), "s3cr3t-value");
        assert!(!format!("{s:?} {s}").contains("s3cr3t"));
    }

    #[test]
    fn typed_secrets_are_checked() {
        assert!(Secret::parse("").is_err());
        assert!(Secret::parse("\r\n").is_err());
        assert!(Secret::parse(&"x".repeat(8193)).is_err());
        assert_eq!(Secret::parse(" a b ").unwrap().expose(), " a b ");
    }

    #[test]
    fn opened_bytes_must_be_text() {
        assert_eq!(Secret::from_utf8(b"pw".to_vec()).unwrap().expose(), "pw");
        assert_eq!(Secret::from_utf8(vec![0xff, 0xfe]), Err(NotText));
    }
}
