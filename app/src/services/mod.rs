//! Operations shared by the server functions (forms) and the JSON API, so that both
//! validate, authorise, audit and log the same way.

pub mod apps;
pub mod builds;
pub mod credentials;
mod members;

pub use members::{add_member, change_role, remove_member, MemberAdded};
