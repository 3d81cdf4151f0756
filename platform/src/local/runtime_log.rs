//! An app's runtime log: what its releases print, and what the supervisor says about them
//! (exits, restarts). Each release's monitor appends its lines to `<dir>/logs/app-<id>.log`
//! (the old and the new release of a switch both write to it for a moment); Berth reads the
//! file's tail for the app page ([`read_last`]). Lines are cut at
//! [`crate::output::MAX_LINE_BYTES`], and the file is rotated at [`MAX_FILE_BYTES`] (one
//! previous file kept, `app-<id>.log.1`), so an app that floods its output uses at most
//! twice that on disk.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

/// How much of each file [`read_last`] reads.
const REFILL_BYTES: u64 = 256 * 1024;
/// The size at which the log file is rotated.
pub(crate) const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Where one release's monitor writes the app's runtime log.
pub(crate) struct RuntimeLog {
    file: Mutex<Option<LogFile>>,
}

struct LogFile {
    file: File,
    path: PathBuf,
    size: u64,
    /// The file's inode: another release's monitor may rotate the file under this one.
    inode: u64,
}

impl LogFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let metadata = file.metadata()?;
        Ok(Self {
            file,
            path: path.to_owned(),
            size: metadata.len(),
            inode: metadata.ino(),
        })
    }

    fn append(&mut self, line: &str) {
        use std::os::unix::fs::MetadataExt;
        // Follow a rotation made by another writer (and learn its size).
        match fs::metadata(&self.path) {
            Ok(metadata) if metadata.ino() == self.inode => self.size = metadata.len(),
            _ => {
                if let Ok(reopened) = Self::open(&self.path) {
                    *self = reopened;
                }
            }
        }
        let length = line.len() as u64 + 1;
        if self.size > 0 && self.size + length > MAX_FILE_BYTES {
            if let Err(e) = self.rotate() {
                tracing::warn!(path = %self.path.display(), error = %e, "the runtime log file cannot be rotated");
                return;
            }
        }
        if writeln!(self.file, "{line}").is_ok() {
            self.size += length;
        }
    }

    /// `app-<id>.log` becomes `app-<id>.log.1` (replacing the older one); a new file starts.
    fn rotate(&mut self) -> std::io::Result<()> {
        let mut previous = self.path.clone().into_os_string();
        previous.push(".1");
        fs::rename(&self.path, previous)?;
        *self = Self::open(&self.path)?;
        Ok(())
    }
}

impl RuntimeLog {
    /// Opens (or creates) the log file at `path`. A file that cannot be opened leaves the
    /// release without a log: losing the file must not stop the app.
    pub fn open(path: &Path) -> Self {
        let file = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| LogFile::open(path));
        if let Err(e) = &file {
            tracing::warn!(path = %path.display(), error = %e, "the runtime log file cannot be written");
        }
        Self {
            file: Mutex::new(file.ok()),
        }
    }

    pub fn push(&self, line: &str) {
        let line = crate::output::cut_line(line);
        if let Some(file) = self.file.lock().expect("runtime log file lock").as_mut() {
            file.append(&line);
        }
    }
}

/// The last `n` lines of the runtime log at `path` (and of its rotated predecessor when the
/// current file holds fewer), oldest first; reads at most [`REFILL_BYTES`] of each file.
pub(crate) fn read_last(path: &Path, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = read_tail(path)
        .map(|tail| tail.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    if lines.len() < n {
        let mut previous = path.as_os_str().to_owned();
        previous.push(".1");
        if let Ok(tail) = read_tail(Path::new(&previous)) {
            let mut older: Vec<String> = tail.lines().map(str::to_owned).collect();
            older.append(&mut lines);
            lines = older;
        }
    }
    let skip = lines.len().saturating_sub(n);
    lines.drain(..skip);
    lines
}

/// The file's last [`REFILL_BYTES`], without the partial line they start in.
fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    let start = length.saturating_sub(REFILL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(if start > 0 {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default()
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_and_refills_them_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/app-1.log");
        let log = RuntimeLog::open(&path);
        for i in 0..1005 {
            log.push(&format!("line {i}"));
        }
        assert_eq!(read_last(&path, 2), ["line 1003", "line 1004"]);
        assert_eq!(read_last(&path, 1000).len(), 1000);
        drop(log);

        let reopened = RuntimeLog::open(&path);
        reopened.push("after restart");
        assert_eq!(read_last(&path, 2), ["line 1004", "after restart"]);
    }

    #[test]
    fn two_writers_share_the_file_and_its_rotation_and_readers_see_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/app-1.log");
        let old = RuntimeLog::open(&path);
        let new = RuntimeLog::open(&path);
        old.push("old release");
        new.push("new release");
        assert_eq!(read_last(&path, 5), ["old release", "new release"]);
        // Each writes 8 KiB lines until well past one rotation between them.
        let line = "r".repeat(8 * 1024);
        for i in 0..1500 {
            if i % 2 == 0 {
                old.push(&line)
            } else {
                new.push(&line)
            }
        }
        old.push("old's last");
        new.push("new's last");
        assert!(fs::metadata(&path).unwrap().len() <= MAX_FILE_BYTES);
        assert_eq!(read_last(&path, 2), ["old's last", "new's last"]);
        let mut previous = path.clone().into_os_string();
        previous.push(".1");
        assert!(fs::metadata(&previous).unwrap().len() <= MAX_FILE_BYTES);
        // Right after a rotation, the lines come from the previous file too.
        fs::rename(&path, &previous).unwrap();
        new.push("first of a new file");
        assert_eq!(read_last(&path, 2), ["new's last", "first of a new file"]);
        assert_eq!(
            read_last(dir.path().join("nothing").as_path(), 3),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_flood_is_cut_into_lines_and_the_file_rotated_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/app-1.log");
        let previous = dir.path().join("logs/app-1.log.1");
        let log = RuntimeLog::open(&path);
        let huge = "z".repeat(1024 * 1024);
        log.push(&huge);
        let kept = &read_last(&path, 1)[0];
        assert!(kept.ends_with(crate::output::CUT_MARKER), "{}", kept.len());
        assert!(kept.len() < 9 * 1024);
        // 30 MiB of output (3,000 lines of 10 KiB, each cut to 8 KiB).
        let line = "f".repeat(10 * 1024);
        for _ in 0..3000 {
            log.push(&line);
        }
        log.push("the end");
        let current = fs::metadata(&path).unwrap().len();
        let older = fs::metadata(&previous).unwrap().len();
        assert!(current <= MAX_FILE_BYTES, "{current}");
        assert!(older <= MAX_FILE_BYTES, "{older}");
        assert!(fs::read_to_string(&path).unwrap().ends_with("the end\n"));
        drop(log);
        // Reopened after a restart, it goes on from the current file's size.
        let reopened = RuntimeLog::open(&path);
        assert_eq!(read_last(&path, 1), ["the end"]);
        for _ in 0..2000 {
            reopened.push(&line);
        }
        assert!(fs::metadata(&path).unwrap().len() <= MAX_FILE_BYTES);
    }
}
