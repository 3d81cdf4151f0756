//! Where an app's code comes from: a repository URL that is safe to hand to git, and the
//! read credentials that go with it.

use super::GitError;
use crate::registry::BasicCredentials;
pub use domain::RepositoryUrl;
use domain::Secret;

/// An app's repository and what reads it: for https (or http) repositories that are not
/// public, a user name with a token (GitHub: any user name with a fine-grained token;
/// GitLab: a deploy token's user name and token); for ssh repositories, the team's deploy
/// key.
#[derive(Clone, Debug)]
pub struct GitSource {
    url: RepositoryUrl,
    credentials: Option<BasicCredentials>,
    ssh_key: Option<SshKey>,
}

/// The key git over ssh authenticates with: a team's deploy key (see
/// [`DeployKey`](super::DeployKey)). Without one, ssh offers no key at all.
#[derive(Clone, Debug)]
pub struct SshKey {
    /// The private half in OpenSSH's format.
    pub private_key: Secret,
    /// `SHA256:…`, to name the key in messages (it is public).
    pub fingerprint: String,
}

impl GitSource {
    pub fn public(url: RepositoryUrl) -> Self {
        Self {
            url,
            credentials: None,
            ssh_key: None,
        }
    }

    /// An ssh repository read with `key` (other repositories do not use ssh keys).
    pub fn with_ssh_key(url: RepositoryUrl, key: SshKey) -> Result<Self, GitError> {
        if !url.uses_ssh() {
            return Err(GitError::InvalidUrl(
                "A deploy key is used only with ssh repositories (git@host:org/app.git or \
                 ssh://…)."
                    .into(),
            ));
        }
        if !key.private_key.expose().contains("PRIVATE KEY-----") {
            return Err(GitError::Other(
                "The deploy key is not a private key in OpenSSH's format.".into(),
            ));
        }
        Ok(Self {
            url,
            credentials: None,
            ssh_key: Some(key),
        })
    }

    /// Credentials are for https and http repositories; ssh uses the team's deploy key and
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
            ssh_key: None,
        })
    }

    pub fn url(&self) -> &RepositoryUrl {
        &self.url
    }

    pub fn credentials(&self) -> Option<&BasicCredentials> {
        self.credentials.as_ref()
    }

    pub fn ssh_key(&self) -> Option<&SshKey> {
        self.ssh_key.as_ref()
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

    #[test]
    fn a_deploy_key_goes_with_ssh_repositories_only() {
        let key = SshKey {
            private_key: Secret::new(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            ),
            fingerprint: "SHA256:abc".into(),
        };
        let https = RepositoryUrl::parse("https://github.com/org/app.git").unwrap();
        assert!(GitSource::with_ssh_key(https, key.clone()).is_err());
        let local = RepositoryUrl::parse("/srv/git/app.git").unwrap();
        assert!(GitSource::with_ssh_key(local, key.clone()).is_err());
        let ssh = RepositoryUrl::parse("git@github.com:org/app.git").unwrap();
        let source = GitSource::with_ssh_key(ssh, key).unwrap();
        assert_eq!(source.ssh_key().unwrap().fingerprint, "SHA256:abc");
        assert!(
            !format!("{source:?}").contains("OPENSSH"),
            "the key never prints"
        );
    }
}
