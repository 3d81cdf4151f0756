//! Form building blocks: every input has a visible label, and an error is tied to its field
//! with `aria-describedby` so that screen readers announce it with the field.

use leptos::prelude::*;
use views::AppError;

/// The error a form's last submission produced, if any.
pub type Outcome<T> = Signal<Option<Result<T, AppError>>>;

/// The message for `field` from the last submission.
pub fn field_error<T: Clone + Send + Sync + 'static>(
    outcome: Outcome<T>,
    field: &'static str,
) -> Signal<Option<String>> {
    Signal::derive(move || match outcome.get() {
        Some(Err(e)) => e.message_for(field),
        _ => None,
    })
}

/// Goes to `path(value)` once a form's server function has succeeded in the browser (a
/// plain form post is redirected by the server instead).
pub fn follow<T: Clone + Send + Sync + 'static>(
    outcome: Outcome<T>,
    path: impl Fn(T) -> String + Send + Sync + 'static,
) {
    Effect::new(move |_| {
        if let Some(Ok(value)) = outcome.get() {
            let _ = window().location().set_href(&path(value));
        }
    });
}

/// A form that empties itself once its server function has succeeded in the browser, for a
/// form that stays on its page afterwards: re-rendering the page reuses the form's inputs,
/// so without this what was typed — a password, say — would stay in them. (A plain form
/// post is redirected to a fresh page instead.) Give it to `ActionForm`'s `node_ref`.
pub fn cleared_on_success<T: Clone + Send + Sync + 'static>(
    outcome: Outcome<T>,
) -> NodeRef<leptos::html::Form> {
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let (Some(Ok(_)), Some(form)) = (outcome.get(), form.get_untracked()) {
            form.reset();
        }
    });
    form
}

/// A view inside an island, as each side wants it: typed in the browser (a type-erased view
/// carries every way of rendering its contents into the bundle), erased on the server (there
/// the island's deeply nested view type would overflow the compiler's limits, and the HTML
/// is the same either way).
#[cfg(feature = "hydrate")]
pub fn island_view<V: IntoView>(view: V) -> V {
    view
}

/// See the browser's version: on the server, the view erased.
#[cfg(not(feature = "hydrate"))]
pub fn island_view<V: IntoView + 'static>(view: V) -> AnyView {
    view.into_any()
}

/// `leptos::form::ActionForm` for the forms inside islands: the same `<form action method=post>`
/// (so it posts as it is without JavaScript), and in the browser a submit runs the server
/// function through `action` instead. It differs in one thing: its children keep their type.
/// `ActionForm` takes them as `Children`, a type-erased view, which carries every way of
/// rendering its contents (asynchronous hydration included) into the browser bundle: for the
/// deploy form, tens of kilobytes that never run.
#[component]
pub fn IslandForm<ServFn, OutputProtocol, C>(
    /// The server function the form calls.
    action: ServerAction<ServFn>,
    /// The form's `class`.
    #[prop(optional)]
    class: &'static str,
    children: TypedChildren<C>,
) -> impl IntoView
where
    ServFn: serde::de::DeserializeOwned
        + leptos::server_fn::ServerFn<
            Protocol = leptos::server_fn::Http<leptos::server_fn::codec::PostUrl, OutputProtocol>,
        > + Clone
        + Send
        + Sync
        + 'static,
    ServFn::Output: Send + Sync + 'static,
    ServFn::Error: Send + Sync + 'static,
    C: IntoView + 'static,
{
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        use leptos::form::FromFormData;
        use leptos::server_fn::error::{IntoAppError, ServerFnErrorErr};
        if ev.default_prevented() {
            return;
        }
        ev.prevent_default();
        match ServFn::from_event(&ev) {
            Ok(input) => {
                action.dispatch(input);
            }
            Err(error) => {
                action.value().set(Some(Err(ServerFnErrorErr::Serialization(
                    error.to_string(),
                )
                .into_app_error())));
                action.version().update(|n| *n += 1);
            }
        }
    };
    let children = children.into_inner();
    view! {
        <form action=ServFn::url() method="post" class=class on:submit=on_submit>
            {island_view(children())}
        </form>
    }
}

/// What was typed into a form that a plain form post sent and the server refused (secrets
/// left out: `ssr::ECHOED_FIELDS`), provided for the page the browser is sent back to.
#[derive(Clone, Debug, Default)]
pub struct FormEcho(std::sync::Arc<Vec<(String, String)>>);

impl FormEcho {
    pub fn new(fields: Vec<(String, String)>) -> Self {
        Self(std::sync::Arc::new(fields))
    }
}

/// The value typed into field `name` before the refusal this page shows, if any.
pub fn echoed(name: &str) -> Option<String> {
    use_context::<FormEcho>().and_then(|echo| {
        echo.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
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
    let value = echoed(name).unwrap_or(value);
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
    // What no field of this form shows: an error without a field, or one about fields this
    // form does not render.
    let message = move || match outcome.get() {
        Some(Err(e)) => {
            let elsewhere: Vec<String> = match &e {
                AppError::InvalidFields { problems } => problems
                    .iter()
                    .filter(|p| !fields.contains(&p.field.as_str()))
                    .map(|p| p.message.clone())
                    .collect(),
                other if other.field().is_some_and(|f| fields.contains(&f)) => Vec::new(),
                other => vec![other.to_string()],
            };
            (!elsewhere.is_empty()).then(|| elsewhere.join(" "))
        }
        _ => None,
    };
    view! {
        <Show when=move || message().is_some()>
            <div class="alert alert-error" role="alert">{message}</div>
        </Show>
    }
}

/// A field's problem: the message and, for a registry's refusal, its precise reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub reason: Option<String>,
    pub message: String,
}

/// The problem the last submission had with `field`, if any.
pub fn problem<T: Clone + Send + Sync + 'static>(
    outcome: Outcome<T>,
    field: &'static str,
) -> Signal<Option<Problem>> {
    Signal::derive(move || match outcome.get() {
        Some(Err(AppError::VerificationFailed {
            field: f,
            reason,
            message,
        })) if f == field => Some(Problem {
            reason: Some(reason),
            message,
        }),
        Some(Err(e)) => e.message_for(field).map(|message| Problem {
            reason: None,
            message,
        }),
        _ => None,
    })
}

/// A registry's refusal reason (`wrong_credentials`, a stable name for the API) in words.
pub fn reason_words(reason: &str) -> String {
    match reason {
        "wrong_credentials" => "wrong credentials".into(),
        "credentials_required" => "login required".into(),
        "denied" => "access denied".into(),
        "not_found" => "not found".into(),
        "timeout" => "timed out".into(),
        "expired" => "credential expired".into(),
        "protocol" => "unexpected answer".into(),
        "refused" => "not contacted".into(),
        "aws_sign_in_failed" => "AWS sign-in failed".into(),
        "role_assumption_failed" => "role not assumed".into(),
        other => other.replace('_', " "),
    }
}

/// The error line under a field; its id is what the field's `aria-describedby` names.
#[component]
pub fn ProblemText(
    #[prop(into)] id: String,
    #[prop(into)] problem: Signal<Option<Problem>>,
) -> impl IntoView {
    view! {
        <p class="field-error" id=id aria-live="polite">
            {move || problem.get().map(|p| view! {
                {p.reason.map(|r| view! { <span class="badge badge-failed">{reason_words(&r)}</span> " " })}
                {p.message}
            })}
        </p>
    }
}

/// The textareas of configuration changes (`KEY=value` sets, `-KEY` unsets): secret values
/// (`env_text`, the default) and plain (visible) ones (`plain_env_text`), with the problem
/// tied to them. `children` is the hint: what applying the changes does here.
#[component]
pub fn EnvChangesField(
    /// The secret textarea's id; the plain one's, its hints' and error's ids follow from it.
    id: &'static str,
    label: &'static str,
    #[prop(default = 3)] rows: u32,
    #[prop(into)] problem: Signal<Option<Problem>>,
    children: Children,
) -> impl IntoView {
    let hint = format!("{id}-hint");
    let error = format!("{id}-error");
    let plain = format!("{id}-plain");
    let plain_hint = format!("{id}-plain-hint");
    let invalid = move || {
        if problem.with(Option::is_some) {
            "true"
        } else {
            "false"
        }
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <textarea id=id name="env_text" rows=rows spellcheck="false"
                aria-invalid=invalid
                aria-describedby=format!("{hint} {error}")></textarea>
            <p class="field-hint" id=hint>
                "One per line: KEY=value sets a variable, -KEY unsets it. Values set here are secret: write-only, hidden from logs, never part of a base image's name. " {children()}
            </p>
        </div>
        <div class="field">
            <label for=plain.clone()>"Plain (visible) variables (optional)"</label>
            <textarea id=plain name="plain_env_text" rows=2 spellcheck="false"
                aria-invalid=invalid
                aria-describedby=format!("{plain_hint} {error}")></textarea>
            <p class="field-hint" id=plain_hint>
                "KEY=value, one per line: shown to everyone in the team, left in logs, and usable as build arguments in FROM lines. Names that look secret (…_PASSWORD, …_TOKEN, …_KEY, DATABASE_URL, …) and URLs with a password cannot be plain."
            </p>
            <ProblemText id=error problem/>
        </div>
    }
}
