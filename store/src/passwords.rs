//! Password hashing with Argon2id (the `argon2` crate's defaults follow OWASP's minimum:
//! 19 MiB, 2 iterations, 1 lane).

use crate::StoreError;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use domain::NewPassword;
use std::sync::OnceLock;

pub fn hash(password: &NewPassword) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// Checks `password` against a stored hash. With no hash (unknown account, or an invited
/// member who has not set a password), a dummy hash is checked instead, so that the answer
/// takes as long for unknown e-mail addresses as for known ones.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash(&NewPassword::parse("dummy password for timing").expect("valid"))
            .expect("hashing works")
    });
    let candidate = stored.unwrap_or(dummy);
    let ok = PasswordHash::new(candidate)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && stored.is_some()
}
