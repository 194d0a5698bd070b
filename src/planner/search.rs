//! The exact search: does some sequence of `d` host failures break the plan?
//!
//! This module owns the depth-first search over failure sequences, with three reductions that
//! keep it exact: certificates prune sub-trees that provably hold, hosts that are identical in
//! free memory and resident VM sizes are branched on once (symmetry), and states already proven
//! safe for at least `d` more failures are remembered whatever order led to them (memoisation).
//! It must never answer "safe" without a proof: when the budget runs out it says so.

use std::collections::HashMap;

use super::bound::certified_safe;
use super::placement::Catalog;
use super::shape::{fail, fits, preference, same, Shape};

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every sequence of `d` failures leaves every VM placed.
    Safe,
    /// This sequence of host numbers breaks the plan: its last failure leaves a VM out.
    Breaks(Vec<u32>),
    /// The budget ran out before an answer.
    Unknown,
}

/// A search over one starting state; reuse it to ask about several depths.
pub(crate) struct Search<'a> {
    cat: &'a Catalog,
    /// Canonical state -> largest depth proven safe from it.
    proven: HashMap<Vec<i64>, usize>,
    /// Work units left (see [`super::Limits`]).
    budget: u64,
    scratch: Vec<i64>,
}

impl<'a> Search<'a> {
    /// A search allowed `budget` work units in total.
    pub fn new(cat: &'a Catalog, budget: u64) -> Self {
        Search {
            cat,
            proven: HashMap::new(),
            budget,
            scratch: Vec::new(),
        }
    }

    /// Whether every sequence of `d` failures among `hosts` keeps every VM placed.
    pub fn check(&mut self, hosts: &[Shape], d: usize) -> Verdict {
        let vm_count: u32 = hosts.iter().map(|h| h.count).sum();
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
    fn exhaust(&mut self, hosts: &[Shape]) -> Verdict {
        let mut state = hosts.to_vec();
        let mut seq = Vec::new();
        while !state.is_empty() {
            let pos = danger_order(&state)[0];
            let (dead, misfit) = fail(self.cat, &mut state, pos);
            seq.push(dead.host);
            if misfit.is_some() {
                return Verdict::Breaks(seq);
            }
        }
        unreachable!("the last host to fail holds every VM and has no one to give them to")
    }

    fn dfs(&mut self, hosts: &[Shape], d: usize) -> Verdict {
        if d == 0 || certified_safe(self.cat, hosts, d) {
            return Verdict::Safe;
        }
        let key = canonical(hosts);
        if self.proven.get(&key).is_some_and(|&p| p >= d) {
            return Verdict::Safe;
        }
        let order = danger_order(hosts);
        // Copying a state and certifying a child cost a few words per host and per size class.
        let runs: usize = hosts.iter().map(|h| h.runs.len()).sum();
        let step = (4 * hosts.len() + 2 * runs) as u64;
        for &pos in &order {
            let moved = u64::from(hosts[pos].count);
            if d == 1 {
                // Leaves: only success matters, which needs free memory only.
                if !self.spend(hosts.len() as u64 + moved) {
                    return Verdict::Unknown;
                }
                if !fits(self.cat, hosts, pos, &mut self.scratch) {
                    return Verdict::Breaks(vec![hosts[pos].host]);
                }
                continue;
            }
            if !self.spend(step + moved * hosts.len() as u64 / 4) {
                return Verdict::Unknown;
            }
            let mut state = hosts.to_vec();
            let (dead, misfit) = fail(self.cat, &mut state, pos);
            if misfit.is_some() {
                return Verdict::Breaks(vec![dead.host]);
            }
            match self.dfs(&state, d - 1) {
                Verdict::Safe => {}
                Verdict::Breaks(mut seq) => {
                    seq.insert(0, dead.host);
                    return Verdict::Breaks(seq);
                }
                Verdict::Unknown => return Verdict::Unknown,
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
}

/// One position per class of identical hosts, most dangerous to lose first: the hosts whose
/// loss moves the most memory, so that failing sequences are found early.
fn danger_order(hosts: &[Shape]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..hosts.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ha, hb) = (&hosts[a], &hosts[b]);
        hb.load.cmp(&ha.load).then_with(|| preference(ha, hb))
    });
    // Identical shapes differ only by host number, so they are adjacent after this sort.
    idx.dedup_by(|a, b| same(&hosts[*a], &hosts[*b]));
    idx
}

/// A key equal exactly for states that are the same up to renaming hosts: each host is written
/// as its free memory and its (size class, count) runs, and the hosts are sorted. Such states
/// have the same future under the placement rule (see `docs/planner.md`, "Symmetry").
fn canonical(hosts: &[Shape]) -> Vec<i64> {
    let mut parts: Vec<Vec<i64>> = hosts
        .iter()
        .map(|h| {
            let mut p = Vec::with_capacity(2 + 2 * h.runs.len());
            p.push(h.free);
            p.push(h.runs.len() as i64);
            for &(c, n) in &h.runs {
                p.push(i64::from(c));
                p.push(i64::from(n));
            }
            p
        })
        .collect();
    parts.sort_unstable();
    parts.concat()
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
    hosts: &[Shape],
    safe_depth: usize,
    targets: usize,
) -> Option<Vec<u32>> {
    let mut present: Vec<u32> = hosts
        .iter()
        .flat_map(|h| h.runs.iter().map(|&(c, _)| c))
        .collect();
    present.sort_unstable();
    present.dedup();
    let mut aims: Vec<Option<i64>> = vec![None];
    aims.extend(
        present
            .into_iter()
            .take(targets)
            .map(|c| Some(cat.class_size[c as usize])),
    );

    let mut best: Option<Vec<u32>> = None;
    let mut scratch = Vec::new();
    for aim in aims {
        let mut state = hosts.to_vec();
        let mut seq: Vec<u32> = Vec::new();
        loop {
            let limit = best.as_ref().map_or(usize::MAX, |s| s.len() - 1);
            if state.is_empty() || seq.len() >= limit {
                break;
            }
            if seq.len() >= safe_depth {
                if let Some(p) = (0..state.len()).find(|&p| !fits(cat, &state, p, &mut scratch)) {
                    seq.push(state[p].host);
                    best = Some(seq);
                    break;
                }
            }
            let score = |h: &Shape| match aim {
                None => h.load as i128,
                Some(s) => h.load as i128 + (h.free as i128 - s as i128 + 1).max(0),
            };
            let pos = (0..state.len())
                .max_by(|&a, &b| {
                    score(&state[a])
                        .cmp(&score(&state[b]))
                        .then_with(|| preference(&state[a], &state[b]))
                })
                .expect("non-empty");
            let (dead, misfit) = fail(cat, &mut state, pos);
            seq.push(dead.host);
            if misfit.is_some() {
                best = Some(seq);
                break;
            }
        }
    }
    best
}
