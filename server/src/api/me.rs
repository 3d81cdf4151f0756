use super::{ApiResult, ApiUser};
use crate::router::AppState;
use axum::{extract::State, Json};
use serde_json::{json, Value};

/// `GET /api/v1/me`: who the token belongs to and their teams with roles.
pub async fn show(State(state): State<AppState>, user: ApiUser) -> ApiResult<Json<Value>> {
    let teams = state.server.store.teams_of(user.id).await?;
    Ok(Json(json!({
        "user": { "id": user.id, "email": user.email },
        "teams": teams.iter().map(|t| json!({
            "handle": t.handle, "name": t.name, "role": t.role.0,
        })).collect::<Vec<_>>(),
    })))
}
