use super::{ApiResult, ApiUser};
use crate::router::AppState;
use axum::{extract::State, Json};
use views::api::{MeBody, UserView};

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
