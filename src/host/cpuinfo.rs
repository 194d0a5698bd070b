//! `/proc/cpuinfo`: one [`Cpu`] per logical CPU, and the host-wide [`CpuSummary`] that becomes
//! `host.cpu_info`.
//!
//! x86 kernels print `vendor_id`, `model name`, `cpu family`, `model`, `stepping`, `cpu MHz`
//! and `flags`; arm64 kernels print `CPU implementer`, `CPU part`, `CPU variant`,
//! `CPU revision` and `Features` instead, which are mapped onto the same fields.

use std::collections::BTreeSet;

/// One logical CPU, in `host_cpu`'s terms.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cpu {
    /// Logical CPU number (`processor`).
    pub number: i64,
    /// Vendor, e.g. `GenuineIntel`, `AuthenticAMD`, `ARM`.
    pub vendor: String,
    /// Model name, e.g. `AMD EPYC 7502P 32-Core Processor`.
    pub modelname: String,
    /// Family (x86 `cpu family`; arm64 architecture).
    pub family: i64,
    /// Model (x86 `model`; arm64 part number).
    pub model: i64,
    /// Stepping (x86 `stepping`; arm64 `r<variant>p<revision>`).
    pub stepping: String,
    /// Speed in MHz, truncated; 0 when the kernel does not say.
    pub speed: i64,
    /// Space-separated feature flags.
    pub flags: String,
    /// Physical package (socket) id, when known.
    pub physical_id: Option<i64>,
    /// Core id within the package, when known.
    pub core_id: Option<i64>,
}

/// Host-wide CPU facts: the keys of `host.cpu_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSummary {
    /// Logical CPUs.
    pub cpu_count: usize,
    /// Sockets.
    pub socket_count: usize,
    /// Hardware threads per core.
    pub threads_per_core: usize,
    /// Vendor of CPU 0.
    pub vendor: String,
    /// Speed of CPU 0 in MHz.
    pub speed: i64,
    /// Model name of CPU 0.
    pub modelname: String,
    /// Family of CPU 0.
    pub family: i64,
    /// Model of CPU 0.
    pub model: i64,
    /// Stepping of CPU 0.
    pub stepping: String,
    /// Flags of CPU 0.
    pub flags: String,
}

/// Parse the whole of `/proc/cpuinfo`.
pub fn parse_cpuinfo(text: &str) -> Vec<Cpu> {
    text.split("\n\n").filter_map(parse_block).collect()
}

fn parse_block(block: &str) -> Option<Cpu> {
    let get = |key: &str| {
        block.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let int = |key: &str| get(key).and_then(|v| parse_int(&v));
    let number = int("processor")?;
    if let Some(implementer) = get("CPU implementer") {
        // arm64: there is no vendor string or model name; decode the MIDR fields.
        let implementer = parse_int(&implementer).unwrap_or(0);
        let part = int("CPU part").unwrap_or(0);
        let variant = int("CPU variant").unwrap_or(0);
        let revision = int("CPU revision").unwrap_or(0);
        return Some(Cpu {
            number,
            vendor: arm_implementer(implementer).to_string(),
            modelname: get("model name").unwrap_or_else(|| arm_part_name(implementer, part)),
            family: int("CPU architecture").unwrap_or(8),
            model: part,
            stepping: format!("r{variant}p{revision}"),
            speed: 0,
            flags: get("Features").unwrap_or_default(),
            physical_id: int("physical id"),
            core_id: int("core id"),
        });
    }
    Some(Cpu {
        number,
        vendor: get("vendor_id").unwrap_or_default(),
        modelname: get("model name").unwrap_or_default(),
        family: int("cpu family").unwrap_or(0),
        model: int("model").unwrap_or(0),
        stepping: get("stepping").unwrap_or_default(),
        speed: get("cpu MHz")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|mhz| mhz as i64)
            .unwrap_or(0),
        flags: get("flags").unwrap_or_default(),
        physical_id: int("physical id"),
        core_id: int("core id"),
    })
}

/// Decimal or `0x` hexadecimal.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn arm_implementer(id: i64) -> &'static str {
    match id {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "APM",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => "unknown",
    }
}

fn arm_part_name(implementer: i64, part: i64) -> String {
    let known = match (implementer, part) {
        (0x41, 0xd03) => Some("Cortex-A53"),
        (0x41, 0xd07) => Some("Cortex-A57"),
        (0x41, 0xd08) => Some("Cortex-A72"),
        (0x41, 0xd0b) => Some("Cortex-A76"),
        (0x41, 0xd0c) => Some("Neoverse-N1"),
        (0x41, 0xd40) => Some("Neoverse-V1"),
        (0x41, 0xd49) => Some("Neoverse-N2"),
        (0x41, 0xd4f) => Some("Neoverse-V2"),
        (0xc0, 0xac3) => Some("Ampere-1"),
        _ => None,
    };
    match known {
        Some(name) => name.to_string(),
        None => format!("{} part {part:#x}", arm_implementer(implementer)),
    }
}

/// Summarise the CPUs the way `host.cpu_info` does.
pub fn summarise(cpus: &[Cpu]) -> CpuSummary {
    let first = cpus.first();
    let sockets: BTreeSet<i64> = cpus.iter().filter_map(|c| c.physical_id).collect();
    let cores: BTreeSet<(i64, i64)> = cpus
        .iter()
        .filter_map(|c| Some((c.physical_id?, c.core_id?)))
        .collect();
    let threads_per_core = if cores.is_empty() {
        1
    } else {
        (cpus.len() / cores.len()).max(1)
    };
    CpuSummary {
        cpu_count: cpus.len(),
        socket_count: sockets.len().max(1),
        threads_per_core,
        vendor: first.map(|c| c.vendor.clone()).unwrap_or_default(),
        speed: first.map(|c| c.speed).unwrap_or(0),
        modelname: first.map(|c| c.modelname.clone()).unwrap_or_default(),
        family: first.map(|c| c.family).unwrap_or(0),
        model: first.map(|c| c.model).unwrap_or(0),
        stepping: first.map(|c| c.stepping.clone()).unwrap_or_default(),
        flags: first.map(|c| c.flags.clone()).unwrap_or_default(),
    }
}

/// Read and parse this machine's `/proc/cpuinfo`.
pub fn read_local() -> std::io::Result<Vec<Cpu>> {
    Ok(parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/cpuinfo/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn intel() {
        let cpus = parse_cpuinfo(&fixture("intel-xeon-2cpu.txt"));
        assert_eq!(cpus.len(), 2);
        let c = &cpus[1];
        assert_eq!(c.number, 1);
        assert_eq!(c.vendor, "GenuineIntel");
        assert_eq!(c.modelname, "Intel(R) Xeon(R) Processor");
        assert_eq!(
            (c.family, c.model, c.stepping.as_str(), c.speed),
            (6, 167, "8", 2000)
        );
        assert!(c.flags.starts_with("fpu vme de pse") && c.flags.contains("avx512f"));
        let s = summarise(&cpus);
        assert_eq!((s.cpu_count, s.socket_count, s.threads_per_core), (2, 1, 1));
    }

    #[test]
    fn amd_with_smt() {
        let cpus = parse_cpuinfo(&fixture("amd-epyc-4cpu.txt"));
        assert_eq!(cpus.len(), 4);
        assert_eq!(cpus[0].vendor, "AuthenticAMD");
        assert_eq!(cpus[0].modelname, "AMD EPYC 7502P 32-Core Processor");
        assert_eq!(
            (cpus[0].family, cpus[0].model, cpus[0].stepping.as_str()),
            (23, 49, "0")
        );
        // Speeds differ per CPU and are truncated MHz.
        assert_eq!(
            cpus.iter().map(|c| c.speed).collect::<Vec<_>>(),
            [2500, 1796, 2494, 3350]
        );
        assert!(cpus[3].flags.contains("sev_es"));
        let s = summarise(&cpus);
        assert_eq!((s.cpu_count, s.socket_count, s.threads_per_core), (4, 1, 2));
    }

    #[test]
    fn arm64() {
        let cpus = parse_cpuinfo(&fixture("arm64-neoverse-n1-2cpu.txt"));
        assert_eq!(cpus.len(), 2);
        let c = &cpus[0];
        assert_eq!(c.vendor, "ARM");
        assert_eq!(c.modelname, "Neoverse-N1");
        assert_eq!(
            (c.family, c.model, c.stepping.as_str(), c.speed),
            (8, 0xd0c, "r3p1", 0)
        );
        assert!(c.flags.starts_with("fp asimd"));
    }

    #[test]
    fn garbage_gives_no_cpus() {
        assert!(parse_cpuinfo("").is_empty());
        assert!(parse_cpuinfo("hello: world\n").is_empty());
    }

    #[test]
    fn this_machine_has_cpus() {
        let cpus = read_local().unwrap();
        assert!(!cpus.is_empty());
        let numbers: BTreeSet<i64> = cpus.iter().map(|c| c.number).collect();
        assert_eq!(numbers.len(), cpus.len(), "processor numbers are distinct");
    }
}
