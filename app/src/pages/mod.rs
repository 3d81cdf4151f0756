pub mod auth;
pub mod members;
pub mod team;
pub mod tokens;
