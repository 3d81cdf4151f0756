//! Dockerfile deploys on the local engine: `buildah build` of the app's checked-out source
//! into `localhost/berth/app-<app>:op-<operation>` in the engine's storage, which
//! [`Platform::deploy_built`](crate::engine::Platform::deploy_built) then starts like any
//! pulled image.
//!
//! What reaches buildah, and how:
//! - the base images' credentials: one auth file for every registry of the build (buildah
//!   takes one `--authfile`), in a private directory removed after the build;
//! - insecure registries: a registries.conf of the build's own marking each of them (and
//!   only them) `insecure`, next to the auth file;
//! - build args: through buildah's environment (see `Buildah::build_command`), under
//!   names checked here so that none of them steers buildah itself.
//!
//! What a build can reach: its `RUN` steps run under runc with the confinement and the
//! network of a release (see `confinement` and `network`: no way to the host's loopback),
//! in the storage of the app's team (no other team's images or layer cache) with the app's
//! own cache mounts. Before buildah runs, the Dockerfile's `RUN` options are checked
//! (`dockerfile::refused_run_options`: no bind mounts, no `from=`, no host network) and the
//! source may hold no symbolic link that points outside it.

use super::{
    auth_file::BuildFiles,
    buildah::{BuildRequest, BuildahError},
    cgroup::KillOnDrop,
    redact::Redactor,
    LocalEngine, BUILDAH_MISSING,
};
use crate::{
    engine::{built_image_name, BuildSpec, BuiltImage, OperationLog, PlatformError, Step},
    registry::Secret,
};
use base64::Engine as _;
use domain::{Digest, ImageReference, RegistryHost};
use std::{
    collections::HashSet,
    fs,
    path::{Component, Path, PathBuf},
    time::Duration,
};

impl LocalEngine {
    pub(super) async fn build_image(
        &self,
        spec: &BuildSpec,
        log: &dyn OperationLog,
    ) -> Result<BuiltImage, PlatformError> {
        log.step(Step::Build);
        let source = Source::resolve(spec)?;
        source.refuse_unsafe_contents(spec)?;
        if let Some(problem) = spec
            .build_args
            .iter()
            .find_map(|(name, _)| build_arg_problem(name))
        {
            return Err(PlatformError::Build(problem));
        }
        let mut hosts = HashSet::new();
        if let Some((host, _)) = spec
            .registry_credentials
            .iter()
            .find(|(host, _)| !hosts.insert(host.clone()))
        {
            return Err(PlatformError::Build(format!(
                "two credentials were given for {host}; a build uses one per registry"
            )));
        }
        let tag = built_image_name(spec.app.id, spec.operation_id);
        let image = ImageReference::parse(&tag)
            .map_err(|e| PlatformError::Other(format!("naming the built image: {e}")))?;

        let files = BuildFiles::write(&self.settings.auth_dir(), &spec.registry_credentials)
            .and_then(|files| {
                let conf = files.add(
                    "registries.conf",
                    &registries_conf(&self.settings.insecure_registries),
                )?;
                Ok((files, conf))
            });
        let (files, registries_conf) = files.map_err(|e| {
            PlatformError::Other(format!("cannot write the build's auth file: {e}"))
        })?;
        let redactor = redactor_for(spec, &files);

        log.line(&format!(
            "building {tag} from {} (context {}){}",
            spec.dockerfile,
            spec.context,
            credentials_note(spec)
        ));
        let iid_file = files.path_of("image-id");
        let network = self
            .network(
                &format!(
                    "berth-build-{}-{}",
                    spec.operation_id,
                    super::short_random()
                ),
                false,
            )
            .await
            .map_err(|e| PlatformError::Build(format!("the build's network: {e}")))?;
        let options = self.confinement.options(
            super::confinement::Confined::Build,
            spec.app.id,
            &format!("build-op-{}", spec.operation_id),
            network.as_ref().map(|n| n.path()),
        );
        for what in &options.not_enforced {
            log.line(&format!("this server cannot enforce {what}"));
        }
        let mut confinement = options.args;
        confinement.extend(["--runtime".into(), self.confinement.runtime.clone().into()]);
        let request = BuildRequest {
            context: &source.context,
            dockerfile: &source.dockerfile,
            tag: &tag,
            auth_file: files.auth_file(),
            registries_conf: Some(&registries_conf),
            iid_file: &iid_file,
            confinement: &confinement,
            build_args: &spec.build_args,
        };
        let buildah = self.buildah(spec.app.team_id, spec.app.id);
        // Step images are unnamed until the build tags its last one: no prune meanwhile.
        let storage = self.storage_use.share(spec.app.team_id).await;
        // A build cancelled half-way (its operation dropped) takes its RUN step with it.
        let mut running_step = KillOnDrop(options.cgroup.clone());
        let built = buildah
            .build(&request, &redactor, &mut |line| log.line(line))
            .await;
        running_step.0 = None;
        if let Some(cgroup) = &options.cgroup {
            // buildah is done; nothing of a RUN step outlives the build.
            cgroup.kill_and_remove(Duration::from_secs(5)).await;
        }
        if let Some(network) = network {
            network.stop().await;
        }
        let image_id = fs::read_to_string(&iid_file);
        // The credentials are not needed past this point, whatever happened.
        drop(files);
        built.map_err(|e| match e {
            BuildahError::NotInstalled(_) => PlatformError::Unavailable(BUILDAH_MISSING.into()),
            e => PlatformError::Build(explain_build_failure(
                &e.summary(),
                &spec.registry_credentials,
            )),
        })?;
        let image_id = image_id
            .map_err(|e| PlatformError::Build(format!("buildah wrote no image id: {e}")))?;
        let image_id = image_id.trim().trim_start_matches("sha256:").to_owned();

        let digest = buildah.image_digest(&image_id).await.map_err(|e| {
            PlatformError::Build(format!(
                "reading the built image's digest failed: {}",
                e.summary()
            ))
        })?;
        let digest = Digest::parse(&digest).map_err(|_| {
            PlatformError::Build(format!(
                "buildah reported no digest for the built image ({digest:?})"
            ))
        })?;
        // Tagged now, and kept by its running operation until a container holds it.
        drop(storage);
        log.line(&format!("built {tag} ({digest})"));
        Ok(BuiltImage {
            image,
            digest,
            image_id,
        })
    }
}

/// The build's Dockerfile and context as absolute paths inside the source directory.
struct Source {
    dockerfile: PathBuf,
    context: PathBuf,
}

impl Source {
    /// Refuses a Dockerfile whose `RUN` options would reach outside the build, and a source
    /// holding a symbolic link that points outside it (buildah 1.28 follows links in the
    /// context onto the host).
    fn refuse_unsafe_contents(&self, spec: &BuildSpec) -> Result<(), PlatformError> {
        let text = fs::read_to_string(&self.dockerfile).map_err(|e| {
            PlatformError::Build(format!(
                "the Dockerfile {} cannot be read: {e}",
                spec.dockerfile
            ))
        })?;
        // A Dockerfile that does not parse is buildah's to report.
        if let Some(refused) = dockerfile::refused_run_options(&text)
            .ok()
            .and_then(|refused| refused.into_iter().next())
        {
            return Err(PlatformError::Build(format!(
                "{}: {refused}",
                spec.dockerfile
            )));
        }
        let root = fs::canonicalize(&spec.source_dir).map_err(|e| {
            PlatformError::Build(format!("the source directory cannot be read: {e}"))
        })?;
        if let Some(link) = escaping_link(&root, &root)? {
            return Err(PlatformError::Build(format!(
                "the source holds {}, a symbolic link that points outside it (or nowhere); builds may not \
                 link outside their source: remove the link from the repository",
                link.strip_prefix(&root).unwrap_or(&link).display()
            )));
        }
        Ok(())
    }

    fn resolve(spec: &BuildSpec) -> Result<Source, PlatformError> {
        let root = fs::canonicalize(&spec.source_dir).map_err(|e| {
            PlatformError::Build(format!(
                "the source directory {} cannot be read: {e}",
                spec.source_dir.display()
            ))
        })?;
        let dockerfile = inside(&root, &spec.dockerfile, "Dockerfile", "the Dockerfile")?;
        if !dockerfile.is_file() {
            return Err(PlatformError::Build(format!(
                "the Dockerfile {} is not a file",
                spec.dockerfile
            )));
        }
        // buildah runs a Containerfile named `*.in` through cpp, whose #include would read
        // any file on this server into the build.
        if dockerfile
            .extension()
            .is_some_and(|extension| extension == "in")
        {
            return Err(PlatformError::Build(format!(
                "the Dockerfile {} ends in .in, which buildah would preprocess with cpp; \
                 rename it",
                spec.dockerfile
            )));
        }
        let context = inside(&root, &spec.context, ".", "the build context")?;
        if !context.is_dir() {
            return Err(PlatformError::Build(format!(
                "the build context {} is not a directory",
                spec.context
            )));
        }
        Ok(Source {
            dockerfile,
            context,
        })
    }
}

/// The first symbolic link under `dir` whose target is outside `root` (or dangles: where it
/// points might be created outside later).
fn escaping_link(root: &Path, dir: &Path) -> Result<Option<PathBuf>, PlatformError> {
    let entries = fs::read_dir(dir)
        .map_err(|e| PlatformError::Build(format!("reading {} failed: {e}", dir.display())))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            let inside = fs::canonicalize(&path).is_ok_and(|target| target.starts_with(root));
            if !inside {
                return Ok(Some(path));
            }
        } else if kind.is_dir() {
            if let Some(link) = escaping_link(root, &path)? {
                return Ok(Some(link));
            }
        }
    }
    Ok(None)
}

/// `relative` (or `default` when empty) inside `root`, following symbolic links: a source
/// may not name, or link to, files elsewhere on the server.
fn inside(
    root: &Path,
    relative: &str,
    default: &str,
    what: &str,
) -> Result<PathBuf, PlatformError> {
    let relative = if relative.trim().is_empty() {
        default
    } else {
        relative
    };
    let path = Path::new(relative);
    if path.is_absolute()
        || path
            .components()
            .any(|component| matches!(component, Component::ParentDir))
    {
        return Err(PlatformError::Build(format!(
            "{what} ({relative}) must be a path inside the source, without \"..\""
        )));
    }
    let resolved = fs::canonicalize(root.join(path)).map_err(|e| {
        PlatformError::Build(format!("{what} ({relative}) is not in the source: {e}"))
    })?;
    if !resolved.starts_with(root) {
        return Err(PlatformError::Build(format!(
            "{what} ({relative}) links to a place outside the source"
        )));
    }
    Ok(resolved)
}

/// Why a build arg cannot be passed, if it cannot. Its value reaches buildah as an
/// environment variable of the same name, so names that configure buildah, c/image, the
/// dynamic loader, libc or the Go runtime are refused: `LD_PRELOAD` would load a library
/// of the build's choosing into buildah (which runs as root), `HTTPS_PROXY` would route
/// its registry traffic, `CONTAINERS_REGISTRIES_CONF` or `REGISTRY_AUTH_FILE` would
/// change where it pulls from and with what. Compared case-insensitively.
pub fn build_arg_problem(name: &str) -> Option<String> {
    let well_formed = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Some(format!(
            "\"{name}\" cannot be a build argument's name: use letters, digits and '_', \
             not starting with a digit"
        ));
    }
    const RESERVED: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "TMPDIR",
        "TZ",
        "TZDIR",
        "LANG",
        "LANGUAGE",
        "NLSPATH",
        "GCONV_PATH",
        "GETCONF_DIR",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "RES_OPTIONS",
        "RESOLV_HOST_CONF",
        "NIS_PATH",
        "GODEBUG",
        "GOGC",
        "GOMAXPROCS",
        "GOMEMLIMIT",
        "GOTRACEBACK",
        "GORACE",
        "GOROOT",
        "GOCOVERDIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "FTP_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "REGISTRY_AUTH_FILE",
        "DOCKER_CONFIG",
        "DOCKER_CERT_PATH",
        "NOTIFY_SOCKET",
        "CONTAINER",
    ];
    const RESERVED_PREFIXES: &[&str] = &[
        "_",
        "LD_",
        "GLIBC_",
        "MALLOC_",
        "LC_",
        "SSL_",
        "XDG_",
        "DBUS_",
        "SYSTEMD_",
        "CONTAINERS_",
        "BUILDAH_",
        "PODMAN_",
        "STORAGE_",
        "REGISTRIES_",
        "CNI_",
        "NETAVARK_",
    ];
    let upper = name.to_ascii_uppercase();
    let reserved = RESERVED.contains(&upper.as_str())
        || RESERVED_PREFIXES
            .iter()
            .any(|prefix| upper.starts_with(prefix));
    reserved.then(|| {
        format!(
            "the build argument {name} cannot be passed to the build: its name would also \
             configure the builder itself (its environment carries build arguments); \
             rename it"
        )
    })
}

/// A registries.conf for one build. Insecure registries are marked one by one (buildah's
/// only other way, `--tls-verify=false`, would apply to every registry of the build), and
/// short names resolve on Docker Hub, as Docker resolves them. It replaces the system's
/// /etc/containers/registries.conf for the build (mirrors configured there do not
/// apply); drop-ins in registries.conf.d, such as short-name aliases, still do.
fn registries_conf(insecure: &[RegistryHost]) -> String {
    let mut conf = String::from(
        "# Written by Berth for one build.\n\
         unqualified-search-registries = [\"docker.io\"]\n\
         short-name-mode = \"permissive\"\n",
    );
    for host in insecure {
        // A parsed host holds no quotes or backslashes.
        conf.push_str(&format!(
            "\n[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"
        ));
    }
    conf
}

/// Build arg values shorter than this are left in the build's output. The engine cannot
/// tell secret build args from others (`NODE_ENV=production`, `DEBUG=1`), and hiding a
/// one- or two-character value would blank it out of every line; values that short are no
/// secret. (The operation log applies its own redaction of secret-looking names too.)
const MIN_REDACTED_BUILD_ARG: usize = 3;

/// Hides every secret of the build: registry passwords, secret build arg values, and the forms
/// they take in the auth file or a tool's echo of it (base64).
fn redactor_for(spec: &BuildSpec, files: &BuildFiles) -> Redactor {
    let mut redactor = Redactor::new();
    let secrets = spec
        .registry_credentials
        .iter()
        .map(|(_, credentials)| &credentials.secret)
        .chain(
            spec.build_args
                .iter()
                .filter(|(name, _)| names_a_secret(name))
                .map(|(_, value)| value)
                .filter(|value| value.expose().chars().count() >= MIN_REDACTED_BUILD_ARG),
        );
    for secret in secrets {
        hide_with_base64(&mut redactor, secret);
    }
    for encoded in files.encoded_secrets() {
        redactor.hide(encoded);
    }
    redactor
}

/// Build args come from the app's configuration, where only secret-looking names hold
/// secrets (`API_TOKEN`, `DATABASE_URL`); hiding every value would blank ordinary words
/// such as a `GREETING=hello` out of `COPY hello.txt`.
fn names_a_secret(name: &str) -> bool {
    domain::ConfigKey::parse(name).map_or(true, |key| key.looks_secret())
}

fn hide_with_base64(redactor: &mut Redactor, secret: &Secret) {
    if secret.is_empty() {
        return;
    }
    redactor.hide(secret.expose());
    let encoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(secret.expose().as_bytes()),
    );
    redactor.hide(&encoded);
}

/// ` with credentials for ghcr.io (as ci), …`, or nothing.
fn credentials_note(spec: &BuildSpec) -> String {
    if spec.registry_credentials.is_empty() {
        return String::new();
    }
    let registries: Vec<String> = spec
        .registry_credentials
        .iter()
        .map(|(host, credentials)| format!("{host} (as {})", credentials.username))
        .collect();
    format!(", base image credentials for {}", registries.join(", "))
}

/// buildah's message, led by what it means when a base image could not be pulled. buildah
/// 1.28 says `creating build container: initializing source docker://HOST/REPO:TAG: …`.
fn explain_build_failure(
    summary: &str,
    credentials: &[(RegistryHost, crate::registry::BasicCredentials)],
) -> String {
    let Some(image) = summary
        .split_once("docker://")
        .map(|(_, rest)| rest.split(": ").next().unwrap_or(rest))
    else {
        return summary.to_owned();
    };
    let host = image.split('/').next().unwrap_or(image);
    let given = credentials.iter().any(|(known, _)| known.as_str() == host);
    let lower = summary.to_ascii_lowercase();
    let meaning = if lower.contains("unauthorized") || lower.contains("authentication required") {
        if given {
            "the registry refused the credentials".to_owned()
        } else {
            format!("the registry asks for credentials and none were given for {host}")
        }
    } else if lower.contains("denied") {
        "the credentials may not pull this image".to_owned()
    } else if lower.contains("manifest unknown") || lower.contains("not found") {
        "the registry has no such image".to_owned()
    } else if lower.contains("connection refused")
        || lower.contains("no such host")
        || lower.contains("i/o timeout")
    {
        "the registry cannot be reached".to_owned()
    } else {
        "it could not be pulled".to_owned()
    };
    format!("the base image {image}: {meaning} ({summary})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::BasicCredentials;

    #[test]
    fn build_args_that_would_steer_buildah_are_refused() {
        for name in [
            "LD_PRELOAD",
            "ld_library_path",
            "PATH",
            "https_proxy",
            "CONTAINERS_REGISTRIES_CONF",
            "BUILDAH_ISOLATION",
            "REGISTRY_AUTH_FILE",
            "GODEBUG",
            "_CONTAINERS_USERNS_CONFIGURED",
            "XDG_RUNTIME_DIR",
            "TMPDIR",
        ] {
            assert!(build_arg_problem(name).is_some(), "{name} was accepted");
        }
        for name in ["", "1ABC", "A-B", "A B", "A=B"] {
            let problem = build_arg_problem(name).expect("malformed");
            assert!(
                problem.contains("cannot be a build argument's name"),
                "{problem}"
            );
        }
        for name in [
            "NPM_TOKEN",
            "NODE_ENV",
            "GOOGLE_API_KEY",
            "VERSION",
            "x1",
            "DOCKER_TAG",
        ] {
            assert_eq!(build_arg_problem(name), None, "{name} was refused");
        }
    }

    #[test]
    fn registries_conf_marks_each_insecure_registry() {
        let conf = registries_conf(&[
            RegistryHost::parse("127.0.0.1:5000").unwrap(),
            RegistryHost::parse("registry.lan").unwrap(),
        ]);
        assert!(conf.contains("unqualified-search-registries = [\"docker.io\"]"));
        assert!(conf.contains("[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n"));
        assert!(conf.contains("[[registry]]\nlocation = \"registry.lan\"\ninsecure = true\n"));
        assert!(!registries_conf(&[]).contains("[[registry]]"));
    }

    #[test]
    fn a_base_image_failure_names_the_image_and_the_reason() {
        let summary = "creating build container: initializing source \
                       docker://127.0.0.1:5000/base/busybox:1: reading manifest 1 in \
                       127.0.0.1:5000/base/busybox: unauthorized: authentication required";
        let given = [(
            RegistryHost::parse("127.0.0.1:5000").unwrap(),
            BasicCredentials::new("ci", "pw"),
        )];
        let explained = explain_build_failure(summary, &given);
        assert!(
            explained.starts_with(
                "the base image 127.0.0.1:5000/base/busybox:1: the registry refused the \
                 credentials ("
            ),
            "{explained}"
        );
        let explained = explain_build_failure(summary, &[]);
        assert!(
            explained.contains("none were given for 127.0.0.1:5000"),
            "{explained}"
        );
        let step = "building at STEP \"RUN false\": exit status 1";
        assert_eq!(explain_build_failure(step, &given), step);
    }

    #[test]
    fn sources_may_not_reach_outside_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(root.join("app")).unwrap();
        fs::write(root.join("app/Dockerfile"), "FROM scratch\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("app/etc")).unwrap();
        let app = root.join("app");

        assert_eq!(
            inside(&app, "", "Dockerfile", "the Dockerfile").unwrap(),
            app.join("Dockerfile")
        );
        assert_eq!(inside(&app, ".", ".", "the context").unwrap(), app);
        for bad in ["../app/Dockerfile", "/etc/passwd", "etc/passwd", "missing"] {
            assert!(
                matches!(
                    inside(&app, bad, ".", "the Dockerfile"),
                    Err(PlatformError::Build(_))
                ),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn the_redactor_hides_passwords_and_build_args_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = vec![(
            RegistryHost::parse("127.0.0.1:5000").unwrap(),
            BasicCredentials::new("ci", "pw-registry-1"),
        )];
        let spec = BuildSpec {
            app: crate::engine::AppRef {
                id: 1,
                team_id: 1,
                name: "team/app".into(),
                route: None,
            },
            operation_id: 2,
            source_dir: dir.path().to_owned(),
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            build_args: vec![
                ("TOKEN".into(), Secret::new("tok-secret-9")),
                ("DEBUG".into(), Secret::new("1")),
            ],
            registry_credentials: credentials.clone(),
        };
        let files = BuildFiles::write(&dir.path().join("auth"), &credentials).unwrap();
        let redactor = redactor_for(&spec, &files);
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let line = format!(
            "pw-registry-1 {} {} tok-secret-9 {} step 1/2",
            encode("ci:pw-registry-1"),
            encode("pw-registry-1"),
            encode("tok-secret-9"),
        );
        assert_eq!(
            redactor.redact(&line),
            "[redacted] [redacted] [redacted] [redacted] [redacted] step 1/2"
        );
    }
}
