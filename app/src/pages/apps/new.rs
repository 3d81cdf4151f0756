//! `/teams/{team}/apps/new`: a new app, deployed by image or built from a git repository.

use super::param;
use crate::{
    components::{
        form::{echoed, field_error, follow, Csrf, Field, FormError, Outcome},
        layout::{Console, InTeam, Section},
    },
    serverfns::apps::CreateApp,
};
use domain::Role;
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;

#[component]
pub fn NewAppPage() -> AnyView {
    let team = param("team");
    let action = ServerAction::<CreateApp>::new();
    let outcome: Signal<_> = action.value().into();
    follow(outcome, move |handle| {
        format!("/teams/{}/apps/{handle}", team())
    });
    view! {
        <Title text="New app"/>
        <InTeam team=team() let(me, summary)>
            {
                let handle = summary.handle.clone();
                let csrf = me.csrf.clone();
                // After a refused plain form post, the method that was chosen.
                let dockerfile_chosen = echoed("method").as_deref() == Some("dockerfile");
                view! {
                    <Console me=me.clone() team=handle.clone() section=Section::Apps>
                        <p class="breadcrumb"><a href=format!("/teams/{handle}/apps")>"Apps"</a> " /"</p>
                        <header class="page-header"><h1>"New app"</h1></header>
                        {if !summary.role.allows(Role::Deployer) {
                            view! { <p class="notice">"Deployers and owners create apps. Your role is " <strong>{summary.role.as_str()}</strong> "."</p> }.into_any()
                        } else {
                            view! {
                                <section class="panel">
                                    <ActionForm action>
                                        <Csrf token=csrf/>
                                        <input type="hidden" name="team" value=handle.clone()/>
                                        <FormError outcome fields=NEW_APP_FIELDS/>
                                        <Field label="Handle" name="handle" autocomplete="off"
                                            hint="The app's name in URLs and the API, e.g. web. Lower-case letters, digits and hyphens, starting with a letter."
                                            error=field_error(outcome, "handle")/>
                                        <fieldset class="choices" aria-describedby="field-method-error">
                                            <legend>"Deploy method"</legend>
                                            <div class="choice">
                                                <input type="radio" id="method-image" name="method" value="image" checked=!dockerfile_chosen/>
                                                <label for="method-image">"Direct Docker Image"</label>
                                                <p class="field-hint">"Run a prebuilt image from any registry; each deploy names the image, and Berth records its digest."</p>
                                            </div>
                                            <div class="choice">
                                                <input type="radio" id="method-dockerfile" name="method" value="dockerfile" checked=dockerfile_chosen aria-describedby="method-dockerfile-hint"/>
                                                <label for="method-dockerfile">"Dockerfile"</label>
                                                <p class="field-hint" id="method-dockerfile-hint">"Build from a git repository: each deploy names a branch, tag or commit, and Berth builds that commit's Dockerfile."</p>
                                            </div>
                                            <p class="field-error" id="field-method-error" aria-live="polite">{move || field_error(outcome, "method").get()}</p>
                                        </fieldset>
                                        <Field label="Health-check path (optional)" name="health_path" required=false autocomplete="off"
                                            hint="A path the release must answer (any status below 500) before it takes over, e.g. /healthz. Without one, Berth waits for the port to accept connections."
                                            error=field_error(outcome, "health_path")/>
                                        <GitSourceFields outcome/>
                                        <PlatformFields outcome/>
                                        <button type="submit" class="button button-primary">"Create app"</button>
                                    </ActionForm>
                                </section>
                            }.into_any()
                        }}
                    </Console>
                }
            }
        </InTeam>
    }
    .into_any()
}

const NEW_APP_FIELDS: &[&str] = &[
    "handle",
    "method",
    "health_path",
    "git_url",
    "dockerfile",
    "context",
    "git_username",
    "git_password",
    "platform",
    "aptible_environment",
    "aptible_app",
];

/// The git source of a Dockerfile app. Always on the form, so that it works without
/// JavaScript; an image app leaves it empty.
#[component]
fn GitSourceFields(outcome: Outcome<String>) -> impl IntoView {
    view! {
        <fieldset class="field-group git-source" aria-describedby="git-source-hint">
            <legend>"Git source (Dockerfile apps only)"</legend>
            <p class="field-hint" id="git-source-hint">"Leave these empty for a Direct Docker Image app."</p>
            <Field label="Repository URL" name="git_url" required=false autocomplete="off"
                hint="https://, ssh:// or file:// URL, or a path on this server, e.g. https://github.com/acme/web.git."
                error=field_error(outcome, "git_url")/>
            <Field label="Dockerfile path" name="dockerfile" value="Dockerfile" required=false autocomplete="off"
                hint="Relative to the repository root."
                error=field_error(outcome, "dockerfile")/>
            <Field label="Build context" name="context" value="." required=false autocomplete="off"
                hint="The directory the build sees, relative to the repository root; . is the whole repository."
                error=field_error(outcome, "context")/>
            <Field label="Read username (optional)" name="git_username" required=false autocomplete="off"
                hint="For a private repository: a user or bot account that can read it."
                error=field_error(outcome, "git_username")/>
            <Field label="Read password or token (optional)" name="git_password" kind="password" required=false autocomplete="new-password"
                hint="Write-only: stored encrypted, used only to fetch, never shown again. Prefer a read-only access token."
                error=field_error(outcome, "git_password")/>
        </fieldset>
    }
}

/// Where the app runs: this host (the default) or an existing app on Aptible, which the team
/// must be connected to (Platforms page).
#[component]
fn PlatformFields(outcome: Outcome<String>) -> impl IntoView {
    view! {
        <fieldset class="choices" aria-describedby="field-platform-error">
            <legend>"Where it runs"</legend>
            <div class="choice">
                <input type="radio" id="platform-local" name="platform" value="local" checked=true/>
                <label for="platform-local">"This server"</label>
                <p class="field-hint">"Berth's own engine runs the app here, isolated from other teams."</p>
            </div>
            <div class="choice">
                <input type="radio" id="platform-aptible" name="platform" value="aptible" aria-describedby="platform-aptible-hint"/>
                <label for="platform-aptible">"Aptible"</label>
                <p class="field-hint" id="platform-aptible-hint">"Berth forwards every deploy, configuration change and restart to an app you already created on Aptible (the team connects to Aptible on its Platforms page)."</p>
            </div>
            <p class="field-error" id="field-platform-error" aria-live="polite">{move || field_error(outcome, "platform").get()}</p>
            <Field label="Aptible environment (Aptible apps only)" name="aptible_environment" required=false autocomplete="off"
                hint="The environment's handle, as aptible environment:list shows it."
                error=field_error(outcome, "aptible_environment")/>
            <Field label="Aptible app (Aptible apps only)" name="aptible_app" required=false autocomplete="off"
                hint="The app's handle in that environment, as aptible apps shows it."
                error=field_error(outcome, "aptible_app")/>
            <div class="choice">
                <input type="checkbox" id="aptible-skip-verification" name="aptible_skip_verification" value="on"
                    aria-describedby="aptible-skip-verification-hint"/>
                <label for="aptible-skip-verification">"Do not verify images before deploying (Aptible apps only)"</label>
                <p class="field-hint" id="aptible-skip-verification-hint">"For images in a registry only Aptible can reach. Berth then forwards each deploy without checking the image first, and records no digest."</p>
            </div>
        </fieldset>
    }
}
