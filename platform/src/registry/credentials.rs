//! What Berth logs in to a registry with. The secret is [`domain::Secret`], the one secret
//! type of every layer.

pub use domain::Secret;

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
