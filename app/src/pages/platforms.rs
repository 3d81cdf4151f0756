//! `/teams/{team}/platforms`: where the team's apps run besides this server — its
//! connection to Aptible, made by an owner with a token or an Aptible sign-in.

use crate::{
    components::{
        form::{cleared_on_success, field_error, Csrf, Field, FormError},
        layout::{Console, Loaded, Me, Section},
        time::Time,
    },
    pages::deploy_key::PublicKey,
    serverfns::platforms::{load_platforms, ConnectAptible, DisconnectAptible},
};
use domain::Role;
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use views::PlatformsPage as Page;

#[component]
pub fn PlatformsPage() -> AnyView {
    let params = use_params_map();
    let team = move || params.read().get("team").unwrap_or_default();
    let connect = ServerAction::<ConnectAptible>::new();
    let disconnect = ServerAction::<DisconnectAptible>::new();
    let page = Resource::new(
        move || (team(), connect.version().get(), disconnect.version().get()),
        |(team, ..)| load_platforms(team),
    );
    view! {
        <Title text="Platforms"/>
        <Loaded page loading="Loading platforms…" let(me, page)>
            <Platforms me page connect disconnect/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn Platforms(
    me: Me,
    page: Page,
    connect: ServerAction<ConnectAptible>,
    disconnect: ServerAction<DisconnectAptible>,
) -> impl IntoView {
    let is_owner = page.team.role == Role::Owner;
    let handle = page.team.handle.clone();
    let now = crate::now_ms();
    let aptible = page.aptible;
    let connected = aptible.state != "not_connected";
    let outcome: Signal<_> = connect.value().into();
    let disconnect_outcome: Signal<_> = disconnect.value().into();
    let state = match aptible.state.as_str() {
        "connected" => view! { <span class="badge badge-ok">"Connected"</span> }.into_any(),
        "reconnect_needed" => {
            view! { <span class="badge badge-failed">"Reconnect needed"</span> }.into_any()
        }
        _ => view! { <span class="badge">"Not connected"</span> }.into_any(),
    };
    view! {
        <Console me=me.clone() team=handle.clone() section=Section::Platforms>
            <header class="page-header"><h1>"Platforms"</h1></header>
            <p class="muted">"Apps run on this server by default. Apps created with \"Aptible\" as their platform run on Aptible: \
                Berth forwards each deploy, configuration change and restart to Aptible's API and keeps their history here."</p>
            <section class="panel" aria-labelledby="aptible-heading">
                <h2 id="aptible-heading">"Aptible " {state}</h2>
                <dl class="facts">
                    <dt>"API"</dt><dd><code>{aptible.api_url.clone()}</code></dd>
                    {aptible.account.clone().map(|a| view! { <dt>"Signed in as"</dt><dd>{a}</dd> })}
                    {aptible.connected_by.clone().zip(aptible.connected_at).map(|(by, at)| view! {
                        <dt>"Connected by"</dt><dd>{by} ", " <Time ms=at now/></dd>
                    })}
                    {aptible.expires_at.map(|at| view! {
                        <dt>"Token expires"</dt>
                        <dd>
                            <Time ms=at now/>
                            {aptible.expires_soon.then(|| view! {
                                <span class="field-error">" — soon: Aptible's tokens are not renewed, connect again before then."</span>
                            })}
                        </dd>
                    })}
                </dl>
                {aptible.last_error.clone().filter(|_| aptible.state == "reconnect_needed").map(|error| view! {
                    <div class="alert alert-error" role="alert">
                        <p>"Aptible no longer accepts the team's token (" {error} "). Operations of apps on Aptible fail until an owner connects again."</p>
                    </div>
                })}
                {if is_owner {
                    let (csrf, team) = (me.csrf.clone(), handle.clone());
                    let (csrf2, team2) = (csrf.clone(), team.clone());
                    // Once connected, nothing typed (the password above all) stays in the form.
                    let form = cleared_on_success(outcome);
                    view! {
                        <h3>{if connected { "Connect again" } else { "Connect" }}</h3>
                        <ActionForm action=connect node_ref=form>
                            <Csrf token=csrf.clone()/>
                            <input type="hidden" name="team" value=team.clone()/>
                            <FormError outcome fields=&["token", "email", "password", "otp"]/>
                            <p class="field-hint">"Sign in with your Aptible account (Berth keeps only the access token Aptible gives it, encrypted; never the password) …"</p>
                            <Field label="Aptible e-mail" name="email" kind="email" required=false autocomplete="off" error=field_error(outcome, "email")/>
                            <Field label="Aptible password" name="password" kind="password" required=false autocomplete="off" error=field_error(outcome, "password")/>
                            <Field label="One-time code (if your account uses two-factor authentication)" name="otp" required=false autocomplete="one-time-code"
                                error=field_error(outcome, "otp")/>
                            <p class="field-hint">"… or paste an access token instead:"</p>
                            <Field label="Access token" name="token" kind="password" required=false autocomplete="off"
                                hint="Write-only: stored encrypted, never shown again."
                                error=field_error(outcome, "token")/>
                            <button type="submit" class="button button-primary">"Connect to Aptible"</button>
                        </ActionForm>
                        {connected.then(move || view! {
                            <ActionForm action=disconnect>
                                <Csrf token=csrf2/>
                                <input type="hidden" name="team" value=team2/>
                                <FormError outcome=disconnect_outcome fields=&[]/>
                                <button type="submit" class="button button-danger">"Disconnect (delete the token)"</button>
                            </ActionForm>
                        })}
                    }
                    .into_any()
                } else {
                    view! { <p class="notice">"Owners connect the team to Aptible."</p> }.into_any()
                }}
            </section>
            <section class="panel" aria-labelledby="aptible-key-heading">
                <h2 id="aptible-key-heading">"Deploy key for Aptible"</h2>
                <p>
                    "Berth deploys a Dockerfile app on Aptible by pushing the chosen commit to the app's Aptible git remote, with the team's deploy key, "
                    "then asking Aptible to build that branch. Add it to Aptible as an SSH key so Berth can push Dockerfile apps "
                    "(Aptible dashboard: your account's settings → SSH keys)."
                </p>
                {match page.deploy_key {
                    Some(key) => view! { <PublicKey key now/> }.into_any(),
                    None => view! {
                        <p class="muted">"The team has no deploy key yet: Berth makes one at the first Dockerfile deploy or ssh fetch, "
                            "or an owner makes one now on the "
                            <a href=format!("/teams/{handle}/members#deploy-key")>"Members page"</a> "."</p>
                    }
                    .into_any(),
                }}
                <p class="muted">"The same key reads the team's ssh repositories; owners replace it on the "
                    <a href=format!("/teams/{handle}/members#deploy-key")>"Members page"</a> "."</p>
            </section>
        </Console>
    }
}
