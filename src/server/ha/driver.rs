//! The I/O around this host's [`Agent`]: UDP heartbeats on the host's address, the statefile
//! on the heartbeat SR, the process watchdog, the fence, and the clock.
//!
//! The agent runs on a thread of its own with a single-threaded runtime, so a busy API server
//! can never starve it (xha learned this the hard way: CA-403139, CA-404658). Statefile reads
//! and writes go to blocking threads, one at a time, and their results come back as inputs; a
//! hung statefile simply stops this host's storage heartbeat, which the survival rules handle.
//! What the agent decides about the pool (a new master, a smaller liveset) is handed to the
//! main runtime.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{HaConfig, Status};
use crate::ha::{Agent, Command, HostUuid, Input, Output, StorageError, WatchdogAction};
use crate::host::statefile::StatefileDevice;
use crate::host::watchdog::{DeviceWatchdog, ProcessWatchdog, Watchdog};
use crate::server::Server;

/// File in the state directory recording why this host last fenced.
pub const FENCED_MARKER: &str = "ha-fenced";
/// How long a host that could not rejoin waits before trying again (xapi: 10 s; shorter when
/// T is, so labs rejoin in their own time scale).
const REJOIN_RETRY_MS: u64 = 10_000;

/// Exit status of a daemon that fenced itself (the lab fence: the process and every domain it
/// hosts die at once).
pub const FENCED_EXIT: i32 = 86;

enum Msg {
    Command(Command),
    Stop,
}

/// The running driver.
pub struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
    thread: std::thread::JoinHandle<()>,
}

impl Handle {
    /// Give the agent a command; false when it no longer runs.
    pub fn command(&self, c: Command) -> bool {
        !self.thread.is_finished() && self.tx.send(Msg::Command(c)).is_ok()
    }

    /// Stop the driver: the watchdog is closed and heartbeats stop.
    pub fn stop(self) {
        let _ = self.tx.send(Msg::Stop);
        let _ = self.thread.join();
    }

    /// True once the driver has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// The next incarnation of the agent on this host: one more than the last, persisted.
fn next_incarnation(dir: Option<&Path>) -> u32 {
    let Some(dir) = dir else {
        return 1;
    };
    let path = dir.join("ha-incarnation");
    let last: u32 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let next = last.wrapping_add(1).max(1);
    if let Err(e) = std::fs::write(&path, next.to_string()) {
        tracing::warn!(error = %e, "could not persist the HA incarnation");
    }
    next
}

/// Start the agent on its own thread with `command` (`Enable` or `Boot`).
pub fn spawn(
    server: Arc<Server>,
    config: HaConfig,
    command: Command,
    status: Arc<Mutex<Status>>,
) -> Result<Handle, String> {
    let pool = config.pool_config()?;
    let me_uuid = super::this_uuid(&server);
    let me = HostUuid::parse(&me_uuid).map_err(|e| e.to_string())?;
    let peers = config.by_index();
    let addresses: Vec<SocketAddr> = peers
        .iter()
        .map(|p| {
            (p.address.as_str(), config.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| format!("cannot resolve host address {}", p.address))
        })
        .collect::<Result<_, _>>()?;
    let index = pool
        .index_of(&me)
        .ok_or("this host is not in the HA configuration")?;
    let socket = std::net::UdpSocket::bind(addresses[index])
        .map_err(|e| format!("binding the heartbeat socket {}: {e}", addresses[index]))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    if let Some(device) = &server.config.ha_watchdog {
        DeviceWatchdog::check(device)?;
    }
    let state_dir = server.config.state_dir.clone();
    let incarnation = next_incarnation(state_dir.as_deref());
    let agent = Agent::new(pool, me, incarnation).map_err(|e| e.to_string())?;
    let uuids: Vec<String> = peers.iter().map(|p| p.uuid.clone()).collect();
    let main = tokio::runtime::Handle::current();
    let (tx, rx) = mpsc::unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("ha-agent".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building the HA runtime");
            rt.block_on(async move {
                let socket = match tokio::net::UdpSocket::from_std(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "heartbeat socket");
                        return;
                    }
                };
                let driver = Driver {
                    server,
                    main,
                    agent,
                    socket,
                    addresses,
                    uuids,
                    statefile: config.statefile.clone(),
                    status,
                    watchdog: None,
                    marker: state_dir.map(|d| d.join(FENCED_MARKER)),
                    origin: Instant::now(),
                    failed_at: None,
                    retry_after: config.timeout_ms.min(REJOIN_RETRY_MS),
                };
                driver.run(command, rx).await;
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(Handle { tx, thread })
}

struct Driver {
    server: Arc<Server>,
    main: tokio::runtime::Handle,
    agent: Agent,
    socket: tokio::net::UdpSocket,
    addresses: Vec<SocketAddr>,
    uuids: Vec<String>,
    statefile: String,
    status: Arc<Mutex<Status>>,
    watchdog: Option<Watchdog>,
    marker: Option<PathBuf>,
    origin: Instant,
    /// When the agent reported `StartFailed`.
    failed_at: Option<u64>,
    /// How long a failed boot waits before the next try (ms).
    retry_after: u64,
}

impl Driver {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    async fn run(mut self, first: Command, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let (sf_tx, mut sf_rx) = mpsc::unbounded_channel::<Input>();
        let mut buf = vec![0u8; 65_536];
        tracing::info!(command = ?first, incarnation = self.agent.incarnation(), "HA agent starting");
        self.agent.handle(self.now(), Input::Command(first));
        let mut rejoin = false;
        loop {
            if self.carry_out(&sf_tx) {
                break;
            }
            // A boot that could not join is tried again (xapi retries every 10 s), after the
            // others have seen it give up: the agent keeps heartbeating `Aborted` meanwhile.
            let failed_at = self.failed_at;
            if first == Command::Boot {
                if let Some(at) = failed_at {
                    if self.now() >= at + self.retry_after {
                        rejoin = true;
                        break;
                    }
                }
            }
            let mut wake = self
                .agent
                .poll_timeout()
                .unwrap_or(self.now() + 1000)
                .max(self.now());
            if let (Command::Boot, Some(at)) = (first, failed_at) {
                wake = wake.min(at + self.retry_after);
            }
            let until = tokio::time::Instant::from_std(self.origin + Duration::from_millis(wake));
            let input = tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, _)) => Input::Packet(buf[..n].to_vec()),
                    Err(_) => Input::Tick,
                },
                Some(done) = sf_rx.recv() => done,
                m = rx.recv() => match m {
                    Some(Msg::Command(c)) => Input::Command(c),
                    Some(Msg::Stop) | None => break,
                },
                _ = tokio::time::sleep_until(until) => Input::Tick,
            };
            self.agent.handle(self.now(), input);
        }
        if let Some(w) = self.watchdog.as_mut() {
            let _ = w.close();
        }
        if rejoin {
            tracing::warn!("HA could not rejoin; trying again");
            let server = self.server.clone();
            self.main.spawn(async move { super::retry_boot(&server) });
            return;
        }
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.stopped = true;
        s.armed = false;
        tracing::info!("HA agent stopped");
    }

    /// Carry out everything the agent asked for; true when it has stopped for good.
    fn carry_out(&mut self, sf_tx: &mpsc::UnboundedSender<Input>) -> bool {
        let mut stopped = false;
        while let Some(out) = self.agent.poll_output() {
            match out {
                Output::Send { to, bytes } => {
                    let _ = self.socket.try_send_to(&bytes, self.addresses[to]);
                }
                Output::WriteStatefile { offset, bytes, .. } => self.on_statefile(
                    sf_tx,
                    move |d| d.write(offset, &bytes),
                    Input::StatefileWritten,
                ),
                Output::ReadStatefile { len } => {
                    self.on_statefile(sf_tx, move |d| d.read(len), Input::StatefileRead)
                }
                Output::Watchdog(WatchdogAction::Kick { timeout_ms }) => self.kick(timeout_ms),
                Output::Watchdog(WatchdogAction::Close) => {
                    if let Some(w) = self.watchdog.as_mut() {
                        let _ = w.close();
                    }
                }
                Output::Fence(reason) => self.fence(&reason.to_string()),
                Output::LivesetChanged {
                    liveset,
                    added,
                    removed,
                } => {
                    tracing::warn!(
                        liveset = %self.names(liveset), added = %self.names(added),
                        removed = %self.names(removed), "HA liveset changed"
                    );
                    // The failover pass reads the liveset and the lock from the status: it
                    // must see this change, not the state before it.
                    self.publish_status();
                    let server = self.server.clone();
                    self.main.spawn(async move {
                        super::failover::on_liveset_change(&server).await;
                    });
                }
                Output::BecameMaster { epoch } => {
                    tracing::warn!(epoch, "this host holds the HA master lock");
                    self.publish_status();
                    let server = self.server.clone();
                    self.main.spawn(async move {
                        super::on_became_master(&server, epoch).await;
                        super::failover::on_liveset_change(&server).await;
                    });
                }
                Output::LostMastership { epoch, reason } => {
                    tracing::error!(epoch, reason, "this host lost the HA master lock");
                }
                Output::Armed { liveset } => {
                    tracing::info!(liveset = %self.names(liveset), "HA armed");
                }
                Output::Survived(decision) => {
                    tracing::warn!(%decision, "HA fault handled: this host survives");
                }
                Output::FaultDetected {
                    missing_hb,
                    missing_sf,
                } => {
                    tracing::warn!(
                        heartbeat = %self.names(missing_hb), statefile = %self.names(missing_sf),
                        "HA fault: members missing"
                    );
                }
                Output::RemovalScheduled { host, deadline } => {
                    let in_ms = deadline.saturating_sub(self.now());
                    tracing::warn!(host = %self.uuids[host], in_ms, "HA removes a host at its fence deadline");
                }
                Output::StartFailed { reason } => {
                    tracing::error!(%reason, "HA could not start on this host");
                    self.failed_at = Some(self.now());
                    self.status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failure = Some(reason);
                }
                Output::Stopped { reason } => {
                    tracing::info!(%reason, "HA stopped on this host");
                    super::on_stopped(&self.server);
                    stopped = true;
                }
                Output::Warning(w) => tracing::warn!(warning = %w, "HA"),
            }
        }
        self.publish_status();
        stopped
    }

    /// Make the agent's phase, liveset and lock visible to the rest of the daemon.
    fn publish_status(&self) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.phase = self.agent.phase().name().to_string();
        s.armed = self.agent.is_armed();
        s.liveset = self
            .agent
            .liveset()
            .iter()
            .map(|i| self.uuids[i].clone())
            .collect();
        s.master_epoch = self.agent.master_epoch();
        s.excluded = self
            .agent
            .excluded()
            .iter()
            .map(|i| self.uuids[i].clone())
            .collect();
    }

    /// Run one statefile operation on a blocking thread and hand its result back as an input.
    /// The file is opened for each operation, so a statefile whose SR went away and came back
    /// (a remount, a path failover) is found again where a kept descriptor would stay stale.
    fn on_statefile<T: Send + 'static>(
        &self,
        sf_tx: &mpsc::UnboundedSender<Input>,
        op: impl FnOnce(&StatefileDevice) -> std::io::Result<T> + Send + 'static,
        done: fn(Result<T, StorageError>) -> Input,
    ) {
        let (location, tx) = (self.statefile.clone(), sf_tx.clone());
        tokio::task::spawn_blocking(move || {
            let r = StatefileDevice::open(&location)
                .and_then(|d| op(&d))
                .map_err(|e| StorageError(e.to_string()));
            let _ = tx.send(done(r));
        });
    }

    fn names(&self, set: crate::ha::HostSet) -> String {
        let names: Vec<&str> = set.iter().map(|i| self.uuids[i].as_str()).collect();
        format!("[{}]", names.join(", "))
    }

    fn kick(&mut self, timeout_ms: u64) {
        if self.watchdog.is_none() {
            let marker = self
                .marker
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(FENCED_MARKER));
            let opened = match &self.server.config.ha_watchdog {
                Some(device) => DeviceWatchdog::open(device).map(Watchdog::Device),
                None => ProcessWatchdog::spawn(&marker).map(Watchdog::Process),
            };
            match opened {
                Ok(w) => self.watchdog = Some(w),
                // Armed without a watchdog is not safe: a hang would go unfenced.
                Err(e) => self.fence(&format!("cannot start the watchdog: {e}")),
            }
        }
        let w = self.watchdog.as_mut().expect("just set");
        if let Err(e) = w.kick(Duration::from_millis(timeout_ms)) {
            self.fence(&format!("cannot kick the watchdog: {e}"));
        }
    }

    /// Fence: record why, then reset the machine (`--ha-fence reboot`) or end the process at
    /// once (labs: every domain this daemon hosts dies with it). Either way nothing this host
    /// does afterwards can reach the pool; the next start rejoins.
    fn fence(&self, reason: &str) -> ! {
        tracing::error!(%reason, "HA FENCE: this host leaves the pool now");
        if let Some(marker) = &self.marker {
            let _ = std::fs::write(marker, format!("{reason}\n"));
        }
        if self.server.config.ha_fence_reboot {
            // No sync: a fenced host must not write anything more. If the reset is refused
            // (no CAP_SYS_BOOT), ending the process still stops this host acting, and an
            // armed device watchdog resets the machine shortly after.
            let e = rustix::system::reboot(rustix::system::RebootCommand::Restart);
            tracing::error!(error = ?e, "reboot refused; ending the daemon instead");
        }
        std::process::exit(FENCED_EXIT);
    }
}
