//! Host maintenance switches: `host.disable` / `host.enable`, and what of them survives a
//! restart.
//!
//! As in xapi, a disabled host enables itself again when its toolstack restarts, unless it was
//! disabled with `auto_enable=false`: that choice is kept on the host itself (its state
//! directory, where xapi uses its local database) until `host.enable`. The master enables
//! itself as it starts; a member asks its master to, once the master answers.

use std::sync::Arc;
use std::time::Duration;

use super::generic::set_field;
use super::peer::PeerError;
use super::Server;
use crate::host::inventory;
use crate::model::classes::HOST;
use crate::model::errors::code;
use crate::model::{ApiError, Value};

/// How long a restarted member keeps asking its master to enable it.
const ENABLE_ATTEMPTS: u32 = 120;

fn is_enabled(server: &Server, host: &str) -> Result<bool, ApiError> {
    let t = server.db.read();
    let rec = t
        .get(HOST.name, host)
        .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))?;
    Ok(rec.get("enabled") == Some(&Value::Bool(true)))
}

fn set_enabled(server: &Server, host: &str, enabled: bool) -> Result<(), ApiError> {
    // set_field refuses a disable that would break the failover plan, in this write.
    server.db.write(|t| {
        set_field(
            t,
            &HOST,
            host,
            HOST.field("enabled").expect("declared"),
            Value::Bool(enabled),
        )
    })
}

/// Store `host`'s auto-enable switch where it lives: here, or on that member.
async fn store_auto_enable(server: &Server, host: &str, on: bool) -> Result<(), ApiError> {
    if host == server.this_host {
        return write_auto_enable_here(server, on);
    }
    let address = super::vm::host_address(server, host)?;
    let m = &server.membership;
    m.peers
        .call(
            &address,
            "host.internal_set_auto_enable",
            vec![Value::str(m.secret()), Value::Bool(on)],
        )
        .await
        .map(|_| ())
        .map_err(super::vm::peer_error(host))
}

/// Store this host's auto-enable switch (nowhere without a state directory).
fn write_auto_enable_here(server: &Server, on: bool) -> Result<(), ApiError> {
    match &server.config.state_dir {
        Some(dir) => inventory::write_auto_enable(dir, on).map_err(ApiError::internal),
        None => Ok(()),
    }
}

/// `host.disable`. With `auto_enable=false` the host stays disabled across restarts; if that
/// cannot be recorded on the host, the disable is undone and refused.
pub async fn disable(server: &Server, host: &str, auto_enable: bool) -> Result<(), ApiError> {
    let was_enabled = is_enabled(server, host)?;
    set_enabled(server, host, false)?;
    // xapi records the switch only when this call disabled the host.
    if was_enabled && !auto_enable {
        if let Err(e) = store_auto_enable(server, host, false).await {
            server
                .db
                .write(|t| t.set(&HOST, host, "enabled", Value::Bool(true)))?;
            return Err(e);
        }
    }
    Ok(())
}

/// `host.enable`: also turns the host's auto-enable switch back on (best effort: a member
/// that cannot be told keeps its switch, which matters only at its next restart).
pub async fn enable(server: &Server, host: &str) -> Result<(), ApiError> {
    let was_enabled = is_enabled(server, host)?;
    set_enabled(server, host, true)?;
    if !was_enabled {
        if let Err(e) = store_auto_enable(server, host, true).await {
            tracing::warn!(host, error = %e, "could not turn the host's auto-enable back on");
        }
    }
    Ok(())
}

/// `host.internal_set_auto_enable`, on the host the switch belongs to.
pub fn internal_set_auto_enable(server: &Server, secret: &str, on: bool) -> Result<(), ApiError> {
    server.membership.check_secret(secret)?;
    write_auto_enable_here(server, on)
}

/// Whether this host's switch says a restart enables it.
fn auto_enable_here(server: &Server) -> bool {
    server.config.state_dir.as_deref().is_none_or(|dir| {
        inventory::read_auto_enable(dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the auto-enable switch; assuming on");
            true
        })
    })
}

/// Enable `host` after its restart if it is disabled. Enabling only adds capacity, so no
/// failover plan can object.
fn enable_restarted(server: &Server, host: &str) -> Result<bool, ApiError> {
    if is_enabled(server, host)? {
        return Ok(false);
    }
    server
        .db
        .write(|t| t.set(&HOST, host, "enabled", Value::Bool(true)))?;
    tracing::info!(host, "host enabled again after its restart (auto-enable)");
    Ok(true)
}

/// At a master's start-up: enable this host again unless it was disabled for good.
pub fn enable_master_after_restart(server: &Server) -> Result<(), ApiError> {
    if auto_enable_here(server) {
        enable_restarted(server, &server.this_host)?;
    } else {
        tracing::info!("auto-enable is off: the host stays as the pool records it");
    }
    Ok(())
}

/// `host.internal_enable_after_restart`, on the master: a member that restarted with its
/// switch on asks to be enabled.
pub fn internal_enable_after_restart(
    server: &Server,
    secret: &str,
    host: &str,
) -> Result<bool, ApiError> {
    server.membership.check_secret(secret)?;
    enable_restarted(server, host)
}

/// At a member's start-up: if its switch is on, ask the master (once it answers) to enable it.
pub fn spawn_member_enable_after_restart(server: Arc<Server>, master: String) {
    if !auto_enable_here(&server) {
        tracing::info!("auto-enable is off: the host stays as the pool records it");
        return;
    }
    tokio::spawn(async move {
        let m = &server.membership;
        let mut master = master;
        for _ in 0..ENABLE_ATTEMPTS {
            let params = vec![Value::str(m.secret()), Value::str(&server.this_host)];
            match m
                .peers
                .call(&master, "host.internal_enable_after_restart", params)
                .await
            {
                Ok(_) => return,
                // It handed the master role over meanwhile: ask the master it names.
                Err(PeerError::Api(e)) if e.code == code::HOST_IS_SLAVE && !e.params.is_empty() => {
                    master = e.params[0].clone();
                }
                Err(PeerError::Api(e)) => {
                    tracing::warn!(error = %e, "the master would not enable this host");
                    return;
                }
                Err(PeerError::Unreachable(_)) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        tracing::warn!("the master never answered; this host stays as the pool records it");
    });
}
