//! The serialized forms that outlive a process, pinned to the exact bytes.
//!
//! `Command`s and the `ClusterState` are written as JSON (the Raft log and snapshots in
//! hearth-raft-store, the FILESYSTEM export document) and as postcard (the FILESYSTEM
//! journal and snapshots, recovery/FORMAT.md §2). A data dir written by an older build
//! must restore, so reshaping a type inside them must not change these strings.
//! `Action`s are not persisted (the Raft state machine's answers are never stored or sent
//! between masters), but their form is pinned too, so that a change to it is a choice.
//!
//! The strings were captured from the build before `WorkerIdentity` and the `Action`
//! structs existed (commit 92d8d7d), when these records held every field themselves.

mod common;

use common::*;
use hearth_core::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

fn register_worker() -> Command {
    Command::RegisterWorker {
        reg: WorkerRegistration {
            identity: WorkerIdentity {
                id: wid(7),
                host: "10.0.0.5".into(),
                port: 7078,
                http_port: 8081,
                cores: 16,
                memory_mb: 65_536,
            },
            executors: vec![ReportedExecutor {
                app: AppId::from("app-20261123181528-0001"),
                executor: 3,
                state: ExecutorState::Running,
            }],
            drivers: vec![DriverId::from("driver-20261123181528-0000")],
        },
        at: at(5),
    }
}

fn worker_info() -> WorkerInfo {
    WorkerInfo {
        identity: WorkerIdentity {
            id: wid(7),
            host: "10.0.0.5".into(),
            port: 7078,
            http_port: 8081,
            cores: 16,
            memory_mb: 65_536,
        },
        cores_used: 3,
        memory_used_mb: 1_536,
        state: WorkerState::Decommissioned,
        registered_at: at(5),
        dead_since: Some(at(9)),
        executors: BTreeSet::from([(AppId::from("app-20261123181528-0001"), 3)]),
        drivers: BTreeSet::from([DriverId::from("driver-20261123181528-0000")]),
    }
}

fn actions() -> Vec<Action> {
    let command = ProcessSpec {
        argv: vec!["sh".into(), "-c".into(), "sleep 1".into()],
        env: BTreeMap::from([("K".to_owned(), "v".to_owned())]),
    };
    vec![
        Action::LaunchExecutor(ExecutorLaunch {
            worker: wid(7),
            app: AppId::from("app-20261123181528-0001"),
            executor: 3,
            cores: 2,
            memory_mb: 512,
            command: command.clone(),
            driver_url: "10.0.0.5:4040".into(),
        }),
        Action::KillExecutor(ExecutorKill {
            worker: wid(7),
            app: AppId::from("app-20261123181528-0001"),
            executor: 3,
        }),
        Action::LaunchDriver(DriverLaunch {
            worker: wid(7),
            driver: DriverId::from("driver-20261123181528-0000"),
            app: AppId::from("app-20261123181528-0001"),
            cores: 1,
            memory_mb: 256,
            supervise: true,
            command,
        }),
        Action::KillDriver(DriverKill {
            worker: wid(7),
            driver: DriverId::from("driver-20261123181528-0000"),
        }),
    ]
}

/// `value` encodes to exactly `pinned` as JSON, and decodes back to itself.
fn assert_json<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, pinned: &str) {
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(json, pinned);
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value);
}

/// `value` encodes to exactly `pinned` (hex) as postcard, and decodes back to itself.
fn assert_postcard<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, pinned: &str) {
    let bytes = postcard::to_stdvec(value).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, pinned);
    assert_eq!(&postcard::from_bytes::<T>(&bytes).unwrap(), value);
}

const REGISTER_WORKER_JSON: &str = concat!(
    r#"{"RegisterWorker":{"reg":{"id":"worker-07","host":"10.0.0.5","port":7078,"#,
    r#""http_port":8081,"cores":16,"memory_mb":65536,"#,
    r#""executors":[{"app":"app-20261123181528-0001","executor":3,"state":"RUNNING"}],"#,
    r#""drivers":["driver-20261123181528-0000"]},"at":1795457728005}}"#,
);

const WORKER_INFO_JSON: &str = concat!(
    r#"{"id":"worker-07","host":"10.0.0.5","port":7078,"http_port":8081,"cores":16,"#,
    r#""memory_mb":65536,"cores_used":3,"memory_used_mb":1536,"state":"DECOMMISSIONED","#,
    r#""registered_at":1795457728005,"dead_since":1795457728009,"#,
    r#""executors":[["app-20261123181528-0001",3]],"drivers":["driver-20261123181528-0000"]}"#,
);

const ACTIONS_JSON: &str = concat!(
    r#"[{"LaunchExecutor":{"worker":"worker-07","app":"app-20261123181528-0001","executor":3,"#,
    r#""cores":2,"memory_mb":512,"command":{"argv":["sh","-c","sleep 1"],"env":{"K":"v"}},"#,
    r#""driver_url":"10.0.0.5:4040"}},{"KillExecutor":{"worker":"worker-07","#,
    r#""app":"app-20261123181528-0001","executor":3}},{"LaunchDriver":{"worker":"worker-07","#,
    r#""driver":"driver-20261123181528-0000","app":"app-20261123181528-0001","cores":1,"#,
    r#""memory_mb":256,"supervise":true,"command":{"argv":["sh","-c","sleep 1"],"#,
    r#""env":{"K":"v"}}}},{"KillDriver":{"worker":"worker-07","#,
    r#""driver":"driver-20261123181528-0000"}}]"#,
);

const REGISTER_WORKER_POSTCARD: &str = concat!(
    "0109776f726b65722d30370831302e302e302e35a637913f1080800401176170702d323032363131",
    "32333138313532382d303030310301011a6472697665722d32303236313132333138313532382d30",
    "30303085fcfacca034",
);

const WORKER_INFO_POSTCARD: &str = concat!(
    "09776f726b65722d30370831302e302e302e35a637913f1080800403800c0285fcfacca0340189fc",
    "facca03401176170702d32303236313132333138313532382d3030303103011a6472697665722d32",
    "303236313132333138313532382d30303030",
);

#[test]
fn register_worker_json_is_unchanged() {
    assert_json(&register_worker(), REGISTER_WORKER_JSON);
}

#[test]
fn worker_info_json_is_unchanged() {
    assert_json(&worker_info(), WORKER_INFO_JSON);
}

#[test]
fn actions_json_is_unchanged() {
    assert_json(&actions(), ACTIONS_JSON);
}

#[test]
fn register_worker_postcard_is_unchanged() {
    assert_postcard(&register_worker(), REGISTER_WORKER_POSTCARD);
}

#[test]
fn worker_info_postcard_is_unchanged() {
    assert_postcard(&worker_info(), WORKER_INFO_POSTCARD);
}

// Drain (issue 14) added `Command` variants and a `WorkerState` variant at the end, so
// every record written before keeps its bytes (pinned above, and a whole pre-drain data
// dir in hearth-recovery's `tests/pre_drain.rs`). These pin the new forms.

fn drain_commands() -> Vec<Command> {
    vec![
        Command::DrainWorker {
            worker: wid(7),
            deadline: at(600_000),
        },
        Command::UndrainWorker { worker: wid(7) },
        Command::FinishDrain {
            worker: wid(7),
            at: at(600_001),
        },
    ]
}

const DRAIN_COMMANDS_JSON: &str = concat!(
    r#"[{"DrainWorker":{"worker":"worker-07","deadline":1795458328000}},"#,
    r#"{"UndrainWorker":{"worker":"worker-07"}},"#,
    r#"{"FinishDrain":{"worker":"worker-07","at":1795458328001}}]"#,
);

/// `03`: three commands; `11`, `12`, `13`: variants 17, 18, 19 (after `KillExecutors`, 16).
const DRAIN_COMMANDS_POSTCARD: &str = concat!(
    "031109776f726b65722d3037c0cb9fcda0341209776f726b65722d30371309776f726b65722d3037",
    "c1cb9fcda034",
);

const DRAINING_WORKER_JSON: &str = concat!(
    r#"{"id":"worker-07","host":"10.0.0.5","port":7078,"http_port":8081,"cores":16,"#,
    r#""memory_mb":65536,"cores_used":3,"memory_used_mb":1536,"#,
    r#""state":{"DRAINING":{"deadline":1795458328000}},"#,
    r#""registered_at":1795457728005,"dead_since":null,"#,
    r#""executors":[["app-20261123181528-0001",3]],"drivers":["driver-20261123181528-0000"]}"#,
);

/// The state is `04` (DRAINING, after the four older states) and the deadline's varint.
const DRAINING_WORKER_POSTCARD: &str = concat!(
    "09776f726b65722d30370831302e302e302e35a637913f1080800403800c04c0cb9fcda03485fcfa",
    "cca0340001176170702d32303236313132333138313532382d3030303103011a6472697665722d32",
    "303236313132333138313532382d30303030",
);

fn draining_worker() -> WorkerInfo {
    WorkerInfo {
        state: WorkerState::Draining {
            deadline: at(600_000),
        },
        dead_since: None,
        ..worker_info()
    }
}

#[test]
fn drain_commands_json_is_pinned() {
    assert_json(&drain_commands(), DRAIN_COMMANDS_JSON);
}

#[test]
fn drain_commands_postcard_is_pinned() {
    assert_postcard(&drain_commands(), DRAIN_COMMANDS_POSTCARD);
}

#[test]
fn draining_worker_json_is_pinned() {
    assert_json(&draining_worker(), DRAINING_WORKER_JSON);
}

#[test]
fn draining_worker_postcard_is_pinned() {
    assert_postcard(&draining_worker(), DRAINING_WORKER_POSTCARD);
}

/// The states a journal written before drain holds decode as they did: variant indices
/// 0..=3, DRAINING after them.
#[test]
fn worker_states_keep_their_indices() {
    let bytes: Vec<Vec<u8>> = WorkerState::ALL
        .iter()
        .map(|s| postcard::to_stdvec(s).unwrap())
        .collect();
    assert_eq!(bytes, vec![vec![0], vec![1], vec![2], vec![3], vec![4, 0]]);
}

// Adoption (issue 15) added `Command::AdoptWorkers` at the end (variant 20) and
// `Outcome::WorkersAdopted`; an adoption holds its worker's identity inline, like every
// record that holds one.

fn adopt_command() -> Command {
    Command::AdoptWorkers {
        workers: vec![Adoption {
            identity: registration(7, 16, 65536).identity,
            fingerprint: 0x0123_4567_89ab_cdef,
        }],
        at: at(600_001),
    }
}

const ADOPT_JSON: &str = concat!(
    r#"{"AdoptWorkers":{"workers":[{"id":"worker-07","host":"127.0.0.1","port":7007,"#,
    r#""http_port":8007,"cores":16,"memory_mb":65536,"fingerprint":81985529216486895}],"#,
    r#""at":1795458328001}}"#,
);

/// `14`: variant 20; `01`: one adoption; the identity as in every record; the
/// fingerprint's varint; `at`'s varint.
const ADOPT_POSTCARD: &str = concat!(
    "140109776f726b65722d3037093132372e302e302e31df36c73e10808004ef9bafcdf8acd19101",
    "c1cb9fcda034",
);

#[test]
fn adopt_workers_json_is_pinned() {
    assert_json(&adopt_command(), ADOPT_JSON);
}

#[test]
fn adopt_workers_postcard_is_pinned() {
    assert_postcard(&adopt_command(), ADOPT_POSTCARD);
}
