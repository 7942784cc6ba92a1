//! Cleaning the work dir: directories of processes that ended are removed once older than
//! a time-to-live, and oldest first while the work dir is larger than its limit. Never
//! the directory of a live process (launching, running, or a supervised driver between
//! two runs).
//!
//! A pass ([`pass`]) runs when the worker starts (directories an earlier run left) and
//! then every `interval`:
//! 1. [`scan`] lists the process directories under the work dir with their size (the
//!    apparent size of their files) and last modification (the newest mtime in them,
//!    which for an ended process is about when it ended). The unit is an app directory
//!    (`<app>/`, all its executors) or a driver directory (`<driver>/`); while an app has
//!    live executors here, each of its ended executors' directories (`<app>/<n>/`) is a
//!    unit of its own. Only directories the worker made are considered: ones holding a
//!    `stdout` or `stderr` file, or whose subdirectories do. Anything else in the work
//!    dir is left alone (and not counted).
//! 2. [`select`] (pure) picks what to remove: every ended directory last modified more
//!    than `ttl` ago, then more ended ones, oldest first, while the total (live ones
//!    included) is above `max_bytes`. Live ones are counted, never picked: a work dir
//!    whose live processes alone exceed the limit keeps them all.
//! 3. Each pick is renamed to `removing~<name>` (a name no id can have) while holding the
//!    process table ([`Table::retire_if_idle`]), so a launch accepted meanwhile is either
//!    seen as live or creates its directory afresh, then removed. `removing~*` left by a
//!    worker that died mid-removal are removed by the next pass.

use crate::table::{uses, ProcId, Table};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// When ended processes' directories are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupRules {
    /// Ended directories last modified longer ago than this are removed.
    pub ttl: Duration,
    /// While the process directories add up to more than this (bytes), ended ones are
    /// removed, oldest first.
    pub max_bytes: u64,
}

/// Prefix of a directory being removed.
const TRASH: &str = "removing~";

/// One process directory (or app directory) of the work dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirInfo {
    /// Relative to the work dir: `app`, `driver` or `app/executor`.
    pub path: String,
    pub bytes: u64,
    /// The newest modification time of anything in it.
    pub last_modified: SystemTime,
    /// A live process uses it (never removed).
    pub live: bool,
}

/// Why a directory is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// Last modified more than the time-to-live ago.
    Expired,
    /// The work dir is above its size limit and this is the oldest ended directory.
    OverSize,
}

/// Which directories to remove, in order (oldest first): every ended one last modified
/// at least `rules.ttl` before `now`, then the oldest remaining ended ones until the
/// total of all (live included) is at most `rules.max_bytes`. Ties in age go by path.
pub(crate) fn select(dirs: &[DirInfo], now: SystemTime, rules: CleanupRules) -> Vec<(String, Why)> {
    let mut total: u64 = dirs.iter().map(|d| d.bytes).sum();
    let mut ended: Vec<&DirInfo> = dirs.iter().filter(|d| !d.live).collect();
    ended.sort_by(|a, b| (a.last_modified, &a.path).cmp(&(b.last_modified, &b.path)));
    let mut out = Vec::new();
    for d in ended {
        let age = now.duration_since(d.last_modified).unwrap_or_default();
        let why = if age >= rules.ttl {
            Why::Expired
        } else if total > rules.max_bytes {
            Why::OverSize
        } else {
            // Younger than the TTL and within the limit; so is every younger one.
            break;
        };
        total = total.saturating_sub(d.bytes);
        out.push((d.path.clone(), why));
    }
    out
}

/// The process directories under `work_dir`, with whether one of `live` uses them.
pub(crate) fn scan(work_dir: &Path, live: &[ProcId]) -> Vec<DirInfo> {
    let mut out = Vec::new();
    for (name, path) in subdirs(work_dir) {
        if name.starts_with(TRASH) {
            continue;
        }
        let children = subdirs(&path);
        let own = holds_output(&path);
        if !own && !children.iter().any(|(_, c)| holds_output(c)) {
            continue; // not made by the worker
        }
        let top_live = live.iter().any(|id| uses(id, &[&name]));
        let driver_live = live
            .iter()
            .any(|id| matches!(id, ProcId::Driver(d) if d.as_str() == name));
        if !top_live || own || driver_live {
            let (bytes, last_modified) = tree(&path);
            out.push(DirInfo {
                path: name,
                bytes,
                last_modified,
                live: top_live,
            });
            continue;
        }
        // An app with live executors here: each executor's directory on its own.
        for (sub, child) in children {
            let (bytes, last_modified) = tree(&child);
            let live = !holds_output(&child) || live.iter().any(|id| uses(id, &[&name, &sub]));
            out.push(DirInfo {
                path: format!("{name}/{sub}"),
                bytes,
                last_modified,
                live,
            });
        }
    }
    out
}

/// Directories (not symlinks) directly in `dir` whose names are UTF-8.
fn subdirs(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

/// A process ran here: the worker made its `stdout` or `stderr`.
fn holds_output(dir: &Path) -> bool {
    ["stdout", "stderr"]
        .iter()
        .any(|f| fs::symlink_metadata(dir.join(f)).is_ok_and(|m| m.is_file()))
}

/// Apparent size of the files under `dir`, and the newest mtime of anything there
/// (symlinks are not followed).
fn tree(dir: &Path) -> (u64, SystemTime) {
    let mut bytes = 0;
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        if let Ok(m) = fs::symlink_metadata(&d) {
            newest = newest.max(m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        }
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                // DirEntry::metadata does not follow symlinks.
                _ => {
                    if let Ok(m) = e.metadata() {
                        bytes += m.len();
                        newest = newest.max(m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
                    }
                }
            }
        }
    }
    (bytes, newest)
}

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Removed {
    pub dirs: usize,
    pub bytes: u64,
}

/// One pass over `work_dir` (see the module's doc). Stops early once `stop` is set.
pub(crate) fn pass(
    work_dir: &Path,
    table: &Table,
    rules: CleanupRules,
    now: SystemTime,
    stop: &AtomicBool,
) -> Removed {
    remove_trash(work_dir);
    let dirs = scan(work_dir, &table.live());
    let mut removed = Removed::default();
    for (path, why) in select(&dirs, now, rules) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let info = dirs
            .iter()
            .find(|d| d.path == path)
            .expect("selected from dirs");
        let parts: Vec<&str> = path.split('/').collect();
        let from = work_dir.join(&path);
        let to = trash_name(work_dir, &path);
        match table.retire_if_idle(&parts, || fs::rename(&from, &to)) {
            None => continue, // a launch for it came in since the scan
            Some(Err(e)) => {
                warn!(dir = %from.display(), error = %e, "cannot remove a finished directory");
                continue;
            }
            Some(Ok(())) => {}
        }
        if let Err(e) = remove_tree(&to) {
            warn!(dir = %to.display(), error = %e, "cannot remove a finished directory (moved aside)");
        }
        let age = now.duration_since(info.last_modified).unwrap_or_default();
        info!(
            dir = %path,
            bytes = info.bytes,
            age_s = age.as_secs(),
            reason = match why {
                Why::Expired => "older than --finished-dir-ttl",
                Why::OverSize => "work dir above --work-dir-max-size",
            },
            "removed a finished directory"
        );
        removed.dirs += 1;
        removed.bytes += info.bytes;
    }
    removed
}

/// A free `removing~...` name for `path` in `work_dir`.
fn trash_name(work_dir: &Path, path: &str) -> std::path::PathBuf {
    let base = format!("{TRASH}{}", path.replace('/', "~"));
    let mut candidate = work_dir.join(&base);
    let mut n = 1;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = work_dir.join(format!("{base}~{n}"));
        n += 1;
    }
    candidate
}

/// Removes what an earlier pass (or worker) moved aside and did not finish removing.
fn remove_trash(work_dir: &Path) {
    for (name, path) in subdirs(work_dir) {
        if name.starts_with(TRASH) {
            if let Err(e) = remove_tree(&path) {
                warn!(dir = %path.display(), error = %e, "cannot remove a finished directory (moved aside)");
            }
        }
    }
}

/// Removes `dir` and everything in it, making its directories writable first if they
/// are not (a process may leave read-only directories, as Go's module cache does).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if fs::remove_dir_all(dir).is_ok() {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o700));
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    fs::remove_dir_all(dir)
}

/// Runs a pass now and then every `interval`, until `stop` is set.
pub(crate) async fn run(
    work_dir: std::path::PathBuf,
    table: Arc<Table>,
    rules: CleanupRules,
    interval: Duration,
    stop: Arc<AtomicBool>,
) {
    let span = tracing::Span::current();
    loop {
        let (dir, t, s, sp) = (
            work_dir.clone(),
            Arc::clone(&table),
            Arc::clone(&stop),
            span.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            let _in = sp.enter();
            pass(&dir, &t, rules, SystemTime::now(), &s)
        })
        .await;
        if let Err(e) = done {
            warn!(error = %e, "a work dir cleanup pass failed");
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::{AppId, DriverId};

    const H: u64 = 3600;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    fn dir(path: &str, bytes: u64, modified_s: u64, live: bool) -> DirInfo {
        DirInfo {
            path: path.into(),
            bytes,
            last_modified: at(modified_s),
            live,
        }
    }

    fn rules(ttl_s: u64, max_bytes: u64) -> CleanupRules {
        CleanupRules {
            ttl: Duration::from_secs(ttl_s),
            max_bytes,
        }
    }

    fn picks(v: &[(&str, Why)]) -> Vec<(String, Why)> {
        v.iter().map(|(p, w)| (p.to_string(), *w)).collect()
    }

    #[test]
    fn expired_ended_directories_go_whatever_the_size_and_live_ones_never() {
        let dirs = [
            dir("app-2", 10, 5 * H, false),
            dir("driver-1", 10, 0, false),
            dir("app-1", 10, 0, true), // live, and the oldest
            dir("app-3", 10, 9 * H, false),
        ];
        // At 10 h with a 4 h TTL: driver-1 (10 h old), app-2 (5 h), not app-3 (1 h).
        assert_eq!(
            select(&dirs, at(10 * H), rules(4 * H, u64::MAX)),
            picks(&[("driver-1", Why::Expired), ("app-2", Why::Expired)])
        );
        // A TTL of zero takes every ended one, never the live one.
        assert_eq!(
            select(&dirs, at(10 * H), rules(0, u64::MAX)),
            picks(&[
                ("driver-1", Why::Expired),
                ("app-2", Why::Expired),
                ("app-3", Why::Expired)
            ])
        );
    }

    #[test]
    fn above_the_limit_the_oldest_ended_go_first_until_the_total_fits() {
        let dirs = [
            dir("app-1/0", 500, 1, false),
            dir("app-1/1", 300, 0, true),
            dir("app-2", 400, 3, false),
            dir("driver-1", 200, 2, false),
            dir("driver-2", 100, 4, false),
        ];
        // Total 1500: removing app-1/0 (500) leaves 1000, driver-1 (200) leaves 800.
        assert_eq!(
            select(&dirs, at(10), rules(7 * 24 * H, 800)),
            picks(&[("app-1/0", Why::OverSize), ("driver-1", Why::OverSize)])
        );
        assert_eq!(select(&dirs, at(10), rules(7 * 24 * H, 1500)), picks(&[]));
        // Live processes alone above the limit: every ended one goes, the live stays.
        assert_eq!(
            select(&dirs, at(10), rules(7 * 24 * H, 100)),
            picks(&[
                ("app-1/0", Why::OverSize),
                ("driver-1", Why::OverSize),
                ("app-2", Why::OverSize),
                ("driver-2", Why::OverSize)
            ])
        );
    }

    #[test]
    fn expired_ones_count_towards_the_limit_and_ties_go_by_path() {
        let dirs = [
            dir("b", 100, 0, false),
            dir("a", 100, 0, false),
            dir("c", 100, 8, false),
            dir("d", 100, 9, false),
        ];
        // ttl 5 s at 10 s: a and b expired (total 400 → 200); the limit of 150 then
        // takes c too.
        assert_eq!(
            select(&dirs, at(10), rules(5, 150)),
            picks(&[
                ("a", Why::Expired),
                ("b", Why::Expired),
                ("c", Why::OverSize)
            ])
        );
        // A modification time in the future is age zero, not an error.
        assert_eq!(select(&dirs, at(0), rules(5, u64::MAX)), picks(&[]));
    }

    fn write(path: &Path, bytes: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, vec![b'x'; bytes]).unwrap();
    }

    #[test]
    fn scans_process_directories_only_and_splits_apps_with_live_executors() {
        let w = tempfile::tempdir().unwrap();
        let w = w.path();
        write(&w.join("app-1/0/stdout"), 10);
        write(&w.join("app-1/0/lib/big.jar"), 100);
        write(&w.join("app-1/1/stderr"), 20);
        write(&w.join("app-1/cache/x"), 5); // not a process dir, in a live app
        write(&w.join("app-2/0/stdout"), 30);
        write(&w.join("driver-1/stdout"), 40);
        write(&w.join("driver-1/1/stdout"), 1); // a driver's own subdirectory
        write(&w.join("driver-2/stderr"), 50);
        write(&w.join("someone-elses/notes.txt"), 1000);
        write(&w.join("removing~app-0/0/stdout"), 1000);
        write(&w.join("worker-term"), 1);
        let live = [
            ProcId::Executor {
                app: AppId::from("app-1"),
                executor: 1,
            },
            ProcId::Driver(DriverId::from("driver-1")),
        ];
        let got: Vec<(String, u64, bool)> = scan(w, &live)
            .into_iter()
            .map(|d| (d.path, d.bytes, d.live))
            .collect();
        let want = [
            ("app-1/0", 110, false),
            ("app-1/1", 20, true),
            ("app-1/cache", 5, true),
            ("app-2", 30, false),
            ("driver-1", 41, true),
            ("driver-2", 50, false),
        ];
        let want: Vec<(String, u64, bool)> = want
            .iter()
            .map(|(p, b, l)| (p.to_string(), *b, *l))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_pass_removes_what_it_selects_and_leftovers_of_an_earlier_one() {
        use std::os::unix::fs::PermissionsExt;
        let w = tempfile::tempdir().unwrap();
        let w = w.path();
        write(&w.join("app-1/0/stdout"), 10);
        write(&w.join("app-1/0/ro/f"), 0);
        let ro = fs::Permissions::from_mode(0o500);
        fs::set_permissions(w.join("app-1/0/ro"), ro).unwrap();
        write(&w.join("app-2/0/stdout"), 10);
        write(&w.join("removing~app-0/0/stdout"), 10);
        let table = Table::default();
        let _live = table.insert(ProcId::Executor {
            app: AppId::from("app-2"),
            executor: 0,
        });
        let far = SystemTime::now() + Duration::from_secs(3600);
        let r = pass(w, &table, rules(60, u64::MAX), far, &AtomicBool::new(false));
        assert_eq!(r, Removed { dirs: 1, bytes: 10 });
        let left: Vec<String> = subdirs(w).into_iter().map(|(n, _)| n).collect();
        assert_eq!(left, ["app-2"]);
    }
}
