//! `/teams/{team}/credentials…`: the team's registry credentials. Owners create, edit and
//! delete them; deployers verify and (later) deploy with them; viewers see the list. No page
//! ever receives a secret: the secret field is write-only.

use crate::{
    components::{
        flash::FlashView,
        form::{field_error, follow, Csrf, Field, FormError},
        layout::{Console, InTeam, Loaded, Me, Section},
        time::Time,
    },
    serverfns::credentials::{
        load_credential, load_credentials, CreateCredential, DeleteCredential, UpdateCredential,
        VerifyCredential,
    },
};
use domain::{CredentialKind, Role};
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};
use views::{AuditRow, CheckRow, CredentialPage, CredentialRow, CredentialsPage};

fn team_param() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("team").unwrap_or_default()
}

#[component]
pub fn CredentialsListPage() -> AnyView {
    let team = team_param();
    let page = Resource::new(team, load_credentials);
    view! {
        <Title text="Registry credentials"/>
        <Loaded page loading="Loading credentials…" let(me, page)>
            <CredentialList me page/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn CredentialList(me: Me, page: CredentialsPage) -> impl IntoView {
    let now = crate::now_ms();
    let base = format!("/teams/{}/credentials", page.team.handle);
    let is_owner = page.team.role == Role::Owner;
    let rows = page
        .credentials
        .into_iter()
        .map(|c| {
            let href = format!("{base}/{}", c.name);
            view! {
                <tr>
                    <th scope="row"><a href=href>{c.name.clone()}</a></th>
                    <td><code>{c.registry.clone()}</code></td>
                    <td>{c.kind.as_str()}</td>
                    <td>{match &c.aws { Some(aws) => format!("{} ({})", c.username, aws.region), None => c.username.clone() }}</td>
                    <td><CheckCell check=c.last_verified.clone() never="never" now/></td>
                    <td><CheckCell check=c.last_used.clone() never="not yet" now/></td>
                    <td>{match c.expires_at {
                        Some(ms) if ms <= now => view! { <span class="check check-failed">"✗ expired " <Time ms now/></span> }.into_any(),
                        Some(ms) if ms - now < 14 * 86_400_000 => view! { <span class="check check-failed">"⚠ expires " <Time ms now/></span> }.into_any(),
                        Some(ms) => view! { <Time ms now/> }.into_any(),
                        None => "—".into_any(),
                    }}</td>
                    <td>{match c.used_by_apps { 0 => "no apps".to_string(), 1 => "1 app".to_string(), n => format!("{n} apps") }}</td>
                </tr>
            }
        })
        .collect_view();
    let empty = rows.is_empty();
    view! {
        <Console me team=page.team.handle.clone() section=Section::Credentials>
            <header class="page-header">
                <h1>"Registry credentials"</h1>
                {is_owner.then(|| view! { <a class="button button-primary" href=format!("{base}/new")>"New credential"</a> })}
            </header>
            <p class="muted">"Logins for private registries, shared by the team. Secrets are encrypted and write-only: nobody, owners included, can read one back."</p>
            {if empty {
                view! {
                    <div class="empty-state">
                        <p>"No credentials yet. "
                            {if is_owner { "Add one for each private registry your apps pull from, then verify it against an image." }
                             else { "An owner adds them; you will be able to verify and use them." }}
                        </p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <table class="table">
                        <caption class="visually-hidden">"Registry credentials"</caption>
                        <thead><tr>
                            <th scope="col">"Name"</th><th scope="col">"Registry"</th><th scope="col">"Kind"</th>
                            <th scope="col">"Username or key"</th><th scope="col">"Last verified"</th>
                            <th scope="col">"Last used"</th><th scope="col">"Expires"</th><th scope="col">"Used by"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }.into_any()
            }}
        </Console>
    }
}

/// "2 hours ago ✓ logged in", with words as well as the mark.
#[component]
fn CheckCell(check: Option<CheckRow>, never: &'static str, now: i64) -> impl IntoView {
    match check {
        None => view! { <span class="muted">{never}</span> }.into_any(),
        Some(check) => view! {
            <span class=if check.ok { "check check-ok" } else { "check check-failed" } title=check.detail.clone()>
                <Time ms=check.at now/> " "
                {if check.ok { "✓ ok" } else { "✗ failed" }}
            </span>
        }
        .into_any(),
    }
}

#[component]
pub fn NewCredentialPage() -> AnyView {
    let team = team_param();
    let action = ServerAction::<CreateCredential>::new();
    let outcome: Signal<_> = action.value().into();
    follow(outcome, move |name| {
        format!("/teams/{}/credentials/{name}", team())
    });
    view! {
        <Title text="New credential"/>
        <InTeam team=team() let(me, summary)>
            {
                let handle = summary.handle.clone();
                let csrf = me.csrf.clone();
                view! {
                    <Console me=me.clone() team=handle.clone() section=Section::Credentials>
                        <header class="page-header"><h1>"New registry credential"</h1></header>
                        {if summary.role != Role::Owner {
                            view! { <p class="notice">"Only owners can add credentials. Your role is " <strong>{summary.role.as_str()}</strong> "."</p> }.into_any()
                        } else {
                            view! {
                                <section class="panel">
                                    <ActionForm action>
                                        <Csrf token=csrf/>
                                        <input type="hidden" name="team" value=handle.clone()/>
                                        <FormError outcome fields=CREDENTIAL_FIELDS/>
                                        <CredentialFields outcome current=None/>
                                        <button type="submit" class="button button-primary">"Save credential"</button>
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

/// Every field of the create and edit forms, for error summaries.
const CREDENTIAL_FIELDS: &[&str] = &[
    "name",
    "registry",
    "kind",
    "username",
    "secret",
    "access_key_id",
    "secret_access_key",
    "region",
    "role_arn",
    "external_id",
    "note",
    "expires_on",
];

/// The fields of the create and edit forms. Creating offers both kinds (the fields of the
/// kind not chosen are hidden by CSS, so this works without JavaScript); editing shows the
/// credential's own kind.
#[component]
fn CredentialFields(
    outcome: Signal<Option<Result<String, views::AppError>>>,
    current: Option<CredentialRow>,
) -> impl IntoView {
    let editing = current.is_some();
    let kind = current.as_ref().map(|c| c.kind);
    // A refused ECR field keeps the ECR fields in view (after a plain form post too, when
    // the page comes back with the error).
    let ecr_refused = Signal::derive(move || match outcome.get() {
        Some(Err(e)) => e.fields().into_iter().any(|f| {
            matches!(
                f,
                "access_key_id" | "secret_access_key" | "region" | "role_arn" | "external_id"
            )
        }),
        _ => false,
    });
    let value = |f: fn(&CredentialRow) -> String| current.as_ref().map(f).unwrap_or_default();
    let aws = |f: fn(&views::AwsRow) -> String| {
        current
            .as_ref()
            .and_then(|c| c.aws.as_ref())
            .map(f)
            .unwrap_or_default()
    };
    let basic_fields = (kind != Some(CredentialKind::Ecr)).then(|| view! {
        <div class="kind-fields kind-basic">
            <Field label="Username" name="username" autocomplete="off" value=value(|c| c.username.clone())
                required=false error=field_error(outcome, "username")/>
            <Field label=if editing { "New password or token" } else { "Password or token" } name="secret" kind="password"
                autocomplete="new-password" required=false
                hint=if editing { "Leave empty to keep the stored secret (only while the registry stays the same). It is never shown again once saved." }
                     else { "Stored encrypted; it is never shown again once saved. Prefer a read-only token." }
                error=field_error(outcome, "secret")/>
        </div>
    });
    let ecr_fields = (kind != Some(CredentialKind::Basic)).then(|| view! {
        <div class="kind-fields kind-ecr">
            <p class="field-hint">"Berth asks AWS for a fresh 12-hour registry token with this key for every verification and deploy (image deploys, every FROM of a Dockerfile on this registry, and deploys forwarded to Aptible), so nobody pastes tokens. The key needs ecr:GetAuthorizationToken and pull access (e.g. the AmazonEC2ContainerRegistryReadOnly policy)."</p>
            <Field label="AWS access key id" name="access_key_id" autocomplete="off" required=false
                value=aws(|a| a.access_key_id.clone())
                hint="For example AKIAIOSFODNN7EXAMPLE."
                error=field_error(outcome, "access_key_id")/>
            <Field label=if editing { "New secret access key" } else { "Secret access key" } name="secret_access_key" kind="password"
                autocomplete="new-password" required=false
                hint=if editing { "Leave empty to keep the stored key. It only ever goes to AWS, never to the registry." }
                     else { "Stored encrypted and only ever sent to AWS (the registry gets the minted token); never shown again once saved." }
                error=field_error(outcome, "secret_access_key")/>
            <Field label="Region" name="region" autocomplete="off" required=false value=aws(|a| a.region.clone())
                hint="The registry's region, as in its host name, e.g. us-east-1."
                error=field_error(outcome, "region")/>
            <Field label="Role to assume (optional)" name="role_arn" autocomplete="off" required=false
                value=aws(|a| a.role_arn.clone().unwrap_or_default())
                hint="An IAM role ARN, e.g. arn:aws:iam::123456789012:role/berth-ecr-pull: Berth assumes it with the key first, so the key itself can be allowed nothing but sts:AssumeRole."
                error=field_error(outcome, "role_arn")/>
            <Field label="External id (optional)" name="external_id" autocomplete="off" required=false
                value=aws(|a| a.external_id.clone().unwrap_or_default())
                hint="If the role's trust policy requires one (sts:ExternalId)."
                error=field_error(outcome, "external_id")/>
        </div>
    });
    view! {
        <Field label="Name" name="name" value=value(|c| c.name.clone())
            hint="How deploys refer to it, e.g. ghcr-deploy. Lower-case letters, digits, '.', '_', '-'."
            error=field_error(outcome, "name")/>
        {(!editing).then(|| view! {
            <fieldset class="choices" aria-describedby="field-kind-error">
                <legend>"Kind"</legend>
                <div class="choice">
                    <input type="radio" id="kind-basic" name="kind" value="basic" checked=move || !ecr_refused.get()/>
                    <label for="kind-basic">"Username and password or token"</label>
                    <p class="field-hint">"Docker Hub, GHCR, GitLab, Harbor, Quay, a private registry."</p>
                </div>
                <div class="choice">
                    <input type="radio" id="kind-ecr" name="kind" value="ecr" checked=move || ecr_refused.get()/>
                    <label for="kind-ecr">"AWS ECR access key"</label>
                    <p class="field-hint">"Amazon ECR: Berth mints a fresh token for every deploy."</p>
                </div>
                <p class="field-error" id="field-kind-error" aria-live="polite">{move || field_error(outcome, "kind").get()}</p>
            </fieldset>
        })}
        <Field label="Registry" name="registry" value=value(|c| c.registry.clone())
            hint=match kind {
                Some(CredentialKind::Basic) => "The host only, with a port if it has one. Changing it needs the password or token again (below): a secret is only ever sent to the registry it was entered for.",
                Some(CredentialKind::Ecr) => "ACCOUNT.dkr.ecr.REGION.amazonaws.com, in the credential's region.",
                None => "The host only, with a port if it has one: ghcr.io, registry.gitlab.com, harbor.example.com:8443, docker.io for Docker Hub; for ECR, ACCOUNT.dkr.ecr.REGION.amazonaws.com.",
            }
            error=field_error(outcome, "registry")/>
        {basic_fields}
        {ecr_fields}
        <Field label="Note (optional)" name="note" required=false value=value(|c| c.note.clone().unwrap_or_default())
            hint="For example who owns it and when it must be rotated."
            error=field_error(outcome, "note")/>
        <Field label="Expires on (optional)" name="expires_on" kind="date" required=false
            value=value(|c| c.expires_at.map(crate::components::time::iso_date).unwrap_or_default())
            hint="When the token or key stops working, if you know (e.g. a personal access token's expiry). The list warns as it nears."
            error=field_error(outcome, "expires_on")/>
    }
}

#[component]
pub fn CredentialDetailPage() -> AnyView {
    let params = use_params_map();
    let team = move || params.read().get("team").unwrap_or_default();
    let name = move || params.read().get("name").unwrap_or_default();
    let verify = ServerAction::<VerifyCredential>::new();
    let update = ServerAction::<UpdateCredential>::new();
    let delete = ServerAction::<DeleteCredential>::new();
    let page = Resource::new(
        move || {
            (
                team(),
                name(),
                verify.version().get(),
                update.version().get(),
            )
        },
        |(team, name, ..)| load_credential(team, name),
    );
    let navigate = use_navigate();
    let update_outcome: Signal<_> = update.value().into();
    let delete_outcome: Signal<_> = delete.value().into();
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            if let Some(Ok(new_name)) = update_outcome.get() {
                if new_name != name() {
                    navigate(
                        &format!("/teams/{}/credentials/{new_name}", team()),
                        Default::default(),
                    );
                }
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete_outcome.get() {
            navigate(
                &format!("/teams/{}/credentials", team()),
                Default::default(),
            );
        }
    });
    view! {
        <Title text="Registry credential"/>
        <Loaded page loading="Loading credential…" let(me, page)>
            <CredentialDetail me page verify update delete/>
        </Loaded>
    }
    .into_any()
}

#[component]
fn CredentialDetail(
    me: Me,
    page: CredentialPage,
    verify: ServerAction<VerifyCredential>,
    update: ServerAction<UpdateCredential>,
    delete: ServerAction<DeleteCredential>,
) -> impl IntoView {
    let now = crate::now_ms();
    let role = page.team.role;
    let handle = page.team.handle.clone();
    let c = page.credential.clone();
    let verify_outcome: Signal<_> = verify.value().into();
    let update_outcome: Signal<_> = update.value().into();
    let delete_outcome: Signal<_> = delete.value().into();
    let from_page = page.flash.clone();
    let (csrf_verify, csrf_update, csrf_delete) =
        (me.csrf.clone(), me.csrf.clone(), me.csrf.clone());
    let (team_verify, team_update, team_delete) = (handle.clone(), handle.clone(), handle.clone());
    let (name_verify, name_update, name_delete) = (c.name.clone(), c.name.clone(), c.name.clone());
    let current = c.clone();
    let used_by = page.used_by.clone();
    let report = move || match verify_outcome.get() {
        Some(Ok(Some(flash))) => Some(flash),
        _ => from_page.clone(),
    };
    view! {
        <Console me=me.clone() team=handle.clone() section=Section::Credentials>
            <p class="breadcrumb"><a href=format!("/teams/{handle}/credentials")>"Registry credentials"</a> " /"</p>
            <header class="page-header"><h1>{c.name.clone()}</h1></header>
            <dl class="facts">
                <dt>"Registry"</dt><dd><code>{c.registry.clone()}</code></dd>
                <dt>"Kind"</dt><dd>{match c.kind { CredentialKind::Basic => "basic (username and password or token)", CredentialKind::Ecr => "ecr (AWS access key; a fresh token for every use)" }}</dd>
                {match c.aws.clone() {
                    None => view! {
                        <dt>"Username"</dt><dd>{c.username.clone()}</dd>
                        <dt>"Secret"</dt><dd>"write-only, version " {c.secret_version} ", updated " <Time ms=c.updated_at now/></dd>
                    }.into_any(),
                    Some(aws) => view! {
                        <dt>"Access key id"</dt><dd><code>{aws.access_key_id.clone()}</code></dd>
                        <dt>"Secret access key"</dt><dd>"write-only, version " {c.secret_version} ", updated " <Time ms=c.updated_at now/></dd>
                        <dt>"Region"</dt><dd>{aws.region.clone()}</dd>
                        <dt>"Role"</dt><dd>{match aws.role_arn.clone() {
                            Some(role) => view! { <code>{role}</code> {aws.external_id.clone().map(|id| view! { " (external id " <code>{id}</code> ")" })} }.into_any(),
                            None => "none: the key asks ECR itself".into_any(),
                        }}</dd>
                        <dt>"Last token"</dt><dd>{match (aws.token_minted_at, aws.token_expires_at) {
                            (Some(minted), Some(expires)) => view! { "minted " <Time ms=minted now/> ", expires " <Time ms=expires now/> " (" {crate::components::time::iso_date(expires)} ")" }.into_any(),
                            (Some(minted), None) => view! { "minted " <Time ms=minted now/> }.into_any(),
                            _ => "none minted yet: verify to get one".into_any(),
                        }}</dd>
                        <dt>"Last AWS error"</dt><dd>{match (aws.last_error.clone(), aws.last_error_at) {
                            (Some(error), Some(at)) => view! { <span class="check check-failed">"✗ " <Time ms=at now/></span> " " <code class="aws-error">{error}</code> }.into_any(),
                            _ => "none".into_any(),
                        }}</dd>
                    }.into_any(),
                }}
                <dt>"Last verified"</dt><dd><CheckCell check=c.last_verified.clone() never="never" now/>
                    {c.last_verified.clone().map(|v| view! { " " <span class="muted">{v.detail}</span> })}</dd>
                <dt>"Last used"</dt><dd><CheckCell check=c.last_used.clone() never="not yet used by a deploy" now/>
                    {c.last_used.clone().map(|u| view! { " " <span class="muted">{u.detail}</span> })}</dd>
                <dt>"Expires"</dt><dd>{match c.expires_at {
                    Some(ms) => view! { <Time ms now/> " (" {crate::components::time::iso_date(ms)} ")" }.into_any(),
                    None => "not known (set it when editing)".into_any(),
                }}</dd>
                <dt>"Used by"</dt><dd>{match c.used_by_apps { 0 => "no apps".to_string(), 1 => "1 app".to_string(), n => format!("{n} apps") }}</dd>
                {c.note.clone().map(|note| view! { <dt>"Note"</dt><dd>{note}</dd> })}
            </dl>

            <section class="panel" aria-labelledby="verify-heading">
                <h2 id="verify-heading">"Verify"</h2>
                {move || report().map(|flash| view! { <FlashView flash/> })}
                {if role.allows(Role::Deployer) {
                    view! {
                        <p class="muted">"Logs in to the registry now. Give an image to prove this credential can pull it and see its digest."</p>
                        <ActionForm action=verify>
                            <Csrf token=csrf_verify/>
                            <input type="hidden" name="team" value=team_verify/>
                            <input type="hidden" name="name" value=name_verify/>
                            <FormError outcome=verify_outcome fields=&["image"]/>
                            <Field label="Image (optional)" name="image" id="verify-image".to_string() required=false
                                hint="For example registry.example.com/team/app:1.4, or pinned with @sha256:…"
                                error=field_error(verify_outcome, "image")/>
                            <button type="submit" class="button button-primary">"Verify"</button>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! { <p class="notice">"Deployers and owners can verify credentials. Your role is viewer."</p> }.into_any()
                }}
            </section>

            {(role == Role::Owner).then(move || view! {
                <section class="panel" aria-labelledby="edit-heading">
                    <h2 id="edit-heading">"Edit"</h2>
                    <ActionForm action=update>
                        <Csrf token=csrf_update/>
                        <input type="hidden" name="team" value=team_update/>
                        <input type="hidden" name="current" value=name_update/>
                        <FormError outcome=update_outcome fields=CREDENTIAL_FIELDS/>
                        <CredentialFields outcome=update_outcome current=Some(current)/>
                        <button type="submit" class="button button-primary">"Save changes"</button>
                    </ActionForm>
                </section>
                <section class="panel danger-zone" aria-labelledby="delete-heading">
                    <h2 id="delete-heading">"Delete"</h2>
                    {if used_by.is_empty() {
                        view! { <p>"No app deploys with this credential."</p> }.into_any()
                    } else {
                        view! {
                            <p>{format!("Used by {} app(s): ", used_by.len())}<strong>{used_by.join(", ")}</strong>". "
                                "They fall back to their own remembered credentials, or fail clearly at their next deploy."</p>
                        }.into_any()
                    }}
                    <ActionForm action=delete>
                        <Csrf token=csrf_delete/>
                        <input type="hidden" name="team" value=team_delete/>
                        <input type="hidden" name="name" value=name_delete/>
                        <FormError outcome=delete_outcome fields=&["confirm"]/>
                        <Field label="Type the name to confirm" name="confirm" id="delete-confirm".to_string()
                            autocomplete="off" error=field_error(delete_outcome, "confirm")/>
                        <button type="submit" class="button button-danger">"Delete credential"</button>
                    </ActionForm>
                </section>
            })}

            <section class="panel" aria-labelledby="history-heading">
                <h2 id="history-heading">"History"</h2>
                <AuditTable events=page.events.clone() now/>
            </section>
        </Console>
    }
}

/// Audit events as a table, newest first.
#[component]
pub fn AuditTable(events: Vec<AuditRow>, now: i64) -> impl IntoView {
    if events.is_empty() {
        return view! { <div class="empty-state"><p>"Nothing has happened yet."</p></div> }
            .into_any();
    }
    view! {
        <table class="table">
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th>
                <th scope="col">"Subject"</th><th scope="col">"Outcome"</th><th scope="col">"Details"</th>
            </tr></thead>
            <tbody>
                {events.into_iter().map(|e| view! {
                    <tr>
                        <td><Time ms=e.at now/></td>
                        <td>{e.actor.unwrap_or_else(|| "Berth".into())}</td>
                        <td><code>{e.action}</code></td>
                        <td>{e.subject}</td>
                        <td>{if e.ok { view! { <span class="badge badge-ok">"✓ ok"</span> } } else { view! { <span class="badge badge-failed">"✗ failed"</span> } }}</td>
                        <td>{e.detail.unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
