//! The XenAPI server: HTTP routes ([`http`]), sessions and authentication ([`auth`]), and the
//! dispatch of API calls onto the pool database ([`dispatch`], and the private `generic` and `explicit`).
//!
//! The server never formats text for people; it answers with values and API errors. It does
//! not own sockets either: the daemon binds listeners and hands each connection's transport
//! ([`Transport`]) to the router, because the local Unix socket trusts its caller as root.

pub mod alerts;
pub mod auth;
pub mod dispatch;
mod explicit;
mod generic;
pub mod ha;
pub mod ha_plan;
pub mod hostfacts;
pub mod http;
pub mod lost_domains;
pub mod maintenance;
pub mod membership;
pub mod peer;
pub mod storage;
pub mod tasks;
pub mod vm;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::host::domain::Domains;
use crate::pool::Database;

/// How a request reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP (HTTP or HTTPS): callers authenticate with a password.
    Tcp,
    /// The local Unix socket: the caller is trusted as root, as with xapi's local socket.
    Unix,
}

/// Tunables of the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How long a failed login waits before answering (xapi: 5 s), so guessing is slow.
    pub auth_failure_delay: Duration,
    /// Where the inventory and pool secret live (`None` in tests without a state directory).
    pub state_dir: Option<PathBuf>,
    /// What this host knows about itself, for the master to record.
    pub facts: Option<crate::host::HostFacts>,
    /// The UDP port of HA heartbeats this host proposes when it enables HA.
    pub ha_port: u16,
    /// The watchdog device HA kicks; `None`: the process watchdog (labs).
    pub ha_watchdog: Option<PathBuf>,
    /// How HA fences this host: reset the machine (`true`), or end the daemon (labs).
    pub ha_fence_reboot: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            auth_failure_delay: Duration::from_secs(5),
            state_dir: None,
            facts: None,
            ha_port: ha::DEFAULT_PORT,
            ha_watchdog: None,
            ha_fence_reboot: false,
        }
    }
}

/// Everything a request handler needs.
pub struct Server {
    /// The pool database.
    pub db: Database,
    /// The ref of the host this daemon runs on.
    pub this_host: String,
    /// Tunables.
    pub config: ServerConfig,
    /// Milliseconds since the Unix epoch until which HA restarts are blocked
    /// (`pool.ha_prevent_restarts_for`).
    pub restarts_blocked_until_ms: Mutex<u64>,
    /// The domains running on this host.
    pub domains: Domains,
    /// This host's place in the pool, and replication.
    pub membership: membership::Membership,
    /// This host's HA agent and what it last reported.
    pub ha: ha::Runtime,
    /// Who started each task of an `Async.` call.
    pub tasks: tasks::Owners,
}

impl Server {
    /// A server over `db` for the host `this_host`.
    pub fn new(
        db: Database,
        this_host: String,
        config: ServerConfig,
        membership: membership::Membership,
    ) -> Server {
        // Command domains' process groups are recorded where a restart finds them.
        let domains = Domains::new(
            config
                .state_dir
                .as_deref()
                .map(crate::host::domain::records_dir),
        );
        Server {
            db,
            this_host,
            config,
            restarts_blocked_until_ms: Mutex::new(0),
            domains,
            membership,
            ha: ha::Runtime::default(),
            tasks: tasks::Owners::default(),
        }
    }
}

/// A text field of a record, or "" when it is absent or not text.
pub(crate) fn str_field<'r>(rec: &'r crate::model::Record, f: &str) -> &'r str {
    rec.get(f)
        .and_then(crate::model::Value::as_str)
        .unwrap_or_default()
}

/// Whether HA is enabled on the pool.
pub(crate) fn ha_enabled(t: &crate::pool::Tables) -> bool {
    t.all(crate::model::classes::POOL.name)
        .any(|(_, p)| p.get("ha_enabled") == Some(&crate::model::Value::Bool(true)))
}

/// Milliseconds since the Unix epoch (the server's only clock reading).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The current time as a XenAPI datetime (`YYYYMMDDTHH:MM:SSZ`).
pub fn now_datetime() -> String {
    datetime_of_unix(now_ms() / 1000)
}

/// Format Unix seconds as a XenAPI datetime.
pub fn datetime_of_unix(secs: u64) -> String {
    crate::model::time::Civil::from_unix(secs as i64).xenapi()
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetimes() {
        assert_eq!(super::datetime_of_unix(0), "19700101T00:00:00Z");
        assert_eq!(super::datetime_of_unix(1_704_110_400), "20240101T12:00:00Z");
        assert_eq!(super::datetime_of_unix(951_782_400), "20000229T00:00:00Z");
    }
}
