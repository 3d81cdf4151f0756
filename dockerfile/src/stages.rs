use crate::error::{DockerfileError, ErrorKind};
use crate::instructions::{self, Instruction};
use crate::substitution::{expand, split_words, ArgValue, Args, Budget};
use domain::ImageReference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The platform Berth builds on and for, as `FROM` lines see it through the predefined ARGs
/// (`BUILDPLATFORM`, `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, ...). Build args of the same
/// names override these values, as they do in Docker.
const PREDEFINED_ARGS: [(&str, &str); 8] = [
    ("BUILDPLATFORM", "linux/amd64"),
    ("BUILDOS", "linux"),
    ("BUILDARCH", "amd64"),
    ("BUILDVARIANT", ""),
    ("TARGETPLATFORM", "linux/amd64"),
    ("TARGETOS", "linux"),
    ("TARGETARCH", "amd64"),
    ("TARGETVARIANT", ""),
];

/// The most `FROM` instructions (stages) Berth reads in one Dockerfile. Every external one is
/// checked against a registry before a build, so their number is bounded too.
pub const MAX_STAGES: usize = 64;

/// An image the build pulls from a registry: what needs registry credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseImage {
    /// The image reference after ARG substitution, parsed with [`domain::ImageReference`].
    pub image: ImageReference,
    /// The text as written after substitution (e.g. `node:20`), for messages.
    pub written: String,
    /// `--platform` value after substitution, if any.
    pub platform: Option<String>,
    /// 1-based line number of the `FROM` instruction.
    pub line: usize,
    /// The stage index (0-based).
    pub stage: usize,
    /// The stage's name (`AS name`), lower-cased as Docker does.
    pub stage_name: Option<String>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageBase {
    /// An image pulled from a registry.
    Image(ImageReference),
    /// `FROM scratch`: an empty file system; nothing is pulled.
    Scratch,
    /// An earlier stage of the same Dockerfile, by index; nothing is pulled.
    Stage(usize),
}

/// One `FROM` and the stage it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// 0-based position among the `FROM` lines.
    pub index: usize,
    /// `AS name`, lower-cased (stage names are not case-sensitive).
    pub name: Option<String>,
    /// 1-based line of the `FROM` instruction.
    pub line: usize,
    /// The base as written after ARG substitution.
    pub written: String,
    /// `--platform` after ARG substitution.
    pub platform: Option<String>,
    pub base: StageBase,
}

/// Every stage of a Dockerfile, in order; never empty. (Serialize only: a deserialised value
/// would skip the checks that make it trustworthy.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stages {
    stages: Vec<Stage>,
}

impl Stages {
    /// Reads every `FROM` of `dockerfile`. Global ARGs (those before the first `FROM`) are
    /// substituted with their defaults, or with `build_args` where it names them; build args
    /// for undeclared ARGs are ignored, as Docker ignores them.
    pub fn parse(
        dockerfile: &str,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, DockerfileError> {
        let instructions = instructions::read(dockerfile)?;
        let escape = instructions.escape;
        let mut budget = Budget::default();
        let mut args: Args = PREDEFINED_ARGS
            .iter()
            .map(|(name, default)| {
                let text = build_args.get(*name).map_or(*default, String::as_str);
                (
                    (*name).to_owned(),
                    ArgValue::Set {
                        text: text.to_owned(),
                        unset_args: Vec::new(),
                    },
                )
            })
            .collect();
        let mut stages: Vec<Stage> = Vec::new();

        for instruction in &instructions.list {
            let keyword = instruction.keyword.to_ascii_lowercase();
            match keyword.as_str() {
                "from" => {
                    if stages.len() == MAX_STAGES {
                        return Err(DockerfileError::new(
                            instruction.line,
                            ErrorKind::TooManyStages { limit: MAX_STAGES },
                        ));
                    }
                    let stage = read_from(
                        instruction,
                        stages.len(),
                        &stages,
                        &args,
                        escape,
                        &mut budget,
                    )?;
                    stages.push(stage);
                }
                "arg" if stages.is_empty() => {
                    declare_global_args(instruction, &mut args, build_args, escape, &mut budget)?;
                }
                // ARGs after a FROM belong to that stage and cannot reach later FROM lines;
                // other instructions do not affect which images are pulled.
                _ if !stages.is_empty() => {}
                _ => {
                    return Err(DockerfileError::new(
                        instruction.line,
                        ErrorKind::InstructionBeforeFrom {
                            instruction: instruction.keyword.to_ascii_uppercase(),
                        },
                    ))
                }
            }
        }

        if stages.is_empty() {
            return Err(DockerfileError::new(
                instructions.last_line,
                ErrorKind::NoFrom,
            ));
        }
        Ok(Self { stages })
    }

    pub fn as_slice(&self) -> &[Stage] {
        &self.stages
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Stage> {
        self.stages.iter()
    }

    /// Always at least 1: a Dockerfile without `FROM` does not parse.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stage called `name` (not case-sensitive).
    pub fn by_name(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|stage| {
            stage
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// The last stage: what `buildah build` produces without `--target`.
    pub fn last(&self) -> &Stage {
        self.stages
            .last()
            .expect("a parsed Dockerfile has at least one stage")
    }

    /// Every external image, once per `FROM` that names it, in file order.
    pub fn base_images(&self) -> Vec<BaseImage> {
        self.stages
            .iter()
            .filter_map(|stage| match &stage.base {
                StageBase::Image(image) => Some(BaseImage {
                    image: image.clone(),
                    written: stage.written.clone(),
                    platform: stage.platform.clone(),
                    line: stage.line,
                    stage: stage.index,
                    stage_name: stage.name.clone(),
                }),
                StageBase::Scratch | StageBase::Stage(_) => None,
            })
            .collect()
    }
}

impl<'a> IntoIterator for &'a Stages {
    type Item = &'a Stage;
    type IntoIter = std::slice::Iter<'a, Stage>;
    fn into_iter(self) -> Self::IntoIter {
        self.stages.iter()
    }
}

/// `ARG NAME[=default] [NAME[=default] ...]` before the first `FROM`.
fn declare_global_args(
    instruction: &Instruction,
    args: &mut Args,
    build_args: &BTreeMap<String, String>,
    escape: char,
    budget: &mut Budget,
) -> Result<(), DockerfileError> {
    for word in split_words(&instruction.arguments, escape) {
        let (name, default) = match word.split_once('=') {
            Some((name, default)) => (name, Some(default)),
            None => (word.as_str(), None),
        };
        if name.is_empty() {
            return Err(DockerfileError::new(
                instruction.line,
                ErrorKind::BlankArgName,
            ));
        }
        let value = match (build_args.get(name), default) {
            // Build args are taken literally, as `--build-arg` does.
            (Some(given), _) => ArgValue::Set {
                text: given.clone(),
                unset_args: Vec::new(),
            },
            (None, Some(default)) => {
                match expand(default, args, escape, instruction.line, budget) {
                    Ok(expanded) => ArgValue::Set {
                        text: expanded.text,
                        unset_args: expanded.unset_args,
                    },
                    // Too much text is refused at once, where it happens: unlike a mistake
                    // Docker reports only when the ARG is used, it is an attack on the reader.
                    Err(
                        error @ DockerfileError {
                            kind:
                                ErrorKind::ExpansionTooLarge { .. }
                                | ErrorKind::ExpansionsTooLarge { .. },
                            ..
                        },
                    ) => return Err(error),
                    Err(error) => ArgValue::Invalid(error),
                }
            }
            // `ARG TARGETARCH` re-declares a predefined ARG and keeps its value.
            (None, None) => match args.get(name) {
                Some(existing) => existing.clone(),
                None => ArgValue::Unset,
            },
        };
        args.insert(name.to_owned(), value);
    }
    Ok(())
}

fn read_from(
    instruction: &Instruction,
    index: usize,
    earlier: &[Stage],
    args: &Args,
    escape: char,
    budget: &mut Budget,
) -> Result<Stage, DockerfileError> {
    let line = instruction.line;
    let error = |kind| DockerfileError::new(line, kind);
    let words: Vec<&str> = instruction.arguments.split_whitespace().collect();

    let mut platform = None;
    let mut rest = words.as_slice();
    while let Some((flag, after)) = rest.split_first() {
        let Some(flag_text) = flag.strip_prefix("--") else {
            break;
        };
        rest = after;
        match flag_text.split_once('=') {
            Some(("platform", value)) => {
                let value = expand(value, args, escape, line, budget)?.text;
                platform = (!value.is_empty()).then_some(value);
            }
            _ => {
                return Err(error(ErrorKind::BadFromFlag {
                    flag: (*flag).to_owned(),
                }))
            }
        }
    }

    let (original, name) = match rest {
        [] => return Err(error(ErrorKind::MissingImage)),
        [image] => (*image, None),
        [image, as_keyword, name] if as_keyword.eq_ignore_ascii_case("as") => {
            (*image, Some(stage_name(name, earlier).map_err(error)?))
        }
        _ => {
            return Err(error(ErrorKind::BadFromArguments {
                arguments: instruction.arguments.clone(),
            }))
        }
    };

    let expanded = expand(original, args, escape, line, budget)?;
    let written = expanded.text;
    let base = if written.is_empty() {
        return Err(error(ErrorKind::BlankImage {
            original: original.to_owned(),
            unset_args: expanded.unset_args,
        }));
    } else if let Some(stage) = earlier.iter().find(|stage| {
        stage
            .name
            .as_deref()
            .is_some_and(|name| name.eq_ignore_ascii_case(&written))
    }) {
        StageBase::Stage(stage.index)
    } else if written == "scratch" {
        StageBase::Scratch
    } else {
        match ImageReference::parse(&written) {
            Ok(image) => StageBase::Image(image),
            // The parser's explanation quotes the text; only text without ARGs in it may be
            // shown, since a build arg may be secret configuration.
            Err(parse_error) if expanded.used_args.is_empty() => {
                return Err(error(ErrorKind::InvalidImage {
                    original: original.to_owned(),
                    reason: parse_error.message,
                }))
            }
            Err(_) => {
                return Err(error(ErrorKind::InvalidSubstitutedImage {
                    original: original.to_owned(),
                    args: expanded.used_args,
                    unset_args: expanded.unset_args,
                }))
            }
        }
    };

    Ok(Stage {
        index,
        name,
        line,
        written,
        platform,
        base,
    })
}

/// Docker's rule: a letter, then letters, digits, `-`, `_` or `.`; compared lower-cased.
fn stage_name(name: &str, earlier: &[Stage]) -> Result<String, ErrorKind> {
    let lower = name.to_ascii_lowercase();
    let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
        && lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        return Err(ErrorKind::InvalidStageName {
            name: name.to_owned(),
        });
    }
    if let Some(first) = earlier
        .iter()
        .find(|stage| stage.name.as_deref() == Some(lower.as_str()))
    {
        return Err(ErrorKind::DuplicateStageName {
            name: lower,
            first_line: first.line,
        });
    }
    Ok(lower)
}
