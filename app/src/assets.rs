//! The browser bundle's addresses. `cargo run -p xtask -- site` names each file after a
//! hash of its content (so a browser may keep it for a year) and writes the names to
//! `assets.json` in the site root; the server reads them once at start-up and gives them
//! to the page shell through the context.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The file of the site root that lists the bundle's names.
pub const MANIFEST: &str = "assets.json";

/// Paths (under `/pkg`) of the bundle's script, WebAssembly and style sheet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assets {
    pub js: String,
    pub wasm: String,
    pub css: String,
}

impl Default for Assets {
    /// The names wasm-bindgen writes, for a site built without the manifest.
    fn default() -> Assets {
        Assets {
            js: "/pkg/berth.js".to_owned(),
            wasm: "/pkg/berth_bg.wasm".to_owned(),
            css: "/pkg/berth.css".to_owned(),
        }
    }
}

impl Assets {
    /// The names in `site_root`'s manifest; the unhashed names (with a warning) when it is
    /// missing or unreadable.
    #[cfg(feature = "ssr")]
    pub fn load(site_root: &std::path::Path) -> Assets {
        let path = site_root.join(MANIFEST);
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<Assets>(&bytes).map_err(|e| e.to_string()))
            .and_then(|assets| {
                let under_pkg = |name: &str| {
                    name.starts_with("/pkg/") && !name.contains("..") && !name.contains('"')
                };
                if [&assets.js, &assets.wasm, &assets.css]
                    .iter()
                    .all(|name| under_pkg(name))
                {
                    Ok(assets)
                } else {
                    Err("a name is not a file under /pkg".to_owned())
                }
            });
        match read {
            Ok(assets) => assets,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the bundle's names; using unhashed ones (build it with `cargo run -p xtask -- site`)");
                Assets::default()
            }
        }
    }
}

/// What the page's script does once the bundle is in: readies the reactive system
/// (`hydrate`), then wakes each island, in document order, with the function the bundle
/// exports under the island's name; then marks the document as ready
/// (`<html data-islands="ready">`, which the browser tests wait for).
const WAKE_ISLANDS: &str = r#"
const wake = async () => {
  bundle.hydrate();
  for (const island of document.querySelectorAll("leptos-island")) {
    const wakeIsland = bundle[island.dataset.component];
    if (wakeIsland) await wakeIsland(island);
    else console.warn(`the bundle has no island ${island.dataset.component}`);
  }
  document.documentElement.dataset.islands = "ready";
};
"#;

/// The style sheet and the script that wakes the page's islands, in the shell's `<head>`:
/// the WebAssembly is fetched at once, beside the script.
#[component]
pub fn BundleHead() -> impl IntoView {
    let assets = use_context::<Assets>().unwrap_or_default();
    let nonce = leptos::nonce::use_nonce();
    // Islands mode: nothing outside an island is hydrated, so the data the page's resources
    // loaded is not written into the page for the browser (Leptos' own island loader does
    // the same). Without this every page carried its data a second time, as JSON in a
    // script, and the server spent time encoding it. The shell renders this head before
    // the app, so it is set before any page creates its resources.
    if let Some(context) = Owner::current_shared_context() {
        context.set_is_hydrating(false);
    }
    let start = format!(
        "import init, * as bundle from {js:?};{WAKE_ISLANDS}init({{ module_or_path: {wasm:?} }}).then(wake);",
        js = assets.js,
        wasm = assets.wasm,
    );
    view! {
        <link rel="stylesheet" href=assets.css/>
        <link rel="modulepreload" href=assets.js/>
        <link rel="preload" href=assets.wasm r#as="fetch" r#type="application/wasm" crossorigin="anonymous"/>
        <script type="module" nonce=nonce>{start}</script>
    }
}
