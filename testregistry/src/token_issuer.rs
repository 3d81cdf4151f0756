//! A token service like Docker Hub's `auth.docker.io`, small enough to read: it checks Basic
//! credentials and issues a JWT that grants each user pull and push on their repositories
//! only. Anonymous requests get a token that grants nothing, as Docker Hub's do for private
//! repositories.
//!
//! How distribution 2.8 trusts the token (`registry/auth/token/token.go`): the claims must
//! name the configured `issuer` and, as a single string, the `service` as `aud`; `exp`/`nbf`
//! are checked with 60 s of leeway; the signing key comes from the `x5c` header, a chain
//! that must verify against `rootcertbundle`. So at start the issuer makes a P-256 key and a
//! self-signed certificate for it, writes the certificate as the registry's root bundle, and
//! puts that same certificate in every token's `x5c` (a self-signed certificate that is in
//! the root pool verifies as a chain of one). The alternative, a `kid` header, would have to
//! be libtrust's key fingerprint format.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;
use std::{
    collections::HashMap,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};
use tokio::task::JoinHandle;

/// The registry's name as a token audience (`aud`), sent as `service` in its challenges.
pub const SERVICE: &str = "berth-test-registry";
/// Who signs the tokens (`iss`).
pub const ISSUER: &str = "berth-test-token-issuer";
/// How long a token is valid.
const LIFETIME_SECONDS: u64 = 300;
/// Everyone may be granted only these actions; `delete` and `*` are not needed by tests.
const GRANTABLE: [&str; 2] = ["pull", "push"];

pub(crate) struct TokenIssuer {
    pub realm: String,
    state: Arc<IssuerState>,
    server: JoinHandle<()>,
}

struct IssuerState {
    accounts: Mutex<HashMap<String, Account>>,
    signing_key: EcdsaKeyPair,
    certificate_base64: String,
    expired_tokens: AtomicBool,
    next_token_id: AtomicU64,
}

struct Account {
    password: String,
    /// Repositories the account may pull from and push to; `*` is every repository.
    repositories: Vec<String>,
}

impl TokenIssuer {
    /// Starts the service on a free loopback port and writes its certificate to
    /// `root_bundle`, for the registry's `rootcertbundle`.
    pub async fn start(users: &[(&str, &str, &[&str])], root_bundle: &Path) -> TokenIssuer {
        let signing_key =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generate a P-256 key");
        let pkcs8 = signing_key
            .to_pkcs8v1()
            .expect("serialise the key as PKCS#8");
        let certificate_key =
            rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen reads the PKCS#8 key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .expect("certificate parameters without names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Berth test token issuer");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        let certificate = params
            .self_signed(&certificate_key)
            .expect("self-sign the token certificate");
        std::fs::write(root_bundle, certificate.pem()).expect("write the token root bundle");

        let accounts = users
            .iter()
            .map(|(name, password, repositories)| {
                let account = Account {
                    password: (*password).to_owned(),
                    repositories: repositories.iter().map(|r| (*r).to_owned()).collect(),
                };
                ((*name).to_owned(), account)
            })
            .collect();
        let state = Arc::new(IssuerState {
            accounts: Mutex::new(accounts),
            signing_key,
            certificate_base64: STANDARD.encode(certificate.der()),
            expired_tokens: AtomicBool::new(false),
            next_token_id: AtomicU64::new(1),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the token service to a loopback port");
        let port = listener
            .local_addr()
            .expect("the token service's address")
            .port();
        let app = Router::new()
            .route("/token", get(issue))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenIssuer {
            realm: format!("http://127.0.0.1:{port}/token"),
            state,
            server,
        }
    }

    pub fn set_password(&self, user: &str, password: &str) {
        let mut accounts = self.state.accounts.lock().expect("accounts lock");
        match accounts.get_mut(user) {
            Some(account) => account.password = password.to_owned(),
            None => panic!("testregistry: no user {user:?} to change the password of"),
        }
    }

    pub fn set_expired_tokens(&self, expired: bool) {
        self.state.expired_tokens.store(expired, Ordering::SeqCst);
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `GET /token?service=…&scope=repository:team/app:pull,push[&scope=…]`.
async fn issue(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let subject = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => match state.authenticate(value.to_str().unwrap_or_default()) {
            Some(user) => Some(user),
            None => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        "Basic realm=\"berth-test-token-issuer\"",
                    )],
                    Json(json!({"details": "incorrect username or password"})),
                )
                    .into_response()
            }
        },
    };
    let scopes: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, value)| {
            value
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| state.grant(subject.as_deref(), scope))
        .collect();
    let token = state.sign(subject.as_deref().unwrap_or_default(), access);
    Json(json!({
        "token": token,
        "access_token": token,
        "expires_in": LIFETIME_SECONDS,
    }))
    .into_response()
}

impl IssuerState {
    /// The user named by valid `Basic` credentials.
    fn authenticate(&self, authorization: &str) -> Option<String> {
        let (scheme, encoded) = authorization.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let accounts = self.accounts.lock().expect("accounts lock");
        let account = accounts.get(user)?;
        (account.password == password).then(|| user.to_owned())
    }

    /// The `access` entry for one requested scope (`type:name:actions`), if any is granted.
    fn grant(&self, user: Option<&str>, scope: &str) -> Option<serde_json::Value> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let accounts = self.accounts.lock().expect("accounts lock");
        let account = accounts.get(user?)?;
        let allowed = kind == "repository"
            && account
                .repositories
                .iter()
                .any(|repository| repository == "*" || repository == name);
        if !allowed {
            return None;
        }
        let actions: Vec<&str> = actions
            .split(',')
            .filter(|action| GRANTABLE.contains(action))
            .collect();
        Some(json!({"type": kind, "name": name, "actions": actions}))
    }

    /// A compact JWS (ES256) of the claims distribution reads.
    fn sign(&self, subject: &str, access: Vec<serde_json::Value>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        // Expired beyond distribution's 60 s of leeway.
        let (not_before, expires) = if self.expired_tokens.load(Ordering::SeqCst) {
            (now - 3600, now - 600)
        } else {
            (now, now + LIFETIME_SECONDS)
        };
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [self.certificate_base64],
        });
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": expires,
            "nbf": not_before,
            "iat": not_before,
            "jti": format!("{}-{}", std::process::id(), self.next_token_id.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // FIXED signing: the 64-byte r‖s that JWS wants, not ASN.1 DER.
        let signature = self
            .signing_key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("sign the token");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}
