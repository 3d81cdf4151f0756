//! Berth's user interface: pages, components and the server functions behind them.
//! Server-only code sits behind the `ssr` feature (`ssr.rs`, and the bodies of `#[server]`
//! functions, which call the `service` crate); everything else also compiles to
//! WebAssembly for hydration. What pages show is `views`' types.

pub mod assets;
pub mod components;
#[cfg(feature = "ssr")]
pub mod csp;
pub mod pages;
pub mod serverfns;
#[cfg(feature = "ssr")]
pub mod ssr;

use components::layout::{provide_session, NotFound};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};
use pages::{
    apps::{AppConfigPage, AppDeployPage, AppDetailPage, AppLogsPage, AppsListPage, NewAppPage},
    audit::AuditPage,
    auth::{ConfirmSignUpPage, InvitePage, SignInPage, SignUpPage},
    credentials::{CredentialDetailPage, CredentialsListPage, NewCredentialPage},
    history::OperationsHistoryPage,
    members::MembersPage,
    operations::OperationDetailPage,
    platforms::PlatformsPage,
    team::{HomePage, TeamPage},
    tokens::TokensPage,
};

/// The HTML document around the app.
pub fn shell(_options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    csp::set_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <assets::BundleHead/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_session();
    #[cfg(feature = "ssr")]
    ssr::provide_form_flash();
    // Pages render in async mode: the server waits for their data, so that redirects
    // (signed out → sign-in) and status codes (404) are real HTTP responses. Every page
    // returns `AnyView`: otherwise the router's type spells out every page's whole view
    // tree, and the debug info of the functions that render it grows to gigabytes.
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Berth".to_string() } else { format!("{page} · Berth") }/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                <Route path=path!("/signin") view=SignInPage ssr=SsrMode::Async/>
                <Route path=path!("/signup") view=SignUpPage ssr=SsrMode::Async/>
                <Route path=path!("/signup/confirm/:token") view=ConfirmSignUpPage ssr=SsrMode::Async/>
                <Route path=path!("/invite/:token") view=InvitePage ssr=SsrMode::Async/>
                <Route path=path!("/settings/tokens") view=TokensPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team") view=TeamPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/members") view=MembersPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/credentials") view=CredentialsListPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/credentials/new") view=NewCredentialPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/credentials/:name") view=CredentialDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/audit") view=AuditPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/platforms") view=PlatformsPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps") view=AppsListPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps/new") view=NewAppPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps/:app") view=AppDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps/:app/deploy") view=AppDeployPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps/:app/config") view=AppConfigPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps/:app/logs") view=AppLogsPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/apps/:app/history") view=OperationsHistoryPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/history") view=OperationsHistoryPage ssr=SsrMode::Async/>
                <Route path=path!("/teams/:team/operations/:id") view=OperationDetailPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// Milliseconds since the Unix epoch, on the server or in the browser.
pub fn now_ms() -> i64 {
    #[cfg(feature = "ssr")]
    {
        service::now_ms()
    }
    #[cfg(not(feature = "ssr"))]
    {
        js_sys::Date::now() as i64
    }
}
