//! The exact search: does some sequence of `d` host failures break the plan?
//!
//! This module owns the depth-first search over failure sequences, with three reductions that
//! keep it exact: certificates prune sub-trees that provably hold, hosts that are identical in
//! free memory and resident VM sizes are branched on once (symmetry), and states already proven
//! safe for at least `d` more failures are remembered whatever order led to them (memoisation).
//! It must never answer "safe" without a proof: when the budget runs out it says so.

use std::collections::HashMap;

use super::bound::certified_safe;
use super::placement::{fail_fits, fail_host, preference, same_shape, Catalog, HostState, Misfit};

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every sequence of `d` failures leaves every VM placed.
    Safe,
    /// This sequence of host numbers breaks the plan; its last failure leaves the VM out.
    Breaks(Vec<u32>, Misfit),
    /// The budget ran out before an answer.
    Unknown,
}

/// A search over one starting state; reuse it to ask about several depths.
pub(crate) struct Search<'a> {
    cat: &'a Catalog,
    /// For each host number, the shape class of the host in the starting state and the VMs it
    /// held then; a state's key only needs what each host received since.
    origin: HashMap<u32, (u32, Vec<u32>)>,
    /// Canonical state -> largest depth proven safe from it.
    proven: HashMap<Vec<i64>, usize>,
    /// Work units left (see [`super::Limits`]).
    budget: u64,
    scratch: Vec<i64>,
}

impl<'a> Search<'a> {
    /// A search from `start`, allowed `budget` work units in total.
    pub fn new(cat: &'a Catalog, start: &[HostState], budget: u64) -> Self {
        let mut origin = HashMap::new();
        for h in start {
            let first = start
                .iter()
                .find(|o| same_shape(cat, o, h))
                .map_or(h.host, |o| o.host);
            origin.insert(h.host, (first, h.vms.clone()));
        }
        Search {
            cat,
            origin,
            proven: HashMap::new(),
            budget,
            scratch: Vec::new(),
        }
    }

    /// Whether every sequence of `d` failures among `hosts` keeps every VM placed.
    pub fn check(&mut self, hosts: &[HostState], d: usize) -> Verdict {
        let vm_count: usize = hosts.iter().map(|h| h.vms.len()).sum();
        if vm_count == 0 {
            // Nothing to restart: only the number of hosts matters (xapi's trivial rule).
            return if hosts.len() >= d {
                Verdict::Safe
            } else {
                Verdict::Unknown
            };
        }
        if hosts.len() <= d {
            return self.exhaust(hosts);
        }
        self.dfs(hosts, d)
    }

    /// When every host fails the VMs end up with nowhere to go: find where, in the rule's own
    /// order of danger, so the caller gets a concrete sequence.
    fn exhaust(&mut self, hosts: &[HostState]) -> Verdict {
        let mut state = hosts.to_vec();
        let mut seq = Vec::new();
        while !state.is_empty() {
            let pos = self.danger_order(&state)[0];
            seq.push(state[pos].host);
            let (_, misfits) = fail_host(self.cat, &mut state, pos, true, |_, _| {});
            if let Some(&m) = misfits.first() {
                return Verdict::Breaks(seq, m);
            }
        }
        unreachable!("the last host to fail holds every VM and has no one to give them to")
    }

    fn dfs(&mut self, hosts: &[HostState], d: usize) -> Verdict {
        if d == 0 || certified_safe(self.cat, hosts, d) {
            return Verdict::Safe;
        }
        let key = self.canonical(hosts);
        if self.proven.get(&key).is_some_and(|&p| p >= d) {
            return Verdict::Safe;
        }
        let order = self.danger_order(hosts);
        if d == 1 {
            // Leaves: only success matters, and success does not depend on tie-breaking.
            for &pos in &order {
                // A heap over the survivors' free memory, then one step per VM moved.
                if !self.spend((hosts.len() + hosts[pos].vms.len()) as u64) {
                    return Verdict::Unknown;
                }
                if !fail_fits(self.cat, hosts, pos, &mut self.scratch) {
                    let mut state = hosts.to_vec();
                    let (_, misfits) = fail_host(self.cat, &mut state, pos, true, |_, _| {});
                    return Verdict::Breaks(vec![hosts[pos].host], misfits[0]);
                }
            }
        } else {
            // A full step copies the state, simulates, and certifies and keys the child: linear
            // in the VMs, plus a few sorts over the hosts.
            let vms: usize = hosts.iter().map(|h| h.vms.len()).sum();
            let cost = (vms + 16 * hosts.len()) as u64;
            for &pos in &order {
                if !self.spend(cost) {
                    return Verdict::Unknown;
                }
                let mut state = hosts.to_vec();
                let (dead, misfits) = fail_host(self.cat, &mut state, pos, true, |_, _| {});
                if let Some(&m) = misfits.first() {
                    return Verdict::Breaks(vec![dead.host], m);
                }
                match self.dfs(&state, d - 1) {
                    Verdict::Safe => {}
                    Verdict::Breaks(mut seq, m) => {
                        seq.insert(0, dead.host);
                        return Verdict::Breaks(seq, m);
                    }
                    Verdict::Unknown => return Verdict::Unknown,
                }
            }
        }
        self.proven.insert(key, d);
        Verdict::Safe
    }

    /// Takes `cost` units from the budget; `false` when there are not enough left.
    fn spend(&mut self, cost: u64) -> bool {
        match self.budget.checked_sub(cost) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => false,
        }
    }

    /// One position per class of identical hosts, most dangerous to lose first: the hosts whose
    /// loss moves the most memory, so that failing sequences are found early.
    fn danger_order(&self, hosts: &[HostState]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..hosts.len()).collect();
        idx.sort_by(|&a, &b| {
            let (ha, hb) = (&hosts[a], &hosts[b]);
            hb.load
                .cmp(&ha.load)
                .then_with(|| preference(self.cat, ha, hb))
        });
        idx.dedup_by(|a, b| same_shape(self.cat, &hosts[*a], &hosts[*b]));
        idx
    }
}

impl Search<'_> {
    /// A key equal for states that are the same up to renaming identical hosts and equal-sized
    /// VMs. Every state searched descends from the start, so a host is described by its shape
    /// class at the start, its free memory and the size classes of the VMs it received since.
    /// Equal keys imply equal (free memory, VM sizes) multisets, which have the same future under
    /// the placement rule (see `placement`); unequal keys may still be equivalent states, which
    /// only costs a missed memo hit.
    fn canonical(&self, hosts: &[HostState]) -> Vec<i64> {
        let mut parts: Vec<Vec<i64>> = hosts
            .iter()
            .map(|h| {
                let (class, start) = &self.origin[&h.host];
                let mut p = vec![*class as i64, h.free];
                let mut old = start.iter().peekable();
                for &v in &h.vms {
                    while old.next_if(|&&o| o < v).is_some() {}
                    if old.next_if_eq(&&v).is_none() {
                        p.push(self.cat.class[v as usize] as i64);
                    }
                }
                p
            })
            .collect();
        parts.sort_unstable();
        let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for p in parts {
            key.push(p.len() as i64);
            key.extend(p);
        }
        key
    }
}

/// Looks for a short failure sequence that breaks the plan, by greedy dives.
///
/// Each dive fails, at every step, the host whose loss looks worst for one target VM size: the
/// most load plus the most room that would otherwise be left for that size (the hosts the memory
/// certificate fears most), and, once `safe_depth` failures are known to be harmless, first tries
/// every possible next failure for an immediate break. Returns the shortest sequence found; any
/// sequence returned really breaks the plan (it is simulated with the placement rule).
pub(crate) fn dive(
    cat: &Catalog,
    hosts: &[HostState],
    safe_depth: usize,
    targets: usize,
) -> Option<(Vec<u32>, Misfit)> {
    let mut present: Vec<i64> = hosts
        .iter()
        .flat_map(|h| h.vms.iter().map(|&v| cat.size[v as usize]))
        .collect();
    present.sort_unstable_by(|a, b| b.cmp(a));
    present.dedup();
    let mut aims: Vec<Option<i64>> = vec![None];
    aims.extend(present.into_iter().take(targets).map(Some));

    let mut best: Option<(Vec<u32>, Misfit)> = None;
    let mut scratch = Vec::new();
    for aim in aims {
        let mut state = hosts.to_vec();
        let mut seq: Vec<u32> = Vec::new();
        loop {
            let limit = best.as_ref().map_or(usize::MAX, |(s, _)| s.len() - 1);
            if state.is_empty() || seq.len() >= limit {
                break;
            }
            if seq.len() >= safe_depth {
                let breaking = (0..state.len()).find(|&p| !fail_fits(cat, &state, p, &mut scratch));
                if let Some(pos) = breaking {
                    seq.push(state[pos].host);
                    let (_, misfits) = fail_host(cat, &mut state, pos, true, |_, _| {});
                    best = Some((seq, misfits[0]));
                    break;
                }
            }
            let score = |h: &HostState| match aim {
                None => h.load as i128,
                Some(s) => h.load as i128 + (h.free as i128 - s as i128 + 1).max(0),
            };
            let pos = (0..state.len())
                .max_by(|&a, &b| {
                    score(&state[a])
                        .cmp(&score(&state[b]))
                        .then_with(|| preference(cat, &state[a], &state[b]))
                })
                .expect("non-empty");
            seq.push(state[pos].host);
            let (_, misfits) = fail_host(cat, &mut state, pos, true, |_, _| {});
            if let Some(&m) = misfits.first() {
                best = Some((seq, m));
                break;
            }
        }
    }
    best
}
