//! The running service: the webhook ingress ([`ingress`]), the worker runtime
//! ([`worker`]), the admin API and dashboard ([`admin`]) over the operations service
//! ([`ops`], which the `dlq` commands call too), metrics ([`metrics`]) and the
//! background tasks' health that readiness reports ([`health`]); both listeners are
//! served by [`serve`] (every wait on a client bounded, each request given its peer's
//! address as `ConnectInfo<SocketAddr>`).
//!
//! [`start`] wires them around a loaded [`Config`] and an open [`Store`]; the binary and
//! the tests both go through it, and [`ingress::router`] is the `fn app() -> Router` the
//! in-process tests drive.

pub mod admin;
pub mod health;
pub mod ingress;
pub mod metrics;
pub mod ops;
pub mod rotation;
pub mod serve;
pub mod worker;

use slatis_core::Config;
use slatis_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The store failed at start-up.
    #[error(transparent)]
    Store(#[from] slatis_store::StoreError),
    /// A listener's certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] serve::tls::TlsError),
}

/// What every part of the running service shares.
pub struct Shared {
    config: RwLock<Arc<Config>>,
    /// Where events and jobs live.
    pub store: Arc<dyn Store>,
    /// Woken when new jobs are stored or replayed.
    pub wake: Notify,
    /// The file the config came from (for reload).
    pub config_path: Option<PathBuf>,
    /// Background tasks that died (readiness reports them).
    pub health: health::Health,
    /// Signing-secret rotations in progress: windows and runtime secrets.
    pub rotation: rotation::Rotations,
}

impl Shared {
    /// State around `config` and `store`; where the store keeps rate windows every
    /// replica shares (PostgreSQL), the connectors' sends are counted there.
    pub fn new(
        mut config: Config,
        store: Arc<dyn Store>,
        config_path: Option<PathBuf>,
    ) -> Arc<Self> {
        count_sends_in_store(&mut config, &*store);
        Arc::new(Self {
            config: RwLock::new(Arc::new(config)),
            store,
            wake: Notify::new(),
            config_path,
            health: health::Health::default(),
            rotation: rotation::Rotations::default(),
        })
    }

    /// The current config generation.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Loads the config file again and, if it is valid, makes it current (a tenant whose
    /// `tenants_dir` file is unchanged is kept as it runs, its file not read). Listeners and
    /// storage keep their settings until a restart. Connector instances whose block is
    /// unchanged keep running (their OAuth tokens, limiters and locks), changed ones
    /// inherit the rate budget ([`Config::carry_over`]); jobs already running finish on
    /// the generation they started with.
    ///
    /// # Errors
    /// The new file's errors; the running config stays.
    pub fn reload(&self) -> Result<Vec<String>, slatis_core::ConfigError> {
        let Some(path) = &self.config_path else {
            return Ok(vec!["no config file to reload".to_owned()]);
        };
        let mut new = slatis_core::config::load_file_after(path, &self.config())?;
        count_sends_in_store(&mut new, &*self.store);
        let mut notes = new.warnings.clone();
        let carried = {
            let old = self.config();
            if old.server.needs_restart_for(&new.server) || new.storage.url != old.storage.url {
                notes.push(
                    "server.listen, the server timeouts, server.max_connections and storage.url take effect at the next restart".to_owned(),
                );
            }
            new.carry_over(&old)
        };
        self.rotation.prune(&new);
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        self.wake.notify_one();
        tracing::info!(
            tenants = self.config().tenants.len(),
            tenants_kept = carried.tenants_kept,
            connectors_kept = carried.kept,
            connectors_started = carried.started,
            "config reloaded"
        );
        Ok(notes)
    }
}

/// Makes every connector instance of `config` count its sends in the rate windows `store`
/// shares between replicas, where it keeps them (PostgreSQL): each config generation, at
/// start and at every reload.
fn count_sends_in_store(config: &mut Config, store: &dyn Store) {
    if let Some(windows) = store.rate_windows() {
        config.share_windows(&windows);
    }
}

/// Start-up choices the binary makes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Put every running job back at start (the single owner of a SQLite file: any job
    /// still marked running was ours, from before a crash).
    pub reclaim_all_on_start: bool,
}

/// The running service.
pub struct Running {
    /// Where the ingress listens.
    pub ingress: SocketAddr,
    /// Where the admin listener listens, if configured.
    pub admin: Option<SocketAddr>,
    /// The listeners' TLS (ingress, admin), where configured.
    tls: Vec<Arc<serve::tls::Tls>>,
    cancel: CancellationToken,
    ingress_task: JoinHandle<()>,
    admin_task: Option<JoinHandle<()>>,
    worker_task: JoinHandle<()>,
    shared: Arc<Shared>,
}

/// Binds the listeners and starts the workers.
///
/// # Errors
/// [`ServerError`] when a listener cannot be bound or the store fails.
pub async fn start(shared: Arc<Shared>, options: Options) -> Result<Running, ServerError> {
    metrics::install();
    let config = shared.config();
    let cancel = CancellationToken::new();
    if options.reclaim_all_on_start {
        let n = shared.store.reclaim(chrono::Utc::now(), true).await?;
        if n > 0 {
            tracing::info!(
                jobs = n,
                "reclaimed jobs left running by the previous process"
            );
        }
    }
    let ingress_tls = config
        .server
        .tls
        .as_ref()
        .map(serve::tls::Tls::load)
        .transpose()?;
    let admin_tls = config
        .admin
        .as_ref()
        .and_then(|a| a.tls.as_ref())
        .map(serve::tls::Tls::load)
        .transpose()?;
    let tls: Vec<_> = ingress_tls.iter().chain(&admin_tls).cloned().collect();
    let listener = bind(config.server.listen).await?;
    let ingress = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.server.listen,
        source,
    })?;
    let (ingress_limits, admin_limits) = serve::limits(&config);
    let app = ingress::router(Arc::clone(&shared));
    let ingress_task = tokio::spawn(serve::serve(
        listener,
        app,
        ingress_limits,
        ingress_tls,
        cancel.clone(),
    ));
    let (admin, admin_task) = match &config.admin {
        Some(a) => {
            let listener = bind(a.listen).await?;
            let addr = listener.local_addr().map_err(|source| ServerError::Bind {
                addr: a.listen,
                source,
            })?;
            let app = admin::router(Arc::clone(&shared));
            (
                Some(addr),
                Some(tokio::spawn(serve::serve(
                    listener,
                    app,
                    admin_limits,
                    admin_tls,
                    cancel.clone(),
                ))),
            )
        }
        None => (None, None),
    };
    // the listeners are bound: from here on `cancel` ends these tasks
    for t in &tls {
        tokio::spawn(Arc::clone(t).watch(cancel.clone()));
    }
    let worker_task = tokio::spawn(worker::run(Arc::clone(&shared), cancel.clone()));
    Ok(Running {
        ingress,
        admin,
        tls,
        cancel,
        ingress_task,
        admin_task,
        worker_task,
        shared,
    })
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

impl Running {
    /// Stops taking webhooks, lets requests in flight finish (up to
    /// `server.shutdown_timeout`) and in-flight deliveries too (up to
    /// `delivery.shutdown_grace`, then releases their leases), and closes the store.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.ingress_task.await;
        if let Some(t) = self.admin_task {
            let _ = t.await;
        }
        let _ = self.worker_task.await;
        self.shared.store.close().await;
    }

    /// The shared state (for tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reads every listener's certificate files again (SIGHUP); a failure keeps the
    /// certificate being served.
    ///
    /// # Errors
    /// The first certificate that could not be loaded.
    pub fn reload_tls(&self) -> Result<(), serve::tls::TlsError> {
        self.tls.iter().try_for_each(|t| t.reload())
    }
}
