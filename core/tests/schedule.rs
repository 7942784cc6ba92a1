//! The scheduler's rules, each with its exact expected placements.

mod common;
use common::*;
use hearth_core::*;

fn exec(app: &AppId, executor: u32, worker: u32, cores: u32, memory_mb: u64) -> Placement {
    Placement::Executor {
        app: app.clone(),
        executor,
        worker: wid(worker),
        cores,
        memory_mb,
    }
}

#[test]
fn spread_out_puts_four_one_core_executors_two_and_two() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 512, Some(4)), 0);
    let placed = schedule(&s, &Policy::default(), 7);
    assert_eq!(
        placed,
        vec![
            exec(&app, 0, 1, 1, 512),
            exec(&app, 1, 1, 1, 512),
            exec(&app, 2, 2, 1, 512),
            exec(&app, 3, 2, 1, 512)
        ]
    );
}

#[test]
fn consolidate_fills_one_worker_first() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 512, Some(6)), 0);
    let policy = Policy {
        spread_out_apps: false,
        ..Policy::default()
    };
    let placed = schedule(&s, &policy, 7);
    let expected: Vec<_> = (0..4)
        .map(|i| exec(&app, i, 1, 1, 512))
        .chain((4..6).map(|i| exec(&app, i, 2, 1, 512)))
        .collect();
    assert_eq!(placed, expected);
}

#[test]
fn without_cores_per_executor_one_executor_per_worker_takes_all_assigned_cores() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let app = client_app(&mut s, app_desc(None, 1024, Some(6)), 0);
    assert_eq!(
        schedule(&s, &Policy::default(), 1),
        vec![exec(&app, 0, 1, 3, 1024), exec(&app, 1, 2, 3, 1024)]
    );
}

#[test]
fn cores_per_executor_larger_than_one_hands_out_whole_executors() {
    let mut s = alive();
    add_worker(&mut s, 1, 5, 8192);
    add_worker(&mut s, 2, 5, 8192);
    let app = client_app(&mut s, app_desc(Some(2), 1024, None), 0);
    // 5 cores fit two 2-core executors per worker; the odd core stays free.
    assert_eq!(
        schedule(&s, &Policy::default(), 1),
        vec![
            exec(&app, 0, 1, 2, 1024),
            exec(&app, 1, 1, 2, 1024),
            exec(&app, 2, 2, 2, 1024),
            exec(&app, 3, 2, 2, 1024)
        ]
    );
}

#[test]
fn max_cores_counts_what_the_app_already_holds() {
    let mut s = alive();
    add_worker(&mut s, 1, 8, 8192);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(3)), 0);
    let first = Policy {
        default_cores: None,
        ..Policy::default()
    };
    // Place two, then the third is all that is left.
    let two = vec![exec(&app, 0, 1, 1, 256), exec(&app, 1, 1, 1, 256)];
    ok(
        &mut s,
        Command::Place {
            placements: two,
            at: T0,
        },
    );
    assert_eq!(schedule(&s, &first, 0), vec![exec(&app, 2, 1, 1, 256)]);
}

#[test]
fn default_cores_caps_apps_that_set_no_cap() {
    let mut s = alive();
    add_worker(&mut s, 1, 8, 8192);
    let app = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let policy = Policy {
        default_cores: Some(2),
        ..Policy::default()
    };
    assert_eq!(
        schedule(&s, &policy, 0),
        vec![exec(&app, 0, 1, 1, 256), exec(&app, 1, 1, 1, 256)]
    );
}

#[test]
fn memory_limits_executors_per_worker() {
    let mut s = alive();
    add_worker(&mut s, 1, 8, 1024);
    let app = client_app(&mut s, app_desc(Some(1), 512, None), 0);
    assert_eq!(
        schedule(&s, &Policy::default(), 0),
        vec![exec(&app, 0, 1, 1, 512), exec(&app, 1, 1, 1, 512)]
    );
}

#[test]
fn worker_selection_policies_order_candidates() {
    let mut s = alive();
    add_worker(&mut s, 1, 2, 8192);
    add_worker(&mut s, 2, 8, 1024);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(1)), 0);
    let pick = |sel| match &schedule(
        &s,
        &Policy {
            worker_selection: sel,
            ..Policy::default()
        },
        0,
    )[..]
    {
        [Placement::Executor { worker, .. }] => worker.clone(),
        other => panic!("expected one executor, got {other:?}"),
    };
    assert_eq!(pick(WorkerSelection::CoresFreeDesc), wid(2));
    assert_eq!(pick(WorkerSelection::CoresFreeAsc), wid(1));
    assert_eq!(pick(WorkerSelection::MemoryFreeDesc), wid(1));
    assert_eq!(pick(WorkerSelection::MemoryFreeAsc), wid(2));
    assert_eq!(pick(WorkerSelection::WorkerId), wid(1));
    let _ = app;
}

#[test]
fn never_places_on_dead_decommissioned_or_unknown_workers() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    add_worker(&mut s, 3, 4, 4096);
    add_worker(&mut s, 4, 4, 4096);
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "test".into(),
            at: at(1),
        },
    );
    ok(&mut s, Command::DecommissionWorker { worker: wid(2) });
    // Worker 3 goes UNKNOWN across a leader change and never answers; worker 4 answers.
    ok(&mut s, Command::BeginRecovery { at: at(2) });
    ok(
        &mut s,
        Command::RegisterWorker {
            reg: registration(4, 4, 4096),
            at: at(3),
        },
    );
    assert_eq!(s.role, MasterRole::Recovering);
    let app = client_app(&mut s, app_desc(Some(1), 256, None), 10);
    assert!(
        schedule(&s, &Policy::default(), 0).is_empty(),
        "nothing is placed while RECOVERING"
    );
    // Force completion while worker 3 is still UNKNOWN... it then becomes DEAD.
    ok(&mut s, Command::CompleteRecovery { at: at(4) });
    assert_eq!(s.workers[&wid(3)].state, WorkerState::Dead);
    let placed = schedule(&s, &Policy::default(), 0);
    assert_eq!(
        placed,
        (0..4).map(|i| exec(&app, i, 4, 1, 256)).collect::<Vec<_>>()
    );
}

#[test]
fn drivers_go_first_and_take_their_share() {
    let mut s = alive();
    add_worker(&mut s, 1, 2, 4096);
    let client = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let (_, driver) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, None),
        driver_desc(1, 512, false),
    );
    assert_eq!(
        schedule(&s, &Policy::default(), 0),
        vec![
            Placement::Driver {
                driver,
                worker: wid(1)
            },
            exec(&client, 0, 1, 1, 256)
        ]
    );
}

#[test]
fn drivers_spread_round_robin_over_shuffled_workers_or_first_fit() {
    let mut s = alive();
    for n in 1..=3 {
        add_worker(&mut s, n, 4, 4096);
    }
    let drivers: Vec<DriverId> = (0..3)
        .map(|_| {
            cluster_app(
                &mut s,
                app_desc(Some(1), 256, None),
                driver_desc(1, 256, false),
            )
            .1
        })
        .collect();
    let workers_of = |placed: Vec<Placement>| -> Vec<WorkerId> {
        placed
            .into_iter()
            .map(|p| match p {
                Placement::Driver { worker, .. } => worker,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    let mut spread = workers_of(schedule(&s, &Policy::default(), 99));
    spread.sort();
    assert_eq!(
        spread,
        vec![wid(1), wid(2), wid(3)],
        "one driver per worker"
    );
    let first_fit = Policy {
        spread_out_drivers: false,
        ..Policy::default()
    };
    assert_eq!(
        workers_of(schedule(&s, &first_fit, 99)),
        vec![wid(1), wid(1), wid(1)]
    );
    // Same seed, same answer.
    assert_eq!(
        schedule(&s, &Policy::default(), 5),
        schedule(&s, &Policy::default(), 5)
    );
    let _ = drivers;
}

#[test]
fn max_drivers_caps_placed_drivers() {
    let mut s = alive();
    add_worker(&mut s, 1, 8, 8192);
    for _ in 0..3 {
        cluster_app(
            &mut s,
            app_desc(Some(1), 256, None),
            driver_desc(1, 256, false),
        );
    }
    let policy = Policy {
        max_drivers: Some(2),
        ..Policy::default()
    };
    let (placed, _) = schedule_and_place(&mut s, &policy, 0);
    assert_eq!(placed.len(), 2);
    assert!(schedule(&s, &policy, 0).is_empty());
}

#[test]
fn a_driver_too_big_for_every_worker_waits_without_blocking_others() {
    let mut s = alive();
    add_worker(&mut s, 1, 2, 1024);
    add_worker(&mut s, 2, 8, 8192);
    let (_, big) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, None),
        driver_desc(6, 512, false),
    );
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(2),
            reason: "gone".into(),
            at: at(1),
        },
    );
    let (_, small) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, None),
        driver_desc(1, 512, false),
    );
    assert_eq!(
        schedule(&s, &Policy::default(), 3),
        vec![Placement::Driver {
            driver: small,
            worker: wid(1)
        }]
    );
    assert_eq!(s.drivers[&big].state, DriverState::Submitted);
}

#[test]
fn apps_are_served_fifo() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    let first = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let second = client_app(&mut s, app_desc(Some(1), 256, None), 1);
    let placed = schedule(&s, &Policy::default(), 0);
    assert_eq!(
        placed,
        (0..4)
            .map(|i| exec(&first, i, 1, 1, 256))
            .collect::<Vec<_>>()
    );
    assert!(s.apps[&second].executors.is_empty());
}

#[test]
fn executor_target_limits_and_scales() {
    let mut s = alive();
    add_worker(&mut s, 1, 8, 8192);
    let mut desc = app_desc(Some(1), 256, None);
    desc.initial_executor_limit = Some(1);
    let app = client_app(&mut s, desc, 0);
    assert_eq!(
        schedule_and_place(&mut s, &Policy::default(), 0).0,
        vec![exec(&app, 0, 1, 1, 256)]
    );
    ok(
        &mut s,
        Command::SetExecutorTarget {
            app: app.clone(),
            target: 3,
        },
    );
    assert_eq!(
        schedule_and_place(&mut s, &Policy::default(), 0).0,
        vec![exec(&app, 1, 1, 1, 256), exec(&app, 2, 1, 1, 256)]
    );
    let down = ok(
        &mut s,
        Command::SetExecutorTarget {
            app: app.clone(),
            target: 1,
        },
    );
    assert_eq!(
        down.actions,
        vec![
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 2
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(1),
                app: app.clone(),
                executor: 1
            }),
        ]
    );
    assert_eq!(
        s.apps[&app].executors.keys().copied().collect::<Vec<_>>(),
        vec![0]
    );
    assert!(schedule(&s, &Policy::default(), 0).is_empty());
}

#[test]
fn cluster_mode_executors_wait_for_their_driver() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    let (app, driver) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, Some(2)),
        driver_desc(1, 256, false),
    );
    let (placed, actions) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(
        placed,
        vec![Placement::Driver {
            driver: driver.clone(),
            worker: wid(1)
        }]
    );
    assert_eq!(
        actions,
        vec![Action::LaunchDriver(DriverLaunch {
            worker: wid(1),
            driver: driver.clone(),
            app: app.clone(),
            cores: 1,
            memory_mb: 256,
            supervise: false,
            command: cmd(&["sh", "-c", "sleep 1000"]),
        })]
    );
    assert!(
        schedule(&s, &Policy::default(), 0).is_empty(),
        "no driver URL yet"
    );
    ok(
        &mut s,
        Command::DriverStateChanged {
            worker: wid(1),
            driver,
            state: DriverState::Running,
            driver_url: Some("127.0.0.1:5050".into()),
            exit_code: None,
            message: String::new(),
            at: at(5),
        },
    );
    let (placed, actions) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(
        placed,
        vec![exec(&app, 0, 1, 1, 256), exec(&app, 1, 1, 1, 256)]
    );
    match &actions[0] {
        Action::LaunchExecutor(ExecutorLaunch { driver_url, .. }) => {
            assert_eq!(driver_url, "127.0.0.1:5050")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn scheduling_again_after_placing_places_nothing() {
    let mut s = alive();
    for n in 1..=5 {
        add_worker(&mut s, n, 3 + n, 1024 * u64::from(n));
    }
    client_app(&mut s, app_desc(Some(2), 700, None), 0);
    client_app(&mut s, app_desc(None, 300, Some(7)), 1);
    cluster_app(
        &mut s,
        app_desc(Some(1), 100, None),
        driver_desc(2, 900, true),
    );
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 11);
    assert!(!placed.is_empty());
    for seed in 0..20 {
        assert!(schedule(&s, &Policy::default(), seed).is_empty());
    }
}

#[test]
fn a_stale_batch_is_refused_whole_and_changes_nothing() {
    let mut s = alive();
    add_worker(&mut s, 1, 2, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let batch = schedule(&s, &Policy::default(), 0);
    assert_eq!(batch.len(), 2);
    ok(
        &mut s,
        Command::Place {
            placements: batch.clone(),
            at: T0,
        },
    );
    let before = s.clone();
    let err = apply(
        &mut s,
        &Command::Place {
            placements: batch,
            at: T0,
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        Rejection::StalePlacement(format!("executor {app}/0: expected id 2"))
    );
    assert_eq!(s, before);
    let overcommit = vec![exec(&app, 2, 1, 1, 256)];
    let err = apply(
        &mut s,
        &Command::Place {
            placements: overcommit,
            at: T0,
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        Rejection::StalePlacement(format!(
            "worker {} has 0 cores and 3584 MiB free, the batch needs 1 and 256",
            wid(1)
        ))
    );
    assert_eq!(s, before);
}

/// Every executor placed on it, per worker: what a pass (or several) left on the cluster.
fn held(s: &ClusterState) -> Vec<(WorkerId, usize)> {
    s.workers
        .values()
        .map(|w| (w.identity.id.clone(), w.executors.len()))
        .collect()
}

#[test]
fn a_capped_pass_is_the_start_of_the_whole_one_and_capped_passes_place_the_same_in_the_end() {
    let mut s = alive();
    for n in 1..=5 {
        add_worker(&mut s, n, 8, 8192);
    }
    let apps: Vec<AppId> = (0..3)
        .map(|i| client_app(&mut s, app_desc(Some(1), 256, Some(9)), i))
        .collect();
    let policy = Policy::default();
    let whole = schedule(&s, &policy, 7);
    assert_eq!(
        whole.len(),
        27,
        "3 apps of 9 one-core executors fit on 40 cores"
    );
    assert_eq!(schedule_up_to(&s, &policy, 7, 0), vec![]);
    assert_eq!(schedule_up_to(&s, &policy, 7, 4), whole[..4].to_vec());
    assert_eq!(schedule_up_to(&s, &policy, 7, 27), whole);
    assert_eq!(schedule_up_to(&s, &policy, 7, 1_000), whole);

    let mut at_once = s.clone();
    ok(
        &mut at_once,
        Command::Place {
            placements: whole,
            at: T0,
        },
    );
    let mut passes = Vec::new();
    loop {
        let pass = schedule_up_to(&s, &policy, 7, 4);
        if pass.is_empty() {
            break;
        }
        assert_eq!(pass, schedule(&s, &policy, 7)[..pass.len()].to_vec());
        passes.push(pass.len());
        ok(
            &mut s,
            Command::Place {
                placements: pass,
                at: T0,
            },
        );
        assert_eq!(s.check_invariants(), Ok(()));
    }
    assert_eq!(passes, vec![4, 4, 4, 4, 4, 4, 3]);
    assert_eq!(schedule(&s, &policy, 99), vec![], "nothing left to place");
    for app in &apps {
        assert_eq!(s.apps[app].executors.len(), 9, "{app}");
    }
    // Placed in steps, the executors are spread as evenly as one pass spreads them (each
    // step's ranking sees the cores the earlier steps took), ties going elsewhere.
    let counts = |s: &ClusterState| {
        let mut c: Vec<usize> = held(s).into_iter().map(|(_, n)| n).collect();
        c.sort();
        c
    };
    assert_eq!(counts(&at_once), vec![5, 5, 5, 6, 6]);
    assert_eq!(counts(&s), counts(&at_once));
    assert_eq!(
        held(&s),
        [6, 5, 5, 6, 5]
            .into_iter()
            .enumerate()
            .map(|(i, n)| (wid(i as u32 + 1), n))
            .collect::<Vec<_>>()
    );
}
