//! How the browser bundle and the pages travel: the bundle's files (named after a hash of
//! their content by `xtask site`, with `.br` and `.gz` copies beside them) are sent
//! precompressed and kept by browsers for a year; pages and JSON are compressed as they go.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::Response,
    Router,
};
use std::path::Path;
use tower_http::{
    compression::{CompressionLayer, CompressionLevel},
    services::ServeDir,
};

/// A year: a file's name changes with its content, so what a browser has never goes stale.
const FOREVER: &str = "public, max-age=31536000, immutable";

/// Serves the bundle's directory: the brotli or gzip copy of a file when the browser takes
/// it, with the cache header on what was found.
pub fn router<S: Clone + Send + Sync + 'static>(pkg: &Path) -> Router<S> {
    Router::new()
        .fallback_service(ServeDir::new(pkg).precompressed_br().precompressed_gzip())
        .layer(axum::middleware::map_response(cache_forever))
}

async fn cache_forever(mut response: Response) -> Response {
    if matches!(
        response.status(),
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(FOREVER));
    }
    response
}

/// Compresses answers (pages, JSON, the metrics) for browsers that take brotli or gzip;
/// not the live logs' event streams, which must reach the browser line by line, and not
/// what is already compressed. A fast level: pages are made for each request.
pub fn compression() -> CompressionLayer {
    CompressionLayer::new()
        .br(true)
        .gzip(true)
        .quality(CompressionLevel::Precise(4))
}
