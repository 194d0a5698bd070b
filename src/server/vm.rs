//! VM lifecycle on the hosts this daemon can run domains on: placement, memory accounting,
//! start, shutdown, reboot.
//!
//! Memory accounting is xapi's static one: a host's free memory is its total, less its own
//! overhead, less `memory_static_max` of every VM resident on it and not halted. It is computed
//! from the records (never trusted from a counter) and mirrored into `host_metrics.memory_free`
//! in the same write that changes a VM's residence.

use std::time::Duration;

use super::ha_plan::{Change, Protection};
use super::peer::PeerError;
use super::Server;
use crate::model::classes::{HOST, HOST_METRICS, VM, VM_METRICS};
use crate::model::{ApiError, Record, Value, NULL_REF};
use crate::pool::{Tables, Txn, View};
use crate::server::str_field;

/// How long a clean shutdown waits for a command domain before killing it.
const CLEAN_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn int_field(rec: &Record, f: &str) -> i64 {
    rec.get(f).and_then(Value::as_int).unwrap_or(0)
}

/// The memory a VM occupies on its host while not halted.
pub fn vm_memory(vm: &Record) -> i64 {
    int_field(vm, "memory_static_max")
}

/// Free memory of `host` by static accounting, in bytes.
pub fn host_free_memory(t: &impl View, host: &str) -> i64 {
    let Some(h) = t.record(HOST.name, host) else {
        return 0;
    };
    let total = t
        .record(HOST_METRICS.name, str_field(h, "metrics"))
        .map_or(0, |m| int_field(m, "memory_total"));
    let used: i64 = t
        .refs(VM.name)
        .iter()
        .filter_map(|r| t.record(VM.name, r))
        .filter(|vm| {
            str_field(vm, "resident_on") == host && str_field(vm, "power_state") != "Halted"
        })
        .map(vm_memory)
        .sum();
    total - int_field(h, "memory_overhead") - used
}

fn host_live(t: &Tables, host: &str) -> bool {
    t.get(HOST.name, host)
        .and_then(|h| t.get(HOST_METRICS.name, str_field(h, "metrics")))
        .is_some_and(|m| m.get("live") == Some(&Value::Bool(true)))
}

/// Why `vm` cannot start on `host`, or `None` if it can.
pub fn cannot_start_on(t: &Tables, vm: &Record, host: &str) -> Option<ApiError> {
    cannot_run_on(t, vm, host, Arrival::New)
}

/// Why a VM comes to a host: a new arrival needs the host enabled; a VM going back where it
/// ran before (an evacuation undone) does not, as the host it left is usually disabled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    New,
    Return,
}

fn cannot_run_on(t: &Tables, vm: &Record, host: &str, arrival: Arrival) -> Option<ApiError> {
    let Some(h) = t.get(HOST.name, host) else {
        return Some(ApiError::handle_invalid(HOST.name, host));
    };
    if arrival == Arrival::New && h.get("enabled") != Some(&Value::Bool(true)) {
        return Some(ApiError::new("HOST_DISABLED", [host]));
    }
    if !host_live(t, host) {
        return Some(ApiError::new("HOST_OFFLINE", [host]));
    }
    let (needed, available) = (vm_memory(vm), host_free_memory(t, host));
    if needed > available {
        return Some(ApiError::new(
            "HOST_NOT_ENOUGH_FREE_MEMORY",
            [needed.to_string(), available.to_string()],
        ));
    }
    None
}

/// Where `VM.start` puts a VM: its affinity host if it can go there, otherwise the host with the
/// most free memory that can take it (spreading load, as xapi's default placement does).
pub fn choose_host(t: &Tables, vm: &Record) -> Result<String, ApiError> {
    let affinity = str_field(vm, "affinity");
    if affinity != NULL_REF && cannot_start_on(t, vm, affinity).is_none() {
        return Ok(affinity.to_string());
    }
    t.all(HOST.name)
        .filter(|(h, _)| cannot_start_on(t, vm, h).is_none())
        .max_by_key(|(h, _)| host_free_memory(t, h))
        .map(|(h, _)| h.clone())
        .ok_or_else(|| ApiError::new::<String>("NO_HOSTS_AVAILABLE", []))
}

pub(crate) fn check_power_state(
    vm_ref: &str,
    vm: &Record,
    allowed: &[&str],
    expected: &str,
) -> Result<(), ApiError> {
    let state = str_field(vm, "power_state");
    if allowed.contains(&state) {
        Ok(())
    } else {
        Err(ApiError::new(
            "VM_BAD_POWER_STATE",
            [vm_ref, expected, &state.to_lowercase()],
        ))
    }
}

/// Record that `vm` now runs (or no longer runs) on `host`, keeping the host's resident list
/// and free memory in step.
pub(crate) fn set_residence(
    t: &mut Txn<'_>,
    vm: &str,
    host: &str,
    power_state: &str,
) -> Result<(), ApiError> {
    let old_host = str_field(
        t.get(VM.name, vm)
            .ok_or_else(|| ApiError::handle_invalid(VM.name, vm))?,
        "resident_on",
    )
    .to_string();
    let resident_on = if power_state == "Halted" {
        NULL_REF
    } else {
        host
    };
    t.update(&VM, vm, |r| {
        r.insert("power_state".into(), Value::str(power_state));
        r.insert("resident_on".into(), Value::str(resident_on));
    })?;
    // What the guest has: its static maximum and its boot VCPUs while it runs, nothing halted.
    let rec = t.get(VM.name, vm).cloned().expect("just updated");
    let metrics = str_field(&rec, "metrics").to_string();
    if t.get(VM_METRICS.name, &metrics).is_some() {
        let running = power_state != "Halted";
        let memory = if running { vm_memory(&rec) } else { 0 };
        let vcpus = if running {
            int_field(&rec, "VCPUs_at_startup")
        } else {
            0
        };
        t.update(&VM_METRICS, &metrics, |m| {
            m.insert("memory_actual".into(), Value::Int(memory));
            m.insert("VCPUs_number".into(), Value::Int(vcpus));
            m.insert(
                "last_updated".into(),
                Value::DateTime(super::now_datetime()),
            );
        })?;
    }
    for h in [old_host.as_str(), resident_on] {
        if h == NULL_REF || t.get(HOST.name, h).is_none() {
            continue;
        }
        t.remove_from_set(&HOST, h, "resident_VMs", vm)?;
        if h == resident_on {
            t.add_to_set(&HOST, h, "resident_VMs", vm)?;
        }
    }
    // Mirror the accounting into the metrics of every host touched, from the staged records.
    for h in [old_host.as_str(), resident_on] {
        let Some(metrics) = t
            .get(HOST.name, h)
            .map(|r| str_field(r, "metrics").to_string())
        else {
            continue;
        };
        let free = host_free_memory(t, h);
        if t.get(HOST_METRICS.name, &metrics).is_some() {
            t.update(&HOST_METRICS, &metrics, |m| {
                m.insert("memory_free".into(), Value::Int(free));
            })?;
        }
    }
    Ok(())
}

/// Why a peer call to `host` failed, as an API error about that host.
pub(super) fn peer_error(host: &str) -> impl FnOnce(PeerError) -> ApiError + '_ {
    move |e| match e {
        PeerError::Api(e) => e,
        PeerError::Unreachable(why) => {
            tracing::warn!(host, %why, "host unreachable");
            ApiError::new("HOST_OFFLINE", [host])
        }
    }
}

/// The address of `host`, from the pool's records.
pub(super) fn host_address(server: &Server, host: &str) -> Result<String, ApiError> {
    server
        .db
        .read()
        .field(HOST.name, host, "address")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::handle_invalid(HOST.name, host))
}

/// Start a VM's domain on this host, once a restart's lost domains are reported (until then a
/// start could be taken for one the crash lost).
pub(super) async fn start_local_domain(
    server: &Server,
    uuid: &str,
    command: Option<&str>,
) -> Result<(), ApiError> {
    if !server
        .domains
        .wait_until_open(super::lost_domains::START_HOLD_LIMIT)
        .await
    {
        return Err(ApiError::new::<String>("HOST_STILL_BOOTING", []));
    }
    server
        .domains
        .start(uuid, command)
        .map_err(ApiError::internal)
}

/// Start a VM's domain on `host`: here, or by asking that host's daemon.
async fn start_domain(
    server: &Server,
    host: &str,
    uuid: &str,
    command: Option<&str>,
) -> Result<(), ApiError> {
    if host == server.this_host {
        return start_local_domain(server, uuid, command).await;
    }
    let address = host_address(server, host)?;
    let m = &server.membership;
    let params = vec![
        Value::str(m.secret()),
        Value::str(uuid),
        Value::str(command.unwrap_or("")),
    ];
    m.peers
        .call_patiently(&address, "host.internal_start_domain", params)
        .await
        .map(|_| ())
        .map_err(peer_error(host))
}

/// Whether `vm`'s domain runs on `host`: here, or by asking that host's daemon.
async fn domain_running(server: &Server, host: &str, uuid: &str) -> Result<bool, ApiError> {
    if host == server.this_host {
        return Ok(server.domains.is_running(uuid));
    }
    let address = host_address(server, host)?;
    let m = &server.membership;
    let params = vec![Value::str(m.secret()), Value::str(uuid)];
    m.peers
        .call(&address, "host.internal_domain_running", params)
        .await
        .map(|v| v == Value::Bool(true))
        .map_err(peer_error(host))
}

/// Stop a VM's domain on `host`: here, or by asking that host's daemon.
async fn stop_domain(
    server: &Server,
    host: &str,
    uuid: &str,
    grace: Duration,
) -> Result<(), ApiError> {
    if host == server.this_host {
        server.domains.stop(uuid, grace).await;
        return Ok(());
    }
    let address = host_address(server, host)?;
    let m = &server.membership;
    let params = vec![
        Value::str(m.secret()),
        Value::str(uuid),
        Value::Int(grace.as_millis() as i64),
    ];
    // A clean stop waits out the domain's grace period, longer than any housekeeping call.
    m.peers
        .call_patiently(&address, "host.internal_stop_domain", params)
        .await
        .map(|_| ())
        .map_err(peer_error(host))
}

fn command_of(rec: &Record) -> Option<String> {
    rec.get("other_config")
        .and_then(Value::as_struct)
        .and_then(|m| m.get("command"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A host's CPU as a VM booted on it records it: vendor and flags.
fn boot_cpu_flags(t: &impl View, host: &str) -> Value {
    let info = t
        .record(HOST.name, host)
        .and_then(|h| h.get("cpu_info"))
        .and_then(Value::as_struct);
    let get = |k: &str| {
        info.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Value::string_map([("vendor", get("vendor")), ("features", get("flags"))])
}

/// Why a running VM cannot move to `host`'s CPU, or `None`: the same vendor, and every flag the
/// VM booted with.
fn cpu_refusal(t: &impl View, vm_ref: &str, vm: &Record, host: &str) -> Option<ApiError> {
    let booted = vm.get("last_boot_CPU_flags").and_then(Value::as_struct)?;
    let get = |m: &indexmap::IndexMap<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (vendor, features) = (get(booted, "vendor"), get(booted, "features"));
    let target = boot_cpu_flags(t, host);
    let target = target.as_struct()?;
    if vendor != get(target, "vendor") {
        let reason = format!(
            "the VM booted on a {vendor} CPU; the host's is {}",
            get(target, "vendor")
        );
        return Some(ApiError::new(
            "VM_INCOMPATIBLE_WITH_THIS_HOST",
            [vm_ref, host, reason.as_str()],
        ));
    }
    let have: std::collections::HashSet<&str> = target
        .get("features")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let missing: Vec<&str> = features
        .split_whitespace()
        .filter(|f| !have.contains(f))
        .collect();
    (!missing.is_empty()).then(|| {
        let reason = format!(
            "the host lacks CPU features the VM uses: {}",
            missing.join(" ")
        );
        ApiError::new(
            "VM_INCOMPATIBLE_WITH_THIS_HOST",
            [vm_ref, host, reason.as_str()],
        )
    })
}

/// `VM.start` / `VM.start_on`. A checked start that would break the failover plan is refused
/// before any domain starts, and judged again where it commits.
pub async fn start(
    server: &Server,
    vm: &str,
    on: Option<&str>,
    paused: bool,
    protection: Protection,
) -> Result<Value, ApiError> {
    let (host, command, uuid) = {
        let t = server.db.read();
        let rec = t
            .get(VM.name, vm)
            .ok_or_else(|| ApiError::handle_invalid(VM.name, vm))?;
        if rec.get("is_a_template") == Some(&Value::Bool(true)) {
            return Err(ApiError::new("VM_IS_TEMPLATE", [vm]));
        }
        check_power_state(vm, rec, &["Halted"], "halted")?;
        let host = match on {
            Some(h) => {
                if let Some(e) = cannot_start_on(&t, rec, h) {
                    return Err(e);
                }
                h.to_string()
            }
            None => choose_host(&t, rec)?,
        };
        protection.check(&*t, &Change::arrival(vm, &host))?;
        (host, command_of(rec), str_field(rec, "uuid").to_string())
    };
    start_domain(server, &host, &uuid, command.as_deref()).await?;
    let state = if paused { "Paused" } else { "Running" };
    let committed = server.db.write(|t| {
        // Re-check under the writer lock: another start may have taken the memory meanwhile.
        let rec = t
            .get(VM.name, vm)
            .cloned()
            .ok_or_else(|| ApiError::handle_invalid(VM.name, vm))?;
        check_power_state(vm, &rec, &["Halted"], "halted")?;
        if let Some(e) = cannot_start_on(t.base(), &rec, &host) {
            return Err(e);
        }
        protection.check(&*t, &Change::arrival(vm, &host))?;
        let flags = boot_cpu_flags(t, &host);
        t.set(&VM, vm, "last_boot_CPU_flags", flags)?;
        // A VM with a restart priority is one HA keeps running from now on.
        let kept = !str_field(&rec, "ha_restart_priority").is_empty();
        t.set(&VM, vm, "ha_always_run", Value::Bool(kept))?;
        set_residence(t, vm, &host, state)
    });
    if let Err(e) = committed {
        let _ = stop_domain(server, &host, &uuid, Duration::ZERO).await;
        return Err(e);
    }
    tracing::info!(vm = %uuid, host = %host, "VM started");
    Ok(Value::void())
}

/// The UUID, host and domain command of a VM that must be in one of `allowed` power states.
fn resident_vm(
    server: &Server,
    vm: &str,
    allowed: &[&str],
    expected: &str,
) -> Result<(String, String, Option<String>), ApiError> {
    let t = server.db.read();
    let rec = t
        .get(VM.name, vm)
        .ok_or_else(|| ApiError::handle_invalid(VM.name, vm))?;
    check_power_state(vm, rec, allowed, expected)?;
    Ok((
        str_field(rec, "uuid").to_string(),
        str_field(rec, "resident_on").to_string(),
        command_of(rec),
    ))
}

fn stop_grace(hard: bool) -> Duration {
    if hard {
        Duration::ZERO
    } else {
        CLEAN_SHUTDOWN_GRACE
    }
}

/// `VM.clean_shutdown` / `VM.hard_shutdown`.
pub async fn shutdown(server: &Server, vm: &str, hard: bool) -> Result<Value, ApiError> {
    let (uuid, host, _) = resident_vm(server, vm, &["Running", "Paused"], "running")?;
    stop_domain(server, &host, &uuid, stop_grace(hard)).await?;
    server.db.write(|t| {
        // Shut down through the API: HA must not bring it back (xapi clears ha_always_run).
        t.set(&VM, vm, "ha_always_run", Value::Bool(false))?;
        set_residence(t, vm, NULL_REF, "Halted")
    })?;
    tracing::info!(vm = %uuid, hard, "VM shut down");
    Ok(Value::void())
}

/// `VM.clean_reboot` / `VM.hard_reboot`: the domain restarts in place.
pub async fn reboot(server: &Server, vm: &str, hard: bool) -> Result<Value, ApiError> {
    let (uuid, host, command) = resident_vm(server, vm, &["Running"], "running")?;
    stop_domain(server, &host, &uuid, stop_grace(hard)).await?;
    start_domain(server, &host, &uuid, command.as_deref()).await?;
    Ok(Value::void())
}

/// `VM.pool_migrate`: move a running VM to another host. The new domain starts before the old
/// one stops, so the move is live; a refusal (including overcommit protection's) leaves the VM
/// where it was.
pub async fn migrate(
    server: &Server,
    vm: &str,
    target: &str,
    protection: Protection,
) -> Result<Value, ApiError> {
    move_vm(server, vm, target, protection, Arrival::New).await
}

async fn move_vm(
    server: &Server,
    vm: &str,
    target: &str,
    protection: Protection,
    arrival: Arrival,
) -> Result<Value, ApiError> {
    let (source, uuid, command) = {
        let t = server.db.read();
        let rec = t
            .get(VM.name, vm)
            .ok_or_else(|| ApiError::handle_invalid(VM.name, vm))?;
        check_power_state(vm, rec, &["Running"], "running")?;
        let source = str_field(rec, "resident_on").to_string();
        if source == target {
            return Err(ApiError::new(
                "OPERATION_NOT_ALLOWED",
                ["The VM is already resident on the destination host."],
            ));
        }
        if let Some(e) =
            cannot_run_on(&t, rec, target, arrival).or_else(|| cpu_refusal(&*t, vm, rec, target))
        {
            return Err(e);
        }
        protection.check(&*t, &Change::arrival(vm, target))?;
        (source, str_field(rec, "uuid").to_string(), command_of(rec))
    };
    // Only a domain that runs can move: a record left by a crash (or a command that exited)
    // must not become a "migrated" VM that nothing runs. The VM is in fact halted.
    if !domain_running(server, &source, &uuid).await? {
        return Err(ApiError::new(
            "VM_BAD_POWER_STATE",
            [vm, "running", "halted"],
        ));
    }
    start_domain(server, target, &uuid, command.as_deref()).await?;
    let committed = server.db.write(|t| {
        let rec = t
            .get(VM.name, vm)
            .cloned()
            .ok_or_else(|| ApiError::handle_invalid(VM.name, vm))?;
        check_power_state(vm, &rec, &["Running"], "running")?;
        if let Some(e) = cannot_run_on(t.base(), &rec, target, arrival) {
            return Err(e);
        }
        protection.check(&*t, &Change::arrival(vm, target))?;
        set_residence(t, vm, target, "Running")
    });
    if let Err(e) = committed {
        let _ = stop_domain(server, target, &uuid, Duration::ZERO).await;
        return Err(e);
    }
    if let Err(e) = stop_domain(server, &source, &uuid, Duration::ZERO).await {
        // The database already says the VM runs on the target; the source host did not answer.
        tracing::error!(vm = %uuid, error = %e, "could not stop the old domain after a migration");
    }
    tracing::info!(vm = %uuid, from = %source, to = %target, "VM migrated");
    Ok(Value::void())
}

/// `host.evacuate`: move every VM off `host`. The whole plan is made first (biggest VM first,
/// each to the host with most room that takes it); if any VM cannot move (nowhere to go, or
/// not running: like xapi, which checks `pool_migrate` on every resident VM before moving any,
/// a paused VM is refused with `VM_BAD_POWER_STATE`) nothing moves. Overcommit protection
/// judges the evacuation as a whole, before anything moves: the VMs where this plan puts them,
/// with `host` out of service (xapi checks the host disabled, since its evacuate disables the
/// host; an evacuated host is one about to go down). A move that still fails midway (a target
/// that died since the plan) sends the VMs already moved back, so the evacuation stays all or
/// nothing as far as the hosts allow.
pub async fn evacuate(server: &Server, host: &str) -> Result<Value, ApiError> {
    let plan: Vec<(String, String)> = {
        let t = server.db.read();
        if t.get(HOST.name, host).is_none() {
            return Err(ApiError::handle_invalid(HOST.name, host));
        }
        let mut free: Vec<(String, i64)> = t
            .all(HOST.name)
            .filter(|(h, _)| *h != host)
            .filter(|(h, rec)| rec.get("enabled") == Some(&Value::Bool(true)) && host_live(&t, h))
            .map(|(h, _)| (h.clone(), host_free_memory(&*t, h)))
            .collect();
        let mut vms: Vec<(String, Record)> = t
            .all(VM.name)
            .filter(|(_, v)| {
                str_field(v, "resident_on") == host && str_field(v, "power_state") != "Halted"
            })
            .map(|(r, v)| (r.clone(), v.clone()))
            .collect();
        for (r, v) in &vms {
            check_power_state(r, v, &["Running"], "running")?;
        }
        vms.sort_by_key(|(r, v)| (std::cmp::Reverse(vm_memory(v)), r.clone()));
        let mut plan = Vec::new();
        let mut errors = Vec::new();
        for (r, v) in &vms {
            let need = vm_memory(v);
            free.sort_by_key(|(h, f)| (std::cmp::Reverse(*f), h.clone()));
            match free
                .iter_mut()
                .find(|(h, f)| *f >= need && cpu_refusal(&*t, r, v, h).is_none())
            {
                Some((h, f)) => {
                    *f -= need;
                    plan.push((r.clone(), h.clone()));
                }
                None => errors.push(format!(
                    "{}: no other host can take {need} bytes",
                    str_field(v, "uuid")
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::new("CANNOT_EVACUATE_HOST", [errors.join("; ")]));
        }
        let evacuation = Change {
            arriving: plan.clone(),
            hosts_to_disable: vec![host.to_string()],
            ..Change::default()
        };
        Protection::Checked.check(&*t, &evacuation)?;
        plan
    };
    // The evacuation was judged as a whole. One move at a time, with the host still counted
    // as available, could look worse than the whole and must not stop it halfway.
    let mut moved: Vec<&str> = Vec::new();
    for (vm, target) in &plan {
        if let Err(e) = migrate(server, vm, target, Protection::Exempt).await {
            undo_evacuation(server, host, &moved).await;
            return Err(e);
        }
        moved.push(vm);
    }
    Ok(Value::void())
}

/// Best effort: send the VMs an evacuation already moved back to `host`, newest move first.
/// A VM that cannot go back stays where it is, running, and is logged.
async fn undo_evacuation(server: &Server, host: &str, moved: &[&str]) {
    for vm in moved.iter().rev() {
        if let Err(e) = move_vm(server, vm, host, Protection::Exempt, Arrival::Return).await {
            tracing::error!(vm, host, error = %e, "could not undo an evacuation move");
        } else {
            tracing::warn!(vm, host, "evacuation failed midway: moved back");
        }
    }
}

/// At a master's start-up no domain is running here, whatever the database says: VMs recorded
/// as running on this host died with the previous daemon. Mark them halted and return how many
/// there were. (A member's are marked by its master: [`super::lost_domains`].)
pub fn reset_after_restart(server: &Server) -> Result<usize, ApiError> {
    halt_lost_vms(server, &server.this_host)
}

/// `host`'s daemon restarted and runs no domain: every VM recorded as running or paused there
/// becomes Halted, resident nowhere, its memory free again (xapi's resync after a toolstack
/// restart). `ha_always_run` is left alone: whether HA brings a VM back is not changed by how
/// its death was noticed. One write; returns how many VMs it halted.
pub fn halt_lost_vms(server: &Server, host: &str) -> Result<usize, ApiError> {
    server.db.write(|t| {
        let stale: Vec<String> = t
            .base()
            .all(VM.name)
            .filter(|(_, v)| {
                str_field(v, "resident_on") == host
                    && matches!(str_field(v, "power_state"), "Running" | "Paused")
            })
            .map(|(r, _)| r.clone())
            .collect();
        for vm in &stale {
            set_residence(t, vm, NULL_REF, "Halted")?;
        }
        Ok(stale.len())
    })
}
