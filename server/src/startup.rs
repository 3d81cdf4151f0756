use crate::{config::Settings, router};
use anyhow::Context;
use leptos::config::LeptosOptions;
use service::{worker::WorkerSettings, Berth, BerthParts, Secrets};
use std::{net::SocketAddr, time::Duration};
use store::{SignInLimits, Store};
use tokio::net::TcpListener;
use tower_sessions::session_store::ExpiredDeletion;

/// A Berth server, bound and ready to serve.
pub struct Application {
    /// `BERTH_OPERATION_LOG_DAYS` (0: forever).
    operation_log_days: u64,
    listener: TcpListener,
    router: axum::Router,
    addr: SocketAddr,
    store: Store,
    berth: Berth,
    worker: WorkerSettings,
}

/// The listener, with every connection it accepts sending at once (`TCP_NODELAY`): hyper
/// writes a response's head and a streamed body (a file under `/pkg`, a page) separately,
/// and with Nagle's algorithm the body waited for the browser's delayed ACK of the head,
/// up to 40 ms a response (a small file from `/pkg`: 1,800 req/s on loopback, 64
/// connections; a JSON answer written in one piece: 50,000).
fn sending_at_once(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    })
}

/// Opens the database named by the settings (creating the data dir for the default SQLite
/// file) and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") && !settings.data_dir.exists() {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "BERTH_DATA_DIR: cannot create {}",
                settings.data_dir.display()
            )
        })?;
        // The data dir holds the database and (by default) the master key: only Berth's
        // user may look inside.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| {
                    format!(
                        "BERTH_DATA_DIR: cannot restrict {}",
                        settings.data_dir.display()
                    )
                })?;
        }
    }
    let store = Store::connect(&settings.database_url)
        .await
        .context("DATABASE_URL: cannot connect to the database")?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

/// The platform that runs apps: the local engine, with its storage in the data dir. A
/// missing buildah does not stop Berth; deploy forms say so (see `Platform::unavailable`).
pub async fn open_platform(
    settings: &Settings,
) -> anyhow::Result<std::sync::Arc<dyn platform::engine::Platform>> {
    let mut local = platform::local::LocalSettings::new(settings.data_dir.join("engine"));
    local.storage_driver = settings.engine_storage_driver.clone();
    local.network = settings.engine_network.clone();
    local.memory_limit =
        (settings.release_memory_mb > 0).then_some(settings.release_memory_mb << 20);
    local.pids_limit = (settings.release_processes > 0)
        .then(|| u32::try_from(settings.release_processes).unwrap_or(u32::MAX));
    local.ports = settings.port_range.clone();
    local.route_ports = settings.app_ports.clone();
    let mut router = platform::local::router::RouterSettings::new(
        settings.data_dir.join("engine").join("router"),
    );
    router.listen = settings.apps_addr;
    router.domain = settings.apps_domain.clone();
    local.router = Some(router);
    local.health_timeout = settings.health_timeout;
    local.insecure_registries = settings.insecure_registries.clone();
    // This very program is the engine's OCI runtime shim (`berth oci-runtime`) and every
    // release's monitor (`berth release-monitor`, the default), see main.rs.
    match std::env::current_exe() {
        Ok(berth) => local.runtime_shim = Some(vec![berth.into(), "oci-runtime".into()]),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find Berth's own program; containers run without no-new-privileges")
        }
    }
    let engine = platform::local::LocalEngine::new(local)
        .await
        .context("BERTH_DATA_DIR: cannot prepare the local engine's directory")?;
    if let Some(reason) = platform::engine::Platform::unavailable(&engine).await {
        tracing::warn!(%reason, "deploys cannot run on this server");
    }
    Ok(std::sync::Arc::new(engine))
}

/// Loads the master keys and checks that they open every secret in the database: a wrong or
/// missing key stops start-up with a message, rather than failing later on every secret.
pub async fn open_keyring(settings: &Settings, store: &Store) -> anyhow::Result<vault::Keyring> {
    use crate::config::MasterKeySource;
    let (keyring, variable) = match &settings.master_key {
        MasterKeySource::Env(keys) => (
            vault::Keyring::parse(keys, "BERTH_MASTER_KEY")?,
            "BERTH_MASTER_KEY",
        ),
        MasterKeySource::File(path) => (
            vault::Keyring::from_file(path, false).context("BERTH_MASTER_KEY_FILE")?,
            "BERTH_MASTER_KEY_FILE",
        ),
        MasterKeySource::Generated(path) => {
            let fresh = !path.exists();
            let keyring = vault::Keyring::from_file(path, true)
                .context("BERTH_DATA_DIR: cannot use the generated master key")?;
            if fresh {
                tracing::warn!(
                    path = %path.display(),
                    "generated a master key for stored secrets; back it up: without it they are lost"
                );
            }
            (keyring, "BERTH_MASTER_KEY / BERTH_MASTER_KEY_FILE")
        }
    };
    let missing: Vec<String> = store
        .secret_key_ids()
        .await?
        .into_iter()
        .filter(|id| !keyring.has_key(id))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{variable}: the database holds secrets sealed with master key {}, but the keys given are {}; \
             give the key that sealed them (older keys go after the current one)",
            missing.join(", "),
            keyring.key_ids().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(keyring)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let keyring = open_keyring(&settings, &store).await?;
        let key_file = match &settings.master_key {
            crate::config::MasterKeySource::File(p)
            | crate::config::MasterKeySource::Generated(p) => Some(p.clone()),
            crate::config::MasterKeySource::Env(_) => None,
        };
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("BERTH_ADDR: cannot listen on {}", settings.addr))?;
        let addr = listener.local_addr()?;
        let leptos_options = LeptosOptions::builder()
            .output_name("berth")
            .site_root(settings.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        let platform = open_platform(&settings).await?;
        if settings.sign_up == service::SignUpPolicy::Open && settings.mailer.is_none() {
            tracing::warn!(
                "BERTH_SIGNUP=open without BERTH_SMTP_URL: anyone can sign up with any address, \
                 unproved (set an SMTP server so that sign-up confirms addresses by e-mail)"
            );
        }
        let aptible = platform::aptible::AptibleClient::with_egress(
            &settings.aptible_api_url,
            &settings.aptible_auth_url,
            settings.registry_timeout,
            settings.egress(),
        )
        .map_err(|why| anyhow::anyhow!("BERTH_APTIBLE_API_URL / BERTH_APTIBLE_AUTH_URL: {why}"))?;
        let ecr = platform::ecr::EcrClient::new(platform::ecr::EcrSettings {
            ecr_endpoint: settings.ecr_endpoint_url.clone(),
            sts_endpoint: settings.sts_endpoint_url.clone(),
            timeout: settings.registry_timeout,
            extra_registry_hosts: settings.ecr_registry_hosts.clone(),
        });
        let berth = Berth::new(BerthParts {
            aptible,
            ecr,
            store: store.clone(),
            sign_in_limits: SignInLimits::default(),
            public_url: settings.public_url_for(addr),
            secrets: Secrets::new(vault::SharedKeyring::new(keyring, key_file)),
            registry: platform::registry::RegistryClient::with_egress(
                settings.insecure_registries.clone(),
                settings.registry_timeout,
                settings.egress(),
            ),
            egress: settings.egress(),
            platform,
            operations_queued: std::sync::Arc::new(tokio::sync::Notify::new()),
            live: service::live::OperationFeeds::new(store.clone()),
            git_dir: settings.data_dir.join("git"),
            accounts: std::sync::Arc::new(service::AccountSettings {
                sign_up: settings.sign_up,
                trusted_proxies: settings.trusted_proxies.clone(),
                throttles: service::throttle::Throttles::with_sign_ups_per_hour(
                    settings.sign_ups_per_hour,
                ),
                mailer: settings.mailer.clone(),
            }),
            disk: std::sync::Arc::new(service::disk::Disk::new(settings.keep_releases)),
        });
        let state = router::AppState {
            metrics: crate::metrics::Metrics::new(settings.metrics_allow.clone()),
            leptos_options,
            berth: berth.clone(),
        };
        let router = router::build(state, settings.cookies_secure());
        Ok(Self {
            operation_log_days: settings.operation_log_days,
            listener,
            router,
            addr,
            store,
            berth,
            worker: WorkerSettings {
                concurrency: settings.workers,
                lease: settings.operation_lease,
                poll: Duration::from_secs(2),
                drain: settings.shutdown_timeout,
            },
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let sessions = self.store.session_store();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(600));
            loop {
                every.tick().await;
                if let Err(error) = sessions.delete_expired().await {
                    tracing::warn!(%error, "could not delete expired sessions");
                }
            }
        });
        if self.operation_log_days > 0 {
            let store = self.store.clone();
            let keep_ms = (self.operation_log_days * 86_400_000) as i64;
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    every.tick().await;
                    let cutoff = store::now_ms() - keep_ms;
                    match store.prune_operation_logs(cutoff, 200).await {
                        Ok(0) => {}
                        Ok(pruned) => tracing::info!(operations = pruned, "deleted the logs of operations that ended over BERTH_OPERATION_LOG_DAYS ago"),
                        Err(error) => tracing::warn!(%error, "could not delete old operation logs"),
                    }
                }
            });
        }
        service::worker::reconcile(self.berth.clone());
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let worker =
            service::worker::spawn(self.berth.clone(), self.worker.clone(), stopping.clone());
        tracing::info!(url = %format!("http://{}", self.addr), "Berth is listening");
        let serving = axum::serve(
            sending_at_once(self.listener),
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown({
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            }
        });
        let serving = std::future::IntoFuture::into_future(serving);
        tokio::pin!(serving);
        let patience = self.worker.drain;
        // On SIGTERM: no new connections; open requests get `patience` to finish, live-log
        // streams end at once (browsers reconnect to the next Berth), running operations
        // finish or are put back in the queue (the worker), and releases keep serving.
        tokio::select! {
            served = &mut serving => served?,
            () = shutdown_signal() => {
                stop.send_replace(true);
                self.berth.live.stop_streams();
                if tokio::time::timeout(patience, &mut serving).await.is_err() {
                    tracing::warn!(
                        patience_secs = patience.as_secs(),
                        "requests were still open after BERTH_SHUTDOWN_TIMEOUT_SECS; closing them"
                    );
                }
            }
        }
        stop.send_replace(true);
        if worker.await.is_err() {
            tracing::error!("the operation worker ended abnormally");
        }
        // Releases keep serving; the next Berth adopts them.
        self.berth.platform.detach().await;
        self.store.close().await;
        tracing::info!("stopped; releases keep serving");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = super::sending_at_once(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set");
    }
}
