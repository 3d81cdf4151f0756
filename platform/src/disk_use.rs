//! What a file or directory takes on disk, as `du` counts it.

use std::{collections::HashSet, fs, io, os::unix::fs::MetadataExt, path::Path};

/// What `path` takes on disk (allocated blocks, as `du` counts them), a file hard-linked
/// several times counted once. Symbolic links are not followed.
pub(crate) fn disk_bytes(path: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut pending = vec![path.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = match fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            // Removed while we walk (a pull finishing, a log rotating): not there any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if metadata.nlink() > 1
            && !metadata.is_dir()
            && !seen.insert((metadata.dev(), metadata.ino()))
        {
            continue;
        }
        total += metadata.blocks() * 512;
        if metadata.is_dir() {
            match fs::read_dir(&path) {
                Ok(entries) => pending.extend(entries.filter_map(Result::ok).map(|e| e.path())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_linked_file_takes_its_blocks_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), vec![b'x'; 1 << 20]).unwrap();
        let once = disk_bytes(dir.path()).unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        assert_eq!(disk_bytes(dir.path()).unwrap(), once);
        assert!(once >= 1 << 20, "{once}");
    }
}
