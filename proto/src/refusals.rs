//! The log line of a refused request or connection (a wrong or missing secret, a failed
//! TLS handshake), written at most once a second: a flood of strangers must not fill the
//! disk. Shared by [`crate::auth`] and [`crate::tls`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Logs a refusal, at most once a second (a flood must not fill the disk), with how many
/// were not logged since.
pub(crate) fn log_refusal(peer: &str, why: &str, path: &str) {
    static LAST_SECOND: AtomicU64 = AtomicU64::new(0);
    static QUIET: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if LAST_SECOND.swap(now, Ordering::Relaxed) == now {
        QUIET.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let unlogged = QUIET.swap(0, Ordering::Relaxed);
    tracing::warn!(%peer, why, path, unlogged, "refused an unauthenticated request or connection");
}
