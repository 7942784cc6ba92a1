//! Capped exponential backoff, for retries (registration) and restarts (supervise).

use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the one after is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Spark's supervise policy: restart after 1 s, doubling up to 60 s; a run that lasted
/// at least 5 s starts the sequence over.
#[derive(Clone, Debug)]
pub(crate) struct RestartBackoff {
    delays: Backoff,
}

impl RestartBackoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(60);
    pub const STABLE_AFTER: Duration = Duration::from_secs(5);

    /// The delay before restarting a process that ran for `uptime`.
    pub fn after_exit(&mut self, uptime: Duration) -> Duration {
        if uptime >= Self::STABLE_AFTER {
            self.delays.reset();
        }
        self.delays.next_delay()
    }
}

impl Default for RestartBackoff {
    fn default() -> Self {
        RestartBackoff {
            delays: Backoff::new(Self::FIRST, Self::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(MS(100), MS(5000));
        let got: Vec<_> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), MS(100));
    }

    #[test]
    fn restarts_reset_after_a_stable_run() {
        let mut r = RestartBackoff::default();
        let quick = MS(10);
        let got: Vec<_> = (0..8).map(|_| r.after_exit(quick).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(r.after_exit(Duration::from_secs(5)).as_secs(), 1);
        assert_eq!(r.after_exit(quick).as_secs(), 2);
    }
}
