//! Where an app's code comes from: a repository URL that is safe to hand to git, and the
//! read credentials that go with it.

use super::GitError;
use crate::registry::BasicCredentials;
pub use domain::RepositoryUrl;

/// An app's repository and, for https (or http) repositories that are not public, a user
/// name with a token that may read it (GitHub: any user name with a fine-grained token;
/// GitLab: a deploy token's user name and token).
#[derive(Clone, Debug)]
pub struct GitSource {
    url: RepositoryUrl,
    credentials: Option<BasicCredentials>,
}

impl GitSource {
    pub fn public(url: RepositoryUrl) -> Self {
        Self {
            url,
            credentials: None,
        }
    }

    /// Credentials are for https and http repositories; ssh uses the server's SSH key and
    /// a local repository needs none.
    pub fn with_credentials(
        url: RepositoryUrl,
        credentials: BasicCredentials,
    ) -> Result<Self, GitError> {
        if !url.uses_http() {
            return Err(GitError::InvalidUrl(
                "A user name and token are used only with https:// repositories; ssh \
                 repositories authenticate with a key, and repositories on this server need \
                 none."
                    .into(),
            ));
        }
        if credentials.username.trim().is_empty() || credentials.secret.is_empty() {
            return Err(GitError::Auth(
                "Enter both a user name and a token (or password) for the repository.".into(),
            ));
        }
        if credentials.username.chars().any(char::is_control)
            || credentials.secret.expose().chars().any(char::is_control)
        {
            return Err(GitError::Auth(
                "The repository user name or token contains a line break or control \
                 character; paste it again."
                    .into(),
            ));
        }
        Ok(Self {
            url,
            credentials: Some(credentials),
        })
    }

    pub fn url(&self) -> &RepositoryUrl {
        &self.url
    }

    pub fn credentials(&self) -> Option<&BasicCredentials> {
        self.credentials.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_with_http_repositories_only() {
        let credentials = BasicCredentials::new("bot", "token");
        let ssh = RepositoryUrl::parse("git@github.com:org/app.git").unwrap();
        assert!(GitSource::with_credentials(ssh, credentials.clone()).is_err());
        let https = RepositoryUrl::parse("https://github.com/org/app.git").unwrap();
        let source = GitSource::with_credentials(https.clone(), credentials).unwrap();
        assert_eq!(source.credentials().unwrap().username, "bot");
        assert!(GitSource::with_credentials(https, BasicCredentials::new("bot", "a\nb")).is_err());
    }
}
