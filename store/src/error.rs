/// What can go wrong in the store, in terms the layers above can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken: `what` names the field ("email", "handle", "name").
    #[error("{what} is already taken")]
    Taken { what: &'static str },
    /// The change would leave a team without an owner.
    #[error("a team must keep at least one owner")]
    LastOwner,
    #[error("not found")]
    NotFound,
    /// A finite pool (stable ports) has nothing left.
    #[error("{0}")]
    Exhausted(String),
    /// The operation is no longer running under this worker's lease (it was failed as
    /// abandoned, or another worker holds it): the worker must stop and not report.
    #[error("the operation's lease was lost")]
    LeaseLost,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value no longer parses as its domain type (written by hand, or by a version
    /// of Berth with other rules).
    #[error("the stored {column} does not parse: {message}")]
    Corrupt {
        column: &'static str,
        message: String,
    },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, error: domain::ParseError) -> Self {
        StoreError::Corrupt {
            column,
            message: error.message,
        }
    }

    /// Turns a unique-constraint violation into [`StoreError::Taken`] naming `what`.
    pub(crate) fn unique_as(error: sqlx::Error, what: &'static str) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Taken { what },
            _ => StoreError::Database(error),
        }
    }
}
