//! Operations: the queue that deploys, configures and restarts apps, and the history it
//! leaves. An app's operations run one at a time in order (the partial unique index
//! `operations_one_running_per_app` makes the database itself refuse a second running one);
//! different apps' run in parallel, on any Berth process sharing the database.
//!
//! A worker holds a running operation by a lease it renews with [`Store::heartbeat`]: when
//! its process dies the lease runs out and [`Store::fail_expired_operations`] marks the
//! operation failed, so nothing stays "running" forever and the app's queue moves on.
//!
//! Per-operation secrets (registry password given with a deploy, configuration values) are
//! sealed with the operation's id and erased when it finishes: "this deploy only" means it.

use crate::{db::with_pool, db::Pool, now_ms, parsed::OptionalText, Sealed, Store, StoreError};
use domain::{
    AppHandle, CommitId, ConfigKey, CredentialSource, Digest, GitRefName, ImageReference,
    OperationKind, OperationStatus, RegistryHost,
};

/// An operation as shown in history and read by the worker, without its sealed values.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Operation {
    pub id: i64,
    pub team_id: i64,
    pub app_id: i64,
    #[sqlx(try_from = "String")]
    pub app_handle: AppHandle,
    #[sqlx(try_from = "String")]
    pub kind: OperationKind,
    #[sqlx(try_from = "String")]
    pub status: OperationStatus,
    /// The image the deploy named (normalised: `nginx` is `docker.io/library/nginx`), or a
    /// Dockerfile deploy's built image once it is built.
    #[sqlx(try_from = "OptionalText")]
    pub image: Option<ImageReference>,
    #[sqlx(try_from = "OptionalText")]
    pub digest: Option<Digest>,
    #[sqlx(try_from = "OptionalText")]
    pub git_ref: Option<GitRefName>,
    #[sqlx(try_from = "OptionalText")]
    pub commit_sha: Option<CommitId>,
    #[sqlx(try_from = "String")]
    pub credential_source: CredentialSource,
    pub credential_id: Option<i64>,
    pub credential_name: Option<String>,
    pub credential_version: Option<i64>,
    pub registry_username: Option<String>,
    /// JSON object of configuration key -> `"set"` | `"unset"`; never values.
    pub env_keys: Option<String>,
    pub requested_by: Option<i64>,
    pub requested_by_email: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub step: Option<String>,
    pub release_id: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    /// The operation's id on Aptible, once Berth posted it there.
    pub remote_operation_id: Option<i64>,
    /// When its log lines were deleted (`BERTH_OPERATION_LOG_DAYS` after it ended).
    pub log_pruned_at: Option<i64>,
}

impl Operation {
    /// The deployed image pinned to its digest, when the operation has both.
    pub fn pinned_image(&self) -> Option<ImageReference> {
        Some(self.image.as_ref()?.pinned(self.digest.as_ref()?))
    }

    /// The configuration variables the operation set (`true`) or unset, by name.
    pub fn config_changes(&self) -> Vec<(String, bool)> {
        self.env_keys
            .as_deref()
            .and_then(|keys| {
                serde_json::from_str::<std::collections::BTreeMap<String, String>>(keys).ok()
            })
            .unwrap_or_default()
            .into_iter()
            .map(|(key, change)| (key, change == "set"))
            .collect()
    }

    /// Whether the operation has ended (it will not change again).
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// An operation as one line of a history table: only what the table shows, so that a page
/// of fifty reads (and copies out of the database) fewer than half of [`Operation`]'s
/// columns. The texts were checked when they were written and are only displayed.
///
/// Read as JSON ([`json_rows`]): the fields are [`SUMMARY_COLUMNS`], in that order.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct OperationSummary {
    pub id: i64,
    pub app_handle: String,
    pub kind: OperationKind,
    pub status: OperationStatus,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub requested_by_email: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// An operation to queue. Start from the constructor for its kind; the fields say what it
/// records in history.
#[derive(Clone, Debug)]
pub struct NewOperation {
    pub team_id: i64,
    pub app_id: i64,
    pub kind: OperationKind,
    pub image: Option<ImageReference>,
    pub digest: Option<Digest>,
    pub git_ref: Option<GitRefName>,
    pub commit_sha: Option<CommitId>,
    pub credential: CredentialUse,
    /// Names of the configuration variables the operation sets (`true`) or unsets.
    pub config_changes: Vec<(ConfigKey, bool)>,
    pub requested_by: i64,
}

/// Which registry credentials an operation pulls with, as history records them: never a
/// value.
#[derive(Clone, Debug)]
pub struct CredentialUse {
    pub source: CredentialSource,
    /// The team credential (id, name, secret version), for [`CredentialSource::Team`].
    pub team_credential: Option<(i64, String, i64)>,
    /// The username the operation pulls with (its password is sealed with the operation).
    pub registry_username: Option<String>,
}

impl CredentialUse {
    /// Public images only.
    pub fn none() -> Self {
        Self {
            source: CredentialSource::None,
            team_credential: None,
            registry_username: None,
        }
    }
}

impl NewOperation {
    fn new(team_id: i64, app_id: i64, kind: OperationKind, requested_by: i64) -> Self {
        Self {
            team_id,
            app_id,
            kind,
            image: None,
            digest: None,
            git_ref: None,
            commit_sha: None,
            credential: CredentialUse::none(),
            config_changes: Vec::new(),
            requested_by,
        }
    }

    /// A deploy of `image`, verified to resolve to `digest`.
    pub fn deploy_image(
        team_id: i64,
        app_id: i64,
        requested_by: i64,
        image: ImageReference,
        digest: Option<Digest>,
    ) -> Self {
        Self {
            image: Some(image),
            digest,
            ..Self::new(team_id, app_id, OperationKind::Deploy, requested_by)
        }
    }

    /// A Dockerfile deploy of `git_ref`, which resolved to `commit`.
    pub fn deploy_ref(
        team_id: i64,
        app_id: i64,
        requested_by: i64,
        git_ref: GitRefName,
        commit: CommitId,
    ) -> Self {
        Self {
            git_ref: Some(git_ref),
            commit_sha: Some(commit),
            ..Self::new(team_id, app_id, OperationKind::Deploy, requested_by)
        }
    }

    /// A deploy of the image an earlier Dockerfile deploy built from `commit`, run again
    /// from this server's image storage without building (`git_ref` stays empty: nothing
    /// is fetched or built).
    pub fn redeploy_build(
        team_id: i64,
        app_id: i64,
        requested_by: i64,
        image: ImageReference,
        digest: Digest,
        commit: CommitId,
    ) -> Self {
        Self {
            image: Some(image),
            digest: Some(digest),
            commit_sha: Some(commit),
            ..Self::new(team_id, app_id, OperationKind::Deploy, requested_by)
        }
    }

    /// A configure operation (its changes go with [`NewOperation::with_config_changes`]).
    pub fn configure(team_id: i64, app_id: i64, requested_by: i64) -> Self {
        Self::new(team_id, app_id, OperationKind::Configure, requested_by)
    }

    pub fn restart(team_id: i64, app_id: i64, requested_by: i64) -> Self {
        Self::new(team_id, app_id, OperationKind::Restart, requested_by)
    }

    pub fn with_credential(mut self, credential: CredentialUse) -> Self {
        self.credential = credential;
        self
    }

    pub fn with_config_changes(mut self, changes: Vec<(ConfigKey, bool)>) -> Self {
        self.config_changes = changes;
        self
    }

    /// `{"KEY": "set" | "unset"}`: what history keeps of configuration changes.
    fn env_keys(&self) -> Option<String> {
        if self.config_changes.is_empty() {
            return None;
        }
        let names: std::collections::BTreeMap<&str, &str> = self
            .config_changes
            .iter()
            .map(|(key, set)| (key.as_str(), if *set { "set" } else { "unset" }))
            .collect();
        serde_json::to_string(&names).ok()
    }
}

/// The secrets an operation carries until it finishes, sealed with its id
/// ([`crate::SecretSlot::OperationRegistry`], [`crate::SecretSlot::OperationEnv`]).
#[derive(Clone, Debug, Default)]
pub struct OperationSecrets {
    pub registry: Option<Sealed>,
    pub env: Option<Sealed>,
}

/// Changes to the app made in the same transaction that queues the operation, so that a
/// deploy that is refused never remembers its credentials.
#[derive(Clone, Debug, Default)]
pub struct AppChangesOnEnqueue {
    /// Registry, username and password (sealed with [`crate::SecretSlot::AppRemembered`]) to
    /// remember on the app, replacing what it remembered.
    pub remember: Option<(RegistryHost, String, Sealed)>,
    /// `Some(x)`: the app's deploys now use team credential `x` (`None`: no team credential).
    pub team_credential: Option<Option<i64>>,
}

/// The release a successful operation produced.
#[derive(Clone, Debug)]
pub struct NewRelease<'a> {
    pub image: &'a ImageReference,
    pub digest: &'a Digest,
    pub port: Option<i64>,
}

/// A configuration variable to set (its value sealed with
/// [`crate::SecretSlot::AppConfig`]) or, with `None`, to unset.
#[derive(Clone, Debug)]
pub struct ConfigChange {
    pub key: ConfigKey,
    pub value: Option<Sealed>,
    /// Whether the value set is plain (visible); ignored when unsetting.
    pub plain: bool,
}

/// How an operation ended.
#[derive(Clone, Debug)]
pub enum Finish<'a> {
    Succeeded {
        release: Option<NewRelease<'a>>,
        config: &'a [ConfigChange],
    },
    Failed {
        error: &'a str,
    },
}

/// One line of an operation's log; `id` is the cursor for tailing.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LogLine {
    pub id: i64,
    pub at: i64,
    pub line: String,
}

/// Which operations a history page shows; `None` shows all.
#[derive(Clone, Debug, Default)]
pub struct OperationFilter {
    pub team_id: i64,
    pub app_id: Option<i64>,
    pub kind: Option<OperationKind>,
    pub status: Option<OperationStatus>,
    pub requested_by: Option<i64>,
}

/// `$query` with each of `$binds` ([`Bind`]s) bound in order.
macro_rules! bound {
    ($query:expr, $binds:expr) => {
        $binds.iter().fold($query, |query, bind| match bind {
            Bind::Int(value) => query.bind(*value),
            Bind::Text(value) => query.bind(*value),
        })
    };
}

/// Operations of one status created on one day, for the history chart. Read as JSON, like
/// [`OperationSummary`]: the fields are [`DAY_COLUMNS`], in that order.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct DayCount {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub status: OperationStatus,
    pub count: i64,
    /// Mean of `finished_at - started_at` over those that ran.
    pub avg_duration_ms: Option<i64>,
}

/// What a history page shows ([`Store::history_view`]).
#[derive(Clone, Debug)]
pub struct HistoryView {
    /// The page, newest first.
    pub operations: Vec<OperationSummary>,
    /// The chart's numbers.
    pub days: Vec<DayCount>,
    /// The team's members and invited people (the "requested by" filter).
    pub members: Vec<crate::teams::Member>,
}

const COLUMNS: &str =
    "o.id, o.team_id, o.app_id, a.handle AS app_handle, o.kind, o.status, o.image, o.digest,
     o.git_ref, o.commit_sha, o.credential_source, o.credential_id, o.credential_name,
     o.credential_version, o.registry_username, o.env_keys, o.requested_by,
     u.email AS requested_by_email, o.created_at, o.started_at, o.finished_at, o.error, o.step,
     o.release_id, o.lease_owner, o.lease_expires_at, o.remote_operation_id, o.log_pruned_at";

/// [`OperationSummary`]'s columns, in the order of its fields.
const SUMMARY_COLUMNS: &str =
    "o.id, a.handle AS app_handle, o.kind, o.status, o.image, o.digest, o.git_ref, o.commit_sha,
     u.email AS requested_by_email, o.created_at, o.started_at, o.finished_at";

/// [`DayCount`]'s columns, of `operations`, in the order of its fields.
const DAY_COLUMNS: &str = "created_at / 86400000 AS day, status, COUNT(*) AS count,
     CAST(AVG(finished_at - started_at) AS BIGINT) AS avg_duration_ms";

/// The chart's order of [`DAY_COLUMNS`].
const DAY_ORDER: &str = "day, status";

const FROM: &str =
    "operations o JOIN apps a ON a.id = o.app_id LEFT JOIN users u ON u.id = o.requested_by";

/// The assignments that end an operation: no lease, no step, and its secrets erased.
const ENDED: &str = "finished_at = $1, lease_owner = NULL, lease_expires_at = NULL, step = NULL,
     registry_secret_sealed = NULL, registry_secret_key_id = NULL,
     env_sealed = NULL, env_key_id = NULL";

/// The next operation a worker may start: the oldest queued one whose app has nothing
/// running and nothing queued before it. (Without locks the last condition follows from the
/// first two; with SKIP LOCKED it keeps a worker from jumping past a row another holds.)
const NEXT_RUNNABLE: &str = "SELECT o.id FROM operations o
     WHERE o.status = 'queued'
       AND NOT EXISTS (SELECT 1 FROM operations r WHERE r.app_id = o.app_id AND r.status = 'running')
       AND NOT EXISTS (SELECT 1 FROM operations e
                       WHERE e.app_id = o.app_id AND e.status = 'queued' AND e.id < o.id)
     ORDER BY o.id LIMIT 1";

/// The most rows of log lines inserted by one statement (3 bind values each, within
/// SQLite's limit on bind values).
const LOG_LINES_PER_INSERT: usize = 200;

impl Store {
    /// Deletes the log lines of operations that ended before `ended_before` (Unix ms), up to
    /// `batch` operations at a time, oldest first, and marks them; answers how many
    /// operations' logs were removed. The operations stay in the history.
    pub async fn prune_operation_logs(
        &self,
        ended_before: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut pruned = 0;
        loop {
            let done: u64 = with_pool!(self, pool => {
                let mut tx = pool.begin().await?;
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM operations
                     WHERE log_pruned_at IS NULL AND finished_at IS NOT NULL AND finished_at < $1
                     ORDER BY finished_at LIMIT $2",
                )
                .bind(ended_before)
                .bind(batch)
                .fetch_all(&mut *tx)
                .await?;
                for id in &ids {
                    sqlx::query("DELETE FROM operation_logs WHERE operation_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE operations SET log_pruned_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<u64, StoreError>(ids.len() as u64)
            })?;
            pruned += done;
            if (done as i64) < batch {
                return Ok(pruned);
            }
        }
    }

    /// How many operations wait in the queue and how many run, across every app (for
    /// `/metrics`).
    pub async fn queue_depth(&self) -> Result<(i64, i64), StoreError> {
        with_pool!(self, pool => {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT status, COUNT(*) FROM operations WHERE status IN ('queued', 'running') GROUP BY status",
            )
            .fetch_all(pool)
            .await?;
            let count = |status: &str| rows.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            Ok((count("queued"), count("running")))
        })
    }

    /// Queues an operation. In one transaction: inserts it (refusing, with `NotFound`, an
    /// app that is not the team's), stores the secrets `seal(id)` seals for its id, and
    /// applies `app_changes`.
    pub async fn enqueue_operation(
        &self,
        new: NewOperation,
        seal: impl FnOnce(i64) -> OperationSecrets,
        app_changes: AppChangesOnEnqueue,
    ) -> Result<Operation, StoreError> {
        let now = now_ms();
        let env_keys = new.env_keys();
        let (credential_id, credential_name, credential_version) =
            match &new.credential.team_credential {
                Some((id, name, version)) => (Some(*id), Some(name.as_str()), Some(*version)),
                None => (None, None, None),
            };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO operations
                   (team_id, app_id, kind, status, image, digest, git_ref, commit_sha,
                    credential_source, credential_id, credential_name, credential_version,
                    registry_username, env_keys, requested_by, created_at)
                 SELECT team_id, id, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
                 FROM apps WHERE id = $2 AND team_id = $1
                 RETURNING id",
            )
            .bind(new.team_id)
            .bind(new.app_id)
            .bind(new.kind.as_str())
            .bind(new.image.as_ref().map(ToString::to_string))
            .bind(new.digest.as_ref().map(Digest::as_str))
            .bind(new.git_ref.as_ref().map(GitRefName::as_str))
            .bind(new.commit_sha.as_ref().map(CommitId::as_str))
            .bind(new.credential.source.as_str())
            .bind(credential_id)
            .bind(credential_name)
            .bind(credential_version)
            .bind(new.credential.registry_username.as_deref())
            .bind(env_keys.as_deref())
            .bind(new.requested_by)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let id = id.ok_or(StoreError::NotFound)?;
            let secrets = seal(id);
            if secrets.registry.is_some() || secrets.env.is_some() {
                let registry = secrets.registry.as_ref();
                let env = secrets.env.as_ref();
                sqlx::query(
                    "UPDATE operations SET registry_secret_sealed = $1, registry_secret_key_id = $2,
                       env_sealed = $3, env_key_id = $4
                     WHERE id = $5",
                )
                .bind(registry.map(|s| s.value.as_str()))
                .bind(registry.map(|s| s.key_id.as_str()))
                .bind(env.map(|s| s.value.as_str()))
                .bind(env.map(|s| s.key_id.as_str()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((registry, username, sealed)) = &app_changes.remember {
                sqlx::query(
                    "UPDATE apps SET remembered_registry = $1, remembered_username = $2,
                       remembered_secret_sealed = $3, remembered_secret_key_id = $4,
                       remembered_at = $5, updated_at = $5
                     WHERE id = $6",
                )
                .bind(registry.as_str())
                .bind(username)
                .bind(&sealed.value)
                .bind(&sealed.key_id)
                .bind(now)
                .bind(new.app_id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(credential_id) = app_changes.team_credential {
                sqlx::query("UPDATE apps SET team_credential_id = $1, updated_at = $2 WHERE id = $3")
                    .bind(credential_id)
                    .bind(now)
                    .bind(new.app_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let operation = sqlx::query_as(&format!("SELECT {COLUMNS} FROM {FROM} WHERE o.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(operation)
        })
    }

    pub async fn operation(&self, operation_id: i64) -> Result<Option<Operation>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM {FROM} WHERE o.id = $1"))
                .bind(operation_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The operation's sealed registry password and configuration changes, while it has
    /// them (they are erased when it finishes).
    pub async fn operation_secrets(
        &self,
        operation_id: i64,
    ) -> Result<(Option<Sealed>, Option<Sealed>), StoreError> {
        with_pool!(self, pool => {
            type Row = (Option<String>, Option<String>, Option<String>, Option<String>);
            let row: Option<Row> = sqlx::query_as(
                "SELECT registry_secret_sealed, registry_secret_key_id, env_sealed, env_key_id
                 FROM operations WHERE id = $1",
            )
            .bind(operation_id)
            .fetch_optional(pool)
            .await?;
            let (registry, registry_key, env, env_key) = row.ok_or(StoreError::NotFound)?;
            let sealed = |value: Option<String>, key_id: Option<String>| {
                value.zip(key_id).map(|(value, key_id)| Sealed { value, key_id })
            };
            Ok((sealed(registry, registry_key), sealed(env, env_key)))
        })
    }

    /// Starts the next runnable operation (see [`NEXT_RUNNABLE`]) under `worker`'s lease for
    /// `lease_ms`; `None` when there is nothing to start.
    pub async fn claim_next_operation(
        &self,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<Operation>, StoreError> {
        let now = now_ms();
        let claimed: Result<Option<i64>, sqlx::Error> = match &self.pool {
            // Several Berth processes share the queue: each skips the rows another is
            // claiming instead of waiting for it, and re-checks the status once it holds one.
            Pool::Postgres(pool) => {
                sqlx::query_scalar(&format!(
                    "UPDATE operations
                     SET status = 'running', started_at = $1, lease_owner = $2, lease_expires_at = $3
                     WHERE id = ({NEXT_RUNNABLE} FOR UPDATE SKIP LOCKED) AND status = 'queued'
                     RETURNING id"
                ))
                .bind(now)
                .bind(worker)
                .bind(now + lease_ms)
                .fetch_optional(pool)
                .await
            }
            // SQLite runs one writer at a time, so one statement is atomic on its own.
            Pool::Sqlite(pool) => {
                sqlx::query_scalar(&format!(
                    "UPDATE operations
                     SET status = 'running', started_at = $1, lease_owner = $2, lease_expires_at = $3
                     WHERE id = ({NEXT_RUNNABLE})
                     RETURNING id"
                ))
                .bind(now)
                .bind(worker)
                .bind(now + lease_ms)
                .fetch_optional(pool)
                .await
            }
        };
        match claimed {
            Ok(Some(id)) => self.operation(id).await,
            Ok(None) => Ok(None),
            // Another worker started an operation of the same app between our look and our
            // write: the unique index refused ours, and there is nothing for us this time.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts `worker`'s running operation back in the queue (Berth is stopping and could not
    /// finish it in time): the next process that claims its app's operations runs it again,
    /// first. `false` when it is no longer `worker`'s to hand back.
    pub async fn hand_back_operation(
        &self,
        operation_id: i64,
        worker: &str,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE operations
                 SET status = 'queued', step = NULL, started_at = NULL, lease_owner = NULL,
                     lease_expires_at = NULL
                 WHERE id = $1 AND status = 'running' AND lease_owner = $2",
            )
            .bind(operation_id)
            .bind(worker)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Renews `worker`'s lease on a running operation for `lease_ms` more; `false` when the
    /// lease is no longer `worker`'s (the operation was failed as abandoned, or finished).
    pub async fn heartbeat(
        &self,
        operation_id: i64,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE operations SET lease_expires_at = $1
                 WHERE id = $2 AND status = 'running' AND lease_owner = $3",
            )
            .bind(now_ms() + lease_ms)
            .bind(operation_id)
            .bind(worker)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Records the image a Dockerfile deploy built (its digest is known only then).
    pub async fn set_operation_image(
        &self,
        operation_id: i64,
        image: &ImageReference,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE operations SET image = $1, digest = $2 WHERE id = $3 AND status = 'running'")
                .bind(image.to_string())
                .bind(digest.as_str())
                .bind(operation_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records the step a running operation is at (verify, pull, start, health_check, switch).
    pub async fn set_operation_step(
        &self,
        operation_id: i64,
        step: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE operations SET step = $1 WHERE id = $2 AND status = 'running'")
                .bind(step)
                .bind(operation_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Appends lines to the operation's log, in order. Callers redact secrets first.
    pub async fn append_operation_log(
        &self,
        operation_id: i64,
        lines: &[String],
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in lines.chunks(LOG_LINES_PER_INSERT) {
                let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, $2, ${})", i + 3)).collect();
                let sql = format!(
                    "INSERT INTO operation_logs (operation_id, at, line) VALUES {}",
                    values.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(operation_id).bind(now);
                for line in chunk {
                    query = query.bind(line);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Up to `limit` log lines after line `after_line_id` (0: from the start), oldest first:
    /// a live view polls with the last id it has.
    pub async fn operation_log(
        &self,
        operation_id: i64,
        after_line_id: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT id, at, line FROM operation_logs
                 WHERE operation_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(operation_id)
            .bind(after_line_id)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Ends a running operation that `worker` holds, in one transaction: records the
    /// outcome and erases its secrets; on success also records the release it produced
    /// (which becomes the app's current one) and applies its configuration changes.
    /// `NotFound` for no such operation, `LeaseLost` when it is not running under `worker`.
    pub async fn finish_operation(
        &self,
        operation_id: i64,
        worker: &str,
        finish: Finish<'_>,
    ) -> Result<Operation, StoreError> {
        let now = now_ms();
        let (status, error) = match &finish {
            Finish::Succeeded { .. } => ("succeeded", None),
            Finish::Failed { error } => ("failed", Some(*error)),
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let app_id: Option<i64> = sqlx::query_scalar(&format!(
                "UPDATE operations SET status = $2, error = $3, {ENDED}
                 WHERE id = $4 AND status = 'running' AND lease_owner = $5
                 RETURNING app_id"
            ))
            .bind(now)
            .bind(status)
            .bind(error)
            .bind(operation_id)
            .bind(worker)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(app_id) = app_id else {
                let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM operations WHERE id = $1")
                    .bind(operation_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(if exists.is_some() { StoreError::LeaseLost } else { StoreError::NotFound });
            };
            if let Finish::Succeeded { release, config } = &finish {
                if let Some(release) = release {
                    let release_id: i64 = sqlx::query_scalar(
                        "INSERT INTO releases (app_id, operation_id, image, digest, port, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         RETURNING id",
                    )
                    .bind(app_id)
                    .bind(operation_id)
                    .bind(release.image.to_string())
                    .bind(release.digest.as_str())
                    .bind(release.port)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE apps SET current_release_id = $1, updated_at = $2 WHERE id = $3")
                        .bind(release_id)
                        .bind(now)
                        .bind(app_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE operations SET release_id = $1 WHERE id = $2")
                        .bind(release_id)
                        .bind(operation_id)
                        .execute(&mut *tx)
                        .await?;
                }
                for change in config.iter() {
                    match &change.value {
                        Some(sealed) => {
                            sqlx::query(
                                "INSERT INTO app_config (app_id, key, value_sealed, value_key_id, plain, updated_at)
                                 VALUES ($1, $2, $3, $4, $5, $6)
                                 ON CONFLICT (app_id, key) DO UPDATE SET
                                   value_sealed = excluded.value_sealed,
                                   value_key_id = excluded.value_key_id,
                                   plain = excluded.plain,
                                   updated_at = excluded.updated_at",
                            )
                            .bind(app_id)
                            .bind(change.key.as_str())
                            .bind(&sealed.value)
                            .bind(&sealed.key_id)
                            .bind(i64::from(change.plain))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                        None => {
                            sqlx::query("DELETE FROM app_config WHERE app_id = $1 AND key = $2")
                                .bind(app_id)
                                .bind(change.key.as_str())
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
            }
            let operation = sqlx::query_as(&format!("SELECT {COLUMNS} FROM {FROM} WHERE o.id = $1"))
                .bind(operation_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(operation)
        })
    }

    /// Cancels a queued operation (erasing its secrets); `false` once it has started.
    pub async fn cancel_operation(&self, operation_id: i64) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query(&format!(
                "UPDATE operations SET status = 'cancelled', {ENDED}
                 WHERE id = $2 AND status = 'queued' AND remote_operation_id IS NULL"
            ))
            .bind(now_ms())
            .bind(operation_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Fails, with `reason`, every running operation whose lease ran out (its worker died
    /// or lost the database). A failed operation never moves the app's current release, so
    /// the previous release keeps serving; the app's next operation can then start. An
    /// operation forwarded to Aptible is queued again instead, to be followed again.
    pub async fn fail_expired_operations(
        &self,
        reason: &str,
    ) -> Result<Vec<Operation>, StoreError> {
        let now = now_ms();
        // An operation forwarded to another platform (Aptible) runs there whatever became of
        // the process following it: it goes back to the queue, and the worker that claims it
        // follows it again instead of posting it twice.
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE operations SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL
                 WHERE status = 'running' AND lease_expires_at < $1
                   AND remote_operation_id IS NOT NULL",
            )
            .bind(now)
            .execute(pool)
            .await?;
        });
        let failed: Vec<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(&format!(
                "UPDATE operations SET status = 'failed', error = $2, {ENDED}
                 WHERE status = 'running' AND lease_expires_at < $1
                 RETURNING id"
            ))
            .bind(now)
            .bind(reason)
            .fetch_all(pool)
            .await?
        });
        let mut operations = Vec::with_capacity(failed.len());
        for id in failed {
            operations.extend(self.operation(id).await?);
        }
        operations.sort_by_key(|o| o.id);
        Ok(operations)
    }

    /// A page of history, newest first: up to `limit` operations with ids below `before`
    /// (keyset paging: the millionth row costs what the first does). Each combination of
    /// filters reads one index whose last column is `id` (see the migration), so the page
    /// is read in order and stops after `limit` matches.
    pub async fn operations_page(
        &self,
        filter: &OperationFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Operation>, StoreError> {
        self.history_rows(HistoryQuery::new(COLUMNS, filter, before, limit))
            .await
    }

    /// [`Store::operations_page`] as the history tables show it ([`OperationSummary`]): the
    /// same operations in the same order, read by the same plan.
    pub async fn operation_summaries(
        &self,
        filter: &OperationFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OperationSummary>, StoreError> {
        let page = HistoryQuery::new(SUMMARY_COLUMNS, filter, before, limit);
        let sql = format!(
            "SELECT {}",
            json_rows(&self.pool, &page.sql, SUMMARY_COLUMNS, "id DESC")
        );
        let (page,): (String,) = with_pool!(self, pool => {
            bound!(sqlx::query_as(&sql), page.binds).fetch_one(pool).await?
        });
        from_json(&page)
    }

    async fn history_rows<T>(&self, history: HistoryQuery<'_>) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        with_pool!(self, pool => {
            Ok(bound!(sqlx::query_as(&history.sql), history.binds).fetch_all(pool).await?)
        })
    }

    /// What a history page shows, read in one statement that answers one row of three
    /// JSON values ([`json_rows`]): the page of [`Store::operation_summaries`], the
    /// chart's [`Store::operation_days`] since `since_ms` and the team's [`Store::members`].
    /// (Three statements answering a row per line cost the page a third of its time on
    /// SQLite: README, Performance.)
    pub async fn history_view(
        &self,
        filter: &OperationFilter,
        before: Option<i64>,
        limit: i64,
        since_ms: i64,
    ) -> Result<HistoryView, StoreError> {
        let page = HistoryQuery::new(SUMMARY_COLUMNS, filter, before, limit);
        let days = HistoryQuery::days(filter, since_ms);
        let days_sql = renumbered(&days.sql, page.binds.len());
        let members_sql = renumbered(
            crate::teams::MEMBERS_UNORDERED,
            page.binds.len() + days.binds.len(),
        );
        let sql = format!(
            "SELECT {}, {}, {}",
            json_rows(&self.pool, &page.sql, SUMMARY_COLUMNS, "id DESC"),
            json_rows(&self.pool, &days_sql, DAY_COLUMNS, DAY_ORDER),
            json_rows(
                &self.pool,
                &members_sql,
                crate::teams::MEMBER_COLUMNS,
                crate::teams::MEMBERS_ORDER
            ),
        );
        let mut binds = page.binds;
        binds.extend(days.binds);
        binds.push(Bind::Int(filter.team_id));
        let (operations, days, members): (String, String, String) = with_pool!(self, pool => {
            bound!(sqlx::query_as(&sql), binds).fetch_one(pool).await?
        });
        Ok(HistoryView {
            operations: from_json(&operations)?,
            days: from_json(&days)?,
            members: from_json(&members)?,
        })
    }

    /// The database's plan for [`Store::operations_page`], one line per step: shows which
    /// index a history page reads (for the benchmark, and for an operator chasing a slow
    /// page).
    pub async fn explain_operations_page(
        &self,
        filter: &OperationFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        use sqlx::Row;
        let history = HistoryQuery::new(SUMMARY_COLUMNS, filter, before, limit);
        match &self.pool {
            Pool::Sqlite(pool) => {
                let sql = format!("EXPLAIN QUERY PLAN {}", history.sql);
                let rows = bound!(sqlx::query(&sql), history.binds)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| Ok(row.try_get::<String, _>("detail")?))
                    .collect()
            }
            Pool::Postgres(pool) => {
                let sql = format!("EXPLAIN {}", history.sql);
                let rows = bound!(sqlx::query(&sql), history.binds)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| Ok(row.try_get::<String, _>(0)?))
                    .collect()
            }
        }
    }

    /// Operations per UTC day and status created since `since_ms`, with their mean run time,
    /// for the operations `filter` selects (the team's, or one app's, of a kind, status or
    /// requester): the history chart, which shows what the list below it shows.
    pub async fn operation_days(
        &self,
        filter: &OperationFilter,
        since_ms: i64,
    ) -> Result<Vec<DayCount>, StoreError> {
        let days = HistoryQuery::days(filter, since_ms);
        let sql = format!(
            "SELECT {}",
            json_rows(&self.pool, &days.sql, DAY_COLUMNS, DAY_ORDER)
        );
        let (days,): (String,) = with_pool!(self, pool => {
            bound!(sqlx::query_as(&sql), days.binds).fetch_one(pool).await?
        });
        from_json(&days)
    }
}

/// The conditions that were given (a test such as `"o.kind ="` with its value), numbered
/// `$1, $2, …` in order, and their values to bind.
fn conditions<'a, const N: usize>(
    given: [(&str, Option<Bind<'a>>); N],
) -> (Vec<String>, Vec<Bind<'a>>) {
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    for (test, bind) in given.into_iter() {
        if let Some(bind) = bind {
            binds.push(bind);
            conditions.push(format!("{test} ${}", binds.len()));
        }
    }
    (conditions, binds)
}

/// A value bound into the history query.
enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

/// A history query for a filter (the page's rows, or the chart's days): only the conditions
/// given, so that each combination is planned on its own and meets its index (an `($n IS NULL OR col = $n)` form would hide
/// the index from both planners).
struct HistoryQuery<'a> {
    sql: String,
    binds: Vec<Bind<'a>>,
}

impl<'a> HistoryQuery<'a> {
    /// The page of `columns` (of `o`, `a` and `u`: [`FROM`]).
    fn new(columns: &str, filter: &'a OperationFilter, before: Option<i64>, limit: i64) -> Self {
        // With an app given, the team is checked on the app's row: a condition on
        // `o.team_id` would offer SQLite (which keeps no statistics) the team's indexes,
        // and with one team holding every row it picks them and reads 50 times too much.
        let team = match filter.app_id {
            Some(_) => "a.team_id =",
            None => "o.team_id =",
        };
        let given = [
            (team, Some(Bind::Int(filter.team_id))),
            ("o.app_id =", filter.app_id.map(Bind::Int)),
            ("o.requested_by =", filter.requested_by.map(Bind::Int)),
            ("o.kind =", filter.kind.map(|k| Bind::Text(k.as_str()))),
            ("o.status =", filter.status.map(|s| Bind::Text(s.as_str()))),
            ("o.id <", before.map(Bind::Int)),
        ];
        let (conditions, mut binds) = conditions(given);
        binds.push(Bind::Int(limit));
        let sql = format!(
            "SELECT {columns} FROM {FROM} WHERE {} ORDER BY o.id DESC LIMIT ${}",
            conditions.join(" AND "),
            binds.len()
        );
        HistoryQuery { sql, binds }
    }

    /// Operations per UTC day and status created since `since_ms`, with their mean run
    /// time, of the operations `filter` selects ([`Store::operation_days`]), in no order
    /// ([`DAY_ORDER`] is the chart's).
    fn days(filter: &'a OperationFilter, since_ms: i64) -> Self {
        let given = [
            ("team_id =", Some(Bind::Int(filter.team_id))),
            ("created_at >=", Some(Bind::Int(since_ms))),
            ("app_id =", filter.app_id.map(Bind::Int)),
            ("requested_by =", filter.requested_by.map(Bind::Int)),
            ("kind =", filter.kind.map(|k| Bind::Text(k.as_str()))),
            ("status =", filter.status.map(|s| Bind::Text(s.as_str()))),
        ];
        let (conditions, binds) = conditions(given);
        let sql = format!(
            "SELECT {DAY_COLUMNS}
             FROM operations
             WHERE {}
             GROUP BY created_at / 86400000, status",
            conditions.join(" AND ")
        );
        HistoryQuery { sql, binds }
    }
}

/// A scalar subquery: `inner`'s rows as one JSON text, an array of rows in `order`, each an
/// array of the values of `columns` (`inner`'s select list) in order, which a struct with
/// those fields in that order deserializes from; `[]` when there are none.
///
/// One value to read instead of a row per line, and several such values in one statement:
/// sqlx runs each SQLite connection on a thread of its own, and each statement and each row
/// is a hand-off between that thread and the runtime's, which for a history page cost more
/// than the reading (README, Performance). PostgreSQL is asked the same way, so that both
/// are read by one decoder.
fn json_rows(pool: &Pool, inner: &str, columns: &str, order: &str) -> String {
    let values = column_names(columns).collect::<Vec<_>>().join(", ");
    match pool {
        Pool::Sqlite(_) => format!(
            "(SELECT json_group_array(json_array({values}) ORDER BY {order}) FROM ({inner}) AS r)"
        ),
        Pool::Postgres(_) => format!(
            "(SELECT COALESCE(json_agg(json_build_array({values}) ORDER BY {order}), '[]')::text
              FROM ({inner}) AS r)"
        ),
    }
}

/// Reads a [`json_rows`] value. A stored value that no longer parses fails the whole read
/// (as a row would), never skips its row.
fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(json).map_err(|error| StoreError::Corrupt {
        column: "history page row",
        message: error.to_string(),
    })
}

/// `sql` with its parameters `$1, $2, …` numbered from `$(after + 1)`: for a statement that
/// holds it after `after` other parameters.
fn renumbered(sql: &str, after: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[..digits].parse::<usize>() {
            Ok(number) => out.push_str(&(number + after).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The names of a select list's columns: `a.handle AS app_handle, o.kind` → `app_handle`,
/// `kind`. (A list whose expressions hold commas would need its names written out.)
fn column_names(columns: &str) -> impl Iterator<Item = &str> {
    columns.split(',').map(|column| {
        let column = column.trim();
        match column.rsplit_once(" AS ") {
            Some((_, name)) => name,
            None => column.rsplit_once('.').map_or(column, |(_, name)| name),
        }
    })
}
