//! Every buildah command the engine runs, built in one place so that each one uses the
//! storage of one team in the engine's directory (`--root`, `--runroot`,
//! `--storage-driver`) and none inherits Berth's environment (which holds the master key and
//! the database URL).

use super::{redact::Redactor, settings::LocalSettings};
use crate::registry::{manifest, Secret};
use std::{
    collections::VecDeque,
    ffi::OsString,
    io,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
};
use tokio::{io::AsyncRead, process::Command};

/// Enough of a failing command's output to say why it failed.
const TAIL_LINES: usize = 20;
/// Config values reach `buildah config` under these names (see [`Buildah::set_env`]).
const VALUE_ALIAS: &str = "BERTH_CONFIG_VALUE_";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where c/image reads registries.conf from when set (instead of /etc/containers).
const REGISTRIES_CONF_VARIABLE: &str = "CONTAINERS_REGISTRIES_CONF";

#[derive(Debug)]
pub(crate) enum BuildahError {
    /// The binary could not be run at all.
    NotInstalled(String),
    /// It ran and failed; the last lines of its output, redacted.
    Failed {
        status: ExitStatus,
        tail: Vec<String>,
    },
    Io(io::Error),
}

impl BuildahError {
    /// The most telling line: buildah ends with `Error: …`.
    pub fn summary(&self) -> String {
        match self {
            BuildahError::NotInstalled(why) => why.clone(),
            BuildahError::Io(e) => format!("running buildah failed: {e}"),
            BuildahError::Failed { status, tail } => tail
                .iter()
                .rev()
                .find(|line| line.starts_with("Error:") || line.contains("level=error"))
                .or(tail.last())
                .map(|line| line.trim_start_matches("Error: ").to_owned())
                .unwrap_or_else(|| format!("buildah exited with {status}")),
        }
    }
}

/// What the image says to run, from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageCommand {
    /// Entrypoint followed by Cmd, as a container runtime would run them.
    pub argv: Vec<String>,
}

/// An image in the storage, as `buildah images --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct StoredImage {
    /// `sha256:…` (with `--no-trunc`).
    pub id: String,
    /// `host/repo@sha256:…` for a pull by digest, `host/repo:tag` for a tag; none for a
    /// build's intermediate steps.
    #[serde(default, deserialize_with = "names_or_null")]
    pub names: Vec<String>,
}

/// buildah prints `"names": null` for an image without names.
fn names_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(<Option<Vec<String>> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

/// One `buildah build`: every path is absolute.
pub(crate) struct BuildRequest<'a> {
    pub context: &'a Path,
    pub dockerfile: &'a Path,
    /// `localhost/berth/app-N:op-M`.
    pub tag: &'a str,
    pub auth_file: &'a Path,
    /// A registries.conf marking the insecure registries, if any are configured.
    pub registries_conf: Option<&'a Path>,
    /// Where buildah writes the built image's id.
    pub iid_file: &'a Path,
    /// How the `RUN` steps are confined (`--isolation oci`, their network, …).
    pub confinement: &'a [OsString],
    /// Names checked by the caller (see `build::build_arg_problem`).
    pub build_args: &'a [(String, Secret)],
}

#[derive(Clone)]
pub(crate) struct Buildah {
    program: PathBuf,
    global: Vec<OsString>,
    tmp: PathBuf,
    /// Where the storage keeps its images' metadata (`<root>/<driver>-images`); `None` for
    /// buildah without storage.
    images_dir: Option<PathBuf>,
}

/// An image config is a few KiB; one bigger than this is not read from storage.
const MAX_STORED_CONFIG_BYTES: u64 = 4 << 20;

impl Buildah {
    /// buildah on the storage of `team_id`, with `app_id`'s temporary directory.
    pub fn new(settings: &LocalSettings, team_id: i64, app_id: i64) -> Self {
        let global = vec![
            "--root".into(),
            settings.storage_dir(team_id).into(),
            "--runroot".into(),
            settings.runroot_dir(team_id).into(),
            "--storage-driver".into(),
            settings.storage_driver.clone().into(),
        ];
        let tmp = settings.tmp_dir(app_id);
        // Inside the engine's private directory; a failure shows when buildah needs it.
        let _ = std::os::unix::fs::DirBuilderExt::mode(
            std::fs::DirBuilder::new().recursive(true),
            0o700,
        )
        .create(&tmp);
        Self {
            program: settings.buildah.clone(),
            global,
            tmp,
            images_dir: Some(
                settings
                    .storage_dir(team_id)
                    .join(format!("{}-images", settings.storage_driver)),
            ),
        }
    }

    /// buildah with no storage, for `--version`.
    pub fn program(settings: &LocalSettings) -> Self {
        Self {
            program: settings.buildah.clone(),
            global: Vec::new(),
            tmp: std::env::temp_dir(),
            images_dir: None,
        }
    }

    /// A buildah command with the team's storage and a clean environment.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .env_clear()
            .env("PATH", PATH)
            // Pulls stage layers in TMPDIR (default /var/tmp), and cache mounts live there:
            // keep them on the engine's disk, per app.
            .env("TMPDIR", &self.tmp)
            .args(&self.global)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// `buildah --version`: whether buildah can run here at all.
    pub async fn version(&self) -> Result<String, BuildahError> {
        let mut command = Command::new(&self.program);
        command.env_clear().env("PATH", PATH).arg("--version");
        let output = collect(command, &Redactor::new()).await?;
        Ok(output.trim().to_owned())
    }

    /// `buildah pull` of `image` (`host/repo@sha256:…`), each output line to `on_line`;
    /// answers the stored image's id (the digest of its config, 64 hex digits) when buildah
    /// printed it last, as it does.
    pub async fn pull(
        &self,
        image: &str,
        auth_file: &Path,
        tls_verify: bool,
        redactor: &Redactor,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Option<String>, BuildahError> {
        let mut command = self.command();
        command.arg("pull").arg("--authfile").arg(auth_file);
        if !tls_verify {
            command.arg("--tls-verify=false");
        }
        command.arg(format!("docker://{image}"));
        let mut last = String::new();
        stream(command, redactor, &mut |line| {
            on_line(line);
            if !line.trim().is_empty() {
                line.trim().clone_into(&mut last);
            }
        })
        .await?;
        Ok(is_image_id(&last).then_some(last))
    }

    /// The command of the stored image `id` (as [`Self::pull`] answers it), read from the
    /// storage's own copy of the image's config without running buildah: the file's
    /// SHA-256 must be `id`, so what is read is exactly the config that was pulled. `None`
    /// when it cannot be read so (another storage layout, a schema 1 image whose id is not
    /// its config's digest): [`Self::image_command`] then asks buildah.
    pub fn stored_image_command(&self, id: &str) -> Option<ImageCommand> {
        use base64::Engine as _;
        use std::io::Read as _;
        if !is_image_id(id) {
            return None;
        }
        // containers/storage keeps an image's "big data" items in the image's directory,
        // each named `=` and the base64 of its key; the config's key is its digest.
        let key = base64::engine::general_purpose::STANDARD.encode(format!("sha256:{id}"));
        let path = self.images_dir.as_ref()?.join(id).join(format!("={key}"));
        let mut config = Vec::new();
        std::fs::File::open(path)
            .ok()?
            .take(MAX_STORED_CONFIG_BYTES + 1)
            .read_to_end(&mut config)
            .ok()?;
        if config.len() as u64 > MAX_STORED_CONFIG_BYTES
            || manifest::sha256_digest(&config)
                .as_str()
                .strip_prefix("sha256:")
                != Some(id)
        {
            return None;
        }
        let config: serde_json::Value = serde_json::from_slice(&config).ok()?;
        Some(command_of(&config["config"]))
    }

    /// The command the image runs, or `None` when the image is not in local storage.
    pub async fn image_command(&self, image: &str) -> Result<Option<ImageCommand>, BuildahError> {
        let mut command = self.command();
        command.args(["inspect", "--type", "image", image]);
        let json = match collect(command, &Redactor::new()).await {
            Ok(json) => json,
            Err(BuildahError::Failed { tail, .. })
                if tail.iter().any(|line| is_unknown_image(line)) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let inspected: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
            BuildahError::Io(io::Error::other(format!(
                "buildah inspect printed no JSON: {e}"
            )))
        })?;
        Ok(Some(command_of(&inspected["OCIv1"]["config"])))
    }

    /// `buildah from` the image already in local storage, as container `name`, confined by
    /// `confinement` (the flags are kept with the container and apply to its run).
    pub async fn create_container(
        &self,
        image: &str,
        name: &str,
        confinement: &[OsString],
    ) -> Result<(), BuildahError> {
        let mut command = self.command();
        command
            .args(["from", "--pull=never", "--quiet", "--name", name])
            .args(confinement)
            .arg(image);
        collect(command, &Redactor::new()).await.map(|_| ())
    }

    /// Puts `PORT` and the release's configuration into the container's environment.
    ///
    /// Config values may be secrets, so they must not appear in argv. buildah 1.28 has no
    /// `--env-file`; `buildah run --env NAME` (without a value) silently drops the variable,
    /// and containers.conf's `env` is ignored by `buildah run`. What does work (verified on
    /// 1.28): `buildah config --env NAME` takes NAME's value from buildah's own environment,
    /// verbatim (no `$` expansion, newlines kept). Passing the app's names directly would
    /// let names such as `CONTAINERS_CONF` or `LD_PRELOAD` steer buildah itself, so each
    /// value travels under a neutral alias, is copied to its real name with
    /// `--env NAME=${ALIAS}` (buildah expands that from the container's config, not from its
    /// environment), and the alias is removed (`--env ALIAS-`), all in one call. The values
    /// then live in the container's config in the engine's storage (root-only), like any
    /// container runtime keeps them. Empty values go in argv: there is nothing to hide, and
    /// buildah treats an empty environment variable as missing.
    pub async fn set_env(
        &self,
        container: &str,
        env: &[(String, Secret)],
        port: u16,
    ) -> Result<(), BuildahError> {
        let (command, redactor) = self.env_command(container, env, port);
        collect(command, &redactor).await.map(|_| ())
    }

    fn env_command(
        &self,
        container: &str,
        env: &[(String, Secret)],
        port: u16,
    ) -> (Command, Redactor) {
        let mut command = self.command();
        let mut redactor = Redactor::new();
        command.arg("config");
        let mut aliases = Vec::new();
        // `PORT` is where the health check looks; the release's own value cannot win.
        for (index, (name, value)) in env.iter().filter(|(name, _)| name != "PORT").enumerate() {
            if value.is_empty() {
                command.arg("--env").arg(format!("{name}="));
                continue;
            }
            redactor.hide(value.expose());
            let alias = format!("{VALUE_ALIAS}{index}");
            command
                .env(&alias, value.expose())
                .arg("--env")
                .arg(&alias)
                .arg("--env")
                .arg(format!("{name}=${{{alias}}}"));
            aliases.push(alias);
        }
        for alias in aliases {
            command.arg("--env").arg(format!("{alias}-"));
        }
        command
            .arg("--env")
            .arg(format!("PORT={port}"))
            .arg(container);
        (command, redactor)
    }

    /// The long-running `buildah run` of a release under the OCI `runtime`; the caller
    /// spawns and supervises it. Its namespaces, network and limits were set when the
    /// container was made.
    pub fn run_invocation(
        &self,
        container: &str,
        runtime: &Path,
        argv: &[String],
    ) -> super::monitor::Invocation {
        // The same environment as every other buildah command (see `command`).
        let env = vec![
            (OsString::from("PATH"), OsString::from(PATH)),
            (OsString::from("TMPDIR"), self.tmp.clone().into_os_string()),
        ];
        let mut args = self.global.clone();
        args.extend(["run".into(), "--isolation".into(), "oci".into()]);
        args.push("--runtime".into());
        args.push(runtime.into());
        args.push(container.into());
        args.push("--".into());
        args.extend(argv.iter().map(OsString::from));
        super::monitor::Invocation {
            program: self.program.clone(),
            args,
            env,
        }
    }

    /// `buildah build` (bud), each output line (redacted) to `on_line`.
    pub async fn build(
        &self,
        request: &BuildRequest<'_>,
        redactor: &Redactor,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), BuildahError> {
        stream(self.build_command(request), redactor, on_line).await
    }

    /// Build args may be secrets, so their values stay out of argv. buildah 1.28 has no
    /// build-args file (`--build-arg-file` came later), but `--build-arg NAME` without a
    /// value takes NAME's value from buildah's own environment, verbatim (verified on
    /// 1.28: no `$` expansion, quotes and spaces kept; an unset NAME drops the argument).
    /// Unlike [`Buildah::set_env`] there is no way to rename on the way, so the value
    /// travels under the argument's own name: the caller refuses names that would steer
    /// buildah, the dynamic loader or the Go runtime. Empty values go in argv (nothing
    /// to hide).
    ///
    /// Insecure registries are marked in a registries.conf of the build's own (via
    /// `CONTAINERS_REGISTRIES_CONF`), per registry, rather than with `--tls-verify=false`,
    /// which would drop TLS verification for every registry of the build at once.
    fn build_command(&self, request: &BuildRequest<'_>) -> Command {
        let mut command = self.command();
        if let Some(registries_conf) = request.registries_conf {
            command.env(REGISTRIES_CONF_VARIABLE, registries_conf);
        }
        command
            .arg("build")
            .args(request.confinement)
            // The layer cache lives in the team's storage, like every image.
            .arg("--layers")
            // A failed build would otherwise leave its working container, and the layers
            // under it, in the storage for good: nothing else ever removes them.
            .arg("--force-rm")
            // Check the registry on every build: a moved tag brings the new base, and
            // revoked credentials fail the build instead of a stale base hiding them.
            .arg("--pull=always")
            .arg("--authfile")
            .arg(request.auth_file)
            .arg("--iidfile")
            .arg(request.iid_file)
            .arg("--file")
            .arg(request.dockerfile)
            .arg("--tag")
            .arg(request.tag);
        for (name, value) in request.build_args {
            if value.is_empty() {
                command.arg("--build-arg").arg(format!("{name}="));
            } else {
                command
                    .env(name, value.expose())
                    .arg("--build-arg")
                    .arg(name);
            }
        }
        command.arg(request.context);
        command
    }

    /// The digest of the manifest of `image` (a name or an id) in local storage.
    pub async fn image_digest(&self, image: &str) -> Result<String, BuildahError> {
        let mut command = self.command();
        command.args([
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageDigest}}",
            image,
        ]);
        let digest = collect(command, &Redactor::new()).await?;
        Ok(digest.trim().to_owned())
    }

    pub async fn remove_container(&self, container: &str) -> Result<(), BuildahError> {
        let mut command = self.command();
        command.args(["rm", container]);
        collect(command, &Redactor::new()).await.map(|_| ())
    }

    /// Every image in the storage, intermediate ones (a build's cached steps) included.
    pub async fn images(&self) -> Result<Vec<StoredImage>, BuildahError> {
        let mut command = self.command();
        command.args(["images", "--all", "--json", "--no-trunc"]);
        let json = collect(command, &Redactor::new()).await?;
        // An empty storage prints `[]`, or nothing at all.
        if json.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(&json).map_err(|e| {
            BuildahError::Io(io::Error::other(format!(
                "buildah images printed no list of images: {e}"
            )))
        })
    }

    /// Whether `image` (a name, `repo@sha256:…` included) is in the storage.
    pub async fn has_image(&self, image: &str) -> Result<bool, BuildahError> {
        let mut command = self.command();
        command.args([
            "inspect",
            "--type",
            "image",
            "--format",
            "{{.FromImageID}}",
            image,
        ]);
        match collect(command, &Redactor::new()).await {
            Ok(_) => Ok(true),
            Err(BuildahError::Failed { tail, .. })
                if tail.iter().any(|line| is_unknown_image(line)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// `buildah rmi NAME`: removes the name; the image goes with it when it was its only
    /// name (an image that is also a build's base by tag stays, under that tag). Refused
    /// while a container uses the image.
    pub async fn remove_image(&self, name: &str) -> Result<(), BuildahError> {
        let mut command = self.command();
        command.args(["rmi", name]);
        collect(command, &Redactor::new()).await.map(|_| ())
    }

    /// `buildah rmi --prune`: removes the dangling images (no name, and no image built on
    /// them): a failed build's last cached step, a base whose tag moved to a new image.
    /// Answers how many went. Their layers go with them; layers other images use stay.
    pub async fn remove_dangling_images(&self) -> Result<usize, BuildahError> {
        let mut command = self.command();
        command.args(["rmi", "--prune"]);
        let output = collect(command, &Redactor::new()).await?;
        // One removed image id a line.
        Ok(output
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count())
    }

    /// The names of all containers in the engine's storage.
    pub async fn containers(&self) -> Result<Vec<String>, BuildahError> {
        let mut command = self.command();
        command.args([
            "containers",
            "--noheading",
            "--format",
            "{{.ContainerName}}",
        ]);
        let output = collect(command, &Redactor::new()).await?;
        Ok(output
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// buildah 1.28 says `Error: importing settings: <image>: image not known`.
fn is_unknown_image(line: &str) -> bool {
    line.ends_with("image not known")
}

fn spawn_error(e: io::Error, program: &std::ffi::OsStr) -> BuildahError {
    if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::PermissionDenied {
        BuildahError::NotInstalled(format!(
            "{} cannot be run ({e})",
            Path::new(program).display()
        ))
    } else {
        BuildahError::Io(e)
    }
}

/// Entrypoint then Cmd of an OCI image config's `config` object.
fn command_of(config: &serde_json::Value) -> ImageCommand {
    let strings = |field: &str| -> Vec<String> {
        config[field]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut argv = strings("Entrypoint");
    argv.extend(strings("Cmd"));
    ImageCommand { argv }
}

/// A stored image's id: the hex of a sha256 digest, as a registry's digests are checked.
fn is_image_id(text: &str) -> bool {
    manifest::sha256_digest_text(&format!("sha256:{text}")).is_some()
}

/// Runs `command` to the end; its stdout, or its failure with the tail of its stderr.
async fn collect(mut command: Command, redactor: &Redactor) -> Result<String, BuildahError> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = command
        .output()
        .await
        .map_err(|e| spawn_error(e, command.as_std().get_program()))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in stdout.lines().chain(stderr.lines()) {
        push_tail(&mut tail, redactor.redact(line));
    }
    Err(BuildahError::Failed {
        status: output.status,
        tail: tail.into(),
    })
}

/// Runs `command` to the end, each line of stdout and stderr (redacted) to `on_line` as it
/// comes.
async fn stream(
    mut command: Command,
    redactor: &Redactor,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), BuildahError> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(e, command.as_std().get_program()))?;
    let (sender, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let readers = [
        child
            .stdout
            .take()
            .map(|out| forward_lines(out, sender.clone())),
        child
            .stderr
            .take()
            .map(|err| forward_lines(err, sender.clone())),
    ];
    drop(sender);
    let mut tail = VecDeque::new();
    while let Some(line) = lines.recv().await {
        let line = redactor.redact(&line);
        on_line(&line);
        push_tail(&mut tail, line);
    }
    for reader in readers.into_iter().flatten() {
        let _ = reader.await;
    }
    let status = child.wait().await.map_err(BuildahError::Io)?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildahError::Failed {
            status,
            tail: tail.into(),
        })
    }
}

/// Reads `stream` line by line (lossy UTF-8, without `\r\n`, each line cut at
/// [`crate::output::MAX_LINE_BYTES`]) into `sender`, until EOF.
pub(crate) fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    sender: tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = crate::output::read_lines(stream, |line| sender.send(line).is_ok()).await;
    })
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if line.trim().is_empty() {
        return;
    }
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The storage's copy of an image's config is read as buildah itself reads it, and
    /// only when it is exactly the config the id names.
    #[tokio::test]
    async fn a_stored_images_command_is_read_from_storage_as_buildah_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let buildah = Buildah::new(&LocalSettings::new(dir.path()), 1, 1);
        let run = |args: &[&str]| {
            let mut command = buildah.command();
            command.args(args);
            let what = format!("buildah {args:?}");
            async move {
                collect(command, &Redactor::new())
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {}", e.summary()))
                    .trim()
                    .to_owned()
            }
        };
        // An image committed in this storage: its id is its config's digest, as a pulled
        // image's is.
        let container = run(&["from", "--quiet", "scratch"]).await;
        run(&[
            "config",
            "--entrypoint",
            r#"["/bin/busybox", "sh", "-c"]"#,
            "--cmd",
            r#"["echo \"two words\" $HOME"]"#,
            &container,
        ])
        .await;
        let id = run(&["commit", "--quiet", &container, "localhost/stored:1"]).await;
        assert!(is_image_id(&id), "{id}");

        let expected = ImageCommand {
            argv: ["/bin/busybox", "sh", "-c", r#"echo "two words" $HOME"#]
                .map(String::from)
                .to_vec(),
        };
        assert_eq!(
            buildah.image_command("localhost/stored:1").await.unwrap(),
            Some(expected.clone())
        );
        assert_eq!(buildah.stored_image_command(&id), Some(expected));

        // Not an id, an id storage does not hold, a config that is not the one the id names.
        assert_eq!(buildah.stored_image_command(&id[..63]), None);
        assert_eq!(buildah.stored_image_command("../../etc/passwd"), None);
        assert_eq!(buildah.stored_image_command(&"0".repeat(64)), None);
        let images = dir.path().join("storage/team-1/vfs-images").join(&id);
        let config = std::fs::read_dir(&images)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                std::fs::read(path).is_ok_and(|bytes| {
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) == id
                })
            })
            .expect("the config is stored beside the image");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("two words", "two wordz")).unwrap();
        assert_eq!(buildah.stored_image_command(&id), None);
    }

    #[test]
    fn config_values_travel_in_the_environment_and_never_in_argv() {
        let buildah = Buildah::new(&LocalSettings::new("/srv/berth/engine"), 3, 1);
        let env = [
            (
                "DATABASE_URL".to_owned(),
                Secret::new("postgres://app:pw-1@db/app"),
            ),
            ("EMPTY".to_owned(), Secret::new("")),
            ("PORT".to_owned(), Secret::new("1")),
        ];
        let (command, _) = buildah.env_command("berth-1-2-abcdef", &env, 20001);
        let command = command.as_std();
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let config = args.iter().position(|arg| arg == "config").unwrap();
        assert_eq!(
            args[config..],
            [
                "config",
                "--env",
                "BERTH_CONFIG_VALUE_0",
                "--env",
                "DATABASE_URL=${BERTH_CONFIG_VALUE_0}",
                "--env",
                "EMPTY=",
                "--env",
                "BERTH_CONFIG_VALUE_0-",
                "--env",
                "PORT=20001",
                "berth-1-2-abcdef",
            ]
        );
        assert!(args.iter().all(|arg| !arg.contains("pw-1")), "{args:?}");
        assert!(args.iter().any(|arg| arg == "--root"));
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs.iter().any(|(name, value)| {
            *name == "BERTH_CONFIG_VALUE_0" && *value == Some("postgres://app:pw-1@db/app".as_ref())
        }));
    }

    #[test]
    fn build_args_travel_in_the_environment_and_never_in_argv() {
        let buildah = Buildah::new(&LocalSettings::new("/srv/berth/engine"), 3, 1);
        let build_args = [
            ("NPM_TOKEN".to_owned(), Secret::new("npm-secret-42")),
            ("EMPTY".to_owned(), Secret::new("")),
        ];
        let request = BuildRequest {
            context: Path::new("/src/app"),
            dockerfile: Path::new("/src/app/Dockerfile"),
            tag: "localhost/berth/app-1:op-2",
            auth_file: Path::new("/srv/berth/engine/auth/build-x/auth.json"),
            registries_conf: Some(Path::new("/srv/berth/engine/auth/build-x/registries.conf")),
            iid_file: Path::new("/srv/berth/engine/auth/build-x/iid"),
            confinement: &["--isolation".into(), "oci".into()],
            build_args: &build_args,
        };
        let command = buildah.build_command(&request);
        let command = command.as_std();
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let build = args.iter().position(|arg| arg == "build").unwrap();
        assert_eq!(
            args[build..],
            [
                "build",
                "--isolation",
                "oci",
                "--layers",
                "--force-rm",
                "--pull=always",
                "--authfile",
                "/srv/berth/engine/auth/build-x/auth.json",
                "--iidfile",
                "/srv/berth/engine/auth/build-x/iid",
                "--file",
                "/src/app/Dockerfile",
                "--tag",
                "localhost/berth/app-1:op-2",
                "--build-arg",
                "NPM_TOKEN",
                "--build-arg",
                "EMPTY=",
                "/src/app",
            ]
        );
        assert!(
            args.iter().all(|arg| !arg.contains("npm-secret")),
            "{args:?}"
        );
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs
            .iter()
            .any(|(name, value)| *name == "NPM_TOKEN" && *value == Some("npm-secret-42".as_ref())));
        assert!(envs.iter().any(|(name, value)| {
            *name == REGISTRIES_CONF_VARIABLE
                && *value == Some("/srv/berth/engine/auth/build-x/registries.conf".as_ref())
        }));
    }
}
