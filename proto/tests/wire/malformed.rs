//! Malformed wire values give the named `ConvertError`, never a panic.

use crate::fixtures::*;
use hearth_core::{AppInfo, DriverInfo, ExecutorInfo, WorkerInfo, WorkerRegistration};
use hearth_proto::convert::{Member, StatusView};
use hearth_proto::{pb, ConvertError};

fn unknown(field: &'static str, value: &str, expected: &str) -> ConvertError {
    ConvertError::UnknownState {
        field,
        value: value.into(),
        expected: expected.into(),
    }
}

fn missing(field: &'static str) -> ConvertError {
    ConvertError::Missing { field }
}

#[test]
fn a_draining_worker_needs_its_deadline() {
    let draining = WorkerInfo {
        state: hearth_core::WorkerState::Draining {
            deadline: hearth_core::Millis(1_795_458_328_000),
        },
        ..worker_info()
    };
    let mut w = pb::WorkerInfo::from(&draining);
    assert_eq!(
        (w.state.as_str(), w.drain_deadline_ms),
        ("DRAINING", Some(1_795_458_328_000))
    );
    assert_eq!(WorkerInfo::try_from(w.clone()), Ok(draining));
    w.drain_deadline_ms = None;
    assert_eq!(
        WorkerInfo::try_from(w),
        Err(missing("WorkerInfo.drain_deadline_ms"))
    );
}

#[test]
fn unknown_state_names() {
    let mut w = pb::WorkerInfo::from(worker_info());
    w.state = "alive".into();
    assert_eq!(
        WorkerInfo::try_from(w),
        Err(unknown(
            "WorkerInfo.state",
            "alive",
            "ALIVE, DEAD, DECOMMISSIONED, UNKNOWN, DRAINING"
        ))
    );

    let mut a = pb::AppInfo::from(running_app());
    a.state = "DONE".into();
    assert_eq!(
        AppInfo::try_from(a),
        Err(unknown(
            "AppInfo.state",
            "DONE",
            "WAITING, RUNNING, FINISHED, FAILED, KILLED, UNKNOWN"
        ))
    );

    let mut d = pb::DriverInfo::from(placed_driver());
    d.state = String::new();
    assert_eq!(
        DriverInfo::try_from(d),
        Err(unknown(
            "DriverInfo.state",
            "",
            "SUBMITTED, RUNNING, RELAUNCHING, FINISHED, FAILED, KILLED, ERROR, UNKNOWN"
        ))
    );

    let mut r = pb::RegisterWorkerRequest::from(registration());
    r.executors[1].state = "STARTING".into();
    assert_eq!(
        WorkerRegistration::try_from(r),
        Err(unknown(
            "ReportedExecutor.state",
            "STARTING",
            "LAUNCHING, RUNNING, KILLED, FAILED, LOST, EXITED, DECOMMISSIONED"
        ))
    );
}

#[test]
fn a_bad_executor_inside_an_app_names_the_executor_field() {
    let mut a = pb::AppInfo::from(running_app());
    a.executors[1].state = "ZOMBIE".into();
    assert_eq!(
        AppInfo::try_from(a),
        Err(unknown(
            "ExecutorInfo.state",
            "ZOMBIE",
            "LAUNCHING, RUNNING, KILLED, FAILED, LOST, EXITED, DECOMMISSIONED"
        ))
    );
}

#[test]
fn unknown_status_and_member_role() {
    let snap = crate::round_trip::snapshot();
    let mut s = pb::ClusterStatus::from(&snap);
    s.status = "LEADER".into();
    assert_eq!(
        StatusView::try_from(s),
        Err(unknown(
            "ClusterStatus.status",
            "LEADER",
            "STANDBY, RECOVERING, COMPLETING_RECOVERY, ALIVE"
        ))
    );
    let m = pb::MasterMember {
        id: 1,
        address: "10.0.0.1:7077".into(),
        role: "Leader".into(),
    };
    assert_eq!(
        Member::try_from(m),
        Err(unknown(
            "MasterMember.role",
            "Leader",
            "leader, follower, learner, unreachable"
        ))
    );
}

#[test]
fn ports_above_u16_are_refused() {
    let mut r = pb::RegisterWorkerRequest::from(registration());
    r.port = 65_536;
    assert_eq!(
        WorkerRegistration::try_from(r),
        Err(ConvertError::OutOfRange {
            field: "RegisterWorkerRequest.port",
            value: 65_536,
            max: 65_535
        })
    );
    let mut r = pb::RegisterWorkerRequest::from(registration());
    r.http_port = u32::MAX;
    assert_eq!(
        WorkerRegistration::try_from(r),
        Err(ConvertError::OutOfRange {
            field: "RegisterWorkerRequest.http_port",
            value: 4_294_967_295,
            max: 65_535
        })
    );
    let mut w = pb::WorkerInfo::from(worker_info());
    w.http_port = 70_000;
    assert_eq!(
        WorkerInfo::try_from(w),
        Err(ConvertError::OutOfRange {
            field: "WorkerInfo.http_port",
            value: 70_000,
            max: 65_535
        })
    );
}

#[test]
fn absent_required_messages() {
    let mut a = pb::AppInfo::from(running_app());
    a.desc = None;
    assert_eq!(AppInfo::try_from(a), Err(missing("AppInfo.desc")));

    let mut d = pb::DriverInfo::from(placed_driver());
    d.desc = None;
    assert_eq!(DriverInfo::try_from(d), Err(missing("DriverInfo.desc")));

    let mut a = pb::AppInfo::from(running_app());
    if let Some(desc) = a.desc.as_mut() {
        desc.command = None;
    }
    assert_eq!(AppInfo::try_from(a), Err(missing("AppDescription.command")));

    let mut d = pb::DriverInfo::from(placed_driver());
    if let Some(desc) = d.desc.as_mut() {
        desc.command = None;
    }
    assert_eq!(
        DriverInfo::try_from(d),
        Err(missing("DriverDescription.command"))
    );
}

#[test]
fn empty_ids() {
    let mut w = pb::WorkerInfo::from(worker_info());
    w.id.clear();
    assert_eq!(WorkerInfo::try_from(w), Err(missing("WorkerInfo.id")));

    let mut w = pb::WorkerInfo::from(worker_info());
    w.executors[0].app_id.clear();
    assert_eq!(WorkerInfo::try_from(w), Err(missing("ExecutorRef.app_id")));

    let mut r = pb::RegisterWorkerRequest::from(registration());
    r.worker_id.clear();
    assert_eq!(
        WorkerRegistration::try_from(r),
        Err(missing("RegisterWorkerRequest.worker_id"))
    );

    let mut r = pb::RegisterWorkerRequest::from(registration());
    r.driver_ids[1].clear();
    assert_eq!(
        WorkerRegistration::try_from(r),
        Err(missing("RegisterWorkerRequest.driver_ids"))
    );

    let mut a = pb::AppInfo::from(running_app());
    a.driver_id = Some(String::new());
    assert_eq!(AppInfo::try_from(a), Err(missing("AppInfo.driver_id")));

    let mut d = pb::DriverInfo::from(placed_driver());
    d.app_id.clear();
    assert_eq!(DriverInfo::try_from(d), Err(missing("DriverInfo.app_id")));

    let mut e = pb::ExecutorInfo::from(executor(1, hearth_core::ExecutorState::Running));
    e.worker_id.clear();
    assert_eq!(
        ExecutorInfo::try_from(e),
        Err(missing("ExecutorInfo.worker_id"))
    );
}

#[test]
fn duplicates_in_sets_and_maps() {
    let mut a = pb::AppInfo::from(running_app());
    a.executors[1].id = a.executors[0].id;
    assert_eq!(
        AppInfo::try_from(a),
        Err(ConvertError::Duplicate {
            field: "AppInfo.executors",
            value: "executor 0".into()
        })
    );

    let mut w = pb::WorkerInfo::from(worker_info());
    let first = w.executors[0].clone();
    w.executors.push(first);
    assert_eq!(
        WorkerInfo::try_from(w),
        Err(ConvertError::Duplicate {
            field: "WorkerInfo.executors",
            value: "app-20261123181528-0001/0".into()
        })
    );

    let mut w = pb::WorkerInfo::from(worker_info());
    w.driver_ids.push("driver-20261123181528-0000".into());
    assert_eq!(
        WorkerInfo::try_from(w),
        Err(ConvertError::Duplicate {
            field: "WorkerInfo.driver_ids",
            value: "driver-20261123181528-0000".into()
        })
    );
}

#[test]
fn error_messages_name_field_and_value() {
    assert_eq!(
        unknown("WorkerInfo.state", "alive", "ALIVE, DEAD").to_string(),
        "WorkerInfo.state = \"alive\" is not a known value; expected one of ALIVE, DEAD"
    );
    assert_eq!(
        ConvertError::OutOfRange {
            field: "WorkerInfo.port",
            value: 70_000,
            max: 65_535
        }
        .to_string(),
        "WorkerInfo.port = 70000 is out of range (at most 65535)"
    );
    assert_eq!(
        missing("AppInfo.desc").to_string(),
        "AppInfo.desc is missing"
    );
}

#[test]
fn garbage_bytes_do_not_panic() {
    use prost::Message;
    // A truncated length-delimited field: prost refuses it with an error.
    assert!(pb::ClusterStatus::decode(&[0x2a, 0x10, 0x01][..]).is_err());
    // A well-formed but empty message decodes to defaults, which conversion refuses.
    let empty = pb::ClusterStatus::decode(&[][..]).expect("empty is a valid message");
    assert_eq!(
        StatusView::try_from(empty),
        Err(unknown(
            "ClusterStatus.status",
            "",
            "STANDBY, RECOVERING, COMPLETING_RECOVERY, ALIVE"
        ))
    );
}
