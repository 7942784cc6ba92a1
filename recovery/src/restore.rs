//! Restore: the newest snapshot that verifies, then the journal after it, in LSN order,
//! through `hearth_core::apply`.
//!
//! The reading half ([`restore`]) changes nothing on disk, so the offline tools share it;
//! [`apply_cut`] is the writing half `open` runs afterwards.
//!
//! Rules:
//! - Snapshots newest first; a damaged one is passed over (WARN) only if the journal then
//!   reaches at least its LSN, else restore fails (never start with less state).
//! - Segments wholly covered by the snapshot are not read. The first segment read may
//!   overlap the snapshot; each later one must start right after its predecessor.
//! - Inside a segment the N-th entry holds LSN `first + N - 1`; any gap or repeat is
//!   corruption.
//! - A bad record is a torn tail, cut with a WARN, only when it is in the newest segment,
//!   is damage an interrupted write can cause, and no valid record follows it. Anything
//!   else stops restore, unless the operator named exactly that record.

use crate::error::{Problem, RecoveryError};
use crate::frame::{self, BadRecord};
use crate::layout::{self, FileRef};
use crate::{SkippedSnapshot, TornTail, TruncatePoint};
use hearth_core::{ClusterState, Command};
use std::fs::{self, OpenOptions};
use std::path::Path;

/// How strict a restore is and what it may cut.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mode<'a> {
    /// verify: a damaged snapshot is an error even if the journal could cover it.
    pub strict: bool,
    /// The operator's permission to cut at one bad record.
    pub truncate_at: Option<&'a TruncatePoint>,
    /// Whether errors suggest the truncate option (open does; the offline tools too,
    /// since the operator runs them to decide).
    pub suggest_truncate: bool,
}

/// Where the journal must be cut, and why.
#[derive(Clone, Debug)]
pub(crate) struct Cut {
    pub segment: FileRef,
    pub bad: BadRecord,
    pub by_operator: bool,
    /// Segments after the cut one (operator truncation only).
    pub later: Vec<FileRef>,
}

/// The newest segment that remains once the cut is made.
#[derive(Clone, Debug)]
pub(crate) struct Newest {
    pub file: FileRef,
    /// The LSN its next entry would carry.
    pub next_lsn: u64,
    /// Its length once cut.
    pub valid_len: u64,
}

/// The outcome of reading a directory.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub state: ClusterState,
    pub lsn: u64,
    pub snapshot_lsn: Option<u64>,
    pub replayed: u64,
    pub skipped: Vec<SkippedSnapshot>,
    pub cut: Option<Cut>,
    pub newest: Option<Newest>,
}

/// Reads one snapshot file; its LSN must match its name.
pub(crate) fn load_snapshot(dir: &Path, f: &FileRef) -> Result<(u64, ClusterState), RecoveryError> {
    let bytes =
        fs::read(&f.path).map_err(|e| RecoveryError::io(dir, format!("read {}", f.name), e))?;
    let corrupt = |offset: u64, problem: Problem| RecoveryError::Corrupt {
        dir: dir.to_path_buf(),
        file: f.name.clone(),
        record: 0,
        offset,
        problem,
        hint: String::new(),
    };
    let (lsn, state) = frame::read_snapshot(&bytes).map_err(|(off, p)| corrupt(off, p))?;
    if lsn != f.lsn {
        return Err(corrupt(
            0,
            Problem::LsnMismatch {
                expected: f.lsn,
                found: lsn,
            },
        ));
    }
    Ok((lsn, state))
}

/// Where replay starts: the newest snapshot that loads, and the newer ones that did not.
struct Base {
    snapshot: Option<(u64, ClusterState)>,
    skipped: Vec<SkippedSnapshot>,
}

fn load_base(dir: &Path, snapshots: &[FileRef], strict: bool) -> Result<Base, RecoveryError> {
    let mut skipped = Vec::new();
    for f in snapshots.iter().rev() {
        match load_snapshot(dir, f) {
            Ok(snapshot) => {
                return Ok(Base {
                    snapshot: Some(snapshot),
                    skipped,
                })
            }
            Err(e) if strict => return Err(e),
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(), file = %f.name, error = %e,
                    "snapshot is damaged; trying an older snapshot and the journal after it"
                );
                skipped.push(SkippedSnapshot {
                    file: f.path.clone(),
                    lsn: f.lsn,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(Base {
        snapshot: None,
        skipped,
    })
}

/// Restores the state `dir` holds, changing nothing on disk.
pub(crate) fn restore(
    dir: &Path,
    listing: &layout::Listing,
    mode: Mode<'_>,
) -> Result<Replayed, RecoveryError> {
    let Base { snapshot, skipped } = load_base(dir, &listing.snapshots, mode.strict)?;
    let snapshot_lsn = snapshot.as_ref().map(|(lsn, _)| *lsn);
    let (base_lsn, state) = snapshot.unwrap_or_default();
    let mut r = Replayer {
        dir,
        mode,
        state,
        base: base_lsn,
        applied: base_lsn,
        replayed: 0,
    };
    let (cut, newest) = r
        .replay(&listing.segments)
        .map_err(|e| match skipped.first() {
            Some(s) => RecoveryError::inconsistent(
                dir,
                format!(
                    "snapshot {} is damaged ({}), and the journal after the older state \
                     cannot be replayed: {e}",
                    s.file.display(),
                    s.reason
                ),
            ),
            None => e,
        })?;
    if let Some(s) = skipped.iter().max_by_key(|s| s.lsn) {
        if r.applied < s.lsn {
            return Err(RecoveryError::inconsistent(
                dir,
                format!(
                    "snapshot {} is damaged ({}) and the journal ends at lsn {}, so starting \
                     would lose lsn {}..={}; restore the directory from an export \
                     ('hearth recovery import'), or move that snapshot away to start from \
                     lsn {} knowingly",
                    s.file.display(),
                    s.reason,
                    r.applied,
                    r.applied + 1,
                    s.lsn,
                    r.applied
                ),
            ));
        }
    }
    Ok(Replayed {
        state: r.state,
        lsn: r.applied,
        snapshot_lsn,
        replayed: r.replayed,
        skipped,
        cut,
        newest,
    })
}

struct Replayer<'a> {
    dir: &'a Path,
    mode: Mode<'a>,
    state: ClusterState,
    /// The snapshot's LSN (0 without one): entries up to it are skipped.
    base: u64,
    applied: u64,
    replayed: u64,
}

impl Replayer<'_> {
    fn replay(&mut self, segs: &[FileRef]) -> Result<(Option<Cut>, Option<Newest>), RecoveryError> {
        let n = segs.len();
        // Segments followed by one starting at or before base + 1 are wholly covered.
        let start = (0..n)
            .find(|&i| i + 1 == n || segs[i + 1].lsn > self.base + 1)
            .unwrap_or(n);
        let mut newest = None;
        let mut expected_first: Option<u64> = None;
        for (i, seg) in segs.iter().enumerate().skip(start) {
            let fits = match expected_first {
                Some(e) => seg.lsn == e,
                None => seg.lsn <= self.base + 1,
            };
            if !fits {
                let bad = BadRecord {
                    index: 0,
                    offset: 0,
                    problem: Problem::SegmentGap {
                        expected: expected_first.unwrap_or(self.base + 1),
                        first: seg.lsn,
                    },
                };
                let cut = self.stop(segs, i, &[], bad)?;
                let newest = Newest {
                    file: seg.clone(),
                    next_lsn: seg.lsn,
                    valid_len: 0,
                };
                return Ok((Some(cut), Some(newest)));
            }
            let bytes = fs::read(&seg.path)
                .map_err(|e| RecoveryError::io(self.dir, format!("read {}", seg.name), e))?;
            let scan = frame::scan_segment(&bytes, seg.lsn, |lsn, cmd| self.visit(lsn, cmd));
            let next_lsn = seg.lsn + scan.entries;
            newest = Some(Newest {
                file: seg.clone(),
                next_lsn,
                valid_len: scan.valid_len,
            });
            if let Some(bad) = scan.bad {
                let cut = self.stop(segs, i, &bytes, bad)?;
                return Ok((Some(cut), newest));
            }
            expected_first = Some(next_lsn);
        }
        Ok((None, newest))
    }

    fn visit(&mut self, lsn: u64, cmd: Command) -> Result<(), Problem> {
        if lsn <= self.base {
            return Ok(());
        }
        if lsn != self.applied + 1 {
            return Err(Problem::LsnMismatch {
                expected: self.applied + 1,
                found: lsn,
            });
        }
        if let Err(rejection) = hearth_core::apply(&mut self.state, &cmd) {
            // apply is deterministic: the original was refused the same way.
            tracing::debug!(lsn, kind = cmd.kind(), %rejection, "replayed command refused");
        }
        self.applied = lsn;
        self.replayed += 1;
        Ok(())
    }

    /// Decides what a bad record means: a torn tail, the operator's cut, or an error.
    fn stop(
        &self,
        segs: &[FileRef],
        i: usize,
        bytes: &[u8],
        bad: BadRecord,
    ) -> Result<Cut, RecoveryError> {
        let seg = &segs[i];
        let newest = i + 1 == segs.len();
        if newest
            && bad.problem.may_be_torn()
            && !frame::valid_record_after(bytes, bad.offset as usize)
        {
            return Ok(Cut {
                segment: seg.clone(),
                bad,
                by_operator: false,
                later: Vec::new(),
            });
        }
        let point = TruncatePoint {
            file: seg.name.clone(),
            offset: bad.offset,
        };
        if self.mode.truncate_at == Some(&point) {
            return Ok(Cut {
                segment: seg.clone(),
                bad,
                by_operator: true,
                later: segs[i + 1..].to_vec(),
            });
        }
        let hint = if self.mode.suggest_truncate {
            let later = segs.len() - i - 1;
            format!(
                "; to start from the state before it, dropping the rest of {} ({} bytes){}, \
                 restart the master with --truncate-at {point} (dropped bytes are kept \
                 beside the file)",
                seg.name,
                seg.bytes.saturating_sub(bad.offset),
                if later > 0 {
                    format!(" and {later} later segment(s)")
                } else {
                    String::new()
                }
            )
        } else {
            String::new()
        };
        Err(RecoveryError::Corrupt {
            dir: self.dir.to_path_buf(),
            file: seg.name.clone(),
            record: bad.index,
            offset: bad.offset,
            problem: bad.problem,
            hint,
        })
    }
}

/// Makes a cut on disk: truncates the segment at the bad record and, for an operator
/// truncation, keeps the dropped bytes in `<name>.dropped-at-<offset>` and renames later
/// segments to `<name>.dropped`. Logs a WARN naming exactly what went.
pub(crate) fn apply_cut(dir: &Path, cut: &Cut) -> Result<TornTail, RecoveryError> {
    let seg = &cut.segment;
    let io = |what: &str, e| RecoveryError::io(dir, format!("{what} {}", seg.name), e);
    let bytes = fs::read(&seg.path).map_err(|e| io("read", e))?;
    let offset = cut.bad.offset.min(bytes.len() as u64);
    let dropped = bytes.len() as u64 - offset;
    let mut kept_in = None;
    if cut.by_operator && dropped > 0 {
        let keep = dir.join(format!("{}.dropped-at-{offset}", seg.name));
        fs::write(&keep, &bytes[offset as usize..])
            .and_then(|()| fs::File::open(&keep)?.sync_all())
            .map_err(|e| io("keep the dropped bytes of", e))?;
        kept_in = Some(keep);
    }
    OpenOptions::new()
        .write(true)
        .open(&seg.path)
        .and_then(|f| {
            f.set_len(offset)?;
            f.sync_all()
        })
        .map_err(|e| io("truncate", e))?;
    let mut dropped_segments = Vec::new();
    for later in &cut.later {
        let to = later.path.with_file_name(format!("{}.dropped", later.name));
        fs::rename(&later.path, &to).map_err(|e| io("set aside the segment after", e))?;
        dropped_segments.push(to);
    }
    layout::sync_dir(dir)?;
    let tail = TornTail {
        file: seg.path.clone(),
        record: cut.bad.index,
        offset,
        bytes_dropped: dropped,
        problem: cut.bad.problem.to_string(),
        operator_requested: cut.by_operator,
        kept_in,
        dropped_segments,
    };
    if cut.by_operator {
        tracing::warn!(
            dir = %dir.display(), file = %seg.name, record = tail.record, offset,
            bytes_dropped = dropped, kept_in = ?tail.kept_in, dropped_segments = ?tail.dropped_segments,
            problem = %tail.problem,
            "truncated the journal at the operator's request; the commands after this point are gone from the state"
        );
    } else {
        tracing::warn!(
            dir = %dir.display(), file = %seg.name, record = tail.record, offset,
            bytes_dropped = dropped, problem = %tail.problem,
            "truncated a torn final record left by an interrupted write (it was never acknowledged)"
        );
    }
    Ok(tail)
}
