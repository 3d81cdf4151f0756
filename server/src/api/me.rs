use super::{ApiResult, ApiUser};
use crate::router::AppState;
use axum::{extract::State, Json};
use views::api::{MeBody, UserView};

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
