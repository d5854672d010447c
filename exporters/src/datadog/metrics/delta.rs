//! Cumulative → delta state: the last point of each cumulative series
//! (keyed by metric name, host and tags), kept for `delta_ttl` seconds
//! after it was last seen, as the Collector's translator keeps it.
//!
//! Reset rules (OTel data model, "resets and gaps"): a point is a first
//! point when nothing is stored, when its start time is known and differs
//! from the stored one or equals its own timestamp, or (for monotonic
//! series) when the value went down. Points not newer than the stored one
//! are dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Series tracked at most; past it, new series are not tracked (their
/// points are treated as first points) until the TTL frees room.
pub const MAX_SERIES: usize = 500_000;

struct Entry {
    start_ns: u64,
    ts_ns: u64,
    value: f64,
    seen: Instant,
}

pub struct DeltaState {
    ttl: Duration,
    entries: HashMap<String, Entry>,
    last_sweep: Instant,
}

/// What a monotonic cumulative point becomes.
#[derive(Debug, PartialEq)]
pub enum Monotonic {
    /// Not newer than what is stored: drop it.
    Stale,
    /// The first point of the series (or the first after a reset).
    First,
    Delta(f64),
}

impl DeltaState {
    pub fn new(ttl: Duration) -> DeltaState {
        DeltaState {
            ttl,
            entries: HashMap::new(),
            last_sweep: Instant::now(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops series not seen for the TTL; runs at most every TTL/4 so the
    /// cost stays proportional to the traffic.
    pub fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < self.ttl / 4 && self.entries.len() < MAX_SERIES {
            return;
        }
        self.last_sweep = now;
        let ttl = self.ttl;
        self.entries.retain(|_, e| now.duration_since(e.seen) < ttl);
    }

    fn not_first(start_ns: u64, ts_ns: u64, old_start_ns: u64) -> bool {
        start_ns == 0 || (start_ns != ts_ns && start_ns == old_start_ns)
    }

    fn store(&mut self, key: &str, start_ns: u64, ts_ns: u64, value: f64, now: Instant) {
        let entry = Entry {
            start_ns,
            ts_ns,
            value,
            seen: now,
        };
        if let Some(e) = self.entries.get_mut(key) {
            *e = entry;
        } else if self.entries.len() < MAX_SERIES {
            self.entries.insert(key.to_string(), entry);
        }
    }

    /// A monotonic cumulative sum's point.
    pub fn monotonic(
        &mut self,
        key: &str,
        start_ns: u64,
        ts_ns: u64,
        value: f64,
        now: Instant,
    ) -> Monotonic {
        let mut out = Monotonic::First;
        if let Some(e) = self.entries.get(key) {
            if e.ts_ns >= ts_ns {
                return Monotonic::Stale;
            }
            let dx = value - e.value;
            if Self::not_first(start_ns, ts_ns, e.start_ns) && dx >= 0.0 {
                out = Monotonic::Delta(dx);
            }
        }
        self.store(key, start_ns, ts_ns, value, now);
        out
    }

    /// Any cumulative value (histogram buckets, counts and sums, summary
    /// counts): the difference to the previous point, `None` for a first point.
    pub fn diff(
        &mut self,
        key: &str,
        start_ns: u64,
        ts_ns: u64,
        value: f64,
        now: Instant,
    ) -> Option<f64> {
        let mut out = None;
        if let Some(e) = self.entries.get(key) {
            if e.ts_ns > ts_ns {
                return None;
            }
            if Self::not_first(start_ns, ts_ns, e.start_ns) {
                out = Some(value - e.value);
            }
        }
        self.store(key, start_ns, ts_ns, value, now);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_deltas_resets_and_stale_points() {
        let mut s = DeltaState::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(s.monotonic("a", 100, 200, 5.0, now), Monotonic::First);
        assert_eq!(s.monotonic("a", 100, 300, 8.0, now), Monotonic::Delta(3.0));
        assert_eq!(s.monotonic("a", 100, 300, 9.0, now), Monotonic::Stale);
        // Value went down: a reset.
        assert_eq!(s.monotonic("a", 100, 400, 2.0, now), Monotonic::First);
        assert_eq!(s.monotonic("a", 100, 500, 4.0, now), Monotonic::Delta(2.0));
        // New start time: a restart.
        assert_eq!(s.monotonic("a", 450, 600, 10.0, now), Monotonic::First);
        // Unknown start time: assume continuity.
        assert_eq!(s.monotonic("b", 0, 1, 1.0, now), Monotonic::First);
        assert_eq!(s.monotonic("b", 0, 2, 4.0, now), Monotonic::Delta(3.0));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut s = DeltaState::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(s.diff("x", 1, 2, 1.0, t0), None);
        assert_eq!(s.diff("x", 1, 3, 4.0, t0), Some(3.0));
        s.sweep(t0 + Duration::from_secs(61));
        assert_eq!(s.len(), 0);
        assert_eq!(s.diff("x", 1, 4, 5.0, t0), None);
    }
}
