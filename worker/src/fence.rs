//! Term fencing: the highest leader term this worker has obeyed, kept on disk so that a
//! restarted worker still refuses a deposed leader.
//!
//! Every `WorkerControl` command passes through [`TermStore::admit`] while holding its
//! lock: a lower term is refused; a higher one is written to `WORK_DIR/worker-term`
//! (temp file, fsync, rename, fsync of the directory) *before* the command is carried
//! out; an equal one is obeyed. The lock is held while the command is accepted, so a
//! command admitted at term 5 cannot be carried out after one at term 6 was obeyed.

use crate::error::WorkerError;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tokio::sync::{Mutex, MutexGuard};

/// The name of the term file inside the work dir.
pub const TERM_FILE: &str = "worker-term";

pub(crate) struct TermStore {
    path: PathBuf,
    highest: Mutex<u64>,
}

/// What [`TermStore::admit`] decided.
pub(crate) enum Admission<'a> {
    /// Obey; hold this while accepting the command. Derefs to the highest term.
    Obey(MutexGuard<'a, u64>),
    /// Refuse: the term is lower than `highest`.
    Stale { highest: u64 },
}

impl TermStore {
    /// Loads the term file of `work_dir` (absent: term 0).
    pub fn open(work_dir: &Path) -> Result<Self, WorkerError> {
        let path = work_dir.join(TERM_FILE);
        let highest = match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| WorkerError::CorruptTerm {
                    path: path.clone(),
                    content: s.clone(),
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(WorkerError::io("read", path, e)),
        };
        Ok(TermStore {
            path,
            highest: Mutex::new(highest),
        })
    }

    /// The highest term obeyed so far.
    pub async fn highest(&self) -> u64 {
        *self.highest.lock().await
    }

    /// Decides whether a command of `term` may be obeyed, persisting a new highest term
    /// first. An error means the new term could not be made durable: the command must
    /// not be carried out.
    pub async fn admit(&self, term: u64) -> Result<Admission<'_>, WorkerError> {
        let mut highest = self.highest.lock().await;
        if term < *highest {
            return Ok(Admission::Stale { highest: *highest });
        }
        if term > *highest {
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || write_atomic(&path, &format!("{term}\n")))
                .await
                .map_err(|e| WorkerError::io("write", &self.path, io::Error::other(e)))??;
            tracing::info!(term, previous = *highest, "obeying a new leader term");
            *highest = term;
        }
        Ok(Admission::Obey(highest))
    }
}

/// Replaces `path` with `content` atomically and durably: a crash leaves the old or the
/// new content, never a torn one.
pub(crate) fn write_atomic(path: &Path, content: &str) -> Result<(), WorkerError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| WorkerError::io("write", path, e))
}

/// How far a command's term may be above both the highest term obeyed and this
/// machine's clock in milliseconds (a single master's term is the time it started; a Raft
/// term counts elections): further is a corrupt or hostile request, and obeying it would
/// lock out every real leader, also after restarts.
pub const MAX_TERM_JUMP: u64 = 1 << 32;

/// Whether `term` is beyond any real leader's, for a worker that has obeyed `highest`.
pub fn absurd_term(term: u64, highest: u64) -> bool {
    let clock_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    term > highest.max(clock_ms).saturating_add(MAX_TERM_JUMP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_lower_terms_and_remembers_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = TermStore::open(dir.path()).unwrap();
        assert_eq!(store.highest().await, 0);
        assert!(matches!(store.admit(5).await.unwrap(), Admission::Obey(_)));
        assert!(matches!(store.admit(5).await.unwrap(), Admission::Obey(_)));
        assert!(matches!(
            store.admit(3).await.unwrap(),
            Admission::Stale { highest: 5 }
        ));
        assert_eq!(
            fs::read_to_string(dir.path().join(TERM_FILE)).unwrap(),
            "5\n"
        );
        let reopened = TermStore::open(dir.path()).unwrap();
        assert_eq!(reopened.highest().await, 5);
        assert!(matches!(
            reopened.admit(4).await.unwrap(),
            Admission::Stale { highest: 5 }
        ));
        assert!(!dir.path().join("worker-term.tmp").exists());
    }

    #[test]
    fn a_corrupt_term_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TERM_FILE), "five").unwrap();
        let err = TermStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("worker-term holds \"five\""), "{err}");
    }
}
