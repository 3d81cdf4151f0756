//! `/metrics`: Berth's counters and histograms in the Prometheus text format, for the
//! addresses the operator allows (`BERTH_METRICS_ALLOW`; none by default, and then the
//! endpoint does not exist). Metrics are recorded where things happen (the worker, the
//! registry client, the ECR client, the HTTP layer below) through the `metrics` facade; this
//! module installs the one recorder per process and renders it.
//!
//! - `berth_operations_total{kind, outcome}` and `berth_operation_duration_seconds{kind,
//!   outcome}`: operations as they end (deploy, configure, restart; succeeded, failed,
//!   cancelled);
//! - `berth_operations_queued`, `berth_operations_running`: the queue, read at each scrape;
//! - `berth_registry_verifications_total{outcome}`: `ok`, or the failure's kind;
//! - `berth_ecr_tokens_total{outcome}`: `minted`, `reused`, or the AWS step that failed;
//! - `berth_http_request_duration_seconds{method, route, status}`: by route template, so
//!   that the number of series stays bounded.

use crate::router::AppState;
use axum::{
    body::Body,
    extract::{ConnectInfo, MatchedPath, State},
    http::{header, Request, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use service::client_ip::Cidr;
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Instant,
};

/// Seconds: from a fast page to a long build.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0,
];

/// The endpoint's settings and the process's recorder.
#[derive(Clone, Default)]
pub struct Metrics {
    allow: Arc<Vec<Cidr>>,
    handle: Option<PrometheusHandle>,
}

impl Metrics {
    /// `/metrics` for these address blocks; none: no endpoint (and nothing recorded).
    pub fn new(allow: Vec<Cidr>) -> Self {
        let handle = if allow.is_empty() { None } else { recorder() };
        Self {
            allow: Arc::new(allow),
            handle,
        }
    }
}

impl Metrics {
    /// Whether `/metrics` exists (and so whether anything is worth recording).
    pub fn enabled(&self) -> bool {
        self.handle.is_some()
    }
}

/// The process's one Prometheus recorder, installed on first use.
fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("fixed buckets are valid");
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "cannot record metrics");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`: the text format for allowed addresses; 404 for everyone else, as if it
/// did not exist.
pub async fn endpoint(State(state): State<AppState>, request: Request<Body>) -> Response {
    let Some(handle) = &state.metrics.handle else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let client = state
        .berth
        .accounts
        .trusted_proxies
        .client_ip(peer, forwarded);
    if !client.is_some_and(|ip| state.metrics.allow.iter().any(|block| block.contains(ip))) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.berth.store.queue_depth().await {
        Ok((queued, running)) => {
            metrics::gauge!("berth_operations_queued").set(queued as f64);
            metrics::gauge!("berth_operations_running").set(running as f64);
        }
        Err(error) => tracing::warn!(%error, "cannot read the queue for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Times every request by its route template (`/api/v1/teams/{team}/apps`), not its path.
pub async fn track(request: Request<Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "berth_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}
