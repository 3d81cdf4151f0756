//! The JSON API under `/api/v1`, for CI pipelines and scripts. Authenticated only by
//! `Authorization: Bearer <API token>`; authorised by the same `app::ssr::authorize` as the
//! pages. Errors are `{"error": {"kind", "message", "field"?}}`.

mod apps;
mod credentials;
mod me;
mod teams;

use crate::router::AppState;
use app::error::AppError;
use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::de::DeserializeOwned;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me::show))
        .route("/teams/{team}", get(teams::show))
        .route(
            "/teams/{team}/members",
            get(teams::members).post(teams::add_member),
        )
        .route(
            "/teams/{team}/members/{user_id}",
            axum::routing::patch(teams::change_role).delete(teams::remove_member),
        )
        .route(
            "/teams/{team}/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/teams/{team}/credentials/{name}",
            get(credentials::show)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .route(
            "/teams/{team}/credentials/{name}/verify",
            axum::routing::post(credentials::verify),
        )
        .route("/teams/{team}/audit", get(teams::audit))
        .route("/teams/{team}/apps", get(apps::list).post(apps::create))
        .route("/teams/{team}/apps/{app}", get(apps::show))
        .route("/teams/{team}/apps/{app}/refs", get(apps::refs))
        .route("/teams/{team}/apps/{app}/bases", get(apps::bases))
        .route("/teams/{team}/apps/{app}/logs", get(apps::runtime_log))
        .route(
            "/teams/{team}/apps/{app}/deploys",
            axum::routing::post(apps::deploy),
        )
        .route(
            "/teams/{team}/apps/{app}/config",
            get(apps::config).patch(apps::configure),
        )
        .route(
            "/teams/{team}/apps/{app}/restart",
            axum::routing::post(apps::restart),
        )
        .route(
            "/teams/{team}/apps/{app}/operations",
            get(apps::app_operations),
        )
        .route("/teams/{team}/operations", get(apps::team_operations))
        .route("/operations/{id}", get(apps::operation))
        .route("/operations/{id}/log", get(apps::log))
        .route("/operations/{id}/cancel", axum::routing::post(apps::cancel))
        .route(
            "/operations/{id}/redeploy",
            axum::routing::post(apps::redeploy),
        )
        .fallback(|| async { ApiError(AppError::NotFound) })
}

/// An [`AppError`] answered as JSON with its HTTP status.
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(value: AppError) -> Self {
        ApiError(value)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(value: store::StoreError) -> Self {
        ApiError(value.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut error = serde_json::json!({ "kind": self.0.kind(), "message": self.0.to_string() });
        if let Some(field) = self.0.field().filter(|f| !f.is_empty()) {
            error["field"] = field.into();
        }
        if let AppError::VerificationFailed { reason, .. } = &self.0 {
            error["reason"] = reason.as_str().into();
        }
        let mut response = (status, Json(serde_json::json!({ "error": error }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"berth\"".parse().expect("valid header"),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The person a bearer token belongs to.
pub struct ApiUser {
    pub id: i64,
    pub email: String,
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthenticated = || ApiError(AppError::Unauthenticated);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthenticated)?;
        let store = &state.server.store;
        let user_id = store
            .authenticate_api_token(token)
            .await?
            .ok_or_else(unauthenticated)?;
        let user = store.user(user_id).await?.ok_or_else(unauthenticated)?;
        Ok(ApiUser {
            id: user.id,
            email: user.email,
        })
    }
}

/// `Json<T>` whose rejections are API errors naming what is wrong with the body.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError(AppError::invalid("body", describe(&rejection)))),
        }
    }
}

fn describe(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "Send the body as JSON with Content-Type: application/json.".into()
        }
        JsonRejection::JsonSyntaxError(_) => "The body is not valid JSON.".into(),
        JsonRejection::JsonDataError(e) => format!(
            "The body does not have the expected fields: {}",
            e.body_text()
        ),
        other => other.body_text(),
    }
}
