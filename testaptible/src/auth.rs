//! The auth server: the password grant and the current-token check.

use crate::{authenticate, clock, error, hal, no_route, RecordedRequest, Shared, Token};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Map, Value};

/// The longest token the stand-in issues, whatever `expires_in` asks.
const MAX_LIFETIME_SECONDS: i64 = 7 * 24 * 3600;

pub(crate) fn route(shared: &Shared, request: &RecordedRequest) -> Response {
    match (request.method.as_str(), request.path_only()) {
        ("POST", "/tokens") => grant(shared, request),
        ("GET", "/current_token") => match authenticate(shared, request) {
            Ok(token) => {
                let presented = request
                    .header("authorization")
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                hal(StatusCode::OK, token_resource(shared, &presented, &token))
            }
            Err(refusal) => refusal.into_response(),
        },
        _ => no_route(),
    }
}

/// The grant's fields, from a JSON body (the dashboard, go-deploy, Berth) or a form (the
/// CLI's oauth2 gem).
fn fields(request: &RecordedRequest) -> Map<String, Value> {
    let json_body = request
        .header("content-type")
        .is_some_and(|kind| kind.contains("json"));
    if json_body {
        return match request.json() {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
    }
    form_urlencoded::parse(request.body.as_bytes())
        .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
        .collect()
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

fn grant(shared: &Shared, request: &RecordedRequest) -> Response {
    let fields = fields(request);
    if text(&fields, "grant_type") != Some("password") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported",
        );
    }
    let username = text(&fields, "username").unwrap_or("");
    let password = text(&fields, "password").unwrap_or("");
    let Some(user) = shared
        .users
        .iter()
        .find(|user| user.email.eq_ignore_ascii_case(username) && user.password == password)
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid email or password",
        );
    };
    if let Some(code) = &user.otp {
        let previous = text(&fields, "previous_login_attempt_id");
        let known_attempt = previous.is_none_or(|id| {
            shared
                .lock()
                .login_attempts
                .iter()
                .any(|attempt| attempt == id)
        });
        if text(&fields, "otp_token") != Some(code.as_str()) || !known_attempt {
            let attempt = {
                let mut state = shared.lock();
                let attempt = format!("attempt-{}", state.login_attempts.len() + 1);
                state.login_attempts.push(attempt.clone());
                attempt
            };
            // As the dashboard's mocks answer it (400); the CLI goes by the error id.
            return crate::hal(
                StatusCode::BAD_REQUEST,
                json!({
                    "code": 400,
                    "error": "otp_token_required",
                    "message": "You must provide a 2FA token",
                    "exception_context": {"failed_login_attempt_id": attempt},
                }),
            );
        }
    }
    let lifetime = match fields.get("expires_in") {
        Some(Value::Number(seconds)) => seconds.as_i64(),
        Some(Value::String(seconds)) => seconds.parse().ok(),
        _ => None,
    }
    .filter(|seconds| *seconds > 0)
    .unwrap_or(MAX_LIFETIME_SECONDS)
    .min(MAX_LIFETIME_SECONDS);
    let scope = text(&fields, "scope").unwrap_or("manage").to_owned();
    let access_token = mint_with_scope(shared, &user.email, lifetime, &scope);
    let record = shared.lock().tokens[&access_token].clone();
    hal(
        StatusCode::CREATED,
        token_resource(shared, &access_token, &record),
    )
}

/// The token resource, as `POST /tokens` and `GET /current_token` answer it.
fn token_resource(shared: &Shared, access_token: &str, token: &Token) -> Value {
    let auth = &shared.auth_url;
    json!({
        "_type": "token",
        "id": token_id(access_token),
        "access_token": access_token,
        "token_type": "bearer",
        "scope": token.scope,
        "expires_in": token.expires_at - token.created_at,
        "expires_at": clock::iso8601(token.expires_at),
        "created_at": clock::iso8601(token.created_at),
        "_links": {
            "self": {"href": format!("{auth}/tokens/{}", token_id(access_token))},
            "user": {"href": format!("{auth}/users/{}", user_id(&token.email))},
        },
    })
}

fn token_id(access_token: &str) -> String {
    let digest: u64 = access_token
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
    format!("{digest:016x}")
}

fn user_id(email: &str) -> String {
    token_id(email)
}

/// A new live token for `email`: shaped like Aptible's (a JWT with `exp` and `scope`),
/// unsigned, since only this stand-in reads it.
pub(crate) fn mint(shared: &Shared, email: &str, lifetime_seconds: i64) -> String {
    mint_with_scope(shared, email, lifetime_seconds, "manage")
}

fn mint_with_scope(shared: &Shared, email: &str, lifetime_seconds: i64, scope: &str) -> String {
    let now = clock::now_seconds();
    let mut state = shared.lock();
    state.next_token += 1;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({
            "sub": email,
            "scope": scope,
            "iat": now,
            "exp": now + lifetime_seconds,
            "jti": format!("testaptible-{}", state.next_token),
        })
        .to_string(),
    );
    let token = format!("{header}.{claims}.stand-in");
    state.tokens.insert(
        token.clone(),
        Token {
            email: email.to_owned(),
            scope: scope.to_owned(),
            created_at: now,
            expires_at: now + lifetime_seconds,
            expired: false,
        },
    );
    token
}
