//! The "isolate" drill: for a while this master drops all Raft traffic (both ways) and
//! answers no worker or client, as if a network partition had cut it off. Checked by the
//! Raft network, the Raft service, the acting-master lookup and the leader's lease.
//! (Crash and freeze act on the whole process and live with the drill service in the
//! `hearth` binary.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

static ISOLATED_UNTIL: Mutex<Option<Instant>> = Mutex::new(None);

/// Cuts this master off for `d`.
pub fn isolate(d: Duration) {
    *ISOLATED_UNTIL.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + d);
    tracing::warn!(
        for_ms = d.as_millis() as u64,
        "drill: isolated from peers, workers and clients"
    );
}

/// Whether an isolate drill is in force now.
pub fn isolated() -> bool {
    ISOLATED_UNTIL
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some_and(|t| Instant::now() < t)
}

/// `Err` with the status every isolated endpoint answers with, while isolated.
pub fn refuse_if_isolated() -> Result<(), tonic::Status> {
    if isolated() {
        Err(tonic::Status::unavailable("isolated by a drill"))
    } else {
        Ok(())
    }
}
