//! `/teams/{team}/operations/{id}`: everything Berth recorded about one operation, its
//! steps and its log. While the operation runs, the hydrated page follows it live through
//! the server-sent events at `/operations/{id}/events`; without JavaScript the page
//! refreshes itself every few seconds until the operation ends.
//!
//! Also the pieces the app and history pages share: status badges and operation tables.

use crate::{
    components::{
        copy::DigestInIsland,
        form::{follow, island_view, Csrf, FormError, IslandForm},
        layout::{Console, ErrorPage, NotFound, Section, SignedIn},
        markup::Markup,
        time::{exact_utc, relative, Time},
    },
    serverfns::operations::{load_operation, CancelOperation, RedeployOperation},
};
use domain::{OperationKind, OperationStatus};
use leptos::{either::Either, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use views::{LogLineRow, OperationPage, OperationSummaryRow};

/// A status with a mark and its word: colour only supports them.
#[component]
pub fn StatusBadge(status: OperationStatus) -> impl IntoView {
    let class = format!("badge status status-{status}");
    view! { <span class=class><span aria-hidden="true">{status_mark(status)} " "</span>{status.as_str()}</span> }
}

/// The mark beside a status's word.
fn status_mark(status: OperationStatus) -> &'static str {
    match status {
        OperationStatus::Queued => "◷",
        OperationStatus::Running => "▶",
        OperationStatus::Succeeded => "✓",
        OperationStatus::Failed => "✗",
        OperationStatus::Cancelled => "⊘",
    }
}

/// `sha256:0123456789ab`: enough to tell digests apart; the full one is in the title.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.chars().take(19).collect(),
    }
}

/// `0123456789ab`: the first 12 characters of a commit id; the full one goes in the title.
pub fn short_commit(commit: &str) -> &str {
    commit
        .char_indices()
        .nth(12)
        .map_or(commit, |(at, _)| &commit[..at])
}

/// `850 ms`, `12 s`, `3 min 4 s`, `1 h 2 min`.
pub fn duration(ms: i64) -> String {
    let secs = ms / 1000;
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        _ if secs < 60 => format!("{secs} s"),
        _ if secs < 3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// An image reference without its `@sha256:…` part, for tables that show the short digest
/// beside it: `ghcr.io/org/app:1.4`.
pub fn image_name(image: &str) -> &str {
    image.split_once('@').map_or(image, |(name, _)| name)
}

/// How long an operation ran, when it ran.
pub fn run_time(started_at: Option<i64>, finished_at: Option<i64>) -> Option<String> {
    Some(duration(finished_at? - started_at?))
}

/// Operations as a table, newest first.
#[component]
pub fn OperationsTable(
    /// The team's handle (for the links).
    #[prop(into)]
    team: String,
    operations: Vec<OperationSummaryRow>,
    now: i64,
    /// Whether to name each operation's app (team-wide lists).
    show_app: bool,
    #[prop(into)] caption: String,
) -> impl IntoView {
    // No island hydrates these rows, and a history page has fifty of them: written as one
    // string they cost a fraction of the same cells built as views.
    let rows = operation_rows(&team, &operations, now, show_app);
    view! {
        <table class="table">
            <caption class="visually-hidden">{caption}</caption>
            <thead><tr>
                <th scope="col">"Operation"</th>
                {show_app.then(|| view! { <th scope="col">"App"</th> })}
                <th scope="col">"Kind"</th><th scope="col">"Status"</th><th scope="col">"Image"</th>
                <th scope="col">"Requested by"</th><th scope="col">"Created"</th><th scope="col">"Duration"</th>
            </tr></thead>
            <tbody inner_html=rows></tbody>
        </table>
    }
}

/// [`OperationsTable`]'s rows: a link to each operation, its app (`show_app`), kind, status,
/// what it ran (the image and short digest, or the git ref and commit), who asked, when,
/// and how long it ran.
fn operation_rows(
    team: &str,
    operations: &[OperationSummaryRow],
    now: i64,
    show_app: bool,
) -> String {
    let mut html = Markup::with_capacity(operations.len() * 640);
    for o in operations {
        html.raw(r#"<tr><th scope="row"><a href="/teams/"#)
            .attr(team)
            .raw("/operations/")
            .number(o.id)
            .raw(r#"">#"#)
            .number(o.id)
            .raw("</a></th>");
        if show_app {
            html.raw(r#"<td class="cell-nowrap"><a href="/teams/"#)
                .attr(team)
                .raw("/apps/")
                .attr(&o.app)
                .raw(r#"">"#)
                .text(&o.app)
                .raw("</a></td>");
        }
        html.raw("<td>")
            .raw(o.kind.as_str())
            .raw(r#"</td><td><span class="badge status status-"#)
            .raw(o.status.as_str())
            .raw(r#""><span aria-hidden="true">"#)
            .raw(status_mark(o.status))
            .raw(" </span>")
            .raw(o.status.as_str())
            .raw(r#"</span></td><td class="cell-source">"#);
        // A build names the ref and commit it built (its image is Berth's own local name).
        match (&o.image, &o.git_ref) {
            (Some(image), None) => {
                html.raw(r#"<code title=""#)
                    .attr(image)
                    .raw(r#"">"#)
                    .text(image_name(image))
                    .raw("</code>");
                if let Some(digest) = &o.digest {
                    html.raw(r#" <code class="digest" title=""#)
                        .attr(digest)
                        .raw(r#"">"#)
                        .text(&short_digest(digest))
                        .raw("</code>");
                }
            }
            (_, Some(git_ref)) => {
                html.raw("<code>").text(git_ref).raw("</code>");
                if let Some(commit) = &o.commit {
                    html.raw(r#" <code class="digest" title=""#)
                        .attr(commit)
                        .raw(r#"">"#)
                        .text(short_commit(commit))
                        .raw("</code>");
                }
            }
            (None, None) => {
                html.raw(r#"<span class="muted">—</span>"#);
            }
        }
        let exact = exact_utc(o.created_at);
        html.raw("</td><td>")
            .text(o.requested_by.as_deref().unwrap_or("Berth"))
            .raw(r#"</td><td><time datetime=""#)
            .attr(&exact)
            .raw(r#"" title=""#)
            .attr(&exact)
            .raw(r#"">"#)
            .text(&relative(o.created_at, now))
            .raw("</time></td><td>")
            .text(
                run_time(o.started_at, o.finished_at)
                    .as_deref()
                    .unwrap_or("—"),
            )
            .raw("</td></tr>");
    }
    html.into_string()
}

/// The steps an operation goes through, with their names in the log and on the page. A
/// deploy pulls an image, or builds one from a git ref (Dockerfile deploys); a configure or
/// restart starts the release it already has.
fn steps_of(kind: OperationKind, builds: bool) -> Vec<(&'static str, &'static str)> {
    let mut steps = Vec::new();
    if kind == OperationKind::Deploy {
        steps.push(("verify", "Verify"));
        steps.push(if builds {
            ("build", "Build")
        } else {
            ("pull", "Pull")
        });
    }
    steps.extend([
        ("start", "Start"),
        ("health_check", "Health check"),
        ("switch", "Switch"),
    ]);
    steps
}

/// Every step any operation announces in its log (`==> Pull: …`).
const ALL_STEPS: &[(&str, &str)] = &[
    ("verify", "Verify"),
    ("build", "Build"),
    ("pull", "Pull"),
    ("start", "Start"),
    ("health_check", "Health check"),
    ("switch", "Switch"),
];

/// The last step the log announced (`==> Pull: …`): a finished operation no longer has a
/// current step, but a failed one should still show where it stopped.
pub fn step_from_log(lines: &[LogLineRow]) -> Option<String> {
    lines.iter().rev().find_map(|l| {
        let title = l.line.strip_prefix("==> ")?;
        ALL_STEPS
            .iter()
            .find(|(_, name)| title.starts_with(name))
            .map(|(step, _)| (*step).to_owned())
    })
}

/// verify → pull → start → health check → switch, each with its state in words.
#[component]
fn Steps(
    kind: OperationKind,
    builds: bool,
    status: OperationStatus,
    step: Option<String>,
) -> impl IntoView {
    let steps = steps_of(kind, builds);
    let current = step
        .as_deref()
        .and_then(|s| steps.iter().position(|(name, _)| *name == s));
    let items = steps
        .iter()
        .enumerate()
        .map(|(i, (_, label))| {
            let (state, words) = match (status, current) {
                (OperationStatus::Succeeded, _) => ("done", "done"),
                (OperationStatus::Running, Some(c)) if i < c => ("done", "done"),
                (OperationStatus::Running, Some(c)) if i == c => ("current", "in progress"),
                (OperationStatus::Failed, Some(c)) if i < c => ("done", "done"),
                (OperationStatus::Failed, Some(c)) if i == c => ("failed", "failed"),
                (OperationStatus::Failed | OperationStatus::Cancelled, _) => {
                    ("skipped", "not run")
                }
                _ => ("pending", "waiting"),
            };
            let mark = match state {
                "done" => "✓",
                "current" => "▶",
                "failed" => "✗",
                _ => "○",
            };
            view! {
                <li class="step" data-state=state aria-current=(state == "current").then_some("step")>
                    <span class="step-mark" aria-hidden="true">{mark}</span>
                    <span class="step-label">{*label}</span>
                    <span class="step-state">{words}</span>
                </li>
            }
        })
        .collect_view();
    view! { <ol class="steps" aria-label="Steps">{items}</ol> }
}

#[component]
pub fn OperationDetailPage() -> AnyView {
    let params = use_params_map();
    let team = move || params.read().get("team").unwrap_or_default();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
    };
    let page = Resource::new(id, |id| async move {
        match id {
            Some(id) => load_operation(id).await,
            None => Err(views::AppError::NotFound),
        }
    });
    view! {
        <Title text="Operation"/>
        <SignedIn let:me>
            <Suspense fallback=|| view! { <p class="loading">"Loading the operation…"</p> }>
                {
                    let me = me.clone();
                    move || {
                        let me = me.clone();
                        Suspend::new(async move {
                            match page.await {
                                Ok(page) if page.team.handle == team() => view! {
                                    <Title text=format!(
                                        "Operation {} · {} of {}",
                                        page.operation.id,
                                        page.operation.kind,
                                        page.operation.app
                                    )/>
                                    <Console me=me.clone() team=page.team.handle.clone() section=Section::History>
                                        <OperationView csrf=me.csrf.clone() page/>
                                    </Console>
                                }
                                .into_any(),
                                Ok(_) => view! { <NotFound/> }.into_any(),
                                Err(error) => view! { <ErrorPage error/> }.into_any(),
                            }
                        })
                    }
                }
            </Suspense>
        </SignedIn>
    }
    .into_any()
}

/// The operation, followed live in the browser while it runs (an island): its steps,
/// status and log change in place, and once it ends (or is cancelled) its final record is
/// read again and shown in place.
#[island]
fn OperationView(csrf: String, page: OperationPage) -> impl IntoView {
    let cancel = ServerAction::<CancelOperation>::new();
    let redeploy = ServerAction::<RedeployOperation>::new();
    let id = page.operation.id;
    let team = page.team.handle.clone();
    follow(redeploy.value().into(), move |new_id| {
        format!("/teams/{team}/operations/{new_id}")
    });
    let current = RwSignal::new(page);
    // Bumped by the live view when the operation ends, and after a cancel: the record is
    // read again.
    let ended = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(_)) = cancel.value().get() {
            ended.update(|n| *n += 1);
        }
    });
    Effect::new(move |first: Option<()>| {
        ended.track();
        if first.is_some() {
            leptos::task::spawn_local(async move {
                if let Ok(page) = load_operation(id).await {
                    current.set(page);
                }
            });
        }
    });
    move || view! { <OperationBody csrf=csrf.clone() page=current.get() cancel redeploy ended/> }
}

#[component]
fn OperationBody(
    csrf: String,
    page: OperationPage,
    cancel: ServerAction<CancelOperation>,
    redeploy: ServerAction<RedeployOperation>,
    ended: RwSignal<u32>,
) -> impl IntoView {
    let now = crate::now_ms();
    let o = page.operation.clone();
    let team = page.team.handle.clone();
    let status = RwSignal::new(o.status);
    let step = RwSignal::new(o.step.clone());
    let error = RwSignal::new(o.error.clone());
    let lines = RwSignal::new(page.log.clone());
    let log_withheld = page.log_withheld;
    let log_pruned = o.log_pruned_at.is_some();
    #[cfg(feature = "hydrate")]
    if !o.is_final() {
        let id = o.id;
        Effect::new(move |_| live::follow(id, lines, status, step, error, ended));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ended;
    let is_final = move || status.get().is_final();
    let kind = o.kind;
    let builds = o.git_ref.is_some();
    let steps = move || {
        let step = step.get().or_else(|| lines.with(|l| step_from_log(l)));
        view! { <Steps kind builds status=status.get() step/> }
    };
    let app_href = format!("/teams/{team}/apps/{}", o.app);
    let title = format!("{} #{}", capitalise(o.kind.as_str()), o.id);
    let changes = (!o.config_changes.is_empty()).then(|| {
        o.config_changes
            .iter()
            .map(|c| format!("{} {}", if c.set { "set" } else { "unset" }, c.key))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let cancel_outcome: Signal<_> = cancel.value().into();
    let redeploy_outcome: Signal<_> = redeploy.value().into();
    // An image deploy's digest, not a build's (a build is deployed again from its ref).
    let can_redeploy = page.can_deploy
        && o.kind == OperationKind::Deploy
        && o.git_ref.is_none()
        && o.image.is_some()
        && o.digest.is_some();
    let (csrf_cancel, csrf_redeploy) = (csrf.clone(), csrf);
    let can_cancel = page.can_deploy;
    let id = o.id;
    let refresh = (!o.is_final()).then(|| {
        // Parsed as text while scripts run, so only a browser without JavaScript refreshes.
        view! { <div class="visually-hidden" inner_html=r#"<noscript><meta http-equiv="refresh" content="3"></noscript>"#></div> }
    });
    island_view(view! {
            {refresh}
            <p class="breadcrumb">
                <a href=format!("/teams/{team}/apps")>"Apps"</a> " / "
                <a href=app_href.clone()>{o.app.clone()}</a> " /"
            </p>
            <header class="page-header">
                <h1>{title.clone()} " " {move || view! { <StatusBadge status=status.get()/> }}</h1>
                <div class="row-actions">
                    {move || (can_cancel && status.get() == OperationStatus::Queued).then(|| {
                        let csrf = csrf_cancel.clone();
                        view! {
                            <IslandForm action=cancel class="inline-form">
                                <Csrf token=csrf/>
                                <input type="hidden" name="id" value=id.to_string()/>
                                <button type="submit" class="button button-danger">"Cancel"</button>
                            </IslandForm>
                        }
                    })}
                    {can_redeploy.then(|| view! {
                        <IslandForm action=redeploy class="inline-form">
                            <Csrf token=csrf_redeploy/>
                            <input type="hidden" name="id" value=id.to_string()/>
                            <button type="submit" class="button">"Redeploy this digest"</button>
                        </IslandForm>
                    })}
                </div>
            </header>
            <FormError outcome=cancel_outcome fields=&[]/>
            <FormError outcome=redeploy_outcome fields=&[]/>
            {page.tag_moved_to.clone().map(|digest| view! {
                <div class="alert alert-info" role="status">
                    <p><strong>"The tag has moved since this deploy"</strong>
                        " (now " <code class="digest" title=digest.clone()>{short_digest(&digest)}</code> "). "
                        "This deploy ran " <code class="digest">{o.digest.clone().map(|d| short_digest(&d)).unwrap_or_default()}</code>
                        "; “Redeploy this digest” runs exactly that again."</p>
                </div>
            })}
            {move || error.get().map(|e| view! {
                <div class="alert alert-error" role="alert"><p><strong>"Failed: "</strong>{e}</p></div>
            })}

            <section class="panel" aria-labelledby="steps-heading">
                <h2 id="steps-heading">"Progress"</h2>
                {steps}
            </section>

            <dl class="facts">
                <dt>"Kind"</dt><dd>{o.kind.as_str()}</dd>
                <dt>"Status"</dt><dd>{move || view! { <StatusBadge status=status.get()/> }}</dd>
                <dt>"App"</dt><dd><a href=app_href>{o.app.clone()}</a></dd>
                {o.image.clone().map(|image| view! { <dt>{if o.git_ref.is_some() { "Built image" } else { "Image" }}</dt><dd><code>{image}</code></dd> })}
                {o.digest.clone().map(|digest| view! { <dt>"Digest"</dt><dd><DigestInIsland value=digest label="Copy digest"/></dd> })}
                {o.git_ref.clone().map(|r| view! { <dt>"Git ref"</dt><dd><code>{r}</code></dd> })}
                {o.commit.clone().map(|c| view! { <dt>"Commit"</dt><dd><DigestInIsland value=c label="Copy commit"/></dd> })}
                {(o.kind == OperationKind::Deploy).then(|| view! { <dt>"Registry credentials"</dt><dd>{o.credential_label()}</dd> })}
                {o.aptible_operation.clone().map(|remote| view! {
                    <dt>"On Aptible"</dt>
                    <dd><a href=remote.url rel="noopener noreferrer" target="_blank">"Operation " {remote.id}</a></dd>
                })}
                {changes.map(|c| view! { <dt>"Configuration changes"</dt><dd>{c}</dd> })}
                <dt>"Requested by"</dt><dd>{o.requested_by.clone().unwrap_or_else(|| "Berth".into())}</dd>
                <dt>"Created"</dt><dd><Time ms=o.created_at now/></dd>
                <dt>"Started"</dt><dd>{match o.started_at { Some(ms) => Either::Left(view! { <Time ms now/> }), None => Either::Right(view! { <span class="muted">"not yet"</span> }) }}</dd>
                <dt>"Finished"</dt><dd>{match o.finished_at { Some(ms) => Either::Left(view! { <Time ms now/> }), None => Either::Right(view! { <span class="muted">{move || if is_final() { "just now" } else { "not yet" }}</span> }) }}</dd>
                {run_time(o.started_at, o.finished_at).map(|d| view! { <dt>"Duration"</dt><dd>{d}</dd> })}
            </dl>

            <section class="panel" aria-labelledby="log-heading">
                <h2 id="log-heading">"Log"
                    {move || (!is_final()).then(|| view! { " " <span class="badge status status-running">"live"</span> })}
                </h2>
                <Show when=move || lines.with(Vec::is_empty)>
                    <p class="muted">{move || if log_withheld {
                        "Viewers of this team cannot read logs: a team owner can allow it on the Members page."
                    } else if log_pruned {
                        "This operation's log was deleted: Berth keeps logs for a set time after an operation ends (BERTH_OPERATION_LOG_DAYS). Its record stays in the history."
                    } else if is_final() {
                        "This operation wrote no log."
                    } else {
                        "No output yet."
                    }}</p>
                </Show>
                <pre class="log" role="log" aria-labelledby="log-heading" tabindex="0">
                    <For each=move || lines.get() key=|l| l.id let:line>
                        <LogLine line/>
                    </For>
                </pre>
            </section>
    })
}

/// A line of the log; the lines that announce a step stand out.
#[component]
fn LogLine(line: LogLineRow) -> impl IntoView {
    let class = if line.line.starts_with("==> ") {
        "log-line log-step"
    } else {
        "log-line"
    };
    view! { <span class=class title=exact_utc(line.at)>{line.line}</span> }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The browser side of the live view: an `EventSource` on the operation's event stream.
#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use views::LogLineRow;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{EventSource, MessageEvent};

    fn listen(source: &EventSource, event: &str, mut handle: impl FnMut(String) + 'static) {
        let callback = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(data) = e.data().as_string() {
                handle(data);
            }
        });
        let _ = source.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
        // The listener lives as long as the event source; both go when the page does.
        callback.forget();
    }

    pub fn follow(
        id: i64,
        lines: RwSignal<Vec<LogLineRow>>,
        status: RwSignal<domain::OperationStatus>,
        step: RwSignal<Option<String>>,
        error: RwSignal<Option<String>>,
        ended: RwSignal<u32>,
    ) {
        let Ok(source) = EventSource::new(&format!("/operations/{id}/events")) else {
            return;
        };
        listen(&source, "lines", move |data| {
            let Ok(new) = serde_json::from_str::<Vec<LogLineRow>>(&data) else {
                return;
            };
            // The stream starts from the first line; keep only what the page lacks.
            lines.update(|all| {
                let last = all.last().map_or(0, |l| l.id);
                all.extend(new.into_iter().filter(|l| l.id > last));
            });
        });
        let closer = source.clone();
        listen(&source, "status", move |data| {
            let Ok(update) = serde_json::from_str::<views::OperationProgress>(&data) else {
                return;
            };
            let is_final = update.status.is_final();
            status.set(update.status);
            step.set(update.step);
            error.set(update.error);
            if is_final {
                closer.close();
                // Read the finished record (times, duration, the tag check).
                ended.update(|n| *n += 1);
            }
        });
        let source = SendWrapper::new(source);
        on_cleanup(move || source.close());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: i64, text: &str) -> LogLineRow {
        LogLineRow {
            id,
            at: 0,
            line: text.into(),
        }
    }

    fn summary(id: i64) -> OperationSummaryRow {
        OperationSummaryRow {
            id,
            app: "web".into(),
            kind: OperationKind::Deploy,
            status: OperationStatus::Failed,
            image: None,
            digest: None,
            git_ref: None,
            commit: None,
            requested_by: None,
            created_at: 1_795_724_103_000,
            started_at: Some(1_795_724_103_000),
            finished_at: Some(1_795_724_103_850),
        }
    }

    #[test]
    fn operation_rows_escape_what_people_and_registries_chose() {
        let image = OperationSummaryRow {
            image: Some(r#"r.example/"><script>x</script>:1@sha256:0123456789abcdef"#.into()),
            digest: Some("sha256:0123456789abcdef".into()),
            requested_by: Some("a&b@example.com".into()),
            ..summary(7)
        };
        let build = OperationSummaryRow {
            git_ref: Some("<main>".into()),
            commit: Some("0123456789abcdef0123".into()),
            status: OperationStatus::Succeeded,
            ..summary(8)
        };
        let html = operation_rows("acme", &[image, build, summary(9)], 1_795_724_163_000, true);
        assert_eq!(html.matches("<tr>").count(), 3);
        assert!(
            !html.contains("<script>") && !html.contains("<main>"),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/teams/acme/operations/7">#7</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/teams/acme/apps/web">web</a>"#),
            "{html}"
        );
        assert!(html.contains(
            r#"<code title="r.example/&quot;&gt;&lt;script&gt;x&lt;/script&gt;:1@sha256:0123456789abcdef">r.example/"&gt;&lt;script&gt;x&lt;/script&gt;:1</code> <code class="digest" title="sha256:0123456789abcdef">sha256:0123456789ab</code>"#
        ), "{html}");
        assert!(html.contains(r#"<code>&lt;main&gt;</code> <code class="digest" title="0123456789abcdef0123">0123456789ab</code>"#), "{html}");
        assert!(html.contains(r#"<span class="badge status status-failed"><span aria-hidden="true">✗ </span>failed</span>"#), "{html}");
        assert!(
            html.contains("<td>a&amp;b@example.com</td>") && html.contains("<td>Berth</td>"),
            "{html}"
        );
        assert!(html.contains(r#"<time datetime="2026-11-26T20:15:03Z" title="2026-11-26T20:15:03Z">1 minute ago</time></td><td>850 ms</td>"#), "{html}");
        assert!(html.contains(r#"<span class="muted">—</span>"#), "{html}");
        // One app's history leaves the app out.
        let html = operation_rows("acme", &[summary(9)], 0, false);
        assert!(!html.contains("/apps/web"), "{html}");
    }

    #[test]
    fn the_last_announced_step_is_where_an_operation_stopped() {
        let log = [
            line(1, "==> Verify: credentials and image"),
            line(2, "==> Pull: downloading the image"),
            line(3, "Copying blob"),
            line(
                4,
                "==> Health check: waiting for the release to answer on PORT",
            ),
            line(5, "no answer"),
        ];
        assert_eq!(step_from_log(&log).as_deref(), Some("health_check"));
        assert_eq!(step_from_log(&log[..1]).as_deref(), Some("verify"));
        assert_eq!(step_from_log(&[]), None);
    }

    #[test]
    fn digests_and_durations_read_briefly() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_400), "12 s");
        assert_eq!(duration(184_000), "3 min 4 s");
        assert_eq!(duration(3_720_000), "1 h 2 min");
    }
}
