//! `berth` subcommands: serve (the default), migrate, and bootstrap without a browser.

use crate::{config::Settings, startup, telemetry, Application};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use domain::{ApiTokenName, Email, NewPassword, TeamHandle, TeamName};
use std::io::Read;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "Berth: a self-hosted deploy console")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the web console and API (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user who owns a new team. The password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// The new team's handle (lower-case letters, digits, hyphens).
        #[arg(long)]
        team: String,
        /// The team's display name (default: the handle).
        #[arg(long)]
        team_name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user and print it (it is shown only this once).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env().map_err(|e| anyhow::anyhow!("invalid setting {e}"))?;
    telemetry::init(&settings.log_format, &settings.log_filter);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => {
            startup::open_store(&settings).await?;
            println!("Database is up to date.");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    team,
                    team_name,
                },
        } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let handle = TeamHandle::parse(&team).map_err(|e| anyhow::anyhow!("--team: {e}"))?;
            let name = TeamName::parse(team_name.as_deref().unwrap_or(&team))
                .map_err(|e| anyhow::anyhow!("--team-name: {e}"))?;
            let password = read_password()?;
            let store = startup::open_store(&settings).await?;
            let hash = store::passwords::hash(&password)?;
            let result = store
                .create_account(store::NewAccount {
                    email: &email,
                    password_hash: &hash,
                    team_handle: &handle,
                    team_name: &name,
                })
                .await;
            match result {
                Ok((user, _)) => {
                    println!(
                        "Created {} (user {}) owning team {handle}.",
                        user.email, user.id
                    );
                    Ok(())
                }
                Err(store::StoreError::Taken { what: "email" }) => {
                    bail!("--email: {email} already has an account")
                }
                Err(store::StoreError::Taken { what: "handle" }) => {
                    bail!("--team: the handle {handle} is taken")
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Token {
            command: TokenCommand::Create { email, name },
        } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let name = ApiTokenName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let store = startup::open_store(&settings).await?;
            let user = store
                .user_by_email(&email)
                .await?
                .with_context(|| format!("--email: no user {email}"))?;
            let token = store.create_api_token(user.id, &name).await?;
            println!("{}", token.secret);
            Ok(())
        }
    }
}

/// The password from standard input: the first line, without its line ending. Reading it
/// from stdin keeps it out of the process list and shell history.
fn read_password() -> anyhow::Result<NewPassword> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let line = input.lines().next().unwrap_or("");
    NewPassword::parse(line).map_err(|e| anyhow::anyhow!("password (stdin): {e}"))
}
