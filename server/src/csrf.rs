//! Cross-site request forgery protection for every state-changing request made with the
//! session cookie (form posts and server functions).
//!
//! Two independent checks, so that one browser quirk cannot open the door:
//! 1. Fetch metadata / origin: a browser says where a request comes from
//!    (`Sec-Fetch-Site`, else `Origin`); anything but same-origin is refused.
//! 2. A synchroniser token: each session has a random token that the pages put in every form
//!    (`csrf_token`), masked afresh on each page (`service::csrf`: pages are compressed);
//!    the request must carry it (form field or `X-CSRF-Token` header). A visitor who is not
//!    signed in has no session in the database (reading pages writes nothing): their token
//!    is kept in a cookie of its own, [`VisitorCookie`], and a form they post must carry the
//!    token of the cookie it comes with (the sign-in and sign-up forms). Signing in starts
//!    a session with a new token, and from then on only the session's counts.
//!
//! The JSON API under `/api/v1` is exempt: it authenticates with bearer tokens only and never
//! reads the session cookie, so a forged cross-site request carries no credentials.
//! Server functions that only read are GETs (`#[server(input = GetUrl)]`), so like every
//! GET they pass: they change nothing.

use app::ssr::{keys, VisitorToken};
use axum::{
    body::{to_bytes, Body},
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use tower_sessions::{
    cookie::{time::Duration, Cookie, SameSite},
    Session,
};

/// The cookie that holds the form token of a visitor who is not signed in. Over HTTPS it is
/// named `__Host-berth_form`: a browser then accepts it only from this host, sent securely,
/// for the whole site, so a neighbouring subdomain cannot plant a token of its choosing.
#[derive(Clone, Copy, Debug)]
pub struct VisitorCookie {
    secure: bool,
}

impl VisitorCookie {
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    fn name(self) -> &'static str {
        if self.secure {
            "__Host-berth_form"
        } else {
            "berth_form"
        }
    }

    /// The token the request's cookie holds, if it is one Berth could have made (32 ASCII
    /// letters and digits); anything else is as good as no cookie.
    fn read(self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == self.name())
            .map(|cookie| cookie.value().to_owned())
            .filter(|token| token.len() == 32 && token.bytes().all(|b| b.is_ascii_alphanumeric()))
    }

    fn set(self, token: &str) -> Option<HeaderValue> {
        let cookie = Cookie::build((self.name(), token.to_owned()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(Duration::days(14))
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}

/// Gives the request its visitor token (the cookie's, or a new one), sets the cookie when a
/// new token went out in the answer, and refuses a state-changing request without the right
/// token.
pub async fn protect(
    State(cookie): State<VisitorCookie>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let held = cookie.read(request.headers());
    let visitor = VisitorToken::new(held.clone());
    request.extensions_mut().insert(visitor.clone());
    let fresh = held.is_none();
    let mut response = check(session, held, request, next).await;
    // A new token goes out with every page (every page's frame holds the form token, though
    // it may be streamed after this answer's head is sent), and with any other answer that
    // handed it out (a server function's, read by the page's script).
    if fresh && (visitor.handed_out() || crate::edge::is_html(&response)) {
        if let Some(value) = cookie.set(visitor.token()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn check(session: Session, held: Option<String>, request: Request, next: Next) -> Response {
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
        Ok(None) => match held {
            Some(token) => token,
            None => return refuse("This browser has no form token yet."),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn the_visitor_cookie_is_read_only_when_berth_could_have_made_it() {
        let plain = VisitorCookie::new(false);
        let token = "abcdefghijklmnopqrstuvwxyz012345";
        let read = |cookies: &[&str]| plain.read(&headers(cookies));
        assert_eq!(
            read(&[&format!("berth_form={token}")]).as_deref(),
            Some(token)
        );
        // Among others, in one header or several.
        assert_eq!(
            read(&[&format!("berth_session=x; berth_form={token}; other=1")]).as_deref(),
            Some(token)
        );
        assert_eq!(
            read(&["berth_session=x", &format!("berth_form={token}")]).as_deref(),
            Some(token)
        );
        // Too short, too long, or not letters and digits: as good as none.
        for value in [
            "",
            "short",
            &format!("{token}6"),
            "abcdefghijklmnopqrstuvwxyz01234%",
            "abcdefghijklmnopqrstuvwxyz01234-",
        ] {
            assert_eq!(read(&[&format!("berth_form={value}")]), None, "{value}");
        }
        assert_eq!(read(&[]), None);
        // Over HTTPS only the host-bound name counts.
        let secure = VisitorCookie::new(true);
        assert_eq!(
            secure.read(&headers(&[&format!("berth_form={token}")])),
            None
        );
        assert_eq!(
            secure
                .read(&headers(&[&format!("__Host-berth_form={token}")]))
                .as_deref(),
            Some(token)
        );
    }

    #[test]
    fn the_visitor_cookie_is_http_only_same_site_and_host_bound_over_https() {
        let token = "abcdefghijklmnopqrstuvwxyz012345";
        let plain = VisitorCookie::new(false).set(token).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(
            plain.starts_with(&format!("berth_form={token};")),
            "{plain}"
        );
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
            assert!(plain.contains(part), "{plain}");
        }
        assert!(
            !plain.contains("Secure") && !plain.contains("Domain"),
            "{plain}"
        );
        let secure = VisitorCookie::new(true).set(token).unwrap();
        let secure = secure.to_str().unwrap();
        assert!(secure.starts_with("__Host-berth_form="), "{secure}");
        assert!(
            secure.contains("Secure") && secure.contains("Path=/") && !secure.contains("Domain"),
            "{secure}"
        );
    }
}
