pub mod audit;
pub mod auth;
pub mod credentials;
pub mod members;
pub mod team;
pub mod tokens;
