//! Shared test helpers: a realistic command sequence and entry builders.
#![allow(dead_code)]

use hearth_core::{
    apply, schedule, AppDescription, ClusterState, Command, Millis, Policy, ProcessSpec, WorkerId,
    WorkerIdentity, WorkerRegistration,
};
use hearth_raft_store::{Entry, LogId, Request};
use openraft::{CommittedLeaderId, EntryPayload};

pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub fn normal(term: u64, index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::new(command)),
    }
}

pub fn blank(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

pub fn register_worker(n: u16, at: Millis) -> Command {
    let host = format!("10.0.0.{n}");
    Command::RegisterWorker {
        reg: WorkerRegistration {
            identity: WorkerIdentity {
                id: WorkerId(format!("worker-test-{host}-7078")),
                host,
                port: 7078,
                http_port: 8081,
                cores: 4,
                memory_mb: 4096,
            },
            executors: Vec::new(),
            drivers: Vec::new(),
        },
        at,
    }
}

pub fn register_app(name: &str, at: Millis) -> Command {
    Command::RegisterApp {
        desc: AppDescription {
            name: name.to_owned(),
            cores_per_executor: Some(1),
            memory_per_executor_mb: 512,
            max_cores: Some(3),
            initial_executor_limit: None,
            command: ProcessSpec {
                argv: vec!["sh".into(), "-c".into(), "sleep 1".into()],
                env: Default::default(),
            },
        },
        driver: None,
        driver_url: Some("127.0.0.1:4040".into()),
        at,
    }
}

/// A realistic command sequence (recovery to ALIVE, two workers, an app, the
/// scheduler's placements) and the state that applying it directly gives.
pub fn scenario() -> (Vec<Command>, ClusterState) {
    let t0 = Millis(1_700_000_000_000);
    let mut state = ClusterState::default();
    let mut commands = Vec::new();
    let mut push = |state: &mut ClusterState, cmd: Command| {
        apply(state, &cmd).expect("the scenario's commands apply");
        commands.push(cmd);
    };
    push(&mut state, Command::BeginRecovery { at: t0 });
    push(&mut state, Command::CompleteRecovery { at: t0.plus(1) });
    push(&mut state, register_worker(1, t0.plus(2)));
    push(&mut state, register_worker(2, t0.plus(3)));
    push(&mut state, register_app("pi", t0.plus(4)));
    let placements = schedule(&state, &Policy::default(), 7);
    assert!(!placements.is_empty(), "the scheduler places the app");
    push(
        &mut state,
        Command::Place {
            placements,
            at: t0.plus(5),
        },
    );
    (commands, state)
}
