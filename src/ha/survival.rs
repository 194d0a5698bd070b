//! The survival rules: who keeps running after a fault, and why.
//!
//! Owns xha's `test_Survival_Rule` as a pure function over a snapshot of views, returning a
//! structured [`Decision`] that says which rule held (or that none did), which views it used and
//! which hosts the survivor removes. The daemon logs it and `xe` shows it. It must never look at
//! anything but its arguments: the same views give the same decision on every host.
//!
//! Notation (xha): `hbd = hbdomain ∩ current`, `sfd = sfdomain ∩ current`; `raw[i]` is host
//! *i*'s own published domains, read from its statefile section.
//!
//! * Rule 1a: `sfd ⊆ hbd` and `sfd ≠ ∅` — everyone alive on the statefile is reachable.
//! * Rule 1b: I am in the best partition: for each `i ∈ sfd`, size(i) = |raw[i].sfdomain ∩
//!   raw[i].hbdomain|; the largest wins and ties go to the lowest index (lowest UUID). I win if I
//!   am that host, or if its raw views hold me on both channels and I hold it on both.
//! * Rule 2: every configured host is either reachable and without statefile access, or
//!   unreachable and cleanly excluded. Then the statefile's loss is survived (and further
//!   statefile losses are ignored until it returns).
//!
//! A winner removes every current member that is not in `hbd`, or not in `sfd` unless surviving
//! by rule 2.

use super::HostSet;
use std::fmt;

/// One host's published domains, from its statefile section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawView {
    /// That host's statefile domain.
    pub sfdomain: HostSet,
    /// That host's heartbeat domain.
    pub hbdomain: HostSet,
}

/// Everything the rules look at.
#[derive(Clone, Debug)]
pub struct Views<'a> {
    /// The deciding host.
    pub me: usize,
    /// Every configured host.
    pub configured: HostSet,
    /// The current liveset.
    pub current: HostSet,
    /// My heartbeat domain.
    pub hbdomain: HostSet,
    /// My statefile domain.
    pub sfdomain: HostSet,
    /// Each host's published views (None: never read, or its section is corrupt).
    pub raw: &'a [Option<RawView>],
    /// Hosts known to have statefile access (me from my own domain, peers from heartbeats).
    pub sf_access: HostSet,
    /// Hosts cleanly excluded (shut down through the API).
    pub excluded: HostSet,
}

/// Which rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Rule 1, first clause: `sfd ⊆ hbd`, `sfd` not empty.
    StatefileWithinHeartbeat,
    /// Rule 1, best partition, led by `leader`.
    BestPartition {
        /// Lowest-index host of the largest partition.
        leader: usize,
    },
    /// Rule 2: the statefile is lost everywhere reachable and every absent host is excluded.
    StatefileLostEverywhere,
    /// No rule holds: fence.
    NoRule,
}

/// A survival decision with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The deciding host.
    pub me: usize,
    /// Keep running?
    pub survive: bool,
    /// The rule that decided.
    pub rule: Rule,
    /// `hbdomain ∩ current` used.
    pub hbd: HostSet,
    /// `sfdomain ∩ current` used.
    pub sfd: HostSet,
    /// Partition sizes computed for rule 1b, by host.
    pub sizes: Vec<(usize, usize)>,
    /// The host that made rule 2 fail, if it was evaluated and failed.
    pub rule2_blocker: Option<usize>,
    /// Hosts the survivor removes from the liveset (empty when fencing).
    pub remove: HostSet,
}

impl Decision {
    /// True when survival rests on rule 2 (statefile lost everywhere).
    pub fn sr2(&self) -> bool {
        self.rule == Rule::StatefileLostEverywhere
    }
}

/// Partition sizes as `h0..h31=32 h32=1`: consecutive hosts with the same size share a range.
struct Sizes<'a>(&'a [(usize, usize)]);

impl fmt::Display for Sizes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let mut i = 0;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1].0 == v[j].0 + 1 && v[j + 1].1 == v[i].1 {
                j += 1;
            }
            if j > i {
                write!(f, " h{}..h{}={}", v[i].0, v[j].0, v[i].1)?;
            } else {
                write!(f, " h{}={}", v[i].0, v[i].1)?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.survive { "survive" } else { "fence" };
        match self.rule {
            Rule::StatefileWithinHeartbeat => write!(
                f,
                "{verdict}: rule 1 (sfd {} within hbd {})",
                self.sfd, self.hbd
            )?,
            Rule::BestPartition { leader } => {
                write!(
                    f,
                    "{verdict}: rule 1 (best partition led by h{leader}; sizes{}; hbd {} sfd {})",
                    Sizes(&self.sizes),
                    self.hbd,
                    self.sfd
                )?;
            }
            Rule::StatefileLostEverywhere => write!(
                f,
                "{verdict}: rule 2 (statefile lost by all of hbd {}, all others excluded)",
                self.hbd
            )?,
            Rule::NoRule => {
                write!(
                    f,
                    "{verdict}: no rule holds (hbd {} sfd {}",
                    self.hbd, self.sfd
                )?;
                if !self.sizes.is_empty() {
                    write!(f, "; sizes{}", Sizes(&self.sizes))?;
                }
                if let Some(b) = self.rule2_blocker {
                    write!(f, "; rule 2 blocked by h{b}")?;
                }
                f.write_str(")")?;
            }
        }
        if !self.remove.is_empty() {
            write!(f, "; remove {}", self.remove)?;
        }
        Ok(())
    }
}

/// Applies the survival rules to one snapshot of views.
pub fn decide(v: &Views<'_>) -> Decision {
    let hbd = v.hbdomain.intersection(&v.current);
    let sfd = v.sfdomain.intersection(&v.current);
    let mut d = Decision {
        me: v.me,
        survive: false,
        rule: Rule::NoRule,
        hbd,
        sfd,
        sizes: Vec::new(),
        rule2_blocker: None,
        remove: HostSet::EMPTY,
    };
    if !sfd.is_empty() && sfd.is_subset(&hbd) {
        d.survive = true;
        d.rule = Rule::StatefileWithinHeartbeat;
    } else if let Some(leader) = best_partition(v, &sfd, &hbd, &mut d.sizes) {
        d.survive = true;
        d.rule = Rule::BestPartition { leader };
    } else {
        d.rule2_blocker = v.configured.iter().find(|&i| {
            let reachable_with_sf = hbd.contains(i) && v.sf_access.contains(i);
            let absent_not_excluded = !hbd.contains(i) && !v.excluded.contains(i);
            reachable_with_sf || absent_not_excluded
        });
        if d.rule2_blocker.is_none() {
            d.survive = true;
            d.rule = Rule::StatefileLostEverywhere;
        }
    }
    if d.survive {
        let sr2 = d.sr2();
        d.remove = v
            .current
            .iter()
            .filter(|&i| i != v.me && (!hbd.contains(i) || (!sfd.contains(i) && !sr2)))
            .collect();
    }
    d
}

/// Rule 1b: returns the leader if I win by it.
fn best_partition(
    v: &Views<'_>,
    sfd: &HostSet,
    hbd: &HostSet,
    sizes: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for i in sfd.iter() {
        let size = if i == v.me {
            v.sfdomain.intersection(&v.hbdomain).len()
        } else {
            v.raw
                .get(i)
                .copied()
                .flatten()
                .map_or(0, |r| r.sfdomain.intersection(&r.hbdomain).len())
        };
        sizes.push((i, size));
        // Strictly greater: ties keep the lower index, i.e. the lower UUID.
        if size > 0 && best.is_none_or(|(_, s)| size > s) {
            best = Some((i, size));
        }
    }
    let (w, _) = best?;
    if w == v.me {
        return Some(w);
    }
    let holds_me = v
        .raw
        .get(w)
        .copied()
        .flatten()
        .is_some_and(|r| r.sfdomain.contains(v.me) && r.hbdomain.contains(v.me));
    (holds_me && sfd.contains(w) && hbd.contains(w)).then_some(w)
}

/// xha's consistent-view merge (FH2 timed out, e.g. a non-transitive partition): greedily
/// set aside the candidate with the fewest heartbeat connections until the rest form a clique
/// in which everyone hears everyone. Ties keep hosts whose domain holds a lower index, then
/// lower indices (the scan runs from the highest index down and replaces only on strictly
/// smaller scores). Every host computing it from the same domains gets the same clique.
pub fn merge_clique(candidates: HostSet, hbdomains: &[HostSet]) -> HostSet {
    // Only two-way links count: i and j are connected when each hears the other.
    let mut doms: Vec<HostSet> = (0..hbdomains.len())
        .map(|i| {
            (0..hbdomains.len())
                .filter(|&j| i == j || (hbdomains[i].contains(j) && hbdomains[j].contains(i)))
                .collect()
        })
        .collect();
    let mut rest = candidates;
    loop {
        let mut pick: Option<(usize, usize)> = None;
        for i in rest.iter().collect::<Vec<_>>().into_iter().rev() {
            let d = doms[i].intersection(&rest);
            let score =
                d.len() * 0x100 + (super::MAX_HOSTS - d.first().unwrap_or(super::MAX_HOSTS));
            if pick.is_none_or(|(_, s)| score < s) {
                pick = Some((i, score));
            }
        }
        let Some((i, _)) = pick else { return rest };
        if rest.is_subset(&doms[i]) {
            return rest;
        }
        rest.remove(i);
        for d in doms.iter_mut() {
            d.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn merge_finds_the_same_clique_everywhere() {
        use super::merge_clique;
        let set = |v: &[usize]| -> super::HostSet { v.iter().copied().collect() };
        // Non-transitive partition: h2 and h3 cannot talk, both talk to h0 and h1.
        let doms = [
            set(&[0, 1, 2, 3]),
            set(&[0, 1, 2, 3]),
            set(&[0, 1, 2]),
            set(&[0, 1, 3]),
        ];
        assert_eq!(merge_clique(set(&[0, 1, 2, 3]), &doms), set(&[0, 1, 2]));
        // A star: only h0 hears everyone; the clique is h0 plus its lowest partner.
        let doms = [set(&[0, 1, 2]), set(&[0, 1]), set(&[0, 2])];
        assert_eq!(merge_clique(set(&[0, 1, 2]), &doms), set(&[0, 1]));
    }

    use super::*;

    fn set(v: &[usize]) -> HostSet {
        v.iter().copied().collect()
    }

    fn raw(sf: &[usize], hb: &[usize]) -> Option<RawView> {
        Some(RawView {
            sfdomain: set(sf),
            hbdomain: set(hb),
        })
    }

    fn views<'a>(
        me: usize,
        n: usize,
        hb: &[usize],
        sf: &[usize],
        raw: &'a [Option<RawView>],
    ) -> Views<'a> {
        Views {
            me,
            configured: HostSet::first_n(n),
            current: HostSet::first_n(n),
            hbdomain: set(hb),
            sfdomain: set(sf),
            raw,
            sf_access: HostSet::EMPTY,
            excluded: HostSet::EMPTY,
        }
    }

    /// The reference's §2.4 cases, as a table.
    #[test]
    fn reference_cases() {
        // 3 hosts, network cut around h2, storage fine: h0 and h1 survive, h2 fences.
        let r = [
            raw(&[0, 1, 2], &[0, 1]),
            raw(&[0, 1, 2], &[0, 1]),
            raw(&[0, 1, 2], &[2]),
        ];
        let d0 = decide(&views(0, 3, &[0, 1], &[0, 1, 2], &r));
        assert!(
            d0.survive && d0.rule == Rule::BestPartition { leader: 0 } && d0.remove == set(&[2])
        );
        let d1 = decide(&views(1, 3, &[0, 1], &[0, 1, 2], &r));
        assert!(d1.survive && d1.rule == Rule::BestPartition { leader: 0 });
        let d2 = decide(&views(2, 3, &[2], &[0, 1, 2], &r));
        assert!(!d2.survive && d2.rule2_blocker == Some(0));
        // 2 hosts, link cut: sizes 1 and 1, the lower UUID survives.
        let r = [raw(&[0, 1], &[0]), raw(&[0, 1], &[1])];
        assert!(decide(&views(0, 2, &[0], &[0, 1], &r)).survive);
        assert!(!decide(&views(1, 2, &[1], &[0, 1], &r)).survive);
        // One host loses the statefile: it fences; the others remove it by rule 1a.
        let mut v = views(2, 3, &[0, 1, 2], &[], &[]);
        v.sf_access = set(&[0, 1]);
        assert!(!decide(&v).survive);
        let d = decide(&views(0, 3, &[0, 1, 2], &[0, 1], &[]));
        assert!(d.survive && d.rule == Rule::StatefileWithinHeartbeat && d.remove == set(&[2]));
        // Everyone lost the statefile, network fine: rule 2, nobody removed.
        let d = decide(&views(1, 3, &[0, 1, 2], &[], &[]));
        assert!(d.survive && d.sr2() && d.remove.is_empty());
        // ... unless one host is down without being excluded: everyone fences.
        let d = decide(&views(1, 3, &[0, 1], &[], &[]));
        assert!(!d.survive && d.rule2_blocker == Some(2));
        // ... and survives if that host was cleanly excluded.
        let mut v = views(1, 3, &[0, 1], &[], &[]);
        v.excluded = set(&[2]);
        assert!(decide(&v).survive);
        assert!(decide(&views(
            0,
            3,
            &[0, 1],
            &[0, 1, 2],
            &[raw(&[0, 1, 2], &[0, 1]), None, None]
        ))
        .to_string()
        .contains("rule 1"));
    }

    /// Exhaustive over every partition of 4 hosts with consistent views and a working
    /// statefile: exactly one side survives, and it is the largest, ties to the lowest index.
    #[test]
    fn exactly_one_partition_survives() {
        let n = 4;
        for assign in 0..4usize.pow(n as u32) {
            let part: Vec<usize> = (0..n)
                .map(|i| (assign / 4usize.pow(i as u32)) % 4)
                .collect();
            let members = |p: usize| -> Vec<usize> { (0..n).filter(|&i| part[i] == p).collect() };
            let all: Vec<usize> = (0..n).collect();
            let raw: Vec<Option<RawView>> = (0..n).map(|i| raw(&all, &members(part[i]))).collect();
            let survivors: Vec<usize> = (0..n)
                .filter(|&i| decide(&views(i, n, &members(part[i]), &all, &raw)).survive)
                .collect();
            let best = (0..4)
                .map(members)
                .filter(|m| !m.is_empty())
                .max_by(|a, b| a.len().cmp(&b.len()).then(b[0].cmp(&a[0])))
                .unwrap();
            assert_eq!(survivors, best, "partition {part:?}");
        }
    }
}
