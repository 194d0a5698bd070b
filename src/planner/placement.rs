//! The placement rule: where the VMs of a failed host are restarted.
//!
//! This module owns the one rule that both the planner and the restart code use, so that "a plan
//! exists" is a statement about what will really happen. It must never look at anything but the
//! free memory and resident VMs of the surviving hosts, and never depend on the order in which
//! hosts or VMs were listed by the caller.
//!
//! The rule is xapi's biggest-fit-decreasing (`Binpack.biggest_fit_decreasing`): VMs are taken
//! largest first (equal sizes by VM id) and each goes to the host with the most free memory; if
//! that host cannot hold it, nothing can, and the VM is left out. It differs from xapi only in how
//! hosts with *equal* free memory are ranked: xapi uses list position, we use the hosts' contents
//! (fewer resident VMs first, then smaller resident VMs, then host id). The host id only decides
//! between hosts that are identical in free memory and in the sizes of their resident VMs, where
//! the choice cannot matter; that is what makes symmetric states interchangeable in the search
//! (see `docs/planner.md`, "Symmetry").

use std::cmp::Ordering;

/// Sizes of the protected agile VMs, indexed by the planner's internal VM number.
///
/// Internal VM numbers follow the placement order: size descending, then id ascending. A VM's
/// *class* numbers its distinct size (class 0 is the largest), so two VMs of equal size are
/// interchangeable wherever only sizes matter.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    /// Size of each VM, in bytes.
    pub size: Vec<i64>,
    /// Size class of each VM.
    pub class: Vec<u32>,
    /// Size of each class, strictly decreasing.
    pub class_size: Vec<i64>,
}

impl Catalog {
    /// Builds a catalog from sizes that are already in placement order (non-increasing).
    pub fn from_sorted_sizes(size: Vec<i64>) -> Self {
        let mut class = Vec::with_capacity(size.len());
        let mut class_size: Vec<i64> = Vec::new();
        for &s in &size {
            if class_size.last() != Some(&s) {
                class_size.push(s);
            }
            class.push((class_size.len() - 1) as u32);
        }
        Catalog {
            size,
            class,
            class_size,
        }
    }
}

/// A surviving host during planning: its free memory and the protected agile VMs on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostState {
    /// The planner's host number (position in the id-sorted host list).
    pub host: u32,
    /// Free memory in bytes.
    pub free: i64,
    /// Total size of the protected agile VMs resident here.
    pub load: i64,
    /// Internal numbers of the resident protected agile VMs, ascending (so largest first).
    pub vms: Vec<u32>,
}

/// A VM that the rule could not place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Misfit {
    /// Internal VM number.
    pub vm: u32,
    /// The most free memory any surviving host had at that moment (`None`: no host survived).
    pub largest_free: Option<i64>,
}

/// Which of two hosts receives the next VM: `Greater` means `a` is preferred.
pub(crate) fn preference(cat: &Catalog, a: &HostState, b: &HostState) -> Ordering {
    a.free
        .cmp(&b.free)
        .then_with(|| b.vms.len().cmp(&a.vms.len()))
        // Larger class numbers are smaller VMs: prefer the host whose VMs are smaller.
        .then_with(|| {
            let ca = a.vms.iter().map(|&v| cat.class[v as usize]);
            let cb = b.vms.iter().map(|&v| cat.class[v as usize]);
            ca.cmp(cb)
        })
        .then_with(|| b.host.cmp(&a.host))
}

/// Packs `vms` (internal numbers, ascending) onto `hosts` with biggest-fit-decreasing.
///
/// Each placement is reported to `placed(vm, host)`. A VM that does not fit is left out and
/// reported in the result; when `stop_at_misfit` is set the packing stops there (the planner
/// only needs to know that a failure sequence breaks, the restart code wants the rest placed).
pub(crate) fn pack(
    cat: &Catalog,
    hosts: &mut [HostState],
    vms: &[u32],
    stop_at_misfit: bool,
    mut placed: impl FnMut(u32, u32),
) -> Vec<Misfit> {
    let mut misfits = Vec::new();
    for &vm in vms {
        let size = cat.size[vm as usize];
        let best = best_host(cat, hosts);
        match best {
            Some(i) if hosts[i].free >= size => {
                let h = &mut hosts[i];
                h.free -= size;
                h.load += size;
                let at = h.vms.partition_point(|&x| x < vm);
                h.vms.insert(at, vm);
                placed(vm, h.host);
            }
            _ => {
                misfits.push(Misfit {
                    vm,
                    largest_free: best.map(|i| hosts[i].free),
                });
                if stop_at_misfit {
                    break;
                }
            }
        }
    }
    misfits
}

/// The host the rule would choose next, if any host survives.
fn best_host(cat: &Catalog, hosts: &[HostState]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, h) in hosts.iter().enumerate() {
        best = match best {
            None => Some(i),
            Some(b) => {
                // Free memory decides almost always; the full comparison only runs on ties.
                let cur = &hosts[b];
                if h.free > cur.free
                    || (h.free == cur.free && preference(cat, h, cur) == Ordering::Greater)
                {
                    Some(i)
                } else {
                    Some(b)
                }
            }
        };
    }
    best
}

/// Removes the host at `pos` and restarts its VMs on the others (one step of a failure sequence).
pub(crate) fn fail_host(
    cat: &Catalog,
    hosts: &mut Vec<HostState>,
    pos: usize,
    stop_at_misfit: bool,
    placed: impl FnMut(u32, u32),
) -> (HostState, Vec<Misfit>) {
    let dead = hosts.remove(pos);
    let misfits = pack(cat, hosts, &dead.vms, stop_at_misfit, placed);
    (dead, misfits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: u32, free: i64, vms: Vec<u32>, cat: &Catalog) -> HostState {
        let load = vms.iter().map(|&v| cat.size[v as usize]).sum();
        HostState {
            host,
            free,
            load,
            vms,
        }
    }

    #[test]
    fn biggest_vm_goes_to_the_freest_host_and_misfits_are_left_out() {
        // xapi's Slave1EvacuationPlan "fallback to binpack" case (reference B4), in GiB.
        let cat = Catalog::from_sorted_sizes(vec![95, 75, 30, 20, 10]);
        let mut hosts = vec![
            host(0, 100, vec![], &cat),
            host(1, 80, vec![], &cat),
            host(2, 70, vec![], &cat),
        ];
        let mut moves = Vec::new();
        let misfits = pack(&cat, &mut hosts, &[0, 1, 2, 3, 4], false, |v, h| {
            moves.push((v, h))
        });
        assert!(misfits.is_empty());
        assert_eq!(moves, vec![(0, 0), (1, 1), (2, 2), (3, 2), (4, 2)]);
        let frees: Vec<i64> = hosts.iter().map(|h| h.free).collect();
        assert_eq!(frees, vec![5, 5, 10]);
    }

    #[test]
    fn a_vm_that_does_not_fit_the_freest_host_fits_nowhere() {
        let cat = Catalog::from_sorted_sizes(vec![50, 10]);
        let mut hosts = vec![host(0, 40, vec![], &cat), host(1, 30, vec![], &cat)];
        let misfits = pack(&cat, &mut hosts, &[0, 1], false, |_, _| {});
        assert_eq!(
            misfits,
            vec![Misfit {
                vm: 0,
                largest_free: Some(40)
            }]
        );
        // The packing went on with the next VM.
        assert_eq!(hosts[0].vms, vec![1]);
    }

    #[test]
    fn equal_free_memory_prefers_the_emptier_host_not_the_lower_id() {
        let cat = Catalog::from_sorted_sizes(vec![8, 4, 4]);
        let mut hosts = vec![host(0, 10, vec![1], &cat), host(1, 10, vec![], &cat)];
        let mut to = None;
        pack(&cat, &mut hosts, &[2], false, |_, h| to = Some(h));
        assert_eq!(to, Some(1));
    }
}
