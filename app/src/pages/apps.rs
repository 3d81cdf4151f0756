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
    model::{AppPage, AppRow, AppsPage},
    pages::operations::{image_name, short_digest, OperationsTable, StatusBadge},
    serverfns::apps::{load_app, load_apps, ConfigureApp, CreateApp, DeployImage, RestartApp},
};
use domain::{DeployMethod, ImageReference, Role};
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

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
                                        <FormError outcome fields=&["handle", "method", "health_path"]/>
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
                                                <input type="radio" id="method-dockerfile" name="method" value="dockerfile" disabled=true aria-describedby="method-dockerfile-hint"/>
                                                <label for="method-dockerfile">"Dockerfile " <span class="badge">"coming soon"</span></label>
                                                <p class="field-hint" id="method-dockerfile-hint">"Build from a git repository. Not available yet."</p>
                                            </div>
                                            <p class="field-error" id="field-method-error" aria-live="polite">{move || field_error(outcome, "method").get()}</p>
                                        </fieldset>
                                        <Field label="Health-check path (optional)" name="health_path" required=false autocomplete="off"
                                            hint="A path the release must answer (any status below 500) before it takes over, e.g. /healthz. Without one, Berth waits for the port to accept connections."
                                            error=field_error(outcome, "health_path")/>
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

#[component]
pub fn AppDetailPage() -> impl IntoView {
    let team = param("team");
    let app = param("app");
    let deploy = ServerAction::<DeployImage>::new();
    let configure = ServerAction::<ConfigureApp>::new();
    let restart = ServerAction::<RestartApp>::new();
    let page = Resource::new(move || (team(), app()), |(team, app)| load_app(team, app));
    follow_to_operation(deploy.value().into(), team);
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
                                Ok(page) => view! { <AppDetail me page deploy configure restart/> }.into_any(),
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
    configure: ServerAction<ConfigureApp>,
    restart: ServerAction<RestartApp>,
) -> impl IntoView {
    let now = crate::now_ms();
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
                            {if can_deploy { "Deploy an image below: Berth verifies it can pull the image before anything is queued." }
                             else { "A deployer or an owner deploys it." }}</p>
                    }.into_any(),
                }}
            </section>

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

            <section class="panel" aria-labelledby="config-heading">
                <h2 id="config-heading">"Configuration"</h2>
                <ConfigTable page=page.clone()/>
                {can_deploy.then(|| view! {
                    <ConfigureForm csrf=me.csrf.clone() team=team.clone() app=a.handle.clone()
                        has_release action=configure/>
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
            <button type="submit" class="button">{if has_release { "Apply configuration" } else { "Save configuration" }}</button>
        </ActionForm>
    }
}
