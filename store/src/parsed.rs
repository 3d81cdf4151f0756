//! Rows carry domain types, parsed once when they are read: a non-null text column with
//! `#[sqlx(try_from = "String")]`, a nullable one with `#[sqlx(try_from = "OptionalText")]`.
//! A value that no longer parses is a decode error naming its column, never a string that
//! code further up would have to check again.

use domain::{
    AppHandle, AptibleHandle, CommitId, ConfigKey, Digest, GitRefName, HealthPath, ImageReference,
    OperationKind, OperationStatus, ParseError, RegistryHost, RepositoryUrl,
};

/// A nullable text column, read as `Option<T>` for a domain type `T`.
pub struct OptionalText(Option<String>);

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for OptionalText
where
    Option<String>: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self(<Option<String> as sqlx::Decode<'r, DB>>::decode(
            value,
        )?))
    }
}

impl<DB: sqlx::Database> sqlx::Type<DB> for OptionalText
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

macro_rules! optional_from_text {
    ($($type:ty),+ $(,)?) => {
        $(
            impl TryFrom<OptionalText> for Option<$type> {
                type Error = ParseError;
                fn try_from(value: OptionalText) -> Result<Self, Self::Error> {
                    value.0.map(<$type>::try_from).transpose()
                }
            }
        )+
    };
}

optional_from_text!(
    AppHandle,
    AptibleHandle,
    CommitId,
    ConfigKey,
    Digest,
    GitRefName,
    HealthPath,
    ImageReference,
    OperationKind,
    OperationStatus,
    RegistryHost,
    RepositoryUrl,
);

/// A boolean read from JSON: `true`/`false`, or SQLite's `1`/`0` (SQLite has no boolean
/// type, and its JSON functions write a comparison's result as a number).
pub(crate) fn flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Number(i64),
    }
    match <Flag as serde::Deserialize>::deserialize(deserializer)? {
        Flag::Bool(value) => Ok(value),
        Flag::Number(0) => Ok(false),
        Flag::Number(1) => Ok(true),
        Flag::Number(other) => Err(serde::de::Error::custom(format!(
            "{other} is not a boolean (0 or 1)"
        ))),
    }
}
