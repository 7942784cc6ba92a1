//! core → pb → core is the identity, also through prost's byte encoding.

use crate::fixtures::*;
use hearth_core::{
    AppDescription, AppInfo, AppState, DriverDescription, DriverInfo, DriverState, ExecutorInfo,
    ExecutorState, MasterRole, Millis, ProcessSpec, ReportedExecutor, WorkerInfo,
    WorkerRegistration, WorkerState,
};
use hearth_proto::convert::{Fence, Member, MemberRole, StatusView, WorkerCommand, WorkerStatus};
use hearth_proto::pb;
use prost::Message;

/// Encodes `v` to pb, through bytes and back, then decodes it.
fn through_wire<T, P>(v: &T) -> T
where
    for<'a> P: From<&'a T> + Message + Default,
    T: TryFrom<P>,
    <T as TryFrom<P>>::Error: std::fmt::Debug,
{
    let bytes = P::from(v).encode_to_vec();
    let decoded = P::decode(bytes.as_slice()).expect("prost decodes what it encoded");
    T::try_from(decoded).expect("a core value decodes back")
}

#[test]
fn process_spec() {
    for v in [
        spec(&["a", "b c", ""], &[("K", "v=1"), ("EMPTY", "")]),
        ProcessSpec::default(),
    ] {
        assert_eq!(through_wire::<_, pb::ProcessSpec>(&v), v);
    }
}

#[test]
fn app_description() {
    let other = AppDescription {
        cores_per_executor: None,
        max_cores: None,
        initial_executor_limit: Some(3),
        ..app_desc()
    };
    for v in [app_desc(), other] {
        assert_eq!(through_wire::<_, pb::AppDescription>(&v), v);
    }
}

#[test]
fn driver_description() {
    for supervise in [true, false] {
        let v = DriverDescription {
            supervise,
            ..driver_desc()
        };
        assert_eq!(through_wire::<_, pb::DriverDescription>(&v), v);
    }
}

#[test]
fn worker_info_in_every_state() {
    for &state in WorkerState::ALL {
        let v = WorkerInfo {
            state,
            ..worker_info()
        };
        assert_eq!(through_wire::<_, pb::WorkerInfo>(&v), v);
    }
    let dead = dead_worker();
    assert_eq!(through_wire::<_, pb::WorkerInfo>(&dead), dead);
}

#[test]
fn worker_info_encodes_fields_as_documented() {
    let p = pb::WorkerInfo::from(&worker_info());
    assert_eq!(p.state, "ALIVE");
    assert_eq!(p.port, 7078);
    assert_eq!(p.last_heartbeat_ms, None);
    assert_eq!(
        p.executors
            .iter()
            .map(|e| (e.app_id.as_str(), e.executor_id))
            .collect::<Vec<_>>(),
        vec![
            ("app-20261123181528-0001", 0),
            ("app-20261123181528-0001", 3),
            ("app-20261123181528-0002", 1)
        ]
    );
    assert_eq!(p.driver_ids, vec!["driver-20261123181528-0000"]);
}

#[test]
fn executor_info_in_every_state() {
    for &state in ExecutorState::ALL {
        let v = executor(9, state);
        assert_eq!(through_wire::<_, pb::ExecutorInfo>(&v), v);
        assert_eq!(pb::ExecutorInfo::from(&v).state, state.as_str());
    }
}

#[test]
fn app_info_in_every_state() {
    for &state in AppState::ALL {
        let v = AppInfo {
            state,
            ..running_app()
        };
        assert_eq!(through_wire::<_, pb::AppInfo>(&v), v);
    }
    let done = finished_app();
    assert_eq!(through_wire::<_, pb::AppInfo>(&done), done);
}

#[test]
fn driver_info_in_every_state() {
    for &state in DriverState::ALL {
        let v = DriverInfo {
            state,
            ..placed_driver()
        };
        assert_eq!(through_wire::<_, pb::DriverInfo>(&v), v);
    }
    let failed = failed_driver();
    assert_eq!(through_wire::<_, pb::DriverInfo>(&failed), failed);
}

#[test]
fn reported_executor_in_every_state() {
    for &state in ExecutorState::ALL {
        let v = ReportedExecutor {
            app: app_id(5),
            executor: 12,
            state,
        };
        assert_eq!(through_wire::<_, pb::ReportedExecutor>(&v), v);
    }
}

#[test]
fn worker_registration() {
    let first = WorkerRegistration {
        executors: vec![],
        drivers: vec![],
        ..registration()
    };
    for v in [registration(), first] {
        assert_eq!(through_wire::<_, pb::RegisterWorkerRequest>(&v), v);
    }
}

#[test]
fn worker_registration_keeps_report_order() {
    let p = pb::RegisterWorkerRequest::from(registration());
    assert_eq!(p.worker_id, "worker-20261123181528-10.0.0.5-7078");
    assert_eq!(
        p.driver_ids,
        vec!["driver-20261123181528-0003", "driver-20261123181528-0000"]
    );
    assert_eq!(p.executors[0].app_id, "app-20261123181528-0002");
    assert_eq!(p.executors[1].state, "LAUNCHING");
}

#[test]
fn actions_become_fenced_requests_and_back() {
    let fence = Fence {
        term: 7,
        master_id: 2,
    };
    for action in actions() {
        let cmd = WorkerCommand::new(&action, fence);
        assert_eq!(cmd.fence(), fence);
        let bytes = match &cmd {
            WorkerCommand::LaunchExecutor(r) => r.encode_to_vec(),
            WorkerCommand::KillExecutor(r) => r.encode_to_vec(),
            WorkerCommand::LaunchDriver(r) => r.encode_to_vec(),
            WorkerCommand::KillDriver(r) => r.encode_to_vec(),
        };
        let decoded = match &cmd {
            WorkerCommand::LaunchExecutor(_) => {
                WorkerCommand::LaunchExecutor(Message::decode(bytes.as_slice()).expect("decodes"))
            }
            WorkerCommand::KillExecutor(_) => {
                WorkerCommand::KillExecutor(Message::decode(bytes.as_slice()).expect("decodes"))
            }
            WorkerCommand::LaunchDriver(_) => {
                WorkerCommand::LaunchDriver(Message::decode(bytes.as_slice()).expect("decodes"))
            }
            WorkerCommand::KillDriver(_) => {
                WorkerCommand::KillDriver(Message::decode(bytes.as_slice()).expect("decodes"))
            }
        };
        assert_eq!(decoded, cmd);
        assert_eq!(decoded.into_action(), Ok(action));
    }
}

#[test]
fn launch_executor_request_fields() {
    let cmd = WorkerCommand::new(
        &actions()[0],
        Fence {
            term: 11,
            master_id: 3,
        },
    );
    let WorkerCommand::LaunchExecutor(r) = cmd else {
        panic!("expected LaunchExecutor, got {cmd:?}");
    };
    assert_eq!(
        r,
        pb::LaunchExecutorRequest {
            term: 11,
            master_id: 3,
            worker_id: "worker-20261123181528-10.0.0.5-7078".into(),
            app_id: "app-20261123181528-0001".into(),
            executor_id: 3,
            cores: 2,
            memory_mb: 1024,
            command: Some(app_desc().command.into()),
            driver_url: "10.0.0.5:41234".into(),
        }
    );
}

pub fn snapshot() -> StatusView {
    StatusView {
        status: MasterRole::Alive,
        leader: Some("10.0.0.1:7077".into()),
        term: 5,
        masters: MemberRole::ALL
            .iter()
            .enumerate()
            .map(|(i, &role)| Member {
                id: i as u64 + 1,
                address: format!("10.0.0.{}:7077", i + 1),
                role,
            })
            .collect(),
        workers: vec![
            WorkerStatus {
                info: worker_info(),
                last_heartbeat: Some(T0.plus(60_000)),
            },
            WorkerStatus {
                info: dead_worker(),
                last_heartbeat: None,
            },
        ],
        active_apps: vec![running_app()],
        completed_apps: vec![finished_app()],
        active_drivers: vec![placed_driver()],
        completed_drivers: vec![failed_driver()],
        now: T0.plus(120_000),
        totals: None,
    }
}

#[test]
fn cluster_snapshot() {
    let v = snapshot();
    assert_eq!(through_wire::<_, pb::ClusterStatus>(&v), v);
    let p = pb::ClusterStatus::from(&v);
    assert_eq!(p.status, "ALIVE");
    assert_eq!(
        p.masters
            .iter()
            .map(|m| m.role.as_str())
            .collect::<Vec<_>>(),
        vec!["leader", "follower", "learner", "unreachable"]
    );
    assert_eq!(p.workers[0].last_heartbeat_ms, Some(1_795_457_788_000));
}

#[test]
fn standby_snapshot_without_leader() {
    for &status in MasterRole::ALL {
        let v = StatusView {
            status,
            leader: None,
            term: 0,
            masters: vec![],
            workers: vec![],
            active_apps: vec![],
            completed_apps: vec![],
            active_drivers: vec![],
            completed_drivers: vec![],
            now: Millis(0),
            totals: None,
        };
        assert_eq!(through_wire::<_, pb::ClusterStatus>(&v), v);
    }
}

#[test]
fn executor_info_standalone_fields() {
    let p = pb::ExecutorInfo::from(ExecutorInfo {
        id: 4,
        ..executor(0, ExecutorState::Lost)
    });
    assert_eq!(
        p,
        pb::ExecutorInfo {
            id: 4,
            worker_id: "worker-20261123181528-10.0.0.5-7078".into(),
            cores: 2,
            memory_mb: 1024,
            state: "LOST".into(),
        }
    );
}
