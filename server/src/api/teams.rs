use super::{ApiResult, ApiUser, Body};
use crate::router::AppState;
use app::{services, ssr::authorize};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use domain::Role;
use serde::Deserialize;
use serde_json::{json, Value};

/// `GET /api/v1/teams/{team}`
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = authorize(
        &state.server.store,
        user.id,
        &team,
        Role::Viewer,
        "see this team",
    )
    .await?;
    Ok(Json(json!({
        "team": { "handle": access.handle, "name": access.name, "role": access.role.0 }
    })))
}

/// `GET /api/v1/teams/{team}/members`
pub async fn members(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = authorize(
        &state.server.store,
        user.id,
        &team,
        Role::Viewer,
        "see the members",
    )
    .await?;
    let members = state.server.store.members(access.team_id).await?;
    Ok(Json(json!({
        "members": members.iter().map(|m| json!({
            "user_id": m.user_id, "email": m.email, "role": m.role.0,
            "joined_at": m.joined_at, "pending": m.pending,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct NewMember {
    email: String,
    role: String,
}

/// `POST /api/v1/teams/{team}/members` `{"email", "role"}` → 201; `invite_url` is present
/// (once) when the person had no account.
pub async fn add_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<NewMember>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let added =
        services::add_member(&state.server, user.id, &team, &body.email, &body.role).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "member": { "user_id": added.user_id, "email": added.email, "role": added.role, "pending": added.invite_url.is_some() },
            "invite_url": added.invite_url,
        })),
    ))
}

#[derive(Deserialize)]
pub struct RoleChange {
    role: String,
}

/// `PATCH /api/v1/teams/{team}/members/{user_id}` `{"role"}`
pub async fn change_role(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, member)): Path<(String, i64)>,
    Body(body): Body<RoleChange>,
) -> ApiResult<Json<Value>> {
    let role = services::change_role(&state.server, user.id, &team, member, &body.role).await?;
    Ok(Json(
        json!({ "member": { "user_id": member, "role": role } }),
    ))
}

/// `DELETE /api/v1/teams/{team}/members/{user_id}` → 204
pub async fn remove_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, member)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    services::remove_member(&state.server, user.id, &team, member).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
    credential: Option<String>,
}

/// `GET /api/v1/teams/{team}/audit?limit&before&credential` → `{"events", "next"}`.
pub async fn audit(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    axum::extract::Query(query): axum::extract::Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(50);
    let (_, events) = app::services::credentials::audit_events(
        &state.server,
        user.id,
        &team,
        query.credential.as_deref(),
        query.before,
        limit,
    )
    .await?;
    let next = (events.len() as i64 == limit.clamp(1, 200))
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(json!({
        "events": events.iter().map(|e| json!({
            "id": e.id, "at": e.at, "actor": e.actor_email, "action": e.action,
            "subject": e.subject, "outcome": e.outcome, "detail": e.detail,
        })).collect::<Vec<_>>(),
        "next": next,
    })))
}
