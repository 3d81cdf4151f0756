//! The store's rules, each proven on SQLite and on PostgreSQL (see `on_both_backends!`).
//!
//! PostgreSQL: the server in `BERTH_TEST_DATABASE_URL` when set, otherwise a throwaway
//! cluster started once for this test binary (see the `testdb` crate).

#[macro_use]
mod support;

mod accounts;
mod apps;
mod credentials;
mod deploy_keys;
mod invites;
mod kept_images;
mod operations;
mod schema;
mod secrets;
mod sessions;
mod sign_in_throttle;
mod sign_ups;
mod teams;
mod tokens;
