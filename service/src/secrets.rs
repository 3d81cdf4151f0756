//! The one place where secrets are sealed and opened. Every sealed column is a
//! [`SecretSlot`]; its context (the AEAD associated data) binds the value to its row, so a
//! sealed value copied into another row does not open there. What comes out is a
//! [`Secret`]: redacted when printed, wiped when dropped, never a plain `String`.

use crate::{Error, Result};
use domain::Secret;
use std::sync::Arc;
use store::{Sealed, SecretSlot, Store};

/// Seals and opens secrets with the master keys (re-reading the key file when it meets a
/// key it does not know, so that a rotation by another process is picked up).
#[derive(Clone)]
pub struct Secrets {
    keys: Arc<vault::SharedKeyring>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

impl Secrets {
    pub fn new(keys: vault::SharedKeyring) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }

    pub fn seal(&self, slot: &SecretSlot, secret: &Secret) -> Sealed {
        let (value, key_id) = self.keys.seal(secret.expose().as_bytes(), &slot.context());
        Sealed { value, key_id }
    }

    pub fn open(&self, slot: &SecretSlot, sealed: &Sealed) -> Result<Secret> {
        let mut bytes = self
            .keys
            .open(&sealed.value, &slot.context())
            .map_err(|e| Error::internal(format!("cannot open the secret in {slot:?}: {e}")))?;
        // Moved out of the wiping buffer, not copied: `Secret` wipes it from here on.
        Secret::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|e| Error::internal(format!("the secret in {slot:?}: {e}")))
    }
}

/// Seals every stored secret under `keyring`'s current key (after a rotation). Safe while
/// Berth serves: each value is replaced only if nobody changed it meanwhile. Returns how
/// many were re-sealed.
pub async fn reseal_all(store: &Store, keyring: &vault::Keyring) -> Result<usize> {
    let mut resealed = 0;
    loop {
        let batch = store
            .secrets_sealed_by_other_keys(keyring.current().id(), 100)
            .await?;
        if batch.is_empty() {
            return Ok(resealed);
        }
        for (slot, old) in batch {
            let resealed_value = keyring
                .reseal(&old.value, &slot.context())
                .map_err(|e| Error::internal(format!("cannot re-seal {slot:?}: {e}")))?;
            if let Some(value) = resealed_value {
                let new = Sealed {
                    value,
                    key_id: keyring.current().id().to_owned(),
                };
                if store.reseal_secret(&slot, &old, &new).await? {
                    resealed += 1;
                }
            }
        }
    }
}
