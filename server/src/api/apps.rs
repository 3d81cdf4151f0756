//! `/api/v1/teams/{team}/apps` and `/api/v1/operations`: apps, deploys, configuration,
//! restarts and the history CI pipelines read. Credentials go in and never come out.

use super::{ApiResult, ApiUser, Body};
use crate::router::AppState;
use app::{
    error::AppError,
    model::LastOperation,
    services::{
        apps::{self, DeployInput, HistoryFilter},
        builds,
    },
};
use axum::{
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

async fn app_json(state: &AppState, app: &store::App) -> ApiResult<Value> {
    let release = match app.current_release_id {
        Some(id) => state.server.store.release(id).await?,
        None => None,
    };
    let row = apps::app_row(&state.server, app, release, None).await;
    Ok(json!({
        "handle": row.handle,
        "method": row.method,
        "health_path": row.health_path,
        "release": row.release,
        "git": app.git_url.as_ref().map(|url| json!({
            "url": url, "dockerfile": app.dockerfile_path, "context": app.context_path,
            "username": app.git_username,
        })),
        "credentials": {
            "remembered": app.remembered_username.as_ref().map(|u| json!({
                "registry": app.remembered_registry, "username": u, "at": app.remembered_at,
            })),
            "team_credential": app.team_credential_name,
        },
    }))
}

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

/// `POST /api/v1/teams/{team}/apps` `{"handle", "method", "health_path"?}` → 201.
pub async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<NewApp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let git = body.git.map(|g| builds::GitInput {
        url: g.url,
        dockerfile: g.dockerfile,
        context: g.context,
        username: g.username,
        password: g.password,
    });
    let (_, app) = apps::create_with_source(
        &state.server,
        user.id,
        &team,
        &body.handle,
        &body.method,
        body.health_path.as_deref(),
        git,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "app": app_json(&state, &app).await? })),
    ))
}

/// `GET /api/v1/teams/{team}/apps`
pub async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, summaries) = apps::list(&state.server, user.id, &team).await?;
    let list: Vec<Value> = summaries
        .into_iter()
        .map(|s| {
            json!({
                "handle": s.handle,
                "method": s.method,
                "release": s.release_image.as_ref().map(|image| json!({
                    "image": image, "digest": s.release_digest, "since": s.release_created_at,
                })),
                "last_operation": s.last_operation_id.map(|id| LastOperation {
                    id,
                    kind: s.last_operation_kind.clone().unwrap_or_default(),
                    status: s.last_operation_status.clone().unwrap_or_default(),
                    at: s.last_operation_created_at.unwrap_or_default(),
                }),
            })
        })
        .collect();
    Ok(Json(json!({ "apps": list })))
}

/// `GET /api/v1/teams/{team}/apps/{app}` → the app with its current release.
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, app) = apps::get(&state.server, user.id, &team, &handle).await?;
    Ok(Json(json!({ "app": app_json(&state, &app).await? })))
}

/// Configuration changes as JSON: `{"KEY": "value" | null}`.
fn env_changes(env: Option<Map<String, Value>>) -> Result<Vec<(String, Option<String>)>, AppError> {
    env.unwrap_or_default()
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
        .collect()
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
/// has proved the image can be pulled with the chosen credentials.
pub async fn deploy(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Body(body): Body<NewDeploy>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(git_ref) = &body.git_ref {
        if body.image.is_some() {
            return Err(AppError::invalid(
                "git_ref",
                "Give either \"image\" or \"git_ref\", not both.",
            )
            .into());
        }
        let changes = env_changes(body.env)?;
        let (access, operation) =
            builds::deploy_ref(&state.server, user.id, &team, &handle, git_ref, &changes).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "operation": apps::operation_row(&access.handle, operation) })),
        ));
    }
    let credentials = DeployInput::credentials_from_api(
        body.credential,
        body.registry_username,
        body.registry_password,
        body.remember_credentials,
    )?;
    let input = DeployInput {
        image: body.image.unwrap_or_default(),
        credentials,
        env: env_changes(body.env)?,
    };
    let (access, operation) = apps::deploy(&state.server, user.id, &team, &handle, input).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "operation": apps::operation_row(&access.handle, operation) })),
    ))
}

#[derive(Deserialize)]
pub struct ConfigChanges {
    env: Option<Map<String, Value>>,
}

/// `PATCH /api/v1/teams/{team}/apps/{app}/config` `{"env": {...}}` → 202 (a configure
/// operation).
pub async fn configure(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Body(body): Body<ConfigChanges>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let changes = env_changes(body.env)?;
    let (access, operation) =
        apps::configure(&state.server, user.id, &team, &handle, &changes).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "operation": apps::operation_row(&access.handle, operation) })),
    ))
}

/// `GET /api/v1/teams/{team}/apps/{app}/config` → names, and values that are not secret.
pub async fn config(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, app) = apps::get(&state.server, user.id, &team, &handle).await?;
    let rows = apps::config_rows(apps::config(&state.server, app.id).await?);
    Ok(Json(json!({ "env": rows })))
}

/// `POST /api/v1/teams/{team}/apps/{app}/restart` → 202.
pub async fn restart(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (access, operation) = apps::restart(&state.server, user.id, &team, &handle).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "operation": apps::operation_row(&access.handle, operation) })),
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
) -> ApiResult<Json<Value>> {
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
        apps::history(&state.server, user.id, team, app, filter).await?;
    let rows: Vec<_> = operations
        .into_iter()
        .map(|o| apps::operation_row(&access.handle, o))
        .collect();
    Ok(Json(json!({ "operations": rows, "next": next })))
}

/// `GET /api/v1/teams/{team}/apps/{app}/operations?limit&before&kind&status&requested_by`
pub async fn app_operations(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    history(&state, &user, &team, Some(&handle), &query).await
}

/// `GET /api/v1/teams/{team}/operations?...`: the team's history.
pub async fn team_operations(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
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
) -> ApiResult<Json<Value>> {
    let (access, operation) = apps::operation(&state.server, user.id, operation_id(&id)?).await?;
    Ok(Json(
        json!({ "operation": apps::operation_row(&access.handle, operation) }),
    ))
}

/// `GET /api/v1/operations/{id}/log` → the log as text.
pub async fn log(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (_, operation) = apps::operation(&state.server, user.id, operation_id(&id)?).await?;
    let mut text = String::new();
    let mut after = 0;
    loop {
        let lines = state
            .server
            .store
            .operation_log(operation.id, after, 1000)
            .await?;
        let Some(last) = lines.last() else { break };
        after = last.id;
        for line in &lines {
            text.push_str(&line.line);
            text.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// `POST /api/v1/operations/{id}/cancel` → the cancelled operation (queued ones only).
pub async fn cancel(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let operation = apps::cancel(&state.server, user.id, operation_id(&id)?).await?;
    let (access, _) = apps::operation(&state.server, user.id, operation.id).await?;
    Ok(Json(
        json!({ "operation": apps::operation_row(&access.handle, operation) }),
    ))
}

/// `POST /api/v1/operations/{id}/redeploy` → 202: the same digest again.
pub async fn redeploy(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (access, operation) = apps::redeploy(&state.server, user.id, operation_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "operation": apps::operation_row(&access.handle, operation) })),
    ))
}

#[derive(Deserialize)]
pub struct RefsQuery {
    fetch: Option<bool>,
}

/// `GET /api/v1/teams/{team}/apps/{app}/refs?fetch=true` → the repository's branches and
/// tags with their commits, each marked when it is the deployed commit.
pub async fn refs(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, handle)): Path<(String, String)>,
    Query(query): Query<RefsQuery>,
) -> ApiResult<Json<Value>> {
    let (_, _, refs, deployed) = builds::refs(
        &state.server,
        user.id,
        &team,
        &handle,
        query.fetch.unwrap_or(false),
    )
    .await?;
    let list: Vec<Value> = refs
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "kind": match r.kind { platform::git::RefKind::Branch => "branch", platform::git::RefKind::Tag => "tag" },
                "commit": r.commit.as_str(),
                "subject": r.subject,
                "committed_at": r.committed_at,
                "deployed": deployed.as_deref() == Some(r.commit.as_str()),
            })
        })
        .collect();
    Ok(Json(json!({ "refs": list, "deployed_commit": deployed })))
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
) -> ApiResult<Json<Value>> {
    let (_, commit, checks) =
        builds::check_bases(&state.server, user.id, &team, &handle, &query.git_ref).await?;
    let list: Vec<Value> = checks
        .iter()
        .map(|c| {
            json!({
                "image": c.base.image,
                "line": c.base.line,
                "credential": c.base.credential,
                "ok": c.problem.is_none(),
                "kind": c.problem.as_ref().map(|p| &p.0),
                "message": c.problem.as_ref().map(|p| &p.1),
            })
        })
        .collect();
    Ok(Json(json!({ "commit": commit.as_str(), "bases": list })))
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
    let (_, app) = apps::get(&state.server, user.id, &team, &handle).await?;
    let mut text = state
        .server
        .platform
        .runtime_log(app.id, lines as usize)
        .await
        .join("\n");
    text.push('\n');
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}
