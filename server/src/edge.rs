//! What every request and response passes through before any route sees it: a cap on the
//! request body, and the security headers on the answer.

use axum::{
    body::{to_bytes, Body},
    extract::Request,
    http::{header, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
    Json,
};
use views::api::{ErrorBody, ErrorView};

/// The largest request body Berth reads, on every route (JSON API, server functions, form
/// posts). Berth's biggest legitimate body is a configuration of many variables; 64 KiB holds
/// hundreds of them. A bigger body is refused before any handler (or the CSRF check, or the
/// session layer) buffers it, so one client cannot make Berth hold megabytes per request.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads at most [`MAX_BODY_BYTES`] of the request body, then hands the request on with the
/// body in memory. Refuses a bigger one with 413, whether it announced its length or not
/// (chunked bodies are counted as they arrive).
pub async fn cap_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large(&request);
    }
    let (parts, body) = request.into_parts();
    match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(error) => {
            let request = Request::from_parts(parts, Body::empty());
            if is_length_limit(&error) {
                too_large(&request)
            } else {
                tracing::debug!(%error, "could not read a request body");
                (
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                )
                    .into_response()
            }
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// 413 in the shape the caller reads: the API's JSON error, a page for a browser's form
/// post, plain text for a server function called from the page's script.
fn too_large(request: &Request) -> Response {
    let limit_kib = MAX_BODY_BYTES / 1024;
    let message = format!("The request body is larger than {limit_kib} KiB, Berth's limit.");
    tracing::warn!(path = %request.uri().path(), "request refused: body larger than {limit_kib} KiB");
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if request.uri().path().starts_with("/api/v1/") {
        let body = ErrorBody {
            error: ErrorView {
                kind: "too_large".into(),
                message: format!("{message} Send a smaller body."),
                field: Some("body".into()),
                reason: None,
                problems: Vec::new(),
            },
        };
        (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
    } else if wants_html {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Html(format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Too large · Berth</title></head>\
                 <body><main><h1>The form is too large</h1><p>{message} Shorten what you entered and submit the form again.</p>\
                 <p><a href=\"/\">Back to Berth</a></p></main></body></html>"
            )),
        )
            .into_response()
    } else {
        (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
    }
}

/// The Content-Security-Policy of every answer that is not a page rendered by the app
/// (API answers, static files, error pages): it may load nothing and run nothing. Pages set
/// their own, with the nonce of their hydration scripts (see `app::csp`).
const NOTHING_POLICY: &str =
    "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every answer: a Content-Security-Policy (unless the page set
/// its own), no framing, no MIME sniffing, and no referrer sent to other sites (page URLs
/// name teams and apps).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if is_html(&response)
        && !response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY)
    {
        response = with_page_policy(response).await;
    }
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, NOTHING_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Whether the answer is an HTML page.
pub(crate) fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// The largest rendered page whose policy is read back from its body (see below).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// A page is meant to carry its policy (`app::csp::set_page_policy`, from the shell), but a
/// page whose header was not set in time (seen once in a browser test after signing out)
/// would get the nothing-allowed policy and never hydrate. Such a page is read whole and
/// given the page policy with the nonce its own scripts carry; without a nonce in it, the
/// nothing-allowed policy stays.
async fn with_page_policy(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, "a page could not be read for its security policy");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response();
        }
    };
    if let Some(value) =
        nonce_in(&bytes).and_then(|nonce| HeaderValue::from_str(&app::csp::page_policy(nonce)).ok())
    {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The first `nonce="…"` of a page, when it looks like one (base64 characters only).
fn nonce_in(page: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(page).ok()?;
    let start = text.find("nonce=\"")? + "nonce=\"".len();
    let nonce = &text[start..start + text[start..].find('"')?];
    let plausible = !nonce.is_empty()
        && nonce.len() <= 128
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    plausible.then_some(nonce)
}

#[cfg(test)]
mod nonce_tests {
    use super::nonce_in;

    #[test]
    fn the_nonce_of_a_page_is_read_and_odd_ones_are_not() {
        assert_eq!(
            nonce_in(b"<script nonce=\"abc+/=_-9\">x</script><script nonce=\"zzz\">"),
            Some("abc+/=_-9")
        );
        assert_eq!(nonce_in(b"<script>x</script>"), None);
        assert_eq!(nonce_in(b"<script nonce=\"a b\">"), None);
        assert_eq!(nonce_in(b"<script nonce=\"\">"), None);
    }
}
