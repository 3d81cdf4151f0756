use std::fmt;
use zeroize::Zeroizing;

/// A password or token. It cannot be printed: `Debug` and `Display` show `[redacted]`, it
/// has no `Serialize`, and its memory is wiped when dropped. The only way to the text is
/// [`Secret::expose`], which is greppable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

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

/// A username with its password or access token, as `docker login` takes them. Registries
/// that use tokens (GHCR, GitLab, Docker Hub access tokens) take them as the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub secret: Secret,
}

impl BasicCredentials {
    pub fn new(username: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            username: username.into(),
            secret: secret.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let credentials = BasicCredentials::new("ci-bot", "hunter2-plaintext");
        let shown = format!(
            "{credentials:?} {} {:?}",
            credentials.secret, credentials.secret
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ci-bot"), "{shown}");
        assert_eq!(credentials.secret.expose(), "hunter2-plaintext");
    }
}
