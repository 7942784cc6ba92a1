//! Draining a worker: DrainWorker, UndrainWorker, FinishDrain and `due_drains`, with the
//! exact states and actions each one yields.

mod common;

use common::*;
use hearth_core::*;

/// Places by worker id, packing: the first worker that fits takes everything.
fn packing() -> Policy {
    Policy {
        spread_out_drivers: false,
        spread_out_apps: false,
        worker_selection: WorkerSelection::WorkerId,
        ..Policy::default()
    }
}

fn drain(s: &mut ClusterState, n: u32, deadline_ms: u64) -> Applied {
    ok(
        s,
        Command::DrainWorker {
            worker: wid(n),
            deadline: at(deadline_ms),
        },
    )
}

fn kill(n: u32, app: &AppId, executor: ExecutorId) -> Action {
    Action::KillExecutor(ExecutorKill {
        worker: wid(n),
        app: app.clone(),
        executor,
    })
}

/// Two workers of 4 cores; a client-mode app with two 1-core executors, both on worker 1.
fn two_on_worker_1() -> (ClusterState, AppId) {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let mut desc = app_desc(Some(1), 256, None);
    desc.initial_executor_limit = Some(2);
    let app = client_app(&mut s, desc, 0);
    schedule_and_place(&mut s, &packing(), 0);
    assert_eq!(spread(&s, &app), vec![(wid(1), 2)]);
    (s, app)
}

#[test]
fn a_draining_worker_gets_nothing_new_and_keeps_what_runs_until_its_deadline() {
    let (mut s, app) = two_on_worker_1();
    let applied = drain(&mut s, 1, 10_000);
    assert_eq!(applied, Applied::default(), "draining kills nothing yet");
    assert_eq!(
        s.workers[&wid(1)].state,
        WorkerState::Draining {
            deadline: at(10_000)
        }
    );

    // Scaling up places on worker 2 only, though worker 1 (packing, by id) has room.
    ok(
        &mut s,
        Command::SetExecutorLimit {
            app: app.clone(),
            limit: 3,
        },
    );
    let (placed, _) = schedule_and_place(&mut s, &packing(), 0);
    assert_eq!(
        placed,
        vec![Placement::Executor {
            app: app.clone(),
            worker: wid(2),
            executor: 2,
            cores: 1,
            memory_mb: 256,
        }]
    );
    assert_eq!(spread(&s, &app), vec![(wid(1), 2), (wid(2), 1)]);

    // Before the deadline nothing is due, and the leader's command would be refused.
    assert_eq!(due_drains(&s, at(9_999)), vec![]);
    let early = apply(
        &mut s,
        &Command::FinishDrain {
            worker: wid(1),
            at: at(9_999),
        },
    )
    .unwrap_err();
    assert_eq!(
        early.to_string(),
        "worker-01 is DRAINING: its drain deadline 2026-11-23T18:15:38Z has not passed at \
         2026-11-23T18:15:37Z"
    );

    // At the deadline: worker 1's two executors are killed there, the worker stays
    // registered as DECOMMISSIONED, and the app does not count it as a failure.
    let due = due_drains(&s, at(10_000));
    assert_eq!(
        due,
        vec![Command::FinishDrain {
            worker: wid(1),
            at: at(10_000),
        }]
    );
    let applied = ok(&mut s, due[0].clone());
    assert_eq!(
        applied,
        Applied {
            outcome: Outcome::Done,
            actions: vec![kill(1, &app, 0), kill(1, &app, 1)],
        }
    );
    let w1 = &s.workers[&wid(1)];
    assert_eq!(w1.state, WorkerState::Decommissioned);
    assert_eq!((w1.cores_used, w1.memory_used_mb), (0, 0));
    assert!(w1.executors.is_empty());
    assert_eq!(s.apps[&app].retry_count, 0);
    assert_eq!(spread(&s, &app), vec![(wid(2), 1)]);

    // Their replacements go to worker 2.
    let (placed, actions) = schedule_and_place(&mut s, &packing(), 0);
    assert_eq!(
        placed
            .iter()
            .map(|p| match p {
                Placement::Executor {
                    worker, executor, ..
                } => (worker.clone(), *executor),
                other => panic!("unexpected {other:?}"),
            })
            .collect::<Vec<_>>(),
        vec![(wid(2), 3), (wid(2), 4)]
    );
    assert_eq!(actions.len(), 2);
    assert_eq!(spread(&s, &app), vec![(wid(2), 3)]);

    // The worker reports the killed executors: ignored, nothing counted.
    ok(
        &mut s,
        exec_report(&wid(1), &app, 0, ExecutorState::Killed, Some(143)),
    );
    assert_eq!(s.apps[&app].retry_count, 0);
    assert_eq!(spread(&s, &app), vec![(wid(2), 3)]);

    // Nothing more is due; the leader's command again changes nothing.
    assert_eq!(due_drains(&s, at(20_000)), vec![]);
    let again = ok(
        &mut s,
        Command::FinishDrain {
            worker: wid(1),
            at: at(20_000),
        },
    );
    assert_eq!(again, unchanged());

    // Undrained, worker 1 takes placements again.
    assert_eq!(
        ok(&mut s, Command::UndrainWorker { worker: wid(1) }),
        Applied::default()
    );
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Alive);
    ok(
        &mut s,
        Command::SetExecutorLimit {
            app: app.clone(),
            limit: 4,
        },
    );
    let (placed, _) = schedule_and_place(&mut s, &packing(), 0);
    assert_eq!(
        placed,
        vec![Placement::Executor {
            app: app.clone(),
            worker: wid(1),
            executor: 5,
            cores: 1,
            memory_mb: 256,
        }]
    );
}

fn unchanged() -> Applied {
    Applied {
        outcome: Outcome::Unchanged,
        actions: vec![],
    }
}

/// Worker 1 runs the driver of a cluster-mode app and both its executors.
fn driver_on_worker_1(supervise: bool) -> (ClusterState, AppId, DriverId) {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    add_worker(&mut s, 2, 4, 8192);
    let (app, driver) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, Some(2)),
        driver_desc(1, 512, supervise),
    );
    schedule_and_place(&mut s, &packing(), 0);
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
    schedule_and_place(&mut s, &packing(), 0);
    assert_eq!(spread(&s, &app), vec![(wid(1), 2)]);
    (s, app, driver)
}

#[test]
fn a_supervised_driver_past_the_deadline_is_killed_and_relaunched_elsewhere() {
    let (mut s, app, driver) = driver_on_worker_1(true);
    drain(&mut s, 1, 5_000);
    let applied = ok(
        &mut s,
        Command::FinishDrain {
            worker: wid(1),
            at: at(6_000),
        },
    );
    assert_eq!(
        applied.actions,
        vec![
            kill(1, &app, 0),
            kill(1, &app, 1),
            Action::KillDriver(DriverKill {
                worker: wid(1),
                driver: driver.clone(),
            }),
        ]
    );
    let old = s.completed_drivers.back().expect("the old driver ended");
    assert_eq!(old.id, driver);
    assert_eq!(old.state, DriverState::Relaunching);
    let new_id = ids::driver_id(at(6_000), 1);
    assert_eq!(
        old.end_reason.as_deref(),
        Some(
            format!(
                "relaunched as {new_id}: worker worker-01 drained: its deadline \
                 2026-11-23T18:15:33Z passed"
            )
            .as_str()
        )
    );
    assert_eq!(s.drivers[&new_id].state, DriverState::Submitted);
    assert_eq!(s.drivers[&new_id].relaunch_of, Some(driver));
    assert_eq!(s.apps[&app].state, AppState::Waiting);
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Decommissioned);
    // The new driver goes to worker 2.
    let (placed, _) = schedule_and_place(&mut s, &packing(), 0);
    assert_eq!(
        placed,
        vec![Placement::Driver {
            driver: new_id,
            worker: wid(2),
        }]
    );
}

#[test]
fn an_unsupervised_driver_past_the_deadline_is_killed_with_its_app() {
    let (mut s, app, driver) = driver_on_worker_1(false);
    drain(&mut s, 1, 5_000);
    let applied = ok(
        &mut s,
        Command::FinishDrain {
            worker: wid(1),
            at: at(5_000),
        },
    );
    assert_eq!(
        applied.actions,
        vec![
            kill(1, &app, 0),
            kill(1, &app, 1),
            Action::KillDriver(DriverKill {
                worker: wid(1),
                driver: driver.clone(),
            }),
        ]
    );
    let d = s.completed_drivers.back().expect("the driver ended");
    assert_eq!(
        (d.id.clone(), d.state, d.end_reason.as_deref()),
        (
            driver.clone(),
            DriverState::Killed,
            Some("worker worker-01 drained: its deadline 2026-11-23T18:15:33Z passed")
        )
    );
    let a = s.completed_apps.back().expect("the app ended");
    assert_eq!((a.id.clone(), a.state), (app, AppState::Killed));
    assert_eq!(
        a.end_reason.as_deref(),
        Some(
            format!(
                "driver {driver} ended KILLED: worker worker-01 drained: its deadline \
                 2026-11-23T18:15:33Z passed"
            )
            .as_str()
        )
    );
    assert!(s.drivers.is_empty() && s.apps.is_empty());
}

#[test]
fn a_drain_with_nothing_left_running_is_due_before_its_deadline() {
    let (mut s, app) = two_on_worker_1();
    drain(&mut s, 2, 60_000);
    assert_eq!(
        due_drains(&s, at(1)),
        vec![Command::FinishDrain {
            worker: wid(2),
            at: at(1),
        }]
    );
    drain(&mut s, 1, 60_000);
    // Worker 1 still runs two executors: only worker 2 is due.
    assert_eq!(due_drains(&s, at(1)).len(), 1);
    ok(
        &mut s,
        Command::KillExecutors {
            app: app.clone(),
            executors: vec![0, 1],
        },
    );
    assert_eq!(
        due_drains(&s, at(2)),
        vec![
            Command::FinishDrain {
                worker: wid(1),
                at: at(2),
            },
            Command::FinishDrain {
                worker: wid(2),
                at: at(2),
            },
        ]
    );
    for cmd in due_drains(&s, at(2)) {
        assert_eq!(ok(&mut s, cmd).actions, vec![]);
    }
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Decommissioned);
    assert_eq!(s.workers[&wid(2)].state, WorkerState::Decommissioned);
}

#[test]
fn drain_undrain_and_decommission_from_every_state() {
    let mut s = alive();
    for n in 1..=3 {
        add_worker(&mut s, n, 4, 4096);
    }
    // ALIVE -> DRAINING; again with the same deadline: unchanged; a new one: moved.
    assert_eq!(drain(&mut s, 1, 100).outcome, Outcome::Done);
    assert_eq!(drain(&mut s, 1, 100).outcome, Outcome::Unchanged);
    assert_eq!(drain(&mut s, 1, 50).outcome, Outcome::Done);
    assert_eq!(
        s.workers[&wid(1)].state.drain_deadline(),
        Some(at(50)),
        "a second drain moves the deadline, earlier too"
    );
    // DRAINING -> DECOMMISSIONED: no deadline any more, what runs keeps running.
    ok(&mut s, Command::DecommissionWorker { worker: wid(1) });
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Decommissioned);
    assert_eq!(due_drains(&s, at(1_000_000)), vec![]);
    // DECOMMISSIONED -> DRAINING -> ALIVE; ALIVE undrained: unchanged.
    drain(&mut s, 1, 100);
    ok(&mut s, Command::UndrainWorker { worker: wid(1) });
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Alive);
    assert_eq!(
        ok(&mut s, Command::UndrainWorker { worker: wid(1) }),
        unchanged()
    );
    // FinishDrain on a worker that is not draining: refused.
    let err = apply(
        &mut s,
        &Command::FinishDrain {
            worker: wid(1),
            at: at(1),
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker-01 is ALIVE: only a DRAINING worker's drain finishes"
    );

    // DEAD: neither drained nor undrained.
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(2),
            reason: "test".into(),
            at: at(1),
        },
    );
    let before = s.clone();
    let err = apply(
        &mut s,
        &Command::DrainWorker {
            worker: wid(2),
            deadline: at(5),
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker-02 is DEAD: a DEAD worker cannot be drained"
    );
    let err = apply(&mut s, &Command::UndrainWorker { worker: wid(2) }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker-02 is DEAD: a DEAD worker cannot be undrained; it is ALIVE again once it registers"
    );
    let err = apply(&mut s, &Command::UndrainWorker { worker: wid(9) }).unwrap_err();
    assert_eq!(err.to_string(), "unknown worker worker-09");
    assert_eq!(s, before, "refusals change nothing");

    // UNKNOWN (a new leader waits for it): undrain changes nothing, drain drains.
    drain(&mut s, 3, 70);
    ok(&mut s, Command::BeginRecovery { at: at(2) });
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Unknown);
    assert_eq!(
        s.workers[&wid(3)].state,
        WorkerState::Draining { deadline: at(70) },
        "a drain survives a change of leader"
    );
    assert_eq!(
        ok(&mut s, Command::UndrainWorker { worker: wid(1) }),
        unchanged()
    );
    drain(&mut s, 1, 80);
    assert_eq!(
        s.workers[&wid(1)].state,
        WorkerState::Draining { deadline: at(80) }
    );
    // Registering again keeps the drain.
    ok(
        &mut s,
        Command::RegisterWorker {
            reg: registration(3, 4, 4096),
            at: at(3),
        },
    );
    assert_eq!(
        s.workers[&wid(3)].state,
        WorkerState::Draining { deadline: at(70) }
    );
}

#[test]
fn a_draining_worker_that_goes_silent_is_lost() {
    let (mut s, app) = two_on_worker_1();
    drain(&mut s, 1, 600_000);
    let mut heard = LastHeard::new(Millis(0));
    heard.workers.insert(wid(2), Millis(61_000));
    heard.apps.insert(app.clone(), Millis(61_000));
    let now = Now {
        wall: at(61_000),
        mono: Millis(61_000),
    };
    let lost = Command::WorkerLost {
        worker: wid(1),
        reason: "no heartbeat for 61000 ms (worker timeout 60000 ms)".into(),
        at: at(61_000),
    };
    assert_eq!(
        liveness_commands(&s, &heard, now, &LivenessConfig::default()),
        vec![lost.clone()]
    );
    ok(&mut s, lost);
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Dead);
    assert_eq!(spread(&s, &app), vec![]);
    assert_eq!(
        due_drains(&s, at(600_000)),
        vec![],
        "a DEAD worker drains no more"
    );
}
