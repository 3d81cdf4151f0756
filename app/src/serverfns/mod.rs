//! Server functions, one module per area of the console. Each is thin: it reads its form
//! fields, calls the `service` crate (which authorises, validates and does the work) and
//! hands the result to the page. Each one that changes state takes `csrf_token`: the
//! server's CSRF middleware checks it before the function runs.

pub mod apps;
pub mod credentials;
pub mod deploy_key;
pub mod deploys;
pub mod history;
pub mod members;
pub mod operations;
pub mod platforms;
pub mod session;
pub mod tokens;
