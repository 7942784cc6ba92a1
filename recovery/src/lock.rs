//! The directory lock: `flock(2)` on `LOCK`, whose text names the holder.
//!
//! The kernel drops a `flock` when its holder's file is closed, so a crashed master never
//! blocks the next one; the pid and host written in the file are only there to tell an
//! operator *who* holds it. A master holds it exclusively; the offline readers (inspect,
//! verify, export) take it shared, so they refuse to read a directory a master is writing.

use crate::error::RecoveryError;
use crate::layout::LOCK_FILE;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

fn try_flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// "pid 123 on host h (since 2026-…)" from the LOCK file's text.
pub(crate) fn describe_holder(text: &str) -> String {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match (field("pid"), field("host")) {
        (Some(pid), Some(host)) => {
            let since = field("since_ms")
                .and_then(|ms| ms.parse().ok())
                .map(|ms| format!(" since {}", hearth_core::Millis(ms)))
                .unwrap_or_default();
            format!("pid {pid} on host {host}{since}")
        }
        _ => "a process that has not written its pid yet (an offline tool, or a master starting)"
            .into(),
    }
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    describe_holder(&text)
}

impl DirLock {
    /// Takes the lock for writing and records this process as the holder.
    pub(crate) fn exclusive(dir: &Path) -> Result<DirLock, RecoveryError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |e| RecoveryError::io(dir, "open or lock LOCK", e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        if !try_flock(&file, libc::LOCK_EX).map_err(io_err)? {
            return Err(RecoveryError::Locked {
                dir: dir.to_path_buf(),
                holder: read_holder(&mut file),
            });
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let text = format!(
            "pid={}\nhost={}\nsince_ms={since}\n",
            std::process::id(),
            hostname()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(|e| RecoveryError::io(dir, "write LOCK", e))?;
        Ok(DirLock { _file: file })
    }

    /// Takes the lock for reading if the directory has a LOCK file (a directory no master
    /// ever opened has none and needs none).
    pub(crate) fn shared(dir: &Path) -> Result<Option<DirLock>, RecoveryError> {
        let mut file = match File::open(dir.join(LOCK_FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RecoveryError::io(dir, "open LOCK", e)),
        };
        if !try_flock(&file, libc::LOCK_SH).map_err(|e| RecoveryError::io(dir, "lock LOCK", e))? {
            return Err(RecoveryError::Locked {
                dir: dir.to_path_buf(),
                holder: read_holder(&mut file),
            });
        }
        Ok(Some(DirLock { _file: file }))
    }
}

/// The LOCK file's holder description, for `inspect` (the last holder if none holds it).
pub(crate) fn last_holder(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    Some(describe_holder(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_exclusive_names_the_holder_and_first_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::exclusive(dir.path()).unwrap();
        let err = DirLock::exclusive(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {} on host", std::process::id())),
            "{err}"
        );
        let err = DirLock::shared(dir.path()).unwrap_err().to_string();
        assert!(err.contains("locked by pid"), "{err}");
        drop(first);
        let shared = DirLock::shared(dir.path()).unwrap();
        assert!(shared.is_some());
        assert!(DirLock::shared(dir.path()).unwrap().is_some());
        assert!(DirLock::exclusive(dir.path()).is_err());
    }

    #[test]
    fn describes_an_unwritten_lock() {
        assert!(describe_holder("").contains("has not written its pid"));
        assert_eq!(describe_holder("pid=7\nhost=h\n"), "pid 7 on host h");
    }
}
