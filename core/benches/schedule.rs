//! Scheduler benchmark: one `schedule` pass placing 10,000 pending executors over 1,000
//! workers, in several shapes, plus applying the resulting `Place` command.
//!
//! Run: `cargo bench -p hearth-core --bench schedule`. Prints, per shape, the p50/p99/max
//! time of one pass over `ROUNDS` passes and placements per second at the p50.

use hearth_core::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

const WORKERS: u32 = 1_000;
const ROUNDS: usize = 60;

fn cluster(apps: u32, executors_per_app: u32, cores_per_worker: u32) -> ClusterState {
    let t = Millis(1_795_457_728_000);
    let mut s = ClusterState::default();
    apply(&mut s, &Command::BeginRecovery { at: t }).unwrap();
    for n in 0..WORKERS {
        let reg = WorkerRegistration {
            identity: WorkerIdentity {
                id: WorkerId(format!("worker-{n:05}")),
                host: format!("10.0.{}.{}", n / 250, n % 250),
                port: 7078,
                http_port: 8081,
                cores: cores_per_worker,
                memory_mb: 64 * 1024,
            },
            executors: vec![],
            drivers: vec![],
        };
        apply(&mut s, &Command::RegisterWorker { reg, at: t }).unwrap();
    }
    for _ in 0..apps {
        let desc = AppDescription {
            name: "bench".into(),
            cores_per_executor: Some(1),
            memory_per_executor_mb: 512,
            max_cores: Some(executors_per_app),
            initial_executor_limit: None,
            command: ProcessSpec {
                argv: vec!["true".into()],
                env: Default::default(),
            },
        };
        let cmd = Command::RegisterApp {
            desc,
            driver: None,
            driver_url: Some("10.1.0.1:4040".into()),
            at: t,
        };
        apply(&mut s, &cmd).unwrap();
    }
    s
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn run(label: &str, state: &ClusterState, policy: &Policy) {
    let mut times = Vec::with_capacity(ROUNDS);
    let mut placed = 0;
    for round in 0..ROUNDS + 5 {
        let start = Instant::now();
        let out = black_box(schedule(black_box(state), policy, round as u64));
        let took = start.elapsed();
        placed = out.len();
        if round >= 5 {
            times.push(took);
        }
    }
    times.sort();
    let p50 = percentile(&times, 0.5);
    let mut applied = state.clone();
    let placements = schedule(state, policy, 1);
    let start = Instant::now();
    apply(
        &mut applied,
        &Command::Place {
            placements,
            at: Millis(0),
        },
    )
    .unwrap();
    let apply_took = start.elapsed();
    println!(
        "{label:<44} placed {placed:>6}  pass p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  {:>12.0} placements/s  (apply Place: {:.2} ms)",
        p50.as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
        placed as f64 / p50.as_secs_f64(),
        apply_took.as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep it quick there.
    if std::env::args().any(|a| a == "--test") {
        let s = cluster(10, 10, 4);
        assert_eq!(schedule(&s, &Policy::default(), 0).len(), 100);
        return;
    }
    println!("hearth-core scheduler: 10,000 pending executors (1 core, 512 MiB each) over {WORKERS} workers");
    let spread = Policy::default();
    let consolidate = Policy {
        spread_out_apps: false,
        ..Policy::default()
    };
    let s = cluster(100, 100, 16);
    run("100 apps x 100 executors, spread out", &s, &spread);
    run("100 apps x 100 executors, consolidate", &s, &consolidate);
    let s = cluster(10, 1_000, 16);
    run("10 apps x 1,000 executors, spread out", &s, &spread);
    let s = cluster(1, 10_000, 16);
    run("1 app x 10,000 executors, spread out", &s, &spread);
    let s = cluster(10_000, 1, 16);
    run("10,000 apps x 1 executor, spread out", &s, &spread);
    let s = cluster(100, 100, 10);
    run("100 x 100 on exactly 10,000 cores, spread out", &s, &spread);
}
