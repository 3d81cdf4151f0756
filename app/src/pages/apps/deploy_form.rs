//! The deploy forms of an app's page: an image (Direct Docker Image apps) or a branch, tag or
//! commit (Dockerfile apps), each with its registry credentials and configuration changes
//! applied in the same operation.

use super::source::PrivateRegistryHostSelect;
use crate::{
    components::form::{
        echoed, follow, island_view, problem, Csrf, EnvChangesField, Field, FormError, IslandForm,
        Outcome, Problem, ProblemText,
    },
    serverfns::deploys::{DeployImage, DeployRef},
};
use domain::ImageReference;
use leptos::{either::Either, prelude::*};
use serde::{Deserialize, Serialize};
use views::{AppPage, BuildSource, GitRefRow};

const DEPLOY_FIELDS: &[&str] = &[
    "image",
    "credentials",
    "credential",
    "registry_username",
    "registry_password",
    "remember",
    "env",
];

/// What the deploy forms need of the app's page. The islands get only this: their props
/// travel in the page as JSON for the browser, and the whole `AppPage` (its operations,
/// configuration, reports) would have been sent, and decoded by code in the bundle, for
/// nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct DeployTarget {
    team: String,
    app: String,
    /// `registry` and `username` of the credentials remembered on the app.
    remembered: Option<(String, String)>,
    /// The team credential the app's last deploy used.
    team_credential: Option<String>,
    /// Team credentials a deploy may choose (name, registry).
    team_credentials: Vec<(String, String)>,
    /// The current release's image, offered first.
    current_image: String,
    /// Why deploys cannot run where the app runs, if they cannot.
    unavailable: Option<String>,
}

impl DeployTarget {
    pub(super) fn of(page: &AppPage) -> DeployTarget {
        DeployTarget {
            team: page.team.handle.clone(),
            app: page.app.handle.clone(),
            remembered: page.credentials.remembered.clone(),
            team_credential: page.credentials.team_credential.clone(),
            team_credentials: page.team_credentials.clone(),
            current_image: page
                .app
                .release
                .as_ref()
                .map(|r| r.image.clone())
                .unwrap_or_default(),
            unavailable: page.platform_unavailable.clone(),
        }
    }
}

/// What the Dockerfile deploy form needs of the app's git source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct DeployRefSource {
    /// The ref the app was last deployed from, else its main branch.
    default_ref: String,
    refs: Vec<GitRefRow>,
    dockerfile: String,
    /// Whether the configuration holds `APTIBLE_PRIVATE_REGISTRY_USERNAME` and `_PASSWORD`.
    private_registry_configured: bool,
    private_registry_host: Option<String>,
    base_registries: Vec<String>,
}

impl DeployRefSource {
    pub(super) fn of(page: &AppPage, build: &BuildSource) -> DeployRefSource {
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
        DeployRefSource {
            default_ref,
            refs: build.refs.clone(),
            dockerfile: build.source.dockerfile.clone(),
            private_registry_configured: build.private_registry_configured,
            private_registry_host: build.private_registry_host.clone(),
            base_registries: build.base_registries.clone(),
        }
    }
}

/// The image deploy form, live in the browser (an island): the image is checked as it is
/// typed, and a deploy that is queued leads to its operation.
#[island]
pub(super) fn DeployImageIsland(csrf: String, target: DeployTarget) -> impl IntoView {
    let action = ServerAction::<DeployImage>::new();
    let team = target.team.clone();
    follow(action.value().into(), move |id| {
        format!("/teams/{team}/operations/{id}")
    });
    view! { <DeployForm csrf target action/> }
}

/// The deploy form of a Dockerfile app, live in the browser (an island): a deploy that is
/// queued leads to its operation.
#[island]
pub(super) fn DeployRefIsland(
    csrf: String,
    target: DeployTarget,
    git: DeployRefSource,
) -> impl IntoView {
    let action = ServerAction::<DeployRef>::new();
    let team = target.team.clone();
    follow(action.value().into(), move |id| {
        format!("/teams/{team}/operations/{id}")
    });
    view! { <DeployRefForm csrf target git action/> }
}

/// The deploy form: the image (checked as it is typed, with the same parser the server
/// uses), how to authenticate to its registry, and configuration changes to apply with it.
#[component]
fn DeployForm(
    csrf: String,
    target: DeployTarget,
    action: ServerAction<DeployImage>,
) -> impl IntoView {
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

    let DeployTarget {
        team,
        app,
        remembered,
        team_credential: selected_credential,
        team_credentials,
        current_image,
        unavailable,
    } = target;
    // After a refused plain form post, the form as it was sent (see `FormEcho`).
    let current_image = echoed("image").unwrap_or(current_image);
    let selected_credential = echoed("credential")
        .map(|name| Some(name).filter(|n| !n.is_empty()))
        .unwrap_or(selected_credential);
    let remember_once = echoed("remember").as_deref() == Some("once");
    let default_choice = match echoed("credentials").as_deref() {
        Some("remembered") if remembered.is_some() => "remembered",
        Some("team") if !team_credentials.is_empty() => "team",
        Some("new") => "new",
        Some("none") => "none",
        _ if remembered.is_some() => "remembered",
        _ if selected_credential.is_some() || !team_credentials.is_empty() => "team",
        _ => "none",
    };
    let disabled = unavailable.is_some();
    island_view(view! {
        <section class="panel" id="deploy" aria-labelledby="deploy-heading">
            <h2 id="deploy-heading">"Deploy an image"</h2>
            <Unavailable message=unavailable/>
            <IslandForm action>
                <Csrf token=csrf/>
                <input type="hidden" name="team" value=team.clone()/>
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
                                Either::Left(view! {
                                    <p class="field-hint">"The team has no registry credentials yet; owners add them under "
                                        <a href=format!("/teams/{team}/credentials")>"Credentials"</a> "."</p>
                                    <input type="hidden" name="credential" value=""/>
                                })
                            } else {
                                Either::Right(view! {
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
                                })
                            }}
                            <ProblemText id="deploy-credential-error" problem=credential_problem/>
                        </div>
                    </div>
                    <div class="choice">
                        <input type="radio" id="credentials-new" name="credentials" value="new"
                            checked=default_choice == "new"/>
                        <label for="credentials-new">"A username and password (or token)"</label>
                        <div class="choice-detail">
                            <Field label="Registry username" name="registry_username" id="deploy-registry-username".to_string()
                                autocomplete="off" required=false error=username_error/>
                            <RegistryPasswordField id="deploy-registry-password" problem=password_problem
                                hint="Stored encrypted and never shown again; kept out of logs and the app's environment."/>
                            <fieldset class="choices choices-inline">
                                <legend>"Keep them?"</legend>
                                <div class="choice">
                                    <input type="radio" id="remember-app" name="remember" value="app" checked=!remember_once
                                        aria-describedby="remember-app-hint"/>
                                    <label for="remember-app">"Remember for this app"</label>
                                    <p class="field-hint" id="remember-app-hint">"Later deploys use them without asking; they replace what the app remembered."</p>
                                </div>
                                <div class="choice">
                                    <input type="radio" id="remember-once" name="remember" value="once" checked=remember_once
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

                <EnvChangesField id="deploy-env" label="Configuration changes (optional)" problem=env_problem>
                    "Applied together with this deploy: one operation, one restart."
                </EnvChangesField>
                <button type="submit" class="button button-primary" disabled=disabled>
                    {move || if action.pending().get() { "Verifying…" } else { "Verify and deploy" }}
                </button>
            </IslandForm>
        </section>
    })
}

const DEPLOY_REF_FIELDS: &[&str] = &[
    "git_ref",
    "registry_username",
    "registry_password",
    "credential",
    "private_registry_host",
    "env",
];

/// The deploy form of a Dockerfile app: the ref to build, the registry credentials for
/// private base images, and configuration changes — all applied in one operation.
#[component]
fn DeployRefForm(
    csrf: String,
    target: DeployTarget,
    git: DeployRefSource,
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
    let host_error = Signal::derive(move || {
        problem(outcome, "private_registry_host")
            .get()
            .map(|p| p.message)
    });
    let default_ref = echoed("git_ref").unwrap_or_else(|| build.default_ref.clone());
    let unavailable = target.unavailable.clone();
    let disabled = unavailable.is_some();
    let dockerfile = build.dockerfile.clone();
    island_view(view! {
        <section class="panel" id="deploy" aria-labelledby="deploy-heading">
            <h2 id="deploy-heading">"Deploy a branch, tag or commit"</h2>
            <Unavailable message=unavailable/>
            <IslandForm action>
                <Csrf token=csrf/>
                <input type="hidden" name="team" value=target.team.clone()/>
                <input type="hidden" name="app" value=target.app.clone()/>
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
                        "Applied as the configuration variables APTIBLE_PRIVATE_REGISTRY_USERNAME and APTIBLE_PRIVATE_REGISTRY_PASSWORD in this same operation, and sent only to the registry chosen below. "
                        {if build.private_registry_configured {
                            "Leave them empty to build with the ones already configured."
                        } else {
                            "None are configured yet; leave them empty when every base image is public or covered by a team credential."
                        }}
                    </p>
                    <ShortTermCredentialsNote in_deploy_form=true/>
                    <Field label="Registry username" name="registry_username" id="deploy-ref-registry-username".to_string()
                        autocomplete="off" required=false error=username_error/>
                    <RegistryPasswordField id="deploy-ref-registry-password" problem=password_problem
                        hint="Write-only: stored encrypted, used by the build only, kept out of logs, the image and the running app's environment."/>
                    {build.private_registry_host.clone().map(|host| view! {
                        <p class="field-hint">"They go to " <code>{host}</code> " (APTIBLE_PRIVATE_REGISTRY_HOST). Choosing another registry below needs the password again."</p>
                    })}
                    <PrivateRegistryHostSelect id="deploy-ref-private-registry-host"
                        registries=build.base_registries.clone() error=host_error/>
                    <ProblemText id="deploy-ref-credential-error" problem=credential_problem/>
                </fieldset>

                <EnvChangesField id="deploy-ref-env" label="Other configuration changes (optional)" problem=env_problem>
                    "Applied together with this deploy: one build, one restart."
                </EnvChangesField>
                <button type="submit" class="button button-primary" disabled=disabled>
                    {move || if action.pending().get() { "Verifying…" } else { "Verify, build and deploy" }}
                </button>
            </IslandForm>
        </section>
    })
}

/// The recommendation for short-term registry credentials with Dockerfile deploys: with
/// the deploy is one build and one restart; configuring first, two.
#[component]
pub(super) fn ShortTermCredentialsNote(
    /// Shown in the deploy form rather than the configure form.
    in_deploy_form: bool,
) -> impl IntoView {
    view! {
        <p class="note">
            {if in_deploy_form {
                Either::Left(view! {
                    <strong>"Short-term credentials (e.g. AWS ECR tokens): give them here, with the deploy — one build, one restart."</strong>
                    " Setting them in Configuration first also works but restarts the app twice."
                })
            } else {
                Either::Right(view! {
                    <strong>"Short-term registry credentials (e.g. AWS ECR tokens): give them in the deploy form, with the deploy — one build, one restart."</strong>
                    " Setting APTIBLE_PRIVATE_REGISTRY_USERNAME / _PASSWORD here first also works but restarts the app twice: once now, once for the deploy."
                })
            }}
        </p>
    }
}

/// Why deploys cannot run on this server (buildah missing, …), above a deploy form.
#[component]
fn Unavailable(message: Option<String>) -> impl IntoView {
    message.map(|message| {
        view! {
            <div class="alert alert-error" role="status">
                <p><strong>"Deploys cannot run on this server right now."</strong></p>
                <p>{message}</p>
            </div>
        }
    })
}

/// The write-only registry password of a deploy form, with its problem tied to it.
#[component]
fn RegistryPasswordField(
    id: &'static str,
    hint: &'static str,
    #[prop(into)] problem: Signal<Option<Problem>>,
) -> impl IntoView {
    let (hint_id, error_id) = (format!("{id}-hint"), format!("{id}-error"));
    view! {
        <div class="field">
            <label for=id>"Registry password or token"</label>
            <input id=id type="password" name="registry_password" autocomplete="new-password"
                aria-invalid=move || if problem.with(Option::is_some) { "true" } else { "false" }
                aria-describedby=format!("{hint_id} {error_id}")/>
            <p class="field-hint" id=hint_id>{hint}</p>
            <ProblemText id=error_id problem/>
        </div>
    }
}
