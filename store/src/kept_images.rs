//! Which images the apps of a team keep on this server's disk (`BERTH_KEEP_RELEASES`),
//! read in one query for the whole team: its apps share one image storage, and two apps
//! may run the same digest, so an image can go only when no app of the team keeps it.

use crate::{db::with_pool, Store, StoreError};
use domain::{Digest, ImageReference};

/// Why an image stays in its team's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptBecause {
    /// One of the app's newest release images: `newness` 1 is the image of its newest
    /// release, 2 the one before that (releases of the same image count once: a configure
    /// or a restart releases the image again).
    Release { newness: i64 },
    /// The app's current release.
    Current,
    /// A queued or running deploy of the app is about to run it.
    Operation { operation_id: i64 },
}

/// An image an app keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptImage {
    pub app_id: i64,
    /// Pinned to its digest when the digest is known. `None` for a Dockerfile deploy that
    /// has not built its image yet (the platform names what it builds after the operation).
    pub image: Option<ImageReference>,
    pub because: KeptBecause,
}

type Row = (
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    i64,
);

/// Each local app's release images ranked newest first (an image released again counts
/// once, at its newest release), the first `$2` of them; every current release; and what
/// queued or running deploys name. Apps on Aptible keep nothing here.
const KEPT_IMAGES: &str = "
    SELECT app_id, image, digest, operation_id, reason, newness FROM (
        SELECT g.app_id, g.image, g.digest, CAST(NULL AS BIGINT) AS operation_id,
               'release' AS reason,
               ROW_NUMBER() OVER (PARTITION BY g.app_id ORDER BY g.newest DESC) AS newness
        FROM (
            SELECT r.app_id, r.image, r.digest, MAX(r.id) AS newest
            FROM releases r JOIN apps a ON a.id = r.app_id
            WHERE a.team_id = $1 AND a.platform = 'local'
            GROUP BY r.app_id, r.image, r.digest
        ) g
    ) ranked
    WHERE newness <= $2
    UNION ALL
    SELECT a.id, r.image, r.digest, CAST(NULL AS BIGINT), 'current', CAST(0 AS BIGINT)
    FROM apps a JOIN releases r ON r.id = a.current_release_id
    WHERE a.team_id = $1 AND a.platform = 'local'
    UNION ALL
    SELECT o.app_id, o.image, o.digest, o.id, 'operation', CAST(0 AS BIGINT)
    FROM operations o JOIN apps a ON a.id = o.app_id
    WHERE o.team_id = $1 AND a.platform = 'local' AND o.kind = 'deploy'
      AND o.status IN ('queued', 'running')";

impl Store {
    /// The images the apps of team `team_id` keep: each app's `per_app` newest release
    /// images, its current release, and the images of queued and running deploys. In no
    /// particular order.
    pub async fn kept_images(
        &self,
        team_id: i64,
        per_app: u32,
    ) -> Result<Vec<KeptImage>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(KEPT_IMAGES)
                .bind(team_id)
                .bind(i64::from(per_app))
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(kept_image).collect()
    }
}

fn kept_image(
    (app_id, image, digest, operation_id, reason, newness): Row,
) -> Result<KeptImage, StoreError> {
    let because = match (reason.as_str(), operation_id) {
        ("release", _) => KeptBecause::Release { newness },
        ("current", _) => KeptBecause::Current,
        ("operation", Some(operation_id)) => KeptBecause::Operation { operation_id },
        _ => {
            return Err(StoreError::Corrupt {
                column: "kept image reason",
                message: reason,
            })
        }
    };
    let image = image
        .map(|image| ImageReference::parse(&image))
        .transpose()
        .map_err(|e| StoreError::corrupt("releases.image", e))?;
    let digest = digest
        .map(|digest| Digest::parse(&digest))
        .transpose()
        .map_err(|e| StoreError::corrupt("releases.digest", e))?;
    Ok(KeptImage {
        app_id,
        image: match (image, digest) {
            (Some(image), Some(digest)) => Some(image.pinned(&digest)),
            (image, None) => image,
            (None, Some(_)) => None,
        },
        because,
    })
}
