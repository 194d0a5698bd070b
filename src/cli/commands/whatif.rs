//! What-if anywhere: the failover planner answered client-side, from a planning snapshot read
//! through the XenAPI (from `xapid` or a real XenServer/XCP-ng pool) or from a file written by
//! `xe pool-dump-database`.
//!
//! Only getters are called (`host.get_all_records`, `host_metrics.get_all_records`,
//! `VM.get_all_records`): neither command writes to the pool. The accounting is the daemon's
//! (`src/server/ha_plan.rs`), reproduced from the records so it works against real xapi too:
//!
//! * a host's free memory is `host_metrics.memory_total - host.memory_overhead - Σ
//!   (memory_static_max + memory_overhead)` of the VMs resident on it and not halted;
//! * a VM needs `memory_static_max + memory_overhead`;
//! * only running (not halted) VMs with priority `restart` are protected;
//! * templates and control domains are left out.
//!
//! The snapshot file is this toolstack's own JSON format ([`SnapshotFile`]), not xapi's XML
//! database dump.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{bool_param, bytes_of_string, Format};
use crate::cli::args::CommandLine;
use crate::cli::errors::CliError;
use crate::cli::printer::{Out, Printer, Rec};
use crate::cli::records::Ctx;
use crate::model::classes::{HOST, HOST_METRICS, VM};
use crate::model::{Record, Value};
use crate::planner::{self, Cause, NoPlan, PlanHost, PlanVm, PoolSnapshot, RestartPriority};

/// The `format` field of every snapshot file.
pub const FORMAT: &str = "xenha-planning-snapshot";
/// The version this `xe` writes and reads.
pub const VERSION: u32 = 1;

/// A planning snapshot file (`xe pool-dump-database`), JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// When it was taken, RFC 3339 UTC.
    pub taken_at: String,
    /// Every host of the pool.
    pub hosts: Vec<SnapHost>,
    /// Every VM that is neither a template nor a control domain.
    pub vms: Vec<SnapVm>,
}

/// One host in a snapshot file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapHost {
    /// `host.uuid`.
    pub uuid: String,
    /// `host.name_label`.
    #[serde(default)]
    pub name_label: String,
    /// `host_metrics.memory_total`, bytes.
    pub memory_total: i64,
    /// `host.memory_overhead`, bytes.
    #[serde(default)]
    pub memory_overhead: i64,
    /// `host.enabled`.
    pub enabled: bool,
    /// `host_metrics.live`.
    pub live: bool,
}

/// One VM in a snapshot file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapVm {
    /// `VM.uuid`.
    pub uuid: String,
    /// `VM.name_label`.
    #[serde(default)]
    pub name_label: String,
    /// `VM.power_state` (`Halted`, `Running`, `Paused`, `Suspended`).
    pub power_state: String,
    /// The uuid of the host the VM is resident on; empty when none.
    #[serde(default)]
    pub resident_on: String,
    /// `VM.memory_static_max`, bytes.
    pub memory_static_max: i64,
    /// `VM.memory_overhead`, bytes.
    #[serde(default)]
    pub memory_overhead: i64,
    /// `VM.ha_restart_priority`: `restart`, `best-effort` or empty.
    #[serde(default)]
    pub ha_restart_priority: String,
    /// `VM.order`.
    #[serde(default)]
    pub order: i64,
}

fn field<'r>(rec: &'r Record, f: &str) -> Option<&'r Value> {
    rec.get(f)
}

/// An integer field; XML-RPC from real xapi carries int64 as decimal strings.
fn int(rec: &Record, f: &str) -> i64 {
    match field(rec, f) {
        Some(Value::Int(i)) => *i,
        Some(Value::Str(s)) => s.trim().parse().unwrap_or(0),
        Some(Value::Float(x)) => *x as i64,
        _ => 0,
    }
}

fn boolean(rec: &Record, f: &str) -> bool {
    match field(rec, f) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Str(s)) => s == "true",
        _ => false,
    }
}

fn text(rec: &Record, f: &str) -> String {
    field(rec, f)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Fetch the snapshot through the XenAPI: three `get_all_records` calls, nothing else.
pub fn fetch(ctx: &mut Ctx) -> Result<SnapshotFile, CliError> {
    let hosts = ctx.all(&HOST)?;
    let metrics: HashMap<String, Record> = ctx
        .all(&HOST_METRICS)?
        .into_iter()
        .map(|o| (o.reference, o.rec))
        .collect();
    let vms = ctx.all(&VM)?;
    let host_uuid: HashMap<String, String> = hosts
        .iter()
        .map(|h| (h.reference.clone(), text(&h.rec, "uuid")))
        .collect();
    let snap_hosts = hosts
        .iter()
        .map(|h| {
            let m = metrics.get(&text(&h.rec, "metrics"));
            SnapHost {
                uuid: text(&h.rec, "uuid"),
                name_label: text(&h.rec, "name_label"),
                memory_total: m.map_or(0, |m| int(m, "memory_total")),
                memory_overhead: int(&h.rec, "memory_overhead"),
                enabled: boolean(&h.rec, "enabled"),
                live: m.is_some_and(|m| boolean(m, "live")),
            }
        })
        .collect();
    let snap_vms = vms
        .iter()
        .filter(|v| !boolean(&v.rec, "is_a_template") && !boolean(&v.rec, "is_control_domain"))
        .map(|v| SnapVm {
            uuid: text(&v.rec, "uuid"),
            name_label: text(&v.rec, "name_label"),
            power_state: text(&v.rec, "power_state"),
            resident_on: host_uuid
                .get(&text(&v.rec, "resident_on"))
                .cloned()
                .unwrap_or_default(),
            memory_static_max: int(&v.rec, "memory_static_max"),
            memory_overhead: int(&v.rec, "memory_overhead"),
            ha_restart_priority: text(&v.rec, "ha_restart_priority"),
            order: int(&v.rec, "order"),
        })
        .collect();
    Ok(SnapshotFile {
        format: FORMAT.into(),
        version: VERSION,
        taken_at: now_rfc3339(),
        hosts: snap_hosts,
        vms: snap_vms,
    })
}

/// Read and check a snapshot file.
pub fn read(path: &str) -> Result<SnapshotFile, CliError> {
    let data = std::fs::read_to_string(path)
        .map_err(|e| CliError::failure(format!("cannot read snapshot file {path}: {e}")))?;
    let s: SnapshotFile = serde_json::from_str(&data)
        .map_err(|e| CliError::failure(format!("{path} is not a planning snapshot (JSON): {e}")))?;
    if s.format != FORMAT || s.version != VERSION {
        return Err(CliError::failure(format!(
            "{path} is not a planning snapshot this xe reads: format {:?} version {} (expected {FORMAT:?} version {VERSION})",
            s.format, s.version
        )));
    }
    let mut seen = HashSet::new();
    for u in s
        .hosts
        .iter()
        .map(|h| &h.uuid)
        .chain(s.vms.iter().map(|v| &v.uuid))
    {
        if !seen.insert(u.as_str()) {
            return Err(CliError::failure(format!(
                "{path}: uuid {u} appears more than once"
            )));
        }
    }
    let hosts: HashSet<&str> = s.hosts.iter().map(|h| h.uuid.as_str()).collect();
    if let Some(v) = s
        .vms
        .iter()
        .find(|v| !v.resident_on.is_empty() && !hosts.contains(v.resident_on.as_str()))
    {
        return Err(CliError::failure(format!(
            "{path}: VM {} is resident on {}, which is not a host of the snapshot",
            v.uuid, v.resident_on
        )));
    }
    Ok(s)
}

fn is_running(vm: &SnapVm) -> bool {
    !vm.power_state.eq_ignore_ascii_case("halted")
}

/// xapi's priority strings; older releases used `1`..`3` for "restart".
fn priority_of(s: &str) -> RestartPriority {
    RestartPriority::parse(s).unwrap_or(if s.parse::<u32>().is_ok() {
        RestartPriority::Restart
    } else {
        RestartPriority::None
    })
}

/// The snapshot as the planner sees it, by the daemon's accounting. Ids are uuids.
pub fn to_plan(s: &SnapshotFile) -> PoolSnapshot {
    let hosts = s
        .hosts
        .iter()
        .map(|h| {
            let used: i64 = s
                .vms
                .iter()
                .filter(|v| is_running(v) && v.resident_on == h.uuid)
                .map(|v| v.memory_static_max + v.memory_overhead)
                .sum();
            PlanHost {
                id: h.uuid.clone(),
                free_memory: h.memory_total - h.memory_overhead - used,
                live: h.live,
                enabled: h.enabled,
            }
        })
        .collect();
    let vms = s
        .vms
        .iter()
        .map(|v| {
            let running = is_running(v);
            PlanVm {
                id: v.uuid.clone(),
                memory: (v.memory_static_max + v.memory_overhead).max(0) as u64,
                restart_priority: if running {
                    priority_of(&v.ha_restart_priority)
                } else {
                    RestartPriority::None
                },
                order: v.order,
                resident_on: (running && !v.resident_on.is_empty()).then(|| v.resident_on.clone()),
                allowed_hosts: None,
            }
        })
        .collect();
    PoolSnapshot::new(hosts, vms)
}

/// `pool-dump-database file-name=FILE [--force]`.
pub fn dump(cmd: &CommandLine, ctx: &mut Ctx) -> Result<(), CliError> {
    let path = cmd.get("file-name").unwrap_or("");
    let force = bool_param(cmd, "force")?;
    if Path::new(path).exists() && !force {
        return Err(CliError::failure(format!(
            "{path} exists; use --force to overwrite it"
        )));
    }
    let s = fetch(ctx)?;
    let mut json = serde_json::to_string_pretty(&s).expect("snapshot serialises");
    json.push('\n');
    std::fs::write(path, json)
        .map_err(|e| CliError::failure(format!("cannot write {path}: {e}")))?;
    Ok(())
}

/// Where the what-if snapshot comes from.
pub enum Source<'a, 's> {
    /// The live pool, through this session.
    Pool(&'a mut Ctx<'s>),
    /// A snapshot file.
    File(String),
}

/// Names for printing: uuid → name-label.
struct Names(HashMap<String, String>);

impl Names {
    fn show(&self, id: &str) -> String {
        match self.0.get(id) {
            Some(n) if !n.is_empty() => format!("{n} ({id})"),
            _ => id.to_string(),
        }
    }
}

/// The hypothetical pool a `pool-ha-what-if` command line describes.
struct Question {
    pool: PoolSnapshot,
    names: Names,
    failures: Option<usize>,
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn build(cmd: &CommandLine, s: &SnapshotFile) -> Result<Question, CliError> {
    let mut pool = to_plan(s);
    let mut names: HashMap<String, String> = s
        .hosts
        .iter()
        .map(|h| (h.uuid.clone(), h.name_label.clone()))
        .chain(s.vms.iter().map(|v| (v.uuid.clone(), v.name_label.clone())))
        .collect();
    let vm_index: HashMap<String, usize> = pool
        .vms
        .iter()
        .enumerate()
        .map(|(i, v)| (v.id.clone(), i))
        .collect();
    let find_vm = |u: &str| {
        vm_index
            .get(u)
            .copied()
            .ok_or_else(|| CliError::failure(format!("no VM with uuid {u} in the snapshot")))
    };
    let mut changes: Vec<(usize, RestartPriority)> = Vec::new();
    for item in cmd.get("protect").map(split_list).into_iter().flatten() {
        let (u, pr) = item.split_once(':').unwrap_or((item, "restart"));
        let i = find_vm(u)?;
        let pr = RestartPriority::parse(pr).ok_or_else(|| {
            CliError::failure(format!(
                "invalid restart priority {pr:?} for VM {u}: expected restart, best-effort or empty"
            ))
        })?;
        changes.push((i, pr));
    }
    for u in cmd.get("unprotect").map(split_list).into_iter().flatten() {
        changes.push((find_vm(u)?, RestartPriority::None));
    }
    for (i, pr) in changes {
        // A VM named here is planned for whether it runs or not: a halted one must first find
        // a home, as in pool.ha_compute_hypothetical_max_host_failures_to_tolerate.
        pool.vms[i].restart_priority = pr;
    }
    for u in cmd
        .get("remove-hosts")
        .map(split_list)
        .into_iter()
        .flatten()
    {
        let h =
            pool.hosts.iter_mut().find(|h| h.id == u).ok_or_else(|| {
                CliError::failure(format!("no host with uuid {u} in the snapshot"))
            })?;
        // Gone from the pool: its protected VMs must be restarted elsewhere first.
        h.live = false;
    }
    if let Some(spec) = cmd.get("add-hosts") {
        let bad = || {
            CliError::failure(format!(
                "add-hosts must be <count>x<memory>, e.g. 2x64GiB, not {spec:?}"
            ))
        };
        let (count, mem) = spec.split_once(['x', 'X']).ok_or_else(bad)?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        let mem = bytes_of_string(mem.trim()).ok_or_else(bad)?;
        if count > 1024 {
            return Err(CliError::failure("add-hosts: at most 1024 hosts"));
        }
        for i in 1..=count {
            let id = format!("new-host-{i}");
            names.insert(id.clone(), String::new());
            pool.hosts.push(PlanHost::new(id, mem));
        }
    }
    let failures = match cmd.get("failures") {
        None => None,
        Some(f) => Some(f.trim().parse::<usize>().map_err(|_| {
            CliError::failure(format!(
                "failures must be a non-negative integer, not {f:?}"
            ))
        })?),
    };
    Ok(Question {
        pool,
        names: Names(names),
        failures,
    })
}

fn reason(n: &Names, np: &NoPlan) -> String {
    match &np.cause {
        Cause::NotEnoughHosts {
            available,
            failures,
        } => format!(
            "{failures} host failure(s) cannot be tolerated with {available} available host(s)"
        ),
        Cause::Undecided => "no failover plan could be proven within the work budget".into(),
        Cause::VmDoesNotFit {
            vm,
            memory,
            largest_free,
        } => {
            let when = if np.failures.is_empty() {
                "with no host failure".to_string()
            } else {
                let hs: Vec<String> = np.failures.iter().map(|h| n.show(h)).collect();
                format!("after host(s) {} fail in this order", hs.join(", "))
            };
            let room = match largest_free {
                Some(f) => format!("the largest free memory on any host is {f} bytes"),
                None => "no host is left".into(),
            };
            format!(
                "{when}, protected VM {}, which needs {memory} bytes, cannot be restarted: {room}",
                n.show(vm)
            )
        }
    }
}

fn failing_hosts(n: &Names, np: &NoPlan) -> Vec<String> {
    np.failures.iter().map(|h| n.show(h)).collect()
}

/// `pool-ha-what-if`.
pub fn what_if(
    cmd: &CommandLine,
    source: Source,
    p: &mut Printer,
    format: Format,
) -> Result<(), CliError> {
    let snap = match source {
        Source::Pool(ctx) => fetch(ctx)?,
        Source::File(f) => read(&f)?,
    };
    let q = build(cmd, &snap)?;
    let protected = q.pool.vms.iter().filter(|v| v.is_protected()).count();
    let available = q.pool.hosts.iter().filter(|h| h.is_available()).count();
    let mut rec: Rec = Vec::new();
    let mut json = serde_json::Map::new();
    let mut put = |k: &str, v: String, j: serde_json::Value| {
        rec.push((k.to_string(), v));
        json.insert(k.to_string(), j);
    };
    match q.failures {
        Some(r) => {
            let answer = planner::plan_exists_for(&q.pool, r);
            put(
                "plan-exists",
                answer.is_ok().to_string(),
                answer.is_ok().into(),
            );
            put("failures", r.to_string(), r.into());
            put(
                "hosts",
                q.pool.hosts.len().to_string(),
                q.pool.hosts.len().into(),
            );
            put("available-hosts", available.to_string(), available.into());
            put("protected-vms", protected.to_string(), protected.into());
            if let Err(np) = answer {
                let hs = failing_hosts(&q.names, &np);
                put("failure-sequence", hs.join(", "), hs.into());
                let why = reason(&q.names, &np);
                put("reason", why.clone(), why.into());
            }
        }
        None => {
            let o = planner::max_host_failures_to_tolerate(&q.pool);
            let show = |v: Option<usize>| v.map_or("none".to_string(), |v| v.to_string());
            put(
                "max-host-failures-to-tolerate",
                show(o.max_failures),
                o.max_failures.into(),
            );
            put("exact", o.exact.to_string(), o.exact.into());
            put("upper-bound", show(o.upper_bound), o.upper_bound.into());
            put(
                "hosts",
                q.pool.hosts.len().to_string(),
                q.pool.hosts.len().into(),
            );
            put("available-hosts", available.to_string(), available.into());
            put("protected-vms", protected.to_string(), protected.into());
            let hs = failing_hosts(&q.names, &o.limit);
            put("breaking-sequence", hs.join(", "), hs.into());
            let why = reason(&q.names, &o.limit);
            put("reason", why.clone(), why.into());
        }
    }
    put(
        "snapshot-taken-at",
        snap.taken_at.clone(),
        snap.taken_at.clone().into(),
    );
    match format {
        Format::Json => {
            p.line(&serde_json::to_string_pretty(&serde_json::Value::Object(json)).expect("json"))
        }
        _ => p.print(Out::Table(vec![rec])),
    }
    Ok(())
}

/// Run `pool-ha-what-if snapshot=FILE` without a session. `None` when the command needs the
/// pool.
pub fn offline(
    cmd: &CommandLine,
    minimal: bool,
    format: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Option<i32> {
    let file = cmd.get("snapshot")?.to_string();
    let mut p = Printer::new(minimal, out, err);
    match what_if(cmd, Source::File(file), &mut p, format) {
        Ok(()) => {
            p.flush();
            Some(0)
        }
        Err(e) => {
            drop(p);
            e.write(err);
            Some(1)
        }
    }
}

/// Now, as RFC 3339 UTC (`2026-11-22T03:30:00Z`).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    crate::model::time::Civil::from_unix(secs).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_follows_the_daemon() {
        let s = SnapshotFile {
            format: FORMAT.into(),
            version: VERSION,
            taken_at: now_rfc3339(),
            hosts: vec![SnapHost {
                uuid: "h".into(),
                name_label: "h".into(),
                memory_total: 100,
                memory_overhead: 10,
                enabled: true,
                live: true,
            }],
            vms: vec![
                SnapVm {
                    uuid: "a".into(),
                    name_label: "a".into(),
                    power_state: "Running".into(),
                    resident_on: "h".into(),
                    memory_static_max: 20,
                    memory_overhead: 1,
                    ha_restart_priority: "restart".into(),
                    order: 0,
                },
                SnapVm {
                    uuid: "b".into(),
                    name_label: "b".into(),
                    power_state: "Halted".into(),
                    resident_on: String::new(),
                    memory_static_max: 30,
                    memory_overhead: 0,
                    ha_restart_priority: "restart".into(),
                    order: 0,
                },
            ],
        };
        let p = to_plan(&s);
        assert_eq!(p.hosts[0].free_memory, 100 - 10 - 21);
        assert!(p.vms[0].is_protected());
        assert_eq!(p.vms[0].memory, 21);
        assert!(!p.vms[1].is_protected(), "halted VMs are not protected");
        assert_eq!(p.vms[1].resident_on, None);
        assert_eq!(now_rfc3339().len(), 20);
    }
}
