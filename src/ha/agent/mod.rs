//! The HA agent: one host's sans-IO state machine.
//!
//! Owns the whole per-host protocol: heartbeats and statefile cycles, the heartbeat and
//! statefile domains, the fault handler and survival decisions, removal with fence deadlines,
//! enable/boot/join/shutdown/disarm/disable, the master lock and epoch, and the watchdog lease.
//! Drive it with [`Agent::handle`] (the time plus one [`Input`]), drain [`Agent::poll_output`],
//! and call `handle(.., Input::Tick)` again by [`Agent::poll_timeout`]. It must never do I/O,
//! read a clock, sleep or spawn: given the same inputs it produces the same outputs.
//!
//! Safety rests on the *membership lease* (see [`crate::ha::timeouts`]): a member may act, and
//! kick its watchdog, only while every other acting member's latest heartbeat still lists it in
//! its proposed liveset and echoes one of its own heartbeats sent less than `lease` ago. The
//! moment that fails it fences; if it is hung, its watchdog (kicked with the lease's remaining
//! time) fires instead. A survivor stops granting a host when it decides to remove it and drops
//! it only at `last packet received + lease + drift margin`, when that lease is gone for sure.

use super::packet::{Heartbeat, PacketKey, PeerTable};
use super::statefile::{self, GlobalSection, HostSection, PoolState};
use super::survival::{self, Decision, RawView, Views};
use super::{
    lock, ConfigError, HostSet, HostUuid, Phase, PoolConfig, StorageError, TestBug, Timeouts,
};
use std::collections::VecDeque;
use std::fmt;

// The agent's behaviour, by concern (each adds methods to `Agent`):
mod election; // master lock, epoch
mod fault; // fault handler, removals, lease and watchdog
mod lifecycle; // commands, enable/boot/join, arming, fencing
mod storage; // statefile cycle

/// Operator or toolstack commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Enable HA: the pool state is INIT; form the first liveset with every host, then arm.
    Enable,
    /// Start after a reboot (pool state ACTIVE): wait to be forgotten, then join or form.
    Boot,
    /// Disarm fencing: close the watchdog, never fence; keep heartbeating.
    Disarm,
    /// Disable HA pool-wide: write pool state INVALID, disarm and stop.
    Disable,
    /// Clean shutdown: disarm, write `excluded`, stop. Refused without statefile access.
    Shutdown,
}

/// Everything that can happen to an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A timer fired (or the driver just wants time to advance).
    Tick,
    /// Bytes received on the heartbeat socket, from anyone.
    Packet(Vec<u8>),
    /// Result of the last [`Output::ReadStatefile`].
    StatefileRead(Result<Vec<u8>, StorageError>),
    /// Result of the last [`Output::WriteStatefile`].
    StatefileWritten(Result<(), StorageError>),
    /// A command.
    Command(Command),
}

/// Which statefile section a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The global section.
    Global,
    /// A host's section.
    Host(usize),
}

/// What to do with the watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogAction {
    /// (Re)arm: reset the host unless kicked again within `timeout_ms`. Drivers with a coarser
    /// watchdog must round *down*.
    Kick {
        /// Milliseconds until the reset.
        timeout_ms: u64,
    },
    /// Close cleanly (disarm): the watchdog must not fire.
    Close,
}

/// Why a host fenced itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceReason {
    /// The survival rules said this host is not in the surviving partition.
    SurvivalRule(Decision),
    /// A member that removed this host asked it to fence.
    FenceRequest {
        /// The requesting member.
        from: usize,
    },
    /// Membership could no longer be proven: these members stopped granting the lease.
    LeaseExpired {
        /// Members whose grant ran out.
        missing: HostSet,
    },
    /// A clean shutdown failed after its commit point (xapi fences in that case too).
    ShutdownFailed,
    /// The agent could not run for `ms` (a hang or a stall): the others may already be
    /// removing it, so it must not act on its stale views.
    Stalled {
        /// Length of the stall.
        ms: u64,
    },
    /// Another winner is removing us while we remove it; the statefile says its side wins.
    ConflictingRemoval {
        /// The other winner.
        with: usize,
        /// Our side (proposed liveset).
        ours: HostSet,
        /// Its side.
        theirs: HostSet,
    },
}

impl fmt::Display for FenceReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FenceReason::SurvivalRule(d) => write!(f, "survival rule failed: {d}"),
            FenceReason::FenceRequest { from } => {
                write!(f, "fence request from h{from}, which removed us")
            }
            FenceReason::LeaseExpired { missing } => {
                write!(f, "membership lease expired (no grant from {missing})")
            }
            FenceReason::ShutdownFailed => {
                write!(f, "clean shutdown failed after its commit point")
            }
            FenceReason::Stalled { ms } => {
                write!(f, "stalled for {ms} ms: membership may already be lost")
            }
            FenceReason::ConflictingRemoval { with, ours, theirs } => write!(
                f,
                "h{with} is removing us while we remove it; its side {theirs} beats ours {ours}"
            ),
        }
    }
}

/// Everything an agent asks its driver to do or tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a heartbeat to host `to`.
    Send {
        /// Destination host index.
        to: usize,
        /// Packet bytes.
        bytes: Vec<u8>,
    },
    /// Write one statefile section; answer with [`Input::StatefileWritten`].
    WriteStatefile {
        /// Which section.
        slot: Slot,
        /// Byte offset in the statefile.
        offset: usize,
        /// Exactly one section of bytes.
        bytes: Vec<u8>,
    },
    /// Read the whole statefile (`len` bytes); answer with [`Input::StatefileRead`].
    ReadStatefile {
        /// Bytes to read from offset 0.
        len: usize,
    },
    /// Watchdog action.
    Watchdog(WatchdogAction),
    /// Fence now (reboot the host). The agent is dead afterwards.
    Fence(FenceReason),
    /// A fault was detected: these members left the heartbeat / statefile domains.
    FaultDetected {
        /// Members missing from the heartbeat domain.
        missing_hb: HostSet,
        /// Members missing from the statefile domain.
        missing_sf: HostSet,
    },
    /// The fault handler decided and this host survives.
    Survived(Decision),
    /// `host` will leave the liveset at `deadline` (its fence deadline).
    RemovalScheduled {
        /// Host being removed.
        host: usize,
        /// Local time when it is dropped.
        deadline: u64,
    },
    /// The liveset changed.
    LivesetChanged {
        /// New liveset.
        liveset: HostSet,
        /// Hosts added.
        added: HostSet,
        /// Hosts dropped (dead or fenced by now, or cleanly excluded).
        removed: HostSet,
    },
    /// Fencing is armed with this first liveset.
    Armed {
        /// The liveset.
        liveset: HostSet,
    },
    /// This host won the master lock; `epoch` is its fencing token.
    BecameMaster {
        /// New epoch.
        epoch: u64,
    },
    /// This host no longer holds the master lock.
    LostMastership {
        /// The epoch it held.
        epoch: u64,
        /// Why.
        reason: &'static str,
    },
    /// Enable or boot failed; nothing was armed, nobody is fenced.
    StartFailed {
        /// Why.
        reason: String,
    },
    /// The agent stopped (clean shutdown, disable). Heartbeats stop.
    Stopped {
        /// Why.
        reason: String,
    },
    /// Something worth an operator's attention (xha's "approaching timeout" warnings).
    Warning(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SfOp {
    Idle,
    WritingHost,
    WritingGlobal,
    Reading,
}

/// One host's HA state machine. See the module documentation.
#[derive(Debug)]
pub struct Agent {
    cfg: PoolConfig,
    t: Timeouts,
    key: PacketKey,
    me: usize,
    n: usize,
    words: usize,
    configured: HostSet,
    incarnation: u64,
    now: u64,
    phase: Phase,
    mode: Option<Command>,
    started_at: u64,
    join_started: u64,
    armed: bool,
    enable_armed_at: Option<u64>,
    // Membership.
    current: HostSet,
    pending: Vec<(usize, u64)>,
    formation: HostSet,
    join_members: HostSet,
    // Incarnation of each co-joiner this joiner committed to keep in its liveset (0: none).
    co_joiners: Vec<u64>,
    member_incarnation: Vec<u64>,
    // Heartbeat.
    hb_seq: u64,
    sent: VecDeque<(u64, u64)>,
    next_hb: u64,
    peers: PeerTable,
    // Statefile.
    sf_op: SfOp,
    sf_cycle_start: u64,
    next_sf: u64,
    sf_seq: u64,
    sf_written_seq: Option<u64>,
    my_sf_ok_at: Option<u64>,
    sections: Vec<Option<HostSection>>,
    seq_changed_at: Vec<Option<u64>>,
    corrupt: HostSet,
    global: Option<GlobalSection>,
    global_write: Option<GlobalSection>,
    excluded: HostSet,
    i_am_excluded: bool,
    // Fault handler.
    fh_started: Option<u64>,
    last_decision: Option<u64>,
    sr2: bool,
    // Master lock.
    lock_request: bool,
    lock_grant: Option<usize>,
    master_epoch: Option<u64>,
    claiming: Option<u64>,
    known_epoch: u64,
    // Watchdog and lease.
    next_kick: u64,
    lease_until: u64,
    // Lifecycle.
    shutdown_pending: bool,
    disable_pending: bool,
    warned_hb: HostSet,
    warned_sf: HostSet,
    out: VecDeque<Output>,
}

impl Agent {
    /// Creates the agent for host `me`. `incarnation` must grow on every start of the daemon
    /// on this host (a persisted counter, or boot time in seconds): sequences start from it so
    /// peers never mistake a restarted host's packets for replays, nor old packets for new.
    /// It must not be 0: heartbeats name the incarnation they acknowledge, and 0 means none.
    pub fn new(cfg: PoolConfig, me: HostUuid, incarnation: u32) -> Result<Agent, ConfigError> {
        let idx = cfg.index_of(&me).ok_or(ConfigError::NotAMember(me))?;
        let n = cfg.hosts.len();
        let base = (incarnation as u64) << 32;
        Ok(Agent {
            t: cfg.timeouts,
            key: PacketKey::new(&cfg.secret),
            me: idx,
            n,
            words: cfg.words(),
            configured: HostSet::first_n(n),
            incarnation: incarnation as u64,
            now: 0,
            phase: Phase::Stopped,
            mode: None,
            started_at: 0,
            join_started: 0,
            armed: false,
            enable_armed_at: None,
            current: HostSet::EMPTY,
            pending: Vec::new(),
            formation: HostSet::EMPTY,
            join_members: HostSet::EMPTY,
            co_joiners: vec![0; n],
            member_incarnation: vec![0; n],
            hb_seq: base,
            sent: VecDeque::new(),
            next_hb: 0,
            peers: PeerTable::new(n),
            sf_op: SfOp::Idle,
            sf_cycle_start: 0,
            next_sf: 0,
            sf_seq: base,
            sf_written_seq: None,
            my_sf_ok_at: None,
            sections: vec![None; n],
            seq_changed_at: vec![None; n],
            corrupt: HostSet::EMPTY,
            global: None,
            global_write: None,
            excluded: HostSet::EMPTY,
            i_am_excluded: false,
            fh_started: None,
            last_decision: None,
            sr2: false,
            lock_request: false,
            lock_grant: None,
            master_epoch: None,
            claiming: None,
            known_epoch: 0,
            next_kick: 0,
            lease_until: 0,
            shutdown_pending: false,
            disable_pending: false,
            warned_hb: HostSet::EMPTY,
            warned_sf: HostSet::EMPTY,
            out: VecDeque::new(),
            cfg,
        })
    }

    /// This host's index.
    pub fn me(&self) -> usize {
        self.me
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Is fencing armed (the watchdog kicked, survival enforced)?
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// The current liveset (empty before arming).
    pub fn liveset(&self) -> HostSet {
        self.current
    }

    /// The epoch this host is master under, if it is master.
    pub fn master_epoch(&self) -> Option<u64> {
        self.master_epoch
    }

    /// The incarnation given to [`Agent::new`].
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The longest gap between two inputs an armed agent tolerates (`T1 − 2·t1`).
    pub fn stall_limit(&self) -> u64 {
        self.t.hb_timeout.saturating_sub(2 * self.t.hb_interval)
    }

    /// Hosts whose statefile section says they shut down cleanly (excluded).
    pub fn excluded(&self) -> HostSet {
        self.excluded
    }

    /// Hosts being removed and their fence deadlines.
    pub fn pending_removals(&self) -> &[(usize, u64)] {
        &self.pending
    }

    /// Next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Feeds one input at local time `now` (ms, monotonic, arbitrary origin).
    pub fn handle(&mut self, now: u64, input: Input) {
        let stalled = now.saturating_sub(self.now);
        self.now = self.now.max(now);
        if self.phase == Phase::Fenced {
            return;
        }
        // An armed agent runs at least every t1. After a stall long enough for the others to
        // have declared it missing (T1 from its last heartbeat, which may be t1 older than the
        // stall, plus one tick), its views are stale and it may be being removed: fence first.
        if self.armed && self.phase.is_member() && stalled >= self.stall_limit() {
            return self.fence(FenceReason::Stalled { ms: stalled });
        }
        match input {
            Input::Tick => {}
            Input::Packet(b) => {
                // A packet only updates the peer table (and may carry a fence request); the
                // domains it changes are evaluated on the next timer, at most t1 later.
                return self.on_packet(&b);
            }
            Input::StatefileWritten(r) => self.on_written(r),
            Input::StatefileRead(r) => self.on_read(r),
            Input::Command(c) => self.on_command(c),
        }
        self.step();
    }

    /// When the agent next needs [`Input::Tick`] (local ms), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        if matches!(self.phase, Phase::Stopped | Phase::Fenced) {
            return None;
        }
        let mut t = self.next_hb;
        if self.sf_op == SfOp::Idle {
            t = t.min(self.next_sf);
        }
        if self.armed {
            // Only future instants: a deadline already passed but blocked (a removed host
            // still writing) is re-checked on the next heartbeat tick, not in a busy loop.
            let future = |x: u64| if x > self.now { x } else { u64::MAX };
            t = t.min(self.next_kick).min(future(self.lease_until));
            for (_, d) in &self.pending {
                t = t.min(future(*d));
            }
        }
        if let Some(s) = self.fh_started {
            let first = s + self.t.hb_interval.max(self.t.sf_interval);
            let settle_end = s + self.t.settle;
            if first > self.now {
                t = t.min(first);
            } else if settle_end > self.now {
                t = t.min(settle_end);
            }
        }
        Some(t.max(self.now))
    }

    fn on_packet(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        let Ok(hb) = Heartbeat::decode(bytes, &self.key) else {
            return;
        };
        let prev_rx = self.peers.last_rx(hb.sender as usize);
        let Ok(s) = self.peers.accept(self.now, self.me, &self.cfg, hb) else {
            return;
        };
        let hb = self.peers.latest(s).expect("just accepted");
        let (phase, fence_request, lists_itself, proposes_me) = (
            hb.phase,
            hb.fence_request,
            hb.current.contains(s),
            hb.proposed.contains(self.me),
        );
        self.known_epoch = self.known_epoch.max(hb.epoch);
        // xha: a member that reboots announces itself as starting; until our fault handler has
        // removed it, its new packets must not keep it in our heartbeat domain.
        if self.restarted(s) && self.current.contains(s) {
            self.peers.set_last_rx(s, prev_rx);
        }
        if self.armed
            && fence_request
            && phase.is_member()
            && lists_itself
            && !proposes_me
            && self.current.contains(s)
        {
            self.fence(FenceReason::FenceRequest { from: s });
        }
    }

    fn sf_access(&self) -> bool {
        self.my_sf_ok_at
            .is_some_and(|t| self.now.saturating_sub(t) < self.t.sf_timeout)
    }

    fn hbdomain(&self) -> HostSet {
        let mut d = self.peers.heard_within(self.now, self.t.hb_timeout);
        if self.phase == Phase::FaultHandling {
            // Symmetric connectivity: while both of us handle a fault, a peer that cannot hear
            // us is treated as unreachable, whatever we hear from it.
            for p in d.iter().collect::<Vec<_>>() {
                if let Some(hb) = self.peers.latest(p) {
                    if hb.phase == Phase::FaultHandling && !hb.hbdomain.contains(self.me) {
                        d.remove(p);
                    }
                }
            }
        }
        if self.armed {
            for p in self.current.iter().filter(|&p| p != self.me) {
                let Some(hb) = self.peers.latest(p) else {
                    continue;
                };
                // A member that restarted or gave up is not the member we knew; and a member
                // that has not acknowledged us for nearly a lease cannot hear us: treat both
                // as unreachable so the fault handler settles it before our lease runs out.
                let restarted = self.restarted(p);
                let deaf = hb.phase.is_member()
                    && self.grant_expiry(p) < self.now + 2 * self.t.hb_interval
                    && !self.pending.iter().any(|(h, _)| *h == p);
                if restarted || deaf {
                    d.remove(p);
                }
            }
        }
        d.insert(self.me);
        d.difference(&self.excluded)
    }

    /// Has member `p` restarted (a newer incarnation than the one admitted) or given up?
    fn restarted(&self, p: usize) -> bool {
        self.peers.latest(p).is_some_and(|hb| {
            hb.phase == Phase::Aborted || hb.sequence >> 32 > self.member_incarnation[p]
        })
    }

    /// Records the incarnation of each new member, to recognise its restart later.
    fn admit(&mut self, hosts: HostSet) {
        for p in hosts.iter() {
            self.member_incarnation[p] = self.peers.latest(p).map_or(0, |hb| hb.sequence >> 32);
        }
    }

    /// Until when member `x`'s latest heartbeat lets me act: it must list me in its proposed
    /// liveset and echo one of my heartbeats; the grant lasts `lease` from that heartbeat's
    /// send time (0 when there is no grant).
    fn grant_expiry(&self, x: usize) -> u64 {
        let Some(hb) = self.peers.latest(x) else {
            return 0;
        };
        if !hb.proposed.contains(self.me) {
            return 0;
        }
        self.sent
            .iter()
            .rev()
            .find(|(s, _)| *s == hb.echo_seq)
            .map_or(0, |(_, t)| t + self.t.lease)
    }

    fn sfdomain(&self) -> HostSet {
        let mut d: HostSet = (0..self.n)
            .filter(|&i| {
                i != self.me
                    && self.seq_changed_at[i]
                        .is_some_and(|t| self.now.saturating_sub(t) < self.t.sf_timeout)
            })
            .collect();
        if self.armed {
            // A member whose section shows a new incarnation (it rebooted) is not the member we
            // knew: its moving sequence must not count as the old one being alive.
            for p in self.current.iter().filter(|&p| p != self.me) {
                let reborn = self.sections[p]
                    .as_ref()
                    .is_some_and(|s| s.sequence >> 32 > self.member_incarnation[p]);
                if reborn || self.restarted(p) {
                    d.remove(p);
                }
            }
        }
        if self.sf_access() {
            d.insert(self.me);
        }
        d.difference(&self.excluded)
    }

    fn peer_phase(&self, p: usize) -> Option<Phase> {
        self.peers.latest(p).map(|hb| hb.phase)
    }

    fn step(&mut self) {
        if matches!(self.phase, Phase::Stopped | Phase::Fenced) {
            return;
        }
        if self.sf_op == SfOp::Idle && self.now >= self.next_sf {
            self.start_sf_cycle();
        }
        match self.phase {
            Phase::Starting => self.starting_step(),
            Phase::Joining => self.joining_step(),
            Phase::Online | Phase::FaultHandling => self.member_step(),
            _ => {}
        }
        if matches!(self.phase, Phase::Stopped | Phase::Fenced) {
            return;
        }
        if self.now >= self.next_hb {
            self.send_heartbeats();
            self.next_hb = self.now + self.t.hb_interval;
        }
    }

    fn published_current(&self) -> HostSet {
        if matches!(
            self.phase,
            Phase::Starting | Phase::Joining | Phase::Aborted
        ) {
            HostSet::EMPTY
        } else {
            self.current
        }
    }

    fn pending_set(&self) -> HostSet {
        self.pending.iter().map(|(h, _)| *h).collect()
    }

    fn proposed(&self) -> HostSet {
        match self.phase {
            Phase::Starting => self.formation,
            Phase::Joining => self.join_members.union(&HostSet::single(self.me)),
            Phase::Aborted => HostSet::EMPTY,
            _ => self.current.difference(&self.pending_set()),
        }
    }

    fn send_heartbeats(&mut self) {
        self.hb_seq += 1;
        self.sent.push_back((self.hb_seq, self.now));
        let horizon = self.t.lease + self.t.drift_margin;
        while self
            .sent
            .front()
            .is_some_and(|(_, t)| self.now.saturating_sub(*t) > horizon)
        {
            self.sent.pop_front();
        }
        let hbd = self.hbdomain();
        let sfd = self.sfdomain();
        let base = Heartbeat {
            generation: self.cfg.generation,
            sender: self.me as u16,
            sender_uuid: self.cfg.hosts[self.me],
            dest: 0,
            sequence: self.hb_seq,
            echo_seq: 0,
            epoch: self.known_epoch,
            admitted: 0,
            phase: self.phase,
            sf_access: self.sf_access(),
            fence_request: !self.pending.is_empty(),
            joining: self.phase == Phase::Joining,
            starting: self.phase == Phase::Starting,
            sr2: self.sr2,
            master: self.master_epoch.is_some(),
            current: self.published_current(),
            proposed: self.proposed(),
            hbdomain: hbd,
            sfdomain: sfd,
        };
        for to in 0..self.n {
            if to == self.me {
                continue;
            }
            let mut hb = base.clone();
            hb.dest = to as u16;
            hb.echo_seq = self.peers.last_seq(to);
            if self.current.contains(to) && self.published_current().contains(to) {
                hb.admitted = self.member_incarnation[to];
            } else if self.phase == Phase::Joining {
                hb.admitted = self.co_joiners[to];
            }
            self.out.push_back(Output::Send {
                to,
                bytes: hb.encode(self.words, &self.key),
            });
        }
    }
}
