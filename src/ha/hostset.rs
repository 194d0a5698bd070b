//! Host bitmaps: livesets, domains and grant sets.
//!
//! Owns the fixed-size set type every other HA module uses. Bit *i* is host index *i*. It holds
//! up to [`MAX_HOSTS`] hosts (four times XenServer's limit of 64, so we can measure beyond it).
//! It must never allocate: sets are copied around on every heartbeat.

use std::fmt;

/// The largest pool the HA core supports (XenServer's limit is 64).
pub const MAX_HOSTS: usize = 256;
const WORDS: usize = MAX_HOSTS / 64;

/// A set of host indices.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HostSet([u64; WORDS]);

impl HostSet {
    /// The empty set.
    pub const EMPTY: HostSet = HostSet([0; WORDS]);

    /// Hosts `0..n`.
    pub fn first_n(n: usize) -> HostSet {
        let mut s = HostSet::EMPTY;
        for i in 0..n.min(MAX_HOSTS) {
            s.insert(i);
        }
        s
    }

    /// The set holding only `i`.
    pub fn single(i: usize) -> HostSet {
        let mut s = HostSet::EMPTY;
        s.insert(i);
        s
    }

    /// Adds host `i` (ignored beyond [`MAX_HOSTS`]).
    pub fn insert(&mut self, i: usize) {
        if i < MAX_HOSTS {
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    /// Removes host `i`.
    pub fn remove(&mut self, i: usize) {
        if i < MAX_HOSTS {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Is host `i` in the set?
    pub fn contains(&self, i: usize) -> bool {
        i < MAX_HOSTS && self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True if no host is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Hosts in either set.
    pub fn union(&self, o: &HostSet) -> HostSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a |= b;
        }
        r
    }

    /// Hosts in both sets.
    pub fn intersection(&self, o: &HostSet) -> HostSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a &= b;
        }
        r
    }

    /// Hosts in `self` but not in `o`.
    pub fn difference(&self, o: &HostSet) -> HostSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a &= !b;
        }
        r
    }

    /// Every host of `self` is in `o`.
    pub fn is_subset(&self, o: &HostSet) -> bool {
        self.difference(o).is_empty()
    }

    /// The lowest host index, if any.
    pub fn first(&self) -> Option<usize> {
        self.iter().next()
    }

    /// Host indices in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..WORDS).flat_map(move |w| {
            let mut bits = self.0[w];
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }

    /// The first `n` 64-bit words (wire form; bit *i* of word *w* is host `64w + i`).
    pub fn words(&self, n: usize) -> &[u64] {
        &self.0[..n.min(WORDS)]
    }

    /// Rebuilds a set from its wire words (extra words are ignored).
    pub fn from_words(words: &[u64]) -> HostSet {
        let mut s = HostSet::EMPTY;
        for (d, w) in s.0.iter_mut().zip(words) {
            *d = *w;
        }
        s
    }
}

impl FromIterator<usize> for HostSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> HostSet {
        let mut s = HostSet::EMPTY;
        for i in iter {
            s.insert(i);
        }
        s
    }
}

/// Printed as `{h0,h2,h5..h9}`: host indices, runs of three or more as ranges; the form the
/// timelines and explanations use (a 64-host liveset stays one short line).
impl fmt::Display for HostSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        let v: Vec<usize> = self.iter().collect();
        let mut i = 0;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
                j += 1;
            }
            if i > 0 {
                f.write_str(",")?;
            }
            if j >= i + 2 {
                write!(f, "h{}..h{}", v[i], v[j])?;
            } else if j == i + 1 {
                write!(f, "h{},h{}", v[i], v[j])?;
            } else {
                write!(f, "h{}", v[i])?;
            }
            i = j + 1;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for HostSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn set_algebra() {
        let a: HostSet = [0, 1, 70, 255].into_iter().collect();
        let b: HostSet = [1, 70].into_iter().collect();
        assert!(b.is_subset(&a) && !a.is_subset(&b));
        assert_eq!(a.difference(&b).iter().collect::<Vec<_>>(), vec![0, 255]);
        assert_eq!(a.len(), 4);
        assert_eq!(a.to_string(), "{h0,h1,h70,h255}");
        assert_eq!(
            HostSet::first_n(5).union(&HostSet::single(7)).to_string(),
            "{h0..h4,h7}"
        );
        assert_eq!(HostSet::first_n(3).to_string(), "{h0..h2}");
        assert_eq!(HostSet::from_words(a.words(2)).len(), 3);
    }

    proptest! {
        #[test]
        fn iter_matches_contains(v in proptest::collection::vec(0usize..MAX_HOSTS, 0..40)) {
            let s: HostSet = v.iter().copied().collect();
            let mut sorted = v.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), sorted.clone());
            prop_assert_eq!(s.len(), sorted.len());
            prop_assert_eq!(HostSet::from_words(s.words(4)), s);
        }
    }
}
