//! The recovery protocol ([`hearth_core::recovery`]) and the liveness rules, step by step.

mod common;
use common::*;
use hearth_core::recovery::{awaiting, next_step, Awaiting};
use hearth_core::*;

const TIMEOUT: u64 = 60_000;

/// A reading of a leader whose two clocks agree: wall and monotonic both `t`.
fn both(t: Millis) -> Now {
    Now { wall: t, mono: t }
}

/// The wall clock `ms` before `T0` (stepped back).
fn before(ms: u64) -> Millis {
    Millis(T0.0 - ms)
}

/// The leader took over at `at(10_000)`, on both clocks (see [`recovering`]).
const BEGAN: Millis = Millis(T0.0 + 10_000);

/// Two workers; a client-mode app with one executor on each; a supervised cluster-mode
/// app whose driver runs on worker 1 with one executor on worker 2. Then a new leader
/// takes over at `at(10_000)`.
fn recovering() -> (ClusterState, AppId, AppId, DriverId) {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    add_worker(&mut s, 2, 4, 8192);
    let client = client_app(&mut s, app_desc(Some(1), 256, Some(2)), 0);
    let policy = Policy {
        spread_out_drivers: false,
        ..Policy::default()
    };
    schedule_and_place(&mut s, &policy, 0);
    let (cluster, driver) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, Some(1)),
        driver_desc(1, 256, true),
    );
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
    assert_eq!(spread(&s, &client), vec![(wid(1), 1), (wid(2), 1)]);
    assert_eq!(spread(&s, &cluster), vec![(wid(2), 1)]);
    ok(&mut s, Command::BeginRecovery { at: at(10_000) });
    (s, client, cluster, driver)
}

fn report(n: u32, executors: &[(&AppId, u32)], drivers: &[&DriverId]) -> Command {
    let mut reg = registration(n, 4, 8192);
    reg.executors = executors
        .iter()
        .map(|(app, executor)| ReportedExecutor {
            app: (*app).clone(),
            executor: *executor,
            state: ExecutorState::Running,
        })
        .collect();
    reg.drivers = drivers.iter().map(|d| (*d).clone()).collect();
    Command::RegisterWorker {
        reg,
        at: at(10_100),
    }
}

#[test]
fn begin_marks_everything_that_must_answer_unknown() {
    let (s, client, cluster, driver) = recovering();
    assert_eq!(s.role, MasterRole::Recovering);
    assert_eq!(s.recovery_started_at, Some(at(10_000)));
    assert_eq!(
        awaiting(&s),
        Awaiting {
            workers: vec![wid(1), wid(2)],
            apps: vec![client.clone(), cluster.clone()]
        }
    );
    assert_eq!(s.drivers[&driver].state, DriverState::Unknown);
    // Executors and resources are kept while waiting: nothing is reported as zero workers.
    assert_eq!(s.workers[&wid(1)].cores_used, 2);
    assert_eq!(
        next_step(&s, both(at(10_000 + TIMEOUT - 1)), BEGAN, TIMEOUT),
        None
    );
    assert!(schedule(&s, &Policy::default(), 0).is_empty());
}

#[test]
fn a_master_with_nothing_to_recover_is_alive_at_once() {
    let mut s = ClusterState::default();
    assert_eq!(s.role, MasterRole::Standby);
    ok(&mut s, Command::BeginRecovery { at: T0 });
    assert_eq!(s.role, MasterRole::Alive);
    assert_eq!(next_step(&s, both(T0), T0, TIMEOUT), None);
}

#[test]
fn reports_are_reconciled_and_recovery_completes_as_soon_as_all_answered() {
    let (mut s, client, cluster, driver) = recovering();
    // Worker 1 runs the client app's executor 0 and the driver, plus a stray executor the
    // state does not know (placed by a deposed leader): it is killed.
    let w1 = ok(&mut s, report(1, &[(&client, 0), (&client, 7)], &[&driver]));
    assert_eq!(w1.outcome, Outcome::WorkerRegistered { duplicate: false });
    assert_eq!(
        w1.actions,
        vec![Action::KillExecutor(ExecutorKill {
            worker: wid(1),
            app: client.clone(),
            executor: 7
        })]
    );
    assert_eq!(s.drivers[&driver].state, DriverState::Running);
    assert_eq!(
        s.apps[&cluster].state,
        AppState::Running,
        "the cluster app answered through its driver"
    );
    // Worker 2 lost the client app's executor 1 (the process died while the master was
    // away) but still runs the cluster app's executor 0, re-adopted with its id.
    let w2 = ok(&mut s, report(2, &[(&cluster, 0)], &[]));
    assert_eq!(w2.actions, vec![]);
    assert_eq!(
        s.apps[&client]
            .executors
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(s.apps[&cluster].executors[&0].state, ExecutorState::Running);
    assert_eq!(
        s.apps[&client].retry_count, 0,
        "LOST in recovery is not a failure"
    );
    // The client-mode app is still waiting for its submitter.
    assert_eq!(
        awaiting(&s),
        Awaiting {
            workers: vec![],
            apps: vec![client.clone()]
        }
    );
    assert_eq!(next_step(&s, both(at(10_200)), BEGAN, TIMEOUT), None);
    ok(
        &mut s,
        Command::AppReconnected {
            app: client.clone(),
        },
    );
    assert_eq!(s.apps[&client].state, AppState::Running);
    // Everyone answered: complete now, not at the timeout.
    let step = next_step(&s, both(at(10_300)), BEGAN, TIMEOUT);
    assert_eq!(step, Some(Command::CompleteRecovery { at: at(10_300) }));
    let done = ok(&mut s, step.unwrap());
    assert_eq!(done.actions, vec![]);
    assert_eq!(s.role, MasterRole::Alive);
    // The lost executor is replaced.
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(placed.len(), 1);
}

#[test]
fn at_the_timeout_silent_workers_die_supervised_drivers_relaunch_silent_apps_fail() {
    let (mut s, client, cluster, driver) = recovering();
    ok(&mut s, report(2, &[(&client, 1), (&cluster, 0)], &[]));
    assert_eq!(
        next_step(&s, both(at(10_000 + TIMEOUT - 1)), BEGAN, TIMEOUT),
        None
    );
    let step = next_step(&s, both(at(10_000 + TIMEOUT)), BEGAN, TIMEOUT).expect("timeout passed");
    let done = ok(&mut s, step);
    assert_eq!(s.role, MasterRole::Alive);
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Dead);
    // The supervised driver on the silent worker is relaunched; the cluster app's old
    // executor (on worker 2) served the dead driver and is killed.
    assert_eq!(
        s.find_driver(&driver).unwrap().state,
        DriverState::Relaunching
    );
    assert_eq!(s.apps[&cluster].state, AppState::Waiting);
    let new_driver = s.apps[&cluster].driver.clone().unwrap();
    assert_eq!(s.drivers[&new_driver].state, DriverState::Submitted);
    // The client app never reconnected: FAILED, its surviving executor killed.
    let c = s.find_app(&client).unwrap();
    assert_eq!(c.state, AppState::Failed);
    assert_eq!(
        c.end_reason.as_deref(),
        Some("its driver did not reconnect within the recovery timeout after the master changed")
    );
    assert_eq!(
        done.actions,
        vec![
            Action::KillExecutor(ExecutorKill {
                worker: wid(2),
                app: cluster.clone(),
                executor: 0
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(2),
                app: client.clone(),
                executor: 1
            }),
        ]
    );
    assert_eq!(s.workers[&wid(2)].cores_used, 0);
    let (placed, _) = schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(
        placed,
        vec![Placement::Driver {
            driver: new_driver,
            worker: wid(2)
        }]
    );
}

#[test]
fn a_worker_that_answers_without_an_expected_driver_gets_it_relaunched_and_strays_killed() {
    let (mut s, client, cluster, driver) = recovering();
    let stray = DriverId::from("driver-19990101000000-0042");
    let w1 = ok(&mut s, report(1, &[(&client, 0)], &[&stray]));
    assert_eq!(
        w1.actions,
        vec![
            Action::KillDriver(DriverKill {
                worker: wid(1),
                driver: stray
            }),
            Action::KillExecutor(ExecutorKill {
                worker: wid(2),
                app: cluster.clone(),
                executor: 0
            }),
        ]
    );
    assert_eq!(
        s.find_driver(&driver).unwrap().state,
        DriverState::Relaunching
    );
    assert_eq!(
        s.apps[&cluster].state,
        AppState::Waiting,
        "relaunching answers for the app"
    );
}

#[test]
fn a_second_leader_change_during_recovery_starts_over() {
    let (mut s, client, _, driver) = recovering();
    ok(&mut s, report(1, &[(&client, 0)], &[&driver]));
    ok(&mut s, Command::BeginRecovery { at: at(20_000) });
    assert_eq!(s.recovery_started_at, Some(at(20_000)));
    assert_eq!(awaiting(&s).workers, vec![wid(1), wid(2)]);
    assert_eq!(
        next_step(&s, both(at(20_000 + TIMEOUT - 1)), at(20_000), TIMEOUT),
        None
    );
}

#[test]
fn completing_when_not_recovering_changes_nothing() {
    let mut s = alive();
    let before = s.clone();
    assert_eq!(
        ok(&mut s, Command::CompleteRecovery { at: T0 }).outcome,
        Outcome::Unchanged
    );
    assert_eq!(s, before);
}

#[test]
fn a_dead_worker_that_comes_back_has_its_old_executors_killed() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    let app = client_app(&mut s, app_desc(Some(1), 256, Some(1)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "partition".into(),
            at: at(70_000),
        },
    );
    let back = ok(&mut s, report(1, &[(&app, 0)], &[]));
    assert_eq!(back.outcome, Outcome::WorkerRegistered { duplicate: false });
    assert_eq!(
        back.actions,
        vec![Action::KillExecutor(ExecutorKill {
            worker: wid(1),
            app: app.clone(),
            executor: 0
        })]
    );
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Alive);
    assert_eq!(s.workers[&wid(1)].dead_since, None);
}

// ---- liveness ----

fn cfg() -> LivenessConfig {
    LivenessConfig {
        worker_timeout_ms: TIMEOUT,
        dead_worker_persistence: 15,
        app_timeout_ms: 30_000,
    }
}

#[test]
fn a_worker_times_out_strictly_after_the_timeout() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    let mut heard = LastHeard::new(T0);
    heard.workers.insert(wid(1), at(1_000));
    assert_eq!(
        liveness_commands(&s, &heard, both(at(1_000 + TIMEOUT)), &cfg()),
        vec![]
    );
    assert_eq!(
        liveness_commands(&s, &heard, both(at(1_001 + TIMEOUT)), &cfg()),
        vec![Command::WorkerLost {
            worker: wid(1),
            reason: "no heartbeat for 60001 ms (worker timeout 60000 ms)".into(),
            at: at(1_001 + TIMEOUT),
        }]
    );
}

#[test]
fn a_new_leader_gives_every_worker_a_fresh_grace_period() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    let mut heard = LastHeard::new(at(500_000));
    heard.workers.insert(wid(1), T0); // long ago, heard by the previous leader
    assert_eq!(
        liveness_commands(&s, &heard, both(at(500_000 + TIMEOUT)), &cfg()),
        vec![]
    );
    assert_eq!(
        liveness_commands(&s, &heard, both(at(500_001 + TIMEOUT)), &cfg()).len(),
        1
    );
}

#[test]
fn dead_workers_are_forgotten_after_the_persistence_period() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    let mut heard = LastHeard::new(T0);
    heard.workers.insert(wid(1), at(1_000));
    let lost = liveness_commands(&s, &heard, both(at(1_001 + TIMEOUT)), &cfg());
    assert_eq!(lost.len(), 1);
    ok(&mut s, lost[0].clone());
    assert_eq!(s.workers[&wid(1)].state, WorkerState::Dead);
    // DEAD after one timeout, then listed for dead_worker_persistence + 1 more.
    assert_eq!(
        liveness_commands(&s, &heard, both(at(1_000 + 17 * TIMEOUT)), &cfg()),
        vec![]
    );
    assert_eq!(
        liveness_commands(&s, &heard, both(at(1_001 + 17 * TIMEOUT)), &cfg()),
        vec![Command::ForgetWorker { worker: wid(1) }]
    );
}

#[test]
fn a_client_mode_app_whose_submitter_vanished_fails() {
    let mut s = alive();
    let app = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    cluster_app(
        &mut s,
        app_desc(Some(1), 256, None),
        driver_desc(1, 256, false),
    );
    let mut heard = LastHeard::new(T0);
    heard.apps.insert(app.clone(), at(5_000));
    assert_eq!(
        liveness_commands(&s, &heard, both(at(35_000)), &cfg()),
        vec![]
    );
    assert_eq!(
        liveness_commands(&s, &heard, both(at(35_001)), &cfg()),
        vec![Command::FinishApp {
            app,
            state: AppState::Failed,
            reason: "its driver stopped heartbeating 30001 ms ago".into(),
            at: at(35_001),
        }]
    );
}

/// Two live workers and a client-mode app, all last heard at monotonic 5_000 by a leader
/// that took over at monotonic 1 (its wall clock then read about `at(5_000)`).
fn heard_at_mono_5s() -> (ClusterState, AppId, LastHeard) {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    add_worker(&mut s, 2, 4, 4096);
    let app = client_app(&mut s, app_desc(Some(1), 256, None), 0);
    let mut heard = LastHeard::new(Millis(1));
    heard.workers.insert(wid(1), Millis(5_000));
    heard.workers.insert(wid(2), Millis(5_000));
    heard.apps.insert(app.clone(), Millis(5_000));
    (s, app, heard)
}

/// HA hole 6: a forward wall-clock step of more than the worker timeout (NTP) declared
/// every worker lost and failed every client-mode app.
#[test]
fn a_wall_clock_stepped_forward_loses_no_worker_and_fails_no_app() {
    let (s, _, heard) = heard_at_mono_5s();
    // One second later, with the wall clock stepped two minutes ahead.
    let now = Now {
        wall: at(5_000 + 1_000 + 120_000),
        mono: Millis(6_000),
    };
    assert_eq!(liveness_commands(&s, &heard, now, &cfg()), vec![]);
}

/// HA hole 6: a backward wall-clock step delayed failure detection by its size.
#[test]
fn a_wall_clock_stepped_back_still_loses_silent_workers_and_apps_on_time() {
    let (s, app, heard) = heard_at_mono_5s();
    let wall = before(120_000);
    let quiet = Now {
        wall,
        mono: Millis(5_000 + 30_000),
    };
    assert_eq!(liveness_commands(&s, &heard, quiet, &cfg()), vec![]);
    let now = Now {
        wall,
        mono: Millis(5_001 + TIMEOUT),
    };
    let lost = |n| Command::WorkerLost {
        worker: wid(n),
        reason: "no heartbeat for 60001 ms (worker timeout 60000 ms)".into(),
        at: wall,
    };
    assert_eq!(
        liveness_commands(&s, &heard, now, &cfg()),
        vec![
            lost(1),
            lost(2),
            Command::FinishApp {
                app,
                state: AppState::Failed,
                reason: "its driver stopped heartbeating 60001 ms ago".into(),
                at: wall,
            }
        ]
    );
}

/// HA hole 6: a DEAD worker was forgotten by comparing the wall clock with `dead_since`,
/// a wall-clock label (possibly another leader's clock).
#[test]
fn a_dead_worker_is_forgotten_on_the_leaders_monotonic_clock() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 4096);
    ok(
        &mut s,
        Command::WorkerLost {
            worker: wid(1),
            reason: "x".into(),
            at: T0,
        },
    );
    // This leader took over at monotonic 1 and has not heard from it since.
    let heard = LastHeard::new(Millis(1));
    // A day later on the wall clock, one timeout on the monotonic one: still listed.
    let ahead = Now {
        wall: at(86_400_000),
        mono: Millis(1 + TIMEOUT),
    };
    assert_eq!(liveness_commands(&s, &heard, ahead, &cfg()), vec![]);
    // The wall clock stepped back before `dead_since`: forgotten on time all the same.
    let forget_after = (u64::from(cfg().dead_worker_persistence) + 2) * TIMEOUT;
    let behind = |mono| Now {
        wall: before(120_000),
        mono: Millis(mono),
    };
    assert_eq!(
        liveness_commands(&s, &heard, behind(1 + forget_after), &cfg()),
        vec![]
    );
    assert_eq!(
        liveness_commands(&s, &heard, behind(2 + forget_after), &cfg()),
        vec![Command::ForgetWorker { worker: wid(1) }]
    );
}

/// HA hole 6: the recovery timeout ran from the replicated wall-clock
/// `recovery_started_at`, so a wall-clock step ended recovery early or late.
#[test]
fn a_wall_clock_step_neither_ends_recovery_early_nor_prolongs_it() {
    let (s, ..) = recovering();
    assert_eq!(s.recovery_started_at, Some(at(10_000)), "a label only");
    // This leader began recovery at monotonic 7.
    let began = Millis(7);
    // One second in, the wall clock stepped past recovery_started_at + the timeout.
    let ahead = Now {
        wall: at(10_000 + TIMEOUT + 120_000),
        mono: Millis(7 + 1_000),
    };
    assert_eq!(next_step(&s, ahead, began, TIMEOUT), None);
    // The wall clock stepped back before recovery began: the timeout still ends it.
    let wall = before(120_000);
    let behind = |mono| Now {
        wall,
        mono: Millis(mono),
    };
    assert_eq!(next_step(&s, behind(7 + TIMEOUT - 1), began, TIMEOUT), None);
    assert_eq!(
        next_step(&s, behind(7 + TIMEOUT), began, TIMEOUT),
        Some(Command::CompleteRecovery { at: wall })
    );
}

/// Regression: a live worker re-registering with a report composed before a launch reached
/// it must not have that launch declared LOST (it was relaunched, then the real process
/// was killed as unknown).
#[test]
fn a_live_workers_stale_report_does_not_lose_launches_in_flight() {
    let mut s = alive();
    add_worker(&mut s, 1, 4, 8192);
    let (app, driver) = cluster_app(
        &mut s,
        app_desc(Some(1), 256, Some(1)),
        driver_desc(1, 256, true),
    );
    let client = client_app(&mut s, app_desc(Some(1), 256, Some(1)), 0);
    schedule_and_place(&mut s, &Policy::default(), 0);
    assert_eq!(s.drivers[&driver].worker, Some(wid(1)));
    assert_eq!(s.apps[&client].executors.len(), 1);
    let before = s.clone();
    // The report knows neither the driver nor the executor yet.
    let again = ok(&mut s, report(1, &[], &[]));
    assert_eq!(again.outcome, Outcome::WorkerRegistered { duplicate: true });
    assert_eq!(again.actions, vec![]);
    assert_eq!(s, before, "nothing lost, nothing relaunched");
    let _ = app;
}

/// What worker `n` offers with its leader watch: what the state places on it, with the
/// executors' states as the state has them (all LAUNCHING here: none reported RUNNING).
fn offer_of_state(s: &ClusterState, n: u32) -> WorkerRegistration {
    let w = &s.workers[&wid(n)];
    let mut reg = registration(n, 4, 8192);
    reg.executors = (w.executors.iter())
        .map(|(app, executor)| ReportedExecutor {
            app: app.clone(),
            executor: *executor,
            state: s.apps[app].executors[executor].state,
        })
        .collect();
    reg.drivers = w.drivers.iter().cloned().collect();
    reg
}

fn adoption(reg: &WorkerRegistration) -> Adoption {
    Adoption {
        identity: reg.identity.clone(),
        fingerprint: hearth_core::recovery::report_fingerprint(reg),
    }
}

#[test]
fn a_new_leader_adopts_a_worker_whose_offer_matches_the_state_as_its_registration_would() {
    let (mut s, client, cluster, driver) = recovering();
    let (w1, w2) = (offer_of_state(&s, 1), offer_of_state(&s, 2));
    // The offers are what `recovering` placed: client executor 0 and the driver on 1,
    // client executor 1 and the cluster app's executor 0 on 2, none RUNNING yet.
    let launching = ExecutorState::Launching;
    let reported = |reg: &WorkerRegistration| {
        (reg.executors.iter())
            .map(|e| (e.app.clone(), e.executor, e.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(reported(&w1), vec![(client.clone(), 0, launching)]);
    assert_eq!(w1.drivers, vec![driver.clone()]);
    assert_eq!(
        reported(&w2),
        vec![
            (client.clone(), 1, launching),
            (cluster.clone(), 0, launching)
        ]
    );
    for (n, reg) in [(1, &w1), (2, &w2)] {
        assert_eq!(
            hearth_core::recovery::expected_fingerprint(&s, &wid(n)),
            Some(hearth_core::recovery::report_fingerprint(reg))
        );
    }
    let mut registered = s.clone();
    for reg in [&w1, &w2] {
        ok(
            &mut registered,
            Command::RegisterWorker {
                reg: reg.clone(),
                at: at(10_100),
            },
        );
    }
    let adopted = ok(
        &mut s,
        Command::AdoptWorkers {
            workers: vec![adoption(&w1), adoption(&w2)],
            at: at(10_100),
        },
    );
    assert_eq!(
        adopted.outcome,
        Outcome::WorkersAdopted {
            workers: vec![wid(1), wid(2)]
        }
    );
    assert_eq!(adopted.actions, vec![]);
    // Exactly the state the two registrations make: both ALIVE, the driver RUNNING, the
    // cluster app checked in through it; only the client-mode app is still awaited.
    assert_eq!(s, registered);
    assert_eq!(
        awaiting(&s),
        Awaiting {
            workers: vec![],
            apps: vec![client]
        }
    );
    assert_eq!(s.drivers[&driver].state, DriverState::Running);
}

#[test]
fn an_offer_that_differs_from_the_state_adopts_nothing_and_loses_nothing() {
    let (s, client, cluster, driver) = recovering();
    let exact = offer_of_state(&s, 2);
    let mut differing = Vec::new();
    // It predates a launch (the state placed more than the worker said it runs).
    let mut fewer = exact.clone();
    fewer.executors.pop();
    differing.push(fewer);
    // It runs something the state does not place there (a deposed leader's launch).
    let mut more = exact.clone();
    more.executors.push(ReportedExecutor {
        app: cluster.clone(),
        executor: 9,
        state: ExecutorState::Running,
    });
    differing.push(more);
    // An executor RUNNING that the state still has LAUNCHING (its report is on its way).
    let mut running = exact.clone();
    running.executors[0].state = ExecutorState::Running;
    differing.push(running);
    // A driver the state placed elsewhere.
    let mut driver_too = exact.clone();
    driver_too.drivers.push(driver.clone());
    differing.push(driver_too);
    for offer in differing {
        assert_ne!(
            hearth_core::recovery::expected_fingerprint(&s, &wid(2)),
            Some(hearth_core::recovery::report_fingerprint(&offer))
        );
        let mut after = s.clone();
        let applied = ok(
            &mut after,
            Command::AdoptWorkers {
                workers: vec![adoption(&offer)],
                at: at(10_100),
            },
        );
        assert_eq!(applied.outcome, Outcome::Unchanged, "{offer:?}");
        assert_eq!(applied.actions, vec![]);
        assert_eq!(after, s, "{offer:?}");
    }
    assert_eq!(spread(&s, &client), vec![(wid(1), 1), (wid(2), 1)]);
}

#[test]
fn only_an_unknown_worker_is_adopted() {
    let (mut s, _, _, _) = recovering();
    let (w1, w2) = (offer_of_state(&s, 1), offer_of_state(&s, 2));
    ok(
        &mut s,
        Command::RegisterWorker {
            reg: w1.clone(),
            at: at(10_050),
        },
    );
    let mut stranger = registration(3, 4, 8192);
    stranger.executors = vec![];
    let applied = ok(
        &mut s,
        Command::AdoptWorkers {
            workers: vec![adoption(&w1), adoption(&w2), adoption(&stranger)],
            at: at(10_100),
        },
    );
    // Worker 1 already registered, worker 3 was never known: only 2 is adopted.
    assert_eq!(
        applied.outcome,
        Outcome::WorkersAdopted {
            workers: vec![wid(2)]
        }
    );
    assert!(!s.workers.contains_key(&wid(3)));
}

#[test]
fn a_report_fingerprints_the_same_in_any_order_and_without_ended_executors() {
    let (s, client, cluster, _) = recovering();
    let exact = offer_of_state(&s, 2);
    let mut shuffled = exact.clone();
    shuffled.executors.reverse();
    // An executor that ended counts for nothing; one reported twice counts once.
    shuffled.executors.push(ReportedExecutor {
        app: client.clone(),
        executor: 5,
        state: ExecutorState::Exited,
    });
    shuffled.executors.push(shuffled.executors[0].clone());
    let print = hearth_core::recovery::report_fingerprint;
    assert_eq!(print(&shuffled), print(&exact));
    let mut other = exact.clone();
    other.executors[0].app = cluster;
    assert_ne!(print(&other), print(&exact));
    // An app id that runs into the executor id is not another app's executor.
    let a = |app: &str, e: u32| ReportedExecutor {
        app: AppId(app.into()),
        executor: e,
        state: ExecutorState::Running,
    };
    let (mut x, mut y) = (exact.clone(), exact);
    x.executors = vec![a("app-1", 12)];
    y.executors = vec![a("app-11", 2)];
    assert_ne!(print(&x), print(&y));
}
