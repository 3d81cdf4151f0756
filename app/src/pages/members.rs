//! `/teams/{team}/members`: who is in the team, and (for owners) adding, re-roling and
//! removing members, the team's settings (may viewers read logs?) and its ssh deploy key.

use crate::{
    components::flash::FlashView,
    components::{
        form::{field_error, Csrf, Field, FormError},
        layout::{Console, Loaded, Me, Section},
        time::Time,
    },
    pages::deploy_key::DeployKeySection,
    serverfns::{
        deploy_key::GenerateDeployKey,
        members::{load_members, AddMember, ChangeRole, RemoveMember, SetViewersReadLogs},
    },
};
use domain::Role;
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use views::{MemberRow, TeamMembers};

#[component]
pub fn MembersPage() -> AnyView {
    let params = use_params_map();
    let team = move || params.read().get("team").unwrap_or_default();
    let add = ServerAction::<AddMember>::new();
    let change = ServerAction::<ChangeRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let settings = ServerAction::<SetViewersReadLogs>::new();
    let deploy_key = ServerAction::<GenerateDeployKey>::new();
    let members = Resource::new(
        move || {
            (
                team(),
                add.version().get(),
                change.version().get(),
                remove.version().get(),
                settings.version().get(),
                deploy_key.version().get(),
            )
        },
        |(team, ..)| load_members(team),
    );
    view! {
        <Title text="Members"/>
        <Loaded page=members loading="Loading members…" let(me, page)>
            <Members me page add change remove settings deploy_key/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn Members(
    me: Me,
    page: TeamMembers,
    add: ServerAction<AddMember>,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
    settings: ServerAction<SetViewersReadLogs>,
    deploy_key: ServerAction<GenerateDeployKey>,
) -> impl IntoView {
    let is_owner = page.team.role == Role::Owner;
    let (key_csrf, key_team) = (me.csrf.clone(), page.team.handle.clone());
    let settings_outcome: Signal<_> = settings.value().into();
    let viewers_read_logs = page.team.viewers_read_logs;
    let (settings_csrf, settings_team) = (me.csrf.clone(), page.team.handle.clone());
    let now = crate::now_ms();
    let handle = page.team.handle.clone();
    let add_outcome: Signal<_> = add.value().into();
    let change_outcome: Signal<_> = change.value().into();
    let remove_outcome: Signal<_> = remove.value().into();
    // The invitation link or notice from the last "add member": from the action's result
    // when JavaScript ran, otherwise from the session (see `flash_for_form_post`).
    let flash = {
        let from_page = page.flash.clone();
        move || match add_outcome.get() {
            Some(Ok(Some(flash))) => Some(flash),
            _ => from_page.clone(),
        }
    };
    let rows = page
        .members
        .into_iter()
        .map(|member| {
            view! { <MemberRowView member me=me.clone() team=handle.clone() is_owner you=page.you now change remove/> }
        })
        .collect_view();
    view! {
        <Console me=me.clone() team=page.team.handle.clone() section=Section::Members>
            <header class="page-header">
                <h1>"Members"</h1>
                {is_owner.then(|| view! { <a class="button button-primary" href="#add-member">"Add member"</a> })}
            </header>
            {move || flash().map(|flash| view! { <FlashView flash/> })}
            <FormError outcome=change_outcome fields=&[]/>
            <FormError outcome=remove_outcome fields=&[]/>
            {(!is_owner).then(|| view! {
                <p class="notice">"Only owners can add or remove members and change roles. Your role is "
                    <strong>{page.team.role.as_str()}</strong> "."</p>
            })}
            <table class="table">
                <caption class="visually-hidden">"Members of " {page.team.name.clone()}</caption>
                <thead>
                    <tr>
                        <th scope="col">"E-mail"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Joined"</th>
                        {is_owner.then(|| view! { <th scope="col">"Actions"</th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            {is_owner.then(|| view! {
                <section class="panel" id="add-member" aria-labelledby="add-member-heading">
                    <h2 id="add-member-heading">"Add member"</h2>
                    <p class="muted">"Someone without a Berth account gets an invitation link to send them."</p>
                    <ActionForm action=add>
                        <Csrf token=me.csrf.clone()/>
                        <input type="hidden" name="team" value=page.team.handle.clone()/>
                        <FormError outcome=add_outcome fields=&["email", "role"]/>
                        <Field label="E-mail" name="email" id="add-member-email".to_string() kind="email" error=field_error(add_outcome, "email")/>
                        <RoleSelect id="add-member-role".into() selected=Role::Deployer error=field_error(add_outcome, "role")/>
                        <button type="submit" class="button button-primary">"Add member"</button>
                    </ActionForm>
                </section>
            })}
            <section class="panel" id="team-settings" aria-labelledby="team-settings-heading">
                <h2 id="team-settings-heading">"Team settings"</h2>
                {if is_owner {
                    view! {
                        <ActionForm action=settings>
                            <Csrf token=settings_csrf/>
                            <input type="hidden" name="team" value=settings_team/>
                            <FormError outcome=settings_outcome fields=&[]/>
                            <div class="choice">
                                <input type="checkbox" id="viewers-read-logs" name="viewers_read_logs" value="on"
                                    checked=viewers_read_logs aria-describedby="viewers-read-logs-hint"/>
                                <label for="viewers-read-logs">"Viewers may read logs"</label>
                            </div>
                            <p class="field-hint" id="viewers-read-logs-hint">
                                "Runtime logs and operation logs hold whatever apps and builds print. Berth hides the apps' secret values from them, but not what an app makes of them; deployers and owners always read logs."
                            </p>
                            <button type="submit" class="button">"Save settings"</button>
                        </ActionForm>
                    }
                    .into_any()
                } else {
                    view! {
                        <p class="muted">{if viewers_read_logs {
                            "Viewers may read runtime and operation logs."
                        } else {
                            "Viewers cannot read runtime and operation logs; owners can change this."
                        }}</p>
                    }
                    .into_any()
                }}
            </section>
            <DeployKeySection key=page.deploy_key team=key_team csrf=key_csrf is_owner now action=deploy_key/>
        </Console>
    }
}

#[component]
fn MemberRowView(
    member: MemberRow,
    me: Me,
    team: String,
    is_owner: bool,
    you: i64,
    now: i64,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let role_id = format!("role-{}", member.user_id);
    let email = member.email.clone();
    view! {
        <tr>
            <td>
                {member.email.clone()}
                {(member.user_id == you).then(|| view! { " " <span class="muted">"(you)"</span> })}
                {member.pending.then(|| view! { " " <span class="badge badge-pending">"invited"</span> })}
            </td>
            <td><span class=format!("badge badge-role role-{}", member.role.as_str())>{member.role.as_str()}</span></td>
            <td><Time ms=member.joined_at now/></td>
            {is_owner.then(move || {
                let (csrf2, team2, email2) = (me.csrf.clone(), team.clone(), email.clone());
                let (user_id, user_id2) = (member.user_id.to_string(), member.user_id.to_string());
                view! {
                <td class="row-actions">
                    <ActionForm action=change attr:class="inline-form">
                        <Csrf token=me.csrf/>
                        <input type="hidden" name="team" value=team/>
                        <input type="hidden" name="user_id" value=user_id/>
                        <label for=role_id.clone() class="visually-hidden">"Role for " {email.clone()}</label>
                        <select id=role_id name="role">
                            {Role::ALL.into_iter().map(|r| view! {
                                <option value=r.as_str() selected=r == member.role>{r.as_str()}</option>
                            }).collect_view()}
                        </select>
                        <button type="submit" class="button">"Change role"<span class="visually-hidden">" for " {email}</span></button>
                    </ActionForm>
                    // Asked first, with or without JavaScript: removing takes access away at once.
                    <details class="confirm">
                        <summary class="button button-danger">"Remove…"<span class="visually-hidden">" " {email2.clone()}</span></summary>
                        <div class="confirm-body">
                            <p>"Remove " <strong>{email2.clone()}</strong> " from the team? They lose access at once; their past operations stay in the history."</p>
                            <ActionForm action=remove attr:class="inline-form">
                                <Csrf token=csrf2/>
                                <input type="hidden" name="team" value=team2/>
                                <input type="hidden" name="user_id" value=user_id2/>
                                <button type="submit" class="button button-danger">"Yes, remove " {email2}</button>
                            </ActionForm>
                        </div>
                    </details>
                </td>
                }
            })}
        </tr>
    }
}

#[component]
fn RoleSelect(id: String, selected: Role, error: Signal<Option<String>>) -> impl IntoView {
    let error_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id.clone()>"Role"</label>
            <select id=id name="role" aria-describedby=error_id.clone()>
                {Role::ALL.into_iter().map(|r| view! {
                    <option value=r.as_str() selected=r == selected>{r.as_str()} " — " {r.summary()}</option>
                }).collect_view()}
            </select>
            <p class="field-error" id=error_id aria-live="polite">{move || error.get()}</p>
        </div>
    }
}
