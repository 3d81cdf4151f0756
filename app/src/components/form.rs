//! Form building blocks: every input has a visible label, and an error is tied to its field
//! with `aria-describedby` so that screen readers announce it with the field.

use crate::error::AppError;
use leptos::prelude::*;

/// The error a form's last submission produced, if any.
pub type Outcome<T> = Signal<Option<Result<T, AppError>>>;

/// The message for `field` from the last submission.
pub fn field_error<T: Clone + Send + Sync + 'static>(
    outcome: Outcome<T>,
    field: &'static str,
) -> Signal<Option<String>> {
    Signal::derive(move || match outcome.get() {
        Some(Err(e)) if e.field() == Some(field) => Some(e.to_string()),
        _ => None,
    })
}

/// The hidden CSRF field every state-changing form carries.
#[component]
pub fn Csrf(token: String) -> impl IntoView {
    view! { <input type="hidden" name="csrf_token" value=token/> }
}

#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    /// Unique among the page's fields; defaults to `name`.
    #[prop(optional)]
    id: Option<String>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional)] hint: &'static str,
    #[prop(optional, into)] value: String,
    #[prop(default = true)] required: bool,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let id = id.unwrap_or_else(|| format!("field-{name}"));
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = if hint.is_empty() {
        error_id.clone()
    } else {
        format!("{hint_id} {error_id}")
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                type=kind
                name=name
                value=value
                required=required
                autocomplete=(!autocomplete.is_empty()).then_some(autocomplete)
                aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                aria-describedby=described_by
            />
            {(!hint.is_empty()).then(|| view! { <p class="field-hint" id=hint_id>{hint}</p> })}
            <p class="field-error" id=error_id aria-live="polite">{move || error.get()}</p>
        </div>
    }
}

/// Errors that belong to no field of the form (throttling, permissions, server trouble).
#[component]
pub fn FormError<T: Clone + Send + Sync + 'static>(
    outcome: Outcome<T>,
    /// The fields the form renders; errors for them are shown next to the field instead.
    fields: &'static [&'static str],
) -> impl IntoView {
    let message = move || match outcome.get() {
        Some(Err(e)) if !e.field().is_some_and(|f| fields.contains(&f)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <Show when=move || message().is_some()>
            <div class="alert alert-error" role="alert">{message}</div>
        </Show>
    }
}
