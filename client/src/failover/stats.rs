//! The distribution of one measure over many rounds.

use std::time::Duration;

/// n, p50, p99 and max of some durations. The percentiles are nearest-rank (the smallest
/// value with at least that share of the values at or below it), the rule
/// `peer-bench/spark_failover.py` applies to Spark's figures too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    pub n: usize,
    /// `None` when there are no values, as are `p99` and `max`.
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub max: Option<Duration>,
}

impl Distribution {
    pub fn of(values: impl IntoIterator<Item = Duration>) -> Self {
        let mut v: Vec<Duration> = values.into_iter().collect();
        v.sort();
        Distribution {
            n: v.len(),
            p50: percentile(&v, 0.50),
            p99: percentile(&v, 0.99),
            max: v.last().copied(),
        }
    }
}

/// Nearest-rank percentile `p` (0 to 1) of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

/// Milliseconds, as the figures are printed.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
