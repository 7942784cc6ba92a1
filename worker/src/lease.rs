//! The worker's own lease on the masters' trust: whether a leading master has answered
//! this worker recently enough that the masters still count it ALIVE.
//!
//! The leader declares a worker lost after its worker timeout without a heartbeat, and
//! then relaunches the worker's supervised drivers elsewhere. A worker cut off from every
//! master that went on restarting its supervised drivers would run a second copy of each
//! for the whole partition (HA hole 8). So once no leader has answered for that timeout
//! (the leader advises a heartbeat of a quarter of it at registration; without advice,
//! four heartbeat intervals), this worker restarts no supervised driver that exits: it
//! ends, and its end is reported when a leader answers again.
//!
//! Processes that keep running are left running, as Spark's workers and Nomad's clients
//! do by default (Nomad stops them only with `stop_after_client_disconnect`): the
//! masters may simply be down (a quorum lost, a single master restarting), and killing
//! every driver on every worker then would turn a master outage into a cluster outage.
//! When the worker is back, the leader kills what it has replaced meanwhile (a RUNNING
//! report of a driver now placed elsewhere is answered with a kill).
//!
//! The worker's silence is never shorter than the leader's: the leader heard the last
//! heartbeat no earlier than this worker heard the answer. So the lease has lapsed here
//! by the time the leader relaunches anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many heartbeat intervals the masters' worker timeout is (the leader advises a
/// heartbeat of a quarter of it).
pub(crate) const HEARTBEATS_PER_TIMEOUT: u32 = 4;

pub(crate) struct MasterLease {
    /// When a leading master last answered (the worker's start counts: a grace period).
    heard: Mutex<Instant>,
    /// The masters' worker timeout, in milliseconds.
    timeout_ms: AtomicU64,
}

impl MasterLease {
    pub fn new(heartbeat: Duration) -> Self {
        MasterLease {
            heard: Mutex::new(Instant::now()),
            timeout_ms: AtomicU64::new(timeout_for(heartbeat).as_millis() as u64),
        }
    }

    /// A leading master answered (a registration or a heartbeat).
    pub fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// The leader asked for heartbeats every `heartbeat`: its worker timeout follows.
    pub fn advised(&self, heartbeat: Duration) {
        let ms = timeout_for(heartbeat).as_millis() as u64;
        self.timeout_ms.store(ms, Ordering::SeqCst);
    }

    /// `Some(silence)` once no leader has answered for the masters' worker timeout.
    pub fn lapsed(&self) -> Option<Duration> {
        let silence = self
            .heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::SeqCst));
        lapsed(silence, timeout).then_some(silence)
    }

    /// How long since a leading master last answered.
    pub fn silence(&self) -> Duration {
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::SeqCst))
    }
}

/// The masters' worker timeout for a heartbeat interval.
pub(crate) fn timeout_for(heartbeat: Duration) -> Duration {
    heartbeat * HEARTBEATS_PER_TIMEOUT
}

/// The rule: the lease has lapsed once the silence reaches the timeout (the leader
/// declares the worker lost when its own, never longer, silence passes it).
pub(crate) fn lapsed(silence: Duration, timeout: Duration) -> bool {
    silence >= timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_lapses_at_the_masters_worker_timeout() {
        let t = timeout_for(Duration::from_millis(500));
        assert_eq!(t, Duration::from_secs(2));
        assert!(!lapsed(Duration::from_millis(1999), t));
        assert!(lapsed(Duration::from_secs(2), t));
        assert!(lapsed(Duration::from_secs(60), t));
    }

    #[test]
    fn a_fresh_lease_holds_and_advice_changes_the_timeout() {
        let lease = MasterLease::new(Duration::from_secs(15));
        assert_eq!(lease.timeout(), Duration::from_secs(60));
        assert_eq!(lease.lapsed(), None);
        lease.advised(Duration::from_millis(250));
        assert_eq!(lease.timeout(), Duration::from_secs(1));
        lease.advised(Duration::ZERO);
        assert!(
            lease.lapsed().is_some(),
            "a zero timeout has lapsed at once"
        );
        lease.advised(Duration::from_secs(15));
        lease.heard();
        assert_eq!(lease.lapsed(), None);
    }
}
