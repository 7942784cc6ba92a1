//! `MasterService` requests decode into the exact core `Command`.

use crate::fixtures::*;
use hearth_core::{AppState, Command, DriverState, ExecutorState, Millis};
use hearth_proto::{pb, ConvertError};

const AT: Millis = Millis(1_795_457_730_500);

#[test]
fn register_worker() {
    let req = pb::RegisterWorkerRequest::from(registration());
    assert_eq!(
        req.into_command(AT),
        Ok(Command::RegisterWorker {
            reg: registration(),
            at: AT
        })
    );
}

#[test]
fn executor_state_changed() {
    let req = pb::ExecutorStateChangedRequest {
        worker_id: worker_id("10.0.0.5", 7078).0,
        app_id: app_id(1).0,
        executor_id: 3,
        state: "FAILED".into(),
        exit_code: Some(-9),
        message: "killed by signal 9".into(),
    };
    assert_eq!(
        req.into_command(AT),
        Ok(Command::ExecutorStateChanged {
            worker: worker_id("10.0.0.5", 7078),
            app: app_id(1),
            executor: 3,
            state: ExecutorState::Failed,
            exit_code: Some(-9),
            message: "killed by signal 9".into(),
            at: AT,
        })
    );
}

#[test]
fn executor_state_changed_with_bad_state() {
    let req = pb::ExecutorStateChangedRequest {
        worker_id: worker_id("10.0.0.5", 7078).0,
        app_id: app_id(1).0,
        executor_id: 3,
        state: "failed".into(),
        exit_code: None,
        message: String::new(),
    };
    assert_eq!(
        req.into_command(AT),
        Err(ConvertError::UnknownState {
            field: "ExecutorStateChangedRequest.state",
            value: "failed".into(),
            expected: "LAUNCHING, RUNNING, KILLED, FAILED, LOST, EXITED, DECOMMISSIONED".into(),
        })
    );
}

#[test]
fn driver_state_changed() {
    let req = pb::DriverStateChangedRequest {
        worker_id: worker_id("10.0.0.5", 7078).0,
        driver_id: driver_id(3).0,
        state: "RUNNING".into(),
        driver_url: Some("10.0.0.5:41234".into()),
        exit_code: None,
        message: String::new(),
    };
    assert_eq!(
        req.into_command(AT),
        Ok(Command::DriverStateChanged {
            worker: worker_id("10.0.0.5", 7078),
            driver: driver_id(3),
            state: DriverState::Running,
            driver_url: Some("10.0.0.5:41234".into()),
            exit_code: None,
            message: String::new(),
            at: AT,
        })
    );
}

#[test]
fn register_app_cluster_and_client_mode() {
    let cluster = pb::RegisterAppRequest {
        app: Some(app_desc().into()),
        driver: Some(driver_desc().into()),
        driver_url: None,
    };
    assert_eq!(
        cluster.into_command(AT),
        Ok(Command::RegisterApp {
            desc: app_desc(),
            driver: Some(driver_desc()),
            driver_url: None,
            at: AT,
        })
    );
    let client = pb::RegisterAppRequest {
        app: Some(app_desc().into()),
        driver: None,
        driver_url: Some("192.168.1.20:40001".into()),
    };
    assert_eq!(
        client.into_command(AT),
        Ok(Command::RegisterApp {
            desc: app_desc(),
            driver: None,
            driver_url: Some("192.168.1.20:40001".into()),
            at: AT,
        })
    );
    let no_app = pb::RegisterAppRequest {
        app: None,
        driver: None,
        driver_url: None,
    };
    assert_eq!(
        no_app.into_command(AT),
        Err(ConvertError::Missing {
            field: "RegisterAppRequest.app"
        })
    );
}

#[test]
fn register_app_response_round_trips() {
    for driver in [None, Some(driver_id(9))] {
        let resp = pb::RegisterAppResponse::new(&app_id(9), driver.as_ref());
        assert_eq!(resp.into_core(), Ok((app_id(9), driver)));
    }
}

#[test]
fn finish_scale_kill_decommission() {
    let finish = pb::FinishAppRequest {
        app_id: app_id(2).0,
        state: "KILLED".into(),
        reason: "killed by user".into(),
    };
    assert_eq!(
        finish.into_command(AT),
        Ok(Command::FinishApp {
            app: app_id(2),
            state: AppState::Killed,
            reason: "killed by user".into(),
            at: AT,
        })
    );
    let scale = pb::ScaleAppRequest {
        app_id: app_id(2).0,
        target_executors: 0,
    };
    assert_eq!(
        scale.into_command(),
        Ok(Command::SetExecutorTarget {
            app: app_id(2),
            target: 0
        })
    );
    let kill = pb::KillDriverRequest {
        driver_id: driver_id(3).0,
    };
    assert_eq!(
        kill.into_command(AT),
        Ok(Command::KillDriver {
            driver: driver_id(3),
            at: AT
        })
    );
    let decommission = pb::DecommissionWorkerRequest {
        worker_id: worker_id("10.0.0.5", 7078).0,
    };
    assert_eq!(
        decommission.into_command(),
        Ok(Command::DecommissionWorker {
            worker: worker_id("10.0.0.5", 7078)
        })
    );
}

#[test]
fn id_only_requests() {
    let hb = pb::HeartbeatRequest {
        worker_id: worker_id("h", 1).0,
    };
    assert_eq!(hb.into_core(), Ok(worker_id("h", 1)));
    let hb = pb::HeartbeatRequest {
        worker_id: String::new(),
    };
    assert_eq!(
        hb.into_core(),
        Err(ConvertError::Missing {
            field: "HeartbeatRequest.worker_id"
        })
    );
    let app_hb = pb::AppHeartbeatRequest {
        app_id: app_id(4).0,
    };
    assert_eq!(app_hb.into_core(), Ok(app_id(4)));
    let kill = pb::KillAppRequest {
        app_id: String::new(),
    };
    assert_eq!(
        kill.into_core(),
        Err(ConvertError::Missing {
            field: "KillAppRequest.app_id"
        })
    );
}

#[test]
fn worker_control_requests_without_command_or_ids() {
    use hearth_core::Action;
    let mut launch = match hearth_proto::convert::WorkerCommand::new(
        &actions()[0],
        hearth_proto::convert::Fence {
            term: 1,
            master_id: 1,
        },
    ) {
        hearth_proto::convert::WorkerCommand::LaunchExecutor(r) => r,
        other => panic!("expected LaunchExecutor, got {other:?}"),
    };
    launch.command = None;
    assert_eq!(
        Action::try_from(launch),
        Err(ConvertError::Missing {
            field: "LaunchExecutorRequest.command"
        })
    );
    let kill = pb::WorkerKillDriverRequest {
        term: 1,
        master_id: 1,
        worker_id: worker_id("h", 1).0,
        driver_id: String::new(),
    };
    assert_eq!(
        Action::try_from(kill),
        Err(ConvertError::Missing {
            field: "WorkerKillDriverRequest.driver_id"
        })
    );
}
