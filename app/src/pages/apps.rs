//! `/teams/{team}/apps…`: the team's apps, a new app, and an app's page with its release,
//! credentials, configuration, recent operations and the forms that change it (deploy an
//! image, configure, restart). Viewers see everything but the forms; no page ever receives
//! a registry secret or a secret configuration value.

use crate::{
    components::{
        form::{field_error, Csrf, Field, FormError, Outcome},
        layout::{Console, ErrorPage, Me, NotFound, Section, SignedIn},
        time::Time,
    },
    error::AppError,
    model::{AppPage, AppRow, AppsPage, BuildSource},
    pages::operations::{image_name, short_digest, OperationsTable, StatusBadge},
    serverfns::apps::{
        check_base_images, load_app, load_apps, ConfigureApp, CreateApp, DeployImage, DeployRef,
        FetchRefs, RestartApp,
    },
};
use domain::{DeployMethod, ImageReference, Role};
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::{
    components::Form,
    hooks::{use_navigate, use_params_map, use_query_map},
};

fn param(name: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get(name).unwrap_or_default()
}

fn method_label(method: &str) -> &'static str {
    DeployMethod::parse(method).map_or("unknown", DeployMethod::label)
}

/// Goes to the operation a form queued, once the browser has its id.
fn follow_to_operation(outcome: Outcome<i64>, team: impl Fn() -> String + Send + Sync + 'static) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = outcome.get() {
            navigate(
                &format!("/teams/{}/operations/{id}", team()),
                Default::default(),
            );
        }
    });
}

#[component]
pub fn AppsListPage() -> impl IntoView {
    let team = param("team");
    let page = Resource::new(team, load_apps);
    view! {
        <Title text="Apps"/>
        <SignedIn let:me>
            <Suspense fallback=|| view! { <p class="loading">"Loading apps…"</p> }>
                {
                    let me = me.clone();
                    move || {
                        let me = me.clone();
                        Suspend::new(async move {
                            match page.await {
                                Ok(page) => view! { <AppList me page/> }.into_any(),
                                Err(error) => view! { <ErrorPage error/> }.into_any(),
                            }
                        })
                    }
                }
            </Suspense>
        </SignedIn>
    }
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
                    <td>{method_label(&a.method)}</td>
                    <td class="cell-source"><ReleaseCell app=a.clone()/></td>
                    <td>{a.release.as_ref().and_then(|r| r.url.clone()).map(|url| view! { <a href=url.clone()>{url.clone()}</a> })}</td>
                    <td>{match a.last_operation.clone() {
                        Some(last) => view! {
                            <a href=format!("/teams/{team}/operations/{}", last.id)>{last.kind}</a> " "
                            <StatusBadge status=last.status/> " " <Time ms=last.at now/>
                        }.into_any(),
                        None => view! { <span class="muted">"none yet"</span> }.into_any(),
                    }}</td>
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

#[component]
fn ReleaseCell(app: AppRow) -> impl IntoView {
    match app.release {
        Some(r) => view! {
            <code title=r.image.clone()>{image_name(&r.image).to_owned()}</code> " "
            <code class="digest" title=r.digest.clone()>{short_digest(&r.digest)}</code>
        }
        .into_any(),
        None => view! { <span class="muted">"not deployed"</span> }.into_any(),
    }
}

#[component]
pub fn NewAppPage() -> impl IntoView {
    let team = param("team");
    let action = ServerAction::<CreateApp>::new();
    let outcome: Signal<_> = action.value().into();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(handle)) = outcome.get() {
            navigate(
                &format!("/teams/{}/apps/{handle}", team()),
                Default::default(),
            );
        }
    });
    view! {
        <Title text="New app"/>
        <SignedIn let:me>
            {
                let handle = team();
                let Some(summary) = me.viewer.teams.iter().find(|t| t.handle == handle).cloned() else {
                    return view! { <NotFound/> }.into_any();
                };
                let csrf = me.csrf.clone();
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
                                                <input type="radio" id="method-image" name="method" value="image" checked=true/>
                                                <label for="method-image">"Direct Docker Image"</label>
                                                <p class="field-hint">"Run a prebuilt image from any registry; each deploy names the image, and Berth records its digest."</p>
                                            </div>
                                            <div class="choice">
                                                <input type="radio" id="method-dockerfile" name="method" value="dockerfile" aria-describedby="method-dockerfile-hint"/>
                                                <label for="method-dockerfile">"Dockerfile"</label>
                                                <p class="field-hint" id="method-dockerfile-hint">"Build from a git repository: each deploy names a branch, tag or commit, and Berth builds that commit's Dockerfile."</p>
                                            </div>
                                            <p class="field-error" id="field-method-error" aria-live="polite">{move || field_error(outcome, "method").get()}</p>
                                        </fieldset>
                                        <Field label="Health-check path (optional)" name="health_path" required=false autocomplete="off"
                                            hint="A path the release must answer (any status below 500) before it takes over, e.g. /healthz. Without one, Berth waits for the port to accept connections."
                                            error=field_error(outcome, "health_path")/>
                                        <GitSourceFields outcome/>
                                        <button type="submit" class="button button-primary">"Create app"</button>
                                    </ActionForm>
                                </section>
                            }.into_any()
                        }}
                    </Console>
                }.into_any()
            }
        </SignedIn>
    }
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
];

/// The git source of a Dockerfile app. Always on the form, so that it works without
/// JavaScript; an image app leaves it empty.
#[component]
fn GitSourceFields(outcome: Outcome<String>) -> impl IntoView {
    view! {
        <fieldset class="field-group" aria-describedby="git-source-hint">
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

#[component]
pub fn AppDetailPage() -> impl IntoView {
    let team = param("team");
    let app = param("app");
    let deploy = ServerAction::<DeployImage>::new();
    let deploy_ref = ServerAction::<DeployRef>::new();
    let fetch = ServerAction::<FetchRefs>::new();
    let configure = ServerAction::<ConfigureApp>::new();
    let restart = ServerAction::<RestartApp>::new();
    // A fetch changes what the page lists: load it again once the fetch has run.
    let page = Resource::new(
        move || (team(), app(), fetch.version().get()),
        |(team, app, _)| load_app(team, app),
    );
    follow_to_operation(deploy.value().into(), team);
    follow_to_operation(deploy_ref.value().into(), team);
    follow_to_operation(configure.value().into(), team);
    follow_to_operation(restart.value().into(), team);
    view! {
        <Title text="App"/>
        <SignedIn let:me>
            <Suspense fallback=|| view! { <p class="loading">"Loading the app…"</p> }>
                {
                    let me = me.clone();
                    move || {
                        let me = me.clone();
                        Suspend::new(async move {
                            match page.await {
                                Ok(page) => view! { <AppDetail me page deploy deploy_ref fetch configure restart/> }.into_any(),
                                Err(error) => view! { <ErrorPage error/> }.into_any(),
                            }
                        })
                    }
                }
            </Suspense>
        </SignedIn>
    }
}

#[component]
fn AppDetail(
    me: Me,
    page: AppPage,
    deploy: ServerAction<DeployImage>,
    deploy_ref: ServerAction<DeployRef>,
    fetch: ServerAction<FetchRefs>,
    configure: ServerAction<ConfigureApp>,
    restart: ServerAction<RestartApp>,
) -> impl IntoView {
    let now = crate::now_ms();
    let build = page.build.clone();
    let dockerfile = build.is_some();
    let team = page.team.handle.clone();
    let a = page.app.clone();
    let can_deploy = page.team.role.allows(Role::Deployer);
    let history_href = format!("/teams/{team}/apps/{}/history", a.handle);
    let credentials = page.credentials.clone();
    let has_release = a.release.is_some();
    let unavailable = page.platform_unavailable.clone();
    view! {
        <Title text=a.handle.clone()/>
        <Console me=me.clone() team=team.clone() section=Section::Apps>
            <p class="breadcrumb"><a href=format!("/teams/{team}/apps")>"Apps"</a> " /"</p>
            <header class="page-header">
                <div>
                    <h1>{a.handle.clone()}</h1>
                    <p class="muted">{method_label(&a.method)} " deploy"
                        {a.health_path.clone().map(|p| view! { " · health check " <code>{p}</code> })}</p>
                </div>
                <div class="row-actions">
                    {can_deploy.then(|| view! { <a class="button button-primary" href="#deploy">"Deploy"</a> })}
                    <a class="button" href=history_href.clone()>"History"</a>
                </div>
            </header>

            <section class="panel" aria-labelledby="release-heading">
                <h2 id="release-heading">"Current release"</h2>
                {match a.release.clone() {
                    Some(r) => view! {
                        <dl class="facts">
                            <dt>"Image"</dt><dd><code>{r.image}</code></dd>
                            <dt>"Digest"</dt><dd><code class="digest">{r.digest}</code></dd>
                            <dt>"Since"</dt><dd><Time ms=r.since now/> " · "
                                <a href=format!("/teams/{team}/operations/{}", r.operation_id)>{format!("operation #{}", r.operation_id)}</a></dd>
                            <dt>"URL"</dt><dd>{match r.url {
                                Some(url) => view! { <a href=url.clone()>{url.clone()}</a> }.into_any(),
                                None => view! { <span class="muted">"not running on this server"</span> }.into_any(),
                            }}</dd>
                        </dl>
                    }.into_any(),
                    None => view! {
                        <p class="muted">"Not deployed yet. "
                            {match (can_deploy, dockerfile) {
                                (true, false) => "Deploy an image below: Berth verifies it can pull the image before anything is queued.",
                                (true, true) => "Deploy a branch, tag or commit below: Berth checks that it can pull every base image before anything is built.",
                                (false, _) => "A deployer or an owner deploys it.",
                            }}</p>
                    }.into_any(),
                }}
            </section>

            {match build.clone() {
                Some(build) => view! {
                    <SourceSection git=build.clone() csrf=me.csrf.clone() team=team.clone() app=a.handle.clone() action=fetch now/>
                    <BaseCredentials git=build.clone() team=team.clone() team_credentials=page.team_credentials.clone()/>
                    <BaseCheck team=team.clone() app=a.handle.clone()/>
                    {can_deploy.then(|| view! {
                        <DeployRefForm csrf=me.csrf.clone() page=page.clone() git=build.clone() action=deploy_ref/>
                    })}
                }.into_any(),
                None => view! {
                    <section class="panel" aria-labelledby="credentials-heading">
                        <h2 id="credentials-heading">"Registry credentials"</h2>
                        <dl class="facts">
                            <dt>"Remembered on this app"</dt>
                            <dd>{match credentials.remembered.clone() {
                                Some((registry, username)) => view! {
                                    <code>{format!("{username}@{registry}")}</code>
                                    {credentials.remembered_at.map(|ms| view! { " · since " <Time ms now/> })}
                                    " · password write-only"
                                }.into_any(),
                                None => view! { <span class="muted">"none"</span> }.into_any(),
                            }}</dd>
                            <dt>"Team credential"</dt>
                            <dd>{match credentials.team_credential.clone() {
                                Some(name) => view! { <a href=format!("/teams/{team}/credentials/{name}")>{name.clone()}</a> }.into_any(),
                                None => view! { <span class="muted">"none"</span> }.into_any(),
                            }}</dd>
                        </dl>
                        <p class="muted">"Credentials are used only to pull images; they never reach the app's environment."</p>
                    </section>
                    {can_deploy.then(|| view! {
                        <DeployForm csrf=me.csrf.clone() page=page.clone() action=deploy/>
                    })}
                }.into_any(),
            }}

            <section class="panel" aria-labelledby="config-heading">
                <h2 id="config-heading">"Configuration"</h2>
                <ConfigTable page=page.clone()/>
                {can_deploy.then(|| view! {
                    <ConfigureForm csrf=me.csrf.clone() team=team.clone() app=a.handle.clone()
                        has_release dockerfile action=configure/>
                })}
            </section>

            {(can_deploy && has_release).then(|| {
                let outcome: Signal<_> = restart.value().into();
                view! {
                    <section class="panel" aria-labelledby="restart-heading">
                        <h2 id="restart-heading">"Restart"</h2>
                        <p class="muted">"Starts the current release again with the current configuration, waits for its health check, then switches over."</p>
                        <ActionForm action=restart>
                            <Csrf token=me.csrf.clone()/>
                            <input type="hidden" name="team" value=team.clone()/>
                            <input type="hidden" name="app" value=a.handle.clone()/>
                            <FormError outcome fields=&[]/>
                            <button type="submit" class="button" disabled=unavailable.is_some()>"Restart"</button>
                        </ActionForm>
                    </section>
                }
            })}

            <section class="panel" aria-labelledby="operations-heading">
                <h2 id="operations-heading">"Recent operations"</h2>
                {if page.operations.is_empty() {
                    view! { <div class="empty-state"><p>"No operations yet: a deploy will be the first."</p></div> }.into_any()
                } else {
                    view! {
                        <OperationsTable operations=page.operations.clone() now show_app=false caption="Recent operations"/>
                        <p><a href=history_href>"Full history"</a></p>
                    }.into_any()
                }}
            </section>
        </Console>
    }
}

/// A field's problem: the message and, for a registry's refusal, its precise reason.
#[derive(Clone, Debug, PartialEq)]
struct Problem {
    reason: Option<String>,
    message: String,
}

fn problem(outcome: Outcome<i64>, field: &'static str) -> Signal<Option<Problem>> {
    Signal::derive(move || match outcome.get() {
        Some(Err(AppError::VerificationFailed {
            field: f,
            reason,
            message,
        })) if f == field => Some(Problem {
            reason: Some(reason),
            message,
        }),
        Some(Err(e)) if e.field() == Some(field) => Some(Problem {
            reason: None,
            message: e.to_string(),
        }),
        _ => None,
    })
}

/// The error line under a field; its id is what the field's `aria-describedby` names.
#[component]
fn ProblemText(id: &'static str, #[prop(into)] problem: Signal<Option<Problem>>) -> impl IntoView {
    view! {
        <p class="field-error" id=id aria-live="polite">
            {move || problem.get().map(|p| view! {
                {p.reason.map(|r| view! { <span class="badge badge-failed">{r}</span> " " })}
                {p.message}
            })}
        </p>
    }
}

const DEPLOY_FIELDS: &[&str] = &[
    "image",
    "credentials",
    "credential",
    "registry_username",
    "registry_password",
    "remember",
    "env",
];

/// The deploy form: the image (checked as it is typed, with the same parser the server
/// uses), how to authenticate to its registry, and configuration changes to apply with it.
#[component]
fn DeployForm(csrf: String, page: AppPage, action: ServerAction<DeployImage>) -> impl IntoView {
    let outcome: Outcome<i64> = action.value().into();
    // What has been typed since the last submission: while set, the check in the browser
    // speaks for the field rather than the last answer from the server.
    let typed = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        action.version().track();
        typed.set(None);
    });
    let checked = move || {
        typed
            .get()
            .filter(|v| !v.trim().is_empty())
            .map(|v| ImageReference::parse(&v))
    };
    let server_image = problem(outcome, "image");
    let image_problem = Signal::derive(move || match checked() {
        Some(Err(e)) => Some(Problem {
            reason: None,
            message: e.message,
        }),
        Some(Ok(_)) => None,
        None if typed.with(Option::is_some) => None,
        None => server_image.get(),
    });
    let understood = move || match checked() {
        Some(Ok(image)) => {
            let pinned = image.tag().is_none() && image.digest().is_none();
            Some(format!(
                "Understood as {image}{}",
                if pinned { ":latest" } else { "" }
            ))
        }
        _ => None,
    };
    let credential_problem = problem(outcome, "credential");
    let credentials_problem = problem(outcome, "credentials");
    let username_error = Signal::derive(move || {
        problem(outcome, "registry_username")
            .get()
            .map(|p| p.message)
    });
    let password_problem = problem(outcome, "registry_password");
    let env_problem = problem(outcome, "env");

    let team = page.team.handle.clone();
    let app = page.app.handle.clone();
    let remembered = page.credentials.remembered.clone();
    let team_credentials = page.team_credentials.clone();
    let default_choice = if remembered.is_some() {
        "remembered"
    } else if page.credentials.team_credential.is_some() || !team_credentials.is_empty() {
        "team"
    } else {
        "none"
    };
    let current_image = page
        .app
        .release
        .as_ref()
        .map(|r| r.image.clone())
        .unwrap_or_default();
    let unavailable = page.platform_unavailable.clone();
    let disabled = unavailable.is_some();
    let selected_credential = page.credentials.team_credential.clone();
    view! {
        <section class="panel" id="deploy" aria-labelledby="deploy-heading">
            <h2 id="deploy-heading">"Deploy an image"</h2>
            {unavailable.map(|message| view! {
                <div class="alert alert-error" role="status">
                    <p><strong>"Deploys cannot run on this server right now."</strong></p>
                    <p>{message}</p>
                </div>
            })}
            <ActionForm action>
                <Csrf token=csrf/>
                <input type="hidden" name="team" value=team/>
                <input type="hidden" name="app" value=app/>
                <FormError outcome fields=DEPLOY_FIELDS/>
                <div class="field">
                    <label for="deploy-image">"Image"</label>
                    <input id="deploy-image" type="text" name="image" required=true autocomplete="off"
                        spellcheck="false" value=current_image
                        aria-invalid=move || if image_problem.with(Option::is_some) { "true" } else { "false" }
                        aria-describedby="deploy-image-hint deploy-image-parsed deploy-image-error"
                        on:input=move |ev| typed.set(Some(event_target_value(&ev)))/>
                    <p class="field-hint" id="deploy-image-hint">
                        "registry/namespace/repo:tag, or pinned with @sha256:…; Docker Hub names such as nginx work too. "
                        "Before anything is queued Berth logs in, resolves the tag to a digest and records it."
                    </p>
                    <p class="field-hint" id="deploy-image-parsed" aria-live="polite">{understood}</p>
                    <ProblemText id="deploy-image-error" problem=image_problem/>
                </div>

                <fieldset class="choices" aria-describedby="deploy-credentials-error">
                    <legend>"Registry credentials"</legend>
                    {remembered.map(|(registry, username)| view! {
                        <div class="choice">
                            <input type="radio" id="credentials-remembered" name="credentials" value="remembered"
                                checked=default_choice == "remembered" aria-describedby="credentials-remembered-hint"/>
                            <label for="credentials-remembered">"Remembered on this app"</label>
                            <p class="field-hint" id="credentials-remembered-hint">
                                <code>{format!("{username}@{registry}")}</code>
                                ". New credentials given with a deploy replace them."
                            </p>
                        </div>
                    })}
                    <div class="choice">
                        <input type="radio" id="credentials-team" name="credentials" value="team"
                            checked=default_choice == "team" disabled=team_credentials.is_empty()/>
                        <label for="credentials-team">"A team credential"</label>
                        <div class="choice-detail">
                            {if team_credentials.is_empty() {
                                view! {
                                    <p class="field-hint">"The team has no registry credentials yet; owners add them under "
                                        <a href=format!("/teams/{}/credentials", page.team.handle)>"Credentials"</a> "."</p>
                                    <input type="hidden" name="credential" value=""/>
                                }.into_any()
                            } else {
                                view! {
                                    <label for="deploy-credential">"Team credential"</label>
                                    <select id="deploy-credential" name="credential"
                                        aria-invalid=move || if credential_problem.with(Option::is_some) { "true" } else { "false" }
                                        aria-describedby="deploy-credential-hint deploy-credential-error">
                                        <option value="">"Match automatically by registry host"</option>
                                        {team_credentials.iter().map(|(name, registry)| {
                                            let selected = selected_credential.as_deref() == Some(name.as_str());
                                            view! { <option value=name.clone() selected=selected>{format!("{name} ({registry})")}</option> }
                                        }).collect_view()}
                                    </select>
                                    <p class="field-hint" id="deploy-credential-hint">
                                        "Matched automatically: Berth uses the team credential whose registry is the image's host "
                                        "(ghcr.io for ghcr.io/org/app). Choose one by name when several are for the same host."
                                    </p>
                                }.into_any()
                            }}
                            <ProblemText id="deploy-credential-error" problem=credential_problem/>
                        </div>
                    </div>
                    <div class="choice">
                        <input type="radio" id="credentials-new" name="credentials" value="new"/>
                        <label for="credentials-new">"A username and password (or token)"</label>
                        <div class="choice-detail">
                            <Field label="Registry username" name="registry_username" id="deploy-registry-username".to_string()
                                autocomplete="off" required=false error=username_error/>
                            <div class="field">
                                <label for="deploy-registry-password">"Registry password or token"</label>
                                <input id="deploy-registry-password" type="password" name="registry_password"
                                    autocomplete="new-password"
                                    aria-invalid=move || if password_problem.with(Option::is_some) { "true" } else { "false" }
                                    aria-describedby="deploy-registry-password-hint deploy-registry-password-error"/>
                                <p class="field-hint" id="deploy-registry-password-hint">"Stored encrypted and never shown again; kept out of logs and the app's environment."</p>
                                <ProblemText id="deploy-registry-password-error" problem=password_problem/>
                            </div>
                            <fieldset class="choices choices-inline">
                                <legend>"Keep them?"</legend>
                                <div class="choice">
                                    <input type="radio" id="remember-app" name="remember" value="app" checked=true
                                        aria-describedby="remember-app-hint"/>
                                    <label for="remember-app">"Remember for this app"</label>
                                    <p class="field-hint" id="remember-app-hint">"Later deploys use them without asking; they replace what the app remembered."</p>
                                </div>
                                <div class="choice">
                                    <input type="radio" id="remember-once" name="remember" value="once"
                                        aria-describedby="remember-once-hint"/>
                                    <label for="remember-once">"This deploy only"</label>
                                    <p class="field-hint" id="remember-once-hint">"Used to pull this image, then erased: for short-term tokens such as AWS ECR ones."</p>
                                </div>
                            </fieldset>
                        </div>
                    </div>
                    <div class="choice">
                        <input type="radio" id="credentials-none" name="credentials" value="none"
                            checked=default_choice == "none"/>
                        <label for="credentials-none">"None: a public image"</label>
                    </div>
                    <ProblemText id="deploy-credentials-error" problem=credentials_problem/>
                </fieldset>

                <div class="field">
                    <label for="deploy-env">"Configuration changes (optional)"</label>
                    <textarea id="deploy-env" name="env_text" rows="3" spellcheck="false"
                        aria-invalid=move || if env_problem.with(Option::is_some) { "true" } else { "false" }
                        aria-describedby="deploy-env-hint deploy-env-error"></textarea>
                    <p class="field-hint" id="deploy-env-hint">
                        "One per line: KEY=value sets a variable, -KEY unsets it. Applied together with this deploy: one operation, one restart."
                    </p>
                    <ProblemText id="deploy-env-error" problem=env_problem/>
                </div>
                <button type="submit" class="button button-primary" disabled=disabled>
                    {move || if action.pending().get() { "Verifying…" } else { "Verify and deploy" }}
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
fn ConfigTable(page: AppPage) -> impl IntoView {
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
                            _ => view! { <span class="secret-mask">"•••• (write-only)"</span> }.into_any(),
                        }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn ConfigureForm(
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
            <div class="field">
                <label for="configure-env">"Variables to set or unset"</label>
                <textarea id="configure-env" name="env_text" rows="4" spellcheck="false" required=true
                    aria-invalid=move || if env_problem.with(Option::is_some) { "true" } else { "false" }
                    aria-describedby="configure-env-hint configure-env-error"></textarea>
                <p class="field-hint" id="configure-env-hint">
                    "One per line: KEY=value sets a variable, -KEY unsets it. "
                    {if has_release {
                        "This runs a configure operation that restarts the running release with the new environment. To change configuration along with a new image, use the deploy form instead: one operation, one restart."
                    } else {
                        "The app has no release yet: the changes are stored and its first deploy starts with them."
                    }}
                </p>
                <ProblemText id="configure-env-error" problem=env_problem/>
            </div>
            {dockerfile.then(|| view! { <ShortTermCredentialsNote in_deploy_form=false/> })}
            <button type="submit" class="button">{if has_release { "Apply configuration" } else { "Save configuration" }}</button>
        </ActionForm>
    }
}

/// The recommendation for short-term registry credentials with Dockerfile deploys
/// (DESIGN.md §1): with the deploy is one build and one restart; configuring first, two.
#[component]
fn ShortTermCredentialsNote(
    /// Shown in the deploy form rather than the configure form.
    in_deploy_form: bool,
) -> impl IntoView {
    view! {
        <p class="note">
            {if in_deploy_form {
                view! {
                    <strong>"Short-term credentials (e.g. AWS ECR tokens): give them here, with the deploy — one build, one restart."</strong>
                    " Setting them in Configuration first also works but restarts the app twice."
                }.into_any()
            } else {
                view! {
                    <strong>"Short-term registry credentials (e.g. AWS ECR tokens): give them in the deploy form, with the deploy — one build, one restart."</strong>
                    " Setting APTIBLE_PRIVATE_REGISTRY_USERNAME / _PASSWORD here first also works but restarts the app twice: once now, once for the deploy."
                }.into_any()
            }}
        </p>
    }
}

/// A Dockerfile app's repository, and its branches and tags with what is deployed.
#[component]
fn SourceSection(
    git: BuildSource,
    csrf: String,
    team: String,
    app: String,
    action: ServerAction<FetchRefs>,
    now: i64,
) -> impl IntoView {
    let build = git;
    let outcome: Outcome<usize> = action.value().into();
    let source = build.source.clone();
    let deployed = build.deployed_commit.clone();
    let listed = deployed
        .as_ref()
        .is_some_and(|c| build.refs.iter().any(|r| &r.commit == c));
    let fetched = move || match outcome.get() {
        Some(Ok(n)) => Some(format!(
            "Fetched: {n} branch{} and tag{}.",
            if n == 1 { "" } else { "es" },
            if n == 1 { "" } else { "s" }
        )),
        _ => None,
    };
    let rows = build
        .refs
        .iter()
        .map(|r| {
            let is_deployed = deployed.as_deref() == Some(r.commit.as_str());
            view! {
                <tr>
                    <th scope="row" class="cell-nowrap"><code>{r.name.clone()}</code></th>
                    <td>{r.kind.clone()}</td>
                    <td><code class="digest" title=r.commit.clone()>{r.short_commit.clone()}</code></td>
                    <td class="cell-subject" title=r.subject.clone()>{r.subject.clone()}</td>
                    <td class="cell-nowrap"><Time ms=r.committed_at now/></td>
                    <td>{if is_deployed {
                        view! { <span class="badge badge-ok">"deployed"</span> }.into_any()
                    } else {
                        view! { <span class="badge badge-pending">"not yet deployed"</span> }.into_any()
                    }}</td>
                </tr>
            }
        })
        .collect_view();
    let empty = build.refs.is_empty();
    view! {
        <section class="panel" id="source" aria-labelledby="source-heading">
            <h2 id="source-heading">"Source"</h2>
            <dl class="facts">
                <dt>"Repository"</dt><dd><code>{source.url}</code></dd>
                <dt>"Dockerfile"</dt><dd><code>{source.dockerfile}</code></dd>
                <dt>"Build context"</dt><dd><code>{source.context}</code></dd>
                <dt>"Read credentials"</dt>
                <dd>{match source.username {
                    Some(username) => view! { <code>{username}</code> " · password write-only, stored encrypted" }.into_any(),
                    None => view! { <span class="muted">"none: a public repository"</span> }.into_any(),
                }}</dd>
                <dt>"Deployed commit"</dt>
                <dd>{match deployed.clone() {
                    Some(commit) => view! {
                        <code class="digest" title=commit.clone()>{commit.chars().take(12).collect::<String>()}</code>
                        {(!listed && !empty).then_some(" · no branch or tag points at it any more")}
                    }.into_any(),
                    None => view! { <span class="muted">"none yet"</span> }.into_any(),
                }}</dd>
            </dl>

            <div class="section-header">
                <h3 id="refs-heading">"Branches and tags"</h3>
                <ActionForm action attr:class="inline-form" attr:aria-label="Fetch the repository">
                    <Csrf token=csrf/>
                    <input type="hidden" name="team" value=team/>
                    <input type="hidden" name="app" value=app/>
                    <button type="submit" class="button" aria-describedby="fetch-hint">
                        {move || if action.pending().get() { "Fetching…" } else { "Fetch" }}
                    </button>
                </ActionForm>
            </div>
            <p class="field-hint" id="fetch-hint">
                "Fetch reads the repository's branches and tags again. New commits show here as not yet deployed until a deploy names them."
            </p>
            <p class="muted" role="status">{fetched}</p>
            <FormError outcome fields=&[]/>
            {build.refs_error.map(|message| view! {
                <div class="alert alert-error" role="status">
                    <p><strong>"The repository could not be read."</strong></p>
                    <p>{message}</p>
                </div>
            })}
            {if empty {
                view! { <p class="muted">"No branches or tags to show."</p> }.into_any()
            } else {
                view! {
                    <table class="table" aria-labelledby="refs-heading">
                        <thead><tr>
                            <th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"Commit"</th>
                            <th scope="col">"Subject"</th><th scope="col">"Committed"</th><th scope="col">"Deployed"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

/// Which credential pulls each private base image of a Dockerfile build.
#[component]
fn BaseCredentials(
    git: BuildSource,
    team: String,
    team_credentials: Vec<(String, String)>,
) -> impl IntoView {
    let build = git;
    view! {
        <section class="panel" aria-labelledby="base-credentials-heading">
            <h2 id="base-credentials-heading">"Credentials for private base images"</h2>
            <p class="muted">
                "Before building, Berth reads the Dockerfile's FROM lines and checks that it can pull every base image. "
                "Public images need nothing; a private one is pulled with:"
            </p>
            <dl class="facts">
                <dt>"Configuration"</dt>
                <dd>{if build.private_registry_configured {
                    view! {
                        <code>"APTIBLE_PRIVATE_REGISTRY_USERNAME"</code> " set · password write-only · for "
                        {match build.private_registry_host.clone() {
                            Some(host) => view! { <code>{host}</code> " (APTIBLE_PRIVATE_REGISTRY_HOST)" }.into_any(),
                            None => view! { "the registry of the first FROM image that is not public" }.into_any(),
                        }}
                    }.into_any()
                } else {
                    view! { <span class="muted">"not set: give registry credentials with a deploy, below"</span> }.into_any()
                }}</dd>
                <dt>"Team credentials, matched by registry host"</dt>
                <dd>{if team_credentials.is_empty() {
                    view! { <span class="muted">"none; owners add them under "</span> <a href=format!("/teams/{team}/credentials")>"Credentials"</a> }.into_any()
                } else {
                    team_credentials.into_iter().enumerate().map(|(i, (name, registry))| view! {
                        {(i > 0).then_some(", ")}
                        <a href=format!("/teams/{team}/credentials/{name}")>{name.clone()}</a>
                        " (" <code>{registry}</code> ")"
                    }).collect_view().into_any()
                }}</dd>
            </dl>
            <p class="muted">"So one build can pull bases from several private registries. These credentials serve the build only: they never reach the running app's environment, the build log or the image."</p>
        </section>
    }
}

/// "Check base images": reads a ref's Dockerfile and asks each base image's registry, with
/// the credential a deploy would use, whether it can be pulled. A GET form (`?check=REF`),
/// so the result is a link and works without JavaScript.
#[component]
fn BaseCheck(team: String, app: String) -> impl IntoView {
    let query = use_query_map();
    let wanted = move || {
        query
            .read()
            .get("check")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
    };
    let report = Resource::new(
        move || (team.clone(), app.clone(), wanted()),
        |(team, app, wanted)| async move {
            match wanted {
                Some(git_ref) => Some(check_base_images(team, app, git_ref).await),
                None => None,
            }
        },
    );
    view! {
        <section class="panel" aria-labelledby="base-check-heading">
            <h2 id="base-check-heading">"Check base images"</h2>
            <Form method="GET" action="">
                <div class="field">
                    <label for="field-check">"Branch, tag or commit"</label>
                    <input id="field-check" name="check" type="text" value=wanted().unwrap_or_default()
                        aria-describedby="field-check-hint"/>
                    <p class="hint" id="field-check-hint">"Reads its Dockerfile and proves, before any deploy, that every FROM image can be pulled with the credential shown."</p>
                </div>
                <button type="submit" class="button">"Check base images"</button>
            </Form>
            <Transition fallback=|| view! { <p class="muted">"Checking…"</p> }>
                {move || report.get().flatten().map(|outcome| match outcome {
                    Err(error) => view! { <p class="alert" role="alert">{error.to_string()}</p> }.into_any(),
                    Ok(report) => {
                        let rows = report.bases.into_iter().map(|b| view! {
                            <tr>
                                <td><code>{b.image}</code></td>
                                <td>{b.line}</td>
                                <td>{match b.credential.strip_prefix("team:") {
                                    Some(name) => format!("team credential {name}"),
                                    None if b.credential == "configuration" => "APTIBLE_PRIVATE_REGISTRY_* configuration".to_owned(),
                                    None => "none (public)".to_owned(),
                                }}</td>
                                <td>{match b.problem {
                                    None => view! { <span class="check check-ok">"✓ can be pulled"</span> }.into_any(),
                                    Some((kind, message)) => view! {
                                        <span class="check check-failed">"✗ " {kind}</span> " " <span class="muted">{message}</span>
                                    }.into_any(),
                                }}</td>
                            </tr>
                        }).collect_view();
                        view! {
                            <table class="table">
                                <caption>{format!("Base images of {} ({})", report.git_ref, &report.commit[..report.commit.len().min(12)])}</caption>
                                <thead><tr>
                                    <th scope="col">"Image"</th><th scope="col">"Line"</th>
                                    <th scope="col">"Pulled with"</th><th scope="col">"Result"</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

const DEPLOY_REF_FIELDS: &[&str] = &[
    "git_ref",
    "registry_username",
    "registry_password",
    "credential",
    "env",
];

/// The deploy form of a Dockerfile app: the ref to build, the registry credentials for
/// private base images, and configuration changes — all applied in one operation.
#[component]
fn DeployRefForm(
    csrf: String,
    page: AppPage,
    git: BuildSource,
    action: ServerAction<DeployRef>,
) -> impl IntoView {
    let build = git;
    let outcome: Outcome<i64> = action.value().into();
    let ref_problem = problem(outcome, "git_ref");
    let username_error = Signal::derive(move || {
        problem(outcome, "registry_username")
            .get()
            .map(|p| p.message)
    });
    let password_problem = problem(outcome, "registry_password");
    let credential_problem = problem(outcome, "credential");
    let env_problem = problem(outcome, "env");
    // What to offer first: the ref the app was last deployed from, else its main branch.
    let default_ref = page
        .operations
        .iter()
        .find_map(|o| o.git_ref.clone())
        .or_else(|| {
            build
                .refs
                .iter()
                .find(|r| r.kind == "branch" && (r.name == "main" || r.name == "master"))
                .or_else(|| build.refs.iter().find(|r| r.kind == "branch"))
                .map(|r| r.name.clone())
        })
        .unwrap_or_default();
    let unavailable = page.platform_unavailable.clone();
    let disabled = unavailable.is_some();
    let dockerfile = build.source.dockerfile.clone();
    view! {
        <section class="panel" id="deploy" aria-labelledby="deploy-heading">
            <h2 id="deploy-heading">"Deploy a branch, tag or commit"</h2>
            {unavailable.map(|message| view! {
                <div class="alert alert-error" role="status">
                    <p><strong>"Deploys cannot run on this server right now."</strong></p>
                    <p>{message}</p>
                </div>
            })}
            <ActionForm action>
                <Csrf token=csrf/>
                <input type="hidden" name="team" value=page.team.handle.clone()/>
                <input type="hidden" name="app" value=page.app.handle.clone()/>
                <FormError outcome fields=DEPLOY_REF_FIELDS/>
                <div class="field">
                    <label for="deploy-git-ref">"Git ref"</label>
                    <input id="deploy-git-ref" type="text" name="git_ref" required=true autocomplete="off"
                        spellcheck="false" list="deploy-git-refs" value=default_ref
                        aria-invalid=move || if ref_problem.with(Option::is_some) { "true" } else { "false" }
                        aria-describedby="deploy-git-ref-hint deploy-git-ref-error"/>
                    <datalist id="deploy-git-refs">
                        {build.refs.iter().map(|r| view! {
                            <option value=r.name.clone()>{format!("{} {} · {}", r.kind, r.short_commit, r.subject)}</option>
                        }).collect_view()}
                    </datalist>
                    <p class="field-hint" id="deploy-git-ref-hint">
                        "A branch (main), a tag (v1.2) or a commit. Berth fetches the repository, records the commit, checks that every base image in "
                        <code>{dockerfile}</code> " can be pulled, and only then builds."
                    </p>
                    <ProblemText id="deploy-git-ref-error" problem=ref_problem/>
                </div>

                <fieldset class="choices" aria-describedby="deploy-registry-hint">
                    <legend>"Registry credentials for private base images (optional)"</legend>
                    <p class="field-hint" id="deploy-registry-hint">
                        "Applied as the configuration variables APTIBLE_PRIVATE_REGISTRY_USERNAME and APTIBLE_PRIVATE_REGISTRY_PASSWORD in this same operation, and used for the registry of the first private FROM image. "
                        {if build.private_registry_configured {
                            "Leave them empty to build with the ones already configured."
                        } else {
                            "None are configured yet; leave them empty when every base image is public or covered by a team credential."
                        }}
                    </p>
                    <ShortTermCredentialsNote in_deploy_form=true/>
                    <Field label="Registry username" name="registry_username" id="deploy-ref-registry-username".to_string()
                        autocomplete="off" required=false error=username_error/>
                    <div class="field">
                        <label for="deploy-ref-registry-password">"Registry password or token"</label>
                        <input id="deploy-ref-registry-password" type="password" name="registry_password"
                            autocomplete="new-password"
                            aria-invalid=move || if password_problem.with(Option::is_some) { "true" } else { "false" }
                            aria-describedby="deploy-ref-registry-password-hint deploy-ref-registry-password-error"/>
                        <p class="field-hint" id="deploy-ref-registry-password-hint">"Write-only: stored encrypted, used by the build only, kept out of logs, the image and the running app's environment."</p>
                        <ProblemText id="deploy-ref-registry-password-error" problem=password_problem/>
                    </div>
                    <ProblemText id="deploy-ref-credential-error" problem=credential_problem/>
                </fieldset>

                <div class="field">
                    <label for="deploy-ref-env">"Other configuration changes (optional)"</label>
                    <textarea id="deploy-ref-env" name="env_text" rows="3" spellcheck="false"
                        aria-invalid=move || if env_problem.with(Option::is_some) { "true" } else { "false" }
                        aria-describedby="deploy-ref-env-hint deploy-ref-env-error"></textarea>
                    <p class="field-hint" id="deploy-ref-env-hint">
                        "One per line: KEY=value sets a variable, -KEY unsets it. Applied together with this deploy: one build, one restart."
                    </p>
                    <ProblemText id="deploy-ref-env-error" problem=env_problem/>
                </div>
                <button type="submit" class="button button-primary" disabled=disabled>
                    {move || if action.pending().get() { "Verifying…" } else { "Verify, build and deploy" }}
                </button>
            </ActionForm>
        </section>
    }
}
