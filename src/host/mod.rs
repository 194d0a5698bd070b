//! Local host facts: CPUs from `/proc/cpuinfo`, memory from `/proc/meminfo`, the host name.
//!
//! The parsers are pure functions over the file's text (tested on fixtures from Intel, AMD and
//! arm64 machines); the `read_*` functions are the only I/O here.

pub mod cpuinfo;
pub mod domain;
pub mod files;
pub mod inventory;
pub mod meminfo;
pub mod statefile;
pub mod storage;
pub mod watchdog;

pub use cpuinfo::{parse_cpuinfo, Cpu, CpuSummary};
pub use meminfo::parse_meminfo_total;

/// What a host knows about itself and the pool database must say about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostFacts {
    /// Its logical CPUs.
    pub cpus: Vec<Cpu>,
    /// Total memory in bytes.
    pub memory_total: i64,
    /// Memory the host keeps for itself, in bytes.
    pub memory_overhead: i64,
    /// The address other hosts reach it at.
    pub address: String,
    /// Its host name.
    pub hostname: String,
}

/// This machine's host name, from the kernel.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
