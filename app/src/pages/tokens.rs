//! `/settings/tokens`: the signed-in person's API tokens for the JSON API.

use crate::{
    components::{
        flash::FlashView,
        form::{field_error, Csrf, Field, FormError},
        layout::{Console, ErrorPage, Section, SignedIn},
        time::Time,
    },
    serverfns::tokens::{load_api_tokens, CreateApiToken, RevokeApiToken},
};
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;

#[component]
pub fn TokensPage() -> AnyView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| load_api_tokens(),
    );
    let create_outcome: Signal<_> = create.value().into();
    let revoke_outcome: Signal<_> = revoke.value().into();
    view! {
        <SignedIn let:me>
            {
            let form_csrf = me.csrf.clone();
            view! {
            <Console me=me.clone() section=Section::Tokens>
                <Title text="API tokens"/>
                <header class="page-header"><h1>"API tokens"</h1></header>
                <p>"Tokens let CI pipelines use Berth's JSON API as you: send "
                    <code>"Authorization: Bearer <token>"</code> " to " <code>"/api/v1"</code> ". "
                    <a href="/api/docs" rel="external">"The API reference"</a> " lists every operation; "
                    <a href="/api/v1/openapi.json" rel="external">"its OpenAPI document"</a> " is for tools."</p>
                <Suspense fallback=|| view! { <p class="loading">"Loading tokens…"</p> }>
                    {
                        let csrf = me.csrf.clone();
                        move || {
                            let csrf = csrf.clone();
                            Suspend::new(async move {
                                let page = match tokens.await {
                                    Ok(page) => page,
                                    Err(error) => return view! { <ErrorPage error/> }.into_any(),
                                };
                                let now = crate::now_ms();
                                let flash = match create_outcome.get_untracked() {
                                    Some(Ok(Some(flash))) => Some(flash),
                                    _ => page.flash.clone(),
                                };
                                view! {
                                    {flash.map(|flash| view! { <FlashView flash/> })}
                                    <FormError outcome=revoke_outcome fields=&[]/>
                                    {if page.tokens.is_empty() {
                                        view! { <div class="empty-state"><p>"You have no API tokens yet. Create one below for each place that deploys, so that each can be revoked on its own."</p></div> }.into_any()
                                    } else {
                                        view! {
                                            <table class="table">
                                                <caption class="visually-hidden">"Your API tokens"</caption>
                                                <thead><tr>
                                                    <th scope="col">"Name"</th><th scope="col">"Token"</th>
                                                    <th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Actions"</th>
                                                </tr></thead>
                                                <tbody>
                                                    {page.tokens.into_iter().map(|t| { let csrf = csrf.clone(); view! {
                                                        <tr>
                                                            <td>{t.name.clone()}</td>
                                                            <td><code>{t.prefix.clone()} "…"</code></td>
                                                            <td><Time ms=t.created_at now/></td>
                                                            <td>{match t.last_used_at { Some(ms) => view! { <Time ms now/> }.into_any(), None => "never".into_any() }}</td>
                                                            <td>
                                                                <ActionForm action=revoke attr:class="inline-form">
                                                                    <Csrf token=csrf.clone()/>
                                                                    <input type="hidden" name="id" value=t.id.to_string()/>
                                                                    <button type="submit" class="button button-danger">"Revoke"<span class="visually-hidden">" " {t.name.clone()}</span></button>
                                                                </ActionForm>
                                                            </td>
                                                        </tr>
                                                    }}).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                }
                                .into_any()
                            })
                        }
                    }
                </Suspense>
                <section class="panel" aria-labelledby="new-token">
                    <h2 id="new-token">"Create a token"</h2>
                    <ActionForm action=create>
                        <Csrf token=form_csrf/>
                        <FormError outcome=create_outcome fields=&["name"]/>
                        <Field label="Token name" name="name" hint="Where it will be used, e.g. \"GitHub Actions\"." error=field_error(create_outcome, "name")/>
                        <button type="submit" class="button button-primary">"Create token"</button>
                    </ActionForm>
                </section>
            </Console>
            }
            }
        </SignedIn>
    }
    .into_any()
}
