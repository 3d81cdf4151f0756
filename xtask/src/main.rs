//! `cargo run -p xtask -- site [--release]`: builds the browser bundle into `target/site`.
//!
//! 1. `cargo build -p frontend --lib --target wasm32-unknown-unknown`
//! 2. wasm-bindgen (the library, pinned in the workspace to the exact version in Cargo.lock,
//!    so no CLI download or `cargo install` is needed) → `target/site/pkg/berth{.js,_bg.wasm}`
//! 3. with `--release`: `wasm-opt -O1`, npm's binaryen, from PATH or where `scripts/setup.sh`
//!    installs it (Debian's wasm-opt 108 breaks hydration, so it is refused); a release
//!    build without a usable wasm-opt fails before it compiles anything
//! 4. names the script, the WebAssembly and `style/main.css` after a hash of their content
//!    (`berth.<hash>.js`, `berth_bg.<hash>.wasm`, `berth.<hash>.css`), writes a brotli and
//!    a gzip copy of each beside it (`.br`, `.gz`), lists the names in
//!    `target/site/assets.json` for the server, and removes the files of earlier builds

use anyhow::{bail, Context};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("site") => site(args.iter().any(|a| a == "--release")),
        _ => bail!("usage: cargo run -p xtask -- site [--release]"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}

fn site(release: bool) -> anyhow::Result<()> {
    let root = workspace_root();
    // Found first: a release bundle is not built only to be left unoptimised.
    let wasm_opt = if release { Some(wasm_opt()?) } else { None };
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let profile = if release { "wasm-release" } else { "dev" };
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "frontend",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            profile,
        ])
        .status()
        .context("running cargo build for the frontend")?;
    if !status.success() {
        bail!("building the frontend for wasm32-unknown-unknown failed");
    }
    let profile_dir = if release { "wasm-release" } else { "debug" };
    let wasm = target_dir
        .join("wasm32-unknown-unknown")
        .join(profile_dir)
        .join("frontend.wasm");
    let pkg = root.join("target/site/pkg");
    std::fs::create_dir_all(&pkg)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .out_name("berth")
        .debug(!release)
        .keep_debug(false)
        // Function names are for debuggers: a release bundle goes without them.
        .remove_name_section(release)
        .remove_producers_section(release)
        .generate(&pkg)
        .context("wasm-bindgen")?;
    let bundle = pkg.join("berth_bg.wasm");
    if let Some(wasm_opt) = &wasm_opt {
        optimise(wasm_opt, &bundle)?;
    }
    std::fs::copy(root.join("style/main.css"), pkg.join("berth.css"))
        .context("copying style/main.css")?;
    publish(&root.join("target/site"), release)
}

/// The bundle's files as the server sends them: each under a name with a hash of its
/// content, with its `.br` and `.gz` copies; `assets.json` says which; the files of
/// earlier builds (and the unhashed ones) are removed.
fn publish(site: &Path, release: bool) -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};
    let pkg = site.join("pkg");
    let mut manifest = serde_json::Map::new();
    let mut kept = std::collections::HashSet::new();
    let mut sizes = Vec::new();
    for (key, stem, extension) in [
        ("js", "berth", "js"),
        ("wasm", "berth_bg", "wasm"),
        ("css", "berth", "css"),
    ] {
        let plain = pkg.join(format!("{stem}.{extension}"));
        let bytes =
            std::fs::read(&plain).with_context(|| format!("reading {}", plain.display()))?;
        let hash = hex::encode(&Sha256::digest(&bytes)[..8]);
        let name = format!("{stem}.{hash}.{extension}");
        let brotli = compress_brotli(&bytes, if release { 11 } else { 5 })?;
        let gzip = compress_gzip(&bytes, if release { 9 } else { 6 })?;
        std::fs::write(pkg.join(&name), &bytes)?;
        std::fs::write(pkg.join(format!("{name}.br")), &brotli)?;
        std::fs::write(pkg.join(format!("{name}.gz")), &gzip)?;
        sizes.push(format!(
            "{name}: {} KiB, {} KiB brotli",
            bytes.len() / 1024,
            brotli.len() / 1024
        ));
        manifest.insert(key.to_owned(), format!("/pkg/{name}").into());
        for suffix in ["", ".br", ".gz"] {
            kept.insert(format!("{name}{suffix}"));
        }
    }
    // What wasm-bindgen wrote (its snippets directory, if any, stays: the script imports it).
    for entry in std::fs::read_dir(&pkg)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !kept.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    let staged = site.join("assets.json.new");
    std::fs::write(&staged, serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(&staged, site.join("assets.json"))?;
    println!("site: {}\n  {}", pkg.display(), sizes.join("\n  "));
    Ok(())
}

fn compress_brotli(bytes: &[u8], quality: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: quality as i32,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut std::io::Cursor::new(bytes), &mut out, &params)
        .context("brotli")?;
    Ok(out)
}

fn compress_gzip(bytes: &[u8], level: u32) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Optimises the release bundle with `wasm-opt -O1`. What a browser downloads is the brotli
/// or gzip copy, and the heavier levels make that larger: with binaryen 132, on 2026-12-07's
/// bundle, 832 KiB from wasm-bindgen was 199 KiB brotli / 253 KiB gzip; `-O1` 793 / 198 /
/// 249; `-O2` 743 / 211 / 276; `-Os` 732 / 210 / 274; `-Oz` 718 / 211 / 275 (and `-Oz` takes
/// 28 s on 2 cores, `-O1` 7 s).
fn optimise(wasm_opt: &Path, bundle: &Path) -> anyhow::Result<()> {
    let status = Command::new(wasm_opt)
        .args([
            "-O1",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
        ])
        .arg(bundle)
        .arg("-o")
        .arg(bundle)
        .status()?;
    if !status.success() {
        bail!("{} failed", wasm_opt.display());
    }
    Ok(())
}

/// The oldest binaryen whose wasm-opt keeps hydration working (Debian's 108 breaks it).
const WASM_OPT_AT_LEAST: u32 = 116;

/// The wasm-opt a release bundle goes through: the first recent enough of PATH's and those
/// `scripts/setup.sh` installs (`~/.cache/berth/binaryen-VERSION`, newest first; the README's
/// commands also put it on PATH, a plain shell does not). None is an error that says how to
/// get one: a release bundle left unoptimised (832 KiB instead of 793 on 2026-12-07, 253
/// KiB gzip instead of 249) would otherwise reach servers and `scripts/bench.sh`'s figures
/// with only a line in the build's output to say so.
fn wasm_opt() -> anyhow::Result<PathBuf> {
    let cache = berth_cache();
    let mut candidates = vec![PathBuf::from("wasm-opt")];
    candidates.extend(
        cache
            .as_deref()
            .map(installed_wasm_opts)
            .unwrap_or_default(),
    );
    first_usable_wasm_opt(candidates, cache.as_deref())
}

/// The first of `candidates` that runs and is binaryen [`WASM_OPT_AT_LEAST`] or later;
/// otherwise an error naming where it looked (PATH and `cache`) and what it refused.
fn first_usable_wasm_opt(
    candidates: Vec<PathBuf>,
    cache: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let mut refused = Vec::new();
    for candidate in candidates {
        let Ok(output) = Command::new(&candidate).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        match binaryen_version(&version) {
            Some(number) if number >= WASM_OPT_AT_LEAST => return Ok(candidate),
            _ => refused.push(format!("{} ({version:?})", candidate.display())),
        }
    }
    let refused = match refused.as_slice() {
        [] => String::new(),
        refused => format!(
            " Found only {}: older than binaryen {WASM_OPT_AT_LEAST}, which breaks hydration.",
            refused.join(", ")
        ),
    };
    let searched = match cache {
        Some(cache) => format!("on PATH or in {}", cache.display()),
        None => "on PATH".to_owned(),
    };
    bail!(
        "site --release needs wasm-opt from npm's binaryen {WASM_OPT_AT_LEAST} or later, and \
         found none {searched}.{refused} `bash scripts/run.sh` installs it; so does \
         `. scripts/setup.sh && berth_setup_binaryen`. (`site` without --release needs none.)"
    )
}

/// Where `scripts/setup.sh` installs tools: `${XDG_CACHE_HOME:-$HOME/.cache}/berth`.
fn berth_cache() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .map(|cache| cache.join("berth"))
}

/// The wasm-opts `scripts/setup.sh` installed under `cache` (`binaryen-VERSION/…`), newest
/// first.
fn installed_wasm_opts(cache: &Path) -> Vec<PathBuf> {
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir(cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = binaryen_version(name.strip_prefix("binaryen-")?)?;
            Some((number, entry.path().join("node_modules/.bin/wasm-opt")))
        })
        .collect();
    installed.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
    installed.into_iter().map(|(_, path)| path).collect()
}

/// binaryen's major version in `wasm-opt --version`'s answer ("wasm-opt version 132
/// (version_132)") or in an npm version ("132.0.0").
fn binaryen_version(text: &str) -> Option<u32> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache directory as `scripts/setup.sh` leaves it, with a fake wasm-opt for each
    /// of `versions` that answers `--version` as binaryen's does.
    fn cache_with(name: &str, versions: &[u32]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let cache = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        for version in versions {
            let bin = cache.join(format!("binaryen-{version}.0.0/node_modules/.bin"));
            std::fs::create_dir_all(&bin).unwrap();
            let script = bin.join("wasm-opt");
            std::fs::write(
                &script,
                format!("#!/bin/sh\necho 'wasm-opt version {version} (version_{version})'\n"),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        cache
    }

    #[test]
    fn the_newest_installed_binaryen_is_used_and_an_old_one_refused_by_name() {
        let cache = cache_with("both", &[108, 132, 120]);
        let installed = installed_wasm_opts(&cache);
        assert_eq!(installed.len(), 3);
        let mut candidates = vec![cache.join("nothing-here/wasm-opt")];
        candidates.extend(installed);
        let chosen = first_usable_wasm_opt(candidates, Some(&cache)).unwrap();
        assert_eq!(
            chosen,
            cache.join("binaryen-132.0.0/node_modules/.bin/wasm-opt")
        );
        std::fs::remove_dir_all(&cache).unwrap();

        let cache = cache_with("old", &[108]);
        let error = first_usable_wasm_opt(installed_wasm_opts(&cache), Some(&cache))
            .unwrap_err()
            .to_string();
        assert!(error.contains("binaryen-108.0.0"), "{error}");
        assert!(error.contains("older than binaryen 116"), "{error}");
        assert!(error.contains(&cache.display().to_string()), "{error}");
        assert!(error.contains("berth_setup_binaryen"), "{error}");
        std::fs::remove_dir_all(&cache).unwrap();

        let none = first_usable_wasm_opt(Vec::new(), None)
            .unwrap_err()
            .to_string();
        assert!(none.contains("found none on PATH."), "{none}");
    }

    #[test]
    fn binaryen_versions_are_read_from_wasm_opt_and_from_npm() {
        assert_eq!(
            binaryen_version("wasm-opt version 132 (version_132)"),
            Some(132)
        );
        assert_eq!(binaryen_version("wasm-opt version 108"), Some(108));
        assert_eq!(binaryen_version("132.0.0"), Some(132));
        assert_eq!(binaryen_version("wasm-opt version unknown"), None);
    }
}
