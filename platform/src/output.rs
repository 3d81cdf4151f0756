//! Limits on what Berth keeps of a program's output (a build, a release, git): an app can
//! print anything, as fast as it likes, and none of it may exhaust Berth's memory, database
//! or disk. A line is cut at [`MAX_LINE_BYTES`] — already while it is read, so a program
//! that never prints a newline is read in bounded pieces too.

use std::borrow::Cow;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The longest line kept of any output; the rest of the line is dropped and the kept part
/// ends with [`CUT_MARKER`].
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Ends a line that was cut at [`MAX_LINE_BYTES`].
pub const CUT_MARKER: &str = " [… line cut: longer than 8 KiB]";

/// `line`, cut at [`MAX_LINE_BYTES`] (on a character boundary) with [`CUT_MARKER`] when it
/// is longer.
pub fn cut_line(line: &str) -> Cow<'_, str> {
    if line.len() <= MAX_LINE_BYTES {
        return Cow::Borrowed(line);
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{CUT_MARKER}", &line[..end]))
}

/// Reads `stream` line by line (lossy UTF-8, without `\r\n`), each line cut at
/// [`MAX_LINE_BYTES`], and calls `line` with each until EOF or until it answers false. At
/// most [`MAX_LINE_BYTES`] plus the reader's buffer are held, however long a line is.
pub async fn read_lines(
    stream: impl AsyncRead + Unpin,
    mut line: impl FnMut(String) -> bool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut current: Vec<u8> = Vec::new();
    let mut cut = false;
    let finish = |current: &mut Vec<u8>, cut: &mut bool| {
        let text = String::from_utf8_lossy(current);
        let mut text = text.trim_end_matches('\r').to_owned();
        if *cut {
            // The kept bytes may end inside a character: lossy decoding made it U+FFFD.
            text.push_str(CUT_MARKER);
        }
        current.clear();
        *cut = false;
        text
    };
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            break;
        }
        let newline = buffer.iter().position(|&b| b == b'\n');
        let piece = &buffer[..newline.unwrap_or(buffer.len())];
        if !cut {
            let room = MAX_LINE_BYTES - current.len();
            current.extend_from_slice(&piece[..piece.len().min(room)]);
            cut = piece.len() > room;
        }
        let used = piece.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() && !line(finish(&mut current, &mut cut)) {
            return Ok(());
        }
    }
    if !current.is_empty() || cut {
        line(finish(&mut current, &mut cut));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        read_lines(input, |line| {
            lines.push(line);
            true
        })
        .await
        .unwrap();
        lines
    }

    #[tokio::test]
    async fn a_huge_line_is_cut_and_the_next_line_is_whole() {
        let mut input = vec![b'x'; 5 * MAX_LINE_BYTES];
        input.extend_from_slice(b"\r\nnext\nlast without newline");
        let lines = lines_of(&input).await;
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES + CUT_MARKER.len());
        assert!(lines[0].ends_with(CUT_MARKER));
        assert_eq!(lines[1], "next");
        assert_eq!(lines[2], "last without newline");
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_kept_whole() {
        let mut input = vec![b'y'; MAX_LINE_BYTES];
        input.push(b'\n');
        let lines = lines_of(&input).await;
        assert_eq!(lines, ["y".repeat(MAX_LINE_BYTES)]);
    }

    #[test]
    fn cutting_respects_characters() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let cut = cut_line(&line);
        assert!(cut.ends_with(CUT_MARKER));
        assert!(cut.len() <= MAX_LINE_BYTES + CUT_MARKER.len());
        assert_eq!(cut_line("short"), "short");
    }
}
