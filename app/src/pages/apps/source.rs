//! A Dockerfile app's source: its repository with branches and tags (and which commit is
//! deployed), which credentials pull its private base images, and the check that proves,
//! before a deploy, that every base image can be pulled.

use crate::{
    components::{
        flash::BaseCheckReportView,
        form::{field_error, Csrf, Field, FormError, Outcome},
        time::Time,
    },
    pages::operations::short_commit,
    serverfns::apps::{CheckBaseImages, FetchRefs},
};
use leptos::{form::ActionForm, prelude::*};
use views::{BaseCheckReport, BuildSource};

/// A Dockerfile app's repository, and its branches and tags with what is deployed.
#[component]
pub(super) fn SourceSection(
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
    let uses_ssh = domain::RepositoryUrl::parse(&source.url).is_ok_and(|url| url.uses_ssh());
    let deploy_key_href = format!("/teams/{team}/members#deploy-key");
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
                    None if uses_ssh => view! {
                        "the team's " <a href=deploy_key_href>"deploy key"</a>
                        " (add its public key to the repository as a read-only deploy key)"
                    }.into_any(),
                    None => view! { <span class="muted">"none: a public repository"</span> }.into_any(),
                }}</dd>
                <dt>"Deployed commit"</dt>
                <dd>{match deployed.clone() {
                    Some(commit) => view! {
                        <code class="digest" title=commit.clone()>{short_commit(&commit).to_owned()}</code>
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
pub(super) fn BaseCredentials(
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
                            None => view! { "no registry yet: they are sent only to a registry confirmed with a deploy (which sets APTIBLE_PRIVATE_REGISTRY_HOST)" }.into_any(),
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
            <details class="explainer">
                <summary>"What are the APTIBLE_PRIVATE_REGISTRY_* variables?"</summary>
                <p>"They are the registry login for a Dockerfile's private FROM image, kept as the app's configuration under the names Aptible gives them, so that an app moves between Berth and Aptible unchanged:"</p>
                <ul>
                    <li><code>"APTIBLE_PRIVATE_REGISTRY_USERNAME"</code> " and " <code>"APTIBLE_PRIVATE_REGISTRY_PASSWORD"</code> ": the login (the password is write-only, like every secret value);"</li>
                    <li><code>"APTIBLE_PRIVATE_REGISTRY_HOST"</code> ": the one registry they are sent to, set when a deploy confirms it. Without it they are sent nowhere, so a FROM line cannot lead them to another registry."</li>
                </ul>
                <p>"The deploy form below sets them in the same operation as the build. They serve builds only: never build arguments, never in the running app's environment."</p>
            </details>
        </section>
    }
}

/// "Check base images": reads a ref's Dockerfile and asks each base image's registry, with
/// the credential a deploy would use, whether it can be pulled. A POST for deployers (it
/// fetches the repository and sends credentials to registries); without JavaScript the
/// report comes back with the page, as a one-time message.
#[component]
pub(super) fn BaseCheck(
    csrf: String,
    team: String,
    app: String,
    can_check: bool,
    /// The registries the deploy form offers for the private-registry credentials.
    registries: Vec<String>,
    /// The report of a plain form post, handed back with the page.
    flash: Option<BaseCheckReport>,
) -> impl IntoView {
    let action = ServerAction::<CheckBaseImages>::new();
    let outcome: Outcome<Option<BaseCheckReport>> = action.value().into();
    let report = move || match outcome.get() {
        Some(Ok(Some(report))) => Some(report),
        None => flash.clone(),
        _ => None,
    };
    let ref_error = field_error(outcome, "git_ref");
    let host_error = field_error(outcome, "private_registry_host");
    view! {
        <section class="panel" aria-labelledby="base-check-heading">
            <h2 id="base-check-heading">"Check base images"</h2>
            {if can_check {
                view! {
                    <ActionForm action attr:aria-label="Check base images">
                        <Csrf token=csrf/>
                        <input type="hidden" name="team" value=team/>
                        <input type="hidden" name="app" value=app/>
                        <FormError outcome fields=&["git_ref", "private_registry_host"]/>
                        <Field label="Branch, tag or commit" name="git_ref" id="field-check".to_string()
                            autocomplete="off" error=ref_error
                            hint="Reads its Dockerfile and proves, before any deploy, that every FROM image can be pulled with the credential shown."/>
                        <PrivateRegistryHostSelect id="field-check-host" registries error=host_error/>
                        <button type="submit" class="button">
                            {move || if action.pending().get() { "Checking…" } else { "Check base images" }}
                        </button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <p class="notice">"Deployers and owners can check base images. Your role is viewer."</p> }.into_any()
            }}
            {move || report().map(|report| view! { <BaseCheckReportView report/> })}
        </section>
    }
}

/// Where `APTIBLE_PRIVATE_REGISTRY_USERNAME` / `_PASSWORD` may go: one registry of the
/// Dockerfile's base images, confirmed by the person deploying (it becomes
/// `APTIBLE_PRIVATE_REGISTRY_HOST`). Never a guess: without a choice they go nowhere.
#[component]
pub(super) fn PrivateRegistryHostSelect(
    id: &'static str,
    registries: Vec<String>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id>"Send APTIBLE_PRIVATE_REGISTRY_* to"</label>
            <select id=id name="private_registry_host"
                aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                aria-describedby=format!("{hint_id} {error_id}")>
                <option value="">"APTIBLE_PRIVATE_REGISTRY_HOST, if set (otherwise nowhere)"</option>
                {registries.into_iter().map(|host| view! {
                    <option value=host.clone()>{host.clone()}</option>
                }).collect_view()}
            </select>
            <p class="field-hint" id=hint_id>
                "The private-registry username and password go to this one registry only, never to a registry a FROM line merely names. "
                "Choose the registry of the FROM image they are for; it becomes APTIBLE_PRIVATE_REGISTRY_HOST with the deploy."
            </p>
            <p class="field-error" id=error_id aria-live="polite">{move || error.get()}</p>
        </div>
    }
}
