//! Where Berth meets systems it does not own: [`registry`], the container registry client
//! that verifies credentials and resolves images; [`engine`], the [`Platform`] trait the
//! operation worker drives; and [`local`], the platform that runs apps on this host with
//! buildah (Berth's default); [`aptible`], the client for Aptible's API that forwards
//! operations to apps running there; [`egress`], the guard every outbound request on a
//! user's behalf goes through.

pub mod aptible;
mod disk_use;
pub mod ecr;
pub mod egress;
pub mod engine;
pub mod git;
pub mod local;
pub mod output;
pub mod registry;

pub use engine::{
    AppRef, BoxFuture, DiskUsage, OperationLog, Platform, PlatformError, PruneReport, ReleaseSpec,
    RunningRelease, Step,
};
pub use local::{LocalEngine, LocalSettings};
