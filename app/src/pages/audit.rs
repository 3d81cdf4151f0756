//! `/teams/{team}/audit`: who created, changed, verified, used and deleted what.

use crate::{
    components::layout::{Console, Loaded, Section},
    pages::credentials::AuditTable,
    serverfns::credentials::load_audit,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn AuditPage() -> AnyView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.read().get("team").unwrap_or_default();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<i64>().ok())
    };
    let page = Resource::new(
        move || (team(), before()),
        |(team, before)| load_audit(team, before),
    );
    view! {
        <Title text="Audit trail"/>
        <Loaded page loading="Loading the audit trail…" let(me, page)>
            {
                let now = crate::now_ms();
                let older = page.next.map(|id| format!("/teams/{}/audit?before={id}", page.team.handle));
                view! {
                    <Console me team=page.team.handle.clone() section=Section::Audit>
                        <header class="page-header"><h1>"Audit trail"</h1></header>
                        <p class="muted">"Every change to the team's credentials, and every verification and use, newest first."</p>
                        <AuditTable events=page.events now/>
                        {older.map(|href| view! { <p><a href=href rel="next">"Older events"</a></p> })}
                    </Console>
                }
            }
        </Loaded>
    }
    .into_any()
}
