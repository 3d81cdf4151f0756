use super::{ApiResult, ApiUser};
use crate::router::AppState;
use axum::{
    extract::{Path, State},
    Json,
};
use views::api::{InvitationAnsweredBody, InvitationsBody, MeBody, UserView};

/// `GET /api/v1/me`: who the token belongs to and their teams with roles.
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
pub async fn invitations(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<InvitationsBody>> {
    Ok(Json(InvitationsBody {
        invitations: service::accounts::invitations(&state.berth, user.id).await?,
    }))
}

/// `POST /api/v1/invitations/{id}/accept`: join the team.
pub async fn accept(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<InvitationAnsweredBody>> {
    answer(&state, &user, id, true).await
}

/// `POST /api/v1/invitations/{id}/decline`: do not join; the invitation is gone.
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
