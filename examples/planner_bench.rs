//! Failover planner benchmark: maximum host failures to tolerate on seeded random pools.
//!
//! Run with `cargo run --release --example planner_bench` (optionally `-- <utilisation %>
//! [work budget]`).
//! Prints one line per pool size; the numbers go to `docs/benchmarks.md` ("Failover planner").

use std::time::{Duration, Instant};

use xenha::planner::{self, Limits, PlanHost, PlanVm, PoolSnapshot, RestartPriority};

const GIB: u64 = 1 << 30;

/// xorshift64*: a small deterministic generator, so every run measures the same pools.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `hosts` hosts of mixed sizes and `vms` VMs of mixed sizes (0.5 to 32 GiB, mostly small),
/// four in five protected, placed at random until the pool is `utilisation` percent full.
fn pool(hosts: usize, vms: usize, utilisation: u64, seed: u64) -> PoolSnapshot {
    let mut rng = Rng(seed);
    const SIZES: [(u64, u64); 7] = [
        (GIB / 2, 20),
        (GIB, 25),
        (2 * GIB, 25),
        (4 * GIB, 15),
        (8 * GIB, 8),
        (16 * GIB, 5),
        (32 * GIB, 2),
    ];
    let mut sizes = Vec::with_capacity(vms);
    for _ in 0..vms {
        let mut pick = rng.below(100);
        let mut size = SIZES[0].0;
        for &(s, weight) in &SIZES {
            if pick < weight {
                size = s;
                break;
            }
            pick -= weight;
        }
        sizes.push(size);
    }
    let total: u64 = sizes.iter().sum();
    // Host capacities: 1x, 1.5x or 2x a base chosen so the VMs fill `utilisation` percent.
    let factors: Vec<u64> = (0..hosts).map(|_| 2 + rng.below(3)).collect();
    let base = total * 100 / utilisation / factors.iter().sum::<u64>();
    let capacity: Vec<u64> = factors.iter().map(|f| f * base).collect();
    let mut free: Vec<i64> = capacity.iter().map(|&c| c as i64).collect();
    let mut list = Vec::with_capacity(vms);
    for (i, &size) in sizes.iter().enumerate() {
        // Random host with room; the biggest-free host if the random one is full.
        let mut h = rng.below(hosts as u64) as usize;
        if free[h] < size as i64 {
            h = (0..hosts).max_by_key(|&k| free[k]).unwrap();
        }
        free[h] -= size as i64;
        let mut vm = PlanVm::protected(format!("vm-{i:05}"), size, Some(&format!("host-{h:02}")));
        if rng.below(5) == 0 {
            vm.restart_priority = RestartPriority::BestEffort;
        }
        vm.order = rng.below(3) as i64;
        list.push(vm);
    }
    let hosts = (0..hosts)
        .map(|h| PlanHost::new(format!("host-{h:02}"), free[h]))
        .collect();
    PoolSnapshot::new(hosts, list)
}

fn main() {
    let utilisation: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("utilisation in percent"))
        .unwrap_or(60);
    let limits = std::env::args()
        .nth(2)
        .map_or(Limits::default(), |w| Limits {
            max_work: w.parse().expect("work budget in units"),
        });
    println!("utilisation {utilisation}%, limits {limits:?}");
    println!("hosts   VMs  max  upper  exact  xapi-approx  time (median of 5)");
    for hosts in [16, 32, 64] {
        for vms in [500, 2_000, 5_000] {
            let snapshot = pool(
                hosts,
                vms,
                utilisation,
                0x5eed ^ (hosts * 10_007 + vms) as u64,
            );
            let mut times: Vec<Duration> = Vec::new();
            let mut outcome = None;
            for _ in 0..5 {
                let start = Instant::now();
                outcome = Some(planner::max_host_failures_to_tolerate_with(
                    &snapshot, limits,
                ));
                times.push(start.elapsed());
            }
            times.sort();
            let outcome = outcome.unwrap();
            let xapi = planner::xapi_approximate_max_failures(&snapshot);
            println!(
                "{hosts:5} {vms:5} {:>4} {:>6} {:>6} {xapi:>12}  {:>10.2?}",
                outcome
                    .max_failures
                    .map_or("none".to_string(), |m| m.to_string()),
                outcome
                    .upper_bound
                    .map_or("none".to_string(), |m| m.to_string()),
                outcome.exact,
                times[2],
            );
        }
    }
}
