//! The live journal: restore after reopen, snapshots and cleanup, the directory lock, LSN
//! gaps, snapshot fallback, group commit (blocking and async).

mod common;

use common::*;
use hearth_recovery::*;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};

fn open(dir: &Path) -> (Journal, Restored) {
    Journal::open(dir, Options::default()).expect("open")
}

fn append_all(j: &Journal, cmds: &[hearth_core::Command]) -> u64 {
    let mut last = 0;
    for c in cmds {
        last = j.append(c).expect("append");
    }
    last
}

#[test]
fn reopen_restores_every_synced_command_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(1);
    let (j, r) = open(dir.path());
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (0, None, 0));
    assert_eq!(r.state, hearth_core::ClusterState::default());
    let cmds = w.take(300);
    let last = append_all(&j, &cmds);
    assert_eq!(last, 300);
    j.sync_blocking(last).unwrap();
    drop(j);

    let (j, r) = open(dir.path());
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (300, None, 300));
    assert_eq!(r.truncated_tail, None);
    assert_eq!(r.state, w.state);
    let more = w.take(20);
    assert_eq!(append_all(&j, &more), 320);
    j.close().unwrap();

    let (_j, r) = open(dir.path());
    assert_eq!(r.lsn, 320);
    assert_eq!(r.state, w.state);
    assert_eq!(
        files(dir.path(), "journal-").len(),
        1,
        "appends continue in one segment"
    );
}

#[test]
fn snapshots_replay_only_the_tail_and_remove_what_they_cover() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        snapshot_every: 50,
        ..Options::default()
    };
    let mut w = Workload::new(2);
    let (j, _) = Journal::open(dir.path(), opts.clone()).unwrap();
    append_all(&j, &w.take(49));
    assert!(!j.snapshot_due());
    append_all(&j, &w.take(51));
    assert!(j.snapshot_due());
    let at_100 = w.state.clone();
    append_all(&j, &w.take(20));
    // A snapshot of an older state than the last append: 101..=120 stay in the journal.
    j.snapshot(&at_100, 100).unwrap();
    assert!(!j.snapshot_due());
    let names = |p: &str| -> Vec<String> {
        files(dir.path(), p)
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names("snapshot-"),
        vec!["snapshot-00000000000000000100.snap"]
    );
    assert_eq!(
        names("journal-"),
        vec![
            "journal-00000000000000000001.log",
            "journal-00000000000000000121.log"
        ]
    );
    drop(j);
    let (j, r) = Journal::open(dir.path(), opts.clone()).unwrap();
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (120, Some(100), 20));
    assert_eq!(r.state, w.state);

    append_all(&j, &w.take(80));
    j.snapshot(&w.state, 200).unwrap();
    assert_eq!(
        names("snapshot-"),
        vec!["snapshot-00000000000000000200.snap"]
    );
    assert_eq!(names("journal-"), vec!["journal-00000000000000000201.log"]);
    let err = j.snapshot(&at_100, 100).unwrap_err().to_string();
    assert!(err.contains("older than the one at lsn 200"), "{err}");
    append_all(&j, &w.take(10));
    drop(j);

    let (_j, r) = Journal::open(dir.path(), opts).unwrap();
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (210, Some(200), 10));
    assert_eq!(r.state, w.state);
}

#[test]
fn a_snapshot_one_behind_the_last_append_keeps_that_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(10);
    let (j, _) = open(dir.path());
    append_all(&j, &w.take(30));
    let at_30 = w.state.clone();
    append_all(&j, &w.take(1));
    // Rolls to journal-32; journal-1 still holds lsn 31, which the snapshot lacks.
    j.snapshot(&at_30, 30).unwrap();
    assert_eq!(files(dir.path(), "journal-").len(), 2);
    drop(j);
    let (_j, r) = open(dir.path());
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (31, Some(30), 1));
    assert_eq!(r.state, w.state);
}

#[test]
fn a_second_open_is_refused_naming_the_holder_pid() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path());
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, RecoveryError::Locked { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("locked by pid {} on host", std::process::id())),
        "{text}"
    );
    let err = offline::verify(dir.path()).unwrap_err();
    assert!(matches!(err, RecoveryError::Locked { .. }), "{err:?}");
    drop(first);
    let (_again, _) = open(dir.path());
}

#[test]
fn size_rolled_segments_restore_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 1024,
        ..Options::default()
    };
    let mut w = Workload::new(3);
    let (j, _) = Journal::open(dir.path(), opts.clone()).unwrap();
    append_all(&j, &w.take(200));
    // No sync was asked for, but a roll fsyncs the segment it closes.
    let newest = newest_segment(dir.path());
    let first: u64 = newest.file_name().unwrap().to_string_lossy()[8..28]
        .parse()
        .unwrap();
    assert_eq!(j.stats().durable, first - 1);
    j.close().unwrap();
    assert!(files(dir.path(), "journal-").len() > 5);
    let (_j, r) = Journal::open(dir.path(), opts).unwrap();
    assert_eq!((r.lsn, r.replayed), (200, 200));
    assert_eq!(r.state, w.state);
}

fn many_segments(seed: u64) -> (tempfile::TempDir, Vec<hearth_core::Command>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 1024,
        ..Options::default()
    };
    let cmds = Workload::new(seed).take(150);
    let (j, _) = Journal::open(dir.path(), opts).unwrap();
    append_all(&j, &cmds);
    j.close().unwrap();
    (dir, cmds)
}

#[test]
fn a_missing_segment_is_an_lsn_gap() {
    let (dir, _) = many_segments(4);
    let segs = files(dir.path(), "journal-");
    assert!(segs.len() >= 4);
    fs::remove_file(&segs[1]).unwrap();
    let next = segs[2].file_name().unwrap().to_string_lossy().into_owned();
    for err in [
        Journal::open(dir.path(), Options::default()).unwrap_err(),
        offline::verify(dir.path()).unwrap_err(),
    ] {
        match &err {
            RecoveryError::Corrupt {
                file,
                record,
                offset,
                problem,
                ..
            } => {
                assert_eq!((file, *record, *offset), (&next, 0, 0));
                assert!(matches!(problem, Problem::SegmentGap { .. }), "{problem:?}");
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        assert!(err.to_string().contains("records are missing"), "{err}");
    }
}

#[test]
fn a_removed_record_is_an_lsn_gap() {
    let (dir, _) = many_segments(5);
    let seg = files(dir.path(), "journal-")[1].clone();
    let mut bytes = fs::read(&seg).unwrap();
    let recs = records(&bytes);
    let (off, len) = recs[2];
    bytes.drain(off..off + len);
    fs::write(&seg, &bytes).unwrap();
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    match err {
        RecoveryError::Corrupt {
            record,
            offset,
            problem: Problem::LsnMismatch { expected, found },
            ..
        } => {
            assert_eq!((record, offset as usize), (2, off));
            assert_eq!(found, expected + 1);
        }
        other => panic!("expected an lsn mismatch, got {other:?}"),
    }
}

#[test]
fn a_journal_that_does_not_start_at_lsn_1_without_a_snapshot_is_refused() {
    let (dir, _) = many_segments(6);
    fs::remove_file(&files(dir.path(), "journal-")[0]).unwrap();
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(
            err,
            RecoveryError::Corrupt {
                problem: Problem::SegmentGap { expected: 1, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

/// Builds snapshot-20 + journal-1 (1..=50) + journal-51 (51..=70), keeps a copy of them,
/// then snapshot-70 (whose cleanup removes them all) + journal-71 (71..=80).
fn two_snapshots() -> (tempfile::TempDir, tempfile::TempDir, Workload) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(7);
    let (j, _) = open(dir.path());
    let cmds = w.take(20);
    append_all(&j, &cmds);
    let at_20 = w.state.clone();
    append_all(&j, &w.take(30));
    j.snapshot(&at_20, 20).unwrap();
    append_all(&j, &w.take(20));
    let saved = copy_dir(dir.path());
    j.snapshot(&w.state, 70).unwrap();
    append_all(&j, &w.take(10));
    j.close().unwrap();
    (dir, saved, w)
}

fn flip_middle_byte(path: &Path) {
    let mut b = fs::read(path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    fs::write(path, b).unwrap();
}

#[test]
fn a_damaged_newest_snapshot_falls_back_when_the_journal_covers_it() {
    let (dir, saved, w) = two_snapshots();
    for f in [
        "snapshot-00000000000000000020.snap",
        "journal-00000000000000000001.log",
        "journal-00000000000000000051.log",
    ] {
        fs::copy(saved.path().join(f), dir.path().join(f)).unwrap();
    }
    flip_middle_byte(&dir.path().join("snapshot-00000000000000000070.snap"));
    let err = offline::verify(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("snapshot-00000000000000000070.snap record 0"),
        "{err}"
    );
    let (_j, r) = open(dir.path());
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (80, Some(20), 60));
    assert_eq!(r.skipped_snapshots.len(), 1);
    assert_eq!(r.skipped_snapshots[0].lsn, 70);
    assert_eq!(r.state, w.state);
}

#[test]
fn a_damaged_newest_snapshot_without_cover_is_refused() {
    let (dir, saved, _) = two_snapshots();
    // The older snapshot is back, but not the segment that bridges 51..=70.
    for f in [
        "snapshot-00000000000000000020.snap",
        "journal-00000000000000000001.log",
    ] {
        fs::copy(saved.path().join(f), dir.path().join(f)).unwrap();
    }
    flip_middle_byte(&dir.path().join("snapshot-00000000000000000070.snap"));
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RecoveryError::Inconsistent { .. }), "{err:?}");
    assert!(
        text.contains("snapshot-00000000000000000070.snap"),
        "{text}"
    );
    assert!(text.contains("hearth recovery verify"), "{text}");
    // Without the later segment there is no gap to see, but the journal now ends at 50,
    // short of the damaged snapshot's 70: still refused.
    fs::remove_file(dir.path().join("journal-00000000000000000071.log")).unwrap();
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, RecoveryError::Inconsistent { .. }), "{err:?}");
    assert!(err.to_string().contains("would lose lsn 51..=70"), "{err}");
}

#[test]
fn a_snapshot_whose_roll_was_lost_restarts_the_journal_after_it() {
    // A crash after the snapshot's rename but before the roll, with the old segment's
    // unsynced end torn: the snapshot covers more than the journal holds.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(8);
    let (j, _) = open(dir.path());
    let cmds = w.take(100);
    append_all(&j, &cmds);
    let name = "journal-00000000000000000001.log";
    let bytes = fs::read(dir.path().join(name)).unwrap();
    j.snapshot(&w.state, 100).unwrap();
    drop(j);
    fs::remove_file(dir.path().join("journal-00000000000000000101.log")).unwrap();
    let seg = dir.path().join(name);
    let (off, len) = records(&bytes)[60];
    fs::write(&seg, &bytes[..off + len / 2]).unwrap();

    let (j, r) = open(dir.path());
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (100, Some(100), 0));
    assert_eq!(r.state, w.state);
    assert_eq!(r.truncated_tail.as_ref().unwrap().offset as usize, off);
    let more = w.take(10);
    assert_eq!(append_all(&j, &more), 110);
    j.close().unwrap();
    let (_j, r) = open(dir.path());
    assert_eq!(r.lsn, 110);
    assert_eq!(r.state, w.state);
}

#[test]
fn misuse_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(dir.path());
    let lsn = j.append(&Workload::new(9).next()).unwrap();
    let err = j.sync_blocking(lsn + 1).unwrap_err().to_string();
    assert!(err.contains("only up to lsn 1 was appended"), "{err}");
    let err = j
        .snapshot(&hearth_core::ClusterState::default(), 5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lsn 5 was asked for"), "{err}");
}

#[test]
fn concurrent_syncs_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(dir.path());
    let j = Arc::new(j);
    let threads = 64;
    let barrier = Arc::new(Barrier::new(threads));
    let before = j.stats().fsyncs;
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (j, barrier) = (j.clone(), barrier.clone());
            std::thread::spawn(move || {
                let cmd = Workload::new(100 + i as u64).next();
                let lsn = j.append(&cmd).unwrap();
                // Everyone has appended before anyone asks for a sync, so the first
                // fsync covers all of them.
                barrier.wait();
                j.sync_blocking(lsn).unwrap();
                lsn
            })
        })
        .collect();
    let mut lsns: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    lsns.sort();
    assert_eq!(lsns, (1..=threads as u64).collect::<Vec<_>>());
    let stats = j.stats();
    assert_eq!(stats.durable, threads as u64);
    assert_eq!(stats.fsyncs - before, 1, "{stats:?}");
}

#[test]
fn async_sync_from_many_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = open(dir.path());
    let j = Arc::new(j);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let tasks = 64u64;
    let acked = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..tasks {
            let j = j.clone();
            set.spawn(async move {
                let cmd = hearth_core::Command::RegisterWorker {
                    reg: hearth_core::WorkerRegistration {
                        identity: hearth_core::WorkerIdentity {
                            id: hearth_core::WorkerId(format!("w{i}")),
                            host: "h".into(),
                            port: 1,
                            http_port: 0,
                            cores: 1,
                            memory_mb: 1,
                        },
                        executors: vec![],
                        drivers: vec![],
                    },
                    at: hearth_core::Millis(T0),
                };
                let lsn = j.append(&cmd).unwrap();
                j.sync(lsn).await.unwrap();
                lsn
            });
        }
        let mut acked = Vec::new();
        while let Some(lsn) = set.join_next().await {
            acked.push(lsn.unwrap());
        }
        acked
    });
    assert_eq!(acked.len() as u64, tasks);
    let stats = j.stats();
    assert_eq!(stats.durable, tasks);
    assert!(stats.fsyncs <= tasks, "{stats:?}");
    drop(j);
    let (_j, r) = open(dir.path());
    assert_eq!(r.state.workers.len() as u64, tasks);
}
