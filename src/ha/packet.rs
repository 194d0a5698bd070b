//! The network heartbeat: packet codec, authentication, replay rejection and the hbdomain.
//!
//! Owns the wire format (versioned, little-endian, ours rather than xha's 744-byte struct) and
//! the per-peer "last valid packet" table from which the heartbeat domain is computed. Every
//! packet is authenticated with HMAC-SHA256 under the pool secret, so a forged fence request or
//! a forged "I can see you" is rejected (xha's packets carry an unused checksum field). It must
//! never trust a packet before the MAC, generation, sender and sequence checks have passed.
//!
//! Packets are unicast and addressed: `dest` is inside the MAC and `echo_seq` is the last
//! sequence the sender accepted *from the destination*. That echo is what a receiver's
//! membership lease rests on (see [`crate::ha::timeouts`]).

use super::{HostSet, HostUuid, Phase, PoolConfig};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"XHAb";
/// Wire format version; bumped on any layout change.
pub const VERSION: u16 = 1;
const HEADER: usize = 80;
const MAC_LEN: usize = 32;

/// Size of a packet for a pool whose bitmaps take `words` 64-bit words.
pub fn packet_len(words: usize) -> usize {
    HEADER + 4 * 8 * words + MAC_LEN
}

/// Everything one heartbeat says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// HA generation of the sender.
    pub generation: [u8; 16],
    /// Sender's host index.
    pub sender: u16,
    /// Sender's UUID (must match the configured UUID at `sender`).
    pub sender_uuid: HostUuid,
    /// Destination host index (a packet is only valid for the host it was sent to).
    pub dest: u16,
    /// Sender's sequence number, strictly increasing per sender.
    pub sequence: u64,
    /// Last sequence the sender accepted from `dest` (0: none yet).
    pub echo_seq: u64,
    /// Highest master epoch the sender knows of (the fencing token).
    pub epoch: u64,
    /// The incarnation of `dest` that the sender admitted into its current liveset (0: `dest`
    /// is not in it); from a joining sender, the incarnation of a co-joiner `dest` it committed
    /// to keep in the liveset it arms with. Lets a starting host tell "formed or joined with
    /// me" from "remembers an earlier me that must be forgotten first", and makes every join
    /// acknowledgement name the incarnation it is for.
    pub admitted: u64,
    /// Sender's phase.
    pub phase: Phase,
    /// Sender can read and write the statefile.
    pub sf_access: bool,
    /// Sender is removing hosts and asks any excluded listener to fence (xha's fence request).
    pub fence_request: bool,
    /// Sender asks to join the liveset.
    pub joining: bool,
    /// Sender has just started and is not a member.
    pub starting: bool,
    /// Sender survives under survival rule 2.
    pub sr2: bool,
    /// Sender currently acts as master.
    pub master: bool,
    /// Sender's current liveset.
    pub current: HostSet,
    /// Sender's proposed liveset (current minus hosts being removed, plus acknowledged joiners).
    pub proposed: HostSet,
    /// Sender's heartbeat domain.
    pub hbdomain: HostSet,
    /// Sender's statefile domain.
    pub sfdomain: HostSet,
}

/// Why a packet was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Length does not match the header's bitmap size.
    BadLength(usize),
    /// Not our magic.
    BadMagic,
    /// A version we do not speak.
    BadVersion(u16),
    /// MAC mismatch: forged, corrupted, or another pool's secret.
    BadMac,
    /// Unknown phase byte.
    BadPhase(u8),
    /// Another HA generation.
    WrongGeneration,
    /// Addressed to another host.
    WrongDestination(u16),
    /// Sender index out of range, or its UUID is not the configured one.
    UnknownSender(u16),
    /// Not newer than the last accepted packet from this sender (replay or reordering).
    Replayed {
        /// Sequence received.
        got: u64,
        /// Last sequence accepted.
        last: u64,
    },
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A keyed HMAC-SHA256, prepared once and cloned per packet.
#[derive(Clone)]
pub struct PacketKey(Hmac<Sha256>);

impl PacketKey {
    /// Prepares the key from the pool secret.
    pub fn new(secret: &[u8]) -> PacketKey {
        PacketKey(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"))
    }
}

impl fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketKey(..)")
    }
}

impl Heartbeat {
    /// Serialises and signs the packet; `words` is the pool's bitmap width.
    pub fn encode(&self, words: usize, key: &PacketKey) -> Vec<u8> {
        let mut b = Vec::with_capacity(packet_len(words));
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.push(words as u8);
        b.push(self.phase as u8);
        let flags = [
            self.sf_access,
            self.fence_request,
            self.joining,
            self.starting,
            self.sr2,
            self.master,
        ]
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, f)| acc | ((*f as u8) << i));
        b.push(flags);
        b.extend_from_slice(&[0; 3]);
        b.extend_from_slice(&self.sender.to_le_bytes());
        b.extend_from_slice(&self.dest.to_le_bytes());
        b.extend_from_slice(&self.generation);
        b.extend_from_slice(&self.sender_uuid.0);
        b.extend_from_slice(&self.sequence.to_le_bytes());
        b.extend_from_slice(&self.echo_seq.to_le_bytes());
        b.extend_from_slice(&self.epoch.to_le_bytes());
        b.extend_from_slice(&self.admitted.to_le_bytes());
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
        let mut mac = key.0.clone();
        mac.update(&b);
        b.extend_from_slice(&mac.finalize().into_bytes());
        b
    }

    /// Checks length, magic, version and MAC, then parses. Semantic checks (generation,
    /// destination, sender, replay) are [`PeerTable::accept`]'s job.
    pub fn decode(bytes: &[u8], key: &PacketKey) -> Result<Heartbeat, PacketError> {
        if bytes.len() < HEADER + MAC_LEN {
            return Err(PacketError::BadLength(bytes.len()));
        }
        if bytes[0..4] != MAGIC {
            return Err(PacketError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(PacketError::BadVersion(version));
        }
        let words = bytes[6] as usize;
        if words == 0 || words * 64 > super::MAX_HOSTS || bytes.len() != packet_len(words) {
            return Err(PacketError::BadLength(bytes.len()));
        }
        let body = bytes.len() - MAC_LEN;
        let mut mac = key.0.clone();
        mac.update(&bytes[..body]);
        mac.verify_slice(&bytes[body..])
            .map_err(|_| PacketError::BadMac)?;
        let phase = Phase::from_u8(bytes[7]).ok_or(PacketError::BadPhase(bytes[7]))?;
        let flags = bytes[8];
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let set_at = |k: usize| {
            let base = HEADER + k * 8 * words;
            let mut ws = [0u64; super::MAX_HOSTS / 64];
            for (i, w) in ws.iter_mut().enumerate().take(words) {
                *w = u64_at(base + 8 * i);
            }
            HostSet::from_words(&ws)
        };
        let mut generation = [0u8; 16];
        generation.copy_from_slice(&bytes[16..32]);
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&bytes[32..48]);
        Ok(Heartbeat {
            generation,
            sender: u16_at(12),
            dest: u16_at(14),
            sender_uuid: HostUuid(uuid),
            sequence: u64_at(48),
            echo_seq: u64_at(56),
            epoch: u64_at(64),
            admitted: u64_at(72),
            phase,
            sf_access: flags & 1 != 0,
            fence_request: flags & 2 != 0,
            joining: flags & 4 != 0,
            starting: flags & 8 != 0,
            sr2: flags & 16 != 0,
            master: flags & 32 != 0,
            current: set_at(0),
            proposed: set_at(1),
            hbdomain: set_at(2),
            sfdomain: set_at(3),
        })
    }
}

/// Per-peer record of the last valid packet: the source of the heartbeat domain.
#[derive(Clone, Debug)]
pub struct PeerTable {
    last_seq: Vec<u64>,
    last_rx: Vec<Option<u64>>,
    latest: Vec<Option<Heartbeat>>,
}

impl PeerTable {
    /// An empty table for `n` hosts.
    pub fn new(n: usize) -> PeerTable {
        PeerTable {
            last_seq: vec![0; n],
            last_rx: vec![None; n],
            latest: vec![None; n],
        }
    }

    /// Validates a decoded packet for host `me` and records it as the sender's latest.
    /// Sequences are u64 and start at 1, so they never wrap within a generation.
    pub fn accept(
        &mut self,
        now: u64,
        me: usize,
        cfg: &PoolConfig,
        hb: Heartbeat,
    ) -> Result<usize, PacketError> {
        if hb.generation != cfg.generation {
            return Err(PacketError::WrongGeneration);
        }
        if hb.dest as usize != me {
            return Err(PacketError::WrongDestination(hb.dest));
        }
        let s = hb.sender as usize;
        if s >= cfg.hosts.len() || s == me || cfg.hosts[s] != hb.sender_uuid {
            return Err(PacketError::UnknownSender(hb.sender));
        }
        if hb.sequence <= self.last_seq[s] {
            return Err(PacketError::Replayed {
                got: hb.sequence,
                last: self.last_seq[s],
            });
        }
        self.last_seq[s] = hb.sequence;
        self.last_rx[s] = Some(now);
        self.latest[s] = Some(hb);
        Ok(s)
    }

    /// Hosts heard from less than `timeout` ago (not including the local host).
    pub fn heard_within(&self, now: u64, timeout: u64) -> HostSet {
        self.last_rx
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Some(t) if now.saturating_sub(*t) < timeout))
            .map(|(i, _)| i)
            .collect()
    }

    /// When the last valid packet from `host` arrived.
    pub fn last_rx(&self, host: usize) -> Option<u64> {
        self.last_rx[host]
    }

    /// Last sequence accepted from `host` (0: none).
    pub fn last_seq(&self, host: usize) -> u64 {
        self.last_seq[host]
    }

    /// The last valid packet from `host`.
    pub fn latest(&self, host: usize) -> Option<&Heartbeat> {
        self.latest[host].as_ref()
    }

    /// Overrides the receive time of `host` (used to ignore packets that must not count).
    pub fn set_last_rx(&mut self, host: usize, at: Option<u64>) {
        self.last_rx[host] = at;
    }

    /// Forgets what a peer said (not its sequence: replays stay rejected).
    pub fn forget(&mut self, host: usize) {
        self.latest[host] = None;
        self.last_rx[host] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::Timeouts;
    use proptest::prelude::*;

    fn cfg(n: usize) -> PoolConfig {
        let hosts = (0..n)
            .map(|i| HostUuid::parse(&format!("{:032x}", i + 1)).unwrap())
            .collect();
        PoolConfig::new(
            [9; 16],
            hosts,
            b"0123456789abcdef".to_vec(),
            Timeouts::derive(1000).unwrap(),
        )
        .unwrap()
    }

    fn sample(cfg: &PoolConfig, seq: u64) -> Heartbeat {
        Heartbeat {
            generation: cfg.generation,
            sender: 1,
            sender_uuid: cfg.hosts[1],
            dest: 0,
            sequence: seq,
            echo_seq: 3,
            epoch: 2,
            admitted: 1,
            phase: Phase::Online,
            sf_access: true,
            fence_request: false,
            joining: false,
            starting: false,
            sr2: false,
            master: true,
            current: HostSet::first_n(3),
            proposed: HostSet::first_n(2),
            hbdomain: HostSet::first_n(3),
            sfdomain: HostSet::single(1),
        }
    }

    #[test]
    fn forged_tampered_and_replayed_packets_are_rejected() {
        let c = cfg(3);
        let key = PacketKey::new(&c.secret);
        let bytes = sample(&c, 5).encode(c.words(), &key);
        assert_eq!(bytes.len(), packet_len(1));
        let mut table = PeerTable::new(3);
        let hb = Heartbeat::decode(&bytes, &key).unwrap();
        assert_eq!(hb, sample(&c, 5));
        assert_eq!(table.accept(10, 0, &c, hb.clone()), Ok(1));
        assert_eq!(
            table.accept(11, 0, &c, hb.clone()),
            Err(PacketError::Replayed { got: 5, last: 5 })
        );
        assert_eq!(
            table.accept(12, 2, &c, sample(&c, 6)),
            Err(PacketError::WrongDestination(0))
        );
        // A forger without the secret: valid layout, wrong MAC.
        let forged = sample(&c, 9).encode(c.words(), &PacketKey::new(b"not-the-pool-secret"));
        assert_eq!(Heartbeat::decode(&forged, &key), Err(PacketError::BadMac));
        // One flipped bit anywhere breaks the MAC.
        let mut t = bytes.clone();
        t[60] ^= 1;
        assert_eq!(Heartbeat::decode(&t, &key), Err(PacketError::BadMac));
        let mut other_gen = sample(&c, 7);
        other_gen.generation = [1; 16];
        assert_eq!(
            table.accept(13, 0, &c, other_gen),
            Err(PacketError::WrongGeneration)
        );
        let mut wrong_uuid = sample(&c, 8);
        wrong_uuid.sender_uuid = c.hosts[2];
        assert_eq!(
            table.accept(14, 0, &c, wrong_uuid),
            Err(PacketError::UnknownSender(1))
        );
        assert_eq!(table.heard_within(15, 10), HostSet::single(1));
        assert_eq!(table.heard_within(20, 10), HostSet::EMPTY);
    }

    proptest! {
        #[test]
        fn codec_round_trips(seq in 1u64.., echo in any::<u64>(), cur in any::<u64>(), flags in any::<u8>(), words in 1usize..=4) {
            let c = cfg(3);
            let key = PacketKey::new(&c.secret);
            let mut hb = sample(&c, seq);
            hb.echo_seq = echo;
            hb.current = HostSet::from_words(&[cur, cur.rotate_left(7), !cur, cur ^ 5][..words]);
            hb.fence_request = flags & 1 != 0;
            hb.joining = flags & 2 != 0;
            let bytes = hb.encode(words, &key);
            prop_assert_eq!(Heartbeat::decode(&bytes, &key).unwrap(), hb);
            prop_assert!(Heartbeat::decode(&bytes[..bytes.len() - 1], &key).is_err());
        }
    }
}
