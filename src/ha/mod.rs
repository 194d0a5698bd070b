//! The HA core: a deterministic, sans-IO state machine (issue 5).
//!
//! This module owns the protocol: timers derived from one number ([`timeouts`]), the
//! authenticated network heartbeat ([`packet`]), the statefile layout ([`statefile`]), the
//! survival rules ([`survival`]), the master lock ([`lock`]) and the [`Agent`] that ties them
//! together. It must never read a clock, open a file, touch a socket, spawn a thread or use
//! tokio: the daemon and the simulator ([`crate::sim`]) are two drivers of the same code, and
//! everything it needs to know (the time included) is handed to it as an [`Input`].
//!
//! Hosts are named by their *index*: the position of their UUID in the pool's host list sorted
//! by UUID, exactly as xhad does, so "lowest index" always means "lowest host UUID".

pub mod agent;
pub mod hostset;
pub mod lock;
pub mod packet;
pub mod statefile;
pub mod survival;
pub mod timeouts;

pub use agent::{Agent, Command, FenceReason, Input, Output, Slot, WatchdogAction};
pub use hostset::{HostSet, MAX_HOSTS};
pub use survival::{Decision, Rule};
pub use timeouts::Timeouts;

use std::fmt;

/// A host's UUID as 16 raw bytes. Parsed from and printed as the usual dashed hex form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HostUuid(pub [u8; 16]);

impl HostUuid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (dashes optional, any case).
    pub fn parse(s: &str) -> Result<HostUuid, ConfigError> {
        let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
        if hex.len() != 32 {
            return Err(ConfigError::BadUuid(s.to_string()));
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
                _ => return Err(ConfigError::BadUuid(s.to_string())),
            }
        }
        Ok(HostUuid(out))
    }
}

impl fmt::Display for HostUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HostUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The phase a host publishes in its heartbeats and statefile section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Phase {
    /// Not running HA (never started, or stopped cleanly).
    Stopped = 0,
    /// Started (enable or boot), waiting to be forgotten and for the other hosts.
    Starting = 1,
    /// Asked an existing liveset to admit it; not armed yet.
    Joining = 2,
    /// Member of the liveset, fencing armed, no fault being handled.
    Online = 3,
    /// Member running the fault handler (a liveset member left a domain).
    FaultHandling = 4,
    /// Start failed (enable/boot timeout or a peer's abort); never armed, fences nobody.
    Aborted = 5,
    /// Fencing disarmed by command: still heartbeats, never fences, never kicks.
    Disarmed = 6,
    /// Fenced itself. Terminal.
    Fenced = 7,
}

impl Phase {
    /// Decodes the wire byte.
    pub fn from_u8(b: u8) -> Option<Phase> {
        Some(match b {
            0 => Phase::Stopped,
            1 => Phase::Starting,
            2 => Phase::Joining,
            3 => Phase::Online,
            4 => Phase::FaultHandling,
            5 => Phase::Aborted,
            6 => Phase::Disarmed,
            7 => Phase::Fenced,
            _ => return None,
        })
    }

    /// True for the phases of an armed liveset member.
    pub fn is_member(self) -> bool {
        matches!(self, Phase::Online | Phase::FaultHandling)
    }

    /// The phase's name, for logs and status reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Starting => "starting",
            Phase::Joining => "joining",
            Phase::Online => "online",
            Phase::FaultHandling => "fault-handling",
            Phase::Aborted => "aborted",
            Phase::Disarmed => "disarmed",
            Phase::Fenced => "fenced",
        }
    }
}

/// A deliberately wrong rule, switched on only by tests to prove the simulator catches it.
/// Production code never sets this; `None` is the only correct value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBug {
    /// Drop removed hosts from the liveset at once instead of after their fence deadline.
    SkipFenceWait,
    /// Keep kicking the watchdog even when membership can no longer be proven.
    KickWithoutLease,
}

/// Why a pool configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Not a 32-hex-digit UUID.
    BadUuid(String),
    /// More hosts than [`MAX_HOSTS`], or none.
    HostCount(usize),
    /// The same UUID appears twice.
    DuplicateHost(HostUuid),
    /// This host is not in the pool's host list.
    NotAMember(HostUuid),
    /// The pool secret is shorter than 16 bytes.
    WeakSecret,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadUuid(s) => write!(f, "not a UUID: {s:?}"),
            ConfigError::HostCount(n) => write!(f, "a pool has 1..={MAX_HOSTS} hosts, not {n}"),
            ConfigError::DuplicateHost(u) => write!(f, "host {u} listed twice"),
            ConfigError::NotAMember(u) => write!(f, "host {u} is not in the pool"),
            ConfigError::WeakSecret => write!(f, "the pool secret must be at least 16 bytes"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything every host of one HA generation agrees on (xhad.conf's equivalent).
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// New on every enable; packets and statefile sections of another generation are refused.
    pub generation: [u8; 16],
    /// The pool's hosts sorted by UUID: the position is the host index.
    pub hosts: Vec<HostUuid>,
    /// Shared secret for heartbeat authentication (HMAC-SHA256).
    pub secret: Vec<u8>,
    /// Every timer, derived from one base T.
    pub timeouts: Timeouts,
    /// Test-only deliberate bug; always `None` outside the simulator's self-test.
    pub test_bug: Option<TestBug>,
    /// The host that asks for the master lock first, before any master was ever elected in
    /// this generation: the pool master at enable time, so enabling HA does not move the
    /// master (xapi: only the master proposes itself; members propose when it fails). Once it
    /// leaves the liveset or any master has held an epoch, every member may ask. `None`: every
    /// member asks at once and the lowest UUID wins.
    pub first_master: Option<HostUuid>,
}

impl PoolConfig {
    /// Builds a configuration, sorting hosts by UUID so every host computes the same indices.
    pub fn new(
        generation: [u8; 16],
        mut hosts: Vec<HostUuid>,
        secret: Vec<u8>,
        timeouts: Timeouts,
    ) -> Result<PoolConfig, ConfigError> {
        if hosts.is_empty() || hosts.len() > MAX_HOSTS {
            return Err(ConfigError::HostCount(hosts.len()));
        }
        if secret.len() < 16 {
            return Err(ConfigError::WeakSecret);
        }
        hosts.sort();
        for w in hosts.windows(2) {
            if w[0] == w[1] {
                return Err(ConfigError::DuplicateHost(w[0]));
            }
        }
        Ok(PoolConfig {
            generation,
            hosts,
            secret,
            timeouts,
            test_bug: None,
            first_master: None,
        })
    }

    /// The index of a host (its rank by UUID), if it belongs to the pool.
    pub fn index_of(&self, host: &HostUuid) -> Option<usize> {
        self.hosts.binary_search(host).ok()
    }

    /// Number of 64-bit words a host bitmap needs for this pool.
    pub fn words(&self) -> usize {
        self.hosts.len().div_ceil(64)
    }
}

/// A statefile I/O failure as reported by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError(pub String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "statefile I/O failed: {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trips_and_sorts_hosts() {
        let a = HostUuid::parse("00000000-0000-0000-0000-0000000000ff").unwrap();
        let b = HostUuid::parse("0000000000000000000000000000000A").unwrap();
        assert_eq!(a.to_string(), "00000000-0000-0000-0000-0000000000ff");
        assert!(HostUuid::parse("xyz").is_err());
        let cfg = PoolConfig::new(
            [1; 16],
            vec![a, b],
            vec![7; 16],
            Timeouts::derive(1000).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg.index_of(&b), Some(0));
        assert_eq!(cfg.index_of(&a), Some(1));
        assert!(PoolConfig::new([1; 16], vec![a, a], vec![7; 16], cfg.timeouts).is_err());
        assert!(PoolConfig::new([1; 16], vec![a], vec![7; 3], cfg.timeouts).is_err());
    }
}
