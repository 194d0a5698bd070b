//! Random fault search: seeded schedules over the whole fault model, run with every invariant
//! checked, and shrunk to a minimal replayable scenario when something breaks.
//!
//! Owns schedule generation and shrinking. A schedule is an ordinary [`Scenario`]: enable, a
//! window of random faults, heal everything, then `expect agreement` after the documented
//! [`liveness_bound`]. It must never use anything but the seed for randomness, so
//! `schedule(seed, cfg)` is the whole reproduction recipe.

use super::rng::Rng;
use super::script::{Action, Scenario, Target};
use super::world::{liveness_bound, Stats, Violation, World};
use crate::ha::{TestBug, Timeouts};
use std::ops::Range;

/// Shape of the random schedules.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    /// T in ms.
    pub timeout_ms: u64,
    /// Pool sizes drawn from this range.
    pub hosts: Range<usize>,
    /// Faults per schedule drawn from `1..=max_faults`.
    pub max_faults: usize,
    /// Length of the fault window, in units of T.
    pub window_t: u64,
    /// Deliberate bug to re-enable (self-test only).
    pub bug: Option<TestBug>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            timeout_ms: 1000,
            hosts: 2..6,
            max_faults: 6,
            window_t: 6,
            bug: None,
        }
    }
}

/// A schedule that broke something.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The first violation, or the failed liveness expectation.
    pub what: String,
    /// A minimal scenario that still fails (replay it with the scenario runner).
    pub minimal: Scenario,
}

/// Totals over a search.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Schedules run.
    pub runs: u64,
    /// Simulated events.
    pub events: u64,
    /// Fences and watchdog resets seen (legitimate ones).
    pub fences: u64,
    /// Masters elected.
    pub masters: u64,
    /// Failures (first few).
    pub failures: Vec<Failure>,
}

/// The random schedule for `seed`.
pub fn schedule(seed: u64, cfg: &SearchConfig) -> Scenario {
    let mut r = Rng::new(seed);
    let t = Timeouts::derive(cfg.timeout_ms).expect("valid T");
    let big_t = cfg.timeout_ms;
    let n = r.range(cfg.hosts.start as u64, cfg.hosts.end as u64 - 1) as usize;
    let start = big_t;
    let heal = start + cfg.window_t * big_t;
    let mut actions = vec![(0, Action::Enable(Target::All))];
    let faults = r.range(1, cfg.max_faults as u64);
    let h = |r: &mut Rng| r.below(n as u64) as usize;
    let pair = |r: &mut Rng| {
        let a = r.below(n as u64) as usize;
        let b = (a + 1 + r.below(n as u64 - 1) as usize) % n;
        (a, b)
    };
    for _ in 0..faults {
        let at = r.range(start, heal - 1);
        let left = heal - at;
        let a = match r.below(16) {
            0 => Action::Crash(h(&mut r)),
            1 => Action::Reboot(h(&mut r), r.range(big_t / 2, left.max(big_t / 2))),
            2 => Action::Hang(
                h(&mut r),
                r.range(t.hb_interval, (2 * t.lease).min(left.max(t.hb_interval))),
            ),
            3 => {
                let (a, b) = pair(&mut r);
                Action::Cut(a, b)
            }
            4 => {
                let (a, b) = pair(&mut r);
                Action::CutOneWay(a, b)
            }
            5 => Action::Isolate(h(&mut r)),
            6 => Action::Loss(r.range(10, 60)),
            7 => Action::Dup(r.range(10, 50)),
            8 => Action::Delay(r.range(1, t.hb_interval / 2), r.range(0, t.hb_interval)),
            9 => Action::SfFail(Target::Host(h(&mut r))),
            10 => Action::SfFail(Target::All),
            11 => Action::SfSlow(
                Target::Host(h(&mut r)),
                r.range(t.sf_interval / 2, 2 * big_t),
            ),
            12 => Action::SfCorrupt(if r.chance(30) { None } else { Some(h(&mut r)) }),
            13 => Action::Drift(h(&mut r), r.range(0, 10_000) as i64 - 5_000),
            14 => {
                if r.chance(50) {
                    let (a, b) = pair(&mut r);
                    Action::Heal(a, b)
                } else {
                    Action::SfOk(Target::Host(h(&mut r)))
                }
            }
            _ => Action::Shutdown(h(&mut r)),
        };
        actions.push((at, a));
    }
    let check = heal + liveness_bound(&t);
    actions.push((heal, Action::HealAll));
    actions.push((check, Action::ExpectAgreement));
    actions.sort_by_key(|(at, _)| *at);
    Scenario {
        hosts: n,
        timeout_ms: big_t,
        seed,
        end: check,
        actions,
    }
}

/// What went wrong in one run, if anything.
fn verdict(sc: &Scenario, bug: Option<TestBug>) -> (Option<String>, Stats) {
    let out = World::new(sc, false, bug).run();
    let what = match (out.violation, out.failed_expectations.first()) {
        (Some(Violation { time, what }), _) => Some(format!("safety at {time} ms: {what}")),
        (None, Some(f)) => Some(format!("liveness {f}")),
        _ => None,
    };
    (what, out.stats)
}

/// Shrinks a failing scenario: drops fault lines one by one while it still fails the same way
/// (safety stays safety, liveness stays liveness).
pub fn minimize(sc: &Scenario, bug: Option<TestBug>) -> Scenario {
    let Some(first) = verdict(sc, bug).0 else {
        return sc.clone();
    };
    let kind = first.split(' ').next().unwrap_or("").to_string();
    let mut cur = sc.clone();
    loop {
        let mut shrunk = false;
        for i in (0..cur.actions.len()).rev() {
            if matches!(
                cur.actions[i].1,
                Action::Enable(_) | Action::ExpectAgreement
            ) {
                continue;
            }
            let mut cand = cur.clone();
            cand.actions.remove(i);
            if verdict(&cand, bug).0.is_some_and(|w| w.starts_with(&kind)) {
                cur = cand;
                shrunk = true;
            }
        }
        if !shrunk {
            return cur;
        }
    }
}

/// Runs one seed; on failure returns the minimal scenario.
pub fn run_seed(seed: u64, cfg: &SearchConfig) -> Result<Stats, Box<Failure>> {
    let sc = schedule(seed, cfg);
    match verdict(&sc, cfg.bug) {
        (None, stats) => Ok(stats),
        (Some(what), _) => Err(Box::new(Failure {
            seed,
            what,
            minimal: minimize(&sc, cfg.bug),
        })),
    }
}

/// Runs every seed in `seeds`, keeping at most `keep` failures.
pub fn search(seeds: impl IntoIterator<Item = u64>, cfg: &SearchConfig, keep: usize) -> Report {
    let mut rep = Report::default();
    for seed in seeds {
        rep.runs += 1;
        match run_seed(seed, cfg) {
            Ok(s) => {
                rep.events += s.events;
                rep.fences += (s.fences + s.watchdog_resets) as u64;
                rep.masters += s.masters as u64;
            }
            Err(f) => {
                rep.failures.push(*f);
                if rep.failures.len() >= keep {
                    break;
                }
            }
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_reproducible_and_end_with_a_liveness_check() {
        let cfg = SearchConfig::default();
        let a = schedule(17, &cfg);
        assert_eq!(a, schedule(17, &cfg));
        assert_ne!(a, schedule(18, &cfg));
        assert_eq!(a.actions.last().unwrap().1, Action::ExpectAgreement);
        assert_eq!(Scenario::parse(&a.to_string()).unwrap(), a);
    }
}
