//! An app's runtime log: what its releases print, and what the supervisor says about them
//! (exits, restarts). The recent lines are kept in memory for the app page; every line is
//! also appended to `<dir>/logs/app-<id>.log`, which outlives Berth restarts and from whose
//! tail the memory is refilled. Lines are cut at [`crate::output::MAX_LINE_BYTES`], and the
//! file is rotated at [`MAX_FILE_BYTES`] (one previous file kept, `app-<id>.log.1`), so an
//! app that floods its output uses at most twice that on disk.

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

/// How many lines the app page can show.
pub(crate) const KEPT_LINES: usize = 1000;
/// How much of the file is read back at start-up to refill the memory.
const REFILL_BYTES: u64 = 256 * 1024;
/// The size at which the log file is rotated.
pub(crate) const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

pub(crate) struct RuntimeLog {
    recent: Mutex<VecDeque<String>>,
    file: Mutex<Option<LogFile>>,
}

struct LogFile {
    file: File,
    path: PathBuf,
    size: u64,
}

impl LogFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            file,
            path: path.to_owned(),
            size,
        })
    }

    fn append(&mut self, line: &str) {
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
    /// log in memory only: losing the file must not stop the app.
    pub fn open(path: &Path) -> Self {
        let mut recent = VecDeque::new();
        if let Ok(tail) = read_tail(path) {
            for line in tail.lines() {
                push_bounded(&mut recent, line.to_owned());
            }
        }
        let file = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| LogFile::open(path));
        if let Err(e) = &file {
            tracing::warn!(path = %path.display(), error = %e, "the runtime log file cannot be written");
        }
        Self {
            recent: Mutex::new(recent),
            file: Mutex::new(file.ok()),
        }
    }

    pub fn push(&self, line: &str) {
        let line = crate::output::cut_line(line);
        push_bounded(
            &mut self.recent.lock().expect("runtime log lock"),
            line.clone().into_owned(),
        );
        if let Some(file) = self.file.lock().expect("runtime log file lock").as_mut() {
            file.append(&line);
        }
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        let recent = self.recent.lock().expect("runtime log lock");
        recent
            .iter()
            .skip(recent.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

fn push_bounded(lines: &mut VecDeque<String>, line: String) {
    if lines.len() == KEPT_LINES {
        lines.pop_front();
    }
    lines.push_back(line);
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
        for i in 0..(KEPT_LINES + 5) {
            log.push(&format!("line {i}"));
        }
        assert_eq!(log.last(2), ["line 1003", "line 1004"]);
        assert_eq!(log.last(usize::MAX).len(), KEPT_LINES);
        drop(log);

        let reopened = RuntimeLog::open(&path);
        assert_eq!(reopened.last(1), ["line 1004"]);
        reopened.push("after restart");
        assert_eq!(reopened.last(2), ["line 1004", "after restart"]);
    }

    #[test]
    fn a_flood_is_cut_into_lines_and_the_file_rotated_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/app-1.log");
        let previous = dir.path().join("logs/app-1.log.1");
        let log = RuntimeLog::open(&path);
        let huge = "z".repeat(1024 * 1024);
        log.push(&huge);
        let kept = &log.last(1)[0];
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
        assert_eq!(reopened.last(1), ["the end"]);
        for _ in 0..2000 {
            reopened.push(&line);
        }
        assert!(fs::metadata(&path).unwrap().len() <= MAX_FILE_BYTES);
    }
}
