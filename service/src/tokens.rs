//! A person's API tokens, for CI pipelines: the token itself is shown once, when it is made.

use crate::Result;
use domain::ApiTokenName;
use store::Store;
use views::{FieldExt, TokenRow};

pub async fn list(store: &Store, user_id: i64) -> Result<Vec<TokenRow>> {
    Ok(store
        .api_tokens(user_id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        })
        .collect())
}

/// A new token: its name, and the token itself (the only time it is ever shown).
pub async fn create(store: &Store, user_id: i64, name: &str) -> Result<(String, String)> {
    let name = ApiTokenName::parse(name).field("name")?;
    let token = store.create_api_token(user_id, &name).await?;
    tracing::info!(user_id, token_id = token.summary.id, "API token created");
    Ok((token.summary.name, token.secret))
}

pub async fn revoke(store: &Store, user_id: i64, id: i64) -> Result<()> {
    store.revoke_api_token(user_id, id).await?;
    tracing::info!(user_id, token_id = id, "API token revoked");
    Ok(())
}

/// The user a bearer token belongs to, if it is a live token.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<store::User>> {
    let Some(user_id) = store.authenticate_api_token(token).await? else {
        return Ok(None);
    };
    Ok(store.user(user_id).await?)
}
