//! Secrets at rest. Every secret Berth stores (registry passwords, tokens, AWS keys) is
//! sealed here with AES-256-GCM under a master key that lives outside the database:
//! `BERTH_MASTER_KEY`, `BERTH_MASTER_KEY_FILE`, or a key file generated in the data dir.
//!
//! A sealed value is `v1.<key id>.<base64(nonce ‖ ciphertext ‖ tag)>`:
//! - a fresh random 96-bit nonce per value, so equal secrets never look alike;
//! - the *record's identity* (e.g. `credential:42:secret`) is the AEAD associated data, so a
//!   ciphertext copied into another row fails to open instead of leaking there;
//! - the key id says which key sealed it, so keys can be rotated: a keyring holds the current
//!   key (which seals) and older ones (which still open) until every value is re-sealed.

use aes_gcm::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    Aes256Gcm, Key, Nonce,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use sha2::{Digest, Sha256};
use std::{fmt, fs, io::Write, path::Path};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const PREFIX: &str = "v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("{source_name}: {message}")]
    BadKey {
        source_name: String,
        message: String,
    },
    #[error("the value was sealed with key {0}, which this keyring does not have")]
    UnknownKey(String),
    /// Wrong key material for the id, a tampered value, or a value moved to another record.
    #[error("the value cannot be opened: it was altered or belongs to another record")]
    Tampered,
    #[error("the value is not a sealed secret")]
    Malformed,
    #[error("key file {path}: {message}")]
    KeyFile { path: String, message: String },
}

/// A 256-bit master key. Its id is derived from the key itself (the first 8 hex digits of
/// SHA-256 over it), so the wrong key can never pass for the right one.
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        Self::from_bytes(key.into())
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Self {
            id,
            key: Zeroizing::new(bytes),
        }
    }

    /// Parses the base64 form used in `BERTH_MASTER_KEY` and key files.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes =
            Zeroizing::new(B64.decode(text.trim()).map_err(|_| {
                "not base64; generate a key with `openssl rand -base64 32`".to_owned()
            })?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "a key is 32 bytes (44 base64 characters), this is {} bytes",
                bytes.len()
            )
        })?;
        Ok(Self::from_bytes(array))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(*self.key))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&*self.key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, [redacted])", self.id)
    }
}

/// The current key (seals new values) and older keys (still open values sealed with them).
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    /// `keys[0]` is the current key.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, VaultError> {
        if keys.is_empty() {
            return Err(VaultError::BadKey {
                source_name: "keyring".into(),
                message: "no key".into(),
            });
        }
        Ok(Self { keys })
    }

    /// Keys from text: one base64 key per line or comma-separated, current first.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, VaultError> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|line| {
                MasterKey::from_base64(line).map_err(|message| VaultError::BadKey {
                    source_name: source_name.into(),
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(VaultError::BadKey {
                source_name: source_name.into(),
                message: "holds no key".into(),
            });
        }
        Self::new(keys)
    }

    /// Reads a key file; a missing file is created with a new key (mode 0600) when
    /// `create` is true.
    pub fn from_file(path: &Path, create: bool) -> Result<Self, VaultError> {
        let file_error = |message: String| VaultError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() {
            if !create {
                return Err(file_error("does not exist".into()));
            }
            let key = MasterKey::generate();
            write_key_file(path, &[&key]).map_err(|e| file_error(e.to_string()))?;
            return Self::new(vec![key]);
        }
        check_private(path).map_err(file_error)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?);
        Self::parse(&text, &path.display().to_string())
    }

    pub fn current(&self) -> &MasterKey {
        &self.keys[0]
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(MasterKey::id)
    }

    pub fn has_key(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// A keyring whose current key is new and which still opens everything this one opens.
    pub fn rotated(self) -> Self {
        let mut keys = vec![MasterKey::generate()];
        keys.extend(self.keys);
        Self { keys }
    }

    /// Seals `plaintext` for the record named by `context` (e.g. `credential:42:secret`).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let key = self.current();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        format!("{PREFIX}.{}.{}", key.id, B64.encode(blob))
    }

    /// Opens a sealed value for the record named by `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (key_id, blob) = parse_sealed(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(VaultError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        key.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Tampered)
    }

    /// Re-seals a value under the current key (for rotation); `None` if it already is.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<Option<String>, VaultError> {
        if key_id_of(sealed)? == self.current().id {
            return Ok(None);
        }
        let plaintext = self.open(sealed, context)?;
        Ok(Some(self.seal(&plaintext, context)))
    }

    /// Writes the keyring to a key file (current key first), mode 0600, atomically.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        write_key_file(path, &self.keys.iter().collect::<Vec<_>>())
    }
}

/// The keyring of a running server. When a value names a key it does not have (another
/// process ran `berth rotate-key` and re-sealed it), the key file is read again once, so that
/// rotation needs no restart.
#[derive(Debug)]
pub struct SharedKeyring {
    keyring: std::sync::RwLock<std::sync::Arc<Keyring>>,
    file: Option<std::path::PathBuf>,
}

impl SharedKeyring {
    pub fn new(keyring: Keyring, file: Option<std::path::PathBuf>) -> Self {
        Self {
            keyring: std::sync::RwLock::new(std::sync::Arc::new(keyring)),
            file,
        }
    }

    pub fn get(&self) -> std::sync::Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Seals under the current key; returns the sealed value and the key's id.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> (String, String) {
        let keyring = self.get();
        (
            keyring.seal(plaintext, context),
            keyring.current().id().to_owned(),
        )
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match self.get().open(sealed, context) {
            Err(VaultError::UnknownKey(id)) => {
                let Some(file) = &self.file else {
                    return Err(VaultError::UnknownKey(id));
                };
                let reloaded = std::sync::Arc::new(Keyring::from_file(file, false)?);
                *self.keyring.write().unwrap_or_else(|e| e.into_inner()) = reloaded.clone();
                reloaded.open(sealed, context)
            }
            other => other,
        }
    }
}

/// The id of the key that sealed a value.
pub fn key_id_of(sealed: &str) -> Result<&str, VaultError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(PREFIX), Some(id), Some(_)) if !id.is_empty() => Ok(id),
        _ => Err(VaultError::Malformed),
    }
}

fn parse_sealed(sealed: &str) -> Result<(&str, Vec<u8>), VaultError> {
    let id = key_id_of(sealed)?;
    let body = &sealed[PREFIX.len() + 1 + id.len() + 1..];
    let blob = B64.decode(body).map_err(|_| VaultError::Malformed)?;
    Ok((id, blob))
}

fn write_key_file(path: &Path, keys: &[&MasterKey]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut text = Zeroizing::new(String::from(
        "# Berth master keys: the first seals new secrets, the others still open old ones.\n\
         # Keep this file secret and backed up: without it the stored secrets are lost.\n",
    ));
    for key in keys {
        text.push_str(&key.to_base64());
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // Created 0600 from the start: never readable by others, not even briefly.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Refuses a key file that others can read: a leaked key opens every secret.
fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "is readable by others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring() -> Keyring {
        Keyring::new(vec![MasterKey::generate()]).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_own_record() {
        let ring = ring();
        let sealed = ring.seal(b"hunter2-registry-password", "credential:1:secret");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            &*ring.open(&sealed, "credential:1:secret").unwrap(),
            b"hunter2-registry-password"
        );
        assert_eq!(
            ring.open(&sealed, "credential:2:secret"),
            Err(VaultError::Tampered)
        );
    }

    #[test]
    fn equal_secrets_seal_differently() {
        let ring = ring();
        assert_ne!(ring.seal(b"same", "c"), ring.seal(b"same", "c"));
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let ring = ring();
        let sealed = ring.seal(b"secret", "c");
        let mut bytes = sealed.into_bytes();
        // A character in the middle of the base64 body: every one of its bits is data.
        let middle = sealed_body_start(&bytes) + 20;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            ring.open(&String::from_utf8(bytes).unwrap(), "c"),
            Err(VaultError::Tampered)
        );
    }

    fn sealed_body_start(sealed: &[u8]) -> usize {
        sealed.iter().rposition(|&b| b == b'.').unwrap() + 1
    }

    #[test]
    fn a_wrong_key_says_which_key_is_needed() {
        let sealed = ring().seal(b"secret", "c");
        let other = ring();
        match other.open(&sealed, "c") {
            Err(VaultError::UnknownKey(id)) => assert_eq!(id, key_id_of(&sealed).unwrap()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rotation_keeps_old_values_open_and_reseals_them() {
        let old = ring();
        let sealed = old.seal(b"secret", "c");
        let new = old.rotated();
        assert_eq!(&*new.open(&sealed, "c").unwrap(), b"secret");
        let resealed = new.reseal(&sealed, "c").unwrap().unwrap();
        assert_eq!(key_id_of(&resealed).unwrap(), new.current().id());
        assert_eq!(new.reseal(&resealed, "c").unwrap(), None);
        // Without the old key, only the re-sealed value opens.
        let only_new = Keyring::parse(&new.current().to_base64(), "test").unwrap();
        assert!(only_new.open(&resealed, "c").is_ok());
        assert!(only_new.open(&sealed, "c").is_err());
    }

    #[test]
    fn a_generated_key_file_is_private_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = Keyring::from_file(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = Keyring::from_file(&path, false).unwrap();
        assert_eq!(first.current().id(), again.current().id());
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        Keyring::from_file(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = Keyring::from_file(&path, false).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn malformed_keys_are_explained() {
        let err = Keyring::parse("not base64!", "BERTH_MASTER_KEY").unwrap_err();
        assert!(err.to_string().starts_with("BERTH_MASTER_KEY:"), "{err}");
        let err = Keyring::parse("AAAA", "BERTH_MASTER_KEY").unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn key_debug_output_hides_the_key() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        assert!(!format!("{key:?}").contains(b64.as_str()));
    }

    #[test]
    fn a_shared_keyring_picks_up_a_key_rotated_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let shared =
            SharedKeyring::new(Keyring::from_file(&path, true).unwrap(), Some(path.clone()));
        // Another process rotates and seals with the new key.
        let rotated = Keyring::from_file(&path, false).unwrap().rotated();
        rotated.write_to(&path).unwrap();
        let sealed = rotated.seal(b"fresh", "c");
        assert_eq!(&*shared.open(&sealed, "c").unwrap(), b"fresh");
        assert_eq!(shared.get().current().id(), rotated.current().id());
    }

    proptest! {
        #[test]
        fn every_value_round_trips(secret in prop::collection::vec(any::<u8>(), 0..512), context in ".{0,40}") {
            let ring = ring();
            let sealed = ring.seal(&secret, &context);
            prop_assert_eq!(&*ring.open(&sealed, &context).unwrap(), secret.as_slice());
        }

        #[test]
        fn opening_garbage_never_panics(input in ".{0,200}") {
            let _ = ring().open(&input, "c");
        }
    }
}
