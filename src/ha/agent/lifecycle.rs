//! Lifecycle of an agent: commands, enable and boot (forming or joining a liveset), arming,
//! aborting, disarming, stopping and fencing.
//!
//! Owns every transition into and out of membership; it must never drop another host from the
//! liveset (that is the fault handler's job, under its fence deadline).

use super::*;

impl Agent {
    pub(super) fn on_command(&mut self, c: Command) {
        match c {
            Command::Enable | Command::Boot => {
                if self.phase != Phase::Stopped {
                    self.out.push_back(Output::Warning(format!(
                        "{c:?} ignored in phase {:?}",
                        self.phase
                    )));
                    return;
                }
                self.phase = Phase::Starting;
                self.mode = Some(c);
                self.started_at = self.now;
                self.next_hb = self.now;
                self.next_sf = self.now;
                self.i_am_excluded = false;
            }
            Command::Disarm => self.disarm("disarmed by command"),
            Command::Disable => {
                self.disarm("HA disabled");
                match self.global.clone() {
                    Some(mut g) if self.sf_access() => {
                        g.pool_state = PoolState::Invalid;
                        self.global_write = Some(g);
                        self.disable_pending = true;
                        self.next_sf = self.now;
                    }
                    _ => self.stop("HA disabled (statefile unreachable: local only)"),
                }
            }
            Command::Shutdown => {
                if !self.sf_access() && self.phase != Phase::Stopped {
                    self.out.push_back(Output::Warning(
                        "clean shutdown refused: no statefile access".into(),
                    ));
                    return;
                }
                self.disarm("clean shutdown");
                self.i_am_excluded = true;
                self.shutdown_pending = true;
                self.next_sf = self.now;
            }
        }
    }

    pub(super) fn start_deadline(&self) -> u64 {
        match self.mode {
            Some(Command::Enable) => self.started_at + self.t.enable_join,
            _ => self.started_at + 2 * self.t.boot_join,
        }
    }

    pub(super) fn starting_step(&mut self) {
        let hbd = self.hbdomain();
        let sfd = self.sfdomain();
        let peers: Vec<usize> = hbd.iter().filter(|&p| p != self.me).collect();
        if self.mode == Some(Command::Enable)
            && peers
                .iter()
                .any(|&p| self.peer_phase(p) == Some(Phase::Aborted))
        {
            return self.abort("a peer aborted enable".into());
        }
        if self.now >= self.start_deadline() {
            let missing = self
                .configured
                .difference(&self.excluded)
                .difference(&hbd.intersection(&sfd));
            return self.abort(format!(
                "no agreement before the join timeout (missing on some channel: {missing})"
            ));
        }
        if self
            .global
            .as_ref()
            .is_some_and(|g| g.pool_state == PoolState::Invalid)
        {
            return self.abort("pool state INVALID".into());
        }
        // Wait to be forgotten: no member may still count an earlier incarnation of us.
        let remembered = peers.iter().any(|&p| {
            self.peers.latest(p).is_some_and(|hb| {
                hb.phase.is_member()
                    && hb.current.contains(self.me)
                    && hb.admitted != self.incarnation
            })
        });
        if remembered {
            return;
        }
        // A member that formed its liveset with this incarnation of us (it saw us propose the
        // same set) has reached the agreement: arm with it rather than asking to join. Only
        // if every other host of that liveset still stands by it too: the member may have
        // fenced since (its last heartbeat lingers for T1), another member may have dropped a
        // host meanwhile, and arming records the incarnation each host now shows, which must
        // be the one that agreed, not a restart of it.
        let formed_with_us = peers.iter().find_map(|&p| {
            self.peers
                .latest(p)
                .filter(|hb| {
                    hb.phase.is_member()
                        && hb.current.contains(self.me)
                        && hb.admitted == self.incarnation
                })
                .map(|hb| hb.current)
        });
        if let Some(liveset) = formed_with_us.filter(|&l| self.all_agree(l, &hbd)) {
            return self.arm(liveset);
        }
        // An existing liveset: join it.
        if self.mode == Some(Command::Boot) {
            if let Some(p) = peers
                .iter()
                .copied()
                .find(|&p| sfd.contains(p) && self.peer_phase(p).is_some_and(|ph| ph.is_member()))
            {
                self.join_members = self
                    .peers
                    .latest(p)
                    .expect("member")
                    .current
                    .difference(&HostSet::single(self.me));
                self.phase = Phase::Joining;
                // Tboot for the join itself: a host that waited Tboot for a whole-pool restart
                // and then saw the liveset form must still get its full join time.
                self.join_started = self.now;
                return self.joining_step();
            }
        }
        // A member alive on the statefile (its section moves and says Online) means a liveset
        // exists even if we cannot hear it: we may only join it, never form a rival one.
        if self.mode == Some(Command::Boot)
            && sfd.iter().any(|p| {
                p != self.me
                    && self.sections[p]
                        .as_ref()
                        .is_some_and(|s| s.phase.is_member())
            })
        {
            return;
        }
        // No liveset: form one. Enable needs pool state INIT and every non-excluded host;
        // a whole-pool restart waits Tboot for everyone, then settles for a majority.
        let state = self.global.as_ref().map(|g| g.pool_state);
        let want = match self.mode {
            // The first host to arm writes ACTIVE, possibly before a slower peer has seen the
            // agreement: enable accepts both states (disable writes INVALID, handled above).
            Some(Command::Enable)
                if !matches!(state, Some(PoolState::Init | PoolState::Active)) =>
            {
                return
            }
            Some(Command::Boot) if state != Some(PoolState::Active) => return,
            _ => self.configured.difference(&self.excluded),
        };
        let visible = hbd.intersection(&sfd).intersection(&want);
        let candidates = if want.is_subset(&visible) {
            want
        } else if self.mode == Some(Command::Boot) && self.now >= self.started_at + self.t.boot_join
        {
            let (c, w) = (visible.len(), want.len());
            // Every absent host must have been silent on the statefile long enough to be
            // dead: a lone or cut-off member fences by its own rules within T2 + settle, a hung
            // one by its lease, so `lease + T2 + margin` of silence leaves no live member.
            let quiet = self.t.lease + self.t.sf_timeout + self.t.drift_margin;
            let absent_dead = want.difference(&visible).iter().all(|p| {
                let since = self.seq_changed_at[p].unwrap_or(self.started_at);
                self.now.saturating_sub(since) >= quiet
            });
            if absent_dead && (2 * c > w || (2 * c == w && visible.first() == want.first())) {
                visible
            } else {
                HostSet::EMPTY
            }
        } else {
            HostSet::EMPTY
        };
        self.formation = candidates;
        if candidates.is_empty() || !candidates.contains(self.me) {
            return;
        }
        if self.all_agree(candidates, &hbd) {
            let first = candidates.first() == Some(self.me);
            self.arm(candidates);
            if first {
                if let Some(g) = self.global.clone() {
                    self.global_write = Some(GlobalSection {
                        pool_state: PoolState::Active,
                        ..g
                    });
                }
            }
        }
    }

    /// Does every other host of `liveset`, heard within T1, stand by it: starting and
    /// proposing exactly it, or running with exactly it and this incarnation of us admitted?
    fn all_agree(&self, liveset: HostSet, hbd: &HostSet) -> bool {
        liveset.iter().filter(|&p| p != self.me).all(|p| {
            hbd.contains(p)
                && self.peers.latest(p).is_some_and(|hb| {
                    (hb.phase == Phase::Starting && hb.proposed == liveset)
                        || (hb.phase.is_member()
                            && hb.current == liveset
                            && hb.admitted == self.incarnation)
                })
        })
    }

    pub(super) fn joining_step(&mut self) {
        let hbd = self.hbdomain();
        let sfd = self.sfdomain();
        if self.now >= self.join_started + self.t.boot_join {
            return self.abort(format!(
                "join not acknowledged by {} before Tboot",
                self.join_members
            ));
        }
        // Track the liveset we join as it evolves (another host may join or leave meanwhile):
        // everyone an acting member we hear lists. The union, not one member's view: each
        // member's view only grows with its admissions (until a removal, which waits for the
        // removed host's fence deadline), so a host that armed after being admitted by a
        // member we heard more recently cannot drop out of it.
        let listed = hbd
            .iter()
            .filter(|&p| p != self.me)
            .filter_map(|p| self.peers.latest(p).filter(|hb| hb.phase.is_member()))
            .fold(HostSet::EMPTY, |acc, hb| acc.union(&hb.current));
        // A listed host that is itself joining was admitted alongside us. It cannot act as a
        // member before it arms, and it waits for us just as we wait for it: requiring every
        // listed host to be acting is a circular wait between concurrent joiners (both abort
        // at Tboot). Instead we commit to that incarnation of it: it stays in the liveset we
        // arm with, whatever the members' views do next (one may still list an earlier
        // incarnation that is being removed), until it restarts or gives up. Our heartbeats
        // to it carry the commitment in `admitted`, so it may count on being in our liveset.
        for q in listed.iter().filter(|&q| q != self.me && hbd.contains(q)) {
            if let Some(hb) = self.peers.latest(q).filter(|hb| hb.phase == Phase::Joining) {
                self.co_joiners[q] = hb.sequence >> 32;
            }
        }
        for q in 0..self.n {
            let gone = self.peers.latest(q).is_some_and(|hb| {
                hb.phase == Phase::Aborted || hb.sequence >> 32 > self.co_joiners[q]
            });
            if self.co_joiners[q] != 0 && gone {
                self.co_joiners[q] = 0;
            }
        }
        let committed: HostSet = (0..self.n).filter(|&q| self.co_joiners[q] != 0).collect();
        if !listed.is_empty() {
            self.join_members = listed;
        }
        self.join_members = self
            .join_members
            .union(&committed)
            .difference(&HostSet::single(self.me));
        // Every host of the liveset we arm with must have put this incarnation of us in its
        // own: an acting member by admitting us (it proposes us and grants our lease), a
        // co-joiner by committing to us. `admitted` names the incarnation, so an ack meant for
        // an earlier incarnation of us (still being removed) never counts.
        let acked = !self.join_members.is_empty()
            && self.join_members.iter().all(|m| {
                hbd.contains(m)
                    && sfd.contains(m)
                    && self.peers.latest(m).is_some_and(|hb| {
                        (hb.phase.is_member() || hb.phase == Phase::Joining)
                            && hb.proposed.contains(self.me)
                            && hb.admitted == self.incarnation
                    })
            });
        if acked {
            let live = self.join_members.union(&HostSet::single(self.me));
            self.arm(live);
        }
    }

    pub(super) fn arm(&mut self, liveset: HostSet) {
        self.current = liveset;
        self.admit(liveset);
        self.armed = true;
        self.phase = Phase::Online;
        if self.mode == Some(Command::Enable) {
            self.enable_armed_at = Some(self.now);
        }
        self.out.push_back(Output::Armed { liveset });
        self.out.push_back(Output::LivesetChanged {
            liveset,
            added: liveset,
            removed: HostSet::EMPTY,
        });
        self.next_kick = self.now;
        self.lease_until = self.compute_lease().0;
    }

    pub(super) fn abort(&mut self, reason: String) {
        self.phase = Phase::Aborted;
        self.formation = HostSet::EMPTY;
        self.out.push_back(Output::StartFailed { reason });
    }

    pub(super) fn disarm(&mut self, why: &'static str) {
        self.lose_mastership(why);
        self.lock_request = false;
        if self.armed {
            self.armed = false;
            self.out.push_back(Output::Watchdog(WatchdogAction::Close));
        }
        if self.phase.is_member() {
            self.phase = Phase::Disarmed;
        }
        self.fh_started = None;
    }

    pub(super) fn stop(&mut self, reason: &str) {
        self.disarm("stopped");
        self.phase = Phase::Stopped;
        self.out.push_back(Output::Stopped {
            reason: reason.to_string(),
        });
    }

    pub(super) fn fence(&mut self, reason: FenceReason) {
        if !self.armed && reason != FenceReason::ShutdownFailed {
            // xha: self_fence is a no-op unless fencing is armed.
            self.out.push_back(Output::Warning(format!(
                "would fence but not armed: {reason}"
            )));
            return;
        }
        self.lose_mastership("fenced");
        self.armed = false;
        self.phase = Phase::Fenced;
        self.out.push_back(Output::Fence(reason));
    }
}
