//! Memory limits with cgroup v2, where the machine allows it.
//!
//! At startup [`detect_memory_enforcement`] looks for a cgroup v2 hierarchy with the
//! `memory` controller, finds the worker's own cgroup (from `/proc/self/cgroup`), enables
//! `memory` for its children (`cgroup.subtree_control`; if the worker's cgroup holds only
//! the worker, the worker first moves itself into a `hearth-worker` leaf, as the
//! "no internal processes" rule requires) and checks it can create a child and write its
//! `memory.max`. If all that works, every process gets `PARENT/hearth-<id>/` with
//! `memory.max` = its memory and the guard joins it (`--cgroup`). If not, the worker logs
//! once why and runs without limits; a launch never fails because of cgroups.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether processes are held to their memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryEnforcement {
    /// Each process gets a child cgroup of `parent` with `memory.max` set.
    Enforced { parent: PathBuf },
    /// Memory is only advertised (`HEARTH_MEMORY_MB`), not enforced.
    NotEnforced { reason: String },
}

impl fmt::Display for MemoryEnforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryEnforcement::Enforced { parent } => write!(
                f,
                "memory limits enforced with cgroup v2 under {}",
                parent.display()
            ),
            MemoryEnforcement::NotEnforced { reason } => {
                write!(f, "memory limits not enforced: {reason}")
            }
        }
    }
}

/// Name of the leaf the worker moves itself into when its cgroup must become a parent.
const WORKER_LEAF: &str = "hearth-worker";

/// Finds out whether this machine lets the worker enforce memory limits, preparing the
/// worker's cgroup for it when it does (see the module docs).
pub fn detect_memory_enforcement() -> MemoryEnforcement {
    let mount = cgroup2_mount().unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
    let own = match fs::read_to_string("/proc/self/cgroup") {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_owned),
        Err(_) => None,
    };
    match own {
        Some(own) => detect_at(&mount, &own),
        None => MemoryEnforcement::NotEnforced {
            reason: "/proc/self/cgroup has no cgroup v2 entry (0::)".to_owned(),
        },
    }
}

/// The first cgroup2 mount point in `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

fn has_memory(controllers_file: &Path) -> Result<bool, String> {
    let text = fs::read_to_string(controllers_file)
        .map_err(|e| format!("cannot read {}: {e}", controllers_file.display()))?;
    Ok(text.split_whitespace().any(|c| c == "memory"))
}

/// [`detect_memory_enforcement`] for a hierarchy mounted at `mount` and a worker in
/// cgroup `own` (relative to it, as `/proc/self/cgroup` writes it).
pub(crate) fn detect_at(mount: &Path, own: &str) -> MemoryEnforcement {
    match prepare(mount, own) {
        Ok(parent) => MemoryEnforcement::Enforced { parent },
        Err(reason) => MemoryEnforcement::NotEnforced { reason },
    }
}

fn prepare(mount: &Path, own: &str) -> Result<PathBuf, String> {
    let root_controllers = mount.join("cgroup.controllers");
    if !has_memory(&root_controllers).map_err(|e| format!("no cgroup v2 hierarchy ({e})"))? {
        return Err(format!(
            "the cgroup v2 hierarchy at {} has no memory controller",
            mount.display()
        ));
    }
    let mut base = mount.join(own.trim_start_matches('/'));
    if base.file_name().is_some_and(|n| n == WORKER_LEAF) {
        // An earlier run in this process moved us here; its parent is ours to use.
        base.pop();
    }
    if !has_memory(&base.join("cgroup.controllers"))? {
        return Err(format!(
            "the memory controller is not delegated to the worker's cgroup {}",
            base.display()
        ));
    }
    enable_memory(&base)?;
    let probe = base.join(format!("hearth-probe-{}", std::process::id()));
    let result = fs::create_dir_all(&probe)
        .and_then(|()| fs::write(probe.join("memory.max"), "max"))
        .map_err(|e| format!("cannot create a child cgroup in {}: {e}", base.display()));
    let _ = fs::remove_dir(&probe);
    result.map(|()| base)
}

fn enable_memory(base: &Path) -> Result<(), String> {
    let control = base.join("cgroup.subtree_control");
    let enable = || fs::write(&control, "+memory");
    match enable() {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {}
        Err(e) => {
            return Err(format!(
                "cannot enable memory in {}: {e}",
                control.display()
            ))
        }
    }
    // EBUSY: the cgroup has processes. If they are only us, move into a leaf and retry.
    let me = std::process::id().to_string();
    let procs = fs::read_to_string(base.join("cgroup.procs")).unwrap_or_default();
    let others = procs.lines().filter(|p| p.trim() != me).count();
    if others > 0 {
        return Err(format!(
            "the worker's cgroup {} holds {others} other process(es); give the worker a \
             cgroup of its own (e.g. systemd Delegate=yes)",
            base.display()
        ));
    }
    let leaf = base.join(WORKER_LEAF);
    fs::create_dir_all(&leaf)
        .and_then(|()| fs::write(leaf.join("cgroup.procs"), &me))
        .and_then(|()| enable())
        .map_err(|e| format!("cannot enable memory in {}: {e}", control.display()))
}

/// One process's cgroup.
pub(crate) struct ProcCgroup {
    path: PathBuf,
}

impl ProcCgroup {
    /// Creates (or reuses, for a restarted driver) `parent/hearth-<name>` holding at most
    /// `memory_mb` MiB (0: no limit).
    pub fn create(parent: &Path, name: &str, memory_mb: u64) -> io::Result<ProcCgroup> {
        let path = parent.join(format!("hearth-{name}"));
        fs::create_dir_all(&path)?;
        let max = match memory_mb {
            0 => "max".to_owned(),
            mb => (mb * 1024 * 1024).to_string(),
        };
        fs::write(path.join("memory.max"), max)?;
        Ok(ProcCgroup { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Kills everything in the cgroup, including processes that left the guard's group
    /// (Linux 5.14+; ignored where `cgroup.kill` does not exist).
    pub fn kill_all(&self) {
        let _ = fs::write(self.path.join("cgroup.kill"), "1");
    }

    /// Removes the cgroup once it is empty (its processes may take a moment to go).
    pub async fn remove(self) {
        for _ in 0..50 {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        tracing::warn!(cgroup = %self.path.display(), "could not remove the process's cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hierarchy_or_no_memory_is_not_enforced_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let MemoryEnforcement::NotEnforced { reason } = detect_at(dir.path(), "/") else {
            panic!("enforced without a hierarchy");
        };
        assert!(reason.starts_with("no cgroup v2 hierarchy"), "{reason}");
        fs::write(dir.path().join("cgroup.controllers"), "cpu io pids\n").unwrap();
        let MemoryEnforcement::NotEnforced { reason } = detect_at(dir.path(), "/") else {
            panic!("enforced without memory");
        };
        assert!(reason.contains("has no memory controller"), "{reason}");
    }

    #[test]
    fn a_delegated_memory_controller_is_used_under_the_workers_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("svc");
        fs::create_dir_all(&own).unwrap();
        fs::write(dir.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        fs::write(own.join("cgroup.controllers"), "memory\n").unwrap();
        assert_eq!(
            detect_at(dir.path(), "/svc"),
            MemoryEnforcement::Enforced {
                parent: own.clone()
            }
        );
        assert_eq!(
            fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        let cg = ProcCgroup::create(&own, "app-1-0", 512).unwrap();
        assert_eq!(
            fs::read_to_string(cg.path().join("memory.max")).unwrap(),
            (512u64 << 20).to_string()
        );
    }
}
