//! Settings from the environment. Every variable is read here, once; a malformed value or
//! an unknown `BERTH_*` variable stops start-up with a message naming the variable.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// `BERTH_ADDR`: where to listen (default `127.0.0.1:3000`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// `BERTH_DATA_DIR`: the SQLite file and (later) keys and engine storage (default `./data`).
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `sqlite://…` (default: `berth.db` in the data dir) or `postgres://…`.
    pub database_url: String,
    /// `BERTH_LOG_FORMAT`: `human` (default) or `json`.
    pub log_format: LogFormat,
    /// `BERTH_LOG`: a tracing filter, default `info`.
    pub log_filter: String,
    /// `BERTH_PUBLIC_URL`: how people reach Berth (invitation links); default `http://{addr}`.
    pub public_url: Option<String>,
    /// `BERTH_SECURE_COOKIES`: mark cookies `Secure`; default true when the public URL is https.
    pub secure_cookies: Option<bool>,
    /// `BERTH_SITE_ROOT`: the built browser bundle (`pkg/berth.js`, `.wasm`, `.css`);
    /// default `target/site`.
    pub site_root: PathBuf,
    /// Where the master keys that seal stored secrets come from.
    pub master_key: MasterKeySource,
    /// `BERTH_INSECURE_REGISTRIES`: registries reached over plain `http://` (comma-separated
    /// hosts, e.g. `127.0.0.1:5000`); every other registry is reached over https.
    pub insecure_registries: Vec<domain::RegistryHost>,
    /// `BERTH_EGRESS_ALLOW`: hosts (`host`, `host:port`), addresses and CIDR ranges on
    /// loopback, link-local or private networks that Berth may contact on a user's behalf
    /// (registries, token services, git); by default only public addresses (and the
    /// insecure registries) are.
    pub egress_allow: Vec<platform::egress::AllowEntry>,
    /// `BERTH_GIT_LOCAL_ROOTS`: absolute directories under which local paths and `file://`
    /// repositories may be read; none by default (refused).
    pub git_local_roots: Vec<PathBuf>,
    /// `BERTH_REGISTRY_TIMEOUT_SECS`: how long a registry may take to answer (default 15).
    pub registry_timeout: std::time::Duration,
    /// `BERTH_WORKERS`: operations this process runs at once, on different apps (default 4).
    pub workers: usize,
    /// `BERTH_OPERATION_LEASE_SECS`: how long a running operation's lease lasts without a
    /// heartbeat; after it, another process takes the operation over (default 30).
    pub operation_lease: std::time::Duration,
    /// `BERTH_ENGINE_STORAGE_DRIVER`: buildah's storage driver, `vfs` (default) or `overlay`.
    pub engine_storage_driver: String,
    /// `BERTH_ENGINE_NETWORK`: how releases and builds reach the network: `private`
    /// (default: a network of their own, no way to the host's loopback) or `host` (for
    /// debugging only: they then share the host's network).
    pub engine_network: String,
    /// `BERTH_RELEASE_MEMORY_MB`: a release's (and a build's) memory limit (default 512;
    /// 0: no limit).
    pub release_memory_mb: u64,
    /// `BERTH_RELEASE_PROCESSES`: how many processes a release (and a build) may run at
    /// once (default 512; 0: no limit).
    pub release_processes: u64,
    /// `BERTH_PORT_RANGE`: the ports releases are given in `PORT` (default `20000-20999`).
    pub port_range: std::ops::RangeInclusive<u16>,
    /// `BERTH_APPS_ADDR`: where the router serves `http://APP.TEAM.<apps domain>` (default
    /// `127.0.0.1:8000`); the apps' stable ports open on the same IP.
    pub apps_addr: SocketAddr,
    /// `BERTH_APPS_DOMAIN`: the domain apps are named under (default `localhost`, whose
    /// subdomains browsers resolve to loopback).
    pub apps_domain: String,
    /// `BERTH_APP_PORTS`: the apps' stable ports, one per app for good (default
    /// `21000-21999`).
    pub app_ports: std::ops::RangeInclusive<u16>,
    /// `BERTH_HEALTH_TIMEOUT_SECS`: how long a new release has to answer its health check
    /// (default 60).
    pub health_timeout: std::time::Duration,
    /// `BERTH_SHUTDOWN_TIMEOUT_SECS`: on SIGTERM, how long open requests, live-log streams
    /// and running operations have to finish (default 30); releases keep serving.
    pub shutdown_timeout: std::time::Duration,
    /// `BERTH_SIGNUP`: who may sign up: `closed` (default: only the first account),
    /// `invite` (with an invitation link) or `open` (anyone).
    pub sign_up: service::SignUpPolicy,
    /// `BERTH_TRUSTED_PROXIES`: address blocks (comma-separated) whose `X-Forwarded-For` is
    /// believed for the client's address; none by default.
    pub trusted_proxies: service::client_ip::TrustedProxies,
    /// `BERTH_OPERATION_LOG_DAYS`: how long an operation's log is kept after it ends (days;
    /// 0 keeps logs forever).
    pub operation_log_days: u64,
    /// `BERTH_KEEP_RELEASES`: how many release images each app keeps on this server (1 to
    /// 100, 5 by default); older ones are pruned after each deploy.
    pub keep_releases: service::disk::KeepReleases,
    /// `BERTH_METRICS_ALLOW`: address blocks that may read `/metrics` (none by default: no
    /// endpoint).
    pub metrics_allow: Vec<service::client_ip::Cidr>,
    /// `BERTH_SIGN_UPS_PER_HOUR`: sign-ups one client address may make an hour (default 5).
    pub sign_ups_per_hour: u32,
    /// `BERTH_SMTP_URL` and `BERTH_SMTP_FROM`: the SMTP server Berth sends mail through and
    /// the sender it uses; with them, open sign-up proves each address by e-mail.
    pub mailer: Option<service::mail::Mailer>,
    /// `BERTH_APTIBLE_API_URL`: Aptible's API (default `https://api.aptible.com`).
    pub aptible_api_url: String,
    /// `BERTH_APTIBLE_AUTH_URL`: Aptible's auth server (default `https://auth.aptible.com`).
    pub aptible_auth_url: String,
    /// `BERTH_ECR_ENDPOINT_URL`: an ECR-compatible endpoint instead of
    /// `https://api.ecr.REGION.amazonaws.com`.
    pub ecr_endpoint_url: Option<String>,
    /// `BERTH_STS_ENDPOINT_URL`: an STS endpoint instead of `https://sts.REGION.amazonaws.com`.
    pub sts_endpoint_url: Option<String>,
    /// `BERTH_ECR_REGISTRY_HOSTS`: registry hosts an `ecr` credential may name besides
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (comma-separated).
    pub ecr_registry_hosts: Vec<domain::RegistryHost>,
}

/// Where the master keys come from, in order of precedence.
#[derive(Clone)]
pub enum MasterKeySource {
    /// `BERTH_MASTER_KEY`: base64 keys, comma-separated, the current one first.
    Env(String),
    /// `BERTH_MASTER_KEY_FILE`: a key file (one key a line, current first), mode 0600.
    File(PathBuf),
    /// Neither given: `master.key` in the data dir, generated on first start.
    Generated(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Env(_) => f.write_str("Env([redacted])"),
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
            MasterKeySource::Generated(p) => write!(f, "Generated({})", p.display()),
        }
    }
}

/// Every variable Berth reads. Anything else starting with `BERTH_` is a typo.
pub const KNOWN_VARIABLES: &[&str] = &[
    "BERTH_ADDR",
    "BERTH_DATA_DIR",
    "BERTH_LOG_FORMAT",
    "BERTH_LOG",
    "BERTH_PUBLIC_URL",
    "BERTH_SECURE_COOKIES",
    "BERTH_SITE_ROOT",
    "BERTH_MASTER_KEY",
    "BERTH_MASTER_KEY_FILE",
    "BERTH_INSECURE_REGISTRIES",
    "BERTH_EGRESS_ALLOW",
    "BERTH_GIT_LOCAL_ROOTS",
    "BERTH_REGISTRY_TIMEOUT_SECS",
    "BERTH_WORKERS",
    "BERTH_OPERATION_LEASE_SECS",
    "BERTH_ENGINE_STORAGE_DRIVER",
    "BERTH_ENGINE_NETWORK",
    "BERTH_RELEASE_MEMORY_MB",
    "BERTH_RELEASE_PROCESSES",
    "BERTH_PORT_RANGE",
    "BERTH_HEALTH_TIMEOUT_SECS",
    "BERTH_APPS_ADDR",
    "BERTH_APPS_DOMAIN",
    "BERTH_APP_PORTS",
    "BERTH_SHUTDOWN_TIMEOUT_SECS",
    "BERTH_SIGNUP",
    "BERTH_TRUSTED_PROXIES",
    "BERTH_METRICS_ALLOW",
    "BERTH_OPERATION_LOG_DAYS",
    "BERTH_KEEP_RELEASES",
    "BERTH_SIGN_UPS_PER_HOUR",
    "BERTH_SMTP_URL",
    "BERTH_SMTP_FROM",
    "BERTH_APTIBLE_API_URL",
    "BERTH_APTIBLE_AUTH_URL",
    "BERTH_ECR_ENDPOINT_URL",
    "BERTH_STS_ENDPOINT_URL",
    "BERTH_ECR_REGISTRY_HOSTS",
    // Read by the test harness, not the server; allowed so tests can run the binary.
    "BERTH_TEST_DATABASE_URL",
    "BERTH_MOTO_BIN",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct SettingsError {
    pub variable: String,
    pub message: String,
}

fn error(variable: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        variable: variable.to_owned(),
        message: message.into(),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Parses settings from a map of variables (the process environment, or a test's).
    pub fn from_vars(vars: BTreeMap<String, String>) -> Result<Self, SettingsError> {
        if let Some(unknown) = vars
            .keys()
            .find(|k| k.starts_with("BERTH_") && !KNOWN_VARIABLES.contains(&k.as_str()))
        {
            return Err(error(
                unknown,
                format!(
                    "unknown setting; Berth reads {}",
                    KNOWN_VARIABLES[..KNOWN_VARIABLES.len() - 1].join(", ")
                ),
            ));
        }
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let addr = match get("BERTH_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => v.parse().map_err(|_| {
                error(
                    "BERTH_ADDR",
                    format!("\"{v}\" is not an address; use IP:PORT, e.g. 127.0.0.1:3000"),
                )
            })?,
        };
        let data_dir = PathBuf::from(get("BERTH_DATA_DIR").unwrap_or("./data"));
        let database_url =
            match vars
                .get("DATABASE_URL")
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
            {
                None => format!("sqlite://{}", data_dir.join("berth.db").display()),
                Some(url)
                    if url.starts_with("sqlite:")
                        || url.starts_with("postgres://")
                        || url.starts_with("postgresql://") =>
                {
                    url.to_owned()
                }
                Some(_) => return Err(error(
                    "DATABASE_URL",
                    "must start with sqlite:// or postgres:// (e.g. postgres://user@host/berth)",
                )),
            };
        let log_format = match get("BERTH_LOG_FORMAT") {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(v) => {
                return Err(error(
                    "BERTH_LOG_FORMAT",
                    format!("\"{v}\" is not a format; use human or json"),
                ))
            }
        };
        let log_filter = get("BERTH_LOG").unwrap_or("info").to_owned();
        tracing_subscriber::EnvFilter::try_new(&log_filter).map_err(|e| {
            error(
                "BERTH_LOG",
                format!("not a log filter ({e}); e.g. info or berth=debug,info"),
            )
        })?;
        let public_url = match get("BERTH_PUBLIC_URL") {
            None => None,
            Some(v)
                if (v.starts_with("http://") || v.starts_with("https://"))
                    && !v.contains(char::is_whitespace) =>
            {
                Some(v.trim_end_matches('/').to_owned())
            }
            Some(v) => {
                return Err(error(
                    "BERTH_PUBLIC_URL",
                    format!("\"{v}\" is not a URL; use e.g. https://berth.example.com"),
                ))
            }
        };
        let secure_cookies = match get("BERTH_SECURE_COOKIES") {
            None => None,
            Some("true" | "1" | "yes") => Some(true),
            Some("false" | "0" | "no") => Some(false),
            Some(v) => {
                return Err(error(
                    "BERTH_SECURE_COOKIES",
                    format!("\"{v}\" is not a boolean; use true or false"),
                ))
            }
        };
        let site_root = PathBuf::from(get("BERTH_SITE_ROOT").unwrap_or("target/site"));
        let master_key =
            match (get("BERTH_MASTER_KEY"), get("BERTH_MASTER_KEY_FILE")) {
                (Some(_), Some(_)) => return Err(error(
                    "BERTH_MASTER_KEY",
                    "give the key either in BERTH_MASTER_KEY or in BERTH_MASTER_KEY_FILE, not both",
                )),
                (Some(keys), None) => {
                    vault::Keyring::parse(keys, "BERTH_MASTER_KEY")
                        .map_err(|e| error("BERTH_MASTER_KEY", strip_source(&e)))?;
                    MasterKeySource::Env(keys.to_owned())
                }
                (None, Some(path)) => MasterKeySource::File(PathBuf::from(path)),
                (None, None) => MasterKeySource::Generated(data_dir.join("master.key")),
            };
        let hosts = |variable: &str| {
            get(variable)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    domain::RegistryHost::parse(h).map_err(|e| error(variable, format!("{h}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let insecure_registries = hosts("BERTH_INSECURE_REGISTRIES")?;
        let ecr_registry_hosts = hosts("BERTH_ECR_REGISTRY_HOSTS")?;
        let egress_allow = get("BERTH_EGRESS_ALLOW")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                platform::egress::AllowEntry::parse(h).map_err(|e| error("BERTH_EGRESS_ALLOW", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let git_local_roots = get("BERTH_GIT_LOCAL_ROOTS")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let path = PathBuf::from(p);
                if !path.is_absolute() {
                    return Err(error(
                        "BERTH_GIT_LOCAL_ROOTS",
                        format!("{p} is not an absolute path; list directories like /srv/git"),
                    ));
                }
                if !path.is_dir() {
                    return Err(error(
                        "BERTH_GIT_LOCAL_ROOTS",
                        format!("{p} is not a directory"),
                    ));
                }
                Ok(path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let number =
            |variable: &str, default: u64, range: std::ops::RangeInclusive<u64>, unit: &str| {
                match get(variable) {
                    None => Ok(default),
                    Some(v) => match v.parse::<u64>() {
                        Ok(n) if range.contains(&n) => Ok(n),
                        _ => Err(error(
                            variable,
                            format!(
                                "\"{v}\" is not a number of {unit} from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )),
                    },
                }
            };
        let secs = std::time::Duration::from_secs;
        let registry_timeout = secs(number(
            "BERTH_REGISTRY_TIMEOUT_SECS",
            15,
            1..=600,
            "seconds",
        )?);
        let workers = number("BERTH_WORKERS", 4, 1..=64, "workers")? as usize;
        let operation_lease = secs(number(
            "BERTH_OPERATION_LEASE_SECS",
            30,
            3..=3600,
            "seconds",
        )?);
        let health_timeout = secs(number(
            "BERTH_HEALTH_TIMEOUT_SECS",
            60,
            1..=3600,
            "seconds",
        )?);
        let shutdown_timeout = secs(number(
            "BERTH_SHUTDOWN_TIMEOUT_SECS",
            30,
            1..=3600,
            "seconds",
        )?);
        let engine_storage_driver = match get("BERTH_ENGINE_STORAGE_DRIVER") {
            None => "vfs".to_owned(),
            Some(v @ ("vfs" | "overlay")) => v.to_owned(),
            Some(v) => {
                return Err(error(
                    "BERTH_ENGINE_STORAGE_DRIVER",
                    format!("\"{v}\" is not a storage driver; use vfs or overlay"),
                ))
            }
        };
        let release_memory_mb = number("BERTH_RELEASE_MEMORY_MB", 512, 0..=1 << 20, "MiB")?;
        let release_processes = number("BERTH_RELEASE_PROCESSES", 512, 0..=1 << 22, "processes")?;
        let engine_network = match get("BERTH_ENGINE_NETWORK") {
            None => "private".to_owned(),
            Some(v @ ("host" | "private")) => v.to_owned(),
            Some(v) => {
                return Err(error(
                    "BERTH_ENGINE_NETWORK",
                    format!("\"{v}\" is not a network mode; use private or host"),
                ))
            }
        };
        let ports = |name: &str, default: std::ops::RangeInclusive<u16>| match get(name) {
            None => Ok(default),
            Some(v) => {
                let parsed = v.split_once('-').and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                });
                match parsed {
                    Some((first, last)) if first >= 1024 && first <= last => Ok(first..=last),
                    _ => Err(error(
                        name,
                        format!(
                            "\"{v}\" is not a port range; use FIRST-LAST above 1023, e.g. {}-{}",
                            default.start(),
                            default.end()
                        ),
                    )),
                }
            }
        };
        let port_range = ports("BERTH_PORT_RANGE", 20000..=20999)?;
        let app_ports = ports("BERTH_APP_PORTS", 21000..=21999)?;
        if app_ports.start() <= port_range.end() && port_range.start() <= app_ports.end() {
            return Err(error(
                "BERTH_APP_PORTS",
                format!(
                    "{}-{} overlaps BERTH_PORT_RANGE ({}-{}): the apps' stable ports and the releases' ports must be apart",
                    app_ports.start(),
                    app_ports.end(),
                    port_range.start(),
                    port_range.end()
                ),
            ));
        }
        let apps_addr = match get("BERTH_APPS_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
            Some(v) => v.parse().map_err(|_| {
                error(
                    "BERTH_APPS_ADDR",
                    format!("\"{v}\" is not an address; use IP:PORT, e.g. 127.0.0.1:8000"),
                )
            })?,
        };
        if app_ports.contains(&apps_addr.port()) || port_range.contains(&apps_addr.port()) {
            return Err(error(
                "BERTH_APPS_ADDR",
                format!(
                    "port {} is among the apps' or the releases' ports; pick one outside BERTH_APP_PORTS and BERTH_PORT_RANGE",
                    apps_addr.port()
                ),
            ));
        }
        let apps_domain = get("BERTH_APPS_DOMAIN")
            .unwrap_or("localhost")
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if apps_domain.len() > 120 || !apps_domain.split('.').all(valid_label) {
            return Err(error(
                "BERTH_APPS_DOMAIN",
                format!(
                    "\"{apps_domain}\" is not a domain name; use e.g. localhost or apps.example.com"
                ),
            ));
        }
        let sign_up = get("BERTH_SIGNUP")
            .unwrap_or("closed")
            .parse()
            .map_err(|message: String| error("BERTH_SIGNUP", message))?;
        let trusted_proxies =
            service::client_ip::TrustedProxies::parse(get("BERTH_TRUSTED_PROXIES").unwrap_or(""))
                .map_err(|message| error("BERTH_TRUSTED_PROXIES", message))?;
        let metrics_allow =
            service::client_ip::TrustedProxies::parse(get("BERTH_METRICS_ALLOW").unwrap_or(""))
                .map_err(|message| error("BERTH_METRICS_ALLOW", message))?
                .0;
        let operation_log_days = number("BERTH_OPERATION_LOG_DAYS", 90, 0..=36_500, "days")?;
        let keep_releases = service::disk::KeepReleases::parse(get("BERTH_KEEP_RELEASES"))
            .map_err(|message| error("BERTH_KEEP_RELEASES", message))?;
        let sign_ups_per_hour =
            number("BERTH_SIGN_UPS_PER_HOUR", 5, 1..=100_000, "sign-ups")? as u32;
        let mailer = match (get("BERTH_SMTP_URL"), get("BERTH_SMTP_FROM")) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(error(
                    "BERTH_SMTP_FROM",
                    "Berth's mail needs a sender; set e.g. Berth <berth@example.com>",
                ))
            }
            (None, Some(_)) => return Err(error(
                "BERTH_SMTP_URL",
                "a sender without a server; set e.g. smtp://mail.example.com:587?tls=required, \
                     or unset BERTH_SMTP_FROM",
            )),
            (Some(url), Some(from)) => Some(service::mail::Mailer::new(url, from).map_err(
                |wrong| match wrong {
                    service::mail::MailSettingError::Url(m) => error("BERTH_SMTP_URL", m),
                    service::mail::MailSettingError::From(m) => error("BERTH_SMTP_FROM", m),
                },
            )?),
        };
        let url_setting = |variable: &str, default: &str| -> Result<String, SettingsError> {
            let url = get(variable).unwrap_or(default);
            if (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(char::is_whitespace)
            {
                Ok(url.trim_end_matches('/').to_owned())
            } else {
                Err(error(
                    variable,
                    format!("\"{url}\" is not a URL; use e.g. {default}"),
                ))
            }
        };
        let aptible_api_url = url_setting("BERTH_APTIBLE_API_URL", "https://api.aptible.com")?;
        let aptible_auth_url = url_setting("BERTH_APTIBLE_AUTH_URL", "https://auth.aptible.com")?;
        let optional_url = |variable: &str, example: &str| {
            get(variable)
                .filter(|v| !v.trim().is_empty())
                .map(|_| url_setting(variable, example))
                .transpose()
        };
        let ecr_endpoint_url = optional_url(
            "BERTH_ECR_ENDPOINT_URL",
            "https://api.ecr.us-east-1.amazonaws.com",
        )?;
        let sts_endpoint_url = optional_url(
            "BERTH_STS_ENDPOINT_URL",
            "https://sts.us-east-1.amazonaws.com",
        )?;
        Ok(Settings {
            addr,
            data_dir,
            database_url,
            log_format,
            log_filter,
            public_url,
            secure_cookies,
            site_root,
            master_key,
            insecure_registries,
            egress_allow,
            git_local_roots,
            registry_timeout,
            workers,
            operation_lease,
            engine_storage_driver,
            engine_network,
            release_memory_mb,
            release_processes,
            port_range,
            apps_addr,
            apps_domain,
            app_ports,
            health_timeout,
            shutdown_timeout,
            sign_up,
            trusted_proxies,
            metrics_allow,
            operation_log_days,
            keep_releases,
            sign_ups_per_hour,
            mailer,
            aptible_api_url,
            aptible_auth_url,
            ecr_endpoint_url,
            sts_endpoint_url,
            ecr_registry_hosts,
        })
    }

    /// What Berth may contact and read on a user's behalf (registries, token services,
    /// git): public addresses, plus `BERTH_EGRESS_ALLOW`, plus local repositories under
    /// `BERTH_GIT_LOCAL_ROOTS`. The registry client adds the insecure registries.
    pub fn egress(&self) -> platform::egress::Egress {
        platform::egress::Egress::new(self.egress_allow.clone())
            .with_git_local_roots(self.git_local_roots.clone())
    }

    /// The public URL, given the address actually bound (which differs when the port is 0).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            self.public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        })
    }
}

/// A vault error's message without the "SOURCE: " prefix (the caller names the variable).
fn strip_source(e: &vault::VaultError) -> String {
    match e {
        vault::VaultError::BadKey { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_set_up() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url, "sqlite://./data/berth.db");
        assert_eq!(s.log_format, LogFormat::Human);
        assert!(!s.cookies_secure());
        assert_eq!(s.sign_up, service::SignUpPolicy::Closed);
        assert_eq!(s.trusted_proxies, Default::default());
        assert_eq!(s.keep_releases.get(), 5);
    }

    #[test]
    fn unknown_berth_variables_are_named() {
        let e = Settings::from_vars(vars(&[("BERTH_ADRR", "x")])).unwrap_err();
        assert_eq!(e.variable, "BERTH_ADRR");
        assert!(e.message.contains("BERTH_ADDR"));
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (k, v) in [
            ("BERTH_ADDR", "localhost"),
            ("BERTH_LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("BERTH_SECURE_COOKIES", "maybe"),
            ("BERTH_PUBLIC_URL", "berth.example.com"),
            ("BERTH_MASTER_KEY", "not-a-key"),
            ("BERTH_INSECURE_REGISTRIES", "http://127.0.0.1:5000"),
            ("BERTH_SIGNUP", "everyone"),
            ("BERTH_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("BERTH_SIGN_UPS_PER_HOUR", "0"),
            ("BERTH_KEEP_RELEASES", "0"),
            ("BERTH_KEEP_RELEASES", "101"),
            ("BERTH_EGRESS_ALLOW", "10.0.0.0/40"),
            ("BERTH_EGRESS_ALLOW", "host:port"),
            ("BERTH_GIT_LOCAL_ROOTS", "relative/dir"),
            ("BERTH_GIT_LOCAL_ROOTS", "/no/such/berth/dir"),
        ] {
            let e = Settings::from_vars(vars(&[(k, v)])).unwrap_err();
            assert_eq!(e.variable, k);
        }
    }

    #[test]
    fn smtp_needs_a_server_and_a_sender_and_never_shows_its_password() {
        assert!(Settings::from_vars(vars(&[])).unwrap().mailer.is_none());
        let s = Settings::from_vars(vars(&[
            ("BERTH_SMTP_URL", "smtps://bot:hunter2@mail.example.com:465"),
            ("BERTH_SMTP_FROM", "Berth <berth@example.com>"),
        ]))
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("mail.example.com:465") && !shown.contains("hunter2"),
            "{shown}"
        );
        let only_url = Settings::from_vars(vars(&[("BERTH_SMTP_URL", "smtp://127.0.0.1:25")]));
        assert_eq!(only_url.unwrap_err().variable, "BERTH_SMTP_FROM");
        let only_from = Settings::from_vars(vars(&[("BERTH_SMTP_FROM", "berth@example.com")]));
        assert_eq!(only_from.unwrap_err().variable, "BERTH_SMTP_URL");
        let bad_url = Settings::from_vars(vars(&[
            ("BERTH_SMTP_URL", "mail.example.com"),
            ("BERTH_SMTP_FROM", "berth@example.com"),
        ]));
        assert_eq!(bad_url.unwrap_err().variable, "BERTH_SMTP_URL");
        let bad_from = Settings::from_vars(vars(&[
            ("BERTH_SMTP_URL", "smtp://127.0.0.1:25"),
            ("BERTH_SMTP_FROM", "Berth"),
        ]));
        assert_eq!(bad_from.unwrap_err().variable, "BERTH_SMTP_FROM");
    }

    #[test]
    fn egress_settings_are_read() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert!(s.egress_allow.is_empty() && s.git_local_roots.is_empty());
        let s = Settings::from_vars(vars(&[
            (
                "BERTH_EGRESS_ALLOW",
                "git.internal, 10.0.0.0/8,registry.lan:5000",
            ),
            ("BERTH_GIT_LOCAL_ROOTS", "/tmp"),
        ]))
        .unwrap();
        assert_eq!(s.egress_allow.len(), 3);
        assert_eq!(s.git_local_roots, vec![PathBuf::from("/tmp")]);
    }

    #[test]
    fn https_public_urls_make_cookies_secure() {
        let s = Settings::from_vars(vars(&[("BERTH_PUBLIC_URL", "https://berth.example.com/")]))
            .unwrap();
        assert!(s.cookies_secure());
        assert_eq!(s.public_url.as_deref(), Some("https://berth.example.com"));
    }
}
