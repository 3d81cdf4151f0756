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

/// The private files of one build: a containers-auth.json holding the credentials of every
/// registry its `FROM` images come from (buildah takes one `--authfile` per build), and
/// whatever else the build should read from a place no other user can (its
/// registries.conf) or write where nobody else looks (the built image's id). Like
/// [`AuthFile`], the directory is 0700, the files are created 0600, and all of it is
/// removed when the `BuildFiles` is dropped: after the build, on every path.
pub(crate) struct BuildFiles {
    auth_file: PathBuf,
    /// Each registry's `base64(user:password)`, for redaction.
    encoded: Vec<Zeroizing<String>>,
    dir: tempfile::TempDir,
}

impl BuildFiles {
    /// Writes the auth file for `credentials` (one entry per registry) into a fresh
    /// private directory under `parent`.
    pub fn write(
        parent: &Path,
        credentials: &[(RegistryHost, BasicCredentials)],
    ) -> io::Result<BuildFiles> {
        let mut auths = serde_json::Map::new();
        let mut encoded = Vec::new();
        for (host, credentials) in credentials {
            let auth = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(
                    Zeroizing::new(format!(
                        "{}:{}",
                        credentials.username,
                        credentials.secret.expose()
                    ))
                    .as_bytes(),
                ),
            );
            auths.insert(
                host.as_str().to_owned(),
                serde_json::json!({ "auth": auth.as_str() }),
            );
            encoded.push(auth);
        }
        let mut document = serde_json::Map::new();
        document.insert("auths".to_owned(), serde_json::Value::Object(auths));
        let mut document = serde_json::Value::Object(document);
        let contents = Zeroizing::new(document.to_string());
        // The document holds copies of the encoded credentials; wipe them too.
        if let Some(auths) = document["auths"].as_object_mut() {
            for entry in auths.values_mut() {
                if let Some(serde_json::Value::String(auth)) = entry.get_mut("auth") {
                    zeroize::Zeroize::zeroize(auth);
                }
            }
        }

        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        fs::set_permissions(parent, fs::Permissions::from_mode(0o700))?;
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        let auth_file = write_private(dir.path(), "auth.json", contents.as_bytes())?;
        Ok(BuildFiles {
            auth_file,
            encoded,
            dir,
        })
    }

    pub fn auth_file(&self) -> &Path {
        &self.auth_file
    }

    /// Writes another private file (0600) into the build's directory.
    pub fn add(&self, name: &str, contents: &str) -> io::Result<PathBuf> {
        write_private(self.dir.path(), name, contents.as_bytes())
    }

    /// Where a file named `name` in the build's directory is (for buildah to write).
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The credentials as they appear in the auth file.
    pub fn encoded_secrets(&self) -> impl Iterator<Item = &str> {
        self.encoded.iter().map(|encoded| encoded.as_str())
    }
}

/// Creates `dir/name` with mode 0600 from the start (never briefly readable by others).
fn write_private(dir: &Path, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(path)
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

    #[test]
    fn one_build_file_holds_every_registry_and_is_gone_when_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let auth_dir = parent.path().join("auth");
        let credentials = [
            (
                RegistryHost::parse("registry.example.com:5000").unwrap(),
                BasicCredentials::new("alice", "pw-a"),
            ),
            (
                RegistryHost::parse("ghcr.io").unwrap(),
                BasicCredentials::new("bob", "pw-b"),
            ),
        ];
        let files = BuildFiles::write(&auth_dir, &credentials).unwrap();
        let conf = files.add("registries.conf", "# nothing\n").unwrap();

        for path in [files.auth_file(), conf.as_path()] {
            assert_eq!(fs::metadata(path).unwrap().mode() & 0o777, 0o600);
        }
        let dir = files.auth_file().parent().unwrap().to_owned();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(files.path_of("iid").parent(), Some(dir.as_path()));
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(files.auth_file()).unwrap()).unwrap();
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(
            json["auths"]["registry.example.com:5000"]["auth"],
            encode("alice:pw-a")
        );
        assert_eq!(json["auths"]["ghcr.io"]["auth"], encode("bob:pw-b"));
        assert_eq!(
            files.encoded_secrets().collect::<Vec<_>>(),
            [encode("alice:pw-a"), encode("bob:pw-b")]
        );

        drop(files);
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(&auth_dir).unwrap().count(), 0);
    }
}
