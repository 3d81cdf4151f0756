//! The signed-in home and a team's overview.

use crate::components::{
    form::{Csrf, FormError},
    layout::{reload_on_success, Console, Loaded, Section, SignedIn},
};
use crate::pages::apps::{LastOperationCell, ReleaseCell};
use crate::serverfns::{
    apps::load_apps,
    session::{load_invitations, AnswerInvitation},
};
use domain::OperationStatus;
use domain::Role;
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_params_map};
use views::{AppError, AppRow, PendingInvitation, TeamSummary};

/// `/`: a signed-in person lands on their first team.
#[component]
pub fn HomePage() -> AnyView {
    view! {
        <Title text="Teams"/>
        <SignedIn let:me>
            {match me.viewer.teams.first() {
                Some(team) => view! { <Redirect path=format!("/teams/{}", team.handle)/> }.into_any(),
                None => view! {
                    <Console me=me.clone() section=Section::None>
                        <Invitations csrf=me.csrf.clone() invitations=invitations_resource()/>
                        <h1>"You are not in a team"</h1>
                        <div class="empty-state">
                            <p>"Everything in Berth belongs to a team. Ask a team owner to add "
                                <strong>{me.viewer.email.clone()}</strong> " on their team's Members page."</p>
                        </div>
                    </Console>
                }
                .into_any(),
            }}
        </SignedIn>
    }
    .into_any()
}

/// `/teams/{team}`: the team's dashboard: its apps (failing ones first) with their state,
/// current release and last operation, what the signed-in person may do, and next steps.
#[component]
pub fn TeamPage() -> AnyView {
    let params = use_params_map();
    let handle = move || params.read().get("team").unwrap_or_default();
    let page = Resource::new(handle, load_apps);
    let invitations = invitations_resource();
    view! {
        <Loaded page loading="Loading the overview…" let:(me, page)>
            <Title text=format!("{} overview", page.team.name)/>
            <Console me=me.clone() team=page.team.handle.clone() section=Section::Overview>
                <Invitations csrf=me.csrf.clone() invitations/>
                <TeamOverview team=page.team.clone() apps=page.apps.clone() public_url=me.public_url.clone()/>
            </Console>
        </Loaded>
    }
    .into_any()
}

type InvitationsResource = Resource<Result<Vec<PendingInvitation>, AppError>>;

/// The signed-in person's invitations, read alongside the page's own data.
fn invitations_resource() -> InvitationsResource {
    Resource::new(|| (), |_| load_invitations())
}

/// Teams that invited the signed-in person: nobody joins a team without accepting.
#[component]
fn Invitations(csrf: String, invitations: InvitationsResource) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let csrf = csrf.clone();
                Suspend::new(async move {
                    match invitations.await {
                        Ok(invitations) => (!invitations.is_empty()).then(|| view! {
                            <section class="panel" aria-labelledby="invitations">
                                <h2 id="invitations">"Invitations"</h2>
                                <ul class="invitations">
                                    {invitations
                                        .into_iter()
                                        .map(|invitation| view! { <InvitationRow invitation csrf=csrf.clone()/> })
                                        .collect_view()}
                                </ul>
                            </section>
                        }).into_any(),
                        Err(error) => view! {
                            <p class="error" role="alert">"Your invitations could not be read: " {error.to_string()}</p>
                        }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn InvitationRow(invitation: PendingInvitation, csrf: String) -> impl IntoView {
    let accept = ServerAction::<AnswerInvitation>::new();
    let decline = ServerAction::<AnswerInvitation>::new();
    reload_on_success(accept.value().into(), "/");
    reload_on_success(decline.value().into(), "/");
    let accept_outcome: Signal<_> = accept.value().into();
    let id = invitation.id.to_string();
    let (accept_id, accept_csrf) = (id.clone(), csrf.clone());
    view! {
        <li>
            <p>
                <strong>{invitation.invited_by}</strong> " invites you to join "
                <strong>{invitation.team_name}</strong> " (" <code>{invitation.team_handle}</code> ") as "
                <span class="badge badge-role">{invitation.role.as_str()}</span> "."
            </p>
            <FormError outcome=accept_outcome fields=&[]/>
            <div class="actions">
                <ActionForm action=accept>
                    <Csrf token=accept_csrf/>
                    <input type="hidden" name="id" value=accept_id/>
                    <input type="hidden" name="answer" value="accept"/>
                    <button type="submit" class="button button-primary">"Accept"</button>
                </ActionForm>
                <ActionForm action=decline>
                    <Csrf token=csrf/>
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="answer" value="decline"/>
                    <button type="submit" class="button">"Decline"</button>
                </ActionForm>
            </div>
        </li>
    }
}

#[component]
fn TeamOverview(team: TeamSummary, apps: Vec<AppRow>, public_url: String) -> impl IntoView {
    let members_href = format!("/teams/{}/members", team.handle);
    let apps_href = format!("/teams/{}/apps", team.handle);
    let credentials_href = format!("/teams/{}/credentials", team.handle);
    let can = |role: Role| team.role.allows(role);
    let api_example = format!(
        "curl -H \"Authorization: Bearer $BERTH_TOKEN\" {}/api/v1/me",
        public_url.trim_end_matches('/')
    );
    let no_apps = apps.is_empty();
    view! {
        <header class="page-header">
            <div>
                <h1>{team.name.clone()}</h1>
                <p class="muted">"Handle " <code>{team.handle.clone()}</code></p>
            </div>
            {(can(Role::Deployer) && !no_apps).then(|| view! {
                <a class="button button-primary" href=format!("{apps_href}/new")>"New app"</a>
            })}
        </header>
        <AppsAtAGlance team=team.handle.clone() apps/>
        <section class="panel" aria-labelledby="next-steps">
            <h2 id="next-steps">"Next steps"</h2>
            <ol>
                {can(Role::Owner).then(|| view! {
                    <li>
                        <a href=format!("{credentials_href}/new")>"Store a registry credential"</a>
                        " once for the team: deploys of private images on its registry use it without anyone pasting a password."
                    </li>
                })}
                {(can(Role::Deployer) && no_apps).then(|| view! {
                    <li>
                        <a href=format!("{apps_href}/new")>"Create your first app"</a>
                        ", then deploy an image or a branch of a git repository to it."
                    </li>
                })}
                <li>
                    {if can(Role::Owner) {
                        view! { <a href=members_href.clone()>"Add your teammates"</a> " with the role each needs." }.into_any()
                    } else {
                        view! { <a href=members_href.clone()>"See who is in the team"</a> "." }.into_any()
                    }}
                </li>
                <li>
                    <a href="/settings/tokens">"Create an API token"</a>
                    " for CI pipelines (" <code>"berth deploy"</code> " uses it), then try it:"
                    <pre><code>{api_example}</code></pre>
                </li>
            </ol>
        </section>
        <section class="panel" aria-labelledby="your-role">
            <h2 id="your-role">"Your role: " <span class="badge badge-role">{team.role.as_str()}</span></h2>
            <p>"As " {if team.role == Role::Owner { "an " } else { "a " }} {team.role.as_str()} ", you can " {team.role.summary()} "."</p>
            <ul class="checklist">
                <li data-allowed=can(Role::Viewer).to_string()>{check(can(Role::Viewer))} "See the team, its members and its history"</li>
                <li data-allowed=can(Role::Deployer).to_string()>{check(can(Role::Deployer))} "Deploy and configure apps, use team credentials"</li>
                <li data-allowed=can(Role::Owner).to_string()>{check(can(Role::Owner))} "Add and remove members, change roles, manage credentials"</li>
            </ul>
        </section>
    }
}

/// How urgent an app's state is: failed last operations first, then work in progress, then
/// apps that have never been deployed, then the ones that are fine.
fn urgency(app: &AppRow) -> u8 {
    match (app.last_operation.as_ref().map(|o| o.status), &app.release) {
        (Some(OperationStatus::Failed), _) => 0,
        (Some(OperationStatus::Running | OperationStatus::Queued), _) => 1,
        (_, None) => 2,
        _ => 3,
    }
}

/// The team's apps on the overview, those that need attention first.
#[component]
fn AppsAtAGlance(team: String, mut apps: Vec<AppRow>) -> impl IntoView {
    let now = crate::now_ms();
    apps.sort_by(|a, b| {
        urgency(a)
            .cmp(&urgency(b))
            .then_with(|| a.handle.cmp(&b.handle))
    });
    let failing = apps.iter().filter(|a| urgency(a) == 0).count();
    let empty = apps.is_empty();
    let rows = apps
        .into_iter()
        .map(|a| {
            let href = format!("/teams/{team}/apps/{}", a.handle);
            view! {
                <tr>
                    <th scope="row" class="cell-nowrap"><a href=href>{a.handle.clone()}</a></th>
                    <td class="cell-source"><ReleaseCell app=a.clone()/></td>
                    <td><LastOperationCell team=team.clone() last=a.last_operation.clone() now/></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="apps-heading">
            <h2 id="apps-heading">"Apps"</h2>
            {(failing > 0).then(|| view! {
                <p class="alert alert-error" role="status">
                    {if failing == 1 { "1 app's last operation failed".to_owned() } else { format!("{failing} apps' last operations failed") }}
                    ": the previous release keeps serving until it is deployed again."
                </p>
            })}
            {if empty {
                view! { <p class="muted">"No apps yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="table">
                            <caption class="visually-hidden">"Apps, those that need attention first"</caption>
                            <thead><tr>
                                <th scope="col">"App"</th><th scope="col">"Current release"</th><th scope="col">"Last operation"</th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

fn check(allowed: bool) -> impl IntoView {
    // Text as well as colour: the mark is read out as "allowed" or "not allowed".
    if allowed {
        view! { <span class="mark mark-yes" aria-label="allowed">"✓"</span> " " }
    } else {
        view! { <span class="mark mark-no" aria-label="not allowed">"✗"</span> " " }
    }
}
