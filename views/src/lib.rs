//! What the browser and the server exchange: the view types that pages render and the JSON
//! API answers with, and [`AppError`], the error that knows which form field it concerns.
//! Plain data that compiles to WebAssembly: no secret is ever a field of these types (a new
//! API token and an invitation link, shown exactly once, are the only exceptions).
//!
//! One module per area of the console; the JSON API's envelopes are in [`api`].

pub mod api;
pub mod apps;
pub mod credentials;
pub mod error;
pub mod operations;
pub mod session;

pub use apps::*;
pub use credentials::*;
pub use error::{AppError, FieldExt, FieldProblem, Problems};
pub use operations::*;
pub use session::*;
