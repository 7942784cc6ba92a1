//! How many log entries one AppendEntries carries ([`Window`]).

/// How many log entries the next AppendEntries to a peer carries.
///
/// openraft 0.9 gives each AppendEntries one heartbeat interval (50 ms by default) and
/// offers up to `max_payload_entries` entries, however many bytes they are. A follower
/// megabytes behind was offered the same oversized call again and again, each dropped at
/// the deadline, and never caught up (bench-scale: 850 entries behind for minutes, then
/// elections). Here a call that openraft dropped (it was still in flight when the next
/// began) or that failed halves what the next one carries, down to one entry; each call
/// that succeeds doubles it, up to everything offered. What is held back is reported to
/// openraft as not yet replicated (`PartialSuccess`), so the next call starts there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// At most this many entries per call; `None`: all that openraft offers.
    limit: Option<usize>,
    /// Entries of the call under way, if one is.
    in_flight: Option<usize>,
}

impl Window {
    /// Beyond this, no limit (openraft offers at most 300 by default).
    const UNLIMITED_FROM: usize = 1024;

    /// A call is about to carry some of the `offered` entries: how many.
    pub(crate) fn start(&mut self, offered: usize) -> usize {
        if let Some(sent) = self.in_flight.take() {
            // The previous call never finished: openraft dropped it at its deadline.
            self.shrink(sent);
        }
        if offered == 0 {
            return 0; // a heartbeat: nothing to adapt
        }
        let n = self.limit.map_or(offered, |l| l.min(offered));
        self.in_flight = Some(n);
        n
    }

    /// The call under way finished; `ok`: the peer answered.
    pub(crate) fn finish(&mut self, ok: bool) {
        let Some(sent) = self.in_flight.take() else {
            return;
        };
        if !ok {
            self.shrink(sent);
        } else if let Some(l) = self.limit {
            let grown = l.saturating_mul(2);
            self.limit = (grown < Self::UNLIMITED_FROM).then_some(grown);
        }
    }

    fn shrink(&mut self, sent: usize) {
        self.limit = Some((sent / 2).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_dropped_at_its_deadline_halves_the_next_and_successes_double_it_back() {
        let mut w = Window::default();
        // Nothing learned yet: everything offered goes.
        assert_eq!(w.start(300), 300);
        // Dropped by openraft (never finished): the next carries half.
        assert_eq!(w.start(300), 150);
        assert_eq!(w.start(300), 75);
        w.finish(false); // failed: half again
        assert_eq!(w.start(300), 37);
        w.finish(true);
        assert_eq!(w.start(300), 74);
        w.finish(true);
        // Never more than offered, and a heartbeat changes nothing.
        assert_eq!(w.start(10), 10);
        w.finish(true);
        assert_eq!(w.start(0), 0);
        assert_eq!(w.start(300), 296);
        w.finish(true); // 592
        assert_eq!(w.start(300), 300);
        w.finish(true); // beyond 1024: no limit again
        assert_eq!(w, Window::default());
        // Down to one entry, never zero.
        let mut w = Window::default();
        for _ in 0..20 {
            assert!(w.start(3) >= 1);
        }
        assert_eq!(w.start(3), 1);
    }
}
