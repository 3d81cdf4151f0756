//! `berth backup PATH` and `berth restore PATH`: a consistent copy of the SQLite database
//! taken while Berth serves, and putting one back while Berth is stopped. With PostgreSQL
//! both point to `pg_dump` / `pg_restore`.
//!
//! A backup holds every secret sealed, never in plaintext: reading them needs the master key,
//! which is not in the backup and must be kept apart from it.

use crate::{config::Settings, startup};
use anyhow::{bail, Context};
use std::{
    fs::File,
    path::{Path, PathBuf},
};

const PG_DUMP_HINT: &str = "With PostgreSQL, back up with PostgreSQL's own tools while Berth serves: \
     pg_dump --format=custom --file berth.dump \"$DATABASE_URL\" (restore with \
     pg_restore --clean --if-exists --no-owner --dbname \"$DATABASE_URL\" berth.dump while Berth is stopped). \
     Keep the master key apart from the dump: it is needed to read the secrets in it.";

/// The data dir, for a command that must not run beside `berth serve` (`why` it must not).
pub fn hold_alone(settings: &Settings, why: &str) -> anyhow::Result<File> {
    let lock = lock_file(settings)?;
    if lock.try_lock().is_err() {
        bail!(
            "Berth is running on {}: stop it first ({why})",
            settings.data_dir.display()
        );
    }
    Ok(lock)
}

/// Who holds the data dir: every `berth serve` holds this lock shared; a restore needs it
/// alone. The lock goes with the process, however it ends.
pub struct DataDirLock {
    _file: File,
}

fn lock_file(settings: &Settings) -> anyhow::Result<File> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "BERTH_DATA_DIR: cannot create {}",
            settings.data_dir.display()
        )
    })?;
    let path = settings.data_dir.join("berth.lock");
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Taken by `berth serve` for as long as it runs.
pub fn hold_while_serving(settings: &Settings) -> anyhow::Result<DataDirLock> {
    let file = lock_file(settings)?;
    file.lock_shared()
        .context("cannot lock the data dir's berth.lock")?;
    Ok(DataDirLock { _file: file })
}

/// The SQLite file of a `sqlite://PATH[?options]` URL.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Writes a consistent copy of the database to `target` while Berth may be serving.
pub async fn backup(settings: &Settings, target: &Path) -> anyhow::Result<()> {
    if sqlite_file(&settings.database_url).is_none() {
        bail!("{PG_DUMP_HINT}");
    }
    if target.exists() {
        bail!(
            "{} exists already; give a new file name (a backup never overwrites)",
            target.display()
        );
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!("{} is not a directory", parent.display());
    }
    let name = target
        .file_name()
        .context("give the backup a file name, e.g. berth-2026-12-02.db")?;
    let partial = parent.join(format!(".{}.partial", name.to_string_lossy()));
    let _ = std::fs::remove_file(&partial);
    let store = startup::open_store(settings).await?;
    let key_ids = store.secret_key_ids().await?;
    store
        .backup_into(&partial)
        .await
        .with_context(|| format!("writing the backup to {}", partial.display()))?;
    store.close().await;
    // Only Berth's user may read it (the secrets are sealed, the rest is not).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    }
    File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, target)
        .with_context(|| format!("moving the backup to {}", target.display()))?;
    let size = std::fs::metadata(target)?.len();
    println!(
        "Backed up the database to {} ({size} bytes), consistent as of now.",
        target.display()
    );
    if key_ids.is_empty() {
        println!("It holds no secrets.");
    } else {
        println!(
            "Its secrets are sealed with master key {}: keep that key (BERTH_MASTER_KEY, \
             BERTH_MASTER_KEY_FILE or master.key in the data dir) safe and apart from the backup; \
             without it the secrets cannot be read, and with both anyone can read them.",
            key_ids.join(", ")
        );
    }
    Ok(())
}

/// Replaces the database with the backup at `source`, once Berth is stopped: the backup is
/// checked (a sound SQLite file, a Berth database no newer than this Berth, its secrets
/// openable with the master keys given), brought up to date, and put in place; the database
/// it replaces is kept beside it.
pub async fn restore(settings: &Settings, source: &Path) -> anyhow::Result<()> {
    let Some(database) = sqlite_file(&settings.database_url) else {
        bail!("{PG_DUMP_HINT}");
    };
    if !source.is_file() {
        bail!("{} is not a file", source.display());
    }
    let lock = hold_alone(settings, "a restore replaces the database under it")?;
    let dir = match database.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let file_name = database
        .file_name()
        .context("the database URL names no file")?
        .to_string_lossy()
        .into_owned();
    let staged = dir.join(format!("{file_name}.restoring"));
    for leftover in sidecars(&staged) {
        let _ = std::fs::remove_file(leftover);
    }
    std::fs::copy(source, &staged)
        .with_context(|| format!("copying {} to {}", source.display(), staged.display()))?;
    let checked = check_and_migrate(settings, &staged, source).await;
    if let Err(error) = checked {
        for leftover in sidecars(&staged) {
            let _ = std::fs::remove_file(leftover);
        }
        return Err(error);
    }
    let kept = if database.exists() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let aside = dir.join(format!("{file_name}.before-restore-{stamp}"));
        for (from, to) in sidecars(&database).into_iter().zip(sidecars(&aside)) {
            if from.exists() {
                std::fs::rename(&from, &to)
                    .with_context(|| format!("moving {} aside", from.display()))?;
            }
        }
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&staged, &database)
        .with_context(|| format!("putting the backup in place at {}", database.display()))?;
    println!("Restored {} to {}.", source.display(), database.display());
    if let Some(aside) = kept {
        println!("The database it replaced is kept as {}.", aside.display());
    }
    drop(lock);
    Ok(())
}

/// A database file and its write-ahead log and shared-memory files.
fn sidecars(database: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        PathBuf::from(path)
    };
    [database.to_owned(), with("-wal"), with("-shm")]
}

async fn check_and_migrate(
    settings: &Settings,
    staged: &Path,
    source: &Path,
) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", staged.display());
    let store = store::Store::connect(&url)
        .await
        .with_context(|| format!("{} is not a database SQLite can open", source.display()))?;
    let result = async {
        let problems = store
            .integrity_problems()
            .await
            .with_context(|| format!("{} is not a SQLite database", source.display()))?;
        if !problems.is_empty() {
            bail!(
                "{} is damaged (SQLite's integrity check: {}); use another backup",
                source.display(),
                problems.join("; ")
            );
        }
        let applied = store.applied_migrations().await?;
        if applied.is_empty() {
            bail!("{} is not a Berth database (it has no Berth schema)", source.display());
        }
        let known = store.known_migrations();
        if let Some(newer) = applied.iter().find(|v| !known.contains(v)) {
            bail!(
                "{} was made by a newer Berth (schema version {newer}); restore it with that version or later",
                source.display()
            );
        }
        store.migrate().await.context("bringing the backup's schema up to date")?;
        // The same check as start-up: the master keys given must open every secret in it
        // (and a key file is never made up here).
        if let crate::config::MasterKeySource::Generated(path) = &settings.master_key {
                if !path.exists() {
                        bail!(
                                "{} is missing: put the master key the backup's secrets were sealed with there \
                                 (or give it in BERTH_MASTER_KEY / BERTH_MASTER_KEY_FILE) before restoring",
                                path.display()
                        );
                }
        }
        startup::open_keyring(settings, &store).await?;
        Ok(())
    }
    .await;
    store.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/berth.db"),
            Some(PathBuf::from("./data/berth.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/berth/berth.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/berth/berth.db"))
        );
        assert_eq!(sqlite_file("postgres://localhost/berth"), None);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }
}
