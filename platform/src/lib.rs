//! Where Berth meets systems it does not own. Today: [`registry`], the container registry
//! client that verifies credentials and resolves images.

pub mod registry;
