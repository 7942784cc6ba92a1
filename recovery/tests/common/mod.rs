//! Shared by hearth-recovery's tests and benchmark: a workload of real hearth-core
//! commands (each one accepted by `apply` on the model state, as a master journals only
//! accepted commands), and byte-level helpers that read the format as FORMAT.md says.
#![allow(dead_code)]

use hearth_core::*;
use std::path::{Path, PathBuf};

pub const T0: u64 = 1_795_457_728_000;

/// A deterministic stream of accepted commands; `state` is the model they build.
pub struct Workload {
    pub state: ClusterState,
    rng: u64,
    clock: u64,
    next_worker: u32,
}

impl Workload {
    pub fn new(seed: u64) -> Self {
        Workload {
            state: ClusterState::default(),
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            clock: T0,
            next_worker: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn at(&mut self) -> Millis {
        self.clock += 1 + self.next_u64() % 1500;
        Millis(self.clock)
    }

    /// The next command, already applied to `state`.
    pub fn next(&mut self) -> Command {
        for _ in 0..20 {
            let cmd = self.propose();
            if apply(&mut self.state, &cmd).is_ok() {
                return cmd;
            }
        }
        let cmd = self.register_worker();
        apply(&mut self.state, &cmd).expect("a new worker is always accepted");
        cmd
    }

    /// `n` commands.
    pub fn take(&mut self, n: usize) -> Vec<Command> {
        (0..n).map(|_| self.next()).collect()
    }

    fn propose(&mut self) -> Command {
        if self.state.role != MasterRole::Alive {
            return match self.state.role {
                MasterRole::Recovering => Command::CompleteRecovery { at: self.at() },
                _ => Command::BeginRecovery { at: self.at() },
            };
        }
        match self.below(20) {
            0..=2 => self.register_worker(),
            3..=5 => self.register_app(),
            6..=9 => self.place(),
            10..=12 => self.executor_changed(),
            13 => self.driver_changed(),
            14 => self.finish_app(),
            15 => self.lose_worker(),
            16 => self.set_target(),
            17 => Command::DecommissionWorker {
                worker: self.pick_worker(),
            },
            18 => Command::SetConfig(ClusterConfig {
                max_executor_retries: Some(3),
                retained_apps: 5 + self.below(20),
                retained_drivers: 5 + self.below(20),
            }),
            _ => Command::BeginRecovery { at: self.at() },
        }
    }

    fn register_worker(&mut self) -> Command {
        let n = self.next_worker;
        self.next_worker += 1;
        Command::RegisterWorker {
            reg: WorkerRegistration {
                identity: WorkerIdentity {
                    id: WorkerId(format!("worker-{n:05}")),
                    host: format!("10.0.{}.{}", n / 250, n % 250),
                    port: 7078,
                    http_port: 8081,
                    cores: 4 + (self.below(4) as u32) * 4,
                    memory_mb: 16_384,
                },
                executors: vec![],
                drivers: vec![],
            },
            at: self.at(),
        }
    }

    fn register_app(&mut self) -> Command {
        let cluster_mode = self.below(3) == 0;
        let spec = ProcessSpec {
            argv: vec!["sh".into(), "-c".into(), "sleep 1000".into()],
            env: Default::default(),
        };
        let desc = AppDescription {
            name: format!("app-{}", self.below(1000)),
            cores_per_executor: Some(1 + self.below(2) as u32),
            memory_per_executor_mb: 512,
            max_cores: Some(2 + self.below(6) as u32),
            initial_executor_limit: None,
            command: spec.clone(),
        };
        let driver = cluster_mode.then(|| DriverDescription {
            cores: 1,
            memory_mb: 512,
            supervise: self.below(2) == 0,
            command: spec,
        });
        Command::RegisterApp {
            driver_url: (!cluster_mode).then(|| "10.9.0.1:4040".to_owned()),
            desc,
            driver,
            at: self.at(),
        }
    }

    fn place(&mut self) -> Command {
        let seed = self.next_u64();
        let mut placements = schedule(&self.state, &Policy::default(), seed);
        placements.truncate(1 + self.below(8));
        if placements.is_empty() {
            return self.register_app();
        }
        Command::Place {
            placements,
            at: self.at(),
        }
    }

    fn executor_changed(&mut self) -> Command {
        let all: Vec<(AppId, ExecutorInfo)> = self
            .state
            .apps
            .values()
            .flat_map(|a| a.executors.values().map(|e| (a.id.clone(), e.clone())))
            .collect();
        if all.is_empty() {
            return self.place();
        }
        let (app, e) = all[self.below(all.len())].clone();
        let state = match (e.state, self.below(4)) {
            (ExecutorState::Launching, 0) => ExecutorState::Failed,
            (ExecutorState::Launching, _) => ExecutorState::Running,
            (_, 0) => ExecutorState::Failed,
            _ => ExecutorState::Exited,
        };
        Command::ExecutorStateChanged {
            worker: e.worker,
            app,
            executor: e.id,
            exit_code: state.is_terminal().then_some(1),
            state,
            message: "reported".into(),
            at: self.at(),
        }
    }

    fn driver_changed(&mut self) -> Command {
        let placed: Vec<DriverInfo> = self
            .state
            .drivers
            .values()
            .filter(|d| d.worker.is_some())
            .cloned()
            .collect();
        if placed.is_empty() {
            return self.place();
        }
        let d = placed[self.below(placed.len())].clone();
        let finished = self.below(3) == 0;
        Command::DriverStateChanged {
            worker: d.worker.expect("filtered"),
            driver: d.id,
            state: if finished {
                DriverState::Finished
            } else {
                DriverState::Running
            },
            driver_url: (!finished).then(|| "10.9.0.2:4041".to_owned()),
            exit_code: finished.then_some(0),
            message: String::new(),
            at: self.at(),
        }
    }

    fn finish_app(&mut self) -> Command {
        let apps: Vec<AppId> = self.state.apps.keys().cloned().collect();
        if apps.is_empty() {
            return self.register_app();
        }
        Command::FinishApp {
            app: apps[self.below(apps.len())].clone(),
            state: AppState::Finished,
            reason: "done".into(),
            at: self.at(),
        }
    }

    fn pick_worker(&mut self) -> WorkerId {
        let ids: Vec<WorkerId> = self.state.workers.keys().cloned().collect();
        if ids.is_empty() {
            return WorkerId("worker-none".into());
        }
        ids[self.below(ids.len())].clone()
    }

    fn lose_worker(&mut self) -> Command {
        Command::WorkerLost {
            worker: self.pick_worker(),
            reason: "heartbeat timeout".into(),
            at: self.at(),
        }
    }

    fn set_target(&mut self) -> Command {
        let apps: Vec<AppId> = self.state.apps.keys().cloned().collect();
        if apps.is_empty() {
            return self.register_app();
        }
        Command::SetExecutorTarget {
            app: apps[self.below(apps.len())].clone(),
            target: self.below(4) as u32,
        }
    }
}

/// The state after applying `cmds` to an empty state (refusals ignored, like replay).
pub fn model(cmds: &[Command]) -> ClusterState {
    let mut s = ClusterState::default();
    for c in cmds {
        let _ = apply(&mut s, c);
    }
    s
}

/// (offset, total length) of each record in a segment, read by the documented frame:
/// 16-byte header with the payload length at bytes 4..8, u32 little endian.
pub fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        if off + 16 + len > bytes.len() {
            break;
        }
        out.push((off, 16 + len));
        off += 16 + len;
    }
    out
}

/// Rewrites the header checksum (bytes 12..16 = CRC32C of bytes 0..12) of the record at
/// `off`, so a test can change a header field and keep the header valid.
pub fn reseal_header(bytes: &mut [u8], off: usize) {
    let crc = crc32c::crc32c(&bytes[off..off + 12]);
    bytes[off + 12..off + 16].copy_from_slice(&crc.to_le_bytes());
}

/// Files in `dir` whose names start with `prefix`, sorted.
pub fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    out.sort();
    out
}

/// The newest journal segment.
pub fn newest_segment(dir: &Path) -> PathBuf {
    files(dir, "journal-")
        .into_iter()
        .rfind(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("a segment")
}

/// Copies a directory's regular files (not LOCK) into a new temp dir.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
        }
    }
    to
}
