//! The console's frame: the session every page awaits, the left navigation with the team
//! switcher, and the pages for "not signed in", "not found" and errors.

use crate::serverfns::session::{load_session, SignOut};
use leptos::{form::ActionForm, prelude::*};
use leptos_router::components::Redirect;
use std::sync::Arc;
use views::{AppError, SessionInfo, TeamSummary, Viewer};

pub type SessionResource = Resource<Result<SessionInfo, AppError>>;

/// Creates the session resource once, at the root of the app.
pub fn provide_session() {
    let session: SessionResource = Resource::new(|| (), |_| load_session());
    provide_context(session);
}

pub fn use_session() -> SessionResource {
    expect_context::<SessionResource>()
}

/// After a sign-in, sign-up or sign-out succeeds in the browser, reload from `target` so
/// that every part of the page is rendered for the new session.
pub fn reload_on_success<T: Clone + Send + Sync + 'static>(
    value: Signal<Option<Result<T, AppError>>>,
    target: &'static str,
) {
    Effect::new(move |_| {
        if let Some(Ok(_)) = value.get() {
            let _ = window().location().set_href(target);
        }
    });
}

/// Awaits the session and renders `children` with it (signed in or not).
#[component]
pub fn WithSession<F, V>(children: F) -> impl IntoView
where
    F: Fn(SessionInfo) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let session = use_session();
    let children = Arc::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match session.await {
                        Ok(info) => children(info).into_any(),
                        Err(error) => view! { <ErrorPage error/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// What a signed-in page gets: who is signed in and the CSRF token for its forms.
#[derive(Clone, Debug)]
pub struct Me {
    pub csrf: String,
    pub viewer: Viewer,
    pub public_url: String,
}

/// Renders `children` for a signed-in person; sends anyone else to the sign-in page.
#[component]
pub fn SignedIn<F, V>(children: F) -> impl IntoView
where
    F: Fn(Me) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <WithSession let:info>
            {match info.viewer {
                Some(viewer) => children(Me { csrf: info.csrf_token, viewer, public_url: info.public_url }).into_any(),
                None => view! { <Redirect path="/signin"/> }.into_any(),
            }}
        </WithSession>
    }
}

/// The frame of a signed-in page that loads its data: it waits for the session (sending
/// anyone signed out to sign in), then for `page`, and renders `children` with both — or the
/// error page (not found, forbidden, …) with its HTTP status.
#[component]
pub fn Loaded<T, F, V>(
    page: Resource<Result<T, AppError>>,
    /// What shows while the page loads, e.g. "Loading apps…".
    loading: &'static str,
    children: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(Me, T) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let children = Arc::new(children);
    view! {
        <SignedIn let:me>
            {
                let children = children.clone();
                view! {
                    <Suspense fallback=move || view! { <p class="loading">{loading}</p> }>
                        {
                            let (me, children) = (me.clone(), children.clone());
                            move || {
                                let (me, children) = (me.clone(), children.clone());
                                Suspend::new(async move {
                                    match page.await {
                                        Ok(page) => children(me, page).into_any(),
                                        Err(error) => view! { <ErrorPage error/> }.into_any(),
                                    }
                                })
                            }
                        }
                    </Suspense>
                }
            }
        </SignedIn>
    }
}

/// A signed-in page of one team that loads nothing of its own (a "New …" form): renders
/// `children` with the person and their standing in `team`, or "not found" to anyone
/// outside it.
#[component]
pub fn InTeam<F, V>(team: String, children: F) -> impl IntoView
where
    F: Fn(Me, TeamSummary) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <SignedIn let:me>
            {match me.viewer.teams.iter().find(|t| t.handle == team).cloned() {
                Some(summary) => children(me, summary).into_any(),
                None => view! { <NotFound/> }.into_any(),
            }}
        </SignedIn>
    }
}

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Apps,
    Members,
    Credentials,
    History,
    Audit,
    Tokens,
    Platforms,
    None,
}

/// The signed-in frame: left navigation (team switcher, the team's pages, the person's
/// settings, sign out) and the page's main content.
#[component]
pub fn Console(
    me: Me,
    /// The team the page belongs to, if any.
    #[prop(optional, into)]
    team: Option<String>,
    section: Section,
    children: Children,
) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    reload_on_success(sign_out.value().into(), "/signin");
    let current = team
        .clone()
        .or_else(|| me.viewer.teams.first().map(|t| t.handle.clone()));
    let current_team = current
        .as_ref()
        .and_then(|h| me.viewer.teams.iter().find(|t| &t.handle == h).cloned());
    let aria = move |s: Section| (s == section).then_some("page");
    let teams = me.viewer.teams.clone();
    // On a phone the links fold into a menu (a disclosure: no script needed); on wider
    // screens they are always shown (style/main.css). Type-erased: the page frame's view
    // type is otherwise too deep for the compiler's release builds.
    let menu = view! {
        <details class="nav-menu">
            <summary>"Menu"</summary>
            {current_team.clone().map(|t| {
                let base = format!("/teams/{}", t.handle);
                view! {
                    <ul role="list" class="nav-list">
                        <li><a href=base.clone() aria-current=aria(Section::Overview)>"Overview"</a></li>
                        <li><a href=format!("{base}/apps") aria-current=aria(Section::Apps)>"Apps"</a></li>
                        <li><a href=format!("{base}/credentials") aria-current=aria(Section::Credentials)>"Credentials"</a></li>
                        <li><a href=format!("{base}/history") aria-current=aria(Section::History)>"History"</a></li>
                        <li><a href=format!("{base}/audit") aria-current=aria(Section::Audit)>"Audit"</a></li>
                        <li><a href=format!("{base}/members") aria-current=aria(Section::Members)>"Members"</a></li>
                        <li><a href=format!("{base}/platforms") aria-current=aria(Section::Platforms)>"Platforms"</a></li>
                    </ul>
                }
            })}
            <p class="nav-heading">"You"</p>
            <ul role="list" class="nav-list">
                <li><a href="/settings/tokens" aria-current=aria(Section::Tokens)>"API tokens"</a></li>
            </ul>
            <div class="nav-footer">
                <p class="muted signed-in-as">{me.viewer.email.clone()}</p>
                <ActionForm action=sign_out>
                    <input type="hidden" name="csrf_token" value=me.csrf.clone()/>
                    <button type="submit" class="button button-quiet">"Sign out"</button>
                </ActionForm>
            </div>
        </details>
    }
    .into_any();
    view! {
        <div class="console">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <nav class="sidebar" aria-label="Main">
                <a class="brand" href="/">"Berth"</a>
                <details class="team-switcher">
                    <summary>
                        <span class="visually-hidden">"Team: "</span>
                        {current_team.as_ref().map(|t| t.name.clone()).unwrap_or_else(|| "No team".into())}
                        {current_team.as_ref().map(|t| view! { <span class="badge badge-role">{t.role.as_str()}</span> })}
                    </summary>
                    <ul role="list" aria-label="Switch team">
                        {teams
                            .into_iter()
                            .map(|t| {
                                let href = format!("/teams/{}", t.handle);
                                view! {
                                    <li>
                                        <a href=href>{t.name} " "<span class="muted">{t.role.as_str()}</span></a>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </details>
                {menu}
            </nav>
            <main id="main" class="content">{children()}</main>
        </div>
    }
}

/// A page for the signed-out flows (sign in, sign up, invitation).
#[component]
pub fn Plain(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <main id="main" class="plain">
            <p class="brand">"Berth"</p>
            <section class="card">
                <h1>{title}</h1>
                {children()}
            </section>
        </main>
    }
}

#[component]
pub fn ErrorPage(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(
            http::StatusCode::from_u16(error.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    match error {
        AppError::Unauthenticated => view! { <Redirect path="/signin"/> }.into_any(),
        AppError::NotFound => view! { <NotFound/> }.into_any(),
        other => view! {
            <main id="main" class="plain">
                <section class="card">
                    <h1>"Something went wrong"</h1>
                    <p role="alert">{other.to_string()}</p>
                    <p><a href="/">"Back to Berth"</a></p>
                </section>
            </main>
        }
        .into_any(),
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main id="main" class="plain">
            <section class="card">
                <h1>"Not found"</h1>
                <p>"There is nothing here, or it belongs to a team you are not in."</p>
                <p><a href="/">"Back to Berth"</a></p>
            </section>
        </main>
    }
}
