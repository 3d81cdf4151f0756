//! What buildah 1.28 cannot ask of runc: buildah calls this shim as its OCI runtime
//! (`--runtime`), and the shim hardens each container's `config.json` before handing the
//! very same command over to runc.
//!
//! - `process.noNewPrivileges`: buildah 1.28 has no `--security-opt no-new-privileges`
//!   (and ignores `no_new_privileges` in containers.conf). Without it a setuid binary in an
//!   image run as a non-root `USER` would regain root's capabilities.
//! - A release's environment (`--env-file`): its configuration and `PORT`, set over the
//!   image's own. buildah can only take values it may not see in argv through a separate
//!   `buildah config` (a whole buildah start on every release's start); the shim reads
//!   them from a root-only file the engine writes for that container
//!   ([`write_release_files`]).
//!
//! The shim is `berth oci-runtime --runtime <runc> [--env-file <file>] -- <runc's
//! arguments>` (and, for the platform's own tests, the `berth-oci-runtime` binary); the
//! engine writes a small script that runs it, since buildah takes a runtime's path without
//! arguments: one for builds, and one for each release (with its environment file).

use std::{
    ffi::{OsStr, OsString},
    fs, io,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
};

/// The shim's entry point, given its arguments (after the program, and after any
/// subcommand name): `--runtime <runc> -- <runc's arguments>`. Returns only on failure,
/// with the exit status to end with.
pub fn main(args: Vec<OsString>) -> i32 {
    let Parsed {
        runtime,
        env_file,
        runc_args,
    } = match parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("berth oci-runtime: {e}");
            return 2;
        }
    };
    if let Some(bundle) = bundle_to_harden(&runc_args) {
        let env = match env_file.as_deref().map(read_env).transpose() {
            Ok(env) => env.unwrap_or_default(),
            Err(e) => {
                // A release must not start without its configuration.
                eprintln!("berth oci-runtime: cannot read the release's environment: {e}");
                return 1;
            }
        };
        if let Err(e) = harden(&bundle.join("config.json"), &env) {
            // Refuse to start a container that would run without what Berth promises.
            eprintln!(
                "berth oci-runtime: cannot harden {}: {e}",
                bundle.join("config.json").display()
            );
            return 1;
        }
    }
    let error = Command::new(&runtime).args(&runc_args).exec();
    eprintln!(
        "berth oci-runtime: cannot run {}: {error}",
        runtime.display()
    );
    127
}

#[derive(Debug, PartialEq)]
struct Parsed {
    runtime: PathBuf,
    env_file: Option<PathBuf>,
    runc_args: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    const USAGE: &str = "usage: --runtime <OCI runtime> [--env-file <file>] -- <its arguments>";
    let mut args = args.into_iter();
    if args.next().as_deref() != Some(OsStr::new("--runtime")) {
        return Err(USAGE.into());
    }
    let runtime = args.next().ok_or("--runtime needs a value")?;
    let mut env_file = None;
    let mut next = args.next();
    if next.as_deref() == Some(OsStr::new("--env-file")) {
        env_file = Some(PathBuf::from(
            args.next().ok_or("--env-file needs a value")?,
        ));
        next = args.next();
    }
    if next.as_deref() != Some(OsStr::new("--")) {
        return Err(USAGE.into());
    }
    Ok(Parsed {
        runtime: PathBuf::from(runtime),
        env_file,
        runc_args: args.collect(),
    })
}

/// A release's environment file: a JSON array of `[name, value]` pairs.
fn read_env(path: &Path) -> io::Result<Vec<(String, String)>> {
    serde_json::from_slice(&fs::read(path)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// runc's global options that take a value (`runc --root DIR create …`).
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];

/// The bundle whose config a `create` (or `run`) is about to use; `None` for every other
/// command (`start`, `kill`, `delete`, `state`, …), which the shim passes through as is.
fn bundle_to_harden(args: &[OsString]) -> Option<PathBuf> {
    let mut index = 0;
    let command = loop {
        let arg = args.get(index)?.to_str()?;
        if GLOBAL_WITH_VALUE.contains(&arg) {
            index += 2;
        } else if arg.starts_with('-') {
            index += 1;
        } else {
            break arg;
        }
    };
    if command != "create" && command != "run" {
        return None;
    }
    let rest = &args[index + 1..];
    let mut bundle = None;
    for (i, arg) in rest.iter().enumerate() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--bundle" || arg == "-b" {
            bundle = rest.get(i + 1).map(PathBuf::from);
        } else if let Some(value) = arg
            .strip_prefix("--bundle=")
            .or_else(|| arg.strip_prefix("-b="))
        {
            bundle = Some(PathBuf::from(value));
        }
    }
    // runc's default bundle is the current directory.
    Some(bundle.unwrap_or_else(|| PathBuf::from(".")))
}

/// Sets what the shim promises in the OCI config at `path`, and `env` over the
/// environment buildah gave the process (the image's own).
fn harden(path: &Path, env: &[(String, String)]) -> io::Result<()> {
    let text = fs::read(path)?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let process = config
        .get_mut("process")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the config has no process"))?;
    process.insert("noNewPrivileges".into(), serde_json::Value::Bool(true));
    if !env.is_empty() {
        let mut merged: Vec<serde_json::Value> = process
            .get("env")
            .and_then(serde_json::Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| {
                        let name = entry
                            .as_str()
                            .and_then(|e| e.split_once('='))
                            .map(|(n, _)| n);
                        !env.iter().any(|(set, _)| Some(set.as_str()) == name)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        merged.extend(
            env.iter()
                .map(|(name, value)| format!("{name}={value}").into()),
        );
        process.insert("env".into(), merged.into());
    }
    let hardened = serde_json::to_vec(&config).map_err(io::Error::other)?;
    let staging = path.with_extension("json.berth");
    fs::write(&staging, hardened)?;
    fs::set_permissions(&staging, fs::metadata(path)?.permissions())?;
    fs::rename(&staging, path)
}

/// Writes the script buildah runs as its OCI runtime: the shim `command` (program and
/// leading arguments) for `runtime`. Returns the script's path.
pub(crate) fn write_script(
    dir: &Path,
    command: &[OsString],
    runtime: &Path,
) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    write_script_with(dir, command, runtime, None)
}

fn write_script_with(
    dir: &Path,
    command: &[OsString],
    runtime: &Path,
    env_file: Option<&Path>,
) -> io::Result<PathBuf> {
    let mut words: Vec<&OsStr> = command.iter().map(OsString::as_os_str).collect();
    words.extend([OsStr::new("--runtime"), runtime.as_os_str()]);
    if let Some(env_file) = env_file {
        words.extend([OsStr::new("--env-file"), env_file.as_os_str()]);
    }
    words.push(OsStr::new("--"));
    let mut line = String::from("exec");
    for word in words {
        line.push(' ');
        line.push_str(&quote(word)?);
    }
    let script = dir.join("oci-runtime");
    let staging = dir.join("oci-runtime.new");
    fs::write(&staging, format!("#!/bin/sh\n{line} \"$@\"\n"))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))?;
    fs::rename(&staging, &script)?;
    Ok(script)
}

/// Writes a release's own runtime script in `dir` (made root-only; one directory per
/// container, removed with it): the shim with the release's environment file beside it,
/// `env` (names checked by the caller) then `PORT`, which no configured value can
/// override. Returns the script's path, for `buildah run --runtime`.
pub(crate) fn write_release_files(
    dir: &Path,
    command: &[OsString],
    runtime: &Path,
    env: &[(String, crate::registry::Secret)],
    port: u16,
) -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let port = port.to_string();
    let mut pairs: Vec<(&str, &str)> = env
        .iter()
        .filter(|(name, _)| name != "PORT")
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    pairs.push(("PORT", &port));
    let mut json = serde_json::to_vec(&pairs).map_err(io::Error::other)?;
    let env_file = dir.join("env.json");
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&env_file)?;
        io::Write::write_all(&mut file, &json)
    })();
    zeroize::Zeroize::zeroize(&mut json);
    written?;
    write_script_with(dir, command, runtime, Some(&env_file))
}

/// `word` in single quotes for sh.
fn quote(word: &OsStr) -> io::Result<String> {
    let word = word
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a path that is not UTF-8"))?;
    Ok(format!("'{}'", word.replace('\'', r"'\''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_create_and_run_are_hardened_and_the_bundle_is_found() {
        assert_eq!(
            bundle_to_harden(&args(&[
                "--root",
                "/run/x",
                "--log",
                "/l",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "id"
            ])),
            Some(PathBuf::from("/b"))
        );
        assert_eq!(
            bundle_to_harden(&args(&["--systemd-cgroup", "run", "-b=/c", "id"])),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            bundle_to_harden(&args(&["create", "id"])),
            Some(PathBuf::from("."))
        );
        // A global option's value is not taken for the command.
        assert_eq!(
            bundle_to_harden(&args(&["--root", "create", "start", "id"])),
            None
        );
        for command in ["start", "kill", "delete", "state", "--version"] {
            assert_eq!(bundle_to_harden(&args(&[command, "id"])), None, "{command}");
        }
    }

    #[test]
    fn hardening_sets_no_new_privileges_and_keeps_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"ociVersion":"1.0.2","process":{"args":["/bin/sh"],"noNewPrivileges":false},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}"#,
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        harden(&path, &[]).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(config["process"]["noNewPrivileges"], true);
        assert_eq!(config["process"]["args"][0], "/bin/sh");
        assert_eq!(
            config["linux"]["seccomp"]["defaultAction"],
            "SCMP_ACT_ERRNO"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        fs::write(&path, "not json").unwrap();
        assert!(harden(&path, &[]).is_err());
    }

    #[test]
    fn the_arguments_name_the_runtime_and_maybe_an_environment_file() {
        assert_eq!(
            parse(args(&["--runtime", "/usr/sbin/runc", "--", "create", "id"])),
            Ok(Parsed {
                runtime: "/usr/sbin/runc".into(),
                env_file: None,
                runc_args: args(&["create", "id"]),
            })
        );
        assert_eq!(
            parse(args(&[
                "--runtime",
                "/usr/sbin/runc",
                "--env-file",
                "/r/env.json",
                "--",
                "start",
                "id"
            ])),
            Ok(Parsed {
                runtime: "/usr/sbin/runc".into(),
                env_file: Some("/r/env.json".into()),
                runc_args: args(&["start", "id"]),
            })
        );
        for wrong in [
            &["create", "id"][..],
            &["--runtime"],
            &["--runtime", "runc", "create"],
            &["--runtime", "runc", "--env-file"],
            &["--runtime", "runc", "--env-file", "/e", "create"],
        ] {
            assert!(parse(args(wrong)).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn a_release_environment_is_set_over_the_images_and_kept_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"process":{"args":["/app"],"env":["PATH=/usr/bin","GREETING=from the image","PORT=80","HOSTNAME=x"]}}"#,
        )
        .unwrap();
        let env = [
            (
                "GREETING".to_owned(),
                "a $HOME ${PATH} \"quoted\"\nvalue=1".to_owned(),
            ),
            ("EMPTY".to_owned(), String::new()),
            ("PORT".to_owned(), "20001".to_owned()),
        ];
        harden(&path, &env).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            config["process"]["env"],
            serde_json::json!([
                "PATH=/usr/bin",
                "HOSTNAME=x",
                "GREETING=a $HOME ${PATH} \"quoted\"\nvalue=1",
                "EMPTY=",
                "PORT=20001"
            ])
        );
        assert_eq!(config["process"]["noNewPrivileges"], true);
    }

    #[test]
    fn a_releases_files_are_root_only_and_port_is_the_engines() {
        use crate::registry::Secret;
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("releases").join("berth-1-2-abcdef");
        let env = [
            (
                "DATABASE_URL".to_owned(),
                Secret::new("postgres://app:pw-1@db/app"),
            ),
            ("PORT".to_owned(), Secret::new("1")),
        ];
        let script = write_release_files(
            &release,
            &args(&["/usr/bin/berth", "oci-runtime"]),
            Path::new("/usr/sbin/runc"),
            &env,
            20001,
        )
        .unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&release), 0o700);
        assert_eq!(mode(&release.join("env.json")), 0o600);
        assert_eq!(mode(&script), 0o700);
        assert_eq!(
            read_env(&release.join("env.json")).unwrap(),
            [
                (
                    "DATABASE_URL".to_owned(),
                    "postgres://app:pw-1@db/app".to_owned()
                ),
                ("PORT".to_owned(), "20001".to_owned())
            ]
        );
        let text = fs::read_to_string(&script).unwrap();
        assert_eq!(
            text,
            format!(
                "#!/bin/sh\nexec '/usr/bin/berth' 'oci-runtime' '--runtime' '/usr/sbin/runc' '--env-file' '{}' '--' \"$@\"\n",
                release.join("env.json").display()
            )
        );
        assert!(!text.contains("pw-1"), "the values stay out of the script");
    }

    #[test]
    fn the_script_quotes_every_word() {
        let dir = tempfile::tempdir().unwrap();
        let script = write_script(
            dir.path(),
            &args(&["/opt/it's berth/berth", "oci-runtime"]),
            Path::new("/usr/sbin/runc"),
        )
        .unwrap();
        let text = fs::read_to_string(&script).unwrap();
        assert_eq!(
            text,
            "#!/bin/sh\nexec '/opt/it'\\''s berth/berth' 'oci-runtime' '--runtime' '/usr/sbin/runc' '--' \"$@\"\n"
        );
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $(printf '%s' {})",
                quote(OsStr::new("a'b c")).unwrap()
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "a'b c");
    }
}
