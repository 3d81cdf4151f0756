//! Verifying registry credentials: logging in to a registry with the Docker Registry HTTP
//! API v2 challenge flow and, given an image, proving pull access by resolving its manifest.
//!
//! The flow, as `docker login` and `docker pull` do it:
//!
//! 1. `GET /v2/` without credentials. 200: the registry is open. 401: its
//!    `WWW-Authenticate` header says how to log in.
//! 2. `Basic`: send the credentials with every request; `GET /v2/` with them proves them.
//!    `Bearer realm=…,service=…`: exchange the credentials (Basic auth on the realm URL) for
//!    a token scoped to `repository:<repo>:pull`, and send that token.
//! 3. `GET /v2/<repo>/manifests/<tag or digest>`, accepting OCI and Docker manifests and
//!    indexes; for an index, also the linux/amd64 manifest; for an image, its config blob
//!    (which names its platform).
//!
//! Plain HTTP is used only for hosts the operator lists as insecure. Credentials are never
//! logged and never part of an error: see [`RegistryError::redact`].
//!
//! Every request goes through the [egress guard](crate::egress): the registry, its token
//! service and any redirect reach only public addresses unless the operator listed the host.
//! Redirects stay on the same host over the same or a safer scheme, except blob downloads,
//! which registries routinely send to object storage elsewhere (Docker Hub, GHCR, ECR): those
//! may leave the host over https only, without the `Authorization` header, and each hop is
//! checked by the guard like any request. Token services must be https, or http on the
//! host of a listed insecure registry. Messages never quote a remote body.

mod challenge;
mod credentials;
mod error;
pub(crate) mod manifest;
mod redirect;

pub use challenge::{parse_challenges, Challenge};
pub use credentials::{BasicCredentials, Secret};
pub use error::{Missing, RegistryError};
pub use manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

use crate::egress::{find_refusal, Egress};
use base64::Engine as _;
use domain::{Digest, ImageReference, RegistryHost};
use error::{describe_transport, describe_unexpected, mentions_expiry, ApiErrors};
use manifest::{kind_of, ImageConfig, ImageManifest, Index, ManifestKind};
use redirect::origin_of;
use reqwest::{
    header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE},
    RequestBuilder, Response, StatusCode, Url,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Error bodies are read for their error codes only; a proxy's error page can be large.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Registry tokens are JWTs of a few kilobytes; this leaves room for the chattiest.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// How the registry let us in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// The registry asked for nothing (credentials, if given, were not needed).
    Anonymous,
    /// Username and password on every request (distribution with htpasswd, Artifactory).
    Basic,
    /// A token from the registry's token service (Docker Hub, GHCR, GitLab, Harbor, Quay);
    /// also when that token was issued anonymously.
    Bearer,
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub auth: AuthScheme,
    /// The resolved image, when one was given.
    pub image: Option<ResolvedImage>,
}

/// What the registry says an image reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedImage {
    /// The digest of the manifest the reference names: for a multi-platform image, of its
    /// index. Pinning a deploy to it is pinning what the user named.
    pub digest: Digest,
    pub media_type: String,
    /// The platforms the image runs on (`linux/amd64`, `linux/arm64/v8`), without
    /// BuildKit's attestation entries.
    pub platforms: Vec<String>,
    /// The digest of the linux/amd64 image manifest: of the index's entry for it, or the
    /// image's own digest when it is a single linux/amd64 image. `None` when the image does
    /// not run on linux/amd64.
    pub linux_amd64_digest: Option<Digest>,
    /// What pulling the image downloads (config and compressed layers), in bytes: of the
    /// linux/amd64 image for an index.
    pub size: Option<u64>,
}

/// A Docker Registry HTTP API v2 client for verifying credentials and images.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    /// Follows redirects on the same host only.
    http: reqwest::Client,
    /// For blobs: follows https redirects to other hosts (object storage).
    blob_http: reqwest::Client,
    insecure: Vec<RegistryHost>,
    egress: Egress,
    timeout: Duration,
}

/// A logged-in conversation with one registry.
struct Session {
    base: String,
    /// `Basic …` or `Bearer …`, marked sensitive so that no `Debug` prints it.
    authorization: Option<HeaderValue>,
    scheme: AuthScheme,
    with_credentials: bool,
}

impl RegistryClient {
    /// `insecure_registries` are spoken to over plain HTTP (a registry on the same machine
    /// or private network without TLS); all others over HTTPS with the system's trusted
    /// roots. `timeout` bounds each request, connecting included.
    ///
    /// Panics only if the TLS stack cannot be initialised, which is a broken installation.
    ///
    /// Only public addresses and the insecure registries are reached; see
    /// [`RegistryClient::with_egress`] for an operator's allowlist.
    pub fn new(insecure_registries: Vec<RegistryHost>, timeout: Duration) -> Self {
        Self::with_egress(insecure_registries, timeout, Egress::default())
    }

    /// Like [`RegistryClient::new`], reaching what `egress` allows as well as the insecure
    /// registries.
    pub fn with_egress(
        insecure_registries: Vec<RegistryHost>,
        timeout: Duration,
        egress: Egress,
    ) -> Self {
        let egress = egress.allowing_registries(&insecure_registries);
        let client = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
                .timeout(timeout)
                .connect_timeout(timeout)
                // A proxy would resolve the names itself, past the guard.
                .no_proxy()
                .dns_resolver(egress.resolver())
                .redirect(redirects)
                .build()
                .expect("the HTTP client's TLS stack initialises")
        };
        Self {
            http: client(redirect::same_host(egress.clone())),
            blob_http: client(redirect::blob(egress.clone())),
            insecure: insecure_registries,
            egress,
            timeout,
        }
    }

    /// What this client may reach.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Sends a request after the guard's check of its URL (an address in the URL never
    /// reaches the resolver, which checks names).
    async fn send(&self, request: RequestBuilder) -> Result<Response, RegistryError> {
        self.send_with(&self.http, request).await
    }

    async fn send_with(
        &self,
        http: &reqwest::Client,
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let request = request.build().map_err(transport_error)?;
        self.egress
            .check_url(request.url())
            .map_err(|refusal| RegistryError::Refused(refusal.to_string()))?;
        http.execute(request).await.map_err(transport_error)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Logs in to `registry` with `credentials` (anonymously when `None`) and, when `image`
    /// is given, proves pull access by resolving its manifest.
    pub async fn verify(
        &self,
        registry: &RegistryHost,
        credentials: Option<&BasicCredentials>,
        image: Option<&ImageReference>,
    ) -> Result<Verified, RegistryError> {
        if let Some(image) = image {
            if image.registry() != registry {
                return Err(RegistryError::ImageOnAnotherRegistry {
                    registry: registry.to_string(),
                    image_registry: image.registry().to_string(),
                });
            }
        }
        let outcome = self.log_in_and_resolve(registry, credentials, image).await;
        match &outcome {
            Ok(verified) => tracing::debug!(%registry, auth = ?verified.auth, "registry verified"),
            Err(error) => {
                tracing::debug!(%registry, kind = error.kind(), "registry verification failed")
            }
        }
        metrics::counter!(
            "berth_registry_verifications_total",
            "outcome" => outcome.as_ref().map_or_else(|e| e.kind(), |_| "ok")
        )
        .increment(1);
        outcome.map_err(|error| match credentials {
            Some(credentials) => error.redact(credentials.secret.expose()),
            None => error,
        })
    }

    async fn log_in_and_resolve(
        &self,
        registry: &RegistryHost,
        credentials: Option<&BasicCredentials>,
        image: Option<&ImageReference>,
    ) -> Result<Verified, RegistryError> {
        let repository = image.map(ImageReference::repository);
        let session = self
            .log_in(registry, credentials, repository, "/v2/")
            .await?;
        let Some(image) = image else {
            return Ok(Verified {
                auth: session.scheme,
                image: None,
            });
        };
        match self.resolve(&session, image).await {
            // Some registries (Nexus with anonymous access on) open `/v2/` to anyone but
            // guard each repository: log in with the challenge the manifest request got.
            Err(RegistryError::CredentialsRequired)
                if session.scheme == AuthScheme::Anonymous && credentials.is_some() =>
            {
                let manifest_path = format!(
                    "/v2/{}/manifests/{}",
                    image.repository(),
                    image.manifest_reference()
                );
                let session = self
                    .log_in(registry, credentials, repository, &manifest_path)
                    .await?;
                let resolved = self.resolve(&session, image).await?;
                Ok(Verified {
                    auth: session.scheme,
                    image: Some(resolved),
                })
            }
            outcome => Ok(Verified {
                auth: session.scheme,
                image: Some(outcome?),
            }),
        }
    }

    fn base_url(&self, registry: &RegistryHost) -> String {
        let scheme = if self.insecure.contains(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", registry.api_host())
    }

    /// Steps 1 and 2: `probe` (a path, normally `/v2/`) is requested without credentials
    /// and its challenge followed. `repository`, when given, is the scope the token is
    /// asked for.
    async fn log_in(
        &self,
        registry: &RegistryHost,
        credentials: Option<&BasicCredentials>,
        repository: Option<&str>,
        probe: &str,
    ) -> Result<Session, RegistryError> {
        let base = self.base_url(registry);
        let ping = self.send(self.http.get(format!("{base}{probe}"))).await?;
        let status = ping.status();
        if status.is_success() {
            return Ok(Session {
                base,
                authorization: None,
                scheme: AuthScheme::Anonymous,
                with_credentials: false,
            });
        }
        if status != StatusCode::UNAUTHORIZED {
            let body = read_error_body(ping).await;
            return Err(RegistryError::Protocol(describe_unexpected(
                &format!("GET {probe}"),
                status,
                &body,
            )));
        }
        let challenges = challenges_of(&ping);
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = bearer
                .param("realm")
                .filter(|realm| !realm.is_empty())
                .ok_or_else(|| {
                    RegistryError::Protocol(
                        "the registry asks for a token but names no token service (realm)".into(),
                    )
                })?;
            let token = self
                .fetch_token(realm, bearer.param("service"), repository, credentials)
                .await?;
            let session = Session {
                base,
                authorization: Some(authorization_header(&format!("Bearer {}", token.expose()))?),
                scheme: AuthScheme::Bearer,
                with_credentials: credentials.is_some(),
            };
            if repository.is_none() {
                // Nothing else will use the token: check that the registry takes it.
                self.check_login(&session).await?;
            }
            Ok(session)
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            let credentials = credentials.ok_or(RegistryError::CredentialsRequired)?;
            let pair = format!("{}:{}", credentials.username, credentials.secret.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            let session = Session {
                base,
                authorization: Some(authorization_header(&format!("Basic {encoded}"))?),
                scheme: AuthScheme::Basic,
                with_credentials: true,
            };
            self.check_login(&session).await?;
            Ok(session)
        } else {
            let offered: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            Err(RegistryError::Protocol(if offered.is_empty() {
                "the registry answered 401 without saying how to log in (no WWW-Authenticate)"
                    .into()
            } else {
                format!(
                    "the registry asks for an authentication scheme Berth does not speak ({})",
                    offered.join(", ")
                )
            }))
        }
    }

    async fn check_login(&self, session: &Session) -> Result<(), RegistryError> {
        let response = self
            .send(session.get(&self.http, format!("{}/v2/", session.base)))
            .await?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if is_refusal(status) {
            Err(refusal(session, response, None).await)
        } else {
            let body = read_error_body(response).await;
            Err(RegistryError::Protocol(describe_unexpected(
                "GET /v2/", status, &body,
            )))
        }
    }

    /// Exchanges credentials (or nothing, for an anonymous token) for a bearer token.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        repository: Option<&str>,
        credentials: Option<&BasicCredentials>,
    ) -> Result<Secret, RegistryError> {
        let url = Url::parse(realm).map_err(|_| {
            RegistryError::Protocol(format!("the token service address {realm:?} is not a URL"))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.may_use_plain_http(&url) => {}
            "http" => {
                return Err(RegistryError::Protocol(format!(
                    "the token service {} is plain HTTP; Berth asks for tokens over plain \
                     HTTP only on the host of a registry the operator lists in \
                     BERTH_INSECURE_REGISTRIES",
                    origin_of(&url)
                )))
            }
            _ => {
                return Err(RegistryError::Protocol(format!(
                    "the token service address {realm:?} is not an HTTP(S) URL"
                )))
            }
        }
        let mut request = self.http.get(url);
        if let Some(service) = service {
            request = request.query(&[("service", service)]);
        }
        if let Some(repository) = repository {
            request = request.query(&[("scope", format!("repository:{repository}:pull"))]);
        }
        if let Some(credentials) = credentials {
            request = request.basic_auth(&credentials.username, Some(credentials.secret.expose()));
        }
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_success() {
            let body = read_body(response, MAX_TOKEN_RESPONSE_BYTES).await?;
            // The spec names it `token`; OAuth2-minded services send `access_token` (too).
            #[derive(Deserialize)]
            struct TokenResponse {
                token: Option<String>,
                access_token: Option<String>,
            }
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                RegistryError::Protocol(format!(
                    "the token service sent something other than a token: {e}"
                ))
            })?;
            return parsed
                .token
                .or(parsed.access_token)
                .filter(|token| !token.is_empty())
                .map(Secret::new)
                .ok_or_else(|| {
                    RegistryError::Protocol("the token service sent an empty token".into())
                });
        }
        let body = read_error_body(response).await;
        // Token services have no common error format (Docker Hub sends {"details": …}), so
        // the expiry check reads the body as text.
        let expired = mentions_expiry(&String::from_utf8_lossy(&body));
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if credentials.is_none() => {
                RegistryError::CredentialsRequired
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if expired => {
                RegistryError::TokenExpired
            }
            StatusCode::UNAUTHORIZED => RegistryError::WrongCredentials,
            StatusCode::FORBIDDEN => RegistryError::Denied {
                repository: repository.map(str::to_owned),
            },
            _ => RegistryError::Protocol(describe_unexpected("the token service", status, &body)),
        })
    }

    /// A token service over plain HTTP is accepted only where the operator accepted plain
    /// HTTP: on the host of a registry listed as insecure (on any of its ports: an in-house
    /// token service often runs beside the registry). Whether the address may be contacted
    /// at all is the egress guard's decision, made on the request.
    fn may_use_plain_http(&self, realm: &Url) -> bool {
        let Some(realm_host) = realm.host_str() else {
            return false;
        };
        let realm_host = realm_host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.insecure.iter().any(|listed| {
            let authority = listed.api_host();
            let host = match authority.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
                _ => authority,
            };
            host.trim_matches(['[', ']'])
                .eq_ignore_ascii_case(&realm_host)
        })
    }

    /// Step 3.
    async fn resolve(
        &self,
        session: &Session,
        image: &ImageReference,
    ) -> Result<ResolvedImage, RegistryError> {
        let repository = image.repository();
        let named = self
            .fetch_manifest(session, repository, image.manifest_reference())
            .await?;
        if let Some(pinned) = image.digest() {
            let actual = manifest::sha256_digest(&named.body);
            if pinned.as_str().starts_with("sha256:") && &actual != pinned {
                return Err(RegistryError::Protocol(format!(
                    "asked for {pinned}, the registry sent a manifest whose digest is {actual}"
                )));
            }
        }
        match kind_of(&named.media_type) {
            ManifestKind::Index => {
                let index = Index::parse(&named.body).map_err(RegistryError::Protocol)?;
                let (linux_amd64_digest, size) = match index.target() {
                    Some(target) => {
                        let target_digest =
                            manifest::descriptor_digest(&target.digest, "the image index")
                                .map_err(RegistryError::Protocol)?;
                        let image = self
                            .fetch_manifest(session, repository, target_digest.as_str())
                            .await?;
                        let size = match kind_of(&image.media_type) {
                            ManifestKind::Image => ImageManifest::parse(&image.body)
                                .map_err(RegistryError::Protocol)?
                                .size(),
                            _ => target.size,
                        };
                        (Some(target_digest), Some(size))
                    }
                    None => (None, None),
                };
                Ok(ResolvedImage {
                    platforms: index.platforms(),
                    digest: named.digest,
                    media_type: named.media_type,
                    linux_amd64_digest,
                    size,
                })
            }
            ManifestKind::Image => {
                let manifest =
                    ImageManifest::parse(&named.body).map_err(RegistryError::Protocol)?;
                let config =
                    manifest::descriptor_digest(&manifest.config.digest, "the image manifest")
                        .map_err(RegistryError::Protocol)?;
                let platform = self
                    .fetch_config_platform(session, repository, &config)
                    .await?;
                let runs_on_target = platform.as_deref()
                    == Some(&format!(
                        "{}/{}",
                        manifest::TARGET_OS,
                        manifest::TARGET_ARCHITECTURE
                    ));
                Ok(ResolvedImage {
                    linux_amd64_digest: runs_on_target.then(|| named.digest.clone()),
                    platforms: platform.into_iter().collect(),
                    size: Some(manifest.size()),
                    digest: named.digest,
                    media_type: named.media_type,
                })
            }
            ManifestKind::Other => Ok(ResolvedImage {
                digest: named.digest,
                media_type: named.media_type,
                platforms: Vec::new(),
                linux_amd64_digest: None,
                size: None,
            }),
        }
    }

    async fn fetch_manifest(
        &self,
        session: &Session,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", session.base);
        let response = self
            .send(
                session
                    .get(&self.http, url)
                    .header(ACCEPT, manifest::ACCEPT),
            )
            .await?;
        let status = response.status();
        if status.is_success() {
            let content_type = header_text(&response, CONTENT_TYPE.as_str());
            // A digest that is not sha256 hex is not used (it would go into URL paths and the
            // deploy's record); the body's own digest is.
            let header_digest = header_text(&response, "docker-content-digest")
                .and_then(|digest| manifest::sha256_digest_text(&digest));
            let body = read_body(response, manifest::MAX_MANIFEST_BYTES).await?;
            Ok(FetchedManifest {
                media_type: manifest::media_type(content_type.as_deref(), &body),
                digest: header_digest.unwrap_or_else(|| manifest::sha256_digest(&body)),
                body,
            })
        } else if status == StatusCode::NOT_FOUND {
            let body = read_error_body(response).await;
            Err(self.not_found(session, repository, reference, &body).await)
        } else if is_refusal(status) {
            Err(refusal(session, response, Some(repository)).await)
        } else {
            let body = read_error_body(response).await;
            Err(RegistryError::Protocol(describe_unexpected(
                &format!("GET the manifest of {repository}:{reference}"),
                status,
                &body,
            )))
        }
    }

    /// distribution answers a manifest request for a repository that does not exist with
    /// `MANIFEST_UNKNOWN`, as for a missing tag; only its tag list says `NAME_UNKNOWN`.
    async fn not_found(
        &self,
        session: &Session,
        repository: &str,
        reference: &str,
        body: &[u8],
    ) -> RegistryError {
        // Tags cannot contain ':'; digests always do.
        let missing_reference = if reference.contains(':') {
            Missing::Digest
        } else {
            Missing::Tag
        };
        let what = if ApiErrors::parse(body).has_code("NAME_UNKNOWN")
            || self.repository_exists(session, repository).await == Some(false)
        {
            Missing::Repository
        } else {
            missing_reference
        };
        RegistryError::NotFound {
            what,
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        }
    }

    /// `Some(false)` only when the registry says so; `None` when it will not tell.
    async fn repository_exists(&self, session: &Session, repository: &str) -> Option<bool> {
        let url = format!("{}/v2/{repository}/tags/list?n=1", session.base);
        let response = self.send(session.get(&self.http, url)).await.ok()?;
        match response.status() {
            status if status.is_success() => Some(true),
            StatusCode::NOT_FOUND => {
                let body = read_error_body(response).await;
                ApiErrors::parse(&body)
                    .has_code("NAME_UNKNOWN")
                    .then_some(false)
            }
            _ => None,
        }
    }

    /// The platform an image's config names (`os`, `architecture`, `variant`).
    async fn fetch_config_platform(
        &self,
        session: &Session,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<String>, RegistryError> {
        // Registries redirect blobs to object storage on other hosts: the blob client follows
        // over https only, each hop through the guard, and reqwest drops the Authorization
        // header when the redirect leaves the registry's host.
        let url = format!("{}/v2/{repository}/blobs/{digest}", session.base);
        let response = self
            .send_with(&self.blob_http, session.get(&self.blob_http, url))
            .await?;
        let status = response.status();
        if status.is_success() {
            let body = read_body(response, manifest::MAX_MANIFEST_BYTES).await?;
            let config: ImageConfig = serde_json::from_slice(&body).map_err(|e| {
                RegistryError::Protocol(format!("the image config {digest} is not valid: {e}"))
            })?;
            Ok(config.platform())
        } else if is_refusal(status) {
            Err(refusal(session, response, Some(repository)).await)
        } else {
            let body = read_error_body(response).await;
            Err(RegistryError::Protocol(describe_unexpected(
                &format!("GET the image config {digest} of {repository}"),
                status,
                &body,
            )))
        }
    }
}

impl Session {
    fn get(&self, http: &reqwest::Client, url: String) -> RequestBuilder {
        let request = http.get(url);
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }
}

struct FetchedManifest {
    media_type: String,
    digest: Digest,
    body: Vec<u8>,
}

fn is_refusal(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

/// Why a logged-in request got 401 or 403. `repository` is `None` for the login check.
///
/// With Basic auth the credentials go with every request, so a 401 means the registry did
/// not accept them, wherever it comes; a 403 means they were accepted but not allowed.
///
/// distribution answers a token that lacks the pull scope with 401 `UNAUTHORIZED` and
/// `error="insufficient_scope"` in the challenge, a token it does not accept (expired,
/// wrong issuer or signature) with `error="invalid_token"`. Since the token was issued a
/// moment ago, the cause of an invalid one that users can act on is time: an expired
/// credential behind it, or a wrong clock.
async fn refusal(session: &Session, response: Response, repository: Option<&str>) -> RegistryError {
    let status = response.status();
    let challenges = challenges_of(&response);
    let body = read_error_body(response).await;
    let errors = ApiErrors::parse(&body);
    let challenge_says = |name: &str| challenges.iter().find_map(|c| c.param(name));
    let says_expired =
        errors.mention_expiry() || challenge_says("error_description").is_some_and(mentions_expiry);
    if says_expired
        || (session.scheme == AuthScheme::Bearer
            && challenge_says("error") == Some("invalid_token"))
    {
        return RegistryError::TokenExpired;
    }
    if !session.with_credentials {
        return RegistryError::CredentialsRequired;
    }
    if session.scheme == AuthScheme::Basic && status == StatusCode::UNAUTHORIZED {
        return RegistryError::WrongCredentials;
    }
    RegistryError::Denied {
        repository: repository.map(str::to_owned),
    }
}

fn challenges_of(response: &Response) -> Vec<Challenge> {
    parse_challenges(
        response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    )
}

fn header_text(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn authorization_header(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        RegistryError::Protocol(
            "the credentials or token contain characters an HTTP header cannot carry".into(),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// What a failed request tells the user: the kind of failure, never the transport's own
/// text (which names addresses, ports and what answered there: a port scanner's output).
/// The details go to the debug log for the operator.
fn transport_error(error: reqwest::Error) -> RegistryError {
    tracing::debug!(error = %describe_transport(&error), "registry request failed");
    if let Some(refusal) = find_refusal(&error) {
        RegistryError::Refused(refusal.to_string())
    } else if let Some(refusal) = redirect::find_refusal(&error) {
        RegistryError::Refused(refusal.to_string())
    } else if error.is_timeout() {
        RegistryError::Timeout
    } else if error.is_redirect() {
        RegistryError::Protocol("the registry redirected too many times".into())
    } else if error.is_decode() || error.is_body() {
        RegistryError::Protocol("the registry's answer could not be read".into())
    } else if is_tls_failure(&error) {
        RegistryError::Unreachable(
            "the TLS handshake failed: the certificate is not trusted, or the registry serves \
             plain HTTP and must be listed as insecure"
                .into(),
        )
    } else if is_dns_failure(&error) {
        RegistryError::Unreachable("the host name does not resolve".into())
    } else if error.is_connect() {
        RegistryError::Unreachable("the connection failed".into())
    } else {
        RegistryError::Unreachable("the connection broke off".into())
    }
}

/// hyper-util's resolver errors say "dns error"; reqwest says nothing more specific.
fn is_dns_failure(error: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if current
            .to_string()
            .to_ascii_lowercase()
            .contains("dns error")
        {
            return true;
        }
        next = current.source();
    }
    false
}

/// rustls reports handshake and certificate failures as an `io::ErrorKind::InvalidData`
/// error (wrapped in another `io::Error` by the connector); refused connections and DNS
/// failures are other kinds.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    fn invalid_data(io: &std::io::Error) -> bool {
        io.kind() == std::io::ErrorKind::InvalidData
            || io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>())
                .is_some_and(invalid_data)
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if current
            .downcast_ref::<std::io::Error>()
            .is_some_and(invalid_data)
        {
            return true;
        }
        next = current.source();
    }
    false
}

async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(RegistryError::Protocol(format!(
                "the response is larger than the {limit} bytes allowed"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Up to [`MAX_ERROR_BODY_BYTES`] of an error response; a failure to read it only loses
/// detail.
async fn read_error_body(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    body
}
