//! Runs every scenario in `tests/scenarios/<name>/` (a `script` and a golden `timeline`),
//! in the spirit of Proxmox ha-manager's regression tests.
//!
//! For each scenario: the simulator must report no safety violation, every `expect` line in the
//! script must hold, and the produced timeline must equal the reviewed golden file.
//! `UPDATE_GOLDEN=1 cargo test --test sim_scenarios` rewrites the golden files (review the diff);
//! a missing golden file is created on first run, as Proxmox does. `SCENARIO=<name>` runs one.

use std::fs;
use std::path::Path;
use xenha::sim::{run, Scenario};

#[test]
fn scenarios_match_their_golden_timelines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let only = std::env::var("SCENARIO").ok();
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut names: Vec<String> = fs::read_dir(&root)
        .expect("tests/scenarios exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("script").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| only.as_ref().is_none_or(|o| o == n))
        .collect();
    names.sort();
    assert!(
        only.is_some() || names.len() >= 30,
        "only {} scenarios",
        names.len()
    );
    let mut failures = Vec::new();
    for name in &names {
        let dir = root.join(name);
        let script = fs::read_to_string(dir.join("script")).unwrap();
        let sc = Scenario::parse(&script).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = run(&sc);
        let text = out.timeline.join("\n") + "\n";
        if let Some(v) = &out.violation {
            failures.push(format!("{name}: VIOLATION at {} ms: {}", v.time, v.what));
        }
        for f in &out.failed_expectations {
            failures.push(format!("{name}: expectation failed {f}"));
        }
        let golden = dir.join("timeline");
        if update || !golden.exists() {
            fs::write(&golden, &text).unwrap();
        } else {
            let want = fs::read_to_string(&golden).unwrap();
            if want != text {
                let first = want
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                failures.push(format!(
                    "{name}: timeline differs from golden at line {}:\n  golden: {}\n  got:    {}",
                    first + 1,
                    want.lines().nth(first).unwrap_or("<end>"),
                    text.lines().nth(first).unwrap_or("<end>")
                ));
            }
        }
        if std::env::var("SHOW").is_ok() {
            println!("=== {name}\n{text}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `REPLAY=path/to/script cargo test --test sim_scenarios replay -- --nocapture` prints the
/// timeline of any scenario file (e.g. one written by the random search). Without `REPLAY`
/// it replays the bundled master-crash scenario twice and checks the runs are identical.
#[test]
fn replay() {
    let path = std::env::var("REPLAY").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scenarios/master-crash/script"
        )
        .to_string()
    });
    let sc = Scenario::parse(&fs::read_to_string(&path).unwrap()).unwrap();
    let (a, b) = (run(&sc), run(&sc));
    assert_eq!(a.timeline, b.timeline, "same scenario, different timelines");
    println!("{}", a.timeline.join("\n"));
    if let Some(v) = a.violation {
        println!("VIOLATION at {} ms: {}", v.time, v.what);
    }
}
