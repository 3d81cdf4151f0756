use crate::{
    accounts::{User, INVITE_TTL_MS},
    db::with_pool,
    now_ms, random_token, sha256_hex, Store, StoreError,
};
use domain::{Email, Role, TeamHandle, TeamName};

/// A signed-in person's standing in one team: what every authorisation check returns.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TeamAccess {
    pub team_id: i64,
    pub handle: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// The team's setting: may viewers read runtime and operation logs?
    pub viewers_read_logs: bool,
}

/// A member as listed on the team's members page.
/// Read as a row, or as JSON ([`MEMBER_COLUMNS`], in the order of the fields).
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_at: i64,
    /// True while the person has not accepted their invitation.
    #[serde(deserialize_with = "crate::parsed::flag")]
    pub pending: bool,
}

// [`MEMBERS`]'s parts, as literals so that `concat!` can join them.
macro_rules! members_unordered {
    () => {
        "SELECT user_id, email, role, joined_at, pending FROM (
     SELECT u.id AS user_id, u.email, m.role, m.created_at AS joined_at,
            (u.password_hash IS NULL) AS pending
     FROM memberships m JOIN users u ON u.id = m.user_id
     WHERE m.team_id = $1
     UNION ALL
     SELECT u.id AS user_id, u.email, i.role, i.created_at AS joined_at, TRUE AS pending
     FROM membership_invitations i JOIN users u ON u.id = i.user_id
     WHERE i.team_id = $1
   ) AS everyone"
    };
}

macro_rules! members_order {
    () => {
        "CASE role WHEN 'owner' THEN 0 WHEN 'deployer' THEN 1 ELSE 2 END, email"
    };
}

/// A team's members and the people invited to it, owners first, then deployers, then
/// viewers, each by email ([`Store::members`]).
pub(crate) const MEMBERS: &str = concat!(members_unordered!(), " ORDER BY ", members_order!());

/// [`MEMBERS`] in no order, and its order and columns: for reading it as JSON
/// ([`Store::history_view`]).
pub(crate) const MEMBERS_UNORDERED: &str = members_unordered!();
pub(crate) const MEMBERS_ORDER: &str = members_order!();
pub(crate) const MEMBER_COLUMNS: &str = "user_id, email, role, joined_at, pending";

/// What adding a member did.
#[derive(Debug)]
pub enum AddedMember {
    /// The person already had an account: they are invited, and become a member only when
    /// they accept ([`Store::respond_to_invitation`]).
    Pending { user_id: i64, invitation_id: i64 },
    /// The person had no account: one was created without a password, and this single-use
    /// token lets them choose one (show it once, as a link).
    Invited { user_id: i64, invite_token: String },
}

/// A standing invitation to join a team, as the invited person sees it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MembershipInvitation {
    pub id: i64,
    pub team_handle: String,
    pub team_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub invited_by: String,
    pub created_at: i64,
}

/// Inserts a team and its first owner inside an open transaction `$tx`; yields the team id.
macro_rules! insert_team {
    ($tx:ident, $handle:expr, $name:expr, $owner:expr, $now:expr) => {{
        let team_id: i64 = sqlx::query_scalar(
            "INSERT INTO teams (handle, name, created_at, updated_at) VALUES ($1, $2, $3, $3)
             RETURNING id",
        )
        .bind($handle.as_str())
        .bind($name.as_str())
        .bind($now)
        .fetch_one(&mut *$tx)
        .await
        .map_err(|e| $crate::StoreError::unique_as(e, "handle"))?;
        sqlx::query(
            "INSERT INTO memberships (team_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(team_id)
        .bind($owner)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        team_id
    }};
}
pub(crate) use insert_team;

/// Inside transaction `$tx`: locks the team and fails unless `$user` is a member whose
/// change to `$new_role` (`None`: removal) leaves the team with at least one owner.
macro_rules! guard_last_owner {
    ($tx:ident, $team:expr, $user:expr, $now:expr, $new_role:expr) => {{
        // Taking the team row's write lock first serialises concurrent membership changes,
        // so two owners cannot demote or remove each other at the same moment.
        sqlx::query("UPDATE teams SET updated_at = $1 WHERE id = $2")
            .bind($now)
            .bind($team)
            .execute(&mut *$tx)
            .await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE team_id = $1 AND user_id = $2")
                .bind($team)
                .bind($user)
                .fetch_optional(&mut *$tx)
                .await?;
        let current = current.ok_or(StoreError::NotFound)?;
        let new_role: Option<Role> = $new_role;
        if current == "owner" && new_role != Some(Role::Owner) {
            let owners: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM memberships WHERE team_id = $1 AND role = 'owner'",
            )
            .bind($team)
            .fetch_one(&mut *$tx)
            .await?;
            if owners <= 1 {
                return Err(StoreError::LastOwner);
            }
        }
    }};
}

impl Store {
    /// Creates another team owned by `owner`.
    pub async fn create_team(
        &self,
        owner: i64,
        handle: &TeamHandle,
        name: &TeamName,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let team_id = insert_team!(tx, handle, name, owner, now);
            tx.commit().await?;
            Ok(team_id)
        })
    }

    /// The teams `user_id` belongs to, by handle.
    pub async fn teams_of(&self, user_id: i64) -> Result<Vec<TeamAccess>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT t.id AS team_id, t.handle, t.name, m.role,
                        t.viewers_read_logs <> 0 AS viewers_read_logs
                 FROM memberships m JOIN teams t ON t.id = m.team_id
                 WHERE m.user_id = $1 ORDER BY t.handle",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// A person and their teams ([`Store::user`] and [`Store::teams_of`] in one query: the
    /// frame of every signed-in page needs both); `None` when there is no such person.
    pub async fn user_with_teams(
        &self,
        user_id: i64,
    ) -> Result<Option<(User, Vec<TeamAccess>)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            email: String,
            password_hash: Option<String>,
            created_at: i64,
            team_id: Option<i64>,
            handle: Option<String>,
            name: Option<String>,
            role: Option<String>,
            viewers_read_logs: Option<bool>,
        }
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT u.id, u.email, u.password_hash, u.created_at,
                        t.id AS team_id, t.handle, t.name, m.role,
                        t.viewers_read_logs <> 0 AS viewers_read_logs
                 FROM users u
                 LEFT JOIN memberships m ON m.user_id = u.id
                 LEFT JOIN teams t ON t.id = m.team_id
                 WHERE u.id = $1 ORDER BY t.handle",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let user = User {
            id: first.id,
            email: first.email.clone(),
            password_hash: first.password_hash.clone(),
            created_at: first.created_at,
        };
        let mut teams = Vec::with_capacity(rows.len());
        for row in rows {
            // A person in no team has one row, without a team.
            let (Some(team_id), Some(handle), Some(name), Some(role)) =
                (row.team_id, row.handle, row.name, row.role)
            else {
                continue;
            };
            let role = role.parse::<Role>().map_err(|e| StoreError::Corrupt {
                column: "memberships.role",
                message: e.to_string(),
            })?;
            teams.push(TeamAccess {
                team_id,
                handle,
                name,
                role,
                viewers_read_logs: row.viewers_read_logs.unwrap_or(false),
            });
        }
        Ok(Some((user, teams)))
    }

    /// `user_id`'s membership in the team with `handle`, or `None` when there is no such
    /// team *or* the user is not in it (callers must not tell the two apart).
    pub async fn team_access(
        &self,
        user_id: i64,
        handle: &str,
    ) -> Result<Option<TeamAccess>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT t.id AS team_id, t.handle, t.name, m.role,
                        t.viewers_read_logs <> 0 AS viewers_read_logs
                 FROM teams t JOIN memberships m ON m.team_id = t.id AND m.user_id = $1
                 WHERE t.handle = $2",
            )
            .bind(user_id)
            .bind(handle)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Sets whether the team's viewers may read runtime and operation logs.
    pub async fn set_viewers_read_logs(
        &self,
        team_id: i64,
        allowed: bool,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE teams SET viewers_read_logs = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(allowed))
                .bind(now_ms())
                .bind(team_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// Like [`Store::team_access`], for a team known by id (an operation's team).
    pub async fn team_access_by_id(
        &self,
        user_id: i64,
        team_id: i64,
    ) -> Result<Option<TeamAccess>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT t.id AS team_id, t.handle, t.name, m.role,
                        t.viewers_read_logs <> 0 AS viewers_read_logs
                 FROM teams t JOIN memberships m ON m.team_id = t.id AND m.user_id = $1
                 WHERE t.id = $2",
            )
            .bind(user_id)
            .bind(team_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The handle of the team with `team_id` (for work that knows a team only by id, such as
    /// a fetch for one of its apps).
    pub async fn team_handle(&self, team_id: i64) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT handle FROM teams WHERE id = $1")
                .bind(team_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The team's members and the people invited to it ([`MEMBERS`]).
    pub async fn members(&self, team_id: i64) -> Result<Vec<Member>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(MEMBERS).bind(team_id).fetch_all(pool).await?)
        })
    }

    /// Adds the person with `email` to the team. Someone without an account gets one with
    /// no password and an invitation token; someone with an account is invited and joins
    /// only when they accept. `Taken { what: "email" }` when already a member or invited.
    pub async fn add_member(
        &self,
        team_id: i64,
        email: &Email,
        role: Role,
        added_by: i64,
    ) -> Result<AddedMember, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Write first, like every membership change: a SQLite transaction that reads
            // before it writes cannot wait for the write lock and fails at once with "database
            // is locked" when another connection is writing.
            sqlx::query("UPDATE teams SET updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(team_id)
                .execute(&mut *tx)
                .await?;
            let existing: Option<(i64, Option<String>)> =
                sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((user_id, Some(_))) = existing {
                let member: Option<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM memberships WHERE team_id = $1 AND user_id = $2",
                )
                .bind(team_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                if member.is_some() {
                    return Err(StoreError::Taken { what: "email" });
                }
                let invitation_id: i64 = sqlx::query_scalar(
                    "INSERT INTO membership_invitations (team_id, user_id, role, invited_by, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(team_id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(added_by)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::unique_as(e, "email"))?;
                tx.commit().await?;
                return Ok(AddedMember::Pending { user_id, invitation_id });
            }
            // No account, or one still waiting for its first password: a membership now and
            // a link with which the person chooses their password (that is their consent).
            let user_id: i64 = match existing {
                Some((id, _)) => id,
                None => sqlx::query_scalar(
                    "INSERT INTO users (email, password_hash, created_at) VALUES ($1, NULL, $2) RETURNING id",
                )
                .bind(email.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::unique_as(e, "email"))?,
            };
            sqlx::query("INSERT INTO memberships (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(team_id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::unique_as(e, "email"))?;
            let invite_token = format!("inv_{}", random_token(32));
            // A new link to this team replaces an earlier one to it; invitations to
            // other teams stay valid until the person accepts one of them.
            sqlx::query("DELETE FROM invites WHERE user_id = $1 AND team_id = $2 AND accepted_at IS NULL")
                .bind(user_id)
                .bind(team_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO invites (token_hash, user_id, team_id, created_by, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(sha256_hex(&invite_token))
            .bind(user_id)
            .bind(team_id)
            .bind(added_by)
            .bind(now)
            .bind(now + INVITE_TTL_MS)
            .execute(&mut *tx)
            .await?;
            let outcome = AddedMember::Invited { user_id, invite_token };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// Changes a member's role. Refuses (`LastOwner`) to demote the team's only owner.
    pub async fn change_role(
        &self,
        team_id: i64,
        user_id: i64,
        role: Role,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Someone invited but not yet a member: the invitation's role changes.
            let invited = sqlx::query("UPDATE membership_invitations SET role = $1 WHERE team_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if invited.rows_affected() > 0 {
                tx.commit().await?;
                return Ok(());
            }
            guard_last_owner!(tx, team_id, user_id, now, Some(role));
            sqlx::query("UPDATE memberships SET role = $1 WHERE team_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes a member. Refuses (`LastOwner`) to remove the team's only owner.
    pub async fn remove_member(&self, team_id: i64, user_id: i64) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Someone invited but not yet a member: the invitation is withdrawn.
            let invited = sqlx::query("DELETE FROM membership_invitations WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if invited.rows_affected() > 0 {
                tx.commit().await?;
                return Ok(());
            }
            guard_last_owner!(tx, team_id, user_id, now, None);
            sqlx::query("DELETE FROM memberships WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            // An invitation to this team is void once its membership is gone.
            sqlx::query("DELETE FROM invites WHERE team_id = $1 AND user_id = $2 AND accepted_at IS NULL")
                .bind(team_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The invitations `user_id` has not answered yet, oldest first.
    pub async fn membership_invitations(
        &self,
        user_id: i64,
    ) -> Result<Vec<MembershipInvitation>, StoreError> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT i.id, t.handle AS team_handle, t.name AS team_name, i.role,
                        u.email AS invited_by, i.created_at
                 FROM membership_invitations i
                 JOIN teams t ON t.id = i.team_id
                 JOIN users u ON u.id = i.invited_by
                 WHERE i.user_id = $1 ORDER BY i.created_at, i.id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Accepts (`accept`) or declines invitation `id` addressed to `user_id`; either way
    /// the invitation is gone. Answers the team's handle; `NotFound` when there is no such
    /// invitation for this person.
    pub async fn respond_to_invitation(
        &self,
        user_id: i64,
        id: i64,
        accept: bool,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let invitation: Option<(i64, String)> = sqlx::query_as(
                "DELETE FROM membership_invitations WHERE id = $1 AND user_id = $2
                 RETURNING team_id, role",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (team_id, role) = invitation.ok_or(StoreError::NotFound)?;
            if accept {
                sqlx::query(
                    "INSERT INTO memberships (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(team_id)
                .bind(user_id)
                .bind(role)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::unique_as(e, "invitation"))?;
            }
            let handle: String = sqlx::query_scalar("SELECT handle FROM teams WHERE id = $1")
                .bind(team_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(handle)
        })
    }
}
