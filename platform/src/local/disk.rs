//! Bounded disk for the local engine: pruning a team's image storage down to the images
//! that are kept, and measuring what one app takes on this server's disk.
//!
//! Which images are kept is the caller's rule (the worker keeps the images of each app's
//! newest releases and of every queued or running operation); the engine only knows which
//! images in a storage a deploy put there: those pulled by digest (`host/repo@sha256:…`,
//! the only way a deploy pulls) and those built for a Dockerfile deploy
//! (`localhost/berth/app-N:op-M`). Anything else named there is a build's base, pulled by
//! tag: the build cache, left alone until its tag moves on and it dangles.
//!
//! Sizes come from c/storage's own records of the storage (`<driver>-images/images.json`,
//! `<driver>-layers/layers.json`: which layers make up each image, and each layer's parent)
//! and from the layers' directories on disk. With the vfs driver each layer's directory is
//! a whole copy of the image's file system up to that layer, so the directories, not the
//! layers' diff sizes, say what the disk holds. A committed layer never changes, so its
//! size is measured once and remembered (see [`LayerSizes`]).

use super::{buildah::BuildahError, LocalEngine, BUILDAH_MISSING};
use crate::{
    disk_use::disk_bytes,
    engine::{is_built_image, AppRef, DiskUsage, PlatformError, PruneReport},
};
use domain::ImageReference;
use serde::Deserialize;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

impl LocalEngine {
    pub(super) async fn prune_images(
        &self,
        app: &AppRef,
        keep: Vec<ImageReference>,
    ) -> Result<PruneReport, PlatformError> {
        let Some(_alone) = self.storage_use.alone(app.team_id) else {
            return Ok(PruneReport {
                postponed: true,
                ..PruneReport::default()
            });
        };
        let kept: HashSet<String> = keep.iter().flat_map(storage_names).collect();
        let buildah = self.buildah(app.team_id, app.id);
        let stored = buildah.images().await.map_err(prune_failure)?;

        // Which names go, and which images go whole with them (all their names go).
        let mut doomed_names = Vec::new();
        let mut doomed_images = Vec::new();
        for image in &stored {
            let going: Vec<&String> = image
                .names
                .iter()
                .filter(|name| put_there_by_a_deploy(name) && !kept.contains(name.as_str()))
                .collect();
            if image.names.is_empty() || (!going.is_empty() && going.len() == image.names.len()) {
                doomed_images.push(image.id.trim_start_matches("sha256:").to_owned());
            }
            doomed_names.extend(going.into_iter().cloned());
        }

        // Their layers are measured before they go: afterwards there is nothing to measure.
        let storage = self.storage(app.team_id);
        let measured = {
            let storage = storage.clone();
            tokio::task::spawn_blocking(move || storage.layers_of(&doomed_images))
                .await
                .map_err(|e| PlatformError::Other(format!("measuring the storage: {e}")))?
        }
        .map_err(|e| storage_unreadable(&storage, e))?;

        let mut report = PruneReport::default();
        // One name at a time: one image a container still uses must not keep the others.
        for name in doomed_names {
            match buildah.remove_image(&name).await {
                Ok(()) => report.removed.push(name),
                Err(BuildahError::NotInstalled(_)) => {
                    return Err(PlatformError::Unavailable(BUILDAH_MISSING.into()))
                }
                Err(e) => report.not_removed.push((name, e.summary())),
            }
        }
        report.dangling_removed = buildah
            .remove_dangling_images()
            .await
            .map_err(prune_failure)?;

        let remaining = {
            let storage = storage.clone();
            tokio::task::spawn_blocking(move || storage.layer_ids())
                .await
                .map_err(|e| PlatformError::Other(format!("measuring the storage: {e}")))?
        }
        .map_err(|e| storage_unreadable(&storage, e))?;
        for (layer, (dir, bytes)) in measured {
            if !remaining.contains(&layer) {
                report.freed_bytes += bytes;
                LayerSizes::forget(&dir);
            }
        }
        Ok(report)
    }

    pub(super) async fn app_disk_usage(
        &self,
        app: &AppRef,
        images: Vec<ImageReference>,
    ) -> Result<DiskUsage, PlatformError> {
        let names: HashSet<String> = images.iter().flat_map(storage_names).collect();
        let storage = self.storage(app.team_id);
        let logs_dir = self.settings.dir.join("logs");
        let log_name = format!("app-{}.log", app.id);
        let tmp = self.settings.tmp_dir(app.id);
        let measured = tokio::task::spawn_blocking(move || -> io::Result<DiskUsage> {
            let images = storage.images_named(&names)?;
            let layers = storage.layers_of(&images)?;
            Ok(DiskUsage {
                images_bytes: layers.values().map(|(_, bytes)| bytes).sum(),
                logs_bytes: log_files_bytes(&logs_dir, &log_name)?,
                tmp_bytes: if tmp.exists() { disk_bytes(&tmp)? } else { 0 },
            })
        })
        .await
        .map_err(|e| PlatformError::Other(format!("measuring the app's disk use: {e}")))?;
        measured.map_err(|e| {
            PlatformError::Other(format!(
                "measuring the app's disk use in {}: {e}",
                self.settings.dir.display()
            ))
        })
    }

    pub(super) async fn image_stored(
        &self,
        app: &AppRef,
        image: &ImageReference,
    ) -> Result<bool, PlatformError> {
        let Some(name) = storage_names(image).next() else {
            return Ok(false);
        };
        self.buildah(app.team_id, app.id)
            .has_image(&name)
            .await
            .map_err(|e| match e {
                BuildahError::NotInstalled(_) => PlatformError::Unavailable(BUILDAH_MISSING.into()),
                e => PlatformError::Other(format!("looking for {name} failed: {}", e.summary())),
            })
    }

    fn storage(&self, team_id: i64) -> Storage {
        Storage {
            root: self.settings.storage_dir(team_id),
            driver: self.settings.storage_driver.clone(),
        }
    }
}

/// Who is using each team's image storage. An image is safe from pruning by its name
/// (kept, or used by a container), but a deploy's image has neither for a while: c/storage
/// creates a pulled image first and names it after (a dangling image meanwhile), a build
/// commits unnamed step images, and between a pull and its container the image has only a
/// name the caller's `keep` may not know yet (it was read before the deploy was queued).
/// A prune in any of those moments removes what a deploy is about to run (seen as "the
/// image … is no longer in this server's image storage" right after a successful pull,
/// while another app of the team pruned). So deploys hold their team's storage shared from
/// before their pull until their container is made, builds while they build, and a prune
/// runs only when it can have the storage alone — it never waits (a build may take many
/// minutes), it is postponed to the next deploy.
#[derive(Default)]
pub(super) struct StorageUse(Mutex<HashMap<i64, Arc<RwLock<()>>>>);

/// A deploy's or a build's share of its team's storage, held until its image is safe.
pub(super) type StorageShare = OwnedRwLockReadGuard<()>;

impl StorageUse {
    fn of(&self, team_id: i64) -> Arc<RwLock<()>> {
        self.0
            .lock()
            .expect("storage use lock")
            .entry(team_id)
            .or_default()
            .clone()
    }

    /// Waits only while a prune of the team runs (a few buildah calls).
    pub(super) async fn share(&self, team_id: i64) -> StorageShare {
        self.of(team_id).read_owned().await
    }

    /// The team's storage to prune, unless a deploy or build holds a share.
    fn alone(&self, team_id: i64) -> Option<OwnedRwLockWriteGuard<()>> {
        self.of(team_id).try_write_owned().ok()
    }
}

/// The names an image has in the storage when a deploy pulled or built it: what a pull by
/// digest records (`host/repo@sha256:…`; see `pinned` in the engine), and a build's tag.
fn storage_names(image: &ImageReference) -> impl Iterator<Item = String> {
    let repository = format!("{}/{}", image.registry(), image.repository());
    let by_digest = image
        .digest()
        .map(|digest| format!("{repository}@{digest}"));
    let by_tag = image.tag().map(|tag| format!("{repository}:{tag}"));
    by_digest.into_iter().chain(by_tag)
}

/// Whether a deploy put a name there: a pull by digest, or a Dockerfile deploy's build.
fn put_there_by_a_deploy(name: &str) -> bool {
    name.contains('@') || ImageReference::parse(name).is_ok_and(|image| is_built_image(&image))
}

fn prune_failure(e: BuildahError) -> PlatformError {
    match e {
        BuildahError::NotInstalled(_) => PlatformError::Unavailable(BUILDAH_MISSING.into()),
        e => PlatformError::Other(format!("pruning the image storage failed: {}", e.summary())),
    }
}

fn storage_unreadable(storage: &Storage, e: io::Error) -> PlatformError {
    PlatformError::Other(format!(
        "reading the image storage {} failed: {e}",
        storage.root.display()
    ))
}

/// One team's c/storage directory, read directly for sizes (buildah prints none it can
/// sum: `buildah images` rounds each image's size into words, and counts shared layers
/// once per image).
#[derive(Clone)]
struct Storage {
    root: PathBuf,
    driver: String,
}

#[derive(Deserialize)]
struct ImageRecord {
    id: String,
    #[serde(default)]
    names: Option<Vec<String>>,
    /// The image's top layer; absent for an image without layers.
    #[serde(default)]
    layer: Option<String>,
}

#[derive(Deserialize)]
struct LayerRecord {
    id: String,
    #[serde(default)]
    parent: Option<String>,
}

impl Storage {
    fn images(&self) -> io::Result<Vec<ImageRecord>> {
        read_records(
            &self
                .root
                .join(format!("{}-images", self.driver))
                .join("images.json"),
        )
    }

    fn layers(&self) -> io::Result<Vec<LayerRecord>> {
        read_records(
            &self
                .root
                .join(format!("{}-layers", self.driver))
                .join("layers.json"),
        )
    }

    fn layer_ids(&self) -> io::Result<HashSet<String>> {
        Ok(self.layers()?.into_iter().map(|layer| layer.id).collect())
    }

    /// The ids of the images that have any of `names`.
    fn images_named(&self, names: &HashSet<String>) -> io::Result<Vec<String>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|image| {
                image
                    .names
                    .iter()
                    .flatten()
                    .any(|name| names.contains(name))
            })
            .map(|image| image.id)
            .collect())
    }

    /// Every layer the images with these ids are made of, each once, with its directory
    /// and the bytes it takes on disk.
    fn layers_of(&self, image_ids: &[String]) -> io::Result<BTreeMap<String, (PathBuf, u64)>> {
        let wanted: HashSet<&str> = image_ids.iter().map(String::as_str).collect();
        let tops: Vec<String> = self
            .images()?
            .into_iter()
            .filter(|image| wanted.contains(image.id.as_str()))
            .filter_map(|image| image.layer)
            .collect();
        let parents: HashMap<String, Option<String>> = self
            .layers()?
            .into_iter()
            .map(|layer| (layer.id, layer.parent))
            .collect();
        let mut chain = BTreeSet::new();
        for top in tops {
            let mut next = Some(top);
            while let Some(layer) = next {
                if !chain.insert(layer.clone()) {
                    break;
                }
                next = parents.get(&layer).cloned().flatten();
            }
        }
        chain
            .into_iter()
            .map(|layer| {
                let dir = self.layer_dir(&layer);
                let bytes = LayerSizes::of(&dir)?;
                Ok((layer, (dir, bytes)))
            })
            .collect()
    }

    /// Where the driver keeps a layer's files: `vfs/dir/<id>` (a whole copy of the file
    /// system up to that layer), `overlay/<id>` (its diff and work directories).
    fn layer_dir(&self, id: &str) -> PathBuf {
        match self.driver.as_str() {
            "vfs" => self.root.join("vfs").join("dir").join(id),
            driver => self.root.join(driver).join(id),
        }
    }
}

/// A missing file is an empty storage (nothing was ever pulled into it).
fn read_records<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Vec<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The sizes of the layer directories measured so far, by path. A committed layer's files
/// never change (a container writes to a layer of its own), so walking a large layer once
/// is enough; a pruned layer is forgotten. A layer removed another way and pulled again
/// comes back with the same id and the same files.
struct LayerSizes;

static LAYER_SIZES: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

impl LayerSizes {
    fn of(dir: &Path) -> io::Result<u64> {
        if let Some(bytes) = LAYER_SIZES.lock().expect("layer sizes lock").get(dir) {
            return Ok(*bytes);
        }
        let bytes = match disk_bytes(dir) {
            Ok(bytes) => bytes,
            // Listed but without files: nothing on disk to count.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        LAYER_SIZES
            .lock()
            .expect("layer sizes lock")
            .insert(dir.to_owned(), bytes);
        Ok(bytes)
    }

    fn forget(dir: &Path) {
        LAYER_SIZES.lock().expect("layer sizes lock").remove(dir);
    }
}

/// The bytes `app-<id>.log` and its rotated predecessors take.
fn log_files_bytes(dir: &Path, name: &str) -> io::Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut bytes = 0;
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        // `app-1.log` and `app-1.log.1`, never `app-12.log`.
        let ours = file_name
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
        if ours {
            bytes += entry.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploys_image_is_found_under_the_names_its_pull_or_build_gave_it() {
        let pulled = ImageReference::parse(
            "127.0.0.1:5000/team/web:1.0@sha256:2d9ed29cde5234cb84481d3340712ae1d95fd00787df4ab71797847f2b300766",
        )
        .unwrap();
        let names: Vec<String> = storage_names(&pulled).collect();
        assert_eq!(
            names,
            [
                "127.0.0.1:5000/team/web@sha256:2d9ed29cde5234cb84481d3340712ae1d95fd00787df4ab71797847f2b300766",
                "127.0.0.1:5000/team/web:1.0",
            ]
        );
        let docker_hub = ImageReference::parse("nginx").unwrap();
        assert_eq!(
            storage_names(&docker_hub).collect::<Vec<_>>(),
            Vec::<String>::new()
        );
        let built = ImageReference::parse("localhost/berth/app-3:op-41").unwrap();
        assert_eq!(
            storage_names(&built).collect::<Vec<_>>(),
            ["localhost/berth/app-3:op-41"]
        );
    }

    #[test]
    fn only_what_deploys_pull_or_build_is_theirs_to_prune() {
        assert!(put_there_by_a_deploy(
            "ghcr.io/acme/web@sha256:2d9ed29cde5234cb84481d3340712ae1d95fd00787df4ab71797847f2b300766"
        ));
        assert!(put_there_by_a_deploy("localhost/berth/app-3:op-41"));
        // A build's base by tag is its cache; a look-alike is not a build of Berth's.
        assert!(!put_there_by_a_deploy("docker.io/library/alpine:3.20"));
        assert!(!put_there_by_a_deploy("localhost/berth/app-x:op-1"));
        assert!(!put_there_by_a_deploy("localhost/other/app-3:op-41"));
    }

    #[test]
    fn log_files_are_the_apps_own_and_its_rotated_one() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [
            ("app-1.log", 10_000),
            ("app-1.log.1", 20_000),
            ("app-12.log", 40_000),
        ] {
            fs::write(dir.path().join(name), vec![b'x'; size]).unwrap();
        }
        let ours = log_files_bytes(dir.path(), "app-1.log").unwrap();
        assert!((30_000..40_000 + 8192).contains(&ours), "{ours}");
        assert_eq!(
            log_files_bytes(&dir.path().join("none"), "app-1.log").unwrap(),
            0
        );
    }
}
