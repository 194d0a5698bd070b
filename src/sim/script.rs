//! Scenario scripts: the fault schedule a simulation runs, as text.
//!
//! Owns the scenario format shared by `tests/scenarios/<name>/script`, the random search's
//! replay files and the failover benchmark. One directive per line; `#` starts a comment:
//!
//! ```text
//! hosts 3            # pool size (hosts h0..h2, h0 has the lowest UUID)
//! timeout 1000       # T in ms
//! seed 1             # network randomness (loss, duplication, jitter)
//! end 20000          # stop time, ms
//! at 0 enable all
//! at 5000 crash h0
//! at 20000 expect liveset h1,h2
//! ```
//!
//! It must never depend on the simulator's state: parsing and printing are pure.

use std::fmt;

/// A host reference or every host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every host.
    All,
    /// One host index.
    Host(usize),
}

/// One scheduled action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start HA on hosts with enable (pool state INIT).
    Enable(Target),
    /// Start HA on a booting host (pool state ACTIVE).
    Boot(Target),
    /// Disarm fencing.
    Disarm(Target),
    /// Disable HA from one host.
    Disable(usize),
    /// Clean shutdown (excluded).
    Shutdown(usize),
    /// Power off a host.
    Crash(usize),
    /// Crash, then boot again after `down` ms.
    Reboot(usize, u64),
    /// Freeze a host for `ms`; its watchdog keeps counting.
    Hang(usize, u64),
    /// Set a host's clock rate error (parts per million).
    Drift(usize, i64),
    /// Cut both directions between two hosts.
    Cut(usize, usize),
    /// Cut one direction only (from, to).
    CutOneWay(usize, usize),
    /// Restore both directions between two hosts.
    Heal(usize, usize),
    /// Cut every link of a host.
    Isolate(usize),
    /// Cut every link between the two groups (each side keeps its own links).
    Partition(Vec<usize>, Vec<usize>),
    /// Restore every link and every host's storage, clear loss/duplication/delay.
    HealAll,
    /// Base network delay and jitter (ms) on every link.
    Delay(u64, u64),
    /// Packet loss percentage on every link.
    Loss(u64),
    /// Packet duplication percentage on every link.
    Dup(u64),
    /// Statefile I/O fails on a host (or all).
    SfFail(Target),
    /// Statefile I/O works again.
    SfOk(Target),
    /// Statefile I/O latency (ms).
    SfSlow(Target, u64),
    /// Corrupt a host's statefile section (None: the global section).
    SfCorrupt(Option<usize>),
    /// Check: every live armed host has exactly this liveset, and these are the live armed hosts.
    ExpectLiveset(Vec<usize>),
    /// Check: this host is the only acting master (None: no master).
    ExpectMaster(Option<usize>),
    /// Check: these hosts are dead (fenced, crashed or reset by the watchdog).
    ExpectDead(Vec<usize>),
    /// Check: these hosts are up (running, not fenced).
    ExpectUp(Vec<usize>),
    /// Check: no host is armed.
    ExpectNoneArmed,
    /// Check (liveness): live armed hosts agree on one liveset, which is exactly themselves,
    /// and one of them is master.
    ExpectAgreement,
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Number of hosts.
    pub hosts: usize,
    /// T in ms.
    pub timeout_ms: u64,
    /// Seed for network randomness.
    pub seed: u64,
    /// Stop time in ms.
    pub end: u64,
    /// Actions, in time order.
    pub actions: Vec<(u64, Action)>,
}

fn host(s: &str) -> Result<usize, String> {
    s.strip_prefix('h')
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| format!("bad host {s:?}"))
}

fn target(s: &str) -> Result<Target, String> {
    if s == "all" {
        Ok(Target::All)
    } else {
        host(s).map(Target::Host)
    }
}

/// `h0,h2`, `h0..h31` (inclusive range), a mix of both, or `none`.
fn hosts(s: &str) -> Result<Vec<usize>, String> {
    if s == "none" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in s.split(',') {
        match item.split_once("..") {
            Some((a, b)) => out.extend(host(a)?..=host(b)?),
            None => out.push(host(item)?),
        }
    }
    Ok(out)
}

fn num<T: std::str::FromStr>(s: Option<&&str>) -> Result<T, String> {
    s.and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad number {s:?}"))
}

impl Scenario {
    /// Parses a script.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let mut sc = Scenario {
            hosts: 3,
            timeout_ms: 1000,
            seed: 1,
            end: 0,
            actions: Vec::new(),
        };
        for (ln, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let w: Vec<&str> = line.split_whitespace().collect();
            let err = |e: String| format!("line {}: {e}: {line}", ln + 1);
            match w[0] {
                "hosts" => sc.hosts = num(w.get(1)).map_err(err)?,
                "timeout" => sc.timeout_ms = num(w.get(1)).map_err(err)?,
                "seed" => sc.seed = num(w.get(1)).map_err(err)?,
                "end" => sc.end = num(w.get(1)).map_err(err)?,
                "at" => {
                    let t: u64 = num(w.get(1)).map_err(err)?;
                    let a = Action::parse(&w[2..]).map_err(err)?;
                    sc.actions.push((t, a));
                }
                _ => return Err(err("unknown directive".into())),
            }
        }
        sc.actions.sort_by_key(|(t, _)| *t);
        if sc.end == 0 {
            sc.end = sc.actions.last().map_or(0, |(t, _)| *t);
        }
        Ok(sc)
    }
}

impl Action {
    fn parse(w: &[&str]) -> Result<Action, String> {
        let arg = |i: usize| {
            w.get(i)
                .copied()
                .ok_or_else(|| "missing argument".to_string())
        };
        Ok(match *w.first().ok_or("empty action")? {
            "enable" => Action::Enable(target(arg(1)?)?),
            "boot" => Action::Boot(target(arg(1)?)?),
            "disarm" => Action::Disarm(target(arg(1)?)?),
            "disable" => Action::Disable(host(arg(1)?)?),
            "shutdown" => Action::Shutdown(host(arg(1)?)?),
            "crash" => Action::Crash(host(arg(1)?)?),
            "reboot" => Action::Reboot(host(arg(1)?)?, num(w.get(2))?),
            "hang" => Action::Hang(host(arg(1)?)?, num(w.get(2))?),
            "drift" => Action::Drift(host(arg(1)?)?, num(w.get(2))?),
            "cut" => Action::Cut(host(arg(1)?)?, host(arg(2)?)?),
            "cut-oneway" => Action::CutOneWay(host(arg(1)?)?, host(arg(2)?)?),
            "heal" => Action::Heal(host(arg(1)?)?, host(arg(2)?)?),
            "isolate" => Action::Isolate(host(arg(1)?)?),
            "partition" => Action::Partition(hosts(arg(1)?)?, hosts(arg(2)?)?),
            "heal-all" => Action::HealAll,
            "delay" => Action::Delay(num(w.get(1))?, num(w.get(2)).unwrap_or(0)),
            "loss" => Action::Loss(num(w.get(1))?),
            "dup" => Action::Dup(num(w.get(1))?),
            "sf-fail" => Action::SfFail(target(arg(1)?)?),
            "sf-ok" => Action::SfOk(target(arg(1)?)?),
            "sf-slow" => Action::SfSlow(target(arg(1)?)?, num(w.get(2))?),
            "sf-corrupt" => Action::SfCorrupt(if arg(1)? == "global" {
                None
            } else {
                Some(host(arg(1)?)?)
            }),
            "expect" => match arg(1)? {
                "liveset" => Action::ExpectLiveset(hosts(arg(2)?)?),
                "master" => Action::ExpectMaster(if arg(2)? == "none" {
                    None
                } else {
                    Some(host(arg(2)?)?)
                }),
                "dead" => Action::ExpectDead(hosts(arg(2)?)?),
                "up" => Action::ExpectUp(hosts(arg(2)?)?),
                "none-armed" => Action::ExpectNoneArmed,
                "agreement" => Action::ExpectAgreement,
                other => return Err(format!("unknown expectation {other:?}")),
            },
            other => return Err(format!("unknown action {other:?}")),
        })
    }
}

struct Hs<'a>(&'a [usize]);

/// Prints runs of three or more consecutive hosts as ranges (`h0..h31`).
impl fmt::Display for Hs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            let mut j = i;
            while j + 1 < self.0.len() && self.0[j + 1] == self.0[j] + 1 {
                j += 1;
            }
            if j >= i + 2 {
                parts.push(format!("h{}..h{}", self.0[i], self.0[j]));
            } else {
                parts.extend(self.0[i..=j].iter().map(|h| format!("h{h}")));
            }
            i = j + 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Host(h) => write!(f, "h{h}"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Enable(t) => write!(f, "enable {t}"),
            Action::Boot(t) => write!(f, "boot {t}"),
            Action::Disarm(t) => write!(f, "disarm {t}"),
            Action::Disable(h) => write!(f, "disable h{h}"),
            Action::Shutdown(h) => write!(f, "shutdown h{h}"),
            Action::Crash(h) => write!(f, "crash h{h}"),
            Action::Reboot(h, d) => write!(f, "reboot h{h} {d}"),
            Action::Hang(h, d) => write!(f, "hang h{h} {d}"),
            Action::Drift(h, p) => write!(f, "drift h{h} {p}"),
            Action::Cut(a, b) => write!(f, "cut h{a} h{b}"),
            Action::CutOneWay(a, b) => write!(f, "cut-oneway h{a} h{b}"),
            Action::Heal(a, b) => write!(f, "heal h{a} h{b}"),
            Action::Isolate(h) => write!(f, "isolate h{h}"),
            Action::Partition(a, b) => write!(f, "partition {} {}", Hs(a), Hs(b)),
            Action::HealAll => write!(f, "heal-all"),
            Action::Delay(d, j) => write!(f, "delay {d} {j}"),
            Action::Loss(p) => write!(f, "loss {p}"),
            Action::Dup(p) => write!(f, "dup {p}"),
            Action::SfFail(t) => write!(f, "sf-fail {t}"),
            Action::SfOk(t) => write!(f, "sf-ok {t}"),
            Action::SfSlow(t, ms) => write!(f, "sf-slow {t} {ms}"),
            Action::SfCorrupt(None) => write!(f, "sf-corrupt global"),
            Action::SfCorrupt(Some(h)) => write!(f, "sf-corrupt h{h}"),
            Action::ExpectLiveset(v) => write!(f, "expect liveset {}", Hs(v)),
            Action::ExpectMaster(None) => write!(f, "expect master none"),
            Action::ExpectMaster(Some(h)) => write!(f, "expect master h{h}"),
            Action::ExpectDead(v) => write!(f, "expect dead {}", Hs(v)),
            Action::ExpectUp(v) => write!(f, "expect up {}", Hs(v)),
            Action::ExpectNoneArmed => write!(f, "expect none-armed"),
            Action::ExpectAgreement => write!(f, "expect agreement"),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "hosts {}", self.hosts)?;
        writeln!(f, "timeout {}", self.timeout_ms)?;
        writeln!(f, "seed {}", self.seed)?;
        writeln!(f, "end {}", self.end)?;
        for (t, a) in &self.actions {
            writeln!(f, "at {t} {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_round_trip() {
        let text =
            "hosts 4\ntimeout 2000\nseed 9\nend 30000\nat 0 enable all\nat 10 cut-oneway h1 h2\n\
                    at 20 sf-corrupt global\nat 30 expect liveset h0,h2\nat 40 expect master none\n\
                    at 50 reboot h3 700\nat 60 sf-slow all 250\nat 70 partition h0..h2,h5 h3,h4\n";
        let sc = Scenario::parse(text).unwrap();
        assert_eq!(sc.actions.len(), 8);
        assert_eq!(
            sc.actions[7].1,
            Action::Partition(vec![0, 1, 2, 5], vec![3, 4])
        );
        assert_eq!(sc.to_string(), text);
        assert!(Scenario::parse("at 0 explode h1").is_err());
        assert!(Scenario::parse("at x enable all").is_err());
    }
}
