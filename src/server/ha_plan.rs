//! The pool's failover-planning questions, answered by [`crate::planner`] from a snapshot of
//! the database, and overcommit protection: refusing an operation that would break the plan.
//!
//! The snapshot follows xapi's accounting: a host's free memory is what static accounting
//! leaves (see [`super::vm::host_free_memory`]); a VM needs its `memory_static_max` plus its
//! overhead. For the pool as it is, only VMs that are running count as protected: a protected
//! VM the operator shut down is not restarted by HA (xapi clears `ha_always_run` on a clean
//! shutdown). The hypothetical question plans for exactly the VMs it names, running or not.
//!
//! Overcommit protection (xapi's `assert_configuration_change_preserves_ha_plan`, reference
//! §4.5) compares the pool before a [`Change`] with the pool after it, built by [`what_if`] from
//! the same records rewritten as the operation will write them, so the two sides are accounted
//! exactly alike and the pool checked is the pool that will exist.

use std::collections::HashMap;

use super::vm::{host_free_memory, vm_memory};
use super::Server;
use crate::model::classes::{HOST, HOST_METRICS, POOL, VM};
use crate::model::errors::code;
use crate::model::{ApiError, Record, Value};
use crate::planner::{self, PlanHost, PlanVm, PoolSnapshot, RestartPriority};
use crate::pool::View;
use crate::server::str_field;

/// The pool as the planner sees it. Host and VM ids are refs.
pub fn snapshot(t: &impl View) -> PoolSnapshot {
    let hosts = t
        .refs(HOST.name)
        .into_iter()
        .filter_map(|r| {
            let h = t.record(HOST.name, &r)?;
            let live = t
                .record(HOST_METRICS.name, str_field(h, "metrics"))
                .and_then(|m| m.get("live"))
                == Some(&Value::Bool(true));
            let enabled = h.get("enabled") == Some(&Value::Bool(true));
            let free_memory = host_free_memory(t, &r);
            Some(PlanHost {
                id: r,
                free_memory,
                live,
                enabled,
            })
        })
        .collect();
    let vms = t
        .refs(VM.name)
        .into_iter()
        .filter_map(|r| {
            let v = t.record(VM.name, &r)?;
            if v.get("is_a_template") == Some(&Value::Bool(true)) {
                return None;
            }
            let running = str_field(v, "power_state") != "Halted";
            let priority = RestartPriority::parse(str_field(v, "ha_restart_priority"))
                .unwrap_or(RestartPriority::None);
            Some(PlanVm {
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
                id: r,
            })
        })
        .collect();
    PoolSnapshot::new(hosts, vms)
}

/// A change to the pool whose effect on the failover plan is judged before it is made: xapi's
/// `configuration_change`. A VM that arrives somewhere leaves wherever it ran, so xapi's
/// `old_vms_leaving` is implied; a VM that only stops cannot be refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// `old_vms_arriving`: each VM (ref) starts on, or moves to, the host (ref).
    pub arriving: Vec<(String, String)>,
    /// `hosts_to_disable`: hosts that stop taking VMs; the VMs still on them must find a home.
    pub hosts_to_disable: Vec<String>,
    /// `new_vms_to_protect`: VMs whose restart priority becomes `restart`.
    pub new_vms_to_protect: Vec<String>,
    /// `num_failures`: a new number of host failures to tolerate.
    pub num_failures: Option<usize>,
}

impl Change {
    /// `vm` starts on, or migrates to, `host`.
    pub fn arrival(vm: &str, host: &str) -> Change {
        Change {
            arriving: vec![(vm.to_string(), host.to_string())],
            ..Change::default()
        }
    }

    /// `host` is disabled.
    pub fn host_disabled(host: &str) -> Change {
        Change {
            hosts_to_disable: vec![host.to_string()],
            ..Change::default()
        }
    }

    /// `vm` becomes protected.
    pub fn protection(vm: &str) -> Change {
        Change {
            new_vms_to_protect: vec![vm.to_string()],
            ..Change::default()
        }
    }

    /// The pool is to tolerate `n` host failures.
    pub fn failures_to_tolerate(n: usize) -> Change {
        Change {
            num_failures: Some(n),
            ..Change::default()
        }
    }
}

/// Whether an operation is subject to overcommit protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// An operator's request: refused if it would break the failover plan, unless the pool
    /// has `ha_allow_overcommit`.
    Checked,
    /// HA's own restarts, which must run even when they overcommit the pool (xapi marks the
    /// pool overcommitted and carries on), and moves already judged as a whole (host.evacuate).
    Exempt,
}

impl Protection {
    /// Refuse `change` if it is checked and would break the plan.
    pub fn check(self, t: &impl View, change: &Change) -> Result<(), ApiError> {
        match self {
            Protection::Checked => assert_change_preserves_plan(t, change),
            Protection::Exempt => Ok(()),
        }
    }
}

/// The records as they would be after a change: a few rewritten, the rest read through.
struct Rewritten<'a, V> {
    base: &'a V,
    records: HashMap<String, (&'static str, Record)>,
}

impl<V: View> Rewritten<'_, V> {
    fn edit(&mut self, class: &'static str, r: &str, f: impl FnOnce(&mut Record)) {
        if !self.records.contains_key(r) {
            let Some(rec) = self.base.record(class, r) else {
                return;
            };
            self.records.insert(r.to_string(), (class, rec.clone()));
        }
        if let Some((_, rec)) = self.records.get_mut(r) {
            f(rec);
        }
    }
}

impl<V: View> View for Rewritten<'_, V> {
    fn record(&self, class: &str, r: &str) -> Option<&Record> {
        match self.records.get(r) {
            Some((c, rec)) if *c == class => Some(rec),
            _ => self.base.record(class, r),
        }
    }
    fn refs(&self, class: &str) -> Vec<String> {
        self.base.refs(class)
    }
}

/// The pool as it would be after `change`: the counterfactual of overcommit protection. The
/// records the change touches are rewritten as the operation writes them and the snapshot is
/// taken through them.
pub fn what_if(t: &impl View, change: &Change) -> PoolSnapshot {
    let mut after = Rewritten {
        base: t,
        records: HashMap::new(),
    };
    for (vm, host) in &change.arriving {
        after.edit(VM.name, vm, |rec| {
            if str_field(rec, "power_state") == "Halted" {
                rec.insert("power_state".into(), Value::str("Running"));
            }
            rec.insert("resident_on".into(), Value::str(host.clone()));
        });
    }
    for host in &change.hosts_to_disable {
        after.edit(HOST.name, host, |rec| {
            rec.insert("enabled".into(), Value::Bool(false));
        });
    }
    for vm in &change.new_vms_to_protect {
        after.edit(VM.name, vm, |rec| {
            rec.insert("ha_restart_priority".into(), Value::str("restart"));
        });
    }
    let mut pool = snapshot(&after);
    // A halted VM being protected is one HA will start: the plan must find it a host too.
    for vm in &mut pool.vms {
        if change.new_vms_to_protect.contains(&vm.id) {
            vm.restart_priority = RestartPriority::Restart;
        }
    }
    pool
}

/// Overcommit protection, xapi's `assert_configuration_change_preserves_ha_plan`: while HA is
/// enabled and the pool does not allow overcommitting, refuse `change` with
/// `HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN` if a plan exists now for `ha_plan_exists_for`
/// failures (what the pool currently guarantees, not the user's target) and would not after
/// the change (for `num_failures`, if the change sets it). A pool with no plan may proceed:
/// it cannot get worse.
pub fn assert_change_preserves_plan(t: &impl View, change: &Change) -> Result<(), ApiError> {
    let Some(pool) = t
        .refs(POOL.name)
        .first()
        .and_then(|p| t.record(POOL.name, p))
    else {
        return Ok(());
    };
    let flag = |f: &str| pool.get(f) == Some(&Value::Bool(true));
    if !flag("ha_enabled") || flag("ha_allow_overcommit") {
        return Ok(());
    }
    let planned_for = pool
        .get("ha_plan_exists_for")
        .and_then(Value::as_int)
        .unwrap_or(0)
        .max(0) as usize;
    let before = snapshot(t);
    let after = what_if(t, change);
    let verdict = match change.num_failures {
        // The pool stays as it is; the promise changes. Still judged against what is
        // guaranteed now, so a pool without a plan may set any target.
        Some(n) if n != planned_for => match planner::plan_exists_for(&before, planned_for) {
            Err(_) => Ok(()),
            Ok(_) => planner::plan_exists_for(&after, n).map(|_| ()),
        },
        _ => planner::change_preserves_plan(&before, &after, planned_for),
    };
    verdict.map_err(|no_plan| {
        tracing::info!(?change, %no_plan, "refused: the change would break the failover plan");
        ApiError::new::<String>(code::HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN, [])
    })
}

/// What setting `field` of the `class` object `r` to `value` would change in the failover
/// plan, if it is a change that could break it: a new number of failures to tolerate,
/// disabling a host, or protecting a VM that runs (as xapi's `set_ha_restart_priority`) or that
/// HA keeps running although halted (`ha_always_run`: HA will start it). A halted VM HA does not
/// keep running is judged when it starts.
pub fn change_of_setting(
    t: &impl View,
    class: &str,
    r: &str,
    field: &str,
    value: &Value,
) -> Option<Change> {
    let rec = t.record(class, r)?;
    if rec.get(field) == Some(value) {
        return None;
    }
    match (class, field) {
        ("pool", "ha_host_failures_to_tolerate") => value
            .as_int()
            .and_then(|n| usize::try_from(n).ok())
            .map(Change::failures_to_tolerate),
        ("host", "enabled") if value == &Value::Bool(false) => Some(Change::host_disabled(r)),
        ("VM", "ha_restart_priority" | "ha_always_run") => {
            // The deprecated ha_always_run=true means "restart" (see `generic::set_rules`).
            let protects = match field {
                "ha_restart_priority" => value.as_str() == Some("restart"),
                _ => value.as_bool() == Some(true),
            };
            let protected = str_field(rec, "ha_restart_priority") == "restart";
            let running = str_field(rec, "power_state") != "Halted";
            let kept_running = rec.get("ha_always_run") == Some(&Value::Bool(true));
            (protects && !protected && (running || kept_running)).then(|| Change::protection(r))
        }
        _ => None,
    }
}

/// Whether setting this field can change the pool's plan fields, so they are recomputed after.
pub fn setting_affects_plan(class: &str, field: &str) -> bool {
    matches!(
        (class, field),
        ("pool", "ha_host_failures_to_tolerate")
            | (
                "VM",
                "ha_restart_priority" | "ha_always_run" | "memory_static_max"
            )
    )
}

/// `pool.ha_compute_max_host_failures_to_tolerate`.
pub fn max_failures(server: &Server) -> Result<Value, ApiError> {
    let outcome = planner::max_host_failures_to_tolerate(&snapshot(&*server.db.read()));
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
    let mut pool = snapshot(&*t);
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
        planner::plan_exists_for(&snapshot(&*server.db.read()), n as usize).is_ok(),
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
    let plan = planner::restart_plan(&snapshot(&*t), &failed);
    let mut out = indexmap::IndexMap::new();
    for p in plan.placements {
        out.insert(p.vm, Value::string_map([("host", p.host)]));
    }
    for vm in plan.unplaced {
        out.insert(vm, Value::string_map([("error_code", "HA_NO_PLAN")]));
    }
    Ok(Value::Struct(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::classes::POOL;
    use crate::pool::Database;

    const GIB: i64 = 1 << 30;

    /// A pool with HA enabled on hosts of these sizes (GiB), named h0, h1, …, all live and
    /// enabled, guaranteeing `ha_plan_exists_for = 1`.
    fn pool(sizes: &[i64]) -> (Database, Vec<String>) {
        let db = Database::in_memory();
        let hosts = db
            .write(|t| {
                t.create(
                    &POOL,
                    [
                        ("ha_enabled", Value::Bool(true)),
                        ("ha_host_failures_to_tolerate", Value::Int(1)),
                        ("ha_plan_exists_for", Value::Int(1)),
                    ],
                );
                Ok(sizes
                    .iter()
                    .enumerate()
                    .map(|(i, gib)| {
                        let metrics = t.create(
                            &HOST_METRICS,
                            [
                                ("memory_total", Value::Int(gib * GIB)),
                                ("live", Value::Bool(true)),
                            ],
                        );
                        t.create(
                            &HOST,
                            [
                                ("name_label", Value::str(format!("h{i}"))),
                                ("metrics", Value::Str(metrics)),
                                ("enabled", Value::Bool(true)),
                            ],
                        )
                    })
                    .collect())
            })
            .unwrap();
        (db, hosts)
    }

    /// A VM of `gib` GiB with this priority, running on `on` or halted.
    fn vm(db: &Database, gib: i64, priority: &str, on: Option<&str>) -> String {
        db.write(|t| {
            let vm = t.create(
                &VM,
                [
                    ("memory_static_max", Value::Int(gib * GIB)),
                    ("ha_restart_priority", Value::str(priority)),
                    (
                        "ha_always_run",
                        Value::Bool(!priority.is_empty() && on.is_some()),
                    ),
                ],
            );
            if let Some(host) = on {
                super::super::vm::set_residence(t, &vm, host, "Running")?;
            }
            Ok(vm)
        })
        .unwrap()
    }

    fn set(db: &Database, class: &'static crate::model::ClassDecl, r: &str, f: &str, v: Value) {
        db.write(|t| t.set(class, r, f, v)).unwrap();
    }

    fn pool_ref(db: &Database) -> String {
        db.read().all(POOL.name).next().unwrap().0.clone()
    }

    fn refused(result: Result<(), ApiError>) -> bool {
        match result {
            Ok(()) => false,
            Err(e) => {
                assert_eq!(e.code, code::HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN);
                assert!(e.params.is_empty(), "xapi's error has no parameters");
                true
            }
        }
    }

    /// The tight pool of the tests: h0 (10 GiB) runs protected p1 (5 GiB) and an
    /// unprotected m (4 GiB), h1 (8 GiB) runs protected p2 (5 GiB), h2 (8 GiB) is the spare.
    /// One failure is covered only because h2 can take either protected VM.
    struct Tight {
        db: Database,
        hosts: Vec<String>,
        p1: String,
        m: String,
        u: String,
    }

    fn tight() -> Tight {
        let (db, hosts) = pool(&[10, 8, 8]);
        let p1 = vm(&db, 5, "restart", Some(&hosts[0]));
        vm(&db, 5, "restart", Some(&hosts[1]));
        let m = vm(&db, 4, "", Some(&hosts[0]));
        let u = vm(&db, 4, "", None);
        assert!(planner::plan_exists_for(&snapshot(&*db.read()), 1).is_ok());
        Tight {
            db,
            hosts,
            p1,
            m,
            u,
        }
    }

    /// The planner reads hosts and VMs by id; the tables list records in the order they were
    /// last written.
    fn sorted(mut pool: PoolSnapshot) -> PoolSnapshot {
        pool.hosts.sort_by(|a, b| a.id.cmp(&b.id));
        pool.vms.sort_by(|a, b| a.id.cmp(&b.id));
        pool
    }

    #[test]
    fn the_counterfactual_is_the_pool_the_operation_leaves() {
        let changes: [fn(&Tight) -> Change; 4] = [
            |p| Change::arrival(&p.u, &p.hosts[2]),
            |p| Change::arrival(&p.m, &p.hosts[2]),
            |p| Change::host_disabled(&p.hosts[1]),
            |p| Change::protection(&p.m),
        ];
        for make in changes {
            let p = tight();
            let change = make(&p);
            let before = snapshot(&*p.db.read());
            let predicted = what_if(&*p.db.read(), &change);
            // Now the change for real, as the operations write it.
            p.db.write(|t| {
                for (vm, host) in &change.arriving {
                    super::super::vm::set_residence(t, vm, host, "Running")?;
                }
                for host in &change.hosts_to_disable {
                    t.set(&HOST, host, "enabled", Value::Bool(false))?;
                }
                for vm in &change.new_vms_to_protect {
                    t.set(&VM, vm, "ha_restart_priority", Value::str("restart"))?;
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(
                sorted(predicted.clone()),
                sorted(snapshot(&*p.db.read())),
                "{change:?}"
            );
            assert_ne!(
                sorted(predicted),
                sorted(before),
                "{change:?} changed nothing"
            );
        }
    }

    #[test]
    fn a_halted_vm_being_protected_must_find_a_host_in_the_plan() {
        let Tight { db, u, .. } = tight();
        let after = what_if(&*db.read(), &Change::protection(&u));
        let planned = after.vms.iter().find(|v| v.id == u).unwrap();
        assert!(planned.is_protected());
        assert_eq!(planned.resident_on, None);
    }

    #[test]
    fn changes_that_break_the_plan_are_refused() {
        let Tight {
            db,
            hosts,
            p1,
            m,
            u,
        } = tight();
        let t = db.read();
        let check = |change: Change| assert_change_preserves_plan(&*t, &change);
        // u on the spare leaves it 4 GiB: p1 has nowhere to go if h0 fails.
        assert!(refused(check(Change::arrival(&u, &hosts[2]))));
        assert!(refused(check(Change::arrival(&m, &hosts[2]))));
        assert!(refused(check(Change::host_disabled(&hosts[2]))));
        assert!(refused(check(Change::protection(&m))));
        assert!(refused(check(Change::protection(&u))));
        assert!(refused(check(Change::failures_to_tolerate(2))));
        // What keeps the plan is allowed: a VM that fits beside p1, fewer failures, an idle
        // host disabled... here none is idle, so a move of p1 onto the spare.
        assert!(check(Change::arrival(&p1, &hosts[2])).is_ok());
        assert!(check(Change::failures_to_tolerate(0)).is_ok());
        assert!(check(Change::failures_to_tolerate(1)).is_ok());
        // HA's own restarts are never held back.
        assert!(Protection::Exempt
            .check(&*t, &Change::arrival(&u, &hosts[2]))
            .is_ok());
        assert!(refused(
            Protection::Checked.check(&*t, &Change::arrival(&u, &hosts[2]))
        ));
    }

    #[test]
    fn allowing_overcommit_or_disabling_ha_lifts_the_protection() {
        let Tight { db, hosts, u, .. } = tight();
        let pool = pool_ref(&db);
        let start_u = Change::arrival(&u, &hosts[2]);
        set(&db, &POOL, &pool, "ha_allow_overcommit", Value::Bool(true));
        assert!(assert_change_preserves_plan(&*db.read(), &start_u).is_ok());
        set(&db, &POOL, &pool, "ha_allow_overcommit", Value::Bool(false));
        assert!(refused(assert_change_preserves_plan(&*db.read(), &start_u)));
        set(&db, &POOL, &pool, "ha_enabled", Value::Bool(false));
        assert!(assert_change_preserves_plan(&*db.read(), &start_u).is_ok());
    }

    #[test]
    fn the_plan_guaranteed_now_is_what_is_protected_not_the_target() {
        let Tight { db, hosts, u, .. } = tight();
        let pool = pool_ref(&db);
        let start_u = Change::arrival(&u, &hosts[2]);
        // Guaranteeing 0 failures only, the same start keeps that guarantee.
        set(&db, &POOL, &pool, "ha_plan_exists_for", Value::Int(0));
        assert!(assert_change_preserves_plan(&*db.read(), &start_u).is_ok());
        // A pool with no plan for what it claims cannot get worse: anything goes.
        set(&db, &POOL, &pool, "ha_plan_exists_for", Value::Int(2));
        assert!(planner::plan_exists_for(&snapshot(&*db.read()), 2).is_err());
        assert!(assert_change_preserves_plan(&*db.read(), &start_u).is_ok());
        assert!(
            assert_change_preserves_plan(&*db.read(), &Change::failures_to_tolerate(3)).is_ok()
        );
    }

    #[test]
    fn settings_that_can_break_the_plan() {
        let Tight {
            db,
            hosts,
            p1,
            m,
            u,
            ..
        } = tight();
        let pool = pool_ref(&db);
        let t = db.read();
        let of = |class, r: &str, field, v: Value| change_of_setting(&*t, class, r, field, &v);
        assert_eq!(
            of("pool", &pool, "ha_host_failures_to_tolerate", Value::Int(2)),
            Some(Change::failures_to_tolerate(2))
        );
        assert_eq!(
            of("pool", &pool, "ha_host_failures_to_tolerate", Value::Int(1)),
            None,
            "unchanged"
        );
        assert_eq!(
            of("host", &hosts[0], "enabled", Value::Bool(false)),
            Some(Change::host_disabled(&hosts[0]))
        );
        assert_eq!(of("host", &hosts[0], "enabled", Value::Bool(true)), None);
        for field in ["ha_restart_priority", "ha_always_run"] {
            let on = if field == "ha_always_run" {
                Value::Bool(true)
            } else {
                Value::str("restart")
            };
            assert_eq!(
                of("VM", &m, field, on.clone()),
                Some(Change::protection(&m)),
                "a running VM"
            );
            assert_eq!(of("VM", &p1, field, on.clone()), None, "already protected");
            assert_eq!(of("VM", &u, field, on), None, "judged when it starts");
        }
        assert_eq!(
            of("VM", &m, "ha_restart_priority", Value::str("best-effort")),
            None
        );
        drop(t);
        // A halted VM HA keeps running (a best-effort VM its host took down) is judged now.
        set(
            &db,
            &VM,
            &u,
            "ha_restart_priority",
            Value::str("best-effort"),
        );
        set(&db, &VM, &u, "ha_always_run", Value::Bool(true));
        assert_eq!(
            change_of_setting(
                &*db.read(),
                "VM",
                &u,
                "ha_restart_priority",
                &Value::str("restart")
            ),
            Some(Change::protection(&u))
        );
    }
}
