//! Which redirects the registry client follows.
//!
//! API requests (the ping, token service, manifests, tag lists) follow a redirect only to
//! the same host and port over the same scheme, or from http to https on the same host:
//! a registry has no reason to send its API elsewhere, and a redirect is how a hostile one
//! would point Berth at another machine. Blob downloads may leave the host, because
//! registries keep blobs in object storage elsewhere, but only to https. Every hop is
//! checked by the egress guard as well (an address in the URL here, a name by the resolver
//! when it is connected to).

use crate::egress::Egress;
use reqwest::{
    redirect::{Attempt, Policy},
    Url,
};
use std::fmt;

const MAX_REDIRECTS: usize = 10;

/// A redirect Berth did not follow, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefused(String);

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

pub(super) fn same_host(egress: Egress) -> Policy {
    Policy::custom(move |attempt| decide(&egress, attempt, false))
}

pub(super) fn blob(egress: Egress) -> Policy {
    Policy::custom(move |attempt| decide(&egress, attempt, true))
}

fn decide(
    egress: &Egress,
    attempt: Attempt<'_>,
    may_leave_host: bool,
) -> reqwest::redirect::Action {
    let verdict = judge(egress, attempt.previous(), attempt.url(), may_leave_host);
    match verdict {
        Ok(()) => attempt.follow(),
        Err(refusal) => attempt.error(refusal),
    }
}

/// `previous` holds the URLs requested so far, the first request's included.
pub(crate) fn judge(
    egress: &Egress,
    previous: &[Url],
    to: &Url,
    may_leave_host: bool,
) -> Result<(), RedirectRefused> {
    if previous.len() > MAX_REDIRECTS {
        return Err(RedirectRefused(format!(
            "the registry redirected more than {MAX_REDIRECTS} times"
        )));
    }
    let Some(from) = previous.last() else {
        return Ok(());
    };
    let scheme_ok = match (from.scheme(), to.scheme()) {
        ("https", "https") | ("http", "https") => true,
        ("http", "http") => !may_leave_host || same_origin_host(from, to),
        _ => false,
    };
    if !scheme_ok {
        return Err(RedirectRefused(format!(
            "the registry redirected from {} to {}, which is less secure; Berth does not \
             follow redirects from https to http",
            from.scheme(),
            origin_of(to)
        )));
    }
    if !may_leave_host {
        let same_port = from.port_or_known_default() == to.port_or_known_default()
            || (from.scheme() == "http" && to.scheme() == "https" && to.port().is_none());
        if !same_origin_host(from, to) || !same_port {
            return Err(RedirectRefused(format!(
                "the registry redirected to another host ({}); Berth follows registry \
                 redirects on the same host only",
                origin_of(to)
            )));
        }
    }
    egress
        .check_url(to)
        .map_err(|refusal| RedirectRefused(format!("the registry redirected: {refusal}")))
}

fn same_origin_host(a: &Url, b: &Url) -> bool {
    a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
}

/// `scheme://host[:port]` of a URL: what a message may say of where a redirect pointed
/// (never its path or query, which could carry a signed token).
pub(crate) fn origin_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

/// Finds a refused redirect in an error's chain of sources.
pub(super) fn find_refusal<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a RedirectRefused> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(refusal) = current.downcast_ref::<RedirectRefused>() {
            return Some(refusal);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn api_redirects_stay_on_the_host_and_never_downgrade() {
        let egress = Egress::default();
        let from = [url("https://registry.example/v2/")];
        assert!(judge(&egress, &from, &url("https://registry.example/v2/x"), false).is_ok());
        assert!(judge(
            &egress,
            &from,
            &url("https://Registry.Example:443/x"),
            false
        )
        .is_ok());
        for refused in [
            "http://registry.example/v2/",
            "https://other.example/v2/",
            "https://registry.example.evil.com/v2/",
            "https://registry.example:8443/v2/",
            "https://169.254.169.254/latest/",
            "file:///etc/passwd",
        ] {
            assert!(
                judge(&egress, &from, &url(refused), false).is_err(),
                "{refused}"
            );
        }
        // An upgrade to https on the same host is fine.
        let plain = [url("http://registry.example/v2/")];
        assert!(judge(&egress, &plain, &url("https://registry.example/v2/"), false).is_ok());
    }

    #[test]
    fn blob_redirects_may_leave_the_host_over_https_to_public_addresses() {
        let egress = Egress::default();
        let from = [url("https://registry.example/v2/r/blobs/sha256:00")];
        assert!(judge(&egress, &from, &url("https://cdn.example/blob?sig=1"), true).is_ok());
        let refusal = judge(&egress, &from, &url("http://cdn.example/blob"), true).unwrap_err();
        assert!(refusal.to_string().contains("less secure"), "{refusal}");
        let refusal = judge(&egress, &from, &url("https://10.0.0.5/blob"), true).unwrap_err();
        assert!(refusal.to_string().contains("private address"), "{refusal}");
        let refusal = judge(
            &egress,
            &from,
            &url("https://[::ffff:127.0.0.1]/blob"),
            true,
        )
        .unwrap_err();
        assert!(refusal.to_string().contains("loopback"), "{refusal}");
        let many: Vec<Url> = (0..=MAX_REDIRECTS).map(|_| from[0].clone()).collect();
        assert!(judge(&egress, &many, &url("https://cdn.example/"), true).is_err());
    }
}
