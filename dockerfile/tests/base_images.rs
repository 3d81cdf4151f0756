//! The rules Berth relies on when it reads a Dockerfile's base images, one test per rule.

use dockerfile::{base_images, BaseImage, DockerfileError, ErrorKind, StageBase, Stages};
use std::collections::BTreeMap;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn bases(dockerfile: &str) -> Vec<BaseImage> {
    bases_with(dockerfile, &[])
}

fn bases_with(dockerfile: &str, build_args: &[(&str, &str)]) -> Vec<BaseImage> {
    base_images(dockerfile, &args(build_args)).unwrap_or_else(|e| panic!("{e}"))
}

/// (image, line) pairs: what most tests are about.
fn images(dockerfile: &str) -> Vec<(String, usize)> {
    bases(dockerfile)
        .into_iter()
        .map(|b| (b.image.to_string(), b.line))
        .collect()
}

fn error(dockerfile: &str) -> DockerfileError {
    error_with(dockerfile, &[])
}

fn error_with(dockerfile: &str, build_args: &[(&str, &str)]) -> DockerfileError {
    match base_images(dockerfile, &args(build_args)) {
        Ok(bases) => panic!("expected an error, got {bases:?}"),
        Err(e) => e,
    }
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn image(line: usize, text: &str) -> (String, usize) {
    (text.to_owned(), line)
}

// --- images and references ---------------------------------------------------------------

#[test]
fn docker_hub_short_names_are_normalised() {
    assert_eq!(
        images("FROM nginx\nFROM org/app:1.2\nFROM docker.io/node:20\nFROM index.docker.io/library/redis"),
        vec![
            image(1, "docker.io/library/nginx"),
            image(2, "docker.io/org/app:1.2"),
            image(3, "docker.io/library/node:20"),
            image(4, "docker.io/library/redis"),
        ]
    );
}

#[test]
fn private_registries_keep_their_host_and_port() {
    let b = bases("FROM registry.example.com:5000/team/base:1.4 AS base");
    assert_eq!(b[0].image.registry().as_str(), "registry.example.com:5000");
    assert_eq!(b[0].image.repository(), "team/base");
    assert_eq!(b[0].image.tag(), Some("1.4"));
    assert_eq!(b[0].written, "registry.example.com:5000/team/base:1.4");
}

#[test]
fn images_pinned_by_digest_keep_the_digest() {
    let b = bases(&format!(
        "FROM alpine@{DIGEST}\nFROM ghcr.io/org/base:1@{DIGEST}"
    ));
    assert_eq!(
        b[0].image.digest().map(domain::Digest::as_str),
        Some(DIGEST)
    );
    assert_eq!(b[0].image.tag(), None);
    assert_eq!(
        b[1].image.to_string(),
        format!("ghcr.io/org/base:1@{DIGEST}")
    );
}

#[test]
fn written_text_is_kept_for_messages() {
    let b = bases("ARG V=20\nFROM node:${V}-slim");
    assert_eq!(b[0].written, "node:20-slim");
    assert_eq!(b[0].image.to_string(), "docker.io/library/node:20-slim");
}

#[test]
fn the_same_image_is_listed_once_per_from_in_order() {
    assert_eq!(
        images("FROM alpine AS a\nFROM node:20\nFROM alpine AS c"),
        vec![
            image(1, "docker.io/library/alpine"),
            image(2, "docker.io/library/node:20"),
            image(3, "docker.io/library/alpine"),
        ]
    );
}

// --- ARG substitution ----------------------------------------------------------------------

#[test]
fn global_arg_defaults_are_substituted_in_from() {
    let dockerfile = "ARG REGISTRY=ghcr.io/org\nARG NODE=20\nFROM ${REGISTRY}/node:$NODE";
    assert_eq!(images(dockerfile), vec![image(3, "ghcr.io/org/node:20")]);
}

#[test]
fn build_args_override_arg_defaults() {
    let dockerfile = "ARG NODE=20\nFROM node:${NODE}";
    let b = bases_with(dockerfile, &[("NODE", "22")]);
    assert_eq!(b[0].image.to_string(), "docker.io/library/node:22");
}

#[test]
fn a_declared_arg_without_default_takes_the_build_arg() {
    let b = bases_with("ARG BASE\nFROM $BASE", &[("BASE", "ghcr.io/org/base:7")]);
    assert_eq!(b[0].image.to_string(), "ghcr.io/org/base:7");
}

#[test]
fn build_args_are_taken_literally() {
    let e = error_with("ARG T=1\nFROM alpine:$T", &[("T", "$OTHER")]);
    // Taken literally: `$OTHER` is not looked up (which would be an undeclared ARG).
    assert_eq!(
        e.kind,
        ErrorKind::InvalidSubstitutedImage {
            original: "alpine:$T".into(),
            args: vec!["T".into()],
            unset_args: vec![],
        }
    );
}

#[test]
fn several_args_in_one_instruction_with_quoted_defaults() {
    let dockerfile = "ARG REG=\"ghcr.io\" ORG='acme' TAG=1.0\nFROM $REG/$ORG/app:$TAG";
    assert_eq!(images(dockerfile), vec![image(2, "ghcr.io/acme/app:1.0")]);
}

#[test]
fn arg_defaults_may_use_earlier_args() {
    let dockerfile = "ARG VERSION=3.19\nARG BASE=alpine:${VERSION}\nFROM $BASE";
    assert_eq!(
        images(dockerfile),
        vec![image(3, "docker.io/library/alpine:3.19")]
    );
    let b = bases_with(dockerfile, &[("VERSION", "3.20")]);
    assert_eq!(b[0].image.to_string(), "docker.io/library/alpine:3.20");
}

#[test]
fn default_and_alternative_forms_are_understood() {
    let dockerfile = "\
ARG VARIANT
ARG DISTRO=bookworm
FROM python:3.12${VARIANT:+-$VARIANT}
FROM python:${VARIANT:-3.11}-${DISTRO}
";
    assert_eq!(
        images(dockerfile),
        vec![
            image(3, "docker.io/library/python:3.12"),
            image(4, "docker.io/library/python:3.11-bookworm"),
        ]
    );
    let b = bases_with(dockerfile, &[("VARIANT", "slim")]);
    assert_eq!(b[0].written, "python:3.12-slim");
    assert_eq!(b[1].written, "python:slim-bookworm");
}

#[test]
fn build_args_for_undeclared_args_are_ignored() {
    let e = error_with("FROM node:$NODE", &[("NODE", "20")]);
    assert_eq!(e.line, 1);
    assert_eq!(
        e.kind,
        ErrorKind::UndeclaredArg {
            name: "NODE".into()
        }
    );
}

#[test]
fn args_declared_after_the_first_from_do_not_reach_later_from_lines() {
    let e = error("FROM alpine\nARG TAG=1\nFROM node:$TAG");
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, ErrorKind::UndeclaredArg { name: "TAG".into() });
}

#[test]
fn an_undeclared_arg_in_from_is_an_error_naming_it_and_the_line() {
    let e = error("# base image\nARG NODE=20\n\nFROM node:${NODEJS}");
    assert_eq!(e.line, 4);
    assert_eq!(
        e.kind,
        ErrorKind::UndeclaredArg {
            name: "NODEJS".into()
        }
    );
    let message = e.to_string();
    assert!(
        message.starts_with("line 4: $NODEJS is not declared"),
        "{message}"
    );
    assert!(message.contains("ARG NODEJS"), "{message}");
}

#[test]
fn an_arg_without_value_used_in_from_says_which_arg_to_set() {
    let e = error("ARG TAG\nFROM alpine:$TAG");
    assert_eq!(e.line, 2);
    let ErrorKind::InvalidSubstitutedImage {
        ref unset_args,
        ref args,
        ..
    } = e.kind
    else {
        panic!("{e:?}");
    };
    assert_eq!(unset_args, &["TAG".to_owned()]);
    assert_eq!(args, &["TAG".to_owned()]);
    assert!(e.to_string().contains("ARG TAG has no value"), "{e}");

    let e = error("ARG BASE\nFROM ${BASE}");
    assert_eq!(
        e.kind,
        ErrorKind::BlankImage {
            original: "${BASE}".into(),
            unset_args: vec!["BASE".into()]
        }
    );
}

#[test]
fn an_arg_default_that_cannot_be_substituted_fails_only_when_used() {
    assert_eq!(
        images("ARG UNUSED=${OOPS\nFROM alpine"),
        vec![image(2, "docker.io/library/alpine")]
    );
    let e = error("ARG UNUSED=${OOPS\nFROM alpine:$UNUSED");
    assert_eq!(e.line, 1);
    assert_eq!(e.kind, ErrorKind::UnterminatedVariable);
    let e = error("ARG A=$B\nFROM alpine:$A");
    assert_eq!(
        (e.line, e.kind),
        (1, ErrorKind::UndeclaredArg { name: "B".into() })
    );
}

#[test]
fn an_unterminated_variable_is_an_error_with_its_line() {
    let e = error("ARG TAG=1\nFROM alpine:${TAG");
    assert_eq!(e.line, 2);
    assert_eq!(e.kind, ErrorKind::UnterminatedVariable);
    assert!(
        e.to_string().starts_with("line 2: \"${\" is not closed"),
        "{e}"
    );
}

#[test]
fn required_args_report_their_message() {
    let e = error("ARG BASE\nFROM ${BASE:?required}");
    assert_eq!(e.to_string(), "line 2: ARG BASE must be set: required");
    let e = error("ARG BASE\nFROM ${BASE?}");
    assert_eq!(
        e.to_string(),
        "line 2: ARG BASE must be set: pass it as a build arg or give it a default"
    );
}

#[test]
fn unsupported_substitutions_are_named() {
    let e = error("ARG V=1.2.3\nFROM alpine:${V%.*}");
    assert_eq!(
        e.kind,
        ErrorKind::BadSubstitution {
            expression: "${V%.*}".into()
        }
    );
}

// --- platforms -------------------------------------------------------------------------------

#[test]
fn platform_flags_are_kept_after_substitution() {
    let dockerfile = "\
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
FROM --platform=linux/arm64 alpine
FROM --platform=${TARGETOS}/${TARGETARCH} debian
FROM busybox
";
    let platforms: Vec<_> = bases(dockerfile).into_iter().map(|b| b.platform).collect();
    assert_eq!(
        platforms,
        vec![
            Some("linux/amd64".to_owned()),
            Some("linux/arm64".to_owned()),
            Some("linux/amd64".to_owned()),
            None
        ]
    );
}

#[test]
fn predefined_platform_args_can_be_used_without_declaring_them() {
    assert_eq!(
        images("FROM ghcr.io/org/tool:1-$TARGETARCH"),
        vec![image(1, "ghcr.io/org/tool:1-amd64")]
    );
    let b = bases_with(
        "FROM --platform=$TARGETPLATFORM ghcr.io/org/tool:1-$TARGETARCH",
        &[("TARGETARCH", "arm64"), ("TARGETPLATFORM", "linux/arm64")],
    );
    assert_eq!(b[0].image.tag(), Some("1-arm64"));
    assert_eq!(b[0].platform.as_deref(), Some("linux/arm64"));
}

#[test]
fn redeclaring_a_predefined_arg_keeps_its_value_unless_given_a_default() {
    assert_eq!(
        images("ARG TARGETARCH\nFROM tool:$TARGETARCH"),
        vec![image(2, "docker.io/library/tool:amd64")]
    );
    assert_eq!(
        images("ARG TARGETARCH=arm64\nFROM tool:$TARGETARCH"),
        vec![image(2, "docker.io/library/tool:arm64")]
    );
}

#[test]
fn platform_args_in_the_flag_must_be_declared_too() {
    let e = error("FROM --platform=$MYPLATFORM alpine");
    assert_eq!(
        e.kind,
        ErrorKind::UndeclaredArg {
            name: "MYPLATFORM".into()
        }
    );
}

#[test]
fn unknown_from_flags_are_errors() {
    let e = error("FROM --plataform=linux/amd64 alpine");
    assert_eq!(
        e.kind,
        ErrorKind::BadFromFlag {
            flag: "--plataform=linux/amd64".into()
        }
    );
    let e = error("FROM --platform linux/amd64 alpine");
    assert!(e.to_string().contains("--platform=linux/amd64"), "{e}");
}

// --- stages ----------------------------------------------------------------------------------

#[test]
fn froms_naming_earlier_stages_are_not_external_images() {
    let dockerfile = "\
FROM node:20 AS Build
RUN npm ci
FROM build AS test
FROM BUILD
FROM nginx:1.27
COPY --from=build /app/dist /usr/share/nginx/html
";
    assert_eq!(
        images(dockerfile),
        vec![
            image(1, "docker.io/library/node:20"),
            image(5, "docker.io/library/nginx:1.27")
        ]
    );
    let stages = Stages::parse(dockerfile, &BTreeMap::new()).unwrap();
    assert_eq!(stages.len(), 4);
    assert_eq!(stages.as_slice()[1].base, StageBase::Stage(0));
    assert_eq!(stages.as_slice()[2].base, StageBase::Stage(0));
    assert_eq!(stages.by_name("TEST").map(|s| s.index), Some(1));
    assert_eq!(stages.last().line, 5);
}

#[test]
fn a_stage_name_used_before_its_stage_is_an_image() {
    let dockerfile = "FROM builder\nFROM alpine AS builder";
    assert_eq!(
        images(dockerfile),
        vec![
            image(1, "docker.io/library/builder"),
            image(2, "docker.io/library/alpine")
        ]
    );
}

#[test]
fn a_stage_can_be_chosen_through_an_arg() {
    let dockerfile =
        "ARG FLAVOUR=debug\nFROM alpine AS debug\nFROM alpine:3 AS release\nFROM ${FLAVOUR}";
    let stages = Stages::parse(dockerfile, &BTreeMap::new()).unwrap();
    assert_eq!(stages.last().base, StageBase::Stage(0));
    let stages = Stages::parse(dockerfile, &args(&[("FLAVOUR", "release")])).unwrap();
    assert_eq!(stages.last().base, StageBase::Stage(1));
}

#[test]
fn stage_numbers_and_names_are_reported_for_each_image() {
    let b = bases("FROM scratch AS empty\nFROM alpine AS Runtime\nFROM empty\nFROM node");
    assert_eq!(
        b.iter()
            .map(|b| (b.stage, b.stage_name.clone()))
            .collect::<Vec<_>>(),
        vec![(1, Some("runtime".to_owned())), (3, None)]
    );
}

#[test]
fn scratch_is_not_an_external_image() {
    assert!(bases("FROM scratch\nCOPY app /app").is_empty());
    let stages = Stages::parse("FROM scratch", &BTreeMap::new()).unwrap();
    assert_eq!(stages.as_slice()[0].base, StageBase::Scratch);
}

#[test]
fn duplicate_stage_names_are_errors() {
    let e = error("FROM alpine AS build\nFROM node AS BUILD");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateStageName {
            name: "build".into(),
            first_line: 1
        }
    );
}

#[test]
fn invalid_stage_names_are_errors() {
    let e = error("FROM alpine AS 1st");
    assert_eq!(e.kind, ErrorKind::InvalidStageName { name: "1st".into() });
}

// --- lexical rules ---------------------------------------------------------------------------

#[test]
fn instruction_names_are_not_case_sensitive() {
    let dockerfile = "arg V=3\nfrom alpine:$V as Base\nFrOm base\nrun echo\nFROM node aS web";
    assert_eq!(
        images(dockerfile),
        vec![
            image(2, "docker.io/library/alpine:3"),
            image(5, "docker.io/library/node")
        ]
    );
}

#[test]
fn comments_and_blank_lines_are_skipped() {
    let dockerfile = "# syntax=docker/dockerfile:1\n\n# FROM not-this\n   # nor this\nFROM alpine # not a comment here";
    // `#` in the middle of a line is not a comment: Docker sees four words after FROM.
    let e = error(dockerfile);
    assert_eq!(e.line, 5);
    assert!(matches!(e.kind, ErrorKind::BadFromArguments { .. }));

    let dockerfile = "# syntax=docker/dockerfile:1\n\n# FROM not-this\n   # nor this\nFROM alpine";
    assert_eq!(
        images(dockerfile),
        vec![image(5, "docker.io/library/alpine")]
    );
}

#[test]
fn line_continuations_join_lines_and_report_the_first() {
    let dockerfile = "\
ARG TAG=20
FROM \\
    # the runtime
    --platform=linux/amd64 \\

    node:${TAG} \\
    AS app
RUN echo \\
  FROM nope
FROM ghcr.io/org/other";
    let b = bases(dockerfile);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].line, 2);
    assert_eq!(b[0].written, "node:20");
    assert_eq!(b[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(b[0].stage_name.as_deref(), Some("app"));
    assert_eq!(b[1].line, 10);
}

#[test]
fn the_escape_directive_changes_the_continuation_character() {
    let dockerfile = "\
# escape=`
ARG WIN=ltsc2022
FROM mcr.microsoft.com/windows/servercore:$WIN `
    AS base
RUN dir c:\\
FROM base";
    let b = bases(dockerfile);
    assert_eq!(
        b.iter()
            .map(|b| (b.image.to_string(), b.line))
            .collect::<Vec<_>>(),
        vec![image(3, "mcr.microsoft.com/windows/servercore:ltsc2022")]
    );
    assert_eq!(b[0].stage_name.as_deref(), Some("base"));
}

#[test]
fn with_the_backtick_escape_a_backslash_does_not_continue_a_line() {
    let e = error("# escape=`\nFROM alpine \\\n AS base");
    assert_eq!(e.line, 2);
    assert!(matches!(e.kind, ErrorKind::BadFromArguments { .. }));
}

#[test]
fn heredoc_bodies_are_not_read_as_instructions() {
    let dockerfile = "\
FROM alpine AS build
RUN <<EOF
cat > Dockerfile.inner <<X
FROM ghcr.io/should/not-appear
EOF
COPY <<-EOT /etc/motd
\tFROM also/not
\tEOT
FROM nginx";
    assert_eq!(
        images(dockerfile),
        vec![
            image(1, "docker.io/library/alpine"),
            image(9, "docker.io/library/nginx")
        ]
    );
}

#[test]
fn quotes_around_the_image_are_removed() {
    assert_eq!(
        images("ARG T=1\nFROM \"alpine:$T\""),
        vec![image(2, "docker.io/library/alpine:1")]
    );
    // Single quotes stop substitution, leaving `${T}`, which is not a valid tag.
    let e = error("ARG T=1\nFROM 'node:${T}'");
    assert!(
        matches!(e.kind, ErrorKind::InvalidImage { ref reason, .. } if reason.contains("\"${T}\"")),
        "{e:?}"
    );
}

// --- errors ----------------------------------------------------------------------------------

#[test]
fn a_dockerfile_without_from_is_an_error_at_its_last_line() {
    let e = error("# just a comment\nARG A=1\n");
    assert_eq!((e.line, e.kind.clone()), (2, ErrorKind::NoFrom));
    assert!(e.to_string().contains("no FROM instruction"), "{e}");
    assert_eq!(error("").kind, ErrorKind::NoFrom);
    assert_eq!(error("").line, 1);
}

#[test]
fn a_from_without_image_is_an_error() {
    let e = error("ARG A=1\nFROM\nRUN true");
    assert_eq!((e.line, e.kind), (2, ErrorKind::MissingImage));
    let e = error("FROM --platform=linux/amd64");
    assert_eq!(e.kind, ErrorKind::MissingImage);
}

#[test]
fn an_invalid_image_reference_carries_the_reference_parsers_message() {
    let e = error("FROM node:20\nFROM Ubuntu:22.04");
    assert_eq!(e.line, 2);
    let ErrorKind::InvalidImage { ref reason, .. } = e.kind else {
        panic!("{e:?}");
    };
    let expected = domain::ImageReference::parse("Ubuntu:22.04")
        .unwrap_err()
        .message;
    assert_eq!(reason, &expected);
    assert_eq!(
        e.to_string(),
        format!("line 2: FROM Ubuntu:22.04 is not an image reference: {expected}")
    );

    let e = error("ARG T=a+b\nFROM alpine:$T");
    assert_eq!(
        e.to_string(),
        "line 2: FROM alpine:$T is not an image reference once ARG T is substituted; check its default and build arg (the substituted text is not shown: build args may hold secrets)"
    );
}

#[test]
fn an_image_from_a_secret_build_arg_is_never_echoed_in_errors() {
    let secret = "postgres://app:Sup3r-S3cret@db.internal:5432/prod";
    for dockerfile in [
        "ARG DATABASE_URL\nFROM ${DATABASE_URL}",
        "ARG DATABASE_URL\nFROM $DATABASE_URL AS build",
        "ARG DATABASE_URL\nARG BASE=${DATABASE_URL}\nFROM ${BASE:-alpine}",
        "ARG DATABASE_URL\nFROM alpine:${DATABASE_URL}",
        "ARG DATABASE_URL\nARG X\nFROM ${X:?needs $DATABASE_URL}",
        "ARG DATABASE_URL\nFROM ${DATABASE_URL:+x${DATABASE_URL}}",
    ] {
        let e = error_with(dockerfile, &[("DATABASE_URL", secret)]);
        let shown = format!("{e} {e:?}");
        for part in ["Sup3r-S3cret", "db.internal", "postgres://"] {
            assert!(!shown.contains(part), "{dockerfile}: {shown}");
        }
        assert!(e.to_string().contains("line "), "{e}");
    }
    let e = error_with(
        "ARG DATABASE_URL\nFROM ${DATABASE_URL}",
        &[("DATABASE_URL", secret)],
    );
    assert_eq!(e.line, 2);
    assert!(
        e.to_string().contains("ARG DATABASE_URL is substituted"),
        "{e}"
    );
}

/// 741 bytes whose last ARG would be 10^26 bytes long: each ARG repeats the one before ten
/// times. Reading it must fail at once, where the text first grows past the limit.
fn nested_arg_bomb() -> String {
    let letters: Vec<char> = ('A'..='Z').collect();
    let mut text = String::from("ARG A=xxxxxxxxxx\n");
    for pair in letters.windows(2) {
        let reference = format!("${}", pair[0]);
        text.push_str(&format!("ARG {}={}\n", pair[1], reference.repeat(10)));
    }
    text.push_str("FROM $Z\n");
    text
}

#[test]
fn nested_arg_defaults_that_would_expand_to_gigabytes_fail_fast() {
    let bomb = nested_arg_bomb();
    assert!(bomb.len() < 800, "{}", bomb.len());
    let started = std::time::Instant::now();
    let e = error(&bomb);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // A=10, B=100, C=1000, D=10 000, E=100 000 bytes: line 5 goes past 64 KiB.
    assert_eq!(e.line, 5);
    assert_eq!(
        e.kind,
        ErrorKind::ExpansionTooLarge {
            limit: dockerfile::MAX_EXPANSION
        }
    );
    assert!(
        e.to_string()
            .starts_with("ARG expansion on line 5 exceeds 64 KiB"),
        "{e}"
    );
    // Build args cannot make it worse, nor can the check of RUN options.
    let e = error_with(&bomb, &[("A", &"y".repeat(1000))]);
    assert_eq!(e.line, 3);
    assert!(dockerfile::refused_run_options(&bomb).unwrap().is_empty());
}

#[test]
fn many_large_args_together_are_capped_too() {
    // Each ARG stays under 64 KiB, but together they would pass 1 MiB.
    let mut text = String::from("ARG A=xxxxxxxxxx\nARG B=$A$A$A$A$A$A$A$A$A$A\nARG C=$B$B$B$B$B$B$B$B$B$B\nARG D=$C$C$C$C$C$C$C$C$C$C\n");
    for i in 0..40 {
        text.push_str(&format!("ARG E{i}=$D$D$D$D$D$D\n"));
    }
    text.push_str("FROM alpine\n");
    let e = error(&text);
    assert_eq!(
        e.kind,
        ErrorKind::ExpansionsTooLarge {
            limit: dockerfile::MAX_TOTAL_EXPANSION
        }
    );
    assert!(e.to_string().contains("exceed 1 MiB in total"), "{e}");
}

#[test]
fn a_long_build_arg_used_in_from_is_refused_without_being_shown() {
    let long = "z".repeat(dockerfile::MAX_EXPANSION + 1);
    let e = error_with("ARG BASE\nFROM $BASE", &[("BASE", &long)]);
    assert_eq!(e.line, 2);
    assert!(matches!(e.kind, ErrorKind::ExpansionTooLarge { .. }));
    assert!(!e.to_string().contains("zzz"));
}

#[test]
fn dockerfiles_over_1_mib_are_refused() {
    let padding = "# padding\n".repeat(dockerfile::MAX_DOCKERFILE_BYTES / 10);
    let text = format!("FROM alpine\n{padding}");
    let e = error(&text);
    assert_eq!(e.line, 1);
    assert!(matches!(e.kind, ErrorKind::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("up to 1 MiB"), "{e}");
    assert!(dockerfile::refused_run_options(&text).is_err());
    // Just under the limit is read.
    let fits = &text[..dockerfile::MAX_DOCKERFILE_BYTES];
    assert_eq!(bases(fits).len(), 1);
}

#[test]
fn the_number_of_stages_is_capped() {
    let fits = "FROM alpine\n".repeat(dockerfile::MAX_STAGES);
    assert_eq!(bases(&fits).len(), dockerfile::MAX_STAGES);
    let over = format!("{fits}FROM alpine\n");
    let e = error(&over);
    assert_eq!(e.line, dockerfile::MAX_STAGES + 1);
    assert_eq!(
        e.kind,
        ErrorKind::TooManyStages {
            limit: dockerfile::MAX_STAGES
        }
    );
}

#[test]
fn from_with_the_wrong_number_of_words_is_an_error() {
    for dockerfile in ["FROM alpine AS", "FROM alpine builder", "FROM a AS b c"] {
        let e = error(dockerfile);
        assert!(
            matches!(e.kind, ErrorKind::BadFromArguments { .. }),
            "{dockerfile}: {e:?}"
        );
    }
}

#[test]
fn only_arg_may_come_before_the_first_from() {
    let e = error("ARG A=1\nRUN echo hi\nFROM alpine");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.kind,
        ErrorKind::InstructionBeforeFrom {
            instruction: "RUN".into()
        }
    );
}

#[test]
fn absurdly_nested_substitutions_are_an_error_not_a_crash() {
    let nested = "${V:-".repeat(50_000) + "alpine" + &"}".repeat(50_000);
    let e = error(&format!("ARG V\n\nFROM {nested}"));
    assert_eq!(e.line, 3);
    assert!(matches!(e.kind, ErrorKind::NestedTooDeeply { .. }), "{e:?}");
}

#[test]
fn an_invalid_escape_directive_is_an_error() {
    let e = error("# escape=^\nFROM alpine");
    assert_eq!(e.line, 1);
    assert_eq!(e.kind, ErrorKind::InvalidEscape { value: "^".into() });
}

#[test]
fn an_undeclared_arg_error_names_the_arg_but_not_build_arg_values() {
    let e = error_with("FROM alpine:$TOKEN", &[("TOKEN", "s3cr3t")]);
    assert!(!e.to_string().contains("s3cr3t"));
}
