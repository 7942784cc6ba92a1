//! The live journal: open (lock, restore, open for append), append, group-commit sync,
//! snapshot, and the flusher thread.
//!
//! Invariant: only the newest segment can hold records that are not yet fsynced. A
//! segment is fsynced before the next one is created (`roll`), and `open` fsyncs the
//! newest segment it restored from before accepting appends. So a crash can only ever
//! tear the end of the newest segment, which is exactly what restore forgives.

use crate::error::RecoveryError;
use crate::frame;
use crate::group::{Group, WaitError};
use crate::layout::{self, segment_name, snapshot_name};
use crate::lock::DirLock;
use crate::restore::{self, Mode, Newest};
use crate::{failpoint, Options, Restored};
use hearth_core::{ClusterState, Command};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

/// The FILESYSTEM-mode journal of one master. `Send + Sync`: share it with an `Arc`;
/// appends are serialized internally, syncs are grouped.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    /// Makes the group-commit fsyncs; stopped and joined on drop.
    flusher: Option<JoinHandle<()>>,
    /// One snapshot at a time.
    snapshot_lock: Mutex<()>,
    /// Held for the journal's lifetime; a second master on the directory is refused.
    _lock: DirLock,
}

/// Counters for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalStats {
    /// LSN of the last appended record.
    pub appended: u64,
    /// Every record up to this LSN is fsynced.
    pub durable: u64,
    /// LSN of the newest snapshot written or restored from.
    pub snapshot_lsn: Option<u64>,
    /// fsyncs of journal segments since open (group commit makes this far less than the
    /// number of `sync` calls).
    pub fsyncs: u64,
    /// The segment being appended to.
    pub segment: String,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    opts: Options,
    writer: Mutex<Writer>,
    /// `writer.last_lsn`, readable without the lock.
    appended: AtomicU64,
    /// Newest snapshot's LSN + 1; 0 = none.
    snapshot_lsn_plus_one: AtomicU64,
    group: Group,
}

#[derive(Debug)]
struct Writer {
    /// Shared with the flusher, which fsyncs it without holding the append lock.
    file: Arc<File>,
    name: String,
    first_lsn: u64,
    bytes: u64,
    last_lsn: u64,
    /// Set by a failed write or fsync: after one, what the file holds is unknown, so
    /// nothing more is appended until a restart restores from disk.
    poisoned: Option<String>,
    /// Reused frame buffer.
    buf: Vec<u8>,
}

impl Journal {
    /// Takes the directory lock (a second master gets an error naming the holder's pid
    /// and host), restores the state, cuts a torn final record (WARN naming file and
    /// offset) and opens the journal for appending. Creates `dir` if it is missing.
    pub fn open(dir: &Path, opts: Options) -> Result<(Journal, Restored), RecoveryError> {
        let started = Instant::now();
        layout::ensure_dir(dir)?;
        let lock = DirLock::exclusive(dir)?;
        let listing = layout::list(dir)?;
        for tmp in &listing.temps {
            tracing::debug!(file = %tmp.display(), "removing an unfinished temp file");
            layout::remove(dir, tmp)?;
        }
        let mode = Mode {
            strict: false,
            truncate_at: opts.allow_truncate_at.as_ref(),
            suggest_truncate: true,
        };
        let replayed = restore::restore(dir, &listing, mode)?;
        if let Some(tp) = &opts.allow_truncate_at {
            if !replayed.cut.as_ref().is_some_and(|c| c.by_operator) {
                tracing::warn!(dir = %dir.display(), point = %tp,
                    "--truncate-at names no bad record; nothing was dropped: remove the flag");
            }
        }
        let truncated_tail = match &replayed.cut {
            Some(cut) => Some(restore::apply_cut(dir, cut)?),
            None => None,
        };
        let writer = open_writer(dir, &opts, replayed.lsn, replayed.newest.as_ref())?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            appended: AtomicU64::new(replayed.lsn),
            snapshot_lsn_plus_one: AtomicU64::new(replayed.snapshot_lsn.map_or(0, |l| l + 1)),
            group: Group::new(replayed.lsn),
            writer: Mutex::new(writer),
            opts,
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("hearth-journal-sync".into())
                .spawn(move || flusher_loop(&shared))
                .map_err(|e| RecoveryError::io(dir, "start the journal's sync thread", e))?
        };
        let restored = Restored {
            state: replayed.state,
            lsn: replayed.lsn,
            snapshot_lsn: replayed.snapshot_lsn,
            replayed: replayed.replayed,
            truncated_tail,
            skipped_snapshots: replayed.skipped,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            dir = %dir.display(), lsn = restored.lsn, snapshot_lsn = ?restored.snapshot_lsn,
            replayed = restored.replayed, elapsed_ms = restored.elapsed.as_millis() as u64,
            "recovery dir restored"
        );
        let journal = Journal {
            shared,
            flusher: Some(flusher),
            snapshot_lock: Mutex::new(()),
            _lock: lock,
        };
        Ok((journal, restored))
    }

    /// Appends one command: one `write` to the current segment, NOT yet durable (see
    /// [`Journal::sync`]). Returns its LSN.
    pub fn append(&self, cmd: &Command) -> Result<u64, RecoveryError> {
        let body = frame::encode_command(cmd);
        let s = &*self.shared;
        if body.len() + 10 > frame::MAX_PAYLOAD {
            return Err(RecoveryError::misuse(
                &s.dir,
                format!(
                    "a {} command of {} bytes is too large to journal",
                    cmd.kind(),
                    body.len()
                ),
            ));
        }
        let mut guard = s.lock_writer();
        let w = &mut *guard;
        s.check_poisoned(w)?;
        if w.bytes >= s.opts.segment_bytes {
            s.roll(w)?;
        }
        let lsn = w.last_lsn + 1;
        w.buf.clear();
        frame::entry(&mut w.buf, lsn, &body);
        if failpoint("journal-before-write") {
            return Err(s.poison(w, RecoveryError::Injected("journal-before-write")));
        }
        if let Err(e) = (&*w.file).write_all(&w.buf) {
            let err = RecoveryError::io(&s.dir, format!("write lsn {lsn} to {}", w.name), e);
            return Err(s.poison(w, err));
        }
        w.last_lsn = lsn;
        w.bytes += w.buf.len() as u64;
        s.appended.store(lsn, Ordering::Release);
        if failpoint("journal-after-write") {
            return Err(s.poison(w, RecoveryError::Injected("journal-after-write")));
        }
        Ok(lsn)
    }

    /// Returns once every record up to `lsn` is fsynced. Concurrent callers share one
    /// fsync. Awaits without blocking the runtime (a dedicated thread does the fsync).
    pub async fn sync(&self, lsn: u64) -> Result<(), RecoveryError> {
        self.check_appended(lsn)?;
        let waited = self.shared.group.wait(lsn).await;
        waited.map_err(|e| self.shared.wait_error(e))
    }

    /// [`Journal::sync`] for threads that may block.
    pub fn sync_blocking(&self, lsn: u64) -> Result<(), RecoveryError> {
        self.check_appended(lsn)?;
        let waited = self.shared.group.wait_blocking(lsn);
        waited.map_err(|e| self.shared.wait_error(e))
    }

    /// Whether a snapshot is due: at least `snapshot_every` records since the last one.
    pub fn snapshot_due(&self) -> bool {
        let appended = self.shared.appended.load(Ordering::Acquire);
        let since = appended.saturating_sub(self.shared.snapshot_lsn().unwrap_or(0));
        since >= self.shared.opts.snapshot_every
    }

    /// Writes a snapshot of `state` as of `lsn` (the state after exactly the commands
    /// 1..=lsn): temp file, fsync, rename, directory fsync. Then the journal rolls to a
    /// new segment and segments wholly before `lsn` and older snapshots are removed.
    /// Blocking (it writes the whole state): call it from a blocking-capable thread.
    pub fn snapshot(&self, state: &ClusterState, lsn: u64) -> Result<(), RecoveryError> {
        let _one_at_a_time = self
            .snapshot_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let s = &*self.shared;
        self.check_appended(lsn)?;
        match s.snapshot_lsn() {
            Some(prev) if lsn < prev => {
                return Err(RecoveryError::misuse(
                    &s.dir,
                    format!("a snapshot at lsn {lsn} is older than the one at lsn {prev}"),
                ))
            }
            Some(prev) if lsn == prev => return Ok(()),
            _ => {}
        }
        let bytes = frame::snapshot(lsn, state).map_err(|e| RecoveryError::misuse(&s.dir, e))?;
        let name = snapshot_name(lsn);
        let tmp = layout::write_temp(&s.dir, &name, &bytes)?;
        if failpoint("snapshot-before-rename") {
            return Err(RecoveryError::Injected("snapshot-before-rename"));
        }
        layout::commit_temp(&s.dir, &tmp, &name)?;
        s.snapshot_lsn_plus_one.store(lsn + 1, Ordering::Release);
        {
            let mut w = s.lock_writer();
            s.check_poisoned(&w)?;
            s.roll(&mut w)?;
        }
        if failpoint("snapshot-before-cleanup") {
            return Err(RecoveryError::Injected("snapshot-before-cleanup"));
        }
        if let Err(e) = s.cleanup(lsn) {
            tracing::warn!(dir = %s.dir.display(), error = %e,
                "snapshot written, but old files could not be removed; the next snapshot retries");
        }
        tracing::info!(dir = %s.dir.display(), lsn, bytes = bytes.len(), "snapshot written");
        Ok(())
    }

    /// Syncs everything appended, then closes (releasing the directory lock).
    pub fn close(self) -> Result<(), RecoveryError> {
        let last = self.shared.appended.load(Ordering::Acquire);
        self.sync_blocking(last)
    }

    pub fn stats(&self) -> JournalStats {
        let s = &*self.shared;
        JournalStats {
            appended: s.appended.load(Ordering::Acquire),
            durable: s.group.durable(),
            snapshot_lsn: s.snapshot_lsn(),
            fsyncs: s.group.fsyncs(),
            segment: s.lock_writer().name.clone(),
        }
    }

    /// The recovery directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn check_appended(&self, lsn: u64) -> Result<(), RecoveryError> {
        let appended = self.shared.appended.load(Ordering::Acquire);
        if lsn > appended {
            return Err(RecoveryError::misuse(
                &self.shared.dir,
                format!("lsn {lsn} was asked for, but only up to lsn {appended} was appended"),
            ));
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// Stops the flusher without a final fsync: dropping is what a crash looks like, and
    /// [`Journal::close`] is the clean way out.
    fn drop(&mut self) {
        self.shared.group.shutdown();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                if g.poisoned.is_none() {
                    let cause = "a thread panicked while appending".to_owned();
                    self.group.fail(&cause);
                    g.poisoned = Some(cause);
                }
                g
            }
        }
    }

    fn check_poisoned(&self, w: &Writer) -> Result<(), RecoveryError> {
        match &w.poisoned {
            Some(cause) => Err(RecoveryError::Poisoned {
                dir: self.dir.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Marks the journal unusable after `err` and returns `err`.
    fn poison(&self, w: &mut Writer, err: RecoveryError) -> RecoveryError {
        let cause = err.to_string();
        tracing::error!(dir = %self.dir.display(), error = %cause,
            "journal failed; it accepts nothing more until the master restarts");
        self.group.fail(&cause);
        w.poisoned.get_or_insert(cause);
        err
    }

    fn wait_error(&self, e: WaitError) -> RecoveryError {
        let cause = match e {
            WaitError::Failed(cause) => cause.to_string(),
            WaitError::Shutdown => "the journal is closing".to_owned(),
        };
        RecoveryError::Poisoned {
            dir: self.dir.clone(),
            cause,
        }
    }

    fn snapshot_lsn(&self) -> Option<u64> {
        self.snapshot_lsn_plus_one
            .load(Ordering::Acquire)
            .checked_sub(1)
    }

    /// Closes the current segment (fsync) and starts the next, unless the current one
    /// holds no entry yet.
    fn roll(&self, w: &mut Writer) -> Result<(), RecoveryError> {
        let next = w.last_lsn + 1;
        if w.first_lsn == next {
            return Ok(());
        }
        let synced = if failpoint("journal-before-fsync") {
            Err(RecoveryError::Injected("journal-before-fsync"))
        } else {
            w.file
                .sync_data()
                .map_err(|e| RecoveryError::io(&self.dir, format!("fsync {}", w.name), e))
        };
        if let Err(err) = synced {
            return Err(self.poison(w, err));
        }
        self.group.mark_durable(w.last_lsn);
        let (file, bytes) = layout::create_segment(&self.dir, next)?;
        w.file = Arc::new(file);
        w.name = segment_name(next);
        w.first_lsn = next;
        w.bytes = bytes;
        Ok(())
    }

    /// Removes snapshots older than `lsn` and segments wholly at or before it.
    fn cleanup(&self, lsn: u64) -> Result<(), RecoveryError> {
        let listing = layout::list(&self.dir)?;
        let current = self.lock_writer().first_lsn;
        let mut removed = Vec::new();
        for f in listing.snapshots.iter().filter(|f| f.lsn < lsn) {
            layout::remove(&self.dir, &f.path)?;
            removed.push(f.name.clone());
        }
        for pair in listing.segments.windows(2) {
            if pair[1].lsn <= lsn + 1 && pair[0].lsn < current {
                layout::remove(&self.dir, &pair[0].path)?;
                removed.push(pair[0].name.clone());
            }
        }
        if !removed.is_empty() {
            layout::sync_dir(&self.dir)?;
            tracing::debug!(dir = %self.dir.display(), ?removed, "removed files covered by the snapshot");
        }
        Ok(())
    }
}

/// Opens the segment to append to after a restore that ended at `lsn`: the newest one if
/// it ends right there, else a new `journal-<lsn + 1>.log`. The newest segment is fsynced
/// first, since a crashed predecessor may have left its last writes unsynced.
fn open_writer(
    dir: &Path,
    opts: &Options,
    lsn: u64,
    newest: Option<&Newest>,
) -> Result<Writer, RecoveryError> {
    let next = lsn + 1;
    let io = |what: String| move |e: std::io::Error| RecoveryError::io(dir, what, e);
    if let Some(n) = newest {
        let name = &n.file.name;
        let reuse = n.next_lsn == next
            && n.valid_len > 0
            && (n.valid_len < opts.segment_bytes || n.file.lsn == next);
        if n.valid_len == 0 {
            layout::remove(dir, &n.file.path)?;
        } else {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&n.file.path)
                .map_err(io(format!("open {name}")))?;
            f.sync_all().map_err(io(format!("fsync {name}")))?;
            if reuse {
                f.seek(SeekFrom::Start(n.valid_len))
                    .map_err(io(format!("seek in {name}")))?;
                return Ok(Writer {
                    file: Arc::new(f),
                    name: name.clone(),
                    first_lsn: n.file.lsn,
                    bytes: n.valid_len,
                    last_lsn: lsn,
                    poisoned: None,
                    buf: Vec::new(),
                });
            }
        }
        layout::sync_dir(dir)?;
    }
    let (file, bytes) = layout::create_segment(dir, next)?;
    Ok(Writer {
        file: Arc::new(file),
        name: segment_name(next),
        first_lsn: next,
        bytes,
        last_lsn: lsn,
        poisoned: None,
        buf: Vec::new(),
    })
}

/// The group-commit flusher: each round fsyncs the current segment once, covering every
/// record appended before the round began.
fn flusher_loop(shared: &Shared) {
    while shared.group.next_round() {
        let (file, upto, name) = {
            let w = shared.lock_writer();
            if w.poisoned.is_some() {
                return;
            }
            (w.file.clone(), w.last_lsn, w.name.clone())
        };
        let synced = if failpoint("journal-before-fsync") {
            Err(RecoveryError::Injected("journal-before-fsync"))
        } else {
            file.sync_data()
                .map_err(|e| RecoveryError::io(&shared.dir, format!("fsync {name}"), e))
        };
        match synced {
            Ok(()) => shared.group.mark_durable(upto),
            Err(err) => {
                let mut w = shared.lock_writer();
                shared.poison(&mut w, err);
                return;
            }
        }
    }
}
