//! VMs that died with a host's daemon: when a daemon starts, nothing runs on its host (the
//! in-daemon domains went with the old process, and the leftovers of command domains are
//! killed before anything else, see [`crate::host::domain`]), so every VM the pool records as
//! running or paused there is in fact halted. This module makes the records say so.
//!
//! The master does it for itself as it starts ([`super::vm::reset_after_restart`]). A member
//! cannot (only the master writes), so it reports to its master once the master answers
//! (`host.internal_report_lost_domains`, pool secret), as it asks to be re-enabled
//! ([`super::maintenance`]). The member reports rather than the master guessing from pings:
//! only the member knows it restarted, and it holds every domain start until the master has
//! answered, so "recorded here at report time" is exactly "lost", never a domain started since
//! (a start in the meantime is refused with `HOST_STILL_BOOTING` after a bounded wait).
//!
//! Under HA the master's failover may get there first: it resets a failed host's VMs and
//! restarts the protected ones elsewhere, so they are no longer resident on the member and the
//! report leaves them alone. If the report comes first, the VMs are halted with
//! `ha_always_run` untouched, and the failover pass the member's new incarnation triggers
//! restarts the protected ones as it would have.

use std::sync::Arc;
use std::time::Duration;

use super::membership::PoolRole;
use super::peer::PeerError;
use super::{vm, Server};
use crate::model::errors::code;
use crate::model::{ApiError, Value};

/// How long a domain start waits for a restarted member's report before it is refused.
pub const START_HOLD_LIMIT: Duration = Duration::from_secs(20);

/// Attempts between two warnings while the master does not answer.
const WARN_EVERY: u32 = 60;

/// At a member's start, before it serves anything: hold domain starts, and report the lost
/// domains to the master (retrying until one answers), then allow starts.
pub fn spawn_member_report(server: Arc<Server>) {
    server.domains.hold_starts();
    tokio::spawn(async move {
        let mut attempts = 0u32;
        loop {
            match report_once(&server).await {
                Ok(halted) => {
                    tracing::info!(
                        halted,
                        "lost domains reported to the master; domain starts allowed"
                    );
                    server.domains.release_starts();
                    return;
                }
                Err(why) => {
                    attempts += 1;
                    if attempts % WARN_EVERY == 1 {
                        tracing::warn!(%why, "could not report the lost domains to the master yet; domain starts are held");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// One report to whoever is master now (this host itself, if it has been made master since).
async fn report_once(server: &Server) -> Result<usize, String> {
    let master = match server.membership.role() {
        PoolRole::Master => {
            return vm::halt_lost_vms(server, &server.this_host).map_err(|e| e.to_string())
        }
        PoolRole::Member { master } => master,
    };
    let m = &server.membership;
    let params = vec![Value::str(m.secret()), Value::str(&server.this_host)];
    match m
        .peers
        .call(&master, "host.internal_report_lost_domains", params)
        .await
    {
        Ok(v) => Ok(v.as_int().unwrap_or(0).max(0) as usize),
        Err(PeerError::Api(e)) => Err(e.to_string()),
        Err(PeerError::Unreachable(why)) => Err(why.to_string()),
    }
}

/// `host.internal_report_lost_domains`, on the master: `host`'s daemon restarted, so none of
/// the VMs recorded on it runs. Returns how many were halted.
pub fn internal_report(server: &Server, secret: &str, host: &str) -> Result<usize, ApiError> {
    server.membership.check_secret(secret)?;
    if let PoolRole::Member { master } = server.membership.role() {
        return Err(ApiError::new(code::HOST_IS_SLAVE, [master]));
    }
    if server.ha.unconfirmed_master() {
        // Perhaps not the master any more: the member asks again, maybe someone else.
        return Err(ApiError::new::<String>("HOST_STILL_BOOTING", []));
    }
    let halted = vm::halt_lost_vms(server, host)?;
    if halted > 0 {
        tracing::warn!(
            host,
            halted,
            "VMs of a restarted member died with its daemon; marked halted"
        );
    }
    Ok(halted)
}
