//! The master lock as the agent runs it: requests, grants, claiming an epoch, losing mastership.
//!
//! It must never report mastership before the new epoch is durably in the global section.

use super::*;

impl Agent {
    pub(super) fn run_lock(&mut self, fresh_global: Option<GlobalSection>) {
        let all_members = match self.phase {
            Phase::Online | Phase::FaultHandling => self.current,
            Phase::Joining => self.join_members.union(&HostSet::single(self.me)),
            _ => return,
        };
        let members = all_members;
        let mut grants: Vec<Option<usize>> = self
            .sections
            .iter()
            .map(|s| s.as_ref().and_then(|s| s.lock_grant.map(|g| g as usize)))
            .collect();
        grants[self.me] = self.lock_grant;
        let mut requesters: HostSet = members
            .iter()
            .filter(|&i| self.sections[i].as_ref().is_some_and(|s| s.lock_request))
            .collect();
        if self.lock_request {
            requesters.insert(self.me);
        } else {
            requesters.remove(self.me);
        }
        // Only settled members vote: a member whose section shows it restarting, joining or
        // not yet armed has no meaningful grant (its old incarnation's grant died with it).
        let members: HostSet = members
            .iter()
            .filter(|&m| {
                m == self.me
                    || self.sections[m].as_ref().is_some_and(|s| {
                        matches!(
                            s.phase,
                            Phase::Online | Phase::FaultHandling | Phase::Disarmed
                        )
                    })
            })
            .collect();
        let all_settled = members == all_members;
        let holder = lock::holder(&members, &grants);
        if let Some(epoch) = self.master_epoch {
            if holder != Some(self.me) {
                self.master_epoch = None;
                self.out.push_back(Output::LostMastership {
                    epoch,
                    reason: "lock no longer held",
                });
            }
        }
        if self.armed && self.phase.is_member() {
            // Ask as soon as the holder is being removed: grants cannot move before it is
            // dropped (at its fence deadline), but the election then takes one cycle, not three.
            let holder_leaving = holder.is_some_and(|h| self.pending.iter().any(|(p, _)| *p == h));
            // New requests wait until every member has settled (armed and published), so
            // the first election after enable or a reboot is not decided by a partial vote.
            // Before the first master of this generation, only the designated first master
            // asks, as long as it is a member that is not being removed.
            let first = self
                .cfg
                .first_master
                .and_then(|u| self.cfg.index_of(&u))
                .filter(|&f| {
                    self.known_epoch == 0
                        && self.current.contains(f)
                        && !self.pending.iter().any(|(p, _)| *p == f)
                });
            let my_turn = first.is_none_or(|f| f == self.me);
            self.lock_request = holder == Some(self.me)
                || (my_turn && all_settled && (holder.is_none() || holder_leaving));
            if self.lock_request {
                requesters.insert(self.me);
            } else {
                requesters.remove(self.me);
            }
        }
        let am_master = self.master_epoch.is_some() || self.claiming.is_some();
        self.lock_grant = lock::choose_grant(self.me, am_master, &members, &requesters, &grants);
        if self.master_epoch.is_none()
            && self.claiming.is_none()
            && holder == Some(self.me)
            && self.armed
        {
            // A corrupt global section is rewritten from scratch: the epoch then comes from
            // the highest one any member has published (sections and heartbeats carry it), and
            // the old master published its epoch before it could let the lock go.
            let epoch_seen = fresh_global.as_ref().map_or(0, |g| g.epoch);
            let epoch = epoch_seen.max(self.known_epoch) + 1;
            self.claiming = Some(epoch);
            self.global_write = Some(GlobalSection {
                generation: self.cfg.generation,
                pool_state: PoolState::Active,
                config_hosts: self.n as u16,
                master: Some(self.me as u16),
                master_uuid: self.cfg.hosts[self.me],
                epoch,
            });
            self.next_sf = self.now;
        }
    }

    pub(super) fn lose_mastership(&mut self, reason: &'static str) {
        if let Some(epoch) = self.master_epoch.take() {
            self.out.push_back(Output::LostMastership { epoch, reason });
        }
        self.claiming = None;
    }
}
