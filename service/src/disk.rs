//! Bounded disk on this server: after each successful deploy the worker prunes the app's
//! team storage down to the images that are kept — each app's last `BERTH_KEEP_RELEASES`
//! release images, and whatever a queued or running deploy is about to run — and measures
//! what the app takes, which its page and `GET …/apps/{app}` show.
//!
//! Measurements are kept per app for a minute ([`MEASUREMENT_TTL_MS`]): a page read within
//! that minute costs nothing, one after it measures again, which is cheap too because the
//! engine remembers each image layer's size (layers never change) and walks only the logs,
//! the temporary directory and the git mirror.

use crate::{builds, Berth};
use domain::ImageReference;
use platform::{
    engine::{built_image_name, AppRef, OperationLog},
    PruneReport,
};
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};
use store::{App, KeptBecause, KeptImage};
use views::DiskUsageView;

/// Why a redeploy of a Dockerfile deploy's image cannot run: its image is gone from this
/// server, and a build is never rebuilt by digest (the same commit may build differently).
pub const BUILD_PRUNED: &str =
    "the image of that build was pruned (BERTH_KEEP_RELEASES); deploy the commit again";

/// How long a measurement of an app's disk use is shown before it is measured again.
pub const MEASUREMENT_TTL_MS: i64 = 60_000;

/// `BERTH_KEEP_RELEASES`: how many release images each app keeps (1 to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepReleases(u32);

impl KeepReleases {
    pub const DEFAULT: KeepReleases = KeepReleases(5);
    pub const MAX: u32 = 100;

    /// The setting's value; unset means [`KeepReleases::DEFAULT`].
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(Self::DEFAULT);
        };
        match value.trim().parse::<u32>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(format!(
                "\"{value}\" is not a number of releases from 1 to {} (the current release \
                 is always kept)",
                Self::MAX
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for KeepReleases {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The disk policy and the latest measurement of each app.
#[derive(Debug, Default)]
pub struct Disk {
    pub keep_releases: KeepReleases,
    measured: Mutex<HashMap<i64, DiskUsageView>>,
}

impl Disk {
    pub fn new(keep_releases: KeepReleases) -> Self {
        Self {
            keep_releases,
            measured: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, app_id: i64) -> Option<DiskUsageView> {
        let measured = self.measured.lock().expect("disk measurements lock");
        measured
            .get(&app_id)
            .filter(|view| store::now_ms() - view.measured_at < MEASUREMENT_TTL_MS)
            .copied()
    }

    fn remember(&self, app_id: i64, view: DiskUsageView) {
        self.measured
            .lock()
            .expect("disk measurements lock")
            .insert(app_id, view);
    }
}

/// The app as the platform names it, for pruning and measuring (its address plays no part).
pub(crate) fn app_ref(app: &App) -> AppRef {
    AppRef {
        id: app.id,
        team_id: app.team_id,
        name: format!("{}/{}", app.team_handle, app.handle),
        route: None,
    }
}

/// What an image in the storage is for a `KeptImage`: its pinned reference, or the name a
/// build in progress gives its image.
fn storage_reference(kept: &KeptImage) -> Option<ImageReference> {
    match (&kept.image, kept.because) {
        (Some(image), _) => Some(image.clone()),
        (None, KeptBecause::Operation { operation_id }) => {
            ImageReference::parse(&built_image_name(kept.app_id, operation_id)).ok()
        }
        (None, _) => None,
    }
}

/// What the team keeps once `app`'s deploy of `deployed` succeeds: every other app's kept
/// images as they are, and for `app` the image it now runs followed by its newest earlier
/// release images, `keep` in all (the release it replaces counts among them, and goes
/// when `keep` is 1), plus whatever its queued deploys will run.
fn kept_after_deploy(
    kept: &[KeptImage],
    app_id: i64,
    deployed: &ImageReference,
    keep: KeepReleases,
) -> Vec<ImageReference> {
    let mut images: Vec<ImageReference> = kept
        .iter()
        .filter(|k| k.app_id != app_id || matches!(k.because, KeptBecause::Operation { .. }))
        .filter_map(storage_reference)
        .collect();
    let mut releases: Vec<(i64, &ImageReference)> = kept
        .iter()
        .filter(|k| k.app_id == app_id)
        .filter_map(|k| match (k.because, &k.image) {
            (KeptBecause::Release { newness }, Some(image)) => Some((newness, image)),
            _ => None,
        })
        .collect();
    releases.sort_by_key(|(newness, _)| *newness);
    let mut seen = HashSet::new();
    let own = std::iter::once(deployed)
        .chain(releases.into_iter().map(|(_, image)| image))
        .filter(|image| seen.insert(image.to_string()))
        .take(keep.get() as usize)
        .cloned();
    images.extend(own);
    images
}

/// After `app`'s deploy of `deployed` (pinned) succeeded, before the operation ends:
/// removes the images the team no longer keeps, then measures the app. Nothing here fails
/// the deploy: a failure is a warning line in the operation's log.
pub(crate) async fn prune_after_deploy(
    berth: &Berth,
    app: &App,
    deployed: &ImageReference,
    log: &dyn OperationLog,
) {
    let keep = berth.disk.keep_releases;
    let kept = match berth.store.kept_images(app.team_id, keep.get()).await {
        Ok(kept) => kept,
        Err(error) => {
            tracing::warn!(%error, app = app.id, "cannot read the kept images; nothing pruned");
            log.line("Warning: old images were not pruned (Berth could not read which images the team keeps); the next deploy tries again");
            return;
        }
    };
    let images = kept_after_deploy(&kept, app.id, deployed, keep);
    match berth.platform.prune(&app_ref(app), images).await {
        Ok(report) => log_pruned(&report, keep, log),
        Err(error) => {
            tracing::warn!(%error, app = app.id, "pruning the image storage failed");
            log.line(&format!(
                "Warning: pruning old images failed ({error}); the deploy is not affected, the next one tries again"
            ));
        }
    }
    // Measured now, so that the app's page shows it at once; the new release is a
    // running operation's image until the operation ends, and counted as one.
    measure(berth, app).await;
}

fn log_pruned(report: &PruneReport, keep: KeepReleases, log: &dyn OperationLog) {
    if report.postponed {
        log.line("Old images were not pruned this time: another deploy of this team was pulling, building or starting in the same image storage; the next deploy prunes them");
        return;
    }
    let mut parts = Vec::new();
    if !report.removed.is_empty() {
        parts.push(format!(
            "{} old image{}",
            report.removed.len(),
            plural(report.removed.len())
        ));
    }
    if report.dangling_removed > 0 {
        parts.push(format!(
            "{} unused build layer image{}",
            report.dangling_removed,
            plural(report.dangling_removed)
        ));
    }
    if !parts.is_empty() {
        log.line(&format!(
            "Pruned {}: {} freed (each app keeps the images of its last {} release{}: BERTH_KEEP_RELEASES)",
            parts.join(" and "),
            human_bytes(report.freed_bytes),
            keep.get(),
            plural(keep.get() as usize),
        ));
    } else {
        log.line(&format!(
            "Nothing to prune (each app keeps the images of its last {} release{}: BERTH_KEEP_RELEASES)",
            keep.get(),
            plural(keep.get() as usize),
        ));
    }
    for (image, why) in &report.not_removed {
        log.line(&format!(
            "Warning: {image} was not pruned ({why}); the next deploy tries again"
        ));
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `12.3 MiB`, as the log says it.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What `app` takes on this server's disk, measured at most a minute ago; `None` for an
/// app on Aptible, or when it cannot be measured (logged).
pub async fn usage(berth: &Berth, app: &App) -> Option<DiskUsageView> {
    if app.platform.aptible().is_some() {
        return None;
    }
    match berth.disk.fresh(app.id) {
        Some(view) => Some(view),
        None => measure(berth, app).await,
    }
}

async fn measure(berth: &Berth, app: &App) -> Option<DiskUsageView> {
    let keep = berth.disk.keep_releases;
    let kept = match berth.store.kept_images(app.team_id, keep.get()).await {
        Ok(kept) => kept,
        Err(error) => {
            tracing::warn!(%error, app = app.id, "cannot read the app's kept images");
            return None;
        }
    };
    let images: Vec<ImageReference> = kept
        .iter()
        .filter(|k| k.app_id == app.id)
        .filter_map(storage_reference)
        .collect();
    let engine = match berth.platform.disk_usage(&app_ref(app), images).await {
        Ok(usage) => usage,
        Err(error) => {
            tracing::warn!(%error, app = app.id, "cannot measure the app's disk use");
            return None;
        }
    };
    let source_bytes = if app.git_url.is_some() {
        let repository = builds::repository(berth, app.id);
        match tokio::task::spawn_blocking(move || repository.disk_bytes()).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) => {
                tracing::warn!(%error, app = app.id, "cannot measure the app's git mirror");
                0
            }
            Err(error) => {
                tracing::warn!(%error, app = app.id, "measuring the app's git mirror stopped");
                0
            }
        }
    } else {
        0
    };
    let view = DiskUsageView {
        images_bytes: engine.images_bytes,
        logs_bytes: engine.logs_bytes,
        source_bytes,
        tmp_bytes: engine.tmp_bytes,
        total_bytes: engine.images_bytes + engine.logs_bytes + source_bytes + engine.tmp_bytes,
        measured_at: store::now_ms(),
    };
    berth.disk.remember(app.id, view);
    Some(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str) -> ImageReference {
        ImageReference::parse(name).unwrap()
    }

    fn digest(n: u64) -> domain::Digest {
        domain::Digest::parse(&format!("sha256:{n:064x}")).unwrap()
    }

    fn pinned(name: &str, n: u64) -> ImageReference {
        image(name).pinned(&digest(n))
    }

    fn kept(app_id: i64, image: Option<ImageReference>, because: KeptBecause) -> KeptImage {
        KeptImage {
            app_id,
            image,
            because,
        }
    }

    #[test]
    fn the_setting_is_a_number_of_releases_from_1_to_100() {
        assert_eq!(KeepReleases::parse(None).unwrap().get(), 5);
        assert_eq!(KeepReleases::parse(Some(" 12 ")).unwrap().get(), 12);
        for bad in ["0", "101", "-1", "five", ""] {
            let error = KeepReleases::parse(Some(bad)).unwrap_err();
            assert!(error.contains("from 1 to 100"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_deploy_keeps_its_image_and_the_newest_earlier_ones_and_every_other_apps() {
        let rows = [
            kept(1, Some(pinned("h/web:3", 3)), KeptBecause::Current),
            kept(
                1,
                Some(pinned("h/web:3", 3)),
                KeptBecause::Release { newness: 1 },
            ),
            kept(
                1,
                Some(pinned("h/web:2", 2)),
                KeptBecause::Release { newness: 2 },
            ),
            kept(
                1,
                Some(pinned("h/web:1", 1)),
                KeptBecause::Release { newness: 3 },
            ),
            // The running deploy itself, and a later one queued for the same app.
            kept(
                1,
                Some(pinned("h/web:4", 4)),
                KeptBecause::Operation { operation_id: 9 },
            ),
            kept(
                1,
                Some(pinned("h/web:5", 5)),
                KeptBecause::Operation { operation_id: 10 },
            ),
            // Another app runs web:1 too; a third builds an image not named yet.
            kept(2, Some(pinned("h/web:1", 1)), KeptBecause::Current),
            kept(3, None, KeptBecause::Operation { operation_id: 11 }),
        ];
        let keep = |n| KeepReleases::parse(Some(n)).unwrap();
        let names = |images: Vec<ImageReference>| -> HashSet<String> {
            images.iter().map(ToString::to_string).collect()
        };
        let deployed = pinned("h/web:4", 4);
        let two = names(kept_after_deploy(&rows, 1, &deployed, keep("2")));
        let expected: HashSet<String> = [
            pinned("h/web:4", 4),
            pinned("h/web:3", 3),
            pinned("h/web:5", 5),
            pinned("h/web:1", 1),
            image("localhost/berth/app-3:op-11"),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(two, expected);
        // With 1, the release this deploy replaces goes.
        let one = names(kept_after_deploy(&rows, 1, &deployed, keep("1")));
        assert!(!one.contains(&pinned("h/web:3", 3).to_string()), "{one:?}");
        assert!(one.contains(&deployed.to_string()));
        // Redeploying an older image keeps it once, and the newest ones after it.
        let again = names(kept_after_deploy(
            &rows,
            1,
            &pinned("h/web:2", 2),
            keep("2"),
        ));
        assert!(
            again.contains(&pinned("h/web:2", 2).to_string()),
            "{again:?}"
        );
        assert!(
            again.contains(&pinned("h/web:3", 3).to_string()),
            "{again:?}"
        );
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl OperationLog for Lines {
        fn step(&self, _: platform::Step) {}
        fn line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn a_postponed_prune_says_so_and_not_that_there_was_nothing_to_prune() {
        let keep = KeepReleases::parse(Some("2")).unwrap();
        let postponed = Lines::default();
        log_pruned(
            &PruneReport {
                postponed: true,
                ..PruneReport::default()
            },
            keep,
            &postponed,
        );
        let lines = postponed.0.into_inner().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("Old images were not pruned this time"),
            "{lines:?}"
        );

        let pruned = Lines::default();
        log_pruned(
            &PruneReport {
                removed: vec!["r.example/a@sha256:1".into(), "r.example/a@sha256:2".into()],
                freed_bytes: 3 << 20,
                ..PruneReport::default()
            },
            keep,
            &pruned,
        );
        assert_eq!(
            pruned.0.into_inner().unwrap(),
            ["Pruned 2 old images: 3.0 MiB freed (each app keeps the images of its last 2 releases: BERTH_KEEP_RELEASES)"]
        );
    }
}
