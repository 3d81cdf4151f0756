//! An app's runtime log: what its releases print, and what the supervisor says about them
//! (exits, restarts). The recent lines are kept in memory for the app page; every line is
//! also appended to `<dir>/logs/app-<id>.log`, which outlives Berth restarts and from whose
//! tail the memory is refilled.

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
    sync::Mutex,
};

/// How many lines the app page can show.
pub(crate) const KEPT_LINES: usize = 1000;
/// How much of the file is read back at start-up to refill the memory.
const REFILL_BYTES: u64 = 256 * 1024;

pub(crate) struct RuntimeLog {
    recent: Mutex<VecDeque<String>>,
    file: Mutex<Option<File>>,
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
            .and_then(|()| OpenOptions::new().create(true).append(true).open(path));
        if let Err(e) = &file {
            tracing::warn!(path = %path.display(), error = %e, "the runtime log file cannot be written");
        }
        Self {
            recent: Mutex::new(recent),
            file: Mutex::new(file.ok()),
        }
    }

    pub fn push(&self, line: &str) {
        push_bounded(
            &mut self.recent.lock().expect("runtime log lock"),
            line.to_owned(),
        );
        if let Some(file) = self.file.lock().expect("runtime log file lock").as_mut() {
            let _ = writeln!(file, "{line}");
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
}
