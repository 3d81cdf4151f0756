//! `/teams/{team}/apps…`: the team's apps ([`list`]), a new app ([`new`]), and an app's page
//! ([`detail`]) with its release, credentials, configuration ([`config`]), a Dockerfile
//! app's source and base images ([`source`]), recent operations and the deploy forms
//! ([`deploy_form`]). Viewers see everything but the forms; no page ever receives a
//! registry secret or a secret configuration value.

mod config;
mod deploy_form;
mod detail;
mod list;
mod logs;
mod new;
mod source;

pub use detail::{AppConfigPage, AppDeployPage, AppDetailPage, AppTab, AppTabs};
pub use list::{AppsListPage, LastOperationCell, ReleaseCell};
pub use logs::AppLogsPage;
pub use new::NewAppPage;

use crate::components::form::{follow, Outcome};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

fn param(name: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get(name).unwrap_or_default()
}

/// Goes to the operation a form queued, once the browser has its id.
fn follow_to_operation(outcome: Outcome<i64>, team: impl Fn() -> String + Send + Sync + 'static) {
    follow(outcome, move |id| {
        format!("/teams/{}/operations/{id}", team())
    });
}
