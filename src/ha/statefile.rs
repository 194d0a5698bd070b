//! The statefile layout: one global section and one section per host, each checksummed.
//!
//! Owns the byte layout only (versioned, our own, with xha's as the model): the agent builds
//! sections with these types and asks its driver to write and read the bytes. It must never do
//! I/O itself, and a section that fails its magic, version, generation, slot or CRC-32 check is
//! reported as an error and never trusted. An all-zero section means "never written".
//!
//! Layout: section *k* lives at `k · SECTION_SIZE`; section 0 is global, host *i* is section
//! `1 + i`. 512-byte sections match the sector size, so each write is atomic on O_DIRECT and a
//! 64-host file is 33,280 bytes (xha: 266,240); 256 hosts fit in 131,584 bytes.

use super::{HostSet, HostUuid, Phase};
use std::fmt;

/// Bytes per section (one sector).
pub const SECTION_SIZE: usize = 512;
/// Layout version.
pub const VERSION: u16 = 1;
const GLOBAL_MAGIC: [u8; 4] = *b"XHAG";
const HOST_MAGIC: [u8; 4] = *b"XHAH";
const CRC_AT: usize = SECTION_SIZE - 4;
const NO_HOST: u16 = 0xFFFF;

/// Size of the statefile for `n` hosts.
pub fn file_size(n: usize) -> usize {
    SECTION_SIZE * (1 + n)
}

/// Byte offset of host `i`'s section.
pub fn host_offset(i: usize) -> usize {
    SECTION_SIZE * (1 + i)
}

/// Pool state in the global section (xha's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolState {
    /// Never initialised.
    None = 0,
    /// Enable in progress: the first liveset has not formed yet.
    Init = 1,
    /// HA running.
    Active = 2,
    /// HA disabled: every agent that sees this disarms and stops.
    Invalid = 3,
}

/// The global section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalSection {
    /// HA generation.
    pub generation: [u8; 16],
    /// Pool state.
    pub pool_state: PoolState,
    /// Number of configured hosts.
    pub config_hosts: u16,
    /// Index of the host that last won the master lock.
    pub master: Option<u16>,
    /// That host's UUID (all zero when none).
    pub master_uuid: HostUuid,
    /// Master epoch: +1 for every new master; the fencing token.
    pub epoch: u64,
}

/// One host's section: written only by that host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSection {
    /// HA generation.
    pub generation: [u8; 16],
    /// Host index (must match the slot).
    pub index: u16,
    /// Host UUID.
    pub uuid: HostUuid,
    /// Incremented on every write: its movement is the storage heartbeat.
    pub sequence: u64,
    /// Cleanly shut down: does not count against survival rule 2.
    pub excluded: bool,
    /// Booting, not a member yet.
    pub starting: bool,
    /// Host's phase.
    pub phase: Phase,
    /// Host can reach the statefile (as far as it knows).
    pub sf_access: bool,
    /// Surviving under rule 2.
    pub sr2: bool,
    /// Host asks for the master lock.
    pub lock_request: bool,
    /// Host the writer grants the master lock to.
    pub lock_grant: Option<u16>,
    /// Highest master epoch the writer knows.
    pub epoch: u64,
    /// Writer's current liveset.
    pub current: HostSet,
    /// Writer's proposed liveset.
    pub proposed: HostSet,
    /// Writer's heartbeat domain.
    pub hbdomain: HostSet,
    /// Writer's statefile domain.
    pub sfdomain: HostSet,
}

/// Why a section is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionError {
    /// All zero: never written.
    Empty,
    /// Too short.
    Truncated,
    /// Wrong magic.
    BadMagic,
    /// Wrong CRC-32: torn or corrupted.
    BadChecksum,
    /// Unknown layout version.
    BadVersion(u16),
    /// Written by another HA generation.
    WrongGeneration,
    /// Host section found in the wrong slot.
    WrongSlot(u16),
    /// A field holds an impossible value.
    BadField,
}

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

fn seal(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(CRC_AT, 0);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn check(bytes: &[u8], magic: [u8; 4], generation: &[u8; 16]) -> Result<(), SectionError> {
    if bytes.len() < SECTION_SIZE {
        return Err(SectionError::Truncated);
    }
    let s = &bytes[..SECTION_SIZE];
    if s.iter().all(|b| *b == 0) {
        return Err(SectionError::Empty);
    }
    if s[0..4] != magic {
        return Err(SectionError::BadMagic);
    }
    let crc = u32::from_le_bytes(s[CRC_AT..].try_into().expect("4 bytes"));
    if crc32fast::hash(&s[..CRC_AT]) != crc {
        return Err(SectionError::BadChecksum);
    }
    let version = u16::from_le_bytes([s[4], s[5]]);
    if version != VERSION {
        return Err(SectionError::BadVersion(version));
    }
    if &s[8..24] != generation {
        return Err(SectionError::WrongGeneration);
    }
    Ok(())
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

impl GlobalSection {
    /// Serialises to exactly [`SECTION_SIZE`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SECTION_SIZE);
        b.extend_from_slice(&GLOBAL_MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(SECTION_SIZE as u16).to_le_bytes());
        b.extend_from_slice(&self.generation);
        b.push(self.pool_state as u8);
        b.push(0);
        b.extend_from_slice(&(super::MAX_HOSTS as u16).to_le_bytes());
        b.extend_from_slice(&self.config_hosts.to_le_bytes());
        b.extend_from_slice(&self.master.unwrap_or(NO_HOST).to_le_bytes());
        b.extend_from_slice(&self.epoch.to_le_bytes());
        b.extend_from_slice(&self.master_uuid.0);
        seal(b)
    }

    /// Parses and verifies a global section of `generation`.
    pub fn decode(bytes: &[u8], generation: &[u8; 16]) -> Result<GlobalSection, SectionError> {
        check(bytes, GLOBAL_MAGIC, generation)?;
        let pool_state = match bytes[24] {
            0 => PoolState::None,
            1 => PoolState::Init,
            2 => PoolState::Active,
            3 => PoolState::Invalid,
            _ => return Err(SectionError::BadField),
        };
        let master = u16_at(bytes, 30);
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&bytes[40..56]);
        Ok(GlobalSection {
            generation: *generation,
            pool_state,
            config_hosts: u16_at(bytes, 28),
            master: (master != NO_HOST).then_some(master),
            epoch: u64_at(bytes, 32),
            master_uuid: HostUuid(uuid),
        })
    }
}

impl HostSection {
    /// Serialises to exactly [`SECTION_SIZE`] bytes; `words` is the pool's bitmap width.
    pub fn encode(&self, words: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(SECTION_SIZE);
        b.extend_from_slice(&HOST_MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(SECTION_SIZE as u16).to_le_bytes());
        b.extend_from_slice(&self.generation);
        b.extend_from_slice(&self.index.to_le_bytes());
        b.push(words as u8);
        b.push(self.phase as u8);
        let flags = [
            self.excluded,
            self.starting,
            self.sf_access,
            self.lock_request,
            self.sr2,
        ]
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, f)| acc | ((*f as u8) << i));
        b.push(flags);
        b.push(0);
        b.extend_from_slice(&self.lock_grant.unwrap_or(NO_HOST).to_le_bytes());
        b.extend_from_slice(&self.uuid.0);
        b.extend_from_slice(&self.sequence.to_le_bytes());
        b.extend_from_slice(&self.epoch.to_le_bytes());
        for set in [
            &self.current,
            &self.proposed,
            &self.hbdomain,
            &self.sfdomain,
        ] {
            for w in set.words(words) {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        seal(b)
    }

    /// Parses and verifies the section found in slot `slot` (host index).
    pub fn decode(
        bytes: &[u8],
        generation: &[u8; 16],
        slot: usize,
    ) -> Result<HostSection, SectionError> {
        check(bytes, HOST_MAGIC, generation)?;
        let index = u16_at(bytes, 24);
        if index as usize != slot {
            return Err(SectionError::WrongSlot(index));
        }
        let words = bytes[26] as usize;
        if words == 0 || words * 64 > super::MAX_HOSTS {
            return Err(SectionError::BadField);
        }
        let phase = Phase::from_u8(bytes[27]).ok_or(SectionError::BadField)?;
        let flags = bytes[28];
        let grant = u16_at(bytes, 30);
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&bytes[32..48]);
        let set_at = |k: usize| {
            let base = 64 + k * 8 * words;
            let mut ws = [0u64; super::MAX_HOSTS / 64];
            for (i, w) in ws.iter_mut().enumerate().take(words) {
                *w = u64_at(bytes, base + 8 * i);
            }
            HostSet::from_words(&ws)
        };
        Ok(HostSection {
            generation: *generation,
            index,
            uuid: HostUuid(uuid),
            sequence: u64_at(bytes, 48),
            excluded: flags & 1 != 0,
            starting: flags & 2 != 0,
            sf_access: flags & 4 != 0,
            lock_request: flags & 8 != 0,
            sr2: flags & 16 != 0,
            phase,
            lock_grant: (grant != NO_HOST).then_some(grant),
            epoch: u64_at(bytes, 56),
            current: set_at(0),
            proposed: set_at(1),
            hbdomain: set_at(2),
            sfdomain: set_at(3),
        })
    }
}

/// A fresh statefile as `ha_set_pool_state init` leaves it: global section in state INIT and
/// every host section empty.
pub fn initial(generation: [u8; 16], n: usize) -> Vec<u8> {
    let mut f = vec![0u8; file_size(n)];
    let g = GlobalSection {
        generation,
        pool_state: PoolState::Init,
        config_hosts: n as u16,
        master: None,
        master_uuid: HostUuid::default(),
        epoch: 0,
    };
    f[..SECTION_SIZE].copy_from_slice(&g.encode());
    f
}

/// A parsed statefile: every section verified independently.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The global section.
    pub global: Result<GlobalSection, SectionError>,
    /// Host sections by index.
    pub hosts: Vec<Result<HostSection, SectionError>>,
}

/// Parses the whole file for a pool of `n` hosts. A short file yields `Truncated` sections.
pub fn parse(bytes: &[u8], n: usize, generation: &[u8; 16]) -> Snapshot {
    let section = |k: usize| {
        bytes
            .get(k * SECTION_SIZE..(k + 1) * SECTION_SIZE)
            .unwrap_or(&[])
    };
    Snapshot {
        global: GlobalSection::decode(section(0), generation),
        hosts: (0..n)
            .map(|i| HostSection::decode(section(1 + i), generation, i))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(i: u16, seq: u64) -> HostSection {
        HostSection {
            generation: [4; 16],
            index: i,
            uuid: HostUuid([i as u8; 16]),
            sequence: seq,
            excluded: false,
            starting: true,
            phase: Phase::Online,
            sf_access: true,
            sr2: false,
            lock_request: true,
            lock_grant: Some(0),
            epoch: 7,
            current: HostSet::first_n(64),
            proposed: HostSet::first_n(63),
            hbdomain: HostSet::single(3),
            sfdomain: HostSet::EMPTY,
        }
    }

    #[test]
    fn corrupt_sections_are_detected_and_isolated() {
        let n = 64;
        let mut f = initial([4; 16], n);
        assert_eq!(f.len(), 33_280);
        for i in 0..n {
            f[host_offset(i)..host_offset(i) + SECTION_SIZE]
                .copy_from_slice(&host(i as u16, 1).encode(1));
        }
        let snap = parse(&f, n, &[4; 16]);
        assert_eq!(snap.global.as_ref().unwrap().pool_state, PoolState::Init);
        assert!(snap.hosts.iter().all(|h| h.is_ok()));
        // One flipped byte in host 5 only spoils host 5.
        f[host_offset(5) + 50] ^= 0x40;
        let snap = parse(&f, n, &[4; 16]);
        assert_eq!(snap.hosts[5], Err(SectionError::BadChecksum));
        assert!(snap.hosts[4].is_ok() && snap.hosts[6].is_ok());
        // A section copied into the wrong slot is refused, as is another generation.
        let wrong = host(7, 1).encode(1);
        assert_eq!(
            HostSection::decode(&wrong, &[4; 16], 8),
            Err(SectionError::WrongSlot(7))
        );
        assert_eq!(
            HostSection::decode(&wrong, &[5; 16], 7),
            Err(SectionError::WrongGeneration)
        );
        assert_eq!(
            HostSection::decode(&[0; SECTION_SIZE], &[4; 16], 0),
            Err(SectionError::Empty)
        );
        assert_eq!(
            parse(&f[..100], n, &[4; 16]).hosts[0],
            Err(SectionError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn host_section_round_trips(seq in any::<u64>(), i in 0u16..256, grant in proptest::option::of(0u16..256), w in any::<u64>()) {
            let mut h = host(i, seq);
            h.lock_grant = grant;
            h.hbdomain = HostSet::from_words(&[w, !w, w, 1]);
            let b = h.encode(4);
            prop_assert_eq!(b.len(), SECTION_SIZE);
            prop_assert_eq!(HostSection::decode(&b, &[4; 16], i as usize).unwrap(), h);
        }

        #[test]
        fn any_single_byte_corruption_is_caught(pos in 0usize..SECTION_SIZE, flip in 1u8..) {
            let g = GlobalSection { generation: [4; 16], pool_state: PoolState::Active, config_hosts: 3, master: Some(1), master_uuid: HostUuid([1; 16]), epoch: 9 };
            let mut b = g.encode();
            prop_assert_eq!(GlobalSection::decode(&b, &[4; 16]).unwrap(), g);
            b[pos] ^= flip;
            prop_assert!(GlobalSection::decode(&b, &[4; 16]).is_err());
        }
    }
}
