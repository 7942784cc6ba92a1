//! Property: whatever the command sequence, snapshot points, segment size and reopen
//! points, reopening restores exactly the in-memory state.

mod common;

use common::*;
use hearth_core::ClusterState;
use hearth_recovery::*;
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Event {
    /// Snapshot of the current state.
    Snapshot,
    /// Snapshot of a state this many commands older (the master snapshots what it has
    /// applied, which may trail what it has appended).
    LaggingSnapshot(u64),
    /// Drop the journal (no clean close) and open again.
    Reopen,
    Sync,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Snapshot),
        (1u64..5).prop_map(Event::LaggingSnapshot),
        Just(Event::Reopen),
        Just(Event::Sync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn reopen_restores_the_in_memory_state(
        seed in any::<u64>(),
        n in 1usize..250,
        events in vec((0usize..250, event()), 0..10),
        segment_bytes in prop_oneof![Just(64u64 << 20), 512u64..8192],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options { segment_bytes, ..Options::default() };
        let mut w = Workload::new(seed);
        let mut history: Vec<ClusterState> = vec![ClusterState::default()];
        let mut last_snapshot = 0u64;
        let (mut j, _) = Journal::open(dir.path(), opts.clone()).unwrap();
        for step in 0..n {
            let cmd = w.next();
            let lsn = j.append(&cmd).unwrap();
            prop_assert_eq!(lsn, step as u64 + 1);
            history.push(w.state.clone());
            for (_, ev) in events.iter().filter(|(at, _)| *at == step) {
                match ev {
                    Event::Snapshot => {
                        j.snapshot(&w.state, lsn).unwrap();
                        last_snapshot = lsn;
                    }
                    Event::LaggingSnapshot(lag) => {
                        let k = last_snapshot.max(lsn.saturating_sub(*lag));
                        j.snapshot(&history[k as usize], k).unwrap();
                        last_snapshot = k;
                    }
                    Event::Reopen => {
                        drop(j);
                        let (again, r) = Journal::open(dir.path(), opts.clone()).unwrap();
                        prop_assert_eq!(r.lsn, lsn);
                        prop_assert_eq!(&r.state, &w.state);
                        prop_assert_eq!(r.truncated_tail, None);
                        j = again;
                    }
                    Event::Sync => j.sync_blocking(lsn).unwrap(),
                }
            }
        }
        drop(j);
        let inspection = offline::verify(dir.path()).unwrap();
        prop_assert_eq!(inspection.restorable.unwrap().lsn, n as u64);
        let (_j, r) = Journal::open(dir.path(), opts).unwrap();
        prop_assert_eq!(r.lsn, n as u64);
        prop_assert_eq!(r.snapshot_lsn.unwrap_or(0), last_snapshot);
        prop_assert_eq!(r.replayed, n as u64 - last_snapshot);
        prop_assert_eq!(&r.state, &w.state);
    }
}
