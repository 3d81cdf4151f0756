//! Apps: how each is deployed, the registry credentials remembered on it, its configuration
//! and its releases. Every sealed value here was sealed by the caller (the `vault` crate)
//! with the context [`crate::SecretSlot`] names; this module never sees plaintext.

use crate::{db::with_pool, now_ms, parsed::OptionalText, Sealed, Store, StoreError};
use domain::{
    AppHandle, ConfigKey, DeployMethod, Digest, HealthPath, ImageReference, OperationKind,
    OperationStatus, RegistryHost, RepositoryUrl, TeamHandle,
};

/// An app as stored, without its sealed values.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct App {
    pub id: i64,
    pub team_id: i64,
    #[sqlx(try_from = "String")]
    pub handle: AppHandle,
    #[sqlx(try_from = "String")]
    pub method: DeployMethod,
    #[sqlx(try_from = "OptionalText")]
    pub health_path: Option<HealthPath>,
    #[sqlx(try_from = "OptionalText")]
    pub remembered_registry: Option<RegistryHost>,
    pub remembered_username: Option<String>,
    pub remembered_at: Option<i64>,
    pub team_credential_id: Option<i64>,
    pub team_credential_name: Option<String>,
    pub current_release_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Dockerfile deploys: the repository (without credentials in it), its read username,
    /// the Dockerfile's path and the build context, relative to the repository root.
    #[sqlx(try_from = "OptionalText")]
    pub git_url: Option<RepositoryUrl>,
    pub git_username: Option<String>,
    pub dockerfile_path: Option<String>,
    pub context_path: Option<String>,
    /// Where the app runs (the local engine, or an app on Aptible).
    #[sqlx(flatten)]
    pub platform: crate::AppPlatform,
    /// The app's team's handle (its address is `APP.TEAM.<apps domain>`).
    #[sqlx(try_from = "String")]
    pub team_handle: TeamHandle,
    /// The app's stable port on the local engine's router, once it was first deployed.
    pub route_port: Option<i64>,
}

pub struct NewApp<'a> {
    pub handle: &'a AppHandle,
    pub method: DeployMethod,
    pub health_path: Option<&'a HealthPath>,
    pub created_by: i64,
}

/// A line of the apps list: the app, what serves now and what happened last.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppSummary {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub handle: AppHandle,
    #[sqlx(try_from = "String")]
    pub method: DeployMethod,
    pub release_id: Option<i64>,
    #[sqlx(try_from = "OptionalText")]
    pub release_image: Option<ImageReference>,
    #[sqlx(try_from = "OptionalText")]
    pub release_digest: Option<Digest>,
    pub release_port: Option<i64>,
    pub release_created_at: Option<i64>,
    pub last_operation_id: Option<i64>,
    #[sqlx(try_from = "OptionalText")]
    pub last_operation_kind: Option<OperationKind>,
    #[sqlx(try_from = "OptionalText")]
    pub last_operation_status: Option<OperationStatus>,
    pub last_operation_created_at: Option<i64>,
}

/// One configuration variable, its value sealed with the app id and the key (plain ones
/// too: the flag decides who may see a value, not how it is kept).
#[derive(Clone, Debug)]
pub struct ConfigValue {
    pub key: ConfigKey,
    pub sealed: Sealed,
    /// Marked plain (visible) when it was set; otherwise secret.
    pub plain: bool,
    pub updated_at: i64,
}

/// What an operation produced to run: the exact image digest, never just a tag.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Release {
    pub id: i64,
    pub app_id: i64,
    pub operation_id: i64,
    #[sqlx(try_from = "String")]
    pub image: ImageReference,
    #[sqlx(try_from = "String")]
    pub digest: Digest,
    pub port: Option<i64>,
    pub created_at: i64,
}

impl Release {
    /// The image pinned to the digest it ran: what a restart runs again.
    pub fn pinned_image(&self) -> ImageReference {
        self.image.pinned(&self.digest)
    }
}

pub(crate) const APP_COLUMNS: &str =
    "a.id, a.team_id, a.handle, a.method, a.health_path, a.remembered_registry,
     a.remembered_username, a.remembered_at, a.team_credential_id,
     c.name AS team_credential_name, a.current_release_id, a.created_at, a.updated_at,
     a.git_url, a.git_username, a.dockerfile_path, a.context_path,
     a.platform, a.aptible_environment, a.aptible_app, a.aptible_app_id, a.aptible_git_repo,
     a.aptible_verify_images <> 0 AS aptible_verify_images, t.handle AS team_handle,
     a.route_port";

pub(crate) const APP_FROM: &str = "apps a JOIN teams t ON t.id = a.team_id
     LEFT JOIN registry_credentials c ON c.id = a.team_credential_id";

const RELEASE_COLUMNS: &str =
    "r.id, r.app_id, r.operation_id, r.image, r.digest, r.port, r.created_at";

/// An app and its current release read in one row (release columns prefixed `release_`).
#[derive(sqlx::FromRow)]
struct AppWithRelease {
    #[sqlx(flatten)]
    app: App,
    release_id: i64,
    release_operation_id: i64,
    #[sqlx(try_from = "String")]
    release_image: ImageReference,
    #[sqlx(try_from = "String")]
    release_digest: Digest,
    release_port: Option<i64>,
    release_created_at: i64,
}

impl AppWithRelease {
    fn split(self) -> (App, Release) {
        let release = Release {
            id: self.release_id,
            app_id: self.app.id,
            operation_id: self.release_operation_id,
            image: self.release_image,
            digest: self.release_digest,
            port: self.release_port,
            created_at: self.release_created_at,
        };
        (self.app, release)
    }
}

impl Store {
    /// Creates an app; `Taken { what: "handle" }` when the team already has that handle.
    pub async fn create_app(&self, team_id: i64, new: NewApp<'_>) -> Result<App, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO apps (team_id, handle, method, health_path, created_by, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 RETURNING id",
            )
            .bind(team_id)
            .bind(new.handle.as_str())
            .bind(new.method.as_str())
            .bind(new.health_path.map(HealthPath::as_str))
            .bind(new.created_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::unique_as(e, "handle"))?;
            let app = sqlx::query_as(&format!("SELECT {APP_COLUMNS} FROM {APP_FROM} WHERE a.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(app)
        })
    }

    /// The team's app with `handle`; `None` for another team's app.
    pub async fn app(&self, team_id: i64, handle: &str) -> Result<Option<App>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!(
                "SELECT {APP_COLUMNS} FROM {APP_FROM} WHERE a.team_id = $1 AND a.handle = $2"
            ))
            .bind(team_id)
            .bind(handle)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// An app by id, whatever its team: for the worker, never for a request.
    pub async fn app_by_id(&self, app_id: i64) -> Result<Option<App>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {APP_COLUMNS} FROM {APP_FROM} WHERE a.id = $1"))
                .bind(app_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    pub async fn set_health_path(
        &self,
        app_id: i64,
        health_path: Option<&HealthPath>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE apps SET health_path = $1, updated_at = $2 WHERE id = $3")
                .bind(health_path.map(HealthPath::as_str))
                .bind(now_ms())
                .bind(app_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The team's apps by handle, each with its current release and its latest operation,
    /// in one query (the latest operation is one index probe per app on `operations_app`).
    pub async fn apps(&self, team_id: i64) -> Result<Vec<AppSummary>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT a.id, a.handle, a.method,
                        r.id AS release_id, r.image AS release_image, r.digest AS release_digest,
                        r.port AS release_port, r.created_at AS release_created_at,
                        o.id AS last_operation_id, o.kind AS last_operation_kind,
                        o.status AS last_operation_status, o.created_at AS last_operation_created_at
                 FROM apps a
                 LEFT JOIN releases r ON r.id = a.current_release_id
                 LEFT JOIN operations o
                   ON o.id = (SELECT MAX(l.id) FROM operations l WHERE l.app_id = a.id)
                 WHERE a.team_id = $1
                 ORDER BY a.handle",
            )
            .bind(team_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The registry credentials remembered on the app: registry, username, sealed password.
    pub async fn remembered_secret(
        &self,
        app_id: i64,
    ) -> Result<Option<(RegistryHost, String, Sealed)>, StoreError> {
        with_pool!(self, pool => {
            let row: Option<(String, String, String, String)> = sqlx::query_as(
                "SELECT remembered_registry, remembered_username, remembered_secret_sealed,
                        remembered_secret_key_id
                 FROM apps
                 WHERE id = $1 AND remembered_secret_sealed IS NOT NULL",
            )
            .bind(app_id)
            .fetch_optional(pool)
            .await?;
            row.map(|(registry, username, value, key_id)| {
                let registry = RegistryHost::parse(&registry).map_err(|e| StoreError::corrupt("apps.remembered_registry", e))?;
                Ok((registry, username, Sealed { value, key_id }))
            })
            .transpose()
        })
    }

    pub async fn forget_remembered_credentials(&self, app_id: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE apps SET remembered_registry = NULL, remembered_username = NULL,
                   remembered_secret_sealed = NULL, remembered_secret_key_id = NULL,
                   remembered_at = NULL, updated_at = $1
                 WHERE id = $2",
            )
            .bind(now_ms())
            .bind(app_id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The app's configuration variables by key, values sealed.
    pub async fn config(&self, app_id: i64) -> Result<Vec<ConfigValue>, StoreError> {
        with_pool!(self, pool => {
            let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
                "SELECT key, value_sealed, value_key_id, plain, updated_at FROM app_config
                 WHERE app_id = $1 ORDER BY key",
            )
            .bind(app_id)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(key, value, key_id, plain, updated_at)| {
                    let key = ConfigKey::try_from(key).map_err(|e| StoreError::corrupt("app_config.key", e))?;
                    Ok(ConfigValue { key, sealed: Sealed { value, key_id }, plain: plain != 0, updated_at })
                })
                .collect()
        })
    }

    pub async fn release(&self, release_id: i64) -> Result<Option<Release>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!("SELECT {RELEASE_COLUMNS} FROM releases r WHERE r.id = $1"))
                .bind(release_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The release that should serve the app, if it was ever deployed.
    pub async fn current_release(&self, app_id: i64) -> Result<Option<Release>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!(
                "SELECT {RELEASE_COLUMNS} FROM apps a JOIN releases r ON r.id = a.current_release_id
                 WHERE a.id = $1"
            ))
            .bind(app_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Every app that should be running on this host, with its release: the desired state
    /// that start-up brings back (apps on Aptible run there, not here).
    pub async fn current_releases(&self) -> Result<Vec<(App, Release)>, StoreError> {
        with_pool!(self, pool => {
            let rows: Vec<AppWithRelease> = sqlx::query_as(&format!(
                "SELECT {APP_COLUMNS}, r.id AS release_id, r.operation_id AS release_operation_id,
                        r.image AS release_image, r.digest AS release_digest,
                        r.port AS release_port, r.created_at AS release_created_at
                 FROM {APP_FROM} JOIN releases r ON r.id = a.current_release_id
                 WHERE a.platform = 'local'
                 ORDER BY a.id"
            ))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(AppWithRelease::split).collect())
        })
    }

    /// App `app_id`'s stable port, given now from `ports` (the lowest free one) if it has
    /// none yet. Several processes may give ports at once: the unique index settles it.
    pub async fn route_port(
        &self,
        app_id: i64,
        ports: std::ops::RangeInclusive<u16>,
    ) -> Result<u16, StoreError> {
        for _ in 0..8 {
            let given = with_pool!(self, pool => {
                let current: Option<Option<i64>> =
                    sqlx::query_scalar("SELECT route_port FROM apps WHERE id = $1")
                        .bind(app_id)
                        .fetch_optional(pool)
                        .await?;
                match current {
                    None => return Err(StoreError::NotFound),
                    Some(Some(port)) => {
                        return u16::try_from(port).map_err(|_| StoreError::NotFound);
                    }
                    Some(None) => {}
                }
                let taken: Vec<i64> = sqlx::query_scalar(
                    "SELECT route_port FROM apps WHERE route_port BETWEEN $1 AND $2 ORDER BY route_port",
                )
                .bind(i64::from(*ports.start()))
                .bind(i64::from(*ports.end()))
                .fetch_all(pool)
                .await?;
                let mut free = i64::from(*ports.start());
                for port in taken {
                    if port == free {
                        free += 1;
                    } else if port > free {
                        break;
                    }
                }
                if free > i64::from(*ports.end()) {
                    return Err(StoreError::Exhausted(format!(
                        "every stable port in {}-{} is taken",
                        ports.start(),
                        ports.end()
                    )));
                }
                sqlx::query("UPDATE apps SET route_port = $1 WHERE id = $2 AND route_port IS NULL")
                    .bind(free)
                    .bind(app_id)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            });
            match given {
                // Given (or another process gave one first): read it back.
                Ok(_) => continue,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Exhausted(
            "no stable port could be given after several tries".into(),
        ))
    }

    /// Handles of the apps whose deploys use the team credential (shown before a delete).
    pub async fn apps_using_credential(
        &self,
        credential_id: i64,
    ) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT handle FROM apps WHERE team_credential_id = $1 ORDER BY handle")
                .bind(credential_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Sets a Dockerfile app's git source; `credentials` (username and the password sealed
    /// with [`crate::SecretSlot::AppGit`]) replace the stored ones, `None` removes them.
    pub async fn set_git_source(
        &self,
        app_id: i64,
        url: &RepositoryUrl,
        dockerfile: &str,
        context: &str,
        credentials: Option<(&str, Sealed)>,
    ) -> Result<(), StoreError> {
        let (username, sealed) = match credentials {
            Some((username, sealed)) => (Some(username), Some(sealed)),
            None => (None, None),
        };
        with_pool!(self, pool => {
            let done = sqlx::query(
                "UPDATE apps SET git_url = $1, dockerfile_path = $2, context_path = $3,
                   git_username = $4, git_secret_sealed = $5, git_secret_key_id = $6, updated_at = $7
                 WHERE id = $8",
            )
            .bind(url.as_str())
            .bind(dockerfile)
            .bind(context)
            .bind(username)
            .bind(sealed.as_ref().map(|s| s.value.as_str()))
            .bind(sealed.as_ref().map(|s| s.key_id.as_str()))
            .bind(now_ms())
            .bind(app_id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The sealed git read password of an app, with its username.
    pub async fn git_secret(&self, app_id: i64) -> Result<Option<(String, Sealed)>, StoreError> {
        with_pool!(self, pool => {
            let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT git_username, git_secret_sealed, git_secret_key_id FROM apps WHERE id = $1",
            )
            .bind(app_id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some((Some(username), Some(value), Some(key_id))) => {
                    Some((username, Sealed { value, key_id }))
                }
                _ => None,
            })
        })
    }
}
