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
