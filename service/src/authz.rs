//! The authorisation rule, in one place. Every use case that touches a team's data asks
//! here first; pages, server functions and the JSON API never decide it themselves.

use crate::{accounts::SignedIn, Error, Result};
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

/// [`authorize`] for someone signed in, from the teams read for this request with them
/// ([`SignedIn`]): the same rule and the same answers, without asking the database again
/// (the request read their memberships moments ago).
pub fn authorize_signed_in(
    signed_in: &SignedIn,
    team: &str,
    needed: Role,
    action: &str,
) -> Result<TeamAccess> {
    check_role(signed_in.team(team).cloned(), needed, action)
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

/// Logs (what a release prints, what a build and an operation print) can hold anything an
/// app chooses to print, so viewers read them only when an owner allowed it for the team
/// (`viewers_read_logs`); deployers and owners always may.
pub fn may_read_logs(access: &TeamAccess) -> bool {
    access.role.allows(Role::Deployer) || access.viewers_read_logs
}

/// [`may_read_logs`] as a refusal that says who can change it.
pub fn check_log_access(access: &TeamAccess) -> Result<()> {
    if may_read_logs(access) {
        return Ok(());
    }
    Err(AppError::Forbidden {
        message: format!(
            "Your role in this team ({}) cannot read logs unless an owner allows viewers to in the team's settings; ask an owner.",
            access.role
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(role: Role, viewers_read_logs: bool) -> TeamAccess {
        TeamAccess {
            team_id: 1,
            handle: "acme".into(),
            name: "Acme".into(),
            role,
            viewers_read_logs,
        }
    }

    #[test]
    fn viewers_read_logs_only_when_the_team_allows_it() {
        assert!(!may_read_logs(&access(Role::Viewer, false)));
        assert!(check_log_access(&access(Role::Viewer, false)).is_err());
        assert!(may_read_logs(&access(Role::Viewer, true)));
        for role in [Role::Deployer, Role::Owner] {
            assert!(may_read_logs(&access(role, false)), "{role}");
        }
    }
}
