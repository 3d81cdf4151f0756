//! The four manifest formats a registry serves today, and what Berth reads from them:
//! the platforms an image is built for and how much it weighs.

use domain::Digest;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Sent as `Accept` on every manifest request. Without it, registries fall back to the
/// legacy schema 1 format or refuse (`MANIFEST_UNKNOWN` for an index-only tag).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The platform Berth runs images on.
pub const TARGET_OS: &str = "linux";
pub const TARGET_ARCHITECTURE: &str = "amd64";

/// Registries cap manifests at 4 MiB (distribution's default); anything bigger is not one.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An OCI image index or Docker manifest list: one manifest per platform.
    Index,
    /// An OCI or Docker v2 image manifest: one config and its layers.
    Image,
    /// Anything else (schema 1, artifacts): resolvable, but not read further.
    Other,
}

pub fn kind_of(media_type: &str) -> ManifestKind {
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => ManifestKind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => ManifestKind::Image,
        _ => ManifestKind::Other,
    }
}

/// The media type of a manifest: the `Content-Type` the registry sent (without parameters),
/// or, when that is missing or generic, the `mediaType` field of the document, or — for OCI
/// documents that omit it — what its shape says it is.
pub fn media_type(content_type: Option<&str>, body: &[u8]) -> String {
    let header = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .filter(|value| !value.is_empty() && value != "application/json" && value != "text/plain");
    if let Some(header) = header {
        return header;
    }
    #[derive(Deserialize)]
    struct Shape {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Shape>(body) {
        Ok(Shape {
            media_type: Some(media_type),
            ..
        }) => media_type,
        Ok(Shape {
            manifests: Some(_), ..
        }) => OCI_INDEX.to_owned(),
        Ok(Shape {
            layers: Some(_), ..
        }) => OCI_MANIFEST.to_owned(),
        _ => content_type.unwrap_or_default().to_owned(),
    }
}

pub fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::sha256(&Sha256::digest(bytes).into())
}

/// A digest a registry's JSON names (an index entry, an image's config), which Berth puts
/// into request URLs: checked like any other input from outside.
pub fn descriptor_digest(digest: &str, what: &str) -> Result<Digest, String> {
    sha256_digest_text(digest).ok_or_else(|| {
        format!(
            "{what} names an invalid digest (Berth accepts sha256: and 64 lower-case hex digits)"
        )
    })
}

/// A digest a registry sent, accepted only as `sha256:` and 64 lower-case hex digits: it goes
/// into URL paths, so nothing else (`../`, `%2f`, another algorithm) is let through. The
/// registry's text is not quoted back.
pub fn sha256_digest_text(text: &str) -> Option<Digest> {
    let hex = text.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Digest::parse(text).ok()
    } else {
        None
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm64/v8`: the notation of `docker build --platform`.
    pub fn notation(&self) -> String {
        match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(variant) => format!("{}/{}/{variant}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// BuildKit lists provenance and SBOM attestations as `unknown/unknown` entries.
    fn is_real(&self) -> bool {
        !self.os.is_empty() && self.os != "unknown" && !self.architecture.is_empty()
    }

    fn is_target(&self) -> bool {
        self.os == TARGET_OS && self.architecture == TARGET_ARCHITECTURE
    }
}

#[derive(Debug, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Index {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("the image index is not valid: {e}"))
    }

    /// The platforms in the index, in order, without attestation entries or duplicates.
    pub fn platforms(&self) -> Vec<String> {
        let mut platforms: Vec<String> = Vec::new();
        for platform in self.manifests.iter().filter_map(|m| m.platform.as_ref()) {
            let notation = platform.notation();
            if platform.is_real() && !platforms.contains(&notation) {
                platforms.push(notation);
            }
        }
        platforms
    }

    /// The manifest for linux/amd64 (preferring one without a variant, then `v1`).
    pub fn target(&self) -> Option<&Descriptor> {
        let candidates = self
            .manifests
            .iter()
            .filter(|m| m.platform.as_ref().is_some_and(Platform::is_target));
        candidates.min_by_key(
            |m| match m.platform.as_ref().and_then(|p| p.variant.as_deref()) {
                None | Some("") => 0,
                Some("v1") => 1,
                Some(_) => 2,
            },
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

impl ImageManifest {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("the image manifest is not valid: {e}"))
    }

    /// What a pull downloads: the config and the (compressed) layers.
    pub fn size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// The fields of an image config blob that say which platform it runs on.
#[derive(Debug, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl ImageConfig {
    pub fn platform(&self) -> Option<String> {
        let platform = Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        };
        platform.is_real().then(|| platform.notation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_registries_are_sha256_hex_only() {
        let good = format!("sha256:{}", "0a".repeat(32));
        assert!(descriptor_digest(&good, "the index").is_ok());
        for bad in [
            "sha256:../../../v2/other/manifests/latest".to_owned(),
            format!("sha256:{}/..", "0a".repeat(32)),
            format!("sha256:{}", "0A".repeat(32)),
            format!("sha512:{}", "0a".repeat(64)),
            format!("sha256:{}%2f", "0a".repeat(31)),
            format!("sha256:{}", "0a".repeat(31)),
            format!(" sha256:{}", "0a".repeat(32)),
        ] {
            assert!(descriptor_digest(&bad, "the index").is_err(), "{bad}");
            assert!(sha256_digest_text(&bad).is_none(), "{bad}");
        }
    }

    const BUILDX_INDEX: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aaa", "size": 100,
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:bbb", "size": 200,
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:ccc", "size": 300,
         "platform": {"architecture": "unknown", "os": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
      ]
    }"#;

    #[test]
    fn an_index_lists_its_platforms_without_attestations() {
        let index = Index::parse(BUILDX_INDEX.as_bytes()).unwrap();
        assert_eq!(index.platforms(), ["linux/arm64/v8", "linux/amd64"]);
        assert_eq!(index.target().unwrap().digest, "sha256:bbb");
    }

    #[test]
    fn an_index_without_linux_amd64_has_no_target() {
        let index = Index::parse(
            br#"{"manifests":[{"digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"arm64"}}]}"#,
        )
        .unwrap();
        assert!(index.target().is_none());
    }

    #[test]
    fn an_image_weighs_its_config_and_layers() {
        let manifest = ImageManifest::parse(
            br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":10},
                 "layers":[{"digest":"sha256:l1","size":1000},{"digest":"sha256:l2","size":24}]}"#,
        )
        .unwrap();
        assert_eq!(manifest.size(), 1034);
    }

    #[test]
    fn media_type_comes_from_the_header_then_the_document() {
        assert_eq!(
            media_type(
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                b"{}"
            ),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type(Some("application/json"), BUILDX_INDEX.as_bytes()),
            OCI_INDEX
        );
        assert_eq!(media_type(None, br#"{"manifests":[]}"#), OCI_INDEX);
        assert_eq!(
            media_type(None, br#"{"config":{},"layers":[]}"#),
            OCI_MANIFEST
        );
    }

    #[test]
    fn digests_are_sha256_of_the_exact_bytes() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn config_platforms() {
        let config: ImageConfig =
            serde_json::from_str(r#"{"os":"linux","architecture":"arm","variant":"v7"}"#).unwrap();
        assert_eq!(config.platform().as_deref(), Some("linux/arm/v7"));
    }
}
