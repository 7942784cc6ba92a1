//! Realistic core values, built by hand.

use hearth_core::{
    Action, AppDescription, AppId, AppInfo, AppState, DriverDescription, DriverId, DriverInfo,
    DriverKill, DriverLaunch, DriverState, ExecutorInfo, ExecutorKill, ExecutorLaunch,
    ExecutorState, Millis, ProcessSpec, ReportedExecutor, WorkerId, WorkerIdentity, WorkerInfo,
    WorkerRegistration, WorkerState,
};

pub const T0: Millis = Millis(1_795_457_728_000);

pub fn app_id(n: u32) -> AppId {
    AppId(format!("app-20261123181528-{n:04}"))
}

pub fn driver_id(n: u32) -> DriverId {
    DriverId(format!("driver-20261123181528-{n:04}"))
}

pub fn worker_id(host: &str, port: u16) -> WorkerId {
    WorkerId(format!("worker-20261123181528-{host}-{port}"))
}

pub fn spec(argv: &[&str], env: &[(&str, &str)]) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub fn app_desc() -> AppDescription {
    AppDescription {
        name: "word count".into(),
        cores_per_executor: Some(2),
        memory_per_executor_mb: 1024,
        max_cores: Some(8),
        initial_executor_limit: None,
        command: spec(
            &["/opt/app/bin/executor", "--verbose", ""],
            &[("JAVA_OPTS", "-Xmx1g"), ("LANG", "C.UTF-8")],
        ),
    }
}

pub fn driver_desc() -> DriverDescription {
    DriverDescription {
        cores: 1,
        memory_mb: 512,
        supervise: true,
        command: spec(
            &["sh", "-c", "exec ./driver --port $HEARTH_DRIVER_PORT"],
            &[],
        ),
    }
}

pub fn worker_info() -> WorkerInfo {
    WorkerInfo {
        identity: WorkerIdentity {
            id: worker_id("10.0.0.5", 7078),
            host: "10.0.0.5".into(),
            port: 7078,
            http_port: 8081,
            cores: 16,
            memory_mb: 65_536,
        },
        cores_used: 5,
        memory_used_mb: 2_560,
        state: WorkerState::Alive,
        registered_at: T0,
        dead_since: None,
        executors: [(app_id(1), 0), (app_id(1), 3), (app_id(2), 1)]
            .into_iter()
            .collect(),
        drivers: [driver_id(0)].into_iter().collect(),
    }
}

pub fn dead_worker() -> WorkerInfo {
    WorkerInfo {
        identity: WorkerIdentity {
            id: worker_id("10.0.0.6", 65_535),
            host: "10.0.0.6".into(),
            port: 65_535,
            http_port: 0,
            ..worker_info().identity
        },
        cores_used: 0,
        memory_used_mb: 0,
        state: WorkerState::Dead,
        dead_since: Some(T0.plus(61_000)),
        executors: Default::default(),
        drivers: Default::default(),
        ..worker_info()
    }
}

pub fn executor(id: u32, state: ExecutorState) -> ExecutorInfo {
    ExecutorInfo {
        id,
        worker: worker_id("10.0.0.5", 7078),
        cores: 2,
        memory_mb: 1024,
        state,
    }
}

pub fn running_app() -> AppInfo {
    AppInfo {
        id: app_id(1),
        seq: 1,
        desc: app_desc(),
        state: AppState::Running,
        submitted_at: T0,
        ended_at: None,
        end_reason: None,
        driver: Some(driver_id(0)),
        driver_url: Some("10.0.0.5:41234".into()),
        executors: [
            (0, executor(0, ExecutorState::Running)),
            (3, executor(3, ExecutorState::Launching)),
        ]
        .into_iter()
        .collect(),
        next_executor_id: 4,
        executor_limit: Some(6),
        retry_count: 2,
    }
}

pub fn finished_app() -> AppInfo {
    AppInfo {
        id: app_id(7),
        seq: 7,
        desc: AppDescription {
            cores_per_executor: None,
            max_cores: None,
            initial_executor_limit: Some(0),
            ..app_desc()
        },
        state: AppState::Finished,
        submitted_at: T0,
        ended_at: Some(T0.plus(93_000)),
        end_reason: Some(String::new()),
        driver: None,
        driver_url: None,
        executors: Default::default(),
        next_executor_id: 0,
        executor_limit: None,
        retry_count: 0,
    }
}

pub fn placed_driver() -> DriverInfo {
    DriverInfo {
        id: driver_id(3),
        seq: 3,
        app: app_id(1),
        desc: driver_desc(),
        state: DriverState::Running,
        worker: Some(worker_id("10.0.0.5", 7078)),
        submitted_at: T0,
        ended_at: None,
        end_reason: None,
        relaunch_of: Some(driver_id(0)),
    }
}

pub fn failed_driver() -> DriverInfo {
    DriverInfo {
        id: driver_id(4),
        seq: 4,
        state: DriverState::Error,
        worker: None,
        ended_at: Some(T0.plus(5)),
        end_reason: Some("worker lost and not supervised".into()),
        relaunch_of: None,
        desc: DriverDescription {
            supervise: false,
            ..driver_desc()
        },
        ..placed_driver()
    }
}

pub fn registration() -> WorkerRegistration {
    WorkerRegistration {
        identity: worker_info().identity,
        executors: vec![
            ReportedExecutor {
                app: app_id(2),
                executor: 1,
                state: ExecutorState::Running,
            },
            ReportedExecutor {
                app: app_id(1),
                executor: 0,
                state: ExecutorState::Launching,
            },
        ],
        drivers: vec![driver_id(3), driver_id(0)],
    }
}

pub fn actions() -> Vec<Action> {
    vec![
        Action::LaunchExecutor(ExecutorLaunch {
            worker: worker_id("10.0.0.5", 7078),
            app: app_id(1),
            executor: 3,
            cores: 2,
            memory_mb: 1024,
            command: app_desc().command,
            driver_url: "10.0.0.5:41234".into(),
        }),
        Action::KillExecutor(ExecutorKill {
            worker: worker_id("10.0.0.5", 7078),
            app: app_id(1),
            executor: 0,
        }),
        Action::LaunchDriver(DriverLaunch {
            worker: worker_id("10.0.0.6", 7078),
            driver: driver_id(3),
            app: app_id(1),
            cores: 1,
            memory_mb: 512,
            supervise: true,
            command: driver_desc().command,
        }),
        Action::KillDriver(DriverKill {
            worker: worker_id("10.0.0.6", 7078),
            driver: driver_id(3),
        }),
    ]
}
