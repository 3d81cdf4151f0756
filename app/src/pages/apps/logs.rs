//! An app's Logs tab: what its running release prints, newest last. Without JavaScript the
//! page shows the lines as they were when it was served (reload for more); with it, an island
//! reads them again every few seconds while "Follow" is on.

use super::{
    detail::{aptible_target, AppHeader, AppTab},
    param,
};
use crate::{
    components::{
        layout::{Console, Loaded, Section},
        time::Time,
    },
    serverfns::apps::load_app_log,
};
use domain::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use views::AppLogPage;

#[component]
pub fn AppLogsPage() -> AnyView {
    let team = param("team");
    let app = param("app");
    let page = Resource::new(
        move || (team(), app()),
        |(team, app)| load_app_log(team, app),
    );
    view! {
        <Title text="Logs"/>
        <Loaded page loading="Loading the app's output…" let(me, page)>
            <AppLogs me page/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn AppLogs(me: crate::components::layout::Me, page: AppLogPage) -> impl IntoView {
    let team = page.team.handle.clone();
    let handle = page.app.handle.clone();
    let can_deploy = page.team.role.allows(Role::Deployer);
    let on_aptible = aptible_target(&page.platform);
    let body = match (page.withheld.clone(), on_aptible.clone()) {
        (Some(reason), _) => view! { <div class="notice"><p>{reason}</p></div> }.into_any(),
        (None, Some(target)) => view! {
            <div class="notice"><p>"Aptible keeps this app's output: read it with "
                <code>{format!("aptible logs --app {}", target.rsplit('/').next().unwrap_or_default())}</code>
                " or in Aptible's dashboard."</p></div>
        }
        .into_any(),
        (None, None) if page.app.release.is_none() => view! {
            <div class="empty-state"><p>"Not deployed yet: once a release runs, what it prints shows here."</p></div>
        }
        .into_any(),
        (None, None) => view! {
            <RuntimeLog team=team.clone() app=handle.clone() lines=page.lines.clone() read_at=page.read_at/>
        }
        .into_any(),
    };
    view! {
        <Title text=format!("Logs · {handle}")/>
        <Console me=me.clone() team=team.clone() section=Section::Apps>
            <AppHeader team=team.clone() app=page.app.clone() on_aptible tab=AppTab::Logs can_deploy/>
            <section class="panel" aria-labelledby="runtime-log-heading">
                <h2 id="runtime-log-heading">"Output of the running release"</h2>
                {body}
            </section>
        </Console>
    }
}

/// How often a followed log is read again.
#[cfg(feature = "hydrate")]
const FOLLOW_EVERY_MS: i32 = 3_000;

/// The running release's output (an island): read again every few seconds while "Follow" is
/// on, scrolled to the newest line as long as the reader has not scrolled up.
#[island]
fn RuntimeLog(team: String, app: String, lines: Vec<String>, read_at: i64) -> impl IntoView {
    let lines = RwSignal::new(lines);
    let read_at = RwSignal::new(read_at);
    let following = RwSignal::new(true);
    let ready = RwSignal::new(false);
    let failed = RwSignal::new(None::<String>);
    let log = NodeRef::<leptos::html::Pre>::new();
    Effect::new(move |_| ready.set(true));
    #[cfg(feature = "hydrate")]
    {
        let scroll_to_end = move || {
            if let Some(log) = log.get_untracked() {
                log.set_scroll_top(log.scroll_height());
            }
        };
        // New lines, or "Follow" turned on: to the newest line.
        Effect::new(move |_| {
            lines.track();
            if following.get() {
                scroll_to_end();
            }
        });
        let (team, app) = (team.clone(), app.clone());
        let tick = move || {
            if !following.get_untracked() {
                return;
            }
            let (team, app) = (team.clone(), app.clone());
            leptos::task::spawn_local(async move {
                match load_app_log(team, app).await {
                    Ok(page) => {
                        failed.set(None);
                        let near_end = log.get_untracked().is_none_or(|log| {
                            log.scroll_height() - log.scroll_top() - log.client_height() < 40
                        });
                        if near_end {
                            lines.set(page.lines);
                            read_at.set(page.read_at);
                        } else {
                            // The reader scrolled up to read: the text stays put under them
                            // until they turn "Follow" on again.
                            following.set(false);
                        }
                    }
                    Err(error) => failed.set(Some(error.to_string())),
                }
            });
        };
        if let Ok(handle) = set_interval_with_handle(
            tick,
            std::time::Duration::from_millis(FOLLOW_EVERY_MS as u64),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (&team, &app);
    let now = crate::now_ms();
    crate::components::form::island_view(view! {
        <div class="row-actions log-controls">
            <span class="muted">"Read " {move || view! { <Time ms=read_at.get() now/> }}</span>
            <label hidden=move || !ready.get()>
                <input type="checkbox" prop:checked=move || following.get()
                    on:change=move |ev| following.set(event_target_checked(&ev))/>
                " Follow (read again every 3 s)"
            </label>
            <noscript><a href="">"Reload"</a></noscript>
        </div>
        {move || failed.get().map(|message| view! {
            <div class="alert alert-error" role="alert"><p>{message}</p></div>
        })}
        <pre class="log runtime-log" node_ref=log tabindex="0" role="log" aria-live="off" aria-label="Output, newest last">
            {move || {
                let text = lines.with(|lines| lines.join("\n"));
                if text.is_empty() { "The release has printed nothing yet.".to_owned() } else { text }
            }}
        </pre>
    })
}
