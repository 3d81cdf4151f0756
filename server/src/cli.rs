//! `berth` subcommands: serve (the default), migrate, back up and restore, and bootstrap
//! without a browser.

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
    /// Make a new master key current and re-seal every stored secret with it. With a key
    /// file (the default), the new key is written at the top of the file and the old ones are
    /// kept below it until `--retire-old-keys`. With BERTH_MASTER_KEY, first put the new key
    /// in front of the old one on every instance, then run this to re-seal.
    RotateKey {
        /// After re-sealing, remove the old keys from the key file.
        #[arg(long)]
        retire_old_keys: bool,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a consistent copy of the database to PATH, while Berth serves (SQLite; with
    /// PostgreSQL, use pg_dump). Secrets stay sealed: reading them needs the master key,
    /// which is not in the backup.
    Backup {
        /// The new backup file (never overwritten).
        path: std::path::PathBuf,
    },
    /// Replace the database with a backup made by `berth backup`, while Berth is stopped.
    /// The backup is checked first, and the database it replaces is kept beside it.
    Restore {
        /// The backup file.
        path: std::path::PathBuf,
    },
    /// Stop every release the local engine runs on this data dir (releases keep serving
    /// when Berth stops; this is for emptying a host), while Berth is stopped. The next
    /// `berth serve` starts every app's current release again.
    StopReleases,
    /// Deploy an app from a pipeline, over the JSON API of the Berth at BERTH_URL with the
    /// API token in BERTH_TOKEN, and follow the deploy to its end (exit status 1 when it
    /// fails): `berth deploy --app web --docker-image registry.example.com/web:1.4`.
    Deploy(crate::client::DeployArgs),
    /// Set configuration variables (KEY=VALUE) over the JSON API, and follow the restart.
    #[command(name = "config:set")]
    ConfigSet(crate::client::ConfigSetArgs),
    /// Remove configuration variables over the JSON API, and follow the restart.
    #[command(name = "config:unset")]
    ConfigUnset(crate::client::ConfigUnsetArgs),
    /// Print an operation's log as it is written, until it ends (exit status 1 when it fails).
    #[command(name = "operation:follow")]
    OperationFollow(crate::client::FollowArgs),
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
    /// Let a user sign in again after too many failed sign-ins: forgets the account's failed
    /// attempts from every address.
    Unlock {
        #[arg(long)]
        email: String,
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
    // The API's client commands need neither this server's settings nor its logging.
    let command = match cli.command {
        Some(Command::Deploy(args)) => return crate::client::deploy(args).await,
        Some(Command::ConfigSet(args)) => return crate::client::config_set(args).await,
        Some(Command::ConfigUnset(args)) => return crate::client::config_unset(args).await,
        Some(Command::OperationFollow(args)) => return crate::client::operation_follow(args).await,
        command => command,
    };
    let settings = Settings::from_env().map_err(|e| anyhow::anyhow!("invalid setting {e}"))?;
    telemetry::init(&settings.log_format, &settings.log_filter);
    match command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // A restore waits until no Berth serves from this data dir.
            let _serving = crate::backup::hold_while_serving(&settings)?;
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Backup { path } => crate::backup::backup(&settings, &path).await,
        Command::Restore { path } => crate::backup::restore(&settings, &path).await,
        Command::StopReleases => {
            let _lock = crate::backup::hold_alone(
                &settings,
                "it would start the releases again as soon as they stop",
            )?;
            let platform = startup::open_platform(&settings).await?;
            platform.shutdown().await;
            println!("Every release on this server is stopped.");
            Ok(())
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
            let result =
                service::accounts::create_account(&store, &email, &password, &handle, &name).await;
            match result {
                Ok(user) => {
                    println!(
                        "Created {} (user {}) owning team {handle}.",
                        user.email, user.id
                    );
                    Ok(())
                }
                Err(error) => match error.refusal().and_then(views::AppError::field) {
                    Some("email") => bail!("--email: {email} already has an account"),
                    Some("handle") => bail!("--team: the handle {handle} is taken"),
                    _ => Err(anyhow::anyhow!("{error}")),
                },
            }
        }
        Command::User {
            command: UserCommand::Unlock { email },
        } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let store = startup::open_store(&settings).await?;
            let forgotten = service::accounts::unlock(&store, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Unlocked {email}: forgot {forgotten} failed sign-in(s).");
            Ok(())
        }
        Command::RotateKey { retire_old_keys } => rotate_key(&settings, retire_old_keys).await,
        Command::Deploy(_)
        | Command::ConfigSet(_)
        | Command::ConfigUnset(_)
        | Command::OperationFollow(_) => unreachable!("the client commands ran above"),
        Command::Token {
            command: TokenCommand::Create { email, name },
        } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let name = ApiTokenName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let store = startup::open_store(&settings).await?;
            let token = service::accounts::create_token_for(&store, &email, name.as_str())
                .await
                .map_err(|e| match e.refusal().and_then(views::AppError::field) {
                    Some("email") => anyhow::anyhow!("--email: no user {email}"),
                    _ => anyhow::anyhow!("{e}"),
                })?;
            println!("{token}");
            Ok(())
        }
    }
}

async fn rotate_key(settings: &Settings, retire_old_keys: bool) -> anyhow::Result<()> {
    use crate::config::MasterKeySource;
    let store = startup::open_store(settings).await?;
    let keyring = startup::open_keyring(settings, &store).await?;
    let path = match &settings.master_key {
        MasterKeySource::File(path) | MasterKeySource::Generated(path) => Some(path.clone()),
        MasterKeySource::Env(_) => None,
    };
    let keyring = match &path {
        Some(path) => {
            let rotated = keyring.rotated();
            // The file gets the new key before any secret uses it, so a crash in between
            // leaves every secret openable.
            rotated
                .write_to(path)
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "New master key {} written to {}.",
                rotated.current().id(),
                path.display()
            );
            rotated
        }
        None => {
            println!(
                "Using BERTH_MASTER_KEY's first key ({}) as the current key.",
                keyring.current().id()
            );
            keyring
        }
    };
    let count = service::secrets::reseal_all(&store, &keyring)
        .await
        .map_err(|e| anyhow::anyhow!("re-sealing the stored secrets failed: {e}"))?;
    println!(
        "Re-sealed {count} secret(s) with key {}.",
        keyring.current().id()
    );
    if retire_old_keys {
        let Some(path) = path else {
            bail!("--retire-old-keys: the keys come from BERTH_MASTER_KEY; remove old keys from it yourself");
        };
        let only_current = vault::Keyring::parse(&keyring.current().to_base64(), "key file")?;
        only_current.write_to(&path)?;
        println!("Old keys removed from {}.", path.display());
    }
    Ok(())
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
