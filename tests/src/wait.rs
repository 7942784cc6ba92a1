//! Waiting on a condition with a deadline: the one way tests and benchmarks wait (never a
//! sleep as synchronisation). [`Wait::until`] waits on a condition, [`Wait::until_async`]
//! on an async one; both report a timeout as an error naming what did not happen, and
//! look at the pace they are given. Tests call [`wait_for`], which panics instead.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a wait looks again unless told otherwise.
pub const EVERY: Duration = Duration::from_millis(20);

/// A condition that did not hold in time.
#[derive(Clone, Debug)]
pub struct TimedOut {
    pub what: String,
    pub deadline: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}",
            self.deadline, self.what
        )
    }
}

impl std::error::Error for TimedOut {}

/// A wait for `what`, at most `deadline`, looking every [`EVERY`] unless told otherwise.
#[derive(Clone, Debug)]
pub struct Wait {
    what: String,
    deadline: Duration,
    every: Duration,
}

impl Wait {
    pub fn new(what: impl Into<String>, deadline: Duration) -> Self {
        Wait {
            what: what.into(),
            deadline,
            every: EVERY,
        }
    }

    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    fn timed_out(&self) -> TimedOut {
        TimedOut {
            what: self.what.clone(),
            deadline: self.deadline,
        }
    }

    /// Calls `condition` until it returns `Some` (at least once), or the deadline passes.
    pub fn until<T>(&self, mut condition: impl FnMut() -> Option<T>) -> Result<T, TimedOut> {
        let start = Instant::now();
        loop {
            if let Some(v) = condition() {
                return Ok(v);
            }
            if start.elapsed() > self.deadline {
                return Err(self.timed_out());
            }
            std::thread::sleep(self.every);
        }
    }

    /// [`until`](Self::until) for an async condition.
    pub async fn until_async<T, F, Fut>(&self, condition: F) -> Result<T, TimedOut>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        hearth_client::failover::poll_until(self.deadline, self.every, condition)
            .await
            .ok_or_else(|| self.timed_out())
    }
}

/// Calls `condition` every 20 ms until it returns `Some`; panics naming `what` after
/// `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, condition: impl FnMut() -> Option<T>) -> T {
    Wait::new(what, deadline)
        .until(condition)
        .unwrap_or_else(|e| panic!("{e}"))
}
