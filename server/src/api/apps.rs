//! `/api/v1/teams/{team}/apps` and `/api/v1/operations`: apps, deploys, configuration,
//! restarts and the history CI pipelines read. Credentials go in and never come out.

use super::{ApiResult, ApiUser, Body, Path, Query};
use crate::router::AppState;
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use service::{
    apps, builds,
    config::{ConfigChanges, ConfigInput},
    deploys::{self, DeployFields, DeployRequest},
    history::{self, HistoryFilter},
    operations, present,
};
use utoipa::{IntoParams, ToSchema};
use views::{
    api::{
        AppBody, AppsBody, BasesBody, BasesRequest, ConfigBody, OperationBody, OperationsBody,
        RefsBody,
    },
    AppError,
};

#[derive(Deserialize, ToSchema)]
pub struct NewApp {
    /// Lower-case letters, digits and dashes.
    #[serde(default)]
    #[schema(required = true)]
    handle: String,
    #[serde(default)]
    #[schema(required = true, value_type = domain::DeployMethod)]
    method: String,
    /// The path a new release must answer before it takes traffic (default `/`).
    health_path: Option<String>,
    /// The repository of a Dockerfile app (required for `dockerfile`).
    git: Option<GitBody>,
    /// Where the app runs: `{"kind": "local"}` (the default) or `{"kind": "aptible",
    /// "environment", "app"}` (an existing app of an Aptible environment; the team must be
    /// connected to Aptible).
    platform: Option<NewAppPlatform>,
}

/// `"platform": {"kind": "local" | "aptible", "environment"?, "app"?, "verify_images"?}`
#[derive(Deserialize, ToSchema)]
pub struct NewAppPlatform {
    #[serde(default)]
    #[schema(required = true, value_type = domain::PlatformKind)]
    kind: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    app: String,
    /// Aptible: verify image deploys against their registry before forwarding them
    /// (default `true`; `false` for registries only Aptible can reach, and then no digest
    /// is recorded).
    verify_images: Option<bool>,
}

/// `"git": {"url", "dockerfile"?, "context"?, "username"?, "password"?}`
#[derive(Deserialize, ToSchema)]
pub struct GitBody {
    #[serde(default)]
    #[schema(required = true)]
    url: String,
    #[serde(default)]
    dockerfile: String,
    #[serde(default)]
    context: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /api/v1/teams/{team}/apps` `{"handle", "method", "health_path"?, "git"?}` → 201.
#[utoipa::path(post, path = "/api/v1/teams/{team}/apps", tag = "apps", summary = "Create an app",
    params(("team" = String, Path, description = "The team's handle.")), request_body = NewApp,
    responses((status = 201, description = "The new app.", body = AppBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<NewApp>,
) -> ApiResult<(StatusCode, Json<AppBody>)> {
    let git = body.git.map(|g| builds::GitInput {
        url: g.url,
        dockerfile: g.dockerfile,
        context: g.context,
        username: g.username,
        password: g.password,
    });
    let (_, app) = apps::create(
        &state.berth,
        user.id,
        &team,
        apps::NewAppInput {
            handle: &body.handle,
            method: &body.method,
            health_path: body.health_path.as_deref(),
            git,
            platform: body.platform.as_ref().map(|p| apps::PlatformInput {
                kind: &p.kind,
                environment: &p.environment,
                app: &p.app,
                verify_images: p.verify_images.unwrap_or(true),
            }),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AppBody {
            app: apps::view(&state.berth, &app).await?,
        }),
    ))
}

/// `GET /api/v1/teams/{team}/apps`
#[utoipa::path(get, path = "/api/v1/teams/{team}/apps", tag = "apps", summary = "List the team's apps",
    params(("team" = String, Path, description = "The team's handle.")), responses((status = 200, description = "The apps with their releases and last operations.", body = AppsBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<AppsBody>> {
    Ok(Json(AppsBody {
        apps: apps::list_view(&state.berth, user.id, &team).await?,
    }))
}

/// `GET /api/v1/teams/{team}/apps/{app}` → the app with its current release.
#[utoipa::path(get, path = "/api/v1/teams/{team}/apps/{app}", tag = "apps", summary = "Show an app",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")), responses((status = 200, description = "The app, its release and the credentials it deploys with (names only).", body = AppBody)))]
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<Json<AppBody>> {
    let (_, app) = apps::get(&state.berth, user.id, &team, &handle).await?;
    Ok(Json(AppBody {
        app: apps::view(&state.berth, &app).await?,
    }))
}

fn operation_body(team: &str, operation: store::Operation) -> Json<OperationBody> {
    Json(OperationBody {
        operation: present::operation(team, operation),
    })
}

/// Configuration changes as JSON: `{"KEY": "value" | {"value": "…", "plain": true} | null}`.
/// A bare value is secret; only the object form with `"plain": true` sets a plain one.
fn env_changes(env: Option<Map<String, Value>>) -> ApiResult<ConfigChanges> {
    let scalar = |value: Value| match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let changes = env
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let malformed = || {
                AppError::invalid(
                    "env",
                    format!(
                        "{key}: give a string to set a secret value, {{\"value\": \"…\", \"plain\": true}} to set a plain (visible) one, or null to unset it."
                    ),
                )
            };
            let input = match value {
                Value::Null => ConfigInput::Unset,
                Value::Object(mut object) => {
                    let plain = match object.remove("plain") {
                        None | Some(Value::Null) => false,
                        Some(Value::Bool(plain)) => plain,
                        Some(_) => return Err(malformed()),
                    };
                    let value = object.remove("value").and_then(scalar);
                    match (value, object.is_empty()) {
                        (Some(value), true) if plain => ConfigInput::Plain(value),
                        (Some(value), true) => ConfigInput::Secret(value),
                        _ => return Err(malformed()),
                    }
                }
                other => ConfigInput::Secret(scalar(other).ok_or_else(malformed)?),
            };
            Ok((key, input))
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(ConfigChanges::parse_inputs(changes)?)
}

#[derive(Deserialize, ToSchema)]
pub struct NewDeploy {
    /// For an image app: `registry/namespace/repo:tag` or `…@sha256:…`.
    image: Option<String>,
    /// For a Dockerfile app: the branch, tag or commit to build.
    git_ref: Option<String>,
    credential: Option<String>,
    registry_username: Option<String>,
    registry_password: Option<String>,
    /// Default true: remember the given registry credentials on the app.
    remember_credentials: Option<bool>,
    /// Configuration changes riding along: `{"KEY": "value"}` sets a secret value,
    /// `{"KEY": {"value": "…", "plain": true}}` a plain (visible) one, `{"KEY": null}` unsets.
    #[schema(value_type = Option<std::collections::HashMap<String, Option<String>>>)]
    env: Option<Map<String, Value>>,
    /// For a Dockerfile app: the registry (one a `FROM` names) that gets
    /// `APTIBLE_PRIVATE_REGISTRY_*`; it becomes `APTIBLE_PRIVATE_REGISTRY_HOST`.
    private_registry_host: Option<String>,
}

/// `POST /api/v1/teams/{team}/apps/{app}/deploys` → 202 `{"operation"}` once the registry
/// has proved the image (or every base image of the git ref) can be pulled with the chosen
/// credentials. The same fields as the deploy forms, read by the same rules.
#[utoipa::path(post, path = "/api/v1/teams/{team}/apps/{app}/deploys", tag = "apps", summary = "Deploy an image or a git ref",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")), request_body = NewDeploy,
    responses((status = 202, description = "Queued, once the registry proved every image can be pulled.", body = OperationBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Body(body): Body<NewDeploy>,
) -> ApiResult<(StatusCode, Json<OperationBody>)> {
    let request = DeployRequest::parse(DeployFields {
        image: body.image,
        git_ref: body.git_ref,
        credentials: None,
        credential: body.credential,
        registry_username: body.registry_username,
        registry_password: body.registry_password,
        remember: body.remember_credentials,
        env: env_changes(body.env)?,
        private_registry_host: body.private_registry_host,
    })?;
    let (access, operation) =
        deploys::deploy(&state.berth, user.id, &team, &handle, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        operation_body(&access.handle, operation),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct ConfigRequest {
    /// `{"KEY": "value"}` sets a secret value, `{"KEY": {"value": "…", "plain": true}}` a
    /// plain (visible) one, `{"KEY": null}` unsets.
    #[schema(value_type = Option<std::collections::HashMap<String, Option<String>>>)]
    env: Option<Map<String, Value>>,
}

/// `PATCH /api/v1/teams/{team}/apps/{app}/config` `{"env": {...}}` → 202 (a configure
/// operation).
#[utoipa::path(patch, path = "/api/v1/teams/{team}/apps/{app}/config", tag = "apps", summary = "Change the app's configuration",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")), request_body = ConfigRequest,
    responses((status = 202, description = "A configure operation was queued.", body = OperationBody)))]
pub async fn configure(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Body(body): Body<ConfigRequest>,
) -> ApiResult<(StatusCode, Json<OperationBody>)> {
    let changes = env_changes(body.env)?;
    let (access, operation) =
        operations::configure(&state.berth, user.id, &team, &handle, changes).await?;
    Ok((
        StatusCode::ACCEPTED,
        operation_body(&access.handle, operation),
    ))
}

/// `GET /api/v1/teams/{team}/apps/{app}/config` → names, and values that are not secret.
#[utoipa::path(get, path = "/api/v1/teams/{team}/apps/{app}/config", tag = "apps", summary = "Read the app's configuration",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")), responses((status = 200, description = "Names, and the values that are not secret.", body = ConfigBody)))]
pub async fn config(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<Json<ConfigBody>> {
    Ok(Json(ConfigBody {
        env: apps::config_rows(&state.berth, user.id, &team, &handle).await?,
    }))
}

/// `POST /api/v1/teams/{team}/apps/{app}/restart` → 202.
#[utoipa::path(post, path = "/api/v1/teams/{team}/apps/{app}/restart", tag = "apps", summary = "Restart the app",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")), responses((status = 202, description = "A restart operation was queued.", body = OperationBody)))]
pub async fn restart(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<OperationBody>)> {
    let (access, operation) = operations::restart(&state.berth, user.id, &team, &handle).await?;
    Ok((
        StatusCode::ACCEPTED,
        operation_body(&access.handle, operation),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many operations (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The cursor from the previous page's `next`: operations older than this id.
    #[param(value_type = Option<i64>)]
    before: Option<String>,
    #[param(value_type = Option<domain::OperationKind>)]
    kind: Option<String>,
    #[param(value_type = Option<domain::OperationStatus>)]
    status: Option<String>,
    /// A user id.
    #[param(value_type = Option<i64>)]
    requested_by: Option<String>,
}

pub(super) fn number(field: &str, value: Option<&str>) -> Result<Option<i64>, AppError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| AppError::invalid(field, format!("\"{v}\" is not a number.")))
        })
        .transpose()
}

async fn history(
    state: &AppState,
    user: &ApiUser,
    team: &str,
    app: Option<&str>,
    query: &HistoryQuery,
) -> ApiResult<Json<OperationsBody>> {
    let limit = number("limit", query.limit.as_deref())?.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid("limit", "Give a limit from 1 to 200.").into());
    }
    let filter = HistoryFilter {
        kind: query.kind.as_deref(),
        status: query.status.as_deref(),
        requested_by: number("requested_by", query.requested_by.as_deref())?,
        before: number("before", query.before.as_deref())?,
        limit,
    };
    let (access, operations, next) =
        history::page_of(&state.berth, user.id, team, app, filter).await?;
    Ok(Json(OperationsBody {
        operations: operations
            .into_iter()
            .map(|o| present::operation(&access.handle, o))
            .collect(),
        next,
    }))
}

/// `GET /api/v1/teams/{team}/apps/{app}/operations?limit&before&kind&status&requested_by`
#[utoipa::path(get, path = "/api/v1/teams/{team}/apps/{app}/operations", tag = "operations", summary = "The app's operation history",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle."), HistoryQuery),
    responses((status = 200, description = "A page of operations, newest first.", body = OperationsBody)))]
pub async fn app_operations(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<OperationsBody>> {
    history(&state, &user, &team, Some(&handle), &query).await
}

/// `GET /api/v1/teams/{team}/operations?...`: the team's history.
#[utoipa::path(get, path = "/api/v1/teams/{team}/operations", tag = "operations", summary = "The team's operation history",
    params(("team" = String, Path, description = "The team's handle."), HistoryQuery),
    responses((status = 200, description = "A page of operations, newest first.", body = OperationsBody)))]
pub async fn team_operations(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<OperationsBody>> {
    history(&state, &user, &team, None, &query).await
}

fn operation_id(id: &str) -> Result<i64, AppError> {
    id.parse().map_err(|_| AppError::NotFound)
}

/// `GET /api/v1/operations/{id}`
#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "operations", summary = "Show an operation",
    params(("id" = i64, Path, description = "The operation's id.")), responses((status = 200, description = "The operation.", body = OperationBody)))]
pub async fn operation(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OperationBody>> {
    let (access, operation) = operations::get(&state.berth, user.id, operation_id(&id)?).await?;
    Ok(operation_body(&access.handle, operation))
}

/// `GET /api/v1/operations/{id}/log` → the log as text.
#[utoipa::path(get, path = "/api/v1/operations/{id}/log", tag = "operations", summary = "An operation's log",
    params(("id" = i64, Path, description = "The operation's id.")), responses((status = 200, description = "The log, one line per line.", body = String, content_type = "text/plain")))]
pub async fn log(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let text = operations::log_text(&state.berth, user.id, operation_id(&id)?).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Send only the log lines after this line id (the `id` of the last line you have, when
    /// following again after the stream ended without a final status).
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// One server-sent event of `GET /api/v1/operations/{id}/events` (the document's schema of
/// each event; `live::stream` writes them).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OperationEvent {
    /// `lines` or `status`.
    event: String,
    /// JSON text: for `lines` an array of `{"id", "at", "line"}`, for `status`
    /// `{"status", "step", "error", "finished_at"}`.
    data: String,
}

/// `GET /api/v1/operations/{id}/events` → a server-sent event stream: `lines` events (a
/// JSON array of `{id, at, line}`) and `status` events (`{status, step, error,
/// finished_at}`), ending after the final status (or when Berth stops: follow again with
/// `?after=`). Viewers get the status only unless the team lets them read logs.
#[utoipa::path(get, path = "/api/v1/operations/{id}/events", tag = "operations", summary = "Follow an operation live",
    params(("id" = i64, Path, description = "The operation's id."), EventsQuery),
    responses((status = 200, description = "Server-sent events: `lines` and `status`, until the operation ends.", body = OperationEvent, content_type = "text/event-stream")))]
pub async fn events(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> ApiResult<axum::response::Response> {
    let id = operation_id(&id)?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(AppError::invalid("after", "Give a line id of 0 or more.").into());
    }
    let (_, with_lines) = operations::watch(&state.berth, user.id, id).await?;
    Ok(crate::live::stream(
        &state,
        user.id,
        id,
        with_lines,
        crate::live::Resume::after(after),
    )
    .await)
}

/// `POST /api/v1/operations/{id}/cancel` → the cancelled operation (queued ones; for an app
/// on Aptible, also running ones: Aptible is asked to cancel, and the operation answered is
/// still running until Aptible ends it).
#[utoipa::path(post, path = "/api/v1/operations/{id}/cancel", tag = "operations", summary = "Cancel a queued operation (or one running on Aptible)",
    params(("id" = i64, Path, description = "The operation's id.")), responses((status = 200, description = "The cancelled operation, or the running one whose cancellation Aptible was asked for.", body = OperationBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OperationBody>> {
    let (access, operation) = operations::cancel(&state.berth, user.id, operation_id(&id)?).await?;
    Ok(operation_body(&access.handle, operation))
}

/// `POST /api/v1/operations/{id}/redeploy` → 202: the same digest again.
#[utoipa::path(post, path = "/api/v1/operations/{id}/redeploy", tag = "operations", summary = "Deploy an operation's digest again",
    params(("id" = i64, Path, description = "The operation's id.")), responses((status = 202, description = "A deploy of the same digest was queued.", body = OperationBody)))]
pub async fn redeploy(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<OperationBody>)> {
    let (access, operation) =
        operations::redeploy(&state.berth, user.id, operation_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        operation_body(&access.handle, operation),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefsQuery {
    /// Not accepted any more: a GET never contacts the repository (`POST …/refs/fetch` does).
    #[param(value_type = Option<bool>)]
    fetch: Option<String>,
}

/// `GET /api/v1/teams/{team}/apps/{app}/refs` → the repository's branches and tags as the
/// last fetch found them (none before the first), each marked when it is the deployed
/// commit. A GET never contacts the repository: `POST …/refs/fetch` does.
#[utoipa::path(get, path = "/api/v1/teams/{team}/apps/{app}/refs", tag = "apps", summary = "Branches and tags of a Dockerfile app's repository, as last fetched",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle."), RefsQuery),
    responses((status = 200, description = "Branches and tags with their commits.", body = RefsBody)))]
pub async fn refs(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<RefsQuery>,
) -> ApiResult<Json<RefsBody>> {
    if query.fetch.is_some() {
        return Err(AppError::invalid(
            "fetch",
            "GET …/refs only reads what the last fetch found; POST …/refs/fetch to fetch the repository.",
        )
        .into());
    }
    Ok(Json(
        builds::refs_body(&state.berth, user.id, &team, &handle, false).await?,
    ))
}

/// `POST /api/v1/teams/{team}/apps/{app}/refs/fetch` → fetches the repository, then answers
/// like `GET …/refs`.
#[utoipa::path(post, path = "/api/v1/teams/{team}/apps/{app}/refs/fetch", tag = "apps", summary = "Fetch a Dockerfile app's repository, then list its branches and tags",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")),
    responses((status = 200, description = "Branches and tags with their commits.", body = RefsBody)))]
pub async fn fetch_refs(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<Json<RefsBody>> {
    Ok(Json(
        builds::refs_body(&state.berth, user.id, &team, &handle, true).await?,
    ))
}

/// `POST /api/v1/teams/{team}/apps/{app}/bases` `{"git_ref", "private_registry_host"?}` →
/// each external base image of that ref's Dockerfile, the credential that will pull it, and
/// whether the registry lets it. A POST for deployers: it fetches the repository and asks
/// registries, with credentials.
#[utoipa::path(post, path = "/api/v1/teams/{team}/apps/{app}/bases", tag = "apps", summary = "Check the base images of a git ref",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle.")),
    request_body = BasesRequest,
    responses((status = 200, description = "Each external base image, the credential that pulls it, whether the registry lets it, and which registry gets the private-registry credentials.", body = BasesBody)))]
pub async fn bases(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Body(body): Body<BasesRequest>,
) -> ApiResult<Json<BasesBody>> {
    let report = builds::check_bases(
        &state.berth,
        user.id,
        &team,
        &handle,
        &body.git_ref,
        body.private_registry_host.as_deref(),
    )
    .await?;
    Ok(Json(report.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuntimeLogQuery {
    /// How many lines (default 200).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    lines: Option<String>,
}

/// `GET /api/v1/teams/{team}/apps/{app}/logs?lines=200` → the running release's recent
/// output (text), newest last.
#[utoipa::path(get, path = "/api/v1/teams/{team}/apps/{app}/logs", tag = "apps", summary = "The running release's recent output",
    params(("team" = String, Path, description = "The team's handle."), ("app" = String, Path, description = "The app's handle."), RuntimeLogQuery),
    responses((status = 200, description = "The output, newest line last.", body = String, content_type = "text/plain")))]
pub async fn runtime_log(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<RuntimeLogQuery>,
) -> ApiResult<impl IntoResponse> {
    let lines = number("lines", query.lines.as_deref())?.unwrap_or(200);
    if !(1..=1000).contains(&lines) {
        return Err(AppError::invalid("lines", "Give a number of lines from 1 to 1000.").into());
    }
    let mut text = apps::runtime_log(&state.berth, user.id, &team, &handle, lines as usize)
        .await?
        .join("\n");
    text.push('\n');
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}
