//! A migrated [`Store`] on a database of its own, with helpers that set up the people and
//! teams a rule needs, and a way around the store for the few checks that must look at the
//! rows themselves.

use domain::{
    AppHandle, DeployMethod, Digest, Email, ImageReference, NewPassword, OperationKind, Role,
    TeamHandle, TeamName,
};
use sqlx::{Connection, Row};
use std::{ops::Deref, sync::OnceLock};
use store::{
    AddedMember, App, AppChangesOnEnqueue, NewAccount, NewApp, NewOperation, Operation,
    OperationSecrets, Sealed, Store,
};
use testdb::TestDatabase;

/// Turns each `async fn rule(store: &TestStore) { … }` into two tests, `sqlite::rule` and
/// `postgres::rule`, each on a fresh, migrated database.
macro_rules! on_both_backends {
    ($(
        $(#[$meta:meta])*
        async fn $rule:ident($store:ident: &TestStore) $body:block
    )*) => {
        $(
            $(#[$meta])*
            async fn $rule($store: &$crate::support::TestStore) $body
        )*

        mod sqlite {
            $(
                #[tokio::test]
                async fn $rule() {
                    let store = $crate::support::TestStore::sqlite().await;
                    super::$rule(&store).await;
                    store.close().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $rule() {
                    let store = $crate::support::TestStore::postgres().await;
                    super::$rule(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

/// The password every helper-made person has.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestStore {
    // Declared first so that it is dropped before the database it points at.
    store: Store,
    pub db: TestDatabase,
}

impl Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// A person who founded a team.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    pub user_id: i64,
    pub team_id: i64,
}

impl TestStore {
    pub async fn sqlite() -> Self {
        Self::on(TestDatabase::sqlite().await).await
    }

    pub async fn postgres() -> Self {
        Self::on(TestDatabase::postgres().await).await
    }

    async fn on(db: TestDatabase) -> Self {
        let store = Store::connect(db.url())
            .await
            .unwrap_or_else(|e| panic!("connecting to {db:?}: {e}"));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrating {db:?}: {e}"));
        Self { store, db }
    }

    pub async fn close(self) {
        self.store.close().await;
    }

    /// Signs `email` up with [`PASSWORD`], founding the team with handle (and name) `team`.
    pub async fn owner(&self, email: &str, team: &str) -> Owner {
        let (user, team_id) = self
            .create_account(NewAccount {
                email: &self::email(email),
                password_hash: password_hash(),
                team_handle: &handle(team),
                team_name: &team_name(team),
            })
            .await
            .unwrap_or_else(|e| panic!("signing up {email}: {e}"));
        Owner {
            user_id: user.id,
            team_id,
        }
    }

    /// Makes `email` a `role` member of `team` with [`PASSWORD`] as their password.
    pub async fn member(&self, team: Owner, email: &str, role: Role) -> i64 {
        let user_id = match self.add(team, email, role).await {
            // An existing account is only invited: it joins when it accepts.
            AddedMember::Pending {
                user_id,
                invitation_id,
            } => {
                self.respond_to_invitation(user_id, invitation_id, true)
                    .await
                    .unwrap();
                user_id
            }
            AddedMember::Invited { user_id, .. } => user_id,
        };
        self.set_password(user_id, password_hash()).await.unwrap();
        user_id
    }

    /// Invites `email`, who has no account, into `team`: their user id and invitation token.
    pub async fn invitee(&self, team: Owner, email: &str, role: Role) -> (i64, String) {
        match self.add(team, email, role).await {
            AddedMember::Invited {
                user_id,
                invite_token,
            } => (user_id, invite_token),
            other => panic!("expected {email} to be invited, got {other:?}"),
        }
    }

    async fn add(&self, team: Owner, email: &str, role: Role) -> AddedMember {
        self.add_member(team.team_id, &self::email(email), role, team.user_id)
            .await
            .unwrap_or_else(|e| panic!("adding {email}: {e}"))
    }

    /// Creates an image-deployed app `handle` in `team`.
    pub async fn image_app(&self, team: Owner, handle: &str) -> App {
        self.create_app(
            team.team_id,
            NewApp {
                handle: &app_handle(handle),
                method: DeployMethod::Image,
                health_path: None,
                created_by: team.user_id,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("creating app {handle}: {e}"))
    }

    /// Queues `new` (see [`new_deploy`], [`new_configure`], [`new_restart`]) with no
    /// secrets and no changes to the app.
    pub async fn queue(&self, new: NewOperation) -> Operation {
        let what = format!("{} on app {}", new.kind, new.app_id);
        self.enqueue_operation(
            new,
            |_| OperationSecrets::default(),
            AppChangesOnEnqueue::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("queuing {what}: {e}"))
    }

    /// `user_id`'s role in the team with `handle`, if they are in it.
    pub async fn role_in(&self, user_id: i64, handle: &str) -> Option<Role> {
        self.team_access(user_id, handle)
            .await
            .unwrap()
            .map(|access| access.role)
    }

    /// Runs `sql` on a connection of its own, bypassing the store.
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        match self.db.backend_name() {
            "sqlite" => {
                let mut connection = sqlx::SqliteConnection::connect(self.db.url())
                    .await
                    .unwrap();
                sqlx::query(sql)
                    .execute(&mut connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            _ => {
                let mut connection = sqlx::PgConnection::connect(self.db.url()).await.unwrap();
                sqlx::query(sql)
                    .execute(&mut connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        }
    }

    /// Runs `during` while another connection holds `sql` applied but not committed (as
    /// another Berth process in the middle of a transaction would), committing after a
    /// moment: for rules about what happens when two writers meet.
    pub async fn while_uncommitted<F: std::future::Future>(
        &self,
        sql: &str,
        during: F,
    ) -> F::Output {
        const HOLD: std::time::Duration = std::time::Duration::from_millis(300);
        match self.db.backend_name() {
            "sqlite" => {
                let mut other = sqlx::SqliteConnection::connect(self.db.url())
                    .await
                    .unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut other)
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&mut other).await.unwrap();
                let (output, ()) = tokio::join!(during, async {
                    tokio::time::sleep(HOLD).await;
                    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
                });
                output
            }
            _ => {
                let mut other = sqlx::PgConnection::connect(self.db.url()).await.unwrap();
                sqlx::query("BEGIN").execute(&mut other).await.unwrap();
                sqlx::query(sql).execute(&mut other).await.unwrap();
                let (output, ()) = tokio::join!(during, async {
                    tokio::time::sleep(HOLD).await;
                    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
                });
                output
            }
        }
    }

    /// Every value in `table`, as text, read on a connection of its own.
    pub async fn table_as_text(&self, table: &str) -> Vec<Vec<String>> {
        let sql = format!("SELECT * FROM {table}");
        match self.db.backend_name() {
            "sqlite" => {
                let mut connection = sqlx::SqliteConnection::connect(self.db.url())
                    .await
                    .unwrap();
                let rows = sqlx::query(&sql).fetch_all(&mut connection).await.unwrap();
                rows.iter().map(|row| row_as_text(row, row.len())).collect()
            }
            _ => {
                let mut connection = sqlx::PgConnection::connect(self.db.url()).await.unwrap();
                let rows = sqlx::query(&sql).fetch_all(&mut connection).await.unwrap();
                rows.iter().map(|row| row_as_text(row, row.len())).collect()
            }
        }
    }
}

/// The columns of a row that are text or integers (all the account tables have), as text.
fn row_as_text<R: Row>(row: &R, columns: usize) -> Vec<String>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    (0..columns)
        .map(|column| {
            if let Ok(text) = row.try_get::<Option<String>, _>(column) {
                text.unwrap_or_default()
            } else {
                let number: Option<i64> = row
                    .try_get(column)
                    .unwrap_or_else(|e| panic!("column {column} is neither text nor integer: {e}"));
                number.map(|n| n.to_string()).unwrap_or_default()
            }
        })
        .collect()
}

/// An Argon2 hash of [`PASSWORD`], computed once: hashing is slow on purpose.
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_of(PASSWORD))
}

pub fn hash_of(password: &str) -> String {
    store::passwords::hash(&NewPassword::parse(password).unwrap()).unwrap()
}

pub fn email(value: &str) -> Email {
    Email::parse(value).unwrap()
}

pub fn handle(value: &str) -> TeamHandle {
    TeamHandle::parse(value).unwrap()
}

pub fn team_name(value: &str) -> TeamName {
    TeamName::parse(value).unwrap()
}

pub fn now_ms() -> i64 {
    store::now_ms()
}

pub fn app_handle(value: &str) -> AppHandle {
    AppHandle::parse(value).unwrap()
}

/// `value` as an image reference; short Docker Hub names come back normalised (`web:1` is
/// `docker.io/library/web:1`).
pub fn image(value: &str) -> ImageReference {
    ImageReference::parse(value).unwrap()
}

/// A real (well-formed) sha256 digest, different for each `n`.
pub fn digest(n: u64) -> Digest {
    Digest::parse(&format!("sha256:{n:064x}")).unwrap()
}

/// A deploy of `image` on `app` (verified to resolve to `digest(0x0123)`), requested by
/// `by`, with no credentials.
pub fn new_deploy(app: &App, image: &str, by: i64) -> NewOperation {
    NewOperation::deploy_image(
        app.team_id,
        app.id,
        by,
        self::image(image),
        Some(digest(0x0123)),
    )
}

/// A configure of `app` with no changes, requested by `by`.
pub fn new_configure(app: &App, by: i64) -> NewOperation {
    NewOperation::configure(app.team_id, app.id, by)
}

/// A restart of `app`, requested by `by`.
pub fn new_restart(app: &App, by: i64) -> NewOperation {
    NewOperation::restart(app.team_id, app.id, by)
}

/// An operation of `kind` on `app`, requested by `by` (a deploy is of `img`).
pub fn new_operation(app: &App, kind: OperationKind, by: i64) -> NewOperation {
    match kind {
        OperationKind::Deploy => new_deploy(app, "img", by),
        OperationKind::Configure => new_configure(app, by),
        OperationKind::Restart => new_restart(app, by),
    }
}

/// A fake sealed value naming what it stands for (the store never opens it).
pub fn sealed(what: &str) -> Sealed {
    Sealed {
        value: format!("v1.k1.{what}"),
        key_id: "k1".into(),
    }
}
