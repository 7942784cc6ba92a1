//! The engine without processes: exact sequences of views and answers in, exact timings
//! and tallies out.

use super::*;
use hearth_core::MasterRole::{Alive, Recovering, Standby};
use hearth_core::{AppId, MasterRole};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const M1: &str = "127.0.0.1:7001";
const M2: &str = "127.0.0.1:7002";
const M3: &str = "127.0.0.1:7003";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A master's view: its role, the leader it names, ALIVE workers, and active apps as
/// (id, name, RUNNING executors).
fn v(
    role: MasterRole,
    leader: Option<&str>,
    workers: usize,
    apps: &[(&str, &str, &[u32])],
) -> MasterView {
    MasterView {
        role,
        leader: leader.map(str::to_owned),
        alive_workers: workers,
        apps: apps
            .iter()
            .map(|(id, name, running)| AppSeen {
                id: AppId::from(*id),
                name: (*name).to_owned(),
                active: true,
                running: running.to_vec(),
            })
            .collect(),
    }
}

fn leader_watch(ignore: Option<&str>, counted_on: CountedOn) -> Watch {
    Watch {
        target: Target::Leader,
        old_leader: M1.into(),
        ignore: ignore.map(str::to_owned),
        workers: 2,
        placement: Placement::NewApp("round-1".into()),
        counted_on,
    }
}

/// Feeds `views` (ms after t0, master, view) in order.
fn feed(round: &mut Round, t0: Instant, views: &[(u64, &str, MasterView)]) {
    for (t, m, view) in views {
        round.observe(m, t0 + ms(*t), view);
    }
}

#[test]
fn a_killed_leader_each_step_timed_when_first_seen_on_a_survivor() {
    let t0 = Instant::now();
    let mut r = Round::new(leader_watch(Some(M1), CountedOn::Acting), t0);
    let app = [("app-1", "round-1", &[0u32][..])];
    feed(
        &mut r,
        t0,
        &[
            (10, M2, v(Standby, Some(M1), 2, &[])),
            (120, M2, v(Standby, Some(M3), 2, &[])),
            (150, M3, v(Recovering, Some(M3), 1, &[])),
            (180, M3, v(Recovering, Some(M3), 2, &[])),
            (200, M3, v(Alive, Some(M3), 2, &[("app-1", "round-1", &[])])),
        ],
    );
    assert!(!r.seen_all());
    assert_eq!(
        r.missing(),
        ["the first new placement", "the submission's answer"]
    );
    r.submitted(t0 + ms(210), Ok(AppId::from("app-1")));
    feed(&mut r, t0, &[(260, M3, v(Alive, Some(M3), 2, &app))]);
    assert!(r.done());
    assert_eq!(
        r.timings(),
        Timings {
            elected: Some(ms(120)),
            leading: Some(ms(150)),
            alive: Some(ms(200)),
            placed: Some(ms(260)),
            workers_back: Some(ms(180)),
            submitted: Some(ms(210)),
        }
    );
    assert_eq!(r.leader(), Some(M3));
    assert_eq!(r.app(), Some(&Ok(AppId::from("app-1"))));
}

#[test]
fn views_arriving_out_of_order_keep_the_earliest() {
    let t0 = Instant::now();
    let mut r = Round::new(leader_watch(Some(M1), CountedOn::Acting), t0);
    feed(
        &mut r,
        t0,
        &[
            (300, M2, v(Alive, Some(M2), 2, &[])),
            (250, M3, v(Standby, Some(M2), 2, &[])),
            (240, M2, v(Alive, Some(M2), 1, &[])),
        ],
    );
    let t = r.timings();
    assert_eq!(
        (t.elected, t.leading, t.alive),
        (Some(ms(240)), Some(ms(240)), Some(ms(240)))
    );
    assert_eq!(t.workers_back, Some(ms(300)));
}

#[test]
fn a_frozen_leader_that_still_claims_to_lead_does_not_count() {
    let t0 = Instant::now();
    let mut r = Round::new(leader_watch(Some(M1), CountedOn::Alive), t0);
    let app = [("app-1", "round-1", &[0u32][..])];
    feed(&mut r, t0, &[(2100, M1, v(Alive, Some(M1), 2, &app))]);
    assert_eq!(r.timings(), Timings::default());
    assert_eq!(r.leader(), None);
    assert!(r.last_views().is_empty());
}

#[test]
fn counted_on_alive_ignores_a_recovering_leaders_workers_and_placements() {
    let t0 = Instant::now();
    let mut r = Round::new(leader_watch(None, CountedOn::Alive), t0);
    let app = [("app-1", "round-1", &[0u32][..])];
    feed(
        &mut r,
        t0,
        &[
            (400, M2, v(Recovering, Some(M2), 2, &app)),
            (520, M2, v(Alive, Some(M2), 2, &app)),
        ],
    );
    let t = r.timings();
    assert_eq!((t.leading, t.alive), (Some(ms(400)), Some(ms(520))));
    assert_eq!((t.placed, t.workers_back), (Some(ms(520)), Some(ms(520))));
    // The same views, counted on any acting leader.
    let mut r = Round::new(leader_watch(None, CountedOn::Acting), t0);
    feed(&mut r, t0, &[(400, M2, v(Recovering, Some(M2), 2, &app))]);
    assert_eq!(
        (r.timings().placed, r.timings().workers_back),
        (Some(ms(400)), Some(ms(400)))
    );
}

#[test]
fn a_restarted_old_leader_leading_again_is_a_new_leader_but_no_election() {
    let t0 = Instant::now();
    let mut r = Round::new(leader_watch(None, CountedOn::Alive), t0);
    r.submitted(t0 + ms(90), Ok(AppId::from("app-1")));
    let app = [("app-1", "round-1", &[0u32][..])];
    feed(
        &mut r,
        t0,
        &[
            (30, M1, v(Standby, None, 2, &[])),
            (80, M1, v(Alive, Some(M1), 2, &app)),
        ],
    );
    let t = r.timings();
    assert_eq!(
        (t.elected, t.leading, t.alive),
        (None, Some(ms(80)), Some(ms(80)))
    );
    assert!(r.done(), "{:?}", r.missing());
}

#[test]
fn a_killed_workers_executor_replaced_elsewhere() {
    let t0 = Instant::now();
    let probe = AppId::from("app-probe");
    let watch = Watch {
        target: Target::Worker,
        old_leader: M1.into(),
        ignore: None,
        workers: 2,
        placement: Placement::Replaced {
            app: probe.clone(),
            before: vec![0, 1],
            expected: 2,
        },
        counted_on: CountedOn::Alive,
    };
    let mut r = Round::new(watch, t0);
    let probe_running =
        |execs: &'static [u32]| v(Alive, Some(M1), 2, &[("app-probe", "drill-probe", execs)]);
    feed(
        &mut r,
        t0,
        &[
            (5, M2, v(Standby, Some(M1), 2, &[])),
            (10, M1, probe_running(&[0, 1])),
            (
                2200,
                M1,
                v(Alive, Some(M1), 1, &[("app-probe", "drill-probe", &[0])]),
            ),
            (2260, M1, probe_running(&[0, 2])),
        ],
    );
    let t = r.timings();
    // The leader never changed; the worker counts as back before the master noticed it
    // gone (the figure is the leader's count, not the worker's).
    assert_eq!((t.elected, t.leading, t.alive), (None, None, None));
    assert_eq!((t.placed, t.workers_back), (Some(ms(2260)), Some(ms(10))));
    assert!(r.seen_all() && !r.done());
    r.submitted(
        t0 + ms(3000),
        Err("the submission failed: no leader".into()),
    );
    assert!(r.done());
    assert_eq!(
        r.app(),
        Some(&Err("the submission failed: no leader".into()))
    );
}

#[test]
fn nothing_seen_everything_missing() {
    let r = Round::new(leader_watch(Some(M1), CountedOn::Acting), Instant::now());
    assert_eq!(
        r.missing(),
        [
            "a new leader",
            "an ALIVE leader",
            "the first new placement",
            "every worker back",
            "the submission's answer"
        ]
    );
    assert!(!r.seen_all() && !r.done());
}

#[test]
fn acknowledged_apps_missing_renamed_or_listed_twice() {
    let mut view = v(
        Alive,
        Some(M1),
        2,
        &[
            ("app-1", "a", &[]),
            ("app-2", "b", &[]),
            ("app-5", "b", &[]),
            ("app-9", "c", &[]),
        ],
    );
    view.apps[0].active = false; // completed apps count too
    let acked: BTreeMap<String, AppId> = [
        ("a", "app-1"),
        ("b", "app-2"),
        ("c", "app-3"),
        ("d", "app-4"),
    ]
    .into_iter()
    .map(|(n, id)| (n.to_owned(), AppId::from(id)))
    .collect();
    assert_eq!(
        Tally::of_apps(&view, &acked),
        Tally {
            lost: 2,
            doubled: 1
        }
    );
    let mut all = Tally::default();
    all += Tally::of_kept(&[11, 12, 13], &[12, 13, 14, 15]);
    assert_eq!(
        all,
        Tally {
            lost: 1,
            doubled: 2
        }
    );
    all += Tally::of_count(2, 1);
    all += Tally::of_count(2, 4);
    assert_eq!(
        all,
        Tally {
            lost: 2,
            doubled: 4
        }
    );
    assert!(Tally::of_count(2, 2).is_clean() && !all.is_clean());
}

#[test]
fn distributions_are_nearest_rank() {
    assert_eq!(Distribution::of([]), Distribution::default());
    let d = Distribution::of([ms(300), ms(100), ms(200)]);
    assert_eq!(
        (d.n, d.p50, d.p99, d.max),
        (3, Some(ms(200)), Some(ms(300)), Some(ms(300)))
    );
    let d = Distribution::of([ms(4), ms(1), ms(3), ms(2)]);
    assert_eq!(d.p50, Some(ms(2)), "the lower middle of an even count");
    let d = Distribution::of((1..=200).map(ms));
    assert_eq!(
        (d.p50, d.p99, d.max),
        (Some(ms(100)), Some(ms(198)), Some(ms(200)))
    );
}

#[tokio::test]
async fn a_round_runs_until_everything_is_seen_and_the_submission_answered() {
    let polling = Polling {
        masters: vec![M1.into(), M2.into(), M3.into()],
        every: ms(1),
        within: Duration::from_secs(10),
    };
    let polled = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = polled.clone();
    let view = move |m: String| {
        seen.lock().unwrap().push(m.clone());
        async move {
            let app = [("app-1", "round-1", &[0u32][..])];
            (m == M2).then(|| v(Alive, Some(M2), 2, &app))
        }
    };
    let submit = async { Ok::<_, String>(AppId::from("app-1")) };
    let fault = async { Ok::<_, String>(()) };
    let watch = leader_watch(Some(M1), CountedOn::Alive);
    let r = run_round(watch, &polling, fault, submit, view)
        .await
        .unwrap();
    assert!(r.done(), "{:?}", r.missing());
    assert_eq!(r.leader(), Some(M2));
    assert!(
        !polled.lock().unwrap().iter().any(|m| m == M1),
        "the ignored master is not polled"
    );
    // A fault that fails ends the round before anything starts.
    let failed = run_round(
        leader_watch(None, CountedOn::Alive),
        &polling,
        async { Err::<(), _>("refused".to_owned()) },
        async { Ok::<_, String>(AppId::from("never")) },
        |_m: String| async { None },
    )
    .await;
    assert_eq!(failed.unwrap_err(), "refused");
}
