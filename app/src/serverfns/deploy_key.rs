//! A team's ssh deploy key: owners generate a new one (its public half is on the members
//! page, which loads it with the members).

use leptos::prelude::*;
use views::{AppError, Flash};

/// Generates a new deploy key for the team, replacing the one it had (owners). The page
/// shows the new public key; a form posted without JavaScript finds the notice on the next
/// page.
#[server]
pub async fn generate_deploy_key(
    csrf_token: String,
    team: String,
) -> Result<Option<Flash>, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let key = service::deploy_keys::generate(&crate::ssr::berth()?, user, &team).await?;
    crate::ssr::flash_for_form_post(Flash::Notice(format!(
        "New deploy key {}: add its public key to your repositories as a read-only deploy key, and remove the old one there. Berth no longer uses the old key.",
        key.fingerprint
    )))
    .await
}
