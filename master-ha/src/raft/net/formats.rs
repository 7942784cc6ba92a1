//! Which encoding each Raft peer is sent ([`Formats`]), for rolling upgrades from builds
//! that read only JSON.

use hearth_raft_store::codec::Format;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Status;

/// Which encoding each peer is sent, for rolling upgrades: compact, except to a peer that
/// refused a compact message (a master of a build before it reads only JSON and answers
/// "unreadable raft message", see [`refuses_compact`]). Such a peer is sent JSON until
/// one of two things suggests it may have been upgraded: it was found unreachable (it is
/// being restarted, maybe on a new build), or [`Formats::RETRY_COMPACT_AFTER`] passed.
/// Then compact is tried again; a peer still on the old build refuses it once more, and
/// that one message is resent as JSON at once, so trying costs a round trip, never a
/// lost message. Kept per peer address in the [`Network`](super::Network), shared by every client
/// openraft makes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Formats {
    /// Peers sent JSON, and since when.
    json_since: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Formats {
    /// How long a peer that refused a compact message is sent only JSON.
    pub(crate) const RETRY_COMPACT_AFTER: Duration = Duration::from_secs(120);

    /// The encoding to send `addr` now.
    pub(crate) fn for_peer(&self, addr: &str, now: Instant) -> Format {
        let mut json = self.json_since.lock().expect("formats lock");
        match json.get(addr) {
            Some(since) if now.saturating_duration_since(*since) < Self::RETRY_COMPACT_AFTER => {
                Format::Json
            }
            Some(_) => {
                json.remove(addr);
                Format::Compact
            }
            None => Format::Compact,
        }
    }

    /// `addr` refused a compact message: send it JSON from now on.
    pub(crate) fn refused_compact(&self, addr: &str, now: Instant) {
        let mut json = self.json_since.lock().expect("formats lock");
        json.insert(addr.to_owned(), now);
    }

    /// `addr` was not reached: it may come back on another build, so try compact then.
    pub(crate) fn unreachable(&self, addr: &str) {
        self.json_since.lock().expect("formats lock").remove(addr);
    }
}

/// Whether `status`, the answer to a compact message, says the peer could not read it: a
/// master of a build before the compact form answers `InvalidArgument` "unreadable raft
/// message: ..." (its JSON decoder fails on the marker byte), and so does this build for
/// a compact message it cannot decode. Other refusals (a drill's isolation, an absurd
/// term) are not about the encoding.
pub(crate) fn refuses_compact(status: &Status) -> bool {
    status.code() == tonic::Code::InvalidArgument && status.message().starts_with(UNREADABLE)
}

/// How a server starts the message refusing a payload it cannot decode (the old build's
/// words too: senders rely on them, see [`refuses_compact`]).
pub(crate) const UNREADABLE: &str = "unreadable raft message";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_refusing_compact_is_sent_json_until_it_was_unreachable_or_a_while_passed() {
        let f = Formats::default();
        let t0 = Instant::now();
        assert_eq!(f.for_peer("a:1", t0), Format::Compact);
        f.refused_compact("a:1", t0);
        assert_eq!(f.for_peer("a:1", t0), Format::Json);
        assert_eq!(f.for_peer("b:1", t0), Format::Compact, "per peer");
        let later = t0 + Formats::RETRY_COMPACT_AFTER;
        assert_eq!(
            f.for_peer("a:1", later - Duration::from_millis(1)),
            Format::Json
        );
        assert_eq!(f.for_peer("a:1", later), Format::Compact, "tried again");
        f.refused_compact("a:1", later);
        assert_eq!(
            f.for_peer("a:1", later),
            Format::Json,
            "still old: JSON again"
        );
        f.unreachable("a:1");
        assert_eq!(
            f.for_peer("a:1", later),
            Format::Compact,
            "maybe restarted on a new build"
        );
    }
}
