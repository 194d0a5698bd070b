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
    armed: bool,
    enable_armed_at: Option<u64>,
    // Membership.
    current: HostSet,
    pending: Vec<(usize, u64)>,
    formation: HostSet,
    join_members: HostSet,
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
            armed: false,
            enable_armed_at: None,
            current: HostSet::EMPTY,
            pending: Vec::new(),
            formation: HostSet::EMPTY,
            join_members: HostSet::EMPTY,
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

    // ---------------------------------------------------------------- inputs

    fn on_command(&mut self, c: Command) {
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

    fn on_written(&mut self, r: Result<(), StorageError>) {
        match self.sf_op {
            SfOp::WritingHost => {
                if r.is_ok() {
                    self.sf_written_seq = Some(self.sf_seq);
                    if self.shutdown_pending {
                        self.stop("clean shutdown: excluded");
                        return;
                    }
                } else {
                    self.sf_written_seq = None;
                    if self.shutdown_pending {
                        self.fence(FenceReason::ShutdownFailed);
                        return;
                    }
                }
                if self.global_write.is_some() {
                    let g = self.global_write.clone().expect("checked");
                    self.sf_op = SfOp::WritingGlobal;
                    self.out.push_back(Output::WriteStatefile {
                        slot: Slot::Global,
                        offset: 0,
                        bytes: g.encode(),
                    });
                } else {
                    self.start_read();
                }
            }
            SfOp::WritingGlobal => {
                let written = self.global_write.take();
                if r.is_ok() {
                    if self.disable_pending {
                        self.stop("HA disabled: pool state INVALID written");
                        return;
                    }
                    if let (Some(epoch), Some(g)) = (self.claiming.take(), written) {
                        if g.epoch == epoch && self.armed && self.phase.is_member() {
                            self.master_epoch = Some(epoch);
                            self.known_epoch = self.known_epoch.max(epoch);
                            self.out.push_back(Output::BecameMaster { epoch });
                        }
                    }
                } else {
                    self.claiming = None;
                    if self.disable_pending {
                        self.stop("HA disabled (INVALID not written: local only)");
                        return;
                    }
                }
                self.start_read();
            }
            _ => {}
        }
    }

    fn start_read(&mut self) {
        self.sf_op = SfOp::Reading;
        self.out.push_back(Output::ReadStatefile {
            len: statefile::file_size(self.n),
        });
    }

    fn on_read(&mut self, r: Result<Vec<u8>, StorageError>) {
        if self.sf_op != SfOp::Reading {
            return;
        }
        self.sf_op = SfOp::Idle;
        let interval =
            if self.fh_started.is_some() || (self.lock_request && self.master_epoch.is_none()) {
                self.t.sf_interval_fast
            } else {
                self.t.sf_interval
            };
        self.next_sf = (self.sf_cycle_start + interval).max(self.now);
        let Ok(bytes) = r else { return };
        let snap = statefile::parse(&bytes, self.n, &self.cfg.generation);
        for (i, sec) in snap.hosts.into_iter().enumerate() {
            match sec {
                Ok(sec) => {
                    self.corrupt.remove(i);
                    if i == self.me {
                        if Some(sec.sequence) == self.sf_written_seq {
                            self.my_sf_ok_at = Some(self.now);
                        }
                        continue;
                    }
                    let moved = self.sections[i]
                        .as_ref()
                        .is_none_or(|old| old.sequence != sec.sequence);
                    if moved {
                        self.seq_changed_at[i] = Some(self.now);
                    }
                    if sec.excluded {
                        self.excluded.insert(i);
                    } else {
                        self.excluded.remove(i);
                    }
                    self.known_epoch = self.known_epoch.max(sec.epoch);
                    self.sections[i] = Some(sec);
                }
                Err(statefile::SectionError::Empty) => {}
                Err(e) => {
                    if !self.corrupt.contains(i) {
                        self.out.push_back(Output::Warning(format!(
                            "statefile section of h{i} not trusted: {e}"
                        )));
                    }
                    self.corrupt.insert(i);
                }
            }
        }
        let fresh_global = match snap.global {
            Ok(g) => {
                self.known_epoch = self.known_epoch.max(g.epoch);
                self.global = Some(g.clone());
                Some(g)
            }
            Err(e) => {
                self.out.push_back(Output::Warning(format!(
                    "statefile global section not trusted: {e}"
                )));
                // A master repairs the global section it owns.
                if let (Some(epoch), Some(g)) = (self.master_epoch, self.global.clone()) {
                    if self.global_write.is_none() {
                        self.global_write = Some(GlobalSection {
                            epoch,
                            master: Some(self.me as u16),
                            ..g
                        });
                    }
                }
                None
            }
        };
        if let Some(g) = &fresh_global {
            if g.pool_state == PoolState::Invalid
                && !self.disable_pending
                && self.phase != Phase::Stopped
            {
                self.disarm("pool state INVALID");
                self.stop("HA disabled by the pool");
                return;
            }
        }
        self.run_lock(fresh_global);
    }

    // ---------------------------------------------------------------- domains

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

    // ---------------------------------------------------------------- the step

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

    fn start_sf_cycle(&mut self) {
        self.sf_cycle_start = self.now;
        self.sf_seq += 1;
        let sec = HostSection {
            generation: self.cfg.generation,
            index: self.me as u16,
            uuid: self.cfg.hosts[self.me],
            sequence: self.sf_seq,
            excluded: self.i_am_excluded,
            starting: self.phase == Phase::Starting,
            phase: if self.shutdown_pending {
                Phase::Stopped
            } else {
                self.phase
            },
            sf_access: self.sf_access(),
            sr2: self.sr2,
            lock_request: self.lock_request,
            lock_grant: self.lock_grant.map(|g| g as u16),
            epoch: self.known_epoch,
            current: self.published_current(),
            proposed: self.proposed(),
            hbdomain: self.hbdomain(),
            sfdomain: self.sfdomain(),
        };
        self.sf_op = SfOp::WritingHost;
        self.out.push_back(Output::WriteStatefile {
            slot: Slot::Host(self.me),
            offset: statefile::host_offset(self.me),
            bytes: sec.encode(self.words),
        });
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
            }
            self.out.push_back(Output::Send {
                to,
                bytes: hb.encode(self.words, &self.key),
            });
        }
    }

    // ---------------------------------------------------------------- starting and joining

    fn start_deadline(&self) -> u64 {
        match self.mode {
            Some(Command::Enable) => self.started_at + self.t.enable_join,
            _ => self.started_at + 2 * self.t.boot_join,
        }
    }

    fn starting_step(&mut self) {
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
        let agreed = candidates.iter().filter(|&p| p != self.me).all(|p| {
            self.peers.latest(p).is_some_and(|hb| {
                (hb.phase == Phase::Starting && hb.proposed == candidates)
                    || (hb.phase.is_member()
                        && hb.current == candidates
                        && hb.admitted == self.incarnation)
            })
        });
        if agreed {
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

    fn joining_step(&mut self) {
        let hbd = self.hbdomain();
        let sfd = self.sfdomain();
        if self.now >= self.started_at + self.t.boot_join {
            return self.abort(format!(
                "join not acknowledged by {} before Tboot",
                self.join_members
            ));
        }
        // Track the liveset we join as it evolves (another host may join or leave meanwhile).
        if let Some(p) = hbd
            .iter()
            .find(|&p| p != self.me && self.peer_phase(p).is_some_and(|ph| ph.is_member()))
        {
            self.join_members = self
                .peers
                .latest(p)
                .expect("member")
                .current
                .difference(&HostSet::single(self.me));
        }
        let acked = !self.join_members.is_empty()
            && self.join_members.iter().all(|m| {
                hbd.contains(m)
                    && sfd.contains(m)
                    && self
                        .peers
                        .latest(m)
                        .is_some_and(|hb| hb.phase.is_member() && hb.proposed.contains(self.me))
            });
        if acked {
            let live = self.join_members.union(&HostSet::single(self.me));
            self.arm(live);
        }
    }

    fn arm(&mut self, liveset: HostSet) {
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

    fn abort(&mut self, reason: String) {
        self.phase = Phase::Aborted;
        self.formation = HostSet::EMPTY;
        self.out.push_back(Output::StartFailed { reason });
    }

    // ---------------------------------------------------------------- members

    fn member_step(&mut self) {
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

        // Cleanly excluded members leave at once: they disarmed before writing the flag.
        let gone = self
            .current
            .intersection(&self.excluded)
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
        let due: HostSet = self
            .pending
            .iter()
            .filter(|(h, d)| {
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
    fn consistent(&self, start: u64, hbd: &HostSet, sfd: &HostSet) -> bool {
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
    fn merged_hbdomain(&mut self, hbd: &HostSet, sfd: &HostSet) -> HostSet {
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

    fn decide(&mut self, hbd: &HostSet, sfd: &HostSet) {
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
    fn compute_lease(&self) -> (u64, HostSet) {
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

    fn lease_and_watchdog(&mut self) {
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

    fn warn_approaching(&mut self) {
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

    // ---------------------------------------------------------------- master lock

    fn run_lock(&mut self, fresh_global: Option<GlobalSection>) {
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
            self.lock_request =
                holder == Some(self.me) || (all_settled && (holder.is_none() || holder_leaving));
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

    // ---------------------------------------------------------------- endings

    fn lose_mastership(&mut self, reason: &'static str) {
        if let Some(epoch) = self.master_epoch.take() {
            self.out.push_back(Output::LostMastership { epoch, reason });
        }
        self.claiming = None;
    }

    fn disarm(&mut self, why: &'static str) {
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

    fn stop(&mut self, reason: &str) {
        self.disarm("stopped");
        self.phase = Phase::Stopped;
        self.out.push_back(Output::Stopped {
            reason: reason.to_string(),
        });
    }

    fn fence(&mut self, reason: FenceReason) {
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
