//! The one place that knows which values of an app must never appear in a log, and how a
//! line is cleaned of them. The operation log (written by the worker) and the runtime log
//! (what a release prints, kept by the platform and read by pages and the API) both use it.

use crate::{config::Environment, Berth, Result};
use domain::Secret;
use store::{App, SecretSlot};

/// What replaces a secret in a log line.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are left in logs: a one- or two-character value ("1", "on")
/// would blank out half of every line, and a value that short is no secret.
pub const MIN_REDACTED_LEN: usize = 3;

/// Every secret an app holds: its secret configuration values (not the plain ones), the
/// read password of its git source and the registry password remembered on it.
pub async fn app_secrets(
    berth: &Berth,
    app: &App,
    environment: &Environment,
) -> Result<Vec<Secret>> {
    let mut secrets: Vec<Secret> = environment.secret_values().cloned().collect();
    if let Some((_, sealed)) = berth.store.git_secret(app.id).await? {
        secrets.push(berth.secrets.open(&SecretSlot::AppGit(app.id), &sealed)?);
    }
    if let Some((_, _, sealed)) = berth.store.remembered_secret(app.id).await? {
        secrets.push(
            berth
                .secrets
                .open(&SecretSlot::AppRemembered(app.id), &sealed)?,
        );
    }
    Ok(secrets)
}

/// Secrets in the order [`redact`] wants them: long enough to matter, longest first (so
/// that a secret containing another is hidden whole), each once.
pub fn prepare(secrets: impl IntoIterator<Item = Secret>) -> Vec<Secret> {
    let mut secrets: Vec<Secret> = secrets
        .into_iter()
        .filter(|s| s.expose().len() >= MIN_REDACTED_LEN)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
    secrets.dedup_by(|a, b| a.expose() == b.expose());
    secrets
}

/// `line` with every occurrence of every secret (anywhere in the line) replaced by
/// [`REDACTED`]; `secrets` as [`prepare`] orders them.
pub fn redact(line: &str, secrets: &[Secret]) -> String {
    let mut line = line.to_owned();
    for secret in secrets {
        if line.contains(secret.expose()) {
            line = line.replace(secret.expose(), REDACTED);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_hidden_even_mid_line_and_nested_secrets_whole() {
        let secrets = prepare(
            ["s3cr3t", "s3cr3t-and-more", "on", "s3cr3t"]
                .into_iter()
                .map(|s| Secret::new(s.to_owned())),
        );
        assert_eq!(secrets.len(), 2, "short values and duplicates are dropped");
        assert_eq!(
            redact("a=s3cr3t-and-more b=xs3cr3tx on", &secrets),
            "a=[redacted] b=x[redacted]x on"
        );
    }
}
