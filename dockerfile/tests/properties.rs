//! Properties: Dockerfiles generated from a random list of stages read back as exactly the
//! base images they were made from, however they are laid out; and no input makes the
//! reader panic.

use dockerfile::{base_images, BaseImage, Stages};
use domain::ImageReference;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// What a generated stage starts from.
#[derive(Debug, Clone)]
enum Base {
    Image {
        text: String,
        /// Written through a global ARG (`$BASE_<i>`), maybe overridden by a build arg.
        through_arg: Option<Option<String>>,
    },
    Scratch,
    /// An earlier named stage, chosen by this number among those that exist.
    Earlier(usize),
}

#[derive(Debug, Clone)]
struct StageSpec {
    base: Base,
    named: bool,
    platform: Option<(&'static str, &'static str)>,
    /// How the FROM line is laid out.
    layout: Layout,
    /// Lines that do not change the result, before the FROM.
    filler: Vec<Filler>,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    case: u8,
    split: bool,
    padding: bool,
}

#[derive(Debug, Clone, Copy)]
enum Filler {
    Comment,
    Blank,
    Run,
    ContinuedRun,
    Heredoc,
}

fn image_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(""),
            Just("docker.io/"),
            Just("ghcr.io/"),
            Just("registry.example.com:5000/"),
            Just("localhost/"),
            Just("127.0.0.1:5000/"),
        ],
        // Never starting with 's', so that no image is mistaken for `scratch` or a stage.
        prop::collection::vec("[a-r][a-z0-9]{0,6}", 1..3),
        prop::option::of("[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}"),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(registry, path, tag, digest)| {
            let mut text = format!("{registry}{}", path.join("/"));
            if let Some(tag) = tag {
                text = format!("{text}:{tag}");
            }
            if let Some(digest) = digest {
                text = format!("{text}@sha256:{digest}");
            }
            text
        })
}

fn base() -> impl Strategy<Value = Base> {
    prop_oneof![
        4 => (image_text(), prop::option::of(prop::option::of(image_text())))
            .prop_map(|(text, through_arg)| Base::Image { text, through_arg }),
        1 => Just(Base::Scratch),
        2 => any::<usize>().prop_map(Base::Earlier),
    ]
}

fn filler() -> impl Strategy<Value = Filler> {
    prop_oneof![
        Just(Filler::Comment),
        Just(Filler::Blank),
        Just(Filler::Run),
        Just(Filler::ContinuedRun),
        Just(Filler::Heredoc),
    ]
}

fn stage() -> impl Strategy<Value = StageSpec> {
    (
        base(),
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just(("linux/arm64", "linux/arm64")),
            Just(("$BUILDPLATFORM", "linux/amd64")),
            Just(("${TARGETOS}/${TARGETARCH}", "linux/amd64")),
        ]),
        (any::<u8>(), any::<bool>(), any::<bool>()),
        prop::collection::vec(filler(), 0..3),
    )
        .prop_map(
            |(base, named, platform, (case, split, padding), filler)| StageSpec {
                base,
                named,
                platform,
                layout: Layout {
                    case,
                    split,
                    padding,
                },
                filler,
            },
        )
}

/// A Dockerfile and what reading it must give.
#[derive(Debug)]
struct Generated {
    text: String,
    build_args: BTreeMap<String, String>,
    expected: Vec<BaseImage>,
}

fn cased(word: &str, case: u8) -> String {
    match case % 3 {
        0 => word.to_ascii_uppercase(),
        1 => word.to_ascii_lowercase(),
        _ => word
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
    }
}

fn generate(stages: &[StageSpec], escape: char) -> Generated {
    let mut lines: Vec<String> = Vec::new();
    let mut build_args = BTreeMap::new();
    let mut expected = Vec::new();
    if escape != '\\' {
        lines.push(format!("# escape={escape}"));
    }
    lines.push("# generated".to_owned());

    // Global ARGs first: they must come before the first FROM.
    for (i, stage) in stages.iter().enumerate() {
        if let Base::Image {
            text,
            through_arg: Some(over),
        } = &stage.base
        {
            lines.push(format!("ARG BASE_{i}={text}"));
            if let Some(over) = over {
                build_args.insert(format!("BASE_{i}"), over.clone());
            }
        }
    }

    let mut names: Vec<(usize, String)> = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        for filler in &stage.filler {
            match filler {
                Filler::Comment => lines.push("  # FROM commented-out".to_owned()),
                Filler::Blank => lines.push(String::new()),
                // Instructions other than ARG must follow the first FROM.
                _ if i == 0 => {}
                Filler::Run => lines.push("RUN echo FROM nothing".to_owned()),
                Filler::ContinuedRun => {
                    lines.push(format!("RUN echo {escape}"));
                    lines.push("# FROM inside".to_owned());
                    lines.push("FROM not-an-instruction".to_owned());
                }
                Filler::Heredoc => {
                    lines.push("RUN <<EOF".to_owned());
                    lines.push("FROM inside-heredoc".to_owned());
                    lines.push("EOF".to_owned());
                }
            }
        }

        let layout = stage.layout;
        let (written_in_file, external) = match &stage.base {
            Base::Image { text, through_arg } => match through_arg {
                None => (text.clone(), Some(text.clone())),
                Some(over) => {
                    let arg = if layout.case % 2 == 0 {
                        format!("${{BASE_{i}}}")
                    } else {
                        format!("$BASE_{i}")
                    };
                    (arg, Some(over.clone().unwrap_or_else(|| text.clone())))
                }
            },
            Base::Scratch => ("scratch".to_owned(), None),
            Base::Earlier(choice) if !names.is_empty() => {
                let (_, name) = &names[choice % names.len()];
                (cased(name, layout.case.wrapping_add(1)), None)
            }
            Base::Earlier(_) => ("scratch".to_owned(), None),
        };
        let name = stage.named.then(|| format!("stage{i}"));

        let mut words = Vec::new();
        if let Some((platform, _)) = stage.platform {
            words.push(format!("--platform={platform}"));
        }
        words.push(written_in_file);
        if let Some(name) = &name {
            words.push(cased("as", layout.case));
            words.push(cased(name, layout.case / 3));
        }
        let keyword = cased("from", layout.case);
        let line = lines.len() + 1;
        if layout.split {
            lines.push(format!("{keyword} {escape}"));
            for (n, word) in words.iter().enumerate() {
                if n + 1 < words.len() {
                    lines.push(format!("    {word} {escape}"));
                    lines.push("    # comment inside".to_owned());
                } else {
                    lines.push(format!("    {word}"));
                }
            }
        } else {
            let sep = if layout.padding { " \t " } else { " " };
            lines.push(format!("{keyword}{sep}{}", words.join(sep)));
        }

        if let Some(text) = external {
            expected.push(BaseImage {
                image: ImageReference::parse(&text).unwrap(),
                written: text,
                platform: stage.platform.map(|(_, value)| value.to_owned()),
                line,
                stage: i,
                stage_name: name.clone(),
            });
        }
        if let Some(name) = name {
            names.push((i, name));
        }
    }

    Generated {
        text: lines.join("\n") + "\n",
        build_args,
        expected,
    }
}

/// Pieces of Dockerfile syntax, for inputs that get deep into the reader.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM ".to_owned()),
        Just("from ".to_owned()),
        Just("ARG ".to_owned()),
        Just("RUN ".to_owned()),
        Just("COPY ".to_owned()),
        Just(" AS ".to_owned()),
        Just("--platform=".to_owned()),
        Just("$".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        Just(":-".to_owned()),
        Just(":+".to_owned()),
        Just(":?".to_owned()),
        Just("%".to_owned()),
        Just("=".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("`".to_owned()),
        Just("\\\n".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("# escape=`\n".to_owned()),
        Just("#".to_owned()),
        Just("<<EOF\n".to_owned()),
        Just("<<-EOF\n".to_owned()),
        Just("EOF\n".to_owned()),
        Just("\t".to_owned()),
        Just("scratch".to_owned()),
        Just("alpine".to_owned()),
        Just("ghcr.io/org/app:1".to_owned()),
        Just("@sha256:".to_owned()),
        Just("TARGETARCH".to_owned()),
        Just("V".to_owned()),
        "[a-zA-Z0-9._/:@-]{1,8}",
        "\\PC{1,3}",
    ]
}

fn assert_consistent(text: &str, build_args: &BTreeMap<String, String>) {
    let lines = text.lines().count().max(1);
    match Stages::parse(text, build_args) {
        Ok(stages) => {
            assert!(!stages.is_empty());
            for (i, stage) in stages.iter().enumerate() {
                assert_eq!(stage.index, i);
                assert!((1..=lines).contains(&stage.line));
                if let dockerfile::StageBase::Stage(earlier) = stage.base {
                    assert!(earlier < i);
                }
            }
            let bases = stages.base_images();
            assert_eq!(base_images(text, build_args).unwrap(), bases);
            for base in bases {
                assert!(base.stage < stages.len());
                assert_eq!(ImageReference::parse(&base.written).unwrap(), base.image);
            }
        }
        Err(e) => {
            assert!((1..=lines).contains(&e.line), "{e:?} outside 1..={lines}");
            assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_dockerfiles_read_back_as_their_base_images(
        stages in prop::collection::vec(stage(), 1..6),
    ) {
        let generated = generate(&stages, '\\');
        let read = base_images(&generated.text, &generated.build_args);
        prop_assert_eq!(read, Ok(generated.expected), "{}", generated.text);
    }

    #[test]
    fn the_backtick_escape_reads_the_same_stages(
        stages in prop::collection::vec(stage(), 1..6),
    ) {
        let plain = generate(&stages, '\\');
        let backtick = generate(&stages, '`');
        let shifted: Vec<_> = plain
            .expected
            .into_iter()
            .map(|base| BaseImage { line: base.line + 1, ..base })
            .collect();
        let read = base_images(&backtick.text, &backtick.build_args);
        prop_assert_eq!(read, Ok(shifted), "{}", backtick.text);
    }

    #[test]
    fn build_args_win_over_defaults(default in image_text(), given in image_text()) {
        let text = format!("ARG BASE={default}\nFROM ${{BASE}}\n");
        let without = base_images(&text, &BTreeMap::new()).unwrap();
        prop_assert_eq!(&without[0].written, &default);
        let args = BTreeMap::from([("BASE".to_owned(), given.clone())]);
        let with = base_images(&text, &args).unwrap();
        prop_assert_eq!(&with[0].written, &given);
        prop_assert_eq!(&with[0].image, &ImageReference::parse(&given).unwrap());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        assert_consistent(&text, &BTreeMap::new());
    }

    #[test]
    fn dockerfile_like_text_never_panics(
        fragments in prop::collection::vec(fragment(), 0..40),
        value in "[a-z0-9:${}-]{0,6}",
    ) {
        let text: String = fragments.concat();
        assert_consistent(&text, &BTreeMap::new());
        let args = BTreeMap::from([("V".to_owned(), value), ("TARGETARCH".to_owned(), "arm64".to_owned())]);
        assert_consistent(&text, &args);
    }
}
