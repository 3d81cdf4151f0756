//! The credentials of one pull, in the file buildah reads them from (`--authfile`).
//!
//! Why a file: argv is readable by every user of the machine (`/proc/*/cmdline`, `ps`), and
//! a child's environment is one crash dump or debug log away from an operator's screen. The
//! file lives in a directory of its own (0700) and is created 0600 — never briefly readable
//! by others — and both are removed when the [`AuthFile`] is dropped: after the pull,
//! whether it succeeded, failed or panicked.

use crate::registry::BasicCredentials;
use base64::Engine as _;
use domain::RegistryHost;
use std::{
    fs::{self, DirBuilder, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};
use zeroize::Zeroizing;

pub(crate) struct AuthFile {
    path: PathBuf,
    /// `base64(user:password)`, the form the password takes inside the file, for redaction.
    encoded: Zeroizing<String>,
    // Dropping it removes the directory and the file in it.
    _dir: tempfile::TempDir,
}

impl AuthFile {
    /// Writes containers-auth.json (`{"auths": {host: {"auth": base64(user:password)}}}`)
    /// into a fresh private directory under `parent`.
    pub fn write(
        parent: &Path,
        host: &RegistryHost,
        credentials: &BasicCredentials,
    ) -> io::Result<AuthFile> {
        let encoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(
                Zeroizing::new(format!(
                    "{}:{}",
                    credentials.username,
                    credentials.secret.expose()
                ))
                .as_bytes(),
            ),
        );
        let contents = Zeroizing::new(
            serde_json::json!({ "auths": { host.as_str(): { "auth": encoded.as_str() } } })
                .to_string(),
        );
        Self::create(parent, contents, encoded)
    }

    /// An auth file with no logins, for public images: without one, buildah would fall
    /// back to whatever `docker login` or `podman login` left in root's home.
    pub fn anonymous(parent: &Path) -> io::Result<AuthFile> {
        Self::create(
            parent,
            Zeroizing::new(r#"{"auths":{}}"#.to_owned()),
            Zeroizing::default(),
        )
    }

    fn create(
        parent: &Path,
        contents: Zeroizing<String>,
        encoded: Zeroizing<String>,
    ) -> io::Result<AuthFile> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        // The mode given above applies only when the directory is new.
        fs::set_permissions(parent, fs::Permissions::from_mode(0o700))?;
        let dir = tempfile::Builder::new()
            .prefix("pull-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        let path = dir.path().join("auth.json");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        Ok(AuthFile {
            path,
            encoded,
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The password as it appears in the file.
    pub fn encoded_secret(&self) -> &str {
        &self.encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_auth_file_is_private_and_gone_when_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let auth_dir = parent.path().join("auth");
        let host = RegistryHost::parse("registry.example.com:5000").unwrap();
        let credentials = BasicCredentials::new("ci", "s3cret");
        let file = AuthFile::write(&auth_dir, &host, &credentials).unwrap();

        assert_eq!(fs::metadata(file.path()).unwrap().mode() & 0o777, 0o600);
        let dir = file.path().parent().unwrap().to_owned();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&auth_dir).unwrap().mode() & 0o777, 0o700);
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(
            json["auths"]["registry.example.com:5000"]["auth"],
            base64::engine::general_purpose::STANDARD.encode("ci:s3cret")
        );
        assert_eq!(
            file.encoded_secret(),
            json["auths"]["registry.example.com:5000"]["auth"]
        );

        drop(file);
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(&auth_dir).unwrap().count(), 0);
    }
}
