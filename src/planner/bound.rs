//! Cheap proofs that no sequence of `d` more host failures can break the plan.
//!
//! This module owns the certificates the search uses to stop early and to answer conservatively
//! when its budget runs out. A certificate may say "don't know" as often as it likes, but it must
//! never say "safe" for a state where some failure sequence of the placement rule leaves a VM
//! out: the proofs are in `docs/planner.md` ("Certificates"). It must never simulate failures.
//!
//! Both certificates look at the moment a VM `x` of size `s` does not fit, after the hosts in `F`
//! (`|F| <= d`) have failed. At that moment every survivor has less than `s` free, and everything
//! placed on the survivors came from `F` (VMs only move when their host fails), except `x` itself
//! which also came from `F` but was not placed.
//!
//! * **Slots** (generalises xapi's approximation): for any unit `u >= s > 0`, a host with `f` free
//!   has `floor(f/u)` slots, a VM of size `t` uses at most `ceil(t/u)` of them, and `x` needs one.
//!   A failure needs `W_u(F) + slots_u(F) > slots_u(all)`, where `W_u` counts VMs in units.
//! * **Memory**: every survivor `h` has received at least `f_h - s + 1` bytes, so a failure needs
//!   `M(F) + sum over F of (f_h - s + 1)^+ >= T_s + s` with `T_s` the sum over all hosts.
//!
//! Both get sharper for the size `s` itself: the VMs smaller than `s` on the host that fails last
//! come after `x` in its packing, so they were never placed and can be subtracted.
//!
//! Maximising the left-hand sides over all `F` of size `d` (and the choice of the last host) is
//! taking the `d` largest per-host terms, so the checks cost a sort.

use super::placement::Catalog;
use super::shape::Shape;

/// How many distinct VM sizes get their own slot unit; beyond this, units are spread over the
/// sizes present (any unit `u >= s` is a valid proof for a VM of size `s`).
const MAX_UNITS: usize = 24;

/// Whether no sequence of `d` failures among `hosts` can leave a VM out. `false` means "unknown".
pub(crate) fn certified_safe(cat: &Catalog, hosts: &[Shape], d: usize) -> bool {
    if d == 0 {
        return true;
    }
    let vm_count: u32 = hosts.iter().map(|h| h.count).sum();
    if vm_count == 0 {
        return hosts.len() >= d;
    }
    if hosts.len() <= d {
        return false;
    }
    // All hosts' (size class, count) runs in one array; the work below is per distinct size.
    let mut runs: Vec<(usize, i64)> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(hosts.len());
    let mut present = vec![false; cat.class_size.len()];
    for h in hosts {
        for &(c, n) in &h.runs {
            runs.push((c as usize, i64::from(n)));
            present[c as usize] = true;
        }
        ends.push(runs.len());
    }
    let classes: Vec<usize> = (0..present.len()).filter(|&c| present[c]).collect();
    let units: Vec<usize> = if classes.len() <= MAX_UNITS {
        classes.clone()
    } else {
        (0..MAX_UNITS)
            .map(|k| classes[k * (classes.len() - 1) / (MAX_UNITS - 1)])
            .collect()
    };

    let mut terms: Vec<i128> = Vec::with_capacity(hosts.len());
    let mut units_per_vm = vec![0i64; cat.class_size.len()];
    // slot_ok[k]: the slot proof with unit `units[k]` holds.
    let mut slot_ok = Vec::with_capacity(units.len());
    for &c in &units {
        let u = cat.class_size[c];
        if u <= 0 {
            slot_ok.push(false);
            continue;
        }
        for &k in &classes {
            units_per_vm[k] = (cat.class_size[k] + u - 1) / u;
        }
        terms.clear();
        let mut total: i128 = 0;
        let mut start = 0;
        for (h, &end) in hosts.iter().zip(&ends) {
            let slots = (h.free.max(0) / u) as i128;
            total += slots;
            let need: i128 = runs[start..end]
                .iter()
                .map(|&(k, n)| (n * units_per_vm[k]) as i128)
                .sum();
            start = end;
            terms.push(need + slots);
        }
        slot_ok.push(top_sum(&mut terms, d) <= total);
    }
    // For each size present: some unit at least as large proves it, or the refined proofs do.
    let mut small = vec![0i128; hosts.len()];
    let mut k = 0; // units[..k] are the units at least as large as the class being checked
    for &c in &classes {
        while k < units.len() && units[k] <= c {
            k += 1;
        }
        let s = cat.class_size[c];
        if s > 0 && slot_ok[..k].iter().any(|&ok| ok) {
            continue;
        }
        // Refined slot proof with unit exactly `s`: the last host to fail still holds its VMs
        // smaller than `s`, which come after the one that does not fit.
        if s > 0 {
            for &k in &classes {
                units_per_vm[k] = (cat.class_size[k] + s - 1) / s;
            }
            terms.clear();
            let mut total: i128 = 0;
            let mut start = 0;
            for (i, (h, &end)) in hosts.iter().zip(&ends).enumerate() {
                let slots = (h.free.max(0) / s) as i128;
                total += slots;
                let (mut need, mut later) = (0i128, 0i128);
                for &(k, n) in &runs[start..end] {
                    let used = (n * units_per_vm[k]) as i128;
                    need += used;
                    if k > c {
                        later += used;
                    }
                }
                start = end;
                terms.push(need + slots);
                small[i] = later;
            }
            if top_with_last(&terms, &small, d) <= total {
                continue;
            }
        }
        // Refined memory proof, the same remark in bytes.
        terms.clear();
        let mut total: i128 = 0;
        let mut start = 0;
        for (i, (h, &end)) in hosts.iter().zip(&ends).enumerate() {
            let room = (h.free as i128 - s as i128 + 1).max(0);
            total += room;
            terms.push(h.load as i128 + room);
            small[i] = runs[start..end]
                .iter()
                .filter(|&&(k, _)| k > c)
                .map(|&(k, n)| (n * cat.class_size[k]) as i128)
                .sum();
            start = end;
        }
        if top_with_last(&terms, &small, d) >= total + s as i128 {
            return false;
        }
    }
    true
}

/// The largest `sum over F of terms - later[last]` over sets `F` of `d` hosts (`d >= 1`) and a
/// host `last` in `F`: the adversary picks the failed set and which of them fails last.
fn top_with_last(terms: &[i128], later: &[i128], d: usize) -> i128 {
    let mut order: Vec<usize> = (0..terms.len()).collect();
    let d = d.clamp(1, terms.len());
    // Partition, no full sort: order[..d] are the d largest terms, order[d - 1] the smallest of them.
    order.select_nth_unstable_by(d - 1, |&a, &b| terms[b].cmp(&terms[a]));
    let top: i128 = order[..d].iter().map(|&i| terms[i]).sum();
    let weakest = order[..d].iter().map(|&i| terms[i]).min().unwrap_or(0);
    let inside = order[..d].iter().map(|&j| top - later[j]).max();
    let outside = order[d..]
        .iter()
        .map(|&j| top - weakest + terms[j] - later[j])
        .max();
    inside.max(outside).unwrap_or(0)
}

/// Sum of the `d` largest values (all of them if fewer).
fn top_sum(values: &mut [i128], d: usize) -> i128 {
    if d >= values.len() {
        return values.iter().sum();
    }
    values.select_nth_unstable_by(d, |a, b| b.cmp(a));
    values[..d].iter().sum()
}

/// xapi's approximate rule (`Binpack.approximate_bin_pack`), ported for comparison only.
///
/// `counts[h]` and `free[h]` describe each available host; `max_vm` is the largest protected VM.
/// Returns xapi's `plan_always_possible` for `r` failures. xapi raises on `max_vm = 0` (division
/// by zero) and reports no plan; so does this port.
pub fn xapi_approximation_holds(free: &[i64], counts: &[usize], max_vm: i64, r: usize) -> bool {
    let hosts = free.len();
    let vms: usize = counts.iter().sum();
    if hosts < r || (hosts == r && vms > 0) {
        return false;
    }
    if vms == 0 {
        return true;
    }
    if max_vm <= 0 {
        return false;
    }
    let mut capacity: Vec<i64> = free.iter().map(|&f| f / max_vm).collect();
    capacity.sort_unstable_by(|a, b| b.cmp(a));
    let left: i64 = capacity[r..].iter().sum();
    let mut busiest = counts.to_vec();
    busiest.sort_unstable_by(|a, b| b.cmp(a));
    let to_move: usize = busiest[..r].iter().sum();
    (to_move as i64) <= left
}

#[cfg(test)]
mod tests {
    use super::super::placement::HostState;
    use super::*;

    fn hosts(cat: &Catalog, spec: &[(i64, &[u32])]) -> Vec<Shape> {
        spec.iter()
            .enumerate()
            .map(|(i, (free, vms))| {
                let h = HostState {
                    host: i as u32,
                    free: *free,
                    load: vms.iter().map(|&v| cat.size[v as usize]).sum(),
                    vms: vms.to_vec(),
                };
                Shape::of(cat, &h)
            })
            .collect()
    }

    #[test]
    fn two_hosts_each_with_room_for_the_other_are_safe_for_one_failure_only() {
        let cat = Catalog::from_sorted_sizes(vec![4, 4]);
        let hs = hosts(&cat, &[(6, &[0]), (6, &[1])]);
        assert!(certified_safe(&cat, &hs, 1));
        assert!(!certified_safe(&cat, &hs, 2));
    }

    #[test]
    fn full_hosts_are_not_certified() {
        let cat = Catalog::from_sorted_sizes(vec![4, 4]);
        let hs = hosts(&cat, &[(3, &[0]), (3, &[1]), (3, &[])]);
        assert!(!certified_safe(&cat, &hs, 1));
    }

    #[test]
    fn the_memory_proof_covers_a_host_whose_room_is_not_whole_slots() {
        // One VM of 3 and one of 2 on host 0; host 1 has 5 free: 1 slot of 3, but room for both.
        let cat = Catalog::from_sorted_sizes(vec![3, 2]);
        let hs = hosts(&cat, &[(0, &[0, 1]), (5, &[]), (0, &[])]);
        assert!(certified_safe(&cat, &hs, 1));
    }

    #[test]
    fn xapi_port_matches_the_reference_example() {
        // B2: 8 hosts of 500 with one 400 VM each, r = 5: capacity 1 each, 5 to move, 3 left.
        let free = vec![100; 8];
        assert!(!xapi_approximation_holds(&free, &[1; 8], 400, 5));
        let free = vec![500; 8];
        assert!(xapi_approximation_holds(&free, &[1; 8], 400, 4));
    }
}
