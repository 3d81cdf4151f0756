//! The options of `RUN` steps that would let a build reach outside itself, found before the
//! build starts.
//!
//! A `RUN --mount` of type `bind` (the default type) mounts files of the build context, or,
//! with `from=`, of another image, into the step: buildah 1.28 follows a symlink in the
//! context onto the host (CVE-2024-1753), and `from=` can name any image in the builder's
//! storage. `RUN --network` and `RUN --security` would take the step out of its network
//! namespace or its confinement. What is allowed: `--mount` of type `cache` (kept per app),
//! `tmpfs` and `secret` (Berth passes no secrets, so it stays empty), without `from=`, and
//! `--network=none` or `default`. An option whose text holds a `$` is refused too: its
//! value is only known when the builder expands it, too late to check.

use crate::instructions::{self, Instruction};
use crate::substitution::split_words;
use crate::DockerfileError;

/// A `RUN` option the build may not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRunOption {
    /// 1-based line of the `RUN` instruction.
    pub line: usize,
    /// The option as written, e.g. `--mount=type=bind,source=x,target=/x`.
    pub option: String,
    /// Why, in words for the person deploying.
    pub reason: String,
}

impl std::fmt::Display for RefusedRunOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: RUN {} is not allowed: {}",
            self.line, self.option, self.reason
        )
    }
}

/// Every `RUN` option of `dockerfile` that Berth refuses, in file order.
pub fn refused_run_options(dockerfile: &str) -> Result<Vec<RefusedRunOption>, DockerfileError> {
    let instructions = instructions::read(dockerfile)?;
    Ok(instructions
        .list
        .iter()
        .filter(|i| i.keyword.eq_ignore_ascii_case("RUN"))
        .flat_map(|i| refused(i, instructions.escape))
        .collect())
}

fn refused(run: &Instruction, escape: char) -> Vec<RefusedRunOption> {
    let words = split_words(&run.arguments, escape);
    words
        .iter()
        .take_while(|word| word.starts_with("--"))
        .filter_map(|option| {
            problem(option).map(|reason| RefusedRunOption {
                line: run.line,
                option: option.clone(),
                reason,
            })
        })
        .collect()
}

fn problem(option: &str) -> Option<String> {
    // The builder reads a mount's fields as CSV: quotes could hide a field from this check.
    if option.contains(['"', '\'', '\\', '`']) {
        return Some(
            "write the option without quotes or escapes, so that it can be checked".into(),
        );
    }
    if option.contains('$') {
        return Some(
            "its value depends on ARGs, so it cannot be checked before the build; write it out"
                .into(),
        );
    }
    let (name, value) = option.split_once('=').unwrap_or((option, ""));
    match name.to_ascii_lowercase().as_str() {
        "--mount" => mount_problem(value),
        "--network" => match value.to_ascii_lowercase().as_str() {
            "none" | "default" => None,
            _ => Some(
                "a build's RUN steps have a network of their own; only --network=none may \
                 narrow it"
                    .into(),
            ),
        },
        _ => Some(format!(
            "Berth's builder does not allow the {name} option of RUN"
        )),
    }
}

fn mount_problem(value: &str) -> Option<String> {
    let mut kind = "bind".to_owned();
    let mut from = false;
    for field in value.split(',') {
        let (key, field_value) = field.split_once('=').unwrap_or((field, ""));
        match key.trim().to_ascii_lowercase().as_str() {
            "type" => kind = field_value.trim().to_ascii_lowercase(),
            "from" => from = true,
            _ => {}
        }
    }
    if from {
        return Some(
            "from= mounts another image or stage into the step; copy what the step needs \
             with COPY --from instead"
                .into(),
        );
    }
    match kind.as_str() {
        "cache" | "tmpfs" | "secret" => None,
        "bind" => Some(
            "a bind mount (the default type) exposes files outside the step and can follow \
             a symbolic link onto the build server; COPY the files into the image instead"
                .into(),
        ),
        other => Some(format!(
            "mounts of type {other} are not allowed; use type=cache, tmpfs or secret"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_lines(dockerfile: &str) -> Vec<(usize, String)> {
        refused_run_options(dockerfile)
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.option))
            .collect()
    }

    #[test]
    fn bind_mounts_and_mounts_from_images_are_refused_with_their_line() {
        let dockerfile = "FROM busybox\n\
            RUN --mount=type=bind,source=hostroot,target=/h cat /h/etc/shadow\n\
            RUN --mount=target=/src make\n\
            RUN --mount=type=cache,target=/root/.cache,from=localhost/berth/app-2:op-9 ls\n\
            run --mount=TYPE=Bind,src=.,dst=/x ls\n";
        assert_eq!(
            refused_lines(dockerfile),
            [
                (2, "--mount=type=bind,source=hostroot,target=/h".to_owned()),
                (3, "--mount=target=/src".to_owned()),
                (
                    4,
                    "--mount=type=cache,target=/root/.cache,from=localhost/berth/app-2:op-9"
                        .to_owned()
                ),
                (5, "--mount=TYPE=Bind,src=.,dst=/x".to_owned()),
            ]
        );
    }

    #[test]
    fn caches_tmpfs_and_secrets_are_allowed() {
        let dockerfile = "FROM busybox\n\
            RUN --mount=type=cache,target=/root/.npm npm ci\n\
            RUN --mount=type=tmpfs,target=/scratch --network=none make\n\
            RUN --mount=type=secret,id=npm cat /run/secrets/npm\n\
            RUN echo --mount=type=bind is only text here\n";
        assert!(refused_lines(dockerfile).is_empty());
    }

    #[test]
    fn the_host_network_insecure_steps_and_unknowable_options_are_refused() {
        let dockerfile = "ARG T=bind\nFROM busybox\n\
            RUN --network=host curl http://127.0.0.1:5432\n\
            RUN --security=insecure id\n\
            RUN --mount=type=$T,target=/x ls\n\
            RUN \\\n  --mount=type=bind,target=/y ls\n\
            RUN --mount=type=cache,\"from=img\",target=/z ls\n";
        let refused = refused_run_options(dockerfile).unwrap();
        let lines: Vec<usize> = refused.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 8]);
        assert!(
            refused[2].to_string().contains("depends on ARGs"),
            "{}",
            refused[2]
        );
    }
}
