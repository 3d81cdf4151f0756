//! What buildah 1.28 cannot ask of runc: buildah calls this shim as its OCI runtime
//! (`--runtime`), and the shim hardens each container's `config.json` before handing the
//! very same command over to runc.
//!
//! - `process.noNewPrivileges`: buildah 1.28 has no `--security-opt no-new-privileges`
//!   (and ignores `no_new_privileges` in containers.conf). Without it a setuid binary in an
//!   image run as a non-root `USER` would regain root's capabilities.
//!
//! The shim is `berth oci-runtime --runtime <runc> -- <runc's arguments>` (and, for the
//! platform's own tests, the `berth-oci-runtime` binary); the engine writes a small script
//! that runs it, since buildah takes a runtime's path without arguments.

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
    let (runtime, runc_args) = match parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("berth oci-runtime: {e}");
            return 2;
        }
    };
    if let Some(bundle) = bundle_to_harden(&runc_args) {
        if let Err(e) = harden(&bundle.join("config.json")) {
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

fn parse(args: Vec<OsString>) -> Result<(PathBuf, Vec<OsString>), String> {
    let mut args = args.into_iter();
    if args.next().as_deref() != Some(OsStr::new("--runtime")) {
        return Err("usage: --runtime <OCI runtime> -- <its arguments>".into());
    }
    let runtime = args.next().ok_or("--runtime needs a value")?;
    if args.next().as_deref() != Some(OsStr::new("--")) {
        return Err("expected -- after --runtime <OCI runtime>".into());
    }
    Ok((PathBuf::from(runtime), args.collect()))
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

/// Sets what the shim promises in the OCI config at `path`.
fn harden(path: &Path) -> io::Result<()> {
    let text = fs::read(path)?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let process = config
        .get_mut("process")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the config has no process"))?;
    process.insert("noNewPrivileges".into(), serde_json::Value::Bool(true));
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
    let mut line = String::from("exec");
    for word in command.iter().map(OsString::as_os_str).chain([
        OsStr::new("--runtime"),
        runtime.as_os_str(),
        OsStr::new("--"),
    ]) {
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
        harden(&path).unwrap();
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
        assert!(harden(&path).is_err());
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
