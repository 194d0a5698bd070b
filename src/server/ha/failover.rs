//! The master's side of a host failure under HA, after xapi's `restart_auto_run_vms`: hosts
//! that left the liveset are declared dead (they have fenced or their watchdog fired by the
//! time the agent drops them), their VMs are reset to Halted, and protected VMs are restarted
//! by plan, in `order`. Also the pool's plan fields (`ha_plan_exists_for`, `ha_overcommitted`)
//! and their alerts, after xapi's `update_pool_status`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::model::classes::{HOST, HOST_METRICS, POOL, VM};
use crate::model::{ApiError, Value};
use crate::planner::{self, RestartPriority};
use crate::server::membership::PoolRole;
use crate::server::str_field;
use crate::server::{alerts, ha_enabled, ha_plan, now_ms, vm, Server};

/// Run after the liveset changed or this host became master: declare the missing hosts dead,
/// restart what must run, refresh the plan fields. Passes never overlap.
pub async fn on_liveset_change(server: &Arc<Server>) {
    let _one_pass = server.ha.failover.lock().await;
    // Only the holder of the HA master lock acts: a restarted old master that still believes
    // it is master must not declare anyone dead or start anything.
    let status = server.ha.status();
    if server.membership.role() != PoolRole::Master
        || status.master_epoch.is_none()
        || !ha_enabled(&server.db.read())
    {
        return;
    }
    let live: HashSet<String> = status.liveset.into_iter().collect();
    let excluded: HashSet<String> = status.excluded.into_iter().collect();
    if live.is_empty() {
        return;
    }
    // `pool.ha_prevent_restarts_for` holds restarts back (CA-23998).
    let blocked_until = *server
        .restarts_blocked_until_ms
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let now = now_ms();
    if blocked_until > now {
        tracing::warn!(
            wait_ms = blocked_until - now,
            "HA restarts are held back by pool.ha_prevent_restarts_for"
        );
        tokio::time::sleep(Duration::from_millis(blocked_until - now)).await;
    }
    match declare_dead(server, &live, &excluded) {
        Ok(0) => {}
        Ok(reset) => tracing::warn!(reset, "VMs of failed hosts reset to Halted"),
        Err(e) => tracing::error!(error = %e, "could not declare failed hosts dead"),
    }
    update_pool_status(server);
    restart(server).await;
    update_pool_status(server);
}

/// Mark every host outside `live` dead (`HA_HOST_FAILED` once), and reset the VMs it ran.
/// Returns how many VMs were reset.
fn declare_dead(
    server: &Server,
    live: &HashSet<String>,
    excluded: &HashSet<String>,
) -> Result<usize, ApiError> {
    server.db.write(|t| {
        let dead: Vec<(String, String, String, String)> = t
            .base()
            .all(HOST.name)
            .filter(|(_, h)| !live.contains(str_field(h, "uuid")))
            .map(|(r, h)| {
                (
                    r.clone(),
                    str_field(h, "metrics").to_string(),
                    str_field(h, "uuid").to_string(),
                    str_field(h, "name_label").to_string(),
                )
            })
            .collect();
        let mut reset = 0;
        for (host, metrics, uuid, name) in dead {
            let was_live =
                t.base().field(HOST_METRICS.name, &metrics, "live") == Some(&Value::Bool(true));
            // A host that shut down cleanly left; it did not fail (xapi skips the alert for
            // hosts shutting down).
            if was_live && !excluded.contains(&uuid) {
                alerts::raise(
                    t,
                    "HA_HOST_FAILED",
                    alerts::priority::WARNING,
                    "Host",
                    &uuid,
                    &format!("Server '{name}' has failed"),
                );
            }
            if was_live {
                t.set(&HOST_METRICS, &metrics, "live", Value::Bool(false))?;
            }
            let resident: Vec<(String, bool)> = t
                .base()
                .all(VM.name)
                .filter(|(_, v)| {
                    str_field(v, "resident_on") == host && str_field(v, "power_state") != "Halted"
                })
                .map(|(r, v)| (r.clone(), !str_field(v, "ha_restart_priority").is_empty()))
                .collect();
            for (vm, wanted) in resident {
                vm::set_residence(t, &vm, crate::model::NULL_REF, "Halted")?;
                // It died with its host: HA keeps it running if it is protected.
                t.set(&VM, &vm, "ha_always_run", Value::Bool(wanted))?;
                reset += 1;
            }
        }
        Ok(reset)
    })
}

/// Restart halted VMs HA keeps running: protected ones by plan and in `order`, then
/// best-effort ones wherever they fit.
async fn restart(server: &Arc<Server>) {
    let (plan, protected, best_effort) = {
        let t = server.db.read();
        let mut protected = HashSet::new();
        let mut best_effort = Vec::new();
        for (r, v) in t.all(VM.name) {
            if v.get("is_a_template") == Some(&Value::Bool(true))
                || str_field(v, "power_state") != "Halted"
                || v.get("ha_always_run") != Some(&Value::Bool(true))
            {
                continue;
            }
            match RestartPriority::parse(str_field(v, "ha_restart_priority")) {
                Some(RestartPriority::Restart) => {
                    protected.insert(r.clone());
                }
                Some(RestartPriority::BestEffort) => best_effort.push(r.clone()),
                _ => {}
            }
        }
        if protected.is_empty() && best_effort.is_empty() {
            return;
        }
        let mut snapshot = ha_plan::snapshot(&*t);
        for vm in &mut snapshot.vms {
            if protected.contains(&vm.id) {
                vm.restart_priority = RestartPriority::Restart;
            }
        }
        let none: &[&str] = &[];
        (
            planner::restart_plan(&snapshot, none),
            protected,
            best_effort,
        )
    };
    let mut left: Vec<String> = plan
        .unplaced
        .iter()
        .filter(|v| protected.contains(*v))
        .cloned()
        .collect();
    // HA's restarts are exempt from overcommit protection: a protected VM must come back even
    // if that overcommits the pool (xapi marks it overcommitted; update_pool_status does).
    let exempt = ha_plan::Protection::Exempt;
    for p in plan.placements.iter().filter(|p| protected.contains(&p.vm)) {
        match vm::start(server, &p.vm, Some(&p.host), false, exempt).await {
            Ok(_) => tracing::warn!(vm = %p.vm, host = %p.host, "HA restarted a protected VM"),
            Err(e) => {
                tracing::warn!(vm = %p.vm, host = %p.host, error = %e, "planned restart failed; trying anywhere");
                left.push(p.vm.clone());
            }
        }
    }
    for v in left {
        match vm::start(server, &v, None, false, exempt).await {
            Ok(_) => tracing::warn!(vm = %v, "HA restarted a protected VM off plan"),
            Err(e) => {
                tracing::error!(vm = %v, error = %e, "HA could not restart a protected VM");
                let first = server
                    .ha
                    .restart_failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(v.clone());
                if first {
                    let uuid = server
                        .db
                        .read()
                        .field(VM.name, &v, "uuid")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let _ = server.db.write(|t| {
                        alerts::raise(
                            t,
                            "HA_PROTECTED_VM_RESTART_FAILED",
                            alerts::priority::MAJOR,
                            "VM",
                            &uuid,
                            "",
                        );
                        Ok(())
                    });
                }
            }
        }
    }
    for v in best_effort {
        if let Err(e) = vm::start(server, &v, None, false, exempt).await {
            tracing::warn!(vm = %v, error = %e, "HA could not restart a best-effort VM");
        }
    }
}

/// xapi's `update_pool_status`: keep `ha_plan_exists_for` and `ha_overcommitted` true to the
/// pool, alerting when the plan shrinks (`HA_POOL_DROP_IN_PLAN_EXISTS_FOR`) and when the pool
/// becomes overcommitted (`HA_POOL_OVERCOMMITTED`). Only while HA is enabled, and only on the
/// master: members never write the pool database themselves. Run after anything that can move
/// the plan: VMs starting, stopping or moving, hosts joining, leaving, disabled or dead.
pub fn update_pool_status(server: &Server) {
    if server.membership.role() != PoolRole::Master {
        return;
    }
    let written = server.db.write(|t| {
        if !ha_enabled(t.base()) {
            return Ok(());
        }
        let Some((pool, rec)) = t
            .base()
            .all(POOL.name)
            .next()
            .map(|(r, p)| (r.clone(), p.clone()))
        else {
            return Ok(());
        };
        let int = |f: &str| rec.get(f).and_then(Value::as_int).unwrap_or(0);
        let to_tolerate = int("ha_host_failures_to_tolerate").max(0);
        let planned_for = int("ha_plan_exists_for");
        let overcommitted = rec.get("ha_overcommitted") == Some(&Value::Bool(true));
        let snapshot = ha_plan::snapshot(t.base());
        if matches!(
            planner::plan_exists_for(&snapshot, to_tolerate as usize),
            Ok(planner::Coverage::AllVms)
        ) {
            if overcommitted {
                t.set(&POOL, &pool, "ha_overcommitted", Value::Bool(false))?;
            }
            if planned_for != to_tolerate {
                t.set(&POOL, &pool, "ha_plan_exists_for", Value::Int(to_tolerate))?;
            }
            return Ok(());
        }
        let max = planner::max_host_failures_to_tolerate(&snapshot).xapi_value() as i64;
        let pool_uuid = str_field(&rec, "uuid").to_string();
        if planned_for != max {
            t.set(
                &POOL,
                &pool,
                "ha_plan_exists_for",
                Value::Int(to_tolerate.min(max)),
            )?;
            if max < planned_for {
                alerts::raise(
                    t,
                    "HA_POOL_DROP_IN_PLAN_EXISTS_FOR",
                    alerts::priority::WARNING,
                    "Pool",
                    &pool_uuid,
                    &max.to_string(),
                );
            }
        }
        if !overcommitted {
            t.set(&POOL, &pool, "ha_overcommitted", Value::Bool(true))?;
            alerts::raise(
                t,
                "HA_POOL_OVERCOMMITTED",
                alerts::priority::WARNING,
                "Pool",
                &pool_uuid,
                &format!(
                    "The failover tolerance for pool '{}' has dropped and the initially specified number of host failures to tolerate can no longer be guaranteed",
                    str_field(&rec, "name_label")
                ),
            );
        }
        Ok(())
    });
    if let Err(e) = written {
        tracing::error!(error = %e, "could not update the pool's HA plan fields");
    }
}
