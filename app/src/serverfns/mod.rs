//! Server functions, one module per area. Each one that changes state takes `csrf_token`:
//! the server's CSRF middleware checks it before the function runs.

pub mod apps;
pub mod credentials;
pub mod members;
pub mod session;
pub mod tokens;
