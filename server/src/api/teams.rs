//! `/api/v1/teams/{team}`: the team, its members and its audit trail.

use super::{ApiResult, ApiUser, Body};
use crate::router::AppState;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;
use service::{members, present};
use views::api::{
    AddedMember, AddedMemberBody, AuditEventsBody, MemberRole, MembersBody, RoleChangedBody,
    TeamBody,
};

/// `GET /api/v1/teams/{team}`
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<TeamBody>> {
    let access = members::team(&state.berth, user.id, &team).await?;
    Ok(Json(TeamBody {
        team: present::team(&access),
    }))
}

/// The team's settings an owner may change; a field left out keeps its value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamChanges {
    viewers_read_logs: Option<bool>,
}

/// `PATCH /api/v1/teams/{team}` `{"viewers_read_logs": bool}` → the team (owners).
pub async fn update(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<TeamChanges>,
) -> ApiResult<Json<TeamBody>> {
    let access = match body.viewers_read_logs {
        Some(allowed) => {
            members::set_viewers_read_logs(&state.berth, user.id, &team, allowed).await?
        }
        None => members::team(&state.berth, user.id, &team).await?,
    };
    Ok(Json(TeamBody {
        team: present::team(&access),
    }))
}

/// `GET /api/v1/teams/{team}/members`
pub async fn members(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<MembersBody>> {
    let page = members::page(&state.berth, user.id, &team, None).await?;
    Ok(Json(MembersBody {
        members: page.members,
    }))
}

#[derive(Deserialize)]
pub struct NewMember {
    email: String,
    role: String,
}

/// `POST /api/v1/teams/{team}/members` `{"email", "role"}` → 201 with the member pending:
/// `invite_url` is present (once) when the person had no account; someone with an account
/// joins when they accept (`POST /api/v1/invitations/{id}/accept`).
pub async fn add_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<NewMember>,
) -> ApiResult<(StatusCode, Json<AddedMemberBody>)> {
    let added = members::add(&state.berth, user.id, &team, &body.email, &body.role).await?;
    Ok((
        StatusCode::CREATED,
        Json(AddedMemberBody {
            member: AddedMember {
                user_id: added.user_id,
                email: added.email.to_string(),
                role: added.role,
                pending: added.pending,
            },
            invite_url: added.invite_url,
        }),
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
) -> ApiResult<Json<RoleChangedBody>> {
    let role = members::change_role(&state.berth, user.id, &team, member, &body.role).await?;
    Ok(Json(RoleChangedBody {
        member: MemberRole {
            user_id: member,
            role,
        },
    }))
}

/// `DELETE /api/v1/teams/{team}/members/{user_id}` → 204
pub async fn remove_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, member)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    members::remove(&state.berth, user.id, &team, member).await?;
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
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<AuditEventsBody>> {
    Ok(Json(
        service::audit::events_body(
            &state.berth,
            user.id,
            &team,
            query.credential.as_deref(),
            query.before,
            query.limit.unwrap_or(50),
        )
        .await?,
    ))
}
