//! From a [`PoolSnapshot`] to the planner's starting state, the way xapi's
//! `compute_restart_plan` does it.
//!
//! This module owns: which VMs are protected, which hosts can receive VMs, how non-agile VMs are
//! pinned, and how protected VMs that are not running on an available host are started before
//! any future failure is considered ("settling"). It must never reason about future failures.

use std::collections::HashMap;

use super::placement::{pack, Catalog, HostState, Misfit};
use super::shape::Shape;
use super::snapshot::PoolSnapshot;

/// A protected VM that cannot move freely (xapi: not "properly shared").
#[derive(Clone, Debug)]
pub(crate) struct NonAgile {
    /// Position in `PoolSnapshot::vms`.
    pub snapshot_index: usize,
    /// The host it is pinned to: the first host, by id, among those it may boot on.
    pub pinned: Option<u32>,
    /// The available host it is running on, if any.
    pub running_on: Option<u32>,
}

/// The snapshot turned into planner numbers, with offline protected VMs started.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    /// All host ids, sorted; a host's planner number is its position here.
    pub host_ids: Vec<String>,
    /// Whether each host is live and enabled.
    pub available: Vec<bool>,
    /// Protected agile VMs, in placement order.
    pub catalog: Catalog,
    /// For each internal VM number, its position in `PoolSnapshot::vms`.
    pub vm_index: Vec<usize>,
    /// Protected non-agile VMs.
    pub non_agile: Vec<NonAgile>,
    /// Non-agile VMs started on their pinned host while settling (positions in `non_agile`).
    pub non_agile_started: Vec<usize>,
    /// Available hosts, in host-number order, after settling.
    pub hosts: Vec<HostState>,
    /// Agile VMs started while settling, in placement order: (internal VM, host).
    pub settle_moves: Vec<(u32, u32)>,
    /// Agile VMs that could not be started even before any failure.
    pub settle_misfits: Vec<Misfit>,
}

impl Prepared {
    /// Reads the snapshot and settles it.
    pub fn new(snapshot: &PoolSnapshot) -> Prepared {
        let mut order: Vec<usize> = (0..snapshot.hosts.len()).collect();
        order.sort_by(|&a, &b| snapshot.hosts[a].id.cmp(&snapshot.hosts[b].id));
        let host_ids: Vec<String> = order
            .iter()
            .map(|&i| snapshot.hosts[i].id.clone())
            .collect();
        let available: Vec<bool> = order
            .iter()
            .map(|&i| snapshot.hosts[i].is_available())
            .collect();
        let number: HashMap<&str, u32> = host_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i as u32))
            .collect();
        let available_number = |id: &Option<String>| -> Option<u32> {
            let n = *number.get(id.as_deref()?)?;
            available[n as usize].then_some(n)
        };

        let mut agile: Vec<usize> = Vec::new();
        let mut non_agile = Vec::new();
        for (i, vm) in snapshot.vms.iter().enumerate() {
            if !vm.is_protected() {
                continue;
            }
            match &vm.allowed_hosts {
                None => agile.push(i),
                Some(allowed) => {
                    // xapi pins to the first host in id order where the VM could boot, live or
                    // not, so that the pin does not move when hosts come and go.
                    let pinned = allowed
                        .iter()
                        .filter_map(|h| number.get(h.as_str()).copied())
                        .min();
                    non_agile.push(NonAgile {
                        snapshot_index: i,
                        pinned,
                        running_on: available_number(&vm.resident_on),
                    });
                }
            }
        }
        // Placement order: size descending, then id, so that the rule never depends on input order.
        agile.sort_by(|&a, &b| {
            let (va, vb) = (&snapshot.vms[a], &snapshot.vms[b]);
            vb.memory.cmp(&va.memory).then_with(|| va.id.cmp(&vb.id))
        });
        let catalog = Catalog::from_sorted_sizes(
            agile
                .iter()
                .map(|&i| clamp(snapshot.vms[i].memory))
                .collect(),
        );
        let running_on: Vec<Option<u32>> = agile
            .iter()
            .map(|&i| available_number(&snapshot.vms[i].resident_on))
            .collect();

        let mut hosts: Vec<HostState> = order
            .iter()
            .enumerate()
            .filter(|&(n, _)| available[n])
            .map(|(n, &i)| HostState {
                host: n as u32,
                free: snapshot.hosts[i].free_memory,
                load: 0,
                vms: Vec::new(),
            })
            .collect();
        let position: HashMap<u32, usize> =
            hosts.iter().enumerate().map(|(p, h)| (h.host, p)).collect();
        for (vm, on) in running_on.iter().enumerate() {
            if let Some(h) = on {
                let host = &mut hosts[position[h]];
                host.vms.push(vm as u32);
                host.load += catalog.size[vm];
            }
        }

        // Offline non-agile VMs are started on their pinned host first and counted as overhead
        // there (xapi's `non_agile_restart_plan`); they never move afterwards.
        let mut non_agile_started = Vec::new();
        for (k, na) in non_agile.iter().enumerate() {
            if na.running_on.is_some() {
                continue;
            }
            let Some(p) = na.pinned.and_then(|h| position.get(&h).copied()) else {
                continue;
            };
            let size = clamp(snapshot.vms[na.snapshot_index].memory);
            if hosts[p].free >= size {
                hosts[p].free -= size;
                non_agile_started.push(k);
            }
        }

        // Agile VMs halted, or resident on a host that is not available, are started now: first
        // the halted ones in one packing, then those of each unavailable host in host order, so
        // that VMs stranded on a failed host are restarted exactly as a failure of that host.
        let mut stranded: Vec<(u32, Vec<u32>)> = Vec::new();
        let mut halted: Vec<u32> = Vec::new();
        for (vm, &i) in agile.iter().enumerate() {
            if running_on[vm].is_some() {
                continue;
            }
            match snapshot.vms[i]
                .resident_on
                .as_deref()
                .and_then(|h| number.get(h))
            {
                Some(&h) => match stranded.iter_mut().find(|(s, _)| *s == h) {
                    Some((_, list)) => list.push(vm as u32),
                    None => stranded.push((h, vec![vm as u32])),
                },
                None => halted.push(vm as u32),
            }
        }
        stranded.sort_by_key(|(h, _)| *h);
        let mut settle_moves = Vec::new();
        let mut settle_misfits = pack(&catalog, &mut hosts, &halted, false, |v, h| {
            settle_moves.push((v, h))
        });
        for (_, vms) in &stranded {
            settle_misfits.extend(pack(&catalog, &mut hosts, vms, false, |v, h| {
                settle_moves.push((v, h))
            }));
        }

        Prepared {
            host_ids,
            available,
            catalog,
            vm_index: agile,
            non_agile,
            non_agile_started,
            hosts,
            settle_moves,
            settle_misfits,
        }
    }

    /// The settled hosts as the search sees them.
    pub fn shapes(&self) -> Vec<Shape> {
        self.hosts
            .iter()
            .map(|h| Shape::of(&self.catalog, h))
            .collect()
    }

    /// The planner number of an available host, by id.
    pub fn host_number(&self, id: &str) -> Option<u32> {
        let n = self
            .host_ids
            .binary_search_by(|h| h.as_str().cmp(id))
            .ok()? as u32;
        self.available[n as usize].then_some(n)
    }
}

/// Memory sizes beyond `i64::MAX / 4` cannot be real; clamping keeps sums from overflowing.
fn clamp(memory: u64) -> i64 {
    memory.min((i64::MAX / 4) as u64) as i64
}
