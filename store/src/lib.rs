//! Berth's persistence. Every SQL statement lives in this crate, written once in the
//! dialect both SQLite and PostgreSQL accept (`$1` placeholders, `RETURNING`, times as Unix
//! milliseconds) and compiled for each backend by [`with_pool!`].

mod accounts;
mod apps;
mod audit;
mod backup;
mod changes;
mod credentials;
mod db;
mod deploy_keys;
mod error;
mod kept_images;
mod operations;
mod parsed;
pub mod passwords;
mod platforms;
mod secrets;
#[cfg(feature = "sessions")]
mod sessions;
mod sign_ups;
mod teams;
mod throttle;
mod tokens;

pub use accounts::{Invite, NewAccount, User};
pub use apps::{App, AppSummary, ConfigValue, NewApp, Release};
pub use audit::{AuditEvent, NewAuditEvent};
pub use changes::{OperationChangeListener, OPERATION_CHANGES};
pub use credentials::{AwsSettings, CredentialChanges, NewCredential, RegistryCredential, Sealed};
pub use db::{Backend, Store};
pub use deploy_keys::{NewDeployKey, TeamDeployKey};
pub use error::StoreError;
pub use kept_images::{KeptBecause, KeptImage};
pub use operations::{
    AppChangesOnEnqueue, ConfigChange, CredentialUse, DayCount, Finish, HistoryView, LogLine,
    NewOperation, NewRelease, Operation, OperationFilter, OperationSecrets, OperationSummary,
};
pub use parsed::OptionalText;
pub use platforms::{
    AppPlatform, AptibleTarget, NewTeamPlatform, TeamPlatform, CONNECTED, RECONNECT_NEEDED,
};
pub use secrets::SecretSlot;
#[cfg(feature = "sessions")]
pub use sessions::{stored_id as stored_session_id, SessionStore};
pub use sign_ups::{PendingSignUp, SIGN_UP_TTL_MS};
pub use teams::{AddedMember, Member, MembershipInvitation, TeamAccess};
pub use throttle::{SignInLimits, Throttled};
pub use tokens::{ApiToken, ApiTokenSummary};

/// Milliseconds since the Unix epoch: the one time format in the database.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A random string of `len` characters from `[A-Za-z0-9]`, from the OS's CSPRNG.
pub fn random_token(len: usize) -> String {
    use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
    OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub(crate) fn sha256_hex(value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(value.as_bytes()))
}
