//! Signing up, signing in, and accepting an invitation.

use crate::{
    components::{
        form::{field_error, Csrf, Field, FormError},
        layout::{reload_on_success, ErrorPage, Plain, WithSession},
    },
    serverfns::session::{
        load_invite, load_pending_sign_up, load_sign_up_mode, AcceptInvite, ConfirmSignUp, SignIn,
        SignUp, AFTER_SIGN_UP, AFTER_SIGN_UP_TO_CONFIRM,
    },
};
use leptos::{form::ActionForm, prelude::*};
use leptos_meta::Title;
use leptos_router::{
    components::Redirect,
    hooks::{use_params_map, use_query_map},
};
use views::SignUpMode;

#[component]
pub fn SignInPage() -> AnyView {
    let action = ServerAction::<SignIn>::new();
    let outcome: Signal<_> = action.value().into();
    reload_on_success(outcome, "/");
    let query = use_query_map();
    let signed_up = move || query.read().get("signed_up").is_some();
    let check_email = move || query.read().get("check_email").is_some();
    view! {
        <Title text="Sign in"/>
        <WithSession let:info>
            {if info.viewer.is_some() {
                view! { <Redirect path="/"/> }.into_any()
            } else {
                view! {
                    <Plain title="Sign in">
                        <Show when=signed_up>
                            <div class="alert alert-success" role="status">
                                <p>"If the address was new to Berth, its account and team are ready: sign in with it. \
                                    (An address that already had an account keeps its own password.)"</p>
                            </div>
                        </Show>
                        <Show when=check_email>
                            <div class="alert alert-success" role="status">
                                <p>"Check your e-mail: we sent the address a link. Open it within 24 hours and \
                                    enter your password to finish creating the account. (If the address already \
                                    had an account, the e-mail says so instead.)"</p>
                            </div>
                        </Show>
                        <ActionForm action>
                            <Csrf token=info.csrf_token.clone()/>
                            <FormError outcome fields=&["email", "password"]/>
                            <Field label="E-mail" name="email" kind="email" autocomplete="username" error=field_error(outcome, "email")/>
                            <Field label="Password" name="password" kind="password" autocomplete="current-password" error=field_error(outcome, "password")/>
                            <button type="submit" class="button button-primary">"Sign in"</button>
                        </ActionForm>
                        <p class="muted">"New to Berth? " <a href="/signup">"Create an account and a team"</a></p>
                    </Plain>
                }
                .into_any()
            }}
        </WithSession>
    }
    .into_any()
}

#[component]
pub fn SignUpPage() -> AnyView {
    let mode = Resource::new(|| (), |_| load_sign_up_mode());
    let query = use_query_map();
    let invite = move || query.read().get("invite").filter(|t| !t.is_empty());
    view! {
        <Title text="Sign up"/>
        <WithSession let:info>
            {if info.viewer.is_some() {
                view! { <Redirect path="/"/> }.into_any()
            } else {
                let csrf = info.csrf_token.clone();
                view! {
                    <Suspense fallback=|| ()>
                        {move || {
                            let csrf = csrf.clone();
                            Suspend::new(async move {
                                match mode.await {
                                    Ok(mode) => view! { <SignUpForm mode csrf invite=invite()/> }.into_any(),
                                    Err(error) => view! { <ErrorPage error/> }.into_any(),
                                }
                            })
                        }}
                    </Suspense>
                }
                .into_any()
            }}
        </WithSession>
    }
    .into_any()
}

/// The sign-up form, or why there is none (`BERTH_SIGNUP`).
#[component]
fn SignUpForm(mode: SignUpMode, csrf: String, invite: Option<String>) -> AnyView {
    let action = ServerAction::<SignUp>::new();
    let outcome: Signal<_> = action.value().into();
    reload_on_success(
        outcome,
        if mode.confirms_email {
            AFTER_SIGN_UP_TO_CONFIRM
        } else {
            AFTER_SIGN_UP
        },
    );
    let (allowed, intro) = match (mode.policy.as_str(), mode.first_account, &invite) {
        ("open", _, _) if mode.confirms_email => (true, "You will own a new team. We will e-mail you a link to \
            confirm the address before the account is made."),
        (_, true, _) => (true, "This is a new Berth: you create its first account and own its first team. \
            After you, people join when a team owner invites them."),
        ("open", _, _) => (true, "You will own a new team; invite the rest of your team from its Members page."),
        ("invite", _, Some(_)) => (true, "You were invited: choose a password for the invited address, and found a team of your own too."),
        ("invite", _, None) => (false, "Sign-up on this server is by invitation: open the link a team owner gave you."),
        _ => (false, "Sign-up is closed on this server. Ask a team owner to invite you, or an administrator \
            to create your account with berth user create."),
    };
    if !allowed {
        return view! {
            <Plain title="Sign-up is closed">
                <p>{intro}</p>
                <p class="muted">"Already have an account? " <a href="/signin">"Sign in"</a></p>
            </Plain>
        }
        .into_any();
    }
    view! {
        <Plain title="Create your account">
            <p>{intro}</p>
            <ActionForm action>
                <Csrf token=csrf/>
                {invite.map(|token| view! { <input type="hidden" name="invite" value=token/> })}
                <FormError outcome fields=&["email", "password", "team_name", "team_handle"]/>
                <Field label="E-mail" name="email" kind="email" autocomplete="username" error=field_error(outcome, "email")/>
                <Field label="Password" name="password" kind="password" autocomplete="new-password"
                    hint="At least 10 characters." error=field_error(outcome, "password")/>
                <Field label="Team name" name="team_name" autocomplete="organization" error=field_error(outcome, "team_name")/>
                <Field label="Team handle (optional)" name="team_handle" required=false
                    hint="Lower-case letters, digits and hyphens; used in URLs and the API, e.g. acme. Left empty, it is made from the team name."
                    error=field_error(outcome, "team_handle")/>
                <button type="submit" class="button button-primary">"Create account"</button>
            </ActionForm>
            <p class="muted">"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </Plain>
    }
    .into_any()
}

#[component]
pub fn InvitePage() -> AnyView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let invite = Resource::new(token, load_invite);
    let action = ServerAction::<AcceptInvite>::new();
    let outcome: Signal<_> = action.value().into();
    reload_on_success(outcome, "/");
    view! {
        <Title text="Invitation"/>
        <WithSession let:info>
            {if info.viewer.is_some() {
                view! { <Redirect path="/"/> }.into_any()
            } else {
                let csrf = info.csrf_token.clone();
                view! {
                    <Suspense fallback=|| ()>
                        {move || {
                            let csrf = csrf.clone();
                            Suspend::new(async move {
                                match invite.await {
                                    Ok(invite) => view! {
                                        <Plain title="Join your team">
                                            <p>
                                                "You were invited to " <strong>{invite.team_name}</strong>
                                                " as " <strong>{invite.email.clone()}</strong>
                                                {invite.role.map(|role| view! {
                                                    ", to join as " {if role == domain::Role::Owner { "an " } else { "a " }}
                                                    <strong>{role.as_str()}</strong> " (you will " {role.summary()} ")"
                                                })}
                                                ". Choose a password to finish setting up your account."
                                            </p>
                                            <ActionForm action>
                                                <Csrf token=csrf/>
                                                <input type="hidden" name="token" value=token()/>
                                                <FormError outcome fields=&["password"]/>
                                                <Field label="Password" name="password" kind="password" autocomplete="new-password"
                                                    hint="At least 10 characters." error=field_error(outcome, "password")/>
                                                <button type="submit" class="button button-primary">"Join the team"</button>
                                            </ActionForm>
                                        </Plain>
                                    }
                                    .into_any(),
                                    Err(views::AppError::NotFound) => view! {
                                        <Plain title="This invitation is no longer valid">
                                            <p>"The link was already used or has expired. Ask a team owner to add you again, or "
                                                <a href="/signin">"sign in"</a> "."</p>
                                        </Plain>
                                    }
                                    .into_any(),
                                    Err(error) => view! { <ErrorPage error/> }.into_any(),
                                }
                            })
                        }}
                    </Suspense>
                }
                .into_any()
            }}
        </WithSession>
    }
    .into_any()
}

/// Where a link e-mailed at sign-up leads: the password chosen then makes the account.
#[component]
pub fn ConfirmSignUpPage() -> AnyView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let pending = Resource::new(token, load_pending_sign_up);
    let action = ServerAction::<ConfirmSignUp>::new();
    let outcome: Signal<_> = action.value().into();
    reload_on_success(outcome, "/");
    view! {
        <Title text="Confirm your sign-up"/>
        <WithSession let:info>
            {if info.viewer.is_some() {
                view! { <Redirect path="/"/> }.into_any()
            } else {
                let csrf = info.csrf_token.clone();
                view! {
                    <Suspense fallback=|| ()>
                        {move || {
                            let csrf = csrf.clone();
                            Suspend::new(async move {
                                match pending.await {
                                    Ok(pending) => view! {
                                        <Plain title="Confirm your account">
                                            <p>
                                                "Enter the password you chose when signing up as "
                                                <strong>{pending.email.clone()}</strong>
                                                " to create your account and the team "
                                                <strong>{pending.team_name}</strong> " (" {pending.team_handle} ")."
                                            </p>
                                            <ActionForm action>
                                                <Csrf token=csrf/>
                                                <input type="hidden" name="token" value=token()/>
                                                <FormError outcome fields=&["password"]/>
                                                <Field label="Password" name="password" kind="password" autocomplete="current-password"
                                                    error=field_error(outcome, "password")/>
                                                <button type="submit" class="button button-primary">"Create my account"</button>
                                            </ActionForm>
                                            <p class="muted">"Did not sign up? Leave this page: nothing is made without the password."</p>
                                        </Plain>
                                    }
                                    .into_any(),
                                    Err(views::AppError::NotFound) => view! {
                                        <Plain title="This link is no longer valid">
                                            <p>"The link was already used or has expired. "
                                                <a href="/signup">"Sign up again"</a> " or " <a href="/signin">"sign in"</a> "."</p>
                                        </Plain>
                                    }
                                    .into_any(),
                                    Err(error) => view! { <ErrorPage error/> }.into_any(),
                                }
                            })
                        }}
                    </Suspense>
                }
                .into_any()
            }}
        </WithSession>
    }
    .into_any()
}
