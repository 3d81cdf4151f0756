//! A team's connections to platforms other than the local engine (today: Aptible), and where
//! each app runs. The access token is sealed by the caller ([`crate::SecretSlot::TeamPlatform`]);
//! this module never sees it in plain text.

use crate::{db::with_pool, now_ms, parsed::OptionalText, Sealed, Store, StoreError};
use domain::{AptibleHandle, PlatformKind};

/// Whether a connection can be used.
pub const CONNECTED: &str = "connected";
/// The platform refused the token (expired or revoked): an owner must connect again.
pub const RECONNECT_NEEDED: &str = "reconnect_needed";

/// A team's connection to a platform, without its token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TeamPlatform {
    pub team_id: i64,
    #[sqlx(try_from = "String")]
    pub kind: PlatformKind,
    /// Whose token it is, as the platform says (an e-mail), when known.
    pub account: Option<String>,
    pub expires_at: Option<i64>,
    /// [`CONNECTED`] or [`RECONNECT_NEEDED`].
    pub state: String,
    /// Why the platform last refused the token.
    pub last_error: Option<String>,
    pub connected_by_email: Option<String>,
    pub connected_at: i64,
}

impl TeamPlatform {
    pub fn needs_reconnect(&self) -> bool {
        self.state == RECONNECT_NEEDED
    }
}

/// A new connection (or a new token for an existing one).
pub struct NewTeamPlatform<'a> {
    pub kind: PlatformKind,
    pub account: Option<&'a str>,
    pub token: &'a Sealed,
    pub expires_at: Option<i64>,
    pub connected_by: i64,
}

/// The Aptible app an app of Berth forwards to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptibleTarget {
    pub environment: AptibleHandle,
    pub app: AptibleHandle,
    /// Aptible's id of the app, found when the app was created.
    pub app_id: i64,
    /// The app's git remote on Aptible (Dockerfile deploys push there).
    pub git_repo: Option<String>,
    /// Image deploys are verified against the registry before they are forwarded (the
    /// default); off for registries only Aptible can reach.
    pub verify_images: bool,
}

/// Where an app runs, as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppPlatform {
    #[sqlx(try_from = "String")]
    pub platform: PlatformKind,
    #[sqlx(try_from = "OptionalText")]
    pub aptible_environment: Option<AptibleHandle>,
    #[sqlx(try_from = "OptionalText")]
    pub aptible_app: Option<AptibleHandle>,
    pub aptible_app_id: Option<i64>,
    pub aptible_git_repo: Option<String>,
    pub aptible_verify_images: bool,
}

impl AppPlatform {
    /// The Aptible app, for an app that runs on Aptible.
    pub fn aptible(&self) -> Option<AptibleTarget> {
        match (
            self.platform,
            &self.aptible_environment,
            &self.aptible_app,
            self.aptible_app_id,
        ) {
            (PlatformKind::Aptible, Some(environment), Some(app), Some(app_id)) => {
                Some(AptibleTarget {
                    environment: environment.clone(),
                    app: app.clone(),
                    app_id,
                    git_repo: self.aptible_git_repo.clone(),
                    verify_images: self.aptible_verify_images,
                })
            }
            _ => None,
        }
    }
}

const PLATFORM_COLUMNS: &str = "p.team_id, p.kind, p.account, p.expires_at, p.state, p.last_error,
     u.email AS connected_by_email, p.connected_at";

impl Store {
    /// Connects the team to a platform, or replaces its token: the connection is usable again.
    pub async fn connect_platform(
        &self,
        team_id: i64,
        new: NewTeamPlatform<'_>,
    ) -> Result<TeamPlatform, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM team_platforms WHERE team_id = $1 AND kind = $2")
                .bind(team_id)
                .bind(new.kind.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO team_platforms
                   (team_id, kind, account, token_sealed, token_key_id, expires_at, state,
                    last_error, connected_by, connected_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'connected', NULL, $7, $8)",
            )
            .bind(team_id)
            .bind(new.kind.as_str())
            .bind(new.account)
            .bind(&new.token.value)
            .bind(&new.token.key_id)
            .bind(new.expires_at)
            .bind(new.connected_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let platform = sqlx::query_as(&format!(
                "SELECT {PLATFORM_COLUMNS} FROM team_platforms p
                 LEFT JOIN users u ON u.id = p.connected_by
                 WHERE p.team_id = $1 AND p.kind = $2"
            ))
            .bind(team_id)
            .bind(new.kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(platform)
        })
    }

    /// The team's connection to `kind`, if it has one.
    pub async fn team_platform(
        &self,
        team_id: i64,
        kind: PlatformKind,
    ) -> Result<Option<TeamPlatform>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(&format!(
                "SELECT {PLATFORM_COLUMNS} FROM team_platforms p
                 LEFT JOIN users u ON u.id = p.connected_by
                 WHERE p.team_id = $1 AND p.kind = $2"
            ))
            .bind(team_id)
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The sealed token of the team's connection to `kind`.
    pub async fn team_platform_token(
        &self,
        team_id: i64,
        kind: PlatformKind,
    ) -> Result<Option<Sealed>, StoreError> {
        with_pool!(self, pool => {
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT token_sealed, token_key_id FROM team_platforms
                 WHERE team_id = $1 AND kind = $2",
            )
            .bind(team_id)
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(value, key_id)| Sealed { value, key_id }))
        })
    }

    /// The platform refused the team's token: it must connect again.
    pub async fn mark_platform_reconnect_needed(
        &self,
        team_id: i64,
        kind: PlatformKind,
        error: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE team_platforms SET state = 'reconnect_needed', last_error = $1
                 WHERE team_id = $2 AND kind = $3",
            )
            .bind(error)
            .bind(team_id)
            .bind(kind.as_str())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Disconnects the team from `kind` (its token is deleted). `false` when it was not
    /// connected.
    pub async fn disconnect_platform(
        &self,
        team_id: i64,
        kind: PlatformKind,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM team_platforms WHERE team_id = $1 AND kind = $2")
                .bind(team_id)
                .bind(kind.as_str())
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Makes the app one that runs on Aptible, as `target`.
    pub async fn set_app_on_aptible(
        &self,
        app_id: i64,
        target: &AptibleTarget,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE apps SET platform = 'aptible', aptible_environment = $1, aptible_app = $2,
                        aptible_app_id = $3, aptible_git_repo = $4, aptible_verify_images = $5,
                        updated_at = $6
                 WHERE id = $7",
            )
            .bind(target.environment.as_str())
            .bind(target.app.as_str())
            .bind(target.app_id)
            .bind(target.git_repo.as_deref())
            .bind(i64::from(target.verify_images))
            .bind(now_ms())
            .bind(app_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records the id of the operation Berth posted to the platform for operation `id`.
    pub async fn set_remote_operation_id(&self, id: i64, remote_id: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE operations SET remote_operation_id = $1 WHERE id = $2")
                .bind(remote_id)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The platform's id of the operation Berth forwarded as operation `id`, once posted.
    pub async fn remote_operation_id(&self, id: i64) -> Result<Option<i64>, StoreError> {
        with_pool!(self, pool => {
            let remote: Option<Option<i64>> =
                sqlx::query_scalar("SELECT remote_operation_id FROM operations WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(remote.flatten())
        })
    }
}
