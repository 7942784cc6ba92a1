//! A data dir written before drain existed (issue 14) restores to the same state, and
//! takes the new commands after it.
//!
//! `data/pre-drain/` was written by the build just before drain (commit cf15107) from
//! `Workload::new(14)`: a snapshot at LSN 100, then a segment with LSNs 101..=160. Drain
//! added `Command` and `WorkerState` variants only at the end, so these bytes must decode
//! exactly as they did.

mod common;

use common::*;
use hearth_core::{apply, Command, Millis, WorkerState};
use hearth_recovery::*;
use std::path::Path;

fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pre-drain");
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_data_dir_written_before_drain_restores_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let mut w = Workload::new(14);
    w.take(160);

    let (j, r) = Journal::open(dir.path(), Options::default()).expect("open");
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (160, Some(100), 60));
    assert_eq!(r.truncated_tail, None);
    assert_eq!(r.state, w.state);

    // The new commands go after the old ones, and restore too.
    let mut state = r.state;
    let worker = state
        .workers
        .values()
        .find(|w| w.state != WorkerState::Dead)
        .map(|w| w.identity.id.clone())
        .expect("a worker that is not DEAD");
    let deadline = Millis(T0 + 3_600_000);
    let drain = Command::DrainWorker {
        worker: worker.clone(),
        deadline,
    };
    apply(&mut state, &drain).expect("drain");
    let lsn = j.append(&drain).unwrap();
    j.sync_blocking(lsn).unwrap();
    j.snapshot(&state, lsn).unwrap();
    let finish = Command::FinishDrain {
        worker: worker.clone(),
        at: deadline,
    };
    apply(&mut state, &finish).expect("finish the drain");
    let lsn = j.append(&finish).unwrap();
    j.sync_blocking(lsn).unwrap();
    j.close().unwrap();

    let (_j, r) = Journal::open(dir.path(), Options::default()).expect("reopen");
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (162, Some(161), 1));
    assert_eq!(r.state, state);
    assert_eq!(r.state.workers[&worker].state, WorkerState::Decommissioned);
}
