//! Pool-size scaling of the HA core, measured in the simulator (for `docs/benchmarks.md`):
//! `cargo test --release --test sim_scaling -- --ignored --nocapture`.
//!
//! For each size a master crash and a half/half split are simulated with T = 1 s; the test
//! checks they stay safe and correct at every size (up to 256 hosts, four times XenServer's
//! limit) and prints wall time, events, wire sizes and the failover timeline.

use std::time::Instant;
use xenha::ha::{packet, statefile};
use xenha::sim::{Mark, Scenario, World};

fn scenario(n: usize, split: bool) -> Scenario {
    let half = n / 2;
    let fault = if split {
        format!(
            "at 2000 partition h0..h{} h{}..h{}\n",
            half - 1,
            half,
            n - 1
        )
    } else {
        "at 2000 crash h0\n".to_string()
    };
    let survivors = if split {
        format!("h0..h{}", half - 1)
    } else {
        format!("h1..h{}", n - 1)
    };
    let master = if split { "h0" } else { "h1" };
    Scenario::parse(&format!(
        "hosts {n}\ntimeout 1000\nend 6000\nat 0 enable all\n{fault}at 6000 expect liveset {survivors}\nat 6000 expect master {master}\n"
    ))
    .unwrap()
}

#[test]
#[ignore = "measurement: run in release"]
fn pool_size_scaling() {
    println!("| hosts | fault | wall ms | events | packet bytes | statefile bytes | new liveset after | new master after |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in [4usize, 8, 16, 32, 64, 128, 256] {
        for split in [false, true] {
            let sc = scenario(n, split);
            let start = Instant::now();
            let out = World::new(&sc, false, None).run();
            let wall = start.elapsed().as_millis();
            assert!(out.violation.is_none(), "{n} hosts: {:?}", out.violation);
            assert!(
                out.failed_expectations.is_empty(),
                "{n} hosts: {:?}",
                out.failed_expectations
            );
            let shrink = out
                .marks
                .iter()
                .filter(|(t, _, m)| *t > 2000 && matches!(m, Mark::Liveset(_)))
                .map(|(t, _, _)| *t)
                .max();
            let master = out
                .marks
                .iter()
                .filter(|(t, _, m)| *t > 2000 && matches!(m, Mark::Master(_)))
                .map(|(t, _, _)| *t)
                .next();
            let fmt = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("{} ms", t - 2000));
            println!(
                "| {n} | {} | {wall} | {} | {} | {} | {} | {} |",
                if split {
                    "split in halves"
                } else {
                    "master crash"
                },
                out.stats.events,
                packet::packet_len(n.div_ceil(64)),
                statefile::file_size(n),
                fmt(shrink),
                fmt(master),
            );
        }
    }
}
