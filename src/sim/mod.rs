//! Deterministic simulator driving many [`crate::ha::Agent`]s in virtual time (issue 5).
//!
//! Owns the simulated world ([`world`]: network, statefile, clocks, watchdogs, invariants),
//! the scenario format ([`script`]), the seeded PRNG ([`rng`]) and the random fault search
//! ([`search`]). It drives the same `Agent` the daemon drives; it must never read the wall
//! clock, spawn threads or use unseeded randomness, so every run replays exactly from its
//! scenario (and a random schedule from its seed).

pub mod rng;
pub mod script;
pub mod search;
pub mod world;

pub use script::{Action, Scenario, Target};
pub use world::{liveness_bound, run, HostState, Mark, Outcome, Stats, Violation, World};
