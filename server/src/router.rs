use crate::{api, csrf, edge, live};
use app::{shell, App};
use axum::{
    body::Body,
    extract::{FromRef, State},
    http::{Request, StatusCode},
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use leptos::{config::LeptosOptions, prelude::provide_context};
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use service::Berth;
use tower_http::trace::TraceLayer;
use tower_sessions::{
    cookie::{time::Duration, SameSite},
    Expiry, SessionManagerLayer,
};

/// Everything request handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub berth: Berth,
    /// `/metrics` (`BERTH_METRICS_ALLOW`).
    pub metrics: crate::metrics::Metrics,
}

/// The whole HTTP surface: pages, server functions, `/api/v1`, health checks, static files.
pub fn build(state: AppState, secure_cookies: bool) -> Router {
    let routes = generate_route_list(App);
    let sessions = SessionManagerLayer::new(state.berth.store.session_store())
        .with_name("berth_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(Duration::days(14)));
    let site_root = std::path::PathBuf::from(state.leptos_options.site_root.as_ref());
    let assets = app::assets::Assets::load(&site_root);
    let context = {
        let berth = state.berth.clone();
        move || {
            provide_context(berth.clone());
            provide_context(assets.clone());
            provide_context(app::ssr::RequestMemo::default());
        }
    };
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::endpoint))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .nest("/api/v1", api::router())
        .route("/api/docs", get(api::docs::page))
        .route("/operations/{id}/events", get(live::events))
        .route("/api/{*fn_name}", get(server_fn).post(server_fn))
        .nest("/pkg", crate::bundle::router(&site_root.join("pkg")))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell));
    // Requests are timed only when someone may read the metrics.
    let router = if state.metrics.enabled() {
        router.route_layer(axum::middleware::from_fn(crate::metrics::track))
    } else {
        router
    };
    router
        .layer(axum::middleware::map_response(server_fn_error_status))
        .layer(axum::middleware::from_fn(crate::forms::carry_errors))
        .layer(axum::middleware::from_fn_with_state(
            csrf::VisitorCookie::new(secure_cookies),
            csrf::protect,
        ))
        .layer(sessions)
        .layer(axum::middleware::from_fn(edge::cap_body))
        .layer(axum::middleware::from_fn(edge::security_headers))
        .layer(crate::bundle::compression())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn server_fn(State(state): State<AppState>, request: Request<Body>) -> impl IntoResponse {
    let berth = state.berth.clone();
    handle_server_fns_with_context(
        move || {
            provide_context(berth.clone());
            provide_context(app::ssr::RequestMemo::default());
        },
        request,
    )
    .await
}

/// Server functions answer every error with 500 and the error as JSON: the error's own
/// status replaces it (422 for a field to fix, 403, 404, 409…), and a throttled request
/// becomes a 429 with `Retry-After`, like the JSON API's (the page's script reads the error
/// from the body either way).
async fn server_fn_error_status(response: axum::response::Response) -> axum::response::Response {
    use http_body_util::BodyExt;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response(),
    };
    if let Ok(error) = serde_json::from_slice::<views::AppError>(&bytes) {
        parts.status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let views::AppError::Throttled {
            retry_after_secs, ..
        } = error
        {
            parts.headers.insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs.max(1).unsigned_abs()),
            );
        }
    }
    axum::response::Response::from_parts(parts, Body::from(bytes))
}

/// Berth's icon: a berth (a quay) under a hull, in the console's accent colour. Browsers
/// ask for `/favicon.ico` whatever the page links; both names answer the same SVG.
async fn favicon() -> impl IntoResponse {
    const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#2453d6\"/>\
<path d=\"M6 14h20l-3 7H9z\" fill=\"#fff\"/>\
<path d=\"M5 25h22\" stroke=\"#fff\" stroke-width=\"2.5\" stroke-linecap=\"round\"/>\
<path d=\"M15 7h3v7h-3z\" fill=\"#fff\"/></svg>";
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON,
    )
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.berth.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({ "status": "unavailable", "reason": "database unreachable" }),
                ),
            )
        }
    }
}
