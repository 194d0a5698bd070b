//! The host as the search sees it: free memory and how many VMs of each size it holds.
//!
//! This module owns the placement rule restricted to what decides its outcome. VM identities
//! are dropped (equal-sized VMs are interchangeable), so copying a state costs a few words per
//! host instead of one per VM. It must make exactly the choices `placement` makes on the
//! corresponding concrete state; the planner replays every breaking sequence it finds with the
//! concrete rule, and the property tests compare both against brute force.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::placement::{Catalog, HostState};

/// A surviving host, abstracted to what the placement rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The planner's host number (only breaks ties between identical shapes).
    pub host: u32,
    /// Free memory in bytes.
    pub free: i64,
    /// Total size of the protected agile VMs resident here.
    pub load: i64,
    /// Number of those VMs.
    pub count: u32,
    /// (size class, number of VMs), class ascending, so largest VMs first.
    pub runs: Vec<(u32, u32)>,
}

impl Shape {
    /// The shape of a concrete host.
    pub fn of(cat: &Catalog, h: &HostState) -> Shape {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &v in &h.vms {
            let c = cat.class[v as usize];
            match runs.last_mut() {
                Some((last, n)) if *last == c => *n += 1,
                _ => runs.push((c, 1)),
            }
        }
        Shape {
            host: h.host,
            free: h.free,
            load: h.load,
            count: h.vms.len() as u32,
            runs,
        }
    }

    fn add(&mut self, class: u32, size: i64) {
        self.free -= size;
        self.load += size;
        self.count += 1;
        match self.runs.binary_search_by_key(&class, |&(c, _)| c) {
            Ok(i) => self.runs[i].1 += 1,
            Err(i) => self.runs.insert(i, (class, 1)),
        }
    }
}

/// The same order as `placement::preference`: `Greater` means `a` receives the next VM.
pub(crate) fn preference(a: &Shape, b: &Shape) -> Ordering {
    a.free
        .cmp(&b.free)
        .then_with(|| b.count.cmp(&a.count))
        .then_with(|| class_sequence_cmp(&a.runs, &b.runs))
        .then_with(|| b.host.cmp(&a.host))
}

/// Lexicographic order of the class sequences the runs stand for.
fn class_sequence_cmp(a: &[(u32, u32)], b: &[(u32, u32)]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let (mut left_a, mut left_b) = (a.first().map_or(0, |r| r.1), b.first().map_or(0, |r| r.1));
    loop {
        match (i < a.len(), j < b.len()) {
            (false, false) => return Ordering::Equal,
            (false, true) => return Ordering::Less,
            (true, false) => return Ordering::Greater,
            (true, true) => {}
        }
        match a[i].0.cmp(&b[j].0) {
            Ordering::Equal => {}
            other => return other,
        }
        let step = left_a.min(left_b);
        left_a -= step;
        left_b -= step;
        if left_a == 0 {
            i += 1;
            left_a = a.get(i).map_or(0, |r| r.1);
        }
        if left_b == 0 {
            j += 1;
            left_b = b.get(j).map_or(0, |r| r.1);
        }
    }
}

/// Whether two hosts are interchangeable for every future decision of the rule.
pub(crate) fn same(a: &Shape, b: &Shape) -> bool {
    a.free == b.free && a.runs == b.runs
}

/// Removes the host at `pos` and restarts its VMs on the others. Returns the removed host and,
/// if a VM did not fit, its size class (the packing stops there).
pub(crate) fn fail(cat: &Catalog, hosts: &mut Vec<Shape>, pos: usize) -> (Shape, Option<u32>) {
    let dead = hosts.remove(pos);
    for &(class, n) in &dead.runs {
        let size = cat.class_size[class as usize];
        for _ in 0..n {
            let mut best: Option<usize> = None;
            for (i, h) in hosts.iter().enumerate() {
                best = match best {
                    Some(b)
                        if h.free < hosts[b].free
                            || (h.free == hosts[b].free
                                && preference(h, &hosts[b]) != Ordering::Greater) =>
                    {
                        Some(b)
                    }
                    _ => Some(i),
                };
            }
            match best {
                Some(b) if hosts[b].free >= size => hosts[b].add(class, size),
                _ => return (dead, Some(class)),
            }
        }
    }
    (dead, None)
}

/// Whether failing the host at `pos` leaves every VM placed. Which of several equally free hosts
/// gets a VM never changes that, so free memory is all this looks at.
pub(crate) fn fits(cat: &Catalog, hosts: &[Shape], pos: usize, scratch: &mut Vec<i64>) -> bool {
    if hosts[pos].count == 0 {
        return true;
    }
    scratch.clear();
    scratch.extend(
        hosts
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != pos)
            .map(|(_, h)| h.free),
    );
    let mut heap = BinaryHeap::from(std::mem::take(scratch));
    let mut ok = !heap.is_empty();
    'outer: for &(class, n) in &hosts[pos].runs {
        let size = cat.class_size[class as usize];
        for _ in 0..n {
            match heap.peek_mut() {
                Some(mut top) if *top >= size => *top -= size,
                _ => {
                    ok = false;
                    break 'outer;
                }
            }
        }
    }
    *scratch = heap.into_vec();
    ok
}

#[cfg(test)]
mod tests {
    use super::super::placement::{fail_host, preference as concrete_preference};
    use super::*;

    fn host(cat: &Catalog, host: u32, free: i64, vms: Vec<u32>) -> HostState {
        let load = vms.iter().map(|&v| cat.size[v as usize]).sum();
        HostState {
            host,
            free,
            load,
            vms,
        }
    }

    #[test]
    fn shapes_rank_hosts_exactly_like_the_concrete_rule() {
        let cat = Catalog::from_sorted_sizes(vec![8, 8, 5, 5, 5, 2, 2, 1]);
        let hosts = [
            host(&cat, 0, 10, vec![0, 2]),
            host(&cat, 1, 10, vec![1, 3]),
            host(&cat, 2, 10, vec![2, 5]),
            host(&cat, 3, 10, vec![4, 6, 7]),
            host(&cat, 4, 10, vec![]),
            host(&cat, 5, 11, vec![0]),
        ];
        for a in &hosts {
            for b in &hosts {
                let shape = preference(&Shape::of(&cat, a), &Shape::of(&cat, b));
                assert_eq!(shape, concrete_preference(&cat, a, b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_shape_failure_lands_where_the_concrete_one_does() {
        let cat = Catalog::from_sorted_sizes(vec![6, 5, 5, 3, 3, 2, 1]);
        let concrete = vec![
            host(&cat, 0, 4, vec![0, 3]),
            host(&cat, 1, 9, vec![1]),
            host(&cat, 2, 9, vec![2, 4]),
            host(&cat, 3, 6, vec![5, 6]),
        ];
        for pos in 0..concrete.len() {
            let mut c = concrete.clone();
            let (_, misfits) = fail_host(&cat, &mut c, pos, true, |_, _| {});
            let mut s: Vec<Shape> = concrete.iter().map(|h| Shape::of(&cat, h)).collect();
            let (_, misfit) = fail(&cat, &mut s, pos);
            assert_eq!(misfit, misfits.first().map(|m| cat.class[m.vm as usize]));
            if misfit.is_none() {
                let expected: Vec<Shape> = c.iter().map(|h| Shape::of(&cat, h)).collect();
                assert_eq!(s, expected);
            }
        }
    }
}
