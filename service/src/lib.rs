//! Berth's use cases: accounts, teams and members, API tokens, registry credentials, apps,
//! deploys (direct image and Dockerfile), operations and the worker that runs them, history
//! and the audit trail. No web framework in here: the pages (`app`) and the JSON API
//! (`server`) are two thin edges over these functions, so a rule is written once.
//!
//! Every use case takes the [`Berth`] it works with and the acting user's id, asks
//! [`authz`] before it touches a team's data, and answers either a value or an [`Error`].
//! Secrets are sealed and opened only by [`secrets`]; which credential pulls an image is
//! decided only by [`resolver`]; ssh repositories are read only with the team's key from
//! [`deploy_keys`].
//!
//! Where things are: [`deploys`] checks and queues a deploy (the registry must prove the
//! image, or every base image, can be pulled first); [`builds`] reads a Dockerfile app's
//! git source and plans its build; [`operations`] queues configure and restart operations,
//! cancels and redeploys; [`worker`] runs queued operations on the platform; [`history`]
//! pages through what happened; [`present`] shapes rows into the views pages and the API
//! show.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod authz;
pub mod builds;
pub mod client_ip;
pub mod config;
pub mod credentials;
pub mod csrf;
pub mod deploy_keys;
pub mod deploys;
pub mod disk;
mod error;
pub mod history;
pub mod live;
pub mod mail;
pub mod members;
pub mod operations;
pub mod passwords;
pub mod platforms;
pub mod present;
pub mod redaction;
pub mod resolver;
pub mod secrets;
pub mod throttle;
pub mod tokens;
pub mod worker;

pub use accounts::{AccountSettings, SignUpPolicy};
pub use error::{Error, Result};
pub use secrets::Secrets;
/// What the edges need of the store without reaching into it: who a person is, the clock
/// every stored time uses, and random tokens (CSRF).
pub use store::{now_ms, random_token, User};

use std::{path::PathBuf, sync::Arc};
use store::{SignInLimits, Store};

/// What every use case works with: the database, the master keys, the registry client and
/// the platform that runs apps (its [`BerthParts`], read through it). Cheap to clone: every
/// page and request takes a copy, and all copies share one allocation.
#[derive(Clone)]
pub struct Berth(Arc<BerthParts>);

impl Berth {
    pub fn new(parts: BerthParts) -> Berth {
        Berth(Arc::new(parts))
    }
}

impl std::ops::Deref for Berth {
    type Target = BerthParts;

    fn deref(&self) -> &BerthParts {
        &self.0
    }
}

/// What a [`Berth`] holds.
pub struct BerthParts {
    pub store: Store,
    pub secrets: Secrets,
    /// Talks to container registries (verification before anything is queued).
    pub registry: platform::registry::RegistryClient,
    /// Where apps run (the local engine by default).
    pub platform: Arc<dyn platform::engine::Platform>,
    /// Aptible's API, for teams whose apps run there (`BERTH_APTIBLE_API_URL`,
    /// `BERTH_APTIBLE_AUTH_URL`).
    pub aptible: platform::aptible::AptibleClient,
    /// Mints ECR logins from teams' AWS keys (`BERTH_ECR_ENDPOINT_URL`,
    /// `BERTH_STS_ENDPOINT_URL`, `BERTH_ECR_REGISTRY_HOSTS`).
    pub ecr: platform::ecr::EcrClient,
    /// Wakes this process's operation worker when an operation is queued (other processes
    /// find it on their next poll).
    pub operations_queued: Arc<tokio::sync::Notify>,
    /// The live feeds of operations people watch (one per operation, however many watch).
    pub live: live::OperationFeeds,
    /// Where Dockerfile apps' git mirrors and build checkouts live (`<data dir>/git`).
    pub git_dir: PathBuf,
    /// What git may reach on a user's behalf (hosts through the egress guard, local
    /// repositories under the operator's roots).
    pub egress: platform::egress::Egress,
    /// Where people reach Berth (for invitation links), e.g. `http://127.0.0.1:3000`.
    pub public_url: String,
    pub sign_in_limits: SignInLimits,
    /// Who may sign up, and the in-process throttles (sign-up, verify, deploy).
    pub accounts: Arc<AccountSettings>,
    /// How many release images each app keeps (`BERTH_KEEP_RELEASES`), and the latest
    /// measurement of each app's disk use.
    pub disk: Arc<disk::Disk>,
}

impl std::fmt::Debug for Berth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Berth")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Berth {
    /// Refuses work the app's platform cannot do now, in its words: the local engine's tools
    /// are missing (e.g. buildah), or the team is not (or no longer) connected to Aptible.
    pub(crate) async fn ready_for(&self, app: &store::App) -> Result<()> {
        if app.platform.aptible().is_some() {
            return platforms::aptible_token(self, app.team_id)
                .await
                .map(|_| ());
        }
        match self.platform.unavailable().await {
            Some(message) => Err(views::AppError::Unavailable { message }.into()),
            None => Ok(()),
        }
    }
}
