//! Turns Dockerfile text into instructions the way BuildKit's parser does: parser directives
//! at the top, comments and blank lines skipped, lines joined at the escape character, and
//! heredoc bodies passed over so that a `FROM` inside one is not taken for an instruction.

use crate::error::{DockerfileError, ErrorKind};

/// One instruction, its continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction's name as written (`FROM`, `from`, ...).
    pub keyword: String,
    /// Everything after the name, continuation characters removed.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instructions {
    /// The escape character: `\` unless a `# escape=` directive says `` ` ``.
    pub escape: char,
    pub list: Vec<Instruction>,
    /// Number of lines in the file (at least 1), for errors about the file as a whole.
    pub last_line: usize,
}

/// The largest Dockerfile Berth reads. Real ones are a few KiB; the file comes from the
/// user's repository and is read whole, so a bound keeps one deploy from holding the server.
pub const MAX_DOCKERFILE_BYTES: usize = 1024 * 1024;

pub(crate) fn read(text: &str) -> Result<Instructions, DockerfileError> {
    if text.len() > MAX_DOCKERFILE_BYTES {
        return Err(DockerfileError::new(
            1,
            ErrorKind::TooLarge {
                size: text.len(),
                limit: MAX_DOCKERFILE_BYTES,
            },
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut directives = Directives::default();
    let mut list = Vec::new();
    let mut next = 0;

    while next < lines.len() {
        let start = next + 1;
        let first = lines[next].trim_start();
        next += 1;
        if directives.read(first, start)? {
            continue;
        }
        if first.is_empty() || first.starts_with('#') {
            continue;
        }

        let escape = directives.escape;
        let (part, mut continues) = strip_continuation(first, escape);
        let mut joined = part.to_owned();
        while continues && next < lines.len() {
            let line = lines[next];
            next += 1;
            let trimmed = line.trim_start();
            // Docker skips comments and blank lines inside a continued instruction.
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (part, more) = strip_continuation(line, escape);
            joined.push_str(part);
            continues = more;
        }

        let trimmed = joined.trim();
        if trimmed.is_empty() {
            // A lone escape character: nothing to run.
            continue;
        }
        let (keyword, arguments) = match trimmed.split_once(char::is_whitespace) {
            Some((keyword, rest)) => (keyword, rest.trim_start()),
            None => (trimmed, ""),
        };
        let instruction = Instruction {
            line: start,
            keyword: keyword.to_owned(),
            arguments: arguments.to_owned(),
        };
        if can_contain_heredoc(keyword) {
            for heredoc in heredocs(arguments) {
                next = skip_heredoc_body(&lines, next, &heredoc);
            }
        }
        list.push(instruction);
    }

    Ok(Instructions {
        escape: directives.escape,
        list,
        last_line: lines.len().max(1),
    })
}

/// Removes a trailing escape character (and any spaces or tabs after it), which continues the
/// instruction on the next line.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let end = line.trim_end_matches([' ', '\t']);
    match end.strip_suffix(escape) {
        Some(joined) => (joined, true),
        None => (line, false),
    }
}

/// Parser directives (`# escape=`` ` ``, `# syntax=...`, `# check=...`) count only in the
/// comment lines at the very top; the first other line ends them.
struct Directives {
    escape: char,
    seen: Vec<String>,
    done: bool,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            escape: '\\',
            seen: Vec::new(),
            done: false,
        }
    }
}

const KNOWN_DIRECTIVES: [&str; 3] = ["escape", "syntax", "check"];

impl Directives {
    /// Whether `line` (left-trimmed) was a directive.
    fn read(&mut self, line: &str, line_number: usize) -> Result<bool, DockerfileError> {
        if self.done {
            return Ok(false);
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(false);
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN_DIRECTIVES.contains(&name.as_str()) {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&name) {
            return Err(DockerfileError::new(
                line_number,
                ErrorKind::DuplicateDirective { name },
            ));
        }
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(DockerfileError::new(
                        line_number,
                        ErrorKind::InvalidEscape {
                            value: value.to_owned(),
                        },
                    ))
                }
            };
        }
        self.seen.push(name);
        Ok(true)
    }
}

/// `#` name `=` value, with optional spaces or tabs around each part.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let name_end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let name = &rest[..name_end];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[name_end..]
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?
        .trim_matches([' ', '\t']);
    (!value.is_empty()).then_some((name, value))
}

fn can_contain_heredoc(keyword: &str) -> bool {
    ["run", "copy", "add"]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Heredoc {
    terminator: String,
    /// `<<-`: the terminator (and body) may be indented with tabs.
    strip_tabs: bool,
}

/// The heredocs an instruction opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`), in order.
fn heredocs(arguments: &str) -> Vec<Heredoc> {
    arguments
        .split_whitespace()
        .filter_map(|word| {
            let marker = word.trim_start_matches(|c: char| c.is_ascii_digit());
            let rest = marker.strip_prefix("<<")?;
            let (strip_tabs, rest) = match rest.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, rest),
            };
            let terminator = unquote(rest);
            if terminator.is_empty() || terminator.contains('<') {
                return None;
            }
            Some(Heredoc {
                terminator: terminator.to_owned(),
                strip_tabs,
            })
        })
        .collect()
}

fn unquote(word: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = word.strip_prefix(quote).and_then(|w| w.strip_suffix(quote)) {
            return inner;
        }
    }
    word
}

/// The index of the line after the heredoc's terminator (or the end of the file).
fn skip_heredoc_body(lines: &[&str], mut next: usize, heredoc: &Heredoc) -> usize {
    while next < lines.len() {
        let line = lines[next];
        next += 1;
        let line = if heredoc.strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        if line == heredoc.terminator {
            break;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(text: &str) -> Vec<(usize, String, String)> {
        read(text)
            .unwrap()
            .list
            .into_iter()
            .map(|i| (i.line, i.keyword, i.arguments))
            .collect()
    }

    fn owned(line: usize, keyword: &str, arguments: &str) -> (usize, String, String) {
        (line, keyword.to_owned(), arguments.to_owned())
    }

    #[test]
    fn continuation_lines_are_joined_and_keep_the_start_line() {
        let text = "# comment\n\nFROM \\\n  alpine \\\n  AS base\nRUN true\n";
        assert_eq!(
            keywords(text),
            vec![
                owned(3, "FROM", "alpine   AS base"),
                owned(6, "RUN", "true")
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_inside_a_continuation_are_skipped() {
        let text = "RUN a \\\n# note\n\n   \n  # indented note\n b\nFROM x";
        assert_eq!(
            keywords(text),
            vec![owned(1, "RUN", "a  b"), owned(7, "FROM", "x")]
        );
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let text = "# escape=`\nFROM `\n alpine\nRUN dir C:\\\nFROM b";
        let read = read(text).unwrap();
        assert_eq!(read.escape, '`');
        assert_eq!(read.list[0].arguments, "alpine");
        assert_eq!(read.list[1].arguments, "dir C:\\");
        assert_eq!(read.list[2].line, 5);
    }

    #[test]
    fn directives_count_only_before_anything_else() {
        let text = "# syntax=docker/dockerfile:1\n#escape = `\n\n# escape=\\\nFROM a `\n b";
        let read = read(text).unwrap();
        assert_eq!(read.escape, '`');
        assert_eq!(read.list[0].arguments, "a  b");

        let after_comment = "# hello\n# escape=`\nFROM a `\nb";
        assert_eq!(read_escape(after_comment), '\\');
        let unknown_first = "# foo=bar\n# escape=`\nFROM a";
        assert_eq!(read_escape(unknown_first), '\\');
    }

    fn read_escape(text: &str) -> char {
        read(text).unwrap().escape
    }

    #[test]
    fn bad_and_repeated_directives_are_errors() {
        let err = read("# escape=x\nFROM a").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(matches!(err.kind, ErrorKind::InvalidEscape { .. }));
        let err = read("# escape=`\n# ESCAPE=\\\nFROM a").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(
            err.kind,
            ErrorKind::DuplicateDirective {
                name: "escape".into()
            }
        );
    }

    #[test]
    fn heredoc_bodies_are_not_instructions() {
        let text = "FROM a\nRUN <<EOF cat > x\nFROM evil\nEOF\nCOPY <<-'ONE' 3<<TWO /dst/\n\tFROM no\n\tONE\nFROM also-no\nTWO\nFROM b\n";
        assert_eq!(
            keywords(text),
            vec![
                owned(1, "FROM", "a"),
                owned(2, "RUN", "<<EOF cat > x"),
                owned(5, "COPY", "<<-'ONE' 3<<TWO /dst/"),
                owned(10, "FROM", "b"),
            ]
        );
    }

    #[test]
    fn shift_operators_and_quoted_markers_are_not_heredocs() {
        assert!(heredocs("echo $((1<<2)) '<<EOF' \"<<X\" a<<b").is_empty());
        assert!(heredocs("<< <<<x").is_empty());
    }

    #[test]
    fn windows_line_endings_and_a_byte_order_mark_are_accepted() {
        let text = "\u{feff}FROM a \\\r\n  AS b\r\nFROM c\r\n";
        assert_eq!(
            keywords(text),
            vec![owned(1, "FROM", "a   AS b"), owned(3, "FROM", "c")]
        );
    }
}
