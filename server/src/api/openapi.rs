//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations and the body types of `views::api` (their schemas are derived behind the
//! `openapi` feature of `views` and `domain`, which only this crate enables, so the browser
//! bundle does not carry them). Served without authentication at `/api/v1/openapi.json`;
//! the docs page (`/api/docs`) lists the same operations.
//!
//! Error answers are added here, by rule, rather than repeated on every handler: all share
//! the shape `{"error": {"kind", "message", "field"?, "reason"?}}`.

use super::{apps, credentials, me, platforms, teams};
use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use std::sync::OnceLock;
use utoipa::{
    openapi::{
        path::{Operation, ParameterIn},
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
        HttpMethod, OpenApi as Document, Ref, ResponseBuilder,
    },
    Modify, OpenApi,
};
use views::api::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth API",
        description = "The JSON API of Berth, a self-hosted deploy console. Authenticate with \
                       `Authorization: Bearer <API token>` (tokens from *API tokens* in the \
                       console or `berth token create`). Teams are addressed by handle; another \
                       team's resources answer 404. Times are Unix milliseconds.",
    ),
    paths(
        document,
        me::show,
        me::invitations,
        me::accept,
        me::decline,
        teams::show,
        teams::update,
        teams::members,
        teams::add_member,
        teams::change_role,
        teams::remove_member,
        teams::deploy_key,
        teams::generate_deploy_key,
        teams::audit,
        platforms::show,
        platforms::connect,
        platforms::disconnect,
        credentials::list,
        credentials::create,
        credentials::show,
        credentials::update,
        credentials::delete,
        credentials::verify,
        apps::list,
        apps::create,
        apps::show,
        apps::refs,
        apps::fetch_refs,
        apps::bases,
        apps::runtime_log,
        apps::deploy,
        apps::config,
        apps::configure,
        apps::restart,
        apps::app_operations,
        apps::team_operations,
        apps::operation,
        apps::log,
        apps::events,
        apps::cancel,
        apps::redeploy,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security, &Errors),
    tags(
        (name = "teams", description = "Who you are, teams, members, the team's ssh deploy key and the audit trail."),
        (name = "credentials", description = "Team registry credentials: secrets go in and never come out."),
        (name = "apps", description = "Apps, deploys, configuration, restarts and logs."),
        (name = "operations", description = "Deploys, configuration changes and restarts, and their history."),
        (name = "platforms", description = "Where apps run besides this server: the team's connection to Aptible."),
        (name = "meta", description = "This document."),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn spec() -> &'static Document {
    static SPEC: OnceLock<Document> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    })
}

/// The document as JSON text, built once.
fn spec_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        spec()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document (no authentication).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", summary = "This OpenAPI document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of `/api/v1`.", content_type = "application/json")))]
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], spec_json()).into_response()
}

/// The bearer scheme, required by every operation that does not say otherwise.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description =
            Some("An API token: *API tokens* in the console, or `berth token create`.".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The error answers each operation can give, by rule (see [`error_statuses`]).
struct Errors;

impl Modify for Errors {
    fn modify(&self, openapi: &mut Document) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Patch, item.patch.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
            ] {
                let Some(operation) = operation else { continue };
                for (status, description) in error_statuses(path, &method, operation) {
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(response.into());
                }
            }
        }
    }
}

/// Which errors an operation can answer with, and why.
fn error_statuses(
    path: &str,
    method: &HttpMethod,
    operation: &Operation,
) -> Vec<(u16, &'static str)> {
    // Operations with `security: [{}]` are public (this document).
    let public = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| r == &SecurityRequirement::default()));
    if public {
        return Vec::new();
    }
    let changes = !matches!(method, HttpMethod::Get);
    let has_body = operation.request_body.is_some();
    let params = operation.parameters.as_deref().unwrap_or_default();
    let has_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let mut statuses = vec![(
        401,
        "No valid API token: send `Authorization: Bearer <token>`.",
    )];
    if path.contains('{') {
        statuses.push((403, "Your role in the team does not allow this."));
        statuses.push((
            404,
            "No such team, app, credential, member or operation (or another team's).",
        ));
    }
    if changes {
        statuses.push((
            409,
            "The request clashes with existing data (a taken name, the last owner, an operation that is no longer queued).",
        ));
    }
    if has_body {
        statuses.push((413, "The body is larger than Berth accepts."));
    }
    if has_body || has_query || changes {
        statuses.push((
            422,
            "A value is wrong (`field` names it), or a registry refused an image (`verification_failed` with `reason`).",
        ));
    }
    if changes {
        statuses.push((429, "Too many attempts: wait and try again."));
    }
    if path.contains("/apps/") || path.starts_with("/api/v1/operations/") {
        statuses.push((
            503,
            "This server cannot do it now (the local engine or git is not available, or the \
             app runs on Aptible and the team is not connected or Aptible does not answer).",
        ));
    } else if changes && (path.ends_with("/apps") || path.contains("/platforms/")) {
        statuses.push((
            503,
            "Aptible cannot be used now (the team is not connected, or Aptible does not answer).",
        ));
    } else if changes && path.ends_with("/deploy-key") {
        statuses.push((
            503,
            "This server cannot make ssh keys (ssh-keygen is not installed).",
        ));
    }
    statuses
}
