//! The offline tools: inspect, verify, export, import.

mod common;

use common::*;
use hearth_recovery::offline::{self, Inspection};
use hearth_recovery::*;
use std::fs;

/// snapshot at 60, journal 61..=90 in the newest segment.
fn populated() -> (tempfile::TempDir, Workload, hearth_core::Command) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(21);
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    for c in w.take(60) {
        j.append(&c).unwrap();
    }
    j.snapshot(&w.state, 60).unwrap();
    let mut last = None;
    for c in w.take(30) {
        j.append(&c).unwrap();
        last = Some(c);
    }
    j.close().unwrap();
    (dir, w, last.unwrap())
}

#[test]
fn inspect_reports_snapshots_segments_and_the_last_command() {
    let (dir, _, last) = populated();
    let i = offline::inspect(dir.path()).unwrap();
    assert_eq!(i.snapshots.len(), 1);
    assert_eq!((i.snapshots[0].lsn, &i.snapshots[0].problem), (60, &None));
    assert_eq!(i.segments.len(), 1);
    let s = &i.segments[0];
    assert_eq!((s.first_lsn, s.last_lsn, s.records), (61, Some(90), 30));
    assert_eq!(
        s.bytes,
        fs::metadata(newest_segment(dir.path())).unwrap().len()
    );
    assert_eq!(i.total_records, 30);
    let lc = i.last_command.clone().unwrap();
    assert_eq!((lc.lsn, lc.kind.as_str()), (90, last.kind()));
    assert_eq!(i.restorable, None);
    assert!(i
        .lock_holder
        .unwrap()
        .contains(&std::process::id().to_string()));
    let text = offline::inspect(dir.path()).unwrap().to_string();
    for needle in [
        "snapshot-00000000000000000060.snap  lsn 60",
        "journal-00000000000000000061.log  lsn 61..=90  30 records",
        &format!("last command: lsn 90 {}", last.kind()),
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn verify_accepts_a_clean_dir_and_says_what_it_restores_to() {
    let (dir, w, _) = populated();
    let i: Inspection = offline::verify(dir.path()).unwrap();
    let r = i.restorable.clone().unwrap();
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (90, Some(60), 30));
    assert_eq!(r.workers, w.state.workers.len());
    assert_eq!(r.apps, w.state.apps.len());
    assert!(i
        .to_string()
        .contains("restores to lsn 90 (snapshot at lsn 60 + 30 replayed)"));
}

#[test]
fn verify_reports_a_torn_tail_without_failing_and_changes_nothing() {
    let (dir, _, _) = populated();
    let seg = newest_segment(dir.path());
    let bytes = fs::read(&seg).unwrap();
    fs::write(&seg, &bytes[..bytes.len() - 5]).unwrap();
    let i = offline::verify(dir.path()).unwrap();
    assert!(i.segments[0].torn_tail);
    assert_eq!(i.restorable.as_ref().unwrap().lsn, 89);
    assert!(i.to_string().contains("open cuts it"));
    assert_eq!(fs::metadata(&seg).unwrap().len(), bytes.len() as u64 - 5);
}

#[test]
fn verify_names_damage_in_a_segment_the_snapshot_covers() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(22);
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    for c in w.take(40) {
        j.append(&c).unwrap();
    }
    let first = dir.path().join("journal-00000000000000000001.log");
    let saved = fs::read(&first).unwrap();
    j.snapshot(&w.state, 40).unwrap();
    drop(j);
    // A leftover of a crash during cleanup, damaged: open never reads it, verify says so.
    let mut damaged = saved;
    let (off, _) = records(&damaged)[5];
    damaged[off + 20] ^= 1;
    fs::write(&first, &damaged).unwrap();
    let err = offline::verify(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("journal-00000000000000000001.log record 5"),
        "{err}"
    );
    assert!(err.contains("covers this whole segment"), "{err}");
    let (_j, r) = Journal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(r.lsn, 40);
}

#[test]
fn export_then_import_restores_an_equal_state() {
    let (dir, w, _) = populated();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("export.json");
    let lsn = offline::export(dir.path(), &out).unwrap();
    assert_eq!(lsn, 90);
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["format"], "hearth-snapshot");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["lsn"], 90);
    assert!(doc["state"]["workers"].is_object());
    let (read_lsn, read_state) = offline::read_export(&out).unwrap();
    assert_eq!(read_lsn, 90);
    assert_eq!(read_state, w.state);
    let again = scratch.path().join("again.json");
    offline::write_export(&again, read_lsn, &read_state).unwrap();
    assert_eq!(fs::read(&again).unwrap(), fs::read(&out).unwrap());

    let target = tempfile::tempdir().unwrap();
    let fresh = target.path().join("new");
    assert_eq!(offline::import(&out, &fresh).unwrap(), 90);
    fs::remove_file(&out).unwrap();
    let (j, r) = Journal::open(&fresh, Options::default()).unwrap();
    assert_eq!((r.lsn, r.snapshot_lsn, r.replayed), (90, Some(90), 0));
    assert_eq!(r.state, w.state);
    assert_eq!(j.append(&Workload::new(99).next()).unwrap(), 91);
}

#[test]
fn import_refuses_a_non_empty_dir_and_foreign_documents() {
    let (dir, _, _) = populated();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("export.json");
    offline::export(dir.path(), &out).unwrap();

    let err = offline::import(&out, dir.path()).unwrap_err();
    assert!(matches!(err, RecoveryError::NotEmpty { .. }), "{err:?}");
    assert!(err.to_string().contains("only into an empty directory"));

    let doc = fs::read_to_string(&out).unwrap();
    let other = scratch.path().join("other.json");
    let cases = [
        (
            doc.replacen("hearth-snapshot", "something-else", 1),
            "expected \"hearth-snapshot\"",
        ),
        (
            doc.replacen("\"version\":1", "\"version\":9", 1),
            "is version 9",
        ),
        (
            "{\"hello\":1}".to_owned(),
            "is not a hearth export document",
        ),
    ];
    for (text, expected) in cases {
        fs::write(&other, text).unwrap();
        let err = offline::import(&other, &scratch.path().join("d")).unwrap_err();
        assert!(matches!(err, RecoveryError::Export { .. }), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn the_offline_tools_refuse_while_a_master_holds_the_dir() {
    let (dir, _, _) = populated();
    let (_j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    for err in [
        offline::inspect(dir.path()).unwrap_err(),
        offline::verify(dir.path()).unwrap_err(),
        offline::export(dir.path(), &out.path().join("x.json")).unwrap_err(),
    ] {
        assert!(matches!(err, RecoveryError::Locked { .. }), "{err:?}");
    }
}
