//! `/api/v1/teams/{team}/apps` and `/api/v1/operations`: apps, deploys, configuration,
//! restarts and the history CI pipelines read. Credentials go in and never come out.

use super::{ApiResult, ApiUser, Body};
use crate::router::AppState;
use axum::{
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use service::{
    apps, builds,
    config::ConfigChanges,
    deploys::{self, DeployFields, DeployRequest},
    history::{self, HistoryFilter},
    operations, present,
};
use views::{
    api::{AppBody, AppsBody, BasesBody, ConfigBody, OperationBody, OperationsBody, RefsBody},
    AppError,
};

#[derive(Deserialize)]
pub struct NewApp {
    #[serde(default)]
    handle: String,
    #[serde(default)]
    method: String,
    health_path: Option<String>,
    git: Option<GitBody>,
}

/// `"git": {"url", "dockerfile"?, "context"?, "username"?, "password"?}`
#[derive(Deserialize)]
pub struct GitBody {
    #[serde(default)]
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

/// Configuration changes as JSON: `{"KEY": "value" | null}`.
fn env_changes(env: Option<Map<String, Value>>) -> ApiResult<ConfigChanges> {
    let changes = env
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| match value {
            Value::Null => Ok((key, None)),
            Value::String(s) => Ok((key, Some(s))),
            Value::Number(n) => Ok((key, Some(n.to_string()))),
            Value::Bool(b) => Ok((key, Some(b.to_string()))),
            _ => Err(AppError::invalid(
                "env",
                format!("{key}: give a string to set the variable or null to unset it."),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ConfigChanges::parse(changes)?)
}

#[derive(Deserialize)]
pub struct NewDeploy {
    image: Option<String>,
    git_ref: Option<String>,
    credential: Option<String>,
    registry_username: Option<String>,
    registry_password: Option<String>,
    remember_credentials: Option<bool>,
    env: Option<Map<String, Value>>,
}

/// `POST /api/v1/teams/{team}/apps/{app}/deploys` → 202 `{"operation"}` once the registry
/// has proved the image (or every base image of the git ref) can be pulled with the chosen
/// credentials. The same fields as the deploy forms, read by the same rules.
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
    })?;
    let (access, operation) =
        deploys::deploy(&state.berth, user.id, &team, &handle, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        operation_body(&access.handle, operation),
    ))
}

#[derive(Deserialize)]
pub struct ConfigRequest {
    env: Option<Map<String, Value>>,
}

/// `PATCH /api/v1/teams/{team}/apps/{app}/config` `{"env": {...}}` → 202 (a configure
/// operation).
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

#[derive(Deserialize)]
pub struct HistoryQuery {
    limit: Option<String>,
    before: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    requested_by: Option<String>,
}

fn number(field: &str, value: Option<&str>) -> Result<Option<i64>, AppError> {
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
pub async fn app_operations(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<OperationsBody>> {
    history(&state, &user, &team, Some(&handle), &query).await
}

/// `GET /api/v1/teams/{team}/operations?...`: the team's history.
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
pub async fn operation(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OperationBody>> {
    let (access, operation) = operations::get(&state.berth, user.id, operation_id(&id)?).await?;
    Ok(operation_body(&access.handle, operation))
}

/// `GET /api/v1/operations/{id}/log` → the log as text.
pub async fn log(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let text = operations::log_text(&state.berth, user.id, operation_id(&id)?).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// `POST /api/v1/operations/{id}/cancel` → the cancelled operation (queued ones only).
pub async fn cancel(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OperationBody>> {
    let (access, operation) = operations::cancel(&state.berth, user.id, operation_id(&id)?).await?;
    Ok(operation_body(&access.handle, operation))
}

/// `POST /api/v1/operations/{id}/redeploy` → 202: the same digest again.
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

#[derive(Deserialize)]
pub struct RefsQuery {
    fetch: Option<String>,
}

/// `GET /api/v1/teams/{team}/apps/{app}/refs` → the repository's branches and tags as the
/// last fetch found them (none before the first), each marked when it is the deployed
/// commit. A GET never contacts the repository: `POST …/refs/fetch` does.
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
pub async fn fetch_refs(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<Json<RefsBody>> {
    Ok(Json(
        builds::refs_body(&state.berth, user.id, &team, &handle, true).await?,
    ))
}

#[derive(Deserialize)]
pub struct BasesQuery {
    #[serde(default)]
    git_ref: String,
}

/// `GET /api/v1/teams/{team}/apps/{app}/bases?git_ref=main` → each external base image of
/// that ref's Dockerfile, the credential that will pull it, and whether the registry lets it.
pub async fn bases(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<BasesQuery>,
) -> ApiResult<Json<BasesBody>> {
    let report = builds::check_bases(&state.berth, user.id, &team, &handle, &query.git_ref).await?;
    Ok(Json(report.into()))
}

#[derive(Deserialize)]
pub struct RuntimeLogQuery {
    lines: Option<String>,
}

/// `GET /api/v1/teams/{team}/apps/{app}/logs?lines=200` → the running release's recent
/// output (text), newest last.
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
