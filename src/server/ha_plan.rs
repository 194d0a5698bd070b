//! The pool's failover-planning questions, answered by [`crate::planner`] from a snapshot of
//! the database.
//!
//! The snapshot follows xapi's accounting: a host's free memory is what static accounting
//! leaves (see [`super::vm::host_free_memory`]); a VM needs its `memory_static_max` plus its
//! overhead. For the pool as it is, only VMs that are running count as protected: a protected
//! VM the operator shut down is not restarted by HA (xapi clears `ha_always_run` on a clean
//! shutdown). The hypothetical question plans for exactly the VMs it names, running or not.

use std::collections::HashMap;

use super::vm::{host_free_memory, vm_memory};
use super::Server;
use crate::model::classes::{HOST, HOST_METRICS, VM};
use crate::model::{ApiError, Value};
use crate::planner::{self, PlanHost, PlanVm, PoolSnapshot, RestartPriority};
use crate::pool::Tables;

fn str_field<'r>(rec: &'r crate::model::Record, f: &str) -> &'r str {
    rec.get(f).and_then(Value::as_str).unwrap_or_default()
}

/// The pool as the planner sees it. Host and VM ids are refs.
pub fn snapshot(t: &Tables) -> PoolSnapshot {
    let hosts = t
        .all(HOST.name)
        .map(|(r, h)| PlanHost {
            id: r.clone(),
            free_memory: host_free_memory(t, r),
            live: t.field(HOST_METRICS.name, str_field(h, "metrics"), "live")
                == Some(&Value::Bool(true)),
            enabled: h.get("enabled") == Some(&Value::Bool(true)),
        })
        .collect();
    let vms = t
        .all(VM.name)
        .filter(|(_, v)| v.get("is_a_template") != Some(&Value::Bool(true)))
        .map(|(r, v)| {
            let running = str_field(v, "power_state") != "Halted";
            let priority = RestartPriority::parse(str_field(v, "ha_restart_priority"))
                .unwrap_or(RestartPriority::None);
            PlanVm {
                id: r.clone(),
                memory: (vm_memory(v)
                    + v.get("memory_overhead")
                        .and_then(Value::as_int)
                        .unwrap_or(0))
                .max(0) as u64,
                restart_priority: if running {
                    priority
                } else {
                    RestartPriority::None
                },
                order: v.get("order").and_then(Value::as_int).unwrap_or(0),
                resident_on: running.then(|| str_field(v, "resident_on").to_string()),
                // Every VM is agile until storage that only some hosts reach exists.
                allowed_hosts: None,
            }
        })
        .collect();
    PoolSnapshot::new(hosts, vms)
}

/// `pool.ha_compute_max_host_failures_to_tolerate`.
pub fn max_failures(server: &Server) -> Result<Value, ApiError> {
    let outcome = planner::max_host_failures_to_tolerate(&snapshot(&server.db.read()));
    Ok(Value::Int(outcome.max_failures.unwrap_or(0) as i64))
}

/// `pool.ha_compute_hypothetical_max_host_failures_to_tolerate`.
pub fn hypothetical_max_failures(
    server: &Server,
    configuration: &Value,
) -> Result<Value, ApiError> {
    let t = server.db.read();
    let mut wanted: HashMap<String, RestartPriority> = HashMap::new();
    for (vm, priority) in configuration.as_struct().into_iter().flatten() {
        let p = priority.as_str().unwrap_or_default();
        let p = RestartPriority::parse(p)
            .ok_or_else(|| ApiError::invalid_value("ha_restart_priority", p))?;
        if t.get(VM.name, vm).is_none() {
            return Err(ApiError::handle_invalid(VM.name, vm));
        }
        wanted.insert(vm.clone(), p);
    }
    let mut pool = snapshot(&t);
    // Plan as if these VMs were protected now: halted ones must first find a home.
    for vm in &mut pool.vms {
        vm.restart_priority = wanted.get(&vm.id).copied().unwrap_or(RestartPriority::None);
    }
    let outcome = planner::max_host_failures_to_tolerate(&pool);
    Ok(Value::Int(outcome.max_failures.unwrap_or(0) as i64))
}

/// `pool.ha_failover_plan_exists`.
pub fn plan_exists(server: &Server, n: i64) -> Result<Value, ApiError> {
    if n < 0 {
        return Err(ApiError::invalid_value("n", &n.to_string()));
    }
    Ok(Value::Bool(
        planner::plan_exists_for(&snapshot(&server.db.read()), n as usize).is_ok(),
    ))
}

/// `pool.ha_compute_vm_failover_plan`: where each protected VM of the failed hosts would go.
/// Placed VMs map to `{host: <ref>}`, VMs with nowhere to go to `{error_code: HA_NO_PLAN}`.
pub fn vm_failover_plan(server: &Server, failed_hosts: &Value) -> Result<Value, ApiError> {
    let t = server.db.read();
    let failed: Vec<String> = failed_hosts
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect();
    for h in &failed {
        if t.get(HOST.name, h).is_none() {
            return Err(ApiError::handle_invalid(HOST.name, h));
        }
    }
    let plan = planner::restart_plan(&snapshot(&t), &failed);
    let mut out = indexmap::IndexMap::new();
    for p in plan.placements {
        out.insert(p.vm, Value::string_map([("host", p.host)]));
    }
    for vm in plan.unplaced {
        out.insert(vm, Value::string_map([("error_code", "HA_NO_PLAN")]));
    }
    Ok(Value::Struct(out))
}
