//! Random fault search over the whole fault model (issue 5, item 10).
//!
//! * `random_schedules_keep_every_invariant`: a few thousand seeds on every `cargo test`
//!   (`SIM_SEEDS=n` to change, `SIM_FIRST_SEED=s` to start elsewhere).
//! * `deliberate_bugs_are_caught`: re-enables a broken rule through the test-only switch and
//!   requires the search to catch it within a few hundred schedules.
//! * `long_random_search` (ignored): millions of seeds, for `docs/benchmarks.md`:
//!   `SIM_SEEDS=1000000 cargo test --release --test sim_search -- --ignored --nocapture`.
//!
//! Any failure prints the seed and a minimal replayable scenario, and writes it to
//! `target/sim-failures/seed-<seed>/script` (copy it to `tests/scenarios/<name>/` to keep it).

use std::time::Instant;
use xenha::ha::TestBug;
use xenha::sim::search::{search, Failure, SearchConfig};
use xenha::sim::World;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(failures: &[Failure]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sim-failures");
    let mut text = String::new();
    for f in failures {
        let d = dir.join(format!("seed-{}", f.seed));
        let _ = std::fs::create_dir_all(&d);
        let _ = std::fs::write(d.join("script"), f.minimal.to_string());
        text += &format!(
            "seed {}: {}\nminimal scenario ({}):\n{}\n",
            f.seed,
            f.what,
            d.display(),
            f.minimal
        );
    }
    text
}

#[test]
fn random_schedules_keep_every_invariant() {
    let first = env_u64("SIM_FIRST_SEED", 0);
    let n = env_u64("SIM_SEEDS", 2000);
    let start = Instant::now();
    let rep = search(first..first + n, &SearchConfig::default(), 3);
    eprintln!(
        "{} schedules, {} events, {} fences/resets, {} masters in {:.1?}",
        rep.runs,
        rep.events,
        rep.fences,
        rep.masters,
        start.elapsed()
    );
    assert!(rep.failures.is_empty(), "{}", report(&rep.failures));
    // The search must exercise the dangerous paths, not just idle pools.
    assert!(rep.fences > rep.runs / 10, "too few fences: {}", rep.fences);
    assert!(rep.masters > rep.runs, "too few elections: {}", rep.masters);
}

#[test]
fn deliberate_bugs_are_caught() {
    for bug in [TestBug::SkipFenceWait, TestBug::KickWithoutLease] {
        let cfg = SearchConfig {
            bug: Some(bug),
            ..SearchConfig::default()
        };
        let start = Instant::now();
        let rep = search(0..500, &cfg, 1);
        let f = rep
            .failures
            .first()
            .unwrap_or_else(|| panic!("{bug:?} not caught in {} schedules", rep.runs));
        eprintln!(
            "{bug:?} caught after {} schedules in {:.1?}: {}",
            rep.runs,
            start.elapsed(),
            f.what
        );
        assert!(f.what.starts_with("safety"), "{bug:?}: {}", f.what);
        // The minimal scenario replays the violation with the bug, and is clean without it.
        let with_bug = World::new(&f.minimal, true, Some(bug)).run();
        assert!(
            with_bug.violation.is_some(),
            "minimal scenario does not replay:\n{}",
            f.minimal
        );
        let without = World::new(&f.minimal, false, None).run();
        assert!(
            without.violation.is_none(),
            "violation without the bug:\n{}",
            f.minimal
        );
        assert!(f.minimal.actions.len() <= 6, "not minimal:\n{}", f.minimal);
    }
}

#[test]
#[ignore = "long run: millions of schedules"]
fn long_random_search() {
    let first = env_u64("SIM_FIRST_SEED", 1_000_000);
    let n = env_u64("SIM_SEEDS", 1_000_000);
    let start = Instant::now();
    let rep = search(first..first + n, &SearchConfig::default(), 3);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "long search: {} schedules (seeds {first}..{}), {} events, {} fences/resets, {} masters, {:.0} s, {:.0} schedules/s",
        rep.runs,
        first + n,
        rep.events,
        rep.fences,
        rep.masters,
        secs,
        rep.runs as f64 / secs
    );
    assert!(rep.failures.is_empty(), "{}", report(&rep.failures));
}
