//! An app's configuration variables: the table (secret values masked, plain ones shown) and
//! the form that sets and unsets them with a configure operation.

use super::deploy_form::ShortTermCredentialsNote;
use crate::{
    components::form::{problem, Csrf, EnvChangesField, FormError, Outcome},
    serverfns::apps::ConfigureApp,
};
use leptos::{form::ActionForm, prelude::*};
use views::AppPage;

#[component]
pub(super) fn ConfigTable(page: AppPage) -> impl IntoView {
    if page.config.is_empty() {
        return view! { <p class="muted">"No configuration variables. Berth sets PORT for every release."</p> }
            .into_any();
    }
    view! {
        <table class="table">
            <caption class="visually-hidden">"Configuration variables"</caption>
            <thead><tr><th scope="col">"Name"</th><th scope="col">"Value"</th></tr></thead>
            <tbody>
                {page.config.into_iter().map(|c| view! {
                    <tr>
                        <th scope="row"><code>{c.key}</code></th>
                        <td>{match c.value {
                            Some(value) if !c.secret => view! { <code>{value}</code> }.into_any(),
                            _ => view! { <span class="secret-mask">"•••• (secret, write-only)"</span> }.into_any(),
                        }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
pub(super) fn ConfigureForm(
    csrf: String,
    team: String,
    app: String,
    has_release: bool,
    /// Dockerfile apps: say what setting registry credentials here costs.
    dockerfile: bool,
    action: ServerAction<ConfigureApp>,
) -> impl IntoView {
    let outcome: Outcome<i64> = action.value().into();
    let env_problem = problem(outcome, "env");
    view! {
        <h3 id="configure-heading">"Change configuration"</h3>
        <ActionForm action attr:aria-labelledby="configure-heading">
            <Csrf token=csrf/>
            <input type="hidden" name="team" value=team/>
            <input type="hidden" name="app" value=app/>
            <FormError outcome fields=&["env"]/>
            <EnvChangesField id="configure-env" label="Secret variables to set or unset" rows=4 problem=env_problem>
                {if has_release {
                    "This runs a configure operation that restarts the running release with the new environment. To change configuration along with a new image, use the deploy form instead: one operation, one restart."
                } else {
                    "The app has no release yet: the changes are stored and its first deploy starts with them."
                }}
            </EnvChangesField>
            {dockerfile.then(|| view! { <ShortTermCredentialsNote in_deploy_form=false/> })}
            <button type="submit" class="button">{if has_release { "Apply configuration" } else { "Save configuration" }}</button>
        </ActionForm>
    }
}
