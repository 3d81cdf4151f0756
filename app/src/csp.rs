//! The Content-Security-Policy of the pages the app renders. The only inline scripts are
//! the ones hydration needs (the loader of `/pkg/berth.js` and the serialized resources),
//! and leptos_axum gives each response a fresh nonce that it writes on every one of them;
//! the policy allows scripts with that nonce, the bundle from Berth's own origin and its
//! WebAssembly, and nothing else: an injected `<script>` or event handler attribute does not
//! run.

use leptos::prelude::*;

/// The policy of a page whose inline scripts carry `nonce`.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Puts the page policy on the response being rendered (called by the shell, before the
/// first byte is sent).
pub fn set_page_policy() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    match http::HeaderValue::from_str(&page_policy(&nonce)) {
        Ok(value) => response.insert_header(http::header::CONTENT_SECURITY_POLICY, value),
        Err(error) => tracing::error!(%error, "the page policy is not a header value"),
    }
}
