//! The platform that runs apps, seen from the operation worker. One trait, two adapters: the
//! [`crate::local`] engine (buildah on this host, the embedded default) and, later, Aptible's
//! API. The worker owns ordering, leases and history; a platform only does the work of one
//! operation and reports what it did through an [`OperationLog`].

use crate::registry::{BasicCredentials, Secret};
use domain::{Digest, HealthPath, ImageReference, RegistryHost};
use std::{future::Future, path::PathBuf, pin::Pin};

/// A boxed future, so that the trait can be used as `Arc<dyn Platform>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which app a release belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRef {
    pub id: i64,
    /// The app's team: a platform keeps each team's images apart.
    pub team_id: i64,
    /// `team/app`, for logs, container names and error messages.
    pub name: String,
    /// The app's stable address on a platform that routes (the local engine with its
    /// router): `None` elsewhere, and where no stable port could be given.
    pub route: Option<AppRoute>,
}

/// Where an app is reached whatever release serves it: `http://APP.TEAM.<apps domain>`
/// and its stable port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRoute {
    pub app: String,
    pub team: String,
    pub port: u16,
}

/// Everything needed to run one release of an app.
#[derive(Clone, Debug)]
pub struct ReleaseSpec {
    pub app: AppRef,
    /// The database id of the release; a platform keys its runtime state by it.
    pub release_id: i64,
    /// Pinned by digest (`repo@sha256:…`), so that what runs is what was verified.
    pub image: ImageReference,
    /// The app's configuration, as the release's environment. Values may be secrets: they
    /// must not reach argv, logs or the operation log.
    pub env: Vec<(String, Secret)>,
    /// HTTP path probed on `PORT` before the release takes over (`/` when `None`).
    pub health_path: Option<HealthPath>,
    /// The port the release last served on, to keep its URL across Berth restarts when it
    /// is still free.
    pub preferred_port: Option<u16>,
    /// Values hidden from everything the release prints (its runtime log and the operation
    /// log), wherever in a line they appear: the app's secrets, which an app may well print.
    pub redact: Vec<Secret>,
}

impl ReleaseSpec {
    /// A release of `image` (pinned to its digest) for `app`, with `env` as its
    /// environment, on whatever port is free.
    pub fn new(
        app: AppRef,
        release_id: i64,
        image: ImageReference,
        env: Vec<(String, Secret)>,
        health_path: Option<HealthPath>,
    ) -> Self {
        Self {
            app,
            release_id,
            image,
            env,
            health_path,
            preferred_port: None,
            redact: Vec::new(),
        }
    }

    /// Hides `secrets` from the release's output.
    pub fn redacting(mut self, secrets: Vec<Secret>) -> Self {
        self.redact = secrets;
        self
    }

    /// Asks for the port the release last served on (kept when it is still free).
    pub fn on_port(mut self, port: Option<u16>) -> Self {
        self.preferred_port = port;
        self
    }
}

/// A release that passed its health check and now serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningRelease {
    pub release_id: i64,
    /// The release's own port (it changes with every release).
    pub port: u16,
    /// The app's address, which stays the same across releases when the platform routes
    /// (`http://web.acme.localhost:8000/`); else the release's own
    /// (`http://127.0.0.1:20001/`).
    pub url: String,
    /// The app's stable port's address (`http://127.0.0.1:21000/`) when the platform
    /// routes; else the release's own.
    pub port_url: String,
}

/// What to build for a Dockerfile deploy.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub app: AppRef,
    /// The operation building it; the image is tagged
    /// `localhost/berth/app-<app id>:op-<operation id>`.
    pub operation_id: i64,
    /// A directory holding the checked-out source.
    pub source_dir: PathBuf,
    /// The build context, relative to `source_dir` (`.` for all of it).
    pub context: String,
    /// The Dockerfile, relative to `source_dir` (usually `Dockerfile`).
    pub dockerfile: String,
    /// `--build-arg` values. They may be secrets: they never reach argv, logs or the
    /// operation log. Like Docker, buildah records the values of the arguments a `RUN` step
    /// sees in the image's history (in this server's image storage), which is also what
    /// lets its layer cache tell builds with different values apart; so registry
    /// credentials must never be passed as build args.
    pub build_args: Vec<(String, Secret)>,
    /// Credentials for the registries of the `FROM` images, at most one per registry; a
    /// build may pull bases from several private registries.
    pub registry_credentials: Vec<(RegistryHost, BasicCredentials)>,
}

/// An image a build left in the platform's image storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// `localhost/berth/app-<app id>:op-<operation id>`.
    pub image: ImageReference,
    /// The digest of the built image's manifest (`sha256:…`) as stored on this server.
    pub digest: Digest,
    /// The image's id (the digest of its config, without `sha256:`).
    pub image_id: String,
}

impl BuiltImage {
    /// The image pinned to its digest (`localhost/berth/app-N:op-M@sha256:…`): what a
    /// release of it should name, so that restarts run exactly this build.
    pub fn pinned(&self) -> ImageReference {
        self.image.pinned(&self.digest)
    }
}

/// What [`Platform::prune`] removed from the image storage of an app's team.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The image names it removed (`host/repo@sha256:…`, `localhost/berth/app-N:op-M`).
    pub removed: Vec<String>,
    /// Unnamed images it removed: build steps no build reuses any more, and bases whose tag
    /// moved on.
    pub dangling_removed: usize,
    /// What the storage no longer holds: the layers that went with them (measured before
    /// they were removed).
    pub freed_bytes: u64,
    /// Images it could not remove, each with buildah's reason (a container still uses
    /// it, say); the next prune tries again.
    pub not_removed: Vec<(String, String)>,
    /// Nothing was looked at: another deploy or build of the team was pulling, building or
    /// starting in the same image storage, where an image it is about to run may not have
    /// its name yet. The next prune tries again.
    pub postponed: bool,
}

/// How much of this server's disk the engine holds for one app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// The app's images that are kept, each layer counted once however many of them (or
    /// of other apps' images) share it.
    pub images_bytes: u64,
    /// Its runtime log files (the current one and the rotated one).
    pub logs_bytes: u64,
    /// Its temporary directory: layers a pull is staging, a build's cache mounts.
    pub tmp_bytes: u64,
}

/// Whether `image` names an image Berth built for a Dockerfile deploy
/// (`localhost/berth/app-<app id>:op-<operation id>`, possibly pinned): such an image
/// exists only in this server's storage and can never be pulled again.
pub fn is_built_image(image: &ImageReference) -> bool {
    image.registry().as_str() == BUILT_IMAGE_REGISTRY
        && image
            .repository()
            .strip_prefix("berth/app-")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// The name of the image a build for `operation_id` of `app_id` makes:
/// `localhost/berth/app-<app id>:op-<operation id>`. `localhost` is what c/image calls
/// images that come from no registry.
pub fn built_image_name(app_id: i64, operation_id: i64) -> String {
    format!("{BUILT_IMAGE_REGISTRY}/berth/app-{app_id}:op-{operation_id}")
}

const BUILT_IMAGE_REGISTRY: &str = "localhost";

/// The steps of an operation, shown as progress on the operation page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Verify,
    /// Building the image from a Dockerfile (Dockerfile deploys, instead of `Pull`).
    Build,
    Pull,
    Start,
    HealthCheck,
    Switch,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Verify => "verify",
            Step::Build => "build",
            Step::Pull => "pull",
            Step::Start => "start",
            Step::HealthCheck => "health_check",
            Step::Switch => "switch",
        }
    }

    pub const ALL: [Step; 6] = [
        Step::Verify,
        Step::Build,
        Step::Pull,
        Step::Start,
        Step::HealthCheck,
        Step::Switch,
    ];
}

/// Where a platform reports progress and output while it works on an operation. The worker
/// implements it (redacting secrets and storing lines in the operation's log).
pub trait OperationLog: Send + Sync {
    /// The operation entered `step`.
    fn step(&self, step: Step);
    /// One line of output (from buildah, the release's stdout/stderr, or Berth itself).
    fn line(&self, line: &str);
}

/// Why a platform could not do what was asked, in words for the operation's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The tools the platform needs are missing (e.g. buildah is not installed).
    #[error("{0}")]
    Unavailable(String),
    /// Pulling the image failed (credentials, network, missing image).
    #[error("pulling the image failed: {0}")]
    Pull(String),
    /// Building the image from the Dockerfile failed (a base image could not be pulled, a
    /// step failed, the Dockerfile is missing or invalid).
    #[error("the build failed: {0}")]
    Build(String),
    /// The release did not start.
    #[error("the release did not start: {0}")]
    Start(String),
    /// The release started but did not answer its health check in time.
    #[error("the health check failed: {0}")]
    HealthCheck(String),
    #[error("{0}")]
    Other(String),
}

/// The platform that runs apps.
pub trait Platform: Send + Sync {
    /// `None` when the platform can work; otherwise why not, in words for the deploy form
    /// ("buildah is not installed: apt install buildah").
    fn unavailable(&self) -> BoxFuture<'_, Option<String>>;

    /// Deploys `release`: pull its image with `credentials` (none for public images), start
    /// it, health-check it, and only then switch the app to it. The previous release keeps
    /// running until [`Platform::settle`]. On failure the previous release keeps serving and
    /// nothing of the new one is left running.
    fn deploy<'a>(
        &'a self,
        release: ReleaseSpec,
        credentials: Option<BasicCredentials>,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>>;

    /// Builds the image of a Dockerfile deploy from `spec.source_dir`, pulling its `FROM`
    /// images with `spec.registry_credentials`, streaming the build's output to `log`
    /// under [`Step::Build`]. The image stays in the platform's storage for
    /// [`Platform::deploy_built`] and later restarts.
    fn build<'a>(
        &'a self,
        spec: BuildSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<BuiltImage, PlatformError>>;

    /// Deploys a release of an image [`Platform::build`] made (`release.image` is
    /// [`BuiltImage::pinned`]): like [`Platform::deploy`] without the pull — start,
    /// health check, then switch.
    fn deploy_built<'a>(
        &'a self,
        release: ReleaseSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>>;

    /// Starts `release` again (its image is already pulled) — with a new environment for a
    /// configure operation, or the same one for a restart — health-checks it, then stops
    /// the release it replaces. On failure the running one keeps serving.
    fn restart<'a>(
        &'a self,
        release: ReleaseSpec,
        log: &'a dyn OperationLog,
    ) -> BoxFuture<'a, Result<RunningRelease, PlatformError>>;

    /// At start-up: makes sure `release` runs (adopting it when it kept running while Berth
    /// was away, starting it if it does not), without an operation. Used to bring back
    /// every app's current release after Berth restarts.
    fn ensure_running(
        &self,
        release: ReleaseSpec,
    ) -> BoxFuture<'_, Result<RunningRelease, PlatformError>>;

    /// The operation that switched app `app_id` to a new release is recorded: the releases
    /// it replaced stop (once their requests finish). Until then they keep running, so that
    /// a Berth stopped before the record goes back to the release the database names.
    fn settle(&self, _app_id: i64) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Where the app's current release serves, if it runs on this host.
    fn running(&self, app_id: i64) -> BoxFuture<'_, Option<RunningRelease>>;

    /// The stable ports apps are given, when this platform routes each app's address to
    /// its serving release (the local engine with its router).
    fn route_ports(&self) -> Option<std::ops::RangeInclusive<u16>> {
        None
    }

    /// Recent output of the app's running release (its runtime log), newest last.
    fn runtime_log(&self, app_id: i64, lines: usize) -> BoxFuture<'_, Vec<String>>;

    /// At start-up, once every app's current release was passed to
    /// [`Platform::ensure_running`]: stops what an earlier Berth left running that is no
    /// app's current release (a deploy killed half-way through its switch, a deleted app).
    fn reconciled(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Stops every release this process runs (tests, and a host being emptied).
    fn shutdown(&self) -> BoxFuture<'_, ()>;

    /// Berth is leaving (SIGTERM, an upgrade): releases keep serving, for the next Berth to
    /// adopt.
    fn detach(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Removes from the image storage of `app`'s team every image a deploy put there
    /// (pulled by digest, or built) that `keep` does not name, then the dangling images
    /// (unnamed, used by no other image: stale build steps and bases whose tag moved).
    /// `keep` must name every image any app of the team still needs — every kept release,
    /// and what queued and running operations are about to run — since two apps may run
    /// the same digest. Images named otherwise (a build's `FROM` bases, by tag) stay: they
    /// are the build cache. While another deploy or build of the team is pulling,
    /// building or starting, nothing is pruned (`postponed`): `keep` was read before it
    /// began, and what it pulls is nameless for a moment.
    fn prune<'a>(
        &'a self,
        app: &'a AppRef,
        keep: Vec<ImageReference>,
    ) -> BoxFuture<'a, Result<PruneReport, PlatformError>>;

    /// How much disk the app takes here: `images` (its kept images, those in the storage),
    /// its runtime logs and its temporary directory.
    fn disk_usage<'a>(
        &'a self,
        app: &'a AppRef,
        images: Vec<ImageReference>,
    ) -> BoxFuture<'a, Result<DiskUsage, PlatformError>>;

    /// Whether `image` (pinned to its digest) is in the image storage of `app`'s team: an
    /// image Berth built can be run again only while it is.
    fn has_image<'a>(
        &'a self,
        app: &'a AppRef,
        image: &'a ImageReference,
    ) -> BoxFuture<'a, Result<bool, PlatformError>>;
}
