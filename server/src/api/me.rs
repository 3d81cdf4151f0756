use super::{ApiResult, ApiUser, Path};
use crate::router::AppState;
use axum::{extract::State, Json};
use views::api::{InvitationAnsweredBody, InvitationsBody, MeBody, UserView};

/// `GET /api/v1/me`: who the token belongs to and their teams with roles.
#[utoipa::path(get, path = "/api/v1/me", tag = "teams", summary = "Who the token belongs to",
    responses((status = 200, description = "The user and their teams with roles.", body = MeBody)))]
pub async fn show(State(state): State<AppState>, user: ApiUser) -> ApiResult<Json<MeBody>> {
    let viewer = service::accounts::viewer(&state.berth, user.user).await?;
    Ok(Json(MeBody {
        user: UserView {
            id: viewer.user_id,
            email: viewer.email,
        },
        teams: viewer.teams,
    }))
}

/// `GET /api/v1/me/invitations`: teams that invited this person, not yet answered.
#[utoipa::path(get, path = "/api/v1/me/invitations", tag = "teams", summary = "Invitations waiting for your answer",
    responses((status = 200, description = "Teams that invited you, not yet answered.", body = InvitationsBody)))]
pub async fn invitations(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<InvitationsBody>> {
    Ok(Json(InvitationsBody {
        invitations: service::accounts::invitations(&state.berth, user.id).await?,
    }))
}

/// `POST /api/v1/invitations/{id}/accept`: join the team.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/accept", tag = "teams", summary = "Accept an invitation (join the team)",
    params(("id" = i64, Path, description = "The invitation's id.")),
    responses((status = 200, description = "The team joined.", body = InvitationAnsweredBody)))]
pub async fn accept(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<InvitationAnsweredBody>> {
    answer(&state, &user, id, true).await
}

/// `POST /api/v1/invitations/{id}/decline`: do not join; the invitation is gone.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/decline", tag = "teams", summary = "Decline an invitation",
    params(("id" = i64, Path, description = "The invitation's id.")),
    responses((status = 200, description = "The invitation is gone.", body = InvitationAnsweredBody)))]
pub async fn decline(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<InvitationAnsweredBody>> {
    answer(&state, &user, id, false).await
}

async fn answer(
    state: &AppState,
    user: &ApiUser,
    id: i64,
    accept: bool,
) -> ApiResult<Json<InvitationAnsweredBody>> {
    let team = service::accounts::answer_invitation(&state.berth, user.id, id, accept).await?;
    Ok(Json(InvitationAnsweredBody {
        team,
        accepted: accept,
    }))
}
