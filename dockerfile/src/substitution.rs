//! ARG substitution in `FROM` lines and global `ARG` defaults, following the shell-like word
//! rules Docker applies there: quotes, the escape character, `$NAME`, `${NAME}`,
//! `${NAME:-default}`, `${NAME-default}`, `${NAME:+alternative}`, `${NAME+alternative}`,
//! `${NAME:?message}` and `${NAME?message}`.

use crate::error::{DockerfileError, ErrorKind};
use std::collections::BTreeMap;

/// The value of an ARG visible to `FROM` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArgValue {
    Set {
        text: String,
        /// Declared ARGs without a value that the default used; reported if an image built
        /// from this value turns out invalid.
        unset_args: Vec<String>,
    },
    /// Declared without a default and not given as a build arg.
    Unset,
    /// The default could not be substituted. Docker only fails when the ARG is used, so the
    /// error waits until a `FROM` line uses it.
    Invalid(DockerfileError),
}

pub(crate) type Args = BTreeMap<String, ArgValue>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    pub text: String,
    /// Declared ARGs without a value that were substituted as empty text.
    pub unset_args: Vec<String>,
    /// Every ARG whose value was substituted (set or not), in order of first use: what an
    /// error names instead of the substituted text, which may hold a secret build arg.
    pub used_args: Vec<String>,
}

/// The most text one word (an ARG default, a `FROM` image or its `--platform`) may expand
/// to. ARG defaults can reference earlier ARGs many times over, so a few hundred bytes of
/// Dockerfile could otherwise ask for gigabytes (`ARG B=$A$A$A…`, `ARG C=$B$B$B…`, …).
pub const MAX_EXPANSION: usize = 64 * 1024;

/// The most text all the substitutions of one Dockerfile may produce together, counting
/// what is thrown away (the default of a set ARG), so that the work stays bounded too.
pub const MAX_TOTAL_EXPANSION: usize = 1024 * 1024;

/// What the substitutions of one Dockerfile have produced so far.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    used: usize,
}

/// Substitutes `args` into `word`; errors point at `line`.
pub(crate) fn expand(
    word: &str,
    args: &Args,
    escape: char,
    line: usize,
    budget: &mut Budget,
) -> Result<Expanded, DockerfileError> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        position: 0,
        escape,
        args,
        line,
        unset_args: Vec::new(),
        used_args: Vec::new(),
        depth: 0,
        produced: 0,
        budget,
    };
    let text = lexer.word(None, true)?;
    Ok(Expanded {
        text,
        unset_args: lexer.unset_args,
        used_args: lexer.used_args,
    })
}

/// Splits ARG's arguments into words at unquoted white space, keeping quotes and escapes
/// for [`expand`] to interpret.
pub(crate) fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    word.extend(chars.next());
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                word.push(c);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == escape {
                    word.extend(chars.next());
                }
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

struct Lexer<'a> {
    chars: Vec<char>,
    position: usize,
    escape: char,
    args: &'a Args,
    line: usize,
    unset_args: Vec<String>,
    used_args: Vec<String>,
    /// How many `${NAME:-...}` words we are inside.
    depth: usize,
    /// Bytes this word's substitution has produced (kept or thrown away).
    produced: usize,
    budget: &'a mut Budget,
}

/// Nested `${A:-${B:-...}}` forms are read recursively; the Dockerfile comes from the user's
/// repository, and a deep enough nesting must be an error rather than a stack overflow in the
/// server.
const MAX_NESTING: usize = 32;

/// What a `${...}` form does with the word after its operator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operator {
    Default,
    Alternative,
    Required,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position += 1;
        Some(c)
    }

    fn error(&self, kind: ErrorKind) -> DockerfileError {
        DockerfileError::new(self.line, kind)
    }

    /// Appends `text` to `out`, unless that would take this word past [`MAX_EXPANSION`] or
    /// the Dockerfile past [`MAX_TOTAL_EXPANSION`]. Checked before anything is copied.
    fn emit(&mut self, out: &mut String, text: &str) -> Result<(), DockerfileError> {
        self.produced += text.len();
        self.budget.used += text.len();
        if self.produced > MAX_EXPANSION {
            return Err(self.error(ErrorKind::ExpansionTooLarge {
                limit: MAX_EXPANSION,
            }));
        }
        if self.budget.used > MAX_TOTAL_EXPANSION {
            return Err(self.error(ErrorKind::ExpansionsTooLarge {
                limit: MAX_TOTAL_EXPANSION,
            }));
        }
        out.push_str(text);
        Ok(())
    }

    fn emit_char(&mut self, out: &mut String, c: char) -> Result<(), DockerfileError> {
        self.emit(out, c.encode_utf8(&mut [0; 4]))
    }

    /// Reads up to `stop` (consumed) or the end. `live` is false inside a branch that will
    /// be thrown away (the default of a set ARG): it is read, but names it uses need not
    /// exist.
    fn word(&mut self, stop: Option<char>, live: bool) -> Result<String, DockerfileError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return match stop {
                    Some(_) => Err(self.error(ErrorKind::UnterminatedVariable)),
                    None => Ok(out),
                };
            };
            match c {
                _ if Some(c) == stop => return Ok(out),
                '\'' => self.single_quoted(&mut out)?,
                '"' => self.double_quoted(&mut out, live)?,
                '$' => self.dollar(&mut out, live)?,
                _ if c == self.escape => match self.bump() {
                    Some(next) => self.emit_char(&mut out, next)?,
                    None => self.emit_char(&mut out, c)?,
                },
                _ => self.emit_char(&mut out, c)?,
            }
        }
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), DockerfileError> {
        loop {
            match self.bump() {
                None => return Err(self.error(ErrorKind::UnterminatedQuote { quote: '\'' })),
                Some('\'') => return Ok(()),
                Some(c) => self.emit_char(out, c)?,
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String, live: bool) -> Result<(), DockerfileError> {
        loop {
            match self.bump() {
                None => return Err(self.error(ErrorKind::UnterminatedQuote { quote: '"' })),
                Some('"') => return Ok(()),
                Some('$') => self.dollar(out, live)?,
                Some(c) if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.position += 1;
                        self.emit_char(out, next)?;
                    }
                    _ => self.emit_char(out, c)?,
                },
                Some(c) => self.emit_char(out, c)?,
            }
        }
    }

    /// After a `$`.
    fn dollar(&mut self, out: &mut String, live: bool) -> Result<(), DockerfileError> {
        if self.peek() == Some('{') {
            self.position += 1;
            return self.braced(out, live);
        }
        let name = self.name();
        if name.is_empty() {
            // `$` not followed by a name is just a dollar sign.
            self.emit_char(out, '$')?;
            return Ok(());
        }
        if let Some(value) = self.lookup(&name, live)? {
            self.emit(out, value)?;
        }
        Ok(())
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            self.position += 1;
        }
        name
    }

    /// After `${`.
    fn braced(&mut self, out: &mut String, live: bool) -> Result<(), DockerfileError> {
        let start = self.position;
        let name = self.name();
        let (colon, operator) = match (self.peek(), self.chars.get(self.position + 1)) {
            (None, _) => return Err(self.error(ErrorKind::UnterminatedVariable)),
            (Some('}'), _) if !name.is_empty() => {
                self.position += 1;
                if let Some(value) = self.lookup(&name, live)? {
                    self.emit(out, value)?;
                }
                return Ok(());
            }
            (Some(':'), Some(c)) => (true, operator(*c)),
            (Some(c), _) => (false, operator(c)),
        };
        let Some(operator) = operator.filter(|_| !name.is_empty()) else {
            return Err(self.bad_substitution(start));
        };
        self.position += if colon { 2 } else { 1 };

        let value = self.value(&name, live)?;
        // With a colon, an empty value counts as unset (as in the shell).
        let null = match &value {
            None => true,
            Some(text) => colon && text.is_empty(),
        };
        let use_word = match operator {
            Operator::Default | Operator::Required => null,
            Operator::Alternative => !null,
        };
        if self.depth == MAX_NESTING {
            return Err(self.error(ErrorKind::NestedTooDeeply { limit: MAX_NESTING }));
        }
        self.depth += 1;
        let word_start = self.position;
        // What the word produced is charged already; pushing it on is not new work.
        let word = self.word(Some('}'), live && use_word)?;
        self.depth -= 1;
        match operator {
            Operator::Default if use_word => out.push_str(&word),
            Operator::Alternative if use_word => out.push_str(&word),
            Operator::Required if use_word && live => {
                // The message as written, not as substituted: substituted text may be a
                // secret build arg, and errors are shown to people.
                let written: String = self.chars[word_start..self.position - 1].iter().collect();
                return Err(self.error(ErrorKind::RequiredArg {
                    name,
                    message: written,
                }));
            }
            Operator::Alternative => {}
            _ => self.emit(out, value.unwrap_or_default())?,
        }
        Ok(())
    }

    fn bad_substitution(&mut self, start: usize) -> DockerfileError {
        match self.chars[start..].iter().position(|c| *c == '}') {
            Some(length) => {
                let inner: String = self.chars[start..start + length].iter().collect();
                self.error(ErrorKind::BadSubstitution {
                    expression: format!("${{{inner}}}"),
                })
            }
            None => self.error(ErrorKind::UnterminatedVariable),
        }
    }

    /// A plain `$NAME`: an unset ARG becomes empty text, remembered for error messages.
    fn lookup(&mut self, name: &str, live: bool) -> Result<Option<&'a str>, DockerfileError> {
        let value = self.value(name, live)?;
        if value.is_none() && live && !self.unset_args.iter().any(|n| n == name) {
            self.unset_args.push(name.to_owned());
        }
        Ok(value)
    }

    /// The ARG's value, borrowed: it is only copied when [`Self::emit`] has checked its size.
    fn value(&mut self, name: &str, live: bool) -> Result<Option<&'a str>, DockerfileError> {
        let args: &'a Args = self.args;
        if live && args.contains_key(name) && !self.used_args.iter().any(|n| n == name) {
            self.used_args.push(name.to_owned());
        }
        match args.get(name) {
            None if live => Err(self.error(ErrorKind::UndeclaredArg {
                name: name.to_owned(),
            })),
            None | Some(ArgValue::Unset) => Ok(None),
            Some(ArgValue::Invalid(error)) if live => Err(error.clone()),
            Some(ArgValue::Invalid(_)) => Ok(None),
            Some(ArgValue::Set { text, unset_args }) => {
                if live {
                    for name in unset_args {
                        if !self.unset_args.contains(name) {
                            self.unset_args.push(name.clone());
                        }
                    }
                }
                Ok(Some(text.as_str()))
            }
        }
    }
}

fn operator(c: char) -> Option<Operator> {
    match c {
        '-' => Some(Operator::Default),
        '+' => Some(Operator::Alternative),
        '?' => Some(Operator::Required),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, Option<&str>)]) -> Args {
        pairs
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Some(text) => ArgValue::Set {
                        text: (*text).to_owned(),
                        unset_args: Vec::new(),
                    },
                    None => ArgValue::Unset,
                };
                ((*name).to_owned(), value)
            })
            .collect()
    }

    fn expanded(word: &str) -> String {
        let args = args(&[("TAG", Some("20")), ("EMPTY", Some("")), ("NONE", None)]);
        expand(word, &args, '\\', 1, &mut Budget::default())
            .unwrap()
            .text
    }

    fn kind(word: &str) -> ErrorKind {
        let args = args(&[("TAG", Some("20")), ("EMPTY", Some("")), ("NONE", None)]);
        expand(word, &args, '\\', 7, &mut Budget::default())
            .unwrap_err()
            .kind
    }

    #[test]
    fn plain_and_braced_names() {
        assert_eq!(expanded("node:$TAG"), "node:20");
        assert_eq!(expanded("node:${TAG}-slim"), "node:20-slim");
        assert_eq!(expanded("node:$TAG-slim"), "node:20-slim");
        assert_eq!(expanded("a$NONE"), "a");
    }

    #[test]
    fn default_and_alternative_forms() {
        assert_eq!(expanded("${TAG:-18}"), "20");
        assert_eq!(expanded("${NONE:-18}"), "18");
        assert_eq!(expanded("${EMPTY:-18}"), "18");
        assert_eq!(expanded("${EMPTY-18}"), "");
        assert_eq!(expanded("${NONE-18}"), "18");
        assert_eq!(expanded("x${TAG:+-$TAG}"), "x-20");
        assert_eq!(expanded("x${NONE:+-$TAG}"), "x");
        assert_eq!(expanded("x${EMPTY:+y}"), "x");
        assert_eq!(expanded("x${EMPTY+y}"), "xy");
        assert_eq!(expanded("${NONE:-${TAG:-1}}"), "20");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(expanded("'$TAG'"), "$TAG");
        assert_eq!(expanded("\"$TAG\""), "20");
        assert_eq!(expanded("\\$TAG"), "$TAG");
        assert_eq!(expanded("\"a\\\"b\\c\""), "a\"b\\c");
        assert_eq!(expanded("a$"), "a$");
        assert_eq!(expanded("a$-"), "a$-");
    }

    #[test]
    fn an_undeclared_name_is_an_error_only_where_it_is_used() {
        assert_eq!(
            kind("node:$VERSION"),
            ErrorKind::UndeclaredArg {
                name: "VERSION".into()
            }
        );
        assert_eq!(
            kind("${NONE:-$MISSING}"),
            ErrorKind::UndeclaredArg {
                name: "MISSING".into()
            }
        );
        assert_eq!(expanded("${TAG:-$MISSING}"), "20");
        assert_eq!(expanded("${NONE:+$MISSING}"), "");
    }

    #[test]
    fn malformed_substitutions() {
        assert_eq!(kind("node:${TAG"), ErrorKind::UnterminatedVariable);
        assert_eq!(kind("node:${TAG:-1"), ErrorKind::UnterminatedVariable);
        assert_eq!(kind("${"), ErrorKind::UnterminatedVariable);
        assert_eq!(
            kind("${TAG%.*}"),
            ErrorKind::BadSubstitution {
                expression: "${TAG%.*}".into()
            }
        );
        assert_eq!(
            kind("${}"),
            ErrorKind::BadSubstitution {
                expression: "${}".into()
            }
        );
        assert_eq!(kind("'abc"), ErrorKind::UnterminatedQuote { quote: '\'' });
        assert_eq!(kind("\"abc"), ErrorKind::UnterminatedQuote { quote: '"' });
        assert_eq!(
            kind("${NONE:?set the base}"),
            ErrorKind::RequiredArg {
                name: "NONE".into(),
                message: "set the base".into()
            }
        );
        assert_eq!(expanded("${TAG:?x}"), "20");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "${TAG:-".repeat(100_000) + &"}".repeat(100_000);
        assert_eq!(
            kind(&deep),
            ErrorKind::NestedTooDeeply { limit: MAX_NESTING }
        );
        let fine = "${NONE:-".repeat(MAX_NESTING) + "x" + &"}".repeat(MAX_NESTING);
        assert_eq!(expanded(&fine), "x");
    }

    #[test]
    fn unset_args_are_reported() {
        let args = args(&[("NONE", None), ("TAG", Some("1"))]);
        let e = expand(
            "a:$NONE${TAG}${NONE:-x}",
            &args,
            '\\',
            1,
            &mut Budget::default(),
        )
        .unwrap();
        assert_eq!(e.text, "a:1x");
        assert_eq!(e.unset_args, vec!["NONE".to_owned()]);
    }

    #[test]
    fn words_split_at_unquoted_white_space() {
        assert_eq!(
            split_words("A=1 B=\"x y\" C='p q' D=a\\ b", '\\'),
            vec!["A=1", "B=\"x y\"", "C='p q'", "D=a\\ b"]
        );
        assert_eq!(split_words("  ", '\\'), Vec::<String>::new());
    }

    fn big_args(size: usize) -> Args {
        args(&[("BIG", Some(&"x".repeat(size))), ("TAG", Some("20"))])
    }

    #[test]
    fn one_word_may_expand_to_64_kib_and_no_more() {
        let args = big_args(MAX_EXPANSION / 2);
        let fits = expand("$BIG$BIG", &args, '\\', 3, &mut Budget::default()).unwrap();
        assert_eq!(fits.text.len(), MAX_EXPANSION);
        let e = expand("$BIG$BIG$TAG", &args, '\\', 3, &mut Budget::default()).unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.kind,
            ErrorKind::ExpansionTooLarge {
                limit: MAX_EXPANSION
            }
        );
    }

    #[test]
    fn text_thrown_away_counts_too() {
        // `${TAG:-$BIG}` keeps TAG's value and throws $BIG away, but reading $BIG is work.
        let args = big_args(MAX_EXPANSION / 4);
        let word = "${TAG:-$BIG}".repeat(5);
        let e = expand(&word, &args, '\\', 1, &mut Budget::default()).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::ExpansionTooLarge {
                limit: MAX_EXPANSION
            }
        );
    }

    #[test]
    fn all_words_of_a_dockerfile_share_one_budget() {
        let args = big_args(MAX_EXPANSION / 2);
        let mut budget = Budget::default();
        let words = MAX_TOTAL_EXPANSION / (MAX_EXPANSION / 2);
        for _ in 0..words {
            expand("$BIG", &args, '\\', 1, &mut budget).unwrap();
        }
        let e = expand("$BIG", &args, '\\', 9, &mut budget).unwrap_err();
        assert_eq!(e.line, 9);
        assert_eq!(
            e.kind,
            ErrorKind::ExpansionsTooLarge {
                limit: MAX_TOTAL_EXPANSION
            }
        );
    }

    #[test]
    fn used_args_are_named_in_order_and_once() {
        let args = args(&[("TAG", Some("20")), ("NONE", None)]);
        let e = expand(
            "a:$TAG${NONE:-$TAG}",
            &args,
            '\\',
            1,
            &mut Budget::default(),
        )
        .unwrap();
        assert_eq!(e.used_args, vec!["TAG".to_owned(), "NONE".to_owned()]);
    }

    #[test]
    fn a_required_args_message_is_reported_as_written() {
        let args = args(&[("NONE", None), ("TOKEN", Some("s3cr3t"))]);
        let e = expand(
            "${NONE:?need $TOKEN}",
            &args,
            '\\',
            1,
            &mut Budget::default(),
        );
        assert_eq!(
            e.unwrap_err().kind,
            ErrorKind::RequiredArg {
                name: "NONE".into(),
                message: "need $TOKEN".into()
            }
        );
    }
}
