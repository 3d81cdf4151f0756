//! A team's ssh deploy key: an ed25519 key pair Berth makes for each team, whose public half
//! the team adds to its repositories (read-only) and whose private half only git over ssh
//! ever uses, never the host account's own keys or agent.
//!
//! The pair is made by Debian's `ssh-keygen` (openssh-client, which git over ssh needs on
//! this server anyway) rather than by a crate: the key format, its encoding and the
//! fingerprint are then exactly OpenSSH's, and Berth carries no key-generation code of its
//! own. ssh-keygen writes the private half to a file, so it runs in a private (0700)
//! scratch directory that is removed as soon as the key is read; the key never goes through
//! an argument or an environment variable.

use super::{command::private_dir, GitError};
use domain::Secret;
use std::{fs, os::unix::fs::PermissionsExt, path::Path, process::Stdio, time::Duration};
use tokio::process::Command;
use zeroize::Zeroizing;

/// ssh-keygen makes an ed25519 pair in milliseconds; this only guards against a hung one.
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A freshly made key pair.
pub struct DeployKey {
    /// The public half as one line of `authorized_keys`: `ssh-ed25519 AAAA… berth:<team>`.
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` and GitHub and GitLab show it.
    pub fingerprint: String,
    /// The private half in OpenSSH's format, unencrypted (it is sealed before it is stored).
    pub private_key: Secret,
}

impl std::fmt::Debug for DeployKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DeployKey {
    /// Makes a new ed25519 pair with `comment` (e.g. `berth:acme`, which code hosts show
    /// beside the key), working in a private scratch directory under `scratch` (created
    /// 0700 when missing; Berth's git directory, so that the private half is never written
    /// outside Berth's data).
    pub async fn generate(comment: &str, scratch: &Path) -> Result<DeployKey, GitError> {
        if comment.is_empty()
            || comment.len() > 200
            || !comment
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '\'' && c != '"')
        {
            return Err(GitError::Other(format!(
                "\"{}\" cannot be a deploy key's comment.",
                comment.escape_debug()
            )));
        }
        let io = |doing: &str, e: std::io::Error| {
            GitError::Other(format!("Could not {doing} for a new deploy key: {e}"))
        };
        private_dir(scratch).map_err(|e| io("prepare a directory", e))?;
        let dir = tempfile::Builder::new()
            .prefix(".keygen-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(scratch)
            .map_err(|e| io("prepare a directory", e))?;
        let file = dir.path().join("key");
        keygen(&[
            "-q".as_ref(),
            "-t".as_ref(),
            "ed25519".as_ref(),
            "-N".as_ref(),
            "".as_ref(),
            "-C".as_ref(),
            comment.as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ])
        .await?;
        let public_file = dir.path().join("key.pub");
        let public_key = fs::read_to_string(&public_file)
            .map_err(|e| io("read the public half", e))?
            .trim()
            .to_owned();
        if !public_key.starts_with("ssh-ed25519 ") {
            return Err(GitError::Other(
                "ssh-keygen did not write an ed25519 public key.".into(),
            ));
        }
        let listed = keygen(&[
            "-l".as_ref(),
            "-E".as_ref(),
            "sha256".as_ref(),
            "-f".as_ref(),
            public_file.as_os_str(),
        ])
        .await?;
        let fingerprint = parse_fingerprint(&listed).ok_or_else(|| {
            GitError::Other(format!(
                "ssh-keygen listed the new key unexpectedly: {}",
                listed.trim()
            ))
        })?;
        let mut private =
            Zeroizing::new(fs::read(&file).map_err(|e| io("read the private half", e))?);
        // Moved into the secret (which wipes them when dropped), not copied.
        let private_key = Secret::from_utf8(std::mem::take(&mut *private)).map_err(|_| {
            GitError::Other("ssh-keygen wrote a private key that is not text.".into())
        })?;
        // Removed here rather than only on drop: a private key file that cannot be removed
        // is an error, not something left behind in silence.
        dir.close()
            .map_err(|e| io("remove the scratch directory", e))?;
        Ok(DeployKey {
            public_key,
            fingerprint,
            private_key,
        })
    }
}

/// Runs ssh-keygen with nothing of Berth's environment; its standard output.
async fn keygen(args: &[&std::ffi::OsStr]) -> Result<String, GitError> {
    let mut command = Command::new("ssh-keygen");
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| super::command::DEFAULT_PATH.into()),
        )
        .env("LC_ALL", "C")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(KEYGEN_TIMEOUT, command.output()).await {
        Err(_) => {
            return Err(GitError::Timeout {
                command: "ssh-keygen",
                after: KEYGEN_TIMEOUT,
            })
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GitError::SshNotInstalled)
        }
        Ok(Err(e)) => return Err(GitError::Other(format!("Could not run ssh-keygen: {e}"))),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        return Err(GitError::Other(format!(
            "ssh-keygen failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `SHA256:…` of `ssh-keygen -l -E sha256`'s line: `256 SHA256:… comment (ED25519)`.
fn parse_fingerprint(listed: &str) -> Option<String> {
    let fingerprint = listed.split_whitespace().nth(1)?;
    let digest = fingerprint.strip_prefix("SHA256:")?;
    (!digest.is_empty()
        && digest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/')))
    .then(|| fingerprint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_read_from_ssh_keygens_line() {
        assert_eq!(
            parse_fingerprint(
                "256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s berth:acme (ED25519)\n"
            )
            .as_deref(),
            Some("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s")
        );
        assert_eq!(parse_fingerprint("256 MD5:aa:bb x (ED25519)"), None);
        assert_eq!(parse_fingerprint(""), None);
    }

    #[tokio::test]
    async fn a_new_pair_is_openssh_ed25519_and_leaves_no_file_behind() {
        let scratch = tempfile::tempdir().unwrap();
        let key = DeployKey::generate("berth:acme", scratch.path())
            .await
            .expect("ssh-keygen (Debian openssh-client) makes a key");
        assert!(
            key.public_key.starts_with("ssh-ed25519 AAAA"),
            "{}",
            key.public_key
        );
        assert!(
            key.public_key.ends_with(" berth:acme"),
            "{}",
            key.public_key
        );
        assert!(
            key.fingerprint.starts_with("SHA256:"),
            "{}",
            key.fingerprint
        );
        let private = key.private_key.expose();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(private.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
        assert!(!format!("{key:?}").contains("PRIVATE"));
        // ssh-keygen agrees that the public half is this private key's.
        let check = tempfile::tempdir().unwrap();
        let file = check.path().join("key");
        fs::write(&file, private).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let derived = std::process::Command::new("ssh-keygen")
            .args(["-y", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        let derived = String::from_utf8(derived.stdout).unwrap();
        let blob = |line: &str| {
            line.split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(blob(&derived), blob(&key.public_key));
        assert_eq!(
            fs::read_dir(scratch.path()).unwrap().count(),
            0,
            "the scratch directory is gone"
        );
        // Two pairs are two different keys.
        let other = DeployKey::generate("berth:acme", scratch.path())
            .await
            .unwrap();
        assert_ne!(other.fingerprint, key.fingerprint);
    }

    #[tokio::test]
    async fn a_comment_is_one_plain_word() {
        let scratch = tempfile::tempdir().unwrap();
        for bad in ["", "two words", "quote'd", "line\nbreak"] {
            assert!(
                DeployKey::generate(bad, scratch.path()).await.is_err(),
                "{bad:?}"
            );
        }
    }
}
