//! Damage on disk: torn tails are cut, anything else stops `open` and `verify` with the
//! exact file, record and offset, and the operator's truncate option is honoured only at
//! exactly that point.

mod common;

use common::*;
use hearth_core::Command;
use hearth_recovery::*;
use std::fs;
use std::path::Path;

/// A directory holding `n` synced commands in one segment.
fn journal_of(n: usize, seed: u64) -> (tempfile::TempDir, Vec<Command>) {
    let dir = tempfile::tempdir().unwrap();
    let cmds = Workload::new(seed).take(n);
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    for c in &cmds {
        j.append(c).unwrap();
    }
    j.close().unwrap();
    (dir, cmds)
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn cutting_the_last_record_at_every_offset_restores_the_rest() {
    let (dir, cmds) = journal_of(40, 11);
    let seg = newest_segment(dir.path());
    let bytes = fs::read(&seg).unwrap();
    let (off, len) = *records(&bytes).last().unwrap();
    assert_eq!(off + len, bytes.len());
    let before_last = model(&cmds[..39]);
    for cut in off..off + len {
        let copy = copy_dir(dir.path());
        let seg = newest_segment(copy.path());
        fs::write(&seg, &bytes[..cut]).unwrap();
        let (j, r) = Journal::open(copy.path(), Options::default())
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(r.lsn, 39, "cut at {cut}");
        assert_eq!(r.state, before_last, "cut at {cut}");
        if cut == off {
            assert_eq!(r.truncated_tail, None, "a clean end at {cut}");
        } else {
            let t = r.truncated_tail.expect("a torn tail");
            assert_eq!((t.file, t.offset), (seg.clone(), off as u64));
            assert_eq!(t.record, 40);
            assert_eq!(t.bytes_dropped, (cut - off) as u64);
            assert!(!t.operator_requested);
            assert_eq!(fs::metadata(&seg).unwrap().len(), off as u64);
        }
        if cut % 9 == 0 {
            // The journal goes on cleanly after the cut.
            assert_eq!(j.append(&cmds[39]).unwrap(), 40);
            j.close().unwrap();
            let (_j, r) = Journal::open(copy.path(), Options::default()).unwrap();
            assert_eq!((r.lsn, r.truncated_tail), (40, None));
            assert_eq!(r.state, model(&cmds));
        }
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let (dir, cmds) = journal_of(25, 12);
    let full = model(&cmds);
    let end = fs::metadata(newest_segment(dir.path())).unwrap().len();
    let mut noise = vec![0u8; 300];
    let mut x = 12345u32;
    for b in &mut noise {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let valid_header_of_a_long_record = {
        let mut h = vec![b'J', 1, 0, 0];
        h.extend_from_slice(&10_000u32.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        reseal_header(&mut h, 0);
        h.extend_from_slice(&[7; 100]);
        h
    };
    for tail in [
        vec![0u8; 4096],
        noise,
        valid_header_of_a_long_record,
        vec![b'J'],
    ] {
        let copy = copy_dir(dir.path());
        let seg = newest_segment(copy.path());
        let mut bytes = fs::read(&seg).unwrap();
        bytes.extend_from_slice(&tail);
        fs::write(&seg, &bytes).unwrap();
        let inspection = offline::verify(copy.path()).unwrap();
        assert!(inspection.segments[0].torn_tail);
        let (_j, r) = Journal::open(copy.path(), Options::default()).unwrap();
        assert_eq!(r.lsn, 25);
        assert_eq!(r.state, full);
        let t = r.truncated_tail.expect("garbage cut");
        assert_eq!((t.offset, t.bytes_dropped), (end, tail.len() as u64));
    }
}

#[test]
fn a_torn_segment_header_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Workload::new(13);
    let (j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    for c in w.take(10) {
        j.append(&c).unwrap();
    }
    j.snapshot(&w.state, 10).unwrap();
    drop(j);
    let seg = newest_segment(dir.path());
    assert_eq!(name_of(&seg), "journal-00000000000000000011.log");
    let header = fs::read(&seg).unwrap();
    for cut in 0..header.len() {
        fs::write(&seg, &header[..cut]).unwrap();
        let (j, r) = Journal::open(dir.path(), Options::default()).unwrap();
        assert_eq!((r.lsn, r.snapshot_lsn), (10, Some(10)));
        if cut > 0 {
            let t = r.truncated_tail.expect("torn header");
            assert_eq!((t.record, t.offset), (0, 0));
        }
        drop(j);
        assert_eq!(
            fs::read(&seg).unwrap(),
            header,
            "header rewritten after cut {cut}"
        );
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    b[at] ^= 0x10;
    fs::write(path, b).unwrap();
}

fn assert_corrupt_at(err: &RecoveryError, file: &str, record: u64, offset: usize) {
    match err {
        RecoveryError::Corrupt {
            file: f,
            record: r,
            offset: o,
            ..
        } => assert_eq!((f.as_str(), *r, *o), (file, record, offset as u64), "{err}"),
        other => panic!("expected corruption at {file}:{offset}, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("{file} record {record} at offset {offset}")),
        "{text}"
    );
    assert!(text.contains("run 'hearth recovery verify --dir"), "{text}");
}

#[test]
fn a_flipped_byte_mid_file_stops_open_and_verify_until_the_operator_truncates() {
    let (dir, cmds) = journal_of(50, 14);
    let seg = newest_segment(dir.path());
    let name = name_of(&seg);
    let recs = records(&fs::read(&seg).unwrap());
    let (off, len) = recs[20];
    flip(&seg, off + len / 2);

    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert_corrupt_at(&err, &name, 20, off);
    assert!(err.to_string().contains("bad checksum"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("--truncate-at {name}:{off}")),
        "{err}"
    );
    assert_corrupt_at(&offline::verify(dir.path()).unwrap_err(), &name, 20, off);
    assert!(offline::export(dir.path(), &dir.path().join("x.json")).is_err());

    // A truncate point that is not the bad record changes nothing.
    let wrong = Options {
        allow_truncate_at: Some(TruncatePoint {
            file: name.clone(),
            offset: off as u64 + 1,
        }),
        ..Options::default()
    };
    let err = Journal::open(dir.path(), wrong).unwrap_err();
    assert_corrupt_at(&err, &name, 20, off);

    let file_len = fs::metadata(&seg).unwrap().len();
    let exact = Options {
        allow_truncate_at: Some(format!("{name}:{off}").parse().unwrap()),
        ..Options::default()
    };
    let (j, r) = Journal::open(dir.path(), exact).unwrap();
    assert_eq!(r.lsn, 19);
    assert_eq!(r.state, model(&cmds[..19]));
    let t = r.truncated_tail.expect("operator cut");
    assert!(t.operator_requested);
    assert_eq!(
        (t.offset, t.bytes_dropped),
        (off as u64, file_len - off as u64)
    );
    let kept = t.kept_in.expect("dropped bytes kept");
    assert_eq!(fs::metadata(&kept).unwrap().len(), file_len - off as u64);
    j.append(&cmds[19]).unwrap();
    j.close().unwrap();

    let (j, r) = Journal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(r.lsn, 20);
    assert_eq!(r.state, model(&cmds[..20]));
    drop(j);
    let inspection = offline::inspect(dir.path()).unwrap();
    assert!(inspection
        .leftovers
        .iter()
        .any(|l| l.contains(".dropped-at-")));
}

#[test]
fn a_damaged_length_field_is_not_mistaken_for_a_torn_tail() {
    let (dir, _) = journal_of(30, 15);
    let seg = newest_segment(dir.path());
    let recs = records(&fs::read(&seg).unwrap());
    let (off, _) = recs[10];
    flip(&seg, off + 6); // the length's high bytes: now "runs past the end of the file"
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert_corrupt_at(&err, &name_of(&seg), 10, off);
    assert!(err.to_string().contains("bad header checksum"), "{err}");
}

#[test]
fn a_bad_final_record_followed_by_a_valid_one_is_not_torn() {
    let (dir, _) = journal_of(30, 16);
    let seg = newest_segment(dir.path());
    let recs = records(&fs::read(&seg).unwrap());
    let (off, len) = recs[recs.len() - 2];
    flip(&seg, off + len - 1);
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert_corrupt_at(&err, &name_of(&seg), recs.len() as u64 - 2, off);
}

#[test]
fn an_unknown_version_is_refused_even_at_the_end() {
    let (dir, _) = journal_of(10, 17);
    let seg = newest_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let (off, _) = *records(&bytes).last().unwrap();
    bytes[off + 1] = 2;
    reseal_header(&mut bytes, off);
    fs::write(&seg, &bytes).unwrap();
    let err = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert_corrupt_at(&err, &name_of(&seg), 10, off);
    assert!(err.to_string().contains("format version 2"), "{err}");
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_never_torn() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 2048,
        ..Options::default()
    };
    let cmds = Workload::new(18).take(120);
    let (j, _) = Journal::open(dir.path(), opts.clone()).unwrap();
    for c in &cmds {
        j.append(c).unwrap();
    }
    j.close().unwrap();
    let segs = files(dir.path(), "journal-");
    assert!(segs.len() >= 3);
    let victim = &segs[1];
    let bytes = fs::read(victim).unwrap();
    let recs = records(&bytes);
    let (off, len) = *recs.last().unwrap();
    fs::write(victim, &bytes[..off + len - 3]).unwrap();

    let err = Journal::open(dir.path(), opts.clone()).unwrap_err();
    let name = name_of(victim);
    assert_corrupt_at(&err, &name, recs.len() as u64 - 1, off);
    assert!(err.to_string().contains("later segment(s)"), "{err}");

    let last_good = victim_first_lsn(&name) + recs.len() as u64 - 3;
    let exact = Options {
        allow_truncate_at: Some(TruncatePoint {
            file: name.clone(),
            offset: off as u64,
        }),
        ..opts
    };
    let (_j, r) = Journal::open(dir.path(), exact).unwrap();
    assert_eq!(r.lsn, last_good);
    assert_eq!(r.state, model(&cmds[..last_good as usize]));
    let t = r.truncated_tail.unwrap();
    assert_eq!(t.dropped_segments.len(), segs.len() - 2);
    assert!(t.dropped_segments.iter().all(|p| p.exists()));
}

fn victim_first_lsn(name: &str) -> u64 {
    name.trim_start_matches("journal-")
        .trim_end_matches(".log")
        .parse()
        .unwrap()
}
