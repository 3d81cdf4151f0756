//! Any text, read as a Dockerfile, gives stages or an error pointing at a real line; never
//! a panic, and never a base image whose reference does not parse.

#![no_main]

use dockerfile::{base_images, StageBase, Stages};
use domain::ImageReference;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    let overrides = BTreeMap::from([
        ("V".to_owned(), "x:1".to_owned()),
        ("TARGETARCH".to_owned(), "arm64".to_owned()),
    ]);
    for build_args in [BTreeMap::new(), overrides] {
        match Stages::parse(text, &build_args) {
            Ok(stages) => {
                assert!(!stages.is_empty());
                for (i, stage) in stages.iter().enumerate() {
                    assert_eq!(stage.index, i);
                    assert!((1..=lines).contains(&stage.line));
                    if let StageBase::Stage(earlier) = stage.base {
                        assert!(earlier < i);
                    }
                }
                let bases = stages.base_images();
                for base in &bases {
                    assert_eq!(
                        ImageReference::parse(&base.written).as_ref(),
                        Ok(&base.image)
                    );
                }
                assert_eq!(base_images(text, &build_args), Ok(bases));
            }
            Err(error) => {
                assert!((1..=lines).contains(&error.line), "{error:?}");
                let _ = error.to_string();
            }
        }
    }
});
