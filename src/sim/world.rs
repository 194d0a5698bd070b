//! The simulated pool: N real [`Agent`]s, a network, a shared statefile, clocks and watchdogs,
//! all in virtual time.
//!
//! Owns the fault model and the invariant checks. Every event (a timer, a packet arriving, a
//! statefile I/O completing, a watchdog firing, a scripted fault) is applied, the agent's outputs
//! are carried out, and the safety invariants are checked before the next event. It must never
//! use wall-clock time, threads or unseeded randomness: one scenario always gives one timeline.
//!
//! Invariants (checked whenever a liveset, an arming or a mastership changes):
//! 1. at most one master per epoch, and epochs only grow;
//! 2. at most one live host acts as master at any time (a master that lost the lock stopped);
//! 3. a survivor never drops a host that is still alive and armed (the fence deadline held);
//! 4. every live armed host is in the liveset of every live armed host (a host outside a
//!    liveset has fenced, is dead, or never armed).
//!
//! Liveness is checked by `expect agreement` in scripts (see [`liveness_bound`]).

use super::rng::Rng;
use super::script::{Action, Scenario, Target};
use crate::ha::statefile;
use crate::ha::{
    Agent, Command, HostSet, HostUuid, Input, Output, PoolConfig, StorageError, TestBug, Timeouts,
    WatchdogAction,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// How long after every fault has healed the survivors must agree on one liveset and one
/// master: detection (T1) + fault handler (settle) + a removed host's fence deadline
/// (lease + drift margin) + a rebooted host's boot join (Tboot) + four statefile cycles.
pub fn liveness_bound(t: &Timeouts) -> u64 {
    t.hb_timeout
        + t.settle
        + t.lease
        + t.drift_margin
        + t.boot_join
        + 4 * t.hb_interval.max(t.sf_interval)
}

/// A simulated host's power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// HA never started on it.
    Off,
    /// Running (possibly hung).
    Up,
    /// Powered off by the scenario.
    Crashed,
    /// Fenced itself.
    Fenced,
    /// Reset by its watchdog.
    WatchdogReset,
}

impl HostState {
    /// True if the host is down.
    pub fn dead(self) -> bool {
        matches!(
            self,
            HostState::Crashed | HostState::Fenced | HostState::WatchdogReset
        )
    }
}

/// A safety invariant broken at `time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time (ms).
    pub time: u64,
    /// What broke.
    pub what: String,
}

/// A notable moment, for measurements (failover timelines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A host's liveset changed.
    Liveset(HostSet),
    /// A host became master.
    Master(u64),
    /// A host fenced.
    Fenced,
    /// A watchdog reset a host.
    WatchdogReset,
}

/// Counters over one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Self-fences.
    pub fences: u32,
    /// Watchdog resets.
    pub watchdog_resets: u32,
    /// Masters elected.
    pub masters: u32,
    /// Live armed hosts at the end.
    pub armed_at_end: u32,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The timeline (empty unless logging was on).
    pub timeline: Vec<String>,
    /// The first safety violation, if any (the run stops there).
    pub violation: Option<Violation>,
    /// Failed `expect` lines.
    pub failed_expectations: Vec<String>,
    /// Notable moments by (time, host).
    pub marks: Vec<(u64, usize, Mark)>,
    /// Counters.
    pub stats: Stats,
}

struct Clock {
    real_anchor: u64,
    local_anchor: u64,
    ppm: i64,
}

impl Clock {
    fn local(&self, real: u64) -> u64 {
        let dt = (real - self.real_anchor) as i128;
        self.local_anchor + (dt * (1_000_000 + self.ppm as i128) / 1_000_000) as u64
    }

    fn real(&self, local: u64) -> u64 {
        if local <= self.local_anchor {
            return self.real_anchor;
        }
        let dl = (local - self.local_anchor) as i128;
        let rate = 1_000_000 + self.ppm as i128;
        self.real_anchor + ((dl * 1_000_000 + rate - 1) / rate) as u64
    }
}

struct SimHost {
    state: HostState,
    agent: Option<Agent>,
    boots: u32,
    clock: Clock,
    hung_until: Option<u64>,
    hang_buffer: Vec<Input>,
    timer_at: Option<u64>,
    timer_token: u64,
    wd_token: u64,
    sf_fail: bool,
    sf_latency: u64,
}

enum Ev {
    Timer {
        host: usize,
        token: u64,
    },
    Deliver {
        to: usize,
        bytes: Vec<u8>,
    },
    SfDone {
        host: usize,
        boot: u32,
        write: Option<(usize, Vec<u8>)>,
    },
    Watchdog {
        host: usize,
        token: u64,
    },
    Action(usize),
    Resume {
        host: usize,
        boot: u32,
    },
    BootAgain {
        host: usize,
    },
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The simulated pool.
pub struct World {
    cfg: PoolConfig,
    now: u64,
    end: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    hosts: Vec<SimHost>,
    statefile: Vec<u8>,
    cut: Vec<bool>,
    delay: u64,
    jitter: u64,
    loss: u64,
    dup: u64,
    rng: Rng,
    log: Option<Vec<String>>,
    violation: Option<Violation>,
    failed: Vec<String>,
    epochs: BTreeMap<u64, usize>,
    max_epoch: u64,
    actions: Vec<Action>,
    marks: Vec<(u64, usize, Mark)>,
    stats: Stats,
    dirty: bool,
}

/// The UUID the simulator gives host `i` (sorted order = index order).
pub fn sim_uuid(i: usize) -> HostUuid {
    let mut b = [0u8; 16];
    b[0] = 0x5a;
    b[14..16].copy_from_slice(&(i as u16).to_be_bytes());
    HostUuid(b)
}

impl World {
    /// Builds the pool for a scenario. `log` records a timeline; `bug` re-enables a
    /// deliberately broken rule (tests only).
    pub fn new(sc: &Scenario, log: bool, bug: Option<TestBug>) -> World {
        let t = Timeouts::derive(sc.timeout_ms).expect("scenario timeout in range");
        let mut cfg = PoolConfig::new(
            [0x5e; 16],
            (0..sc.hosts).map(sim_uuid).collect(),
            b"simulated-pool-secret-0123456789".to_vec(),
            t,
        )
        .expect("valid simulated pool");
        cfg.test_bug = bug;
        let hosts = (0..sc.hosts)
            .map(|_| SimHost {
                state: HostState::Off,
                agent: None,
                boots: 0,
                clock: Clock {
                    real_anchor: 0,
                    local_anchor: 0,
                    ppm: 0,
                },
                hung_until: None,
                hang_buffer: Vec::new(),
                timer_at: None,
                timer_token: 0,
                wd_token: 0,
                sf_fail: false,
                sf_latency: 1,
            })
            .collect();
        let mut w = World {
            statefile: statefile::initial(cfg.generation, sc.hosts),
            cfg,
            now: 0,
            end: sc.end,
            seq: 0,
            queue: BinaryHeap::new(),
            hosts,
            cut: vec![false; sc.hosts * sc.hosts],
            delay: 1,
            jitter: 0,
            loss: 0,
            dup: 0,
            rng: Rng::new(sc.seed),
            log: log.then(Vec::new),
            violation: None,
            failed: Vec::new(),
            epochs: BTreeMap::new(),
            max_epoch: 0,
            actions: sc.actions.iter().map(|(_, a)| a.clone()).collect(),
            marks: Vec::new(),
            stats: Stats::default(),
            dirty: false,
        };
        for (i, (at, _)) in sc.actions.iter().enumerate() {
            w.push(*at, Ev::Action(i));
        }
        w
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn note(&mut self, who: &str, msg: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log {
            log.push(format!("{:>8} {:<5} {}", self.now, who, msg()));
        }
    }

    /// Runs to the scenario's end (or the first violation).
    pub fn run(mut self) -> Outcome {
        let mut same_time = 0u32;
        while let Some(q) = self.queue.pop() {
            if q.at > self.end {
                break;
            }
            same_time = if q.at == self.now { same_time + 1 } else { 0 };
            if same_time > 200_000 {
                self.violate("livelock: 200,000 events without time advancing".into());
                break;
            }
            self.now = q.at;
            self.stats.events += 1;
            self.apply(q.ev);
            if self.dirty {
                self.dirty = false;
                self.check();
            }
            if self.violation.is_some() {
                break;
            }
        }
        if self.violation.is_none() {
            self.now = self.end;
        }
        for h in 0..self.hosts.len() {
            let s = &self.hosts[h];
            let line = match &s.agent {
                Some(a) => format!(
                    "final: {:?} phase {:?}{} liveset {}{}",
                    s.state,
                    a.phase(),
                    if a.is_armed() { " armed" } else { "" },
                    a.liveset(),
                    a.master_epoch()
                        .map_or(String::new(), |e| format!(" master epoch {e}"))
                ),
                None => format!("final: {:?}", s.state),
            };
            self.note(&format!("h{h}"), || line);
        }
        self.stats.armed_at_end = self.live_armed().len() as u32;
        Outcome {
            timeline: self.log.unwrap_or_default(),
            violation: self.violation,
            failed_expectations: self.failed,
            marks: self.marks,
            stats: self.stats,
        }
    }

    fn apply(&mut self, ev: Ev) {
        match ev {
            Ev::Timer { host, token } => {
                if self.hosts[host].timer_token == token {
                    self.hosts[host].timer_at = None;
                    self.feed(host, Input::Tick);
                }
            }
            Ev::Deliver { to, bytes } => self.feed(to, Input::Packet(bytes)),
            Ev::SfDone { host, boot, write } => {
                let h = &self.hosts[host];
                if h.boots != boot || h.state != HostState::Up {
                    return;
                }
                let input = if h.sf_fail {
                    match write {
                        Some(_) => Input::StatefileWritten(Err(StorageError("I/O error".into()))),
                        None => Input::StatefileRead(Err(StorageError("I/O error".into()))),
                    }
                } else if let Some((off, bytes)) = write {
                    self.statefile[off..off + bytes.len()].copy_from_slice(&bytes);
                    Input::StatefileWritten(Ok(()))
                } else {
                    Input::StatefileRead(Ok(self.statefile.clone()))
                };
                self.feed(host, input);
            }
            Ev::Watchdog { host, token } => {
                let h = &mut self.hosts[host];
                if h.wd_token == token && h.state == HostState::Up {
                    h.state = HostState::WatchdogReset;
                    h.agent = None;
                    h.hung_until = None;
                    self.stats.watchdog_resets += 1;
                    self.marks.push((self.now, host, Mark::WatchdogReset));
                    self.note(&format!("h{host}"), || "WATCHDOG reset the host".into());
                    self.dirty = true;
                }
            }
            Ev::Action(i) => {
                let a = self.actions[i].clone();
                self.act(a);
            }
            Ev::Resume { host, boot } => {
                let h = &mut self.hosts[host];
                if h.boots == boot && h.state == HostState::Up && h.hung_until.is_some() {
                    h.hung_until = None;
                    let buffered = std::mem::take(&mut h.hang_buffer);
                    self.note(&format!("h{host}"), || "resumes".into());
                    for input in buffered {
                        self.feed(host, input);
                    }
                    self.feed(host, Input::Tick);
                    self.dirty = true;
                }
            }
            Ev::BootAgain { host } => self.start(host, Command::Boot),
        }
    }

    fn hosts_of(&self, t: Target) -> Vec<usize> {
        match t {
            Target::All => (0..self.hosts.len()).collect(),
            Target::Host(h) => vec![h],
        }
    }

    fn act(&mut self, a: Action) {
        let text = a.to_string();
        if !matches!(
            a,
            Action::ExpectLiveset(_)
                | Action::ExpectMaster(_)
                | Action::ExpectDead(_)
                | Action::ExpectUp(_)
                | Action::ExpectNoneArmed
                | Action::ExpectAgreement
        ) {
            self.note("sim", || text.clone());
        }
        let n = self.hosts.len();
        match a {
            Action::Enable(t) => {
                if t == Target::All {
                    self.statefile = statefile::initial(self.cfg.generation, n);
                }
                for h in self.hosts_of(t) {
                    self.start(h, Command::Enable);
                }
            }
            Action::Boot(t) => {
                for h in self.hosts_of(t) {
                    self.start(h, Command::Boot);
                }
            }
            Action::Disarm(t) => {
                for h in self.hosts_of(t) {
                    self.feed(h, Input::Command(Command::Disarm));
                }
            }
            Action::Disable(h) => self.feed(h, Input::Command(Command::Disable)),
            Action::Shutdown(h) => self.feed(h, Input::Command(Command::Shutdown)),
            Action::Crash(h) => self.crash(h),
            Action::Reboot(h, down) => {
                self.crash(h);
                self.push(self.now + down, Ev::BootAgain { host: h });
            }
            Action::Hang(h, ms) => {
                if self.hosts[h].state == HostState::Up {
                    self.hosts[h].hung_until = Some(self.now + ms);
                    let boot = self.hosts[h].boots;
                    self.push(self.now + ms, Ev::Resume { host: h, boot });
                }
            }
            Action::Drift(h, ppm) => {
                let now = self.now;
                let c = &mut self.hosts[h].clock;
                c.local_anchor = c.local(now);
                c.real_anchor = now;
                c.ppm = ppm.clamp(-100_000, 100_000);
            }
            Action::Cut(a, b) => {
                self.cut[a * n + b] = true;
                self.cut[b * n + a] = true;
            }
            Action::CutOneWay(a, b) => self.cut[a * n + b] = true,
            Action::Heal(a, b) => {
                self.cut[a * n + b] = false;
                self.cut[b * n + a] = false;
            }
            Action::Isolate(h) => {
                for o in 0..n {
                    self.cut[h * n + o] = true;
                    self.cut[o * n + h] = true;
                }
            }
            Action::Partition(a, b) => {
                for &x in &a {
                    for &y in &b {
                        self.cut[x * n + y] = true;
                        self.cut[y * n + x] = true;
                    }
                }
            }
            Action::HealAll => {
                self.cut.iter_mut().for_each(|c| *c = false);
                self.loss = 0;
                self.dup = 0;
                self.delay = 1;
                self.jitter = 0;
                for h in &mut self.hosts {
                    h.sf_fail = false;
                    h.sf_latency = 1;
                }
            }
            Action::Delay(d, j) => {
                self.delay = d.max(1);
                self.jitter = j;
            }
            Action::Loss(p) => self.loss = p.min(100),
            Action::Dup(p) => self.dup = p.min(100),
            Action::SfFail(t) => self
                .hosts_of(t)
                .into_iter()
                .for_each(|h| self.hosts[h].sf_fail = true),
            Action::SfOk(t) => self
                .hosts_of(t)
                .into_iter()
                .for_each(|h| self.hosts[h].sf_fail = false),
            Action::SfSlow(t, ms) => self
                .hosts_of(t)
                .into_iter()
                .for_each(|h| self.hosts[h].sf_latency = ms.max(1)),
            Action::SfCorrupt(which) => {
                let off = which.map_or(0, statefile::host_offset);
                for k in [7, 100, 300] {
                    self.statefile[off + k] ^= 0x5a;
                }
            }
            Action::ExpectLiveset(v) => {
                let want: HostSet = v.iter().copied().collect();
                let armed = self.live_armed();
                let ok = armed == want && armed.iter().all(|h| self.agent_liveset(h) == Some(want));
                let got: Vec<String> = armed
                    .iter()
                    .map(|h| format!("h{h}:{}", self.agent_liveset(h).unwrap_or_default()))
                    .collect();
                self.expect(ok, &text, || {
                    format!("live armed {armed}, livesets {}", got.join(" "))
                });
            }
            Action::ExpectMaster(m) => {
                let masters = self.masters();
                let ok = masters == m.into_iter().collect::<Vec<_>>();
                self.expect(ok, &text, || format!("masters {masters:?}"));
            }
            Action::ExpectDead(v) => {
                let bad: Vec<usize> = v
                    .into_iter()
                    .filter(|h| !self.hosts[*h].state.dead())
                    .collect();
                self.expect(bad.is_empty(), &text, || format!("alive: {bad:?}"));
            }
            Action::ExpectUp(v) => {
                let bad: Vec<usize> = v
                    .into_iter()
                    .filter(|h| self.hosts[*h].state != HostState::Up)
                    .collect();
                self.expect(bad.is_empty(), &text, || format!("down: {bad:?}"));
            }
            Action::ExpectNoneArmed => {
                let armed = self.live_armed();
                self.expect(armed.is_empty(), &text, || format!("armed: {armed}"));
            }
            Action::ExpectAgreement => {
                let armed = self.live_armed();
                let agree = armed.iter().all(|h| self.agent_liveset(h) == Some(armed));
                let masters = self.masters();
                let ok = armed.is_empty() || (agree && masters.len() == 1);
                let got: Vec<String> = armed
                    .iter()
                    .map(|h| format!("h{h}:{}", self.agent_liveset(h).unwrap_or_default()))
                    .collect();
                self.expect(ok, &text, || {
                    format!(
                        "live armed {armed}, livesets {}, masters {masters:?}",
                        got.join(" ")
                    )
                });
            }
        }
        self.dirty = true;
    }

    fn expect(&mut self, ok: bool, text: &str, detail: impl FnOnce() -> String) {
        if ok {
            self.note("check", || format!("{text}: ok"));
        } else {
            let d = detail();
            self.note("check", || format!("{text}: FAILED ({d})"));
            self.failed.push(format!("at {}: {text}: {d}", self.now));
        }
    }

    fn agent_liveset(&self, h: usize) -> Option<HostSet> {
        self.hosts[h].agent.as_ref().map(|a| a.liveset())
    }

    fn live_armed(&self) -> HostSet {
        (0..self.hosts.len())
            .filter(|&h| {
                self.hosts[h].state == HostState::Up
                    && self.hosts[h].agent.as_ref().is_some_and(|a| a.is_armed())
            })
            .collect()
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&h| {
                self.hosts[h].state == HostState::Up
                    && self.hosts[h]
                        .agent
                        .as_ref()
                        .is_some_and(|a| a.master_epoch().is_some())
            })
            .collect()
    }

    fn start(&mut self, h: usize, cmd: Command) {
        let needs_new = {
            let s = &self.hosts[h];
            s.state != HostState::Up
                || s.agent.as_ref().is_none_or(|a| {
                    matches!(
                        a.phase(),
                        crate::ha::Phase::Stopped | crate::ha::Phase::Aborted
                    )
                })
        };
        if needs_new {
            let s = &mut self.hosts[h];
            s.boots += 1;
            s.state = HostState::Up;
            s.hung_until = None;
            s.hang_buffer.clear();
            s.wd_token += 1;
            s.agent =
                Some(Agent::new(self.cfg.clone(), sim_uuid(h), s.boots).expect("configured host"));
        }
        self.feed(h, Input::Command(cmd));
    }

    fn crash(&mut self, h: usize) {
        let s = &mut self.hosts[h];
        if s.state == HostState::Up {
            s.state = HostState::Crashed;
            s.agent = None;
            s.hung_until = None;
            s.hang_buffer.clear();
            s.wd_token += 1;
            s.timer_token += 1;
            self.dirty = true;
        }
    }

    fn feed(&mut self, h: usize, input: Input) {
        let now = self.now;
        let s = &mut self.hosts[h];
        if s.state != HostState::Up || s.agent.is_none() {
            return;
        }
        if s.hung_until.is_some_and(|u| u > now) {
            if matches!(input, Input::StatefileRead(_) | Input::StatefileWritten(_)) {
                s.hang_buffer.push(input);
            }
            return;
        }
        let local = s.clock.local(now);
        s.agent.as_mut().expect("checked").handle(local, input);
        self.drain(h);
    }

    fn drain(&mut self, h: usize) {
        let who = format!("h{h}");
        let mut removals: Vec<(u64, HostSet)> = Vec::new();
        loop {
            let Some(agent) = self.hosts[h].agent.as_mut() else {
                return;
            };
            let Some(out) = agent.poll_output() else {
                break;
            };
            match out {
                Output::Send { to, bytes } => self.send(h, to, bytes),
                Output::WriteStatefile { offset, bytes, .. } => {
                    let (lat, boot) = (self.hosts[h].sf_latency, self.hosts[h].boots);
                    self.push(
                        self.now + lat,
                        Ev::SfDone {
                            host: h,
                            boot,
                            write: Some((offset, bytes)),
                        },
                    );
                }
                Output::ReadStatefile { .. } => {
                    let (lat, boot) = (self.hosts[h].sf_latency, self.hosts[h].boots);
                    self.push(
                        self.now + lat,
                        Ev::SfDone {
                            host: h,
                            boot,
                            write: None,
                        },
                    );
                }
                Output::Watchdog(WatchdogAction::Kick { timeout_ms }) => {
                    let s = &mut self.hosts[h];
                    s.wd_token += 1;
                    let token = s.wd_token;
                    self.push(self.now + timeout_ms, Ev::Watchdog { host: h, token });
                }
                Output::Watchdog(WatchdogAction::Close) => {
                    self.hosts[h].wd_token += 1;
                    self.note(&who, || "watchdog closed".into());
                }
                Output::Fence(reason) => {
                    self.note(&who, || format!("FENCE: {reason}"));
                    let s = &mut self.hosts[h];
                    s.state = HostState::Fenced;
                    s.agent = None;
                    s.wd_token += 1;
                    self.stats.fences += 1;
                    self.marks.push((self.now, h, Mark::Fenced));
                    self.dirty = true;
                    return;
                }
                Output::LivesetChanged {
                    liveset,
                    added,
                    removed,
                } => {
                    self.note(&who, || {
                        format!("liveset {liveset} (added {added}, removed {removed})")
                    });
                    self.marks.push((self.now, h, Mark::Liveset(liveset)));
                    for r in removed.iter() {
                        let rs = &self.hosts[r];
                        if rs.state == HostState::Up
                            && rs.agent.as_ref().is_some_and(|a| a.is_armed())
                        {
                            self.violate(format!(
                                "h{h} dropped h{r} from its liveset while h{r} is alive and armed"
                            ));
                        }
                    }
                    self.dirty = true;
                }
                Output::BecameMaster { epoch } => {
                    self.note(&who, || format!("became master, epoch {epoch}"));
                    self.marks.push((self.now, h, Mark::Master(epoch)));
                    self.stats.masters += 1;
                    if let Some(other) = self.epochs.get(&epoch) {
                        self.violate(format!(
                            "h{h} became master in epoch {epoch}, already h{other}'s"
                        ));
                    } else if epoch <= self.max_epoch {
                        self.violate(format!(
                            "h{h} became master in epoch {epoch} <= earlier epoch {}",
                            self.max_epoch
                        ));
                    }
                    self.epochs.insert(epoch, h);
                    self.max_epoch = self.max_epoch.max(epoch);
                    self.dirty = true;
                }
                Output::LostMastership { epoch, reason } => {
                    self.note(&who, || {
                        format!("lost mastership (epoch {epoch}): {reason}")
                    });
                    self.dirty = true;
                }
                Output::Armed { liveset } => {
                    self.note(&who, || format!("armed, liveset {liveset}"));
                    self.dirty = true;
                }
                Output::FaultDetected {
                    missing_hb,
                    missing_sf,
                } => self.note(&who, || {
                    format!("fault: missing on heartbeat {missing_hb}, on statefile {missing_sf}")
                }),
                Output::Survived(d) => self.note(&who, || format!("decision: {d}")),
                Output::RemovalScheduled { host, deadline } => {
                    // One line per deadline: a 32-host removal stays readable.
                    match removals.iter_mut().find(|(d, _)| *d == deadline) {
                        Some((_, set)) => set.insert(host),
                        None => removals.push((deadline, HostSet::single(host))),
                    }
                }
                Output::StartFailed { reason } => {
                    self.note(&who, || format!("start failed: {reason}"));
                    self.dirty = true;
                }
                Output::Stopped { reason } => {
                    self.note(&who, || format!("stopped: {reason}"));
                    self.dirty = true;
                }
                Output::Warning(w) => self.note(&who, || format!("warning: {w}")),
            }
        }
        if !removals.is_empty() {
            let local = self.hosts[h].clock.local(self.now);
            for (deadline, set) in removals {
                self.note(&who, || {
                    format!(
                        "removing {set}: fence deadline in {} ms",
                        deadline.saturating_sub(local)
                    )
                });
            }
        }
        // Re-arm this host's timer.
        let s = &mut self.hosts[h];
        if let Some(local) = s.agent.as_ref().and_then(|a| a.poll_timeout()) {
            let real = s.clock.real(local).max(self.now);
            if s.timer_at != Some(real) {
                s.timer_token += 1;
                s.timer_at = Some(real);
                let token = s.timer_token;
                self.push(real, Ev::Timer { host: h, token });
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        let n = self.hosts.len();
        if self.cut[from * n + to] || (self.loss > 0 && self.rng.chance(self.loss)) {
            return;
        }
        let d = self.delay
            + if self.jitter > 0 {
                self.rng.below(self.jitter + 1)
            } else {
                0
            };
        if self.dup > 0 && self.rng.chance(self.dup) {
            let d2 = self.delay + self.rng.below(self.jitter + 2);
            self.push(
                self.now + d2,
                Ev::Deliver {
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
        self.push(self.now + d, Ev::Deliver { to, bytes });
    }

    fn violate(&mut self, what: String) {
        if self.violation.is_none() {
            let w = what.clone();
            self.note("VIOLATION", || w);
            self.violation = Some(Violation {
                time: self.now,
                what,
            });
        }
    }

    fn check(&mut self) {
        let masters = self.masters();
        if masters.len() > 1 {
            self.violate(format!("several live hosts act as master: {masters:?}"));
        }
        let armed = self.live_armed();
        for s in armed.iter() {
            let live = self.agent_liveset(s).unwrap_or_default();
            if let Some(h) = armed.difference(&live).first() {
                self.violate(format!(
                    "h{h} is alive and armed but outside h{s}'s liveset {live}"
                ));
                return;
            }
        }
    }
}

/// Runs a scenario with a timeline.
pub fn run(sc: &Scenario) -> Outcome {
    World::new(sc, true, None).run()
}
