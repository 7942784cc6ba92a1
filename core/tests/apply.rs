//! `apply`: ids, validation, executor failure accounting, supervise, worker loss,
//! retention — each with its exact expected result.

mod common;
use common::*;
use hearth_core::*;

#[test]
fn ids_come_from_replicated_counters_and_the_commands_time() {
    let mut s = alive();
    let a = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let b = client_app(&mut s, app_desc(Some(1), 256, None), 2_000);
    assert_eq!(a.as_str(), "app-20261123181528-0000");
    assert_eq!(b.as_str(), "app-20261123181530-0001");
    let (c, d) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, None),
        driver_desc(1, 256, false),
    );
    assert_eq!(c.as_str(), "app-20261123181528-0002");
    assert_eq!(d.as_str(), "driver-20261123181528-0000");
    assert_eq!((s.next_app_number, s.next_driver_number), (3, 1));
    // Ending apps never rewinds the counters.
    ok(
        &mut s,
        Command::FinishApp {
            app: a,
            state: AppState::Finished,
            reason: "done".into(),
            at: at(5),
        },
    );
    let e = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    assert_eq!(e.as_str(), "app-20261123181528-0003");
}

#[test]
fn bad_app_descriptions_are_refused_with_the_flag_named() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    let refuse = |s: &mut ClusterState, desc: AppDescription, url: Option<&str>| {
        let before = s.clone();
        let err = apply(
            s,
            &Command::RegisterApp {
                desc,
                driver: None,
                driver_url: url.map(Into::into),
                at: T0,
            },
        )
        .unwrap_err();
        assert_eq!(*s, before, "a refused command changes nothing");
        err.to_string()
    };
    let url = Some("h:1");
    assert_eq!(
        refuse(&mut s, app_desc(Some(0), 256, None), url),
        "invalid executor-cores: must be at least 1"
    );
    assert_eq!(
        refuse(&mut s, app_desc(Some(1), 0, None), url),
        "invalid executor-memory: must be at least 1 MiB"
    );
    assert_eq!(
        refuse(&mut s, app_desc(Some(1), 256, Some(0)), url),
        "invalid total-executor-cores: must be at least 1"
    );
    assert_eq!(
        refuse(&mut s, app_desc(Some(4), 256, Some(2)), url),
        "invalid total-executor-cores: 2 is less than one executor's 4 cores, so no executor could ever start"
    );
    let mut empty = app_desc(Some(1), 256, None);
    empty.command = cmd(&[]);
    assert_eq!(
        refuse(&mut s, empty, url),
        "invalid executor-command: the command is empty"
    );
    assert_eq!(
        refuse(&mut s, app_desc(Some(1), 256, None), None),
        "invalid driver-url: a client-mode app must say where its driver listens"
    );
    assert_eq!(
        refuse(&mut s, app_desc(Some(8), 256, None), url),
        "cannot be scheduled: each executor needs 8 cores and 256 MiB, but no worker offers that \
         (largest: 4 cores, 4096 MiB)"
    );
    let err = apply(
        &mut s,
        &Command::RegisterApp {
            desc: app_desc(Some(1), 256, None),
            driver: Some(driver_desc(0, 256, false)),
            driver_url: None,
            at: T0,
        },
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid driver-cores: must be at least 1");
}

#[test]
fn an_app_bigger_than_any_worker_is_accepted_while_no_worker_is_known() {
    let mut s = alive();
    client_app(&mut s, app_desc(Some(64), 256, None), 0);
}

#[test]
fn workers_offering_nothing_are_refused_and_duplicates_answered() {
    let mut s = alive();
    let err = apply(
        &mut s,
        &Command::RegisterWorker {
            reg: registration(1, 0, 1024),
            at: T0,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid cores: a worker must offer at least 1 core"
    );
    let first = ok(
        &mut s,
        Command::RegisterWorker {
            reg: registration(1, 4, 1024),
            at: T0,
        },
    );
    assert_eq!(
        first.outcome,
        Outcome::WorkerRegistered { duplicate: false }
    );
    let before = s.clone();
    let again = ok(
        &mut s,
        Command::RegisterWorker {
            reg: registration(1, 4, 1024),
            at: at(9),
        },
    );
    assert_eq!(again.outcome, Outcome::WorkerRegistered { duplicate: true });
    assert_eq!(s, before, "a duplicate registration changes nothing");
}

/// A cluster with one app holding `n` one-core executors on worker 1.
fn running_app(n: u32, max_retries: Option<u32>) -> (ClusterState, AppId) {
    let mut s = alive();
    ok(
        &mut s,
        Command::SetConfig(ClusterConfig {
            max_executor_retries: max_retries,
            ..ClusterConfig::default()
        }),
    );
    add_worker(&mut s, 1, n, 8192);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(n)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(s.apps[&app].executors.len(), n as usize);
    (s, app)
}

#[test]
fn executor_failures_count_until_the_app_fails_and_running_resets_the_count() {
    let (mut s, app) = running_app(3, Some(3));
    let w = wid(1);
    ok(
        &mut s,
        exec_report(&w, &app, 0, ExecutorState::Failed, Some(1)),
    );
    ok(
        &mut s,
        exec_report(&w, &app, 1, ExecutorState::Failed, Some(137)),
    );
    assert_eq!(s.apps[&app].retry_count, 2);
    // A replacement reaching RUNNING resets the count (Spark's rule).
    schedule_and_place(&mut s, &Policy::default(), 0);
    ok(
        &mut s,
        exec_report(&w, &app, 3, ExecutorState::Running, None),
    );
    assert_eq!(s.apps[&app].retry_count, 0);
    // A clean exit does not count.
    ok(
        &mut s,
        exec_report(&w, &app, 3, ExecutorState::Exited, Some(0)),
    );
    assert_eq!(s.apps[&app].retry_count, 0);
    for id in [2, 4, 5] {
        ok(
            &mut s,
            exec_report(&w, &app, id, ExecutorState::Failed, Some(1)),
        );
        schedule_and_place(&mut s, &Policy::default(), 0);
    }
    let failed = s.find_app(&app).unwrap();
    assert_eq!(failed.state, AppState::Failed);
    assert_eq!(
        failed.end_reason.as_deref(),
        Some("3 executors failed in a row with none running (last: FAILED, exit code 1)")
    );
    // Its remaining LAUNCHING executors were killed and their cores freed.
    assert_eq!(s.workers[&w].cores_used, 0);
}

#[test]
fn a_running_executor_keeps_the_app_alive_past_the_retry_limit() {
    let (mut s, app) = running_app(3, Some(2));
    let w = wid(1);
    ok(
        &mut s,
        exec_report(&w, &app, 0, ExecutorState::Running, None),
    );
    ok(
        &mut s,
        exec_report(&w, &app, 1, ExecutorState::Failed, Some(1)),
    );
    ok(
        &mut s,
        exec_report(&w, &app, 2, ExecutorState::Failed, Some(1)),
    );
    assert_eq!(s.apps[&app].retry_count, 2);
    assert_eq!(s.apps[&app].state, AppState::Running);
}

#[test]
fn unlimited_retries_never_fail_the_app() {
    let (mut s, app) = running_app(2, None);
    for _ in 0..30 {
        let ids: Vec<u32> = s.apps[&app].executors.keys().copied().collect();
        for id in ids {
            ok(
                &mut s,
                exec_report(&wid(1), &app, id, ExecutorState::Failed, Some(1)),
            );
        }
        schedule_and_place(&mut s, &Policy::default(), 0);
    }
    assert_eq!(s.apps[&app].retry_count, 60);
    assert_eq!(s.apps[&app].state, AppState::Running);
}

#[test]
fn a_report_about_an_executor_the_state_does_not_know_kills_a_live_one() {
    let (mut s, app) = running_app(1, Some(10));
    let stray = ok(
        &mut s,
        exec_report(&wid(1), &app, 42, ExecutorState::Running, None),
    );
    assert_eq!(stray.outcome, Outcome::Unchanged);
    assert_eq!(
        stray.actions,
        vec![Action::KillExecutor(ExecutorKill {
            worker: wid(1),
            app: app.clone(),
            executor: 42
        })]
    );
    let late = ok(
        &mut s,
        exec_report(&wid(1), &app, 42, ExecutorState::Killed, Some(143)),
    );
    assert_eq!((late.outcome, late.actions), (Outcome::Unchanged, vec![]));
}

#[test]
fn losing_a_worker_loses_its_executors_and_the_scheduler_replaces_them() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(4)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(spread(&s, &app), vec![(wid(1), 2), (wid(2), 2)]);
    let lost = ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "no heartbeat".into(),
            at: at(60_000),
        },
    );
    assert_eq!(lost.actions, vec![], "nothing is sent to a dead worker");
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Dead);
    assert_eq!(s.workers[&wid(1)].dead_since, Some(at(60_000)));
    assert_eq!(
        s.apps[&app].retry_count, 0,
        "a lost worker is not the app's fault"
    );
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(
        placed,
        vec![
            Placement::Executor {
                app: app.clone(),
                executor: 4,
                worker: wid(2),
                cores: 1,
                memory_mb: 256
            },
            Placement::Executor {
                app: app.clone(),
                executor: 5,
                worker: wid(2),
                cores: 1,
                memory_mb: 256
            },
        ]
    );
    // Losing it again is a no-op; forgetting a live worker is refused.
    let again = ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "x".into(),
            at: at(61_000),
        },
    );
    assert_eq!(again.outcome, Outcome::Unchanged);
    let err = apply(&mut s, &Command::ForgetWorker { worker: wid(2) }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker-02 is ALIVE: only DEAD workers are forgotten"
    );
    ok(&mut s, Command::ForgetWorker { worker: wid(1) });
    assert!(!s.workers.contains_key(&wid(1)));
}

/// One worker running a cluster-mode app: its driver RUNNING and two executors.
fn cluster_running(supervise: bool) -> (ClusterState, AppId, DriverId) {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    add_worker(&mut s, 2, 4, 8192);
    let (app, driver) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, Some(2)),
        driver_desc(1, 512, supervise),
    );
    let policy = Policy {
        spread_out_drivers: false,
        spread_out_apps: false,
        worker_selection: WorkerSelection::WorkerId,
        ..Policy::default()
    };
    schedule_and_place(&mut s, &policy, 0);
    ok(
        &mut s,
        Command::DriverStateChanged {
            worker: wid(1),
            driver: driver.clone(),
            state: DriverState::Running,
            driver_url: Some("127.0.0.1:5050".into()),
            exit_code: None,
            message: String::new(),
            at: at(1),
        },
    );
    schedule_and_place(&mut s, &policy, 0);
    assert_eq!(spread(&s, &app), vec![(wid(1), 2)]);
    (s, app, driver)
}

#[test]
fn a_supervised_driver_on_a_lost_worker_is_relaunched_under_a_new_id() {
    let (mut s, app, old) = cluster_running(true);
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "no heartbeat".into(),
            at: at(5_000),
        },
    );
    let new = DriverId::from("driver-20261123181533-0001");
    let relaunched = s.find_driver(&old).unwrap();
    assert_eq!(relaunched.state, DriverState::Relaunching);
    assert_eq!(
        relaunched.end_reason.as_deref(),
        Some("relaunched as driver-20261123181533-0001: worker worker-01 lost: no heartbeat")
    );
    let d = &s.drivers[&new];
    assert_eq!(
        (d.state, d.relaunch_of.clone(), d.app.clone()),
        (DriverState::Submitted, Some(old), app.clone())
    );
    let a = &s.apps[&app];
    assert_eq!(
        (a.state, a.driver.clone(), a.driver_url.clone()),
        (AppState::Waiting, Some(new.clone()), None)
    );
    assert!(a.executors.is_empty());
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(
        placed,
        vec![Placement::Driver {
            driver: new,
            worker: wid(2)
        }]
    );
}

#[test]
fn an_unsupervised_driver_on_a_lost_worker_ends_in_error_and_fails_its_app() {
    let (mut s, app, driver) = cluster_running(false);
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "no heartbeat".into(),
            at: at(5_000),
        },
    );
    assert_eq!(s.find_driver(&driver).unwrap().state, DriverState::Error);
    let a = s.find_app(&app).unwrap();
    assert_eq!(a.state, AppState::Failed);
    assert_eq!(
        a.end_reason.as_deref(),
        Some("driver driver-20261123181528-0000 ended ERROR: worker worker-01 lost: no heartbeat")
    );
    assert!(s.drivers.is_empty() && s.apps.is_empty());
}

#[test]
fn a_finished_driver_finishes_its_app_and_kills_the_executors() {
    let (mut s, app, driver) = cluster_running(false);
    let done = ok(
        &mut s,
        Command::DriverStateChanged {
            worker: wid(1),
            driver: driver.clone(),
            state: DriverState::Finished,
            driver_url: None,
            exit_code: Some(0),
            message: "ok".into(),
            at: at(9_000),
        },
    );
    assert_eq!(
        done.actions,
        vec![
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 0
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 1
            }),
        ]
    );
    assert_eq!(s.find_app(&app).unwrap().state, AppState::Finished);
    assert_eq!(s.find_driver(&driver).unwrap().state, DriverState::Finished);
    assert_eq!(s.workers[&wid(1)].cores_used, 0);
}

#[test]
fn killing_a_driver_kills_its_process_its_executors_and_its_app() {
    let (mut s, app, driver) = cluster_running(true);
    let killed = ok(
        &mut s,
        Command::KillDriver {
            driver: driver.clone(),
            at: at(3),
        },
    );
    assert_eq!(
        killed.actions,
        vec![
            Action::KillDriver(DriverKill {
                worker: wid(1),
                driver: driver.clone()
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 0
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 1
            }),
        ]
    );
    assert_eq!(s.find_app(&app).unwrap().state, AppState::Killed);
    let again = ok(&mut s, Command::KillDriver { driver, at: at(4) });
    assert_eq!(
        again.outcome,
        Outcome::Unchanged,
        "killing twice is answered, not refused"
    );
    let err = apply(
        &mut s,
        &Command::KillDriver {
            driver: DriverId::from("driver-x"),
            at: at(4),
        },
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown driver driver-x");
}

#[test]
fn killing_a_cluster_mode_app_kills_its_driver() {
    let (mut s, app, driver) = cluster_running(true);
    let killed = ok(
        &mut s,
        Command::FinishApp {
            app: app.clone(),
            state: AppState::Killed,
            reason: "by user".into(),
            at: at(3),
        },
    );
    assert_eq!(
        killed.actions,
        vec![
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 0
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 1
            }),
            Action::KillDriver(DriverKill {
                worker: wid(1),
                driver: driver.clone()
            }),
        ]
    );
    let d = s.find_driver(&driver).unwrap();
    assert_eq!(d.state, DriverState::Killed);
    assert_eq!(
        d.end_reason.as_deref(),
        Some("app app-20261123181528-0000 ended KILLED: by user")
    );
    let again = ok(
        &mut s,
        Command::FinishApp {
            app: app.clone(),
            state: AppState::Killed,
            reason: "retry".into(),
            at: at(4),
        },
    );
    assert_eq!(again.outcome, Outcome::Unchanged);
    let err = apply(&mut s, &Command::SetExecutorTarget { app, target: 1 }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "app-20261123181528-0000 is KILLED: the app has ended"
    );
}

#[test]
fn completed_apps_and_drivers_are_retained_up_to_the_cap() {
    let mut s = alive();
    ok(
        &mut s,
        Command::SetConfig(ClusterConfig {
            retained_apps: 20,
            retained_drivers: 3,
            ..ClusterConfig::default()
        }),
    );
    let mut ids = vec![];
    for i in 0..21 {
        let a = client_app(&mut s, app_desc(Some(1), 256, None), i);
        ok(
            &mut s,
            Command::FinishApp {
                app: a.clone(),
                state: AppState::Finished,
                reason: "done".into(),
                at: at(i),
            },
        );
        ids.push(a);
    }
    // The 21st pushed the list past 20, so the oldest tenth (2) went.
    let kept: Vec<_> = s.completed_apps.iter().map(|a| a.id.clone()).collect();
    assert_eq!(kept, ids[2..].to_vec());
    for _ in 0..4 {
        let (_, d) = cluster_app(
            &mut s,
            app_desc(Some(1), 256, None),
            driver_desc(1, 256, false),
        );
        ok(
            &mut s,
            Command::KillDriver {
                driver: d,
                at: at(1),
            },
        );
    }
    assert_eq!(s.completed_drivers.len(), 3);
    // Lowering the cap trims at once.
    ok(
        &mut s,
        Command::SetConfig(ClusterConfig {
            retained_apps: 5,
            retained_drivers: 3,
            ..ClusterConfig::default()
        }),
    );
    assert_eq!(s.completed_apps.len(), 5);
}

#[test]
fn decommissioned_workers_keep_what_they_run_but_get_nothing_new() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(2)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    ok(&mut s, Command::DecommissionWorker { worker: wid(1) });
    ok(
        &mut s,
        Command::SetExecutorTarget {
            app: app.clone(),
            target: 1,
        },
    );
    ok(
        &mut s,
        Command::SetExecutorTarget {
            app: app.clone(),
            target: 2,
        },
    );
    assert_eq!(s.apps[&app].executors.len(), 1);
    assert!(schedule(&s, &Policy::default(), 0).is_empty());
    let again = ok(&mut s, Command::DecommissionWorker { worker: wid(1) });
    assert_eq!(again.outcome, Outcome::Unchanged);
}

#[test]
fn a_worker_cannot_report_a_driver_as_submitted() {
    let (mut s, _, driver) = cluster_running(false);
    let err = apply(
        &mut s,
        &Command::DriverStateChanged {
            worker: wid(1),
            driver,
            state: DriverState::Submitted,
            driver_url: None,
            exit_code: None,
            message: String::new(),
            at: T0,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid state: a worker cannot report a driver SUBMITTED"
    );
}

#[test]
fn states_parse_and_print_their_upper_case_names() {
    for s in WorkerState::ALL {
        assert_eq!(s.as_str().parse::<WorkerState>().unwrap(), *s);
    }
    for s in ExecutorState::ALL {
        assert_eq!(s.as_str().parse::<ExecutorState>().unwrap(), *s);
    }
    assert_eq!(
        MasterRole::CompletingRecovery.to_string(),
        "COMPLETING_RECOVERY"
    );
    assert_eq!(
        "alive".parse::<WorkerState>().unwrap_err(),
        "unknown WorkerState \"alive\"; expected one of ALIVE, DEAD, DECOMMISSIONED, UNKNOWN, DRAINING"
    );
    assert_eq!(
        serde_json::to_string(&AppState::Waiting).unwrap(),
        "\"WAITING\""
    );
}

#[test]
fn a_new_worker_at_a_live_workers_address_replaces_it_at_once() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(2)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(spread(&s, &app), vec![(wid(1), 1), (wid(2), 1)]);
    // Worker 1's process restarts in place: same host and port, a new id.
    let mut again = registration(1, 4, 4096);
    again.identity.id = WorkerId("worker-01-restarted".into());
    let applied = ok(
        &mut s,
        Command::RegisterWorker {
            reg: again.clone(),
            at: at(5_000),
        },
    );
    assert_eq!(
        applied.actions,
        vec![],
        "nothing is sent to the gone process"
    );
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Dead);
    assert_eq!(s.workers[&wid(1)].dead_since, Some(at(5_000)));
    assert_eq!(s.workers[&again.identity.id].state, WorkerState::Alive);
    assert_eq!(spread(&s, &app), vec![(wid(2), 1)]);
    assert_eq!(s.apps[&app].retry_count, 0, "not the app's fault");
    // The lost executor is replaced right away, on either live worker.
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(placed.len(), 1, "{placed:?}");
    s.check_invariants().expect("invariants");
    // The same registration again is a duplicate and loses nothing more.
    let dup = ok(
        &mut s,
        Command::RegisterWorker {
            reg: again,
            at: at(6_000),
        },
    );
    assert_eq!(dup.outcome, Outcome::WorkerRegistered { duplicate: true });
}

#[test]
fn a_dead_workers_id_registering_at_a_live_workers_address_replaces_that_one_too() {
    // Worker 1 dies and a new process (id "b") takes its address; then one more restart
    // comes back under worker 1's old id (a worker clock that reused a stamp). "b" is
    // gone: its executor is lost at once, not a worker timeout later.
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let mut b = registration(1, 4, 4096);
    b.identity.id = WorkerId("worker-01-b".into());
    ok(
        &mut s,
        Command::RegisterWorker {
            reg: b.clone(),
            at: at(1_000),
        },
    );
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Dead);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(2)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(
        spread(&s, &app),
        vec![(b.identity.id.clone(), 1), (wid(2), 1)]
    );
    let applied = ok(
        &mut s,
        Command::RegisterWorker {
            reg: registration(1, 4, 4096),
            at: at(2_000),
        },
    );
    assert_eq!(
        applied.outcome,
        Outcome::WorkerRegistered { duplicate: false }
    );
    assert_eq!(s.workers[&b.identity.id].state, WorkerState::Dead);
    assert_eq!(s.workers[&b.identity.id].dead_since, Some(at(2_000)));
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Alive);
    assert_eq!(spread(&s, &app), vec![(wid(2), 1)]);
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(placed.len(), 1, "the lost executor is replaced: {placed:?}");
    s.check_invariants().expect("invariants");
}

/// Spark lowers its executor total first and then names the idle executors it releases:
/// the limit kills nothing, the named kill takes exactly those, and the scheduler does
/// not replace them while the limit holds.
#[test]
fn a_lower_limit_kills_nothing_and_named_kills_take_exactly_those() {
    let mut s = alive();
    let w = add_worker(&mut s, 1, 8, 8192);
    let app = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    ok(
        &mut s,
        Command::SetExecutorLimit {
            app: app.clone(),
            limit: 4,
        },
    );
    schedule_and_place(&mut s, &Policy::default(), 0);
    let ids = |s: &ClusterState| s.apps[&app].executors.keys().copied().collect::<Vec<_>>();
    assert_eq!(ids(&s), vec![0, 1, 2, 3]);

    let lower = ok(
        &mut s,
        Command::SetExecutorLimit {
            app: app.clone(),
            limit: 2,
        },
    );
    assert_eq!((lower.outcome, lower.actions), (Outcome::Done, vec![]));
    assert_eq!(ids(&s), vec![0, 1, 2, 3]);

    // Spark releases 0 and 2 (idle), names 7 (never existed) too.
    let killed = ok(
        &mut s,
        Command::KillExecutors {
            app: app.clone(),
            executors: vec![0, 2, 7],
        },
    );
    let kill = |e| {
        Action::KillExecutor(ExecutorKill {
            worker: w.clone(),
            app: app.clone(),
            executor: e,
        })
    };
    assert_eq!(killed.actions, vec![kill(0), kill(2)]);
    assert_eq!(ids(&s), vec![1, 3]);
    assert_eq!(s.workers[&w].cores_used, 2);
    assert!(schedule(&s, &Policy::default(), 0).is_empty());

    // A retried kill and a repeated limit change nothing.
    let again = ok(
        &mut s,
        Command::KillExecutors {
            app: app.clone(),
            executors: vec![0, 2],
        },
    );
    assert_eq!((again.outcome, again.actions), (Outcome::Unchanged, vec![]));
    let same = ok(
        &mut s,
        Command::SetExecutorLimit {
            app: app.clone(),
            limit: 2,
        },
    );
    assert_eq!(same.outcome, Outcome::Unchanged);
    // The worker's late KILLED reports are not failures.
    ok(
        &mut s,
        exec_report(&w, &app, 0, ExecutorState::Killed, Some(143)),
    );
    assert_eq!(s.apps[&app].retry_count, 0);

    // Raising the limit again places new executors under new ids.
    ok(
        &mut s,
        Command::SetExecutorLimit {
            app: app.clone(),
            limit: 3,
        },
    );
    schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(ids(&s), vec![1, 3, 4]);

    // Both are refused for an app that ended.
    ok(
        &mut s,
        Command::FinishApp {
            app: app.clone(),
            state: AppState::Finished,
            reason: "done".into(),
            at: at(9),
        },
    );
    let err = apply(
        &mut s,
        &Command::KillExecutors {
            app: app.clone(),
            executors: vec![1],
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{app} is FINISHED: the app has ended")
    );
}

/// A client-mode registration sent again (its answer was lost in a failover) is the same
/// app; another description at the same address, or the address of an ended app, is new.
#[test]
fn a_retried_client_registration_is_the_same_app() {
    let mut s = alive();
    add_worker(&mut s, 1, 8, 8192);
    let register = |s: &mut ClusterState, desc: AppDescription, url: &str| {
        let applied = ok(
            s,
            Command::RegisterApp {
                desc,
                driver: None,
                driver_url: Some(url.into()),
                at: T0,
            },
        );
        match applied.outcome {
            Outcome::AppRegistered { app, driver: None } => app,
            other => panic!("unexpected {other:?}"),
        }
    };
    let desc = app_desc(Some(1), 256, None);
    let first = register(
        &mut s,
        desc.clone(),
        "spark://CoarseGrainedScheduler@h:40001",
    );
    let again = register(
        &mut s,
        desc.clone(),
        "spark://CoarseGrainedScheduler@h:40001",
    );
    assert_eq!(again, first);
    assert_eq!((s.apps.len(), s.next_app_number), (1, 1));

    let mut other = desc.clone();
    other.name = "other".into();
    let second = register(&mut s, other, "spark://CoarseGrainedScheduler@h:40001");
    let third = register(
        &mut s,
        desc.clone(),
        "spark://CoarseGrainedScheduler@h:40002",
    );
    assert_eq!(s.apps.len(), 3);
    assert!(second != first && third != first && second != third);

    ok(
        &mut s,
        Command::FinishApp {
            app: first.clone(),
            state: AppState::Finished,
            reason: "done".into(),
            at: at(1),
        },
    );
    let fourth = register(&mut s, desc, "spark://CoarseGrainedScheduler@h:40001");
    assert_ne!(fourth, first);
}

#[test]
fn registrations_beyond_the_active_app_limit_are_refused_naming_it() {
    let mut s = alive();
    for i in 0..MAX_ACTIVE_APPS {
        client_app(&mut s, app_desc(Some(1), 256, None), i as u64);
    }
    let before = s.clone();
    let one_more = Command::RegisterApp {
        desc: app_desc(Some(1), 256, None),
        driver: None,
        driver_url: Some("127.0.0.1:1".into()),
        at: at(0),
    };
    let err = apply(&mut s, &one_more).expect_err("over the limit");
    assert_eq!(
        err.to_string(),
        "invalid app: the cluster has 10000 active apps, the most it takes (10000); wait for some to end, or kill some"
    );
    assert_eq!(s, before, "nothing changed");
    // A retry of an app already registered is still answered.
    let first = before.apps.values().next().expect("an app").clone();
    let again = Command::RegisterApp {
        desc: first.desc.clone(),
        driver: None,
        driver_url: first.driver_url.clone(),
        at: at(0),
    };
    assert!(apply(&mut s, &again).is_ok());
    // Once one ends, there is room again.
    ok(
        &mut s,
        Command::FinishApp {
            app: first.id.clone(),
            state: AppState::Finished,
            reason: "done".into(),
            at: at(1),
        },
    );
    client_app(&mut s, app_desc(Some(1), 256, None), 2);
}

#[test]
fn the_submitter_of_the_app_a_command_is_about() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    let mut named = app_desc(Some(1), 256, None);
    named.command.env.insert(USER_ENV.into(), "alice".into());
    let alices = client_app(&mut s, named.clone(), 0);
    let nobodys = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let (_, driver) = cluster_app(&mut s, named, driver_desc(1, 256, false));
    let finish = |app: &AppId| Command::FinishApp {
        app: app.clone(),
        state: AppState::Killed,
        reason: "x".into(),
        at: at(1),
    };
    assert_eq!(submitter_of(&s, &finish(&alices)), Some(Some("alice")));
    assert_eq!(submitter_of(&s, &finish(&nobodys)), Some(None));
    assert_eq!(submitter_of(&s, &finish(&AppId("app-x".into()))), None);
    let kill = Command::KillDriver {
        driver: driver.clone(),
        at: at(1),
    };
    assert_eq!(submitter_of(&s, &kill), Some(Some("alice")));
    // An ended app still names its submitter.
    ok(&mut s, finish(&alices));
    assert_eq!(submitter_of(&s, &finish(&alices)), Some(Some("alice")));
    // A command about no app.
    let lost = Command::WorkerLost {
        worker: wid(1),
        reason: "x".into(),
        at: at(1),
    };
    assert_eq!(submitter_of(&s, &lost), None);
}
