//! FILESYSTEM recovery benchmark.
//!
//! (a) Restore time, `Journal::open` to `Restored`, for a cluster of 1,000 workers and
//!     10,000 apps built by 100,000 journaled commands: all of it in the journal, and a
//!     snapshot at lsn 90,000 plus 10,000 tail records.
//! (b) Acknowledged appends per second with fsync on: one `sync_blocking` per append from
//!     one thread, then group commit with 16 and 64 concurrent appenders (threads, and
//!     tokio tasks using the async `sync`).
//!
//! Run: `cargo bench -p hearth-recovery --bench restore`. Uses directories under the
//! system temp dir (`TMPDIR` to move them).

use hearth_core::*;
use hearth_recovery::{Journal, Options};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKERS: u32 = 1_000;
const APPS: u32 = 10_000;
const RECORDS: u64 = 100_000;
const TAIL: u64 = 10_000;
const T0: u64 = 1_795_457_728_000;

fn worker_id(n: u32) -> WorkerId {
    WorkerId(format!(
        "worker-20261123181528-10.0.{}.{}-7078",
        n / 250,
        n % 250
    ))
}

/// Applies each command to the model state as it is made, as a master does, and keeps
/// the state at the snapshot point.
struct Recorder {
    state: ClusterState,
    cmds: Vec<Command>,
    at_snapshot: Option<ClusterState>,
}

impl Recorder {
    fn push(&mut self, cmd: Command) {
        if self.cmds.len() as u64 >= RECORDS {
            return;
        }
        apply(&mut self.state, &cmd).unwrap_or_else(|e| panic!("{} refused: {e}", cmd.kind()));
        self.cmds.push(cmd);
        if self.cmds.len() as u64 == RECORDS - TAIL {
            self.at_snapshot = Some(self.state.clone());
        }
    }

    fn full(&self) -> bool {
        self.cmds.len() as u64 >= RECORDS
    }
}

/// 100,000 accepted commands: the master takes over, 1,000 workers and 10,000 client-mode
/// apps register, then executors are placed, reported RUNNING and (two in three) EXITED.
/// Returns the commands, the state after lsn 90,000 and the final state.
fn workload() -> (Vec<Command>, ClusterState, ClusterState) {
    let mut r = Recorder {
        state: ClusterState::default(),
        cmds: Vec::with_capacity(RECORDS as usize),
        at_snapshot: None,
    };
    r.push(Command::BeginRecovery { at: Millis(T0) });
    register(&mut r);
    let apps: Vec<AppId> = r.state.apps.keys().cloned().collect();
    let mut k = 0usize;
    while !r.full() {
        let app = apps[k % apps.len()].clone();
        let worker = worker_id((k % WORKERS as usize) as u32);
        let at = Millis(T0 + 100_000 + k as u64);
        let executor = r.state.apps[&app].next_executor_id;
        r.push(Command::Place {
            placements: vec![Placement::Executor {
                app: app.clone(),
                executor,
                worker: worker.clone(),
                cores: 1,
                memory_mb: 2048,
            }],
            at,
        });
        let report = |s: ExecutorState| Command::ExecutorStateChanged {
            worker: worker.clone(),
            app: app.clone(),
            executor,
            state: s,
            exit_code: s.is_terminal().then_some(0),
            message: String::new(),
            at,
        };
        r.push(report(ExecutorState::Running));
        if !k.is_multiple_of(3) {
            r.push(report(ExecutorState::Exited));
        }
        k += 1;
    }
    let at_snapshot = r.at_snapshot.expect("past the snapshot point");
    (r.cmds, at_snapshot, r.state)
}

fn register(r: &mut Recorder) {
    for n in 0..WORKERS {
        let reg = WorkerRegistration {
            identity: WorkerIdentity {
                id: worker_id(n),
                host: format!("10.0.{}.{}", n / 250, n % 250),
                port: 7078,
                http_port: 8081,
                cores: 64,
                memory_mb: 256 * 1024,
            },
            executors: vec![],
            drivers: vec![],
        };
        r.push(Command::RegisterWorker {
            reg,
            at: Millis(T0),
        });
    }
    for n in 0..APPS {
        let desc = AppDescription {
            name: format!("etl-{n}"),
            cores_per_executor: Some(1),
            memory_per_executor_mb: 2048,
            max_cores: Some(8),
            initial_executor_limit: None,
            command: ProcessSpec {
                argv: vec!["java".into(), "-cp".into(), "app.jar".into(), "Main".into()],
                env: [("SPARK_HOME".to_owned(), "/opt/spark".to_owned())].into(),
            },
        };
        r.push(Command::RegisterApp {
            desc,
            driver: None,
            driver_url: Some(format!("10.1.{}.{}:4040", n / 250 % 250, n % 250)),
            at: Millis(T0 + u64::from(n)),
        });
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure_restore(label: &str, dir: &Path, expect: &ClusterState) {
    let mut times = Vec::new();
    let mut replayed = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let (j, r) = Journal::open(dir, Options::default()).unwrap();
        times.push(start.elapsed());
        assert_eq!(r.lsn, RECORDS);
        assert!(&r.state == expect, "{label}: restored state differs");
        replayed = r.replayed;
        drop(j);
    }
    let t = median(times);
    println!(
        "restore {label:<34} {:>8.1} ms   {replayed:>6} records replayed   {:>9.0} records/s   dir {:.1} MiB",
        t.as_secs_f64() * 1e3,
        replayed as f64 / t.as_secs_f64(),
        dir_bytes(dir) as f64 / (1 << 20) as f64,
    );
}

fn restore_bench(base: &Path) {
    let start = Instant::now();
    let (cmds, at_snapshot, last) = workload();
    let (at_snapshot, last) = (&at_snapshot, &last);
    println!(
        "workload: {} records -> {} workers, {} active apps, {} live executors (built in {:.1} s)",
        cmds.len(),
        last.workers.len(),
        last.apps.len(),
        last.apps.values().map(|a| a.executors.len()).sum::<usize>(),
        start.elapsed().as_secs_f64()
    );

    let all = base.join("journal-only");
    let (j, _) = Journal::open(&all, Options::default()).unwrap();
    let start = Instant::now();
    for c in &cmds {
        j.append(c).unwrap();
    }
    j.close().unwrap();
    println!(
        "append {} records, one sync at the end: {:.2} s ({:.0} records/s)",
        cmds.len(),
        start.elapsed().as_secs_f64(),
        cmds.len() as f64 / start.elapsed().as_secs_f64()
    );
    measure_restore("100k records, journal only", &all, last);

    let snap = base.join("snapshot-tail");
    let (j, _) = Journal::open(&snap, Options::default()).unwrap();
    let split = (RECORDS - TAIL) as usize;
    for c in &cmds[..split] {
        j.append(c).unwrap();
    }
    let start = Instant::now();
    j.snapshot(at_snapshot, split as u64).unwrap();
    println!(
        "snapshot of the state at lsn {split}: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    for c in &cmds[split..] {
        j.append(c).unwrap();
    }
    j.close().unwrap();
    measure_restore("snapshot@90k + 10k tail records", &snap, last);
}

fn worker_cmd(n: u64) -> Command {
    Command::RegisterWorker {
        reg: WorkerRegistration {
            identity: WorkerIdentity {
                id: WorkerId(format!("worker-{n:06}")),
                host: "10.0.0.1".into(),
                port: 7078,
                http_port: 8081,
                cores: 16,
                memory_mb: 65_536,
            },
            executors: vec![],
            drivers: vec![],
        },
        at: Millis(T0 + n),
    }
}

fn report(label: &str, acked: u64, took: Duration, j: &Journal) {
    let fsyncs = j.stats().fsyncs.max(1);
    println!(
        "acked appends {label:<36} {:>8.0}/s   ({acked} in {:.2} s, {fsyncs} fsyncs, {:.1} appends per fsync)",
        acked as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        acked as f64 / fsyncs as f64
    );
}

fn single_thread(base: &Path, n: u64) {
    let dir = base.join("append-1");
    let (j, _) = Journal::open(&dir, Options::default()).unwrap();
    let start = Instant::now();
    for i in 0..n {
        let lsn = j.append(&worker_cmd(i)).unwrap();
        j.sync_blocking(lsn).unwrap();
    }
    report("1 thread, sync per append", n, start.elapsed(), &j);
}

fn threads(base: &Path, writers: u64, per_writer: u64) {
    let dir = base.join(format!("append-threads-{writers}"));
    let (j, _) = Journal::open(&dir, Options::default()).unwrap();
    let j = Arc::new(j);
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || {
                for i in 0..per_writer {
                    let lsn = j.append(&worker_cmd(t * 1_000_000 + i)).unwrap();
                    j.sync_blocking(lsn).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    report(
        &format!("{writers} threads, group commit"),
        writers * per_writer,
        start.elapsed(),
        &j,
    );
}

fn tasks(base: &Path, writers: u64, per_writer: u64) {
    let dir = base.join(format!("append-tasks-{writers}"));
    let (j, _) = Journal::open(&dir, Options::default()).unwrap();
    let j = Arc::new(j);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let start = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for t in 0..writers {
            let j = j.clone();
            set.spawn(async move {
                for i in 0..per_writer {
                    let lsn = j.append(&worker_cmd(t * 1_000_000 + i)).unwrap();
                    j.sync(lsn).await.unwrap();
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    report(
        &format!("{writers} tokio tasks (async sync), group commit"),
        writers * per_writer,
        start.elapsed(),
        &j,
    );
}

fn main() {
    let base = tempfile::Builder::new()
        .prefix("hearth-recovery-bench-")
        .tempdir()
        .unwrap();
    println!("directory: {}", base.path().display());
    restore_bench(base.path());
    single_thread(base.path(), 3_000);
    for writers in [16, 64] {
        threads(base.path(), writers, 32_000 / writers);
        tasks(base.path(), writers, 32_000 / writers);
    }
}
