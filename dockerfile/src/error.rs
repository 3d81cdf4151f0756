use std::fmt;

/// Why a Dockerfile's stages could not be read, with the line to look at.
///
/// Shown to the person deploying, so every message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct DockerfileError {
    /// 1-based line of the instruction (or directive) at fault. When the file has no `FROM`
    /// at all, the last line: that is where the reader gave up looking.
    pub line: usize,
    pub kind: ErrorKind,
}

impl DockerfileError {
    pub(crate) fn new(line: usize, kind: ErrorKind) -> Self {
        Self { line, kind }
    }
}

/// What exactly is wrong, so that callers can react to a kind without matching strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file has no `FROM` instruction.
    NoFrom,
    /// `FROM` with nothing after it (or only flags).
    MissingImage,
    /// The image text is empty once ARGs are substituted.
    BlankImage {
        /// The text as written in the Dockerfile, e.g. `${BASE}`.
        original: String,
        /// Declared ARGs that were used but have no value.
        unset_args: Vec<String>,
    },
    /// The image text is not an image reference.
    InvalidImage {
        original: String,
        /// The text after ARG substitution.
        written: String,
        /// The image reference parser's explanation.
        reason: String,
        unset_args: Vec<String>,
    },
    /// `$NAME` names no ARG declared before the first `FROM` (or predefined platform ARG).
    UndeclaredArg { name: String },
    /// `${` without its closing `}`.
    UnterminatedVariable,
    /// A quote without its closing quote.
    UnterminatedQuote { quote: char },
    /// A `${...}` form this reader does not understand, e.g. `${NAME%suffix}` or `${}`.
    BadSubstitution { expression: String },
    /// `${A:-${B:-...}}` nested deeper than anyone writes by hand.
    NestedTooDeeply { limit: usize },
    /// `${NAME:?message}` (or `${NAME?message}`) with `NAME` unset.
    RequiredArg { name: String, message: String },
    /// `FROM` takes an image and optionally `AS name`; it got something else.
    BadFromArguments { arguments: String },
    /// A `FROM` flag other than `--platform`, or a flag without `=value`.
    BadFromFlag { flag: String },
    /// `AS name` with a name Docker rejects.
    InvalidStageName { name: String },
    /// Two stages with the same name (names are case-insensitive).
    DuplicateStageName { name: String, first_line: usize },
    /// An instruction other than `ARG` before the first `FROM`.
    InstructionBeforeFrom { instruction: String },
    /// `ARG` with an empty name, e.g. `ARG =1`.
    BlankArgName,
    /// `# escape=` with something other than `\` or `` ` ``.
    InvalidEscape { value: String },
    /// The same parser directive twice.
    DuplicateDirective { name: String },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFrom => f.write_str(
                "the Dockerfile has no FROM instruction; a build starts with FROM <image> (or FROM scratch)",
            ),
            Self::MissingImage => f.write_str(
                "FROM needs an image, e.g. FROM node:20 or FROM ghcr.io/org/base:1.0",
            ),
            Self::BlankImage {
                original,
                unset_args,
            } => {
                write!(f, "FROM {original} names no image once ARGs are substituted")?;
                unset_hint(f, unset_args)
            }
            Self::InvalidImage {
                original,
                written,
                reason,
                unset_args,
            } => {
                if original == written {
                    write!(f, "FROM {written} is not an image reference: {reason}")?;
                } else {
                    write!(
                        f,
                        "FROM {original} becomes \"{written}\", which is not an image reference: {reason}"
                    )?;
                }
                unset_hint(f, unset_args)
            }
            Self::UndeclaredArg { name } => write!(
                f,
                "${name} is not declared: add `ARG {name}` (with a default, or pass it as a build arg) before the first FROM; only ARGs declared there can be used in FROM lines"
            ),
            Self::UnterminatedVariable => {
                f.write_str("\"${\" is not closed: add the \"}\" that ends the variable")
            }
            Self::UnterminatedQuote { quote } => {
                write!(f, "a {quote} quote is not closed: add the matching {quote}")
            }
            Self::BadSubstitution { expression } => write!(
                f,
                "\"{expression}\" is not a substitution Berth understands in FROM lines; use $NAME, ${{NAME}}, ${{NAME:-default}} or ${{NAME:+alternative}}"
            ),
            Self::NestedTooDeeply { limit } => write!(
                f,
                "substitutions are nested more than {limit} deep; simplify the FROM line or its ARG defaults"
            ),
            Self::RequiredArg { name, message } => {
                if message.is_empty() {
                    write!(f, "ARG {name} must be set: pass it as a build arg or give it a default")
                } else {
                    write!(f, "ARG {name} must be set: {message}")
                }
            }
            Self::BadFromArguments { arguments } => write!(
                f,
                "FROM {arguments}: FROM takes an image and optionally \"AS name\", e.g. FROM node:20 AS build"
            ),
            Self::BadFromFlag { flag } if flag == "--platform" => f.write_str(
                "--platform needs its value after '=', e.g. --platform=linux/amd64",
            ),
            Self::BadFromFlag { flag } => write!(
                f,
                "FROM does not understand the flag {flag}; the only flag is --platform=<os/arch>"
            ),
            Self::InvalidStageName { name } => write!(
                f,
                "\"{name}\" is not a valid stage name: start with a letter and use letters, digits, '-', '_' and '.'"
            ),
            Self::DuplicateStageName { name, first_line } => write!(
                f,
                "the stage name \"{name}\" is already used on line {first_line}; stage names must be unique (they are not case-sensitive)"
            ),
            Self::InstructionBeforeFrom { instruction } => write!(
                f,
                "{instruction} comes before the first FROM; only ARG (and comments) may come before it"
            ),
            Self::BlankArgName => f.write_str("ARG needs a name, e.g. ARG VERSION=1.2"),
            Self::InvalidEscape { value } => write!(
                f,
                "the escape directive must be \\ or ` (got \"{value}\")"
            ),
            Self::DuplicateDirective { name } => {
                write!(f, "the {name} directive appears twice; keep one")
            }
        }
    }
}

fn unset_hint(f: &mut fmt::Formatter<'_>, unset_args: &[String]) -> fmt::Result {
    match unset_args {
        [] => Ok(()),
        [name] => write!(
            f,
            " (ARG {name} has no value: give it a default or pass it as a build arg)"
        ),
        names => write!(
            f,
            " (ARGs {} have no value: give them defaults or pass them as build args)",
            names.join(", ")
        ),
    }
}
