//! The team's ssh deploy key, a section of the members page: the public key to add to
//! repositories as a read-only deploy key, its fingerprint, and (for owners) a form that
//! replaces it with a new one.

use crate::{
    components::{
        flash::FlashView,
        form::{Csrf, FormError},
        time::Time,
    },
    serverfns::deploy_key::GenerateDeployKey,
};
use leptos::{form::ActionForm, prelude::*};
use views::DeployKeyRow;

#[component]
pub fn DeployKeySection(
    key: Option<DeployKeyRow>,
    team: String,
    csrf: String,
    is_owner: bool,
    now: i64,
    action: ServerAction<GenerateDeployKey>,
) -> impl IntoView {
    let outcome: Signal<_> = action.value().into();
    let notice = move || match outcome.get() {
        Some(Ok(Some(flash))) => Some(view! { <FlashView flash/> }),
        _ => None,
    };
    let has_key = key.is_some();
    view! {
        <section class="panel" id="deploy-key" aria-labelledby="deploy-key-heading">
            <h2 id="deploy-key-heading">"Deploy key"</h2>
            <p>
                "Berth reads ssh repositories (" <code>"git@host:org/app.git"</code> ", " <code>"ssh://…"</code>
                ") of this team's apps with this key, and with no other: never the server's own keys. "
                "Add the public key to each repository as a read-only deploy key (GitHub: Settings → Deploy keys; GitLab: Settings → Repository → Deploy keys)."
            </p>
            {notice}
            <FormError outcome fields=&[]/>
            {match key {
                Some(key) => view! { <PublicKey key now/> }.into_any(),
                None => view! {
                    <p class="muted">"The team has no deploy key yet. Berth makes one at the first fetch of an ssh repository"
                        {if is_owner { ", or now with the button below." } else { "; an owner can also make one now." }}</p>
                }
                .into_any(),
            }}
            {if is_owner {
                view! {
                    <ActionForm action>
                        <Csrf token=csrf/>
                        <input type="hidden" name="team" value=team/>
                        {has_key.then(|| view! {
                            <p class="field-hint" id="deploy-key-hint">
                                "A new key replaces this one at once: Berth stops using the old key, so fetches fail until the new public key is added to the repositories."
                            </p>
                        })}
                        <button type="submit" class="button" aria-describedby=has_key.then_some("deploy-key-hint")>
                            {if has_key { "Generate a new key" } else { "Generate a key" }}
                        </button>
                    </ActionForm>
                }
                .into_any()
            } else {
                view! { <p class="muted">"Only owners can replace the key."</p> }.into_any()
            }}
        </section>
    }
}

/// A deploy key's public half, as it is copied into a code host or Aptible, with its
/// fingerprint and age.
#[component]
pub fn PublicKey(key: DeployKeyRow, now: i64) -> impl IntoView {
    view! {
        <pre class="public-key" aria-label="Public key"><code>{key.public_key}</code></pre>
        <dl class="facts">
            <dt>"Fingerprint"</dt><dd><code>{key.fingerprint}</code></dd>
            <dt>"Created"</dt><dd><Time ms=key.created_at now/></dd>
        </dl>
    }
}
