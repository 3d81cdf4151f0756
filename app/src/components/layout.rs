//! The console's frame: the session every page awaits, the left navigation with the team
//! switcher, and the pages for "not signed in", "not found" and errors.

use crate::{
    components::markup::Markup,
    serverfns::session::{load_session, SignOut},
};
use leptos::{prelude::*, server_fn::ServerFn};
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

/// After a sign-in, sign-up or an invitation's answer succeeds in the browser, reload from
/// `target` so that every part of the page is rendered for the new session. (Signing out is
/// a plain form post from the console's navigation, answered with a redirect.)
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
    let current = team
        .as_deref()
        .or_else(|| me.viewer.teams.first().map(|t| t.handle.as_str()));
    let current_team = current.and_then(|h| me.viewer.teams.iter().find(|t| t.handle == h));
    let nav = navigation(&me, current_team, section);
    view! {
        <div class="console">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <nav class="sidebar" aria-label="Main" inner_html=nav></nav>
            <main id="main" class="content">{children()}</main>
        </div>
    }
}

/// The console's navigation, written as one string (nothing in it is hydrated; every page
/// renders it): the brand, the team switcher, the current team's pages, the person's
/// settings and the sign-out form. `section` is marked as the current page. On a phone the
/// links fold into a menu (a disclosure: no script needed); on wider screens they are
/// always shown (style/main.css). Signing out is a plain form post: the server answers it
/// with a redirect to the sign-in page.
fn navigation(me: &Me, current_team: Option<&TeamSummary>, section: Section) -> String {
    let mut html = Markup::with_capacity(1_600 + me.viewer.teams.len() * 120);
    let link =
        |html: &mut Markup, href: &str, rest: &'static str, s: Section, label: &'static str| {
            html.raw(r#"<li><a href=""#).attr(href).raw(rest);
            if s == section {
                html.raw(r#"" aria-current="page">"#);
            } else {
                html.raw(r#"">"#);
            }
            html.raw(label).raw("</a></li>");
        };
    html.raw(r#"<a class="brand" href="/">Berth</a><details class="team-switcher"><summary><span class="visually-hidden">Team: </span>"#);
    match current_team {
        Some(t) => {
            html.text(&t.name)
                .raw(r#"<span class="badge badge-role">"#)
                .raw(t.role.as_str())
                .raw("</span>");
        }
        None => {
            html.raw("No team");
        }
    }
    html.raw(r#"</summary><ul role="list" aria-label="Switch team">"#);
    for t in &me.viewer.teams {
        html.raw(r#"<li><a href="/teams/"#)
            .attr(&t.handle)
            .raw(r#"">"#)
            .text(&t.name)
            .raw(r#" <span class="muted">"#)
            .raw(t.role.as_str())
            .raw("</span></a></li>");
    }
    html.raw(r#"</ul></details><details class="nav-menu"><summary>Menu</summary>"#);
    if let Some(t) = current_team {
        let base = format!("/teams/{}", t.handle);
        html.raw(r#"<ul role="list" class="nav-list">"#);
        for (rest, s, label) in [
            ("", Section::Overview, "Overview"),
            ("/apps", Section::Apps, "Apps"),
            ("/credentials", Section::Credentials, "Credentials"),
            ("/history", Section::History, "History"),
            ("/audit", Section::Audit, "Audit"),
            ("/members", Section::Members, "Members"),
            ("/platforms", Section::Platforms, "Platforms"),
        ] {
            link(&mut html, &base, rest, s, label);
        }
        html.raw("</ul>");
    }
    html.raw(r#"<p class="nav-heading">You</p><ul role="list" class="nav-list">"#);
    link(
        &mut html,
        "/settings/tokens",
        "",
        Section::Tokens,
        "API tokens",
    );
    html.raw(r#"</ul><div class="nav-footer"><p class="muted signed-in-as">"#)
        .text(&me.viewer.email)
        .raw(r#"</p><form action=""#)
        .attr(<SignOut as ServerFn>::url())
        .raw(r#"" method="post"><input type="hidden" name="csrf_token" value=""#)
        .attr(&me.csrf)
        .raw(r#""><button type="submit" class="button button-quiet">Sign out</button></form></div></details>"#);
    html.into_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Role;

    fn me(teams: Vec<TeamSummary>) -> Me {
        Me {
            csrf: "token&1".into(),
            viewer: Viewer {
                user_id: 1,
                email: "<b>ann</b>@example.com".into(),
                teams,
            },
            public_url: "http://127.0.0.1:3000".into(),
        }
    }

    fn team(handle: &str, name: &str, role: Role) -> TeamSummary {
        TeamSummary {
            handle: handle.into(),
            name: name.into(),
            role,
            viewers_read_logs: false,
        }
    }

    #[test]
    fn navigation_marks_the_section_and_escapes_what_people_chose() {
        let me = me(vec![
            team("acme", "Acme & <Sons>", Role::Owner),
            team("beta", r#"Beta" onclick="x"#, Role::Viewer),
        ]);
        let html = navigation(&me, me.viewer.teams.first(), Section::Credentials);
        assert_eq!(html.matches("aria-current").count(), 1, "{html}");
        assert!(
            html.contains(
                r#"<a href="/teams/acme/credentials" aria-current="page">Credentials</a>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/teams/acme/platforms">Platforms</a>"#),
            "{html}"
        );
        assert!(
            html.contains("Acme &amp; &lt;Sons&gt;<span class=\"badge badge-role\">owner</span>"),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<a href="/teams/beta">Beta" onclick="x <span class="muted">viewer</span></a>"#
            ),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;ann&lt;/b&gt;@example.com"),
            "{html}"
        );
        assert!(
            html.contains(r#"name="csrf_token" value="token&amp;1""#),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains(&format!(
                r#"<form action="{}" method="post">"#,
                <SignOut as ServerFn>::url()
            )),
            "{html}"
        );
        assert_eq!(html.matches("<a ").count(), 1 + 2 + 7 + 1, "{html}");

        let tokens = navigation(&me, None, Section::Tokens);
        assert!(
            tokens.contains(r#"<span class="visually-hidden">Team: </span>No team</summary>"#),
            "{tokens}"
        );
        assert!(!tokens.contains("/teams/acme/apps"), "{tokens}");
        assert!(
            tokens.contains(r#"<a href="/settings/tokens" aria-current="page">API tokens</a>"#),
            "{tokens}"
        );
        assert_eq!(tokens.matches("aria-current").count(), 1, "{tokens}");
    }
}
