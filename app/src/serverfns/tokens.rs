#[cfg(feature = "ssr")]
use crate::error::FieldExt;
use crate::{error::AppError, model::*};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// The signed-in person's API tokens (never the tokens themselves).
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_api_tokens() -> Result<TokensPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let tokens = crate::ssr::state()?.store.api_tokens(user.id).await?;
    Ok(TokensPage {
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                prefix: t.prefix,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
            })
            .collect(),
        flash: crate::ssr::take_flash().await?,
    })
}

#[server]
pub async fn create_api_token(csrf_token: String, name: String) -> Result<Option<Flash>, AppError> {
    let _ = csrf_token;
    let name = domain::ApiTokenName::parse(&name).field("name")?;
    let user = crate::ssr::require_user().await?;
    let token = crate::ssr::state()?
        .store
        .create_api_token(user.id, &name)
        .await?;
    tracing::info!(
        user_id = user.id,
        token_id = token.summary.id,
        "API token created"
    );
    crate::ssr::flash_for_form_post(Flash::NewToken {
        name: token.summary.name,
        token: token.secret,
    })
    .await
}

#[server]
pub async fn revoke_api_token(csrf_token: String, id: i64) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    crate::ssr::state()?
        .store
        .revoke_api_token(user.id, id)
        .await?;
    tracing::info!(user_id = user.id, token_id = id, "API token revoked");
    Ok(())
}
