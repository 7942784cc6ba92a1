//! The offline tools behind `hearth recovery inspect|verify|export|import`, for a stopped
//! master's directory.
//!
//! inspect, verify and export only read, and take the directory lock shared, so they
//! refuse while a master holds it; import fills an empty directory. The export file is a
//! JSON document (see FORMAT.md) that the Raft mode can import too.

use crate::error::RecoveryError;
use crate::frame;
use crate::layout::{self, snapshot_name, FileRef, Listing};
use crate::lock::{self, DirLock};
use crate::restore::{self, Mode};
use hearth_core::ClusterState;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `format` of an export document.
pub const EXPORT_FORMAT: &str = "hearth-snapshot";
/// `version` of the export documents this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// One snapshot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub lsn: u64,
    pub file: String,
    pub bytes: u64,
    /// What is wrong with it, if anything.
    pub problem: Option<String>,
}

/// One journal segment, read up to its first bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    pub file: String,
    pub first_lsn: u64,
    /// LSN of its last good entry; `None` if it holds none.
    pub last_lsn: Option<u64>,
    /// Good entries (the segment header not counted).
    pub records: u64,
    pub bytes: u64,
    /// The first bad record: "record N at offset M" and what is wrong with it.
    pub problem: Option<String>,
    /// The problem is a torn final record that `open` cuts by itself.
    pub torn_tail: bool,
}

/// The newest command in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCommand {
    pub lsn: u64,
    pub kind: String,
}

/// What a restore of the directory yields (filled by [`verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restorable {
    pub lsn: u64,
    pub snapshot_lsn: Option<u64>,
    pub replayed: u64,
    pub workers: usize,
    pub apps: usize,
    pub completed_apps: usize,
    pub drivers: usize,
}

/// A report on a recovery directory; `Display` prints it for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub dir: PathBuf,
    /// Who holds (or last held) the lock, from the LOCK file.
    pub lock_holder: Option<String>,
    pub snapshots: Vec<SnapshotEntry>,
    pub segments: Vec<SegmentEntry>,
    /// Other files: unfinished temp files, bytes set aside by a truncation, strangers.
    pub leftovers: Vec<String>,
    /// Good journal entries in all segments.
    pub total_records: u64,
    pub last_command: Option<LastCommand>,
    pub restorable: Option<Restorable>,
}

/// Lists and reads everything, reporting problems instead of failing on them.
pub fn inspect(dir: &Path) -> Result<Inspection, RecoveryError> {
    let _lock = DirLock::shared(dir)?;
    let listing = layout::list(dir)?;
    Ok(examine(dir, &listing)?.0)
}

/// Checks everything: every snapshot, every segment, LSN continuity, and a full replay.
/// Fails on the first problem with the exact file, record and offset; a torn final record
/// (which `open` cuts by itself) is reported in the inspection, not as an error.
pub fn verify(dir: &Path) -> Result<Inspection, RecoveryError> {
    let _lock = DirLock::shared(dir)?;
    let listing = layout::list(dir)?;
    let mode = Mode {
        strict: true,
        truncate_at: None,
        suggest_truncate: true,
    };
    let replayed = restore::restore(dir, &listing, mode)?;
    let (mut inspection, first_problem) = examine(dir, &listing)?;
    if let Some(err) = first_problem {
        return Err(err);
    }
    inspection.restorable = Some(Restorable {
        lsn: replayed.lsn,
        snapshot_lsn: replayed.snapshot_lsn,
        replayed: replayed.replayed,
        workers: replayed.state.workers.len(),
        apps: replayed.state.apps.len(),
        completed_apps: replayed.state.completed_apps.len(),
        drivers: replayed.state.drivers.len(),
    });
    Ok(inspection)
}

#[derive(Serialize)]
struct ExportOut<'a> {
    format: &'a str,
    version: u32,
    lsn: u64,
    state: &'a ClusterState,
}

#[derive(Deserialize)]
struct ExportHead {
    format: String,
    version: u32,
}

#[derive(Deserialize)]
struct ExportIn {
    lsn: u64,
    state: ClusterState,
}

/// Restores the directory (as `open` would, without changing it) and writes the state and
/// its LSN to `out` as one JSON document (temp file, fsync, rename). Returns the LSN.
pub fn export(dir: &Path, out: &Path) -> Result<u64, RecoveryError> {
    let _lock = DirLock::shared(dir)?;
    let listing = layout::list(dir)?;
    let mode = Mode {
        strict: false,
        truncate_at: None,
        suggest_truncate: true,
    };
    let r = restore::restore(dir, &listing, mode)?;
    write_export(out, r.lsn, &r.state)?;
    Ok(r.lsn)
}

/// Writes an export document for `state` as of `lsn` to `out` (temp file, fsync, rename).
/// For any backend that wants to hand its state to another (the Raft mode too).
pub fn write_export(out: &Path, lsn: u64, state: &ClusterState) -> Result<(), RecoveryError> {
    let doc = ExportOut {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        lsn,
        state,
    };
    write_json(out, &doc).map_err(|e| RecoveryError::Export {
        file: out.to_path_buf(),
        problem: format!("cannot write it: {e}"),
    })
}

fn write_json(out: &Path, doc: &ExportOut<'_>) -> std::io::Result<()> {
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = out.with_file_name(tmp_name);
    let file = File::create(&tmp)?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer(&mut w, doc)?;
    w.write_all(b"\n")?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&tmp, out)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// Reads and checks an export document: `(lsn, state)`. For any backend that imports
/// (the Raft mode too).
pub fn read_export(file: &Path) -> Result<(u64, ClusterState), RecoveryError> {
    let bad = |problem: String| RecoveryError::Export {
        file: file.to_path_buf(),
        problem,
    };
    let text = fs::read(file).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let head: ExportHead = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("is not a hearth export document: {e}")))?;
    if head.format != EXPORT_FORMAT {
        return Err(bad(format!(
            "has format {:?}, expected {EXPORT_FORMAT:?}",
            head.format
        )));
    }
    if head.version != EXPORT_VERSION {
        return Err(bad(format!(
            "is version {}, this build reads version {EXPORT_VERSION}; use the hearth release that wrote it",
            head.version
        )));
    }
    let doc: ExportIn = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("does not hold a valid state: {e}")))?;
    Ok((doc.lsn, doc.state))
}

/// Reads an export document and writes a fresh recovery directory from it (one snapshot;
/// `open` starts the journal after it). Refuses a directory that holds anything but an
/// unheld LOCK or `lost+found`. Returns the LSN.
pub fn import(file: &Path, dir: &Path) -> Result<u64, RecoveryError> {
    let (lsn, state) = read_export(file)?;
    layout::ensure_dir(dir)?;
    let _lock = DirLock::exclusive(dir)?;
    let entries = fs::read_dir(dir).map_err(|e| RecoveryError::io(dir, "list the directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| RecoveryError::io(dir, "list the directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != layout::LOCK_FILE && name != "lost+found" {
            return Err(RecoveryError::NotEmpty {
                dir: dir.to_path_buf(),
                entry: name,
            });
        }
    }
    let bytes = frame::snapshot(lsn, &state).map_err(|problem| RecoveryError::Export {
        file: file.to_path_buf(),
        problem,
    })?;
    let name = snapshot_name(lsn);
    let tmp = layout::write_temp(dir, &name, &bytes)?;
    layout::commit_temp(dir, &tmp, &name)?;
    tracing::info!(dir = %dir.display(), lsn, from = %file.display(), "imported");
    Ok(lsn)
}

/// Reads every file leniently. Also returns the first problem verify must fail on.
fn examine(
    dir: &Path,
    listing: &Listing,
) -> Result<(Inspection, Option<RecoveryError>), RecoveryError> {
    let mut first_problem = None;
    let mut snapshots = Vec::new();
    let mut newest_valid = None;
    for f in &listing.snapshots {
        let problem = match restore::load_snapshot(dir, f) {
            Ok(_) => {
                newest_valid = Some(f.lsn);
                None
            }
            Err(e) => {
                let text = e.to_string();
                first_problem.get_or_insert(e);
                Some(text)
            }
        };
        snapshots.push(SnapshotEntry {
            lsn: f.lsn,
            file: f.name.clone(),
            bytes: f.bytes,
            problem,
        });
    }
    let mut segments = Vec::new();
    let mut last_command = None;
    let n = listing.segments.len();
    for (i, f) in listing.segments.iter().enumerate() {
        let (entry, err) = examine_segment(dir, f, i + 1 == n, &mut last_command)?;
        if let Some(mut err) = err {
            let covered = listing.segments.get(i + 1).map(|next| next.lsn);
            if let (Some(next), Some(snap), RecoveryError::Corrupt { hint, .. }) =
                (covered, newest_valid, &mut err)
            {
                if next <= snap + 1 {
                    *hint = format!(
                        "; snapshot {} covers this whole segment, so open never reads it and \
                         moving it away loses nothing",
                        snapshot_name(snap)
                    );
                }
            }
            first_problem.get_or_insert(err);
        }
        segments.push(entry);
    }
    let mut leftovers: Vec<String> = listing
        .temps
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    leftovers.extend(listing.others.iter().cloned());
    let inspection = Inspection {
        dir: dir.to_path_buf(),
        lock_holder: lock::last_holder(dir),
        total_records: segments.iter().map(|s| s.records).sum(),
        snapshots,
        segments,
        leftovers,
        last_command,
        restorable: None,
    };
    Ok((inspection, first_problem))
}

fn examine_segment(
    dir: &Path,
    f: &FileRef,
    newest: bool,
    last_command: &mut Option<LastCommand>,
) -> Result<(SegmentEntry, Option<RecoveryError>), RecoveryError> {
    let bytes =
        fs::read(&f.path).map_err(|e| RecoveryError::io(dir, format!("read {}", f.name), e))?;
    let mut last = None;
    let scan = frame::scan_segment(&bytes, f.lsn, |lsn, cmd| {
        last = Some(LastCommand {
            lsn,
            kind: cmd.kind().to_owned(),
        });
        Ok(())
    });
    if let Some(l) = &last {
        if last_command.as_ref().is_none_or(|c| c.lsn < l.lsn) {
            *last_command = last.clone();
        }
    }
    let mut torn_tail = false;
    let mut err = None;
    let problem = scan.bad.map(|bad| {
        torn_tail = newest
            && bad.problem.may_be_torn()
            && !frame::valid_record_after(&bytes, bad.offset as usize);
        let text = format!(
            "record {} at offset {} {}",
            bad.index, bad.offset, bad.problem
        );
        if !torn_tail {
            err = Some(RecoveryError::Corrupt {
                dir: dir.to_path_buf(),
                file: f.name.clone(),
                record: bad.index,
                offset: bad.offset,
                problem: bad.problem,
                hint: String::new(),
            });
        }
        text
    });
    let entry = SegmentEntry {
        file: f.name.clone(),
        first_lsn: f.lsn,
        last_lsn: last.map(|l| l.lsn),
        records: scan.entries,
        bytes: f.bytes,
        problem,
        torn_tail,
    };
    Ok((entry, err))
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "recovery dir {}", self.dir.display())?;
        if let Some(h) = &self.lock_holder {
            writeln!(f, "  LOCK names {h}")?;
        }
        writeln!(f, "snapshots: {}", self.snapshots.len())?;
        for s in &self.snapshots {
            let status = s.problem.as_deref().unwrap_or("ok");
            writeln!(
                f,
                "  {}  lsn {}  {} bytes  {status}",
                s.file, s.lsn, s.bytes
            )?;
        }
        writeln!(f, "journal segments: {}", self.segments.len())?;
        for s in &self.segments {
            let range = match s.last_lsn {
                Some(last) => format!("lsn {}..={last}", s.first_lsn),
                None => format!("from lsn {}, empty", s.first_lsn),
            };
            let status = match (&s.problem, s.torn_tail) {
                (None, _) => "ok".to_owned(),
                (Some(p), true) => format!("torn final record ({p}); open cuts it"),
                (Some(p), false) => format!("DAMAGED: {p}"),
            };
            writeln!(
                f,
                "  {}  {range}  {} records  {} bytes  {status}",
                s.file, s.records, s.bytes
            )?;
        }
        if !self.leftovers.is_empty() {
            writeln!(f, "other files: {}", self.leftovers.join(", "))?;
        }
        write!(f, "journal records: {}", self.total_records)?;
        match &self.last_command {
            Some(c) => writeln!(f, "; last command: lsn {} {}", c.lsn, c.kind)?,
            None => writeln!(f)?,
        }
        if let Some(r) = &self.restorable {
            let from = match r.snapshot_lsn {
                Some(s) => format!("snapshot at lsn {s} + {} replayed", r.replayed),
                None => format!("{} replayed from empty", r.replayed),
            };
            writeln!(
                f,
                "restores to lsn {} ({from}): {} workers, {} active apps, {} completed apps, \
                 {} active drivers",
                r.lsn, r.workers, r.apps, r.completed_apps, r.drivers
            )?;
        }
        Ok(())
    }
}
