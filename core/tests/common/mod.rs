//! Builders shared by hearth-core's tests: a cluster is made by applying commands, the
//! same way a master makes it, never by writing state fields by hand.
#![allow(dead_code)]

use hearth_core::*;

pub const T0: Millis = Millis(1_795_457_728_000); // 2026-11-23T18:15:28Z

pub fn at(offset_ms: u64) -> Millis {
    T0.plus(offset_ms)
}

pub fn ok(state: &mut ClusterState, cmd: Command) -> Applied {
    let applied = apply(state, &cmd).unwrap_or_else(|e| panic!("{} refused: {e}", cmd.kind()));
    state.check_invariants().expect("invariants after apply");
    applied
}

/// A fresh state whose master has taken over with nothing to recover: ALIVE.
pub fn alive() -> ClusterState {
    let mut s = ClusterState::default();
    ok(&mut s, Command::BeginRecovery { at: T0 });
    assert_eq!(s.role, MasterRole::Alive);
    s
}

pub fn wid(n: u32) -> WorkerId {
    WorkerId(format!("worker-{n:02}"))
}

pub fn registration(n: u32, cores: u32, memory_mb: u64) -> WorkerRegistration {
    WorkerRegistration {
        identity: WorkerIdentity {
            id: wid(n),
            host: "127.0.0.1".into(),
            port: 7000 + n as u16,
            http_port: 8000 + n as u16,
            cores,
            memory_mb,
        },
        executors: vec![],
        drivers: vec![],
    }
}

pub fn add_worker(s: &mut ClusterState, n: u32, cores: u32, memory_mb: u64) -> WorkerId {
    ok(
        s,
        Command::RegisterWorker {
            reg: registration(n, cores, memory_mb),
            at: T0,
        },
    );
    wid(n)
}

pub fn cmd(argv: &[&str]) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: Default::default(),
    }
}

pub fn app_desc(
    cores_per_executor: Option<u32>,
    memory_mb: u64,
    max_cores: Option<u32>,
) -> AppDescription {
    AppDescription {
        name: "pi".into(),
        cores_per_executor,
        memory_per_executor_mb: memory_mb,
        max_cores,
        initial_executor_limit: None,
        command: cmd(&["sh", "-c", "sleep 1000"]),
    }
}

/// Registers a client-mode app (its driver already listens) and returns its id.
pub fn client_app(s: &mut ClusterState, desc: AppDescription, at_ms: u64) -> AppId {
    match ok(
        s,
        Command::RegisterApp {
            desc,
            driver: None,
            // One address per app: the same address and description would be a retry.
            driver_url: Some(format!("127.0.0.1:{}", 4040 + s.next_app_number)),
            at: at(at_ms),
        },
    )
    .outcome
    {
        Outcome::AppRegistered { app, driver: None } => app,
        other => panic!("unexpected {other:?}"),
    }
}

pub fn driver_desc(cores: u32, memory_mb: u64, supervise: bool) -> DriverDescription {
    DriverDescription {
        cores,
        memory_mb,
        supervise,
        command: cmd(&["sh", "-c", "sleep 1000"]),
    }
}

/// Registers a cluster-mode app and returns (app, driver).
pub fn cluster_app(
    s: &mut ClusterState,
    desc: AppDescription,
    driver: DriverDescription,
) -> (AppId, DriverId) {
    match ok(
        s,
        Command::RegisterApp {
            desc,
            driver: Some(driver),
            driver_url: None,
            at: T0,
        },
    )
    .outcome
    {
        Outcome::AppRegistered {
            app,
            driver: Some(d),
        } => (app, d),
        other => panic!("unexpected {other:?}"),
    }
}

/// Schedules once and applies the placements; returns them and the resulting actions.
pub fn schedule_and_place(
    s: &mut ClusterState,
    policy: &Policy,
    seed: u64,
) -> (Vec<Placement>, Vec<Action>) {
    let placements = schedule(s, policy, seed);
    if placements.is_empty() {
        return (placements, vec![]);
    }
    let applied = ok(
        s,
        Command::Place {
            placements: placements.clone(),
            at: T0,
        },
    );
    (placements, applied.actions)
}

/// (worker, executor count) for an app, in worker order.
pub fn spread(s: &ClusterState, app: &AppId) -> Vec<(WorkerId, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for e in s.apps[app].executors.values() {
        *counts.entry(e.worker.clone()).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

pub fn exec_report(
    worker: &WorkerId,
    app: &AppId,
    executor: u32,
    state: ExecutorState,
    exit_code: Option<i32>,
) -> Command {
    Command::ExecutorStateChanged {
        worker: worker.clone(),
        app: app.clone(),
        executor,
        state,
        exit_code,
        message: String::new(),
        at: at(1000),
    }
}
