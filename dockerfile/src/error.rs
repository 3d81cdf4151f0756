use std::fmt;

/// Why a Dockerfile's stages could not be read, with the line to look at.
///
/// Shown to the person deploying, so every message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DockerfileError {
    /// 1-based line of the instruction (or directive) at fault. When the file has no `FROM`
    /// at all, the last line: that is where the reader gave up looking.
    pub line: usize,
    pub kind: ErrorKind,
}

impl fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::ExpansionTooLarge { limit } => write!(
                f,
                "ARG expansion on line {} exceeds {}: its ARGs refer to other ARGs so often that the text would grow past that; shorten the ARG defaults or build args it uses",
                self.line,
                size(*limit)
            ),
            kind => write!(f, "line {}: {kind}", self.line),
        }
    }
}

/// `65536` as `64 KiB`, `1048576` as `1 MiB`.
fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
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
    /// The image text, written without ARGs, is not an image reference.
    InvalidImage {
        original: String,
        /// The image reference parser's explanation.
        reason: String,
    },
    /// The image text is not an image reference once ARGs are substituted. Neither the
    /// substituted text nor the parser's explanation (which quotes it) is kept: build args
    /// are the app's configuration and may be secret, and this error is shown to people.
    InvalidSubstitutedImage {
        /// The text as written in the Dockerfile, e.g. `${BASE}`.
        original: String,
        /// The ARGs substituted into it, by name.
        args: Vec<String>,
        unset_args: Vec<String>,
    },
    /// One word's ARG substitution would produce more than `limit` bytes.
    ExpansionTooLarge { limit: usize },
    /// All ARG substitutions of the Dockerfile together would produce more than `limit`
    /// bytes.
    ExpansionsTooLarge { limit: usize },
    /// The Dockerfile is larger than Berth reads.
    TooLarge { size: usize, limit: usize },
    /// More `FROM` instructions than Berth reads.
    TooManyStages { limit: usize },
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
            Self::InvalidImage { original, reason } => {
                write!(f, "FROM {original} is not an image reference: {reason}")
            }
            Self::InvalidSubstitutedImage {
                original,
                args,
                unset_args,
            } => {
                let (noun, names) = match args.as_slice() {
                    [one] => ("ARG", one.clone()),
                    several => ("ARGs", several.join(", ")),
                };
                write!(
                    f,
                    "FROM {original} is not an image reference once {noun} {names} {} substituted; check {} default and build arg (the substituted text is not shown: build args may hold secrets)",
                    if args.len() == 1 { "is" } else { "are" },
                    if args.len() == 1 { "its" } else { "their" },
                )?;
                unset_hint(f, unset_args)
            }
            Self::ExpansionTooLarge { limit } => write!(
                f,
                "ARG expansion exceeds {}; shorten the ARG defaults or build args it uses",
                size(*limit)
            ),
            Self::ExpansionsTooLarge { limit } => write!(
                f,
                "the Dockerfile's ARG expansions exceed {} in total; use fewer or shorter ARGs in ARG defaults and FROM lines",
                size(*limit)
            ),
            Self::TooLarge { size: bytes, limit } => write!(
                f,
                "the Dockerfile is {} bytes; Berth reads Dockerfiles of up to {}",
                bytes,
                size(*limit)
            ),
            Self::TooManyStages { limit } => write!(
                f,
                "the Dockerfile has more than {limit} FROM instructions; Berth builds Dockerfiles of up to {limit} stages"
            ),
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
