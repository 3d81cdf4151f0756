//! Cross-site request forgery protection for every state-changing request made with the
//! session cookie (form posts and server functions).
//!
//! Two independent checks, so that one browser quirk cannot open the door:
//! 1. Fetch metadata / origin: a browser says where a request comes from
//!    (`Sec-Fetch-Site`, else `Origin`); anything but same-origin is refused.
//! 2. A synchroniser token: each session has a random token that the pages put in every form
//!    (`csrf_token`), masked afresh on each page (`service::csrf`: pages are compressed);
//!    the request must carry it (form field or `X-CSRF-Token` header).
//!
//! The JSON API under `/api/v1` is exempt: it authenticates with bearer tokens only and never
//! reads the session cookie, so a forged cross-site request carries no credentials.
//! Server functions that only read are GETs (`#[server(input = GetUrl)]`), so like every
//! GET they pass: they change nothing.

use app::ssr::keys;
use axum::{
    body::{to_bytes, Body},
    extract::Request,
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use tower_sessions::Session;

pub async fn protect(session: Session, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || request.uri().path().starts_with("/api/v1/")
    {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        return refuse("This request came from another site.");
    }
    let expected = match session.get::<String>(keys::CSRF_TOKEN).await {
        Ok(Some(token)) => token,
        Ok(None) => return refuse("Your session has no form token yet."),
        Err(error) => {
            tracing::error!(%error, "session store error in CSRF check");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "session store unavailable",
            )
                .into_response();
        }
    };
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request, provided) = match header_token {
        Some(token) => (request, Some(token)),
        None => match form_token(request).await {
            Ok(pair) => pair,
            Err(response) => return response,
        },
    };
    match provided {
        Some(token) if service::csrf::matches(&token, &expected) => next.run(request).await,
        _ => refuse("The form token is missing or out of date."),
    }
}

/// True unless the browser says the request is cross-origin.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        // "none": typed in the address bar or a bookmark; never a form on another site.
        return matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, origin_host)| origin_host == host),
        (Some(_), None) => false,
        // Neither header: not a browser request (browsers send Origin on every POST); the
        // token check below still applies.
        (None, _) => true,
    }
}

/// Reads the `csrf_token` field of a form body, and rebuilds the request for the handler.
async fn form_token(request: Request) -> Result<(Request, Option<String>), Response> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    // `edge::cap_body` already refused bodies over the limit; this bound only keeps the read
    // bounded should this check ever run without it.
    let bytes = to_bytes(body, crate::edge::MAX_BODY_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn refuse(reason: &str) -> Response {
    tracing::warn!(reason, "request refused by CSRF protection");
    (
        StatusCode::FORBIDDEN,
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Request refused · Berth</title></head>\
             <body><main><h1>Request refused</h1><p>{reason} Reload the page and submit the form again.</p>\
             <p><a href=\"/\">Back to Berth</a></p></main></body></html>"
        )),
    )
        .into_response()
}
