//! `/api/v1/teams/{team}/platforms/aptible`: the team's connection to Aptible.

use super::{ApiResult, ApiUser, Body, Path};
use crate::router::AppState;
use axum::{extract::State, Json};
use serde::Deserialize;
use service::platforms::{self, AptibleLogin};
use utoipa::ToSchema;
use views::api::PlatformBody;

/// How Berth signs in to Aptible: `{"token"}` (an access token), or `{"email", "password",
/// "otp"?}` (the one-time code when the account has two-factor authentication; without it,
/// such an account answers 422 on `otp`). Only the access token is kept, sealed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AptibleConnection {
    token: Option<String>,
    email: Option<String>,
    password: Option<String>,
    otp: Option<String>,
}

/// `GET /api/v1/teams/{team}/platforms/aptible`
#[utoipa::path(get, path = "/api/v1/teams/{team}/platforms/aptible", tag = "platforms",
    summary = "Show the team's connection to Aptible",
    params(("team" = String, Path, description = "The team's handle.")),
    responses((status = 200, description = "The connection's state (never its token).", body = PlatformBody)))]
pub async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<PlatformBody>> {
    Ok(Json(PlatformBody {
        platform: platforms::aptible_state(&state.berth, user.id, &team).await?,
    }))
}

/// `PUT /api/v1/teams/{team}/platforms/aptible` (owners)
#[utoipa::path(put, path = "/api/v1/teams/{team}/platforms/aptible", tag = "platforms",
    summary = "Connect the team to Aptible, or give it a new token",
    params(("team" = String, Path, description = "The team's handle.")), request_body = AptibleConnection,
    responses((status = 200, description = "The connection.", body = PlatformBody)))]
pub async fn connect(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
    Body(body): Body<AptibleConnection>,
) -> ApiResult<Json<PlatformBody>> {
    let login = match (&body.token, &body.email) {
        (Some(token), None) if body.password.is_none() && body.otp.is_none() => {
            AptibleLogin::Token(token)
        }
        (None, Some(email)) => AptibleLogin::Password {
            email,
            password: body.password.as_deref().unwrap_or_default(),
            otp: body.otp.as_deref(),
        },
        // Refused by the service, after the role check (a viewer learns nothing more).
        _ => AptibleLogin::Ambiguous,
    };
    Ok(Json(PlatformBody {
        platform: platforms::connect_aptible(&state.berth, user.id, &team, login).await?,
    }))
}

/// `DELETE /api/v1/teams/{team}/platforms/aptible` (owners)
#[utoipa::path(delete, path = "/api/v1/teams/{team}/platforms/aptible", tag = "platforms",
    summary = "Disconnect the team from Aptible (its token is deleted)",
    params(("team" = String, Path, description = "The team's handle.")),
    responses((status = 200, description = "The connection, now `not_connected`.", body = PlatformBody)))]
pub async fn disconnect(
    State(state): State<AppState>,
    user: ApiUser,
    Path(team): Path<String>,
) -> ApiResult<Json<PlatformBody>> {
    Ok(Json(PlatformBody {
        platform: platforms::disconnect_aptible(&state.berth, user.id, &team).await?,
    }))
}
