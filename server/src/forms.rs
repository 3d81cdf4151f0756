//! Plain HTML form posts (no JavaScript) that a server function refuses: post/redirect/get
//! through the session. Leptos sends the browser back to the form's page with the error in
//! the address (`?__path=…&__err=…`, which stays in the history and comes back on reload)
//! and forgets what was typed. Here the error goes into the session instead, with the
//! fields that are not secret ([`app::ssr::ECHOED_FIELDS`]), and the browser is sent to the
//! clean address; the next page at that address shows the error once, next to its field,
//! with the form filled in again ([`app::ssr::provide_form_flash`]).

use app::ssr::{keys, FormFlash, ECHOED_FIELDS};
use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

/// The most of a form post read to find what was typed (the body cap applies before).
const FORM_LIMIT: usize = 1024 * 1024;

/// A flash older than this is dropped rather than shown (the person went elsewhere).
const FLASH_MAX_AGE_MS: i64 = 10 * 60 * 1000;

pub async fn carry_errors(session: Session, request: Request, next: Next) -> Response {
    let accepts_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let path = request.uri().path();
    let server_fn_post = request.method() == Method::POST
        && path.starts_with("/api/")
        && !path.starts_with("/api/v1/");
    if !accepts_html {
        return next.run(request).await;
    }
    if server_fn_post {
        return plain_post(session, request, next).await;
    }
    if request.method() == Method::GET {
        return page(session, request, next).await;
    }
    next.run(request).await
}

/// A page: the flash left for it, if any, goes into the request for the app to show.
async fn page(session: Session, mut request: Request, next: Next) -> Response {
    if let Ok(Some(flash)) = session.get::<FormFlash>(keys::FORM_FLASH).await {
        if flash.page == request.uri().path() {
            let _ = session.remove::<FormFlash>(keys::FORM_FLASH).await;
            if store::now_ms() - flash.at <= FLASH_MAX_AGE_MS {
                request.extensions_mut().insert(flash);
            }
        }
    }
    next.run(request).await
}

async fn plain_post(session: Session, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large to send.",
            )
                .into_response()
        }
    };
    let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes)
        .filter(|(name, _)| ECHOED_FIELDS.contains(&name.as_ref()))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let Some(location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return response;
    };
    let Some((clean, server_fn, error)) = split_error(location) else {
        return response;
    };
    let page = clean.split(['?', '#']).next().unwrap_or("/").to_owned();
    let flash = FormFlash {
        page,
        server_fn,
        error,
        fields,
        at: store::now_ms(),
    };
    if let Err(error) = session.insert(keys::FORM_FLASH, &flash).await {
        tracing::warn!(%error, "could not keep a form's error in the session");
        return response;
    }
    let Ok(clean) = HeaderValue::from_str(&clean) else {
        return response;
    };
    response.headers_mut().insert(header::LOCATION, clean);
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// A redirect target with Leptos's error parameters: the target without them (a path,
/// with the rest of its query), the server function's path and its encoded error.
fn split_error(location: &str) -> Option<(String, String, String)> {
    let (before_hash, hash) = match location.split_once('#') {
        Some((before, hash)) => (before, Some(hash)),
        None => (location, None),
    };
    let (target, query) = before_hash.split_once('?')?;
    let mut server_fn = None;
    let mut error = None;
    let mut kept = form_urlencoded::Serializer::new(String::new());
    let mut any_kept = false;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "__path" => server_fn = Some(value.into_owned()),
            "__err" => error = Some(value.into_owned()),
            _ => {
                kept.append_pair(&name, &value);
                any_kept = true;
            }
        }
    }
    let (server_fn, error) = (server_fn?, error?);
    // Only a path on this site is followed (the referer's own host is dropped).
    let path = match target.find("://") {
        Some(scheme_end) => {
            let rest = &target[scheme_end + 3..];
            rest.find('/').map(|slash| &rest[slash..]).unwrap_or("/")
        }
        None => target,
    };
    let path = if path.starts_with('/') && !path.starts_with("//") {
        path
    } else {
        "/"
    };
    let mut clean = path.to_owned();
    if any_kept {
        clean.push('?');
        clean.push_str(&kept.finish());
    }
    if let Some(hash) = hash {
        clean.push('#');
        clean.push_str(hash);
    }
    Some((clean, server_fn, error))
}

#[cfg(test)]
mod tests {
    use super::split_error;

    #[test]
    fn the_error_parameters_leave_the_address_and_the_rest_stays() {
        let (clean, path, error) =
            split_error("http://127.0.0.1:3000/teams/acme/apps/web?tab=deploy&__path=%2Fapi%2Fdeploy&__err=eyJ9#deploy")
                .unwrap();
        assert_eq!(clean, "/teams/acme/apps/web?tab=deploy#deploy");
        assert_eq!(path, "/api/deploy");
        assert_eq!(error, "eyJ9");
        let (clean, ..) = split_error("/signin?__path=%2Fapi%2Fsign_in&__err=x").unwrap();
        assert_eq!(clean, "/signin");
        assert!(split_error("/signin?next=%2F").is_none());
        // Another site's address (a forged referer) is not followed.
        let (clean, ..) = split_error("//evil.example/x?__path=a&__err=b").unwrap();
        assert_eq!(clean, "/");
    }
}
