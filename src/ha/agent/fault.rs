//! The fault handler of an armed member: fault detection, the consistent-view wait and merge,
//! the survival decision, removals under their fence deadlines, the statefile arbitration of
//! conflicting removals, and the membership lease that gates the watchdog.
//!
//! It must never drop a host before its fence deadline, nor one still writing the statefile
//! as a member.

use super::*;

impl Agent {
    pub(super) fn member_step(&mut self) {
        // A failed enable disarms everywhere: a host that aborted right after we armed.
        if let Some(at) = self.enable_armed_at {
            if self.now < at + self.t.enable_join {
                let cur = self.current;
                let aborted = cur
                    .iter()
                    .find(|&p| self.peer_phase(p) == Some(Phase::Aborted));
                if let Some(p) = aborted {
                    self.disarm("enable failed on a peer");
                    self.phase = Phase::Aborted;
                    self.out.push_back(Output::StartFailed {
                        reason: format!("enable aborted by h{p}; disarmed"),
                    });
                    return;
                }
            }
        }
        let hbd = self.hbdomain();
        let sfd = self.sfdomain();
        let pending = self.pending_set();

        // Cleanly excluded members leave at once: they disarmed before writing the flag. So do
        // members whose admitted incarnation announces Aborted: a host aborts only before it
        // arms (a joiner whose Tboot ran out) or after disarming (a failed enable), so it
        // cannot act. A fence deadline for it would only hold back every other join and the
        // election (both wait for a settled liveset) for a whole lease.
        let gave_up: HostSet = self
            .current
            .iter()
            .filter(|&p| {
                self.peers.latest(p).is_some_and(|hb| {
                    hb.phase == Phase::Aborted && hb.sequence >> 32 == self.member_incarnation[p]
                })
            })
            .collect();
        let gone = self
            .current
            .intersection(&self.excluded)
            .union(&gave_up)
            .difference(&HostSet::single(self.me));
        if !gone.is_empty() {
            self.current = self.current.difference(&gone);
            self.pending.retain(|(h, _)| !gone.contains(*h));
            self.out.push_back(Output::LivesetChanged {
                liveset: self.current,
                added: HostSet::EMPTY,
                removed: gone,
            });
        }

        // Leave rule-2 survival once every reachable member has the statefile back.
        if self.sr2 {
            let back = hbd.intersection(&self.current).iter().all(|p| {
                if p == self.me {
                    self.sf_access()
                } else {
                    self.peers.latest(p).is_some_and(|hb| hb.sf_access)
                }
            });
            if back {
                self.sr2 = false;
                self.out.push_back(Output::Warning(
                    "statefile back everywhere: leaving survival rule 2".into(),
                ));
            }
        }

        // Admit joiners (xha's join protocol; blocked while handling a fault or removing a
        // host: the joiner must not arm next to a member we are about to drop).
        if self.fh_started.is_none() && pending.is_empty() {
            let joiners: HostSet = hbd
                .intersection(&sfd)
                .difference(&self.current)
                .iter()
                .filter(|&p| {
                    !pending.contains(p)
                        && self.peers.latest(p).is_some_and(|hb| {
                            hb.phase == Phase::Joining && hb.proposed.contains(self.me)
                        })
                })
                .collect();
            if !joiners.is_empty() {
                self.admit(joiners);
                self.current = self.current.union(&joiners);
                self.out.push_back(Output::LivesetChanged {
                    liveset: self.current,
                    added: joiners,
                    removed: HostSet::EMPTY,
                });
            }
        }

        // Fault detection.
        let active = self.current.difference(&pending);
        let missing_hb = active.difference(&hbd);
        let missing_sf = if self.sr2 {
            HostSet::EMPTY
        } else {
            active.difference(&sfd)
        };
        let forced = active.iter().any(|p| {
            p != self.me
                && hbd.contains(p)
                && self.peer_phase(p) == Some(Phase::FaultHandling)
                && self
                    .last_decision
                    .is_none_or(|d| self.now.saturating_sub(d) >= self.t.settle)
        });
        if self.fh_started.is_none() && (!missing_hb.is_empty() || !missing_sf.is_empty() || forced)
        {
            self.fh_started = Some(self.now);
            self.phase = Phase::FaultHandling;
            self.out.push_back(Output::FaultDetected {
                missing_hb,
                missing_sf,
            });
        }
        self.warn_approaching();

        if let Some(start) = self.fh_started {
            let waited = self.now.saturating_sub(start);
            let hbd = self.hbdomain();
            let consistent = self.consistent(start, &hbd, &sfd);
            // Decide early rather than lose the lease while waiting for views to agree.
            let lease_short = self.compute_lease().0 <= self.now + self.t.hb_interval;
            if lease_short
                || (waited >= self.t.hb_interval.max(self.t.sf_interval)
                    && (waited >= self.t.settle || consistent))
            {
                let hbd = if consistent {
                    hbd
                } else {
                    self.merged_hbdomain(&hbd, &sfd)
                };
                self.decide(&hbd, &sfd);
                if self.phase == Phase::Fenced {
                    return;
                }
            }
        }

        // Two winners removing each other (each sure the other lost) would both drop the
        // other: neither is then a lease source of the other. The statefile arbitrates: a host
        // still writing its section as a member is never dropped, and when its section shows
        // it removing us, the smaller side (ties: the side without the lowest UUID) fences.
        let mine = self.proposed();
        for (h, _) in self.pending.clone() {
            let Some(sec) = self.sections[h].as_ref().filter(|s| s.phase.is_member()) else {
                continue;
            };
            if sfd.contains(h) && sec.current.contains(self.me) && !sec.proposed.contains(self.me) {
                let theirs = sec.proposed;
                let lowest = mine.union(&theirs).first();
                let they_win = theirs.len() > mine.len()
                    || (theirs.len() == mine.len() && lowest.is_some_and(|l| theirs.contains(l)));
                if they_win {
                    return self.fence(FenceReason::ConflictingRemoval {
                        with: h,
                        ours: mine,
                        theirs,
                    });
                }
            }
        }
        // Drop removed hosts whose fence deadline has passed and that no longer write the
        // statefile as members (a removed host still writing is alive: wait until it stops,
        // as xha extends its wait when a removed host is still in a domain).
        // Only a host that sees the statefile can tell a removed host stopped writing: without
        // access (and outside rule 2) we wait, and our own fault handler settles our fate.
        let can_judge = self.sf_access() || self.sr2;
        let due: HostSet = self
            .pending
            .iter()
            .filter(|(h, d)| {
                if !can_judge {
                    return false;
                }
                let writing = sfd.contains(*h)
                    && self.sections[*h]
                        .as_ref()
                        .is_some_and(|s| s.phase.is_member());
                self.now >= *d && !writing
            })
            .map(|(h, _)| *h)
            .collect();
        if !due.is_empty() {
            self.pending.retain(|(h, _)| !due.contains(*h));
            self.current = self.current.difference(&due);
            self.next_sf = self.next_sf.min(self.now); // re-elect promptly if the master left
            self.out.push_back(Output::LivesetChanged {
                liveset: self.current,
                added: HostSet::EMPTY,
                removed: due,
            });
        }

        self.lease_and_watchdog();
    }

    /// xha FH2: every reachable acting member handles the same fault and publishes the same
    /// views (on heartbeats), and every member on the statefile has reached the handler too.
    pub(super) fn consistent(&self, start: u64, hbd: &HostSet, sfd: &HostSet) -> bool {
        let hbd_c = hbd.intersection(&self.current);
        let sfd_c = sfd.intersection(&self.current);
        let on_hb = hbd_c
            .iter()
            .filter(|&p| p != self.me)
            .all(|p| match self.peers.latest(p) {
                Some(hb) if hb.phase.is_member() => {
                    hb.phase == Phase::FaultHandling
                        && self.peers.last_rx(p).is_some_and(|t| t >= start)
                        && hb.hbdomain.intersection(&self.current) == hbd_c
                        && hb.sfdomain.intersection(&self.current) == sfd_c
                }
                _ => true,
            });
        let on_sf = sfd_c.iter().filter(|&p| p != self.me).all(|p| {
            self.sections[p]
                .as_ref()
                .is_none_or(|s| !s.phase.is_member() || s.phase == Phase::FaultHandling)
        });
        on_hb && on_sf
    }

    /// FH2 timed out: narrow my heartbeat domain to the clique every host computes from the
    /// same published domains (freshest copy: heartbeat if I hear the host, else statefile).
    pub(super) fn merged_hbdomain(&mut self, hbd: &HostSet, sfd: &HostSet) -> HostSet {
        let doms: Vec<HostSet> = (0..self.n)
            .map(|p| {
                if p == self.me {
                    *hbd
                } else if let Some(hb) = self.peers.latest(p).filter(|_| hbd.contains(p)) {
                    hb.hbdomain
                } else {
                    self.sections[p]
                        .as_ref()
                        .map_or(HostSet::EMPTY, |s| s.hbdomain)
                }
            })
            .collect();
        let restarted: HostSet = (0..self.n).filter(|&p| self.restarted(p)).collect();
        let candidates = self
            .current
            .intersection(&hbd.union(sfd))
            .difference(&restarted);
        let clique = survival::merge_clique(candidates, &doms);
        let merged = if clique.contains(self.me) {
            hbd.intersection(&clique)
        } else {
            HostSet::single(self.me)
        };
        if merged != *hbd {
            self.out.push_back(Output::Warning(format!(
                "views inconsistent: merged heartbeat domain {hbd} to clique {merged}"
            )));
        }
        merged
    }

    pub(super) fn decide(&mut self, hbd: &HostSet, sfd: &HostSet) {
        let raw: Vec<Option<RawView>> = self
            .sections
            .iter()
            .map(|s| {
                s.as_ref().map(|s| RawView {
                    sfdomain: s.sfdomain,
                    hbdomain: s.hbdomain,
                })
            })
            .collect();
        let mut sf_access: HostSet = hbd
            .iter()
            .filter(|&p| p != self.me && self.peers.latest(p).is_some_and(|hb| hb.sf_access))
            .collect();
        if self.sf_access() {
            sf_access.insert(self.me);
        }
        let d = survival::decide(&Views {
            me: self.me,
            configured: self.configured,
            current: self.current,
            hbdomain: *hbd,
            sfdomain: *sfd,
            raw: &raw,
            sf_access,
            excluded: self.excluded,
        });
        self.fh_started = None;
        self.last_decision = Some(self.now);
        if !d.survive {
            return self.fence(FenceReason::SurvivalRule(d));
        }
        self.phase = Phase::Online;
        if d.sr2() && !self.sr2 {
            self.sr2 = true;
        }
        let already = self.pending_set();
        for h in d.remove.iter().filter(|h| !already.contains(*h)) {
            let last = self.peers.last_rx(h).unwrap_or(self.now).min(self.now);
            let deadline = if self.cfg.test_bug == Some(TestBug::SkipFenceWait) {
                self.now
            } else {
                self.t.fence_deadline(last)
            };
            self.pending.push((h, deadline));
            self.out
                .push_back(Output::RemovalScheduled { host: h, deadline });
        }
        self.out.push_back(Output::Survived(d));
    }

    /// The lease: the earliest expiry over acting members still counted, and who is missing.
    pub(super) fn compute_lease(&self) -> (u64, HostSet) {
        let pending = self.pending_set();
        let mut until = u64::MAX;
        let mut missing = HostSet::EMPTY;
        for x in self
            .current
            .difference(&pending)
            .iter()
            .filter(|&x| x != self.me)
        {
            let Some(hb) = self.peers.latest(x) else {
                continue;
            };
            if !hb.phase.is_member() {
                continue; // Starting/joining/aborted/disarmed hosts do not act on the liveset.
            }
            let exp = self.grant_expiry(x);
            if exp <= self.now {
                missing.insert(x);
            }
            until = until.min(exp);
        }
        (until, missing)
    }

    pub(super) fn lease_and_watchdog(&mut self) {
        if !self.armed {
            return;
        }
        let (until, missing) = self.compute_lease();
        self.lease_until = until;
        let bug = self.cfg.test_bug == Some(TestBug::KickWithoutLease);
        if until <= self.now && !bug {
            return self.fence(FenceReason::LeaseExpired { missing });
        }
        if self.now >= self.next_kick {
            let timeout = if bug {
                self.t.lease
            } else {
                (until - self.now).min(self.t.lease)
            };
            self.out.push_back(Output::Watchdog(WatchdogAction::Kick {
                timeout_ms: timeout,
            }));
            self.next_kick = self.now + self.t.hb_interval;
        }
    }

    pub(super) fn warn_approaching(&mut self) {
        // xhad warns when a latency passes half the timeout; one line per kind and step.
        let others = self.current.difference(&HostSet::single(self.me));
        let late = |at: &[Option<u64>], limit: u64| -> HostSet {
            others
                .iter()
                .filter(|&p| at[p].is_some_and(|t| self.now.saturating_sub(t) > limit))
                .collect()
        };
        let rx: Vec<Option<u64>> = (0..self.n).map(|p| self.peers.last_rx(p)).collect();
        let hb_late = late(&rx, self.t.hb_timeout / 2);
        let mut sf_late = if self.sr2 {
            HostSet::EMPTY
        } else {
            late(&self.seq_changed_at, self.t.sf_timeout / 2)
        };
        if !self.sr2
            && self
                .my_sf_ok_at
                .is_some_and(|t| self.now.saturating_sub(t) > self.t.sf_timeout / 2)
        {
            sf_late.insert(self.me);
        }
        let new_hb = hb_late.difference(&self.warned_hb);
        let new_sf = sf_late.difference(&self.warned_sf);
        if !new_hb.is_empty() {
            self.out.push_back(Output::Warning(format!(
                "heartbeat approaching timeout: {new_hb}"
            )));
        }
        if !new_sf.is_empty() {
            self.out.push_back(Output::Warning(format!(
                "statefile approaching timeout: {new_sf}"
            )));
        }
        self.warned_hb = hb_late;
        self.warned_sf = sf_late;
    }
}
