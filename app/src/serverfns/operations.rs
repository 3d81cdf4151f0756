//! An operation's page, and the buttons on it: cancel a queued one, deploy a digest again.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use views::{AppError, OperationPage};

/// An operation with its log so far and, for a finished deploy of a tag, whether the tag
/// now names another digest.
#[server(input = GetUrl)]
pub async fn load_operation(id: i64) -> Result<OperationPage, AppError> {
    let user = crate::ssr::require_user().await?;
    Ok(service::operations::page(&crate::ssr::berth()?, user, id).await?)
}

/// Cancels a queued operation.
#[server]
pub async fn cancel_operation(csrf_token: String, id: i64) -> Result<(), AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let (access, _) = service::operations::cancel(&crate::ssr::berth()?, user, id).await?;
    crate::ssr::redirect_to_operation(&access.handle, id);
    Ok(())
}

/// Deploys again the exact digest an earlier deploy ran; answers the new operation's id.
#[server]
pub async fn redeploy_operation(csrf_token: String, id: i64) -> Result<i64, AppError> {
    let _ = csrf_token;
    let user = crate::ssr::require_user().await?;
    let (access, operation) =
        service::operations::redeploy(&crate::ssr::berth()?, user, id).await?;
    crate::ssr::redirect_to_operation(&access.handle, operation.id);
    Ok(operation.id)
}
