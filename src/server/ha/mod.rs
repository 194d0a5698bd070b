//! HA in the daemon: turning it on and off for the pool, running this host's [`crate::ha::Agent`]
//! and acting on what it decides.
//!
//! * [`enable`] / [`disable`] (on the master) orchestrate `pool.enable_ha` / `pool.disable_ha`:
//!   they create the statefile VDI, hand every host the same [`HaConfig`], wait for the first
//!   liveset to arm (or undo everything), and record the result in the database.
//! * [`Runtime`] is this host's side: the persisted configuration (`ha.json` in the state
//!   directory: its presence means "HA armed here", xapi's `ha_armed`), the running
//!   [`driver`], and the status the agent last reported.
//! * [`failover`] is the master's reaction to a smaller liveset: declare the missing hosts dead
//!   and restart their protected VMs by plan.

pub mod driver;
pub mod failover;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::membership::PoolRole;
use super::Server;
use crate::ha::{self, Command, HostUuid, PoolConfig, Timeouts};
use crate::model::classes::{HOST, PBD, POOL, SR, VDI};
use crate::model::errors::code;
use crate::model::{ApiError, Value};
use crate::server::str_field;

/// Size of the statefile VDI, as xapi makes it (4 MiB); the layout needs far less.
pub const STATEFILE_SIZE: i64 = 4 * 1024 * 1024;

/// The HA port when `--ha-port` is not given (xhad's).
pub const DEFAULT_PORT: u16 = 694;

/// What every host of one HA generation shares, persisted on each as `ha.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HaConfig {
    /// The generation (hex), new on every enable.
    pub generation: String,
    /// The heartbeat secret (hex).
    pub secret: String,
    /// T in milliseconds.
    pub timeout_ms: u64,
    /// UDP port every host listens on.
    pub port: u16,
    /// Every host: UUID and address.
    pub hosts: Vec<HaPeer>,
    /// The statefile VDI's UUID and location.
    pub statefile_vdi: String,
    /// Where the statefile's bytes are (see [`crate::host::statefile::locate`]).
    pub statefile: String,
    /// The pool master when HA was enabled: it takes the master lock first.
    pub first_master: Option<String>,
}

/// One host of an HA configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HaPeer {
    /// Host UUID.
    pub uuid: String,
    /// Address heartbeats go to.
    pub address: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
                .collect()
        })
        .flatten()
}

impl HaConfig {
    /// The agent's configuration.
    pub fn pool_config(&self) -> Result<PoolConfig, String> {
        let generation: [u8; 16] = unhex(&self.generation)
            .and_then(|g| g.try_into().ok())
            .ok_or("bad generation")?;
        let secret = unhex(&self.secret).ok_or("bad secret")?;
        let hosts = self
            .hosts
            .iter()
            .map(|h| HostUuid::parse(&h.uuid).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let timeouts = Timeouts::derive(self.timeout_ms).map_err(|e| e.to_string())?;
        let mut cfg =
            PoolConfig::new(generation, hosts, secret, timeouts).map_err(|e| e.to_string())?;
        cfg.first_master = match &self.first_master {
            Some(u) => Some(HostUuid::parse(u).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(cfg)
    }

    /// Host UUIDs in agent index order (sorted by UUID).
    pub fn by_index(&self) -> Vec<HaPeer> {
        let mut hosts = self.hosts.clone();
        hosts.sort_by_key(|h| HostUuid::parse(&h.uuid).unwrap_or_default());
        hosts
    }
}

/// What this host's agent last said, for the master's enable loop, `xe` and logs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// The agent's phase (`Phase` as text), or "" when no agent runs.
    pub phase: String,
    /// Fencing armed.
    pub armed: bool,
    /// Liveset as host UUIDs.
    pub liveset: Vec<String>,
    /// The epoch this host is HA master under.
    pub master_epoch: Option<u64>,
    /// Why the start failed, if it did.
    pub failure: Option<String>,
    /// The agent stopped (disable, shutdown).
    pub stopped: bool,
    /// Hosts that left cleanly (excluded in the statefile), as host UUIDs.
    #[serde(default)]
    pub excluded: Vec<String>,
}

/// This host's HA: configuration, running agent, last status.
#[derive(Default)]
pub struct Runtime {
    running: Mutex<Option<driver::Handle>>,
    status: Arc<Mutex<Status>>,
    /// Failover passes run one at a time.
    pub(crate) failover: tokio::sync::Mutex<()>,
    /// Protected VMs whose restart failed and were alerted about (once each, as xapi).
    pub(crate) restart_failed: Mutex<std::collections::HashSet<String>>,
    /// Set when this host restarts as master with HA armed, until HA confirms it.
    unconfirmed_master: std::sync::atomic::AtomicBool,
    /// Set while this host leaves cleanly: HA stays armed here for the next start.
    leaving: std::sync::atomic::AtomicBool,
}

impl Runtime {
    /// The last reported status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn send(&self, command: Command) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().is_some_and(|h| h.command(command))
    }

    fn stop_driver(&self) {
        if let Some(h) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.stop();
        }
    }

    /// True while this host believes it is master but HA has not confirmed it since a restart.
    pub fn unconfirmed_master(&self) -> bool {
        self.unconfirmed_master
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The master role is settled: HA elected this host, or it now follows a newer master.
    pub(crate) fn confirm_master(&self) {
        self.unconfirmed_master
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// True while an agent runs here.
    pub fn is_running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }
}

fn config_path(server: &Server) -> Option<PathBuf> {
    server.config.state_dir.as_ref().map(|d| d.join("ha.json"))
}

/// The HA configuration persisted on this host (present while HA is armed here).
pub fn load_config(server: &Server) -> Option<HaConfig> {
    let text = std::fs::read_to_string(config_path(server)?).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_config(server: &Server, config: Option<&HaConfig>) -> Result<(), ApiError> {
    let Some(path) = config_path(server) else {
        return Err(ApiError::internal("HA needs a state directory"));
    };
    match config {
        Some(c) => {
            let json = serde_json::to_vec_pretty(c).expect("serialises");
            crate::host::files::write_whole(&path, &json).map_err(ApiError::internal)
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ApiError::internal(e)),
        },
    }
}

/// Start this host's agent with `config`: `Enable` forms the first liveset, `Boot` rejoins.
pub fn start(server: &Arc<Server>, config: HaConfig, command: Command) -> Result<(), ApiError> {
    if server.ha.is_running() {
        return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
    }
    save_config(server, Some(&config))?;
    *server.ha.status.lock().unwrap_or_else(|e| e.into_inner()) = Status::default();
    let handle = match driver::spawn(server.clone(), config, command, server.ha.status.clone()) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "the HA agent cannot start on this host");
            // Nothing runs: this host is not armed.
            let _ = save_config(server, None);
            return Err(ApiError::new::<String>(
                "HA_HEARTBEAT_DAEMON_STARTUP_FAILED",
                [],
            ));
        }
    };
    *server.ha.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    Ok(())
}

/// At daemon start: rejoin if HA was armed here when the daemon last ran.
pub fn boot(server: &Arc<Server>) {
    let Some(config) = load_config(server) else {
        return;
    };
    if let Some(dir) = &server.config.state_dir {
        if let Ok(why) = std::fs::read_to_string(dir.join(driver::FENCED_MARKER)) {
            tracing::error!(
                reason = why.trim(),
                "this host was fenced by HA before this start"
            );
        }
    }
    tracing::info!("HA is armed on this host: rejoining the liveset");
    if server.membership.role() == PoolRole::Master {
        // Another host may have been elected while this one was down (xapi starts in
        // emergency mode for the same reason).
        server
            .ha
            .unconfirmed_master
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!("this host was master: serving nothing until HA confirms it or a newer master claims it");
    }
    if let Err(e) = start(server, config, Command::Boot) {
        tracing::error!(error = %e, "could not start the HA agent");
    }
}

/// A boot that could not join gave up: start again with a new incarnation, as long as HA is
/// still armed here.
pub(crate) fn retry_boot(server: &Arc<Server>) {
    server.ha.stop_driver();
    let Some(config) = load_config(server) else {
        return;
    };
    if let Err(e) = start(server, config, Command::Boot) {
        tracing::error!(error = %e, "could not restart the HA agent");
    }
}

/// The agent stopped: after a disable HA is no longer armed here; after a clean leave it still
/// is (the next start rejoins).
pub(crate) fn on_stopped(server: &Server) {
    server.ha.confirm_master();
    if server.ha.leaving.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    if let Err(e) = save_config(server, None) {
        tracing::error!(error = %e, "could not forget the HA configuration");
    }
}

// ---- internal calls between hosts ----

/// `host.internal_ha_start(secret, config, mode)`.
pub fn internal_start(
    server: &Arc<Server>,
    secret: &str,
    config: &str,
    mode: &str,
) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    let config: HaConfig = serde_json::from_str(config)
        .map_err(|e| ApiError::invalid_value("configuration", &e.to_string()))?;
    let command = match mode {
        "enable" => Command::Enable,
        "boot" => Command::Boot,
        other => return Err(ApiError::invalid_value("mode", other)),
    };
    start(server, config, command)?;
    Ok(Value::void())
}

/// `host.internal_ha_status(secret)`: this host's [`Status`] as JSON.
pub fn internal_status(server: &Server, secret: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    Ok(Value::Str(
        serde_json::to_string(&server.ha.status()).expect("serialises"),
    ))
}

/// `host.internal_ha_fence_report(secret)`: why this host last fenced, handed over once (the
/// record is kept as `ha-fenced.reported`) so the master raises one `HA_HOST_WAS_FENCED`.
pub fn internal_fence_report(server: &Server, secret: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    let Some(dir) = &server.config.state_dir else {
        return Ok(Value::str(""));
    };
    let marker = dir.join(driver::FENCED_MARKER);
    let Ok(reason) = std::fs::read_to_string(&marker) else {
        return Ok(Value::str(""));
    };
    let _ = std::fs::rename(&marker, marker.with_extension("reported"));
    Ok(Value::str(reason.trim()))
}

/// `host.internal_ha_stop(secret, how)`: `disable` (pool-wide, through the statefile) or
/// `abort` (a failed enable: stop without touching anything, fence nobody).
pub fn internal_stop(server: &Server, secret: &str, how: &str) -> Result<Value, ApiError> {
    server.membership.check_secret(secret)?;
    match how {
        "disable" => {
            if !server.ha.send(Command::Disable) {
                server.ha.stop_driver();
                on_stopped(server);
            }
        }
        "abort" => {
            server.ha.send(Command::Disarm);
            server.ha.stop_driver();
            on_stopped(server);
        }
        other => return Err(ApiError::invalid_value("how", other)),
    }
    Ok(Value::void())
}

// ---- pool.enable_ha / pool.disable_ha ----

fn pool_ref(t: &crate::pool::Tables) -> Result<String, ApiError> {
    t.all(POOL.name)
        .next()
        .map(|(r, _)| r.clone())
        .ok_or_else(|| ApiError::internal("the pool object is missing"))
}

/// `ha-config:timeout` (seconds, as xapi; fractions allowed for labs) in milliseconds.
fn timeout_of(configuration: &Value) -> Result<u64, ApiError> {
    let Some(given) = configuration
        .as_struct()
        .and_then(|m| m.get("timeout"))
        .and_then(Value::as_str)
    else {
        return Ok(30_000);
    };
    let ms = given
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1000.0).round() as u64)
        .ok_or_else(|| ApiError::invalid_value("timeout", given))?;
    Timeouts::derive(ms).map_err(|_| ApiError::invalid_value("timeout", given))?;
    if ms < ha::timeouts::XAPI_MIN_T_MS {
        tracing::warn!(
            timeout_ms = ms,
            "HA timeout below xapi's 10 s minimum: fine for a lab, not for production"
        );
    }
    Ok(ms)
}

/// Everything enable needs from the database, checked.
struct Plan {
    pool: String,
    sr: String,
    hosts: Vec<(String, HaPeer)>,
}

fn check_enable(server: &Server, srs: &Value) -> Result<Plan, ApiError> {
    let t = server.db.read();
    if super::ha_enabled(&t) {
        return Err(ApiError::new::<String>(code::HA_IS_ENABLED, []));
    }
    let srs: Vec<String> = srs
        .as_array()
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    for sr in &srs {
        if t.get(SR.name, sr).is_none() {
            return Err(ApiError::handle_invalid(SR.name, sr));
        }
    }
    let Some(sr) = srs.first().cloned() else {
        return Err(ApiError::new::<String>(
            "HA_HOST_CANNOT_ACCESS_STATEFILE",
            [],
        ));
    };
    let hosts: Vec<(String, HaPeer)> = t
        .all(HOST.name)
        .map(|(r, h)| {
            (
                r.clone(),
                HaPeer {
                    uuid: str_field(h, "uuid").to_string(),
                    address: str_field(h, "address").to_string(),
                },
            )
        })
        .collect();
    // The statefile SR must be shared and plugged on every host.
    let shared = t.field(SR.name, &sr, "shared") == Some(&Value::Bool(true))
        && hosts.iter().all(|(h, _)| {
            t.all(PBD.name).any(|(_, p)| {
                str_field(p, "SR") == sr
                    && str_field(p, "host") == h
                    && p.get("currently_attached") == Some(&Value::Bool(true))
            })
        });
    if !shared {
        return Err(ApiError::new(
            "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED",
            [sr.as_str()],
        ));
    }
    for (h, _) in &hosts {
        if *h != server.this_host && !server.membership.is_reachable(h) {
            return Err(ApiError::new("HOST_OFFLINE", [h.as_str()]));
        }
    }
    Ok(Plan {
        pool: pool_ref(&t)?,
        sr,
        hosts,
    })
}

fn this_uuid(server: &Server) -> String {
    server
        .db
        .read()
        .field(HOST.name, &server.this_host, "uuid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Call `method` on host `host` (locally when it is this host).
async fn on_host(
    server: &Arc<Server>,
    host: &HaPeer,
    method: &str,
    extra: Vec<Value>,
) -> Result<Value, ApiError> {
    let secret = server.membership.secret();
    if host.uuid == this_uuid(server) {
        let args: Vec<String> = extra
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect();
        return match method {
            "host.internal_ha_start" => internal_start(server, &secret, &args[0], &args[1]),
            "host.internal_ha_status" => internal_status(server, &secret),
            "host.internal_ha_stop" => internal_stop(server, &secret, &args[0]),
            _ => Err(ApiError::internal(format!("no local {method}"))),
        };
    }
    let mut params = vec![Value::str(secret)];
    params.extend(extra);
    server
        .membership
        .peers
        .call(&host.address, method, params)
        .await
        .map_err(|e| match e {
            super::peer::PeerError::Api(e) => e,
            super::peer::PeerError::Unreachable(_) => {
                ApiError::new("HOST_OFFLINE", [host.uuid.as_str()])
            }
        })
}

async fn status_of(server: &Arc<Server>, host: &HaPeer) -> Option<Status> {
    let v = on_host(server, host, "host.internal_ha_status", vec![])
        .await
        .ok()?;
    serde_json::from_str(v.as_str()?).ok()
}

/// `pool.enable_ha(heartbeat_srs, configuration)` on the master.
pub async fn enable(
    server: &Arc<Server>,
    srs: &Value,
    configuration: &Value,
) -> Result<Value, ApiError> {
    let timeout_ms = timeout_of(configuration)?;
    let plan = check_enable(server, srs)?;
    let port = server.config.ha_port;

    // The statefile: a fresh VDI on the heartbeat SR, initialised by this host.
    let vdi = super::storage::create_vdi(
        server,
        &Value::Struct(
            [
                ("SR".to_string(), Value::str(plan.sr.clone())),
                ("name_label".to_string(), Value::str("Statefile for HA")),
                (
                    "name_description".to_string(),
                    Value::str("Used for storage heartbeating"),
                ),
                ("virtual_size".to_string(), Value::Int(STATEFILE_SIZE)),
                ("type".to_string(), Value::str("ha_statefile")),
            ]
            .into_iter()
            .collect(),
        ),
    )
    .await?;
    let vdi = vdi.as_str().unwrap_or_default().to_string();
    let (vdi_uuid, location) = {
        let t = server.db.read();
        let v = t.get(VDI.name, &vdi).cloned().unwrap_or_default();
        (
            str_field(&v, "uuid").to_string(),
            str_field(&v, "location").to_string(),
        )
    };
    let generation = *uuid::Uuid::new_v4().as_bytes();
    let mut secret = uuid::Uuid::new_v4().as_bytes().to_vec();
    secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let config = HaConfig {
        generation: hex(&generation),
        secret: hex(&secret),
        timeout_ms,
        port,
        hosts: plan.hosts.iter().map(|(_, p)| p.clone()).collect(),
        statefile_vdi: vdi_uuid,
        statefile: location.clone(),
        first_master: Some(this_uuid(server)),
    };
    let undo_vdi = |server: Arc<Server>, vdi: String| async move {
        if let Err(e) = super::storage::destroy_vdi(&server, &vdi).await {
            tracing::warn!(error = %e, "could not remove the statefile of a failed enable");
        }
    };
    let initial = ha::statefile::initial(generation, config.hosts.len());
    let written =
        crate::host::statefile::StatefileDevice::open(&location).and_then(|d| d.write(0, &initial));
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot initialise the statefile");
        undo_vdi(server.clone(), vdi).await;
        return Err(ApiError::new::<String>(
            "HA_HOST_CANNOT_ACCESS_STATEFILE",
            [],
        ));
    }

    // Every host starts its agent; then wait for the first liveset to arm everywhere.
    let config_json = serde_json::to_string(&config).expect("serialises");
    let mut failure: Option<ApiError> = None;
    for (_, host) in &plan.hosts {
        let started = on_host(
            server,
            host,
            "host.internal_ha_start",
            vec![Value::str(config_json.clone()), Value::str("enable")],
        )
        .await;
        if let Err(e) = started {
            tracing::error!(host = %host.uuid, error = %e, "a host could not start HA");
            failure = Some(e);
            break;
        }
    }
    let timeouts = Timeouts::derive(timeout_ms).expect("checked");
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(timeouts.enable_join + timeout_ms);
    while failure.is_none() {
        let mut all_armed = true;
        for (_, host) in &plan.hosts {
            match status_of(server, host).await {
                Some(s) if s.failure.is_some() || s.stopped => {
                    tracing::error!(host = %host.uuid, failure = ?s.failure, "HA start failed on a host");
                    failure = Some(ApiError::new::<String>("HA_FAILED_TO_FORM_LIVESET", []));
                    break;
                }
                Some(s) if s.armed => {}
                _ => all_armed = false,
            }
        }
        if all_armed && failure.is_none() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            failure = Some(ApiError::new::<String>("HA_FAILED_TO_FORM_LIVESET", []));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(e) = failure {
        // Nobody armed for good: stop every agent without fencing anyone, then drop the VDI.
        for (_, host) in &plan.hosts {
            let _ = on_host(
                server,
                host,
                "host.internal_ha_stop",
                vec![Value::str("abort")],
            )
            .await;
        }
        undo_vdi(server.clone(), vdi).await;
        return Err(e);
    }

    let ha_config: std::collections::BTreeMap<String, String> = configuration
        .as_struct()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    server.db.write(|t| {
        t.set(&POOL, &plan.pool, "ha_enabled", Value::Bool(true))?;
        t.set(
            &POOL,
            &plan.pool,
            "ha_configuration",
            Value::string_map(ha_config.clone()),
        )?;
        t.set(
            &POOL,
            &plan.pool,
            "ha_statefiles",
            Value::Array(vec![Value::str(vdi.clone())]),
        )?;
        t.set(&POOL, &plan.pool, "ha_cluster_stack", Value::str("xhad"))?;
        for (h, _) in &plan.hosts {
            let peers: Vec<Value> = plan
                .hosts
                .iter()
                .filter(|(o, _)| o != h)
                .map(|(_, p)| Value::str(p.uuid.clone()))
                .collect();
            t.set(
                &HOST,
                h,
                "ha_statefiles",
                Value::Array(vec![Value::str(vdi.clone())]),
            )?;
            t.set(&HOST, h, "ha_network_peers", Value::Array(peers))?;
        }
        Ok(())
    })?;
    failover::update_pool_status(server);
    tracing::info!(hosts = plan.hosts.len(), timeout_ms, "HA enabled");
    Ok(Value::void())
}

/// `pool.disable_ha` on the master: pool state INVALID through the statefile, every agent
/// stops, then the records and the statefile go.
pub async fn disable(server: &Arc<Server>) -> Result<Value, ApiError> {
    let (pool, statefiles, hosts) = {
        let t = server.db.read();
        if !super::ha_enabled(&t) {
            return Err(ApiError::new::<String>(code::HA_NOT_ENABLED, []));
        }
        let pool = pool_ref(&t)?;
        let statefiles: Vec<String> = t
            .field(POOL.name, &pool, "ha_statefiles")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect();
        let hosts: Vec<String> = t.all(HOST.name).map(|(r, _)| r.clone()).collect();
        (pool, statefiles, hosts)
    };
    let config = load_config(server);
    // This host's agent writes INVALID to the statefile; every other agent sees it and stops.
    // Each is also told directly, so a host that lost the statefile stops too.
    let peers = config.as_ref().map(|c| c.hosts.clone()).unwrap_or_default();
    for host in &peers {
        if let Err(e) = on_host(
            server,
            host,
            "host.internal_ha_stop",
            vec![Value::str("disable")],
        )
        .await
        {
            tracing::warn!(host = %host.uuid, error = %e, "could not tell a host HA is off");
        }
    }
    let timeout = config.as_ref().map_or(30_000, |c| c.timeout_ms);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2 * timeout + 5_000);
    loop {
        let mut running = Vec::new();
        for host in &peers {
            if let Some(s) = status_of(server, host).await {
                if !s.stopped && !s.phase.is_empty() {
                    running.push(host.uuid.clone());
                }
            }
        }
        if running.is_empty() || tokio::time::Instant::now() >= deadline {
            if !running.is_empty() {
                tracing::warn!(
                    ?running,
                    "hosts still run HA after disable; they stop when they see the statefile"
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.ha.stop_driver();
    on_stopped(server);
    server.db.write(|t| {
        t.set(&POOL, &pool, "ha_enabled", Value::Bool(false))?;
        t.set(&POOL, &pool, "ha_statefiles", Value::Array(vec![]))?;
        t.set(&POOL, &pool, "ha_plan_exists_for", Value::Int(0))?;
        t.set(&POOL, &pool, "ha_overcommitted", Value::Bool(false))?;
        for h in &hosts {
            t.set(&HOST, h, "ha_statefiles", Value::Array(vec![]))?;
            t.set(&HOST, h, "ha_network_peers", Value::Array(vec![]))?;
        }
        Ok(())
    })?;
    for vdi in statefiles {
        if server.db.read().get(VDI.name, &vdi).is_some() {
            if let Err(e) = super::storage::destroy_vdi(server, &vdi).await {
                tracing::warn!(error = %e, "could not remove the HA statefile");
            }
        }
    }
    tracing::info!("HA disabled");
    Ok(Value::void())
}

/// `host.emergency_ha_disable(soft)`, local: disarm, stop the agent, and unless `soft` forget
/// the configuration so the next start does not rejoin.
pub fn emergency_disable(server: &Server, soft: bool) -> Result<Value, ApiError> {
    let armed_here = server.ha.is_running() || load_config(server).is_some();
    if !armed_here {
        return if soft {
            Ok(Value::void())
        } else {
            Err(ApiError::new::<String>(code::HA_NOT_ENABLED, []))
        };
    }
    server.ha.send(Command::Disarm);
    server.ha.stop_driver();
    server.ha.confirm_master();
    if !soft {
        save_config(server, None)?;
    }
    tracing::warn!(soft, "HA emergency-disabled on this host");
    Ok(Value::void())
}

/// Leave the liveset cleanly before this daemon stops (host shutdown or reboot, SIGTERM):
/// disarm, mark this host excluded in the statefile and stop the agent, keeping `ha.json` so
/// the next start rejoins. The others drop it at once, without waiting for a fence deadline
/// and without calling it a failure. Without statefile access the agent refuses (xapi's
/// `before_clean_shutdown_or_reboot`) and this host stays armed.
pub async fn leave(server: &Server) -> Result<(), ApiError> {
    if !server.ha.is_running() {
        return Ok(());
    }
    let timeout = load_config(server).map_or(30_000, |c| c.timeout_ms);
    server
        .ha
        .leaving
        .store(true, std::sync::atomic::Ordering::SeqCst);
    server.ha.send(Command::Shutdown);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout);
    while tokio::time::Instant::now() < deadline {
        if server.ha.status().stopped {
            server.ha.stop_driver();
            tracing::info!("left the HA liveset cleanly");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
        .ha
        .leaving
        .store(false, std::sync::atomic::Ordering::SeqCst);
    Err(ApiError::new::<String>(
        "HA_HOST_CANNOT_ACCESS_STATEFILE",
        [],
    ))
}

/// True when HA is armed on this host (xapi's local `ha_armed`).
pub fn armed_here(server: &Server) -> bool {
    server.ha.is_running() || load_config(server).is_some()
}

/// The master lock moved to this host: take over the pool if it is not already ours, starting
/// from the newest copy of the database any other member of the liveset holds.
pub(crate) async fn on_became_master(server: &Arc<Server>, ha_epoch: u64) {
    server.ha.confirm_master();
    if server.membership.role() == PoolRole::Master {
        return;
    }
    let me = this_uuid(server);
    let live = server.ha.status().liveset;
    let others: Vec<String> = load_config(server)
        .map(|c| c.hosts)
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.uuid != me && live.contains(&h.uuid))
        .map(|h| h.address)
        .collect();
    super::membership::adopt_freshest_copy(server, &others).await;
    let m = &server.membership;
    let epoch = (m.epoch() + 1).max(ha_epoch);
    match super::membership::become_master(server, &m.secret(), epoch as i64) {
        Ok(_) => tracing::warn!(epoch, "HA elected this host pool master"),
        Err(e) => tracing::error!(error = %e, "HA elected this host but it could not take over"),
    }
}
