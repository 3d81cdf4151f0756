use crate::{config::Settings, router};
use anyhow::Context;
use app::ssr::ServerState;
use leptos::config::LeptosOptions;
use std::{net::SocketAddr, time::Duration};
use store::{SignInLimits, Store};
use tokio::net::TcpListener;
use tower_sessions::session_store::ExpiredDeletion;

/// A Berth server, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    addr: SocketAddr,
    store: Store,
}

/// Opens the database named by the settings (creating the data dir for the default SQLite
/// file) and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "BERTH_DATA_DIR: cannot create {}",
                settings.data_dir.display()
            )
        })?;
    }
    let store = Store::connect(&settings.database_url)
        .await
        .context("DATABASE_URL: cannot connect to the database")?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
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
        let state = router::AppState {
            leptos_options,
            server: ServerState {
                store: store.clone(),
                sign_in_limits: SignInLimits::default(),
                public_url: settings.public_url_for(addr),
            },
        };
        let router = router::build(state, settings.cookies_secure());
        Ok(Self {
            listener,
            router,
            addr,
            store,
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
        tracing::info!(url = %format!("http://{}", self.addr), "Berth is listening");
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        self.store.close().await;
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
