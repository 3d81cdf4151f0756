//! Reads a Dockerfile's `FROM` lines the way Docker (BuildKit) and buildah do, to learn every
//! external image a build pulls before the build starts: Berth chooses and verifies registry
//! credentials for each of them.
//!
//! Only what decides the base images is interpreted: parser directives (`# escape=`),
//! comments, line continuations, heredoc bodies (skipped), global `ARG`s and `FROM`. Other
//! instructions are passed over; buildah reports their mistakes when it builds.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! let dockerfile = "ARG NODE=20\nFROM node:${NODE} AS build\nRUN npm ci\nFROM build\n";
//! let bases = dockerfile::base_images(dockerfile, &BTreeMap::new()).unwrap();
//! assert_eq!(bases.len(), 1);
//! assert_eq!(bases[0].image.to_string(), "docker.io/library/node:20");
//! assert_eq!(bases[0].line, 2);
//! ```

mod error;
mod instructions;
mod run_options;
mod stages;
mod substitution;

pub use error::{DockerfileError, ErrorKind};
pub use instructions::MAX_DOCKERFILE_BYTES;
pub use run_options::{refused_run_options, RefusedRunOption};
pub use stages::{BaseImage, Stage, StageBase, Stages, MAX_STAGES};
pub use substitution::{MAX_EXPANSION, MAX_TOTAL_EXPANSION};

use std::collections::BTreeMap;

/// Every external image `dockerfile` pulls, once per `FROM` that names it, in file order.
/// Stages built on earlier stages and `FROM scratch` pull nothing and are left out.
pub fn base_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<BaseImage>, DockerfileError> {
    Ok(Stages::parse(dockerfile, build_args)?.base_images())
}
