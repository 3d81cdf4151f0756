//! Long values people paste elsewhere (digests, invitation links, new tokens): shown whole,
//! selectable, and with a copy button once JavaScript runs.

use leptos::prelude::*;

/// A button that copies `text`, or the value of the input whose id is `from`, to the
/// clipboard (an island). Secrets (a new token, an invitation link) are copied `from` their
/// field: an island's props travel in the page as JSON, and a secret must not be there twice.
/// The button stays hidden until the browser has run it, so a page without JavaScript shows
/// no button that does nothing.
#[island]
pub fn CopyButton(
    #[prop(optional)] text: Option<String>,
    #[prop(optional)] from: Option<String>,
    label: String,
) -> impl IntoView {
    view! { <CopyInIsland text from label/> }
}

/// [`CopyButton`] for use inside an island (which already runs in the browser; an island
/// within an island is not woken on its own).
#[component]
pub fn CopyInIsland(
    #[prop(default = None)] text: Option<String>,
    #[prop(default = None)] from: Option<String>,
    label: String,
) -> impl IntoView {
    let ready = RwSignal::new(false);
    let copied = RwSignal::new(false);
    // Effects run only in the browser.
    Effect::new(move |_| ready.set(true));
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let value = text
                .clone()
                .or_else(|| from.as_deref().and_then(input_value));
            if value.is_some_and(|value| write_to_clipboard(&value)) {
                copied.set(true);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&text, &from);
    };
    view! {
        <button type="button" class="button button-small copy-button" hidden=move || !ready.get()
            aria-label=label on:click=copy>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

/// The `value` of the element with id `id` (an input), read through `Reflect`.
#[cfg(feature = "hydrate")]
fn input_value(id: &str) -> Option<String> {
    use wasm_bindgen::{JsCast, JsValue};
    let document = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("document")).ok()?;
    let find = js_sys::Reflect::get(&document, &JsValue::from_str("getElementById"))
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let element = find.call1(&document, &JsValue::from_str(id)).ok()?;
    js_sys::Reflect::get(&element, &JsValue::from_str("value"))
        .ok()?
        .as_string()
}

/// `navigator.clipboard.writeText(text)`, through `Reflect` so that the bundle needs no
/// more of `web-sys`. False when the browser offers no clipboard here (plain http on
/// another host than localhost, say).
#[cfg(feature = "hydrate")]
fn write_to_clipboard(text: &str) -> bool {
    use wasm_bindgen::{JsCast, JsValue};
    let get = |target: &JsValue, name: &str| js_sys::Reflect::get(target, &JsValue::from_str(name));
    let Ok(navigator) = get(&js_sys::global(), "navigator") else {
        return false;
    };
    let Ok(clipboard) = get(&navigator, "clipboard") else {
        return false;
    };
    if clipboard.is_undefined() {
        return false;
    }
    get(&clipboard, "writeText")
        .ok()
        .and_then(|write| write.dyn_into::<js_sys::Function>().ok())
        .is_some_and(|write| write.call1(&clipboard, &JsValue::from_str(text)).is_ok())
}

/// A digest (`sha256:…`) in full, cut short with an ellipsis where space is short (the whole
/// value on hover), with a copy button.
#[component]
pub fn Digest(value: String) -> impl IntoView {
    view! {
        <span class="digest-value">
            <code class="digest" title=value.clone()>{value.clone()}</code>
            " "
            <CopyButton text=value label="Copy digest".into()/>
        </span>
    }
}

/// [`Digest`] inside an island.
#[component]
pub fn DigestInIsland(value: String, label: &'static str) -> impl IntoView {
    view! {
        <span class="digest-value">
            <code class="digest" title=value.clone()>{value.clone()}</code>
            " "
            <CopyInIsland text=Some(value) label=label.to_owned()/>
        </span>
    }
}
