//! The signed-in home and a team's overview.

use crate::components::{
    form::{Csrf, FormError},
    layout::{reload_on_success, Console, Me, Section, SignedIn},
};
use crate::serverfns::session::AnswerInvitation;
use domain::Role;
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_params_map};
use views::{PendingInvitation, TeamSummary};

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
                        <Invitations me=me.clone()/>
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

/// `/teams/{team}`: what the team is and what the signed-in person may do in it.
#[component]
pub fn TeamPage() -> AnyView {
    let params = use_params_map();
    let handle = move || params.read().get("team").unwrap_or_default();
    view! {
        <SignedIn let:me>
            {
                let handle = handle();
                match me.viewer.teams.iter().find(|t| t.handle == handle).cloned() {
                    None => view! { <crate::components::layout::NotFound/> }.into_any(),
                    Some(team) => view! {
                        <Title text=format!("{} overview", team.name)/>
                        <Console me=me.clone() team=team.handle.clone() section=Section::Overview>
                            <Invitations me=me.clone()/>
                            <TeamOverview team public_url=me.public_url.clone()/>
                        </Console>
                    }
                    .into_any(),
                }
            }
        </SignedIn>
    }
    .into_any()
}

/// Teams that invited the signed-in person: nobody joins a team without accepting.
#[component]
fn Invitations(me: Me) -> impl IntoView {
    let invitations = me.viewer.invitations.clone();
    (!invitations.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="invitations">
                <h2 id="invitations">"Invitations"</h2>
                <ul class="invitations">
                    {invitations
                        .into_iter()
                        .map(|invitation| view! { <InvitationRow invitation csrf=me.csrf.clone()/> })
                        .collect_view()}
                </ul>
            </section>
        }
    })
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
fn TeamOverview(team: TeamSummary, public_url: String) -> impl IntoView {
    let members_href = format!("/teams/{}/members", team.handle);
    let can = |role: Role| team.role.allows(role);
    let api_example = format!(
        "curl -H \"Authorization: Bearer $BERTH_TOKEN\" {}/api/v1/me",
        public_url.trim_end_matches('/')
    );
    view! {
        <header class="page-header">
            <div>
                <h1>{team.name.clone()}</h1>
                <p class="muted">"Handle " <code>{team.handle.clone()}</code></p>
            </div>
        </header>
        <section class="panel" aria-labelledby="your-role">
            <h2 id="your-role">"Your role: " <span class="badge badge-role">{team.role.as_str()}</span></h2>
            <p>"As " {team.role.as_str()} " you " {team.role.summary()} "."</p>
            <ul class="checklist">
                <li data-allowed=can(Role::Viewer).to_string()>{check(can(Role::Viewer))} "See the team, its members and its history"</li>
                <li data-allowed=can(Role::Deployer).to_string()>{check(can(Role::Deployer))} "Deploy and configure apps, use team credentials"</li>
                <li data-allowed=can(Role::Owner).to_string()>{check(can(Role::Owner))} "Add and remove members, change roles, manage credentials"</li>
            </ul>
        </section>
        <section class="panel" aria-labelledby="next-steps">
            <h2 id="next-steps">"Next steps"</h2>
            <ol>
                <li>
                    {if can(Role::Owner) {
                        view! { <a href=members_href.clone()>"Add your teammates"</a> " with the role each needs." }.into_any()
                    } else {
                        view! { <a href=members_href.clone()>"See who is in the team"</a> "." }.into_any()
                    }}
                </li>
                <li>
                    <a href="/settings/tokens">"Create an API token"</a>
                    " for CI pipelines, then try it:"
                    <pre><code>{api_example}</code></pre>
                </li>
            </ol>
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
