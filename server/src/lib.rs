//! The `berth` server: settings, start-up, the HTTP router (pages, server functions, JSON
//! API, health checks), CSRF protection and the administration commands. What a request
//! does is decided in the `service` crate; this crate only speaks HTTP.

pub mod api;
pub mod backup;
pub mod bundle;
pub mod cli;
pub mod client;
pub mod config;
pub mod csrf;
pub mod edge;
pub mod forms;
pub mod live;
pub mod metrics;
pub mod router;
pub mod startup;
pub mod telemetry;

pub use router::AppState;
pub use startup::Application;
