//! Property tests: random command sequences and random clusters.
//!
//! - `apply` never panics, refuses without changing anything, and keeps the invariants
//!   (`ClusterState::check_invariants`: resources add up, placements consistent on both
//!   sides, retention caps) after every command;
//! - the scheduler's output is always accepted (so it never over-commits a worker and never
//!   uses a non-ALIVE worker) and is stable: scheduling again, with any seed, places nothing;
//! - replaying the same commands gives the same state and byte-identical serialization;
//! - no app or driver id is ever minted twice;
//! - every drain `due_drains` calls for is accepted and leaves its worker empty and
//!   DECOMMISSIONED; states and commands round-trip through postcard.

mod common;
use common::*;
use hearth_core::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
enum Op {
    AddWorker {
        cores: u32,
        mem: u64,
    },
    LoseWorker(usize),
    Decommission(usize),
    Forget(usize),
    Reregister {
        worker: usize,
        keep_mask: u64,
        stray: bool,
    },
    /// A worker registers at another worker's address (it moved there, or that one's
    /// process was replaced): whoever held the address is lost.
    Readdress {
        worker: usize,
        to: usize,
    },
    ClientApp {
        cpe: Option<u32>,
        mem: u64,
        max: Option<u32>,
        limit: Option<u32>,
        // Which of three driver addresses: the same one with the same description is
        // a retried registration.
        url: u8,
    },
    ClusterApp {
        cpe: Option<u32>,
        mem: u64,
        dcores: u32,
        dmem: u64,
        supervise: bool,
    },
    Schedule {
        seed: u64,
        spread_apps: bool,
        spread_drivers: bool,
        sel: u8,
        default_cores: Option<u32>,
    },
    ExecReport {
        pick: usize,
        state: u8,
        exit: Option<i32>,
    },
    DriverRunning(usize),
    DriverEnds {
        pick: usize,
        state: u8,
    },
    FinishApp {
        pick: usize,
        state: u8,
    },
    KillDriver(usize),
    Scale {
        pick: usize,
        target: u32,
    },
    Limit {
        pick: usize,
        limit: u32,
    },
    KillNamed {
        pick: usize,
        mask: u8,
    },
    BeginRecovery,
    CompleteRecovery,
    Reconnect(usize),
    Config {
        retries: Option<u32>,
        retained: usize,
    },
    Advance(u64),
    Drain {
        worker: usize,
        grace: u64,
    },
    Undrain(usize),
    /// The leader's drain tick: every FinishDrain `due_drains` asks for now.
    DueDrains,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u32..12, 256u64..8192).prop_map(|(cores, mem)| Op::AddWorker { cores, mem }),
        1 => any::<usize>().prop_map(Op::LoseWorker),
        1 => any::<usize>().prop_map(Op::Decommission),
        1 => any::<usize>().prop_map(Op::Forget),
        2 => (any::<usize>(), any::<u64>(), any::<bool>())
            .prop_map(|(worker, keep_mask, stray)| Op::Reregister { worker, keep_mask, stray }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(worker, to)| Op::Readdress { worker, to }),
        3 => (proptest::option::of(1u32..4), 64u64..2048, proptest::option::of(1u32..24), proptest::option::of(0u32..6), 0u8..3)
            .prop_map(|(cpe, mem, max, limit, url)| Op::ClientApp { cpe, mem, max, limit, url }),
        2 => (proptest::option::of(1u32..4), 64u64..2048, 1u32..4, 64u64..2048, any::<bool>())
            .prop_map(|(cpe, mem, dcores, dmem, supervise)| Op::ClusterApp { cpe, mem, dcores, dmem, supervise }),
        5 => (any::<u64>(), any::<bool>(), any::<bool>(), 0u8..5, proptest::option::of(1u32..16))
            .prop_map(|(seed, spread_apps, spread_drivers, sel, default_cores)| Op::Schedule { seed, spread_apps, spread_drivers, sel, default_cores }),
        4 => (any::<usize>(), 0u8..7, proptest::option::of(prop_oneof![Just(0), Just(1), Just(137)]))
            .prop_map(|(pick, state, exit)| Op::ExecReport { pick, state, exit }),
        2 => any::<usize>().prop_map(Op::DriverRunning),
        1 => (any::<usize>(), 0u8..8).prop_map(|(pick, state)| Op::DriverEnds { pick, state }),
        1 => (any::<usize>(), 0u8..6).prop_map(|(pick, state)| Op::FinishApp { pick, state }),
        1 => any::<usize>().prop_map(Op::KillDriver),
        1 => (any::<usize>(), 0u32..5).prop_map(|(pick, target)| Op::Scale { pick, target }),
        1 => (any::<usize>(), 0u32..5).prop_map(|(pick, limit)| Op::Limit { pick, limit }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(pick, mask)| Op::KillNamed { pick, mask }),
        1 => Just(Op::BeginRecovery),
        1 => Just(Op::CompleteRecovery),
        1 => any::<usize>().prop_map(Op::Reconnect),
        1 => (proptest::option::of(1u32..4), 0usize..6).prop_map(|(retries, retained)| Op::Config { retries, retained }),
        2 => (1u64..120_000).prop_map(Op::Advance),
        1 => (any::<usize>(), 0u64..120_000).prop_map(|(worker, grace)| Op::Drain { worker, grace }),
        1 => any::<usize>().prop_map(Op::Undrain),
        1 => Just(Op::DueDrains),
    ]
}

fn nth<T: Clone>(items: impl Iterator<Item = T>, pick: usize) -> Option<T> {
    let v: Vec<T> = items.collect();
    (!v.is_empty()).then(|| v[pick % v.len()].clone())
}

fn policy(spread_apps: bool, spread_drivers: bool, sel: u8, default_cores: Option<u32>) -> Policy {
    let worker_selection = [
        WorkerSelection::CoresFreeDesc,
        WorkerSelection::CoresFreeAsc,
        WorkerSelection::MemoryFreeDesc,
        WorkerSelection::MemoryFreeAsc,
        WorkerSelection::WorkerId,
    ][sel as usize % 5];
    Policy {
        spread_out_apps: spread_apps,
        spread_out_drivers: spread_drivers,
        worker_selection,
        default_cores,
        max_drivers: None,
    }
}

/// Turns an op into a command against the current state (`None` when it has no target).
fn command(s: &ClusterState, op: &Op, now: Millis, workers_added: &mut u32) -> Option<Command> {
    let worker = |pick: usize| nth(s.workers.keys().cloned(), pick);
    let app = |pick: usize| nth(s.apps.keys().cloned(), pick);
    let driver = |pick: usize| nth(s.drivers.keys().cloned(), pick);
    Some(match op {
        Op::AddWorker { cores, mem } => {
            *workers_added += 1;
            Command::RegisterWorker {
                reg: registration(*workers_added, *cores, *mem),
                at: now,
            }
        }
        Op::LoseWorker(p) => Command::WorkerLost {
            worker: worker(*p)?,
            reason: "test".into(),
            at: now,
        },
        Op::Decommission(p) => Command::DecommissionWorker {
            worker: worker(*p)?,
        },
        Op::Forget(p) => Command::ForgetWorker {
            worker: worker(*p)?,
        },
        Op::Reregister {
            worker: p,
            keep_mask,
            stray,
        } => {
            let w = &s.workers[&worker(*p)?];
            let mut executors: Vec<ReportedExecutor> = w
                .executors
                .iter()
                .enumerate()
                .filter(|(i, _)| keep_mask & (1 << (i % 64)) != 0)
                .map(|(_, (app, executor))| ReportedExecutor {
                    app: app.clone(),
                    executor: *executor,
                    state: ExecutorState::Running,
                })
                .collect();
            if *stray {
                executors.push(ReportedExecutor {
                    app: AppId::from("app-stray"),
                    executor: 1,
                    state: ExecutorState::Running,
                });
            }
            let drivers = w
                .drivers
                .iter()
                .enumerate()
                .filter(|(i, _)| keep_mask & (1 << ((i + 32) % 64)) != 0)
                .map(|(_, d)| d.clone())
                .collect();
            let reg = WorkerRegistration {
                identity: w.identity.clone(),
                executors,
                drivers,
            };
            Command::RegisterWorker { reg, at: now }
        }
        Op::Readdress { worker: p, to } => {
            let mut identity = s.workers[&worker(*p)?].identity.clone();
            let there = &s.workers[&worker(*to)?].identity;
            identity.host = there.host.clone();
            identity.port = there.port;
            let reg = WorkerRegistration {
                identity,
                executors: vec![],
                drivers: vec![],
            };
            Command::RegisterWorker { reg, at: now }
        }
        Op::ClientApp {
            cpe,
            mem,
            max,
            limit,
            url,
        } => {
            let mut desc = app_desc(*cpe, *mem, *max);
            desc.initial_executor_limit = *limit;
            Command::RegisterApp {
                desc,
                driver: None,
                driver_url: Some(format!("127.0.0.1:{url}")),
                at: now,
            }
        }
        Op::ClusterApp {
            cpe,
            mem,
            dcores,
            dmem,
            supervise,
        } => Command::RegisterApp {
            desc: app_desc(*cpe, *mem, None),
            driver: Some(driver_desc(*dcores, *dmem, *supervise)),
            driver_url: None,
            at: now,
        },
        Op::Schedule { .. } => return None, // handled by the caller
        Op::ExecReport { pick, state, exit } => {
            let all: Vec<_> = s
                .apps
                .values()
                .flat_map(|a| a.executors.values().map(move |e| (a.id.clone(), e.clone())))
                .collect();
            let (app, e) = nth(all.into_iter(), *pick)?;
            Command::ExecutorStateChanged {
                worker: e.worker,
                app,
                executor: e.id,
                state: ExecutorState::ALL[*state as usize % ExecutorState::ALL.len()],
                exit_code: *exit,
                message: "m".into(),
                at: now,
            }
        }
        Op::DriverRunning(p) => {
            let d = &s.drivers[&driver(*p)?];
            Command::DriverStateChanged {
                worker: d.worker.clone()?,
                driver: d.id.clone(),
                state: DriverState::Running,
                driver_url: Some("127.0.0.1:2".into()),
                exit_code: None,
                message: String::new(),
                at: now,
            }
        }
        Op::DriverEnds { pick, state } => {
            let d = &s.drivers[&driver(*pick)?];
            Command::DriverStateChanged {
                worker: d
                    .worker
                    .clone()
                    .unwrap_or_else(|| WorkerId::from("nowhere")),
                driver: d.id.clone(),
                state: DriverState::ALL[*state as usize % DriverState::ALL.len()],
                driver_url: None,
                exit_code: Some(1),
                message: "ended".into(),
                at: now,
            }
        }
        Op::FinishApp { pick, state } => Command::FinishApp {
            app: app(*pick)?,
            state: AppState::ALL[*state as usize % AppState::ALL.len()],
            reason: "test".into(),
            at: now,
        },
        Op::KillDriver(p) => Command::KillDriver {
            driver: driver(*p)?,
            at: now,
        },
        Op::Scale { pick, target } => Command::SetExecutorTarget {
            app: app(*pick)?,
            target: *target,
        },
        Op::Limit { pick, limit } => Command::SetExecutorLimit {
            app: app(*pick)?,
            limit: *limit,
        },
        Op::KillNamed { pick, mask } => Command::KillExecutors {
            app: app(*pick)?,
            // Ids 0..8 by bit: some live, some ended, some never minted.
            executors: (0..8u32).filter(|i| mask & (1 << i) != 0).collect(),
        },
        Op::BeginRecovery => Command::BeginRecovery { at: now },
        Op::CompleteRecovery => Command::CompleteRecovery { at: now },
        Op::Reconnect(p) => Command::AppReconnected { app: app(*p)? },
        Op::Config { retries, retained } => Command::SetConfig(ClusterConfig {
            max_executor_retries: *retries,
            retained_apps: *retained,
            retained_drivers: *retained,
        }),
        Op::Drain { worker: p, grace } => Command::DrainWorker {
            worker: worker(*p)?,
            deadline: now.plus(*grace),
        },
        Op::Undrain(p) => Command::UndrainWorker {
            worker: worker(*p)?,
        },
        Op::Advance(_) | Op::DueDrains => return None,
    })
}

fn all_ids(s: &ClusterState) -> BTreeSet<String> {
    s.apps
        .keys()
        .map(|a| a.0.clone())
        .chain(s.completed_apps.iter().map(|a| a.id.0.clone()))
        .chain(s.drivers.keys().map(|d| d.0.clone()))
        .chain(s.completed_drivers.iter().map(|d| d.id.0.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_every_promise(ops in proptest::collection::vec(op(), 1..80)) {
        // Start as a master that has just taken over an empty cluster.
        let start = Command::BeginRecovery { at: T0 };
        let mut s = ClusterState::default();
        apply(&mut s, &start).unwrap();
        let mut log: Vec<Command> = vec![start];
        let mut now = T0;
        let mut workers_added = 0;
        let mut minted: BTreeSet<String> = BTreeSet::new();
        for op in &ops {
            let cmds = match op {
                Op::Advance(ms) => { now = now.plus(*ms); continue; }
                Op::DueDrains => {
                    // The core's own decision is always accepted, and ends every drain
                    // that is due: nothing left on the worker, DECOMMISSIONED.
                    for cmd in due_drains(&s, now) {
                        let Command::FinishDrain { worker, .. } = &cmd else { unreachable!() };
                        let worker = worker.clone();
                        let r = apply(&mut s, &cmd);
                        prop_assert!(r.is_ok(), "a due drain was refused: {:?}", r);
                        let w = &s.workers[&worker];
                        prop_assert_eq!(w.state, WorkerState::Decommissioned);
                        prop_assert!(w.executors.is_empty() && w.drivers.is_empty());
                        prop_assert_eq!(s.check_invariants(), Ok(()));
                        log.push(cmd);
                    }
                    prop_assert_eq!(due_drains(&s, now), vec![], "drains still due");
                    continue;
                }
                Op::Schedule { seed, spread_apps, spread_drivers, sel, default_cores } => {
                    let p = policy(*spread_apps, *spread_drivers, *sel, *default_cores);
                    let placements = schedule(&s, &p, *seed);
                    for pl in &placements {
                        let w = match pl { Placement::Driver { worker, .. } | Placement::Executor { worker, .. } => worker };
                        prop_assert_eq!(s.workers[w].state, WorkerState::Alive);
                    }
                    if placements.is_empty() { continue; }
                    let cmd = Command::Place { placements, at: now };
                    let r = apply(&mut s, &cmd);
                    prop_assert!(r.is_ok(), "the scheduler's own placements were refused: {:?}", r);
                    log.push(cmd);
                    prop_assert_eq!(s.check_invariants(), Ok(()));
                    for other_seed in [*seed ^ 1, seed.wrapping_add(77)] {
                        prop_assert_eq!(schedule(&s, &p, other_seed), vec![], "not stable");
                    }
                    continue;
                }
                _ => command(&s, op, now, &mut workers_added),
            };
            let Some(cmd) = cmds else { continue };
            let before = s.clone();
            let ids_before = all_ids(&s);
            match apply(&mut s, &cmd) {
                Ok(_) => {}
                Err(_) => prop_assert_eq!(&s, &before, "a refused {} changed the state", cmd.kind()),
            }
            prop_assert_eq!(s.check_invariants(), Ok(()), "after {:?}", cmd);
            for id in all_ids(&s).difference(&ids_before) {
                prop_assert!(minted.insert(id.clone()), "id {} minted twice", id);
            }
            log.push(cmd);
        }
        // Replay determinism: same commands, same state, same bytes.
        let mut replay = ClusterState::default();
        for cmd in &log {
            let _ = apply(&mut replay, cmd);
        }
        prop_assert_eq!(&replay, &s);
        prop_assert_eq!(serde_json::to_string(&replay).unwrap(), serde_json::to_string(&s).unwrap());
        // The FILESYSTEM format (postcard) round-trips every state and command, drains too.
        let bytes = postcard::to_stdvec(&s).unwrap();
        prop_assert_eq!(&postcard::from_bytes::<ClusterState>(&bytes).unwrap(), &s);
        let bytes = postcard::to_stdvec(&log).unwrap();
        prop_assert_eq!(&postcard::from_bytes::<Vec<Command>>(&bytes).unwrap(), &log);
    }

    #[test]
    fn the_scheduler_never_overcommits_and_is_stable_on_random_clusters(
        workers in proptest::collection::vec((1u32..32, 128u64..16_384, 0u8..6), 1..40),
        apps in proptest::collection::vec((proptest::option::of(1u32..6), 64u64..4096, proptest::option::of(1u32..64), proptest::option::of(0u32..20)), 0..12),
        drivers in proptest::collection::vec((1u32..6, 64u64..4096), 0..6),
        seed in any::<u64>(),
        spread_apps in any::<bool>(),
        spread_drivers in any::<bool>(),
        sel in 0u8..5,
        default_cores in proptest::option::of(1u32..32),
        max_drivers in proptest::option::of(0u32..4),
    ) {
        let mut s = alive();
        for (i, (cores, mem, kind)) in workers.iter().enumerate() {
            let w = add_worker(&mut s, i as u32, *cores, *mem);
            match kind {
                0 => { ok(&mut s, Command::WorkerLost { worker: w, reason: "x".into(), at: T0 }); }
                1 => { ok(&mut s, Command::DecommissionWorker { worker: w }); }
                2 => { ok(&mut s, Command::DrainWorker { worker: w, deadline: at(1) }); }
                _ => {}
            }
        }
        for (i, (cpe, mem, max, limit)) in apps.iter().enumerate() {
            let mut desc = app_desc(*cpe, *mem, *max);
            desc.initial_executor_limit = *limit;
            let _ = apply(&mut s, &Command::RegisterApp { desc, driver: None, driver_url: Some(format!("h:{i}")), at: T0 });
        }
        for (cores, mem) in &drivers {
            let _ = apply(&mut s, &Command::RegisterApp {
                desc: app_desc(Some(1), 64, None),
                driver: Some(driver_desc(*cores, *mem, false)),
                driver_url: None,
                at: T0,
            });
        }
        let p = Policy { max_drivers, ..policy(spread_apps, spread_drivers, sel, default_cores) };
        let placements = schedule(&s, &p, seed);
        if !placements.is_empty() {
            let r = apply(&mut s, &Command::Place { placements, at: T0 });
            prop_assert!(r.is_ok(), "refused: {:?}", r);
        }
        prop_assert_eq!(s.check_invariants(), Ok(()));
        for w in s.workers.values() {
            prop_assert!(w.cores_used <= w.identity.cores && w.memory_used_mb <= w.identity.memory_mb, "{} over-committed", w.identity.id);
        }
        for a in s.apps.values() {
            if let Some(max) = a.desc.max_cores.or(default_cores) {
                prop_assert!(a.cores_granted() <= max);
            }
            if let Some(limit) = a.executor_limit {
                prop_assert!(a.executors.len() as u32 <= limit);
            }
        }
        if let Some(m) = max_drivers {
            prop_assert!(s.drivers.values().filter(|d| d.worker.is_some()).count() as u32 <= m);
        }
        prop_assert_eq!(schedule(&s, &p, seed.wrapping_mul(31)), vec![]);
    }
}
