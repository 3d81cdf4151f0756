//! Test images: busybox-static in an OCI layout built with `umoci`, pushed with `skopeo`.
//!
//! The image serves HTTP as a platform runs it: on `0.0.0.0:$PORT` (8080 without `PORT`),
//! with busybox's `httpd` serving `/www`, which holds an `index.html`. Before serving, the
//! command writes `$GREETING` to `/www/env.txt`, so a test can read back the environment
//! its release was given. Built once per registry (a few hundred milliseconds) and pushed
//! under any name; its digest differs between registries, since umoci stamps the time.
//!
//! Variants are further tags of the same layout: one whose `index.html` says a given body
//! (to tell releases apart), and one whose command fails at once.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::{
    fs,
    io::Write,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};
use tokio::process::Command;

const BUSYBOX: &str = "/bin/busybox";
/// Tags inside the local OCI layout.
const BASE: &str = "base";
const ARM64: &str = "arm64";
const MULTI: &str = "multi";
const BROKEN: &str = "broken";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

static NEXT_AUTH_FILE: AtomicU64 = AtomicU64::new(1);

/// Runs through busybox's own `sh` (`/bin/busybox sh` works without a `/bin/sh` link).
/// `exec` makes httpd the process that signals reach; the first line shows in runtime logs.
const SERVE: &str = "echo \"serving on port ${PORT:-8080}\"; \
                     echo \"$GREETING\" > /www/env.txt; \
                     exec /bin/busybox httpd -f -p \"0.0.0.0:${PORT:-8080}\" -h /www";
/// A release that dies before it could ever answer a health check.
const FAIL: &str = "echo \"this release fails at once\" >&2; exit 3";

/// The digests of an image pushed as an OCI index of linux/amd64 and linux/arm64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiPlatformImage {
    pub index_digest: String,
    pub linux_amd64_digest: String,
    pub linux_arm64_digest: String,
}

pub(crate) struct ImageLayout {
    dir: PathBuf,
    layout: PathBuf,
    built: bool,
    multi: Option<(String, String)>,
    broken: bool,
    variants: u64,
}

impl ImageLayout {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            layout: dir.join("oci-layout"),
            built: false,
            multi: None,
            broken: false,
            variants: 0,
        }
    }

    pub async fn push(&mut self, host: &str, repo: &str, tag: &str, creds: (&str, &str)) -> String {
        self.build_base().await;
        self.copy(BASE, false, host, repo, tag, creds).await
    }

    /// A copy of the base image whose `/` answers `body`.
    pub async fn push_serving(
        &mut self,
        host: &str,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
        body: &str,
    ) -> String {
        self.build_base().await;
        self.variants += 1;
        let variant = format!("serving-{}", self.variants);
        let index = self.dir.join(format!("image-files/{variant}/index.html"));
        fs::create_dir_all(index.parent().expect("a parent")).expect("create the variant's dir");
        fs::write(&index, body).expect("write the variant's index.html");
        let base = format!("{}:{BASE}", self.layout.display());
        let image = format!("{}:{variant}", self.layout.display());
        umoci(&["tag", "--image", &base, &variant], &[]).await;
        let insert = [&["insert"][..], rootless(), &["--image", &image]].concat();
        umoci(&insert, &[index.as_os_str(), "/www/index.html".as_ref()]).await;
        self.copy(&variant, false, host, repo, tag, creds).await
    }

    /// A copy of the base image whose `/` answers `body`, with `padding` bytes of random
    /// data in a layer of its own (`/padding.bin`), so that every call pushes an image no
    /// storage has seen: for benchmarks that must pull cold.
    pub async fn push_padded(
        &mut self,
        host: &str,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
        body: &str,
        padding: usize,
    ) -> String {
        self.build_base().await;
        self.variants += 1;
        let variant = format!("padded-{}", self.variants);
        let file = self.dir.join(format!("image-files/{variant}/padding.bin"));
        fs::create_dir_all(file.parent().expect("a parent")).expect("create the variant's dir");
        let mut bytes = vec![0u8; padding];
        fill_random(&mut bytes);
        fs::write(&file, &bytes).expect("write the padding");
        drop(bytes);
        let base = format!("{}:{BASE}", self.layout.display());
        let image = format!("{}:{variant}", self.layout.display());
        umoci(&["tag", "--image", &base, &variant], &[]).await;
        let insert = [&["insert"][..], rootless(), &["--image", &image]].concat();
        umoci(&insert, &[file.as_os_str(), "/padding.bin".as_ref()]).await;
        let _ = fs::remove_file(&file);
        let index = file.with_file_name("index.html");
        fs::write(&index, body).expect("write the variant's index.html");
        umoci(&insert, &[index.as_os_str(), "/www/index.html".as_ref()]).await;
        self.copy(&variant, false, host, repo, tag, creds).await
    }

    /// A copy of the base image that waits `seconds` before it serves (so that its deploy
    /// is still in its health check for that long).
    pub async fn push_slow(
        &mut self,
        host: &str,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
        seconds: u32,
    ) -> String {
        self.build_base().await;
        self.variants += 1;
        let variant = format!("slow-{}", self.variants);
        let base = format!("{}:{BASE}", self.layout.display());
        let wait =
            format!("echo \"starting in {seconds} s\"; /bin/busybox sleep {seconds}; {SERVE}");
        let mut config = vec!["config", "--image", &base, "--tag", &variant];
        for part in ["/bin/busybox", "sh", "-c", &wait] {
            config.extend(["--config.cmd", part]);
        }
        umoci(&config, &[]).await;
        self.copy(&variant, false, host, repo, tag, creds).await
    }

    /// A copy of the base image whose command exits with status 3 at once.
    pub async fn push_broken(
        &mut self,
        host: &str,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
    ) -> String {
        self.build_base().await;
        if !self.broken {
            let base = format!("{}:{BASE}", self.layout.display());
            let mut config = vec!["config", "--image", &base, "--tag", BROKEN];
            for part in ["/bin/busybox", "sh", "-c", FAIL] {
                config.extend(["--config.cmd", part]);
            }
            umoci(&config, &[]).await;
            self.broken = true;
        }
        self.copy(BROKEN, false, host, repo, tag, creds).await
    }

    pub async fn push_multi_platform(
        &mut self,
        host: &str,
        repo: &str,
        tag: &str,
        creds: (&str, &str),
    ) -> MultiPlatformImage {
        let (amd64, arm64) = self.build_index().await;
        let index_digest = self.copy(MULTI, true, host, repo, tag, creds).await;
        MultiPlatformImage {
            index_digest,
            linux_amd64_digest: amd64,
            linux_arm64_digest: arm64,
        }
    }

    async fn build_base(&mut self) {
        if self.built {
            return;
        }
        if !Path::new(BUSYBOX).exists() {
            panic!("testregistry: {BUSYBOX} is missing; install the Debian package busybox-static");
        }
        let image = format!("{}:{BASE}", self.layout.display());
        let www = self.dir.join("image-files/www");
        fs::create_dir_all(&www).expect("create the image's /www");
        fs::write(www.join("index.html"), "Hello from Berth's test image\n")
            .expect("write index.html");

        umoci(&["init", "--layout"], &[self.layout.as_os_str()]).await;
        umoci(&["new", "--image", &image], &[]).await;
        let insert = [&["insert"][..], rootless(), &["--image", &image]].concat();
        umoci(&insert, &[BUSYBOX.as_ref(), "/bin/busybox".as_ref()]).await;
        umoci(&insert, &[www.as_os_str(), "/www".as_ref()]).await;
        let mut config = vec!["config", "--image", &image, "--author", "Berth tests"];
        for part in ["/bin/busybox", "sh", "-c", SERVE] {
            config.extend(["--config.cmd", part]);
        }
        config.extend(["--config.exposedports", "8080/tcp"]);
        umoci(&config, &[]).await;
        self.built = true;
    }

    /// An OCI index with the base image as linux/amd64 and a copy labelled linux/arm64
    /// (busybox inside stays amd64: the index is for reading, not for running on arm).
    /// umoci cannot write indexes, so this writes the index blob into the layout directly.
    async fn build_index(&mut self) -> (String, String) {
        if let Some(digests) = &self.multi {
            return digests.clone();
        }
        self.build_base().await;
        let base = format!("{}:{BASE}", self.layout.display());
        umoci(
            &[
                "config",
                "--image",
                &base,
                "--tag",
                ARM64,
                "--architecture",
                "arm64",
            ],
            &[],
        )
        .await;

        let index_path = self.layout.join("index.json");
        let mut layout_index: Value =
            serde_json::from_slice(&fs::read(&index_path).expect("read the layout's index.json"))
                .expect("the layout's index.json is JSON");
        let descriptor = |tag: &str| -> Value {
            layout_index["manifests"]
                .as_array()
                .and_then(|manifests| manifests.iter().find(|m| m["annotations"][REF_NAME] == tag))
                .cloned()
                .unwrap_or_else(|| panic!("testregistry: no {tag} in the OCI layout"))
        };
        let platform_entry = |tag: &str, platform: Value| {
            let mut entry = descriptor(tag);
            entry
                .as_object_mut()
                .expect("a descriptor")
                .remove("annotations");
            entry["platform"] = platform;
            entry
        };
        let amd64 = platform_entry(BASE, json!({"os": "linux", "architecture": "amd64"}));
        let arm64 = platform_entry(
            ARM64,
            json!({"os": "linux", "architecture": "arm64", "variant": "v8"}),
        );
        let digests = (
            amd64["digest"].as_str().expect("a digest").to_owned(),
            arm64["digest"].as_str().expect("a digest").to_owned(),
        );
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [amd64, arm64],
        }))
        .expect("serialise the index");
        let hex = hex::encode(Sha256::digest(&index));
        fs::write(self.layout.join("blobs/sha256").join(&hex), &index)
            .expect("write the index blob");
        layout_index["manifests"]
            .as_array_mut()
            .expect("manifests")
            .push(json!({
                "mediaType": OCI_INDEX,
                "digest": format!("sha256:{hex}"),
                "size": index.len(),
                "annotations": {REF_NAME: MULTI},
            }));
        fs::write(&index_path, layout_index.to_string()).expect("write the layout's index.json");
        self.multi = Some(digests.clone());
        digests
    }

    /// `skopeo copy` to the registry; the digest it pushed, as `skopeo inspect` reports it.
    async fn copy(
        &self,
        source_tag: &str,
        all: bool,
        host: &str,
        repo: &str,
        tag: &str,
        (user, password): (&str, &str),
    ) -> String {
        let n = NEXT_AUTH_FILE.fetch_add(1, Ordering::SeqCst);
        let auth_file = self.dir.join(format!("push-auth-{n}.json"));
        let digest_file = self.dir.join(format!("push-digest-{n}"));
        write_auth_file(&auth_file, host, user, password);
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            command.arg("--all");
        }
        command
            .arg("--dest-authfile")
            .arg(&auth_file)
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(format!("oci:{}:{source_tag}", self.layout.display()))
            .arg(format!("docker://{host}/{repo}:{tag}"));
        let output = command.output().await;
        let _ = fs::remove_file(&auth_file);
        let output = output.unwrap_or_else(|e| {
            panic!("testregistry: cannot run skopeo ({e}); install the Debian package skopeo")
        });
        if !output.status.success() {
            panic!(
                "testregistry: pushing {host}/{repo}:{tag} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let digest = fs::read_to_string(&digest_file).expect("skopeo wrote the digest file");
        let _ = fs::remove_file(&digest_file);
        digest.trim().to_owned()
    }
}

/// containers-auth.json, mode 0600 from creation: the password stays out of argv (which
/// every user on the machine can read in /proc) and out of other users' reach.
fn write_auth_file(path: &Path, host: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let contents = json!({"auths": {host: {"auth": auth}}}).to_string();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create the push auth file");
    file.write_all(contents.as_bytes())
        .expect("write the push auth file");
}

async fn umoci(args: &[&str], paths: &[&std::ffi::OsStr]) {
    let output = Command::new("umoci")
        .args(args)
        .args(paths)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("testregistry: cannot run umoci ({e}); install the Debian package umoci")
        });
    if !output.status.success() {
        panic!(
            "testregistry: umoci {args:?} {paths:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn rootless() -> &'static [&'static str] {
    if running_as_root() {
        &[]
    } else {
        &["--rootless"]
    }
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Incompressible bytes (so that the registry and the pull move all of them): SHA-256 in
/// counter mode over a per-process, per-call seed.
fn fill_random(bytes: &mut [u8]) {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}-{}-{:?}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
    );
    for (i, chunk) in bytes.chunks_mut(32).enumerate() {
        let block = Sha256::new()
            .chain_update(seed.as_bytes())
            .chain_update((i as u64).to_le_bytes())
            .finalize();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}
