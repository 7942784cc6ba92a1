//! The "isolate" drill: for a while a master drops all Raft traffic (both ways) and
//! answers no worker or client, as if a network partition had cut it off. An
//! [`Isolation`] is a handle, one per master (in [`MasterConfig`](crate::MasterConfig)),
//! so an in-process test can isolate one master of three. It is checked by the Raft
//! network, the Raft service, the acting-master lookup and the leader's lease. (Crash
//! and freeze act on the whole process and live with the drill service in the `hearth`
//! binary.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One master's isolate switch. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct Isolation(Arc<Mutex<Option<Instant>>>);

impl Isolation {
    /// Cuts this master off for `d`.
    pub fn isolate(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + d);
        tracing::warn!(
            for_ms = d.as_millis() as u64,
            "drill: isolated from peers, workers and clients"
        );
    }

    /// Whether an isolate drill is in force now.
    pub fn active(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }

    /// `Err` with the status every isolated endpoint answers with, while isolated.
    pub fn refuse(&self) -> Result<(), tonic::Status> {
        if self.active() {
            Err(tonic::Status::unavailable("isolated by a drill"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_is_per_handle_and_ends() {
        let a = Isolation::default();
        let b = Isolation::default();
        let a2 = a.clone();
        a.isolate(Duration::from_secs(60));
        assert!(a.active() && a2.active() && !b.active());
        assert_eq!(a2.refuse().unwrap_err().code(), tonic::Code::Unavailable);
        assert!(b.refuse().is_ok());
        a.isolate(Duration::ZERO);
        assert!(!a.active());
    }
}
