//! A launched process's stdout and stderr, rotated by size (the guard's side of it).
//!
//! With `--log-dir DIR`, the guard gives the command a pipe for each stream and copies
//! it into `DIR/stdout` and `DIR/stderr` ([`RotatingFile`]). When the current file would
//! grow past `max_file_bytes`, it is renamed `stdout.1` (the previous `stdout.1` becomes
//! `stdout.2`, and so on) and a new `stdout` is started; the oldest, `stdout.N-1` with
//! `max_files` = N, is dropped. So `stdout` always holds the newest output and
//! `cat stdout.9 … stdout.1 stdout` is the last N × `max_file_bytes` of it, byte for
//! byte: a line may be split between two files. No file is ever larger than
//! `max_file_bytes`.
//!
//! The command is never blocked by rotation and never gets a write error from it: the
//! guard keeps reading its pipes whatever happens to the files. Bytes that cannot be
//! written (disk full, directory removed) are dropped and counted, and the file is
//! reopened at the next write. When the command exits, whatever it wrote is still in the
//! pipe and is copied before the guard exits ([`copy`]); output of leftover children
//! after that point is not waited for (the worker kills them).
//!
//! A supervised driver restarted in the same directory appends to the `stdout` that is
//! there (and rotates it when full), as it did before rotation existed.

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::Errno;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How large and how many files each stream keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    /// No file of a stream grows larger than this (bytes, at least 1).
    pub max_file_bytes: u64,
    /// Files kept per stream, the current one included (at least 1).
    pub max_files: u32,
}

impl LogLimits {
    /// Nomad's defaults: 10 files of 10 MiB per stream.
    pub const DEFAULT: LogLimits = LogLimits {
        max_file_bytes: 10 * 1024 * 1024,
        max_files: 10,
    };
}

/// The name of the `i`-th file of stream `name`: `name` itself for the current one
/// (`i` = 0), `name.i` for older ones (`name.1` the most recent of those).
pub(crate) fn rotated_name(name: &str, i: u32) -> String {
    if i == 0 {
        name.to_owned()
    } else {
        format!("{name}.{i}")
    }
}

/// One stream's files in one directory: appends go to `dir/name`, rotated by size.
/// Never fails a write: what cannot be written is dropped and counted.
pub(crate) struct RotatingFile {
    dir: PathBuf,
    name: String,
    limits: LogLimits,
    /// `None` after an error: reopened at the next write.
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    /// Bytes dropped because they could not be written.
    dropped: u64,
}

impl RotatingFile {
    /// Opens (creating it, or appending to what is there) `dir/name`, and removes files
    /// of this stream beyond `limits.max_files` (left by a run with a higher limit).
    pub fn open(dir: &Path, name: &str, limits: LogLimits) -> io::Result<RotatingFile> {
        let mut f = RotatingFile {
            dir: dir.to_owned(),
            name: name.to_owned(),
            limits: LogLimits {
                max_file_bytes: limits.max_file_bytes.max(1),
                max_files: limits.max_files.max(1),
            },
            file: None,
            size: 0,
            dropped: 0,
        };
        f.reopen()?;
        f.remove_beyond_limit();
        Ok(f)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn path(&self, i: u32) -> PathBuf {
        self.dir.join(rotated_name(&self.name, i))
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(0))?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn remove_beyond_limit(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{}.", self.name);
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            if n.parse::<u32>().is_ok_and(|n| n >= self.limits.max_files) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Appends `buf`, rotating as often as needed so that no file exceeds the limit.
    pub fn write(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.file.is_none() && self.reopen().is_err() {
                break;
            }
            if self.size >= self.limits.max_file_bytes && self.rotate().is_err() {
                break;
            }
            let room = self.limits.max_file_bytes - self.size;
            let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let Some(file) = self.file.as_mut() else {
                break;
            };
            if file.write_all(&buf[..n]).is_err() {
                // Disk full, or the file is gone: drop it, and try again next time.
                self.file = None;
                break;
            }
            self.size += n as u64;
            buf = &buf[n..];
        }
        self.dropped += buf.len() as u64;
    }

    /// `name.N-2` → `name.N-1`, …, `name` → `name.1`, and a new empty `name`. With one
    /// file per stream, the current one is emptied instead.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.limits.max_files;
        if keep == 1 {
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(self.path(0))?;
        } else {
            for i in (1..keep - 1).rev() {
                match std::fs::rename(self.path(i), self.path(i + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            match std::fs::rename(self.path(0), self.path(1)) {
                // Someone removed the current file: start a new one.
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.reopen()
    }
}

/// Shared between the copying thread and the guard's own messages.
pub(crate) type SharedFile = Arc<Mutex<RotatingFile>>;

/// Appends a line of the guard's own to `file` (its stderr).
pub(crate) fn say(file: &SharedFile, line: &str) {
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    f.write(format!("hearth-guard: {line}\n").as_bytes());
}

/// How long the guard keeps copying, after the command exited, output that keeps
/// coming (from children of the command still writing to the same pipe).
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// Copies each pipe into its file until `done` is closed (the command exited), then
/// copies what is left in the pipes (everything the command itself wrote) and returns.
/// Pipes that reach end of file are simply no longer watched.
pub(crate) fn copy(streams: Vec<(OwnedFd, SharedFile)>, done: OwnedFd) {
    let mut open: Vec<(File, SharedFile)> = streams
        .into_iter()
        .map(|(fd, f)| (File::from(fd), f))
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    // A poll error cannot happen with valid descriptors; then drain and stop.
    while let Ok((ready, done_ready)) = wait_readable(&open, &done) {
        open = open
            .into_iter()
            .zip(ready)
            .filter_map(|((mut pipe, file), ready)| {
                (!ready || copy_once(&mut pipe, &file, &mut buf)).then_some((pipe, file))
            })
            .collect();
        if done_ready {
            break;
        }
    }
    drain(open, &mut buf);
}

/// Waits until a pipe or `done` has something to say: which pipes do, and whether
/// `done` does.
fn wait_readable(open: &[(File, SharedFile)], done: &OwnedFd) -> io::Result<(Vec<bool>, bool)> {
    let mut fds: Vec<PollFd<'_>> = open
        .iter()
        .map(|(pipe, _)| PollFd::new(pipe, PollFlags::IN))
        .chain([PollFd::new(done, PollFlags::IN)])
        .collect();
    loop {
        match poll(&mut fds, None) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let mut ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
    let done_ready = ready.pop().unwrap_or(true);
    Ok((ready, done_ready))
}

/// One read from `pipe` into `file`. False at end of file (or a read error).
fn copy_once(pipe: &mut File, file: &SharedFile, buf: &mut [u8]) -> bool {
    match pipe.read(buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            f.write(&buf[..n]);
            true
        }
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
        ),
    }
}

/// Copies what the pipes hold now: until each is empty (or at end of file), for at most
/// [`DRAIN_LIMIT`].
fn drain(open: Vec<(File, SharedFile)>, buf: &mut [u8]) {
    let until = Instant::now() + DRAIN_LIMIT;
    for (mut pipe, file) in open {
        if let Ok(flags) = fcntl_getfl(&pipe) {
            let _ = fcntl_setfl(&pipe, flags | OFlags::NONBLOCK);
        }
        while Instant::now() < until {
            match pipe.read(buf) {
                Ok(0) => break,
                Ok(n) => file
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .write(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock: empty, only children still hold it
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_file_bytes: u64, max_files: u32) -> LogLimits {
        LogLimits {
            max_file_bytes,
            max_files,
        }
    }

    /// Every file in `dir` with its content, sorted by name.
    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rotates_by_size_keeping_the_newest_bytes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path(), "stdout", limits(4, 3)).unwrap();
        f.write(b"abc");
        assert_eq!(files(dir.path()), owned(&[("stdout", "abc")]));
        f.write(b"defghij"); // fills `stdout`, then one more file and a half
        assert_eq!(
            files(dir.path()),
            owned(&[("stdout", "ij"), ("stdout.1", "efgh"), ("stdout.2", "abcd")])
        );
        f.write(b"klmnopqrstu"); // the oldest are dropped: three files at most
        assert_eq!(
            files(dir.path()),
            owned(&[("stdout", "u"), ("stdout.1", "qrst"), ("stdout.2", "mnop")])
        );
        assert_eq!(f.dropped(), 0);
    }

    #[test]
    fn a_reopened_stream_appends_and_removes_files_beyond_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stderr"), "xy").unwrap();
        for old in ["stderr.1", "stderr.2", "stderr.7", "stderr.x"] {
            std::fs::write(dir.path().join(old), old).unwrap();
        }
        let mut f = RotatingFile::open(dir.path(), "stderr", limits(3, 2)).unwrap();
        f.write(b"zw");
        assert_eq!(
            files(dir.path()),
            owned(&[
                ("stderr", "w"),
                ("stderr.1", "xyz"),
                ("stderr.x", "stderr.x")
            ])
        );
    }

    #[test]
    fn one_file_per_stream_is_emptied_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path(), "stdout", limits(2, 1)).unwrap();
        f.write(b"abcde");
        assert_eq!(files(dir.path()), owned(&[("stdout", "e")]));
    }

    #[test]
    fn output_that_cannot_be_written_is_dropped_and_the_file_reopened_later() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("p");
        std::fs::create_dir(&sub).unwrap();
        let mut f = RotatingFile::open(&sub, "stdout", limits(100, 2)).unwrap();
        f.write(b"one");
        std::fs::remove_dir_all(&sub).unwrap();
        f.write(b"lost"); // written to the unlinked file: nothing to see
        f.write(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345");
        // Rotation fails (the directory is gone): dropped, counted, never an error.
        assert!(f.dropped() > 0);
        std::fs::create_dir(&sub).unwrap();
        f.write(b"back");
        assert_eq!(files(&sub), owned(&[("stdout", "back")]));
    }

    #[test]
    fn copies_pipes_until_done_then_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let out: SharedFile = Arc::new(Mutex::new(
            RotatingFile::open(dir.path(), "stdout", limits(1000, 2)).unwrap(),
        ));
        let (r, mut w) = std::io::pipe().unwrap();
        let (done_r, done_w) = std::io::pipe().unwrap();
        let out2 = Arc::clone(&out);
        let copier = std::thread::spawn(move || copy(vec![(r.into(), out2)], done_r.into()));
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        // The writer still holds the pipe (like a leftover child): `done` ends the copy
        // once what is in the pipe is copied.
        drop(done_w);
        copier.join().unwrap();
        assert_eq!(files(dir.path()), owned(&[("stdout", "hello world")]));
        drop(w);
    }
}
