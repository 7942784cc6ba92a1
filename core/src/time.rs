//! Time as the core sees it: a number handed in by the caller, never read from a clock.
//!
//! Two clocks reach the core. The wall clock labels what is replicated (every `at` in a
//! [`Command`](crate::Command), `dead_since`, `recovery_started_at`); it may step (NTP,
//! an operator) and two masters' wall clocks may disagree, so the core never measures a
//! timeout with it. The leader's monotonic clock ([`Now::mono`], and the leader-local
//! [`LastHeard`](crate::LastHeard)) measures every timeout; it is never replicated.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds. On the wall clock (everything replicated): since the Unix epoch, UTC; the
/// master reads its clock at the edge and puts the value into the
/// [`Command`](crate::Command) it proposes, so every replica applies the same number. On
/// the monotonic clock ([`Now::mono`]): since an origin of the leader's process, only
/// ever compared with other readings of that clock on that process.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// Time elapsed from `earlier` to `self`, zero if `earlier` is in the future (clocks
    /// of two leaders may disagree a little; a negative age is treated as fresh).
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + ms`, saturating.
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// `YYYYMMDDHHMMSS` in UTC, the timestamp part of Spark-style ids.
    pub fn compact_utc(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil_utc();
        format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, for logs and the status page.
    pub fn rfc3339_utc(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil_utc();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// (year, month, day, hour, minute, second) in the proleptic Gregorian calendar.
    fn civil_utc(self) -> (i64, u32, u32, u32, u32, u32) {
        let secs = (self.0 / 1000) as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (rem / 3600) as u32,
            ((rem % 3600) / 60) as u32,
            (rem % 60) as u32,
        )
    }
}

/// One reading of both of the leader's clocks, taken at the edge and handed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// The wall clock: the label of the commands proposed now (`at`). Never used to
    /// measure a duration.
    pub wall: Millis,
    /// The leader's monotonic clock: every silence and timeout is measured on it, against
    /// [`LastHeard`](crate::LastHeard) (same clock). Never replicated.
    pub mono: Millis,
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339_utc())
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_known_dates() {
        assert_eq!(Millis(0).compact_utc(), "19700101000000");
        // 2026-11-23T18:15:28Z
        assert_eq!(Millis(1_795_457_728_000).compact_utc(), "20261123181528");
        assert_eq!(
            Millis(1_795_457_728_999).rfc3339_utc(),
            "2026-11-23T18:15:28Z"
        );
        // leap day
        assert_eq!(Millis(951_782_400_000).compact_utc(), "20000229000000");
    }

    #[test]
    fn since_saturates() {
        assert_eq!(Millis(10).since(Millis(4)), 6);
        assert_eq!(Millis(4).since(Millis(10)), 0);
    }
}
