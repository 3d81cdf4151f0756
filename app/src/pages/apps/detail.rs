//! An app's page: its release, how it deploys, its configuration and recent operations,
//! with the forms that change it for deployers and owners.

use super::{
    config::{ConfigTable, ConfigureForm},
    deploy_form::{DeployImageIsland, DeployRefIsland, DeployRefSource, DeployTarget},
    follow_to_operation, param,
    source::{BaseCheck, BaseCredentials, SourceSection},
};
use crate::{
    components::{
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

#[component]
pub fn AppDetailPage() -> AnyView {
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
            <AppDetail me page fetch configure restart/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn AppDetail(
    me: Me,
    page: AppPage,
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
    let on_aptible = match (&page.platform.environment, &page.platform.app) {
        (Some(environment), Some(app)) if page.platform.kind == "aptible" => {
            Some(format!("{environment}/{app}"))
        }
        _ => None,
    };
    let base_check_flash = match page.flash.clone() {
        Some(views::Flash::BaseCheck(report)) => Some(report),
        _ => None,
    };
    view! {
        <Title text=a.handle.clone()/>
        <Console me=me.clone() team=team.clone() section=Section::Apps>
            <p class="breadcrumb"><a href=format!("/teams/{team}/apps")>"Apps"</a> " /"</p>
            <header class="page-header">
                <div>
                    <h1>{a.handle.clone()}</h1>
                    <p class="muted">{a.method.label()} " deploy"
                        {a.health_path.clone().map(|p| view! { " · health check " <code>{p}</code> })}
                        {on_aptible.clone().map(|target| view! { " · runs on Aptible as " <code>{target}</code> })}</p>
                </div>
                <div class="row-actions">
                    {can_deploy.then(|| view! { <a class="button button-primary" href="#deploy">"Deploy"</a> })}
                    <a class="button" href=history_href.clone()>"History"</a>
                </div>
            </header>

            <section class="panel" aria-labelledby="release-heading">
                <h2 id="release-heading">"Current release"</h2>
                {match a.release.clone() {
                    Some(r) => view! {
                        <dl class="facts">
                            <dt>"Image"</dt><dd><code>{r.image}</code></dd>
                            <dt>"Digest"</dt><dd><code class="digest">{r.digest}</code></dd>
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
                                (true, false) => "Deploy an image below: Berth verifies it can pull the image before anything is queued.",
                                (true, true) => "Deploy a branch, tag or commit below: Berth checks that it can pull every base image before anything is built.",
                                (false, _) => "A deployer or an owner deploys it.",
                            }}</p>
                    }.into_any(),
                }}
            </section>

            {page.disk.map(|disk| view! { <DiskSection disk now/> })}

            {match build.clone() {
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
                            <dd>{match credentials.team_credential.clone() {
                                Some(name) => view! { <a href=format!("/teams/{team}/credentials/{name}")>{name.clone()}</a> }.into_any(),
                                None => view! { <span class="muted">"none"</span> }.into_any(),
                            }}</dd>
                        </dl>
                        <p class="muted">"Credentials are used only to pull images; they never reach the app's environment."</p>
                    </section>
                    {can_deploy.then(|| view! {
                        <DeployImageIsland csrf=me.csrf.clone() target=DeployTarget::of(&page)/>
                    })}
                }.into_any(),
            }}

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

            <section class="panel" aria-labelledby="operations-heading">
                <h2 id="operations-heading">"Recent operations"</h2>
                {if page.operations.is_empty() {
                    view! { <div class="empty-state"><p>"No operations yet: a deploy will be the first."</p></div> }.into_any()
                } else {
                    view! {
                        <OperationsTable operations=page.operations.clone() now show_app=false caption="Recent operations"/>
                        <p><a href=history_href>"Full history"</a></p>
                    }.into_any()
                }}
            </section>
        </Console>
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
