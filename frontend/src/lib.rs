//! The browser entry point. Pages are rendered on the server; this wakes the interactive
//! parts marked `#[island]` in the `app` crate (the page's script calls each island's
//! exported function on its `<leptos-island>` element, see `app::assets`).

/// Readies the reactive system for the islands; the script then hydrates each of them.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}

// The islands are exported by the app crate; linking it in is what puts them in the bundle.
pub use app::assets as _islands;
