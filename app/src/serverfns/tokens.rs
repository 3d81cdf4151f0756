//! The signed-in person's API tokens.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, Flash, TokensPage};

/// The signed-in person's API tokens (never the tokens themselves).
// Reads only: a GET, so the CSRF check (for state changes) does not apply.
#[server(input = GetUrl)]
pub async fn load_api_tokens() -> Result<TokensPage, AppError> {
    let user = crate::ssr::require_user().await?;
    let tokens = service::tokens::list(&crate::ssr::berth()?.store, user).await?;
    Ok(TokensPage {
        tokens,
        flash: crate::ssr::take_flash().await?,
    })
}

#[server]
pub async fn create_api_token(csrf_token: String, name: String) -> Result<Option<Flash>, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let (name, token) = service::tokens::create(&crate::ssr::berth()?.store, user, &name).await?;
    crate::ssr::flash_for_form_post(Flash::NewToken { name, token }).await
}

#[server]
pub async fn revoke_api_token(csrf_token: String, id: i64) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    Ok(service::tokens::revoke(&crate::ssr::berth()?.store, user, id).await?)
}
