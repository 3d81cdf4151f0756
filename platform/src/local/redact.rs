//! Output from buildah (and Berth's own notes about it) goes to operation logs, runtime logs
//! and errors. A tool may echo what it was given, e.g. an auth file's `auth` field in a
//! parse error, so every line passes through a [`Redactor`] that knows this operation's
//! secrets.

const REDACTED: &str = "[redacted]";

/// Replaces every occurrence of the secrets it holds with `[redacted]`.
#[derive(Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret; empty strings are ignored (they occur everywhere).
    pub fn hide(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|known| known == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so that a secret containing another is hidden whole.
            self.secrets
                .sort_by_key(|known| std::cmp::Reverse(known.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), REDACTED)
        })
    }
}

impl Drop for Redactor {
    fn drop(&mut self) {
        for secret in &mut self.secrets {
            zeroize::Zeroize::zeroize(secret);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_of_every_secret_is_hidden() {
        let mut redactor = Redactor::new();
        redactor.hide("hunter2");
        redactor.hide("");
        redactor.hide("aHVudGVyMg==");
        assert_eq!(
            redactor.redact("pw=hunter2 auth=aHVudGVyMg== again hunter2"),
            "pw=[redacted] auth=[redacted] again [redacted]"
        );
        assert_eq!(redactor.redact("nothing here"), "nothing here");
    }
}
