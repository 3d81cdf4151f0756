//! `cargo run -p xtask -- site [--release]`: builds the browser bundle into `target/site`.
//!
//! 1. `cargo build -p frontend --lib --target wasm32-unknown-unknown`
//! 2. wasm-bindgen (the library, pinned in the workspace to the exact version in Cargo.lock,
//!    so no CLI download or `cargo install` is needed) → `target/site/pkg/berth{.js,_bg.wasm}`
//! 3. with `--release`: `wasm-opt -Oz` when it is on PATH (npm's binaryen; Debian's wasm-opt
//!    108 breaks hydration, so it is refused)
//! 4. `style/main.css` → `target/site/pkg/berth.css`

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
        .generate(&pkg)
        .context("wasm-bindgen")?;
    let bundle = pkg.join("berth_bg.wasm");
    if release {
        optimise(&bundle)?;
    }
    std::fs::copy(root.join("style/main.css"), pkg.join("berth.css"))
        .context("copying style/main.css")?;
    let size = std::fs::metadata(&bundle)?.len();
    println!("site: {} ({} KiB wasm)", pkg.display(), size / 1024);
    Ok(())
}

fn optimise(bundle: &Path) -> anyhow::Result<()> {
    let Ok(version) = Command::new("wasm-opt").arg("--version").output() else {
        println!("site: wasm-opt not found; the bundle is not size-optimised");
        return Ok(());
    };
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    let number: u32 = version
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if number < 116 {
        println!(
            "site: skipping {} (too old: it breaks hydration); install npm's binaryen",
            version.trim()
        );
        return Ok(());
    }
    let status = Command::new("wasm-opt")
        .args([
            "-Oz",
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
        bail!("wasm-opt failed");
    }
    Ok(())
}
