//! Disk hygiene of a real worker and real processes: stdout/stderr rotated by size while
//! a process writes hundreds of megabytes (never blocked, newest output kept), and the
//! work dir's cleanup (finished directories removed past their TTL, or oldest first above
//! the size limit; never a live process's, nor a supervised driver's between runs).

mod common;

use common::*;
use hearth_worker::{Housekeeping, LogLimits, WorkerConfig};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

const MIB: u64 = 1024 * 1024;

fn with(h: Housekeeping, master: &FakeMaster, dir: &Path) -> WorkerConfig {
    WorkerConfig {
        housekeeping: h,
        ..config(vec![master.addr.clone()], dir)
    }
}

/// The size of `dir/name`, if it exists.
fn size(dir: &Path, name: &str) -> Option<u64> {
    std::fs::metadata(dir.join(name)).ok().map(|m| m.len())
}

/// The output of `seq 1 n`, its length and its last `k` bytes.
fn seq_len(n: u64) -> u64 {
    (1..=n).map(|i| i.to_string().len() as u64 + 1).sum()
}

fn seq_tail(n: u64, k: usize) -> Vec<u8> {
    let mut lines = Vec::new();
    let mut len = 0;
    for i in (1..=n).rev() {
        let l = format!("{i}\n");
        len += l.len();
        lines.push(l);
        if len >= k {
            break;
        }
    }
    lines.reverse();
    let all = lines.concat().into_bytes();
    all[all.len() - k..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_writing_200_mb_stays_within_its_log_bound_and_is_never_blocked() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let limits = LogLimits {
        max_file_bytes: MIB,
        max_files: 3,
    };
    let h = Housekeeping {
        logs: limits,
        ..Housekeeping::default()
    };
    let w = TestWorker::start_with(with(h, &m, tmp.path())).await;
    let n = 25_000_000; // `seq 1 n` writes about 214 MB
    let total = seq_len(n);
    assert!(total > 200_000_000);
    let mut c = w.client().await;
    let started = Instant::now();
    let script = format!("seq 1 {n}; echo done >&2");
    c.launch_executor(w.launch(1, "app-logs", 0, &sh(&script)))
        .await
        .unwrap();
    let dir = w.exec_dir("app-logs", 0);
    // While it writes: no file above 1 MiB, no stream with more than 3 files. Each name
    // is looked at on its own (a listing could see a file being renamed twice).
    let names = [
        "stdout", "stdout.1", "stdout.2", "stderr", "stderr.1", "stderr.2",
    ];
    let (mut samples, mut largest_dir) = (0u64, 0u64);
    let end = loop {
        let sizes: Vec<u64> = names.iter().filter_map(|n| size(&dir, n)).collect();
        assert!(
            sizes.iter().all(|s| *s <= MIB),
            "a file above 1 MiB: {sizes:?}"
        );
        for extra in ["stdout.3", "stderr.3"] {
            assert_eq!(size(&dir, extra), None, "{extra} exists");
        }
        largest_dir = largest_dir.max(sizes.iter().sum());
        samples += 1;
        let reports = m.executor_reports("app-logs", 0);
        if let Some(r) = reports
            .last()
            .filter(|r| r.state != "RUNNING" && r.state != "LAUNCHING")
        {
            break r.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the writer did not finish within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = started.elapsed();
    assert_eq!(
        (end.state.as_str(), end.exit_code),
        ("EXITED", Some(0)),
        "{end:?}"
    );
    // After: exactly the newest bytes, in order, in stdout.2 + stdout.1 + stdout.
    let mut entries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["stderr", "stdout", "stdout.1", "stdout.2"]);
    let kept: Vec<u8> = ["stdout.2", "stdout.1", "stdout"]
        .iter()
        .flat_map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect();
    let current = (total - 1) % MIB + 1;
    assert_eq!(kept.len() as u64, 2 * MIB + current);
    assert!(
        kept == seq_tail(n, kept.len()),
        "the kept output is not the newest, in order"
    );
    assert!(kept.ends_with(format!("\n{n}\n").as_bytes()));
    assert_eq!(read(dir.join("stderr")), "done\n");
    let after: u64 = names.iter().filter_map(|n| size(&dir, n)).sum();
    eprintln!(
        "wrote {total} bytes in {took:?}; directory at most {largest_dir} bytes over {samples} \
         samples, {after} after"
    );
    w.stop().await;
}

/// Writes `bytes` bytes to `path`, making its directories.
fn write(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![b'x'; bytes]).unwrap();
}

/// Sets the modification time of everything under `dir` (itself included) `ago`.
fn age(dir: &Path, ago: Duration) {
    let t = SystemTime::now() - ago;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                std::fs::File::options()
                    .write(true)
                    .open(e.path())
                    .unwrap()
                    .set_modified(t)
                    .unwrap();
            }
        }
        std::fs::File::open(&d).unwrap().set_modified(t).unwrap();
    }
}

fn exists(p: &Path) -> bool {
    p.exists()
}

async fn gone(what: &str, p: &Path) {
    eventually(&format!("{what} removed"), || (!exists(p)).then_some(())).await;
}

#[tokio::test]
async fn above_the_size_limit_the_oldest_finished_directories_go_first_never_a_running_one() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().canonicalize().unwrap();
    // Left by an earlier run of the worker: three finished directories of 400 kB, 3, 2
    // and 1 hours old, and a directory the worker did not make.
    const H: Duration = Duration::from_secs(3600);
    for (dir, file, hours) in [
        ("app-old", "0/stdout", 3),
        ("driver-mid", "stdout", 2),
        ("app-new", "0/stderr", 1),
    ] {
        write(&work.join(dir).join(file), 400_000);
        age(&work.join(dir), H * hours);
    }
    write(&work.join("not-a-process/data"), 5_000_000);
    age(&work.join("not-a-process"), H * 24 * 30);
    let h = Housekeeping {
        work_dir_max_bytes: 1_000_000,
        cleanup_interval: Duration::from_millis(50),
        ..Housekeeping::default()
    };
    let w = TestWorker::start_with(with(h, &m, &work)).await;

    // 1.2 MB > 1 MB: the oldest goes at start, which is enough.
    gone("app-old", &work.join("app-old")).await;
    assert!(exists(&work.join("driver-mid")) && exists(&work.join("app-new")));

    // A running executor with 2 MB in its directory: alone above the limit.
    let mut c = w.client().await;
    let script = "head -c 2000000 /dev/zero > big && touch ready && exec sleep 1000";
    c.launch_executor(w.launch(1, "app-live", 0, &sh(script)))
        .await
        .unwrap();
    let live = w.exec_dir("app-live", 0);
    gone("driver-mid", &work.join("driver-mid")).await;
    gone("app-new", &work.join("app-new")).await;
    assert!(exists(&live.join("ready")));
    // An absence window of ten passes: the running one stays, over the limit as it is.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(size(&live, "big"), Some(2_000_000));
    assert_eq!(
        states(&m.executor_reports("app-live", 0), |r| &r.state),
        ["RUNNING"]
    );
    assert_eq!(
        processes_in(&live).len(),
        2,
        "the executor (and its guard) still run"
    );

    // Once it has ended, its directory goes too.
    c.kill_executor(w.kill(1, "app-live", 0)).await.unwrap();
    gone("app-live", &work.join("app-live")).await;
    assert_eq!(
        states(&m.executor_reports("app-live", 0), |r| &r.state),
        ["RUNNING", "KILLED"]
    );
    assert!(exists(&work.join("not-a-process/data")), "not the worker's");
    w.stop().await;
}

#[tokio::test]
async fn past_the_ttl_finished_directories_go_never_a_running_or_supervised_one() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().canonicalize().unwrap();
    write(&work.join("app-ancient/0/stdout"), 10);
    age(
        &work.join("app-ancient"),
        Duration::from_secs(2 * 24 * 3600),
    );
    let ttl = Duration::from_millis(300);
    let h = Housekeeping {
        finished_dir_ttl: ttl,
        cleanup_interval: Duration::from_millis(50),
        ..Housekeeping::default()
    };
    let w = TestWorker::start_with(with(h, &m, &work)).await;
    gone(
        "app-ancient (left by an earlier run)",
        &work.join("app-ancient"),
    )
    .await;

    let mut c = w.client().await;
    c.launch_executor(w.launch(1, "app-run", 0, &sh("exec sleep 1000")))
        .await
        .unwrap();
    c.launch_executor(w.launch(1, "app-done", 0, &sh("echo bye")))
        .await
        .unwrap();
    // Fails every time: restarted after 1 s, then 2 s; idle (and past the TTL) between.
    c.launch_driver(w.launch_driver(1, "driver-sup", true, "echo run >> count; exit 3"))
        .await
        .unwrap();
    gone("app-done", &work.join("app-done")).await;
    assert_eq!(
        states(&m.executor_reports("app-done", 0), |r| &r.state),
        ["RUNNING", "EXITED"]
    );
    // The second run appends to the first run's file: the directory outlived the
    // first second-long backoff (about 20 passes, more than three TTLs).
    let count = work.join("driver-sup/count");
    eventually("the supervised driver's second run", || {
        (read(&count) == "run\nrun\n").then_some(())
    })
    .await;
    let run_dir = w.exec_dir("app-run", 0);
    let idle = SystemTime::now()
        .duration_since(std::fs::metadata(&run_dir).unwrap().modified().unwrap())
        .unwrap();
    assert!(
        idle > ttl * 3,
        "the running one's directory is past its TTL"
    );
    assert_eq!(
        processes_in(&run_dir).len(),
        2,
        "the executor (and its guard) still run"
    );

    c.kill_driver(w.kill_driver(1, "driver-sup")).await.unwrap();
    c.kill_executor(w.kill(1, "app-run", 0)).await.unwrap();
    gone("driver-sup", &work.join("driver-sup")).await;
    gone("app-run", &work.join("app-run")).await;
    w.stop().await;
}
