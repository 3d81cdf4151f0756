//! The JSON API under `/api/v1`, for CI pipelines and scripts. Authenticated only by
//! `Authorization: Bearer <API token>`; every handler calls the same `service` use case as
//! the page's server function (so the same authorisation and rules apply) and answers one
//! of `views::api`'s bodies. Errors are `{"error": {"kind", "message", "field"?}}`.

mod apps;
mod credentials;
pub mod docs;
mod me;
pub mod openapi;
mod platforms;
mod teams;

use crate::router::AppState;
use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        FromRequest, FromRequestParts, Request,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::de::DeserializeOwned;
use views::{api::ErrorBody, AppError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/me", get(me::show))
        .route("/me/invitations", get(me::invitations))
        .route("/invitations/{id}/accept", axum::routing::post(me::accept))
        .route(
            "/invitations/{id}/decline",
            axum::routing::post(me::decline),
        )
        .route("/teams/{team}", get(teams::show).patch(teams::update))
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
        .route(
            "/teams/{team}/deploy-key",
            get(teams::deploy_key).post(teams::generate_deploy_key),
        )
        .route("/teams/{team}/audit", get(teams::audit))
        .route(
            "/teams/{team}/platforms/aptible",
            get(platforms::show)
                .put(platforms::connect)
                .delete(platforms::disconnect),
        )
        .route("/teams/{team}/apps", get(apps::list).post(apps::create))
        .route("/teams/{team}/apps/{app}", get(apps::show))
        .route("/teams/{team}/apps/{app}/refs", get(apps::refs))
        .route(
            "/teams/{team}/apps/{app}/refs/fetch",
            axum::routing::post(apps::fetch_refs),
        )
        .route(
            "/teams/{team}/apps/{app}/bases",
            axum::routing::post(apps::bases),
        )
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
        .route("/operations/{id}/events", get(apps::events))
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

impl From<service::Error> for ApiError {
    fn from(value: service::Error) -> Self {
        ApiError(value.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorBody::from(&self.0))).into_response();
        if let AppError::Throttled {
            retry_after_secs, ..
        } = &self.0
        {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs.max(&1).unsigned_abs()),
            );
        }
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
    pub user: service::User,
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
        let user = service::tokens::authenticate(&state.berth.store, token)
            .await?
            .ok_or_else(unauthenticated)?;
        Ok(ApiUser { id: user.id, user })
    }
}

/// `axum::extract::Path` whose rejections are API errors: a path parameter that cannot be
/// read (not a number, not UTF-8) names nothing that exists, so it answers 404 in the JSON
/// shape rather than axum's plain-text 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(_) => Err(ApiError(AppError::NotFound)),
        }
    }
}

/// `axum::extract::Query` whose rejections are API errors (422, field `query`) rather than
/// axum's plain-text 400: a repeated or malformed query parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError(AppError::invalid(
                "query",
                describe_query(&rejection),
            ))),
        }
    }
}

fn describe_query(rejection: &QueryRejection) -> String {
    match rejection {
        QueryRejection::FailedToDeserializeQueryString(e) => format!(
            "The query string cannot be read: {}",
            e.body_text()
                .trim_start_matches("Failed to deserialize query string: ")
        ),
        other => other.body_text(),
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
