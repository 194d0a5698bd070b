//! `xapid` wiring: configuration, first-start bootstrap of the one-host pool, the TLS
//! certificate, and the listeners (HTTPS, optional plain HTTP, the local Unix socket) that
//! feed the [`crate::server`]; and its generated completions and man page. No business logic
//! lives here.

pub mod bootstrap;
pub mod config;
pub mod generate;
mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use config::Config;

/// How long one intra-pool housekeeping call (ping, replication, recovery) may take before
/// the peer counts as unreachable. Forwarded API calls and domain operations are not bounded
/// by it: they take as long as the operation does.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

use crate::host::inventory;
use crate::pool::{Database, StoreError};
use crate::server::membership::{self, Membership, PoolRole};
use crate::server::peer::Peers;
use crate::server::{http, Server, ServerConfig, Transport};

/// Why the daemon could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The pool database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// The TLS certificate could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// Bootstrapping the pool database failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::model::ApiError),
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let context = context.into();
    move |source| DaemonError::Io { context, source }
}

/// Run the daemon until SIGTERM or SIGINT, then shut down cleanly.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    create_private_dir(&config.state_dir)?;
    // Before anything can start a domain: whatever the previous daemon's command domains left
    // running (a crash kills only their shells) must be dead, or a VM could run twice.
    let leftovers =
        crate::host::domain::kill_leftovers(&crate::host::domain::records_dir(&config.state_dir))
            .map_err(io("killing the domains a previous daemon left"))?;
    for l in &leftovers {
        tracing::warn!(
            vm = %l.vm,
            group = l.group,
            processes = l.processes,
            "killed a domain the previous daemon left running"
        );
    }
    let facts = bootstrap::gather_facts(&config)?;
    // Before the database, so an unusable certificate (or CPU file) refuses the start with
    // nothing changed.
    let tls = match config.https_listen {
        Some(_) => Some(tls::load_or_create(&config.state_dir).await?),
        None => None,
    };
    let db = Database::open(&config.state_dir.join("pool.db"))?;
    let server_config = ServerConfig {
        auth_failure_delay: config.auth_failure_delay,
        state_dir: Some(config.state_dir.clone()),
        facts: Some(facts.clone()),
        ha_port: config.ha_port,
        ha_watchdog: config.ha_watchdog.clone(),
        ha_fence_reboot: config.ha_fence_reboot,
    };
    let peers = Peers::new(&config.pool_scheme, config.pool_port, PEER_TIMEOUT);
    let inventory = inventory::read(&config.state_dir).map_err(io("reading the inventory"))?;
    let server = match inventory.as_ref().and_then(|i| i.master_address.clone()) {
        // A member changes nothing locally: the master owns the database and brings this copy
        // up to date when it sees the member again.
        Some(master) => {
            let uuid = &inventory.as_ref().expect("checked").installation_uuid;
            let this_host = db
                .read()
                .by_uuid(uuid)
                .map(|(_, r)| r.to_string())
                .ok_or_else(|| {
                    DaemonError::Config(format!(
                        "host {uuid} is not in this member's copy of the database"
                    ))
                })?;
            let secret = inventory::read_secret(&config.state_dir)
                .map_err(io("reading the pool secret"))?
                .ok_or_else(|| DaemonError::Config("a pool member without a pool secret".into()))?;
            db.set_write_epoch(membership::MEMBER_WRITE_EPOCH);
            let generation = db.read().generation();
            let membership = Membership::new(
                PoolRole::Member {
                    master: master.clone(),
                },
                secret,
                inventory.as_ref().map_or(1, |i| i.epoch),
                peers,
                generation,
            );
            tracing::info!(%master, "starting as a pool member");
            Arc::new(Server::new(db, this_host, server_config, membership))
        }
        None => {
            // A master stamps its writes with its epoch, from the first (bootstrap) one on.
            let epoch = inventory.as_ref().map_or(1, |i| i.epoch);
            db.set_write_epoch(epoch.max(db.read().stamp().epoch));
            let this_host = bootstrap::ensure(&db, &config, &facts)?;
            let secret = bootstrap::ensure_pool_secret(&config)?;
            let generation = db.read().generation();
            let membership = Membership::new(PoolRole::Master, secret, epoch, peers, generation);
            let server = Arc::new(Server::new(db, this_host, server_config, membership));
            bootstrap::ensure_root_password(&server, &config)?;
            let halted = crate::server::vm::reset_after_restart(&server)?;
            crate::server::maintenance::enable_master_after_restart(&server)?;
            if halted > 0 {
                tracing::warn!(
                    halted,
                    "VMs recorded as running here died with the previous daemon; marked halted"
                );
            }
            server
        }
    };
    server.db.set_observer(server.membership.observer());
    membership::spawn(server.clone());
    if let PoolRole::Member { master } = server.membership.role() {
        // Starts are held from here, before any listener serves, until the master has halted
        // what died with the previous daemon.
        crate::server::lost_domains::spawn_member_report(server.clone());
        crate::server::maintenance::spawn_member_enable_after_restart(server.clone(), master);
    }
    crate::server::ha::boot(&server);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();

    if let (Some(addr), Some(tls)) = (config.https_listen, tls) {
        let handle = axum_server::Handle::new();
        let app = http::router(server.clone(), Transport::Tcp);
        let std_listener =
            std::net::TcpListener::bind(addr).map_err(io(format!("binding HTTPS on {addr}")))?;
        std_listener
            .set_nonblocking(true)
            .map_err(io("HTTPS listener"))?;
        let h = handle.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let _ = rx.changed().await;
            h.graceful_shutdown(Some(Duration::from_secs(5)));
        });
        tracing::info!(%addr, "serving HTTPS");
        tasks.push(tokio::spawn(async move {
            let server = axum_server::from_tcp_rustls(std_listener, tls).map(|s| s.handle(handle));
            match server {
                Ok(s) => {
                    if let Err(e) = s.serve(app.into_make_service()).await {
                        tracing::error!(error = %e, "HTTPS listener failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "HTTPS listener failed"),
            }
        }));
    }
    if let Some(addr) = config.http_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io(format!("binding HTTP on {addr}")))?;
        let app = http::router(server.clone(), Transport::Tcp);
        let mut rx = stop_rx.clone();
        tracing::info!(%addr, "serving plain HTTP");
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        }));
    }
    if let Some(path) = config.socket.clone() {
        let listener = bind_unix(&path)?;
        let app = http::router(server.clone(), Transport::Unix);
        let mut rx = stop_rx.clone();
        tracing::info!(path = %path.display(), "serving the local socket");
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "local socket listener failed");
            }
        }));
    }
    if tasks.is_empty() {
        return Err(DaemonError::Config("no listener configured".into()));
    }
    tracing::info!(host = %server.this_host, "xapid ready");

    wait_for_stop_signal().await;
    tracing::info!("shutting down");
    // A stop is a clean shutdown of this host: leave the HA liveset as excluded, so the others
    // neither wait for a fence deadline nor call it a failure.
    if let Err(e) = crate::server::ha::leave(&server).await {
        tracing::error!(error = %e, "could not leave the HA liveset cleanly; the pool will treat this stop as a failure");
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    if let Some(path) = &config.socket {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Bind the local socket, replacing a stale one, readable and writable by its owner only:
/// whoever can connect is trusted as root.
///
/// A socket bound in place would exist under the umask's mode until a chmod, and a connection
/// made in that window stays open (the kernel checks permission only at connect) and would be
/// accepted as root. So it is bound in a fresh 0700 directory beside its path, where no one
/// else can reach it, made 0600 there, and renamed into place (which also replaces a stale
/// socket atomically). The listener keeps working: it is bound to the socket, not the name.
fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    // Short names: a socket path is limited to about 100 bytes.
    let private = dir.join(format!(".xapid-{}", std::process::id()));
    match std::fs::remove_dir_all(&private) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("removing {}", private.display()))(e)),
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(io(format!("creating {}", private.display())))?;
    let bound = private.join("s");
    let result = tokio::net::UnixListener::bind(&bound)
        .map_err(io(format!("binding {}", path.display())))
        .and_then(|listener| {
            std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o600))
                .map_err(io(format!("restricting {}", path.display())))?;
            std::fs::rename(&bound, path).map_err(io(format!("binding {}", path.display())))?;
            Ok(listener)
        });
    let _ = std::fs::remove_dir_all(&private);
    result
}

/// Create the state directory mode 0700, or tighten an existing one that others can reach: it
/// holds the pool database (password hashes), the TLS key and the pool secret.
pub(crate) fn create_private_dir(dir: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(format!("creating state directory {}", dir.display())))?;
    let mode = std::fs::metadata(dir)
        .map_err(io(format!("reading state directory {}", dir.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        let tightened = mode & 0o700;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(tightened))
            .map_err(io(format!("restricting state directory {}", dir.display())))?;
        tracing::warn!(path = %dir.display(), "the state directory was mode {mode:o}; made it {tightened:o}");
    }
    Ok(())
}
