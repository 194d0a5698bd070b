//! The failover planner: pure functions over a snapshot of hosts and VMs (issue 6).
//!
//! It answers three questions about a [`PoolSnapshot`]:
//!
//! * [`max_host_failures_to_tolerate`]: the largest `r` such that, for *every* sequence of `r`
//!   host failures, every protected VM can be restarted;
//! * [`plan_exists_for`]: whether that holds for a given `r`, and if not, a failure sequence and
//!   the VM that does not fit;
//! * [`restart_plan`]: where each protected VM goes when given hosts fail.
//!
//! All three use the same placement rule (xapi's biggest-fit-decreasing with a content-based
//! tie-break, see `placement`), so a plan that "exists" is the one the restart code will execute.
//! Unlike xapi, which enumerates `n!/(n-r)!` sequences only while that is below 3500 and otherwise
//! uses a coarse approximation, the planner searches failure sequences with proofs that cut whole
//! sub-trees, and falls back to a provably conservative answer only when a work budget runs out.
//! `docs/planner.md` has the algorithm and the proofs.
//!
//! This module must never do I/O, read a clock, spawn threads or depend on anything but `std`.
//!
//! ```
//! use xenha::planner::{self, PlanHost, PlanVm, PoolSnapshot};
//! const GIB: u64 = 1 << 30;
//! // Two 256 GiB hosts; the master runs two protected 120 GiB VMs (reference scenario P3).
//! let pool = PoolSnapshot::new(
//!     vec![PlanHost::new("master", 16 * GIB as i64), PlanHost::new("slave", 256 * GIB as i64)],
//!     vec![
//!         PlanVm::protected("vm1", 120 * GIB, Some("master")),
//!         PlanVm::protected("vm2", 120 * GIB, Some("master")),
//!     ],
//! );
//! let outcome = planner::max_host_failures_to_tolerate(&pool);
//! assert_eq!(outcome.max_failures, Some(1));
//! assert!(outcome.exact);
//! let plan = planner::restart_plan(&pool, &["master"]);
//! assert!(plan.is_complete());
//! assert!(plan.placements.iter().all(|p| p.host == "slave"));
//! ```

mod bound;
mod placement;
mod prepare;
mod search;
mod shape;
mod snapshot;

use std::collections::{HashMap, HashSet};
use std::fmt;

pub use bound::xapi_approximation_holds;
pub use snapshot::{Limits, PlanHost, PlanVm, PoolSnapshot, RestartPriority};

use placement::{fail_host, Misfit};
use prepare::Prepared;
use search::{Search, Verdict};

/// How much of the protected set a plan covers (xapi's `plan_status` when a plan exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// `Plan_exists_for_all_VMs`.
    AllVms,
    /// `Plan_exists_excluding_non_agile_VMs`: some protected VMs are pinned to a host and left out.
    ExcludingNonAgile,
}

/// Why no plan exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// This protected VM could not be restarted after the failures.
    VmDoesNotFit {
        /// The VM's id.
        vm: String,
        /// Its memory, in bytes.
        memory: u64,
        /// The most free memory any surviving host had (`None`: no host survived).
        largest_free: Option<i64>,
    },
    /// Fewer available hosts than failures, or as many while there are VMs to restart.
    NotEnoughHosts {
        /// Available (live and enabled) hosts.
        available: usize,
        /// Failures asked about.
        failures: usize,
    },
    /// The work budget ran out before a proof either way; treated as "no plan" to stay safe.
    Undecided,
}

/// A failover plan that does not exist, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoPlan {
    /// Host ids in failure order; empty when even the current pool cannot start its protected VMs.
    pub failures: Vec<String>,
    /// What went wrong after those failures.
    pub cause: Cause,
}

impl fmt::Display for NoPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::NotEnoughHosts {
                available,
                failures,
            } => write!(
                f,
                "{failures} host failure(s) cannot be tolerated with {available} available host(s)"
            ),
            Cause::Undecided => write!(f, "no failover plan could be proven within the budget"),
            Cause::VmDoesNotFit {
                vm,
                memory,
                largest_free,
            } => {
                if self.failures.is_empty() {
                    write!(f, "with no host failure")?;
                } else {
                    write!(
                        f,
                        "after host(s) {} fail in this order",
                        self.failures.join(", ")
                    )?;
                }
                write!(
                    f,
                    ", protected VM {vm} ({memory} bytes) cannot be restarted: "
                )?;
                match largest_free {
                    Some(free) => write!(f, "the largest free memory on any host is {free} bytes"),
                    None => write!(f, "no host is left"),
                }
            }
        }
    }
}

impl std::error::Error for NoPlan {}

/// The answer of [`max_host_failures_to_tolerate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The largest number of host failures, in any order, after which every protected agile VM
    /// can still be restarted. `None` when the pool cannot even start them now.
    pub max_failures: Option<usize>,
    /// `true` when `max_failures` is the exact maximum; `false` when the budget ran out and it is
    /// a proven lower bound (every value it claims is safe).
    pub exact: bool,
    /// The largest number of failures not refuted by a breaking sequence: the true maximum lies
    /// between `max_failures` and this. Equal to `max_failures` when `exact`.
    pub upper_bound: Option<usize>,
    /// Why `upper_bound + 1` failures (or, with `max_failures = None`, the current pool) have no
    /// plan: a failure sequence and the VM it leaves out, or not enough hosts.
    pub limit: NoPlan,
    /// Whether non-agile protected VMs were left out of the plan.
    pub coverage: Coverage,
}

impl Outcome {
    /// The number xapi's `compute_max_host_failures_to_tolerate` would report from this outcome:
    /// its bisection only accepts `Plan_exists_for_all_VMs`, so any non-agile protected VM, or no
    /// plan at all, gives 0.
    pub fn xapi_value(&self) -> usize {
        match (self.coverage, self.max_failures) {
            (Coverage::AllVms, Some(r)) => r,
            _ => 0,
        }
    }
}

/// One VM start in a restart plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The VM to start.
    pub vm: String,
    /// The host to start it on.
    pub host: String,
    /// The VM's `order`, copied so the caller can run the plan group by group.
    pub order: i64,
}

/// Where protected VMs go after some hosts fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// VM starts, in execution order: `order` ascending with negative values last (xapi's
    /// `order_f`), and within an order, in the order the rule placed them.
    pub placements: Vec<Placement>,
    /// Protected VMs that need a start but have nowhere to go.
    pub unplaced: Vec<String>,
}

impl Plan {
    /// Whether every protected VM that needs a start has a host.
    pub fn is_complete(&self) -> bool {
        self.unplaced.is_empty()
    }
}

/// The largest `r` such that every sequence of `r` host failures leaves a restart plan for all
/// protected agile VMs, with the default [`Limits`].
///
/// ```
/// use xenha::planner::{self, PlanHost, PlanVm, PoolSnapshot};
/// // Three hosts, each running one 4-unit VM with 4 units free: any one host can fail, but
/// // after two failures the last host cannot hold three VMs.
/// let pool = PoolSnapshot::new(
///     (0..3).map(|i| PlanHost::new(format!("h{i}"), 4)).collect(),
///     (0..3).map(|i| PlanVm::protected(format!("vm{i}"), 4, Some(&format!("h{i}")))).collect(),
/// );
/// let outcome = planner::max_host_failures_to_tolerate(&pool);
/// assert_eq!(outcome.max_failures, Some(1));
/// println!("{}", outcome.limit); // which two failures break it, and which VM is left out
/// ```
pub fn max_host_failures_to_tolerate(snapshot: &PoolSnapshot) -> Outcome {
    max_host_failures_to_tolerate_with(snapshot, Limits::default())
}

/// [`max_host_failures_to_tolerate`] with an explicit work budget.
pub fn max_host_failures_to_tolerate_with(snapshot: &PoolSnapshot, limits: Limits) -> Outcome {
    let p = Prepared::new(snapshot);
    let coverage = coverage(&p);
    if let Some(m) = p.settle_misfits.first() {
        return Outcome {
            max_failures: None,
            exact: true,
            upper_bound: None,
            limit: no_plan(&p, snapshot, &[], *m),
            coverage,
        };
    }
    let n = p.hosts.len();
    let vms: usize = p.hosts.iter().map(|h| h.vms.len()).sum();
    if vms == 0 {
        return Outcome {
            max_failures: Some(n),
            exact: true,
            upper_bound: Some(n),
            limit: not_enough(n, n + 1),
            coverage,
        };
    }
    // The certificate gives a proven lower bound, dives a witnessed upper bound; the exact search
    // only has to decide the values in between.
    let mut proven = 0;
    let shapes = p.shapes();
    while proven + 1 < n && bound::certified_safe(&p.catalog, &shapes, proven + 1) {
        proven += 1;
    }
    // Losing every host always breaks the plan; xapi calls that "trivially impossible".
    let mut refuted = n;
    let mut limit = not_enough(n, n);
    if let Some(seq) = search::dive(&p.catalog, &shapes, proven, DIVE_TARGETS) {
        if seq.len() < n {
            refuted = seq.len();
            limit = breaking(&p, snapshot, &seq);
        }
    }
    let mut search = Search::new(&p.catalog, limits.max_work);
    let mut exact = true;
    while proven + 1 < refuted {
        match search.check(&shapes, proven + 1) {
            Verdict::Safe => proven += 1,
            Verdict::Breaks(seq) => {
                refuted = proven + 1;
                limit = breaking(&p, snapshot, &seq);
            }
            Verdict::Unknown => {
                exact = false;
                break;
            }
        }
    }
    Outcome {
        max_failures: Some(proven),
        exact,
        upper_bound: Some(refuted - 1),
        limit,
        coverage,
    }
}

/// How many of the largest VM sizes the witness dives aim at.
const DIVE_TARGETS: usize = 12;

/// Whether every sequence of `r` host failures leaves a restart plan for all protected agile
/// VMs, with the default [`Limits`].
///
/// ```
/// use xenha::planner::{self, Cause, PlanHost, PlanVm, PoolSnapshot};
/// // Reference scenario P4: both hosts are nearly full.
/// const GIB: u64 = 1 << 30;
/// let free = 16 * GIB as i64;
/// let pool = PoolSnapshot::new(
///     vec![PlanHost::new("master", free), PlanHost::new("slave", free)],
///     vec![
///         PlanVm::protected("vm1", 120 * GIB, Some("master")),
///         PlanVm::protected("vm2", 120 * GIB, Some("master")),
///         PlanVm::protected("vm3", 120 * GIB, Some("slave")),
///         PlanVm::protected("vm4", 120 * GIB, Some("slave")),
///     ],
/// );
/// let no_plan = planner::plan_exists_for(&pool, 1).unwrap_err();
/// assert_eq!(no_plan.failures.len(), 1);
/// assert!(matches!(no_plan.cause, Cause::VmDoesNotFit { .. }));
/// ```
pub fn plan_exists_for(snapshot: &PoolSnapshot, r: usize) -> Result<Coverage, NoPlan> {
    plan_exists_for_with(snapshot, r, Limits::default())
}

/// [`plan_exists_for`] with an explicit work budget.
pub fn plan_exists_for_with(
    snapshot: &PoolSnapshot,
    r: usize,
    limits: Limits,
) -> Result<Coverage, NoPlan> {
    let p = Prepared::new(snapshot);
    if let Some(m) = p.settle_misfits.first() {
        return Err(no_plan(&p, snapshot, &[], *m));
    }
    let n = p.hosts.len();
    let vms: usize = p.hosts.iter().map(|h| h.vms.len()).sum();
    if r > n || (r == n && vms > 0) {
        return Err(not_enough(n, r));
    }
    let shapes = p.shapes();
    if vms == 0 || bound::certified_safe(&p.catalog, &shapes, r) {
        return Ok(coverage(&p));
    }
    let mut search = Search::new(&p.catalog, limits.max_work);
    match search.check(&shapes, r) {
        Verdict::Safe => Ok(coverage(&p)),
        Verdict::Breaks(seq) => Err(breaking(&p, snapshot, &seq)),
        Verdict::Unknown => Err(NoPlan {
            failures: Vec::new(),
            cause: Cause::Undecided,
        }),
    }
}

/// Where the protected VMs go when `failed_hosts` fail, in that order.
///
/// Protected VMs that are halted, or resident on a host that is not live and enabled, are
/// started first (halted ones together, then host by host in id order); then each failed host's
/// VMs, including any it received from an earlier failure, are restarted on the survivors. Ids
/// that are not available hosts are ignored. When [`plan_exists_for`] holds for `r`, the plan for
/// any `r` failed hosts, in any order, is complete for agile VMs.
///
/// Non-agile VMs go to their pinned host if it survives and still has room once the agile VMs
/// are placed, so they can never take the room the plan counted on.
///
/// ```
/// use xenha::planner::{self, PlanHost, PlanVm, PoolSnapshot};
/// let pool = PoolSnapshot::new(
///     vec![PlanHost::new("a", 0), PlanHost::new("b", 10), PlanHost::new("c", 6)],
///     vec![PlanVm::protected("big", 8, Some("a")), PlanVm::protected("small", 2, Some("a"))],
/// );
/// let plan = planner::restart_plan(&pool, &["a"]);
/// let hosts: Vec<_> = plan.placements.iter().map(|p| (p.vm.as_str(), p.host.as_str())).collect();
/// assert_eq!(hosts, [("big", "b"), ("small", "c")]);
/// ```
pub fn restart_plan<S: AsRef<str>>(snapshot: &PoolSnapshot, failed_hosts: &[S]) -> Plan {
    let p = Prepared::new(snapshot);
    let mut hosts = p.hosts.clone();
    let mut moves: Vec<(u32, u32)> = p.settle_moves.clone();
    let mut unplaced_agile: HashSet<u32> = p.settle_misfits.iter().map(|m| m.vm).collect();
    let mut failed: HashSet<u32> = HashSet::new();
    for id in failed_hosts {
        let Some(n) = p.host_number(id.as_ref()) else {
            continue;
        };
        let Some(pos) = hosts.iter().position(|h| h.host == n) else {
            continue; // already failed earlier in the list
        };
        failed.insert(n);
        let (_, misfits) = fail_host(&p.catalog, &mut hosts, pos, false, |v, h| {
            moves.push((v, h))
        });
        unplaced_agile.extend(misfits.iter().map(|m| m.vm));
    }

    // The last move of each VM is where it ends up; earlier ones were overtaken by failures.
    let mut last: HashMap<u32, usize> = HashMap::new();
    for (i, &(v, _)) in moves.iter().enumerate() {
        last.insert(v, i);
    }
    let mut starts: Vec<(usize, &PlanVm, u32)> = Vec::new();
    for (i, &(v, h)) in moves.iter().enumerate() {
        if last[&v] == i && !unplaced_agile.contains(&v) {
            starts.push((i, &snapshot.vms[p.vm_index[v as usize]], h));
        }
    }
    let mut unplaced: Vec<String> = {
        let mut u: Vec<u32> = unplaced_agile.into_iter().collect();
        u.sort_unstable();
        u.iter()
            .map(|&v| snapshot.vms[p.vm_index[v as usize]].id.clone())
            .collect()
    };

    // Non-agile VMs: started on their pin while settling, or now if their host failed.
    let mut seq = moves.len();
    for (k, na) in p.non_agile.iter().enumerate() {
        let vm = &snapshot.vms[na.snapshot_index];
        let needs_start = match na.running_on {
            Some(h) => failed.contains(&h),
            None => true,
        };
        if !needs_start {
            continue;
        }
        let survivor = na.pinned.filter(|h| !failed.contains(h));
        if p.non_agile_started.contains(&k) {
            if let Some(h) = survivor {
                starts.push((seq, vm, h));
                seq += 1;
                continue;
            }
        } else if let Some(h) = survivor {
            let size = vm.memory.min((i64::MAX / 4) as u64) as i64;
            if let Some(host) = hosts.iter_mut().find(|x| x.host == h && x.free >= size) {
                host.free -= size;
                starts.push((seq, vm, h));
                seq += 1;
                continue;
            }
        }
        unplaced.push(vm.id.clone());
    }

    starts.sort_by_key(|&(i, vm, _)| (execution_rank(vm.order), i));
    Plan {
        placements: starts
            .into_iter()
            .map(|(_, vm, h)| Placement {
                vm: vm.id.clone(),
                host: p.host_ids[h as usize].clone(),
                order: vm.order,
            })
            .collect(),
        unplaced,
    }
}

/// Overcommit protection (xapi's `assert_configuration_change_preserves_ha_plan`): a change from
/// `before` to `after` is refused only if a plan for `r` failures exists before and not after. A
/// pool that already has no plan may proceed, since it cannot get worse.
///
/// ```
/// use xenha::planner::{self, PlanHost, PlanVm, PoolSnapshot};
/// let before = PoolSnapshot::new(
///     vec![PlanHost::new("a", 4), PlanHost::new("b", 8)],
///     vec![PlanVm::protected("vm1", 4, Some("a"))],
/// );
/// let mut after = before.clone();
/// after.vms.push(PlanVm::protected("vm2", 6, None)); // protect a halted VM
/// assert!(planner::change_preserves_plan(&before, &after, 1).is_err());
/// ```
pub fn change_preserves_plan(
    before: &PoolSnapshot,
    after: &PoolSnapshot,
    r: usize,
) -> Result<(), NoPlan> {
    if plan_exists_for(before, r).is_err() {
        return Ok(());
    }
    plan_exists_for(after, r).map(|_| ())
}

/// xapi's answer with its approximate heuristic, ported for comparison: `Helpers.bisect` over
/// `approximate_bin_pack` from 0 to the number of hosts. It is what xapi reports for pools over
/// 32 hosts, or when `n!/(n-r)!` reaches 3500. Halted protected VMs are first started with this
/// crate's placement rule; non-agile VMs give 0, as in xapi.
pub fn xapi_approximate_max_failures(snapshot: &PoolSnapshot) -> usize {
    let p = Prepared::new(snapshot);
    if !p.settle_misfits.is_empty() || !p.non_agile.is_empty() {
        return 0;
    }
    let free: Vec<i64> = p.hosts.iter().map(|h| h.free).collect();
    let counts: Vec<usize> = p.hosts.iter().map(|h| h.vms.len()).collect();
    let max_vm = p.catalog.size.first().copied().unwrap_or(0);
    let holds = |r: usize| xapi_approximation_holds(&free, &counts, max_vm, r);
    // Helpers.bisect: never evaluates f(lower), assumes monotonicity.
    let (mut lower, mut upper) = (0usize, snapshot.hosts.len());
    loop {
        if upper - lower < 2 {
            return if holds(upper) { upper } else { lower };
        }
        let mid = (upper + lower) / 2;
        if holds(mid) {
            lower = mid;
        } else {
            upper = mid;
        }
    }
}

/// xapi's `order_f`: ascending, negative orders last.
fn execution_rank(order: i64) -> i64 {
    if order < 0 {
        i64::MAX
    } else {
        order
    }
}

fn coverage(p: &Prepared) -> Coverage {
    if p.non_agile.is_empty() {
        Coverage::AllVms
    } else {
        Coverage::ExcludingNonAgile
    }
}

fn not_enough(available: usize, failures: usize) -> NoPlan {
    NoPlan {
        failures: Vec::new(),
        cause: Cause::NotEnoughHosts {
            available,
            failures,
        },
    }
}

/// The evidence for a breaking sequence found on shapes: replayed with the concrete rule to name
/// the VM that does not fit.
fn breaking(p: &Prepared, snapshot: &PoolSnapshot, seq: &[u32]) -> NoPlan {
    let mut hosts = p.hosts.clone();
    for (i, &h) in seq.iter().enumerate() {
        let Some(pos) = hosts.iter().position(|x| x.host == h) else {
            break;
        };
        let (_, misfits) = fail_host(&p.catalog, &mut hosts, pos, true, |_, _| {});
        if let Some(&m) = misfits.first() {
            return no_plan(p, snapshot, &seq[..=i], m);
        }
    }
    // Shapes and hosts follow the same rule, so this cannot happen; stay conservative if it does.
    debug_assert!(false, "a breaking sequence did not break when replayed");
    NoPlan {
        failures: seq
            .iter()
            .map(|&h| p.host_ids[h as usize].clone())
            .collect(),
        cause: Cause::Undecided,
    }
}

fn no_plan(p: &Prepared, snapshot: &PoolSnapshot, seq: &[u32], m: Misfit) -> NoPlan {
    let vm = &snapshot.vms[p.vm_index[m.vm as usize]];
    NoPlan {
        failures: seq
            .iter()
            .map(|&h| p.host_ids[h as usize].clone())
            .collect(),
        cause: Cause::VmDoesNotFit {
            vm: vm.id.clone(),
            memory: vm.memory,
            largest_free: m.largest_free,
        },
    }
}
