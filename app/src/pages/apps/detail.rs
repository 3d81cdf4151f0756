//! An app's pages, in tabs (each its own address, so they work without JavaScript):
//! Overview (the release, disk, recent operations), Deploy (credentials, a Dockerfile app's
//! source and base images, the deploy form), Configuration (variables, restart), Logs (the
//! running release's output) and History (`pages::history`).

use super::{
    config::{ConfigTable, ConfigureForm},
    deploy_form::{DeployImageIsland, DeployRefIsland, DeployRefSource, DeployTarget},
    follow_to_operation, param,
    source::{BaseCheck, BaseCredentials, SourceSection},
};
use crate::{
    components::{
        copy::Digest,
        flash::human_size,
        form::{Csrf, FormError},
        layout::{Console, Loaded, Me, Section},
        time::Time,
    },
    pages::operations::OperationsTable,
    serverfns::apps::{load_app, ConfigureApp, FetchRefs, RestartApp},
};
use domain::Role;
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use views::{AppPage, DiskUsageView};

/// The tabs of an app's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppTab {
    Overview,
    Deploy,
    Configuration,
    Logs,
    History,
}

impl AppTab {
    const ALL: [AppTab; 5] = [
        AppTab::Overview,
        AppTab::Deploy,
        AppTab::Configuration,
        AppTab::Logs,
        AppTab::History,
    ];

    fn label(self) -> &'static str {
        match self {
            AppTab::Overview => "Overview",
            AppTab::Deploy => "Deploy",
            AppTab::Configuration => "Configuration",
            AppTab::Logs => "Logs",
            AppTab::History => "History",
        }
    }

    /// The tab's address under the app's.
    pub fn href(self, team: &str, app: &str) -> String {
        let tail = match self {
            AppTab::Overview => "",
            AppTab::Deploy => "/deploy",
            AppTab::Configuration => "/config",
            AppTab::Logs => "/logs",
            AppTab::History => "/history",
        };
        format!("/teams/{team}/apps/{app}{tail}")
    }
}

/// The app's tabs, as links (the current one marked for assistive technology). Deployers
/// and owners see Deploy; everyone sees the rest.
#[component]
pub fn AppTabs(team: String, app: String, current: AppTab, can_deploy: bool) -> impl IntoView {
    let tabs = AppTab::ALL
        .into_iter()
        .filter(|tab| can_deploy || *tab != AppTab::Deploy)
        .map(|tab| {
            view! {
                <li><a href=tab.href(&team, &app)
                    aria-current=(tab == current).then_some("page")>{tab.label()}</a></li>
            }
        })
        .collect_view();
    view! { <nav class="tabs" aria-label="App"><ul>{tabs}</ul></nav> }
}

/// The top of each of an app's tabs: breadcrumb, name, how it deploys, the tabs.
#[component]
pub fn AppHeader(
    team: String,
    app: views::AppRow,
    /// `environment/app` when the app runs on Aptible.
    on_aptible: Option<String>,
    tab: AppTab,
    can_deploy: bool,
) -> impl IntoView {
    let deploy_href = AppTab::Deploy.href(&team, &app.handle);
    view! {
        <p class="breadcrumb"><a href=format!("/teams/{team}/apps")>"Apps"</a> " /"</p>
        <header class="page-header">
            <div>
                <h1>{app.handle.clone()}</h1>
                <p class="muted">{app.method.label()} " deploy"
                    {app.health_path.clone().map(|p| view! { " · health check " <code>{p}</code> })}
                    {on_aptible.map(|target| view! { " · runs on Aptible as " <code>{target}</code> })}</p>
            </div>
            {(can_deploy && tab != AppTab::Deploy).then(|| view! {
                <div class="row-actions">
                    <a class="button button-primary" href=deploy_href>"Deploy"</a>
                </div>
            })}
        </header>
        <AppTabs team app=app.handle current=tab can_deploy/>
    }
}

/// `environment/app` when the app runs on Aptible.
pub fn aptible_target(platform: &views::api::AppPlatformView) -> Option<String> {
    match (&platform.environment, &platform.app) {
        (Some(environment), Some(app)) if platform.kind == "aptible" => {
            Some(format!("{environment}/{app}"))
        }
        _ => None,
    }
}

/// The app's Overview tab.
#[component]
pub fn AppDetailPage() -> AnyView {
    view! { <AppTabPage tab=AppTab::Overview/> }.into_any()
}

/// The app's Deploy tab.
#[component]
pub fn AppDeployPage() -> AnyView {
    view! { <AppTabPage tab=AppTab::Deploy/> }.into_any()
}

/// The app's Configuration tab.
#[component]
pub fn AppConfigPage() -> AnyView {
    view! { <AppTabPage tab=AppTab::Configuration/> }.into_any()
}

#[component]
fn AppTabPage(tab: AppTab) -> AnyView {
    let team = param("team");
    let app = param("app");
    let fetch = ServerAction::<FetchRefs>::new();
    let configure = ServerAction::<ConfigureApp>::new();
    let restart = ServerAction::<RestartApp>::new();
    // A fetch changes what the page lists: load it again once the fetch has run.
    let page = Resource::new(
        move || (team(), app(), fetch.version().get()),
        |(team, app, _)| load_app(team, app),
    );
    follow_to_operation(configure.value().into(), team);
    follow_to_operation(restart.value().into(), team);
    view! {
        <Title text="App"/>
        <Loaded page loading="Loading the app…" let(me, page)>
            <AppDetail me page tab fetch configure restart/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn AppDetail(
    me: Me,
    page: AppPage,
    tab: AppTab,
    fetch: ServerAction<FetchRefs>,
    configure: ServerAction<ConfigureApp>,
    restart: ServerAction<RestartApp>,
) -> impl IntoView {
    let now = crate::now_ms();
    let build = page.build.clone();
    let dockerfile = build.is_some();
    let team = page.team.handle.clone();
    let a = page.app.clone();
    let can_deploy = page.team.role.allows(Role::Deployer);
    let history_href = format!("/teams/{team}/apps/{}/history", a.handle);
    let credentials = page.credentials.clone();
    let has_release = a.release.is_some();
    let unavailable = page.platform_unavailable.clone();
    // `environment/app` when the app runs on Aptible.
    let on_aptible = aptible_target(&page.platform);
    let base_check_flash = match page.flash.clone() {
        Some(views::Flash::BaseCheck(report)) => Some(report),
        _ => None,
    };
    let title = match tab {
        AppTab::Overview => a.handle.clone(),
        other => format!("{} · {}", other.label(), a.handle),
    };
    let deploy_href = AppTab::Deploy.href(&team, &a.handle);
    let (console_me, console_team) = (me.clone(), team.clone());
    let header = view! {
        <AppHeader team=team.clone() app=a.clone() on_aptible=on_aptible.clone() tab can_deploy/>
    };
    let content = match tab {
        AppTab::Overview => view! {
            <section class="panel" aria-labelledby="release-heading">
                <h2 id="release-heading">"Current release"</h2>
                {match a.release.clone() {
                    Some(r) => view! {
                        <dl class="facts">
                            <dt>"Image"</dt><dd><code>{r.image}</code></dd>
                            <dt>"Digest"</dt><dd><Digest value=r.digest/></dd>
                            <dt>"Since"</dt><dd><Time ms=r.since now/> " · "
                                <a href=format!("/teams/{team}/operations/{}", r.operation_id)>{format!("operation #{}", r.operation_id)}</a></dd>
                            <dt>"URL"</dt><dd>{match (r.url, on_aptible.clone()) {
                                (Some(url), _) => view! { <a href=url.clone()>{url.clone()}</a> }.into_any(),
                                (None, Some(target)) => view! { <span class="muted">"served by Aptible (app " <code>{target}</code> ")"</span> }.into_any(),
                                (None, None) => view! { <span class="muted">"not running on this server"</span> }.into_any(),
                            }}</dd>
                            {r.port_url.filter(|_| on_aptible.is_none()).map(|port_url| view! {
                                <dt>"Stable port"</dt><dd><a href=port_url.clone()>{port_url.clone()}</a>
                                    <span class="muted">" · the same for every release"</span></dd>
                            })}
                        </dl>
                    }.into_any(),
                    None => view! {
                        <p class="muted">"Not deployed yet. "
                            {match (can_deploy, dockerfile) {
                                (true, false) => view! { <a href=deploy_href.clone()>"Deploy an image"</a> ": Berth verifies it can pull the image before anything is queued." }.into_any(),
                                (true, true) => view! { <a href=deploy_href.clone()>"Deploy a branch, tag or commit"</a> ": Berth checks that it can pull every base image before anything is built." }.into_any(),
                                (false, _) => "A deployer or an owner deploys it.".into_any(),
                            }}</p>
                    }.into_any(),
                }}
            </section>

            {page.disk.map(|disk| view! { <DiskSection disk now/> })}

            <section class="panel" aria-labelledby="operations-heading">
                <h2 id="operations-heading">"Recent operations"</h2>
                {if page.operations.is_empty() {
                    view! { <div class="empty-state"><p>"No operations yet: a deploy will be the first."</p></div> }.into_any()
                } else {
                    view! {
                        <OperationsTable team=page.team.handle.clone() operations=page.operations.clone() now show_app=false caption="Recent operations"/>
                        <p><a href=history_href>"Full history"</a></p>
                    }.into_any()
                }}
            </section>
        }.into_any(),
        AppTab::Deploy => match build.clone() {
            Some(build) => view! {
                <SourceSection git=build.clone() csrf=me.csrf.clone() team=team.clone() app=a.handle.clone() action=fetch now/>
                <BaseCredentials git=build.clone() team=team.clone() team_credentials=page.team_credentials.clone()/>
                <BaseCheck csrf=me.csrf.clone() team=team.clone() app=a.handle.clone() can_check=can_deploy
                    registries=build.base_registries.clone() flash=base_check_flash.clone()/>
                {can_deploy.then(|| view! {
                    <DeployRefIsland csrf=me.csrf.clone() target=DeployTarget::of(&page) git=DeployRefSource::of(&page, &build)/>
                })}
            }.into_any(),
            None => view! {
                <CredentialsSection team=team.clone() credentials=credentials.clone()
                    team_credentials=page.team_credentials.clone()
                    release_image=a.release.as_ref().map(|r| r.image.clone()) now/>
                {can_deploy.then(|| view! {
                    <DeployImageIsland csrf=me.csrf.clone() target=DeployTarget::of(&page)/>
                })}
            }.into_any(),
        },
        AppTab::Configuration => view! {
            <section class="panel" aria-labelledby="config-heading">
                <h2 id="config-heading">"Configuration"</h2>
                <ConfigTable page=page.clone()/>
                {can_deploy.then(|| view! {
                    <ConfigureForm csrf=me.csrf.clone() team=team.clone() app=a.handle.clone()
                        has_release dockerfile action=configure/>
                })}
            </section>

            {(can_deploy && has_release).then(|| {
                let outcome: Signal<_> = restart.value().into();
                view! {
                    <section class="panel" aria-labelledby="restart-heading">
                        <h2 id="restart-heading">"Restart"</h2>
                        <p class="muted">{if on_aptible.is_some() {
                            "Aptible restarts the current release with the current configuration."
                        } else {
                            "Starts the current release again with the current configuration, waits for its health check, then switches over."
                        }}</p>
                        <ActionForm action=restart>
                            <Csrf token=me.csrf.clone()/>
                            <input type="hidden" name="team" value=team.clone()/>
                            <input type="hidden" name="app" value=a.handle.clone()/>
                            <FormError outcome fields=&[]/>
                            <button type="submit" class="button" disabled=unavailable.is_some()>"Restart"</button>
                        </ActionForm>
                    </section>
                }
            })}
        }.into_any(),
        // Served by their own pages.
        AppTab::Logs | AppTab::History => ().into_any(),
    };
    view! {
        <Title text=title/>
        <Console me=console_me team=console_team section=Section::Apps>
            {header}
            {content}
        </Console>
    }
}

/// Which credentials an image deploy of the app pulls with: the login remembered on it,
/// else the team credential for the image's registry (the deploy form says which applies
/// to the image typed).
#[component]
fn CredentialsSection(
    team: String,
    credentials: views::AppCredentials,
    team_credentials: Vec<(String, String)>,
    /// The current release's image, if any.
    release_image: Option<String>,
    now: i64,
) -> impl IntoView {
    // The team credential a deploy that chooses "a team credential" and lets Berth match by
    // registry would use for the current release's registry.
    let matching = release_image
        .as_deref()
        .and_then(|image| domain::ImageReference::parse(image).ok())
        .and_then(|image| {
            let registry = image.registry().to_string();
            team_credentials
                .iter()
                .find(|(_, r)| *r == registry)
                .map(|(name, _)| (name.clone(), registry))
        });
    let team_credential = match (credentials.team_credential.clone(), matching) {
        (Some(name), _) => view! {
            <a href=format!("/teams/{team}/credentials/{name}")>{name.clone()}</a>
            <span class="muted">" · used by the last deploy"</span>
        }
        .into_any(),
        (None, Some((name, registry))) => view! {
            <a href=format!("/teams/{team}/credentials/{name}")>{name.clone()}</a>
            <span class="muted">" · matches " <code>{registry}</code>
                ": used when a deploy chooses a team credential"</span>
        }
        .into_any(),
        (None, None) if team_credentials.is_empty() => view! {
            <span class="muted">"none: the team has no registry credentials"</span>
        }
        .into_any(),
        (None, None) => view! {
            <span class="muted">"none for this image's registry"</span>
        }
        .into_any(),
    };
    view! {
        <section class="panel" aria-labelledby="credentials-heading">
            <h2 id="credentials-heading">"Registry credentials"</h2>
            <dl class="facts">
                <dt>"Remembered on this app"</dt>
                <dd>{match credentials.remembered.clone() {
                    Some((registry, username)) => view! {
                        <code>{format!("{username}@{registry}")}</code>
                        {credentials.remembered_at.map(|ms| view! { " · since " <Time ms now/> })}
                        " · password write-only"
                    }.into_any(),
                    None => view! { <span class="muted">"none"</span> }.into_any(),
                }}</dd>
                <dt>"Team credential"</dt>
                <dd>{team_credential}</dd>
            </dl>
            <p class="muted">"Credentials are used only to pull images; they never reach the app's environment."</p>
        </section>
    }
}

/// What the app takes on this server's disk, measured after each deploy (and again when the
/// measurement is over a minute old).
#[component]
fn DiskSection(disk: DiskUsageView, now: i64) -> impl IntoView {
    let part = |label: &'static str, bytes: u64| {
        (bytes > 0).then(|| view! { " · " {label} " " {human_size(bytes)} })
    };
    view! {
        <section class="panel" aria-labelledby="disk-heading">
            <h2 id="disk-heading">"Disk"</h2>
            <p><strong>{human_size(disk.total_bytes)}</strong> " on this server: images "
                {human_size(disk.images_bytes)}
                {part("logs", disk.logs_bytes)}
                {part("source", disk.source_bytes)}
                {part("temporary files", disk.tmp_bytes)}
                <span class="muted">" (measured " <Time ms=disk.measured_at now/>
                "; the images of the last releases are kept: BERTH_KEEP_RELEASES)"</span></p>
        </section>
    }
}
