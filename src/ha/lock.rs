//! The master lock kept in the statefile (xha's `lock_mgr.c` grant scheme).
//!
//! Owns two pure rules: who a host grants the lock to, and who holds it. Each host publishes a
//! request flag and one grant in its own statefile section. A host *holds* the lock when it is
//! in the liveset and every liveset member grants to it; simultaneous requests resolve to the
//! lowest index (lowest UUID) because everybody grants to the lowest requester; a holder keeps
//! its grants while it still requests, and a master grants only itself, so a second holder can
//! only appear after the first has stopped being master. It must never read the statefile or
//! the clock: the agent hands it the grants it read.

use super::HostSet;

/// The host every member of `members` grants to, if any, and it is itself a member.
pub fn holder(members: &HostSet, grants: &[Option<usize>]) -> Option<usize> {
    let first = members.first()?;
    let j = grants.get(first).copied().flatten()?;
    let all = members
        .iter()
        .all(|m| grants.get(m).copied().flatten() == Some(j));
    (all && members.contains(j)).then_some(j)
}

/// Who `me` grants to. A master grants itself; a current holder that still requests keeps its
/// grants; otherwise the lowest-index requester among the members gets them.
pub fn choose_grant(
    me: usize,
    am_master: bool,
    members: &HostSet,
    requesters: &HostSet,
    grants: &[Option<usize>],
) -> Option<usize> {
    if am_master {
        return Some(me);
    }
    let requesting = requesters.intersection(members);
    if let Some(h) = holder(members, grants) {
        if requesting.contains(h) {
            return Some(h);
        }
    }
    requesting.first()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simultaneous_requests_go_to_the_lowest_and_holders_are_sticky() {
        let members = HostSet::first_n(3);
        let req: HostSet = [1, 2].into_iter().collect();
        let none = [None, None, None];
        for me in 0..3 {
            assert_eq!(choose_grant(me, false, &members, &req, &none), Some(1));
        }
        assert_eq!(holder(&members, &[Some(1), Some(1), Some(1)]), Some(1));
        assert_eq!(holder(&members, &[Some(1), Some(2), Some(1)]), None);
        // h2 holds; h0 now requests too (lower UUID) but may not steal a held lock.
        let req: HostSet = [0, 2].into_iter().collect();
        let held = [Some(2), Some(2), Some(2)];
        assert_eq!(choose_grant(1, false, &members, &req, &held), Some(2));
        // The holder left the liveset: grants move to the lowest remaining requester.
        let members2: HostSet = [0, 1].into_iter().collect();
        assert_eq!(holder(&members2, &held), None);
        assert_eq!(choose_grant(1, false, &members2, &req, &held), Some(0));
        // A master grants only itself, whoever else asks.
        assert_eq!(choose_grant(2, true, &members, &req, &held), Some(2));
    }
}
