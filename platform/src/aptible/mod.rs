//! Aptible's API, as Aptible's own clients speak it: Berth signs a team in, finds its apps,
//! and forwards deploy, configure and restart operations, then polls them and fetches
//! their logs. This module is only the wire: the request and response shapes (`wire.rs`)
//! and [`AptibleClient`]; what to forward when is the service's business.
//!
//! # Wire facts
//!
//! Read from the source of Aptible's clients (commits as fetched; "CLI" is aptible-cli
//! 0.26.6, `04255732`).
//!
//! **Two servers.** The auth server (`https://auth.aptible.com`; `APTIBLE_AUTH_ROOT_URL`)
//! issues tokens; the API (`https://api.aptible.com`; `APTIBLE_API_ROOT_URL`) does the rest
//! (aptible-api-ruby `lib/aptible/api.rb`, go-deploy `aptible/tokens.go`).
//!
//! **Signing in** — `POST {auth}/tokens`, the OAuth 2 password grant:
//! `grant_type=password`, `username` (the email), `password`, `scope=manage`, `expires_in`
//! (seconds), plus `otp_token` and `previous_login_attempt_id` on the second try
//! (aptible-auth-ruby `lib/aptible/auth/token.rb`: `oauth.password.get_token(email,
//! password, scope: 'manage', …)` against `token_url: '/tokens'`; CLI
//! `lib/aptible/cli/agent.rb#login`). Encoding: the CLI's oauth2 gem (2.0.9,
//! `lib/oauth2/client.rb#get_token`) sends a form (`application/x-www-form-urlencoded`);
//! the dashboard (aptible/app-ui `src/auth/token.ts#createToken`) and go-deploy
//! (`loginWithUsernameAndPassword`) send the same fields as JSON. So the auth server takes
//! both, and Berth sends JSON, like every other request it makes. Lifetimes as the CLI
//! asks: a week, or 12 hours with a one-time code.
//! - The answer is the token resource: `access_token`, `token_type`, `expires_in`,
//!   `expires_at`, `scope`, `created_at`, `id`, `_links.{self,user,actor}`, `_type: token`
//!   (app-ui `src/token/index.ts#TokenSuccessResponse`). `expires_at` is an integer epoch
//!   according to aptible-auth-ruby (`Token#expires_at`) but an ISO 8601 string according to
//!   the dashboard's types; both are read, then `expires_in`, then the JWT's `exp` claim
//!   (see `expiry.rs`).
//! - Failures carry `{"code", "error", "message", "exception_context"}`:
//!   `otp_token_required` asks for the one-time code, with
//!   `exception_context.failed_login_attempt_id` sent back as `previous_login_attempt_id`
//!   (CLI `agent.rb` and `spec/aptible/cli/agent_spec.rb`; `exception_context.u2f` offers a
//!   security key instead, which Berth does not support); `invalid_credentials` is a wrong
//!   email or password (app-ui `src/auth/loader.ts`, `src/ui/pages/login.test.tsx`). The
//!   dashboard's mocks answer `otp_token_required` with 400 and `invalid_credentials` with
//!   401: Berth goes by the `error` id, not the status.
//! - There is no refresh: the CLI and dashboard sign in again when the token expires.
//!
//! **A pasted token** is checked with `GET {auth}/current_token`, which answers the same
//! token resource (aptible-auth-ruby `Token.current_token`; CLI `helpers/token.rb`; app-ui
//! `fetchCurrentToken`). Only `expires_at` and the JWT's `exp` date an existing token:
//! whether its `expires_in` counts from now or from its creation is not documented.
//!
//! **Every API request** carries `Authorization: Bearer {token}`, `Content-Type:
//! application/json` and `Accept: application/json` (aptible-resource
//! `lib/aptible/resource/base.rb#populate_default_options!`, `lib/hyper_resource.rb`
//! `DEFAULT_HEADERS`). Answers are HAL: attributes, `_links.{rel}.href` (absolute URLs),
//! `_embedded.{rel}` (`lib/hyper_resource/adapter/hal_json.rb`); ids are integers.
//! Collections page with `?page=N` and `_links.next` until it is absent, with
//! `current_page`, `per_page`, `total_count` (`Base.each_page`; aptible-api-go
//! `ListAppsForAccount200Response`).
//!
//! **Errors** are `{"code", "error", "message"}` (aptible-api-go `docs/ModelError.md`);
//! HyperResource shows them as `"401 (invalid_token) (Invalid Token)"`
//! (`lib/hyper_resource/exceptions.rb`), so Berth shows the `error` id with the message. A
//! dead token answers 401 with `invalid_token` or `expired_token`, which the CLI turns into
//! "please run aptible login" (`bin/aptible`); the dashboard drops its token on any 401 to
//! a GET (`src/api/index.ts#expiredToken`). Berth: any 401 to a request that carried a
//! token means "reconnect needed".
//!
//! **Retries.** aptible-resource retries idempotent methods (GET, PUT, PATCH, DELETE…) on
//! connection errors and 5xx after 0.2, 0.8 and 2 s, and never POST
//! (`default_retry_coordinator.rb`). Berth retries GETs (3 tries, 0.2 and 0.8 s apart) and
//! nothing else: the cancel PUT is safe to repeat, but a worker that retries it can do so
//! on its next poll. An operation POST is never retried: a lost answer may still have
//! queued the operation.
//!
//! **Finding an app.** `GET /find/app?handle={app}&environment={environment handle}`
//! answers the app resource (CLI `helpers/app.rb#app_from_handle`; the environment
//! parameter is the environment's *handle*, `environment.handle`). A 404 is "no such app"
//! (aptible-resource `find_by_url` returns nil on any 404); an error
//! `multiple_resources_found` means the handle is ambiguous (CLI: "Multiple apps named …
//! exist, please specify with --environment"; the status is not documented). The app
//! resource has `id`, `handle`, `git_repo`, `status`, `_links.account` (its environment),
//! `_links.operations` (aptible-api-ruby `app.rb`, aptible-api-go `model_app.go`). The
//! fallback, for an API without `/find` (an old or proxied one): page through `GET /apps`
//! and read each candidate's environment from `_links.account.href` (`GET` of the account,
//! its `handle`), as `aptible apps` matches apps to environments by that link
//! (`subcommands/apps.rb`). Berth falls back when `/find/app` answers 404 *without*
//! Aptible's error body (a server that lacks the route), 405 or 501; a 404 with Aptible's
//! error body is "no such app". Which error id Aptible gives a missing app is not public.
//!
//! **Operations.** `POST /apps/{id}/operations` with `{"type", "env", "settings",
//! "sensitive_settings", "git_ref"}`, empty and nil fields dropped (CLI
//! `subcommands/deploy.rb`: `.delete_if { |_, v| v.nil? || v.try(:empty?) }`). A Direct
//! Docker Image deploy puts `APTIBLE_DOCKER_IMAGE` in `settings` and the registry
//! credentials in `sensitive_settings` (CLI `deploy.rb`; terraform-provider-aptible
//! `aptible/resource_app.go`, which also sends `env` in the same deploy); a git deploy
//! sends `git_ref` of a branch pushed beforehand (aptible-deploy-action `entrypoint.sh`:
//! push to `deploy-<time>`, then `deploy --git-commitish`); configure is `{"type":
//! "configure", "env"}` with `""` to unset (CLI `subcommands/config.rb`); restart is
//! `{"type": "restart"}` (`subcommands/restart.rb`). The answer is the operation: `id`,
//! `type`, `status`, `cancelled`, `aborted`, `git_ref`, `docker_ref`, `_links.{self,logs,
//! resource,account,…}` (aptible-api-go `model_operation.go`; app-ui
//! `defaultOperationResponse`). Statuses: `queued`, `running`, `succeeded`, `failed`
//! (app-ui `src/types/deploy.ts`); the CLI polls every second while `queued` or `running`
//! (`helpers/operation.rb#wait_for_completion`), the dashboard every 3 s. Cancel is `PUT
//! /operations/{id}` `{"cancelled": true}` (`operation.update!(cancelled: true)`; aptible-api-go
//! `UpdateOperationRequest`); there is no `cancelled` status.
//!
//! **Logs.** `GET /operations/{id}/logs` (the operation's `_links.logs.href`: aptible-api-ruby
//! `operation.rb#logs_url`) with the
//! bearer token answers **200 with a URL as its plain-text body** — "res body with a 200
//! is target redirect location for download" — and the log text is a plain `GET` of that
//! URL (an S3 presigned URL) without the token (CLI
//! `helpers/operation.rb#get_operation_logs_redirect`; app-ui `fetchOperationLogs` reads
//! the body as text and `fetch`es it; its mock answers `${apiUrl}/mock`). The CLI fetches
//! logs once the operation has finished. Berth also takes a 3xx `Location`, in case the API
//! ever redirects instead.
//!
//! # Where Berth connects
//!
//! The API and auth URLs are the operator's settings (`BERTH_APTIBLE_API_URL`,
//! `BERTH_APTIBLE_AUTH_URL`): https, or plain http to a loopback host (the test stand-in).
//! They are trusted like any operator setting and not put through the egress guard, and
//! neither follows redirects (a 3xx is an unexpected answer). URLs *named in Aptible's
//! answers* are remote input: `_links` Berth follows (pages, an app's environment) must be
//! on the API's own origin, and the log download must be https and goes through the
//! [egress guard](crate::egress) — public addresses only, unless the operator allows the
//! host — following https redirects only, each checked again. A log URL on the API's own
//! origin (the stand-in serves logs that way) is fetched like the API. No request body is
//! ever logged; log lines name the method, path and status.

mod error;
mod expiry;
mod wire;

pub use error::AptibleError;
pub use wire::{
    AccessToken, AptibleApp, AptibleOperation, OperationKind, OperationRequest, OperationStatus,
    TokenInfo, APTIBLE_DOCKER_IMAGE, APTIBLE_PRIVATE_REGISTRY_PASSWORD,
    APTIBLE_PRIVATE_REGISTRY_USERNAME, OTP_TOKEN_LIFETIME_SECONDS, TOKEN_LIFETIME_SECONDS,
};

use crate::egress::{find_refusal, Egress};
use domain::Secret;
use error::ErrorBody;
use reqwest::{
    header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION},
    Method, Response, StatusCode, Url,
};
use serde::de::DeserializeOwned;
use std::{
    collections::HashMap,
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use wire::{
    AccountResource, AppPage, AppResource, OperationResource, TokenGrant, TokenResource,
    TOKEN_SCOPE,
};
use zeroize::Zeroizing;

/// The log text Berth keeps, from the end: the failure is usually there.
pub const MAX_LOG_BYTES: usize = 10 * 1024 * 1024;
/// HAL answers; `/apps` pages embed a good deal per app.
const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;
/// Error bodies are read for `error` and `message` only; the log URL is one line.
const MAX_SMALL_BODY_BYTES: usize = 64 * 1024;
/// GETs: tries in all, and the pauses between them.
const GET_ATTEMPTS: usize = 3;
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];
/// `/apps` pages followed before giving up (an account with thousands of apps, or a loop).
const MAX_APP_PAGES: usize = 500;
const MAX_DOWNLOAD_REDIRECTS: usize = 5;
/// Secret values shorter than this are not scrubbed from messages: replacing "1" or "no"
/// everywhere would garble them, and such values are no secret.
const MIN_REDACTED_LEN: usize = 4;

const JSON: &str = "application/json";

/// The operation's page on Aptible's dashboard (where the CLI points when it cannot show
/// a log).
pub fn dashboard_operation_url(id: i64) -> String {
    format!("https://app.aptible.com/operations/{id}")
}

/// A client for Aptible's auth server and API. Cheap to clone.
#[derive(Clone)]
pub struct AptibleClient {
    api: Url,
    auth: Url,
    /// Aptible's API and auth server: no redirects, no egress guard (operator settings).
    http: reqwest::Client,
    /// Log downloads named by Aptible: egress-guarded, https redirects only.
    downloads: reqwest::Client,
    egress: Egress,
    timeout: Duration,
}

impl fmt::Debug for AptibleClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AptibleClient")
            .field("api", &self.api.as_str())
            .field("auth", &self.auth.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Which server answered, for messages.
#[derive(Clone, Copy)]
enum Server {
    Api,
    Auth,
    LogStorage,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Self::Api => "Aptible's API",
            Self::Auth => "Aptible's auth server",
            Self::LogStorage => "the log storage Aptible named",
        }
    }
}

impl AptibleClient {
    /// `api_url` and `auth_url` must be https, or http to a loopback host (127.0.0.0/8,
    /// `::1`, `localhost`), which is what tests use. `timeout` bounds each request,
    /// connecting and reading the answer included. Log downloads reach public addresses
    /// only; see [`AptibleClient::with_egress`].
    pub fn new(api_url: &str, auth_url: &str, timeout: Duration) -> Result<Self, String> {
        Self::with_egress(api_url, auth_url, timeout, Egress::default())
    }

    /// Like [`AptibleClient::new`], with log downloads allowed where `egress` allows.
    pub fn with_egress(
        api_url: &str,
        auth_url: &str,
        timeout: Duration,
        egress: Egress,
    ) -> Result<Self, String> {
        let api = parse_base("The Aptible API URL", api_url)?;
        let auth = parse_base("The Aptible auth URL", auth_url)?;
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
                .timeout(timeout)
                .connect_timeout(timeout)
        };
        let http = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| "The HTTP client's TLS stack did not initialise.".to_owned())?;
        let guard = egress.clone();
        let downloads =
            builder()
                // A proxy would resolve names itself, past the guard.
                .no_proxy()
                .dns_resolver(egress.resolver())
                .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                    match judge_download_redirect(&guard, attempt.previous().len(), attempt.url()) {
                        Ok(()) => attempt.follow(),
                        Err(refusal) => attempt.error(refusal),
                    }
                }))
                .build()
                .map_err(|_| "The HTTP client's TLS stack did not initialise.".to_owned())?;
        Ok(Self {
            api,
            auth,
            http,
            downloads,
            egress,
            timeout,
        })
    }

    pub fn api_url(&self) -> &Url {
        &self.api
    }

    pub fn auth_url(&self) -> &Url {
        &self.auth
    }

    /// Exchanges an email and password (and a one-time code, on the second try) for a
    /// `manage` token. [`AptibleError::OtpRequired`] asks for the code; pass its
    /// `previous_login_attempt_id` back with it.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &Secret,
        otp: Option<&str>,
        previous_login_attempt_id: Option<&str>,
    ) -> Result<AccessToken, AptibleError> {
        let otp = otp.map(str::trim).filter(|otp| !otp.is_empty());
        let grant = TokenGrant {
            grant_type: "password",
            username: email,
            password: password.expose(),
            scope: TOKEN_SCOPE,
            expires_in: if otp.is_some() {
                OTP_TOKEN_LIFETIME_SECONDS
            } else {
                TOKEN_LIFETIME_SECONDS
            },
            otp_token: otp,
            previous_login_attempt_id: previous_login_attempt_id.filter(|id| !id.is_empty()),
        };
        let body = Zeroizing::new(serde_json::to_vec(&grant).expect("strings serialise"));
        let url = endpoint(&self.auth, "/tokens");
        let outcome = async {
            let response = self
                .call(Server::Auth, Method::POST, url, None, Some(body.to_vec()))
                .await?;
            if !response.status().is_success() {
                return Err(sign_in_error(response).await);
            }
            let token: TokenResource = read_json(response, Server::Auth, "POST /tokens").await?;
            let access_token = token
                .access_token
                .filter(|token| !token.is_empty())
                .ok_or_else(|| AptibleError::protocol("POST /tokens answered no access_token"))?;
            let expires_at_ms = expiry::expires_at_ms(
                token.expires_at.as_ref(),
                token.expires_in.as_ref(),
                &access_token,
                now_ms(),
            );
            Ok(AccessToken {
                token: Secret::new(access_token),
                expires_at_ms,
            })
        }
        .await;
        outcome.map_err(|error| error.redact(password.expose()))
    }

    /// What the auth server says of a token someone pasted: whether it is accepted, its
    /// scope and expiry.
    pub async fn check_token(&self, token: &Secret) -> Result<TokenInfo, AptibleError> {
        let url = endpoint(&self.auth, "/current_token");
        let resource: TokenResource = self
            .get_json(Server::Auth, url, token, "GET /current_token")
            .await
            .map_err(|error| error.redact(token.expose()))?;
        Ok(TokenInfo {
            expires_at_ms: expiry::expires_at_ms(
                resource.expires_at.as_ref(),
                None,
                token.expose(),
                now_ms(),
            ),
            scope: resource.scope,
        })
    }

    /// The app `app` in the environment `environment` (both handles).
    pub async fn find_app(
        &self,
        token: &Secret,
        environment: &str,
        app: &str,
    ) -> Result<AptibleApp, AptibleError> {
        self.find_app_inner(token, environment, app)
            .await
            .map_err(|error| error.redact(token.expose()))
    }

    async fn find_app_inner(
        &self,
        token: &Secret,
        environment: &str,
        app: &str,
    ) -> Result<AptibleApp, AptibleError> {
        let mut url = endpoint(&self.api, "/find/app");
        url.query_pairs_mut()
            .append_pair("handle", app)
            .append_pair("environment", environment);
        let response = self
            .call(Server::Api, Method::GET, url, Some(token), None)
            .await?;
        let status = response.status();
        if status.is_success() {
            let found: AppResource = read_json(response, Server::Api, "GET /find/app").await?;
            return Ok(AptibleApp {
                id: found.id,
                handle: found.handle,
                environment: environment.to_owned(),
                git_repo: found.git_repo.filter(|repo| !repo.is_empty()),
            });
        }
        let body = read_small_body(response).await;
        let parsed = ErrorBody::parse(&body);
        let no_route = matches!(
            status,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) || (status == StatusCode::NOT_FOUND && parsed.is_none());
        if no_route {
            tracing::debug!(%status, "GET /find/app is not served here: paging /apps");
            return self.find_app_by_paging(token, environment, app).await;
        }
        if status == StatusCode::NOT_FOUND {
            return Err(no_such_app(environment, app));
        }
        if parsed.as_ref().and_then(ErrorBody::error_id).as_deref()
            == Some("multiple_resources_found")
        {
            return Err(ambiguous_app(environment, app));
        }
        Err(api_error(status, &body, true))
    }

    /// The fallback for an API without `/find/app`: every page of `/apps`, and the
    /// environment of each app with the right handle.
    async fn find_app_by_paging(
        &self,
        token: &Secret,
        environment: &str,
        app: &str,
    ) -> Result<AptibleApp, AptibleError> {
        let mut next = Some(endpoint(&self.api, "/apps"));
        let mut seen_pages = Vec::new();
        let mut environments: HashMap<String, String> = HashMap::new();
        let mut found = Vec::new();
        while let Some(page_url) = next.take() {
            if seen_pages.len() >= MAX_APP_PAGES || seen_pages.contains(&page_url) {
                return Err(AptibleError::protocol(format!(
                    "GET /apps did not end after {} pages",
                    seen_pages.len()
                )));
            }
            seen_pages.push(page_url.clone());
            let page: AppPage = self
                .get_json(Server::Api, page_url, token, "GET /apps")
                .await?;
            for candidate in page.embedded.apps {
                if candidate.handle != app {
                    continue;
                }
                let Some(account) = candidate.links.account.as_ref() else {
                    tracing::debug!(id = candidate.id, "an app without _links.account");
                    continue;
                };
                let handle = match environments.get(&account.href) {
                    Some(handle) => handle.clone(),
                    None => {
                        let url = self.followed_link(&account.href)?;
                        let account_resource: AccountResource = self
                            .get_json(Server::Api, url, token, "GET /accounts/{id}")
                            .await?;
                        environments.insert(account.href.clone(), account_resource.handle.clone());
                        account_resource.handle
                    }
                };
                if handle == environment {
                    found.push(candidate);
                }
            }
            next = match page.links.next {
                Some(link) => Some(self.followed_link(&link.href)?),
                None => None,
            };
        }
        match found.len() {
            0 => Err(no_such_app(environment, app)),
            1 => {
                let found = found.remove(0);
                Ok(AptibleApp {
                    id: found.id,
                    handle: found.handle,
                    environment: environment.to_owned(),
                    git_repo: found.git_repo.filter(|repo| !repo.is_empty()),
                })
            }
            _ => Err(ambiguous_app(environment, app)),
        }
    }

    /// A `_links` href Berth follows: on the API's own origin only.
    fn followed_link(&self, href: &str) -> Result<Url, AptibleError> {
        let url = self
            .api
            .join(href)
            .map_err(|_| AptibleError::protocol("a link in Aptible's answer is not a URL"))?;
        if !same_origin(&url, &self.api) {
            return Err(AptibleError::Refused {
                message: format!(
                    "{}: Aptible's answer links to another host, and Berth follows links on \
                     the API's own host only",
                    origin_of(&url)
                ),
            });
        }
        Ok(url)
    }

    /// Starts an operation on the app. Sent once, never retried: if the answer is lost,
    /// the operation may still have been queued.
    pub async fn create_operation(
        &self,
        token: &Secret,
        app_id: i64,
        request: &OperationRequest,
    ) -> Result<AptibleOperation, AptibleError> {
        let url = endpoint(&self.api, &format!("/apps/{app_id}/operations"));
        let outcome = async {
            let body = Zeroizing::new(request.to_body());
            let response = self
                .call(
                    Server::Api,
                    Method::POST,
                    url,
                    Some(token),
                    Some(body.to_vec()),
                )
                .await?;
            if !response.status().is_success() {
                let status = response.status();
                let body = read_small_body(response).await;
                return Err(match status {
                    StatusCode::NOT_FOUND => AptibleError::NotFound {
                        message: format!(
                            "Aptible has no app with id {app_id} (or this token may not see it)."
                        ),
                    },
                    _ => api_error(status, &body, true),
                });
            }
            let operation: OperationResource =
                read_json(response, Server::Api, "POST /apps/{id}/operations").await?;
            Ok(operation.into())
        }
        .await;
        outcome.map_err(|mut error| {
            error = error.redact(token.expose());
            let secrets = request.env.values().chain(
                request
                    .sensitive_settings
                    .iter()
                    .flat_map(|map| map.values()),
            );
            for secret in secrets {
                if secret.len() >= MIN_REDACTED_LEN {
                    error = error.redact(secret.expose());
                }
            }
            error
        })
    }

    /// The operation's current state (for polling).
    pub async fn operation(
        &self,
        token: &Secret,
        id: i64,
    ) -> Result<AptibleOperation, AptibleError> {
        let url = endpoint(&self.api, &format!("/operations/{id}"));
        let resource: OperationResource = self
            .get_json(Server::Api, url, token, "GET /operations/{id}")
            .await
            .map_err(|error| not_found_operation(error, id).redact(token.expose()))?;
        Ok(resource.into())
    }

    /// Asks Aptible to cancel the operation; it ends `failed` (or `succeeded`, if it was
    /// already finishing) with `cancelled: true`.
    pub async fn cancel_operation(
        &self,
        token: &Secret,
        id: i64,
    ) -> Result<AptibleOperation, AptibleError> {
        let url = endpoint(&self.api, &format!("/operations/{id}"));
        let outcome = async {
            let response = self
                .call(
                    Server::Api,
                    Method::PUT,
                    url,
                    Some(token),
                    Some(br#"{"cancelled":true}"#.to_vec()),
                )
                .await?;
            if !response.status().is_success() {
                let status = response.status();
                let body = read_small_body(response).await;
                return Err(api_error(status, &body, true));
            }
            let resource: OperationResource =
                read_json(response, Server::Api, "PUT /operations/{id}").await?;
            Ok(resource.into())
        }
        .await;
        outcome.map_err(|error| not_found_operation(error, id).redact(token.expose()))
    }

    /// The operation's log text, at most [`MAX_LOG_BYTES`] of it (the end, when longer).
    pub async fn operation_logs(&self, token: &Secret, id: i64) -> Result<String, AptibleError> {
        self.operation_logs_inner(token, id)
            .await
            .map_err(|error| not_found_operation(error, id).redact(token.expose()))
    }

    async fn operation_logs_inner(&self, token: &Secret, id: i64) -> Result<String, AptibleError> {
        let url = endpoint(&self.api, &format!("/operations/{id}/logs"));
        let response = self
            .call(Server::Api, Method::GET, url, Some(token), None)
            .await?;
        let status = response.status();
        let location = if status.is_redirection() {
            response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    AptibleError::protocol("GET /operations/{id}/logs redirected to nowhere")
                })?
        } else if status.is_success() {
            let body = read_small_body(response).await;
            let text = String::from_utf8_lossy(&body);
            // The body is the URL itself; a JSON string is taken too.
            text.trim().trim_matches('"').to_owned()
        } else {
            let body = read_small_body(response).await;
            return Err(api_error(status, &body, true));
        };
        let log_url = self.api.join(&location).map_err(|_| {
            AptibleError::protocol("GET /operations/{id}/logs did not answer a URL")
        })?;
        self.download_log(log_url).await
    }

    async fn download_log(&self, url: Url) -> Result<String, AptibleError> {
        let (client, server) = if same_origin(&url, &self.api) {
            (&self.http, Server::Api)
        } else {
            if url.scheme() != "https" {
                return Err(AptibleError::Refused {
                    message: format!(
                        "{}: Aptible named a log URL that is not https",
                        origin_of(&url)
                    ),
                });
            }
            self.egress
                .check_url(&url)
                .map_err(|refusal| AptibleError::Refused {
                    message: format!("the log URL Aptible named: {refusal}"),
                })?;
            (&self.downloads, Server::LogStorage)
        };
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            // No token: the URL carries its own authorisation (an S3 presigned URL, which
            // refuses a second one in a header).
            let outcome = client.get(url.clone()).send().await;
            if attempt < GET_ATTEMPTS && worth_retrying(&outcome) {
                tokio::time::sleep(RETRY_PAUSES[attempt - 1]).await;
                continue;
            }
            break outcome.map_err(|error| self.transport_error(&error, server, &url))?;
        };
        let status = response.status();
        tracing::debug!(%status, host = url.host_str().unwrap_or(""), "aptible log download");
        if !status.is_success() {
            return Err(AptibleError::protocol(format!(
                "the log download from {} answered HTTP {}",
                origin_of(&url),
                status.as_u16()
            )));
        }
        read_log_tail(response, MAX_LOG_BYTES)
            .await
            .map_err(|error| self.transport_error(&error, server, &url))
    }

    // --- Plumbing -------------------------------------------------------------------

    /// One request with Aptible's headers; GETs are tried again after a connection
    /// failure or a 5xx, other methods are sent once.
    async fn call(
        &self,
        server: Server,
        method: Method,
        url: Url,
        token: Option<&Secret>,
        body: Option<Vec<u8>>,
    ) -> Result<Response, AptibleError> {
        let attempts = if method == Method::GET {
            GET_ATTEMPTS
        } else {
            1
        };
        let authorization = token.map(bearer).transpose()?;
        let mut body = body;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, JSON)
                .header(CONTENT_TYPE, JSON);
            if let Some(authorization) = &authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            if let Some(body) = body.take() {
                request = request.body(body);
            }
            let outcome = request.send().await;
            match &outcome {
                Ok(response) => tracing::debug!(
                    %method, path = url.path(), status = response.status().as_u16(), attempt,
                    "aptible request"
                ),
                Err(_) => tracing::debug!(
                    %method, path = url.path(), attempt, "aptible request failed to connect"
                ),
            }
            if attempt < attempts && worth_retrying(&outcome) {
                tokio::time::sleep(RETRY_PAUSES[attempt - 1]).await;
                continue;
            }
            return outcome.map_err(|error| self.transport_error(&error, server, &url));
        }
    }

    /// A GET whose success is JSON of type `T`; a failure becomes the matching error.
    async fn get_json<T: DeserializeOwned>(
        &self,
        server: Server,
        url: Url,
        token: &Secret,
        what: &str,
    ) -> Result<T, AptibleError> {
        let response = self
            .call(server, Method::GET, url, Some(token), None)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = read_small_body(response).await;
            return Err(api_error(status, &body, true));
        }
        read_json(response, server, what).await
    }

    fn transport_error(&self, error: &reqwest::Error, server: Server, url: &Url) -> AptibleError {
        if let Some(refusal) = find_refusal(error) {
            return AptibleError::Refused {
                message: format!("the log URL Aptible named: {refusal}"),
            };
        }
        if let Some(refusal) = find_download_refusal(error) {
            return AptibleError::Refused {
                message: refusal.0.clone(),
            };
        }
        let host = origin_of(url);
        let message = if error.is_timeout() {
            format!(
                "{} ({host}) did not answer within {} s",
                server.name(),
                self.timeout.as_secs_f32()
            )
        } else if error.is_connect() {
            format!("the connection to {} ({host}) failed", server.name())
        } else if error.is_body() || error.is_decode() {
            format!("the answer from {} ({host}) broke off", server.name())
        } else {
            format!("the request to {} ({host}) failed", server.name())
        };
        AptibleError::Unreachable { message }
    }
}

/// Whether a GET is worth another try: no connection, or a 5xx.
fn worth_retrying(outcome: &Result<Response, reqwest::Error>) -> bool {
    match outcome {
        Ok(response) => response.status().is_server_error(),
        Err(error) => {
            find_refusal(error).is_none()
                && find_download_refusal(error).is_none()
                && (error.is_connect() || error.is_timeout() || error.is_request())
        }
    }
}

fn bearer(token: &Secret) -> Result<HeaderValue, AptibleError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        AptibleError::ReconnectNeeded {
            message: "the token contains characters no HTTP header can carry".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `base` + `path`, keeping a path prefix the base may have.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url
}

fn parse_base(name: &str, input: &str) -> Result<Url, String> {
    let input = input.trim();
    let url = Url::parse(input).map_err(|_| format!("{name} ({input}) is not a URL."))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{name} ({input}) must use https: plain http is accepted only to this \
                 machine's loopback (for tests)."
            ))
        }
        _ => return Err(format!("{name} ({input}) must be an https:// URL.")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{name} ({input}) names no host."));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{name} must not carry a user name or password."));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{name} ({input}) must not have a query or fragment."
        ));
    }
    Ok(url)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `scheme://host[:port]`: what a message may say of a URL (never its path or query,
/// which for a presigned URL hold a signature).
fn origin_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn no_such_app(environment: &str, app: &str) -> AptibleError {
    AptibleError::NotFound {
        message: format!(
            "Aptible has no app \"{app}\" in the environment \"{environment}\" (or this \
             token may not see it)."
        ),
    }
}

fn ambiguous_app(environment: &str, app: &str) -> AptibleError {
    AptibleError::Ambiguous {
        message: format!(
            "Aptible has several apps named \"{app}\" in the environment \"{environment}\"."
        ),
    }
}

fn not_found_operation(error: AptibleError, id: i64) -> AptibleError {
    match error {
        AptibleError::NotFound { .. } => AptibleError::NotFound {
            message: format!("Aptible has no operation {id} (or this token may not see it)."),
        },
        other => other,
    }
}

/// The error for a failed answer. `authenticated`: the request carried a token, so a 401
/// means the token is no longer accepted.
fn api_error(status: StatusCode, body: &[u8], authenticated: bool) -> AptibleError {
    let parsed = ErrorBody::parse(body);
    let described = parsed
        .as_ref()
        .map(ErrorBody::describe)
        .filter(|text| !text.is_empty());
    if status == StatusCode::UNAUTHORIZED && authenticated {
        return AptibleError::ReconnectNeeded {
            message: described.unwrap_or_else(|| "HTTP 401".into()),
        };
    }
    if status == StatusCode::NOT_FOUND {
        return AptibleError::NotFound {
            message: described.unwrap_or_else(|| "Aptible has no such resource.".into()),
        };
    }
    if status.is_redirection() {
        return AptibleError::protocol(format!(
            "Aptible answered a redirect (HTTP {}) where Berth expected an answer",
            status.as_u16()
        ));
    }
    match parsed {
        Some(parsed) => AptibleError::Api {
            status: status.as_u16(),
            error: parsed
                .error_id()
                .unwrap_or_else(|| format!("http_{}", status.as_u16())),
            message: parsed.message(),
        },
        None if matches!(status.as_u16(), 502..=504) => AptibleError::Unreachable {
            message: format!(
                "Aptible's API answered HTTP {} ({}): it is down or overloaded; try again \
                 shortly",
                status.as_u16(),
                status.canonical_reason().unwrap_or("error")
            ),
        },
        None => AptibleError::Api {
            status: status.as_u16(),
            error: format!("http_{}", status.as_u16()),
            message: status.canonical_reason().unwrap_or("").to_owned(),
        },
    }
}

async fn sign_in_error(response: Response) -> AptibleError {
    let status = response.status();
    let body = read_small_body(response).await;
    let Some(parsed) = ErrorBody::parse(&body) else {
        return match status {
            StatusCode::UNAUTHORIZED => AptibleError::WrongCredentials {
                message: "HTTP 401".into(),
            },
            _ => api_error(status, &body, false),
        };
    };
    let described = parsed.describe();
    match parsed.error_id().as_deref() {
        Some("otp_token_required") => AptibleError::OtpRequired {
            previous_login_attempt_id: parsed.failed_login_attempt_id(),
        },
        Some(
            "invalid_credentials"
            | "invalid_grant"
            | "invalid_email"
            | "access_denied"
            | "unauthorized",
        ) => AptibleError::WrongCredentials { message: described },
        _ if status == StatusCode::UNAUTHORIZED => {
            AptibleError::WrongCredentials { message: described }
        }
        _ => api_error(status, &body, false),
    }
}

async fn read_json<T: DeserializeOwned>(
    response: Response,
    server: Server,
    what: &str,
) -> Result<T, AptibleError> {
    let body = read_body(response, MAX_JSON_BYTES)
        .await
        .map_err(|error| match error {
            ReadError::TooLarge => AptibleError::protocol(format!(
                "the answer to {what} is larger than {MAX_JSON_BYTES} bytes"
            )),
            ReadError::Broken => AptibleError::Unreachable {
                message: format!("the answer from {} broke off", server.name()),
            },
        })?;
    // serde's messages can quote the body; say only where and what kind of problem.
    serde_json::from_slice(&body).map_err(|error| {
        let kind = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "is not JSON",
            _ => "lacks a field Berth needs, or has one of another type",
        };
        AptibleError::protocol(format!(
            "the answer to {what} {kind} (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

enum ReadError {
    TooLarge,
    Broken,
}

async fn read_body(mut response: Response, limit: usize) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(|_| ReadError::Broken)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Up to [`MAX_SMALL_BODY_BYTES`]; a failure to read only loses detail.
async fn read_small_body(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_SMALL_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_SMALL_BODY_BYTES {
            break;
        }
    }
    body
}

const CUT_NOTE: &str = "[Berth kept the end of this log: it is longer than 10 MiB.]\n";

/// The last `limit` bytes of the body as text, starting at a line, with a note when the
/// start was cut.
async fn read_log_tail(mut response: Response, limit: usize) -> Result<String, reqwest::Error> {
    let keep = limit - CUT_NOTE.len();
    let mut buffer: Vec<u8> = Vec::new();
    let mut cut = false;
    while let Some(chunk) = response.chunk().await? {
        buffer.extend_from_slice(&chunk);
        if buffer.len() > 2 * keep {
            buffer.drain(..buffer.len() - keep);
            cut = true;
        }
    }
    Ok(tail_text(buffer, keep, cut))
}

fn tail_text(mut buffer: Vec<u8>, keep: usize, mut cut: bool) -> String {
    if buffer.len() > keep {
        buffer.drain(..buffer.len() - keep);
        cut = true;
    }
    if cut {
        // Start at a whole line (and never inside a UTF-8 sequence) when one is near.
        if let Some(newline) = buffer.iter().take(64 * 1024).position(|b| *b == b'\n') {
            buffer.drain(..=newline);
        }
    }
    let text = String::from_utf8_lossy(&buffer).into_owned();
    if cut {
        format!("{CUT_NOTE}{text}")
    } else {
        text
    }
}

/// A redirect of a log download Berth did not follow.
#[derive(Debug)]
struct DownloadRedirectRefused(String);

impl fmt::Display for DownloadRedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DownloadRedirectRefused {}

fn judge_download_redirect(
    egress: &Egress,
    hops: usize,
    to: &Url,
) -> Result<(), DownloadRedirectRefused> {
    if hops > MAX_DOWNLOAD_REDIRECTS {
        return Err(DownloadRedirectRefused(
            "the log download redirected too many times".into(),
        ));
    }
    if to.scheme() != "https" {
        return Err(DownloadRedirectRefused(format!(
            "{}: the log download redirected to a URL that is not https",
            origin_of(to)
        )));
    }
    egress.check_url(to).map_err(|refusal| {
        DownloadRedirectRefused(format!("the log download redirected: {refusal}"))
    })
}

fn find_download_refusal<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a DownloadRedirectRefused> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(refusal) = current.downcast_ref::<DownloadRedirectRefused>() {
            return Some(refusal);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_https_or_loopback_http() {
        for good in [
            "https://api.aptible.com",
            "https://api.aptible.com/",
            "http://127.0.0.1:4000",
            "http://localhost:4000/prefix",
            "http://[::1]:4000",
        ] {
            assert!(
                AptibleClient::new(good, good, Duration::from_secs(1)).is_ok(),
                "{good}"
            );
        }
        for (bad, says) in [
            ("http://api.aptible.com", "must use https"),
            ("http://10.0.0.1", "must use https"),
            ("ftp://api.aptible.com", "https://"),
            ("api.aptible.com", "not a URL"),
            ("https://user:pw@api.aptible.com", "user name or password"),
            ("https://api.aptible.com/?x=1", "query"),
        ] {
            let error = AptibleClient::new(bad, "https://auth.aptible.com", Duration::from_secs(1))
                .unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        let base = Url::parse("https://example.com/aptible/").unwrap();
        assert_eq!(
            endpoint(&base, "/apps/1/operations").as_str(),
            "https://example.com/aptible/apps/1/operations"
        );
        let bare = Url::parse("https://api.aptible.com").unwrap();
        assert_eq!(
            endpoint(&bare, "/tokens").as_str(),
            "https://api.aptible.com/tokens"
        );
    }

    #[test]
    fn errors_map_to_what_the_user_must_do() {
        let expired = api_error(
            StatusCode::UNAUTHORIZED,
            br#"{"code":401,"error":"expired_token","message":"Token expired"}"#,
            true,
        );
        assert_eq!(
            expired,
            AptibleError::ReconnectNeeded {
                message: "expired_token: Token expired".into()
            }
        );
        let forbidden = api_error(
            StatusCode::FORBIDDEN,
            br#"{"code":403,"error":"forbidden","message":"You may not"}"#,
            true,
        );
        assert_eq!(
            forbidden,
            AptibleError::Api {
                status: 403,
                error: "forbidden".into(),
                message: "You may not".into()
            }
        );
        assert_eq!(
            forbidden.to_string(),
            "Aptible answered forbidden (HTTP 403): You may not"
        );
        assert!(matches!(
            api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", true),
            AptibleError::Unreachable { .. }
        ));
        let teapot = api_error(StatusCode::IM_A_TEAPOT, b"<html>secret page</html>", true);
        assert!(!teapot.to_string().contains("secret page"), "{teapot}");
        assert!(matches!(
            api_error(StatusCode::FOUND, b"", true),
            AptibleError::Protocol { .. }
        ));
    }

    #[test]
    fn long_logs_keep_their_end_from_a_line_start() {
        let text = tail_text(b"one\ntwo\nthree\n".to_vec(), 9, false);
        assert_eq!(text, format!("{CUT_NOTE}three\n"));
        assert_eq!(tail_text(b"short\n".to_vec(), 100, false), "short\n");
        // A cut inside a multi-byte character never shows half of it.
        let text = tail_text("é\néé\n".as_bytes().to_vec(), 6, false);
        assert_eq!(text, format!("{CUT_NOTE}éé\n"));
    }

    #[test]
    fn download_redirects_stay_on_https_and_public_addresses() {
        let egress = Egress::default();
        let ok = Url::parse("https://s3.amazonaws.com/logs/1?sig=x").unwrap();
        assert!(judge_download_redirect(&egress, 1, &ok).is_ok());
        for bad in [
            "http://s3.amazonaws.com/logs",
            "https://169.254.169.254/",
            "https://10.0.0.1/",
        ] {
            let url = Url::parse(bad).unwrap();
            assert!(judge_download_redirect(&egress, 1, &url).is_err(), "{bad}");
        }
        assert!(judge_download_redirect(&egress, MAX_DOWNLOAD_REDIRECTS + 1, &ok).is_err());
    }

    #[test]
    fn messages_name_origins_not_signed_paths() {
        let url = Url::parse("https://bucket.s3.amazonaws.com:8443/op/1.log?X-Amz-Signature=abc")
            .unwrap();
        assert_eq!(origin_of(&url), "https://bucket.s3.amazonaws.com:8443");
    }
}
