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
}

/// Substitutes `args` into `word`; errors point at `line`.
pub(crate) fn expand(
    word: &str,
    args: &Args,
    escape: char,
    line: usize,
) -> Result<Expanded, DockerfileError> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        position: 0,
        escape,
        args,
        line,
        unset_args: Vec::new(),
        depth: 0,
    };
    let text = lexer.word(None, true)?;
    Ok(Expanded {
        text,
        unset_args: lexer.unset_args,
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
    /// How many `${NAME:-...}` words we are inside.
    depth: usize,
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

impl Lexer<'_> {
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
                    Some(next) => out.push(next),
                    None => out.push(c),
                },
                _ => out.push(c),
            }
        }
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), DockerfileError> {
        loop {
            match self.bump() {
                None => return Err(self.error(ErrorKind::UnterminatedQuote { quote: '\'' })),
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
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
                        out.push(next);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
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
            out.push('$');
            return Ok(());
        }
        if let Some(value) = self.lookup(&name, live)? {
            out.push_str(&value);
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
                    out.push_str(&value);
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
        let word = self.word(Some('}'), live && use_word)?;
        self.depth -= 1;
        match operator {
            Operator::Default if use_word => out.push_str(&word),
            Operator::Alternative if use_word => out.push_str(&word),
            Operator::Required if use_word && live => {
                return Err(self.error(ErrorKind::RequiredArg {
                    name,
                    message: word,
                }))
            }
            Operator::Alternative => {}
            _ => out.push_str(&value.unwrap_or_default()),
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
    fn lookup(&mut self, name: &str, live: bool) -> Result<Option<String>, DockerfileError> {
        let value = self.value(name, live)?;
        if value.is_none() && live && !self.unset_args.iter().any(|n| n == name) {
            self.unset_args.push(name.to_owned());
        }
        Ok(value)
    }

    fn value(&mut self, name: &str, live: bool) -> Result<Option<String>, DockerfileError> {
        match self.args.get(name) {
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
                Ok(Some(text.clone()))
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
        expand(word, &args, '\\', 1).unwrap().text
    }

    fn kind(word: &str) -> ErrorKind {
        let args = args(&[("TAG", Some("20")), ("EMPTY", Some("")), ("NONE", None)]);
        expand(word, &args, '\\', 7).unwrap_err().kind
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
        let e = expand("a:$NONE${TAG}${NONE:-x}", &args, '\\', 1).unwrap();
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
}
