//! `/teams/{team}/apps`: the team's apps, what each serves and what happened last.

use super::param;
use crate::{
    components::{
        layout::{Console, Loaded, Me, Section},
        time::Time,
    },
    pages::operations::{image_name, short_digest, StatusBadge},
    serverfns::apps::load_apps,
};
use domain::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use views::{AppRow, AppsPage, LastOperation};

#[component]
pub fn AppsListPage() -> AnyView {
    let team = param("team");
    let page = Resource::new(team, load_apps);
    view! {
        <Title text="Apps"/>
        <Loaded page loading="Loading apps…" let:(me, page)>
            <AppList me page/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn AppList(me: Me, page: AppsPage) -> impl IntoView {
    let now = crate::now_ms();
    let base = format!("/teams/{}/apps", page.team.handle);
    let can_deploy = page.team.role.allows(Role::Deployer);
    let team = page.team.handle.clone();
    let rows = page
        .apps
        .into_iter()
        .map(|a| {
            let href = format!("{base}/{}", a.handle);
            view! {
                <tr>
                    <th scope="row" class="cell-nowrap"><a href=href>{a.handle.clone()}</a></th>
                    <td>{a.method.label()}</td>
                    <td class="cell-source"><ReleaseCell app=a.clone()/></td>
                    <td>{a.release.as_ref().and_then(|r| r.url.clone()).map(|url| view! { <a href=url.clone()>{url.clone()}</a> })}</td>
                    <td><LastOperationCell team=team.clone() last=a.last_operation.clone() now/></td>
                </tr>
            }
        })
        .collect_view();
    let empty = rows.is_empty();
    view! {
        <Console me team=page.team.handle.clone() section=Section::Apps>
            <header class="page-header">
                <h1>"Apps"</h1>
                {can_deploy.then(|| view! { <a class="button button-primary" href=format!("{base}/new")>"New app"</a> })}
            </header>
            {if empty {
                view! {
                    <div class="empty-state">
                        <p>"No apps yet. "
                            {if can_deploy {
                                "Create one, then deploy an image to it: Berth checks that it can pull the image, and records its digest, before anything runs."
                            } else {
                                "A deployer or an owner creates them; you will see their releases and history here."
                            }}
                        </p>
                        {can_deploy.then(|| view! { <p><a class="button button-primary" href=format!("{base}/new")>"Create your first app"</a></p> })}
                    </div>
                }.into_any()
            } else {
                view! {
                    <table class="table">
                        <caption class="visually-hidden">"Apps"</caption>
                        <thead><tr>
                            <th scope="col">"App"</th><th scope="col">"Deploy method"</th>
                            <th scope="col">"Current image"</th><th scope="col">"URL"</th>
                            <th scope="col">"Last operation"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }.into_any()
            }}
        </Console>
    }
}

/// An app's last operation: its kind (linking to it), status and when.
#[component]
pub fn LastOperationCell(team: String, last: Option<LastOperation>, now: i64) -> impl IntoView {
    match last {
        Some(last) => view! {
            <a href=format!("/teams/{team}/operations/{}", last.id)>{last.kind.as_str()}</a> " "
            <StatusBadge status=last.status/> " " <Time ms=last.at now/>
        }
        .into_any(),
        None => view! { <span class="muted">"none yet"</span> }.into_any(),
    }
}

/// An app's current image and digest, short, with the whole of each on hover.
#[component]
pub fn ReleaseCell(app: AppRow) -> impl IntoView {
    match app.release {
        Some(r) => view! {
            <code title=r.image.clone()>{image_name(&r.image).to_owned()}</code> " "
            <code class="digest" title=r.digest.clone()>{short_digest(&r.digest)}</code>
        }
        .into_any(),
        None => view! { <span class="muted">"not deployed"</span> }.into_any(),
    }
}
