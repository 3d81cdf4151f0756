//! `/api/v1/teams/{team}`: the team, its members, its ssh deploy key and its audit trail.

use super::{apps::number, ApiResult, ApiUser, Body, Path, Query};
use crate::router::AppState;
use axum::{extract::State, http::StatusCode, Json};
use serde::Deserialize;
use service::{members, present};
use utoipa::{IntoParams, ToSchema};
use views::api::{
    AddedMember, AddedMemberBody, AuditEventsBody, DeployKeyBody, MemberRole, MembersBody,
    RoleChangedBody, TeamBody,
};

/// `GET /api/v1/teams/{team}`
#[utoipa::path(get, path = "/api/v1/teams/{team}", tag = "teams", summary = "Show a team",
    params(("team" = String, Path, description = "The team's handle.")), responses((status = 200, description = "The team and your role in it.", body = TeamBody)))]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamChanges {
    /// May viewers read runtime and operation logs (off by default)?
    viewers_read_logs: Option<bool>,
}

/// `PATCH /api/v1/teams/{team}` `{"viewers_read_logs": bool}` → the team (owners).
#[utoipa::path(patch, path = "/api/v1/teams/{team}", tag = "teams", summary = "Change the team's settings",
    params(("team" = String, Path, description = "The team's handle.")), request_body = TeamChanges,
    responses((status = 200, description = "The team with its settings.", body = TeamBody)))]
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
#[utoipa::path(get, path = "/api/v1/teams/{team}/members", tag = "teams", summary = "List the team's members",
    params(("team" = String, Path, description = "The team's handle.")), responses((status = 200, description = "The members with their roles.", body = MembersBody)))]
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

#[derive(Deserialize, ToSchema)]
pub struct NewMember {
    email: String,
    #[schema(value_type = domain::Role)]
    role: String,
}

/// `POST /api/v1/teams/{team}/members` `{"email", "role"}` → 201 with the member pending:
/// `invite_url` is present (once) when the person had no account; someone with an account
/// joins when they accept (`POST /api/v1/invitations/{id}/accept`).
#[utoipa::path(post, path = "/api/v1/teams/{team}/members", tag = "teams", summary = "Invite a member",
    params(("team" = String, Path, description = "The team's handle.")), request_body = NewMember,
    responses((status = 201, description = "The member, pending until they accept; `invite_url` (shown once) when the person had no account.", body = AddedMemberBody)))]
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

#[derive(Deserialize, ToSchema)]
pub struct RoleChange {
    #[schema(value_type = domain::Role)]
    role: String,
}

/// `PATCH /api/v1/teams/{team}/members/{user_id}` `{"role"}`
#[utoipa::path(patch, path = "/api/v1/teams/{team}/members/{user_id}", tag = "teams", summary = "Change a member's role",
    params(("team" = String, Path, description = "The team's handle."), ("user_id" = i64, Path, description = "The member's user id.")),
    request_body = RoleChange,
    responses((status = 200, description = "The member's new role.", body = RoleChangedBody)))]
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
#[utoipa::path(delete, path = "/api/v1/teams/{team}/members/{user_id}", tag = "teams", summary = "Remove a member",
    params(("team" = String, Path, description = "The team's handle."), ("user_id" = i64, Path, description = "The member's user id.")),
    responses((status = 204, description = "Removed.")))]
pub async fn remove_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path((team, member)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    members::remove(&state.berth, user.id, &team, member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/teams/{team}/deploy-key` → the public half of the team's ssh deploy key
/// (any member: it is public), all `null` while the team has none. Never makes one.
#[utoipa::path(get, path = "/api/v1/teams/{team}/deploy-key", tag = "teams", summary = "Show the team's ssh deploy key",
    params(("team" = String, Path, description = "The team's handle.")),
    responses((status = 200, description = "The public key and its fingerprint, to add to repositories as a read-only deploy key; all `null` while the team has none (Berth makes one at the first fetch of an ssh repository, or on `POST`). The private key is never answered.", body = DeployKeyBody)))]
pub async fn deploy_key(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<DeployKeyBody>> {
    Ok(Json(
        service::deploy_keys::body(&state.berth, user.id, &team).await?,
    ))
}

/// `POST /api/v1/teams/{team}/deploy-key` → a new key for the team, replacing the one it
/// had (owners). From the next fetch on Berth uses the new key only.
#[utoipa::path(post, path = "/api/v1/teams/{team}/deploy-key", tag = "teams", summary = "Generate a new ssh deploy key for the team",
    params(("team" = String, Path, description = "The team's handle.")),
    responses((status = 200, description = "The new public key and its fingerprint. It replaces the team's previous key at once: add it to the repositories (and remove the old one there).", body = DeployKeyBody)))]
pub async fn generate_deploy_key(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<DeployKeyBody>> {
    let key = service::deploy_keys::generate(&state.berth, user.id, &team).await?;
    Ok(Json(Some(key).into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The cursor from the previous page's `next`.
    #[param(value_type = Option<i64>)]
    before: Option<String>,
    /// How many events (default 50, at most 200).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// Only the events of this credential (its name).
    credential: Option<String>,
}

/// `GET /api/v1/teams/{team}/audit?limit&before&credential` → `{"events", "next"}`.
#[utoipa::path(get, path = "/api/v1/teams/{team}/audit", tag = "teams", summary = "The team's audit trail",
    params(("team" = String, Path, description = "The team's handle."), AuditQuery),
    responses((status = 200, description = "A page of events, newest first.", body = AuditEventsBody)))]
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
            number("before", query.before.as_deref())?,
            number("limit", query.limit.as_deref())?.unwrap_or(50),
        )
        .await?,
    ))
}
