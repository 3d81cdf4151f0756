//! A Dockerfile app's source: its repository with branches and tags (and which commit is
//! deployed), which credentials pull its private base images, and the check that proves,
//! before a deploy, that every base image can be pulled.

use crate::{
    components::{
        form::{Csrf, FormError, Outcome},
        time::Time,
    },
    serverfns::apps::{check_base_images, FetchRefs},
};
use leptos::{form::ActionForm, prelude::*};
use leptos_router::{components::Form, hooks::use_query_map};
use views::BuildSource;

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
pub(super) fn BaseCheck(team: String, app: String) -> impl IntoView {
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
                                <td>{b.credential.label()}</td>
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
