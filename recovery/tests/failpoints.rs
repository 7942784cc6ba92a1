//! Crash at every named failpoint, then reopen: the restored state is exactly the state
//! after some prefix of the appended commands, never shorter than the last one whose
//! `sync` returned Ok. Each crash is replayed twice: as a process crash (the page cache
//! keeps unsynced writes) and as a power loss (the newest segment loses an arbitrary
//! amount of what was written after the last acknowledged record).
//!
//! Run: `cargo test -p hearth-recovery --features failpoints`.
#![cfg(feature = "failpoints")]

mod common;

use common::*;
use hearth_core::{ClusterState, Command};
use hearth_recovery::*;
use std::fs;
use std::path::Path;
use std::sync::Arc;

const POINTS: [&str; 5] = [
    "journal-before-write",
    "journal-after-write",
    "journal-before-fsync",
    "snapshot-before-rename",
    "snapshot-before-cleanup",
];

/// What a crashed run left: the model state after each LSN, and the acknowledged LSN.
struct Crashed {
    dir: tempfile::TempDir,
    /// `states[k]`: the state after the first k appended commands.
    states: Vec<ClusterState>,
    acked: u64,
    seed: u64,
}

/// Runs a workload until the failpoint fires, then "crashes" (drops the journal).
fn run_until_crash(point: &'static str, fire_after: usize, seed: u64) -> Crashed {
    fail::cfg(point, &format!("{fire_after}*off->return")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(seed);
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let mut states = vec![ClusterState::default()];
    let mut acked = 0;
    let mut crashed = false;
    for step in 0..400u64 {
        let cmd = w.next();
        let lsn = match j.append(&cmd) {
            Ok(lsn) => lsn,
            Err(e) => {
                assert!(e.to_string().contains(point), "{e}");
                if point == "journal-after-write" {
                    states.push(w.state.clone()); // written, just not acknowledged
                }
                crashed = true;
                break;
            }
        };
        states.push(w.state.clone());
        if step % 3 == 2 {
            match j.sync_blocking(lsn) {
                Ok(()) => acked = lsn,
                Err(_) => {
                    crashed = true;
                    break;
                }
            }
        }
        if step % 20 == 19 && j.snapshot(&w.state, lsn).is_err() {
            crashed = true;
            break;
        }
    }
    assert!(crashed, "{point} after {fire_after} never fired");
    drop(j);
    fail::cfg(point, "off").unwrap();
    Crashed {
        dir,
        states,
        acked,
        seed,
    }
}

/// Power loss: the newest segment keeps everything up to the end of the acknowledged
/// record (it was fsynced) and an arbitrary part of what follows.
fn lose_unsynced_tail(dir: &Path, acked: u64, keep_fraction: f64) {
    let seg = newest_segment(dir);
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let first: u64 = name[8..28].parse().unwrap();
    let bytes = fs::read(&seg).unwrap();
    let recs = records(&bytes);
    let durable_end = if acked >= first {
        let (off, len) = recs[(acked - first + 1) as usize];
        off + len
    } else {
        recs.first().map_or(0, |(off, len)| off + len) // the header is fsynced at creation
    };
    let cut = durable_end + ((bytes.len() - durable_end) as f64 * keep_fraction) as usize;
    fs::write(&seg, &bytes[..cut]).unwrap();
}

fn check_restore(c: &Crashed, label: &str) {
    let appended = c.states.len() as u64 - 1;
    let (j, r) = Journal::open(c.dir.path(), Options::default())
        .unwrap_or_else(|e| panic!("{label}: reopen failed: {e}"));
    assert!(
        c.acked <= r.lsn && r.lsn <= appended,
        "{label}: restored lsn {} outside acknowledged {}..=appended {appended}",
        r.lsn,
        c.acked
    );
    assert!(
        r.state == c.states[r.lsn as usize],
        "{label}: restored state is not the state after lsn {}",
        r.lsn
    );
    // The journal goes on from there.
    let mut w = Workload::new(c.seed ^ 0xfeed);
    let more: Vec<Command> = w.take(5);
    for (i, cmd) in more.iter().enumerate() {
        assert_eq!(j.append(cmd).unwrap(), r.lsn + 1 + i as u64, "{label}");
    }
    j.close().unwrap();
    let (_j, again) = Journal::open(c.dir.path(), Options::default()).unwrap();
    let mut expected = r.state.clone();
    for cmd in &more {
        let _ = hearth_core::apply(&mut expected, cmd);
    }
    assert_eq!(again.lsn, r.lsn + 5, "{label}");
    assert!(again.state == expected, "{label}: state after continuing");
}

#[test]
fn a_crash_at_any_failpoint_restores_exactly_the_acknowledged_prefix() {
    let scenario = fail::FailScenario::setup();
    for point in POINTS {
        for (i, fire_after) in [0usize, 2, 5, 17].into_iter().enumerate() {
            let seed = 1000 + i as u64;
            let label = format!("{point} after {fire_after}");
            check_restore(&run_until_crash(point, fire_after, seed), &label);
            for keep in [0.0, 0.5] {
                let label = format!("{label}, power loss keeping {keep} of the unsynced tail");
                let c = run_until_crash(point, fire_after, seed);
                lose_unsynced_tail(c.dir.path(), c.acked, keep);
                check_restore(&c, &label);
            }
        }
    }
    scenario.teardown();
}

#[test]
fn a_failed_fsync_fails_every_waiter_and_loses_no_acknowledged_command() {
    let scenario = fail::FailScenario::setup();
    fail::cfg("journal-before-fsync", "6*off->return").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let j = Arc::new(j);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || {
                let mut written = Vec::new();
                let mut acked = Vec::new();
                for i in 0..50 {
                    let cmd = worker(t * 100 + i);
                    let Ok(lsn) = j.append(&cmd) else { break };
                    written.push((lsn, cmd));
                    match j.sync_blocking(lsn) {
                        Ok(()) => acked.push(lsn),
                        Err(e) => {
                            assert!(matches!(e, RecoveryError::Poisoned { .. }), "{e:?}");
                            break;
                        }
                    }
                }
                (written, acked)
            })
        })
        .collect();
    let mut written = Vec::new();
    let mut acked = Vec::new();
    for t in threads {
        let (w, a) = t.join().unwrap();
        written.extend(w);
        acked.extend(a);
    }
    let err = j.append(&worker(9999)).unwrap_err();
    assert!(matches!(err, RecoveryError::Poisoned { .. }), "{err:?}");
    assert!(err.to_string().contains("restart the master"), "{err}");
    drop(j);
    fail::cfg("journal-before-fsync", "off").unwrap();
    written.sort_by_key(|(lsn, _)| *lsn);
    let max_acked = acked.iter().copied().max().unwrap_or(0);
    assert!(!acked.is_empty(), "some syncs succeed before the failure");

    let (_j, r) = Journal::open(dir.path(), Options::default()).unwrap();
    assert!(r.lsn >= max_acked && r.lsn <= written.len() as u64);
    let cmds: Vec<Command> = written[..r.lsn as usize]
        .iter()
        .map(|(_, c)| c.clone())
        .collect();
    assert!(r.state == model(&cmds));
    for lsn in acked {
        let (_, cmd) = &written[lsn as usize - 1];
        let Command::RegisterWorker { reg, .. } = cmd else {
            unreachable!()
        };
        assert!(
            r.state.workers.contains_key(&reg.identity.id),
            "acknowledged lsn {lsn} lost"
        );
    }
    scenario.teardown();
}

#[test]
fn a_panic_while_appending_poisons_the_journal_but_not_the_directory() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let lsn = j.append(&worker(1)).unwrap();
    j.sync_blocking(lsn).unwrap();
    fail::cfg("journal-before-write", "panic").unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| j.append(&worker(2))));
    assert!(panicked.is_err());
    fail::cfg("journal-before-write", "off").unwrap();
    let err = j.append(&worker(3)).unwrap_err();
    assert!(matches!(err, RecoveryError::Poisoned { .. }), "{err:?}");
    drop(j);
    let (_j, r) = Journal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(r.lsn, 1);
    scenario.teardown();
}

fn worker(n: u64) -> Command {
    Command::RegisterWorker {
        reg: hearth_core::WorkerRegistration {
            identity: hearth_core::WorkerIdentity {
                id: hearth_core::WorkerId(format!("worker-{n:05}")),
                host: "h".into(),
                port: 7078,
                http_port: 0,
                cores: 4,
                memory_mb: 1024,
            },
            executors: vec![],
            drivers: vec![],
        },
        at: hearth_core::Millis(T0 + n),
    }
}
