//! The planner's input: a frozen picture of the pool's hosts and VMs.
//!
//! This module owns the input types and their meaning. It must never compute a plan and never
//! read anything from outside the values it is given: whoever builds a [`PoolSnapshot`] (the
//! server from its database, `xe` from a XenAPI session or a dump file) does the accounting.

/// One host as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanHost {
    /// Host identity (a UUID in practice). Ties between otherwise identical hosts are broken by
    /// this string, so it must be stable.
    pub id: String,
    /// Memory still free for protected VMs, in bytes: total memory minus the host's overhead and
    /// minus every VM already resident or scheduled on it (protected or not, at `static_max`).
    /// May be negative on an overcommitted host; such a host accepts nothing.
    pub free_memory: i64,
    /// `host_metrics.live` and in the HA liveset.
    pub live: bool,
    /// `host.enabled` (a disabled host is never a restart target, as in xapi).
    pub enabled: bool,
}

impl PlanHost {
    /// A live, enabled host with `free_memory` bytes free.
    pub fn new(id: impl Into<String>, free_memory: i64) -> Self {
        PlanHost {
            id: id.into(),
            free_memory,
            live: true,
            enabled: true,
        }
    }

    /// Whether the host can receive VMs: live and enabled.
    pub fn is_available(&self) -> bool {
        self.live && self.enabled
    }
}

/// `VM.ha_restart_priority`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestartPriority {
    /// `"restart"`: protected, the plan must cover it.
    Restart,
    /// `"best-effort"`: restarted if room is left, never planned for.
    BestEffort,
    /// `""`: not restarted.
    None,
}

impl RestartPriority {
    /// Parses xapi's string form; `None` for anything else (xapi answers `INVALID_VALUE`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "restart" => Some(RestartPriority::Restart),
            "best-effort" => Some(RestartPriority::BestEffort),
            "" => Some(RestartPriority::None),
            _ => None,
        }
    }

    /// xapi's string form.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPriority::Restart => "restart",
            RestartPriority::BestEffort => "best-effort",
            RestartPriority::None => "",
        }
    }
}

/// One VM as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanVm {
    /// VM identity (a UUID in practice). Breaks ties between VMs of equal size.
    pub id: String,
    /// Memory needed to start the VM anywhere, in bytes (`static_max` plus overheads).
    pub memory: u64,
    /// Only [`RestartPriority::Restart`] VMs are protected and planned for.
    pub restart_priority: RestartPriority,
    /// `VM.order`: restart order, ascending, negative values last. It orders the execution of a
    /// plan; it never changes where a VM is placed (as in xapi).
    pub order: i64,
    /// The host the VM is resident or scheduled on, if any. `None` means halted ("offline").
    pub resident_on: Option<String>,
    /// `None` for an agile VM (all disks and networks properly shared: it can start on any
    /// host). `Some(hosts)` for a non-agile VM, listing the hosts where it could boot; xapi pins
    /// such a VM to the first of them in id order and leaves it out of failover planning.
    pub allowed_hosts: Option<Vec<String>>,
}

impl PlanVm {
    /// An agile, protected VM of `memory` bytes, resident on `host` (or halted when `None`).
    pub fn protected(id: impl Into<String>, memory: u64, host: Option<&str>) -> Self {
        PlanVm {
            id: id.into(),
            memory,
            restart_priority: RestartPriority::Restart,
            order: 0,
            resident_on: host.map(str::to_owned),
            allowed_hosts: None,
        }
    }

    /// Protected means priority `restart`.
    pub fn is_protected(&self) -> bool {
        self.restart_priority == RestartPriority::Restart
    }

    /// Agile means it may start on any host.
    pub fn is_agile(&self) -> bool {
        self.allowed_hosts.is_none()
    }
}

/// Everything the planner needs to know about a pool, frozen at one instant.
///
/// Host ids and VM ids must each be unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// All hosts of the pool, available or not.
    pub hosts: Vec<PlanHost>,
    /// VMs; unprotected ones are ignored (their memory is already in the hosts' free memory).
    pub vms: Vec<PlanVm>,
}

impl PoolSnapshot {
    /// A snapshot of these hosts and VMs.
    pub fn new(hosts: Vec<PlanHost>, vms: Vec<PlanVm>) -> Self {
        PoolSnapshot { hosts, vms }
    }

    /// The same pool with exactly the VMs of `configuration` given their priority and every other
    /// VM unprotected: the pool `pool.ha_compute_hypothetical_max_host_failures_to_tolerate`
    /// plans for. Ids that name no VM of the snapshot are ignored.
    ///
    /// ```
    /// use xenha::planner::{PlanVm, PoolSnapshot, RestartPriority};
    /// let pool = PoolSnapshot::new(vec![], vec![PlanVm::protected("a", 1, None), PlanVm::protected("b", 1, None)]);
    /// let what_if = pool.with_priorities([("b", RestartPriority::BestEffort)]);
    /// assert!(what_if.vms.iter().all(|vm| !vm.is_protected()));
    /// ```
    pub fn with_priorities<'a>(
        &self,
        configuration: impl IntoIterator<Item = (&'a str, RestartPriority)>,
    ) -> PoolSnapshot {
        let wanted: std::collections::HashMap<&str, RestartPriority> =
            configuration.into_iter().collect();
        let mut next = self.clone();
        for vm in &mut next.vms {
            vm.restart_priority = wanted
                .get(vm.id.as_str())
                .copied()
                .unwrap_or(RestartPriority::None);
        }
        next
    }
}

/// How much work a question may cost before the planner settles for a conservative answer.
///
/// The budget counts work, not time, so answers are reproducible on any machine: each host
/// failure the exact search simulates costs 4 units per host, 2 per distinct VM size on each host
/// (copying and certifying the state) and a quarter of the hosts per VM moved; the last failure
/// of a sequence, which is only checked for fit, costs one unit per host plus one per VM moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Work units the exact search may spend per question.
    pub max_work: u64,
}

impl Default for Limits {
    /// 1.5 million units: some 25 to 45 ms at most on the project's machine.
    fn default() -> Self {
        Limits {
            max_work: 1_500_000,
        }
    }
}
