//! The API: apps, environments, operations and their logs.

use crate::{
    authenticate, clock, error, hal, no_route, App, RecordedRequest, Refusal, Shared,
    FAIL_THIS_OPERATION,
};
use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// An operation the stand-in is "running".
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    id: i64,
    app_id: i64,
    kind: String,
    env: BTreeMap<String, String>,
    image: Option<String>,
    git_ref: Option<String>,
    polls: u32,
    cancelled: bool,
    doomed: bool,
    created_at: i64,
}

impl Operation {
    /// `queued` until polled, `running` for two polls, then its outcome.
    fn status(&self) -> &'static str {
        match self.polls {
            0 => "queued",
            1 | 2 => "running",
            _ if self.doomed || self.cancelled => "failed",
            _ => "succeeded",
        }
    }

    fn finished(&self) -> bool {
        self.polls >= 3
    }
}

pub(crate) fn route(shared: &Shared, request: &RecordedRequest) -> Response {
    let path = request.path_only().trim_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let method = request.method.as_str();
    if method == "GET" && segments.first() == Some(&"_logs") {
        return download_log(shared, request);
    }
    if segments.as_slice() == ["find", "app"] && !shared.find_app_route {
        return no_route();
    }
    if let Err(refusal) = authenticate(shared, request) {
        return refusal.into_response();
    }
    let id = |text: &str| text.parse::<i64>().ok();
    match (method, segments.as_slice()) {
        ("GET", ["find", "app"]) => find_app(shared, request),
        ("GET", ["apps"]) => list_apps(shared, request),
        ("GET", ["apps", app]) => match id(app).and_then(|id| app_by_id(shared, id)) {
            Some(app) => hal(StatusCode::OK, app_resource(shared, app)),
            None => not_found("app"),
        },
        ("GET", ["accounts", account]) => {
            match id(account).and_then(|id| Some((id, shared.environment_handle(id)?))) {
                Some((id, handle)) => hal(StatusCode::OK, account_resource(shared, id, handle)),
                None => not_found("account"),
            }
        }
        ("POST", ["apps", app, "operations"]) => match id(app).and_then(|id| app_by_id(shared, id))
        {
            Some(app) => create_operation(shared, app.id, request),
            None => not_found("app"),
        },
        ("GET", ["operations", operation]) => with_operation(shared, operation, |operation| {
            operation.polls += 1;
        }),
        ("PUT", ["operations", operation]) => {
            if request.json().get("cancelled") != Some(&Value::Bool(true)) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable_entity",
                    "Only {\"cancelled\": true} may be updated",
                );
            }
            with_operation(shared, operation, |operation| operation.cancelled = true)
        }
        ("GET", ["operations", operation, "logs"]) => match id(operation) {
            Some(id) if shared.lock().operations.contains_key(&id) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "{}/_logs/{id}?X-Amz-Signature={}",
                    shared.logs_url,
                    signature(id)
                ),
            )
                .into_response(),
            _ => not_found("operation"),
        },
        _ => no_route(),
    }
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("Couldn't find {what}"),
    )
}

fn app_by_id(shared: &Shared, id: i64) -> Option<&App> {
    shared.apps.iter().find(|app| app.id == id)
}

fn query(request: &RecordedRequest) -> BTreeMap<String, String> {
    let query = request.path.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn find_app(shared: &Shared, request: &RecordedRequest) -> Response {
    let query = query(request);
    let handle = query.get("handle").map(String::as_str).unwrap_or("");
    let environment = query.get("environment").map(String::as_str);
    let found: Vec<&App> = shared
        .apps
        .iter()
        .filter(|app| app.handle == handle)
        .filter(|app| {
            environment.is_none_or(|e| shared.environment_handle(app.environment_id) == Some(e))
        })
        .collect();
    match found.as_slice() {
        [] => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Couldn't find app with handle {handle}"),
        ),
        [app] => hal(StatusCode::OK, app_resource(shared, app)),
        _ => error(
            StatusCode::BAD_REQUEST,
            "multiple_resources_found",
            &format!("Multiple apps with handle {handle} exist; specify an environment"),
        ),
    }
}

fn list_apps(shared: &Shared, request: &RecordedRequest) -> Response {
    let page: usize = query(request)
        .get("page")
        .and_then(|page| page.parse().ok())
        .filter(|page| *page >= 1)
        .unwrap_or(1);
    let size = shared.page_size;
    let apps: Vec<Value> = shared
        .apps
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|app| app_resource(shared, app))
        .collect();
    let mut links = json!({"self": {"href": format!("{}/apps?page={page}", shared.api_url)}});
    if page * size < shared.apps.len() {
        links["next"] = json!({"href": format!("{}/apps?page={}", shared.api_url, page + 1)});
    }
    if page > 1 {
        links["prev"] = json!({"href": format!("{}/apps?page={}", shared.api_url, page - 1)});
    }
    hal(
        StatusCode::OK,
        json!({
            "_embedded": {"apps": apps},
            "_links": links,
            "current_page": page,
            "per_page": size,
            "total_count": shared.apps.len(),
        }),
    )
}

fn app_resource(shared: &Shared, app: &App) -> Value {
    let api = &shared.api_url;
    json!({
        "_type": "app",
        "id": app.id,
        "handle": app.handle,
        "git_repo": app.git_repo,
        "status": "provisioned",
        "deployment_method": null,
        "_links": {
            "self": {"href": format!("{api}/apps/{}", app.id)},
            "account": {"href": format!("{api}/accounts/{}", app.environment_id)},
            "operations": {"href": format!("{api}/apps/{}/operations", app.id)},
        },
    })
}

fn account_resource(shared: &Shared, id: i64, handle: &str) -> Value {
    let api = &shared.api_url;
    json!({
        "_type": "account",
        "id": id,
        "handle": handle,
        "_links": {
            "self": {"href": format!("{api}/accounts/{id}")},
            "apps": {"href": format!("{api}/accounts/{id}/apps")},
        },
    })
}

/// `env`, `settings` and `sensitive_settings` must be objects of strings, as Aptible's
/// schema has them.
fn string_map(body: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, String>, Refusal> {
    let invalid = |what: &str| {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            format!("{key} {what}"),
        )
    };
    match body.get(key) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), text.clone())),
                _ => Err(invalid("values must be strings")),
            })
            .collect(),
        Some(_) => Err(invalid("must be an object")),
    }
}

fn create_operation(shared: &Shared, app_id: i64, request: &RecordedRequest) -> Response {
    let Value::Object(body) = request.json() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The body must be a JSON object",
        );
    };
    let Some(kind) = body.get("type").and_then(Value::as_str).map(str::to_owned) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "type is required",
        );
    };
    let (env, settings) = match (string_map(&body, "env"), string_map(&body, "settings")) {
        (Ok(env), Ok(settings)) => (env, settings),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    if let Err(refusal) = string_map(&body, "sensitive_settings") {
        return refusal.into_response();
    }
    let image = settings.get("APTIBLE_DOCKER_IMAGE").cloned();
    let doomed = env.contains_key(FAIL_THIS_OPERATION)
        || image.as_deref().is_some_and(|image| image.contains("fail"));
    let operation = {
        let mut state = shared.lock();
        let id = state.next_operation;
        state.next_operation += 1;
        let operation = Operation {
            id,
            app_id,
            kind,
            env,
            image,
            git_ref: body
                .get("git_ref")
                .and_then(Value::as_str)
                .map(str::to_owned),
            polls: 0,
            cancelled: false,
            doomed,
            created_at: clock::now_seconds(),
        };
        state.operations.insert(id, operation.clone());
        operation
    };
    hal(StatusCode::CREATED, operation_resource(shared, &operation))
}

fn with_operation(shared: &Shared, id: &str, change: impl FnOnce(&mut Operation)) -> Response {
    let operation = {
        let mut state = shared.lock();
        let Some(operation) = id
            .parse::<i64>()
            .ok()
            .and_then(|id| state.operations.get_mut(&id))
        else {
            return not_found("operation");
        };
        change(operation);
        operation.clone()
    };
    hal(StatusCode::OK, operation_resource(shared, &operation))
}

/// The operation as the API shows it. Like Aptible's, it does not echo `env` values here.
fn operation_resource(shared: &Shared, operation: &Operation) -> Value {
    let api = &shared.api_url;
    let environment = app_by_id(shared, operation.app_id)
        .map(|app| app.environment_id)
        .unwrap_or(0);
    json!({
        "_type": "operation",
        "id": operation.id,
        "type": operation.kind,
        "status": operation.status(),
        "cancelled": operation.cancelled,
        "aborted": false,
        "git_ref": operation.git_ref,
        "docker_ref": operation.image,
        "created_at": clock::iso8601(operation.created_at),
        "updated_at": clock::iso8601(clock::now_seconds()),
        "_links": {
            "self": {"href": format!("{api}/operations/{}", operation.id)},
            "logs": {"href": format!("{api}/operations/{}/logs", operation.id)},
            "resource": {"href": format!("{api}/apps/{}", operation.app_id)},
            "account": {"href": format!("{api}/accounts/{environment}")},
        },
    })
}

/// Stands for the signature of an S3 presigned URL: the download needs it, not a token.
fn signature(id: i64) -> String {
    format!("{:016x}", (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// `GET /_logs/{id}?X-Amz-Signature=…`, the URL `GET /operations/{id}/logs` answers.
pub(crate) fn download_log(shared: &Shared, request: &RecordedRequest) -> Response {
    let id = request
        .path_only()
        .strip_prefix("/_logs/")
        .and_then(|id| id.parse::<i64>().ok());
    let Some(id) = id else {
        return no_route();
    };
    // S3 refuses a presigned URL that also carries an Authorization header.
    if request.header("authorization").is_some() {
        return (
            StatusCode::BAD_REQUEST,
            "InvalidArgument: Only one auth mechanism allowed",
        )
            .into_response();
    }
    if query(request).get("X-Amz-Signature") != Some(&signature(id)) {
        return (StatusCode::FORBIDDEN, "AccessDenied").into_response();
    }
    let state = shared.lock();
    let Some(operation) = state.operations.get(&id) else {
        return (StatusCode::NOT_FOUND, "NoSuchKey").into_response();
    };
    let mut log = String::new();
    while log.len() < state.log_padding {
        log.push_str("INFO -- : (earlier output the stand-in pads the log with)\n");
    }
    let stamp = clock::iso8601(operation.created_at);
    let mut line = |text: String| log.push_str(&format!("{stamp} INFO -- : {text}\n"));
    line(format!(
        "Starting App {} operation with ID: {}",
        operation.kind, operation.id
    ));
    if let Some(image) = &operation.image {
        line(format!("Pulling from {image}"));
    }
    if let Some(git_ref) = &operation.git_ref {
        line(format!("Building git ref {git_ref}"));
    }
    for (key, value) in &operation.env {
        line(format!("Configuration: {key}={value}"));
    }
    line(if operation.finished() {
        format!("Operation {}.", operation.status())
    } else {
        "Operation in progress.".to_owned()
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        log,
    )
        .into_response()
}
