//! The authorisation rule, in one place. Every use case that touches a team's data asks
//! here first; pages, server functions and the JSON API never decide it themselves.

use crate::{Error, Result};
use domain::Role;
use store::{Store, TeamAccess};
use views::AppError;

/// A person outside the team gets "not found" (so that team handles cannot be probed), a
/// member whose role is below `needed` gets "forbidden" naming what they tried and who can.
pub async fn authorize(
    store: &Store,
    user_id: i64,
    team: &str,
    needed: Role,
    action: &str,
) -> Result<TeamAccess> {
    let access = store.team_access(user_id, team).await?;
    check_role(access, needed, action)
}

/// [`authorize`] for a team known by id (e.g. the team of an operation looked up by id).
pub async fn authorize_team_id(
    store: &Store,
    user_id: i64,
    team_id: i64,
    needed: Role,
    action: &str,
) -> Result<TeamAccess> {
    let access = store.team_access_by_id(user_id, team_id).await?;
    check_role(access, needed, action)
}

fn check_role(access: Option<TeamAccess>, needed: Role, action: &str) -> Result<TeamAccess> {
    let access = access.ok_or_else(Error::not_found)?;
    if !access.role.allows(needed) {
        return Err(AppError::Forbidden {
            message: format!(
                "Your role in this team ({}) cannot {action}; ask an owner.",
                access.role
            ),
        }
        .into());
    }
    Ok(access)
}
