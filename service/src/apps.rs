//! Apps: creating one (a Dockerfile app with its git source), listing them, one app's page
//! with its release, credentials (names only), configuration (write-only values withheld)
//! and recent operations.

use crate::{
    authz::authorize,
    builds::{self, GitInput},
    config::Environment,
    history, present, redaction, Berth, Error, Result,
};
use domain::{AppHandle, AptibleHandle, DeployMethod, HealthPath, PlatformKind, Role};
use store::{App, AppSummary, Release, TeamAccess};
use views::{
    api::{AppCredentialsView, AppView, RememberedView},
    AppCredentials, AppError, AppPage, AppRow, AppsPage, Flash, LastOperation, ReleaseRow,
};

/// How many recent operations an app's page shows.
const RECENT_OPERATIONS: i64 = 10;

/// A new app as a form or the API gives it.
pub struct NewAppInput<'a> {
    pub handle: &'a str,
    pub method: &'a str,
    pub health_path: Option<&'a str>,
    /// A Dockerfile app's git source; an image app has none.
    pub git: Option<GitInput>,
    /// Where it runs; the local engine when not given.
    pub platform: Option<PlatformInput<'a>>,
}

/// Where a new app runs: `local`, or `aptible` with the handles of an existing Aptible app.
pub struct PlatformInput<'a> {
    pub kind: &'a str,
    pub environment: &'a str,
    pub app: &'a str,
    /// Verify image deploys against the registry first (the default).
    pub verify_images: bool,
}

/// The team's app with `handle`; another team's is "not found".
pub(crate) async fn load(berth: &Berth, access: &TeamAccess, handle: &str) -> Result<App> {
    berth
        .store
        .app(access.team_id, handle)
        .await?
        .ok_or_else(Error::not_found)
}

/// Creates an app; a Dockerfile app needs its git source.
pub async fn create(
    berth: &Berth,
    actor: i64,
    team: &str,
    input: NewAppInput<'_>,
) -> Result<(TeamAccess, App)> {
    // Every field is checked before answering, so that the form shows all its problems at once.
    let mut problems = views::Problems::default();
    let handle = problems.check(AppHandle::parse(input.handle), "handle");
    let method = problems.check(DeployMethod::parse(input.method), "method");
    let health_path = input
        .health_path
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .and_then(|p| problems.check(HealthPath::parse(p), "health_path"));
    let source = match (method, input.git) {
        (Some(DeployMethod::Dockerfile), Some(git)) => {
            Error::noted(&mut problems, builds::parse_source(git))?
        }
        (Some(DeployMethod::Dockerfile), None) => {
            problems.add(
                "git_url",
                "A Dockerfile app builds from a git repository: give its URL.",
            );
            None
        }
        _ => None,
    };
    let platform = match &input.platform {
        None => Some(PlatformKind::Local),
        Some(p) => problems.check(PlatformKind::parse(p.kind), "platform"),
    };
    // The Aptible app's handles, when that is where it runs.
    let aptible_handles = match (platform, &input.platform) {
        (Some(PlatformKind::Aptible), Some(p)) => Some((
            problems.check(AptibleHandle::parse(p.environment), "aptible_environment"),
            problems.check(AptibleHandle::parse(p.app), "aptible_app"),
        )),
        _ => None,
    };
    problems.finish()?;
    let (Some(handle), Some(method), Some(_)) = (handle, method, platform) else {
        return Err(Error::unchecked("app"));
    };
    let access = authorize(&berth.store, actor, team, Role::Deployer, "create apps").await?;
    if let Some(source) = &source {
        source.check_local_root(berth)?;
    }
    // Found on Aptible before anything is stored: a wrong handle creates nothing.
    let aptible = match (aptible_handles, &input.platform) {
        (Some((Some(environment), Some(app))), Some(p)) => Some(
            crate::platforms::find_aptible_app(
                berth,
                access.team_id,
                environment,
                app,
                p.verify_images,
            )
            .await?,
        ),
        _ => None,
    };
    let app = berth
        .store
        .create_app(
            access.team_id,
            store::NewApp {
                handle: &handle,
                method,
                health_path: health_path.as_ref(),
                created_by: actor,
            },
        )
        .await
        .map_err(|e| match e {
            store::StoreError::Taken { .. } => Error::conflict(
                "handle",
                format!("This team already has an app named {handle}; choose another handle."),
            ),
            other => other.into(),
        })?;
    let app = match &aptible {
        Some(target) => {
            berth.store.set_app_on_aptible(app.id, target).await?;
            berth
                .store
                .app_by_id(app.id)
                .await?
                .ok_or_else(Error::not_found)?
        }
        None => app,
    };
    let app = match source {
        Some(source) => {
            let app = builds::store_source(berth, &app, source).await?;
            builds::first_fetch(berth, &app).await;
            app
        }
        None => app,
    };
    tracing::info!(team = %access.handle, app = %handle, by = actor, "app created");
    Ok((access, app))
}

pub async fn list(berth: &Berth, actor: i64, team: &str) -> Result<(TeamAccess, Vec<AppSummary>)> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see apps").await?;
    let apps = berth.store.apps(access.team_id).await?;
    Ok((access, apps))
}

/// One app, for any member.
pub async fn get(berth: &Berth, actor: i64, team: &str, handle: &str) -> Result<(TeamAccess, App)> {
    let access = authorize(&berth.store, actor, team, Role::Viewer, "see apps").await?;
    let app = load(berth, &access, handle).await?;
    Ok((access, app))
}

/// The release an app serves, with where it serves when it runs on this host.
pub async fn release_row(berth: &Berth, app_id: i64, release: Release) -> ReleaseRow {
    let running = berth.platform.running(app_id).await;
    ReleaseRow {
        image: release.image.to_string(),
        digest: release.digest.to_string(),
        port_url: running.as_ref().map(|r| r.port_url.clone()),
        url: running.map(|r| r.url),
        since: release.created_at,
        operation_id: release.operation_id,
    }
}

/// An app as pages and the API show it.
pub async fn row(
    berth: &Berth,
    app: &App,
    last_operation: Option<LastOperation>,
) -> Result<AppRow> {
    let release = match app.current_release_id {
        Some(id) => berth.store.release(id).await?,
        None => None,
    };
    Ok(AppRow {
        handle: app.handle.to_string(),
        method: app.method,
        health_path: app.health_path.as_ref().map(ToString::to_string),
        release: match release {
            Some(release) => Some(release_row(berth, app.id, release).await),
            None => None,
        },
        last_operation,
    })
}

/// A line of the apps list: the summary the store reads in one query, plus where the
/// release serves (asked of the platform).
async fn summary_row(berth: &Berth, a: AppSummary) -> Result<AppRow> {
    let release = match a.release_id {
        Some(id) => berth.store.release(id).await?,
        None => None,
    };
    let last_operation = match (
        a.last_operation_id,
        a.last_operation_kind,
        a.last_operation_status,
        a.last_operation_created_at,
    ) {
        (Some(id), Some(kind), Some(status), Some(at)) => Some(LastOperation {
            id,
            kind,
            status,
            at,
        }),
        _ => None,
    };
    Ok(AppRow {
        handle: a.handle.to_string(),
        method: a.method,
        health_path: None,
        release: match release {
            Some(release) => Some(release_row(berth, a.id, release).await),
            None => None,
        },
        last_operation,
    })
}

/// An app as the JSON API shows it.
pub async fn view(berth: &Berth, app: &App) -> Result<AppView> {
    let row = row(berth, app, None).await?;
    Ok(AppView {
        handle: row.handle,
        method: row.method,
        health_path: row.health_path,
        release: row.release,
        git: builds::source_row(app),
        credentials: AppCredentialsView {
            remembered: app
                .remembered_registry
                .as_ref()
                .zip(app.remembered_username.as_ref())
                .map(|(registry, username)| RememberedView {
                    registry: registry.to_string(),
                    username: username.clone(),
                    at: app.remembered_at,
                }),
            team_credential: app.team_credential_name.clone(),
        },
        platform: crate::platforms::app_platform_view(&app.platform),
        disk: crate::disk::usage(berth, app).await,
    })
}

/// The apps as the JSON API lists them.
pub async fn list_view(berth: &Berth, actor: i64, team: &str) -> Result<Vec<AppRow>> {
    Ok(list_page(berth, actor, team).await?.apps)
}

/// The apps page.
pub async fn list_page(berth: &Berth, actor: i64, team: &str) -> Result<AppsPage> {
    let (access, apps) = list(berth, actor, team).await?;
    let mut rows = Vec::with_capacity(apps.len());
    for app in apps {
        rows.push(summary_row(berth, app).await?);
    }
    Ok(AppsPage {
        team: present::team(&access),
        apps: rows,
    })
}

/// Which registry credentials the app deploys with: names, never values.
pub fn credentials(app: &App) -> AppCredentials {
    AppCredentials {
        remembered: app
            .remembered_registry
            .as_ref()
            .map(ToString::to_string)
            .zip(app.remembered_username.clone()),
        remembered_at: app.remembered_at,
        team_credential: app.team_credential_name.clone(),
    }
}

/// An app's page: its release, credentials (names only), configuration (write-only values
/// withheld), recent operations and what its deploy form offers.
pub async fn page(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    flash: Option<Flash>,
) -> Result<AppPage> {
    let (access, app) = get(berth, actor, team, handle).await?;
    let operations = history::recent(berth, &access, app.id, RECENT_OPERATIONS).await?;
    let last = operations.first().map(present::last_operation);
    let row = row(berth, &app, last).await?;
    let environment = Environment::load(berth, app.id).await?;
    let build = match &app.git_url {
        Some(_) => Some(builds::source_section(berth, &app, &environment).await?),
        None => None,
    };
    let team_credentials = berth
        .store
        .credentials(access.team_id)
        .await?
        .into_iter()
        .map(|c| (c.name.to_string(), c.registry.to_string()))
        .collect();
    let platform = crate::platforms::app_platform_view(&app.platform);
    // Asked of the platform the app runs on: this server's engine being unavailable does not
    // stop an app on Aptible, and a team that must reconnect to Aptible stops only those.
    let platform_unavailable = match berth.ready_for(&app).await {
        Ok(()) => None,
        Err(Error::Refused(AppError::Unavailable { message })) => Some(message),
        Err(error) => return Err(error),
    };
    Ok(AppPage {
        credentials: credentials(&app),
        operations,
        team: present::team(&access),
        app: row,
        config: environment.rows(),
        team_credentials,
        platform,
        platform_unavailable,
        flash,
        build,
        disk: crate::disk::usage(berth, &app).await,
    })
}

/// The app's configuration as a browser may see it (`GET …/config`).
pub async fn config_rows(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
) -> Result<Vec<views::ConfigRow>> {
    let (_, app) = get(berth, actor, team, handle).await?;
    Ok(Environment::load(berth, app.id).await?.rows())
}

/// The lines the console's Logs tab shows (and fetches again while it is open).
pub const LOG_PAGE_LINES: usize = 500;

/// An app's Logs tab: the running release's recent output (secrets hidden), or why the
/// person may not read it.
pub async fn log_page(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
) -> Result<views::AppLogPage> {
    let (access, app) = get(berth, actor, team, handle).await?;
    let row = row(berth, &app, None).await?;
    let platform = crate::platforms::app_platform_view(&app.platform);
    let (lines, withheld) = match crate::authz::check_log_access(&access) {
        Ok(()) => (output(berth, &app, LOG_PAGE_LINES).await?, None),
        Err(Error::Refused(refusal)) => (Vec::new(), Some(refusal.to_string())),
        Err(other) => return Err(other),
    };
    Ok(views::AppLogPage {
        team: present::team(&access),
        app: row,
        platform,
        lines,
        withheld,
        read_at: store::now_ms(),
    })
}

/// Recent output of the app's running release, newest last (`lines` from 1 to 1000).
pub async fn runtime_log(
    berth: &Berth,
    actor: i64,
    team: &str,
    handle: &str,
    lines: usize,
) -> Result<Vec<String>> {
    let (access, app) = get(berth, actor, team, handle).await?;
    crate::authz::check_log_access(&access)?;
    output(berth, &app, lines).await
}

/// The last `lines` of the app's runtime log, secrets hidden.
async fn output(berth: &Berth, app: &App, lines: usize) -> Result<Vec<String>> {
    // The platform hides the app's secrets as lines are written; hiding them again here
    // covers lines written before a value was set or changed.
    let environment = Environment::load(berth, app.id).await?;
    let secrets = redaction::prepare(redaction::app_secrets(berth, app, &environment).await?);
    Ok(berth
        .platform
        .runtime_log(app.id, lines)
        .await
        .iter()
        .map(|line| redaction::redact(line, &secrets))
        .collect())
}
