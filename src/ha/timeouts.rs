//! Every HA timer, derived from one number T (`ha-config:timeout`), in milliseconds.
//!
//! Owns the formulas and nothing else: it must never read a clock. For T >= 10 s the xapi/xha
//! values are reproduced exactly (xapi `Timeouts.derive`, in whole seconds); below 10 s
//! ("lab" values, which xapi refuses) every interval scales with T so tests run in seconds.
//!
//! On top of xapi's table we derive the three numbers our safety argument needs:
//!
//! * `settle = 2·max(t1, t2)` — the fault handler's budget: how long survivors may take to agree
//!   and decide;
//! * `lease` — how long a host may keep acting on one proof of membership. A host kicks its
//!   watchdog only while a lease from every other member is valid, and a lease started by a
//!   heartbeat *sent* at time s expires at `s + lease`. It must outlive detection plus the fault
//!   handler, so a survivor never loses its lease while removing a dead peer:
//!   `lease = T1 + settle + 4·t1` (two intervals for a lost heartbeat or two, two for the echo
//!   to come back);
//! * `drift_margin` — slack for clocks running up to 1 % apart: `lease / 50`.
//!
//! A survivor drops a removed host at `last_packet_received + lease + drift_margin`: by then the
//! removed host's lease (which can only rest on packets the survivor answered before it stopped
//! granting) has expired, so it has fenced or its watchdog has fired (docs/ha.md, "Timing").

use std::fmt;

/// Smallest accepted T: below this, packet scheduling noise dominates the intervals.
pub const MIN_T_MS: u64 = 200;
/// xapi refuses T below 10 s; we accept it for labs and say so with [`Timeouts::is_lab`].
pub const XAPI_MIN_T_MS: u64 = 10_000;

/// All timers in milliseconds. Names follow xha's `config.h` where one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// T, the base everything derives from.
    pub base: u64,
    /// t1: heartbeat send interval.
    pub hb_interval: u64,
    /// t2: statefile write/read interval.
    pub sf_interval: u64,
    /// t2 while accelerated (lock requests, fault handling): xha's 400 ms.
    pub sf_interval_fast: u64,
    /// T1: a peer is out of the heartbeat domain after this long without a valid packet.
    pub hb_timeout: u64,
    /// T2: a peer is out of the statefile domain after its sequence stood still this long.
    pub sf_timeout: u64,
    /// Wh: xha's heartbeat-thread watchdog (reported; our kicks use the lease, see docs).
    pub hb_watchdog: u64,
    /// Ws: xha's statefile-thread watchdog (reported; our kicks use the lease, see docs).
    pub sf_watchdog: u64,
    /// Tboot: how long a booting host may take to join.
    pub boot_join: u64,
    /// Tenable: how long enable may take to reach the arming agreement.
    pub enable_join: u64,
    /// The fault handler's budget between detecting a fault and deciding.
    pub settle: u64,
    /// Validity of one proof of membership (see the module doc).
    pub lease: u64,
    /// Clock-drift allowance added to every fence deadline.
    pub drift_margin: u64,
}

/// T outside the accepted range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutError(pub u64);

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HA timeout {} ms is outside {MIN_T_MS} ms ..= 1 day",
            self.0
        )
    }
}

impl std::error::Error for TimeoutError {}

impl Timeouts {
    /// Derives every timer from T (ms). See the module doc for the formulas.
    pub fn derive(t_ms: u64) -> Result<Timeouts, TimeoutError> {
        if !(MIN_T_MS..=86_400_000).contains(&t_ms) {
            return Err(TimeoutError(t_ms));
        }
        let (t1, t2, ws, join) = if t_ms >= XAPI_MIN_T_MS {
            // xapi works in whole seconds: t1 = min((T+10)/10, 3), t2 = max(2, T/20),
            // Ws = T+15, Tboot = Tenable = T+60.
            let t = t_ms / 1000;
            (
                ((t + 10) / 10).min(3) * 1000,
                (t / 20).max(2) * 1000,
                t_ms + 15_000,
                t_ms + 60_000,
            )
        } else {
            // Lab scaling: ten heartbeats per T, storage watchdog T + T/4, joins 2T.
            let t1 = (t_ms / 10).max(20);
            (t1, t1, t_ms + t_ms / 4, 2 * t_ms)
        };
        let settle = 2 * t1.max(t2);
        let lease = t_ms + settle + 4 * t1;
        Ok(Timeouts {
            base: t_ms,
            hb_interval: t1,
            sf_interval: t2,
            sf_interval_fast: t2.min(400),
            hb_timeout: t_ms,
            sf_timeout: t_ms,
            hb_watchdog: t_ms,
            sf_watchdog: ws,
            boot_join: join,
            enable_join: join,
            settle,
            lease,
            drift_margin: lease / 50,
        })
    }

    /// True when T is below xapi's minimum: fine for labs and tests, not for production.
    pub fn is_lab(&self) -> bool {
        self.base < XAPI_MIN_T_MS
    }

    /// When a survivor may drop a host whose last heartbeat it received at `last_rx`
    /// (and which it stopped granting no earlier than that): the removed host's lease and its
    /// watchdog have both run out by then.
    pub fn fence_deadline(&self, last_rx: u64) -> u64 {
        last_rx + self.lease + self.drift_margin
    }

    /// xha's FH4 sleep for the same T (for comparison in docs and benchmarks):
    /// `max(max(Wh,Ws) − min(T1,T2) + max(t1,t2), 10 s)`, plus `min(T1,T2)` when extended.
    pub fn xha_fh4_sleep(&self, extended: bool) -> u64 {
        let base = (self.hb_watchdog.max(self.sf_watchdog) - self.hb_timeout.min(self.sf_timeout)
            + self.hb_interval.max(self.sf_interval))
        .max(10_000);
        base + if extended {
            self.hb_timeout.min(self.sf_timeout)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_xapi_table_for_t60_and_t30() {
        let t = Timeouts::derive(60_000).unwrap();
        assert_eq!((t.hb_interval, t.sf_interval), (3000, 3000));
        assert_eq!(
            (t.hb_timeout, t.sf_timeout, t.hb_watchdog, t.sf_watchdog),
            (60_000, 60_000, 60_000, 75_000)
        );
        assert_eq!((t.boot_join, t.enable_join), (120_000, 120_000));
        assert_eq!(t.xha_fh4_sleep(false), 18_000);
        let t = Timeouts::derive(30_000).unwrap();
        assert_eq!((t.hb_interval, t.sf_interval), (3000, 2000));
        assert_eq!((t.sf_watchdog, t.boot_join), (45_000, 90_000));
        assert!(!t.is_lab());
    }

    #[test]
    fn lab_values_scale_and_bounds_hold() {
        let t = Timeouts::derive(1000).unwrap();
        assert!(t.is_lab());
        assert_eq!(t.hb_interval, 100);
        // The lease must outlive detection plus the fault handler, or survivors would fence.
        for base in [200, 1000, 9_999, 10_000, 30_000, 60_000, 120_000] {
            let t = Timeouts::derive(base).unwrap();
            assert!(
                t.lease > t.hb_timeout + t.settle + t.hb_interval,
                "T={base}"
            );
            assert!(t.fence_deadline(0) > t.lease);
        }
        assert!(Timeouts::derive(10).is_err());
    }
}
