//! Server functions for apps and their operations: the apps list, an app's page and its
//! forms (deploy an image, configure, restart), an operation's page (cancel, redeploy by
//! digest) and the history pages. They read the form fields, call `services::apps` (which
//! authorises, verifies and queues) and shape what the browser may see: never a secret.

// A server function takes one argument per form field, so long argument lists are the norm.
#![allow(clippy::too_many_arguments)]

use crate::{error::AppError, model::*};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// How many operations a history page shows.
pub const HISTORY_PAGE: i64 = 50;
/// How many recent operations an app's page shows.
#[cfg(feature = "ssr")]
const RECENT_OPERATIONS: i64 = 10;
/// How many days the history chart covers (today included).
pub const CHART_DAYS: i64 = 30;
#[cfg(feature = "ssr")]
const DAY_MS: i64 = 86_400_000;

/// Reads the configuration-changes textarea: `KEY=value` sets, `-KEY` unsets; blank lines
/// and `#` comments are skipped. Names and values are checked later, with the API's rules.
pub fn parse_env_text(text: &str) -> Result<Vec<(String, Option<String>)>, AppError> {
    let mut changes = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim_start();
        let number = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(key) = line.strip_prefix('-') {
            if key.contains('=') {
                return Err(AppError::invalid(
                    "env",
                    format!("Line {number}: -KEY unsets a variable; leave out the \"=value\"."),
                ));
            }
            changes.push((key.trim().to_owned(), None));
        } else if let Some((key, value)) = line.split_once('=') {
            changes.push((key.trim().to_owned(), Some(value.to_owned())));
        } else {
            return Err(AppError::invalid(
                "env",
                format!("Line {number}: write KEY=value to set a variable, or -KEY to unset it."),
            ));
        }
    }
    Ok(changes)
}

#[cfg(feature = "ssr")]
mod convert {
    use crate::model::*;

    pub fn team(access: &store::TeamAccess) -> TeamSummary {
        TeamSummary {
            handle: access.handle.clone(),
            name: access.name.clone(),
            role: access.role.0,
        }
    }

    pub fn last_operation(o: &store::Operation) -> LastOperation {
        LastOperation {
            id: o.id,
            kind: o.kind.clone(),
            status: o.status.clone(),
            at: o.created_at,
        }
    }

    /// A row of the apps list: the summary the store reads in one query, plus where the
    /// release serves (asked of the platform) and which operation made it.
    pub async fn app_summary(
        state: &crate::ssr::ServerState,
        a: store::AppSummary,
    ) -> Result<AppRow, crate::error::AppError> {
        let release = match a.release_id {
            Some(id) => state.store.release(id).await?,
            None => None,
        };
        let url = match &release {
            Some(_) => state.platform.running(a.id).await.map(|r| r.url),
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
            handle: a.handle,
            method: a.method,
            health_path: None,
            release: release.map(|r| ReleaseRow {
                image: r.image,
                digest: r.digest,
                url,
                since: r.created_at,
                operation_id: r.operation_id,
            }),
            last_operation,
        })
    }

    /// Operations per day for the chart: every one of the last `days` days, empty ones
    /// included, with the mean run time of the operations that ran.
    pub fn days(counts: &[store::DayCount], first_day: i64, days: i64) -> Vec<DayRow> {
        (first_day..first_day + days)
            .map(|day| {
                let mut row = DayRow {
                    day,
                    succeeded: 0,
                    failed: 0,
                    other: 0,
                    avg_duration_ms: None,
                };
                let (mut total_ms, mut timed) = (0i128, 0i128);
                for c in counts.iter().filter(|c| c.day == day) {
                    match c.status.as_str() {
                        "succeeded" => row.succeeded += c.count,
                        "failed" => row.failed += c.count,
                        _ => row.other += c.count,
                    }
                    if let (Some(avg), "succeeded" | "failed") =
                        (c.avg_duration_ms, c.status.as_str())
                    {
                        total_ms += i128::from(avg) * i128::from(c.count);
                        timed += i128::from(c.count);
                    }
                }
                if timed > 0 {
                    row.avg_duration_ms = Some((total_ms / timed) as i64);
                }
                row
            })
            .collect()
    }
}

/// Where a plain form post goes after an operation is queued: the operation's page.
#[cfg(feature = "ssr")]
fn operation_path(team: &str, id: i64) -> String {
    format!("/teams/{team}/operations/{id}")
}

// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_apps(team: String) -> Result<AppsPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, apps) = crate::services::apps::list(&state, user.id, &team).await?;
    let mut rows = Vec::with_capacity(apps.len());
    for app in apps {
        rows.push(convert::app_summary(&state, app).await?);
    }
    Ok(AppsPage {
        team: convert::team(&access),
        apps: rows,
    })
}

/// Creates an app and goes to its page, where it can be deployed. A Dockerfile app also
/// takes its git source: `git_url`, `dockerfile` and `context` (defaults `Dockerfile` and
/// `.`), and optional read credentials `git_username` / `git_password` (stored encrypted).
#[server]
pub async fn create_app(
    csrf_token: String,
    team: String,
    handle: String,
    method: String,
    health_path: Option<String>,
    git_url: Option<String>,
    dockerfile: Option<String>,
    context: Option<String>,
    git_username: Option<String>,
    git_password: Option<String>,
) -> Result<String, AppError> {
    use crate::services::builds::GitInput;
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let git_url = git_url.unwrap_or_default();
    // Without JavaScript the git fields are on the form whatever the method, so a repository
    // given with the image method is most likely a forgotten choice of method.
    let git = match domain::DeployMethod::parse(&method) {
        Ok(domain::DeployMethod::Dockerfile) => Some(GitInput {
            url: git_url,
            dockerfile: dockerfile.unwrap_or_default(),
            context: context.unwrap_or_default(),
            username: git_username.unwrap_or_default(),
            password: git_password.unwrap_or_default(),
        }),
        _ if !git_url.trim().is_empty() => {
            return Err(AppError::invalid(
                "git_url",
                "A repository is for Dockerfile apps: choose \"Dockerfile\" as the deploy method, or leave the repository empty.",
            ))
        }
        _ => None,
    };
    let (access, app) = crate::services::apps::create_with_source(
        &state,
        user.id,
        &team,
        &handle,
        &method,
        health_path.as_deref(),
        git,
    )
    .await?;
    crate::ssr::redirect_plain_form_post(&format!("/teams/{}/apps/{}", access.handle, app.handle));
    Ok(app.handle)
}

/// An app's page: its release, credentials (names only), configuration (secret values
/// withheld), recent operations and what its deploy form offers.
#[server(input = GetUrl)]
pub async fn load_app(team: String, app: String) -> Result<AppPage, AppError> {
    use crate::services::apps::{self as apps, HistoryFilter};
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, found) = apps::get(&state, user.id, &team, &app).await?;
    let release = match found.current_release_id {
        Some(id) => state.store.release(id).await?,
        None => None,
    };
    let filter = HistoryFilter {
        limit: RECENT_OPERATIONS,
        ..Default::default()
    };
    let (_, operations, _) =
        apps::history(&state, user.id, &access.handle, Some(&found.handle), filter).await?;
    let last = operations.first().map(convert::last_operation);
    let row = apps::app_row(&state, &found, release, last).await;
    let config_values = apps::config(&state, found.id).await?;
    let build = match found.git_url {
        Some(_) => {
            Some(build_source(&state, user.id, &access.handle, &found, &config_values).await?)
        }
        None => None,
    };
    let config = apps::config_rows(config_values);
    let team_credentials = state
        .store
        .credentials(access.team_id)
        .await?
        .into_iter()
        .map(|c| (c.name, c.registry))
        .collect();
    Ok(AppPage {
        credentials: AppCredentials {
            remembered: found
                .remembered_registry
                .clone()
                .zip(found.remembered_username.clone()),
            remembered_at: found.remembered_at,
            team_credential: found.team_credential_name.clone(),
        },
        operations: operations
            .into_iter()
            .map(|o| apps::operation_row(&access.handle, o))
            .collect(),
        team: convert::team(&access),
        app: row,
        config,
        team_credentials,
        platform_unavailable: state.platform.unavailable().await,
        flash: crate::ssr::take_flash().await?,
        build,
    })
}

/// A Dockerfile app's source and refs for its page. An unreachable repository must not take
/// the page down with it: the error is shown in the section, with the Fetch button to retry.
#[cfg(feature = "ssr")]
async fn build_source(
    state: &crate::ssr::ServerState,
    user_id: i64,
    team: &str,
    app: &store::App,
    config: &[(domain::ConfigKey, String)],
) -> Result<BuildSource, AppError> {
    use crate::services::builds::{
        self, PRIVATE_REGISTRY_HOST, PRIVATE_REGISTRY_PASSWORD, PRIVATE_REGISTRY_USERNAME,
    };
    use platform::git::RefKind;
    // The first fetch of a repository happens here; a slow remote must not hold the page.
    const FIRST_FETCH: std::time::Duration = std::time::Duration::from_secs(15);
    let listed = tokio::time::timeout(
        FIRST_FETCH,
        builds::refs(state, user_id, team, &app.handle, false),
    )
    .await;
    let (refs, refs_error) = match listed {
        Ok(Ok((_, _, refs, _))) => (refs, None),
        Ok(Err(error)) => (Vec::new(), Some(error.to_string())),
        Err(_) => (
            Vec::new(),
            Some(format!(
                "The repository did not answer within {} seconds. Try Fetch again.",
                FIRST_FETCH.as_secs()
            )),
        ),
    };
    let value = |key: &str| {
        config
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    };
    Ok(BuildSource {
        source: GitSourceRow {
            url: app.git_url.clone().unwrap_or_default(),
            dockerfile: app
                .dockerfile_path
                .clone()
                .unwrap_or_else(|| "Dockerfile".into()),
            context: app.context_path.clone().unwrap_or_else(|| ".".into()),
            username: app.git_username.clone(),
        },
        refs: refs
            .into_iter()
            .map(|r| GitRefRow {
                kind: match r.kind {
                    RefKind::Branch => "branch",
                    RefKind::Tag => "tag",
                }
                .to_owned(),
                short_commit: r.commit.short().to_owned(),
                commit: r.commit.as_str().to_owned(),
                name: r.name,
                subject: r.subject,
                committed_at: r.committed_at,
            })
            .collect(),
        refs_error,
        deployed_commit: builds::deployed_commit(state, app).await?,
        private_registry_configured: value(PRIVATE_REGISTRY_USERNAME).is_some()
            && value(PRIVATE_REGISTRY_PASSWORD).is_some(),
        private_registry_host: value(PRIVATE_REGISTRY_HOST).map(str::to_owned),
    })
}

/// Fetches a Dockerfile app's repository again, so that new branches, tags and commits show.
/// Answers how many branches and tags it has.
#[server]
pub async fn fetch_refs(csrf_token: String, team: String, app: String) -> Result<usize, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, found, refs, _) =
        crate::services::builds::refs(&state, user.id, &team, &app, true).await?;
    crate::ssr::redirect_plain_form_post(&format!(
        "/teams/{}/apps/{}#source-heading",
        access.handle, found.handle
    ));
    Ok(refs.len())
}

/// The team credential for the image's registry host, when the form left the choice to
/// Berth: exactly one must match.
#[cfg(feature = "ssr")]
async fn team_credential_for_host(
    state: &crate::ssr::ServerState,
    user_id: i64,
    team: &str,
    image: &str,
) -> Result<String, AppError> {
    use crate::error::FieldExt;
    let image = domain::ImageReference::parse(image).field("image")?;
    let access = state
        .store
        .team_access(user_id, team)
        .await?
        .ok_or(AppError::NotFound)?;
    let host = image.registry().as_str();
    let matching: Vec<String> = state
        .store
        .credentials(access.team_id)
        .await?
        .into_iter()
        .filter(|c| c.registry == host)
        .map(|c| c.name)
        .collect();
    match matching.as_slice() {
        [name] => Ok(name.clone()),
        [] => Err(AppError::invalid(
            "credential",
            format!(
                "No team credential is for {host}. Choose another option, or ask an owner to add one for {host}."
            ),
        )),
        several => Err(AppError::invalid(
            "credential",
            format!(
                "Several team credentials are for {host} ({}); choose one by name.",
                several.join(", ")
            ),
        )),
    }
}

/// Verifies and queues a deploy of an image; answers the operation's id. `credentials` is
/// `auto`, `remembered`, `team` (with `credential`, or matched by registry host when it is
/// empty), `new` (with `registry_username`, `registry_password` and `remember`: `app` or
/// `once`) or `none`. `env_text` holds configuration changes applied with the deploy.
#[server]
pub async fn deploy_image(
    csrf_token: String,
    team: String,
    app: String,
    image: String,
    credentials: Option<String>,
    credential: Option<String>,
    registry_username: Option<String>,
    registry_password: Option<String>,
    remember: Option<String>,
    env_text: Option<String>,
) -> Result<i64, AppError> {
    use crate::services::apps::{self as apps, CredentialChoice, DeployInput};
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let env = parse_env_text(env_text.as_deref().unwrap_or_default())?;
    let credential = credential.filter(|c| !c.trim().is_empty());
    let choice = match credentials.as_deref().map(str::trim).unwrap_or("auto") {
        "auto" | "" => CredentialChoice::Auto,
        "remembered" => CredentialChoice::Remembered,
        "team" => CredentialChoice::Team(match credential {
            Some(name) => name,
            None => team_credential_for_host(&state, user.id, &team, &image).await?,
        }),
        "new" => CredentialChoice::Given {
            username: registry_username.unwrap_or_default(),
            password: registry_password.unwrap_or_default(),
            remember: match remember.as_deref().map(str::trim) {
                None | Some("") | Some("app") => true,
                Some("once") => false,
                Some(other) => {
                    return Err(AppError::invalid(
                        "remember",
                        format!("\"{other}\" is not a choice; use \"app\" or \"once\"."),
                    ))
                }
            },
        },
        "none" => CredentialChoice::None,
        other => {
            return Err(AppError::invalid(
                "credentials",
                format!("\"{other}\" is not a choice; use auto, remembered, team, new or none."),
            ))
        }
    };
    let (access, operation) = apps::deploy(
        &state,
        user.id,
        &team,
        &app,
        DeployInput {
            image,
            credentials: choice,
            env,
        },
    )
    .await?;
    crate::ssr::redirect_plain_form_post(&operation_path(&access.handle, operation.id));
    Ok(operation.id)
}

/// Verifies and queues a Dockerfile deploy of `git_ref` (a branch, tag or commit); answers
/// the operation's id. `registry_username` / `registry_password` are the credentials for
/// private base images: they become the `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD`
/// configuration changes of this same operation, like the changes in `env_text` (one
/// build, one restart).
#[server]
pub async fn deploy_ref(
    csrf_token: String,
    team: String,
    app: String,
    git_ref: String,
    registry_username: Option<String>,
    registry_password: Option<String>,
    env_text: Option<String>,
) -> Result<i64, AppError> {
    use crate::services::builds::{self, PRIVATE_REGISTRY_PASSWORD, PRIVATE_REGISTRY_USERNAME};
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let mut changes = parse_env_text(env_text.as_deref().unwrap_or_default())?;
    let username = registry_username.filter(|u| !u.trim().is_empty());
    let password = registry_password.filter(|p| !p.is_empty());
    let given = username.is_some() || password.is_some();
    match (username, password) {
        (Some(username), Some(password)) => {
            if let Some((key, _)) = changes
                .iter()
                .find(|(k, _)| k == PRIVATE_REGISTRY_USERNAME || k == PRIVATE_REGISTRY_PASSWORD)
            {
                return Err(AppError::invalid(
                    "env",
                    format!(
                        "{key} is also given in the registry fields; give it in one place only."
                    ),
                ));
            }
            changes.push((
                PRIVATE_REGISTRY_USERNAME.to_owned(),
                Some(username.trim().to_owned()),
            ));
            changes.push((PRIVATE_REGISTRY_PASSWORD.to_owned(), Some(password)));
        }
        (Some(_), None) => {
            return Err(AppError::invalid(
                "registry_password",
                "Give the password or token that goes with the registry username.",
            ))
        }
        (None, Some(_)) => {
            return Err(AppError::invalid(
                "registry_username",
                "Give the registry username that goes with the password or token.",
            ))
        }
        (None, None) => {}
    }
    let (access, operation) = builds::deploy_ref(&state, user.id, &team, &app, &git_ref, &changes)
        .await
        .map_err(|error| match error {
            // The configuration credentials that failed are the ones typed into the
            // registry fields: say so next to them rather than under the textarea.
            AppError::VerificationFailed {
                field,
                reason,
                message,
            } if given && field == "env" => AppError::VerificationFailed {
                field: "registry_password".into(),
                reason,
                message,
            },
            other => other,
        })?;
    crate::ssr::redirect_plain_form_post(&operation_path(&access.handle, operation.id));
    Ok(operation.id)
}

/// Queues a configure operation (which restarts the running release with the changes).
#[server]
pub async fn configure_app(
    csrf_token: String,
    team: String,
    app: String,
    env_text: String,
) -> Result<i64, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let changes = parse_env_text(&env_text)?;
    let (access, operation) =
        crate::services::apps::configure(&state, user.id, &team, &app, &changes).await?;
    crate::ssr::redirect_plain_form_post(&operation_path(&access.handle, operation.id));
    Ok(operation.id)
}

/// Queues a restart of the running release.
#[server]
pub async fn restart_app(csrf_token: String, team: String, app: String) -> Result<i64, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, operation) = crate::services::apps::restart(&state, user.id, &team, &app).await?;
    crate::ssr::redirect_plain_form_post(&operation_path(&access.handle, operation.id));
    Ok(operation.id)
}

/// Cancels a queued operation.
#[server]
pub async fn cancel_operation(csrf_token: String, id: i64) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    crate::services::apps::cancel(&state, user.id, id).await?;
    let (access, _) = crate::services::apps::operation(&state, user.id, id).await?;
    crate::ssr::redirect_plain_form_post(&operation_path(&access.handle, id));
    Ok(())
}

/// Deploys again the exact digest an earlier deploy ran; answers the new operation's id.
#[server]
pub async fn redeploy_operation(csrf_token: String, id: i64) -> Result<i64, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, operation) = crate::services::apps::redeploy(&state, user.id, id).await?;
    crate::ssr::redirect_plain_form_post(&operation_path(&access.handle, operation.id));
    Ok(operation.id)
}

/// An operation with its log so far and, for a finished deploy of a tag, whether the tag
/// now names another digest.
#[server(input = GetUrl)]
pub async fn load_operation(id: i64) -> Result<OperationPage, AppError> {
    use domain::Role;
    // Asking the registry must not hold the page up for long.
    const TAG_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
    const MAX_LOG_LINES: i64 = 10_000;
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (access, operation) = crate::services::apps::operation(&state, user.id, id).await?;
    let log = state
        .store
        .operation_log(id, 0, MAX_LOG_LINES)
        .await?
        .into_iter()
        .map(|l| LogLineRow {
            id: l.id,
            at: l.at,
            line: l.line,
        })
        .collect();
    let tag_moved_to = if operation.kind == "deploy"
        && matches!(operation.status.as_str(), "succeeded" | "failed")
    {
        tokio::time::timeout(
            TAG_CHECK,
            crate::services::apps::tag_moved(&state, &operation),
        )
        .await
        .ok()
        .flatten()
    } else {
        None
    };
    Ok(OperationPage {
        can_deploy: access.role.0.allows(Role::Deployer),
        team: convert::team(&access),
        operation: crate::services::apps::operation_row(&access.handle, operation),
        log,
        tag_moved_to,
    })
}

/// A page of the team's (or one app's) history, newest first, with the chart's numbers
/// for the last [`CHART_DAYS`] days and the members for the "requested by" filter.
#[server(input = GetUrl)]
pub async fn load_history(
    team: String,
    app: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    requested_by: Option<i64>,
    before: Option<i64>,
) -> Result<HistoryPage, AppError> {
    use crate::services::apps::{self as apps, HistoryFilter};
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let filter = HistoryFilter {
        kind: kind.as_deref(),
        status: status.as_deref(),
        requested_by,
        before,
        limit: HISTORY_PAGE,
    };
    let (access, operations, next) =
        apps::history(&state, user.id, &team, app.as_deref(), filter).await?;
    let app_id = match &app {
        Some(handle) => Some(
            state
                .store
                .app(access.team_id, handle)
                .await?
                .ok_or(AppError::NotFound)?
                .id,
        ),
        None => None,
    };
    let first_day = store::now_ms().div_euclid(DAY_MS) - (CHART_DAYS - 1);
    let counts = state
        .store
        .operation_days(access.team_id, app_id, first_day * DAY_MS)
        .await?;
    let members = state
        .store
        .members(access.team_id)
        .await?
        .into_iter()
        .map(|m| (m.user_id, m.email))
        .collect();
    Ok(HistoryPage {
        app,
        operations: operations
            .into_iter()
            .map(|o| apps::operation_row(&access.handle, o))
            .collect(),
        next,
        days: convert::days(&counts, first_day, CHART_DAYS),
        members,
        team: convert::team(&access),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_text_sets_and_unsets() {
        let text =
            "# comment\nLOG_LEVEL=debug\n\n  -OLD_FLAG\r\nURL=https://x.example/?a=b\nEMPTY=\n";
        assert_eq!(
            parse_env_text(text).unwrap(),
            vec![
                ("LOG_LEVEL".to_owned(), Some("debug".to_owned())),
                ("OLD_FLAG".to_owned(), None),
                ("URL".to_owned(), Some("https://x.example/?a=b".to_owned())),
                ("EMPTY".to_owned(), Some(String::new())),
            ]
        );
    }

    #[test]
    fn configuration_text_errors_name_the_line() {
        let error = parse_env_text("A=1\nnonsense").unwrap_err();
        assert_eq!(error.field(), Some("env"));
        assert!(error.to_string().starts_with("Line 2:"));
        assert!(parse_env_text("-A=1").is_err());
    }
}

/// Checks every external base image of `git_ref`'s Dockerfile with the credential a deploy
/// would use. Reads only (a GET): nothing is queued.
#[server(input = GetUrl)]
pub async fn check_base_images(
    team: String,
    app: String,
    git_ref: String,
) -> Result<BaseCheckReport, AppError> {
    let user = crate::ssr::require_user().await?;
    let state = crate::ssr::state()?;
    let (_, commit, checks) =
        crate::services::builds::check_bases(&state, user.id, &team, &app, &git_ref).await?;
    Ok(BaseCheckReport {
        git_ref: git_ref.trim().to_owned(),
        commit: commit.as_str().to_owned(),
        bases: checks
            .into_iter()
            .map(|c| BaseCheckRow {
                image: c.base.image,
                line: c.base.line,
                credential: c.base.credential,
                problem: c.problem,
            })
            .collect(),
    })
}
