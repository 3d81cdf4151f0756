//! Container registries and image references, parsed with the grammar of the distribution
//! project's `reference` package (the one Docker, containerd and every registry use).

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Docker Hub's canonical name; `index.docker.io` and `registry-1.docker.io` are aliases.
pub const DOCKER_HUB: &str = "docker.io";

/// A registry's host, with its port when it has one: `ghcr.io`, `127.0.0.1:5000`,
/// `[::1]:5000`. Lower-cased; Docker Hub's aliases are one registry, `docker.io`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistryHost(String);

crate::parsed_string!(RegistryHost);

impl RegistryHost {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Enter the registry's host, e.g. ghcr.io or registry.example.com:5000.",
            ));
        }
        if let Some((scheme, rest)) = value.split_once("://") {
            let host = rest.split('/').next().unwrap_or(rest);
            return Err(ParseError::new(format!(
                "Leave out \"{scheme}://\": enter just the host, e.g. {host}."
            )));
        }
        if let Some((host, _)) = value.split_once('/') {
            return Err(ParseError::new(format!(
                "A registry is a host without a path: enter {host}; the path belongs to the image."
            )));
        }
        let lower = value.to_ascii_lowercase();
        if !is_domain(&lower) {
            return Err(ParseError::new(format!(
                "\"{value}\" is not a host name; use letters, digits, dots and hyphens, with an optional :port."
            )));
        }
        Ok(Self(canonical_host(lower)))
    }

    pub fn is_docker_hub(&self) -> bool {
        self.0 == DOCKER_HUB
    }

    /// The host the registry API answers on (Docker Hub's is not `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            "registry-1.docker.io"
        } else {
            &self.0
        }
    }
}

fn canonical_host(lower: String) -> String {
    match lower.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => lower,
    }
}

/// `host [":" port]` where host is a domain name, an IPv4 address or `[IPv6]`.
fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.is_empty() {
        return s.starts_with('[');
    }
    host.split('.').all(|component| {
        !component.is_empty()
            && component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !component.starts_with('-')
            && !component.ends_with('-')
    })
}

/// An image reference, normalised as Docker does: `nginx` is `docker.io/library/nginx`,
/// `org/app:1.2` is `docker.io/org/app:1.2`, `ghcr.io/org/app@sha256:…` keeps its digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageReference {
    registry: RegistryHost,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

const MAX_NAME_LEN: usize = 255;

impl ImageReference {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(ParseError::new(
                "Enter an image, e.g. registry.example.com/team/app:1.4 or nginx:1.27.",
            ));
        }
        if value.contains("://") {
            return Err(ParseError::new(
                "Leave out the scheme: an image reference looks like ghcr.io/org/app:tag.",
            ));
        }
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (value, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(parse_tag(&rest[at + 1..])?))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ParseError::new(
                "The image needs a name before the tag or digest.",
            ));
        }
        let (registry, repository) = split_registry(name)?;
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ParseError::new(format!(
                "Repository names are lower-case: use {}.",
                repository.to_ascii_lowercase()
            )));
        }
        for component in repository.split('/') {
            if !is_path_component(component) {
                return Err(ParseError::new(format!(
                    "\"{component}\" is not a valid repository name part: use lower-case letters and digits, separated by '.', '_', '__' or '-'."
                )));
            }
        }
        if registry.as_str().len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ParseError::new(
                "The image name is longer than 255 characters.",
            ));
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    pub fn registry(&self) -> &RegistryHost {
        &self.registry
    }

    /// The repository within the registry: `library/nginx`, `org/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when pinned, else the tag (`latest` when
    /// neither is given, as Docker does).
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_ref()
            .map(Digest::as_str)
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same image pinned to `digest`, keeping the tag for people to read: what a
    /// release runs, so that a restart runs exactly what was verified.
    pub fn pinned(&self, digest: &Digest) -> Self {
        Self {
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for ImageReference {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ImageReference> for String {
    fn from(value: ImageReference) -> Self {
        value.to_string()
    }
}

/// Docker's rule: the first component names a registry when it has a '.' or ':', is
/// `localhost`, or has upper-case letters; otherwise the image is on Docker Hub.
fn split_registry(name: &str) -> Result<(RegistryHost, String), ParseError> {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let registry = RegistryHost::parse(first)?;
            let repository = if registry.is_docker_hub() && !rest.contains('/') {
                format!("library/{rest}")
            } else {
                rest.to_owned()
            };
            Ok((registry, repository))
        }
        Some(_) => Ok((RegistryHost(DOCKER_HUB.into()), name.to_owned())),
        None => Ok((RegistryHost(DOCKER_HUB.into()), format!("library/{name}"))),
    }
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[_.]|__|[-]+`.
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let valid = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b.is_ascii_uppercase()
}

/// `[\w][\w.-]{0,127}`
fn parse_tag(tag: &str) -> Result<String, ParseError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(tag.to_owned())
    } else {
        Err(ParseError::new(format!(
            "\"{tag}\" is not a valid tag: use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
        )))
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// A content digest, `algorithm:hex` (`sha256:` and 64 hex digits for every image Berth
/// runs): the name of exactly one manifest, which a tag is not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

crate::parsed_string!(Digest);

impl Digest {
    /// `algorithm:hex`; sha256 and sha512 digests must have their exact lengths.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let digest = input.trim();
        let invalid = || {
            ParseError::new(format!(
                "\"{digest}\" is not a digest; a digest looks like sha256: followed by 64 hex digits."
            ))
        };
        let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm.split(['+', '.', '-', '_']).all(|c| {
                c.starts_with(|ch: char| ch.is_ascii_alphabetic())
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric())
            });
        let expected_len = match algorithm {
            "sha256" => Some(64),
            "sha512" => Some(128),
            _ => None,
        };
        let hex_ok = hex.len() >= 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            && expected_len.is_none_or(|n| hex.len() == n);
        if algorithm_ok && hex_ok {
            Ok(Self(digest.to_owned()))
        } else {
            Err(invalid())
        }
    }

    /// The digest of content Berth hashed itself with SHA-256.
    pub fn sha256(hash: &[u8; 32]) -> Self {
        let mut text = String::with_capacity(71);
        text.push_str("sha256:");
        for byte in hash {
            text.push_str(&format!("{byte:02x}"));
        }
        Self(text)
    }

    /// `sha256:0123456789ab`: enough to tell digests apart in a table.
    pub fn short(&self) -> &str {
        let (algorithm, hex) = self.0.split_once(':').unwrap_or(("", &self.0));
        &self.0[..algorithm.len() + 1 + hex.len().min(12)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn registry_hosts_are_normalised() {
        assert_eq!(RegistryHost::parse("GHCR.io").unwrap().as_str(), "ghcr.io");
        assert_eq!(
            RegistryHost::parse("index.docker.io").unwrap().as_str(),
            "docker.io"
        );
        assert_eq!(
            RegistryHost::parse("registry-1.docker.io")
                .unwrap()
                .as_str(),
            "docker.io"
        );
        assert_eq!(
            RegistryHost::parse("127.0.0.1:5000").unwrap().as_str(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            RegistryHost::parse("[::1]:5000").unwrap().as_str(),
            "[::1]:5000"
        );
        assert_eq!(
            RegistryHost::parse("docker.io").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn registry_hosts_with_a_scheme_or_path_say_what_to_type() {
        let e = RegistryHost::parse("https://ghcr.io/org").unwrap_err();
        assert!(e.message.contains("ghcr.io"), "{}", e.message);
        let e = RegistryHost::parse("ghcr.io/org").unwrap_err();
        assert!(e.message.contains("enter ghcr.io"), "{}", e.message);
        for bad in [
            "",
            "a b",
            "host:port",
            "host:123456",
            "-bad.com",
            "bad..com",
        ] {
            assert!(RegistryHost::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn docker_hub_short_names_are_normalised() {
        let cases = [
            ("nginx", "docker.io/library/nginx"),
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            ("org/app", "docker.io/org/app"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("index.docker.io/org/app:v1", "docker.io/org/app:v1"),
            ("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2"),
            ("localhost/app", "localhost/app"),
            (
                "127.0.0.1:5000/team/app:latest",
                "127.0.0.1:5000/team/app:latest",
            ),
            (
                "registry.example.com:5000/a/b/c",
                "registry.example.com:5000/a/b/c",
            ),
        ];
        for (input, normalised) in cases {
            assert_eq!(
                ImageReference::parse(input).unwrap().to_string(),
                normalised,
                "{input}"
            );
        }
    }

    #[test]
    fn tags_digests_and_ports_are_told_apart() {
        let r = ImageReference::parse(&format!("127.0.0.1:5000/app:1.0@{DIGEST}")).unwrap();
        assert_eq!(r.registry().as_str(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.digest().map(Digest::as_str), Some(DIGEST));
        assert_eq!(r.manifest_reference(), DIGEST);
        let r = ImageReference::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), "latest");
    }

    #[test]
    fn digests_are_checked_and_shortened() {
        let digest = Digest::parse(DIGEST).unwrap();
        assert_eq!(digest.short(), "sha256:0123456789ab");
        assert_eq!(
            Digest::sha256(&[0xab; 32]).as_str(),
            format!("sha256:{}", "ab".repeat(32))
        );
        for bad in ["sha256:abc", "md5", "sha256:XYZ", ""] {
            assert!(Digest::parse(bad).is_err(), "{bad:?}");
        }
        let pinned = ImageReference::parse("ghcr.io/org/app:1.0")
            .unwrap()
            .pinned(&digest);
        assert_eq!(pinned.to_string(), format!("ghcr.io/org/app:1.0@{DIGEST}"));
    }

    #[test]
    fn malformed_references_are_rejected_with_the_reason() {
        let cases = [
            ("", "Enter an image"),
            ("https://ghcr.io/org/app", "scheme"),
            ("ghcr.io/Org/app", "lower-case"),
            ("app:", "not a valid tag"),
            ("app:-x", "not a valid tag"),
            ("app@sha256:abc", "not a digest"),
            ("ghcr.io/org/-app", "not a valid repository name part"),
            ("ghcr.io/org//app", "not a valid repository name part"),
            (":tag", "needs a name"),
        ];
        for (input, needle) in cases {
            let e = ImageReference::parse(input).unwrap_err();
            assert!(e.message.contains(needle), "{input:?}: {}", e.message);
        }
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}"
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in any::<String>()) {
            let _ = ImageReference::parse(&input);
            let _ = RegistryHost::parse(&input);
        }

        #[test]
        fn printing_and_parsing_again_gives_the_same_reference(
            host in prop::option::of("[a-z][a-z0-9]{0,10}\\.(io|com|dev)(:[0-9]{2,5})?"),
            path in prop::collection::vec(component(), 1..4),
            tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in prop::option::of("[0-9a-f]{64}"),
        ) {
            // Without a host, a first component with a '.' would name a registry (Docker's rule).
            prop_assume!(host.is_some() || !path[0].contains('.'));
            let mut input = host.map(|h| format!("{h}/")).unwrap_or_default();
            input.push_str(&path.join("/"));
            if let Some(tag) = &tag { input.push(':'); input.push_str(tag); }
            if let Some(digest) = &digest { input.push_str("@sha256:"); input.push_str(digest); }
            let parsed = ImageReference::parse(&input).unwrap();
            prop_assert_eq!(ImageReference::parse(&parsed.to_string()).unwrap(), parsed.clone());
            prop_assert_eq!(parsed.tag(), tag.as_deref());
        }

        #[test]
        fn accepted_hosts_are_lower_case_without_scheme_or_path(input in "[A-Za-z0-9.:/-]{1,30}") {
            if let Ok(host) = RegistryHost::parse(&input) {
                prop_assert!(!host.as_str().contains('/'));
                prop_assert_eq!(host.as_str().to_ascii_lowercase(), host.as_str());
            }
        }
    }
}
